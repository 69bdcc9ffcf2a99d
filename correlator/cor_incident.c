/* cor_incident.c -- incident ids and their JSON form. */
#include "cor_incident.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <threads.h>

#include "pasban/util.h"

/* OpenSSL 3's one-shot SHA256() looks the algorithm up by name on every call,
 * which cost more than the hashing (half of an incident's CPU at 1000 rules):
 * fetch it once per process and keep it, read-only, until exit. */
static EVP_MD *sha256_md;
static once_flag sha256_once = ONCE_FLAG_INIT;

static void sha256_fetch(void)
{
    sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
    if (!sha256_md)
        abort(); /* libcrypto without its default provider: nothing works */
}

void cor_incident_set_id(cor_incident *inc, const char *group_key, size_t key_len, unsigned ordinal)
{
    /* SHA-256 of "rule id NUL group key NUL first_seen [NUL ordinal]": NULs keep
     * ("ab","c") and ("a","bc") apart; ordinal 0 adds nothing. */
    char when[PSB_TIME_BUFSZ + 16];
    size_t wl = psb_format_time_ms(inc->first_seen, when);
    if (ordinal)
        wl += (size_t)snprintf(when + wl, sizeof(when) - wl, "%c%u", '\0', ordinal);
    size_t il = strlen(inc->rule->id);
    char stackbuf[512];
    size_t n = il + 1 + key_len + 1 + wl;
    char *buf = n <= sizeof(stackbuf) ? stackbuf : psb_xmalloc(n);
    memcpy(buf, inc->rule->id, il + 1);
    memcpy(buf + il + 1, group_key, key_len);
    buf[il + 1 + key_len] = '\0';
    memcpy(buf + il + 2 + key_len, when, wl);
    call_once(&sha256_once, sha256_fetch);
    unsigned char md[EVP_MAX_MD_SIZE];
    if (!EVP_Digest(buf, n, md, NULL, sha256_md, NULL))
        abort();
    if (buf != stackbuf)
        free(buf);
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        inc->id[2 * i] = hex[md[i] >> 4];
        inc->id[2 * i + 1] = hex[md[i] & 15];
    }
    inc->id[32] = '\0';
}

void cor_incident_add_evidence(cor_incident *inc, const char *p, size_t n)
{
    if (inc->n_evidence >= COR_MAX_EVIDENCE)
        return;
    inc->evidence[inc->n_evidence] = psb_xstrndup(p ? p : "", n);
    inc->evidence_len[inc->n_evidence] = n;
    inc->n_evidence++;
}

static void put_time(cor_buf *b, const char *key, int64_t ms)
{
    char t[PSB_TIME_BUFSZ];
    size_t n = psb_format_time_ms(ms, t);
    cor_buf_puts(b, key);
    cor_buf_putc(b, '"');
    cor_buf_put(b, t, n);
    cor_buf_putc(b, '"');
}

void cor_incident_write(const cor_incident *inc, cor_buf *b)
{
    const cor_rule *r = inc->rule;
    char num[64];
    cor_buf_puts(b, "{\"id\":\"");
    cor_buf_puts(b, inc->id);
    cor_buf_puts(b, "\",\"rule\":{\"id\":");
    cor_buf_json_str(b, r->id, strlen(r->id));
    cor_buf_puts(b, ",\"title\":");
    cor_buf_json_str(b, r->title, strlen(r->title));
    cor_buf_puts(b, "},\"severity\":\"");
    cor_buf_puts(b, cor_severity_name(r->severity));
    cor_buf_puts(b, "\",\"category\":");
    cor_buf_json_str(b, r->category, strlen(r->category));
    if (inc->org) {
        cor_buf_puts(b, ",\"organization\":{\"id\":");
        cor_buf_json_str(b, inc->org, strlen(inc->org));
        cor_buf_putc(b, '}');
    }
    cor_buf_puts(b, ",\"group\":");
    cor_buf_puts(b, inc->group_json ? inc->group_json : "{}");
    put_time(b, ",\"first_seen\":", inc->first_seen);
    put_time(b, ",\"last_seen\":", inc->last_seen);
    put_time(b, ",\"detected_at\":", inc->detected_at);
    snprintf(num, sizeof(num), ",\"count\":%ld,\"suppressed\":%ld", inc->count, inc->suppressed);
    cor_buf_puts(b, num);
    cor_buf_puts(b, ",\"evidence\":[");
    for (size_t i = 0; i < inc->n_evidence; i++) {
        if (i)
            cor_buf_putc(b, ',');
        cor_buf_json_str(b, inc->evidence[i], inc->evidence_len[i]);
    }
    cor_buf_puts(b, "],\"status\":\"new\"}");
}

void cor_incident_free(cor_incident *inc)
{
    if (!inc)
        return;
    free(inc->org);
    free(inc->group_json);
    for (size_t i = 0; i < inc->n_evidence; i++)
        free(inc->evidence[i]);
    free(inc);
}
