/* frame.c -- RFC 6587 framing: octet counting or LF, decided per frame.
 *
 * Stateless on purpose: every decision depends only on the bytes at the start
 * of the buffer and on at_eof, so a reader may call it after each read without
 * remembering anything, and a stream cut anywhere frames the same way.
 */
#include "pasban/frame.h"

#include <stdint.h>
#include <string.h>

static int set(psb_frame *out, int rc, const char *msg, size_t len, size_t consumed, int framing,
               const char *error)
{
    out->msg = msg;
    out->len = len;
    out->consumed = consumed;
    out->framing = framing;
    out->error = error;
    return rc;
}

/* The line at buf: a frame when it fits in max_frame, else an error. bad_len
 * marks a line whose octet-count header was refused: an error whatever its size. */
static int lf_line(const char *buf, size_t len, size_t max_frame, int at_eof, const char *bad_len,
                   psb_frame *out)
{
    /* Content, an optional CR and the LF: nothing longer can be a good frame. */
    size_t window = max_frame + 2 < len ? max_frame + 2 : len;
    const char *lf = memchr(buf, '\n', window);
    size_t n, consumed;
    if (lf) {
        n = (size_t)(lf - buf);
        consumed = n + 1;
    } else if (at_eof && len < max_frame + 2) {
        n = consumed = len;
    } else if (len >= max_frame + 2) {
        return set(out, -1, buf, max_frame, max_frame, PSB_FRAMING_LF,
                   bad_len ? bad_len : "LF frame longer than the maximum frame size");
    } else {
        return set(out, 0, buf, 0, 0, PSB_FRAMING_LF, NULL);
    }
    if (n && buf[n - 1] == '\r')
        n--;
    if (bad_len)
        return set(out, -1, buf, n, consumed, PSB_FRAMING_LF, bad_len);
    if (n > max_frame)
        return set(out, -1, buf, n, consumed, PSB_FRAMING_LF,
                   "LF frame longer than the maximum frame size");
    return set(out, 1, buf, n, consumed, PSB_FRAMING_LF, NULL);
}

/* One frame (possibly an empty LF one) at buf. */
static int one_frame(const char *buf, size_t len, size_t max_frame, int at_eof, psb_frame *out)
{
    if (len == 0)
        return set(out, 0, buf, 0, 0, PSB_FRAMING_LF, NULL);
    if (buf[0] < '1' || buf[0] > '9')
        return lf_line(buf, len, max_frame, at_eof, NULL, out);
    /* MSG-LEN: saturate rather than overflow; anything above max_frame is refused. */
    size_t i = 0, msg_len = 0;
    size_t cap = max_frame + 1;
    while (i < len && buf[i] >= '0' && buf[i] <= '9') {
        msg_len = msg_len * 10 + (size_t)(buf[i] - '0');
        if (msg_len > cap)
            msg_len = cap;
        i++;
        if (i >= max_frame + 2) /* too long for a count, and for a line */
            return lf_line(buf, len, max_frame, at_eof, NULL, out);
    }
    if (i == len)
        return at_eof ? lf_line(buf, len, max_frame, at_eof, NULL, out)
                      : set(out, 0, buf, 0, 0, PSB_FRAMING_OCTET, NULL);
    if (buf[i] != ' ')
        return lf_line(buf, len, max_frame, at_eof, NULL, out);
    if (msg_len > max_frame)
        return lf_line(buf, len, max_frame, at_eof, "MSG-LEN above the maximum frame size", out);
    size_t need = i + 1 + msg_len;
    if (len >= need)
        return set(out, 1, buf + i + 1, msg_len, need, PSB_FRAMING_OCTET, NULL);
    if (at_eof)
        return set(out, -1, buf, len, len, PSB_FRAMING_OCTET,
                   "octet-counted frame truncated by the end of input");
    return set(out, 0, buf, 0, 0, PSB_FRAMING_OCTET, NULL);
}

int psb_frame_next(const char *buf, size_t len, size_t max_frame, int at_eof, psb_frame *out)
{
    size_t skipped = 0;
    /* Keeps the MSG-LEN arithmetic (max_frame * 10 + 9) from overflowing. */
    if (max_frame > SIZE_MAX / 16)
        max_frame = SIZE_MAX / 16;
    if (max_frame == 0)
        max_frame = 1;
    for (;;) {
        int rc = one_frame(buf + skipped, len - skipped, max_frame, at_eof, out);
        if (rc == 1 && out->framing == PSB_FRAMING_LF && out->len == 0) {
            skipped += out->consumed; /* an empty line: nothing to deliver */
            continue;
        }
        if (rc == 0)
            out->consumed = 0;
        out->consumed += skipped;
        return rc;
    }
}
