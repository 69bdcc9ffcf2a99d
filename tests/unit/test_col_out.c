/* test_col_out.c -- failure paths of the output against librdkafka's mock cluster:
 * a delivery refused for a passing reason lands in the spool, one refused for
 * good is counted, an event too big for Kafka is cut; with the broker down, events go
 * straight to the spool and are replayed, in order, once it is back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <dirent.h>

#include <cmocka.h>

#include "col_ctx.h"
#include <librdkafka/rdkafka_mock.h> /* after rdkafka.h, which col_ctx.h includes */
#include "pasban/util.h"

#define PRODUCE_API 0

typedef struct fixture {
    col_ctx c;
    char dir[64];
    rd_kafka_mock_cluster_t *mc;
} fixture;

static int setup(void **state)
{
    char err[512];
    fixture *f = calloc(1, sizeof *f);
    col_ctx *c = &f->c;
    snprintf(f->dir, sizeof f->dir, "/tmp/pasban-out-test-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    c->kpipe[0] = c->kpipe[1] = -1;
    c->cfg = col_config_new();
    c->cfg->spool_dir = psb_xstrdup(f->dir);
    c->cfg->spool_fsync = COL_FSYNC_NEVER;
    c->cfg->kafka_props = psb_xcalloc(3, sizeof *c->cfg->kafka_props);
    c->cfg->kafka_props[0] = (col_kv){psb_xstrdup("test.mock.num.brokers"), psb_xstrdup("1")};
    c->cfg->kafka_props[1] = (col_kv){psb_xstrdup("reconnect.backoff.max.ms"), psb_xstrdup("200")};
    c->cfg->kafka_props[2] = (col_kv){psb_xstrdup("message.timeout.ms"), psb_xstrdup("60000")};
    c->cfg->n_kafka_props = 3;
    c->base = event_base_new();
    c->ev = psb_event_new();
    c->ecs = psb_ecs_writer_new();
    if (col_out_start(c, err, sizeof err) != 0)
        fail_msg("%s", err);
    f->mc = rd_kafka_handle_mock_cluster(c->rk);
    assert_non_null(f->mc);
    rd_kafka_mock_topic_create(f->mc, c->cfg->topic, 1, 1);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    col_ctx *c = &f->c;
    col_out_stop(c);
    while (c->stats) {
        col_stats *s = c->stats;
        c->stats = s->next;
        free(s->op);
        free(s);
    }
    psb_ecs_writer_free(c->ecs);
    psb_event_free(c->ev);
    event_base_free(c->base);
    col_config_free(c->cfg);
    DIR *d = opendir(f->dir);
    struct dirent *de;
    char path[512];
    while (d && (de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "%s/%s", f->dir, de->d_name);
        unlink(path);
    }
    if (d)
        closedir(d);
    rmdir(f->dir);
    free(f);
    return 0;
}

/* Run the output until cond holds (or 15 s pass). */
#define RUN_UNTIL(c, cond)                                                                         \
    do {                                                                                           \
        int64_t until_ = psb_now_ms() + 15000;                                                     \
        while (!(cond) && psb_now_ms() < until_) {                                                 \
            rd_kafka_poll((c)->rk, 20);                                                            \
            col_out_tick(c);                                                                       \
        }                                                                                          \
    } while (0)

static void ingest(col_ctx *c, col_stats *st, int i)
{
    char m[128];
    int n = snprintf(m, sizeof m, "<13>Nov 23 10:00:00 gw sshd[1]: out-test-%d", i);
    assert_int_equal(col_ingest(c, st, m, (size_t)n, "192.0.2.1", NULL), 0);
}

static void test_delivered(void **state)
{
    fixture *f = *state;
    col_ctx *c = &f->c;
    col_stats *st = col_stats_get(c, COL_INPUT_TCP, "op-a");
    for (int i = 0; i < 10; i++)
        ingest(c, st, i);
    RUN_UNTIL(c, st->delivered == 10);
    assert_int_equal(st->received, 10);
    assert_int_equal(st->delivered, 10);
    assert_int_equal(st->spooled, 0);
}

/* A refusal Kafka will repeat forever (message too large, invalid, not
 * authorized) is a counted delivery error, not a spool record that loops. */
static void test_permanent_refusal_not_spooled(void **state)
{
    fixture *f = *state;
    col_ctx *c = &f->c;
    col_stats *st = col_stats_get(c, COL_INPUT_TCP, "op-a");
    rd_kafka_mock_push_request_errors(f->mc, PRODUCE_API, 1, RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE);
    ingest(c, st, 0);
    RUN_UNTIL(c, st->spooled + st->delivered + st->delivery_errors >= 1);
    assert_int_equal(st->delivery_errors, 1);
    assert_int_equal(st->spooled, 0);
    assert_int_equal(col_spool_pending(c->spool), 0);
    /* The next event goes through. */
    ingest(c, st, 1);
    RUN_UNTIL(c, st->delivered == 1);
    assert_int_equal(st->delivered, 1);
}

/* A delivery that fails for a passing reason (here: purged while in flight, as
 * at shutdown) lands in the spool and is replayed. */
static void test_transient_failure_is_spooled(void **state)
{
    fixture *f = *state;
    col_ctx *c = &f->c;
    col_stats *st = col_stats_get(c, COL_INPUT_TCP, "op-a");
    ingest(c, st, 0);
    RUN_UNTIL(c, st->delivered == 1);
    rd_kafka_mock_broker_set_rtt(f->mc, 1, 5000);
    ingest(c, st, 1);
    rd_kafka_purge(c->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    RUN_UNTIL(c, st->spooled + st->delivery_errors >= 1);
    assert_int_equal(st->spooled, 1);
    assert_int_equal(st->delivery_errors, 0);
    rd_kafka_mock_broker_set_rtt(f->mc, 1, 0);
    RUN_UNTIL(c, c->replayed == 1 && col_spool_pending(c->spool) == 0);
    assert_int_equal(c->replayed, 1);
    assert_int_equal(col_spool_pending(c->spool), 0);
}

/* A line within max_message whose event renders past Kafka's message size
 * (its text appears several times, each control byte escaped to six) goes out
 * as a pipeline_error with event.original cut, instead of looping in the spool. */
static void test_event_over_kafka_limit_sent_truncated(void **state)
{
    fixture *f = *state;
    col_ctx *c = &f->c;
    col_stats *st = col_stats_get(c, COL_INPUT_TCP, "op-a");
    size_t n = 65000;
    char *m = malloc(n);
    int h = snprintf(m, n, "<13>k=");
    memset(m + h, 0x01, n - (size_t)h);
    assert_int_equal(col_ingest(c, st, m, n, "192.0.2.1", NULL), 0);
    /* Parsed, it renders past 1 MB; the original alone fits. */
    assert_int_equal(c->ev->kind, PSB_EVENT_KIND_PIPELINE_ERROR);
    assert_int_equal(c->ev->original.len, n);
    assert_non_null(strstr(c->ev->error_message.ptr, "over Kafka's limit"));
    RUN_UNTIL(c, st->delivered + st->delivery_errors >= 1 && col_spool_pending(c->spool) == 0);
    assert_int_equal(st->truncated, 1);
    assert_int_equal(st->parse_failures, 1);
    assert_int_equal(st->delivered, 1);
    assert_int_equal(st->delivery_errors, 0);
    assert_int_equal(st->spooled, 0);
    assert_int_equal(col_spool_pending(c->spool), 0);
    /* Under a smaller message.max.bytes even the original is cut. */
    c->msg_max = 100000;
    assert_int_equal(col_ingest(c, st, m, n, "192.0.2.1", NULL), 0);
    assert_int_equal(c->ev->kind, PSB_EVENT_KIND_PIPELINE_ERROR);
    assert_true(c->ev->original.len > 1000 && c->ev->original.len < n);
    assert_memory_equal(c->ev->original.ptr, m, c->ev->original.len);
    assert_non_null(strstr(c->ev->error_message.ptr, "cut to"));
    RUN_UNTIL(c, st->delivered == 2);
    assert_int_equal(st->truncated, 2);
    assert_int_equal(st->delivered, 2);
    assert_int_equal(st->spooled, 0);
    free(m);
}

static void test_broker_down_spools_then_replays(void **state)
{
    fixture *f = *state;
    col_ctx *c = &f->c;
    col_stats *st = col_stats_get(c, COL_INPUT_HTTP, "op-b");
    ingest(c, st, 0);
    RUN_UNTIL(c, st->delivered == 1);
    rd_kafka_mock_broker_set_down(f->mc, 1);
    RUN_UNTIL(c, !c->kafka_up);
    assert_false(c->kafka_up);
    for (int i = 1; i <= 50; i++)
        ingest(c, st, i);
    /* With the broker down, events go to the disk at once. */
    assert_int_equal(st->spooled, 50);
    assert_int_equal(col_spool_pending(c->spool), 50);
    rd_kafka_mock_broker_set_up(f->mc, 1);
    RUN_UNTIL(c, c->replayed == 50 && col_spool_pending(c->spool) == 0);
    assert_int_equal(c->replayed, 50);
    assert_true(c->kafka_up);
    assert_int_equal(col_spool_pending(c->spool), 0);
    /* And live events go to Kafka again. */
    ingest(c, st, 51);
    RUN_UNTIL(c, st->delivered == 2);
    assert_int_equal(st->delivered, 2);
}

/* Near a full spool, an event that renders much larger than its message (each
 * control byte escaped to six, the text in the event twice) must make the input
 * wait (col_ingest returns -1, nothing counted), not pass the room check and
 * then be lost to ENOSPC. */
static void test_full_spool_pauses_instead_of_losing(void **state)
{
    fixture *f = *state;
    col_ctx *c = &f->c;
    char err[256];
    col_spool_free(c->spool);
    col_spool_opts so = {1u << 20, 1u << 16, COL_FSYNC_NEVER};
    c->spool = col_spool_open(f->dir, &so, err, sizeof err);
    assert_non_null(c->spool);
    c->kafka_up = 0; /* as after "all brokers down": events go to the spool */
    col_stats *st = col_stats_get(c, COL_INPUT_TCP, "op-a");
    char m[2000];
    int h = snprintf(m, sizeof m, "<13>Nov 23 10:00:00 gw app: ");
    memset(m + h, 0x01, sizeof m - (size_t)h);
    int refused = 0;
    for (int i = 0; i < 1000 && !refused; i++)
        refused = col_ingest(c, st, m, sizeof m, "192.0.2.1", NULL) != 0;
    assert_true(refused);
    assert_int_equal(st->delivery_errors, 0);
    assert_int_equal(st->received, st->spooled);
    assert_int_equal(col_spool_pending(c->spool), st->spooled);
}

/* A fatal producer error is noticed (the daemon then drains and exits 1), and
 * events that arrive meanwhile go to the spool instead of being lost. */
static void test_fatal_error_spools(void **state)
{
    fixture *f = *state;
    col_ctx *c = &f->c;
    col_stats *st = col_stats_get(c, COL_INPUT_TCP, "op-a");
    assert_int_equal(
        rd_kafka_test_fatal_error(c->rk, RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER, "test"),
        RD_KAFKA_RESP_ERR_NO_ERROR);
    RUN_UNTIL(c, c->kafka_fatal);
    assert_true(c->kafka_fatal);
    ingest(c, st, 0);
    RUN_UNTIL(c, st->spooled + st->delivery_errors >= 1);
    assert_int_equal(st->spooled, 1);
    assert_int_equal(col_spool_pending(c->spool), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_delivered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_permanent_refusal_not_spooled, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transient_failure_is_spooled, setup, teardown),
        cmocka_unit_test_setup_teardown(test_event_over_kafka_limit_sent_truncated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_broker_down_spools_then_replays, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_spool_pauses_instead_of_losing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fatal_error_spools, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
