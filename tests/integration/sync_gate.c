/*
 * sync_gate.c -- LD_PRELOAD shim for test_produce.py: holds or fails the
 * broker's fdatasync/fsync of chosen files, so a test can keep a batch
 * written but not durable for as long as it needs, deterministically.
 *
 *   io_uring_queue_init*  fail with -ENOSYS: stratad falls back to the
 *                         thread-pool io backend, whose syncs are libc calls
 *   fdatasync, fsync      on a file whose path contains $SYNC_GATE_MATCH:
 *                         wait while the file $SYNC_GATE_FILE exists, then
 *                         fail with EIO if $SYNC_GATE_FAIL exists
 *
 * Test-only; never linked into anything.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct io_uring;
struct io_uring_params;

int io_uring_queue_init(unsigned entries, struct io_uring *ring, unsigned flags);
int io_uring_queue_init_params(unsigned entries, struct io_uring *ring, struct io_uring_params *p);
int fdatasync(int fd);
int fsync(int fd);

int io_uring_queue_init(unsigned entries, struct io_uring *ring, unsigned flags)
{
    (void)entries;
    (void)ring;
    (void)flags;
    return -ENOSYS;
}

int io_uring_queue_init_params(unsigned entries, struct io_uring *ring, struct io_uring_params *p)
{
    (void)entries;
    (void)ring;
    (void)p;
    return -ENOSYS;
}

static int exists(const char *path)
{
    struct stat st;
    return path && *path && stat(path, &st) == 0;
}

/* 0 to run the real call, -1 (errno set) to fail it. */
static int gate(int fd)
{
    const char *match = getenv("SYNC_GATE_MATCH");
    char link[64], path[4096];
    if (!match || !*match)
        return 0;
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    if (n < 0)
        return 0;
    path[n] = 0;
    if (!strstr(path, match))
        return 0;
    const struct timespec ms10 = {0, 10 * 1000 * 1000};
    while (exists(getenv("SYNC_GATE_FILE")))
        nanosleep(&ms10, NULL);
    if (exists(getenv("SYNC_GATE_FAIL"))) {
        errno = EIO;
        return -1;
    }
    return 0;
}

int fdatasync(int fd)
{
    if (gate(fd))
        return -1;
    int (*real)(int) = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    return real ? real(fd) : (errno = ENOSYS, -1);
}

int fsync(int fd)
{
    if (gate(fd))
        return -1;
    int (*real)(int) = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    return real ? real(fd) : (errno = ENOSYS, -1);
}
