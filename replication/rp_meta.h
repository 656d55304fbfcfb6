/*
 * rp_meta -- the cluster metadata store (design.md §6): the cluster id, the
 * topics (name, topic id, partition count, replication factor, per-topic
 * config overrides) and the producer-id counter, behind one interface with
 * pluggable backends. Backends:
 *   local      one protobuf file in a directory, rewritten atomically on every
 *              change (rp_meta_local.c; format at the top of that file)
 *   zookeeper  one ZooKeeper ensemble shared by every broker (rp_zk.c,
 *              rp_meta_open_zk in rp_zk.h); other brokers' changes are
 *              picked up with rp_meta_reload
 *
 * Model: the store keeps the whole state in memory. Every mutating call is
 * synchronous and durable before it returns: it builds the next state,
 * asks the backend to persist it, and only on success makes it current --
 * a failed write (-errno) leaves the in-memory state exactly as before.
 *
 * Threading: a store belongs to one thread (in stratad: shard 0, the
 * controller role; other shards will read published snapshots). Mutations
 * block on the backend write (an fsync; a ZooKeeper round trip): the local
 * store's are accepted on the loop thread; the zookeeper store's run as
 * two-phase ops (rp_meta_op_*, below) whose write runs on a worker. Not
 * thread-safe otherwise.
 */
#ifndef RP_META_H
#define RP_META_H

#include <stddef.h>
#include <stdint.h>

typedef struct rp_meta rp_meta_t;

/* Longest cluster id accepted (Kafka's are 22 chars), without the NUL. */
#define RP_META_CLUSTER_ID_MAX 63
/* Longest topic name (Kafka's limit). */
#define RP_META_TOPIC_NAME_MAX 249
/* InitProducerId ids are reserved (persisted) this many at a time. */
#define RP_META_PID_BLOCK 1000

/* A config override. Strings are NUL-terminated. */
typedef struct {
    const char *key;
    const char *value;
} rp_meta_kv_t;

/* A topic as stored. Returned pointers (the struct, name, configs) are owned
 * by the store and valid until the next mutating call on it or rp_meta_close. */
typedef struct {
    const char *name;
    uint8_t id[16];              /* random, never all-zero */
    int32_t partitions;          /* >= 1 */
    int16_t replication_factor;  /* >= 1 */
    const rp_meta_kv_t *configs; /* overrides only, in the order they were set */
    size_t nconfigs;
} rp_meta_topic_t;

/* ---- lifecycle ------------------------------------------------------------ */

/*
 * Opens the local store in dir (which must exist): loads dir/RP_META_LOCAL_FILE
 * or, when absent, creates it with cluster_id (then the store's id is that
 * one). A file that exists but does not decode is an error naming the path:
 * it is never silently replaced. Returns 0 and *out (caller owns, free with
 * rp_meta_close), SC_ERR_BAD_FORMAT (corrupt, logged with path and reason),
 * SC_ERR_BAD_CONFIG (cluster_id empty or too long), -errno, SC_ERR_NO_MEMORY.
 */
int rp_meta_open_local(const char *dir, const char *cluster_id, rp_meta_t **out);

/* File name of the local backend inside its directory. */
#define RP_META_LOCAL_FILE "__cluster_metadata.bin"

/* Frees the store (nothing to flush: every change is already durable).
 * NULL is a no-op. */
void rp_meta_close(rp_meta_t *m);

/* ---- operations (each durable on return; state unchanged on error) ------- */

/*
 * Creates a topic with a fresh random topic id. configs[0..n) are copied.
 * Returns 0, SC_ERR_TOPIC_ALREADY_EXISTS, SC_ERR_INVALID_TOPIC_EXCEPTION
 * (empty or longer than RP_META_TOPIC_NAME_MAX; Kafka's character rules are
 * the caller's), SC_ERR_INVALID_PARTITIONS (< 1),
 * SC_ERR_INVALID_REPLICATION_FACTOR (< 1), SC_ERR_INVALID_CONFIG (NULL or
 * empty key, NULL value, duplicate key), -errno, SC_ERR_NO_MEMORY.
 */
int rp_meta_topic_create(rp_meta_t *m, const char *name, int32_t partitions, int16_t rf,
                         const rp_meta_kv_t *configs, size_t n);

/* Deletes a topic. 0, SC_ERR_UNKNOWN_TOPIC_OR_PARTITION, -errno, NO_MEMORY. */
int rp_meta_topic_delete(rp_meta_t *m, const char *name);

/* Raises the partition count to count (partitions are never removed).
 * 0, SC_ERR_UNKNOWN_TOPIC_OR_PARTITION, SC_ERR_INVALID_PARTITIONS
 * (count <= current), -errno, SC_ERR_NO_MEMORY. */
int rp_meta_topic_set_partitions(rp_meta_t *m, const char *name, int32_t count);

/* Replaces the whole override set of a topic with kv[0..n) (n = 0 clears
 * it), as Kafka's non-incremental AlterConfigs does. Errors as
 * rp_meta_topic_create's config checks, plus UNKNOWN_TOPIC_OR_PARTITION. */
int rp_meta_topic_set_configs(rp_meta_t *m, const char *name, const rp_meta_kv_t *kv, size_t n);

/* Reserves count producer ids: *first .. *first+count-1 are never handed out
 * again, even after a restart (the new end is persisted before returning).
 * 0, SC_ERR_INVALID_REQUEST (count < 1 or the id space is exhausted), -errno. */
int rp_meta_producer_ids_alloc(rp_meta_t *m, int64_t count, int64_t *first);

/* The next unique producer id, from a block of RP_META_PID_BLOCK reserved
 * with rp_meta_producer_ids_alloc when the current one is used up (so one
 * write per block, not per id). Ids of a block not used before a restart are
 * skipped, never reused. 0 and *pid, or rp_meta_producer_ids_alloc's errors. */
int rp_meta_producer_id_next(rp_meta_t *m, int64_t *pid);

/* ---- two-phase changes (cluster mode: a backend that may be slow) ----------
 * The same changes split so that the backend write can run on another
 * thread while the owner thread goes on (bk_topics.c runs them on a worker):
 *   prepare  (owner thread) rp_meta_op_*: the argument checks above against
 *            the current state (same errors, returned at once; *out NULL),
 *            then *out = the change, with its own copies of everything;
 *   run      (any one thread) rp_meta_op_run: the backend write only -- it
 *            reads nothing of the store's image, so the owner may use the
 *            store meanwhile (lookups, rp_meta_reload, even other changes);
 *   finish   (owner thread) rp_meta_op_finish: returns the write's result
 *            and, on success, applies the change to the state as it is THEN
 *            (a reload in between may already hold it: applied once), frees op.
 * Only for backends that need no image to write (zookeeper; the local one
 * rewrites its whole file from the image: SC_ERR_INVALID_REQUEST there). */
typedef struct rp_meta_op rp_meta_op_t;
int rp_meta_op_topic_create(rp_meta_t *m, const char *name, int32_t partitions, int16_t rf,
                            const rp_meta_kv_t *configs, size_t n, rp_meta_op_t **out);
int rp_meta_op_topic_delete(rp_meta_t *m, const char *name, rp_meta_op_t **out);
int rp_meta_op_topic_set_partitions(rp_meta_t *m, const char *name, int32_t count,
                                    rp_meta_op_t **out);
int rp_meta_op_topic_set_configs(rp_meta_t *m, const char *name, const rp_meta_kv_t *kv,
                                 size_t n, rp_meta_op_t **out);
/* A block of RP_META_PID_BLOCK producer ids; finish makes it the current
 * block of rp_meta_producer_id_next (which then needs no write). */
int rp_meta_op_producer_ids(rp_meta_t *m, rp_meta_op_t **out);
void rp_meta_op_run(rp_meta_op_t *op);
int rp_meta_op_finish(rp_meta_t *m, rp_meta_op_t *op);
/* Frees a prepared op that will not run (nothing written). NULL no-op. */
void rp_meta_op_free(rp_meta_op_t *op);
/* 1 and *pid when the current producer-id block has an id left (no write). */
int rp_meta_producer_id_cached(rp_meta_t *m, int64_t *pid);

/* Re-reads the whole state from the backend (a shared store changed by
 * other brokers). Invalidates every pointer handed out before. 0 or the
 * backend's load errors (then the state is as before). */
int rp_meta_reload(rp_meta_t *m);

/* ---- accessors (cheap, never allocate) ------------------------------------ */

/* The cluster id (NUL-terminated, valid until close). */
const char *rp_meta_cluster_id(const rp_meta_t *m);
/* "local", ... */
const char *rp_meta_backend_name(const rp_meta_t *m);

size_t rp_meta_topic_count(const rp_meta_t *m);
/* The i-th topic in creation order, 0 <= i < count. */
const rp_meta_topic_t *rp_meta_topic_at(const rp_meta_t *m, size_t i);
/* The topic named name[0..len) (need not be NUL-terminated), or NULL. */
const rp_meta_topic_t *rp_meta_topic_find(const rp_meta_t *m, const char *name, size_t len);
/* The override value of key for topic t, or NULL when not overridden. */
const char *rp_meta_topic_config(const rp_meta_topic_t *t, const char *key);

#endif
