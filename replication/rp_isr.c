/* rp_isr -- the leader's ISR, high watermark and acks=all waits (see rp_isr.h). */
#include "rp_isr.h"

#include "sc_err.h"

#include <stdlib.h>
#include <string.h>

void rp_isr_init(rp_isr_t *p)
{
    memset(p, 0, sizeof *p);
    p->leader_epoch = -1;
}

void rp_isr_fini(rp_isr_t *p)
{
    while (p->waits) {
        rp_isr_wait_t *w = p->waits;
        p->waits = w->next;
        free(w);
    }
    p->nf = 0;
}

static rp_isr_follower_t *find(rp_isr_t *p, int32_t replica)
{
    for (int i = 0; i < p->nf; i++)
        if (p->f[i].replica == replica)
            return &p->f[i];
    return NULL;
}

const rp_isr_follower_t *rp_isr_follower(const rp_isr_t *p, int32_t replica)
{
    return find((rp_isr_t *)p, replica);
}

static void start_over(rp_isr_follower_t *f, int64_t now_ms)
{
    f->leo = -1;
    f->prev_hw = 0;
    f->in_sync = 0;
    f->caught_up_ms = now_ms; /* a grace period from when leadership began */
}

int rp_isr_lead(rp_isr_t *p, const rp_pstate_t *st, int32_t me, int64_t now_ms)
{
    int fresh = p->leader_epoch != st->leader_epoch;
    if (fresh) {
        p->leader_epoch = st->leader_epoch;
        for (int i = 0; i < p->nf; i++)
            start_over(&p->f[i], now_ms);
    }
    for (int k = 0; k < st->nreplicas; k++) {
        int32_t r = st->replicas[k];
        if (r == me || find(p, r) || p->nf >= RP_RF_MAX)
            continue;
        rp_isr_follower_t *f = &p->f[p->nf++];
        f->replica = r;
        start_over(f, now_ms);
    }
    return fresh;
}

int rp_isr_fetch(rp_isr_t *p, int32_t replica, int64_t offset, int64_t hw, int64_t now_ms)
{
    rp_isr_follower_t *f = find(p, replica);
    if (!f)
        return -1;
    if ((f->leo >= 0 && offset >= f->prev_hw) || offset >= hw)
        f->caught_up_ms = now_ms;
    f->leo = offset;
    f->prev_hw = hw;
    f->in_sync = offset >= hw;
    return f->in_sync;
}

int64_t rp_isr_hw(const rp_isr_t *p, const rp_pstate_t *st, int32_t me, int64_t committed,
                  int64_t cur)
{
    int64_t hw = committed;
    for (int k = 0; k < st->nisr; k++) {
        if (st->isr[k] == me)
            continue;
        const rp_isr_follower_t *f =
            p->leader_epoch == st->leader_epoch ? rp_isr_follower(p, st->isr[k]) : NULL;
        int64_t leo = f && f->leo >= 0 ? f->leo : cur;
        if (leo < hw)
            hw = leo;
    }
    return hw > cur ? hw : cur;
}

int rp_isr_next(const rp_isr_t *p, const rp_pstate_t *st, int32_t me, const int32_t *live,
                int nlive, int64_t lag_max_ms, int64_t now_ms, rp_pstate_t *next)
{
    *next = *st;
    if (p->leader_epoch != st->leader_epoch)
        return 0; /* not led in this epoch yet: nothing known of the followers */
    rp_pstate_t n = *st;
    n.nisr = 0;
    int changed = 0;
    for (int k = 0; k < st->nisr; k++) {
        int32_t r = st->isr[k];
        const rp_isr_follower_t *f = r == me ? NULL : rp_isr_follower(p, r);
        if (f && now_ms - f->caught_up_ms > lag_max_ms) {
            changed = 1;
            continue;
        }
        n.isr[n.nisr++] = r;
    }
    for (int k = 0; k < st->nreplicas; k++) {
        int32_t r = st->replicas[k];
        if (r == me || rp_id_in(n.isr, n.nisr, r) || !rp_id_in(live, nlive, r))
            continue;
        const rp_isr_follower_t *f = rp_isr_follower(p, r);
        /* its latest fetch had everything below the high watermark, and that
         * fetch is recent (a member just dropped for lagging is not taken
         * back on a stale fetch) */
        if (f && f->in_sync && now_ms - f->caught_up_ms <= lag_max_ms && n.nisr < RP_RF_MAX) {
            n.isr[n.nisr++] = r;
            changed = 1;
        }
    }
    if (changed)
        *next = n;
    return changed;
}

int rp_isr_wait_add(rp_isr_t *p, int64_t end, int64_t deadline_ms, rp_isr_done_fn done,
                    void *arg)
{
    rp_isr_wait_t *w = calloc(1, sizeof *w);
    if (!w)
        return SC_ERR_NO_MEMORY;
    w->end = end;
    w->deadline_ms = deadline_ms;
    w->done = done;
    w->arg = arg;
    w->next = p->waits; /* newest first; answered oldest first */
    p->waits = w;
    return 0;
}

int rp_isr_waits_check(rp_isr_t *p, int leading, int64_t hw, int nisr, int64_t min_insync,
                       int64_t now_ms)
{
    rp_isr_wait_t *over = NULL; /* oldest first once built: the walk meets newest first */
    rp_isr_wait_t **pp = &p->waits;
    while (*pp) {
        rp_isr_wait_t *w = *pp;
        int err = -1; /* still waiting */
        if (!leading)
            err = SC_ERR_NOT_LEADER_OR_FOLLOWER;
        else if (hw >= w->end)
            err = nisr < min_insync ? SC_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND : 0;
        else if (now_ms >= w->deadline_ms)
            err = SC_ERR_REQUEST_TIMED_OUT;
        if (err < 0) {
            pp = &w->next;
            continue;
        }
        *pp = w->next;
        w->end = err; /* the answer, kept until done runs */
        w->next = over;
        over = w;
    }
    int n = 0;
    while (over) {
        rp_isr_wait_t *w = over;
        over = w->next;
        rp_isr_done_fn done = w->done;
        void *arg = w->arg;
        int16_t err = (int16_t)w->end;
        free(w);
        done(arg, err);
        n++;
    }
    return n;
}

int64_t rp_isr_waits_deadline(const rp_isr_t *p)
{
    int64_t d = INT64_MAX;
    for (const rp_isr_wait_t *w = p->waits; w; w = w->next)
        if (w->deadline_ms < d)
            d = w->deadline_ms;
    return d;
}
