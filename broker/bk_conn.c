/*
 * bk_conn -- one client connection: Kafka framing, the in-order response
 * queue, read back-pressure and the idle sweep. Runs on the connection's
 * shard thread only.
 *
 * Framing (reference.md §1.2): every request is int32 Size then Size bytes.
 * A negative size or one above socket.request.max.bytes is logged and the
 * connection closed; nothing is buffered for it. Bytes are read into c->in;
 * once a frame's size is known the buffer is grown to hold the whole frame,
 * so a frame is always handed to the dispatcher contiguous.
 *
 * Ordering: each frame gets a slot at the tail of the FIFO when it is
 * dispatched; slots leave from the head only, and only when ready, so
 * responses go out in request order even if slots complete out of order.
 * libuv keeps uv_write order on a stream.
 *
 * Memory bound: while out_bytes (queued + in-flight response bytes) is at or
 * above srv->out_max_bytes, or BK_CONN_MAX_INFLIGHT requests are outstanding,
 * no further frames are dispatched and reading stops (uv_read_stop); the
 * write callback that brings it back under the bound dispatches what is
 * buffered and restarts reading. A connection therefore holds at most one
 * read chunk or one frame (<= socket.request.max.bytes) of input plus about
 * out_max_bytes + one response of output.
 *
 * Lifetime: bk__conn_close -> uv_close; libuv cancels queued writes (their
 * callbacks run with UV_ECANCELED and free their slots) and then runs
 * on_close, which frees everything else. The conn stays on the shard list
 * until then so shutdown can wait for it.
 */
#include "bk_int.h"

#include "sc_endian.h"
#include "sc_err.h"
#include "sc_log.h"
#include "sc_mem.h"
#include "sc_time.h"

#include <stdio.h>
#include <string.h>

#define SUB "net"

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);

static void slot_free(bk_slot_t *s)
{
    sc_buf_fini(&s->buf);
    sc_free(s);
}

static int over_bound(const bk_conn_t *c)
{
    return c->out_bytes >= c->shard->srv->out_max_bytes || c->outstanding >= BK_CONN_MAX_INFLIGHT;
}

static void on_close(uv_handle_t *h)
{
    bk_conn_t *c = (bk_conn_t *)h;
    bk_shard_t *sh = c->shard;
    while (c->head) {
        bk_slot_t *s = c->head;
        c->head = s->next;
        slot_free(s);
    }
    sc_buf_fini(&c->in);
    if (c->prev)
        c->prev->next = c->next;
    else
        sh->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    sh->nconns--;
    SC_DEBUG(SUB, "conn %llu %s closed", (unsigned long long)c->id, c->peer);
    sc_free(c);
}

void bk__conn_close(bk_conn_t *c)
{
    if (c->closing)
        return;
    c->closing = 1;
    c->reading = 0;
    uv_close((uv_handle_t *)&c->tcp, on_close);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    (void)status;
    bk__conn_close(req->data);
}

static void stop_reading(bk_conn_t *c);

/* After a protocol error: stop reading, let the responses to the requests
 * before the bad one go out (clients pipeline), then close. Kafka answers
 * requests one at a time, so a client sees the same thing there. */
static void conn_drain_and_close(bk_conn_t *c)
{
    if (c->closing || c->draining)
        return;
    stop_reading(c);
    bk__conn_flush(c);
    c->draining = 1;
    c->shut.data = c;
    if (c->closing || uv_shutdown(&c->shut, (uv_stream_t *)&c->tcp, on_shutdown) != 0)
        bk__conn_close(c);
}

static void set_peer(bk_conn_t *c)
{
    struct sockaddr_storage ss;
    int len = sizeof ss;
    char host[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET) {
            struct sockaddr_in *a = (struct sockaddr_in *)&ss;
            uv_ip4_name(a, host, sizeof host);
            port = ntohs(a->sin_port);
        } else if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
            uv_ip6_name(a, host, sizeof host);
            port = ntohs(a->sin6_port);
        }
    }
    snprintf(c->peer, sizeof c->peer, "%s:%d", host, port);
}

static void on_reject_close(uv_handle_t *h)
{
    bk_shard_t *sh = h->data;
    sh->reject_busy = 0;
}

/* Out of memory for a conn: accept into the shard's spare handle and close
 * it, so the listener does not stall on a pending socket. */
static void reject(bk_shard_t *sh, uv_stream_t *listener)
{
    SC_WARN(SUB, "out of memory accepting a connection; closing it");
    if (sh->reject_busy || uv_tcp_init(&sh->loop, &sh->reject))
        return;
    sh->reject_busy = 1;
    sh->reject.data = sh;
    (void)uv_accept(listener, (uv_stream_t *)&sh->reject);
    uv_close((uv_handle_t *)&sh->reject, on_reject_close);
}

static void start_reading(bk_conn_t *c);

void bk__conn_accept(bk_shard_t *sh, uv_stream_t *listener, int listener_index)
{
    bk_conn_t *c = sc_calloc(1, sizeof *c);
    if (!c) {
        reject(sh, listener);
        return;
    }
    c->shard = sh;
    c->listener = listener_index;
    sc_buf_init(&c->in);
    int rc = uv_tcp_init(&sh->loop, &c->tcp);
    if (rc) {
        SC_WARN(SUB, "uv_tcp_init: %s", uv_strerror(rc));
        sc_free(c);
        reject(sh, listener);
        return;
    }
    c->id = ++sh->srv->next_conn_id;
    c->next = sh->conns;
    if (sh->conns)
        sh->conns->prev = c;
    sh->conns = c;
    sh->nconns++;
    c->last_active_ms = sc_mono_ms();
    if ((rc = uv_accept(listener, (uv_stream_t *)&c->tcp)) != 0) {
        SC_WARN(SUB, "accept: %s", uv_strerror(rc));
        bk__conn_close(c);
        return;
    }
    (void)uv_tcp_nodelay(&c->tcp, 1);
    set_peer(c);
    SC_DEBUG(SUB, "conn %llu from %s", (unsigned long long)c->id, c->peer);
    if (sh->stopping) {
        bk__conn_close(c);
        return;
    }
    start_reading(c);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    bk_conn_t *c = (bk_conn_t *)h;
    size_t want = BK_CONN_READ_CHUNK;
    if (c->in.len >= 4) {
        int32_t size = (int32_t)sc_load_be32(c->in.data);
        if (size > 0 && (size_t)size + 4 > c->in.len && (size_t)size + 4 - c->in.len > want)
            want = (size_t)size + 4 - c->in.len;
    }
    if (sc_buf_reserve(&c->in, want)) {
        buf->base = NULL;
        buf->len = 0; /* libuv reports UV_ENOBUFS to on_read */
        return;
    }
    buf->base = (char *)c->in.data + c->in.len;
    buf->len = c->in.cap - c->in.len;
}

static void start_reading(bk_conn_t *c)
{
    if (c->reading || c->closing || c->draining || c->shard->stopping)
        return;
    int rc = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    if (rc) {
        SC_WARN(SUB, "conn %llu %s: read start: %s", (unsigned long long)c->id, c->peer,
                uv_strerror(rc));
        bk__conn_close(c);
        return;
    }
    c->reading = 1;
}

static void stop_reading(bk_conn_t *c)
{
    if (!c->reading)
        return;
    SC_DEBUG(SUB, "conn %llu %s: pausing reads (%zu response bytes, %d requests outstanding)",
             (unsigned long long)c->id, c->peer, c->out_bytes, c->outstanding);
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = 0;
}

/* Dispatches every complete frame in c->in while under the output bound. */
static void process_input(bk_conn_t *c)
{
    size_t pos = 0;
    int32_t max = c->shard->srv->cfg->socket_request_max_bytes;
    while (!c->closing && !c->draining && !over_bound(c) && c->in.len - pos >= 4) {
        int32_t size = (int32_t)sc_load_be32(c->in.data + pos);
        if (size < 0 || size > max) {
            SC_WARN(SUB, "conn %llu %s: frame size %d outside [0, %d] "
                         "(socket.request.max.bytes); closing",
                    (unsigned long long)c->id, c->peer, size, max);
            conn_drain_and_close(c);
            return;
        }
        if (c->in.len - pos - 4 < (size_t)size)
            break;
        if (bk__dispatch(c, c->in.data + pos + 4, (size_t)size)) {
            conn_drain_and_close(c);
            return;
        }
        pos += 4 + (size_t)size;
        bk__conn_flush(c); /* so out_bytes, and with it the bound, track each response */
    }
    if (pos) {
        memmove(c->in.data, c->in.data + pos, c->in.len - pos);
        c->in.len -= pos;
    }
    /* Give back a large frame's buffer once it is consumed. */
    if (c->in.len == 0 && c->in.cap > 4 * BK_CONN_READ_CHUNK)
        sc_buf_fini(&c->in);
    if (over_bound(c))
        stop_reading(c);
    bk__conn_flush(c);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    bk_conn_t *c = (bk_conn_t *)stream;
    (void)buf;
    if (nread == 0)
        return;
    if (nread < 0) {
        if (nread == UV_ENOBUFS)
            SC_WARN(SUB, "conn %llu %s: out of memory for the read buffer; closing",
                    (unsigned long long)c->id, c->peer);
        else if (nread != UV_EOF)
            SC_DEBUG(SUB, "conn %llu %s: read: %s", (unsigned long long)c->id, c->peer,
                     uv_strerror((int)nread));
        bk__conn_close(c);
        return;
    }
    c->in.len += (size_t)nread;
    c->last_active_ms = sc_mono_ms();
    process_input(c);
}

static void on_write(uv_write_t *req, int status)
{
    bk_slot_t *s = req->data;
    bk_conn_t *c = s->conn;
    c->out_bytes -= s->buf.len;
    c->outstanding--;
    slot_free(s);
    if (c->closing)
        return;
    if (status < 0) {
        SC_DEBUG(SUB, "conn %llu %s: write: %s", (unsigned long long)c->id, c->peer,
                 uv_strerror(status));
        bk__conn_close(c);
        return;
    }
    c->last_active_ms = sc_mono_ms();
    if (!c->reading && !c->draining && !over_bound(c)) {
        process_input(c); /* frames that arrived while paused */
        if (!c->closing && !over_bound(c))
            start_reading(c);
    }
}

bk_slot_t *bk__slot_push(bk_conn_t *c)
{
    bk_slot_t *s = sc_calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->conn = c;
    sc_buf_init(&s->buf);
    if (c->tail)
        c->tail->next = s;
    else
        c->head = s;
    c->tail = s;
    c->outstanding++;
    return s;
}

void bk__conn_flush(bk_conn_t *c)
{
    while (!c->closing && !c->draining && c->head && c->head->ready) {
        bk_slot_t *s = c->head;
        c->head = s->next;
        if (!c->head)
            c->tail = NULL;
        s->next = NULL;
        if (s->no_response) {
            c->outstanding--;
            slot_free(s);
            continue;
        }
        uv_buf_t b = uv_buf_init((char *)s->buf.data, (unsigned)s->buf.len);
        s->wreq.data = s;
        c->out_bytes += s->buf.len;
        int rc = uv_write(&s->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_write);
        if (rc) {
            c->out_bytes -= s->buf.len;
            c->outstanding--;
            slot_free(s);
            SC_DEBUG(SUB, "conn %llu %s: write: %s", (unsigned long long)c->id, c->peer,
                     uv_strerror(rc));
            bk__conn_close(c);
            return;
        }
    }
}

void bk__shard_idle_sweep(bk_shard_t *sh)
{
    int64_t now = sc_mono_ms();
    int64_t idle = sh->srv->cfg->connections_max_idle_ms;
    for (bk_conn_t *c = sh->conns; c; c = c->next) {
        if (c->closing || (c->outstanding && !c->draining))
            continue;
        if (now - c->last_active_ms >= idle) {
            SC_INFO(SUB, "conn %llu %s idle for %lld ms (connections.max.idle.ms); closing",
                    (unsigned long long)c->id, c->peer, (long long)(now - c->last_active_ms));
            bk__conn_close(c);
        }
    }
}
