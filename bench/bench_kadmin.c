/*
 * bench_kadmin -- the topic setup the workloads need (create if missing,
 * wait for leaders, end offsets, delete), done with libstrata's admin client
 * so it is the same against any Kafka-protocol broker whichever client then
 * drives the data path.
 */
#include "bench.h"

#include <strata/client.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static strata_admin_t *admin(const char *bootstrap, char *err, size_t errn)
{
    strata_conf_t *conf = strata_conf_new();
    strata_admin_t *a = NULL;
    if (!conf || strata_conf_set(conf, "bootstrap.servers", bootstrap, err, errn) ||
        strata_admin_new(conf, &a, err, errn))
        a = NULL;
    strata_conf_free(conf);
    return a;
}

/* Partitions of topic (0 = it does not exist, -1 = error); *leaders = those
 * with a leader. */
static int describe(strata_admin_t *a, const char *topic, int *leaders, char *err, size_t errn)
{
    strata_metadata_t *md = NULL;
    strata_err_t rc = strata_admin_describe_topics(a, &topic, 1, 10000, &md);
    if (rc || !md || md->topic_count != 1) {
        snprintf(err, errn, "describe %s: %s", topic, strata_err_str(rc ? rc : STRATA_ERR_BAD_FORMAT));
        strata_metadata_free(md);
        return -1;
    }
    const strata_topic_metadata_t *t = &md->topics[0];
    int parts = (int)t->partition_count, lead = 0;
    for (size_t i = 0; i < t->partition_count; i++)
        lead += t->partitions[i].leader >= 0 && !t->partitions[i].err;
    strata_err_t terr = t->err;
    strata_metadata_free(md);
    *leaders = lead;
    if (terr == STRATA_ERR_UNKNOWN_TOPIC_OR_PARTITION)
        return 0;
    if (terr && terr != STRATA_ERR_LEADER_NOT_AVAILABLE) {
        snprintf(err, errn, "describe %s: %s", topic, strata_err_str(terr));
        return -1;
    }
    return parts;
}

int bench_kafka_setup_topic(const char *bootstrap, const char *topic, int partitions, int create,
                            char *err, size_t errn)
{
    return bench_kafka_setup_topic_rf(bootstrap, topic, partitions, create, -1, 0, err, errn);
}

int bench_kafka_setup_topic_rf(const char *bootstrap, const char *topic, int partitions, int create,
                               int rf, int min_insync, char *err, size_t errn)
{
    strata_admin_t *a = admin(bootstrap, err, errn);
    if (!a)
        return -1;
    int leaders = 0, parts = describe(a, topic, &leaders, err, errn);
    if (parts == 0 && create) {
        char misr[16];
        snprintf(misr, sizeof misr, "%d", min_insync);
        strata_config_entry_t ce = {"min.insync.replicas", misr};
        strata_new_topic_t nt = {.name = topic, .num_partitions = partitions,
                                 .replication_factor = (int16_t)(rf > 0 ? rf : -1),
                                 .configs = min_insync > 0 ? &ce : NULL,
                                 .config_count = min_insync > 0 ? 1 : 0};
        strata_err_t res = 0, rc = strata_admin_create_topics(a, &nt, 1, 30000, &res);
        if (rc || (res && res != STRATA_ERR_TOPIC_ALREADY_EXISTS)) {
            const char *m = rc ? NULL : strata_admin_error_message(a, 0);
            snprintf(err, errn, "create topic %s: %s%s%s", topic, strata_err_str(rc ? rc : res),
                     m ? ": " : "", m ? m : "");
            strata_admin_free(a);
            return -1;
        }
    } else if (parts == 0) {
        snprintf(err, errn, "topic %s does not exist (and --no-create)", topic);
        strata_admin_free(a);
        return -1;
    }
    /* wait until every partition has a leader */
    struct timespec ts = {0, 50 * 1000 * 1000};
    for (int i = 0; i < 200; i++) {
        parts = describe(a, topic, &leaders, err, errn);
        if (parts < 0 || (parts > 0 && leaders == parts))
            break;
        nanosleep(&ts, NULL);
    }
    strata_admin_free(a);
    if (parts >= 0 && (parts == 0 || leaders != parts)) {
        snprintf(err, errn, "topic %s: %d of %d partitions have a leader after 10 s", topic,
                 leaders, parts);
        return -1;
    }
    return parts;
}

int bench_kafka_delete_topic(const char *bootstrap, const char *topic, char *err, size_t errn)
{
    strata_admin_t *a = admin(bootstrap, err, errn);
    if (!a)
        return -1;
    strata_err_t res = 0, rc = strata_admin_delete_topics(a, &topic, 1, 30000, &res);
    strata_admin_free(a);
    if (rc || (res && res != STRATA_ERR_UNKNOWN_TOPIC_OR_PARTITION)) {
        snprintf(err, errn, "delete topic %s: %s", topic, strata_err_str(rc ? rc : res));
        return -1;
    }
    return 0;
}

int bench_kafka_end_offsets(const char *bootstrap, const char *topic, int parts, int64_t *ends,
                            char *err, size_t errn)
{
    strata_admin_t *a = admin(bootstrap, err, errn);
    strata_topic_partition_t *tps = calloc((size_t)parts, sizeof *tps);
    int ret = -1;
    if (!a || !tps)
        goto out;
    for (int i = 0; i < parts; i++)
        tps[i] = (strata_topic_partition_t){.topic = topic, .partition = i,
                                            .offset = STRATA_OFFSET_END};
    strata_err_t rc = strata_admin_list_offsets(a, tps, (size_t)parts, 10000);
    if (rc) {
        snprintf(err, errn, "end offsets of %s: %s", topic, strata_err_str(rc));
        goto out;
    }
    for (int i = 0; i < parts; i++) {
        if (tps[i].err || tps[i].offset < 0) {
            snprintf(err, errn, "end offset of %s[%d]: %s", topic, i,
                     strata_err_str(tps[i].err ? tps[i].err : STRATA_ERR_BAD_FORMAT));
            goto out;
        }
        ends[i] = tps[i].offset;
    }
    ret = 0;
out:
    free(tps);
    strata_admin_free(a);
    return ret;
}
