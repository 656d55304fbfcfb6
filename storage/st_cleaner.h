/*
 * st_cleaner -- log compaction (Kafka's log cleaner) for logs whose
 * cleanup.policy contains "compact" (st_log_config_t.compact).
 *
 * A clean works on a log's CLOSED segments only (the active one is never
 * touched) in three steps, so that the heavy part can run on a cleaner thread
 * while the log keeps serving appends and reads on its owner thread:
 *
 *   st_cleaner_prepare  (owner thread, cheap) picks the range: the dirty
 *                       section is [cleaner checkpoint, first uncleanable
 *                       offset), where the first uncleanable offset is the
 *                       active segment's base, or the base of the first
 *                       segment reaching past the high watermark or holding
 *                       a record younger than min.compaction.lag.ms. The
 *                       job holds dup'ed fds of
 *                       every closed segment from the log start, so the
 *                       owner may delete or swap them meanwhile.
 *   st_cleaner_run      (any thread) pass 1: offset map key -> last offset
 *                       over the dirty section (at most dedupe_bytes of map;
 *                       when the section does not fit, a prefix of whole
 *                       segments is cleaned). Pass 2: rewrites the segments
 *                       from the log start up to the end of the mapped
 *                       section, groups of consecutive segments whose sizes
 *                       sum to at most segment.bytes into one cleaned
 *                       segment each (<base>.log.cleaned + .index.cleaned +
 *                       .timeindex.cleaned, fsynced). A record is kept when
 *                       its key has no later offset in the map. Tombstones
 *                       (null value) follow KIP-534 (Kafka 3.0+): the first
 *                       clean that keeps one stamps its batch with a delete
 *                       horizon (attributes bit 6; baseTimestamp = now +
 *                       delete.retention.ms, record timestamp deltas
 *                       re-based so record timestamps do not change); a later
 *                       clean at or after the horizon drops the batch's
 *                       tombstones. Records without a key are kept.
 *                       Retained records keep their offsets and bytes;
 *                       each batch keeps its baseOffset, lastOffsetDelta,
 *                       timestamps, producer id/epoch/sequence and codec
 *                       (compressed batches are decompressed, filtered and
 *                       recompressed with sc_codec). A batch that loses all
 *                       its records is dropped, unless it is its producer
 *                       id's last batch in the cleaned range: that one stays
 *                       empty (Kafka's rule; producer state is rebuilt from
 *                       batch headers). Control batches are kept.
 *   st_cleaner_commit   (owner thread) swaps the cleaned segments in (below),
 *                       unless the log changed under the job (a retention,
 *                       truncation or delete_records deleted segments): then
 *                       the job is discarded. Returns SC_ERR_AGAIN while a
 *                       sync is still in flight on a source segment.
 *
 * CRASH SAFETY. A job's cleaned groups replace their sources all or none:
 *   1. per group with base B: <B>.log.cleaned, .index.cleaned,
 *      .timeindex.cleaned written + fsynced (st_cleaner_run), then the
 *      directory fsynced;
 *   2. <B0>.swap written atomically (temp, fsync, rename, directory fsync):
 *      the new cleaner checkpoint and every group's (base, end), end being
 *      the next kept segment's base. This is the commit point;
 *   3. per group: the sources other than B unlinked (open fds stay
 *      readable), then .index.cleaned, .timeindex.cleaned and .log.cleaned
 *      renamed over the <B> files (rename replaces atomically);
 *   4. the cleaner checkpoint raised to the job's end;
 *   5. <B0>.swap unlinked.
 * Each step is followed by a directory fsync. st_log_open first runs
 * st__cleaner_recover: a valid swap file is completed (steps 3-5: segments
 * with a base inside a group's (B, end) deleted, the remaining .cleaned files
 * of B renamed in, the checkpoint raised, the swap file removed); every
 * other *.cleaned file is deleted. A crash at any point therefore leaves
 * either every old segment of the job or every cleaned one -- never a mix,
 * which matters: a mix could hold a group whose tombstone was stamped while
 * the older value of its key, in an unswapped group, survived the clean.
 * The cleaner checkpoint is read after this recovery; segments below it may
 * have offset gaps, which the recovery scans then accept.
 *
 * CLEANER CHECKPOINT: <log.dir>/cleaner-offset-checkpoint, Kafka's text
 * format ("0", count, then "topic partition offset" lines), one per log dir,
 * shared by its partitions (a process-wide mutex serializes updates). The
 * partition name is the log directory's basename ("<topic>-<partition>").
 *
 * Threading: prepare/commit/dirty on the log's owner thread; run on any
 * thread (one job per log at a time); the pool and throttle are thread-safe.
 */
#ifndef ST_CLEANER_H
#define ST_CLEANER_H

#include "st_log.h"

#include <pthread.h>
#include <stdint.h>

#define ST_CLEANER_CHECKPOINT_FILE "cleaner-offset-checkpoint"

/* ---- I/O rate limit (log.cleaner.io.max.bytes.per.second) ---- */

/* A token bucket: rate bytes per second, burst of one second's worth. */
typedef struct {
    pthread_mutex_t mu;
    double rate;     /* bytes/s; <= 0 or >= 1e300: unlimited */
    double tokens;   /* may go negative: debt paid by sleeping */
    int64_t last_ns; /* monotonic time of the last refill */
} st_throttle_t;

void st_throttle_init(st_throttle_t *t, double rate);
void st_throttle_fini(st_throttle_t *t);
/* Charges bytes at monotonic time now_ns and returns how long the caller must
 * wait (ns, 0 when within the rate). Pure bookkeeping, for tests. */
int64_t st_throttle_charge(st_throttle_t *t, uint64_t bytes, int64_t now_ns);
/* Charges bytes now and sleeps as needed. NULL t: no limit. */
void st_throttle_take(st_throttle_t *t, uint64_t bytes);

/* ---- one clean ---- */

typedef struct {
    uint64_t dedupe_bytes;  /* log.cleaner.dedupe.buffer.size (per job) */
    st_throttle_t *throttle; /* NULL: unlimited */
    volatile int *cancel;    /* non-NULL: st_cleaner_run gives up when *cancel */
} st_cleaner_opts_t;

typedef struct {
    int64_t first_dirty;   /* cleaner checkpoint (clamped to the log start) */
    int64_t first_uncleanable; /* active base, or min.compaction.lag.ms bound */
    uint64_t clean_bytes;  /* closed segments below first_dirty */
    uint64_t dirty_bytes;  /* closed segments in [first_dirty, first_uncleanable) */
    double ratio;          /* dirty / (clean + dirty); 0 when nothing */
} st_clean_state_t;

/* What one clean did. */
typedef struct {
    int64_t end;             /* new cleaner checkpoint */
    unsigned segments_in, segments_out;
    uint64_t bytes_in, bytes_out;
    int64_t records_in, records_out;
    int64_t tombstones_dropped;
    int64_t map_entries;
} st_clean_result_t;

typedef struct st_clean_job st_clean_job_t;

/* The log's cleanable state at now_ms (owner thread). */
void st_cleaner_state(st_log_t *log, int64_t now_ms, st_clean_state_t *out);

/* Builds a job (owner thread). Returns 0 and *out, SC_ERR_NOT_FOUND when
 * nothing is cleanable (no closed dirty segment), SC_ERR_LOG_FAILED, -errno,
 * SC_ERR_NO_MEMORY. */
int st_cleaner_prepare(st_log_t *log, int64_t now_ms, st_clean_job_t **out);

/* Passes 1 and 2 (any thread). Returns 0, SC_ERR_CLOSED (cancelled),
 * SC_ERR_FULL (not even the first dirty segment fits the offset map),
 * SC_ERR_CORRUPT_MESSAGE, -errno, SC_ERR_NO_MEMORY. */
int st_cleaner_run(st_clean_job_t *job, const st_cleaner_opts_t *opts);

/* Swaps the cleaned segments in (owner thread). Returns 0 (done; *res may be
 * NULL), SC_ERR_AGAIN (a source segment has I/O in flight: call again
 * later), SC_ERR_NOT_FOUND (the log changed: the job is void), or an error
 * (the log is then failed if the swap had started). */
int st_cleaner_commit(st_log_t *log, st_clean_job_t *job, st_clean_result_t *res);

/* Asks a running (or not yet started) st_cleaner_run of job to stop: it
 * returns SC_ERR_CLOSED at its next batch. Any thread. */
void st_cleaner_job_cancel(st_clean_job_t *job);

/* Frees a job, deleting any .cleaned files it left. NULL is a no-op. */
void st_cleaner_job_free(st_clean_job_t *job);

/* prepare + run + commit on the calling thread (tests, tools). Returns 0,
 * SC_ERR_NOT_FOUND (nothing to clean) or an error as above. */
int st_cleaner_clean(st_log_t *log, int64_t now_ms, const st_cleaner_opts_t *opts,
                     st_clean_result_t *res);

/* ---- the cleaner checkpoint ---- */

/* Reads the cleaned-up-to offset of the log in dir from its parent's
 * cleaner-offset-checkpoint: 0 and *offset (0 when absent), -errno. */
int st_cleaner_checkpoint_get(const char *log_dir, int64_t *offset);
/* Sets it (atomic rewrite of the parent's file). 0 or -errno. */
int st_cleaner_checkpoint_set(const char *log_dir, int64_t offset);

/* ---- a pool of cleaner threads (log.cleaner.threads) ---- */

typedef struct st_cleaner_pool st_cleaner_pool_t;
/* Runs on the cleaner thread when a job's st_cleaner_run returned rc. */
typedef void (*st_cleaner_done_cb)(void *arg, st_clean_job_t *job, int rc);

/* threads >= 1; dedupe_bytes is split between the threads; rate as
 * st_throttle_init (shared by the threads). */
int st_cleaner_pool_new(unsigned threads, uint64_t dedupe_bytes, double rate,
                        st_cleaner_pool_t **out);
/* Queues job; cb runs on a cleaner thread when it is done. 0 or SC_ERR_CLOSED. */
int st_cleaner_pool_submit(st_cleaner_pool_t *p, st_clean_job_t *job, st_cleaner_done_cb cb,
                           void *arg);
/* Asks running jobs to stop, runs cb(SC_ERR_CLOSED) for queued ones, joins
 * the threads and frees. NULL is a no-op. */
void st_cleaner_pool_free(st_cleaner_pool_t *p);

/* ---- internal, for st_log_open ---- */

/* Completes or rolls back an interrupted swap in dir (see CRASH SAFETY).
 * 0 or -errno. */
int st__cleaner_recover(const char *dir, int dir_fd);

/* Fault tests: when > 0, counts down at every step of a clean that leaves a
 * different on-disk state (a cleaned group written, the checkpoint raised,
 * the swap file written, each source deleted, each rename, the swap file
 * removed) and _exit(86)s the process when it reaches 0. */
extern int st__cleaner_crash_after;

#endif
