/*
 * cli_consume -- strata consume: records to stdout, as a template or JSON.
 */
#include "cli.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char consume_usage[] =
    "usage: strata consume <topic> [options]\n"
    "\n"
    "  -o, --from WHERE        beginning (default), end, an offset, or @TIME: the first\n"
    "                          record with a timestamp >= TIME (ms since the epoch or\n"
    "                          ISO 8601)\n"
    "  -n, --count N           stop after N records\n"
    "  -p, --partition N       only partition N, repeatable (default: every partition)\n"
    "  -e, --exit-at-end       stop once every partition is read up to the end it had\n"
    "                          when the command started\n"
    "  -f, --format FMT        json: one JSON object per record and line; otherwise a\n"
    "                          template (default \"%v\\n\"): %t topic, %p partition,\n"
    "                          %o offset, %k key, %v value, %h headers (k=v,k=v),\n"
    "                          %T timestamp (ms), %K key length, %S value length, %%;\n"
    "                          escapes \\n \\r \\t \\\\\n"
    "  -g, --group ID          consume as a member of group ID (subscribe; offsets\n"
    "                          committed by the group; --from beginning/end set\n"
    "                          auto.offset.reset for partitions without one)\n"
    "  plus the global options (strata --help)\n"
    "\n"
    "Without -n or -e it runs until interrupted (Ctrl-C exits 0).\n"
    "A null key or value prints as nothing in templates and as null in JSON.\n";

typedef struct {
    const char *from;
    int64_t count;
    int32_t parts[256];
    size_t nparts;
    int exit_at_end;
    const char *fmt;
    const char *group;
} copt_t;

static volatile sig_atomic_t stop;
static void on_sig(int s) { stop = 1; }

static int copt(int c, const char *arg, void *ctx)
{
    copt_t *o = ctx;
    int64_t v;

    switch (c) {
    case 'o': o->from = arg; return 0;
    case 'n':
        if (cli_parse_i64(arg, &v) || v < 1)
            return cli_usage_err("--count: want a number >= 1, got \"%s\"", arg);
        o->count = v;
        return 0;
    case 'p':
        if (cli_parse_i64(arg, &v) || v < 0 || v > INT32_MAX || o->nparts == 256)
            return cli_usage_err("--partition: want a partition number, got \"%s\"", arg);
        o->parts[o->nparts++] = (int32_t)v;
        return 0;
    case 'e': o->exit_at_end = 1; return 0;
    case 'f': o->fmt = arg; return 0;
    case 'g': o->group = arg; return 0;
    }
    return CLI_USAGE;
}

/* ---- output ------------------------------------------------------------------------ */

static void put_headers(const strata_message_t *m)
{
    for (size_t i = 0; i < m->header_count; i++) {
        if (i)
            putchar(',');
        fwrite(m->headers[i].key, 1, m->headers[i].key_len, stdout);
        putchar('=');
        if (m->headers[i].value)
            fwrite(m->headers[i].value, 1, m->headers[i].value_len, stdout);
    }
}

static void put_template(const char *fmt, const strata_message_t *m)
{
    for (const char *p = fmt; *p; p++) {
        if (*p == '\\' && p[1]) {
            p++;
            switch (*p) {
            case 'n': putchar('\n'); break;
            case 'r': putchar('\r'); break;
            case 't': putchar('\t'); break;
            case '\\': putchar('\\'); break;
            default: putchar('\\'); putchar(*p); break;
            }
            continue;
        }
        if (*p != '%' || !p[1]) {
            putchar(*p);
            continue;
        }
        p++;
        switch (*p) {
        case 't': fputs(m->topic, stdout); break;
        case 'p': printf("%d", m->partition); break;
        case 'o': printf("%lld", (long long)m->offset); break;
        case 'T': printf("%lld", (long long)m->timestamp); break;
        case 'k': if (m->key) fwrite(m->key, 1, m->key_len, stdout); break;
        case 'v': if (m->value) fwrite(m->value, 1, m->value_len, stdout); break;
        case 'K': printf("%zd", m->key ? (ssize_t)m->key_len : (ssize_t)-1); break;
        case 'S': printf("%zd", m->value ? (ssize_t)m->value_len : (ssize_t)-1); break;
        case 'h': put_headers(m); break;
        case '%': putchar('%'); break;
        default: putchar('%'); putchar(*p); break;
        }
    }
}

static void put_json(const strata_message_t *m)
{
    jw_t j;
    jw_init(&j, stdout);
    jw_obj(&j);
    jw_key(&j, "topic");
    jw_str(&j, m->topic);
    jw_key(&j, "partition");
    jw_int(&j, m->partition);
    jw_key(&j, "offset");
    jw_int(&j, m->offset);
    jw_key(&j, "timestamp");
    jw_int(&j, m->timestamp);
    jw_key(&j, "key");
    jw_strn(&j, m->key, m->key_len);
    jw_key(&j, "value");
    jw_strn(&j, m->value, m->value_len);
    jw_key(&j, "headers");
    jw_arr(&j);
    for (size_t i = 0; i < m->header_count; i++) {
        jw_obj(&j);
        jw_key(&j, "key");
        jw_strn(&j, m->headers[i].key, m->headers[i].key_len);
        jw_key(&j, "value");
        jw_strn(&j, m->headers[i].value, m->headers[i].value_len);
        jw_obj_end(&j);
    }
    jw_arr_end(&j);
    jw_obj_end(&j);
    jw_end(&j);
}

/* ---- command ---------------------------------------------------------------------------- */

int cmd_consume(int argc, char **argv)
{
    static const struct option lo[] = {{"from", required_argument, NULL, 'o'},
                                       {"offset", required_argument, NULL, 'o'},
                                       {"count", required_argument, NULL, 'n'},
                                       {"partition", required_argument, NULL, 'p'},
                                       {"exit-at-end", no_argument, NULL, 'e'},
                                       {"group", required_argument, NULL, 'g'},
                                       {NULL, 0, NULL, 0}};
    copt_t o = {.from = "beginning"};
    int i = cli_getopt(argc, argv, "o:n:p:ef:g:", lo, copt, &o, consume_usage), rc = CLI_OK;
    strata_consumer_t *c = NULL;
    strata_admin_t *a = NULL;
    strata_metadata_t *md = NULL;
    strata_topic_partition_t *tps = NULL, *ends = NULL;
    size_t ntps = 0;
    int64_t from_off = -1, from_ts = -1;
    strata_err_t err;
    char errstr[256];

    if (i < 0)
        return CLI_USAGE;
    if (argc - i != 1)
        return cli_usage_err("consume: name exactly one topic");
    const char *topic = argv[i];
    const char *fmt = o.fmt ? o.fmt : cli.format;
    int json = fmt && !strcmp(fmt, "json");
    if (!fmt || !strcmp(fmt, "table"))
        fmt = "%v\\n";
    if (!strcmp(o.from, "beginning") || !strcmp(o.from, "earliest") || !strcmp(o.from, "start")) {
        from_off = STRATA_OFFSET_BEGINNING;
    } else if (!strcmp(o.from, "end") || !strcmp(o.from, "latest")) {
        from_off = STRATA_OFFSET_END;
    } else if (o.from[0] == '@') {
        if (cli_parse_time(o.from + 1, &from_ts))
            return cli_usage_err("--from @TIME: want ms since the epoch or ISO 8601, got \"%s\"", o.from + 1);
    } else if (cli_parse_i64(o.from, &from_off) || from_off < 0) {
        return cli_usage_err("--from: want beginning, end, an offset or @TIME, got \"%s\"", o.from);
    }
    if (o.group && (o.nparts || o.exit_at_end || from_ts >= 0 || from_off >= 0))
        return cli_usage_err("consume --group: -p, -e and --from OFFSET/@TIME do not apply "
                             "(the group assigns partitions and keeps the offsets)");

    if (!(a = cli_admin()))
        return CLI_FAIL;
    if ((err = strata_admin_describe_topics(a, &topic, 1, -1, &md))) {
        rc = cli_fail(err, "consume %s", topic);
        goto out;
    }
    if ((err = md->topic_count ? md->topics[0].err : STRATA_ERR_UNKNOWN_TOPIC_OR_PARTITION)) {
        rc = cli_fail(err, "consume %s", topic);
        goto out;
    }
    size_t np = md->topics[0].partition_count;
    for (size_t k = 0; k < o.nparts; k++)
        if ((size_t)o.parts[k] >= np) {
            rc = cli_fail(STRATA_ERR_UNKNOWN_TOPIC_OR_PARTITION, "consume %s partition %d (%zu partitions)",
                          topic, o.parts[k], np);
            goto out;
        }
    if (o.group) {
        if (strata_conf_set(cli.conf, "group.id", o.group, errstr, sizeof errstr) ||
            strata_conf_set(cli.conf, "auto.offset.reset",
                            from_off == STRATA_OFFSET_END ? "latest" : "earliest", errstr, sizeof errstr)) {
            rc = cli_usage_err("--group: %s", errstr);
            goto out;
        }
    } else {
        /* resolve every start to an absolute offset, and the ends for -e */
        ntps = o.nparts ? o.nparts : np;
        tps = calloc(ntps, sizeof *tps);
        ends = calloc(ntps, sizeof *ends);
        if (!tps || !ends) {
            rc = CLI_FAIL;
            goto out;
        }
        for (size_t k = 0; k < ntps; k++) {
            int32_t part = o.nparts ? o.parts[k] : md->topics[0].partitions[k].id;
            tps[k] = (strata_topic_partition_t){topic, part, from_ts >= 0 ? from_ts : from_off, 0};
            ends[k] = (strata_topic_partition_t){topic, part, STRATA_OFFSET_END, 0};
        }
        if (from_ts >= 0 || from_off < 0 || o.exit_at_end) {
            if (from_ts >= 0 || from_off < 0)
                err = strata_admin_list_offsets(a, tps, ntps, -1);
            if (!err)
                err = strata_admin_list_offsets(a, ends, ntps, -1);
            for (size_t k = 0; !err && k < ntps; k++)
                if ((err = tps[k].err ? tps[k].err : ends[k].err))
                    break;
            if (err) {
                rc = cli_fail(err, "offsets of %s", topic);
                goto out;
            }
            for (size_t k = 0; k < ntps; k++)
                if (tps[k].offset < 0) /* no record at or after the timestamp */
                    tps[k].offset = ends[k].offset;
        }
    }
    strata_admin_free(a);
    a = NULL;

    if ((err = strata_consumer_new(cli.conf, &c, errstr, sizeof errstr))) {
        rc = cli_fail_msg(err, errstr, "consumer");
        goto out;
    }
    if (o.group)
        err = strata_consumer_subscribe(c, &topic, 1, NULL, NULL);
    else
        err = strata_consumer_assign(c, tps, ntps);
    if (err) {
        rc = cli_fail(err, o.group ? "subscribe %s as group %s" : "assign %s", topic, o.group);
        goto out;
    }
    signal(SIGINT, on_sig);
    signal(SIGTERM, on_sig);
    int64_t got = 0;
    size_t left = ntps;
    if (o.exit_at_end)
        for (size_t k = 0; k < ntps; k++)
            if (tps[k].offset >= ends[k].offset)
                left--;
    while (!stop && !(o.count && got >= o.count) && !(o.exit_at_end && !left)) {
        strata_message_t *m = NULL;
        if ((err = strata_consumer_poll(c, 200, &m))) {
            rc = cli_fail(err, "consume %s", topic);
            break;
        }
        if (!m) {
            struct pollfd pf = {1, 0, 0};
            if (fflush(stdout)) {
                if (errno != EPIPE)
                    rc = cli_fail(-errno, "write to stdout");
                break;
            }
            if (poll(&pf, 1, 0) == 1 && (pf.revents & POLLERR))
                break; /* a pipe whose reader has gone: nobody to write to */
            /* -e: a partition whose position reached its end is done too
             * (covers an offset reset that skipped records) */
            for (size_t k = 0; o.exit_at_end && k < ntps; k++) {
                int64_t pos;
                if (tps[k].offset < ends[k].offset &&
                    !strata_consumer_position(c, topic, tps[k].partition, &pos) &&
                    pos >= ends[k].offset) {
                    tps[k].offset = pos;
                    left--;
                }
            }
            continue;
        }
        if (m->err) {
            rc = cli_fail(m->err, "consume %s partition %d", m->topic, m->partition);
            strata_message_free(m);
            break;
        }
        if (json)
            put_json(m);
        else
            put_template(fmt, m);
        got++;
        if (ferror(stdout) || (isatty(1) && fflush(stdout))) {
            /* the reader went away (strata consume ... | head): stop quietly */
            if (errno != EPIPE)
                rc = cli_fail(-errno, "write to stdout");
            strata_message_free(m);
            break;
        }
        if (o.exit_at_end)
            for (size_t k = 0; k < ntps; k++)
                if (tps[k].partition == m->partition && tps[k].offset < ends[k].offset &&
                    m->offset + 1 >= ends[k].offset) {
                    tps[k].offset = m->offset + 1;
                    left--;
                }
        strata_message_free(m);
    }
    fflush(stdout);
out:
    if (c) {
        strata_consumer_close(c, 5000);
        strata_consumer_free(c);
    }
    free(tps);
    free(ends);
    strata_metadata_free(md);
    strata_admin_free(a);
    return rc;
}
