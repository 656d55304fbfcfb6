/*
 * st_log_read.c -- reads and time lookups.
 *
 * A read finds the segment holding the offset (binary search on bases), the
 * nearest offset index entry at or below it, then walks batch headers with
 * pread (an 8 KiB window) to the batch containing the offset, and extends the
 * slice batch by batch within that segment while the batches fit max_bytes
 * (the first always counts) and end below the limit (min(max_offset,
 * written)). Because the limit is a batch boundary and the walk stops at the
 * first batch reaching it, no header past the written offset is ever read.
 *
 * Bytes read from disk are checked for framing (length, magic, increasing
 * offsets); a bad header is an error return, never a crash, even on a log
 * whose CLEAN checkpoint let recovery skip the scan.
 */
#include "st_file.h"
#include "st_log_int.h"

#include "sc_err.h"
#include "sc_log.h"
#include "sc_mem.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

int st_log_read(st_log_t *log, int64_t offset, uint64_t max_bytes, int64_t max_offset,
                st_slice_t *out)
{
    uint8_t buf[ST_READ_WINDOW];
    st_reader_t r;
    st_batch_hdr_t h;
    st_segment_t *seg;
    int64_t limit = max_offset < log->written ? max_offset : log->written;
    uint64_t pos, p, total;
    int64_t next, first;
    unsigned i;
    int rc;

    if (log->nsegs == 0)
        return SC_ERR_LOG_FAILED;
    if (offset < log->lso || offset > log->leo)
        return SC_ERR_OFFSET_OUT_OF_RANGE;
    memset(out, 0, sizeof *out);
    out->fd = -1;
    out->first_offset = out->next_offset = offset;
    if (offset >= limit)
        return 0;
    for (i = st__log_seg_index(log, offset);; i++) {
        if (i >= log->nsegs)
            return 0;
        seg = log->segs[i];
        st_reader_init(&r, seg->fd, seg->size, buf, sizeof buf);
        rc = st_segment_find(seg, &r, offset, &pos, &h);
        if (rc == 0)
            break;
        if (rc != SC_ERR_NOT_FOUND)
            return rc;
        /* offset is past this segment's data (it ends where the next begins) */
    }
    if (st_batch_last_offset(&h) >= limit || h.base_offset >= limit)
        return 0;
    first = h.base_offset;
    total = (uint64_t)h.length + ST_BATCH_LOG_OVERHEAD;
    next = st_batch_last_offset(&h) + 1;
    p = pos + total;
    while (next < limit && total < max_bytes) {
        const char *why = NULL;
        rc = st_reader_header(&r, p, &h, &why);
        if (rc == 1)
            break;
        if (rc == SC_ERR_CORRUPT_MESSAGE || (rc == 0 && h.base_offset < next)) {
            SC_ERROR("storage", "%s: bad batch at position %" PRIu64 ": %s", seg->path, p,
                     why ? why : "offsets not increasing");
            return SC_ERR_CORRUPT_MESSAGE;
        }
        if (rc)
            return rc;
        uint64_t size = (uint64_t)h.length + ST_BATCH_LOG_OVERHEAD;
        if (st_batch_last_offset(&h) >= limit || total + size > max_bytes)
            break;
        total += size;
        next = st_batch_last_offset(&h) + 1;
        p += size;
    }
    out->fd = seg->fd;
    out->pos = pos;
    out->len = total;
    out->first_offset = first;
    out->next_offset = next;
    return 0;
}

int st_log_read_into(st_log_t *log, int64_t offset, void *buf, size_t cap, int64_t max_offset,
                     size_t *len)
{
    st_slice_t s;
    int rc = st_log_read(log, offset, cap, max_offset, &s);

    if (rc)
        return rc;
    if (s.len > cap)
        return SC_ERR_MESSAGE_TOO_LARGE;
    if (s.len > 0 && (rc = st_file_pread_all(s.fd, buf, (size_t)s.len, s.pos)))
        return rc == SC_ERR_CORRUPT_MESSAGE ? -EIO : rc; /* the file shrank under us */
    *len = (size_t)s.len;
    return 0;
}

int64_t st_log_read_copy(st_log_t *log, int64_t offset, void *buf, size_t cap, int64_t max_offset)
{
    size_t len = 0;
    int rc = st_log_read_into(log, offset, buf, cap, max_offset, &len);

    if (rc)
        return rc > 0 ? -(int64_t)rc : rc;
    return (int64_t)len;
}

/* In seg, the first record with timestamp >= ts below limit, scanning from
 * the time index's hint. 0, SC_ERR_NOT_FOUND, or an error. */
static int lookup_time_in(st_log_t *log, st_segment_t *seg, int64_t ts, int64_t limit,
                          int64_t *offset)
{
    uint8_t win[ST_READ_WINDOW];
    st_reader_t r;
    st_batch_hdr_t h;
    int64_t hint_ts, hint_off;
    uint64_t p;
    int rc;

    if ((rc = st_time_index_lookup(seg->tidx, ts, &hint_ts, &hint_off)))
        return rc;
    st_reader_init(&r, seg->fd, seg->size, win, sizeof win);
    if ((rc = st_segment_find(seg, &r, hint_off, &p, &h)))
        return rc;
    for (;;) {
        uint64_t size = (uint64_t)h.length + ST_BATCH_LOG_OVERHEAD;
        if (h.base_offset >= limit)
            return SC_ERR_NOT_FOUND;
        if (h.max_timestamp >= ts) {
            uint8_t *b = sc_malloc((size_t)size);
            if (!b)
                return SC_ERR_NO_MEMORY;
            rc = st_file_pread_all(seg->fd, b, (size_t)size, p);
            if (rc == 0)
                rc = st_batch_find_timestamp(b, (size_t)size, ts, offset);
            sc_free(b);
            if (rc == SC_ERR_UNSUPPORTED_COMPRESSION_TYPE) {
                *offset = h.base_offset; /* compressed: the batch's base offset */
                return 0;
            }
            if (rc != SC_ERR_NOT_FOUND)
                return rc;
        }
        const char *why = NULL;
        p += size;
        int64_t prev_last = st_batch_last_offset(&h);
        rc = st_reader_header(&r, p, &h, &why);
        if (rc == 1)
            return SC_ERR_NOT_FOUND;
        if (rc == 0 && h.base_offset <= prev_last)
            rc = SC_ERR_CORRUPT_MESSAGE;
        if (rc)
            return rc;
    }
}

int st_log_lookup_time(st_log_t *log, int64_t ts, int64_t *offset)
{
    int64_t limit = log->written;

    for (unsigned i = 0; i < log->nsegs; i++) {
        st_segment_t *seg = log->segs[i];
        int64_t off;
        int rc;
        if (seg->base >= limit)
            break;
        if (seg->max_ts < ts)
            continue;
        rc = lookup_time_in(log, seg, ts, limit, &off);
        if (rc == SC_ERR_NOT_FOUND)
            continue;
        if (rc)
            return rc;
        *offset = off < log->lso ? log->lso : off;
        return 0;
    }
    return SC_ERR_NOT_FOUND;
}
