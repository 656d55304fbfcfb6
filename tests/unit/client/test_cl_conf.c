/*
 * Unit tests for the configuration object (client/cl_conf.c): defaults,
 * librdkafka names and aliases, unknown keys and bad values named in the
 * error, get, dup, and producer_new's checks of the combination.
 */
#include "cl_conf.h"
#include "sc_mem.h"
#include "strata/client.h"
#include "t_util.h"

#include <string.h>

static const char *get(const strata_conf_t *c, const char *key)
{
    static char buf[256];
    size_t n = sizeof buf;
    ck_assert_int_eq(strata_conf_get(c, key, buf, &n), 0);
    return buf;
}

START_TEST(test_cl_conf_defaults_are_librdkafka_names)
{
    strata_conf_t *c = strata_conf_new();
    ck_assert_ptr_nonnull(c);
    ck_assert_str_eq(get(c, "linger.ms"), "5");
    ck_assert_str_eq(get(c, "batch.size"), "1000000");
    ck_assert_str_eq(get(c, "compression.type"), "none");
    ck_assert_str_eq(get(c, "acks"), "-1");
    ck_assert_str_eq(get(c, "enable.idempotence"), "true");
    ck_assert_str_eq(get(c, "queue.buffering.max.kbytes"), "1048576");
    ck_assert_str_eq(get(c, "partitioner"), "murmur2_random");
    ck_assert_str_eq(get(c, "sticky.partitioning.linger.ms"), "10");
    ck_assert_str_eq(get(c, "max.in.flight.requests.per.connection"), "5");
    ck_assert_str_eq(get(c, "max.in.flight"), "5");
    ck_assert_str_eq(get(c, "message.timeout.ms"), "300000");
    ck_assert_str_eq(get(c, "auto.offset.reset"), "latest");
    ck_assert_str_eq(get(c, "bootstrap.servers"), "");
    for (int i = 0; i < cl_conf_key_count(); i++) {
        char buf[256];
        size_t n = sizeof buf;
        ck_assert_int_eq(strata_conf_get(c, cl_conf_key_name(i), buf, &n), 0);
    }
    strata_conf_free(c);
    strata_conf_free(NULL);
}
END_TEST

START_TEST(test_cl_conf_unknown_key_is_an_error_naming_it)
{
    strata_conf_t *c = strata_conf_new();
    char err[128] = "";
    ck_assert_int_eq(strata_conf_set(c, "linger.msec", "5", err, sizeof err),
                     STRATA_ERR_BAD_CONFIG);
    ck_assert_ptr_nonnull(strstr(err, "linger.msec"));
    ck_assert_int_eq(strata_conf_set(c, "linger.msec", "5", NULL, 0), STRATA_ERR_BAD_CONFIG);
    size_t n = 8;
    char buf[8];
    ck_assert_int_eq(strata_conf_get(c, "nope", buf, &n), STRATA_ERR_NOT_FOUND);
    strata_conf_free(c);
}
END_TEST

START_TEST(test_cl_conf_bad_values_rejected_and_conf_unchanged)
{
    strata_conf_t *c = strata_conf_new();
    char err[128] = "";
    ck_assert_int_eq(strata_conf_set(c, "linger.ms", "abc", err, sizeof err), STRATA_ERR_BAD_CONFIG);
    ck_assert_ptr_nonnull(strstr(err, "linger.ms"));
    ck_assert_int_eq(strata_conf_set(c, "linger.ms", "5x", err, sizeof err), STRATA_ERR_BAD_CONFIG);
    ck_assert_int_eq(strata_conf_set(c, "linger.ms", "-1", err, sizeof err), STRATA_ERR_BAD_CONFIG);
    ck_assert_ptr_nonnull(strstr(err, "out of range"));
    ck_assert_int_eq(strata_conf_set(c, "compression.type", "brotli", err, sizeof err),
                     STRATA_ERR_BAD_CONFIG);
    ck_assert_int_eq(strata_conf_set(c, "enable.idempotence", "yes", err, sizeof err),
                     STRATA_ERR_BAD_CONFIG);
    ck_assert_str_eq(get(c, "linger.ms"), "5");
    /* truncated errstr is still NUL-terminated */
    char tiny[6];
    ck_assert_int_eq(strata_conf_set(c, "zzzzzzzzzz", "1", tiny, sizeof tiny), STRATA_ERR_BAD_CONFIG);
    ck_assert_int_eq(strlen(tiny), 5);
    strata_conf_free(c);
}
END_TEST

START_TEST(test_cl_conf_aliases_and_words)
{
    strata_conf_t *c = strata_conf_new();
    ck_assert_int_eq(strata_conf_set(c, "queue.buffering.max.ms", "20", NULL, 0), 0);
    ck_assert_str_eq(get(c, "linger.ms"), "20");
    ck_assert_int_eq(strata_conf_set(c, "compression.codec", "gzip", NULL, 0), 0);
    ck_assert_str_eq(get(c, "compression.type"), "gzip");
    ck_assert_int_eq(strata_conf_set(c, "acks", "all", NULL, 0), 0);
    ck_assert_str_eq(get(c, "acks"), "-1");
    ck_assert_int_eq(strata_conf_set(c, "auto.offset.reset", "smallest", NULL, 0), 0);
    ck_assert_str_eq(get(c, "auto.offset.reset"), "earliest");
    ck_assert_int_eq(strata_conf_set(c, "metadata.broker.list", "h:1,h:2", NULL, 0), 0);
    ck_assert_str_eq(get(c, "bootstrap.servers"), "h:1,h:2");
    strata_conf_free(c);
}
END_TEST

START_TEST(test_cl_conf_dup_is_deep_and_get_reports_size)
{
    strata_conf_t *c = strata_conf_new(), *d;
    char small[4];
    size_t n = sizeof small;
    ck_assert_int_eq(strata_conf_set(c, "client.id", "first", NULL, 0), 0);
    d = strata_conf_dup(c);
    ck_assert_ptr_nonnull(d);
    ck_assert_int_eq(strata_conf_set(c, "client.id", "second", NULL, 0), 0);
    ck_assert_str_eq(get(d, "client.id"), "first");
    ck_assert_int_eq(strata_conf_get(d, "client.id", small, &n), STRATA_ERR_INVALID_ARG);
    ck_assert_uint_eq(n, 6);
    strata_conf_free(c);
    strata_conf_free(d);
}
END_TEST

START_TEST(test_cl_conf_new_fails_cleanly_without_memory)
{
    for (long nth = 1; nth < 20; nth++) {
        sc_mem_fail_after(nth, 1);
        strata_conf_t *c = strata_conf_new();
        sc_mem_fail_after(0, 0);
        strata_conf_free(c); /* NULL or complete: never half-built (ASan checks leaks) */
    }
}
END_TEST

START_TEST(test_cl_producer_new_checks_the_combination)
{
    strata_conf_t *c = strata_conf_new();
    strata_producer_t *p = NULL;
    char err[256] = "";

    ck_assert_int_eq(strata_producer_new(c, NULL, NULL, &p, err, sizeof err), STRATA_ERR_BAD_CONFIG);
    ck_assert_ptr_nonnull(strstr(err, "bootstrap.servers"));
    ck_assert_int_eq(strata_conf_set(c, "bootstrap.servers", "127.0.0.1:1", NULL, 0), 0);
    /* every codec is accepted */
    static const char *const codecs[] = {"none", "gzip", "snappy", "lz4", "zstd"};
    for (int i = 0; i < 5; i++) {
        ck_assert_int_eq(strata_conf_set(c, "compression.codec", codecs[i], NULL, 0), 0);
        ck_assert_int_eq(strata_producer_new(c, NULL, NULL, &p, err, sizeof err), 0);
        strata_producer_free(p);
        p = NULL;
    }
    /* idempotence allows at most 5 in flight (librdkafka, Java) */
    ck_assert_int_eq(strata_conf_set(c, "max.in.flight.requests.per.connection", "6", NULL, 0), 0);
    ck_assert_int_eq(strata_producer_new(c, NULL, NULL, &p, err, sizeof err), STRATA_ERR_BAD_CONFIG);
    ck_assert_ptr_nonnull(strstr(err, "max.in.flight.requests.per.connection"));
    ck_assert_int_eq(strata_conf_set(c, "enable.idempotence", "false", NULL, 0), 0);
    ck_assert_int_eq(strata_producer_new(c, NULL, NULL, &p, err, sizeof err), 0);
    strata_producer_free(p);
    p = NULL;
    ck_assert_int_eq(strata_conf_set(c, "max.in.flight", "5", NULL, 0), 0);
    ck_assert_int_eq(strata_conf_set(c, "compression.type", "gzip", NULL, 0), 0);
    ck_assert_int_eq(strata_conf_set(c, "acks", "1", NULL, 0), 0);
    ck_assert_int_eq(strata_conf_set(c, "enable.idempotence", "true", NULL, 0), 0);
    ck_assert_int_eq(strata_producer_new(c, NULL, NULL, &p, err, sizeof err), STRATA_ERR_BAD_CONFIG);
    ck_assert_ptr_nonnull(strstr(err, "enable.idempotence"));
    ck_assert_ptr_null(p);
    strata_conf_free(c);

    /* acks=1 without touching enable.idempotence: allowed (idempotence off) */
    c = strata_conf_new();
    ck_assert_int_eq(strata_conf_set(c, "bootstrap.servers", "127.0.0.1:1", NULL, 0), 0);
    ck_assert_int_eq(strata_conf_set(c, "acks", "1", NULL, 0), 0);
    ck_assert_int_eq(strata_producer_new(c, NULL, NULL, &p, err, sizeof err), 0);
    strata_conf_free(c);
    ck_assert_int_eq(strata_producer_flush(p, 0), 0);
    strata_producer_free(p);
    strata_producer_free(NULL);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("cl_conf");
    TCase *tc = tcase_create("conf");
    tcase_add_test(tc, test_cl_conf_defaults_are_librdkafka_names);
    tcase_add_test(tc, test_cl_conf_unknown_key_is_an_error_naming_it);
    tcase_add_test(tc, test_cl_conf_bad_values_rejected_and_conf_unchanged);
    tcase_add_test(tc, test_cl_conf_aliases_and_words);
    tcase_add_test(tc, test_cl_conf_dup_is_deep_and_get_reports_size);
    tcase_add_test(tc, test_cl_conf_new_fails_cleanly_without_memory);
    tcase_add_test(tc, test_cl_producer_new_checks_the_combination);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return t_run_suite(suite()); }
