/*
 * sc_hist -- a log-linear (HDR-style) histogram of non-negative 64-bit values
 * (latencies in ns, sizes in bytes).
 *
 * Values below 2^SC_HIST_SUB_BITS are counted exactly; above, every power of
 * two [2^e, 2^(e+1)) is split into 2^(SC_HIST_SUB_BITS-1) equal buckets, so a
 * bucket is at most 1/2^(SC_HIST_SUB_BITS-1) of its values wide: with 8 bits
 * every reported percentile is within 0.8% of the true value (HDR Histogram
 * with 2 significant digits, without its configuration). Count, sum, exact
 * min and max are kept too. The whole histogram is one fixed-size struct
 * (~58 KiB): no allocation, record is a few instructions.
 *
 * Not thread-safe: give each writer its own histogram and sc_hist_merge them.
 */
#ifndef SC_HIST_H
#define SC_HIST_H

#include <stdint.h>

#define SC_HIST_SUB_BITS 8
#define SC_HIST_SUB (1u << SC_HIST_SUB_BITS)
#define SC_HIST_HALF (SC_HIST_SUB / 2)
/* exact buckets + one row of HALF buckets per exponent SUB_BITS..63 */
#define SC_HIST_BUCKETS (SC_HIST_SUB + (64 - SC_HIST_SUB_BITS) * SC_HIST_HALF)

typedef struct {
    uint64_t count;
    uint64_t min, max; /* exact; min = UINT64_MAX while empty */
    double sum;        /* for the mean */
    uint64_t b[SC_HIST_BUCKETS];
} sc_hist_t;

void sc_hist_init(sc_hist_t *h);
void sc_hist_record(sc_hist_t *h, uint64_t v);
void sc_hist_record_n(sc_hist_t *h, uint64_t v, uint64_t n);
/* dst += src */
void sc_hist_merge(sc_hist_t *dst, const sc_hist_t *src);

/* The value at percentile p (0..100): the highest value of the bucket that
 * holds the ceil(p/100 * count)-th smallest value, clamped to [min, max], so
 * p = 100 is the exact max and p = 0 the exact min. 0 when empty. */
uint64_t sc_hist_percentile(const sc_hist_t *h, double p);
double sc_hist_mean(const sc_hist_t *h); /* 0 when empty */

/* Bucket arithmetic, exposed for tests: index of v, and the lowest / highest
 * value of bucket i. */
unsigned sc_hist_index(uint64_t v);
uint64_t sc_hist_bucket_low(unsigned i);
uint64_t sc_hist_bucket_high(unsigned i);

#endif
