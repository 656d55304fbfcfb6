/*
 * bk_admin -- the admin request handlers: CreateTopics (19) v0-4,
 * DeleteTopics (20) v0-3, InitProducerId (22) v0-1, DescribeConfigs (32)
 * v0-2, AlterConfigs (33) v0-1, CreatePartitions (37) v0-1 -- all
 * non-flexible (reference.md §3, §4.15-4.24). Runs on shard 0, which owns
 * the topic registry (bk_topics.h); changes are durable in the metadata
 * store before the response is written. In cluster mode the store's writes
 * wait for ZooKeeper on the store's worker (bk_topics_async): the request
 * is parked and answered once every write it queued is back (see "answers
 * after the store's writes" below); single node, they are made in place.
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

/* ---- answers after the store's writes (cluster mode) ----------------------------
 * Every handler below that changes the store decides each element first
 * (rc[i], msg[i]) and then writes the whole response from a copy of the
 * request body (write_*). With asynchronous store writes (cluster mode,
 * bk_topics_async) an element whose write was queued is ADM_PENDING until
 * its job answers (elem_done, on shard 0); the request is parked
 * (req->async, the slot's op) and answered when the last one did. A slot
 * whose connection closed first is detached: the jobs still finish (the
 * store changes), nothing is sent. */

#define ADM_PENDING (-999999)
#define ADM_MSG 512

typedef struct adm_pend adm_pend_t;
typedef struct {
    adm_pend_t *p;
    int32_t i;
    char name[BK_TOPIC_NAME_MAX + 1]; /* AlterConfigs: reconfigured on success */
} adm_elem_t;

struct adm_pend {
    bk_slot_t *slot; /* NULL once detached (or without a connection) */
    bk_server_t *srv;
    int16_t api, v;
    int async;       /* store writes are queued (bk_topics_async) */
    uint8_t *body;   /* copy of the request body (after the header) */
    size_t blen;
    int32_t n;
    int *rc;
    char (*msg)[ADM_MSG];
    adm_elem_t *el;
    int waiting;     /* queued writes not answered yet */
    int64_t pid;     /* InitProducerId */
};

static void pend_free(adm_pend_t *p)
{
    if (!p)
        return;
    sc_free(p->body);
    sc_free(p->rc);
    sc_free(p->msg);
    sc_free(p->el);
    sc_free(p);
}

/* start: the request body from its beginning (copied). */
static adm_pend_t *pend_new(bk_req_t *req, const sc_rd_t *start, int32_t n)
{
    adm_pend_t *p = sc_calloc(1, sizeof *p);
    size_t k = n > 0 ? (size_t)n : 1;
    if (!p)
        return NULL;
    p->slot = req->slot;
    p->srv = req->srv;
    p->api = req->hdr.api_key;
    p->v = req->hdr.api_version;
    p->async = req->slot && req->conn && req->srv->topics && bk_topics_async(req->srv->topics);
    p->n = n;
    p->pid = -1;
    p->blen = (size_t)(start->end - start->p);
    p->body = sc_malloc(p->blen ? p->blen : 1);
    p->rc = sc_calloc(k, sizeof *p->rc);
    p->msg = sc_calloc(k, sizeof *p->msg);
    p->el = sc_calloc(k, sizeof *p->el);
    if (!p->body || !p->rc || !p->msg || !p->el) {
        pend_free(p);
        return NULL;
    }
    if (p->blen)
        memcpy(p->body, start->p, p->blen);
    for (int32_t i = 0; i < n; i++) {
        p->el[i].p = p;
        p->el[i].i = i;
    }
    return p;
}

static void write_response(adm_pend_t *p, sc_kw_t *w);

static void pend_detach(bk_slot_t *s)
{
    adm_pend_t *p = s->op;
    p->slot = NULL;
}

/* The last queued write answered: the response goes into the parked slot. */
static void pend_answer(adm_pend_t *p)
{
    bk_slot_t *s = p->slot;
    if (s) {
        sc_kw_t w;
        sc_kw_init(&w, &s->buf); /* after the size placeholder and the header */
        write_response(p, &w);
        s->op = NULL;
        s->detach = NULL;
        if (w.err) {
            SC_WARN(SUB, "out of memory building an admin response; closing the connection");
            bk__conn_close(s->conn);
        } else {
            sc_kw_patch_i32(&w, 0, (int32_t)(s->buf.len - 4));
            bk__slot_complete(s);
        }
    }
    pend_free(p);
}

/* The handler's end: answers now, or parks the request until the queued
 * writes answered. */
static int pend_end(bk_req_t *req, adm_pend_t *p, sc_kw_t *w)
{
    if (p->waiting == 0) {
        write_response(p, w);
        pend_free(p);
        return 0;
    }
    req->async = 1;
    req->slot->op = p;
    req->slot->detach = pend_detach;
    return 0;
}

/* A queued write of element e answered (shard 0). */
static void elem_done(void *arg, int rc, int64_t pid)
{
    adm_elem_t *e = arg;
    adm_pend_t *p = e->p;
    p->rc[e->i] = rc;
    p->pid = pid;
    if (rc) {
        const char *what = p->api == 19   ? "Creating the topic failed"
                           : p->api == 37 ? "Adding partitions failed"
                           : p->api == 33 ? "Storing the configs failed"
                                          : "Failed";
        msgf(p->msg[e->i], ADM_MSG, "%s: %s", what, sc_err_str(rc));
    } else if (p->api == 33) {
        bk__topic_reconfigure(p->srv, e->name, strlen(e->name)); /* the logs follow */
    }
    if (--p->waiting == 0)
        pend_answer(p);
}

/* Queues element i's write when the store's writes are asynchronous: 1 and
 * *rc (ADM_PENDING, or the submit's error with msg); 0 = do it now. */
static int pend_queue(adm_pend_t *p, int32_t i, int sub, char *msg, size_t msglen, int *rc)
{
    if (!p || !p->async)
        return 0;
    if (sub) {
        *rc = sub;
        msgf(msg, msglen, "Queueing the change failed: %s", sc_err_str(sub));
        return 1;
    }
    (void)i;
    p->waiting++;
    *rc = ADM_PENDING;
    return 1;
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

static int create_one(bk_req_t *req, adm_pend_t *p, int32_t i, const creatable_t *t,
                      int validate_only, int dup, char *msg, size_t msglen)
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
    if (!validate_only && p && p->async) {
        int sub = bk_topics_create_async(req->srv->topics, t->name.p, (size_t)t->name.len, parts,
                                         (int16_t)rf, kv, (size_t)t->nconfigs, elem_done,
                                         &p->el[i]);
        (void)pend_queue(p, i, sub, msg, msglen, &rc);
    } else if (!validate_only) {
        rc = bk_topics_create_ex(req->srv->topics, t->name.p, (size_t)t->name.len, parts,
                                 (int16_t)rf, kv, (size_t)t->nconfigs);
        if (rc)
            msgf(msg, msglen, "Creating the topic failed: %s", sc_err_str(rc));
    }
    kv_release(kv, t->nconfigs);
    return rc;
}

static void write_create_topics(adm_pend_t *p, sc_kw_t *w)
{
    sc_rd_t r;
    int32_t n;
    creatable_t t;
    sc_rd_init(&r, p->body, p->blen);
    sc_kr_array_len(&r, 0, 16, &n);
    if (p->v >= 2)
        sc_kw_i32(w, 0); /* throttle_time_ms */
    sc_kw_array_len(w, n);
    for (int32_t i = 0; i < n; i++) {
        read_creatable(&r, &t);
        int rc = p->rc[i];
        if (rc)
            SC_INFO(SUB, "CreateTopics %.*s: %s: %s", (int)t.name.len, t.name.p, sc_err_name(rc),
                    p->msg[i]);
        sc_kw_string(w, t.name.p, (size_t)t.name.len);
        sc_kw_i16(w, sc_err_to_kafka(rc));
        if (p->v >= 1)
            sc_kw_cstr(w, 0, rc ? p->msg[i] : NULL);
    }
}

int bk__h_create_topics(bk_req_t *req, sc_kw_t *w)
{
    int v = req->hdr.api_version;
    sc_rd_t *r = &req->body;
    int32_t n;
    creatable_t t;
    adm_pend_t *p;
    sc_rd_t start = *r;
    sc_kr_array_len(r, 0, 16, &n);
    sc_rd_t first = *r;
    sc_kstr_t *names = n > 0 ? sc_malloc((size_t)n * sizeof *names) : NULL;
    if (n > 0 && !names)
        return SC_ERR_NO_MEMORY;
    for (int32_t i = 0; i < n && !r->err; i++) {
        read_creatable(r, &t);
        names[i] = t.name;
    }
    sc_kr_i32(r); /* timeout_ms: answered once the store has the topics */
    int validate_only = v >= 1 ? sc_kr_bool(r) : 0;
    if (r->err) {
        sc_free(names);
        return r->err;
    }
    if (!(p = pend_new(req, &start, n))) {
        sc_free(names);
        return SC_ERR_NO_MEMORY;
    }
    if (n > 0)
        qsort(names, (size_t)n, sizeof *names, kstr_cmp);

    for (int32_t i = 0; i < n; i++) {
        read_creatable(&first, &t);
        p->rc[i] = create_one(req, p, i, &t, validate_only, is_dup(names, n, t.name), p->msg[i],
                              ADM_MSG);
    }
    sc_free(names);
    return pend_end(req, p, w);
}

/* ---- DeleteTopics ------------------------------------------------------------ */

static void write_delete_topics(adm_pend_t *p, sc_kw_t *w)
{
    sc_rd_t r;
    int32_t n;
    sc_kstr_t name;
    sc_rd_init(&r, p->body, p->blen);
    sc_kr_array_len(&r, 0, 2, &n);
    if (p->v >= 1)
        sc_kw_i32(w, 0);
    sc_kw_array_len(w, n);
    for (int32_t i = 0; i < n; i++) {
        sc_kr_string(&r, 0, &name);
        int rc = p->rc[i];
        if (rc && rc != SC_ERR_UNKNOWN_TOPIC_OR_PARTITION && rc != SC_ERR_INVALID_TOPIC_EXCEPTION)
            SC_WARN(SUB, "DeleteTopics %.*s: %s", (int)name.len, name.p, sc_err_str(rc));
        sc_kw_string(w, name.p, (size_t)name.len);
        sc_kw_i16(w, sc_err_to_kafka(rc));
    }
}

int bk__h_delete_topics(bk_req_t *req, sc_kw_t *w)
{
    sc_rd_t *r = &req->body;
    int32_t n;
    sc_kstr_t s;
    sc_rd_t start = *r;
    sc_kr_array_len(r, 0, 2, &n);
    sc_rd_t first = *r;
    for (int32_t i = 0; i < n && !r->err; i++)
        sc_kr_string(r, 0, &s);
    sc_kr_i32(r); /* timeout_ms */
    if (r->err)
        return r->err;
    adm_pend_t *p = pend_new(req, &start, n);
    if (!p)
        return SC_ERR_NO_MEMORY;

    for (int32_t i = 0; i < n; i++) {
        sc_kr_string(&first, 0, &s);
        int rc;
        if (bk__topic_is_internal(s.p, (size_t)s.len)) {
            /* The coordinator's committed offsets live there. v0-3 carry no
             * message, so the log says why. */
            SC_INFO(SUB, "DeleteTopics %.*s refused: internal topic", (int)s.len, s.p);
            rc = SC_ERR_INVALID_TOPIC_EXCEPTION;
        } else if (pend_queue(p, i,
                              p->async ? bk_topics_delete_async(req->srv->topics, s.p,
                                                                (size_t)s.len, elem_done,
                                                                &p->el[i])
                                       : 0,
                              p->msg[i], ADM_MSG, &rc)) {
            /* queued */
        } else {
            rc = bk_topics_delete(req->srv->topics, s.p, (size_t)s.len);
        }
        p->rc[i] = rc;
    }
    return pend_end(req, p, w);
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

static int create_partitions_one(bk_req_t *req, adm_pend_t *p, int32_t i,
                                 const partitions_req_t *t, int validate_only, int dup, char *msg,
                                 size_t msglen)
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
    int rc;
    if (p && p->async &&
        pend_queue(p, i,
                   bk_topics_add_partitions_async(req->srv->topics, t->name.p,
                                                  (size_t)t->name.len, t->count, elem_done,
                                                  &p->el[i]),
                   msg, msglen, &rc))
        return rc;
    rc = bk_topics_add_partitions(req->srv->topics, t->name.p, (size_t)t->name.len, t->count);
    if (rc)
        msgf(msg, msglen, "Adding partitions failed: %s", sc_err_str(rc));
    return rc;
}

static void write_create_partitions(adm_pend_t *p, sc_kw_t *w)
{
    sc_rd_t r;
    int32_t n;
    partitions_req_t t;
    sc_rd_init(&r, p->body, p->blen);
    sc_kr_array_len(&r, 0, 10, &n);
    sc_kw_i32(w, 0); /* throttle_time_ms */
    sc_kw_array_len(w, n);
    for (int32_t i = 0; i < n; i++) {
        read_partitions_req(&r, &t);
        int rc = p->rc[i];
        if (rc)
            SC_INFO(SUB, "CreatePartitions %.*s: %s: %s", (int)t.name.len, t.name.p,
                    sc_err_name(rc), p->msg[i]);
        sc_kw_string(w, t.name.p, (size_t)t.name.len);
        sc_kw_i16(w, sc_err_to_kafka(rc));
        sc_kw_cstr(w, 0, rc ? p->msg[i] : NULL);
    }
}

int bk__h_create_partitions(bk_req_t *req, sc_kw_t *w)
{
    sc_rd_t *r = &req->body;
    int32_t n;
    partitions_req_t t;
    sc_rd_t start = *r;
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
    adm_pend_t *p = pend_new(req, &start, n);
    if (!p) {
        sc_free(names);
        return SC_ERR_NO_MEMORY;
    }
    if (n > 0)
        qsort(names, (size_t)n, sizeof *names, kstr_cmp);

    for (int32_t i = 0; i < n; i++) {
        read_partitions_req(&first, &t);
        p->rc[i] = create_partitions_one(req, p, i, &t, validate_only, is_dup(names, n, t.name),
                                         p->msg[i], ADM_MSG);
    }
    sc_free(names);
    return pend_end(req, p, w);
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

static int alter_one(bk_req_t *req, adm_pend_t *p, int32_t i, int8_t type, sc_kstr_t name,
                     sc_rd_t configs, int32_t nconfigs, int validate_only, char *msg,
                     size_t msglen)
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
    if (!validate_only && p && p->async) {
        memcpy(p->el[i].name, name.p, (size_t)name.len); /* valid: <= BK_TOPIC_NAME_MAX */
        p->el[i].name[name.len] = 0;
        (void)pend_queue(p, i,
                         bk_topics_set_configs_async(req->srv->topics, name.p, (size_t)name.len,
                                                     kv, (size_t)nconfigs, elem_done, &p->el[i]),
                         msg, msglen, &rc);
    } else if (!validate_only) {
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

static void write_alter_configs(adm_pend_t *p, sc_kw_t *w)
{
    sc_rd_t r;
    int32_t n, nconfigs;
    int8_t type;
    sc_kstr_t name;
    sc_rd_t configs;
    sc_rd_init(&r, p->body, p->blen);
    sc_kr_array_len(&r, 0, 7, &n);
    sc_kw_i32(w, 0); /* throttle_time_ms */
    sc_kw_array_len(w, n);
    for (int32_t i = 0; i < n; i++) {
        read_alter_resource(&r, &type, &name, &configs, &nconfigs);
        int rc = p->rc[i];
        if (rc)
            SC_INFO(SUB, "AlterConfigs %d/%.*s: %s: %s", type, (int)name.len, name.p,
                    sc_err_name(rc), p->msg[i]);
        sc_kw_i16(w, sc_err_to_kafka(rc));
        sc_kw_cstr(w, 0, rc ? p->msg[i] : NULL);
        sc_kw_i8(w, type);
        sc_kw_string(w, name.p, (size_t)name.len);
    }
}

int bk__h_alter_configs(bk_req_t *req, sc_kw_t *w)
{
    sc_rd_t *r = &req->body;
    int32_t n, nconfigs;
    int8_t type;
    sc_kstr_t name;
    sc_rd_t configs;
    sc_rd_t start = *r;
    sc_kr_array_len(r, 0, 7, &n);
    sc_rd_t first = *r;
    for (int32_t i = 0; i < n && !r->err; i++)
        read_alter_resource(r, &type, &name, &configs, &nconfigs);
    int validate_only = sc_kr_bool(r);
    if (r->err)
        return r->err;
    adm_pend_t *p = pend_new(req, &start, n);
    if (!p)
        return SC_ERR_NO_MEMORY;

    for (int32_t i = 0; i < n; i++) {
        read_alter_resource(&first, &type, &name, &configs, &nconfigs);
        p->rc[i] = alter_one(req, p, i, type, name, configs, nconfigs, validate_only, p->msg[i],
                             ADM_MSG);
    }
    return pend_end(req, p, w);
}

/* ---- InitProducerId ------------------------------------------------------------ */

static void write_init_producer_id(adm_pend_t *p, sc_kw_t *w)
{
    int rc = p->rc[0];
    int64_t pid = rc ? -1 : p->pid;
    if (rc && rc != SC_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED) {
        SC_ERROR(SUB, "InitProducerId: reserving producer ids: %s", sc_err_str(rc));
        rc = SC_ERR_COORDINATOR_NOT_AVAILABLE; /* retriable for the client */
    }
    sc_kw_i32(w, 0); /* throttle_time_ms */
    sc_kw_i16(w, sc_err_to_kafka(rc));
    sc_kw_i64(w, pid);
    sc_kw_i16(w, rc ? -1 : 0); /* epoch */
}

int bk__h_init_producer_id(bk_req_t *req, sc_kw_t *w)
{
    sc_rd_t *r = &req->body;
    sc_kstr_t tid;
    sc_rd_t start = *r;
    sc_kr_string(r, 1, &tid);
    sc_kr_i32(r); /* transaction_timeout_ms */
    if (r->err)
        return r->err;
    adm_pend_t *p = pend_new(req, &start, 1);
    if (!p)
        return SC_ERR_NO_MEMORY;
    int rc;
    if (tid.len >= 0) {
        /* No transaction coordinator yet (reference.md §8: 53 for
         * transactional use when unsupported). */
        rc = SC_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
    } else if (p->async && bk_topics_producer_id_cached(req->srv->topics, &p->pid)) {
        rc = 0; /* from the current block: not behind the queued writes */
    } else if (pend_queue(p, 0,
                          p->async ? bk_topics_producer_id_async(req->srv->topics, elem_done,
                                                                 &p->el[0])
                                   : 0,
                          p->msg[0], ADM_MSG, &rc)) {
        /* queued: the next id, from a new block when the current one is used up */
    } else {
        rc = bk_topics_producer_id_next(req->srv->topics, &p->pid);
    }
    p->rc[0] = rc;
    return pend_end(req, p, w);
}

static void write_response(adm_pend_t *p, sc_kw_t *w)
{
    switch (p->api) {
    case 19:
        write_create_topics(p, w);
        break;
    case 20:
        write_delete_topics(p, w);
        break;
    case 22:
        write_init_producer_id(p, w);
        break;
    case 33:
        write_alter_configs(p, w);
        break;
    default:
        write_create_partitions(p, w);
        break;
    }
}
