/*
 * st_log_int.h -- what the st_log*.c files share: the log's layout, the
 * append pipeline records and the leader epoch history. Private to storage/.
 *
 * Files: st_log.c (open, recovery, close, checkpoint, retention, truncation,
 * config), st_log_append.c (append, commit, syncs, completions),
 * st_log_read.c (reads, time lookups), st_epoch.c (leader epoch history).
 */
#ifndef ST_LOG_INT_H
#define ST_LOG_INT_H

#include "st_log.h"
#include "st_segment.h"

#include <stdint.h>

#define ST_CHECKPOINT_FILE "partition.checkpoint"
#define ST_EPOCH_FILE "leader-epoch-checkpoint"

/* Scratch for recovery scans (batches larger than this are validated in pieces). */
#define ST_SCAN_BUF (1u << 20)
/* Header window for reads. */
#define ST_READ_WINDOW 8192

/* One st_log_append: from queueing to its callback. FIFO in offset order. */
typedef struct st__append {
    struct st__append *next;
    st_log_t *log;
    st_segment_t *seg;
    st_append_cb cb;
    void *arg;
    int64_t base;  /* first offset */
    int64_t end;   /* last offset + 1 */
    uint64_t pos;  /* file position in seg */
    size_t len;
    uint8_t committed;  /* st_log_commit saw it */
    uint8_t wait_sync;  /* its callback waits for durability */
    uint8_t ack_written; /* ST_APPEND_ACK_WRITTEN: never waits for durability */
    uint8_t write_done; /* its write callback ran */
    int write_res;      /* 0 or -errno */
} st__append_t;

/* One group commit: the syncs queued together; when all are done, every byte
 * appended before them (offsets < target) is durable. FIFO. */
typedef struct st__group {
    struct st__group *next;
    st_log_t *log;
    int64_t target;
    unsigned pending; /* syncs not completed */
    int res;          /* first error */
    st_append_cb cb;  /* st_log_sync_async's, or NULL */
    void *arg;
} st__group_t;

/* Leader epoch history. */
typedef struct {
    int32_t epoch;
    int64_t start;
} st__epoch_t;

typedef struct {
    st__epoch_t *v;
    unsigned n, cap;
} st__epochs_t;

struct st_log {
    char *dir;
    int dir_fd;
    st_log_config_t cfg;
    st_io_t *io;

    st_segment_t **segs; /* by base offset; the last is active */
    unsigned nsegs, segs_cap;
    uint64_t size_bytes; /* sum of segment sizes */

    int64_t lso;      /* log start offset */
    int64_t leo;      /* log end offset */
    int64_t written;  /* every write below it completed */
    int64_t durable;  /* every byte below it fdatasync'ed */
    int64_t hw;       /* high watermark */
    int failed;       /* 0, or the error that failed the log */

    /* append pipeline */
    st__append_t *head, *tail; /* not yet completed */
    st__append_t *wcur;        /* first append not known written */
    st__append_t *ucur;        /* first uncommitted append (the rest follow it) */
    st__group_t *ghead, *gtail;
    int64_t unsynced_msgs;     /* records appended since the last queued sync */
    int dir_dirty;             /* a segment file was created since the last sync */
    int sync_deferred;         /* a commit wanted a sync while a group was in flight */
    int64_t last_sync_ms;
    int in_process;
    st_log_progress_cb progress_cb; /* st_log_set_progress_cb */
    void *progress_arg;

    st__epochs_t epochs;
    int epochs_dirty; /* the history changed but writing its file failed */

    /* compaction (st_cleaner.c) */
    int64_t clean_upto; /* cleaner checkpoint: segments below may have offset gaps */
    int64_t gaps_upto;  /* copied offset gaps (ST_APPEND_KEEP_OFFSETS) end below this;
                           st_log_commit raises clean_upto to it */
    uint64_t gen;       /* bumped whenever segments are deleted or swapped */
};

/* ---- st_log_append.c ---- */

/* Queues one sync group over every dirty fd (always at least the active
 * segment's when force), with cb, and submits. 0 or an error (the log is then
 * failed). */
int st__log_sync_group(st_log_t *log, int force, st_append_cb cb, void *arg);
/* Marks the log failed (sticky) and logs why. */
void st__log_fail(st_log_t *log, int err, const char *what, const st_segment_t *seg, uint64_t pos,
                  int64_t offset);
/* Commits and drains the io until this log has nothing in flight. 0 or error. */
int st__log_quiesce(st_log_t *log);
/* Rolls to a new active segment at leo (no-op when the active one is empty). */
int st__log_roll(st_log_t *log, int64_t now_ms);
/* Grows log->segs to hold one more. 0 or SC_ERR_NO_MEMORY. */
int st__log_segs_reserve(st_log_t *log);

/* ---- st_log.c ---- */

/* Writes leader-epoch-checkpoint; on failure keeps epochs_dirty set so the
 * next append retries before queueing data. 0 or -errno. */
int st__log_store_epochs(st_log_t *log);

/* Writes partition.checkpoint (clean flag as given). 0 or -errno. */
int st__log_write_checkpoint(st_log_t *log, int clean);
/* Index of the segment holding offset: the last with base <= offset (0 when
 * offset is below every base). */
unsigned st__log_seg_index(const st_log_t *log, int64_t offset);

/* ---- st_epoch.c ---- */

void st__epochs_fini(st__epochs_t *e);
/* Loads dir/leader-epoch-checkpoint: 0 (empty when absent), SC_ERR_BAD_FORMAT,
 * -errno, SC_ERR_NO_MEMORY. */
int st__epochs_load(st__epochs_t *e, const char *dir);
/* Writes it atomically. 0 or -errno. */
int st__epochs_store(const st__epochs_t *e, const char *dir, int dir_fd);
/* Kafka's assign: returns 1 when the history changed, 0 when not, or
 * SC_ERR_NO_MEMORY. */
int st__epochs_assign(st__epochs_t *e, int32_t epoch, int64_t start);
/* Drops entries starting at or after end. Returns 1 if any was dropped. */
int st__epochs_truncate_end(st__epochs_t *e, int64_t end);
/* Drops entries wholly below start; the last of them is moved up to start.
 * Returns 1 if anything changed. */
int st__epochs_truncate_start(st__epochs_t *e, int64_t start);
void st__epochs_clear(st__epochs_t *e);
int32_t st__epochs_latest(const st__epochs_t *e);
int st__epochs_end_offset(const st__epochs_t *e, int32_t epoch, int64_t leo, int32_t *found,
                          int64_t *end);

#endif
