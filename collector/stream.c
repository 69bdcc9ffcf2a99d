/* stream.c -- syslog over TCP and TLS (RFC 6587 framing, RFC 5425).
 *
 * One col_conn per client, freed only in conn_close(). Bytes move from the
 * bufferevent into the connection's own buffer (bounded by
 * limits.connection_buffer) and frames are cut from there, each one detected
 * as octet-counted or LF on its own. When Kafka and the spool are full the
 * connection stops reading (bufferevent_disable) and keeps its unprocessed
 * bytes; the loop's tick resumes it when there is room.
 */
#include <errno.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>

#include "col_ctx.h"
#include "pasban/frame.h"
#include "pasban/util.h"

struct col_conn {
    col_ctx *c;
    struct bufferevent *bev;
    int input;     /* COL_INPUT_TCP or COL_INPUT_TLS */
    col_stats *st; /* NULL until a TLS client is identified */
    char peer[64];
    struct sockaddr_storage addr;
    char *buf;
    size_t len;
    size_t cap;
    int64_t partial_since; /* when the buffer began holding an unfinished frame */
    int paused;
    int eof;
    col_conn *prev, *next; /* c->conns */
    col_conn *pnext;       /* c->paused */
};

/* why (may be NULL) is logged, rate-limited in its own slot so one kind of
 * trouble does not hide another. */
static void conn_close_slot(col_conn *k, const char *why, int slot)
{
    col_ctx *c = k->c;
    if (why)
        col_log_limited(c, slot, "%s %s: %s", col_input_name(k->input), k->peer, why);
    if (k->paused) {
        for (col_conn **pp = &c->paused; *pp; pp = &(*pp)->pnext)
            if (*pp == k) {
                *pp = k->pnext;
                break;
            }
    }
    if (k->prev)
        k->prev->next = k->next;
    else
        c->conns = k->next;
    if (k->next)
        k->next->prev = k->prev;
    c->n_conns--;
    c->istats[k->input].open--;
    bufferevent_free(k->bev);
    free(k->buf);
    free(k);
}

static void conn_close(col_conn *k, const char *why)
{
    conn_close_slot(k, why, COL_LOG_LIMIT);
}

static void conn_pause(col_conn *k)
{
    if (k->paused)
        return;
    k->paused = 1;
    bufferevent_disable(k->bev, EV_READ);
    k->pnext = k->c->paused;
    k->c->paused = k;
}

static int oversized_len(const char *p, size_t n, size_t max)
{
    size_t i = 0;
    uint64_t v = 0;
    if (n == 0 || p[0] < '1' || p[0] > '9')
        return 0;
    while (i < n && i < 12 && p[i] >= '0' && p[i] <= '9')
        v = v * 10 + (uint64_t)(p[i++] - '0');
    return i < n && p[i] == ' ' && v > max;
}

/* Cut and send every complete frame in k->buf. Returns -1 when k was closed. */
static int conn_process(col_conn *k)
{
    col_ctx *c = k->c;
    size_t off = 0;
    psb_frame f;
    int rc = 0;
    /* One clock read per batch of frames: event.created has millisecond resolution. */
    c->batch_ms = psb_now_ms();
    while (off < k->len && !k->paused) {
        rc = psb_frame_next(k->buf + off, k->len - off, c->cfg->max_message, k->eof, &f);
        if (rc == 0) {
            /* The framer would wait for the end of a line to skip a refused
             * MSG-LEN; a stream that announces an oversized frame is closed now. */
            if (oversized_len(k->buf + off, k->len - off, c->cfg->max_message)) {
                rc = -1;
                f.error = "MSG-LEN above the maximum frame size";
            } else {
                /* Empty lines before an unfinished frame (a sender ending each
                 * message with "\n\n") are dropped now, or they would look like
                 * a frame that never completes. */
                off += f.consumed;
                break;
            }
        }
        if (rc < 0 && f.framing == PSB_FRAMING_LF && strstr(f.error, "LF frame")) {
            /* An over-long line: its end is known (or comes back as the next
             * frames), so the bytes go on as a pipeline_error and the frames
             * behind them still count. */
            if (col_ingest_error(c, k->st, f.msg, f.len, k->peer, f.error) != 0) {
                conn_pause(k);
                break;
            }
            c->istats[k->input].oversized++;
            col_log_limited(c, COL_LOG_FRAME, "%s %s: %s; forwarded as pipeline_error",
                            col_input_name(k->input), k->peer, f.error);
            off += f.consumed;
            continue;
        }
        if (rc < 0) {
            c->istats[k->input].framing_errors++;
            if (strstr(f.error, "maximum"))
                c->istats[k->input].oversized++;
            /* An octet count that cannot be trusted (too large, or cut by the
             * end of the stream) leaves no frame boundary to resume at: close. */
            char why[160];
            snprintf(why, sizeof why, "framing error (%s); closing", f.error);
            c->batch_ms = 0;
            conn_close_slot(k, why, COL_LOG_FRAME);
            return -1;
        }
        if (col_ingest(c, k->st, f.msg, f.len, k->peer, NULL) != 0) {
            conn_pause(k);
            break;
        }
        off += f.consumed;
    }
    c->batch_ms = 0;
    if (off) {
        memmove(k->buf, k->buf + off, k->len - off);
        k->len -= off;
    }
    if (k->len == 0)
        k->partial_since = 0;
    else if (!k->paused && k->partial_since == 0)
        k->partial_since = psb_now_ms();
    if (k->eof && !k->paused) {
        if (k->len) {
            c->istats[k->input].framing_errors++;
            conn_close_slot(k, "connection closed inside a frame", COL_LOG_FRAME);
        } else {
            conn_close(k, NULL);
        }
        return -1;
    }
    return 0;
}

static void conn_read(struct bufferevent *bev, void *arg)
{
    col_conn *k = arg;
    col_ctx *c = k->c;
    struct evbuffer *in = bufferevent_get_input(bev);
    if (!k->st || k->paused)
        return;
    while (evbuffer_get_length(in) > 0) {
        if (k->len == k->cap) {
            /* A full buffer without a complete frame: the framer would have
             * failed a frame above max_message, so this is a client that never
             * ends its frame. */
            c->istats[k->input].oversized++;
            conn_close(k, "connection buffer full without a complete frame; closing");
            return;
        }
        int n = evbuffer_remove(in, k->buf + k->len, k->cap - k->len);
        if (n <= 0)
            break;
        k->len += (size_t)n;
        if (conn_process(k) != 0)
            return;
        if (k->paused)
            return;
    }
    /* Slowloris: bytes trickling in keep the idle timer happy, so also bound
     * how long one frame may take to arrive. */
    if (k->partial_since && psb_now_ms() - k->partial_since > c->cfg->idle_timeout_ms) {
        c->istats[k->input].idle_timeouts++;
        conn_close(k, "frame not completed within the idle timeout; closing");
    }
}

static int tls_identify(col_conn *k)
{
    col_ctx *c = k->c;
    SSL *ssl = bufferevent_openssl_get_ssl(k->bev);
    const char *op = NULL;
    char name[256];
    X509 *cert = ssl ? SSL_get1_peer_certificate(ssl) : NULL;
    if (cert) {
        GENERAL_NAMES *sans = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
        for (int i = 0; sans && !op && i < sk_GENERAL_NAME_num(sans); i++) {
            const GENERAL_NAME *g = sk_GENERAL_NAME_value(sans, i);
            if (g->type != GEN_DNS && g->type != GEN_EMAIL)
                continue;
            const ASN1_STRING *s = g->d.ia5;
            int len = ASN1_STRING_length(s);
            if (len <= 0 || (size_t)len >= sizeof name)
                continue;
            memcpy(name, ASN1_STRING_get0_data(s), (size_t)len);
            name[len] = '\0';
            if (strlen(name) == (size_t)len)
                op = col_opmap_by_tls_name(&c->cfg->opmap, name);
        }
        GENERAL_NAMES_free(sans);
        if (!op) {
            int len = X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, name,
                                                sizeof name);
            if (len > 0 && strlen(name) == (size_t)len)
                op = col_opmap_by_tls_name(&c->cfg->opmap, name);
        }
        X509_free(cert);
    }
    if (!op) {
        if (c->cfg->tls_ca) {
            /* With client certificates required, a certificate that maps to no
             * operator must not fall back to someone else's identity. */
            c->istats[COL_INPUT_TLS].tls_refused++;
            conn_close_slot(k,
                            cert ? "client certificate maps to no operator; refused"
                                 : "no client certificate; refused",
                            COL_LOG_TLS);
            return -1;
        }
        op = col_op_for_addr(c, (struct sockaddr *)&k->addr);
    }
    k->st = col_stats_get(c, COL_INPUT_TLS, op);
    return 0;
}

static void conn_event(struct bufferevent *bev, short what, void *arg)
{
    col_conn *k = arg;
    col_ctx *c = k->c;
    (void)bev;
    if (what & BEV_EVENT_CONNECTED) {
        if (k->input == COL_INPUT_TLS && tls_identify(k) == 0)
            conn_read(k->bev, k);
        return;
    }
    if (what & BEV_EVENT_TIMEOUT) {
        c->istats[k->input].idle_timeouts++;
        conn_close(k, "idle timeout; closing");
        return;
    }
    if (what & BEV_EVENT_ERROR) {
        if (k->input == COL_INPUT_TLS && !k->st) {
            unsigned long e = bufferevent_get_openssl_error(k->bev);
            char buf[256] = "handshake failed";
            if (e)
                ERR_error_string_n(e, buf, sizeof buf);
            c->istats[COL_INPUT_TLS].tls_refused++;
            char why[320];
            snprintf(why, sizeof why, "TLS refused: %s", buf);
            conn_close_slot(k, why, COL_LOG_TLS);
            return;
        }
        if (EVUTIL_SOCKET_ERROR() != 0 && k->len == 0) {
            conn_close(k, NULL);
            return;
        }
    }
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
        if (!k->st) {
            conn_close(k, NULL);
            return;
        }
        /* Whatever is still in the bufferevent arrived before the close. */
        k->eof = 1;
        struct evbuffer *in = bufferevent_get_input(k->bev);
        while (evbuffer_get_length(in) > 0 && k->len < k->cap) {
            int n = evbuffer_remove(in, k->buf + k->len, k->cap - k->len);
            if (n <= 0)
                break;
            k->len += (size_t)n;
            k->eof = evbuffer_get_length(in) == 0;
            if (conn_process(k) != 0 || k->paused)
                return;
        }
        k->eof = 1;
        conn_process(k);
    }
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
                      void *arg)
{
    col_ctx *c = arg;
    int input = COL_INPUT_TCP;
    for (size_t i = 0; i < c->n_listeners; i++)
        if (c->listeners[i] == l)
            input = c->listener_input[i];
    if (c->n_conns >= c->cfg->max_connections) {
        char peer[64];
        col_addr_text(sa, peer, sizeof peer);
        c->istats[input].connections_refused++;
        col_log_limited(c, COL_LOG_CONN, "%s %s: refused, %zu connections open (the limit)",
                        col_input_name(input), peer, c->n_conns);
        evutil_closesocket(fd);
        return;
    }
    col_conn *k = psb_xcalloc(1, sizeof *k);
    k->c = c;
    k->input = input;
    memcpy(&k->addr, sa, (size_t)salen < sizeof k->addr ? (size_t)salen : sizeof k->addr);
    col_addr_text(sa, k->peer, sizeof k->peer);
    k->cap = c->cfg->conn_buffer;
    k->buf = psb_xmalloc(k->cap);
    if (input == COL_INPUT_TLS) {
        SSL *ssl = SSL_new(c->ssl_ctx);
        k->bev = ssl ? bufferevent_openssl_socket_new(c->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                                      BEV_OPT_CLOSE_ON_FREE)
                     : NULL;
        if (k->bev)
            bufferevent_openssl_set_allow_dirty_shutdown(k->bev, 1);
    } else {
        k->bev = bufferevent_socket_new(c->base, fd, BEV_OPT_CLOSE_ON_FREE);
        k->st = col_stats_get(c, input, col_op_for_addr(c, sa));
    }
    if (!k->bev) {
        evutil_closesocket(fd);
        free(k->buf);
        free(k);
        return;
    }
    k->next = c->conns;
    if (c->conns)
        c->conns->prev = k;
    c->conns = k;
    c->n_conns++;
    c->istats[input].connections++;
    c->istats[input].open++;
    struct timeval tv = {c->cfg->idle_timeout_ms / 1000, (c->cfg->idle_timeout_ms % 1000) * 1000};
    bufferevent_set_timeouts(k->bev, &tv, NULL);
    /* Read no further ahead than the connection buffer can take. */
    bufferevent_setwatermark(k->bev, EV_READ, 0, k->cap);
    bufferevent_setcb(k->bev, conn_read, NULL, conn_event, k);
    bufferevent_enable(k->bev, EV_READ);
}

static void on_accept_error(struct evconnlistener *l, void *arg)
{
    col_ctx *c = arg;
    (void)l;
    int e = EVUTIL_SOCKET_ERROR();
    col_log_limited(c, COL_LOG_CONN, "accept: %s", evutil_socket_error_to_string(e));
}

int col_stream_listen(col_ctx *c, const col_listen *l, char *err, size_t errlen)
{
    struct evutil_addrinfo hints = {0}, *ai = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = EVUTIL_AI_PASSIVE | EVUTIL_AI_NUMERICHOST;
    int rc = evutil_getaddrinfo(l->host, l->port, &hints, &ai);
    if (rc != 0) {
        snprintf(err, errlen, "listen %s://%s:%s: %s", col_input_name(l->input), l->host, l->port,
                 evutil_gai_strerror(rc));
        return -1;
    }
    struct evconnlistener *lis = evconnlistener_new_bind(
        c->base, on_accept, c, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
        1024, ai->ai_addr, (int)ai->ai_addrlen);
    evutil_freeaddrinfo(ai);
    if (!lis) {
        snprintf(err, errlen, "listen %s://%s:%s: %s", col_input_name(l->input), l->host, l->port,
                 strerror(errno));
        return -1;
    }
    evconnlistener_set_error_cb(lis, on_accept_error);
    c->listeners[c->n_listeners] = lis;
    c->listener_input[c->n_listeners] = l->input;
    c->n_listeners++;
    return 0;
}

int col_tls_setup(col_ctx *c, char *err, size_t errlen)
{
    col_config *cfg = c->cfg;
    if (!cfg->tls_cert || !cfg->tls_key) {
        snprintf(err, errlen, "a tls:// listener needs tls.cert and tls.key in the config");
        return -1;
    }
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx)
        goto ssl_fail;
    c->ssl_ctx = ctx;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    if (SSL_CTX_use_certificate_chain_file(ctx, cfg->tls_cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, cfg->tls_key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1)
        goto ssl_fail;
    if (cfg->tls_ca) {
        if (SSL_CTX_load_verify_locations(ctx, cfg->tls_ca, NULL) != 1)
            goto ssl_fail;
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    }
    return 0;
ssl_fail : {
    char buf[256] = "unknown error";
    unsigned long e = ERR_get_error();
    if (e)
        ERR_error_string_n(e, buf, sizeof buf);
    snprintf(err, errlen, "tls (cert %s, key %s%s%s): %s", cfg->tls_cert, cfg->tls_key,
             cfg->tls_ca ? ", ca " : "", cfg->tls_ca ? cfg->tls_ca : "", buf);
    return -1;
}
}

void col_stream_resume(col_ctx *c)
{
    col_conn *list = c->paused;
    c->paused = NULL;
    while (list) {
        col_conn *k = list;
        list = k->pnext;
        k->pnext = NULL;
        k->paused = 0;
        if (!col_out_has_room(c, 1, c->cfg->max_message)) {
            conn_pause(k);
            continue;
        }
        bufferevent_enable(k->bev, EV_READ);
        if (conn_process(k) != 0 || k->paused)
            continue;
        /* Bytes that arrived while paused are still in the bufferevent. */
        conn_read(k->bev, k);
    }
}

void col_stream_stop(col_ctx *c)
{
    for (size_t i = 0; i < c->n_listeners; i++)
        evconnlistener_free(c->listeners[i]);
    c->n_listeners = 0;
    /* Frames already received are processed; then every connection closes. */
    while (c->conns) {
        col_conn *k = c->conns;
        if (k->st && !k->paused) {
            k->eof = 0;
            if (conn_process(k) != 0)
                continue;
        }
        if (k->len)
            col_log("%s %s: closing at shutdown with %zu unprocessed bytes",
                    col_input_name(k->input), k->peer, k->len);
        conn_close(k, NULL);
    }
    c->paused = NULL;
}
