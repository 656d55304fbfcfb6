/* Unit tests for replication/rp_meta (local backend): round trip across
 * reopen, atomic replace, corrupt files refused with SC_ERR_BAD_FORMAT,
 * producer-id blocks never reused across reopen, argument errors, and
 * allocation failures leaving the state unchanged. */
#include "rp_meta.h"
#include "rp_meta_int.h"
#include "sc_err.h"
#include "sc_log.h"
#include "sc_mem.h"
#include "t_util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[PATH_MAX];
static char path[PATH_MAX + 64];

static void setup(void)
{
    t_tmpdir("rpmeta", dir);
    snprintf(path, sizeof path, "%s/%s", dir, RP_META_LOCAL_FILE);
}

static void teardown(void) { t_rm_rf(dir); }

static rp_meta_t *open_ok(const char *cluster)
{
    rp_meta_t *m = NULL;
    ck_assert_int_eq(rp_meta_open_local(dir, cluster, &m), 0);
    ck_assert_ptr_nonnull(m);
    return m;
}

static void read_file(uint8_t **data, size_t *len)
{
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    *data = malloc((size_t)n + 1);
    ck_assert_int_eq(fread(*data, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
}

static void write_file(const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fwrite(data, 1, len, f), len);
    fclose(f);
}

START_TEST(test_rp_meta_new_store_records_cluster_id)
{
    rp_meta_t *m = open_ok("AAAAAAAAAAAAAAAAAAAAAA");
    ck_assert_str_eq(rp_meta_cluster_id(m), "AAAAAAAAAAAAAAAAAAAAAA");
    ck_assert_str_eq(rp_meta_backend_name(m), "local");
    ck_assert_int_eq(rp_meta_topic_count(m), 0);
    rp_meta_close(m);
    ck_assert(t_file_size(path) > 0);
    /* a later open keeps the stored id, whatever is proposed */
    m = open_ok("BBBB");
    ck_assert_str_eq(rp_meta_cluster_id(m), "AAAAAAAAAAAAAAAAAAAAAA");
    rp_meta_close(m);
}
END_TEST

START_TEST(test_rp_meta_round_trip_across_reopen)
{
    rp_meta_t *m = open_ok("cid");
    rp_meta_kv_t cfg[] = {{"retention.ms", "1000"}, {"cleanup.policy", "compact"}};
    ck_assert_int_eq(rp_meta_topic_create(m, "a", 3, 1, cfg, 2), 0);
    ck_assert_int_eq(rp_meta_topic_create(m, "b.b-b_b", 1, 1, NULL, 0), 0);
    ck_assert_int_eq(rp_meta_topic_create(m, "gone", 1, 1, NULL, 0), 0);
    ck_assert_int_eq(rp_meta_topic_set_partitions(m, "b.b-b_b", 5), 0);
    rp_meta_kv_t cfg2[] = {{"segment.bytes", "1048576"}};
    ck_assert_int_eq(rp_meta_topic_set_configs(m, "b.b-b_b", cfg2, 1), 0);
    ck_assert_int_eq(rp_meta_topic_delete(m, "gone"), 0);
    uint8_t ida[16];
    memcpy(ida, rp_meta_topic_find(m, "a", 1)->id, 16);
    rp_meta_close(m);

    m = open_ok("other");
    ck_assert_str_eq(rp_meta_cluster_id(m), "cid");
    ck_assert_int_eq(rp_meta_topic_count(m), 2);
    const rp_meta_topic_t *a = rp_meta_topic_at(m, 0), *b = rp_meta_topic_at(m, 1);
    ck_assert_str_eq(a->name, "a");
    ck_assert_int_eq(a->partitions, 3);
    ck_assert_int_eq(a->replication_factor, 1);
    ck_assert_int_eq(memcmp(a->id, ida, 16), 0);
    ck_assert_int_eq(a->nconfigs, 2);
    ck_assert_str_eq(rp_meta_topic_config(a, "retention.ms"), "1000");
    ck_assert_str_eq(rp_meta_topic_config(a, "cleanup.policy"), "compact");
    ck_assert_str_eq(b->name, "b.b-b_b");
    ck_assert_int_eq(b->partitions, 5);
    ck_assert_int_eq(b->nconfigs, 1);
    ck_assert_str_eq(rp_meta_topic_config(b, "segment.bytes"), "1048576");
    ck_assert_ptr_null(rp_meta_topic_config(b, "retention.ms"));
    ck_assert_ptr_null(rp_meta_topic_find(m, "gone", 4));
    ck_assert_int_ne(memcmp(a->id, b->id, 16), 0);
    /* clearing the override set */
    ck_assert_int_eq(rp_meta_topic_set_configs(m, "a", NULL, 0), 0);
    rp_meta_close(m);
    m = open_ok("cid");
    ck_assert_int_eq(rp_meta_topic_find(m, "a", 1)->nconfigs, 0);
    rp_meta_close(m);
}
END_TEST

START_TEST(test_rp_meta_rejects_bad_arguments)
{
    rp_meta_t *m = open_ok("cid");
    char longname[300];
    memset(longname, 'x', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    ck_assert_int_eq(rp_meta_topic_create(m, "", 1, 1, NULL, 0), SC_ERR_INVALID_TOPIC_EXCEPTION);
    ck_assert_int_eq(rp_meta_topic_create(m, longname, 1, 1, NULL, 0),
                     SC_ERR_INVALID_TOPIC_EXCEPTION);
    ck_assert_int_eq(rp_meta_topic_create(m, "t", 0, 1, NULL, 0), SC_ERR_INVALID_PARTITIONS);
    ck_assert_int_eq(rp_meta_topic_create(m, "t", 1, 0, NULL, 0),
                     SC_ERR_INVALID_REPLICATION_FACTOR);
    rp_meta_kv_t dup[] = {{"a", "1"}, {"a", "2"}};
    ck_assert_int_eq(rp_meta_topic_create(m, "t", 1, 1, dup, 2), SC_ERR_INVALID_CONFIG);
    rp_meta_kv_t nullv[] = {{"a", NULL}};
    ck_assert_int_eq(rp_meta_topic_create(m, "t", 1, 1, nullv, 1), SC_ERR_INVALID_CONFIG);
    ck_assert_int_eq(rp_meta_topic_create(m, "t", 2, 1, NULL, 0), 0);
    ck_assert_int_eq(rp_meta_topic_create(m, "t", 2, 1, NULL, 0), SC_ERR_TOPIC_ALREADY_EXISTS);
    ck_assert_int_eq(rp_meta_topic_set_partitions(m, "t", 2), SC_ERR_INVALID_PARTITIONS);
    ck_assert_int_eq(rp_meta_topic_set_partitions(m, "t", 1), SC_ERR_INVALID_PARTITIONS);
    ck_assert_int_eq(rp_meta_topic_set_partitions(m, "u", 9), SC_ERR_UNKNOWN_TOPIC_OR_PARTITION);
    ck_assert_int_eq(rp_meta_topic_delete(m, "u"), SC_ERR_UNKNOWN_TOPIC_OR_PARTITION);
    ck_assert_int_eq(rp_meta_topic_set_configs(m, "u", NULL, 0),
                     SC_ERR_UNKNOWN_TOPIC_OR_PARTITION);
    ck_assert_int_eq(rp_meta_topic_count(m), 1);
    rp_meta_close(m);
    ck_assert_int_eq(rp_meta_open_local(dir, "", &m), SC_ERR_BAD_CONFIG);
}
END_TEST

/* The file is only ever replaced whole: a stale temp file from a crash is
 * ignored, and each change leaves a complete, decodable file. */
START_TEST(test_rp_meta_atomic_replace)
{
    rp_meta_t *m = open_ok("cid");
    ck_assert_int_eq(rp_meta_topic_create(m, "t1", 1, 1, NULL, 0), 0);
    struct stat st1, st2;
    ck_assert_int_eq(stat(path, &st1), 0);
    ck_assert_int_eq(rp_meta_topic_create(m, "t2", 1, 1, NULL, 0), 0);
    ck_assert_int_eq(stat(path, &st2), 0);
    ck_assert(st1.st_ino != st2.st_ino); /* renamed over, not rewritten in place */
    char tmp[PATH_MAX + 80];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    ck_assert_int_ne(access(tmp, F_OK), 0); /* no temp file left behind */
    rp_meta_close(m);

    /* a crash mid-write leaves a torn temp file next to the good one */
    FILE *f = fopen(tmp, "wb");
    fputs("STMD torn", f);
    fclose(f);
    m = open_ok("cid");
    ck_assert_int_eq(rp_meta_topic_count(m), 2);
    ck_assert_int_eq(rp_meta_topic_delete(m, "t1"), 0);
    rp_meta_close(m);
    m = open_ok("cid");
    ck_assert_int_eq(rp_meta_topic_count(m), 1);
    ck_assert_str_eq(rp_meta_topic_at(m, 0)->name, "t2");
    rp_meta_close(m);
}
END_TEST

/* A failed write (here: the directory became read-only... simulated with a
 * directory in place of the temp file) leaves memory and disk unchanged. */
START_TEST(test_rp_meta_failed_write_changes_nothing)
{
    rp_meta_t *m = open_ok("cid");
    ck_assert_int_eq(rp_meta_topic_create(m, "t1", 1, 1, NULL, 0), 0);
    char tmp[PATH_MAX + 80];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    ck_assert_int_eq(mkdir(tmp, 0755), 0); /* open(tmp, O_WRONLY) now fails */
    ck_assert_int_lt(rp_meta_topic_create(m, "t2", 1, 1, NULL, 0), 0);
    ck_assert_int_lt(rp_meta_topic_set_partitions(m, "t1", 4), 0);
    ck_assert_int_lt(rp_meta_topic_delete(m, "t1"), 0);
    int64_t first;
    ck_assert_int_lt(rp_meta_producer_ids_alloc(m, 10, &first), 0);
    ck_assert_int_eq(rp_meta_topic_count(m), 1);
    ck_assert_int_eq(rp_meta_topic_at(m, 0)->partitions, 1);
    rmdir(tmp);
    ck_assert_int_eq(rp_meta_producer_ids_alloc(m, 10, &first), 0);
    ck_assert(first == 0);
    rp_meta_close(m);
    m = open_ok("cid");
    ck_assert_int_eq(rp_meta_topic_count(m), 1);
    ck_assert_int_eq(rp_meta_topic_at(m, 0)->partitions, 1);
    rp_meta_close(m);
}
END_TEST

static void expect_refused(const char *what)
{
    rp_meta_t *m = NULL;
    int rc = rp_meta_open_local(dir, "cid", &m);
    ck_assert_msg(rc == SC_ERR_BAD_FORMAT, "%s: got %d", what, rc);
    ck_assert_ptr_null(m);
}

START_TEST(test_rp_meta_corrupt_file_is_refused)
{
    rp_meta_t *m = open_ok("cid");
    ck_assert_int_eq(rp_meta_topic_create(m, "topic", 4, 1, NULL, 0), 0);
    rp_meta_close(m);
    uint8_t *good;
    size_t len;
    read_file(&good, &len);
    uint8_t *b = malloc(len + 8);
    int devnull = open("/dev/null", O_WRONLY);
    sc_log_set_fd(devnull); /* hundreds of expected "is corrupt" lines */

    /* every single-bit flip anywhere in the file is caught */
    for (size_t i = 0; i < len; i++) {
        memcpy(b, good, len);
        b[i] ^= 0x10;
        write_file(b, len);
        expect_refused("bit flip");
    }
    /* every truncation */
    for (size_t n = 0; n < len; n++) {
        write_file(good, n);
        expect_refused("truncated");
    }
    /* trailing garbage */
    memcpy(b, good, len);
    memcpy(b + len, "garbage!", 8);
    write_file(b, len + 8);
    expect_refused("trailing bytes");

    /* a valid frame whose protobuf breaks an invariant (partitions 0) */
    rp__image_t img = {0};
    strcpy(img.cluster_id, "cid");
    rp_meta_topic_t t = {.name = "x", .partitions = 0, .replication_factor = 1};
    rp_meta_topic_t *tp = &t;
    img.topics = &tp;
    img.ntopics = 1;
    sc_buf_t sb;
    sc_buf_init(&sb);
    ck_assert_int_eq(rp__meta_encode(&img, &sb), 0);
    write_file(sb.data, sb.len);
    expect_refused("zero partitions");
    sc_buf_fini(&sb);

    /* the file is left exactly as it was (never reset) */
    write_file(good, len - 1);
    expect_refused("truncated");
    ck_assert_int_eq(t_file_size(path), (int64_t)len - 1);
    /* and the good one still loads */
    write_file(good, len);
    m = open_ok("cid");
    ck_assert_int_eq(rp_meta_topic_find(m, "topic", 5)->partitions, 4);
    rp_meta_close(m);
    sc_log_set_fd(2);
    close(devnull);
    free(b);
    free(good);
}
END_TEST

START_TEST(test_rp_meta_producer_id_blocks_never_reused_across_reopen)
{
    int64_t last = -1, pid;
    for (int round = 0; round < 3; round++) {
        rp_meta_t *m = open_ok("cid");
        for (int i = 0; i < RP_META_PID_BLOCK + 5; i++) {
            ck_assert_int_eq(rp_meta_producer_id_next(m, &pid), 0);
            ck_assert_msg(pid > last, "pid %lld after %lld", (long long)pid, (long long)last);
            last = pid;
        }
        rp_meta_close(m); /* the rest of the current block is abandoned */
    }
    ck_assert(last >= 3 * (RP_META_PID_BLOCK + 5) - 1);
    rp_meta_t *m = open_ok("cid");
    int64_t first;
    ck_assert_int_eq(rp_meta_producer_ids_alloc(m, 7, &first), 0);
    ck_assert(first > last);
    ck_assert_int_eq(rp_meta_producer_ids_alloc(m, 0, &first), SC_ERR_INVALID_REQUEST);
    ck_assert_int_eq(rp_meta_producer_ids_alloc(m, INT64_MAX, &first), SC_ERR_INVALID_REQUEST);
    rp_meta_close(m);
}
END_TEST

START_TEST(test_rp_meta_survives_allocation_failure)
{
    rp_meta_t *m = open_ok("cid");
    ck_assert_int_eq(rp_meta_topic_create(m, "base", 1, 1, NULL, 0), 0);
    rp_meta_kv_t cfg[] = {{"k", "v"}};
    for (long nth = 1; nth < 30; nth++) {
        sc_mem_fail_after(nth, 1);
        int rc1 = rp_meta_topic_create(m, "t", 2, 1, cfg, 1);
        int rc2 = rp_meta_topic_set_configs(m, "base", cfg, 1);
        sc_mem_fail_after(0, 0);
        ck_assert(rc1 == 0 || rc1 == SC_ERR_NO_MEMORY);
        ck_assert(rc2 == 0 || rc2 == SC_ERR_NO_MEMORY);
        if (rc1 == 0)
            ck_assert_int_eq(rp_meta_topic_delete(m, "t"), 0);
        ck_assert_int_eq(rp_meta_topic_count(m), 1);
        ck_assert_int_eq(rp_meta_topic_set_configs(m, "base", NULL, 0), 0);
    }
    rp_meta_close(m);
    for (long nth = 1; nth < 30; nth++) {
        sc_mem_fail_after(nth, 1);
        rp_meta_t *m2 = NULL;
        int rc = rp_meta_open_local(dir, "cid", &m2);
        sc_mem_fail_after(0, 0);
        ck_assert(rc == 0 || rc == SC_ERR_NO_MEMORY);
        if (rc == 0)
            ck_assert_int_eq(rp_meta_topic_count(m2), 1);
        rp_meta_close(m2);
    }
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("rp_meta");
    TCase *tc = tcase_create("local");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_rp_meta_new_store_records_cluster_id);
    tcase_add_test(tc, test_rp_meta_round_trip_across_reopen);
    tcase_add_test(tc, test_rp_meta_rejects_bad_arguments);
    tcase_add_test(tc, test_rp_meta_atomic_replace);
    tcase_add_test(tc, test_rp_meta_failed_write_changes_nothing);
    tcase_add_test(tc, test_rp_meta_corrupt_file_is_refused);
    tcase_add_test(tc, test_rp_meta_producer_id_blocks_never_reused_across_reopen);
    tcase_add_test(tc, test_rp_meta_survives_allocation_failure);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return t_run_suite(make_suite()); }
