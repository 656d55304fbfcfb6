/* rp_follow -- which fetched batches a follower appends (see rp_follow.h). */
#include "rp_follow.h"

#include "sc_endian.h"
#include "sc_err.h"
#include "st_batch.h"

int rp_follow_walk(const uint8_t *d, size_t n, int64_t leo, rp_follow_batch_fn fn, void *arg,
                   int64_t *next)
{
    size_t off = 0;
    int64_t expect = leo;
    int rc = 0;
    while (n - off >= ST_BATCH_OFF_RECORDS_COUNT + 4) {
        const uint8_t *b = d + off;
        int64_t base = (int64_t)sc_load_be64(b + ST_BATCH_OFF_BASE_OFFSET);
        int32_t blen = (int32_t)sc_load_be32(b + ST_BATCH_OFF_LENGTH);
        int32_t epoch = (int32_t)sc_load_be32(b + ST_BATCH_OFF_LEADER_EPOCH);
        int32_t delta = (int32_t)sc_load_be32(b + ST_BATCH_OFF_LAST_OFFSET_DELTA);
        if (blen < ST_BATCH_OFF_RECORDS_COUNT + 4 - 12 || delta < 0 || base < 0) {
            rc = SC_ERR_CORRUPT_MESSAGE;
            break;
        }
        size_t size = (size_t)blen + 12;
        if (size > n - off)
            break; /* cut by the leader's max_bytes: fetched again next time */
        int64_t last = base + delta;
        if (last < expect) { /* already here */
            off += size;
            continue;
        }
        if (base < expect) { /* straddles the log end: the logs diverged */
            rc = SC_ERR_OFFSET_OUT_OF_RANGE;
            break;
        }
        /* base > expect: offsets a compacted leader no longer has; the
         * append keeps the batch's own offsets (ST_APPEND_KEEP_OFFSETS) */
        if ((rc = fn(arg, b, size, base, epoch)) != 0)
            break;
        expect = last + 1;
        off += size;
    }
    *next = expect;
    return rc;
}
