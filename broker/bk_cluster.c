/*
 * bk_cluster -- cluster mode wiring (metadata.store=zookeeper; see
 * docs/replication.md). Everything runs on shard 0:
 *
 *   open   (server_load, before the topic registry): the ZooKeeper session;
 *          the cluster id stored there wins over a fresh meta.properties.
 *   start  (after the listeners are bound): registers /brokers/ids/<id>,
 *          arms a uv_async that ZooKeeper watches poke (from the client's
 *          thread) and a fallback timer, and refreshes once.
 *   refresh (on a watch or every BK_CLUSTER_POLL_MS): live brokers; the
 *          controller (elected here when there is none); the topic registry
 *          (other brokers' CreateTopics / DeleteTopics, so local logs follow);
 *          on the controller, the duty below; then every partition's state
 *          into the view that Metadata, Produce and Fetch read.
 *   controller duty: a partition without a state gets replicas
 *          (rp_assign_replicas over the live brokers, rack-aware) and an
 *          initial leader / ISR; a partition whose leader or ISR members died
 *          gets the next state of rp_pstate_next. Every write is the fenced,
 *          versioned rp_zk_pstate_write.
 *   stop   (begin_stop): resigns the controller role and closes the session,
 *          so the ephemeral nodes go at once rather than after the timeout.
 *
 * The partitions this broker follows go to the follower fetcher
 * (bk_follow.c) after every refresh.
 *
 * The leader's side of replication is rp_isr (replication/rp_isr.h, pure,
 * unit-tested with a fake transport in test_rp_sm): one rp_isr_t per
 * partition this broker leads (bk_lpart_t) holds its followers' fetch
 * offsets, their last caught-up times and the acks=all waits. Here it is
 * wired to the logs and ZooKeeper: isr_duty writes the ISR rp_isr_next
 * decides, update_hw sets rp_isr_hw's high watermark and answers the waits
 * it completes, and a timer (wtimer) answers waits at their deadline.
 *
 * Controlled shutdown on stop (controlled_shutdown); preferred-leader
 * election by the controller (control_one, auto.leader.rebalance.enable).
 *
 * The group coordinator follows the leaders of __consumer_offsets (bk_group.c
 * reads bk__cluster_leader; commits wait through bk__cluster_wait_isr_cb).
 */
#include "bk_int.h"

#include "rp_isr.h"
#include "rp_zk.h"
#include "sc_err.h"
#include "sc_log.h"
#include "sc_mem.h"
#include "sc_time.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SUB "cluster"
#define BK_CLUSTER_POLL_MS 2000
#define BK_CLUSTER_MAX_BROKERS 256

typedef struct {
    char name[BK_TOPIC_NAME_MAX + 1];
    int32_t nparts;
    rp_pstate_t *st; /* [nparts] */
    int *have;       /* [nparts]: a state is stored */
    int *ver;        /* [nparts]: its znode version */
} bk_ctopic_t;

/* A partition this broker leads (or led): the leader's state of it. */
typedef struct bk_lpart {
    struct bk_lpart *next;
    char topic[BK_TOPIC_NAME_MAX + 1];
    int32_t partition;
    rp_isr_t isr; /* followers, acks=all waits; isr.leader_epoch = the epoch led */
} bk_lpart_t;

struct bk_cluster {
    bk_server_t *srv;
    bk_lpart_t *led; /* partitions this broker leads or led */
    rp_zk_t *zk;
    uv_async_t async;
    uv_timer_t timer;
    uv_timer_t wtimer;  /* the earliest acks=all deadline */
    int64_t wtimer_at;  /* when it fires (monotonic ms), INT64_MAX = not armed */
    int handles; /* async + timer + wtimer initialised */
    int stopped;
    atomic_int poked;
    rp_zk_broker_t brokers[BK_CLUSTER_MAX_BROKERS];
    int nbrokers;
    int32_t controller_id, controller_epoch;
    int64_t last_preferred_ms; /* controller: last preferred-leader election */
    int preferred_due;         /* this refresh runs it */
    bk_ctopic_t *topics;
    size_t ntopics;
    rp_broker_t self; /* registration, kept for a new session */
    char host[256];
    int port;
    int registered;
};

static void notify(void *arg)
{
    bk_cluster_t *c = arg;
    atomic_store(&c->poked, 1);
    if (c->handles && !c->stopped)
        uv_async_send(&c->async);
}

int bk__cluster_open(bk_server_t *s)
{
    const bk_config_t *cfg = s->cfg;
    bk_cluster_t *c = sc_calloc(1, sizeof *c);
    if (!c)
        return SC_ERR_NO_MEMORY;
    c->srv = s;
    c->controller_id = -1;
    int rc = rp_zk_open(cfg->zookeeper_connect, cfg->zookeeper_session_timeout_ms,
                        cfg->zookeeper_session_timeout_ms, &c->zk);
    if (rc) {
        SC_ERROR(SUB, "zookeeper.connect=%s: %s", cfg->zookeeper_connect, sc_err_str(rc));
        sc_free(c);
        return rc;
    }
    rp_zk_set_notify(c->zk, notify, c);
    s->cluster = c;
    char id[64];
    rc = rp_zk_cluster_id(c->zk, id, sizeof id);
    if (rc == 0 && strlen(id) < sizeof s->cluster_id)
        memcpy(s->cluster_id, id, strlen(id) + 1); /* meta.properties must match it */
    else if (rc && rc != SC_ERR_NOT_FOUND)
        return rc;
    return 0;
}

rp_zk_t *bk__cluster_zk(bk_server_t *s) { return s->cluster ? s->cluster->zk : NULL; }

static void topics_free(bk_cluster_t *c)
{
    for (size_t i = 0; i < c->ntopics; i++) {
        sc_free(c->topics[i].st);
        sc_free(c->topics[i].have);
        sc_free(c->topics[i].ver);
    }
    sc_free(c->topics);
    c->topics = NULL;
    c->ntopics = 0;
}

static int is_live(const bk_cluster_t *c, int32_t id)
{
    for (int i = 0; i < c->nbrokers; i++)
        if (c->brokers[i].b.id == id)
            return 1;
    return 0;
}

/* The ids of the live brokers into live[BK_CLUSTER_MAX_BROKERS]; their count. */
static int live_ids(const bk_cluster_t *c, int32_t *live)
{
    for (int i = 0; i < c->nbrokers; i++)
        live[i] = c->brokers[i].b.id;
    return c->nbrokers;
}

/* A topic's setting of a boolean key (its override, else the broker's). */
static int topic_bool(const bk_server_t *s, const char *topic, const char *key, int dflt)
{
    const rp_meta_topic_t *tp = bk_topics_lookup(s->topics, topic, strlen(topic));
    const char *v = tp ? rp_meta_topic_config(tp, key) : NULL;
    return v ? strcmp(v, "true") == 0 : dflt;
}

/* The controller's work on one partition (state as read: have/ver/st). */
static void control_one(bk_cluster_t *c, const char *topic, int32_t p, int16_t rf, int have,
                        int ver, const rp_pstate_t *cur, int32_t start)
{
    int32_t live[BK_CLUSTER_MAX_BROKERS];
    rp_broker_t bs[BK_CLUSTER_MAX_BROKERS];
    live_ids(c, live);
    for (int i = 0; i < c->nbrokers; i++)
        bs[i] = c->brokers[i].b;
    int unclean = topic_bool(c->srv, topic, "unclean.leader.election.enable",
                             c->srv->cfg->unclean_leader_election_enable);
    rp_pstate_t next;
    int rc, how = 1;
    if (have && c->preferred_due) { /* preferred-leader election (auto.leader.rebalance) */
        rp_pstate_t n1;
        if (rp_pstate_next(cur, live, c->nbrokers, c->controller_epoch, unclean, &n1) == 0 &&
            rp_pstate_preferred(cur, live, c->nbrokers, c->controller_epoch, &next)) {
            if ((rc = rp_zk_pstate_write(c->zk, topic, p, &next, ver)) == 0)
                SC_INFO(SUB, "%s-%d: back to its preferred leader %d (epoch %d)", topic, p,
                        next.leader, next.leader_epoch);
            else
                SC_WARN(SUB, "%s-%d: preferred leader write: %s", topic, p, sc_err_str(rc));
            return;
        }
    }
    if (!have) {
        int32_t rep[RP_RF_MAX];
        if ((rc = rp_assign_replicas(bs, (size_t)c->nbrokers, p, rf, start, rep)) != 0) {
            SC_WARN(SUB, "%s-%d: cannot assign %d replica(s) over %d live broker(s): %s", topic, p,
                    rf, c->nbrokers, sc_err_str(rc));
            return;
        }
        rp_pstate_init(&next, rep, rf, live, c->nbrokers, c->controller_epoch);
        rc = rp_zk_pstate_write(c->zk, topic, p, &next, -1);
    } else {
        if (!(how = rp_pstate_next(cur, live, c->nbrokers, c->controller_epoch, unclean, &next)))
            return;
        rc = rp_zk_pstate_write(c->zk, topic, p, &next, ver);
    }
    if (rc)
        SC_WARN(SUB, "%s-%d: state write: %s", topic, p, sc_err_str(rc));
    else if (how == 2)
        SC_WARN(SUB, "%s-%d: unclean leader election (unclean.leader.election.enable): no "
                     "in-sync replica is alive, so replica %d, not in the ISR, leads at epoch "
                     "%d; records only the old ISR had may be lost", topic, p, next.leader,
                next.leader_epoch);
    else
        SC_INFO(SUB, "%s-%d: leader %d epoch %d, isr of %d", topic, p, next.leader,
                next.leader_epoch, next.nisr);
}

static const bk_ctopic_t *ctopic(const bk_cluster_t *c, const char *name, size_t len);

/* The leader's entry of topic-p (created when asked and missing), or NULL. */
static bk_lpart_t *lpart(bk_cluster_t *c, const char *topic, size_t len, int32_t p, int create)
{
    for (bk_lpart_t *l = c->led; l; l = l->next)
        if (l->partition == p && strlen(l->topic) == len && memcmp(l->topic, topic, len) == 0)
            return l;
    if (!create || len > BK_TOPIC_NAME_MAX)
        return NULL;
    bk_lpart_t *l = sc_calloc(1, sizeof *l);
    if (!l)
        return NULL;
    memcpy(l->topic, topic, len);
    l->partition = p;
    rp_isr_init(&l->isr);
    l->next = c->led;
    c->led = l;
    return l;
}

/* topic-p's partition state, or NULL when there is none. */
static const rp_pstate_t *pstate(const bk_cluster_t *c, const char *topic, size_t len, int32_t p)
{
    const bk_ctopic_t *t = ctopic(c, topic, len);
    return t && p >= 0 && p < t->nparts && t->have[p] ? &t->st[p] : NULL;
}

/* The leader's ISR duty on partition p of t if this broker leads it
 * (rp_isr_next: shrink after replica.lag.time.max.ms behind, re-admit when
 * caught up). Written with a versioned set; a clash with the controller is
 * retried on the next refresh. */
static void isr_duty(bk_cluster_t *c, bk_ctopic_t *t, int32_t p)
{
    bk_server_t *s = c->srv;
    int32_t me = s->cfg->node_id;
    rp_pstate_t *st = &t->st[p];
    bk_lpart_t *lp = t->have[p] && st->leader == me ? lpart(c, t->name, strlen(t->name), p, 0)
                                                    : NULL;
    int32_t live[BK_CLUSTER_MAX_BROKERS];
    rp_pstate_t n;
    if (!lp || !rp_isr_next(&lp->isr, st, me, live, live_ids(c, live),
                            s->cfg->replica_lag_time_max_ms, sc_mono_ms(), &n))
        return;
    int rc = rp_zk_pstate_write_leader(c->zk, t->name, p, &n, t->ver[p]);
    if (rc) {
        SC_DEBUG(SUB, "%s-%d: ISR write: %s (retried)", t->name, p, sc_err_str(rc));
        return;
    }
    for (int k = 0; k < st->nisr; k++)
        if (!rp_id_in(n.isr, n.nisr, st->isr[k]))
            SC_INFO(SUB, "%s-%d: replica %d not caught up for over %lld ms: out of the ISR",
                    t->name, p, st->isr[k], (long long)s->cfg->replica_lag_time_max_ms);
    for (int k = 0; k < n.nisr; k++)
        if (!rp_id_in(st->isr, st->nisr, n.isr[k]))
            SC_INFO(SUB, "%s-%d: replica %d caught up: back in the ISR", t->name, p, n.isr[k]);
    *st = n;
    t->ver[p]++;
}

static int64_t min_insync(const bk_server_t *s, const char *topic, size_t len)
{
    int64_t min = s->cfg->min_insync_replicas;
    const rp_meta_topic_t *tp = bk_topics_lookup(s->topics, topic, len);
    const char *v = tp ? rp_meta_topic_config(tp, "min.insync.replicas") : NULL;
    if (v)
        min = strtoll(v, NULL, 10);
    return min;
}

static void on_wtimer(uv_timer_t *h);

/* Makes the wait timer fire by `at` (monotonic ms). */
static void wtimer_arm(bk_cluster_t *c, int64_t at)
{
    if (!c->handles || c->stopped || at >= c->wtimer_at)
        return;
    int64_t now = sc_mono_ms();
    c->wtimer_at = at;
    uv_timer_start(&c->wtimer, on_wtimer, at > now ? (uint64_t)(at - now) : 0, 0);
}

/* Answers lp's acks=all waits that are over (all of them once stopped or
 * no longer leading: NOT_LEADER_OR_FOLLOWER). */
static void check_waits(bk_cluster_t *c, bk_lpart_t *lp)
{
    if (!lp->isr.waits)
        return;
    bk_server_t *s = c->srv;
    size_t len = strlen(lp->topic);
    const rp_pstate_t *st = pstate(c, lp->topic, len, lp->partition);
    bk_part_t *bp = bk__part_find(s, lp->topic, len, lp->partition);
    int leading = !c->stopped && bp && st && st->leader == s->cfg->node_id;
    rp_isr_waits_check(&lp->isr, leading, bp ? st_log_high_watermark(bp->log) : 0,
                       st ? st->nisr : 0, min_insync(s, lp->topic, len), sc_mono_ms());
}

static void check_all_waits(bk_cluster_t *c)
{
    for (bk_lpart_t *l = c->led; l; l = l->next)
        check_waits(c, l);
}

/* The earliest deadline has come: answer what timed out, re-arm for the next. */
static void on_wtimer(uv_timer_t *h)
{
    bk_cluster_t *c = h->data;
    c->wtimer_at = INT64_MAX;
    check_all_waits(c);
    int64_t next = INT64_MAX;
    for (bk_lpart_t *l = c->led; l; l = l->next) {
        int64_t d = rp_isr_waits_deadline(&l->isr);
        if (d < next)
            next = d;
    }
    if (next < INT64_MAX)
        wtimer_arm(c, next);
}

/* The high watermark of p: on a partition this broker leads, rp_isr_hw (the
 * committed offset capped by every other ISR member's fetch offset); elsewhere
 * the committed offset. Only ever raised. Parked fetches are woken (followers
 * read up to the committed offset, which may have moved), p's waits are
 * checked. */
static void update_hw(bk_cluster_t *c, bk_part_t *p, int wake)
{
    bk_server_t *s = c->srv;
    size_t len = strlen(p->topic);
    int64_t hw = st_log_committed_offset(p->log), cur = st_log_high_watermark(p->log);
    const rp_pstate_t *st = pstate(c, p->topic, len, p->partition);
    bk_lpart_t *lp = lpart(c, p->topic, len, p->partition, 0);
    if (st && st->leader == s->cfg->node_id) {
        static const rp_isr_t none = {.leader_epoch = -1}; /* no entry: nobody has fetched */
        hw = rp_isr_hw(lp ? &lp->isr : &none, st, s->cfg->node_id, hw, cur);
    }
    if (hw > cur)
        st_log_set_high_watermark(p->log, hw);
    p->shard->hw_moved = 1;
    if (lp)
        check_waits(c, lp);
    if (wake)
        bk__fetch_wake(p->shard);
}

void bk__cluster_progress(bk_server_t *s, bk_part_t *p) { update_hw(s->cluster, p, 0); }

int bk__cluster_wait_isr_cb(bk_server_t *s, bk_part_t *p, int64_t end, int64_t deadline_ms,
                            void (*done)(void *arg, int16_t err), void *arg)
{
    bk_cluster_t *c = s->cluster;
    if (!c || st_log_high_watermark(p->log) >= end)
        return 0;
    bk_lpart_t *lp = lpart(c, p->topic, strlen(p->topic), p->partition, 1);
    if (!lp || rp_isr_wait_add(&lp->isr, end, deadline_ms, done, arg) != 0)
        return 0; /* answered without waiting rather than lost */
    wtimer_arm(c, deadline_ms);
    return 1;
}

int bk__cluster_wait_isr(bk_server_t *s, bk_part_t *p, int64_t end, int64_t deadline_ms,
                         void *arg)
{
    return bk__cluster_wait_isr_cb(s, p, end, deadline_ms, bk__produce_isr_done, arg);
}

int bk__cluster_live_brokers(const bk_server_t *s) { return s->cluster ? s->cluster->nbrokers : 0; }

int bk__cluster_broker_addr(const bk_server_t *s, int32_t id, char *host, size_t cap, int *port)
{
    const bk_cluster_t *c = s->cluster;
    for (int i = 0; c && i < c->nbrokers; i++)
        if (c->brokers[i].b.id == id) {
            snprintf(host, cap, "%s", c->brokers[i].host);
            *port = c->brokers[i].port;
            return 0;
        }
    return -1;
}

void bk__cluster_follower_fetch(bk_server_t *s, const char *topic, size_t len, int32_t p,
                                int32_t replica, int64_t offset)
{
    bk_cluster_t *c = s->cluster;
    bk_ctopic_t *t = (bk_ctopic_t *)ctopic(c, topic, len);
    const rp_pstate_t *st = pstate(c, topic, len, p);
    if (!st || st->leader != s->cfg->node_id)
        return;
    bk_lpart_t *lp = lpart(c, topic, len, p, 0); /* made by refresh when it saw us lead */
    bk_part_t *bp = bk__part_find(s, topic, len, p);
    if (!lp || !bp || lp->isr.leader_epoch != st->leader_epoch)
        return;
    int in_sync = rp_isr_fetch(&lp->isr, replica, offset, st_log_high_watermark(bp->log),
                              sc_mono_ms());
    if (in_sync < 0)
        return; /* not a replica of it */
    if (in_sync && !rp_id_in(st->isr, st->nisr, replica))
        isr_duty(c, t, p); /* re-admit now rather than at the next refresh */
    update_hw(c, bp, 1); /* its fetch offset may raise the high watermark */
}

/* The partitions this broker replicates but does not lead, to the fetcher. */
static void publish_follow(bk_cluster_t *c)
{
    bk_server_t *s = c->srv;
    size_t cap = 0, n = 0;
    for (size_t i = 0; i < c->ntopics; i++)
        cap += (size_t)c->topics[i].nparts;
    bk_follow_part_t *fp = cap ? sc_calloc(cap, sizeof *fp) : NULL;
    if (cap && !fp)
        return;
    int32_t me = s->cfg->node_id;
    for (size_t i = 0; i < c->ntopics; i++) {
        const bk_ctopic_t *t = &c->topics[i];
        for (int32_t p = 0; p < t->nparts; p++) {
            const rp_pstate_t *st = &t->st[p];
            if (!t->have[p] || st->leader < 0 || st->leader == me ||
                !rp_id_in(st->replicas, st->nreplicas, me))
                continue;
            for (int b = 0; b < c->nbrokers; b++)
                if (c->brokers[b].b.id == st->leader) {
                    fp[n].topic = t->name;
                    fp[n].partition = p;
                    fp[n].leader = st->leader;
                    fp[n].leader_epoch = st->leader_epoch;
                    fp[n].host = c->brokers[b].host;
                    fp[n].port = c->brokers[b].port;
                    n++;
                }
        }
    }
    bk__follow_publish(s, fp, n);
    sc_free(fp);
}

static void refresh(bk_cluster_t *c)
{
    bk_server_t *s = c->srv;
    atomic_store(&c->poked, 0);
    if (rp_zk_session_state(c->zk) || !c->registered) {
        /* Session expired (e.g. the process was paused longer than
         * zookeeper.session.timeout.ms): the registration and any controller
         * role went with it. New session, register again; until then this
         * broker leads nothing. */
        if (rp_zk_session_state(c->zk)) {
            SC_WARN(SUB, "ZooKeeper session expired; starting a new one");
            c->registered = 0;
            c->nbrokers = 0;
            c->controller_id = -1;
            topics_free(c);
            publish_follow(c); /* follows nothing */
            if (rp_zk_reconnect(c->zk) != 0)
                return; /* next tick */
        }
        if (rp_zk_register(c->zk, &c->self, c->host, c->port, 0) != 0)
            return; /* the old node is still there: next tick */
        c->registered = 1;
    }
    int n = 0;
    if (rp_zk_brokers(c->zk, c->brokers, BK_CLUSTER_MAX_BROKERS, &n) == 0)
        c->nbrokers = n;
    int32_t id = -1, epoch = 0;
    int rc = rp_zk_controller(c->zk, &id, &epoch);
    if (rc == SC_ERR_NOT_FOUND && rp_zk_elect(c->zk, s->cfg->node_id, &epoch) == 0)
        id = s->cfg->node_id, rc = 0;
    else if (rc == SC_ERR_NOT_FOUND)
        rc = rp_zk_controller(c->zk, &id, &epoch);
    if (rc == 0) {
        if (id != c->controller_id || epoch != c->controller_epoch)
            SC_INFO(SUB, "controller is broker %d (epoch %d)", id, epoch);
        c->controller_id = id;
        c->controller_epoch = epoch;
    } else
        c->controller_id = -1;
    int controller = c->controller_id == s->cfg->node_id && rp_zk_is_controller(c->zk);
    c->preferred_due = 0;
    if (controller && s->cfg->auto_leader_rebalance_enable) {
        int64_t now = sc_mono_ms();
        if (!c->last_preferred_ms)
            c->last_preferred_ms = now; /* first run one interval after taking the role */
        else if (now - c->last_preferred_ms >= s->cfg->leader_imbalance_check_interval_seconds * 1000) {
            c->preferred_due = 1;
            c->last_preferred_ms = now;
        }
    }

    if ((rc = bk_topics_reload(s->topics)) != 0)
        SC_WARN(SUB, "re-reading topics: %s", sc_err_str(rc));

    /* every partition's state (and the controller's duty on it) */
    size_t nt = bk_topics_count(s->topics);
    bk_ctopic_t *ts = nt ? sc_calloc(nt, sizeof *ts) : NULL;
    if (nt && !ts)
        return;
    for (size_t i = 0; i < nt; i++) {
        int32_t parts;
        const char *name = bk_topics_get(s->topics, i, &parts);
        const rp_meta_topic_t *tp = bk_topics_lookup(s->topics, name, strlen(name));
        bk_ctopic_t *t = &ts[i];
        snprintf(t->name, sizeof t->name, "%s", name);
        t->st = sc_calloc((size_t)parts, sizeof *t->st);
        t->have = sc_calloc((size_t)parts, sizeof *t->have);
        t->ver = sc_calloc((size_t)parts, sizeof *t->ver);
        if (!t->st || !t->have || !t->ver)
            continue; /* nparts stays 0: shown as unavailable */
        t->nparts = parts;
        int32_t start = tp ? (int32_t)(tp->id[0] | tp->id[1] << 8) : 0;
        for (int32_t p = 0; p < parts; p++) {
            rc = rp_zk_pstate_get(c->zk, name, p, &t->st[p], &t->ver[p]);
            t->have[p] = rc == 0;
            if (rc && rc != SC_ERR_NOT_FOUND) {
                /* ZooKeeper unreachable for a moment: keep what we knew, so the
                 * data path does not turn every leader away meanwhile */
                const bk_ctopic_t *o = ctopic(c, name, strlen(name));
                if (o && p < o->nparts && o->have[p]) {
                    t->st[p] = o->st[p];
                    t->ver[p] = o->ver[p];
                    t->have[p] = 1;
                }
            }
            if (controller && (rc == 0 || rc == SC_ERR_NOT_FOUND)) {
                control_one(c, name, p, tp ? tp->replication_factor : 1, t->have[p], t->ver[p],
                            &t->st[p], start);
                controller = rp_zk_is_controller(c->zk); /* fenced meanwhile? */
                if (rp_zk_pstate_get(c->zk, name, p, &t->st[p], &t->ver[p]) == 0)
                    t->have[p] = 1;
            }
        }
    }
    topics_free(c);
    c->topics = ts;
    c->ntopics = nt;
    /* leadership or ISR may have changed: the leader's state, producer state,
     * ISR, high watermarks, waits */
    int64_t now = sc_mono_ms();
    for (size_t i = 0; i < c->ntopics; i++) {
        bk_ctopic_t *t = &c->topics[i];
        for (int32_t p = 0; p < t->nparts; p++) {
            bk_part_t *bp = bk__part_find(s, t->name, strlen(t->name), p);
            if (!bp)
                continue;
            bk_lpart_t *lp = t->have[p] && t->st[p].leader == s->cfg->node_id
                                 ? lpart(c, t->name, strlen(t->name), p, 1)
                                 : NULL;
            if (lp && rp_isr_lead(&lp->isr, &t->st[p], s->cfg->node_id, now)) {
                bp->npids = 0; /* we lead it anew: the producers' state from the log */
                bk__pids_rebuild(bp);
            }
            isr_duty(c, t, p);
            update_hw(c, bp, 0);
        }
    }
    check_all_waits(c);
    bk__fetch_wake(&s->shard0);
    publish_follow(c);
}

static void on_async(uv_async_t *h) { refresh(h->data); }

static void on_timer(uv_timer_t *h) { refresh(h->data); }

int bk__cluster_start(bk_server_t *s)
{
    bk_cluster_t *c = s->cluster;
    if (!c)
        return 0;
    const bk_config_t *cfg = s->cfg;
    char host[256];
    int port;
    bk__advertised_address(s, NULL, host, sizeof host, &port);
    if (!*host || strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0)
        gethostname(host, sizeof host);
    if (port == 0 && s->listen[0].open) {
        struct sockaddr_storage ss;
        int len = sizeof ss;
        if (uv_tcp_getsockname(&s->listen[0].tcp, (struct sockaddr *)&ss, &len) == 0)
            port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                  : ((struct sockaddr_in *)&ss)->sin_port);
    }
    memset(&c->self, 0, sizeof c->self);
    c->self.id = cfg->node_id;
    snprintf(c->self.rack, sizeof c->self.rack, "%s", cfg->broker_rack);
    snprintf(c->host, sizeof c->host, "%s", host);
    c->port = port;
    int rc = rp_zk_register(c->zk, &c->self, host, port, cfg->zookeeper_session_timeout_ms + 2000);
    if (rc)
        return rc;
    c->registered = 1;
    uv_async_init(&s->shard0.loop, &c->async, on_async);
    c->async.data = c;
    uv_timer_init(&s->shard0.loop, &c->timer);
    c->timer.data = c;
    uv_timer_init(&s->shard0.loop, &c->wtimer);
    c->wtimer.data = c;
    c->wtimer_at = INT64_MAX;
    c->handles = 1;
    if ((rc = bk__follow_start(s)) != 0)
        return rc;
    refresh(c);
    uv_timer_start(&c->timer, on_timer, BK_CLUSTER_POLL_MS, BK_CLUSTER_POLL_MS);
    return 0;
}

/* Controlled shutdown (Kafka's, in ZooKeeper terms): give up the
 * registration so the controller moves every partition this broker leads to
 * another ISR member (and drops it from the ISRs), and wait until the stored
 * states say so -- bounded by BK_CLUSTER_SHUTDOWN_MS. Partitions with no
 * other ISR member cannot move (no unclean election) and are not waited
 * for. Runs on shard 0 from begin_stop: nothing else is served meanwhile. */
#define BK_CLUSTER_SHUTDOWN_MS 10000
static void controlled_shutdown(bk_cluster_t *c)
{
    bk_server_t *s = c->srv;
    int32_t me = s->cfg->node_id;
    size_t led = 0;
    for (size_t i = 0; i < c->ntopics; i++)
        for (int32_t p = 0; p < c->topics[i].nparts; p++) {
            const rp_pstate_t *st = &c->topics[i].st[p];
            led += c->topics[i].have[p] && st->leader == me && st->nisr > 1;
        }
    if (rp_zk_deregister(c->zk, me) != 0 || led == 0) {
        SC_INFO(SUB, "controlled shutdown: %zu partition(s) to move", led);
        return;
    }
    SC_INFO(SUB, "controlled shutdown: moving the leadership of %zu partition(s)", led);
    int64_t t0 = sc_mono_ms();
    size_t left = led;
    while (left && sc_mono_ms() - t0 < BK_CLUSTER_SHUTDOWN_MS) {
        usleep(100 * 1000);
        left = 0;
        for (size_t i = 0; i < c->ntopics; i++)
            for (int32_t p = 0; p < c->topics[i].nparts; p++) {
                const rp_pstate_t *st = &c->topics[i].st[p];
                if (!c->topics[i].have[p] || st->leader != me || st->nisr <= 1)
                    continue;
                rp_pstate_t now;
                int ver;
                if (rp_zk_pstate_get(c->zk, c->topics[i].name, p, &now, &ver) == 0 &&
                    now.leader == me)
                    left++;
            }
    }
    if (left)
        SC_WARN(SUB, "controlled shutdown: %zu partition(s) still led here after %d ms; "
                     "stopping anyway", left, BK_CLUSTER_SHUTDOWN_MS);
    else
        SC_INFO(SUB, "controlled shutdown: leadership moved in %lld ms",
                (long long)(sc_mono_ms() - t0));
}

void bk__cluster_stop(bk_server_t *s)
{
    bk_cluster_t *c = s->cluster;
    if (!c || c->stopped)
        return;
    c->stopped = 1;
    if (c->handles) {
        uv_close((uv_handle_t *)&c->async, NULL);
        uv_close((uv_handle_t *)&c->timer, NULL);
        uv_close((uv_handle_t *)&c->wtimer, NULL);
    }
    rp_zk_resign(c->zk);
    check_all_waits(c); /* stopped: acks=all still waiting get NOT_LEADER_OR_FOLLOWER */
    if (s->cfg->controlled_shutdown_enable && c->registered)
        controlled_shutdown(c);
    bk__follow_stop(s);
}

void bk__cluster_free(bk_server_t *s)
{
    bk_cluster_t *c = s->cluster;
    if (!c)
        return;
    bk__follow_free(s);
    rp_zk_set_notify(c->zk, NULL, NULL);
    rp_zk_close(c->zk); /* ephemeral nodes (registration) go with the session */
    topics_free(c);
    while (c->led) {
        bk_lpart_t *l = c->led;
        c->led = l->next;
        rp_isr_fini(&l->isr); /* answered at stop */
        sc_free(l);
    }
    sc_free(c);
    s->cluster = NULL;
}

/* ---- what handlers read ------------------------------------------------------------ */

static const bk_ctopic_t *ctopic(const bk_cluster_t *c, const char *name, size_t len)
{
    for (size_t i = 0; i < c->ntopics; i++)
        if (strlen(c->topics[i].name) == len && memcmp(c->topics[i].name, name, len) == 0)
            return &c->topics[i];
    return NULL;
}

int32_t bk__cluster_leader(const bk_server_t *s, const char *topic, size_t len, int32_t p)
{
    const bk_cluster_t *c = s->cluster;
    const bk_ctopic_t *t = c ? ctopic(c, topic, len) : NULL;
    if (!t || p < 0 || p >= t->nparts || !t->have[p])
        return -1;
    return t->st[p].leader;
}

int32_t bk__cluster_leader_epoch(const bk_server_t *s, const char *topic, size_t len, int32_t p)
{
    const bk_cluster_t *c = s->cluster;
    const bk_ctopic_t *t = c ? ctopic(c, topic, len) : NULL;
    if (!t || p < 0 || p >= t->nparts || !t->have[p])
        return 0;
    return t->st[p].leader_epoch;
}

int bk__cluster_not_leader(const bk_server_t *s, const char *topic, size_t len, int32_t p)
{
    return s->cluster && bk__cluster_leader(s, topic, len, p) != s->cfg->node_id;
}

int bk__cluster_isr_short(const bk_server_t *s, const char *topic, size_t len, int32_t p)
{
    const rp_pstate_t *st = s->cluster ? pstate(s->cluster, topic, len, p) : NULL;
    /* no state (or not cluster mode): answered elsewhere */
    return st && st->nisr < min_insync(s, topic, len);
}

void bk__cluster_write_brokers(bk_server_t *s, sc_kw_t *w, int v)
{
    bk_cluster_t *c = s->cluster;
    sc_kw_array_len(w, c->nbrokers);
    for (int i = 0; i < c->nbrokers; i++) {
        const rp_zk_broker_t *b = &c->brokers[i];
        sc_kw_i32(w, b->b.id);
        sc_kw_cstr(w, 0, b->host);
        sc_kw_i32(w, b->port);
        if (v >= 1) {
            if (b->b.rack[0])
                sc_kw_cstr(w, 0, b->b.rack);
            else
                sc_kw_string(w, NULL, 0);
        }
    }
}

int32_t bk__cluster_controller(const bk_server_t *s) { return s->cluster->controller_id; }

void bk__cluster_write_partitions(bk_server_t *s, sc_kw_t *w, int v, const char *name, size_t len,
                                  int32_t partitions)
{
    const bk_cluster_t *c = s->cluster;
    const bk_ctopic_t *t = ctopic(c, name, len);
    sc_kw_array_len(w, partitions);
    for (int32_t p = 0; p < partitions; p++) {
        const rp_pstate_t *st = t && p < t->nparts && t->have[p] ? &t->st[p] : NULL;
        int16_t err = !st || st->leader < 0 ? SC_ERR_LEADER_NOT_AVAILABLE : 0;
        sc_kw_i16(w, err);
        sc_kw_i32(w, p);
        sc_kw_i32(w, st ? st->leader : -1);
        if (v >= 7)
            sc_kw_i32(w, st ? st->leader_epoch : -1);
        sc_kw_array_len(w, st ? st->nreplicas : 0);
        for (int i = 0; st && i < st->nreplicas; i++)
            sc_kw_i32(w, st->replicas[i]);
        sc_kw_array_len(w, st ? st->nisr : 0);
        for (int i = 0; st && i < st->nisr; i++)
            sc_kw_i32(w, st->isr[i]);
        if (v >= 5) {
            int off = 0;
            for (int i = 0; st && i < st->nreplicas; i++)
                off += !is_live(c, st->replicas[i]);
            sc_kw_array_len(w, off);
            for (int i = 0; st && i < st->nreplicas; i++)
                if (!is_live(c, st->replicas[i]))
                    sc_kw_i32(w, st->replicas[i]);
        }
    }
}
