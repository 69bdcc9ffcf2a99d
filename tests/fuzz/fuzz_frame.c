/* libFuzzer target: the RFC 6587 framer. The first two bytes choose the
 * maximum frame size and the chunking; the rest is the stream. Framing it
 * whole and in random-sized chunks must give the same frames and errors, at
 * the same offsets, each within the buffer and the size limit. */
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pasban/frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* CHECK() vanishes under NDEBUG, which release-flavoured builds define. */
#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

typedef struct item {
    int rc;
    int framing;
    size_t off; /* of msg from the start of the stream */
    size_t len;
} item;

/* Frame buf[0..len) arriving in chunks (chunk 0 = all at once); returns the count. */
static size_t run(const char *buf, size_t len, size_t max, uint32_t seed, int chunked, item *items)
{
    size_t off = 0, avail = chunked ? 0 : len, n = 0;
    for (;;) {
        int eof = avail == len;
        for (;;) {
            psb_frame f;
            int rc = psb_frame_next(buf + off, avail - off, max, eof, &f);
            CHECK(rc >= -1 && rc <= 1);
            CHECK(f.consumed <= avail - off);
            if (rc == 0) {
                CHECK(!eof || f.consumed == avail - off);
                off += f.consumed;
                break;
            }
            CHECK(f.consumed > 0);
            CHECK(f.msg >= buf + off && f.msg + f.len <= buf + off + f.consumed);
            CHECK(rc == -1 ? f.error != NULL : f.len <= max && f.len > 0);
            items[n++] = (item){rc, f.framing, (size_t)(f.msg - buf), f.len};
            off += f.consumed;
        }
        if (eof)
            break;
        seed = seed * 1103515245u + 12345u;
        size_t step = 1 + (seed >> 16) % 37;
        avail = avail + step < len ? avail + step : len;
    }
    CHECK(off == len); /* at EOF everything is accounted for */
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t max = data[0] < 128 ? 1 + data[0] % 64 : 65536;
    uint32_t seed = data[1];
    size_t len = size - 2;
    char *buf = malloc(len ? len : 1);
    memcpy(buf, data + 2, len);
    item *a = malloc((len + 1) * sizeof(*a));
    item *b = malloc((len + 1) * sizeof(*b));
    size_t na = run(buf, len, max, seed, 0, a);
    size_t nb = run(buf, len, max, seed, 1, b);
    CHECK(na == nb);
    for (size_t i = 0; i < na; i++)
        CHECK(a[i].rc == b[i].rc && a[i].framing == b[i].framing && a[i].off == b[i].off &&
              a[i].len == b[i].len);
    free(a);
    free(b);
    free(buf);
    return 0;
}
