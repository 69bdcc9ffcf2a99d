/* col_config.h -- the collector's configuration: a JSON-with-comments file plus flags.
 *
 * The file is read with yajl (comments allowed) one line at a time, so every
 * error names the file, the line and the key ("conf:12: spool.fsync: ...").
 * Flags of design.md override the file. A col_config owns all of its strings.
 */
#ifndef COL_CONFIG_H
#define COL_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define COL_MAX_LISTEN 16
/* Largest limits.max_body: a body is held whole in memory while it is checked. */
#define COL_MAX_BODY (64u << 20)

enum col_input { COL_INPUT_UDP = 0, COL_INPUT_TCP, COL_INPUT_TLS, COL_INPUT_HTTP, COL_INPUT_COUNT };

enum col_fsync {
    COL_FSYNC_ALWAYS = 0, /* fsync after every append: nothing acknowledged is lost on power loss */
    COL_FSYNC_INTERVAL,   /* fsync from a timer (spool.fsync_interval) */
    COL_FSYNC_NEVER, /* leave it to the kernel: survives a crash of the collector, not of the host
                      */
};

typedef struct col_listen {
    int input;  /* enum col_input */
    char *host; /* numeric address */
    char *port;
} col_listen;

/* One operator's identities: networks (source CIDRs), HTTP tokens, TLS names. */
typedef struct col_cidr {
    int family; /* AF_INET or AF_INET6 */
    unsigned char addr[16];
    int prefix;
    char *op; /* operator id (shared with the owning col_operator, not owned) */
} col_cidr;

typedef struct col_ident {
    char *name; /* token or certificate CN/SAN */
    char *op;   /* operator id (not owned) */
} col_ident;

/* The maps that SIGHUP reloads. Owns its strings. */
typedef struct col_opmap {
    char **ops; /* every operator id named in the config */
    size_t n_ops;
    col_cidr *cidrs;
    size_t n_cidrs;
    col_ident *tokens;
    size_t n_tokens;
    col_ident *tls_names;
    size_t n_tls_names;
} col_opmap;

typedef struct col_kv {
    char *key;
    char *value;
} col_kv;

typedef struct col_config {
    char *path; /* config file, NULL when flags only */
    char *topic;
    char *brokers;
    col_kv *kafka_props; /* passed to librdkafka under their own names */
    size_t n_kafka_props;
    col_listen listen[COL_MAX_LISTEN];
    size_t n_listen;
    char *default_operator;
    char *metrics_host;
    char *metrics_port;

    char *spool_dir; /* NULL: no spool, backpressure only */
    uint64_t spool_max_bytes;
    uint64_t spool_segment_bytes;
    int spool_fsync; /* enum col_fsync */
    int64_t spool_fsync_interval_ms;

    char *tls_cert;
    char *tls_key;
    char *tls_ca; /* set: clients must present a certificate signed by it */

    size_t max_connections;
    size_t max_message;
    size_t conn_buffer;
    size_t max_body;
    size_t max_http_pending; /* HTTP requests waiting for their delivery reports */
    int64_t idle_timeout_ms;
    int64_t shutdown_timeout_ms;
    int32_t tz_offset_s; /* zone of RFC 3164 timestamps */

    col_opmap opmap;
} col_config;

/* Defaults with no file. Never NULL. */
col_config *col_config_new(void);
void col_config_free(col_config *cfg);

/* Read path into cfg (which holds defaults). Returns 0, or -1 with a
 * "file:line: key: reason" message in err. */
int col_config_load(col_config *cfg, const char *path, char *err, size_t errlen);

/* Parse "udp://host:port" etc. into l (strings owned by l). 0 / -1. */
int col_listen_parse(const char *url, col_listen *l, char *err, size_t errlen);
/* Parse "addr:port" or "[v6]:port". Strings malloc'd. 0 / -1. */
int col_hostport_parse(const char *s, char **host, char **port);

void col_opmap_clear(col_opmap *m);
/* Operator of a source address (longest prefix), or NULL. */
const char *col_opmap_by_addr(const col_opmap *m, const struct sockaddr *sa);
const char *col_opmap_by_token(const col_opmap *m, const char *token, size_t len);
const char *col_opmap_by_tls_name(const col_opmap *m, const char *name);

const char *col_input_name(int input);

#endif
