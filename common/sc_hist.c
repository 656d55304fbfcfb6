#include "sc_hist.h"

#include <string.h>

void sc_hist_init(sc_hist_t *h)
{
    memset(h, 0, sizeof *h);
    h->min = UINT64_MAX;
}

unsigned sc_hist_index(uint64_t v)
{
    if (v < SC_HIST_SUB)
        return (unsigned)v;
    unsigned e = 63u - (unsigned)__builtin_clzll(v); /* >= SUB_BITS */
    unsigned shift = e - (SC_HIST_SUB_BITS - 1);
    unsigned m = (unsigned)(v >> shift); /* in [HALF, SUB) */
    return SC_HIST_SUB + (e - SC_HIST_SUB_BITS) * SC_HIST_HALF + (m - SC_HIST_HALF);
}

uint64_t sc_hist_bucket_low(unsigned i)
{
    if (i < SC_HIST_SUB)
        return i;
    unsigned row = (i - SC_HIST_SUB) / SC_HIST_HALF, col = (i - SC_HIST_SUB) % SC_HIST_HALF;
    unsigned e = row + SC_HIST_SUB_BITS, shift = e - (SC_HIST_SUB_BITS - 1);
    return (uint64_t)(SC_HIST_HALF + col) << shift;
}

uint64_t sc_hist_bucket_high(unsigned i)
{
    if (i < SC_HIST_SUB)
        return i;
    unsigned row = (i - SC_HIST_SUB) / SC_HIST_HALF;
    unsigned shift = row + 1;
    return sc_hist_bucket_low(i) + ((uint64_t)1 << shift) - 1;
}

void sc_hist_record_n(sc_hist_t *h, uint64_t v, uint64_t n)
{
    if (!n)
        return;
    h->b[sc_hist_index(v)] += n;
    h->count += n;
    h->sum += (double)v * (double)n;
    if (v < h->min)
        h->min = v;
    if (v > h->max)
        h->max = v;
}

void sc_hist_record(sc_hist_t *h, uint64_t v) { sc_hist_record_n(h, v, 1); }

void sc_hist_merge(sc_hist_t *dst, const sc_hist_t *src)
{
    if (!src->count)
        return;
    for (unsigned i = 0; i < SC_HIST_BUCKETS; i++)
        dst->b[i] += src->b[i];
    dst->count += src->count;
    dst->sum += src->sum;
    if (src->min < dst->min)
        dst->min = src->min;
    if (src->max > dst->max)
        dst->max = src->max;
}

uint64_t sc_hist_percentile(const sc_hist_t *h, double p)
{
    if (!h->count)
        return 0;
    if (p <= 0)
        return h->min;
    if (p >= 100)
        return h->max;
    double want = p / 100.0 * (double)h->count;
    uint64_t rank = (uint64_t)want;
    if ((double)rank < want)
        rank++; /* ceil */
    if (rank < 1)
        rank = 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < SC_HIST_BUCKETS; i++) {
        seen += h->b[i];
        if (seen >= rank) {
            uint64_t v = sc_hist_bucket_high(i);
            if (v > h->max)
                v = h->max;
            if (v < h->min)
                v = h->min;
            return v;
        }
    }
    return h->max;
}

double sc_hist_mean(const sc_hist_t *h) { return h->count ? h->sum / (double)h->count : 0; }
