/* fuzz_kpi_state.c -- cor_kpi_state_import, fed event KPI counter records from
 * pasban.state (any producer could have written them). Input: u8 key length, the
 * key suffix ("#kpi/OP/YYYY-MM-DD"), then the record. A record is imported or
 * refused, never a crash or a leak; one that imports exports again to a record
 * that imports, and dropping its partition takes its events away again. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cor_kpi.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char cfg_text[] =
    "{\"operators\": {\"op-a\": {\"sources\": [\"gw1\", \"fw1\", \"aaa1\", \"vpn1\"]}}}";

typedef struct again {
    cor_kpi *k;
    int rc;
} again;

static void reimport(void *arg, int32_t part, const char *key, size_t key_len, const char *rec,
                     size_t len)
{
    again *a = arg;
    char why[256];
    if (rec && cor_kpi_state_import(a->k, part, key, key_len, rec, len, why, sizeof(why)) != 0)
        a->rc = -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || (size_t)data[0] + 1 > size)
        return 0;
    size_t kl = data[0];
    const char *key = (const char *)data + 1;
    const char *rec = key + kl;
    size_t len = size - 1 - kl;
    char err[256], why[256];
    cor_kpi *k =
        cor_kpi_new(cor_kpi_config_parse(cfg_text, sizeof(cfg_text) - 1, err, sizeof(err)));
    if (!k)
        abort();
    if (cor_kpi_state_import(k, 3, key, kl, rec, len, why, sizeof(why)) == 0) {
        cor_kpi *k2 =
            cor_kpi_new(cor_kpi_config_parse(cfg_text, sizeof(cfg_text) - 1, err, sizeof(err)));
        again a = {k2, 0};
        cor_kpi_state_export(k, true, reimport, &a);
        if (a.rc != 0)
            abort(); /* what we write, we read */
        cor_kpi_state_drop(k, 3);
        for (size_t i = 0; i < cor_kpi_n_operators(k); i++) {
            cor_kpi_period p = cor_kpi_current_month(k);
            cor_kpi_values v;
            if (cor_kpi_compute(k, cor_kpi_operator(k, i), p, &v) == 0 && v.events_ingested.set &&
                v.events_ingested.v != 0)
                abort(); /* its events left with its partition */
        }
        cor_kpi_free(k2);
    }
    cor_kpi_free(k);
    return 0;
}
