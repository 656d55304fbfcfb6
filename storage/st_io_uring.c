/*
 * st_io_uring.c -- the io_uring backend.
 *
 * One ring per st_io_t (per shard). Writes are IORING_OP_WRITE straight from
 * the caller's buffer; syncs are IORING_OP_FSYNC with IORING_FSYNC_DATASYNC.
 * SQEs are only filled by start() and handed to the kernel together by
 * submit(), so the appends of one loop turn go down in one io_uring_enter.
 * When the SQ is full, start() submits what is there to make room; if the
 * kernel still cannot take more, the op waits on a backlog that reap() moves
 * into the ring as completions free space.
 *
 * The ring's eventfd (registered with io_uring_register_eventfd) is what an
 * event loop watches; reap() clears it before looking at the CQ.
 */
#include "st_io_int.h"

#include "sc_err.h"
#include "sc_mem.h"

#include <errno.h>
#include <liburing.h>
#include <sys/eventfd.h>
#include <unistd.h>

typedef struct {
    struct io_uring ring;
    int efd;
    st__io_op_t *backlog, *backlog_tail;
} uring_t;

static int uring_init(st_io_t *io, const st_io_opts_t *opts)
{
    unsigned depth = opts->queue_depth ? opts->queue_depth : 256;
    uring_t *u = sc_calloc(1, sizeof *u);
    int rc;

    if (!u)
        return SC_ERR_NO_MEMORY;
    if ((rc = io_uring_queue_init(depth, &u->ring, 0)) < 0)
        goto err_free;
    if ((u->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
        rc = -errno;
        goto err_ring;
    }
    if ((rc = io_uring_register_eventfd(&u->ring, u->efd)) < 0)
        goto err_efd;
    io->impl = u;
    return 0;
err_efd:
    close(u->efd);
err_ring:
    io_uring_queue_exit(&u->ring);
err_free:
    sc_free(u);
    return rc;
}

static void uring_fini(st_io_t *io)
{
    uring_t *u = io->impl;
    io_uring_queue_exit(&u->ring);
    close(u->efd);
    sc_free(u);
}

static void prep(struct io_uring_sqe *sqe, st__io_op_t *op)
{
    if (op->type == ST__OP_WRITE)
        io_uring_prep_write(sqe, op->fd, op->buf + op->done, (unsigned)(op->len - op->done),
                            op->off + op->done);
    else
        io_uring_prep_fsync(sqe, op->fd, IORING_FSYNC_DATASYNC);
    io_uring_sqe_set_data(sqe, op);
}

static int uring_start(st_io_t *io, st__io_op_t *op)
{
    uring_t *u = io->impl;
    struct io_uring_sqe *sqe;

    if (!u->backlog) {
        sqe = io_uring_get_sqe(&u->ring);
        if (!sqe) {
            io_uring_submit(&u->ring);
            sqe = io_uring_get_sqe(&u->ring);
        }
        if (sqe) {
            prep(sqe, op);
            return 0;
        }
    }
    op->bnext = NULL;
    if (u->backlog_tail)
        u->backlog_tail->bnext = op;
    else
        u->backlog = op;
    u->backlog_tail = op;
    return 0;
}

static void backlog_move(uring_t *u)
{
    struct io_uring_sqe *sqe;
    while (u->backlog && (sqe = io_uring_get_sqe(&u->ring))) {
        st__io_op_t *op = u->backlog;
        u->backlog = op->bnext;
        if (!u->backlog)
            u->backlog_tail = NULL;
        prep(sqe, op);
    }
}

static int uring_submit(st_io_t *io)
{
    uring_t *u = io->impl;
    int rc;
    backlog_move(u);
    do
        rc = io_uring_submit(&u->ring);
    while (rc == -EINTR);
    return rc;
}

static int uring_reap(st_io_t *io, int timeout_ms)
{
    uring_t *u = io->impl;
    struct io_uring_cqe *cqe;
    uint64_t v;
    int n = 0, rc;

    if (read(u->efd, &v, sizeof v) < 0 && errno != EAGAIN)
        return -errno;
    rc = io_uring_peek_cqe(&u->ring, &cqe);
    if (rc == -EAGAIN && timeout_ms != 0) {
        if (u->backlog)
            uring_submit(io);
        if (timeout_ms < 0) {
            rc = io_uring_wait_cqe(&u->ring, &cqe);
        } else {
            struct __kernel_timespec ts = {.tv_sec = timeout_ms / 1000,
                                           .tv_nsec = (long long)(timeout_ms % 1000) * 1000000};
            rc = io_uring_wait_cqe_timeout(&u->ring, &cqe, &ts);
        }
    }
    if (rc == -EAGAIN || rc == -ETIME || rc == -EINTR)
        return 0;
    if (rc < 0)
        return rc;
    while (io_uring_peek_cqe(&u->ring, &cqe) == 0) {
        st__io_op_t *op = io_uring_cqe_get_data(cqe);
        int res = cqe->res;
        io_uring_cqe_seen(&u->ring, cqe);
        st__io_complete(io, op, res);
        n++;
    }
    backlog_move(u);
    return n;
}

static int uring_event_fd(const st_io_t *io) { return ((const uring_t *)io->impl)->efd; }

const st__io_backend_t st__io_uring_backend = {
    .name = "io_uring",
    .kind = ST_IO_URING,
    .init = uring_init,
    .fini = uring_fini,
    .start = uring_start,
    .submit = uring_submit,
    .reap = uring_reap,
    .event_fd = uring_event_fd,
};
