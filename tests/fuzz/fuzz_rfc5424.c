/* libFuzzer target: the RFC 5424 parser through psb_parse and the ECS writer.
 * Whatever the bytes, the result is one event whose JSON is non-empty and
 * valid, and whose slices stay inside the message or the event's own storage. */
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_tree.h>

#include "pasban/ecs.h"
#include "pasban/parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* CHECK() vanishes under NDEBUG, which release-flavoured builds define. */
#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static int inside(psb_str s, const char *msg, size_t len, const psb_event *ev)
{
    if (!s.ptr)
        return 1;
    if (s.ptr >= msg && s.ptr + s.len <= msg + len)
        return 1;
    if (ev->scratch && s.ptr >= ev->scratch && s.ptr + s.len <= ev->scratch + ev->scratch_len)
        return 1;
    return s.ptr >= ev->error_buf && s.ptr + s.len <= ev->error_buf + sizeof(ev->error_buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static psb_event *ev;
    static psb_ecs_writer *w;
    if (!ev) {
        ev = psb_event_new();
        w = psb_ecs_writer_new();
    }
    /* Heap copy of exactly size bytes so ASan sees any read past the end. */
    char *msg = malloc(size ? size : 1);
    memcpy(msg, data, size);
    psb_parse_opts o = {.format = PSB_FORMAT_RFC5424, .received_ms = 1700000000000LL};
    int rc = psb_parse(&o, msg, size, ev);
    CHECK(rc == 0 ? ev->kind == PSB_EVENT_KIND_EVENT : ev->kind == PSB_EVENT_KIND_PIPELINE_ERROR);
    CHECK(rc == 0 || ev->error_message.len > 0);
    CHECK(inside(ev->hostname, msg, size, ev) && inside(ev->appname, msg, size, ev) &&
          inside(ev->procid, msg, size, ev) && inside(ev->msgid, msg, size, ev) &&
          inside(ev->message, msg, size, ev) && inside(ev->error_message, msg, size, ev));
    CHECK(ev->n_sd <= PSB_EVENT_MAX_SD_ELEMENTS && ev->n_sd_params <= PSB_EVENT_MAX_SD_PARAMS);
    for (size_t i = 0; i < ev->n_sd_params; i++)
        CHECK(inside(ev->sd_params[i].key, msg, size, ev) &&
              inside(ev->sd_params[i].value, msg, size, ev));
    CHECK(rc != 0 || (ev->priority >= 0 && ev->priority <= 191));

    const char *out;
    size_t len;
    CHECK(psb_ecs_write(w, ev, &out, &len) == 0);
    CHECK(len > 0);
    char *json = malloc(len + 1);
    memcpy(json, out, len);
    json[len] = '\0';
    yajl_val tree = yajl_tree_parse(json, NULL, 0);
    CHECK(tree && YAJL_IS_OBJECT(tree));
    yajl_tree_free(tree);
    free(json);
    free(msg);
    return 0;
}
