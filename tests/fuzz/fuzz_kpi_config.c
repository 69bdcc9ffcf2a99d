/* fuzz_kpi_config.c -- the KPI configuration (cor_kpi_config_parse): SLAs,
 * report window, targets such as ">= 95", operators and their sources. An
 * accepted configuration must drive an engine: every configured operator's
 * record, CSV row and Prometheus gauges are written, and the record is JSON. */
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
    if (size > 65536)
        return 0;
    char err[512] = "";
    cor_kpi_config *c = cor_kpi_config_parse((const char *)data, size, err, sizeof err);
    if (!c) {
        if (err[0] == '\0')
            __builtin_trap();
        return 0;
    }
    cor_kpi *k = cor_kpi_new(c);
    cor_kpi_period p;
    if (cor_kpi_period_parse("2026-11", &p) != 0)
        __builtin_trap();
    size_t n = cor_kpi_n_operators(k);
    if (n > COR_KPI_MAX_OPERATORS)
        __builtin_trap();
    for (size_t i = 0; i < n && i < 8; i++) {
        const char *op = cor_kpi_operator(k, i);
        cor_buf b = {0};
        if (!op || cor_kpi_write_json(k, op, p, &b) != 0)
            __builtin_trap();
        check_json(&b);
        cor_buf_free(&b);
    }
    if (n <= 64) {
        cor_buf b = {0};
        cor_kpi_write_csv(k, p, NULL, &b);
        cor_kpi_write_prometheus(k, &b);
        cor_buf_free(&b);
    }
    cor_kpi_free(k);
    return 0;
}
