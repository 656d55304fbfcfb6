/*
 * Unit tests for storage/st_log: appends, group commit, reads, time lookups,
 * rolls, retention, truncation, leader epochs, recovery and I/O failures.
 * Most tests run on ST_IO_FAULT (operations run inline inside st_io_poll,
 * deterministic, countable); the round trip also runs on ST_IO_AUTO.
 */
#include "sc_buf.h"
#include "sc_endian.h"
#include "sc_err.h"
#include "sc_log.h"
#include "sc_time.h"
#include "sc_crc32c.h"
#include "st_batch.h"
#include "st_cleaner.h"
#include "st_io.h"
#include "st_log.h"
#include "t_util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAXB 4096

static char root[PATH_MAX];
static char pdir[PATH_MAX + 16];
static st_io_t *io;
static int64_t T0; /* a realistic base timestamp (a minute ago) */

/* callbacks, in the order they ran */
static struct {
    int n;
    int rc[MAXB];
    int64_t base[MAXB], last[MAXB];
} CB;

/* every batch appended: its buffer (kept alive), offsets, and place in `stored` */
static struct {
    int n;
    uint8_t *p[MAXB];
    size_t len[MAXB];
    int64_t base[MAXB], last[MAXB];
    size_t at[MAXB];
} B;
static sc_buf_t stored; /* the bytes the log should hold, from offset 0 */
static void *owned[MAXB]; /* every buffer handed to the log, freed at teardown */
static int nowned;

static void on_done(void *arg, int rc, int64_t base, int64_t last)
{
    (void)arg;
    ck_assert_int_lt(CB.n, MAXB);
    CB.rc[CB.n] = rc;
    CB.base[CB.n] = base;
    CB.last[CB.n] = last;
    CB.n++;
}

static void setup(void)
{
    t_tmpdir("log", root);
    snprintf(pdir, sizeof pdir, "%s/topic-0", root);
    memset(&CB, 0, sizeof CB);
    memset(&B, 0, sizeof B);
    nowned = 0;
    sc_buf_init(&stored);
    T0 = sc_now_ms() - 60000;
    io = NULL;
}

static void teardown(void)
{
    for (int i = 0; i < nowned; i++)
        free(owned[i]);
    sc_buf_fini(&stored);
    st_io_free(io);
    t_rm_rf(root);
}

static st_io_t *new_io(st_io_kind_t kind)
{
    st_io_t *x = NULL;
    ck_assert_int_eq(st_io_new(kind, NULL, &x), 0);
    return x;
}

static void cfg_small(st_log_config_t *c, int64_t seg_bytes, int32_t interval)
{
    st_log_config_default(c);
    c->segment_bytes = seg_bytes;
    c->index_interval_bytes = interval;
    c->segment_index_bytes = 4096;
}

static st_log_t *open_log(const st_log_config_t *c)
{
    st_log_t *l = NULL;
    ck_assert_int_eq(st_log_open(pdir, c, io, &l), 0);
    return l;
}

static uint8_t *make_batch(int n, size_t vs, uint32_t seed, int64_t ts0, size_t *len)
{
    sc_recbatch_t b;
    sc_recbatch_init(&b);
    t_batch_make(&b, n, vs, seed, ts0);
    uint8_t *p = malloc(b.buf.len);
    memcpy(p, b.buf.data, b.buf.len);
    *len = b.buf.len;
    sc_recbatch_fini(&b);
    return p;
}

/* Appends one batch of n records (values of vs bytes, timestamps ts0..) with
 * leader epoch `epoch`; records it in B and `stored`. Returns its base. */
static int64_t append_e(st_log_t *log, int n, size_t vs, int64_t ts0, int32_t epoch)
{
    size_t len;
    int64_t base, leo;
    int i = B.n;
    uint8_t *p = make_batch(n, vs, (uint32_t)i + 1, ts0, &len);

    ck_assert_int_lt(i, MAXB);
    ck_assert_int_lt(nowned, MAXB);
    owned[nowned++] = p;
    ck_assert_int_eq(st_log_append(log, p, len, epoch, on_done, NULL, &base, &leo), 0);
    ck_assert_int_eq(leo, base + n);
    B.p[i] = p;
    B.len[i] = len;
    B.base[i] = base;
    B.last[i] = base + n - 1;
    B.at[i] = stored.len;
    B.n++;
    sc_buf_append(&stored, p, len);
    return base;
}

static int64_t append1(st_log_t *log, int n, size_t vs, int64_t ts0)
{
    return append_e(log, n, vs, ts0, 3);
}

static void commit_drain(st_log_t *log)
{
    ck_assert_int_eq(st_log_commit(log), 0);
    ck_assert_int_eq(st_io_drain(io), 0);
}

/* Reads from offset `from` to the end with slices; returns a malloc'd copy. */
static size_t read_all(st_log_t *log, int64_t from, uint8_t **out)
{
    size_t cap = 1 << 16, len = 0;
    uint8_t *buf = malloc(cap);
    int64_t off = from;

    for (;;) {
        st_slice_t s;
        ck_assert_int_eq(st_log_read(log, off, 1 << 15, INT64_MAX, &s), 0);
        if (s.len == 0)
            break;
        ck_assert_int_gt(s.next_offset, off);
        while (len + s.len > cap) {
            cap *= 2;
            buf = realloc(buf, cap);
        }
        ck_assert_int_eq(pread(s.fd, buf + len, s.len, (off_t)s.pos), (ssize_t)s.len);
        len += s.len;
        off = s.next_offset;
    }
    ck_assert_int_eq(off, st_log_end_offset(log));
    *out = buf;
    return len;
}

static void assert_log_holds(st_log_t *log, const void *want, size_t n)
{
    uint8_t *got;
    size_t len = read_all(log, st_log_start_offset(log), &got);
    ck_assert_uint_eq(len, n);
    ck_assert(memcmp(got, want, n) == 0);
    free(got);
}

static void assert_all_callbacks_ok(int n)
{
    ck_assert_int_eq(CB.n, n);
    for (int i = 0; i < n; i++) {
        ck_assert_int_eq(CB.rc[i], 0);
        if (i > 0)
            ck_assert_int_eq(CB.base[i], CB.last[i - 1] + 1);
    }
}

/* sorted segment bases from the directory */
static int list_bases(int64_t *bases, int max)
{
    DIR *d = opendir(pdir);
    struct dirent *e;
    int n = 0;
    ck_assert_ptr_nonnull(d);
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l == 24 && strcmp(e->d_name + 20, ".log") == 0 && n < max)
            bases[n++] = strtoll(e->d_name, NULL, 10);
    }
    closedir(d);
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && bases[j - 1] > bases[j]; j--) {
            int64_t t = bases[j];
            bases[j] = bases[j - 1];
            bases[j - 1] = t;
        }
    return n;
}

static void seg_path(char *out, int64_t base, const char *sfx)
{
    snprintf(out, PATH_MAX + 64, "%s/%020lld%s", pdir, (long long)base, sfx);
}

static int ckpt_clean_flag(void)
{
    char p[PATH_MAX + 64];
    uint8_t b[36];
    snprintf(p, sizeof p, "%s/partition.checkpoint", pdir);
    int fd = open(p, O_RDONLY);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(read(fd, b, sizeof b), 36);
    close(fd);
    ck_assert_uint_eq(sc_load_be32(b), 0x5354434B);
    return b[7] & 1;
}

/* captures log lines into a file; returns its contents on stop */
static int logfd = -1;
static void log_capture_start(void)
{
    char p[PATH_MAX + 16];
    snprintf(p, sizeof p, "%s/log.txt", root);
    logfd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0644);
    ck_assert_int_ge(logfd, 0);
    sc_log_set_fd(logfd);
}

static char *log_capture_stop(void)
{
    static char text[1 << 16];
    sc_log_set_fd(2);
    ssize_t n = pread(logfd, text, sizeof text - 1, 0);
    text[n > 0 ? n : 0] = '\0';
    close(logfd);
    fprintf(stderr, "%s", text);
    return text;
}

/* ---- appends and reads ---- */

static void round_trip(st_io_kind_t kind)
{
    st_log_config_t c;
    st_log_t *log;
    int64_t want = 0;

    io = new_io(kind);
    st_log_config_default(&c);
    log = open_log(&c);
    for (int i = 0; i < 30; i++) {
        int n = 1 + i % 7;
        ck_assert_int_eq(append1(log, n, 10 + 37 * (size_t)i, T0 + i * 10), want);
        want += n;
    }
    ck_assert_int_eq(st_log_end_offset(log), want);
    ck_assert_uint_eq(st_log_size_bytes(log), stored.len);
    commit_drain(log);
    assert_all_callbacks_ok(30);
    ck_assert_int_eq(st_log_written_offset(log), want);
    ck_assert_int_eq(st_log_durable_offset(log), want);
    assert_log_holds(log, stored.data, stored.len);

    /* copy-out from the middle: starts at the batch holding the offset */
    uint8_t buf[1 << 16];
    size_t n = 0;
    ck_assert_int_eq(st_log_read_into(log, B.base[10] + 1, buf, sizeof buf, INT64_MAX, &n), 0);
    ck_assert_uint_eq(n, stored.len - B.at[10]);
    ck_assert(memcmp(buf, stored.data + B.at[10], n) == 0);
    ck_assert_int_eq(st_log_read_into(log, B.base[10], buf, 10, INT64_MAX, &n),
                     SC_ERR_MESSAGE_TOO_LARGE);
    ck_assert_int_eq(st_log_read_into(log, want, buf, sizeof buf, INT64_MAX, &n), 0);
    ck_assert_uint_eq(n, 0);
    ck_assert_int_eq(st_log_read_into(log, want + 1, buf, sizeof buf, INT64_MAX, &n),
                     SC_ERR_OFFSET_OUT_OF_RANGE);
    /* the count-returning variant: errors are always negative */
    ck_assert_int_eq(st_log_read_copy(log, B.base[10], buf, sizeof buf, INT64_MAX),
                     (int64_t)(stored.len - B.at[10]));
    ck_assert_int_eq(st_log_read_copy(log, want, buf, sizeof buf, INT64_MAX), 0);
    ck_assert_int_eq(st_log_read_copy(log, B.base[10], buf, 10, INT64_MAX),
                     -(int64_t)SC_ERR_MESSAGE_TOO_LARGE);
    ck_assert_int_eq(st_log_read_copy(log, want + 1, buf, sizeof buf, INT64_MAX),
                     -(int64_t)SC_ERR_OFFSET_OUT_OF_RANGE);
    ck_assert_int_eq(st_log_close(log), 0);
}

START_TEST(test_st_log_append_read_round_trip_byte_identical)
{
    round_trip(ST_IO_FAULT);
}
END_TEST

START_TEST(test_st_log_append_read_round_trip_on_auto_backend)
{
    round_trip(ST_IO_AUTO);
}
END_TEST

START_TEST(test_st_log_append_read_round_trip_on_threads_backend)
{
    round_trip(ST_IO_THREADS);
}
END_TEST

START_TEST(test_st_log_append_multi_batch_buffer_assigns_offsets)
{
    st_log_config_t c;
    st_log_t *log;
    size_t l1, l2, l3;
    int64_t base, leo;

    io = new_io(ST_IO_FAULT);
    st_log_config_default(&c);
    log = open_log(&c);
    uint8_t *a = make_batch(3, 20, 1, T0, &l1);
    uint8_t *b = make_batch(5, 20, 2, T0, &l2);
    uint8_t *d = make_batch(2, 20, 3, T0, &l3);
    uint8_t *buf = malloc(l1 + l2 + l3);
    memcpy(buf, a, l1);
    memcpy(buf + l1, b, l2);
    memcpy(buf + l1 + l2, d, l3);
    ck_assert_int_eq(st_log_append(log, buf, l1 + l2 + l3, 9, on_done, NULL, &base, &leo), 0);
    ck_assert_int_eq(base, 0);
    ck_assert_int_eq(leo, 10);
    /* offsets and epoch rewritten in place, CRC still valid */
    st_batch_hdr_t h;
    ck_assert_int_eq(st_batch_validate(buf + l1, l2, 0, &h), 0);
    ck_assert_int_eq(h.base_offset, 3);
    ck_assert_int_eq(h.leader_epoch, 9);
    commit_drain(log);
    ck_assert_int_eq(CB.n, 1);
    ck_assert_int_eq(CB.rc[0], 0);
    ck_assert_int_eq(CB.base[0], 0);
    ck_assert_int_eq(CB.last[0], 9);
    static const int64_t firsts[] = {0, 3, 8};
    static const int64_t offs[] = {0, 4, 9};
    for (int i = 0; i < 3; i++) {
        st_slice_t s;
        ck_assert_int_eq(st_log_read(log, offs[i], 1, INT64_MAX, &s), 0);
        ck_assert_int_eq(s.first_offset, firsts[i]);
        ck_assert_uint_eq(s.len, i == 0 ? l1 : i == 1 ? l2 : l3);
    }
    uint8_t out[4096];
    size_t n = 0;
    ck_assert_int_eq(st_log_read_into(log, 0, out, sizeof out, INT64_MAX, &n), 0);
    ck_assert_uint_eq(n, l1 + l2 + l3);
    ck_assert(memcmp(out, buf, l1 + l2 + l3) == 0);
    ck_assert_int_eq(st_log_epoch_latest(log), 9);
    ck_assert_int_eq(st_log_close(log), 0);
    free(a);
    free(b);
    free(d);
    free(buf);
}
END_TEST

START_TEST(test_st_log_append_rejects_bad_batch_and_writes_nothing)
{
    st_log_config_t c;
    st_log_t *log;
    size_t l1, l2;
    int64_t base = -7, leo = -7;
    st_io_stats_t st;
    char p[PATH_MAX + 64];

    io = new_io(ST_IO_FAULT);
    cfg_small(&c, 4096, 4096);
    log = open_log(&c);
    uint8_t *a = make_batch(3, 20, 1, T0, &l1);
    uint8_t *b = make_batch(5, 20, 2, T0, &l2);
    uint8_t *buf = malloc(l1 + l2 + 8);
    memcpy(buf, a, l1);
    memcpy(buf + l1, b, l2);
    /* a flipped byte in the second batch's records: CRC */
    buf[l1 + l2 - 3] ^= 0x40;
    ck_assert_int_eq(st_log_append(log, buf, l1 + l2, 0, on_done, NULL, &base, &leo),
                     SC_ERR_CORRUPT_MESSAGE);
    buf[l1 + l2 - 3] ^= 0x40;
    /* trailing bytes that are not a batch */
    memset(buf + l1 + l2, 0, 8);
    ck_assert_int_eq(st_log_append(log, buf, l1 + l2 + 8, 0, on_done, NULL, &base, &leo),
                     SC_ERR_CORRUPT_MESSAGE);
    /* magic 1 */
    buf[l1 + ST_BATCH_OFF_MAGIC] = 1;
    ck_assert_int_eq(st_log_append(log, buf, l1 + l2, 0, on_done, NULL, &base, &leo),
                     SC_ERR_INVALID_RECORD);
    buf[l1 + ST_BATCH_OFF_MAGIC] = 2;
    /* nothing at all */
    ck_assert_int_eq(st_log_append(log, buf, 0, 0, on_done, NULL, &base, &leo),
                     SC_ERR_CORRUPT_MESSAGE);
    /* bigger than a segment */
    size_t lb;
    uint8_t *big = make_batch(4, 2000, 3, T0, &lb);
    ck_assert_int_eq(st_log_append(log, big, lb, 0, on_done, NULL, &base, &leo),
                     SC_ERR_MESSAGE_TOO_LARGE);
    ck_assert_int_eq(base, -7);
    ck_assert_int_eq(leo, -7);
    ck_assert_int_eq(st_log_commit(log), 0);
    ck_assert_int_eq(st_io_drain(io), 0);
    ck_assert_int_eq(CB.n, 0);
    st_io_stats(io, &st);
    ck_assert_int_eq(st.writes, 0);
    ck_assert_int_eq(st_log_end_offset(log), 0);
    seg_path(p, 0, ".log");
    ck_assert_int_eq(t_file_size(p), 0);
    /* the log carries on normally */
    ck_assert_int_eq(append1(log, 2, 10, T0), 0);
    commit_drain(log);
    assert_all_callbacks_ok(1);
    assert_log_holds(log, stored.data, stored.len);
    ck_assert_int_eq(st_log_close(log), 0);
    free(a);
    free(b);
    free(big);
    free(buf);
}
END_TEST

START_TEST(test_st_log_read_stops_at_written_offset)
{
    st_log_config_t c;
    st_log_t *log;
    st_slice_t s;

    io = new_io(ST_IO_FAULT);
    st_log_config_default(&c);
    log = open_log(&c);
    append1(log, 4, 10, T0);
    /* queued, not written: invisible to reads */
    ck_assert_int_eq(st_log_end_offset(log), 4);
    ck_assert_int_eq(st_log_written_offset(log), 0);
    ck_assert_int_eq(st_log_read(log, 0, 1 << 20, INT64_MAX, &s), 0);
    ck_assert_uint_eq(s.len, 0);
    ck_assert_int_eq(st_log_read(log, 4, 1 << 20, INT64_MAX, &s), 0);
    ck_assert_uint_eq(s.len, 0);
    ck_assert_int_eq(st_log_read(log, 5, 1 << 20, INT64_MAX, &s), SC_ERR_OFFSET_OUT_OF_RANGE);
    commit_drain(log);
    ck_assert_int_eq(st_log_written_offset(log), 4);
    ck_assert_int_eq(st_log_read(log, 0, 1 << 20, INT64_MAX, &s), 0);
    ck_assert_uint_eq(s.len, stored.len);
    /* max_offset (e.g. the high watermark) bounds reads too */
    ck_assert_int_eq(st_log_read(log, 0, 1 << 20, 3, &s), 0);
    ck_assert_uint_eq(s.len, 0);
    ck_assert_int_eq(st_log_close(log), 0);
}
END_TEST

START_TEST(test_st_log_roll_by_segment_bytes)
{
    st_log_config_t c;
    st_log_t *log;
    int64_t bases[64];
    char p[PATH_MAX + 64];

    io = new_io(ST_IO_FAULT);
    cfg_small(&c, 4096, 512);
    log = open_log(&c);
    for (int i = 0; i < 40; i++)
        append1(log, 1 + i % 4, 50 + (size_t)(i * 13) % 200, T0 + i);
    commit_drain(log);
    assert_all_callbacks_ok(40);
    int n = list_bases(bases, 64);
    ck_assert_int_gt(n, 3);
    ck_assert_int_eq((int)st_log_segment_count(log), n);
    int64_t total = 0;
    for (int i = 0; i < n; i++) {
        seg_path(p, bases[i], ".log");
        int64_t sz = t_file_size(p);
        ck_assert_int_le(sz, 4096);
        ck_assert_int_gt(sz, 0);
        total += sz;
        /* every base is a batch's base offset */
        int found = 0;
        for (int k = 0; k < B.n; k++)
            found |= B.base[k] == bases[i];
        ck_assert(found);
    }
    ck_assert_int_eq(total, (int64_t)stored.len);
    assert_log_holds(log, stored.data, stored.len);
    ck_assert_int_eq(st_log_close(log), 0);
    /* closed, inactive indexes are trimmed to whole entries */
    for (int i = 0; i < n; i++) {
        seg_path(p, bases[i], ".index");
        ck_assert_int_eq(t_file_size(p) % 8, 0);
        ck_assert_int_lt(t_file_size(p), 4096);
        seg_path(p, bases[i], ".timeindex");
        ck_assert_int_eq(t_file_size(p) % 12, 0);
        ck_assert_int_ge(t_file_size(p), 12); /* at least the final entry */
    }
}
END_TEST

START_TEST(test_st_log_roll_by_segment_ms_on_tick)
{
    st_log_config_t c;
    st_log_t *log;
    char p[PATH_MAX + 64];

    io = new_io(ST_IO_FAULT);
    st_log_config_default(&c);
    c.segment_ms = 1000;
    log = open_log(&c);
    ck_assert_int_eq(st_log_tick(log, sc_now_ms() + 5000), 0); /* empty: no roll */
    ck_assert_int_eq(st_log_segment_count(log), 1);
    append1(log, 3, 10, T0);
    commit_drain(log);
    ck_assert_int_eq(st_log_tick(log, sc_now_ms()), 0);
    ck_assert_int_eq(st_log_segment_count(log), 1);
    ck_assert_int_eq(st_log_tick(log, sc_now_ms() + 5000), 0);
    ck_assert_int_eq(st_log_segment_count(log), 2);
    seg_path(p, 3, ".log");
    ck_assert_int_eq(t_file_size(p), 0);
    ck_assert_int_eq(st_log_tick(log, sc_now_ms() + 10000), 0);
    ck_assert_int_eq(st_log_segment_count(log), 2);
    ck_assert_int_eq(append1(log, 2, 10, T0), 3);
    commit_drain(log);
    ck_assert_int_gt(t_file_size(p), 0);
    assert_log_holds(log, stored.data, stored.len);
    ck_assert_int_eq(st_log_close(log), 0);
}
END_TEST

/* Every offset, read alone, lands in the batch holding it, byte-identical. */
static void check_every_offset(st_log_t *log)
{
    int64_t leo = st_log_end_offset(log), bases[256];
    st_slice_t s;
    uint8_t buf[1 << 14];
    int k = 0;

    for (int64_t off = st_log_start_offset(log); off < leo; off++) {
        while (B.last[k] < off)
            k++;
        ck_assert_int_eq(st_log_read(log, off, 1, INT64_MAX, &s), 0);
        ck_assert_int_eq(s.first_offset, B.base[k]);
        ck_assert_int_eq(s.next_offset, B.last[k] + 1);
        ck_assert_uint_eq(s.len, B.len[k]);
        ck_assert_int_eq(pread(s.fd, buf, s.len, (off_t)s.pos), (ssize_t)s.len);
        ck_assert(memcmp(buf, stored.data + B.at[k], s.len) == 0);
    }
    ck_assert_int_eq(st_log_read(log, leo, 1, INT64_MAX, &s), 0);
    ck_assert_uint_eq(s.len, 0);
    ck_assert_int_eq(st_log_read(log, leo + 1, 1, INT64_MAX, &s), SC_ERR_OFFSET_OUT_OF_RANGE);
    /* segment boundaries: a read stays within one segment */
    int n = list_bases(bases, 256);
    for (int i = 1; i < n; i++) {
        ck_assert_int_eq(st_log_read(log, bases[i], 1, INT64_MAX, &s), 0);
        ck_assert_int_eq(s.first_offset, bases[i]);
        ck_assert_int_eq(st_log_read(log, bases[i] - 1, 1 << 20, INT64_MAX, &s), 0);
        ck_assert_int_eq(s.next_offset, bases[i]);
    }
}

START_TEST(test_st_log_read_every_offset_at_every_boundary)
{
    st_log_config_t c;
    st_log_t *log;

    io = new_io(ST_IO_FAULT);
    cfg_small(&c, 8192, 256);
    log = open_log(&c);
    for (int i = 0; i < 60; i++)
        append1(log, 1 + (i * 7) % 13, 5 + (size_t)(i * 31) % 120, T0 + i * 100);
    commit_drain(log);
    ck_assert_int_gt(st_log_segment_count(log), 2);
    check_every_offset(log);
    /* max_bytes: at least one batch, then whole batches that fit */
    st_slice_t s;
    ck_assert_int_eq(st_log_read(log, 0, 0, INT64_MAX, &s), 0);
    ck_assert_uint_eq(s.len, B.len[0]);
    ck_assert_int_eq(st_log_read(log, 0, B.len[0] + B.len[1] + B.len[2] - 1, INT64_MAX, &s), 0);
    ck_assert_uint_eq(s.len, B.len[0] + B.len[1]);
    /* max_offset cuts at the batch boundary before it */
    ck_assert_int_eq(st_log_read(log, 0, 1 << 20, B.base[3], &s), 0);
    ck_assert_int_eq(s.next_offset, B.base[3]);
    ck_assert_int_eq(st_log_read(log, 0, 1 << 20, B.base[3] + 1, &s), 0);
    ck_assert_int_eq(s.next_offset, B.base[3]);
    ck_assert_int_eq(st_log_close(log), 0);
    /* the same after a clean reopen (indexes from disk) */
    log = open_log(&c);
    check_every_offset(log);
    ck_assert_int_eq(st_log_close(log), 0);
}
END_TEST

/* ---- time lookups ---- */

static void check_time_lookups(st_log_t *log, int nb, int per)
{
    int64_t off;
    ck_assert_int_eq(st_log_lookup_time(log, T0 - 5, &off), 0);
    ck_assert_int_eq(off, 0);
    for (int i = 0; i < nb; i++) {
        int64_t t = T0 + 1000 * i;
        ck_assert_int_eq(st_log_lookup_time(log, t, &off), 0);
        ck_assert_int_eq(off, B.base[i]);
        ck_assert_int_eq(st_log_lookup_time(log, t + per - 1, &off), 0);
        ck_assert_int_eq(off, B.base[i] + per - 1);
        ck_assert_int_eq(st_log_lookup_time(log, t + 2, &off), 0);
        ck_assert_int_eq(off, B.base[i] + 2);
        if (i + 1 < nb) {
            ck_assert_int_eq(st_log_lookup_time(log, t + per, &off), 0);
            ck_assert_int_eq(off, B.base[i + 1]);
        }
    }
    ck_assert_int_eq(st_log_lookup_time(log, T0 + 1000 * nb, &off), SC_ERR_NOT_FOUND);
}

START_TEST(test_st_log_lookup_time_finds_first_record_at_or_after)
{
    st_log_config_t c;
    st_log_t *log;
    int64_t off;

    io = new_io(ST_IO_FAULT);
    cfg_small(&c, 2048, 128);
    log = open_log(&c);
    for (int i = 0; i < 40; i++)
        append1(log, 5, 30, T0 + 1000 * i); /* timestamps T0+1000i .. +4 */
    /* an old straggler at the end changes nothing for earlier targets */
    append1(log, 2, 30, T0 - 100000);
    commit_drain(log);
    ck_assert_int_gt(st_log_segment_count(log), 3);
    check_time_lookups(log, 40, 5);
    ck_assert_int_eq(st_log_close(log), 0);
    log = open_log(&c);
    check_time_lookups(log, 40, 5);
    /* after retention the answer is never below the log start */
    ck_assert_int_eq(st_log_delete_records(log, 17), 0);
    ck_assert_int_eq(st_log_lookup_time(log, T0, &off), 0);
    ck_assert_int_eq(off, 17);
    ck_assert_int_eq(st_log_close(log), 0);
}
END_TEST

/* ---- retention ---- */

START_TEST(test_st_log_retention_ms_deletes_old_segments_below_hw)
{
    st_log_config_t c;
    st_log_t *log;
    int64_t now = sc_now_ms(), old = now - 10LL * 24 * 3600 * 1000, bases[64], first_new;

    io = new_io(ST_IO_FAULT);
    cfg_small(&c, 2048, 256);
    log = open_log(&c);
    for (int i = 0; i < 20; i++)
        append1(log, 3, 100, old + i);
    first_new = st_log_end_offset(log);
    for (int i = 0; i < 20; i++)
        append1(log, 3, 100, now - 1000 + i);
    commit_drain(log);
    int n = list_bases(bases, 64);
    int64_t want_lso = 0;
    for (int i = 0; i < n; i++)
        if (bases[i] <= first_new)
            want_lso = bases[i];
    ck_assert_int_gt(want_lso, 0);
    /* nothing goes while the high watermark is below */
    ck_assert_int_eq(st_log_tick(log, now), 0);
    ck_assert_int_eq(st_log_start_offset(log), 0);
    st_log_set_high_watermark(log, st_log_end_offset(log));
    int deleted = st_log_tick(log, now);
    ck_assert_int_gt(deleted, 0);
    ck_assert_int_eq(st_log_start_offset(log), want_lso);
    ck_assert_int_eq((int)st_log_segment_count(log), n - deleted);
    st_slice_t s;
    ck_assert_int_eq(st_log_read(log, want_lso - 1, 1, INT64_MAX, &s), SC_ERR_OFFSET_OUT_OF_RANGE);
    ck_assert_int_eq(st_log_read(log, want_lso, 1, INT64_MAX, &s), 0);
    ck_assert_int_eq(s.first_offset, want_lso);
    ck_assert_int_eq(st_log_tick(log, now), 0);
    ck_assert_int_eq(st_log_close(log), 0);
    log = open_log(&c);
    ck_assert_int_eq(st_log_start_offset(log), want_lso);
    ck_assert_int_eq(st_log_high_watermark(log), st_log_end_offset(log));
    ck_assert_int_eq(st_log_close(log), 0);
}
END_TEST

START_TEST(test_st_log_retention_bytes_keeps_newest_segments)
{
    st_log_config_t c;
    st_log_t *log;
    int64_t now = sc_now_ms(), bases[64];
    char p[PATH_MAX + 64];

    io = new_io(ST_IO_FAULT);
    cfg_small(&c, 2048, 256);
    c.retention_bytes = 5000;
    log = open_log(&c);
    for (int i = 0; i < 40; i++)
        append1(log, 3, 100, now + i);
    commit_drain(log);
    st_log_set_high_watermark(log, st_log_end_offset(log));
    uint64_t before = st_log_size_bytes(log);
    int deleted = st_log_tick(log, now);
    ck_assert_int_gt(deleted, 0);
    uint64_t after = st_log_size_bytes(log);
    ck_assert_uint_lt(after, before);
    ck_assert_int_eq(list_bases(bases, 64), (int)st_log_segment_count(log));
    seg_path(p, bases[0], ".log");
    /* Kafka's rule: the oldest remaining segment is needed to keep >= retention.bytes */
    ck_assert_uint_lt(after - (uint64_t)t_file_size(p), 5000);
    ck_assert_uint_ge(after, 5000);
    ck_assert_int_eq(st_log_start_offset(log), bases[0]);
    ck_assert_int_eq(st_log_close(log), 0);
}
END_TEST

START_TEST(test_st_log_delete_records_advances_start_and_deletes_segments)
{
    st_log_config_t c;
    st_log_t *log;
    int64_t bases[64];
    st_slice_t s;

    io = new_io(ST_IO_FAULT);
    cfg_small(&c, 2048, 256);
    log = open_log(&c);
    for (int i = 0; i < 30; i++)
        append1(log, 4, 80, T0 + i);
    commit_drain(log);
    int n = list_bases(bases, 64);
    ck_assert_int_gt(n, 4);
    int64_t x = bases[3] + 2;
    ck_assert_int_eq(st_log_delete_records(log, st_log_end_offset(log) + 1),
                     SC_ERR_OFFSET_OUT_OF_RANGE);
    ck_assert_int_eq(st_log_delete_records(log, x), 0);
    ck_assert_int_eq(st_log_start_offset(log), x);
    ck_assert_int_eq(list_bases(bases, 64), n - 3);
    ck_assert_int_eq(st_log_read(log, x - 1, 1, INT64_MAX, &s), SC_ERR_OFFSET_OUT_OF_RANGE);
    ck_assert_int_eq(st_log_read(log, x, 1, INT64_MAX, &s), 0);
    ck_assert_int_le(s.first_offset, x);
    ck_assert_int_gt(s.next_offset, x);
    ck_assert_int_eq(st_log_delete_records(log, 1), 0); /* below the start: no-op */
    ck_assert_int_eq(st_log_start_offset(log), x);
    ck_assert_int_eq(st_log_close(log), 0);
    log = open_log(&c);
    ck_assert_int_eq(st_log_start_offset(log), x);
    ck_assert_int_eq(st_log_read(log, x - 1, 1, INT64_MAX, &s), SC_ERR_OFFSET_OUT_OF_RANGE);
    /* all the way to the end: the active segment stays, empty of readable data */
    int64_t leo = st_log_end_offset(log);
    ck_assert_int_eq(st_log_delete_records(log, leo), 0);
    ck_assert_int_eq(st_log_segment_count(log), 1);
    ck_assert_int_eq(st_log_read(log, leo, 1, INT64_MAX, &s), 0);
    ck_assert_uint_eq(s.len, 0);
    ck_assert_int_eq(st_log_close(log), 0);
}
END_TEST

/* ---- truncation ---- */

START_TEST(test_st_log_truncate_to_inside_batch_removes_whole_batch)
{
    st_log_config_t c;
    st_log_t *log;
    st_slice_t s;
    char p[PATH_MAX + 64];

    io = new_io(ST_IO_FAULT);
    st_log_config_default(&c);
    log = open_log(&c);
    append1(log, 5, 10, T0);
    append1(log, 5, 10, T0 + 10);
    append1(log, 5, 10, T0 + 20);
    commit_drain(log);
    st_log_set_high_watermark(log, 15);
    ck_assert_int_eq(st_log_truncate_to(log, 12), 0);
    ck_assert_int_eq(st_log_end_offset(log), 10);
    ck_assert_int_eq(st_log_written_offset(log), 10);
    ck_assert_int_eq(st_log_durable_offset(log), 10);
    ck_assert_int_eq(st_log_high_watermark(log), 10);
    seg_path(p, 0, ".log");
    ck_assert_int_eq(t_file_size(p), (int64_t)(B.len[0] + B.len[1]));
    ck_assert_int_eq(st_log_read(log, 11, 1, INT64_MAX, &s), SC_ERR_OFFSET_OUT_OF_RANGE);
    stored.len = B.at[2];
    B.n = 2;
    ck_assert_int_eq(st_log_truncate_to(log, 10), 0); /* at the end: no-op */
    ck_assert_int_eq(st_log_truncate_to(log, 99), 0);
    ck_assert_int_eq(st_log_end_offset(log), 10);
    ck_assert_int_eq(append1(log, 3, 10, T0 + 30), 10);
    commit_drain(log);
    assert_log_holds(log, stored.data, stored.len);
    ck_assert_int_eq(st_log_close(log), 0);
    log = open_log(&c);
    assert_log_holds(log, stored.data, stored.len);
    ck_assert_int_eq(st_log_end_offset(log), 13);
    ck_assert_int_eq(st_log_close(log), 0);
}
END_TEST

START_TEST(test_st_log_truncate_to_at_batch_boundary)
{
    st_log_config_t c;
    st_log_t *log;

    io = new_io(ST_IO_FAULT);
    cfg_small(&c, 1 << 20, 0); /* index every batch */
    log = open_log(&c);
    for (int i = 0; i < 6; i++)
        append1(log, 4, 10, T0 + 100 * i);
    commit_drain(log);
    ck_assert_int_eq(st_log_truncate_to(log, 12), 0);
    ck_assert_int_eq(st_log_end_offset(log), 12);
    stored.len = B.at[3];
    B.n = 3;
    assert_log_holds(log, stored.data, stored.len);
    int64_t off;
    ck_assert_int_eq(st_log_lookup_time(log, T0 + 300, &off), SC_ERR_NOT_FOUND);
    ck_assert_int_eq(st_log_lookup_time(log, T0 + 200, &off), 0);
    ck_assert_int_eq(off, 8);
    append1(log, 4, 10, T0 + 1000);
    commit_drain(log);
    B.n = 4;
    check_every_offset(log);
    ck_assert_int_eq(st_log_close(log), 0);
}
END_TEST

START_TEST(test_st_log_truncate_to_across_segments)
{
    st_log_config_t c;
    st_log_t *log;
    int64_t bases[64];

    io = new_io(ST_IO_FAULT);
    cfg_small(&c, 2048, 256);
    log = open_log(&c);
    for (int i = 0; i < 30; i++)
        append1(log, 4, 80, T0 + i);
    commit_drain(log);
    int n = list_bases(bases, 64);
    ck_assert_int_gt(n, 4);
    int64_t cut = bases[2] + 5; /* inside a batch of the third segment */
    ck_assert_int_eq(st_log_truncate_to(log, cut), 0);
    int k = 0;
    while (B.last[k] < cut)
        k++;
    ck_assert_int_eq(st_log_end_offset(log), B.base[k]);
    ck_assert_int_eq(list_bases(bases, 64), 3);
    ck_assert_int_eq(st_log_segment_count(log), 3);
    stored.len = B.at[k];
    B.n = k;
    for (int i = 0; i < 10; i++)
        append1(log, 2, 40, T0 + 100 + i);
    commit_drain(log);
    check_every_offset(log);
    ck_assert_int_eq(st_log_close(log), 0);
    log = open_log(&c);
    check_every_offset(log);
    assert_log_holds(log, stored.data, stored.len);
    ck_assert_int_eq(st_log_close(log), 0);
}
END_TEST

START_TEST(test_st_log_truncate_fully_restarts_at_offset)
{
    st_log_config_t c;
    st_log_t *log;
    int64_t bases[64];
    st_slice_t s;

    io = new_io(ST_IO_FAULT);
    cfg_small(&c, 2048, 256);
    log = open_log(&c);
    for (int i = 0; i < 20; i++)
        append1(log, 4, 80, T0 + i);
    commit_drain(log);
    ck_assert_int_eq(st_log_epoch_assign(log, 5, 40), 0);
    ck_assert_int_eq(st_log_truncate_fully(log, 1000), 0);
    ck_assert_int_eq(st_log_start_offset(log), 1000);
    ck_assert_int_eq(st_log_end_offset(log), 1000);
    ck_assert_int_eq(st_log_high_watermark(log), 1000);
    ck_assert_int_eq(st_log_epoch_latest(log), -1);
    ck_assert_int_eq(st_log_size_bytes(log), 0);
    ck_assert_int_eq(list_bases(bases, 64), 1);
    ck_assert_int_eq(bases[0], 1000);
    ck_assert_int_eq(st_log_read(log, 999, 1, INT64_MAX, &s), SC_ERR_OFFSET_OUT_OF_RANGE);
    stored.len = 0;
    ck_assert_int_eq(append1(log, 3, 10, T0), 1000);
    commit_drain(log);
    ck_assert_int_eq(st_log_close(log), 0);
    log = open_log(&c);
    ck_assert_int_eq(st_log_start_offset(log), 1000);
    ck_assert_int_eq(st_log_end_offset(log), 1003);
    assert_log_holds(log, stored.data, stored.len);
    ck_assert_int_eq(st_log_close(log), 0);
}
END_TEST

/* ---- reopen and recovery ---- */

START_TEST(test_st_log_reopen_after_close_keeps_everything)
{
    st_log_config_t c;
    st_log_t *log;
    int64_t bases[64];

    io = new_io(ST_IO_FAULT);
    cfg_small(&c, 4096, 300);
    log = open_log(&c);
    ck_assert_int_eq(ckpt_clean_flag(), 0);
    for (int i = 0; i < 50; i++)
        append_e(log, 1 + i % 5, 60, T0 + i * 10, i < 25 ? 1 : 2);
    commit_drain(log);
    st_log_set_high_watermark(log, 30);
    int64_t leo = st_log_end_offset(log);
    unsigned nseg = st_log_segment_count(log);
    ck_assert_int_eq(st_log_close(log), 0);
    ck_assert_int_eq(ckpt_clean_flag(), 1);
    ck_assert_int_eq(list_bases(bases, 64), (int)nseg);

    log_capture_start();
    log = open_log(&c);
    char *text = log_capture_stop();
    ck_assert_ptr_null(strstr(text, "recovered")); /* clean: no recovery scan */
    ck_assert_int_eq(ckpt_clean_flag(), 0);
    ck_assert_int_eq(st_log_end_offset(log), leo);
    ck_assert_int_eq(st_log_high_watermark(log), 30);
    ck_assert_int_eq(st_log_segment_count(log), nseg);
    ck_assert_int_eq(st_log_epoch_latest(log), 2);
    ck_assert_uint_eq(st_log_size_bytes(log), stored.len);
    check_every_offset(log);
    assert_log_holds(log, stored.data, stored.len);
    ck_assert_int_eq(append1(log, 2, 10, T0 + 999), leo);
    commit_drain(log);
    assert_all_callbacks_ok(51);
    ck_assert_int_eq(st_log_close(log), 0);
    log = open_log(&c);
    assert_log_holds(log, stored.data, stored.len);
    ck_assert_int_eq(st_log_close(log), 0);
}
END_TEST

START_TEST(test_st_log_reopen_after_abandon_recovers_everything)
{
    st_log_config_t c;
    st_log_t *log;

    io = new_io(ST_IO_FAULT);
    cfg_small(&c, 4096, 300);
    log = open_log(&c);
    for (int i = 0; i < 40; i++)
        append1(log, 1 + i % 5, 60, T0 + i * 10);
    commit_drain(log);
    int64_t leo = st_log_end_offset(log);
    ck_assert_int_eq(st_log_abandon(log), 0);
    ck_assert_int_eq(ckpt_clean_flag(), 0);
    log_capture_start();
    log = open_log(&c);
    char *text = log_capture_stop();
    ck_assert_ptr_nonnull(strstr(text, "recovered"));
    ck_assert_ptr_null(strstr(text, "truncated"));
    ck_assert_int_eq(st_log_end_offset(log), leo);
    check_every_offset(log);
    assert_log_holds(log, stored.data, stored.len);
    ck_assert_int_eq(append1(log, 1, 10, T0), leo);
    commit_drain(log);
    ck_assert_int_eq(st_log_abandon(log), 0);
    log = open_log(&c);
    assert_log_holds(log, stored.data, stored.len);
    ck_assert_int_eq(st_log_close(log), 0);
}
END_TEST

START_TEST(test_st_log_recovery_truncates_torn_tail)
{
    st_log_config_t c;
    st_log_t *log;
    int64_t bases[64];
    char p[PATH_MAX + 64], want[PATH_MAX + 128];

    io = new_io(ST_IO_FAULT);
    cfg_small(&c, 4096, 300);
    log = open_log(&c);
    for (int i = 0; i < 30; i++)
        append1(log, 3, 60, T0 + i * 10);
    commit_drain(log);
    ck_assert_int_eq(st_log_abandon(log), 0);
    int n = list_bases(bases, 64);
    int last = B.n - 1;
    seg_path(p, bases[n - 1], ".log");
    /* cut the last batch in half */
    ck_assert_int_eq(truncate(p, t_file_size(p) - (off_t)B.len[last] / 2), 0);
    log_capture_start();
    log = open_log(&c);
    char *text = log_capture_stop();
    snprintf(want, sizeof want, "recovery truncated %s at position", p);
    ck_assert_ptr_nonnull(strstr(text, want));
    snprintf(want, sizeof want, "(offset %lld)", (long long)B.base[last]);
    ck_assert_ptr_nonnull(strstr(text, want));
    ck_assert_int_eq(st_log_end_offset(log), B.base[last]);
    stored.len = B.at[last];
    B.n--;
    assert_log_holds(log, stored.data, stored.len);
    ck_assert_int_eq(append1(log, 3, 60, T0), B.base[last - 1] + 3);
    commit_drain(log);
    ck_assert_int_eq(st_log_abandon(log), 0);
    /* garbage after the last batch (a preallocated or zero-filled tail) */
    n = list_bases(bases, 64);
    seg_path(p, bases[n - 1], ".log");
    int fd = open(p, O_WRONLY | O_APPEND);
    static const uint8_t zeros[100];
    ck_assert_int_eq(write(fd, zeros, sizeof zeros), 100);
    close(fd);
    log = open_log(&c);
    ck_assert_int_eq(st_log_end_offset(log), B.last[B.n - 1] + 1);
    assert_log_holds(log, stored.data, stored.len);
    ck_assert_int_eq(st_log_close(log), 0);
}
END_TEST

START_TEST(test_st_log_recovery_truncates_at_corrupt_batch_and_drops_later_segments)
{
    st_log_config_t c;
    st_log_t *log;
    int64_t bases[64];
    char p[PATH_MAX + 64];

    io = new_io(ST_IO_FAULT);
    cfg_small(&c, 2048, 200);
    log = open_log(&c);
    for (int i = 0; i < 40; i++)
        append1(log, 3, 60, T0 + i * 10);
    commit_drain(log);
    ck_assert_int_eq(st_log_abandon(log), 0);
    int n = list_bases(bases, 64);
    ck_assert_int_gt(n, 4);
    /* the second batch of segment 1 gets a flipped bit in its records */
    int k = 0;
    while (B.base[k] != bases[1])
        k++;
    k++;
    seg_path(p, bases[1], ".log");
    int fd = open(p, O_RDWR);
    uint8_t byte;
    off_t at = (off_t)(B.at[k] - B.at[k - 1] + B.len[k] - 5);
    ck_assert_int_eq(pread(fd, &byte, 1, at), 1);
    byte ^= 0x10;
    ck_assert_int_eq(pwrite(fd, &byte, 1, at), 1);
    close(fd);
    log_capture_start();
    log = open_log(&c);
    char *text = log_capture_stop();
    ck_assert_ptr_nonnull(strstr(text, "CRC"));
    ck_assert_int_eq(st_log_end_offset(log), B.base[k]);
    ck_assert_int_eq(list_bases(bases, 64), 2);
    stored.len = B.at[k];
    B.n = k;
    check_every_offset(log);
    assert_log_holds(log, stored.data, stored.len);
    ck_assert_int_eq(st_log_close(log), 0);
}
END_TEST

START_TEST(test_st_log_recovery_without_checkpoint_scans_everything)
{
    st_log_config_t c;
    st_log_t *log;
    char p[PATH_MAX + 64];

    io = new_io(ST_IO_FAULT);
    cfg_small(&c, 2048, 200);
    log = open_log(&c);
    for (int i = 0; i < 30; i++)
        append1(log, 3, 60, T0 + i * 10);
    commit_drain(log);
    st_log_set_high_watermark(log, 20);
    ck_assert_int_eq(st_log_close(log), 0);
    snprintf(p, sizeof p, "%s/partition.checkpoint", pdir);
    ck_assert_int_eq(unlink(p), 0);
    log_capture_start();
    log = open_log(&c);
    char *text = log_capture_stop();
    ck_assert_ptr_nonnull(strstr(text, "recovered from offset 0"));
    ck_assert_int_eq(st_log_high_watermark(log), 0);
    assert_log_holds(log, stored.data, stored.len);
    ck_assert_int_eq(st_log_close(log), 0);
    /* a garbage checkpoint counts as none */
    int fd = open(p, O_WRONLY | O_TRUNC);
    ck_assert_int_eq(write(fd, "garbage", 7), 7);
    close(fd);
    log = open_log(&c);
    assert_log_holds(log, stored.data, stored.len);
    ck_assert_int_eq(st_log_close(log), 0);
}
END_TEST

START_TEST(test_st_log_recovery_rebuilds_missing_and_corrupt_indexes)
{
    st_log_config_t c;
    st_log_t *log;
    int64_t bases[64];
    char p[PATH_MAX + 64];

    io = new_io(ST_IO_FAULT);
    cfg_small(&c, 2048, 100);
    log = open_log(&c);
    for (int i = 0; i < 40; i++)
        append1(log, 5, 30, T0 + 1000 * i);
    commit_drain(log);
    ck_assert_int_eq(st_log_close(log), 0);
    int n = list_bases(bases, 64);
    ck_assert_int_gt(n, 4);
    seg_path(p, bases[1], ".index");
    ck_assert_int_eq(unlink(p), 0);
    seg_path(p, bases[2], ".timeindex");
    ck_assert_int_eq(truncate(p, 13), 0); /* not whole entries */
    seg_path(p, bases[3], ".index");      /* entries out of order */
    int fd = open(p, O_WRONLY | O_TRUNC);
    uint8_t e[16];
    sc_store_be32(e, 9);
    sc_store_be32(e + 4, 500);
    sc_store_be32(e + 8, 2);
    sc_store_be32(e + 12, 600);
    ck_assert_int_eq(write(fd, e, 16), 16);
    close(fd);
    seg_path(p, bases[n - 1], ".index"); /* the active one too */
    ck_assert_int_eq(unlink(p), 0);
    log_capture_start();
    log = open_log(&c);
    char *text = log_capture_stop();
    ck_assert_ptr_nonnull(strstr(text, "rebuilding indexes"));
    ck_assert_ptr_null(strstr(text, "truncated"));
    check_every_offset(log);
    check_time_lookups(log, 40, 5);
    ck_assert_int_eq(st_log_close(log), 0);
    seg_path(p, bases[1], ".index");
    ck_assert_int_eq(t_file_size(p) % 8, 0);
    ck_assert_int_gt(t_file_size(p), 0);
    seg_path(p, bases[2], ".timeindex");
    ck_assert_int_eq(t_file_size(p) % 12, 0);
}
END_TEST

START_TEST(test_st_log_clean_reopen_with_wrong_index_entry_loses_nothing)
{
    st_log_config_t c;
    st_log_t *log;
    int64_t bases[64];
    char p[PATH_MAX + 64];

    io = new_io(ST_IO_FAULT);
    cfg_small(&c, 1 << 20, 100);
    log = open_log(&c);
    for (int i = 0; i < 30; i++)
        append1(log, 2, 60, T0 + i);
    commit_drain(log);
    ck_assert_int_eq(st_log_close(log), 0);
    ck_assert_int_eq(list_bases(bases, 64), 1);
    /* the last offset index entry now points one byte into its batch: still
     * increasing and inside the file, so only the data can tell */
    seg_path(p, 0, ".index");
    int64_t sz = t_file_size(p);
    ck_assert_int_ge(sz, 16);
    int fd = open(p, O_RDWR);
    uint8_t e[8];
    ck_assert_int_eq(pread(fd, e, 8, sz - 8), 8);
    sc_store_be32(e + 4, sc_load_be32(e + 4) + 1);
    ck_assert_int_eq(pwrite(fd, e, 8, sz - 8), 8);
    close(fd);
    log_capture_start();
    log = open_log(&c);
    char *text = log_capture_stop();
    ck_assert_ptr_nonnull(strstr(text, "rescanning the whole segment"));
    ck_assert_ptr_null(strstr(text, "recovery truncated"));
    ck_assert_int_eq(st_log_end_offset(log), 60);
    check_every_offset(log);
    assert_log_holds(log, stored.data, stored.len);
    ck_assert_int_eq(st_log_close(log), 0);
}
END_TEST

START_TEST(test_st_log_open_handles_empty_dir_orphans_and_empty_active_segment)
{
    st_log_config_t c;
    st_log_t *log;
    char p[PATH_MAX + 64];

    io = new_io(ST_IO_FAULT);
    st_log_config_default(&c);
    c.segment_ms = 1000;
    ck_assert_int_eq(mkdir(pdir, 0755), 0);
    seg_path(p, 500, ".index");
    int fd = open(p, O_WRONLY | O_CREAT, 0644);
    close(fd);
    snprintf(p, sizeof p, "%s/partition.checkpoint.tmp", pdir);
    fd = open(p, O_WRONLY | O_CREAT, 0644);
    close(fd);
    log = open_log(&c);
    ck_assert_int_eq(st_log_end_offset(log), 0);
    ck_assert_int_eq(t_file_size(p), -1); /* temp file removed */
    seg_path(p, 500, ".index");
    ck_assert_int_eq(t_file_size(p), -1); /* orphan removed */
    seg_path(p, 0, ".log");
    ck_assert_int_eq(t_file_size(p), 0);
    /* an empty active segment after a roll, through clean and unclean reopens */
    append1(log, 4, 10, T0);
    commit_drain(log);
    ck_assert_int_eq(st_log_tick(log, sc_now_ms() + 5000), 0);
    ck_assert_int_eq(st_log_segment_count(log), 2);
    ck_assert_int_eq(st_log_close(log), 0);
    log = open_log(&c);
    ck_assert_int_eq(st_log_segment_count(log), 2);
    ck_assert_int_eq(st_log_end_offset(log), 4);
    ck_assert_int_eq(st_log_abandon(log), 0);
    log = open_log(&c);
    ck_assert_int_eq(st_log_end_offset(log), 4);
    assert_log_holds(log, stored.data, stored.len);
    ck_assert_int_eq(append1(log, 1, 10, T0), 4);
    commit_drain(log);
    assert_log_holds(log, stored.data, stored.len);
    ck_assert_int_eq(st_log_close(log), 0);
}
END_TEST

START_TEST(test_st_log_recovery_validates_batches_larger_than_scan_buffer)
{
    st_log_config_t c;
    st_log_t *log;
    char p[PATH_MAX + 64];

    io = new_io(ST_IO_FAULT);
    st_log_config_default(&c);
    log = open_log(&c);
    append1(log, 2, 10, T0);
    append1(log, 3, 700000, T0); /* ~2.1 MB, bigger than the 1 MiB scan buffer */
    commit_drain(log);
    ck_assert_int_eq(st_log_abandon(log), 0);
    log = open_log(&c);
    ck_assert_int_eq(st_log_end_offset(log), 5);
    assert_log_holds(log, stored.data, stored.len);
    ck_assert_int_eq(st_log_abandon(log), 0);
    seg_path(p, 0, ".log");
    int fd = open(p, O_RDWR);
    uint8_t byte = 0;
    off_t at = (off_t)(B.at[1] + 1500000);
    ck_assert_int_eq(pread(fd, &byte, 1, at), 1);
    byte ^= 1;
    ck_assert_int_eq(pwrite(fd, &byte, 1, at), 1);
    close(fd);
    log = open_log(&c);
    ck_assert_int_eq(st_log_end_offset(log), 2);
    ck_assert_int_eq(t_file_size(p), (int64_t)B.len[0]);
    ck_assert_int_eq(st_log_close(log), 0);
}
END_TEST

/* ---- checkpoints and epochs ---- */

START_TEST(test_st_log_checkpoint_persists_hw_and_start)
{
    st_log_config_t c;
    st_log_t *log;

    io = new_io(ST_IO_FAULT);
    st_log_config_default(&c);
    log = open_log(&c);
    for (int i = 0; i < 5; i++)
        append1(log, 4, 10, T0);
    commit_drain(log);
    st_log_set_high_watermark(log, 12);
    ck_assert_int_eq(st_log_high_watermark(log), 12);
    st_log_set_high_watermark(log, 1000);
    ck_assert_int_eq(st_log_high_watermark(log), 20);
    st_log_set_high_watermark(log, 12);
    ck_assert_int_eq(st_log_delete_records(log, 3), 0);
    ck_assert_int_eq(st_log_checkpoint(log), 0);
    ck_assert_int_eq(st_log_abandon(log), 0);
    log = open_log(&c);
    ck_assert_int_eq(st_log_high_watermark(log), 12);
    ck_assert_int_eq(st_log_start_offset(log), 3);
    ck_assert_int_eq(st_log_end_offset(log), 20);
    ck_assert_int_eq(st_log_close(log), 0);
}
END_TEST

/* A batch of n records, made as a leader would have stored it: base offset,
 * leader epoch, and `extra` offsets dropped after its records (a compacted
 * batch: lastOffsetDelta = n - 1 + extra, CRC recomputed). Kept in owned[]. */
static uint8_t *leader_batch(int n, int64_t base, int32_t epoch, int extra, size_t *len)
{
    uint8_t *p = make_batch(n, 20, (uint32_t)(base + 7), T0, len);
    ck_assert_int_lt(nowned, MAXB);
    owned[nowned++] = p;
    if (extra) {
        sc_store_be32(p + ST_BATCH_OFF_LAST_OFFSET_DELTA, (uint32_t)(n - 1 + extra));
        sc_store_be32(p + ST_BATCH_OFF_CRC,
                      sc_crc32c(0, p + ST_BATCH_OFF_ATTRIBUTES, *len - ST_BATCH_OFF_ATTRIBUTES));
    }
    st_batch_set_offset(p, base, epoch);
    return p;
}

/* ST_APPEND_KEEP_OFFSETS (a follower copying a compacted leader): the
 * batches keep their offsets and epochs, offset gaps included, the commit
 * raises the cleaner checkpoint over the gaps, and a crash recovery
 * keeps every copied batch; overlaps and epochs going back are refused with
 * nothing written. */
START_TEST(test_st_log_keep_offsets_copies_gaps_and_survives_recovery)
{
    st_log_config_t c;
    st_log_t *log;
    size_t l0, l1, l2, l3;
    int64_t base, leo, ck;
    int32_t e;
    int64_t end;

    io = new_io(ST_IO_FAULT);
    cfg_small(&c, 4096, 300);
    log = open_log(&c);
    /* contiguous first: no gap, the checkpoint stays */
    uint8_t *b0 = leader_batch(3, 0, 1, 0, &l0);
    ck_assert_int_eq(st_log_append_ex(log, b0, l0, 99, ST_APPEND_KEEP_OFFSETS, on_done, NULL,
                                      &base, &leo), 0);
    ck_assert_int_eq(base, 0);
    ck_assert_int_eq(leo, 3);
    ck_assert_int_eq(st_cleaner_checkpoint_get(pdir, &ck), 0);
    ck_assert_int_eq(ck, 0);
    sc_buf_append(&stored, b0, l0);
    /* one buffer: a gap 3..9 before a batch, then a compacted batch (2 records
     * over offsets 12..16) under a newer epoch */
    uint8_t *b1 = leader_batch(2, 10, 1, 0, &l1);
    uint8_t *b2 = leader_batch(2, 12, 4, 3, &l2);
    uint8_t *two = malloc(l1 + l2);
    owned[nowned++] = two;
    memcpy(two, b1, l1);
    memcpy(two + l1, b2, l2);
    ck_assert_int_eq(st_log_append_ex(log, two, l1 + l2, 0, ST_APPEND_KEEP_OFFSETS, on_done,
                                      NULL, &base, &leo), 0);
    ck_assert_int_eq(base, 10);
    ck_assert_int_eq(leo, 17);
    ck_assert_int_eq(st_cleaner_checkpoint_get(pdir, &ck), 0);
    ck_assert_int_eq(ck, 0); /* raised by the commit, before the appends complete */
    ck_assert_int_eq(st_log_commit(log), 0);
    ck_assert_int_eq(st_cleaner_checkpoint_get(pdir, &ck), 0);
    ck_assert_int_eq(ck, 17);
    ck_assert_int_eq(st_log_epoch_latest(log), 4);
    ck_assert_int_eq(st_log_epoch_end_offset(log, 1, &e, &end), 0);
    ck_assert_int_eq(end, 12); /* epoch 4 starts at its first batch, not at the gap */
    sc_buf_append(&stored, two, l1 + l2);
    /* refused, nothing written: overlapping the log, an epoch going back */
    uint8_t *bad = leader_batch(1, 16, 4, 0, &l3);
    ck_assert_int_eq(st_log_append_ex(log, bad, l3, 4, ST_APPEND_KEEP_OFFSETS, on_done, NULL,
                                      &base, &leo), SC_ERR_OFFSET_OUT_OF_RANGE);
    bad = leader_batch(1, 20, 2, 0, &l3);
    ck_assert_int_eq(st_log_append_ex(log, bad, l3, 2, ST_APPEND_KEEP_OFFSETS, on_done, NULL,
                                      &base, &leo), SC_ERR_FENCED_LEADER_EPOCH);
    ck_assert_int_eq(st_log_end_offset(log), 17);
    /* many more with gaps, across several segment rolls */
    int64_t next = 17;
    for (int i = 0; i < 60; i++) {
        size_t l;
        uint8_t *b = leader_batch(1 + i % 4, next + i % 3, 4, i % 2, &l);
        ck_assert_int_eq(st_log_append_ex(log, b, l, 4, ST_APPEND_KEEP_OFFSETS, on_done, NULL,
                                          &base, &leo), 0);
        ck_assert_int_eq(base, next + i % 3);
        next = leo;
        sc_buf_append(&stored, b, l);
    }
    commit_drain(log);
    ck_assert_int_eq(CB.n, 62);
    for (int i = 0; i < CB.n; i++)
        ck_assert_int_eq(CB.rc[i], 0);
    ck_assert_uint_gt(st_log_segment_count(log), 2);
    ck_assert_int_eq(st_log_durable_offset(log), next);
    assert_log_holds(log, stored.data, stored.len);
    /* a crash: recovery scans the gapped segments and keeps them all */
    ck_assert_int_eq(st_log_abandon(log), 0);
    log_capture_start();
    log = open_log(&c);
    char *text = log_capture_stop();
    ck_assert_ptr_null(strstr(text, "truncated"));
    ck_assert_int_eq(st_log_end_offset(log), next);
    assert_log_holds(log, stored.data, stored.len);
    /* a truncation keeps the checkpoint at the new end (gaps below stay accepted) */
    ck_assert_int_eq(st_log_truncate_to(log, 12), 0);
    ck_assert_int_eq(st_cleaner_checkpoint_get(pdir, &ck), 0);
    ck_assert_int_eq(ck, 12);
    ck_assert_int_eq(st_log_abandon(log), 0);
    log = open_log(&c);
    ck_assert_int_eq(st_log_end_offset(log), 12);
    assert_log_holds(log, stored.data, l0 + l1);
    ck_assert_int_eq(st_log_close(log), 0);
}
END_TEST

START_TEST(test_st_log_epoch_history_round_trip_and_end_offsets)
{
    st_log_config_t c;
    st_log_t *log;
    int32_t e;
    int64_t end;
    char p[PATH_MAX + 64], *text;
    FILE *f;

    io = new_io(ST_IO_FAULT);
    st_log_config_default(&c);
    log = open_log(&c);
    ck_assert_int_eq(st_log_epoch_latest(log), -1);
    ck_assert_int_eq(st_log_epoch_end_offset(log, 0, &e, &end), SC_ERR_NOT_FOUND);
    ck_assert_int_eq(e, -1);
    ck_assert_int_eq(end, -1);
    ck_assert_int_eq(st_log_epoch_assign(log, 1, 0), 0);
    append_e(log, 10, 10, T0, 1);
    ck_assert_int_eq(st_log_epoch_assign(log, 2, 10), 0);
    append_e(log, 5, 10, T0, 2);
    ck_assert_int_eq(st_log_epoch_assign(log, 2, 12), 0); /* same epoch: no-op */
    ck_assert_int_eq(st_log_epoch_assign(log, 4, 15), 0);
    append_e(log, 5, 10, T0, 4);
    commit_drain(log);
    ck_assert_int_eq(st_log_epoch_latest(log), 4);
    ck_assert_int_eq(st_log_epoch_end_offset(log, 1, &e, &end), 0);
    ck_assert_int_eq(e, 1);
    ck_assert_int_eq(end, 10);
    ck_assert_int_eq(st_log_epoch_end_offset(log, 2, &e, &end), 0);
    ck_assert_int_eq(e, 2);
    ck_assert_int_eq(end, 15);
    ck_assert_int_eq(st_log_epoch_end_offset(log, 3, &e, &end), 0);
    ck_assert_int_eq(e, 2);
    ck_assert_int_eq(end, 15);
    ck_assert_int_eq(st_log_epoch_end_offset(log, 4, &e, &end), 0);
    ck_assert_int_eq(e, 4);
    ck_assert_int_eq(end, 20);
    ck_assert_int_eq(st_log_epoch_end_offset(log, 0, &e, &end), 0);
    ck_assert_int_eq(e, 0);
    ck_assert_int_eq(end, 0);
    ck_assert_int_eq(st_log_epoch_end_offset(log, 5, &e, &end), SC_ERR_NOT_FOUND);
    /* Kafka's text format */
    snprintf(p, sizeof p, "%s/leader-epoch-checkpoint", pdir);
    f = fopen(p, "r");
    ck_assert_ptr_nonnull(f);
    text = calloc(1, 256);
    ck_assert_int_gt(fread(text, 1, 255, f), 0);
    fclose(f);
    ck_assert_str_eq(text, "0\n3\n1 0\n2 10\n4 15\n");
    free(text);
    ck_assert_int_eq(st_log_close(log), 0);
    log = open_log(&c);
    ck_assert_int_eq(st_log_epoch_latest(log), 4);
    ck_assert_int_eq(st_log_epoch_end_offset(log, 3, &e, &end), 0);
    ck_assert_int_eq(end, 15);
    /* truncation drops epochs starting at or after the new end */
    ck_assert_int_eq(st_log_truncate_to(log, 12), 0);
    ck_assert_int_eq(st_log_end_offset(log), 10);
    ck_assert_int_eq(st_log_epoch_latest(log), 1);
    ck_assert_int_eq(st_log_epoch_end_offset(log, 1, &e, &end), 0);
    ck_assert_int_eq(end, 10);
    /* an append with a newer epoch records where it starts */
    B.n = 1;
    stored.len = B.at[1];
    append_e(log, 3, 10, T0, 7);
    commit_drain(log);
    ck_assert_int_eq(st_log_epoch_latest(log), 7);
    ck_assert_int_eq(st_log_epoch_end_offset(log, 5, &e, &end), 0);
    ck_assert_int_eq(e, 1);
    ck_assert_int_eq(end, 10);
    ck_assert_int_eq(st_log_abandon(log), 0);
    log = open_log(&c);
    ck_assert_int_eq(st_log_epoch_latest(log), 7);
    ck_assert_int_eq(st_log_close(log), 0);
    /* a corrupt history refuses the open rather than guessing */
    f = fopen(p, "w");
    fputs("0\n2\n1 0\n", f);
    fclose(f);
    st_log_t *bad = NULL;
    ck_assert_int_eq(st_log_open(pdir, &c, io, &bad), SC_ERR_BAD_FORMAT);
}
END_TEST

/* ---- group commit and flush policies ---- */

/* ST_APPEND_ACK_WRITTEN (Kafka's acks=1) completes once the bytes are
 * written, before the commit's sync; the sync still runs, and the progress
 * listener reports written and then durable. A plain append waits. */
static struct {
    int n;
    int64_t written[8], durable[8];
} PG;
static int64_t durable_at_cb[4];
static int ncb_durable;

static void on_progress(void *arg, st_log_t *log)
{
    (void)arg;
    ck_assert_int_lt(PG.n, 8);
    PG.written[PG.n] = st_log_written_offset(log);
    PG.durable[PG.n] = st_log_durable_offset(log);
    PG.n++;
}

static void on_done_durable(void *arg, int rc, int64_t base, int64_t last)
{
    ck_assert_int_eq(rc, 0);
    durable_at_cb[ncb_durable++] = st_log_durable_offset(arg);
    on_done(NULL, rc, base, last);
}

START_TEST(test_st_log_ack_written_completes_before_sync)
{
    st_log_config_t c;
    st_log_t *log;
    st_io_stats_t st;
    size_t len;
    int64_t base, leo;

    memset(&PG, 0, sizeof PG);
    ncb_durable = 0;
    io = new_io(ST_IO_FAULT);
    st_log_config_default(&c);
    log = open_log(&c);
    st_log_set_progress_cb(log, on_progress, NULL);
    uint8_t *p = make_batch(5, 20, 1, T0, &len);
    owned[nowned++] = p;
    ck_assert_int_eq(st_log_append_ex(log, p, len, 3, ST_APPEND_ACK_WRITTEN, on_done_durable, log,
                                      &base, &leo), 0);
    ck_assert_int_eq(st_log_commit(log), 0);
    ck_assert_int_eq(st_io_drain(io), 0);
    ck_assert_int_eq(ncb_durable, 1);
    ck_assert_int_eq(durable_at_cb[0], 0); /* acknowledged before its sync finished */
    st_io_stats(io, &st);
    ck_assert_int_eq(st.syncs, 1); /* ...but the sync ran all the same */
    ck_assert_int_eq(st_log_durable_offset(log), 5);
    ck_assert_int_eq(st_log_committed_offset(log), 5);
    /* progress: written moved first, then durable */
    ck_assert_int_eq(PG.n, 2);
    ck_assert_int_eq(PG.written[0], 5);
    ck_assert_int_eq(PG.durable[0], 0);
    ck_assert_int_eq(PG.durable[1], 5);

    /* a plain append under the same policy waits for durability */
    p = make_batch(2, 20, 2, T0, &len);
    owned[nowned++] = p;
    ck_assert_int_eq(st_log_append(log, p, len, 3, on_done_durable, log, &base, &leo), 0);
    ck_assert_int_eq(st_log_commit(log), 0);
    ck_assert_int_eq(st_io_drain(io), 0);
    ck_assert_int_eq(ncb_durable, 2);
    ck_assert_int_ge(durable_at_cb[1], 7);

    /* with flushing left to the OS, committed = written */
    c.flush_messages = INT64_MAX;
    st_log_set_config(log, &c);
    p = make_batch(3, 20, 3, T0, &len);
    owned[nowned++] = p;
    ck_assert_int_eq(st_log_append(log, p, len, 3, on_done_durable, log, &base, &leo), 0);
    ck_assert_int_eq(st_log_commit(log), 0);
    ck_assert_int_eq(st_io_drain(io), 0);
    ck_assert_int_eq(st_log_durable_offset(log), 7);
    ck_assert_int_eq(st_log_committed_offset(log), 10);
    ck_assert_int_eq(st_log_close(log), 0);
}
END_TEST

START_TEST(test_st_log_group_commit_shares_one_sync)
{
    st_log_config_t c;
    st_log_t *log;
    st_io_stats_t s0, s1;

    io = new_io(ST_IO_FAULT);
    cfg_small(&c, 4096, 4096);
    log = open_log(&c);
    for (int i = 0; i < 10; i++)
        append1(log, 1, 20, T0);
    ck_assert_int_eq(st_log_commit(log), 0);
    ck_assert_int_eq(CB.n, 0); /* nothing runs before the io completes */
    ck_assert_int_eq(st_io_drain(io), 0);
    assert_all_callbacks_ok(10);
    st_io_stats(io, &s0);
    ck_assert_int_eq(s0.writes, 10);
    ck_assert_int_eq(s0.syncs, 1);
    ck_assert_int_eq(st_log_durable_offset(log), 10);
    /* a commit with nothing new costs nothing */
    ck_assert_int_eq(st_log_commit(log), 0);
    ck_assert_int_eq(st_io_drain(io), 0);
    st_io_stats(io, &s1);
    ck_assert_int_eq(s1.syncs, 1);
    /* a turn that rolls: the old and new segment fds plus the directory */
    unsigned segs = st_log_segment_count(log);
    int turn = 0;
    while (st_log_segment_count(log) == segs) {
        append1(log, 2, 400, T0);
        turn++;
    }
    append1(log, 2, 400, T0);
    turn++;
    commit_drain(log);
    assert_all_callbacks_ok(10 + turn);
    st_io_stats(io, &s1);
    ck_assert_int_eq(s1.syncs - s0.syncs, 3);
    ck_assert_int_eq(st_log_durable_offset(log), st_log_end_offset(log));
    ck_assert_int_eq(st_log_close(log), 0);
}
END_TEST

/* Commits made while a sync group is in flight do not each queue an
 * fdatasync: one group follows when the in-flight one completes and covers
 * them all, and their appends complete only once it did. */
START_TEST(test_st_log_commit_during_sync_defers_to_one_group)
{
    st_log_config_t c;
    st_log_t *log;
    st_io_stats_t s;

    io = new_io(ST_IO_FAULT);
    cfg_small(&c, 1 << 20, 4096);
    log = open_log(&c);
    append1(log, 1, 20, T0);
    ck_assert_int_eq(st_log_commit(log), 0); /* group 1: in flight until polled */
    for (int i = 0; i < 3; i++) {
        append1(log, 2, 20, T0);
        ck_assert_int_eq(st_log_commit(log), 0); /* deferred */
    }
    ck_assert_int_eq(CB.n, 0);
    ck_assert_int_eq(st_io_drain(io), 0);
    assert_all_callbacks_ok(4);
    st_io_stats(io, &s);
    ck_assert_int_eq(s.writes, 4);
    ck_assert_int_eq(s.syncs, 2); /* group 1, then one for the three deferred commits */
    ck_assert_int_eq(st_log_durable_offset(log), 7);
    ck_assert_int_eq(st_log_committed_offset(log), 7);
    ck_assert_int_eq(st_log_close(log), 0);
}
END_TEST

START_TEST(test_st_log_flush_policy_os_never_syncs)
{
    st_log_config_t c;
    st_log_t *log;
    st_io_stats_t s;

    io = new_io(ST_IO_FAULT);
    st_log_config_default(&c);
    c.flush_messages = INT64_MAX;
    log = open_log(&c);
    for (int t = 0; t < 5; t++) {
        for (int i = 0; i < 4; i++)
            append1(log, 3, 20, T0);
        commit_drain(log);
    }
    assert_all_callbacks_ok(20);
    st_io_stats(io, &s);
    ck_assert_int_eq(s.syncs, 0);
    ck_assert_int_eq(st_log_written_offset(log), 60);
    ck_assert_int_eq(st_log_durable_offset(log), 0);
    ck_assert_int_eq(st_log_tick(log, sc_now_ms() + 1000000), 0);
    st_io_stats(io, &s);
    ck_assert_int_eq(s.syncs, 0);
    /* close makes it durable */
    ck_assert_int_eq(st_log_close(log), 0);
    st_io_stats(io, &s);
    ck_assert_int_gt(s.syncs, 0);
    ck_assert_int_eq(ckpt_clean_flag(), 1);
}
END_TEST

START_TEST(test_st_log_flush_messages_syncs_every_n_records)
{
    st_log_config_t c;
    st_log_t *log;
    st_io_stats_t s;

    io = new_io(ST_IO_FAULT);
    st_log_config_default(&c);
    ck_assert_int_eq(st_log_config_set(&c, "flush.messages", "5"), 0);
    log = open_log(&c);
    for (int i = 0; i < 4; i++) {
        append1(log, 1, 20, T0);
        commit_drain(log);
    }
    st_io_stats(io, &s);
    ck_assert_int_eq(s.syncs, 0);
    assert_all_callbacks_ok(4); /* written is enough under this policy */
    ck_assert_int_eq(st_log_durable_offset(log), 0);
    append1(log, 1, 20, T0);
    commit_drain(log);
    st_io_stats(io, &s);
    ck_assert_int_eq(s.syncs, 1);
    ck_assert_int_eq(st_log_durable_offset(log), 5);
    assert_all_callbacks_ok(5);
    ck_assert_int_eq(st_log_close(log), 0);
}
END_TEST

START_TEST(test_st_log_flush_ms_syncs_on_tick)
{
    st_log_config_t c;
    st_log_t *log;
    st_io_stats_t s;

    io = new_io(ST_IO_FAULT);
    st_log_config_default(&c);
    c.flush_messages = INT64_MAX;
    c.flush_ms = 1000;
    log = open_log(&c);
    append1(log, 3, 20, T0);
    commit_drain(log);
    ck_assert_int_eq(st_log_tick(log, sc_now_ms()), 0);
    ck_assert_int_eq(st_io_drain(io), 0);
    st_io_stats(io, &s);
    ck_assert_int_eq(s.syncs, 0);
    ck_assert_int_eq(st_log_tick(log, sc_now_ms() + 2000), 0);
    ck_assert_int_eq(st_io_drain(io), 0);
    st_io_stats(io, &s);
    ck_assert_int_eq(s.syncs, 1);
    ck_assert_int_eq(st_log_durable_offset(log), 3);
    ck_assert_int_eq(st_log_tick(log, sc_now_ms() + 4000), 0); /* nothing new */
    ck_assert_int_eq(st_io_drain(io), 0);
    st_io_stats(io, &s);
    ck_assert_int_eq(s.syncs, 1);
    ck_assert_int_eq(st_log_close(log), 0);
}
END_TEST

static int sync_cb_rc = 99, sync_cb_n;
static void on_sync(void *arg, int rc, int64_t base, int64_t last)
{
    (void)arg;
    ck_assert_int_eq(base, -1);
    ck_assert_int_eq(last, -1);
    sync_cb_rc = rc;
    sync_cb_n++;
}

START_TEST(test_st_log_sync_async_runs_callback_when_durable)
{
    st_log_config_t c;
    st_log_t *log;

    io = new_io(ST_IO_FAULT);
    st_log_config_default(&c);
    c.flush_messages = INT64_MAX;
    log = open_log(&c);
    append1(log, 3, 20, T0);
    commit_drain(log);
    ck_assert_int_eq(st_log_durable_offset(log), 0);
    append1(log, 2, 20, T0);
    ck_assert_int_eq(st_log_sync_async(log, on_sync, NULL), 0);
    ck_assert_int_eq(sync_cb_n, 0);
    ck_assert_int_eq(st_io_drain(io), 0);
    ck_assert_int_eq(sync_cb_n, 1);
    ck_assert_int_eq(sync_cb_rc, 0);
    ck_assert_int_eq(st_log_durable_offset(log), 5);
    assert_all_callbacks_ok(2);
    /* with nothing dirty it still answers */
    ck_assert_int_eq(st_log_sync_async(log, on_sync, NULL), 0);
    ck_assert_int_eq(st_io_drain(io), 0);
    ck_assert_int_eq(sync_cb_n, 2);
    ck_assert_int_eq(st_log_close(log), 0);
}
END_TEST

/* ---- failures ---- */

START_TEST(test_st_log_write_failure_fails_log_sticky_and_reopen_recovers_prefix)
{
    st_log_config_t c;
    st_log_t *log;
    st_io_faults_t f = {0};
    int64_t base, leo;

    io = new_io(ST_IO_FAULT);
    st_log_config_default(&c);
    log = open_log(&c);
    append1(log, 4, 50, T0);
    commit_drain(log);
    assert_all_callbacks_ok(1);
    f.fail_write_nth = 1;
    f.fail_write_errno = EIO;
    f.enospc_after = -1;
    st_io_fault_set(io, &f);
    log_capture_start();
    append1(log, 4, 50, T0);
    append1(log, 4, 50, T0);
    append1(log, 4, 50, T0);
    ck_assert_int_eq(st_log_commit(log), 0);
    ck_assert_int_eq(st_io_drain(io), 0);
    char *text = log_capture_stop();
    ck_assert_ptr_nonnull(strstr(text, "write failed at position"));
    ck_assert_int_eq(CB.n, 4);
    for (int i = 1; i < 4; i++)
        ck_assert_int_eq(CB.rc[i], SC_ERR_LOG_FAILED);
    ck_assert_int_eq(st_log_failed(log), -EIO);
    ck_assert_int_eq(st_log_durable_offset(log), 4);
    ck_assert_int_eq(st_log_written_offset(log), 4);
    /* sticky */
    size_t len;
    uint8_t *p = make_batch(1, 1, 1, T0, &len);
    ck_assert_int_eq(st_log_append(log, p, len, 0, on_done, NULL, &base, &leo), SC_ERR_LOG_FAILED);
    free(p);
    ck_assert_int_eq(st_log_commit(log), SC_ERR_LOG_FAILED);
    ck_assert_int_eq(st_log_tick(log, sc_now_ms()), SC_ERR_LOG_FAILED);
    ck_assert_int_eq(st_log_truncate_to(log, 1), SC_ERR_LOG_FAILED);
    ck_assert_int_eq(st_log_sync_async(log, on_sync, NULL), SC_ERR_LOG_FAILED);
    ck_assert_int_eq(CB.n, 4);
    ck_assert_int_eq(st_log_close(log), SC_ERR_LOG_FAILED);
    /* reopen: the hole where batch 2 was ends the log after batch 1 */
    st_io_free(io);
    io = new_io(ST_IO_FAULT);
    log = open_log(&c);
    ck_assert_int_eq(st_log_end_offset(log), 4);
    assert_log_holds(log, stored.data, B.len[0]);
    ck_assert_int_eq(st_log_failed(log), 0);
    ck_assert_int_eq(st_log_close(log), 0);
}
END_TEST

START_TEST(test_st_log_sync_failure_fails_pending_appends)
{
    st_log_config_t c;
    st_log_t *log;
    st_io_faults_t f = {0};

    io = new_io(ST_IO_FAULT);
    st_log_config_default(&c);
    log = open_log(&c);
    f.fail_sync_nth = 1;
    f.fail_sync_errno = EIO;
    f.enospc_after = -1;
    st_io_fault_set(io, &f);
    append1(log, 4, 50, T0);
    append1(log, 4, 50, T0);
    ck_assert_int_eq(st_log_commit(log), 0);
    ck_assert_int_eq(st_io_drain(io), 0);
    ck_assert_int_eq(CB.n, 2);
    ck_assert_int_eq(CB.rc[0], SC_ERR_LOG_FAILED);
    ck_assert_int_eq(CB.rc[1], SC_ERR_LOG_FAILED);
    ck_assert_int_eq(st_log_failed(log), -EIO);
    ck_assert_int_eq(st_log_durable_offset(log), 0);
    ck_assert_int_eq(st_log_close(log), SC_ERR_LOG_FAILED);
    ck_assert_int_eq(ckpt_clean_flag(), 0);
    st_io_free(io);
    io = new_io(ST_IO_FAULT);
    log = open_log(&c);
    /* the bytes did reach the file: recovery keeps the valid prefix (all) */
    ck_assert_int_eq(st_log_end_offset(log), 8);
    assert_log_holds(log, stored.data, stored.len);
    ck_assert_int_eq(st_log_close(log), 0);
}
END_TEST

START_TEST(test_st_log_enospc_fails_log_and_reopen_drops_torn_batch)
{
    st_log_config_t c;
    st_log_t *log;
    st_io_faults_t f = {0};
    char p[PATH_MAX + 64];

    io = new_io(ST_IO_FAULT);
    st_log_config_default(&c);
    log = open_log(&c);
    append1(log, 4, 100, T0);
    commit_drain(log);
    f.enospc_after = 200; /* the next batch is cut short */
    st_io_fault_set(io, &f);
    append1(log, 4, 100, T0);
    append1(log, 4, 100, T0);
    ck_assert_int_eq(st_log_commit(log), 0);
    ck_assert_int_eq(st_io_drain(io), 0);
    ck_assert_int_eq(CB.n, 3);
    ck_assert_int_eq(CB.rc[0], 0);
    ck_assert_int_eq(CB.rc[1], SC_ERR_LOG_FAILED);
    ck_assert_int_eq(CB.rc[2], SC_ERR_LOG_FAILED);
    ck_assert_int_eq(st_log_failed(log), -ENOSPC);
    seg_path(p, 0, ".log");
    ck_assert_int_eq(t_file_size(p), (int64_t)B.len[0] + 200);
    ck_assert_int_eq(st_log_close(log), SC_ERR_LOG_FAILED);
    st_io_free(io);
    io = new_io(ST_IO_FAULT);
    log = open_log(&c);
    ck_assert_int_eq(st_log_end_offset(log), 4);
    ck_assert_int_eq(t_file_size(p), (int64_t)B.len[0]);
    ck_assert_int_eq(append1(log, 2, 10, T0), 4);
    commit_drain(log);
    ck_assert_int_eq(CB.rc[3], 0);
    ck_assert_int_eq(st_log_close(log), 0);
}
END_TEST

START_TEST(test_st_log_short_writes_still_round_trip)
{
    st_log_config_t c;
    st_log_t *log;
    st_io_faults_t f = {0};

    io = new_io(ST_IO_FAULT);
    cfg_small(&c, 4096, 128);
    f.short_writes = 7;
    f.enospc_after = -1;
    st_io_fault_set(io, &f);
    log = open_log(&c);
    for (int i = 0; i < 20; i++)
        append1(log, 1 + i % 3, 90, T0 + i);
    commit_drain(log);
    assert_all_callbacks_ok(20);
    assert_log_holds(log, stored.data, stored.len);
    ck_assert_int_eq(st_log_close(log), 0);
}
END_TEST

/* ---- configuration ---- */

START_TEST(test_st_log_config_set_parses_and_rejects)
{
    st_log_config_t c;
    st_log_t *log = NULL;

    st_log_config_default(&c);
    ck_assert_int_eq(c.flush_messages, 1);
    ck_assert_int_eq(c.flush_ms, INT64_MAX);
    ck_assert_int_eq(st_log_config_set(&c, "segment.bytes", "1048576"), 0);
    ck_assert_int_eq(c.segment_bytes, 1048576);
    ck_assert_int_eq(st_log_config_set(&c, "index.interval.bytes", "0"), 0);
    ck_assert_int_eq(c.index_interval_bytes, 0);
    ck_assert_int_eq(st_log_config_set(&c, "retention.ms", "-1"), 0);
    ck_assert_int_eq(c.retention_ms, -1);
    ck_assert_int_eq(st_log_config_set(&c, "flush.messages", "9223372036854775807"), 0);
    ck_assert_int_eq(c.flush_messages, INT64_MAX);
    ck_assert_int_eq(st_log_config_set(&c, "segment.bytes", "10"), SC_ERR_INVALID_CONFIG);
    ck_assert_int_eq(st_log_config_set(&c, "segment.bytes", "4294967296"), SC_ERR_INVALID_CONFIG);
    ck_assert_int_eq(st_log_config_set(&c, "segment.ms", "12x"), SC_ERR_INVALID_CONFIG);
    ck_assert_int_eq(st_log_config_set(&c, "flush.messages", "0"), SC_ERR_INVALID_CONFIG);
    ck_assert_int_eq(st_log_config_set(&c, "segment.index.bytes", "8"), SC_ERR_INVALID_CONFIG);
    ck_assert_int_eq(st_log_config_set(&c, "retention.ms", ""), SC_ERR_INVALID_CONFIG);
    ck_assert_int_eq(st_log_config_set(&c, "no.such.key", "1"), SC_ERR_NOT_FOUND);
    ck_assert_int_eq(c.segment_bytes, 1048576);
    c.segment_bytes = 3;
    ck_assert_int_eq(st_log_open(pdir, &c, NULL, &log), SC_ERR_INVALID_CONFIG);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("st_log");
    TCase *tc = tcase_create("log");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_st_log_append_read_round_trip_byte_identical);
    tcase_add_test(tc, test_st_log_ack_written_completes_before_sync);
    tcase_add_test(tc, test_st_log_append_read_round_trip_on_auto_backend);
    tcase_add_test(tc, test_st_log_append_read_round_trip_on_threads_backend);
    tcase_add_test(tc, test_st_log_append_multi_batch_buffer_assigns_offsets);
    tcase_add_test(tc, test_st_log_append_rejects_bad_batch_and_writes_nothing);
    tcase_add_test(tc, test_st_log_read_stops_at_written_offset);
    tcase_add_test(tc, test_st_log_roll_by_segment_bytes);
    tcase_add_test(tc, test_st_log_roll_by_segment_ms_on_tick);
    tcase_add_test(tc, test_st_log_read_every_offset_at_every_boundary);
    tcase_add_test(tc, test_st_log_lookup_time_finds_first_record_at_or_after);
    tcase_add_test(tc, test_st_log_retention_ms_deletes_old_segments_below_hw);
    tcase_add_test(tc, test_st_log_retention_bytes_keeps_newest_segments);
    tcase_add_test(tc, test_st_log_delete_records_advances_start_and_deletes_segments);
    tcase_add_test(tc, test_st_log_truncate_to_inside_batch_removes_whole_batch);
    tcase_add_test(tc, test_st_log_truncate_to_at_batch_boundary);
    tcase_add_test(tc, test_st_log_truncate_to_across_segments);
    tcase_add_test(tc, test_st_log_truncate_fully_restarts_at_offset);
    tcase_add_test(tc, test_st_log_reopen_after_close_keeps_everything);
    tcase_add_test(tc, test_st_log_reopen_after_abandon_recovers_everything);
    tcase_add_test(tc, test_st_log_recovery_truncates_torn_tail);
    tcase_add_test(tc, test_st_log_recovery_truncates_at_corrupt_batch_and_drops_later_segments);
    tcase_add_test(tc, test_st_log_recovery_without_checkpoint_scans_everything);
    tcase_add_test(tc, test_st_log_recovery_rebuilds_missing_and_corrupt_indexes);
    tcase_add_test(tc, test_st_log_clean_reopen_with_wrong_index_entry_loses_nothing);
    tcase_add_test(tc, test_st_log_open_handles_empty_dir_orphans_and_empty_active_segment);
    tcase_add_test(tc, test_st_log_recovery_validates_batches_larger_than_scan_buffer);
    tcase_add_test(tc, test_st_log_checkpoint_persists_hw_and_start);
    tcase_add_test(tc, test_st_log_epoch_history_round_trip_and_end_offsets);
    tcase_add_test(tc, test_st_log_group_commit_shares_one_sync);
    tcase_add_test(tc, test_st_log_commit_during_sync_defers_to_one_group);
    tcase_add_test(tc, test_st_log_flush_policy_os_never_syncs);
    tcase_add_test(tc, test_st_log_flush_messages_syncs_every_n_records);
    tcase_add_test(tc, test_st_log_flush_ms_syncs_on_tick);
    tcase_add_test(tc, test_st_log_sync_async_runs_callback_when_durable);
    tcase_add_test(tc, test_st_log_write_failure_fails_log_sticky_and_reopen_recovers_prefix);
    tcase_add_test(tc, test_st_log_sync_failure_fails_pending_appends);
    tcase_add_test(tc, test_st_log_enospc_fails_log_and_reopen_drops_torn_batch);
    tcase_add_test(tc, test_st_log_short_writes_still_round_trip);
    tcase_add_test(tc, test_st_log_config_set_parses_and_rejects);
    tcase_add_test(tc, test_st_log_keep_offsets_copies_gaps_and_survives_recovery);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return t_run_suite(suite()); }
