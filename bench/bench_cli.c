/*
 * bench_cli -- `strata-bench produce | consume | latency`: options -> one
 * bench_cfg_t -> bench_run -> a table (or --json).
 */
#include "bench.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void usage(FILE *f, const char *cmd)
{
    fprintf(f,
            "usage: strata-bench %s -b BROKERS [options]\n"
            "  -b, --brokers ADDR     Kafka bootstrap HOST:PORT, or nats://HOST:PORT with --client nats\n"
            "  --client C             libstrata (default) | rdkafka | nats (JetStream)\n"
            "  -t, --topic NAME       topic / subject (default strata-bench; created if missing)\n"
            "  --no-create            fail instead of creating a missing topic / stream\n"
            "  -s, --message-size B   record value size, >= 16 (default 1024)\n"
            "  -p, --partitions N     partitions of a created topic (default 1)\n"
            "  --producers N          producer handles, one thread each (default 1)\n"
            "  --acks A               0 | 1 | all (default all)\n"
            "  --compression C        none | gzip | snappy | lz4 | zstd (default none)\n"
            "  --linger-ms N          linger.ms (default 5)\n"
            "  --batch-bytes N        batch.size (default 1000000)\n"
            "  --idempotence on|off   enable.idempotence (default: on with acks=all)\n"
            "  -r, --rate N           records/s over all producers; 0 = max (default: 0; latency 5000)\n"
            "  -d, --duration S       seconds of sending (default 10 unless --records)\n"
            "  -n, --records N        records to send (produce) / read (consume; default: up to\n"
            "                         the end offsets at start)\n"
            "  --warmup S             latency: records intended in the first S seconds are not\n"
            "                         counted (default 1 for latency, 0 for produce)\n"
            "  --max-pending N        nats: outstanding async publishes (default 4096)\n"
            "  -X key=value           any client property (libstrata / librdkafka names)\n"
            "  --durability TEXT      what an ack means on this server, for the report\n"
            "  --json                 one JSON object on stdout instead of the table\n"
            "  -q, --quiet            no progress line on stderr\n"
            "produce: sends as fast as the client takes records (or at --rate), reports\n"
            "  acked records/s and MB/s and ack latency from each record's intended send time.\n"
            "consume: catch-up read from the beginning of every partition, timed from the\n"
            "  first record. latency: a consumer tails the topic while producers send at\n"
            "  --rate; end-to-end latency = receive time - intended send time (no\n"
            "  coordinated omission), p50/p99/p99.9/max.\n",
            cmd);
}

int bench_parse_client(const char *s, bench_client_t *out)
{
    if (!strcmp(s, "libstrata") || !strcmp(s, "strata"))
        *out = BC_LIBSTRATA;
    else if (!strcmp(s, "rdkafka") || !strcmp(s, "librdkafka"))
        *out = BC_RDKAFKA;
    else if (!strcmp(s, "nats") || !strcmp(s, "jetstream"))
        *out = BC_NATS;
    else
        return -1;
    return 0;
}

int bench_workload_main(int argc, char **argv)
{
    const char *cmd = argv[0];
    bench_workload_t w;
    if (!strcmp(cmd, "produce"))
        w = BW_PRODUCE;
    else if (!strcmp(cmd, "consume"))
        w = BW_CONSUME;
    else
        w = BW_LATENCY;
    bench_cfg_t c;
    bench_cfg_defaults(&c, w);
    int warm_set = 0;
    enum { O_CLIENT = 256, O_NOCREATE, O_PRODUCERS, O_ACKS, O_COMP, O_LINGER, O_BATCH, O_IDEM,
           O_WARMUP, O_PENDING, O_DUR, O_JSON };
    static const struct option lo[] = {
        {"brokers", 1, 0, 'b'},         {"client", 1, 0, O_CLIENT},
        {"topic", 1, 0, 't'},           {"no-create", 0, 0, O_NOCREATE},
        {"message-size", 1, 0, 's'},    {"partitions", 1, 0, 'p'},
        {"producers", 1, 0, O_PRODUCERS}, {"acks", 1, 0, O_ACKS},
        {"compression", 1, 0, O_COMP},  {"linger-ms", 1, 0, O_LINGER},
        {"batch-bytes", 1, 0, O_BATCH}, {"idempotence", 1, 0, O_IDEM},
        {"rate", 1, 0, 'r'},            {"duration", 1, 0, 'd'},
        {"records", 1, 0, 'n'},         {"warmup", 1, 0, O_WARMUP},
        {"max-pending", 1, 0, O_PENDING}, {"durability", 1, 0, O_DUR},
        {"json", 0, 0, O_JSON},         {"quiet", 0, 0, 'q'},
        {"help", 0, 0, 'h'},            {0, 0, 0, 0}};
    int o;
    optind = 1;
    while ((o = getopt_long(argc, argv, "b:t:s:p:r:d:n:X:qh", lo, NULL)) != -1) {
        switch (o) {
        case 'b': c.brokers = optarg; break;
        case O_CLIENT:
            if (bench_parse_client(optarg, &c.client)) {
                fprintf(stderr, "strata-bench: --client %s: want libstrata, rdkafka or nats\n",
                        optarg);
                return 2;
            }
            break;
        case 't': snprintf(c.topic, sizeof c.topic, "%s", optarg); break;
        case O_NOCREATE: c.create = 0; break;
        case 's': c.message_size = atoi(optarg); break;
        case 'p': c.partitions = atoi(optarg); break;
        case O_PRODUCERS: c.producers = atoi(optarg); break;
        case O_ACKS: c.acks = optarg; break;
        case O_COMP: c.compression = optarg; break;
        case O_LINGER: c.linger_ms = atoi(optarg); break;
        case O_BATCH: c.batch_bytes = atol(optarg); break;
        case O_IDEM:
            c.idempotence = !strcmp(optarg, "on") || !strcmp(optarg, "true") || !strcmp(optarg, "1");
            break;
        case 'r': c.rate = atof(optarg); break;
        case 'd': c.duration_s = atof(optarg); break;
        case 'n': c.records = atol(optarg); break;
        case O_WARMUP: c.warmup_s = atof(optarg); warm_set = 1; break;
        case O_PENDING: c.max_pending = atoi(optarg); break;
        case O_DUR: c.durability = optarg; break;
        case O_JSON: c.json = 1; break;
        case 'q': c.quiet = 1; break;
        case 'X': {
            char *eq = strchr(optarg, '=');
            if (!eq || c.nprops >= BENCH_MAX_PROPS) {
                fprintf(stderr, "strata-bench: -X wants key=value (at most %d)\n", BENCH_MAX_PROPS);
                return 2;
            }
            *eq = 0;
            c.props[c.nprops][0] = optarg;
            c.props[c.nprops][1] = eq + 1;
            c.nprops++;
            break;
        }
        case 'h': usage(stdout, cmd); return 0;
        default: usage(stderr, cmd); return 2;
        }
    }
    (void)warm_set;
    if (optind < argc) {
        fprintf(stderr, "strata-bench %s: unexpected argument '%s'\n", cmd, argv[optind]);
        return 2;
    }
    if (!c.brokers) {
        if (c.client == BC_NATS)
            c.brokers = "nats://127.0.0.1:4222";
        else {
            fprintf(stderr, "strata-bench %s: -b HOST:PORT is required\n", cmd);
            return 2;
        }
    }
    if (c.message_size < BENCH_HDR || c.partitions < 1 || c.producers < 1 || c.producers > 256 ||
        c.rate < 0 || c.duration_s < 0 || c.records < 0 || c.max_pending < 1) {
        fprintf(stderr, "strata-bench %s: bad option value (message-size >= %d, partitions >= 1, "
                        "1 <= producers <= 256, rate/duration/records >= 0)\n",
                cmd, BENCH_HDR);
        return 2;
    }
    if (w == BW_LATENCY && c.rate <= 0) {
        fprintf(stderr, "strata-bench latency: --rate must be > 0 (records/s)\n");
        return 2;
    }
    if (w != BW_CONSUME && !c.duration_s && !c.records)
        c.duration_s = 10;
    if (c.idempotence < 0)
        c.idempotence = c.client != BC_NATS && !strcmp(c.acks, "all");
    bench_result_t *r = malloc(sizeof *r);
    if (!r)
        return 1;
    int rc = bench_run(&c, r);
    if (c.json)
        bench_print_json(&c, r);
    else
        bench_print_result(&c, r);
    if (rc && !c.json)
        fprintf(stderr, "strata-bench %s: %s\n", cmd, r->first_error);
    free(r);
    return rc ? 1 : 0;
}
