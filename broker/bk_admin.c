/*
 * bk_admin -- the admin request handlers: CreateTopics (19) v0-4,
 * DeleteTopics (20) v0-3, InitProducerId (22) v0-1, DescribeConfigs (32)
 * v0-2, AlterConfigs (33) v0-1, CreatePartitions (37) v0-1 -- all
 * non-flexible (reference.md §3, §4.15-4.24). Runs on shard 0, which owns
 * the topic registry (bk_topics.h); changes are durable in the metadata
 * store before the response is written.
 *
 * Decoding: every handler first reads the whole request once (views into the
 * frame, nothing copied) and returns the reader error if it is malformed --
 * the connection is closed and *nothing* has been changed. Only then does a
 * second pass act on each element and write the response. Per-element
 * problems are Kafka error codes in the response, with an ErrorMessage where
 * the version has one.
 *
 * Semantics follow Kafka 3.7 where they matter to clients:
 *   - a topic named twice in one CreateTopics / CreatePartitions request
 *     gets INVALID_REQUEST for every occurrence;
 *   - NumPartitions / ReplicationFactor -1 mean the broker default in every
 *     version (as Kafka's broker does; kafkajs sends rf -1 with v3);
 *   - manual assignments: one entry per partition, indexes 0..n-1, each
 *     listing exactly this node, else INVALID_REPLICA_ASSIGNMENT;
 *   - a replication factor above 1 is INVALID_REPLICATION_FACTOR (one node);
 *   - topic configs are checked against bk_topic_config's table: unknown key,
 *     bad value, null value or a key given twice is INVALID_CONFIG;
 *   - AlterConfigs replaces the topic's whole override set; broker configs
 *     are read-only (INVALID_REQUEST), as are unknown resource types;
 *   - DescribeConfigs reports every topic key with its effective value and
 *     source (topic override / static broker / default), IsDefault in v0,
 *     synonyms in v1+ when asked; the broker resource lists every
 *     server.properties key, read-only;
 *   - InitProducerId with a transactional id: TRANSACTIONAL_ID_AUTHORIZATION_FAILED
 *     (no transactions yet); otherwise a new producer id, epoch 0.
 */
#include "bk_int.h"
#include "bk_topic_config.h"

#include "sc_err.h"
#include "sc_log.h"
#include "sc_mem.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define SUB "admin"

/* Largest partition count we create (num.partitions' own maximum). */
#define MAX_PARTITIONS 1000000

enum { RES_TOPIC = 2, RES_BROKER = 4 };

static void msgf(char *msg, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void msgf(char *msg, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, len, fmt, ap);
    va_end(ap);
}

/* ---- duplicate names in one request ----------------------------------------- */

static int kstr_cmp(const void *a, const void *b)
{
    const sc_kstr_t *x = a, *y = b;
    int32_t m = x->len < y->len ? x->len : y->len;
    int c = m > 0 ? memcmp(x->p, y->p, (size_t)m) : 0;
    return c ? c : (x->len > y->len) - (x->len < y->len);
}

/* 1 when name occurs more than once in sorted[0..n). */
static int is_dup(const sc_kstr_t *sorted, int32_t n, sc_kstr_t name)
{
    const sc_kstr_t *hit = bsearch(&name, sorted, (size_t)n, sizeof *sorted, kstr_cmp);
    if (!hit)
        return 0;
    return (hit > sorted && kstr_cmp(hit - 1, &name) == 0) ||
           (hit + 1 < sorted + n && kstr_cmp(hit + 1, &name) == 0);
}

/* ---- config lists (CreateTopics configs, AlterConfigs configs) ---------------- */

static void kv_release(rp_meta_kv_t *kv, int32_t n)
{
    for (int32_t i = 0; kv && i < n; i++) {
        sc_free((char *)kv[i].key);
        sc_free((char *)kv[i].value);
    }
    sc_free(kv);
}

/* Reads n (name string, value nullable string) pairs from r, checks each
 * against the topic key table and copies them out. 0 with *out (kv_release
 * it; NULL when n == 0), SC_ERR_INVALID_CONFIG with msg, SC_ERR_NO_MEMORY. */
static int kv_collect(sc_rd_t r, int32_t n, rp_meta_kv_t **out, char *msg, size_t msglen)
{
    int rc = 0;
    rp_meta_kv_t *kv = n > 0 ? sc_calloc((size_t)n, sizeof *kv) : NULL;
    if (n > 0 && !kv)
        return SC_ERR_NO_MEMORY;
    for (int32_t i = 0; i < n; i++) {
        sc_kstr_t k, v;
        sc_kr_string(&r, 0, &k);
        sc_kr_string(&r, 1, &v);
        char *key = sc_malloc((size_t)k.len + 1);
        char *val = v.len >= 0 ? sc_malloc((size_t)v.len + 1) : NULL;
        kv[i].key = key;
        kv[i].value = val;
        if (!key || (v.len >= 0 && !val)) {
            rc = SC_ERR_NO_MEMORY;
            goto out;
        }
        memcpy(key, k.p, (size_t)k.len);
        key[k.len] = 0;
        if (!val) {
            msgf(msg, msglen, "Null value not supported for topic config: %s", key);
            rc = SC_ERR_INVALID_CONFIG;
            goto out;
        }
        memcpy(val, v.p, (size_t)v.len);
        val[v.len] = 0;
        if (strlen(key) != (size_t)k.len || strlen(val) != (size_t)v.len) {
            msgf(msg, msglen, "NUL byte in config %s", key);
            rc = SC_ERR_INVALID_CONFIG;
            goto out;
        }
        if ((rc = bk_topic_config_check(key, val, msg, msglen)) != 0)
            goto out;
        for (int32_t j = 0; j < i; j++) {
            if (strcmp(kv[j].key, key) == 0) {
                msgf(msg, msglen, "Config %s is given more than once", key);
                rc = SC_ERR_INVALID_CONFIG;
                goto out;
            }
        }
    }
    *out = kv;
    kv = NULL;
out:
    kv_release(kv, n);
    return rc;
}

/* Reads count broker-id lists ([]int32 each) and checks that each is exactly
 * [node]. 0 or SC_ERR_INVALID_REPLICA_ASSIGNMENT (msg). with_index: each
 * entry starts with a partition index, which must cover 0..count-1 once. */
static int check_assignments(sc_rd_t r, int32_t count, int with_index, int32_t node, char *msg,
                             size_t msglen)
{
    uint8_t *seen = with_index && count > 0 ? sc_calloc((size_t)count, 1) : NULL;
    int rc = 0;
    if (with_index && count > 0 && !seen)
        return SC_ERR_NO_MEMORY;
    for (int32_t i = 0; i < count; i++) {
        int32_t idx = with_index ? sc_kr_i32(&r) : i, nb;
        sc_kr_array_len(&r, 0, 4, &nb);
        int ok = nb == 1 && sc_kr_i32(&r) == node;
        for (int32_t j = ok ? 1 : 0; j < nb; j++)
            sc_kr_i32(&r);
        if (!ok) {
            msgf(msg, msglen, "Partition %d must be assigned to exactly broker %d (one node)",
                 idx, node);
            rc = SC_ERR_INVALID_REPLICA_ASSIGNMENT;
            break;
        }
        if (with_index) {
            if (idx < 0 || idx >= count || seen[idx]) {
                msgf(msg, msglen, "Partition indexes must be 0..%d, each once; got %d", count - 1,
                     idx);
                rc = SC_ERR_INVALID_REPLICA_ASSIGNMENT;
                break;
            }
            seen[idx] = 1;
        }
    }
    sc_free(seen);
    return rc;
}

/* ---- CreateTopics ------------------------------------------------------------ */

typedef struct {
    sc_kstr_t name;
    int32_t partitions;
    int16_t rf;
    int32_t nassign;
    sc_rd_t assign; /* at the first assignment */
    int32_t nconfigs;
    sc_rd_t configs; /* at the first config */
} creatable_t;

static int read_creatable(sc_rd_t *r, creatable_t *t)
{
    sc_kr_string(r, 0, &t->name);
    t->partitions = sc_kr_i32(r);
    t->rf = sc_kr_i16(r);
    sc_kr_array_len(r, 0, 8, &t->nassign);
    t->assign = *r;
    for (int32_t i = 0; i < t->nassign && !r->err; i++) {
        int32_t nb;
        sc_kr_i32(r);
        sc_kr_array_len(r, 0, 4, &nb);
        for (int32_t j = 0; j < nb && !r->err; j++)
            sc_kr_i32(r);
    }
    sc_kr_array_len(r, 0, 4, &t->nconfigs);
    t->configs = *r;
    for (int32_t i = 0; i < t->nconfigs && !r->err; i++) {
        sc_kstr_t k, v;
        sc_kr_string(r, 0, &k);
        sc_kr_string(r, 1, &v);
    }
    return r->err;
}

static int create_one(bk_req_t *req, const creatable_t *t, int validate_only, int dup, char *msg,
                      size_t msglen)
{
    const bk_config_t *cfg = req->srv->cfg;
    int32_t parts = t->partitions;
    int32_t rf = t->rf;
    rp_meta_kv_t *kv = NULL;
    int rc = 0;

    if (dup) {
        msgf(msg, msglen, "Topic '%.*s' is listed more than once in the request",
             (int)t->name.len, t->name.p);
        return SC_ERR_INVALID_REQUEST;
    }
    if (!bk_topic_name_valid(t->name.p, (size_t)t->name.len)) {
        msgf(msg, msglen,
             "Topic name '%.*s' is illegal: 1 to 249 characters of ASCII alphanumerics, '.', "
             "'_' and '-', and not '.' or '..'",
             (int)(t->name.len > 300 ? 300 : t->name.len), t->name.p);
        return SC_ERR_INVALID_TOPIC_EXCEPTION;
    }
    if (bk_topics_lookup(req->srv->topics, t->name.p, (size_t)t->name.len)) {
        msgf(msg, msglen, "Topic '%.*s' already exists.", (int)t->name.len, t->name.p);
        return SC_ERR_TOPIC_ALREADY_EXISTS;
    }
    if (t->nassign > 0) {
        if (parts != -1 || rf != -1) {
            msgf(msg, msglen, "Both numPartitions or replicationFactor and replicasAssignments "
                              "were set. Both cannot be used at the same time.");
            return SC_ERR_INVALID_REQUEST;
        }
        if ((rc = check_assignments(t->assign, t->nassign, 1, cfg->node_id, msg, msglen)) != 0)
            return rc;
        parts = t->nassign;
        rf = 1;
    } else {
        /* -1 = broker default in every version: the v4 rule is enforced by
         * the Java client's request builder, not by Kafka's broker, and
         * kafkajs relies on that (CreateTopics v3, replicationFactor -1 by
         * default). */
        if (parts == -1)
            parts = cfg->num_partitions;
        if (rf == -1)
            rf = cfg->default_replication_factor;
    }
    if (parts < 1 || parts > MAX_PARTITIONS) {
        msgf(msg, msglen, "Number of partitions must be between 1 and %d; got %d.",
             MAX_PARTITIONS, parts);
        return SC_ERR_INVALID_PARTITIONS;
    }
    if (rf < 1) {
        msgf(msg, msglen, "Replication factor must be larger than 0; got %d.", rf);
        return SC_ERR_INVALID_REPLICATION_FACTOR;
    }
    if (rf > 1 && !req->srv->cluster) { /* cluster mode: the store checks the live brokers */
        msgf(msg, msglen, "Replication factor: %d larger than available brokers: 1.", rf);
        return SC_ERR_INVALID_REPLICATION_FACTOR;
    }
    if ((rc = kv_collect(t->configs, t->nconfigs, &kv, msg, msglen)) != 0)
        return rc;
    if (!validate_only) {
        rc = bk_topics_create_ex(req->srv->topics, t->name.p, (size_t)t->name.len, parts,
                                 (int16_t)rf, kv, (size_t)t->nconfigs);
        if (rc)
            msgf(msg, msglen, "Creating the topic failed: %s", sc_err_str(rc));
    }
    kv_release(kv, t->nconfigs);
    return rc;
}

int bk__h_create_topics(bk_req_t *req, sc_kw_t *w)
{
    int v = req->hdr.api_version;
    sc_rd_t *r = &req->body;
    int32_t n;
    creatable_t t;
    sc_kr_array_len(r, 0, 16, &n);
    sc_rd_t first = *r;
    sc_kstr_t *names = n > 0 ? sc_malloc((size_t)n * sizeof *names) : NULL;
    if (n > 0 && !names)
        return SC_ERR_NO_MEMORY;
    for (int32_t i = 0; i < n && !r->err; i++) {
        read_creatable(r, &t);
        names[i] = t.name;
    }
    sc_kr_i32(r); /* timeout_ms: creation is synchronous */
    int validate_only = v >= 1 ? sc_kr_bool(r) : 0;
    if (r->err) {
        sc_free(names);
        return r->err;
    }
    if (n > 0)
        qsort(names, (size_t)n, sizeof *names, kstr_cmp);

    if (v >= 2)
        sc_kw_i32(w, 0); /* throttle_time_ms */
    sc_kw_array_len(w, n);
    for (int32_t i = 0; i < n; i++) {
        char msg[512] = "";
        read_creatable(&first, &t);
        int rc = create_one(req, &t, validate_only, is_dup(names, n, t.name), msg, sizeof msg);
        if (rc)
            SC_INFO(SUB, "CreateTopics %.*s: %s: %s", (int)t.name.len, t.name.p, sc_err_name(rc),
                    msg);
        sc_kw_string(w, t.name.p, (size_t)t.name.len);
        sc_kw_i16(w, sc_err_to_kafka(rc));
        if (v >= 1)
            sc_kw_cstr(w, 0, rc ? msg : NULL);
    }
    sc_free(names);
    return 0;
}

/* ---- DeleteTopics ------------------------------------------------------------ */

int bk__h_delete_topics(bk_req_t *req, sc_kw_t *w)
{
    int v = req->hdr.api_version;
    sc_rd_t *r = &req->body;
    int32_t n;
    sc_kstr_t s;
    sc_kr_array_len(r, 0, 2, &n);
    sc_rd_t first = *r;
    for (int32_t i = 0; i < n && !r->err; i++)
        sc_kr_string(r, 0, &s);
    sc_kr_i32(r); /* timeout_ms */
    if (r->err)
        return r->err;

    if (v >= 1)
        sc_kw_i32(w, 0);
    sc_kw_array_len(w, n);
    for (int32_t i = 0; i < n; i++) {
        sc_kr_string(&first, 0, &s);
        int rc;
        if (bk__topic_is_internal(s.p, (size_t)s.len)) {
            /* The coordinator's committed offsets live there. v0-3 carry no
             * message, so the log says why. */
            SC_INFO(SUB, "DeleteTopics %.*s refused: internal topic", (int)s.len, s.p);
            rc = SC_ERR_INVALID_TOPIC_EXCEPTION;
        } else {
            rc = bk_topics_delete(req->srv->topics, s.p, (size_t)s.len);
        }
        if (rc && rc != SC_ERR_UNKNOWN_TOPIC_OR_PARTITION && rc != SC_ERR_INVALID_TOPIC_EXCEPTION)
            SC_WARN(SUB, "DeleteTopics %.*s: %s", (int)s.len, s.p, sc_err_str(rc));
        sc_kw_string(w, s.p, (size_t)s.len);
        sc_kw_i16(w, sc_err_to_kafka(rc));
    }
    return 0;
}

/* ---- CreatePartitions -------------------------------------------------------- */

typedef struct {
    sc_kstr_t name;
    int32_t count;
    int32_t nassign; /* -1 = null */
    sc_rd_t assign;
} partitions_req_t;

static int read_partitions_req(sc_rd_t *r, partitions_req_t *t)
{
    sc_kr_string(r, 0, &t->name);
    t->count = sc_kr_i32(r);
    sc_kr_array_len(r, 1, 4, &t->nassign);
    t->assign = *r;
    for (int32_t i = 0; i < t->nassign && !r->err; i++) {
        int32_t nb;
        sc_kr_array_len(r, 0, 4, &nb);
        for (int32_t j = 0; j < nb && !r->err; j++)
            sc_kr_i32(r);
    }
    return r->err;
}

static int create_partitions_one(bk_req_t *req, const partitions_req_t *t, int validate_only,
                                 int dup, char *msg, size_t msglen)
{
    int32_t cur;
    if (dup) {
        msgf(msg, msglen, "Duplicate topic in request.");
        return SC_ERR_INVALID_REQUEST;
    }
    if (bk_topics_find(req->srv->topics, t->name.p, (size_t)t->name.len, &cur) != 0) {
        msgf(msg, msglen, "The topic '%.*s' does not exist.",
             (int)(t->name.len > 300 ? 300 : t->name.len), t->name.p);
        return SC_ERR_UNKNOWN_TOPIC_OR_PARTITION;
    }
    if (bk__topic_is_internal(t->name.p, (size_t)t->name.len)) {
        /* Each group's records go to hash(group) % partitions: a new count
         * would send commits where the coordinator no longer looks. */
        msgf(msg, msglen, "Topic '%.*s' is internal; its partition count cannot change.",
             (int)t->name.len, t->name.p);
        return SC_ERR_INVALID_TOPIC_EXCEPTION;
    }
    if (t->count == cur) {
        msgf(msg, msglen, "Topic already has %d partitions.", cur);
        return SC_ERR_INVALID_PARTITIONS;
    }
    if (t->count < cur) {
        msgf(msg, msglen, "Topic currently has %d partitions, which is higher than the "
                          "requested %d.", cur, t->count);
        return SC_ERR_INVALID_PARTITIONS;
    }
    if (t->count > MAX_PARTITIONS) {
        msgf(msg, msglen, "Number of partitions must be at most %d; got %d.", MAX_PARTITIONS,
             t->count);
        return SC_ERR_INVALID_PARTITIONS;
    }
    if (t->nassign >= 0) {
        if (t->nassign != t->count - cur) {
            msgf(msg, msglen, "Increasing the number of partitions by %d but %d assignments "
                              "provided.", t->count - cur, t->nassign);
            return SC_ERR_INVALID_REPLICA_ASSIGNMENT;
        }
        int rc = check_assignments(t->assign, t->nassign, 0, req->srv->cfg->node_id, msg, msglen);
        if (rc)
            return rc;
    }
    if (validate_only)
        return 0;
    int rc = bk_topics_add_partitions(req->srv->topics, t->name.p, (size_t)t->name.len, t->count);
    if (rc)
        msgf(msg, msglen, "Adding partitions failed: %s", sc_err_str(rc));
    return rc;
}

int bk__h_create_partitions(bk_req_t *req, sc_kw_t *w)
{
    sc_rd_t *r = &req->body;
    int32_t n;
    partitions_req_t t;
    sc_kr_array_len(r, 0, 10, &n);
    sc_rd_t first = *r;
    sc_kstr_t *names = n > 0 ? sc_malloc((size_t)n * sizeof *names) : NULL;
    if (n > 0 && !names)
        return SC_ERR_NO_MEMORY;
    for (int32_t i = 0; i < n && !r->err; i++) {
        read_partitions_req(r, &t);
        names[i] = t.name;
    }
    sc_kr_i32(r); /* timeout_ms */
    int validate_only = sc_kr_bool(r);
    if (r->err) {
        sc_free(names);
        return r->err;
    }
    if (n > 0)
        qsort(names, (size_t)n, sizeof *names, kstr_cmp);

    sc_kw_i32(w, 0); /* throttle_time_ms */
    sc_kw_array_len(w, n);
    for (int32_t i = 0; i < n; i++) {
        char msg[512] = "";
        read_partitions_req(&first, &t);
        int rc = create_partitions_one(req, &t, validate_only, is_dup(names, n, t.name), msg,
                                       sizeof msg);
        if (rc)
            SC_INFO(SUB, "CreatePartitions %.*s: %s: %s", (int)t.name.len, t.name.p,
                    sc_err_name(rc), msg);
        sc_kw_string(w, t.name.p, (size_t)t.name.len);
        sc_kw_i16(w, sc_err_to_kafka(rc));
        sc_kw_cstr(w, 0, rc ? msg : NULL);
    }
    sc_free(names);
    return 0;
}

/* ---- DescribeConfigs ---------------------------------------------------------- */

/* 1 when keys (a reader over nkeys strings; nkeys -1 = all) names key. */
static int key_wanted(sc_rd_t keys, int32_t nkeys, const char *key)
{
    if (nkeys < 0)
        return 1;
    size_t kl = strlen(key);
    for (int32_t i = 0; i < nkeys; i++) {
        sc_kstr_t s;
        sc_kr_string(&keys, 0, &s);
        if ((size_t)s.len == kl && memcmp(s.p, key, kl) == 0)
            return 1;
    }
    return 0;
}

typedef struct {
    const char *name, *value;
    int source;
} synonym_t;

static void write_config(sc_kw_t *w, int v, const char *name, const char *value, int read_only,
                         int source, const synonym_t *syn, int nsyn)
{
    sc_kw_cstr(w, 0, name);
    sc_kw_cstr(w, 0, value);
    sc_kw_bool(w, read_only);
    if (v == 0)
        sc_kw_bool(w, source == BK_CFG_SOURCE_DEFAULT || source == BK_CFG_SOURCE_STATIC_BROKER);
    else
        sc_kw_i8(w, (int8_t)source);
    sc_kw_bool(w, 0); /* is_sensitive: nothing secret among these */
    if (v >= 1) {
        sc_kw_array_len(w, nsyn);
        for (int i = 0; i < nsyn; i++) {
            sc_kw_cstr(w, 0, syn[i].name);
            sc_kw_cstr(w, 0, syn[i].value);
            sc_kw_i8(w, (int8_t)syn[i].source);
        }
    }
}

static const char *broker_key_default(const char *key)
{
    size_t n;
    const bk_cfg_key_t *k = bk_config_keys(&n);
    for (size_t i = 0; i < n; i++)
        if (strcmp(k[i].name, key) == 0)
            return k[i].def;
    return NULL;
}

/* Writes the configs array of a topic resource. */
static void describe_topic(bk_req_t *req, sc_kw_t *w, const rp_meta_topic_t *t, sc_rd_t keys,
                           int32_t nkeys, int synonyms)
{
    int v = req->hdr.api_version;
    size_t nk;
    const bk_topic_key_t *tk = bk_topic_config_keys(&nk);
    int32_t count = 0;
    for (size_t i = 0; i < nk; i++)
        count += key_wanted(keys, nkeys, tk[i].name);
    sc_kw_array_len(w, count);
    for (size_t i = 0; i < nk; i++) {
        if (!key_wanted(keys, nkeys, tk[i].name))
            continue;
        char def[256];
        int bsource = bk_topic_config_default(req->srv->cfg, &tk[i], def, sizeof def);
        const char *override = rp_meta_topic_config(t, tk[i].name);
        synonym_t syn[3];
        int nsyn = 0;
        if (override)
            syn[nsyn++] = (synonym_t){tk[i].name, override, BK_CFG_SOURCE_TOPIC};
        if (bsource == BK_CFG_SOURCE_STATIC_BROKER)
            syn[nsyn++] = (synonym_t){tk[i].broker_key, def, BK_CFG_SOURCE_STATIC_BROKER};
        syn[nsyn++] = (synonym_t){tk[i].broker_key, broker_key_default(tk[i].broker_key),
                                  BK_CFG_SOURCE_DEFAULT};
        write_config(w, v, tk[i].name, override ? override : def, 0,
                     override ? BK_CFG_SOURCE_TOPIC : bsource, syn, synonyms ? nsyn : 0);
    }
}

static void describe_broker(bk_req_t *req, sc_kw_t *w, sc_rd_t keys, int32_t nkeys, int synonyms)
{
    int v = req->hdr.api_version;
    const bk_config_t *cfg = req->srv->cfg;
    size_t nk;
    const bk_cfg_key_t *k = bk_config_keys(&nk);
    int32_t count = 0;
    for (size_t i = 0; i < nk; i++)
        count += !k[i].alias_of && key_wanted(keys, nkeys, k[i].name);
    sc_kw_array_len(w, count);
    for (size_t i = 0; i < nk; i++) {
        if (k[i].alias_of || !key_wanted(keys, nkeys, k[i].name))
            continue;
        char val[1024];
        bk_config_value_str(cfg, k[i].name, val, sizeof val);
        int source = bk_config_is_set(cfg, k[i].name) ? BK_CFG_SOURCE_STATIC_BROKER
                                                      : BK_CFG_SOURCE_DEFAULT;
        synonym_t syn = {k[i].name, val, source};
        write_config(w, v, k[i].name, val, 1, source, &syn, synonyms ? 1 : 0);
    }
}

static int read_describe_resource(sc_rd_t *r, int8_t *type, sc_kstr_t *name, sc_rd_t *keys,
                                  int32_t *nkeys)
{
    *type = sc_kr_i8(r);
    sc_kr_string(r, 0, name);
    sc_kr_array_len(r, 1, 2, nkeys);
    *keys = *r;
    for (int32_t i = 0; i < *nkeys && !r->err; i++) {
        sc_kstr_t s;
        sc_kr_string(r, 0, &s);
    }
    return r->err;
}

int bk__h_describe_configs(bk_req_t *req, sc_kw_t *w)
{
    int v = req->hdr.api_version;
    sc_rd_t *r = &req->body;
    int32_t n, nkeys;
    int8_t type;
    sc_kstr_t name;
    sc_rd_t keys;
    sc_kr_array_len(r, 0, 7, &n);
    sc_rd_t first = *r;
    for (int32_t i = 0; i < n && !r->err; i++)
        read_describe_resource(r, &type, &name, &keys, &nkeys);
    int synonyms = v >= 1 ? sc_kr_bool(r) : 0;
    if (r->err)
        return r->err;

    char node[16];
    snprintf(node, sizeof node, "%d", req->srv->cfg->node_id);
    sc_kw_i32(w, 0); /* throttle_time_ms */
    sc_kw_array_len(w, n);
    for (int32_t i = 0; i < n; i++) {
        read_describe_resource(&first, &type, &name, &keys, &nkeys);
        char msg[512] = "";
        int rc = 0;
        const rp_meta_topic_t *t = NULL;
        if (type == RES_TOPIC) {
            if (!bk_topic_name_valid(name.p, (size_t)name.len)) {
                rc = SC_ERR_INVALID_TOPIC_EXCEPTION;
                msgf(msg, sizeof msg, "Topic name is illegal");
            } else if (!(t = bk_topics_lookup(req->srv->topics, name.p, (size_t)name.len))) {
                rc = SC_ERR_UNKNOWN_TOPIC_OR_PARTITION;
                msgf(msg, sizeof msg, "Topic '%.*s' does not exist", (int)name.len, name.p);
            }
        } else if (type == RES_BROKER) {
            if (name.len != (int32_t)strlen(node) || memcmp(name.p, node, (size_t)name.len) != 0) {
                rc = SC_ERR_INVALID_REQUEST;
                msgf(msg, sizeof msg, "Unexpected broker id, expected %s, but received %.*s",
                     node, (int)(name.len > 64 ? 64 : name.len), name.p);
            }
        } else {
            rc = SC_ERR_INVALID_REQUEST;
            msgf(msg, sizeof msg, "Unsupported resource type %d", type);
        }
        sc_kw_i16(w, sc_err_to_kafka(rc));
        sc_kw_cstr(w, 0, rc ? msg : NULL);
        sc_kw_i8(w, type);
        sc_kw_string(w, name.p, (size_t)name.len);
        if (rc)
            sc_kw_array_len(w, 0);
        else if (type == RES_TOPIC)
            describe_topic(req, w, t, keys, nkeys, synonyms);
        else
            describe_broker(req, w, keys, nkeys, synonyms);
    }
    return 0;
}

/* ---- AlterConfigs ------------------------------------------------------------ */

static int read_alter_resource(sc_rd_t *r, int8_t *type, sc_kstr_t *name, sc_rd_t *configs,
                               int32_t *nconfigs)
{
    *type = sc_kr_i8(r);
    sc_kr_string(r, 0, name);
    sc_kr_array_len(r, 0, 4, nconfigs);
    *configs = *r;
    for (int32_t i = 0; i < *nconfigs && !r->err; i++) {
        sc_kstr_t k, v;
        sc_kr_string(r, 0, &k);
        sc_kr_string(r, 1, &v);
    }
    return r->err;
}

/* 1 when the override set (kv, n) sets cleanup.policy to exactly "compact". */
static int keeps_compact(const rp_meta_kv_t *kv, int32_t n)
{
    for (int32_t i = 0; i < n; i++)
        if (strcmp(kv[i].key, "cleanup.policy") == 0)
            return strcmp(kv[i].value, "compact") == 0;
    return 0;
}

static int alter_one(bk_req_t *req, int8_t type, sc_kstr_t name, sc_rd_t configs,
                     int32_t nconfigs, int validate_only, char *msg, size_t msglen)
{
    if (type == RES_BROKER) {
        msgf(msg, msglen, "Broker configs are read-only at runtime; set them in "
                          "server.properties or with --override");
        return SC_ERR_INVALID_REQUEST;
    }
    if (type != RES_TOPIC) {
        msgf(msg, msglen, "Unsupported resource type %d", type);
        return SC_ERR_INVALID_REQUEST;
    }
    if (!bk_topic_name_valid(name.p, (size_t)name.len)) {
        msgf(msg, msglen, "Topic name is illegal");
        return SC_ERR_INVALID_TOPIC_EXCEPTION;
    }
    if (!bk_topics_lookup(req->srv->topics, name.p, (size_t)name.len)) {
        msgf(msg, msglen, "Topic '%.*s' does not exist", (int)name.len, name.p);
        return SC_ERR_UNKNOWN_TOPIC_OR_PARTITION;
    }
    rp_meta_kv_t *kv = NULL;
    int rc = kv_collect(configs, nconfigs, &kv, msg, msglen);
    if (rc)
        return rc;
    if (bk__topic_is_internal(name.p, (size_t)name.len) && !keeps_compact(kv, nconfigs)) {
        /* The set replaces every override, so leaving cleanup.policy out
         * would also drop the topic to the broker's default policy. */
        msgf(msg, msglen, "cleanup.policy of internal topic '%.*s' must stay 'compact'",
             (int)name.len, name.p);
        kv_release(kv, nconfigs);
        return SC_ERR_INVALID_CONFIG;
    }
    if (!validate_only) {
        rc = bk_topics_set_configs(req->srv->topics, name.p, (size_t)name.len, kv,
                                   (size_t)nconfigs);
        if (rc)
            msgf(msg, msglen, "Storing the configs failed: %s", sc_err_str(rc));
        else
            bk__topic_reconfigure(req->srv, name.p, (size_t)name.len); /* the logs follow */
    }
    kv_release(kv, nconfigs);
    return rc;
}

int bk__h_alter_configs(bk_req_t *req, sc_kw_t *w)
{
    sc_rd_t *r = &req->body;
    int32_t n, nconfigs;
    int8_t type;
    sc_kstr_t name;
    sc_rd_t configs;
    sc_kr_array_len(r, 0, 7, &n);
    sc_rd_t first = *r;
    for (int32_t i = 0; i < n && !r->err; i++)
        read_alter_resource(r, &type, &name, &configs, &nconfigs);
    int validate_only = sc_kr_bool(r);
    if (r->err)
        return r->err;

    sc_kw_i32(w, 0); /* throttle_time_ms */
    sc_kw_array_len(w, n);
    for (int32_t i = 0; i < n; i++) {
        char msg[512] = "";
        read_alter_resource(&first, &type, &name, &configs, &nconfigs);
        int rc = alter_one(req, type, name, configs, nconfigs, validate_only, msg, sizeof msg);
        if (rc)
            SC_INFO(SUB, "AlterConfigs %d/%.*s: %s: %s", type, (int)name.len, name.p,
                    sc_err_name(rc), msg);
        sc_kw_i16(w, sc_err_to_kafka(rc));
        sc_kw_cstr(w, 0, rc ? msg : NULL);
        sc_kw_i8(w, type);
        sc_kw_string(w, name.p, (size_t)name.len);
    }
    return 0;
}

/* ---- InitProducerId ------------------------------------------------------------ */

int bk__h_init_producer_id(bk_req_t *req, sc_kw_t *w)
{
    sc_rd_t *r = &req->body;
    sc_kstr_t tid;
    sc_kr_string(r, 1, &tid);
    sc_kr_i32(r); /* transaction_timeout_ms */
    if (r->err)
        return r->err;
    int64_t pid = -1;
    int16_t epoch = -1;
    int rc;
    if (tid.len >= 0) {
        /* No transaction coordinator yet (reference.md §8: 53 for
         * transactional use when unsupported). */
        rc = SC_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
    } else if ((rc = bk_topics_producer_id_next(req->srv->topics, &pid)) != 0) {
        SC_ERROR(SUB, "InitProducerId: reserving producer ids: %s", sc_err_str(rc));
        rc = SC_ERR_COORDINATOR_NOT_AVAILABLE; /* retriable for the client */
        pid = -1;
    } else {
        epoch = 0;
    }
    sc_kw_i32(w, 0); /* throttle_time_ms */
    sc_kw_i16(w, sc_err_to_kafka(rc));
    sc_kw_i64(w, pid);
    sc_kw_i16(w, epoch);
    return 0;
}
