/* libFuzzer target: RFC 3164 and its vendor dialects, forced and auto-detected,
 * then the ECS writer. Every input must give an event and non-empty JSON. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "pasban/ecs.h"
#include "pasban/parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static psb_event *ev;
    static psb_ecs_writer *w;
    if (!ev) {
        ev = psb_event_new();
        w = psb_ecs_writer_new();
    }
    /* A copy of exactly size bytes, so reads past the end are caught by ASan. */
    char *msg = malloc(size ? size : 1);
    for (size_t i = 0; i < size; i++)
        msg[i] = (char)data[i];
    /* The zone and the receive time vary with the input, near a year boundary. */
    int32_t tz = size ? (int32_t)((data[0] % 57) - 28) * 1800 : 0;
    const int formats[] = {PSB_FORMAT_RFC3164, PSB_FORMAT_AUTO};
    for (size_t f = 0; f < 2; f++) {
        psb_parse_opts o = {.format = formats[f],
                            .received_ms = 1798761590000LL + (int64_t)size * 1000,
                            .tz_offset_s = tz};
        int rc = psb_parse(&o, msg, size, ev);
        if (rc != 0 && ev->kind != PSB_EVENT_KIND_PIPELINE_ERROR)
            abort();
        if (ev->original.ptr != msg || ev->original.len != size)
            abort();
        if (ev->n_labels > PSB_EVENT_MAX_LABELS)
            abort();
        const char *out;
        size_t len;
        if (psb_ecs_write(w, ev, &out, &len) != 0 || len < 2 || out[0] != '{' ||
            out[len - 1] != '}')
            abort();
    }
    free(msg);
    return 0;
}
