/* rfc5424.c -- placeholder until the parser lands (issue 3). */
#include "pasban/parse.h"

int psb_parse_rfc5424(const psb_parse_opts *opts, const char *msg, size_t len, psb_event *ev)
{
    (void)opts;
    (void)msg;
    (void)len;
    psb_event_set_error(ev, "rfc5424 parser not built yet");
    return -1;
}
