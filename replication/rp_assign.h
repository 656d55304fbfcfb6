/*
 * rp_assign -- the controller's pure decisions (no I/O, unit-tested alone):
 * where the replicas of a new partition go, and what a partition's
 * leader / ISR / leader epoch become when the set of live brokers changes.
 * rp_zk.c stores the results; bk_cluster.c runs them on the controller.
 *
 * Assignment (Kafka's ZooKeeper-mode rules, simplified): brokers are sorted
 * by id; when every broker has a rack, the list is rack-alternated (one
 * broker of each rack in turn, racks sorted by name) so consecutive brokers
 * sit in different racks. Partition p's first replica is list[(p + start) %
 * n]; the others follow with a per-round shift, preferring a rack not used
 * yet by that partition while one remains. replicas[0] is the preferred
 * leader.
 *
 * Election: a partition keeps its leader while the leader is live; dead
 * brokers leave the ISR; a new leader is the first replica (assignment
 * order) that is live and in the ISR. When none is, with
 * unclean.leader.election.enable=false (Kafka's default) leader = -1 and the
 * ISR keeps its last member(s), so only a broker that was in sync can become
 * leader again; with it true, the first live replica outside the ISR leads
 * and the ISR becomes just it (records the old ISR had and it lacks are
 * lost). Every leader change bumps leader_epoch. The ISR never grows here
 * otherwise (a follower rejoins once it has caught up: rp_isr.h).
 */
#ifndef RP_ASSIGN_H
#define RP_ASSIGN_H

#include <stddef.h>
#include <stdint.h>

/* Largest replication factor handled. */
#define RP_RF_MAX 16
#define RP_RACK_MAX 63

typedef struct {
    int32_t id;
    char rack[RP_RACK_MAX + 1]; /* "" = no rack */
} rp_broker_t;

/* A partition's replication state (what /brokers/topics/<t>/partitions/<p>/state holds). */
typedef struct {
    int32_t replicas[RP_RF_MAX];
    int32_t isr[RP_RF_MAX];
    int nreplicas, nisr;
    int32_t leader; /* -1 = none */
    int32_t leader_epoch;
    int32_t controller_epoch;
} rp_pstate_t;

/*
 * Replicas of partition `partition` with replication factor rf over the
 * brokers b[0..n) (any order; not modified). start rotates the first
 * replica (the controller passes a per-topic value). out[0..rf).
 * 0, or SC_ERR_INVALID_REPLICATION_FACTOR (rf < 1, rf > n or > RP_RF_MAX).
 */
int rp_assign_replicas(const rp_broker_t *b, size_t n, int32_t partition, int rf, int32_t start,
                       int32_t *out);

/* 1 when id is in a[0..n). */
int rp_id_in(const int32_t *a, int n, int32_t id);

/*
 * The state a new partition starts with: replicas as given, ISR = the live
 * replicas, leader = the first live replica (-1 if none), leader epoch 0.
 */
void rp_pstate_init(rp_pstate_t *s, const int32_t *replicas, int rf, const int32_t *live,
                    int nlive, int32_t controller_epoch);

/*
 * What cur becomes with live[0..nlive) the live brokers; unclean =
 * unclean.leader.election.enable of the partition's topic. Writes the new
 * state to *next and returns 1 when something changed (leader, ISR; the
 * leader epoch is bumped on a leader change, controller_epoch is set to
 * controller_epoch), 2 when that change is an unclean election (a replica
 * outside the ISR now leads: the caller warns of possible data loss), 0 when
 * cur stands (then *next == *cur).
 */
int rp_pstate_next(const rp_pstate_t *cur, const int32_t *live, int nlive,
                   int32_t controller_epoch, int unclean, rp_pstate_t *next);

/*
 * Preferred-leader election: when cur's leader is not its first replica and
 * that replica is live and in the ISR, *next leads with it (leader epoch + 1,
 * controller_epoch set) and 1 is returned; else 0 and *next == *cur.
 */
int rp_pstate_preferred(const rp_pstate_t *cur, const int32_t *live, int nlive,
                        int32_t controller_epoch, rp_pstate_t *next);

#endif
