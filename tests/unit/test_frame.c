/* RFC 6587 framer: octet counting and LF in one stream, partial input, the
 * same frames whether the stream arrives whole or a byte at a time, limits and
 * how a framing error lets the reader go on. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "pasban/frame.h"

#define MAX_REC 64

typedef struct rec {
    int rc; /* 1 frame, -1 error */
    int framing;
    size_t len;
    char msg[512];
} rec;

typedef struct recs {
    rec r[MAX_REC];
    size_t n;
    size_t consumed; /* bytes of the stream used up in the end */
} recs;

static void add(recs *out, int rc, const psb_frame *f)
{
    assert_true(out->n < MAX_REC);
    rec *r = &out->r[out->n++];
    r->rc = rc;
    r->framing = f->framing;
    r->len = f->len;
    assert_true(f->len < sizeof(r->msg));
    memcpy(r->msg, f->msg, f->len);
    r->msg[f->len] = '\0';
    if (rc < 0)
        assert_non_null(f->error);
}

/* Frame a whole stream, as --parse does with a file it has read to the end. */
static void frame_whole(const char *buf, size_t len, size_t max, recs *out)
{
    memset(out, 0, sizeof(*out));
    size_t off = 0;
    for (;;) {
        psb_frame f;
        int rc = psb_frame_next(buf + off, len - off, max, 1, &f);
        assert_true(f.consumed <= len - off);
        off += f.consumed;
        if (rc == 0)
            break;
        assert_true(f.consumed > 0);
        add(out, rc, &f);
    }
    out->consumed = off;
}

/* Feed the stream `step` bytes at a time, as a TCP reader sees it. */
static void frame_chunked(const char *buf, size_t len, size_t max, size_t step, recs *out)
{
    memset(out, 0, sizeof(*out));
    size_t off = 0, avail = 0;
    for (;;) {
        int eof = avail == len;
        for (;;) {
            psb_frame f;
            int rc = psb_frame_next(buf + off, avail - off, max, eof, &f);
            off += f.consumed;
            if (rc == 0)
                break;
            add(out, rc, &f);
        }
        if (eof)
            break;
        avail = avail + step < len ? avail + step : len;
    }
    out->consumed = off;
}

static void assert_same(const recs *a, const recs *b)
{
    assert_int_equal(a->n, b->n);
    for (size_t i = 0; i < a->n; i++) {
        assert_int_equal(a->r[i].rc, b->r[i].rc);
        assert_int_equal(a->r[i].framing, b->r[i].framing);
        assert_int_equal(a->r[i].len, b->r[i].len);
        assert_memory_equal(a->r[i].msg, b->r[i].msg, a->r[i].len);
    }
    assert_int_equal(a->consumed, b->consumed);
}

static void assert_rec(const recs *r, size_t i, int rc, int framing, const char *msg)
{
    assert_true(i < r->n);
    assert_int_equal(r->r[i].rc, rc);
    assert_int_equal(r->r[i].framing, framing);
    assert_int_equal(r->r[i].len, strlen(msg));
    assert_string_equal(r->r[i].msg, msg);
}

/* RFC 6587 section 3.4.1: MSG-LEN SP SYSLOG-MSG, frames back to back, no
 * trailer; the count is in octets, so a UTF-8 character counts twice. */
static void test_octet_counting(void **state)
{
    (void)state;
    static const char s[] = "16 <1>1 - - - - - -"
                            "78 <34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - "
                            "hell\xC3\xB8 w\xC3\xB8rld"
                            "27 <13>1 - - - - - - two\nlines";
    recs r;
    frame_whole(s, sizeof(s) - 1, 8192, &r);
    assert_int_equal(r.n, 3);
    assert_rec(&r, 0, 1, PSB_FRAMING_OCTET, "<1>1 - - - - - -");
    assert_rec(&r, 1, 1, PSB_FRAMING_OCTET,
               "<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - hell\xC3\xB8 "
               "w\xC3\xB8rld");
    assert_rec(&r, 2, 1, PSB_FRAMING_OCTET, "<13>1 - - - - - - two\nlines");
    assert_int_equal(r.consumed, sizeof(s) - 1);

    /* The frame is a slice of the caller's buffer, never a copy. */
    psb_frame f;
    assert_int_equal(psb_frame_next(s, sizeof(s) - 1, 8192, 0, &f), 1);
    assert_ptr_equal(f.msg, s + 3);
    assert_int_equal(f.consumed, 19);
}

/* Non-transparent framing (RFC 6587 section 3.4.2) with LF; CR LF works too. */
static void test_lf_framing(void **state)
{
    (void)state;
    static const char s[] = "<13>Oct 11 22:14:15 host app: one\n"
                            "<13>1 - - - - - - two\r\n"
                            "\n\r\n\n"
                            "2024-03-01 10:15:22 host three\n"
                            "last line without LF\r";
    recs r;
    frame_whole(s, sizeof(s) - 1, 8192, &r);
    assert_int_equal(r.n, 4);
    assert_rec(&r, 0, 1, PSB_FRAMING_LF, "<13>Oct 11 22:14:15 host app: one");
    assert_rec(&r, 1, 1, PSB_FRAMING_LF, "<13>1 - - - - - - two");
    assert_rec(&r, 2, 1, PSB_FRAMING_LF, "2024-03-01 10:15:22 host three");
    assert_rec(&r, 3, 1, PSB_FRAMING_LF, "last line without LF");
    assert_int_equal(r.consumed, sizeof(s) - 1);
    /* Only one CR goes: the frame is the line, not a trimmed line. */
    frame_whole("a \r\r\n", 5, 100, &r);
    assert_rec(&r, 0, 1, PSB_FRAMING_LF, "a \r");
}

/* Each frame picks its own framing: a relay may mix them, and a sender may
 * put an LF after an octet-counted frame. */
static void test_mixed_framing(void **state)
{
    (void)state;
    static const char s[] = "16 <1>1 - - - - - -\n"
                            "<14>1 - host app - - - by LF\n"
                            "21 <15>1 - - - - - - a\nb"
                            "0 not a count\n"
                            "12<1>1 no SP\n"
                            "18 <2>1 - - - - - - x"
                            "7 items in stock\n";
    recs r;
    frame_whole(s, sizeof(s) - 1, 8192, &r);
    assert_int_equal(r.n, 8);
    assert_rec(&r, 0, 1, PSB_FRAMING_OCTET, "<1>1 - - - - - -");
    assert_rec(&r, 1, 1, PSB_FRAMING_LF, "<14>1 - host app - - - by LF");
    assert_rec(&r, 2, 1, PSB_FRAMING_OCTET, "<15>1 - - - - - - a\nb");
    assert_rec(&r, 3, 1, PSB_FRAMING_LF, "0 not a count");
    assert_rec(&r, 4, 1, PSB_FRAMING_LF, "12<1>1 no SP");
    assert_rec(&r, 5, 1, PSB_FRAMING_OCTET, "<2>1 - - - - - - x");
    /* A digit run and SP is a count, whatever follows: the documented rule. */
    assert_rec(&r, 6, 1, PSB_FRAMING_OCTET, "items i");
    assert_rec(&r, 7, 1, PSB_FRAMING_LF, "n stock");
}

static void test_partial_input_needs_more(void **state)
{
    (void)state;
    psb_frame f;
    static const char oct[] = "16 <1>1 - - - - - -";
    for (size_t n = 0; n < sizeof(oct) - 1; n++) {
        assert_int_equal(psb_frame_next(oct, n, 8192, 0, &f), 0);
        assert_int_equal(f.consumed, 0);
    }
    assert_int_equal(psb_frame_next(oct, sizeof(oct) - 1, 8192, 0, &f), 1);
    static const char lf[] = "<13>1 - - - - - - msg\r\n";
    for (size_t n = 0; n < sizeof(lf) - 2; n++)
        assert_int_equal(psb_frame_next(lf, n, 8192, 0, &f), 0);
    assert_int_equal(psb_frame_next(lf, sizeof(lf) - 1, 8192, 0, &f), 1);
    assert_int_equal(f.len, 21);
    assert_int_equal(f.consumed, 23);
    /* Empty lines ahead of a partial frame may be dropped by the caller. */
    assert_int_equal(psb_frame_next("\n\r\n\n<13>1 -", 11, 8192, 0, &f), 0);
    assert_int_equal(f.consumed, 4);
}

/* At EOF: a last unterminated line is a frame, blank lines are nothing, and a
 * cut octet-counted frame is an error carrying what arrived. */
static void test_end_of_input(void **state)
{
    (void)state;
    psb_frame f;
    assert_int_equal(psb_frame_next("", 0, 8192, 1, &f), 0);
    assert_int_equal(f.consumed, 0);
    assert_int_equal(psb_frame_next("\n\r\n\r", 4, 8192, 1, &f), 0);
    assert_int_equal(f.consumed, 4);
    assert_int_equal(psb_frame_next("1", 1, 8192, 0, &f), 0);
    assert_int_equal(psb_frame_next("1", 1, 8192, 1, &f), 1);
    assert_int_equal(f.framing, PSB_FRAMING_LF);
    assert_int_equal(f.len, 1);

    recs r;
    static const char cut[] = "16 <1>1 - - - - - -\n\n16 <1>1";
    frame_whole(cut, sizeof(cut) - 1, 8192, &r);
    assert_int_equal(r.n, 2);
    assert_rec(&r, 0, 1, PSB_FRAMING_OCTET, "<1>1 - - - - - -");
    assert_rec(&r, 1, -1, PSB_FRAMING_OCTET, "16 <1>1");
    assert_int_equal(r.consumed, sizeof(cut) - 1);
    assert_int_equal(psb_frame_next("16 <1>1", 7, 8192, 1, &f), -1);
    assert_string_equal(f.error, "octet-counted frame truncated by the end of input");
}

/* max_frame bounds MSG-LEN and LF lines alike; at the limit is fine. */
static void test_limits(void **state)
{
    (void)state;
    psb_frame f;
    assert_int_equal(psb_frame_next("10 0123456789", 13, 10, 1, &f), 1);
    assert_int_equal(f.len, 10);
    assert_int_equal(psb_frame_next("0123456789\r\n", 12, 10, 0, &f), 1);
    assert_int_equal(f.len, 10);

    /* MSG-LEN over the limit: the rest of that line is given up and framing goes on. */
    recs r;
    static const char big[] = "11 <1>1 -\n12 <1>1 -\r\n3 <1>";
    frame_whole(big, sizeof(big) - 1, 10, &r);
    assert_int_equal(r.n, 3);
    assert_rec(&r, 0, -1, PSB_FRAMING_LF, "11 <1>1 -");
    assert_rec(&r, 1, -1, PSB_FRAMING_LF, "12 <1>1 -");
    assert_rec(&r, 2, 1, PSB_FRAMING_OCTET, "<1>");
    assert_int_equal(psb_frame_next(big, sizeof(big) - 1, 10, 0, &f), -1);
    assert_string_equal(f.error, "MSG-LEN above the maximum frame size");
    assert_int_equal(f.consumed, 10);
    /* A count too large for any integer is refused the same way, not wrapped. */
    static const char huge[] = "184467440737095516170 x\nok\n";
    frame_whole(huge, sizeof(huge) - 1, 64, &r);
    assert_int_equal(r.n, 2);
    assert_rec(&r, 0, -1, PSB_FRAMING_LF, "184467440737095516170 x");
    assert_rec(&r, 1, 1, PSB_FRAMING_LF, "ok");

    /* An LF line one byte too long: an error, through its LF. */
    frame_whole("01234567890\nok\n", 15, 10, &r);
    assert_int_equal(r.n, 2);
    assert_rec(&r, 0, -1, PSB_FRAMING_LF, "01234567890");
    assert_rec(&r, 1, 1, PSB_FRAMING_LF, "ok");
    /* A line with no LF in sight is given up max_frame bytes at a time, so the
     * reader's buffer never has to hold more; nothing is lost. */
    static const char run[] = "abcdefghijklmnopqrstuvwxyz\nok";
    frame_whole(run, sizeof(run) - 1, 10, &r);
    assert_int_equal(r.n, 4);
    assert_rec(&r, 0, -1, PSB_FRAMING_LF, "abcdefghij");
    assert_rec(&r, 1, -1, PSB_FRAMING_LF, "klmnopqrst");
    assert_rec(&r, 2, 1, PSB_FRAMING_LF, "uvwxyz");
    assert_rec(&r, 3, 1, PSB_FRAMING_LF, "ok");
    assert_int_equal(psb_frame_next(run, 11, 10, 0, &f), 0); /* not yet known */
    assert_int_equal(psb_frame_next(run, 12, 10, 0, &f), -1);
    assert_string_equal(f.error, "LF frame longer than the maximum frame size");
}

/* A realistic stream fed whole, byte by byte and in odd chunks frames the same. */
static void test_chunked_feeding_same_frames(void **state)
{
    (void)state;
    static const char s[] =
        "\r\n119 <165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 "
        "[exampleSDID@32473 iut=\"3\"] An application event\n"
        "<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8\r\n"
        "16 <1>1 - - - - - -16 <1>1 - - - - - -\n\n"
        "99999 refused\n"
        "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz"
        "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz\n"
        "19 truncated";
    recs whole, part;
    frame_whole(s, sizeof(s) - 1, 128, &whole);
    assert_int_equal(whole.n, 8);
    assert_rec(&whole, 0, 1, PSB_FRAMING_OCTET,
               "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 "
               "[exampleSDID@32473 iut=\"3\"] An application event\n");
    assert_rec(&whole, 4, -1, PSB_FRAMING_LF, "99999 refused");
    assert_int_equal(whole.r[5].rc, -1);
    assert_int_equal(whole.r[5].len, 128);
    assert_rec(&whole, 6, 1, PSB_FRAMING_LF, "yzabcdefghijklmnopqrstuvwxyz");
    assert_rec(&whole, 7, -1, PSB_FRAMING_OCTET, "19 truncated");
    for (size_t step = 1; step < 40; step += 3) {
        frame_chunked(s, sizeof(s) - 1, 128, step, &part);
        assert_same(&whole, &part);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_octet_counting),
        cmocka_unit_test(test_lf_framing),
        cmocka_unit_test(test_mixed_framing),
        cmocka_unit_test(test_partial_input_needs_more),
        cmocka_unit_test(test_end_of_input),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_chunked_feeding_same_frames),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
