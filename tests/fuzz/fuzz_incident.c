/* fuzz_incident.c -- the incident record reader (cor_incstore_add_json), as fed
 * from pasban.incidents. An accepted record must be idempotent (the same bytes
 * again are a replay: 0), readable back by its id, and what the store writes
 * for it must itself be accepted by a fresh store (round trip). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cor_incstore.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1 << 20)
        return 0;
    cor_incstore *s = cor_incstore_new();
    char err[512] = "";
    cor_kpi_incident ki;
    memset(&ki, 0, sizeof ki);
    int rc = cor_incstore_add_json(s, (const char *)data, size, &ki, err, sizeof err);
    if (rc < 0 && err[0] == '\0')
        __builtin_trap();
    if (rc == 1) {
        if (!ki.id || !ki.op || !ki.rule_id || ki.severity < 0 || ki.severity > 4 ||
            cor_incstore_count(s) != 1)
            __builtin_trap();
        char *id = strdup(ki.id);
        const char *op = cor_incstore_operator(s, id);
        if (!op || strcmp(op, ki.op) != 0 || cor_incstore_status(s, id) != COR_INC_NEW)
            __builtin_trap();
        if (cor_incstore_add_json(s, (const char *)data, size, NULL, err, sizeof err) != 0)
            __builtin_trap();
        cor_buf b = {0};
        if (cor_incstore_write_json(s, id, &b) != 0)
            __builtin_trap();
        cor_incstore *s2 = cor_incstore_new();
        if (cor_incstore_add_json(s2, b.p, b.len, NULL, err, sizeof err) != 1 ||
            cor_incstore_status(s2, id) != COR_INC_NEW)
            __builtin_trap();
        cor_incstore_free(s2);
        cor_inc_query q;
        cor_inc_query_init(&q);
        b.len = 0;
        cor_incstore_query_json(s, &q, &b);
        cor_buf_free(&b);
        free(id);
    }
    cor_incstore_free(s);
    return 0;
}
