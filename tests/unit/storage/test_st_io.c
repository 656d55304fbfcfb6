/* Unit tests for storage/st_io: every backend keeps the ordering contract;
 * the fault backend injects what it promises. */
#include "sc_err.h"
#include "st_io.h"
#include "t_util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[PATH_MAX];

static void setup(void) { t_tmpdir("io", dir); }
static void teardown(void) { t_rm_rf(dir); }

static int open_file(const char *name)
{
    char p[PATH_MAX + 64];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    int fd = open(p, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    ck_assert_int_ge(fd, 0);
    return fd;
}

/* Backend and write mode per loop index: every backend with writes through
 * the ring / worker (async) and inline. */
static const st_io_kind_t kinds[] = {ST_IO_URING, ST_IO_THREADS, ST_IO_FAULT, ST_IO_URING,
                                     ST_IO_THREADS};
static const int modes[] = {ST_IO_WRITES_ASYNC, ST_IO_WRITES_ASYNC, ST_IO_WRITES_ASYNC,
                            ST_IO_WRITES_INLINE, ST_IO_WRITES_INLINE};
#define NKINDS 5
static int cur_mode = ST_IO_WRITES_INLINE;

static st_io_t *new_io(st_io_kind_t kind, unsigned depth)
{
    st_io_t *io = NULL;
    st_io_opts_t o = {.queue_depth = depth, .writes = cur_mode};
    int rc = st_io_new(kind, &o, &io);
    if (rc && kind == ST_IO_URING) {
        fprintf(stderr, "io_uring unavailable here (%s): uring case not run\n", sc_err_str(rc));
        return NULL;
    }
    ck_assert_int_eq(rc, 0);
    return io;
}

struct rec {
    int nwrites_done;
    int bad_order;
    int last_res;
    int results[4096];
    int sync_seen_writes[16];
    int nsyncs;
};

static struct rec R;

static void on_write(void *arg, int res)
{
    int i = (int)(intptr_t)arg;
    R.results[i] = res;
    R.nwrites_done++;
    R.last_res = res;
}

static void on_sync(void *arg, int res)
{
    (void)arg;
    R.sync_seen_writes[R.nsyncs++] = R.nwrites_done;
    R.last_res = res;
}

START_TEST(test_st_io_writes_land_and_sync_follows_them)
{
    cur_mode = modes[_i];
    st_io_t *io = new_io(kinds[_i], 8);
    if (!io)
        return;
    memset(&R, 0, sizeof R);
    int fd = open_file("a");
    enum { N = 600, SZ = 1000 };
    char *data = malloc((size_t)N * SZ);
    for (int i = 0; i < N * SZ; i++)
        data[i] = (char)(i * 31 + 7);
    /* queue in a scrambled order; more ops than the ring holds */
    for (int k = 0; k < N; k++) {
        int i = (k * 7) % N;
        ck_assert_int_eq(st_io_write(io, fd, data + (size_t)i * SZ, SZ, (uint64_t)i * SZ, on_write,
                                     (void *)(intptr_t)i),
                         0);
        if (k == N / 2)
            ck_assert_int_eq(st_io_sync(io, fd, on_sync, NULL), 0);
    }
    ck_assert_int_eq(st_io_sync(io, fd, on_sync, NULL), 0);
    ck_assert_uint_eq(st_io_pending(io), N + 2);
    ck_assert_int_eq(st_io_drain(io), 0);
    ck_assert_uint_eq(st_io_pending(io), 0);
    ck_assert_int_eq(R.nwrites_done, N);
    ck_assert_int_eq(R.nsyncs, 2);
    /* each sync ran only after every write queued before it */
    ck_assert_int_ge(R.sync_seen_writes[0], N / 2 + 1);
    ck_assert_int_eq(R.sync_seen_writes[1], N);
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(R.results[i], SZ);
    char *back = malloc((size_t)N * SZ);
    ck_assert_int_eq(pread(fd, back, (size_t)N * SZ, 0), N * SZ);
    ck_assert_mem_eq(back, data, (size_t)N * SZ);
    st_io_stats_t st;
    st_io_stats(io, &st);
    ck_assert_uint_eq(st.writes, N);
    ck_assert_uint_eq(st.syncs, 2);
    ck_assert_uint_eq(st.bytes, (uint64_t)N * SZ);
    free(back);
    free(data);
    close(fd);
    st_io_free(io);
}
END_TEST

START_TEST(test_st_io_event_fd_signals_completions)
{
    if (kinds[_i] == ST_IO_FAULT)
        return; /* inline backend has no fd */
    cur_mode = modes[_i];
    st_io_t *io = new_io(kinds[_i], 0);
    if (!io)
        return;
    memset(&R, 0, sizeof R);
    int fd = open_file("b");
    ck_assert_int_ge(st_io_event_fd(io), 0);
    ck_assert_int_eq(st_io_write(io, fd, "hello", 5, 0, on_write, (void *)0), 0);
    if (cur_mode == ST_IO_WRITES_INLINE) {
        /* the write already happened; its completion waits for the next poll */
        struct pollfd q = {.fd = st_io_event_fd(io), .events = POLLIN};
        ck_assert(st_io_has_ready(io));
        ck_assert_int_eq(poll(&q, 1, 0), 1); /* readable while the completion waits */
        ck_assert_int_eq(st_io_poll(io, 0), 1);
        ck_assert_int_eq(R.results[0], 5);
        ck_assert_int_eq(poll(&q, 1, 0), 0); /* and quiet once it ran */
        /* a sync still goes through the backend and its event fd */
        ck_assert_int_eq(st_io_sync(io, fd, on_sync, NULL), 0);
    } else {
        ck_assert(!st_io_has_ready(io));
    }
    ck_assert_int_eq(st_io_submit(io), 1);
    struct pollfd p = {.fd = st_io_event_fd(io), .events = POLLIN};
    ck_assert_int_eq(poll(&p, 1, 10000), 1);
    int n = 0;
    while (st_io_pending(io))
        n += st_io_poll(io, 0) > 0;
    ck_assert_int_eq(R.results[0], 5);
    st_io_free(io);
    close(fd);
}
END_TEST

START_TEST(test_st_io_error_reaches_callback_on_bad_fd)
{
    cur_mode = modes[_i];
    st_io_t *io = new_io(kinds[_i], 0);
    if (!io)
        return;
    memset(&R, 0, sizeof R);
    ck_assert_int_eq(st_io_write(io, 9999, "x", 1, 0, on_write, (void *)0), 0);
    ck_assert_int_eq(st_io_sync(io, 9999, on_sync, NULL), 0);
    ck_assert_int_eq(st_io_drain(io), 0);
    ck_assert_int_eq(R.results[0], -EBADF);
    ck_assert_int_eq(R.last_res, -EBADF);
    st_io_stats_t st;
    st_io_stats(io, &st);
    ck_assert_uint_eq(st.failed, 2);
    st_io_free(io);
}
END_TEST

START_TEST(test_st_io_auto_picks_a_working_backend)
{
    st_io_t *io = NULL;
    ck_assert_int_eq(st_io_new(ST_IO_AUTO, NULL, &io), 0);
    ck_assert(st_io_kind(io) == ST_IO_URING || st_io_kind(io) == ST_IO_THREADS);
    memset(&R, 0, sizeof R);
    int fd = open_file("c");
    ck_assert_int_eq(st_io_write(io, fd, "abc", 3, 0, on_write, (void *)0), 0);
    ck_assert_int_eq(st_io_drain(io), 0);
    ck_assert_int_eq(R.results[0], 3);
    st_io_free(io);
    close(fd);
}
END_TEST

START_TEST(test_st_io_fault_fails_nth_write_and_sync)
{
    st_io_t *io = new_io(ST_IO_FAULT, 0);
    memset(&R, 0, sizeof R);
    int fd = open_file("d");
    st_io_faults_t f = {.fail_write_nth = 3, .fail_write_errno = EIO, .fail_sync_nth = 2,
                        .fail_sync_errno = EIO};
    st_io_fault_set(io, &f);
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(st_io_write(io, fd, "0123456789", 10, (uint64_t)i * 10, on_write,
                                     (void *)(intptr_t)i),
                         0);
    ck_assert_int_eq(st_io_sync(io, fd, on_sync, NULL), 0);
    ck_assert_int_eq(st_io_drain(io), 0);
    ck_assert_int_eq(R.last_res, 0);
    ck_assert_int_eq(st_io_sync(io, fd, on_sync, NULL), 0);
    ck_assert_int_eq(st_io_drain(io), 0);
    ck_assert_int_eq(R.last_res, -EIO);
    ck_assert_int_eq(R.results[0], 10);
    ck_assert_int_eq(R.results[2], -EIO);
    ck_assert_int_eq(R.results[4], 10);
    st_io_free(io);
    close(fd);
}
END_TEST

START_TEST(test_st_io_fault_short_writes_still_complete)
{
    st_io_t *io = new_io(ST_IO_FAULT, 0);
    memset(&R, 0, sizeof R);
    int fd = open_file("e");
    char data[1000], back[1000];
    for (int i = 0; i < 1000; i++)
        data[i] = (char)i;
    st_io_faults_t f = {.short_writes = 7};
    st_io_fault_set(io, &f);
    ck_assert_int_eq(st_io_write(io, fd, data, sizeof data, 0, on_write, (void *)0), 0);
    ck_assert_int_eq(st_io_drain(io), 0);
    ck_assert_int_eq(R.results[0], 1000);
    ck_assert_int_eq(pread(fd, back, sizeof back, 0), 1000);
    ck_assert_mem_eq(back, data, sizeof data);
    st_io_free(io);
    close(fd);
}
END_TEST

START_TEST(test_st_io_fault_enospc_after_budget_and_sticky)
{
    st_io_t *io = new_io(ST_IO_FAULT, 0);
    memset(&R, 0, sizeof R);
    int fd = open_file("f");
    char data[100] = {0};
    st_io_faults_t f = {.enospc_after = 250, .sticky = 1};
    st_io_fault_set(io, &f);
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(
            st_io_write(io, fd, data, 100, (uint64_t)i * 100, on_write, (void *)(intptr_t)i), 0);
    ck_assert_int_eq(st_io_sync(io, fd, on_sync, NULL), 0);
    ck_assert_int_eq(st_io_drain(io), 0);
    ck_assert_int_eq(R.results[0], 100);
    ck_assert_int_eq(R.results[1], 100);
    ck_assert_int_eq(R.results[2], -ENOSPC); /* 50 bytes went in, then ENOSPC */
    ck_assert_int_eq(R.results[3], -ENOSPC);
    ck_assert_int_eq(R.last_res, -ENOSPC); /* sticky: the sync fails too */
    st_io_free(io);
    close(fd);
}
END_TEST

START_TEST(test_st_io_free_drains_pending_operations)
{
    cur_mode = modes[_i];
    st_io_t *io = new_io(kinds[_i], 0);
    if (!io)
        return;
    memset(&R, 0, sizeof R);
    int fd = open_file("g");
    for (int i = 0; i < 50; i++)
        ck_assert_int_eq(st_io_write(io, fd, "z", 1, (uint64_t)i, on_write, (void *)(intptr_t)i), 0);
    ck_assert_int_eq(st_io_sync(io, fd, on_sync, NULL), 0);
    st_io_free(io);
    ck_assert_int_eq(R.nwrites_done, 50);
    ck_assert_int_eq(R.nsyncs, 1);
    close(fd);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("st_io");
    TCase *tc = tcase_create("io");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, test_st_io_writes_land_and_sync_follows_them, 0, NKINDS);
    tcase_add_loop_test(tc, test_st_io_event_fd_signals_completions, 0, NKINDS);
    tcase_add_loop_test(tc, test_st_io_error_reaches_callback_on_bad_fd, 0, NKINDS);
    tcase_add_loop_test(tc, test_st_io_free_drains_pending_operations, 0, NKINDS);
    tcase_add_test(tc, test_st_io_auto_picks_a_working_backend);
    tcase_add_test(tc, test_st_io_fault_fails_nth_write_and_sync);
    tcase_add_test(tc, test_st_io_fault_short_writes_still_complete);
    tcase_add_test(tc, test_st_io_fault_enospc_after_budget_and_sticky);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    st_io_t *probe = NULL;
    int have_uring = st_io_new(ST_IO_URING, NULL, &probe) == 0;
    st_io_free(probe);
    int rc = t_run_suite(suite());
    if (rc == 0 && !have_uring) {
        /* the other backends passed, but the io_uring cases could not run:
         * report a skip, not a pass */
        fprintf(stderr, "SKIP: io_uring cannot be set up here; its cases did not run\n");
        return 77;
    }
    return rc;
}
