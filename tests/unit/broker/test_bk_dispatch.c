/* Unit tests for the socket-less dispatcher entry (bk_dispatch_frame_for_test,
 * the fuzz target's entry point) on an offline server: real handlers,
 * responses byte-checked, malformed frames rejected without side effects, and
 * a seeded random-mutation run that must neither crash nor leak (ASan). */
#include "bk_config.h"
#include "bk_server.h"
#include "sc_buf.h"
#include "sc_endian.h"
#include "sc_err.h"
#include "sc_kafka.h"
#include "sc_log.h"
#include "t_util.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[PATH_MAX];
static bk_config_t cfg;
static bk_server_t *srv;

static void setup(void)
{
    char err[512], kv[PATH_MAX + 16];
    t_tmpdir("bkdisp", dir);
    ck_assert_int_eq(bk_config_init(&cfg), 0);
    snprintf(kv, sizeof kv, "log.dirs=%s", dir);
    ck_assert_int_eq(bk_config_override(&cfg, kv, err, sizeof err), 0);
    ck_assert_int_eq(bk_config_override(&cfg, "log.level=error", err, sizeof err), 0);
    sc_log_configure("error");
    ck_assert_int_eq(bk_server_new_offline(&cfg, &srv), 0);
}

static void teardown(void)
{
    bk_server_free(srv);
    bk_config_fini(&cfg);
    t_rm_rf(dir);
}

/* Builds header v1 + body into b. */
static void frame(sc_buf_t *b, int16_t key, int16_t ver, int32_t corr, const void *body, size_t n)
{
    sc_kw_t w;
    sc_buf_reset(b);
    sc_kw_init(&w, b);
    sc_kreq_hdr_t h = {.api_key = key, .api_version = ver, .correlation_id = corr,
                       .client_id = {"t", 1}};
    sc_kafka_req_hdr_encode(&w, &h);
    sc_kw_raw(&w, body, n);
    ck_assert_int_eq(w.err, 0);
}

/* CreateTopics v0 body for one topic: name, partitions, rf 1, no
 * assignments, no configs, timeout. */
static void create_body(sc_buf_t *b, const char *name, int32_t parts)
{
    sc_kw_t w;
    sc_kw_init(&w, b);
    sc_kw_array_len(&w, 1);
    sc_kw_cstr(&w, 0, name);
    sc_kw_i32(&w, parts);
    sc_kw_i16(&w, 1);
    sc_kw_array_len(&w, 0);
    sc_kw_array_len(&w, 0);
    sc_kw_i32(&w, 1000);
}

START_TEST(test_bk_dispatch_create_topics_then_metadata)
{
    sc_buf_t body, req, out;
    sc_buf_init(&body);
    sc_buf_init(&req);
    sc_buf_init(&out);
    create_body(&body, "fz", 3);
    frame(&req, SC_KAFKA_API_CREATE_TOPICS, 0, 7, body.data, body.len);
    ck_assert_int_eq(bk_dispatch_frame_for_test(srv, req.data, req.len, &out), 0);
    /* size, corr 7, [1] "fz" error 0 */
    static const uint8_t want[] = {0, 0, 0, 14, 0, 0, 0, 7, 0, 0, 0, 1, 0, 2, 'f', 'z', 0, 0};
    ck_assert_int_eq(out.len, sizeof want);
    ck_assert_int_eq(memcmp(out.data, want, sizeof want), 0);

    /* Metadata v1 for "fz": 3 partitions, led by node 0 */
    sc_buf_reset(&body);
    sc_kw_t w;
    sc_kw_init(&w, &body);
    sc_kw_array_len(&w, 1);
    sc_kw_cstr(&w, 0, "fz");
    frame(&req, SC_KAFKA_API_METADATA, 1, 8, body.data, body.len);
    sc_buf_reset(&out);
    ck_assert_int_eq(bk_dispatch_frame_for_test(srv, req.data, req.len, &out), 0);
    ck_assert_int_eq((int32_t)sc_load_be32(out.data), (int32_t)out.len - 4);
    ck_assert_int_eq((int32_t)sc_load_be32(out.data + 4), 8);
    /* the topic's partition array count sits right after name + is_internal */
    const uint8_t *p = memmem(out.data, out.len, "\0\x02" "fz", 4);
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq((int32_t)sc_load_be32(p + 4 + 1), 3);
    sc_buf_fini(&body);
    sc_buf_fini(&req);
    sc_buf_fini(&out);
}
END_TEST

START_TEST(test_bk_dispatch_malformed_changes_nothing)
{
    sc_buf_t body, req, out;
    sc_buf_init(&body);
    sc_buf_init(&req);
    sc_buf_init(&out);
    create_body(&body, "half", 1);
    /* every proper prefix of the body is malformed */
    for (size_t n = 0; n < body.len; n++) {
        frame(&req, SC_KAFKA_API_CREATE_TOPICS, 0, 1, body.data, n);
        sc_buf_reset(&out);
        ck_assert_int_ne(bk_dispatch_frame_for_test(srv, req.data, req.len, &out), 0);
    }
    /* unsupported version and unknown key */
    frame(&req, SC_KAFKA_API_CREATE_TOPICS, 5, 1, body.data, body.len);
    ck_assert_int_eq(bk_dispatch_frame_for_test(srv, req.data, req.len, &out),
                     SC_ERR_UNSUPPORTED_VERSION);
    frame(&req, 4, 0, 1, body.data, body.len);
    ck_assert_int_eq(bk_dispatch_frame_for_test(srv, req.data, req.len, &out),
                     SC_ERR_UNSUPPORTED_VERSION);
    ck_assert_int_ne(bk_dispatch_frame_for_test(srv, req.data, 3, &out), 0);

    /* a Metadata v1 for "half" (auto-create off) reports 3: nothing was created */
    cfg.auto_create_topics_enable = 0;
    sc_buf_reset(&body);
    sc_kw_t w;
    sc_kw_init(&w, &body);
    sc_kw_array_len(&w, 1);
    sc_kw_cstr(&w, 0, "half");
    frame(&req, SC_KAFKA_API_METADATA, 1, 2, body.data, body.len);
    sc_buf_reset(&out);
    ck_assert_int_eq(bk_dispatch_frame_for_test(srv, req.data, req.len, &out), 0);
    const uint8_t *p = memmem(out.data, out.len, "\0\x04" "half", 6);
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq((int16_t)sc_load_be16(p - 2), SC_ERR_UNKNOWN_TOPIC_OR_PARTITION);
    sc_buf_fini(&body);
    sc_buf_fini(&req);
    sc_buf_fini(&out);
}
END_TEST

/* Seeded mutations of valid admin requests: never a crash, leak or UB. */
START_TEST(test_bk_dispatch_survives_random_mutations)
{
    sc_buf_t body, req, out;
    sc_buf_init(&body);
    sc_buf_init(&req);
    sc_buf_init(&out);
    create_body(&body, "mut", 2);
    static const int16_t keys[][2] = {{19, 4}, {20, 3}, {22, 1}, {32, 2}, {33, 1}, {37, 1},
                                      {3, 6},  {18, 3}};
    srand(12345);
    for (int i = 0; i < 4000; i++) {
        const int16_t *k = keys[i % 8];
        frame(&req, k[0], k[1], i, body.data, body.len);
        int flips = 1 + rand() % 4;
        for (int f = 0; f < flips; f++)
            req.data[rand() % req.len] = (uint8_t)rand();
        size_t n = req.len - (size_t)(rand() % 3 == 0 ? rand() % (int)req.len : 0);
        sc_buf_reset(&out);
        (void)bk_dispatch_frame_for_test(srv, req.data, n, &out);
    }
    sc_buf_fini(&body);
    sc_buf_fini(&req);
    sc_buf_fini(&out);
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("bk_dispatch");
    TCase *tc = tcase_create("offline");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_bk_dispatch_create_topics_then_metadata);
    tcase_add_test(tc, test_bk_dispatch_malformed_changes_nothing);
    tcase_add_test(tc, test_bk_dispatch_survives_random_mutations);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return t_run_suite(make_suite()); }
