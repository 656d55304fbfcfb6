/*
 * st_segment.c -- a segment's files, its index policy and batch scans.
 *
 * FILES (base = the segment's base offset, 20 digits, zero-padded)
 *
 *   <base>.log        RecordBatch v2 (st_batch.h) back to back from byte 0, no
 *                     header, no padding. The first batch's baseOffset is base;
 *                     each next batch starts at the previous lastOffset + 1.
 *                     Every lastOffset - base fits in 31 bits and the file is
 *                     at most segment.bytes (<= 2^31 - 1) long, so relative
 *                     offsets and positions fit the indexes' uint32 fields.
 *   <base>.index      sparse offset index     (format in st_index.c)
 *   <base>.timeindex  sparse time index       (format in st_index.c)
 *
 * INDEX POLICY (st_segment_index_batch), per batch, in file order -- the same
 * on append and on rebuild, so a rebuilt index equals the one appends made
 * (except the final time entry a roll or close adds):
 *   1. if batch.maxTimestamp > max_ts: max_ts = it, max_ts_offset = baseOffset;
 *   2. if bytes_since_index >= index.interval.bytes:
 *        .index     += (baseOffset -> position)
 *        .timeindex += (max_ts -> max_ts_offset) if max_ts grew since its
 *                      last entry (one slot is kept for the final entry)
 *        bytes_since_index = 0;
 *   3. bytes_since_index += batch size.
 * When the segment stops being active (roll, close) the time index gets
 * (max_ts -> max_ts_offset) if that is newer than its last entry, so its last
 * entry is the segment's largest timestamp (used by retention.ms after a
 * restart). Time index entries point at the batch where the running maximum
 * was reached: every record before that batch is older than the entry.
 *
 * SCANS walk batch headers from a position. The recovery scan (st_segment_scan)
 * also checks CRC-32C and offsets and stops at the first bad batch; the
 * caller truncates there.
 */
#include "st_segment.h"

#include "sc_crc32c.h"
#include "sc_endian.h"
#include "sc_err.h"
#include "sc_log.h"
#include "sc_mem.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Offsets in a segment stay within 2^31 - 1 of its base (Kafka's rule). */
#define REL_OFFSET_MAX INT32_MAX
#define READER_WINDOW 8192

int st_segment_file_name(char *out, const char *dir, int64_t base, const char *suffix)
{
    int n = snprintf(out, PATH_MAX, "%s/%020" PRId64 "%s", dir, base, suffix);
    return n < 0 || n >= PATH_MAX ? -ENAMETOOLONG : 0;
}

int st_segment_parse_name(const char *name, const char *suffix, int64_t *base)
{
    size_t n = strlen(name), sl = strlen(suffix);
    int64_t v = 0;

    if (n != ST_SEGMENT_NAME_DIGITS + sl || strcmp(name + ST_SEGMENT_NAME_DIGITS, suffix) != 0)
        return -1;
    for (int i = 0; i < ST_SEGMENT_NAME_DIGITS; i++) {
        if (name[i] < '0' || name[i] > '9')
            return -1;
        if (v > (INT64_MAX - (name[i] - '0')) / 10)
            return -1;
        v = v * 10 + (name[i] - '0');
    }
    if (v > ST_OFFSET_MAX)
        return -1;
    *base = v;
    return 0;
}

static st_segment_t *seg_alloc(int64_t base)
{
    st_segment_t *seg = sc_calloc(1, sizeof *seg);
    if (!seg)
        return NULL;
    seg->base = base;
    seg->next_offset = -1;
    seg->fd = -1;
    seg->max_ts = -1;
    seg->max_ts_offset = base;
    return seg;
}

int st_segment_create(const char *dir, int64_t base, int64_t index_bytes, int64_t now_ms,
                      st_segment_t **out)
{
    char path[PATH_MAX];
    st_segment_t *seg;
    int rc = 0, created = 0;

    if (!(seg = seg_alloc(base)))
        return SC_ERR_NO_MEMORY;
    seg->next_offset = base;
    seg->created_ms = now_ms;
    if ((rc = st_segment_file_name(path, dir, base, ST_SEGMENT_LOG_SUFFIX)))
        goto out;
    if (!(seg->path = sc_strdup(path))) {
        rc = SC_ERR_NO_MEMORY;
        goto out;
    }
    seg->fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (seg->fd < 0) {
        rc = -errno;
        goto out;
    }
    created = 1;
    if ((rc = st_segment_file_name(path, dir, base, ST_SEGMENT_INDEX_SUFFIX)) ||
        (rc = st_index_open(path, ST_INDEX_OFFSET, base, 2, &seg->oidx)))
        goto out;
    if ((rc = st_segment_file_name(path, dir, base, ST_SEGMENT_TIMEINDEX_SUFFIX)) ||
        (rc = st_index_open(path, ST_INDEX_TIME, base, 2, &seg->tidx)))
        goto out;
    rc = st_segment_activate(seg, index_bytes);
out:
    if (rc) {
        if (created) {
            st_segment_delete(seg);
        } else {
            st_segment_close(seg);
        }
        return rc;
    }
    *out = seg;
    return 0;
}

static int open_index(const char *dir, int64_t base, const char *suffix, st_index_kind_t kind,
                      st_index_t **out, int *missing)
{
    char path[PATH_MAX];
    int rc = st_segment_file_name(path, dir, base, suffix);
    if (rc)
        return rc;
    rc = st_index_open(path, kind, base, 0, out);
    if (rc == -ENOENT) {
        *missing = 1;
        rc = st_index_open(path, kind, base, 1, out);
    }
    return rc;
}

int st_segment_open(const char *dir, int64_t base, int64_t now_ms, st_segment_t **out,
                    int *index_missing)
{
    char path[PATH_MAX];
    struct stat st;
    st_segment_t *seg;
    int rc = 0, missing = 0;

    if (!(seg = seg_alloc(base)))
        return SC_ERR_NO_MEMORY;
    seg->created_ms = now_ms;
    if ((rc = st_segment_file_name(path, dir, base, ST_SEGMENT_LOG_SUFFIX)))
        goto out;
    if (!(seg->path = sc_strdup(path))) {
        rc = SC_ERR_NO_MEMORY;
        goto out;
    }
    seg->fd = open(path, O_RDWR | O_CLOEXEC);
    if (seg->fd < 0 || fstat(seg->fd, &st)) {
        rc = -errno;
        goto out;
    }
    seg->size = (uint64_t)st.st_size;
    if ((rc = open_index(dir, base, ST_SEGMENT_INDEX_SUFFIX, ST_INDEX_OFFSET, &seg->oidx,
                         &missing)) ||
        (rc = open_index(dir, base, ST_SEGMENT_TIMEINDEX_SUFFIX, ST_INDEX_TIME, &seg->tidx,
                         &missing)))
        goto out;
out:
    if (rc) {
        st_segment_close(seg);
        return rc;
    }
    *index_missing = missing;
    *out = seg;
    return 0;
}

void st_segment_close(st_segment_t *seg)
{
    if (!seg)
        return;
    st_index_close(seg->oidx);
    st_index_close(seg->tidx);
    if (seg->fd >= 0)
        close(seg->fd);
    sc_free(seg->path);
    sc_free(seg);
}

int st_segment_delete(st_segment_t *seg)
{
    int rc = 0, r;

    if (!seg)
        return 0;
    if (seg->path && unlink(seg->path) && errno != ENOENT)
        rc = -errno;
    r = st_index_delete(seg->oidx);
    seg->oidx = NULL;
    if (!rc)
        rc = r;
    r = st_index_delete(seg->tidx);
    seg->tidx = NULL;
    if (!rc)
        rc = r;
    st_segment_close(seg);
    return rc;
}

int st_segment_activate(st_segment_t *seg, int64_t index_bytes)
{
    int rc = st_index_activate(seg->oidx, index_bytes);
    if (!rc)
        rc = st_index_activate(seg->tidx, index_bytes);
    return rc;
}

int st_segment_deactivate(st_segment_t *seg)
{
    int rc = 0, r;

    if (seg->max_ts >= 0 && st_index_active(seg->tidx))
        (void)st_time_index_append(seg->tidx, seg->max_ts, seg->max_ts_offset);
    r = st_index_trim(seg->oidx);
    if (!rc)
        rc = r;
    r = st_index_trim(seg->tidx);
    if (!rc)
        rc = r;
    return rc;
}

int st_segment_sync_indexes(st_segment_t *seg)
{
    int rc = st_index_sync(seg->oidx);
    int r = st_index_sync(seg->tidx);
    return rc ? rc : r;
}

void st_segment_index_batch(st_segment_t *seg, const st_batch_hdr_t *h, uint64_t pos,
                            int32_t interval)
{
    int64_t size = (int64_t)h->length + ST_BATCH_LOG_OVERHEAD;

    if (h->max_timestamp > seg->max_ts) {
        seg->max_ts = h->max_timestamp;
        seg->max_ts_offset = h->base_offset;
    }
    if (seg->bytes_since_index >= (uint64_t)(interval > 0 ? interval : 0) && pos <= UINT32_MAX) {
        (void)st_offset_index_append(seg->oidx, h->base_offset, (uint32_t)pos);
        if (seg->max_ts >= 0 && st_index_room(seg->tidx) >= 2)
            (void)st_time_index_append(seg->tidx, seg->max_ts, seg->max_ts_offset);
        seg->bytes_since_index = 0;
    }
    seg->bytes_since_index += (uint64_t)size;
    seg->next_offset = st_batch_last_offset(h) + 1;
}

/* ---- reading headers ---- */

void st_reader_init(st_reader_t *r, int fd, uint64_t end, uint8_t *buf, size_t cap)
{
    r->fd = fd;
    r->end = end;
    r->buf = buf;
    r->cap = cap;
    r->wpos = 0;
    r->wlen = 0;
}

/* preads up to n bytes at off; short only at end of file. Bytes read or -errno. */
static ssize_t pread_some(int fd, uint8_t *buf, size_t n, uint64_t off)
{
    size_t got = 0;
    while (got < n) {
        ssize_t k = pread(fd, buf + got, n - got, (off_t)(off + got));
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (k == 0)
            break;
        got += (size_t)k;
    }
    return (ssize_t)got;
}

int st_reader_header(st_reader_t *r, uint64_t pos, st_batch_hdr_t *h, const char **why)
{
    const uint8_t *p;

    if (pos == r->end)
        return 1;
    if (pos > r->end) {
        *why = "position past the end of the segment";
        return SC_ERR_CORRUPT_MESSAGE;
    }
    if (r->end - pos < ST_BATCH_HEADER_SIZE) {
        *why = "torn batch header";
        return SC_ERR_CORRUPT_MESSAGE;
    }
    if (!(pos >= r->wpos && pos + ST_BATCH_HEADER_SIZE <= r->wpos + r->wlen)) {
        uint64_t n = r->end - pos;
        if (n > r->cap)
            n = r->cap;
        ssize_t got = pread_some(r->fd, r->buf, (size_t)n, pos);
        if (got < 0)
            return (int)got;
        r->wpos = pos;
        r->wlen = (size_t)got;
        if ((size_t)got < ST_BATCH_HEADER_SIZE) {
            *why = "torn batch header (file shorter than expected)";
            return SC_ERR_CORRUPT_MESSAGE;
        }
    }
    p = r->buf + (pos - r->wpos);
    st_batch_hdr_decode(p, ST_BATCH_HEADER_SIZE, h);
    if (h->length < ST_BATCH_HEADER_SIZE - ST_BATCH_LOG_OVERHEAD) {
        *why = "batchLength below the header size";
        return SC_ERR_CORRUPT_MESSAGE;
    }
    if ((uint64_t)h->length + ST_BATCH_LOG_OVERHEAD > r->end - pos) {
        *why = "torn batch (extends past the end of the file)";
        return SC_ERR_CORRUPT_MESSAGE;
    }
    if (h->magic != ST_BATCH_MAGIC) {
        *why = "magic is not 2";
        return SC_ERR_CORRUPT_MESSAGE;
    }
    if (h->last_offset_delta < 0) {
        *why = "negative lastOffsetDelta";
        return SC_ERR_CORRUPT_MESSAGE;
    }
    if (h->base_offset < 0 || h->base_offset > ST_OFFSET_MAX) {
        *why = "baseOffset out of range";
        return SC_ERR_CORRUPT_MESSAGE;
    }
    return 0;
}

/* Validates the batch at pos (header h already framed) with buf as scratch:
 * whole-batch st_batch_validate when it fits, else counts + a streamed CRC. */
static int validate_batch(int fd, uint64_t pos, const st_batch_hdr_t *h, uint8_t *buf, size_t cap,
                          int allow_gaps, const char **why)
{
    uint64_t size = (uint64_t)h->length + ST_BATCH_LOG_OVERHEAD;
    ssize_t got;

    if (h->records_count < 0 ||
        (allow_gaps ? h->records_count > (int64_t)h->last_offset_delta + 1
                    : h->records_count != (int64_t)h->last_offset_delta + 1)) {
        *why = "recordsCount does not match lastOffsetDelta";
        return SC_ERR_CORRUPT_MESSAGE;
    }
    if (size <= cap) {
        got = pread_some(fd, buf, (size_t)size, pos);
        if (got < 0)
            return (int)got;
        if ((uint64_t)got < size) {
            *why = "torn batch (file shorter than expected)";
            return SC_ERR_CORRUPT_MESSAGE;
        }
        if (st_batch_validate(buf, (size_t)size, allow_gaps, NULL)) {
            *why = "CRC-32C mismatch";
            return SC_ERR_CORRUPT_MESSAGE;
        }
        return 0;
    }
    uint32_t crc = 0;
    uint64_t off = ST_BATCH_OFF_ATTRIBUTES;
    while (off < size) {
        size_t n = size - off > cap ? cap : (size_t)(size - off);
        got = pread_some(fd, buf, n, pos + off);
        if (got < 0)
            return (int)got;
        if ((size_t)got < n) {
            *why = "torn batch (file shorter than expected)";
            return SC_ERR_CORRUPT_MESSAGE;
        }
        crc = sc_crc32c(crc, buf, n);
        off += n;
    }
    if (crc != h->crc) {
        *why = "CRC-32C mismatch";
        return SC_ERR_CORRUPT_MESSAGE;
    }
    return 0;
}

int st_segment_scan(st_segment_t *seg, uint64_t pos, int64_t expected, int index, int32_t interval,
                    uint8_t *buf, size_t cap, st_segment_batch_cb cb, void *arg, st_scan_t *out)
{
    st_reader_t r;
    st_batch_hdr_t h;
    size_t wcap = cap / 8 < READER_WINDOW ? cap / 8 : READER_WINDOW;
    int rc = 0;

    if (wcap < ST_BATCH_HEADER_SIZE)
        wcap = ST_BATCH_HEADER_SIZE;
    if (cap < wcap + 4096)
        return SC_ERR_NO_MEMORY; /* caller bug: scratch too small */
    st_reader_init(&r, seg->fd, seg->size, buf, wcap);
    memset(out, 0, sizeof *out);
    for (;;) {
        const char *why = NULL;
        rc = st_reader_header(&r, pos, &h, &why);
        if (rc == 1) {
            rc = 0;
            break;
        }
        if (rc == SC_ERR_CORRUPT_MESSAGE) {
            out->err = rc;
            out->why = why;
            rc = 0;
            break;
        }
        if (rc)
            goto done;
        if (seg->allow_gaps ? h.base_offset < expected : h.base_offset != expected) {
            out->err = SC_ERR_CORRUPT_MESSAGE;
            out->why = "baseOffset is not the next offset";
            break;
        }
        if (st_batch_last_offset(&h) - seg->base > REL_OFFSET_MAX) {
            out->err = SC_ERR_CORRUPT_MESSAGE;
            out->why = "offset too far from the segment base";
            break;
        }
        rc = validate_batch(seg->fd, pos, &h, buf + wcap, cap - wcap, seg->allow_gaps, &why);
        if (rc == SC_ERR_CORRUPT_MESSAGE) {
            out->err = rc;
            out->why = why;
            rc = 0;
            break;
        }
        if (rc)
            goto done;
        if (cb && (rc = cb(arg, &h, &why))) {
            out->err = rc;
            out->why = why;
            rc = 0;
            break;
        }
        if (index)
            st_segment_index_batch(seg, &h, pos, interval);
        pos += (uint64_t)h.length + ST_BATCH_LOG_OVERHEAD;
        expected = st_batch_last_offset(&h) + 1;
        out->nbatches++;
    }
done:
    out->end_pos = pos;
    out->next_offset = expected;
    return rc;
}

int st_segment_find(st_segment_t *seg, st_reader_t *r, int64_t offset, uint64_t *pos,
                    st_batch_hdr_t *h)
{
    int64_t eo, prev_last;
    uint32_t ep;
    uint64_t p;
    int rc, first = 1;

    if ((rc = st_offset_index_lookup(seg->oidx, offset, &eo, &ep)))
        return rc;
    p = ep;
    prev_last = eo - 1;
    for (;;) {
        const char *why = NULL;
        rc = st_reader_header(r, p, h, &why);
        if (rc == 1)
            return SC_ERR_NOT_FOUND;
        if (rc == 0 && first && p != 0 && h->base_offset != eo)
            rc = SC_ERR_CORRUPT_MESSAGE; /* the index disagrees with the log */
        if (rc == 0 && h->base_offset <= prev_last)
            rc = SC_ERR_CORRUPT_MESSAGE;
        if (rc) {
            if (rc == SC_ERR_CORRUPT_MESSAGE && first && p != 0) {
                SC_WARN("storage", "%s: offset index entry %" PRId64 " -> %" PRIu32
                        " does not match the log; scanning from the start",
                        seg->path, eo, ep);
                p = 0;
                prev_last = seg->base - 1;
                first = 0;
                continue;
            }
            if (rc == SC_ERR_CORRUPT_MESSAGE)
                SC_ERROR("storage", "%s: bad batch at position %" PRIu64 ": %s", seg->path, p,
                         why ? why : "offsets not increasing");
            return rc;
        }
        first = 0;
        if (st_batch_last_offset(h) >= offset) {
            *pos = p;
            return 0;
        }
        prev_last = st_batch_last_offset(h);
        p += (uint64_t)h->length + ST_BATCH_LOG_OVERHEAD;
    }
}

int st_segment_refresh_tail(st_segment_t *seg, uint8_t *buf, size_t cap)
{
    st_reader_t r;
    st_batch_hdr_t h;
    int64_t ts, toff, eo;
    uint32_t ep;
    uint64_t p = 0;
    int rc;

    seg->max_ts = -1;
    seg->max_ts_offset = seg->base;
    rc = st_time_index_last(seg->tidx, &ts, &toff);
    if (rc == 0) {
        seg->max_ts = ts;
        seg->max_ts_offset = toff;
        if ((rc = st_offset_index_lookup(seg->oidx, toff, &eo, &ep)))
            return rc;
        p = ep;
    } else if (rc != SC_ERR_NOT_FOUND) {
        return rc;
    }
    rc = st_offset_index_last(seg->oidx, &eo, &ep);
    if (rc == 0)
        seg->bytes_since_index = seg->size - ep;
    else if (rc == SC_ERR_NOT_FOUND)
        seg->bytes_since_index = seg->size;
    else
        return rc;
    st_reader_init(&r, seg->fd, seg->size, buf, cap);
    for (;;) {
        const char *why = NULL;
        rc = st_reader_header(&r, p, &h, &why);
        if (rc == 1)
            return 0;
        if (rc) {
            if (rc == SC_ERR_CORRUPT_MESSAGE)
                SC_ERROR("storage", "%s: bad batch at position %" PRIu64 ": %s", seg->path, p, why);
            return rc;
        }
        if (h.max_timestamp > seg->max_ts) {
            seg->max_ts = h.max_timestamp;
            seg->max_ts_offset = h.base_offset;
        }
        p += (uint64_t)h.length + ST_BATCH_LOG_OVERHEAD;
    }
}
