/* Unit tests for storage/st_log_manager: partitions under several log dirs. */
#include "sc_err.h"
#include "sc_log.h"
#include "st_io.h"
#include "st_log_manager.h"
#include "t_util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char root[PATH_MAX];
static char d1[PATH_MAX + 8], d2[PATH_MAX + 8];
static const char *dirs[2];
static st_io_t *io;
static int picks;

static void setup(void)
{
    t_tmpdir("mgr", root);
    snprintf(d1, sizeof d1, "%s/a", root);
    snprintf(d2, sizeof d2, "%s/b", root);
    dirs[0] = d1;
    dirs[1] = d2;
    picks = 0;
    ck_assert_int_eq(st_io_new(ST_IO_FAULT, NULL, &io), 0);
}

static void teardown(void)
{
    st_io_free(io);
    t_rm_rf(root);
}

static st_io_t *pick(void *arg, const char *topic, int32_t partition)
{
    ck_assert_ptr_eq(arg, &picks);
    ck_assert_ptr_nonnull(topic);
    ck_assert_int_ge(partition, 0);
    picks++;
    return io;
}

static st_log_manager_t *open_mgr(unsigned threads)
{
    st_log_manager_opts_t o;
    st_log_manager_t *m = NULL;
    memset(&o, 0, sizeof o);
    o.dirs = dirs;
    o.ndirs = 2;
    st_log_config_default(&o.cfg);
    o.cfg.segment_index_bytes = 4096;
    o.pick_io = pick;
    o.pick_arg = &picks;
    o.threads = threads;
    ck_assert_int_eq(st_log_manager_open(&o, &m), 0);
    return m;
}

static void on_done(void *arg, int rc, int64_t base, int64_t last)
{
    (void)base;
    (void)last;
    ck_assert_int_eq(rc, 0);
    (*(int *)arg)++;
}

static void append_n(st_log_t *log, int n)
{
    sc_recbatch_t b;
    int64_t base, leo;
    int done = 0;
    sc_recbatch_init(&b);
    t_batch_make(&b, n, 16, 1, 1000);
    ck_assert_int_eq(st_log_append(log, b.buf.data, b.buf.len, 0, on_done, &done, &base, &leo), 0);
    ck_assert_int_eq(st_log_commit(log), 0);
    ck_assert_int_eq(st_io_drain(io), 0);
    ck_assert_int_eq(done, 1);
    sc_recbatch_fini(&b);
}

START_TEST(test_st_log_manager_parse_tp_accepts_kafka_names_only)
{
    char t[256];
    int32_t p;
    ck_assert_int_eq(st_log_parse_tp("orders-3", t, sizeof t, &p), 0);
    ck_assert_str_eq(t, "orders");
    ck_assert_int_eq(p, 3);
    ck_assert_int_eq(st_log_parse_tp("my-topic.v2_x-17", t, sizeof t, &p), 0);
    ck_assert_str_eq(t, "my-topic.v2_x");
    ck_assert_int_eq(p, 17);
    ck_assert_int_eq(st_log_parse_tp("__consumer_offsets-49", t, sizeof t, &p), 0);
    ck_assert_int_eq(st_log_parse_tp("orders", t, sizeof t, &p), -1);
    ck_assert_int_eq(st_log_parse_tp("orders-", t, sizeof t, &p), -1);
    ck_assert_int_eq(st_log_parse_tp("-3", t, sizeof t, &p), -1);
    ck_assert_int_eq(st_log_parse_tp("orders-3.abc-delete", t, sizeof t, &p), -1);
    ck_assert_int_eq(st_log_parse_tp("orders-x", t, sizeof t, &p), -1);
    ck_assert_int_eq(st_log_parse_tp("or ders-1", t, sizeof t, &p), -1);
    ck_assert_int_eq(st_log_parse_tp("orders-99999999999", t, sizeof t, &p), -1);
    ck_assert_int_eq(st_log_parse_tp("..-1", t, sizeof t, &p), -1);
}
END_TEST

START_TEST(test_st_log_manager_create_find_reopen_delete)
{
    st_log_manager_t *m = open_mgr(3);
    st_log_t *log = NULL;
    char p[PATH_MAX + 64];

    ck_assert_int_eq(st_log_manager_count(m), 0);
    for (int i = 0; i < 6; i++) {
        ck_assert_int_eq(st_log_manager_create(m, "orders", i, NULL, &log), 0);
        ck_assert_ptr_nonnull(log);
        append_n(log, i + 1);
    }
    ck_assert_int_eq(st_log_manager_create(m, "events", 0, NULL, NULL), 0);
    ck_assert_int_eq(st_log_manager_create(m, "orders", 2, NULL, NULL), -EEXIST);
    ck_assert_int_eq(st_log_manager_create(m, "bad topic", 0, NULL, NULL),
                     SC_ERR_INVALID_TOPIC_EXCEPTION);
    ck_assert_int_eq(st_log_manager_create(m, "t", -1, NULL, NULL),
                     SC_ERR_INVALID_TOPIC_EXCEPTION);
    ck_assert_int_eq(st_log_manager_count(m), 7);
    ck_assert_int_eq(picks, 7);
    /* spread over the two dirs: 4 + 3 */
    int in_a = 0;
    for (int i = 0; i < 6; i++) {
        snprintf(p, sizeof p, "%s/orders-%d", d1, i);
        in_a += t_file_size(p) >= 0;
    }
    snprintf(p, sizeof p, "%s/events-0", d1);
    in_a += t_file_size(p) >= 0;
    ck_assert(in_a == 3 || in_a == 4);
    ck_assert_ptr_null(st_log_manager_find(m, "orders", 6));
    ck_assert_ptr_null(st_log_manager_find(m, "order", 1));
    ck_assert_int_eq(st_log_manager_close(m), 0);

    /* junk the manager must skip */
    snprintf(p, sizeof p, "%s/not_a_partition", d1);
    ck_assert_int_eq(mkdir(p, 0755), 0);
    snprintf(p, sizeof p, "%s/orders-3.0123abcd-delete", d2);
    ck_assert_int_eq(mkdir(p, 0755), 0);
    snprintf(p, sizeof p, "%s/meta.properties", d2);
    int fd = open(p, O_WRONLY | O_CREAT, 0644);
    close(fd);

    picks = 0;
    m = open_mgr(3);
    ck_assert_int_eq(st_log_manager_count(m), 7);
    ck_assert_int_eq(picks, 7);
    for (int i = 0; i < 6; i++) {
        log = st_log_manager_find(m, "orders", i);
        ck_assert_ptr_nonnull(log);
        ck_assert_int_eq(st_log_end_offset(log), i + 1);
    }
    ck_assert_int_eq(st_log_manager_delete(m, "orders", 4), 0);
    ck_assert_int_eq(st_log_manager_delete(m, "orders", 4), SC_ERR_UNKNOWN_TOPIC_OR_PARTITION);
    ck_assert_ptr_null(st_log_manager_find(m, "orders", 4));
    ck_assert_int_eq(st_log_manager_count(m), 6);
    snprintf(p, sizeof p, "%s/orders-4", d1);
    int64_t a = t_file_size(p);
    snprintf(p, sizeof p, "%s/orders-4", d2);
    ck_assert(a == -1 && t_file_size(p) == -1);
    ck_assert_int_eq(st_log_manager_close(m), 0);

    /* one thread works as well */
    m = open_mgr(1);
    ck_assert_int_eq(st_log_manager_count(m), 6);
    ck_assert_int_eq(st_log_end_offset(st_log_manager_find(m, "orders", 5)), 6);
    ck_assert_int_eq(st_log_manager_close(m), 0);
}
END_TEST

static void count_cb(void *arg, const char *topic, int32_t partition, st_log_t *log)
{
    (void)topic;
    (void)partition;
    ck_assert_ptr_nonnull(log);
    (*(int *)arg)++;
}

START_TEST(test_st_log_manager_opens_many_partitions_in_parallel)
{
    st_log_manager_t *m = open_mgr(4);
    char topic[32];
    int n = 0;

    for (int i = 0; i < 100; i++) {
        snprintf(topic, sizeof topic, "t%d", i % 7);
        ck_assert_int_eq(st_log_manager_create(m, topic, i, NULL, NULL), 0);
    }
    ck_assert_int_eq(st_log_manager_close(m), 0);
    m = open_mgr(4);
    ck_assert_int_eq(st_log_manager_count(m), 100);
    st_log_manager_foreach(m, count_cb, &n);
    ck_assert_int_eq(n, 100);
    for (int i = 0; i < 100; i++) {
        snprintf(topic, sizeof topic, "t%d", i % 7);
        ck_assert_ptr_nonnull(st_log_manager_find(m, topic, i));
    }
    ck_assert_int_eq(st_log_manager_close(m), 0);
}
END_TEST

START_TEST(test_st_log_manager_open_fails_whole_when_a_partition_fails)
{
    st_log_manager_t *m = open_mgr(2);
    st_log_manager_opts_t o;
    char p[PATH_MAX + 64];

    ck_assert_int_eq(st_log_manager_create(m, "x", 0, NULL, NULL), 0);
    ck_assert_int_eq(st_log_manager_create(m, "x", 1, NULL, NULL), 0);
    ck_assert_int_eq(st_log_manager_close(m), 0);
    /* a corrupt leader-epoch-checkpoint makes that partition unopenable */
    snprintf(p, sizeof p, "%s/x-1", d2);
    snprintf(p, sizeof p, "%s/x-1/leader-epoch-checkpoint", t_file_size(p) >= 0 ? d2 : d1);
    FILE *f = fopen(p, "w");
    ck_assert_ptr_nonnull(f);
    fputs("garbage\n", f);
    fclose(f);
    memset(&o, 0, sizeof o);
    o.dirs = dirs;
    o.ndirs = 2;
    st_log_config_default(&o.cfg);
    o.pick_io = pick;
    o.pick_arg = &picks;
    m = NULL;
    ck_assert_int_eq(st_log_manager_open(&o, &m), SC_ERR_BAD_FORMAT);
    ck_assert_ptr_null(m);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("st_log_manager");
    TCase *tc = tcase_create("manager");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_st_log_manager_parse_tp_accepts_kafka_names_only);
    tcase_add_test(tc, test_st_log_manager_create_find_reopen_delete);
    tcase_add_test(tc, test_st_log_manager_opens_many_partitions_in_parallel);
    tcase_add_test(tc, test_st_log_manager_open_fails_whole_when_a_partition_fails);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return t_run_suite(suite()); }
