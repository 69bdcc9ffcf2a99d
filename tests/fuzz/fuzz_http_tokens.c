/* fuzz_http_tokens.c -- the API token list (cor_http_tokens_parse): an object
 * with "tokens" or the bare array, each entry a token with an operator or the
 * regulator role. Any input gives a set or a reason, never a crash or a leak. */
#include <stddef.h>
#include <stdint.h>

#include "cor_http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1 << 20)
        return 0;
    char err[512] = "";
    cor_http_tokens *t = cor_http_tokens_parse((const char *)data, size, err, sizeof err);
    if (!t && err[0] == '\0')
        __builtin_trap();
    cor_http_tokens_free(t);
    return 0;
}
