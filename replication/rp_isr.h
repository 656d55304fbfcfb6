/*
 * rp_isr -- the leader's side of replication, per partition it leads (pure:
 * no I/O, no clock of its own; every time is passed in, so tests drive it
 * with a fake clock). bk_cluster.c keeps one rp_isr_t per led partition and
 * runs these steps on shard 0; test_rp_isr and test_rp_sm drive them alone.
 *
 *   lead    a new leader epoch of the partition: every follower starts over
 *           (no fetch yet, a grace period from now) -- Kafka's
 *           makeLeader. Returns 1 then (the caller rebuilds what a new
 *           leader rebuilds).
 *   fetch   a follower's Fetch at `offset` (its log end, only sent once its
 *           copy is durable). It counts as caught up (for the lag) when it
 *           fetches from where the leader's high watermark was at its
 *           previous fetch, or from the current one (Kafka's
 *           lastFetchLeaderLogEndOffset rule, so a follower under steady load
 *           does not look one round trip behind); it is in sync (may join
 *           the ISR) only when it fetches at or past the current high
 *           watermark (Kafka's isFollowerInSync), so no ISR member ever
 *           lacks a record below the high watermark.
 *   hw      high watermark = min(the leader's committed offset, the fetch
 *           offset of every other ISR member); a member that has not fetched
 *           in this leader epoch holds it where it is; it never goes down.
 *   next    the ISR the leader writes (Kafka's maybeShrinkIsr /
 *           maybeExpandIsr): a member not caught up for lag_max_ms leaves; a
 *           live replica outside the ISR whose latest fetch was in sync
 *           (and caught up within lag_max_ms) joins.
 *   waits   acks=all appends waiting for the high watermark: answered 0 once
 *           it reaches their end (NOT_ENOUGH_REPLICAS_AFTER_APPEND if the ISR
 *           is below min.insync.replicas by then), REQUEST_TIMED_OUT at their
 *           deadline, NOT_LEADER_OR_FOLLOWER when the leadership moved.
 */
#ifndef RP_ISR_H
#define RP_ISR_H

#include "rp_assign.h"

#include <stdint.h>

/* What the leader knows of one follower. */
typedef struct {
    int32_t replica;
    int64_t leo;          /* offset of its last fetch; -1 = none in this leader epoch */
    int64_t prev_hw;      /* the leader's high watermark at its previous fetch */
    int64_t caught_up_ms; /* last time it was caught up (or when leadership began) */
    int in_sync;          /* its latest fetch was at or past the high watermark */
} rp_isr_follower_t;

/* Called once per finished wait with its arg and the answer (0 or an error). */
typedef void (*rp_isr_done_fn)(void *arg, int16_t err);

typedef struct rp_isr_wait {
    struct rp_isr_wait *next;
    int64_t end;         /* answered once the high watermark reaches it */
    int64_t deadline_ms; /* REQUEST_TIMED_OUT from then on */
    rp_isr_done_fn done;
    void *arg;
} rp_isr_wait_t;

typedef struct {
    int32_t leader_epoch; /* the epoch the followers' entries belong to; -1 = never led */
    int nf;
    rp_isr_follower_t f[RP_RF_MAX];
    rp_isr_wait_t *waits; /* oldest first */
} rp_isr_t;

void rp_isr_init(rp_isr_t *p);

/* Frees the waits without answering them (answer first with rp_isr_waits_check). */
void rp_isr_fini(rp_isr_t *p);

/*
 * This broker (me) leads the partition in state st. Followers = st's
 * replicas other than me. When st's leader epoch differs from the last one
 * seen, every follower starts over (leo -1, caught up "now": a grace period of
 * lag_max_ms) and 1 is returned; else 0 (new replicas of the assignment are
 * added either way).
 */
int rp_isr_lead(rp_isr_t *p, const rp_pstate_t *st, int32_t me, int64_t now_ms);

/* The entry of a replica, or NULL. */
const rp_isr_follower_t *rp_isr_follower(const rp_isr_t *p, int32_t replica);

/*
 * A Fetch from follower `replica` at `offset`, the leader's high watermark
 * being `hw`; caught_up_ms = now when it is caught up. Returns 1 when it is in
 * sync (offset >= hw: a replica outside the ISR may rejoin), 0 when not, -1
 * for a replica that is not a follower (ignored).
 */
int rp_isr_fetch(rp_isr_t *p, int32_t replica, int64_t offset, int64_t hw, int64_t now_ms);

/*
 * The high watermark: min(committed, every other ISR member's fetch offset),
 * a member without a fetch in st's leader epoch counting as cur; never below
 * cur (the current one).
 */
int64_t rp_isr_hw(const rp_isr_t *p, const rp_pstate_t *st, int32_t me, int64_t committed,
                  int64_t cur);

/*
 * The ISR the leader should write: st's ISR without the members not caught
 * up for more than lag_max_ms, plus the live (live[0..nlive)) replicas
 * outside it whose latest fetch was in sync and caught up no longer than
 * lag_max_ms ago (so a member that stopped fetching right after a caught-up
 * fetch leaves and is not taken straight back). *next = st with that ISR;
 * returns 1 when it differs from st's, else 0.
 */
int rp_isr_next(const rp_isr_t *p, const rp_pstate_t *st, int32_t me, const int32_t *live,
                int nlive, int64_t lag_max_ms, int64_t now_ms, rp_pstate_t *next);

/* Queues an acks=all wait (end = the batch's last offset + 1). 0, or
 * SC_ERR_NO_MEMORY. */
int rp_isr_wait_add(rp_isr_t *p, int64_t end, int64_t deadline_ms, rp_isr_done_fn done,
                    void *arg);

/*
 * Answers the waits that are over, in the order they were queued: with
 * leading 0 all of them (NOT_LEADER_OR_FOLLOWER); else those at or below hw
 * (0, or NOT_ENOUGH_REPLICAS_AFTER_APPEND when nisr < min_insync) and those
 * past their deadline (REQUEST_TIMED_OUT). Each is unlinked before any done
 * runs, so done may queue new waits. Returns how many were answered.
 */
int rp_isr_waits_check(rp_isr_t *p, int leading, int64_t hw, int nisr, int64_t min_insync,
                       int64_t now_ms);

/* The earliest deadline of the waits, or INT64_MAX when there are none. */
int64_t rp_isr_waits_deadline(const rp_isr_t *p);

#endif
