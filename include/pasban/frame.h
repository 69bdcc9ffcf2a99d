/* frame.h -- RFC 6587 framing of a syslog byte stream (TCP, TLS, --parse input).
 *
 * Each frame is detected on its own: a frame that starts with a non-zero digit
 * run followed by SP is octet-counted (MSG-LEN SP SYSLOG-MSG); anything else runs
 * to the next LF (a trailing CR is dropped too). Empty LF frames are skipped.
 * The framer does not copy: frames point into the caller's buffer.
 */
#ifndef PASBAN_FRAME_H
#define PASBAN_FRAME_H

#include <stddef.h>

enum psb_framing {
    PSB_FRAMING_LF = 0,
    PSB_FRAMING_OCTET = 1,
};

typedef struct psb_frame {
    const char *msg;    /* the message (or, on error, the offending bytes) */
    size_t len;
    size_t consumed;    /* bytes of the buffer this frame (or error) used up */
    int framing;        /* enum psb_framing */
    const char *error;  /* static text on -1 */
} psb_frame;

/* Find the next frame at the start of buf[0..len).
 * Returns 1 with *out set; 0 when more bytes are needed (never when at_eof);
 * -1 on a framing error: out->error says why, out->msg/len hold the bytes given
 * up on and out->consumed how far to skip (a stream reader may also close).
 * Errors: MSG-LEN above max_frame, an LF frame longer than max_frame, and at EOF
 * a truncated octet-counted frame. */
int psb_frame_next(const char *buf, size_t len, size_t max_frame, int at_eof, psb_frame *out);

#endif
