/*
 * bench_work -- the produce / consume / latency workloads, written once over
 * the driver interface (bench_ops_t) so libstrata, librdkafka and the NATS
 * client run exactly the same loop.
 *
 * Every record starts with a 16-byte header: the time (CLOCK_MONOTONIC, ns)
 * the record was *intended* to be sent, and a sequence number. At a fixed
 * rate the intended times are t0 + i/rate regardless of when the send really
 * happened, so a stall of the client or the server shows up in the latency of
 * every record scheduled during it (no coordinated omission); at max rate the
 * intended time is the moment of the send call. Delivery reports and the
 * consumer read the header back: ack latency = report - intended, end-to-end
 * latency = receive - intended. Producer and consumer run in this process, so
 * one monotonic clock serves both.
 */
#include "bench.h"

#include "sc_time.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

typedef struct run run_t;

struct bench_prod {
    run_t *run;
    int idx;
    void *h;
    pthread_t tid;
    atomic_uint_fast64_t sent, acked, failed;
    atomic_int_fast64_t last_ack_ns;
    int64_t send_end_ns;
    sc_hist_t *ack; /* written by the driver's callback thread only */
    pthread_mutex_t err_mu;
    char first_err[256];
};

struct bench_sink {
    run_t *run;
    int latency;
    atomic_uint_fast64_t received, bytes, errors;
    atomic_int_fast64_t first_ns, last_ns;
    sc_hist_t *e2e; /* one writer: the thread delivering records */
    pthread_mutex_t err_mu;
    char first_err[256];
};

struct run {
    const bench_cfg_t *c;
    const bench_ops_t *ops;
    int parts;
    pthread_barrier_t ready, go;
    atomic_int_fast64_t t0, warm_end, end_ns;
    atomic_int stop, done;
    bench_prod_t *prods;
    bench_sink_t sink;
};

const char *bench_workload_name(bench_workload_t w)
{
    return w == BW_PRODUCE ? "produce" : w == BW_CONSUME ? "consume" : "latency";
}

const char *bench_client_name(bench_client_t c)
{
    return c == BC_LIBSTRATA ? "libstrata" : c == BC_RDKAFKA ? "librdkafka" : "nats";
}

void bench_cfg_defaults(bench_cfg_t *c, bench_workload_t w)
{
    memset(c, 0, sizeof *c);
    c->workload = w;
    c->client = BC_LIBSTRATA;
    c->brokers = NULL;
    snprintf(c->topic, sizeof c->topic, "strata-bench");
    c->message_size = 1024;
    c->partitions = 1;
    c->producers = 1;
    c->acks = "all";
    c->compression = "none";
    c->linger_ms = 5;
    c->batch_bytes = 1000000;
    c->rate = w == BW_LATENCY ? 5000 : 0;
    c->duration_s = 0;
    c->warmup_s = w == BW_LATENCY ? 1 : 0;
    c->max_pending = 4096;
    c->create = 1;
    c->idempotence = -1;
}

static const bench_ops_t *ops_for(bench_client_t c)
{
    return c == BC_LIBSTRATA ? bench_ops_libstrata()
           : c == BC_RDKAFKA ? bench_ops_rdkafka()
                             : bench_ops_nats();
}

static void set_err(pthread_mutex_t *mu, char *dst, const char *msg)
{
    pthread_mutex_lock(mu);
    if (!dst[0])
        snprintf(dst, 256, "%s", msg);
    pthread_mutex_unlock(mu);
}

static int64_t hdr_time(const void *val, size_t len)
{
    int64_t t = 0;
    if (val && len >= 8)
        memcpy(&t, val, 8);
    return t;
}

void bench_on_ack(bench_prod_t *bp, const void *val, size_t len, const char *err)
{
    int64_t now = sc_mono_ns();
    if (err) {
        atomic_fetch_add(&bp->failed, 1);
        set_err(&bp->err_mu, bp->first_err, err);
    } else {
        int64_t t = hdr_time(val, len);
        if (t && t >= atomic_load(&bp->run->warm_end))
            sc_hist_record(bp->ack, (uint64_t)(now > t ? now - t : 0));
        atomic_fetch_add(&bp->acked, 1);
    }
    atomic_store(&bp->last_ack_ns, now);
}

void bench_on_record(bench_sink_t *s, const void *val, size_t len)
{
    int64_t now = sc_mono_ns();
    if (s->latency && !hdr_time(val, len))
        return; /* a producer's priming record */
    if (!atomic_load(&s->first_ns))
        atomic_store(&s->first_ns, now);
    atomic_store(&s->last_ns, now);
    atomic_fetch_add(&s->bytes, len);
    atomic_fetch_add(&s->received, 1);
    if (s->latency) {
        int64_t t = hdr_time(val, len);
        if (t && t >= atomic_load(&s->run->warm_end))
            sc_hist_record(s->e2e, (uint64_t)(now > t ? now - t : 0));
    }
}

void bench_on_consume_error(bench_sink_t *s, const char *err)
{
    atomic_fetch_add(&s->errors, 1);
    set_err(&s->err_mu, s->first_err, err);
}

static void fill_payload(uint8_t *b, size_t n, unsigned seed)
{
    /* letters a..p: about 2:1 with any codec, so --compression means something */
    uint64_t x = 0x9E3779B97F4A7C15ull * (seed + 1);
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        b[i] = (uint8_t)('a' + (x & 15));
    }
}

static void sleep_until(int64_t t)
{
    struct timespec ts = {(time_t)(t / 1000000000), (long)(t % 1000000000)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
    }
}

static void sleep_us(long us)
{
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    nanosleep(&ts, NULL);
}

/* Latency workload: one record (header time 0, which no histogram or sink
 * counts) sent and acknowledged before the clock starts, so the client's
 * start-up (connection, metadata, producer id) is not measured as latency. */
static int prime(bench_prod_t *bp, uint8_t *buf, size_t size, char *err, size_t errn)
{
    run_t *run = bp->run;
    memset(buf, 0, BENCH_HDR);
    int rc;
    int64_t deadline = sc_mono_ns() + 30 * 1000000000ll;
    while ((rc = run->ops->prod_send(bp->h, (int32_t)(bp->idx % run->parts), buf, size, err,
                                     errn)) == 1 &&
           sc_mono_ns() < deadline)
        sleep_us(1000);
    if (rc)
        return rc < 0 ? -1 : (snprintf(err, errn, "priming record not queued in 30 s"), -1);
    while (!atomic_load(&bp->acked) && !atomic_load(&bp->failed) && sc_mono_ns() < deadline)
        sleep_us(1000);
    if (!atomic_load(&bp->acked)) {
        snprintf(err, errn, "priming record not acknowledged%s%.200s",
                 bp->first_err[0] ? ": " : "", bp->first_err);
        return -1;
    }
    atomic_store(&bp->acked, 0);
    atomic_store(&bp->last_ack_ns, 0);
    return 0;
}

static void *prod_thread(void *arg)
{
    bench_prod_t *bp = arg;
    run_t *run = bp->run;
    const bench_cfg_t *c = run->c;
    char err[256] = "";
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
    size_t size = (size_t)c->message_size;
    uint8_t *buf = malloc(size);
    if (buf)
        fill_payload(buf, size, (unsigned)bp->idx);
    if (!buf || run->ops->prod_new(c, bp, &bp->h, err, sizeof err)) {
        set_err(&bp->err_mu, bp->first_err, err[0] ? err : "out of memory");
        bp->h = NULL;
    }
    if (bp->h && c->workload == BW_LATENCY && prime(bp, buf, size, err, sizeof err)) {
        set_err(&bp->err_mu, bp->first_err, err);
        run->ops->prod_free(bp->h);
        bp->h = NULL;
    }
    pthread_barrier_wait(&run->ready);
    pthread_barrier_wait(&run->go);
    if (!bp->h) {
        free(buf);
        atomic_fetch_add(&run->done, 1);
        return NULL;
    }
    int64_t t0 = atomic_load(&run->t0), end = atomic_load(&run->end_ns);
    sleep_until(t0);
    double interval = c->rate > 0 ? 1e9 * c->producers / c->rate : 0;
    /* producers spread evenly over one interval */
    double phase = interval * bp->idx / c->producers;
    uint64_t quota = 0;
    if (c->records > 0)
        quota = (uint64_t)(c->records / c->producers + (bp->idx < c->records % c->producers));
    for (uint64_t i = 0;; i++) {
        if (quota && i >= quota)
            break;
        int64_t intended;
        if (interval > 0) {
            intended = t0 + (int64_t)(phase + interval * (double)i);
            if (end && intended >= end)
                break;
            if (intended > sc_mono_ns())
                sleep_until(intended);
        } else {
            intended = sc_mono_ns();
            if (end && intended >= end)
                break;
        }
        if (atomic_load(&run->stop))
            break;
        uint64_t seq = i * (uint64_t)c->producers + (uint64_t)bp->idx;
        memcpy(buf, &intended, 8);
        memcpy(buf + 8, &seq, 8);
        int32_t part = (int32_t)((i + (uint64_t)bp->idx) % (uint64_t)run->parts);
        int rc;
        while ((rc = run->ops->prod_send(bp->h, part, buf, size, err, sizeof err)) == 1) {
            if (atomic_load(&run->stop))
                break;
            sleep_us(100);
        }
        if (rc) {
            if (rc < 0) {
                set_err(&bp->err_mu, bp->first_err, err);
                atomic_store(&run->stop, 1);
            }
            break;
        }
        atomic_fetch_add(&bp->sent, 1);
    }
    bp->send_end_ns = sc_mono_ns();
    run->ops->prod_flush(bp->h, 60000);
    int64_t deadline = sc_mono_ns() + 60 * 1000000000ll;
    while (atomic_load(&bp->acked) + atomic_load(&bp->failed) < atomic_load(&bp->sent) &&
           sc_mono_ns() < deadline)
        sleep_us(1000);
    if (atomic_load(&bp->acked) + atomic_load(&bp->failed) < atomic_load(&bp->sent))
        set_err(&bp->err_mu, bp->first_err, "delivery reports missing 60 s after the last send");
    run->ops->prod_free(bp->h);
    bp->h = NULL;
    free(buf);
    atomic_fetch_add(&run->done, 1);
    return NULL;
}

static void fmt_num(char *out, size_t n, double v)
{
    char tmp[64];
    snprintf(tmp, sizeof tmp, "%.0f", v);
    size_t len = strlen(tmp), o = 0;
    for (size_t i = 0; i < len && o + 2 < n; i++) {
        out[o++] = tmp[i];
        size_t left = len - i - 1;
        if (left && left % 3 == 0 && tmp[i] != '-')
            out[o++] = ',';
    }
    out[o] = 0;
}

static void progress(const run_t *run, double secs, uint64_t sent, uint64_t acked, uint64_t recv,
                     double dsent, double dacked, double drecv)
{
    if (run->c->quiet)
        return;
    char a[32], b[32], d[32], e[32];
    int tty = isatty(2);
    if (run->c->workload == BW_CONSUME) {
        fmt_num(a, sizeof a, (double)recv);
        fmt_num(b, sizeof b, drecv);
        fprintf(stderr, "%s[consume %s] %5.0f s  received %s (%s/s)%s", tty ? "\r" : "",
                bench_client_name(run->c->client), secs, a, b, tty ? "   " : "\n");
    } else {
        fmt_num(a, sizeof a, (double)sent);
        fmt_num(b, sizeof b, dsent);
        fmt_num(d, sizeof d, (double)acked);
        fmt_num(e, sizeof e, dacked);
        fprintf(stderr, "%s[%s %s] %5.0f s  sent %s (%s/s)  acked %s (%s/s)", tty ? "\r" : "",
                bench_workload_name(run->c->workload), bench_client_name(run->c->client), secs, a,
                b, d, e);
        if (run->c->workload == BW_LATENCY) {
            fmt_num(a, sizeof a, (double)recv);
            fmt_num(b, sizeof b, drecv);
            fprintf(stderr, "  received %s (%s/s)", a, b);
        }
        fputs(tty ? "   " : "\n", stderr);
    }
}

typedef struct {
    run_t *run;
    void *h;
    atomic_int stop;
    int rc;
} cons_ctx_t;

static void *cons_loop(void *arg)
{
    cons_ctx_t *cc = arg;
    while (!atomic_load(&cc->stop))
        if (cc->run->ops->cons_poll(cc->h, 100) < 0) {
            cc->rc = -1;
            break;
        }
    return NULL;
}

static uint64_t sum_prod(run_t *run, int which)
{
    uint64_t s = 0;
    for (int i = 0; i < run->c->producers; i++)
        s += which == 0   ? atomic_load(&run->prods[i].sent)
             : which == 1 ? atomic_load(&run->prods[i].acked)
                          : atomic_load(&run->prods[i].failed);
    return s;
}

int bench_run(const bench_cfg_t *c, bench_result_t *r)
{
    memset(r, 0, sizeof *r);
    sc_hist_init(&r->ack);
    sc_hist_init(&r->e2e);
    char err[256] = "";
    const bench_ops_t *ops = ops_for(c->client);
    if (!ops) {
        snprintf(r->first_error, sizeof r->first_error, "client %s was not built in",
                 bench_client_name(c->client));
        return -1;
    }
    if (c->message_size < BENCH_HDR) {
        snprintf(r->first_error, sizeof r->first_error, "--message-size must be >= %d",
                 BENCH_HDR);
        return -1;
    }
    run_t run;
    memset(&run, 0, sizeof run);
    run.c = c;
    run.ops = ops;
    run.sink.run = &run;
    run.sink.e2e = &r->e2e;
    pthread_mutex_init(&run.sink.err_mu, NULL);
    run.sink.latency = c->workload == BW_LATENCY;
    bench_cfg_t cc = *c;
    if (c->workload == BW_CONSUME)
        cc.create = 0;
    int parts = ops->setup(&cc, err, sizeof err);
    if (parts <= 0) {
        snprintf(r->first_error, sizeof r->first_error, "%s", err);
        return -1;
    }
    run.parts = r->partitions = parts;
    int64_t *ends = calloc((size_t)parts, sizeof *ends);
    if (!ends)
        return -1;
    int rc = 0;
    int64_t start_ns = sc_mono_ns();

    if (c->workload == BW_CONSUME) {
        uint64_t target = (uint64_t)c->records;
        if (!target) {
            if (ops->end_offsets(c, parts, ends, err, sizeof err)) {
                snprintf(r->first_error, sizeof r->first_error, "%s", err);
                free(ends);
                return -1;
            }
            for (int i = 0; i < parts; i++)
                target += (uint64_t)ends[i];
        }
        if (!target) {
            snprintf(r->first_error, sizeof r->first_error, "%s is empty: nothing to consume",
                     c->topic);
            free(ends);
            return -1;
        }
        void *h;
        if (ops->cons_new(c, parts, NULL, &run.sink, &h, err, sizeof err)) {
            snprintf(r->first_error, sizeof r->first_error, "%s", err);
            free(ends);
            return -1;
        }
        int64_t last_tick = start_ns, idle_since = start_ns;
        uint64_t last_recv = 0, tick_recv = 0;
        while (atomic_load(&run.sink.received) < target) {
            if (ops->cons_poll(h, 100) < 0)
                break;
            int64_t now = sc_mono_ns();
            uint64_t got = atomic_load(&run.sink.received);
            if (got != last_recv) {
                last_recv = got;
                idle_since = now;
            } else if (now - idle_since > 30 * 1000000000ll) {
                snprintf(r->first_error, sizeof r->first_error,
                         "no records for 30 s (%" PRIu64 " of %" PRIu64 " read)", got, target);
                break;
            }
            if (now - last_tick >= 1000000000) {
                progress(&run, (double)(now - start_ns) / 1e9, 0, 0, got, 0, 0,
                         (double)(got - tick_recv) * 1e9 / (double)(now - last_tick));
                tick_recv = got;
                last_tick = now;
            }
        }
        ops->cons_free(h);
        if (!c->quiet && isatty(2))
            fputc('\n', stderr);
        r->received = atomic_load(&run.sink.received);
        r->bytes = atomic_load(&run.sink.bytes);
        r->errors = atomic_load(&run.sink.errors);
        int64_t f = atomic_load(&run.sink.first_ns), l = atomic_load(&run.sink.last_ns);
        r->seconds = f ? (double)(l - f) / 1e9 : 0;
        r->startup_s = f ? (double)(f - start_ns) / 1e9 : 0;
        if (r->seconds > 0) {
            r->rps = (double)r->received / r->seconds;
            r->mbps = (double)r->bytes / r->seconds / 1e6;
        }
        if (!r->first_error[0] && run.sink.first_err[0])
            snprintf(r->first_error, sizeof r->first_error, "%s", run.sink.first_err);
        free(ends);
        return r->received >= target && !r->errors ? 0 : -1;
    }

    /* produce / latency */
    cons_ctx_t cons = {.run = &run};
    pthread_t ctid;
    int have_cons = 0;
    if (c->workload == BW_LATENCY) {
        atomic_store(&run.warm_end, INT64_MAX); /* nothing counts before t0 is known */
        if (ops->end_offsets(c, parts, ends, err, sizeof err) ||
            ops->cons_new(c, parts, ends, &run.sink, &cons.h, err, sizeof err)) {
            snprintf(r->first_error, sizeof r->first_error, "%s", err);
            free(ends);
            return -1;
        }
        if (pthread_create(&ctid, NULL, cons_loop, &cons)) {
            ops->cons_free(cons.h);
            free(ends);
            return -1;
        }
        have_cons = 1;
    }
    int np = c->producers;
    run.prods = calloc((size_t)np, sizeof *run.prods);
    sc_hist_t *acks = calloc((size_t)np, sizeof *acks);
    if (!run.prods || !acks) {
        free(run.prods);
        free(acks);
        free(ends);
        return -1;
    }
    pthread_barrier_init(&run.ready, NULL, (unsigned)np + 1);
    pthread_barrier_init(&run.go, NULL, (unsigned)np + 1);
    for (int i = 0; i < np; i++) {
        bench_prod_t *bp = &run.prods[i];
        bp->run = &run;
        bp->idx = i;
        sc_hist_init(&acks[i]);
        bp->ack = &acks[i];
        pthread_mutex_init(&bp->err_mu, NULL);
        if (pthread_create(&bp->tid, NULL, prod_thread, bp)) {
            fprintf(stderr, "strata-bench: cannot start producer thread\n");
            exit(1);
        }
    }
    pthread_barrier_wait(&run.ready);
    int64_t t0 = sc_mono_ns() + 1000000;
    atomic_store(&run.t0, t0);
    atomic_store(&run.end_ns, c->duration_s > 0 ? t0 + (int64_t)(c->duration_s * 1e9) : 0);
    atomic_store(&run.warm_end, t0 + (int64_t)(c->warmup_s * 1e9));
    pthread_barrier_wait(&run.go);

    int64_t last_tick = t0;
    uint64_t ts = 0, ta = 0, tr = 0;
    while (atomic_load(&run.done) < np) {
        sleep_us(20000);
        int64_t now = sc_mono_ns();
        if (now - last_tick >= 1000000000) {
            uint64_t s = sum_prod(&run, 0), a = sum_prod(&run, 1),
                     rv = atomic_load(&run.sink.received);
            double dt = (double)(now - last_tick) / 1e9;
            progress(&run, (double)(now - t0) / 1e9, s, a, rv, (double)(s - ts) / dt,
                     (double)(a - ta) / dt, (double)(rv - tr) / dt);
            ts = s;
            ta = a;
            tr = rv;
            last_tick = now;
        }
    }
    int64_t last_ack = 0, send_end = 0;
    for (int i = 0; i < np; i++) {
        pthread_join(run.prods[i].tid, NULL);
        sc_hist_merge(&r->ack, &acks[i]);
        if (atomic_load(&run.prods[i].last_ack_ns) > last_ack)
            last_ack = atomic_load(&run.prods[i].last_ack_ns);
        if (run.prods[i].send_end_ns > send_end)
            send_end = run.prods[i].send_end_ns;
        if (!r->first_error[0] && run.prods[i].first_err[0])
            snprintf(r->first_error, sizeof r->first_error, "%s", run.prods[i].first_err);
    }
    r->sent = sum_prod(&run, 0);
    r->acked = sum_prod(&run, 1);
    r->errors = sum_prod(&run, 2);
    r->bytes = r->acked * (uint64_t)c->message_size;
    r->seconds = last_ack > t0 ? (double)(last_ack - t0) / 1e9 : 0;
    if (r->seconds > 0) {
        r->rps = (double)r->acked / r->seconds;
        r->mbps = (double)r->bytes / r->seconds / 1e6;
    }
    if (send_end > t0)
        r->achieved_rate = (double)r->sent / ((double)(send_end - t0) / 1e9);
    if (have_cons) {
        /* every acknowledged record should arrive; give it up to 15 s of silence */
        int64_t idle_since = sc_mono_ns();
        uint64_t last = atomic_load(&run.sink.received);
        while (atomic_load(&run.sink.received) < r->acked && !cons.rc) {
            sleep_us(5000);
            uint64_t got = atomic_load(&run.sink.received);
            if (got != last) {
                last = got;
                idle_since = sc_mono_ns();
            } else if (sc_mono_ns() - idle_since > 15 * 1000000000ll) {
                break;
            }
        }
        atomic_store(&cons.stop, 1);
        pthread_join(ctid, NULL);
        ops->cons_free(cons.h);
        r->received = atomic_load(&run.sink.received);
        r->errors += atomic_load(&run.sink.errors);
        if (r->received < r->acked && !r->first_error[0])
            snprintf(r->first_error, sizeof r->first_error,
                     "consumer received %" PRIu64 " of %" PRIu64 " acknowledged records",
                     r->received, r->acked);
        if (!r->first_error[0] && run.sink.first_err[0])
            snprintf(r->first_error, sizeof r->first_error, "%s", run.sink.first_err);
    }
    if (!c->quiet && isatty(2))
        fputc('\n', stderr);
    pthread_barrier_destroy(&run.ready);
    pthread_barrier_destroy(&run.go);
    free(run.prods);
    free(acks);
    free(ends);
    rc = r->acked == r->sent && !r->errors && r->sent > 0 &&
                 (c->workload != BW_LATENCY || r->received >= r->acked)
             ? 0
             : -1;
    if (rc && !r->first_error[0])
        snprintf(r->first_error, sizeof r->first_error, "%s",
                 r->sent ? "not every record was acknowledged" : "nothing was sent");
    return rc;
}

/* ---- output -------------------------------------------------------------------- */

static double ms(uint64_t ns) { return (double)ns / 1e6; }

static void print_hist_line(const char *label, const sc_hist_t *h)
{
    if (!h->count)
        return;
    printf("  %-13s p50 %.3f ms   p99 %.3f ms   p99.9 %.3f ms   max %.3f ms   (%" PRIu64
           " records)\n",
           label, ms(sc_hist_percentile(h, 50)), ms(sc_hist_percentile(h, 99)),
           ms(sc_hist_percentile(h, 99.9)), ms(h->max), h->count);
}

static const char *durability_of(const bench_cfg_t *c)
{
    if (c->durability)
        return c->durability;
    if (c->client == BC_NATS)
        return "JetStream file store: as the server is configured (nats-server 2.9 acks before "
               "any fsync; it syncs every 2 min)";
    return "acks as given; whether the broker fsyncs before acking is its flush policy "
           "(stratad's default: fsync before acks=all/1 answers)";
}

void bench_print_result(const bench_cfg_t *c, const bench_result_t *r)
{
    char a[32], b[32], d[32];
    printf("%s: %s -> %s, topic %s, %d partition(s), %d B records", bench_workload_name(c->workload),
           bench_client_name(c->client), c->brokers, c->topic, r->partitions, c->message_size);
    if (c->workload != BW_CONSUME && c->client == BC_NATS)
        printf(", %d producer(s), %d async publishes outstanding at most, rate %s", c->producers,
               c->max_pending, c->rate > 0 ? "fixed" : "max");
    else if (c->workload != BW_CONSUME)
        printf(", %d producer(s), acks=%s, compression %s, idempotence %s, rate %s", c->producers,
               c->acks, c->compression, c->idempotence > 0 ? "on" : "off",
               c->rate > 0 ? "fixed" : "max");
    printf("\n");
    if (c->workload == BW_CONSUME) {
        fmt_num(a, sizeof a, (double)r->received);
        fmt_num(b, sizeof b, r->rps);
        printf("  records       %s received in %.3f s (first record after %.3f s), %" PRIu64
               " errors\n",
               a, r->seconds, r->startup_s, r->errors);
        printf("  throughput    %s records/s, %.1f MB/s\n", b, r->mbps);
    } else {
        fmt_num(a, sizeof a, (double)r->sent);
        fmt_num(b, sizeof b, (double)r->acked);
        printf("  records       %s sent, %s acked, %" PRIu64 " errors, in %.3f s\n", a, b,
               r->errors, r->seconds);
        fmt_num(a, sizeof a, r->rps);
        printf("  throughput    %s records/s, %.1f MB/s (acked)\n", a, r->mbps);
        if (c->rate > 0) {
            fmt_num(a, sizeof a, c->rate);
            fmt_num(d, sizeof d, r->achieved_rate);
            printf("  rate          %s records/s asked, %s records/s sent\n", a, d);
        }
        print_hist_line("ack latency", &r->ack);
        if (c->workload == BW_LATENCY) {
            fmt_num(a, sizeof a, (double)r->received);
            printf("  received      %s records\n", a);
            print_hist_line("e2e latency", &r->e2e);
            printf("  (latency from each record's intended send time; first %.1f s excluded)\n",
                   c->warmup_s);
        }
    }
    printf("  durability    %s\n", durability_of(c));
    if (r->first_error[0])
        printf("  error         %s\n", r->first_error);
}

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; s && *s; s++) {
        if (*s == '"' || *s == '\\')
            fprintf(f, "\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            fprintf(f, "\\u%04x", *s);
        else
            fputc(*s, f);
    }
    fputc('"', f);
}

static void json_hist(FILE *f, const sc_hist_t *h)
{
    fprintf(f,
            "{\"count\":%" PRIu64 ",\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,\"p999\":%.3f,"
            "\"max\":%.3f,\"mean\":%.3f}",
            h->count, ms(sc_hist_percentile(h, 50)), ms(sc_hist_percentile(h, 90)),
            ms(sc_hist_percentile(h, 99)), ms(sc_hist_percentile(h, 99.9)), ms(h->max),
            sc_hist_mean(h) / 1e6);
}

void bench_result_json(FILE *f, const bench_cfg_t *c, const bench_result_t *r)
{
    fprintf(f, "{\"workload\":\"%s\",\"system\":\"%s\",\"client\":\"%s\",\"brokers\":",
            bench_workload_name(c->workload), c->client == BC_NATS ? "jetstream" : "kafka",
            bench_client_name(c->client));
    json_str(f, c->brokers);
    fprintf(f, ",\"topic\":");
    json_str(f, c->topic);
    fprintf(f,
            ",\"config\":{\"message_size\":%d,\"partitions\":%d,\"producers\":%d,\"acks\":\"%s\","
            "\"compression\":\"%s\",\"linger_ms\":%d,\"batch_bytes\":%ld,\"idempotence\":%s,"
            "\"rate\":%.0f,\"duration_s\":%.3f,\"records\":%ld,\"warmup_s\":%.3f,"
            "\"max_pending\":%d",
            c->message_size, r->partitions, c->producers, c->acks, c->compression, c->linger_ms,
            c->batch_bytes, c->idempotence > 0 ? "true" : "false", c->rate, c->duration_s,
            c->records, c->warmup_s, c->max_pending);
    fprintf(f, ",\"properties\":{");
    for (int i = 0; i < c->nprops; i++) {
        fprintf(f, "%s", i ? "," : "");
        json_str(f, c->props[i][0]);
        fputc(':', f);
        json_str(f, c->props[i][1]);
    }
    fprintf(f, "}},\"durability\":");
    json_str(f, durability_of(c));
    fprintf(f,
            ",\"sent\":%" PRIu64 ",\"acked\":%" PRIu64 ",\"received\":%" PRIu64
            ",\"errors\":%" PRIu64 ",\"bytes\":%" PRIu64
            ",\"seconds\":%.6f,\"records_per_s\":%.1f,\"mb_per_s\":%.3f,\"startup_s\":%.3f,"
            "\"achieved_rate\":%.1f,\"latency_ms\":{\"ack\":",
            r->sent, r->acked, r->received, r->errors, r->bytes, r->seconds, r->rps, r->mbps,
            r->startup_s, r->achieved_rate);
    json_hist(f, &r->ack);
    fprintf(f, ",\"e2e\":");
    json_hist(f, &r->e2e);
    fprintf(f, "},\"ok\":%s,\"error\":", r->first_error[0] ? "false" : "true");
    if (r->first_error[0])
        json_str(f, r->first_error);
    else
        fprintf(f, "null");
    fprintf(f, "}");
}

void bench_print_json(const bench_cfg_t *c, const bench_result_t *r)
{
    bench_result_json(stdout, c, r);
    fputc('\n', stdout);
    fflush(stdout);
}
