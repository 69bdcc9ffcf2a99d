/* fuzz_http_body.c -- the collector's HTTP body splitter (col_json_split): one
 * object, an array of objects, or NDJSON. Whatever the body, every slice it hands
 * out must lie inside the body and be exactly one JSON object, the count must
 * respect the limit, and a refused body must come with a reason. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_tree.h>

#include "col_ctx.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { MAX_OBJECTS = 64 };

typedef struct seen {
    const char *body;
    size_t len;
    size_t n;
} seen;

static int check_slice(void *arg, const char *obj, size_t len)
{
    seen *s = arg;
    if (obj < s->body || obj + len > s->body + s->len || len == 0)
        abort();
    char *copy = malloc(len + 1);
    memcpy(copy, obj, len);
    copy[len] = '\0';
    char err[128];
    yajl_val v = yajl_tree_parse(copy, err, sizeof(err));
    /* yajl_tree stops at an escaped NUL inside a string; only judge what it parsed. */
    if (v && !YAJL_IS_OBJECT(v))
        abort();
    yajl_tree_free(v);
    free(copy);
    s->n++;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *body = malloc(size ? size : 1);
    memcpy(body, data, size);
    seen s = {body, size, 0};
    char err[256] = "";
    long n = col_json_split(body, size, MAX_OBJECTS, check_slice, &s, err, sizeof(err));
    if (n >= 0 && ((size_t)n != s.n || n > MAX_OBJECTS || n == 0))
        abort();
    if (n < 0 && err[0] == '\0')
        abort();
    free(body);
    return 0;
}
