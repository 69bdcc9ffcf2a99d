/* cor_incident.c -- incident ids and their JSON form. */
#include "cor_incident.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pasban/util.h"

void cor_incident_set_id(cor_incident *inc, const char *group_key, size_t key_len)
{
    /* NUL separators keep ("ab","c") and ("a","bc") apart. */
    char when[PSB_TIME_BUFSZ];
    size_t wl = psb_format_time_ms(inc->first_seen, when);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    if (!c || !EVP_DigestInit_ex(c, EVP_sha256(), NULL) ||
        !EVP_DigestUpdate(c, inc->rule->id, strlen(inc->rule->id) + 1) ||
        !EVP_DigestUpdate(c, group_key, key_len) || !EVP_DigestUpdate(c, "", 1) ||
        !EVP_DigestUpdate(c, when, wl) || !EVP_DigestFinal_ex(c, md, &mdlen))
        abort();
    EVP_MD_CTX_free(c);
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

void cor_incident_take_evidence(cor_incident *inc, char *p, size_t n)
{
    if (inc->n_evidence >= COR_MAX_EVIDENCE) {
        free(p);
        return;
    }
    inc->evidence[inc->n_evidence] = p;
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
