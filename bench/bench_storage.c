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
 * min / median / max over --repeat runs.
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
} opts_t;

typedef struct {
    double mbs, recs;
} rate_t;

static void path_in(char *out, size_t n, const char *dir, const char *name)
{
    snprintf(out, n, "%s/%s", dir, name);
}

static rate_t run_plain(const opts_t *o, size_t size, int sync, int recs_per)
{
    char path[4096];
    rate_t r = {0, 0};
    uint8_t *buf = malloc(size);
    memset(buf, 'x', size);
    path_in(path, sizeof path, o->dir, "plain.dat");
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        perror(path);
        exit(1);
    }
    int64_t limit = sync ? o->sync_bytes : o->os_bytes, done = 0;
    int64_t t0 = sc_mono_ns(), deadline = t0 + (int64_t)(o->sync_seconds * 1e9);
    while (done < limit) {
        if (write(fd, buf, size) != (ssize_t)size) {
            perror("write");
            exit(1);
        }
        if (sync && fdatasync(fd)) {
            perror("fdatasync");
            exit(1);
        }
        done += (int64_t)size;
        if (sync && sc_mono_ns() > deadline)
            break;
    }
    double secs = (double)(sc_mono_ns() - t0) / 1e9;
    close(fd);
    unlink(path);
    free(buf);
    r.mbs = (double)done / secs / 1e6;
    r.recs = (double)(done / (int64_t)size) * recs_per / secs;
    return r;
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

static int records_per_batch(size_t size)
{
    sc_recbatch_t b;
    sc_recbatch_init(&b);
    int n = fill_batch(&b, size);
    sc_recbatch_fini(&b);
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

static rate_t run_strata(const opts_t *o, size_t size, int sync, int *recs_per_out)
{
    char dir[4096];
    st_io_t *io;
    st_log_t *log;
    st_log_config_t cfg;
    rate_t r = {0, 0};
    int rc, nslots = o->depth;
    slot_t *slots = calloc((size_t)nslots, sizeof *slots);

    path_in(dir, sizeof dir, o->dir, "strata-log");
    bench_rm_rf(dir);
    st_io_kind_t kind = strcmp(o->io, "uring") == 0     ? ST_IO_URING
                        : strcmp(o->io, "threads") == 0 ? ST_IO_THREADS
                                                        : ST_IO_AUTO;
    if ((rc = st_io_new(kind, NULL, &io))) {
        fprintf(stderr, "io backend %s: %s\n", o->io, sc_err_str(rc));
        exit(1);
    }
    st_log_config_default(&cfg);
    if (!sync)
        cfg.flush_messages = INT64_MAX;
    if ((rc = st_log_open(dir, &cfg, io, &log))) {
        fprintf(stderr, "open %s: %s\n", dir, sc_err_str(rc));
        exit(1);
    }
    int recs_per = 0;
    for (int i = 0; i < nslots; i++) {
        sc_recbatch_init(&slots[i].b);
        recs_per = fill_batch(&slots[i].b, size);
    }
    size_t bsize = slots[0].b.buf.len;
    int64_t limit = sync ? o->sync_bytes : o->os_bytes, done = 0, nb = 0;
    int64_t t0 = sc_mono_ns(), deadline = t0 + (int64_t)(o->sync_seconds * 1e9);
    inflight = 0;
    failed = 0;
    while (done < limit && !(sync && sc_mono_ns() > deadline)) {
        slot_t *s = NULL;
        for (int i = 0; i < nslots && !s; i++)
            if (!slots[i].busy)
                s = &slots[i];
        if (!s) {
            if (st_io_poll(io, -1) < 0)
                break;
            continue;
        }
        int64_t base, leo;
        s->busy = 1;
        inflight++;
        if ((rc = st_log_append(log, s->b.buf.data, bsize, 0, on_done, s, &base, &leo)) ||
            (rc = st_log_commit(log))) {
            fprintf(stderr, "append: %s\n", sc_err_str(rc));
            exit(1);
        }
        done += (int64_t)bsize;
        nb++;
        st_io_poll(io, 0);
    }
    while (inflight > 0)
        st_io_poll(io, -1);
    double secs = (double)(sc_mono_ns() - t0) / 1e9;
    if (failed) {
        fprintf(stderr, "append failed: %s\n", sc_err_str(failed));
        exit(1);
    }
    st_log_close(log);
    st_io_free(io);
    bench_rm_rf(dir);
    for (int i = 0; i < nslots; i++)
        sc_recbatch_fini(&slots[i].b);
    free(slots);
    r.mbs = (double)done / secs / 1e6;
    r.recs = (double)(nb * recs_per) / secs;
    *recs_per_out = recs_per;
    return r;
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
            "  --sync-seconds S   time cap per fsync run (default 3)\n"
            "  --io auto|uring|threads   io backend (default auto)\n"
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
                if (i % 2) {
                    s = run_strata(&o, size, sync, &recs_per);
                    p = run_plain(&o, size, sync, recs_per);
                } else {
                    p = run_plain(&o, size, sync, records_per_batch(size));
                    s = run_strata(&o, size, sync, &recs_per);
                }
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
