/*
 * st_index.c -- offset index and time index files.
 *
 * FILE FORMAT (both big-endian, no header, entries back to back)
 *
 *   <base>.index       entry i at byte 8*i:
 *      0  uint32  relative offset   offset - base (a batch's baseOffset)
 *      4  uint32  position          byte position of that batch in <base>.log
 *
 *   <base>.timeindex   entry i at byte 12*i:
 *      0  int64   timestamp         the segment's running max timestamp
 *      8  uint32  relative offset   baseOffset of the batch that reached it, - base
 *
 * This is Kafka's layout, so its DumpLogSegments reads our files.
 *
 * INVARIANTS
 *   - Offset index: relative offsets and positions strictly increase.
 *   - Time index: timestamps strictly increase; offsets never decrease.
 *   - Every entry names a batch boundary below the log's size.
 *   - Entries [0, count) are valid; in an active (preallocated) file the bytes
 *     from count on are zero: truncation zeroes what it drops, so that after a
 *     crash the zero run at the end marks where the entries stop.
 *   - An inactive file is exactly count entries long.
 * The index is a cache of the .log: anything wrong is fixed by a rebuild
 * (st_segment.c), never trusted past st_index_check.
 *
 * LOOKUP: binary search for the largest entry <= key.
 */
#include "st_index.h"

#include "sc_endian.h"
#include "sc_err.h"
#include "sc_mem.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

struct st_index {
    st_index_kind_t kind;
    int fd;
    char *path;
    int64_t base;
    size_t esize;     /* entry size */
    uint8_t *map;     /* NULL when unmapped */
    size_t map_len;   /* bytes mapped */
    int writable;     /* mapped read-write (active) */
    uint32_t count;   /* valid entries */
    uint32_t cap;     /* entries the active mapping holds; 0 when inactive */
    uint64_t file_size;
    int misaligned;   /* file size not a multiple of esize at open */
    int dirty;        /* changed since the last sync */
};

static size_t entry_size(st_index_kind_t kind)
{
    return kind == ST_INDEX_OFFSET ? ST_OFFSET_INDEX_ENTRY : ST_TIME_INDEX_ENTRY;
}

static const uint8_t *entry(const st_index_t *idx, uint32_t i)
{
    return idx->map + (size_t)i * idx->esize;
}

/* Entry i's offset (absolute) for either kind. */
static int64_t entry_offset(const st_index_t *idx, uint32_t i)
{
    const uint8_t *e = entry(idx, i);
    uint32_t rel = idx->kind == ST_INDEX_OFFSET ? sc_load_be32(e) : sc_load_be32(e + 8);
    return idx->base + (int64_t)rel;
}

static uint32_t entry_pos(const st_index_t *idx, uint32_t i)
{
    return sc_load_be32(entry(idx, i) + 4);
}

static int64_t entry_ts(const st_index_t *idx, uint32_t i)
{
    return (int64_t)sc_load_be64(entry(idx, i));
}

static void unmap(st_index_t *idx)
{
    if (idx->map)
        munmap(idx->map, idx->map_len);
    idx->map = NULL;
    idx->map_len = 0;
    idx->writable = 0;
}

static int map(st_index_t *idx, size_t len, int writable)
{
    void *p;

    unmap(idx);
    if (len == 0)
        return 0;
    p = mmap(NULL, len, writable ? PROT_READ | PROT_WRITE : PROT_READ, MAP_SHARED, idx->fd, 0);
    if (p == MAP_FAILED)
        return -errno;
    /* Lookups are binary searches and appends touch one page at a time: no
     * readahead. Without this a fault in the sparse tail reads ahead (and
     * zero-fills) a large folio of hole pages per appended entry. */
    (void)madvise(p, len, MADV_RANDOM);
    idx->map = p;
    idx->map_len = len;
    idx->writable = writable;
    return 0;
}

/* Maps the valid entries for reading if nothing is mapped yet. */
static int ensure_mapped(st_index_t *idx)
{
    if (idx->map || idx->count == 0)
        return 0;
    return map(idx, (size_t)idx->count * idx->esize, 0);
}

/* End of the last data extent (holes skipped with SEEK_DATA/SEEK_HOLE), so a
 * crashed, preallocated index is not read through its sparse zero tail.
 * Falls back to size where the filesystem cannot tell. */
static uint64_t data_end(int fd, uint64_t size)
{
    off_t pos = 0, end = 0;

    while ((uint64_t)pos < size) {
        off_t d = lseek(fd, pos, SEEK_DATA);
        if (d < 0)
            return errno == ENXIO ? (uint64_t)end : size;
        off_t h = lseek(fd, d, SEEK_HOLE);
        if (h < 0)
            return size;
        end = h;
        pos = h;
    }
    return (uint64_t)end < size ? (uint64_t)end : size;
}

static int entry_is_zero(const st_index_t *idx, uint32_t i)
{
    static const uint8_t zero[ST_TIME_INDEX_ENTRY];
    return memcmp(entry(idx, i), zero, idx->esize) == 0;
}

static int resize(st_index_t *idx, uint64_t size)
{
    if (ftruncate(idx->fd, (off_t)size))
        return -errno;
    idx->file_size = size;
    idx->dirty = 1;
    return 0;
}

int st_index_open(const char *path, st_index_kind_t kind, int64_t base_offset, int create,
                  st_index_t **out)
{
    st_index_t *idx;
    struct stat st;
    int rc = 0, flags = O_RDWR | O_CLOEXEC;

    if (create)
        flags |= O_CREAT;
    if (create == 2)
        flags |= O_TRUNC;
    idx = sc_calloc(1, sizeof *idx);
    if (!idx)
        return SC_ERR_NO_MEMORY;
    idx->kind = kind;
    idx->base = base_offset;
    idx->esize = entry_size(kind);
    idx->fd = -1;
    if (!(idx->path = sc_strdup(path))) {
        rc = SC_ERR_NO_MEMORY;
        goto out;
    }
    idx->fd = open(path, flags, 0644);
    if (idx->fd < 0) {
        rc = -errno;
        goto out;
    }
    if (fstat(idx->fd, &st)) {
        rc = -errno;
        goto out;
    }
    idx->file_size = (uint64_t)st.st_size;
    idx->misaligned = idx->file_size % idx->esize != 0;
    uint64_t n = idx->file_size / idx->esize;
    if (n > UINT32_MAX) {
        idx->misaligned = 1; /* absurd size: report it, count nothing */
        n = 0;
    }
    if (n > 0) {
        /* leave out the zero tail of a preallocated file; entries past the
         * last data extent are zero without reading them */
        uint64_t de = data_end(idx->fd, n * idx->esize);
        n = (de + idx->esize - 1) / idx->esize;
    }
    if (n > 0) {
        if ((rc = map(idx, (size_t)n * idx->esize, 0)))
            goto out;
        while (n > 0 && entry_is_zero(idx, (uint32_t)(n - 1)))
            n--;
        unmap(idx);
    }
    idx->count = (uint32_t)n;
out:
    if (rc) {
        st_index_close(idx);
        return rc;
    }
    *out = idx;
    return 0;
}

void st_index_close(st_index_t *idx)
{
    if (!idx)
        return;
    unmap(idx);
    if (idx->fd >= 0)
        close(idx->fd);
    sc_free(idx->path);
    sc_free(idx);
}

int st_index_delete(st_index_t *idx)
{
    int rc = 0;
    if (!idx)
        return 0;
    if (unlink(idx->path) && errno != ENOENT)
        rc = -errno;
    st_index_close(idx);
    return rc;
}

int st_index_activate(st_index_t *idx, int64_t max_bytes)
{
    uint64_t cap = max_bytes > 0 ? (uint64_t)max_bytes / idx->esize : 0;
    int rc;

    if (cap > UINT32_MAX)
        cap = UINT32_MAX;
    if (cap < idx->count)
        cap = idx->count;
    if (cap == 0) {
        unmap(idx);
        idx->cap = 0;
        return resize(idx, 0);
    }
    /* The tail past count must read as zeros (see the invariants). Cutting
     * the file to the valid entries and growing it again makes the tail a
     * sparse zero run without touching a page; scanning or memset would fault
     * in (and dirty) segment.index.bytes on every open. */
    uint64_t used = (uint64_t)idx->count * idx->esize, want = cap * idx->esize;
    if (idx->file_size > used && (rc = resize(idx, used)))
        return rc;
    if (idx->file_size != want && (rc = resize(idx, want)))
        return rc;
    idx->misaligned = 0;
    if ((rc = map(idx, (size_t)want, 1)))
        return rc;
    idx->cap = (uint32_t)cap;
    return 0;
}

int st_index_trim(st_index_t *idx)
{
    int rc = 0;
    uint64_t size = (uint64_t)idx->count * idx->esize;

    if (idx->map && idx->writable && idx->dirty && msync(idx->map, idx->map_len, MS_ASYNC))
        rc = -errno;
    unmap(idx);
    idx->cap = 0;
    if (idx->file_size != size) {
        int r = resize(idx, size);
        if (!rc)
            rc = r;
    }
    idx->misaligned = 0;
    return rc;
}

int st_index_sync(st_index_t *idx)
{
    if (!idx->dirty)
        return 0;
    if (idx->map && idx->writable && msync(idx->map, idx->map_len, MS_SYNC))
        return -errno;
    if (fsync(idx->fd))
        return -errno;
    idx->dirty = 0;
    return 0;
}

int st_index_reset(st_index_t *idx)
{
    int rc;

    if (idx->cap) {
        /* Zero by cutting the file to 0 and back: the kernel drops the pages
         * and the file is sparse again. A memset would dirty (and later write
         * back) segment.index.bytes of page cache on every rebuild. The shared
         * mapping stays valid because the size is restored before any access. */
        if (ftruncate(idx->fd, 0) || ftruncate(idx->fd, (off_t)idx->map_len))
            memset(idx->map, 0, idx->map_len);
        idx->count = 0;
        idx->dirty = 1;
        return 0;
    }
    unmap(idx);
    idx->count = 0;
    idx->misaligned = 0;
    rc = resize(idx, 0);
    return rc;
}

int st_index_check(st_index_t *idx, uint64_t log_size, int64_t next_offset, const char **why)
{
    int rc;

    if (idx->misaligned) {
        *why = "size is not a whole number of entries";
        return SC_ERR_BAD_FORMAT;
    }
    if ((rc = ensure_mapped(idx)))
        return rc;
    for (uint32_t i = 0; i < idx->count; i++) {
        int64_t off = entry_offset(idx, i);
        if (next_offset >= 0 && off >= next_offset) {
            *why = "entry offset past the segment's end";
            return SC_ERR_BAD_FORMAT;
        }
        if (idx->kind == ST_INDEX_OFFSET) {
            if (entry_pos(idx, i) >= log_size) {
                *why = "entry position past the log's size";
                return SC_ERR_BAD_FORMAT;
            }
            if (i > 0 && (off <= entry_offset(idx, i - 1) || entry_pos(idx, i) <= entry_pos(idx, i - 1))) {
                *why = "entries not increasing";
                return SC_ERR_BAD_FORMAT;
            }
        } else if (i > 0 && (entry_ts(idx, i) <= entry_ts(idx, i - 1) ||
                             off < entry_offset(idx, i - 1))) {
            *why = "entries not increasing";
            return SC_ERR_BAD_FORMAT;
        }
    }
    return 0;
}

/* First entry index whose offset is >= offset (count if none). Mapped. */
static uint32_t first_at_or_after(const st_index_t *idx, int64_t offset)
{
    uint32_t lo = 0, hi = idx->count;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (entry_offset(idx, mid) < offset)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

int st_index_truncate(st_index_t *idx, int64_t offset)
{
    int rc;
    uint32_t n;

    if (idx->count == 0)
        return 0;
    if ((rc = ensure_mapped(idx)))
        return rc;
    n = first_at_or_after(idx, offset);
    if (n == idx->count)
        return 0;
    if (idx->cap) {
        memset(idx->map + (size_t)n * idx->esize, 0, (size_t)(idx->count - n) * idx->esize);
        idx->count = n;
        idx->dirty = 1;
        return 0;
    }
    unmap(idx);
    idx->count = n;
    return resize(idx, (uint64_t)n * idx->esize);
}

static int check_room(st_index_t *idx)
{
    if (!idx->cap)
        return SC_ERR_FULL;
    return idx->count < idx->cap ? 0 : SC_ERR_FULL;
}

int st_offset_index_append(st_index_t *idx, int64_t offset, uint32_t pos)
{
    int rc;
    int64_t rel = offset - idx->base;

    if ((rc = check_room(idx)))
        return rc;
    if (rel < 0 || rel > UINT32_MAX)
        return SC_ERR_BAD_FORMAT;
    if (idx->count > 0 &&
        (offset <= entry_offset(idx, idx->count - 1) || pos <= entry_pos(idx, idx->count - 1)))
        return SC_ERR_BAD_FORMAT;
    uint8_t *e = idx->map + (size_t)idx->count * idx->esize;
    sc_store_be32(e, (uint32_t)rel);
    sc_store_be32(e + 4, pos);
    idx->count++;
    idx->dirty = 1;
    return 0;
}

int st_offset_index_lookup(st_index_t *idx, int64_t target, int64_t *found_offset, uint32_t *pos)
{
    int rc;
    uint32_t n;

    if ((rc = ensure_mapped(idx)))
        return rc;
    /* entries <= target are [0, n) */
    n = target == INT64_MAX ? idx->count : first_at_or_after(idx, target + 1);
    if (n == 0) {
        *found_offset = idx->base;
        *pos = 0;
        return 0;
    }
    *found_offset = entry_offset(idx, n - 1);
    *pos = entry_pos(idx, n - 1);
    return 0;
}

int st_time_index_append(st_index_t *idx, int64_t ts, int64_t offset)
{
    int rc;
    int64_t rel = offset - idx->base;

    if ((rc = check_room(idx)))
        return rc;
    if (rel < 0 || rel > UINT32_MAX)
        return SC_ERR_BAD_FORMAT;
    if (idx->count > 0) {
        if (ts <= entry_ts(idx, idx->count - 1))
            return 0;
        if (offset < entry_offset(idx, idx->count - 1))
            return SC_ERR_BAD_FORMAT;
    }
    uint8_t *e = idx->map + (size_t)idx->count * idx->esize;
    sc_store_be64(e, (uint64_t)ts);
    sc_store_be32(e + 8, (uint32_t)rel);
    idx->count++;
    idx->dirty = 1;
    return 0;
}

int st_time_index_lookup(st_index_t *idx, int64_t ts, int64_t *found_ts, int64_t *offset)
{
    int rc;
    uint32_t lo = 0, hi;

    if ((rc = ensure_mapped(idx)))
        return rc;
    hi = idx->count;
    while (lo < hi) { /* first entry with timestamp > ts */
        uint32_t mid = lo + (hi - lo) / 2;
        if (entry_ts(idx, mid) <= ts)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0) {
        *found_ts = -1;
        *offset = idx->base;
        return 0;
    }
    *found_ts = entry_ts(idx, lo - 1);
    *offset = entry_offset(idx, lo - 1);
    return 0;
}

uint32_t st_index_count(const st_index_t *idx) { return idx->count; }

uint32_t st_index_room(const st_index_t *idx)
{
    return idx->cap > idx->count ? idx->cap - idx->count : 0;
}

int st_index_active(const st_index_t *idx) { return idx->cap > 0; }

const char *st_index_path(const st_index_t *idx) { return idx->path; }

int st_offset_index_last(st_index_t *idx, int64_t *offset, uint32_t *pos)
{
    int rc;
    if (idx->count == 0)
        return SC_ERR_NOT_FOUND;
    if ((rc = ensure_mapped(idx)))
        return rc;
    *offset = entry_offset(idx, idx->count - 1);
    *pos = entry_pos(idx, idx->count - 1);
    return 0;
}

int st_time_index_last(st_index_t *idx, int64_t *ts, int64_t *offset)
{
    int rc;
    if (idx->count == 0)
        return SC_ERR_NOT_FOUND;
    if ((rc = ensure_mapped(idx)))
        return rc;
    *ts = entry_ts(idx, idx->count - 1);
    *offset = entry_offset(idx, idx->count - 1);
    return 0;
}
