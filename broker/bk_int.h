/*
 * bk_int -- structures shared by the broker's own files (server, connection,
 * request handlers, storage wiring). Not an API: nothing outside broker/
 * includes this.
 *
 * Where things run (design.md §3):
 *   - bk_shard_t: one thread, one uv loop. It owns its connections, its idle
 *     sweep timer, its io backend (st_io, watched through its eventfd by a
 *     uv_poll), the partitions assigned to it (bk_part_t: the st_log, the
 *     dirty flag for group commit, the parked fetches waiting on it) and the
 *     timers that run retention / flush.ms (st_log_tick). A partition's log
 *     is touched only on its shard's thread; handlers check part->shard
 *     before touching it. One shard runs today, so every partition is
 *     assigned to shard 0 and a partition owned elsewhere is answered with
 *     NOT_LEADER_OR_FOLLOWER rather than forwarded.
 *   - Per loop turn on a shard: reads dispatch requests (Produce appends
 *     queue writes); the uv_check handle then commits every log appended to
 *     in that turn (one fdatasync per log per turn: group commit); io
 *     completions arrive through the io eventfd, run the append callbacks
 *     (answering acks) and advance high watermarks, which wakes parked
 *     fetches.
 *   - Listeners, the topic registry, the log manager (its map) and the
 *     partition map are on shard 0 (the control thread). With several
 *     shards, the accept callback will pick a shard, hand the accepted fd to
 *     it through that shard's inbox (a queue + uv_async_send) and the target
 *     shard will uv_tcp_open it; requests for a partition owned by another
 *     shard will travel as messages and complete a response slot
 *     asynchronously; the slot queue below keeps responses in request order
 *     regardless of completion order.
 */
#ifndef BK_INT_H
#define BK_INT_H

#include "bk_config.h"
#include "bk_server.h"
#include "bk_topics.h"
#include "sc_buf.h"
#include "sc_kafka.h"
#include "st_io.h"
#include "st_log.h"
#include "st_log_manager.h"

#include <stdint.h>
#include <uv.h>

typedef struct bk_conn bk_conn_t;
typedef struct bk_shard bk_shard_t;
typedef struct bk_part bk_part_t;
typedef struct bk_fetch bk_fetch_t;
typedef struct bk_slot bk_slot_t;
typedef struct bk_coord bk_coord_t;
typedef struct bk_cluster bk_cluster_t;
typedef struct bk_follow bk_follow_t;

/* Stop reading a connection while this many response bytes are queued or in
 * flight, or this many requests are outstanding; resume below it. */
#define BK_CONN_OUT_MAX_BYTES (4u << 20)
#define BK_CONN_MAX_INFLIGHT 1024
/* Read buffer granule while no frame size is known yet. */
#define BK_CONN_READ_CHUNK (64u << 10)

/* Produce frames at least this big are taken over from the read buffer
 * (no copy); smaller ones are copied into their own allocation. */
#define BK_FRAME_STEAL_MIN (64u << 10)
/* Bounce chunk for a file piece when the socket is full (see bk_conn.c). */
#define BK_BOUNCE_BYTES (256u << 10)

/* A request frame kept alive after dispatch: a Produce's batches are
 * written by the log straight from it (offsets are set in place), so it lives
 * until the last append callback. Counted against the connection's bound
 * while the connection lives (held_bytes). Shard thread only. */
typedef struct bk_frame {
    struct bk_frame *prev, *next; /* conn->frames */
    bk_conn_t *conn;              /* NULL once the connection closed */
    void *mem;                    /* the allocation (sc_free) */
    uint8_t *body;                /* frame body (after the int32 size) */
    size_t len;
    int refs;
} bk_frame_t;

/* A response is a sequence of pieces written in order: a range of the slot's
 * buffer, or a range of a file sent with sendfile(2). A file piece owns fd
 * (a dup of the segment fd, so retention closing the segment cannot pull it
 * from under the send). */
enum { BK_PIECE_BUF = 0, BK_PIECE_FILE = 1 };
typedef struct {
    int kind;
    int fd;       /* FILE: owned, closed when sent or dropped */
    uint64_t off; /* BUF: offset in slot->buf; FILE: file position */
    uint64_t len;
} bk_piece_t;

/* One request's response, in the connection's FIFO. Owned by the connection
 * until every piece is handed to the socket; then by its writes until their
 * callbacks. A slot whose response is produced later (Produce waiting for
 * durability, a parked Fetch) has op + detach: when the connection closes
 * first, detach(slot) tells the operation to drop its pointer to the slot. */
struct bk_slot {
    struct bk_slot *next;
    bk_conn_t *conn;
    sc_buf_t buf;    /* int32 size + response header + body (minus file pieces) */
    int ready;       /* response complete */
    int no_response; /* acks=0 produce: consume the slot, send nothing */
    bk_piece_t *pieces; /* NULL: the whole buf is the response */
    unsigned npieces, pieces_cap, ipiece; /* ipiece: next piece to issue */
    uint64_t pdone;  /* bytes of pieces[ipiece] issued */
    unsigned wpending; /* uv_writes in flight */
    int issued;      /* every piece handed over; freed when wpending drops to 0 */
    uint8_t *bounce; /* BK_BOUNCE_BYTES, for file bytes the socket refused */
    int bounce_busy;
    void *op;
    void (*detach)(bk_slot_t *s);
};

struct bk_conn {
    uv_tcp_t tcp; /* first: the handle's address is the conn's */
    bk_shard_t *shard;
    int listener;                /* index into srv->listeners */
    bk_conn_t *prev, *next;      /* shard's list */
    sc_buf_t in;                 /* bytes read, not yet consumed */
    bk_slot_t *head, *tail;      /* responses not yet handed to uv_write */
    size_t out_bytes;            /* bytes queued + in flight */
    int outstanding;             /* slots queued + in flight */
    bk_frame_t *frames;          /* frames held by operations (Produce) */
    size_t held_bytes;           /* their bytes */
    int nframes;
    int finishing;               /* server stop: close once everything is sent */
    int processing;              /* inside process_input (no re-entry) */
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

    /* storage owned by this shard (bk_part.c) */
    st_io_t *io;
    uv_poll_t io_poll;       /* io eventfd readable -> st_io_poll */
    uv_check_t commit_check; /* after the poll phase: group commit */
    uv_prepare_t commit_prep; /* before blocking: nothing left uncommitted */
    uv_timer_t tick_timer;   /* st_log_tick: retention, flush.ms, segment.ms */
    uv_timer_t fetch_timer;  /* earliest parked fetch deadline */
    uv_timer_t stop_timer;   /* bounds the graceful stop */
    int storage_handles;     /* the handles above are initialised */
    bk_part_t *parts;        /* partitions owned (list through part->snext) */
    bk_part_t *dirty;        /* appended to this turn, not yet committed */
    bk_fetch_t *parked;      /* fetches waiting for data or their deadline */
    int hw_moved;            /* some high watermark advanced since the last wake */
    int64_t last_retention_ms;
};

typedef struct {
    uv_tcp_t tcp;
    bk_server_t *srv;
    int index;
    int open;
} bk_listen_t;

/* Idempotent producer state of one producer id on one partition
 * (reference.md §6): its epoch and its last BK_PID_BATCHES batches. */
#define BK_PID_BATCHES 5
typedef struct {
    int32_t first_seq, last_seq;
    int64_t base, last; /* offsets */
} bk_pbatch_t;
typedef struct {
    int64_t pid;
    int64_t last_used; /* a counter, for evicting the least recently used */
    int16_t epoch;
    uint8_t n, next;    /* batches cached; ring slot for the next one */
    bk_pbatch_t b[BK_PID_BATCHES];
} bk_pstate_t;
/* Producer ids remembered per partition; the least recently used goes
 * first beyond this (it is then treated as a new producer, as after Kafka's
 * producer.id.expiration.ms). Bounds memory against pid-spraying clients. */
#define BK_PID_MAX 1024
/* At open, producer state is rebuilt from the batch headers of at most this
 * many offsets before the log end. */
#define BK_PID_SCAN_OFFSETS 1000000

/* An answer waiting until p's log has reached an offset (bk__part_wait):
 * embedded in its operation, so queuing it cannot fail. */
typedef struct bk_pwait {
    struct bk_pwait *next;
    int64_t end; /* the log must have reached this offset (exclusive) */
    int written; /* 1: written to the page cache is enough (acks=1); 0: committed */
    void (*done)(void *arg, int16_t err); /* called once: 0, or why not */
    void *arg;
} bk_pwait_t;

/* A partition served by this broker: its log and its owner shard. */
struct bk_part {
    bk_part_t *hnext;   /* server partition map chain */
    bk_part_t *snext;   /* owner shard's list */
    bk_part_t *dnext;   /* owner shard's dirty list */
    int dirty;
    bk_shard_t *shard;  /* the only thread that touches log */
    st_log_t *log;
    int32_t max_message_bytes; /* max.message.bytes */
    int log_append_time;       /* message.timestamp.type=LogAppendTime */
    int64_t flush_ms;          /* flush.ms, for the tick period */
    int32_t partition;
    bk_pstate_t *pids;  /* idempotent producers (bk_produce.c) */
    unsigned npids;
    int64_t pid_clock;
    bk_pwait_t *waits;  /* answers waiting for the log (bk__part_wait) */
    char topic[BK_TOPIC_NAME_MAX + 1];
};

struct bk_server {
    const bk_config_t *cfg;
    bk_topics_t *topics; /* shard 0 */
    st_log_manager_t *logs; /* shard 0; NULL for an offline server */
    bk_part_t **pmap;       /* (topic, partition) -> part; shard 0 */
    unsigned pmap_buckets, pmap_count;
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
    bk_coord_t *coord;    /* group coordinator (bk_group.c); shard 0 */
    struct bk_cleaner *cleaner; /* log cleaner threads + swaps (bk_part.c); shard 0 */
    struct bk_plugins *plugins; /* plugin host + its sink (bk_plugin.c); shard 0 */
    bk_cluster_t *cluster;      /* metadata.store=zookeeper (bk_cluster.c); NULL = single node */
    bk_follow_t *follow;        /* cluster mode: the follower fetcher (bk_follow.c) */
};

/* A request being handled: header decoded, body reader positioned after it. */
typedef struct {
    sc_kreq_hdr_t hdr;
    sc_rd_t body;
    bk_conn_t *conn;     /* NULL from bk_dispatch_frame_for_test */
    bk_server_t *srv;
    bk_slot_t *slot;     /* the response slot (NULL without a connection) */
    bk_frame_t *frame;   /* Produce: the frame, kept alive for the log */
    int async;           /* set by the handler: it completes the slot later */
    int no_response;     /* set by the handler: acks=0, nothing is sent */
    int close_conn;      /* set by the handler: close after earlier responses */
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
int bk__dispatch(bk_conn_t *conn, const uint8_t *body, size_t len, bk_frame_t *frame);

/* bk_admin.c: the admin handlers (CreateTopics, DeleteTopics,
 * CreatePartitions, DescribeConfigs, AlterConfigs, InitProducerId). */
int bk__h_create_topics(bk_req_t *req, sc_kw_t *w);
int bk__h_delete_topics(bk_req_t *req, sc_kw_t *w);
int bk__h_create_partitions(bk_req_t *req, sc_kw_t *w);
int bk__h_describe_configs(bk_req_t *req, sc_kw_t *w);
int bk__h_alter_configs(bk_req_t *req, sc_kw_t *w);
int bk__h_init_producer_id(bk_req_t *req, sc_kw_t *w);

/* Data-path handlers: bk_produce.c, bk_fetch.c. */
int bk__h_produce(bk_req_t *req, sc_kw_t *w);
int bk__h_fetch(bk_req_t *req, sc_kw_t *w);
int bk__h_list_offsets(bk_req_t *req, sc_kw_t *w);
int bk__h_delete_records(bk_req_t *req, sc_kw_t *w);
int bk__h_offset_for_leader_epoch(bk_req_t *req, sc_kw_t *w);
/* bk_fetch.c: re-checks parked fetches after high watermarks moved; answers
 * every parked fetch now (stop). */
void bk__fetch_wake(bk_shard_t *sh);
void bk__fetch_flush_all(bk_shard_t *sh);

/* bk_group.c: the group coordinator (reference.md §7; bk_group_int.h).
 * init: its state, no I/O (offline servers too); start: creates and loads
 * __consumer_offsets and starts the session/rebalance timer on shard 0's
 * loop (after bk__storage_open); stop: answers parked JoinGroup/SyncGroup
 * responses with NOT_COORDINATOR and closes the timer; free: after the loop
 * ran dry (NULL coordinator is a no-op). */
int bk__group_init(bk_server_t *s);
int bk__group_start(bk_server_t *s);
/* The coordinator without __consumer_offsets, log or timer, for the request
 * fuzz harness on an offline server (bk_group_int.h: offline). */
int bk__group_start_offline(bk_server_t *s);
void bk__group_stop(bk_server_t *s);
void bk__group_free(bk_server_t *s);
int bk__h_find_coordinator(bk_req_t *req, sc_kw_t *w);
int bk__h_join_group(bk_req_t *req, sc_kw_t *w);
int bk__h_sync_group(bk_req_t *req, sc_kw_t *w);
int bk__h_heartbeat(bk_req_t *req, sc_kw_t *w);
int bk__h_leave_group(bk_req_t *req, sc_kw_t *w);
int bk__h_list_groups(bk_req_t *req, sc_kw_t *w);
int bk__h_describe_groups(bk_req_t *req, sc_kw_t *w);
/* bk_group_offsets.c */
int bk__h_offset_commit(bk_req_t *req, sc_kw_t *w);
int bk__h_offset_fetch(bk_req_t *req, sc_kw_t *w);
int bk__h_delete_groups(bk_req_t *req, sc_kw_t *w);
int bk__h_offset_delete(bk_req_t *req, sc_kw_t *w);
/* 1 for Kafka's internal topics (__consumer_offsets): hidden from
 * Metadata's all-topics answer, is_internal, not writable by Produce. */
int bk__topic_is_internal(const char *name, size_t len);

/* bk_api.c: the host:port Metadata advertises to connection c (NULL: the
 * first listener as configured). */
void bk__advertised_address(bk_server_t *srv, bk_conn_t *c, char *host, size_t hostlen,
                            int *port);

/* bk_produce.c: rebuilds p's producer state from the tail of its log (at
 * open). Errors are logged; the state is then partial (never wrong). */
void bk__pids_rebuild(bk_part_t *p);

/* bk_part.c: storage wiring. */
/* Opens every log under log.dirs, reconciles with the registry, installs the
 * partition hooks. 0 or an error (logged). */
int bk__storage_open(bk_server_t *s);
/* Closes every log (checkpoints) and the log manager. */
int bk__storage_close(bk_server_t *s);
/* Creates the shard's io backend and its uv handles (poll, check, prepare,
 * timers) on sh->loop. 0 or an error (logged). */
int bk__shard_storage_init(bk_shard_t *sh);
/* Starts the shard's tick timer. */
void bk__shard_storage_start(bk_shard_t *sh);
/* Stop: commits every dirty log, drains the io (running callbacks), closes
 * the shard's storage handles. */
void bk__shard_storage_stop(bk_shard_t *sh);
/* Frees the io backend (after the loop stopped and the logs closed). */
void bk__shard_storage_fini(bk_shard_t *sh);
/* The partition, or NULL. topic need not be NUL-terminated. */
bk_part_t *bk__part_find(const bk_server_t *s, const char *topic, size_t len, int32_t partition);
/* Marks p appended to in this loop turn (group commit at the check phase). */
void bk__part_dirty(bk_part_t *p);
/* 0 when p's log has already reached w->end (its written offset when
 * w->written, else its committed offset: what the flush policy counts as
 * durable); else queues w and returns 1: w->done(w->arg, err) runs exactly
 * once, later, on the owner shard -- err 0 once the log reaches w->end,
 * KAFKA_STORAGE_ERROR when the log fails first, UNKNOWN_TOPIC_OR_PARTITION
 * when the partition is deleted, NOT_LEADER_OR_FOLLOWER when the broker
 * stops. A failed log that has not reached w->end: KAFKA_STORAGE_ERROR
 * (returned, w not queued). */
int bk__part_wait(bk_part_t *p, bk_pwait_t *w);
/* Runs p's waits that are due (reached, or the log failed). bk_part.c calls it
 * from the log's progress callback; bk_produce.c after a failed append. */
void bk__part_waits_check(bk_part_t *p);
/* Recomputes the log config of every partition of topic (after AlterConfigs). */
void bk__topic_reconfigure(bk_server_t *s, const char *topic, size_t len);
/* Kafka error code for a storage error: positive codes as they are,
 * failures of the log / -errno as KAFKA_STORAGE_ERROR. */
int16_t bk__storage_err(int rc);

/* bk_conn.c */
void bk__conn_accept(bk_shard_t *sh, uv_stream_t *listener, int listener_index);
void bk__conn_close(bk_conn_t *c);
/* Server stop: stop reading, send what is ready and what completes, then
 * close once nothing is left. */
void bk__conn_finish(bk_conn_t *c);
/* Completes an async slot: marks it ready and flushes its connection. */
void bk__slot_complete(bk_slot_t *s);
/* Adds a file piece of len bytes at file position pos (dup of fd, owned by
 * the slot) after the bytes written to s->buf so far. 0 or -errno /
 * SC_ERR_NO_MEMORY. */
int bk__slot_add_file(bk_slot_t *s, int fd, uint64_t pos, uint64_t len);
/* Bytes of file pieces in s. */
uint64_t bk__slot_file_bytes(const bk_slot_t *s);
/* Drops a frame reference (NULL is a no-op); the last one frees it and
 * releases its bytes from the connection's bound. */
void bk__frame_unref(bk_frame_t *f);
/* New slot at the tail of c's FIFO, buffer empty. NULL on no memory. */
bk_slot_t *bk__slot_push(bk_conn_t *c);
/* Hands every ready slot at the head of the FIFO to uv_write, in order. */
void bk__conn_flush(bk_conn_t *c);
void bk__shard_idle_sweep(bk_shard_t *sh);

/* bk_cluster.c: cluster mode (metadata.store=zookeeper; docs/replication.md).
 * open: the ZooKeeper session (s->cluster), and s->cluster_id from it when
 * the cluster has one; start: registration, controller, watches (after the
 * listeners are bound); stop: resign + stop refreshing; free: closes the
 * session. All no-ops without s->cluster. */
int bk__cluster_open(bk_server_t *s);
int bk__cluster_start(bk_server_t *s);
void bk__cluster_stop(bk_server_t *s);
void bk__cluster_free(bk_server_t *s);
/* Controlled shutdown without blocking the loop (SIGTERM): 1 when it has
 * started -- the loop keeps serving and then(s) is called once this broker's
 * leadership has moved, or after 10 s; 0 when there is none to run (single
 * node, controlled.shutdown.enable=false, already running: stop now). */
int bk__cluster_shutdown(bk_server_t *s, void (*then)(bk_server_t *s));
struct rp_zk *bk__cluster_zk(bk_server_t *s);
/* The partition's leader as last read (-1: none / unknown). */
int32_t bk__cluster_leader(const bk_server_t *s, const char *topic, size_t len, int32_t p);
/* The leader epoch new batches of the partition are stamped with: the
 * partition state's in cluster mode, 0 on a single node. */
int32_t bk__cluster_leader_epoch(const bk_server_t *s, const char *topic, size_t len, int32_t p);
/* 1 when in cluster mode and this broker does not lead the partition. */
int bk__cluster_not_leader(const bk_server_t *s, const char *topic, size_t len, int32_t p);
/* A follower's Fetch of a partition this broker leads, from offset (its log
 * end): tracked for the ISR (re-admission when caught up, removal after
 * replica.lag.time.max.ms behind). */
void bk__cluster_follower_fetch(bk_server_t *s, const char *topic, size_t len, int32_t p,
                                int32_t replica, int64_t offset);
/* Cluster mode: the log of p made progress (bk_part.c's progress callback):
 * the high watermark becomes min(committed offset, every other ISR member's
 * fetch offset) on a partition this broker leads, the committed offset on
 * others; parked fetches (followers read up to the committed offset) are
 * woken; acks=all produces waiting for the high watermark are answered. */
void bk__cluster_progress(bk_server_t *s, bk_part_t *p);
/* Cluster mode, from an acks=all append's completion (bk_produce.c): 1 when
 * the answer must wait until the high watermark reaches end (then
 * bk__produce_isr_done(arg, err) is called exactly once, later), 0 to answer
 * now. */
int bk__cluster_wait_isr(bk_server_t *s, bk_part_t *p, int64_t end, int64_t deadline_ms,
                         void *arg);
/* bk_produce.c: the ISR wait of one partition's append is over (err 0, or
 * NOT_LEADER_OR_FOLLOWER / REQUEST_TIMED_OUT / NOT_ENOUGH_REPLICAS_AFTER_APPEND). */
void bk__produce_isr_done(void *arg, int16_t err);
/* 1 when in cluster mode and the partition's ISR is smaller than its
 * min.insync.replicas (topic override, else the broker default). */
int bk__cluster_isr_short(const bk_server_t *s, const char *topic, size_t len, int32_t p);
/* Metadata pieces: the live brokers, the controller id, a topic's partitions. */
void bk__cluster_write_brokers(bk_server_t *s, sc_kw_t *w, int v);
int32_t bk__cluster_controller(const bk_server_t *s);
void bk__cluster_write_partitions(bk_server_t *s, sc_kw_t *w, int v, const char *name, size_t len,
                                  int32_t partitions);
/* bk_follow.c: the follower fetcher (a thread; appends on shard 0). start
 * after registration; publish = the partitions to copy now (replaces the
 * set); stop joins the thread (quickly: its waits are sliced); free after
 * the loop ran dry. All no-ops before start. */
typedef struct {
    const char *topic;
    int32_t partition;
    int32_t leader;
    int32_t leader_epoch;
    const char *host;
    int port;
} bk_follow_part_t;
int bk__follow_start(bk_server_t *s);
void bk__follow_publish(bk_server_t *s, const bk_follow_part_t *parts, size_t n);
void bk__follow_stop(bk_server_t *s);
void bk__follow_free(bk_server_t *s);

/* bk_meta.c: reads or creates <dir>/meta.properties; writes the cluster id
 * (22 chars + NUL) to out. When out is non-empty on entry (cluster mode: the
 * id ZooKeeper holds), a new file gets that id and an existing one must
 * match it. 0, -errno or SC_ERR_BAD_CONFIG (logged). */
int bk__meta_load(const char *dir, int32_t node_id, char out[32]);

#endif
