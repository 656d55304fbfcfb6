/*
 * rdkafka-load -- a load generator on librdkafka (the client kcat and most
 * Kafka applications in C use), to drive any Kafka-protocol broker the way
 * its users' clients would.
 *
 *   rdkafka-load produce -b HOST:PORT -t TOPIC -n RECORDS [-s BYTES] [--acks 1|all|0]
 *                        [--linger-ms N] [--batch-bytes N] [--compression C]
 *   rdkafka-load consume -b HOST:PORT -t TOPIC -n RECORDS [--fetch-max-bytes N]
 *
 * produce sends RECORDS records of BYTES (default 1024) to partition 0 as fast
 * as librdkafka takes them, waits for every delivery report and counts
 * failures; consume reads RECORDS records from the beginning of partition 0
 * (catch-up read) with the simple consumer (no group), timed from the first
 * record it receives. Each prints one line:
 *
 *   result op=produce records=N bytes=B seconds=S rps=R mbps=M errors=E
 *
 * which bench/broker.sh parses. Exit 0 only when every record was delivered
 * (produce) or read (consume).
 */
#include <getopt.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long delivered, failed;
static char first_error[256];

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    (void)opaque;
    if (m->err) {
        if (!failed++)
            snprintf(first_error, sizeof first_error, "%s", rd_kafka_err2str(m->err));
    } else {
        delivered++;
    }
}

static int set(rd_kafka_conf_t *c, const char *k, const char *v)
{
    char err[256];
    if (rd_kafka_conf_set(c, k, v, err, sizeof err) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "rdkafka-load: %s=%s: %s\n", k, v, err);
        return -1;
    }
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: rdkafka-load produce|consume -b HOST:PORT -t TOPIC -n RECORDS [options]\n"
               "  -s BYTES              record value size (produce; default 1024)\n"
               "  --acks 0|1|all        produce acks (default all)\n"
               "  --linger-ms N         librdkafka linger.ms (default 5)\n"
               "  --batch-bytes N       librdkafka batch.size (default 1000000)\n"
               "  --compression C       none|gzip|snappy|lz4|zstd (default none)\n"
               "  --fetch-max-bytes N   consume: fetch.message.max.bytes per partition (default 1048576)\n"
               "  -X key=value          any other librdkafka property\n");
}

int main(int argc, char **argv)
{
    const char *brokers = NULL, *topic = NULL, *acks = "all", *linger = "5",
               *batch = "1000000", *codec = "none", *fetch_max = "1048576";
    long n = 0, size = 1024;
    char err[512];
    static const struct option lo[] = {{"acks", 1, 0, 'a'},        {"linger-ms", 1, 0, 'l'},
                                       {"batch-bytes", 1, 0, 'B'}, {"compression", 1, 0, 'z'},
                                       {"fetch-max-bytes", 1, 0, 'F'}, {"help", 0, 0, 'h'},
                                       {0, 0, 0, 0}};
    if (argc < 2 || (strcmp(argv[1], "produce") && strcmp(argv[1], "consume"))) {
        usage(argc > 1 && !strcmp(argv[1], "--help") ? stdout : stderr);
        return argc > 1 && !strcmp(argv[1], "--help") ? 0 : 2;
    }
    int produce = strcmp(argv[1], "produce") == 0;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    int c;
    optind = 2;
    while ((c = getopt_long(argc, argv, "b:t:n:s:X:h", lo, NULL)) != -1) {
        switch (c) {
        case 'b': brokers = optarg; break;
        case 't': topic = optarg; break;
        case 'n': n = atol(optarg); break;
        case 's': size = atol(optarg); break;
        case 'a': acks = optarg; break;
        case 'l': linger = optarg; break;
        case 'B': batch = optarg; break;
        case 'z': codec = optarg; break;
        case 'F': fetch_max = optarg; break;
        case 'X': {
            char *eq = strchr(optarg, '=');
            if (!eq) {
                usage(stderr);
                return 2;
            }
            *eq = 0;
            if (set(conf, optarg, eq + 1))
                return 2;
            break;
        }
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!brokers || !topic || n <= 0 || size < 0) {
        usage(stderr);
        return 2;
    }
    if (set(conf, "bootstrap.servers", brokers))
        return 2;

    if (produce) {
        if (set(conf, "acks", acks) || set(conf, "linger.ms", linger) ||
            set(conf, "batch.size", batch) || set(conf, "compression.codec", codec) ||
            set(conf, "queue.buffering.max.kbytes", "1048576") ||
            set(conf, "queue.buffering.max.messages", "1000000"))
            return 2;
        rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
        rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
        if (!rk) {
            fprintf(stderr, "rdkafka-load: %s\n", err);
            return 1;
        }
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
        char *payload = malloc((size_t)size + 1);
        for (long i = 0; i < size; i++)
            payload[i] = (char)('a' + i % 26);
        double t0 = now_s();
        for (long i = 0; i < n;) {
            /* no copy: the payload is static for the whole run */
            if (rd_kafka_produce(rkt, 0, 0, payload, (size_t)size, NULL, 0, NULL) == 0) {
                i++;
                continue;
            }
            if (rd_kafka_last_error() != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                fprintf(stderr, "rdkafka-load: produce: %s\n",
                        rd_kafka_err2str(rd_kafka_last_error()));
                return 1;
            }
            rd_kafka_poll(rk, 10);
        }
        while (delivered + failed < n)
            rd_kafka_poll(rk, 50);
        double secs = now_s() - t0;
        printf("result op=produce acks=%s records=%ld bytes=%ld seconds=%.3f rps=%.0f mbps=%.1f "
               "errors=%ld\n",
               acks, delivered, delivered * size, secs, (double)delivered / secs,
               (double)delivered * (double)size / secs / 1e6, failed);
        if (failed)
            fprintf(stderr, "rdkafka-load: %ld deliveries failed, first: %s\n", failed, first_error);
        rd_kafka_topic_destroy(rkt);
        rd_kafka_destroy(rk);
        free(payload);
        return failed ? 1 : 0;
    }

    if (set(conf, "fetch.message.max.bytes", fetch_max) || set(conf, "fetch.wait.max.ms", "100") ||
        set(conf, "queued.min.messages", "1000000"))
        return 2;
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    if (!rk) {
        fprintf(stderr, "rdkafka-load: %s\n", err);
        return 1;
    }
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    if (rd_kafka_consume_start(rkt, 0, RD_KAFKA_OFFSET_BEGINNING)) {
        fprintf(stderr, "rdkafka-load: consume_start: %s\n",
                rd_kafka_err2str(rd_kafka_last_error()));
        return 1;
    }
    long got = 0, bytes = 0, errors = 0;
    /* The clock starts at the first record: librdkafka spends ~0.5 s on
     * metadata and offset lookups before its first fetch, which is the
     * client's start-up, not the broker's catch-up rate. It is reported as
     * startup=. */
    double start = now_s(), t0 = 0, idle_since = start;
    rd_kafka_message_t *msgs[4096];
    while (got < n) {
        ssize_t k = rd_kafka_consume_batch(rkt, 0, 1000, msgs, 4096);
        if (k <= 0) {
            if (now_s() - idle_since > 30) {
                fprintf(stderr, "rdkafka-load: no records for 30 s (%ld of %ld read)\n", got, n);
                break;
            }
            continue;
        }
        idle_since = now_s();
        for (ssize_t i = 0; i < k; i++) {
            if (msgs[i]->err) {
                if (msgs[i]->err != RD_KAFKA_RESP_ERR__PARTITION_EOF && !errors++)
                    fprintf(stderr, "rdkafka-load: consume: %s\n",
                            rd_kafka_message_errstr(msgs[i]));
            } else {
                if (got++ == 0)
                    t0 = now_s();
                bytes += (long)msgs[i]->len;
            }
            rd_kafka_message_destroy(msgs[i]);
        }
    }
    double end = now_s(), secs = got ? end - t0 : end - start;
    printf("result op=consume records=%ld bytes=%ld seconds=%.3f rps=%.0f mbps=%.1f errors=%ld "
           "startup=%.3f\n",
           got, bytes, secs, (double)got / secs, (double)bytes / secs / 1e6, errors,
           got ? t0 - start : 0.0);
    rd_kafka_consume_stop(rkt, 0);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);
    return got >= n && !errors ? 0 : 1;
}
