/*
 * bk_produce -- Produce (0) v3-v7 (reference.md §4.3, §5.2). Runs on the
 * connection's shard; every partition it appends to must be owned by that
 * shard (one shard today).
 *
 * Request: transactional_id (nullable string, v3+), acks int16, timeout_ms int32,
 * [topic: name, [partition: index int32, records nullable bytes]].
 * Response: [topic: name, [partition: index, error int16, base_offset int64,
 * log_append_time_ms int64, log_start_offset int64 (v5+)]], throttle_time_ms.
 *
 * Per partition, in Kafka's order: the partition must exist here (3); the
 * records must be exactly one magic-2 batch (87; framing errors 2); zstd
 * needs v7 (76), codecs above 4 are refused (76); transactional or control
 * batches from a client are refused (53 / 87: no transactions yet); the
 * batch must fit max.message.bytes (10); on a compacted topic every record
 * needs a key (CORRUPT_MESSAGE 2 before v8, as Kafka maps INVALID_RECORD;
 * check_keys, which decompresses a compressed batch into a scratch buffer --
 * other topics skip it). st_log_append then checks the CRC
 * (2) and queues the write of the batch straight from the request frame,
 * which the operation keeps referenced until the append callback -- the
 * log rewrites baseOffset / partitionLeaderEpoch in it. A LogAppendTime
 * topic has maxTimestamp and the timestamp-type bit set here and the CRC
 * recomputed (after checking the producer's CRC).
 *
 * Acks: -1/all and 1 are answered from the append callback: acks=all when the
 * batch is durable under the partition's flush policy (Strata's default
 * flush.messages=1 syncs every commit), acks=1 as soon as it is written to
 * the page cache (ST_APPEND_ACK_WRITTEN). acks=0: no response slot at all; an
 * error found before appending closes the connection (as Kafka does, the
 * only way to tell such a producer). The high watermark is not moved here but
 * by the log's progress listener (bk_part.c: the committed offset), which
 * also wakes parked fetches. Auto-creation: as in Kafka, Produce never
 * creates topics (Metadata does, per auto.create.topics.enable), so an
 * unknown topic is UNKNOWN_TOPIC_OR_PARTITION. timeout_ms is not enforced
 * yet: a single node's append completes or fails the log.
 *
 * Idempotent producers (reference.md §6, Kafka 3.7 ProducerAppendInfo): a
 * batch with producerId >= 0 is checked against that producer's state on the
 * partition (bk_pstate_t: epoch + last 5 batches). An older epoch is 47; a
 * batch equal to a cached one (same epoch, first and last sequence) is a
 * retry: not appended, answered 0 with the original base offset -- but
 * never before the original's own answer could have been: an acks=all
 * retry waits (bk__part_wait) until the log's committed offset (the flush
 * policy's durable point) passes the original's last offset, in cluster
 * mode until the ISR has it (bk__cluster_wait_isr); an acks=1 retry until
 * the original is written (page cache, what acks=1 answers on). The original
 * may still be queued in this very turn, or its sync in flight, when the
 * retry arrives (a client retrying on a new connection). If the log fails
 * first the retry is answered KAFKA_STORAGE_ERROR, like the original; a
 * sequence
 * gap is 45; a new epoch must start at sequence 0; an unknown producer is
 * accepted at any sequence. The state is updated when the append is queued,
 * so pipelined batches (up to 5 in flight) see their predecessors. It is
 * rebuilt at open from the batch headers of the log's last
 * BK_PID_SCAN_OFFSETS offsets (no snapshot file yet).
 */
#include "bk_int.h"

#include "sc_codec.h"
#include "sc_crc32c.h"
#include "sc_endian.h"
#include "sc_err.h"
#include "sc_log.h"
#include "sc_mem.h"
#include "sc_time.h"
#include "sc_varint.h"
#include "st_batch.h"

#include <string.h>
#include <unistd.h>

#define SUB "kafka"

typedef struct bk_produce bk_produce_t;

typedef struct {
    bk_produce_t *op;
    bk_part_t *part;
    int16_t err;
    int64_t base;
    int64_t log_start;
    int64_t append_time;
    bk_pwait_t wait; /* a retried batch waiting for its original (bk__part_wait) */
} pres_t;

struct bk_produce {
    bk_slot_t *slot;   /* NULL for acks=0 or once the connection closed */
    bk_frame_t *frame; /* referenced until every append completed */
    sc_rd_t topics;    /* the topics array, for writing the response */
    int32_t ntopics;
    int16_t version;
    int16_t acks;
    int pending;
    int64_t deadline;  /* monotonic ms: timeout_ms (cluster mode: acks=all ISR wait) */
    size_t nres;
    pres_t res[];
};

static void write_response(const bk_produce_t *op, sc_kw_t *w)
{
    sc_rd_t r = op->topics;
    size_t k = 0;
    sc_kw_array_len(w, op->ntopics);
    for (int32_t t = 0; t < op->ntopics; t++) {
        sc_kstr_t name;
        int32_t np;
        sc_kr_string(&r, 0, &name);
        sc_kr_array_len(&r, 0, 8, &np);
        sc_kw_string(w, name.p, (size_t)name.len);
        sc_kw_array_len(w, np);
        for (int32_t i = 0; i < np; i++, k++) {
            sc_kbytes_t rec;
            int32_t index = sc_kr_i32(&r);
            sc_kr_bytes(&r, 1, &rec);
            const pres_t *x = &op->res[k];
            sc_kw_i32(w, index);
            sc_kw_i16(w, x->err);
            sc_kw_i64(w, x->err ? -1 : x->base);
            if (op->version >= 2)
                sc_kw_i64(w, x->err ? -1 : x->append_time);
            if (op->version >= 5)
                sc_kw_i64(w, x->log_start);
        }
    }
    if (op->version >= 1)
        sc_kw_i32(w, 0); /* throttle_time_ms: last in Produce */
}

static void op_free(bk_produce_t *op)
{
    bk__frame_unref(op->frame);
    sc_free(op);
}

static void op_detach(bk_slot_t *s)
{
    bk_produce_t *op = s->op;
    op->slot = NULL;
}

/* All appends done: answer (if anyone still waits) and free. */
static void op_finish(bk_produce_t *op)
{
    bk_slot_t *s = op->slot;
    if (s) {
        sc_kw_t w;
        sc_kw_init(&w, &s->buf);
        write_response(op, &w);
        if (w.err) {
            SC_WARN(SUB, "out of memory building a produce response; closing the connection");
            s->op = NULL;
            s->detach = NULL;
            bk__conn_close(s->conn);
        } else {
            sc_kw_patch_i32(&w, 0, (int32_t)(s->buf.len - 4));
            bk__slot_complete(s);
        }
    }
    op_free(op);
}

static void append_done(void *arg, int rc, int64_t base, int64_t last)
{
    pres_t *x = arg;
    bk_produce_t *op = x->op;
    bk_part_t *p = x->part;
    (void)base;
    if (rc != 0)
        bk__part_waits_check(p); /* retries of this batch waiting for it: failed too */
    if (rc == 0) {
        /* the high watermark moves in part_progress (bk_part.c) */
        x->log_start = st_log_start_offset(p->log);
        /* cluster mode: acks=all answers once every ISR member has the batch */
        if (op->acks == -1 && bk__cluster_wait_isr(p->shard->srv, p, last + 1, op->deadline, x))
            return;
    } else {
        x->err = bk__storage_err(rc);
        SC_DEBUG(SUB, "%s-%d: append failed: %s", p->topic, p->partition, sc_err_str(rc));
    }
    if (--op->pending == 0)
        op_finish(op);
}

void bk__produce_isr_done(void *arg, int16_t err)
{
    pres_t *x = arg;
    bk_produce_t *op = x->op;
    if (err)
        x->err = err;
    if (--op->pending == 0)
        op_finish(op);
}

/* A retried batch's wait for its original is over (bk__part_wait). In cluster
 * mode the partition may have changed hands meanwhile (a follower truncates
 * and refills its log, so the offset could hold another batch by now): then
 * NOT_LEADER_OR_FOLLOWER, and the producer retries at the new leader. */
static void dup_wait_done(void *arg, int16_t err)
{
    pres_t *x = arg;
    bk_part_t *p = x->part;
    if (!err && bk__cluster_not_leader(p->shard->srv, p->topic, strlen(p->topic), p->partition))
        err = SC_ERR_NOT_LEADER_OR_FOLLOWER;
    bk__produce_isr_done(arg, err);
}

/* ---- idempotent producer state --------------------------------------------- */

static int32_t seq_add(int32_t seq, int32_t n)
{
    int64_t x = (int64_t)seq + n;
    return (int32_t)(x > INT32_MAX ? x - INT32_MAX - 1 : x);
}

static bk_pstate_t *pid_find(bk_part_t *p, int64_t pid)
{
    for (unsigned i = 0; i < p->npids; i++)
        if (p->pids[i].pid == pid)
            return &p->pids[i];
    return NULL;
}

/* The state of pid, created (evicting the least recently used at
 * BK_PID_MAX). NULL on no memory. */
static bk_pstate_t *pid_get(bk_part_t *p, int64_t pid)
{
    bk_pstate_t *st = pid_find(p, pid);
    if (st)
        return st;
    if (p->npids == BK_PID_MAX) {
        unsigned old = 0;
        for (unsigned i = 1; i < p->npids; i++)
            if (p->pids[i].last_used < p->pids[old].last_used)
                old = i;
        st = &p->pids[old];
    } else {
        if (p->npids % 16 == 0) {
            bk_pstate_t *v = sc_realloc(p->pids, (p->npids + 16) * sizeof *v);
            if (!v)
                return NULL;
            p->pids = v;
        }
        st = &p->pids[p->npids++];
    }
    memset(st, 0, sizeof *st);
    st->pid = pid;
    st->epoch = -1;
    return st;
}

/* Records a batch appended at [base, last] for its producer. */
static void pid_record(bk_part_t *p, const st_batch_hdr_t *h, int64_t base)
{
    bk_pstate_t *st = pid_get(p, h->producer_id);
    if (!st)
        return; /* no memory: the producer is then treated as new (accepted) */
    if (h->producer_epoch != st->epoch) {
        st->epoch = h->producer_epoch;
        st->n = st->next = 0;
    }
    st->b[st->next] = (bk_pbatch_t){.first_seq = h->base_sequence,
                                    .last_seq = seq_add(h->base_sequence, h->last_offset_delta),
                                    .base = base,
                                    .last = base + h->last_offset_delta};
    st->next = (uint8_t)((st->next + 1) % BK_PID_BATCHES);
    if (st->n < BK_PID_BATCHES)
        st->n++;
    st->last_used = ++p->pid_clock;
}

/* Checks an idempotent batch. 0 to append, -1 for a duplicate (*dup_base,
 * *dup_last = the original's first and last offsets), or a Kafka error. */
static int pid_check(bk_part_t *p, const st_batch_hdr_t *h, int64_t *dup_base, int64_t *dup_last)
{
    bk_pstate_t *st = pid_find(p, h->producer_id);
    if (!st || st->n == 0)
        return 0;
    if (h->producer_epoch < st->epoch)
        return SC_ERR_INVALID_PRODUCER_EPOCH;
    if (h->producer_epoch > st->epoch)
        return h->base_sequence == 0 ? 0 : SC_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER;
    int32_t last = seq_add(h->base_sequence, h->last_offset_delta);
    for (unsigned i = 0; i < st->n; i++) {
        if (st->b[i].first_seq == h->base_sequence && st->b[i].last_seq == last) {
            *dup_base = st->b[i].base;
            *dup_last = st->b[i].last;
            return -1;
        }
    }
    const bk_pbatch_t *newest = &st->b[(st->next + BK_PID_BATCHES - 1) % BK_PID_BATCHES];
    if (h->base_sequence != seq_add(newest->last_seq, 1))
        return SC_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER;
    return 0;
}

void bk__pids_rebuild(bk_part_t *p)
{
    int64_t leo = st_log_end_offset(p->log);
    int64_t off = st_log_start_offset(p->log);
    unsigned batches = 0;
    if (leo - off > BK_PID_SCAN_OFFSETS)
        off = leo - BK_PID_SCAN_OFFSETS;
    while (off < leo) {
        st_slice_t sl;
        int rc = st_log_read(p->log, off, 64u << 20, INT64_MAX, &sl);
        if (rc || sl.len == 0) {
            if (rc)
                SC_WARN(SUB, "%s-%d: rebuilding producer state at %lld: %s", p->topic,
                        p->partition, (long long)off, sc_err_str(rc));
            break;
        }
        for (uint64_t pos = sl.pos; pos + ST_BATCH_HEADER_SIZE <= sl.pos + sl.len;) {
            uint8_t hb[ST_BATCH_HEADER_SIZE];
            st_batch_hdr_t h;
            if (pread(sl.fd, hb, sizeof hb, (off_t)pos) != (ssize_t)sizeof hb ||
                st_batch_hdr_decode(hb, sizeof hb, &h) || h.length < ST_BATCH_HEADER_SIZE - 12)
                break;
            if (h.producer_id >= 0 && !(h.attributes & ST_BATCH_ATTR_CONTROL)) {
                pid_record(p, &h, h.base_offset);
                batches++;
            }
            pos += (uint64_t)h.length + ST_BATCH_LOG_OVERHEAD;
        }
        off = sl.next_offset;
    }
    if (p->npids)
        SC_INFO(SUB, "%s-%d: producer state of %u producer id(s) rebuilt from %u batch(es)",
                p->topic, p->partition, p->npids, batches);
}

/* Walks the records field: exactly one magic-2 batch. 0, or the Kafka error. */
static int check_one_batch(const sc_kbytes_t *rec, int16_t version, st_batch_hdr_t *h)
{
    /* magic sits at byte 16 in every message format (offset, size, crc) */
    if (rec->len > ST_BATCH_OFF_MAGIC && rec->p[ST_BATCH_OFF_MAGIC] != ST_BATCH_MAGIC &&
        version < 3)
        return SC_ERR_UNSUPPORTED_FOR_MESSAGE_FORMAT; /* MessageSet v0/v1: not stored */
    if (rec->len < ST_BATCH_HEADER_SIZE)
        return rec->len <= 0 ? SC_ERR_INVALID_RECORD : SC_ERR_CORRUPT_MESSAGE;
    int64_t size = st_batch_size(rec->p, (size_t)rec->len);
    if (size < 0 || size > rec->len)
        return SC_ERR_CORRUPT_MESSAGE;
    if (rec->p[ST_BATCH_OFF_MAGIC] != ST_BATCH_MAGIC)
        return SC_ERR_INVALID_RECORD;
    if (size != rec->len)
        return SC_ERR_INVALID_RECORD; /* more than one batch (or trailing bytes) */
    st_batch_hdr_decode(rec->p, (size_t)rec->len, h);
    int codec = h->attributes & ST_BATCH_ATTR_CODEC_MASK;
    if (codec > 4 || (codec == 4 && version < 7))
        return SC_ERR_UNSUPPORTED_COMPRESSION_TYPE;
    if (h->attributes & ST_BATCH_ATTR_TRANSACTIONAL)
        return SC_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
    if (h->attributes & ST_BATCH_ATTR_CONTROL)
        return SC_ERR_INVALID_RECORD;
    return 0;
}

/* Decompressed records of one batch are bounded by this (a bomb is corrupt
 * input, as in the cleaner). */
#define BK_KEYS_MAX_DECOMPRESSED (256u << 20)

/* Compacted topics (cleanup.policy contains compact): every record needs a
 * key, as Kafka's LogValidator requires ("Compacted topic cannot accept
 * message without key") -- the cleaner could never drop a keyless record.
 * Walks the records (decompressed into a scratch buffer for a compressed
 * batch). 0; the Kafka error for a keyless record (INVALID_RECORD, which
 * Produce before v8 reports as CORRUPT_MESSAGE, as Kafka does); or
 * CORRUPT_MESSAGE for records that do not parse. *keyless = index of the
 * first keyless record in the batch, for the log. Only called for
 * compacted topics: the only cost elsewhere is the policy test. */
static int check_keys(const sc_kbytes_t *rec, const st_batch_hdr_t *h, int16_t version,
                      int32_t *keyless)
{
    const uint8_t *q = rec->p + ST_BATCH_HEADER_SIZE, *end = rec->p + rec->len;
    int codec = h->attributes & ST_BATCH_ATTR_CODEC_MASK;
    sc_buf_t scratch;
    int rc = 0;
    sc_buf_init(&scratch);
    if (codec != 0) {
        rc = sc_codec_decompress(codec, q, (size_t)(end - q), BK_KEYS_MAX_DECOMPRESSED, &scratch);
        if (rc) {
            sc_buf_fini(&scratch);
            return rc == SC_ERR_NO_MEMORY ? rc : SC_ERR_CORRUPT_MESSAGE;
        }
        q = scratch.data;
        end = scratch.data + scratch.len;
    }
    if (h->records_count < 0)
        rc = SC_ERR_CORRUPT_MESSAGE;
    for (int32_t i = 0; !rc && i < h->records_count; i++) {
        int64_t len, v;
        size_t k = sc_varint_decode(q, (size_t)(end - q), &len), o;
        if (!k || len < 1 || (uint64_t)len > (uint64_t)(end - q) - k) {
            rc = SC_ERR_CORRUPT_MESSAGE;
            break;
        }
        const uint8_t *r = q + k + 1, *rend = q + k + len; /* past the attributes byte */
        /* timestampDelta, offsetDelta, keyLength */
        for (int f = 0; f < 3 && !rc; f++) {
            if (!(o = sc_varint_decode(r, (size_t)(rend - r), &v)))
                rc = SC_ERR_CORRUPT_MESSAGE;
            r += o;
        }
        if (rc)
            break;
        if (v < -1 || (v >= 0 && (uint64_t)v > (uint64_t)(rend - r))) {
            rc = SC_ERR_CORRUPT_MESSAGE;
            break;
        }
        if (v == -1) {
            *keyless = i;
            rc = version >= 8 ? SC_ERR_INVALID_RECORD : SC_ERR_CORRUPT_MESSAGE;
            break;
        }
        q = rend;
    }
    if (!rc && q != end)
        rc = SC_ERR_CORRUPT_MESSAGE; /* bytes after the last record */
    sc_buf_fini(&scratch);
    return rc;
}

/* LogAppendTime: stamp the batch (inside the CRC) after checking it. */
static int stamp_append_time(uint8_t *b, size_t len, int64_t now)
{
    int rc = st_batch_validate(b, len, 0, NULL);
    if (rc)
        return rc;
    uint16_t attr = sc_load_be16(b + ST_BATCH_OFF_ATTRIBUTES);
    sc_store_be16(b + ST_BATCH_OFF_ATTRIBUTES, (uint16_t)(attr | ST_BATCH_ATTR_LOG_APPEND_TIME));
    sc_store_be64(b + ST_BATCH_OFF_MAX_TIMESTAMP, (uint64_t)now);
    sc_store_be32(b + ST_BATCH_OFF_CRC,
                  sc_crc32c(0, b + ST_BATCH_OFF_ATTRIBUTES, len - ST_BATCH_OFF_ATTRIBUTES));
    return 0;
}

/* Validates and appends one partition's records; x->err on failure. */
static void produce_one(bk_req_t *req, bk_produce_t *op, pres_t *x, sc_kstr_t topic,
                        int32_t index, sc_kbytes_t rec)
{
    bk_server_t *srv = req->srv;
    bk_part_t *p = bk__part_find(srv, topic.p, (size_t)topic.len, index);
    st_batch_hdr_t h;
    int64_t base, leo;
    int rc;

    x->op = op;
    x->append_time = -1;
    x->log_start = -1;
    if (!p) {
        x->err = SC_ERR_UNKNOWN_TOPIC_OR_PARTITION;
        return;
    }
    x->part = p;
    x->log_start = st_log_start_offset(p->log);
    if (bk__topic_is_internal(topic.p, (size_t)topic.len)) {
        x->err = SC_ERR_INVALID_TOPIC_EXCEPTION; /* Kafka: only the broker appends there */
        return;
    }
    if (!req->conn || p->shard != req->conn->shard) {
        x->err = SC_ERR_NOT_LEADER_OR_FOLLOWER; /* owned by another shard: not forwarded yet */
        return;
    }
    if (bk__cluster_not_leader(srv, topic.p, (size_t)topic.len, index)) {
        x->err = SC_ERR_NOT_LEADER_OR_FOLLOWER; /* cluster mode: another broker leads it */
        return;
    }
    if (op->acks == -1 && bk__cluster_isr_short(srv, topic.p, (size_t)topic.len, index)) {
        x->err = SC_ERR_NOT_ENOUGH_REPLICAS; /* ISR below min.insync.replicas */
        return;
    }
    if ((rc = check_one_batch(&rec, op->version, &h)) != 0) {
        x->err = (int16_t)rc;
        return;
    }
    if (rec.len > p->max_message_bytes) {
        x->err = SC_ERR_MESSAGE_TOO_LARGE;
        return;
    }
    int32_t keyless = -1;
    if (st_log_config(p->log)->compact && (rc = check_keys(&rec, &h, op->version, &keyless))) {
        if (keyless >= 0)
            SC_DEBUG(SUB, "%s-%d: compacted topic cannot accept a record without a key "
                          "(record %d of the batch); batch refused",
                     p->topic, p->partition, keyless);
        x->err = (int16_t)rc;
        return;
    }
    int64_t dup_base = -1, dup_last = -1;
    if (h.producer_id >= 0 && (rc = pid_check(p, &h, &dup_base, &dup_last)) != 0) {
        if (rc == -1) {
            SC_DEBUG(SUB, "%s-%d: duplicate batch of producer %lld (seq %d) -> offset %lld",
                     p->topic, p->partition, (long long)h.producer_id, h.base_sequence,
                     (long long)dup_base);
            x->base = dup_base;
            /* cluster mode, acks=all: answered as the original would be, once
             * the ISR has it (Kafka's DelayedProduce waits for the original's
             * last offset + 1 too) -- not before, or a retry could be
             * acknowledged while only this broker holds the batch */
            if (op->acks == -1 && bk__cluster_wait_isr(srv, p, dup_last + 1, op->deadline, x)) {
                op->pending++;
            } else if (op->acks != 0) {
                /* and on every node: not before the original's own answer
                 * could have been (written for acks=1, committed for acks=all) */
                x->wait = (bk_pwait_t){.end = dup_last + 1, .written = op->acks == 1,
                                       .done = dup_wait_done, .arg = x};
                int w = bk__part_wait(p, &x->wait);
                if (w == 1)
                    op->pending++;
                else if (w != 0)
                    x->err = (int16_t)w;
            }
        } else {
            x->err = (int16_t)rc;
        }
        return;
    }
    if (p->log_append_time) {
        x->append_time = sc_now_ms();
        if ((rc = stamp_append_time((uint8_t *)rec.p, (size_t)rec.len, x->append_time)) != 0) {
            x->err = (int16_t)rc;
            return;
        }
    }
    /* the frame is ours and writable (bk_frame_t); the log sets offsets in it */
    /* acks=1 is answered once the bytes reach the page cache; acks=all once
     * the topic's flush policy has them durable */
    rc = st_log_append_ex(p->log, (void *)(uintptr_t)rec.p, (size_t)rec.len,
                          bk__cluster_leader_epoch(srv, topic.p, (size_t)topic.len, index),
                          op->acks == 1 ? ST_APPEND_ACK_WRITTEN : 0, append_done, x, &base, &leo);
    if (rc) {
        if (rc != SC_ERR_CORRUPT_MESSAGE && rc != SC_ERR_INVALID_RECORD &&
            rc != SC_ERR_MESSAGE_TOO_LARGE)
            SC_WARN(SUB, "%s-%d: append: %s", p->topic, p->partition, sc_err_str(rc));
        x->err = bk__storage_err(rc);
        return;
    }
    x->base = base;
    if (h.producer_id >= 0)
        pid_record(p, &h, base);
    op->pending++;
    bk__part_dirty(p);
}

int bk__h_produce(bk_req_t *req, sc_kw_t *w)
{
    sc_rd_t *r = &req->body;
    sc_kstr_t tid = {NULL, -1};
    int32_t ntopics;
    size_t nparts = 0;

    if (req->hdr.api_version >= 3) /* v0-v2 have no transactional_id */
        sc_kr_string(r, 1, &tid);
    int16_t acks = sc_kr_i16(r);
    int32_t timeout_ms = sc_kr_i32(r);
    sc_kr_array_len(r, 0, 6, &ntopics);
    sc_rd_t topics = *r;
    for (int32_t t = 0; t < ntopics && !r->err; t++) {
        sc_kstr_t name;
        int32_t np;
        sc_kr_string(r, 0, &name);
        sc_kr_array_len(r, 0, 8, &np);
        for (int32_t i = 0; i < np && !r->err; i++) {
            sc_kbytes_t rec;
            sc_kr_i32(r);
            sc_kr_bytes(r, 1, &rec);
            nparts++;
        }
    }
    if (r->err)
        return r->err;

    bk_produce_t *op = sc_calloc(1, sizeof *op + nparts * sizeof op->res[0]);
    if (!op)
        return SC_ERR_NO_MEMORY;
    op->topics = topics;
    op->ntopics = ntopics;
    op->version = req->hdr.api_version;
    op->acks = acks;
    op->deadline = sc_mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    op->nres = nparts;
    op->pending = 1; /* held by this function until every partition is queued */
    if (req->frame) {
        op->frame = req->frame;
        req->frame->refs++;
    }

    int16_t all_err = 0;
    if (acks != 0 && acks != 1 && acks != -1)
        all_err = SC_ERR_INVALID_REQUIRED_ACKS;
    else if (tid.len >= 0)
        all_err = SC_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED; /* no transactions yet */
    else if (!req->frame || !req->conn)
        all_err = SC_ERR_UNKNOWN_TOPIC_OR_PARTITION; /* no storage without a connection */

    sc_rd_t rr = topics;
    size_t k = 0;
    int16_t first_err = 0;
    for (int32_t t = 0; t < ntopics; t++) {
        sc_kstr_t name;
        int32_t np;
        sc_kr_string(&rr, 0, &name);
        sc_kr_array_len(&rr, 0, 8, &np);
        for (int32_t i = 0; i < np; i++, k++) {
            sc_kbytes_t rec;
            int32_t index = sc_kr_i32(&rr);
            sc_kr_bytes(&rr, 1, &rec);
            op->res[k].op = op;
            op->res[k].append_time = -1;
            op->res[k].log_start = -1;
            if (all_err)
                op->res[k].err = all_err;
            else
                produce_one(req, op, &op->res[k], name, index, rec);
            if (op->res[k].err && !first_err)
                first_err = op->res[k].err;
        }
    }
    op->pending--;

    if (acks == 0) {
        req->no_response = 1;
        if (first_err) {
            SC_INFO(SUB, "conn %llu %s: acks=0 produce failed (%s); closing the connection",
                    req->conn ? (unsigned long long)req->conn->id : 0ULL,
                    req->conn ? req->conn->peer : "-", sc_err_name(first_err));
            req->close_conn = 1;
            req->no_response = 0;
        }
        if (op->pending == 0)
            op_free(op);
        return 0;
    }
    if (op->pending == 0) {
        write_response(op, w);
        op_free(op);
        return 0;
    }
    op->slot = req->slot;
    req->slot->op = op;
    req->slot->detach = op_detach;
    req->async = 1;
    return 0;
}
