/*
 * bk_follow -- the follower fetcher of cluster mode (docs/replication.md):
 * copies the log of every partition this broker replicates but does not lead
 * from its leader, with Kafka Fetch v5 carrying this broker's id as
 * replica_id. The leader answers up to its committed offset, parking the
 * request (`replica.fetch.wait.max.ms`, `replica.fetch.min.bytes`) until it
 * has something, so a caught-up follower is woken by the leader's next append.
 *
 * Threads: one fetcher thread runs a poll() loop over non-blocking sockets,
 * one connection per leader, each with its own request/response state
 * machine (down -> connecting -> idle -> sending -> receiving -> idle), so
 * every leader has its own request in flight and a fetch parked at an idle
 * leader delays nobody else. A poll loop rather than a thread per leader:
 * the set of leaders changes with every cluster refresh (leaders come and go
 * on failover and preferred-leader election) and a loop only opens or closes
 * a socket where threads would have to be created and joined; the state
 * shared with shard 0 stays one mutex; stop is one eventfd write and one
 * join, bounded by the poll timeout (no blocking socket call anywhere; only
 * getaddrinfo of a leader's host may block, on a reconnect). A dropped or
 * refused connection is retried after 50 ms, doubling up to
 * `replica.fetch.backoff.ms`; a request not answered within its wait + 5 s
 * drops the connection.
 *
 * The log belongs to shard 0, so fetched bytes travel there through a
 * queue + uv_async; shard 0 appends the batches past its log end
 * (rp_follow_walk; st_log_append_ex with ST_APPEND_KEEP_OFFSETS, so every
 * batch keeps the leader's baseOffset and partitionLeaderEpoch: the
 * follower's offsets and leader-epoch history are the leader's, and the
 * offset gaps of a compacted leader are copied as they are; a batch that
 * straddles the local log end -- diverged logs -- stops the copy of that
 * partition, logged). A connection sends its next request only once every
 * append of its previous answer is durable (the follower's flush policy),
 * so the offset a follower reports to its leader (its next fetch offset)
 * is durable here. Shard 0 publishes the set of followed partitions after
 * every cluster refresh (bk__follow_publish); a connection whose fetch is in
 * flight while one of its leader's partitions became ready to fetch (new,
 * new epoch, back from a backoff) is dropped and opened again at once rather
 * than left parked for up to the wait.
 *
 * Under a leader epoch not checked yet, a partition is first cut back to
 * where its log agrees with the leader's (OffsetForLeaderEpoch v3 from the
 * thread, st_log_truncate_to on shard 0) before it is fetched. A leader that
 * answers OFFSET_OUT_OF_RANGE is asked its log start (ListOffsets, earliest):
 * above the follower's log end (retention or DeleteRecords on the leader
 * while this replica was behind), the local log is emptied and restarted
 * there (st_log_truncate_fully); otherwise the partition is checked again
 * with OffsetForLeaderEpoch. Other partition errors (not the leader yet,
 * unknown topic, ...) leave that partition alone for
 * `replica.fetch.backoff.ms` or until the next publish moves it. The
 * leader's side (follower offsets, ISR, high watermark) is in bk_cluster.c.
 *
 * Not here: fetch sessions (KIP-227: every fetch names all partitions),
 * several fetches in flight per leader, a per-request response size key
 * (replica.fetch.response.max.bytes: fixed 64 MiB).
 */
#include "bk_int.h"

#include "rp_follow.h"

#include "sc_endian.h"
#include "sc_err.h"
#include "sc_log.h"
#include "sc_mem.h"
#include "sc_time.h"
#include "st_batch.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define SUB "follow"
#define FOLLOW_MAX_CONNS 64                /* distinct leaders at once */
#define FOLLOW_IO_TIMEOUT_MS 5000          /* an answer's limit beyond its wait */
#define FOLLOW_RESPONSE_MAX_BYTES (64 << 20)
#define FOLLOW_RECONNECT_MIN_MS 50
#define FOLLOW_POLL_MAX_MS 1000

/* A followed partition (under mu; written by publish, the thread and shard 0). */
typedef struct {
    char topic[BK_TOPIC_NAME_MAX + 1];
    int32_t partition;
    int32_t leader;
    char host[256];
    int port;
    int64_t leo;         /* next offset to fetch (durable here) */
    int stopped;         /* cannot continue the leader's log: not copied any more */
    int32_t epoch;       /* the partition's leader epoch we follow under */
    int32_t local_epoch; /* latest epoch in the local log */
    int checked;         /* truncated to the leader (OffsetForLeaderEpoch) at this epoch */
    int32_t probe;       /* the local epoch to ask the leader about next */
    int need_start;      /* OFFSET_OUT_OF_RANGE: ask the leader's log start */
    int64_t backoff_until; /* sc_mono_ms: left alone until then (an error) */
    int16_t last_err;    /* last error from the leader (logged when it changes) */
} fpart_t;

enum { IT_DATA, IT_TRUNC, IT_START };

struct fconn;

typedef struct fitem {
    struct fitem *next;
    struct fconn *conn;
    int kind;
    char topic[BK_TOPIC_NAME_MAX + 1];
    int32_t partition;
    int32_t epoch;   /* the leader epoch the item was made under */
    uint8_t *data;   /* IT_DATA: the fetched records */
    size_t len;
    int32_t found;   /* IT_TRUNC: the leader's epoch <= the one asked (-1: none) */
    int64_t end;     /* IT_TRUNC: its end offset at the leader; IT_START: the leader's log start */
    int restart;     /* IT_TRUNC with found -1: the leader has none of our epochs */
} fitem_t;

typedef enum { C_DOWN, C_CONNECTING, C_IDLE, C_SEND, C_RECV } cstate_t;
typedef enum { R_FETCH = 1, R_EPOCH, R_START } rkind_t;

/* One partition in the request in flight. */
typedef struct {
    char topic[BK_TOPIC_NAME_MAX + 1];
    int32_t partition;
    int32_t epoch;
    int64_t offset; /* R_FETCH: the fetch offset */
    int32_t probe;  /* R_EPOCH: the epoch asked */
} freq_t;

/* One leader's connection. Everything but posted/applied belongs to the thread. */
typedef struct fconn {
    int used;
    int32_t leader;
    char host[256];
    int port;
    int fd;
    cstate_t st;
    int64_t retry_at;   /* C_DOWN: reconnect then */
    int backoff_ms;     /* current reconnect backoff (0 after a good answer) */
    int64_t deadline;   /* C_CONNECTING / C_SEND / C_RECV */
    rkind_t kind;
    int32_t corr;
    freq_t *rq;
    size_t nrq, caprq;
    uint64_t gen;       /* publish generation the request was built under */
    int64_t recheck_at; /* a partition left out of the fetch in flight may be ready then */
    uint8_t *out;
    size_t out_len, out_off;
    uint8_t hdr[4];
    size_t hdr_off;
    uint8_t *in;
    size_t in_len, in_off;
    uint64_t posted, applied; /* under mu: items handed to shard 0 / done there */
} fconn_t;

struct bk_follow {
    bk_server_t *srv;
    pthread_t thread;
    int started;
    pthread_mutex_t mu;
    atomic_int stop;
    int wake_fd;         /* eventfd: publish, shard 0 progress, stop */
    fpart_t *parts;      /* under mu: the published set */
    size_t nparts;
    uint64_t generation; /* under mu: bumped by each publish */
    fitem_t *queue;      /* under mu: items for shard 0 (LIFO) */
    uv_async_t async;
    fconn_t conns[FOLLOW_MAX_CONNS]; /* stable addresses: items point at them */
    int32_t corr;
};

static void wake(bk_follow_t *f)
{
    uint64_t one = 1;
    ssize_t k = write(f->wake_fd, &one, sizeof one);
    (void)k; /* EAGAIN: the counter is full, the thread wakes anyway */
}

static fpart_t *part_of(bk_follow_t *f, const char *topic, int32_t partition)
{
    for (size_t i = 0; i < f->nparts; i++)
        if (f->parts[i].partition == partition && strcmp(f->parts[i].topic, topic) == 0)
            return &f->parts[i];
    return NULL;
}

/* ---- shard 0 ------------------------------------------------------------------ */

/* One fetched answer being applied: counts its appends still in flight; the
 * fetcher learns the new log end only once they are all durable (each
 * replica applies its flush policy before it reports its log end offset). */
typedef struct {
    bk_follow_t *f;
    fconn_t *conn;
    char topic[BK_TOPIC_NAME_MAX + 1];
    int32_t partition;
    int pending;   /* appends in flight + 1 while apply() runs */
    int stop;      /* the copy of this partition must stop */
    int64_t leo;   /* log end once everything here is durable */
    int32_t local_epoch;
} ftrack_t;

typedef struct {
    ftrack_t *tr;
    uint8_t data[];
} fappend_t;

/* An item is done on shard 0: its connection may send again. Under mu. */
static void item_done_locked(bk_follow_t *f, fconn_t *c)
{
    c->applied++;
    wake(f);
}

static void track_done(ftrack_t *tr)
{
    if (--tr->pending > 0)
        return;
    bk_follow_t *f = tr->f;
    pthread_mutex_lock(&f->mu);
    fpart_t *x = part_of(f, tr->topic, tr->partition);
    if (x) {
        if (tr->stop)
            x->stopped = 1;
        else if (tr->leo > x->leo)
            x->leo = tr->leo;
        if (!tr->stop)
            x->local_epoch = tr->local_epoch;
    }
    item_done_locked(f, tr->conn);
    pthread_mutex_unlock(&f->mu);
    sc_free(tr);
}

static void append_done(void *arg, int rc, int64_t base, int64_t last)
{
    fappend_t *a = arg;
    (void)base;
    if (rc) {
        SC_WARN(SUB, "%s-%d: follower append failed: %s", a->tr->topic, a->tr->partition,
                sc_err_str(rc));
        a->tr->stop = 1;
    } else if (last + 1 > a->tr->leo)
        a->tr->leo = last + 1;
    track_done(a->tr);
    sc_free(a);
}

typedef struct {
    bk_part_t *p;
    ftrack_t *tr;
    int appended;
} apply_t;

static int append_one(void *arg, const uint8_t *batch, size_t len, int64_t base, int32_t epoch)
{
    apply_t *a = arg;
    (void)base;
    fappend_t *fa = sc_malloc(sizeof *fa + len);
    if (!fa)
        return SC_ERR_NO_MEMORY;
    fa->tr = a->tr;
    memcpy(fa->data, batch, len);
    int64_t b, e;
    /* the leader's offsets and epoch kept, gaps of a compacted leader too */
    int rc = st_log_append_ex(a->p->log, fa->data, len, epoch, ST_APPEND_KEEP_OFFSETS,
                              append_done, fa, &b, &e);
    if (rc) {
        sc_free(fa);
        return rc;
    }
    a->tr->pending++;
    a->appended = 1;
    return 0;
}

/* Appends the batches of it past the local log end (rp_follow_walk);
 * tr learns the outcome (stop on divergence or a refused append; logged). */
static void apply(bk_server_t *s, const fitem_t *it, ftrack_t *tr)
{
    bk_part_t *p = bk__part_find(s, it->topic, strlen(it->topic), it->partition);
    if (!p || st_log_failed(p->log)) {
        tr->stop = 1;
        return;
    }
    apply_t a = {p, tr, 0};
    int64_t leo = st_log_end_offset(p->log), next;
    tr->leo = leo; /* unchanged unless something is appended */
    int rc = rp_follow_walk(it->data, it->len, leo, append_one, &a, &next);
    if (a.appended)
        bk__part_dirty(p);
    tr->local_epoch = st_log_epoch_latest(p->log);
    if (rc && rc != SC_ERR_NO_MEMORY) { /* no memory: the next fetch tries again */
        SC_WARN(SUB, "%s-%d: cannot continue the local log at %lld from the leader's answer "
                     "(%s); not copying this partition any more",
                it->topic, it->partition, (long long)next, sc_err_str(rc));
        tr->stop = 1;
    }
}

/* IT_TRUNC / IT_START: cut the local log as the leader's answer says. */
static void apply_cut(bk_follow_t *f, fitem_t *it)
{
    bk_part_t *p = bk__part_find(f->srv, it->topic, strlen(it->topic), it->partition);
    int64_t leo = -1;
    int32_t le = -1;
    if (p && !st_log_failed(p->log)) {
        int64_t cur = st_log_end_offset(p->log), trunc = -1;
        if (it->kind == IT_START) {
            if (it->end > cur) {
                SC_INFO(SUB, "%s-%d: the leader's log starts at %lld, past this replica's end "
                             "%lld: emptying the local log to start there",
                        it->topic, it->partition, (long long)it->end, (long long)cur);
                int rc = st_log_truncate_fully(p->log, it->end);
                if (rc)
                    SC_WARN(SUB, "%s-%d: truncating fully to %lld: %s", it->topic,
                            it->partition, (long long)it->end, sc_err_str(rc));
            }
        } else {
            if (it->found >= 0) {
                /* Kafka's rule: the leader's end of the largest epoch <= ours,
                 * but not past where that epoch ends here */
                int64_t t = it->end, lend;
                int32_t lf;
                if (st_log_epoch_end_offset(p->log, it->found, &lf, &lend) == 0 && lend < t)
                    t = lend;
                if (t >= 0 && t < cur)
                    trunc = t;
            } else if (it->restart && cur > 0) {
                trunc = 0; /* the leader has none of our epochs: start over */
            }
            if (trunc >= 0) {
                SC_INFO(SUB, "%s-%d: truncating from %lld to %lld to follow the leader "
                             "(leader epoch %d)", it->topic, it->partition, (long long)cur,
                        (long long)trunc, it->epoch);
                int rc = st_log_truncate_to(p->log, trunc);
                if (rc)
                    SC_WARN(SUB, "%s-%d: truncating to %lld: %s", it->topic, it->partition,
                            (long long)trunc, sc_err_str(rc));
            }
        }
        leo = st_log_end_offset(p->log);
        le = st_log_epoch_latest(p->log);
    }
    pthread_mutex_lock(&f->mu);
    fpart_t *x = part_of(f, it->topic, it->partition);
    if (x && x->epoch == it->epoch) {
        if (it->kind == IT_START)
            x->need_start = 0;
        else
            x->checked = 1;
        if (leo >= 0) {
            x->leo = leo;
            x->local_epoch = le;
        }
    }
    item_done_locked(f, it->conn);
    pthread_mutex_unlock(&f->mu);
}

static void on_async(uv_async_t *h)
{
    bk_follow_t *f = h->data;
    pthread_mutex_lock(&f->mu);
    fitem_t *q = f->queue;
    f->queue = NULL;
    pthread_mutex_unlock(&f->mu);
    /* the queue is LIFO: apply in arrival order */
    fitem_t *rev = NULL;
    while (q) {
        fitem_t *nx = q->next;
        q->next = rev;
        rev = q;
        q = nx;
    }
    while (rev) {
        fitem_t *it = rev;
        rev = it->next;
        if (it->kind != IT_DATA) {
            apply_cut(f, it);
            sc_free(it);
            continue;
        }
        ftrack_t *tr = sc_calloc(1, sizeof *tr);
        if (tr) {
            tr->f = f;
            tr->conn = it->conn;
            snprintf(tr->topic, sizeof tr->topic, "%s", it->topic);
            tr->partition = it->partition;
            tr->pending = 1;
            tr->leo = -1;
            apply(f->srv, it, tr);
            track_done(tr); /* drops the guard: done now if nothing was appended */
        } else {
            pthread_mutex_lock(&f->mu);
            item_done_locked(f, it->conn);
            pthread_mutex_unlock(&f->mu);
        }
        sc_free(it->data);
        sc_free(it);
    }
}

void bk__follow_publish(bk_server_t *s, const bk_follow_part_t *want, size_t n)
{
    bk_follow_t *f = s->follow;
    if (!f)
        return;
    fpart_t *np = n ? sc_calloc(n, sizeof *np) : NULL;
    if (n && !np)
        return;
    pthread_mutex_lock(&f->mu);
    for (size_t i = 0; i < n; i++) {
        fpart_t *x = &np[i];
        snprintf(x->topic, sizeof x->topic, "%s", want[i].topic);
        x->partition = want[i].partition;
        x->leader = want[i].leader;
        x->epoch = want[i].leader_epoch;
        snprintf(x->host, sizeof x->host, "%s", want[i].host);
        x->port = want[i].port;
        bk_part_t *p = bk__part_find(s, x->topic, strlen(x->topic), x->partition);
        x->leo = p ? st_log_end_offset(p->log) : 0;
        x->local_epoch = p ? st_log_epoch_latest(p->log) : -1;
        x->probe = x->local_epoch;
        x->stopped = !p;
        /* keep the state of a partition followed under the same leader and epoch */
        fpart_t *o = part_of(f, x->topic, x->partition);
        if (o && o->leader == x->leader && o->epoch == x->epoch) {
            x->stopped |= o->stopped;
            x->checked = o->checked;
            x->probe = o->probe;
            x->need_start = o->need_start;
            x->backoff_until = o->backoff_until;
            x->last_err = o->last_err;
        }
    }
    sc_free(f->parts);
    f->parts = np;
    f->nparts = n;
    f->generation++;
    pthread_mutex_unlock(&f->mu);
    wake(f);
}

/* ---- the fetcher thread: requests --------------------------------------------- */

static void put16(uint8_t **p, int16_t v) { sc_store_be16(*p, (uint16_t)v); *p += 2; }
static void put32(uint8_t **p, int32_t v) { sc_store_be32(*p, (uint32_t)v); *p += 4; }
static void put64(uint8_t **p, int64_t v) { sc_store_be64(*p, (uint64_t)v); *p += 8; }
static void putstr(uint8_t **p, const char *s)
{
    size_t l = strlen(s);
    put16(p, (int16_t)l);
    memcpy(*p, s, l);
    *p += l;
}

/* Header of a request: api key, version, correlation id, client id. */
static void put_hdr(bk_follow_t *f, fconn_t *c, uint8_t **p, int16_t api, int16_t v)
{
    put16(p, api);
    put16(p, v);
    c->corr = ++f->corr;
    put32(p, c->corr);
    putstr(p, "strata-follower");
}

static int rq_add(fconn_t *c, const fpart_t *x)
{
    if (c->nrq == c->caprq) {
        size_t cap = c->caprq ? c->caprq * 2 : 8;
        freq_t *n = sc_realloc(c->rq, cap * sizeof *n);
        if (!n)
            return SC_ERR_NO_MEMORY;
        c->rq = n;
        c->caprq = cap;
    }
    freq_t *q = &c->rq[c->nrq++];
    memcpy(q->topic, x->topic, sizeof q->topic);
    q->partition = x->partition;
    q->epoch = x->epoch;
    q->offset = x->leo;
    q->probe = x->probe;
    return 0;
}

static const freq_t *rq_find(const fconn_t *c, const char *topic, size_t tl, int32_t partition)
{
    for (size_t i = 0; i < c->nrq; i++)
        if (c->rq[i].partition == partition && strlen(c->rq[i].topic) == tl &&
            memcmp(c->rq[i].topic, topic, tl) == 0)
            return &c->rq[i];
    return NULL;
}

/* Encodes the request for c->rq[0..nrq) of kind c->kind into c->out. */
static int encode(bk_follow_t *f, fconn_t *c)
{
    const bk_config_t *cfg = f->srv->cfg;
    size_t cap = 64 + c->nrq * (BK_TOPIC_NAME_MAX + 48);
    uint8_t *req = sc_malloc(cap);
    if (!req)
        return SC_ERR_NO_MEMORY;
    uint8_t *p = req + 4;
    /* one topic entry per partition (allowed; the leader answers in order) */
    if (c->kind == R_FETCH) {
        put_hdr(f, c, &p, 1, 5); /* Fetch v5 */
        put32(&p, cfg->node_id); /* replica_id */
        put32(&p, cfg->replica_fetch_wait_max_ms);
        put32(&p, cfg->replica_fetch_min_bytes);
        put32(&p, FOLLOW_RESPONSE_MAX_BYTES);
        *p++ = 0; /* isolation: read uncommitted */
        put32(&p, (int32_t)c->nrq);
        for (size_t i = 0; i < c->nrq; i++) {
            putstr(&p, c->rq[i].topic);
            put32(&p, 1);
            put32(&p, c->rq[i].partition);
            put64(&p, c->rq[i].offset);
            put64(&p, -1); /* log_start_offset: not told */
            put32(&p, cfg->replica_fetch_max_bytes);
        }
    } else if (c->kind == R_EPOCH) {
        put_hdr(f, c, &p, 23, 3); /* OffsetForLeaderEpoch v3 */
        put32(&p, cfg->node_id);
        put32(&p, (int32_t)c->nrq);
        for (size_t i = 0; i < c->nrq; i++) {
            putstr(&p, c->rq[i].topic);
            put32(&p, 1);
            put32(&p, c->rq[i].partition);
            put32(&p, -1); /* current_leader_epoch: not checked */
            put32(&p, c->rq[i].probe);
        }
    } else {
        put_hdr(f, c, &p, 2, 1); /* ListOffsets v1 */
        put32(&p, cfg->node_id);
        put32(&p, (int32_t)c->nrq);
        for (size_t i = 0; i < c->nrq; i++) {
            putstr(&p, c->rq[i].topic);
            put32(&p, 1);
            put32(&p, c->rq[i].partition);
            put64(&p, -2); /* earliest: the log start */
        }
    }
    sc_store_be32(req, (uint32_t)(p - req - 4));
    sc_free(c->out);
    c->out = req;
    c->out_len = (size_t)(p - req);
    c->out_off = 0;
    return 0;
}

static int usable(const fpart_t *x, int64_t now)
{
    return !x->stopped && x->backoff_until <= now;
}

/* Pushes an item for shard 0 (under mu). */
static void post_locked(bk_follow_t *f, fconn_t *c, fitem_t *it)
{
    it->conn = c;
    it->next = f->queue;
    f->queue = it;
    c->posted++;
}

/* Under mu: the next request of an idle connection with nothing pending on
 * shard 0: the leader's log start for partitions that were out of range,
 * else OffsetForLeaderEpoch for partitions under an unchecked epoch, else a
 * Fetch of every ready partition. 1 when c->rq holds one, 0 when there is
 * nothing to ask; *posted is set when items were queued for shard 0 instead. */
static int plan_request(bk_follow_t *f, fconn_t *c, int64_t now, int *posted)
{
    c->nrq = 0;
    c->recheck_at = INT64_MAX;
    int want[4] = {0};
    for (size_t i = 0; i < f->nparts; i++) {
        const fpart_t *x = &f->parts[i];
        if (x->leader != c->leader || x->stopped)
            continue;
        if (x->backoff_until > now) {
            if (x->backoff_until < c->recheck_at)
                c->recheck_at = x->backoff_until;
            continue;
        }
        if (x->need_start)
            want[R_START] = 1;
        else if (!x->checked)
            want[R_EPOCH] = 1;
        else
            want[R_FETCH] = 1;
    }
    rkind_t kind = want[R_START] ? R_START : want[R_EPOCH] ? R_EPOCH : R_FETCH;
    if (!want[kind])
        return 0;
    for (size_t i = 0; i < f->nparts; i++) {
        fpart_t *x = &f->parts[i];
        if (x->leader != c->leader || !usable(x, now))
            continue;
        int match = kind == R_START ? x->need_start
                  : kind == R_EPOCH ? !x->need_start && !x->checked
                                    : !x->need_start && x->checked;
        if (!match)
            continue;
        if (kind == R_EPOCH && x->probe < 0) {
            /* no local epoch (left) to ask about: decided here */
            fitem_t *it = sc_calloc(1, sizeof *it);
            if (!it)
                continue;
            it->kind = IT_TRUNC;
            snprintf(it->topic, sizeof it->topic, "%s", x->topic);
            it->partition = x->partition;
            it->epoch = x->epoch;
            it->found = -1;
            it->restart = x->local_epoch >= 0;
            post_locked(f, c, it);
            *posted = 1;
            continue;
        }
        if (rq_add(c, x))
            break;
    }
    if (*posted) {
        c->nrq = 0; /* ask once shard 0 has applied those */
        return 0;
    }
    c->kind = kind;
    c->gen = f->generation;
    return c->nrq > 0;
}

/* Under mu: 1 when the fetch in flight on c should be given up because a
 * partition of its leader became ready after it was sent (published, new
 * epoch, back from a backoff) -- the leader may park it for the whole wait. */
static int fetch_stale(bk_follow_t *f, fconn_t *c, int64_t now)
{
    if (c->gen == f->generation && now < c->recheck_at)
        return 0;
    int64_t next = INT64_MAX;
    for (size_t i = 0; i < f->nparts; i++) {
        const fpart_t *x = &f->parts[i];
        if (x->leader != c->leader || x->stopped)
            continue;
        if (x->backoff_until > now) {
            if (x->backoff_until < next)
                next = x->backoff_until;
            continue;
        }
        if (x->need_start || !x->checked)
            return 1;
        const freq_t *q = rq_find(c, x->topic, strlen(x->topic), x->partition);
        if (!q || q->epoch != x->epoch)
            return 1;
    }
    c->gen = f->generation;
    c->recheck_at = next;
    return 0;
}

/* ---- the fetcher thread: answers ------------------------------------------------ */

/* Under mu: the published partition an answer for q is about, or NULL when
 * it moved meanwhile (another leader or epoch, stopped, gone). */
static fpart_t *answer_part(bk_follow_t *f, const fconn_t *c, const freq_t *q)
{
    fpart_t *x = part_of(f, q->topic, q->partition);
    if (!x || x->leader != c->leader || x->epoch != q->epoch || x->stopped)
        return NULL;
    return x;
}

/* Under mu: the leader answered err for x: leave it alone for a while. */
static void part_error(bk_follow_t *f, fpart_t *x, int16_t err, int64_t now)
{
    if (err != x->last_err)
        SC_INFO(SUB, "%s-%d: leader %d answers %s; retrying every %d ms", x->topic,
                x->partition, x->leader, sc_err_str(err), f->srv->cfg->replica_fetch_backoff_ms);
    x->last_err = err;
    x->backoff_until = now + f->srv->cfg->replica_fetch_backoff_ms;
}

/* Fetch v5 answer: data to shard 0, errors to the partitions. */
static int on_fetch(bk_follow_t *f, fconn_t *c, sc_rd_t *r, int64_t now, int *posted)
{
    (void)sc_rd_be32(r); /* throttle */
    int32_t nt = (int32_t)sc_rd_be32(r);
    for (int32_t t = 0; t < nt && !r->err; t++) {
        int16_t tl = (int16_t)sc_rd_be16(r);
        const uint8_t *tn = sc_rd_bytes(r, tl > 0 ? (size_t)tl : 0);
        int32_t np = (int32_t)sc_rd_be32(r);
        for (int32_t k = 0; k < np && !r->err; k++) {
            int32_t part = (int32_t)sc_rd_be32(r);
            int16_t err = (int16_t)sc_rd_be16(r);
            (void)sc_rd_be64(r); /* high watermark */
            (void)sc_rd_be64(r); /* last stable offset */
            (void)sc_rd_be64(r); /* log start offset */
            int32_t na = (int32_t)sc_rd_be32(r);
            for (int32_t a = 0; a < na && !r->err; a++)
                (void)sc_rd_bytes(r, 16);
            int32_t rl = (int32_t)sc_rd_be32(r);
            const uint8_t *rec = sc_rd_bytes(r, rl > 0 ? (size_t)rl : 0);
            if (r->err || !tn || tl <= 0 || tl > BK_TOPIC_NAME_MAX)
                continue;
            const freq_t *q = rq_find(c, (const char *)tn, (size_t)tl, part);
            fpart_t *x = q ? answer_part(f, c, q) : NULL;
            if (!x)
                continue;
            if (err == SC_ERR_OFFSET_OUT_OF_RANGE) {
                x->need_start = 1;
                continue;
            }
            if (err) {
                part_error(f, x, err, now);
                continue;
            }
            x->last_err = 0;
            if (rl <= 0)
                continue;
            fitem_t *it = sc_calloc(1, sizeof *it);
            uint8_t *data = sc_malloc((size_t)rl);
            if (!it || !data) {
                sc_free(it);
                sc_free(data);
                continue; /* fetched again next time */
            }
            it->kind = IT_DATA;
            memcpy(it->topic, tn, (size_t)tl);
            it->partition = part;
            it->epoch = q->epoch;
            memcpy(data, rec, (size_t)rl);
            it->data = data;
            it->len = (size_t)rl;
            post_locked(f, c, it);
            *posted = 1;
        }
    }
    return r->err;
}

/* OffsetForLeaderEpoch v3 answer: a found epoch ends the check (truncation
 * item to shard 0); none found walks down to the next local epoch. */
static int on_epoch(bk_follow_t *f, fconn_t *c, sc_rd_t *r, int64_t now, int *posted)
{
    (void)sc_rd_be32(r); /* throttle */
    int32_t nt = (int32_t)sc_rd_be32(r);
    for (int32_t t = 0; t < nt && !r->err; t++) {
        int16_t tl = (int16_t)sc_rd_be16(r);
        const uint8_t *tn = sc_rd_bytes(r, tl > 0 ? (size_t)tl : 0);
        int32_t np = (int32_t)sc_rd_be32(r);
        for (int32_t k = 0; k < np && !r->err; k++) {
            int16_t err = (int16_t)sc_rd_be16(r);
            int32_t part = (int32_t)sc_rd_be32(r);
            int32_t found = (int32_t)sc_rd_be32(r);
            int64_t end = (int64_t)sc_rd_be64(r);
            if (r->err || !tn || tl <= 0 || tl > BK_TOPIC_NAME_MAX)
                continue;
            const freq_t *q = rq_find(c, (const char *)tn, (size_t)tl, part);
            fpart_t *x = q ? answer_part(f, c, q) : NULL;
            if (!x || x->checked)
                continue;
            if (err) {
                part_error(f, x, err, now);
                continue;
            }
            x->last_err = 0;
            if (found < 0 || end < 0) {
                x->probe = q->probe - 1; /* the leader knows none: the next one down */
                if (x->probe >= 0)
                    continue;
            }
            fitem_t *it = sc_calloc(1, sizeof *it);
            if (!it)
                continue; /* asked again */
            it->kind = IT_TRUNC;
            memcpy(it->topic, tn, (size_t)tl);
            it->partition = part;
            it->epoch = q->epoch;
            it->found = found < 0 || end < 0 ? -1 : found;
            it->end = end;
            it->restart = it->found < 0 && x->local_epoch >= 0;
            post_locked(f, c, it);
            *posted = 1;
        }
    }
    return r->err;
}

/* ListOffsets v1 answer (earliest): a log start past our fetch offset empties
 * the local log to start there; otherwise the epoch is checked again. */
static int on_start(bk_follow_t *f, fconn_t *c, sc_rd_t *r, int64_t now, int *posted)
{
    int32_t nt = (int32_t)sc_rd_be32(r);
    for (int32_t t = 0; t < nt && !r->err; t++) {
        int16_t tl = (int16_t)sc_rd_be16(r);
        const uint8_t *tn = sc_rd_bytes(r, tl > 0 ? (size_t)tl : 0);
        int32_t np = (int32_t)sc_rd_be32(r);
        for (int32_t k = 0; k < np && !r->err; k++) {
            int32_t part = (int32_t)sc_rd_be32(r);
            int16_t err = (int16_t)sc_rd_be16(r);
            (void)sc_rd_be64(r); /* timestamp */
            int64_t start = (int64_t)sc_rd_be64(r);
            if (r->err || !tn || tl <= 0 || tl > BK_TOPIC_NAME_MAX)
                continue;
            const freq_t *q = rq_find(c, (const char *)tn, (size_t)tl, part);
            fpart_t *x = q ? answer_part(f, c, q) : NULL;
            if (!x || !x->need_start)
                continue;
            if (err) {
                part_error(f, x, err, now);
                continue;
            }
            if (start > x->leo) {
                fitem_t *it = sc_calloc(1, sizeof *it);
                if (!it)
                    continue;
                it->kind = IT_START;
                memcpy(it->topic, tn, (size_t)tl);
                it->partition = part;
                it->epoch = q->epoch;
                it->end = start;
                post_locked(f, c, it);
                *posted = 1;
            } else {
                /* not below the leader's log start: past its end, so our tail
                 * is not the leader's -- check the epoch again */
                SC_INFO(SUB, "%s-%d: fetch offset %lld out of range at leader %d (log start "
                             "%lld): checking the leader epoch again",
                        x->topic, x->partition, (long long)x->leo, x->leader,
                        (long long)start);
                x->need_start = 0;
                x->checked = 0;
                x->probe = x->local_epoch;
                x->backoff_until = now + f->srv->cfg->replica_fetch_backoff_ms;
            }
        }
    }
    return r->err;
}

/* ---- the fetcher thread: connections --------------------------------------------- */

static void conn_close(fconn_t *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->st = C_DOWN;
    c->nrq = 0;
    sc_free(c->out);
    c->out = NULL;
    sc_free(c->in);
    c->in = NULL;
}

/* The connection failed (refused, reset, timed out, bad answer): try again
 * after a backoff that doubles up to replica.fetch.backoff.ms. */
static void conn_fail(bk_follow_t *f, fconn_t *c, const char *why, int64_t now)
{
    int max = f->srv->cfg->replica_fetch_backoff_ms;
    if (max < FOLLOW_RECONNECT_MIN_MS)
        max = FOLLOW_RECONNECT_MIN_MS;
    if (!c->backoff_ms)
        SC_INFO(SUB, "connection to leader %d (%s:%d): %s; reconnecting", c->leader, c->host,
                c->port, why);
    c->backoff_ms = c->backoff_ms ? c->backoff_ms * 2 : FOLLOW_RECONNECT_MIN_MS;
    if (c->backoff_ms > max)
        c->backoff_ms = max;
    conn_close(c);
    c->retry_at = now + c->backoff_ms;
}

static void conn_dial(fconn_t *c, int64_t now)
{
    char ps[16];
    snprintf(ps, sizeof ps, "%d", c->port);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
    c->st = C_DOWN;
    if (getaddrinfo(c->host, ps, &hints, &ai) != 0 || !ai) {
        c->fd = -1;
        return;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd >= 0) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
            c->st = C_IDLE;
        } else if (errno == EINPROGRESS) {
            c->st = C_CONNECTING;
            c->deadline = now + FOLLOW_IO_TIMEOUT_MS;
        } else {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(ai);
    c->fd = fd;
}

/* Reads or writes what the socket allows. 1 when the request or answer is
 * complete, 0 when more is to come, -1 on a failure (why set). */
static int conn_io(fconn_t *c, const char **why)
{
    if (c->st == C_SEND) {
        while (c->out_off < c->out_len) {
            ssize_t k = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
            if (k < 0 && errno == EINTR)
                continue;
            if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                return 0;
            if (k <= 0) {
                *why = "send failed";
                return -1;
            }
            c->out_off += (size_t)k;
        }
        return 1;
    }
    for (;;) {
        uint8_t *dst;
        size_t want;
        if (c->hdr_off < sizeof c->hdr) {
            dst = c->hdr + c->hdr_off;
            want = sizeof c->hdr - c->hdr_off;
        } else {
            if (!c->in) {
                uint32_t size = sc_load_be32(c->hdr);
                if (size < 4 || size > FOLLOW_RESPONSE_MAX_BYTES + (1u << 20)) {
                    *why = "bad answer size";
                    return -1;
                }
                c->in = sc_malloc(size);
                if (!c->in) {
                    *why = "out of memory";
                    return -1;
                }
                c->in_len = size;
                c->in_off = 0;
            }
            if (c->in_off == c->in_len)
                return 1;
            dst = c->in + c->in_off;
            want = c->in_len - c->in_off;
        }
        ssize_t k = recv(c->fd, dst, want, 0);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        if (k <= 0) {
            *why = k == 0 ? "closed by the leader" : "receive failed";
            return -1;
        }
        if (c->hdr_off < sizeof c->hdr)
            c->hdr_off += (size_t)k;
        else
            c->in_off += (size_t)k;
    }
}

/* A complete answer on c: hand it to its parser (under mu). 0 or -1. */
static int conn_answer(bk_follow_t *f, fconn_t *c, int64_t now, int *posted)
{
    if (c->in_len < 4 || (int32_t)sc_load_be32(c->in) != c->corr)
        return -1;
    sc_rd_t r;
    sc_rd_init(&r, c->in + 4, c->in_len - 4);
    pthread_mutex_lock(&f->mu);
    int rc = c->kind == R_FETCH   ? on_fetch(f, c, &r, now, posted)
           : c->kind == R_EPOCH ? on_epoch(f, c, &r, now, posted)
                                : on_start(f, c, &r, now, posted);
    pthread_mutex_unlock(&f->mu);
    sc_free(c->in);
    c->in = NULL;
    c->nrq = 0;
    c->st = C_IDLE;
    c->backoff_ms = 0;
    return rc ? -1 : 0;
}

static fconn_t *conn_find(bk_follow_t *f, int32_t leader)
{
    for (int i = 0; i < FOLLOW_MAX_CONNS; i++)
        if (f->conns[i].used && f->conns[i].leader == leader)
            return &f->conns[i];
    return NULL;
}

/* Under mu: one connection per leader of a partition to copy; connections
 * of leaders that lead nothing of ours any more are closed and their slots
 * freed (once shard 0 has applied everything they posted). */
static void conns_sync(bk_follow_t *f)
{
    for (size_t i = 0; i < f->nparts; i++) {
        const fpart_t *x = &f->parts[i];
        if (x->stopped)
            continue;
        fconn_t *c = conn_find(f, x->leader);
        if (!c) {
            for (int k = 0; k < FOLLOW_MAX_CONNS && !c; k++)
                if (!f->conns[k].used && f->conns[k].posted == f->conns[k].applied)
                    c = &f->conns[k];
            if (!c) {
                SC_WARN(SUB, "more than %d leaders: not following %s-%d", FOLLOW_MAX_CONNS,
                        x->topic, x->partition);
                continue;
            }
            c->used = 1;
            c->leader = x->leader;
            c->fd = -1;
            c->st = C_DOWN;
            c->retry_at = 0;
            c->backoff_ms = 0;
            snprintf(c->host, sizeof c->host, "%s", x->host);
            c->port = x->port;
        } else if (c->port != x->port || strcmp(c->host, x->host) != 0) {
            conn_close(c); /* the leader moved: dial the new address */
            snprintf(c->host, sizeof c->host, "%s", x->host);
            c->port = x->port;
            c->retry_at = 0;
            c->backoff_ms = 0;
        }
    }
    for (int k = 0; k < FOLLOW_MAX_CONNS; k++) {
        fconn_t *c = &f->conns[k];
        if (!c->used)
            continue;
        int have = 0;
        for (size_t i = 0; i < f->nparts && !have; i++)
            have = f->parts[i].leader == c->leader && !f->parts[i].stopped;
        if (!have) {
            conn_close(c);
            c->used = 0;
        }
    }
}

static void *fetcher(void *arg)
{
    bk_follow_t *f = arg;
    struct pollfd pfd[FOLLOW_MAX_CONNS + 1];
    fconn_t *pc[FOLLOW_MAX_CONNS + 1];
    while (!atomic_load(&f->stop)) {
        int64_t now = sc_mono_ms(), next = now + FOLLOW_POLL_MAX_MS;
        int posted = 0;
        pthread_mutex_lock(&f->mu);
        conns_sync(f);
        for (int k = 0; k < FOLLOW_MAX_CONNS; k++) {
            fconn_t *c = &f->conns[k];
            if (!c->used)
                continue;
            if ((c->st == C_SEND || c->st == C_RECV) && c->kind == R_FETCH &&
                fetch_stale(f, c, now)) {
                conn_close(c); /* reopened at once below */
                c->retry_at = now;
            }
            if (c->st == C_IDLE && c->posted == c->applied &&
                plan_request(f, c, now, &posted)) {
                if (encode(f, c) == 0) {
                    c->st = C_SEND;
                    c->hdr_off = 0;
                    c->deadline = now + FOLLOW_IO_TIMEOUT_MS +
                                  (c->kind == R_FETCH ? f->srv->cfg->replica_fetch_wait_max_ms
                                                      : 0);
                } else {
                    c->nrq = 0;
                    c->retry_at = now + FOLLOW_RECONNECT_MIN_MS; /* out of memory: later */
                }
            }
            /* a partition backing off becomes ready: ask for it (idle) or
             * see whether the fetch in flight should give way */
            if (((c->st == C_IDLE && c->posted == c->applied) ||
                 ((c->st == C_SEND || c->st == C_RECV) && c->kind == R_FETCH)) &&
                c->recheck_at > now && c->recheck_at < next)
                next = c->recheck_at;
        }
        pthread_mutex_unlock(&f->mu);
        if (posted)
            uv_async_send(&f->async);
        /* dial what is down (outside mu: getaddrinfo) */
        int redo = 0;
        for (int k = 0; k < FOLLOW_MAX_CONNS; k++) {
            fconn_t *c = &f->conns[k];
            if (!c->used || c->st != C_DOWN)
                continue;
            if (c->retry_at <= now) {
                conn_dial(c, now);
                if (c->st == C_DOWN)
                    conn_fail(f, c, "cannot connect", now);
                else if (c->st == C_IDLE)
                    redo = 1;
            }
            if (c->st == C_DOWN && c->retry_at < next)
                next = c->retry_at;
        }
        if (redo)
            continue; /* connected at once: send its request */
        int n = 0;
        pfd[n] = (struct pollfd){.fd = f->wake_fd, .events = POLLIN};
        pc[n++] = NULL;
        for (int k = 0; k < FOLLOW_MAX_CONNS; k++) {
            fconn_t *c = &f->conns[k];
            if (!c->used || c->fd < 0)
                continue;
            short ev = c->st == C_CONNECTING || c->st == C_SEND ? POLLOUT : POLLIN;
            pfd[n] = (struct pollfd){.fd = c->fd, .events = ev};
            pc[n++] = c;
            if (c->st != C_IDLE && c->deadline < next)
                next = c->deadline;
        }
        int64_t wait = next - now;
        if (wait < 0)
            wait = 0;
        int r = poll(pfd, (nfds_t)n, (int)wait);
        if (r < 0 && errno != EINTR) {
            SC_WARN(SUB, "poll: %s", strerror(errno));
            usleep(10 * 1000);
            continue;
        }
        now = sc_mono_ms();
        if (r > 0 && (pfd[0].revents & POLLIN)) {
            uint64_t v;
            ssize_t k = read(f->wake_fd, &v, sizeof v);
            (void)k;
        }
        posted = 0;
        for (int i = 1; i < n; i++) {
            fconn_t *c = pc[i];
            short re = r > 0 ? pfd[i].revents : 0;
            if (!re) {
                if (c->st != C_IDLE && now >= c->deadline)
                    conn_fail(f, c, c->st == C_CONNECTING ? "connect timed out"
                                                            : "no answer in time", now);
                continue;
            }
            const char *why = NULL;
            if (c->st == C_CONNECTING) {
                int e = 0;
                socklen_t el = sizeof e;
                if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &e, &el) != 0 || e) {
                    conn_fail(f, c, "cannot connect", now);
                    continue;
                }
                c->st = C_IDLE;
                continue;
            }
            if (c->st == C_IDLE) { /* readable while idle: closed (or garbage) */
                conn_fail(f, c, "closed by the leader", now);
                continue;
            }
            int rc = conn_io(c, &why);
            if (rc < 0) {
                conn_fail(f, c, why, now);
                continue;
            }
            if (rc == 0)
                continue;
            if (c->st == C_SEND) {
                c->st = C_RECV;
                c->hdr_off = 0;
                rc = conn_io(c, &why); /* the answer may be there already */
                if (rc < 0) {
                    conn_fail(f, c, why, now);
                    continue;
                }
                if (rc == 0)
                    continue;
            }
            if (conn_answer(f, c, now, &posted))
                conn_fail(f, c, "bad answer", now);
        }
        if (posted)
            uv_async_send(&f->async);
    }
    for (int k = 0; k < FOLLOW_MAX_CONNS; k++)
        conn_close(&f->conns[k]);
    return NULL;
}

int bk__follow_start(bk_server_t *s)
{
    bk_follow_t *f = sc_calloc(1, sizeof *f);
    if (!f)
        return SC_ERR_NO_MEMORY;
    f->srv = s;
    for (int k = 0; k < FOLLOW_MAX_CONNS; k++)
        f->conns[k].fd = -1;
    f->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (f->wake_fd < 0) {
        int e = -errno;
        sc_free(f);
        SC_ERROR(SUB, "eventfd: %s", strerror(-e));
        return e;
    }
    pthread_mutex_init(&f->mu, NULL);
    uv_async_init(&s->shard0.loop, &f->async, on_async);
    f->async.data = f;
    s->follow = f;
    if (pthread_create(&f->thread, NULL, fetcher, f) != 0) {
        SC_ERROR(SUB, "cannot start the follower fetcher thread");
        return SC_ERR_NO_MEMORY;
    }
    f->started = 1;
    return 0;
}

void bk__follow_stop(bk_server_t *s)
{
    bk_follow_t *f = s->follow;
    if (!f)
        return;
    atomic_store(&f->stop, 1);
    wake(f);
    if (f->started) {
        pthread_join(f->thread, NULL); /* bounded: no blocking socket call */
        f->started = 0;
    }
    if (!uv_is_closing((uv_handle_t *)&f->async))
        uv_close((uv_handle_t *)&f->async, NULL);
}

void bk__follow_free(bk_server_t *s)
{
    bk_follow_t *f = s->follow;
    if (!f)
        return;
    while (f->queue) {
        fitem_t *it = f->queue;
        f->queue = it->next;
        sc_free(it->data);
        sc_free(it);
    }
    for (int k = 0; k < FOLLOW_MAX_CONNS; k++) {
        conn_close(&f->conns[k]);
        sc_free(f->conns[k].rq);
    }
    sc_free(f->parts);
    if (f->wake_fd >= 0)
        close(f->wake_fd);
    pthread_mutex_destroy(&f->mu);
    sc_free(f);
    s->follow = NULL;
}
