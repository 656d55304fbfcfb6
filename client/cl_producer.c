/*
 * cl_producer -- strata_producer_t: queue, partition, batch, send, retry,
 * report.
 *
 * Record life: strata_produce copies the record into one cl_msg_t and queues
 * it on its partition (or on the topic's unassigned queue until metadata says
 * how many partitions there are). The I/O thread turns a partition's queue
 * into a RecordBatch (pbatch_t) when linger.ms has passed since its oldest
 * record, when batch.size / batch.num.messages is reached, or on flush; sends
 * the next batch of every partition led by one broker in one Produce request;
 * and moves each record to the report queue with its offset or error. The
 * delivery callbacks run from the report queue without the lock; only then
 * are the record's bytes released from queue.buffering.max.kbytes.
 *
 * Pipelining: a partition has up to max.in.flight.requests.per.connection
 * batches in flight (default 5; at most 5 with idempotence, as in librdkafka
 * and the Java client). A Produce request carries at most one batch per
 * partition (Kafka requires that of idempotent batches), so a partition's
 * next batch goes in the next request on the same connection; responses come
 * back in request order.
 *
 * Ordering and idempotence: batches get consecutive base sequences when they
 * are built (tp->next_seq); tp->ack_seq is the sequence the broker expects
 * next. A batch that fails with a retriable error is resent byte for byte
 * (same producer id, epoch and base sequence), but only once every batch of
 * its partition still in flight has come back ("drain, then resend in
 * order"): the later ones come back too -- with OUT_OF_ORDER_SEQUENCE_NUMBER
 * when the broker saw the gap, which for a batch that is not the next the
 * broker expects (sent_seq != ack_seq) is a retriable error -- and everything
 * is resent in the original order with the original sequences. The broker
 * answers a resent batch it already has with its original offset (or
 * DUPLICATE_SEQUENCE_NUMBER, reported as success with offset -1).
 * A batch rejected for good by the broker (e.g. MESSAGE_TOO_LARGE) or expired
 * before the broker could have seen it leaves a hole: the later batches'
 * sequences move down to close it (header restamped, CRC recomputed).
 * Sequence errors, as librdkafka handles them (idempotent producer, no
 * transactions):
 *   OUT_OF_ORDER_SEQUENCE_NUMBER (45) on the batch the broker should expect
 *     next: the broker lost records we consider written -- fatal.
 *   INVALID_PRODUCER_EPOCH (47): another producer fenced us -- fatal.
 *   UNKNOWN_PRODUCER_ID (59): the broker dropped our producer state (e.g.
 *     the records aged out); epoch bump: stop sending, drain, InitProducerId
 *     for a new id/epoch, restamp every unacknowledged batch with sequences
 *     from 0 and resend. A batch that may already be on the broker under the
 *     old id (its last attempt ended without a broker error code) is
 *     reported with that error instead of resent, since resending it could
 *     duplicate it.
 * A fatal error fails every queued record and every later strata_produce.
 *
 * message.timeout.ms (0 = forever): a record not acknowledged that long
 * after strata_produce is reported with STRATA_ERR_MSG_TIMED_OUT; queued
 * records and batches that are not in flight expire (in-flight ones wait for
 * their response, bounded by request.timeout.ms). A batch whose last attempt
 * may have reached the broker expires "possibly persisted" and, with
 * idempotence, triggers the epoch bump above (its sequence may or may not
 * have been used).
 *
 * Partitioner: keyed records go to murmur2(key) % partitions (Java's and
 * librdkafka's murmur2_random); records without a key stick to one randomly
 * chosen partition per topic for sticky.partitioning.linger.ms (librdkafka's
 * sticky partitioner; 0 = round robin per record), so that they fill one
 * batch instead of many small ones. partitioner=murmur2 hashes null keys too.
 *
 * Idempotence is on by default; as in the Java client, setting acks to 0 or
 * 1 without setting enable.idempotence turns it off, and setting both
 * explicitly is a configuration error. Without idempotence a retried batch
 * can land after a later one when max.in.flight > 1 (as with every Kafka
 * client); set max.in.flight.requests.per.connection=1 to prevent that.
 */
#include "cl_batch.h"
#include "cl_client.h"

#include "sc_crc32c.h"
#include "sc_endian.h"
#include "sc_err.h"
#include "sc_log.h"
#include "sc_mem.h"
#include "sc_recbatch.h"
#include "sc_time.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LOGSYS "producer"
#define IDEMP_MAX_IN_FLIGHT 5
#define SPARE_BUFS 8                /* batch buffers kept for reuse */
#define SPARE_MAX_CAP (8u << 20)    /* ... when no larger than this */

typedef struct cl_msg {
    struct cl_msg *next;
    cl_topic_t *topic;
    int32_t partition;
    int err;
    int64_t offset;
    int64_t timestamp;
    int64_t enq_ms; /* monotonic */
    void *opaque;
    size_t size; /* accounted against queue.buffering.max.kbytes */
    size_t wire; /* estimate of the encoded record */
    const uint8_t *key;
    int32_t key_len; /* -1 = null */
    const uint8_t *value;
    int32_t value_len;
    strata_header_t *headers;
    size_t nheaders;
} cl_msg_t;

typedef struct {
    cl_msg_t *head, *tail;
    size_t count, bytes;
} msgq_t;

enum { B_READY = 1, B_INFLIGHT };

/* One built batch: its records and its encoded bytes (resent as is). */
typedef struct pbatch {
    struct pbatch *next;
    msgq_t msgs;
    sc_buf_t buf;
    int state;
    int attempts;    /* retriable failures so far (against retries) */
    int doubt;       /* the last attempt may have been written (no broker verdict) */
    int last_err;    /* the last attempt's error */
    int32_t base_seq; /* current base sequence (idempotent) */
    int32_t sent_seq; /* base sequence of the last send */
    int64_t retry_at_ms;
    int64_t enq_ms;   /* oldest record's enqueue time (message.timeout.ms) */
} pbatch_t;

typedef struct {
    msgq_t q;                   /* queued, not yet in a batch */
    pbatch_t *bhead, *btail;    /* built batches, in sequence order */
    int nbatches;
    int ninflight;
    int retrying;               /* a batch awaits a resend: send nothing until drained */
    int32_t next_seq;           /* base sequence of the next batch built */
    int32_t ack_seq;            /* the sequence the broker expects next */
} ptp_t;

typedef struct {
    msgq_t unassigned;
    ptp_t *parts;
    int32_t nparts;
    uint32_t rr;
    int32_t sticky;             /* sticky partition for null keys, -1 = none yet */
    int64_t sticky_until_ms;
} ptopic_t;

enum { PID_NONE = 0, PID_REQUESTED, PID_OK };

struct strata_producer {
    cl_client_t cl;
    strata_delivery_cb dr_cb;
    void *dr_arg;
    int idempotent;
    int codec;
    int16_t acks;
    int max_inflight;
    size_t max_bytes, max_msgs;
    size_t out_msgs, out_bytes; /* outstanding: queued until reported */
    msgq_t reports;
    int flushing;
    int fatal_err;
    int64_t pid;
    int16_t epoch;
    int pid_state;
    int64_t pid_retry_ms;
    int bump;                   /* epoch bump wanted: drain, then InitProducerId */
    int restamp;                /* a new id arrived: restamp every batch */
    int ninflight;              /* batches in flight, all partitions */
    uint64_t rng;
    sc_buf_t spare[SPARE_BUFS];
    int nspare;
    sc_recbatch_t scratch;
    sc_rec_header_t *hscratch;
    size_t hscratch_cap;
};

/* One Produce request's batches, to match the response. */
typedef struct {
    int n;
    int16_t ver;
    struct {
        cl_topic_t *t;
        int32_t part;
        pbatch_t *b;
        int err;
        int64_t base;
        int seen;
    } e[];
} preq_t;

/* ---- queues --------------------------------------------------------------------- */

static void q_push(msgq_t *q, cl_msg_t *m)
{
    m->next = NULL;
    if (q->tail)
        q->tail->next = m;
    else
        q->head = m;
    q->tail = m;
    q->count++;
    q->bytes += m->wire;
}

static cl_msg_t *q_pop(msgq_t *q)
{
    cl_msg_t *m = q->head;
    if (!m)
        return NULL;
    q->head = m->next;
    if (!q->head)
        q->tail = NULL;
    q->count--;
    q->bytes -= m->wire;
    m->next = NULL;
    return m;
}

/* Moves every record of q to the report queue with err (offset -1). */
static void q_fail(strata_producer_t *p, msgq_t *q, int err)
{
    cl_msg_t *m;
    while ((m = q_pop(q))) {
        m->err = err;
        m->offset = -1;
        q_push(&p->reports, m);
    }
    pthread_cond_broadcast(&p->cl.cond);
}

static ptopic_t *ptopic(cl_topic_t *t) { return t->role; }

/* ---- partitioning ---------------------------------------------------------------- */

static uint32_t rnd(strata_producer_t *p)
{
    p->rng ^= p->rng << 13;
    p->rng ^= p->rng >> 7;
    p->rng ^= p->rng << 17;
    return (uint32_t)(p->rng >> 16);
}

static int32_t pick_partition(strata_producer_t *p, ptopic_t *pt, const cl_msg_t *m)
{
    const strata_conf_t *c = p->cl.conf;

    if (m->partition >= 0)
        return m->partition;
    if (m->key_len >= 0 || c->partitioner == CL_PART_MURMUR2)
        return strata_partition_murmur2(m->key, m->key_len > 0 ? (size_t)m->key_len : 0,
                                        pt->nparts);
    if (c->sticky_linger_ms <= 0)
        return (int32_t)(pt->rr++ % (uint32_t)pt->nparts);
    if (pt->sticky < 0 || pt->sticky >= pt->nparts || m->enq_ms >= pt->sticky_until_ms) {
        pt->sticky = (int32_t)(rnd(p) % (uint32_t)pt->nparts);
        pt->sticky_until_ms = m->enq_ms + c->sticky_linger_ms;
    }
    return pt->sticky;
}

/* Places m on its partition queue (metadata known), or fails it. */
static void place(strata_producer_t *p, cl_topic_t *t, cl_msg_t *m)
{
    ptopic_t *pt = ptopic(t);
    int32_t part = pick_partition(p, pt, m);

    if (part < 0 || part >= pt->nparts) {
        m->err = SC_ERR_UNKNOWN_TOPIC_OR_PARTITION;
        m->offset = -1;
        q_push(&p->reports, m);
        return;
    }
    m->partition = part;
    q_push(&pt->parts[part].q, m);
}

static void topic_updated(cl_client_t *cl, cl_topic_t *t)
{
    strata_producer_t *p = (strata_producer_t *)cl;
    ptopic_t *pt = ptopic(t);
    cl_msg_t *m;

    if (!pt)
        return;
    if (t->nparts > pt->nparts) {
        ptp_t *np = sc_realloc(pt->parts, (size_t)t->nparts * sizeof *np);
        if (!np) {
            cl_metadata_refresh(cl); /* try again later */
            return;
        }
        memset(np + pt->nparts, 0, (size_t)(t->nparts - pt->nparts) * sizeof *np);
        pt->parts = np;
        pt->nparts = t->nparts;
    }
    if (pt->nparts > 0) {
        while ((m = q_pop(&pt->unassigned)))
            place(p, t, m);
    } else if (t->err && t->err != SC_ERR_LEADER_NOT_AVAILABLE) {
        SC_WARN(LOGSYS, "topic %s: %s; failing %zu queued records", t->name, sc_err_str(t->err),
                pt->unassigned.count);
        q_fail(p, &pt->unassigned, t->err);
    }
}

/* ---- InitProducerId ------------------------------------------------------------------ */

static int retriable(int err)
{
    switch (err) {
    case SC_ERR_UNKNOWN_TOPIC_OR_PARTITION:
    case SC_ERR_LEADER_NOT_AVAILABLE:
    case SC_ERR_NOT_LEADER_OR_FOLLOWER:
    case SC_ERR_REQUEST_TIMED_OUT:
    case SC_ERR_NETWORK_EXCEPTION:
    case SC_ERR_COORDINATOR_LOAD_IN_PROGRESS:
    case SC_ERR_COORDINATOR_NOT_AVAILABLE:
    case SC_ERR_NOT_COORDINATOR:
    case SC_ERR_NOT_ENOUGH_REPLICAS:
    case SC_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND:
    case SC_ERR_KAFKA_STORAGE_ERROR:
    case SC_ERR_CONCURRENT_TRANSACTIONS:
    case SC_ERR_BAD_FORMAT:
        return 1;
    default:
        return err < 0 && err > -4096; /* -errno: the connection failed */
    }
}

/* 1 when a batch that failed with err may nevertheless have been written: no
 * broker verdict (connection lost, timeout, unreadable answer) or one that
 * says "written, not yet replicated". */
static int maybe_written(int err)
{
    return err <= 0 || err == SC_ERR_REQUEST_TIMED_OUT || err == SC_ERR_NETWORK_EXCEPTION ||
           err == SC_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND || err == SC_ERR_KAFKA_STORAGE_ERROR;
}

static void restamp_all(strata_producer_t *p);

static void on_init_pid(cl_client_t *cl, cl_broker_t *b, int err, sc_rd_t *r, void *arg)
{
    strata_producer_t *p = (strata_producer_t *)cl;
    int16_t ec = 0;
    int64_t pid = -1;
    int16_t epoch = -1;

    if (!err) {
        sc_kr_i32(r);
        ec = sc_kr_i16(r);
        pid = sc_kr_i64(r);
        epoch = sc_kr_i16(r);
        if (r->err)
            err = SC_ERR_BAD_FORMAT;
        else
            err = ec;
    }
    if (!err && pid < 0)
        err = SC_ERR_BAD_FORMAT;
    if (err) {
        p->pid_state = PID_NONE;
        p->pid_retry_ms = sc_mono_ms() + cl->conf->retry_backoff_ms;
        if (err != SC_ERR_CLOSED && !retriable(err)) {
            SC_ERROR(LOGSYS, "InitProducerId failed: %s (fatal)", sc_err_str(err));
            p->fatal_err = err;
        } else {
            SC_DEBUG(LOGSYS, "InitProducerId failed: %s (retrying)", sc_err_str(err));
        }
        return;
    }
    p->pid = pid;
    p->epoch = epoch;
    p->pid_state = PID_OK;
    SC_DEBUG(LOGSYS, "producer id %lld epoch %d", (long long)pid, epoch);
    if (p->restamp)
        restamp_all(p);
}

static void init_pid(strata_producer_t *p, int64_t now)
{
    cl_client_t *cl = &p->cl;
    cl_broker_t *b;
    sc_buf_t body;
    sc_kw_t w;
    int16_t ver;

    if (p->pid_state != PID_NONE || now < p->pid_retry_ms || !(b = cl_broker_any(cl, now)))
        return;
    if (b->state != CL_BK_UP) {
        cl_broker_connect(cl, b, now);
        return;
    }
    if ((ver = cl_broker_version(b, SC_KAFKA_API_INIT_PRODUCER_ID, 0, 1)) < 0) {
        SC_ERROR(LOGSYS, "broker %s:%d has no InitProducerId v0-1; idempotence impossible",
                 b->host, b->port);
        p->fatal_err = SC_ERR_UNSUPPORTED_VERSION;
        return;
    }
    sc_buf_init(&body);
    sc_kw_init(&w, &body);
    sc_kw_string(&w, NULL, 0); /* transactional id: null */
    sc_kw_i32(&w, -1);         /* transaction timeout: unused without one */
    if (!w.err && !cl_request(cl, b, SC_KAFKA_API_INIT_PRODUCER_ID, ver, &body, 0,
                              cl->conf->request_timeout_ms, on_init_pid, NULL))
        p->pid_state = PID_REQUESTED;
    else
        p->pid_retry_ms = now + cl->conf->retry_backoff_ms;
    sc_buf_fini(&body);
}

/* ---- batches ----------------------------------------------------------------------- */

static int32_t seq_add(int32_t seq, int32_t n)
{
    if (seq > INT32_MAX - n)
        return n - (INT32_MAX - seq) - 1;
    return seq + n;
}

static int32_t seq_sub(int32_t seq, int32_t n)
{
    if (seq < n)
        return INT32_MAX - (n - seq) + 1;
    return seq - n;
}

/* Writes the producer id, epoch and b->base_seq into b's header and fixes
 * the CRC (which covers them). */
static void batch_stamp(strata_producer_t *p, pbatch_t *b)
{
    uint8_t *h = b->buf.data;
    sc_store_be64(h + 43, (uint64_t)p->pid);
    sc_store_be16(h + 51, (uint16_t)p->epoch);
    sc_store_be32(h + 53, (uint32_t)b->base_seq);
    sc_store_be32(h + 17, sc_crc32c(0, h + 21, b->buf.len - 21));
}

/* Frees b; its buffer goes to the spare pool (batch buffers are large: reusing
 * them saves an mmap/munmap and the page faults of every batch). */
static void batch_free(strata_producer_t *p, pbatch_t *b)
{
    if (p->nspare < SPARE_BUFS && b->buf.cap <= SPARE_MAX_CAP) {
        sc_buf_reset(&b->buf);
        p->spare[p->nspare++] = b->buf;
    } else {
        sc_buf_fini(&b->buf);
    }
    sc_free(b);
}

/* Unlinks b from tp's list. */
static void batch_unlink(ptp_t *tp, pbatch_t *b)
{
    pbatch_t **pp = &tp->bhead, *prev = NULL;
    while (*pp && *pp != b) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    if (!*pp)
        return;
    *pp = b->next;
    if (tp->btail == b)
        tp->btail = prev;
    tp->nbatches--;
}

/* b (unlinked already) will never be written: the batches after it in tp
 * move down by its record count so the broker sees no gap. */
static void close_gap(strata_producer_t *p, ptp_t *tp, pbatch_t *after, int32_t count)
{
    for (pbatch_t *x = after; x; x = x->next) {
        x->base_seq = seq_sub(x->base_seq, count);
        batch_stamp(p, x);
    }
    tp->next_seq = seq_sub(tp->next_seq, count);
}

/* Reports b's records with err, unlinks and frees b; with idempotence closes
 * the sequence gap (never_written) or asks for an epoch bump. */
static void batch_fail(strata_producer_t *p, ptp_t *tp, pbatch_t *b, int err, int never_written)
{
    pbatch_t *after = b->next;
    int32_t count = (int32_t)b->msgs.count;

    batch_unlink(tp, b);
    q_fail(p, &b->msgs, err);
    if (p->idempotent && !p->fatal_err) {
        if (never_written)
            close_gap(p, tp, after, count);
        else
            p->bump = 1; /* its sequence may or may not be used: start over */
    }
    batch_free(p, b);
}

/* A new producer id/epoch: every partition's batches get sequences from 0;
 * a batch that may already be on the broker under the old id is reported
 * (resending it could duplicate it). */
static void restamp_all(strata_producer_t *p)
{
    p->restamp = 0;
    for (cl_topic_t *t = p->cl.topics; t; t = t->next) {
        ptopic_t *pt = ptopic(t);
        for (int32_t i = 0; pt && i < pt->nparts; i++) {
            ptp_t *tp = &pt->parts[i];
            pbatch_t *b = tp->bhead, *nx;
            int32_t seq = 0;
            for (; b; b = nx) {
                nx = b->next;
                if (b->doubt) {
                    SC_WARN(LOGSYS, "%s [%d]: %zu records possibly written under the old "
                            "producer id reported as failed (%s)", t->name, i, b->msgs.count,
                            sc_err_str(b->last_err));
                    batch_unlink(tp, b);
                    q_fail(p, &b->msgs, b->last_err ? b->last_err : SC_ERR_MSG_TIMED_OUT);
                    batch_free(p, b);
                    continue;
                }
                b->base_seq = seq;
                b->state = B_READY;
                b->retry_at_ms = 0;
                batch_stamp(p, b);
                seq = seq_add(seq, (int32_t)b->msgs.count);
            }
            tp->next_seq = seq;
            tp->ack_seq = 0;
            tp->retrying = 0;
        }
    }
    SC_INFO(LOGSYS, "epoch bump done: producer id %lld epoch %d", (long long)p->pid, p->epoch);
}

/* Takes records from tp->q into one new encoded batch at the end of tp's
 * list. 0 or an error (records stay queued). */
static int batch_build(strata_producer_t *p, ptp_t *tp)
{
    const strata_conf_t *c = p->cl.conf;
    sc_recbatch_t *rb = &p->scratch;
    size_t est = 61;
    pbatch_t *b;
    int rc;

    if ((rc = sc_recbatch_begin(rb, tp->q.head->timestamp, p->idempotent ? p->pid : -1,
                                p->idempotent ? p->epoch : -1,
                                p->idempotent ? tp->next_seq : -1)))
        return rc;
    for (cl_msg_t *m = tp->q.head; m; m = m->next) {
        if (rb->count > 0 && (rb->count >= c->batch_num_messages ||
                              est + m->wire > (size_t)c->batch_size))
            break;
        if (m->nheaders > p->hscratch_cap) {
            sc_rec_header_t *h = sc_realloc(p->hscratch, m->nheaders * sizeof *h);
            if (!h)
                return SC_ERR_NO_MEMORY;
            p->hscratch = h;
            p->hscratch_cap = m->nheaders;
        }
        for (size_t i = 0; i < m->nheaders; i++) {
            p->hscratch[i].key = m->headers[i].key;
            p->hscratch[i].key_len = m->headers[i].key_len;
            p->hscratch[i].value = (const char *)m->headers[i].value;
            p->hscratch[i].value_len = m->headers[i].value_len;
        }
        if ((rc = sc_recbatch_add(rb, m->timestamp, m->key, m->key_len, m->value, m->value_len,
                                  p->hscratch, (int)m->nheaders)))
            return rc;
        est += m->wire;
    }
    sc_recbatch_finish(rb);
    if (!(b = sc_calloc(1, sizeof *b)))
        return SC_ERR_NO_MEMORY;
    if (p->nspare)
        b->buf = p->spare[--p->nspare];
    else
        sc_buf_init(&b->buf);
    if (p->codec == CL_CODEC_NONE) {
        /* the built batch is the batch to send: take its buffer, leave ours */
        sc_buf_t tmp = rb->buf;
        rb->buf = b->buf;
        b->buf = tmp;
    } else if ((rc = cl_batch_encode(rb, p->codec, (int)c->compression_level, &b->buf))) {
        batch_free(p, b);
        return rc;
    }
    b->enq_ms = tp->q.head->enq_ms;
    for (int32_t i = 0; i < rb->count; i++)
        q_push(&b->msgs, q_pop(&tp->q));
    b->state = B_READY;
    b->base_seq = p->idempotent ? tp->next_seq : -1;
    if (p->idempotent)
        tp->next_seq = seq_add(tp->next_seq, rb->count);
    if (tp->btail)
        tp->btail->next = b;
    else
        tp->bhead = b;
    tp->btail = b;
    tp->nbatches++;
    return 0;
}

/* The outcome of in-flight batch b of tp. */
static void batch_done(strata_producer_t *p, cl_topic_t *t, ptp_t *tp, pbatch_t *b, int err,
                       int64_t base, int64_t now)
{
    const strata_conf_t *c = p->cl.conf;
    cl_msg_t *m;
    int64_t i = 0;

    tp->ninflight--;
    p->ninflight--;
    b->state = B_READY;
    b->last_err = err;
    if (err > 0 && !maybe_written(err))
        b->doubt = 0; /* the broker's verdict: not written */
    if (err == SC_ERR_DUPLICATE_SEQUENCE_NUMBER) /* accepted earlier; offsets unknown */
        err = 0, base = -1;
    if (err && p->idempotent && err == SC_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER &&
        b->sent_seq != tp->ack_seq) {
        /* an earlier batch is not written (yet): resend after it, in order */
        b->doubt = 0;
        b->retry_at_ms = 0;
        tp->retrying = 1;
        goto out;
    }
    if (err && p->idempotent && err == SC_ERR_UNKNOWN_PRODUCER_ID && !p->fatal_err) {
        SC_WARN(LOGSYS, "%s [%d]: broker lost our producer state (%s); bumping the epoch",
                t->name, b->msgs.head->partition, sc_err_str(err));
        b->doubt = 0;
        p->bump = 1;
        tp->retrying = 1;
        goto out;
    }
    if (err && err != SC_ERR_CLOSED && retriable(err) && b->attempts < c->retries &&
        !p->cl.stopping && !p->fatal_err &&
        (c->message_timeout_ms == 0 || now < b->enq_ms + c->message_timeout_ms)) {
        b->attempts++;
        b->retry_at_ms = now + c->retry_backoff_ms;
        tp->retrying = 1;
        SC_DEBUG(LOGSYS, "%s [%d]: %s, retry %d", t->name, b->msgs.head->partition,
                 sc_err_str(err), b->attempts);
        if (err > 0 || err == SC_ERR_BAD_FORMAT)
            cl_metadata_refresh(&p->cl);
        goto out;
    }
    if (err) {
        if (p->idempotent && !p->fatal_err &&
            (err == SC_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER || err == SC_ERR_INVALID_PRODUCER_EPOCH)) {
            SC_ERROR(LOGSYS, "%s: %s: idempotent producer state lost (fatal)", t->name,
                     sc_err_str(err));
            p->fatal_err = err;
        }
        if (retriable(err) && c->message_timeout_ms &&
            now >= b->enq_ms + c->message_timeout_ms)
            err = SC_ERR_MSG_TIMED_OUT;
        batch_fail(p, tp, b, err, !b->doubt);
        goto out;
    }
    if (p->idempotent)
        tp->ack_seq = seq_add(b->sent_seq, (int32_t)b->msgs.count);
    while ((m = q_pop(&b->msgs))) {
        m->err = 0;
        m->offset = base < 0 || p->acks == 0 ? -1 : base + i;
        i++;
        q_push(&p->reports, m);
    }
    batch_unlink(tp, b);
    batch_free(p, b);
out:
    if (tp->ninflight == 0)
        tp->retrying = 0; /* drained: resend from the first unacknowledged batch */
}

static void on_produce(cl_client_t *cl, cl_broker_t *b, int err, sc_rd_t *r, void *arg)
{
    strata_producer_t *p = (strata_producer_t *)cl;
    preq_t *pr = arg;
    int16_t ver = -1;
    int64_t now = sc_mono_ms();
    int32_t nt, np;

    for (int i = 0; i < pr->n; i++)
        pr->e[i].err = err, pr->e[i].base = -1, pr->e[i].seen = err ? 1 : 0;
    if (!err && !r) { /* acks=0: written is all we learn */
        for (int i = 0; i < pr->n; i++)
            pr->e[i].seen = 1;
        goto apply;
    }
    if (err)
        goto apply;
    ver = pr->ver;
    if (sc_kr_array_len(r, 0, 6, &nt))
        goto bad;
    for (int32_t i = 0; i < nt; i++) {
        sc_kstr_t name;
        sc_kr_string(r, 0, &name);
        /* a v3-4 partition answer is 22 bytes (index, error, base offset,
         * append time); v5+ add the log start offset */
        if (sc_kr_array_len(r, 0, ver >= 5 ? 30 : 22, &np))
            goto bad;
        for (int32_t j = 0; j < np; j++) {
            int32_t idx = sc_kr_i32(r);
            int16_t ec = sc_kr_i16(r);
            int64_t base = sc_kr_i64(r);
            sc_kr_i64(r); /* log append time */
            if (ver >= 5)
                sc_kr_i64(r); /* log start offset */
            if (r->err)
                goto bad;
            for (int k = 0; k < pr->n; k++)
                if (pr->e[k].part == idx && !pr->e[k].seen &&
                    strlen(pr->e[k].t->name) == (size_t)name.len &&
                    !memcmp(pr->e[k].t->name, name.p, (size_t)name.len)) {
                    pr->e[k].err = ec;
                    pr->e[k].base = base;
                    pr->e[k].seen = 1;
                }
        }
    }
    sc_kr_i32(r); /* throttle */
    if (r->err)
        goto bad;
    for (int i = 0; i < pr->n; i++)
        if (!pr->e[i].seen) /* the broker left a partition out */
            pr->e[i].err = SC_ERR_NETWORK_EXCEPTION, pr->e[i].seen = 1;
    goto apply;
bad:
    SC_WARN(LOGSYS, "broker %s:%d: malformed Produce response", b->host, b->port);
    for (int i = 0; i < pr->n; i++)
        pr->e[i].err = SC_ERR_BAD_FORMAT, pr->e[i].base = -1;
apply:
    for (int i = 0; i < pr->n; i++) {
        ptopic_t *pt = ptopic(pr->e[i].t);
        batch_done(p, pr->e[i].t, &pt->parts[pr->e[i].part], pr->e[i].b, pr->e[i].err,
                   pr->e[i].base, now);
    }
    sc_free(pr);
    pthread_cond_broadcast(&cl->cond); /* (the loop runs serve next: no wake needed) */
}

/* The batch of tp to send next, or NULL (*next lowered to a retry time). */
static pbatch_t *sendable(strata_producer_t *p, ptp_t *tp, int64_t now, int64_t *next)
{
    if (p->bump || (tp->retrying && tp->ninflight) || tp->ninflight >= p->max_inflight)
        return NULL;
    for (pbatch_t *b = tp->bhead; b; b = b->next) {
        if (b->state == B_INFLIGHT)
            continue;
        if (b->retry_at_ms > now) {
            if (b->retry_at_ms < *next)
                *next = b->retry_at_ms;
            return NULL;
        }
        return b;
    }
    return NULL;
}

/* Sends the next batch of every partition led by b in one Produce request;
 * returns 1 when a request went out (call again for the next batches). */
static int send_to(strata_producer_t *p, cl_broker_t *b, int64_t now, int64_t *next)
{
    cl_client_t *cl = &p->cl;
    int16_t ver = cl_broker_version(b, SC_KAFKA_API_PRODUCE, 3, 7);
    int n = 0, ntopics = 0, sent = 0;
    preq_t *pr = NULL;
    sc_buf_t body;
    sc_kw_t w;

    sc_buf_init(&body);
    for (cl_topic_t *t = cl->topics; t; t = t->next) {
        ptopic_t *pt = ptopic(t);
        int any = 0;
        for (int32_t i = 0; pt && i < pt->nparts && i < t->nparts; i++) {
            if (t->parts[i].leader != b->node_id || !pt->parts[i].bhead ||
                !sendable(p, &pt->parts[i], now, next))
                continue;
            n++;
            any = 1;
        }
        ntopics += any;
    }
    if (!n)
        goto out;
    if (ver < 0) {
        SC_ERROR(LOGSYS, "broker %s:%d supports no Produce v3-7", b->host, b->port);
        p->fatal_err = SC_ERR_UNSUPPORTED_VERSION;
        goto out;
    }
    if (!(pr = sc_calloc(1, sizeof *pr + (size_t)n * sizeof pr->e[0])))
        goto out;
    pr->ver = ver;
    sc_kw_init(&w, &body);
    sc_kw_string(&w, NULL, 0); /* transactional id */
    sc_kw_i16(&w, p->acks);
    sc_kw_i32(&w, (int32_t)cl->conf->request_timeout_ms);
    sc_kw_array_len(&w, ntopics);
    for (cl_topic_t *t = cl->topics; t; t = t->next) {
        ptopic_t *pt = ptopic(t);
        size_t cnt_off = 0;
        int32_t cnt = 0;
        for (int32_t i = 0; pt && i < pt->nparts && i < t->nparts; i++) {
            pbatch_t *bt;
            if (t->parts[i].leader != b->node_id || !pt->parts[i].bhead ||
                !(bt = sendable(p, &pt->parts[i], now, next)))
                continue;
            if (!cnt) {
                sc_kw_cstr(&w, 0, t->name);
                cnt_off = sc_kw_reserve_i32(&w);
            }
            cnt++;
            sc_kw_i32(&w, i);
            sc_kw_bytes(&w, bt->buf.data, bt->buf.len);
            pr->e[pr->n].t = t;
            pr->e[pr->n].part = i;
            pr->e[pr->n].b = bt;
            pr->n++;
        }
        if (cnt)
            sc_kw_patch_i32(&w, cnt_off, cnt);
    }
    if (w.err || cl_request(cl, b, SC_KAFKA_API_PRODUCE, ver, &body, p->acks == 0,
                            cl->conf->request_timeout_ms + 5000, on_produce, pr)) {
        sc_free(pr);
        goto out;
    }
    for (int i = 0; i < pr->n; i++) {
        ptp_t *tp = &ptopic(pr->e[i].t)->parts[pr->e[i].part];
        pbatch_t *bt = pr->e[i].b;
        bt->state = B_INFLIGHT;
        bt->sent_seq = bt->base_seq;
        bt->doubt = 1;
        tp->ninflight++;
        p->ninflight++;
    }
    sent = 1;
out:
    sc_buf_fini(&body);
    return sent;
}

/* message.timeout.ms for the records of q (in enqueue order). */
static void expire_q(strata_producer_t *p, msgq_t *q, int64_t now, int64_t *next)
{
    int64_t tmo = p->cl.conf->message_timeout_ms;

    if (tmo <= 0)
        return;
    while (q->head && now >= q->head->enq_ms + tmo) {
        cl_msg_t *m = q_pop(q);
        m->err = SC_ERR_MSG_TIMED_OUT;
        m->offset = -1;
        q_push(&p->reports, m);
        pthread_cond_broadcast(&p->cl.cond);
    }
    if (q->head && q->head->enq_ms + tmo < *next)
        *next = q->head->enq_ms + tmo;
}

/* message.timeout.ms for tp: batches from the oldest that are not in flight,
 * then queued records. */
static void expire(strata_producer_t *p, ptp_t *tp, int64_t now, int64_t *next)
{
    int64_t tmo = p->cl.conf->message_timeout_ms;
    pbatch_t *b;

    if (tmo <= 0)
        return;
    while ((b = tp->bhead) && b->state != B_INFLIGHT && now >= b->enq_ms + tmo)
        batch_fail(p, tp, b, SC_ERR_MSG_TIMED_OUT, !b->doubt);
    if (tp->bhead && tp->bhead->enq_ms + tmo < *next)
        *next = tp->bhead->enq_ms + tmo;
    expire_q(p, &tp->q, now, next);
}

static void fail_all(strata_producer_t *p, int err, int inflight_too)
{
    for (cl_topic_t *t = p->cl.topics; t; t = t->next) {
        ptopic_t *pt = ptopic(t);
        if (!pt)
            continue;
        q_fail(p, &pt->unassigned, err);
        for (int32_t i = 0; i < pt->nparts; i++) {
            ptp_t *tp = &pt->parts[i];
            pbatch_t *b = tp->bhead, *nx;
            for (; b; b = nx) {
                nx = b->next;
                if (b->state == B_INFLIGHT && !inflight_too)
                    continue;
                batch_unlink(tp, b);
                q_fail(p, &b->msgs, err);
                batch_free(p, b);
            }
            q_fail(p, &tp->q, err);
        }
    }
}

static int64_t serve(cl_client_t *cl, int64_t now)
{
    strata_producer_t *p = (strata_producer_t *)cl;
    const strata_conf_t *c = cl->conf;
    int64_t next = INT64_MAX;
    int refresh = 0;

    if (p->fatal_err) {
        fail_all(p, p->fatal_err, 0); /* in-flight ones report when they come back */
        return next;
    }
    for (cl_topic_t *t = cl->topics; t; t = t->next) {
        ptopic_t *pt = ptopic(t);
        if (!pt)
            continue;
        expire_q(p, &pt->unassigned, now, &next); /* still waiting for metadata */
        for (int32_t i = 0; i < pt->nparts; i++)
            expire(p, &pt->parts[i], now, &next);
    }
    if (p->idempotent && p->bump && p->ninflight == 0) {
        SC_INFO(LOGSYS, "producer id %lld epoch %d: in-flight batches drained; asking for a "
                "new producer id", (long long)p->pid, p->epoch);
        p->bump = 0;
        p->restamp = 1;
        p->pid_state = PID_NONE;
        p->pid_retry_ms = 0;
    }
    if (p->idempotent && p->pid_state != PID_OK) {
        init_pid(p, now);
        return p->pid_state == PID_NONE && p->pid_retry_ms < next ? p->pid_retry_ms : next;
    }
    for (cl_topic_t *t = cl->topics; t; t = t->next) {
        ptopic_t *pt = ptopic(t);
        for (int32_t i = 0; pt && i < pt->nparts && i < t->nparts; i++) {
            ptp_t *tp = &pt->parts[i];
            while (tp->q.head && tp->nbatches < p->max_inflight) {
                int64_t due = tp->q.head->enq_ms + c->linger_ms;
                if (!(p->flushing || tp->q.bytes >= (size_t)c->batch_size ||
                      tp->q.count >= (size_t)c->batch_num_messages || now >= due)) {
                    if (due < next)
                        next = due;
                    break;
                }
                int rc = batch_build(p, tp);
                if (rc) {
                    SC_WARN(LOGSYS, "%s [%d]: cannot build batch: %s", t->name, i,
                            sc_err_str(rc));
                    if (rc != SC_ERR_NO_MEMORY)
                        q_fail(p, &tp->q, rc);
                    else if (now + 100 < next)
                        next = now + 100;
                    break;
                }
            }
            if (tp->bhead && tp->ninflight < tp->nbatches) {
                cl_broker_t *b = t->parts[i].leader >= 0 ? cl_broker_find(cl, t->parts[i].leader)
                                                         : NULL;
                if (!b)
                    refresh = 1;
                else if (b->state == CL_BK_DOWN)
                    cl_broker_connect(cl, b, now);
                if (b && b->state == CL_BK_DOWN && b->retry_at_ms < next)
                    next = b->retry_at_ms;
            }
        }
    }
    if (refresh)
        cl_metadata_refresh(cl);
    for (cl_broker_t *b = cl->brokers; b; b = b->next)
        if (b->state == CL_BK_UP && b->node_id >= 0)
            while (send_to(p, b, now, &next))
                ;
    return next;
}

static void deliver(cl_client_t *cl)
{
    strata_producer_t *p = (strata_producer_t *)cl;
    msgq_t batch = p->reports;
    size_t nbytes = 0, nmsgs = 0;
    cl_msg_t *m;

    if (!batch.head)
        return;
    memset(&p->reports, 0, sizeof p->reports);
    pthread_mutex_unlock(&cl->mu);
    while ((m = q_pop(&batch))) {
        if (p->dr_cb) {
            strata_message_t msg = {
                .err = m->err,
                .topic = m->topic->name,
                .partition = m->partition,
                .offset = m->offset,
                .timestamp = m->timestamp,
                .key = m->key_len >= 0 ? m->key : NULL,
                .key_len = m->key_len >= 0 ? (size_t)m->key_len : 0,
                .value = m->value_len >= 0 ? m->value : NULL,
                .value_len = m->value_len >= 0 ? (size_t)m->value_len : 0,
                .headers = m->headers,
                .header_count = m->nheaders,
                .opaque = m->opaque,
            };
            p->dr_cb(p, &msg, p->dr_arg);
        }
        nbytes += m->size;
        nmsgs++;
        sc_free(m);
    }
    pthread_mutex_lock(&cl->mu);
    p->out_bytes -= nbytes;
    p->out_msgs -= nmsgs;
    pthread_cond_broadcast(&cl->cond);
}

static const cl_role_t producer_role = {
    .serve = serve,
    .topic_updated = topic_updated,
    .deliver = deliver,
};

/* ---- public API ------------------------------------------------------------------------ */

strata_err_t strata_producer_new(const strata_conf_t *conf, strata_delivery_cb dr_cb,
                                 void *cb_arg, strata_producer_t **out, char *errstr,
                                 size_t errstr_size)
{
    strata_producer_t *p = NULL;
    strata_conf_t *c = NULL;
    int rc = 0;

    if (!out)
        return -EINVAL;
    if (errstr && errstr_size)
        errstr[0] = 0;
    c = conf ? strata_conf_dup(conf) : strata_conf_new();
    if (!c || !(p = sc_calloc(1, sizeof *p))) {
        rc = SC_ERR_NO_MEMORY;
        goto out;
    }
    if (!cl_codec_supported((int)c->compression_type)) {
        if (errstr && errstr_size)
            snprintf(errstr, errstr_size, "compression.type: unsupported codec");
        rc = SC_ERR_BAD_CONFIG;
        goto out;
    }
    p->idempotent = (int)c->enable_idempotence;
    if (c->acks != -1 && p->idempotent) {
        if (c->explicit_set & (1u << CL_CONF_KEY_ENABLE_IDEMPOTENCE)) {
            if (errstr && errstr_size)
                snprintf(errstr, errstr_size, "enable.idempotence=true requires acks=all (-1)");
            rc = SC_ERR_BAD_CONFIG;
            goto out;
        }
        p->idempotent = 0;
    }
    if (p->idempotent && c->max_in_flight > IDEMP_MAX_IN_FLIGHT) {
        if (errstr && errstr_size)
            snprintf(errstr, errstr_size,
                     "max.in.flight.requests.per.connection must be <= %d with "
                     "enable.idempotence=true", IDEMP_MAX_IN_FLIGHT);
        rc = SC_ERR_BAD_CONFIG;
        goto out;
    }
    p->max_inflight = (int)(c->max_in_flight > INT_MAX ? INT_MAX : c->max_in_flight);
    p->rng = (uint64_t)sc_mono_ns() ^ ((uint64_t)(uintptr_t)p << 16) ^ (uint64_t)getpid();
    if (!p->rng)
        p->rng = 0x9e3779b97f4a7c15ull;
    p->dr_cb = dr_cb;
    p->dr_arg = cb_arg;
    p->codec = (int)c->compression_type;
    p->acks = (int16_t)c->acks;
    p->max_bytes = (size_t)c->queue_buffering_max_kbytes * 1024;
    p->max_msgs = (size_t)c->queue_buffering_max_messages;
    p->pid = -1;
    p->epoch = -1;
    sc_recbatch_init(&p->scratch);
    if ((rc = cl_client_init(&p->cl, c, &producer_role, p, errstr, errstr_size))) {
        sc_recbatch_fini(&p->scratch);
        goto out;
    }
    c = NULL; /* the client owns it */
    *out = p;
    p = NULL;
out:
    strata_conf_free(c);
    sc_free(p);
    return rc;
}

strata_err_t strata_produce(strata_producer_t *p, const strata_record_t *rec, void *opaque)
{
    size_t hbytes = 0, size, wire;
    cl_msg_t *m = NULL;
    cl_topic_t *t;
    ptopic_t *pt;
    uint8_t *d;
    int rc = 0, wake = 0;

    if (!p || !rec || !rec->topic || !rec->topic[0] || strlen(rec->topic) > 249 ||
        rec->partition < -1 || rec->key_len > INT32_MAX || rec->value_len > INT32_MAX ||
        (rec->header_count && !rec->headers))
        return -EINVAL;
    for (size_t i = 0; i < rec->header_count; i++) {
        if (!rec->headers[i].key || rec->headers[i].key_len > INT32_MAX ||
            rec->headers[i].value_len > INT32_MAX)
            return -EINVAL;
        hbytes += rec->headers[i].key_len + (rec->headers[i].value ? rec->headers[i].value_len : 0);
    }
    wire = (rec->key ? rec->key_len : 0) + (rec->value ? rec->value_len : 0) + hbytes +
           rec->header_count * 10 + 40;
    if (wire + 61 > (size_t)p->cl.conf->message_max_bytes)
        return SC_ERR_MESSAGE_TOO_LARGE;
    size = sizeof *m + rec->header_count * sizeof(strata_header_t) + hbytes +
           (rec->key ? rec->key_len : 0) + (rec->value ? rec->value_len : 0);
    if (!(m = sc_malloc(size)))
        return SC_ERR_NO_MEMORY;
    memset(m, 0, sizeof *m);
    m->size = size;
    m->wire = wire;
    m->opaque = opaque;
    m->partition = rec->partition;
    m->timestamp = rec->timestamp ? rec->timestamp : sc_now_ms();
    m->enq_ms = sc_mono_ms();
    m->headers = (strata_header_t *)(m + 1);
    m->nheaders = rec->header_count;
    d = (uint8_t *)(m->headers + rec->header_count);
    for (size_t i = 0; i < rec->header_count; i++) {
        const strata_header_t *h = &rec->headers[i];
        memcpy(d, h->key, h->key_len);
        m->headers[i].key = (const char *)d;
        m->headers[i].key_len = h->key_len;
        d += h->key_len;
        if (h->value) {
            if (h->value_len)
                memcpy(d, h->value, h->value_len);
            m->headers[i].value = d;
            m->headers[i].value_len = h->value_len;
            d += h->value_len;
        } else {
            m->headers[i].value = NULL;
            m->headers[i].value_len = 0;
        }
    }
    m->key_len = rec->key ? (int32_t)rec->key_len : -1;
    if (rec->key) {
        if (rec->key_len)
            memcpy(d, rec->key, rec->key_len);
        m->key = d;
        d += rec->key_len;
    }
    m->value_len = rec->value ? (int32_t)rec->value_len : -1;
    if (rec->value) {
        if (rec->value_len)
            memcpy(d, rec->value, rec->value_len);
        m->value = d;
    }

    pthread_mutex_lock(&p->cl.mu);
    if (p->cl.stopping) {
        rc = SC_ERR_CLOSED;
        goto unlock;
    }
    if (p->fatal_err) {
        rc = p->fatal_err;
        goto unlock;
    }
    if (p->out_msgs + 1 > p->max_msgs || p->out_bytes + size > p->max_bytes) {
        rc = SC_ERR_FULL;
        goto unlock;
    }
    if (!(t = cl_topic_get(&p->cl, rec->topic))) {
        rc = SC_ERR_NO_MEMORY;
        goto unlock;
    }
    if (!t->role && !(t->role = sc_calloc(1, sizeof(ptopic_t)))) {
        rc = SC_ERR_NO_MEMORY;
        goto unlock;
    }
    pt = t->role;
    m->topic = t;
    if (pt->nparts > 0) {
        int32_t part = pick_partition(p, pt, m);
        if (part >= pt->nparts) {
            rc = SC_ERR_UNKNOWN_TOPIC_OR_PARTITION;
            goto unlock;
        }
        m->partition = part;
        ptp_t *tp = &pt->parts[part];
        wake = !tp->q.head || tp->q.bytes + m->wire >= (size_t)p->cl.conf->batch_size ||
               p->cl.conf->linger_ms == 0;
        /* the I/O thread runs serve before it sleeps again unless it sleeps now
         * (next_wake_ms set, under mu, just before poll): save the eventfd write */
        wake = wake && p->cl.next_wake_ms != 0;
        q_push(&tp->q, m);
    } else {
        wake = !pt->unassigned.head;
        q_push(&pt->unassigned, m);
    }
    m = NULL;
    p->out_msgs++;
    p->out_bytes += size;
unlock:
    pthread_mutex_unlock(&p->cl.mu);
    if (wake)
        cl_client_wake(&p->cl);
    sc_free(m);
    return rc;
}

strata_err_t strata_producer_flush(strata_producer_t *p, int timeout_ms)
{
    struct timespec dl;
    int rc = 0;

    if (!p)
        return -EINVAL;
    if (cl_client_on_io_thread(&p->cl))
        return -EDEADLK;
    clock_gettime(CLOCK_REALTIME, &dl);
    if (timeout_ms >= 0) {
        dl.tv_sec += timeout_ms / 1000;
        dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
        if (dl.tv_nsec >= 1000000000L) {
            dl.tv_sec++;
            dl.tv_nsec -= 1000000000L;
        }
    }
    pthread_mutex_lock(&p->cl.mu);
    p->flushing++;
    cl_client_wake(&p->cl);
    while (p->out_msgs > 0) {
        int wr = timeout_ms < 0 ? pthread_cond_wait(&p->cl.cond, &p->cl.mu)
                                : pthread_cond_timedwait(&p->cl.cond, &p->cl.mu, &dl);
        if (wr == ETIMEDOUT && p->out_msgs > 0) {
            rc = -ETIMEDOUT;
            break;
        }
    }
    p->flushing--;
    pthread_mutex_unlock(&p->cl.mu);
    return rc;
}

size_t strata_producer_outstanding(strata_producer_t *p)
{
    size_t n;

    if (!p)
        return 0;
    pthread_mutex_lock(&p->cl.mu);
    n = p->out_msgs;
    pthread_mutex_unlock(&p->cl.mu);
    return n;
}

void strata_producer_free(strata_producer_t *p)
{
    if (!p)
        return;
    cl_client_stop(&p->cl); /* in-flight batches come back with SC_ERR_CLOSED */
    pthread_mutex_lock(&p->cl.mu);
    fail_all(p, SC_ERR_CLOSED, 1);
    deliver(&p->cl); /* callbacks on this thread */
    for (cl_topic_t *t = p->cl.topics; t; t = t->next) {
        ptopic_t *pt = ptopic(t);
        if (!pt)
            continue;
        sc_free(pt->parts);
        sc_free(pt);
        t->role = NULL;
    }
    pthread_mutex_unlock(&p->cl.mu);
    sc_recbatch_fini(&p->scratch);
    sc_free(p->hscratch);
    while (p->nspare > 0)
        sc_buf_fini(&p->spare[--p->nspare]);
    cl_client_fini(&p->cl);
    sc_free(p);
}
