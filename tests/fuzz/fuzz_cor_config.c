/* fuzz_cor_config.c -- the correlator's configuration file (cor_config_load),
 * and what the daemon derives from it: the KPI configuration, the token set and
 * the librdkafka properties as text. The input is written to a temporary file.
 * A refusal must give a reason; an accepted file must hand out every property
 * with a key and a value, and never crash, leak or hit undefined behaviour. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cor_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char path[64];

static void remove_path(void)
{
    unlink(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536)
        return 0;
    if (!path[0]) {
        snprintf(path, sizeof path, "/tmp/fuzz_cor_config.%ld.conf", (long)getpid());
        atexit(remove_path);
    }
    FILE *f = fopen(path, "wb");
    if (!f)
        return 0;
    size_t w = fwrite(data, 1, size, f);
    fclose(f);
    if (w != size)
        return 0;
    char err[512] = "";
    cor_config *c = cor_config_load(path, err, sizeof err);
    if (!c) {
        if (err[0] == '\0')
            __builtin_trap();
        return 0;
    }
    const char *key, *val;
    size_t n = cor_config_property(c, 0, &key, &val);
    for (size_t i = 0; i < n; i++) {
        key = val = NULL;
        if (cor_config_property(c, i, &key, &val) != n || !key || !val)
            __builtin_trap();
    }
    err[0] = '\0';
    cor_kpi_config *kc = cor_config_kpi(c, err, sizeof err);
    if (!kc && err[0] == '\0')
        __builtin_trap();
    cor_kpi_config_free(kc);
    err[0] = '\0';
    cor_http_tokens *t = cor_config_tokens(c, err, sizeof err);
    if (!t && err[0] == '\0')
        __builtin_trap();
    cor_http_tokens_free(t);
    cor_config_free(c);
    return 0;
}
