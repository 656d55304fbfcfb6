/*
 * cl_admin -- strata_admin_t: topics, configs, groups and offsets over the
 * shared client core (cl_client.c does the connections and the pipeline).
 *
 * How a call runs: the calling thread builds one "op" per request (API key,
 * version range, target node, an encoder over the caller's borrowed
 * arguments), queues it under mu and waits on cl.cond. The I/O thread's serve
 * hook picks the target broker; once that broker is UP (ApiVersions answered)
 * it chooses the version, runs the encoder and hands the body to cl_request.
 * The response callback copies the body into the op and signals; the caller
 * decodes it on its own thread (so the decoders are pure and unit-tested).
 *
 * A broker that is not UP gets a probe (an empty ApiVersions v0) queued on
 * it, which makes the loop connect; a probe that fails counts as one try of
 * the ops waiting for that broker, and an op fails with the connection error
 * after three, so an unreachable cluster is reported in well under a second
 * instead of at the timeout. Read-only ops are also retried after a network
 * error on the request itself; writes (CreateTopics, OffsetCommit, ...) are
 * not, since they may have been applied.
 *
 * Timeouts: a caller that runs out of time takes a queued op back; an op
 * already sent is marked abandoned and freed by its callback (which always
 * runs, at the latest when the handle stops). The encoder only runs while the
 * op is queued, so the caller's borrowed arguments are never read after the
 * call returns.
 *
 * Targets: Metadata, ListGroups, DescribeConfigs/AlterConfigs for topics go to
 * any broker; CreateTopics/DeleteTopics to the controller (asked again, and
 * the request resent, when every item comes back NOT_CONTROLLER: nothing was
 * done, the controller moved); group calls to the
 * coordinator (FindCoordinator); ListOffsets to each partition's leader.
 * Brokers named in Metadata / FindCoordinator answers are added to the
 * client's broker list (admin_learn).
 */
#include "cl_admin.h"
#include "cl_client.h"

#include "sc_err.h"
#include "sc_kafka.h"
#include "sc_log.h"
#include "sc_mem.h"
#include "sc_time.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LOGSYS "admin"
#define ANY_NODE INT32_MIN
#define MAX_TRIES 3

/* ---- result arena ------------------------------------------------------------------ */

typedef struct ar_blk {
    struct ar_blk *next;
    max_align_t data[];
} ar_blk_t;

typedef union {
    ar_blk_t *blocks;
    max_align_t align;
} ar_hdr_t;

void *cl_ar_top(size_t size)
{
    ar_hdr_t *h = sc_calloc(1, sizeof *h + size);
    return h ? h + 1 : NULL;
}

void *cl_ar_alloc(void *top, size_t size)
{
    ar_hdr_t *h = (ar_hdr_t *)top - 1;
    ar_blk_t *b = sc_calloc(1, sizeof *b + (size ? size : 1));

    if (!b)
        return NULL;
    b->next = h->blocks;
    h->blocks = b;
    return b->data;
}

char *cl_ar_strn(void *top, const char *p, int32_t len)
{
    char *s;

    if (len < 0 || !p)
        return NULL;
    if (!(s = cl_ar_alloc(top, (size_t)len + 1)))
        return NULL;
    memcpy(s, p, (size_t)len);
    s[len] = 0;
    return s;
}

void cl_ar_free(void *top)
{
    ar_hdr_t *h;

    if (!top)
        return;
    h = (ar_hdr_t *)top - 1;
    while (h->blocks) {
        ar_blk_t *b = h->blocks;
        h->blocks = b->next;
        sc_free(b);
    }
    sc_free(h);
}

/* A string under top that must be there: "" for a null. Sets *rc on ENOMEM. */
static const char *ar_str(void *top, sc_kstr_t s, int *rc)
{
    char *c = cl_ar_strn(top, s.len < 0 ? "" : s.p, s.len < 0 ? 0 : s.len);
    if (!c)
        *rc = SC_ERR_NO_MEMORY;
    return c ? c : "";
}

/* ---- decoders (pure) ------------------------------------------------------------------ */

static int rd_err(const sc_rd_t *r) { return r->err ? SC_ERR_BAD_FORMAT : 0; }

int cl_admin_decode_metadata(sc_rd_t *r, int16_t ver, strata_metadata_t *md)
{
    int32_t nb, nt;
    int rc = 0;
    void *top = md;

    if (ver >= 3)
        sc_kr_i32(r); /* throttle */
    if (sc_kr_array_len(r, 0, 10, &nb))
        return SC_ERR_BAD_FORMAT;
    strata_broker_metadata_t *bs = cl_ar_alloc(top, (size_t)nb * sizeof *bs);
    if (!bs)
        return SC_ERR_NO_MEMORY;
    for (int32_t i = 0; i < nb; i++) {
        sc_kstr_t host, rack;
        bs[i].node_id = sc_kr_i32(r);
        sc_kr_string(r, 0, &host);
        bs[i].port = sc_kr_i32(r);
        if (ver >= 1)
            sc_kr_string(r, 1, &rack);
        if (r->err)
            return SC_ERR_BAD_FORMAT;
        bs[i].host = ar_str(top, host, &rc);
    }
    md->brokers = bs;
    md->broker_count = (size_t)nb;
    md->controller_id = -1;
    if (ver >= 2) {
        sc_kstr_t cid;
        sc_kr_string(r, 1, &cid);
        md->cluster_id = cl_ar_strn(top, cid.p, cid.len);
    }
    if (ver >= 1)
        md->controller_id = sc_kr_i32(r);
    if (sc_kr_array_len(r, 0, 8, &nt))
        return SC_ERR_BAD_FORMAT;
    strata_topic_metadata_t *ts = cl_ar_alloc(top, (size_t)nt * sizeof *ts);
    if (!ts)
        return SC_ERR_NO_MEMORY;
    for (int32_t i = 0; i < nt; i++) {
        sc_kstr_t name;
        int32_t np;
        ts[i].err = sc_kr_i16(r);
        sc_kr_string(r, 0, &name);
        if (ver >= 1)
            ts[i].is_internal = sc_kr_bool(r);
        if (sc_kr_array_len(r, 0, 18, &np))
            return SC_ERR_BAD_FORMAT;
        ts[i].name = ar_str(top, name, &rc);
        strata_partition_metadata_t *ps = cl_ar_alloc(top, (size_t)np * sizeof *ps);
        if (!ps)
            return SC_ERR_NO_MEMORY;
        for (int32_t j = 0; j < np; j++) {
            int32_t n;
            ps[j].err = sc_kr_i16(r);
            ps[j].id = sc_kr_i32(r);
            ps[j].leader = sc_kr_i32(r);
            for (int k = 0; k < (ver >= 5 ? 3 : 2); k++) {
                if (sc_kr_array_len(r, 0, 4, &n))
                    return SC_ERR_BAD_FORMAT;
                int32_t *ids = cl_ar_alloc(top, (size_t)n * sizeof *ids);
                if (!ids)
                    return SC_ERR_NO_MEMORY;
                for (int32_t q = 0; q < n; q++)
                    ids[q] = sc_kr_i32(r);
                if (k == 0) {
                    ps[j].replicas = ids;
                    ps[j].replica_count = (size_t)n;
                } else if (k == 1) {
                    ps[j].isr = ids;
                    ps[j].isr_count = (size_t)n;
                }
            }
        }
        ts[i].partitions = ps;
        ts[i].partition_count = (size_t)np;
    }
    md->topics = ts;
    md->topic_count = (size_t)nt;
    return rc ? rc : rd_err(r);
}

int cl_admin_decode_assignment(void *top, const uint8_t *p, size_t n,
                               const strata_topic_partitions_t **out, size_t *count)
{
    sc_rd_t r;
    int32_t nt;
    int rc = 0;

    *out = NULL;
    *count = 0;
    if (n == 0)
        return 0;
    sc_rd_init(&r, p, n);
    sc_kr_i16(&r); /* version: every version starts with the same fields */
    if (sc_kr_array_len(&r, 0, 6, &nt))
        return SC_ERR_BAD_FORMAT;
    strata_topic_partitions_t *tps = cl_ar_alloc(top, (size_t)nt * sizeof *tps);
    if (!tps)
        return SC_ERR_NO_MEMORY;
    for (int32_t i = 0; i < nt; i++) {
        sc_kstr_t name;
        int32_t np;
        sc_kr_string(&r, 0, &name);
        if (sc_kr_array_len(&r, 0, 4, &np))
            return SC_ERR_BAD_FORMAT;
        int32_t *ps = cl_ar_alloc(top, (size_t)np * sizeof *ps);
        if (!ps)
            return SC_ERR_NO_MEMORY;
        for (int32_t j = 0; j < np; j++)
            ps[j] = sc_kr_i32(&r);
        tps[i].topic = ar_str(top, name, &rc);
        tps[i].partitions = ps;
        tps[i].partition_count = (size_t)np;
    }
    if (r.err)
        return SC_ERR_BAD_FORMAT;
    /* user_data (bytes) and later-version fields follow: not needed */
    *out = tps;
    *count = (size_t)nt;
    return rc;
}

int cl_admin_decode_describe_group(sc_rd_t *r, int16_t ver, strata_group_description_t *d)
{
    int32_t ng, nm;
    sc_kstr_t gid, state, ptype, pdata;
    int rc = 0;

    if (ver >= 1)
        sc_kr_i32(r);
    if (sc_kr_array_len(r, 0, 10, &ng) || ng != 1)
        return SC_ERR_BAD_FORMAT;
    d->err = sc_kr_i16(r);
    sc_kr_string(r, 0, &gid);
    sc_kr_string(r, 0, &state);
    sc_kr_string(r, 0, &ptype);
    sc_kr_string(r, 0, &pdata);
    if (sc_kr_array_len(r, 0, 14, &nm))
        return SC_ERR_BAD_FORMAT;
    d->group_id = ar_str(d, gid, &rc);
    d->state = ar_str(d, state, &rc);
    d->protocol_type = ar_str(d, ptype, &rc);
    d->protocol = ar_str(d, pdata, &rc);
    strata_group_member_t *ms = cl_ar_alloc(d, (size_t)nm * sizeof *ms);
    if (!ms)
        return SC_ERR_NO_MEMORY;
    for (int32_t i = 0; i < nm; i++) {
        sc_kstr_t mid, inst = {NULL, -1}, cid, host;
        sc_kbytes_t meta, asg;
        sc_kr_string(r, 0, &mid);
        if (ver >= 4)
            sc_kr_string(r, 1, &inst);
        sc_kr_string(r, 0, &cid);
        sc_kr_string(r, 0, &host);
        sc_kr_bytes(r, 0, &meta);
        sc_kr_bytes(r, 0, &asg);
        if (r->err)
            return SC_ERR_BAD_FORMAT;
        ms[i].member_id = ar_str(d, mid, &rc);
        ms[i].group_instance_id = cl_ar_strn(d, inst.p, inst.len);
        ms[i].client_id = ar_str(d, cid, &rc);
        ms[i].client_host = ar_str(d, host, &rc);
        if (ptype.len == 8 && !memcmp(ptype.p, "consumer", 8) && asg.len > 0) {
            int arc = cl_admin_decode_assignment(d, asg.p, (size_t)asg.len, &ms[i].assignment,
                                                 &ms[i].assignment_count);
            if (arc == SC_ERR_NO_MEMORY)
                return arc; /* a malformed assignment leaves the member unassigned */
        }
    }
    d->members = ms;
    d->member_count = (size_t)nm;
    if (ver >= 3)
        sc_kr_i32(r); /* authorized operations */
    return rc ? rc : rd_err(r);
}

int cl_admin_decode_describe_config(sc_rd_t *r, int16_t ver, strata_config_description_t *d)
{
    int32_t nres, nc;
    sc_kstr_t msg, name;
    int rc = 0;

    sc_kr_i32(r); /* throttle */
    if (sc_kr_array_len(r, 0, 10, &nres) || nres != 1)
        return SC_ERR_BAD_FORMAT;
    d->err = sc_kr_i16(r);
    sc_kr_string(r, 1, &msg);
    d->type = (strata_resource_type_t)sc_kr_i8(r);
    sc_kr_string(r, 0, &name);
    if (sc_kr_array_len(r, 0, 6, &nc))
        return SC_ERR_BAD_FORMAT;
    d->err_msg = cl_ar_strn(d, msg.p, msg.len);
    d->name = ar_str(d, name, &rc);
    strata_config_info_t *cs = cl_ar_alloc(d, (size_t)nc * sizeof *cs);
    if (!cs)
        return SC_ERR_NO_MEMORY;
    for (int32_t i = 0; i < nc; i++) {
        sc_kstr_t k, v;
        int32_t ns;
        sc_kr_string(r, 0, &k);
        sc_kr_string(r, 1, &v);
        cs[i].read_only = sc_kr_bool(r);
        if (ver == 0) {
            cs[i].source = sc_kr_bool(r) ? STRATA_CONFIG_SOURCE_DEFAULT : STRATA_CONFIG_SOURCE_UNKNOWN;
        } else {
            int8_t s = sc_kr_i8(r);
            cs[i].source = s >= 1 && s <= 5 ? (strata_config_source_t)s : STRATA_CONFIG_SOURCE_UNKNOWN;
        }
        cs[i].sensitive = sc_kr_bool(r);
        if (ver >= 1) {
            if (sc_kr_array_len(r, 0, 5, &ns))
                return SC_ERR_BAD_FORMAT;
            for (int32_t j = 0; j < ns; j++) {
                sc_kstr_t sk, sv;
                sc_kr_string(r, 0, &sk);
                sc_kr_string(r, 1, &sv);
                sc_kr_i8(r);
            }
        }
        if (r->err)
            return SC_ERR_BAD_FORMAT;
        cs[i].name = ar_str(d, k, &rc);
        cs[i].value = cl_ar_strn(d, v.p, v.len);
    }
    d->configs = cs;
    d->config_count = (size_t)nc;
    return rc ? rc : rd_err(r);
}

/* One pass of OffsetFetch: counts when out is NULL. */
static int offset_fetch_pass(sc_rd_t *r, int16_t ver, void *top, strata_topic_partition_t *out,
                             size_t *count, int *group_err)
{
    int32_t nt;
    size_t n = 0;
    int rc = 0;

    if (ver >= 3)
        sc_kr_i32(r);
    if (sc_kr_array_len(r, 0, 6, &nt))
        return SC_ERR_BAD_FORMAT;
    for (int32_t i = 0; i < nt; i++) {
        sc_kstr_t name;
        int32_t np;
        const char *tn = NULL;
        sc_kr_string(r, 0, &name);
        if (sc_kr_array_len(r, 0, 16, &np))
            return SC_ERR_BAD_FORMAT;
        if (out && np)
            tn = ar_str(top, name, &rc);
        for (int32_t j = 0; j < np; j++, n++) {
            sc_kstr_t meta;
            int32_t part = sc_kr_i32(r);
            int64_t off = sc_kr_i64(r);
            if (ver >= 5)
                sc_kr_i32(r);
            sc_kr_string(r, 1, &meta);
            int16_t ec = sc_kr_i16(r);
            if (out) {
                out[n].topic = tn;
                out[n].partition = part;
                out[n].offset = off;
                out[n].err = ec;
            }
        }
    }
    *group_err = ver >= 2 ? sc_kr_i16(r) : 0;
    *count = n;
    return rc ? rc : rd_err(r);
}

int cl_admin_decode_offset_fetch(sc_rd_t *r, int16_t ver, strata_topic_partition_t **out,
                                 size_t *count, int *group_err)
{
    sc_rd_t r2 = *r;
    size_t n;
    int rc;

    *out = NULL;
    if ((rc = offset_fetch_pass(&r2, ver, NULL, NULL, &n, group_err)))
        return rc;
    strata_topic_partition_t *tps = cl_ar_top(n * sizeof *tps);
    if (!tps)
        return SC_ERR_NO_MEMORY;
    if ((rc = offset_fetch_pass(r, ver, tps, tps, &n, group_err))) {
        cl_ar_free(tps);
        return rc;
    }
    *out = tps;
    *count = n;
    return 0;
}

/* ---- ops ------------------------------------------------------------------------------ */

enum { AOP_QUEUED = 0, AOP_SENT, AOP_DONE };

typedef int (*aop_encode_fn)(sc_kw_t *w, int16_t ver, const void *ctx);

typedef struct aop {
    struct aop *next;
    int32_t node; /* ANY_NODE or a node id */
    int16_t api, vmin, vmax;
    int readonly; /* retried after a network error */
    aop_encode_fn enc;
    const void *ctx;
    int state, abandoned, probing, tries;
    int err;
    int16_t ver;
    cl_broker_t *b;
    int64_t retry_at;
    int64_t deadline;
    sc_buf_t resp;
} aop_t;

struct strata_admin {
    cl_client_t cl; /* first: serve() casts */
    aop_t *q;       /* queued, not yet sent (mu) */
    char **msgs;    /* broker error messages of the last call (caller side) */
    size_t nmsgs;
};

static aop_t *aop_new(int32_t node, int16_t api, int16_t vmin, int16_t vmax, int readonly,
                      aop_encode_fn enc, const void *ctx)
{
    aop_t *op = sc_calloc(1, sizeof *op);

    if (!op)
        return NULL;
    op->node = node;
    op->api = api;
    op->vmin = vmin;
    op->vmax = vmax;
    op->readonly = readonly;
    op->enc = enc;
    op->ctx = ctx;
    sc_buf_init(&op->resp);
    return op;
}

static void aop_free(aop_t *op)
{
    if (!op)
        return;
    sc_buf_fini(&op->resp);
    sc_free(op);
}

static void aop_done(cl_client_t *cl, aop_t *op, int err)
{
    op->state = AOP_DONE;
    op->err = err;
    pthread_cond_broadcast(&cl->cond);
}

static void q_unlink(strata_admin_t *a, aop_t *op)
{
    for (aop_t **pp = &a->q; *pp; pp = &(*pp)->next)
        if (*pp == op) {
            *pp = op->next;
            op->next = NULL;
            return;
        }
}

static void on_resp(cl_client_t *cl, cl_broker_t *b, int err, sc_rd_t *r, void *arg)
{
    strata_admin_t *a = (strata_admin_t *)cl;
    aop_t *op = arg;
    int64_t now = sc_mono_ms();

    if (op->abandoned) {
        aop_free(op);
        return;
    }
    if (err) {
        if (op->readonly && err != SC_ERR_CLOSED && ++op->tries < MAX_TRIES &&
            now < op->deadline) {
            op->state = AOP_QUEUED;
            op->retry_at = now + cl->conf->retry_backoff_ms;
            op->next = a->q;
            a->q = op;
            return;
        }
        /* the request ran out of the call's own time: the call's timeout */
        if (err == SC_ERR_REQUEST_TIMED_OUT && now >= op->deadline)
            err = STRATA_ERR_TIMED_OUT;
        aop_done(cl, op, err);
        return;
    }
    sc_buf_reset(&op->resp);
    if (sc_buf_append(&op->resp, r->p, sc_rd_left(r))) {
        aop_done(cl, op, SC_ERR_NO_MEMORY);
        return;
    }
    aop_done(cl, op, 0);
}

/* The probe's answer: b is UP (serve sends what waits) or it failed. */
static void on_probe(cl_client_t *cl, cl_broker_t *b, int err, sc_rd_t *r, void *arg)
{
    strata_admin_t *a = (strata_admin_t *)cl;
    int64_t now = sc_mono_ms();

    for (aop_t *op = a->q; op; op = op->next) {
        if (op->b != b || !op->probing)
            continue;
        op->probing = 0;
        if (err) {
            op->tries++;
            op->err = err;
            op->retry_at = now + cl->conf->reconnect_backoff_ms;
        }
    }
}

static int64_t serve(cl_client_t *cl, int64_t now)
{
    strata_admin_t *a = (strata_admin_t *)cl;
    int64_t next = INT64_MAX;
    aop_t **pp = &a->q;

    while (*pp) {
        aop_t *op = *pp;
        cl_broker_t *b;
        if (op->tries >= MAX_TRIES) {
            *pp = op->next;
            aop_done(cl, op, op->err ? op->err : SC_ERR_NETWORK_EXCEPTION);
            continue;
        }
        if (op->retry_at > now) {
            if (op->retry_at < next)
                next = op->retry_at;
            pp = &op->next;
            continue;
        }
        b = op->node == ANY_NODE ? cl_broker_any(cl, now) : cl_broker_find(cl, op->node);
        if (!b) {
            if (op->node != ANY_NODE) {
                *pp = op->next;
                aop_done(cl, op, SC_ERR_BROKER_NOT_AVAILABLE);
                continue;
            }
            if (now + 50 < next) /* every broker backing off */
                next = now + 50;
            pp = &op->next;
            continue;
        }
        if (b->state != CL_BK_UP) {
            if (!op->probing || op->b != b) {
                sc_buf_t empty;
                sc_buf_init(&empty);
                if (!cl_request(cl, b, SC_KAFKA_API_API_VERSIONS, 0, &empty, 0,
                                cl->conf->request_timeout_ms, on_probe, NULL)) {
                    op->probing = 1;
                    op->b = b;
                }
            }
            if (b->state == CL_BK_DOWN && b->retry_at_ms > now && b->retry_at_ms < next)
                next = b->retry_at_ms;
            pp = &op->next;
            continue;
        }
        op->b = b;
        op->probing = 0;
        int16_t v = cl_broker_version(b, op->api, op->vmin, op->vmax);
        if (v < 0) {
            SC_WARN(LOGSYS, "broker %s:%d supports no %s version %d-%d", b->host, b->port,
                    sc_kafka_api_name(op->api), op->vmin, op->vmax);
            *pp = op->next;
            aop_done(cl, op, SC_ERR_UNSUPPORTED_VERSION);
            continue;
        }
        sc_buf_t body;
        sc_kw_t w;
        int rc;
        sc_buf_init(&body);
        sc_kw_init(&w, &body);
        rc = op->enc ? op->enc(&w, v, op->ctx) : 0;
        if (!rc)
            rc = w.err;
        int64_t tmo = op->deadline - now;
        if (tmo < 1)
            tmo = 1;
        *pp = op->next;
        op->next = NULL;
        op->ver = v;
        if (!rc && !(rc = cl_request(cl, b, op->api, v, &body, 0, tmo, on_resp, op)))
            op->state = AOP_SENT;
        else
            aop_done(cl, op, rc);
        sc_buf_fini(&body);
    }
    return next;
}

static const cl_role_t admin_role = {
    .serve = serve,
};

static int64_t deadline_of(strata_admin_t *a, int timeout_ms)
{
    return sc_mono_ms() + (timeout_ms < 0 ? a->cl.conf->request_timeout_ms : timeout_ms);
}

/* Runs ops[0..n) to completion or the deadline. An op that timed out while
 * in flight is left to its callback and ops[i] set to NULL; every other op
 * is DONE with its err (STRATA_ERR_TIMED_OUT when it never went out).
 * Returns 0 or STRATA_ERR_TIMED_OUT. */
static int run_ops(strata_admin_t *a, aop_t **ops, size_t n, int64_t deadline)
{
    cl_client_t *cl = &a->cl;
    int rc = 0;

    pthread_mutex_lock(&cl->mu);
    for (size_t i = 0; i < n; i++) {
        ops[i]->deadline = deadline;
        ops[i]->next = a->q;
        a->q = ops[i];
    }
    pthread_mutex_unlock(&cl->mu);
    cl_client_wake(cl);
    pthread_mutex_lock(&cl->mu);
    for (;;) {
        size_t pending = 0;
        for (size_t i = 0; i < n; i++)
            pending += ops[i]->state != AOP_DONE;
        if (!pending)
            break;
        int64_t left = deadline - sc_mono_ms();
        if (left <= 0) {
            rc = STRATA_ERR_TIMED_OUT;
            for (size_t i = 0; i < n; i++) {
                if (ops[i]->state == AOP_QUEUED) {
                    q_unlink(a, ops[i]);
                    ops[i]->state = AOP_DONE;
                    ops[i]->err = STRATA_ERR_TIMED_OUT;
                } else if (ops[i]->state == AOP_SENT) {
                    ops[i]->abandoned = 1;
                    ops[i] = NULL;
                }
            }
            break;
        }
        struct timespec dl;
        clock_gettime(CLOCK_REALTIME, &dl);
        if (left > 200)
            left = 200; /* recheck the monotonic deadline now and then */
        dl.tv_sec += left / 1000;
        dl.tv_nsec += (left % 1000) * 1000000L;
        if (dl.tv_nsec >= 1000000000L) {
            dl.tv_sec++;
            dl.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&cl->cond, &cl->mu, &dl);
    }
    pthread_mutex_unlock(&cl->mu);
    return rc;
}

/* One op: runs it and gives its reader over the answer. *opp is set to NULL
 * when the op timed out in flight (its callback owns it now); the caller
 * frees *opp either way (aop_free(NULL) is a no-op). */
static int run_one(strata_admin_t *a, aop_t **opp, int64_t deadline, sc_rd_t *r)
{
    int rc = run_ops(a, opp, 1, deadline);

    if (!*opp)
        return rc;
    if ((*opp)->err)
        return (*opp)->err;
    sc_rd_init(r, (*opp)->resp.data, (*opp)->resp.len);
    return 0;
}

/* ---- brokers ---------------------------------------------------------------------- */

/* Adds node_id at host:port to the client's brokers when it is new (mu
 * taken here). A known node keeps its entry. */
static int admin_learn(strata_admin_t *a, int32_t node_id, const char *host, size_t host_len,
                       int32_t port)
{
    cl_client_t *cl = &a->cl;
    char *h = sc_malloc(host_len + 1);
    int rc = 0;

    if (!h)
        return SC_ERR_NO_MEMORY;
    memcpy(h, host, host_len);
    h[host_len] = 0;
    pthread_mutex_lock(&cl->mu);
    if (!cl_broker_find(cl, node_id) && !cl_broker_add(cl, node_id, h, port))
        rc = SC_ERR_NO_MEMORY;
    pthread_mutex_unlock(&cl->mu);
    sc_free(h);
    return rc;
}

/* ---- encoders ------------------------------------------------------------------------ */

typedef struct {
    const char *const *names;
    size_t count;
    int all;            /* Metadata: every topic (null array) */
    int32_t timeout_ms; /* DeleteTopics */
} names_ctx_t;

static int enc_metadata(sc_kw_t *w, int16_t ver, const void *ctx)
{
    const names_ctx_t *c = ctx;

    if (c->all) {
        sc_kw_array_len(w, -1); /* all topics */
    } else {
        sc_kw_array_len(w, (int32_t)c->count);
        for (size_t i = 0; i < c->count; i++)
            sc_kw_cstr(w, 0, c->names[i]);
    }
    if (ver >= 4)
        sc_kw_bool(w, 0);
    return 0;
}

typedef struct {
    const strata_new_topic_t *topics;
    size_t count;
    int32_t timeout_ms;
} create_ctx_t;

static int enc_create_topics(sc_kw_t *w, int16_t ver, const void *ctx)
{
    const create_ctx_t *c = ctx;

    sc_kw_array_len(w, (int32_t)c->count);
    for (size_t i = 0; i < c->count; i++) {
        const strata_new_topic_t *t = &c->topics[i];
        if (ver < 4 && (t->num_partitions < 0 || t->replication_factor < 0))
            return SC_ERR_UNSUPPORTED_VERSION; /* broker defaults need v4 */
        sc_kw_cstr(w, 0, t->name);
        sc_kw_i32(w, t->num_partitions);
        sc_kw_i16(w, t->replication_factor);
        sc_kw_array_len(w, 0); /* assignments */
        sc_kw_array_len(w, (int32_t)t->config_count);
        for (size_t j = 0; j < t->config_count; j++) {
            sc_kw_cstr(w, 0, t->configs[j].name);
            sc_kw_cstr(w, 0, t->configs[j].value);
        }
    }
    sc_kw_i32(w, c->timeout_ms);
    if (ver >= 1)
        sc_kw_bool(w, 0); /* validate_only */
    return 0;
}

static int enc_delete_topics(sc_kw_t *w, int16_t ver, const void *ctx)
{
    const names_ctx_t *c = ctx;

    sc_kw_array_len(w, (int32_t)c->count);
    for (size_t i = 0; i < c->count; i++)
        sc_kw_cstr(w, 0, c->names[i]);
    sc_kw_i32(w, c->timeout_ms);
    return 0;
}

typedef struct {
    int8_t type;
    const char *name;
    const char *const *keys;
    size_t nkeys;
} dconf_ctx_t;

static int enc_describe_configs(sc_kw_t *w, int16_t ver, const void *ctx)
{
    const dconf_ctx_t *c = ctx;

    sc_kw_array_len(w, 1);
    sc_kw_i8(w, c->type);
    sc_kw_cstr(w, 0, c->name);
    if (!c->nkeys) {
        sc_kw_array_len(w, -1);
    } else {
        sc_kw_array_len(w, (int32_t)c->nkeys);
        for (size_t i = 0; i < c->nkeys; i++)
            sc_kw_cstr(w, 0, c->keys[i]);
    }
    if (ver >= 1)
        sc_kw_bool(w, 0); /* synonyms */
    return 0;
}

typedef struct {
    const strata_config_resource_t *res;
    size_t count;
} aconf_ctx_t;

static int enc_alter_configs(sc_kw_t *w, int16_t ver, const void *ctx)
{
    const aconf_ctx_t *c = ctx;

    sc_kw_array_len(w, (int32_t)c->count);
    for (size_t i = 0; i < c->count; i++) {
        sc_kw_i8(w, (int8_t)c->res[i].type);
        sc_kw_cstr(w, 0, c->res[i].name);
        sc_kw_array_len(w, (int32_t)c->res[i].entry_count);
        for (size_t j = 0; j < c->res[i].entry_count; j++) {
            sc_kw_cstr(w, 0, c->res[i].entries[j].name);
            sc_kw_cstr(w, 0, c->res[i].entries[j].value);
        }
    }
    sc_kw_bool(w, 0);
    return 0;
}

static int enc_find_coordinator(sc_kw_t *w, int16_t ver, const void *ctx)
{
    sc_kw_cstr(w, 0, ctx);
    if (ver >= 1)
        sc_kw_i8(w, 0); /* key type: group */
    return 0;
}

static int enc_describe_groups(sc_kw_t *w, int16_t ver, const void *ctx)
{
    sc_kw_array_len(w, 1);
    sc_kw_cstr(w, 0, ctx);
    if (ver >= 3)
        sc_kw_bool(w, 0);
    return 0;
}

static int enc_offset_fetch_all(sc_kw_t *w, int16_t ver, const void *ctx)
{
    sc_kw_cstr(w, 0, ctx);
    sc_kw_array_len(w, -1);
    return 0;
}

typedef cl_admin_tps_t tps_ctx_t;

/* Writes topics[name, partitions[...]] for ctx's entries; each partition
 * entry is written by part(). Entries of one topic are consecutive in idx. */
static void enc_tps(sc_kw_t *w, const tps_ctx_t *c, int16_t ver,
                    void (*part)(sc_kw_t *, int16_t, const strata_topic_partition_t *))
{
    int32_t nt = 0;

    for (size_t i = 0; i < c->n; i++)
        if (!i || strcmp(c->tps[c->idx[i]].topic, c->tps[c->idx[i - 1]].topic))
            nt++;
    sc_kw_array_len(w, nt);
    for (size_t i = 0; i < c->n;) {
        size_t j = i;
        const char *t = c->tps[c->idx[i]].topic;
        while (j < c->n && !strcmp(c->tps[c->idx[j]].topic, t))
            j++;
        sc_kw_cstr(w, 0, t);
        sc_kw_array_len(w, (int32_t)(j - i));
        for (; i < j; i++)
            part(w, ver, &c->tps[c->idx[i]]);
    }
}

static void enc_list_offsets_part(sc_kw_t *w, int16_t ver, const strata_topic_partition_t *tp)
{
    sc_kw_i32(w, tp->partition);
    sc_kw_i64(w, tp->offset == STRATA_OFFSET_BEGINNING ? -2
                 : tp->offset == STRATA_OFFSET_END     ? -1
                                                       : tp->offset);
}

int cl_admin_enc_list_offsets(sc_kw_t *w, int16_t ver, const void *ctx)
{
    sc_kw_i32(w, -1); /* replica id */
    if (ver >= 2)
        sc_kw_i8(w, 0); /* read_uncommitted */
    enc_tps(w, ctx, ver, enc_list_offsets_part);
    return 0;
}

static void enc_commit_part(sc_kw_t *w, int16_t ver, const strata_topic_partition_t *tp)
{
    sc_kw_i32(w, tp->partition);
    sc_kw_i64(w, tp->offset);
    if (ver >= 6)
        sc_kw_i32(w, -1); /* leader epoch */
    sc_kw_string(w, "", 0);
}

int cl_admin_enc_offset_commit(sc_kw_t *w, int16_t ver, const void *ctx)
{
    const tps_ctx_t *c = ctx;

    sc_kw_cstr(w, 0, c->group);
    sc_kw_i32(w, -1); /* generation */
    sc_kw_string(w, "", 0); /* member id */
    if (ver >= 7)
        sc_kw_string(w, NULL, 0); /* group instance id */
    if (ver <= 4)
        sc_kw_i64(w, -1); /* retention: the broker's */
    enc_tps(w, c, ver, enc_commit_part);
    return 0;
}

/* ---- lifecycle ------------------------------------------------------------------------ */

strata_err_t strata_admin_new(const strata_conf_t *conf, strata_admin_t **out, char *errstr,
                              size_t errstr_size)
{
    strata_admin_t *a = NULL;
    strata_conf_t *cf = NULL;
    int rc;

    if (!out)
        return -EINVAL;
    if (errstr && errstr_size)
        errstr[0] = 0;
    cf = conf ? strata_conf_dup(conf) : strata_conf_new();
    if (!cf || !(a = sc_calloc(1, sizeof *a))) {
        rc = SC_ERR_NO_MEMORY;
        goto out;
    }
    if ((rc = cl_client_init(&a->cl, cf, &admin_role, a, errstr, errstr_size)))
        goto out;
    cf = NULL;
    *out = a;
    a = NULL;
out:
    strata_conf_free(cf);
    sc_free(a);
    return rc;
}

static void msgs_clear(strata_admin_t *a)
{
    for (size_t i = 0; i < a->nmsgs; i++)
        sc_free(a->msgs[i]);
    sc_free(a->msgs);
    a->msgs = NULL;
    a->nmsgs = 0;
}

/* Room for count messages of this call (all NULL). */
static void msgs_reset(strata_admin_t *a, size_t count)
{
    msgs_clear(a);
    if (count && (a->msgs = sc_calloc(count, sizeof *a->msgs)))
        a->nmsgs = count;
}

static void msg_set(strata_admin_t *a, size_t i, sc_kstr_t m)
{
    if (i < a->nmsgs && m.len > 0 && !a->msgs[i] && (a->msgs[i] = sc_malloc((size_t)m.len + 1))) {
        memcpy(a->msgs[i], m.p, (size_t)m.len);
        a->msgs[i][m.len] = 0;
    }
}

const char *strata_admin_error_message(strata_admin_t *a, size_t i)
{
    return a && i < a->nmsgs ? a->msgs[i] : NULL;
}

void strata_admin_free(strata_admin_t *a)
{
    if (!a)
        return;
    cl_client_stop(&a->cl);
    pthread_mutex_lock(&a->cl.mu);
    while (a->q) { /* nobody waits for them any more */
        aop_t *op = a->q;
        a->q = op->next;
        aop_free(op);
    }
    pthread_mutex_unlock(&a->cl.mu);
    cl_client_fini(&a->cl);
    msgs_clear(a);
    sc_free(a);
}

/* ---- metadata ---------------------------------------------------------------------- */

/* Metadata for these topics; names NULL = every topic, count 0 = brokers only. */
static int fetch_metadata(strata_admin_t *a, const char *const *names, size_t count,
                          int64_t deadline, strata_metadata_t **out)
{
    names_ctx_t ctx = {names, count, names == NULL, 0};
    aop_t *op = aop_new(ANY_NODE, SC_KAFKA_API_METADATA, 1, 6, 1, enc_metadata, &ctx);
    sc_rd_t r;
    int rc;

    if (!op)
        return SC_ERR_NO_MEMORY;
    if (!(rc = run_one(a, &op, deadline, &r))) {
        strata_metadata_t *md = cl_ar_top(sizeof *md);
        if (!md)
            rc = SC_ERR_NO_MEMORY;
        else if ((rc = cl_admin_decode_metadata(&r, op->ver, md)))
            cl_ar_free(md);
        else
            *out = md;
    }
    if (!rc)
        for (size_t i = 0; i < (*out)->broker_count; i++)
            admin_learn(a, (*out)->brokers[i].node_id, (*out)->brokers[i].host,
                        strlen((*out)->brokers[i].host), (*out)->brokers[i].port);
    aop_free(op);
    return rc;
}

strata_err_t strata_admin_describe_topics(strata_admin_t *a, const char *const *names,
                                          size_t count, int timeout_ms, strata_metadata_t **out)
{
    if (!a || !out || (count && !names))
        return -EINVAL;
    return fetch_metadata(a, count ? names : NULL, count, deadline_of(a, timeout_ms), out);
}

void strata_metadata_free(strata_metadata_t *md) { cl_ar_free(md); }

/* The controller's node id, or ANY_NODE when metadata names none. */
static int controller_node(strata_admin_t *a, int64_t deadline, int32_t *node)
{
    strata_metadata_t *md = NULL;
    static const char *const none[1] = {NULL};
    int rc = fetch_metadata(a, none, 0, deadline, &md);

    if (rc)
        return rc;
    *node = md->controller_id >= 0 ? md->controller_id : ANY_NODE;
    cl_ar_free(md);
    return 0;
}

/* ---- topics -------------------------------------------------------------------------- */

/* Matches a per-topic answer to the caller's index by name (-1 none). */
static long name_index(const char *const *names, size_t count, sc_kstr_t n)
{
    for (size_t i = 0; i < count; i++)
        if (strlen(names[i]) == (size_t)n.len && !memcmp(names[i], n.p, (size_t)n.len))
            return (long)i;
    return -1;
}

static void backoff(strata_admin_t *a, int64_t deadline);
static int create_topics_once(strata_admin_t *a, const strata_new_topic_t *topics, size_t count,
                              int64_t deadline, strata_err_t *results);

/* Every item answered NOT_CONTROLLER: nothing was done, the request may go
 * again to the new controller. */
static int all_not_controller(const strata_err_t *results, size_t count)
{
    for (size_t i = 0; i < count; i++)
        if (results[i] != 41 /* NOT_CONTROLLER */)
            return 0;
    return count > 0;
}

strata_err_t strata_admin_create_topics(strata_admin_t *a, const strata_new_topic_t *topics,
                                        size_t count, int timeout_ms, strata_err_t *results)
{
    int64_t deadline;
    int rc;

    if (!a || !topics || !count || !results)
        return -EINVAL;
    deadline = deadline_of(a, timeout_ms);
    for (int attempt = 0;; attempt++) {
        rc = create_topics_once(a, topics, count, deadline, results);
        if (rc || attempt == 2 || !all_not_controller(results, count) ||
            sc_mono_ms() + a->cl.conf->retry_backoff_ms >= deadline)
            return rc;
        backoff(a, deadline); /* the controller moved: ask metadata again */
    }
}

static int create_topics_once(strata_admin_t *a, const strata_new_topic_t *topics, size_t count,
                              int64_t deadline, strata_err_t *results)
{
    int32_t node;
    int rc;

    msgs_reset(a, count);
    for (size_t i = 0; i < count; i++)
        results[i] = STRATA_ERR_UNKNOWN_SERVER; /* until answered */
    if ((rc = controller_node(a, deadline, &node)))
        return rc;
    int64_t left = deadline - sc_mono_ms();
    create_ctx_t ctx = {topics, count, (int32_t)(left > 0 ? left : 1)};
    aop_t *op = aop_new(node, SC_KAFKA_API_CREATE_TOPICS, 0, 4, 0, enc_create_topics, &ctx);
    sc_rd_t r;
    int32_t n;

    if (!op)
        return SC_ERR_NO_MEMORY;
    if (!(rc = run_one(a, &op, deadline, &r))) {
        const char **names = sc_calloc(count, sizeof *names);
        if (!names) {
            rc = SC_ERR_NO_MEMORY;
            goto out;
        }
        for (size_t i = 0; i < count; i++)
            names[i] = topics[i].name;
        if (op->ver >= 2)
            sc_kr_i32(&r);
        if (!sc_kr_array_len(&r, 0, 4, &n))
            for (int32_t i = 0; i < n; i++) {
                sc_kstr_t name, msg = {NULL, -1};
                sc_kr_string(&r, 0, &name);
                int16_t ec = sc_kr_i16(&r);
                if (op->ver >= 1)
                    sc_kr_string(&r, 1, &msg);
                if (r.err)
                    break;
                long k = name_index(names, count, name);
                if (k >= 0) {
                    results[k] = ec;
                    msg_set(a, (size_t)k, msg);
                }
            }
        if (r.err)
            rc = SC_ERR_BAD_FORMAT;
        sc_free(names);
    }
out:
    aop_free(op);
    return rc;
}

static int delete_topics_once(strata_admin_t *a, const char *const *names, size_t count,
                              int64_t deadline, strata_err_t *results);

strata_err_t strata_admin_delete_topics(strata_admin_t *a, const char *const *names, size_t count,
                                        int timeout_ms, strata_err_t *results)
{
    int64_t deadline;
    int rc;

    if (!a || !names || !count || !results)
        return -EINVAL;
    deadline = deadline_of(a, timeout_ms);
    for (int attempt = 0;; attempt++) {
        rc = delete_topics_once(a, names, count, deadline, results);
        if (rc || attempt == 2 || !all_not_controller(results, count) ||
            sc_mono_ms() + a->cl.conf->retry_backoff_ms >= deadline)
            return rc;
        backoff(a, deadline);
    }
}

static int delete_topics_once(strata_admin_t *a, const char *const *names, size_t count,
                              int64_t deadline, strata_err_t *results)
{
    int32_t node, n;
    int rc;
    sc_rd_t r;

    msgs_reset(a, count);
    for (size_t i = 0; i < count; i++)
        results[i] = STRATA_ERR_UNKNOWN_SERVER;
    if ((rc = controller_node(a, deadline, &node)))
        return rc;
    int64_t left = deadline - sc_mono_ms();
    names_ctx_t ctx = {names, count, 0, (int32_t)(left > 0 ? left : 1)};
    aop_t *op = aop_new(node, SC_KAFKA_API_DELETE_TOPICS, 0, 3, 0, enc_delete_topics, &ctx);
    if (!op)
        return SC_ERR_NO_MEMORY;
    if (!(rc = run_one(a, &op, deadline, &r))) {
        if (op->ver >= 1)
            sc_kr_i32(&r);
        if (!sc_kr_array_len(&r, 0, 4, &n))
            for (int32_t i = 0; i < n; i++) {
                sc_kstr_t name;
                sc_kr_string(&r, 0, &name);
                int16_t ec = sc_kr_i16(&r);
                long k = r.err ? -1 : name_index(names, count, name);
                if (k >= 0)
                    results[k] = ec;
            }
        if (r.err)
            rc = SC_ERR_BAD_FORMAT;
    }
    aop_free(op);
    return rc;
}

/* ---- configs ------------------------------------------------------------------------- */

strata_err_t strata_admin_describe_config(strata_admin_t *a, strata_resource_type_t type,
                                          const char *name, const char *const *keys,
                                          size_t key_count, int timeout_ms,
                                          strata_config_description_t **out)
{
    dconf_ctx_t ctx = {(int8_t)type, name, keys, keys ? key_count : 0};
    sc_rd_t r;
    int rc;

    if (!a || !name || !out)
        return -EINVAL;
    /* a broker resource is answered by that broker; name is its node id */
    int32_t node = ANY_NODE;
    if (type == STRATA_RESOURCE_BROKER && *name) {
        char *e;
        long id = strtol(name, &e, 10);
        if (!*e && id >= 0) {
            strata_metadata_t *md = NULL;
            static const char *const none[1] = {NULL};
            if ((rc = fetch_metadata(a, none, 0, deadline_of(a, timeout_ms), &md)))
                return rc;
            cl_ar_free(md);
            node = (int32_t)id;
        }
    }
    aop_t *op = aop_new(node, SC_KAFKA_API_DESCRIBE_CONFIGS, 0, 2, 1, enc_describe_configs, &ctx);
    if (!op)
        return SC_ERR_NO_MEMORY;
    if (!(rc = run_one(a, &op, deadline_of(a, timeout_ms), &r))) {
        strata_config_description_t *d = cl_ar_top(sizeof *d);
        if (!d)
            rc = SC_ERR_NO_MEMORY;
        else if ((rc = cl_admin_decode_describe_config(&r, op->ver, d)))
            cl_ar_free(d);
        else
            *out = d;
    }
    aop_free(op);
    return rc;
}

void strata_config_description_free(strata_config_description_t *d) { cl_ar_free(d); }

strata_err_t strata_admin_describe_configs(strata_admin_t *a,
                                           const strata_config_resource_t *resources,
                                           size_t count, int timeout_ms,
                                           strata_config_resource_t **out)
{
    int64_t deadline;
    int rc = 0;

    if (!a || !resources || !count || !out)
        return -EINVAL;
    deadline = deadline_of(a, timeout_ms);
    strata_config_resource_t *res = cl_ar_top(count * sizeof *res);
    if (!res)
        return SC_ERR_NO_MEMORY;
    for (size_t i = 0; i < count && !rc; i++) {
        const char **keys = NULL;
        strata_config_description_t *d = NULL;
        size_t nk = resources[i].entry_count;
        if (nk && !(keys = sc_calloc(nk, sizeof *keys))) {
            rc = SC_ERR_NO_MEMORY;
            break;
        }
        for (size_t j = 0; j < nk; j++)
            keys[j] = resources[i].entries[j].name;
        int64_t left = deadline - sc_mono_ms();
        rc = strata_admin_describe_config(a, resources[i].type, resources[i].name, keys, nk,
                                          left > 0 ? (int)left : 0, &d);
        sc_free(keys);
        if (rc)
            break;
        res[i].type = resources[i].type;
        res[i].err = d->err;
        if (!(res[i].name = cl_ar_strn(res, d->name, (int32_t)strlen(d->name))))
            rc = SC_ERR_NO_MEMORY;
        strata_config_entry_t *es = cl_ar_alloc(res, d->config_count * sizeof *es);
        if (!es)
            rc = SC_ERR_NO_MEMORY;
        for (size_t j = 0; es && j < d->config_count; j++) {
            const strata_config_info_t *c = &d->configs[j];
            es[j].name = cl_ar_strn(res, c->name, (int32_t)strlen(c->name));
            es[j].value = c->value ? cl_ar_strn(res, c->value, (int32_t)strlen(c->value)) : NULL;
            if (!es[j].name || (c->value && !es[j].value))
                rc = SC_ERR_NO_MEMORY;
        }
        res[i].entries = es;
        res[i].entry_count = es ? d->config_count : 0;
        cl_ar_free(d);
    }
    if (rc) {
        cl_ar_free(res);
        return rc;
    }
    *out = res;
    return 0;
}

void strata_config_resources_free(strata_config_resource_t *res, size_t count)
{
    cl_ar_free(res);
}

strata_err_t strata_admin_alter_configs(strata_admin_t *a,
                                        const strata_config_resource_t *resources, size_t count,
                                        int timeout_ms, strata_err_t *results)
{
    aconf_ctx_t ctx = {resources, count};
    sc_rd_t r;
    int32_t n;
    int rc;

    if (!a || !resources || !count || !results)
        return -EINVAL;
    msgs_reset(a, count);
    for (size_t i = 0; i < count; i++)
        results[i] = STRATA_ERR_UNKNOWN_SERVER;
    aop_t *op = aop_new(ANY_NODE, SC_KAFKA_API_ALTER_CONFIGS, 0, 1, 0, enc_alter_configs, &ctx);
    if (!op)
        return SC_ERR_NO_MEMORY;
    if (!(rc = run_one(a, &op, deadline_of(a, timeout_ms), &r))) {
        sc_kr_i32(&r);
        if (!sc_kr_array_len(&r, 0, 6, &n))
            for (int32_t i = 0; i < n; i++) {
                sc_kstr_t msg, name;
                int16_t ec = sc_kr_i16(&r);
                sc_kr_string(&r, 1, &msg);
                int8_t type = sc_kr_i8(&r);
                sc_kr_string(&r, 0, &name);
                if (r.err)
                    break;
                for (size_t k = 0; k < count; k++)
                    if ((int8_t)resources[k].type == type &&
                        strlen(resources[k].name) == (size_t)name.len &&
                        !memcmp(resources[k].name, name.p, (size_t)name.len)) {
                        results[k] = ec;
                        msg_set(a, k, msg);
                        break;
                    }
            }
        if (r.err)
            rc = SC_ERR_BAD_FORMAT;
    }
    aop_free(op);
    return rc;
}

/* ---- groups ----------------------------------------------------------------------------- */

static int retriable_coord(int err)
{
    return err == SC_ERR_COORDINATOR_NOT_AVAILABLE || err == SC_ERR_COORDINATOR_LOAD_IN_PROGRESS ||
           err == SC_ERR_NOT_COORDINATOR;
}

static void backoff(strata_admin_t *a, int64_t deadline)
{
    int64_t ms = a->cl.conf->retry_backoff_ms, left = deadline - sc_mono_ms();
    if (ms > left)
        ms = left;
    if (ms > 0)
        usleep((useconds_t)ms * 1000);
}

/* FindCoordinator for a group: *node, the broker learned. Retries while the
 * coordinator is loading / not available, until the deadline. */
static int find_coordinator(strata_admin_t *a, const char *group, int64_t deadline, int32_t *node)
{
    for (;;) {
        aop_t *op = aop_new(ANY_NODE, SC_KAFKA_API_FIND_COORDINATOR, 0, 2, 1,
                            enc_find_coordinator, group);
        sc_rd_t r;
        int rc;
        if (!op)
            return SC_ERR_NO_MEMORY;
        if (!(rc = run_one(a, &op, deadline, &r))) {
            sc_kstr_t msg, host;
            if (op->ver >= 1)
                sc_kr_i32(&r);
            int16_t ec = sc_kr_i16(&r);
            if (op->ver >= 1)
                sc_kr_string(&r, 1, &msg);
            int32_t id = sc_kr_i32(&r);
            sc_kr_string(&r, 0, &host);
            int32_t port = sc_kr_i32(&r);
            if (r.err)
                rc = SC_ERR_BAD_FORMAT;
            else if (ec)
                rc = ec;
            else if (!(rc = admin_learn(a, id, host.p, (size_t)host.len, port)))
                *node = id;
        }
        aop_free(op);
        if (!retriable_coord(rc) || sc_mono_ms() + a->cl.conf->retry_backoff_ms >= deadline)
            return rc;
        backoff(a, deadline);
    }
}

/* Group calls find the coordinator again after NOT_COORDINATOR-style answers. */
strata_err_t strata_admin_describe_group(strata_admin_t *a, const char *group_id, int timeout_ms,
                                         strata_group_description_t **out)
{
    int64_t deadline;
    int rc;

    if (!a || !group_id || !out)
        return -EINVAL;
    deadline = deadline_of(a, timeout_ms);
    for (;;) {
        int32_t node;
        sc_rd_t r;
        if ((rc = find_coordinator(a, group_id, deadline, &node)))
            return rc;
        aop_t *op = aop_new(node, SC_KAFKA_API_DESCRIBE_GROUPS, 0, 4, 1, enc_describe_groups,
                            group_id);
        if (!op)
            return SC_ERR_NO_MEMORY;
        strata_group_description_t *d = NULL;
        if (!(rc = run_one(a, &op, deadline, &r))) {
            if (!(d = cl_ar_top(sizeof *d)))
                rc = SC_ERR_NO_MEMORY;
            else if (!(rc = cl_admin_decode_describe_group(&r, op->ver, d)))
                d->coordinator_id = node;
        }
        aop_free(op);
        if (!rc && retriable_coord(d->err) &&
            sc_mono_ms() + a->cl.conf->retry_backoff_ms < deadline) {
            cl_ar_free(d);
            backoff(a, deadline);
            continue;
        }
        if (rc) {
            cl_ar_free(d);
            return rc;
        }
        *out = d;
        return 0;
    }
}

void strata_group_description_free(strata_group_description_t *d) { cl_ar_free(d); }

strata_err_t strata_admin_describe_groups(strata_admin_t *a, const char *const *group_ids,
                                          size_t count, int timeout_ms, strata_group_info_t **out)
{
    int64_t deadline;
    int rc = 0;

    if (!a || !group_ids || !count || !out)
        return -EINVAL;
    deadline = deadline_of(a, timeout_ms);
    strata_group_info_t *gs = cl_ar_top(count * sizeof *gs);
    if (!gs)
        return SC_ERR_NO_MEMORY;
    for (size_t i = 0; i < count; i++) {
        strata_group_description_t *d = NULL;
        int64_t left = deadline - sc_mono_ms();
        int err = strata_admin_describe_group(a, group_ids[i], left > 0 ? (int)left : 0, &d);
        gs[i].group_id = cl_ar_strn(gs, group_ids[i], (int32_t)strlen(group_ids[i]));
        if (err == STRATA_ERR_TIMED_OUT || err == SC_ERR_NO_MEMORY) {
            rc = err;
            break;
        }
        if (err) {
            gs[i].err = err;
            continue;
        }
        gs[i].err = d->err;
        gs[i].state = cl_ar_strn(gs, d->state, (int32_t)strlen(d->state));
        gs[i].protocol_type = cl_ar_strn(gs, d->protocol_type, (int32_t)strlen(d->protocol_type));
        gs[i].member_count = d->member_count;
        if (!gs[i].group_id || !gs[i].state || !gs[i].protocol_type)
            rc = SC_ERR_NO_MEMORY;
        cl_ar_free(d);
        if (rc)
            break;
    }
    if (rc) {
        cl_ar_free(gs);
        return rc;
    }
    *out = gs;
    return 0;
}

/* ListGroups goes to every broker (each lists the groups it coordinates). */
strata_err_t strata_admin_list_groups(strata_admin_t *a, int timeout_ms, strata_group_info_t **out,
                                      size_t *count)
{
    int64_t deadline;
    strata_metadata_t *md = NULL;
    aop_t **ops = NULL;
    size_t nb, total = 0;
    int rc;

    if (!a || !out || !count)
        return -EINVAL;
    deadline = deadline_of(a, timeout_ms);
    static const char *const none[1] = {NULL};
    if ((rc = fetch_metadata(a, none, 0, deadline, &md)))
        return rc;
    nb = md->broker_count;
    if (!(ops = sc_calloc(nb ? nb : 1, sizeof *ops))) {
        rc = SC_ERR_NO_MEMORY;
        goto out;
    }
    for (size_t i = 0; i < nb; i++)
        if (!(ops[i] = aop_new(md->brokers[i].node_id, SC_KAFKA_API_LIST_GROUPS, 0, 2, 1, NULL,
                               NULL))) {
            rc = SC_ERR_NO_MEMORY;
            goto out;
        }
    rc = run_ops(a, ops, nb, deadline);
    for (int pass = 0; pass < 2 && !rc; pass++) {
        strata_group_info_t *gs = NULL;
        size_t k = 0;
        if (pass == 1 && !(gs = cl_ar_top(total * sizeof *gs))) {
            rc = SC_ERR_NO_MEMORY;
            break;
        }
        for (size_t i = 0; i < nb && !rc; i++) {
            sc_rd_t r;
            int32_t n;
            if (ops[i]->err) {
                rc = ops[i]->err;
                break;
            }
            sc_rd_init(&r, ops[i]->resp.data, ops[i]->resp.len);
            if (ops[i]->ver >= 1)
                sc_kr_i32(&r);
            int16_t ec = sc_kr_i16(&r);
            if (sc_kr_array_len(&r, 0, 4, &n)) {
                rc = SC_ERR_BAD_FORMAT;
                break;
            }
            if (ec) {
                rc = ec;
                break;
            }
            for (int32_t j = 0; j < n; j++) {
                sc_kstr_t gid, pt;
                sc_kr_string(&r, 0, &gid);
                sc_kr_string(&r, 0, &pt);
                if (r.err)
                    break;
                if (pass == 0) {
                    total++;
                    continue;
                }
                gs[k].group_id = ar_str(gs, gid, &rc);
                gs[k].protocol_type = ar_str(gs, pt, &rc);
                k++;
            }
            if (r.err)
                rc = SC_ERR_BAD_FORMAT;
        }
        if (pass == 1) {
            if (rc) {
                cl_ar_free(gs);
            } else {
                *out = gs;
                *count = total;
            }
        }
    }
out:
    for (size_t i = 0; ops && i < nb; i++)
        aop_free(ops[i]);
    sc_free(ops);
    cl_ar_free(md);
    return rc;
}

void strata_group_infos_free(strata_group_info_t *groups, size_t count) { cl_ar_free(groups); }

/* ---- offsets --------------------------------------------------------------------------- */

void strata_topic_partition_list_free(strata_topic_partition_t *tps, size_t count)
{
    cl_ar_free(tps);
}

strata_err_t strata_admin_list_group_offsets(strata_admin_t *a, const char *group_id,
                                             const char *const *topics, size_t topic_count,
                                             int timeout_ms, strata_topic_partition_t **out,
                                             size_t *count)
{
    int64_t deadline;
    int rc;

    if (!a || !group_id || !out || !count || (topic_count && !topics))
        return -EINVAL;
    deadline = deadline_of(a, timeout_ms);
    for (;;) {
        int32_t node;
        sc_rd_t r;
        strata_topic_partition_t *all = NULL;
        size_t n = 0;
        int gerr = 0;
        if ((rc = find_coordinator(a, group_id, deadline, &node)))
            return rc;
        aop_t *op = aop_new(node, SC_KAFKA_API_OFFSET_FETCH, 2, 5, 1, enc_offset_fetch_all,
                            group_id);
        if (!op)
            return SC_ERR_NO_MEMORY;
        if (!(rc = run_one(a, &op, deadline, &r)))
            rc = cl_admin_decode_offset_fetch(&r, op->ver, &all, &n, &gerr);
        aop_free(op);
        if (rc)
            return rc;
        if (gerr) {
            cl_ar_free(all);
            if (retriable_coord(gerr) && sc_mono_ms() + a->cl.conf->retry_backoff_ms < deadline) {
                backoff(a, deadline);
                continue;
            }
            return gerr;
        }
        if (topic_count) { /* keep the asked topics only (in place) */
            size_t k = 0;
            for (size_t i = 0; i < n; i++)
                for (size_t j = 0; j < topic_count; j++)
                    if (!strcmp(all[i].topic, topics[j])) {
                        all[k++] = all[i];
                        break;
                    }
            n = k;
        }
        *out = all;
        *count = n;
        return 0;
    }
}

static int cmp_idx_topic(const void *x, const void *y, void *arg)
{
    const strata_topic_partition_t *tps = arg;
    return strcmp(tps[*(const size_t *)x].topic, tps[*(const size_t *)y].topic);
}

strata_err_t strata_admin_list_offsets(strata_admin_t *a, strata_topic_partition_t *tps,
                                       size_t count, int timeout_ms)
{
    int64_t deadline;
    strata_metadata_t *md = NULL;
    const char **names = NULL;
    size_t nn = 0, nreq = 0;
    int32_t *leader = NULL;
    size_t *idx = NULL, *rank = NULL;
    tps_ctx_t *ctx = NULL;
    aop_t **ops = NULL;
    int rc = 0;

    if (!a || (count && !tps))
        return -EINVAL;
    if (!count)
        return 0;
    deadline = deadline_of(a, timeout_ms);
    for (size_t i = 0; i < count; i++)
        tps[i].err = STRATA_ERR_UNKNOWN_SERVER;
    names = sc_calloc(count, sizeof *names);
    leader = sc_calloc(count, sizeof *leader);
    idx = sc_calloc(count, sizeof *idx);
    rank = sc_calloc(count, sizeof *rank);
    ctx = sc_calloc(count, sizeof *ctx);
    ops = sc_calloc(count, sizeof *ops);
    if (!names || !leader || !idx || !rank || !ctx || !ops) {
        rc = SC_ERR_NO_MEMORY;
        goto out;
    }
    for (size_t i = 0; i < count; i++) {
        size_t j = 0;
        while (j < nn && strcmp(names[j], tps[i].topic))
            j++;
        if (j == nn)
            names[nn++] = tps[i].topic;
    }
    if ((rc = fetch_metadata(a, names, nn, deadline, &md)))
        goto out;
    /* leader of each entry; entries without one fail now */
    for (size_t i = 0; i < count; i++) {
        leader[i] = -1;
        for (size_t t = 0; t < md->topic_count; t++) {
            const strata_topic_metadata_t *tm = &md->topics[t];
            if (strcmp(tm->name, tps[i].topic))
                continue;
            if (tm->err) {
                tps[i].err = tm->err;
                break;
            }
            tps[i].err = STRATA_ERR_UNKNOWN_TOPIC_OR_PARTITION;
            for (size_t p = 0; p < tm->partition_count; p++)
                if (tm->partitions[p].id == tps[i].partition) {
                    leader[i] = tm->partitions[p].leader;
                    tps[i].err = leader[i] >= 0 ? STRATA_ERR_UNKNOWN_SERVER
                                                : STRATA_ERR_LEADER_NOT_AVAILABLE;
                }
            break;
        }
    }
    /* Kafka rejects a partition named twice in one request: an entry's rank
     * is how many earlier entries name its partition, and there is one
     * request per (leader, rank); idx holds each request's entries, sorted
     * by topic */
    for (size_t i = 0; i < count; i++) {
        rank[i] = 0;
        for (size_t j = 0; j < i; j++)
            rank[i] += tps[j].partition == tps[i].partition && !strcmp(tps[j].topic, tps[i].topic);
    }
    size_t k = 0;
    for (size_t i = 0; i < count; i++) {
        if (leader[i] < 0)
            continue;
        int seen = 0;
        for (size_t j = 0; j < i && !seen; j++)
            seen = leader[j] == leader[i] && rank[j] == rank[i];
        if (seen)
            continue;
        size_t start = k;
        for (size_t j = i; j < count; j++)
            if (leader[j] == leader[i] && rank[j] == rank[i])
                idx[k++] = j;
        qsort_r(idx + start, k - start, sizeof *idx, cmp_idx_topic, tps);
        ctx[nreq] = (tps_ctx_t){NULL, tps, idx + start, k - start};
        if (!(ops[nreq] = aop_new(leader[i], SC_KAFKA_API_LIST_OFFSETS, 1, 3, 1, cl_admin_enc_list_offsets,
                                  &ctx[nreq]))) {
            rc = SC_ERR_NO_MEMORY;
            goto out;
        }
        nreq++;
    }
    rc = run_ops(a, ops, nreq, deadline);
    for (size_t q = 0; q < nreq; q++) {
        sc_rd_t r;
        int32_t nt;
        if (!ops[q])
            continue;
        if (ops[q]->err) {
            for (size_t i = 0; i < ctx[q].n; i++)
                tps[ctx[q].idx[i]].err = ops[q]->err;
            if (!rc)
                rc = ops[q]->err;
            continue;
        }
        sc_rd_init(&r, ops[q]->resp.data, ops[q]->resp.len);
        if (ops[q]->ver >= 2)
            sc_kr_i32(&r);
        if (sc_kr_array_len(&r, 0, 6, &nt))
            nt = 0;
        for (int32_t t = 0; t < nt && !r.err; t++) {
            sc_kstr_t name;
            int32_t np;
            sc_kr_string(&r, 0, &name);
            if (sc_kr_array_len(&r, 0, 22, &np))
                break;
            for (int32_t p = 0; p < np; p++) {
                int32_t part = sc_kr_i32(&r);
                int16_t ec = sc_kr_i16(&r);
                sc_kr_i64(&r); /* timestamp */
                int64_t off = sc_kr_i64(&r);
                if (r.err)
                    break;
                for (size_t i = 0; i < ctx[q].n; i++) {
                    strata_topic_partition_t *tp = &tps[ctx[q].idx[i]];
                    if (tp->partition == part && strlen(tp->topic) == (size_t)name.len &&
                        !memcmp(tp->topic, name.p, (size_t)name.len)) {
                        tp->err = ec;
                        if (!ec)
                            tp->offset = off;
                    }
                }
            }
        }
        if (r.err && !rc)
            rc = SC_ERR_BAD_FORMAT;
    }
out:
    for (size_t q = 0; ops && q < nreq; q++)
        aop_free(ops[q]);
    sc_free(ops);
    sc_free(ctx);
    sc_free(idx);
    sc_free(rank);
    sc_free(leader);
    sc_free(names);
    cl_ar_free(md);
    return rc;
}

strata_err_t strata_admin_alter_group_offsets(strata_admin_t *a, const char *group_id,
                                              strata_topic_partition_t *offsets, size_t count,
                                              int timeout_ms)
{
    int64_t deadline;
    size_t *idx;
    int rc;

    if (!a || !group_id || !offsets || !count)
        return -EINVAL;
    deadline = deadline_of(a, timeout_ms);
    if (!(idx = sc_calloc(count, sizeof *idx)))
        return SC_ERR_NO_MEMORY;
    for (size_t i = 0; i < count; i++) {
        idx[i] = i;
        offsets[i].err = STRATA_ERR_UNKNOWN_SERVER;
    }
    qsort_r(idx, count, sizeof *idx, cmp_idx_topic, offsets);
    tps_ctx_t ctx = {group_id, offsets, idx, count};
    for (;;) {
        int32_t node;
        sc_rd_t r;
        int32_t nt;
        if ((rc = find_coordinator(a, group_id, deadline, &node)))
            break;
        aop_t *op = aop_new(node, SC_KAFKA_API_OFFSET_COMMIT, 2, 7, 0, cl_admin_enc_offset_commit, &ctx);
        if (!op) {
            rc = SC_ERR_NO_MEMORY;
            break;
        }
        if (!(rc = run_one(a, &op, deadline, &r))) {
            int retry = 0;
            if (op->ver >= 3)
                sc_kr_i32(&r);
            if (sc_kr_array_len(&r, 0, 6, &nt))
                nt = 0;
            for (int32_t t = 0; t < nt && !r.err; t++) {
                sc_kstr_t name;
                int32_t np;
                sc_kr_string(&r, 0, &name);
                if (sc_kr_array_len(&r, 0, 6, &np))
                    break;
                for (int32_t p = 0; p < np; p++) {
                    int32_t part = sc_kr_i32(&r);
                    int16_t ec = sc_kr_i16(&r);
                    if (r.err)
                        break;
                    retry |= retriable_coord(ec);
                    for (size_t i = 0; i < count; i++)
                        if (offsets[i].partition == part &&
                            strlen(offsets[i].topic) == (size_t)name.len &&
                            !memcmp(offsets[i].topic, name.p, (size_t)name.len))
                            offsets[i].err = ec;
                }
            }
            if (r.err)
                rc = SC_ERR_BAD_FORMAT;
            if (!rc && retry && sc_mono_ms() + a->cl.conf->retry_backoff_ms < deadline) {
                aop_free(op);
                backoff(a, deadline);
                continue;
            }
        }
        aop_free(op);
        break;
    }
    sc_free(idx);
    if (!rc)
        for (size_t i = 0; i < count && !rc; i++)
            rc = offsets[i].err;
    return rc;
}
