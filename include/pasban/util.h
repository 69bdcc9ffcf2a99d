/* util.h -- allocation, string slices and time helpers shared by every module.
 *
 * Allocation failure is not recoverable in Pasban: the psb_x* family prints a
 * message and aborts, so callers never check for NULL.
 */
#ifndef PASBAN_UTIL_H
#define PASBAN_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define PSB_VERSION "0.1.0"

/* A string slice: not NUL-terminated; points into memory someone else owns. */
typedef struct psb_str {
    const char *ptr;
    size_t len;
} psb_str;

#define PSB_STR_NULL ((psb_str){NULL, 0})
#define PSB_STR_LIT(s) ((psb_str){(s), sizeof(s) - 1})

static inline psb_str psb_str_make(const char *p, size_t n) { return (psb_str){p, n}; }
static inline bool psb_str_is_set(psb_str s) { return s.ptr != NULL; }
bool psb_str_eq(psb_str a, const char *cstr);
/* 1 to 18 ASCII digits: a number that fits int64_t (e.g. a PROCID that is a pid). */
bool psb_str_is_digits(psb_str s);

/* FNV-1a over n bytes, continuing from h (start with PSB_HASH_SEED): for hash
 * tables, never for anything that must resist an attacker or be stable on disk. */
#define PSB_HASH_SEED 1469598103934665603ULL
uint64_t psb_hash_bytes(const void *p, size_t n, uint64_t h);
uint64_t psb_hash_str(const char *s);
/* A quick hash of a short value for a direct-mapped cache (the matcher's kept
 * verdicts, the prefilter's memo): its first and last eight bytes and its length,
 * mixed; take the high bits. Values that share both ends and the length collide,
 * so a cache compares the value itself before it trusts a slot. */
static inline uint64_t psb_hash_short(const char *p, size_t n)
{
    uint64_t a = 0, b = 0;
    if (n >= 8) {
        memcpy(&a, p, 8);
        memcpy(&b, p + n - 8, 8);
    } else {
        for (size_t i = 0; i < n; i++)
            a = a << 8 | (unsigned char)p[i];
    }
    return (a * 0x9E3779B97F4A7C15u) ^ ((b + n) * 0xC2B2AE3D27D4EB4Fu);
}

void *psb_xmalloc(size_t n);
void *psb_xcalloc(size_t nmemb, size_t size);
void *psb_xrealloc(void *p, size_t n);
char *psb_xstrdup(const char *s);
char *psb_xstrndup(const char *s, size_t n);

/* Wall clock in milliseconds since the Unix epoch (UTC). */
int64_t psb_now_ms(void);

/* Days since 1970-01-01 of a proleptic Gregorian date (month 1..12). */
int64_t psb_days_from_civil(int64_t y, unsigned m, unsigned d);
/* Inverse of psb_days_from_civil. */
void psb_civil_from_days(int64_t days, int64_t *y, unsigned *m, unsigned *d);
/* 1 if y is a leap year. */
int psb_is_leap_year(int64_t y);
/* Days in month m (1..12) of year y. */
unsigned psb_days_in_month(int64_t y, unsigned m);

/* Write ms as RFC 3339 UTC with milliseconds ("2026-11-23T13:02:35.123Z") into buf,
 * which must hold PSB_TIME_BUFSZ bytes. Returns the length written (24 for years 0..9999). */
#define PSB_TIME_BUFSZ 32
size_t psb_format_time_ms(int64_t ms, char *buf);

/* Parse an RFC 3339 timestamp (fractions and offsets; "Z" or "+hh:mm") into ms UTC.
 * Returns 0 on success, -1 if s is not a valid RFC 3339 date-time. */
int psb_parse_rfc3339(const char *s, size_t len, int64_t *ms_out);

/* Parse a duration such as "90s", "15m", "4h", "2d", "500ms" into milliseconds.
 * Returns 0 on success, -1 on a malformed or negative duration. */
int psb_parse_duration_ms(const char *s, int64_t *ms_out);

/* Parse a fixed UTC offset "UTC", "GMT", "Z", "+03:30", "-0500" or "+08" into seconds
 * east of UTC. Returns 0 on success, -1 when the text is not such an offset. The _n
 * form takes a slice (a zone inside a log line). */
int psb_parse_utc_offset(const char *s, int32_t *seconds_out);
int psb_parse_utc_offset_n(const char *s, size_t len, int32_t *seconds_out);

#endif
