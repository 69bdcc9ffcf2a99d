/* fuzz_state_import.c -- cor_engine_import, fed records from pasban.state (any
 * producer could have written them). A record is imported, ignored or refused;
 * never a crash or a leak. One that imports must export again to a record that
 * imports to the same bytes (the format round-trips), and the engine must go on
 * taking events with the imported state. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cor_engine.h"
#include "cor_rule.h"
#include "pasban/parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Every kind: the rules of tests/unit/test_engine_state.c, whose records seed the corpus. */
static const char gen_rules[] =
    "{\"rules\": ["
    " {\"id\": \"G-THR\", \"where\": {\"message\": \"^fail user=(?<u>\\\\S+) src=(?<k>\\\\S+)\"},"
    "  \"threshold\": {\"count\": 3, \"within\": \"10s\", \"by\": [\"k\"]}, \"suppress\": \"5s\"},"
    " {\"id\": \"G-THR-NOSUP\", \"where\": {\"message\": \"^fail user=(?<u>\\\\S+)\"},"
    "  \"threshold\": {\"count\": 4, \"within\": \"6s\", \"by\": [\"u\"]}},"
    " {\"id\": \"G-DIST\", \"where\": {\"message\": \"^port src=(?<k>\\\\S+) p=(?<p>\\\\d+)\"},"
    "  \"threshold\": {\"count\": 3, \"within\": \"20s\", \"by\": [\"k\"], \"distinct\": \"p\"},"
    "  \"suppress\": \"2s\"},"
    " {\"id\": \"G-SEQ\", \"within\": \"30s\", \"by\": [\"k\"], \"suppress\": \"3s\", "
    "\"sequence\": ["
    "   {\"where\": {\"message\": \"^fail user=\\\\S+ src=(?<k>\\\\S+)\"}},"
    "   {\"where\": {\"message\": \"^fail user=\\\\S+ src=(?<k>\\\\S+)\"}},"
    "   {\"where\": {\"message\": \"^ok user=\\\\S+ src=(?<k>\\\\S+)\"}}]},"
    " {\"id\": \"G-SEQ7\", \"within\": \"60s\", \"by\": [\"k\"], \"sequence\": ["
    "   {\"where\": {\"message\": \"^port src=(?<k>\\\\S+) p=1$\"}},"
    "   {\"where\": {\"message\": \"^port src=(?<k>\\\\S+) p=2$\"}},"
    "   {\"where\": {\"message\": \"^port src=(?<k>\\\\S+) p=3$\"}},"
    "   {\"where\": {\"message\": \"^port src=(?<k>\\\\S+) p=4$\"}},"
    "   {\"where\": {\"message\": \"^port src=(?<k>\\\\S+) p=5$\"}},"
    "   {\"where\": {\"message\": \"^port src=(?<k>\\\\S+) p=6$\"}},"
    "   {\"where\": {\"message\": \"^ok user=\\\\S+ src=(?<k>\\\\S+)\"}}]},"
    " {\"id\": \"G-ABS\", \"where\": {\"message\": \"^beat host=(?<h>\\\\S+)\"},"
    "  \"absence\": {\"within\": \"15s\", \"by\": [\"h\"]}, \"suppress\": \"20s\"},"
    " {\"id\": \"G-ABS-NOSUP\", \"where\": {\"message\": \"^beat host=(?<h>\\\\S+)\"},"
    "  \"absence\": {\"within\": \"8s\", \"by\": [\"h\"]}},"
    " {\"id\": \"G-ONE\", \"where\": {\"message\": \"^ok user=(?<u>\\\\S+)\"}, \"by\": [\"u\"],"
    "  \"suppress\": \"4s\"},"
    " {\"id\": \"G-ANY\", \"where\": {\"message\": \"^port src=(?<k>\\\\S+) p=1$\"}, \"by\": "
    "[\"k\"]}"
    "]}";

typedef struct last {
    char *rec;
    size_t len;
} last;

static void keep(void *arg, int32_t src, const char *rule_id, const char *key, size_t key_len,
                 const char *rec, size_t rec_len)
{
    (void)src, (void)rule_id, (void)key, (void)key_len;
    last *l = arg;
    if (!rec)
        return;
    free(l->rec);
    l->rec = malloc(rec_len ? rec_len : 1);
    memcpy(l->rec, rec, rec_len);
    l->len = rec_len;
}

static const char *const lines[] = {
    "<38>1 2026-11-23T10:00:05.000Z gw1 app - - - fail user=u1 src=10.0.0.1",
    "<38>1 2026-11-23T10:00:06.000Z gw1 app - - - ok user=u1 src=10.0.0.1",
    "<38>1 2026-11-23T10:00:07.000Z gw1 app - - - port src=10.0.0.1 p=2",
    "<38>1 2026-11-23T10:00:30.000Z gw1 app - - - beat host=h1",
    "<38>1 2026-11-23T11:00:00.000Z gw1 app - - - noise",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static cor_ruleset *rs;
    if (!rs) {
        cor_load_opts lo = {NULL, false};
        rs = cor_ruleset_load_text("gen.rules", gen_rules, strlen(gen_rules), &lo);
        if (!rs || rs->n_errors)
            __builtin_trap();
    }
    if (size > 1 << 20)
        return 0;
    char err[256];
    cor_engine *e = cor_engine_new(rs, NULL);
    int rc = cor_engine_import(e, (const char *)data, size, err, sizeof(err));
    if (rc < 0 && strncmp(err, "state record", 12) != 0)
        __builtin_trap();
    if (rc == 0) {
        if (cor_engine_groups(e) != 1)
            __builtin_trap();
        last a = {0}, b = {0};
        cor_engine_export_all(e, keep, &a);
        cor_engine *f = cor_engine_new(rs, NULL);
        if (!a.rec || cor_engine_import(f, a.rec, a.len, err, sizeof(err)) != 0)
            __builtin_trap();
        cor_engine_export_all(f, keep, &b);
        if (!b.rec || a.len != b.len || memcmp(a.rec, b.rec, a.len) != 0)
            __builtin_trap();
        free(a.rec);
        free(b.rec);
        cor_engine_free(f);
        psb_event *ev = psb_event_new();
        for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
            psb_parse_opts po;
            memset(&po, 0, sizeof(po));
            po.received_ms = 1795428000000LL;
            po.organization_id = psb_str_make("op-a", 4);
            psb_parse(&po, lines[i], strlen(lines[i]), ev);
            cor_engine_process(e, ev);
        }
        cor_engine_finish(e);
        psb_event_free(ev);
    }
    cor_engine_free(e);
    return 0;
}
