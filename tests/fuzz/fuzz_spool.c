/* fuzz_spool.c -- the collector's spool reader: the input, behind the segment
 * header, is the content of a segment file found on open (as after a crash or
 * on a bad disk). Opening checks and cuts it; every record handed out must lie
 * inside the file (the records' framing adds up to no more than its size), and
 * acknowledging them all must leave nothing pending. The first input byte picks
 * whether the header is written (so a bad header is fuzzed too). */
#include <dirent.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "col_config.h"
#include "col_spool.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64];

static void empty_dir(void)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *de;
    char p[512];
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        unlink(p);
    }
    closedir(d);
}

static void remove_dir(void)
{
    empty_dir();
    rmdir(dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > (1u << 20))
        return 0;
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/fuzz_spool.XXXXXX");
        if (!mkdtemp(dir))
            abort();
        atexit(remove_dir);
    }
    empty_dir();
    char seg[512];
    snprintf(seg, sizeof seg, "%s/seg-%016d.spool", dir, 1);
    FILE *f = fopen(seg, "wb");
    if (!f)
        abort();
    size_t file_size = size - 1;
    if (data[0] & 1) {
        fwrite("PSBSPL1\n", 1, 8, f);
        file_size += 8;
    }
    fwrite(data + 1, 1, size - 1, f);
    fclose(f);

    col_spool_opts o = {1u << 22, 1u << 20, COL_FSYNC_NEVER};
    char err[256] = "";
    col_spool *s = col_spool_open(dir, &o, err, sizeof err);
    if (!s) {
        if (err[0] == '\0')
            __builtin_trap();
        return 0;
    }
    uint64_t unread = col_spool_unread(s), seen = 0, framed = 0;
    col_spool_rec r;
    int rc;
    while ((rc = col_spool_next(s, &r)) == 1) {
        seen++;
        framed += 8 + 2 + r.key_len + r.value_len;
        if (r.key_len > COL_SPOOL_MAX_RECORD || r.value_len > COL_SPOOL_MAX_RECORD ||
            framed + 8 > file_size + 8)
            __builtin_trap();
        /* Touch every byte handed out: ASan catches a slice outside the buffer. */
        unsigned sum = 0;
        for (size_t i = 0; i < r.key_len; i++)
            sum += (unsigned char)r.key[i];
        for (size_t i = 0; i < r.value_len; i++)
            sum += (unsigned char)r.value[i];
        if (sum == 0xffffffffu) /* keeps the loops; 255 * 1 MiB cannot reach it */
            __builtin_trap();
        col_spool_ack(s, r.segment);
    }
    if (rc < 0 || seen != unread || col_spool_pending(s) != 0)
        __builtin_trap();
    /* Appending after a cut segment must still work and be read back. */
    if (col_spool_append(s, "k", 1, "v", 1) != 0 || col_spool_next(s, &r) != 1 ||
        r.key_len != 1 || r.value_len != 1 || r.key[0] != 'k' || r.value[0] != 'v')
        __builtin_trap();
    col_spool_ack(s, r.segment);
    col_spool_free(s);
    return 0;
}
