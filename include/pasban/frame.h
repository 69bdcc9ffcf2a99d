/* frame.h -- RFC 6587 framing of a syslog byte stream (TCP, TLS, --parse input).
 *
 * Each frame is detected on its own: a frame that starts with a non-zero digit
 * run followed by SP is octet-counted (MSG-LEN SP SYSLOG-MSG); anything else runs
 * to the next LF (a trailing CR is dropped too). Empty LF frames are skipped.
 * The framer does not copy: frames point into the caller's buffer. It keeps no
 * state either, so feeding a stream whole or in pieces gives the same frames.
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

/* Find the next frame at the start of buf[0..len). max_frame (>= 1) bounds a
 * frame's payload: MSG-LEN, or an LF frame's bytes without its CR LF.
 *
 * Returns 1 with *out set to the frame.
 * Returns 0 when buf holds no complete frame: more bytes are needed, or, when
 * at_eof, buf held nothing but empty lines. out->consumed then counts the empty
 * lines at the start of buf, which the caller may drop (0 if there are none).
 * At EOF, a last LF frame without its LF is a frame, not a shortage.
 * Returns -1 on a framing error; out->error says why, out->msg/len hold the
 * bytes given up on (from the frame's first byte; an LF ending them is left
 * out, as from a frame) and out->consumed how far to skip before the next call.
 * So a stream reader can emit those bytes as a pipeline_error event and go on
 * (or close the connection):
 *  - MSG-LEN above max_frame: the count cannot be trusted, so the rest of the
 *    line is given up, as an over-long LF frame is below.
 *  - an LF frame longer than max_frame: given up through its LF when the LF is
 *    within max_frame + 2 bytes; else its first max_frame bytes are, and the
 *    rest of the line comes back from later calls (nothing is dropped). Until
 *    max_frame + 2 bytes are buffered (or EOF), 0 is returned.
 *  - at EOF, an octet-counted frame shorter than its MSG-LEN: all of buf.
 * Empty lines skipped before a frame or error are included in out->consumed.
 * A reader's buffer must hold max_frame + 32 bytes: the largest octet-counted
 * frame with its MSG-LEN header, and more than an over-long line needs. */
int psb_frame_next(const char *buf, size_t len, size_t max_frame, int at_eof, psb_frame *out);

#endif
