/* test_col_spool.c -- the disk spool: order, restart, torn and corrupt tails, limits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <dirent.h>

#include <cmocka.h>
#include <errno.h>
#include <sys/syscall.h>

#include "col_config.h"
#include "col_spool.h"

/* While set, every pread(2) fails with EIO: a failing disk. This definition
 * takes the place of libc's for the whole test program. */
static int fail_reads;

ssize_t pread(int fd, void *buf, size_t n, off_t off)
{
    if (fail_reads) {
        errno = EIO;
        return -1;
    }
    return (ssize_t)syscall(SYS_pread64, fd, buf, n, off);
}

static char *make_dir(void)
{
    char tmpl[] = "/tmp/pasban-spool-test-XXXXXX";
    char *d = mkdtemp(tmpl);
    assert_non_null(d);
    return strdup(d);
}

static void rm_dir(char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    char path[4096];
    while (d && (de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        unlink(path);
    }
    if (d)
        closedir(d);
    rmdir(dir);
    free(dir);
}

static col_spool *open_spool(const char *dir, uint64_t max, uint64_t seg)
{
    char err[256];
    col_spool_opts o = {max, seg, COL_FSYNC_NEVER};
    col_spool *s = col_spool_open(dir, &o, err, sizeof err);
    if (!s)
        fail_msg("open: %s", err);
    return s;
}

static void put(col_spool *s, int i)
{
    char v[64];
    int n = snprintf(v, sizeof v, "{\"message\":\"event %d\"}", i);
    assert_int_equal(col_spool_append(s, "op-a", 4, v, (size_t)n), 0);
}

/* Reads everything left; checks values are events first..first+n-1 in order. */
static void expect_run(col_spool *s, int first, int n, int ack)
{
    col_spool_rec r;
    char want[64];
    for (int i = 0; i < n; i++) {
        assert_int_equal(col_spool_next(s, &r), 1);
        int wl = snprintf(want, sizeof want, "{\"message\":\"event %d\"}", first + i);
        assert_int_equal(r.value_len, (size_t)wl);
        assert_memory_equal(r.value, want, (size_t)wl);
        assert_int_equal(r.key_len, 4);
        assert_memory_equal(r.key, "op-a", 4);
        if (ack)
            col_spool_ack(s, r.segment);
    }
    assert_int_equal(col_spool_next(s, &r), 0);
}

static size_t count_segments(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    size_t n = 0;
    while ((de = readdir(d)) != NULL)
        if (strncmp(de->d_name, "seg-", 4) == 0)
            n++;
    closedir(d);
    return n;
}

static char *last_segment(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    char best[256] = "";
    while ((de = readdir(d)) != NULL)
        if (strncmp(de->d_name, "seg-", 4) == 0 && strcmp(de->d_name, best) > 0)
            snprintf(best, sizeof best, "%s", de->d_name);
    closedir(d);
    char *p = malloc(4096);
    snprintf(p, 4096, "%s/%s", dir, best);
    return p;
}

static void test_order_across_segments_and_delete(void **state)
{
    (void)state;
    char *dir = make_dir();
    col_spool *s = open_spool(dir, 1 << 24, 1 << 16);
    for (int i = 0; i < 5000; i++)
        put(s, i);
    assert_true(count_segments(dir) > 1);
    assert_int_equal(col_spool_unread(s), 5000);
    expect_run(s, 0, 5000, 1);
    assert_int_equal(col_spool_pending(s), 0);
    /* Fully acknowledged segments are gone. */
    assert_int_equal(count_segments(dir), 0);
    col_spool_free(s);
    rm_dir(dir);
}

static void test_survives_restart_unacked_replayed(void **state)
{
    (void)state;
    char *dir = make_dir();
    col_spool *s = open_spool(dir, 1 << 24, 1 << 16);
    for (int i = 0; i < 100; i++)
        put(s, i);
    col_spool_rec r;
    /* Hand out some without acknowledging: a crash before delivery. */
    for (int i = 0; i < 10; i++)
        assert_int_equal(col_spool_next(s, &r), 1);
    col_spool_free(s);
    s = open_spool(dir, 1 << 24, 1 << 16);
    assert_int_equal(col_spool_pending(s), 100);
    expect_run(s, 0, 100, 1);
    col_spool_free(s);
    rm_dir(dir);
}

/* Reads the records of events ids[0..n) in that order, then nothing more. */
static void expect_ids(col_spool *s, const int *ids, int n)
{
    col_spool_rec r;
    char want[64];
    for (int i = 0; i < n; i++) {
        assert_int_equal(col_spool_next(s, &r), 1);
        int wl = snprintf(want, sizeof want, "{\"message\":\"event %d\"}", ids[i]);
        assert_int_equal(r.key_len, 4);
        assert_memory_equal(r.key, "op-a", 4);
        assert_int_equal(r.value_len, (size_t)wl);
        assert_memory_equal(r.value, want, (size_t)wl);
    }
    assert_int_equal(col_spool_next(s, &r), 0);
}

/* Replay puts a record Kafka refused back at the end of the spool, passing the
 * key and value col_spool_next handed out (pointers into the spool's own read
 * buffer). The record must go back intact, and everything behind it must still
 * read, in this run and after a restart. */
static void test_put_back_record_it_just_read(void **state)
{
    (void)state;
    char *dir = make_dir();
    col_spool *s = open_spool(dir, 1 << 24, 1 << 16);
    for (int i = 0; i < 3; i++)
        put(s, i);
    col_spool_rec r;
    assert_int_equal(col_spool_next(s, &r), 1);
    assert_int_equal(col_spool_append(s, r.key, r.key_len, r.value, r.value_len), 0);
    col_spool_ack(s, r.segment);
    put(s, 3);
    const int order[] = {1, 2, 0, 3};
    expect_ids(s, order, 4);
    col_spool_free(s);
    s = open_spool(dir, 1 << 24, 1 << 16);
    /* No read position survives a restart: all five records come again. */
    assert_int_equal(col_spool_pending(s), 5);
    const int again[] = {0, 1, 2, 0, 3};
    expect_ids(s, again, 5);
    col_spool_free(s);
    rm_dir(dir);
}

/* A read error while checking a segment at open is the disk's fault, not the
 * records': the open fails and the segment is left whole, not cut. */
static void test_read_error_at_open_keeps_segment(void **state)
{
    (void)state;
    char err[256];
    char *dir = make_dir();
    col_spool *s = open_spool(dir, 1 << 24, 1 << 16);
    for (int i = 0; i < 5; i++)
        put(s, i);
    col_spool_free(s);
    col_spool_opts o = {1 << 24, 1 << 16, COL_FSYNC_NEVER};
    fail_reads = 1;
    s = col_spool_open(dir, &o, err, sizeof err);
    fail_reads = 0;
    assert_null(s);
    assert_non_null(strstr(err, strerror(EIO)));
    s = open_spool(dir, 1 << 24, 1 << 16);
    assert_int_equal(col_spool_pending(s), 5);
    expect_run(s, 0, 5, 1);
    col_spool_free(s);
    rm_dir(dir);
}

static void test_torn_tail_cut(void **state)
{
    (void)state;
    char *dir = make_dir();
    col_spool *s = open_spool(dir, 1 << 24, 1 << 20);
    for (int i = 0; i < 3; i++)
        put(s, i);
    col_spool_free(s);
    /* A crash in the middle of writing the third record. */
    char *seg = last_segment(dir);
    struct stat st;
    assert_int_equal(stat(seg, &st), 0);
    assert_int_equal(truncate(seg, st.st_size - 5), 0);
    s = open_spool(dir, 1 << 24, 1 << 20);
    assert_int_equal(col_spool_unread(s), 2);
    /* The tail is cut, and writing goes on after it. */
    put(s, 2);
    expect_run(s, 0, 3, 1);
    col_spool_free(s);
    free(seg);
    rm_dir(dir);
}

static void test_corrupt_record_cut(void **state)
{
    (void)state;
    char *dir = make_dir();
    col_spool *s = open_spool(dir, 1 << 24, 1 << 20);
    for (int i = 0; i < 4; i++)
        put(s, i);
    col_spool_free(s);
    char *seg = last_segment(dir);
    struct stat st;
    assert_int_equal(stat(seg, &st), 0);
    /* Flip a byte inside the payload of the last record: its checksum fails. */
    FILE *f = fopen(seg, "r+");
    assert_non_null(f);
    fseek(f, st.st_size - 3, SEEK_SET);
    fputc('X', f);
    fclose(f);
    s = open_spool(dir, 1 << 24, 1 << 20);
    expect_run(s, 0, 3, 0);
    col_spool_free(s);
    assert_int_equal(stat(seg, &st), 0);
    free(seg);
    rm_dir(dir);
}

/* Found by fuzz_spool: a record whose checksum holds but whose key length runs
 * past its payload was kept on open, and col_spool_next then failed on it at
 * every call, even for records appended later: the spool could never drain. It
 * is cut on open like any corrupt record; what comes after still flows. */
static void test_key_longer_than_record_cut(void **state)
{
    (void)state;
    char *dir = make_dir();
    col_spool *s = open_spool(dir, 1 << 24, 1 << 20);
    for (int i = 0; i < 2; i++)
        put(s, i);
    col_spool_free(s);
    char *seg = last_segment(dir);
    /* Append: u32 length 4 | CRC32C | payload ff ff (key length 65535) 'a' 'b'. */
    unsigned char payload[4] = {0xff, 0xff, 'a', 'b'};
    uint32_t crc = col_crc32c(0, payload, sizeof payload);
    unsigned char rec[12] = {4, 0, 0, 0, (unsigned char)crc, (unsigned char)(crc >> 8),
                             (unsigned char)(crc >> 16), (unsigned char)(crc >> 24)};
    memcpy(rec + 8, payload, sizeof payload);
    FILE *f = fopen(seg, "ab");
    assert_non_null(f);
    assert_int_equal(fwrite(rec, 1, sizeof rec, f), sizeof rec);
    fclose(f);
    s = open_spool(dir, 1 << 24, 1 << 20);
    assert_int_equal(col_spool_unread(s), 2);
    put(s, 2);
    expect_run(s, 0, 3, 1);
    col_spool_free(s);
    free(seg);
    rm_dir(dir);
}

static void test_full_refuses(void **state)
{
    (void)state;
    char *dir = make_dir();
    col_spool *s = open_spool(dir, 1 << 20, 1 << 16);
    char big[4096];
    memset(big, 'a', sizeof big);
    int n = 0;
    while (col_spool_append(s, "op-a", 4, big, sizeof big) == 0)
        n++;
    assert_true(n > 200 && n < 260);
    assert_true(col_spool_bytes(s) <= 1 << 20);
    assert_false(col_spool_has_room(s, 4, sizeof big));
    /* Draining makes room again. */
    col_spool_rec r;
    for (int i = 0; i < 50; i++) {
        assert_int_equal(col_spool_next(s, &r), 1);
        col_spool_ack(s, r.segment);
    }
    assert_int_equal(col_spool_append(s, "op-a", 4, big, sizeof big), 0);
    col_spool_free(s);
    rm_dir(dir);
}

static void test_second_open_locked(void **state)
{
    (void)state;
    char *dir = make_dir();
    char err[256];
    col_spool *s = open_spool(dir, 1 << 24, 1 << 16);
    col_spool_opts o = {1 << 24, 1 << 16, COL_FSYNC_NEVER};
    assert_null(col_spool_open(dir, &o, err, sizeof err));
    assert_non_null(strstr(err, "in use"));
    col_spool_free(s);
    rm_dir(dir);
}

static void test_crc32c_known_value(void **state)
{
    (void)state;
    /* RFC 3720's check value for CRC32C. */
    assert_int_equal(col_crc32c(0, "123456789", 9), 0xe3069283u);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_across_segments_and_delete),
        cmocka_unit_test(test_survives_restart_unacked_replayed),
        cmocka_unit_test(test_put_back_record_it_just_read),
        cmocka_unit_test(test_read_error_at_open_keeps_segment),
        cmocka_unit_test(test_torn_tail_cut),
        cmocka_unit_test(test_corrupt_record_cut),
        cmocka_unit_test(test_key_longer_than_record_cut),
        cmocka_unit_test(test_full_refuses),
        cmocka_unit_test(test_second_open_locked),
        cmocka_unit_test(test_crc32c_known_value),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
