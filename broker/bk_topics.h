/*
 * bk_topics -- the broker's topic registry: which topics exist, their
 * partition counts, ids and config overrides. Metadata and the admin APIs
 * answer from it.
 *
 * Backed by the metadata store (replication/rp_meta.h, `local` backend:
 * <log.dirs[0]>/__cluster_metadata.bin), so topics, partition counts, topic
 * configs and the cluster id persist across restarts; every change is
 * durable before the call returns. This layer adds Kafka's name rules, takes
 * (ptr, len) names straight from requests, and calls the partition hooks.
 *
 * Partition hooks: `created` runs for each new partition after the change is
 * durable in the store (topic creation: 0..n-1; CreatePartitions: old..new-1),
 * `deleted` for each partition of a deleted topic after the deletion is
 * durable. They default to no-ops; the storage log manager
 * (st_log_manager_create / st_log_manager_delete) plugs in here. The store is
 * the source of truth: after a crash between the store write and a hook, the
 * log manager must reconcile at start (create logs for listed partitions,
 * remove directories of partitions not listed).
 *
 * Threading: owned by shard 0 and touched only on its loop thread, except
 * the store worker of cluster mode (asynchronous changes below), which runs
 * one rp_meta_op at a time and touches nothing else. When more shards run,
 * other shards will ask shard 0 (message + uv_async) or read a published
 * immutable snapshot.
 */
#ifndef BK_TOPICS_H
#define BK_TOPICS_H

#include "rp_meta.h"

#include <stddef.h>
#include <stdint.h>

typedef struct bk_topics bk_topics_t;

#define BK_TOPIC_NAME_MAX 249

/* Called with the topic name (NUL-terminated), its 16-byte id and one
 * partition index. created returns 0 or an error (logged; the change stays
 * in the store, and the caller reports the error to the client). */
typedef struct {
    int (*created)(void *arg, const char *topic, const uint8_t id[16], int32_t partition);
    void (*deleted)(void *arg, const char *topic, const uint8_t id[16], int32_t partition);
    void *arg;
} bk_partition_hooks_t;

/* ---- lifecycle ------------------------------------------------------------- */

/* Opens the registry over the local metadata store in dir (created when
 * absent, with cluster_id). 0, or rp_meta_open_local's errors (a corrupt
 * store is SC_ERR_BAD_FORMAT, already logged with its path). *out is the
 * caller's, freed with bk_topics_free. */
int bk_topics_open(const char *dir, const char *cluster_id, bk_topics_t **out);
void bk_topics_free(bk_topics_t *t); /* NULL is a no-op */

/* Cluster mode: the registry over the zookeeper store (replication/rp_zk.h;
 * z is not owned). Errors as rp_meta_open_zk's. */
struct rp_zk;
int bk_topics_open_zk(struct rp_zk *z, const char *cluster_id, bk_topics_t **out);

/* Cluster mode: re-reads the shared store (other brokers' changes) and runs
 * the hooks for partitions that appeared (created) or whose topic went
 * (deleted; a topic recreated under the same name with a new id counts as
 * both). Invalidates pointers from bk_topics_get / bk_topics_lookup.
 * 0 or rp_meta_reload's errors (nothing changed then). */
int bk_topics_reload(bk_topics_t *t);

/* Installs hooks (copied); NULL restores the no-op default. */
void bk_topics_set_hooks(bk_topics_t *t, const bk_partition_hooks_t *hooks);

/* ---- operations ------------------------------------------------------------- */

/* Creates a topic with replication factor 1 and no overrides (Metadata
 * auto-creation). 0, SC_ERR_INVALID_TOPIC_EXCEPTION (bad name),
 * SC_ERR_INVALID_PARTITIONS (partitions < 1), SC_ERR_TOPIC_ALREADY_EXISTS,
 * SC_ERR_NO_MEMORY, -errno (store write failed: nothing changed), or a
 * created hook's error (the topic exists). name need not be NUL-terminated. */
int bk_topics_create(bk_topics_t *t, const char *name, size_t len, int32_t partitions);

/* Same with a replication factor and overrides (already validated by the
 * caller against bk_topic_config). */
int bk_topics_create_ex(bk_topics_t *t, const char *name, size_t len, int32_t partitions,
                        int16_t rf, const rp_meta_kv_t *configs, size_t n);

/* Deletes a topic. 0, SC_ERR_UNKNOWN_TOPIC_OR_PARTITION, -errno, NO_MEMORY. */
int bk_topics_delete(bk_topics_t *t, const char *name, size_t len);

/* Raises the partition count to count. 0, SC_ERR_UNKNOWN_TOPIC_OR_PARTITION,
 * SC_ERR_INVALID_PARTITIONS (count <= current), -errno, a hook's error. */
int bk_topics_add_partitions(bk_topics_t *t, const char *name, size_t len, int32_t count);

/* Replaces the topic's override set. 0, SC_ERR_UNKNOWN_TOPIC_OR_PARTITION,
 * SC_ERR_INVALID_CONFIG, -errno, SC_ERR_NO_MEMORY. */
int bk_topics_set_configs(bk_topics_t *t, const char *name, size_t len, const rp_meta_kv_t *kv,
                          size_t n);

/* Looks a topic up. 0 with *partitions set, or SC_ERR_UNKNOWN_TOPIC_OR_PARTITION. */
int bk_topics_find(const bk_topics_t *t, const char *name, size_t len, int32_t *partitions);

/* The stored topic (id, configs, ...) or NULL; valid until the next change. */
const rp_meta_topic_t *bk_topics_lookup(const bk_topics_t *t, const char *name, size_t len);

/* A new unique producer id (InitProducerId); see rp_meta_producer_id_next. */
int bk_topics_producer_id_next(bk_topics_t *t, int64_t *pid);

/* ---- asynchronous changes (cluster mode) ------------------------------------
 * The zookeeper store's writes wait for ZooKeeper; shard 0 must not. Once
 * started (bk__cluster_start), bk_topics_async() is 1 and the changes below
 * queue a job instead: jobs run one at a time, in order; each is prepared on
 * shard 0 when its turn comes (the store's checks against the registry as it
 * is then: same errors as the synchronous calls), its ZooKeeper write runs on
 * the store worker thread, and its result comes back to shard 0 through a
 * uv_async: the registry is updated (rp_meta_op_finish, then the partition
 * hooks for what this broker did not already get from a reload) and done(arg,
 * rc, pid) is called on shard 0 -- never from inside the submitting call.
 * Submit returns 0 (done will be called) or SC_ERR_NO_MEMORY (it will not).
 * pid is the new producer id of bk_topics_producer_id_async, else -1.
 * Stop (on shard 0, before its loop closes): jobs not started are answered
 * SC_ERR_BROKER_NOT_AVAILABLE (nothing written), the one with the worker
 * SC_ERR_REQUEST_TIMED_OUT (its outcome is not known); free waits for the
 * worker at most BK_TOPICS_JOIN_MS and then leaves it behind with the store
 * (bk_topics_left_behind() = 1: the ZooKeeper session must then stay open). */
struct uv_loop_s;
typedef void (*bk_topics_done_fn)(void *arg, int rc, int64_t pid);
#define BK_TOPICS_JOIN_MS 2000
int bk_topics_async_start(bk_topics_t *t, struct uv_loop_s *loop);
void bk_topics_async_stop(bk_topics_t *t);
int bk_topics_async(const bk_topics_t *t);
int bk_topics_left_behind(void);
int bk_topics_create_async(bk_topics_t *t, const char *name, size_t len, int32_t partitions,
                           int16_t rf, const rp_meta_kv_t *configs, size_t n,
                           bk_topics_done_fn done, void *arg);
int bk_topics_delete_async(bk_topics_t *t, const char *name, size_t len, bk_topics_done_fn done,
                           void *arg);
int bk_topics_add_partitions_async(bk_topics_t *t, const char *name, size_t len, int32_t count,
                                   bk_topics_done_fn done, void *arg);
int bk_topics_set_configs_async(bk_topics_t *t, const char *name, size_t len,
                                const rp_meta_kv_t *kv, size_t n, bk_topics_done_fn done,
                                void *arg);
int bk_topics_producer_id_async(bk_topics_t *t, bk_topics_done_fn done, void *arg);
/* 1 and *pid when the current producer-id block has an id left (no write,
 * nothing queued needed). */
int bk_topics_producer_id_cached(bk_topics_t *t, int64_t *pid);

/* ---- accessors ------------------------------------------------------------- */

/* Number of topics, and the i-th in creation order (0 <= i < count). The name
 * is NUL-terminated and valid until the next change. */
size_t bk_topics_count(const bk_topics_t *t);
const char *bk_topics_get(const bk_topics_t *t, size_t i, int32_t *partitions);

/* The cluster id recorded in the store. */
const char *bk_topics_cluster_id(const bk_topics_t *t);

/* 1 when name is a legal Kafka topic name: 1..249 chars of [a-zA-Z0-9._-],
 * not "." or "..". */
int bk_topic_name_valid(const char *name, size_t len);

#endif
