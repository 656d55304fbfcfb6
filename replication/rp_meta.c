/*
 * rp_meta -- the backend-independent half of the metadata store (see
 * rp_meta.h): argument checks, the copy-on-write image and producer-id
 * blocks. Runs on the store's owner thread, except rp_meta_op_run (the
 * backend write of a two-phase change, any one thread; it reads only the op).
 *
 * Copy-on-write: a change builds `next` = a new pointer array over the
 * current topics with at most one topic replaced, added or dropped; the
 * backend persists next; on success the array is swapped in and the replaced
 * topic freed, on failure the new array and new topic are freed. Topic
 * pointers handed out therefore stay valid until the next successful change
 * that touches their topic -- the header promises less (the next mutating
 * call) so the representation can change.
 */
#include "rp_meta_int.h"

#include "sc_err.h"
#include "sc_log.h"
#include "sc_mem.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

#define SUB "meta"

struct rp_meta {
    const rp__meta_ops_t *ops;
    void *be;
    rp__image_t img;
    int64_t pid_next, pid_end; /* the current producer-id block [next, end) */
};

/* ---- topics and images ------------------------------------------------------ */

static void kv_free(rp_meta_kv_t *kv, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        sc_free((char *)kv[i].key);
        sc_free((char *)kv[i].value);
    }
    sc_free(kv);
}

void rp__topic_free(rp_meta_topic_t *t)
{
    if (!t)
        return;
    sc_free((char *)t->name);
    kv_free((rp_meta_kv_t *)t->configs, t->nconfigs);
    sc_free(t);
}

void rp__image_fini(rp__image_t *img)
{
    for (size_t i = 0; i < img->ntopics; i++)
        rp__topic_free(img->topics[i]);
    sc_free(img->topics);
    img->topics = NULL;
    img->ntopics = 0;
}

/* Checks an override set: keys non-empty, values non-NULL, no key twice. */
static int kv_check(const rp_meta_kv_t *kv, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!kv[i].key || !*kv[i].key || !kv[i].value)
            return SC_ERR_INVALID_CONFIG;
        for (size_t j = 0; j < i; j++)
            if (strcmp(kv[i].key, kv[j].key) == 0)
                return SC_ERR_INVALID_CONFIG;
    }
    return 0;
}

static int kv_copy(const rp_meta_kv_t *kv, size_t n, rp_meta_kv_t **out)
{
    *out = NULL;
    if (n == 0)
        return 0;
    rp_meta_kv_t *c = sc_calloc(n, sizeof *c);
    if (!c)
        return SC_ERR_NO_MEMORY;
    for (size_t i = 0; i < n; i++) {
        c[i].key = sc_strdup(kv[i].key);
        c[i].value = sc_strdup(kv[i].value);
        if (!c[i].key || !c[i].value) {
            kv_free(c, i + 1);
            return SC_ERR_NO_MEMORY;
        }
    }
    *out = c;
    return 0;
}

/* A deep copy of t, optionally with other configs. */
static rp_meta_topic_t *topic_dup(const rp_meta_topic_t *t, const rp_meta_kv_t *kv, size_t n)
{
    rp_meta_topic_t *c = sc_calloc(1, sizeof *c);
    if (!c)
        return NULL;
    *c = *t;
    c->configs = NULL;
    c->nconfigs = 0;
    rp_meta_kv_t *copy;
    if (!(c->name = sc_strdup(t->name)) || kv_copy(kv, n, &copy)) {
        sc_free((char *)c->name);
        sc_free(c);
        return NULL;
    }
    c->configs = copy;
    c->nconfigs = n;
    return c;
}

static int find_index(const rp__image_t *img, const char *name, size_t len, size_t *idx)
{
    for (size_t i = 0; i < img->ntopics; i++) {
        const char *n = img->topics[i]->name;
        if (strlen(n) == len && memcmp(n, name, len) == 0) {
            *idx = i;
            return 1;
        }
    }
    return 0;
}

/* next = img with topics[idx] replaced by t (idx == ntopics: appended; t ==
 * NULL: topics[idx] dropped). Only the pointer array is new. */
static int image_derive(const rp__image_t *img, size_t idx, rp_meta_topic_t *t, rp__image_t *next)
{
    size_t n = img->ntopics + (idx == img->ntopics ? 1 : 0) - (t ? 0 : 1);
    *next = *img;
    next->topics = sc_malloc((n ? n : 1) * sizeof *next->topics);
    if (!next->topics)
        return SC_ERR_NO_MEMORY;
    size_t o = 0;
    for (size_t i = 0; i < img->ntopics; i++) {
        if (i != idx)
            next->topics[o++] = img->topics[i];
        else if (t)
            next->topics[o++] = t;
    }
    if (idx == img->ntopics)
        next->topics[o++] = t;
    next->ntopics = o;
    return 0;
}

/* Makes next current; frees the topic it replaced or dropped (old). */
static void image_commit(rp_meta_t *m, rp__image_t *next, rp_meta_topic_t *old)
{
    sc_free(m->img.topics);
    m->img = *next;
    rp__topic_free(old);
}

static void wrote(rp_meta_t *m)
{
    if (m->ops->wrote)
        m->ops->wrote(m->be);
}

/* ---- lifecycle -------------------------------------------------------------- */

int rp__meta_open(const rp__meta_ops_t *ops, void *be, const char *cluster_id, rp_meta_t **out)
{
    int rc = 0;
    rp_meta_t *m = NULL;
    if (!cluster_id || !*cluster_id || strlen(cluster_id) > RP_META_CLUSTER_ID_MAX) {
        rc = SC_ERR_BAD_CONFIG;
        goto out;
    }
    if (!(m = sc_calloc(1, sizeof *m))) {
        rc = SC_ERR_NO_MEMORY;
        goto out;
    }
    m->ops = ops;
    m->be = be;
    if ((rc = ops->load(be, cluster_id, &m->img)) != 0)
        goto out;
    *out = m;
    m = NULL;
    be = NULL;
out:
    if (m) {
        rp__image_fini(&m->img);
        sc_free(m);
    }
    if (be)
        ops->close(be);
    return rc;
}

void rp_meta_close(rp_meta_t *m)
{
    if (!m)
        return;
    m->ops->close(m->be);
    rp__image_fini(&m->img);
    sc_free(m);
}

/* ---- operations --------------------------------------------------------------- */

/* The checks of a create and the new topic (*out, fresh random id). */
static int create_prepare(rp_meta_t *m, const char *name, int32_t partitions, int16_t rf,
                          const rp_meta_kv_t *configs, size_t n, rp_meta_topic_t **out)
{
    int rc = 0;
    size_t len = name ? strlen(name) : 0, idx;
    if (len == 0 || len > RP_META_TOPIC_NAME_MAX)
        return SC_ERR_INVALID_TOPIC_EXCEPTION;
    if (partitions < 1)
        return SC_ERR_INVALID_PARTITIONS;
    if (rf < 1)
        return SC_ERR_INVALID_REPLICATION_FACTOR;
    if ((rc = kv_check(configs, n)) != 0)
        return rc;
    if (find_index(&m->img, name, len, &idx))
        return SC_ERR_TOPIC_ALREADY_EXISTS;

    rp_meta_topic_t proto = {.name = name, .partitions = partitions, .replication_factor = rf};
    /* A random version-4 UUID (never all-zero, which Kafka reserves). */
    for (size_t got = 0; got < sizeof proto.id;) {
        ssize_t r = getrandom(proto.id + got, sizeof proto.id - got, 0);
        if (r > 0)
            got += (size_t)r;
        else if (errno != EINTR)
            return -errno;
    }
    proto.id[6] = (uint8_t)((proto.id[6] & 0x0f) | 0x40);
    proto.id[8] = (uint8_t)((proto.id[8] & 0x3f) | 0x80);
    if (!(*out = topic_dup(&proto, configs, n)))
        return SC_ERR_NO_MEMORY;
    return 0;
}

int rp_meta_topic_create(rp_meta_t *m, const char *name, int32_t partitions, int16_t rf,
                         const rp_meta_kv_t *configs, size_t n)
{
    rp_meta_topic_t *t = NULL;
    rp__image_t next;
    int rc = create_prepare(m, name, partitions, rf, configs, n, &t);
    if (rc)
        return rc;
    if ((rc = image_derive(&m->img, m->img.ntopics, t, &next)) != 0)
        goto out;
    rc = m->ops->put_topic(m->be, &next, t);
    wrote(m);
    if (rc) {
        sc_free(next.topics);
        goto out;
    }
    image_commit(m, &next, NULL);
    t = NULL;
out:
    rp__topic_free(t);
    return rc;
}

int rp_meta_topic_delete(rp_meta_t *m, const char *name)
{
    size_t idx;
    rp__image_t next;
    if (!name || !find_index(&m->img, name, strlen(name), &idx))
        return SC_ERR_UNKNOWN_TOPIC_OR_PARTITION;
    rp_meta_topic_t *old = m->img.topics[idx];
    int rc = image_derive(&m->img, idx, NULL, &next);
    if (rc)
        return rc;
    rc = m->ops->delete_topic(m->be, &next, name);
    wrote(m);
    if (rc) {
        sc_free(next.topics);
        return rc;
    }
    image_commit(m, &next, old);
    return 0;
}

/* Shared tail of the two "replace one topic" changes. */
static int replace_topic(rp_meta_t *m, size_t idx, rp_meta_topic_t *t, int is_config)
{
    rp__image_t next;
    rp_meta_topic_t *old = m->img.topics[idx];
    int rc = image_derive(&m->img, idx, t, &next);
    if (rc)
        goto fail;
    rc = is_config ? m->ops->set_topic_config(m->be, &next, t) : m->ops->put_topic(m->be, &next, t);
    wrote(m);
    if (rc) {
        sc_free(next.topics);
        goto fail;
    }
    image_commit(m, &next, old);
    return 0;
fail:
    rp__topic_free(t);
    return rc;
}

/* The checks and the new record of a partition-count change (both paths):
 * *idx = the topic's place in the image, *out = its copy with count. */
static int partitions_prepare(rp_meta_t *m, const char *name, int32_t count, size_t *idx,
                              rp_meta_topic_t **out)
{
    if (!name || !find_index(&m->img, name, strlen(name), idx))
        return SC_ERR_UNKNOWN_TOPIC_OR_PARTITION;
    const rp_meta_topic_t *cur = m->img.topics[*idx];
    if (count <= cur->partitions)
        return SC_ERR_INVALID_PARTITIONS;
    if (!(*out = topic_dup(cur, cur->configs, cur->nconfigs)))
        return SC_ERR_NO_MEMORY;
    (*out)->partitions = count;
    return 0;
}

/* The same for a config change: the topic's copy with kv as its configs. */
static int configs_prepare(rp_meta_t *m, const char *name, const rp_meta_kv_t *kv, size_t n,
                           size_t *idx, rp_meta_topic_t **out)
{
    int rc;
    if (!name || !find_index(&m->img, name, strlen(name), idx))
        return SC_ERR_UNKNOWN_TOPIC_OR_PARTITION;
    if ((rc = kv_check(kv, n)) != 0)
        return rc;
    if (!(*out = topic_dup(m->img.topics[*idx], kv, n)))
        return SC_ERR_NO_MEMORY;
    return 0;
}

int rp_meta_topic_set_partitions(rp_meta_t *m, const char *name, int32_t count)
{
    size_t idx;
    rp_meta_topic_t *t;
    int rc = partitions_prepare(m, name, count, &idx, &t);
    return rc ? rc : replace_topic(m, idx, t, 0);
}

int rp_meta_topic_set_configs(rp_meta_t *m, const char *name, const rp_meta_kv_t *kv, size_t n)
{
    size_t idx;
    rp_meta_topic_t *t;
    int rc = configs_prepare(m, name, kv, n, &idx, &t);
    return rc ? rc : replace_topic(m, idx, t, 1);
}

int rp_meta_reload(rp_meta_t *m)
{
    rp__image_t img;
    memset(&img, 0, sizeof img);
    int rc = m->ops->load(m->be, m->img.cluster_id, &img);
    if (rc) {
        rp__image_fini(&img);
        return rc;
    }
    if (img.next_producer_id < m->img.next_producer_id)
        img.next_producer_id = m->img.next_producer_id;
    rp__image_fini(&m->img);
    m->img = img;
    return 0;
}

int rp_meta_producer_ids_alloc(rp_meta_t *m, int64_t count, int64_t *first)
{
    if (m->ops->alloc_remote) {
        if (count < 1)
            return SC_ERR_INVALID_REQUEST;
        int64_t s;
        int rc = m->ops->alloc_remote(m->be, count, &s);
        if (rc)
            return rc;
        m->img.next_producer_id = s + count;
        *first = s;
        return 0;
    }
    int64_t start = m->img.next_producer_id;
    if (count < 1 || start > INT64_MAX - count)
        return SC_ERR_INVALID_REQUEST;
    rp__image_t next = m->img; /* shares everything; only the counter differs */
    next.next_producer_id = start + count;
    int rc = m->ops->alloc_producer_ids(m->be, &next, start, count);
    if (rc)
        return rc;
    m->img.next_producer_id = start + count;
    *first = start;
    return 0;
}

int rp_meta_producer_id_next(rp_meta_t *m, int64_t *pid)
{
    if (m->pid_next >= m->pid_end) {
        int64_t first;
        int rc = rp_meta_producer_ids_alloc(m, RP_META_PID_BLOCK, &first);
        if (rc)
            return rc;
        m->pid_next = first;
        m->pid_end = first + RP_META_PID_BLOCK;
        SC_DEBUG(SUB, "reserved producer ids [%lld, %lld)", (long long)m->pid_next,
                 (long long)m->pid_end);
    }
    *pid = m->pid_next++;
    return 0;
}

/* ---- two-phase changes ------------------------------------------------------- */

enum { OP_CREATE, OP_DELETE, OP_PARTITIONS, OP_CONFIGS, OP_PIDS };

struct rp_meta_op {
    int kind;
    const rp__meta_ops_t *ops; /* the store's, immutable: run reads only these */
    void *be;
    rp_meta_topic_t *t;        /* CREATE / PARTITIONS / CONFIGS: the topic as written */
    char *name;                /* DELETE */
    int64_t first;             /* PIDS: the block's start */
    int rc;                    /* run's result */
};

static int op_new(rp_meta_t *m, int kind, rp_meta_topic_t *t, const char *name, rp_meta_op_t **out)
{
    *out = NULL;
    if (!m->ops->alloc_remote) { /* a backend that writes from the image */
        rp__topic_free(t);
        return SC_ERR_INVALID_REQUEST;
    }
    rp_meta_op_t *op = sc_calloc(1, sizeof *op);
    if (!op || (name && !(op->name = sc_strdup(name)))) {
        sc_free(op);
        rp__topic_free(t);
        return SC_ERR_NO_MEMORY;
    }
    op->kind = kind;
    op->ops = m->ops;
    op->be = m->be;
    op->t = t;
    *out = op;
    return 0;
}

int rp_meta_op_topic_create(rp_meta_t *m, const char *name, int32_t partitions, int16_t rf,
                            const rp_meta_kv_t *configs, size_t n, rp_meta_op_t **out)
{
    rp_meta_topic_t *t = NULL;
    *out = NULL;
    int rc = create_prepare(m, name, partitions, rf, configs, n, &t);
    return rc ? rc : op_new(m, OP_CREATE, t, NULL, out);
}

int rp_meta_op_topic_delete(rp_meta_t *m, const char *name, rp_meta_op_t **out)
{
    size_t idx;
    *out = NULL;
    if (!name || !find_index(&m->img, name, strlen(name), &idx))
        return SC_ERR_UNKNOWN_TOPIC_OR_PARTITION;
    return op_new(m, OP_DELETE, NULL, name, out);
}

int rp_meta_op_topic_set_partitions(rp_meta_t *m, const char *name, int32_t count,
                                    rp_meta_op_t **out)
{
    size_t idx;
    rp_meta_topic_t *t;
    *out = NULL;
    int rc = partitions_prepare(m, name, count, &idx, &t);
    return rc ? rc : op_new(m, OP_PARTITIONS, t, NULL, out);
}

int rp_meta_op_topic_set_configs(rp_meta_t *m, const char *name, const rp_meta_kv_t *kv,
                                 size_t n, rp_meta_op_t **out)
{
    size_t idx;
    rp_meta_topic_t *t;
    *out = NULL;
    int rc = configs_prepare(m, name, kv, n, &idx, &t);
    return rc ? rc : op_new(m, OP_CONFIGS, t, NULL, out);
}

int rp_meta_op_producer_ids(rp_meta_t *m, rp_meta_op_t **out)
{
    return op_new(m, OP_PIDS, NULL, NULL, out);
}

void rp_meta_op_run(rp_meta_op_t *op)
{
    switch (op->kind) {
    case OP_CREATE:
    case OP_PARTITIONS:
        op->rc = op->ops->put_topic(op->be, NULL, op->t);
        break;
    case OP_CONFIGS:
        op->rc = op->ops->set_topic_config(op->be, NULL, op->t);
        break;
    case OP_DELETE:
        op->rc = op->ops->delete_topic(op->be, NULL, op->name);
        break;
    default:
        op->rc = op->ops->alloc_remote(op->be, RP_META_PID_BLOCK, &op->first);
        break;
    }
}

void rp_meta_op_free(rp_meta_op_t *op)
{
    if (!op)
        return;
    rp__topic_free(op->t);
    sc_free(op->name);
    sc_free(op);
}

int rp_meta_op_finish(rp_meta_t *m, rp_meta_op_t *op)
{
    int rc = op->rc;
    if (op->kind != OP_PIDS)
        wrote(m);
    if (rc == 0 && op->kind == OP_PIDS) {
        if (m->img.next_producer_id < op->first + RP_META_PID_BLOCK)
            m->img.next_producer_id = op->first + RP_META_PID_BLOCK;
        m->pid_next = op->first;
        m->pid_end = op->first + RP_META_PID_BLOCK;
        SC_DEBUG(SUB, "reserved producer ids [%lld, %lld)", (long long)m->pid_next,
                 (long long)m->pid_end);
    } else if (rc == 0) {
        /* Applied to the image as it is now: a reload since prepare may
         * hold the change already, or have dropped the topic. */
        const char *name = op->t ? op->t->name : op->name;
        size_t idx;
        int found = find_index(&m->img, name, strlen(name), &idx);
        rp__image_t next;
        if (op->kind == OP_DELETE) {
            if (found && image_derive(&m->img, idx, NULL, &next) == 0)
                image_commit(m, &next, m->img.topics[idx]);
            else if (found)
                rc = SC_ERR_NO_MEMORY; /* written; the next reload shows it */
        } else if (op->kind == OP_CREATE || found) {
            size_t at = found ? idx : m->img.ntopics;
            if (image_derive(&m->img, at, op->t, &next) == 0) {
                image_commit(m, &next, found ? m->img.topics[idx] : NULL);
                op->t = NULL;
            } else
                rc = SC_ERR_NO_MEMORY;
        }
    }
    rp_meta_op_free(op);
    return rc;
}

int rp_meta_producer_id_cached(rp_meta_t *m, int64_t *pid)
{
    if (m->pid_next >= m->pid_end)
        return 0;
    *pid = m->pid_next++;
    return 1;
}

/* ---- accessors ------------------------------------------------------------- */

const char *rp_meta_cluster_id(const rp_meta_t *m) { return m->img.cluster_id; }

const char *rp_meta_backend_name(const rp_meta_t *m) { return m->ops->name; }

size_t rp_meta_topic_count(const rp_meta_t *m) { return m->img.ntopics; }

const rp_meta_topic_t *rp_meta_topic_at(const rp_meta_t *m, size_t i)
{
    return i < m->img.ntopics ? m->img.topics[i] : NULL;
}

const rp_meta_topic_t *rp_meta_topic_find(const rp_meta_t *m, const char *name, size_t len)
{
    size_t idx;
    return find_index(&m->img, name, len, &idx) ? m->img.topics[idx] : NULL;
}

const char *rp_meta_topic_config(const rp_meta_topic_t *t, const char *key)
{
    for (size_t i = 0; i < t->nconfigs; i++)
        if (strcmp(t->configs[i].key, key) == 0)
            return t->configs[i].value;
    return NULL;
}
