/*
 * bench.h -- what the strata-bench subcommands share: statistics over repeated
 * runs, a banner describing the machine, and small file helpers.
 */
#ifndef BENCH_H
#define BENCH_H

#include <stddef.h>

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

#endif
