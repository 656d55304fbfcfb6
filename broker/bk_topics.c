/* bk_topics -- the topic registry over the metadata store (see bk_topics.h).
 * Lookups are linear over the store's topics: fine for the number of topics
 * a single node serves today; a hash index belongs in rp_meta when needed. */
#include "bk_topics.h"

#include "sc_err.h"
#include "sc_log.h"
#include "sc_mem.h"
#include "rp_zk.h"

#include <stdio.h>
#include <string.h>

#define SUB "broker"

struct bk_topics {
    rp_meta_t *store;
    bk_partition_hooks_t hooks;
};

static int noop_created(void *arg, const char *topic, const uint8_t id[16], int32_t partition)
{
    (void)arg;
    (void)topic;
    (void)id;
    (void)partition;
    return 0;
}

static void noop_deleted(void *arg, const char *topic, const uint8_t id[16], int32_t partition)
{
    (void)arg;
    (void)topic;
    (void)id;
    (void)partition;
}

static const bk_partition_hooks_t noop_hooks = {noop_created, noop_deleted, NULL};

int bk_topics_open(const char *dir, const char *cluster_id, bk_topics_t **out)
{
    bk_topics_t *t = sc_calloc(1, sizeof *t);
    if (!t)
        return SC_ERR_NO_MEMORY;
    t->hooks = noop_hooks;
    int rc = rp_meta_open_local(dir, cluster_id, &t->store);
    if (rc) {
        sc_free(t);
        return rc;
    }
    *out = t;
    return 0;
}

static int run_created(bk_topics_t *t, const char *name, int32_t from, int32_t to);

int bk_topics_open_zk(struct rp_zk *z, const char *cluster_id, bk_topics_t **out)
{
    bk_topics_t *t = sc_calloc(1, sizeof *t);
    if (!t)
        return SC_ERR_NO_MEMORY;
    t->hooks = noop_hooks;
    int rc = rp_meta_open_zk(z, cluster_id, &t->store);
    if (rc) {
        sc_free(t);
        return rc;
    }
    *out = t;
    return 0;
}

typedef struct {
    char name[BK_TOPIC_NAME_MAX + 1];
    uint8_t id[16];
    int32_t parts;
} snap_t;

int bk_topics_reload(bk_topics_t *t)
{
    size_t n = rp_meta_topic_count(t->store);
    snap_t *old = n ? sc_calloc(n, sizeof *old) : NULL;
    if (n && !old)
        return SC_ERR_NO_MEMORY;
    for (size_t i = 0; i < n; i++) {
        const rp_meta_topic_t *x = rp_meta_topic_at(t->store, i);
        snprintf(old[i].name, sizeof old[i].name, "%s", x->name);
        memcpy(old[i].id, x->id, 16);
        old[i].parts = x->partitions;
    }
    int rc = rp_meta_reload(t->store);
    if (rc) {
        sc_free(old);
        return rc;
    }
    /* gone (or replaced by a new topic of the same name) */
    for (size_t i = 0; i < n; i++) {
        const rp_meta_topic_t *x = rp_meta_topic_find(t->store, old[i].name, strlen(old[i].name));
        if (x && memcmp(x->id, old[i].id, 16) == 0)
            continue;
        SC_INFO(SUB, "topic %s was deleted in the cluster", old[i].name);
        for (int32_t p = 0; p < old[i].parts; p++)
            t->hooks.deleted(t->hooks.arg, old[i].name, old[i].id, p);
    }
    /* new, or grown */
    size_t m = rp_meta_topic_count(t->store);
    for (size_t j = 0; j < m; j++) {
        const rp_meta_topic_t *x = rp_meta_topic_at(t->store, j);
        int32_t from = 0;
        for (size_t i = 0; i < n; i++)
            if (strcmp(old[i].name, x->name) == 0 && memcmp(old[i].id, x->id, 16) == 0)
                from = old[i].parts;
        if (from < x->partitions) {
            char name[BK_TOPIC_NAME_MAX + 1];
            snprintf(name, sizeof name, "%s", x->name);
            SC_INFO(SUB, "topic %s: partitions %d..%d appeared in the cluster", name, from,
                    x->partitions - 1);
            (void)run_created(t, name, from, x->partitions);
            m = rp_meta_topic_count(t->store);
        }
    }
    sc_free(old);
    return 0;
}

void bk_topics_free(bk_topics_t *t)
{
    if (!t)
        return;
    rp_meta_close(t->store);
    sc_free(t);
}

void bk_topics_set_hooks(bk_topics_t *t, const bk_partition_hooks_t *hooks)
{
    t->hooks = hooks ? *hooks : noop_hooks;
    if (!t->hooks.created)
        t->hooks.created = noop_created;
    if (!t->hooks.deleted)
        t->hooks.deleted = noop_deleted;
}

int bk_topic_name_valid(const char *name, size_t len)
{
    if (len == 0 || len > BK_TOPIC_NAME_MAX)
        return 0;
    if ((len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.'))
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

/* Copies a request name view into buf (BK_TOPIC_NAME_MAX + 1). 0 or
 * SC_ERR_INVALID_TOPIC_EXCEPTION. */
static int cname(const char *name, size_t len, char *buf)
{
    if (!bk_topic_name_valid(name, len))
        return SC_ERR_INVALID_TOPIC_EXCEPTION;
    memcpy(buf, name, len);
    buf[len] = 0;
    return 0;
}

/* Runs the created hook for partitions [from, to); returns the first error. */
static int run_created(bk_topics_t *t, const char *name, int32_t from, int32_t to)
{
    const rp_meta_topic_t *tp = rp_meta_topic_find(t->store, name, strlen(name));
    int first = 0;
    for (int32_t p = from; tp && p < to; p++) {
        int rc = t->hooks.created(t->hooks.arg, name, tp->id, p);
        if (rc) {
            SC_ERROR(SUB, "creating the log of %s-%d: %s", name, p, sc_err_str(rc));
            if (!first)
                first = rc;
        }
    }
    return first;
}

int bk_topics_create_ex(bk_topics_t *t, const char *name, size_t len, int32_t partitions,
                        int16_t rf, const rp_meta_kv_t *configs, size_t n)
{
    char buf[BK_TOPIC_NAME_MAX + 1];
    int rc = cname(name, len, buf);
    if (rc)
        return rc;
    if ((rc = rp_meta_topic_create(t->store, buf, partitions, rf, configs, n)) != 0)
        return rc;
    SC_INFO(SUB, "created topic %s with %d partition(s)", buf, partitions);
    return run_created(t, buf, 0, partitions);
}

int bk_topics_create(bk_topics_t *t, const char *name, size_t len, int32_t partitions)
{
    return bk_topics_create_ex(t, name, len, partitions, 1, NULL, 0);
}

int bk_topics_delete(bk_topics_t *t, const char *name, size_t len)
{
    char buf[BK_TOPIC_NAME_MAX + 1];
    if (cname(name, len, buf))
        return SC_ERR_UNKNOWN_TOPIC_OR_PARTITION;
    const rp_meta_topic_t *tp = rp_meta_topic_find(t->store, buf, len);
    if (!tp)
        return SC_ERR_UNKNOWN_TOPIC_OR_PARTITION;
    uint8_t id[16];
    int32_t parts = tp->partitions;
    memcpy(id, tp->id, sizeof id);
    int rc = rp_meta_topic_delete(t->store, buf);
    if (rc)
        return rc;
    SC_INFO(SUB, "deleted topic %s (%d partition(s))", buf, parts);
    for (int32_t p = 0; p < parts; p++)
        t->hooks.deleted(t->hooks.arg, buf, id, p);
    return 0;
}

int bk_topics_add_partitions(bk_topics_t *t, const char *name, size_t len, int32_t count)
{
    char buf[BK_TOPIC_NAME_MAX + 1];
    if (cname(name, len, buf))
        return SC_ERR_UNKNOWN_TOPIC_OR_PARTITION;
    const rp_meta_topic_t *tp = rp_meta_topic_find(t->store, buf, len);
    if (!tp)
        return SC_ERR_UNKNOWN_TOPIC_OR_PARTITION;
    int32_t old = tp->partitions;
    int rc = rp_meta_topic_set_partitions(t->store, buf, count);
    if (rc)
        return rc;
    SC_INFO(SUB, "topic %s: %d -> %d partitions", buf, old, count);
    return run_created(t, buf, old, count);
}

int bk_topics_set_configs(bk_topics_t *t, const char *name, size_t len, const rp_meta_kv_t *kv,
                          size_t n)
{
    char buf[BK_TOPIC_NAME_MAX + 1];
    if (cname(name, len, buf))
        return SC_ERR_UNKNOWN_TOPIC_OR_PARTITION;
    int rc = rp_meta_topic_set_configs(t->store, buf, kv, n);
    if (rc == 0)
        SC_INFO(SUB, "topic %s: %zu config override(s) set", buf, n);
    return rc;
}

const rp_meta_topic_t *bk_topics_lookup(const bk_topics_t *t, const char *name, size_t len)
{
    return rp_meta_topic_find(t->store, name, len);
}

int bk_topics_find(const bk_topics_t *t, const char *name, size_t len, int32_t *partitions)
{
    const rp_meta_topic_t *x = rp_meta_topic_find(t->store, name, len);
    if (!x)
        return SC_ERR_UNKNOWN_TOPIC_OR_PARTITION;
    *partitions = x->partitions;
    return 0;
}

int bk_topics_producer_id_next(bk_topics_t *t, int64_t *pid)
{
    return rp_meta_producer_id_next(t->store, pid);
}

size_t bk_topics_count(const bk_topics_t *t) { return rp_meta_topic_count(t->store); }

const char *bk_topics_get(const bk_topics_t *t, size_t i, int32_t *partitions)
{
    const rp_meta_topic_t *x = rp_meta_topic_at(t->store, i);
    *partitions = x->partitions;
    return x->name;
}

const char *bk_topics_cluster_id(const bk_topics_t *t) { return rp_meta_cluster_id(t->store); }
