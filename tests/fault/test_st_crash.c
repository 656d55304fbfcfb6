/*
 * Crash test for the storage engine: a child process appends with flush on
 * every append (group commit, several batches a turn) and reports each
 * batch's offsets and checksum through a pipe once its callback says it is
 * durable; the parent SIGKILLs the child at a random moment. After each kill
 * the parent reopens the log (recovery) and checks that
 *   - every batch reported durable is present, at its offset, byte-identical;
 *   - the log is a contiguous run of valid batches from the log start offset
 *     to the log end offset: nothing after a torn batch is readable.
 * The log keeps growing across rounds, and small segments make rolls happen
 * mid-crash too. Rounds: STRATA_CRASH_ROUNDS (default 40).
 */
#include "sc_crc32c.h"
#include "sc_err.h"
#include "st_batch.h"
#include "st_log.h"
#include "t_util.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct report {
    int64_t base, last;
    uint32_t len, crc;
};

static char dir[PATH_MAX];

static void log_config(st_log_config_t *c)
{
    st_log_config_default(c);
    c->segment_bytes = 256 * 1024;
    c->index_interval_bytes = 1024;
    c->segment_index_bytes = 64 * 1024;
}

/* ---- the child: append until killed ---- */

struct inflight {
    sc_recbatch_t b;
    int wfd;
    int done;
};

static void on_durable(void *arg, int rc, int64_t base, int64_t last)
{
    struct inflight *f = arg;
    f->done = 1;
    if (rc != 0) {
        fprintf(stderr, "child: append failed: %s\n", sc_err_name(rc));
        _exit(3);
    }
    struct report r = {.base = base, .last = last, .len = (uint32_t)f->b.buf.len};
    r.crc = sc_crc32c(0, f->b.buf.data, f->b.buf.len);
    if (write(f->wfd, &r, sizeof r) != sizeof r)
        _exit(4);
}

static void child(int wfd, unsigned seed)
{
    st_io_t *io;
    st_log_t *log;
    st_log_config_t cfg;
    struct inflight f[8];

    log_config(&cfg);
    if (st_io_new(ST_IO_AUTO, NULL, &io) || st_log_open(dir, &cfg, io, &log))
        _exit(2);
    for (int i = 0; i < 8; i++)
        sc_recbatch_init(&f[i].b);
    srand(seed);
    for (uint32_t turn = 0;; turn++) {
        int k = 1 + rand() % 8;
        for (int i = 0; i < k; i++) {
            int64_t base, leo;
            t_batch_make(&f[i].b, 1 + rand() % 40, (size_t)(rand() % 700), seed + turn * 8 + (uint32_t)i,
                         1000 + turn);
            f[i].wfd = wfd;
            f[i].done = 0;
            if (st_log_append(log, f[i].b.buf.data, f[i].b.buf.len, 1, on_durable, &f[i], &base,
                              &leo))
                _exit(5);
        }
        if (st_log_commit(log))
            _exit(6);
        for (int i = 0; i < k; i++)
            while (!f[i].done)
                if (st_io_poll(io, -1) < 0)
                    _exit(7);
    }
}

/* ---- the parent: kill, reopen, verify ---- */

struct expect {
    struct report *r;
    size_t n, cap;
};

static void expect_add(struct expect *e, const struct report *r)
{
    if (e->n == e->cap) {
        e->cap = e->cap ? e->cap * 2 : 1024;
        e->r = realloc(e->r, e->cap * sizeof *e->r);
    }
    e->r[e->n++] = *r;
}

static void verify(struct expect *e, int round)
{
    st_io_t *io;
    st_log_t *log;
    st_log_config_t cfg;
    size_t cap = 1 << 20, ei = 0;
    uint8_t *buf = malloc(cap);

    log_config(&cfg);
    ck_assert_int_eq(st_io_new(ST_IO_FAULT, NULL, &io), 0);
    ck_assert_int_eq(st_log_open(dir, &cfg, io, &log), 0);
    int64_t off = st_log_start_offset(log), leo = st_log_end_offset(log);
    while (off < leo) {
        int64_t n = st_log_read_copy(log, off, buf, cap, INT64_MAX);
        ck_assert_msg(n > 0, "round %d: read at %lld of %lld gave %lld", round, (long long)off,
                      (long long)leo, (long long)n);
        size_t pos = 0;
        while (pos < (size_t)n) {
            st_batch_hdr_t h;
            ck_assert_int_eq(st_batch_validate(buf + pos, (size_t)n - pos, 0, &h), 0);
            ck_assert_msg(h.base_offset == off, "round %d: gap: batch at %lld, expected %lld",
                          round, (long long)h.base_offset, (long long)off);
            size_t sz = (size_t)h.length + 12;
            /* reported batches must match byte for byte */
            while (ei < e->n && e->r[ei].base < off)
                ei++;
            if (ei < e->n && e->r[ei].base == off) {
                ck_assert_uint_eq(e->r[ei].len, sz);
                ck_assert_uint_eq(e->r[ei].crc, sc_crc32c(0, buf + pos, sz));
                ck_assert_int_eq(e->r[ei].last, st_batch_last_offset(&h));
            }
            off = st_batch_last_offset(&h) + 1;
            pos += sz;
        }
    }
    ck_assert_int_eq(off, leo);
    /* every reported batch lies below the recovered end */
    if (e->n)
        ck_assert_msg(e->r[e->n - 1].last < leo,
                      "round %d: durable offset %lld lost (leo %lld)", round,
                      (long long)e->r[e->n - 1].last, (long long)leo);
    ck_assert_int_eq(st_log_close(log), 0);
    st_io_free(io);
    free(buf);
}

START_TEST(test_st_crash_sigkill_keeps_every_durable_batch)
{
    const char *env = getenv("STRATA_CRASH_ROUNDS");
    int rounds = env ? atoi(env) : 40;
    struct expect e = {0};
    unsigned seed = (unsigned)time(NULL);

    fprintf(stderr, "crash test: %d rounds, seed %u\n", rounds, seed);
    srand(seed);
    t_tmpdir("crash", dir);
    for (int round = 0; round < rounds; round++) {
        int p[2];
        ck_assert_int_eq(pipe(p), 0);
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
            close(p[0]);
            child(p[1], seed + (unsigned)round * 7919u);
        }
        close(p[1]);
        struct timespec ts = {0, (long)(5 + rand() % 120) * 1000000L};
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        int status;
        waitpid(pid, &status, 0);
        ck_assert_msg(WIFSIGNALED(status), "round %d: child exited early with %d", round,
                      WEXITSTATUS(status));
        struct report r;
        ssize_t got;
        while ((got = read(p[0], &r, sizeof r)) == sizeof r)
            expect_add(&e, &r);
        /* a partial report means the kill landed mid-write(2) of the pipe: ignore it */
        close(p[0]);
        verify(&e, round);
    }
    fprintf(stderr, "crash test: %zu durable batches verified\n", e.n);
    ck_assert_uint_gt(e.n, 0);
    free(e.r);
    t_rm_rf(dir);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("st_crash");
    TCase *tc = tcase_create("crash");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_st_crash_sigkill_keeps_every_durable_batch);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return t_run_suite(suite()); }
