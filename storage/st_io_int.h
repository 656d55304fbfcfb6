/*
 * st_io_int.h -- what the io backends share: the operation record and the
 * backend vtable. Private to storage/st_io*.c.
 *
 * The generic layer (st_io.c) owns ordering and bookkeeping: it keeps every
 * unfinished write on a list in queue order, holds a sync back until no write
 * queued before it is unfinished, continues short writes, counts stats and
 * runs callbacks. A backend only starts single operations and reports their
 * raw results through st__io_complete().
 */
#ifndef ST_IO_INT_H
#define ST_IO_INT_H

#include "st_io.h"

#include <stdint.h>

enum { ST__OP_WRITE = 1, ST__OP_SYNC = 2 };

typedef struct st__io_op {
    struct st__io_op *next, *prev; /* on io->writes (unfinished writes) or a queue */
    struct st__io_op *bnext;       /* backend's private queue link */
    uint64_t seq;                  /* queue order */
    int type;
    int fd;
    const uint8_t *buf;
    size_t len;  /* total bytes */
    size_t done; /* bytes written so far */
    uint64_t off;
    st_io_cb cb;
    void *arg;
    int res; /* raw result of the last start, set by the backend */
} st__io_op_t;

typedef struct {
    const char *name;
    st_io_kind_t kind;
    int (*init)(st_io_t *io, const st_io_opts_t *opts); /* 0 or -errno */
    void (*fini)(st_io_t *io);
    /* Starts op (write of op->len - op->done bytes at op->off + op->done, or
     * fdatasync). May only queue it until submit. 0 or -errno. */
    int (*start)(st_io_t *io, st__io_op_t *op);
    int (*submit)(st_io_t *io); /* count submitted or -errno */
    /* Reaps completions, calling st__io_complete for each; waits up to
     * timeout_ms when none is ready (-1 = forever). Count reaped or -errno. */
    int (*reap)(st_io_t *io, int timeout_ms);
    int (*event_fd)(const st_io_t *io);
} st__io_backend_t;

struct st_io {
    const st__io_backend_t *be;
    void *impl; /* the backend's state */
    uint64_t next_seq;
    st__io_op_t writes;   /* sentinel: unfinished writes in queue order */
    st__io_op_t *held;    /* syncs waiting for earlier writes (FIFO, via next) */
    st__io_op_t *held_tail;
    st__io_op_t *free_ops; /* recycled op records */
    unsigned pending;      /* ops whose callbacks have not run */
    unsigned started;      /* ops started since the last submit */
    int inline_writes;     /* writes run in start() (st_io_opts_t.writes) */
    int inline_signalled;  /* event fd bumped for inline completions */
    st__io_op_t *inline_done, *inline_tail; /* their completions, for the next poll */
    st_io_stats_t stats;
    st_io_faults_t faults; /* ST_IO_FAULT only */
};

/* Called by a backend when op's start finished with res (bytes or -errno). */
void st__io_complete(st_io_t *io, st__io_op_t *op, int res);

extern const st__io_backend_t st__io_uring_backend;
extern const st__io_backend_t st__io_threads_backend;
extern const st__io_backend_t st__io_fault_backend;

#endif
