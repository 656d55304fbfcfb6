/*
 * st_log.c -- a partition log: open and recovery, close, checkpoints,
 * retention, truncation, configuration. (Appends: st_log_append.c; reads:
 * st_log_read.c; leader epochs: st_epoch.c; segment files: st_segment.c.)
 *
 * DIRECTORY <log.dir>/<topic>-<partition>/
 *   <base>.log / .index / .timeindex   segments (st_segment.c, st_index.c)
 *   partition.checkpoint               below
 *   leader-epoch-checkpoint            Kafka's text format (st_epoch.c)
 *   *.tmp                              leftovers of an interrupted atomic
 *                                      write; deleted at open
 *
 * CHECKPOINT FILE partition.checkpoint, 36 bytes, big-endian, replaced
 * atomically (st_file_write_atomic):
 *    0  uint32  magic 0x5354434B ("STCK")
 *    4  uint16  version, 1
 *    6  uint16  flags: bit 0 = CLEAN (written by st_log_close after every byte
 *               was fdatasync'ed and the indexes trimmed and synced); other
 *               bits 0
 *    8  int64   recovery point: every byte below this offset was durable when
 *               the file was written
 *   16  int64   log start offset
 *   24  int64   high watermark
 *   32  uint32  CRC-32C of bytes 0..31
 * A reader accepts only that exact magic, version 1, and a matching CRC;
 * anything else is treated as absent (full recovery). Later versions may
 * append fields before the CRC and bump the version.
 *
 * CLEAN SHUTDOWN MARKER: the CLEAN flag. st_log_open rewrites the checkpoint
 * with CLEAN cleared before it returns, so a crash at any later point leaves
 * CLEAN unset; only a successful st_log_close sets it again.
 *
 * RECOVERY (st_log_open)
 *   0. An interrupted log-cleaner swap is completed or rolled back
 *      (st__cleaner_recover, st_cleaner.h), and the cleaner checkpoint is
 *      read: segments below it were compacted, so their scans accept offset
 *      gaps (inside and between batches, and between segments).
 *   1. List the directory: *.log files with 20-digit names are segments; an
 *      .index/.timeindex without its .log is deleted (orphan); *.tmp deleted.
 *      No segment: a new empty one at the checkpoint's log start offset (0).
 *   2. Segments wholly below the recovery point's segment are trusted: their
 *      indexes get the sanity check (st_index_check); a missing or bad index
 *      is rebuilt by a validating scan of that segment.
 *   3. Without CLEAN (or without a checkpoint: recovery point 0), every
 *      segment from the one holding the recovery point is scanned batch by
 *      batch (st_segment_scan: framing, magic, CRC-32C, counts, and
 *      baseOffset == the next expected offset, starting at the segment's base
 *      and continuing from the previous segment's end) with its indexes
 *      rebuilt. The first bad batch ends the log: the file is truncated there,
 *      every later segment is deleted, and "recovery truncated <path> at
 *      position P (offset O): <reason>" is logged. A segment whose base does
 *      not continue the previous one ends the log the same way. Because
 *      partitionLeaderEpoch is outside the CRC, a batch whose epoch is below
 *      the previous batch's, or above the latest epoch of
 *      leader-epoch-checkpoint (appends write a new epoch there before any
 *      data carrying it), is treated as corrupt too. The scanned
 *      files are fdatasync'ed, so everything kept is durable.
 *      With CLEAN, only the active segment's tail after its last offset index
 *      entry is scanned (the same validating scan), which also finds its end.
 *   4. Log start offset = max(checkpoint's, first segment's base); segments
 *      wholly below it are deleted (a crash after delete_records wrote the
 *      checkpoint). If it is above the recovered end, the tail it needed is
 *      gone: the log restarts empty at it. High watermark is clamped to
 *      [log start, leo]. Leader epochs starting after leo are dropped.
 *   5. The checkpoint is rewritten (CLEAN cleared, recovery point = leo).
 * Recovery does no I/O through the io backend, so a log can be opened on any
 * thread and then handed to the io's owner.
 *
 * INVARIANTS (between calls)
 *   - nsegs >= 1 unless the log is failed; segments sorted by base; each
 *     inactive segment's next_offset == the next segment's base; the last is
 *     active (indexes preallocated and mapped).
 *   - lso <= hw <= leo; durable <= written <= leo (durable may briefly run
 *     ahead of written inside one poll; the accessor reports the min).
 *   - The checkpoint's recovery point never exceeds the real durable prefix:
 *     truncation lowers it (and rewrites the file) before anything is
 *     appended again.
 */
#include "st_cleaner.h"
#include "st_file.h"
#include "st_log_int.h"

#include "sc_crc32c.h"
#include "sc_endian.h"
#include "sc_err.h"
#include "sc_log.h"
#include "sc_mem.h"
#include "sc_time.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CKPT_MAGIC 0x5354434Bu
#define CKPT_VERSION 1
#define CKPT_SIZE 36
#define CKPT_CLEAN 0x1

/* ---- configuration ---- */

void st_log_config_default(st_log_config_t *cfg)
{
    cfg->segment_bytes = 1LL << 30;
    cfg->segment_ms = 7LL * 24 * 3600 * 1000;
    cfg->index_interval_bytes = 4096;
    cfg->segment_index_bytes = 10 << 20;
    cfg->retention_ms = 7LL * 24 * 3600 * 1000;
    cfg->retention_bytes = -1;
    cfg->flush_messages = 1;
    cfg->flush_ms = INT64_MAX;
    cfg->compact = 0;
    cfg->delete_retention_ms = 24LL * 3600 * 1000;
    cfg->min_compaction_lag_ms = 0;
    cfg->min_cleanable_dirty_ratio = 0.5;
}

/* Bounds per key; segment.index.bytes must hold one offset entry and two time
 * entries (a regular one and the final one). */
static const struct {
    const char *key;
    size_t off;
    int is32;
    int64_t min, max;
} config_keys[] = {
    {"segment.bytes", offsetof(st_log_config_t, segment_bytes), 0, ST_BATCH_HEADER_SIZE,
     INT32_MAX},
    {"segment.ms", offsetof(st_log_config_t, segment_ms), 0, 1, INT64_MAX},
    {"index.interval.bytes", offsetof(st_log_config_t, index_interval_bytes), 1, 0, INT32_MAX},
    {"segment.index.bytes", offsetof(st_log_config_t, segment_index_bytes), 1,
     2 * ST_TIME_INDEX_ENTRY, INT32_MAX},
    {"retention.ms", offsetof(st_log_config_t, retention_ms), 0, -1, INT64_MAX},
    {"retention.bytes", offsetof(st_log_config_t, retention_bytes), 0, -1, INT64_MAX},
    {"flush.messages", offsetof(st_log_config_t, flush_messages), 0, 1, INT64_MAX},
    {"flush.ms", offsetof(st_log_config_t, flush_ms), 0, 0, INT64_MAX},
    {"delete.retention.ms", offsetof(st_log_config_t, delete_retention_ms), 0, 0, INT64_MAX},
    {"min.compaction.lag.ms", offsetof(st_log_config_t, min_compaction_lag_ms), 0, 0, INT64_MAX},
};

#define NKEYS (sizeof config_keys / sizeof config_keys[0])

static int64_t config_get(const st_log_config_t *cfg, size_t i)
{
    const char *p = (const char *)cfg + config_keys[i].off;
    if (config_keys[i].is32) {
        int32_t v;
        memcpy(&v, p, sizeof v);
        return v;
    }
    int64_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static int config_check(const st_log_config_t *cfg)
{
    for (size_t i = 0; i < NKEYS; i++) {
        int64_t v = config_get(cfg, i);
        if (v < config_keys[i].min || v > config_keys[i].max) {
            SC_ERROR("storage", "invalid %s: %" PRId64, config_keys[i].key, v);
            return SC_ERR_INVALID_CONFIG;
        }
    }
    if (!(cfg->min_cleanable_dirty_ratio >= 0 && cfg->min_cleanable_dirty_ratio <= 1)) {
        SC_ERROR("storage", "invalid min.cleanable.dirty.ratio: %g", cfg->min_cleanable_dirty_ratio);
        return SC_ERR_INVALID_CONFIG;
    }
    return 0;
}

int st_log_config_set(st_log_config_t *cfg, const char *key, const char *value)
{
    if (strcmp(key, "min.cleanable.dirty.ratio") == 0) {
        char *end;
        errno = 0;
        double d = strtod(value, &end);
        if (errno || end == value || *end != '\0' || !(d >= 0 && d <= 1))
            return SC_ERR_INVALID_CONFIG;
        cfg->min_cleanable_dirty_ratio = d;
        return 0;
    }
    if (strcmp(key, "cleanup.policy") == 0) {
        cfg->compact = strstr(value, "compact") != NULL;
        return 0;
    }
    for (size_t i = 0; i < NKEYS; i++) {
        if (strcmp(key, config_keys[i].key) != 0)
            continue;
        char *end;
        errno = 0;
        long long v = strtoll(value, &end, 10);
        if (errno || end == value || *end != '\0' || v < config_keys[i].min ||
            v > config_keys[i].max)
            return SC_ERR_INVALID_CONFIG;
        char *p = (char *)cfg + config_keys[i].off;
        if (config_keys[i].is32) {
            int32_t v32 = (int32_t)v;
            memcpy(p, &v32, sizeof v32);
        } else {
            int64_t v64 = v;
            memcpy(p, &v64, sizeof v64);
        }
        return 0;
    }
    return SC_ERR_NOT_FOUND;
}

void st_log_set_config(st_log_t *log, const st_log_config_t *cfg)
{
    if (config_check(cfg) == 0)
        log->cfg = *cfg;
}

/* ---- checkpoint ---- */

typedef struct {
    int found;
    int clean;
    int64_t rp, lso, hw;
} ckpt_t;

int st__log_write_checkpoint(st_log_t *log, int clean)
{
    uint8_t b[CKPT_SIZE];
    int64_t rp = log->durable < log->written ? log->durable : log->written;

    sc_store_be32(b, CKPT_MAGIC);
    sc_store_be16(b + 4, CKPT_VERSION);
    sc_store_be16(b + 6, clean ? CKPT_CLEAN : 0);
    sc_store_be64(b + 8, (uint64_t)rp);
    sc_store_be64(b + 16, (uint64_t)log->lso);
    sc_store_be64(b + 24, (uint64_t)log->hw);
    sc_store_be32(b + 32, sc_crc32c(0, b, 32));
    int rc = st_file_write_atomic(log->dir, log->dir_fd, ST_CHECKPOINT_FILE, b, sizeof b);
    if (rc)
        SC_ERROR("storage", "%s: writing %s: %s", log->dir, ST_CHECKPOINT_FILE, sc_err_str(rc));
    return rc;
}

static int read_checkpoint(const st_log_t *log, ckpt_t *ck)
{
    char path[PATH_MAX];
    char *buf = NULL;
    size_t len = 0;
    const uint8_t *b;
    int rc;

    memset(ck, 0, sizeof *ck);
    if (snprintf(path, sizeof path, "%s/%s", log->dir, ST_CHECKPOINT_FILE) >= (int)sizeof path)
        return -ENAMETOOLONG;
    rc = st_file_read_small(path, 4096, &buf, &len);
    if (rc == -ENOENT)
        return 0;
    if (rc && rc != -EFBIG)
        return rc;
    b = (const uint8_t *)buf;
    if (rc || len != CKPT_SIZE || sc_load_be32(b) != CKPT_MAGIC ||
        sc_load_be16(b + 4) != CKPT_VERSION || sc_load_be32(b + 32) != sc_crc32c(0, b, 32) ||
        sc_load_be64(b + 8) > ST_OFFSET_MAX || sc_load_be64(b + 16) > ST_OFFSET_MAX ||
        sc_load_be64(b + 24) > ST_OFFSET_MAX) {
        SC_WARN("storage", "%s: ignoring a bad %s (full recovery)", log->dir, ST_CHECKPOINT_FILE);
        rc = 0;
        goto out;
    }
    ck->found = 1;
    ck->clean = (sc_load_be16(b + 6) & CKPT_CLEAN) != 0;
    ck->rp = (int64_t)sc_load_be64(b + 8);
    ck->lso = (int64_t)sc_load_be64(b + 16);
    ck->hw = (int64_t)sc_load_be64(b + 24);
out:
    sc_free(buf);
    return rc;
}

/* ---- segments array ---- */

unsigned st__log_seg_index(const st_log_t *log, int64_t offset)
{
    unsigned lo = 0, hi = log->nsegs; /* first segment with base > offset */
    while (lo < hi) {
        unsigned mid = lo + (hi - lo) / 2;
        if (log->segs[mid]->base <= offset)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo ? lo - 1 : 0;
}

/* Deletes segment i's files and removes it from the array. */
static int drop_segment(st_log_t *log, unsigned i)
{
    st_segment_t *seg = log->segs[i];
    char path[PATH_MAX];
    int rc;

    snprintf(path, sizeof path, "%s", seg->path);
    log->size_bytes -= seg->size;
    memmove(log->segs + i, log->segs + i + 1, (log->nsegs - i - 1) * sizeof *log->segs);
    log->nsegs--;
    log->gen++; /* a clean prepared before this is void */
    rc = st_segment_delete(seg);
    if (rc)
        SC_ERROR("storage", "%s: deleting segment: %s", path, sc_err_str(rc));
    return rc;
}

static int64_t segment_max_ts(const st_segment_t *seg)
{
    struct stat st;
    if (seg->max_ts >= 0)
        return seg->max_ts;
    /* no timestamps (Kafka falls back to the file's mtime) */
    if (fstat(seg->fd, &st))
        return INT64_MAX;
    return (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
}

/* ---- open and recovery ---- */

static int ensure_dir(const char *dir)
{
    char parent[PATH_MAX];
    char *slash;

    if (mkdir(dir, 0755) == 0) {
        snprintf(parent, sizeof parent, "%s", dir);
        slash = strrchr(parent, '/');
        if (slash == parent)
            slash[1] = '\0';
        else if (slash)
            *slash = '\0';
        else
            snprintf(parent, sizeof parent, ".");
        return st_file_sync_dir(parent, -1);
    }
    return errno == EEXIST ? 0 : -errno;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

typedef struct {
    int64_t *v;
    size_t n, cap;
} i64vec_t;

static int vec_push(i64vec_t *v, int64_t x)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 16;
        int64_t *p = sc_realloc(v->v, cap * sizeof *p);
        if (!p)
            return SC_ERR_NO_MEMORY;
        v->v = p;
        v->cap = cap;
    }
    v->v[v->n++] = x;
    return 0;
}

static int vec_has(const i64vec_t *v, int64_t x)
{
    return v->n > 0 && bsearch(&x, v->v, v->n, sizeof x, cmp_i64) != NULL;
}

/* Lists segment bases (sorted) and removes temp files and orphan indexes. */
static int list_segments(st_log_t *log, i64vec_t *bases)
{
    i64vec_t idx = {0};
    DIR *d;
    struct dirent *e;
    int rc = 0, fd;

    fd = dup(log->dir_fd);
    if (fd < 0)
        return -errno;
    if (!(d = fdopendir(fd))) {
        rc = -errno;
        close(fd);
        return rc;
    }
    rewinddir(d);
    while ((e = readdir(d))) {
        const char *n = e->d_name;
        size_t len = strlen(n), tl = strlen(ST_FILE_TMP_SUFFIX);
        int64_t base;
        if (len > tl && strcmp(n + len - tl, ST_FILE_TMP_SUFFIX) == 0) {
            if (unlinkat(log->dir_fd, n, 0) == 0)
                SC_INFO("storage", "%s: removed leftover temp file %s", log->dir, n);
        } else if (st_segment_parse_name(n, ST_SEGMENT_LOG_SUFFIX, &base) == 0) {
            if ((rc = vec_push(bases, base)))
                break;
        } else if (st_segment_parse_name(n, ST_SEGMENT_INDEX_SUFFIX, &base) == 0 ||
                   st_segment_parse_name(n, ST_SEGMENT_TIMEINDEX_SUFFIX, &base) == 0) {
            if ((rc = vec_push(&idx, base)))
                break;
        }
    }
    closedir(d);
    if (rc)
        goto out;
    if (bases->n > 1)
        qsort(bases->v, bases->n, sizeof *bases->v, cmp_i64);
    for (size_t i = 0; i < idx.n; i++) {
        char path[PATH_MAX];
        if (vec_has(bases, idx.v[i]))
            continue;
        static const char *const sfx[] = {ST_SEGMENT_INDEX_SUFFIX, ST_SEGMENT_TIMEINDEX_SUFFIX};
        for (int k = 0; k < 2; k++) {
            if (st_segment_file_name(path, log->dir, idx.v[i], sfx[k]) == 0 && unlink(path) == 0)
                SC_INFO("storage", "%s: removed orphan index (no .log)", path);
        }
    }
out:
    sc_free(idx.v);
    return rc;
}

typedef struct {
    st_log_t *log;
    int epochs_changed;
    int32_t max_epoch; /* latest epoch of the history file; -1 when it was empty */
    int32_t prev_epoch; /* the previous scanned batch's partitionLeaderEpoch */
} scan_ctx_t;

/* partitionLeaderEpoch is outside the CRC, so recovery checks what it can:
 * epochs never decrease along the log, and never exceed the history's latest
 * (an append writes a new epoch to leader-epoch-checkpoint before queueing
 * data that carries it). Accepted batches with a newer epoch than the
 * history's latest extend the history, as in Kafka. */
static int on_recovered_batch(void *arg, const st_batch_hdr_t *h, const char **why)
{
    scan_ctx_t *c = arg;
    st__epochs_t *e = &c->log->epochs;

    if (h->leader_epoch < c->prev_epoch || h->leader_epoch < -1 ||
        (c->max_epoch >= 0 && h->leader_epoch > c->max_epoch)) {
        *why = "partitionLeaderEpoch out of order";
        return SC_ERR_CORRUPT_MESSAGE;
    }
    c->prev_epoch = h->leader_epoch;
    if (h->leader_epoch >= 0 && h->leader_epoch > st__epochs_latest(e) &&
        st__epochs_assign(e, h->leader_epoch, h->base_offset) > 0)
        c->epochs_changed = 1;
    return 0;
}

/* Deletes segments [from, nsegs). */
static int drop_from(st_log_t *log, unsigned from, const char *why)
{
    int rc = 0;
    while (log->nsegs > from) {
        SC_WARN("storage", "recovery deleted %s: %s", log->segs[log->nsegs - 1]->path, why);
        int r = drop_segment(log, log->nsegs - 1);
        if (!rc)
            rc = r;
    }
    return rc;
}

/*
 * Scans segment i from pos (first batch expected at offset expected), with
 * indexes active; from scratch (indexes reset) when pos == 0. Truncates at the
 * first bad batch and deletes every later segment. Returns 0 (*truncated says
 * whether the log ended here) or -errno.
 */
static int recover_segment(st_log_t *log, unsigned i, uint64_t pos, int64_t expected, uint8_t *buf,
                           scan_ctx_t *ctx, int *truncated, int64_t *nbatches)
{
    st_segment_t *seg = log->segs[i];
    int32_t prev_epoch = ctx->prev_epoch;
    st_scan_t s;
    int rc;

    *truncated = 0;
    if ((rc = st_segment_activate(seg, log->cfg.segment_index_bytes)))
        return rc;
    if (pos == 0) {
        if ((rc = st_index_reset(seg->oidx)) || (rc = st_index_reset(seg->tidx)))
            return rc;
        seg->max_ts = -1;
        seg->max_ts_offset = seg->base;
        seg->bytes_since_index = 0;
        expected = seg->base;
    }
    rc = st_segment_scan(seg, pos, expected, 1, log->cfg.index_interval_bytes, buf, ST_SCAN_BUF,
                         on_recovered_batch, ctx, &s);
    if (rc) {
        SC_ERROR("storage", "%s: reading for recovery: %s", seg->path, sc_err_str(rc));
        return rc;
    }
    *nbatches += s.nbatches;
    if (s.err && pos != 0) {
        /* a tail check that starts from an index entry: the entry itself may be
         * what is wrong, so judge the data only from the segment's start */
        SC_WARN("storage", "%s: tail check from position %" PRIu64 " stopped (%s); "
                "rescanning the whole segment", seg->path, pos, s.why);
        ctx->prev_epoch = prev_epoch;
        return recover_segment(log, i, 0, seg->base, buf, ctx, truncated, nbatches);
    }
    seg->next_offset = s.next_offset;
    if (s.err) {
        SC_WARN("storage", "recovery truncated %s at position %" PRIu64 " (offset %" PRId64 "): %s",
                seg->path, s.end_pos, s.next_offset, s.why);
        if (ftruncate(seg->fd, (off_t)s.end_pos))
            return -errno;
        log->size_bytes -= seg->size - s.end_pos;
        seg->size = s.end_pos;
        if ((rc = st_index_truncate(seg->oidx, s.next_offset)) ||
            (rc = st_index_truncate(seg->tidx, s.next_offset)))
            return rc;
        *truncated = 1;
        return drop_from(log, i + 1, "after the recovery truncation point");
    }
    return 0;
}

/* Checks a trusted segment's indexes; rebuilds (validating) when bad. */
static int check_segment(st_log_t *log, unsigned i, int missing, uint8_t *buf, scan_ctx_t *ctx,
                         int *truncated, int64_t *nbatches)
{
    st_segment_t *seg = log->segs[i];
    const char *why = "index file missing";
    int64_t ts, off;
    int rc = SC_ERR_BAD_FORMAT;

    *truncated = 0;
    if (!missing) {
        rc = st_index_check(seg->oidx, seg->size, seg->next_offset, &why);
        if (!rc)
            rc = st_index_check(seg->tidx, seg->size, seg->next_offset, &why);
    }
    if (rc == 0) {
        if (st_time_index_last(seg->tidx, &ts, &off) == 0) {
            seg->max_ts = ts;
            seg->max_ts_offset = off;
        }
        return st_segment_deactivate(seg); /* trims a crash's zero tail, unmaps */
    }
    if (rc != SC_ERR_BAD_FORMAT)
        return rc;
    SC_WARN("storage", "%s: rebuilding indexes: %s", seg->path, why);
    int64_t next = seg->next_offset;
    if ((rc = recover_segment(log, i, 0, seg->base, buf, ctx, truncated, nbatches)))
        return rc;
    if (!*truncated && seg->allow_gaps && seg->next_offset <= next)
        seg->next_offset = next; /* compacted: the tail of its range may be empty */
    if (!*truncated && seg->next_offset != next) {
        /* the data ends before the next segment starts: the log ends here */
        SC_WARN("storage", "%s: segment ends at offset %" PRId64 " but the next starts at %" PRId64,
                seg->path, seg->next_offset, next);
        *truncated = 1;
        if ((rc = drop_from(log, i + 1, "does not continue the previous segment")))
            return rc;
    }
    if (!*truncated || i + 1 < log->nsegs)
        return st_segment_deactivate(seg);
    return 0;
}

/* The cleaner checkpoint must not lie past the log end (a truncated log, or
 * a deleted and recreated partition of the same name): data written there
 * later would count as already cleaned. It is set back to the log end, so
 * the compacted (gapped) segments below keep their gap tolerance in later
 * recoveries. 0 or -errno. */
static int clamp_clean_upto(st_log_t *log)
{
    if (log->gaps_upto > log->leo)
        log->gaps_upto = log->leo;
    if (log->clean_upto <= log->leo || log->nsegs == 0)
        return 0;
    int64_t to = log->leo;
    int rc = st_cleaner_checkpoint_set(log->dir, to);
    if (rc == 0)
        log->clean_upto = to;
    return rc;
}

/* Removes everything and starts empty at offset (truncate_fully, and open
 * when the checkpoint's log start is past what survived). No io use. */
static int reset_at(st_log_t *log, int64_t offset)
{
    st_segment_t *seg;
    int rc = 0;

    while (log->nsegs > 0) {
        int r = drop_segment(log, log->nsegs - 1);
        if (!rc)
            rc = r;
    }
    if (!rc)
        rc = st__log_segs_reserve(log);
    if (!rc)
        rc = st_segment_create(log->dir, offset, log->cfg.segment_index_bytes, sc_now_ms(), &seg);
    if (rc) {
        st__log_fail(log, rc, "restarting the log empty", NULL, 0, offset);
        return rc;
    }
    log->segs[log->nsegs++] = seg;
    log->size_bytes = 0;
    log->lso = log->leo = log->written = log->durable = log->hw = offset;
    log->unsynced_msgs = 0;
    log->dir_dirty = 0;
    st__epochs_clear(&log->epochs);
    if ((rc = st__log_store_epochs(log)) ||
        (rc = st_file_sync_dir(log->dir, log->dir_fd)))
        st__log_fail(log, rc, "restarting the log empty", seg, 0, offset);
    return rc;
}

static void free_log(st_log_t *log)
{
    for (unsigned i = 0; i < log->nsegs; i++)
        st_segment_close(log->segs[i]);
    sc_free(log->segs);
    st__epochs_fini(&log->epochs);
    if (log->dir_fd >= 0)
        close(log->dir_fd);
    sc_free(log->dir);
    sc_free(log);
}

static int recover(st_log_t *log, const ckpt_t *ck, const i64vec_t *bases, uint8_t *buf,
                   int *epochs_changed)
{
    scan_ctx_t ctx = {log, 0, st__epochs_latest(&log->epochs), -1};
    int64_t t0 = sc_mono_ms(), nbatches = 0, now = sc_now_ms();
    unsigned start, first_synced;
    int rc = 0, truncated = 0;
    int64_t from;

    for (size_t k = 0; k < bases->n; k++) {
        st_segment_t *seg;
        int missing = 0;
        if ((rc = st__log_segs_reserve(log)) ||
            (rc = st_segment_open(log->dir, bases->v[k], now, &seg, &missing))) {
            SC_ERROR("storage", "%s: opening segment %" PRId64 ": %s", log->dir, bases->v[k],
                     sc_err_str(rc));
            return rc;
        }
        seg->next_offset = missing ? -2 : -1; /* -2 marks a missing index until checked */
        seg->allow_gaps = seg->base < log->clean_upto; /* compacted */
        log->segs[log->nsegs++] = seg;
        log->size_bytes += seg->size;
    }
    /* the clean path scans only the active segment's tail */
    if (ck->found && ck->clean)
        start = log->nsegs - 1;
    else
        start = ck->found ? st__log_seg_index(log, ck->rp) : 0;
    first_synced = ck->found && ck->clean ? log->nsegs : start;
    from = log->segs[start]->base;

    for (unsigned i = 0; i < start && i < log->nsegs && !truncated; i++) {
        st_segment_t *seg = log->segs[i];
        int missing = seg->next_offset == -2;
        seg->next_offset = log->segs[i + 1]->base;
        if ((rc = check_segment(log, i, missing, buf, &ctx, &truncated, &nbatches)))
            return rc;
        if (truncated)
            first_synced = i;
    }
    if (!truncated && start < log->nsegs && ck->found && ck->clean) {
        /* clean: sanity-check the active segment, then scan its tail */
        st_segment_t *seg = log->segs[start];
        const char *why = "index file missing";
        int missing = seg->next_offset == -2;
        int64_t eo = seg->base, ts, toff;
        uint32_t ep = 0;
        seg->next_offset = -1;
        rc = missing ? SC_ERR_BAD_FORMAT : st_index_check(seg->oidx, seg->size, -1, &why);
        if (!rc)
            rc = st_index_check(seg->tidx, seg->size, -1, &why);
        if (rc && rc != SC_ERR_BAD_FORMAT)
            return rc;
        if (rc == 0) {
            if ((rc = st_segment_activate(seg, log->cfg.segment_index_bytes)))
                return rc;
            rc = st_offset_index_last(seg->oidx, &eo, &ep);
            if (rc == SC_ERR_NOT_FOUND) {
                eo = seg->base;
                ep = 0;
            } else if (rc) {
                return rc;
            }
            if (st_time_index_last(seg->tidx, &ts, &toff) == 0) {
                seg->max_ts = ts;
                seg->max_ts_offset = toff;
            }
            seg->bytes_since_index = 0;
            if ((rc = recover_segment(log, start, ep, eo, buf, &ctx, &truncated, &nbatches)))
                return rc;
        } else {
            SC_WARN("storage", "%s: rebuilding indexes: %s", seg->path, why);
            if ((rc = recover_segment(log, start, 0, seg->base, buf, &ctx, &truncated, &nbatches)))
                return rc;
        }
        if (truncated)
            first_synced = start;
    } else if (!truncated) {
        /* unclean: scan from the recovery point's segment to the end */
        int64_t expected = log->segs[start]->base;
        for (unsigned i = start; i < log->nsegs && !truncated; i++) {
            st_segment_t *seg = log->segs[i];
            if (seg->base > expected && i > start && log->segs[i - 1]->allow_gaps) {
                log->segs[i - 1]->next_offset = seg->base; /* a compacted tail */
                expected = seg->base;
            }
            if (seg->base != expected) {
                SC_WARN("storage", "%s: base offset %" PRId64 " does not follow the previous "
                        "segment's end %" PRId64 "; the log ends there",
                        seg->path, seg->base, expected);
                if ((rc = drop_from(log, i, "after the end of the log")))
                    return rc;
                break;
            }
            if ((rc = recover_segment(log, i, 0, expected, buf, &ctx, &truncated, &nbatches)))
                return rc;
            expected = seg->next_offset;
            if (i + 1 < log->nsegs && (rc = st_segment_deactivate(seg)))
                return rc;
        }
    }
    /* the last segment is the active one */
    st_segment_t *last = log->segs[log->nsegs - 1];
    if (last->next_offset < 0)
        last->next_offset = last->base; /* cannot happen: scanned above */
    if ((rc = st_segment_activate(last, log->cfg.segment_index_bytes)))
        return rc;
    log->leo = log->written = log->durable = last->next_offset;
    /* make what recovery kept durable before anyone trusts it */
    for (unsigned i = first_synced; i < log->nsegs; i++) {
        if (fdatasync(log->segs[i]->fd)) {
            rc = -errno;
            SC_ERROR("storage", "%s: fdatasync after recovery: %s", log->segs[i]->path,
                     sc_err_str(rc));
            return rc;
        }
    }
    if (first_synced < log->nsegs || truncated) {
        if ((rc = st_file_sync_dir(log->dir, log->dir_fd)))
            return rc;
    }
    if (!(ck->found && ck->clean) || truncated)
        SC_INFO("storage", "%s: recovered from offset %" PRId64 ": %" PRId64 " batches checked "
                "in %" PRId64 " ms%s; log end offset %" PRId64,
                log->dir, from, nbatches, sc_mono_ms() - t0,
                truncated ? " (tail truncated)" : "", log->leo);
    *epochs_changed = ctx.epochs_changed;
    return 0;
}

int st_log_open(const char *dir, const st_log_config_t *cfg, st_io_t *io, st_log_t **out)
{
    st_log_t *log = NULL;
    uint8_t *buf = NULL;
    i64vec_t bases = {0};
    ckpt_t ck;
    int rc, epochs_changed = 0;

    if ((rc = config_check(cfg)))
        return rc;
    if (!(log = sc_calloc(1, sizeof *log)))
        return SC_ERR_NO_MEMORY;
    log->dir_fd = -1;
    log->cfg = *cfg;
    log->io = io;
    log->last_sync_ms = sc_now_ms();
    if (!(log->dir = sc_strdup(dir)) || !(buf = sc_malloc(ST_SCAN_BUF))) {
        rc = SC_ERR_NO_MEMORY;
        goto out;
    }
    if ((rc = ensure_dir(dir)))
        goto out;
    log->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (log->dir_fd < 0) {
        rc = -errno;
        goto out;
    }
    if ((rc = st__cleaner_recover(dir, log->dir_fd)) ||
        (rc = st_cleaner_checkpoint_get(dir, &log->clean_upto)))
        goto out;
    if ((rc = read_checkpoint(log, &ck)))
        goto out;
    if ((rc = st__epochs_load(&log->epochs, dir))) {
        SC_ERROR("storage", "%s: reading %s: %s", dir, ST_EPOCH_FILE, sc_err_str(rc));
        goto out;
    }
    if ((rc = list_segments(log, &bases)))
        goto out;
    if (bases.n == 0) {
        int64_t base = ck.found ? ck.lso : 0;
        st_segment_t *seg;
        if ((rc = st__log_segs_reserve(log)) ||
            (rc = st_segment_create(dir, base, cfg->segment_index_bytes, sc_now_ms(), &seg)))
            goto out;
        log->segs[log->nsegs++] = seg;
        log->leo = log->written = log->durable = base;
        if ((rc = st_file_sync_dir(dir, log->dir_fd)))
            goto out;
    } else if ((rc = recover(log, &ck, &bases, buf, &epochs_changed))) {
        goto out;
    }

    log->lso = log->segs[0]->base;
    if (ck.found && ck.lso > log->lso)
        log->lso = ck.lso;
    if (log->lso > log->leo) {
        SC_WARN("storage", "%s: log start offset %" PRId64 " is past the recovered end %" PRId64
                "; restarting the log empty there",
                dir, log->lso, log->leo);
        if ((rc = reset_at(log, log->lso)))
            goto out;
    }
    while (log->nsegs > 1 && log->segs[1]->base <= log->lso) {
        SC_INFO("storage", "%s: deleting segment below the log start offset", log->segs[0]->path);
        drop_segment(log, 0);
    }
    log->hw = ck.found ? ck.hw : log->lso;
    if (log->hw < log->lso)
        log->hw = log->lso;
    if (log->hw > log->leo)
        log->hw = log->leo;
    if (st__epochs_truncate_end(&log->epochs, log->leo + 1))
        epochs_changed = 1;
    if (st__epochs_truncate_start(&log->epochs, log->lso))
        epochs_changed = 1;
    if (epochs_changed && (rc = st__log_store_epochs(log)))
        goto out;
    if ((rc = clamp_clean_upto(log)))
        goto out;
    rc = st__log_write_checkpoint(log, 0); /* clears CLEAN: from now on a crash is unclean */
out:
    sc_free(buf);
    sc_free(bases.v);
    if (rc) {
        if (log)
            free_log(log);
        return rc;
    }
    *out = log;
    return 0;
}

/* ---- close, abandon, delete ---- */

static int any_unsynced(const st_log_t *log)
{
    if (log->unsynced_msgs > 0 || log->dir_dirty || log->durable < log->leo)
        return 1;
    for (unsigned i = 0; i < log->nsegs; i++)
        if (log->segs[i]->unsynced)
            return 1;
    return 0;
}

int st_log_close(st_log_t *log)
{
    int rc;

    if (!log)
        return 0;
    rc = st__log_quiesce(log);
    if (!rc && !log->failed && any_unsynced(log)) {
        (void)st__log_sync_group(log, 1, NULL, NULL);
        rc = st__log_quiesce(log);
    }
    if (rc) {
        /* io still owns some of our records: leaking beats a use-after-free */
        SC_ERROR("storage", "%s: close could not drain the io: %s", log->dir, sc_err_str(rc));
        return rc;
    }
    if (log->failed)
        rc = SC_ERR_LOG_FAILED;
    if (!rc && log->nsegs > 0)
        rc = st_segment_deactivate(log->segs[log->nsegs - 1]);
    for (unsigned i = 0; !rc && i < log->nsegs; i++)
        rc = st_segment_sync_indexes(log->segs[i]);
    if (!rc)
        rc = st__log_write_checkpoint(log, log->durable >= log->leo);
    free_log(log);
    return rc;
}

int st_log_abandon(st_log_t *log)
{
    int rc;

    if (!log)
        return 0;
    if ((rc = st__log_quiesce(log))) {
        SC_ERROR("storage", "%s: abandon could not drain the io: %s", log->dir, sc_err_str(rc));
        return rc;
    }
    free_log(log);
    return 0;
}

int st_log_delete(st_log_t *log)
{
    char dir[PATH_MAX], parent[PATH_MAX];
    DIR *d;
    struct dirent *e;
    int rc, fd;

    if ((rc = st__log_quiesce(log)))
        return rc;
    snprintf(dir, sizeof dir, "%s", log->dir);
    for (unsigned i = 0; i < log->nsegs; i++)
        st_segment_close(log->segs[i]);
    log->nsegs = 0;
    fd = dup(log->dir_fd);
    if (fd < 0 || !(d = fdopendir(fd))) {
        rc = -errno;
        if (fd >= 0)
            close(fd);
        free_log(log);
        return rc;
    }
    rewinddir(d);
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (unlinkat(log->dir_fd, e->d_name, 0) && errno != ENOENT && !rc)
            rc = -errno;
    }
    closedir(d);
    free_log(log);
    if (!rc && rmdir(dir))
        rc = -errno;
    if (!rc) {
        snprintf(parent, sizeof parent, "%s", dir);
        char *slash = strrchr(parent, '/');
        if (slash && slash != parent) {
            *slash = '\0';
            rc = st_file_sync_dir(parent, -1);
        }
    }
    if (rc)
        SC_ERROR("storage", "%s: deleting the log: %s", dir, sc_err_str(rc));
    return rc;
}

int st_log_checkpoint(st_log_t *log)
{
    if (log->failed)
        return SC_ERR_LOG_FAILED;
    return st__log_write_checkpoint(log, 0);
}

/* ---- retention, housekeeping ---- */

/* After segments at the front went: log start offset, epochs, dir, checkpoint. */
static int after_front_deletion(st_log_t *log)
{
    int rc;

    if (log->segs[0]->base > log->lso)
        log->lso = log->segs[0]->base;
    if (log->hw < log->lso)
        log->hw = log->lso;
    if (st__epochs_truncate_start(&log->epochs, log->lso) &&
        (rc = st__log_store_epochs(log)))
        return rc;
    if ((rc = st_file_sync_dir(log->dir, log->dir_fd)))
        return rc;
    return st__log_write_checkpoint(log, 0);
}

static int retention(st_log_t *log, int64_t now_ms)
{
    int deleted = 0, rc;

    while (log->nsegs > 1) {
        st_segment_t *seg = log->segs[0];
        int expired = 0;
        /* only data below the high watermark (Kafka's rule), never in-flight files */
        if (log->segs[1]->base > log->hw || seg->inflight)
            break;
        if (log->cfg.retention_ms >= 0 && now_ms - segment_max_ts(seg) > log->cfg.retention_ms)
            expired = 1;
        if (log->cfg.retention_bytes >= 0 &&
            log->size_bytes - seg->size >= (uint64_t)log->cfg.retention_bytes)
            expired = 1;
        if (!expired)
            break;
        (void)drop_segment(log, 0);
        deleted++;
    }
    if (deleted == 0)
        return 0;
    rc = after_front_deletion(log);
    SC_INFO("storage", "%s: retention deleted %d segment(s); log start offset %" PRId64, log->dir,
            deleted, log->lso);
    return rc ? rc : deleted;
}

int st_log_tick(st_log_t *log, int64_t now_ms)
{
    st_segment_t *active;
    int rc;

    if (log->failed)
        return SC_ERR_LOG_FAILED;
    if (log->cfg.flush_ms != INT64_MAX && any_unsynced(log) &&
        now_ms - log->last_sync_ms >= log->cfg.flush_ms) {
        if ((rc = st__log_sync_group(log, 0, NULL, NULL)))
            return rc;
        log->last_sync_ms = now_ms;
    }
    active = log->segs[log->nsegs - 1];
    if (active->size > 0 && now_ms - active->created_ms >= log->cfg.segment_ms &&
        (rc = st__log_roll(log, now_ms)))
        return rc;
    return retention(log, now_ms);
}

int st_log_delete_records(st_log_t *log, int64_t offset)
{
    int rc;

    if (log->failed)
        return SC_ERR_LOG_FAILED;
    if (offset < 0 || offset > log->leo)
        return SC_ERR_OFFSET_OUT_OF_RANGE;
    if (offset <= log->lso)
        return 0;
    log->lso = offset;
    if (log->hw < log->lso)
        log->hw = log->lso;
    /* the new start is durable before any segment goes */
    if ((rc = st__log_write_checkpoint(log, 0)))
        return rc;
    if (log->nsegs > 1 && log->segs[1]->base <= offset) {
        if ((rc = st__log_quiesce(log)))
            return rc;
        while (log->nsegs > 1 && log->segs[1]->base <= offset)
            (void)drop_segment(log, 0);
    }
    return after_front_deletion(log);
}

/* ---- truncation ---- */

int st_log_truncate_fully(st_log_t *log, int64_t offset)
{
    int rc;

    if (log->failed)
        return SC_ERR_LOG_FAILED;
    if (offset < 0 || offset > ST_OFFSET_MAX)
        return SC_ERR_OFFSET_OUT_OF_RANGE;
    if ((rc = st__log_quiesce(log)))
        return rc;
    if (log->failed)
        return SC_ERR_LOG_FAILED;
    if ((rc = reset_at(log, offset)))
        return rc;
    SC_INFO("storage", "%s: truncated fully; the log restarts at offset %" PRId64, log->dir,
            offset);
    if ((rc = clamp_clean_upto(log)))
        return rc;
    return st__log_write_checkpoint(log, 0);
}

int st_log_truncate_to(st_log_t *log, int64_t offset)
{
    uint8_t buf[ST_READ_WINDOW];
    st_reader_t r;
    st_batch_hdr_t h;
    st_segment_t *seg;
    uint64_t cut, pos;
    int64_t new_leo;
    unsigned i;
    int rc, dropped = 0;

    if (log->failed)
        return SC_ERR_LOG_FAILED;
    if (offset < 0)
        return SC_ERR_OFFSET_OUT_OF_RANGE;
    if (offset >= log->leo)
        return 0;
    if ((rc = st__log_quiesce(log)))
        return rc;
    if (log->failed)
        return SC_ERR_LOG_FAILED;
    if (offset <= log->segs[0]->base || offset < log->lso)
        return st_log_truncate_fully(log, offset);

    i = st__log_seg_index(log, offset);
    seg = log->segs[i];
    st_reader_init(&r, seg->fd, seg->size, buf, sizeof buf);
    rc = st_segment_find(seg, &r, offset, &pos, &h);
    if (rc == 0) {
        new_leo = h.base_offset;
        cut = pos;
    } else if (rc == SC_ERR_NOT_FOUND) {
        new_leo = seg->next_offset;
        cut = seg->size;
    } else {
        return rc;
    }
    /* later segments first: a crash midway leaves a longer, still valid log */
    while (log->nsegs > i + 1) {
        if ((rc = drop_segment(log, log->nsegs - 1))) {
            st__log_fail(log, rc, "deleting a segment for truncation", NULL, 0, offset);
            return rc;
        }
        dropped = 1;
    }
    if (cut < seg->size) {
        if (ftruncate(seg->fd, (off_t)cut) || fdatasync(seg->fd)) {
            rc = -errno;
            st__log_fail(log, rc, "truncate", seg, cut, new_leo);
            return rc;
        }
        log->size_bytes -= seg->size - cut;
        seg->size = cut;
    }
    if ((rc = st_index_truncate(seg->oidx, new_leo)) ||
        (rc = st_index_truncate(seg->tidx, new_leo))) {
        st__log_fail(log, rc, "index truncate", seg, cut, new_leo);
        return rc;
    }
    seg->next_offset = new_leo;
    seg->unsynced = 0;
    if (!st_index_active(seg->oidx)) {
        if ((rc = st_segment_activate(seg, log->cfg.segment_index_bytes))) {
            st__log_fail(log, rc, "index activate", seg, cut, new_leo);
            return rc;
        }
        seg->created_ms = sc_now_ms();
    }
    if ((rc = st_segment_refresh_tail(seg, buf, sizeof buf))) {
        st__log_fail(log, rc, "reading after truncate", seg, cut, new_leo);
        return rc;
    }
    log->leo = log->written = new_leo;
    if (log->durable > new_leo)
        log->durable = new_leo;
    if (log->hw > new_leo)
        log->hw = new_leo;
    log->unsynced_msgs = 0;
    if (st__epochs_truncate_end(&log->epochs, new_leo) &&
        (rc = st__log_store_epochs(log)))
        return rc;
    if (dropped && (rc = st_file_sync_dir(log->dir, log->dir_fd)))
        return rc;
    SC_INFO("storage", "%s: truncated to offset %" PRId64 " (asked %" PRId64 ")", log->dir,
            new_leo, offset);
    if ((rc = clamp_clean_upto(log)))
        return rc;
    return st__log_write_checkpoint(log, 0);
}

/* ---- leader epochs ---- */

int st__log_store_epochs(st_log_t *log)
{
    int rc = st__epochs_store(&log->epochs, log->dir, log->dir_fd);
    log->epochs_dirty = rc != 0;
    if (rc)
        SC_ERROR("storage", "%s: writing %s: %s", log->dir, ST_EPOCH_FILE, sc_err_str(rc));
    return rc;
}

int st_log_epoch_assign(st_log_t *log, int32_t epoch, int64_t start_offset)
{
    if (start_offset > ST_OFFSET_MAX)
        return SC_ERR_OFFSET_OUT_OF_RANGE;
    int rc = st__epochs_assign(&log->epochs, epoch, start_offset);
    if (rc < 0)
        return rc;
    if (rc == 0 && !log->epochs_dirty)
        return 0;
    return st__log_store_epochs(log);
}

int32_t st_log_epoch_latest(const st_log_t *log) { return st__epochs_latest(&log->epochs); }

int st_log_epoch_end_offset(const st_log_t *log, int32_t epoch, int32_t *found, int64_t *end)
{
    return st__epochs_end_offset(&log->epochs, epoch, log->leo, found, end);
}

/* ---- accessors ---- */

int64_t st_log_start_offset(const st_log_t *log) { return log->lso; }
int64_t st_log_end_offset(const st_log_t *log) { return log->leo; }
int64_t st_log_written_offset(const st_log_t *log) { return log->written; }

int64_t st_log_durable_offset(const st_log_t *log)
{
    return log->durable < log->written ? log->durable : log->written;
}

int64_t st_log_high_watermark(const st_log_t *log) { return log->hw; }

void st_log_set_high_watermark(st_log_t *log, int64_t hw)
{
    if (hw > log->leo)
        hw = log->leo;
    if (hw < log->lso)
        hw = log->lso;
    log->hw = hw;
}

const st_log_config_t *st_log_config(const st_log_t *log) { return &log->cfg; }
uint64_t st_log_size_bytes(const st_log_t *log) { return log->size_bytes; }
unsigned st_log_segment_count(const st_log_t *log) { return log->nsegs; }
const char *st_log_dir(const st_log_t *log) { return log->dir; }
int st_log_failed(const st_log_t *log) { return log->failed; }
