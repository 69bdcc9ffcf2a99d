/* spool.c -- segment files of length-prefixed, CRC32C-checked records.
 *
 * Writes go to the newest segment with write(2); reads use pread(2) on their own
 * descriptor, so a segment can be read while it is still being written. The
 * spool only grows by appending, and only shrinks by deleting whole segments
 * once every record in them is acknowledged.
 */
#include "col_spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "col_config.h"
#include "pasban/util.h"

#define SEG_MAGIC "PSBSPL1\n"
#define SEG_HDR 8
#define REC_HDR 8

static const uint32_t crc32c_table[256] = {
    0x00000000u, 0xf26b8303u, 0xe13b70f7u, 0x1350f3f4u, 0xc79a971fu, 0x35f1141cu, 0x26a1e7e8u,
    0xd4ca64ebu, 0x8ad958cfu, 0x78b2dbccu, 0x6be22838u, 0x9989ab3bu, 0x4d43cfd0u, 0xbf284cd3u,
    0xac78bf27u, 0x5e133c24u, 0x105ec76fu, 0xe235446cu, 0xf165b798u, 0x030e349bu, 0xd7c45070u,
    0x25afd373u, 0x36ff2087u, 0xc494a384u, 0x9a879fa0u, 0x68ec1ca3u, 0x7bbcef57u, 0x89d76c54u,
    0x5d1d08bfu, 0xaf768bbcu, 0xbc267848u, 0x4e4dfb4bu, 0x20bd8edeu, 0xd2d60dddu, 0xc186fe29u,
    0x33ed7d2au, 0xe72719c1u, 0x154c9ac2u, 0x061c6936u, 0xf477ea35u, 0xaa64d611u, 0x580f5512u,
    0x4b5fa6e6u, 0xb93425e5u, 0x6dfe410eu, 0x9f95c20du, 0x8cc531f9u, 0x7eaeb2fau, 0x30e349b1u,
    0xc288cab2u, 0xd1d83946u, 0x23b3ba45u, 0xf779deaeu, 0x05125dadu, 0x1642ae59u, 0xe4292d5au,
    0xba3a117eu, 0x4851927du, 0x5b016189u, 0xa96ae28au, 0x7da08661u, 0x8fcb0562u, 0x9c9bf696u,
    0x6ef07595u, 0x417b1dbcu, 0xb3109ebfu, 0xa0406d4bu, 0x522bee48u, 0x86e18aa3u, 0x748a09a0u,
    0x67dafa54u, 0x95b17957u, 0xcba24573u, 0x39c9c670u, 0x2a993584u, 0xd8f2b687u, 0x0c38d26cu,
    0xfe53516fu, 0xed03a29bu, 0x1f682198u, 0x5125dad3u, 0xa34e59d0u, 0xb01eaa24u, 0x42752927u,
    0x96bf4dccu, 0x64d4cecfu, 0x77843d3bu, 0x85efbe38u, 0xdbfc821cu, 0x2997011fu, 0x3ac7f2ebu,
    0xc8ac71e8u, 0x1c661503u, 0xee0d9600u, 0xfd5d65f4u, 0x0f36e6f7u, 0x61c69362u, 0x93ad1061u,
    0x80fde395u, 0x72966096u, 0xa65c047du, 0x5437877eu, 0x4767748au, 0xb50cf789u, 0xeb1fcbadu,
    0x197448aeu, 0x0a24bb5au, 0xf84f3859u, 0x2c855cb2u, 0xdeeedfb1u, 0xcdbe2c45u, 0x3fd5af46u,
    0x7198540du, 0x83f3d70eu, 0x90a324fau, 0x62c8a7f9u, 0xb602c312u, 0x44694011u, 0x5739b3e5u,
    0xa55230e6u, 0xfb410cc2u, 0x092a8fc1u, 0x1a7a7c35u, 0xe811ff36u, 0x3cdb9bddu, 0xceb018deu,
    0xdde0eb2au, 0x2f8b6829u, 0x82f63b78u, 0x709db87bu, 0x63cd4b8fu, 0x91a6c88cu, 0x456cac67u,
    0xb7072f64u, 0xa457dc90u, 0x563c5f93u, 0x082f63b7u, 0xfa44e0b4u, 0xe9141340u, 0x1b7f9043u,
    0xcfb5f4a8u, 0x3dde77abu, 0x2e8e845fu, 0xdce5075cu, 0x92a8fc17u, 0x60c37f14u, 0x73938ce0u,
    0x81f80fe3u, 0x55326b08u, 0xa759e80bu, 0xb4091bffu, 0x466298fcu, 0x1871a4d8u, 0xea1a27dbu,
    0xf94ad42fu, 0x0b21572cu, 0xdfeb33c7u, 0x2d80b0c4u, 0x3ed04330u, 0xccbbc033u, 0xa24bb5a6u,
    0x502036a5u, 0x4370c551u, 0xb11b4652u, 0x65d122b9u, 0x97baa1bau, 0x84ea524eu, 0x7681d14du,
    0x2892ed69u, 0xdaf96e6au, 0xc9a99d9eu, 0x3bc21e9du, 0xef087a76u, 0x1d63f975u, 0x0e330a81u,
    0xfc588982u, 0xb21572c9u, 0x407ef1cau, 0x532e023eu, 0xa145813du, 0x758fe5d6u, 0x87e466d5u,
    0x94b49521u, 0x66df1622u, 0x38cc2a06u, 0xcaa7a905u, 0xd9f75af1u, 0x2b9cd9f2u, 0xff56bd19u,
    0x0d3d3e1au, 0x1e6dcdeeu, 0xec064eedu, 0xc38d26c4u, 0x31e6a5c7u, 0x22b65633u, 0xd0ddd530u,
    0x0417b1dbu, 0xf67c32d8u, 0xe52cc12cu, 0x1747422fu, 0x49547e0bu, 0xbb3ffd08u, 0xa86f0efcu,
    0x5a048dffu, 0x8ecee914u, 0x7ca56a17u, 0x6ff599e3u, 0x9d9e1ae0u, 0xd3d3e1abu, 0x21b862a8u,
    0x32e8915cu, 0xc083125fu, 0x144976b4u, 0xe622f5b7u, 0xf5720643u, 0x07198540u, 0x590ab964u,
    0xab613a67u, 0xb831c993u, 0x4a5a4a90u, 0x9e902e7bu, 0x6cfbad78u, 0x7fab5e8cu, 0x8dc0dd8fu,
    0xe330a81au, 0x115b2b19u, 0x020bd8edu, 0xf0605beeu, 0x24aa3f05u, 0xd6c1bc06u, 0xc5914ff2u,
    0x37faccf1u, 0x69e9f0d5u, 0x9b8273d6u, 0x88d28022u, 0x7ab90321u, 0xae7367cau, 0x5c18e4c9u,
    0x4f48173du, 0xbd23943eu, 0xf36e6f75u, 0x0105ec76u, 0x12551f82u, 0xe03e9c81u, 0x34f4f86au,
    0xc69f7b69u, 0xd5cf889du, 0x27a40b9eu, 0x79b737bau, 0x8bdcb4b9u, 0x988c474du, 0x6ae7c44eu,
    0xbe2da0a5u, 0x4c4623a6u, 0x5f16d052u, 0xad7d5351u,
};

uint32_t col_crc32c(uint32_t crc, const void *data, size_t len)
{
    const unsigned char *p = data;
    crc = ~crc;
    while (len--)
        crc = crc32c_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return ~crc;
}

typedef struct seg {
    uint64_t id;
    uint64_t size;    /* bytes, header included */
    uint64_t records; /* records in the file */
    uint64_t handed;  /* records handed out by col_spool_next */
    uint64_t acked;
} seg;

struct col_spool {
    char *dir;
    col_spool_opts opts;
    int lock_fd;
    int dir_fd;    /* fsynced after a segment is created or deleted */
    int dir_dirty; /* a segment was created or deleted since the last sync */
    seg *segs; /* oldest first */
    size_t n_segs;
    int wfd; /* newest segment, open for appending; -1 when none */
    uint64_t wid;
    uint64_t next_id;
    int dirty; /* appended since the last fsync */
    int rfd;   /* reader's descriptor and position */
    uint64_t rid;
    uint64_t roff;
    uint64_t bytes;
    char *rbuf; /* records handed out by col_spool_next point here */
    size_t rcap;
    char *wbuf; /* append builds its write here: a caller may pass a record it
                 * just read back in, so this must not be rbuf */
    size_t wcap;
};

static void put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void seg_path(const col_spool *s, uint64_t id, char *buf, size_t len)
{
    snprintf(buf, len, "%s/seg-%016" PRIu64 ".spool", s->dir, id);
}

static seg *find_seg(col_spool *s, uint64_t id)
{
    for (size_t i = 0; i < s->n_segs; i++)
        if (s->segs[i].id == id)
            return &s->segs[i];
    return NULL;
}

static ssize_t full_pread(int fd, void *buf, size_t n, uint64_t off)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, (char *)buf + got, n - got, (off_t)(off + got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

static int full_write(int fd, const void *buf, size_t n)
{
    size_t done = 0;
    while (done < n) {
        ssize_t r = write(fd, (const char *)buf + done, n - done);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        done += (size_t)r;
    }
    return 0;
}

static void ensure_buf(char **buf, size_t *cap, size_t n)
{
    if (*cap < n) {
        *cap = n < 65536 ? 65536 : n;
        *buf = psb_xrealloc(*buf, *cap);
    }
}

static void ensure_rbuf(col_spool *s, size_t n)
{
    ensure_buf(&s->rbuf, &s->rcap, n);
}

/* Walk one segment's records; cut it at the first torn or corrupt one. */
static int check_segment(col_spool *s, seg *g)
{
    char path[4096];
    unsigned char hdr[REC_HDR];
    seg_path(s, g->id, path, sizeof path);
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return -1;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return -1;
    }
    uint64_t size = (uint64_t)st.st_size, off = SEG_HDR;
    errno = 0;
    const char *why = NULL;
    char magic[SEG_HDR];
    ssize_t got = full_pread(fd, magic, SEG_HDR, 0);
    if (got < 0)
        goto read_error;
    if (got != SEG_HDR || memcmp(magic, SEG_MAGIC, SEG_HDR) != 0) {
        why = "bad segment header";
        off = 0;
    }
    while (!why && off < size) {
        if (size - off < REC_HDR) {
            why = "torn record header";
            break;
        }
        if (full_pread(fd, hdr, REC_HDR, off) != REC_HDR)
            goto read_error;
        uint32_t len = get32(hdr), crc = get32(hdr + 4);
        if (len < 2 || len > COL_SPOOL_MAX_RECORD) {
            why = "bad record length";
            break;
        }
        if (size - off - REC_HDR < len) {
            why = "torn record";
            break;
        }
        ensure_rbuf(s, len);
        if (full_pread(fd, s->rbuf, len, off + REC_HDR) != (ssize_t)len)
            goto read_error;
        if (col_crc32c(0, s->rbuf, len) != crc) {
            why = "checksum mismatch";
            break;
        }
        /* A record whose checksum holds can still claim a key longer than its
         * payload (a bug, or one of the inputs whose CRC32C is what follows them).
         * Kept, col_spool_next would fail on it at every call and the spool would
         * never drain: cut it like any other corrupt record. */
        size_t klen = (size_t)(unsigned char)s->rbuf[0] | (size_t)(unsigned char)s->rbuf[1] << 8;
        if (klen > len - 2) {
            why = "key longer than its record";
            break;
        }
        off += REC_HDR + len;
        g->records++;
    }
    if (why) {
        fprintf(stderr,
                "pasban-collector: spool: %s: %s at offset %" PRIu64 ", cutting %" PRIu64
                " bytes (%" PRIu64 " good records kept)\n",
                path, why, off, size - off, g->records);
        if (ftruncate(fd, (off_t)off) != 0 || fsync(fd) != 0) {
            close(fd);
            return -1;
        }
        size = off;
    }
    close(fd);
    g->size = size;
    return 0;
read_error:
    /* The disk failed, not the record: cutting here would delete every good
     * record behind it. Fail the open and leave the file as it is. */
    {
        int e = errno ? errno : EIO;
        close(fd);
        errno = e;
        return -1;
    }
}

static int cmp_seg(const void *a, const void *b)
{
    const seg *x = a, *y = b;
    return x->id < y->id ? -1 : x->id > y->id;
}

static void drop_seg(col_spool *s, size_t i)
{
    char path[4096];
    seg *g = &s->segs[i];
    seg_path(s, g->id, path, sizeof path);
    if (g->id == s->wid && s->wfd >= 0) {
        close(s->wfd);
        s->wfd = -1;
    }
    if (g->id == s->rid && s->rfd >= 0) {
        close(s->rfd);
        s->rfd = -1;
    }
    unlink(path);
    s->dir_dirty = 1;
    s->bytes -= g->size;
    memmove(&s->segs[i], &s->segs[i + 1], (s->n_segs - i - 1) * sizeof *s->segs);
    s->n_segs--;
}

/* A segment goes once it is fully read and acknowledged. */
static void reap(col_spool *s)
{
    for (size_t i = 0; i < s->n_segs;) {
        seg *g = &s->segs[i];
        if (g->handed == g->records && g->acked == g->records &&
            (g->id < s->rid || (g->id == s->rid && s->roff >= g->size)))
            drop_seg(s, i);
        else
            i++;
    }
}

col_spool *col_spool_open(const char *dir, const col_spool_opts *opts, char *err, size_t errlen)
{
    char path[4096];
    col_spool *s = psb_xcalloc(1, sizeof *s);
    s->dir = psb_xstrdup(dir);
    s->opts = *opts;
    s->wfd = s->rfd = s->lock_fd = s->dir_fd = -1;
    DIR *d = NULL;
    if (mkdir(dir, 0750) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "spool %s: %s", dir, strerror(errno));
        goto fail;
    }
    snprintf(path, sizeof path, "%s/lock", dir);
    s->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (s->lock_fd < 0 || flock(s->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        snprintf(err, errlen, "spool %s: %s", dir,
                 errno == EWOULDBLOCK ? "in use by another collector" : strerror(errno));
        goto fail;
    }
    s->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (s->dir_fd < 0) {
        snprintf(err, errlen, "spool %s: %s", dir, strerror(errno));
        goto fail;
    }
    d = opendir(dir);
    if (!d) {
        snprintf(err, errlen, "spool %s: %s", dir, strerror(errno));
        goto fail;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        uint64_t id;
        char tail[16];
        if (sscanf(de->d_name, "seg-%" SCNu64 ".%15s", &id, tail) != 2 ||
            strcmp(tail, "spool") != 0)
            continue;
        s->segs = psb_xrealloc(s->segs, (s->n_segs + 1) * sizeof *s->segs);
        s->segs[s->n_segs++] = (seg){.id = id};
    }
    closedir(d);
    d = NULL;
    if (s->n_segs > 1)
        qsort(s->segs, s->n_segs, sizeof *s->segs, cmp_seg);
    for (size_t i = 0; i < s->n_segs;) {
        if (check_segment(s, &s->segs[i]) != 0) {
            snprintf(err, errlen, "spool %s: segment %" PRIu64 ": %s", dir, s->segs[i].id,
                     strerror(errno));
            goto fail;
        }
        s->bytes += s->segs[i].size;
        if (s->segs[i].records == 0) {
            drop_seg(s, i);
            continue;
        }
        i++;
    }
    s->next_id = s->n_segs ? s->segs[s->n_segs - 1].id + 1 : 1;
    s->rid = s->n_segs ? s->segs[0].id : s->next_id;
    s->roff = SEG_HDR;
    s->wid = UINT64_MAX;
    return s;
fail:
    if (d)
        closedir(d);
    col_spool_free(s);
    return NULL;
}

int col_spool_sync(col_spool *s)
{
    if (s->wfd >= 0 && s->dirty) {
        if (fdatasync(s->wfd) != 0)
            return -1;
        s->dirty = 0;
    }
    /* A new segment's records are only durable once its name is. */
    if (s->dir_dirty && s->dir_fd >= 0) {
        if (fsync(s->dir_fd) != 0)
            return -1;
        s->dir_dirty = 0;
    }
    return 0;
}

void col_spool_free(col_spool *s)
{
    if (!s)
        return;
    col_spool_sync(s);
    if (s->wfd >= 0)
        close(s->wfd);
    if (s->rfd >= 0)
        close(s->rfd);
    if (s->lock_fd >= 0)
        close(s->lock_fd);
    if (s->dir_fd >= 0)
        close(s->dir_fd);
    free(s->segs);
    free(s->rbuf);
    free(s->wbuf);
    free(s->dir);
    free(s);
}

int col_spool_has_room(const col_spool *s, size_t key_len, size_t value_len)
{
    uint64_t need = REC_HDR + 2 + key_len + value_len + SEG_HDR;
    return key_len <= 0xffff && 2 + key_len + value_len <= COL_SPOOL_MAX_RECORD &&
           s->bytes + need <= s->opts.max_bytes;
}

static int open_write_segment(col_spool *s)
{
    char path[4096];
    if (s->wfd >= 0) {
        /* Whatever the policy: col_spool_sync only reaches the newest segment,
         * and a caller syncing before an acknowledgement needs this one too. */
        if (col_spool_sync(s) != 0)
            return -1;
        close(s->wfd);
        s->wfd = -1;
    }
    uint64_t id = s->next_id;
    seg_path(s, id, path, sizeof path);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0640);
    if (fd < 0)
        return -1;
    if (full_write(fd, SEG_MAGIC, SEG_HDR) != 0) {
        int e = errno;
        close(fd);
        unlink(path);
        errno = e;
        return -1;
    }
    s->next_id++;
    s->wfd = fd;
    s->wid = id;
    s->dirty = 1;
    s->dir_dirty = 1;
    s->segs = psb_xrealloc(s->segs, (s->n_segs + 1) * sizeof *s->segs);
    s->segs[s->n_segs++] = (seg){.id = id, .size = SEG_HDR};
    s->bytes += SEG_HDR;
    return 0;
}

int col_spool_append(col_spool *s, const char *key, size_t key_len, const char *value,
                     size_t value_len)
{
    if (!col_spool_has_room(s, key_len, value_len)) {
        errno = ENOSPC;
        return -1;
    }
    seg *w = s->wfd >= 0 ? find_seg(s, s->wid) : NULL;
    if (!w || w->size + REC_HDR + 2 + key_len + value_len > s->opts.segment_bytes) {
        /* Never write into a segment the reader has finished with; start afresh. */
        if (open_write_segment(s) != 0)
            return -1;
        w = find_seg(s, s->wid);
    }
    uint32_t len = (uint32_t)(2 + key_len + value_len);
    unsigned char hdr[REC_HDR + 2];
    hdr[REC_HDR] = (unsigned char)key_len;
    hdr[REC_HDR + 1] = (unsigned char)(key_len >> 8);
    uint32_t crc = col_crc32c(0, hdr + REC_HDR, 2);
    crc = col_crc32c(crc, key, key_len);
    crc = col_crc32c(crc, value, value_len);
    put32(hdr, len);
    put32(hdr + 4, crc);
    /* One writev-like buffer so a record is a single write(2): a crash tears at
     * most the last record, which the next open cuts. */
    size_t total = REC_HDR + len;
    ensure_buf(&s->wbuf, &s->wcap, total);
    memcpy(s->wbuf, hdr, REC_HDR + 2);
    memcpy(s->wbuf + REC_HDR + 2, key, key_len);
    memcpy(s->wbuf + REC_HDR + 2 + key_len, value, value_len);
    if (full_write(s->wfd, s->wbuf, total) != 0) {
        /* Take back a partial record so the file stays well-formed. */
        int e = errno;
        if (ftruncate(s->wfd, (off_t)w->size) != 0)
            fprintf(stderr, "pasban-collector: spool: cannot cut a failed write: %s\n",
                    strerror(errno));
        errno = e;
        return -1;
    }
    w->size += total;
    w->records++;
    s->bytes += total;
    s->dirty = 1;
    if (s->opts.fsync == COL_FSYNC_ALWAYS && col_spool_sync(s) != 0)
        return -1;
    return 0;
}

int col_spool_next(col_spool *s, col_spool_rec *rec)
{
    char path[4096];
    unsigned char hdr[REC_HDR];
    for (;;) {
        seg *g = find_seg(s, s->rid);
        if (!g) {
            /* Move to the oldest segment after rid, if any. */
            seg *nx = NULL;
            for (size_t i = 0; i < s->n_segs; i++)
                if (s->segs[i].id > s->rid && (!nx || s->segs[i].id < nx->id))
                    nx = &s->segs[i];
            if (!nx)
                return 0;
            s->rid = nx->id;
            s->roff = SEG_HDR;
            if (s->rfd >= 0) {
                close(s->rfd);
                s->rfd = -1;
            }
            continue;
        }
        if (s->roff >= g->size) {
            if (g->id == s->wid)
                return 0; /* caught up with the writer */
            s->rid++;
            s->roff = SEG_HDR;
            if (s->rfd >= 0) {
                close(s->rfd);
                s->rfd = -1;
            }
            reap(s);
            continue;
        }
        if (s->rfd < 0) {
            seg_path(s, g->id, path, sizeof path);
            s->rfd = open(path, O_RDONLY | O_CLOEXEC);
            if (s->rfd < 0)
                return -1;
        }
        if (full_pread(s->rfd, hdr, REC_HDR, s->roff) != REC_HDR)
            return -1;
        uint32_t len = get32(hdr);
        if (len < 2 || len > COL_SPOOL_MAX_RECORD || s->roff + REC_HDR + len > g->size) {
            errno = EIO;
            return -1;
        }
        ensure_rbuf(s, len);
        if (full_pread(s->rfd, s->rbuf, len, s->roff + REC_HDR) != (ssize_t)len)
            return -1;
        if (col_crc32c(0, s->rbuf, len) != get32(hdr + 4)) {
            errno = EIO;
            return -1;
        }
        size_t klen = (size_t)(unsigned char)s->rbuf[0] | (size_t)(unsigned char)s->rbuf[1] << 8;
        if (klen > len - 2) {
            errno = EIO;
            return -1;
        }
        rec->key = s->rbuf + 2;
        rec->key_len = klen;
        rec->value = s->rbuf + 2 + klen;
        rec->value_len = len - 2 - klen;
        rec->segment = g->id;
        s->roff += REC_HDR + len;
        g->handed++;
        return 1;
    }
}

void col_spool_ack(col_spool *s, uint64_t segment)
{
    seg *g = find_seg(s, segment);
    if (!g)
        return;
    g->acked++;
    reap(s);
}

uint64_t col_spool_bytes(const col_spool *s)
{
    return s->bytes;
}

uint64_t col_spool_unread(const col_spool *s)
{
    uint64_t n = 0;
    for (size_t i = 0; i < s->n_segs; i++)
        n += s->segs[i].records - s->segs[i].handed;
    return n;
}

uint64_t col_spool_pending(const col_spool *s)
{
    uint64_t n = 0;
    for (size_t i = 0; i < s->n_segs; i++)
        n += s->segs[i].records - s->segs[i].acked;
    return n;
}
