/*
 * Unit tests for the consumer's API contract (client/cl_consumer.c) without
 * a broker: argument checks, the assignment as seek/position see it, poll
 * timing out empty, subscribe/commit refused without group.id, and
 * teardown with requests still pending (bootstrap points at a closed port).
 * Fetching and decoding against stratad are test_libstrata_consume.
 */
#include "strata/client.h"
#include "t_util.h"

#include <string.h>

static strata_consumer_t *make(const char *reset)
{
    strata_conf_t *c = strata_conf_new();
    strata_consumer_t *k = NULL;
    char err[128];

    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(strata_conf_set(c, "bootstrap.servers", "127.0.0.1:1", NULL, 0), 0);
    if (reset)
        ck_assert_int_eq(strata_conf_set(c, "auto.offset.reset", reset, NULL, 0), 0);
    ck_assert_int_eq(strata_consumer_new(c, &k, err, sizeof err), 0);
    strata_conf_free(c);
    return k;
}

START_TEST(test_cl_consumer_new_needs_bootstrap)
{
    strata_conf_t *c = strata_conf_new();
    strata_consumer_t *k = NULL;
    char err[128];

    ck_assert_int_eq(strata_consumer_new(c, &k, err, sizeof err), STRATA_ERR_BAD_CONFIG);
    ck_assert_ptr_null(k);
    ck_assert_ptr_nonnull(strstr(err, "bootstrap.servers"));
    ck_assert_int_eq(strata_consumer_new(c, NULL, err, sizeof err), STRATA_ERR_INVALID_ARG);
    strata_conf_free(c);
    strata_consumer_free(NULL);
    strata_message_free(NULL);
}
END_TEST

START_TEST(test_cl_consumer_assign_seek_position)
{
    strata_consumer_t *k = make("earliest");
    strata_topic_partition_t tps[3] = {
        {.topic = "a", .partition = 0, .offset = 42},
        {.topic = "a", .partition = 1, .offset = STRATA_OFFSET_BEGINNING},
        {.topic = "b", .partition = 0, .offset = STRATA_OFFSET_STORED},
    };
    strata_message_t *m = (strata_message_t *)&tps; /* must be overwritten */
    int64_t pos = 0;

    ck_assert_int_eq(strata_consumer_assign(k, tps, 3), 0);
    ck_assert_int_eq(strata_consumer_position(k, "a", 0, &pos), 0);
    ck_assert_int_eq(pos, 42);
    ck_assert_int_eq(strata_consumer_position(k, "a", 1, &pos), 0);
    ck_assert_int_eq(pos, STRATA_OFFSET_INVALID); /* resolved by ListOffsets */
    ck_assert_int_eq(strata_consumer_position(k, "a", 2, &pos), STRATA_ERR_NOT_FOUND);
    ck_assert_int_eq(strata_consumer_seek(k, "b", 0, 7), 0);
    ck_assert_int_eq(strata_consumer_position(k, "b", 0, &pos), 0);
    ck_assert_int_eq(pos, 7);
    ck_assert_int_eq(strata_consumer_seek(k, "c", 0, 7), STRATA_ERR_NOT_FOUND);
    ck_assert_int_eq(strata_consumer_seek(k, "b", 0, -7), STRATA_ERR_INVALID_ARG);
    ck_assert_int_eq(strata_consumer_poll(k, 0, &m), 0);
    ck_assert_ptr_null(m);
    m = (strata_message_t *)&tps;
    ck_assert_int_eq(strata_consumer_poll(k, 50, &m), 0);
    ck_assert_ptr_null(m);

    /* duplicates, bad partitions and bad offsets are refused; nothing changes */
    tps[1] = tps[0];
    ck_assert_int_eq(strata_consumer_assign(k, tps, 2), STRATA_ERR_INVALID_ARG);
    tps[1] = (strata_topic_partition_t){.topic = "a", .partition = -1, .offset = 0};
    ck_assert_int_eq(strata_consumer_assign(k, tps, 2), STRATA_ERR_INVALID_ARG);
    tps[1] = (strata_topic_partition_t){.topic = "a", .partition = 1, .offset = -5};
    ck_assert_int_eq(strata_consumer_assign(k, tps, 2), STRATA_ERR_INVALID_ARG);
    ck_assert_int_eq(strata_consumer_position(k, "b", 0, &pos), 0);

    /* an empty assignment unassigns */
    ck_assert_int_eq(strata_consumer_assign(k, NULL, 0), 0);
    ck_assert_int_eq(strata_consumer_position(k, "a", 0, &pos), STRATA_ERR_NOT_FOUND);
    strata_consumer_free(k);
}
END_TEST

/* Without group.id there is no group: subscribe and commit are refused
 * (test_cl_group covers the group API itself). */
START_TEST(test_cl_consumer_groups_need_group_id)
{
    strata_consumer_t *k = make(NULL);
    const char *topics[] = {"a"};

    ck_assert_int_eq(strata_consumer_subscribe(k, topics, 1, NULL, NULL),
                     STRATA_ERR_INVALID_ARG);
    ck_assert_int_eq(strata_consumer_commit(k, NULL, 0, 100), STRATA_ERR_INVALID_ARG);
    ck_assert_int_eq(strata_consumer_commit_async(k, NULL, 0, NULL, NULL),
                     STRATA_ERR_INVALID_ARG);
    ck_assert_int_eq(strata_consumer_unsubscribe(k), 0);
    ck_assert_int_eq(strata_consumer_close(k, 100), 0);
    strata_consumer_free(k);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("cl_consumer");
    TCase *tc = tcase_create("consumer");
    tcase_add_test(tc, test_cl_consumer_new_needs_bootstrap);
    tcase_add_test(tc, test_cl_consumer_assign_seek_position);
    tcase_add_test(tc, test_cl_consumer_groups_need_group_id);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return t_run_suite(suite()); }
