/* frame.c -- placeholder until the framer lands (issue 3). */
#include "pasban/frame.h"

int psb_frame_next(const char *buf, size_t len, size_t max_frame, int at_eof, psb_frame *out)
{
    (void)max_frame;
    (void)at_eof;
    out->msg = buf;
    out->len = len;
    out->consumed = len;
    out->framing = PSB_FRAMING_LF;
    out->error = "framer not built yet";
    return -1;
}
