/* Unit tests of the group coordinator's GroupMetadata records (bk_group.c:
 * bk__group_load, bk__group_write_value; Kafka's GroupMetadataValue schema,
 * versions 0-4) on a bare coordinator: decode of each version, the group a
 * record gives (Stable with members and assignments, or Empty), write-back
 * byte for byte, tombstones, truncated values refused without a leak. */
#include "bk_group_int.h"
#include "sc_buf.h"
#include "sc_err.h"
#include "sc_kafka.h"
#include "sc_log.h"
#include "sc_mem.h"
#include "t_util.h"

#include <string.h>

static bk_coord_t *co;

static void setup(void)
{
    sc_log_configure("error");
    co = sc_calloc(1, sizeof *co);
    ck_assert_ptr_nonnull(co);
}

static void teardown(void)
{
    while (co->groups)
        bk__group_delete(co, co->groups);
    sc_free(co);
}

/* ConsumerProtocolSubscription v0 of one topic. */
static void sub_v0(sc_buf_t *b, const char *topic)
{
    sc_kw_t w;
    sc_kw_init(&w, b);
    sc_kw_i16(&w, 0);
    sc_kw_array_len(&w, 1);
    sc_kw_cstr(&w, 0, topic);
    sc_kw_bytes(&w, NULL, 0);
}

typedef struct {
    const char *id, *instance, *client, *host;
    int32_t rebalance, session;
    const char *topic; /* subscription */
    const char *assign;
} mem_t;

/* A GroupMetadataValue of version ver (0-4) into b. */
static void value(sc_buf_t *b, int ver, const char *ptype, int32_t gen, const char *proto,
                  const char *leader, int64_t ts, const mem_t *m, int n)
{
    int flex = ver >= 4;
    sc_kw_t w;
    sc_kw_init(&w, b);
    sc_kw_i16(&w, (int16_t)ver);
    sc_kw_str(&w, flex, ptype, strlen(ptype));
    sc_kw_i32(&w, gen);
    sc_kw_cstr(&w, flex, proto);
    sc_kw_cstr(&w, flex, leader);
    if (ver >= 2)
        sc_kw_i64(&w, ts);
    sc_kw_arr(&w, flex, n);
    for (int i = 0; i < n; i++) {
        sc_buf_t sub;
        sc_buf_init(&sub);
        sub_v0(&sub, m[i].topic);
        sc_kw_cstr(&w, flex, m[i].id);
        if (ver >= 3)
            sc_kw_cstr(&w, flex, m[i].instance);
        sc_kw_cstr(&w, flex, m[i].client);
        sc_kw_cstr(&w, flex, m[i].host);
        if (ver >= 1)
            sc_kw_i32(&w, m[i].rebalance);
        sc_kw_i32(&w, m[i].session);
        if (flex) {
            sc_kw_compact_bytes(&w, sub.data, sub.len);
            sc_kw_compact_bytes(&w, m[i].assign, strlen(m[i].assign));
            sc_kw_tags_empty(&w);
        } else {
            sc_kw_bytes(&w, sub.data, sub.len);
            sc_kw_bytes(&w, m[i].assign, strlen(m[i].assign));
        }
        sc_buf_fini(&sub);
    }
    if (flex)
        sc_kw_tags_empty(&w);
    ck_assert_int_eq(w.err, 0);
}

static const mem_t two[] = {
    {"c1-aaaa", NULL, "c1", "/10.0.0.1", 45000, 10000, "t1", "A1"},
    {"c2-bbbb", "inst-2", "c2", "/10.0.0.2", 45000, 12000, "t2", "A2"},
};

static bk_group_t *load(const char *id, const sc_buf_t *b)
{
    int rc = bk__group_load(co, id, strlen(id), b ? b->data : NULL, b ? (int64_t)b->len : -1);
    ck_assert_int_eq(rc, 0);
    bk_group_t *g = bk__group_find(co, id, strlen(id));
    ck_assert_ptr_nonnull(g);
    return g;
}

static void check_two(const bk_group_t *g, int ver)
{
    ck_assert_int_eq(g->state, BK_GROUP_STABLE);
    ck_assert_int_eq(g->generation, 7);
    ck_assert_str_eq(g->protocol_type, "consumer");
    ck_assert_str_eq(g->protocol, "range");
    ck_assert_int_eq(g->nmembers, 2);
    ck_assert_ptr_nonnull(g->leader);
    ck_assert_str_eq(g->leader->id, "c2-bbbb");
    const bk_member_t *a = g->members, *b = a->next;
    ck_assert_str_eq(a->id, "c1-aaaa");
    ck_assert_str_eq(b->id, "c2-bbbb");
    ck_assert_str_eq(a->client_id, "c1");
    ck_assert_str_eq(b->client_host, "/10.0.0.2");
    ck_assert_int_eq(a->session_ms, 10000);
    ck_assert_int_eq(b->session_ms, 12000);
    /* v0 has no rebalance timeout: the session timeout stands in */
    ck_assert_int_eq(a->rebalance_ms, ver >= 1 ? 45000 : 10000);
    if (ver >= 3)
        ck_assert_str_eq(b->instance_id, "inst-2");
    else
        ck_assert_ptr_null(b->instance_id);
    ck_assert_ptr_null(a->instance_id);
    ck_assert_int_eq(a->nprotos, 1);
    ck_assert_str_eq(a->protos[0].name, "range");
    ck_assert_int_eq(a->assign_len, 2);
    ck_assert_mem_eq(b->assign, "A2", 2);
    ck_assert_int_eq(a->join_slot == NULL && a->sync_slot == NULL, 1);
    ck_assert_int_gt(a->deadline, 0);
    /* the subscriptions parsed: the group's topics are known */
    ck_assert_int_eq(g->subs_known, 1);
    ck_assert_int_eq(bk__group_subscribed(g, "t1", 2), 1);
    ck_assert_int_eq(bk__group_subscribed(g, "t2", 2), 1);
    ck_assert_int_eq(bk__group_subscribed(g, "t3", 2), 0);
}

START_TEST(test_bk_group_load_each_version)
{
    for (int ver = 0; ver <= 4; ver++) {
        sc_buf_t b;
        sc_buf_init(&b);
        value(&b, ver, "consumer", 7, "range", "c2-bbbb", 1700000000000, two, 2);
        bk_group_t *g = load("grp", &b);
        check_two(g, ver);
        sc_buf_fini(&b);
    }
}
END_TEST

START_TEST(test_bk_group_v3_written_back_byte_for_byte)
{
    sc_buf_t b, out;
    sc_buf_init(&b);
    sc_buf_init(&out);
    value(&b, 3, "consumer", 7, "range", "c2-bbbb", 1700000000000, two, 2);
    bk_group_t *g = load("grp", &b);
    sc_kw_t w;
    sc_kw_init(&w, &out);
    bk__group_write_value(g, &w, 1700000000000);
    ck_assert_int_eq(w.err, 0);
    ck_assert_uint_eq(out.len, b.len);
    ck_assert_mem_eq(out.data, b.data, b.len);
    sc_buf_fini(&b);
    sc_buf_fini(&out);
}
END_TEST

START_TEST(test_bk_group_empty_record_and_tombstone)
{
    sc_buf_t b, out;
    sc_buf_init(&b);
    sc_buf_init(&out);
    /* Stable first, then an Empty record replaces the membership */
    value(&b, 3, "consumer", 7, "range", "c2-bbbb", 1700000000000, two, 2);
    load("grp", &b);
    sc_buf_reset(&b);
    value(&b, 3, "consumer", 8, NULL, NULL, 1700000005000, NULL, 0);
    bk_group_t *g = load("grp", &b);
    ck_assert_int_eq(g->state, BK_GROUP_EMPTY);
    ck_assert_int_eq(g->generation, 8);
    ck_assert_int_eq(g->nmembers, 0);
    ck_assert_ptr_null(g->members);
    ck_assert_ptr_null(g->protocol);
    ck_assert_str_eq(g->protocol_type, "consumer");
    ck_assert_int_eq(g->empty_since, 1700000005000); /* offsets expire from here */
    /* an Empty group is written with its Empty timestamp, null protocol and leader */
    sc_kw_t w;
    sc_kw_init(&w, &out);
    bk__group_write_value(g, &w, 1800000000000);
    ck_assert_uint_eq(out.len, b.len);
    ck_assert_mem_eq(out.data, b.data, b.len);
    /* a tombstone removes a group with no committed offsets */
    sc_buf_reset(&b);
    value(&b, 3, "consumer", 7, "range", "c2-bbbb", 1700000000000, two, 2);
    load("grp", &b);
    ck_assert_int_eq(bk__group_load(co, "grp", 3, NULL, -1), 0);
    ck_assert_ptr_null(bk__group_find(co, "grp", 3));
    ck_assert_ptr_null(co->groups);
    sc_buf_fini(&b);
    sc_buf_fini(&out);
}
END_TEST

START_TEST(test_bk_group_truncated_values_refused)
{
    sc_buf_t b;
    sc_buf_init(&b);
    value(&b, 3, "consumer", 7, "range", "c2-bbbb", 1700000000000, two, 2);
    for (size_t n = 0; n < b.len; n++) {
        int rc = bk__group_load(co, "grp", 3, b.data, (int64_t)n);
        ck_assert_int_eq(rc, SC_ERR_CORRUPT_MESSAGE);
        bk_group_t *g = bk__group_find(co, "grp", 3);
        ck_assert_ptr_nonnull(g);
        ck_assert_int_eq(g->nmembers, 0); /* nothing half-loaded */
        ck_assert_ptr_null(g->members);
    }
    /* unknown version */
    b.data[1] = 9;
    ck_assert_int_eq(bk__group_load(co, "grp", 3, b.data, (int64_t)b.len),
                     SC_ERR_CORRUPT_MESSAGE);
    sc_buf_fini(&b);
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("bk_group");
    TCase *tc = tcase_create("group_metadata");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_bk_group_load_each_version);
    tcase_add_test(tc, test_bk_group_v3_written_back_byte_for_byte);
    tcase_add_test(tc, test_bk_group_empty_record_and_tombstone);
    tcase_add_test(tc, test_bk_group_truncated_values_refused);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return t_run_suite(make_suite()); }
