/*
 * Corruption tests for recovery: a log of known batches is closed, then its
 * last segment is cut at every byte offset of its last batches, or has single
 * bits flipped there, and the checkpoint is removed as after a crash. Each
 * time recovery must not crash and must keep exactly the valid prefix: every
 * batch before the damage, byte-identical, and nothing from the damaged batch
 * on. Variants keep the (now stale) index files or delete them, so both the
 * rebuild and the stale-index paths run.
 *
 * Bytes 12..15 of a batch (partitionLeaderEpoch) are outside the CRC and carry
 * no redundancy, so a flip there cannot be detected by anyone (Kafka
 * included); those positions are not flipped.
 */
#include "sc_crc32c.h"
#include "sc_err.h"
#include "st_batch.h"
#include "st_log.h"
#include "t_util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { NBATCH = 24, TAIL = 3 };

static char dir[PATH_MAX];
static char segpath[PATH_MAX + 64];
static uint8_t *pristine; /* the segment file as closed */
static size_t pristine_len;
static uint64_t batch_pos[NBATCH + 1]; /* file position of each batch; [NBATCH] = end */

static void cfg_make(st_log_config_t *c)
{
    st_log_config_default(c);
    c->index_interval_bytes = 64; /* dense index: stale entries past every cut */
}

static void build(void)
{
    st_io_t *io;
    st_log_t *log;
    st_log_config_t cfg;
    sc_recbatch_t b;
    int64_t base, leo;

    t_tmpdir("corrupt", dir);
    cfg_make(&cfg);
    ck_assert_int_eq(st_io_new(ST_IO_FAULT, NULL, &io), 0);
    ck_assert_int_eq(st_log_open(dir, &cfg, io, &log), 0);
    sc_recbatch_init(&b);
    for (int i = 0; i < NBATCH; i++) {
        t_batch_make(&b, 1 + i % 5, 30 + (size_t)i * 3, (uint32_t)i, 5000 + i * 10);
        ck_assert_int_eq(st_log_append(log, b.buf.data, b.buf.len, 0, NULL, NULL, &base, &leo), 0);
        ck_assert_int_eq(st_log_commit(log), 0);
        ck_assert_int_eq(st_io_drain(io), 0);
    }
    ck_assert_int_eq(st_log_close(log), 0);
    st_io_free(io);
    sc_recbatch_fini(&b);

    snprintf(segpath, sizeof segpath, "%s/%020d.log", dir, 0);
    FILE *f = fopen(segpath, "rb");
    ck_assert_ptr_nonnull(f);
    pristine = malloc(1 << 20);
    pristine_len = fread(pristine, 1, 1 << 20, f);
    fclose(f);
    uint64_t pos = 0;
    for (int i = 0; i < NBATCH; i++) {
        batch_pos[i] = pos;
        pos += (uint64_t)st_batch_size(pristine + pos, pristine_len - pos);
    }
    batch_pos[NBATCH] = pos;
    ck_assert_uint_eq(pos, pristine_len);
}

static void teardown(void)
{
    t_rm_rf(dir);
    free(pristine);
}

/* Puts the segment back as data[0..len) and removes what a crash would not
 * have written: the checkpoint, and the indexes too when drop_indexes. */
static void restore(const uint8_t *data, size_t len, int drop_indexes)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    char p[PATH_MAX + 300];
    while ((de = readdir(d))) {
        const char *n = de->d_name;
        size_t nl = strlen(n);
        if (n[0] == '.')
            continue;
        int is_log = nl > 4 && strcmp(n + nl - 4, ".log") == 0;
        int is_index = strstr(n, "index") != NULL;
        if (is_log || (is_index && !drop_indexes))
            continue;
        snprintf(p, sizeof p, "%s/%s", dir, n);
        unlink(p);
    }
    closedir(d);
    int fd = open(segpath, O_WRONLY | O_TRUNC);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, data, len), (ssize_t)len);
    close(fd);
}

/* Opens the log and checks it holds exactly batches [0, keep). */
static void check_prefix(int keep, const char *what, long at)
{
    st_io_t *io;
    st_log_t *log;
    st_log_config_t cfg;
    static uint8_t buf[1 << 20];

    cfg_make(&cfg);
    ck_assert_int_eq(st_io_new(ST_IO_FAULT, NULL, &io), 0);
    int rc = st_log_open(dir, &cfg, io, &log);
    ck_assert_msg(rc == 0, "%s at %ld: open failed: %s", what, at, sc_err_name(rc));
    int64_t expect_leo = 0;
    for (int i = 0; i < keep; i++) {
        st_batch_hdr_t h;
        st_batch_hdr_decode(pristine + batch_pos[i], pristine_len - batch_pos[i], &h);
        expect_leo = st_batch_last_offset(&h) + 1;
    }
    ck_assert_msg(st_log_end_offset(log) == expect_leo, "%s at %ld: leo %lld, expected %lld", what,
                  at, (long long)st_log_end_offset(log), (long long)expect_leo);
    /* read everything back through the (rebuilt or sanitised) index */
    int64_t off = 0;
    size_t got = 0;
    while (off < expect_leo) {
        int64_t n = st_log_read_copy(log, off, buf + got, sizeof buf - got, INT64_MAX);
        ck_assert_msg(n > 0, "%s at %ld: read at %lld gave %lld", what, at, (long long)off,
                      (long long)n);
        size_t pos = got;
        got += (size_t)n;
        while (pos < got) {
            st_batch_hdr_t h;
            ck_assert_int_eq(st_batch_validate(buf + pos, got - pos, 0, &h), 0);
            off = st_batch_last_offset(&h) + 1;
            pos += (size_t)h.length + 12;
        }
    }
    ck_assert_uint_eq(got, batch_pos[keep]);
    ck_assert_mem_eq(buf, pristine, got);
    /* a lookup anywhere in the lost range is out of range, not a crash */
    if (keep < NBATCH) {
        st_slice_t s;
        ck_assert_int_eq(st_log_read(log, expect_leo + 1, 4096, INT64_MAX, &s),
                         SC_ERR_OFFSET_OUT_OF_RANGE);
    }
    /* and the log accepts appends right after the prefix */
    sc_recbatch_t b;
    int64_t base, leo;
    sc_recbatch_init(&b);
    t_batch_make(&b, 2, 10, 99, 1);
    ck_assert_int_eq(st_log_append(log, b.buf.data, b.buf.len, 0, NULL, NULL, &base, &leo), 0);
    ck_assert_int_eq(base, expect_leo);
    ck_assert_int_eq(st_log_commit(log), 0);
    ck_assert_int_eq(st_io_drain(io), 0);
    ck_assert_int_eq(st_log_close(log), 0);
    st_io_free(io);
    sc_recbatch_fini(&b);
}

static int batch_at(uint64_t pos)
{
    for (int i = 0; i < NBATCH; i++)
        if (pos < batch_pos[i + 1])
            return i;
    return NBATCH;
}

START_TEST(test_st_recovery_keeps_valid_prefix_at_every_cut)
{
    int drop_indexes = _i;
    build();
    for (uint64_t cut = batch_pos[NBATCH - TAIL]; cut <= pristine_len; cut++) {
        restore(pristine, cut, drop_indexes);
        /* a cut inside batch k keeps batches [0, k); a cut on a boundary keeps all before it */
        int keep = batch_at(cut);
        if (cut == pristine_len)
            keep = NBATCH;
        check_prefix(keep, drop_indexes ? "cut (no index)" : "cut (stale index)", (long)cut);
    }
    teardown();
}
END_TEST

START_TEST(test_st_recovery_drops_batch_with_flipped_bit)
{
    int drop_indexes = _i;
    uint8_t *copy;
    build();
    copy = malloc(pristine_len);
    for (uint64_t pos = batch_pos[NBATCH - TAIL]; pos < pristine_len; pos++) {
        int k = batch_at(pos);
        uint64_t rel = pos - batch_pos[k];
        if (rel >= 12 && rel < 16)
            continue; /* partitionLeaderEpoch: undetectable by design */
        int bit = (int)(pos % 8);
        memcpy(copy, pristine, pristine_len);
        copy[pos] ^= (uint8_t)(1u << bit);
        restore(copy, pristine_len, drop_indexes);
        check_prefix(k, drop_indexes ? "flip (no index)" : "flip (stale index)", (long)pos);
    }
    free(copy);
    teardown();
}
END_TEST

START_TEST(test_st_recovery_survives_garbage_segment)
{
    build();
    uint8_t *junk = malloc(pristine_len);
    srand(7);
    for (int round = 0; round < 50; round++) {
        for (size_t i = 0; i < pristine_len; i++)
            junk[i] = (uint8_t)rand();
        /* keep a valid head of random length, garbage after */
        int keep = rand() % NBATCH;
        memcpy(junk, pristine, batch_pos[keep]);
        restore(junk, pristine_len, round % 2);
        check_prefix(keep, "garbage", round);
    }
    free(junk);
    teardown();
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("st_corruption");
    TCase *tc = tcase_create("recovery");
    tcase_set_timeout(tc, 900);
    tcase_add_loop_test(tc, test_st_recovery_keeps_valid_prefix_at_every_cut, 0, 2);
    tcase_add_loop_test(tc, test_st_recovery_drops_batch_with_flipped_bit, 0, 2);
    tcase_add_test(tc, test_st_recovery_survives_garbage_segment);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return t_run_suite(suite()); }
