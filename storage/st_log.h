/*
 * st_log -- one partition's log: a directory of segments.
 *
 * On disk, <log.dir>/<topic>-<partition>/ holds
 *   00000000000000000000.log        RecordBatch v2 bytes, back to back
 *   00000000000000000000.index      sparse baseOffset -> file position (st_index.h)
 *   00000000000000000000.timeindex  sparse max timestamp -> offset (st_index.h)
 *   partition.checkpoint            recovery point, log start offset, high watermark
 *   leader-epoch-checkpoint         leader epoch history (Kafka's text format)
 * One segment per base offset (20 digits, zero-padded). The last segment is
 * the active one; only it is appended to.
 *
 * Offsets: log start offset <= ... <= high watermark <= durable offset <=
 * written offset <= log end offset (leo). "written" = every byte before it has
 * reached the page cache (its write completed); "durable" = fdatasync'ed. Reads
 * never go past the written offset.
 *
 * Group commit: st_log_append validates, assigns offsets and queues the write
 * on the io backend; nothing reaches the kernel until st_log_commit, which the
 * owner calls once per loop turn. Every append of that turn then shares one
 * fdatasync (when the flush policy asks for one) and each append's callback
 * runs when its bytes are durable -- or only written, when the policy leaves
 * flushing to the OS or to flush.ms / flush.messages.
 *
 * Failure: a failed write or fdatasync marks the log failed (sticky): pending
 * and later appends fail with SC_ERR_LOG_FAILED (after the original errno is
 * logged with path and offset). Reopening runs recovery.
 *
 * Recovery (st_log_open): segments from the one holding the recovery point
 * onward are scanned batch by batch (length, magic, CRC-32C, counts); the first
 * torn or invalid batch ends the log: the file is truncated there, later
 * segments are deleted, indexes are rebuilt, and the event is logged with path
 * and offset. Indexes of other segments are sanity-checked and rebuilt when
 * missing or corrupt.
 *
 * Threading: a log belongs to one thread (its shard), as does its io backend;
 * callbacks run on that thread from st_io_poll. Not thread-safe otherwise.
 */
#ifndef ST_LOG_H
#define ST_LOG_H

#include "st_io.h"

#include <stddef.h>
#include <stdint.h>

typedef struct st_log st_log_t;

/* Per-log configuration, Kafka's topic-level names. */
typedef struct {
    int64_t segment_bytes;        /* segment.bytes, default 1 GiB */
    int64_t segment_ms;           /* segment.ms, default 7 days */
    int32_t index_interval_bytes; /* index.interval.bytes, default 4096 */
    int32_t segment_index_bytes;  /* segment.index.bytes, default 10 MiB */
    int64_t retention_ms;         /* retention.ms, default 7 days; -1 = unlimited */
    int64_t retention_bytes;      /* retention.bytes, default -1 = unlimited */
    int64_t flush_messages;       /* flush.messages, default 1 (sync each commit); INT64_MAX = OS */
    int64_t flush_ms;             /* flush.ms, default INT64_MAX */
    /* compaction (st_cleaner.h); the log itself only stores these */
    int compact;                  /* cleanup.policy contains "compact" (set by the owner) */
    int64_t delete_retention_ms;  /* delete.retention.ms, default 1 day */
    int64_t min_compaction_lag_ms; /* min.compaction.lag.ms, default 0 */
    double min_cleanable_dirty_ratio; /* min.cleanable.dirty.ratio, default 0.5, [0, 1] */
} st_log_config_t;

/* Fills Strata's defaults (durable: flush.messages = 1). */
void st_log_config_default(st_log_config_t *cfg);

/* Sets one key by Kafka name ("segment.bytes", "flush.ms",
 * "min.cleanable.dirty.ratio", ...). Returns 0,
 * SC_ERR_INVALID_CONFIG for a bad value, SC_ERR_NOT_FOUND for an unknown key. */
int st_log_config_set(st_log_config_t *cfg, const char *key, const char *value);

/* Opens (creating if absent) the log in dir, running recovery. The log uses io
 * for writes and syncs (borrowed: io must outlive the log). Open itself does
 * no I/O through io, so a log may be opened on any thread and then handed to
 * io's owner. Returns 0 and *out, or -errno / SC_ERR_BAD_FORMAT (unreadable
 * leader-epoch-checkpoint) / SC_ERR_INVALID_CONFIG / SC_ERR_NO_MEMORY. */
int st_log_open(const char *dir, const st_log_config_t *cfg, st_io_t *io, st_log_t **out);

/* Drains pending I/O (running callbacks), syncs, writes the checkpoints and
 * trims the active indexes, then frees. Returns 0 or the first error (the log
 * is freed either way). NULL is a no-op. */
int st_log_close(st_log_t *log);

/* Frees the log the way a crash would leave it: queued I/O is drained (so
 * buffers are handed back and callbacks run) but nothing is synced, indexes
 * are not trimmed and no checkpoint is written, so the next open runs the
 * unclean recovery. For tests, and for dropping a failed log. Returns 0 or
 * the drain's error (the log is then leaked, not freed). NULL is a no-op. */
int st_log_abandon(st_log_t *log);

/* Replaces the config (after AlterConfigs). Takes effect from the next append.
 * An invalid config (see st_log_config_set's bounds) is ignored. */
void st_log_set_config(st_log_t *log, const st_log_config_t *cfg);

/* ---- appends ---- */

/* rc = 0 when the batch is durable (or written, per flush policy), else the
 * error. base/last are the batch's offsets. Callbacks run in offset order; a
 * callback may append and commit, but must not close, truncate or delete the
 * log. */
typedef void (*st_append_cb)(void *arg, int rc, int64_t base_offset, int64_t last_offset);

/*
 * Appends the record batches in buf[0..len) (one or more, Kafka RecordBatch v2):
 * validates them all first (a bad one rejects the whole buffer with
 * SC_ERR_CORRUPT_MESSAGE / SC_ERR_INVALID_RECORD and nothing is written),
 * assigns offsets from the log end offset by rewriting baseOffset and
 * partitionLeaderEpoch in buf, rolls the segment if needed, and queues the
 * write. buf belongs to the log until cb runs. On success *base_offset and
 * *leo (the new log end offset) are set at once, and cb runs later, from
 * st_io_poll after st_log_commit. On error cb does not run. A leader_epoch
 * newer than the history's latest is recorded (leader-epoch-checkpoint written)
 * as starting at the base offset before the write is queued, as Kafka does;
 * an older one is refused (epochs never go back along the log; recovery
 * checks that). -1 means none and is allowed only while the history is empty.
 * Returns 0, SC_ERR_CORRUPT_MESSAGE, SC_ERR_INVALID_RECORD,
 * SC_ERR_MESSAGE_TOO_LARGE (the buffer is bigger than segment.bytes),
 * SC_ERR_OFFSET_OUT_OF_RANGE (offsets would pass 2^62),
 * SC_ERR_FENCED_LEADER_EPOCH (leader_epoch below the latest), SC_ERR_LOG_FAILED,
 * SC_ERR_NO_MEMORY, -errno (roll, epoch file or queueing failed).
 */
int st_log_append(st_log_t *log, void *buf, size_t len, int32_t leader_epoch, st_append_cb cb,
                  void *arg, int64_t *base_offset, int64_t *leo);

/* Flags for st_log_append_ex. */
enum {
    /* Complete the append when its bytes are written (page cache), even when
     * the flush policy syncs the commit: Kafka's acks=1. The sync still runs;
     * callbacks still complete in offset order, so such an append queued
     * behind one that waits for durability completes after it. */
    ST_APPEND_ACK_WRITTEN = 1,
    /* A follower copying its leader: the batches keep their own baseOffset
     * and partitionLeaderEpoch instead of being given the next offsets and
     * leader_epoch (which is ignored). They must be in ascending order,
     * start at or after the log end (else SC_ERR_OFFSET_OUT_OF_RANGE) and
     * carry epochs that never go back (else SC_ERR_FENCED_LEADER_EPOCH); a
     * newer epoch is recorded as starting at its first batch's base offset.
     * Offset gaps before, between or inside the batches are allowed (a
     * compacted leader): the log end moves to the last batch's last offset
     * + 1, and the next st_log_commit raises the cleaner checkpoint past it
     * before any append it commits completes (those records count as
     * cleaned, as on the leader), so that recovery accepts the gaps. */
    ST_APPEND_KEEP_OFFSETS = 2,
};

/* st_log_append with flags (ST_APPEND_*). */
int st_log_append_ex(st_log_t *log, void *buf, size_t len, int32_t leader_epoch, int flags,
                     st_append_cb cb, void *arg, int64_t *base_offset, int64_t *leo);

/* Called (on the log's thread, from st_io_poll) whenever the written or the
 * durable offset advances, after the append callbacks that the advance
 * completes. One listener per log; NULL removes it. The owner keeps its high
 * watermark with it (st_log_committed_offset). */
typedef void (*st_log_progress_cb)(void *arg, st_log_t *log);
void st_log_set_progress_cb(st_log_t *log, st_log_progress_cb cb, void *arg);

/* What the flush policy counts as committed: the durable offset when every
 * commit syncs (flush.messages = 1, the default), else the written offset. */
int64_t st_log_committed_offset(const st_log_t *log);

/* Submits this log's queued writes and, if the flush policy says so, one
 * fdatasync covering them (group commit). Cheap when nothing is queued.
 * Returns 0 or SC_ERR_LOG_FAILED / -errno. */
int st_log_commit(st_log_t *log);

/* Forces an fdatasync of everything written so far; cb(arg, rc, -1, -1) runs
 * when it is durable. For flush.ms timers and shutdown. */
int st_log_sync_async(st_log_t *log, st_append_cb cb, void *arg);

/* Housekeeping for the owner's timer: flush.ms syncs, segment.ms rolls,
 * retention (retention.ms, retention.bytes; deletes whole non-active segments
 * and advances the log start offset). now_ms is wall-clock ms. As in Kafka,
 * only segments wholly below the high watermark are deleted, and a segment's
 * age is measured from its largest record timestamp (its file mtime when it
 * has none). Returns the number of segments deleted, or an error. */
int st_log_tick(st_log_t *log, int64_t now_ms);

/* ---- reads ---- */

/* A slice of one segment file on batch boundaries, for sendfile. */
typedef struct {
    int fd;          /* the segment's fd: valid until the log changes segments (roll
                        keeps it; retention, truncate, delete_records and close
                        may close it) -- hold no slice across those */
    uint64_t pos;    /* file position of the first batch */
    uint64_t len;    /* bytes; 0 when there is nothing to read */
    int64_t first_offset; /* base offset of the first batch (<= the asked offset) */
    int64_t next_offset;  /* offset after the last batch in the slice */
} st_slice_t;

/*
 * Finds the batch holding offset and returns whole batches from there, within
 * one segment, up to max_bytes -- but always at least one whole batch when
 * one exists (Kafka's rule, so a consumer can make progress), and never past
 * max_offset (exclusive; pass the high watermark, or INT64_MAX for the
 * written offset). Returns 0 (len = 0 when offset == the end),
 * SC_ERR_OFFSET_OUT_OF_RANGE (offset < log start or > end), -errno.
 */
int st_log_read(st_log_t *log, int64_t offset, uint64_t max_bytes, int64_t max_offset,
                st_slice_t *out);

/* Like st_log_read but copies whole batches into buf (at most cap bytes) and
 * sets *len to the byte count (0 at the end). Returns 0, an error as
 * st_log_read, or SC_ERR_MESSAGE_TOO_LARGE when the first batch is larger
 * than cap. */
int st_log_read_into(st_log_t *log, int64_t offset, void *buf, size_t cap, int64_t max_offset,
                     size_t *len);

/* st_log_read_into for callers that only need success or failure: returns the
 * byte count (0 at the end) or a negative error. Kafka-range errors (which are
 * positive sc_err values: OFFSET_OUT_OF_RANGE, CORRUPT_MESSAGE,
 * MESSAGE_TOO_LARGE) come back negated, so -1 here means OFFSET_OUT_OF_RANGE;
 * use st_log_read_into to tell errors apart. */
int64_t st_log_read_copy(st_log_t *log, int64_t offset, void *buf, size_t cap, int64_t max_offset);

/* The offset of the first record with timestamp >= ts (through the time
 * index, then a scan), never below the log start offset; in a compressed
 * batch, that batch's base offset. Only written data is searched. Kafka's
 * special timestamps (-1 latest, -2 earliest) are the caller's. Returns 0 and
 * *offset, or SC_ERR_NOT_FOUND when every record is older (Kafka then answers
 * the log end offset), -errno. */
int st_log_lookup_time(st_log_t *log, int64_t ts, int64_t *offset);

/* ---- offsets and changes for replication and admin ---- */

int64_t st_log_start_offset(const st_log_t *log);
int64_t st_log_end_offset(const st_log_t *log);       /* leo */
int64_t st_log_written_offset(const st_log_t *log);   /* reached the page cache */
int64_t st_log_durable_offset(const st_log_t *log);   /* fdatasync'ed */
int64_t st_log_high_watermark(const st_log_t *log);
void st_log_set_high_watermark(st_log_t *log, int64_t hw); /* clamped to leo */
/* The log's current configuration (st_log_set_config). */
const st_log_config_t *st_log_config(const st_log_t *log);
uint64_t st_log_size_bytes(const st_log_t *log);
unsigned st_log_segment_count(const st_log_t *log);
const char *st_log_dir(const st_log_t *log);
/* 0 while healthy, else the error that failed the log (sticky). */
int st_log_failed(const st_log_t *log);

/* Advances the log start offset to offset (<= high watermark... callers check;
 * here <= leo), deletes segments wholly below it, writes the checkpoint (before
 * deleting). offset <= log start is a no-op. Returns 0,
 * SC_ERR_OFFSET_OUT_OF_RANGE, SC_ERR_LOG_FAILED, -errno. */
int st_log_delete_records(st_log_t *log, int64_t offset);

/* Removes every batch at or after offset: if offset falls inside a batch, that
 * whole batch goes (the new leo is its base offset). Waits for in-flight I/O
 * first (st_io_drain: other logs' callbacks on the same io run too), drops
 * leader epochs starting at or after the new leo, lowers the recovery point
 * and rewrites the checkpoint. An offset at or below the first segment's base
 * or below the log start truncates fully (Kafka's rule). offset >= leo is a
 * no-op. Returns 0, SC_ERR_OFFSET_OUT_OF_RANGE (negative), SC_ERR_LOG_FAILED,
 * SC_ERR_CORRUPT_MESSAGE (unreadable batch header), -errno (the log is then
 * failed). */
int st_log_truncate_to(st_log_t *log, int64_t offset);

/* Removes everything and restarts the log empty at offset (a follower that is
 * too far behind): log start = hw = leo = offset, leader epoch history
 * cleared. Returns 0, SC_ERR_OFFSET_OUT_OF_RANGE, SC_ERR_LOG_FAILED or -errno. */
int st_log_truncate_fully(st_log_t *log, int64_t offset);

/* Leader epoch history: (epoch, start offset) pairs, Kafka's
 * leader-epoch-checkpoint. assign records that epoch starts at offset (no-op if
 * it is the latest epoch already, unless offset is smaller; like Kafka, entries
 * with a larger-or-equal epoch or start offset are dropped first); the file is
 * rewritten atomically. Assign at the log end (a new leader) or after a
 * truncation: recovery treats data whose epoch exceeds the history's latest as
 * corrupt. Returns 0, SC_ERR_OFFSET_OUT_OF_RANGE, -errno. */
int st_log_epoch_assign(st_log_t *log, int32_t epoch, int64_t start_offset);
/* Latest epoch, or -1 when none. */
int32_t st_log_epoch_latest(const st_log_t *log);
/* For OffsetForLeaderEpoch: the end offset of epoch (the start offset of the
 * next larger epoch, or leo for the latest) and the largest epoch <= epoch
 * (Kafka: an epoch below the first one gives (epoch, first start offset)).
 * Returns 0, or SC_ERR_NOT_FOUND for a negative epoch, an empty history or an
 * epoch above the latest (then *end = -1, *found = -1). */
int st_log_epoch_end_offset(const st_log_t *log, int32_t epoch, int32_t *found, int64_t *end);

/* Writes the partition checkpoint (recovery point = durable offset, log start
 * offset, high watermark) atomically (format at the top of st_log.c).
 * Synchronous (fsync + rename + directory fsync). Returns 0, SC_ERR_LOG_FAILED
 * or -errno. */
int st_log_checkpoint(st_log_t *log);

/* Drains, closes and deletes the log's files and its directory. The log is
 * freed, except when draining the io failed (then it is leaked rather than
 * freed under the io's feet). Returns 0 or -errno. */
int st_log_delete(st_log_t *log);

#endif
