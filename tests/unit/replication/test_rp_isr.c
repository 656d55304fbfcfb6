/* Unit tests for replication/rp_isr (the leader's side, pure, fake clock):
 * a new leader epoch starts the followers over, the caught-up rule, high
 * watermark = min over the ISR, ISR shrink after the lag time and
 * re-admission, and acks=all waits (order, errors, deadlines, a done that
 * queues another wait). test_rp_sm drives the same module against real logs. */
#include "rp_isr.h"
#include "sc_err.h"
#include "t_util.h"

#include <string.h>

#define ME 1

static rp_pstate_t three(void)
{
    int32_t rep[3] = {1, 2, 3};
    rp_pstate_t s;
    rp_pstate_init(&s, rep, 3, rep, 3, 1);
    return s;
}

START_TEST(lead_starts_over)
{
    rp_isr_t p;
    rp_isr_init(&p);
    rp_pstate_t st = three();
    ck_assert_int_eq(rp_isr_lead(&p, &st, ME, 1000), 1);
    ck_assert_int_eq(rp_isr_lead(&p, &st, ME, 1001), 0); /* same epoch */
    ck_assert_int_eq(p.nf, 2);
    ck_assert_ptr_null(rp_isr_follower(&p, ME));
    ck_assert_int_eq(rp_isr_follower(&p, 2)->leo, -1);
    ck_assert_int_eq(rp_isr_follower(&p, 3)->caught_up_ms, 1000);
    ck_assert_int_eq(rp_isr_fetch(&p, 2, 5, 5, 1100), 1);
    ck_assert_int_eq(rp_isr_fetch(&p, 9, 5, 5, 1100), -1); /* not a replica */
    ck_assert_int_eq(rp_isr_follower(&p, 2)->leo, 5);
    /* a new epoch: everything known of the followers is dropped */
    st.leader_epoch = 4;
    ck_assert_int_eq(rp_isr_lead(&p, &st, ME, 2000), 1);
    ck_assert_int_eq(rp_isr_follower(&p, 2)->leo, -1);
    ck_assert_int_eq(rp_isr_follower(&p, 2)->in_sync, 0);
    ck_assert_int_eq(rp_isr_follower(&p, 2)->caught_up_ms, 2000);
    rp_isr_fini(&p);
}
END_TEST

/* Caught up (for the lag) = fetching from where the high watermark was at
 * the previous fetch, or from the current one; in sync (may rejoin) = at or
 * past the current one. */
START_TEST(caught_up_rule)
{
    rp_isr_t p;
    rp_isr_init(&p);
    rp_pstate_t st = three();
    rp_isr_lead(&p, &st, ME, 0);
    ck_assert_int_eq(rp_isr_fetch(&p, 2, 0, 10, 1), 0);  /* first fetch, behind hw 10 */
    ck_assert_int_eq(rp_isr_follower(&p, 2)->caught_up_ms, 0);
    ck_assert_int_eq(rp_isr_fetch(&p, 2, 10, 20, 2), 0); /* reached the previous hw ... */
    ck_assert_int_eq(rp_isr_follower(&p, 2)->caught_up_ms, 2); /* ... caught up */
    ck_assert_int_eq(rp_isr_follower(&p, 2)->in_sync, 0);      /* ... but not in sync */
    ck_assert_int_eq(rp_isr_fetch(&p, 2, 15, 30, 3), 0); /* below the previous hw (20) */
    ck_assert_int_eq(rp_isr_follower(&p, 2)->caught_up_ms, 2);
    ck_assert_int_eq(rp_isr_fetch(&p, 2, 30, 30, 4), 1); /* at the current hw */
    ck_assert_int_eq(rp_isr_follower(&p, 2)->caught_up_ms, 4);
    ck_assert_int_eq(rp_isr_follower(&p, 2)->in_sync, 1);
    rp_isr_fini(&p);
}
END_TEST

START_TEST(hw_is_min_over_isr)
{
    rp_isr_t p;
    rp_isr_init(&p);
    rp_pstate_t st = three();
    rp_isr_lead(&p, &st, ME, 0);
    /* nobody fetched yet: held where it is */
    ck_assert_int_eq(rp_isr_hw(&p, &st, ME, 100, 7), 7);
    rp_isr_fetch(&p, 2, 70, 7, 1);
    ck_assert_int_eq(rp_isr_hw(&p, &st, ME, 100, 7), 7); /* 3 has not fetched */
    rp_isr_fetch(&p, 3, 40, 7, 1);
    ck_assert_int_eq(rp_isr_hw(&p, &st, ME, 100, 7), 40);
    ck_assert_int_eq(rp_isr_hw(&p, &st, ME, 30, 7), 30);  /* the leader's own commit caps it */
    ck_assert_int_eq(rp_isr_hw(&p, &st, ME, 100, 50), 50); /* never goes down */
    /* 3 out of the ISR: no longer counted */
    st.nisr = 2;
    ck_assert_int_eq(rp_isr_hw(&p, &st, ME, 100, 7), 70);
    st.nisr = 1;
    ck_assert_int_eq(rp_isr_hw(&p, &st, ME, 100, 7), 100);
    /* a state of another epoch than the one led: nothing known, held */
    st = three();
    st.leader_epoch = 9;
    ck_assert_int_eq(rp_isr_hw(&p, &st, ME, 100, 7), 7);
    rp_isr_fini(&p);
}
END_TEST

START_TEST(shrink_and_readmit)
{
    rp_isr_t p;
    rp_isr_init(&p);
    rp_pstate_t st = three(), n;
    int32_t live[3] = {1, 2, 3};
    const int64_t lag = 100;
    rp_isr_lead(&p, &st, ME, 0);
    /* grace period from when leadership began */
    ck_assert_int_eq(rp_isr_next(&p, &st, ME, live, 3, lag, 100, &n), 0);
    ck_assert_int_eq(memcmp(&n, &st, sizeof st), 0);
    rp_isr_fetch(&p, 2, 0, 0, 90); /* 2 keeps up, 3 is silent */
    ck_assert_int_eq(rp_isr_next(&p, &st, ME, live, 3, lag, 150, &n), 1);
    ck_assert_int_eq(n.nisr, 2);
    ck_assert(rp_id_in(n.isr, n.nisr, 1) && rp_id_in(n.isr, n.nisr, 2));
    ck_assert_int_eq(n.leader, st.leader);
    ck_assert_int_eq(n.leader_epoch, st.leader_epoch);
    st = n;
    /* 3 fetches but is behind: stays out */
    ck_assert_int_eq(rp_isr_fetch(&p, 3, 0, 50, 160), 0);
    ck_assert_int_eq(rp_isr_next(&p, &st, ME, live, 3, lag, 160, &n), 0);
    /* 3 reaches the previous hw but the hw moved on (60): caught up, still out */
    ck_assert_int_eq(rp_isr_fetch(&p, 3, 50, 60, 165), 0);
    ck_assert_int_eq(rp_isr_follower(&p, 3)->caught_up_ms, 165);
    ck_assert_int_eq(rp_isr_next(&p, &st, ME, live, 3, lag, 165, &n), 0);
    /* 3 reaches the hw: re-admitted, but only while live */
    ck_assert_int_eq(rp_isr_fetch(&p, 3, 60, 60, 170), 1);
    int32_t live12[2] = {1, 2};
    ck_assert_int_eq(rp_isr_next(&p, &st, ME, live12, 2, lag, 170, &n), 0);
    ck_assert_int_eq(rp_isr_next(&p, &st, ME, live, 3, lag, 170, &n), 1);
    ck_assert_int_eq(n.nisr, 3);
    ck_assert(rp_id_in(n.isr, n.nisr, 3));
    /* both stop fetching right after fetches in sync: they leave after the
     * lag and are not taken back on those stale fetches; the leader stays */
    st = three();
    ck_assert_int_eq(rp_isr_next(&p, &st, ME, live, 3, lag, 100000, &n), 1);
    ck_assert_int_eq(n.nisr, 1);
    ck_assert_int_eq(n.isr[0], ME);
    /* a state of an epoch not led yet: no decision */
    st.leader_epoch = 3;
    ck_assert_int_eq(rp_isr_next(&p, &st, ME, live, 3, lag, 100000, &n), 0);
    rp_isr_fini(&p);
}
END_TEST

static struct {
    int n;
    intptr_t arg[16];
    int16_t err[16];
    rp_isr_t *requeue; /* done of arg 100 queues arg 101 here */
} D;

static void done(void *arg, int16_t err)
{
    ck_assert_int_lt(D.n, 16);
    D.arg[D.n] = (intptr_t)arg;
    D.err[D.n] = err;
    D.n++;
    if ((intptr_t)arg == 100 && D.requeue)
        ck_assert_int_eq(rp_isr_wait_add(D.requeue, 50, 500, done, (void *)(intptr_t)101), 0);
}

START_TEST(waits)
{
    rp_isr_t p;
    rp_isr_init(&p);
    memset(&D, 0, sizeof D);
    ck_assert_int_eq(rp_isr_waits_deadline(&p), INT64_MAX);
    ck_assert_int_eq(rp_isr_wait_add(&p, 10, 1000, done, (void *)1), 0);
    ck_assert_int_eq(rp_isr_wait_add(&p, 20, 900, done, (void *)2), 0);
    ck_assert_int_eq(rp_isr_wait_add(&p, 15, 1100, done, (void *)3), 0);
    ck_assert_int_eq(rp_isr_waits_deadline(&p), 900);
    /* nothing over yet */
    ck_assert_int_eq(rp_isr_waits_check(&p, 1, 9, 3, 2, 100), 0);
    /* hw 15: the first and third, in queue order */
    ck_assert_int_eq(rp_isr_waits_check(&p, 1, 15, 3, 2, 100), 2);
    ck_assert_int_eq(D.n, 2);
    ck_assert_int_eq(D.arg[0], 1);
    ck_assert_int_eq(D.arg[1], 3);
    ck_assert_int_eq(D.err[0], 0);
    ck_assert_int_eq(rp_isr_waits_deadline(&p), 900);
    /* the deadline passes: REQUEST_TIMED_OUT */
    ck_assert_int_eq(rp_isr_waits_check(&p, 1, 15, 3, 2, 900), 1);
    ck_assert_int_eq(D.arg[2], 2);
    ck_assert_int_eq(D.err[2], SC_ERR_REQUEST_TIMED_OUT);
    ck_assert_ptr_null(p.waits);
    /* reached with an ISR below min.insync.replicas */
    rp_isr_wait_add(&p, 30, 1000, done, (void *)4);
    ck_assert_int_eq(rp_isr_waits_check(&p, 1, 30, 1, 2, 100), 1);
    ck_assert_int_eq(D.err[3], SC_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND);
    /* leadership gone: every wait, whatever its end or deadline */
    rp_isr_wait_add(&p, 40, 1000, done, (void *)5);
    rp_isr_wait_add(&p, 0, 1000, done, (void *)6);
    ck_assert_int_eq(rp_isr_waits_check(&p, 0, 100, 3, 1, 0), 2);
    ck_assert_int_eq(D.err[4], SC_ERR_NOT_LEADER_OR_FOLLOWER);
    ck_assert_int_eq(D.err[5], SC_ERR_NOT_LEADER_OR_FOLLOWER);
    /* a done that queues another wait: it stays queued */
    D.requeue = &p;
    rp_isr_wait_add(&p, 45, 1000, done, (void *)100);
    ck_assert_int_eq(rp_isr_waits_check(&p, 1, 45, 3, 1, 0), 1);
    ck_assert_ptr_nonnull(p.waits);
    ck_assert_int_eq(rp_isr_waits_deadline(&p), 500);
    ck_assert_int_eq(rp_isr_waits_check(&p, 1, 50, 3, 1, 0), 1);
    ck_assert_int_eq(D.arg[D.n - 1], 101);
    rp_isr_wait_add(&p, 60, 1000, done, (void *)7);
    rp_isr_fini(&p); /* frees without answering */
    ck_assert_ptr_null(p.waits);
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("rp_isr");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, lead_starts_over);
    tcase_add_test(tc, caught_up_rule);
    tcase_add_test(tc, hw_is_min_over_isr);
    tcase_add_test(tc, shrink_and_readmit);
    tcase_add_test(tc, waits);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return t_run_suite(make_suite()); }
