/*
 * rp_zk -- the zookeeper side of cluster mode (design.md §6,
 * docs/replication.md): one ZooKeeper session per broker (Debian's
 * libzookeeper-mt C client), the `zookeeper` backend of the metadata store
 * (rp_meta_open_zk), broker registration, controller election with a
 * fencing epoch, and the per-partition state (replicas, leader, ISR, leader
 * epoch) written with versioned compare-and-set.
 *
 * Znodes (Kafka's ZooKeeper-mode shape; values are protobuf records from
 * proto/metadata.proto):
 *   /cluster/id                                     ClusterId
 *   /brokers/ids/<id>                  ephemeral    BrokerRegistration
 *   /brokers/topics/<name>                          Topic
 *   /brokers/topics/<name>/partitions/<p>/state     PartitionState
 *   /controller                        ephemeral    ControllerRecord
 *   /controller_epoch                               ControllerRecord (epoch)
 *   /latest_producer_id_block                       ProducerIdBlock
 * A chroot in zookeeper.connect (host:port/strata) prefixes all of them.
 *
 * Fencing: becoming controller is one multi-op (create the ephemeral
 * /controller + a versioned set of /controller_epoch to epoch+1); every
 * partition-state write of the controller is a multi-op that first checks
 * /controller_epoch still has the version this controller wrote, so a
 * controller that lost its role (session expired, paused) cannot overwrite
 * anything (SC_ERR_STALE_CONTROLLER_EPOCH) -- and the state write itself is
 * versioned against the znode version the controller read.
 *
 * Threading: calls are synchronous (the client's own I/O thread does the
 * network) and block until ZooKeeper answers or the client gives up. In
 * stratad they are made from the cluster thread (broker/bk_cluster.c):
 * session, registration, controller, partition state, rp_zk_topics_read.
 * The metadata store (rp_meta_open_zk) belongs to another thread (shard 0):
 * its writes (CreateTopics & co.) run as two-phase ops (rp_meta_op_*) whose
 * ZooKeeper calls are made on shard 0's store worker (broker/bk_topics.c),
 * holding a read lock against rp_zk_reconnect replacing the session; its
 * reload takes the image the cluster thread offered (rp_zk_topics_offer)
 * instead of reading. Watches are set by the readers below (rp_zk_brokers,
 * rp_zk_controller, rp_zk_pstate_get, the topic list); when any fires, or
 * the session changes state, the notify callback runs ON THE CLIENT'S
 * THREAD: it must only signal.
 */
#ifndef RP_ZK_H
#define RP_ZK_H

#include "rp_assign.h"
#include "rp_meta.h"

#include <stddef.h>
#include <stdint.h>

typedef struct rp_zk rp_zk_t;

typedef struct {
    rp_broker_t b; /* id, rack */
    char host[256];
    int32_t port;
} rp_zk_broker_t;

/* Connects to connect ("host:port[,host:port...][/chroot]") and waits up to
 * timeout_ms for the session. 0, SC_ERR_BAD_CONFIG (bad string),
 * SC_ERR_BROKER_NOT_AVAILABLE (no session in time; logged). */
int rp_zk_open(const char *connect, int session_timeout_ms, int timeout_ms, rp_zk_t **out);
void rp_zk_close(rp_zk_t *z); /* NULL is a no-op; ephemeral nodes go with the session */

/* Watch / session-change callback (see threading above): path = the znode
 * whose data watch fired (created, changed; chroot removed), NULL for any
 * other event (children, deletion, session). */
void rp_zk_set_notify(rp_zk_t *z, void (*fn)(void *arg, const char *path), void *arg);
/* 0 while the session is usable, SC_ERR_BROKER_NOT_AVAILABLE when it expired. */
int rp_zk_session_state(rp_zk_t *z);
/* After expiry: a new session on the same handle (pointers to z, e.g. the
 * store's, stay valid; the controller role and ephemeral nodes are gone:
 * register again). Waits like rp_zk_open. 0 or its errors. */
int rp_zk_reconnect(rp_zk_t *z);

/* The stored cluster id. 0, SC_ERR_NOT_FOUND (none yet), SC_ERR_BAD_FORMAT,
 * SC_ERR_BROKER_NOT_AVAILABLE (ZooKeeper error, logged). */
int rp_zk_cluster_id(rp_zk_t *z, char *out, size_t len);

/* The metadata store over z (z is not owned; close the store first). The
 * cluster id is created from cluster_id when none is stored. Errors as
 * rp_meta_open_local's, ZooKeeper failures as SC_ERR_BROKER_NOT_AVAILABLE. */
int rp_meta_open_zk(rp_zk_t *z, const char *cluster_id, rp_meta_t **out);

/* The topic registry read on one thread for the store of another: read
 * (the cluster id, every /brokers/topics/<name>, a watch on the list; 0,
 * SC_ERR_NOT_FOUND without a cluster id, SC_ERR_BAD_FORMAT, NO_MEMORY,
 * BROKER_NOT_AVAILABLE), looked at, then offered: the store's next reload
 * (rp_meta_reload, on its own thread) installs the offered image without
 * calling ZooKeeper. An image whose read began before a topic write made
 * through the store finished (its result back on the store's thread) is stale (it could undo that write) and is
 * dropped. rp_zk_topics_offered: 1 = a current image waits, 0 = none,
 * -1 = the waiting one was stale and is dropped (read again). offer takes
 * ownership; free of NULL is a no-op. */
typedef struct rp_zk_topics rp_zk_topics_t;
int rp_zk_topics_read(rp_zk_t *z, rp_zk_topics_t **out);
size_t rp_zk_topics_count(const rp_zk_topics_t *t);
const rp_meta_topic_t *rp_zk_topics_at(const rp_zk_topics_t *t, size_t i);
void rp_zk_topics_free(rp_zk_topics_t *t);
void rp_zk_topics_offer(rp_zk_t *z, rp_zk_topics_t *t);
int rp_zk_topics_offered(rp_zk_t *z);

/* Registers this broker: the ephemeral /brokers/ids/<id>. When the node
 * exists from a previous session of the same id (a restart before that
 * session expired), retries until wait_ms. 0, SC_ERR_BAD_CONFIG (id held by
 * another live broker after wait_ms), SC_ERR_BROKER_NOT_AVAILABLE. */
int rp_zk_register(rp_zk_t *z, const rp_broker_t *self, const char *host, int32_t port,
                   int wait_ms);

/* Removes this session's registration of broker id (controlled shutdown:
 * the controller then treats it as gone). 0, SC_ERR_NOT_FOUND (none of
 * ours), SC_ERR_BROKER_NOT_AVAILABLE. */
int rp_zk_deregister(rp_zk_t *z, int32_t id);

/* Live brokers (sets a watch on the list). out[0..*n), at most max. */
int rp_zk_brokers(rp_zk_t *z, rp_zk_broker_t *out, int max, int *n);

/* The current controller (sets a watch). 0, or SC_ERR_NOT_FOUND when there
 * is none. */
int rp_zk_controller(rp_zk_t *z, int32_t *id, int32_t *epoch);

/* Tries to become controller. 0 with *epoch = the new controller epoch;
 * SC_ERR_NOT_CONTROLLER when another broker won; SC_ERR_BROKER_NOT_AVAILABLE. */
int rp_zk_elect(rp_zk_t *z, int32_t my_id, int32_t *epoch);

/* A partition's state (sets a watch). 0 with *version (for rp_zk_pstate_write),
 * SC_ERR_NOT_FOUND, SC_ERR_BAD_FORMAT, SC_ERR_BROKER_NOT_AVAILABLE. */
int rp_zk_pstate_get(rp_zk_t *z, const char *topic, int32_t p, rp_pstate_t *s, int *version);

/* Controller only (after rp_zk_elect): creates (version -1) or replaces
 * (version from rp_zk_pstate_get) a partition's state, fenced by the
 * controller epoch. 0; SC_ERR_STALE_CONTROLLER_EPOCH (no longer controller);
 * SC_ERR_INVALID_REQUEST on a version clash (written meanwhile: re-read);
 * SC_ERR_UNKNOWN_TOPIC_OR_PARTITION (topic deleted); BROKER_NOT_AVAILABLE. */
int rp_zk_pstate_write(rp_zk_t *z, const char *topic, int32_t p, const rp_pstate_t *s,
                       int version);

/* The partition's leader (not the controller) replaces its state, e.g. its
 * ISR, with a versioned set against the version it read (Kafka's ZooKeeper
 * mode does the same): a concurrent controller change makes it fail with
 * SC_ERR_INVALID_REQUEST. Also SC_ERR_UNKNOWN_TOPIC_OR_PARTITION, BROKER_NOT_AVAILABLE. */
int rp_zk_pstate_write_leader(rp_zk_t *z, const char *topic, int32_t p, const rp_pstate_t *s,
                              int version);

/* 1 while z holds the controller role it won with rp_zk_elect (its
 * /controller node is this session's). */
int rp_zk_is_controller(rp_zk_t *z);

/* Drops the role (deletes /controller if it is ours). */
void rp_zk_resign(rp_zk_t *z);

#endif
