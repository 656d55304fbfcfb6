/*
 * st_io_fault.c -- the test backend. Operations run synchronously, in order,
 * inside reap() (so inside st_io_poll), with the faults set by
 * st_io_fault_set injected: the Nth write or sync fails with a chosen errno,
 * writes are cut into short pieces, writes hit ENOSPC after a byte budget,
 * and, when sticky, every op after the first injected failure fails too.
 * Nothing here is thread-safe; tests own the io.
 */
#include "st_io_int.h"

#include "sc_err.h"
#include "sc_mem.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    st__io_op_t *ready, *ready_tail;
    long nwrites, nsyncs; /* distinct ops seen since st_io_fault_set */
    long bytes;
    int tripped; /* errno of the first injected failure, when sticky */
} fault_t;

static int fault_init(st_io_t *io, const st_io_opts_t *opts)
{
    (void)opts;
    fault_t *f = sc_calloc(1, sizeof *f);
    if (!f)
        return SC_ERR_NO_MEMORY;
    io->impl = f;
    return 0;
}

static void fault_fini(st_io_t *io) { sc_free(io->impl); }

static int fault_start(st_io_t *io, st__io_op_t *op)
{
    fault_t *f = io->impl;
    op->bnext = NULL;
    if (f->ready_tail)
        f->ready_tail->bnext = op;
    else
        f->ready = op;
    f->ready_tail = op;
    return 0;
}

static int fault_submit(st_io_t *io) { return 0; }

static int trip(st_io_t *io, fault_t *f, int err)
{
    if (io->faults.sticky)
        f->tripped = err;
    return -err;
}

static int run_write(st_io_t *io, fault_t *f, st__io_op_t *op)
{
    const st_io_faults_t *ft = &io->faults;
    size_t len = op->len - op->done;

    if (op->done == 0)
        f->nwrites++;
    if (f->tripped)
        return -f->tripped;
    if (op->done == 0 && ft->fail_write_nth && f->nwrites == ft->fail_write_nth)
        return trip(io, f, ft->fail_write_errno ? ft->fail_write_errno : EIO);
    if (ft->short_writes > 0 && len > (size_t)ft->short_writes)
        len = (size_t)ft->short_writes;
    if (ft->enospc_after > 0) {
        long budget = ft->enospc_after - f->bytes;
        if (budget <= 0)
            return trip(io, f, ENOSPC);
        if ((long)len > budget)
            len = (size_t)budget;
    }
    ssize_t n = pwrite(op->fd, op->buf + op->done, len, (off_t)(op->off + op->done));
    if (n < 0)
        return -errno;
    f->bytes += n;
    return (int)n;
}

static int run_sync(st_io_t *io, fault_t *f, st__io_op_t *op)
{
    const st_io_faults_t *ft = &io->faults;

    f->nsyncs++;
    if (f->tripped)
        return -f->tripped;
    if (ft->fail_sync_nth && f->nsyncs == ft->fail_sync_nth)
        return trip(io, f, ft->fail_sync_errno ? ft->fail_sync_errno : EIO);
    return fdatasync(op->fd) ? -errno : 0;
}

static int fault_reap(st_io_t *io, int timeout_ms)
{
    fault_t *f = io->impl;
    int n = 0;

    (void)timeout_ms;
    /* restarts (short writes) and released syncs append to ready: run them too */
    while (f->ready) {
        st__io_op_t *op = f->ready;
        f->ready = op->bnext;
        if (!f->ready)
            f->ready_tail = NULL;
        int res = op->type == ST__OP_WRITE ? run_write(io, f, op) : run_sync(io, f, op);
        st__io_complete(io, op, res);
        n++;
    }
    return n;
}

static int fault_event_fd(const st_io_t *io) { return -1; }

const st__io_backend_t st__io_fault_backend = {
    .name = "fault",
    .kind = ST_IO_FAULT,
    .init = fault_init,
    .fini = fault_fini,
    .start = fault_start,
    .submit = fault_submit,
    .reap = fault_reap,
    .event_fd = fault_event_fd,
};

void st_io_fault_set(st_io_t *io, const st_io_faults_t *faults)
{
    if (io->be != &st__io_fault_backend)
        return;
    fault_t *f = io->impl;
    io->faults = *faults;
    f->nwrites = f->nsyncs = f->bytes = 0;
    f->tripped = 0;
}
