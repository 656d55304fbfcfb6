/*
 * st_io.c -- the backend-independent half of st_io (see st_io.h for the
 * contract and st_io_int.h for the split).
 *
 * Invariants:
 *   - io->writes lists every write whose callback has not run, in queue
 *     (seq) order; a sync is started only when no write with a smaller seq is
 *     on it, which gives "a sync covers the writes queued before it" on every
 *     backend, including io_uring where SQEs may complete in any order.
 *   - io->held is FIFO by seq; syncs leave it in order.
 *   - io->pending counts every op accepted and not yet called back.
 */
#include "st_io_int.h"

#include "sc_err.h"
#include "sc_log.h"
#include "sc_mem.h"

#include <errno.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

static st__io_op_t *op_get(st_io_t *io)
{
    st__io_op_t *op = io->free_ops;
    if (op)
        io->free_ops = op->next;
    else if (!(op = sc_malloc(sizeof *op)))
        return NULL;
    memset(op, 0, sizeof *op);
    op->seq = io->next_seq++;
    return op;
}

static void op_put(st_io_t *io, st__io_op_t *op)
{
    op->next = io->free_ops;
    io->free_ops = op;
}

static void writes_remove(st__io_op_t *op)
{
    op->prev->next = op->next;
    op->next->prev = op->prev;
    op->next = op->prev = NULL;
}

/* An inline write: the page-cache copy happens now, on the owner thread;
 * the result waits on inline_done for the next st_io_poll, so callbacks still
 * run only from poll and the contract is unchanged -- including "the event fd
 * is readable while completions wait": the first inline completion of a poll
 * cycle bumps it, and st_io_poll clears it again. */
static void write_inline(st_io_t *io, st__io_op_t *op)
{
    size_t want = op->len - op->done;
    ssize_t n = pwrite(op->fd, op->buf + op->done, want, (off_t)(op->off + op->done));
    op->res = n < 0 ? -errno : (int)n;
    /* Whole: the bytes are in the page cache now, so a sync queued from here
     * on covers them -- take the write off the list that holds syncs back. */
    if (n == (ssize_t)want)
        writes_remove(op);
    if (!io->inline_signalled) {
        int efd = io->be->event_fd(io);
        uint64_t one = 1;
        if (efd >= 0 && write(efd, &one, sizeof one) == sizeof one)
            io->inline_signalled = 1;
    }
    op->bnext = NULL;
    if (io->inline_tail)
        io->inline_tail->bnext = op;
    else
        io->inline_done = op;
    io->inline_tail = op;
}

static int start(st_io_t *io, st__io_op_t *op)
{
    if (io->inline_writes && op->type == ST__OP_WRITE) {
        write_inline(io, op);
        return 0;
    }
    int rc = io->be->start(io, op);
    if (rc == 0)
        io->started++;
    return rc;
}

/* Completes the inline writes done so far (and any they restart). */
static int reap_inline(st_io_t *io)
{
    int n = 0;
    while (io->inline_done) {
        st__io_op_t *op = io->inline_done;
        io->inline_done = op->bnext;
        if (!io->inline_done)
            io->inline_tail = NULL;
        st__io_complete(io, op, op->res);
        n++;
    }
    return n;
}

int st_io_has_ready(const st_io_t *io) { return io->inline_done != NULL; }

int st_io_new(st_io_kind_t kind, const st_io_opts_t *opts, st_io_t **out)
{
    static atomic_int logged;
    st_io_opts_t dflt = {0};
    st_io_t *io;
    int rc;

    if (!opts)
        opts = &dflt;
    if (!(io = sc_calloc(1, sizeof *io)))
        return SC_ERR_NO_MEMORY;
    io->writes.next = io->writes.prev = &io->writes;
    switch (kind) {
    case ST_IO_URING: io->be = &st__io_uring_backend; break;
    case ST_IO_THREADS: io->be = &st__io_threads_backend; break;
    case ST_IO_FAULT: io->be = &st__io_fault_backend; break;
    case ST_IO_AUTO:
    default: io->be = &st__io_uring_backend; break;
    }
    io->inline_writes = opts->writes == ST_IO_WRITES_INLINE && io->be != &st__io_fault_backend;
    rc = io->be->init(io, opts);
    if (rc && kind == ST_IO_AUTO) {
        SC_WARN("storage", "io_uring unavailable (%s); using the thread-pool io backend",
                sc_err_str(rc));
        io->be = &st__io_threads_backend;
        rc = io->be->init(io, opts);
    }
    if (rc) {
        sc_free(io);
        return rc;
    }
    if (kind == ST_IO_AUTO && !atomic_exchange(&logged, 1))
        SC_INFO("storage", "io backend: %s", io->be->name);
    *out = io;
    return 0;
}

void st_io_free(st_io_t *io)
{
    if (!io)
        return;
    st_io_drain(io);
    io->be->fini(io);
    while (io->free_ops) {
        st__io_op_t *op = io->free_ops;
        io->free_ops = op->next;
        sc_free(op);
    }
    sc_free(io);
}

int st_io_write(st_io_t *io, int fd, const void *buf, size_t len, uint64_t off, st_io_cb cb,
                void *arg)
{
    st__io_op_t *op;
    int rc;

    if (len == 0 || len > INT32_MAX)
        return -EINVAL;
    if (!(op = op_get(io)))
        return SC_ERR_NO_MEMORY;
    op->type = ST__OP_WRITE;
    op->fd = fd;
    op->buf = buf;
    op->len = len;
    op->off = off;
    op->cb = cb;
    op->arg = arg;
    /* append to the unfinished-writes list (seq order) */
    op->prev = io->writes.prev;
    op->next = &io->writes;
    io->writes.prev->next = op;
    io->writes.prev = op;
    if ((rc = start(io, op))) {
        writes_remove(op);
        op_put(io, op);
        return rc;
    }
    io->pending++;
    return 0;
}

int st_io_sync(st_io_t *io, int fd, st_io_cb cb, void *arg)
{
    st__io_op_t *op;
    int rc;

    if (!(op = op_get(io)))
        return SC_ERR_NO_MEMORY;
    op->type = ST__OP_SYNC;
    op->fd = fd;
    op->cb = cb;
    op->arg = arg;
    if (io->writes.next != &io->writes) {
        /* an earlier write is unfinished: hold the sync until it is done */
        if (io->held_tail)
            io->held_tail->next = op;
        else
            io->held = op;
        io->held_tail = op;
    } else if ((rc = start(io, op))) {
        op_put(io, op);
        return rc;
    }
    io->pending++;
    return 0;
}

/* Starts held syncs that no unfinished write precedes any more. */
static void release_held(st_io_t *io)
{
    uint64_t oldest = io->writes.next != &io->writes ? io->writes.next->seq : UINT64_MAX;

    while (io->held && io->held->seq < oldest) {
        st__io_op_t *op = io->held;
        io->held = op->next;
        if (!io->held)
            io->held_tail = NULL;
        op->next = NULL;
        int rc = start(io, op);
        if (rc) {
            st__io_complete(io, op, rc);
        }
    }
}

static void finish(st_io_t *io, st__io_op_t *op, int res)
{
    st_io_cb cb = op->cb;
    void *arg = op->arg;

    if (op->type == ST__OP_WRITE) {
        if (op->prev) /* inline writes leave the list early */
            writes_remove(op);
        io->stats.writes++;
        if (res >= 0)
            io->stats.bytes += op->len;
    } else {
        io->stats.syncs++;
    }
    if (res < 0)
        io->stats.failed++;
    op_put(io, op);
    io->pending--;
    if (op->type == ST__OP_WRITE)
        release_held(io);
    if (cb)
        cb(arg, res);
}

void st__io_complete(st_io_t *io, st__io_op_t *op, int res)
{
    if (res == -EINTR || res == -EAGAIN)
        goto again;
    if (op->type == ST__OP_WRITE && res >= 0) {
        if (res == 0) {
            res = -EIO; /* no progress on a regular file: do not spin */
            goto done;
        }
        op->done += (size_t)res;
        if (op->done < op->len)
            goto again;
        res = (int)op->len;
    }
done:
    finish(io, op, res);
    return;
again: {
    int rc = start(io, op);
    if (rc)
        finish(io, op, rc);
}
}

int st_io_submit(st_io_t *io)
{
    if (!io->started)
        return 0;
    int rc = io->be->submit(io);
    if (rc >= 0)
        io->started = 0;
    return rc;
}

int st_io_poll(st_io_t *io, int timeout_ms)
{
    int rc;

    if (io->started && (rc = st_io_submit(io)) < 0)
        return rc;
    if (io->pending == 0)
        return 0;
    int n = reap_inline(io);
    if (io->inline_signalled) {
        /* Clear our bump. A backend completion signalled on the same fd is
         * not lost: if anything is still pending, the reap below looks. */
        uint64_t v;
        ssize_t r = read(io->be->event_fd(io), &v, sizeof v);
        (void)r;
        io->inline_signalled = 0;
    }
    if (io->started && (rc = st_io_submit(io)) < 0)
        return rc;
    if (io->pending == 0)
        return n;
    rc = io->be->reap(io, n ? 0 : timeout_ms);
    if (rc >= 0)
        rc += n + reap_inline(io);
    if (rc >= 0 && io->started) {
        int s = st_io_submit(io);
        if (s < 0)
            return s;
    }
    return rc;
}

unsigned st_io_pending(const st_io_t *io) { return io->pending; }

int st_io_drain(st_io_t *io)
{
    while (io->pending) {
        int rc = st_io_poll(io, -1);
        if (rc < 0 && rc != -EINTR && rc != -ETIME)
            return rc;
    }
    return 0;
}

int st_io_event_fd(const st_io_t *io) { return io->be->event_fd(io); }

st_io_kind_t st_io_kind(const st_io_t *io) { return io->be->kind; }

const char *st_io_name(const st_io_t *io) { return io->be->name; }

void st_io_stats(const st_io_t *io, st_io_stats_t *out) { *out = io->stats; }
