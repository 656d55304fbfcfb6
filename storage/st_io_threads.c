/*
 * st_io_threads.c -- the portable backend: one worker thread per st_io_t runs
 * pwrite and fdatasync in submission order; finished ops go back on a done
 * queue and an eventfd is written, so the owner thread reaps them exactly as
 * it reaps io_uring completions. Used when io_uring cannot be set up (old
 * kernels, seccomp profiles that forbid it).
 *
 * Locks: `lock` guards the two queues and `stop`; the owner thread and the
 * worker are the only parties.
 */
#include "st_io_int.h"

#include "sc_err.h"
#include "sc_mem.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <unistd.h>

typedef struct {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    st__io_op_t *todo, *todo_tail; /* started, not yet given to the worker */
    st__io_op_t *queue, *queue_tail; /* submitted, for the worker */
    st__io_op_t *done, *done_tail;
    int stop;
    int efd;
} pool_t;

static void push(st__io_op_t **head, st__io_op_t **tail, st__io_op_t *op)
{
    op->bnext = NULL;
    if (*tail)
        (*tail)->bnext = op;
    else
        *head = op;
    *tail = op;
}

static void *worker(void *arg)
{
    pool_t *p = arg;

    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (!p->queue && !p->stop)
            pthread_cond_wait(&p->cond, &p->lock);
        if (!p->queue && p->stop)
            break;
        st__io_op_t *op = p->queue;
        p->queue = op->bnext;
        if (!p->queue)
            p->queue_tail = NULL;
        pthread_mutex_unlock(&p->lock);

        if (op->type == ST__OP_WRITE) {
            ssize_t n = pwrite(op->fd, op->buf + op->done, op->len - op->done,
                               (off_t)(op->off + op->done));
            op->res = n < 0 ? -errno : (int)n;
        } else {
            op->res = fdatasync(op->fd) ? -errno : 0;
        }

        pthread_mutex_lock(&p->lock);
        push(&p->done, &p->done_tail, op);
        uint64_t one = 1;
        ssize_t w = write(p->efd, &one, sizeof one);
        (void)w;
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

static int pool_init(st_io_t *io, const st_io_opts_t *opts)
{
    pool_t *p = sc_calloc(1, sizeof *p);
    int rc;

    (void)opts;
    if (!p)
        return SC_ERR_NO_MEMORY;
    if ((p->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
        rc = -errno;
        sc_free(p);
        return rc;
    }
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->cond, NULL);
    if ((rc = pthread_create(&p->thread, NULL, worker, p))) {
        close(p->efd);
        sc_free(p);
        return -rc;
    }
    io->impl = p;
    return 0;
}

static void pool_fini(st_io_t *io)
{
    pool_t *p = io->impl;
    pthread_mutex_lock(&p->lock);
    p->stop = 1;
    pthread_cond_signal(&p->cond);
    pthread_mutex_unlock(&p->lock);
    pthread_join(p->thread, NULL);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->cond);
    close(p->efd);
    sc_free(p);
}

static int pool_start(st_io_t *io, st__io_op_t *op)
{
    pool_t *p = io->impl;
    push(&p->todo, &p->todo_tail, op); /* owner-thread only: no lock */
    return 0;
}

static int pool_submit(st_io_t *io)
{
    pool_t *p = io->impl;
    int n = 0;

    if (!p->todo)
        return 0;
    for (st__io_op_t *op = p->todo; op; op = op->bnext)
        n++;
    pthread_mutex_lock(&p->lock);
    if (p->queue_tail)
        p->queue_tail->bnext = p->todo;
    else
        p->queue = p->todo;
    p->queue_tail = p->todo_tail;
    pthread_cond_signal(&p->cond);
    pthread_mutex_unlock(&p->lock);
    p->todo = p->todo_tail = NULL;
    return n;
}

/* Takes the done queue. The eventfd is cleared first, so an op the worker
 * finishes after the take writes it again and the owner's loop wakes. */
static st__io_op_t *take_done(pool_t *p)
{
    st__io_op_t *done;
    uint64_t v;
    ssize_t r = read(p->efd, &v, sizeof v);
    (void)r;
    pthread_mutex_lock(&p->lock);
    done = p->done;
    p->done = p->done_tail = NULL;
    pthread_mutex_unlock(&p->lock);
    return done;
}

static int pool_reap(st_io_t *io, int timeout_ms)
{
    pool_t *p = io->impl;
    st__io_op_t *done = take_done(p);
    int n = 0;

    if (!done && timeout_ms != 0) {
        struct pollfd pfd = {.fd = p->efd, .events = POLLIN};
        if (poll(&pfd, 1, timeout_ms) < 0 && errno != EINTR)
            return -errno;
        done = take_done(p);
    }
    while (done) {
        st__io_op_t *op = done;
        done = op->bnext;
        st__io_complete(io, op, op->res);
        n++;
    }
    return n;
}

static int pool_event_fd(const st_io_t *io) { return ((const pool_t *)io->impl)->efd; }

const st__io_backend_t st__io_threads_backend = {
    .name = "threads",
    .kind = ST_IO_THREADS,
    .init = pool_init,
    .fini = pool_fini,
    .start = pool_start,
    .submit = pool_submit,
    .reap = pool_reap,
    .event_fd = pool_event_fd,
};
