/*
 * cli_topic -- strata topic create|list|describe|delete|alter-config.
 */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

static const char topic_usage[] =
    "usage: strata topic <subcommand> [options]\n"
    "\n"
    "Subcommands:\n"
    "  create <topic>...        create topics\n"
    "  list                     list topics\n"
    "  describe <topic>...      partitions, offsets and configs of topics\n"
    "  delete <topic>...        delete topics\n"
    "  alter-config <topic>...  set or remove topic config overrides\n"
    "\n"
    "Run 'strata topic <subcommand> --help' for its options.\n";

static const char create_usage[] =
    "usage: strata topic create <topic>... [options]\n"
    "\n"
    "  -p, --partitions N        partitions (default: the broker's num.partitions)\n"
    "  -r, --replicas N          replication factor (default: the broker's)\n"
    "  -c, --config KEY=VALUE    a topic config (cleanup.policy, retention.ms, ...), repeatable\n"
    "  plus the global options (strata --help)\n";

static const char list_usage[] =
    "usage: strata topic list [options]\n"
    "\n"
    "  -i, --internal   include internal topics (__consumer_offsets, __transaction_state)\n"
    "  plus the global options (strata --help)\n";

static const char describe_usage[] =
    "usage: strata topic describe <topic>... [options]\n"
    "\n"
    "Prints a summary, the partitions (leader, replicas, ISR, log start offset,\n"
    "high watermark) and the configs (value and source) of each topic.\n"
    "\n"
    "  -a, --all-configs   list every config, not only overrides\n"
    "  plus the global options (strata --help)\n";

static const char delete_usage[] =
    "usage: strata topic delete <topic>... [options]\n"
    "  plus the global options (strata --help)\n";

static const char alter_usage[] =
    "usage: strata topic alter-config <topic>... [options]\n"
    "\n"
    "  -s, --set KEY=VALUE   set an override, repeatable\n"
    "  -d, --delete KEY      remove an override (back to the broker default), repeatable\n"
    "\n"
    "Other overrides of the topic are kept (the current ones are read first;\n"
    "AlterConfigs itself replaces the whole set).\n"
    "  plus the global options (strata --help)\n";

/* ---- create ----------------------------------------------------------------------- */

typedef struct {
    int32_t partitions;
    int16_t replicas;
    strata_config_entry_t cfg[64];
    size_t ncfg;
    int internal, all_configs;
    char *set[64];
    size_t nset;
    const char *del[64];
    size_t ndel;
} topt_t;

/* "k=v" into a config entry pointing into a copy. */
static int split_kv(const char *arg, strata_config_entry_t *e, const char *opt)
{
    char *copy = strdup(arg), *eq = copy ? strchr(copy, '=') : NULL;

    if (!eq || eq == copy) {
        free(copy);
        return cli_usage_err("%s wants KEY=VALUE, got \"%s\"", opt, arg);
    }
    *eq = 0;
    e->name = copy;
    e->value = eq + 1;
    return 0;
}

static int topt(int c, const char *arg, void *ctx)
{
    topt_t *o = ctx;
    int64_t v;

    switch (c) {
    case 'p':
        if (cli_parse_i64(arg, &v) || v < 1 || v > 1000000)
            return cli_usage_err("--partitions: want a number >= 1, got \"%s\"", arg);
        o->partitions = (int32_t)v;
        return 0;
    case 'r':
        if (cli_parse_i64(arg, &v) || v < 1 || v > 32767)
            return cli_usage_err("--replicas: want a number >= 1, got \"%s\"", arg);
        o->replicas = (int16_t)v;
        return 0;
    case 'c':
        if (o->ncfg == 64)
            return cli_usage_err("too many --config");
        return split_kv(arg, &o->cfg[o->ncfg++], "--config");
    case 'i':
        o->internal = 1;
        return 0;
    case 'a':
        o->all_configs = 1;
        return 0;
    case 's':
        if (o->nset == 64 || !strchr(arg, '=') || *arg == '=')
            return cli_usage_err("--set wants KEY=VALUE, got \"%s\"", arg);
        o->set[o->nset++] = (char *)arg;
        return 0;
    case 'd':
        if (o->ndel == 64)
            return cli_usage_err("too many --delete");
        o->del[o->ndel++] = arg;
        return 0;
    }
    return CLI_USAGE;
}

static void free_cfg(topt_t *o)
{
    for (size_t i = 0; i < o->ncfg; i++)
        free((char *)o->cfg[i].name);
}

/* Prints per-topic results; returns CLI_OK or CLI_FAIL. */
static int print_results(strata_admin_t *a, char **names, size_t n, const strata_err_t *res,
                         const char *what)
{
    int rc = CLI_OK;

    if (cli.json) {
        jw_t j;
        jw_init(&j, stdout);
        jw_arr(&j);
        for (size_t i = 0; i < n; i++) {
            jw_obj(&j);
            jw_key(&j, "topic");
            jw_str(&j, names[i]);
            jw_key(&j, "error");
            if (res[i])
                jw_str(&j, strata_err_name(res[i]));
            else
                jw_null(&j);
            jw_key(&j, "message");
            const char *m = strata_admin_error_message(a, i);
            if (res[i])
                jw_str(&j, m ? m : strata_err_str(res[i]));
            else
                jw_null(&j);
            jw_obj_end(&j);
        }
        jw_arr_end(&j);
        jw_end(&j);
    } else {
        cli_table_t *t = tbl_new(2, "TOPIC", "STATUS");
        for (size_t i = 0; i < n; i++)
            tbl_row(t, names[i], res[i] ? strata_err_name(res[i]) : "OK");
        tbl_print(t, stdout);
    }
    for (size_t i = 0; i < n; i++)
        if (res[i]) {
            cli_fail_msg(res[i], strata_admin_error_message(a, i), "%s %s", what, names[i]);
            rc = CLI_FAIL;
        }
    return rc;
}

static int topic_create(int argc, char **argv)
{
    static const struct option lo[] = {{"partitions", required_argument, NULL, 'p'},
                                       {"replicas", required_argument, NULL, 'r'},
                                       {"config", required_argument, NULL, 'c'},
                                       {NULL, 0, NULL, 0}};
    topt_t o = {.partitions = -1, .replicas = -1};
    int i = cli_getopt(argc, argv, "p:r:c:", lo, topt, &o, create_usage), rc;
    strata_admin_t *a = NULL;

    if (i < 0) {
        rc = CLI_USAGE;
        goto out;
    }
    if (i >= argc) {
        rc = cli_usage_err("topic create: name at least one topic");
        goto out;
    }
    size_t n = (size_t)(argc - i);
    strata_new_topic_t *nt = calloc(n, sizeof *nt);
    strata_err_t *res = calloc(n, sizeof *res);
    if (!nt || !res || !(a = cli_admin())) {
        free(nt);
        free(res);
        rc = CLI_FAIL;
        goto out;
    }
    for (size_t k = 0; k < n; k++)
        nt[k] = (strata_new_topic_t){argv[i + (int)k], o.partitions, o.replicas, o.cfg, o.ncfg};
    strata_err_t err = strata_admin_create_topics(a, nt, n, -1, res);
    if (err)
        rc = cli_fail(err, "create topics");
    else
        rc = print_results(a, argv + i, n, res, "create topic");
    free(nt);
    free(res);
out:
    strata_admin_free(a);
    free_cfg(&o);
    return rc;
}

static int topic_delete(int argc, char **argv)
{
    int i = cli_getopt(argc, argv, "", NULL, NULL, NULL, delete_usage), rc;
    strata_admin_t *a;

    if (i < 0)
        return CLI_USAGE;
    if (i >= argc)
        return cli_usage_err("topic delete: name at least one topic");
    size_t n = (size_t)(argc - i);
    strata_err_t *res = calloc(n, sizeof *res);
    if (!res || !(a = cli_admin())) {
        free(res);
        return CLI_FAIL;
    }
    strata_err_t err = strata_admin_delete_topics(a, (const char *const *)(argv + i), n, -1, res);
    rc = err ? cli_fail(err, "delete topics") : print_results(a, argv + i, n, res, "delete topic");
    free(res);
    strata_admin_free(a);
    return rc;
}

/* ---- list ------------------------------------------------------------------------- */

static int cmp_topic(const void *x, const void *y)
{
    return strcmp(((const strata_topic_metadata_t *)x)->name,
                  ((const strata_topic_metadata_t *)y)->name);
}

static int topic_list(int argc, char **argv)
{
    static const struct option lo[] = {{"internal", no_argument, NULL, 'i'}, {NULL, 0, NULL, 0}};
    topt_t o = {0};
    int i = cli_getopt(argc, argv, "i", lo, topt, &o, list_usage);
    strata_admin_t *a;
    strata_metadata_t *md = NULL;

    if (i < 0)
        return CLI_USAGE;
    if (i < argc)
        return cli_usage_err("topic list: unexpected argument \"%s\"", argv[i]);
    if (!(a = cli_admin()))
        return CLI_FAIL;
    strata_err_t err = strata_admin_describe_topics(a, NULL, 0, -1, &md);
    /* Kafka lists internal topics among all topics; Strata answers for them
     * only by name: -i asks for Kafka's internal topics by name too */
    static const char *const internal[] = {"__consumer_offsets", "__transaction_state"};
    strata_metadata_t *imd = NULL;
    if (!err && o.internal)
        err = strata_admin_describe_topics(a, internal, 2, -1, &imd);
    strata_admin_free(a);
    if (err) {
        strata_metadata_free(md);
        return cli_fail(err, "list topics");
    }
    size_t nt = md->topic_count;
    strata_topic_metadata_t *ts = malloc((nt + 3) * sizeof *ts);
    if (!ts) {
        strata_metadata_free(imd);
        strata_metadata_free(md);
        return CLI_FAIL;
    }
    memcpy(ts, md->topics, nt * sizeof *ts);
    for (size_t k = 0; imd && k < imd->topic_count; k++) {
        int dup = imd->topics[k].err != 0;
        for (size_t m = 0; m < md->topic_count && !dup; m++)
            dup = !strcmp(md->topics[m].name, imd->topics[k].name);
        if (!dup)
            ts[nt++] = imd->topics[k];
    }
    qsort(ts, nt, sizeof *ts, cmp_topic);
    jw_t j;
    cli_table_t *t = NULL;
    if (cli.json) {
        jw_init(&j, stdout);
        jw_arr(&j);
    } else {
        t = tbl_new(3, "NAME", "PARTITIONS", "REPLICAS");
    }
    for (size_t k = 0; k < nt; k++) {
        const strata_topic_metadata_t *tm = &ts[k];
        size_t rf = tm->partition_count ? tm->partitions[0].replica_count : 0;
        if (tm->is_internal && !o.internal)
            continue;
        if (cli.json) {
            jw_obj(&j);
            jw_key(&j, "name");
            jw_str(&j, tm->name);
            jw_key(&j, "partitions");
            jw_int(&j, (int64_t)tm->partition_count);
            jw_key(&j, "replicas");
            jw_int(&j, (int64_t)rf);
            jw_key(&j, "internal");
            jw_bool(&j, tm->is_internal);
            jw_obj_end(&j);
        } else {
            tbl_rowf(t, "%s\t%zu\t%zu", tm->name, tm->partition_count, rf);
        }
    }
    if (cli.json) {
        jw_arr_end(&j);
        jw_end(&j);
    } else {
        tbl_print(t, stdout);
    }
    free(ts);
    strata_metadata_free(imd);
    strata_metadata_free(md);
    return CLI_OK;
}

/* ---- describe ---------------------------------------------------------------------- */

static const char *source_name(strata_config_source_t s)
{
    switch (s) {
    case STRATA_CONFIG_SOURCE_TOPIC: return "DYNAMIC_TOPIC_CONFIG";
    case STRATA_CONFIG_SOURCE_DYNAMIC_BROKER: return "DYNAMIC_BROKER_CONFIG";
    case STRATA_CONFIG_SOURCE_DYNAMIC_DEFAULT_BROKER: return "DYNAMIC_DEFAULT_BROKER_CONFIG";
    case STRATA_CONFIG_SOURCE_STATIC_BROKER: return "STATIC_BROKER_CONFIG";
    case STRATA_CONFIG_SOURCE_DEFAULT: return "DEFAULT_CONFIG";
    default: return "UNKNOWN";
    }
}

static void ids_str(char *buf, size_t n, const int32_t *ids, size_t count)
{
    size_t off = 0;
    buf[0] = 0;
    off += (size_t)snprintf(buf, n, "[");
    for (size_t i = 0; i < count && off < n; i++)
        off += (size_t)snprintf(buf + off, n - off, "%s%d", i ? " " : "", ids[i]);
    if (off < n)
        snprintf(buf + off, n - off, "]");
}

static void jw_ids(jw_t *j, const int32_t *ids, size_t count)
{
    jw_arr(j);
    for (size_t i = 0; i < count; i++)
        jw_int(j, ids[i]);
    jw_arr_end(j);
}

static int describe_one(strata_admin_t *a, const strata_topic_metadata_t *tm, int all_configs,
                        jw_t *j, int first)
{
    strata_config_description_t *cd = NULL;
    size_t np = tm->partition_count;
    strata_topic_partition_t *lo = calloc(np ? np * 2 : 1, sizeof *lo);
    strata_err_t err;
    int rc = CLI_OK;

    if (!lo)
        return CLI_FAIL;
    for (size_t p = 0; p < np; p++) {
        lo[p] = (strata_topic_partition_t){tm->name, tm->partitions[p].id, STRATA_OFFSET_BEGINNING, 0};
        lo[np + p] = (strata_topic_partition_t){tm->name, tm->partitions[p].id, STRATA_OFFSET_END, 0};
    }
    if (np && (err = strata_admin_list_offsets(a, lo, np * 2, -1)) && err != STRATA_ERR_LEADER_NOT_AVAILABLE) {
        free(lo);
        return cli_fail(err, "list offsets of %s", tm->name);
    }
    if ((err = strata_admin_describe_config(a, STRATA_RESOURCE_TOPIC, tm->name, NULL, 0, -1, &cd))) {
        free(lo);
        return cli_fail(err, "describe configs of %s", tm->name);
    }
    if (cli.json) {
        jw_obj(j);
        jw_key(j, "name");
        jw_str(j, tm->name);
        jw_key(j, "internal");
        jw_bool(j, tm->is_internal);
        jw_key(j, "partitions");
        jw_arr(j);
        for (size_t p = 0; p < np; p++) {
            const strata_partition_metadata_t *pm = &tm->partitions[p];
            jw_obj(j);
            jw_key(j, "partition");
            jw_int(j, pm->id);
            jw_key(j, "leader");
            jw_int(j, pm->leader);
            jw_key(j, "replicas");
            jw_ids(j, pm->replicas, pm->replica_count);
            jw_key(j, "isr");
            jw_ids(j, pm->isr, pm->isr_count);
            jw_key(j, "log_start_offset");
            if (lo[p].err) jw_null(j); else jw_int(j, lo[p].offset);
            jw_key(j, "high_watermark");
            if (lo[np + p].err) jw_null(j); else jw_int(j, lo[np + p].offset);
            jw_obj_end(j);
        }
        jw_arr_end(j);
        jw_key(j, "configs");
        jw_arr(j);
        for (size_t c = 0; !cd->err && c < cd->config_count; c++) {
            const strata_config_info_t *ci = &cd->configs[c];
            jw_obj(j);
            jw_key(j, "name");
            jw_str(j, ci->name);
            jw_key(j, "value");
            jw_str(j, ci->value);
            jw_key(j, "source");
            jw_str(j, source_name(ci->source));
            jw_key(j, "read_only");
            jw_bool(j, ci->read_only);
            jw_key(j, "sensitive");
            jw_bool(j, ci->sensitive);
            jw_obj_end(j);
        }
        jw_arr_end(j);
        jw_obj_end(j);
    } else {
        if (!first)
            putchar('\n');
        printf("SUMMARY\n=======\n");
        cli_table_t *t = tbl_new(2, "NAME", tm->name);
        tbl_rowf(t, "INTERNAL\t%s", tm->is_internal ? "true" : "false");
        tbl_rowf(t, "PARTITIONS\t%zu", np);
        tbl_rowf(t, "REPLICAS\t%zu", np ? tm->partitions[0].replica_count : (size_t)0);
        tbl_print(t, stdout);
        printf("\nCONFIGS\n=======\n");
        t = tbl_new(3, "KEY", "VALUE", "SOURCE");
        for (size_t c = 0; !cd->err && c < cd->config_count; c++) {
            const strata_config_info_t *ci = &cd->configs[c];
            if (!all_configs && ci->source != STRATA_CONFIG_SOURCE_TOPIC)
                continue;
            tbl_row(t, ci->name, ci->value ? ci->value : "(null)", source_name(ci->source));
        }
        tbl_print(t, stdout);
        printf("\nPARTITIONS\n==========\n");
        t = tbl_new(6, "PARTITION", "LEADER", "REPLICAS", "ISR", "LOG-START-OFFSET", "HIGH-WATERMARK");
        for (size_t p = 0; p < np; p++) {
            const strata_partition_metadata_t *pm = &tm->partitions[p];
            char rep[256], isr[256], so[32] = "-", hw[32] = "-";
            ids_str(rep, sizeof rep, pm->replicas, pm->replica_count);
            ids_str(isr, sizeof isr, pm->isr, pm->isr_count);
            if (!lo[p].err)
                snprintf(so, sizeof so, "%lld", (long long)lo[p].offset);
            if (!lo[np + p].err)
                snprintf(hw, sizeof hw, "%lld", (long long)lo[np + p].offset);
            tbl_rowf(t, "%d\t%d\t%s\t%s\t%s\t%s", pm->id, pm->leader, rep, isr, so, hw);
        }
        tbl_print(t, stdout);
    }
    if (cd->err)
        rc = cli_fail_msg(cd->err, cd->err_msg, "describe configs of %s", tm->name);
    strata_config_description_free(cd);
    free(lo);
    return rc;
}

static int topic_describe(int argc, char **argv)
{
    static const struct option lo[] = {{"all-configs", no_argument, NULL, 'a'}, {NULL, 0, NULL, 0}};
    topt_t o = {0};
    int i = cli_getopt(argc, argv, "a", lo, topt, &o, describe_usage), rc = CLI_OK;
    strata_admin_t *a;
    strata_metadata_t *md = NULL;

    if (i < 0)
        return CLI_USAGE;
    if (i >= argc)
        return cli_usage_err("topic describe: name at least one topic");
    if (!(a = cli_admin()))
        return CLI_FAIL;
    strata_err_t err = strata_admin_describe_topics(a, (const char *const *)(argv + i),
                                                    (size_t)(argc - i), -1, &md);
    if (err) {
        strata_admin_free(a);
        return cli_fail(err, "describe topics");
    }
    jw_t j;
    jw_init(&j, stdout);
    if (cli.json)
        jw_arr(&j);
    int shown = 0;
    for (int k = i; k < argc; k++) {
        const strata_topic_metadata_t *tm = NULL;
        for (size_t t = 0; t < md->topic_count; t++)
            if (!strcmp(md->topics[t].name, argv[k]))
                tm = &md->topics[t];
        if (!tm || tm->err) {
            rc = cli_fail(tm ? tm->err : STRATA_ERR_UNKNOWN_TOPIC_OR_PARTITION, "topic %s", argv[k]);
            continue;
        }
        if (describe_one(a, tm, o.all_configs, &j, !shown++))
            rc = CLI_FAIL;
    }
    if (cli.json) {
        jw_arr_end(&j);
        jw_end(&j);
    }
    strata_metadata_free(md);
    strata_admin_free(a);
    return rc;
}

/* ---- alter-config ------------------------------------------------------------------- */

static int topic_alter(int argc, char **argv)
{
    static const struct option lo[] = {{"set", required_argument, NULL, 's'},
                                       {"delete", required_argument, NULL, 'd'},
                                       {NULL, 0, NULL, 0}};
    topt_t o = {0};
    int i = cli_getopt(argc, argv, "s:d:", lo, topt, &o, alter_usage), rc = CLI_OK;
    strata_admin_t *a;

    if (i < 0)
        return CLI_USAGE;
    if (i >= argc)
        return cli_usage_err("topic alter-config: name at least one topic");
    if (!o.nset && !o.ndel)
        return cli_usage_err("topic alter-config: nothing to change (--set / --delete)");
    if (!(a = cli_admin()))
        return CLI_FAIL;
    size_t n = (size_t)(argc - i);
    strata_err_t *res = calloc(n, sizeof *res);
    for (size_t k = 0; res && k < n; k++) {
        const char *topic = argv[i + (int)k];
        strata_config_description_t *cd = NULL;
        strata_err_t err = strata_admin_describe_config(a, STRATA_RESOURCE_TOPIC, topic, NULL, 0, -1, &cd);
        if (err || cd->err) {
            res[k] = err ? err : cd->err;
            strata_config_description_free(cd);
            continue;
        }
        /* current overrides, minus --delete, then --set on top */
        strata_config_entry_t *es = calloc(cd->config_count + o.nset + 1, sizeof *es);
        size_t ne = 0;
        if (!es) {
            strata_config_description_free(cd);
            res[k] = STRATA_ERR_NO_MEMORY;
            continue;
        }
        for (size_t c = 0; c < cd->config_count; c++) {
            const strata_config_info_t *ci = &cd->configs[c];
            int drop = ci->source != STRATA_CONFIG_SOURCE_TOPIC;
            for (size_t d = 0; d < o.ndel; d++)
                drop |= !strcmp(o.del[d], ci->name);
            for (size_t s = 0; s < o.nset; s++)
                drop |= !strncmp(o.set[s], ci->name, strlen(ci->name)) &&
                        o.set[s][strlen(ci->name)] == '=';
            if (!drop)
                es[ne++] = (strata_config_entry_t){ci->name, ci->value};
        }
        char *copies[64];
        for (size_t s = 0; s < o.nset; s++) {
            copies[s] = strdup(o.set[s]);
            char *eq = copies[s] ? strchr(copies[s], '=') : NULL;
            if (eq) {
                *eq = 0;
                es[ne++] = (strata_config_entry_t){copies[s], eq + 1};
            }
        }
        strata_config_resource_t r = {STRATA_RESOURCE_TOPIC, topic, es, ne, 0};
        strata_err_t one = 0;
        err = strata_admin_alter_configs(a, &r, 1, -1, &one);
        res[k] = err ? err : one;
        if (res[k])
            cli_fail_msg(res[k], strata_admin_error_message(a, 0), "alter configs of %s", topic);
        for (size_t s = 0; s < o.nset; s++)
            free(copies[s]);
        free(es);
        strata_config_description_free(cd);
    }
    if (res) {
        if (cli.json) {
            jw_t j;
            jw_init(&j, stdout);
            jw_arr(&j);
            for (size_t k = 0; k < n; k++) {
                jw_obj(&j);
                jw_key(&j, "topic");
                jw_str(&j, argv[i + (int)k]);
                jw_key(&j, "error");
                if (res[k]) jw_str(&j, strata_err_name(res[k])); else jw_null(&j);
                jw_obj_end(&j);
            }
            jw_arr_end(&j);
            jw_end(&j);
        } else {
            cli_table_t *t = tbl_new(2, "TOPIC", "STATUS");
            for (size_t k = 0; k < n; k++)
                tbl_row(t, argv[i + (int)k], res[k] ? strata_err_name(res[k]) : "OK");
            tbl_print(t, stdout);
        }
        for (size_t k = 0; k < n; k++)
            if (res[k]) {
                if (res[k] < 0 || res[k] == STRATA_ERR_UNKNOWN_TOPIC_OR_PARTITION)
                    cli_fail(res[k], "topic %s", argv[i + (int)k]);
                rc = CLI_FAIL;
            }
    } else {
        rc = CLI_FAIL;
    }
    free(res);
    strata_admin_free(a);
    return rc;
}

int cmd_topic(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        fputs(topic_usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_USAGE : CLI_OK;
    }
    const char *sub = argv[1];
    if (!strcmp(sub, "create"))
        return topic_create(argc - 1, argv + 1);
    if (!strcmp(sub, "list") || !strcmp(sub, "ls"))
        return topic_list(argc - 1, argv + 1);
    if (!strcmp(sub, "describe"))
        return topic_describe(argc - 1, argv + 1);
    if (!strcmp(sub, "delete"))
        return topic_delete(argc - 1, argv + 1);
    if (!strcmp(sub, "alter-config"))
        return topic_alter(argc - 1, argv + 1);
    return cli_usage_err("topic: unknown subcommand \"%s\"", sub);
}
