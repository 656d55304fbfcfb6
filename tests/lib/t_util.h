/*
 * t_util -- helpers shared by the test suites: temp directories, batch
 * builders, Check runner boilerplate. Tests only.
 */
#ifndef T_UTIL_H
#define T_UTIL_H

#include "sc_recbatch.h"

#include <check.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>

/* Creates a fresh directory under $TMPDIR (or /tmp) named strata-<tag>-XXXXXX
 * and writes its path to out (PATH_MAX). Aborts the test on failure. */
void t_tmpdir(const char *tag, char *out);

/* Removes a tree (like rm -rf). Returns 0 or -errno. */
int t_rm_rf(const char *path);

/* Builds a valid uncompressed batch of n records, value i is value_size bytes
 * of a pattern derived from (seed, i), keys "k<i>", timestamps ts0 + i.
 * Result in b (caller inits/finis). */
void t_batch_make(sc_recbatch_t *b, int n, size_t value_size, uint32_t seed, int64_t ts0);

/* Size of a file, or -1. */
int64_t t_file_size(const char *path);

/* Runs one suite in fork mode and returns the process exit code (0 when all
 * passed). Use as: return t_run_suite(make_suite()); */
int t_run_suite(Suite *s);

#endif
