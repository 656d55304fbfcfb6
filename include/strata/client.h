/*
 * strata/client.h -- libstrata, a C client for any Kafka-protocol broker
 * (Strata or Apache Kafka): producer, consumer and admin.
 *
 * ---- Handles ---------------------------------------------------------------
 *
 * One opaque handle per role: strata_producer_t, strata_consumer_t,
 * strata_admin_t. Each is made from a strata_conf_t (copied: the caller keeps
 * and frees its conf) and owns its own connections to the cluster and its own
 * I/O thread. A role-typed handle makes a wrong call a compile error (no
 * "commit on a producer") and lets each role keep only the state it needs; an
 * application that needs two roles makes two handles (two connection sets,
 * like the Java client).
 *
 * ---- Threading ---------------------------------------------------------------
 *
 * Every handle starts one background thread (its event loop: non-blocking
 * sockets + poll(2)) in _new and joins it in _free. All network I/O happens on
 * that thread. Every public function may be called from any application
 * thread, concurrently, unless its comment says otherwise; calls on one handle
 * are serialised by the handle's internal lock, which is never held while an
 * application callback runs.
 *
 * Callbacks (delivery, commit, rebalance) run on the handle's I/O thread.
 * A callback must return quickly, must not block, and must not call the
 * _flush, _close or _free of its own handle (they wait for that thread:
 * deadlock; they return STRATA_ERR_DEADLOCK when they detect it). It may call
 * strata_produce and every accessor.
 *
 * ---- Ownership ---------------------------------------------------------------
 *
 * 1. _new → the caller owns the result → _free. _free(NULL) is a no-op.
 * 2. Pointer arguments are borrowed for the duration of the call unless the
 *    comment says otherwise: strata_produce copies topic, key, value and
 *    headers before it returns, so the caller may reuse its buffers at once.
 * 3. Pointers handed to a callback (the strata_message_t of a delivery report
 *    and everything it points to) are valid until the callback returns.
 * 4. Messages returned by strata_consumer_poll and result objects returned by
 *    admin calls belong to the caller and are released with the matching
 *    _free (strata_message_free, strata_metadata_free, ...).
 * 5. Out-parameters are written only on success.
 *
 * ---- Errors -------------------------------------------------------------------
 *
 * strata_err_t is the Strata tree's one error type: 0 is OK; positive values
 * are Kafka wire error codes exactly as the broker sent them; -1 ... -4095 are
 * -errno; values <= -5000 are local codes. strata_err_name / strata_err_str
 * give a name and a message for any value.
 *
 * ---- Configuration ----------------------------------------------------------
 *
 * Keys are named as librdkafka names them (bootstrap.servers, linger.ms,
 * batch.size, compression.type, acks, enable.idempotence,
 * queue.buffering.max.kbytes, group.id, auto.offset.reset, ...); docs/client.md
 * lists every key with its default. An unknown key, or a value that does not
 * parse or is out of range, is an error that names the key.
 */
#ifndef STRATA_CLIENT_H
#define STRATA_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- errors ------------------------------------------------------------------ */

typedef int strata_err_t;

/* The values are those of the tree-wide sc_err_t (libstrata checks at build
 * time that they agree). Any Kafka wire code may be returned even if it has
 * no name here. */
enum {
    STRATA_OK = 0,
    /* Kafka wire codes (positive) */
    STRATA_ERR_OFFSET_OUT_OF_RANGE = 1,
    STRATA_ERR_CORRUPT_MESSAGE = 2,
    STRATA_ERR_UNKNOWN_TOPIC_OR_PARTITION = 3,
    STRATA_ERR_LEADER_NOT_AVAILABLE = 5,
    STRATA_ERR_NOT_LEADER_OR_FOLLOWER = 6,
    STRATA_ERR_REQUEST_TIMED_OUT = 7,
    STRATA_ERR_MESSAGE_TOO_LARGE = 10,
    STRATA_ERR_NETWORK_EXCEPTION = 13,
    STRATA_ERR_COORDINATOR_NOT_AVAILABLE = 15,
    STRATA_ERR_NOT_COORDINATOR = 16,
    STRATA_ERR_INVALID_TOPIC_EXCEPTION = 17,
    STRATA_ERR_NOT_ENOUGH_REPLICAS = 19,
    STRATA_ERR_REBALANCE_IN_PROGRESS = 27,
    STRATA_ERR_UNSUPPORTED_VERSION = 35,
    STRATA_ERR_TOPIC_ALREADY_EXISTS = 36,
    STRATA_ERR_INVALID_CONFIG = 40,
    STRATA_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER = 45,
    STRATA_ERR_INVALID_PRODUCER_EPOCH = 47,
    STRATA_ERR_UNSUPPORTED_COMPRESSION_TYPE = 76,
    /* -errno values that libstrata itself returns (Linux numbering) */
    STRATA_ERR_TIMED_OUT = -110,       /* -ETIMEDOUT: flush / close / a blocking call ran out of time */
    STRATA_ERR_NOT_IMPLEMENTED = -38,  /* -ENOSYS: declared API not implemented yet */
    STRATA_ERR_DEADLOCK = -35,         /* -EDEADLK: a blocking call from a callback of its own handle */
    STRATA_ERR_INVALID_ARG = -22,      /* -EINVAL: NULL handle, bad partition, oversized field */
    STRATA_ERR_CONN_REFUSED = -111,    /* -ECONNREFUSED */
    /* local codes */
    STRATA_ERR_UNKNOWN_SERVER = -5000, /* the broker sent UNKNOWN_SERVER_ERROR (-1 on the wire) */
    STRATA_ERR_BAD_CONFIG = -5002,     /* unknown key or bad value; errstr names the key */
    STRATA_ERR_NOT_FOUND = -5003,
    STRATA_ERR_CLOSED = -5004,         /* the handle was freed before the operation completed */
    STRATA_ERR_BAD_FORMAT = -5006,     /* a malformed response or record batch from the broker */
    STRATA_ERR_NO_MEMORY = -5007,
    STRATA_ERR_QUEUE_FULL = -5008,     /* queue.buffering.max.{kbytes,messages} reached */
    STRATA_ERR_MSG_TIMED_OUT = -5010,  /* delivery report: not acknowledged within message.timeout.ms */
};

/* "NOT_LEADER_OR_FOLLOWER", "ETIMEDOUT", "QUEUE_FULL"-style name (the local
 * code FULL is named "FULL"), "ERR_<n>" when unknown. Static string, any
 * thread. */
const char *strata_err_name(strata_err_t err);
/* A human message. Static string, any thread. */
const char *strata_err_str(strata_err_t err);

/* ---- configuration ---------------------------------------------------------------- */

typedef struct strata_conf strata_conf_t;

/* A configuration with every key at its default. NULL when out of memory.
 * Not thread-safe: one thread builds a conf, then hands it to a _new. */
strata_conf_t *strata_conf_new(void);
void strata_conf_free(strata_conf_t *conf);
/* A deep copy, or NULL when out of memory. */
strata_conf_t *strata_conf_dup(const strata_conf_t *conf);

/* Sets key to value (both copied). Returns 0; STRATA_ERR_BAD_CONFIG for an
 * unknown key or a value that does not parse or is out of range, with a
 * message naming the key written to errstr (NUL-terminated, truncated to
 * errstr_size; errstr may be NULL); STRATA_ERR_NO_MEMORY. On error conf is
 * unchanged. */
strata_err_t strata_conf_set(strata_conf_t *conf, const char *key, const char *value,
                             char *errstr, size_t errstr_size);

/* Copies the current value of key (defaults included) as text into out
 * (NUL-terminated). *out_size is in: size of out, out: bytes needed including
 * the NUL. Returns 0, STRATA_ERR_NOT_FOUND for an unknown key, or
 * STRATA_ERR_INVALID_ARG when out is too small (with *out_size set). */
strata_err_t strata_conf_get(const strata_conf_t *conf, const char *key, char *out,
                             size_t *out_size);

/* ---- records ------------------------------------------------------------------------ */

#define STRATA_PARTITION_ANY (-1) /* let the partitioner choose */
#define STRATA_OFFSET_BEGINNING (-2)
#define STRATA_OFFSET_END (-1)
#define STRATA_OFFSET_STORED (-1000) /* the group's committed offset, else auto.offset.reset */
#define STRATA_OFFSET_INVALID (-1001)

/* One record header. key is not NUL-terminated (key_len bytes, UTF-8);
 * value NULL = null header value. */
typedef struct {
    const char *key;
    size_t key_len;
    const void *value;
    size_t value_len;
} strata_header_t;

/* A record as the application hands it to strata_produce. key NULL = null
 * key; value NULL = null value (a tombstone). timestamp 0 = now (CreateTime,
 * ms since the epoch). */
typedef struct {
    const char *topic;
    int32_t partition; /* STRATA_PARTITION_ANY or 0..N-1 */
    const void *key;
    size_t key_len;
    const void *value;
    size_t value_len;
    const strata_header_t *headers;
    size_t header_count;
    int64_t timestamp;
} strata_record_t;

/* A record as libstrata hands it back: a delivery report (offset assigned by
 * the broker, err = outcome) or a consumed record (err = 0, or a partition
 * error such as OFFSET_OUT_OF_RANGE with no payload). */
typedef struct {
    strata_err_t err;
    const char *topic;
    int32_t partition;
    int64_t offset;    /* -1 when not known (failed delivery, acks=0) */
    int64_t timestamp; /* ms since the epoch */
    const void *key;   /* NULL = null key */
    size_t key_len;
    const void *value; /* NULL = null value */
    size_t value_len;
    const strata_header_t *headers;
    size_t header_count;
    void *opaque; /* producer: the opaque given to strata_produce; consumer: NULL */
} strata_message_t;

/* ---- producer ------------------------------------------------------------------------ */

typedef struct strata_producer strata_producer_t;

/* Called once per produced record, on the producer's I/O thread (or, for
 * records still queued at strata_producer_free, on the thread calling it
 * with err STRATA_ERR_CLOSED). msg and everything it points to are valid until
 * the callback returns. Records are reported in produce order per partition
 * (without idempotence, with max.in.flight > 1, a retried batch can be
 * reported -- and stored -- after a later one, as with any Kafka client). */
typedef void (*strata_delivery_cb)(strata_producer_t *p, const strata_message_t *msg,
                                   void *cb_arg);

/* Creates a producer and starts its I/O thread. conf is copied (NULL = all
 * defaults; bootstrap.servers is required). dr_cb may be NULL. Connecting is
 * asynchronous: an unreachable cluster shows up as delivery errors, not here.
 * Returns 0 and *out; STRATA_ERR_BAD_CONFIG (errstr says why),
 * STRATA_ERR_NO_MEMORY, or -errno when the thread cannot start. */
strata_err_t strata_producer_new(const strata_conf_t *conf, strata_delivery_cb dr_cb,
                                 void *cb_arg, strata_producer_t **out, char *errstr,
                                 size_t errstr_size);

/* Queues one record (copied) and returns without waiting for the network;
 * the outcome arrives through the delivery callback with opaque. The
 * partition is rec->partition, or for STRATA_PARTITION_ANY the Java client's
 * default: murmur2 of the key for keyed records; records without a key stick
 * to one random partition per topic for sticky.partitioning.linger.ms, then
 * move on. Batching follows linger.ms / batch.size.
 * Returns 0 (exactly one delivery callback will follow); STRATA_ERR_QUEUE_FULL
 * when queue.buffering.max.kbytes / .messages would be exceeded (nothing
 * queued: call again after deliveries, or flush); STRATA_ERR_MESSAGE_TOO_LARGE
 * when the record alone exceeds message.max.bytes; STRATA_ERR_INVALID_ARG;
 * STRATA_ERR_NO_MEMORY; STRATA_ERR_CLOSED while the producer is being freed;
 * or the producer's fatal error (e.g. INVALID_PRODUCER_EPOCH) once it has
 * one. No callback follows a non-zero return. */
strata_err_t strata_produce(strata_producer_t *p, const strata_record_t *rec, void *opaque);

/* Sends every queued record now (linger ignored) and waits until each has had
 * its delivery callback, or timeout_ms passed (-1 = forever). Returns 0,
 * STRATA_ERR_TIMED_OUT, or STRATA_ERR_DEADLOCK when called from a callback. */
strata_err_t strata_producer_flush(strata_producer_t *p, int timeout_ms);

/* Records queued or in flight (not yet reported). */
size_t strata_producer_outstanding(strata_producer_t *p);

/* Stops the I/O thread, closes the connections, reports every unfinished
 * record with STRATA_ERR_CLOSED (on the calling thread) and frees p. Does not
 * flush: call strata_producer_flush first to deliver what is queued. */
void strata_producer_free(strata_producer_t *p);

/* The partition the default partitioner picks for a keyed record: Java's
 * Utils.toPositive(Utils.murmur2(key)) % partition_count, which is also
 * librdkafka's "murmur2_random" and kafka-python's DefaultPartitioner.
 * partition_count must be > 0. Pure, any thread. */
int32_t strata_partition_murmur2(const void *key, size_t key_len, int32_t partition_count);
/* Java's Utils.murmur2 (seed 0x9747b28c) as an unsigned 32-bit value. */
uint32_t strata_murmur2(const void *key, size_t key_len);

/* ---- consumer ------------------------------------------------------------------------ */

typedef struct strata_consumer strata_consumer_t;

typedef struct {
    const char *topic;
    int32_t partition;
    int64_t offset;   /* an offset, or STRATA_OFFSET_BEGINNING / _END / _STORED */
    strata_err_t err; /* per-partition outcome in results */
} strata_topic_partition_t;

/* Rebalance events for subscribe (group membership). The protocol is eager:
 * every rebalance revokes the whole assignment, then assigns the new one. */
typedef enum {
    /* tps are now ours. They are already in the assignment when the callback
     * runs (seek / position work on them); fetching starts when it returns, at
     * each partition's committed offset (else auto.offset.reset) unless the
     * callback seeked it. Each tps[i].offset is STRATA_OFFSET_STORED. */
    STRATA_REBALANCE_ASSIGN = 1,
    /* tps are being taken away: still assigned while the callback runs
     * (positions readable), removed when it returns, before the JoinGroup is
     * sent. With enable.auto.commit their positions are already queued for
     * commit; otherwise commit them here with strata_consumer_commit_async
     * (the sync commit would deadlock: STRATA_ERR_DEADLOCK). Also called when
     * the member was fenced (its commits would fail), its session timed out
     * or it left because of max.poll.interval.ms, and at close / unsubscribe. */
    STRATA_REBALANCE_REVOKE = 2,
} strata_rebalance_t;

/* Called on the consumer's I/O thread (never from strata_consumer_poll)
 * during a rebalance; tps is valid until the callback returns. No heartbeat
 * is sent while it runs: return well within session.timeout.ms. */
typedef void (*strata_rebalance_cb)(strata_consumer_t *c, strata_rebalance_t event,
                                    const strata_topic_partition_t *tps, size_t count,
                                    void *cb_arg);

/* Called on the consumer's I/O thread when an async commit completes (for a
 * commit still unfinished at strata_consumer_free: on the thread calling it,
 * err STRATA_ERR_CLOSED). err is the first error (0 = all committed);
 * offsets[i].err each partition's; offsets valid until the callback returns. */
typedef void (*strata_commit_cb)(strata_consumer_t *c, strata_err_t err,
                                 const strata_topic_partition_t *offsets, size_t count,
                                 void *cb_arg);

/* Creates a consumer (conf copied; group.id needed for subscribe and commit;
 * with group.id a STRATA_OFFSET_STORED start in assign mode is the group's
 * committed offset). Returns 0 and *out, STRATA_ERR_BAD_CONFIG,
 * STRATA_ERR_NO_MEMORY. */
strata_err_t strata_consumer_new(const strata_conf_t *conf, strata_consumer_t **out,
                                 char *errstr, size_t errstr_size);

/* Consumes exactly these partitions (replacing any previous assignment), no
 * group membership. Each tps[i].offset says where to start. Returns 0,
 * STRATA_ERR_INVALID_ARG (mixing with subscribe), STRATA_ERR_NO_MEMORY. */
strata_err_t strata_consumer_assign(strata_consumer_t *c, const strata_topic_partition_t *tps,
                                    size_t count);

/* Joins group.id and consumes the partitions the group assigns among these
 * topics (classic group protocol, protocol type "consumer"; the assignors of
 * partition.assignment.strategy in preference order: "range", "roundrobin",
 * or the Java class names of the two; the leader runs the one the group
 * chose, with Java's semantics). Membership runs on the I/O thread:
 * heartbeats every heartbeat.interval.ms, rejoins on REBALANCE_IN_PROGRESS /
 * ILLEGAL_GENERATION / UNKNOWN_MEMBER_ID, finds the coordinator again on
 * NOT_COORDINATOR / COORDINATOR_NOT_AVAILABLE, and revokes and rejoins when
 * no heartbeat was answered for session.timeout.ms. When the application does not
 * call strata_consumer_poll for max.poll.interval.ms the member leaves the
 * group (revoke callback); its next poll rejoins. A group-level failure that
 * retrying cannot fix (INCONSISTENT_GROUP_PROTOCOL, INVALID_SESSION_TIMEOUT,
 * FENCED_INSTANCE_ID, ...) comes out of poll as a message with that err,
 * topic "" and partition -1; the member stops. Calling it again while
 * subscribed replaces the topics and rejoins. rebalance_cb may be NULL.
 * Returns 0 (joining happens in the background), STRATA_ERR_INVALID_ARG (no
 * group.id, an empty or bad topic name, or mixing with assign),
 * STRATA_ERR_BAD_CONFIG (an assignor libstrata does not implement),
 * STRATA_ERR_CLOSED (after close), STRATA_ERR_NO_MEMORY. */
strata_err_t strata_consumer_subscribe(strata_consumer_t *c, const char *const *topics,
                                       size_t count, strata_rebalance_cb rebalance_cb,
                                       void *cb_arg);
/* Leaves the group as close does (revoke callback, final auto-commit,
 * LeaveGroup unless static) and stops consuming; assign or subscribe may
 * follow. Waits up to request.timeout.ms. Returns 0, STRATA_ERR_TIMED_OUT
 * (left locally anyway), STRATA_ERR_DEADLOCK from a callback. */
strata_err_t strata_consumer_unsubscribe(strata_consumer_t *c);

/* Waits up to timeout_ms (-1 = forever, 0 = no wait) for the next record.
 * Returns 0 with *out = a message the caller owns (strata_message_free) or
 * NULL when the time ran out; a partition-level problem comes as a message with
 * err set (no payload). auto.offset.reset decides what OFFSET_OUT_OF_RANGE
 * does. Any thread, but one poller at a time. */
strata_err_t strata_consumer_poll(strata_consumer_t *c, int timeout_ms, strata_message_t **out);
void strata_message_free(strata_message_t *msg);

/* Moves a partition's fetch position (offset or _BEGINNING / _END). Records
 * already buffered for it are dropped. Returns 0, STRATA_ERR_NOT_FOUND (not
 * assigned). */
strata_err_t strata_consumer_seek(strata_consumer_t *c, const char *topic, int32_t partition,
                                  int64_t offset);

/* The partition's position: the offset of the next record strata_consumer_poll
 * will return (last returned + 1, or the start offset), written to *offset;
 * STRATA_OFFSET_INVALID while a logical start (_BEGINNING / _END /
 * auto.offset.reset) is still being resolved. Returns 0,
 * STRATA_ERR_NOT_FOUND (not assigned), STRATA_ERR_INVALID_ARG. */
strata_err_t strata_consumer_position(strata_consumer_t *c, const char *topic,
                                      int32_t partition, int64_t *offset);

/* Commits offsets (the next offset to read, as Kafka defines it: last
 * processed + 1) for group.id and waits for the coordinator's answer.
 * offsets NULL = the current positions (strata_consumer_position) of every
 * assigned partition whose position is known; nothing to commit returns 0.
 * The commit carries the member's current generation and member id (-1 / ""
 * in assign mode), so a member that was fenced or left the group gets the
 * coordinator's ILLEGAL_GENERATION (22) / UNKNOWN_MEMBER_ID (25) /
 * REBALANCE_IN_PROGRESS (27) back (a member that was still stable then
 * rejoins; one that left for max.poll.interval.ms rejoins at its next poll).
 * Coordinator moves are
 * retried within timeout_ms. Per-partition errors are written to
 * offsets[i].err. timeout_ms -1 = request.timeout.ms. Returns 0, the first
 * error, STRATA_ERR_TIMED_OUT, STRATA_ERR_INVALID_ARG (no group.id, an
 * offset < 0), STRATA_ERR_CLOSED, STRATA_ERR_DEADLOCK from a callback. */
strata_err_t strata_consumer_commit(strata_consumer_t *c, strata_topic_partition_t *offsets,
                                    size_t count, int timeout_ms);
/* Same, without waiting: cb (may be NULL) reports the outcome once, on the I/O
 * thread (nothing to commit: err 0, count 0). offsets copied. May be called
 * from any callback. Commits are sent in call order, before any later
 * JoinGroup or LeaveGroup of this member. */
strata_err_t strata_consumer_commit_async(strata_consumer_t *c,
                                          const strata_topic_partition_t *offsets, size_t count,
                                          strata_commit_cb cb, void *cb_arg);

/* Leaves the group and waits up to timeout_ms (-1 = forever): the revoke
 * callback, then the final auto-commit of the positions when
 * enable.auto.commit, every queued commit answered, then LeaveGroup -- except
 * for a static member (group.instance.id set), which like Kafka's sends no
 * LeaveGroup: the coordinator keeps its partitions until session.timeout.ms,
 * so a restart with the same group.instance.id gets them back. In assign mode
 * it waits for queued commits. Afterwards poll returns nothing and
 * subscribe / commit return STRATA_ERR_CLOSED. Returns 0,
 * STRATA_ERR_TIMED_OUT (the member is out locally anyway),
 * STRATA_ERR_DEADLOCK from a callback. strata_consumer_free calls it (with
 * request.timeout.ms) when it was not called. */
strata_err_t strata_consumer_close(strata_consumer_t *c, int timeout_ms);
void strata_consumer_free(strata_consumer_t *c);

/* ---- admin ------------------------------------------------------------------------------ */

typedef struct strata_admin strata_admin_t;

typedef struct {
    const char *name;
    const char *value; /* NULL = delete / default */
} strata_config_entry_t;

typedef struct {
    const char *name;
    int32_t num_partitions;     /* -1 = broker default */
    int16_t replication_factor; /* -1 = broker default */
    const strata_config_entry_t *configs;
    size_t config_count;
} strata_new_topic_t;

/* Cluster metadata, owned by the caller (strata_metadata_free). */
typedef struct {
    int32_t id;
    int32_t leader; /* -1 none */
    const int32_t *replicas;
    size_t replica_count;
    const int32_t *isr;
    size_t isr_count;
    strata_err_t err;
} strata_partition_metadata_t;

typedef struct {
    const char *name;
    strata_err_t err;
    int is_internal;
    const strata_partition_metadata_t *partitions;
    size_t partition_count;
} strata_topic_metadata_t;

typedef struct {
    int32_t node_id;
    const char *host;
    int32_t port;
} strata_broker_metadata_t;

typedef struct {
    const char *cluster_id; /* may be NULL */
    int32_t controller_id;
    const strata_broker_metadata_t *brokers;
    size_t broker_count;
    const strata_topic_metadata_t *topics;
    size_t topic_count;
} strata_metadata_t;

typedef enum {
    STRATA_RESOURCE_TOPIC = 2,
    STRATA_RESOURCE_BROKER = 4,
} strata_resource_type_t;

/* A config resource: input to describe/alter, output of describe (owned by the
 * caller then: strata_config_resources_free). */
typedef struct {
    strata_resource_type_t type;
    const char *name;
    const strata_config_entry_t *entries;
    size_t entry_count;
    strata_err_t err;
} strata_config_resource_t;

typedef struct {
    const char *group_id;
    const char *protocol_type; /* "consumer" */
    const char *state;         /* describe only: "Stable", "Empty", ... */
    size_t member_count;       /* describe only */
    strata_err_t err;
} strata_group_info_t;

/* Creates an admin client (conf copied). Returns 0 and *out,
 * STRATA_ERR_BAD_CONFIG, STRATA_ERR_NO_MEMORY. Every admin call below blocks
 * the calling thread up to timeout_ms (-1 = request.timeout.ms) and returns
 * STRATA_ERR_TIMED_OUT when it runs out; per-item outcomes go to results[i]
 * (caller's array of count) and the return value is 0 when the request itself
 * succeeded. */
strata_err_t strata_admin_new(const strata_conf_t *conf, strata_admin_t **out, char *errstr,
                              size_t errstr_size);
void strata_admin_free(strata_admin_t *a);

strata_err_t strata_admin_create_topics(strata_admin_t *a, const strata_new_topic_t *topics,
                                        size_t count, int timeout_ms, strata_err_t *results);
strata_err_t strata_admin_delete_topics(strata_admin_t *a, const char *const *names,
                                        size_t count, int timeout_ms, strata_err_t *results);
/* names NULL / count 0 = every topic (list); otherwise describe these. */
strata_err_t strata_admin_describe_topics(strata_admin_t *a, const char *const *names,
                                          size_t count, int timeout_ms,
                                          strata_metadata_t **out);
void strata_metadata_free(strata_metadata_t *md);

/* resources[i].entries: names to describe (NULL/0 = all). *out: count
 * described resources, caller frees with strata_config_resources_free. */
strata_err_t strata_admin_describe_configs(strata_admin_t *a,
                                           const strata_config_resource_t *resources,
                                           size_t count, int timeout_ms,
                                           strata_config_resource_t **out);
/* Replaces each resource's configs with entries (Kafka AlterConfigs
 * semantics: unnamed keys return to defaults). */
strata_err_t strata_admin_alter_configs(strata_admin_t *a,
                                        const strata_config_resource_t *resources, size_t count,
                                        int timeout_ms, strata_err_t *results);
void strata_config_resources_free(strata_config_resource_t *res, size_t count);

/* *out: *count groups, caller frees with strata_group_infos_free. */
strata_err_t strata_admin_list_groups(strata_admin_t *a, int timeout_ms,
                                      strata_group_info_t **out, size_t *count);
strata_err_t strata_admin_describe_groups(strata_admin_t *a, const char *const *group_ids,
                                          size_t count, int timeout_ms,
                                          strata_group_info_t **out);
void strata_group_infos_free(strata_group_info_t *groups, size_t count);

/* ---- admin: config details, groups in depth, offsets -------------------------------------
 *
 * Everything below follows the admin rules above: blocking, timeout_ms -1 =
 * request.timeout.ms, STRATA_ERR_TIMED_OUT when time runs out, results
 * allocated by libstrata are owned by the caller and released with the _free
 * named next to the call (each frees the whole tree: every string and array
 * reachable from the result). */

/* Where a config value comes from (DescribeConfigs v1+ ConfigSource). */
typedef enum {
    STRATA_CONFIG_SOURCE_UNKNOWN = 0,
    STRATA_CONFIG_SOURCE_TOPIC = 1,          /* DYNAMIC_TOPIC_CONFIG: a topic override */
    STRATA_CONFIG_SOURCE_DYNAMIC_BROKER = 2,
    STRATA_CONFIG_SOURCE_DYNAMIC_DEFAULT_BROKER = 3,
    STRATA_CONFIG_SOURCE_STATIC_BROKER = 4,  /* server.properties */
    STRATA_CONFIG_SOURCE_DEFAULT = 5,
} strata_config_source_t;

typedef struct {
    const char *name;
    const char *value; /* NULL: null (sensitive or not set) */
    strata_config_source_t source; /* v0 brokers: DEFAULT when is_default, else UNKNOWN */
    int read_only;
    int sensitive;
} strata_config_info_t;

typedef struct {
    strata_resource_type_t type;
    const char *name;
    strata_err_t err;
    const char *err_msg; /* the broker's error_message, NULL when none */
    const strata_config_info_t *configs;
    size_t config_count;
} strata_config_description_t;

/* Describes one resource. keys NULL / key_count 0 = every config. On return 0
 * *out is set (caller frees with strata_config_description_free) and
 * (*out)->err carries the resource-level outcome. */
strata_err_t strata_admin_describe_config(strata_admin_t *a, strata_resource_type_t type,
                                          const char *name, const char *const *keys,
                                          size_t key_count, int timeout_ms,
                                          strata_config_description_t **out);
void strata_config_description_free(strata_config_description_t *d);

/* The broker's error_message for results[i] of the last create_topics,
 * delete_topics or alter_configs call on this handle, or NULL when it sent
 * none. The string belongs to the handle and stays valid until the next admin
 * call on it; meaningful only when one thread uses the handle. */
const char *strata_admin_error_message(strata_admin_t *a, size_t i);

/* A member's assigned partitions of one topic. */
typedef struct {
    const char *topic;
    const int32_t *partitions;
    size_t partition_count;
} strata_topic_partitions_t;

typedef struct {
    const char *member_id;
    const char *group_instance_id; /* NULL: dynamic member (DescribeGroups < v4 always NULL) */
    const char *client_id;
    const char *client_host;
    /* The ConsumerProtocol assignment decoded (protocol_type "consumer");
     * empty for other protocol types or a member not yet assigned. */
    const strata_topic_partitions_t *assignment;
    size_t assignment_count;
} strata_group_member_t;

typedef struct {
    const char *group_id;
    strata_err_t err;
    const char *state;         /* "Stable", "Empty", "PreparingRebalance", "Dead", ... */
    const char *protocol_type; /* "consumer", "" for a group with only offsets */
    const char *protocol;      /* the chosen assignor ("range"), "" when none */
    int32_t coordinator_id;    /* node id of the group's coordinator */
    const strata_group_member_t *members;
    size_t member_count;
} strata_group_description_t;

/* FindCoordinator + DescribeGroups for one group. Returns 0 with *out
 * (caller frees with strata_group_description_free; (*out)->err carries the
 * group-level error), or the error that stopped the call (e.g.
 * COORDINATOR_NOT_AVAILABLE). An unknown group is described by Kafka as
 * state "Dead" with no members. */
strata_err_t strata_admin_describe_group(strata_admin_t *a, const char *group_id, int timeout_ms,
                                         strata_group_description_t **out);
void strata_group_description_free(strata_group_description_t *d);

/* A group's committed offsets (OffsetFetch at its coordinator). topics NULL /
 * topic_count 0 = every partition the group has committed. *out: *count
 * entries {topic, partition, offset (committed, -1 none), err}; the caller
 * frees them with strata_topic_partition_list_free. */
strata_err_t strata_admin_list_group_offsets(strata_admin_t *a, const char *group_id,
                                             const char *const *topics, size_t topic_count,
                                             int timeout_ms, strata_topic_partition_t **out,
                                             size_t *count);
/* Frees a list returned by libstrata (the topic strings and the array). */
void strata_topic_partition_list_free(strata_topic_partition_t *tps, size_t count);

/* ListOffsets at each partition's leader. In: tps[i].offset =
 * STRATA_OFFSET_BEGINNING (log start), STRATA_OFFSET_END (log end / high
 * watermark) or a timestamp in ms >= 0 (the first offset whose record
 * timestamp is >= it). Out, in place: tps[i].offset = the offset (-1 when no
 * record has such a timestamp) and tps[i].err. The array is the caller's.
 * Returns 0 when every partition was answered (check each err), or the error
 * that stopped the call. */
strata_err_t strata_admin_list_offsets(strata_admin_t *a, strata_topic_partition_t *tps,
                                       size_t count, int timeout_ms);

/* Sets a group's committed offsets (OffsetCommit with generation -1 and an
 * empty member id, at the coordinator). Kafka accepts this only for a group
 * with no active members: otherwise every partition gets UNKNOWN_MEMBER_ID
 * (returned). Per-partition outcomes go to offsets[i].err; returns 0 or the
 * first error. */
strata_err_t strata_admin_alter_group_offsets(strata_admin_t *a, const char *group_id,
                                              strata_topic_partition_t *offsets, size_t count,
                                              int timeout_ms);

/* ---- version ------------------------------------------------------------------------------ */

/* "0.1.0". Static string. */
const char *strata_version(void);

#ifdef __cplusplus
}
#endif

#endif
