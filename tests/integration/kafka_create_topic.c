/* kafka_create_topic.c -- creates a topic with a given number of partitions
 * (CreateTopics), for tests that need a multi-partition topic of their own
 * (a broker's auto-created topics have one).
 *
 * Usage: kafka_create_topic BROKERS TOPIC PARTITIONS ; exit 0 when created or
 * already there, 1 otherwise. */
#include <stdio.h>
#include <stdlib.h>

#include <librdkafka/rdkafka.h>

#define CREATE_TIMEOUT_MS 20000

int main(int argc, char **argv)
{
    char errstr[512];
    rd_kafka_t *rk = NULL;
    rd_kafka_queue_t *q = NULL;
    rd_kafka_event_t *ev = NULL;
    rd_kafka_NewTopic_t *nt = NULL;
    int rc = 1;

    if (argc != 4 || atoi(argv[3]) < 1 || atoi(argv[3]) > 1000) {
        fprintf(stderr, "usage: kafka_create_topic BROKERS TOPIC PARTITIONS (1..1000)\n");
        return 2;
    }
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", argv[1], errstr, sizeof(errstr)) !=
        RD_KAFKA_CONF_OK) {
        fprintf(stderr, "kafka_create_topic: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        return 2;
    }
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!rk) {
        fprintf(stderr, "kafka_create_topic: %s\n", errstr);
        return 1;
    }
    nt = rd_kafka_NewTopic_new(argv[2], atoi(argv[3]), 1, errstr, sizeof(errstr));
    if (!nt) {
        fprintf(stderr, "kafka_create_topic: %s\n", errstr);
        goto out;
    }
    q = rd_kafka_queue_new(rk);
    rd_kafka_CreateTopics(rk, &nt, 1, NULL, q);
    ev = rd_kafka_queue_poll(q, CREATE_TIMEOUT_MS);
    if (!ev || rd_kafka_event_error(ev)) {
        fprintf(stderr, "kafka_create_topic: CreateTopics: %s\n",
                ev ? rd_kafka_event_error_string(ev) : "timed out");
        goto out;
    }
    size_t n = 0;
    const rd_kafka_topic_result_t **res =
        rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
    rc = 0;
    for (size_t i = 0; i < n; i++) {
        rd_kafka_resp_err_t e = rd_kafka_topic_result_error(res[i]);
        if (e && e != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
            fprintf(stderr, "kafka_create_topic: %s: %s\n", rd_kafka_topic_result_name(res[i]),
                    rd_kafka_topic_result_error_string(res[i]));
            rc = 1;
        }
    }
out:
    if (ev)
        rd_kafka_event_destroy(ev);
    if (nt)
        rd_kafka_NewTopic_destroy(nt);
    if (q)
        rd_kafka_queue_destroy(q);
    rd_kafka_destroy(rk);
    return rc;
}
