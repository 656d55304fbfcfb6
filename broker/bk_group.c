/*
 * bk_group -- the group coordinator's membership protocol (reference.md §7,
 * Kafka 3.7's classic GroupCoordinator): FindCoordinator (10) v0-2, JoinGroup
 * (11) v0-5, Heartbeat (12) v0-3, LeaveGroup (13) v0-3, SyncGroup (14) v0-3,
 * DescribeGroups (15) v0-4, ListGroups (16) v0-2. Committed offsets,
 * DeleteGroups and OffsetDelete are in bk_group_offsets.c. Runs on shard 0
 * (bk_group_int.h).
 *
 * States: Empty -> (JoinGroup) PreparingRebalance -> (every member rejoined,
 * or the rebalance timeout passed: the others are removed; generation + 1,
 * protocol chosen by vote, leader kept or the first member) ->
 * CompletingRebalance -> (leader's SyncGroup: assignments stored, waiting
 * followers answered) -> Stable. A member joining or changing its protocols,
 * the leader rejoining, a member leaving or timing out sends Stable /
 * CompletingRebalance back to PreparingRebalance; the join phase completing
 * with no member leaves the group Empty (generation + 1).
 *
 * Long polls: a JoinGroup during PreparingRebalance and a SyncGroup from a
 * follower during CompletingRebalance park their response slot on the member
 * (not ready, so later responses on that connection wait behind it, as in
 * Kafka); the completion writes the body into the slot and completes it. A
 * response for the request being handled is written straight to its writer.
 *
 * Timers: one repeating uv timer on shard 0 (BK_GROUP_TICK_MS) checks session
 * deadlines (a member with no heartbeat/join/sync/commit within its session
 * timeout is removed; members with a parked join or sync are kept alive),
 * the end of the initial rebalance delay and of the join phase
 * (rebalance timeout), the sync deadline (members that did not SyncGroup
 * within the rebalance timeout after the join phase are removed) and pending
 * MEMBER_ID_REQUIRED ids. Every offsets.retention.check.interval.ms the same
 * timer expires committed offsets (bk__offsets_expire) and then removes Empty
 * groups left with no offsets, no pending member id and no commit in flight
 * (Kafka's Dead: ListGroups no longer shows them).
 *
 * Static membership (group.instance.id), Kafka 3.7's rules: a member id is
 * bound to the instance id; a request naming the instance with another member
 * id is FENCED_INSTANCE_ID; an instance rejoining with an empty member id
 * takes a new id and fences the old one. In a Stable group whose selected
 * protocol (and, for "consumer" groups, the member's subscribed topics) does
 * not change, that rejoin is answered at once with the current generation
 * and the previous leader id: no rebalance, the member keeps its assignment.
 * Static members that do not rejoin a rebalance stay until their session
 * timeout. group.max.size follows Kafka's acceptJoiningMember.
 *
 * Persistence (Kafka's GroupMetadataManager.storeGroup): the leader's
 * SyncGroup writes the group (GroupMetadata record, bk__group_write_value)
 * to __consumer_offsets and the members are answered once it is committed
 * (cluster mode: on the ISR); a failed write answers them with Kafka's
 * storeGroup error and starts a rebalance. A static rejoin without a
 * rebalance is answered once stored (else the old member id comes back); an
 * Empty group is written too (not waited for), a removed group gets a
 * tombstone. bk__group_load rebuilds a Stable group (or an Empty one)
 * from the record at load, restarting each member's session timer.
 *
 * Offline (bk__group_start_offline, the request fuzz harness): no timer, no
 * log; requests without a response slot are handled and their parked
 * responses dropped, as for a client whose connection closed.
 */
#include "bk_group_int.h"

#include "sc_err.h"
#include "sc_log.h"
#include "sc_mem.h"
#include "sc_time.h"

#include <string.h>
#include <sys/random.h>

#define SUB "group"

/* Granularity of session / rebalance deadlines. */
#define BK_GROUP_TICK_MS 100

static const char *const state_names[] = {"Empty", "PreparingRebalance", "CompletingRebalance",
                                          "Stable", "Dead"};

/* ---- small helpers ------------------------------------------------------------ */

char *bk__group_strdup(const char *p, size_t len)
{
    char *s = sc_malloc(len + 1);
    if (!s)
        return NULL;
    if (len)
        memcpy(s, p, len);
    s[len] = 0;
    return s;
}

static int str_eq(const char *s, const char *p, size_t len)
{
    return s && strlen(s) == len && memcmp(s, p, len) == 0;
}

bk_group_t *bk__group_find(bk_coord_t *co, const char *id, size_t len)
{
    for (bk_group_t *g = co->groups; g; g = g->next)
        if (str_eq(g->id, id, len))
            return g;
    return NULL;
}

bk_group_t *bk__group_get(bk_coord_t *co, const char *id, size_t len)
{
    bk_group_t *g = bk__group_find(co, id, len);
    if (g)
        return g;
    if (!(g = sc_calloc(1, sizeof *g)))
        return NULL;
    if (!(g->id = bk__group_strdup(id, len))) {
        sc_free(g);
        return NULL;
    }
    g->state = BK_GROUP_EMPTY;
    g->next = co->groups;
    co->groups = g;
    return g;
}

bk_member_t *bk__group_member_find(bk_group_t *g, const char *id, size_t len)
{
    for (bk_member_t *m = g->members; m; m = m->next)
        if (str_eq(m->id, id, len))
            return m;
    return NULL;
}

static bk_member_t *member_by_instance(bk_group_t *g, sc_kstr_t inst)
{
    if (inst.len < 0)
        return NULL;
    for (bk_member_t *m = g->members; m; m = m->next)
        if (str_eq(m->instance_id, inst.p, (size_t)inst.len))
            return m;
    return NULL;
}

void bk__group_member_touch(bk_member_t *m) { m->deadline = sc_mono_ms() + m->session_ms; }

static void protos_free(bk_gproto_t *p, int n)
{
    for (int i = 0; i < n; i++) {
        sc_free(p[i].name);
        sc_free(p[i].meta);
    }
    sc_free(p);
}

static void member_free(bk_member_t *m)
{
    if (!m)
        return;
    sc_free(m->id);
    sc_free(m->instance_id);
    sc_free(m->client_id);
    sc_free(m->client_host);
    protos_free(m->protos, m->nprotos);
    sc_free(m->assign);
    sc_free(m);
}

static void subs_free(bk_group_t *g)
{
    for (int i = 0; i < g->nsubs; i++)
        sc_free(g->subs[i]);
    sc_free(g->subs);
    g->subs = NULL;
    g->nsubs = 0;
    g->subs_known = 0;
}

static void group_free(bk_group_t *g)
{
    while (g->members) {
        bk_member_t *m = g->members;
        g->members = m->next;
        member_free(m);
    }
    while (g->pending) {
        bk_pending_t *p = g->pending;
        g->pending = p->next;
        sc_free(p->id);
        sc_free(p);
    }
    bk__offsets_free(g);
    subs_free(g);
    sc_free(g->protocol_type);
    sc_free(g->protocol);
    sc_free(g->id);
    sc_free(g);
}

/* "<client_id>-<uuid4>", Kafka's member id format (offline: a counter, so
 * that a fuzzer can name members it created). */
static char *member_id_new(bk_coord_t *co, sc_kstr_t client_id)
{
    uint8_t u[16];
    size_t got = 0;
    if (co->offline) {
        memset(u, 0, sizeof u);
        co->offline_ids++;
        memcpy(u + 8, &co->offline_ids, sizeof co->offline_ids);
        got = sizeof u;
    }
    while (got < sizeof u) {
        ssize_t n = getrandom(u + got, sizeof u - got, 0);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    if (got < sizeof u) { /* no entropy source: still unique within this process */
        static uint64_t ctr;
        uint64_t t = (uint64_t)sc_now_ms() ^ (++ctr << 40);
        memcpy(u, &t, sizeof t);
        memcpy(u + 8, &ctr, sizeof ctr);
    }
    u[6] = (uint8_t)((u[6] & 0x0f) | 0x40);
    u[8] = (uint8_t)((u[8] & 0x3f) | 0x80);
    size_t cl = client_id.len > 0 ? (size_t)client_id.len : 0;
    if (cl > 200)
        cl = 200;
    char *s = sc_malloc(cl + 38);
    if (!s)
        return NULL;
    memcpy(s, client_id.p ? client_id.p : "", cl);
    size_t o = cl;
    s[o++] = '-';
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            s[o++] = '-';
        s[o++] = hex[u[i] >> 4];
        s[o++] = hex[u[i] & 15];
    }
    s[o] = 0;
    return s;
}

/* "/1.2.3.4" from the connection's "1.2.3.4:port". */
static char *client_host(const bk_conn_t *c)
{
    if (!c)
        return bk__group_strdup("/", 1);
    const char *colon = strrchr(c->peer, ':');
    size_t n = colon ? (size_t)(colon - c->peer) : strlen(c->peer);
    char *s = sc_malloc(n + 2);
    if (!s)
        return NULL;
    s[0] = '/';
    memcpy(s + 1, c->peer, n);
    s[n + 1] = 0;
    return s;
}

/* ---- responses into parked slots ---------------------------------------------- */

/* The writer for a parked slot: the size placeholder and header are already
 * in s->buf. */
static void slot_begin(bk_slot_t *s, sc_kw_t *w) { sc_kw_init(w, &s->buf); }

static void slot_end(bk_slot_t *s, sc_kw_t *w)
{
    s->op = NULL;
    s->detach = NULL;
    if (w->err) {
        SC_WARN(SUB, "out of memory building a group response; closing the connection");
        bk__conn_close(s->conn);
        return;
    }
    sc_kw_patch_i32(w, 0, (int32_t)(s->buf.len - 4));
    bk__slot_complete(s);
}

static void join_detach(bk_slot_t *s)
{
    bk_member_t *m = s->op;
    if (m->join_slot == s)
        m->join_slot = NULL;
    if (m->sync_slot == s)
        m->sync_slot = NULL;
}

static void park(bk_member_t *m, bk_slot_t **where, bk_slot_t *s)
{
    *where = s;
    if (!s)
        return; /* offline coordinator, no response slot: the answer is dropped */
    s->op = m;
    s->detach = join_detach;
}

static void write_join(sc_kw_t *w, int v, int16_t err, int32_t gen, const char *proto,
                       const char *leader, const char *mid, size_t mlen,
                       const bk_group_t *members)
{
    if (v >= 2)
        sc_kw_i32(w, 0); /* throttle_time_ms */
    sc_kw_i16(w, err);
    sc_kw_i32(w, gen);
    sc_kw_cstr(w, 0, proto ? proto : "");
    sc_kw_cstr(w, 0, leader ? leader : "");
    sc_kw_string(w, mid ? mid : "", mid ? mlen : 0);
    if (!members) {
        sc_kw_array_len(w, 0);
        return;
    }
    sc_kw_array_len(w, members->nmembers);
    for (const bk_member_t *m = members->members; m; m = m->next) {
        sc_kw_cstr(w, 0, m->id);
        if (v >= 5)
            sc_kw_cstr(w, 0, m->instance_id);
        const bk_gproto_t *p = NULL;
        for (int i = 0; i < m->nprotos && !p; i++)
            if (strcmp(m->protos[i].name, members->protocol) == 0)
                p = &m->protos[i];
        sc_kw_bytes(w, p ? (const void *)p->meta : "", p ? (size_t)p->len : 0);
    }
}

static void write_sync(sc_kw_t *w, int v, int16_t err, const uint8_t *a, int32_t len)
{
    if (v >= 1)
        sc_kw_i32(w, 0);
    sc_kw_i16(w, err);
    sc_kw_bytes(w, a ? (const void *)a : "", a ? (size_t)len : 0);
}

/* The current request's own slot and writer: a response to it goes into w
 * (the dispatcher finishes it), any other into its parked slot. */
typedef struct {
    bk_slot_t *slot;
    sc_kw_t *w;
    int answered;
} cur_t;

static void answer_join(bk_group_t *g, bk_member_t *m, int16_t err, cur_t *cur)
{
    bk_slot_t *s = m->join_slot;
    if (!s)
        return;
    m->join_slot = NULL;
    int ok = err == 0;
    sc_kw_t pw, *w = &pw;
    if (cur && cur->slot == s) {
        w = cur->w;
        cur->answered = 1;
        s->op = NULL;
        s->detach = NULL;
    } else {
        slot_begin(s, &pw);
    }
    write_join(w, m->join_ver, err, ok ? g->generation : -1, ok ? g->protocol : "",
               ok && g->leader ? g->leader->id : "", m->id, strlen(m->id),
               ok && m == g->leader ? g : NULL);
    if (w == &pw)
        slot_end(s, &pw);
}

static void answer_sync(bk_member_t *m, int16_t err, cur_t *cur)
{
    bk_slot_t *s = m->sync_slot;
    if (!s)
        return;
    m->sync_slot = NULL;
    sc_kw_t pw, *w = &pw;
    if (cur && cur->slot == s) {
        w = cur->w;
        cur->answered = 1;
        s->op = NULL;
        s->detach = NULL;
    } else {
        slot_begin(s, &pw);
    }
    write_sync(w, m->sync_ver, err, err ? NULL : m->assign, m->assign_len);
    if (w == &pw)
        slot_end(s, &pw);
}

/* ---- the state machine ---------------------------------------------------------- */

static int32_t max_rebalance_ms(const bk_group_t *g)
{
    int32_t mx = 0;
    for (const bk_member_t *m = g->members; m; m = m->next)
        if (m->rebalance_ms > mx)
            mx = m->rebalance_ms;
    return mx;
}

static void clear_assignments(bk_group_t *g)
{
    for (bk_member_t *m = g->members; m; m = m->next) {
        sc_free(m->assign);
        m->assign = NULL;
        m->assign_len = 0;
    }
}

/* Stable / CompletingRebalance / Empty -> PreparingRebalance. */
static void prepare_rebalance(bk_coord_t *co, bk_group_t *g, const char *why)
{
    int64_t now = sc_mono_ms();
    if (g->state == BK_GROUP_COMPLETING)
        for (bk_member_t *m = g->members; m; m = m->next)
            answer_sync(m, SC_ERR_REBALANCE_IN_PROGRESS, NULL);
    clear_assignments(g);
    int initial = g->state == BK_GROUP_EMPTY;
    g->state = BK_GROUP_PREPARING;
    for (bk_member_t *m = g->members; m; m = m->next)
        m->joined = 0;
    int32_t rb = max_rebalance_ms(g);
    int32_t delay = co->srv->cfg->group_initial_rebalance_delay_ms;
    g->delay_deadline = 0;
    if (initial && delay > 0) {
        g->delay_deadline = now + (delay < rb ? delay : rb);
        g->delay_cap = now + rb;
    }
    g->join_deadline = now + rb;
    SC_INFO(SUB, "group %s: preparing rebalance (generation %d, %d member(s)): %s", g->id,
            g->generation, g->nmembers, why);
}

/* The protocol every member supports that most members prefer (each member
 * votes for its first supported choice); ties go to the first member's
 * order. NULL when there is none. */
static const char *select_protocol(const bk_group_t *g)
{
    const bk_member_t *first = g->members;
    const char *best = NULL;
    int best_votes = -1;
    for (int i = 0; first && i < first->nprotos; i++) {
        const char *cand = first->protos[i].name;
        int all = 1;
        for (const bk_member_t *m = g->members; m && all; m = m->next) {
            int has = 0;
            for (int k = 0; k < m->nprotos && !has; k++)
                has = strcmp(m->protos[k].name, cand) == 0;
            all = has;
        }
        if (!all)
            continue;
        int votes = 0;
        for (const bk_member_t *m = g->members; m; m = m->next) {
            for (int k = 0; k < m->nprotos; k++) {
                /* m's first choice among the candidates supported by all */
                const char *nm = m->protos[k].name;
                int sup = 1;
                for (const bk_member_t *o = g->members; o && sup; o = o->next) {
                    int has = 0;
                    for (int j = 0; j < o->nprotos && !has; j++)
                        has = strcmp(o->protos[j].name, nm) == 0;
                    sup = has;
                }
                if (sup) {
                    votes += strcmp(nm, cand) == 0;
                    break;
                }
            }
        }
        if (votes > best_votes) {
            best = cand;
            best_votes = votes;
        }
    }
    return best;
}

/* ---- subscriptions (ConsumerProtocolSubscription) ------------------------------ */

/* The metadata m sent for protocol name, or NULL. */
static const bk_gproto_t *member_proto(const bk_member_t *m, const char *name)
{
    for (int i = 0; name && i < m->nprotos; i++)
        if (strcmp(m->protos[i].name, name) == 0)
            return &m->protos[i];
    return NULL;
}

/* Calls fn(topic, arg) for every topic of a subscription, read as v0 (the
 * prefix of every version, as Kafka's coordinator reads it): int16 version
 * >= 0, [string topics], nullable bytes user_data. 0, or -1 when it does not
 * parse (fn may have been called for some topics). */
static int sub_topics(const uint8_t *meta, int32_t len, int (*fn)(sc_kstr_t, void *), void *arg)
{
    sc_rd_t r;
    int32_t n;
    sc_kbytes_t ud;
    sc_rd_init(&r, meta, len > 0 ? (size_t)len : 0);
    if (sc_kr_i16(&r) < 0 || r.err || sc_kr_array_len(&r, 0, 2, &n))
        return -1;
    for (int32_t i = 0; i < n; i++) {
        sc_kstr_t t;
        if (sc_kr_string(&r, 0, &t) || fn(t, arg))
            return -1;
    }
    return sc_kr_bytes(&r, 1, &ud) ? -1 : 0;
}

int bk__group_subscribed(const bk_group_t *g, const char *topic, size_t len)
{
    for (int i = 0; g->subs_known && i < g->nsubs; i++)
        if (str_eq(g->subs[i], topic, len))
            return 1;
    return 0;
}

static int sub_add(sc_kstr_t t, void *arg)
{
    bk_group_t *g = arg;
    if (bk__group_subscribed(g, t.p, (size_t)t.len))
        return 0;
    char **v = sc_realloc(g->subs, (size_t)(g->nsubs + 1) * sizeof *v);
    if (!v)
        return -1;
    g->subs = v;
    if (!(v[g->nsubs] = bk__group_strdup(t.p, (size_t)t.len)))
        return -1;
    g->nsubs++;
    return 0;
}

/* Kafka's GroupMetadata.computeSubscribedTopics, at the end of a join phase. */
static void compute_subs(bk_group_t *g)
{
    subs_free(g);
    if (!g->protocol_type || strcmp(g->protocol_type, "consumer") != 0 || !g->members ||
        !g->protocol)
        return;
    g->subs_known = 1; /* bk__group_subscribed reads the list as it grows */
    for (bk_member_t *m = g->members; m; m = m->next) {
        const bk_gproto_t *p = member_proto(m, g->protocol);
        if (!p || sub_topics(p->meta, p->len, sub_add, g)) {
            SC_WARN(SUB, "group %s: member %s's %s subscription does not parse (or no memory); "
                         "the group's subscribed topics are unknown", g->id, m->id, g->protocol);
            subs_free(g);
            return;
        }
    }
}

/* Topic lists of two subscriptions, compared as sets (only the topics: the
 * owned partitions and generation of v1+ change across a restart). */
typedef struct {
    const uint8_t *other;
    int32_t other_len;
    int missing;
} sub_cmp_t;

static int sub_find(sc_kstr_t t, void *arg)
{
    sc_kstr_t *want = arg;
    if (t.len == want->len && memcmp(t.p, want->p, (size_t)t.len) == 0)
        want->len = -2; /* found */
    return 0;
}

static int sub_check(sc_kstr_t t, void *arg)
{
    sub_cmp_t *c = arg;
    sc_kstr_t want = t;
    if (sub_topics(c->other, c->other_len, sub_find, &want) || want.len != -2)
        c->missing = 1;
    return 0;
}

/* 1 when subscriptions a and b name the same set of topics (both parse). */
static int sub_same_topics(const uint8_t *a, int32_t alen, const uint8_t *b, int32_t blen)
{
    sub_cmp_t ab = {b, blen, 0}, ba = {a, alen, 0};
    if (sub_topics(a, alen, sub_check, &ab) || sub_topics(b, blen, sub_check, &ba))
        return 0;
    return !ab.missing && !ba.missing;
}

static void member_unlink(bk_group_t *g, bk_member_t *m)
{
    for (bk_member_t **e = &g->members; *e; e = &(*e)->next)
        if (*e == m) {
            *e = m->next;
            g->nmembers--;
            break;
        }
    if (g->leader == m)
        g->leader = NULL;
}

/* Removes m (answering its parked responses with err) without changing the
 * group's state. */
static void member_remove(bk_group_t *g, bk_member_t *m, int16_t err)
{
    answer_join(g, m, err, NULL);
    answer_sync(m, err, NULL);
    member_unlink(g, m);
    member_free(m);
}

/* The join phase is over: generation + 1 and every waiting member answered. */
static void complete_join(bk_coord_t *co, bk_group_t *g, cur_t *cur)
{
    /* dynamic members that did not rejoin in time are out; static ones stay
     * until their session timeout (Kafka's onCompleteJoin) */
    for (bk_member_t *m = g->members, *next; m; m = next) {
        next = m->next;
        if (!m->joined && !m->instance_id) {
            SC_INFO(SUB, "group %s: member %s did not rejoin within the rebalance timeout; "
                         "removing it", g->id, m->id);
            member_remove(g, m, SC_ERR_UNKNOWN_MEMBER_ID);
        }
    }
    /* the leader must be a member that rejoined (maybeElectNewJoinedLeader) */
    if (g->leader && !g->leader->joined)
        g->leader = NULL;
    if (!g->leader && g->members) {
        for (bk_member_t *m = g->members; m && !g->leader; m = m->next)
            if (m->joined)
                g->leader = m;
        if (!g->leader) {
            /* only static members that have not rejoined: wait for them or for
             * their session timeouts */
            g->join_deadline = sc_mono_ms() + max_rebalance_ms(g);
            SC_INFO(SUB, "group %s: no member rejoined; the join phase is extended", g->id);
            return;
        }
    }
    g->generation++;
    sc_free(g->protocol);
    g->protocol = NULL;
    if (g->nmembers == 0) {
        g->state = BK_GROUP_EMPTY;
        g->empty_since = sc_now_ms(); /* offsets expire from here */
        g->leader = NULL;
        subs_free(g);
        SC_INFO(SUB, "group %s: empty at generation %d", g->id, g->generation);
        /* Kafka's onCompleteJoin stores the Empty group (errors only logged) */
        int16_t e;
        bk__offsets_store_group(co, g, 0, NULL, NULL, &e);
        return;
    }
    const char *sel = select_protocol(g);
    g->protocol = bk__group_strdup(sel ? sel : "", sel ? strlen(sel) : 0);
    compute_subs(g);
    g->state = BK_GROUP_COMPLETING;
    g->sync_deadline = sc_mono_ms() + max_rebalance_ms(g);
    SC_INFO(SUB, "group %s: generation %d, protocol %s, leader %s, %d member(s)", g->id,
            g->generation, g->protocol ? g->protocol : "?", g->leader->id, g->nmembers);
    for (bk_member_t *m = g->members; m; m = m->next) {
        bk__group_member_touch(m);
        answer_join(g, m, g->protocol ? 0 : sc_err_to_kafka(SC_ERR_NO_MEMORY), cur);
    }
}

/* PreparingRebalance: completes the join phase when every member rejoined
 * (after the initial delay) or the rebalance timeout passed. */
static void try_complete_join(bk_coord_t *co, bk_group_t *g, cur_t *cur)
{
    if (g->state != BK_GROUP_PREPARING)
        return;
    int64_t now = sc_mono_ms();
    if (g->delay_deadline && now < g->delay_deadline)
        return;
    int all = 1;
    for (bk_member_t *m = g->members; m && all; m = m->next)
        all = m->joined;
    if (!all && now < g->join_deadline)
        return;
    complete_join(co, g, cur);
}

/* After members left or were removed: the state change Kafka makes. */
static void after_remove(bk_coord_t *co, bk_group_t *g, const char *why)
{
    if (g->state == BK_GROUP_STABLE || g->state == BK_GROUP_COMPLETING)
        prepare_rebalance(co, g, why);
    try_complete_join(co, g, NULL);
}

void bk__group_delete(bk_coord_t *co, bk_group_t *g)
{
    for (bk_group_t **e = &co->groups; *e; e = &(*e)->next)
        if (*e == g) {
            *e = g->next;
            break;
        }
    while (g->members) /* none for an Empty group; kept safe anyway */
        member_remove(g, g->members, SC_ERR_UNKNOWN_MEMBER_ID);
    group_free(g);
}

void bk__group_drop_partition(bk_coord_t *co, int32_t part)
{
    size_t n = 0;
    for (bk_group_t **e = &co->groups; *e;) {
        bk_group_t *g = *e;
        if (bk__offsets_partition(co, g->id, strlen(g->id)) != part) {
            e = &g->next;
            continue;
        }
        *e = g->next;
        while (g->members)
            member_remove(g, g->members, SC_ERR_NOT_COORDINATOR);
        group_free(g);
        n++;
    }
    if (n)
        SC_INFO(SUB, "%s-%d: no longer its leader; dropped %zu group(s)", BK_OFFSETS_TOPIC, part,
                n);
}

/* ---- GroupMetadata records (__consumer_offsets key version 2) ------------------- */

void bk__group_write_value(const bk_group_t *g, sc_kw_t *w, int64_t now)
{
    int live = g->state != BK_GROUP_EMPTY && g->state != BK_GROUP_DEAD && g->members;
    sc_kw_i16(w, 3);
    sc_kw_cstr(w, 0, g->protocol_type ? g->protocol_type : "");
    sc_kw_i32(w, g->generation);
    sc_kw_cstr(w, 0, live ? g->protocol : NULL);
    sc_kw_cstr(w, 0, live && g->leader ? g->leader->id : NULL);
    sc_kw_i64(w, !live && g->empty_since > 0 ? g->empty_since : now); /* currentStateTimestamp */
    sc_kw_array_len(w, live ? g->nmembers : 0);
    for (const bk_member_t *m = live ? g->members : NULL; m; m = m->next) {
        const bk_gproto_t *p = member_proto(m, g->protocol);
        sc_kw_cstr(w, 0, m->id);
        sc_kw_cstr(w, 0, m->instance_id); /* NULL: null */
        sc_kw_cstr(w, 0, m->client_id);
        sc_kw_cstr(w, 0, m->client_host);
        sc_kw_i32(w, m->rebalance_ms);
        sc_kw_i32(w, m->session_ms);
        sc_kw_bytes(w, p ? (const void *)p->meta : "", p ? (size_t)p->len : 0);
        sc_kw_bytes(w, m->assign ? (const void *)m->assign : "",
                    m->assign ? (size_t)m->assign_len : 0);
    }
}

static char *kstr_dup(sc_kstr_t k)
{
    return k.len < 0 ? NULL : bk__group_strdup(k.p, (size_t)k.len);
}

static uint8_t *kbytes_dup(sc_kbytes_t b)
{
    uint8_t *p = sc_malloc(b.len > 0 ? (size_t)b.len : 1);
    if (p && b.len > 0)
        memcpy(p, b.p, (size_t)b.len);
    return p;
}

/* One MemberMetadata of a GroupMetadataValue of version ver into a new member
 * (protocol proto). NULL with *rc set. */
static bk_member_t *load_member(sc_rd_t *r, int ver, const char *proto, int64_t now, int *rc)
{
    int flex = ver >= 4;
    sc_kstr_t id, inst = {NULL, -1}, cid, host;
    sc_kbytes_t sub, asg;
    int32_t rebalance = -1, session;
    sc_kr_str(r, flex, 0, &id);
    if (ver >= 3)
        sc_kr_str(r, flex, 1, &inst);
    sc_kr_str(r, flex, 0, &cid);
    sc_kr_str(r, flex, 0, &host);
    if (ver >= 1)
        rebalance = sc_kr_i32(r);
    session = sc_kr_i32(r);
    if (flex) {
        sc_kr_compact_bytes(r, 0, &sub);
        sc_kr_compact_bytes(r, 0, &asg);
        sc_kr_tags_skip(r);
    } else {
        sc_kr_bytes(r, 0, &sub);
        sc_kr_bytes(r, 0, &asg);
    }
    *rc = SC_ERR_CORRUPT_MESSAGE;
    if (r->err || id.len <= 0 || session <= 0)
        return NULL;
    *rc = SC_ERR_NO_MEMORY;
    bk_member_t *m = sc_calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->id = kstr_dup(id);
    m->instance_id = kstr_dup(inst);
    m->client_id = kstr_dup(cid);
    m->client_host = kstr_dup(host);
    m->session_ms = session;
    m->rebalance_ms = rebalance > 0 ? rebalance : session;
    m->protos = sc_calloc(1, sizeof *m->protos);
    if (m->protos) {
        m->nprotos = 1;
        m->protos[0].name = bk__group_strdup(proto, strlen(proto));
        m->protos[0].meta = kbytes_dup(sub);
        m->protos[0].len = sub.len;
    }
    if (asg.len > 0) {
        m->assign = kbytes_dup(asg);
        m->assign_len = asg.len;
    }
    if (!m->id || (inst.len >= 0 && !m->instance_id) || !m->client_id || !m->client_host ||
        !m->protos || !m->protos[0].name || !m->protos[0].meta || (asg.len > 0 && !m->assign)) {
        member_free(m);
        return NULL;
    }
    m->deadline = now + session; /* Kafka's onGroupLoaded: every member's heartbeat restarts */
    *rc = 0;
    return m;
}

int bk__group_load(bk_coord_t *co, const char *id, size_t len, const uint8_t *v, int64_t vlen)
{
    bk_group_t *g = bk__group_get(co, id, len);
    if (!g)
        return SC_ERR_NO_MEMORY;
    /* the record replaces whatever membership an earlier one gave */
    while (g->members)
        member_remove(g, g->members, SC_ERR_NOT_COORDINATOR);
    g->leader = NULL;
    subs_free(g);
    sc_free(g->protocol_type);
    sc_free(g->protocol);
    g->protocol_type = g->protocol = NULL;
    g->state = BK_GROUP_EMPTY;
    g->generation = 0;
    g->empty_since = 0;
    if (!v) {
        /* tombstone: the group was deleted (its offsets have their own, written
         * before it in the same batch); gone unless commits came after it */
        if (!g->noffs && !g->pending && !g->inflight)
            bk__group_delete(co, g);
        return 0;
    }

    sc_rd_t r;
    sc_rd_init(&r, v, vlen > 0 ? (size_t)vlen : 0);
    int16_t ver = sc_kr_i16(&r);
    if (r.err || ver < 0 || ver > 4)
        return SC_ERR_CORRUPT_MESSAGE;
    int flex = ver >= 4;
    sc_kstr_t ptype, proto, leader;
    int64_t ts = -1;
    int32_t n;
    sc_kr_str(&r, flex, 0, &ptype);
    int32_t gen = sc_kr_i32(&r);
    sc_kr_str(&r, flex, 1, &proto);
    sc_kr_str(&r, flex, 1, &leader);
    if (ver >= 2)
        ts = sc_kr_i64(&r);
    if (r.err || sc_kr_arr(&r, flex, 0, 8, &n) || gen < 0)
        return SC_ERR_CORRUPT_MESSAGE;
    if (ptype.len > 0 && !(g->protocol_type = kstr_dup(ptype)))
        return SC_ERR_NO_MEMORY;
    g->generation = gen;
    char *pname = proto.len >= 0 ? kstr_dup(proto) : bk__group_strdup("", 0);
    if (!pname)
        return SC_ERR_NO_MEMORY;
    int64_t now = sc_mono_ms();
    bk_member_t **tail = &g->members;
    int rc = 0;
    for (int32_t i = 0; i < n; i++) {
        bk_member_t *m = load_member(&r, ver, pname, now, &rc);
        if (!m)
            break;
        *tail = m;
        tail = &m->next;
        g->nmembers++;
        if (leader.len >= 0 && str_eq(m->id, leader.p, (size_t)leader.len))
            g->leader = m;
    }
    if (!rc && flex && sc_kr_tags_skip(&r))
        rc = SC_ERR_CORRUPT_MESSAGE;
    if (rc) {
        sc_free(pname);
        while (g->members)
            member_remove(g, g->members, SC_ERR_NOT_COORDINATOR);
        g->leader = NULL;
        return rc;
    }
    if (!g->members) {
        sc_free(pname);
        g->empty_since = ts > 0 ? ts : 0; /* 0: offsets expire from their commit */
        return 0;
    }
    g->protocol = pname;
    if (!g->leader)
        g->leader = g->members;
    g->state = BK_GROUP_STABLE;
    compute_subs(g);
    return 0;
}

/* ---- the timer ------------------------------------------------------------------- */

/* Removes Empty groups that have nothing left (Kafka: -> Dead); one that had
 * a generation gets a tombstone for its GroupMetadata record (Kafka's
 * cleanupGroupMetadata). At start (at_start) only groups whose offsets all
 * ended in tombstones and that never had a generation go; the others wait
 * for the timer (nothing is appended before the loop runs). */
static void remove_empty_groups(bk_coord_t *co, int at_start)
{
    for (bk_group_t **e = &co->groups; *e;) {
        bk_group_t *g = *e;
        if (g->state != BK_GROUP_EMPTY || g->members || g->pending || g->noffs || g->inflight ||
            (at_start && g->generation > 0)) {
            e = &g->next;
            continue;
        }
        *e = g->next;
        SC_DEBUG(SUB, "group %s: empty with no committed offsets; removed", g->id);
        if (g->generation > 0) {
            int16_t kerr;
            bk__offsets_store_group(co, g, 1, NULL, NULL, &kerr);
        }
        group_free(g);
    }
}

void bk__group_prune_loaded(bk_coord_t *co) { remove_empty_groups(co, 1); }

static void on_tick(uv_timer_t *t)
{
    bk_coord_t *co = t->data;
    if (co->srv->cluster)
        bk__offsets_cluster_tick(co, 0);
    int64_t now = sc_mono_ms();
    if (now - co->last_expiry >= co->srv->cfg->offsets_retention_check_interval_ms) {
        co->last_expiry = now;
        bk__offsets_expire(co, sc_now_ms());
        remove_empty_groups(co, 0);
    }
    for (bk_group_t *g = co->groups; g; g = g->next) {
        for (bk_pending_t **e = &g->pending; *e;) {
            bk_pending_t *p = *e;
            if (p->deadline <= now) {
                *e = p->next;
                sc_free(p->id);
                sc_free(p);
            } else {
                e = &p->next;
            }
        }
        int removed = 0;
        for (bk_member_t *m = g->members, *next; m; m = next) {
            next = m->next;
            if (m->deadline > now || m->join_slot || m->sync_slot)
                continue;
            SC_INFO(SUB, "group %s: member %s missed its %d ms session timeout; removing it",
                    g->id, m->id, m->session_ms);
            member_remove(g, m, SC_ERR_UNKNOWN_MEMBER_ID);
            removed++;
        }
        if (g->state == BK_GROUP_COMPLETING && g->sync_deadline <= now) {
            for (bk_member_t *m = g->members, *next; m; m = next) {
                next = m->next;
                if (m->sync_slot)
                    continue;
                SC_INFO(SUB, "group %s: member %s did not sync within the rebalance timeout; "
                             "removing it", g->id, m->id);
                member_remove(g, m, SC_ERR_UNKNOWN_MEMBER_ID);
                removed++;
            }
        }
        if (removed)
            after_remove(co, g, "member(s) timed out");
        else
            try_complete_join(co, g, NULL);
    }
}

/* ---- lifecycle ------------------------------------------------------------------- */

int bk__group_init(bk_server_t *s)
{
    bk_coord_t *co = sc_calloc(1, sizeof *co);
    if (!co)
        return SC_ERR_NO_MEMORY;
    co->srv = s;
    s->coord = co;
    return 0;
}

int bk__group_start_offline(bk_server_t *s)
{
    bk_coord_t *co = s->coord;
    if (!co)
        return SC_ERR_INVALID_REQUEST;
    co->nparts = s->cfg->offsets_topic_num_partitions;
    co->offline = 1;
    co->ready = 1;
    return 0;
}

int bk__group_start(bk_server_t *s)
{
    bk_coord_t *co = s->coord;
    int rc = bk__offsets_start(co);
    if (rc)
        return rc;
    remove_empty_groups(co, 1); /* groups whose every offset ended in a tombstone */
    uv_timer_init(&s->shard0.loop, &co->timer);
    co->timer.data = co;
    co->timer_live = 1;
    co->last_expiry = sc_mono_ms(); /* first check one interval after start, as Kafka */
    uv_timer_start(&co->timer, on_tick, BK_GROUP_TICK_MS, BK_GROUP_TICK_MS);
    co->ready = 1;
    return 0;
}

void bk__group_stop(bk_server_t *s)
{
    bk_coord_t *co = s->coord;
    if (!co)
        return;
    co->ready = 0;
    for (bk_group_t *g = co->groups; g; g = g->next)
        for (bk_member_t *m = g->members; m; m = m->next) {
            answer_join(g, m, SC_ERR_NOT_COORDINATOR, NULL);
            answer_sync(m, SC_ERR_NOT_COORDINATOR, NULL);
        }
    if (co->timer_live && !uv_is_closing((uv_handle_t *)&co->timer))
        uv_close((uv_handle_t *)&co->timer, NULL);
}

void bk__group_free(bk_server_t *s)
{
    bk_coord_t *co = s->coord;
    if (!co)
        return;
    while (co->groups) {
        bk_group_t *g = co->groups;
        co->groups = g->next;
        group_free(g);
    }
    sc_free(co->loaded);
    sc_free(co);
    s->coord = NULL;
}

/* ---- FindCoordinator ---------------------------------------------------------- */

int bk__h_find_coordinator(bk_req_t *req, sc_kw_t *w)
{
    int v = req->hdr.api_version;
    sc_rd_t *r = &req->body;
    sc_kstr_t key;
    int8_t type = 0;
    sc_kr_string(r, 0, &key);
    if (v >= 1)
        type = sc_kr_i8(r);
    if (r->err)
        return r->err;
    int16_t err = 0;
    const char *msg = NULL;
    bk_coord_t *co = req->srv->coord;
    if (type == 1) {
        err = SC_ERR_COORDINATOR_NOT_AVAILABLE;
        msg = "transactions are not supported";
    } else if (type != 0) {
        err = SC_ERR_INVALID_REQUEST;
        msg = "unknown coordinator type";
    } else if (!co || !co->ready) {
        err = SC_ERR_COORDINATOR_NOT_AVAILABLE;
    }
    char host[256] = "";
    int port = -1;
    int32_t node = req->srv->cfg->node_id;
    if (!err && req->srv->cluster) {
        /* The leader of the group's __consumer_offsets partition. */
        bk__offsets_cluster_tick(co, 1);
        int32_t part = co->nparts > 0 ? bk__offsets_partition(co, key.p, (size_t)key.len) : -1;
        node = part < 0 ? -1 : bk__cluster_leader(req->srv, BK_OFFSETS_TOPIC,
                                                   sizeof BK_OFFSETS_TOPIC - 1, part);
        if (node < 0 || bk__cluster_broker_addr(req->srv, node, host, sizeof host, &port))
            err = SC_ERR_COORDINATOR_NOT_AVAILABLE;
    } else if (!err) {
        bk__advertised_address(req->srv, req->conn, host, sizeof host, &port);
    }
    if (v >= 1)
        sc_kw_i32(w, 0);
    sc_kw_i16(w, err);
    if (v >= 1)
        sc_kw_cstr(w, 0, msg ? msg : (err ? sc_err_str(err) : NULL));
    sc_kw_i32(w, err ? -1 : node);
    sc_kw_cstr(w, 0, host);
    sc_kw_i32(w, port);
    return 0;
}

/* ---- JoinGroup -------------------------------------------------------------------- */

typedef struct {
    sc_kstr_t group, member, instance, ptype;
    int32_t session_ms, rebalance_ms;
    int32_t nprotos;
    sc_rd_t protos; /* the protocols array, for a second pass */
} join_req_t;

static int join_decode(sc_rd_t *r, int v, join_req_t *j)
{
    memset(j, 0, sizeof *j);
    j->instance.len = -1;
    sc_kr_string(r, 0, &j->group);
    j->session_ms = sc_kr_i32(r);
    j->rebalance_ms = v >= 1 ? sc_kr_i32(r) : j->session_ms;
    sc_kr_string(r, 0, &j->member);
    if (v >= 5)
        sc_kr_string(r, 1, &j->instance);
    sc_kr_string(r, 0, &j->ptype);
    sc_kr_array_len(r, 0, 6, &j->nprotos);
    j->protos = *r;
    for (int32_t i = 0; i < j->nprotos && !r->err; i++) {
        sc_kstr_t n;
        sc_kbytes_t b;
        sc_kr_string(r, 0, &n);
        sc_kr_bytes(r, 0, &b);
    }
    if (j->rebalance_ms < 0) /* v1+ clients send it; -1 = "same as session" */
        j->rebalance_ms = j->session_ms;
    return r->err;
}

/* 1 when the request's protocols are acceptable to the group: same protocol
 * type and a protocol name supported by every other member. */
static int protocols_ok(const bk_group_t *g, const bk_member_t *self, const join_req_t *j)
{
    if (g->nmembers == 0 || (g->nmembers == 1 && g->members == self))
        return 1;
    if (!str_eq(g->protocol_type, j->ptype.p, (size_t)j->ptype.len))
        return 0;
    sc_rd_t r = j->protos;
    for (int32_t i = 0; i < j->nprotos; i++) {
        sc_kstr_t n;
        sc_kbytes_t b;
        sc_kr_string(&r, 0, &n);
        sc_kr_bytes(&r, 0, &b);
        int all = 1;
        for (const bk_member_t *m = g->members; m && all; m = m->next) {
            if (m == self)
                continue;
            int has = 0;
            for (int k = 0; k < m->nprotos && !has; k++)
                has = str_eq(m->protos[k].name, n.p, (size_t)n.len);
            all = has;
        }
        if (all)
            return 1;
    }
    return 0;
}

/* Replaces m's protocols with the request's; *changed = 1 when they differ.
 * 0 or SC_ERR_NO_MEMORY (m unchanged). */
static int set_protocols(bk_member_t *m, const join_req_t *j, int *changed)
{
    bk_gproto_t *p = sc_calloc((size_t)(j->nprotos ? j->nprotos : 1), sizeof *p);
    if (!p)
        return SC_ERR_NO_MEMORY;
    sc_rd_t r = j->protos;
    int diff = j->nprotos != m->nprotos;
    for (int32_t i = 0; i < j->nprotos; i++) {
        sc_kstr_t n;
        sc_kbytes_t b;
        sc_kr_string(&r, 0, &n);
        sc_kr_bytes(&r, 0, &b);
        p[i].name = bk__group_strdup(n.p, (size_t)n.len);
        p[i].meta = sc_malloc((size_t)b.len + 1);
        p[i].len = b.len;
        if (!p[i].name || !p[i].meta) {
            protos_free(p, i + 1);
            return SC_ERR_NO_MEMORY;
        }
        if (b.len)
            memcpy(p[i].meta, b.p, (size_t)b.len);
        if (!diff && (strcmp(m->protos[i].name, p[i].name) != 0 || m->protos[i].len != b.len ||
                      memcmp(m->protos[i].meta, p[i].meta, (size_t)b.len) != 0))
            diff = 1;
    }
    protos_free(m->protos, m->nprotos);
    m->protos = p;
    m->nprotos = j->nprotos;
    *changed = diff;
    return 0;
}

static bk_member_t *member_new(bk_group_t *g, char *id, const join_req_t *j, bk_req_t *req)
{
    bk_member_t *m = sc_calloc(1, sizeof *m);
    int changed;
    if (!m) {
        sc_free(id);
        return NULL;
    }
    m->id = id;
    m->session_ms = j->session_ms;
    m->rebalance_ms = j->rebalance_ms;
    m->client_id = bk__group_strdup(req->hdr.client_id.p ? req->hdr.client_id.p : "",
                                    req->hdr.client_id.len > 0 ? (size_t)req->hdr.client_id.len
                                                               : 0);
    m->client_host = client_host(req->conn);
    if (j->instance.len >= 0)
        m->instance_id = bk__group_strdup(j->instance.p, (size_t)j->instance.len);
    if (!m->client_id || !m->client_host || (j->instance.len >= 0 && !m->instance_id) ||
        set_protocols(m, j, &changed)) {
        member_free(m);
        return NULL;
    }
    bk_member_t **e = &g->members;
    while (*e)
        e = &(*e)->next;
    *e = m;
    g->nmembers++;
    bk__group_member_touch(m);
    return m;
}

static int pending_take(bk_group_t *g, sc_kstr_t id)
{
    for (bk_pending_t **e = &g->pending; *e; e = &(*e)->next) {
        if (str_eq((*e)->id, id.p, (size_t)id.len)) {
            bk_pending_t *p = *e;
            *e = p->next;
            sc_free(p->id);
            sc_free(p);
            return 1;
        }
    }
    return 0;
}

/* Kafka's acceptJoiningMember for group.max.size: Empty always accepts;
 * PreparingRebalance accepts a member that already rejoined, or anyone while
 * fewer than max have; Completing/Stable accept members, and new ones while
 * the group is below max. A static member replacing its own instance never
 * grows the group and is accepted (Kafka 3.7 refuses it in a full group). */
static int accept_joining(bk_group_t *g, sc_kstr_t mid, sc_kstr_t inst, int32_t max)
{
    bk_member_t *m = mid.len > 0 ? bk__group_member_find(g, mid.p, (size_t)mid.len) : NULL;
    int joined = 0;
    switch (g->state) {
    case BK_GROUP_EMPTY:
    case BK_GROUP_DEAD:
        return 1;
    case BK_GROUP_PREPARING:
        if (m && m->joined)
            return 1;
        for (bk_member_t *x = g->members; x; x = x->next)
            joined += x->joined;
        return joined < max || (mid.len == 0 && member_by_instance(g, inst));
    case BK_GROUP_COMPLETING:
    case BK_GROUP_STABLE:
        return m || g->nmembers < max || (mid.len == 0 && member_by_instance(g, inst));
    }
    return 1;
}

/* A static member rejoining a Stable group with a new id keeps its
 * assignment when its subscription for the group's protocol names the same
 * topics as before ("consumer" groups; other protocol types: always, as in
 * Kafka, where only the selected protocol matters). */
static int static_keeps_assignment(const bk_group_t *g, const bk_member_t *old,
                                   const join_req_t *j)
{
    if (!g->protocol_type || strcmp(g->protocol_type, "consumer") != 0)
        return 1;
    const bk_gproto_t *was = member_proto(old, g->protocol);
    sc_rd_t r = j->protos;
    for (int32_t i = 0; was && i < j->nprotos; i++) {
        sc_kstr_t n;
        sc_kbytes_t b;
        sc_kr_string(&r, 0, &n);
        sc_kr_bytes(&r, 0, &b);
        if (str_eq(g->protocol, n.p, (size_t)n.len))
            return sub_same_topics(was->meta, was->len, b.p, b.len);
    }
    return 0;
}

/* A static member's rejoin into a Stable group without a rebalance, waiting
 * for its GroupMetadata record. */
typedef struct {
    bk_coord_t *co;
    char *group;
    char *member; /* the new member id */
    char *old_id; /* the id it replaced (restored if the write fails) */
    char *leader; /* the leader id to answer (from before the replacement) */
    bk_slot_t *slot; /* the parked JoinGroup */
} static_store_t;

static void static_store_free(static_store_t *st)
{
    if (!st)
        return;
    sc_free(st->group);
    sc_free(st->member);
    sc_free(st->old_id);
    sc_free(st->leader);
    sc_free(st);
}

/* Answers the parked JoinGroup of m: the current generation with the old
 * leader id and no members (err 0), or, the record not stored, Kafka's
 * revert: m takes its old id back (its session restarts) and the join gets
 * err with an empty member id. Nothing when that join was answered already
 * (a rebalance completed meanwhile). */
static void static_finish(bk_group_t *g, bk_member_t *m, static_store_t *st, int16_t err,
                          cur_t *cur)
{
    bk_slot_t *s = m->join_slot;
    if (!s || s != st->slot)
        return;
    if (err) {
        SC_WARN(SUB, "group %s: static member %s not stored (error %d); %s is its id again",
                g->id, m->id, err, st->old_id);
        sc_free(m->id);
        m->id = st->old_id;
        st->old_id = NULL;
        bk__group_member_touch(m);
    }
    m->join_slot = NULL;
    sc_kw_t pw, *w = &pw;
    if (cur && cur->slot == s) {
        w = cur->w;
        cur->answered = 1;
        s->op = NULL;
        s->detach = NULL;
    } else {
        slot_begin(s, &pw);
    }
    write_join(w, m->join_ver, err, g->generation, g->protocol, st->leader, err ? "" : m->id,
               err ? 0 : strlen(m->id), NULL);
    if (w == &pw)
        slot_end(s, &pw);
}

static void static_stored(void *arg, int16_t kerr)
{
    static_store_t *st = arg;
    bk_group_t *g = bk__group_find(st->co, st->group, strlen(st->group));
    bk_member_t *m = g ? bk__group_member_find(g, st->member, strlen(st->member)) : NULL;
    if (m)
        static_finish(g, m, st, kerr, NULL);
    static_store_free(st);
}

int bk__h_join_group(bk_req_t *req, sc_kw_t *w)
{
    int v = req->hdr.api_version;
    bk_coord_t *co = req->srv->coord;
    const bk_config_t *cfg = req->srv->cfg;
    join_req_t j;
    int rc = join_decode(&req->body, v, &j);
    if (rc)
        return rc;

    int16_t err = 0;
    bk_group_t *g = NULL;
    bk_member_t *m = NULL;
    char *newid = NULL;
    int is_new = 0, changed = 0, replaced = 0, keep = 0;
    char *old_leader = NULL; /* static rejoin: the leader's id before the replacement */
    char *old_id = NULL;     /* ... and the member's own id before it */
    if (!co || !co->ready || (!req->slot && !co->offline))
        err = SC_ERR_COORDINATOR_NOT_AVAILABLE;
    else if (j.group.len == 0)
        err = SC_ERR_INVALID_GROUP_ID;
    else if ((err = bk__coord_error(co, j.group.p, j.group.len)) != 0)
        ;
    else if (j.session_ms < cfg->group_min_session_timeout_ms ||
             j.session_ms > cfg->group_max_session_timeout_ms)
        err = SC_ERR_INVALID_SESSION_TIMEOUT;
    else if (j.ptype.len == 0 || j.nprotos == 0)
        err = SC_ERR_INCONSISTENT_GROUP_PROTOCOL;
    if (!err) {
        g = bk__group_find(co, j.group.p, (size_t)j.group.len);
        if (!g && j.member.len > 0)
            err = SC_ERR_UNKNOWN_MEMBER_ID;
        else if (!g && !(g = bk__group_get(co, j.group.p, (size_t)j.group.len)))
            return SC_ERR_NO_MEMORY;
    }
    if (!err && !accept_joining(g, j.member, j.instance, cfg->group_max_size)) {
        /* Kafka's acceptJoiningMember: the member over group.max.size is
         * refused (and removed when it was a member or a pending id) */
        bk_member_t *x = bk__group_member_find(g, j.member.p, (size_t)j.member.len);
        SC_INFO(SUB, "group %s: group.max.size=%d reached; refusing member %.*s", g->id,
                cfg->group_max_size, (int)j.member.len, j.member.p);
        if (x) {
            member_remove(g, x, SC_ERR_GROUP_MAX_SIZE_REACHED);
            after_remove(co, g, "member over group.max.size removed");
        } else if (j.member.len > 0) {
            pending_take(g, j.member);
        }
        write_join(w, v, SC_ERR_GROUP_MAX_SIZE_REACHED, -1, "", "", "", 0, NULL);
        return 0;
    }
    if (!err && j.member.len > 0) {
        m = bk__group_member_find(g, j.member.p, (size_t)j.member.len);
        bk_member_t *by_inst = member_by_instance(g, j.instance);
        if (by_inst && by_inst != m)
            err = SC_ERR_FENCED_INSTANCE_ID;
        else if (m && j.instance.len >= 0 &&
                 !str_eq(m->instance_id, j.instance.p, (size_t)j.instance.len))
            err = SC_ERR_FENCED_INSTANCE_ID;
        else if (!m && !pending_take(g, j.member))
            err = SC_ERR_UNKNOWN_MEMBER_ID;
        else if (!m && !(newid = bk__group_strdup(j.member.p, (size_t)j.member.len)))
            return SC_ERR_NO_MEMORY;
    }
    if (!err && !protocols_ok(g, m, &j))
        err = SC_ERR_INCONSISTENT_GROUP_PROTOCOL;
    if (err) {
        sc_free(newid);
        write_join(w, v, err, -1, "", "", j.member.p, (size_t)j.member.len, NULL);
        return 0;
    }

    if (!m && j.member.len == 0) {
        /* a new member: id first */
        if (!(newid = member_id_new(co, req->hdr.client_id)))
            return SC_ERR_NO_MEMORY;
        bk_member_t *old = member_by_instance(g, j.instance);
        if (old) {
            /* static member back with a new id: the old id is fenced (Kafka's
             * replaceStaticMember); the leader id answered in Stable is the
             * one from before, so a replaced leader does not run an assignment
             * the Stable group would not hand out */
            SC_INFO(SUB, "group %s: static member %s (instance %s) rejoined as %s", g->id, old->id,
                    old->instance_id, newid);
            if (g->leader && !(old_leader = bk__group_strdup(g->leader->id,
                                                             strlen(g->leader->id)))) {
                sc_free(newid);
                return SC_ERR_NO_MEMORY;
            }
            answer_join(g, old, SC_ERR_FENCED_INSTANCE_ID, NULL);
            answer_sync(old, SC_ERR_FENCED_INSTANCE_ID, NULL);
            if (g->state == BK_GROUP_STABLE)
                keep = static_keeps_assignment(g, old, &j);
            old_id = old->id;
            old->id = newid;
            newid = NULL;
            m = old;
            replaced = 1;
        } else if (v >= 4 && j.instance.len < 0) {
            bk_pending_t *p = sc_calloc(1, sizeof *p);
            if (!p) {
                sc_free(newid);
                return SC_ERR_NO_MEMORY;
            }
            p->id = newid;
            p->deadline = sc_mono_ms() + j.session_ms;
            p->next = g->pending;
            g->pending = p;
            write_join(w, v, SC_ERR_MEMBER_ID_REQUIRED, -1, "", "", newid, strlen(newid), NULL);
            return 0;
        }
    }
    if (!m) {
        if (!(m = member_new(g, newid, &j, req)))
            return SC_ERR_NO_MEMORY;
        is_new = 1;
        if (!g->protocol_type || g->nmembers == 1) {
            char *pt = bk__group_strdup(j.ptype.p, (size_t)j.ptype.len);
            if (!pt)
                return SC_ERR_NO_MEMORY;
            sc_free(g->protocol_type);
            g->protocol_type = pt;
        }
    } else {
        m->session_ms = j.session_ms;
        m->rebalance_ms = j.rebalance_ms;
        if (set_protocols(m, &j, &changed)) {
            sc_free(old_leader);
            sc_free(old_id);
            return SC_ERR_NO_MEMORY;
        }
        bk__group_member_touch(m);
    }

    cur_t cur = {.slot = req->slot, .w = w};
    if (m->join_slot) /* a second join while one is parked: the first is stale */
        answer_join(g, m, SC_ERR_REBALANCE_IN_PROGRESS, NULL);
    if (replaced && g->state == BK_GROUP_STABLE) {
        const char *sel = select_protocol(g);
        if (keep && sel && g->protocol && strcmp(sel, g->protocol) == 0) {
            /* Kafka 3.7: a static member rejoining a Stable group without
             * changing the selected protocol (Strata: nor its subscribed
             * topics) keeps its assignment; no rebalance */
            SC_INFO(SUB, "group %s: static member %s rejoined a Stable group with the same "
                         "subscription; no rebalance (generation %d)", g->id, m->id,
                    g->generation);
            /* the new member id goes to __consumer_offsets first; the join is
             * answered once it is stored (Kafka's updateStaticMemberAndRebalance) */
            static_store_t *st = sc_calloc(1, sizeof *st);
            if (!st || !(st->group = bk__group_strdup(g->id, strlen(g->id))) ||
                !(st->member = bk__group_strdup(m->id, strlen(m->id)))) {
                static_store_free(st);
                sc_free(old_leader);
                sc_free(old_id);
                return SC_ERR_NO_MEMORY;
            }
            st->co = co;
            st->old_id = old_id;
            st->leader = old_leader;
            m->join_ver = (int16_t)v;
            park(m, &m->join_slot, req->slot);
            st->slot = m->join_slot;
            int16_t kerr;
            if (bk__offsets_store_group(co, g, 0, static_stored, st, &kerr)) {
                req->async = 1;
                return 0;
            }
            static_finish(g, m, st, kerr, &cur);
            static_store_free(st);
            if (!cur.answered)
                req->async = 1; /* offline without a slot: nothing to answer */
            return 0;
        }
    }
    sc_free(old_leader);
    sc_free(old_id);
    switch (g->state) {
    case BK_GROUP_COMPLETING:
    case BK_GROUP_STABLE:
        if (!is_new && !changed && !replaced &&
            (g->state == BK_GROUP_COMPLETING || m != g->leader)) {
            /* same metadata: the current generation again (a lost response) */
            park(m, &m->join_slot, req->slot);
            m->join_ver = (int16_t)v;
            answer_join(g, m, 0, &cur);
            return 0;
        }
        /* fall through */
    case BK_GROUP_EMPTY:
        prepare_rebalance(co, g,
                          is_new     ? "member joined"
                          : replaced ? "static member rejoined with a new member id"
                          : changed  ? "member changed its protocols"
                                     : "leader rejoined");
        break;
    case BK_GROUP_PREPARING:
        if (is_new && g->delay_deadline) {
            int64_t d = sc_mono_ms() + cfg->group_initial_rebalance_delay_ms;
            g->delay_deadline = d < g->delay_cap ? d : g->delay_cap;
        }
        break;
    case BK_GROUP_DEAD:
        break;
    }
    m->joined = 1;
    m->join_ver = (int16_t)v;
    park(m, &m->join_slot, req->slot);
    try_complete_join(co, g, &cur);
    if (!cur.answered)
        req->async = 1;
    return 0;
}

/* ---- SyncGroup / Heartbeat / LeaveGroup ------------------------------------------ */

/* Common validation (§7.4): the group, the member, its instance, the
 * generation. 0 with *gp / *mp, or the error. */
static int16_t check_member(bk_coord_t *co, sc_kstr_t gid, sc_kstr_t mid, sc_kstr_t inst,
                            int32_t gen, bk_group_t **gp, bk_member_t **mp)
{
    if (!co || !co->ready)
        return SC_ERR_COORDINATOR_NOT_AVAILABLE;
    if (gid.len == 0)
        return SC_ERR_INVALID_GROUP_ID;
    int16_t cerr = bk__coord_error(co, gid.p, gid.len);
    if (cerr)
        return cerr;
    bk_group_t *g = bk__group_find(co, gid.p, (size_t)gid.len);
    if (!g)
        return SC_ERR_UNKNOWN_MEMBER_ID;
    bk_member_t *m = bk__group_member_find(g, mid.p, (size_t)mid.len);
    bk_member_t *by_inst = member_by_instance(g, inst);
    if (by_inst && by_inst != m)
        return SC_ERR_FENCED_INSTANCE_ID;
    if (!m)
        return SC_ERR_UNKNOWN_MEMBER_ID;
    if (inst.len >= 0 && !str_eq(m->instance_id, inst.p, (size_t)inst.len))
        return SC_ERR_FENCED_INSTANCE_ID;
    if (gen != g->generation)
        return SC_ERR_ILLEGAL_GENERATION;
    *gp = g;
    *mp = m;
    return 0;
}

/* The leader's SyncGroup was stored (err 0: the group is Stable, every
 * member gets its assignment) or not (Kafka's resetAndPropagateAssignmentError:
 * every waiting member gets err, the assignments go, a rebalance starts). */
static void sync_complete(bk_coord_t *co, bk_group_t *g, int16_t err, cur_t *cur)
{
    if (!err) {
        g->state = BK_GROUP_STABLE;
        SC_INFO(SUB, "group %s: stable at generation %d", g->id, g->generation);
        for (bk_member_t *x = g->members; x; x = x->next)
            answer_sync(x, 0, cur);
        return;
    }
    SC_WARN(SUB, "group %s: generation %d not stored (error %d); rebalancing", g->id,
            g->generation, err);
    for (bk_member_t *x = g->members; x; x = x->next)
        answer_sync(x, err, cur);
    clear_assignments(g);
    prepare_rebalance(co, g, "storing the group's assignments failed");
}

typedef struct {
    bk_coord_t *co;
    char *group;
    int32_t generation;
} sync_store_t;

static void sync_stored(void *arg, int16_t kerr)
{
    sync_store_t *st = arg;
    bk_group_t *g = bk__group_find(st->co, st->group, strlen(st->group));
    /* a rebalance or a lost leadership meanwhile: nothing is waiting any more */
    if (g && g->state == BK_GROUP_COMPLETING && g->generation == st->generation)
        sync_complete(st->co, g, kerr, NULL);
    sc_free(st->group);
    sc_free(st);
}

int bk__h_sync_group(bk_req_t *req, sc_kw_t *w)
{
    int v = req->hdr.api_version;
    sc_rd_t *r = &req->body;
    sc_kstr_t gid, mid, inst = {NULL, -1};
    int32_t n;
    sc_kr_string(r, 0, &gid);
    int32_t gen = sc_kr_i32(r);
    sc_kr_string(r, 0, &mid);
    if (v >= 3)
        sc_kr_string(r, 1, &inst);
    sc_kr_array_len(r, 0, 6, &n);
    sc_rd_t assigns = *r;
    for (int32_t i = 0; i < n && !r->err; i++) {
        sc_kstr_t id;
        sc_kbytes_t b;
        sc_kr_string(r, 0, &id);
        sc_kr_bytes(r, 0, &b);
    }
    if (r->err)
        return r->err;

    bk_coord_t *co = req->srv->coord;
    bk_group_t *g = NULL;
    bk_member_t *m = NULL;
    int16_t err = req->slot || (co && co->offline)
                      ? check_member(co, gid, mid, inst, gen, &g, &m)
                      : SC_ERR_COORDINATOR_NOT_AVAILABLE;
    if (!err) {
        if (g->state == BK_GROUP_EMPTY || g->state == BK_GROUP_DEAD)
            err = SC_ERR_UNKNOWN_MEMBER_ID;
        else if (g->state == BK_GROUP_PREPARING)
            err = SC_ERR_REBALANCE_IN_PROGRESS;
    }
    if (err) {
        write_sync(w, v, err, NULL, 0);
        return 0;
    }
    bk__group_member_touch(m);
    if (g->state == BK_GROUP_STABLE) {
        write_sync(w, v, 0, m->assign, m->assign_len);
        return 0;
    }
    /* CompletingRebalance */
    cur_t cur = {.slot = req->slot, .w = w};
    if (m->sync_slot)
        answer_sync(m, SC_ERR_REBALANCE_IN_PROGRESS, NULL);
    m->sync_ver = (int16_t)v;
    park(m, &m->sync_slot, req->slot);
    if (m == g->leader) {
        sc_rd_t ar = assigns;
        for (int32_t i = 0; i < n; i++) {
            sc_kstr_t id;
            sc_kbytes_t b;
            sc_kr_string(&ar, 0, &id);
            sc_kr_bytes(&ar, 0, &b);
            bk_member_t *x = bk__group_member_find(g, id.p, (size_t)id.len);
            if (!x)
                continue;
            uint8_t *copy = sc_malloc((size_t)b.len + 1);
            if (!copy)
                return SC_ERR_NO_MEMORY;
            if (b.len)
                memcpy(copy, b.p, (size_t)b.len);
            sc_free(x->assign);
            x->assign = copy;
            x->assign_len = b.len;
        }
        /* Kafka's doSyncGroup: the group (with the assignments) is written
         * to __consumer_offsets and the members are answered once the ISR
         * has it */
        sync_store_t *st = sc_calloc(1, sizeof *st);
        int16_t kerr = 0;
        int pending = 0;
        if (!st || !(st->group = bk__group_strdup(g->id, strlen(g->id)))) {
            sc_free(st);
            kerr = sc_err_to_kafka(SC_ERR_NO_MEMORY);
        } else {
            st->co = co;
            st->generation = g->generation;
            if (!(pending = bk__offsets_store_group(co, g, 0, sync_stored, st, &kerr))) {
                sc_free(st->group);
                sc_free(st);
            }
        }
        if (!pending)
            sync_complete(co, g, kerr, &cur);
    }
    if (!cur.answered)
        req->async = 1;
    return 0;
}

int bk__h_heartbeat(bk_req_t *req, sc_kw_t *w)
{
    int v = req->hdr.api_version;
    sc_rd_t *r = &req->body;
    sc_kstr_t gid, mid, inst = {NULL, -1};
    sc_kr_string(r, 0, &gid);
    int32_t gen = sc_kr_i32(r);
    sc_kr_string(r, 0, &mid);
    if (v >= 3)
        sc_kr_string(r, 1, &inst);
    if (r->err)
        return r->err;
    bk_group_t *g = NULL;
    bk_member_t *m = NULL;
    int16_t err = check_member(req->srv->coord, gid, mid, inst, gen, &g, &m);
    if (!err) {
        if (g->state == BK_GROUP_EMPTY || g->state == BK_GROUP_DEAD) {
            err = SC_ERR_UNKNOWN_MEMBER_ID;
        } else {
            bk__group_member_touch(m);
            if (g->state == BK_GROUP_PREPARING)
                err = SC_ERR_REBALANCE_IN_PROGRESS;
        }
    }
    if (v >= 1)
        sc_kw_i32(w, 0);
    sc_kw_i16(w, err);
    return 0;
}

/* Removes one leaving member (by id, or by instance id when id is ""). */
static int16_t leave_one(bk_group_t *g, sc_kstr_t mid, sc_kstr_t inst)
{
    bk_member_t *m = mid.len > 0 ? bk__group_member_find(g, mid.p, (size_t)mid.len) : NULL;
    bk_member_t *by_inst = member_by_instance(g, inst);
    if (inst.len >= 0) {
        if (!by_inst)
            return SC_ERR_UNKNOWN_MEMBER_ID;
        if (mid.len > 0 && by_inst != m)
            return SC_ERR_FENCED_INSTANCE_ID;
        m = by_inst;
    }
    if (!m)
        return mid.len > 0 && pending_take(g, mid) ? 0 : SC_ERR_UNKNOWN_MEMBER_ID;
    SC_INFO(SUB, "group %s: member %s left", g->id, m->id);
    member_remove(g, m, SC_ERR_UNKNOWN_MEMBER_ID);
    return 0;
}

int bk__h_leave_group(bk_req_t *req, sc_kw_t *w)
{
    int v = req->hdr.api_version;
    sc_rd_t *r = &req->body;
    sc_kstr_t gid, mid = {NULL, -1};
    int32_t n = 1;
    sc_kr_string(r, 0, &gid);
    if (v <= 2)
        sc_kr_string(r, 0, &mid);
    else
        sc_kr_array_len(r, 0, 4, &n);
    sc_rd_t members = *r;
    for (int32_t i = 0; v >= 3 && i < n && !r->err; i++) {
        sc_kstr_t a, b;
        sc_kr_string(r, 0, &a);
        sc_kr_string(r, 1, &b);
    }
    if (r->err)
        return r->err;

    bk_coord_t *co = req->srv->coord;
    int16_t top = 0;
    bk_group_t *g = NULL;
    if (!co || !co->ready)
        top = SC_ERR_COORDINATOR_NOT_AVAILABLE;
    else if (gid.len == 0)
        top = SC_ERR_INVALID_GROUP_ID;
    else if ((top = bk__coord_error(co, gid.p, gid.len)) != 0)
        ;
    else if (!(g = bk__group_find(co, gid.p, (size_t)gid.len)) && v <= 2)
        top = SC_ERR_UNKNOWN_MEMBER_ID;
    if (v >= 1)
        sc_kw_i32(w, 0);
    int removed = 0;
    if (v <= 2) {
        if (!top) {
            sc_kstr_t none = {NULL, -1};
            top = leave_one(g, mid, none);
            removed = top == 0;
        }
        sc_kw_i16(w, top);
    } else {
        sc_kw_i16(w, top);
        sc_kw_array_len(w, top ? 0 : n);
        for (int32_t i = 0; !top && i < n; i++) {
            sc_kstr_t a, b;
            sc_kr_string(&members, 0, &a);
            sc_kr_string(&members, 1, &b);
            int16_t e = g ? leave_one(g, a, b) : SC_ERR_UNKNOWN_MEMBER_ID;
            removed += e == 0;
            sc_kw_string(w, a.p, (size_t)a.len);
            sc_kw_string(w, b.p, b.len < 0 ? 0 : (size_t)b.len); /* NULL p: null */
            sc_kw_i16(w, e);
        }
    }
    if (removed && g)
        after_remove(co, g, "member(s) left");
    return 0;
}

/* ---- ListGroups / DescribeGroups ----------------------------------------------------- */

int bk__h_list_groups(bk_req_t *req, sc_kw_t *w)
{
    int v = req->hdr.api_version;
    bk_coord_t *co = req->srv->coord;
    if (v >= 1)
        sc_kw_i32(w, 0);
    if (!co || !co->ready) {
        sc_kw_i16(w, SC_ERR_COORDINATOR_NOT_AVAILABLE);
        sc_kw_array_len(w, 0);
        return 0;
    }
    sc_kw_i16(w, 0);
    size_t at = sc_kw_reserve_i32(w);
    int32_t n = 0;
    for (bk_group_t *g = co->groups; g; g = g->next) {
        if (g->state == BK_GROUP_DEAD)
            continue;
        sc_kw_cstr(w, 0, g->id);
        sc_kw_cstr(w, 0, g->protocol_type ? g->protocol_type : "");
        n++;
    }
    sc_kw_patch_i32(w, at, n);
    return 0;
}

int bk__h_describe_groups(bk_req_t *req, sc_kw_t *w)
{
    int v = req->hdr.api_version;
    sc_rd_t *r = &req->body;
    int32_t n;
    sc_kr_array_len(r, 0, 2, &n);
    sc_rd_t names = *r;
    for (int32_t i = 0; i < n && !r->err; i++) {
        sc_kstr_t s;
        sc_kr_string(r, 0, &s);
    }
    if (v >= 3)
        sc_kr_bool(r);
    if (r->err)
        return r->err;
    bk_coord_t *co = req->srv->coord;
    if (v >= 1)
        sc_kw_i32(w, 0);
    sc_kw_array_len(w, n);
    for (int32_t i = 0; i < n; i++) {
        sc_kstr_t gid;
        sc_kr_string(&names, 0, &gid);
        int16_t err = !co || !co->ready ? SC_ERR_COORDINATOR_NOT_AVAILABLE
                                        : bk__coord_error(co, gid.p, gid.len);
        bk_group_t *g = !err ? bk__group_find(co, gid.p, (size_t)gid.len) : NULL;
        int stable = g && g->state == BK_GROUP_STABLE;
        sc_kw_i16(w, err);
        sc_kw_string(w, gid.p, (size_t)gid.len);
        sc_kw_cstr(w, 0, g ? state_names[g->state] : "Dead");
        sc_kw_cstr(w, 0, g && g->protocol_type ? g->protocol_type : "");
        sc_kw_cstr(w, 0, stable && g->protocol ? g->protocol : "");
        sc_kw_array_len(w, g ? g->nmembers : 0);
        for (bk_member_t *m = g ? g->members : NULL; m; m = m->next) {
            sc_kw_cstr(w, 0, m->id);
            if (v >= 4)
                sc_kw_cstr(w, 0, m->instance_id);
            sc_kw_cstr(w, 0, m->client_id);
            sc_kw_cstr(w, 0, m->client_host);
            const bk_gproto_t *p = NULL;
            for (int k = 0; stable && g->protocol && k < m->nprotos && !p; k++)
                if (strcmp(m->protos[k].name, g->protocol) == 0)
                    p = &m->protos[k];
            sc_kw_bytes(w, p ? (const void *)p->meta : "", p ? (size_t)p->len : 0);
            sc_kw_bytes(w, stable && m->assign ? (const void *)m->assign : "",
                        stable && m->assign ? (size_t)m->assign_len : 0);
        }
        if (v >= 3)
            sc_kw_i32(w, INT32_MIN); /* authorized operations: not requested / no ACLs */
    }
    return 0;
}
