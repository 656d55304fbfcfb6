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
#include <stdlib.h>
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

/* Random bytes and random mutations of the fixtures: decoded or rejected,
 * never a crash or a leak (the suite runs under ASan in CI). */
START_TEST(test_cl_group_decode_garbage)
{
    uint8_t buf[64];
    uint32_t x = 12345;

    for (int i = 0; i < 20000; i++) {
        size_t n = (size_t)(i % 64);
        const uint8_t *src = i % 3 == 0 ? SUB_V1 : i % 3 == 1 ? ASG_V0 : NULL;
        for (size_t j = 0; j < n; j++) {
            x = x * 1103515245u + 12345u;
            buf[j] = src && j < 40 && (x >> 24) % 8 ? src[j] : (uint8_t)(x >> 16);
        }
        cl_cp_sub_t s;
        cl_cp_assign_t a;
        if (cl_cp_sub_decode(buf, n, &s) == 0)
            cl_cp_sub_free(&s);
        if (cl_cp_assign_decode(buf, n, &a) == 0)
            cl_cp_assign_free(&a);
    }
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

/* generated once with /usr/bin/python3 and kafka-python 2.0.2's
 * RangePartitionAssignor / RoundRobinPartitionAssignor (random.Random(20261126)):
 * topics "name:partitions,...", members "id:topic+topic;...", then the expected
 * assignment per strategy "id=t0p0 t0p1|id=..." (partitions sorted). */
static const struct {
    const char *topics, *members, *range, *roundrobin;
} KP_CASES[] = {
    {"t0:8,t1:1,t2:2,t3:5", "m-7328:t0+t1+t2;m-7e26:t1+t3;m-bc9d:t0+t1+t3",
     "m-7328=t0p0 t0p1 t0p2 t0p3 t1p0 t2p0 t2p1|m-7e26=t3p0 t3p1 t3p2|m-bc9d=t0p4 t0p5 t0p6 t0p7 "
     "t3p3 t3p4",
     "m-7328=t0p0 t0p2 t0p4 t0p6 t1p0 t2p0 t2p1|m-7e26=t3p0 t3p2 t3p4|m-bc9d=t0p1 t0p3 t0p5 t0p7 "
     "t3p1 t3p3"},
    {"t0:2,t1:6", "m-cbdc:t0+t1;m-12a8:t0+t1;m-5aa7:t0+t1;m-4408:t0;m-af00:t0+t1",
     "m-cbdc=t1p5|m-12a8=t0p0 t1p0 t1p1|m-5aa7=t1p2 t1p3|m-4408=t0p1|m-af00=t1p4",
     "m-cbdc=t1p2|m-12a8=t0p0 t1p3|m-5aa7=t1p0 t1p4|m-4408=t0p1|m-af00=t1p1 t1p5"},
    {"t0:7,t1:2,t2:7,t3:9", "m-fd10:t0+t2",
     "m-fd10=t0p0 t0p1 t0p2 t0p3 t0p4 t0p5 t0p6 t2p0 t2p1 t2p2 t2p3 t2p4 t2p5 t2p6",
     "m-fd10=t0p0 t0p1 t0p2 t0p3 t0p4 t0p5 t0p6 t2p0 t2p1 t2p2 t2p3 t2p4 t2p5 t2p6"},
    {"t0:9,t1:9", "m-d70f:t0+t1",
     "m-d70f=t0p0 t0p1 t0p2 t0p3 t0p4 t0p5 t0p6 t0p7 t0p8 t1p0 t1p1 t1p2 t1p3 t1p4 t1p5 t1p6 t1p7 "
     "t1p8",
     "m-d70f=t0p0 t0p1 t0p2 t0p3 t0p4 t0p5 t0p6 t0p7 t0p8 t1p0 t1p1 t1p2 t1p3 t1p4 t1p5 t1p6 t1p7 "
     "t1p8"},
    {"t0:7,t1:6,t2:7,t3:2", "m-9647:t1+t2+t3;m-5549:t0+t2;m-6ddf:t0+t1+t2+t3",
     "m-9647=t1p3 t1p4 t1p5 t2p5 t2p6 t3p1|m-5549=t0p0 t0p1 t0p2 t0p3 t2p0 t2p1 t2p2|m-6ddf=t0p4 "
     "t0p5 t0p6 t1p0 t1p1 t1p2 t2p3 t2p4 t3p0",
     "m-9647=t1p1 t1p3 t1p5 t2p2 t2p5 t3p1|m-5549=t0p0 t0p2 t0p4 t0p6 t2p0 t2p3 t2p6|m-6ddf=t0p1 "
     "t0p3 t0p5 t1p0 t1p2 t1p4 t2p1 t2p4 t3p0"},
    {"t0:6,t1:7,t2:9,t3:7", "m-341b:t3;m-151c:t0+t1+t3;m-e6fc:t0+t3",
     "m-341b=t3p3 t3p4|m-151c=t0p0 t0p1 t0p2 t1p0 t1p1 t1p2 t1p3 t1p4 t1p5 t1p6 t3p0 t3p1 "
     "t3p2|m-e6fc=t0p3 t0p4 t0p5 t3p5 t3p6",
     "m-341b=t3p0 t3p3 t3p6|m-151c=t0p0 t0p2 t0p4 t1p0 t1p1 t1p2 t1p3 t1p4 t1p5 t1p6 t3p2 "
     "t3p5|m-e6fc=t0p1 t0p3 t0p5 t3p1 t3p4"},
    {"t0:5,t1:1", "m-13a7:t0+t1", "m-13a7=t0p0 t0p1 t0p2 t0p3 t0p4 t1p0",
     "m-13a7=t0p0 t0p1 t0p2 t0p3 t0p4 t1p0"},
    {"t0:5,t1:3", "m-645b:t0;m-fc4b:t0+t1;m-8957:t0;m-b487:t0+t1;m-b057:t0+t1",
     "m-645b=t0p0|m-fc4b=t0p4 t1p2|m-8957=t0p1|m-b487=t0p3 t1p1|m-b057=t0p2 t1p0",
     "m-645b=t0p0|m-fc4b=t0p4 t1p2|m-8957=t0p1|m-b487=t0p3 t1p1|m-b057=t0p2 t1p0"},
    {"t0:6", "m-f1a4:t0;m-a5c1:t0;m-609a:t0;m-99e1:t0",
     "m-f1a4=t0p5|m-a5c1=t0p4|m-609a=t0p0 t0p1|m-99e1=t0p2 t0p3",
     "m-f1a4=t0p3|m-a5c1=t0p2|m-609a=t0p0 t0p4|m-99e1=t0p1 t0p5"},
    {"t0:9,t1:9", "m-2674:t1;m-5e7d:t0+t1;m-4152:t0+t1;m-8f80:t1",
     "m-2674=t1p0 t1p1 t1p2|m-5e7d=t0p5 t0p6 t0p7 t0p8 t1p5 t1p6|m-4152=t0p0 t0p1 t0p2 t0p3 t0p4 "
     "t1p3 t1p4|m-8f80=t1p7 t1p8",
     "m-2674=t1p2 t1p6|m-5e7d=t0p1 t0p3 t0p5 t0p7 t1p0 t1p4 t1p8|m-4152=t0p0 t0p2 t0p4 t0p6 t0p8 "
     "t1p3 t1p7|m-8f80=t1p1 t1p5"},
    {"t0:4,t1:5", "m-528e:t1;m-e0fb:t0+t1;m-7a5d:t0+t1",
     "m-528e=t1p0 t1p1|m-e0fb=t0p2 t0p3 t1p4|m-7a5d=t0p0 t0p1 t1p2 t1p3",
     "m-528e=t1p0 t1p3|m-e0fb=t0p1 t0p3 t1p2|m-7a5d=t0p0 t0p2 t1p1 t1p4"},
    {"t0:6", "m-edef:t0;m-cb58:t0;m-29bf:t0", "m-edef=t0p4 t0p5|m-cb58=t0p2 t0p3|m-29bf=t0p0 t0p1",
     "m-edef=t0p2 t0p5|m-cb58=t0p1 t0p4|m-29bf=t0p0 t0p3"},
    {"t0:8", "m-3b0c:t0;m-980d:t0", "m-3b0c=t0p0 t0p1 t0p2 t0p3|m-980d=t0p4 t0p5 t0p6 t0p7",
     "m-3b0c=t0p0 t0p2 t0p4 t0p6|m-980d=t0p1 t0p3 t0p5 t0p7"},
    {"t0:3,t1:3,t2:2,t3:2", "m-e9c7:t0+t2;m-fe0e:t2", "m-e9c7=t0p0 t0p1 t0p2 t2p0|m-fe0e=t2p1",
     "m-e9c7=t0p0 t0p1 t0p2 t2p1|m-fe0e=t2p0"},
    {"t0:3,t1:7,t2:8,t3:9", "m-e076:t0+t2+t3;m-6079:t2+t3;m-e59f:t0;m-435c:t2",
     "m-e076=t0p0 t0p1 t2p6 t2p7 t3p5 t3p6 t3p7 t3p8|m-6079=t2p3 t2p4 t2p5 t3p0 t3p1 t3p2 t3p3 "
     "t3p4|m-e59f=t0p2|m-435c=t2p0 t2p1 t2p2",
     "m-e076=t0p0 t0p2 t2p2 t2p5 t3p0 t3p2 t3p4 t3p6 t3p8|m-6079=t2p1 t2p4 t2p7 t3p1 t3p3 t3p5 "
     "t3p7|m-e59f=t0p1|m-435c=t2p0 t2p3 t2p6"},
    {"t0:8", "m-5828:t0;m-d879:t0;m-6417:t0",
     "m-5828=t0p0 t0p1 t0p2|m-d879=t0p6 t0p7|m-6417=t0p3 t0p4 t0p5",
     "m-5828=t0p0 t0p3 t0p6|m-d879=t0p2 t0p5|m-6417=t0p1 t0p4 t0p7"},
    {"t0:7,t1:2,t2:6", "m-3504:t1+t2", "m-3504=t1p0 t1p1 t2p0 t2p1 t2p2 t2p3 t2p4 t2p5",
     "m-3504=t1p0 t1p1 t2p0 t2p1 t2p2 t2p3 t2p4 t2p5"},
    {"t0:6,t1:2,t2:7,t3:1", "m-1b39:t1+t3;m-f5a9:t0+t2",
     "m-1b39=t1p0 t1p1 t3p0|m-f5a9=t0p0 t0p1 t0p2 t0p3 t0p4 t0p5 t2p0 t2p1 t2p2 t2p3 t2p4 t2p5 "
     "t2p6",
     "m-1b39=t1p0 t1p1 t3p0|m-f5a9=t0p0 t0p1 t0p2 t0p3 t0p4 t0p5 t2p0 t2p1 t2p2 t2p3 t2p4 t2p5 "
     "t2p6"},
    {"t0:2", "m-f3de:t0", "m-f3de=t0p0 t0p1", "m-f3de=t0p0 t0p1"},
    {"t0:9,t1:6,t2:6", "m-5000:t1+t2;m-dfae:t2;m-e194:t0+t1+t2;m-3acf:t0+t1+t2",
     "m-5000=t1p2 t1p3 t2p2 t2p3|m-dfae=t2p4|m-e194=t0p5 t0p6 t0p7 t0p8 t1p4 t1p5 t2p5|m-3acf=t0p0 "
     "t0p1 t0p2 t0p3 t0p4 t1p0 t1p1 t2p0 t2p1",
     "m-5000=t1p0 t1p3 t2p0 t2p4|m-dfae=t2p1 t2p5|m-e194=t0p1 t0p3 t0p5 t0p7 t1p1 t1p4 "
     "t2p2|m-3acf=t0p0 t0p2 t0p4 t0p6 t0p8 t1p2 t1p5 t2p3"},
    {"t0:3", "m-a9de:t0;m-f1a0:t0;m-e5a0:t0", "m-a9de=t0p0|m-f1a0=t0p2|m-e5a0=t0p1",
     "m-a9de=t0p0|m-f1a0=t0p2|m-e5a0=t0p1"},
    {"t0:9", "m-fbc5:t0", "m-fbc5=t0p0 t0p1 t0p2 t0p3 t0p4 t0p5 t0p6 t0p7 t0p8",
     "m-fbc5=t0p0 t0p1 t0p2 t0p3 t0p4 t0p5 t0p6 t0p7 t0p8"},
    {"t0:4,t1:1", "m-fe0d:t1;m-fcc5:t0+t1;m-6dba:t0",
     "m-fe0d=|m-fcc5=t0p2 t0p3 t1p0|m-6dba=t0p0 t0p1",
     "m-fe0d=t1p0|m-fcc5=t0p1 t0p3|m-6dba=t0p0 t0p2"},
    {"t0:8,t1:2,t2:5", "m-22b9:t0+t2;m-4402:t0+t1;m-de25:t0+t1+t2",
     "m-22b9=t0p0 t0p1 t0p2 t2p0 t2p1 t2p2|m-4402=t0p3 t0p4 t0p5 t1p0|m-de25=t0p6 t0p7 t1p1 t2p3 "
     "t2p4",
     "m-22b9=t0p0 t0p3 t0p6 t2p1 t2p3|m-4402=t0p1 t0p4 t0p7 t1p1|m-de25=t0p2 t0p5 t1p0 t2p0 t2p2 "
     "t2p4"},
};

/* Splits s at sep into at most max pieces (s is modified). */
static size_t split(char *s, char sep, char **out, size_t max)
{
    size_t n = 0;
    while (s && n < max) {
        char *e = strchr(s, sep);
        out[n++] = s;
        if (e)
            *e++ = 0;
        s = e;
    }
    return n;
}

/* The assignors agree with kafka-python's (which follow Java's for dynamic
 * members) on 24 random groups: 1-5 members with random subscriptions over
 * 1-4 topics of 1-9 partitions. */
START_TEST(test_cl_group_assignors_match_kafka_python)
{
    for (size_t k = 0; k < sizeof KP_CASES / sizeof KP_CASES[0]; k++) {
        char tbuf[256], mbuf[512], *tparts[8], *mparts[8], *subs[8][8];
        cl_asg_topic_t topics[8];
        cl_asg_member_t members[8];
        size_t nt, nm;

        snprintf(tbuf, sizeof tbuf, "%s", KP_CASES[k].topics);
        snprintf(mbuf, sizeof mbuf, "%s", KP_CASES[k].members);
        nt = split(tbuf, ',', tparts, 8);
        for (size_t i = 0; i < nt; i++) {
            char *c = strchr(tparts[i], ':');
            *c = 0;
            topics[i].name = tparts[i];
            topics[i].nparts = atoi(c + 1);
        }
        nm = split(mbuf, ';', mparts, 8);
        for (size_t i = 0; i < nm; i++) {
            char *c = strchr(mparts[i], ':');
            *c = 0;
            members[i].member_id = mparts[i];
            members[i].instance_id = NULL;
            members[i].ntopics = split(c + 1, '+', subs[i], 8);
            members[i].topics = (const char *const *)subs[i];
        }
        for (int st = 0; st < 2; st++) {
            const char *name = st ? "roundrobin" : "range";
            char wbuf[1024], *want[8], got[512];
            cl_asg_out_t out[8];

            snprintf(wbuf, sizeof wbuf, "%s", st ? KP_CASES[k].roundrobin : KP_CASES[k].range);
            ck_assert_uint_eq(split(wbuf, '|', want, 8), nm);
            memset(out, 0, sizeof out);
            ck_assert_int_eq(cl_assign(name, members, nm, topics, nt, out), 0);
            for (size_t i = 0; i < nm; i++) {
                char *eq = strchr(want[i], '=');
                *eq = 0;
                ck_assert_str_eq(want[i], members[i].member_id);
                fmt(&out[i], topics, got, sizeof got);
                ck_assert_msg(!strcmp(got, eq + 1),
                              "case %zu %s member %s: got \"%s\", want \"%s\"", k, name,
                              members[i].member_id, got, eq + 1);
            }
            cl_asg_out_free(out, nm);
        }
    }
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
    tcase_add_test(tc, test_cl_group_assignors_match_kafka_python);
    tcase_add_test(tc, test_cl_group_decode_garbage);
    tcase_add_test(tc, test_cl_group_api_contract);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return t_run_suite(make_suite());
}
