/*
 * bk_fetch -- Fetch (1) v4-v11 with long polling and sendfile, plus the
 * offset APIs: ListOffsets (2) v1-v3, DeleteRecords (21) v0-v1,
 * OffsetForLeaderEpoch (23) v2-v3 (reference.md §4.4, §4.5, §4.17, §4.19).
 * Runs on the connection's shard; partitions owned by another shard answer
 * NOT_LEADER_OR_FOLLOWER (one shard today).
 *
 * Fetch: the request is decoded into a bk_fetch_t (names copied: the frame
 * is not kept). It is answered at once when any partition has an error or
 * at least min_bytes are readable below the high watermarks, or when
 * max_wait_ms is 0; otherwise it is parked on the shard: bk__fetch_wake
 * re-checks parked fetches whenever a high watermark moved (append
 * callbacks), the shard's fetch timer answers them at their deadline, and a
 * stop answers them with what there is. A parked fetch holds its slot (not
 * ready), so later responses on that connection wait, as in Kafka.
 *
 * Records go out from the segment files: st_log_read gives whole batches
 * (from the one holding fetch_offset, never past the high watermark) as a
 * file slice, which becomes a file piece of the response (bk_conn.c: sent
 * with sendfile(2), the fd dup'ed so retention cannot close it mid-send).
 * Without a connection (bk_dispatch_frame_for_test) the bytes are copied.
 * Limits: partition_max_bytes per partition and max_bytes for the response,
 * except that the first batch of the first non-empty partition always goes
 * (KIP-74), so consumers make progress past a large batch.
 *
 * Sessions (v7+): session 0 with epoch -1 (or 0: a session would be created,
 * we decline) is sessionless and answered with session id 0; a non-zero
 * session id is FETCH_SESSION_ID_NOT_FOUND; other epochs with session 0 are
 * INVALID_FETCH_SESSION_EPOCH. No transactions: last_stable_offset = high
 * watermark, aborted_transactions empty, for both isolation levels.
 */
#include "bk_int.h"

#include "sc_err.h"
#include "sc_log.h"
#include "sc_mem.h"
#include "sc_time.h"
#include "st_batch.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#define SUB "kafka"

typedef struct {
    int32_t partition;
    int32_t cur_epoch;
    int64_t offset;
    int32_t max_bytes;
} fpart_t;

typedef struct {
    const char *name; /* in the fetch's name blob */
    size_t len;
    int32_t n;
    fpart_t *parts;
} ftopic_t;

struct bk_fetch {
    bk_fetch_t *prev, *next; /* shard's parked list */
    bk_shard_t *sh;
    bk_slot_t *slot;
    int16_t version;
    int16_t top_error;
    int32_t replica_id; /* >= 0: a follower (cluster mode) */
    int32_t max_wait, min_bytes, max_bytes;
    int64_t deadline; /* monotonic ms */
    int32_t ntopics;
    ftopic_t *topics;
};

/* ---- decode ------------------------------------------------------------------- */

/* Reads the request into a new bk_fetch_t. 0, a reader error (malformed), or
 * SC_ERR_NO_MEMORY. */
static int fetch_decode(sc_rd_t *r, int v, bk_fetch_t **out)
{
    int32_t session_id = 0, session_epoch = -1, ntopics;
    int32_t replica_id = sc_kr_i32(r); /* -1 for consumers; a broker id for followers */
    int32_t max_wait = sc_kr_i32(r);
    int32_t min_bytes = sc_kr_i32(r);
    int32_t max_bytes = sc_kr_i32(r);
    sc_kr_i8(r); /* isolation_level: no transactions, both read up to the hw */
    if (v >= 7) {
        session_id = sc_kr_i32(r);
        session_epoch = sc_kr_i32(r);
    }
    size_t pmin = 16 + (v >= 9 ? 4 : 0) + (v >= 5 ? 8 : 0);
    sc_kr_array_len(r, 0, 6, &ntopics);
    sc_rd_t topics = *r;
    size_t nparts = 0, names = 0;
    for (int32_t t = 0; t < ntopics && !r->err; t++) {
        sc_kstr_t name;
        int32_t np;
        sc_kr_string(r, 0, &name);
        sc_kr_array_len(r, 0, pmin, &np);
        names += (size_t)(name.len > 0 ? name.len : 0) + 1;
        nparts += (size_t)(np > 0 ? np : 0);
        for (int32_t i = 0; i < np && !r->err; i++) {
            sc_kr_i32(r);
            if (v >= 9)
                sc_kr_i32(r);
            sc_kr_i64(r);
            if (v >= 5)
                sc_kr_i64(r);
            sc_kr_i32(r);
        }
    }
    if (v >= 7) { /* forgotten topics: meaningful only inside a session */
        int32_t nf;
        sc_kr_array_len(r, 0, 6, &nf);
        for (int32_t t = 0; t < nf && !r->err; t++) {
            sc_kstr_t name;
            int32_t np;
            sc_kr_string(r, 0, &name);
            sc_kr_array_len(r, 0, 4, &np);
            for (int32_t i = 0; i < np && !r->err; i++)
                sc_kr_i32(r);
        }
    }
    if (v >= 11) {
        sc_kstr_t rack;
        sc_kr_string(r, 1, &rack);
    }
    if (r->err)
        return r->err;

    /* one allocation: the fetch, its topics, partitions and names, all
     * bounded by the request's size (counts were checked against it) */
    size_t sz = sizeof(bk_fetch_t) + (size_t)ntopics * sizeof(ftopic_t) + nparts * sizeof(fpart_t) +
                names;
    bk_fetch_t *f = sc_calloc(1, sz);
    if (!f)
        return SC_ERR_NO_MEMORY;
    f->version = (int16_t)v;
    f->replica_id = replica_id;
    f->max_wait = max_wait < 0 ? 0 : max_wait;
    f->min_bytes = min_bytes;
    f->max_bytes = max_bytes;
    f->ntopics = ntopics;
    f->topics = (ftopic_t *)(f + 1);
    fpart_t *pp = (fpart_t *)(f->topics + ntopics);
    char *np_ = (char *)(pp + nparts);
    if (v >= 7) {
        if (session_id != 0)
            f->top_error = SC_ERR_FETCH_SESSION_ID_NOT_FOUND;
        else if (session_epoch != -1 && session_epoch != 0)
            f->top_error = SC_ERR_INVALID_FETCH_SESSION_EPOCH;
    }
    for (int32_t t = 0; t < ntopics; t++) {
        sc_kstr_t name;
        int32_t np;
        ftopic_t *ft = &f->topics[t];
        sc_kr_string(&topics, 0, &name);
        sc_kr_array_len(&topics, 0, pmin, &np);
        ft->len = (size_t)name.len;
        if (name.len > 0)
            memcpy(np_, name.p, (size_t)name.len);
        np_[name.len] = 0;
        ft->name = np_;
        np_ += (size_t)name.len + 1;
        ft->n = np;
        ft->parts = pp;
        for (int32_t i = 0; i < np; i++, pp++) {
            pp->partition = sc_kr_i32(&topics);
            pp->cur_epoch = v >= 9 ? sc_kr_i32(&topics) : -1;
            pp->offset = sc_kr_i64(&topics);
            if (v >= 5)
                sc_kr_i64(&topics); /* log_start_offset: followers only */
            pp->max_bytes = sc_kr_i32(&topics);
        }
    }
    *out = f;
    return 0;
}

/* ---- per partition ------------------------------------------------------------- */

/* The partition's state for a read, or an error code. */
static int16_t part_check(const bk_server_t *srv, const bk_shard_t *sh, const ftopic_t *t,
                          const fpart_t *fp, bk_part_t **out)
{
    bk_part_t *p = bk__part_find(srv, t->name, t->len, fp->partition);
    if (!p)
        return SC_ERR_UNKNOWN_TOPIC_OR_PARTITION;
    if (sh && p->shard != sh)
        return SC_ERR_NOT_LEADER_OR_FOLLOWER;
    if (bk__cluster_not_leader(srv, t->name, t->len, fp->partition))
        return SC_ERR_NOT_LEADER_OR_FOLLOWER; /* cluster mode: another broker leads it */
    if (st_log_failed(p->log))
        return SC_ERR_KAFKA_STORAGE_ERROR;
    if (fp->cur_epoch >= 0) {
        int32_t e = st_log_epoch_latest(p->log);
        if (e < 0)
            e = 0; /* the epoch this node leads with (batches are stamped 0) */
        if (fp->cur_epoch < e)
            return SC_ERR_FENCED_LEADER_EPOCH;
        if (fp->cur_epoch > e)
            return SC_ERR_UNKNOWN_LEADER_EPOCH;
    }
    if (fp->offset < st_log_start_offset(p->log) || fp->offset > st_log_end_offset(p->log))
        return SC_ERR_OFFSET_OUT_OF_RANGE;
    *out = p;
    return 0;
}

/* Where a read stops: the high watermark for consumers; for a follower
 * (cluster mode) the committed offset, since the high watermark waits for
 * the followers themselves (min over the ISR). */
static int64_t read_end(const bk_fetch_t *f, st_log_t *log)
{
    return f->replica_id >= 0 ? st_log_committed_offset(log) : st_log_high_watermark(log);
}

/* 1 when f should be answered now. */
static int fetch_ready(const bk_server_t *srv, const bk_fetch_t *f, const bk_shard_t *sh)
{
    int64_t bytes = 0;
    if (f->top_error || f->max_wait == 0 || sh->stopping)
        return 1;
    for (int32_t t = 0; t < f->ntopics; t++) {
        for (int32_t i = 0; i < f->topics[t].n; i++) {
            const fpart_t *fp = &f->topics[t].parts[i];
            bk_part_t *p;
            if (part_check(srv, sh, &f->topics[t], fp, &p))
                return 1;
            int64_t hw = read_end(f, p->log);
            if (fp->offset >= hw)
                continue;
            if (f->min_bytes <= 1)
                return 1;
            st_slice_t sl;
            if (st_log_read(p->log, fp->offset, fp->max_bytes > 0 ? (uint64_t)fp->max_bytes : 1, hw,
                            &sl))
                return 1;
            bytes += (int64_t)sl.len;
            if (bytes >= f->min_bytes)
                return 1;
        }
    }
    return 0;
}

/* Appends len bytes of fd at pos to w (no connection: copy). */
static int copy_file(sc_kw_t *w, int fd, uint64_t pos, uint64_t len)
{
    if (sc_buf_reserve(w->b, (size_t)len)) {
        w->err = SC_ERR_NO_MEMORY;
        return w->err;
    }
    uint8_t *dst = w->b->data + w->b->len;
    size_t done = 0;
    while (done < len) {
        ssize_t n = pread(fd, dst + done, (size_t)len - done, (off_t)(pos + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? -errno : -EIO;
        done += (size_t)n;
    }
    w->b->len += len;
    return 0;
}

/* Writes the response body of f into w (slot: file pieces; NULL: copies).
 * 0, or an error that closes the connection (no memory, dup failed). */
static int fetch_write(const bk_server_t *srv, const bk_fetch_t *f, const bk_shard_t *sh,
                       bk_slot_t *slot, sc_kw_t *w)
{
    int v = f->version;
    int64_t remaining = f->max_bytes;
    int have_data = 0;
    sc_kw_i32(w, 0); /* throttle_time_ms */
    if (v >= 7) {
        sc_kw_i16(w, f->top_error);
        sc_kw_i32(w, 0); /* session_id: sessionless */
    }
    if (f->top_error) {
        sc_kw_array_len(w, 0);
        return w->err;
    }
    sc_kw_array_len(w, f->ntopics);
    for (int32_t t = 0; t < f->ntopics; t++) {
        const ftopic_t *ft = &f->topics[t];
        sc_kw_string(w, ft->name, ft->len);
        sc_kw_array_len(w, ft->n);
        for (int32_t i = 0; i < ft->n; i++) {
            const fpart_t *fp = &ft->parts[i];
            bk_part_t *p = NULL;
            int16_t err = part_check(srv, sh, ft, fp, &p);
            int64_t hw = -1, ls = -1;
            st_slice_t sl = {.fd = -1};
            if (!err) {
                hw = st_log_high_watermark(p->log);
                ls = st_log_start_offset(p->log);
                int64_t end = read_end(f, p->log);
                if (fp->offset < end && fp->max_bytes > 0 && (remaining > 0 || !have_data)) {
                    uint64_t lim = (uint64_t)fp->max_bytes;
                    if (have_data && (uint64_t)remaining < lim)
                        lim = (uint64_t)remaining;
                    int rc = st_log_read(p->log, fp->offset, lim, end, &sl);
                    if (rc) {
                        SC_WARN(SUB, "%s-%d: read at %lld: %s", p->topic, p->partition,
                                (long long)fp->offset, sc_err_str(rc));
                        err = bk__storage_err(rc);
                        hw = ls = -1;
                        sl.len = 0;
                    } else if (have_data && sl.len > lim) {
                        sl.len = 0; /* only the first partition may exceed the limits */
                    }
                }
            }
            sc_kw_i32(w, fp->partition);
            sc_kw_i16(w, err);
            sc_kw_i64(w, hw);
            sc_kw_i64(w, hw); /* last_stable_offset: no transactions */
            if (v >= 5)
                sc_kw_i64(w, ls);
            sc_kw_array_len(w, 0); /* aborted_transactions */
            if (v >= 11)
                sc_kw_i32(w, -1); /* preferred_read_replica: none */
            sc_kw_i32(w, (int32_t)sl.len);
            if (sl.len) {
                int rc = slot ? bk__slot_add_file(slot, sl.fd, sl.pos, sl.len)
                              : copy_file(w, sl.fd, sl.pos, sl.len);
                if (rc)
                    return rc;
                have_data = 1;
                remaining -= (int64_t)sl.len;
            }
        }
    }
    return w->err;
}

/* ---- parking ----------------------------------------------------------------- */

static void on_fetch_timer(uv_timer_t *t);

static void arm_timer(bk_shard_t *sh)
{
    int64_t first = INT64_MAX;
    for (bk_fetch_t *f = sh->parked; f; f = f->next)
        if (f->deadline < first)
            first = f->deadline;
    if (first == INT64_MAX) {
        uv_timer_stop(&sh->fetch_timer);
        return;
    }
    int64_t now = sc_mono_ms();
    uv_timer_start(&sh->fetch_timer, on_fetch_timer, (uint64_t)(first > now ? first - now : 0), 0);
}

static void unpark(bk_fetch_t *f)
{
    bk_shard_t *sh = f->sh;
    if (f->prev)
        f->prev->next = f->next;
    else
        sh->parked = f->next;
    if (f->next)
        f->next->prev = f->prev;
    f->prev = f->next = NULL;
}

static void fetch_detach(bk_slot_t *s)
{
    bk_fetch_t *f = s->op;
    unpark(f);
    sc_free(f);
}

/* Answers a parked fetch and frees it. */
static void fetch_complete(bk_fetch_t *f)
{
    bk_slot_t *s = f->slot;
    bk_conn_t *c = s->conn;
    sc_kw_t w;
    unpark(f);
    sc_kw_init(&w, &s->buf);
    int rc = fetch_write(c->shard->srv, f, f->sh, s, &w);
    sc_free(f);
    s->op = NULL;
    s->detach = NULL;
    if (rc) {
        SC_WARN(SUB, "conn %llu %s: building a fetch response: %s; closing",
                (unsigned long long)c->id, c->peer, sc_err_str(rc));
        bk__conn_close(c);
        return;
    }
    sc_kw_patch_i32(&w, 0, (int32_t)(s->buf.len - 4 + bk__slot_file_bytes(s)));
    bk__slot_complete(s);
}

static void on_fetch_timer(uv_timer_t *t)
{
    bk_shard_t *sh = t->data;
    int64_t now = sc_mono_ms();
    bk_fetch_t *f = sh->parked;
    while (f) {
        bk_fetch_t *next = f->next;
        if (f->deadline <= now)
            fetch_complete(f);
        f = next;
    }
    arm_timer(sh);
}

void bk__fetch_wake(bk_shard_t *sh)
{
    sh->hw_moved = 0;
    bk_fetch_t *f = sh->parked;
    int any = 0;
    while (f) {
        bk_fetch_t *next = f->next;
        if (fetch_ready(sh->srv, f, sh)) {
            fetch_complete(f);
            any = 1;
        }
        f = next;
    }
    if (any && sh->storage_handles)
        arm_timer(sh);
}

void bk__fetch_flush_all(bk_shard_t *sh)
{
    while (sh->parked)
        fetch_complete(sh->parked);
}

int bk__h_fetch(bk_req_t *req, sc_kw_t *w)
{
    bk_fetch_t *f = NULL;
    int rc = fetch_decode(&req->body, req->hdr.api_version, &f);
    if (rc)
        return rc;
    if (f->replica_id >= 0 && req->srv->cluster) /* a follower: its log end, for the ISR */
        for (int32_t t = 0; t < f->ntopics; t++)
            for (int32_t i = 0; i < f->topics[t].n; i++)
                bk__cluster_follower_fetch(req->srv, f->topics[t].name, f->topics[t].len,
                                           f->topics[t].parts[i].partition, f->replica_id,
                                           f->topics[t].parts[i].offset);
    bk_shard_t *sh = req->conn ? req->conn->shard : NULL;
    if (sh && !fetch_ready(req->srv, f, sh) && sh->storage_handles) {
        f->sh = sh;
        f->slot = req->slot;
        f->deadline = sc_mono_ms() + f->max_wait;
        f->next = sh->parked;
        if (sh->parked)
            sh->parked->prev = f;
        sh->parked = f;
        req->slot->op = f;
        req->slot->detach = fetch_detach;
        req->async = 1;
        arm_timer(sh);
        return 0;
    }
    rc = fetch_write(req->srv, f, sh, req->slot, w);
    sc_free(f);
    return rc;
}

/* ---- ListOffsets ------------------------------------------------------------------ */

static int16_t owned_part(bk_req_t *req, sc_kstr_t topic, int32_t partition, bk_part_t **out)
{
    bk_part_t *p = bk__part_find(req->srv, topic.p, (size_t)(topic.len > 0 ? topic.len : 0),
                                 partition);
    if (!p)
        return SC_ERR_UNKNOWN_TOPIC_OR_PARTITION;
    if (!req->conn || p->shard != req->conn->shard)
        return SC_ERR_NOT_LEADER_OR_FOLLOWER;
    if (bk__cluster_not_leader(req->srv, topic.p, (size_t)(topic.len > 0 ? topic.len : 0),
                               partition))
        return SC_ERR_NOT_LEADER_OR_FOLLOWER;
    if (st_log_failed(p->log))
        return SC_ERR_KAFKA_STORAGE_ERROR;
    *out = p;
    return 0;
}

/* The batch max timestamp of the batch holding offset (the record's own
 * timestamp would need the records decoded; clients use the offset). */
static int64_t batch_timestamp(bk_part_t *p, int64_t offset, int64_t hw)
{
    st_slice_t sl;
    uint8_t h[ST_BATCH_HEADER_SIZE];
    st_batch_hdr_t bh;
    if (st_log_read(p->log, offset, 1, hw, &sl) || sl.len < sizeof h ||
        pread(sl.fd, h, sizeof h, (off_t)sl.pos) != (ssize_t)sizeof h ||
        st_batch_hdr_decode(h, sizeof h, &bh))
        return -1;
    return bh.max_timestamp;
}

int bk__h_list_offsets(bk_req_t *req, sc_kw_t *w)
{
    sc_rd_t *r = &req->body;
    int v = req->hdr.api_version;
    int32_t ntopics;
    sc_kr_i32(r); /* replica_id */
    if (v >= 2)
        sc_kr_i8(r); /* isolation_level: lso = hw without transactions */
    sc_kr_array_len(r, 0, 6, &ntopics);
    sc_rd_t first = *r;
    for (int32_t t = 0; t < ntopics && !r->err; t++) {
        sc_kstr_t name;
        int32_t np;
        sc_kr_string(r, 0, &name);
        sc_kr_array_len(r, 0, 12, &np);
        for (int32_t i = 0; i < np && !r->err; i++) {
            sc_kr_i32(r);
            sc_kr_i64(r);
        }
    }
    if (r->err)
        return r->err;
    if (v >= 2)
        sc_kw_i32(w, 0); /* throttle_time_ms */
    sc_kw_array_len(w, ntopics);
    for (int32_t t = 0; t < ntopics; t++) {
        sc_kstr_t name;
        int32_t np;
        sc_kr_string(&first, 0, &name);
        sc_kr_array_len(&first, 0, 12, &np);
        sc_kw_string(w, name.p, (size_t)name.len);
        sc_kw_array_len(w, np);
        for (int32_t i = 0; i < np; i++) {
            int32_t partition = sc_kr_i32(&first);
            int64_t ts = sc_kr_i64(&first);
            int64_t off = -1, rts = -1;
            bk_part_t *p = NULL;
            int16_t err = owned_part(req, name, partition, &p);
            if (!err) {
                int64_t hw = st_log_high_watermark(p->log);
                if (ts == -1) {
                    off = hw;
                } else if (ts == -2) {
                    off = st_log_start_offset(p->log);
                } else if (ts < 0) {
                    err = SC_ERR_INVALID_REQUEST; /* -3 (max timestamp) is v7+ */
                } else {
                    int64_t found;
                    int rc = st_log_lookup_time(p->log, ts, &found);
                    if (rc == 0 && found < hw) {
                        off = found;
                        rts = batch_timestamp(p, found, hw);
                    } else if (rc != 0 && rc != SC_ERR_NOT_FOUND) {
                        err = bk__storage_err(rc);
                    } /* none at or after ts below the hw: -1 / -1 as Kafka */
                }
            }
            sc_kw_i32(w, partition);
            sc_kw_i16(w, err);
            sc_kw_i64(w, err ? -1 : rts);
            sc_kw_i64(w, err ? -1 : off);
        }
    }
    return 0;
}

/* ---- DeleteRecords --------------------------------------------------------------- */

int bk__h_delete_records(bk_req_t *req, sc_kw_t *w)
{
    sc_rd_t *r = &req->body;
    int32_t ntopics;
    sc_kr_array_len(r, 0, 6, &ntopics);
    sc_rd_t first = *r;
    for (int32_t t = 0; t < ntopics && !r->err; t++) {
        sc_kstr_t name;
        int32_t np;
        sc_kr_string(r, 0, &name);
        sc_kr_array_len(r, 0, 12, &np);
        for (int32_t i = 0; i < np && !r->err; i++) {
            sc_kr_i32(r);
            sc_kr_i64(r);
        }
    }
    sc_kr_i32(r); /* timeout_ms: the deletion is synchronous */
    if (r->err)
        return r->err;
    sc_kw_i32(w, 0); /* throttle_time_ms */
    sc_kw_array_len(w, ntopics);
    for (int32_t t = 0; t < ntopics; t++) {
        sc_kstr_t name;
        int32_t np;
        sc_kr_string(&first, 0, &name);
        sc_kr_array_len(&first, 0, 12, &np);
        sc_kw_string(w, name.p, (size_t)name.len);
        sc_kw_array_len(w, np);
        for (int32_t i = 0; i < np; i++) {
            int32_t partition = sc_kr_i32(&first);
            int64_t off = sc_kr_i64(&first);
            int64_t low = -1;
            bk_part_t *p = NULL;
            int16_t err = owned_part(req, name, partition, &p);
            if (!err) {
                int64_t hw = st_log_high_watermark(p->log);
                if (off == -1)
                    off = hw;
                if (off < 0 || off > hw) {
                    err = SC_ERR_OFFSET_OUT_OF_RANGE;
                } else {
                    int rc = st_log_delete_records(p->log, off);
                    if (rc) {
                        err = bk__storage_err(rc);
                        SC_WARN(SUB, "%s-%d: delete records below %lld: %s", p->topic,
                                p->partition, (long long)off, sc_err_str(rc));
                    } else {
                        low = st_log_start_offset(p->log);
                        SC_INFO(SUB, "%s-%d: log start offset now %lld (DeleteRecords)",
                                p->topic, p->partition, (long long)low);
                    }
                }
            }
            sc_kw_i32(w, partition);
            sc_kw_i64(w, low);
            sc_kw_i16(w, err);
        }
    }
    return 0;
}

/* ---- OffsetForLeaderEpoch ----------------------------------------------------------- */

int bk__h_offset_for_leader_epoch(bk_req_t *req, sc_kw_t *w)
{
    sc_rd_t *r = &req->body;
    int v = req->hdr.api_version;
    int32_t ntopics;
    if (v >= 3)
        sc_kr_i32(r); /* replica_id */
    sc_kr_array_len(r, 0, 6, &ntopics);
    sc_rd_t first = *r;
    for (int32_t t = 0; t < ntopics && !r->err; t++) {
        sc_kstr_t name;
        int32_t np;
        sc_kr_string(r, 0, &name);
        sc_kr_array_len(r, 0, 12, &np);
        for (int32_t i = 0; i < np && !r->err; i++) {
            sc_kr_i32(r);
            sc_kr_i32(r);
            sc_kr_i32(r);
        }
    }
    if (r->err)
        return r->err;
    sc_kw_i32(w, 0); /* throttle_time_ms */
    sc_kw_array_len(w, ntopics);
    for (int32_t t = 0; t < ntopics; t++) {
        sc_kstr_t name;
        int32_t np;
        sc_kr_string(&first, 0, &name);
        sc_kr_array_len(&first, 0, 12, &np);
        sc_kw_string(w, name.p, (size_t)name.len);
        sc_kw_array_len(w, np);
        for (int32_t i = 0; i < np; i++) {
            int32_t partition = sc_kr_i32(&first);
            int32_t cur = sc_kr_i32(&first);
            int32_t want = sc_kr_i32(&first);
            int32_t found = -1;
            int64_t end = -1;
            bk_part_t *p = NULL;
            int16_t err = owned_part(req, name, partition, &p);
            if (!err) {
                int32_t latest = st_log_epoch_latest(p->log);
                int32_t ours = latest < 0 ? 0 : latest;
                if (cur >= 0 && cur < ours) {
                    err = SC_ERR_FENCED_LEADER_EPOCH;
                } else if (cur > ours) {
                    err = SC_ERR_UNKNOWN_LEADER_EPOCH;
                } else if (latest < 0) {
                    /* nothing appended yet: this node leads epoch 0 from offset 0 */
                    if (want >= 0) {
                        found = 0;
                        end = st_log_end_offset(p->log);
                    }
                } else if (st_log_epoch_end_offset(p->log, want, &found, &end) != 0) {
                    found = -1;
                    end = -1;
                }
            }
            sc_kw_i16(w, err);
            sc_kw_i32(w, partition);
            sc_kw_i32(w, found);
            sc_kw_i64(w, end);
        }
    }
    return 0;
}
