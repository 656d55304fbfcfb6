/*
 * st_io -- the storage I/O backend: asynchronous positional writes and
 * fdatasync behind one interface, so the log does not care which runs below.
 *
 * Backends
 *   ST_IO_URING    io_uring: writes go straight from the caller's buffer,
 *                  queued SQEs are submitted together by st_io_submit.
 *   ST_IO_THREADS  portable fallback: pwrite + fdatasync on one worker thread,
 *                  in submission order.
 *   ST_IO_FAULT    test backend: runs pwrite/fdatasync inline at st_io_poll and
 *                  injects faults (fail the Nth write or sync with an errno,
 *                  short writes, ENOSPC after N bytes) and counts syncs.
 *   ST_IO_AUTO     io_uring if it can be set up (kernel, seccomp, memlock),
 *                  else threads. The choice is logged once.
 *
 * Threading: an st_io_t belongs to one thread (a shard). All calls, and every
 * completion callback, happen on that thread; callbacks run only inside
 * st_io_poll. st_io_event_fd gives an fd that becomes readable when
 * completions are waiting, for an event loop to watch.
 *
 * Ordering contract (what the log relies on for group commit):
 *   - A write completes only when all len bytes are written (short writes are
 *     continued internally) or with an error; res = len or -errno.
 *   - A sync on fd is started only after every write to that fd queued before
 *     it has completed, so when the sync completes with 0 those bytes are
 *     durable. res = 0 or -errno.
 *   - Buffers belong to the operation until its callback has run.
 */
#ifndef ST_IO_H
#define ST_IO_H

#include <stddef.h>
#include <stdint.h>

typedef struct st_io st_io_t;

typedef enum {
    ST_IO_AUTO = 0,
    ST_IO_URING = 1,
    ST_IO_THREADS = 2,
    ST_IO_FAULT = 3,
} st_io_kind_t;

/* res: bytes written (== len) for a write, 0 for a sync, or -errno. */
typedef void (*st_io_cb)(void *arg, int res);

typedef struct {
    unsigned queue_depth; /* io_uring SQ entries; 0 = 256 */
    /* Where writes run. ST_IO_WRITES_INLINE (default): pwrite on the owner
     * thread when the op starts -- a page-cache copy -- with its completion
     * delivered at the next st_io_poll like any other; syncs still go to the
     * ring / worker, where a blocking fdatasync cannot stall the owner.
     * ST_IO_WRITES_ASYNC: writes too go to the ring / worker. Measured on
     * ext4 (kernel 6.18), whose buffered writes io_uring cannot do without
     * blocking and hands to an io-wq thread: an async 16 KiB write cost
     * ~70 us against ~7 us inline (docs/benchmarks.md). ST_IO_FAULT always
     * runs writes inside st_io_poll, so tests can inject faults. */
    int writes;
} st_io_opts_t;

enum { ST_IO_WRITES_INLINE = 0, ST_IO_WRITES_ASYNC = 1 };

/* Creates a backend. opts may be NULL. Returns 0 and *out, or -errno
 * (ST_IO_URING when io_uring cannot be set up), SC_ERR_NO_MEMORY. */
int st_io_new(st_io_kind_t kind, const st_io_opts_t *opts, st_io_t **out);

/* Waits for every queued and in-flight operation, runs their callbacks, frees.
 * NULL is a no-op. */
void st_io_free(st_io_t *io);

/* Queues a write of len bytes at file offset off. The operation starts at the
 * next st_io_submit (a backend may start it earlier). Returns 0 or -errno /
 * SC_ERR_NO_MEMORY (nothing queued, cb will not run). */
int st_io_write(st_io_t *io, int fd, const void *buf, size_t len, uint64_t off, st_io_cb cb,
                void *arg);

/* Queues an fdatasync of fd, ordered after the writes to fd queued before it
 * (see the contract above). Same returns as st_io_write. */
int st_io_sync(st_io_t *io, int fd, st_io_cb cb, void *arg);

/* Hands every queued operation to the kernel or the worker. Returns the number
 * submitted or -errno. */
int st_io_submit(st_io_t *io);

/* Runs the callbacks of completed operations, waiting up to timeout_ms
 * (0 = don't wait, -1 = until at least one completes, if any is pending).
 * Returns how many callbacks ran, or -errno. */
int st_io_poll(st_io_t *io, int timeout_ms);

/* True when completions are ready for st_io_poll without any I/O (inline
 * writes done since the last poll). The event fd is readable then too; this
 * lets an owner that just committed poll at once without a loop round. */
int st_io_has_ready(const st_io_t *io);

/* Operations queued or in flight whose callbacks have not run yet. */
unsigned st_io_pending(const st_io_t *io);

/* Submits and polls until nothing is pending. Returns 0 or -errno. */
int st_io_drain(st_io_t *io);

/* An fd that is readable while completions wait to be polled (eventfd), for
 * an event loop. -1 if the backend has none (ST_IO_FAULT). */
int st_io_event_fd(const st_io_t *io);

st_io_kind_t st_io_kind(const st_io_t *io);
const char *st_io_name(const st_io_t *io); /* "io_uring", "threads", "fault" */

/* ---- fault injection (ST_IO_FAULT only; no-ops elsewhere) ---- */
typedef struct {
    long fail_write_nth;   /* the Nth write from now fails (1 = next); 0 = never */
    int fail_write_errno;  /* errno for it, e.g. EIO */
    long fail_sync_nth;    /* the Nth sync from now fails; 0 = never */
    int fail_sync_errno;
    int short_writes;      /* every write is split into pieces of at most this many bytes */
    long enospc_after;     /* bytes written from now before every write fails ENOSPC; 0 = off */
    int sticky;            /* after the first injected failure every op fails the same way */
} st_io_faults_t;

void st_io_fault_set(st_io_t *io, const st_io_faults_t *faults);

typedef struct {
    uint64_t writes, syncs, bytes, failed;
} st_io_stats_t;

void st_io_stats(const st_io_t *io, st_io_stats_t *out);

#endif
