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
 * Produce frames (bk_frame_t) outlive dispatch: the log writes the batches
 * straight from them. A frame of BK_FRAME_STEAL_MIN bytes or more is taken
 * over with the read buffer that holds it (the bytes after it are copied to
 * a fresh read buffer), a smaller one is copied. Held frame bytes count
 * against the same bound as response bytes (held_bytes), so a client
 * cannot queue unbounded produce data behind a slow disk.
 *
 * Writing (pump): the head slot's pieces go out in order. Buffer pieces are
 * uv_write'n (libuv keeps them in order); a file piece is sent with
 * sendfile(2) on the socket itself, which is only done once libuv's write
 * queue is empty (write_queue_size == 0), so bytes never interleave. When the
 * socket is full (EAGAIN) one chunk of the file is pread into the slot's
 * bounce buffer and uv_write'n -- libuv then waits for writability, and its
 * callback resumes sendfile. libuv gives no way to wait for writability on a
 * socket it owns without writing, and the bounce costs one copy only when
 * the client is slower than the disk.
 *
 * Lifetime: bk__conn_close -> uv_close; libuv cancels queued writes (their
 * callbacks run with UV_ECANCELED and free their slots) and then runs
 * on_close, which frees everything else; slots whose operation is still
 * running are detached from it first (slot->detach) and frames still held by
 * appends forget the connection. The conn stays on the shard list until then
 * so shutdown can wait for it.
 */
#include "bk_int.h"

#include "sc_endian.h"
#include "sc_err.h"
#include "sc_log.h"
#include "sc_mem.h"
#include "sc_time.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/sendfile.h>
#include <unistd.h>

#define SUB "net"

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);

typedef struct {
    uv_write_t req;
    bk_slot_t *slot;
    size_t bytes;
    int bounce;
} wreq_t;

static void slot_free(bk_slot_t *s)
{
    for (unsigned i = 0; i < s->npieces; i++)
        if (s->pieces[i].kind == BK_PIECE_FILE && s->pieces[i].fd >= 0)
            close(s->pieces[i].fd);
    sc_free(s->pieces);
    sc_free(s->bounce);
    sc_buf_fini(&s->buf);
    sc_free(s);
}

static int over_bound(const bk_conn_t *c)
{
    return c->out_bytes + c->held_bytes >= c->shard->srv->out_max_bytes ||
           c->outstanding + c->nframes >= BK_CONN_MAX_INFLIGHT;
}

static void maybe_finish(bk_conn_t *c);

static void on_close(uv_handle_t *h)
{
    bk_conn_t *c = (bk_conn_t *)h;
    bk_shard_t *sh = c->shard;
    while (c->head) {
        bk_slot_t *s = c->head;
        c->head = s->next;
        if (s->detach)
            s->detach(s);
        slot_free(s);
    }
    for (bk_frame_t *f = c->frames; f; f = f->next)
        f->conn = NULL;
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

/* Makes a frame object for the frame whose size prefix is at c->in[*pos]:
 * steals c->in when the frame is big (the bytes after it move to a new read
 * buffer and *pos becomes the new position of the next frame minus the frame,
 * see the caller), else copies. NULL on no memory. */
static bk_frame_t *frame_take(bk_conn_t *c, size_t *pos, size_t size, int *stolen)
{
    bk_frame_t *f = sc_calloc(1, sizeof *f);
    if (!f)
        return NULL;
    *stolen = 0;
    if (size >= BK_FRAME_STEAL_MIN) {
        size_t after = *pos + 4 + size;
        sc_buf_t rest;
        sc_buf_init(&rest);
        if (c->in.len > after && sc_buf_append(&rest, c->in.data + after, c->in.len - after)) {
            sc_free(f);
            return NULL;
        }
        f->mem = c->in.data;
        f->body = c->in.data + *pos + 4;
        c->in = rest;
        *pos = 0;
        *stolen = 1;
    } else {
        if (!(f->mem = sc_malloc(size ? size : 1))) {
            sc_free(f);
            return NULL;
        }
        memcpy(f->mem, c->in.data + *pos + 4, size);
        f->body = f->mem;
    }
    f->len = size;
    f->refs = 1;
    f->conn = c;
    f->next = c->frames;
    if (c->frames)
        c->frames->prev = f;
    c->frames = f;
    c->held_bytes += size;
    c->nframes++;
    return f;
}

static void resume(bk_conn_t *c);

void bk__frame_unref(bk_frame_t *f)
{
    if (!f || --f->refs > 0)
        return;
    bk_conn_t *c = f->conn;
    if (c) {
        if (f->prev)
            f->prev->next = f->next;
        else
            c->frames = f->next;
        if (f->next)
            f->next->prev = f->prev;
        c->held_bytes -= f->len;
        c->nframes--;
    }
    sc_free(f->mem);
    sc_free(f);
    if (c) {
        resume(c);
        maybe_finish(c);
    }
}

/* Dispatches every complete frame in c->in while under the output bound. */
static void process_input(bk_conn_t *c)
{
    size_t pos = 0;
    int rc;
    int32_t max = c->shard->srv->cfg->socket_request_max_bytes;
    if (c->processing)
        return; /* re-entered from a completion run inside a handler */
    c->processing = 1;
    while (!c->closing && !c->draining && !over_bound(c) && c->in.len - pos >= 4) {
        int32_t size = (int32_t)sc_load_be32(c->in.data + pos);
        if (size < 0 || size > max) {
            SC_WARN(SUB, "conn %llu %s: frame size %d outside [0, %d] "
                         "(socket.request.max.bytes); closing",
                    (unsigned long long)c->id, c->peer, size, max);
            c->processing = 0;
            conn_drain_and_close(c);
            return;
        }
        if (c->in.len - pos - 4 < (size_t)size)
            break;
        bk_frame_t *f = NULL;
        int stolen = 0;
        const uint8_t *body = c->in.data + pos + 4;
        if (size >= 2 && sc_load_be16(body) == SC_KAFKA_API_PRODUCE) {
            if (!(f = frame_take(c, &pos, (size_t)size, &stolen))) {
                SC_WARN(SUB, "conn %llu %s: out of memory for a produce frame; closing",
                        (unsigned long long)c->id, c->peer);
                c->processing = 0;
                conn_drain_and_close(c);
                return;
            }
            body = f->body;
        }
        rc = bk__dispatch(c, body, (size_t)size, f);
        bk__frame_unref(f); /* the handler took its own reference if it needs one */
        if (rc) {
            c->processing = 0;
            conn_drain_and_close(c);
            return;
        }
        if (!stolen)
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
    c->processing = 0;
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

/* Reads again (and dispatches what was buffered) once back under the bound. */
static void resume(bk_conn_t *c)
{
    if (c->closing || c->reading || c->draining || c->finishing || c->shard->stopping ||
        over_bound(c))
        return;
    process_input(c); /* frames that arrived while paused */
    if (!c->closing && !over_bound(c))
        start_reading(c);
}

/* Server stop: close once no slot, write or held frame is left. */
static void maybe_finish(bk_conn_t *c)
{
    if (c->finishing && !c->closing && !c->head && c->outstanding == 0 && c->nframes == 0)
        bk__conn_close(c);
}

static void on_write(uv_write_t *req, int status)
{
    wreq_t *wr = req->data;
    bk_slot_t *s = wr->slot;
    bk_conn_t *c = s->conn;
    c->out_bytes -= wr->bytes;
    s->wpending--;
    if (wr->bounce)
        s->bounce_busy = 0;
    sc_free(wr);
    if (s->issued && s->wpending == 0) {
        c->outstanding--;
        slot_free(s);
    }
    if (c->closing)
        return;
    if (status < 0) {
        SC_DEBUG(SUB, "conn %llu %s: write: %s", (unsigned long long)c->id, c->peer,
                 uv_strerror(status));
        bk__conn_close(c);
        return;
    }
    c->last_active_ms = sc_mono_ms();
    bk__conn_flush(c); /* a head slot may wait for the queue to drain (file piece) */
    resume(c);
    maybe_finish(c);
}

/* Hands bufs to uv_write for slot s. 0 or a libuv error. */
static int write_bufs(bk_conn_t *c, bk_slot_t *s, uv_buf_t *bufs, unsigned n, size_t bytes,
                      int bounce)
{
    wreq_t *wr = sc_malloc(sizeof *wr);
    if (!wr)
        return UV_ENOMEM;
    wr->slot = s;
    wr->bytes = bytes;
    wr->bounce = bounce;
    wr->req.data = wr;
    int rc = uv_write(&wr->req, (uv_stream_t *)&c->tcp, bufs, n, on_write);
    if (rc) {
        sc_free(wr);
        return rc;
    }
    c->out_bytes += bytes;
    s->wpending++;
    if (bounce)
        s->bounce_busy = 1;
    return 0;
}

/* Sends what it can of the file piece p of s: sendfile while the socket
 * takes it, else one bounce chunk through libuv. Returns 0 when the piece is
 * fully issued, 1 to wait for a write callback, or an error. */
static int issue_file(bk_conn_t *c, bk_slot_t *s, bk_piece_t *p)
{
    uv_os_fd_t sock;
    if (s->bounce_busy || c->tcp.write_queue_size > 0)
        return 1;
    if (uv_fileno((uv_handle_t *)&c->tcp, &sock))
        return UV_EBADF;
    while (s->pdone < p->len) {
        off_t off = (off_t)(p->off + s->pdone);
        uint64_t want = p->len - s->pdone;
        ssize_t n = sendfile(sock, p->fd, &off, want > (1u << 30) ? (1u << 30) : (size_t)want);
        if (n > 0) {
            s->pdone += (uint64_t)n;
            continue;
        }
        if (n == 0)
            return UV_EIO; /* the file is shorter than the slice: never send a torn response */
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN)
            return -errno;
        /* socket full: one chunk through libuv, which waits for writability */
        size_t chunk = want > BK_BOUNCE_BYTES ? BK_BOUNCE_BYTES : (size_t)want;
        if (!s->bounce && !(s->bounce = sc_malloc(BK_BOUNCE_BYTES)))
            return UV_ENOMEM;
        ssize_t r = pread(p->fd, s->bounce, chunk, (off_t)(p->off + s->pdone));
        if (r <= 0)
            return r < 0 ? -errno : UV_EIO;
        uv_buf_t b = uv_buf_init((char *)s->bounce, (unsigned)r);
        int rc = write_bufs(c, s, &b, 1, (size_t)r, 1);
        if (rc)
            return rc;
        s->pdone += (uint64_t)r;
        if (s->pdone < p->len)
            return 1;
    }
    return 0;
}

/* Issues s's pieces in order. 0 when all are handed over, 1 when waiting
 * for a write callback, or an error. */
static int issue_slot(bk_conn_t *c, bk_slot_t *s)
{
    if (!s->pieces) {
        if (s->ipiece == 0) {
            uv_buf_t b = uv_buf_init((char *)s->buf.data, (unsigned)s->buf.len);
            int rc = write_bufs(c, s, &b, 1, s->buf.len, 0);
            if (rc)
                return rc;
            s->ipiece = 1;
        }
        return 0;
    }
    while (s->ipiece < s->npieces) {
        bk_piece_t *p = &s->pieces[s->ipiece];
        int rc;
        if (p->kind == BK_PIECE_BUF) {
            if (p->len) {
                uv_buf_t b = uv_buf_init((char *)s->buf.data + p->off, (unsigned)p->len);
                if ((rc = write_bufs(c, s, &b, 1, (size_t)p->len, 0)) != 0)
                    return rc;
            }
        } else if ((rc = issue_file(c, s, p)) != 0) {
            return rc;
        } else {
            close(p->fd);
            p->fd = -1;
        }
        s->ipiece++;
        s->pdone = 0;
    }
    return 0;
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

static int piece_push(bk_slot_t *s, int kind, int fd, uint64_t off, uint64_t len)
{
    if (s->npieces == s->pieces_cap) {
        unsigned cap = s->pieces_cap ? s->pieces_cap * 2 : 8;
        bk_piece_t *v = sc_realloc(s->pieces, cap * sizeof *v);
        if (!v)
            return SC_ERR_NO_MEMORY;
        s->pieces = v;
        s->pieces_cap = cap;
    }
    s->pieces[s->npieces++] = (bk_piece_t){.kind = kind, .fd = fd, .off = off, .len = len};
    return 0;
}

/* End of the buffer already covered by pieces. */
static uint64_t buf_covered(const bk_slot_t *s)
{
    for (unsigned i = s->npieces; i-- > 0;)
        if (s->pieces[i].kind == BK_PIECE_BUF)
            return s->pieces[i].off + s->pieces[i].len;
    return 0;
}

int bk__slot_add_file(bk_slot_t *s, int fd, uint64_t pos, uint64_t len)
{
    uint64_t from = buf_covered(s);
    int rc, dfd;
    if ((rc = piece_push(s, BK_PIECE_BUF, -1, from, s->buf.len - from)) != 0)
        return rc;
    if ((dfd = fcntl(fd, F_DUPFD_CLOEXEC, 0)) < 0)
        return -errno;
    if ((rc = piece_push(s, BK_PIECE_FILE, dfd, pos, len)) != 0) {
        close(dfd);
        return rc;
    }
    return 0;
}

uint64_t bk__slot_file_bytes(const bk_slot_t *s)
{
    uint64_t n = 0;
    for (unsigned i = 0; i < s->npieces; i++)
        if (s->pieces[i].kind == BK_PIECE_FILE)
            n += s->pieces[i].len;
    return n;
}

void bk__slot_complete(bk_slot_t *s)
{
    bk_conn_t *c = s->conn;
    /* the tail of the buffer after the last file piece */
    if (s->pieces) {
        uint64_t from = buf_covered(s);
        if (piece_push(s, BK_PIECE_BUF, -1, from, s->buf.len - from)) {
            SC_WARN(SUB, "conn %llu %s: out of memory finishing a response; closing",
                    (unsigned long long)c->id, c->peer);
            s->op = NULL;
            s->detach = NULL;
            bk__conn_close(c);
            return;
        }
    }
    s->op = NULL;
    s->detach = NULL;
    s->ready = 1;
    bk__conn_flush(c);
    maybe_finish(c);
}

void bk__conn_flush(bk_conn_t *c)
{
    while (!c->closing && !c->draining && c->head && c->head->ready) {
        bk_slot_t *s = c->head;
        if (!s->no_response) {
            int rc = issue_slot(c, s);
            if (rc == 1)
                return; /* resumed from on_write */
            if (rc) {
                SC_DEBUG(SUB, "conn %llu %s: write: %s", (unsigned long long)c->id, c->peer,
                         rc < 0 ? uv_strerror(rc) : sc_err_str(rc));
                bk__conn_close(c);
                return;
            }
        }
        c->head = s->next;
        if (!c->head)
            c->tail = NULL;
        s->next = NULL;
        s->issued = 1;
        if (s->wpending == 0) {
            c->outstanding--;
            slot_free(s);
        }
    }
}

void bk__conn_finish(bk_conn_t *c)
{
    if (c->closing)
        return;
    stop_reading(c);
    c->finishing = 1;
    bk__conn_flush(c);
    maybe_finish(c);
}

void bk__shard_idle_sweep(bk_shard_t *sh)
{
    int64_t now = sc_mono_ms();
    int64_t idle = sh->srv->cfg->connections_max_idle_ms;
    for (bk_conn_t *c = sh->conns; c; c = c->next) {
        if (c->closing || ((c->outstanding || c->nframes) && !c->draining))
            continue;
        if (now - c->last_active_ms >= idle) {
            SC_INFO(SUB, "conn %llu %s idle for %lld ms (connections.max.idle.ms); closing",
                    (unsigned long long)c->id, c->peer, (long long)(now - c->last_active_ms));
            bk__conn_close(c);
        }
    }
}
