/*
 * bk_int -- structures shared by the broker's own files (server, connection,
 * request handlers). Not an API: nothing outside broker/ includes this.
 *
 * Where things run (design.md §3):
 *   - bk_shard_t: one thread, one uv loop. Owns its connections, its idle
 *     sweep timer and (later) its partitions and io_uring ring.
 *   - Listeners are on shard 0. With several shards, the accept callback will
 *     pick a shard (round robin / least connections), hand the accepted fd to
 *     it through that shard's inbox (a queue + uv_async_send) and the target
 *     shard will uv_tcp_open it; everything after that stays on that shard.
 *   - Requests for a partition owned by another shard will travel as messages
 *     and complete a response slot asynchronously; the slot queue below keeps
 *     responses in request order regardless of completion order.
 */
#ifndef BK_INT_H
#define BK_INT_H

#include "bk_config.h"
#include "bk_server.h"
#include "bk_topics.h"
#include "sc_buf.h"
#include "sc_kafka.h"

#include <stdint.h>
#include <uv.h>

typedef struct bk_conn bk_conn_t;
typedef struct bk_shard bk_shard_t;

/* Stop reading a connection while this many response bytes are queued or in
 * flight, or this many requests are outstanding; resume below it. */
#define BK_CONN_OUT_MAX_BYTES (4u << 20)
#define BK_CONN_MAX_INFLIGHT 1024
/* Read buffer granule while no frame size is known yet. */
#define BK_CONN_READ_CHUNK (64u << 10)

/* One request's response, in the connection's FIFO. Owned by the connection
 * until handed to uv_write; then by the write until its callback. */
typedef struct bk_slot {
    struct bk_slot *next;
    bk_conn_t *conn;
    sc_buf_t buf;    /* int32 size + response header + body */
    int ready;       /* response complete (handlers are synchronous today) */
    int no_response; /* acks=0 produce: consume the slot, send nothing */
    uv_write_t wreq;
} bk_slot_t;

struct bk_conn {
    uv_tcp_t tcp; /* first: the handle's address is the conn's */
    bk_shard_t *shard;
    int listener;                /* index into srv->listeners */
    bk_conn_t *prev, *next;      /* shard's list */
    sc_buf_t in;                 /* bytes read, not yet consumed */
    bk_slot_t *head, *tail;      /* responses not yet handed to uv_write */
    size_t out_bytes;            /* bytes queued + in flight */
    int outstanding;             /* slots queued + in flight */
    int reading;                 /* uv_read_start active */
    int closing;
    int draining;                /* protocol error: send what is ready, then close */
    uv_shutdown_t shut;
    int64_t last_active_ms;
    uint64_t id;
    char peer[64];
};

struct bk_shard {
    int id;
    bk_server_t *srv;
    uv_loop_t loop;
    uv_timer_t idle_timer;
    uv_async_t stop_async;
    bk_conn_t *conns;
    size_t nconns;
    int stopping;
    uv_tcp_t reject; /* spare handle to refuse a socket when out of memory */
    int reject_busy;
};

typedef struct {
    uv_tcp_t tcp;
    bk_server_t *srv;
    int index;
    int open;
} bk_listen_t;

struct bk_server {
    const bk_config_t *cfg;
    bk_topics_t *topics; /* shard 0 */
    bk_shard_t shard0;
    bk_listener_t listeners[BK_LISTENERS_MAX];
    bk_listener_t advertised[BK_LISTENERS_MAX];
    int nlisteners, nadvertised;
    bk_listen_t listen[BK_LISTENERS_MAX];
    uv_signal_t sigterm, sigint;
    char cluster_id[32];
    uint64_t next_conn_id;
    size_t out_max_bytes; /* BK_CONN_OUT_MAX_BYTES */
    int loop_live;        /* shard0.loop initialised and not yet closed */
};

/* A request being handled: header decoded, body reader positioned after it. */
typedef struct {
    sc_kreq_hdr_t hdr;
    sc_rd_t body;
    bk_conn_t *conn;
    bk_server_t *srv;
} bk_req_t;

/* Handler: writes the response body (after the header) into w. Returns 0, or
 * an error that closes the connection (malformed request). */
typedef int (*bk_handler_fn)(bk_req_t *req, sc_kw_t *w);

typedef struct {
    int16_t api_key;
    int16_t min_version, max_version;
    bk_handler_fn fn;
} bk_api_t;

/* bk_api.c: the dispatcher table (only implemented APIs). */
const bk_api_t *bk__api_find(int16_t api_key);
const bk_api_t *bk__api_table(size_t *n);

/* bk_api.c: handles one frame body. Appends a slot to conn (or not, for
 * no-response requests). Returns 0, or non-zero when the connection must be
 * closed (the reason is already logged). */
int bk__dispatch(bk_conn_t *conn, const uint8_t *body, size_t len);

/* bk_admin.c: the admin handlers (CreateTopics, DeleteTopics,
 * CreatePartitions, DescribeConfigs, AlterConfigs, InitProducerId). */
int bk__h_create_topics(bk_req_t *req, sc_kw_t *w);
int bk__h_delete_topics(bk_req_t *req, sc_kw_t *w);
int bk__h_create_partitions(bk_req_t *req, sc_kw_t *w);
int bk__h_describe_configs(bk_req_t *req, sc_kw_t *w);
int bk__h_alter_configs(bk_req_t *req, sc_kw_t *w);
int bk__h_init_producer_id(bk_req_t *req, sc_kw_t *w);

/* bk_conn.c */
void bk__conn_accept(bk_shard_t *sh, uv_stream_t *listener, int listener_index);
void bk__conn_close(bk_conn_t *c);
/* New slot at the tail of c's FIFO, buffer empty. NULL on no memory. */
bk_slot_t *bk__slot_push(bk_conn_t *c);
/* Hands every ready slot at the head of the FIFO to uv_write, in order. */
void bk__conn_flush(bk_conn_t *c);
void bk__shard_idle_sweep(bk_shard_t *sh);

/* bk_meta.c: reads or creates <dir>/meta.properties; writes the cluster id
 * (22 chars + NUL) to out. 0, -errno or SC_ERR_BAD_CONFIG (logged). */
int bk__meta_load(const char *dir, int32_t node_id, char out[32]);

#endif
