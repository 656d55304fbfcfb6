/* Unit tests for storage/st_index: offset and time index files. */
#include "sc_endian.h"
#include "sc_err.h"
#include "st_index.h"
#include "t_util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static char dir[PATH_MAX];
static char opath[PATH_MAX + 32], tpath[PATH_MAX + 32];

static void setup(void)
{
    t_tmpdir("index", dir);
    snprintf(opath, sizeof opath, "%s/00000000000000001000.index", dir);
    snprintf(tpath, sizeof tpath, "%s/00000000000000001000.timeindex", dir);
}

static void teardown(void) { t_rm_rf(dir); }

static st_index_t *open_idx(const char *path, st_index_kind_t kind, int create)
{
    st_index_t *idx = NULL;
    ck_assert_int_eq(st_index_open(path, kind, 1000, create, &idx), 0);
    return idx;
}

/* entries: offset 1000 + 10*i -> position 100*i, for i in [1, n] */
static st_index_t *filled_offset_index(int n)
{
    st_index_t *idx = open_idx(opath, ST_INDEX_OFFSET, 2);
    ck_assert_int_eq(st_index_activate(idx, 4096), 0);
    for (int i = 1; i <= n; i++)
        ck_assert_int_eq(st_offset_index_append(idx, 1000 + 10 * i, (uint32_t)(100 * i)), 0);
    return idx;
}

static void write_file(const char *path, const void *p, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, p, n), (ssize_t)n);
    close(fd);
}

START_TEST(test_st_index_offset_lookup_finds_floor_entry)
{
    st_index_t *idx = filled_offset_index(50);
    int64_t off;
    uint32_t pos;

    ck_assert_int_eq(st_index_count(idx), 50);
    /* below the first entry: the segment start */
    ck_assert_int_eq(st_offset_index_lookup(idx, 1000, &off, &pos), 0);
    ck_assert_int_eq(off, 1000);
    ck_assert_int_eq(pos, 0);
    ck_assert_int_eq(st_offset_index_lookup(idx, 1009, &off, &pos), 0);
    ck_assert_int_eq(off, 1000);
    /* exact and between entries */
    for (int i = 1; i <= 50; i++) {
        ck_assert_int_eq(st_offset_index_lookup(idx, 1000 + 10 * i, &off, &pos), 0);
        ck_assert_int_eq(off, 1000 + 10 * i);
        ck_assert_int_eq(pos, 100 * i);
        ck_assert_int_eq(st_offset_index_lookup(idx, 1000 + 10 * i + 9, &off, &pos), 0);
        ck_assert_int_eq(off, 1000 + 10 * i);
    }
    ck_assert_int_eq(st_offset_index_lookup(idx, INT64_MAX, &off, &pos), 0);
    ck_assert_int_eq(off, 1500);
    ck_assert_int_eq(st_offset_index_last(idx, &off, &pos), 0);
    ck_assert_int_eq(pos, 5000);
    st_index_close(idx);
}
END_TEST

START_TEST(test_st_index_offset_append_rejects_non_increasing)
{
    st_index_t *idx = filled_offset_index(2);
    ck_assert_int_eq(st_offset_index_append(idx, 1020, 300), SC_ERR_BAD_FORMAT);
    ck_assert_int_eq(st_offset_index_append(idx, 1030, 200), SC_ERR_BAD_FORMAT);
    ck_assert_int_eq(st_offset_index_append(idx, 999, 300), SC_ERR_BAD_FORMAT);
    ck_assert_int_eq(st_offset_index_append(idx, 1030, 300), 0);
    ck_assert_int_eq(st_index_count(idx), 3);
    st_index_close(idx);
}
END_TEST

START_TEST(test_st_index_full_returns_full_when_capacity_reached)
{
    st_index_t *idx = open_idx(opath, ST_INDEX_OFFSET, 2);
    ck_assert_int_eq(st_index_activate(idx, 20), 0); /* 2 entries */
    ck_assert_int_eq(st_index_room(idx), 2);
    ck_assert_int_eq(st_offset_index_append(idx, 1001, 10), 0);
    ck_assert_int_eq(st_offset_index_append(idx, 1002, 20), 0);
    ck_assert_int_eq(st_offset_index_append(idx, 1003, 30), SC_ERR_FULL);
    ck_assert_int_eq(st_index_room(idx), 0);
    st_index_close(idx);
}
END_TEST

START_TEST(test_st_index_trim_and_reopen_keeps_entries)
{
    st_index_t *idx = filled_offset_index(7);
    int64_t off;
    uint32_t pos;

    ck_assert_int_eq(t_file_size(opath), 4096 / 8 * 8);
    ck_assert_int_eq(st_index_trim(idx), 0);
    ck_assert_int_eq(t_file_size(opath), 7 * 8);
    /* lookups still work (mapped read-only on demand) */
    ck_assert_int_eq(st_offset_index_lookup(idx, 1035, &off, &pos), 0);
    ck_assert_int_eq(off, 1030);
    st_index_close(idx);
    idx = open_idx(opath, ST_INDEX_OFFSET, 0);
    ck_assert_int_eq(st_index_count(idx), 7);
    ck_assert_int_eq(st_offset_index_lookup(idx, 1070, &off, &pos), 0);
    ck_assert_int_eq(pos, 700);
    const char *why = NULL;
    ck_assert_int_eq(st_index_check(idx, 701, 1071, &why), 0);
    st_index_close(idx);
}
END_TEST

START_TEST(test_st_index_reopen_ignores_zero_tail_of_preallocated_file)
{
    st_index_t *idx = filled_offset_index(3);
    st_index_close(idx); /* no trim: as after a crash */
    ck_assert_int_eq(t_file_size(opath), 4096);
    idx = open_idx(opath, ST_INDEX_OFFSET, 0);
    ck_assert_int_eq(st_index_count(idx), 3);
    /* activating again keeps the entries and appends after them */
    ck_assert_int_eq(st_index_activate(idx, 4096), 0);
    ck_assert_int_eq(st_offset_index_append(idx, 1040, 400), 0);
    ck_assert_int_eq(st_index_count(idx), 4);
    st_index_close(idx);
}
END_TEST

START_TEST(test_st_index_check_rejects_corruption)
{
    uint8_t b[24];
    const char *why = NULL;
    st_index_t *idx;

    /* size not a multiple of the entry size */
    memset(b, 0, sizeof b);
    sc_store_be32(b, 5);
    sc_store_be32(b + 4, 50);
    write_file(opath, b, 7);
    idx = open_idx(opath, ST_INDEX_OFFSET, 0);
    ck_assert_int_eq(st_index_check(idx, 1 << 20, -1, &why), SC_ERR_BAD_FORMAT);
    st_index_close(idx);

    /* entries not increasing */
    sc_store_be32(b, 5);
    sc_store_be32(b + 4, 50);
    sc_store_be32(b + 8, 4);
    sc_store_be32(b + 12, 60);
    write_file(opath, b, 16);
    idx = open_idx(opath, ST_INDEX_OFFSET, 0);
    ck_assert_int_eq(st_index_check(idx, 1 << 20, -1, &why), SC_ERR_BAD_FORMAT);
    st_index_close(idx);

    /* position past the log, offset past the segment */
    sc_store_be32(b + 8, 9);
    sc_store_be32(b + 12, 60);
    write_file(opath, b, 16);
    idx = open_idx(opath, ST_INDEX_OFFSET, 0);
    ck_assert_int_eq(st_index_check(idx, 1 << 20, -1, &why), 0);
    ck_assert_int_eq(st_index_check(idx, 60, -1, &why), SC_ERR_BAD_FORMAT);
    ck_assert_int_eq(st_index_check(idx, 1 << 20, 1009, &why), SC_ERR_BAD_FORMAT);
    ck_assert_int_eq(st_index_check(idx, 1 << 20, 1010, &why), 0);
    st_index_close(idx);

    /* time index: timestamps must increase */
    sc_store_be64(b, 500);
    sc_store_be32(b + 8, 1);
    sc_store_be64(b + 12, 400);
    sc_store_be32(b + 20, 2);
    write_file(tpath, b, 24);
    idx = open_idx(tpath, ST_INDEX_TIME, 0);
    ck_assert_int_eq(st_index_check(idx, 1 << 20, -1, &why), SC_ERR_BAD_FORMAT);
    st_index_close(idx);
}
END_TEST

START_TEST(test_st_index_time_lookup_and_append_only_when_larger)
{
    st_index_t *idx = open_idx(tpath, ST_INDEX_TIME, 2);
    int64_t ts, off;

    ck_assert_int_eq(st_index_activate(idx, 1200), 0);
    ck_assert_int_eq(st_time_index_append(idx, 100, 1000), 0);
    ck_assert_int_eq(st_time_index_append(idx, 90, 1005), 0); /* not larger: no-op */
    ck_assert_int_eq(st_time_index_append(idx, 100, 1006), 0);
    ck_assert_int_eq(st_time_index_append(idx, 200, 1010), 0);
    ck_assert_int_eq(st_time_index_append(idx, 300, 1004), SC_ERR_BAD_FORMAT);
    ck_assert_int_eq(st_index_count(idx), 2);
    ck_assert_int_eq(st_time_index_lookup(idx, 50, &ts, &off), 0);
    ck_assert_int_eq(ts, -1);
    ck_assert_int_eq(off, 1000);
    ck_assert_int_eq(st_time_index_lookup(idx, 100, &ts, &off), 0);
    ck_assert_int_eq(ts, 100);
    ck_assert_int_eq(off, 1000);
    ck_assert_int_eq(st_time_index_lookup(idx, 199, &ts, &off), 0);
    ck_assert_int_eq(ts, 100);
    ck_assert_int_eq(st_time_index_lookup(idx, 5000, &ts, &off), 0);
    ck_assert_int_eq(ts, 200);
    ck_assert_int_eq(off, 1010);
    ck_assert_int_eq(st_time_index_last(idx, &ts, &off), 0);
    ck_assert_int_eq(ts, 200);
    ck_assert_int_eq(st_index_trim(idx), 0);
    ck_assert_int_eq(t_file_size(tpath), 24);
    st_index_close(idx);
}
END_TEST

START_TEST(test_st_index_truncate_drops_entries_at_or_after_offset)
{
    st_index_t *idx = filled_offset_index(10);
    int64_t off;
    uint32_t pos;

    /* active: dropped entries are zeroed so a crash cannot resurrect them */
    ck_assert_int_eq(st_index_truncate(idx, 1055), 0);
    ck_assert_int_eq(st_index_count(idx), 5);
    st_index_close(idx);
    idx = open_idx(opath, ST_INDEX_OFFSET, 0);
    ck_assert_int_eq(st_index_count(idx), 5);
    /* inactive: the file shrinks */
    ck_assert_int_eq(st_index_truncate(idx, 1030), 0);
    ck_assert_int_eq(st_index_count(idx), 2);
    ck_assert_int_eq(t_file_size(opath), 16);
    ck_assert_int_eq(st_offset_index_lookup(idx, 1099, &off, &pos), 0);
    ck_assert_int_eq(off, 1020);
    ck_assert_int_eq(st_index_truncate(idx, 1000), 0);
    ck_assert_int_eq(st_index_count(idx), 0);
    ck_assert_int_eq(st_offset_index_lookup(idx, 1099, &off, &pos), 0);
    ck_assert_int_eq(off, 1000);
    ck_assert_int_eq(pos, 0);
    st_index_close(idx);
}
END_TEST

START_TEST(test_st_index_reset_and_delete)
{
    st_index_t *idx = filled_offset_index(4);
    ck_assert_int_eq(st_index_reset(idx), 0);
    ck_assert_int_eq(st_index_count(idx), 0);
    ck_assert_int_eq(st_offset_index_append(idx, 1001, 1), 0);
    ck_assert_int_eq(st_index_sync(idx), 0);
    ck_assert_int_eq(st_index_delete(idx), 0);
    ck_assert_int_eq(t_file_size(opath), -1);
    ck_assert_int_eq(st_index_open(opath, ST_INDEX_OFFSET, 1000, 0, &idx), -ENOENT);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("st_index");
    TCase *tc = tcase_create("index");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_st_index_offset_lookup_finds_floor_entry);
    tcase_add_test(tc, test_st_index_offset_append_rejects_non_increasing);
    tcase_add_test(tc, test_st_index_full_returns_full_when_capacity_reached);
    tcase_add_test(tc, test_st_index_trim_and_reopen_keeps_entries);
    tcase_add_test(tc, test_st_index_reopen_ignores_zero_tail_of_preallocated_file);
    tcase_add_test(tc, test_st_index_check_rejects_corruption);
    tcase_add_test(tc, test_st_index_time_lookup_and_append_only_when_larger);
    tcase_add_test(tc, test_st_index_truncate_drops_entries_at_or_after_offset);
    tcase_add_test(tc, test_st_index_reset_and_delete);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return t_run_suite(suite()); }
