/*
 * Unit tests for client/cl_group.c without a broker: the ConsumerProtocol
 * encodings against bytes kafka-python 2.0.2 produced (generated once with
 * /usr/bin/python3, see the comment on each fixture), the range and
 * roundrobin assignors against the examples in the Java client's javadoc
 * (RangeAssignor, RoundRobinAssignor) and its MemberInfo ordering, and the
 * group API's argument contract. Membership against stratad is
 * test_libstrata_group_*.
 */
#include "cl_group.h"
#include "strata/client.h"
#include "t_util.h"

#include "sc_err.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* ---- fixtures -------------------------------------------------------------------------- */

/* kafka.coordinator.protocol.ConsumerProtocolMemberMetadata(0, ['orders', 'payments'], b'') */
static const uint8_t SUB_V0[] = "\x00\x00\x00\x00\x00\x02\x00\x06\x6f\x72\x64\x65\x72\x73\x00\x08"
                                "\x70\x61\x79\x6d\x65\x6e\x74\x73\x00\x00\x00\x00";
/* ConsumerProtocolMemberAssignment(0, [('orders', [0, 2]), ('payments', [1])], b'') */
static const uint8_t ASG_V0[] = "\x00\x00\x00\x00\x00\x02\x00\x06\x6f\x72\x64\x65\x72\x73\x00\x00"
                                "\x00\x02\x00\x00\x00\x00\x00\x00\x00\x02\x00\x08\x70\x61\x79\x6d"
                                "\x65\x6e\x74\x73\x00\x00\x00\x01\x00\x00\x00\x01\x00\x00\x00\x00";
/* ConsumerProtocolSubscription v1 (+ owned_partitions) built from kafka-python's
 * own types: Schema(('version', Int16), ('subscription', Array(String)),
 * ('user_data', Bytes), ('owned', Array(('topic', String), ('partitions',
 * Array(Int32))))).encode(1, ['orders'], None, [('orders', [3, 1])]) */
static const uint8_t SUB_V1[] = "\x00\x01\x00\x00\x00\x01\x00\x06\x6f\x72\x64\x65\x72\x73\xff\xff"
                                "\xff\xff\x00\x00\x00\x01\x00\x06\x6f\x72\x64\x65\x72\x73\x00\x00"
                                "\x00\x02\x00\x00\x00\x03\x00\x00\x00\x01";

START_TEST(test_cl_group_subscription_v0)
{
    cl_cp_sub_t s;
    sc_buf_t b;
    char *topics[] = {"orders", "payments"};

    ck_assert_int_eq(cl_cp_sub_decode(SUB_V0, sizeof SUB_V0 - 1, &s), 0);
    ck_assert_int_eq(s.version, 0);
    ck_assert_uint_eq(s.ntopics, 2);
    ck_assert_str_eq(s.topics[0], "orders");
    ck_assert_str_eq(s.topics[1], "payments");
    ck_assert_int_eq(s.user_data_len, 0);
    ck_assert_uint_eq(s.nowned, 0);
    ck_assert_int_eq(s.generation, -1);
    cl_cp_sub_free(&s);

    cl_cp_sub_t e = {.version = 0, .topics = topics, .ntopics = 2, .user_data_len = 0};
    sc_buf_init(&b);
    ck_assert_int_eq(cl_cp_sub_encode(&b, &e), 0);
    ck_assert_uint_eq(b.len, sizeof SUB_V0 - 1);
    ck_assert_int_eq(memcmp(b.data, SUB_V0, b.len), 0);
    sc_buf_fini(&b);
}
END_TEST

START_TEST(test_cl_group_subscription_v1)
{
    cl_cp_sub_t s;
    sc_buf_t b;
    char *topics[] = {"orders"};
    int32_t parts[] = {3, 1};
    cl_cp_tparts_t owned = {.topic = "orders", .parts = parts, .nparts = 2};

    ck_assert_int_eq(cl_cp_sub_decode(SUB_V1, sizeof SUB_V1 - 1, &s), 0);
    ck_assert_int_eq(s.version, 1);
    ck_assert_uint_eq(s.ntopics, 1);
    ck_assert_str_eq(s.topics[0], "orders");
    ck_assert_int_eq(s.user_data_len, -1);
    ck_assert_ptr_null(s.user_data);
    ck_assert_uint_eq(s.nowned, 1);
    ck_assert_str_eq(s.owned[0].topic, "orders");
    ck_assert_uint_eq(s.owned[0].nparts, 2);
    ck_assert_int_eq(s.owned[0].parts[0], 3);
    ck_assert_int_eq(s.owned[0].parts[1], 1);
    cl_cp_sub_free(&s);

    cl_cp_sub_t e = {.version = 1,
                     .topics = topics,
                     .ntopics = 1,
                     .user_data_len = -1,
                     .owned = &owned,
                     .nowned = 1};
    sc_buf_init(&b);
    ck_assert_int_eq(cl_cp_sub_encode(&b, &e), 0);
    ck_assert_uint_eq(b.len, sizeof SUB_V1 - 1);
    ck_assert_int_eq(memcmp(b.data, SUB_V1, b.len), 0);

    /* what libstrata sends (v1, null user data, no owned partitions) decodes
     * as kafka-python's v0 schema reads it: the prefix is the v0 layout */
    sc_buf_reset(&b);
    e.owned = NULL;
    e.nowned = 0;
    ck_assert_int_eq(cl_cp_sub_encode(&b, &e), 0);
    ck_assert_int_eq(cl_cp_sub_decode(b.data, b.len, &s), 0);
    ck_assert_uint_eq(s.ntopics, 1);
    ck_assert_uint_eq(s.nowned, 0);
    cl_cp_sub_free(&s);

    /* a v3 subscription (Java 3.x: + generation, rack) decodes; trailing
     * bytes of a future version are ignored */
    sc_buf_reset(&b);
    e.version = 3;
    e.generation = 7;
    e.rack = "r1";
    ck_assert_int_eq(cl_cp_sub_encode(&b, &e), 0);
    sc_buf_append(&b, "\x00\x00\x00", 3);
    ck_assert_int_eq(cl_cp_sub_decode(b.data, b.len, &s), 0);
    ck_assert_int_eq(s.generation, 7);
    ck_assert_str_eq(s.rack, "r1");
    cl_cp_sub_free(&s);

    /* truncated at every length: an error, never a crash */
    for (size_t n = 0; n < sizeof SUB_V1 - 1; n++)
        ck_assert_int_eq(cl_cp_sub_decode(SUB_V1, n, &s), SC_ERR_BAD_FORMAT);
    sc_buf_fini(&b);
}
END_TEST

START_TEST(test_cl_group_assignment_v0)
{
    cl_cp_assign_t a;
    sc_buf_t b;

    ck_assert_int_eq(cl_cp_assign_decode(ASG_V0, sizeof ASG_V0 - 1, &a), 0);
    ck_assert_int_eq(a.version, 0);
    ck_assert_uint_eq(a.ntps, 2);
    ck_assert_str_eq(a.tps[0].topic, "orders");
    ck_assert_uint_eq(a.tps[0].nparts, 2);
    ck_assert_int_eq(a.tps[0].parts[0], 0);
    ck_assert_int_eq(a.tps[0].parts[1], 2);
    ck_assert_str_eq(a.tps[1].topic, "payments");
    ck_assert_uint_eq(a.tps[1].nparts, 1);
    ck_assert_int_eq(a.tps[1].parts[0], 1);
    ck_assert_int_eq(a.user_data_len, 0);

    sc_buf_init(&b);
    a.user_data_len = 0;
    ck_assert_int_eq(cl_cp_assign_encode(&b, &a), 0);
    ck_assert_uint_eq(b.len, sizeof ASG_V0 - 1);
    ck_assert_int_eq(memcmp(b.data, ASG_V0, b.len), 0);
    cl_cp_assign_free(&a);

    /* without user data at all (some clients): accepted as null */
    ck_assert_int_eq(cl_cp_assign_decode(ASG_V0, sizeof ASG_V0 - 1 - 4, &a), 0);
    ck_assert_int_eq(a.user_data_len, -1);
    cl_cp_assign_free(&a);
    /* a negative partition count or truncation inside the list: an error */
    for (size_t n = 0; n < sizeof ASG_V0 - 1 - 4; n++)
        ck_assert_int_eq(cl_cp_assign_decode(ASG_V0, n, &a), SC_ERR_BAD_FORMAT);
    sc_buf_fini(&b);
}
END_TEST

/* ---- assignors ---------------------------------------------------------------------------- */

/* "t0p0 t0p1 t1p0": member i's assignment as text. */
static void fmt(const cl_asg_out_t *o, const cl_asg_topic_t *topics, char *out, size_t n)
{
    out[0] = 0;
    for (size_t i = 0; i < o->n; i++) {
        size_t l = strlen(out);
        snprintf(out + l, n - l, "%s%sp%d", i ? " " : "", topics[o->tps[i].topic].name,
                 o->tps[i].part);
    }
}

static void check(const char *strategy, const cl_asg_member_t *m, size_t nm,
                  const cl_asg_topic_t *t, size_t nt, const char *const *want)
{
    cl_asg_out_t out[8];
    char got[256];

    memset(out, 0, sizeof out);
    ck_assert_int_eq(cl_assign(strategy, m, nm, t, nt, out), 0);
    for (size_t i = 0; i < nm; i++) {
        fmt(&out[i], t, got, sizeof got);
        ck_assert_msg(!strcmp(got, want[i]), "%s: member %s got \"%s\", want \"%s\"", strategy,
                      m[i].member_id, got, want[i]);
    }
    cl_asg_out_free(out, nm);
}

static const char *const T01[] = {"t0", "t1"};
static const char *const T0[] = {"t0"};
static const char *const T012[] = {"t0", "t1", "t2"};

/* RangeAssignor javadoc: C0, C1 on t0, t1 with 3 partitions each ->
 * C0: [t0p0, t0p1, t1p0, t1p1], C1: [t0p2, t1p2]. */
START_TEST(test_cl_group_range_java_example)
{
    cl_asg_topic_t t[] = {{"t1", 3}, {"t0", 3}}; /* any order */
    cl_asg_member_t m[] = {{"C1", NULL, T01, 2}, {"C0", NULL, T01, 2}};
    const char *want[] = {"t0p2 t1p2", "t0p0 t0p1 t1p0 t1p1"};

    check("range", m, 2, t, 2, want);
}
END_TEST

/* RoundRobinAssignor javadoc: C0, C1 on t0, t1 with 3 partitions each ->
 * C0: [t0p0, t0p2, t1p1], C1: [t0p1, t1p0, t1p2]; and C0 on t0, C1 on t0,t1,
 * C2 on t0,t1,t2 with 1, 2, 3 partitions -> C0: [t0p0], C1: [t1p0],
 * C2: [t1p1, t2p0, t2p1, t2p2]. */
START_TEST(test_cl_group_roundrobin_java_examples)
{
    cl_asg_topic_t t[] = {{"t0", 3}, {"t1", 3}};
    cl_asg_member_t m[] = {{"C0", NULL, T01, 2}, {"C1", NULL, T01, 2}};
    const char *want[] = {"t0p0 t0p2 t1p1", "t0p1 t1p0 t1p2"};
    check("roundrobin", m, 2, t, 2, want);

    cl_asg_topic_t t2[] = {{"t2", 3}, {"t0", 1}, {"t1", 2}};
    cl_asg_member_t m2[] = {{"C2", NULL, T012, 3}, {"C0", NULL, T0, 1}, {"C1", NULL, T01, 2}};
    const char *want2[] = {"t1p1 t2p0 t2p1 t2p2", "t0p0", "t1p0"};
    check("roundrobin", m2, 3, t2, 3, want2);
}
END_TEST

/* Range with more members than partitions, uneven splits (n/c each, the
 * first n%c one more), and mixed subscriptions: only subscribed members
 * count for a topic. */
START_TEST(test_cl_group_range_uneven)
{
    cl_asg_topic_t t[] = {{"t0", 7}, {"t1", 2}};
    cl_asg_member_t m[] = {{"a", NULL, T01, 2}, {"b", NULL, T01, 2}, {"c", NULL, T0, 1}};
    const char *want[] = {"t0p0 t0p1 t0p2 t1p0", "t0p3 t0p4 t1p1", "t0p5 t0p6"};
    check("range", m, 3, t, 2, want);

    cl_asg_topic_t t4[] = {{"t0", 4}};
    cl_asg_member_t m5[] = {{"m1", NULL, T0, 1},
                            {"m2", NULL, T0, 1},
                            {"m3", NULL, T0, 1},
                            {"m4", NULL, T0, 1},
                            {"m5", NULL, T0, 1}};
    const char *want5[] = {"t0p0", "t0p1", "t0p2", "t0p3", ""};
    check("range", m5, 5, t4, 1, want5);
}
END_TEST

/* Java's MemberInfo order: static members (group.instance.id) first, by
 * instance id, then dynamic ones by member id. */
START_TEST(test_cl_group_member_order)
{
    cl_asg_topic_t t[] = {{"t0", 3}};
    cl_asg_member_t m[] = {{"a", NULL, T0, 1}, {"z", "i2", T0, 1}, {"y", "i1", T0, 1}};
    const char *want[] = {"t0p2", "t0p1", "t0p0"};
    check("range", m, 3, t, 1, want);
    check("roundrobin", m, 3, t, 1, want);
}
END_TEST

START_TEST(test_cl_group_assignor_names)
{
    cl_asg_out_t out[1] = {{0}};
    cl_asg_member_t m[] = {{"a", NULL, T0, 1}};
    cl_asg_topic_t t[] = {{"t0", 1}};

    ck_assert(cl_assignor_known("range"));
    ck_assert(cl_assignor_known("roundrobin"));
    ck_assert(!cl_assignor_known("cooperative-sticky"));
    ck_assert_int_eq(cl_assign("sticky", m, 1, t, 1, out), -EINVAL);
    /* a topic nobody knows the partitions of: nothing assigned */
    t[0].nparts = 0;
    ck_assert_int_eq(cl_assign("range", m, 1, t, 1, out), 0);
    ck_assert_uint_eq(out[0].n, 0);
    cl_asg_out_free(out, 1);
}
END_TEST

/* ---- API contract without a broker ------------------------------------------------------- */

static strata_consumer_t *make(const char *group, const char *strategy)
{
    strata_conf_t *c = strata_conf_new();
    strata_consumer_t *k = NULL;
    char err[128];

    ck_assert_int_eq(strata_conf_set(c, "bootstrap.servers", "127.0.0.1:1", NULL, 0), 0);
    ck_assert_int_eq(strata_conf_set(c, "reconnect.backoff.ms", "10", NULL, 0), 0);
    ck_assert_int_eq(strata_conf_set(c, "request.timeout.ms", "1000", NULL, 0), 0);
    if (group)
        ck_assert_int_eq(strata_conf_set(c, "group.id", group, NULL, 0), 0);
    if (strategy)
        ck_assert_int_eq(strata_conf_set(c, "partition.assignment.strategy", strategy, NULL, 0), 0);
    ck_assert_int_eq(strata_consumer_new(c, &k, err, sizeof err), 0);
    strata_conf_free(c);
    return k;
}

static int commit_cb_calls;
static strata_err_t commit_cb_err = 12345;
static size_t commit_cb_count;
static void on_commit(strata_consumer_t *c, strata_err_t err,
                      const strata_topic_partition_t *offsets, size_t count, void *arg)
{
    (void)c, (void)offsets, (void)arg;
    commit_cb_calls++;
    commit_cb_err = err;
    commit_cb_count = count;
}

START_TEST(test_cl_group_api_contract)
{
    const char *topics[] = {"t"};
    const char *bad[] = {""};
    strata_topic_partition_t tp = {.topic = "t", .partition = 0, .offset = 5};
    strata_message_t *m = NULL;

    /* no group.id: subscribe and commit are refused */
    strata_consumer_t *k = make(NULL, NULL);
    ck_assert_int_eq(strata_consumer_subscribe(k, topics, 1, NULL, NULL), STRATA_ERR_INVALID_ARG);
    ck_assert_int_eq(strata_consumer_commit(k, &tp, 1, 100), STRATA_ERR_INVALID_ARG);
    ck_assert_int_eq(strata_consumer_commit_async(k, NULL, 0, NULL, NULL), STRATA_ERR_INVALID_ARG);
    ck_assert_int_eq(strata_consumer_close(k, 100), 0);
    strata_consumer_free(k);

    /* assign, then subscribe: mixing is refused */
    k = make("g", NULL);
    ck_assert_int_eq(strata_consumer_assign(k, &tp, 1), 0);
    ck_assert_int_eq(strata_consumer_subscribe(k, topics, 1, NULL, NULL), STRATA_ERR_INVALID_ARG);
    ck_assert_int_eq(strata_consumer_close(k, 100), 0);
    strata_consumer_free(k);

    /* subscribe, then assign: refused; bad topic names; bad offsets */
    k = make("g", NULL);
    ck_assert_int_eq(strata_consumer_subscribe(k, bad, 1, NULL, NULL), STRATA_ERR_INVALID_ARG);
    ck_assert_int_eq(strata_consumer_subscribe(k, topics, 0, NULL, NULL), STRATA_ERR_INVALID_ARG);
    ck_assert_int_eq(strata_consumer_subscribe(k, topics, 1, NULL, NULL), 0);
    ck_assert_int_eq(strata_consumer_assign(k, &tp, 1), STRATA_ERR_INVALID_ARG);
    tp.offset = STRATA_OFFSET_END;
    ck_assert_int_eq(strata_consumer_commit(k, &tp, 1, 100), STRATA_ERR_INVALID_ARG);
    tp.offset = 5;
    /* nothing assigned yet: committing "the positions" commits nothing */
    ck_assert_int_eq(strata_consumer_commit(k, NULL, 0, 100), 0);
    commit_cb_calls = 0;
    ck_assert_int_eq(strata_consumer_commit_async(k, NULL, 0, on_commit, NULL), 0);
    /* the broker is unreachable: a real commit times out */
    ck_assert_int_eq(strata_consumer_commit(k, &tp, 1, 200), STRATA_ERR_TIMED_OUT);
    ck_assert_int_eq(strata_consumer_poll(k, 100, &m), 0);
    ck_assert_ptr_null(m);
    ck_assert_int_eq(commit_cb_calls, 1); /* ran on the I/O thread meanwhile */
    ck_assert_int_eq(commit_cb_err, 0);
    ck_assert_uint_eq(commit_cb_count, 0);
    /* close waits for queued commits; the coordinator cannot be reached, so
     * it gives up after its timeout */
    ck_assert_int_eq(strata_consumer_commit_async(k, &tp, 1, on_commit, NULL), 0);
    ck_assert_int_eq(strata_consumer_close(k, 200), STRATA_ERR_TIMED_OUT);
    ck_assert_int_eq(strata_consumer_subscribe(k, topics, 1, NULL, NULL), STRATA_ERR_CLOSED);
    ck_assert_int_eq(strata_consumer_commit(k, &tp, 1, 100), STRATA_ERR_CLOSED);
    ck_assert_int_eq(strata_consumer_close(k, 100), 0);
    strata_consumer_free(k);
    /* the unfinished commit was reported exactly once, as failed */
    ck_assert_int_eq(commit_cb_calls, 2);
    ck_assert_uint_eq(commit_cb_count, 1);
    ck_assert(commit_cb_err == STRATA_ERR_CLOSED || commit_cb_err == STRATA_ERR_TIMED_OUT);

    /* an assignor libstrata does not implement */
    k = make("g", "range,cooperative-sticky");
    ck_assert_int_eq(strata_consumer_subscribe(k, topics, 1, NULL, NULL), STRATA_ERR_BAD_CONFIG);
    strata_consumer_free(k);
    /* Java class names are accepted */
    k = make("g", "org.apache.kafka.clients.consumer.RoundRobinAssignor");
    ck_assert_int_eq(strata_consumer_subscribe(k, topics, 1, NULL, NULL), 0);
    /* never joined (no broker): nothing to leave */
    ck_assert_int_eq(strata_consumer_unsubscribe(k), 0);
    /* unsubscribed: assign is allowed again */
    ck_assert_int_eq(strata_consumer_assign(k, &tp, 1), 0);
    strata_consumer_free(k); /* free closes: nothing left to wait for */
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("cl_group");
    TCase *tc = tcase_create("core");

    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_cl_group_subscription_v0);
    tcase_add_test(tc, test_cl_group_subscription_v1);
    tcase_add_test(tc, test_cl_group_assignment_v0);
    tcase_add_test(tc, test_cl_group_range_java_example);
    tcase_add_test(tc, test_cl_group_roundrobin_java_examples);
    tcase_add_test(tc, test_cl_group_range_uneven);
    tcase_add_test(tc, test_cl_group_member_order);
    tcase_add_test(tc, test_cl_group_assignor_names);
    tcase_add_test(tc, test_cl_group_api_contract);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return t_run_suite(make_suite());
}
