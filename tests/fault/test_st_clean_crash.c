/*
 * Crash test for the log cleaner. Each round the parent appends keyed data
 * (overwrites of a small key space, some tombstones, some keyless records;
 * half the batches compressed with gzip, snappy, lz4 or zstd) over several
 * segments, closes the log, and forks a child that compacts it
 * (repeated cleans, a small offset map so several cleans and groups happen,
 * the clock pushed past delete.retention.ms so tombstones go too). The child
 * dies either by SIGKILL at a random moment or, in every other round, by
 * _exit at a random crash point of the clean protocol (st__cleaner_crash_after:
 * after a cleaned group is written, the checkpoint raised, the swap file
 * written, each source deleted, each rename, the swap file removed); every
 * fifth round it runs to the end, so the log really gets compacted. After each death the parent reopens the log (recovery)
 * and checks:
 *   - the log reads back as valid batches in increasing offset order, ending
 *     at the same log end offset, with no leftover .cleaned / .swap files;
 *   - every record in it is one the parent appended, at its original offset;
 *   - for every key, the record with the highest offset is the latest one
 *     appended (a tombstone may instead have been removed entirely), and
 *     every keyless record is still there.
 * Rounds: STRATA_CLEAN_CRASH_ROUNDS (default 60).
 */
#include "sc_codec.h"
#include "sc_crc32c.h"
#include "sc_endian.h"
#include "sc_err.h"
#include "sc_recbatch.h"
#include "sc_time.h"
#include "sc_varint.h"
#include "st_batch.h"
#include "st_cleaner.h"
#include "st_log.h"
#include "t_util.h"

#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NKEYS 300
#define MAXR 400000

static char root[PATH_MAX];
static char dir[PATH_MAX + 16];

/* the model */
static int64_t latest_off[NKEYS];
static int latest_val[NKEYS]; /* -1 tombstone; 0: never written */
static int *model_key, *model_val; /* by offset; key -1 = keyless */
static int64_t model_n;
static int serial = 1;

static void log_config(st_log_config_t *c)
{
    st_log_config_default(c);
    c->segment_bytes = 32 * 1024;
    c->index_interval_bytes = 1024;
    c->segment_index_bytes = 64 * 1024;
    c->retention_ms = -1;
    c->segment_ms = 1;
    c->compact = 1;
    c->delete_retention_ms = 1000;
}

static void on_done(void *arg, int rc, int64_t b, int64_t l)
{
    (void)b;
    (void)l;
    *(int *)arg = rc;
}

/* Recompresses an uncompressed batch with codec (attributes, length, CRC). */
static void compress_batch(sc_buf_t *bb, int codec)
{
    sc_buf_t z;
    sc_buf_init(&z);
    ck_assert_int_eq(sc_codec_compress(codec, -1, bb->data + ST_BATCH_HEADER_SIZE,
                                       bb->len - ST_BATCH_HEADER_SIZE, &z),
                     0);
    bb->len = ST_BATCH_HEADER_SIZE;
    ck_assert_int_eq(sc_buf_append(bb, z.data, z.len), 0);
    sc_buf_fini(&z);
    uint16_t attr = sc_load_be16(bb->data + ST_BATCH_OFF_ATTRIBUTES);
    sc_store_be16(bb->data + ST_BATCH_OFF_ATTRIBUTES, (uint16_t)((attr & ~7) | codec));
    sc_store_be32(bb->data + ST_BATCH_OFF_LENGTH, (uint32_t)(bb->len - ST_BATCH_LOG_OVERHEAD));
    sc_store_be32(bb->data + ST_BATCH_OFF_CRC,
                  sc_crc32c(0, bb->data + ST_BATCH_OFF_ATTRIBUTES,
                            bb->len - ST_BATCH_OFF_ATTRIBUTES));
}

/* Appends a round of data with the parent's own io, then closes. */
static void append_round(void)
{
    st_io_t *io;
    st_log_t *log;
    st_log_config_t cfg;
    log_config(&cfg);
    ck_assert_int_eq(st_io_new(ST_IO_THREADS, NULL, &io), 0);
    ck_assert_int_eq(st_log_open(dir, &cfg, io, &log), 0);
    int nb = 20 + rand() % 40;
    for (int b = 0; b < nb; b++) {
        sc_recbatch_t rb;
        sc_recbatch_init(&rb);
        /* a third of the batches from 3 idempotent producers: their last
         * batches stay (empty if need be) */
        int64_t pid = rand() % 3 ? -1 : 1000 + rand() % 3;
        sc_recbatch_begin(&rb, sc_now_ms(), pid, pid < 0 ? -1 : 0, pid < 0 ? -1 : b);
        int n = 1 + rand() % 30;
        int keys[32], vals[32];
        for (int i = 0; i < n; i++) {
            char k[32], v[96];
            int r = rand() % 100;
            keys[i] = r < 3 ? -1 : rand() % NKEYS;
            vals[i] = r >= 3 && r < 10 ? -1 : serial++;
            int kl = snprintf(k, sizeof k, "key-%d", keys[i]);
            int vl = snprintf(v, sizeof v, "value-%d-%.*s", vals[i], rand() % 60,
                              "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
            sc_recbatch_add(&rb, sc_now_ms(), keys[i] < 0 ? NULL : k, keys[i] < 0 ? -1 : kl,
                            vals[i] < 0 ? NULL : v, vals[i] < 0 ? -1 : vl, NULL, 0);
        }
        sc_recbatch_finish(&rb);
        int codec = rand() % 8; /* half the batches compressed, every codec */
        if (codec >= 1 && codec <= 4)
            compress_batch(&rb.buf, codec);
        int64_t base, leo;
        int rc = 99;
        ck_assert_int_eq(st_log_append(log, rb.buf.data, rb.buf.len, 0, on_done, &rc, &base, &leo),
                         0);
        ck_assert_int_eq(st_log_commit(log), 0);
        ck_assert_int_eq(st_io_drain(io), 0);
        ck_assert_int_eq(rc, 0);
        ck_assert_int_eq(base, model_n);
        st_log_set_high_watermark(log, leo);
        for (int i = 0; i < n; i++) {
            ck_assert_int_lt(model_n, MAXR);
            model_key[model_n] = keys[i];
            model_val[model_n] = vals[i];
            if (keys[i] >= 0) {
                latest_off[keys[i]] = model_n;
                latest_val[keys[i]] = vals[i];
            }
            model_n++;
        }
        sc_recbatch_fini(&rb);
        if (rand() % 6 == 0) /* roll by segment.ms too, not only by size */
            ck_assert_int_ge(st_log_tick(log, sc_now_ms() + 1000 + b), 0);
    }
    ck_assert_int_ge(st_log_tick(log, sc_now_ms() + 100000), 0); /* close the segment */
    ck_assert_int_eq(st_log_close(log), 0);
    st_io_free(io);
}

static void child(int crash_after)
{
    st_io_t *io;
    st_log_t *log;
    st_log_config_t cfg;
    log_config(&cfg);
    if (st_io_new(ST_IO_THREADS, NULL, &io) || st_log_open(dir, &cfg, io, &log))
        _exit(2);
    st__cleaner_crash_after = crash_after;
    st_cleaner_opts_t o = {24 * 2048, NULL, NULL}; /* ~1800 keys: prefix cleans */
    int64_t now = sc_now_ms();
    for (int i = 0; i < 50; i++) {
        /* later cleans run "later": tombstones pass their horizon */
        int rc = st_cleaner_clean(log, now + i * 2000, &o, NULL);
        if (rc == SC_ERR_NOT_FOUND)
            break;
        if (rc)
            _exit(3);
    }
    st_log_close(log);
    _exit(0);
}

/* The decimal number at p (at most n bytes, up to a non-digit). */
static int num(const uint8_t *p, size_t n)
{
    int v = 0;
    for (size_t i = 0; i < n && p[i] >= '0' && p[i] <= '9'; i++)
        v = v * 10 + (p[i] - '0');
    return v;
}

static void verify(int round)
{
    st_io_t *io;
    st_log_t *log;
    st_log_config_t cfg;
    size_t cap = 1 << 20;
    uint8_t *buf = malloc(cap);
    static int64_t top_off[NKEYS];
    static int top_val[NKEYS];
    static char *seen; /* keyless records seen, by offset */

    seen = calloc((size_t)model_n + 1, 1);
    for (int k = 0; k < NKEYS; k++)
        top_off[k] = -1;
    log_config(&cfg);
    ck_assert_int_eq(st_io_new(ST_IO_THREADS, NULL, &io), 0);
    ck_assert_int_eq(st_log_open(dir, &cfg, io, &log), 0);
    int64_t off = st_log_start_offset(log), leo = st_log_end_offset(log), prev = -1;
    ck_assert_int_eq(leo, model_n);
    while (off < leo) {
        int64_t n = st_log_read_copy(log, off, buf, cap, INT64_MAX);
        ck_assert_msg(n > 0, "round %d: read at %lld of %lld gave %lld", round, (long long)off,
                      (long long)leo, (long long)n);
        for (size_t pos = 0; pos < (size_t)n;) {
            st_batch_hdr_t h;
            ck_assert_int_eq(st_batch_validate(buf + pos, (size_t)n - pos, 1, &h), 0);
            ck_assert_msg(h.base_offset > prev, "round %d: offsets go back at %lld", round,
                          (long long)h.base_offset);
            const uint8_t *p = buf + pos + ST_BATCH_HEADER_SIZE;
            const uint8_t *end = buf + pos + h.length + 12;
            sc_buf_t d;
            sc_buf_init(&d);
            if (h.attributes & 7) {
                ck_assert_int_eq(sc_codec_decompress(h.attributes & 7, p, (size_t)(end - p),
                                                     1 << 26, &d),
                                 0);
                p = d.data;
                end = d.data + d.len;
            }
            for (int32_t i = 0; i < h.records_count; i++) {
                int64_t len, v, od, kl, vl;
                p += sc_varint_decode(p, (size_t)(end - p), &len);
                const uint8_t *q = p + 1, *re = p + len;
                q += sc_varint_decode(q, (size_t)(re - q), &v);
                q += sc_varint_decode(q, (size_t)(re - q), &od);
                q += sc_varint_decode(q, (size_t)(re - q), &kl);
                int key = kl < 0 ? -1 : num(q + 4, (size_t)kl - 4);
                if (kl > 0)
                    q += kl;
                q += sc_varint_decode(q, (size_t)(re - q), &vl);
                int val = vl < 0 ? -1 : num(q + 6, (size_t)vl - 6);
                int64_t o = h.base_offset + od;
                ck_assert_msg(o > prev && o < model_n, "round %d: offset %lld out of order",
                              round, (long long)o);
                ck_assert_msg(model_key[o] == key && model_val[o] == val,
                              "round %d: offset %lld holds key %d value %d, appended key %d value "
                              "%d",
                              round, (long long)o, key, val, model_key[o], model_val[o]);
                if (key >= 0) {
                    top_off[key] = o;
                    top_val[key] = val;
                } else {
                    seen[o] = 1;
                }
                prev = o;
                p = re;
            }
            sc_buf_fini(&d);
            prev = st_batch_last_offset(&h);
            off = prev + 1;
            pos += (size_t)h.length + 12;
        }
    }
    for (int k = 0; k < NKEYS; k++) {
        if (latest_val[k] == 0)
            continue;
        if (latest_val[k] < 0 && top_off[k] < 0)
            continue; /* a tombstone, removed */
        ck_assert_msg(top_off[k] == latest_off[k] && top_val[k] == latest_val[k],
                      "round %d: key %d: log's last is offset %lld value %d, latest appended is "
                      "offset %lld value %d",
                      round, k, (long long)top_off[k], top_val[k], (long long)latest_off[k],
                      latest_val[k]);
    }
    for (int64_t o = 0; o < model_n; o++)
        if (model_key[o] < 0)
            ck_assert_msg(seen[o], "round %d: keyless record at %lld lost", round, (long long)o);
    ck_assert_int_eq(st_log_close(log), 0);
    st_io_free(io);
    DIR *d = opendir(dir);
    struct dirent *e;
    while ((e = readdir(d))) {
        ck_assert_msg(!strstr(e->d_name, ".cleaned") && !strstr(e->d_name, ".swap"),
                      "round %d: leftover %s", round, e->d_name);
    }
    closedir(d);
    free(seen);
    free(buf);
}

START_TEST(test_clean_crash_keeps_latest_per_key)
{
    const char *env = getenv("STRATA_CLEAN_CRASH_ROUNDS");
    int rounds = env ? atoi(env) : 60;
    unsigned seed = (unsigned)time(NULL);
    int killed = 0, points = 0, finished = 0;

    fprintf(stderr, "clean crash test: %d rounds, seed %u\n", rounds, seed);
    srand(seed);
    model_key = calloc(MAXR, sizeof *model_key);
    model_val = calloc(MAXR, sizeof *model_val);
    t_tmpdir("cleancrash", root);
    snprintf(dir, sizeof dir, "%s/t-0", root);
    for (int round = 0; round < rounds; round++) {
        append_round();
        /* odd rounds: a crash point; even: SIGKILL; every 5th: let it finish */
        int crash_after = round % 2 ? 1 + rand() % 16 : -1;
        int finish = round % 5 == 4;
        if (finish)
            crash_after = -1;
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0)
            child(crash_after);
        if (crash_after < 0 && !finish) {
            struct timespec ts = {0, (long)(rand() % 250) * 1000000L};
            nanosleep(&ts, NULL);
            kill(pid, SIGKILL);
        }
        int status;
        waitpid(pid, &status, 0);
        if (WIFSIGNALED(status)) {
            killed++;
        } else {
            ck_assert_msg(WEXITSTATUS(status) == 0 || WEXITSTATUS(status) == 86,
                          "round %d: child failed with %d", round, WEXITSTATUS(status));
            if (WEXITSTATUS(status) == 86)
                points++;
            else
                finished++;
        }
        verify(round);
    }
    fprintf(stderr, "clean crash test: %d SIGKILLed, %d stopped at a crash point, %d finished; "
                    "%lld records\n",
            killed, points, finished, (long long)model_n);
    ck_assert_int_gt(killed + points, rounds / 3);
    ck_assert_int_gt(finished, 0);
    free(model_key);
    free(model_val);
    t_rm_rf(root);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("st_clean_crash");
    TCase *tc = tcase_create("crash");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_clean_crash_keeps_latest_per_key);
    suite_add_tcase(s, tc);
    return t_run_suite(s);
}
