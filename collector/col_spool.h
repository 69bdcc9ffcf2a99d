/* col_spool.h -- the collector's disk spool: events Kafka could not take yet.
 *
 * A directory of segment files seg-<id>.spool, written in order. Each record is
 *     u32 length (LE) | u32 CRC32C of the payload (LE) | payload
 * and the payload is  u16 key length (LE) | key | value.
 * Records are handed out in write order and acknowledged once Kafka has them;
 * a segment is deleted when every record in it is read and acknowledged. On
 * open every segment is checked: a torn or corrupt record (a crash mid-write,
 * a bad disk) is logged and the segment is cut there. Nothing acknowledges a
 * read position across restarts, so a crash can replay a record twice, never
 * lose one.
 */
#ifndef COL_SPOOL_H
#define COL_SPOOL_H

#include <stddef.h>
#include <stdint.h>

typedef struct col_spool col_spool;

typedef struct col_spool_opts {
    uint64_t max_bytes;     /* total on disk; past it append fails (spool full) */
    uint64_t segment_bytes; /* a segment is closed and a new one begun past this */
    int fsync;              /* enum col_fsync (col_config.h) */
} col_spool_opts;

/* One record handed out by col_spool_next. key/value point into the spool and
 * stay valid until the next call on it. */
typedef struct col_spool_rec {
    const char *key;
    size_t key_len;
    const char *value;
    size_t value_len;
    uint64_t segment; /* pass back to col_spool_ack */
} col_spool_rec;

#define COL_SPOOL_MAX_RECORD (16u << 20)

/* Open (creating) dir and check every segment in it. NULL with err on failure
 * (the directory cannot be made, is locked by another collector, ...). */
col_spool *col_spool_open(const char *dir, const col_spool_opts *opts, char *err, size_t errlen);
/* Syncs and closes. Unread records stay on disk for the next open. Accepts NULL. */
void col_spool_free(col_spool *s);

/* Append one record. Returns 0, or -1 when the spool is full (errno ENOSPC) or
 * the disk failed (errno from the system). */
int col_spool_append(col_spool *s, const char *key, size_t key_len, const char *value,
                     size_t value_len);
/* Next unread record in write order: 1 with *rec set, 0 when none, -1 on I/O error. */
int col_spool_next(col_spool *s, col_spool_rec *rec);
/* A record of segment seg is safely elsewhere (delivered, or spooled again). */
void col_spool_ack(col_spool *s, uint64_t segment);
/* Make appended records durable. 0 / -1. */
int col_spool_sync(col_spool *s);

uint64_t col_spool_bytes(const col_spool *s);   /* on disk now */
uint64_t col_spool_unread(const col_spool *s);  /* records not handed out yet */
uint64_t col_spool_pending(const col_spool *s); /* records not acknowledged yet */
/* True when a record of this size would fit. */
int col_spool_has_room(const col_spool *s, size_t key_len, size_t value_len);

/* CRC32C (Castagnoli), as the record checksum. */
uint32_t col_crc32c(uint32_t crc, const void *data, size_t len);

#endif
