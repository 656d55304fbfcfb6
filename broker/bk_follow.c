/*
 * bk_follow -- the follower fetcher of cluster mode (docs/replication.md):
 * copies the log of every partition this broker replicates but does not lead
 * from its leader, with Kafka Fetch v4 carrying this broker's id as
 * replica_id. The leader answers up to its committed offset, parking the
 * request (max_wait FOLLOW_MAX_WAIT_MS, min_bytes 1) until it has something,
 * so a caught-up follower is woken by the leader's next append.
 *
 * Threads: one fetcher thread does the blocking network I/O (one socket per
 * leader, requests sent in turn); the log belongs to shard 0, so the bytes
 * travel there through a queue + uv_async, shard 0 appends them (one
 * st_log_append per batch, with the batch's own partitionLeaderEpoch, so the
 * follower's offsets and leader-epoch history are the leader's), and the
 * thread waits until those appends are durable (the follower's flush
 * policy) before the next fetch of those partitions starts at the new log
 * end -- so the offset a follower reports to its leader is durable there. Shard 0 publishes the set of followed partitions after
 * every cluster refresh (bk__follow_publish).
 *
 * Under a leader epoch not checked yet, a partition is first cut back to
 * where its log agrees with the leader's (OffsetForLeaderEpoch v3 from the
 * thread, st_log_truncate_to on shard 0) before it is fetched. The leader's
 * side (follower offsets, ISR, high watermark) is in bk_cluster.c.
 *
 * Batches are appended with ST_APPEND_KEEP_OFFSETS: a compacted leader's
 * offset gaps are copied as they are.
 *
 * Not here: fetch sessions, several fetches in flight per leader.
 */
#include "bk_int.h"

#include "rp_follow.h"

#include "sc_endian.h"
#include "sc_err.h"
#include "sc_log.h"
#include "sc_mem.h"
#include "st_batch.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define SUB "follow"
/* How long a leader parks a follower's fetch. One thread fetches from the
 * leaders in turn, so a parked fetch at one leader delays the next fetch from
 * the others by up to this much: kept short (acks=all latency on partitions
 * led by different brokers). A thread or poll loop per leader would lift it. */
#define FOLLOW_MAX_WAIT_MS 20
#define FOLLOW_PART_MAX_BYTES (1 << 20)
#define FOLLOW_IO_TIMEOUT_MS 5000

typedef struct {
    char topic[BK_TOPIC_NAME_MAX + 1];
    int32_t partition;
    int32_t leader;
    char host[256];
    int port;
    int64_t leo;     /* next offset to fetch (set by shard 0) */
    int stopped;     /* diverged: not copied any more */
    int32_t epoch;   /* the partition's leader epoch we follow under */
    int32_t local_epoch; /* latest epoch in the local log when published */
    int checked;     /* truncated to the leader (OffsetForLeaderEpoch) at this epoch */
} fpart_t;

typedef struct fitem {
    struct fitem *next;
    char topic[BK_TOPIC_NAME_MAX + 1];
    int32_t partition;
    uint8_t *data;   /* NULL: a truncation item */
    size_t len;
    int64_t trunc;   /* truncation item: cut the local log here (-1: nothing to cut) */
    int32_t epoch;   /* truncation item: the leader epoch it was checked under */
} fitem_t;

typedef struct {
    int32_t leader;
    int fd;
    char host[256];
    int port;
} fconn_t;

struct bk_follow {
    bk_server_t *srv;
    pthread_t thread;
    int started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    atomic_int stop;
    fpart_t *parts;      /* under mu: the published set */
    size_t nparts;
    uint64_t generation; /* bumped by each publish */
    fitem_t *queue;      /* under mu: fetched bytes for shard 0 */
    uint64_t posted, applied; /* under mu */
    uv_async_t async;
    fconn_t conns[64];
    int nconns;
    int32_t corr;
};

/* ---- shard 0 ------------------------------------------------------------------ */

/* One fetched answer being applied: counts its appends still in flight; the
 * fetcher learns the new log end only once they are all durable (each
 * replica applies its flush policy before it reports its log end offset). */
typedef struct {
    bk_follow_t *f;
    char topic[BK_TOPIC_NAME_MAX + 1];
    int32_t partition;
    int pending;   /* appends in flight + 1 while apply() runs */
    int stop;      /* the copy of this partition must stop */
    int64_t leo;   /* log end once everything here is durable */
} ftrack_t;

typedef struct {
    ftrack_t *tr;
    uint8_t data[];
} fappend_t;

static void track_done(ftrack_t *tr)
{
    if (--tr->pending > 0)
        return;
    bk_follow_t *f = tr->f;
    pthread_mutex_lock(&f->mu);
    for (size_t i = 0; i < f->nparts; i++)
        if (f->parts[i].partition == tr->partition && strcmp(f->parts[i].topic, tr->topic) == 0) {
            if (tr->stop)
                f->parts[i].stopped = 1;
            else if (tr->leo > f->parts[i].leo)
                f->parts[i].leo = tr->leo;
        }
    f->applied++;
    pthread_cond_broadcast(&f->cv);
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

/* Appends the batches of it that continue the local log (rp_follow_walk);
 * tr learns the outcome (stop on a gap, divergence or refused append; logged). */
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
    if (rc && rc != SC_ERR_NO_MEMORY) { /* no memory: the next fetch tries again */
        SC_WARN(SUB, "%s-%d: cannot continue the local log at %lld from the leader's answer "
                     "(%s); not copying this partition any more",
                it->topic, it->partition, (long long)next, sc_err_str(rc));
        tr->stop = 1;
    }
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
        if (!it->data) { /* truncation to the leader's log (OffsetForLeaderEpoch) */
            bk_part_t *p = bk__part_find(f->srv, it->topic, strlen(it->topic), it->partition);
            int64_t leo = -1;
            if (p && it->trunc >= 0 && it->trunc < st_log_end_offset(p->log)) {
                SC_INFO(SUB, "%s-%d: truncating from %lld to %lld to follow the leader "
                             "(leader epoch %d)", it->topic, it->partition,
                        (long long)st_log_end_offset(p->log), (long long)it->trunc, it->epoch);
                int rc = st_log_truncate_to(p->log, it->trunc);
                if (rc)
                    SC_WARN(SUB, "%s-%d: truncating to %lld: %s", it->topic, it->partition,
                            (long long)it->trunc, sc_err_str(rc));
            }
            if (p)
                leo = st_log_end_offset(p->log);
            pthread_mutex_lock(&f->mu);
            for (size_t i = 0; i < f->nparts; i++)
                if (f->parts[i].partition == it->partition && f->parts[i].epoch == it->epoch &&
                    strcmp(f->parts[i].topic, it->topic) == 0) {
                    f->parts[i].checked = 1;
                    if (leo >= 0)
                        f->parts[i].leo = leo;
                }
            f->applied++;
            pthread_cond_broadcast(&f->cv);
            pthread_mutex_unlock(&f->mu);
            sc_free(it);
            continue;
        }
        ftrack_t *tr = sc_calloc(1, sizeof *tr);
        if (tr) {
            tr->f = f;
            snprintf(tr->topic, sizeof tr->topic, "%s", it->topic);
            tr->partition = it->partition;
            tr->pending = 1;
            tr->leo = -1;
            apply(f->srv, it, tr);
            track_done(tr); /* drops the guard: done now if nothing was appended */
        } else {
            pthread_mutex_lock(&f->mu);
            f->applied++;
            pthread_cond_broadcast(&f->cv);
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
        x->stopped = !p;
        /* keep the stop of a partition that diverged under the same leader */
        for (size_t j = 0; j < f->nparts; j++)
            if (f->parts[j].partition == x->partition && f->parts[j].leader == x->leader &&
                f->parts[j].epoch == x->epoch && strcmp(f->parts[j].topic, x->topic) == 0) {
                x->stopped |= f->parts[j].stopped;
                x->checked = f->parts[j].checked;
            }
    }
    sc_free(f->parts);
    f->parts = np;
    f->nparts = n;
    f->generation++;
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
}

/* ---- the fetcher thread ---------------------------------------------------------- */

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

/* Blocking send/recv of len bytes in 100 ms slices (so a stop is seen
 * quickly), giving up after FOLLOW_IO_TIMEOUT_MS + FOLLOW_MAX_WAIT_MS idle. */
static int io_all(bk_follow_t *f, int fd, void *buf, size_t len, int writing)
{
    uint8_t *b = buf;
    int idle = 0;
    while (len) {
        if (atomic_load(&f->stop))
            return -1;
        struct pollfd pfd = {.fd = fd, .events = writing ? POLLOUT : POLLIN};
        int r = poll(&pfd, 1, 100);
        if (r < 0)
            return -1;
        if (r == 0) {
            idle += 100;
            if (idle >= FOLLOW_IO_TIMEOUT_MS + FOLLOW_MAX_WAIT_MS)
                return -1;
            continue;
        }
        idle = 0;
        ssize_t k = writing ? send(fd, b, len, MSG_NOSIGNAL) : recv(fd, b, len, 0);
        if (k <= 0) {
            if (k < 0 && (errno == EINTR || errno == EAGAIN))
                continue;
            return -1;
        }
        b += k;
        len -= (size_t)k;
    }
    return 0;
}

static int dial(const char *host, int port)
{
    char ps[16];
    snprintf(ps, sizeof ps, "%d", port);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
    if (getaddrinfo(host, ps, &hints, &ai) != 0 || !ai)
        return -1;
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    if (fd >= 0) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    return fd;
}

static fconn_t *conn_for(bk_follow_t *f, int32_t leader, const char *host, int port)
{
    for (int i = 0; i < f->nconns; i++) {
        fconn_t *c = &f->conns[i];
        if (c->leader == leader) {
            if (c->fd >= 0 && (c->port != port || strcmp(c->host, host) != 0)) {
                close(c->fd);
                c->fd = -1;
            }
            if (c->fd < 0) {
                c->fd = dial(host, port);
                snprintf(c->host, sizeof c->host, "%s", host);
                c->port = port;
            }
            return c->fd >= 0 ? c : NULL;
        }
    }
    if (f->nconns >= (int)(sizeof f->conns / sizeof f->conns[0]))
        return NULL;
    fconn_t *c = &f->conns[f->nconns++];
    c->leader = leader;
    snprintf(c->host, sizeof c->host, "%s", host);
    c->port = port;
    c->fd = dial(host, port);
    return c->fd >= 0 ? c : NULL;
}

static void conn_drop(fconn_t *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

/* One Fetch to one leader for parts[idx[0..k)]. Queues what came back.
 * Returns the number of items queued, or -1 (connection dropped). */
static int fetch_once(bk_follow_t *f, const fpart_t *parts, const size_t *idx, size_t k)
{
    const fpart_t *first = &parts[idx[0]];
    fconn_t *c = conn_for(f, first->leader, first->host, first->port);
    if (!c)
        return -1;
    size_t cap = 64 + k * (BK_TOPIC_NAME_MAX + 32);
    uint8_t *req = sc_malloc(cap);
    if (!req)
        return -1;
    uint8_t *p = req + 4;
    put16(&p, 1); /* Fetch */
    put16(&p, 4);
    put32(&p, ++f->corr);
    putstr(&p, "strata-follower");
    put32(&p, f->srv->cfg->node_id); /* replica_id */
    put32(&p, FOLLOW_MAX_WAIT_MS);
    put32(&p, 1);                   /* min_bytes */
    put32(&p, 64 << 20);            /* max_bytes */
    *p++ = 0;                       /* isolation: read uncommitted */
    put32(&p, (int32_t)k);          /* one topic entry per partition (allowed) */
    for (size_t i = 0; i < k; i++) {
        const fpart_t *x = &parts[idx[i]];
        putstr(&p, x->topic);
        put32(&p, 1);
        put32(&p, x->partition);
        put64(&p, x->leo);
        put32(&p, FOLLOW_PART_MAX_BYTES);
    }
    sc_store_be32(req, (uint32_t)(p - req - 4));
    int rc = io_all(f, c->fd, req, (size_t)(p - req), 1);
    sc_free(req);
    uint8_t hdr[8];
    if (rc || io_all(f, c->fd, hdr, 8, 0)) {
        conn_drop(c);
        return -1;
    }
    uint32_t size = sc_load_be32(hdr);
    if (size < 4 || size > (256u << 20) || (int32_t)sc_load_be32(hdr + 4) != f->corr) {
        conn_drop(c);
        return -1;
    }
    size -= 4;
    uint8_t *body = sc_malloc(size ? size : 1);
    if (!body || io_all(f, c->fd, body, size, 0)) {
        sc_free(body);
        conn_drop(c);
        return -1;
    }
    /* throttle, topics[ name, partitions[ idx, err, hw, lso, aborted[], records ] ] */
    sc_rd_t r = {body, body + size, 0};
    int queued = 0;
    (void)sc_rd_be32(&r);
    int32_t nt = (int32_t)sc_rd_be32(&r);
    fitem_t *items = NULL;
    for (int32_t t = 0; t < nt && !r.err; t++) {
        int16_t tl = (int16_t)sc_rd_be16(&r);
        const uint8_t *tn = sc_rd_bytes(&r, tl > 0 ? (size_t)tl : 0);
        int32_t np = (int32_t)sc_rd_be32(&r);
        for (int32_t q = 0; q < np && !r.err; q++) {
            int32_t part = (int32_t)sc_rd_be32(&r);
            int16_t err = (int16_t)sc_rd_be16(&r);
            (void)sc_rd_be64(&r);
            (void)sc_rd_be64(&r);
            int32_t na = (int32_t)sc_rd_be32(&r);
            for (int32_t a = 0; a < na && !r.err; a++)
                (void)sc_rd_bytes(&r, 16);
            int32_t rl = (int32_t)sc_rd_be32(&r);
            const uint8_t *rec = sc_rd_bytes(&r, rl > 0 ? (size_t)rl : 0);
            if (r.err || err || rl <= 0 || !tn || tl <= 0 || tl > BK_TOPIC_NAME_MAX)
                continue;
            fitem_t *it = sc_calloc(1, sizeof *it);
            uint8_t *data = sc_malloc((size_t)rl);
            if (!it || !data) {
                sc_free(it);
                sc_free(data);
                continue;
            }
            memcpy(it->topic, tn, (size_t)tl);
            it->partition = part;
            memcpy(data, rec, (size_t)rl);
            it->data = data;
            it->len = (size_t)rl;
            it->next = items;
            items = it;
            queued++;
        }
    }
    sc_free(body);
    if (r.err) {
        conn_drop(c);
    }
    if (queued) {
        pthread_mutex_lock(&f->mu);
        while (items) {
            fitem_t *it = items;
            items = it->next;
            it->next = f->queue;
            f->queue = it;
        }
        f->posted += (uint64_t)queued;
        pthread_mutex_unlock(&f->mu);
        uv_async_send(&f->async);
    }
    return queued;
}

/* OffsetForLeaderEpoch v3 for x's latest local epoch `want`: *end = the
 * leader's end offset of the largest epoch <= want (-1: none). 0 or -1
 * (connection). */
static int epoch_end(bk_follow_t *f, const fpart_t *x, int32_t want, int64_t *end)
{
    fconn_t *c = conn_for(f, x->leader, x->host, x->port);
    if (!c)
        return -1;
    uint8_t req[64 + BK_TOPIC_NAME_MAX], *p = req + 4;
    put16(&p, 23); /* OffsetForLeaderEpoch */
    put16(&p, 3);
    put32(&p, ++f->corr);
    putstr(&p, "strata-follower");
    put32(&p, f->srv->cfg->node_id); /* replica_id */
    put32(&p, 1);
    putstr(&p, x->topic);
    put32(&p, 1);
    put32(&p, x->partition);
    put32(&p, -1); /* current_leader_epoch: not checked */
    put32(&p, want);
    sc_store_be32(req, (uint32_t)(p - req - 4));
    uint8_t hdr[8];
    if (io_all(f, c->fd, req, (size_t)(p - req), 1) || io_all(f, c->fd, hdr, 8, 0)) {
        conn_drop(c);
        return -1;
    }
    uint32_t size = sc_load_be32(hdr);
    if (size < 4 || size > (1u << 20) || (int32_t)sc_load_be32(hdr + 4) != f->corr) {
        conn_drop(c);
        return -1;
    }
    size -= 4;
    uint8_t *body = sc_malloc(size ? size : 1);
    if (!body || io_all(f, c->fd, body, size, 0)) {
        sc_free(body);
        conn_drop(c);
        return -1;
    }
    sc_rd_t r = {body, body + size, 0};
    (void)sc_rd_be32(&r); /* throttle */
    int32_t nt = (int32_t)sc_rd_be32(&r);
    *end = -1;
    int16_t err = -1;
    if (nt == 1) {
        int16_t tl = (int16_t)sc_rd_be16(&r);
        (void)sc_rd_bytes(&r, tl > 0 ? (size_t)tl : 0);
        if ((int32_t)sc_rd_be32(&r) == 1) {
            err = (int16_t)sc_rd_be16(&r);
            (void)sc_rd_be32(&r); /* partition */
            int32_t found = (int32_t)sc_rd_be32(&r);
            int64_t e = (int64_t)sc_rd_be64(&r);
            if (!r.err && !err && found >= 0)
                *end = e;
        }
    }
    sc_free(body);
    return r.err || err ? -1 : 0;
}

/* Before fetching under a new leader epoch: where the local log must be cut
 * so that it is a prefix of the leader's (-1: nothing to cut). Walks the
 * local epochs down until the leader knows one. -1 on a connection error. */
static int check_truncation(bk_follow_t *f, const fpart_t *x, int64_t *trunc)
{
    *trunc = -1;
    for (int32_t e = x->local_epoch; e >= 0; e--) {
        int64_t end;
        if (epoch_end(f, x, e, &end))
            return -1;
        if (end >= 0) {
            if (end < x->leo)
                *trunc = end;
            return 0;
        }
    }
    if (x->local_epoch >= 0 && x->leo > 0)
        *trunc = 0; /* the leader has none of our epochs: start over */
    return 0;
}

static void *fetcher(void *arg)
{
    bk_follow_t *f = arg;
    for (;;) {
        pthread_mutex_lock(&f->mu);
        /* wait for shard 0 to apply what was fetched, so fetch offsets are new */
        while (!atomic_load(&f->stop) && f->applied < f->posted)
            pthread_cond_wait(&f->cv, &f->mu);
        if (atomic_load(&f->stop)) {
            pthread_mutex_unlock(&f->mu);
            break;
        }
        size_t n = f->nparts;
        fpart_t *snap = n ? sc_malloc(n * sizeof *snap) : NULL;
        if (snap)
            memcpy(snap, f->parts, n * sizeof *snap);
        int any = 0;
        for (size_t i = 0; snap && i < n; i++)
            any |= !snap[i].stopped;
        if (!any) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 200 * 1000000;
            if (ts.tv_nsec >= 1000000000) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000;
            }
            pthread_cond_timedwait(&f->cv, &f->mu, &ts);
            pthread_mutex_unlock(&f->mu);
            sc_free(snap);
            continue;
        }
        pthread_mutex_unlock(&f->mu);
        /* a partition followed under a new leader epoch is first cut back to
         * where its log agrees with the leader's (KIP-101); the item tells
         * shard 0, which marks it checked */
        int posted = 0;
        for (size_t i = 0; snap && i < n; i++) {
            if (snap[i].stopped || snap[i].checked)
                continue;
            int64_t trunc;
            if (check_truncation(f, &snap[i], &trunc))
                continue;
            fitem_t *it = sc_calloc(1, sizeof *it);
            if (!it)
                continue;
            snprintf(it->topic, sizeof it->topic, "%s", snap[i].topic);
            it->partition = snap[i].partition;
            it->trunc = trunc;
            it->epoch = snap[i].epoch;
            pthread_mutex_lock(&f->mu);
            it->next = f->queue;
            f->queue = it;
            f->posted++;
            pthread_mutex_unlock(&f->mu);
            posted = 1;
        }
        if (posted) {
            uv_async_send(&f->async);
            sc_free(snap);
            continue; /* fetch once shard 0 has applied them */
        }
        /* one request per leader, in turn */
        size_t *idx = sc_malloc(n * sizeof *idx);
        int *done = sc_calloc(n, sizeof *done);
        int failed = 0;
        for (size_t i = 0; idx && done && i < n; i++) {
            if (done[i] || snap[i].stopped)
                continue;
            size_t k = 0;
            for (size_t j = i; j < n; j++)
                if (!done[j] && !snap[j].stopped && snap[j].leader == snap[i].leader) {
                    idx[k++] = j;
                    done[j] = 1;
                }
            if (fetch_once(f, snap, idx, k) < 0)
                failed = 1;
        }
        sc_free(idx);
        sc_free(done);
        sc_free(snap);
        if (failed)
            usleep(200 * 1000); /* leader down or moving: the next refresh tells */
    }
    for (int i = 0; i < f->nconns; i++)
        conn_drop(&f->conns[i]);
    return NULL;
}

int bk__follow_start(bk_server_t *s)
{
    bk_follow_t *f = sc_calloc(1, sizeof *f);
    if (!f)
        return SC_ERR_NO_MEMORY;
    f->srv = s;
    pthread_mutex_init(&f->mu, NULL);
    pthread_cond_init(&f->cv, NULL);
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
    pthread_mutex_lock(&f->mu);
    atomic_store(&f->stop, 1);
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
    if (f->started) {
        pthread_join(f->thread, NULL); /* bounded by the socket timeouts */
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
    sc_free(f->parts);
    pthread_mutex_destroy(&f->mu);
    pthread_cond_destroy(&f->cv);
    sc_free(f);
    s->follow = NULL;
}
