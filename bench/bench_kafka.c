/*
 * bench_kafka -- the Kafka-protocol drivers of the workloads: libstrata and
 * (when librdkafka-dev was found at build time) librdkafka. Topics are
 * created, described and deleted with libstrata's admin client
 * (bench_kadmin.c), so both clients see the same setup. Both producers get the same settings:
 * acks, compression, linger.ms, batch.size, idempotence; everything else is
 * each client's default (queue.buffering.max.messages 100000 and
 * queue.buffering.max.kbytes 1 GiB in both). Delivery reports run on a
 * thread other than the sender's in both: libstrata's I/O thread, and for
 * librdkafka a thread of ours that sits in rd_kafka_poll (its documented way
 * to serve delivery reports).
 */
#include "bench.h"

#include <strata/client.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef HAVE_RDKAFKA
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>
#endif

static int k_setup(const bench_cfg_t *c, char *err, size_t n)
{
    return bench_kafka_setup_topic_rf(c->brokers, c->topic, c->partitions, c->create,
                                      c->replication_factor, c->min_insync, err, n);
}

static int k_end_offsets(const bench_cfg_t *c, int parts, int64_t *ends, char *err, size_t n)
{
    return bench_kafka_end_offsets(c->brokers, c->topic, parts, ends, err, n);
}

static int k_teardown(const bench_cfg_t *c, char *err, size_t n)
{
    return bench_kafka_delete_topic(c->brokers, c->topic, err, n);
}

static char lsbool[2][6] = {"false", "true"};

/* ---- libstrata ---------------------------------------------------------------- */

typedef struct {
    strata_producer_t *p;
    bench_prod_t *bp;
    const char *topic;
} ls_prod_t;

static void ls_dr(strata_producer_t *p, const strata_message_t *m, void *arg)
{
    (void)p;
    ls_prod_t *lp = arg;
    char e[128];
    if (m->err)
        snprintf(e, sizeof e, "%s: %s", strata_err_name(m->err), strata_err_str(m->err));
    bench_on_ack(lp->bp, m->value, m->value_len, m->err ? e : NULL);
}

static int ls_set(strata_conf_t *conf, const char *k, const char *v, char *err, size_t n)
{
    return strata_conf_set(conf, k, v, err, n) ? -1 : 0;
}

static strata_conf_t *ls_conf(const bench_cfg_t *c, int producer, char *err, size_t n)
{
    strata_conf_t *conf = strata_conf_new();
    char num[32];
    if (!conf)
        return NULL;
    if (ls_set(conf, "bootstrap.servers", c->brokers, err, n))
        goto bad;
    if (producer) {
        snprintf(num, sizeof num, "%d", c->linger_ms);
        if (ls_set(conf, "acks", c->acks, err, n) ||
            ls_set(conf, "compression.type", c->compression, err, n) ||
            ls_set(conf, "linger.ms", num, err, n))
            goto bad;
        snprintf(num, sizeof num, "%ld", c->batch_bytes);
        if (ls_set(conf, "batch.size", num, err, n) ||
            ls_set(conf, "enable.idempotence", lsbool[c->idempotence > 0], err, n))
            goto bad;
    } else if (ls_set(conf, "auto.offset.reset", "earliest", err, n)) {
        goto bad;
    }
    for (int i = 0; i < c->nprops; i++)
        if (ls_set(conf, c->props[i][0], c->props[i][1], err, n))
            goto bad;
    return conf;
bad:
    strata_conf_free(conf);
    return NULL;
}

static int ls_prod_new(const bench_cfg_t *c, bench_prod_t *bp, void **h, char *err, size_t n)
{
    ls_prod_t *lp = calloc(1, sizeof *lp);
    strata_conf_t *conf = lp ? ls_conf(c, 1, err, n) : NULL;
    if (!conf) {
        free(lp);
        return -1;
    }
    lp->bp = bp;
    lp->topic = c->topic;
    strata_err_t rc = strata_producer_new(conf, ls_dr, lp, &lp->p, err, n);
    strata_conf_free(conf);
    if (rc) {
        free(lp);
        return -1;
    }
    *h = lp;
    return 0;
}

static int ls_send(void *h, int32_t part, const void *val, size_t len, char *err, size_t n)
{
    ls_prod_t *lp = h;
    strata_record_t rec = {.topic = lp->topic, .partition = part, .value = val, .value_len = len};
    strata_err_t rc = strata_produce(lp->p, &rec, NULL);
    if (rc == 0)
        return 0;
    if (rc == STRATA_ERR_QUEUE_FULL)
        return 1;
    snprintf(err, n, "strata_produce: %s", strata_err_str(rc));
    return -1;
}

static int ls_flush(void *h, int ms)
{
    ls_prod_t *lp = h;
    return strata_producer_flush(lp->p, ms) ? -1 : 0;
}

static void ls_prod_free(void *h)
{
    ls_prod_t *lp = h;
    if (!lp)
        return;
    strata_producer_free(lp->p);
    free(lp);
}

typedef struct {
    strata_consumer_t *c;
    bench_sink_t *s;
} ls_cons_t;

static int ls_cons_new(const bench_cfg_t *c, int parts, const int64_t *start, bench_sink_t *s,
                       void **h, char *err, size_t n)
{
    ls_cons_t *lc = calloc(1, sizeof *lc);
    strata_topic_partition_t *tps = calloc((size_t)parts, sizeof *tps);
    strata_conf_t *conf = lc && tps ? ls_conf(c, 0, err, n) : NULL;
    if (!conf)
        goto bad;
    if (strata_consumer_new(conf, &lc->c, err, n)) {
        strata_conf_free(conf);
        goto bad;
    }
    strata_conf_free(conf);
    for (int i = 0; i < parts; i++) {
        tps[i].topic = c->topic;
        tps[i].partition = i;
        tps[i].offset = start ? start[i] : STRATA_OFFSET_BEGINNING;
    }
    strata_err_t rc = strata_consumer_assign(lc->c, tps, (size_t)parts);
    if (rc) {
        snprintf(err, n, "strata_consumer_assign: %s", strata_err_str(rc));
        strata_consumer_free(lc->c);
        goto bad;
    }
    free(tps);
    lc->s = s;
    *h = lc;
    return 0;
bad:
    free(tps);
    free(lc);
    return -1;
}

static int ls_poll(void *h, int ms)
{
    ls_cons_t *lc = h;
    int got = 0;
    for (;;) {
        strata_message_t *m = NULL;
        strata_err_t rc = strata_consumer_poll(lc->c, got ? 0 : ms, &m);
        if (rc || !m)
            return got;
        if (m->err) {
            char e[160];
            snprintf(e, sizeof e, "%s [%d]: %s", m->topic, m->partition, strata_err_str(m->err));
            bench_on_consume_error(lc->s, e);
        } else {
            bench_on_record(lc->s, m->value, m->value_len);
        }
        strata_message_free(m);
        if (++got >= 10000)
            return got;
    }
}

static void ls_cons_free(void *h)
{
    ls_cons_t *lc = h;
    if (!lc)
        return;
    strata_consumer_free(lc->c);
    free(lc);
}

static const bench_ops_t ls_ops = {
    .name = "libstrata",
    .setup = k_setup,
    .end_offsets = k_end_offsets,
    .teardown = k_teardown,
    .prod_new = ls_prod_new,
    .prod_send = ls_send,
    .prod_flush = ls_flush,
    .prod_free = ls_prod_free,
    .cons_new = ls_cons_new,
    .cons_poll = ls_poll,
    .cons_free = ls_cons_free,
};

const bench_ops_t *bench_ops_libstrata(void) { return &ls_ops; }

/* ---- librdkafka ----------------------------------------------------------------- */

#ifdef HAVE_RDKAFKA
typedef struct {
    rd_kafka_t *rk;
    rd_kafka_topic_t *rkt;
    rd_kafka_queue_t *q;
    bench_prod_t *bp;
    bench_sink_t *s;
    int parts;
    pthread_t poller;
    atomic_int stop;
} rk_t;

static int rk_set(rd_kafka_conf_t *conf, const char *k, const char *v, char *err, size_t n)
{
    char e[256];
    if (rd_kafka_conf_set(conf, k, v, e, sizeof e) != RD_KAFKA_CONF_OK) {
        snprintf(err, n, "%s=%s: %s", k, v, e);
        return -1;
    }
    return 0;
}

static void rk_dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    rk_t *r = opaque;
    bench_on_ack(r->bp, m->payload, m->len, m->err ? rd_kafka_err2str(m->err) : NULL);
}

/* Serves delivery reports the whole time, as libstrata's I/O thread does. */
static void *rk_poller(void *arg)
{
    rk_t *r = arg;
    while (!atomic_load(&r->stop))
        rd_kafka_poll(r->rk, 100);
    rd_kafka_poll(r->rk, 0);
    return NULL;
}

static rd_kafka_conf_t *rk_conf(const bench_cfg_t *c, rk_t *r, int producer, char *err, size_t n)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char num[32];
    if (rk_set(conf, "bootstrap.servers", c->brokers, err, n))
        goto bad;
    if (producer) {
        snprintf(num, sizeof num, "%d", c->linger_ms);
        if (rk_set(conf, "acks", c->acks, err, n) ||
            rk_set(conf, "compression.codec", c->compression, err, n) ||
            rk_set(conf, "linger.ms", num, err, n))
            goto bad;
        snprintf(num, sizeof num, "%ld", c->batch_bytes);
        if (rk_set(conf, "batch.size", num, err, n) ||
            rk_set(conf, "enable.idempotence", lsbool[c->idempotence > 0], err, n))
            goto bad;
        rd_kafka_conf_set_dr_msg_cb(conf, rk_dr);
    }
    for (int i = 0; i < c->nprops; i++)
        if (rk_set(conf, c->props[i][0], c->props[i][1], err, n))
            goto bad;
    rd_kafka_conf_set_opaque(conf, r);
    return conf;
bad:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

static int rk_prod_new(const bench_cfg_t *c, bench_prod_t *bp, void **h, char *err, size_t n)
{
    rk_t *r = calloc(1, sizeof *r);
    rd_kafka_conf_t *conf = r ? rk_conf(c, r, 1, err, n) : NULL;
    if (!conf) {
        free(r);
        return -1;
    }
    r->bp = bp;
    char e[256];
    r->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, e, sizeof e);
    if (!r->rk) {
        snprintf(err, n, "rd_kafka_new: %s", e);
        rd_kafka_conf_destroy(conf);
        free(r);
        return -1;
    }
    r->rkt = rd_kafka_topic_new(r->rk, c->topic, NULL);
    if (pthread_create(&r->poller, NULL, rk_poller, r)) {
        snprintf(err, n, "cannot start the delivery-report thread");
        rd_kafka_topic_destroy(r->rkt);
        rd_kafka_destroy(r->rk);
        free(r);
        return -1;
    }
    *h = r;
    return 0;
}

static int rk_send(void *h, int32_t part, const void *val, size_t len, char *err, size_t n)
{
    rk_t *r = h;
    if (rd_kafka_produce(r->rkt, part, RD_KAFKA_MSG_F_COPY, (void *)val, len, NULL, 0, NULL) == 0)
        return 0;
    rd_kafka_resp_err_t e = rd_kafka_last_error();
    if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL)
        return 1;
    snprintf(err, n, "rd_kafka_produce: %s", rd_kafka_err2str(e));
    return -1;
}

static int rk_flush(void *h, int ms)
{
    /* the poller serves the reports; the engine waits for them */
    (void)h;
    (void)ms;
    return 0;
}

static void rk_prod_free(void *h)
{
    rk_t *r = h;
    if (!r)
        return;
    atomic_store(&r->stop, 1);
    pthread_join(r->poller, NULL);
    rd_kafka_topic_destroy(r->rkt);
    rd_kafka_destroy(r->rk);
    free(r);
}

static int rk_cons_new(const bench_cfg_t *c, int parts, const int64_t *start, bench_sink_t *s,
                       void **h, char *err, size_t n)
{
    rk_t *r = calloc(1, sizeof *r);
    rd_kafka_conf_t *conf = r ? rk_conf(c, r, 0, err, n) : NULL;
    if (!conf) {
        free(r);
        return -1;
    }
    char e[256];
    r->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, e, sizeof e);
    if (!r->rk) {
        snprintf(err, n, "rd_kafka_new: %s", e);
        rd_kafka_conf_destroy(conf);
        free(r);
        return -1;
    }
    r->s = s;
    r->parts = parts;
    r->rkt = rd_kafka_topic_new(r->rk, c->topic, NULL);
    r->q = rd_kafka_queue_new(r->rk);
    for (int i = 0; i < parts; i++)
        if (rd_kafka_consume_start_queue(r->rkt, i, start ? start[i] : RD_KAFKA_OFFSET_BEGINNING,
                                         r->q)) {
            snprintf(err, n, "consume_start_queue: %s", rd_kafka_err2str(rd_kafka_last_error()));
            return -1;
        }
    *h = r;
    return 0;
}

static int rk_poll(void *h, int ms)
{
    rk_t *r = h;
    rd_kafka_message_t *msgs[4096];
    /* consume_batch waits for a full batch or the timeout: wait for one
     * record, then take what else is there without waiting */
    msgs[0] = rd_kafka_consume_queue(r->q, ms);
    if (!msgs[0])
        return 0;
    ssize_t k = rd_kafka_consume_batch_queue(r->q, 0, msgs + 1, 4095);
    k = k < 0 ? 1 : k + 1;
    for (ssize_t i = 0; i < k; i++) {
        rd_kafka_message_t *m = msgs[i];
        if (m->err) {
            if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                bench_on_consume_error(r->s, rd_kafka_message_errstr(m));
        } else {
            bench_on_record(r->s, m->payload, m->len);
        }
        rd_kafka_message_destroy(m);
    }
    return (int)k;
}

static void rk_cons_free(void *h)
{
    rk_t *r = h;
    if (!r)
        return;
    for (int i = 0; i < r->parts; i++)
        rd_kafka_consume_stop(r->rkt, i);
    rd_kafka_queue_destroy(r->q);
    rd_kafka_topic_destroy(r->rkt);
    rd_kafka_destroy(r->rk);
    free(r);
}

static const bench_ops_t rk_ops = {
    .name = "librdkafka",
    .setup = k_setup,
    .end_offsets = k_end_offsets,
    .teardown = k_teardown,
    .prod_new = rk_prod_new,
    .prod_send = rk_send,
    .prod_flush = rk_flush,
    .prod_free = rk_prod_free,
    .cons_new = rk_cons_new,
    .cons_poll = rk_poll,
    .cons_free = rk_cons_free,
};

const bench_ops_t *bench_ops_rdkafka(void) { return &rk_ops; }
#else
const bench_ops_t *bench_ops_rdkafka(void) { return NULL; }
#endif
