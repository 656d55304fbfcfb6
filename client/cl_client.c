/*
 * cl_client -- connections, request pipeline, metadata and the I/O loop
 * (contract in cl_client.h).
 *
 * Connection life: DOWN --(request queued, backoff over)--> CONNECTING
 * (non-blocking connect) --(writable, SO_ERROR 0)--> HANDSHAKE (ApiVersions v0
 * written first; other requests wait) --(answer)--> UP. Any error -- refused,
 * reset, a frame that does not parse, an unexpected correlation id, a request
 * past its deadline -- closes the socket, fails every queued and in-flight
 * request through its callback and sets the broker DOWN with a
 * reconnect.backoff.ms delay. Malformed input never asserts.
 *
 * Metadata: one request at a time, Metadata v1-v6 for the topics of interest
 * (AllowAutoTopicCreation true), sent to any broker; brokers learned from it
 * are added (bootstrap entries stay for re-bootstrapping). Refreshed when a
 * role asks (unknown topic, leader change) no sooner than retry.backoff.ms
 * after the previous one, and every topic.metadata.refresh.interval.ms.
 */
#include "cl_client.h"

#include "sc_err.h"
#include "sc_log.h"
#include "sc_mem.h"
#include "sc_time.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_FRAME (512 << 20)
#define LOGSYS "client"

/* ---- brokers ---------------------------------------------------------------- */

static cl_broker_t *broker_add(cl_client_t *cl, int32_t node_id, const char *host, size_t host_len,
                               int port)
{
    cl_broker_t *b = sc_calloc(1, sizeof *b);

    if (!b)
        return NULL;
    if (!(b->host = sc_malloc(host_len + 1))) {
        sc_free(b);
        return NULL;
    }
    memcpy(b->host, host, host_len);
    b->host[host_len] = 0;
    b->node_id = node_id;
    b->port = port;
    b->fd = -1;
    sc_buf_init(&b->rbuf);
    for (int i = 0; i <= SC_KAFKA_API_KEY_MAX; i++)
        b->vmax[i] = b->vmin[i] = -1;
    b->next = cl->brokers;
    cl->brokers = b;
    return b;
}

cl_broker_t *cl_broker_add(cl_client_t *cl, int32_t node_id, const char *host, int port)
{
    cl_broker_t *b = broker_add(cl, node_id, host, strlen(host), port), **pp;

    if (!b)
        return NULL;
    cl->brokers = b->next; /* broker_add put it first: move it to the end */
    b->next = NULL;
    for (pp = &cl->brokers; *pp; pp = &(*pp)->next)
        ;
    *pp = b;
    return b;
}

cl_broker_t *cl_broker_find(cl_client_t *cl, int32_t node_id)
{
    for (cl_broker_t *b = cl->brokers; b; b = b->next)
        if (b->node_id == node_id)
            return b;
    return NULL;
}

int16_t cl_broker_version(const cl_broker_t *b, int16_t api_key, int16_t our_min, int16_t our_max)
{
    if (b->state != CL_BK_UP || api_key < 0 || api_key > SC_KAFKA_API_KEY_MAX ||
        b->vmax[api_key] < 0)
        return -1;
    int16_t v = b->vmax[api_key] < our_max ? b->vmax[api_key] : our_max;
    if (v < our_min || v < b->vmin[api_key])
        return -1;
    return v;
}

static void req_free(cl_req_t *r)
{
    if (!r)
        return;
    sc_buf_fini(&r->frame);
    sc_free(r);
}

/* Closes b and fails everything queued on it with err. */
static void broker_fail(cl_client_t *cl, cl_broker_t *b, int err, int64_t now)
{
    cl_req_t *lists[2] = {b->inflight, b->outq};

    if (b->state != CL_BK_DOWN)
        SC_DEBUG(LOGSYS, "broker %d %s:%d down: %s", b->node_id, b->host, b->port,
                 sc_err_str(err));
    if (b->fd >= 0)
        close(b->fd);
    b->fd = -1;
    b->state = CL_BK_DOWN;
    b->retry_at_ms = now + cl->conf->reconnect_backoff_ms;
    b->inflight = b->inflight_tail = b->outq = b->outq_tail = NULL;
    b->ninflight = 0;
    sc_buf_reset(&b->rbuf);
    for (int i = 0; i < 2; i++) {
        cl_req_t *r = lists[i];
        while (r) {
            cl_req_t *next = r->next;
            if (r->cb)
                r->cb(cl, b, err, NULL, r->arg);
            req_free(r);
            r = next;
        }
    }
}

static int set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    return fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ? -errno : 0;
}

void cl_broker_connect(cl_client_t *cl, cl_broker_t *b, int64_t now)
{
    struct addrinfo hints = {0}, *ai = NULL;
    char port[16];
    int fd = -1, one = 1, rc;

    if (b->state != CL_BK_DOWN || b->retry_at_ms > now)
        return;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    snprintf(port, sizeof port, "%d", b->port);
    /* getaddrinfo blocks the I/O thread; fine for IP literals and /etc/hosts
     * names, an async resolver is listed as next work in docs/client.md */
    if ((rc = getaddrinfo(b->host, port, &hints, &ai)) != 0 || !ai) {
        SC_WARN(LOGSYS, "resolve %s: %s", b->host, gai_strerror(rc));
        broker_fail(cl, b, -EHOSTUNREACH, now);
        goto out;
    }
    if ((fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 || set_nonblock(fd) < 0) {
        broker_fail(cl, b, -errno, now);
        goto out;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    b->fd = fd;
    fd = -1;
    b->state = CL_BK_CONNECTING;
    b->connect_deadline_ms = now + cl->conf->socket_connection_setup_timeout_ms;
    if (connect(b->fd, ai->ai_addr, ai->ai_addrlen) < 0 && errno != EINPROGRESS)
        broker_fail(cl, b, -errno, now);
out:
    if (fd >= 0)
        close(fd);
    if (ai)
        freeaddrinfo(ai);
}

/* ---- requests ------------------------------------------------------------- */

static cl_req_t *req_new(cl_client_t *cl, int16_t key, int16_t ver, const sc_buf_t *body)
{
    cl_req_t *r = sc_calloc(1, sizeof *r);
    sc_kw_t w;
    sc_kreq_hdr_t h;
    size_t szoff;

    if (!r)
        return NULL;
    sc_buf_init(&r->frame);
    sc_kw_init(&w, &r->frame);
    szoff = sc_kw_reserve_i32(&w);
    h.api_key = key;
    h.api_version = ver;
    h.correlation_id = r->corr = cl->next_corr++;
    if (cl->next_corr < 0)
        cl->next_corr = 0;
    h.client_id.p = cl->conf->client_id;
    h.client_id.len = (int32_t)strlen(cl->conf->client_id);
    h.flexible = 0;
    sc_kafka_req_hdr_encode(&w, &h);
    if (body)
        sc_kw_raw(&w, body->data, body->len);
    if (w.err) {
        req_free(r);
        return NULL;
    }
    sc_kw_patch_i32(&w, szoff, (int32_t)(r->frame.len - 4));
    r->api_key = key;
    r->api_version = ver;
    return r;
}

static void outq_push(cl_broker_t *b, cl_req_t *r, int front)
{
    if (front) {
        r->next = b->outq;
        b->outq = r;
        if (!b->outq_tail)
            b->outq_tail = r;
        return;
    }
    r->next = NULL;
    if (b->outq_tail)
        b->outq_tail->next = r;
    else
        b->outq = r;
    b->outq_tail = r;
}

int cl_request(cl_client_t *cl, cl_broker_t *b, int16_t api_key, int16_t api_version,
               sc_buf_t *body, int no_response, int64_t timeout_ms, cl_resp_cb cb, void *arg)
{
    cl_req_t *r = req_new(cl, api_key, api_version, body);

    if (!r)
        return SC_ERR_NO_MEMORY;
    sc_buf_reset(body);
    r->no_response = no_response;
    r->timeout_ms = timeout_ms;
    r->cb = cb;
    r->arg = arg;
    outq_push(b, r, 0);
    return 0;
}

cl_broker_t *cl_broker_any(cl_client_t *cl, int64_t now)
{
    int n = 0, i = 0, pick;

    for (cl_broker_t *b = cl->brokers; b; b = b->next) {
        if (b->state == CL_BK_UP)
            return b;
        n++;
    }
    for (cl_broker_t *b = cl->brokers; b; b = b->next)
        if (b->state == CL_BK_CONNECTING || b->state == CL_BK_HANDSHAKE)
            return b;
    if (!n)
        return NULL;
    pick = cl->bootstrap_rr++ % n;
    for (int tries = 0; tries < n; tries++, pick = (pick + 1) % n) {
        i = 0;
        for (cl_broker_t *b = cl->brokers; b; b = b->next, i++)
            if (i == pick && b->retry_at_ms <= now)
                return b;
    }
    return NULL;
}

/* ---- ApiVersions handshake ---------------------------------------------------- */

static void on_api_versions(cl_client_t *cl, cl_broker_t *b, int err, sc_rd_t *r, void *arg)
{
    int16_t ec;
    int32_t n;

    if (err)
        return; /* broker_fail already runs */
    ec = sc_kr_i16(r);
    if (sc_kr_array_len(r, 0, 6, &n) || ec) {
        SC_WARN(LOGSYS, "broker %s:%d: ApiVersions failed: %s", b->host, b->port,
                sc_err_str(ec ? ec : r->err));
        b->state = CL_BK_DOWN; /* closed by the loop */
        return;
    }
    for (int32_t i = 0; i < n; i++) {
        int16_t k = sc_kr_i16(r), mn = sc_kr_i16(r), mx = sc_kr_i16(r);
        if (k >= 0 && k <= SC_KAFKA_API_KEY_MAX) {
            b->vmin[k] = mn;
            b->vmax[k] = mx;
        }
    }
    if (r->err) {
        b->state = CL_BK_DOWN;
        return;
    }
    b->state = CL_BK_UP;
    SC_DEBUG(LOGSYS, "broker %d %s:%d up", b->node_id, b->host, b->port);
}

static void broker_connected(cl_client_t *cl, cl_broker_t *b, int64_t now)
{
    sc_buf_t empty;
    cl_req_t *r;

    sc_buf_init(&empty);
    if (!(r = req_new(cl, SC_KAFKA_API_API_VERSIONS, 0, &empty))) {
        broker_fail(cl, b, SC_ERR_NO_MEMORY, now);
        return;
    }
    r->cb = on_api_versions;
    r->timeout_ms = cl->conf->request_timeout_ms;
    outq_push(b, r, 1);
    b->state = CL_BK_HANDSHAKE;
}

/* ---- socket I/O ------------------------------------------------------------------ */

/* Sends what b's socket takes. Returns how many no-response requests
 * (acks=0 Produce) completed: their callbacks freed in-flight room, so the
 * caller must run serve again before it sleeps. */
static int broker_write(cl_client_t *cl, cl_broker_t *b, int64_t now)
{
    int done = 0;

    while (b->outq) {
        cl_req_t *r = b->outq;
        if (b->state == CL_BK_HANDSHAKE && r->api_key != SC_KAFKA_API_API_VERSIONS)
            return done;
        if (b->state == CL_BK_HANDSHAKE && b->ninflight)
            return done;
        ssize_t n = send(b->fd, r->frame.data + r->sent, r->frame.len - r->sent, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR)
                return done;
            broker_fail(cl, b, -errno, now);
            return done;
        }
        r->sent += (size_t)n;
        if (r->sent < r->frame.len)
            return done;
        b->outq = r->next;
        if (!b->outq)
            b->outq_tail = NULL;
        r->next = NULL;
        if (r->no_response) {
            if (r->cb)
                r->cb(cl, b, 0, NULL, r->arg);
            req_free(r);
            done++;
            continue;
        }
        r->deadline_ms = now + r->timeout_ms;
        if (b->inflight_tail)
            b->inflight_tail->next = r;
        else
            b->inflight = r;
        b->inflight_tail = r;
        b->ninflight++;
    }
    return done;
}

/* Dispatches every whole frame in b->rbuf. */
static void broker_frames(cl_client_t *cl, cl_broker_t *b, int64_t now)
{
    size_t off = 0;

    while (b->fd >= 0 && b->rbuf.len - off >= 4) {
        const uint8_t *p = b->rbuf.data + off;
        int32_t size = (int32_t)((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
                                 (uint32_t)p[2] << 8 | p[3]);
        if (size < 4 || size > MAX_FRAME) {
            broker_fail(cl, b, SC_ERR_BAD_FORMAT, now);
            return;
        }
        if (b->rbuf.len - off < 4 + (size_t)size)
            break;
        cl_req_t *r = b->inflight;
        sc_rd_t rd;
        sc_rd_init(&rd, p + 4, (size_t)size);
        int32_t corr = sc_kr_i32(&rd);
        if (!r || corr != r->corr) {
            SC_WARN(LOGSYS, "broker %s:%d: response correlation id %d, expected %d", b->host,
                    b->port, corr, r ? r->corr : -1);
            broker_fail(cl, b, SC_ERR_BAD_FORMAT, now);
            return;
        }
        b->inflight = r->next;
        if (!b->inflight)
            b->inflight_tail = NULL;
        b->ninflight--;
        if (sc_kafka_resp_hdr_version(r->api_key, r->api_version) == 1)
            sc_kr_tags_skip(&rd);
        off += 4 + (size_t)size;
        if (r->cb)
            r->cb(cl, b, rd.err ? SC_ERR_BAD_FORMAT : 0, rd.err ? NULL : &rd, r->arg);
        req_free(r);
        if (b->state == CL_BK_DOWN && b->fd >= 0) { /* handshake refused */
            broker_fail(cl, b, SC_ERR_UNSUPPORTED_VERSION, now);
            return;
        }
    }
    if (b->fd >= 0 && off) {
        memmove(b->rbuf.data, b->rbuf.data + off, b->rbuf.len - off);
        b->rbuf.len -= off;
    }
}

static void broker_read(cl_client_t *cl, cl_broker_t *b, int64_t now)
{
    for (;;) {
        if (sc_buf_reserve(&b->rbuf, 65536)) {
            broker_fail(cl, b, SC_ERR_NO_MEMORY, now);
            return;
        }
        ssize_t n = recv(b->fd, b->rbuf.data + b->rbuf.len, b->rbuf.cap - b->rbuf.len, 0);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            break;
        if (n <= 0) {
            broker_fail(cl, b, n == 0 ? SC_ERR_NETWORK_EXCEPTION : -errno, now);
            return;
        }
        b->rbuf.len += (size_t)n;
        broker_frames(cl, b, now);
        if (b->fd < 0)
            return;
    }
}

/* ---- metadata ------------------------------------------------------------------- */

cl_topic_t *cl_topic_find(cl_client_t *cl, const char *name)
{
    for (cl_topic_t *t = cl->topics; t; t = t->next)
        if (!strcmp(t->name, name))
            return t;
    return NULL;
}

cl_topic_t *cl_topic_get(cl_client_t *cl, const char *name)
{
    cl_topic_t *t = cl_topic_find(cl, name);

    if (t)
        return t;
    if (!(t = sc_calloc(1, sizeof *t)))
        return NULL;
    if (!(t->name = sc_strdup(name))) {
        sc_free(t);
        return NULL;
    }
    t->next = cl->topics;
    cl->topics = t;
    cl->md_wanted = 1;
    return t;
}

void cl_metadata_refresh(cl_client_t *cl) { cl->md_wanted = 1; }

static void on_metadata(cl_client_t *cl, cl_broker_t *from, int err, sc_rd_t *r, void *arg)
{
    int16_t ver = (int16_t)(intptr_t)arg;
    int32_t nb, nt;
    int64_t now = sc_mono_ms();

    cl->md_inflight = 0;
    cl->md_next_ms = now + cl->conf->retry_backoff_ms;
    if (err) {
        cl->md_wanted = 1;
        return;
    }
    if (ver >= 3)
        sc_kr_i32(r);
    if (sc_kr_array_len(r, 0, 10, &nb))
        goto bad;
    for (int32_t i = 0; i < nb; i++) {
        int32_t id = sc_kr_i32(r);
        sc_kstr_t host, rack;
        sc_kr_string(r, 0, &host);
        int32_t port = sc_kr_i32(r);
        if (ver >= 1)
            sc_kr_string(r, 1, &rack);
        if (r->err)
            goto bad;
        cl_broker_t *b = cl_broker_find(cl, id);
        if (b && (strlen(b->host) != (size_t)host.len || memcmp(b->host, host.p, (size_t)host.len) ||
                  b->port != port)) {
            char *h = sc_malloc((size_t)host.len + 1);
            if (h) { /* moved: reconnect to the new address */
                memcpy(h, host.p, (size_t)host.len);
                h[host.len] = 0;
                broker_fail(cl, b, SC_ERR_NETWORK_EXCEPTION, now);
                sc_free(b->host);
                b->host = h;
                b->port = port;
                b->retry_at_ms = now;
            }
        } else if (!b && !broker_add(cl, id, host.p, (size_t)host.len, port)) {
            goto retry;
        }
    }
    if (ver >= 2) {
        sc_kstr_t cid;
        sc_kr_string(r, 1, &cid);
    }
    if (ver >= 1)
        cl->controller_id = sc_kr_i32(r);
    if (sc_kr_array_len(r, 0, 8, &nt))
        goto bad;
    for (int32_t i = 0; i < nt; i++) {
        int16_t terr = sc_kr_i16(r);
        sc_kstr_t name;
        int32_t np;
        char tname[256];
        cl_topic_t *t;

        sc_kr_string(r, 0, &name);
        if (ver >= 1)
            sc_kr_bool(r);
        if (sc_kr_array_len(r, 0, 18, &np))
            goto bad;
        if (name.len >= (int32_t)sizeof tname)
            goto bad;
        memcpy(tname, name.p, (size_t)name.len);
        tname[name.len] = 0;
        t = cl_topic_find(cl, tname);
        cl_part_md_t *parts = np ? sc_calloc((size_t)np, sizeof *parts) : NULL;
        if (np && !parts)
            goto retry;
        for (int32_t j = 0; j < np; j++) {
            int32_t n;
            sc_kr_i16(r); /* partition error: the leader field says enough */
            int32_t id = sc_kr_i32(r), leader = sc_kr_i32(r);
            for (int k = 0; k < (ver >= 5 ? 3 : 2); k++) {
                if (sc_kr_array_len(r, 0, 4, &n))
                    break;
                for (int32_t q = 0; q < n; q++)
                    sc_kr_i32(r);
            }
            if (r->err || id < 0 || id >= np) {
                sc_free(parts);
                goto bad;
            }
            parts[id].id = id;
            parts[id].leader = leader;
        }
        if (!t) {
            sc_free(parts);
            continue;
        }
        if (terr && np == 0) {
            t->err = terr;
            sc_free(parts);
            if (terr == SC_ERR_LEADER_NOT_AVAILABLE)
                cl->md_wanted = 1;
        } else {
            t->err = 0;
            sc_free(t->parts);
            t->parts = parts;
            t->nparts = np;
            for (int32_t j = 0; j < np; j++)
                if (parts[j].leader < 0)
                    cl->md_wanted = 1;
        }
        if (cl->role->topic_updated)
            cl->role->topic_updated(cl, t);
    }
    cl->md_last_ms = now;
    return;
bad:
    SC_WARN(LOGSYS, "broker %s:%d: malformed Metadata v%d response", from->host, from->port, ver);
retry:
    cl->md_wanted = 1;
}

static void metadata_maybe_send(cl_client_t *cl, int64_t now)
{
    cl_broker_t *b;
    sc_buf_t body;
    sc_kw_t w;
    int16_t ver;
    int32_t n = 0;

    if (cl->md_inflight || !cl->topics)
        return;
    if (cl->conf->topic_metadata_refresh_interval_ms > 0 &&
        now - cl->md_last_ms >= cl->conf->topic_metadata_refresh_interval_ms)
        cl->md_wanted = 1;
    if (!cl->md_wanted || now < cl->md_next_ms)
        return;
    if (!(b = cl_broker_any(cl, now)))
        return;
    if (b->state != CL_BK_UP) {
        if (b->state == CL_BK_DOWN)
            cl_broker_connect(cl, b, now);
        return;
    }
    if ((ver = cl_broker_version(b, SC_KAFKA_API_METADATA, 1, 6)) < 0) {
        SC_WARN(LOGSYS, "broker %s:%d supports no Metadata version 1-6", b->host, b->port);
        cl->md_next_ms = now + 1000;
        return;
    }
    sc_buf_init(&body);
    sc_kw_init(&w, &body);
    for (cl_topic_t *t = cl->topics; t; t = t->next)
        n++;
    sc_kw_array_len(&w, n);
    for (cl_topic_t *t = cl->topics; t; t = t->next)
        sc_kw_cstr(&w, 0, t->name);
    if (ver >= 4)
        sc_kw_bool(&w, 1);
    if (w.err || cl_request(cl, b, SC_KAFKA_API_METADATA, ver, &body, 0,
                            cl->conf->request_timeout_ms, on_metadata, (void *)(intptr_t)ver)) {
        cl->md_next_ms = now + cl->conf->retry_backoff_ms;
        goto out;
    }
    cl->md_inflight = 1;
    cl->md_wanted = 0;
out:
    sc_buf_fini(&body);
}

/* ---- the loop ---------------------------------------------------------------------- */

void cl_client_wake(cl_client_t *cl)
{
    uint64_t one = 1;
    ssize_t n = write(cl->wake_fd, &one, sizeof one);
    (void)n;
}

int cl_client_on_io_thread(cl_client_t *cl)
{
    return cl->thread_started && pthread_equal(pthread_self(), cl->thread);
}

static void *io_main(void *arg)
{
    cl_client_t *cl = arg;
    struct pollfd *pfds = NULL;
    cl_broker_t **pbk = NULL;
    size_t cap = 0;

    pthread_mutex_lock(&cl->mu);
    while (!cl->stopping) {
        int64_t now, next;
        size_t n = 1, nb = 0;

        if (cl->role->deliver)
            cl->role->deliver(cl); /* releases and retakes mu around callbacks */
        if (cl->stopping)
            break;
        now = sc_mono_ms();
        next = now + 1000;
        metadata_maybe_send(cl, now);
        int64_t rn = cl->role->serve(cl, now);
        if (rn < next)
            next = rn;
        if (cl->md_wanted && !cl->md_inflight && cl->md_next_ms < next)
            next = cl->md_next_ms;
        for (cl_broker_t *b = cl->brokers; b; b = b->next) {
            nb++;
            if (b->state == CL_BK_DOWN && b->outq) {
                if (b->retry_at_ms <= now)
                    cl_broker_connect(cl, b, now);
                else if (b->retry_at_ms < next)
                    next = b->retry_at_ms;
            }
            /* acks=0 requests done here freed in-flight room that serve ran
             * before: no sleep, serve again (else the loop slept until a
             * wake or its 1 s timeout with records queued) */
            if ((b->state == CL_BK_HANDSHAKE || b->state == CL_BK_UP) &&
                broker_write(cl, b, now) > 0)
                next = now;
        }
        if (nb + 1 > cap) {
            size_t ncap = (nb + 1) * 2;
            struct pollfd *np = sc_realloc(pfds, ncap * sizeof *np);
            if (np)
                pfds = np;
            cl_broker_t **nbk = sc_realloc(pbk, ncap * sizeof *nbk);
            if (nbk)
                pbk = nbk;
            if (!np || !nbk) {
                pthread_mutex_unlock(&cl->mu);
                usleep(10000);
                pthread_mutex_lock(&cl->mu);
                continue;
            }
            cap = ncap;
        }
        pfds[0].fd = cl->wake_fd;
        pfds[0].events = POLLIN;
        for (cl_broker_t *b = cl->brokers; b; b = b->next) {
            if (b->fd < 0)
                continue;
            short ev = POLLIN;
            if (b->state == CL_BK_CONNECTING || (b->outq && (b->state == CL_BK_UP ||
                                                             b->state == CL_BK_HANDSHAKE)))
                ev |= POLLOUT;
            for (cl_req_t *r = b->inflight; r; r = r->next)
                if (r->deadline_ms < next)
                    next = r->deadline_ms;
            if (b->state == CL_BK_CONNECTING && b->connect_deadline_ms < next)
                next = b->connect_deadline_ms;
            pfds[n].fd = b->fd;
            pfds[n].events = ev;
            pfds[n].revents = 0;
            pbk[n++] = b;
        }
        int timeout = next <= now ? 0 : (int)(next - now > 60000 ? 60000 : next - now);
        cl->next_wake_ms = now + timeout;
        pthread_mutex_unlock(&cl->mu);
        int pr = poll(pfds, n, timeout);
        pthread_mutex_lock(&cl->mu);
        cl->next_wake_ms = 0;
        now = sc_mono_ms();
        if (pr > 0 && (pfds[0].revents & POLLIN)) {
            uint64_t v;
            ssize_t rr = read(cl->wake_fd, &v, sizeof v);
            (void)rr;
        }
        for (size_t i = 1; i < n; i++) {
            cl_broker_t *b = pbk[i];
            if (b->fd != pfds[i].fd)
                continue; /* closed meanwhile */
            if (b->state == CL_BK_CONNECTING) {
                if (pfds[i].revents & (POLLOUT | POLLERR | POLLHUP)) {
                    int soerr = 0;
                    socklen_t sl = sizeof soerr;
                    getsockopt(b->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
                    if (soerr)
                        broker_fail(cl, b, -soerr, now);
                    else
                        broker_connected(cl, b, now);
                } else if (now >= b->connect_deadline_ms) {
                    broker_fail(cl, b, -ETIMEDOUT, now);
                }
                continue;
            }
            if (pfds[i].revents & (POLLIN | POLLERR | POLLHUP))
                broker_read(cl, b, now);
            if (b->fd >= 0 && (pfds[i].revents & POLLOUT))
                broker_write(cl, b, now);
            if (b->fd >= 0 && b->inflight && b->inflight->deadline_ms <= now)
                broker_fail(cl, b, SC_ERR_REQUEST_TIMED_OUT, now);
        }
    }
    pthread_mutex_unlock(&cl->mu);
    sc_free(pfds);
    sc_free(pbk);
    return NULL;
}

/* ---- lifecycle -------------------------------------------------------------------- */

static int parse_bootstrap(cl_client_t *cl, const char *list, char *errstr, size_t n)
{
    const char *p = list;
    int32_t id = -1;

    while (*p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *colon = NULL;
        const char *hs = p;
        size_t hl;
        long port = 9092;

        while (len && *hs == ' ') {
            hs++;
            len--;
        }
        if (len > 10 && !strncmp(hs, "PLAINTEXT://", 12)) {
            hs += 12;
            len -= 12;
        }
        for (size_t i = 0; i < len; i++)
            if (hs[i] == ':')
                colon = hs + i;
        hl = colon ? (size_t)(colon - hs) : len;
        if (colon) {
            char tmp[16], *e;
            size_t pl = len - hl - 1;
            if (pl == 0 || pl >= sizeof tmp)
                goto bad;
            memcpy(tmp, colon + 1, pl);
            tmp[pl] = 0;
            port = strtol(tmp, &e, 10);
            if (*e || port <= 0 || port > 65535)
                goto bad;
        }
        if (hl == 0)
            goto bad;
        if (!broker_add(cl, id--, hs, hl, (int)port))
            return SC_ERR_NO_MEMORY;
        p = end ? end + 1 : p + len;
    }
    if (!cl->brokers) {
        if (errstr && n)
            snprintf(errstr, n, "bootstrap.servers: not set");
        return SC_ERR_BAD_CONFIG;
    }
    return 0;
bad:
    if (errstr && n)
        snprintf(errstr, n, "bootstrap.servers: cannot parse \"%s\"", list);
    return SC_ERR_BAD_CONFIG;
}

static void free_brokers_topics(cl_client_t *cl)
{
    while (cl->brokers) {
        cl_broker_t *b = cl->brokers;
        cl->brokers = b->next;
        sc_buf_fini(&b->rbuf);
        sc_free(b->host);
        sc_free(b);
    }
    while (cl->topics) {
        cl_topic_t *t = cl->topics;
        cl->topics = t->next;
        sc_free(t->parts);
        sc_free(t->name);
        sc_free(t);
    }
}

int cl_client_init(cl_client_t *cl, strata_conf_t *conf, const cl_role_t *role, void *role_state,
                   char *errstr, size_t errstr_size)
{
    int rc;

    memset(cl, 0, sizeof *cl);
    cl->wake_fd = -1;
    cl->conf = conf;
    cl->role = role;
    cl->role_state = role_state;
    cl->controller_id = -1;
    if ((rc = parse_bootstrap(cl, conf->bootstrap_servers, errstr, errstr_size)))
        goto out;
    if ((cl->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
        rc = -errno;
        goto out;
    }
    pthread_mutex_init(&cl->mu, NULL);
    pthread_cond_init(&cl->cond, NULL);
    if ((rc = -pthread_create(&cl->thread, NULL, io_main, cl))) {
        pthread_cond_destroy(&cl->cond);
        pthread_mutex_destroy(&cl->mu);
        goto out;
    }
    cl->thread_started = 1;
out:
    if (rc) {
        if (cl->wake_fd >= 0)
            close(cl->wake_fd);
        free_brokers_topics(cl);
        cl->conf = NULL; /* ownership moves only on success */
    }
    return rc;
}

void cl_client_stop(cl_client_t *cl)
{
    pthread_mutex_lock(&cl->mu);
    cl->stopping = 1;
    pthread_mutex_unlock(&cl->mu);
    cl_client_wake(cl);
    pthread_join(cl->thread, NULL);
    cl->thread_started = 0;
    pthread_mutex_lock(&cl->mu);
    for (cl_broker_t *b = cl->brokers; b; b = b->next)
        broker_fail(cl, b, SC_ERR_CLOSED, sc_mono_ms());
    pthread_mutex_unlock(&cl->mu);
}

void cl_client_fini(cl_client_t *cl)
{
    free_brokers_topics(cl);
    close(cl->wake_fd);
    pthread_cond_destroy(&cl->cond);
    pthread_mutex_destroy(&cl->mu);
    strata_conf_free(cl->conf);
}
