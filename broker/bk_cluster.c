/*
 * bk_cluster -- cluster mode wiring (metadata.store=zookeeper; see
 * docs/replication.md). Two threads:
 *
 * The CLUSTER THREAD (ct_*) makes every ZooKeeper call, so a slow, hung or
 * unreachable ZooKeeper never stalls shard 0 (which serves Produce / Fetch
 * and appends followers' copies). It runs a refresh on a watch, on a request
 * from shard 0, or every BK_CLUSTER_POLL_MS (a watch on one partition state
 * of a broker that is not the controller re-reads just that state,
 * ct_reread):
 *   session: after expiry the view is published FENCED (this broker leads
 *          and follows nothing; Metadata keeps the last states) until a new
 *          session, a new registration and a refresh that read every state
 *          (the first registration is made by start, which fails when
 *          broker.id is taken);
 *   the live brokers; the controller (elected here when there is none);
 *   the topic registry (rp_zk_topics_read), offered to shard 0's store
 *          (other brokers' CreateTopics / DeleteTopics, so local logs follow);
 *   every partition's state, and on the controller its duty: a partition
 *          without a state gets replicas (rp_assign_replicas over the live
 *          brokers, rack-aware) and an initial leader / ISR; a partition
 *          whose leader or ISR members died gets the next state of
 *          rp_pstate_next (unclean.leader.election.enable); preferred-leader
 *          election (auto.leader.rebalance.enable). Every write is the
 *          fenced, versioned rp_zk_pstate_write. When a read fails
 *          (ZooKeeper away) the last known value is kept.
 * Before a refresh it writes the ISR changes shard 0 queued (the leader's
 * versioned rp_zk_pstate_write_leader) and, when asked, starts the
 * controlled shutdown. After it, it PUBLISHES an immutable view (bk_cview_t:
 * live brokers, controller, every partition's state and znode version) under
 * c->mu and pokes shard 0 through a uv_async.
 *
 * SHARD 0 never waits for ZooKeeper: it installs the published view (after
 * the offered topic image, so new partitions have their logs), and reads
 * only that view (leaders for Metadata / Produce / Fetch / the group
 * coordinator, ISR for min.insync.replicas). It owns the leader's side of
 * replication: rp_isr (replication/rp_isr.h, pure, unit-tested in test_rp_sm)
 * per partition this broker leads (bk_lpart_t) holds its followers' fetch
 * offsets, their last caught-up times and the acks=all waits. isr_duty
 * queues the ISR rp_isr_next decides for the cluster thread to write (one
 * request per partition per view), update_hw sets rp_isr_hw's high watermark
 * and answers the waits it completes, a timer (wtimer) answers waits at their
 * deadline. After every installed view the followed partitions go to the
 * follower fetcher (bk__follow_publish, bk_follow.c).
 *
 * Controlled shutdown (bk__cluster_shutdown, on SIGTERM): queued to the
 * cluster thread, which resigns the controller role, removes the
 * registration and watches the states until the controller moved this
 * broker's leaderships; shard 0 keeps serving meanwhile (NOT_LEADER_OR_
 * FOLLOWER for what moved) and stops once a view says it is done or after
 * BK_CLUSTER_SHUTDOWN_MS. Stop tells the thread to quit (a refresh gives up
 * between calls); free waits for it at most BK_CLUSTER_JOIN_MS and then
 * leaves it behind (a call to a hung ZooKeeper waits for the client's
 * timeout); the session's close removes the registration and controller
 * nodes.
 *
 * The group coordinator follows the leaders of __consumer_offsets (bk_group.c
 * reads bk__cluster_leader; commits wait through bk__cluster_wait_isr_cb).
 *
 * The metadata store's own writes (CreateTopics, DeleteTopics,
 * CreatePartitions, AlterConfigs, producer-id blocks) run on the store's
 * worker thread (bk_topics.h, started and stopped here); the request is
 * parked and answered when its write is back on shard 0. Still on shard 0:
 * creating __consumer_offsets on the first FindCoordinator and Metadata's
 * auto-creation (bk_topics_create).
 */
#include "bk_int.h"

#include "rp_isr.h"
#include "rp_zk.h"
#include "sc_err.h"
#include "sc_log.h"
#include "sc_mem.h"
#include "sc_time.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SUB "cluster"
#define BK_CLUSTER_POLL_MS 2000
#define BK_CLUSTER_SHUTDOWN_POLL_MS 100
#define BK_CLUSTER_SHUTDOWN_MS 10000
#define BK_CLUSTER_MAX_BROKERS 256
#define BK_CLUSTER_JOIN_MS 2000

typedef struct {
    char name[BK_TOPIC_NAME_MAX + 1];
    int32_t nparts;
    int16_t rf;      /* replication factor */
    int32_t start;   /* first broker index of its assignment */
    int unclean;     /* unclean.leader.election.enable (topic key, else broker's) */
    rp_pstate_t *st; /* [nparts] */
    int *have;       /* [nparts]: a state is stored */
    int *ver;        /* [nparts]: its znode version */
} bk_ctopic_t;

/* What the cluster thread knows after a refresh; published as an immutable
 * copy that shard 0 reads. */
typedef struct {
    uint64_t gen; /* one per publication */
    rp_zk_broker_t *brokers;
    int nbrokers;
    int32_t controller_id, controller_epoch;
    bk_ctopic_t *topics;
    size_t ntopics;
    int shutdown_done; /* controlled shutdown: nothing left to wait for */
    int fenced;        /* session expired: leads and follows nothing until
                        * registered again (the states are the last known) */
} bk_cview_t;

/* A partition this broker leads (or led): the leader's state of it (shard 0). */
typedef struct bk_lpart {
    struct bk_lpart *next;
    char topic[BK_TOPIC_NAME_MAX + 1];
    int32_t partition;
    rp_isr_t isr;     /* followers, acks=all waits; isr.leader_epoch = the epoch led */
    uint64_t isr_gen; /* view gen of the last ISR change queued (0 = none) */
} bk_lpart_t;

/* A partition state whose watch fired (the cluster thread re-reads it). */
typedef struct bk_dirty {
    struct bk_dirty *next;
    char topic[BK_TOPIC_NAME_MAX + 1];
    int32_t partition;
} bk_dirty_t;

/* An ISR change shard 0 asks the cluster thread to write. */
typedef struct bk_isr_req {
    struct bk_isr_req *next;
    char topic[BK_TOPIC_NAME_MAX + 1];
    int32_t partition;
    rp_pstate_t cur, next_st;
    int version;
} bk_isr_req_t;

struct bk_cluster {
    bk_server_t *srv;
    rp_zk_t *zk;

    /* ---- shared: under mu ---- */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int poked;              /* a watch fired: full refresh */
    bk_dirty_t *dirty;      /* partition states whose watch fired */
    int quit;               /* the thread stops */
    int exited;             /* it has */
    int closed;             /* shard 0's async is closed: do not send */
    int shutdown_req;       /* controlled shutdown asked */
    bk_isr_req_t *reqs;     /* queued ISR changes, newest first */
    bk_cview_t *pending;    /* published, not yet installed */

    /* ---- the cluster thread's ---- */
    pthread_t thread;
    int thread_on;
    bk_config_t tcfg; /* a copy: its numbers only (it may outlive the server at exit) */
    bk_cview_t ct; /* gen, brokers (array of BK_CLUSTER_MAX_BROKERS), ... */
    int64_t last_preferred_ms; /* controller: last preferred-leader election */
    int preferred_due;         /* this refresh runs it */
    rp_broker_t self;          /* registration, kept for a new session */
    char host[256];
    int port;
    int registered;
    int deregistered;    /* controlled shutdown: registration given up */
    int64_t shutdown_t0; /* when it was */
    size_t shutdown_led; /* partitions to move */

    /* ---- shard 0's ---- */
    bk_cview_t *view; /* installed; never NULL after open */
    bk_lpart_t *led;  /* partitions this broker leads or led */
    uv_async_t async;
    uv_timer_t wtimer;    /* the earliest acks=all deadline */
    uv_timer_t stimer;    /* controlled shutdown's bound */
    int64_t wtimer_at;    /* when it fires (monotonic ms), INT64_MAX = not armed */
    int handles;          /* async + wtimer + stimer initialised */
    int stopped;
    void (*shutdown_then)(bk_server_t *s); /* controlled shutdown running; called once */
};

static void dirty_free(bk_dirty_t *d)
{
    while (d) {
        bk_dirty_t *n = d->next;
        sc_free(d);
        d = n;
    }
}

static void ctopics_free(bk_ctopic_t *ts, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        sc_free(ts[i].st);
        sc_free(ts[i].have);
        sc_free(ts[i].ver);
    }
    sc_free(ts);
}

static void view_free(bk_cview_t *v)
{
    if (!v)
        return;
    ctopics_free(v->topics, v->ntopics);
    sc_free(v->brokers);
    sc_free(v);
}

/* A deep copy of the cluster thread's view, or NULL (no memory). */
static bk_cview_t *view_copy(const bk_cview_t *src)
{
    bk_cview_t *v = sc_calloc(1, sizeof *v);
    if (!v)
        return NULL;
    *v = *src;
    v->brokers = NULL;
    v->topics = NULL;
    v->ntopics = 0;
    if (src->nbrokers &&
        !(v->brokers = sc_calloc((size_t)src->nbrokers, sizeof *v->brokers)))
        goto fail;
    if (src->nbrokers)
        memcpy(v->brokers, src->brokers, (size_t)src->nbrokers * sizeof *v->brokers);
    if (src->ntopics && !(v->topics = sc_calloc(src->ntopics, sizeof *v->topics)))
        goto fail;
    for (size_t i = 0; i < src->ntopics; i++) {
        const bk_ctopic_t *s = &src->topics[i];
        bk_ctopic_t *t = &v->topics[i];
        *t = *s;
        t->st = NULL, t->have = NULL, t->ver = NULL;
        v->ntopics = i + 1;
        size_t n = (size_t)(s->nparts > 0 ? s->nparts : 0);
        if (n && (!(t->st = sc_calloc(n, sizeof *t->st)) ||
                  !(t->have = sc_calloc(n, sizeof *t->have)) ||
                  !(t->ver = sc_calloc(n, sizeof *t->ver))))
            goto fail;
        if (n) {
            memcpy(t->st, s->st, n * sizeof *t->st);
            memcpy(t->have, s->have, n * sizeof *t->have);
            memcpy(t->ver, s->ver, n * sizeof *t->ver);
        }
    }
    return v;
fail:
    view_free(v);
    return NULL;
}

static const bk_ctopic_t *vtopic(const bk_cview_t *v, const char *name, size_t len)
{
    for (size_t i = 0; v && i < v->ntopics; i++)
        if (strlen(v->topics[i].name) == len && memcmp(v->topics[i].name, name, len) == 0)
            return &v->topics[i];
    return NULL;
}

/* topic-p's partition state in v, or NULL when there is none. */
static const rp_pstate_t *vstate(const bk_cview_t *v, const char *topic, size_t len, int32_t p)
{
    const bk_ctopic_t *t = vtopic(v, topic, len);
    return t && p >= 0 && p < t->nparts && t->have[p] ? &t->st[p] : NULL;
}

static int is_live(const bk_cview_t *v, int32_t id)
{
    for (int i = 0; i < v->nbrokers; i++)
        if (v->brokers[i].b.id == id)
            return 1;
    return 0;
}

/* The ids of v's live brokers into live[BK_CLUSTER_MAX_BROKERS]; their count. */
static int live_ids(const bk_cview_t *v, int32_t *live)
{
    for (int i = 0; i < v->nbrokers; i++)
        live[i] = v->brokers[i].b.id;
    return v->nbrokers;
}

/* ZooKeeper watch / session change (the client's thread): wake the cluster
 * thread. A partition state that was created or changed is re-read alone
 * (ct_reread: the leader learns of its election about as soon as the
 * controller's own view does); anything else makes a full refresh. */
static void notify(void *arg, const char *path)
{
    bk_cluster_t *c = arg;
    static const char pre[] = "/brokers/topics/";
    bk_dirty_t *d = NULL;
    if (path && strncmp(path, pre, sizeof pre - 1) == 0) {
        const char *t = path + sizeof pre - 1, *e = strstr(t, "/partitions/");
        char *end = NULL;
        long p = e ? strtol(e + 12, &end, 10) : -1;
        if (e && e > t && (size_t)(e - t) <= BK_TOPIC_NAME_MAX && p >= 0 && p <= INT32_MAX &&
            end && strcmp(end, "/state") == 0 && (d = sc_calloc(1, sizeof *d)) != NULL) {
            memcpy(d->topic, t, (size_t)(e - t));
            d->partition = (int32_t)p;
        }
    }
    pthread_mutex_lock(&c->mu);
    if (d) {
        d->next = c->dirty;
        c->dirty = d;
    } else
        c->poked = 1;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

int bk__cluster_open(bk_server_t *s)
{
    const bk_config_t *cfg = s->cfg;
    bk_cluster_t *c = sc_calloc(1, sizeof *c);
    if (!c)
        return SC_ERR_NO_MEMORY;
    c->srv = s;
    c->tcfg = *cfg;
    c->ct.controller_id = -1;
    c->ct.brokers = sc_calloc(BK_CLUSTER_MAX_BROKERS, sizeof *c->ct.brokers);
    c->view = sc_calloc(1, sizeof *c->view);
    if (!c->ct.brokers || !c->view) {
        sc_free(c->ct.brokers);
        sc_free(c->view);
        sc_free(c);
        return SC_ERR_NO_MEMORY;
    }
    c->view->controller_id = -1;
    pthread_mutex_init(&c->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&c->cv, &ca);
    pthread_condattr_destroy(&ca);
    int rc = rp_zk_open(cfg->zookeeper_connect, cfg->zookeeper_session_timeout_ms,
                        cfg->zookeeper_session_timeout_ms, &c->zk);
    s->cluster = c; /* freed by bk__cluster_free on any failure */
    if (rc) {
        SC_ERROR(SUB, "zookeeper.connect=%s: %s", cfg->zookeeper_connect, sc_err_str(rc));
        return rc;
    }
    rp_zk_set_notify(c->zk, notify, c);
    char id[64];
    rc = rp_zk_cluster_id(c->zk, id, sizeof id);
    if (rc == 0 && strlen(id) < sizeof s->cluster_id)
        memcpy(s->cluster_id, id, strlen(id) + 1); /* meta.properties must match it */
    else if (rc && rc != SC_ERR_NOT_FOUND)
        return rc;
    return 0;
}

rp_zk_t *bk__cluster_zk(bk_server_t *s) { return s->cluster ? s->cluster->zk : NULL; }

/* ---- the cluster thread ------------------------------------------------------------ */

/* The controller's work on one partition (state as read: have/ver/st). */
static void control_one(bk_cluster_t *c, const bk_ctopic_t *t, int32_t p)
{
    const bk_cview_t *v = &c->ct;
    int32_t live[BK_CLUSTER_MAX_BROKERS];
    rp_broker_t bs[BK_CLUSTER_MAX_BROKERS];
    live_ids(v, live);
    for (int i = 0; i < v->nbrokers; i++)
        bs[i] = v->brokers[i].b;
    const char *topic = t->name;
    const rp_pstate_t *cur = &t->st[p];
    int have = t->have[p], ver = t->ver[p];
    rp_pstate_t next;
    int rc, how = 1;
    if (have && c->preferred_due) { /* preferred-leader election (auto.leader.rebalance) */
        rp_pstate_t n1;
        if (rp_pstate_next(cur, live, v->nbrokers, v->controller_epoch, t->unclean, &n1) == 0 &&
            rp_pstate_preferred(cur, live, v->nbrokers, v->controller_epoch, &next)) {
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
        if ((rc = rp_assign_replicas(bs, (size_t)v->nbrokers, p, t->rf, t->start, rep)) != 0) {
            SC_WARN(SUB, "%s-%d: cannot assign %d replica(s) over %d live broker(s): %s", topic, p,
                    t->rf, v->nbrokers, sc_err_str(rc));
            return;
        }
        rp_pstate_init(&next, rep, t->rf, live, v->nbrokers, v->controller_epoch);
        rc = rp_zk_pstate_write(c->zk, topic, p, &next, -1);
    } else {
        if (!(how = rp_pstate_next(cur, live, v->nbrokers, v->controller_epoch, t->unclean,
                                   &next)))
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

/* Writes one ISR change the leader side (shard 0) decided: a versioned set
 * against the version of the view it was decided on; a clash with the
 * controller is decided again on a later view. */
static void ct_isr_write(bk_cluster_t *c, const bk_isr_req_t *r)
{
    const rp_pstate_t *st = &r->cur, *n = &r->next_st;
    int rc = rp_zk_pstate_write_leader(c->zk, r->topic, r->partition, n, r->version);
    if (rc) {
        SC_DEBUG(SUB, "%s-%d: ISR write: %s (retried)", r->topic, r->partition, sc_err_str(rc));
        return;
    }
    int64_t lag = c->tcfg.replica_lag_time_max_ms;
    for (int k = 0; k < st->nisr; k++)
        if (!rp_id_in(n->isr, n->nisr, st->isr[k]))
            SC_INFO(SUB, "%s-%d: replica %d not caught up for over %lld ms: out of the ISR",
                    r->topic, r->partition, st->isr[k], (long long)lag);
    for (int k = 0; k < n->nisr; k++)
        if (!rp_id_in(st->isr, st->nisr, n->isr[k]))
            SC_INFO(SUB, "%s-%d: replica %d caught up: back in the ISR", r->topic, r->partition,
                    n->isr[k]);
}

/* Partitions this broker leads with another ISR member to take over. */
static size_t ct_led(const bk_cluster_t *c)
{
    int32_t me = c->tcfg.node_id;
    size_t led = 0;
    for (size_t i = 0; i < c->ct.ntopics; i++)
        for (int32_t p = 0; p < c->ct.topics[i].nparts; p++) {
            const rp_pstate_t *st = &c->ct.topics[i].st[p];
            led += c->ct.topics[i].have[p] && st->leader == me && st->nisr > 1;
        }
    return led;
}

/* Controlled shutdown (Kafka's, in ZooKeeper terms): give up the controller
 * role and the registration, so the controller moves every partition this
 * broker leads to another ISR member (and drops it from the ISRs). The
 * refreshes that follow (every BK_CLUSTER_SHUTDOWN_POLL_MS and on watches)
 * tell when the stored states say so (ct_shutdown_check). Partitions with no
 * other ISR member cannot move (no unclean election) and are not waited for. */
static void ct_shutdown_begin(bk_cluster_t *c)
{
    int32_t me = c->tcfg.node_id;
    c->deregistered = 1; /* no new registration, no election from now on */
    c->shutdown_t0 = sc_mono_ms();
    rp_zk_resign(c->zk);
    c->shutdown_led = ct_led(c);
    if (!c->registered || rp_zk_deregister(c->zk, me) != 0 || c->shutdown_led == 0) {
        SC_INFO(SUB, "controlled shutdown: %zu partition(s) to move", c->shutdown_led);
        c->ct.shutdown_done = 1;
        return;
    }
    c->registered = 0;
    SC_INFO(SUB, "controlled shutdown: moving the leadership of %zu partition(s)",
            c->shutdown_led);
}

static void ct_shutdown_check(bk_cluster_t *c)
{
    if (!c->deregistered || c->ct.shutdown_done)
        return;
    size_t left = ct_led(c);
    int64_t took = sc_mono_ms() - c->shutdown_t0;
    if (!left) {
        SC_INFO(SUB, "controlled shutdown: leadership moved in %lld ms", (long long)took);
        c->ct.shutdown_done = 1;
    } else if (took >= BK_CLUSTER_SHUTDOWN_MS) {
        SC_WARN(SUB, "controlled shutdown: %zu partition(s) still led here after %d ms; "
                     "stopping anyway", left, BK_CLUSTER_SHUTDOWN_MS);
        c->ct.shutdown_done = 1;
    }
}

/* Hands a copy of the thread's view to shard 0. */
static void ct_publish(bk_cluster_t *c)
{
    c->ct.gen++;
    bk_cview_t *v = view_copy(&c->ct);
    if (!v)
        return; /* the next refresh publishes again */
    pthread_mutex_lock(&c->mu);
    bk_cview_t *old = c->pending;
    c->pending = v;
    if (!c->closed && c->handles)
        uv_async_send(&c->async);
    pthread_mutex_unlock(&c->mu);
    view_free(old); /* never seen by shard 0 */
}

/* This broker's registration; after session expiry a new session first. 0
 * when registered. */
static int ct_session(bk_cluster_t *c)
{
    if (!rp_zk_session_state(c->zk) && (c->registered || c->deregistered))
        return 0;
    if (rp_zk_session_state(c->zk)) {
        /* Session expired (e.g. the process was paused longer than
         * zookeeper.session.timeout.ms): the registration and any controller
         * role went with it. New session, register again; until then this
         * broker leads and follows nothing. */
        SC_WARN(SUB, "ZooKeeper session expired; starting a new one");
        c->registered = 0;
        c->ct.controller_id = -1;
        if (!c->ct.fenced) {
            c->ct.fenced = 1;
            ct_publish(c);
        }
        if (rp_zk_reconnect(c->zk) != 0)
            return -1; /* next tick */
    }
    if (c->deregistered)
        return 0;
    if (rp_zk_register(c->zk, &c->self, c->host, c->port, 0) != 0)
        return -1; /* the old node is still there: next tick */
    c->registered = 1; /* fenced until a refresh has read every state anew */
    return 0;
}

/* Stopping: a refresh in progress gives up (each ZooKeeper call may wait
 * for the client's timeout). */
static int ct_quitting(bk_cluster_t *c)
{
    pthread_mutex_lock(&c->mu);
    int q = c->quit;
    pthread_mutex_unlock(&c->mu);
    return q;
}

static void ct_refresh(bk_cluster_t *c)
{
    const bk_config_t *cfg = &c->tcfg;
    bk_cview_t *v = &c->ct;
    if (ct_session(c) != 0 || ct_quitting(c))
        return;
    int n = 0;
    if (rp_zk_brokers(c->zk, v->brokers, BK_CLUSTER_MAX_BROKERS, &n) == 0)
        v->nbrokers = n;
    int32_t id = -1, epoch = 0;
    int rc = rp_zk_controller(c->zk, &id, &epoch);
    if (rc == SC_ERR_NOT_FOUND && !c->deregistered &&
        rp_zk_elect(c->zk, cfg->node_id, &epoch) == 0)
        id = cfg->node_id, rc = 0;
    else if (rc == SC_ERR_NOT_FOUND)
        rc = rp_zk_controller(c->zk, &id, &epoch);
    if (rc == 0) {
        if (id != v->controller_id || epoch != v->controller_epoch)
            SC_INFO(SUB, "controller is broker %d (epoch %d)", id, epoch);
        v->controller_id = id;
        v->controller_epoch = epoch;
    } else
        v->controller_id = -1;
    int controller = v->controller_id == cfg->node_id && rp_zk_is_controller(c->zk);
    c->preferred_due = 0;
    if (controller && cfg->auto_leader_rebalance_enable) {
        int64_t now = sc_mono_ms();
        if (!c->last_preferred_ms)
            c->last_preferred_ms = now; /* first run one interval after taking the role */
        else if (now - c->last_preferred_ms >= cfg->leader_imbalance_check_interval_seconds * 1000) {
            c->preferred_due = 1;
            c->last_preferred_ms = now;
        }
    }

    /* the topic registry: read here, installed by shard 0 */
    rp_zk_topics_t *reg = NULL;
    if ((rc = rp_zk_topics_read(c->zk, &reg)) != 0)
        SC_WARN(SUB, "re-reading topics: %s", sc_err_str(rc));
    size_t nt = reg ? rp_zk_topics_count(reg) : v->ntopics; /* unread: the topics we knew */
    bk_ctopic_t *ts = nt ? sc_calloc(nt, sizeof *ts) : NULL;
    if (nt && !ts) {
        rp_zk_topics_free(reg);
        return;
    }
    for (size_t i = 0; i < nt; i++) {
        bk_ctopic_t *t = &ts[i];
        int32_t parts;
        if (reg) {
            const rp_meta_topic_t *tp = rp_zk_topics_at(reg, i);
            snprintf(t->name, sizeof t->name, "%s", tp->name);
            parts = tp->partitions;
            t->rf = tp->replication_factor;
            t->start = (int32_t)(tp->id[0] | tp->id[1] << 8);
            const char *u = rp_meta_topic_config(tp, "unclean.leader.election.enable");
            t->unclean = u ? strcmp(u, "true") == 0 : cfg->unclean_leader_election_enable;
        } else {
            const bk_ctopic_t *o = &v->topics[i];
            snprintf(t->name, sizeof t->name, "%s", o->name);
            parts = o->nparts;
            t->rf = o->rf, t->start = o->start, t->unclean = o->unclean;
        }
        t->st = sc_calloc((size_t)parts, sizeof *t->st);
        t->have = sc_calloc((size_t)parts, sizeof *t->have);
        t->ver = sc_calloc((size_t)parts, sizeof *t->ver);
        if (!t->st || !t->have || !t->ver)
            continue; /* nparts stays 0: shown as unavailable */
        t->nparts = parts;
    }
    int unread = !reg; /* something was not read: the last known value is kept */
    if (reg)
        rp_zk_topics_offer(c->zk, reg); /* shard 0's store takes it (install) */

    /* every partition's state (and the controller's duty on it) */
    for (size_t i = 0; i < nt && !ct_quitting(c); i++) {
        bk_ctopic_t *t = &ts[i];
        const bk_ctopic_t *o = vtopic(v, t->name, strlen(t->name));
        for (int32_t p = 0; p < t->nparts; p++) {
            rc = rp_zk_pstate_get(c->zk, t->name, p, &t->st[p], &t->ver[p]);
            t->have[p] = rc == 0;
            unread |= rc && rc != SC_ERR_NOT_FOUND;
            if (rc && rc != SC_ERR_NOT_FOUND && o && p < o->nparts && o->have[p]) {
                /* ZooKeeper unreachable for a moment: keep what we knew, so the
                 * data path does not turn every leader away meanwhile */
                t->st[p] = o->st[p];
                t->ver[p] = o->ver[p];
                t->have[p] = 1;
            }
            if (controller && (rc == 0 || rc == SC_ERR_NOT_FOUND)) {
                control_one(c, t, p);
                controller = rp_zk_is_controller(c->zk); /* fenced meanwhile? */
                if (rp_zk_pstate_get(c->zk, t->name, p, &t->st[p], &t->ver[p]) == 0)
                    t->have[p] = 1;
            }
        }
    }
    ctopics_free(v->topics, v->ntopics);
    v->topics = ts;
    v->ntopics = nt;
    if (v->fenced && !unread)
        v->fenced = 0; /* a new session read everything: lead what it says */
    ct_shutdown_check(c);
    ct_publish(c);
}

/* Re-reads the partition states in d (their watches fired) and publishes,
 * without a full refresh. */
static void ct_reread(bk_cluster_t *c, bk_dirty_t *d)
{
    int any = 0;
    for (; d; d = d->next) {
        const bk_ctopic_t *t = vtopic(&c->ct, d->topic, strlen(d->topic));
        int32_t p = d->partition;
        if (!t || p >= t->nparts)
            continue; /* a topic the next full refresh reads */
        rp_pstate_t st;
        int ver;
        int rc = rp_zk_pstate_get(c->zk, t->name, p, &st, &ver);
        if (rc == 0) {
            t->st[p] = st;
            t->ver[p] = ver;
            t->have[p] = 1;
            any = 1;
        } else if (rc == SC_ERR_NOT_FOUND) {
            t->have[p] = 0;
            any = 1;
        }
    }
    if (any) {
        ct_shutdown_check(c);
        ct_publish(c);
    }
}

/* The thread: waits for a watch, a request, shutdown or the poll period;
 * writes queued ISR changes, then refreshes and publishes. */
static void *ct_main(void *arg)
{
    bk_cluster_t *c = arg;
    int64_t next_at = sc_mono_ms() + BK_CLUSTER_POLL_MS;
    pthread_mutex_lock(&c->mu);
    for (;;) {
        while (!c->quit && !c->poked && !c->dirty && !c->reqs &&
               !(c->shutdown_req && !c->deregistered) && sc_mono_ms() < next_at) {
            struct timespec ts;
            int64_t at = next_at;
            ts.tv_sec = (time_t)(at / 1000);
            ts.tv_nsec = (long)(at % 1000) * 1000000L;
            pthread_cond_timedwait(&c->cv, &c->mu, &ts);
        }
        if (c->quit)
            break;
        bk_isr_req_t *reqs = c->reqs;
        bk_dirty_t *dirty = c->dirty;
        c->reqs = NULL;
        c->dirty = NULL;
        int full = c->poked || reqs || sc_mono_ms() >= next_at;
        c->poked = 0;
        int begin = c->shutdown_req && !c->deregistered;
        pthread_mutex_unlock(&c->mu);
        /* a controller runs its duty on every change: full refresh */
        full |= begin || (c->ct.controller_id == c->tcfg.node_id &&
                          rp_zk_is_controller(c->zk));
        if (!full) {
            ct_reread(c, dirty);
            dirty_free(dirty);
            pthread_mutex_lock(&c->mu);
            continue;
        }
        dirty_free(dirty);
        if (begin)
            ct_shutdown_begin(c);
        /* oldest first */
        bk_isr_req_t *rev = NULL;
        while (reqs) {
            bk_isr_req_t *r = reqs;
            reqs = r->next;
            r->next = rev;
            rev = r;
        }
        while (rev) {
            bk_isr_req_t *r = rev;
            rev = r->next;
            ct_isr_write(c, r);
            sc_free(r);
        }
        ct_refresh(c);
        next_at = sc_mono_ms() + (c->deregistered && !c->ct.shutdown_done
                                      ? BK_CLUSTER_SHUTDOWN_POLL_MS
                                      : BK_CLUSTER_POLL_MS);
        pthread_mutex_lock(&c->mu);
    }
    c->exited = 1;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    /* the controller role (an ephemeral node) goes when free closes the session */
    return NULL;
}

/* ---- shard 0: the leader's side ----------------------------------------------------- */

/* 1 when the installed view says this broker leads st's partition. */
static int leads(const bk_cluster_t *c, const rp_pstate_t *st)
{
    return st && !c->view->fenced && st->leader == c->srv->cfg->node_id;
}

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

/* The leader's ISR duty on partition p of t if this broker leads it
 * (rp_isr_next: shrink after replica.lag.time.max.ms behind, re-admit when
 * caught up): the change is queued for the cluster thread (a versioned set
 * there), at most once per view; the view after the write shows it. */
static void isr_duty(bk_cluster_t *c, const bk_ctopic_t *t, int32_t p)
{
    bk_server_t *s = c->srv;
    int32_t me = s->cfg->node_id;
    const rp_pstate_t *st = &t->st[p];
    bk_lpart_t *lp = t->have[p] && leads(c, st) ? lpart(c, t->name, strlen(t->name), p, 0)
                                                : NULL;
    int32_t live[BK_CLUSTER_MAX_BROKERS];
    rp_pstate_t n;
    if (!lp || c->stopped || lp->isr_gen == c->view->gen ||
        !rp_isr_next(&lp->isr, st, me, live, live_ids(c->view, live),
                     s->cfg->replica_lag_time_max_ms, sc_mono_ms(), &n))
        return;
    bk_isr_req_t *r = sc_calloc(1, sizeof *r);
    if (!r)
        return;
    snprintf(r->topic, sizeof r->topic, "%s", t->name);
    r->partition = p;
    r->cur = *st;
    r->next_st = n;
    r->version = t->ver[p];
    lp->isr_gen = c->view->gen;
    pthread_mutex_lock(&c->mu);
    r->next = c->reqs;
    c->reqs = r;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
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
    const rp_pstate_t *st = vstate(c->view, lp->topic, len, lp->partition);
    bk_part_t *bp = bk__part_find(s, lp->topic, len, lp->partition);
    int leading = !c->stopped && bp && leads(c, st);
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
    const rp_pstate_t *st = vstate(c->view, p->topic, len, p->partition);
    bk_lpart_t *lp = lpart(c, p->topic, len, p->partition, 0);
    if (leads(c, st)) {
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

int bk__cluster_live_brokers(const bk_server_t *s) { return s->cluster ? s->cluster->view->nbrokers : 0; }

int bk__cluster_broker_addr(const bk_server_t *s, int32_t id, char *host, size_t cap, int *port)
{
    const bk_cview_t *v = s->cluster ? s->cluster->view : NULL;
    for (int i = 0; v && i < v->nbrokers; i++)
        if (v->brokers[i].b.id == id) {
            snprintf(host, cap, "%s", v->brokers[i].host);
            *port = v->brokers[i].port;
            return 0;
        }
    return -1;
}

void bk__cluster_follower_fetch(bk_server_t *s, const char *topic, size_t len, int32_t p,
                                int32_t replica, int64_t offset)
{
    bk_cluster_t *c = s->cluster;
    const bk_ctopic_t *t = vtopic(c->view, topic, len);
    const rp_pstate_t *st = vstate(c->view, topic, len, p);
    if (!leads(c, st))
        return;
    bk_lpart_t *lp = lpart(c, topic, len, p, 0); /* made by install when it saw us lead */
    bk_part_t *bp = bk__part_find(s, topic, len, p);
    if (!lp || !bp || lp->isr.leader_epoch != st->leader_epoch)
        return;
    int in_sync = rp_isr_fetch(&lp->isr, replica, offset, st_log_high_watermark(bp->log),
                              sc_mono_ms());
    if (in_sync < 0)
        return; /* not a replica of it */
    if (in_sync && !rp_id_in(st->isr, st->nisr, replica))
        isr_duty(c, t, p); /* re-admit now rather than at the next view */
    update_hw(c, bp, 1); /* its fetch offset may raise the high watermark */
}

/* The partitions this broker replicates but does not lead, to the fetcher. */
static void publish_follow(bk_cluster_t *c)
{
    bk_server_t *s = c->srv;
    const bk_cview_t *v = c->view;
    size_t cap = 0, n = 0;
    if (v->fenced) { /* session expired: follows nothing */
        bk__follow_publish(s, NULL, 0);
        return;
    }
    for (size_t i = 0; i < v->ntopics; i++)
        cap += (size_t)v->topics[i].nparts;
    bk_follow_part_t *fp = cap ? sc_calloc(cap, sizeof *fp) : NULL;
    if (cap && !fp)
        return;
    int32_t me = s->cfg->node_id;
    for (size_t i = 0; i < v->ntopics; i++) {
        const bk_ctopic_t *t = &v->topics[i];
        for (int32_t p = 0; p < t->nparts; p++) {
            const rp_pstate_t *st = &t->st[p];
            if (!t->have[p] || st->leader < 0 || st->leader == me ||
                !rp_id_in(st->replicas, st->nreplicas, me))
                continue;
            for (int b = 0; b < v->nbrokers; b++)
                if (v->brokers[b].b.id == st->leader) {
                    fp[n].topic = t->name;
                    fp[n].partition = p;
                    fp[n].leader = st->leader;
                    fp[n].leader_epoch = st->leader_epoch;
                    fp[n].host = v->brokers[b].host;
                    fp[n].port = v->brokers[b].port;
                    n++;
                }
        }
    }
    bk__follow_publish(s, fp, n);
    sc_free(fp);
}

/* Installs what the cluster thread published: the topic registry it read
 * (local logs follow), then its view; leadership or ISR may have changed:
 * the leader's state, producer state, ISR, high watermarks, waits, the
 * followed partitions. */
static void install(bk_cluster_t *c)
{
    bk_server_t *s = c->srv;
    pthread_mutex_lock(&c->mu);
    bk_cview_t *v = c->pending;
    c->pending = NULL;
    pthread_mutex_unlock(&c->mu);
    if (c->stopped) {
        view_free(v);
        return;
    }
    int fresh = rp_zk_topics_offered(c->zk);
    if (fresh > 0) {
        int rc = bk_topics_reload(s->topics);
        if (rc)
            SC_WARN(SUB, "re-reading topics: %s", sc_err_str(rc));
    } else if (fresh < 0)
        notify(c, NULL); /* read before a topic change of ours: read again */
    if (!v)
        return;
    view_free(c->view);
    c->view = v;
    int64_t now = sc_mono_ms();
    for (size_t i = 0; i < v->ntopics; i++) {
        const bk_ctopic_t *t = &v->topics[i];
        for (int32_t p = 0; p < t->nparts; p++) {
            bk_part_t *bp = bk__part_find(s, t->name, strlen(t->name), p);
            if (!bp)
                continue;
            bk_lpart_t *lp = t->have[p] && leads(c, &t->st[p])
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
    if (v->shutdown_done && c->shutdown_then) {
        void (*then)(bk_server_t *) = c->shutdown_then;
        c->shutdown_then = NULL;
        then(s);
    }
}

static void on_async(uv_async_t *h) { install(h->data); }

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
    /* a restart right after a crash finds the registration of its previous
     * session until ZooKeeper expires that session: up to its timeout plus
     * the server's expiry tick, later under load -- wait for it generously */
    int rc = rp_zk_register(c->zk, &c->self, host, port,
                            2 * cfg->zookeeper_session_timeout_ms + 4000);
    if (rc)
        return rc;
    c->registered = 1;
    /* the metadata store's writes: on its worker, answered through shard 0's loop */
    if ((rc = bk_topics_async_start(s->topics, &s->shard0.loop)) != 0)
        return rc;
    uv_async_init(&s->shard0.loop, &c->async, on_async);
    c->async.data = c;
    uv_timer_init(&s->shard0.loop, &c->wtimer);
    c->wtimer.data = c;
    uv_timer_init(&s->shard0.loop, &c->stimer);
    c->stimer.data = c;
    c->wtimer_at = INT64_MAX;
    if ((rc = bk__follow_start(s)) != 0)
        return rc;
    /* the first refresh here, before anything is served; the thread after */
    ct_refresh(c);
    install(c);
    pthread_mutex_lock(&c->mu);
    c->handles = 1;
    pthread_mutex_unlock(&c->mu);
    if ((rc = pthread_create(&c->thread, NULL, ct_main, c)) != 0) {
        SC_ERROR(SUB, "cluster thread: %s", strerror(rc));
        return SC_ERR_NO_MEMORY;
    }
    c->thread_on = 1;
    return 0;
}

/* The controlled shutdown's bound (shard 0): the cluster thread may be stuck
 * on a ZooKeeper that does not answer. */
static void on_stimer(uv_timer_t *h)
{
    bk_cluster_t *c = h->data;
    if (!c->shutdown_then)
        return;
    SC_WARN(SUB, "controlled shutdown: not finished after %d ms; stopping anyway",
            BK_CLUSTER_SHUTDOWN_MS);
    void (*then)(bk_server_t *) = c->shutdown_then;
    c->shutdown_then = NULL;
    then(c->srv);
}

int bk__cluster_shutdown(bk_server_t *s, void (*then)(bk_server_t *s))
{
    bk_cluster_t *c = s->cluster;
    if (!c || !c->thread_on || c->stopped || c->shutdown_then ||
        !s->cfg->controlled_shutdown_enable)
        return 0;
    pthread_mutex_lock(&c->mu);
    int again = c->shutdown_req;
    c->shutdown_req = 1;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
    if (again)
        return 0; /* asked twice: stop now */
    c->shutdown_then = then;
    uv_timer_start(&c->stimer, on_stimer, BK_CLUSTER_SHUTDOWN_MS + 500, 0);
    SC_INFO(SUB, "controlled shutdown: serving until this broker's leadership has moved");
    return 1;
}

void bk__cluster_stop(bk_server_t *s)
{
    bk_cluster_t *c = s->cluster;
    if (!c || c->stopped)
        return;
    c->stopped = 1;
    c->shutdown_then = NULL;
    pthread_mutex_lock(&c->mu);
    c->closed = 1; /* no uv_async_send from now on */
    c->quit = 1;   /* the thread resigns the controller role and ends */
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
    if (c->handles) {
        uv_close((uv_handle_t *)&c->async, NULL);
        uv_close((uv_handle_t *)&c->wtimer, NULL);
        uv_close((uv_handle_t *)&c->stimer, NULL);
    }
    check_all_waits(c); /* stopped: acks=all still waiting get NOT_LEADER_OR_FOLLOWER */
    bk__follow_stop(s);
    bk_topics_async_stop(s->topics); /* queued admin writes answered (bk_topics.h) */
}

static bk_cluster_t *left_behind; /* see bk__cluster_free (still reachable, not a leak) */

void bk__cluster_free(bk_server_t *s)
{
    bk_cluster_t *c = s->cluster;
    if (!c)
        return;
    if (c->thread_on) {
        /* The thread may be inside a ZooKeeper call that waits for the
         * client's timeout (a hung server): waited for BK_CLUSTER_JOIN_MS,
         * then left behind with its state (it reads nothing of the server's)
         * rather than holding up the exit. */
        int64_t until = sc_mono_ms() + BK_CLUSTER_JOIN_MS;
        pthread_mutex_lock(&c->mu);
        c->closed = 1;
        c->quit = 1;
        pthread_cond_broadcast(&c->cv);
        while (!c->exited && sc_mono_ms() < until) {
            struct timespec ts = {.tv_sec = (time_t)(until / 1000),
                                  .tv_nsec = (long)(until % 1000) * 1000000L};
            pthread_cond_timedwait(&c->cv, &c->mu, &ts);
        }
        int exited = c->exited;
        pthread_mutex_unlock(&c->mu);
        if (!exited) {
            SC_WARN(SUB, "cluster thread still waiting for ZooKeeper after %d ms; not waiting "
                         "for it", BK_CLUSTER_JOIN_MS);
            pthread_detach(c->thread);
            bk__follow_free(s);
            left_behind = c; /* c and its session stay with the thread until exit */
            s->cluster = NULL;
            return;
        }
        pthread_join(c->thread, NULL);
    }
    bk__follow_free(s);
    if (bk_topics_left_behind()) {
        /* the store worker is still inside a ZooKeeper call on this session */
        left_behind = c;
        s->cluster = NULL;
        return;
    }
    rp_zk_close(c->zk); /* ephemeral nodes (registration) go with the session; no watch after */
    view_free(c->view);
    view_free(c->pending);
    while (c->reqs) {
        bk_isr_req_t *r = c->reqs;
        c->reqs = r->next;
        sc_free(r);
    }
    dirty_free(c->dirty);
    ctopics_free(c->ct.topics, c->ct.ntopics);
    sc_free(c->ct.brokers);
    while (c->led) {
        bk_lpart_t *l = c->led;
        c->led = l->next;
        rp_isr_fini(&l->isr); /* answered at stop */
        sc_free(l);
    }
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    sc_free(c);
    s->cluster = NULL;
}

/* ---- what handlers read (the installed view) ---------------------------------------- */

int32_t bk__cluster_leader(const bk_server_t *s, const char *topic, size_t len, int32_t p)
{
    const bk_cluster_t *c = s->cluster;
    const rp_pstate_t *st = c ? vstate(c->view, topic, len, p) : NULL;
    if (st && c->view->fenced && st->leader == s->cfg->node_id)
        return -1; /* session expired: not this broker, whatever it last read */
    return st ? st->leader : -1;
}

int32_t bk__cluster_leader_epoch(const bk_server_t *s, const char *topic, size_t len, int32_t p)
{
    const rp_pstate_t *st = s->cluster ? vstate(s->cluster->view, topic, len, p) : NULL;
    return st ? st->leader_epoch : 0;
}

int bk__cluster_not_leader(const bk_server_t *s, const char *topic, size_t len, int32_t p)
{
    return s->cluster && bk__cluster_leader(s, topic, len, p) != s->cfg->node_id;
}

int bk__cluster_isr_short(const bk_server_t *s, const char *topic, size_t len, int32_t p)
{
    const rp_pstate_t *st = s->cluster ? vstate(s->cluster->view, topic, len, p) : NULL;
    /* no state (or not cluster mode): answered elsewhere */
    return st && st->nisr < min_insync(s, topic, len);
}

void bk__cluster_write_brokers(bk_server_t *s, sc_kw_t *w, int v)
{
    const bk_cview_t *cv = s->cluster->view;
    sc_kw_array_len(w, cv->nbrokers);
    for (int i = 0; i < cv->nbrokers; i++) {
        const rp_zk_broker_t *b = &cv->brokers[i];
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

int32_t bk__cluster_controller(const bk_server_t *s) { return s->cluster->view->controller_id; }

void bk__cluster_write_partitions(bk_server_t *s, sc_kw_t *w, int v, const char *name, size_t len,
                                  int32_t partitions)
{
    const bk_cview_t *cv = s->cluster->view;
    const bk_ctopic_t *t = vtopic(cv, name, len);
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
                off += !is_live(cv, st->replicas[i]);
            sc_kw_array_len(w, off);
            for (int i = 0; st && i < st->nreplicas; i++)
                if (!is_live(cv, st->replicas[i]))
                    sc_kw_i32(w, st->replicas[i]);
        }
    }
}
