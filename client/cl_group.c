/*
 * cl_group -- consumer-group membership and commits (contract in
 * cl_group.h and strata/client.h).
 *
 * Coordinator: FindCoordinator (key type 0) to any broker, then a dedicated
 * connection to the coordinator (node id CL_COORD_ID(node)), as the Java
 * client and librdkafka do: a JoinGroup parks on the broker for up to the
 * rebalance timeout and responses come back in request order, so Fetch and
 * Metadata must not queue behind it. NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE
 * or a broken connection forget the coordinator; the next request finds it
 * again.
 *
 * Member life (g->state):
 *
 *   IDLE --subscribe--> JOIN --JoinGroup--> JOINING --leader--> METADATA --> SYNCING
 *                        ^                     |  \--follower------------------^   |
 *                        |                     v                                   v
 *                        +---- REBALANCE_IN_PROGRESS / ILLEGAL_GENERATION /      STABLE
 *                              UNKNOWN_MEMBER_ID (member id reset) ---------- (Heartbeat)
 *   STABLE --app stops polling for max.poll.interval.ms--> POLL_EXPIRED (LeaveGroup;
 *            the next poll rejoins)
 *   any --close / unsubscribe--> LEAVING (revoke, final auto-commit, LeaveGroup
 *            unless group.instance.id is set) --> IDLE / CLOSED
 *   FATAL: INCONSISTENT_GROUP_PROTOCOL, INVALID_SESSION_TIMEOUT, INVALID_GROUP_ID,
 *          GROUP_AUTHORIZATION_FAILED, GROUP_MAX_SIZE_REACHED, FENCED_INSTANCE_ID:
 *          reported through poll as a message with err, no more joins.
 *
 * The protocol is eager: before every JoinGroup the whole assignment is
 * revoked (revoke callback, auto-commit of the positions first when
 * enable.auto.commit), so the subscription's owned partitions are empty.
 *
 * Callbacks: rebalance and commit callbacks run in cl_group_deliver, on the
 * I/O thread, without mu. A revoke runs before the JoinGroup is sent, so a
 * commit_async made in it reaches the coordinator first and carries the
 * generation the positions belong to.
 *
 * Commits carry the generation and member id the consumer holds when they
 * are sent (-1 / "" outside a group: a "simple" commit, which the coordinator
 * accepts only for an Empty group). After a fencing the old pair is kept
 * until the next join, so a commit made in between gets the coordinator's
 * ILLEGAL_GENERATION / UNKNOWN_MEMBER_ID, reported to the caller.
 */
#include "cl_group.h"

#include "sc_err.h"
#include "sc_kafka.h"
#include "sc_log.h"
#include "sc_mem.h"
#include "sc_time.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LOGSYS "group"
#define CL_COORD_ID(node) (-1000000000 - (node))
#define MAX_STRATEGIES 4

/* ======================================================================================
 * ConsumerProtocol encodings
 * ====================================================================================== */

static void tparts_free(cl_cp_tparts_t *t, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        sc_free(t[i].topic);
        sc_free(t[i].parts);
    }
    sc_free(t);
}

static void write_tparts(sc_kw_t *w, const cl_cp_tparts_t *t, size_t n)
{
    sc_kw_array_len(w, (int32_t)n);
    for (size_t i = 0; i < n; i++) {
        sc_kw_cstr(w, 0, t[i].topic);
        sc_kw_array_len(w, (int32_t)t[i].nparts);
        for (size_t j = 0; j < t[i].nparts; j++)
            sc_kw_i32(w, t[i].parts[j]);
    }
}

int cl_cp_sub_encode(sc_buf_t *out, const cl_cp_sub_t *s)
{
    sc_kw_t w;

    sc_kw_init(&w, out);
    sc_kw_i16(&w, s->version);
    sc_kw_array_len(&w, (int32_t)s->ntopics);
    for (size_t i = 0; i < s->ntopics; i++)
        sc_kw_cstr(&w, 0, s->topics[i]);
    sc_kw_bytes(&w, s->user_data_len < 0 ? NULL : (s->user_data ? s->user_data : (void *)""),
                s->user_data_len < 0 ? 0 : (size_t)s->user_data_len);
    if (s->version >= 1)
        write_tparts(&w, s->owned, s->nowned);
    if (s->version >= 2)
        sc_kw_i32(&w, s->generation);
    if (s->version >= 3)
        sc_kw_string(&w, s->rack, s->rack ? strlen(s->rack) : 0);
    return w.err;
}

int cl_cp_assign_encode(sc_buf_t *out, const cl_cp_assign_t *a)
{
    sc_kw_t w;

    sc_kw_init(&w, out);
    sc_kw_i16(&w, a->version);
    write_tparts(&w, a->tps, a->ntps);
    sc_kw_bytes(&w, a->user_data_len < 0 ? NULL : (a->user_data ? a->user_data : (void *)""),
                a->user_data_len < 0 ? 0 : (size_t)a->user_data_len);
    return w.err;
}

static char *kstr_dup(const sc_kstr_t *s)
{
    char *p;
    if (s->len < 0)
        return NULL;
    if (!(p = sc_malloc((size_t)s->len + 1)))
        return NULL;
    memcpy(p, s->p, (size_t)s->len);
    p[s->len] = 0;
    return p;
}

static int read_bytes_copy(sc_rd_t *r, uint8_t **out, int32_t *len)
{
    sc_kbytes_t b;
    if (sc_kr_bytes(r, 1, &b))
        return SC_ERR_BAD_FORMAT;
    *len = b.len;
    *out = NULL;
    if (b.len > 0) {
        if (!(*out = sc_malloc((size_t)b.len)))
            return SC_ERR_NO_MEMORY;
        memcpy(*out, b.p, (size_t)b.len);
    }
    return 0;
}

static int read_tparts(sc_rd_t *r, cl_cp_tparts_t **out, size_t *n)
{
    int32_t nt, np;

    *out = NULL;
    *n = 0;
    if (sc_kr_array_len(r, 1, 6, &nt))
        return SC_ERR_BAD_FORMAT;
    if (nt <= 0)
        return 0;
    if (!(*out = sc_calloc((size_t)nt, sizeof **out)))
        return SC_ERR_NO_MEMORY;
    for (int32_t i = 0; i < nt; i++) {
        sc_kstr_t name;
        cl_cp_tparts_t *t = &(*out)[i];
        if (sc_kr_string(r, 0, &name) || sc_kr_array_len(r, 1, 4, &np))
            return SC_ERR_BAD_FORMAT;
        (*n)++;
        if (!(t->topic = kstr_dup(&name)))
            return SC_ERR_NO_MEMORY;
        if (np > 0 && !(t->parts = sc_calloc((size_t)np, sizeof *t->parts)))
            return SC_ERR_NO_MEMORY;
        for (int32_t j = 0; j < np; j++)
            t->parts[t->nparts++] = sc_kr_i32(r);
        if (r->err)
            return SC_ERR_BAD_FORMAT;
    }
    return 0;
}

int cl_cp_sub_decode(const void *p, size_t n, cl_cp_sub_t *out)
{
    sc_rd_t r;
    int32_t nt;
    int rc = SC_ERR_BAD_FORMAT;

    memset(out, 0, sizeof *out);
    out->generation = -1;
    sc_rd_init(&r, p, n);
    out->version = sc_kr_i16(&r);
    if (r.err || out->version < 0 || sc_kr_array_len(&r, 1, 2, &nt))
        goto fail;
    if (nt > 0 && !(out->topics = sc_calloc((size_t)nt, sizeof *out->topics))) {
        rc = SC_ERR_NO_MEMORY;
        goto fail;
    }
    for (int32_t i = 0; i < nt; i++) {
        sc_kstr_t s;
        if (sc_kr_string(&r, 0, &s))
            goto fail;
        if (!(out->topics[out->ntopics] = kstr_dup(&s))) {
            rc = SC_ERR_NO_MEMORY;
            goto fail;
        }
        out->ntopics++;
    }
    if ((rc = read_bytes_copy(&r, &out->user_data, &out->user_data_len)))
        goto fail;
    rc = SC_ERR_BAD_FORMAT;
    if (out->version >= 1 && (rc = read_tparts(&r, &out->owned, &out->nowned)))
        goto fail;
    rc = SC_ERR_BAD_FORMAT;
    if (out->version >= 2) {
        out->generation = sc_kr_i32(&r);
        if (r.err)
            goto fail;
    }
    if (out->version >= 3) {
        sc_kstr_t rack;
        if (sc_kr_string(&r, 1, &rack))
            goto fail;
        if (rack.len >= 0 && !(out->rack = kstr_dup(&rack))) {
            rc = SC_ERR_NO_MEMORY;
            goto fail;
        }
    }
    return 0;
fail:
    cl_cp_sub_free(out);
    return rc;
}

int cl_cp_assign_decode(const void *p, size_t n, cl_cp_assign_t *out)
{
    sc_rd_t r;
    int rc = SC_ERR_BAD_FORMAT;

    memset(out, 0, sizeof *out);
    sc_rd_init(&r, p, n);
    out->version = sc_kr_i16(&r);
    if (r.err || out->version < 0)
        goto fail;
    if ((rc = read_tparts(&r, &out->tps, &out->ntps)))
        goto fail;
    /* user data: Java, librdkafka and kafka-python always write it; tolerate
     * its absence (null) */
    out->user_data_len = -1;
    if (sc_rd_left(&r) && (rc = read_bytes_copy(&r, &out->user_data, &out->user_data_len)))
        goto fail;
    return 0;
fail:
    cl_cp_assign_free(out);
    return rc;
}

void cl_cp_sub_free(cl_cp_sub_t *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->ntopics; i++)
        sc_free(s->topics[i]);
    sc_free(s->topics);
    sc_free(s->user_data);
    tparts_free(s->owned, s->nowned);
    sc_free(s->rack);
    memset(s, 0, sizeof *s);
    s->generation = -1;
}

void cl_cp_assign_free(cl_cp_assign_t *a)
{
    if (!a)
        return;
    tparts_free(a->tps, a->ntps);
    sc_free(a->user_data);
    memset(a, 0, sizeof *a);
}

/* ======================================================================================
 * Assignors
 * ====================================================================================== */

int cl_assignor_known(const char *name)
{
    return name && (!strcmp(name, "range") || !strcmp(name, "roundrobin"));
}

/* Java's ConsumerPartitionAssignor.MemberInfo order. */
static const cl_asg_member_t *sort_members_base;
static int member_cmp(const void *a, const void *b)
{
    const cl_asg_member_t *x = &sort_members_base[*(const size_t *)a];
    const cl_asg_member_t *y = &sort_members_base[*(const size_t *)b];
    if (x->instance_id && y->instance_id)
        return strcmp(x->instance_id, y->instance_id);
    if (x->instance_id)
        return -1;
    if (y->instance_id)
        return 1;
    return strcmp(x->member_id, y->member_id);
}

static const cl_asg_topic_t *sort_topics_base;
static int topic_cmp(const void *a, const void *b)
{
    return strcmp(sort_topics_base[*(const size_t *)a].name,
                  sort_topics_base[*(const size_t *)b].name);
}

static pthread_mutex_t sort_mu = PTHREAD_MUTEX_INITIALIZER;

static int subscribed_to(const cl_asg_member_t *m, const char *topic)
{
    for (size_t i = 0; i < m->ntopics; i++)
        if (!strcmp(m->topics[i], topic))
            return 1;
    return 0;
}

static int out_add(cl_asg_out_t *o, size_t topic, int32_t part)
{
    if (o->n == o->cap) {
        size_t ncap = o->cap ? o->cap * 2 : 8;
        cl_asg_tp_t *nt = sc_realloc(o->tps, ncap * sizeof *nt);
        if (!nt)
            return SC_ERR_NO_MEMORY;
        o->tps = nt;
        o->cap = ncap;
    }
    o->tps[o->n].topic = topic;
    o->tps[o->n].part = part;
    o->n++;
    return 0;
}

void cl_asg_out_free(cl_asg_out_t *out, size_t nm)
{
    for (size_t i = 0; out && i < nm; i++) {
        sc_free(out[i].tps);
        out[i].tps = NULL;
        out[i].n = out[i].cap = 0;
    }
}

int cl_assign(const char *name, const cl_asg_member_t *members, size_t nm,
              const cl_asg_topic_t *topics, size_t nt, cl_asg_out_t *out)
{
    size_t *mo = NULL, *to = NULL, *sub = NULL;
    int rc = 0;

    if (!cl_assignor_known(name))
        return -EINVAL;
    if (!nm)
        return 0;
    mo = sc_calloc(nm, sizeof *mo);
    to = sc_calloc(nt + 1, sizeof *to);
    sub = sc_calloc(nm, sizeof *sub);
    if (!mo || !to || !sub) {
        rc = SC_ERR_NO_MEMORY;
        goto out;
    }
    for (size_t i = 0; i < nm; i++)
        mo[i] = i;
    for (size_t i = 0; i < nt; i++)
        to[i] = i;
    pthread_mutex_lock(&sort_mu);
    sort_members_base = members;
    qsort(mo, nm, sizeof *mo, member_cmp);
    sort_topics_base = topics;
    qsort(to, nt, sizeof *to, topic_cmp);
    pthread_mutex_unlock(&sort_mu);

    if (!strcmp(name, "range")) {
        /* RangeAssignor: per topic, the subscribed members in order; member i
         * of c gets n/c partitions, the first n%c one more, contiguous. */
        for (size_t ti = 0; ti < nt; ti++) {
            const cl_asg_topic_t *t = &topics[to[ti]];
            size_t c = 0;
            for (size_t k = 0; k < nm; k++)
                if (subscribed_to(&members[mo[k]], t->name))
                    sub[c++] = mo[k];
            if (!c || t->nparts <= 0)
                continue;
            int32_t per = t->nparts / (int32_t)c, extra = t->nparts % (int32_t)c;
            for (size_t i = 0; i < c; i++) {
                int32_t start = per * (int32_t)i + ((int32_t)i < extra ? (int32_t)i : extra);
                int32_t len = per + ((int32_t)i + 1 > extra ? 0 : 1);
                for (int32_t p = start; p < start + len; p++)
                    if ((rc = out_add(&out[sub[i]], to[ti], p)))
                        goto out;
            }
        }
    } else {
        /* RoundRobinAssignor: every partition of every subscribed topic in
         * (topic, partition) order, dealt to the members in a circle, skipping
         * members not subscribed to the partition's topic. */
        size_t k = 0;
        for (size_t ti = 0; ti < nt; ti++) {
            const cl_asg_topic_t *t = &topics[to[ti]];
            int any = 0;
            for (size_t i = 0; i < nm; i++)
                any |= subscribed_to(&members[i], t->name);
            if (!any)
                continue;
            for (int32_t p = 0; p < t->nparts; p++) {
                while (!subscribed_to(&members[mo[k]], t->name))
                    k = (k + 1) % nm;
                if ((rc = out_add(&out[mo[k]], to[ti], p)))
                    goto out;
                k = (k + 1) % nm;
            }
        }
    }
out:
    if (rc)
        cl_asg_out_free(out, nm);
    sc_free(mo);
    sc_free(to);
    sc_free(sub);
    return rc;
}

/* ======================================================================================
 * The group state machine
 * ====================================================================================== */

enum {
    S_IDLE = 0,
    S_JOIN,
    S_JOINING,
    S_METADATA,
    S_SYNCING,
    S_STABLE,
    S_POLL_EXPIRED,
    S_LEAVING,
    S_FATAL,
};

static const char *state_name[] = {"idle",   "join",         "joining", "metadata", "syncing",
                                   "stable", "poll-expired", "leaving", "fatal"};

enum { COORD_UNKNOWN = 0, COORD_FINDING, COORD_KNOWN };
enum { CK_SYNC = 0, CK_ASYNC, CK_AUTO };

typedef struct gcommit {
    struct gcommit *next;
    strata_topic_partition_t *tps; /* topic strings in the same allocation */
    size_t n;
    int kind;
    strata_commit_cb cb;
    void *cb_arg;
    int64_t deadline_ms;
    int done, abandoned;
    strata_err_t err;
} gcommit_t;

typedef struct {
    char *member_id;
    char *instance_id;
    cl_cp_sub_t sub;
} lmember_t;

struct cl_group {
    strata_consumer_t *c;
    cl_client_t *cl;
    const char *group_id;    /* conf's */
    const char *instance_id; /* conf's, NULL when empty */
    char *strategies[MAX_STRATEGIES];
    int nstrategies;
    /* coordinator */
    int coord_state;
    int32_t coord_node;
    cl_broker_t *coord;
    int64_t coord_retry_ms;
    /* membership */
    int state;
    int subscribed;
    char **topics;
    size_t ntopics;
    strata_rebalance_cb rb_cb;
    void *rb_arg;
    char *member_id;
    int32_t generation;
    char *protocol;
    int reset_on_join; /* forget member id / generation at the next join */
    int sync_sent;
    int64_t subscribed_at_ms;
    int64_t of_retry_ms;
    int64_t join_at_ms;
    int64_t hb_next_ms;
    int64_t hb_ok_ms; /* last sign of life from the coordinator for this member */
    int hb_inflight;
    uint64_t epoch; /* bumped on every state reset: stale answers are ignored */
    /* leader */
    lmember_t *lm;
    size_t nlm;
    cl_asg_topic_t *snap; /* partition counts the last assignment used (names owned) */
    size_t nsnap;
    int64_t md_mark, md_deadline;
    /* assignment as the group gave it */
    strata_topic_partition_t *assigned;
    size_t nassigned;
    strata_topic_partition_t *incoming; /* from SyncGroup, applied in deliver */
    size_t nincoming;
    int assign_pending, revoke_pending, revoke_fenced;
    int in_callback;
    /* commits */
    gcommit_t *cq, *cq_tail; /* to send */
    gcommit_t *cdone;        /* async, completed, callback pending */
    int ninflight_commits;
    int64_t autocommit_next_ms;
    int of_inflight;
    /* leave / close */
    int leave_req;   /* close or unsubscribe asked */
    int leave_close; /* ... and it was close */
    int leave_sent;
    int leave_done;
    int leave_nothing; /* no LeaveGroup to send: done once commits drained */
    int closed;
};

cl_group_t *cl_group_new(strata_consumer_t *c, cl_client_t *cl, const strata_conf_t *conf)
{
    cl_group_t *g = sc_calloc(1, sizeof *g);
    const char *s;

    if (!g)
        return NULL;
    g->c = c;
    g->cl = cl;
    g->group_id = conf->group_id;
    g->instance_id =
        conf->group_instance_id && conf->group_instance_id[0] ? conf->group_instance_id : NULL;
    g->generation = -1;
    g->coord_node = -1;
    s = conf->partition_assignment_strategy ? conf->partition_assignment_strategy : "";
    while (*s && g->nstrategies < MAX_STRATEGIES) {
        const char *e = strchr(s, ',');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        while (len && *s == ' ')
            s++, len--;
        while (len && s[len - 1] == ' ')
            len--;
        if (len) {
            char *n = sc_malloc(len + 1);
            if (!n)
                goto oom;
            memcpy(n, s, len);
            n[len] = 0;
            /* Java class names map to the protocol names they register */
            if (!strcmp(n, "org.apache.kafka.clients.consumer.RangeAssignor"))
                strcpy(n, "range");
            else if (!strcmp(n, "org.apache.kafka.clients.consumer.RoundRobinAssignor"))
                strcpy(n, "roundrobin");
            g->strategies[g->nstrategies++] = n;
        }
        s += len;
        while (*s == ' ')
            s++;
        if (*s == ',')
            s++;
    }
    return g;
oom:
    for (int i = 0; i < g->nstrategies; i++)
        sc_free(g->strategies[i]);
    sc_free(g);
    return NULL;
}

static void tps_free(strata_topic_partition_t *t, size_t n)
{
    for (size_t i = 0; i < n; i++)
        sc_free((char *)t[i].topic);
    sc_free(t);
}

static void snap_free(cl_group_t *g)
{
    for (size_t i = 0; i < g->nsnap; i++)
        sc_free((char *)g->snap[i].name);
    sc_free(g->snap);
    g->snap = NULL;
    g->nsnap = 0;
}

/* Leader: keeps the partition counts the assignment was computed from. */
static void snap_take(cl_group_t *g, const cl_asg_topic_t *ts, size_t n)
{
    snap_free(g);
    if (!n || !(g->snap = sc_calloc(n, sizeof *g->snap)))
        return;
    for (size_t i = 0; i < n; i++) {
        if (!(g->snap[i].name = sc_strdup(ts[i].name))) {
            snap_free(g);
            return;
        }
        g->snap[i].nparts = ts[i].nparts;
        g->nsnap++;
    }
}

/* Leader, stable: a subscribed topic's partition count changed since the
 * assignment (as the Java leader does: rejoin so the new partitions are
 * assigned). */
static int snap_changed(cl_group_t *g)
{
    for (size_t i = 0; i < g->nsnap; i++) {
        cl_topic_t *t = cl_topic_find(g->cl, g->snap[i].name);
        if (t && !t->err && t->nparts > 0 && t->nparts != g->snap[i].nparts) {
            SC_INFO(LOGSYS,
                    "group %s: topic %s now has %d partition(s), the assignment used "
                    "%d: rejoining",
                    g->group_id, g->snap[i].name, t->nparts, g->snap[i].nparts);
            return 1;
        }
    }
    return 0;
}

static void lm_free(cl_group_t *g)
{
    for (size_t i = 0; i < g->nlm; i++) {
        sc_free(g->lm[i].member_id);
        sc_free(g->lm[i].instance_id);
        cl_cp_sub_free(&g->lm[i].sub);
    }
    sc_free(g->lm);
    g->lm = NULL;
    g->nlm = 0;
}

int cl_group_subscribed(const cl_group_t *g)
{
    return g && g->subscribed;
}
int cl_group_closed(const cl_group_t *g)
{
    return g && g->closed;
}

void cl_group_polled(cl_group_t *g)
{
    if (g && g->state == S_POLL_EXPIRED && g->subscribed && !g->leave_req) {
        SC_INFO(LOGSYS, "group %s: the application polls again, rejoining", g->group_id);
        g->state = S_JOIN;
        g->join_at_ms = 0;
        cl_client_wake(g->cl);
    }
}

static void set_state(cl_group_t *g, int s)
{
    if (g->state != s)
        SC_DEBUG(LOGSYS, "group %s: %s -> %s", g->group_id, state_name[g->state], state_name[s]);
    g->state = s;
}

static void coord_lost(cl_group_t *g, int err)
{
    if (g->coord_state == COORD_KNOWN)
        SC_INFO(LOGSYS, "group %s: coordinator %d lost (%s), looking it up again", g->group_id,
                g->coord_node, sc_err_str(err));
    g->coord_state = COORD_UNKNOWN;
    g->coord = NULL;
}

static int coord_err(int err)
{
    return err == SC_ERR_NOT_COORDINATOR || err == SC_ERR_COORDINATOR_NOT_AVAILABLE ||
           (err < 0 && err > -4096) || err == SC_ERR_REQUEST_TIMED_OUT ||
           err == SC_ERR_NETWORK_EXCEPTION;
}

/* A membership problem: rejoin (after revoking). reset: forget member id. */
static void need_rejoin(cl_group_t *g, int err)
{
    g->epoch++;
    g->hb_inflight = 0;
    lm_free(g);
    if (err == SC_ERR_UNKNOWN_MEMBER_ID || err == SC_ERR_ILLEGAL_GENERATION ||
        err == SC_ERR_FENCED_INSTANCE_ID)
        g->revoke_fenced = 1;
    if (err == SC_ERR_UNKNOWN_MEMBER_ID)
        g->reset_on_join = 1;
    if (g->state == S_POLL_EXPIRED || g->state == S_LEAVING || g->state == S_FATAL ||
        g->state == S_IDLE)
        return;
    SC_INFO(LOGSYS, "group %s: rejoining (%s)", g->group_id,
            err ? sc_err_str(err) : "subscription or partition count changed");
    if (g->nassigned)
        g->revoke_pending = 1;
    set_state(g, S_JOIN);
}

static int fatal_err(int err)
{
    switch (err) {
    case SC_ERR_INCONSISTENT_GROUP_PROTOCOL:
    case SC_ERR_INVALID_SESSION_TIMEOUT:
    case SC_ERR_INVALID_GROUP_ID:
    case SC_ERR_GROUP_AUTHORIZATION_FAILED:
    case SC_ERR_GROUP_MAX_SIZE_REACHED:
    case SC_ERR_FENCED_INSTANCE_ID:
        return 1;
    default:
        return 0;
    }
}

static void go_fatal(cl_group_t *g, int err, const char *what)
{
    SC_ERROR(LOGSYS, "group %s: %s: %s; not rejoining", g->group_id, what, sc_err_str(err));
    g->epoch++;
    if (g->nassigned)
        g->revoke_pending = 1;
    g->revoke_fenced = 1;
    set_state(g, S_FATAL);
    cl_consumer_push_group_error(g->c, err);
}

/* The coordinator broker when it is connected, else NULL (connecting it). */
static cl_broker_t *coord_up(cl_group_t *g, int64_t now)
{
    if (g->coord_state != COORD_KNOWN || !g->coord)
        return NULL;
    if (g->coord->state == CL_BK_UP)
        return g->coord;
    if (g->coord->state == CL_BK_DOWN && g->coord->retry_at_ms <= now)
        cl_broker_connect(g->cl, g->coord, now);
    return NULL;
}

/* ---- FindCoordinator ------------------------------------------------------------------ */

typedef struct {
    cl_group_t *g;
    int16_t ver;
} freq_t;

static void on_find_coordinator(cl_client_t *cl, cl_broker_t *b, int err, sc_rd_t *r, void *arg)
{
    freq_t *q = arg;
    cl_group_t *g = q->g;
    int16_t ver = q->ver;
    int64_t now = sc_mono_ms();
    sc_kstr_t msg, host;
    int32_t node, port;

    sc_free(q);
    (void)b;
    if (g->coord_state != COORD_FINDING)
        return;
    g->coord_state = COORD_UNKNOWN;
    g->coord_retry_ms = now + cl->conf->retry_backoff_ms;
    if (err) {
        SC_DEBUG(LOGSYS, "group %s: FindCoordinator: %s", g->group_id, sc_err_str(err));
        return;
    }
    if (ver >= 1)
        sc_kr_i32(r);
    int16_t ec = sc_kr_i16(r);
    if (ver >= 1)
        sc_kr_string(r, 1, &msg);
    node = sc_kr_i32(r);
    sc_kr_string(r, 0, &host);
    port = sc_kr_i32(r);
    if (r->err) {
        SC_WARN(LOGSYS, "group %s: malformed FindCoordinator response", g->group_id);
        return;
    }
    if (ec) {
        SC_DEBUG(LOGSYS, "group %s: FindCoordinator: %s", g->group_id, sc_err_str(ec));
        if (fatal_err(ec) || ec == SC_ERR_INVALID_REQUEST)
            SC_WARN(LOGSYS, "group %s: FindCoordinator: %s", g->group_id, sc_err_str(ec));
        return;
    }
    char h[256];
    if (host.len <= 0 || host.len >= (int32_t)sizeof h || port <= 0 || port > 65535 || node < 0)
        return;
    memcpy(h, host.p, (size_t)host.len);
    h[host.len] = 0;
    cl_broker_t *cb = cl_broker_find(cl, CL_COORD_ID(node));
    if (cb && (strcmp(cb->host, h) || cb->port != port))
        cb = NULL; /* moved: a fresh connection entry */
    if (!cb && !(cb = cl_broker_add(cl, CL_COORD_ID(node), h, port)))
        return;
    g->coord = cb;
    g->coord_node = node;
    g->coord_state = COORD_KNOWN;
    SC_INFO(LOGSYS, "group %s: coordinator is broker %d (%s:%d)", g->group_id, node, h, port);
    cl_broker_connect(cl, cb, now);
}

static void find_coordinator(cl_group_t *g, int64_t now)
{
    cl_client_t *cl = g->cl;
    cl_broker_t *b;
    sc_buf_t body;
    sc_kw_t w;
    int16_t ver;
    freq_t *q;

    if (g->coord_state != COORD_UNKNOWN || now < g->coord_retry_ms)
        return;
    if (!(b = cl_broker_any(cl, now)))
        return;
    if (b->state != CL_BK_UP) {
        if (b->state == CL_BK_DOWN)
            cl_broker_connect(cl, b, now);
        return;
    }
    if ((ver = cl_broker_version(b, SC_KAFKA_API_FIND_COORDINATOR, 0, 2)) < 0) {
        SC_WARN(LOGSYS, "broker %s:%d supports no FindCoordinator v0-2", b->host, b->port);
        g->coord_retry_ms = now + 1000;
        return;
    }
    if (!(q = sc_calloc(1, sizeof *q)))
        return;
    q->g = g;
    q->ver = ver;
    sc_buf_init(&body);
    sc_kw_init(&w, &body);
    sc_kw_cstr(&w, 0, g->group_id);
    if (ver >= 1)
        sc_kw_i8(&w, 0); /* key type: group */
    if (w.err || cl_request(cl, b, SC_KAFKA_API_FIND_COORDINATOR, ver, &body, 0,
                            cl->conf->request_timeout_ms, on_find_coordinator, q)) {
        sc_free(q);
        g->coord_retry_ms = now + cl->conf->retry_backoff_ms;
    } else {
        g->coord_state = COORD_FINDING;
    }
    sc_buf_fini(&body);
}

/* ---- requests to the coordinator: common bits ----------------------------------------- */

typedef struct {
    cl_group_t *g;
    uint64_t epoch;
    int16_t ver;
    void *extra;
} greq_t;

static greq_t *greq_new(cl_group_t *g, int16_t ver)
{
    greq_t *q = sc_calloc(1, sizeof *q);
    if (q) {
        q->g = g;
        q->epoch = g->epoch;
        q->ver = ver;
    }
    return q;
}

static int send_req(cl_group_t *g, cl_broker_t *b, int16_t key, int16_t ver, sc_buf_t *body,
                    sc_kw_t *w, int64_t timeout, cl_resp_cb cb, greq_t *q)
{
    if (w->err || cl_request(g->cl, b, key, ver, body, 0, timeout, cb, q)) {
        sc_free(q);
        return SC_ERR_NO_MEMORY;
    }
    return 0;
}

static const char *nz(const char *s)
{
    return s ? s : "";
}

/* ---- JoinGroup ------------------------------------------------------------------------ */

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void on_join(cl_client_t *cl, cl_broker_t *b, int err, sc_rd_t *r, void *arg)
{
    greq_t *q = arg;
    cl_group_t *g = q->g;
    int16_t ver = q->ver;
    int64_t now = sc_mono_ms();
    uint64_t epoch = q->epoch;
    sc_kstr_t proto, leader, member;
    int32_t gen, nm;

    sc_free(q);
    (void)b;
    if (epoch != g->epoch || g->state != S_JOINING)
        return;
    if (err) {
        if (coord_err(err))
            coord_lost(g, err);
        set_state(g, S_JOIN);
        g->join_at_ms = now + cl->conf->retry_backoff_ms;
        return;
    }
    if (ver >= 2)
        sc_kr_i32(r);
    int16_t ec = sc_kr_i16(r);
    gen = sc_kr_i32(r);
    sc_kr_string(r, 1, &proto);
    sc_kr_string(r, 0, &leader);
    sc_kr_string(r, 0, &member);
    if (r->err)
        goto bad;
    if (ec) {
        if (ec == SC_ERR_MEMBER_ID_REQUIRED) {
            sc_free(g->member_id);
            g->member_id = kstr_dup(&member);
            SC_DEBUG(LOGSYS, "group %s: member id %s assigned, joining again", g->group_id,
                     nz(g->member_id));
            set_state(g, S_JOIN);
            g->join_at_ms = 0;
            return;
        }
        if (fatal_err(ec)) {
            go_fatal(g, ec, "JoinGroup");
            return;
        }
        if (coord_err(ec) || ec == SC_ERR_COORDINATOR_LOAD_IN_PROGRESS) {
            if (ec != SC_ERR_COORDINATOR_LOAD_IN_PROGRESS)
                coord_lost(g, ec);
        } else if (ec == SC_ERR_UNKNOWN_MEMBER_ID) {
            sc_free(g->member_id);
            g->member_id = NULL;
        } else if (ec != SC_ERR_REBALANCE_IN_PROGRESS && ec != SC_ERR_ILLEGAL_GENERATION) {
            SC_WARN(LOGSYS, "group %s: JoinGroup: %s", g->group_id, sc_err_str(ec));
        }
        SC_DEBUG(LOGSYS, "group %s: JoinGroup: %s, retrying", g->group_id, sc_err_str(ec));
        set_state(g, S_JOIN);
        g->join_at_ms = ec == SC_ERR_REBALANCE_IN_PROGRESS || ec == SC_ERR_UNKNOWN_MEMBER_ID
                            ? 0
                            : now + cl->conf->retry_backoff_ms;
        return;
    }
    if (proto.len <= 0)
        goto bad;
    sc_free(g->member_id);
    sc_free(g->protocol);
    g->member_id = kstr_dup(&member);
    g->protocol = kstr_dup(&proto);
    g->generation = gen;
    if (!g->member_id || !g->protocol)
        goto retry;
    lm_free(g);
    if (sc_kr_array_len(r, 0, 6, &nm))
        goto bad;
    int is_leader = leader.len == member.len && !memcmp(leader.p, member.p, (size_t)member.len);
    if (is_leader && nm > 0) {
        if (!(g->lm = sc_calloc((size_t)nm, sizeof *g->lm)))
            goto retry;
        for (int32_t i = 0; i < nm; i++) {
            sc_kstr_t mid, iid = {NULL, -1};
            sc_kbytes_t md;
            lmember_t *m = &g->lm[g->nlm];
            sc_kr_string(r, 0, &mid);
            if (ver >= 5)
                sc_kr_string(r, 1, &iid);
            if (sc_kr_bytes(r, 0, &md))
                goto bad;
            if (!(m->member_id = kstr_dup(&mid)) ||
                (iid.len >= 0 && !(m->instance_id = kstr_dup(&iid))))
                goto retry;
            g->nlm++;
            int rc = cl_cp_sub_decode(md.p, (size_t)md.len, &m->sub);
            if (rc == SC_ERR_NO_MEMORY)
                goto retry;
            if (rc)
                SC_WARN(LOGSYS,
                        "group %s: member %s sent a subscription that does not parse; "
                        "it gets no partitions",
                        g->group_id, m->member_id);
            for (size_t k = 0; k < m->sub.ntopics; k++)
                cl_topic_get(cl, m->sub.topics[k]);
        }
        SC_INFO(LOGSYS, "group %s: generation %d, leader with %zu member(s), protocol %s",
                g->group_id, gen, g->nlm, g->protocol);
        /* metadata answered from this millisecond on counts as fresh */
        g->md_mark = now - 1;
        /* bounded well inside the session: the followers wait in SyncGroup */
        g->md_deadline = now + (cl->conf->request_timeout_ms < cl->conf->session_timeout_ms / 2
                                    ? cl->conf->request_timeout_ms
                                    : cl->conf->session_timeout_ms / 2);
        cl_metadata_refresh(cl);
        g->sync_sent = 0;
        set_state(g, S_METADATA);
        return;
    }
    SC_INFO(LOGSYS, "group %s: generation %d, member %s, protocol %s", g->group_id, gen,
            g->member_id, g->protocol);
    g->sync_sent = 0; /* the empty SyncGroup is sent by serve */
    snap_free(g);
    set_state(g, S_SYNCING);
    return;
bad:
    SC_WARN(LOGSYS, "group %s: malformed JoinGroup v%d response", g->group_id, ver);
retry:
    lm_free(g);
    set_state(g, S_JOIN);
    g->join_at_ms = now + cl->conf->retry_backoff_ms;
}

static void send_join(cl_group_t *g, cl_broker_t *b, int64_t now)
{
    cl_client_t *cl = g->cl;
    int16_t ver = cl_broker_version(b, SC_KAFKA_API_JOIN_GROUP, 0, 5);
    sc_buf_t body, md;
    sc_kw_t w;
    greq_t *q;
    char **sorted = NULL;

    if (ver < 0) {
        go_fatal(g, SC_ERR_UNSUPPORTED_VERSION, "the coordinator supports no JoinGroup v0-5");
        return;
    }
    if (g->instance_id && ver < 5) {
        go_fatal(g, SC_ERR_UNSUPPORTED_VERSION,
                 "group.instance.id needs JoinGroup v5, the coordinator has less");
        return;
    }
    if (g->reset_on_join) {
        sc_free(g->member_id);
        g->member_id = NULL;
        g->generation = -1;
        g->reset_on_join = 0;
    }
    if (!(q = greq_new(g, ver)))
        return;
    sc_buf_init(&body);
    sc_buf_init(&md);
    if (g->ntopics && !(sorted = sc_calloc(g->ntopics, sizeof *sorted)))
        goto oom;
    for (size_t i = 0; i < g->ntopics; i++)
        sorted[i] = g->topics[i];
    if (g->ntopics)
        qsort(sorted, g->ntopics, sizeof *sorted, str_cmp);
    cl_cp_sub_t sub = {.version = 1,
                       .topics = sorted,
                       .ntopics = g->ntopics,
                       .user_data_len = -1,
                       .generation = -1};
    if (cl_cp_sub_encode(&md, &sub))
        goto oom;
    sc_kw_init(&w, &body);
    sc_kw_cstr(&w, 0, g->group_id);
    sc_kw_i32(&w, (int32_t)cl->conf->session_timeout_ms);
    if (ver >= 1)
        sc_kw_i32(&w, (int32_t)cl->conf->max_poll_interval_ms);
    sc_kw_cstr(&w, 0, nz(g->member_id));
    if (ver >= 5)
        sc_kw_string(&w, g->instance_id, g->instance_id ? strlen(g->instance_id) : 0);
    sc_kw_cstr(&w, 0, "consumer");
    sc_kw_array_len(&w, g->nstrategies);
    for (int i = 0; i < g->nstrategies; i++) {
        sc_kw_cstr(&w, 0, g->strategies[i]);
        sc_kw_bytes(&w, md.data, md.len);
    }
    if (send_req(g, b, SC_KAFKA_API_JOIN_GROUP, ver, &body, &w,
                 cl->conf->max_poll_interval_ms + 5000 > cl->conf->request_timeout_ms
                     ? cl->conf->max_poll_interval_ms + 5000
                     : cl->conf->request_timeout_ms,
                 on_join, q) == 0) {
        q = NULL;
        set_state(g, S_JOINING);
        SC_DEBUG(LOGSYS, "group %s: JoinGroup v%d sent (member \"%s\")", g->group_id, ver,
                 nz(g->member_id));
    } else {
        q = NULL;
        g->join_at_ms = now + cl->conf->retry_backoff_ms;
    }
oom:
    sc_free(q);
    sc_free(sorted);
    sc_buf_fini(&md);
    sc_buf_fini(&body);
    (void)now;
}

/* ---- SyncGroup ------------------------------------------------------------------------- */

static void on_sync(cl_client_t *cl, cl_broker_t *b, int err, sc_rd_t *r, void *arg)
{
    greq_t *q = arg;
    cl_group_t *g = q->g;
    int16_t ver = q->ver;
    uint64_t epoch = q->epoch;
    int64_t now = sc_mono_ms();
    sc_kbytes_t asg;
    cl_cp_assign_t a;
    size_t n = 0;

    sc_free(q);
    (void)b;
    if (epoch != g->epoch || g->state != S_SYNCING)
        return;
    if (err) {
        if (coord_err(err))
            coord_lost(g, err);
        need_rejoin(g, err);
        g->join_at_ms = now + cl->conf->retry_backoff_ms;
        return;
    }
    if (ver >= 1)
        sc_kr_i32(r);
    int16_t ec = sc_kr_i16(r);
    if (sc_kr_bytes(r, 0, &asg)) {
        SC_WARN(LOGSYS, "group %s: malformed SyncGroup v%d response", g->group_id, ver);
        need_rejoin(g, SC_ERR_BAD_FORMAT);
        g->join_at_ms = now + cl->conf->retry_backoff_ms;
        return;
    }
    if (ec) {
        if (fatal_err(ec)) {
            go_fatal(g, ec, "SyncGroup");
            return;
        }
        if (coord_err(ec))
            coord_lost(g, ec);
        SC_INFO(LOGSYS, "group %s: SyncGroup: %s, rejoining", g->group_id, sc_err_str(ec));
        need_rejoin(g, ec);
        return;
    }
    int rc = asg.len > 0 ? cl_cp_assign_decode(asg.p, (size_t)asg.len, &a) : 0;
    if (asg.len <= 0)
        memset(&a, 0, sizeof a);
    if (rc) {
        SC_WARN(LOGSYS, "group %s: the assignment does not parse (%s); rejoining", g->group_id,
                sc_err_str(rc));
        need_rejoin(g, rc);
        g->join_at_ms = now + cl->conf->retry_backoff_ms;
        return;
    }
    for (size_t i = 0; i < a.ntps; i++)
        n += a.tps[i].nparts;
    strata_topic_partition_t *tps = n ? sc_calloc(n, sizeof *tps) : NULL;
    if (n && !tps)
        goto oom;
    n = 0;
    for (size_t i = 0; i < a.ntps; i++)
        for (size_t j = 0; j < a.tps[i].nparts; j++) {
            if (!(tps[n].topic = sc_strdup(a.tps[i].topic))) {
                tps_free(tps, n);
                goto oom;
            }
            tps[n].partition = a.tps[i].parts[j];
            tps[n].offset = STRATA_OFFSET_STORED;
            n++;
        }
    cl_cp_assign_free(&a);
    lm_free(g);
    tps_free(g->incoming, g->nincoming);
    g->incoming = tps;
    g->nincoming = n;
    g->assign_pending = 1;
    g->revoke_fenced = 0;
    set_state(g, S_STABLE);
    g->hb_next_ms = now + cl->conf->heartbeat_interval_ms;
    g->hb_ok_ms = now;
    if (cl->conf->enable_auto_commit)
        g->autocommit_next_ms = now + cl->conf->auto_commit_interval_ms;
    SC_INFO(LOGSYS, "group %s: generation %d: %zu partition(s) assigned", g->group_id,
            g->generation, n);
    return;
oom:
    cl_cp_assign_free(&a);
    need_rejoin(g, SC_ERR_NO_MEMORY);
    g->join_at_ms = now + cl->conf->retry_backoff_ms;
}

/* Leader: metadata is fresh enough (or time is up) -> run the assignor. */
static int leader_ready(cl_group_t *g, int64_t now)
{
    if (now >= g->md_deadline)
        return 1;
    if (g->cl->md_last_ms <= g->md_mark)
        return 0;
    for (size_t i = 0; i < g->nlm; i++)
        for (size_t k = 0; k < g->lm[i].sub.ntopics; k++) {
            cl_topic_t *t = cl_topic_find(g->cl, g->lm[i].sub.topics[k]);
            if (!t || (t->nparts <= 0 && !t->err))
                return 0;
        }
    return 1;
}

static void send_sync(cl_group_t *g, cl_broker_t *b, int64_t now)
{
    cl_client_t *cl = g->cl;
    int16_t ver = cl_broker_version(b, SC_KAFKA_API_SYNC_GROUP, 0, 3);
    cl_asg_member_t *ms = NULL;
    cl_asg_topic_t *ts = NULL;
    cl_asg_out_t *outs = NULL;
    size_t nts = 0, cap = 0;
    sc_buf_t body, ab;
    sc_kw_t w;
    greq_t *q = NULL;
    int rc = SC_ERR_NO_MEMORY;

    sc_buf_init(&body);
    sc_buf_init(&ab);
    if (ver < 0) {
        go_fatal(g, SC_ERR_UNSUPPORTED_VERSION, "the coordinator supports no SyncGroup v0-3");
        return;
    }
    if (!(q = greq_new(g, ver)))
        goto out;
    if (g->nlm) {
        if (!(ms = sc_calloc(g->nlm, sizeof *ms)) || !(outs = sc_calloc(g->nlm, sizeof *outs)))
            goto out;
        for (size_t i = 0; i < g->nlm; i++) {
            ms[i].member_id = g->lm[i].member_id;
            ms[i].instance_id = g->lm[i].instance_id;
            ms[i].topics = (const char *const *)g->lm[i].sub.topics;
            ms[i].ntopics = g->lm[i].sub.ntopics;
            for (size_t k = 0; k < g->lm[i].sub.ntopics; k++) {
                const char *name = g->lm[i].sub.topics[k];
                size_t j;
                for (j = 0; j < nts && strcmp(ts[j].name, name); j++)
                    ;
                if (j < nts)
                    continue;
                if (nts == cap) {
                    size_t nc = cap ? cap * 2 : 8;
                    cl_asg_topic_t *nt = sc_realloc(ts, nc * sizeof *nt);
                    if (!nt)
                        goto out;
                    ts = nt;
                    cap = nc;
                }
                cl_topic_t *t = cl_topic_find(cl, name);
                ts[nts].name = name;
                ts[nts].nparts = t && !t->err ? t->nparts : 0;
                if (!t || t->nparts <= 0)
                    SC_WARN(LOGSYS, "group %s: topic %s: no partitions known (%s)", g->group_id,
                            name, t && t->err ? sc_err_str(t->err) : "no metadata");
                nts++;
            }
        }
        const char *proto = g->protocol;
        if (!cl_assignor_known(proto)) {
            go_fatal(g, SC_ERR_INCONSISTENT_GROUP_PROTOCOL, "the group chose an unknown assignor");
            goto out;
        }
        if ((rc = cl_assign(proto, ms, g->nlm, ts, nts, outs)))
            goto out;
        snap_take(g, ts, nts);
        rc = SC_ERR_NO_MEMORY;
    }
    sc_kw_init(&w, &body);
    sc_kw_cstr(&w, 0, g->group_id);
    sc_kw_i32(&w, g->generation);
    sc_kw_cstr(&w, 0, nz(g->member_id));
    if (ver >= 3)
        sc_kw_string(&w, g->instance_id, g->instance_id ? strlen(g->instance_id) : 0);
    sc_kw_array_len(&w, (int32_t)g->nlm);
    for (size_t i = 0; i < g->nlm; i++) {
        /* group the member's (sorted) partitions by topic */
        cl_cp_tparts_t tp[64], *tpp = tp;
        size_t ntp = 0;
        int32_t *parts = outs[i].n ? sc_calloc(outs[i].n, sizeof *parts) : NULL;
        if (outs[i].n && !parts)
            goto out;
        for (size_t k = 0; k < outs[i].n;) {
            size_t e = k;
            while (e < outs[i].n && outs[i].tps[e].topic == outs[i].tps[k].topic)
                e++;
            ntp++;
            k = e;
        }
        if (ntp > 64 && !(tpp = sc_calloc(ntp, sizeof *tpp))) {
            sc_free(parts);
            goto out;
        }
        ntp = 0;
        for (size_t k = 0; k < outs[i].n;) {
            size_t e = k;
            tpp[ntp].topic = (char *)ts[outs[i].tps[k].topic].name;
            tpp[ntp].parts = parts + k;
            while (e < outs[i].n && outs[i].tps[e].topic == outs[i].tps[k].topic) {
                parts[e] = outs[i].tps[e].part;
                e++;
            }
            tpp[ntp].nparts = e - k;
            ntp++;
            k = e;
        }
        cl_cp_assign_t a = {.version = 0, .tps = tpp, .ntps = ntp, .user_data_len = -1};
        sc_buf_reset(&ab);
        int erc = cl_cp_assign_encode(&ab, &a);
        if (tpp != tp)
            sc_free(tpp);
        sc_free(parts);
        if (erc)
            goto out;
        sc_kw_cstr(&w, 0, g->lm[i].member_id);
        sc_kw_bytes(&w, ab.data, ab.len);
        SC_DEBUG(LOGSYS, "group %s: member %s gets %zu partition(s)", g->group_id,
                 g->lm[i].member_id, outs[i].n);
    }
    if ((rc = send_req(g, b, SC_KAFKA_API_SYNC_GROUP, ver, &body, &w,
                       cl->conf->max_poll_interval_ms + 5000 > cl->conf->request_timeout_ms
                           ? cl->conf->max_poll_interval_ms + 5000
                           : cl->conf->request_timeout_ms,
                       on_sync, q)) == 0) {
        set_state(g, S_SYNCING);
        g->sync_sent = 1;
    }
    q = NULL;
out:
    if (rc && g->state != S_FATAL) {
        need_rejoin(g, rc);
        g->join_at_ms = now + cl->conf->retry_backoff_ms;
    }
    if (outs)
        cl_asg_out_free(outs, g->nlm);
    sc_free(outs);
    sc_free(ms);
    sc_free(ts);
    sc_free(q);
    sc_buf_fini(&ab);
    sc_buf_fini(&body);
}

/* ---- Heartbeat -------------------------------------------------------------------------- */

static void on_heartbeat(cl_client_t *cl, cl_broker_t *b, int err, sc_rd_t *r, void *arg)
{
    greq_t *q = arg;
    cl_group_t *g = q->g;
    uint64_t epoch = q->epoch;
    int16_t ver = q->ver;

    sc_free(q);
    (void)b;
    (void)cl;
    if (epoch != g->epoch)
        return;
    g->hb_inflight = 0;
    if (g->state != S_STABLE)
        return;
    if (!err) {
        if (ver >= 1)
            sc_kr_i32(r);
        err = sc_kr_i16(r);
        if (r->err)
            err = SC_ERR_BAD_FORMAT;
    }
    if (!err) {
        g->hb_ok_ms = sc_mono_ms();
        return;
    }
    if (fatal_err(err)) {
        go_fatal(g, err, "Heartbeat");
        return;
    }
    if (coord_err(err) || err == SC_ERR_BAD_FORMAT) {
        coord_lost(g, err); /* membership stays; heartbeat the new coordinator */
        return;
    }
    if (err == SC_ERR_REBALANCE_IN_PROGRESS || err == SC_ERR_ILLEGAL_GENERATION ||
        err == SC_ERR_UNKNOWN_MEMBER_ID) {
        need_rejoin(g, err);
        return;
    }
    SC_WARN(LOGSYS, "group %s: Heartbeat: %s", g->group_id, sc_err_str(err));
}

static void send_heartbeat(cl_group_t *g, cl_broker_t *b, int64_t now)
{
    int16_t ver = cl_broker_version(b, SC_KAFKA_API_HEARTBEAT, 0, 3);
    sc_buf_t body;
    sc_kw_t w;
    greq_t *q;

    if (ver < 0 || !(q = greq_new(g, ver)))
        return;
    sc_buf_init(&body);
    sc_kw_init(&w, &body);
    sc_kw_cstr(&w, 0, g->group_id);
    sc_kw_i32(&w, g->generation);
    sc_kw_cstr(&w, 0, nz(g->member_id));
    if (ver >= 3)
        sc_kw_string(&w, g->instance_id, g->instance_id ? strlen(g->instance_id) : 0);
    if (!send_req(g, b, SC_KAFKA_API_HEARTBEAT, ver, &body, &w, g->cl->conf->request_timeout_ms,
                  on_heartbeat, q)) {
        g->hb_inflight = 1;
        g->hb_next_ms = now + g->cl->conf->heartbeat_interval_ms;
    }
    sc_buf_fini(&body);
}

/* ---- LeaveGroup ------------------------------------------------------------------------- */

static void leave_finished(cl_group_t *g)
{
    g->leave_done = 1;
    pthread_cond_broadcast(&g->cl->cond);
}

static void on_leave(cl_client_t *cl, cl_broker_t *b, int err, sc_rd_t *r, void *arg)
{
    greq_t *q = arg;
    cl_group_t *g = q->g;
    int16_t ver = q->ver;
    int expired = q->extra != NULL;
    uint64_t epoch = q->epoch;

    sc_free(q);
    (void)b;
    (void)cl;
    if (!err) {
        if (ver >= 1)
            sc_kr_i32(r);
        err = sc_kr_i16(r);
        if (r->err)
            err = SC_ERR_BAD_FORMAT;
    }
    if (err)
        SC_INFO(LOGSYS, "group %s: LeaveGroup: %s", g->group_id, sc_err_str(err));
    else
        SC_INFO(LOGSYS, "group %s: left the group", g->group_id);
    if (!expired && epoch == g->epoch && g->state == S_LEAVING)
        leave_finished(g);
}

/* Sends LeaveGroup for the current member; expired: the max.poll.interval.ms
 * leave (nobody waits for it). Returns 0 when sent. */
static int send_leave(cl_group_t *g, cl_broker_t *b, int expired)
{
    int16_t ver = cl_broker_version(b, SC_KAFKA_API_LEAVE_GROUP, 0, 3);
    sc_buf_t body;
    sc_kw_t w;
    greq_t *q;
    int rc;

    if (ver < 0 || !(q = greq_new(g, ver)))
        return -1;
    q->extra = expired ? (void *)1 : NULL;
    sc_buf_init(&body);
    sc_kw_init(&w, &body);
    sc_kw_cstr(&w, 0, g->group_id);
    if (ver >= 3) {
        sc_kw_array_len(&w, 1);
        sc_kw_cstr(&w, 0, nz(g->member_id));
        sc_kw_string(&w, g->instance_id, g->instance_id ? strlen(g->instance_id) : 0);
    } else {
        sc_kw_cstr(&w, 0, nz(g->member_id));
    }
    rc = send_req(g, b, SC_KAFKA_API_LEAVE_GROUP, ver, &body, &w, g->cl->conf->request_timeout_ms,
                  on_leave, q);
    sc_buf_fini(&body);
    return rc;
}

/* ---- commits ---------------------------------------------------------------------------- */

/* A commit op holding a copy of tps (topic names in the same allocation). */
static gcommit_t *gcommit_new(const strata_topic_partition_t *tps, size_t n, int kind)
{
    size_t sz = sizeof(gcommit_t) + n * sizeof(strata_topic_partition_t);
    for (size_t i = 0; i < n; i++)
        sz += strlen(tps[i].topic) + 1;
    gcommit_t *op = sc_calloc(1, sz);
    if (!op)
        return NULL;
    op->tps = (strata_topic_partition_t *)(op + 1);
    op->n = n;
    op->kind = kind;
    char *s = (char *)(op->tps + n);
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(tps[i].topic) + 1;
        memcpy(s, tps[i].topic, l);
        op->tps[i] = tps[i];
        op->tps[i].topic = s;
        op->tps[i].err = 0;
        s += l;
    }
    return op;
}

static void cq_push(cl_group_t *g, gcommit_t *op, int front)
{
    if (front) {
        op->next = g->cq;
        g->cq = op;
        if (!g->cq_tail)
            g->cq_tail = op;
        return;
    }
    op->next = NULL;
    if (g->cq_tail)
        g->cq_tail->next = op;
    else
        g->cq = op;
    g->cq_tail = op;
}

static gcommit_t *cq_pop(cl_group_t *g)
{
    gcommit_t *op = g->cq;
    if (op) {
        g->cq = op->next;
        if (!g->cq)
            g->cq_tail = NULL;
        op->next = NULL;
    }
    return op;
}

/* The op is finished with err (per-partition errors already in op->tps). */
static void commit_complete(cl_group_t *g, gcommit_t *op, int err)
{
    op->err = err;
    op->done = 1;
    if (err && op->kind == CK_AUTO)
        SC_WARN(LOGSYS, "group %s: auto-commit of %zu partition(s) failed: %s", g->group_id, op->n,
                sc_err_str(err));
    if (op->kind == CK_SYNC) {
        if (op->abandoned)
            sc_free(op);
        else
            pthread_cond_broadcast(&g->cl->cond);
    } else if (op->kind == CK_ASYNC && op->cb) {
        op->next = g->cdone;
        g->cdone = op;
    } else {
        sc_free(op);
    }
    pthread_cond_broadcast(&g->cl->cond); /* close waits for commits to drain */
}

static void on_commit(cl_client_t *cl, cl_broker_t *b, int err, sc_rd_t *r, void *arg)
{
    greq_t *q = arg;
    cl_group_t *g = q->g;
    gcommit_t *op = q->extra;
    int16_t ver = q->ver;
    int64_t now = sc_mono_ms();
    int32_t nt, np;
    int first = 0;

    sc_free(q);
    (void)b;
    g->ninflight_commits--;
    if (!err) {
        if (ver >= 3)
            sc_kr_i32(r);
        if (sc_kr_array_len(r, 0, 6, &nt)) {
            err = SC_ERR_BAD_FORMAT;
            goto done;
        }
        for (size_t i = 0; i < op->n; i++)
            op->tps[i].err = SC_ERR_UNKNOWN_SERVER; /* left out by the broker */
        for (int32_t i = 0; i < nt; i++) {
            sc_kstr_t name;
            sc_kr_string(r, 0, &name);
            if (sc_kr_array_len(r, 0, 6, &np)) {
                err = SC_ERR_BAD_FORMAT;
                goto done;
            }
            for (int32_t j = 0; j < np; j++) {
                int32_t part = sc_kr_i32(r);
                int16_t ec = sc_kr_i16(r);
                if (r->err) {
                    err = SC_ERR_BAD_FORMAT;
                    goto done;
                }
                for (size_t k = 0; k < op->n; k++)
                    if (op->tps[k].partition == part &&
                        strlen(op->tps[k].topic) == (size_t)name.len &&
                        !memcmp(op->tps[k].topic, name.p, (size_t)name.len))
                        op->tps[k].err = ec;
            }
        }
        for (size_t k = 0; k < op->n; k++)
            if (op->tps[k].err && !first)
                first = op->tps[k].err;
        err = first;
    }
done:
    if (err && (coord_err(err) || err == SC_ERR_COORDINATOR_LOAD_IN_PROGRESS) &&
        err != SC_ERR_CLOSED && now < op->deadline_ms && !cl->stopping) {
        if (err != SC_ERR_COORDINATOR_LOAD_IN_PROGRESS)
            coord_lost(g, err);
        SC_DEBUG(LOGSYS, "group %s: OffsetCommit: %s, retrying", g->group_id, sc_err_str(err));
        for (size_t k = 0; k < op->n; k++)
            op->tps[k].err = 0;
        cq_push(g, op, 1);
        if (g->coord_retry_ms < now + cl->conf->retry_backoff_ms)
            g->coord_retry_ms = now + cl->conf->retry_backoff_ms;
        return;
    }
    if (err && !(err > 0))
        for (size_t k = 0; k < op->n; k++)
            if (!op->tps[k].err)
                op->tps[k].err = err;
    if (err == SC_ERR_ILLEGAL_GENERATION || err == SC_ERR_UNKNOWN_MEMBER_ID ||
        err == SC_ERR_REBALANCE_IN_PROGRESS) {
        SC_INFO(LOGSYS, "group %s: OffsetCommit (generation %d): %s", g->group_id, g->generation,
                sc_err_str(err));
        if (g->state == S_STABLE)
            need_rejoin(g, err);
    } else if (err == SC_ERR_FENCED_INSTANCE_ID && g->state != S_FATAL) {
        go_fatal(g, err, "OffsetCommit");
    }
    commit_complete(g, op, err);
}

static void send_commit(cl_group_t *g, cl_broker_t *b, gcommit_t *op, int64_t now)
{
    int16_t ver = cl_broker_version(b, SC_KAFKA_API_OFFSET_COMMIT, 2, 7);
    sc_buf_t body;
    sc_kw_t w;
    greq_t *q;

    if (ver < 0) {
        commit_complete(g, op, SC_ERR_UNSUPPORTED_VERSION);
        return;
    }
    if (!(q = greq_new(g, ver))) {
        cq_push(g, op, 1);
        return;
    }
    q->extra = op;
    sc_buf_init(&body);
    sc_kw_init(&w, &body);
    sc_kw_cstr(&w, 0, g->group_id);
    sc_kw_i32(&w, g->generation);
    sc_kw_cstr(&w, 0, nz(g->member_id));
    if (ver >= 7)
        sc_kw_string(&w, g->instance_id, g->instance_id ? strlen(g->instance_id) : 0);
    if (ver <= 4)
        sc_kw_i64(&w, -1);               /* retention: the broker's */
    sc_kw_array_len(&w, (int32_t)op->n); /* one topic entry per partition */
    for (size_t i = 0; i < op->n; i++) {
        sc_kw_cstr(&w, 0, op->tps[i].topic);
        sc_kw_array_len(&w, 1);
        sc_kw_i32(&w, op->tps[i].partition);
        sc_kw_i64(&w, op->tps[i].offset);
        if (ver >= 6)
            sc_kw_i32(&w, -1); /* leader epoch */
        sc_kw_string(&w, "", 0);
    }
    if (send_req(g, b, SC_KAFKA_API_OFFSET_COMMIT, ver, &body, &w, g->cl->conf->request_timeout_ms,
                 on_commit, q)) {
        cq_push(g, op, 1);
    } else {
        g->ninflight_commits++;
        SC_DEBUG(LOGSYS, "group %s: OffsetCommit v%d of %zu partition(s), generation %d",
                 g->group_id, ver, op->n, g->generation);
    }
    sc_buf_fini(&body);
    (void)now;
}

/* The resolved positions of every assigned partition (caller frees with
 * tps_free). Returns 0 or SC_ERR_NO_MEMORY. */
static int positions(cl_group_t *g, strata_topic_partition_t **out, size_t *n)
{
    size_t cnt = cl_consumer_tp_count(g->c), k = 0;
    strata_topic_partition_t *t = cnt ? sc_calloc(cnt, sizeof *t) : NULL;

    *out = NULL;
    *n = 0;
    if (cnt && !t)
        return SC_ERR_NO_MEMORY;
    for (size_t i = 0; i < cnt; i++) {
        cl_tp_view_t v;
        cl_consumer_tp_view(g->c, i, &v);
        if (v.pos < 0)
            continue;
        if (!(t[k].topic = sc_strdup(v.topic))) {
            tps_free(t, k);
            return SC_ERR_NO_MEMORY;
        }
        t[k].partition = v.part;
        t[k].offset = v.pos;
        k++;
    }
    *out = t;
    *n = k;
    return 0;
}

static void auto_commit(cl_group_t *g, int64_t now, const char *why)
{
    strata_topic_partition_t *t;
    size_t n;
    gcommit_t *op;

    if (positions(g, &t, &n) || !n) {
        sc_free(t);
        return;
    }
    if ((op = gcommit_new(t, n, CK_AUTO))) {
        op->deadline_ms = now + g->cl->conf->request_timeout_ms;
        cq_push(g, op, 0);
        SC_DEBUG(LOGSYS, "group %s: auto-commit (%s) of %zu partition(s)", g->group_id, why, n);
    }
    tps_free(t, n);
}

/* ---- OffsetFetch ------------------------------------------------------------------------ */

static void on_offset_fetch(cl_client_t *cl, cl_broker_t *b, int err, sc_rd_t *r, void *arg)
{
    greq_t *q = arg;
    cl_group_t *g = q->g;
    int16_t ver = q->ver;
    int32_t nt, np;
    struct ofres {
        char *topic;
        int32_t part;
        int64_t off;
        int16_t ec;
    } *res = NULL;
    size_t nres = 0, cap = 0;
    int part_err = 0;

    sc_free(q);
    (void)b;
    (void)cl;
    g->of_inflight = 0;
    if (err)
        goto fail;
    if (ver >= 3)
        sc_kr_i32(r);
    if (sc_kr_array_len(r, 0, 6, &nt)) {
        err = SC_ERR_BAD_FORMAT;
        goto fail;
    }
    /* read everything first: a top-level error (v2+) voids the partitions */
    for (int32_t i = 0; i < nt; i++) {
        sc_kstr_t name;
        sc_kr_string(r, 0, &name);
        if (sc_kr_array_len(r, 0, 16, &np) || name.len <= 0) {
            err = SC_ERR_BAD_FORMAT;
            goto fail;
        }
        for (int32_t j = 0; j < np; j++) {
            sc_kstr_t md;
            int32_t part = sc_kr_i32(r);
            int64_t off = sc_kr_i64(r);
            if (ver >= 5)
                sc_kr_i32(r);
            sc_kr_string(r, 1, &md);
            int16_t ec = sc_kr_i16(r);
            if (r->err) {
                err = SC_ERR_BAD_FORMAT;
                goto fail;
            }
            if (nres == cap) {
                size_t nc = cap ? cap * 2 : 16;
                struct ofres *nr = sc_realloc(res, nc * sizeof *nr);
                if (!nr) {
                    err = SC_ERR_NO_MEMORY;
                    goto fail;
                }
                res = nr;
                cap = nc;
            }
            if (!(res[nres].topic = kstr_dup(&name))) {
                err = SC_ERR_NO_MEMORY;
                goto fail;
            }
            res[nres].part = part;
            res[nres].off = off;
            res[nres].ec = ec;
            nres++;
        }
    }
    if (ver >= 2) {
        int16_t ec = sc_kr_i16(r);
        if (r->err)
            err = SC_ERR_BAD_FORMAT;
        else if (ec)
            err = ec;
        if (err)
            goto fail;
    }
    for (size_t i = 0; i < nres; i++) {
        int16_t ec = res[i].ec;
        if (ec) {
            part_err = ec;
            if (coord_err(ec))
                coord_lost(g, ec);
        }
        SC_DEBUG(LOGSYS, "group %s: %s [%d]: committed offset %lld%s%s", g->group_id, res[i].topic,
                 res[i].part, (long long)res[i].off, ec ? ": " : "", ec ? sc_err_str(ec) : "");
        cl_consumer_tp_committed(g->c, res[i].topic, res[i].part, res[i].off < 0 ? -1 : res[i].off,
                                 ec);
    }
fail:
    for (size_t i = 0; i < nres; i++)
        sc_free(res[i].topic);
    sc_free(res);
    /* whatever is still waiting goes back to waiting, retried after a backoff */
    for (size_t i = 0, n = cl_consumer_tp_count(g->c); i < n; i++) {
        cl_tp_view_t v;
        cl_consumer_tp_view(g->c, i, &v);
        if (v.committed_wait) {
            cl_consumer_tp_committed(g->c, v.topic, v.part, -1, err ? err : SC_ERR_UNKNOWN_SERVER);
            if (!part_err)
                part_err = SC_ERR_UNKNOWN_SERVER; /* left out of the answer */
        }
    }
    if (err || part_err) {
        g->of_retry_ms = sc_mono_ms() + g->cl->conf->retry_backoff_ms;
        SC_DEBUG(LOGSYS, "group %s: OffsetFetch: %s", g->group_id,
                 sc_err_str(err ? err : part_err));
        if (coord_err(err)) {
            coord_lost(g, err);
            g->coord_retry_ms = sc_mono_ms() + g->cl->conf->retry_backoff_ms;
        }
    }
}

static void send_offset_fetch(cl_group_t *g, cl_broker_t *b)
{
    int16_t ver = cl_broker_version(b, SC_KAFKA_API_OFFSET_FETCH, 1, 5);
    size_t cnt = cl_consumer_tp_count(g->c), n = 0;
    sc_buf_t body;
    sc_kw_t w;
    greq_t *q;

    if (g->of_inflight || ver < 0 || sc_mono_ms() < g->of_retry_ms)
        return;
    for (size_t i = 0; i < cnt; i++) {
        cl_tp_view_t v;
        cl_consumer_tp_view(g->c, i, &v);
        n += v.need_committed;
    }
    if (!n || !(q = greq_new(g, ver)))
        return;
    sc_buf_init(&body);
    sc_kw_init(&w, &body);
    sc_kw_cstr(&w, 0, g->group_id);
    sc_kw_array_len(&w, (int32_t)n);
    for (size_t i = 0; i < cnt; i++) {
        cl_tp_view_t v;
        cl_consumer_tp_view(g->c, i, &v);
        if (!v.need_committed)
            continue;
        sc_kw_cstr(&w, 0, v.topic);
        sc_kw_array_len(&w, 1);
        sc_kw_i32(&w, v.part);
    }
    if (!send_req(g, b, SC_KAFKA_API_OFFSET_FETCH, ver, &body, &w, g->cl->conf->request_timeout_ms,
                  on_offset_fetch, q)) {
        g->of_inflight = 1;
        for (size_t i = 0; i < cnt; i++) {
            cl_tp_view_t v;
            cl_consumer_tp_view(g->c, i, &v);
            if (v.need_committed)
                cl_consumer_tp_committed_sent(g->c, i);
        }
    }
    sc_buf_fini(&body);
}

/* ---- serve ------------------------------------------------------------------------------ */

static int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

int64_t cl_group_serve(cl_group_t *g, int64_t now)
{
    cl_client_t *cl = g->cl;
    const strata_conf_t *cf = cl->conf;
    int64_t next = INT64_MAX;
    int need_fetch = 0;
    cl_broker_t *b;

    if (g->revoke_pending || g->assign_pending || g->cdone)
        return now; /* deliver first */
    if (g->in_callback)
        return next;

    /* close / unsubscribe */
    if (g->leave_req && !g->leave_done && g->state != S_LEAVING) {
        int member = g->state == S_STABLE || g->state == S_SYNCING || g->state == S_METADATA ||
                     g->state == S_JOINING;
        g->epoch++; /* answers to joins/heartbeats in flight no longer matter */
        g->hb_inflight = 0;
        lm_free(g);
        if (cf->enable_auto_commit && g->nassigned && g->state == S_STABLE)
            auto_commit(g, now, "final");
        if (g->nassigned) {
            g->revoke_pending = 1;
            g->revoke_fenced = 1; /* the final auto-commit is already queued */
        }
        g->leave_nothing = !member || g->instance_id || !g->member_id;
        if (member && g->instance_id)
            SC_INFO(LOGSYS,
                    "group %s: static member %s: no LeaveGroup, the coordinator "
                    "keeps the assignment until session.timeout.ms",
                    g->group_id, g->instance_id);
        g->leave_sent = g->leave_nothing;
        set_state(g, S_LEAVING);
        return now;
    }

    for (size_t i = 0, n = cl_consumer_tp_count(g->c); i < n; i++) {
        cl_tp_view_t v;
        cl_consumer_tp_view(g->c, i, &v);
        need_fetch |= v.need_committed;
    }

    /* max.poll.interval.ms */
    if (g->subscribed &&
        (g->state == S_STABLE || g->state == S_SYNCING || g->state == S_METADATA)) {
        int64_t idle = cl_consumer_poll_idle_ms(g->c, now);
        if (idle > now - g->subscribed_at_ms)
            idle = now - g->subscribed_at_ms;
        if (idle >= cf->max_poll_interval_ms) {
            SC_WARN(LOGSYS,
                    "group %s: application did not poll for %lld ms "
                    "(max.poll.interval.ms %lld): leaving the group",
                    g->group_id, (long long)idle, (long long)cf->max_poll_interval_ms);
            g->epoch++;
            g->hb_inflight = 0;
            lm_free(g);
            if (g->nassigned) {
                g->revoke_pending = 1;
                g->revoke_fenced = 1;
            }
            if (!g->instance_id && g->coord_state == COORD_KNOWN && g->coord &&
                g->coord->state == CL_BK_UP)
                send_leave(g, g->coord, 1);
            /* member id and generation stay until the next join: a commit
             * made meanwhile is fenced by the coordinator */
            g->reset_on_join = 1;
            set_state(g, S_POLL_EXPIRED);
            return now;
        } else if (g->state == S_STABLE) {
            next = min64(next, now + cf->max_poll_interval_ms - idle);
        }
    }

    /* session.timeout.ms without a heartbeat answer: the coordinator has
     * evicted us by now and given the partitions to others -- stop consuming
     * them (revoke, no auto-commit: it would be refused) and rejoin, as
     * librdkafka does */
    if (g->state == S_STABLE && now - g->hb_ok_ms >= cf->session_timeout_ms) {
        SC_WARN(LOGSYS,
                "group %s: no heartbeat answer for %lld ms (session.timeout.ms %lld): "
                "revoking and rejoining",
                g->group_id, (long long)(now - g->hb_ok_ms), (long long)cf->session_timeout_ms);
        need_rejoin(g, SC_ERR_UNKNOWN_MEMBER_ID);
        return now;
    } else if (g->state == S_STABLE) {
        next = min64(next, g->hb_ok_ms + cf->session_timeout_ms);
    }

    /* commits past their deadline fail even while no coordinator answers */
    for (gcommit_t **pp = &g->cq, *op; (op = *pp);) {
        if (now < op->deadline_ms) {
            pp = &op->next;
            continue;
        }
        *pp = op->next;
        if (g->cq_tail == op) {
            g->cq_tail = NULL;
            for (gcommit_t *x = g->cq; x; x = x->next)
                g->cq_tail = x;
        }
        commit_complete(g, op, -ETIMEDOUT);
    }

    int wants = g->cq || need_fetch || g->state == S_JOIN || g->state == S_METADATA ||
                g->state == S_SYNCING || g->state == S_STABLE ||
                (g->state == S_LEAVING && !g->leave_sent);
    if (!wants)
        goto timers;
    if (g->coord_state == COORD_UNKNOWN) {
        find_coordinator(g, now);
        if (g->coord_state == COORD_UNKNOWN)
            next = min64(next, g->coord_retry_ms > now ? g->coord_retry_ms : now + 100);
        goto timers;
    }
    if (!(b = coord_up(g, now))) {
        if (g->coord && g->coord->state == CL_BK_DOWN)
            next = min64(next, g->coord->retry_at_ms);
        goto timers;
    }

    /* commits first: they must precede a JoinGroup / LeaveGroup */
    while (g->cq) {
        gcommit_t *op = cq_pop(g);
        if (now >= op->deadline_ms) {
            commit_complete(g, op, -ETIMEDOUT);
            continue;
        }
        if (!op->n) {
            commit_complete(g, op, 0);
            continue;
        }
        send_commit(g, b, op, now);
        if (g->cq == op)
            break; /* requeued: out of memory */
    }
    if (need_fetch)
        send_offset_fetch(g, b);

    switch (g->state) {
    case S_JOIN:
        if (now >= g->join_at_ms)
            send_join(g, b, now);
        else
            next = min64(next, g->join_at_ms);
        break;
    case S_METADATA:
        if (leader_ready(g, now))
            send_sync(g, b, now);
        else
            next = min64(next, now + 50);
        break;
    case S_SYNCING:
        if (!g->sync_sent) /* follower: empty SyncGroup */
            send_sync(g, b, now);
        break;
    case S_STABLE:
        if (g->nsnap && !g->assign_pending && snap_changed(g)) {
            snap_free(g);
            need_rejoin(g, 0);
            next = now;
            break;
        }
        if (!g->hb_inflight && now >= g->hb_next_ms)
            send_heartbeat(g, b, now);
        next = min64(next, g->hb_next_ms);
        break;
    case S_LEAVING:
        if (!g->leave_sent && !g->cq && !g->ninflight_commits) {
            g->leave_sent = 1;
            if (send_leave(g, b, 0))
                leave_finished(g);
        }
        break;
    default:
        break;
    }
timers:
    if (g->state == S_STABLE && cf->enable_auto_commit && g->subscribed) {
        if (now >= g->autocommit_next_ms) {
            auto_commit(g, now, "interval");
            g->autocommit_next_ms = now + cf->auto_commit_interval_ms;
            next = now;
        }
        next = min64(next, g->autocommit_next_ms);
    }
    if (g->state == S_LEAVING && g->leave_nothing && !g->leave_done && !g->cq &&
        !g->ninflight_commits && !g->revoke_pending)
        leave_finished(g);
    for (gcommit_t *op = g->cq; op; op = op->next)
        next = min64(next, op->deadline_ms);
    return next;
}

/* ---- deliver: callbacks without mu ------------------------------------------------------- */

void cl_group_deliver(cl_group_t *g)
{
    cl_client_t *cl = g->cl;

    if (g->revoke_pending) {
        strata_topic_partition_t *t = g->assigned;
        size_t n = g->nassigned;
        g->revoke_pending = 0;
        if (!g->revoke_fenced && cl->conf->enable_auto_commit && n)
            auto_commit(g, sc_mono_ms(), "before rebalance");
        g->revoke_fenced = 0;
        if (g->rb_cb && n) {
            g->in_callback = 1;
            pthread_mutex_unlock(&cl->mu);
            g->rb_cb(g->c, STRATA_REBALANCE_REVOKE, t, n, g->rb_arg);
            pthread_mutex_lock(&cl->mu);
            g->in_callback = 0;
        }
        SC_INFO(LOGSYS, "group %s: %zu partition(s) revoked", g->group_id, n);
        g->assigned = NULL;
        g->nassigned = 0;
        cl_consumer_set_assignment(g->c, NULL, 0);
        tps_free(t, n);
    }
    if (g->assign_pending && !g->revoke_pending) {
        g->assign_pending = 0;
        if (g->state != S_STABLE) { /* a rebalance started meanwhile */
            tps_free(g->incoming, g->nincoming);
        } else {
            tps_free(g->assigned, g->nassigned);
            g->assigned = g->incoming;
            g->nassigned = g->nincoming;
            if (cl_consumer_set_assignment(g->c, g->assigned, g->nassigned)) {
                need_rejoin(g, SC_ERR_NO_MEMORY);
            } else if (g->rb_cb) {
                g->in_callback = 1;
                pthread_mutex_unlock(&cl->mu);
                g->rb_cb(g->c, STRATA_REBALANCE_ASSIGN, g->assigned, g->nassigned, g->rb_arg);
                pthread_mutex_lock(&cl->mu);
                g->in_callback = 0;
            }
        }
        g->incoming = NULL;
        g->nincoming = 0;
    }
    while (g->cdone) {
        gcommit_t *op = g->cdone;
        g->cdone = op->next;
        pthread_mutex_unlock(&cl->mu);
        op->cb(g->c, op->err, op->tps, op->n, op->cb_arg);
        pthread_mutex_lock(&cl->mu);
        sc_free(op);
    }
}

void cl_group_free(cl_group_t *g)
{
    gcommit_t *op;

    if (!g)
        return;
    while ((op = cq_pop(g)))
        commit_complete(g, op, SC_ERR_CLOSED);
    while (g->cdone) {
        op = g->cdone;
        g->cdone = op->next;
        op->cb(g->c, op->err, op->tps, op->n, op->cb_arg);
        sc_free(op);
    }
    lm_free(g);
    snap_free(g);
    tps_free(g->assigned, g->nassigned);
    tps_free(g->incoming, g->nincoming);
    for (size_t i = 0; i < g->ntopics; i++)
        sc_free(g->topics[i]);
    sc_free(g->topics);
    for (int i = 0; i < g->nstrategies; i++)
        sc_free(g->strategies[i]);
    sc_free(g->member_id);
    sc_free(g->protocol);
    sc_free(g);
}

/* ======================================================================================
 * Public API
 * ====================================================================================== */

static void deadline_ts(struct timespec *dl, int timeout_ms)
{
    clock_gettime(CLOCK_REALTIME, dl);
    dl->tv_sec += timeout_ms / 1000;
    dl->tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (dl->tv_nsec >= 1000000000L) {
        dl->tv_sec++;
        dl->tv_nsec -= 1000000000L;
    }
}

static int topic_name_ok(const char *t)
{
    return t && t[0] && strlen(t) <= 249;
}

strata_err_t strata_consumer_subscribe(strata_consumer_t *c, const char *const *topics,
                                       size_t count, strata_rebalance_cb rebalance_cb, void *cb_arg)
{
    cl_group_t *g;
    char **nt = NULL;
    int rc = 0;

    if (!c || !count || !topics)
        return -EINVAL;
    for (size_t i = 0; i < count; i++)
        if (!topic_name_ok(topics[i]))
            return -EINVAL;
    if (!(nt = sc_calloc(count, sizeof *nt)))
        return SC_ERR_NO_MEMORY;
    for (size_t i = 0; i < count; i++)
        if (!(nt[i] = sc_strdup(topics[i]))) {
            rc = SC_ERR_NO_MEMORY;
            goto out;
        }
    pthread_mutex_lock(&((cl_client_t *)c)->mu);
    g = cl_consumer_group(c);
    if (!g) {
        rc = -EINVAL; /* no group.id */
    } else if (g->closed || g->leave_req) {
        rc = SC_ERR_CLOSED;
    } else if (!g->subscribed && cl_consumer_tp_count(c)) {
        rc = -EINVAL; /* assign mode */
    } else {
        for (int i = 0; i < g->nstrategies; i++)
            if (!cl_assignor_known(g->strategies[i])) {
                SC_ERROR(LOGSYS,
                         "partition.assignment.strategy: \"%s\" is not supported "
                         "(range, roundrobin)",
                         g->strategies[i]);
                rc = SC_ERR_BAD_CONFIG;
            }
        if (!g->nstrategies)
            rc = SC_ERR_BAD_CONFIG;
    }
    if (!rc) {
        for (size_t i = 0; i < g->ntopics; i++)
            sc_free(g->topics[i]);
        sc_free(g->topics);
        g->topics = nt;
        g->ntopics = count;
        nt = NULL;
        g->rb_cb = rebalance_cb;
        g->rb_arg = cb_arg;
        for (size_t i = 0; i < count; i++)
            cl_topic_get(g->cl, g->topics[i]);
        g->subscribed_at_ms = sc_mono_ms();
        if (!g->subscribed) {
            g->subscribed = 1;
            if (g->state == S_IDLE || g->state == S_POLL_EXPIRED) {
                set_state(g, S_JOIN);
                g->join_at_ms = 0;
            }
        } else {
            need_rejoin(g, 0);
            g->join_at_ms = 0;
        }
    }
    pthread_mutex_unlock(&((cl_client_t *)c)->mu);
    if (!rc)
        cl_client_wake(g->cl);
out:
    if (nt) {
        for (size_t i = 0; i < count; i++)
            sc_free(nt[i]);
        sc_free(nt);
    }
    return rc;
}

/* Leaves (close or unsubscribe) and waits up to timeout_ms. mu not held. */
static int leave_and_wait(strata_consumer_t *c, int is_close, int timeout_ms)
{
    cl_client_t *cl = (cl_client_t *)c;
    cl_group_t *g;
    struct timespec dl;
    int rc = 0;

    if (timeout_ms >= 0)
        deadline_ts(&dl, timeout_ms);
    pthread_mutex_lock(&cl->mu);
    g = cl_consumer_group(c);
    if (!g) {
        pthread_mutex_unlock(&cl->mu);
        return 0;
    }
    if (g->closed) {
        pthread_mutex_unlock(&cl->mu);
        return 0;
    }
    if (g->subscribed || g->cq || g->ninflight_commits) {
        if (!g->subscribed && g->state != S_LEAVING) {
            /* assign mode: only wait for commits to drain */
            while ((g->cq || g->ninflight_commits) && !cl->stopping && rc == 0)
                rc = timeout_ms < 0 ? pthread_cond_wait(&cl->cond, &cl->mu)
                                    : pthread_cond_timedwait(&cl->cond, &cl->mu, &dl);
        } else {
            g->leave_req = 1;
            g->leave_close = is_close;
            cl_client_wake(cl);
            while (!g->leave_done && !cl->stopping && rc == 0)
                rc = timeout_ms < 0 ? pthread_cond_wait(&cl->cond, &cl->mu)
                                    : pthread_cond_timedwait(&cl->cond, &cl->mu, &dl);
        }
    }
    if (rc == ETIMEDOUT)
        SC_WARN(LOGSYS, "group %s: %s did not finish within %d ms", g->group_id,
                is_close ? "close" : "unsubscribe", timeout_ms);
    /* whatever happened, the consumer is out of the group now */
    g->epoch++;
    g->subscribed = 0;
    g->leave_req = g->leave_sent = g->leave_done = g->leave_nothing = 0;
    g->hb_inflight = 0;
    lm_free(g);
    set_state(g, S_IDLE);
    sc_free(g->member_id);
    g->member_id = NULL;
    g->generation = -1;
    if (g->nassigned || cl_consumer_tp_count(c)) {
        tps_free(g->assigned, g->nassigned);
        g->assigned = NULL;
        g->nassigned = 0;
        cl_consumer_set_assignment(c, NULL, 0);
    }
    g->revoke_pending = 0;
    if (is_close)
        g->closed = 1;
    pthread_mutex_unlock(&cl->mu);
    return rc == ETIMEDOUT ? -ETIMEDOUT : 0;
}

strata_err_t strata_consumer_unsubscribe(strata_consumer_t *c)
{
    if (!c)
        return -EINVAL;
    if (cl_client_on_io_thread((cl_client_t *)c))
        return -EDEADLK;
    return leave_and_wait(c, 0, (int)((cl_client_t *)c)->conf->request_timeout_ms);
}

strata_err_t strata_consumer_close(strata_consumer_t *c, int timeout_ms)
{
    if (!c)
        return -EINVAL;
    if (cl_client_on_io_thread((cl_client_t *)c))
        return -EDEADLK;
    return leave_and_wait(c, 1, timeout_ms);
}

/* Builds the op for a commit call (mu held). offsets NULL: positions. */
static int make_commit(cl_group_t *g, const strata_topic_partition_t *offsets, size_t count,
                       int kind, gcommit_t **out)
{
    strata_topic_partition_t *pos = NULL;
    size_t n = 0;
    int rc;

    if (!offsets) {
        if ((rc = positions(g, &pos, &n)))
            return rc;
        offsets = pos;
        count = n;
    }
    *out = gcommit_new(offsets ? offsets : (const strata_topic_partition_t *)"", count, kind);
    tps_free(pos, n);
    return *out ? 0 : SC_ERR_NO_MEMORY;
}

static int check_offsets(const strata_topic_partition_t *offsets, size_t count)
{
    if (!offsets && count)
        return 0; /* count ignored with NULL */
    for (size_t i = 0; offsets && i < count; i++)
        if (!topic_name_ok(offsets[i].topic) || offsets[i].partition < 0 || offsets[i].offset < 0)
            return -EINVAL;
    return 0;
}

strata_err_t strata_consumer_commit(strata_consumer_t *c, strata_topic_partition_t *offsets,
                                    size_t count, int timeout_ms)
{
    cl_client_t *cl = (cl_client_t *)c;
    cl_group_t *g;
    gcommit_t *op = NULL;
    struct timespec dl;
    int rc, wr = 0;

    if (!c || check_offsets(offsets, count))
        return -EINVAL;
    if (cl_client_on_io_thread(cl))
        return -EDEADLK;
    if (timeout_ms < 0)
        timeout_ms = (int)cl->conf->request_timeout_ms;
    deadline_ts(&dl, timeout_ms);
    pthread_mutex_lock(&cl->mu);
    if (!(g = cl_consumer_group(c))) {
        rc = -EINVAL;
        goto unlock;
    }
    if (g->closed || cl->stopping) {
        rc = SC_ERR_CLOSED;
        goto unlock;
    }
    if ((rc = make_commit(g, offsets, count, CK_SYNC, &op)))
        goto unlock;
    if (!op->n) {
        sc_free(op);
        goto unlock;
    }
    op->deadline_ms = sc_mono_ms() + timeout_ms;
    cq_push(g, op, 0);
    cl_client_wake(cl);
    while (!op->done && wr == 0 && !cl->stopping)
        wr = pthread_cond_timedwait(&cl->cond, &cl->mu, &dl);
    if (!op->done) {
        /* still queued: take it back; in flight: the I/O thread frees it */
        gcommit_t **pp = &g->cq;
        int found = 0;
        g->cq_tail = NULL;
        while (*pp) {
            if (*pp == op) {
                *pp = op->next;
                found = 1;
                continue;
            }
            g->cq_tail = *pp;
            pp = &(*pp)->next;
        }
        if (found)
            sc_free(op);
        else
            op->abandoned = 1;
        rc = -ETIMEDOUT;
        goto unlock;
    }
    rc = op->err;
    if (offsets)
        for (size_t i = 0; i < count && i < op->n; i++)
            offsets[i].err = op->tps[i].err;
    sc_free(op);
unlock:
    pthread_mutex_unlock(&cl->mu);
    return rc;
}

strata_err_t strata_consumer_commit_async(strata_consumer_t *c,
                                          const strata_topic_partition_t *offsets, size_t count,
                                          strata_commit_cb cb, void *cb_arg)
{
    cl_client_t *cl = (cl_client_t *)c;
    cl_group_t *g;
    gcommit_t *op = NULL;
    int rc;

    if (!c || check_offsets(offsets, count))
        return -EINVAL;
    pthread_mutex_lock(&cl->mu);
    if (!(g = cl_consumer_group(c))) {
        rc = -EINVAL;
        goto unlock;
    }
    if (g->closed || cl->stopping) {
        rc = SC_ERR_CLOSED;
        goto unlock;
    }
    if ((rc = make_commit(g, offsets, count, CK_ASYNC, &op)))
        goto unlock;
    op->cb = cb;
    op->cb_arg = cb_arg;
    op->deadline_ms = sc_mono_ms() + cl->conf->request_timeout_ms;
    if (!op->n)
        commit_complete(g, op, 0); /* nothing to commit: the callback says so */
    else
        cq_push(g, op, 0);
unlock:
    pthread_mutex_unlock(&cl->mu);
    if (!rc)
        cl_client_wake(cl);
    return rc;
}
