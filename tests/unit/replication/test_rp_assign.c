/* Unit tests for replication/rp_assign (the controller's pure decisions):
 * replica assignment (distinct replicas, leaders spread, rack-aware spread,
 * bad replication factors) and leader / ISR changes when brokers die and
 * return (no unclean election), plus the PartitionState record round trip. */
#include "rp_assign.h"
#include "rp_meta_int.h"
#include "sc_err.h"
#include "t_util.h"

#include <string.h>

static rp_broker_t mk(int32_t id, const char *rack)
{
    rp_broker_t b;
    memset(&b, 0, sizeof b);
    b.id = id;
    strcpy(b.rack, rack);
    return b;
}

START_TEST(distinct_and_spread)
{
    rp_broker_t b[3] = {mk(3, ""), mk(1, ""), mk(2, "")};
    int leaders[4] = {0};
    for (int32_t p = 0; p < 6; p++) {
        int32_t r[3];
        ck_assert_int_eq(rp_assign_replicas(b, 3, p, 3, 0, r), 0);
        ck_assert(r[0] != r[1] && r[1] != r[2] && r[0] != r[2]);
        for (int i = 0; i < 3; i++)
            ck_assert(r[i] >= 1 && r[i] <= 3);
        leaders[r[0]]++;
    }
    /* six partitions over three brokers: two preferred leaders each */
    ck_assert_int_eq(leaders[1], 2);
    ck_assert_int_eq(leaders[2], 2);
    ck_assert_int_eq(leaders[3], 2);
    /* start rotates the first replica */
    int32_t a[1], c[1];
    ck_assert_int_eq(rp_assign_replicas(b, 3, 0, 1, 0, a), 0);
    ck_assert_int_eq(rp_assign_replicas(b, 3, 0, 1, 1, c), 0);
    ck_assert_int_ne(a[0], c[0]);
}
END_TEST

START_TEST(rf_out_of_range)
{
    rp_broker_t b[2] = {mk(0, ""), mk(1, "")};
    int32_t r[RP_RF_MAX + 1];
    ck_assert_int_eq(rp_assign_replicas(b, 2, 0, 3, 0, r), SC_ERR_INVALID_REPLICATION_FACTOR);
    ck_assert_int_eq(rp_assign_replicas(b, 2, 0, 0, 0, r), SC_ERR_INVALID_REPLICATION_FACTOR);
    ck_assert_int_eq(rp_assign_replicas(b, 0, 0, 1, 0, r), SC_ERR_INVALID_REPLICATION_FACTOR);
    ck_assert_int_eq(rp_assign_replicas(b, 2, 0, 2, 0, r), 0);
}
END_TEST

START_TEST(rack_aware)
{
    /* racks a a b b c c: every partition of rf 3 gets one replica per rack */
    rp_broker_t b[6] = {mk(0, "a"), mk(1, "a"), mk(2, "b"), mk(3, "b"), mk(4, "c"), mk(5, "c")};
    for (int32_t p = 0; p < 24; p++) {
        int32_t r[3];
        ck_assert_int_eq(rp_assign_replicas(b, 6, p, 3, 7, r), 0);
        char racks[3];
        for (int i = 0; i < 3; i++)
            racks[i] = b[r[i]].rack[0];
        ck_assert_msg(racks[0] != racks[1] && racks[1] != racks[2] && racks[0] != racks[2],
                      "partition %d: racks %c %c %c", p, racks[0], racks[1], racks[2]);
    }
    /* rf 4 over 3 racks: all distinct brokers, every rack used */
    int32_t r[4];
    ck_assert_int_eq(rp_assign_replicas(b, 6, 1, 4, 0, r), 0);
    int seen[3] = {0};
    for (int i = 0; i < 4; i++) {
        for (int j = 0; j < i; j++)
            ck_assert_int_ne(r[i], r[j]);
        seen[b[r[i]].rack[0] - 'a'] = 1;
    }
    ck_assert(seen[0] && seen[1] && seen[2]);
    /* a broker without a rack turns rack awareness off (Kafka refuses; we spread by id) */
    rp_broker_t m[3] = {mk(0, "a"), mk(1, ""), mk(2, "a")};
    ck_assert_int_eq(rp_assign_replicas(m, 3, 0, 3, 0, r), 0);
}
END_TEST

START_TEST(init_with_dead)
{
    int32_t rep[3] = {2, 0, 1}, live[2] = {0, 1};
    rp_pstate_t s;
    rp_pstate_init(&s, rep, 3, live, 2, 5);
    ck_assert_int_eq(s.nreplicas, 3);
    ck_assert_int_eq(s.leader, 0);
    ck_assert_int_eq(s.nisr, 2);
    ck_assert_int_eq(s.leader_epoch, 0);
    ck_assert_int_eq(s.controller_epoch, 5);
    rp_pstate_init(&s, rep, 3, live, 0, 5);
    ck_assert_int_eq(s.leader, -1);
    ck_assert_int_eq(s.nisr, 0);
}
END_TEST

START_TEST(failover)
{
    int32_t rep[3] = {1, 2, 3}, all[3] = {1, 2, 3};
    rp_pstate_t s, n;
    rp_pstate_init(&s, rep, 3, all, 3, 1);
    ck_assert_int_eq(s.leader, 1);
    /* nothing changed */
    ck_assert_int_eq(rp_pstate_next(&s, all, 3, 2, 0, &n), 0);
    ck_assert_int_eq(memcmp(&s, &n, sizeof s), 0);
    /* a follower dies: ISR shrinks, same leader and epoch */
    int32_t l12[2] = {1, 2};
    ck_assert_int_eq(rp_pstate_next(&s, l12, 2, 2, 0, &n), 1);
    ck_assert_int_eq(n.leader, 1);
    ck_assert_int_eq(n.leader_epoch, 0);
    ck_assert_int_eq(n.nisr, 2);
    ck_assert_int_eq(n.controller_epoch, 2);
    s = n;
    /* the leader dies: next replica in the ISR, epoch + 1 */
    int32_t l2[1] = {2};
    ck_assert_int_eq(rp_pstate_next(&s, l2, 1, 2, 0, &n), 1);
    ck_assert_int_eq(n.leader, 2);
    ck_assert_int_eq(n.leader_epoch, 1);
    ck_assert_int_eq(n.nisr, 1);
    ck_assert_int_eq(n.isr[0], 2);
    s = n;
    /* broker 3 (out of sync) returns: it does not rejoin the ISR here */
    int32_t l23[2] = {2, 3};
    ck_assert_int_eq(rp_pstate_next(&s, l23, 2, 2, 0, &n), 0);
    /* the last in-sync replica dies: offline, ISR remembered, epoch + 1 */
    int32_t l3[1] = {3};
    ck_assert_int_eq(rp_pstate_next(&s, l3, 1, 3, 0, &n), 1);
    ck_assert_int_eq(n.leader, -1);
    ck_assert_int_eq(n.nisr, 1);
    ck_assert_int_eq(n.isr[0], 2);
    ck_assert_int_eq(n.leader_epoch, 2);
    s = n;
    /* only the out-of-sync replica is alive: stays offline (no unclean election) */
    ck_assert_int_eq(rp_pstate_next(&s, l3, 1, 3, 0, &n), 0);
    ck_assert_int_eq(n.leader, -1);
    /* the in-sync one returns: leader again */
    ck_assert_int_eq(rp_pstate_next(&s, l23, 2, 3, 0, &n), 1);
    ck_assert_int_eq(n.leader, 2);
    ck_assert_int_eq(n.leader_epoch, 3);
}
END_TEST

/* unclean.leader.election.enable: with no in-sync replica alive, only the
 * flag lets a live replica outside the ISR lead (ISR = just it, epoch + 1,
 * returned as 2); without it the partition stays leaderless until an ISR
 * member returns. */
START_TEST(unclean_election)
{
    int32_t rep[3] = {1, 2, 3}, all[3] = {1, 2, 3}, l1[1] = {1}, l3[1] = {3}, l23[2] = {2, 3};
    int32_t none[1] = {0};
    rp_pstate_t s, n;
    rp_pstate_init(&s, rep, 3, all, 3, 1);
    s.nisr = 1; /* the leader alone in sync (the followers fell behind) */
    ck_assert_int_eq(s.leader, 1);
    /* the leader dies, only out-of-sync replicas are alive */
    ck_assert_int_eq(rp_pstate_next(&s, l23, 2, 2, 0, &n), 1);
    ck_assert_int_eq(n.leader, -1);
    ck_assert_int_eq(n.nisr, 1);
    ck_assert_int_eq(n.isr[0], 1);
    ck_assert_int_eq(n.leader_epoch, 1);
    rp_pstate_t off = n;
    /* clean: stays offline while only 2 and 3 live */
    ck_assert_int_eq(rp_pstate_next(&off, l23, 2, 2, 0, &n), 0);
    ck_assert_int_eq(n.leader, -1);
    /* unclean: the first live replica in assignment order leads, alone in the ISR */
    ck_assert_int_eq(rp_pstate_next(&off, l23, 2, 3, 1, &n), 2);
    ck_assert_int_eq(n.leader, 2);
    ck_assert_int_eq(n.nisr, 1);
    ck_assert_int_eq(n.isr[0], 2);
    ck_assert_int_eq(n.leader_epoch, 2);
    ck_assert_int_eq(n.controller_epoch, 3);
    ck_assert_int_eq(n.nreplicas, 3);
    /* the same straight from the live leader's death */
    ck_assert_int_eq(rp_pstate_next(&s, l3, 1, 2, 1, &n), 2);
    ck_assert_int_eq(n.leader, 3);
    ck_assert_int_eq(n.isr[0], 3);
    ck_assert_int_eq(n.nisr, 1);
    ck_assert_int_eq(n.leader_epoch, 1);
    /* the flag changes nothing while an in-sync replica is alive ... */
    ck_assert_int_eq(rp_pstate_next(&off, l1, 1, 3, 1, &n), 1);
    ck_assert_int_eq(n.leader, 1);
    ck_assert_int_eq(rp_pstate_next(&s, all, 3, 3, 1, &n), 0);
    /* ... nor when no replica at all is alive */
    ck_assert_int_eq(rp_pstate_next(&off, none, 1, 3, 1, &n), 0);
    ck_assert_int_eq(n.leader, -1);
}
END_TEST

START_TEST(preferred)
{
    int32_t rep[3] = {1, 2, 3}, all[3] = {1, 2, 3}, l23[2] = {2, 3};
    rp_pstate_t s, n;
    rp_pstate_init(&s, rep, 3, all, 3, 1);
    ck_assert_int_eq(rp_pstate_preferred(&s, all, 3, 1, &n), 0); /* already preferred */
    ck_assert_int_eq(rp_pstate_next(&s, l23, 2, 1, 0, &n), 1);       /* 1 dies */
    s = n;
    ck_assert_int_eq(s.leader, 2);
    ck_assert_int_eq(rp_pstate_preferred(&s, all, 3, 2, &n), 0);  /* 1 back but not in sync */
    s.isr[s.nisr++] = 1;                                            /* the leader re-admits it */
    ck_assert_int_eq(rp_pstate_preferred(&s, l23, 2, 2, &n), 0);  /* ... but it is not live */
    ck_assert_int_eq(rp_pstate_preferred(&s, all, 3, 2, &n), 1);
    ck_assert_int_eq(n.leader, 1);
    ck_assert_int_eq(n.leader_epoch, s.leader_epoch + 1);
    ck_assert_int_eq(n.controller_epoch, 2);
    ck_assert_int_eq(n.nisr, 3);
}
END_TEST

START_TEST(pstate_record)
{
    int32_t rep[3] = {4, 5, 6}, live[2] = {5, 6};
    rp_pstate_t s, d;
    rp_pstate_init(&s, rep, 3, live, 2, 9);
    s.leader_epoch = 12;
    sc_buf_t b;
    sc_buf_init(&b);
    ck_assert_int_eq(rp__pstate_pack(&s, &b), 0);
    ck_assert_int_eq(rp__pstate_unpack(b.data, b.len, &d), 0);
    ck_assert_int_eq(memcmp(&s, &d, sizeof s), 0);
    /* garbage does not decode */
    uint8_t junk[4] = {0xff, 0xff, 0xff, 0xff};
    ck_assert_int_eq(rp__pstate_unpack(junk, sizeof junk, &d), SC_ERR_BAD_FORMAT);
    sc_buf_fini(&b);
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("rp_assign");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, distinct_and_spread);
    tcase_add_test(tc, rf_out_of_range);
    tcase_add_test(tc, rack_aware);
    tcase_add_test(tc, init_with_dead);
    tcase_add_test(tc, failover);
    tcase_add_test(tc, unclean_election);
    tcase_add_test(tc, preferred);
    tcase_add_test(tc, pstate_record);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return t_run_suite(make_suite()); }
