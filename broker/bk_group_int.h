/*
 * bk_group_int -- the group coordinator's state, shared by bk_group.c (the
 * classic membership protocol: JoinGroup, SyncGroup, Heartbeat, LeaveGroup,
 * ListGroups, DescribeGroups, FindCoordinator) and bk_group_offsets.c
 * (OffsetCommit, OffsetFetch, the __consumer_offsets records and their load
 * at start). Not an API: only those two files include it.
 *
 * Threading: everything here lives on shard 0 (the only shard) and is touched
 * only by its loop thread, like the topic registry. When more shards run,
 * group requests will travel to the shard that owns the group's
 * __consumer_offsets partition.
 *
 * Ownership: the coordinator owns its groups; a group owns its members,
 * pending member ids and committed offsets. A member with a parked JoinGroup
 * or SyncGroup response holds that slot (join_slot / sync_slot); the slot's
 * op points back at the member and its detach clears the pointer when the
 * connection closes first. A member is never freed with a slot still parked:
 * member removal answers it first.
 */
#ifndef BK_GROUP_INT_H
#define BK_GROUP_INT_H

#include "bk_int.h"

#define BK_OFFSETS_TOPIC "__consumer_offsets"
/* Kafka's OffsetConfig.maxMetadataSize default (offset.metadata.max.bytes). */
#define BK_OFFSET_METADATA_MAX 4096
/* Kafka error codes that only the coordinator returns (not in sc_err.h). */
#define BK_ERR_NON_EMPTY_GROUP 68
#define BK_ERR_GROUP_ID_NOT_FOUND 69
#define BK_ERR_GROUP_SUBSCRIBED_TO_TOPIC 86

typedef enum {
    BK_GROUP_EMPTY = 0,
    BK_GROUP_PREPARING,  /* PreparingRebalance: waiting for members to (re)join */
    BK_GROUP_COMPLETING, /* CompletingRebalance: waiting for the leader's SyncGroup */
    BK_GROUP_STABLE,
    BK_GROUP_DEAD,
} bk_group_state_t;

typedef struct bk_group bk_group_t;

typedef struct {
    char *name;
    uint8_t *meta;
    int32_t len;
} bk_gproto_t;

typedef struct bk_member {
    struct bk_member *next;
    char *id;
    char *instance_id; /* group.instance.id, NULL for a dynamic member */
    char *client_id;
    char *client_host; /* "/1.2.3.4", as Kafka prints it */
    int32_t session_ms, rebalance_ms;
    int64_t deadline; /* monotonic ms: removed when no heartbeat by then */
    bk_gproto_t *protos;
    int nprotos;
    uint8_t *assign; /* from the leader's SyncGroup; NULL = none */
    int32_t assign_len;
    bk_slot_t *join_slot; /* parked JoinGroup response, or NULL */
    bk_slot_t *sync_slot; /* parked SyncGroup response, or NULL */
    int16_t join_ver, sync_ver;
    int joined; /* (re)joined during the current PreparingRebalance */
} bk_member_t;

/* A member id handed out with MEMBER_ID_REQUIRED, not yet used to join. */
typedef struct bk_pending {
    struct bk_pending *next;
    char *id;
    int64_t deadline; /* monotonic ms */
} bk_pending_t;

/* One committed offset (the last value of its key in __consumer_offsets). */
typedef struct {
    char *topic;
    int32_t partition;
    int32_t leader_epoch; /* -1 = unknown */
    int64_t offset;
    char *metadata; /* never NULL ("" for none) */
    int64_t commit_ts, expire_ts; /* wall ms; expire_ts -1 = broker default */
} bk_offset_t;

struct bk_group {
    bk_group_t *next;
    char *id;
    bk_group_state_t state;
    int32_t generation;
    char *protocol_type; /* NULL while no member ever joined ("" in responses) */
    char *protocol;      /* selected assignor; NULL unless Completing/Stable */
    bk_member_t *members; /* in join order */
    int nmembers;
    bk_member_t *leader;
    bk_pending_t *pending;
    int64_t delay_deadline; /* initial rebalance delay ends (0 = none) */
    int64_t delay_cap;      /* ... never beyond this */
    int64_t join_deadline;  /* PreparingRebalance: members not rejoined by then go */
    int64_t sync_deadline;  /* CompletingRebalance: members not synced by then go */
    bk_offset_t *offs;
    size_t noffs, offs_cap;
    int64_t empty_since; /* wall ms the group last became Empty after having members; 0 = it
                          * had none since start (offsets then expire from their commit) */
    int inflight;        /* OffsetCommit appends not completed: no expiry, no removal */
    /* Kafka's GroupMetadata.subscribedTopics: the union of the members' topics
     * (ConsumerProtocolSubscription) for the selected protocol, set when a
     * generation completes; subs_known = 0 when the protocol type is not
     * "consumer", the group has no member or a subscription did not parse. */
    char **subs;
    int nsubs;
    int subs_known;
};

struct bk_coord {
    bk_server_t *srv;
    bk_group_t *groups;
    uv_timer_t timer;
    int timer_live; /* timer initialised on shard 0's loop */
    int ready;      /* __consumer_offsets exists and was loaded */
    int offline;    /* bk__group_start_offline (fuzz harness): no log, no timer; appends
                     * "complete" at once, requests without a response slot are handled
                     * (their parked responses are dropped), member ids are counters */
    uint64_t offline_ids; /* member ids handed out offline (1, 2, ... per server) */
    int32_t nparts; /* its partition count (cluster mode: 0 until the topic exists) */
    int32_t *loaded; /* cluster mode, [nparts]: leader epoch + 1 of the partition's groups
                      * loaded here (this broker leads it), 0 = none held */
    int offsets_creating; /* cluster mode: its creation is queued in the store (bk_topics.h) */
    int creating_rf;      /* and its replication factor */
    int64_t last_expiry; /* monotonic ms of the last offset expiry check */
};

/* bk_group.c */
/* The group named (id, len) or NULL. */
bk_group_t *bk__group_find(bk_coord_t *co, const char *id, size_t len);
/* The group, created Empty when absent. NULL on no memory. */
bk_group_t *bk__group_get(bk_coord_t *co, const char *id, size_t len);
/* The member with that id, or NULL. */
bk_member_t *bk__group_member_find(bk_group_t *g, const char *id, size_t len);
/* Restarts m's session timer. */
void bk__group_member_touch(bk_member_t *m);
/* Copies (p, len) into a new NUL-terminated string; NULL on no memory. */
char *bk__group_strdup(const char *p, size_t len);
/* 1 when the group's last generation subscribed to topic (subs_known). */
int bk__group_subscribed(const bk_group_t *g, const char *topic, size_t len);
/* Unlinks g from the coordinator and frees it (DeleteGroups, OffsetDelete;
 * g is Empty with no commit in flight). */
void bk__group_delete(bk_coord_t *co, bk_group_t *g);

/* Drops the groups of __consumer_offsets partition part (cluster mode: this
 * broker no longer leads it); parked JoinGroup / SyncGroup get NOT_COORDINATOR. */
void bk__group_drop_partition(bk_coord_t *co, int32_t part);
/* After a load: drops the groups left with nothing (no members, offsets,
 * pending ids or commits in flight, never a generation), as at start: the
 * offsets of a commit-only group were all tombstoned. */
void bk__group_prune_loaded(bk_coord_t *co);
/* g's GroupMetadataValue, version 3 (Kafka's schema: protocol type,
 * generation, protocol, leader, current state timestamp, members with their
 * instance id, client id and host, timeouts, subscription for the selected
 * protocol and assignment); an Empty group has a null protocol and leader
 * and no members. now: wall ms. */
void bk__group_write_value(const bk_group_t *g, sc_kw_t *w, int64_t now);
/* At load: applies group id's GroupMetadata record (value versions 0-4; v NULL =
 * tombstone: the membership is forgotten, and the group is gone unless it
 * still has committed offsets). The group becomes
 * Stable with the recorded generation, protocol, leader, members and
 * assignments (each member's session timer restarts now), or Empty. 0,
 * SC_ERR_CORRUPT_MESSAGE or SC_ERR_NO_MEMORY. */
int bk__group_load(bk_coord_t *co, const char *id, size_t len, const uint8_t *v, int64_t vlen);

/* bk_cluster.c, used only by the coordinator (declared here, not in bk_int.h). */
/* bk__cluster_wait_isr with a callback of its own instead of bk__produce_isr_done. */
int bk__cluster_wait_isr_cb(bk_server_t *s, bk_part_t *p, int64_t end, int64_t deadline_ms,
                            void (*done)(void *arg, int16_t err), void *arg);
/* The live (registered) brokers. */
int bk__cluster_live_brokers(const bk_server_t *s);
/* The registered host and port of broker id: 0, or -1 when not live. */
int bk__cluster_broker_addr(const bk_server_t *s, int32_t id, char *host, size_t cap, int *port);

/* Kafka's offsets.commit.timeout.ms default: an OffsetCommit waits this long
 * for the ISR in cluster mode. */
#define BK_OFFSETS_COMMIT_TIMEOUT_MS 5000

/* bk_group_offsets.c */
/* abs(javaHashCode(group)) % nparts. */
int32_t bk__offsets_partition(const bk_coord_t *co, const char *group, size_t len);
/* 0 when this broker coordinates the group: always on a single node; in
 * cluster mode NOT_COORDINATOR unless it leads the group's partition,
 * COORDINATOR_LOAD_IN_PROGRESS until that partition is loaded. */
int16_t bk__coord_error(const bk_coord_t *co, const char *gid, int32_t len);
/* Cluster mode (from the timer and FindCoordinator): picks up (create = 1:
 * creates) __consumer_offsets, loads the partitions this broker came to lead
 * and drops the groups of those it no longer leads. */
void bk__offsets_cluster_tick(bk_coord_t *co, int create);
/* Creates __consumer_offsets when absent and loads every committed offset
 * from it. 0 or an error (logged). */
int bk__offsets_start(bk_coord_t *co);
/* kerr: 0 or the Kafka error of a GroupMetadata write (GroupMetadataManager.storeGroup's
 * mapping: NOT_ENOUGH_REPLICAS(_AFTER_APPEND) -> COORDINATOR_NOT_AVAILABLE,
 * lost leadership -> NOT_COORDINATOR, timeout -> REBALANCE_IN_PROGRESS). */
typedef void (*bk_store_cb_t)(void *arg, int16_t kerr);
/* Appends g's GroupMetadata record (key version 2, value from
 * bk__group_write_value), or its tombstone when tomb, to g's
 * __consumer_offsets partition like a commit (acks=all; refused when the ISR
 * is below min.insync.replicas). 1: done(arg, kerr) runs later (done may be
 * NULL); 0: finished now with *kerr (0 on an offline coordinator: nothing
 * written), done not called. */
int bk__offsets_store_group(bk_coord_t *co, bk_group_t *g, int tomb, bk_store_cb_t done,
                            void *arg, int16_t *kerr);
/* Frees g's committed offsets. */
void bk__offsets_free(bk_group_t *g);
/* Expires committed offsets (Kafka 3.7 GroupMetadata.removeExpiredOffsets)
 * as of wall time now: those of Empty groups, and those of topics a Stable
 * consumer group no longer subscribes to; each group's expired offsets get
 * one batch of tombstones and leave the cache. */
void bk__offsets_expire(bk_coord_t *co, int64_t now);

#endif
