/*
 * The replication state machine in one process (librdkafka's mock cluster is
 * the model): three replicas of one partition, each a real st_log in its own
 * temp dir (one ST_IO_FAULT backend: every write and sync runs inline in
 * st_io_poll, deterministic), a fake transport and a fake clock.
 *
 *   leader    rp_isr (the module bk_cluster.c runs): follower fetch offsets,
 *             high watermark, ISR shrink / re-admission, acks=all waits.
 *   follower  what bk_follow.c does with a Fetch answer: rp_follow_walk +
 *             st_log_append_ex(ST_APPEND_KEEP_OFFSETS), then commit (so the
 *             gaps of a compacted leader are copied); under a leader epoch it has not
 *             checked yet, truncation by OffsetForLeaderEpoch first
 *             (st_log_epoch_end_offset on the leader, st_log_truncate_to here).
 *   control   the controller's rp_pstate_next on broker loss / return, with
 *             or without unclean election; the ISR the leader decides is
 *             "written" straight into the shared partition state.
 *   transport fetch(i) moves one Fetch and its answer; the test freezes a
 *             follower (no fetches), drops an answer, or holds one and
 *             delivers it later (possibly twice).
 *
 * Checks: high watermark = min over the ISR at every step; acks=all completes
 * only once both followers have the batch; a frozen follower leaves the ISR
 * after replica.lag.time.max.ms, the high watermark then moves without it,
 * it rejoins once it has caught up; min.insync.replicas (refused before the
 * append, NOT_ENOUGH_REPLICAS_AFTER_APPEND after it); REQUEST_TIMED_OUT at the
 * deadline; NOT_LEADER_OR_FOLLOWER when leadership moves; a divergent tail
 * truncated by leader epoch after a leader change; a follower restarted
 * catching up; unclean election; a compacted leader's offset gaps copied; and
 * all logs byte-identical at the end.
 */
#include "rp_assign.h"
#include "rp_follow.h"
#include "rp_isr.h"
#include "sc_endian.h"
#include "sc_err.h"
#include "sc_recbatch.h"
#include "sc_time.h"
#include "st_cleaner.h"
#include "st_io.h"
#include "st_log.h"
#include "t_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NR 3
#define LAG 1000     /* replica.lag.time.max.ms */
#define TIMEOUT 5000 /* acks=all request timeout */
#define ANS_MAX (1 << 20)

typedef struct {
    int32_t id;
    char dir[PATH_MAX + 16];
    st_log_t *log;
    int up;     /* the broker runs (live for the controller) */
    int frozen; /* sends no fetches (SIGSTOP) */
    int drop;   /* answers to its fetches are lost */
    int hold;   /* the next answer is held back (delayed) */
    uint8_t *held;
    size_t held_len;
    int32_t checked_epoch; /* truncated to the leader at this leader epoch */
    rp_isr_t isr;          /* its leader state while it leads */
} node_t;

static char root[PATH_MAX];
static st_io_t *io;
static node_t N[NR];
static rp_pstate_t ST; /* the partition state in the "metadata store" */
static int64_t NOW;    /* fake clock, ms */
static int64_t MIN_INSYNC;
static int UNCLEAN;
static uint32_t seed;

/* an acks=all produce's answer */
typedef struct {
    int done;
    int16_t err;
} wres_t;

static void wdone(void *arg, int16_t err)
{
    wres_t *w = arg;
    ck_assert_int_eq(w->done, 0); /* answered once */
    w->done = 1;
    w->err = err;
}

static void free_cb(void *arg, int rc, int64_t base, int64_t last)
{
    (void)base;
    (void)last;
    ck_assert_int_eq(rc, 0);
    free(arg);
}

static void commit(node_t *n)
{
    ck_assert_int_eq(st_log_commit(n->log), 0);
    ck_assert_int_eq(st_io_drain(io), 0);
}

static void open_node(node_t *n)
{
    st_log_config_t cfg;
    st_log_config_default(&cfg); /* flush.messages = 1: committed = durable */
    ck_assert_int_eq(st_log_open(n->dir, &cfg, io, &n->log), 0);
}

static node_t *leader(void) { return ST.leader >= 0 ? &N[ST.leader] : NULL; }

static int live(int32_t *ids)
{
    int k = 0;
    for (int i = 0; i < NR; i++)
        if (N[i].up)
            ids[k++] = N[i].id;
    return k;
}

/* The leader's high watermark step and its waits (bk_cluster's update_hw). */
static void leader_progress(void)
{
    node_t *l = leader();
    if (!l)
        return;
    int64_t hw = rp_isr_hw(&l->isr, &ST, l->id, st_log_committed_offset(l->log),
                           st_log_high_watermark(l->log));
    st_log_set_high_watermark(l->log, hw);
    rp_isr_waits_check(&l->isr, 1, st_log_high_watermark(l->log), ST.nisr, MIN_INSYNC, NOW);
}

/* The leader's ISR duty (bk_cluster's isr_duty): the write always succeeds here. */
static void isr_duty(void)
{
    node_t *l = leader();
    int32_t ids[NR];
    rp_pstate_t n;
    if (l && rp_isr_next(&l->isr, &ST, l->id, ids, live(ids), LAG, NOW, &n))
        ST = n;
    leader_progress();
}

/* The controller reacting to the live set (bk_cluster's control_one). Returns
 * rp_pstate_next's answer. A new leader starts leading (rp_isr_lead); a
 * former one answers its waits NOT_LEADER_OR_FOLLOWER. */
static int control(void)
{
    int32_t ids[NR];
    rp_pstate_t n;
    int32_t old = ST.leader;
    int how = rp_pstate_next(&ST, ids, live(ids), 1, UNCLEAN, &n);
    ST = n;
    if (old >= 0 && old != ST.leader)
        rp_isr_waits_check(&N[old].isr, 0, 0, 0, 0, NOW);
    if (ST.leader >= 0)
        rp_isr_lead(&N[ST.leader].isr, &ST, ST.leader, NOW);
    leader_progress();
    return how;
}

static void tick(int64_t ms)
{
    NOW += ms;
    isr_duty();
}

static void rounds(int n);

/* Time passes beyond the lag time while the unfrozen followers keep fetching:
 * the frozen ones leave the ISR. */
static void lag_out(void)
{
    tick(LAG / 2);
    rounds(1);
    tick(LAG / 2 + 1);
}

/* Appends a batch of n records on the leader. acks=all: refused with
 * NOT_ENOUGH_REPLICAS (nothing appended) when the ISR is below
 * min.insync.replicas, else the answer lands in *w later. Returns the
 * refusal or 0. */
static int produce(int n, wres_t *w)
{
    node_t *l = leader();
    ck_assert_ptr_nonnull(l);
    if (w) {
        memset(w, 0, sizeof *w);
        if (ST.nisr < MIN_INSYNC)
            return SC_ERR_NOT_ENOUGH_REPLICAS;
    }
    sc_recbatch_t b;
    sc_recbatch_init(&b);
    seed++;
    t_batch_make(&b, n, 16, seed, 1700000000000LL + seed);
    uint8_t *p = malloc(b.buf.len);
    memcpy(p, b.buf.data, b.buf.len);
    int64_t base, leo;
    ck_assert_int_eq(
        st_log_append(l->log, p, b.buf.len, ST.leader_epoch, free_cb, p, &base, &leo), 0);
    sc_recbatch_fini(&b);
    commit(l); /* durable on the leader: the append callback ran */
    if (w)
        ck_assert_int_eq(rp_isr_wait_add(&l->isr, leo, NOW + TIMEOUT, wdone, w), 0);
    leader_progress();
    return 0;
}

static int append_one(void *arg, const uint8_t *batch, size_t len, int64_t base, int32_t epoch)
{
    node_t *f = arg;
    uint8_t *p = malloc(len);
    memcpy(p, batch, len);
    int64_t b, e;
    int rc = st_log_append_ex(f->log, p, len, epoch, ST_APPEND_KEEP_OFFSETS, free_cb, p, &b, &e);
    if (rc) {
        free(p);
        return rc;
    }
    ck_assert_int_eq(b, base);
    return 0;
}

/* A Fetch answer reaches follower f: append what continues its log, commit. */
static void apply(node_t *f, const uint8_t *d, size_t len)
{
    int64_t next;
    ck_assert_int_eq(rp_follow_walk(d, len, st_log_end_offset(f->log), append_one, f, &next), 0);
    commit(f);
    ck_assert_int_eq(st_log_end_offset(f->log), next);
    /* a follower's high watermark is its committed offset (bk_cluster's update_hw) */
    st_log_set_high_watermark(f->log, st_log_committed_offset(f->log));
}

/* Before fetching under a leader epoch it has not checked: truncate to
 * where the local log agrees with the leader's (bk_follow.c's
 * check_truncation: its epochs, latest first, until the leader knows one). */
static void check_truncation(node_t *f, node_t *l)
{
    int64_t leo = st_log_end_offset(f->log), trunc = -1;
    int32_t latest = st_log_epoch_latest(f->log), e;
    for (e = latest; e >= 0; e--) {
        int32_t found;
        int64_t end;
        if (st_log_epoch_end_offset(l->log, e, &found, &end) == 0 && found >= 0) {
            if (end < leo)
                trunc = end;
            break;
        }
    }
    if (e < 0 && latest >= 0 && leo > 0)
        trunc = 0; /* the leader has none of our epochs */
    if (trunc >= 0)
        ck_assert_int_eq(st_log_truncate_to(f->log, trunc), 0);
    f->checked_epoch = ST.leader_epoch;
}

/* One Fetch from follower i and its answer, under the transport's rules.
 * Returns the fetch offset the leader saw (-1: none sent). */
static int64_t fetch(int i)
{
    node_t *f = &N[i], *l = leader();
    if (!f->up || f->frozen || !l || l == f)
        return -1;
    if (f->checked_epoch != ST.leader_epoch)
        check_truncation(f, l);
    int64_t off = st_log_committed_offset(f->log); /* its copy is durable */
    ck_assert_int_eq(off, st_log_end_offset(f->log));
    /* leader side (bk_cluster's follower_fetch) */
    int in = rp_isr_fetch(&l->isr, f->id, off, st_log_high_watermark(l->log), NOW);
    ck_assert_int_ge(in, 0);
    if (in && !rp_id_in(ST.isr, ST.nisr, f->id))
        isr_duty(); /* re-admit now */
    leader_progress();
    /* the answer: batches up to the leader's committed offset */
    static uint8_t buf[ANS_MAX];
    size_t len = 0;
    ck_assert_int_eq(st_log_read_into(l->log, off, buf, sizeof buf, st_log_committed_offset(l->log),
                                      &len),
                     0);
    if (f->drop)
        return off;
    if (f->hold) {
        free(f->held);
        f->held = malloc(len ? len : 1);
        memcpy(f->held, buf, len);
        f->held_len = len;
        f->hold = 0;
        return off;
    }
    apply(f, buf, len);
    return off;
}

/* Delivers follower i's held answer (late). */
static void deliver(int i)
{
    ck_assert_ptr_nonnull(N[i].held);
    apply(&N[i], N[i].held, N[i].held_len);
}

/* Every follower fetches twice: what one fetch brings, the next reports. */
static void rounds(int n)
{
    for (int k = 0; k < n; k++)
        for (int i = 0; i < NR; i++)
            fetch(i);
}

/* High watermark = min(the leader's committed offset, the log end of every
 * other ISR member as its last fetch reported it). */
static void assert_hw(void)
{
    node_t *l = leader();
    int64_t want = st_log_committed_offset(l->log);
    for (int k = 0; k < ST.nisr; k++) {
        if (ST.isr[k] == l->id)
            continue;
        const rp_isr_follower_t *f = rp_isr_follower(&l->isr, ST.isr[k]);
        ck_assert_ptr_nonnull(f);
        if (f->leo >= 0 && f->leo < want)
            want = f->leo;
    }
    ck_assert_int_eq(st_log_high_watermark(l->log), want);
}

static size_t log_bytes(st_log_t *log, uint8_t **out)
{
    size_t cap = 1 << 16, len = 0;
    uint8_t *buf = malloc(cap);
    int64_t off = st_log_start_offset(log);
    for (;;) {
        st_slice_t s;
        ck_assert_int_eq(st_log_read(log, off, 1 << 15, INT64_MAX, &s), 0);
        if (s.len == 0)
            break;
        while (len + s.len > cap)
            buf = realloc(buf, cap *= 2);
        ck_assert_int_eq(pread(s.fd, buf + len, s.len, (off_t)s.pos), (ssize_t)s.len);
        len += s.len;
        off = s.next_offset;
    }
    *out = buf;
    return len;
}

/* Every live replica's log is byte-identical to the leader's. */
static void assert_identical(void)
{
    node_t *l = leader();
    uint8_t *want, *got;
    size_t wl = log_bytes(l->log, &want);
    for (int i = 0; i < NR; i++) {
        if (&N[i] == l || !N[i].up)
            continue;
        ck_assert_int_eq(st_log_end_offset(N[i].log), st_log_end_offset(l->log));
        ck_assert_int_eq(st_log_epoch_latest(N[i].log), st_log_epoch_latest(l->log));
        size_t gl = log_bytes(N[i].log, &got);
        ck_assert_uint_eq(gl, wl);
        ck_assert_msg(memcmp(got, want, wl) == 0, "replica %d differs from the leader", i);
        free(got);
    }
    free(want);
}

static void kill_node(int i)
{
    N[i].up = 0;
    ck_assert_int_eq(st_log_close(N[i].log), 0);
    N[i].log = NULL;
    control();
}

static void restart_node(int i)
{
    N[i].up = 1;
    N[i].checked_epoch = -1;
    open_node(&N[i]);
    control();
}

static void setup(void)
{
    t_tmpdir("rpsm", root);
    ck_assert_int_eq(st_io_new(ST_IO_FAULT, NULL, &io), 0);
    NOW = 1000000;
    MIN_INSYNC = 1;
    UNCLEAN = 0;
    seed = 0;
    int32_t ids[NR];
    for (int i = 0; i < NR; i++) {
        memset(&N[i], 0, sizeof N[i]);
        N[i].id = ids[i] = i;
        N[i].up = 1;
        N[i].checked_epoch = -1;
        rp_isr_init(&N[i].isr);
        snprintf(N[i].dir, sizeof N[i].dir, "%s/b%d", root, i);
        open_node(&N[i]);
    }
    rp_pstate_init(&ST, ids, NR, ids, NR, 1);
    ck_assert_int_eq(ST.leader, 0);
    rp_isr_lead(&N[0].isr, &ST, 0, NOW);
}

static void teardown(void)
{
    for (int i = 0; i < NR; i++) {
        if (N[i].log)
            st_log_close(N[i].log);
        rp_isr_fini(&N[i].isr);
        free(N[i].held);
    }
    st_io_free(io);
    t_rm_rf(root);
}

START_TEST(hw_min_over_isr_and_acks_all)
{
    wres_t w;
    ck_assert_int_eq(produce(5, &w), 0);
    ck_assert_int_eq(st_log_high_watermark(N[0].log), 0); /* nobody has fetched */
    ck_assert(!w.done);
    ck_assert_int_eq(fetch(1), 0); /* brings 0..4 to replica 1 */
    assert_hw();
    ck_assert_int_eq(fetch(2), 0);
    assert_hw();
    ck_assert_int_eq(fetch(1), 5); /* replica 1 reports it has them */
    assert_hw();
    ck_assert_int_eq(st_log_high_watermark(N[0].log), 0); /* replica 2 has not said so */
    ck_assert(!w.done);
    ck_assert_int_eq(fetch(2), 5);
    assert_hw();
    ck_assert_int_eq(st_log_high_watermark(N[0].log), 5);
    ck_assert(w.done);
    ck_assert_int_eq(w.err, 0);

    /* several batches in flight, the followers at different places */
    wres_t a, b;
    ck_assert_int_eq(produce(3, &a), 0);
    ck_assert_int_eq(fetch(1), 5);
    ck_assert_int_eq(produce(4, &b), 0);
    ck_assert_int_eq(fetch(1), 8);
    assert_hw();
    ck_assert_int_eq(fetch(2), 5);
    ck_assert_int_eq(fetch(1), 12);
    assert_hw();
    ck_assert(!a.done && !b.done);
    ck_assert_int_eq(fetch(2), 12);
    assert_hw();
    ck_assert(a.done && b.done);
    ck_assert_int_eq(a.err, 0);
    ck_assert_int_eq(b.err, 0);
    /* acks=1 does not wait, and moves nothing by itself */
    ck_assert_int_eq(produce(2, NULL), 0);
    ck_assert_int_eq(st_log_high_watermark(N[0].log), 12);
    rounds(2);
    assert_hw();
    ck_assert_int_eq(st_log_high_watermark(N[0].log), 14);
    assert_identical();
}
END_TEST

/* Lost and late answers: the follower asks again from where it is; a late
 * answer, even delivered twice, appends nothing already there. */
START_TEST(dropped_and_delayed_answers)
{
    wres_t w;
    ck_assert_int_eq(produce(5, &w), 0);
    N[1].drop = 1;
    ck_assert_int_eq(fetch(1), 0);
    ck_assert_int_eq(fetch(1), 0); /* nothing arrived: same offset again */
    N[1].drop = 0;
    N[2].hold = 1;
    ck_assert_int_eq(fetch(2), 0);
    ck_assert_int_eq(fetch(1), 0);
    ck_assert_int_eq(fetch(1), 5);
    ck_assert(!w.done);
    ck_assert_int_eq(produce(3, NULL), 0);
    ck_assert_int_eq(fetch(2), 0); /* the held answer has not come: it asks from 0 */
    ck_assert_int_eq(st_log_end_offset(N[2].log), 8);
    deliver(2); /* the old answer for 0..4 arrives now: already there */
    deliver(2);
    ck_assert_int_eq(st_log_end_offset(N[2].log), 8);
    ck_assert(!w.done);
    ck_assert_int_eq(fetch(2), 8);
    ck_assert(w.done);
    ck_assert_int_eq(w.err, 0);
    rounds(2);
    assert_hw();
    assert_identical();
}
END_TEST

START_TEST(frozen_follower_shrunk_and_readmitted)
{
    MIN_INSYNC = 2;
    ck_assert_int_eq(produce(5, NULL), 0);
    rounds(2);
    ck_assert_int_eq(st_log_high_watermark(N[0].log), 5);
    N[2].frozen = 1;
    wres_t w;
    ck_assert_int_eq(produce(3, &w), 0);
    rounds(2);
    assert_hw();
    ck_assert_int_eq(st_log_high_watermark(N[0].log), 5); /* held by replica 2 */
    ck_assert(!w.done);
    tick(LAG / 2);
    rounds(1);
    ck_assert_int_eq(ST.nisr, 3);
    ck_assert(!w.done);
    tick(LAG / 2 + 1); /* replica 2 not caught up for over the lag time */
    ck_assert_int_eq(ST.nisr, 2);
    ck_assert(!rp_id_in(ST.isr, ST.nisr, 2));
    assert_hw();
    ck_assert_int_eq(st_log_high_watermark(N[0].log), 8); /* moves without it */
    ck_assert(w.done);
    ck_assert_int_eq(w.err, 0);
    /* two in sync is enough for min.insync.replicas=2 */
    ck_assert_int_eq(produce(2, &w), 0);
    rounds(2);
    ck_assert(w.done);
    ck_assert_int_eq(w.err, 0);
    ck_assert_int_eq(st_log_high_watermark(N[0].log), 10);

    /* back: the first fetch (from 5) brings it up to date but it is not in
     * sync yet; the next one (at the high watermark) re-admits it */
    N[2].frozen = 0;
    tick(10);
    ck_assert_int_eq(fetch(2), 5);
    ck_assert_int_eq(ST.nisr, 2);
    ck_assert_int_eq(fetch(2), 10);
    ck_assert_int_eq(ST.nisr, 3);
    ck_assert(rp_id_in(ST.isr, ST.nisr, 2));
    /* and acks=all waits for it again */
    ck_assert_int_eq(produce(1, &w), 0);
    ck_assert_int_eq(fetch(1), 10);
    ck_assert_int_eq(fetch(1), 11);
    ck_assert(!w.done);
    ck_assert_int_eq(fetch(2), 10);
    ck_assert_int_eq(fetch(2), 11);
    ck_assert(w.done);
    assert_hw();
    assert_identical();
}
END_TEST

START_TEST(min_insync_timeout_and_leadership)
{
    MIN_INSYNC = 3;
    wres_t w, t;
    ck_assert_int_eq(produce(5, &w), 0);
    rounds(1);
    N[2].frozen = 1;
    rounds(1);
    lag_out(); /* replica 2 out: the ISR (2) is below min.insync.replicas (3) */
    ck_assert_int_eq(ST.nisr, 2);
    ck_assert(w.done); /* the high watermark passed it, but with too few in sync */
    ck_assert_int_eq(w.err, SC_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND);
    int64_t leo = st_log_end_offset(N[0].log);
    ck_assert_int_eq(produce(1, &t), SC_ERR_NOT_ENOUGH_REPLICAS); /* refused before the append */
    ck_assert_int_eq(st_log_end_offset(N[0].log), leo);
    ck_assert_int_eq(produce(1, NULL), 0); /* acks=1 is not affected */

    /* a wait that nobody completes: REQUEST_TIMED_OUT at its deadline */
    MIN_INSYNC = 1;
    N[1].frozen = 1;
    ck_assert_int_eq(produce(1, &t), 0);
    ck_assert_int_eq(rp_isr_waits_deadline(&N[0].isr), NOW + TIMEOUT);
    NOW += TIMEOUT - 1;
    leader_progress();
    ck_assert(!t.done);
    NOW += 1;
    leader_progress();
    ck_assert(t.done);
    ck_assert_int_eq(t.err, SC_ERR_REQUEST_TIMED_OUT);

    /* leadership moves while a wait is pending: NOT_LEADER_OR_FOLLOWER */
    N[1].frozen = N[2].frozen = 0;
    ck_assert_int_eq(produce(1, &t), 0);
    kill_node(0);
    ck_assert(t.done);
    ck_assert_int_eq(t.err, SC_ERR_NOT_LEADER_OR_FOLLOWER);
    ck_assert_int_eq(ST.leader, 1);
}
END_TEST

/* A leader with a tail its followers never got dies; after the new leader
 * writes, the old one returns, truncates the tail by leader epoch, copies the
 * new leader's records, rejoins the ISR; all logs end identical. */
START_TEST(leader_change_divergent_tail)
{
    ck_assert_int_eq(produce(5, NULL), 0);
    rounds(2);
    N[1].frozen = N[2].frozen = 1;
    ck_assert_int_eq(produce(3, NULL), 0); /* acks=1: offsets 5..7 on replica 0 only */
    ck_assert_int_eq(st_log_end_offset(N[0].log), 8);
    ck_assert_int_eq(st_log_high_watermark(N[0].log), 5);
    kill_node(0);
    ck_assert_int_eq(ST.leader, 1);
    ck_assert_int_eq(ST.leader_epoch, 1);
    N[1].frozen = N[2].frozen = 0;
    wres_t w;
    ck_assert_int_eq(produce(4, &w), 0); /* offsets 5..8 at epoch 1 on replica 1 */
    rounds(2);
    ck_assert(w.done);
    ck_assert_int_eq(w.err, 0);
    ck_assert_int_eq(ST.nisr, 2);

    restart_node(0);
    ck_assert_int_eq(ST.leader, 1); /* a returning replica does not take over */
    ck_assert_int_eq(st_log_end_offset(N[0].log), 8);
    ck_assert_int_eq(fetch(0), 5); /* truncated to where epoch 0 ends on the leader */
    ck_assert_int_eq(st_log_end_offset(N[0].log), 9);
    ck_assert_int_eq(st_log_epoch_latest(N[0].log), 1);
    ck_assert(!rp_id_in(ST.isr, ST.nisr, 0));
    ck_assert_int_eq(fetch(0), 9);
    ck_assert(rp_id_in(ST.isr, ST.nisr, 0));
    assert_hw();
    assert_identical();
}
END_TEST

/* No in-sync replica alive: leaderless without unclean election; with it a
 * live out-of-sync replica leads (epoch + 1, ISR = it), the old leader's
 * records that it lacks are lost, and the old leader follows it after
 * truncating. */
START_TEST(unclean_election)
{
    ck_assert_int_eq(produce(5, NULL), 0);
    rounds(2);
    N[1].frozen = N[2].frozen = 1;
    lag_out();
    ck_assert_int_eq(ST.nisr, 1); /* the leader alone */
    wres_t w;
    ck_assert_int_eq(produce(3, &w), 0); /* acks=all with the ISR = {0} */
    ck_assert(w.done);
    ck_assert_int_eq(w.err, 0);
    ck_assert_int_eq(st_log_high_watermark(N[0].log), 8);
    N[1].frozen = N[2].frozen = 0;
    kill_node(0);
    ck_assert_int_eq(ST.leader, -1); /* clean: nobody may lead */
    ck_assert_int_eq(ST.nisr, 1);
    ck_assert_int_eq(ST.isr[0], 0);
    ck_assert_int_eq(control(), 0); /* and it stays so */
    UNCLEAN = 1;
    ck_assert_int_eq(control(), 2);
    ck_assert_int_eq(ST.leader, 1);
    ck_assert_int_eq(ST.nisr, 1);
    ck_assert_int_eq(ST.isr[0], 1);
    ck_assert_int_eq(ST.leader_epoch, 2);
    ck_assert_int_eq(st_log_end_offset(N[1].log), 5); /* 5..7 are gone */
    ck_assert_int_eq(produce(2, NULL), 0);
    rounds(2);
    restart_node(0);
    rounds(3);
    ck_assert_int_eq(ST.nisr, 3);
    assert_hw();
    assert_identical();
    ck_assert_int_eq(st_log_end_offset(N[0].log), 7);
}
END_TEST

/* A follower killed and restarted: the controller drops it from the ISR at
 * once (acks=all goes on without it), it reopens its log (recovery), catches
 * up from where its durable copy ends and rejoins. */
START_TEST(follower_restart_catches_up)
{
    MIN_INSYNC = 2;
    ck_assert_int_eq(produce(5, NULL), 0);
    rounds(2);
    kill_node(2);
    ck_assert_int_eq(ST.nisr, 2);
    ck_assert_int_eq(ST.leader, 0);
    ck_assert_int_eq(ST.leader_epoch, 0); /* a follower's loss is no leader change */
    wres_t w;
    for (int k = 0; k < 4; k++) {
        ck_assert_int_eq(produce(3, &w), 0);
        rounds(2);
        ck_assert(w.done);
        ck_assert_int_eq(w.err, 0);
    }
    restart_node(2);
    ck_assert_int_eq(ST.nisr, 2); /* back, not yet in sync */
    ck_assert_int_eq(st_log_end_offset(N[2].log), 5);
    ck_assert_int_eq(fetch(2), 5);
    ck_assert_int_eq(fetch(2), 17);
    ck_assert_int_eq(ST.nisr, 3);
    ck_assert_int_eq(produce(1, &w), 0);
    ck_assert_int_eq(fetch(1), 17);
    ck_assert_int_eq(fetch(1), 18);
    ck_assert(!w.done); /* it waits for replica 2 again */
    rounds(2);
    ck_assert(w.done);
    assert_hw();
    assert_identical();
}
END_TEST

/* A compacted leader: the cleaner removed whole batches (every key is written
 * again later), so its log has offset gaps. A follower that copies it from
 * scratch gets the same gaps (ST_APPEND_KEEP_OFFSETS) and the same bytes,
 * rejoins the ISR, and acks=all goes on across the gaps. */
START_TEST(compacted_leader_gaps)
{
    st_log_config_t cfg;
    st_log_config_default(&cfg);
    cfg.compact = 1;
    cfg.segment_bytes = 1024; /* rolls every few batches: closed segments to clean */
    cfg.retention_ms = -1;
    cfg.index_interval_bytes = 256;
    for (int i = 0; i < NR; i++)
        st_log_set_config(N[i].log, &cfg);
    N[2].frozen = 1; /* replica 2 copies nothing until the leader is cleaned */
    for (int k = 0; k < 12; k++) {
        ck_assert_int_eq(produce(5, NULL), 0); /* keys k0..k4 every time */
        rounds(2);
    }
    ck_assert_int_gt(st_log_segment_count(N[0].log), 2);
    ck_assert_int_eq(st_log_end_offset(N[1].log), 60);
    lag_out();
    ck_assert_int_eq(ST.nisr, 2);
    st_cleaner_opts_t opts = {1u << 20, NULL, NULL};
    st_clean_result_t res;
    ck_assert_int_eq(st_cleaner_clean(N[0].log, sc_now_ms(), &opts, &res), 0);
    ck_assert_int_lt(res.records_out, res.records_in);
    /* the leader's first batch now starts past 0 */
    static uint8_t first[ANS_MAX];
    size_t flen = 0;
    ck_assert_int_eq(st_log_read_into(N[0].log, 0, first, sizeof first, INT64_MAX, &flen), 0);
    ck_assert_uint_gt(flen, 0);
    ck_assert_int_gt((int64_t)sc_load_be64(first), 0);

    N[2].frozen = 0;
    for (int k = 0; k < 8 && !rp_id_in(ST.isr, ST.nisr, 2); k++)
        fetch(2);
    ck_assert(rp_id_in(ST.isr, ST.nisr, 2));
    ck_assert_int_eq(st_log_end_offset(N[2].log), 60);
    wres_t w;
    ck_assert_int_eq(produce(5, &w), 0);
    rounds(2);
    ck_assert(w.done);
    ck_assert_int_eq(w.err, 0);
    assert_hw();
    ck_assert_int_eq(st_log_high_watermark(N[0].log), 65);
    /* replica 2 holds the leader's gapped log byte for byte; replica 1 (which
     * copied before the clean and cleans on its own schedule) the same offsets */
    uint8_t *want, *got;
    size_t wl = log_bytes(N[0].log, &want), gl = log_bytes(N[2].log, &got);
    ck_assert_uint_eq(gl, wl);
    ck_assert(memcmp(got, want, wl) == 0);
    free(want);
    free(got);
    ck_assert_int_eq(st_log_end_offset(N[1].log), 65);
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("rp_sm");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, hw_min_over_isr_and_acks_all);
    tcase_add_test(tc, dropped_and_delayed_answers);
    tcase_add_test(tc, frozen_follower_shrunk_and_readmitted);
    tcase_add_test(tc, min_insync_timeout_and_leadership);
    tcase_add_test(tc, leader_change_divergent_tail);
    tcase_add_test(tc, unclean_election);
    tcase_add_test(tc, follower_restart_catches_up);
    tcase_add_test(tc, compacted_leader_gaps);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return t_run_suite(make_suite()); }
