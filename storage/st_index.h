/*
 * st_index -- a segment's sparse offset index (.index) and time index
 * (.timeindex): fixed-size big-endian entries in a file, mmap'd.
 *
 *   .index      8-byte entries: uint32 relative offset (offset - segment base),
 *               uint32 file position of the batch whose baseOffset it is.
 *   .timeindex 12-byte entries: int64 timestamp, uint32 relative offset of the
 *               batch at which the segment's running max timestamp reached it.
 *
 * In both, keys strictly increase (offset index: offsets and positions; time
 * index: timestamps, with offsets not decreasing). The format and the policy
 * that decides when an entry is added are described in st_index.c and
 * st_segment.c.
 *
 * While the segment is active the file is preallocated (st_index_activate) to
 * segment.index.bytes and mapped read-write; when it rolls or the log closes it
 * is trimmed to the exact entry count (st_index_trim) and unmapped. An
 * inactive index is mapped read-only on first lookup. Trailing all-zero
 * entries (the unused preallocated tail left by a crash) are not counted when
 * a file is opened.
 *
 * Threading: an index belongs to its log's thread.
 */
#ifndef ST_INDEX_H
#define ST_INDEX_H

#include <stddef.h>
#include <stdint.h>

typedef struct st_index st_index_t;

typedef enum {
    ST_INDEX_OFFSET = 0, /* .index */
    ST_INDEX_TIME = 1,   /* .timeindex */
} st_index_kind_t;

#define ST_OFFSET_INDEX_ENTRY 8
#define ST_TIME_INDEX_ENTRY 12

/* ---- lifecycle ---- */

/*
 * Opens the index file at path for a segment starting at base_offset,
 * creating it empty when absent (create = 1) or truncating it to zero
 * (create = 2, for a new segment or a rebuild). Counts the entries present,
 * leaving out a trailing run of all-zero entries. A file whose size is not a
 * multiple of the entry size is opened but st_index_check reports it.
 * Returns 0 and *out, -ENOENT (absent and create = 0), -errno, SC_ERR_NO_MEMORY.
 */
int st_index_open(const char *path, st_index_kind_t kind, int64_t base_offset, int create,
                  st_index_t **out);

/* Unmaps and closes. NULL is a no-op. */
void st_index_close(st_index_t *idx);

/* Closes and unlinks the file. Returns 0 or -errno (the index is freed). */
int st_index_delete(st_index_t *idx);

/* ---- active / inactive ---- */

/* Grows the file to max_bytes (rounded down to whole entries, never below the
 * current entries) and maps it read-write for appends. 0 or -errno. */
int st_index_activate(st_index_t *idx, int64_t max_bytes);

/* Shrinks the file to exactly the entries held and unmaps it. 0 or -errno. */
int st_index_trim(st_index_t *idx);

/* msync + fsync when modified since the last sync. 0 or -errno. */
int st_index_sync(st_index_t *idx);

/* Drops every entry (file truncated to zero, still active if it was). 0 or -errno. */
int st_index_reset(st_index_t *idx);

/*
 * Sanity check: the size is a whole number of entries; keys strictly increase;
 * every position is < log_size; every offset is >= the base and < next_offset
 * (next_offset < 0: not checked). Returns 0, SC_ERR_BAD_FORMAT (reason written
 * to why, a static string), or -errno (mapping failed).
 */
int st_index_check(st_index_t *idx, uint64_t log_size, int64_t next_offset, const char **why);

/* Drops entries whose offset is >= offset (the log was truncated there).
 * 0 or -errno. */
int st_index_truncate(st_index_t *idx, int64_t offset);

/* ---- operations ---- */

/* Appends offset -> pos. Needs an active index. Returns 0, SC_ERR_FULL, or
 * SC_ERR_BAD_FORMAT when the entry would not keep keys increasing (not added). */
int st_offset_index_append(st_index_t *idx, int64_t offset, uint32_t pos);

/* Largest entry with offset <= target: *found_offset and *pos; the segment base
 * and position 0 when there is none. Returns 0 or -errno (mapping failed). */
int st_offset_index_lookup(st_index_t *idx, int64_t target, int64_t *found_offset, uint32_t *pos);

/* Appends ts -> offset if ts is larger than the last entry's timestamp
 * (else a no-op returning 0). Returns 0, SC_ERR_FULL, SC_ERR_BAD_FORMAT (offset
 * below the last entry's). */
int st_time_index_append(st_index_t *idx, int64_t ts, int64_t offset);

/* Largest entry with timestamp <= ts: *found_ts and *offset; (-1, base) when
 * there is none. Returns 0 or -errno. */
int st_time_index_lookup(st_index_t *idx, int64_t ts, int64_t *found_ts, int64_t *offset);

/* ---- accessors ---- */

uint32_t st_index_count(const st_index_t *idx);
/* Entries that still fit (0 when inactive). */
uint32_t st_index_room(const st_index_t *idx);
int st_index_active(const st_index_t *idx);
const char *st_index_path(const st_index_t *idx);
/* Last entry; 0, or SC_ERR_NOT_FOUND when empty. -errno if mapping failed. */
int st_offset_index_last(st_index_t *idx, int64_t *offset, uint32_t *pos);
int st_time_index_last(st_index_t *idx, int64_t *ts, int64_t *offset);

#endif
