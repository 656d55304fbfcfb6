/*
 * cli_produce -- strata produce: one record per input line.
 */
#include "cli.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char produce_usage[] =
    "usage: strata produce <topic> [file...] [options]\n"
    "\n"
    "Writes one record per line of the files (or stdin when none, or for \"-\").\n"
    "The newline is not part of the record.\n"
    "\n"
    "  -k, --key-separator SEP   split each line at the first SEP: key before, value\n"
    "                            after (a line without SEP gets a null key)\n"
    "  -H, --header KEY=VALUE    a header on every record, repeatable\n"
    "  -p, --partition N         write to partition N (default: the partitioner: murmur2\n"
    "                            of the key, spread for null keys)\n"
    "      --rate N              at most N records per second\n"
    "  -z, --compression CODEC   none, gzip, snappy, lz4, zstd\n"
    "      --acks 0|1|all        acknowledgement level (default all)\n"
    "      --progress            print the progress line even when stderr is not a terminal\n"
    "  plus the global options (strata --help)\n"
    "\n"
    "A progress line (records, MB, rate, and the ETA when the input size is known)\n"
    "is shown on stderr while it runs when stderr is a terminal. Ctrl-C stops\n"
    "reading and waits for the records already read to be acknowledged.\n";

typedef struct {
    const char *sep;
    strata_header_t hdr[64];
    size_t nhdr;
    int32_t partition;
    double rate;
    int progress;
} popt_t;

typedef struct {
    uint64_t acked, failed;
    strata_err_t first_err;
} pstate_t;

static volatile sig_atomic_t stop;
static void on_sig(int s) { stop = 1; }

static int popt(int c, const char *arg, void *ctx)
{
    popt_t *o = ctx;
    int64_t v;
    char errstr[256];

    switch (c) {
    case 'k':
        if (!*arg)
            return cli_usage_err("--key-separator: empty separator");
        o->sep = arg;
        return 0;
    case 'H': {
        const char *eq = strchr(arg, '=');
        if (!eq || eq == arg || o->nhdr == 64)
            return cli_usage_err("--header wants KEY=VALUE, got \"%s\"", arg);
        o->hdr[o->nhdr++] = (strata_header_t){arg, (size_t)(eq - arg), eq + 1, strlen(eq + 1)};
        return 0;
    }
    case 'p':
        if (cli_parse_i64(arg, &v) || v < 0 || v > INT32_MAX)
            return cli_usage_err("--partition: want a partition number, got \"%s\"", arg);
        o->partition = (int32_t)v;
        return 0;
    case 0x300: {
        char *e;
        o->rate = strtod(arg, &e);
        if (*e || !(o->rate > 0))
            return cli_usage_err("--rate: want records per second > 0, got \"%s\"", arg);
        return 0;
    }
    case 'z':
        if (strata_conf_set(cli.conf, "compression.type", arg, errstr, sizeof errstr))
            return cli_usage_err("--compression: %s", errstr);
        return 0;
    case 0x301:
        if (strata_conf_set(cli.conf, "acks", !strcmp(arg, "all") ? "-1" : arg, errstr,
                            sizeof errstr) ||
            (strcmp(arg, "0") && strcmp(arg, "1") && strcmp(arg, "-1") && strcmp(arg, "all")))
            return cli_usage_err("--acks: want 0, 1 or all, got \"%s\"", arg);
        return 0;
    case 0x302:
        o->progress = 1;
        return 0;
    }
    return CLI_USAGE;
}

static void on_delivery(strata_producer_t *p, const strata_message_t *m, void *arg)
{
    pstate_t *s = arg;

    if (m->err) {
        if (!s->failed++)
            s->first_err = m->err;
    } else {
        s->acked++;
    }
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void progress_line(uint64_t recs, uint64_t bytes, uint64_t total, double elapsed, int final)
{
    double mb = (double)bytes / 1e6, rate = elapsed > 0 ? (double)recs / elapsed : 0;
    char eta[32] = "";

    if (total && !final && bytes && bytes < total && elapsed > 0) {
        double left = (double)(total - bytes) / ((double)bytes / elapsed);
        snprintf(eta, sizeof eta, "  ETA %.0fs", left);
    }
    if (total && !final)
        fprintf(stderr, "\r%llu records  %.1f/%.1f MB  %.0f rec/s  %.1f MB/s%s   ",
                (unsigned long long)recs, mb, (double)total / 1e6, rate,
                elapsed > 0 ? mb / elapsed : 0, eta);
    else
        fprintf(stderr, "\r%llu records  %.1f MB  %.0f rec/s  %.1f MB/s   ", (unsigned long long)recs,
                mb, rate, elapsed > 0 ? mb / elapsed : 0);
    if (final)
        fputc('\n', stderr);
}

int cmd_produce(int argc, char **argv)
{
    static const struct option lo[] = {{"key-separator", required_argument, NULL, 'k'},
                                       {"header", required_argument, NULL, 'H'},
                                       {"partition", required_argument, NULL, 'p'},
                                       {"rate", required_argument, NULL, 0x300},
                                       {"compression", required_argument, NULL, 'z'},
                                       {"acks", required_argument, NULL, 0x301},
                                       {"progress", no_argument, NULL, 0x302},
                                       {NULL, 0, NULL, 0}};
    popt_t o = {.partition = STRATA_PARTITION_ANY};
    pstate_t st = {0};
    int i = cli_getopt(argc, argv, "k:H:p:z:", lo, popt, &o, produce_usage), rc = CLI_OK;
    strata_producer_t *p = NULL;
    char errstr[256];

    if (i < 0)
        return CLI_USAGE;
    if (i >= argc)
        return cli_usage_err("produce: name the topic");
    const char *topic = argv[i++];
    char **files = argv + i;
    int nfiles = argc - i;

    /* the topic must exist (no auto-creation from the CLI); check -p */
    strata_admin_t *a = cli_admin();
    strata_metadata_t *md = NULL;
    if (!a)
        return CLI_FAIL;
    strata_err_t err = strata_admin_describe_topics(a, &topic, 1, -1, &md);
    strata_admin_free(a);
    if (err)
        return cli_fail(err, "produce to %s", topic);
    err = md->topic_count ? md->topics[0].err : STRATA_ERR_UNKNOWN_TOPIC_OR_PARTITION;
    size_t nparts = md->topic_count ? md->topics[0].partition_count : 0;
    strata_metadata_free(md);
    if (err)
        return cli_fail(err, "produce to %s", topic);
    if (o.partition >= 0 && (size_t)o.partition >= nparts)
        return cli_fail(STRATA_ERR_UNKNOWN_TOPIC_OR_PARTITION, "produce to %s partition %d (%zu partitions)",
                        topic, o.partition, nparts);

    /* input size for the ETA */
    uint64_t total = 0;
    int known = 1;
    for (int f = 0; f < (nfiles ? nfiles : 1); f++) {
        struct stat sb;
        int ok = nfiles && strcmp(files[f], "-") ? stat(files[f], &sb) == 0 : fstat(0, &sb) == 0;
        if (ok && S_ISREG(sb.st_mode))
            total += (uint64_t)sb.st_size;
        else
            known = 0;
    }
    if (!known)
        total = 0;
    int show = o.progress || isatty(2);

    if ((err = strata_producer_new(cli.conf, on_delivery, &st, &p, errstr, sizeof errstr)))
        return cli_fail_msg(err, errstr, "producer");

    /* Ctrl-C / SIGTERM: stop reading, deliver what was read, then exit */
    struct sigaction sa = {.sa_handler = on_sig}; /* no SA_RESTART: a blocked read returns */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    char *line = NULL;
    size_t lcap = 0, seplen = o.sep ? strlen(o.sep) : 0;
    uint64_t sent = 0, bytes = 0;
    double start = now_s(), last_shown = start;
    for (int f = 0; f < (nfiles ? nfiles : 1) && rc == CLI_OK && !stop; f++) {
        FILE *in = stdin;
        if (nfiles && strcmp(files[f], "-") && !(in = fopen(files[f], "r"))) {
            rc = cli_fail(-errno, "open %s", files[f]);
            break;
        }
        ssize_t len;
        while (!stop && (len = getline(&line, &lcap, in)) >= 0) {
            bytes += (uint64_t)len;
            if (len && line[len - 1] == '\n')
                line[--len] = 0;
            strata_record_t r = {topic, o.partition, NULL, 0, line, (size_t)len, o.hdr, o.nhdr, 0};
            if (o.sep) {
                char *s = memmem(line, (size_t)len, o.sep, seplen);
                if (s) {
                    r.key = line;
                    r.key_len = (size_t)(s - line);
                    r.value = s + seplen;
                    r.value_len = (size_t)(line + len - (s + seplen));
                }
            }
            if (o.rate > 0) {
                double due = start + (double)sent / o.rate, now = now_s();
                if (due > now) {
                    struct timespec ts = {(time_t)(due - now), (long)((due - now - (double)(time_t)(due - now)) * 1e9)};
                    nanosleep(&ts, NULL);
                }
            }
            while ((err = strata_produce(p, &r, NULL)) == STRATA_ERR_QUEUE_FULL)
                strata_producer_flush(p, 100);
            if (err) {
                rc = cli_fail(err, "produce to %s", topic);
                break;
            }
            sent++;
            if (show && (sent & 255) == 0) {
                double now = now_s();
                if (now - last_shown >= 0.5) {
                    progress_line(sent, bytes, total, now - start, 0);
                    last_shown = now;
                }
            }
        }
        if (ferror(in) && !stop)
            rc = cli_fail(-errno, "read %s", nfiles ? files[f] : "stdin");
        if (in != stdin)
            fclose(in);
    }
    free(line);
    while ((err = strata_producer_flush(p, 500)) == STRATA_ERR_TIMED_OUT)
        if (show)
            progress_line(sent, bytes, total, now_s() - start, 0);
    strata_producer_free(p);
    if (show)
        progress_line(st.acked, bytes, 0, now_s() - start, 1);
    if (st.failed) {
        cli_fail(st.first_err, "produce to %s: %llu of %llu records failed", topic,
                 (unsigned long long)st.failed, (unsigned long long)sent);
        rc = CLI_FAIL;
    }
    return rc;
}
