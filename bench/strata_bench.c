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
    fprintf(stderr, "strata-bench: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
