/*
 * bench.h -- what the strata-bench subcommands share: statistics over repeated
 * runs, a banner describing the machine, small file helpers, and the
 * workload engine (produce / consume / latency) with its client drivers.
 */
#ifndef BENCH_H
#define BENCH_H

#include "sc_hist.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct {
    double min, median, max;
} bench_stats_t;

/* min / median / max of v[0..n) (n >= 1). v is reordered. */
bench_stats_t bench_stats(double *v, int n);

/* Prints cores, memory, kernel, CPU model, the filesystem under dir. */
void bench_machine_banner(const char *dir);

int bench_mkdir_p(const char *dir); /* 0 or -1 with errno */
int bench_rm_rf(const char *path);  /* 0 or -1; a missing path is 0 */

/* Subcommands. */
int bench_storage_main(int argc, char **argv);
int bench_workload_main(int argc, char **argv); /* produce | consume | latency */
int bench_compare_main(int argc, char **argv);

/* ---- workloads (bench_work.c) ------------------------------------------------- */

typedef enum { BW_PRODUCE, BW_CONSUME, BW_LATENCY } bench_workload_t;
typedef enum { BC_LIBSTRATA, BC_RDKAFKA, BC_NATS } bench_client_t;

#define BENCH_MAX_PROPS 32
#define BENCH_HDR 16 /* payload header: intended send time (ns, CLOCK_MONOTONIC) + sequence */

typedef struct {
    bench_workload_t workload;
    bench_client_t client;
    const char *brokers; /* Kafka bootstrap HOST:PORT, or the NATS URL */
    char topic[200];     /* Kafka topic / NATS subject (stream = topic with . -> _) */
    int message_size;
    int partitions;
    int producers;
    const char *acks;
    const char *compression;
    int linger_ms;
    long batch_bytes;
    double rate;       /* records/s over all producers; 0 = as fast as possible */
    double duration_s; /* 0 = until records */
    long records;      /* 0 = until duration (consume: 0 = to the end at start) */
    double warmup_s;   /* latency from records intended before t0+warmup not counted */
    int max_pending;   /* NATS: outstanding async publishes */
    int create;        /* create the topic / stream when missing */
    int quiet;         /* no progress line */
    int json;
    int idempotence;   /* Kafka producers: enable.idempotence (libstrata's default with acks=all) */
    const char *durability; /* what an ack means on the server, as the caller knows it */
    int replication_factor; /* topic / stream created with this many replicas; 0 = server default
                               (Kafka) / 1 (JetStream) */
    int min_insync;         /* Kafka topic min.insync.replicas when created; 0 = broker default */
    int nprops;
    const char *props[BENCH_MAX_PROPS][2]; /* -X key=value for the client */
} bench_cfg_t;

typedef struct {
    uint64_t sent, acked, errors, received, bytes;
    double seconds;   /* produce: first send -> last ack; consume: first -> last record */
    double rps, mbps; /* records/s and MB/s (10^6 B) of acked (produce) / received (consume) */
    double startup_s; /* consume: from start to the first record */
    double achieved_rate; /* sent / send phase (fixed-rate runs) */
    int partitions;
    char first_error[256];
    sc_hist_t ack; /* intended send -> delivery report, ns */
    sc_hist_t e2e; /* intended send -> consumer receive, ns (latency workload) */
} bench_result_t;

void bench_cfg_defaults(bench_cfg_t *c, bench_workload_t w);
const char *bench_workload_name(bench_workload_t w);
const char *bench_client_name(bench_client_t c);
/* Runs one workload. r is zeroed first. 0, or -1 with r->first_error set
 * (setup failure, or records lost / not all delivered). */
int bench_run(const bench_cfg_t *c, bench_result_t *r);
void bench_print_result(const bench_cfg_t *c, const bench_result_t *r);
void bench_print_json(const bench_cfg_t *c, const bench_result_t *r);
/* One JSON object, no newline. */
void bench_result_json(FILE *f, const bench_cfg_t *c, const bench_result_t *r);

/* ---- drivers ------------------------------------------------------------------- */

typedef struct bench_prod bench_prod_t; /* engine state of one producer */
typedef struct bench_sink bench_sink_t; /* engine state of the consumer */

/* Called by a driver once per delivery report (any one thread per producer).
 * val/len: the record as sent; err: NULL = acknowledged, else the reason. */
void bench_on_ack(bench_prod_t *bp, const void *val, size_t len, const char *err);
/* Called by a driver once per consumed record (one thread at a time). */
void bench_on_record(bench_sink_t *s, const void *val, size_t len);
void bench_on_consume_error(bench_sink_t *s, const char *err);

typedef struct {
    const char *name;
    /* create the topic/stream if missing (c->create); returns its partition count or -1 */
    int (*setup)(const bench_cfg_t *c, char *err, size_t n);
    /* next offset of each partition (NATS: one, last sequence + 1) */
    int (*end_offsets)(const bench_cfg_t *c, int parts, int64_t *ends, char *err, size_t n);
    int (*teardown)(const bench_cfg_t *c, char *err, size_t n); /* delete topic/stream */
    int (*prod_new)(const bench_cfg_t *c, bench_prod_t *bp, void **h, char *err, size_t n);
    /* 0 queued; 1 full (retry later); -1 failed (err written) */
    int (*prod_send)(void *h, int32_t partition, const void *val, size_t len, char *err, size_t n);
    int (*prod_flush)(void *h, int timeout_ms);
    void (*prod_free)(void *h);
    /* start: per-partition offsets, NULL = from the beginning */
    int (*cons_new)(const bench_cfg_t *c, int parts, const int64_t *start, bench_sink_t *s,
                    void **h, char *err, size_t n);
    /* delivers what arrives within timeout_ms through bench_on_record; <0 on error */
    int (*cons_poll)(void *h, int timeout_ms);
    void (*cons_free)(void *h);
} bench_ops_t;

/* NULL when the client was not built in (librdkafka-dev / libnats-dev missing). */
const bench_ops_t *bench_ops_libstrata(void);
const bench_ops_t *bench_ops_rdkafka(void);
const bench_ops_t *bench_ops_nats(void);

/* Raw Kafka admin (bench_kadmin.c). */
int bench_kafka_setup_topic(const char *bootstrap, const char *topic, int partitions, int create,
                            char *err, size_t errn);
/* The same with a replication factor (-1 = default) and min.insync.replicas (0 = default). */
int bench_kafka_setup_topic_rf(const char *bootstrap, const char *topic, int partitions, int create,
                               int rf, int min_insync, char *err, size_t errn);
int bench_kafka_delete_topic(const char *bootstrap, const char *topic, char *err, size_t errn);
int bench_kafka_end_offsets(const char *bootstrap, const char *topic, int parts, int64_t *ends,
                            char *err, size_t errn);

#endif
