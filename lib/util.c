/* util.c -- allocation, slices, calendar arithmetic and time text. */
#include "pasban/util.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void psb_oom(size_t n)
{
    fprintf(stderr, "pasban: out of memory allocating %zu bytes\n", n);
    abort();
}

void *psb_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        psb_oom(n);
    return p;
}

void *psb_xcalloc(size_t nmemb, size_t size)
{
    void *p = calloc(nmemb ? nmemb : 1, size ? size : 1);
    if (!p)
        psb_oom(nmemb * size);
    return p;
}

void *psb_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        psb_oom(n);
    return q;
}

char *psb_xstrndup(const char *s, size_t n)
{
    char *p = psb_xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *psb_xstrdup(const char *s)
{
    return psb_xstrndup(s, strlen(s));
}

bool psb_str_eq(psb_str a, const char *cstr)
{
    size_t n = strlen(cstr);
    return a.ptr && a.len == n && memcmp(a.ptr, cstr, n) == 0;
}

bool psb_str_is_digits(psb_str s)
{
    if (!s.ptr || !s.len || s.len > 18)
        return false;
    for (size_t i = 0; i < s.len; i++)
        if (s.ptr[i] < '0' || s.ptr[i] > '9')
            return false;
    return true;
}

uint64_t psb_hash_bytes(const void *p, size_t n, uint64_t h)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 1099511628211ULL;
    }
    return h;
}

uint64_t psb_hash_str(const char *s)
{
    return psb_hash_bytes(s, strlen(s), PSB_HASH_SEED);
}

int64_t psb_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Howard Hinnant's days_from_civil: exact for the whole proleptic Gregorian
 * calendar, no timegm() and no TZ environment involved. */
int64_t psb_days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

void psb_civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const unsigned doe = (unsigned)(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

int psb_is_leap_year(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

unsigned psb_days_in_month(int64_t y, unsigned m)
{
    static const unsigned char dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m < 1 || m > 12)
        return 0;
    return dim[m - 1] + (m == 2 && psb_is_leap_year(y));
}

static void put2(char *p, unsigned v)
{
    p[0] = (char)('0' + v / 10 % 10);
    p[1] = (char)('0' + v % 10);
}

size_t psb_format_time_ms(int64_t ms, char *buf)
{
    int64_t days = ms / 86400000;
    int64_t rem = ms % 86400000;
    if (rem < 0) {
        rem += 86400000;
        days--;
    }
    int64_t y;
    unsigned mo, d;
    psb_civil_from_days(days, &y, &mo, &d);
    unsigned secs = (unsigned)(rem / 1000), msec = (unsigned)(rem % 1000);
    if (y < 0 || y > 9999) /* outside RFC 3339's four-digit years: clamp, never overflow buf */
        y = y < 0 ? 0 : 9999;
    char *p = buf;
    put2(p, (unsigned)(y / 100));
    put2(p + 2, (unsigned)(y % 100));
    p[4] = '-';
    put2(p + 5, mo);
    p[7] = '-';
    put2(p + 8, d);
    p[10] = 'T';
    put2(p + 11, secs / 3600);
    p[13] = ':';
    put2(p + 14, secs / 60 % 60);
    p[16] = ':';
    put2(p + 17, secs % 60);
    p[19] = '.';
    p[20] = (char)('0' + msec / 100);
    put2(p + 21, msec % 100);
    p[23] = 'Z';
    p[24] = '\0';
    return 24;
}

static int digits(const char *s, size_t n, unsigned *out)
{
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    *out = v;
    return 0;
}

int psb_parse_rfc3339(const char *s, size_t len, int64_t *ms_out)
{
    unsigned y, mo, d, h, mi, sec, frac_ms = 0;
    /* YYYY-MM-DDTHH:MM:SS is 19 characters, then optional fraction, then zone. */
    if (len < 20 || digits(s, 4, &y) || s[4] != '-' || digits(s + 5, 2, &mo) || s[7] != '-' ||
        digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't') || digits(s + 11, 2, &h) ||
        s[13] != ':' || digits(s + 14, 2, &mi) || s[16] != ':' || digits(s + 17, 2, &sec))
        return -1;
    if (mo < 1 || mo > 12 || d < 1 || d > psb_days_in_month(y, mo) || h > 23 || mi > 59 ||
        sec > 60)
        return -1;
    size_t i = 19;
    if (i < len && s[i] == '.') {
        size_t start = ++i;
        unsigned scale = 100;
        while (i < len && s[i] >= '0' && s[i] <= '9') {
            frac_ms += (unsigned)(s[i] - '0') * scale;
            scale /= 10;
            i++;
        }
        if (i == start || i - start > 9) /* RFC 5424 allows up to 6; accept nanoseconds */
            return -1;
    }
    if (i >= len)
        return -1;
    int offset_min = 0;
    if (s[i] == 'Z' || s[i] == 'z') {
        i++;
    } else if (s[i] == '+' || s[i] == '-') {
        unsigned oh, om;
        if (len - i != 6 || digits(s + i + 1, 2, &oh) || s[i + 3] != ':' ||
            digits(s + i + 4, 2, &om) || oh > 23 || om > 59)
            return -1;
        offset_min = (int)(oh * 60 + om) * (s[i] == '-' ? -1 : 1);
        i += 6;
    } else {
        return -1;
    }
    if (i != len)
        return -1;
    if (sec == 60) /* leap second: the instant is the next second's start */
        sec = 59, frac_ms = 999;
    int64_t days = psb_days_from_civil(y, mo, d);
    int64_t t = days * 86400 + h * 3600 + mi * 60 + sec - (int64_t)offset_min * 60;
    *ms_out = t * 1000 + frac_ms;
    return 0;
}

int psb_parse_duration_ms(const char *s, int64_t *ms_out)
{
    if (!s || !isdigit((unsigned char)*s))
        return -1;
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (errno || v < 0)
        return -1;
    int64_t mult;
    if (strcmp(end, "ms") == 0)
        mult = 1;
    else if (strcmp(end, "s") == 0 || *end == '\0')
        mult = 1000;
    else if (strcmp(end, "m") == 0)
        mult = 60000;
    else if (strcmp(end, "h") == 0)
        mult = 3600000;
    else if (strcmp(end, "d") == 0)
        mult = 86400000;
    else
        return -1;
    if (v > INT64_MAX / mult)
        return -1;
    *ms_out = (int64_t)v * mult;
    return 0;
}

int psb_parse_utc_offset_n(const char *s, size_t n, int32_t *seconds_out)
{
    if ((n == 3 && (memcmp(s, "UTC", 3) == 0 || memcmp(s, "GMT", 3) == 0)) ||
        (n == 1 && s[0] == 'Z')) {
        *seconds_out = 0;
        return 0;
    }
    unsigned h, m = 0;
    if (n < 3 || (s[0] != '+' && s[0] != '-') || digits(s + 1, 2, &h))
        return -1;
    size_t i = 3;
    if (i < n && s[i] == ':')
        i++;
    if (i + 2 == n && !digits(s + i, 2, &m)) {
    } else if (i != n || n == 4) { /* "+hh" alone is fine, "+hh:" is not */
        return -1;
    }
    if (h > 23 || m > 59)
        return -1;
    *seconds_out = (int32_t)((h * 3600 + m * 60) * (s[0] == '-' ? -1 : 1));
    return 0;
}

int psb_parse_utc_offset(const char *s, int32_t *seconds_out)
{
    return psb_parse_utc_offset_n(s, strlen(s), seconds_out);
}
