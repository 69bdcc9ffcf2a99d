/* udp.c -- syslog over UDP: one datagram, one message, drained with recvmmsg.
 *
 * UDP has no way to slow a sender down, so when Kafka and the spool are both
 * full a datagram is dropped -- and counted, per operator. Datagrams the kernel
 * dropped before we could read them are counted too (SO_RXQ_OVFL).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "col_ctx.h"
#include "pasban/util.h"

#define UDP_BATCH 32

static void on_udp(evutil_socket_t fd, short what, void *arg)
{
    col_ctx *c = arg;
    (void)what;
    size_t slot = 0;
    for (size_t i = 0; i < c->n_udp; i++)
        if (c->udp_fds[i] == fd)
            slot = i;
    size_t dsize = c->cfg->max_message + 1;
    struct mmsghdr msgs[UDP_BATCH];
    struct iovec iov[UDP_BATCH];
    struct sockaddr_storage addrs[UDP_BATCH];
    union {
        char buf[CMSG_SPACE(sizeof(uint32_t))];
        struct cmsghdr align;
    } ctl[UDP_BATCH];
    char peer[64];
    /* Bounded work per wake-up so TCP and Kafka get their turn. */
    for (int round = 0; round < 8; round++) {
        memset(msgs, 0, sizeof msgs);
        for (size_t i = 0; i < UDP_BATCH; i++) {
            iov[i].iov_base = c->udp_buf + i * dsize;
            iov[i].iov_len = dsize;
            msgs[i].msg_hdr.msg_iov = &iov[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
            msgs[i].msg_hdr.msg_name = &addrs[i];
            msgs[i].msg_hdr.msg_namelen = sizeof addrs[i];
            msgs[i].msg_hdr.msg_control = ctl[i].buf;
            msgs[i].msg_hdr.msg_controllen = sizeof ctl[i].buf;
        }
        int n = recvmmsg(fd, msgs, UDP_BATCH, MSG_DONTWAIT, NULL);
        if (n <= 0) {
            if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                col_log_limited(c, COL_LOG_UDP, "udp recvmmsg: %s", strerror(errno));
            return;
        }
        c->batch_ms = psb_now_ms();
        for (int i = 0; i < n; i++) {
            struct msghdr *h = &msgs[i].msg_hdr;
            for (struct cmsghdr *cm = CMSG_FIRSTHDR(h); cm; cm = CMSG_NXTHDR(h, cm)) {
                if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SO_RXQ_OVFL) {
                    uint32_t drops;
                    memcpy(&drops, CMSG_DATA(cm), sizeof drops);
                    if (drops > c->udp_ovfl_seen[slot]) {
                        c->istats[COL_INPUT_UDP].udp_kernel_drops += drops - c->udp_ovfl_seen[slot];
                        c->udp_ovfl_seen[slot] = drops;
                    }
                }
            }
            const struct sockaddr *sa = (const struct sockaddr *)&addrs[i];
            col_stats *st = col_stats_get(c, COL_INPUT_UDP, col_op_for_addr(c, sa));
            size_t len = msgs[i].msg_len;
            const char *msg = iov[i].iov_base;
            if ((h->msg_flags & MSG_TRUNC) || len > c->cfg->max_message) {
                c->istats[COL_INPUT_UDP].oversized++;
                col_addr_text(sa, peer, sizeof peer);
                col_log_limited(c, COL_LOG_UDP,
                                "udp %s: datagram over %zu bytes, truncated and forwarded as "
                                "pipeline_error",
                                peer, c->cfg->max_message);
                len = c->cfg->max_message + 1; /* psb_parse reports the size error */
                if (len > dsize)
                    len = dsize;
            }
            /* A trailing LF is framing, not message. */
            while (len > 0 && (msg[len - 1] == '\n' || msg[len - 1] == '\r' || msg[len - 1] == 0))
                len--;
            if (len == 0) {
                c->istats[COL_INPUT_UDP].empty_datagrams++;
                continue;
            }
            col_addr_text(sa, peer, sizeof peer);
            if (col_ingest(c, st, msg, len, peer, NULL) != 0) {
                st->udp_drops++;
                col_log_limited(c, COL_LOG_UDP, "udp: Kafka and the spool are full, dropping");
            }
        }
        c->batch_ms = 0;
        if (n < UDP_BATCH)
            return;
    }
}

int col_udp_listen(col_ctx *c, const col_listen *l, char *err, size_t errlen)
{
    struct evutil_addrinfo hints = {0}, *ai = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_DGRAM;
    hints.ai_flags = EVUTIL_AI_PASSIVE | EVUTIL_AI_NUMERICHOST;
    int rc = evutil_getaddrinfo(l->host, l->port, &hints, &ai);
    if (rc != 0) {
        snprintf(err, errlen, "listen udp://%s:%s: %s", l->host, l->port, evutil_gai_strerror(rc));
        return -1;
    }
    int fd = socket(ai->ai_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1, rcvbuf = 8 << 20;
    if (fd >= 0) {
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        setsockopt(fd, SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof one);
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    }
    if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        snprintf(err, errlen, "listen udp://%s:%s: %s", l->host, l->port, strerror(errno));
        if (fd >= 0)
            close(fd);
        evutil_freeaddrinfo(ai);
        return -1;
    }
    evutil_freeaddrinfo(ai);
    if (!c->udp_buf)
        c->udp_buf = psb_xmalloc(UDP_BATCH * (c->cfg->max_message + 1));
    c->udp_fds[c->n_udp] = fd;
    c->udp_evs[c->n_udp] = event_new(c->base, fd, EV_READ | EV_PERSIST, on_udp, c);
    event_add(c->udp_evs[c->n_udp], NULL);
    c->n_udp++;
    return 0;
}

void col_udp_stop(col_ctx *c)
{
    for (size_t i = 0; i < c->n_udp; i++) {
        event_free(c->udp_evs[i]);
        close(c->udp_fds[i]);
    }
    c->n_udp = 0;
    free(c->udp_buf);
    c->udp_buf = NULL;
}
