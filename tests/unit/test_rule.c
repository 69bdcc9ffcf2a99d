/* Rule loading: what an analyst sees when a rule file is right or wrong. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "cor_match.h"
#include "cor_rule.h"
#include "pasban/parse.h"

typedef struct loaded {
    cor_ruleset *rs;
    char *errors;
    size_t errlen;
} loaded;

static void load(loaded *l, const char *text)
{
    FILE *f = open_memstream(&l->errors, &l->errlen);
    cor_load_opts lo = {f, false};
    l->rs = cor_ruleset_load_text("t.rules", text, strlen(text), &lo);
    fclose(f);
    assert_non_null(l->rs);
}

static void unload(loaded *l)
{
    cor_ruleset_free(l->rs);
    free(l->errors);
}

static const cor_rule *find(const cor_ruleset *rs, const char *id)
{
    for (size_t i = 0; i < rs->n_rules; i++)
        if (strcmp(rs->rules[i]->id, id) == 0)
            return rs->rules[i];
    return NULL;
}

static void test_design_example_loads(void **state)
{
    (void)state;
    loaded l;
    load(&l, "{\"rules\": [\n"
             "{\n"
             "  \"id\": \"PSB-SSH-001\",                 // unique, stable\n"
             "  \"title\": \"SSH password brute force\",\n"
             "  \"severity\": \"high\",\n"
             "  \"category\": \"intrusion-attempts/login-attempts\",\n"
             "  \"where\": {\n"
             "    \"process.name\": \"^sshd$\",\n"
             "    \"message\": \"^Failed password for (?:invalid user )?(?<user>\\\\S+) from "
             "(?<src>\\\\S+)\"\n"
             "  },\n"
             "  \"unless\": { \"src\": \"^10\\\\.\" },  /* allowlist */\n"
             "  \"threshold\": { \"count\": 8, \"within\": \"120s\", \"by\": [\"src\"] },\n"
             "  \"suppress\": \"60s\",\n"
             "  \"tests\": [\n"
             "    { \"log\": \"Dec 10 06:55:46 gw1 sshd[24200]: Failed password for root from "
             "1.2.3.4 port 22 ssh2\", \"expect\": \"match\" },\n"
             "    { \"event\": {\"message\": \"x\"}, \"expect\": \"no-match\" }\n"
             "  ]\n"
             "}]}\n");
    assert_int_equal(l.rs->n_errors, 0);
    assert_int_equal(l.rs->n_rules, 1);
    const cor_rule *r = l.rs->rules[0];
    assert_string_equal(r->id, "PSB-SSH-001");
    assert_int_equal(r->line, 2);
    assert_int_equal(r->kind, COR_KIND_THRESHOLD);
    assert_int_equal(r->severity, COR_SEV_HIGH);
    assert_int_equal(r->count, 8);
    assert_int_equal(r->within_ms, 120000);
    assert_int_equal(r->suppress_ms, 60000);
    assert_int_equal(r->n_by, 1);
    assert_string_equal(r->by[0], "src");
    assert_int_equal(r->steps[0].n_where, 2);
    assert_int_equal(r->steps[0].n_unless, 1);
    assert_int_equal(r->steps[0].where[1].n_caps, 2);
    assert_int_equal(r->n_tests, 2);
    assert_int_equal(r->tests[0].line, 15);
    assert_true(r->tests[0].expect_match);
    assert_string_equal(r->tests[1].event, "{\"message\":\"x\"}");
    unload(&l);
}

static void test_bad_rules_are_reported_and_skipped(void **state)
{
    (void)state;
    loaded l;
    load(&l,
         "{\"rules\": [\n"
         "{\"id\": \"OK-1\", \"where\": {\"message\": \"a\"}},\n"
         "{\"id\": \"BAD-KEY\", \"where\": {\"message\": \"a\"},\n"
         "  \"colour\": \"red\"},\n"
         "{\"id\": \"BAD-DUR\", \"where\": {\"message\": \"a\"}, \"suppress\": \"5 minutes\"},\n"
         "{\"id\": \"BAD-SEV\", \"where\": {\"message\": \"a\"}, \"severity\": \"urgent\"},\n"
         "{\"id\": \"OK-1\", \"where\": {\"message\": \"b\"}},\n"
         "{\"id\": \"BAD-RE\", \"where\": {\"message\": \"a(b\"}},\n"
         "{\"id\": \"BAD-COUNT\", \"where\": {\"message\": \"a\"}, \"threshold\": "
         "{\"count\": 0, \"within\": \"1m\"}},\n"
         "{\"id\": \"BAD-SEQ\", \"sequence\": [{\"where\": {\"message\": \"a\"}}]},\n"
         "{\"where\": {\"message\": \"a\"}},\n"
         "{\"id\": \"OK-2\", \"where\": {\"message\": \"c\"}},\n"
         "{\"id\": \"BAD-NUL\", \"where\": {\"message\": \"^ab(?#\\u0000)$\"}}\n"
         "]}\n");
    assert_int_equal(l.rs->n_rules, 2);
    assert_non_null(find(l.rs, "OK-1"));
    assert_non_null(find(l.rs, "OK-2"));
    assert_int_equal(l.rs->n_errors, 9);
    assert_non_null(strstr(l.errors, "t.rules:13: rule BAD-NUL: where message: a NUL character"));
    assert_non_null(strstr(l.errors, "t.rules:4: rule BAD-KEY: unknown key \"colour\"\n"));
    assert_non_null(strstr(l.errors, "t.rules:5: rule BAD-DUR: bad duration for suppress"));
    assert_non_null(strstr(l.errors, "t.rules:6: rule BAD-SEV: bad severity"));
    assert_non_null(strstr(l.errors, "t.rules:7: rule OK-1: duplicate id"));
    assert_non_null(strstr(l.errors, "t.rules:8: rule BAD-RE: where message: bad pattern at "
                                     "offset 3: missing closing parenthesis\n"));
    assert_non_null(strstr(l.errors, "t.rules:9: rule BAD-COUNT: threshold count"));
    assert_non_null(
        strstr(l.errors, "t.rules:10: rule BAD-SEQ: a sequence needs a top-level within"));
    assert_non_null(strstr(l.errors, "t.rules:11: rule #9: needs an id"));
    /* the first of a duplicated id is the one kept */
    assert_string_equal(find(l.rs, "OK-1")->steps[0].where[0].pattern, "a");
    unload(&l);
}

static void test_syntax_error_names_the_line(void **state)
{
    (void)state;
    loaded l;
    load(&l, "{\"rules\": [\n  {\"id\": \"A\", \"where\": {\"message\": \"a\"}},\n"
             "  {\"id\": \"B\" \"where\": {}}\n]}\n");
    assert_int_equal(l.rs->n_rules, 0);
    assert_int_equal(l.rs->n_errors, 1);
    assert_non_null(strstr(l.errors, "t.rules:3: JSON syntax"));
    unload(&l);
}

static void test_limits(void **state)
{
    (void)state;
    char *text = malloc(200000);
    size_t n = (size_t)sprintf(text, "{\"rules\": [{\"id\": \"MANY\", \"where\": {");
    for (int i = 0; i < COR_MAX_PATTERNS + 1; i++)
        n += (size_t)sprintf(text + n, "%s\"f%d\": \"x\"", i ? "," : "", i);
    n += (size_t)sprintf(text + n, "}},\n{\"id\": \"LONG\", \"where\": {\"message\": \"");
    memset(text + n, 'a', COR_MAX_PATTERN_LEN + 1);
    n += COR_MAX_PATTERN_LEN + 1;
    n += (size_t)sprintf(text + n, "\"}},\n{\"id\": \"FINE\", \"where\": {\"message\": \"x\"}}]}");
    loaded l;
    load(&l, text);
    assert_int_equal(l.rs->n_rules, 1);
    assert_non_null(strstr(l.errors, "rule MANY: more than 32 patterns"));
    assert_non_null(strstr(l.errors, "rule LONG: where message: pattern of 4097 bytes exceeds"));
    unload(&l);
    free(text);
}

static void test_kinds_and_keys(void **state)
{
    (void)state;
    loaded l;
    load(&l,
         "{\"rules\": ["
         "{\"id\": \"S\", \"by\": [\"host.hostname\"], \"where\": {\"message\": \"a\"}},"
         "{\"id\": \"D\", \"where\": {\"message\": \"DPT=(?<p>\\\\d+)\"}, \"threshold\": "
         "{\"count\": 20, \"within\": \"1m\", \"by\": [\"src\"], \"distinct\": \"p\"}},"
         "{\"id\": \"Q\", \"within\": \"10m\", \"by\": [\"src\"], \"where\": {\"process.name\": "
         "\"sshd\"}, \"unless\": {\"src\": \"^10\\\\.\"}, \"sequence\": [{\"where\": {\"message\": "
         "\"Failed\"}}, {\"where\": {\"message\": \"Accepted\"}, \"unless\": {\"user\": "
         "\"^svc\"}}]},"
         "{\"id\": \"A\", \"where\": {\"host.hostname\": \".\"}, \"absence\": {\"within\": "
         "\"15m\", \"by\": [\"host.hostname\"]}},"
         "{\"id\": \"X\", \"where\": {\"message\": \"a\"}, \"absence\": {\"within\": \"1m\"},"
         " \"threshold\": {\"count\": 1, \"within\": \"1m\"}},"
         "{\"id\": \"Y\", \"where\": {\"message\": \"a\"}, \"within\": \"1m\"}"
         "]}");
    assert_int_equal(l.rs->n_rules, 4);
    assert_int_equal(find(l.rs, "S")->kind, COR_KIND_SINGLE);
    assert_string_equal(find(l.rs, "D")->distinct, "p");
    const cor_rule *q = find(l.rs, "Q");
    assert_int_equal(q->kind, COR_KIND_SEQUENCE);
    assert_int_equal(q->n_steps, 2);
    /* each step carries the top-level where and unless */
    assert_int_equal(q->steps[0].n_where, 2);
    assert_int_equal(q->steps[0].n_unless, 1);
    assert_int_equal(q->steps[1].n_unless, 2);
    assert_int_equal(find(l.rs, "A")->within_ms, 15 * 60000);
    assert_non_null(strstr(l.errors, "rule X: a rule is one of threshold, sequence or absence"));
    assert_non_null(strstr(l.errors, "rule Y: top-level within belongs to a sequence"));
    unload(&l);
}

/* README: a bare number is seconds, also as a JSON number; a fraction is refused. */
static void test_duration_as_json_number(void **state)
{
    (void)state;
    loaded l;
    load(&l, "{\"rules\": ["
             "{\"id\": \"N\", \"where\": {\"message\": \"a\"}, \"suppress\": 30,"
             " \"threshold\": {\"count\": 2, \"within\": 120}},"
             "{\"id\": \"F\", \"where\": {\"message\": \"a\"},"
             " \"threshold\": {\"count\": 2, \"within\": 1.5}}]}");
    assert_int_equal(l.rs->n_rules, 1);
    assert_int_equal(find(l.rs, "N")->within_ms, 120000);
    assert_int_equal(find(l.rs, "N")->suppress_ms, 30000);
    assert_non_null(strstr(l.errors, "rule F: bad duration for within"));
    unload(&l);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_directory_in_name_order(void **state)
{
    (void)state;
    char dir[] = "/tmp/pasban-rules-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char p[256];
    snprintf(p, sizeof(p), "%s/b.rules", dir);
    write_file(p, "{\"rules\": [{\"id\": \"B1\", \"where\": {\"message\": \"b\"}}]}");
    snprintf(p, sizeof(p), "%s/a.rules", dir);
    write_file(p, "{\"rules\": [{\"id\": \"A1\", \"where\": {\"message\": \"a\"}},"
                  " {\"id\": \"A2\", \"where\": {\"message\": \"a\"}}]}");
    snprintf(p, sizeof(p), "%s/README.md", dir);
    write_file(p, "not rules");
    snprintf(p, sizeof(p), "%s/c.rules", dir);
    write_file(p, "{\"rules\": [{\"id\": \"B1\", \"where\": {\"message\": \"dup\"}}]}");
    FILE *ef = tmpfile();
    cor_load_opts lo = {ef, false};
    cor_ruleset *rs = cor_ruleset_load(dir, &lo);
    assert_non_null(rs);
    assert_int_equal(rs->n_files, 3);
    assert_int_equal(rs->n_rules, 3);
    assert_string_equal(rs->rules[0]->id, "A1");
    assert_string_equal(rs->rules[1]->id, "A2");
    assert_string_equal(rs->rules[2]->id, "B1");
    assert_int_equal(rs->n_errors, 1); /* duplicate across files */
    cor_ruleset_free(rs);
    fclose(ef);
    assert_null(cor_ruleset_load("/nonexistent/pasban", NULL));
    const char *names[] = {"a.rules", "b.rules", "c.rules", "README.md"};
    for (size_t i = 0; i < 4; i++) {
        snprintf(p, sizeof(p), "%s/%s", dir, names[i]);
        unlink(p);
    }
    rmdir(dir);
}

static void test_embedded_test_semantics(void **state)
{
    (void)state;
    /* cor_matcher_rule is what --check-rules runs: where and unless, per event. */
    loaded l;
    load(&l, "{\"rules\": [{\"id\": \"R\", \"where\": {\"process.name\": \"^sshd$\", \"message\": "
             "\"from (?<src>\\\\S+)\"}, \"unless\": {\"src\": \"^10\\\\.\"}}]}");
    cor_matcher *m = cor_matcher_new(l.rs, NULL);
    psb_event *ev = psb_event_new();
    psb_parse_opts po;
    memset(&po, 0, sizeof(po));
    const char *a = "<38>1 2026-11-23T10:00:00Z h sshd - - - Failed password from 1.2.3.4";
    const char *b = "<38>1 2026-11-23T10:00:00Z h sshd - - - Failed password from 10.2.3.4";
    const char *c = "<38>1 2026-11-23T10:00:00Z h cron - - - Failed password from 1.2.3.4";
    psb_parse(&po, a, strlen(a), ev);
    assert_int_equal(cor_matcher_rule(m, ev, l.rs->rules[0]), 1);
    psb_parse(&po, b, strlen(b), ev);
    assert_int_equal(cor_matcher_rule(m, ev, l.rs->rules[0]), 0);
    psb_parse(&po, c, strlen(c), ev);
    assert_int_equal(cor_matcher_rule(m, ev, l.rs->rules[0]), 0);
    psb_event_free(ev);
    cor_matcher_free(m);
    unload(&l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_design_example_loads),
        cmocka_unit_test(test_bad_rules_are_reported_and_skipped),
        cmocka_unit_test(test_syntax_error_names_the_line),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_kinds_and_keys),
        cmocka_unit_test(test_duration_as_json_number),
        cmocka_unit_test(test_directory_in_name_order),
        cmocka_unit_test(test_embedded_test_semantics),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
