/*
 * st_log_append.c -- the write path: append, group commit, completions.
 *
 * PIPELINE
 *   st_log_append   validate every batch, roll if needed, set baseOffset and
 *                   partitionLeaderEpoch in the caller's buffer, queue ONE
 *                   st_io_write of the whole buffer at the active segment's
 *                   logical end, then at once: leo, segment size, indexes.
 *                   The append joins the FIFO (offset order).
 *   st_log_commit   marks the uncommitted appends committed and, when the
 *                   flush policy says so (unsynced records >= flush.messages),
 *                   queues one sync group: an st_io_sync per dirty segment fd,
 *                   plus the directory fd when a segment was created, whose
 *                   target is the leo at that moment; then st_io_submit.
 *                   While a group is in flight the sync is deferred: the
 *                   next group starts when the last one completes and
 *                   covers every commit made meanwhile, so a log has one
 *                   fdatasync in flight at a time (overlapping ones on one
 *                   file only queue behind each other in the kernel, and
 *                   each costs an io worker wake-up).
 *   completions     a write callback marks its append written and moves
 *                   `written` over the longest completed prefix (writes may
 *                   finish out of order); a group whose syncs all succeeded
 *                   moves `durable` to its target, in group order. Appends then
 *                   complete in FIFO order: a committed, written append whose
 *                   commit synced waits until durable >= its end; one whose
 *                   commit did not sync completes when written.
 *
 * The io contract (st_io.h) orders a sync after every write queued before it
 * on the same fd, so a group's success means every byte below its target is
 * on the medium; the directory fsync covers new segment files' names.
 *
 * FAILURE: a failed write or sync fails the log (sticky, logged with path,
 * position, offset and errno). Appends not yet completed then complete with
 * SC_ERR_LOG_FAILED -- each only after its own write callback ran, because
 * its buffer belongs to the io until then. Later appends and commits fail at
 * once. The on-disk state is settled by recovery at the next open.
 */
#include "st_log_int.h"

#include "st_cleaner.h"

#include "sc_endian.h"
#include "sc_err.h"
#include "sc_log.h"
#include "sc_mem.h"
#include "sc_time.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

void st__log_fail(st_log_t *log, int err, const char *what, const st_segment_t *seg, uint64_t pos,
                  int64_t offset)
{
    if (log->failed)
        return;
    log->failed = err ? err : SC_ERR_LOG_FAILED;
    SC_ERROR("storage", "%s: %s failed at position %" PRIu64 " (offset %" PRId64 "): %s (%s); "
             "the log is failed until reopened",
             seg ? seg->path : log->dir, what, pos, offset, sc_err_str(err), sc_err_name(err));
}

/* Runs the callbacks of appends that are done, in order. */
static void process(st_log_t *log)
{
    if (log->in_process)
        return; /* a callback re-entered through st_io_poll: the outer loop goes on */
    log->in_process = 1;
    while (log->head) {
        st__append_t *a = log->head;
        int rc = 0;
        if (!a->committed || !a->write_done)
            break;
        if (log->failed)
            rc = SC_ERR_LOG_FAILED;
        else if (a->wait_sync && !a->ack_written && log->durable < a->end)
            break;
        log->head = a->next;
        if (!log->head)
            log->tail = NULL;
        if (log->wcur == a)
            log->wcur = a->next;
        if (a->cb)
            a->cb(a->arg, rc, a->base, a->end - 1);
        sc_free(a);
    }
    log->in_process = 0;
}

/* Tells the progress listener when written or durable moved since (w0, d0).
 * Called after process(), so the appends the move completed have run. */
static void progress(st_log_t *log, int64_t w0, int64_t d0)
{
    if (log->progress_cb && (log->written != w0 || log->durable != d0))
        log->progress_cb(log->progress_arg, log);
}

static void write_done(void *arg, int res)
{
    st__append_t *a = arg;
    st_log_t *log = a->log;

    a->seg->inflight--;
    if (res >= 0 && (size_t)res != a->len)
        res = -EIO; /* the contract says whole writes; be safe */
    a->write_done = 1;
    a->write_res = res < 0 ? res : 0;
    if (res < 0)
        st__log_fail(log, res, "write", a->seg, a->pos, a->base);
    int64_t w0 = log->written, d0 = log->durable;
    while (!log->failed && log->wcur && log->wcur->write_done) {
        log->written = log->wcur->end;
        log->wcur = log->wcur->next;
    }
    process(log);
    progress(log, w0, d0);
}

typedef struct {
    st__group_t *g;
    st_segment_t *seg; /* NULL for the directory */
} sync_ctx_t;

static void groups_advance(st_log_t *log)
{
    while (log->ghead && log->ghead->pending == 0) {
        st__group_t *g = log->ghead;
        int rc = 0;
        log->ghead = g->next;
        if (!log->ghead)
            log->gtail = NULL;
        if (g->res || log->failed)
            rc = SC_ERR_LOG_FAILED;
        else if (g->target > log->durable)
            log->durable = g->target;
        if (g->cb)
            g->cb(g->arg, rc, -1, -1);
        sc_free(g);
    }
}

static void sync_done(void *arg, int res)
{
    sync_ctx_t *c = arg;
    st__group_t *g = c->g;
    st_log_t *log = g->log;

    if (c->seg)
        c->seg->inflight--;
    if (res < 0) {
        if (!g->res)
            g->res = res;
        st__log_fail(log, res, c->seg ? "fdatasync" : "directory fsync", c->seg,
                     c->seg ? c->seg->size : 0, g->target);
    }
    sc_free(c);
    g->pending--;
    int64_t w0 = log->written, d0 = log->durable;
    groups_advance(log);
    /* the deferred commits' group; with uncommitted appends waiting, their
     * st_log_commit (due in the owner's same loop turn) queues it instead */
    if (log->sync_deferred && !log->ghead && !log->failed && !log->ucur) {
        log->sync_deferred = 0;
        (void)st__log_sync_group(log, 0, NULL, NULL); /* fails the log on error */
    }
    process(log);
    progress(log, w0, d0);
}

static int queue_sync(st_log_t *log, st__group_t *g, st_segment_t *seg)
{
    sync_ctx_t *c = sc_malloc(sizeof *c);
    int rc;

    if (!c)
        return SC_ERR_NO_MEMORY;
    c->g = g;
    c->seg = seg;
    rc = st_io_sync(log->io, seg ? seg->fd : log->dir_fd, sync_done, c);
    if (rc) {
        sc_free(c);
        return rc;
    }
    if (seg) {
        seg->inflight++;
        seg->unsynced = 0;
    }
    g->pending++;
    return 0;
}

int st__log_sync_group(st_log_t *log, int force, st_append_cb cb, void *arg)
{
    st__group_t *g = sc_calloc(1, sizeof *g);
    int rc = 0, n;

    if (!g)
        return SC_ERR_NO_MEMORY;
    g->log = log;
    g->target = log->leo;
    g->cb = cb;
    g->arg = arg;
    /* linked before its syncs are queued, in FIFO order with earlier groups */
    if (log->gtail)
        log->gtail->next = g;
    else
        log->ghead = g;
    log->gtail = g;
    g->pending++; /* guard: no completion before every sync is queued */
    for (unsigned i = 0; i < log->nsegs && !rc; i++) {
        st_segment_t *seg = log->segs[i];
        if (seg->unsynced || (force && i + 1 == log->nsegs))
            rc = queue_sync(log, g, seg);
    }
    if (!rc && log->dir_dirty) {
        rc = queue_sync(log, g, NULL);
        if (!rc)
            log->dir_dirty = 0;
    }
    if (rc) {
        g->res = rc;
        st__log_fail(log, rc, "queueing fdatasync", NULL, 0, log->leo);
    } else {
        log->unsynced_msgs = 0;
        log->last_sync_ms = sc_now_ms();
    }
    g->pending--;
    n = st_io_submit(log->io);
    if (n < 0 && !rc) {
        rc = n;
        st__log_fail(log, n, "io submit", NULL, 0, log->leo);
    }
    if (g->pending == 0) /* nothing was queued (or all failed to queue) */
        groups_advance(log);
    return rc;
}

/* Marks every uncommitted append committed, waiting for a sync or not. */
static void commit_appends(st_log_t *log, int wait_sync)
{
    for (st__append_t *a = log->ucur; a; a = a->next) {
        a->committed = 1;
        a->wait_sync = (uint8_t)wait_sync;
    }
    log->ucur = NULL;
}

static int have_uncommitted(const st_log_t *log) { return log->ucur != NULL; }

int st_log_commit(st_log_t *log)
{
    int rc = 0, n, sync_now;

    if (!have_uncommitted(log))
        return log->failed ? SC_ERR_LOG_FAILED : 0;
    if (!log->failed && log->gaps_upto > log->clean_upto) {
        rc = st_cleaner_checkpoint_set(log->dir, log->gaps_upto);
        if (rc)
            st__log_fail(log, rc, "raising the cleaner checkpoint over copied offset gaps", NULL,
                         0, log->gaps_upto);
        else
            log->clean_upto = log->gaps_upto;
    }
    if (log->failed) {
        commit_appends(log, 0);
        n = st_io_submit(log->io); /* let their writes finish so buffers come back */
        (void)n;
        process(log);
        return SC_ERR_LOG_FAILED;
    }
    int64_t w0 = log->written, d0 = log->durable;
    sync_now = log->unsynced_msgs >= log->cfg.flush_messages;
    commit_appends(log, sync_now);
    if (sync_now && !log->ghead) {
        log->sync_deferred = 0;
        rc = st__log_sync_group(log, 0, NULL, NULL);
    } else {
        if (sync_now)
            log->sync_deferred = 1; /* sync_done queues it */
        n = st_io_submit(log->io);
        if (n < 0) {
            rc = n;
            st__log_fail(log, n, "io submit", NULL, 0, log->leo);
        }
    }
    process(log);
    progress(log, w0, d0);
    if (rc)
        return log->failed ? SC_ERR_LOG_FAILED : rc;
    return 0;
}

int st_log_sync_async(st_log_t *log, st_append_cb cb, void *arg)
{
    int rc;

    if (log->failed)
        return SC_ERR_LOG_FAILED;
    commit_appends(log, 1);
    rc = st__log_sync_group(log, 1, cb, arg);
    process(log);
    return rc ? (log->failed ? SC_ERR_LOG_FAILED : rc) : 0;
}

static int busy(const st_log_t *log)
{
    if (log->head || log->ghead)
        return 1;
    for (unsigned i = 0; i < log->nsegs; i++)
        if (log->segs[i]->inflight)
            return 1;
    return 0;
}

int st__log_quiesce(st_log_t *log)
{
    int rc = 0;

    for (;;) {
        if (have_uncommitted(log))
            (void)st_log_commit(log);
        if (!busy(log))
            break;
        if ((rc = st_io_drain(log->io)))
            break;
        if (busy(log) && !have_uncommitted(log) && st_io_pending(log->io) == 0) {
            /* something waits for an operation nobody queued: a bug, never spin */
            SC_ERROR("storage", "%s: appends stuck after draining the io", log->dir);
            rc = SC_ERR_UNKNOWN_SERVER;
            break;
        }
    }
    return rc;
}

int st__log_segs_reserve(st_log_t *log)
{
    if (log->nsegs < log->segs_cap)
        return 0;
    unsigned cap = log->segs_cap ? log->segs_cap * 2 : 8;
    st_segment_t **v = sc_realloc(log->segs, cap * sizeof *v);
    if (!v)
        return SC_ERR_NO_MEMORY;
    log->segs = v;
    log->segs_cap = cap;
    return 0;
}

int st__log_roll(st_log_t *log, int64_t now_ms)
{
    st_segment_t *old = log->segs[log->nsegs - 1], *seg;
    int rc;

    if (old->size == 0)
        return 0;
    if ((rc = st__log_segs_reserve(log)))
        return rc;
    if ((rc = st_segment_create(log->dir, log->leo, log->cfg.segment_index_bytes, now_ms, &seg))) {
        SC_ERROR("storage", "%s: cannot create segment %" PRId64 ": %s", log->dir, log->leo,
                 sc_err_str(rc));
        return rc;
    }
    old->next_offset = log->leo;
    rc = st_segment_deactivate(old);
    if (rc)
        SC_WARN("storage", "%s: trimming indexes at roll: %s (rebuilt at next open if bad)",
                old->path, sc_err_str(rc));
    log->segs[log->nsegs++] = seg;
    log->dir_dirty = 1;
    SC_DEBUG("storage", "%s: rolled to segment %" PRId64 " (previous %" PRIu64 " bytes)", log->dir,
             seg->base, old->size);
    return 0;
}

static int should_roll(const st_log_t *log, size_t len, int nbatches, int64_t noffsets,
                       int64_t now_ms)
{
    const st_segment_t *seg = log->segs[log->nsegs - 1];

    if (seg->size == 0)
        return 0;
    return seg->size + len > (uint64_t)log->cfg.segment_bytes ||
           now_ms - seg->created_ms >= log->cfg.segment_ms ||
           st_index_room(seg->oidx) < (uint32_t)nbatches ||
           st_index_room(seg->tidx) < (uint32_t)nbatches + 1 ||
           log->leo + noffsets - 1 - seg->base > INT32_MAX;
}

int st_log_append(st_log_t *log, void *buf, size_t len, int32_t leader_epoch, st_append_cb cb,
                  void *arg, int64_t *base_offset, int64_t *leo)
{
    return st_log_append_ex(log, buf, len, leader_epoch, 0, cb, arg, base_offset, leo);
}

void st_log_set_progress_cb(st_log_t *log, st_log_progress_cb cb, void *arg)
{
    log->progress_cb = cb;
    log->progress_arg = arg;
}

int64_t st_log_committed_offset(const st_log_t *log)
{
    return log->cfg.flush_messages <= 1 ? st_log_durable_offset(log) : st_log_written_offset(log);
}

/* For ST_APPEND_KEEP_OFFSETS: checks that the batches of buf[0..len) (each
 * validated with gaps allowed: a compacted leader's batches may hold fewer
 * records than their offset range) continue the log at or after leo, in
 * ascending order, with leader epochs that never go back. *first / *end =
 * the first batch's base / last offset + 1; *gapped = offsets are skipped
 * somewhere (before, between or inside the batches). */
static int keep_check(const st_log_t *log, const uint8_t *p, size_t len, int *nbatches,
                      int64_t *first, int64_t *end, int *gapped)
{
    int64_t next = log->leo;
    int32_t epoch = st__epochs_latest(&log->epochs);
    int n = 0, rc;

    *gapped = 0;
    for (size_t pos = 0; pos < len;) {
        st_batch_hdr_t h;
        if ((rc = st_batch_validate(p + pos, len - pos, 1, &h)))
            return rc;
        if (h.base_offset < next)
            return SC_ERR_OFFSET_OUT_OF_RANGE; /* overlaps what the log has */
        if (h.base_offset > ST_OFFSET_MAX - h.last_offset_delta - 1)
            return SC_ERR_OFFSET_OUT_OF_RANGE;
        if (h.leader_epoch < epoch)
            return SC_ERR_FENCED_LEADER_EPOCH;
        if (h.base_offset > next || h.records_count != (int64_t)h.last_offset_delta + 1)
            *gapped = 1;
        if (n == 0)
            *first = h.base_offset;
        epoch = h.leader_epoch;
        next = st_batch_last_offset(&h) + 1;
        pos += (size_t)h.length + ST_BATCH_LOG_OVERHEAD;
        n++;
    }
    *nbatches = n;
    *end = next;
    return 0;
}

/* Records the leader epochs of a KEEP_OFFSETS buffer: each epoch newer than
 * the history's latest starts at the base offset of its first batch. */
static int keep_epochs(st_log_t *log, const uint8_t *p, size_t len)
{
    for (size_t pos = 0; pos < len;) {
        st_batch_hdr_t h;
        st_batch_hdr_decode(p + pos, len - pos, &h);
        if (h.leader_epoch >= 0 &&
            h.leader_epoch > st__epochs_latest(&log->epochs)) {
            int rc = st__epochs_assign(&log->epochs, h.leader_epoch, h.base_offset);
            if (rc < 0)
                return rc;
            if (rc > 0)
                log->epochs_dirty = 1;
        }
        pos += (size_t)h.length + ST_BATCH_LOG_OVERHEAD;
    }
    return 0;
}

int st_log_append_ex(st_log_t *log, void *buf, size_t len, int32_t leader_epoch, int flags,
                     st_append_cb cb, void *arg, int64_t *base_offset, int64_t *leo)
{
    uint8_t *p = buf;
    st__append_t *a = NULL;
    st_segment_t *seg;
    int nbatches, rc, keep = (flags & ST_APPEND_KEEP_OFFSETS) != 0, gapped = 0;
    int64_t noffsets, off, first, end, now = sc_now_ms();
    size_t pos;

    if (log->failed)
        return SC_ERR_LOG_FAILED;
    if (!buf || len == 0)
        return SC_ERR_CORRUPT_MESSAGE;
    if (keep) {
        if ((rc = keep_check(log, p, len, &nbatches, &first, &end, &gapped)))
            return rc;
        noffsets = end - log->leo; /* the span the log end moves over */
    } else {
        if ((rc = st_batch_validate_all(buf, len, &nbatches, &noffsets)))
            return rc;
        if (log->leo > ST_OFFSET_MAX - noffsets)
            return SC_ERR_OFFSET_OUT_OF_RANGE;
        first = log->leo;
        end = log->leo + noffsets;
    }
    if (len > (uint64_t)log->cfg.segment_bytes)
        return SC_ERR_MESSAGE_TOO_LARGE;
    if (noffsets - 1 > INT32_MAX && !keep)
        return SC_ERR_MESSAGE_TOO_LARGE;
    if (should_roll(log, len, nbatches, noffsets, now) && (rc = st__log_roll(log, now)))
        return rc;
    if (end - 1 - log->segs[log->nsegs - 1]->base > INT32_MAX)
        return SC_ERR_OFFSET_OUT_OF_RANGE; /* a gap too wide for relative index offsets */
    if (keep) {
        if ((rc = keep_epochs(log, p, len)))
            return rc;
    } else {
        if (leader_epoch < st__epochs_latest(&log->epochs))
            return SC_ERR_FENCED_LEADER_EPOCH; /* epochs never go back along the log */
        /* a new epoch is durable in leader-epoch-checkpoint before any data
         * carrying it is queued (recovery relies on it; see st_log.c) */
        if (leader_epoch >= 0 && leader_epoch > st__epochs_latest(&log->epochs)) {
            rc = st__epochs_assign(&log->epochs, leader_epoch, log->leo);
            if (rc < 0)
                return rc;
            if (rc > 0)
                log->epochs_dirty = 1;
        }
    }
    if (log->epochs_dirty && (rc = st__log_store_epochs(log)))
        return rc;
    /* Offsets skipped by a copied compacted log: recovery accepts gaps only
     * below the cleaner checkpoint, so st_log_commit raises it over these
     * batches before any append it commits can complete (one checkpoint
     * write per commit, not per batch). A crash before that loses only
     * appends not yet completed, which a follower has not reported. The
     * records count as cleaned here, as they were on the leader. */
    if (gapped && log->gaps_upto < end) {
        log->gaps_upto = end;
        log->segs[log->nsegs - 1]->allow_gaps = 1;
    }
    if (!(a = sc_calloc(1, sizeof *a)))
        return SC_ERR_NO_MEMORY;
    /* offsets go into the buffer before the write is queued */
    off = log->leo;
    for (pos = 0; !keep && pos < len;) {
        int32_t blen = (int32_t)sc_load_be32(p + pos + ST_BATCH_OFF_LENGTH);
        int32_t delta = (int32_t)sc_load_be32(p + pos + ST_BATCH_OFF_LAST_OFFSET_DELTA);
        st_batch_set_offset(p + pos, off, leader_epoch);
        off += (int64_t)delta + 1;
        pos += (size_t)blen + ST_BATCH_LOG_OVERHEAD;
    }
    seg = log->segs[log->nsegs - 1];
    a->log = log;
    a->seg = seg;
    a->cb = cb;
    a->arg = arg;
    a->ack_written = (flags & ST_APPEND_ACK_WRITTEN) != 0;
    a->base = first;
    a->end = end;
    a->pos = seg->size;
    a->len = len;
    if ((rc = st_io_write(log->io, seg->fd, buf, len, seg->size, write_done, a))) {
        sc_free(a);
        return rc;
    }
    seg->inflight++;
    seg->unsynced = 1;
    for (pos = 0; pos < len;) {
        st_batch_hdr_t h;
        st_batch_hdr_decode(p + pos, len - pos, &h);
        st_segment_index_batch(seg, &h, seg->size + pos, log->cfg.index_interval_bytes);
        pos += (size_t)h.length + ST_BATCH_LOG_OVERHEAD;
    }
    seg->size += len;
    log->size_bytes += len;
    log->leo = a->end;
    log->unsynced_msgs += end - first;
    if (log->tail)
        log->tail->next = a;
    else
        log->head = a;
    log->tail = a;
    if (!log->wcur)
        log->wcur = a;
    if (!log->ucur)
        log->ucur = a;
    *base_offset = a->base;
    *leo = log->leo;
    return 0;
}
