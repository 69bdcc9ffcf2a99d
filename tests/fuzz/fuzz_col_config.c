/* fuzz_col_config.c -- the collector's configuration file (col_config_load):
 * JSON with comments read line by line, listen URLs, CIDRs, sizes, durations.
 * The input is written to a temporary file (the loader takes a path). A refused
 * file must come with "file:line"-style text; an accepted one must obey the
 * limits of col_config.h (listeners, CIDR prefixes, operators named) and free
 * cleanly either way. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "col_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char path[64];

static void remove_path(void)
{
    unlink(path);
}

static int write_input(const uint8_t *data, size_t size)
{
    if (!path[0]) {
        snprintf(path, sizeof path, "/tmp/fuzz_col_config.%ld.conf", (long)getpid());
        atexit(remove_path);
    }
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t w = fwrite(data, 1, size, f);
    fclose(f);
    return w == size ? 0 : -1;
}

static int op_known(const col_opmap *m, const char *op)
{
    for (size_t i = 0; i < m->n_ops; i++)
        if (m->ops[i] == op || strcmp(m->ops[i], op) == 0)
            return 1;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536 || write_input(data, size) != 0)
        return 0;
    col_config *cfg = col_config_new();
    char err[512] = "";
    if (col_config_load(cfg, path, err, sizeof err) != 0) {
        if (err[0] == '\0')
            __builtin_trap();
    } else {
        if (cfg->n_listen > COL_MAX_LISTEN)
            __builtin_trap();
        for (size_t i = 0; i < cfg->n_listen; i++)
            if (cfg->listen[i].input < 0 || cfg->listen[i].input >= COL_INPUT_COUNT ||
                !cfg->listen[i].host || !cfg->listen[i].port)
                __builtin_trap();
        const col_opmap *m = &cfg->opmap;
        for (size_t i = 0; i < m->n_cidrs; i++) {
            const col_cidr *c = &m->cidrs[i];
            int max = c->family == AF_INET ? 32 : 128;
            if ((c->family != AF_INET && c->family != AF_INET6) || c->prefix < 0 ||
                c->prefix > max || !c->op || !op_known(m, c->op))
                __builtin_trap();
        }
        for (size_t i = 0; i < m->n_tokens; i++)
            if (!m->tokens[i].name || !m->tokens[i].op || !op_known(m, m->tokens[i].op) ||
                col_opmap_by_token(m, m->tokens[i].name, strlen(m->tokens[i].name)) == NULL)
                __builtin_trap();
        for (size_t i = 0; i < m->n_tls_names; i++)
            if (!m->tls_names[i].name || !m->tls_names[i].op ||
                col_opmap_by_tls_name(m, m->tls_names[i].name) == NULL)
                __builtin_trap();
        if (cfg->max_connections == 0 || cfg->max_message == 0 || cfg->max_body == 0 ||
            cfg->conn_buffer == 0)
            __builtin_trap();
    }
    col_config_free(cfg);
    return 0;
}
