/* kafka_topic_config.c -- prints the configuration of Kafka topics as the
 * broker reports it (DescribeConfigs), one "TOPIC NAME=VALUE" line per entry,
 * so shell tests can check e.g. that pasban.kpi is compacted.
 *
 * Usage: kafka_topic_config BROKERS TOPIC... ; exit 1 if a topic is unknown. */
#include <stdio.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#define TOPIC_CONFIG_TIMEOUT_MS 20000
#define TOPIC_CONFIG_MAX 32

int main(int argc, char **argv)
{
    char errstr[512];
    rd_kafka_conf_t *conf;
    rd_kafka_t *rk = NULL;
    rd_kafka_queue_t *q = NULL;
    rd_kafka_event_t *ev = NULL;
    rd_kafka_ConfigResource_t *res[TOPIC_CONFIG_MAX];
    const rd_kafka_ConfigResource_t **out;
    size_t n_res = 0, n_out = 0;
    int rc = 1;

    if (argc < 3 || argc - 2 > TOPIC_CONFIG_MAX) {
        fprintf(stderr, "usage: kafka_topic_config BROKERS TOPIC... (at most %d)\n",
                TOPIC_CONFIG_MAX);
        return 2;
    }
    conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", argv[1], errstr, sizeof(errstr)) !=
        RD_KAFKA_CONF_OK) {
        fprintf(stderr, "kafka_topic_config: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        return 2;
    }
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!rk) {
        fprintf(stderr, "kafka_topic_config: %s\n", errstr);
        return 1;
    }
    for (int i = 2; i < argc; i++)
        res[n_res++] = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, argv[i]);
    q = rd_kafka_queue_new(rk);
    rd_kafka_DescribeConfigs(rk, res, n_res, NULL, q);
    ev = rd_kafka_queue_poll(q, TOPIC_CONFIG_TIMEOUT_MS);
    if (!ev || rd_kafka_event_error(ev)) {
        fprintf(stderr, "kafka_topic_config: DescribeConfigs: %s\n",
                ev ? rd_kafka_event_error_string(ev) : "timed out");
        goto out;
    }
    out = rd_kafka_DescribeConfigs_result_resources(rd_kafka_event_DescribeConfigs_result(ev),
                                                     &n_out);
    rc = 0;
    for (size_t i = 0; i < n_out; i++) {
        const char *name = rd_kafka_ConfigResource_name(out[i]);
        const rd_kafka_ConfigEntry_t **entries;
        size_t n_entries = 0;
        if (rd_kafka_ConfigResource_error(out[i])) {
            fprintf(stderr, "kafka_topic_config: %s: %s\n", name,
                    rd_kafka_ConfigResource_error_string(out[i]));
            rc = 1;
            continue;
        }
        entries = rd_kafka_ConfigResource_configs(out[i], &n_entries);
        for (size_t e = 0; e < n_entries; e++) {
            const char *value = rd_kafka_ConfigEntry_value(entries[e]);
            printf("%s %s=%s\n", name, rd_kafka_ConfigEntry_name(entries[e]),
                   value ? value : "");
        }
    }
out:
    if (ev)
        rd_kafka_event_destroy(ev);
    rd_kafka_ConfigResource_destroy_array(res, n_res);
    if (q)
        rd_kafka_queue_destroy(q);
    rd_kafka_destroy(rk);
    rd_kafka_wait_destroyed(5000);
    return rc;
}
