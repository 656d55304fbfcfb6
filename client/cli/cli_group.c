/*
 * cli_group -- strata group list|describe|reset-offsets.
 */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

static const char group_usage[] =
    "usage: strata group <subcommand> [options]\n"
    "\n"
    "Subcommands:\n"
    "  list                     list consumer groups (state, members)\n"
    "  describe <group>...      members, assignments, committed offsets and lag\n"
    "  reset-offsets <group>    move a group's committed offsets (dry run unless --execute)\n"
    "\n"
    "Run 'strata group <subcommand> --help' for its options.\n";

static const char list_usage[] =
    "usage: strata group list [options]\n"
    "  plus the global options (strata --help)\n";

static const char describe_usage[] =
    "usage: strata group describe <group>... [options]\n"
    "\n"
    "Prints the group's coordinator, state, protocol and members (member id,\n"
    "group.instance.id, client id, host, assigned partitions), then per\n"
    "partition the committed offset, log start and end offsets, the lag (log\n"
    "end - committed) and the member that owns it.\n"
    "  plus the global options (strata --help)\n";

static const char reset_usage[] =
    "usage: strata group reset-offsets <group> (--topic T[:P,P...]... | --all-topics) <target> [--execute]\n"
    "\n"
    "Targets (exactly one):\n"
    "      --to-earliest          the log start offset\n"
    "      --to-latest            the log end offset\n"
    "      --to-offset N          N (clamped into [log start, log end])\n"
    "      --to-datetime TIME     the first offset with a timestamp >= TIME (ms since the\n"
    "                             epoch or ISO 8601, e.g. 2026-11-26T09:00:00Z); log end\n"
    "                             when there is none\n"
    "Scope:\n"
    "  -t, --topic T[:P,P...]     a topic (all its partitions, or the listed ones), repeatable\n"
    "      --all-topics           every topic the group has committed offsets for\n"
    "      --execute              apply the plan; without it, print the plan and change nothing\n"
    "\n"
    "Kafka accepts new offsets only for a group with no active members (state\n"
    "Empty): stop its consumers first.\n"
    "  plus the global options (strata --help)\n";

/* ---- list ------------------------------------------------------------------------ */

static int cmp_info(const void *x, const void *y)
{
    return strcmp(((const strata_group_info_t *)x)->group_id,
                  ((const strata_group_info_t *)y)->group_id);
}

static int group_list(int argc, char **argv)
{
    int i = cli_getopt(argc, argv, "", NULL, NULL, NULL, list_usage);
    strata_admin_t *a;
    strata_group_info_t *gs = NULL, *ds = NULL;
    size_t n = 0;

    if (i < 0)
        return CLI_USAGE;
    if (i < argc)
        return cli_usage_err("group list: unexpected argument \"%s\"", argv[i]);
    if (!(a = cli_admin()))
        return CLI_FAIL;
    strata_err_t err = strata_admin_list_groups(a, -1, &gs, &n);
    if (err) {
        strata_admin_free(a);
        return cli_fail(err, "list groups");
    }
    const char **ids = calloc(n + 1, sizeof *ids);
    for (size_t k = 0; ids && k < n; k++)
        ids[k] = gs[k].group_id;
    if (n && ids && (err = strata_admin_describe_groups(a, ids, n, -1, &ds))) {
        free(ids);
        strata_group_infos_free(gs, n);
        strata_admin_free(a);
        return cli_fail(err, "describe groups");
    }
    free(ids);
    strata_admin_free(a);
    if (ds)
        qsort(ds, n, sizeof *ds, cmp_info);
    jw_t j;
    cli_table_t *t = NULL;
    if (cli.json) {
        jw_init(&j, stdout);
        jw_arr(&j);
    } else {
        t = tbl_new(4, "GROUP", "STATE", "MEMBERS", "PROTOCOL-TYPE");
    }
    for (size_t k = 0; ds && k < n; k++) {
        const strata_group_info_t *g = &ds[k];
        const char *pt = g->protocol_type && *g->protocol_type ? g->protocol_type : NULL;
        if (cli.json) {
            jw_obj(&j);
            jw_key(&j, "group");
            jw_str(&j, g->group_id);
            jw_key(&j, "state");
            jw_str(&j, g->err ? NULL : g->state);
            jw_key(&j, "members");
            jw_int(&j, (int64_t)g->member_count);
            jw_key(&j, "protocol_type");
            jw_str(&j, pt);
            jw_key(&j, "error");
            if (g->err) jw_str(&j, strata_err_name(g->err)); else jw_null(&j);
            jw_obj_end(&j);
        } else {
            tbl_rowf(t, "%s\t%s\t%zu\t%s", g->group_id, g->err ? strata_err_name(g->err) : g->state,
                     g->member_count, pt ? pt : "-");
        }
    }
    if (cli.json) {
        jw_arr_end(&j);
        jw_end(&j);
    } else {
        tbl_print(t, stdout);
    }
    strata_group_infos_free(ds, n);
    strata_group_infos_free(gs, n);
    return CLI_OK;
}

/* ---- describe ----------------------------------------------------------------------- */

typedef struct {
    const char *topic;
    int32_t partition;
    int64_t committed; /* -1 none */
    int64_t start, end; /* -1 unknown */
    const strata_group_member_t *owner;
} row_t;

static int cmp_row(const void *x, const void *y)
{
    const row_t *a = x, *b = y;
    int c = strcmp(a->topic, b->topic);
    return c ? c : (a->partition > b->partition) - (a->partition < b->partition);
}

static row_t *row_get(row_t **rows, size_t *n, size_t *cap, const char *topic, int32_t part)
{
    for (size_t i = 0; i < *n; i++)
        if ((*rows)[i].partition == part && !strcmp((*rows)[i].topic, topic))
            return &(*rows)[i];
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 16;
        row_t *r = realloc(*rows, nc * sizeof *r);
        if (!r)
            return NULL;
        *rows = r;
        *cap = nc;
    }
    row_t *r = &(*rows)[(*n)++];
    *r = (row_t){topic, part, -1, -1, -1, NULL};
    return r;
}

static void assignment_str(char *buf, size_t n, const strata_group_member_t *m)
{
    size_t off = 0;
    buf[0] = 0;
    for (size_t t = 0; t < m->assignment_count && off < n; t++) {
        const strata_topic_partitions_t *tp = &m->assignment[t];
        off += (size_t)snprintf(buf + off, n - off, "%s%s:", t ? " " : "", tp->topic);
        for (size_t p = 0; p < tp->partition_count && off < n; p++)
            off += (size_t)snprintf(buf + off, n - off, "%s%d", p ? "," : "", tp->partitions[p]);
    }
    if (!buf[0] && n > 1)
        snprintf(buf, n, "-");
}

static int describe_one(strata_admin_t *a, const char *gid, jw_t *j, int first)
{
    strata_group_description_t *d = NULL;
    strata_topic_partition_t *co = NULL;
    size_t nco = 0, n = 0, cap = 0;
    row_t *rows = NULL;
    strata_err_t err;
    int rc = CLI_OK;

    if ((err = strata_admin_describe_group(a, gid, -1, &d)))
        return cli_fail(err, "describe group %s", gid);
    if (d->err) {
        rc = cli_fail(d->err, "describe group %s", gid);
        strata_group_description_free(d);
        return rc;
    }
    if ((err = strata_admin_list_group_offsets(a, gid, NULL, 0, -1, &co, &nco))) {
        strata_group_description_free(d);
        return cli_fail(err, "committed offsets of group %s", gid);
    }
    if (!strcmp(d->state, "Dead") && !d->member_count && !nco) { /* Kafka's answer for "no such group" */
        strata_topic_partition_list_free(co, nco);
        strata_group_description_free(d);
        fprintf(stderr, "strata: describe group %s: GROUP_ID_NOT_FOUND: no such group "
                        "(no members, no committed offsets)\n", gid);
        return CLI_FAIL;
    }
    for (size_t i = 0; i < nco; i++) {
        row_t *r = row_get(&rows, &n, &cap, co[i].topic, co[i].partition);
        if (r && !co[i].err)
            r->committed = co[i].offset;
    }
    for (size_t m = 0; m < d->member_count; m++)
        for (size_t t = 0; t < d->members[m].assignment_count; t++) {
            const strata_topic_partitions_t *tp = &d->members[m].assignment[t];
            for (size_t p = 0; p < tp->partition_count; p++) {
                row_t *r = row_get(&rows, &n, &cap, tp->topic, tp->partitions[p]);
                if (r)
                    r->owner = &d->members[m];
            }
        }
    if (n)
        qsort(rows, n, sizeof *rows, cmp_row);
    strata_topic_partition_t *lo = calloc(n * 2 + 1, sizeof *lo);
    for (size_t i = 0; lo && i < n; i++) {
        lo[i] = (strata_topic_partition_t){rows[i].topic, rows[i].partition, STRATA_OFFSET_BEGINNING, 0};
        lo[n + i] = (strata_topic_partition_t){rows[i].topic, rows[i].partition, STRATA_OFFSET_END, 0};
    }
    if (lo && n)
        strata_admin_list_offsets(a, lo, n * 2, -1); /* per-partition errors show as "-" */
    int64_t total = 0;
    for (size_t i = 0; lo && i < n; i++) {
        if (!lo[i].err)
            rows[i].start = lo[i].offset;
        if (!lo[n + i].err)
            rows[i].end = lo[n + i].offset;
        if (rows[i].committed >= 0 && rows[i].end >= 0 && rows[i].end > rows[i].committed)
            total += rows[i].end - rows[i].committed;
    }
    if (cli.json) {
        jw_obj(j);
        jw_key(j, "group");
        jw_str(j, d->group_id);
        jw_key(j, "coordinator");
        jw_int(j, d->coordinator_id);
        jw_key(j, "state");
        jw_str(j, d->state);
        jw_key(j, "protocol_type");
        jw_str(j, d->protocol_type);
        jw_key(j, "protocol");
        jw_str(j, d->protocol);
        jw_key(j, "members");
        jw_arr(j);
        for (size_t m = 0; m < d->member_count; m++) {
            const strata_group_member_t *mb = &d->members[m];
            jw_obj(j);
            jw_key(j, "member_id");
            jw_str(j, mb->member_id);
            jw_key(j, "group_instance_id");
            jw_str(j, mb->group_instance_id);
            jw_key(j, "client_id");
            jw_str(j, mb->client_id);
            jw_key(j, "host");
            jw_str(j, mb->client_host);
            jw_key(j, "assignment");
            jw_arr(j);
            for (size_t t = 0; t < mb->assignment_count; t++) {
                jw_obj(j);
                jw_key(j, "topic");
                jw_str(j, mb->assignment[t].topic);
                jw_key(j, "partitions");
                jw_arr(j);
                for (size_t p = 0; p < mb->assignment[t].partition_count; p++)
                    jw_int(j, mb->assignment[t].partitions[p]);
                jw_arr_end(j);
                jw_obj_end(j);
            }
            jw_arr_end(j);
            jw_obj_end(j);
        }
        jw_arr_end(j);
        jw_key(j, "offsets");
        jw_arr(j);
        for (size_t i = 0; i < n; i++) {
            const row_t *r = &rows[i];
            jw_obj(j);
            jw_key(j, "topic");
            jw_str(j, r->topic);
            jw_key(j, "partition");
            jw_int(j, r->partition);
            jw_key(j, "committed_offset");
            if (r->committed >= 0) jw_int(j, r->committed); else jw_null(j);
            jw_key(j, "log_start_offset");
            if (r->start >= 0) jw_int(j, r->start); else jw_null(j);
            jw_key(j, "log_end_offset");
            if (r->end >= 0) jw_int(j, r->end); else jw_null(j);
            jw_key(j, "lag");
            if (r->committed >= 0 && r->end >= 0)
                jw_int(j, r->end > r->committed ? r->end - r->committed : 0);
            else
                jw_null(j);
            jw_key(j, "member_id");
            jw_str(j, r->owner ? r->owner->member_id : NULL);
            jw_obj_end(j);
        }
        jw_arr_end(j);
        jw_key(j, "total_lag");
        jw_int(j, total);
        jw_obj_end(j);
    } else {
        if (!first)
            putchar('\n');
        cli_table_t *t = tbl_new(2, "GROUP", d->group_id);
        tbl_rowf(t, "COORDINATOR\t%d", d->coordinator_id);
        tbl_rowf(t, "STATE\t%s", d->state);
        tbl_rowf(t, "PROTOCOL-TYPE\t%s", *d->protocol_type ? d->protocol_type : "-");
        tbl_rowf(t, "PROTOCOL\t%s", *d->protocol ? d->protocol : "-");
        tbl_rowf(t, "MEMBERS\t%zu", d->member_count);
        tbl_rowf(t, "TOTAL-LAG\t%lld", (long long)total);
        tbl_print(t, stdout);
        if (d->member_count) {
            putchar('\n');
            t = tbl_new(5, "MEMBER-ID", "INSTANCE-ID", "CLIENT-ID", "HOST", "ASSIGNMENT");
            for (size_t m = 0; m < d->member_count; m++) {
                const strata_group_member_t *mb = &d->members[m];
                char asg[4096];
                assignment_str(asg, sizeof asg, mb);
                tbl_row(t, mb->member_id, mb->group_instance_id, mb->client_id, mb->client_host, asg);
            }
            tbl_print(t, stdout);
        }
        putchar('\n');
        t = tbl_new(9, "TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-START-OFFSET", "LOG-END-OFFSET",
                    "LAG", "MEMBER-ID", "CLIENT-ID", "HOST");
        for (size_t i = 0; i < n; i++) {
            const row_t *r = &rows[i];
            char c[32] = "-", s[32] = "-", e[32] = "-", l[32] = "-";
            if (r->committed >= 0)
                snprintf(c, sizeof c, "%lld", (long long)r->committed);
            if (r->start >= 0)
                snprintf(s, sizeof s, "%lld", (long long)r->start);
            if (r->end >= 0)
                snprintf(e, sizeof e, "%lld", (long long)r->end);
            if (r->committed >= 0 && r->end >= 0)
                snprintf(l, sizeof l, "%lld",
                         (long long)(r->end > r->committed ? r->end - r->committed : 0));
            char pbuf[16];
            snprintf(pbuf, sizeof pbuf, "%d", r->partition);
            tbl_row(t, r->topic, pbuf, c, s, e, l, r->owner ? r->owner->member_id : NULL,
                    r->owner ? r->owner->client_id : NULL, r->owner ? r->owner->client_host : NULL);
        }
        tbl_print(t, stdout);
    }
    free(lo);
    free(rows);
    strata_topic_partition_list_free(co, nco);
    strata_group_description_free(d);
    return rc;
}

static int group_describe(int argc, char **argv)
{
    int i = cli_getopt(argc, argv, "", NULL, NULL, NULL, describe_usage), rc = CLI_OK;
    strata_admin_t *a;

    if (i < 0)
        return CLI_USAGE;
    if (i >= argc)
        return cli_usage_err("group describe: name at least one group");
    if (!(a = cli_admin()))
        return CLI_FAIL;
    jw_t j;
    jw_init(&j, stdout);
    if (cli.json)
        jw_arr(&j);
    for (int k = i; k < argc; k++)
        if (describe_one(a, argv[k], &j, k == i))
            rc = CLI_FAIL;
    if (cli.json) {
        jw_arr_end(&j);
        jw_end(&j);
    }
    strata_admin_free(a);
    return rc;
}

/* ---- reset-offsets -------------------------------------------------------------------- */

enum { TO_NONE = 0, TO_EARLIEST, TO_LATEST, TO_OFFSET, TO_DATETIME };

typedef struct {
    int to;
    int64_t value;
    int all_topics, execute;
    const char *topics[64];
    size_t ntopics;
} ropt_t;

static int ropt(int c, const char *arg, void *ctx)
{
    ropt_t *o = ctx;
    int to = 0;

    switch (c) {
    case 't':
        if (o->ntopics == 64)
            return cli_usage_err("too many --topic");
        o->topics[o->ntopics++] = arg;
        return 0;
    case 0x200: o->all_topics = 1; return 0;
    case 0x201: o->execute = 1; return 0;
    case 0x202: to = TO_EARLIEST; break;
    case 0x203: to = TO_LATEST; break;
    case 0x204:
        to = TO_OFFSET;
        if (cli_parse_i64(arg, &o->value) || o->value < 0)
            return cli_usage_err("--to-offset: want an offset >= 0, got \"%s\"", arg);
        break;
    case 0x205:
        to = TO_DATETIME;
        if (cli_parse_time(arg, &o->value))
            return cli_usage_err("--to-datetime: want ms since the epoch or ISO 8601 "
                                 "(2026-11-26T09:00:00Z), got \"%s\"", arg);
        break;
    default:
        return CLI_USAGE;
    }
    if (o->to && o->to != to)
        return cli_usage_err("reset-offsets: give exactly one --to-* target");
    o->to = to;
    return 0;
}

typedef struct {
    char *topic;
    int32_t partition;
    int64_t current, target;
    strata_err_t err;
} plan_t;

static int plan_add(plan_t **pl, size_t *n, size_t *cap, const char *topic, int32_t part)
{
    for (size_t i = 0; i < *n; i++)
        if ((*pl)[i].partition == part && !strcmp((*pl)[i].topic, topic))
            return 0;
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 16;
        plan_t *x = realloc(*pl, nc * sizeof *x);
        if (!x)
            return -1;
        *pl = x;
        *cap = nc;
    }
    (*pl)[*n] = (plan_t){strdup(topic), part, -1, -1, 0};
    return (*pl)[(*n)++].topic ? 0 : -1;
}

static int cmp_plan(const void *x, const void *y)
{
    const plan_t *a = x, *b = y;
    int c = strcmp(a->topic, b->topic);
    return c ? c : (a->partition > b->partition) - (a->partition < b->partition);
}

static int group_reset(int argc, char **argv)
{
    static const struct option lo[] = {{"topic", required_argument, NULL, 't'},
                                       {"all-topics", no_argument, NULL, 0x200},
                                       {"execute", no_argument, NULL, 0x201},
                                       {"to-earliest", no_argument, NULL, 0x202},
                                       {"to-latest", no_argument, NULL, 0x203},
                                       {"to-offset", required_argument, NULL, 0x204},
                                       {"to-datetime", required_argument, NULL, 0x205},
                                       {NULL, 0, NULL, 0}};
    ropt_t o = {0};
    int i = cli_getopt(argc, argv, "t:", lo, ropt, &o, reset_usage), rc = CLI_OK;
    strata_admin_t *a = NULL;
    strata_topic_partition_t *co = NULL, *lo2 = NULL, *tps = NULL;
    size_t nco = 0, n = 0, cap = 0;
    strata_metadata_t *md = NULL;
    strata_group_description_t *d = NULL;
    plan_t *pl = NULL;
    strata_err_t err;

    if (i < 0)
        return CLI_USAGE;
    if (argc - i != 1)
        return cli_usage_err("reset-offsets: name exactly one group");
    if (!o.to)
        return cli_usage_err("reset-offsets: give a target (--to-earliest, --to-latest, "
                             "--to-offset, --to-datetime)");
    if (!o.ntopics == !o.all_topics)
        return cli_usage_err("reset-offsets: give --topic or --all-topics (one of them)");
    const char *gid = argv[i];
    if (!(a = cli_admin()))
        return CLI_FAIL;
    if ((err = strata_admin_describe_group(a, gid, -1, &d)) || (err = d->err)) {
        rc = cli_fail(err, "describe group %s", gid);
        goto out;
    }
    if ((err = strata_admin_list_group_offsets(a, gid, NULL, 0, -1, &co, &nco))) {
        rc = cli_fail(err, "committed offsets of group %s", gid);
        goto out;
    }
    /* the partitions to move */
    if (o.all_topics) {
        for (size_t k = 0; k < nco; k++)
            if (plan_add(&pl, &n, &cap, co[k].topic, co[k].partition)) {
                rc = CLI_FAIL;
                goto out;
            }
    } else {
        char *names[64];
        size_t nn = 0;
        for (size_t k = 0; k < o.ntopics; k++) {
            const char *colon = strchr(o.topics[k], ':');
            names[nn++] = colon ? strndup(o.topics[k], (size_t)(colon - o.topics[k]))
                                : strdup(o.topics[k]);
        }
        err = strata_admin_describe_topics(a, (const char *const *)names, nn, -1, &md);
        for (size_t k = 0; !err && k < o.ntopics; k++) {
            const char *colon = strchr(o.topics[k], ':');
            const strata_topic_metadata_t *tm = NULL;
            for (size_t t = 0; t < md->topic_count; t++)
                if (!strcmp(md->topics[t].name, names[k]))
                    tm = &md->topics[t];
            if (!tm || tm->err) {
                rc = cli_fail(tm ? tm->err : STRATA_ERR_UNKNOWN_TOPIC_OR_PARTITION, "topic %s", names[k]);
                break;
            }
            if (!colon) {
                for (size_t p = 0; p < tm->partition_count; p++)
                    plan_add(&pl, &n, &cap, names[k], tm->partitions[p].id);
                continue;
            }
            char *list = strdup(colon + 1), *save = NULL;
            for (char *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
                int64_t pv;
                if (cli_parse_i64(tok, &pv) || pv < 0 || (size_t)pv >= tm->partition_count) {
                    rc = cli_usage_err("--topic %s: no partition \"%s\" (%zu partitions)", o.topics[k],
                                       tok, tm->partition_count);
                    break;
                }
                plan_add(&pl, &n, &cap, names[k], (int32_t)pv);
            }
            free(list);
            if (rc)
                break;
        }
        for (size_t k = 0; k < nn; k++)
            free(names[k]);
        if (err)
            rc = cli_fail(err, "describe topics");
        if (rc)
            goto out;
    }
    if (!n) {
        rc = cli_fail(STRATA_ERR_NOT_FOUND, "group %s: no partitions to reset", gid);
        goto out;
    }
    qsort(pl, n, sizeof *pl, cmp_plan);
    for (size_t k = 0; k < n; k++)
        for (size_t c = 0; c < nco; c++)
            if (co[c].partition == pl[k].partition && !strcmp(co[c].topic, pl[k].topic) && !co[c].err)
                pl[k].current = co[c].offset;
    /* earliest, latest and (datetime) the timestamp's offset of every partition */
    if (!(lo2 = calloc(n * 3, sizeof *lo2))) {
        rc = CLI_FAIL;
        goto out;
    }
    for (size_t k = 0; k < n; k++) {
        lo2[k] = (strata_topic_partition_t){pl[k].topic, pl[k].partition, STRATA_OFFSET_BEGINNING, 0};
        lo2[n + k] = (strata_topic_partition_t){pl[k].topic, pl[k].partition, STRATA_OFFSET_END, 0};
        lo2[2 * n + k] = (strata_topic_partition_t){pl[k].topic, pl[k].partition,
                                                    o.to == TO_DATETIME ? o.value : STRATA_OFFSET_END, 0};
    }
    if ((err = strata_admin_list_offsets(a, lo2, n * 3, -1))) {
        rc = cli_fail(err, "list offsets");
        goto out;
    }
    for (size_t k = 0; k < n; k++) {
        int64_t lso = lo2[k].offset, leo = lo2[n + k].offset;
        if ((err = lo2[k].err) || (err = lo2[n + k].err) || (err = lo2[2 * n + k].err)) {
            rc = cli_fail(err, "offsets of %s/%d", pl[k].topic, pl[k].partition);
            goto out;
        }
        switch (o.to) {
        case TO_EARLIEST: pl[k].target = lso; break;
        case TO_LATEST: pl[k].target = leo; break;
        case TO_OFFSET: pl[k].target = o.value < lso ? lso : o.value > leo ? leo : o.value; break;
        case TO_DATETIME: pl[k].target = lo2[2 * n + k].offset >= 0 ? lo2[2 * n + k].offset : leo; break;
        }
    }
    if (o.execute) {
        if (!(tps = calloc(n, sizeof *tps))) {
            rc = CLI_FAIL;
            goto out;
        }
        for (size_t k = 0; k < n; k++)
            tps[k] = (strata_topic_partition_t){pl[k].topic, pl[k].partition, pl[k].target, 0};
        err = strata_admin_alter_group_offsets(a, gid, tps, n, -1);
        for (size_t k = 0; k < n; k++)
            pl[k].err = tps[k].err;
        if (err) {
            rc = cli_fail(err, "reset offsets of group %s%s", gid,
                          err == 25 /* UNKNOWN_MEMBER_ID */
                              ? " (Kafka resets only a group with no active members: stop its "
                                "consumers first)"
                              : "");
        }
    }
    if (cli.json) {
        jw_t j;
        jw_init(&j, stdout);
        jw_arr(&j);
        for (size_t k = 0; k < n; k++) {
            jw_obj(&j);
            jw_key(&j, "group");
            jw_str(&j, gid);
            jw_key(&j, "topic");
            jw_str(&j, pl[k].topic);
            jw_key(&j, "partition");
            jw_int(&j, pl[k].partition);
            jw_key(&j, "current_offset");
            if (pl[k].current >= 0) jw_int(&j, pl[k].current); else jw_null(&j);
            jw_key(&j, "new_offset");
            jw_int(&j, pl[k].target);
            jw_key(&j, "applied");
            jw_bool(&j, o.execute && !pl[k].err);
            jw_key(&j, "error");
            if (pl[k].err) jw_str(&j, strata_err_name(pl[k].err)); else jw_null(&j);
            jw_obj_end(&j);
        }
        jw_arr_end(&j);
        jw_end(&j);
    } else {
        cli_table_t *t = o.execute ? tbl_new(6, "GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET",
                                             "NEW-OFFSET", "STATUS")
                                   : tbl_new(5, "GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET",
                                             "NEW-OFFSET");
        for (size_t k = 0; k < n; k++) {
            char cur[32] = "-";
            if (pl[k].current >= 0)
                snprintf(cur, sizeof cur, "%lld", (long long)pl[k].current);
            tbl_rowf(t, "%s\t%s\t%d\t%s\t%lld\t%s", gid, pl[k].topic, pl[k].partition, cur,
                     (long long)pl[k].target, pl[k].err ? strata_err_name(pl[k].err) : "OK");
        }
        tbl_print(t, stdout);
    }
    if (!o.execute)
        fprintf(stderr, "strata: dry run, nothing changed: add --execute to apply%s\n",
                d->member_count ? " (after stopping the group's consumers)" : "");
out:
    free(tps);
    free(lo2);
    for (size_t k = 0; k < n; k++)
        free(pl[k].topic);
    free(pl);
    strata_metadata_free(md);
    strata_topic_partition_list_free(co, nco);
    strata_group_description_free(d);
    strata_admin_free(a);
    return rc;
}

int cmd_group(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        fputs(group_usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_USAGE : CLI_OK;
    }
    const char *sub = argv[1];
    if (!strcmp(sub, "list") || !strcmp(sub, "ls"))
        return group_list(argc - 1, argv + 1);
    if (!strcmp(sub, "describe"))
        return group_describe(argc - 1, argv + 1);
    if (!strcmp(sub, "reset-offsets"))
        return group_reset(argc - 1, argv + 1);
    return cli_usage_err("group: unknown subcommand \"%s\"", sub);
}
