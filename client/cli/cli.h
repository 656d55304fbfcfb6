/*
 * cli -- the strata command-line tool: shared state, option parsing, output.
 *
 * One file per command group (cli_topic.c, cli_produce.c, cli_consume.c,
 * cli_group.c, cli_cluster.c), this header, cli_out.c (tables, JSON,
 * escaping, errors) and main.c (global options, dispatch). Exit codes: 0
 * success, 1 a request failed (the Kafka error name and message are printed),
 * 2 a usage error. Reference: docs/cli.md.
 */
#ifndef CLI_H
#define CLI_H

#include "strata/client.h"

#include <getopt.h>
#include <stdint.h>
#include <stdio.h>

enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };

/* Global options, shared by every command. */
typedef struct {
    strata_conf_t *conf; /* bootstrap.servers + every -X */
    int json;            /* --format json */
    const char *format;  /* --format as given (consume: a template) */
} cli_t;

extern cli_t cli;

/* Parses a command's options, with the global ones (-b, -X, --format, -h)
 * merged in. on_opt gets every command option (not the globals); it returns
 * 0 or CLI_USAGE. -h prints usage and exits 0. Returns optind, or -1 after
 * printing a usage error. */
typedef int (*cli_opt_fn)(int c, const char *arg, void *ctx);
int cli_getopt(int argc, char **argv, const char *shortopts, const struct option *longopts,
               cli_opt_fn on_opt, void *ctx, const char *usage);
/* Handles one global option (main and cli_getopt). 0, or CLI_USAGE. */
int cli_global_opt(int c, const char *arg);

/* "strata: <fmt>" on stderr; returns CLI_USAGE (plus a hint to --help). */
int cli_usage_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "strata: <what>: NAME: message" on stderr; returns CLI_FAIL. */
int cli_fail(strata_err_t err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Same, plus the broker's own message (may be NULL). */
int cli_fail_msg(strata_err_t err, const char *broker_msg, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A new admin client on cli.conf; NULL after printing why. */
strata_admin_t *cli_admin(void);

/* Parses a decimal int64 (whole string); 0 or -1. */
int cli_parse_i64(const char *s, int64_t *out);
/* "2026-11-26T09:15:00Z", "2026-11-26T09:15:00.123+01:00", "2026-11-26" or
 * milliseconds since the epoch -> ms. 0 or -1. */
int cli_parse_time(const char *s, int64_t *ms);

/* ---- tables ---- */
typedef struct cli_table cli_table_t;
cli_table_t *tbl_new(int ncols, ...);               /* headers */
void tbl_row(cli_table_t *t, ...);                  /* ncols strings (NULL = "-") */
void tbl_rowf(cli_table_t *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* tbl_rowf: one row from a format whose output cells are separated by '\t' */
void tbl_print(cli_table_t *t, FILE *f);            /* prints and frees */

/* ---- JSON (to stdout) ---- */
typedef struct {
    FILE *f;
    int depth;
    int first[32];
    int after_key;
} jw_t;
void jw_init(jw_t *j, FILE *f);
void jw_obj(jw_t *j);
void jw_obj_end(jw_t *j);
void jw_arr(jw_t *j);
void jw_arr_end(jw_t *j);
void jw_key(jw_t *j, const char *k);
void jw_str(jw_t *j, const char *s);               /* NULL = null */
void jw_strn(jw_t *j, const void *p, size_t n);    /* bytes as a JSON string */
void jw_int(jw_t *j, int64_t v);
void jw_bool(jw_t *j, int v);
void jw_null(jw_t *j);
void jw_end(jw_t *j);                              /* newline */
/* JSON string body of n bytes (valid UTF-8 kept, controls escaped, other
 * bytes as \u00XX) without quotes. */
void cli_json_escape(FILE *f, const void *p, size_t n);

/* ---- commands ---- */
int cmd_topic(int argc, char **argv);
int cmd_produce(int argc, char **argv);
int cmd_consume(int argc, char **argv);
int cmd_group(int argc, char **argv);
int cmd_cluster(int argc, char **argv);
int cmd_plugin(int argc, char **argv); /* cli_plugin.c: plugin list|status */

#endif
