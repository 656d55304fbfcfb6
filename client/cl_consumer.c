/*
 * cl_consumer -- strata_consumer_t in assign mode: ListOffsets, Fetch,
 * decode, hand records to strata_consumer_poll.
 *
 * Partition life (ctp_t.state):
 *
 *   NEED_OFFSET --ListOffsets--> OFFSET_WAIT --answer--> ACTIVE --Fetch--> ...
 *        ^                                                  |
 *        +---- OFFSET_OUT_OF_RANGE with earliest/latest ----+
 *   STOPPED: a partition error the application must see (reset policy
 *   "error", an unsupported codec, a corrupt batch); only a seek restarts it.
 *
 * Fetching: at most one Fetch in flight per broker, carrying every ACTIVE
 * partition that broker leads whose buffered records are below
 * max.partition.fetch.bytes. The next Fetch goes out as soon as the previous
 * answer is in, while the application still drains the buffer: that is the
 * pipelining, and the buffer bound is the back-pressure. The broker long-polls
 * (fetch.wait.max.ms / fetch.min.bytes), so the request timeout is
 * request.timeout.ms plus the wait.
 *
 * A Fetch returns whole batches starting with the batch that contains the
 * fetch offset, so records below it are skipped; the next fetch offset is the
 * batch's last offset + 1 (covers control batches and compacted gaps). A
 * truncated trailing batch is ignored and fetched again next time.
 *
 * Stale answers: a seek bumps the partition's gen, an assign bumps the
 * consumer's assign_gen (and replaces the ctp array); requests remember both
 * and an answer for an older generation is dropped. Buffered records carry
 * the gen too, so a seek also drops what was buffered.
 *
 * Threading: everything here is guarded by cl.mu. The I/O thread fills the
 * record queue; strata_consumer_poll takes from it and waits on cl.cond.
 */
#include "cl_batch.h"
#include "cl_client.h"
#include "cl_group.h"

#include "sc_endian.h"
#include "sc_err.h"
#include "sc_log.h"
#include "sc_mem.h"
#include "sc_time.h"

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define LOGSYS "consumer"

/* TP_NEED_COMMITTED / TP_COMMITTED_WAIT: a STRATA_OFFSET_STORED start with a
 * group.id; cl_group.c asks the coordinator (OffsetFetch) and calls
 * cl_consumer_tp_committed. */
enum { TP_NEED_OFFSET = 0, TP_OFFSET_WAIT, TP_ACTIVE, TP_STOPPED, TP_NEED_COMMITTED,
       TP_COMMITTED_WAIT };

typedef struct {
    cl_topic_t *t;
    int32_t part;
    int state;
    int64_t want;      /* TP_NEED_OFFSET: STRATA_OFFSET_BEGINNING or _END */
    int64_t fetch_pos; /* next offset to fetch */
    int64_t pos;       /* next offset to hand to the application */
    uint64_t gen;
    int fetching;
    int64_t retry_at_ms;
    size_t buffered; /* bytes of this partition's records in the queue */
} ctp_t;

/* A consumed record: one allocation, the public message first-class inside. */
typedef struct cmsg {
    struct cmsg *next;
    size_t tp;
    uint64_t gen;
    size_t size;
    strata_message_t m;
} cmsg_t;

struct strata_consumer {
    cl_client_t cl;
    ctp_t *tps;
    size_t ntps;
    uint64_t assign_gen;
    cmsg_t *qhead, *qtail;
    cl_broker_t **busy; /* brokers with a Fetch in flight */
    size_t nbusy, busy_cap;
    int16_t isolation;
    cl_group_t *grp; /* group.id set: membership and commits (cl_group.c) */
    int64_t poll_ms; /* when the application last entered or left poll */
    int in_poll;
};

/* One request's partitions, to match the answer. */
typedef struct {
    cl_broker_t *b;
    uint64_t assign_gen;
    int16_t ver;
    int n;
    struct {
        size_t tp;
        uint64_t gen;
        int64_t off;
    } e[];
} creq_t;

static int64_t buffer_limit(const strata_consumer_t *c)
{
    return c->cl.conf->max_partition_fetch_bytes;
}

/* ---- the record queue ------------------------------------------------------------- */

static void q_push(strata_consumer_t *c, cmsg_t *m)
{
    m->next = NULL;
    if (c->qtail)
        c->qtail->next = m;
    else
        c->qhead = m;
    c->qtail = m;
    if (m->tp < c->ntps)
        c->tps[m->tp].buffered += m->size;
}

/* Drops every queued record of tp (SIZE_MAX = all). */
static void q_drop(strata_consumer_t *c, size_t tp)
{
    cmsg_t **pp = &c->qhead, *m;

    c->qtail = NULL;
    while ((m = *pp)) {
        if (tp == SIZE_MAX || m->tp == tp) {
            *pp = m->next;
            if (m->tp < c->ntps)
                c->tps[m->tp].buffered -= m->size;
            sc_free(m);
        } else {
            c->qtail = m;
            pp = &m->next;
        }
    }
}

/* A message with no payload carrying a partition error. */
static void push_error(strata_consumer_t *c, size_t tp, int err, int64_t offset)
{
    ctp_t *p = &c->tps[tp];
    size_t tl = strlen(p->t->name) + 1;
    cmsg_t *m = sc_calloc(1, sizeof *m + tl);

    if (!m)
        return;
    memcpy(m + 1, p->t->name, tl);
    m->tp = tp;
    m->gen = p->gen;
    m->size = sizeof *m + tl;
    m->m.err = err;
    m->m.topic = (const char *)(m + 1);
    m->m.partition = p->part;
    m->m.offset = offset;
    q_push(c, m);
    pthread_cond_broadcast(&c->cl.cond);
}

/* ---- decoding ---------------------------------------------------------------------- */

typedef struct {
    strata_consumer_t *c;
    size_t tp;
    int64_t min_off;
    int added;
} dec_t;

static int on_record(void *arg, const cl_batch_info_t *bi, const cl_record_t *r)
{
    dec_t *d = arg;
    ctp_t *p = &d->c->tps[d->tp];
    size_t tl = strlen(p->t->name) + 1, size;
    cmsg_t *m;
    uint8_t *x;

    (void)bi;
    if (r->offset < d->min_off)
        return 0;
    size = sizeof *m + r->header_count * sizeof(strata_header_t) + tl + (size_t)r->key_len +
           (size_t)r->value_len;
    for (size_t i = 0; i < r->header_count; i++)
        size += r->headers[i].key_len + r->headers[i].value_len;
    if (!(m = sc_malloc(size)))
        return SC_ERR_NO_MEMORY;
    memset(m, 0, sizeof *m);
    m->tp = d->tp;
    m->gen = p->gen;
    m->size = size;
    m->m.partition = p->part;
    m->m.offset = r->offset;
    m->m.timestamp = r->timestamp;
    strata_header_t *h = (strata_header_t *)(m + 1);
    x = (uint8_t *)(h + r->header_count);
    for (size_t i = 0; i < r->header_count; i++) {
        h[i].key = (const char *)x;
        h[i].key_len = r->headers[i].key_len;
        if (h[i].key_len)
            memcpy(x, r->headers[i].key, h[i].key_len);
        x += h[i].key_len;
        h[i].value = NULL;
        h[i].value_len = 0;
        if (r->headers[i].value) {
            h[i].value = x;
            h[i].value_len = r->headers[i].value_len;
            if (h[i].value_len)
                memcpy(x, r->headers[i].value, h[i].value_len);
            x += h[i].value_len;
        }
    }
    m->m.headers = r->header_count ? h : NULL;
    m->m.header_count = r->header_count;
    memcpy(x, p->t->name, tl);
    m->m.topic = (const char *)x;
    x += tl;
    if (r->key) {
        m->m.key = x;
        m->m.key_len = (size_t)r->key_len;
        if (r->key_len)
            memcpy(x, r->key, (size_t)r->key_len);
        x += r->key_len;
    }
    if (r->value) {
        m->m.value = x;
        m->m.value_len = (size_t)r->value_len;
        if (r->value_len)
            memcpy(x, r->value, (size_t)r->value_len);
    }
    q_push(d->c, m);
    d->added++;
    return 0;
}

/* Decodes the records area of one partition of a Fetch answer. Advances
 * fetch_pos; stops the partition on a batch it cannot read. */
static void decode_records(strata_consumer_t *c, size_t tp, const uint8_t *p, size_t n)
{
    ctp_t *t = &c->tps[tp];
    dec_t d = {.c = c, .tp = tp};

    while (n >= 17) {
        int64_t base = (int64_t)sc_load_be64(p);
        int32_t blen = (int32_t)sc_load_be32(p + 8);
        if (blen < 0 || (size_t)blen + 12 > n)
            break; /* truncated trailing batch: fetched again next time */
        size_t bn = (size_t)blen + 12;
        int64_t last = base;
        if (p[16] != 2) {
            SC_WARN(LOGSYS, "%s [%d] offset %lld: message format v%d not supported",
                    t->t->name, t->part, (long long)base, p[16]);
            push_error(c, tp, SC_ERR_UNSUPPORTED_VERSION, base);
            t->state = TP_STOPPED;
            break;
        }
        if (bn >= 27)
            last = base + (int32_t)sc_load_be32(p + 23);
        if (last >= t->fetch_pos) {
            cl_batch_info_t bi;
            d.min_off = t->fetch_pos;
            int rc = cl_batch_decode(p, bn, (int)c->cl.conf->check_crcs, on_record, &d, &bi);
            if (rc == SC_ERR_NO_MEMORY) {
                /* Records already queued stay; the rest is fetched again. */
                break;
            }
            if (rc) {
                SC_WARN(LOGSYS, "%s [%d] batch at offset %lld: %s", t->t->name, t->part,
                        (long long)base, rc == SC_ERR_UNSUPPORTED_COMPRESSION_TYPE
                                             ? "compression codec not supported by libstrata"
                                             : sc_err_str(rc));
                push_error(c, tp, rc, base > t->fetch_pos ? base : t->fetch_pos);
                t->state = TP_STOPPED;
                break;
            }
        }
        if (last + 1 > t->fetch_pos)
            t->fetch_pos = last + 1;
        p += bn;
        n -= bn;
    }
    if (d.added)
        pthread_cond_broadcast(&c->cl.cond);
}

/* ---- requests ------------------------------------------------------------------------ */

static int retriable(int err)
{
    switch (err) {
    case SC_ERR_UNKNOWN_TOPIC_OR_PARTITION:
    case SC_ERR_LEADER_NOT_AVAILABLE:
    case SC_ERR_NOT_LEADER_OR_FOLLOWER:
    case SC_ERR_REQUEST_TIMED_OUT:
    case SC_ERR_NETWORK_EXCEPTION:
    case SC_ERR_KAFKA_STORAGE_ERROR:
    case SC_ERR_BAD_FORMAT:
        return 1;
    default:
        return err < 0 && err > -4096;
    }
}

/* A partition request failed with err: back off and retry, or stop. */
static void tp_failed(strata_consumer_t *c, size_t tp, int err, int64_t now)
{
    ctp_t *t = &c->tps[tp];

    if (retriable(err) || err == SC_ERR_CLOSED) {
        t->retry_at_ms = now + c->cl.conf->retry_backoff_ms;
        if (err > 0 || err == SC_ERR_BAD_FORMAT)
            cl_metadata_refresh(&c->cl);
        return;
    }
    SC_WARN(LOGSYS, "%s [%d]: %s", t->t->name, t->part, sc_err_str(err));
    push_error(c, tp, err, t->fetch_pos);
    t->state = TP_STOPPED;
}

static creq_t *creq_new(strata_consumer_t *c, cl_broker_t *b, int n, int16_t ver)
{
    creq_t *r = sc_calloc(1, sizeof *r + (size_t)n * sizeof r->e[0]);
    if (r) {
        r->b = b;
        r->assign_gen = c->assign_gen;
        r->ver = ver;
    }
    return r;
}

/* The entry of r for (name, part), or -1. */
static int creq_find(strata_consumer_t *c, creq_t *r, const sc_kstr_t *name, int32_t part)
{
    for (int i = 0; i < r->n; i++) {
        ctp_t *t = &c->tps[r->e[i].tp];
        if (t->part == part && strlen(t->t->name) == (size_t)name->len &&
            !memcmp(t->t->name, name->p, (size_t)name->len))
            return i;
    }
    return -1;
}

static void on_list_offsets(cl_client_t *cl, cl_broker_t *b, int err, sc_rd_t *r, void *arg)
{
    strata_consumer_t *c = (strata_consumer_t *)cl;
    creq_t *q = arg;
    int64_t now = sc_mono_ms();
    int32_t nt, np;
    int *done = NULL;

    if (q->assign_gen != c->assign_gen)
        goto out;
    if (!(done = sc_calloc((size_t)q->n + 1, sizeof *done)))
        err = SC_ERR_NO_MEMORY;
    if (err)
        goto fail;
    if (q->ver >= 2)
        sc_kr_i32(r);
    if (sc_kr_array_len(r, 0, 6, &nt))
        goto bad;
    for (int32_t i = 0; i < nt; i++) {
        sc_kstr_t name;
        sc_kr_string(r, 0, &name);
        if (sc_kr_array_len(r, 0, 22, &np))
            goto bad;
        for (int32_t j = 0; j < np; j++) {
            int32_t part = sc_kr_i32(r);
            int16_t ec = sc_kr_i16(r);
            sc_kr_i64(r); /* timestamp */
            int64_t off = sc_kr_i64(r);
            if (r->err)
                goto bad;
            int k = creq_find(c, q, &name, part);
            if (k < 0 || done[k])
                continue;
            done[k] = 1;
            ctp_t *t = &c->tps[q->e[k].tp];
            if (t->gen != q->e[k].gen || t->state != TP_OFFSET_WAIT)
                continue;
            if (!ec && off < 0)
                ec = SC_ERR_BAD_FORMAT;
            if (ec) {
                t->state = TP_NEED_OFFSET;
                tp_failed(c, q->e[k].tp, ec, now);
                continue;
            }
            t->pos = t->fetch_pos = off;
            t->state = TP_ACTIVE;
            SC_DEBUG(LOGSYS, "%s [%d]: starting at offset %lld", t->t->name, t->part,
                     (long long)off);
        }
    }
    err = SC_ERR_NETWORK_EXCEPTION; /* for partitions the broker left out */
    goto fail;
bad:
    SC_WARN(LOGSYS, "broker %s:%d: malformed ListOffsets response", b->host, b->port);
    err = SC_ERR_BAD_FORMAT;
fail:
    for (int k = 0; k < q->n; k++) {
        ctp_t *t = &c->tps[q->e[k].tp];
        if ((done && done[k]) || t->gen != q->e[k].gen || t->state != TP_OFFSET_WAIT)
            continue;
        t->state = TP_NEED_OFFSET;
        tp_failed(c, q->e[k].tp, err, now);
    }
out:
    sc_free(done);
    sc_free(q);
}

/* Sends one ListOffsets to b for every partition it leads that needs one. */
static void send_list_offsets(strata_consumer_t *c, cl_broker_t *b, int64_t now)
{
    cl_client_t *cl = &c->cl;
    int16_t ver = cl_broker_version(b, SC_KAFKA_API_LIST_OFFSETS, 1, 3);
    sc_buf_t body;
    sc_kw_t w;
    creq_t *q = NULL;
    int n = 0;

    for (size_t i = 0; i < c->ntps; i++) {
        ctp_t *t = &c->tps[i];
        if (t->state == TP_NEED_OFFSET && t->retry_at_ms <= now && t->part < t->t->nparts &&
            t->t->parts[t->part].leader == b->node_id)
            n++;
    }
    if (!n)
        return;
    if (ver < 0) {
        SC_ERROR(LOGSYS, "broker %s:%d supports no ListOffsets v1-3", b->host, b->port);
        for (size_t i = 0; i < c->ntps; i++)
            if (c->tps[i].state == TP_NEED_OFFSET && c->tps[i].part < c->tps[i].t->nparts &&
                c->tps[i].t->parts[c->tps[i].part].leader == b->node_id)
                tp_failed(c, i, SC_ERR_UNSUPPORTED_VERSION, now);
        return;
    }
    if (!(q = creq_new(c, b, n, ver)))
        return;
    sc_buf_init(&body);
    sc_kw_init(&w, &body);
    sc_kw_i32(&w, -1);
    if (ver >= 2)
        sc_kw_i8(&w, (int8_t)c->isolation);
    sc_kw_array_len(&w, n); /* one topic entry per partition: simple and valid */
    for (size_t i = 0; i < c->ntps; i++) {
        ctp_t *t = &c->tps[i];
        if (!(t->state == TP_NEED_OFFSET && t->retry_at_ms <= now && t->part < t->t->nparts &&
              t->t->parts[t->part].leader == b->node_id))
            continue;
        sc_kw_cstr(&w, 0, t->t->name);
        sc_kw_array_len(&w, 1);
        sc_kw_i32(&w, t->part);
        sc_kw_i64(&w, t->want == STRATA_OFFSET_BEGINNING ? -2 : -1);
        q->e[q->n].tp = i;
        q->e[q->n].gen = t->gen;
        q->n++;
    }
    if (w.err || cl_request(cl, b, SC_KAFKA_API_LIST_OFFSETS, ver, &body, 0,
                            cl->conf->request_timeout_ms, on_list_offsets, q)) {
        sc_free(q);
        goto out;
    }
    for (int k = 0; k < q->n; k++)
        c->tps[q->e[k].tp].state = TP_OFFSET_WAIT;
out:
    sc_buf_fini(&body);
}

static int busy_find(strata_consumer_t *c, cl_broker_t *b)
{
    for (size_t i = 0; i < c->nbusy; i++)
        if (c->busy[i] == b)
            return (int)i;
    return -1;
}

static void busy_clear(strata_consumer_t *c, cl_broker_t *b)
{
    int i = busy_find(c, b);
    if (i >= 0)
        c->busy[i] = c->busy[--c->nbusy];
}

static void on_fetch(cl_client_t *cl, cl_broker_t *b, int err, sc_rd_t *r, void *arg)
{
    strata_consumer_t *c = (strata_consumer_t *)cl;
    creq_t *q = arg;
    int64_t now = sc_mono_ms();
    int32_t nt, np;
    int *done = NULL;

    busy_clear(c, q->b);
    if (q->assign_gen != c->assign_gen)
        goto out;
    for (int k = 0; k < q->n; k++)
        c->tps[q->e[k].tp].fetching = 0;
    if (!(done = sc_calloc((size_t)q->n + 1, sizeof *done)))
        err = SC_ERR_NO_MEMORY;
    if (err)
        goto fail;
    sc_kr_i32(r); /* throttle */
    if (q->ver >= 7) {
        int16_t ec = sc_kr_i16(r);
        sc_kr_i32(r); /* session id */
        if (!r->err && ec) {
            err = ec;
            goto fail;
        }
    }
    if (sc_kr_array_len(r, 0, 6, &nt))
        goto bad;
    for (int32_t i = 0; i < nt; i++) {
        sc_kstr_t name;
        sc_kr_string(r, 0, &name);
        if (sc_kr_array_len(r, 0, 30, &np))
            goto bad;
        for (int32_t j = 0; j < np; j++) {
            int32_t part = sc_kr_i32(r), naborted;
            int16_t ec = sc_kr_i16(r);
            sc_kbytes_t recs;
            sc_kr_i64(r); /* high watermark */
            sc_kr_i64(r); /* last stable offset */
            if (q->ver >= 5)
                sc_kr_i64(r); /* log start offset */
            if (sc_kr_array_len(r, 1, 16, &naborted))
                goto bad;
            for (int32_t a = 0; a < naborted; a++)
                sc_kr_i64(r), sc_kr_i64(r);
            if (q->ver >= 11)
                sc_kr_i32(r); /* preferred read replica */
            if (sc_kr_bytes(r, 1, &recs) || r->err)
                goto bad;
            int k = creq_find(c, q, &name, part);
            if (k < 0 || done[k])
                continue;
            done[k] = 1;
            size_t tp = q->e[k].tp;
            ctp_t *t = &c->tps[tp];
            if (t->gen != q->e[k].gen || t->state != TP_ACTIVE || t->fetch_pos != q->e[k].off)
                continue;
            if (ec == SC_ERR_OFFSET_OUT_OF_RANGE) {
                int64_t policy = c->cl.conf->auto_offset_reset;
                if (policy == CL_RESET_ERROR) {
                    SC_WARN(LOGSYS, "%s [%d]: offset %lld out of range", t->t->name, t->part,
                            (long long)t->fetch_pos);
                    push_error(c, tp, ec, t->fetch_pos);
                    t->state = TP_STOPPED;
                } else {
                    SC_INFO(LOGSYS, "%s [%d]: offset %lld out of range, resetting to %s",
                            t->t->name, t->part, (long long)t->fetch_pos,
                            policy == CL_RESET_EARLIEST ? "earliest" : "latest");
                    t->state = TP_NEED_OFFSET;
                    t->want = policy == CL_RESET_EARLIEST ? STRATA_OFFSET_BEGINNING
                                                          : STRATA_OFFSET_END;
                }
                continue;
            }
            if (ec) {
                tp_failed(c, tp, ec, now);
                continue;
            }
            if (recs.len > 0)
                decode_records(c, tp, recs.p, (size_t)recs.len);
        }
    }
    goto out;
bad:
    SC_WARN(LOGSYS, "broker %s:%d: malformed Fetch v%d response", b->host, b->port, q->ver);
    err = SC_ERR_BAD_FORMAT;
fail:
    for (int k = 0; k < q->n; k++)
        if ((!done || !done[k]) && c->tps[q->e[k].tp].gen == q->e[k].gen &&
            c->tps[q->e[k].tp].state == TP_ACTIVE)
            tp_failed(c, q->e[k].tp, err, now);
out:
    sc_free(done);
    sc_free(q);
}

static int fetchable(const strata_consumer_t *c, const ctp_t *t, const cl_broker_t *b,
                     int64_t now)
{
    return t->state == TP_ACTIVE && !t->fetching && t->retry_at_ms <= now &&
           (int64_t)t->buffered < buffer_limit(c) && t->part < t->t->nparts &&
           t->t->parts[t->part].leader == b->node_id;
}

static void send_fetch(strata_consumer_t *c, cl_broker_t *b, int64_t now)
{
    cl_client_t *cl = &c->cl;
    const strata_conf_t *cf = cl->conf;
    int16_t ver;
    sc_buf_t body;
    sc_kw_t w;
    creq_t *q = NULL;
    int n = 0;

    if (busy_find(c, b) >= 0)
        return;
    for (size_t i = 0; i < c->ntps; i++)
        n += fetchable(c, &c->tps[i], b, now);
    if (!n)
        return;
    if ((ver = cl_broker_version(b, SC_KAFKA_API_FETCH, 4, 11)) < 0) {
        SC_ERROR(LOGSYS, "broker %s:%d supports no Fetch v4-11", b->host, b->port);
        for (size_t i = 0; i < c->ntps; i++)
            if (fetchable(c, &c->tps[i], b, now))
                tp_failed(c, i, SC_ERR_UNSUPPORTED_VERSION, now);
        return;
    }
    if (c->nbusy == c->busy_cap) {
        size_t ncap = c->busy_cap ? c->busy_cap * 2 : 4;
        cl_broker_t **nb = sc_realloc(c->busy, ncap * sizeof *nb);
        if (!nb)
            return;
        c->busy = nb;
        c->busy_cap = ncap;
    }
    if (!(q = creq_new(c, b, n, ver)))
        return;
    sc_buf_init(&body);
    sc_kw_init(&w, &body);
    sc_kw_i32(&w, -1); /* replica id */
    sc_kw_i32(&w, (int32_t)cf->fetch_wait_max_ms);
    sc_kw_i32(&w, (int32_t)cf->fetch_min_bytes);
    sc_kw_i32(&w, cf->fetch_max_bytes > 0 ? (int32_t)cf->fetch_max_bytes : INT32_MAX);
    sc_kw_i8(&w, (int8_t)c->isolation);
    if (ver >= 7) {
        sc_kw_i32(&w, 0);  /* session id: none */
        sc_kw_i32(&w, -1); /* session epoch: full fetch, no session */
    }
    sc_kw_array_len(&w, n); /* one topic entry per partition */
    for (size_t i = 0; i < c->ntps; i++) {
        ctp_t *t = &c->tps[i];
        if (!fetchable(c, t, b, now))
            continue;
        sc_kw_cstr(&w, 0, t->t->name);
        sc_kw_array_len(&w, 1);
        sc_kw_i32(&w, t->part);
        if (ver >= 9)
            sc_kw_i32(&w, -1); /* current leader epoch: unchecked */
        sc_kw_i64(&w, t->fetch_pos);
        if (ver >= 5)
            sc_kw_i64(&w, -1); /* log start offset: followers only */
        sc_kw_i32(&w, (int32_t)cf->max_partition_fetch_bytes);
        q->e[q->n].tp = i;
        q->e[q->n].gen = t->gen;
        q->e[q->n].off = t->fetch_pos;
        q->n++;
    }
    if (ver >= 7)
        sc_kw_array_len(&w, 0); /* forgotten topics */
    if (ver >= 11)
        sc_kw_string(&w, "", 0); /* rack id */
    if (w.err || cl_request(cl, b, SC_KAFKA_API_FETCH, ver, &body, 0,
                            cf->request_timeout_ms + cf->fetch_wait_max_ms, on_fetch, q)) {
        sc_free(q);
        goto out;
    }
    for (int k = 0; k < q->n; k++)
        c->tps[q->e[k].tp].fetching = 1;
    c->busy[c->nbusy++] = b;
out:
    sc_buf_fini(&body);
}

static int64_t serve(cl_client_t *cl, int64_t now)
{
    strata_consumer_t *c = (strata_consumer_t *)cl;
    int64_t next = INT64_MAX;
    int refresh = 0;

    if (c->grp)
        next = cl_group_serve(c->grp, now);

    for (size_t i = 0; i < c->ntps; i++) {
        ctp_t *t = &c->tps[i];
        if (t->state != TP_NEED_OFFSET && t->state != TP_ACTIVE)
            continue;
        if (t->retry_at_ms > now) {
            if (t->retry_at_ms < next)
                next = t->retry_at_ms;
            continue;
        }
        if (t->part >= t->t->nparts || t->t->parts[t->part].leader < 0) {
            refresh = 1;
            continue;
        }
        cl_broker_t *b = cl_broker_find(cl, t->t->parts[t->part].leader);
        if (!b)
            refresh = 1;
        else if (b->state == CL_BK_DOWN)
            cl_broker_connect(cl, b, now);
        if (b && b->state == CL_BK_DOWN && b->retry_at_ms < next)
            next = b->retry_at_ms;
    }
    if (refresh)
        cl_metadata_refresh(cl);
    for (cl_broker_t *b = cl->brokers; b; b = b->next) {
        if (b->state != CL_BK_UP || b->node_id < 0)
            continue;
        send_list_offsets(c, b, now);
        send_fetch(c, b, now);
    }
    return next;
}

static void deliver(cl_client_t *cl)
{
    strata_consumer_t *c = (strata_consumer_t *)cl;
    if (c->grp)
        cl_group_deliver(c->grp);
}

static const cl_role_t consumer_role = {
    .serve = serve,
    .deliver = deliver,
};

/* ---- public API ------------------------------------------------------------------------ */

strata_err_t strata_consumer_new(const strata_conf_t *conf, strata_consumer_t **out, char *errstr,
                                 size_t errstr_size)
{
    strata_consumer_t *c = NULL;
    strata_conf_t *cf = NULL;
    int rc = 0;

    if (!out)
        return -EINVAL;
    if (errstr && errstr_size)
        errstr[0] = 0;
    cf = conf ? strata_conf_dup(conf) : strata_conf_new();
    if (!cf || !(c = sc_calloc(1, sizeof *c))) {
        rc = SC_ERR_NO_MEMORY;
        goto out;
    }
    c->isolation = (int16_t)cf->isolation_level;
    c->poll_ms = sc_mono_ms();
    if (cf->group_id && cf->group_id[0] && !(c->grp = cl_group_new(c, &c->cl, cf))) {
        rc = SC_ERR_NO_MEMORY;
        goto out;
    }
    if ((rc = cl_client_init(&c->cl, cf, &consumer_role, c, errstr, errstr_size))) {
        cl_group_free(c->grp);
        c->grp = NULL;
        goto out;
    }
    cf = NULL; /* the client owns it */
    *out = c;
    c = NULL;
out:
    strata_conf_free(cf);
    sc_free(c);
    return rc;
}

/* Applies a start offset to t (mu held). grouped: STORED means the group's
 * committed offset. */
static void tp_start(ctp_t *t, int64_t offset, int64_t reset_policy, int grouped)
{
    t->gen++;
    t->retry_at_ms = 0;
    if (offset == STRATA_OFFSET_STORED && grouped) {
        t->state = TP_NEED_COMMITTED;
        t->pos = t->fetch_pos = STRATA_OFFSET_INVALID;
        return;
    }
    if (offset >= 0) {
        t->state = TP_ACTIVE;
        t->pos = t->fetch_pos = offset;
        return;
    }
    t->state = TP_NEED_OFFSET;
    t->pos = t->fetch_pos = STRATA_OFFSET_INVALID;
    if (offset == STRATA_OFFSET_BEGINNING)
        t->want = STRATA_OFFSET_BEGINNING;
    else if (offset == STRATA_OFFSET_END)
        t->want = STRATA_OFFSET_END;
    else /* _STORED without a group: auto.offset.reset */
        t->want = reset_policy == CL_RESET_EARLIEST ? STRATA_OFFSET_BEGINNING : STRATA_OFFSET_END;
}

static int offset_valid(int64_t off)
{
    return off >= 0 || off == STRATA_OFFSET_BEGINNING || off == STRATA_OFFSET_END ||
           off == STRATA_OFFSET_STORED;
}

strata_err_t strata_consumer_assign(strata_consumer_t *c, const strata_topic_partition_t *tps,
                                    size_t count)
{
    ctp_t *nt = NULL;
    int rc = 0;

    if (!c || (count && !tps))
        return -EINVAL;
    for (size_t i = 0; i < count; i++) {
        if (!tps[i].topic || !tps[i].topic[0] || strlen(tps[i].topic) > 249 ||
            tps[i].partition < 0 || !offset_valid(tps[i].offset))
            return -EINVAL;
        for (size_t j = 0; j < i; j++)
            if (tps[j].partition == tps[i].partition && !strcmp(tps[j].topic, tps[i].topic))
                return -EINVAL;
    }
    if (count && !(nt = sc_calloc(count, sizeof *nt)))
        return SC_ERR_NO_MEMORY;
    pthread_mutex_lock(&c->cl.mu);
    if (c->cl.stopping) {
        rc = SC_ERR_CLOSED;
        goto unlock;
    }
    if (cl_group_subscribed(c->grp)) {
        rc = -EINVAL; /* subscribed: the group assigns */
        goto unlock;
    }
    for (size_t i = 0; i < count; i++) {
        if (!(nt[i].t = cl_topic_get(&c->cl, tps[i].topic))) {
            rc = SC_ERR_NO_MEMORY;
            goto unlock;
        }
        nt[i].part = tps[i].partition;
        tp_start(&nt[i], tps[i].offset, c->cl.conf->auto_offset_reset, c->grp != NULL);
    }
    q_drop(c, SIZE_MAX);
    sc_free(c->tps);
    c->tps = nt;
    c->ntps = count;
    c->assign_gen++;
    nt = NULL;
unlock:
    pthread_mutex_unlock(&c->cl.mu);
    sc_free(nt);
    if (!rc)
        cl_client_wake(&c->cl);
    return rc;
}

strata_err_t strata_consumer_poll(strata_consumer_t *c, int timeout_ms, strata_message_t **out)
{
    struct timespec dl;
    cmsg_t *m = NULL;
    int wake = 0;

    if (!c || !out)
        return -EINVAL;
    if (cl_client_on_io_thread(&c->cl))
        return -EDEADLK;
    clock_gettime(CLOCK_REALTIME, &dl);
    if (timeout_ms > 0) {
        dl.tv_sec += timeout_ms / 1000;
        dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
        if (dl.tv_nsec >= 1000000000L) {
            dl.tv_sec++;
            dl.tv_nsec -= 1000000000L;
        }
    }
    pthread_mutex_lock(&c->cl.mu);
    c->in_poll++;
    c->poll_ms = sc_mono_ms();
    if (c->grp)
        cl_group_polled(c->grp);
    for (;;) {
        while (c->qhead && c->qhead->tp != SIZE_MAX && /* SIZE_MAX: a group error */
               (c->qhead->tp >= c->ntps || c->qhead->gen != c->tps[c->qhead->tp].gen)) {
            cmsg_t *s = c->qhead; /* defensive: seek and assign drop these already */
            c->qhead = s->next;
            if (!c->qhead)
                c->qtail = NULL;
            if (s->tp < c->ntps)
                c->tps[s->tp].buffered -= s->size;
            sc_free(s);
        }
        if ((m = c->qhead)) {
            c->qhead = m->next;
            if (!c->qhead)
                c->qtail = NULL;
            if (m->tp == SIZE_MAX)
                break;
            ctp_t *t = &c->tps[m->tp];
            wake = (int64_t)t->buffered >= buffer_limit(c) &&
                   (int64_t)(t->buffered - m->size) < buffer_limit(c);
            t->buffered -= m->size;
            if (!m->m.err)
                t->pos = m->m.offset + 1;
            break;
        }
        if (timeout_ms == 0 || c->cl.stopping)
            break;
        int wr = timeout_ms < 0 ? pthread_cond_wait(&c->cl.cond, &c->cl.mu)
                                : pthread_cond_timedwait(&c->cl.cond, &c->cl.mu, &dl);
        if (wr == ETIMEDOUT && !c->qhead)
            break;
    }
    c->in_poll--;
    c->poll_ms = sc_mono_ms();
    pthread_mutex_unlock(&c->cl.mu);
    if (wake)
        cl_client_wake(&c->cl);
    *out = m ? &m->m : NULL;
    return 0;
}

void strata_message_free(strata_message_t *msg)
{
    if (!msg)
        return;
    sc_free((char *)msg - offsetof(cmsg_t, m));
}

/* Index of (topic, partition) in the assignment, or -1 (mu held). */
static long tp_find(strata_consumer_t *c, const char *topic, int32_t partition)
{
    for (size_t i = 0; i < c->ntps; i++)
        if (c->tps[i].part == partition && !strcmp(c->tps[i].t->name, topic))
            return (long)i;
    return -1;
}

strata_err_t strata_consumer_seek(strata_consumer_t *c, const char *topic, int32_t partition,
                                  int64_t offset)
{
    long i;
    int rc = 0;

    if (!c || !topic || !offset_valid(offset))
        return -EINVAL;
    pthread_mutex_lock(&c->cl.mu);
    if ((i = tp_find(c, topic, partition)) < 0) {
        rc = SC_ERR_NOT_FOUND;
    } else {
        q_drop(c, (size_t)i);
        tp_start(&c->tps[i], offset, c->cl.conf->auto_offset_reset, c->grp != NULL);
    }
    pthread_mutex_unlock(&c->cl.mu);
    if (!rc)
        cl_client_wake(&c->cl);
    return rc;
}

strata_err_t strata_consumer_position(strata_consumer_t *c, const char *topic, int32_t partition,
                                      int64_t *offset)
{
    long i;
    int rc = 0;

    if (!c || !topic || !offset)
        return -EINVAL;
    pthread_mutex_lock(&c->cl.mu);
    if ((i = tp_find(c, topic, partition)) < 0)
        rc = SC_ERR_NOT_FOUND;
    else
        *offset = c->tps[i].state == TP_NEED_OFFSET || c->tps[i].state == TP_OFFSET_WAIT ||
                          c->tps[i].state == TP_NEED_COMMITTED ||
                          c->tps[i].state == TP_COMMITTED_WAIT
                      ? STRATA_OFFSET_INVALID
                      : c->tps[i].pos;
    pthread_mutex_unlock(&c->cl.mu);
    return rc;
}

/* ---- hooks for cl_group.c (contract in cl_group.h; mu held) ------------------------------ */

cl_group_t *cl_consumer_group(strata_consumer_t *c) { return c->grp; }

size_t cl_consumer_tp_count(strata_consumer_t *c) { return c->ntps; }

void cl_consumer_tp_view(strata_consumer_t *c, size_t i, cl_tp_view_t *v)
{
    ctp_t *t = &c->tps[i];
    v->topic = t->t->name;
    v->part = t->part;
    v->pos = t->state == TP_ACTIVE || t->state == TP_STOPPED ? t->pos : STRATA_OFFSET_INVALID;
    v->need_committed = t->state == TP_NEED_COMMITTED;
    v->committed_wait = t->state == TP_COMMITTED_WAIT;
}

void cl_consumer_tp_committed_sent(strata_consumer_t *c, size_t i)
{
    if (c->tps[i].state == TP_NEED_COMMITTED)
        c->tps[i].state = TP_COMMITTED_WAIT;
}

void cl_consumer_tp_committed(strata_consumer_t *c, const char *topic, int32_t part, int64_t off,
                              int err)
{
    long i = tp_find(c, topic, part);
    if (i < 0 || c->tps[i].state != TP_COMMITTED_WAIT)
        return;
    if (err) {
        c->tps[i].state = TP_NEED_COMMITTED;
        return;
    }
    if (off < 0)
        SC_DEBUG(LOGSYS, "%s [%d]: no committed offset, auto.offset.reset applies", topic, part);
    tp_start(&c->tps[i], off >= 0 ? off : STRATA_OFFSET_STORED, c->cl.conf->auto_offset_reset, 0);
}

int cl_consumer_set_assignment(strata_consumer_t *c, const strata_topic_partition_t *tps, size_t n)
{
    ctp_t *nt = n ? sc_calloc(n, sizeof *nt) : NULL;

    if (n && !nt)
        return SC_ERR_NO_MEMORY;
    for (size_t i = 0; i < n; i++) {
        if (!(nt[i].t = cl_topic_get(&c->cl, tps[i].topic))) {
            sc_free(nt);
            return SC_ERR_NO_MEMORY;
        }
        nt[i].part = tps[i].partition;
        tp_start(&nt[i], tps[i].offset, c->cl.conf->auto_offset_reset, 1);
    }
    q_drop(c, SIZE_MAX);
    sc_free(c->tps);
    c->tps = nt;
    c->ntps = n;
    c->assign_gen++;
    pthread_cond_broadcast(&c->cl.cond);
    return 0;
}

void cl_consumer_push_group_error(strata_consumer_t *c, int err)
{
    cmsg_t *m = sc_calloc(1, sizeof *m + 1);

    if (!m)
        return;
    m->tp = SIZE_MAX;
    m->size = sizeof *m + 1;
    m->m.err = err;
    m->m.topic = (const char *)(m + 1);
    m->m.partition = -1;
    m->m.offset = -1;
    q_push(c, m);
    pthread_cond_broadcast(&c->cl.cond);
}

int64_t cl_consumer_poll_idle_ms(strata_consumer_t *c, int64_t now)
{
    return c->in_poll ? 0 : now - c->poll_ms;
}

void strata_consumer_free(strata_consumer_t *c)
{
    if (!c)
        return;
    if (c->grp && !cl_group_closed(c->grp) && !cl_client_on_io_thread(&c->cl))
        strata_consumer_close(c, (int)c->cl.conf->request_timeout_ms);
    cl_client_stop(&c->cl); /* in-flight requests come back with SC_ERR_CLOSED */
    pthread_mutex_lock(&c->cl.mu);
    q_drop(c, SIZE_MAX);
    sc_free(c->tps);
    c->tps = NULL;
    c->ntps = 0;
    pthread_mutex_unlock(&c->cl.mu);
    sc_free(c->busy);
    cl_group_free(c->grp); /* unfinished commits: callbacks with SC_ERR_CLOSED */
    cl_client_fini(&c->cl);
    sc_free(c);
}
