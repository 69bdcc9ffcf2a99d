/* ecs.h -- write a psb_event as one line of ECS JSON (nested objects, as Beats do).
 *
 * Absent values are omitted, never null. Invalid UTF-8 in any value is replaced
 * by U+FFFD so the output is always valid JSON. One writer per thread: it owns an
 * output buffer that is reused for every event (the text is written directly, with
 * yajl's escapes; yajl's generator cost more than the whole per-line budget).
 */
#ifndef PASBAN_ECS_H
#define PASBAN_ECS_H

#include <stddef.h>

#include "pasban/event.h"

typedef struct psb_ecs_writer psb_ecs_writer;

psb_ecs_writer *psb_ecs_writer_new(void);
void psb_ecs_writer_free(psb_ecs_writer *w);

/* Render ev. *out points into the writer (valid until its next call), without a
 * trailing newline. Returns 0, or -1 if the containers did not balance (a bug in
 * the writer, never the event's fault). */
int psb_ecs_write(psb_ecs_writer *w, const psb_event *ev, const char **out, size_t *len);

#endif
