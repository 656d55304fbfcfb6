/*
 * st_segment -- one segment of a partition log: <base>.log with its
 * .index and .timeindex (st_index.h). Internal to storage/: the log (st_log*.c)
 * reads and updates the fields directly; everything here runs on the log's
 * thread.
 *
 * A segment keeps its .log fd open for its whole life (writes go through the
 * io backend on that fd, reads pread / sendfile from it). Its logical size
 * counts every byte appended, including writes still in flight.
 */
#ifndef ST_SEGMENT_H
#define ST_SEGMENT_H

#include "st_batch.h"
#include "st_index.h"

#include <stddef.h>
#include <stdint.h>

/* The largest offset a log accepts (from appends, file names, checkpoints).
 * Far beyond any real log, and it keeps offset arithmetic on values read from
 * disk (base + 32-bit deltas) clear of int64 overflow. */
#define ST_OFFSET_MAX (INT64_MAX / 2)

/* "%020lld.log" etc. */
#define ST_SEGMENT_NAME_DIGITS 20
#define ST_SEGMENT_LOG_SUFFIX ".log"
#define ST_SEGMENT_INDEX_SUFFIX ".index"
#define ST_SEGMENT_TIMEINDEX_SUFFIX ".timeindex"

typedef struct st_segment {
    int64_t base;        /* base offset: every batch in it is >= base */
    int64_t next_offset; /* offset after its last batch (== base when empty) */
    uint64_t size;       /* logical size in bytes (queued writes included) */
    int fd;              /* <base>.log, O_RDWR */
    char *path;          /* <dir>/<base>.log */
    st_index_t *oidx;    /* .index */
    st_index_t *tidx;    /* .timeindex */
    int64_t max_ts;      /* largest batch maxTimestamp, -1 when none */
    int64_t max_ts_offset;      /* baseOffset of the batch that has max_ts */
    uint64_t bytes_since_index; /* bytes appended since the last offset index entry */
    int64_t created_ms;  /* wall clock when it became active (segment.ms); a
                            segment reopened after a restart counts from the
                            open (Kafka uses its first batch's timestamp) */
    unsigned inflight;   /* io operations on fd whose callbacks have not run */
    int allow_gaps;      /* compacted (below the cleaner checkpoint): batches may
                            skip offsets and hold fewer records than their
                            offset span; scans accept that */
    int unsynced;        /* written to since the last sync was queued */
} st_segment_t;

/* Called for every batch that passed a scan's own checks, before it is
 * indexed: returns 0 to accept it, or SC_ERR_CORRUPT_MESSAGE with *why set to
 * end the scan there (e.g. the leader epoch check of recovery). */
typedef int (*st_segment_batch_cb)(void *arg, const st_batch_hdr_t *h, const char **why);

/* Where a scan stopped. */
typedef struct {
    uint64_t end_pos;    /* position after the last good batch */
    int64_t next_offset; /* offset after the last good batch */
    int64_t nbatches;    /* good batches passed */
    int err;             /* 0: reached the end of the file; else why it stopped */
    const char *why;     /* static text for err */
} st_scan_t;

/* A bounded header reader over a segment file: preads a window at a time so
 * that walking many small batches costs few syscalls. */
typedef struct {
    int fd;
    uint64_t end; /* readable bytes: [0, end) */
    uint8_t *buf;
    size_t cap;
    uint64_t wpos; /* window [wpos, wpos + wlen) */
    size_t wlen;
} st_reader_t;

/* ---- lifecycle ---- */

/* Creates <dir>/<base>.log (must not exist) and fresh, active indexes of
 * index_bytes. Returns 0 and *out, -errno, SC_ERR_NO_MEMORY. */
int st_segment_create(const char *dir, int64_t base, int64_t index_bytes, int64_t now_ms,
                      st_segment_t **out);

/* Opens an existing segment: the .log (size from fstat) and its indexes,
 * creating empty index files when missing (*index_missing is then 1 and the
 * caller must rebuild). next_offset is unknown (-1) until the caller sets it.
 * Returns 0 and *out, -errno, SC_ERR_NO_MEMORY. */
int st_segment_open(const char *dir, int64_t base, int64_t now_ms, st_segment_t **out,
                    int *index_missing);

/* Closes fds and frees. NULL is a no-op. */
void st_segment_close(st_segment_t *seg);

/* Unlinks the three files, closes and frees. Returns 0 or the first -errno
 * (the segment is freed either way). */
int st_segment_delete(st_segment_t *seg);

/* Makes the indexes appendable (preallocated to index_bytes, mapped rw). */
int st_segment_activate(st_segment_t *seg, int64_t index_bytes);

/* For a roll or close: adds the time index's final entry (the segment's max
 * timestamp) and trims both indexes to their entries. 0 or -errno. */
int st_segment_deactivate(st_segment_t *seg);

/* fsyncs the index files if they changed. 0 or -errno. */
int st_segment_sync_indexes(st_segment_t *seg);

/* ---- appends ---- */

/* The index policy, applied to every batch appended (or found by a rebuild)
 * at pos, in order: updates the running max timestamp; when at least
 * interval bytes were appended since the last offset index entry, adds
 * baseOffset -> pos to the offset index and (max timestamp -> its batch) to
 * the time index; then counts the batch's bytes. A full index skips entries
 * (the log rolls before that happens). Sets next_offset. */
void st_segment_index_batch(st_segment_t *seg, const st_batch_hdr_t *h, uint64_t pos,
                            int32_t interval);

/* ---- scans ---- */

void st_reader_init(st_reader_t *r, int fd, uint64_t end, uint8_t *buf, size_t cap);

/*
 * Reads and decodes the batch header at pos, checking framing only: a whole
 * header before end, batchLength >= the header size, the batch within end,
 * magic 2, lastOffsetDelta >= 0. Returns 0, 1 when pos == end (no more
 * batches), SC_ERR_CORRUPT_MESSAGE (*why says what), -errno.
 */
int st_reader_header(st_reader_t *r, uint64_t pos, st_batch_hdr_t *h, const char **why);

/*
 * Walks batches from pos, whose first batch must have baseOffset == expected
 * (>= expected, and fewer records than the offset span allowed, when
 * seg->allow_gaps),
 * to the end of the file: each batch is framed (st_reader_header), validated
 * (st_batch_validate: length, magic, CRC-32C, counts), must start at the next
 * expected offset, keep its offsets within 2^31 of the segment base and be
 * accepted by cb (when given). When index is set each good batch goes through
 * st_segment_index_batch (the indexes must be active). Stops at the first
 * bad batch; out says where and why. buf (cap bytes, >= 64 KiB recommended)
 * is scratch; bigger batches are checked in pieces. Returns 0 (see out->err) or -errno (a read failed).
 */
int st_segment_scan(st_segment_t *seg, uint64_t pos, int64_t expected, int index, int32_t interval,
                    uint8_t *buf, size_t cap, st_segment_batch_cb cb, void *arg, st_scan_t *out);

/*
 * Finds the first batch whose last offset is >= offset, starting from the
 * offset index: *pos and *h. Only bytes below end are looked at. Returns 0,
 * SC_ERR_NOT_FOUND (no such batch below end), SC_ERR_CORRUPT_MESSAGE, -errno.
 */
int st_segment_find(st_segment_t *seg, st_reader_t *r, int64_t offset, uint64_t *pos,
                    st_batch_hdr_t *h);

/* Recomputes max_ts, max_ts_offset and bytes_since_index from the indexes and
 * the batches after the last time index entry (after a truncation).
 * 0 or an error as st_segment_find. */
int st_segment_refresh_tail(st_segment_t *seg, uint8_t *buf, size_t cap);

/* Formats <dir>/<base><suffix> into out (PATH_MAX). 0 or -ENAMETOOLONG. */
int st_segment_file_name(char *out, const char *dir, int64_t base, const char *suffix);

/* Parses "<20 digits><suffix>" -> base. 0 or -1 when name is not one. */
int st_segment_parse_name(const char *name, const char *suffix, int64_t *base);

#endif
