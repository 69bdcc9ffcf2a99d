/* fuzz_inc_update.c -- the incident-update record reader (cor_inc_update_parse)
 * of pasban.incident-updates. An accepted update must round-trip: written back
 * with cor_inc_update_write and parsed again, it gives the same status and time,
 * and writing that again gives the same bytes (the writer turns invalid UTF-8
 * in a note into U+FFFD, so the first write may differ from the input's strings,
 * never the second from the first). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "cor_incstore.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1 << 20)
        return 0;
    cor_inc_update_owned o, o2;
    memset(&o, 0, sizeof o);
    memset(&o2, 0, sizeof o2);
    char err[512] = "";
    if (cor_inc_update_parse((const char *)data, size, &o, err, sizeof err) != 0) {
        if (err[0] == '\0')
            __builtin_trap();
        return 0;
    }
    if (!o.u.id || o.u.status == COR_INC_NEW || !cor_inc_status_name(o.u.status))
        __builtin_trap();
    cor_buf b = {0};
    cor_inc_update_write(&o.u, "op-x", &b);
    if (cor_inc_update_parse(b.p, b.len, &o2, err, sizeof err) != 0)
        __builtin_trap();
    if (o.u.status != o2.u.status || o.u.at != o2.u.at || !o.u.note != !o2.u.note ||
        !o.u.by != !o2.u.by)
        __builtin_trap();
    cor_buf b2 = {0};
    cor_inc_update_write(&o2.u, "op-x", &b2);
    if (b2.len != b.len || memcmp(b2.p, b.p, b.len) != 0)
        __builtin_trap();
    cor_buf_free(&b2);
    cor_inc_update_release(&o2);
    cor_inc_update_release(&o);
    cor_buf_free(&b);
    return 0;
}
