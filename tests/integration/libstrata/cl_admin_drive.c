/*
 * cl_admin_drive -- every public strata_admin_* call against a live broker,
 * as an application uses them (libstrata.so, public header only). Run by
 * test_cli.py (mode api): cl_admin_drive BOOTSTRAP. Prints "ok: ..." per
 * check and exits 0, or "FAIL: ..." and exits 1.
 *
 * Expects an empty broker. Creates topics api-a (3 partitions, retention.ms
 * override) and api-b; produces to api-a with libstrata's producer; commits
 * offsets for group api-g through strata_admin_alter_group_offsets.
 */
#include "strata/client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CHECK(cond, ...)                                                                \
    do {                                                                                \
        if (!(cond)) {                                                                  \
            printf("FAIL: line %d: ", __LINE__);                                        \
            printf(__VA_ARGS__);                                                        \
            printf("\n");                                                               \
            exit(1);                                                                    \
        }                                                                               \
    } while (0)
#define OK(...)                                                                         \
    do {                                                                                \
        printf("ok: ");                                                                 \
        printf(__VA_ARGS__);                                                            \
        printf("\n");                                                                   \
        fflush(stdout);                                                                 \
    } while (0)

static const char *cfg(const strata_config_description_t *d, const char *name,
                       strata_config_source_t *src)
{
    for (size_t i = 0; i < d->config_count; i++)
        if (!strcmp(d->configs[i].name, name)) {
            if (src)
                *src = d->configs[i].source;
            return d->configs[i].value ? d->configs[i].value : "(null)";
        }
    return NULL;
}

static void on_dr(strata_producer_t *p, const strata_message_t *m, void *arg)
{
    if (m->err)
        ++*(int *)arg;
}

int main(int argc, char **argv)
{
    strata_conf_t *conf = strata_conf_new();
    strata_admin_t *a = NULL;
    char errstr[256];
    strata_err_t err, res[4];

    if (argc != 2) {
        fprintf(stderr, "usage: cl_admin_drive BOOTSTRAP\n");
        return 2;
    }
    CHECK(!strata_conf_set(conf, "bootstrap.servers", argv[1], errstr, sizeof errstr), "%s", errstr);
    CHECK(!(err = strata_admin_new(conf, &a, errstr, sizeof errstr)), "admin_new %d %s", err, errstr);

    /* create: one good with configs, one duplicate, one bad config */
    strata_config_entry_t ce[] = {{"retention.ms", "3600000"}, {"cleanup.policy", "delete"}};
    strata_config_entry_t bad[] = {{"retention.ms", "never"}};
    strata_new_topic_t nt[] = {{"api-a", 3, 1, ce, 2}, {"api-b", -1, -1, NULL, 0}};
    err = strata_admin_create_topics(a, nt, 2, 10000, res);
    CHECK(!err, "create_topics: %s", strata_err_name(err));
    CHECK(res[0] == 0 && res[1] == 0, "create results %d %d", res[0], res[1]);
    strata_new_topic_t nt2[] = {{"api-c", 1, 1, bad, 1}, {"api-a", 1, 1, NULL, 0}};
    err = strata_admin_create_topics(a, nt2, 2, 10000, res);
    CHECK(!err, "create_topics: %s", strata_err_name(err));
    CHECK(res[1] == STRATA_ERR_TOPIC_ALREADY_EXISTS, "duplicate: %s", strata_err_name(res[1]));
    CHECK(res[0] == STRATA_ERR_INVALID_CONFIG, "bad config: %s", strata_err_name(res[0]));
    CHECK(strata_admin_error_message(a, 0) && strstr(strata_admin_error_message(a, 0), "retention.ms"),
          "error message for bad config: %s", strata_admin_error_message(a, 0));
    CHECK(strata_admin_error_message(a, 1) && strstr(strata_admin_error_message(a, 1), "api-a"),
          "error message for a duplicate: %s", strata_admin_error_message(a, 1));
    OK("create_topics: OK, OK; then INVALID_CONFIG (\"%s\"), TOPIC_ALREADY_EXISTS",
       strata_admin_error_message(a, 0));

    /* describe (all, some, unknown) */
    strata_metadata_t *md = NULL;
    CHECK(!(err = strata_admin_describe_topics(a, NULL, 0, 10000, &md)), "list: %s", strata_err_name(err));
    size_t seen = 0;
    for (size_t i = 0; i < md->topic_count; i++)
        seen += !strcmp(md->topics[i].name, "api-a") || !strcmp(md->topics[i].name, "api-b");
    CHECK(seen == 2 && md->broker_count == 1 && md->controller_id == md->brokers[0].node_id &&
              md->cluster_id, "list: seen %zu brokers %zu", seen, md->broker_count);
    strata_metadata_free(md);
    const char *some[] = {"api-a", "nope"};
    CHECK(!(err = strata_admin_describe_topics(a, some, 2, 10000, &md)), "describe: %s", strata_err_name(err));
    CHECK(md->topic_count == 2, "describe count %zu", md->topic_count);
    for (size_t i = 0; i < 2; i++) {
        if (!strcmp(md->topics[i].name, "api-a"))
            CHECK(!md->topics[i].err && md->topics[i].partition_count == 3 &&
                      md->topics[i].partitions[2].leader >= 0, "api-a");
        else
            CHECK(md->topics[i].err == STRATA_ERR_UNKNOWN_TOPIC_OR_PARTITION, "nope: %d", md->topics[i].err);
    }
    strata_metadata_free(md);
    OK("describe_topics: every topic; api-a with 3 led partitions; nope UNKNOWN_TOPIC_OR_PARTITION");

    /* configs: the old array API with a key filter, and the detailed one */
    strata_config_entry_t keys[] = {{"retention.ms", NULL}, {"cleanup.policy", NULL}};
    strata_config_resource_t rq[] = {{STRATA_RESOURCE_TOPIC, "api-a", keys, 2, 0},
                                     {STRATA_RESOURCE_TOPIC, "nope", NULL, 0, 0}};
    strata_config_resource_t *rs = NULL;
    CHECK(!(err = strata_admin_describe_configs(a, rq, 2, 10000, &rs)), "describe_configs: %s",
          strata_err_name(err));
    CHECK(!rs[0].err && rs[0].entry_count == 2, "api-a configs: err %d n %zu", rs[0].err, rs[0].entry_count);
    for (size_t i = 0; i < 2; i++)
        CHECK(!strcmp(rs[0].entries[i].value,
                      !strcmp(rs[0].entries[i].name, "retention.ms") ? "3600000" : "delete"),
              "%s=%s", rs[0].entries[i].name, rs[0].entries[i].value);
    CHECK(rs[1].err == STRATA_ERR_UNKNOWN_TOPIC_OR_PARTITION, "nope configs: %d", rs[1].err);
    strata_config_resources_free(rs, 2);
    OK("describe_configs: filtered keys of api-a; nope UNKNOWN_TOPIC_OR_PARTITION");

    strata_config_entry_t alt[] = {{"retention.ms", "7200000"}};
    strata_config_entry_t altbad[] = {{"no.such.config", "1"}};
    strata_config_resource_t ar[] = {{STRATA_RESOURCE_TOPIC, "api-a", alt, 1, 0},
                                     {STRATA_RESOURCE_TOPIC, "api-b", altbad, 1, 0}};
    CHECK(!(err = strata_admin_alter_configs(a, ar, 2, 10000, res)), "alter: %s", strata_err_name(err));
    CHECK(res[0] == 0 && res[1] == STRATA_ERR_INVALID_CONFIG, "alter results %d %d", res[0], res[1]);
    CHECK(strata_admin_error_message(a, 1) != NULL, "alter error message");
    strata_config_description_t *cd = NULL;
    CHECK(!(err = strata_admin_describe_config(a, STRATA_RESOURCE_TOPIC, "api-a", NULL, 0, 10000, &cd)),
          "describe_config: %s", strata_err_name(err));
    strata_config_source_t src = STRATA_CONFIG_SOURCE_UNKNOWN;
    const char *v = cfg(cd, "retention.ms", &src);
    CHECK(v && !strcmp(v, "7200000") && src == STRATA_CONFIG_SOURCE_TOPIC, "retention.ms %s src %d", v, src);
    v = cfg(cd, "cleanup.policy", &src); /* AlterConfigs replaced the whole set */
    CHECK(v && src == STRATA_CONFIG_SOURCE_DEFAULT, "cleanup.policy src %d", src);
    strata_config_description_free(cd);
    CHECK(!(err = strata_admin_describe_config(a, STRATA_RESOURCE_BROKER, "0", NULL, 0, 10000, &cd)),
          "broker configs: %s", strata_err_name(err));
    CHECK(!cd->err && cd->config_count > 10 && cfg(cd, "log.dirs", NULL), "broker configs %d %zu", cd->err,
          cd->config_count);
    strata_config_description_free(cd);
    OK("alter_configs: api-a OK, api-b INVALID_CONFIG (\"%s\"); replaced set read back; broker configs",
       strata_admin_error_message(a, 1));

    /* data for offsets: 30 records into api-a, ~10 per partition, timestamps known */
    strata_producer_t *p = NULL;
    int failed = 0;
    CHECK(!strata_producer_new(conf, on_dr, &failed, &p, errstr, sizeof errstr), "producer: %s", errstr);
    for (int i = 0; i < 30; i++) {
        char val[16];
        snprintf(val, sizeof val, "v%d", i);
        strata_record_t r = {"api-a", i % 3, NULL, 0, val, strlen(val), NULL, 0,
                             i < 15 ? 1000000 + i : 2000000 + i};
        CHECK(!strata_produce(p, &r, NULL), "produce");
    }
    CHECK(!strata_producer_flush(p, 10000) && !failed, "flush (failed %d)", failed);
    strata_producer_free(p);

    strata_topic_partition_t lo[] = {{"api-a", 0, STRATA_OFFSET_BEGINNING, 0},
                                     {"api-a", 0, STRATA_OFFSET_END, 0},
                                     {"api-a", 1, 2000000, 0},
                                     {"api-a", 2, 3000000, 0},
                                     {"api-a", 7, STRATA_OFFSET_END, 0},
                                     {"nope", 0, STRATA_OFFSET_END, 0}};
    CHECK(!(err = strata_admin_list_offsets(a, lo, 6, 10000)), "list_offsets: %s", strata_err_name(err));
    CHECK(!lo[0].err && lo[0].offset == 0, "earliest %d %lld", lo[0].err, (long long)lo[0].offset);
    CHECK(!lo[1].err && lo[1].offset == 10, "latest %d %lld", lo[1].err, (long long)lo[1].offset);
    /* partition 1 holds i = 1,4,...,28: i >= 15 start at its 5th record */
    CHECK(!lo[2].err && lo[2].offset == 5, "by time %d %lld", lo[2].err, (long long)lo[2].offset);
    CHECK(!lo[3].err && lo[3].offset == -1, "after the last %d %lld", lo[3].err, (long long)lo[3].offset);
    CHECK(lo[4].err == STRATA_ERR_UNKNOWN_TOPIC_OR_PARTITION, "partition 7: %d", lo[4].err);
    CHECK(lo[5].err == STRATA_ERR_UNKNOWN_TOPIC_OR_PARTITION, "nope: %d", lo[5].err);
    OK("list_offsets: earliest 0, latest 10, by timestamp 5 / -1, unknown partition and topic");

    /* group offsets through the admin client (no members) */
    strata_topic_partition_t go[] = {{"api-a", 0, 4, 0}, {"api-a", 2, 9, 0}};
    CHECK(!(err = strata_admin_alter_group_offsets(a, "api-g", go, 2, 10000)), "alter_group_offsets: %s",
          strata_err_name(err));
    strata_topic_partition_t *got = NULL;
    size_t ngot = 0;
    const char *only[] = {"api-a"};
    CHECK(!(err = strata_admin_list_group_offsets(a, "api-g", only, 1, 10000, &got, &ngot)),
          "list_group_offsets: %s", strata_err_name(err));
    int64_t off[3] = {-2, -2, -2};
    for (size_t i = 0; i < ngot; i++)
        if (!got[i].err && got[i].partition < 3)
            off[got[i].partition] = got[i].offset;
    CHECK(off[0] == 4 && off[2] == 9 && off[1] == -2, "committed %lld %lld %lld", (long long)off[0],
          (long long)off[1], (long long)off[2]);
    strata_topic_partition_list_free(got, ngot);
    const char *other[] = {"api-b"};
    CHECK(!(err = strata_admin_list_group_offsets(a, "api-g", other, 1, 10000, &got, &ngot)) && ngot == 0,
          "filtered: %s %zu", strata_err_name(err), ngot);
    strata_topic_partition_list_free(got, ngot);
    OK("alter_group_offsets + list_group_offsets: api-a/0=4, api-a/2=9; topic filter");

    strata_group_info_t *gl = NULL, *gd = NULL;
    size_t ng = 0;
    CHECK(!(err = strata_admin_list_groups(a, 10000, &gl, &ng)), "list_groups: %s", strata_err_name(err));
    CHECK(ng == 1 && !strcmp(gl[0].group_id, "api-g"), "groups: %zu", ng);
    strata_group_infos_free(gl, ng);
    const char *gids[] = {"api-g", "nope-g"};
    CHECK(!(err = strata_admin_describe_groups(a, gids, 2, 10000, &gd)), "describe_groups: %s",
          strata_err_name(err));
    CHECK(!gd[0].err && !strcmp(gd[0].state, "Empty") && gd[0].member_count == 0, "api-g: %d %s",
          gd[0].err, gd[0].state);
    CHECK(!gd[1].err && !strcmp(gd[1].state, "Dead"), "nope-g: %d %s", gd[1].err, gd[1].state);
    strata_group_infos_free(gd, 2);
    strata_group_description_t *dd = NULL;
    CHECK(!(err = strata_admin_describe_group(a, "api-g", 10000, &dd)), "describe_group: %s",
          strata_err_name(err));
    CHECK(!strcmp(dd->group_id, "api-g") && dd->coordinator_id >= 0 && dd->member_count == 0, "dd");
    strata_group_description_free(dd);
    OK("list_groups, describe_groups (api-g Empty, nope-g Dead), describe_group");

    /* delete */
    const char *del[] = {"api-b", "nope"};
    CHECK(!(err = strata_admin_delete_topics(a, del, 2, 10000, res)), "delete: %s", strata_err_name(err));
    CHECK(res[0] == 0 && res[1] == STRATA_ERR_UNKNOWN_TOPIC_OR_PARTITION, "delete results %d %d", res[0],
          res[1]);
    OK("delete_topics: api-b OK, nope UNKNOWN_TOPIC_OR_PARTITION");

    strata_admin_free(a);
    strata_conf_free(conf);
    OK("done");
    return 0;
}
