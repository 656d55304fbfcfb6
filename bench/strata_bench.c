/*
 * strata-bench -- Strata's benchmark harness. Benchmarks are never tests: they
 * print figures, ratios against the machine's own limits and against peers
 * measured in the same run, and assert nothing.
 */
#include "bench.h"

#include <stdio.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f, "usage: strata-bench <command> [options]\n"
               "commands:\n"
               "  produce   produce to a topic at max rate or a fixed rate (any Kafka broker, or\n"
               "            NATS JetStream with --client nats)\n"
               "  consume   catch-up consume of a topic from its beginning\n"
               "  latency   end-to-end latency at a fixed rate (p50/p99/p99.9/max)\n"
               "  compare   stratad vs NATS JetStream (and libstrata vs librdkafka), same run\n"
               "  storage   the storage engine vs plain write/fdatasync on the same disk\n"
               "run 'strata-bench <command> --help' for a command's options\n");
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("strata-bench %s\n", STRATA_VERSION);
        return 0;
    }
    if (strcmp(argv[1], "storage") == 0)
        return bench_storage_main(argc - 1, argv + 1);
    if (!strcmp(argv[1], "produce") || !strcmp(argv[1], "consume") || !strcmp(argv[1], "latency"))
        return bench_workload_main(argc - 1, argv + 1);
    if (strcmp(argv[1], "compare") == 0)
        return bench_compare_main(argc - 1, argv + 1);
    fprintf(stderr, "strata-bench: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
