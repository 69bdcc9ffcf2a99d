/* cor_modes.h -- the command-line modes of pasban-correlator that read files:
 * --replay, --match and --check-rules (design.md, "Command line").
 * Each returns the process exit code: 0 done, 1 failure (rules or input), 2 usage.
 */
#ifndef COR_MODES_H
#define COR_MODES_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "cor_engine.h"

#define COR_MAX_LINE (1u << 20) /* input line read; longer lines are cut and flagged */

typedef struct cor_run_opts {
    const char *rules;  /* --rules PATH (or --check-rules PATH) */
    char *const *files; /* inputs; stdin when n_files == 0 */
    size_t n_files;
    const char *kpi_file;    /* --kpi FILE */
    const char *config;      /* -c FILE: its "kpi" section configures --kpi */
    bool stats;              /* --stats */
    bool no_prefilter;       /* --no-prefilter */
    const char *operator_id; /* --operator ID: organization.id of raw lines */
    int64_t received_ms;     /* --received-at, else the wall clock at start */
    cor_engine_opts engine;
    FILE *out, *err;
} cor_run_opts;

int cor_mode_replay(const cor_run_opts *o);
int cor_mode_match(const cor_run_opts *o);
int cor_mode_check(const cor_run_opts *o);

/* Reads LF-terminated lines (a CR before the LF is dropped) with a length limit. */
typedef struct cor_line_reader cor_line_reader;
cor_line_reader *cor_line_reader_new(FILE *f);
/* 1 with a line (valid until the next call; *cut set when it was longer than
 * COR_MAX_LINE), 0 at end of input, -1 on a read error. */
int cor_line_reader_next(cor_line_reader *r, const char **line, size_t *len, bool *cut);
void cor_line_reader_free(cor_line_reader *r);

#endif
