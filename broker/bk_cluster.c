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
 * The leader keeps the ISR of the partitions it leads (leader_isr: shrink
 * after replica.lag.time.max.ms behind, re-admit when caught up).
 *
 * High watermark over the ISR and acks=all waits: update_hw / check_waits.
 *
 * Controlled shutdown on stop (controlled_shutdown); preferred-leader
 * election by the controller (control_one, auto.leader.rebalance.enable).
 *
 * The group coordinator follows the leaders of __consumer_offsets (bk_group.c
 * reads bk__cluster_leader; commits wait through bk__cluster_wait_isr_cb).
 */
#include "bk_int.h"

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

/* What the leader knows of one follower of one partition it leads. */
typedef struct bk_freplica {
    struct bk_freplica *next;
    char topic[BK_TOPIC_NAME_MAX + 1];
    int32_t partition, replica;
    int64_t leo;            /* its last fetch offset */
    int64_t prev_hw;        /* our high watermark when its previous fetch came */
    int64_t caught_up_ms;   /* last fetch that reached prev_hw (it has all it could have) */
    int caught_now;         /* the latest fetch was caught up */
    int32_t epoch;          /* the leader epoch this entry belongs to */
} bk_freplica_t;

/* An acks=all append waiting for the high watermark. */
typedef struct bk_isrwait {
    struct bk_isrwait *next;
    char topic[BK_TOPIC_NAME_MAX + 1];
    int32_t partition;
    int64_t end;      /* answered once the high watermark reaches it */
    int64_t deadline; /* monotonic ms: REQUEST_TIMED_OUT after it */
    void *arg;        /* bk__produce_isr_done's, or done's */
    void (*done)(void *arg, int16_t err); /* NULL = bk__produce_isr_done */
} bk_isrwait_t;

struct bk_cluster {
    bk_server_t *srv;
    bk_freplica_t *followers; /* partitions this broker leads: their followers */
    bk_isrwait_t *waits;
    rp_zk_t *zk;
    uv_async_t async;
    uv_timer_t timer;
    int handles; /* async + timer initialised */
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

/* The controller's work on one partition (state as read: have/ver/st). */
static void control_one(bk_cluster_t *c, const char *topic, int32_t p, int16_t rf, int have,
                        int ver, const rp_pstate_t *cur, int32_t start)
{
    int32_t live[BK_CLUSTER_MAX_BROKERS];
    rp_broker_t bs[BK_CLUSTER_MAX_BROKERS];
    for (int i = 0; i < c->nbrokers; i++) {
        live[i] = c->brokers[i].b.id;
        bs[i] = c->brokers[i].b;
    }
    rp_pstate_t next;
    int rc;
    if (have && c->preferred_due) { /* preferred-leader election (auto.leader.rebalance) */
        rp_pstate_t n1;
        if (rp_pstate_next(cur, live, c->nbrokers, c->controller_epoch, &n1) == 0 &&
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
        if (!rp_pstate_next(cur, live, c->nbrokers, c->controller_epoch, &next))
            return;
        rc = rp_zk_pstate_write(c->zk, topic, p, &next, ver);
    }
    if (rc)
        SC_WARN(SUB, "%s-%d: state write: %s", topic, p, sc_err_str(rc));
    else
        SC_INFO(SUB, "%s-%d: leader %d epoch %d, isr of %d", topic, p, next.leader,
                next.leader_epoch, next.nisr);
}

static const bk_ctopic_t *ctopic(const bk_cluster_t *c, const char *name, size_t len);

static bk_freplica_t *freplica(bk_cluster_t *c, const char *topic, size_t len, int32_t p,
                               int32_t replica, int32_t epoch, int create)
{
    for (bk_freplica_t *f = c->followers; f; f = f->next)
        if (f->partition == p && f->replica == replica && strlen(f->topic) == len &&
            memcmp(f->topic, topic, len) == 0) {
            if (f->epoch != epoch) { /* we lead it anew: start over with a grace period */
                f->epoch = epoch;
                f->leo = -1;
                f->caught_now = 0;
                f->caught_up_ms = sc_mono_ms();
            }
            return f;
        }
    if (!create || len > BK_TOPIC_NAME_MAX)
        return NULL;
    bk_freplica_t *f = sc_calloc(1, sizeof *f);
    if (!f)
        return NULL;
    memcpy(f->topic, topic, len);
    f->partition = p;
    f->replica = replica;
    f->epoch = epoch;
    f->leo = -1;
    f->caught_up_ms = sc_mono_ms(); /* a grace period from when we started leading */
    f->next = c->followers;
    c->followers = f;
    return f;
}

/* The leader's ISR duty on partitions it leads (Kafka's
 * maybeExpandIsr / maybeShrinkIsr): a live replica whose fetch reached our
 * log end joins the ISR; an ISR member not caught up for
 * replica.lag.time.max.ms leaves it. Written with a versioned set; a clash
 * with the controller is retried on the next refresh. */
static void leader_isr(bk_cluster_t *c)
{
    bk_server_t *s = c->srv;
    int32_t me = s->cfg->node_id;
    int64_t now = sc_mono_ms();
    for (size_t i = 0; i < c->ntopics; i++) {
        bk_ctopic_t *t = &c->topics[i];
        for (int32_t p = 0; p < t->nparts; p++) {
            rp_pstate_t *st = &t->st[p];
            if (!t->have[p] || st->leader != me)
                continue;
            rp_pstate_t n = *st;
            n.nisr = 0;
            int changed = 0;
            for (int k = 0; k < st->nisr; k++) {
                int32_t r = st->isr[k];
                bk_freplica_t *f =
                    r == me ? NULL
                            : freplica(c, t->name, strlen(t->name), p, r, st->leader_epoch, 1);
                if (f && now - f->caught_up_ms > s->cfg->replica_lag_time_max_ms) {
                    changed = 1; /* logged once written */
                    continue;
                }
                n.isr[n.nisr++] = r;
            }
            for (int k = 0; k < st->nreplicas; k++) {
                int32_t r = st->replicas[k];
                if (r == me || rp_id_in(n.isr, n.nisr, r) || !is_live(c, r))
                    continue;
                bk_freplica_t *f =
                    freplica(c, t->name, strlen(t->name), p, r, st->leader_epoch, 0);
                if (f && f->caught_now) {
                    n.isr[n.nisr++] = r;
                    changed = 1;
                }
            }
            if (!changed)
                continue;
            int rc = rp_zk_pstate_write_leader(c->zk, t->name, p, &n, t->ver[p]);
            if (rc == 0) {
                for (int k = 0; k < st->nisr; k++)
                    if (!rp_id_in(n.isr, n.nisr, st->isr[k]))
                        SC_INFO(SUB, "%s-%d: replica %d not caught up for over %lld ms: out of "
                                     "the ISR", t->name, p, st->isr[k],
                                (long long)s->cfg->replica_lag_time_max_ms);
                for (int k = 0; k < n.nisr; k++)
                    if (!rp_id_in(st->isr, st->nisr, n.isr[k]))
                        SC_INFO(SUB, "%s-%d: replica %d caught up: back in the ISR", t->name, p,
                                n.isr[k]);
                *st = n;
                t->ver[p]++;
            } else
                SC_DEBUG(SUB, "%s-%d: ISR write: %s (retried)", t->name, p, sc_err_str(rc));
        }
    }
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

/* Answers the waits that are over (all of them when stopping). */
static void check_waits(bk_cluster_t *c, int stopping)
{
    bk_server_t *s = c->srv;
    int64_t now = sc_mono_ms();
    bk_isrwait_t **pp = &c->waits;
    while (*pp) {
        bk_isrwait_t *w = *pp;
        size_t len = strlen(w->topic);
        const bk_ctopic_t *t = ctopic(c, w->topic, len);
        bk_part_t *bp = bk__part_find(s, w->topic, len, w->partition);
        const rp_pstate_t *st =
            t && w->partition < t->nparts && t->have[w->partition] ? &t->st[w->partition] : NULL;
        int16_t err = -1; /* still waiting */
        if (stopping || !bp || !st || st->leader != s->cfg->node_id)
            err = SC_ERR_NOT_LEADER_OR_FOLLOWER;
        else if (st_log_high_watermark(bp->log) >= w->end)
            err = st->nisr < min_insync(s, w->topic, len) ? SC_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND
                                                          : 0;
        else if (now >= w->deadline)
            err = SC_ERR_REQUEST_TIMED_OUT;
        if (err < 0) {
            pp = &w->next;
            continue;
        }
        *pp = w->next;
        void *arg = w->arg;
        void (*done)(void *, int16_t) = w->done;
        sc_free(w);
        if (done)
            done(arg, err);
        else
            bk__produce_isr_done(arg, err);
    }
}

/* The high watermark of p: on a partition this broker leads, the committed
 * offset capped by every other ISR member's fetch offset (one that has not
 * fetched since we lead holds it where it is); elsewhere the committed
 * offset. Only ever raised. Parked fetches are woken (followers read up to
 * the committed offset, which may have moved), waits are checked. */
static void update_hw(bk_cluster_t *c, bk_part_t *p, int wake)
{
    bk_server_t *s = c->srv;
    int64_t hw = st_log_committed_offset(p->log), cur = st_log_high_watermark(p->log);
    const bk_ctopic_t *t = ctopic(c, p->topic, strlen(p->topic));
    const rp_pstate_t *st =
        t && p->partition < t->nparts && t->have[p->partition] ? &t->st[p->partition] : NULL;
    if (st && st->leader == s->cfg->node_id) {
        for (int k = 0; k < st->nisr; k++) {
            if (st->isr[k] == s->cfg->node_id)
                continue;
            bk_freplica_t *f = freplica(c, p->topic, strlen(p->topic), p->partition, st->isr[k],
                                        st->leader_epoch, 0);
            int64_t leo = f && f->leo >= 0 ? f->leo : cur;
            if (leo < hw)
                hw = leo;
        }
    }
    if (hw > cur)
        st_log_set_high_watermark(p->log, hw);
    p->shard->hw_moved = 1;
    if (c->waits)
        check_waits(c, 0);
    if (wake)
        bk__fetch_wake(p->shard);
}

void bk__cluster_progress(bk_server_t *s, bk_part_t *p) { update_hw(s->cluster, p, 0); }

int bk__cluster_wait_isr(bk_server_t *s, bk_part_t *p, int64_t end, int64_t deadline_ms,
                         void *arg)
{
    bk_cluster_t *c = s->cluster;
    if (!c || st_log_high_watermark(p->log) >= end)
        return 0;
    bk_isrwait_t *w = sc_calloc(1, sizeof *w);
    if (!w)
        return 0; /* answered without waiting rather than lost */
    snprintf(w->topic, sizeof w->topic, "%s", p->topic);
    w->partition = p->partition;
    w->end = end;
    w->deadline = deadline_ms;
    w->arg = arg;
    w->next = c->waits;
    c->waits = w;
    return 1;
}

int bk__cluster_wait_isr_cb(bk_server_t *s, bk_part_t *p, int64_t end, int64_t deadline_ms,
                            void (*done)(void *arg, int16_t err), void *arg)
{
    bk_cluster_t *c = s->cluster;
    if (!bk__cluster_wait_isr(s, p, end, deadline_ms, arg))
        return 0;
    c->waits->done = done; /* the wait just pushed */
    return 1;
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
    const bk_ctopic_t *t = ctopic(c, topic, len);
    if (!t || p < 0 || p >= t->nparts || !t->have[p] || t->st[p].leader != s->cfg->node_id ||
        !rp_id_in(t->st[p].replicas, t->st[p].nreplicas, replica))
        return;
    bk_freplica_t *f = freplica(c, topic, len, p, replica, t->st[p].leader_epoch, 1);
    bk_part_t *bp = bk__part_find(s, topic, len, p);
    if (!f || !bp)
        return;
    /* Caught up = it fetches from where our high watermark (all a follower can
     * get) was at its previous fetch: Kafka's lastFetchLeaderLogEndOffset rule,
     * so a follower under steady load does not look behind by one round trip. */
    int64_t hw = st_log_high_watermark(bp->log);
    int was = f->leo >= 0;
    f->leo = offset;
    int caught = was && offset >= f->prev_hw;
    f->prev_hw = hw;
    f->caught_now = caught || offset >= hw;
    if (f->caught_now) {
        f->caught_up_ms = sc_mono_ms();
        if (!rp_id_in(t->st[p].isr, t->st[p].nisr, replica))
            leader_isr(c); /* re-admit now rather than at the next refresh */
    }
    update_hw(c, bp, 1); /* its fetch offset may raise the high watermark */
}

/* 1 the first time this broker sees itself leading topic-p at leader epoch
 * `epoch` (an entry with replica -1 in the followers list remembers it). */
static int leader_epoch_seen(bk_cluster_t *c, const char *topic, int32_t p, int32_t epoch)
{
    size_t len = strlen(topic);
    for (bk_freplica_t *f = c->followers; f; f = f->next)
        if (f->replica == -1 && f->partition == p && strlen(f->topic) == len &&
            memcmp(f->topic, topic, len) == 0) {
            if (f->epoch == epoch)
                return 0;
            f->epoch = epoch;
            return 1;
        }
    bk_freplica_t *f = freplica(c, topic, len, p, -1, epoch, 1);
    return f != NULL;
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
    leader_isr(c);
    /* leadership or ISR may have changed: high watermarks, producer state, waits */
    for (size_t i = 0; i < c->ntopics; i++) {
        bk_ctopic_t *t = &c->topics[i];
        for (int32_t p = 0; p < t->nparts; p++) {
            bk_part_t *bp = bk__part_find(s, t->name, strlen(t->name), p);
            if (!bp)
                continue;
            if (t->have[p] && t->st[p].leader == s->cfg->node_id &&
                leader_epoch_seen(c, t->name, p, t->st[p].leader_epoch))
            {
                bp->npids = 0; /* we lead it anew: the producers' state from the log */
                bk__pids_rebuild(bp);
            }
            update_hw(c, bp, 0);
        }
    }
    check_waits(c, 0);
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
    }
    rp_zk_resign(c->zk);
    check_waits(c, 1); /* acks=all still waiting: NOT_LEADER_OR_FOLLOWER */
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
    while (c->followers) {
        bk_freplica_t *f = c->followers;
        c->followers = f->next;
        sc_free(f);
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
    const bk_cluster_t *c = s->cluster;
    const bk_ctopic_t *t = c ? ctopic(c, topic, len) : NULL;
    if (!t || p < 0 || p >= t->nparts || !t->have[p])
        return 0; /* not cluster mode, or no state: answered elsewhere */
    int64_t min = s->cfg->min_insync_replicas;
    const rp_meta_topic_t *tp = bk_topics_lookup(s->topics, topic, len);
    const char *v = tp ? rp_meta_topic_config(tp, "min.insync.replicas") : NULL;
    if (v)
        min = strtoll(v, NULL, 10);
    return t->st[p].nisr < min;
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
