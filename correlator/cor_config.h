/* cor_config.h -- pasban-correlator's configuration file (-c FILE), JSON with
 * comments (design.md, "Command line"). Example: correlator/pasban-correlator.conf.
 *
 *   {"kafka": {"brokers": "127.0.0.1:9092", "group": "pasban-correlator",
 *              "topics": {"events": ..., "incidents": ..., "updates": ..., "kpi": ...,
 *                         "state": ...},
 *              "properties": {"security.protocol": "ssl", ...}},  // librdkafka, as is
 *    "rules": "rules/", "instance": "corr-1",   // transactional.id = group + "/" + instance
 *    "http": "127.0.0.1:9108", "web_root": "/usr/share/pasban/web",
 *    "tokens": [{"token": "...", "operator": "op-a"}, {"token": "...", "role": "regulator"}],
 *    "api": {"at_max_future": "5m"},  // how far past the server's clock an update's "at" may be
 *    "kpi": {"sla": {...}, "report_window": "24h", "operators": {...}, "targets": {...}}}
 *
 * Every key is optional; an unknown key is refused (a typo must not silently
 * leave a default in place). Flags given on the command line override the file.
 */
#ifndef COR_CONFIG_H
#define COR_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "cor_http.h"
#include "cor_json.h"
#include "cor_kpi.h"

#define COR_CONFIG_MAX_BYTES (4u << 20) /* a config file bigger than this is a mistake */

typedef struct cor_config {
    cor_jnode *root;
    /* Borrowed from root; NULL when absent. */
    const char *brokers, *group, *rules, *http, *web_root;
    const char *topic_events, *topic_incidents, *topic_updates, *topic_kpi, *topic_state;
    const char *instance;        /* a stable name of this instance (transactional.id) */
    const cor_jnode *properties; /* object: librdkafka property -> string/number/bool */
    const cor_jnode *tokens;     /* array */
    const cor_jnode *kpi;        /* object */
    int64_t at_max_future_ms;    /* "api.at_max_future"; 0 when absent (cor_http's default) */
} cor_config;

/* Read and check path. NULL with "path:line: reason" in err. */
cor_config *cor_config_load(const char *path, char *err, size_t errlen);
void cor_config_free(cor_config *c);

/* The KPI configuration (defaults when the file has no "kpi"), or NULL with a reason. */
cor_kpi_config *cor_config_kpi(const cor_config *c, char *err, size_t errlen);
/* The tokens (an empty set when the file has none), or NULL with a reason. */
cor_http_tokens *cor_config_tokens(const cor_config *c, char *err, size_t errlen);

/* Property i of "kafka.properties" as text (numbers and booleans as written).
 * Returns the number of properties; *key and *val are set for i < that. */
size_t cor_config_property(const cor_config *c, size_t i, const char **key, const char **val);

#endif
