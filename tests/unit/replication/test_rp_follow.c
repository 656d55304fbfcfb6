/* Unit tests for replication/rp_follow: the follower's step over a leader's
 * Fetch answer, with synthetic answers (the fake transport): appends from the
 * log end in order with each batch's leader epoch, skips what is already
 * there, stops at a cut trailing batch, keeps a compacted leader's offset
 * gaps, refuses divergence, passes
 * the callback's error through. */
#include "rp_follow.h"
#include "sc_endian.h"
#include "sc_err.h"
#include "st_batch.h"
#include "t_util.h"

#include <string.h>

/* A minimal batch header (61 bytes, no records): base, lastOffsetDelta, epoch. */
static size_t put_batch(uint8_t *p, int64_t base, int32_t delta, int32_t epoch)
{
    memset(p, 0, 61);
    sc_store_be64(p + ST_BATCH_OFF_BASE_OFFSET, (uint64_t)base);
    sc_store_be32(p + ST_BATCH_OFF_LENGTH, 49);
    sc_store_be32(p + ST_BATCH_OFF_LEADER_EPOCH, (uint32_t)epoch);
    p[ST_BATCH_OFF_MAGIC] = 2;
    sc_store_be32(p + ST_BATCH_OFF_LAST_OFFSET_DELTA, (uint32_t)delta);
    return 61;
}

typedef struct {
    int64_t base[16];
    int32_t epoch[16];
    int n;
    int fail_at; /* return an error on this call (-1: never) */
} rec_t;

static int record_fn(void *arg, const uint8_t *b, size_t len, int64_t base, int32_t epoch)
{
    rec_t *r = arg;
    ck_assert_int_eq(len, 61);
    ck_assert_int_eq((int64_t)sc_load_be64(b), base);
    if (r->n == r->fail_at)
        return SC_ERR_NO_MEMORY;
    r->base[r->n] = base;
    r->epoch[r->n] = epoch;
    r->n++;
    return 0;
}

START_TEST(appends_in_order)
{
    uint8_t d[61 * 3];
    size_t n = 0;
    n += put_batch(d + n, 0, 4, 0);  /* 0..4 */
    n += put_batch(d + n, 5, 0, 0);  /* 5 */
    n += put_batch(d + n, 6, 9, 3);  /* 6..15, epoch 3 */
    rec_t r = {.fail_at = -1};
    int64_t next;
    ck_assert_int_eq(rp_follow_walk(d, n, 0, record_fn, &r, &next), 0);
    ck_assert_int_eq(r.n, 3);
    ck_assert_int_eq(r.base[2], 6);
    ck_assert_int_eq(r.epoch[2], 3);
    ck_assert_int_eq(next, 16);
    /* the same answer again from leo 5: the first batch is skipped */
    rec_t r2 = {.fail_at = -1};
    ck_assert_int_eq(rp_follow_walk(d, n, 5, record_fn, &r2, &next), 0);
    ck_assert_int_eq(r2.n, 2);
    ck_assert_int_eq(r2.base[0], 5);
    ck_assert_int_eq(next, 16);
    /* everything already here */
    rec_t r3 = {.fail_at = -1};
    ck_assert_int_eq(rp_follow_walk(d, n, 16, record_fn, &r3, &next), 0);
    ck_assert_int_eq(r3.n, 0);
    ck_assert_int_eq(next, 16);
    /* empty answer */
    ck_assert_int_eq(rp_follow_walk(d, 0, 7, record_fn, &r3, &next), 0);
    ck_assert_int_eq(next, 7);
}
END_TEST

START_TEST(cut_trailing_batch)
{
    uint8_t d[61 * 2];
    size_t n = put_batch(d, 10, 1, 1);
    n += put_batch(d + n, 12, 0, 1);
    rec_t r = {.fail_at = -1};
    int64_t next;
    ck_assert_int_eq(rp_follow_walk(d, n - 7, 10, record_fn, &r, &next), 0);
    ck_assert_int_eq(r.n, 1);
    ck_assert_int_eq(next, 12);
    /* less than a header */
    rec_t r2 = {.fail_at = -1};
    ck_assert_int_eq(rp_follow_walk(d, 30, 10, record_fn, &r2, &next), 0);
    ck_assert_int_eq(r2.n, 0);
    ck_assert_int_eq(next, 10);
}
END_TEST

START_TEST(gap_and_divergence)
{
    uint8_t d[61 * 2];
    size_t n = put_batch(d, 0, 1, 0);
    n += put_batch(d + n, 5, 0, 0); /* gap: 2..4 missing (compacted leader) */
    rec_t r = {.fail_at = -1};
    int64_t next;
    ck_assert_int_eq(rp_follow_walk(d, n, 0, record_fn, &r, &next), 0);
    ck_assert_int_eq(r.n, 2);
    ck_assert_int_eq(r.base[1], 5); /* its own offset: the gap is kept */
    ck_assert_int_eq(next, 6);
    /* a gap right at the follower's log end (it fetched at 2) */
    rec_t r1 = {.fail_at = -1};
    ck_assert_int_eq(rp_follow_walk(d + 61, 61, 2, record_fn, &r1, &next), 0);
    ck_assert_int_eq(r1.n, 1);
    ck_assert_int_eq(r1.base[0], 5);
    ck_assert_int_eq(next, 6);
    /* a batch straddling the follower's log end: the logs diverged */
    uint8_t e[61];
    put_batch(e, 3, 4, 2); /* 3..7 while the follower ends at 5 */
    rec_t r2 = {.fail_at = -1};
    ck_assert_int_eq(rp_follow_walk(e, 61, 5, record_fn, &r2, &next), SC_ERR_OFFSET_OUT_OF_RANGE);
    ck_assert_int_eq(r2.n, 0);
    ck_assert_int_eq(next, 5);
    /* the leader is behind the follower entirely: nothing to do, not an error */
    ck_assert_int_eq(rp_follow_walk(e, 61, 9, record_fn, &r2, &next), 0);
    ck_assert_int_eq(next, 9);
}
END_TEST

START_TEST(corrupt_and_callback_error)
{
    uint8_t d[61 * 2];
    size_t n = put_batch(d, 0, 0, 0);
    n += put_batch(d + n, 1, 0, 0);
    sc_store_be32(d + 61 + ST_BATCH_OFF_LENGTH, 3); /* impossible batch length */
    rec_t r = {.fail_at = -1};
    int64_t next;
    ck_assert_int_eq(rp_follow_walk(d, n, 0, record_fn, &r, &next), SC_ERR_CORRUPT_MESSAGE);
    ck_assert_int_eq(r.n, 1);
    ck_assert_int_eq(next, 1);
    put_batch(d + 61, 1, 0, 0);
    rec_t r2 = {.fail_at = 1};
    ck_assert_int_eq(rp_follow_walk(d, n, 0, record_fn, &r2, &next), SC_ERR_NO_MEMORY);
    ck_assert_int_eq(r2.n, 1);
    ck_assert_int_eq(next, 1); /* the log end after what was appended */
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("rp_follow");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, appends_in_order);
    tcase_add_test(tc, cut_trailing_batch);
    tcase_add_test(tc, gap_and_divergence);
    tcase_add_test(tc, corrupt_and_callback_error);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return t_run_suite(make_suite()); }
