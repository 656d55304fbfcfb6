/*
 * strata-bench storage -- the storage engine against the disk it runs on.
 *
 * For each batch size (16 KiB, 64 KiB, 1 MiB of 1 KiB records) and each flush
 * policy it measures, on the same disk in the same run:
 *   plain   sequential write(2) of the same sizes into a fresh file
 *           (+ fdatasync after every write in the "fsync" policy)
 *   strata  st_log_append of batches of that size, one commit per append
 *           ("fsync": flush.messages=1, every append durable before its
 *           callback; "os": flushing left to the OS), up to --depth appends
 *           in flight
 * and prints MB/s and records/s for both and strata/plain as a ratio, as
 * min / median / max over --repeat runs. Within a run the two sides write
 * alternating chunks into their own files (see run_pair), so both meet the
 * same page-cache and writeback weather; each side's rate is its bytes over
 * the time spent in its own chunks.
 */
#include "bench.h"

#include "sc_err.h"
#include "sc_log.h"
#include "sc_recbatch.h"
#include "sc_time.h"
#include "st_log.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RECORD 1024

typedef struct {
    const char *dir;
    int repeat;
    int depth;
    int64_t os_bytes;    /* bytes per run with flush left to the OS */
    int64_t sync_bytes;  /* bytes per run with fsync on every append (upper bound) */
    double sync_seconds; /* time bound for fsync runs */
    const char *io;      /* auto, uring, threads */
    int ring_writes;     /* writes through the ring too (ST_IO_WRITES_ASYNC) */
} opts_t;

typedef struct {
    double mbs, recs;
} rate_t;

static void path_in(char *out, size_t n, const char *dir, const char *name)
{
    snprintf(out, n, "%s/%s", dir, name);
}

/* Writes back every dirty page of the filesystem under dir, so each run
 * starts without the previous run's writeback competing with it. */
static void settle(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        syncfs(fd);
        close(fd);
    }
}

/* Fills b with 1 KiB records until the batch is as close to size as it
 * gets; returns the record count. */
static int fill_batch(sc_recbatch_t *b, size_t size)
{
    static char value[RECORD];
    int n = 0;
    memset(value, 'v', sizeof value);
    sc_recbatch_begin(b, sc_now_ms(), -1, -1, -1);
    while (b->buf.len + RECORD + 16 <= size || n == 0) {
        sc_recbatch_add(b, sc_now_ms(), NULL, 0, value, RECORD, NULL, 0);
        n++;
    }
    sc_recbatch_finish(b);
    return n;
}

typedef struct {
    sc_recbatch_t b;
    int busy;
} slot_t;

static int inflight;
static int failed;

static void on_done(void *arg, int rc, int64_t base, int64_t last)
{
    slot_t *s = arg;
    (void)base;
    (void)last;
    s->busy = 0;
    inflight--;
    if (rc)
        failed = rc;
}

/* One side of the A/B: a plain file or a Strata log, written chunk by chunk. */
typedef struct {
    /* plain */
    int fd;
    /* strata */
    st_io_t *io;
    st_log_t *log;
    slot_t *slots;
    int nslots;
    /* both */
    size_t bsize;
    int64_t bytes, ns;
} side_t;

static void plain_chunk(side_t *p, int sync, int64_t chunk)
{
    uint8_t *buf = p->slots[0].b.buf.data; /* same bytes as strata writes */
    int64_t t0 = sc_mono_ns();
    for (int64_t done = 0; done < chunk; done += (int64_t)p->bsize) {
        if (write(p->fd, buf, p->bsize) != (ssize_t)p->bsize) {
            perror("write");
            exit(1);
        }
        if (sync && fdatasync(p->fd)) {
            perror("fdatasync");
            exit(1);
        }
        p->bytes += (int64_t)p->bsize;
    }
    p->ns += sc_mono_ns() - t0;
}

static void strata_chunk(side_t *s, int64_t chunk)
{
    int64_t t0 = sc_mono_ns(), done = 0;
    int rc;
    while (done < chunk) {
        slot_t *sl = NULL;
        for (int i = 0; i < s->nslots && !sl; i++)
            if (!s->slots[i].busy)
                sl = &s->slots[i];
        if (!sl) {
            if (st_io_poll(s->io, -1) < 0)
                exit(1);
            continue;
        }
        int64_t base, leo;
        sl->busy = 1;
        inflight++;
        if ((rc = st_log_append(s->log, sl->b.buf.data, s->bsize, 0, on_done, sl, &base, &leo)) ||
            (rc = st_log_commit(s->log))) {
            fprintf(stderr, "append: %s\n", sc_err_str(rc));
            exit(1);
        }
        done += (int64_t)s->bsize;
        st_io_poll(s->io, 0);
    }
    while (inflight > 0)
        st_io_poll(s->io, -1);
    if (failed) {
        fprintf(stderr, "append failed: %s\n", sc_err_str(failed));
        exit(1);
    }
    s->bytes += done;
    s->ns += sc_mono_ns() - t0;
}

/*
 * One run: plain and Strata write alternating chunks (plain first on even
 * chunks, Strata first on odd ones) into their own fresh files on the same
 * disk, so both meet the same page-cache and writeback conditions. A chunk is
 * 1/16 of the run's bytes; fsync runs stop at the time cap.
 */
static void run_pair(const opts_t *o, size_t size, int sync, rate_t *plain, rate_t *strata,
                     int *recs_per_out)
{
    char dir[4096], path[4096];
    st_log_config_t cfg;
    side_t p = {0}, s = {0};
    int rc, recs_per = 0;

    path_in(dir, sizeof dir, o->dir, "strata-log");
    path_in(path, sizeof path, o->dir, "plain.dat");
    bench_rm_rf(dir);
    st_io_kind_t kind = strcmp(o->io, "uring") == 0     ? ST_IO_URING
                        : strcmp(o->io, "threads") == 0 ? ST_IO_THREADS
                                                        : ST_IO_AUTO;
    st_io_opts_t io_opts = {.writes = o->ring_writes ? ST_IO_WRITES_ASYNC : ST_IO_WRITES_INLINE};
    if ((rc = st_io_new(kind, &io_opts, &s.io))) {
        fprintf(stderr, "io backend %s: %s\n", o->io, sc_err_str(rc));
        exit(1);
    }
    st_log_config_default(&cfg);
    if (!sync)
        cfg.flush_messages = INT64_MAX;
    if ((rc = st_log_open(dir, &cfg, s.io, &s.log))) {
        fprintf(stderr, "open %s: %s\n", dir, sc_err_str(rc));
        exit(1);
    }
    s.nslots = o->depth;
    s.slots = calloc((size_t)s.nslots, sizeof *s.slots);
    for (int i = 0; i < s.nslots; i++) {
        sc_recbatch_init(&s.slots[i].b);
        recs_per = fill_batch(&s.slots[i].b, size);
    }
    s.bsize = p.bsize = s.slots[0].b.buf.len;
    p.slots = s.slots;
    if ((p.fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0) {
        perror(path);
        exit(1);
    }
    inflight = failed = 0;
    settle(o->dir);

    int64_t limit = sync ? o->sync_bytes : o->os_bytes;
    int64_t chunk = limit / 16 / (int64_t)s.bsize * (int64_t)s.bsize;
    if (chunk < (int64_t)s.bsize)
        chunk = (int64_t)s.bsize;
    int64_t deadline = sc_mono_ns() + (int64_t)(o->sync_seconds * 2 * 1e9);
    for (int i = 0; p.bytes < limit; i++) {
        if (i % 2) {
            strata_chunk(&s, chunk);
            plain_chunk(&p, sync, chunk);
        } else {
            plain_chunk(&p, sync, chunk);
            strata_chunk(&s, chunk);
        }
        if (sync && sc_mono_ns() > deadline)
            break;
    }

    st_log_close(s.log);
    st_io_free(s.io);
    bench_rm_rf(dir);
    close(p.fd);
    unlink(path);
    for (int i = 0; i < s.nslots; i++)
        sc_recbatch_fini(&s.slots[i].b);
    free(s.slots);
    plain->mbs = (double)p.bytes / ((double)p.ns / 1e9) / 1e6;
    plain->recs = (double)(p.bytes / (int64_t)p.bsize) * recs_per / ((double)p.ns / 1e9);
    strata->mbs = (double)s.bytes / ((double)s.ns / 1e9) / 1e6;
    strata->recs = (double)(s.bytes / (int64_t)s.bsize) * recs_per / ((double)s.ns / 1e9);
    *recs_per_out = recs_per;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: strata-bench storage [options]\n"
            "  Appends 1 KiB records in batches of 16 KiB, 64 KiB and 1 MiB to a Strata log and\n"
            "  compares with plain write(2) / write(2)+fdatasync of the same sizes on the same disk.\n"
            "options:\n"
            "  --dir DIR          where to write (default: ./bench-data); must be on the disk to test\n"
            "  --repeat N         runs per case, reported as min/median/max (default 3)\n"
            "  --depth N          appends in flight (default 1)\n"
            "  --os-mb N          MiB per run with flush left to the OS (default 512)\n"
            "  --sync-mb N        MiB cap per run with fsync per append (default 256)\n"
            "  --sync-seconds S   time cap per side per fsync run (default 3)\n"
            "  --io auto|uring|threads   io backend (default auto)\n"
            "  --ring-writes      writes through io_uring / the worker too (default: inline pwrite,\n"
            "                     fdatasync through the backend)\n"
            "  --sizes LIST       batch sizes in KiB, comma-separated (default 16,64,1024)\n");
}

int bench_storage_main(int argc, char **argv)
{
    opts_t o = {.dir = "./bench-data", .repeat = 3, .depth = 1, .os_bytes = 512 << 20,
                .sync_bytes = 256 << 20, .sync_seconds = 3, .io = "auto"};
    const char *sizes = "16,64,1024";
    static const struct option lo[] = {
        {"dir", 1, 0, 'd'},    {"repeat", 1, 0, 'r'},       {"depth", 1, 0, 'D'},
        {"os-mb", 1, 0, 'o'},  {"sync-mb", 1, 0, 's'},      {"sync-seconds", 1, 0, 'S'},
        {"io", 1, 0, 'i'},     {"sizes", 1, 0, 'z'},        {"help", 0, 0, 'h'},
        {"ring-writes", 0, 0, 'w'},
        {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (c) {
        case 'd': o.dir = optarg; break;
        case 'r': o.repeat = atoi(optarg); break;
        case 'D': o.depth = atoi(optarg); break;
        case 'o': o.os_bytes = (int64_t)atol(optarg) << 20; break;
        case 's': o.sync_bytes = (int64_t)atol(optarg) << 20; break;
        case 'S': o.sync_seconds = atof(optarg); break;
        case 'i': o.io = optarg; break;
        case 'z': sizes = optarg; break;
        case 'w': o.ring_writes = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (o.repeat < 1 || o.depth < 1 || o.os_bytes <= 0 || o.sync_bytes <= 0) {
        usage(stderr);
        return 2;
    }
    if (bench_mkdir_p(o.dir)) {
        fprintf(stderr, "cannot create %s: %s\n", o.dir, strerror(errno));
        return 1;
    }
    sc_log_set_level(SC_LOG_WARN);

    bench_machine_banner(o.dir);
    printf("storage: 1 KiB records, depth %d, %d runs per case (min / median / max)\n\n", o.depth,
           o.repeat);
    printf("%-7s %-6s %-24s %-24s %-20s %s\n", "batch", "flush", "plain MB/s", "strata MB/s",
           "strata/plain", "strata records/s");

    char list[256];
    snprintf(list, sizeof list, "%s", sizes);
    for (char *save = NULL, *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        size_t size = (size_t)atol(tok) * 1024;
        if (size < 2048) {
            fprintf(stderr, "batch size %s KiB too small\n", tok);
            return 2;
        }
        for (int sync = 1; sync >= 0; sync--) {
            double pm[64], sm[64], ra[64], rr[64];
            int n = o.repeat > 64 ? 64 : o.repeat, recs_per = 1;
            for (int i = 0; i < n; i++) {
                /* alternate the order so neither side always gets a warmer disk */
                rate_t s, p;
                run_pair(&o, size, sync, &p, &s, &recs_per);
                pm[i] = p.mbs;
                sm[i] = s.mbs;
                ra[i] = s.mbs / p.mbs;
                rr[i] = s.recs;
            }
            bench_stats_t P = bench_stats(pm, n), S = bench_stats(sm, n), A = bench_stats(ra, n),
                          RR = bench_stats(rr, n);
            char a[64], b[64], r[64], q[64];
            snprintf(a, sizeof a, "%.0f/%.0f/%.0f", P.min, P.median, P.max);
            snprintf(b, sizeof b, "%.0f/%.0f/%.0f", S.min, S.median, S.max);
            snprintf(r, sizeof r, "%.2f/%.2f/%.2f", A.min, A.median, A.max);
            snprintf(q, sizeof q, "%.0f/%.0f/%.0f", RR.min, RR.median, RR.max);
            printf("%-7s %-6s %-24s %-24s %-20s %s\n", tok, sync ? "fsync" : "os", a, b, r, q);
            fflush(stdout);
        }
    }
    printf("\nratio goals: >= 0.90 with flush left to the OS, >= 0.80 with fsync per append\n");
    return 0;
}
