/* Unit tests for common/sc_hist: bucket arithmetic, percentiles against an
 * exact sort, merge, edge values. */
#include "sc_hist.h"
#include "t_util.h"

#include <stdlib.h>

START_TEST(test_sc_hist_buckets_cover_every_value_once)
{
    /* consecutive buckets tile the value range without gaps or overlap */
    for (unsigned i = 0; i + 1 < SC_HIST_BUCKETS; i++) {
        ck_assert_uint_le(sc_hist_bucket_low(i), sc_hist_bucket_high(i));
        ck_assert_uint_eq(sc_hist_bucket_high(i) + 1, sc_hist_bucket_low(i + 1));
    }
    ck_assert_uint_eq(sc_hist_bucket_high(SC_HIST_BUCKETS - 1), UINT64_MAX);
    uint64_t probes[] = {0, 1, 255, 256, 257, 511, 512, 1000, 123456789, 1ull << 40,
                         (1ull << 40) + 12345, UINT64_MAX - 1, UINT64_MAX};
    for (size_t k = 0; k < sizeof probes / sizeof *probes; k++) {
        uint64_t v = probes[k];
        unsigned i = sc_hist_index(v);
        ck_assert_uint_lt(i, SC_HIST_BUCKETS);
        ck_assert_uint_le(sc_hist_bucket_low(i), v);
        ck_assert_uint_ge(sc_hist_bucket_high(i), v);
        /* relative width bound: < 1/128 of the value above the exact range */
        if (v >= SC_HIST_SUB)
            ck_assert((double)(sc_hist_bucket_high(i) - sc_hist_bucket_low(i)) <=
                      (double)v / (SC_HIST_HALF - 1));
    }
    ck_assert_uint_eq(sc_hist_index(255), 255);
}
END_TEST

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

START_TEST(test_sc_hist_percentiles_match_exact_within_precision)
{
    enum { N = 100000 };
    static sc_hist_t h;
    uint64_t *v = malloc(N * sizeof *v);
    ck_assert_ptr_nonnull(v);
    sc_hist_init(&h);
    srand(7);
    for (int i = 0; i < N; i++) {
        /* a latency-like long tail: mostly ~100 us, some ms, a few 100 ms */
        uint64_t x = 50000 + (uint64_t)(rand() % 100000);
        if (i % 100 == 0)
            x *= 30;
        if (i % 5000 == 0)
            x *= 1000;
        v[i] = x;
        sc_hist_record(&h, x);
    }
    qsort(v, N, sizeof *v, cmp_u64);
    ck_assert_uint_eq(h.count, N);
    ck_assert_uint_eq(h.min, v[0]);
    ck_assert_uint_eq(h.max, v[N - 1]);
    ck_assert_uint_eq(sc_hist_percentile(&h, 100), v[N - 1]);
    ck_assert_uint_eq(sc_hist_percentile(&h, 0), v[0]);
    double ps[] = {1, 50, 90, 99, 99.9, 99.99};
    for (size_t k = 0; k < sizeof ps / sizeof *ps; k++) {
        size_t rank = (size_t)(ps[k] / 100.0 * N + 0.999999);
        uint64_t exact = v[rank - 1], got = sc_hist_percentile(&h, ps[k]);
        ck_assert_uint_ge(got, exact); /* the bucket's highest value */
        ck_assert((double)(got - exact) <= (double)exact / 127.0);
    }
    double mean = 0;
    for (int i = 0; i < N; i++)
        mean += (double)v[i];
    mean /= N;
    ck_assert(sc_hist_mean(&h) > mean * 0.999999 && sc_hist_mean(&h) < mean * 1.000001);
    free(v);
}
END_TEST

START_TEST(test_sc_hist_merge_and_empty)
{
    static sc_hist_t a, b;
    sc_hist_init(&a);
    sc_hist_init(&b);
    ck_assert_uint_eq(sc_hist_percentile(&a, 99), 0);
    ck_assert(sc_hist_mean(&a) == 0);
    sc_hist_merge(&a, &b); /* empty into empty */
    ck_assert_uint_eq(a.count, 0);
    ck_assert_uint_eq(a.min, UINT64_MAX);
    for (uint64_t i = 1; i <= 100; i++)
        sc_hist_record(i <= 50 ? &a : &b, i * 1000);
    sc_hist_record_n(&b, 7, 0); /* n = 0 records nothing */
    sc_hist_merge(&a, &b);
    ck_assert_uint_eq(a.count, 100);
    ck_assert_uint_eq(a.min, 1000);
    ck_assert_uint_eq(a.max, 100000);
    uint64_t p50 = sc_hist_percentile(&a, 50);
    ck_assert_uint_ge(p50, 50000);
    ck_assert_uint_le(p50, 50000 + 50000 / 127);
    /* one value: every percentile is that value */
    sc_hist_init(&b);
    sc_hist_record_n(&b, 123456789, 3);
    ck_assert_uint_eq(sc_hist_percentile(&b, 1), 123456789);
    ck_assert_uint_eq(sc_hist_percentile(&b, 99.9), 123456789);
    ck_assert_uint_eq(b.count, 3);
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("sc_hist");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_sc_hist_buckets_cover_every_value_once);
    tcase_add_test(tc, test_sc_hist_percentiles_match_exact_within_precision);
    tcase_add_test(tc, test_sc_hist_merge_and_empty);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return t_run_suite(make_suite()); }
