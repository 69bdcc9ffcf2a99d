/* cor_incident.c -- incident ids and their JSON form. */
#include "cor_incident.h"

/* SHA256_Init/Update/Final are deprecated in OpenSSL 3 in favour of EVP, but EVP
 * costs an allocated context, a provider dispatch and its teardown per digest:
 * about as much as hashing an incident's 100 bytes. At 1000 rules an incident is
 * raised for one event in twenty, so the direct functions stay (same digest). */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pasban/util.h"

void cor_incident_set_id(cor_incident *inc, const char *group_key, size_t key_len, unsigned ordinal)
{
    cor_incident_make_id(inc->id, inc->rule, inc->first_seen, group_key, key_len, ordinal);
}

void cor_incident_make_id(char id[33], const cor_rule *r, int64_t first_seen, const char *group_key,
                          size_t key_len, unsigned ordinal)
{
    /* SHA-256 of "rule id NUL group key NUL first_seen [NUL ordinal]": NULs keep
     * ("ab","c") and ("a","bc") apart; ordinal 0 adds nothing. */
    char when[PSB_TIME_BUFSZ + 16];
    size_t wl = psb_format_time_ms(first_seen, when);
    if (ordinal)
        wl += (size_t)snprintf(when + wl, sizeof(when) - wl, "%c%u", '\0', ordinal);
    size_t il = strlen(r->id);
    char stackbuf[512];
    size_t n = il + 1 + key_len + 1 + wl;
    char *buf = n <= sizeof(stackbuf) ? stackbuf : psb_xmalloc(n);
    memcpy(buf, r->id, il + 1);
    memcpy(buf + il + 1, group_key, key_len);
    buf[il + 1 + key_len] = '\0';
    memcpy(buf + il + 2 + key_len, when, wl);
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256_CTX ctx;
    if (!SHA256_Init(&ctx) || !SHA256_Update(&ctx, buf, n) || !SHA256_Final(md, &ctx))
        abort();
    if (buf != stackbuf)
        free(buf);
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        id[2 * i] = hex[md[i] >> 4];
        id[2 * i + 1] = hex[md[i] & 15];
    }
    id[32] = '\0';
}

/* Copy n bytes to *at, NUL-terminated; advance *at past them. */
static char *put_copy(char **at, const char *p, size_t n)
{
    char *s = *at;
    if (n)
        memcpy(s, p, n);
    s[n] = '\0';
    *at = s + n + 1;
    return s;
}

cor_incident *cor_incident_new(const cor_rule *r, const char *org, size_t org_len, const char *json,
                               size_t json_len, const cor_evidence *ev, size_t n_ev)
{
    if (n_ev > COR_MAX_EVIDENCE)
        n_ev = COR_MAX_EVIDENCE;
    /* every length is of something in memory: the sum cannot overflow */
    size_t size = sizeof(cor_incident) + (org ? org_len + 1 : 0) + (json ? json_len + 1 : 0);
    for (size_t i = 0; i < n_ev; i++)
        size += ev[i].n + 1;
    cor_incident *inc = psb_xmalloc(size);
    memset(inc, 0, sizeof(*inc));
    inc->rule = r;
    char *at = (char *)(inc + 1);
    if (org)
        inc->org = put_copy(&at, org, org_len);
    if (json)
        inc->group_json = put_copy(&at, json, json_len);
    for (size_t i = 0; i < n_ev; i++) {
        inc->evidence[i] = put_copy(&at, ev[i].p, ev[i].n);
        inc->evidence_len[i] = ev[i].n;
    }
    inc->n_evidence = n_ev;
    return inc;
}

/* A string literal, without strlen at run time. */
#define PUT_LIT(b, s) cor_buf_put((b), (s), sizeof(s) - 1)

/* Does any of the eight bytes of x need cor_buf_json_str's care: below 0x20, from
 * 0x80 (UTF-8, checked there), '"' or '\\'? (Bytes are compared as if each
 * were alone: no carry crosses from one to the next.) */
static bool word_special(uint64_t x)
{
    const uint64_t ones = 0x0101010101010101u, high = 0x8080808080808080u;
    uint64_t lo = (x & ~high) + ones * (0x80 - 0x20); /* high bit set: low 7 bits >= 0x20 */
    uint64_t q = (x ^ ones * '"') & ~high;
    uint64_t bs = (x ^ ones * '\\') & ~high;
    uint64_t is_q = ~((q + ones * 0x7f) | q) & high;    /* byte == '"' (or 0xa2) */
    uint64_t is_bs = ~((bs + ones * 0x7f) | bs) & high; /* byte == '\\' (or 0xdc) */
    return ((x | ~lo) & high) || is_q || is_bs;
}

/* A JSON string as cor_buf_json_str writes it. Evidence lines are mostly printable
 * ASCII: those are checked eight bytes at a time and copied whole; anything else
 * goes to cor_buf_json_str. */
static void put_str(cor_buf *b, const char *s, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t x;
        memcpy(&x, s + i, 8);
        if (word_special(x))
            goto general;
    }
    for (; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c >= 0x80 || c == '"' || c == '\\')
            goto general;
    }
    cor_buf_reserve(b, n + 3);
    b->p[b->len++] = '"';
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len++] = '"';
    b->p[b->len] = '\0';
    return;
general:
    cor_buf_json_str(b, s, n);
}

/* A formatted time, kept for the next field: first_seen, last_seen and detected_at
 * are mostly one and the same (every incident of a single rule). */
typedef struct time_text {
    int64_t ms;
    size_t n; /* 0: nothing formatted yet */
    char t[PSB_TIME_BUFSZ];
} time_text;

static void put_time(cor_buf *b, const char *key, size_t key_len, int64_t ms, time_text *tt)
{
    if (!tt->n || tt->ms != ms) {
        tt->n = psb_format_time_ms(ms, tt->t);
        tt->ms = ms;
    }
    const char *t = tt->t;
    size_t n = tt->n;
    cor_buf_reserve(b, key_len + n + 3);
    memcpy(b->p + b->len, key, key_len);
    b->len += key_len;
    b->p[b->len++] = '"';
    memcpy(b->p + b->len, t, n);
    b->len += n;
    b->p[b->len++] = '"';
    b->p[b->len] = '\0';
}

/* %ld without snprintf (most of an incident's formatting time otherwise). */
static void put_long(cor_buf *b, long v)
{
    char tmp[24];
    size_t i = sizeof(tmp);
    unsigned long u = v < 0 ? 0ul - (unsigned long)v : (unsigned long)v;
    do {
        tmp[--i] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        tmp[--i] = '-';
    cor_buf_put(b, tmp + i, sizeof(tmp) - i);
}

void cor_incident_write(const cor_incident *inc, cor_buf *b)
{
    const cor_rule *r = inc->rule;
    PUT_LIT(b, "{\"id\":\"");
    cor_buf_puts(b, inc->id);
    PUT_LIT(b, "\",\"rule\":{\"id\":");
    put_str(b, r->id, strlen(r->id));
    PUT_LIT(b, ",\"title\":");
    put_str(b, r->title, strlen(r->title));
    PUT_LIT(b, "},\"severity\":\"");
    cor_buf_puts(b, cor_severity_name(r->severity));
    PUT_LIT(b, "\",\"category\":");
    put_str(b, r->category, strlen(r->category));
    if (inc->org) {
        PUT_LIT(b, ",\"organization\":{\"id\":");
        put_str(b, inc->org, strlen(inc->org));
        cor_buf_putc(b, '}');
    }
    PUT_LIT(b, ",\"group\":");
    cor_buf_puts(b, inc->group_json ? inc->group_json : "{}");
    time_text tt = {0, 0, {0}};
    put_time(b, ",\"first_seen\":", sizeof(",\"first_seen\":") - 1, inc->first_seen, &tt);
    put_time(b, ",\"last_seen\":", sizeof(",\"last_seen\":") - 1, inc->last_seen, &tt);
    put_time(b, ",\"detected_at\":", sizeof(",\"detected_at\":") - 1, inc->detected_at, &tt);
    PUT_LIT(b, ",\"count\":");
    put_long(b, inc->count);
    PUT_LIT(b, ",\"suppressed\":");
    put_long(b, inc->suppressed);
    PUT_LIT(b, ",\"evidence\":[");
    for (size_t i = 0; i < inc->n_evidence; i++) {
        if (i)
            cor_buf_putc(b, ',');
        put_str(b, inc->evidence[i], inc->evidence_len[i]);
    }
    PUT_LIT(b, "],\"status\":\"new\"}");
}

void cor_incident_free(cor_incident *inc)
{
    free(inc); /* its strings are in the same block */
}
