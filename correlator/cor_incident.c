/* cor_incident.c -- incident ids and their JSON form. */
#include "cor_incident.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "pasban/util.h"

/* The digest is fetched once (a fetch is a method-store lookup under a lock; the
 * process's first one also starts the default provider, about 6 M instructions) and
 * the context is reused. OpenSSL 3.0's EVP_DigestInit_ex2 still frees and
 * reallocates the provider's SHA-256 state on every init (crypto/evp/digest.c), so an
 * id costs about 650 instructions more than through the SHA256_* functions
 * deprecated in 3.0 (3.5 k instead of 2.9 k). cor_incident_write saves more than that
 * per incident (each distinct time formatted once, quotes escaped on the fast path). */
struct cor_idgen {
    EVP_MD *sha256;
    EVP_MD_CTX *ctx;
};

cor_idgen *cor_idgen_new(void)
{
    cor_idgen *g = psb_xcalloc(1, sizeof(*g));
    g->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    g->ctx = EVP_MD_CTX_new();
    if (!g->sha256 || !g->ctx) {
        unsigned long err = ERR_get_error();
        fprintf(stderr, "pasban: OpenSSL gives no SHA-256 for incident ids: %s\n",
                err ? ERR_reason_error_string(err) : "out of memory");
        abort();
    }
    return g;
}

void cor_idgen_free(cor_idgen *g)
{
    if (!g)
        return;
    EVP_MD_CTX_free(g->ctx);
    EVP_MD_free(g->sha256);
    free(g);
}

/* The id's basis, "rule id NUL group key NUL first_seen [NUL ordinal]": NULs keep
 * ("ab","c") and ("a","bc") apart; ordinal 0 adds nothing. In stackbuf if it fits,
 * else in an allocated block the caller frees. */
static char *id_basis(const cor_rule *r, int64_t first_seen, const char *group_key,
                      size_t key_len, unsigned ordinal, char *stackbuf, size_t stack_size,
                      size_t *len)
{
    char when[PSB_TIME_BUFSZ + 16];
    size_t wl = psb_format_time_ms(first_seen, when);
    if (ordinal)
        wl += (size_t)snprintf(when + wl, sizeof(when) - wl, "%c%u", '\0', ordinal);
    size_t il = strlen(r->id);
    size_t n = il + 1 + key_len + 1 + wl;
    char *buf = n <= stack_size ? stackbuf : psb_xmalloc(n);
    memcpy(buf, r->id, il + 1);
    memcpy(buf + il + 1, group_key, key_len);
    buf[il + 1 + key_len] = '\0';
    memcpy(buf + il + 2 + key_len, when, wl);
    *len = n;
    return buf;
}

void cor_idgen_make_id(cor_idgen *g, char id[33], const cor_rule *r, int64_t first_seen,
                       const char *group_key, size_t key_len, unsigned ordinal)
{
    char stackbuf[512];
    size_t n;
    char *buf =
        id_basis(r, first_seen, group_key, key_len, ordinal, stackbuf, sizeof(stackbuf), &n);
    unsigned char md[EVP_MAX_MD_SIZE];
    /* Fails only on a broken provider; an id must never be made up. */
    if (EVP_DigestInit_ex2(g->ctx, g->sha256, NULL) != 1 ||
        EVP_DigestUpdate(g->ctx, buf, n) != 1 || EVP_DigestFinal_ex(g->ctx, md, NULL) != 1)
        abort();
    if (buf != stackbuf)
        free(buf);
    /* The id is the hex of the digest's first 16 bytes. */
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        id[2 * i] = hex[md[i] >> 4];
        id[2 * i + 1] = hex[md[i] & 15];
    }
    id[32] = '\0';
}

void cor_idgen_set_id(cor_idgen *g, cor_incident *inc, const char *group_key, size_t key_len,
                      unsigned ordinal)
{
    cor_idgen_make_id(g, inc->id, inc->rule, inc->first_seen, group_key, key_len, ordinal);
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

#if defined(__SSE2__)
/* word_special for the sixteen bytes at s. As signed chars the bytes from 0x80 are
 * negative, so one compare finds them with those below 0x20. */
static bool block_special(const char *s)
{
    __m128i v = _mm_loadu_si128((const __m128i *)(const void *)s);
    __m128i ctl_or_high = _mm_cmplt_epi8(v, _mm_set1_epi8(0x20));
    __m128i q = _mm_cmpeq_epi8(v, _mm_set1_epi8('"'));
    __m128i bs = _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'));
    return _mm_movemask_epi8(_mm_or_si128(ctl_or_high, _mm_or_si128(q, bs))) != 0;
}
#endif

/* A JSON string as cor_buf_json_str writes it. Evidence lines are mostly printable
 * ASCII, now and then with a '"' or '\\' (quoted fields of web and firewall logs):
 * plain runs are found sixteen (SSE2) or eight bytes at a time and copied whole,
 * those two are escaped here, and a line with any other byte needing care (a
 * control byte, UTF-8) is written by cor_buf_json_str instead. */
static void put_str(cor_buf *b, const char *s, size_t n)
{
    size_t start = b->len;
    cor_buf_reserve(b, n + 3);
    b->p[b->len++] = '"';
    size_t i = 0, run = 0; /* s[run .. i) is plain and not yet copied */
    for (;;) {
#if defined(__SSE2__)
        while (i + 16 <= n && !block_special(s + i))
            i += 16;
#endif
        for (;;) {
            uint64_t x;
            if (i + 8 > n)
                break;
            memcpy(&x, s + i, 8);
            if (word_special(x))
                break;
            i += 8;
        }
        /* Within eight bytes of the next special byte, or of the end. */
        while (i < n) {
            unsigned char c = (unsigned char)s[i];
            if (c < 0x20 || c >= 0x80 || c == '"' || c == '\\')
                break;
            i++;
        }
        if (i == n)
            break;
        char c = s[i];
        if (c != '"' && c != '\\') {
            b->len = start;
            cor_buf_json_str(b, s, n);
            return;
        }
        cor_buf_put(b, s + run, i - run);
        char e[2] = {'\\', c};
        cor_buf_put(b, e, 2);
        run = ++i;
    }
    cor_buf_put(b, s + run, n - run);
    cor_buf_putc(b, '"');
}

static void put_time(cor_buf *b, const char *key, size_t key_len, const char *t, size_t n)
{
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
    /* Most incidents have one instant for all three (an incident of one event, and
     * detected_at = last_seen in replay): each distinct one is formatted once. */
    char first[PSB_TIME_BUFSZ], last[PSB_TIME_BUFSZ], det[PSB_TIME_BUFSZ];
    size_t first_n = psb_format_time_ms(inc->first_seen, first);
    const char *last_p = first, *det_p;
    size_t last_n = first_n, det_n;
    if (inc->last_seen != inc->first_seen) {
        last_n = psb_format_time_ms(inc->last_seen, last);
        last_p = last;
    }
    if (inc->detected_at == inc->last_seen) {
        det_p = last_p;
        det_n = last_n;
    } else if (inc->detected_at == inc->first_seen) {
        det_p = first;
        det_n = first_n;
    } else {
        det_n = psb_format_time_ms(inc->detected_at, det);
        det_p = det;
    }
    put_time(b, ",\"first_seen\":", sizeof(",\"first_seen\":") - 1, first, first_n);
    put_time(b, ",\"last_seen\":", sizeof(",\"last_seen\":") - 1, last_p, last_n);
    put_time(b, ",\"detected_at\":", sizeof(",\"detected_at\":") - 1, det_p, det_n);
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
