/* fuzz_json.c -- the JSON parser and the ECS writer together: any input must
 * give an event (never a crash, leak or overrun), and whatever the writer makes
 * of it must itself be valid JSON, with and without own_events. The first byte
 * of the input chooses the options so one corpus covers both modes. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_tree.h>

#include "pasban/ecs.h"
#include "pasban/parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_output(const psb_event *ev, psb_ecs_writer *w)
{
    const char *out;
    size_t len;
    if (psb_ecs_write(w, ev, &out, &len) != 0)
        abort();
    /* yajl_tree_parse needs a NUL-terminated copy; the writer never emits NUL. */
    char *copy = malloc(len + 1);
    memcpy(copy, out, len);
    copy[len] = '\0';
    if (memchr(out, '\0', len) || memchr(out, '\n', len))
        abort(); /* one line per event: a raw LF or NUL would break JSONL */
    char err[256];
    yajl_val v = yajl_tree_parse(copy, err, sizeof(err));
    if (!v || !YAJL_IS_OBJECT(v))
        abort(); /* the writer made invalid JSON */
    const char *kind_path[] = {"event", "kind", NULL};
    if (!YAJL_IS_STRING(yajl_tree_get(v, kind_path, yajl_t_string)))
        abort(); /* every event says what it is */
    yajl_tree_free(v);
    free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static psb_event *ev;
    static psb_ecs_writer *w;
    if (!ev) {
        ev = psb_event_new();
        w = psb_ecs_writer_new();
    }
    uint8_t mode = size ? data[0] : 0;
    const char *msg = size ? (const char *)data + 1 : (const char *)data;
    size_t len = size ? size - 1 : 0;
    psb_parse_opts opts = {
        .format = (mode & 2) ? PSB_FORMAT_AUTO : PSB_FORMAT_JSON,
        .received_ms = 1795428000000,
        .own_events = mode & 1,
        .max_message = (mode & 4) ? 256 : 0,
        .organization_id = PSB_STR_LIT("op-fuzz"),
        .observer_ip = (mode & 8) ? PSB_STR_LIT("192.0.2.1") : PSB_STR_NULL,
    };
    int rc = psb_parse(&opts, msg, len, ev);
    if (rc != 0 && ev->kind != PSB_EVENT_KIND_PIPELINE_ERROR)
        abort();
    if (!ev->original.ptr)
        abort();
    check_output(ev, w);
    /* Look-ups the correlator makes must not trip on any shape. */
    char buf[32];
    psb_str s;
    psb_event_get(ev, "message", 7, buf, &s);
    psb_event_get(ev, "labels.invalid_timestamp", 24, buf, &s);
    psb_event_get(ev, "a.b.c", 5, buf, &s);
    return 0;
}
