/* rp_assign -- replica assignment and leader election (see rp_assign.h). */
#include "rp_assign.h"

#include "sc_err.h"

#include <stdlib.h>
#include <string.h>

int rp_id_in(const int32_t *a, int n, int32_t id)
{
    for (int i = 0; i < n; i++)
        if (a[i] == id)
            return 1;
    return 0;
}

static int by_id(const void *a, const void *b)
{
    const rp_broker_t *x = a, *y = b;
    return (x->id > y->id) - (x->id < y->id);
}

static int by_rack_then_id(const void *a, const void *b)
{
    const rp_broker_t *x = a, *y = b;
    int c = strcmp(x->rack, y->rack);
    return c ? c : by_id(a, b);
}

/* The broker order: by id, or rack-alternated when every broker has a rack.
 * Returns 1 when racks are in use. */
static int broker_order(const rp_broker_t *b, size_t n, rp_broker_t *order)
{
    int racks = n > 0;
    for (size_t i = 0; i < n; i++)
        if (!b[i].rack[0])
            racks = 0;
    memcpy(order, b, n * sizeof *b);
    if (!racks) {
        qsort(order, n, sizeof *order, by_id);
        return 0;
    }
    /* group by rack, then take one from each rack in turn */
    rp_broker_t *tmp = malloc(n * sizeof *tmp);
    size_t *start = malloc((n + 1) * sizeof *start), *pos = malloc((n + 1) * sizeof *pos);
    if (!tmp || !start || !pos) {
        free(tmp);
        free(start);
        free(pos);
        qsort(order, n, sizeof *order, by_id);
        return 0;
    }
    memcpy(tmp, b, n * sizeof *b);
    qsort(tmp, n, sizeof *tmp, by_rack_then_id);
    size_t nr = 0;
    for (size_t i = 0; i < n; i++)
        if (i == 0 || strcmp(tmp[i].rack, tmp[i - 1].rack) != 0)
            start[nr++] = i;
    start[nr] = n;
    for (size_t r = 0; r < nr; r++)
        pos[r] = start[r];
    size_t o = 0;
    while (o < n)
        for (size_t r = 0; r < nr && o < n; r++)
            if (pos[r] < start[r + 1])
                order[o++] = tmp[pos[r]++];
    free(tmp);
    free(start);
    free(pos);
    return 1;
}

int rp_assign_replicas(const rp_broker_t *b, size_t n, int32_t partition, int rf, int32_t start,
                       int32_t *out)
{
    if (rf < 1 || rf > RP_RF_MAX || (size_t)rf > n || partition < 0)
        return SC_ERR_INVALID_REPLICATION_FACTOR;
    rp_broker_t *order = malloc(n * sizeof *order);
    if (!order)
        return SC_ERR_NO_MEMORY;
    int racks = broker_order(b, n, order);
    uint64_t p = (uint64_t)partition + (uint64_t)(start < 0 ? -(int64_t)start : start);
    size_t first = (size_t)(p % n);
    size_t shift = n > 1 ? 1 + (size_t)((p / n) % (n - 1)) : 0;
    const char *used_racks[RP_RF_MAX];
    int nused = 0;
    size_t distinct = 0;
    for (size_t i = 0; racks && i < n; i++) {
        size_t j = 0;
        while (j < i && strcmp(order[j].rack, order[i].rack) != 0)
            j++;
        distinct += j == i;
    }
    out[0] = order[first].id;
    used_racks[nused++] = order[first].rack;
    for (int r = 1; r < rf; r++) {
        int picked = -1;
        /* pass 0: a broker in a rack not used yet (if any remains); pass 1: any */
        for (int pass = (racks && (size_t)nused < distinct) ? 0 : 1; pass < 2 && picked < 0; pass++) {
            for (size_t k = 0; k < n; k++) {
                const rp_broker_t *c = &order[(first + shift + k) % n];
                if (rp_id_in(out, r, c->id))
                    continue;
                if (pass == 0) {
                    int seen = 0;
                    for (int u = 0; u < nused; u++)
                        seen |= strcmp(used_racks[u], c->rack) == 0;
                    if (seen)
                        continue;
                }
                picked = (int)((first + shift + k) % n);
                break;
            }
        }
        out[r] = order[picked].id; /* rf <= n: some broker is always left */
        if (nused < RP_RF_MAX)
            used_racks[nused++] = order[picked].rack;
    }
    free(order);
    return 0;
}

void rp_pstate_init(rp_pstate_t *s, const int32_t *replicas, int rf, const int32_t *live,
                    int nlive, int32_t controller_epoch)
{
    memset(s, 0, sizeof *s);
    s->leader = -1;
    s->controller_epoch = controller_epoch;
    for (int i = 0; i < rf && i < RP_RF_MAX; i++) {
        s->replicas[s->nreplicas++] = replicas[i];
        if (rp_id_in(live, nlive, replicas[i])) {
            s->isr[s->nisr++] = replicas[i];
            if (s->leader < 0)
                s->leader = replicas[i];
        }
    }
}

int rp_pstate_preferred(const rp_pstate_t *cur, const int32_t *live, int nlive,
                        int32_t controller_epoch, rp_pstate_t *next)
{
    *next = *cur;
    if (cur->nreplicas < 1)
        return 0;
    int32_t pref = cur->replicas[0];
    if (cur->leader == pref || !rp_id_in(live, nlive, pref) || !rp_id_in(cur->isr, cur->nisr, pref))
        return 0;
    next->leader = pref;
    next->leader_epoch = cur->leader_epoch + 1;
    next->controller_epoch = controller_epoch;
    return 1;
}

int rp_pstate_next(const rp_pstate_t *cur, const int32_t *live, int nlive,
                   int32_t controller_epoch, int unclean, rp_pstate_t *next)
{
    int dirty = 0;
    *next = *cur;
    /* ISR minus dead brokers; but never empty it (the last in-sync replica
     * is remembered so that it alone may lead again), unless unclean election
     * is allowed and a replica out of sync is live. */
    rp_pstate_t n = *cur;
    n.nisr = 0;
    for (int i = 0; i < cur->nisr; i++)
        if (rp_id_in(live, nlive, cur->isr[i]))
            n.isr[n.nisr++] = cur->isr[i];
    for (int i = 0; n.nisr == 0 && unclean && i < cur->nreplicas; i++)
        if (rp_id_in(live, nlive, cur->replicas[i])) {
            /* unclean.leader.election.enable: a live replica out of sync leads */
            n.leader = cur->replicas[i];
            n.isr[n.nisr++] = n.leader;
            dirty = 1;
        }
    if (n.nisr == 0) {
        /* nobody in sync is alive: offline until one of them returns */
        n.nisr = cur->nisr;
        memcpy(n.isr, cur->isr, sizeof n.isr);
        n.leader = -1;
    } else if (dirty) {
        /* elected above */
    } else if (cur->leader < 0 || !rp_id_in(n.isr, n.nisr, cur->leader)) {
        n.leader = -1;
        for (int i = 0; i < cur->nreplicas && n.leader < 0; i++)
            if (rp_id_in(n.isr, n.nisr, cur->replicas[i]))
                n.leader = cur->replicas[i];
        if (n.leader < 0) /* an ISR member outside the assignment: take it */
            n.leader = n.isr[0];
    }
    int leader_changed = n.leader != cur->leader;
    int isr_changed = n.nisr != cur->nisr || memcmp(n.isr, cur->isr, sizeof(int32_t) * (size_t)n.nisr) != 0;
    if (!leader_changed && !isr_changed)
        return 0;
    if (leader_changed)
        n.leader_epoch = cur->leader_epoch + 1;
    n.controller_epoch = controller_epoch;
    *next = n;
    return dirty && leader_changed ? 2 : 1;
}
