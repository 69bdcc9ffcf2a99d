/* fuzz_kpi_import.c -- the KPI record importer (cor_kpi_import_record), fed
 * from pasban.kpi by other correlator instances. The input is the message key
 * up to the first newline, then the record. Whatever is imported, the engine's
 * outputs (record, CSV, report, Prometheus) must stay well formed: the record
 * and the report are JSON. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_tree.h>

#include "cor_kpi.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_json(const cor_buf *b)
{
    char *copy = malloc(b->len + 1);
    memcpy(copy, b->p, b->len);
    copy[b->len] = '\0';
    char e[128];
    yajl_val v = yajl_tree_parse(copy, e, sizeof e);
    if (!v)
        __builtin_trap();
    yajl_tree_free(v);
    free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1 << 20)
        return 0;
    const char *text = (const char *)data;
    const char *nl = memchr(text, '\n', size);
    if (!nl)
        return 0;
    size_t key_len = (size_t)(nl - text);
    cor_kpi *k = cor_kpi_new(NULL);
    if (cor_kpi_import_record(k, text, key_len, nl + 1, size - key_len - 1) == 0) {
        const char *slash = memchr(text, '/', key_len);
        if (!slash)
            __builtin_trap();
        char per[32];
        size_t pl = key_len - (size_t)(slash - text) - 1;
        if (pl >= sizeof per)
            __builtin_trap();
        memcpy(per, slash + 1, pl);
        per[pl] = '\0';
        cor_kpi_period p;
        if (cor_kpi_period_parse(per, &p) != 0)
            __builtin_trap();
        cor_buf b = {0};
        cor_kpi_write_json_all(k, p, &b);
        check_json(&b);
        b.len = 0;
        cor_kpi_write_csv(k, p, NULL, &b);
        cor_kpi_write_prometheus(k, &b);
        b.len = 0;
        cor_kpi_write_report(k, &b);
        check_json(&b);
        cor_buf_free(&b);
    }
    cor_kpi_free(k);
    return 0;
}
