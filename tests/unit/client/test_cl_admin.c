/*
 * Unit tests for libstrata's admin client (client/cl_admin.c): the response
 * decoders on hand-built responses of each version the client asks for (and
 * on every truncation of them), the ConsumerProtocol assignment decoder, the
 * ListOffsets / OffsetCommit encoders of every version, the result arena, and the public API's argument checks and fast failure
 * against a closed port.
 */
#include "cl_admin.h"
#include "sc_err.h"
#include "sc_kafka.h"
#include "strata/client.h"
#include "t_util.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- response builders ----------------------------------------------------------- */

static void metadata_resp(sc_buf_t *b, int16_t ver)
{
    sc_kw_t w;
    sc_buf_init(b);
    sc_kw_init(&w, b);
    if (ver >= 3)
        sc_kw_i32(&w, 0);
    sc_kw_array_len(&w, 2);
    for (int i = 0; i < 2; i++) {
        sc_kw_i32(&w, i + 1);
        sc_kw_cstr(&w, 0, i ? "host-b" : "host-a");
        sc_kw_i32(&w, 9092 + i);
        if (ver >= 1)
            sc_kw_string(&w, NULL, 0); /* rack */
    }
    if (ver >= 2)
        sc_kw_cstr(&w, 0, "cluster-xyz");
    if (ver >= 1)
        sc_kw_i32(&w, 2);
    sc_kw_array_len(&w, 2);
    /* topic "alpha": 2 partitions */
    sc_kw_i16(&w, 0);
    sc_kw_cstr(&w, 0, "alpha");
    if (ver >= 1)
        sc_kw_bool(&w, 0);
    sc_kw_array_len(&w, 2);
    for (int p = 0; p < 2; p++) {
        sc_kw_i16(&w, 0);
        sc_kw_i32(&w, p);
        sc_kw_i32(&w, p + 1);
        sc_kw_array_len(&w, 2); /* replicas */
        sc_kw_i32(&w, p + 1);
        sc_kw_i32(&w, 2 - p);
        sc_kw_array_len(&w, 1); /* isr */
        sc_kw_i32(&w, p + 1);
        if (ver >= 5)
            sc_kw_array_len(&w, 0); /* offline */
    }
    /* topic "gone": error, no partitions, internal */
    sc_kw_i16(&w, 3);
    sc_kw_cstr(&w, 0, "gone");
    if (ver >= 1)
        sc_kw_bool(&w, 1);
    sc_kw_array_len(&w, 0);
    ck_assert_int_eq(w.err, 0);
}

static void check_metadata(const strata_metadata_t *md, int16_t ver)
{
    ck_assert_uint_eq(md->broker_count, 2);
    ck_assert_int_eq(md->brokers[0].node_id, 1);
    ck_assert_str_eq(md->brokers[0].host, "host-a");
    ck_assert_int_eq(md->brokers[1].port, 9093);
    if (ver >= 2)
        ck_assert_str_eq(md->cluster_id, "cluster-xyz");
    else
        ck_assert_ptr_null(md->cluster_id);
    ck_assert_int_eq(md->controller_id, ver >= 1 ? 2 : -1);
    ck_assert_uint_eq(md->topic_count, 2);
    ck_assert_str_eq(md->topics[0].name, "alpha");
    ck_assert_uint_eq(md->topics[0].partition_count, 2);
    const strata_partition_metadata_t *p1 = &md->topics[0].partitions[1];
    ck_assert_int_eq(p1->id, 1);
    ck_assert_int_eq(p1->leader, 2);
    ck_assert_uint_eq(p1->replica_count, 2);
    ck_assert_int_eq(p1->replicas[0], 2);
    ck_assert_int_eq(p1->replicas[1], 1);
    ck_assert_uint_eq(p1->isr_count, 1);
    ck_assert_int_eq(p1->isr[0], 2);
    ck_assert_int_eq(md->topics[1].err, 3);
    ck_assert_int_eq(md->topics[1].is_internal, ver >= 1);
    ck_assert_uint_eq(md->topics[1].partition_count, 0);
}

START_TEST(test_cl_admin_metadata_every_version)
{
    for (int16_t ver = 1; ver <= 6; ver++) {
        sc_buf_t b;
        sc_rd_t r;
        metadata_resp(&b, ver);
        sc_rd_init(&r, b.data, b.len);
        strata_metadata_t *md = cl_ar_top(sizeof *md);
        ck_assert_ptr_nonnull(md);
        ck_assert_int_eq(cl_admin_decode_metadata(&r, ver, md), 0);
        check_metadata(md, ver);
        cl_ar_free(md);
        sc_buf_fini(&b);
    }
}
END_TEST

START_TEST(test_cl_admin_metadata_truncated_is_bad_format)
{
    sc_buf_t b;
    metadata_resp(&b, 6);
    for (size_t n = 0; n < b.len; n++) {
        sc_rd_t r;
        sc_rd_init(&r, b.data, n);
        strata_metadata_t *md = cl_ar_top(sizeof *md);
        ck_assert_msg(cl_admin_decode_metadata(&r, 6, md) == SC_ERR_BAD_FORMAT, "cut at %zu", n);
        cl_ar_free(md); /* everything decoded so far goes with it (ASan checks) */
    }
    sc_buf_fini(&b);
}
END_TEST

/* ConsumerProtocolAssignment v<ver>: alpha [0, 2], beta [1], user_data. */
static void assignment(sc_buf_t *b, int16_t ver)
{
    sc_kw_t w;
    sc_buf_init(b);
    sc_kw_init(&w, b);
    sc_kw_i16(&w, ver);
    sc_kw_array_len(&w, 2);
    sc_kw_cstr(&w, 0, "alpha");
    sc_kw_array_len(&w, 2);
    sc_kw_i32(&w, 0);
    sc_kw_i32(&w, 2);
    sc_kw_cstr(&w, 0, "beta");
    sc_kw_array_len(&w, 1);
    sc_kw_i32(&w, 1);
    sc_kw_bytes(&w, "ud", 2);
}

START_TEST(test_cl_admin_assignment)
{
    for (int16_t ver = 0; ver <= 3; ver++) {
        sc_buf_t b;
        assignment(&b, ver);
        void *top = cl_ar_top(8);
        const strata_topic_partitions_t *a;
        size_t n;
        ck_assert_int_eq(cl_admin_decode_assignment(top, b.data, b.len, &a, &n), 0);
        ck_assert_uint_eq(n, 2);
        ck_assert_str_eq(a[0].topic, "alpha");
        ck_assert_uint_eq(a[0].partition_count, 2);
        ck_assert_int_eq(a[0].partitions[1], 2);
        ck_assert_str_eq(a[1].topic, "beta");
        ck_assert_int_eq(a[1].partitions[0], 1);
        /* every cut inside the topic list fails cleanly */
        for (size_t cut = 1; cut < b.len - 6; cut++)
            ck_assert_msg(cl_admin_decode_assignment(top, b.data, cut, &a, &n) == SC_ERR_BAD_FORMAT,
                          "cut %zu", cut);
        /* an empty assignment (member not assigned yet) */
        ck_assert_int_eq(cl_admin_decode_assignment(top, b.data, 0, &a, &n), 0);
        ck_assert_uint_eq(n, 0);
        ck_assert_ptr_null(a);
        cl_ar_free(top);
        sc_buf_fini(&b);
    }
}
END_TEST

static void describe_group_resp(sc_buf_t *b, int16_t ver, const char *ptype)
{
    sc_buf_t asg;
    sc_kw_t w;
    assignment(&asg, 1);
    sc_buf_init(b);
    sc_kw_init(&w, b);
    if (ver >= 1)
        sc_kw_i32(&w, 0);
    sc_kw_array_len(&w, 1);
    sc_kw_i16(&w, 0);
    sc_kw_cstr(&w, 0, "grp");
    sc_kw_cstr(&w, 0, "Stable");
    sc_kw_cstr(&w, 0, ptype);
    sc_kw_cstr(&w, 0, "range");
    sc_kw_array_len(&w, 2);
    for (int m = 0; m < 2; m++) {
        sc_kw_cstr(&w, 0, m ? "m-2" : "m-1");
        if (ver >= 4)
            sc_kw_cstr(&w, 0, m ? NULL : "static-1");
        sc_kw_cstr(&w, 0, "client-x");
        sc_kw_cstr(&w, 0, "/127.0.0.1");
        sc_kw_bytes(&w, "meta", 4);
        if (m)
            sc_kw_bytes(&w, "", 0); /* not assigned yet */
        else
            sc_kw_bytes(&w, asg.data, asg.len);
    }
    if (ver >= 3)
        sc_kw_i32(&w, -2147483648);
    sc_buf_fini(&asg);
}

START_TEST(test_cl_admin_describe_group)
{
    for (int16_t ver = 0; ver <= 4; ver++) {
        sc_buf_t b;
        sc_rd_t r;
        describe_group_resp(&b, ver, "consumer");
        sc_rd_init(&r, b.data, b.len);
        strata_group_description_t *d = cl_ar_top(sizeof *d);
        ck_assert_int_eq(cl_admin_decode_describe_group(&r, ver, d), 0);
        ck_assert_str_eq(d->group_id, "grp");
        ck_assert_str_eq(d->state, "Stable");
        ck_assert_str_eq(d->protocol_type, "consumer");
        ck_assert_str_eq(d->protocol, "range");
        ck_assert_uint_eq(d->member_count, 2);
        ck_assert_str_eq(d->members[0].member_id, "m-1");
        if (ver >= 4)
            ck_assert_str_eq(d->members[0].group_instance_id, "static-1");
        else
            ck_assert_ptr_null(d->members[0].group_instance_id);
        ck_assert_ptr_null(d->members[1].group_instance_id);
        ck_assert_str_eq(d->members[0].client_id, "client-x");
        ck_assert_str_eq(d->members[0].client_host, "/127.0.0.1");
        ck_assert_uint_eq(d->members[0].assignment_count, 2);
        ck_assert_str_eq(d->members[0].assignment[1].topic, "beta");
        ck_assert_uint_eq(d->members[1].assignment_count, 0);
        cl_ar_free(d);
        for (size_t cut = 0; cut < b.len; cut++) {
            sc_rd_init(&r, b.data, cut);
            d = cl_ar_top(sizeof *d);
            ck_assert_msg(cl_admin_decode_describe_group(&r, ver, d) == SC_ERR_BAD_FORMAT,
                          "v%d cut %zu", ver, cut);
            cl_ar_free(d);
        }
        sc_buf_fini(&b);
    }
    /* another protocol type: the assignment bytes are not ConsumerProtocol */
    sc_buf_t b;
    sc_rd_t r;
    describe_group_resp(&b, 4, "connect");
    sc_rd_init(&r, b.data, b.len);
    strata_group_description_t *d = cl_ar_top(sizeof *d);
    ck_assert_int_eq(cl_admin_decode_describe_group(&r, 4, d), 0);
    ck_assert_uint_eq(d->members[0].assignment_count, 0);
    cl_ar_free(d);
    sc_buf_fini(&b);
}
END_TEST

static void describe_config_resp(sc_buf_t *b, int16_t ver)
{
    sc_kw_t w;
    sc_buf_init(b);
    sc_kw_init(&w, b);
    sc_kw_i32(&w, 0);
    sc_kw_array_len(&w, 1);
    sc_kw_i16(&w, 0);
    sc_kw_string(&w, NULL, 0);
    sc_kw_i8(&w, 2);
    sc_kw_cstr(&w, 0, "events");
    sc_kw_array_len(&w, 2);
    /* retention.ms overridden on the topic */
    sc_kw_cstr(&w, 0, "retention.ms");
    sc_kw_cstr(&w, 0, "1000");
    sc_kw_bool(&w, 0);
    if (ver == 0)
        sc_kw_bool(&w, 0);
    else
        sc_kw_i8(&w, 1);
    sc_kw_bool(&w, 0);
    if (ver >= 1) {
        sc_kw_array_len(&w, 1);
        sc_kw_cstr(&w, 0, "retention.ms");
        sc_kw_cstr(&w, 0, "1000");
        sc_kw_i8(&w, 1);
    }
    /* a sensitive default with a null value */
    sc_kw_cstr(&w, 0, "secret");
    sc_kw_string(&w, NULL, 0);
    sc_kw_bool(&w, 1);
    if (ver == 0)
        sc_kw_bool(&w, 1);
    else
        sc_kw_i8(&w, 5);
    sc_kw_bool(&w, 1);
    if (ver >= 1)
        sc_kw_array_len(&w, 0);
}

START_TEST(test_cl_admin_describe_config)
{
    for (int16_t ver = 0; ver <= 2; ver++) {
        sc_buf_t b;
        sc_rd_t r;
        describe_config_resp(&b, ver);
        sc_rd_init(&r, b.data, b.len);
        strata_config_description_t *d = cl_ar_top(sizeof *d);
        ck_assert_int_eq(cl_admin_decode_describe_config(&r, ver, d), 0);
        ck_assert_int_eq(d->err, 0);
        ck_assert_ptr_null(d->err_msg);
        ck_assert_int_eq(d->type, STRATA_RESOURCE_TOPIC);
        ck_assert_str_eq(d->name, "events");
        ck_assert_uint_eq(d->config_count, 2);
        ck_assert_str_eq(d->configs[0].name, "retention.ms");
        ck_assert_str_eq(d->configs[0].value, "1000");
        ck_assert_int_eq(d->configs[0].source,
                         ver ? STRATA_CONFIG_SOURCE_TOPIC : STRATA_CONFIG_SOURCE_UNKNOWN);
        ck_assert_ptr_null(d->configs[1].value);
        ck_assert_int_eq(d->configs[1].read_only, 1);
        ck_assert_int_eq(d->configs[1].sensitive, 1);
        ck_assert_int_eq(d->configs[1].source, STRATA_CONFIG_SOURCE_DEFAULT);
        cl_ar_free(d);
        for (size_t cut = 0; cut < b.len; cut++) {
            sc_rd_init(&r, b.data, cut);
            d = cl_ar_top(sizeof *d);
            ck_assert_msg(cl_admin_decode_describe_config(&r, ver, d) == SC_ERR_BAD_FORMAT,
                          "v%d cut %zu", ver, cut);
            cl_ar_free(d);
        }
        sc_buf_fini(&b);
    }
}
END_TEST

static void offset_fetch_resp(sc_buf_t *b, int16_t ver)
{
    sc_kw_t w;
    sc_buf_init(b);
    sc_kw_init(&w, b);
    if (ver >= 3)
        sc_kw_i32(&w, 0);
    sc_kw_array_len(&w, 2);
    sc_kw_cstr(&w, 0, "alpha");
    sc_kw_array_len(&w, 2);
    for (int p = 0; p < 2; p++) {
        sc_kw_i32(&w, p);
        sc_kw_i64(&w, p ? -1 : 42);
        if (ver >= 5)
            sc_kw_i32(&w, -1);
        sc_kw_cstr(&w, 0, "");
        sc_kw_i16(&w, 0);
    }
    sc_kw_cstr(&w, 0, "beta");
    sc_kw_array_len(&w, 1);
    sc_kw_i32(&w, 3);
    sc_kw_i64(&w, 7);
    if (ver >= 5)
        sc_kw_i32(&w, 4);
    sc_kw_string(&w, NULL, 0);
    sc_kw_i16(&w, 3);
    if (ver >= 2)
        sc_kw_i16(&w, 0);
}

START_TEST(test_cl_admin_offset_fetch)
{
    for (int16_t ver = 2; ver <= 5; ver++) {
        sc_buf_t b;
        sc_rd_t r;
        strata_topic_partition_t *tps = NULL;
        size_t n = 0;
        int gerr = -1;
        offset_fetch_resp(&b, ver);
        sc_rd_init(&r, b.data, b.len);
        ck_assert_int_eq(cl_admin_decode_offset_fetch(&r, ver, &tps, &n, &gerr), 0);
        ck_assert_int_eq(gerr, 0);
        ck_assert_uint_eq(n, 3);
        ck_assert_str_eq(tps[0].topic, "alpha");
        ck_assert_int_eq(tps[0].offset, 42);
        ck_assert_int_eq(tps[1].partition, 1);
        ck_assert_int_eq(tps[1].offset, -1);
        ck_assert_str_eq(tps[2].topic, "beta");
        ck_assert_int_eq(tps[2].partition, 3);
        ck_assert_int_eq(tps[2].offset, 7);
        ck_assert_int_eq(tps[2].err, 3);
        strata_topic_partition_list_free(tps, n);
        for (size_t cut = 0; cut < b.len; cut++) {
            sc_rd_init(&r, b.data, cut);
            tps = NULL;
            ck_assert_msg(cl_admin_decode_offset_fetch(&r, ver, &tps, &n, &gerr) == SC_ERR_BAD_FORMAT,
                          "v%d cut %zu", ver, cut);
            ck_assert_ptr_null(tps);
        }
        sc_buf_fini(&b);
    }
}
END_TEST

/* Reads topics[name, partitions[...]] back: "t:p=v,p=v;t:..." with each
 * partition's int32 index and int64 value (plus the epoch and metadata for
 * OffsetCommit). */
static void read_tps(sc_rd_t *r, int16_t ver, int commit, char *out, size_t n)
{
    int32_t nt, np;
    size_t off = 0;

    out[0] = 0;
    ck_assert_int_eq(sc_kr_array_len(r, 0, 6, &nt), 0);
    for (int32_t t = 0; t < nt; t++) {
        sc_kstr_t name, meta;
        sc_kr_string(r, 0, &name);
        ck_assert_int_eq(sc_kr_array_len(r, 0, 12, &np), 0);
        off += (size_t)snprintf(out + off, n - off, "%s%.*s:", t ? ";" : "", name.len, name.p);
        for (int32_t p = 0; p < np; p++) {
            int32_t part = sc_kr_i32(r);
            int64_t v = sc_kr_i64(r);
            if (commit) {
                if (ver >= 6)
                    ck_assert_int_eq(sc_kr_i32(r), -1);
                sc_kr_string(r, 1, &meta);
                ck_assert_int_eq(meta.len, 0);
            }
            off += (size_t)snprintf(out + off, n - off, "%s%d=%lld", p ? "," : "", part, (long long)v);
        }
    }
    ck_assert_int_eq(r->err, 0);
}

START_TEST(test_cl_admin_encoders)
{
    strata_topic_partition_t tps[] = {{"alpha", 0, STRATA_OFFSET_BEGINNING, 0},
                                      {"beta", 3, STRATA_OFFSET_END, 0},
                                      {"alpha", 2, 1700000000000LL, 0},
                                      {"beta", 1, 42, 0}};
    const size_t idx[] = {0, 2, 1, 3}; /* grouped by topic, as the client sorts them */
    cl_admin_tps_t c = {"grp", tps, idx, 4};
    char got[256];

    for (int16_t ver = 1; ver <= 3; ver++) {
        sc_buf_t b;
        sc_kw_t w;
        sc_rd_t r;
        sc_buf_init(&b);
        sc_kw_init(&w, &b);
        ck_assert_int_eq(cl_admin_enc_list_offsets(&w, ver, &c), 0);
        sc_rd_init(&r, b.data, b.len);
        ck_assert_int_eq(sc_kr_i32(&r), -1); /* replica id */
        if (ver >= 2)
            ck_assert_int_eq(sc_kr_i8(&r), 0);
        read_tps(&r, ver, 0, got, sizeof got);
        ck_assert_str_eq(got, "alpha:0=-2,2=1700000000000;beta:3=-1,1=42");
        ck_assert_uint_eq(sc_rd_left(&r), 0);
        sc_buf_fini(&b);
    }
    for (int16_t ver = 2; ver <= 7; ver++) {
        sc_buf_t b;
        sc_kw_t w;
        sc_rd_t r;
        sc_kstr_t s;
        tps[0].offset = 5;
        tps[1].offset = 0;
        tps[2].offset = 7;
        sc_buf_init(&b);
        sc_kw_init(&w, &b);
        ck_assert_int_eq(cl_admin_enc_offset_commit(&w, ver, &c), 0);
        sc_rd_init(&r, b.data, b.len);
        sc_kr_string(&r, 0, &s);
        ck_assert_int_eq(s.len, 3);
        ck_assert_int_eq(memcmp(s.p, "grp", 3), 0);
        ck_assert_int_eq(sc_kr_i32(&r), -1); /* generation */
        sc_kr_string(&r, 0, &s);
        ck_assert_int_eq(s.len, 0); /* member id */
        if (ver >= 7) {
            sc_kr_string(&r, 1, &s);
            ck_assert_int_eq(s.len, -1); /* no group instance id */
        }
        if (ver <= 4)
            ck_assert_int_eq(sc_kr_i64(&r), -1); /* retention */
        read_tps(&r, ver, 1, got, sizeof got);
        ck_assert_str_eq(got, "alpha:0=5,2=7;beta:3=0,1=42");
        ck_assert_uint_eq(sc_rd_left(&r), 0);
        sc_buf_fini(&b);
    }
}
END_TEST

START_TEST(test_cl_admin_arena)
{
    void *top = cl_ar_top(16);
    ck_assert_ptr_nonnull(top);
    ck_assert_ptr_null(cl_ar_strn(top, "x", -1));
    ck_assert_str_eq(cl_ar_strn(top, "abcdef", 3), "abc");
    ck_assert_str_eq(cl_ar_strn(top, "", 0), "");
    for (int i = 0; i < 1000; i++)
        ck_assert_ptr_nonnull(cl_ar_alloc(top, (size_t)i));
    cl_ar_free(top); /* ASan: nothing leaks */
    cl_ar_free(NULL);
    strata_metadata_free(NULL);
    strata_group_description_free(NULL);
    strata_config_description_free(NULL);
    strata_topic_partition_list_free(NULL, 0);
}
END_TEST

START_TEST(test_cl_admin_api_errors)
{
    strata_conf_t *conf = strata_conf_new();
    strata_admin_t *a = NULL;
    char errstr[128];
    int fd, one = 1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sa;
    char addr[64];

    ck_assert_int_eq(strata_admin_new(conf, NULL, errstr, sizeof errstr), -EINVAL);
    ck_assert_int_eq(strata_admin_new(conf, &a, errstr, sizeof errstr), STRATA_ERR_BAD_CONFIG);
    ck_assert_ptr_nonnull(strstr(errstr, "bootstrap.servers"));
    /* a loopback port nobody listens on: bound, then closed */
    fd = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    close(fd);
    snprintf(addr, sizeof addr, "127.0.0.1:%d", ntohs(sa.sin_port));
    ck_assert_int_eq(strata_conf_set(conf, "bootstrap.servers", addr, NULL, 0), 0);
    ck_assert_int_eq(strata_admin_new(conf, &a, errstr, sizeof errstr), 0);
    strata_metadata_t *md = NULL;
    /* refused three times in a row: the connection error, long before the timeout */
    ck_assert_int_eq(strata_admin_describe_topics(a, NULL, 0, 20000, &md), -ECONNREFUSED);
    ck_assert_ptr_null(md);
    strata_err_t res[1];
    strata_new_topic_t nt = {"t", 1, 1, NULL, 0};
    ck_assert_int_eq(strata_admin_create_topics(a, &nt, 1, 20000, res), -ECONNREFUSED);
    ck_assert_int_eq(strata_admin_create_topics(a, NULL, 1, 100, res), -EINVAL);
    ck_assert_int_eq(strata_admin_delete_topics(a, NULL, 0, 100, res), -EINVAL);
    ck_assert_int_eq(strata_admin_list_offsets(a, NULL, 0, 100), 0);
    ck_assert_int_eq(strata_admin_describe_group(a, NULL, 100, NULL), -EINVAL);
    ck_assert_ptr_null(strata_admin_error_message(a, 0));
    /* a zero timeout gives up at once */
    ck_assert_int_eq(strata_admin_describe_topics(a, NULL, 0, 0, &md), STRATA_ERR_TIMED_OUT);
    strata_admin_free(a);
    strata_admin_free(NULL);
    strata_conf_free(conf);
}
END_TEST

/* A fake broker on loopback. It answers ApiVersions (Metadata 0-6,
 * CreateTopics 0-4, DeleteTopics 0-3); with .dance it also answers Metadata
 * (itself as node 0 and controller) and answers the first CreateTopics /
 * DeleteTopics with NOT_CONTROLLER for topic "t", later ones with success.
 * Without .dance every other request hangs until the test ends. */
typedef struct {
    int lfd;
    int port;
    int dance;
    int stop;             /* __atomic */
    int creates, deletes; /* requests seen (__atomic) */
} fake_t;

static void reply(int fd, const uint8_t *req, sc_buf_t *out)
{
    uint8_t hdr[8];
    uint32_t len = (uint32_t)out->len + 4;
    hdr[0] = (uint8_t)(len >> 24);
    hdr[1] = (uint8_t)(len >> 16);
    hdr[2] = (uint8_t)(len >> 8);
    hdr[3] = (uint8_t)len;
    memcpy(hdr + 4, req + 8, 4); /* correlation id */
    ck_assert_int_eq(send(fd, hdr, 8, MSG_NOSIGNAL), 8);
    ck_assert_int_eq(send(fd, out->data, out->len, MSG_NOSIGNAL), (ssize_t)out->len);
}

/* One request frame (size prefix included) on fd. */
static void fake_handle(fake_t *f, int fd, const uint8_t *req)
{
    int16_t key = (int16_t)(req[4] << 8 | req[5]), ver = (int16_t)(req[6] << 8 | req[7]);
    sc_buf_t out;
    sc_kw_t w;

    sc_buf_init(&out);
    sc_kw_init(&w, &out);
    if (key == SC_KAFKA_API_API_VERSIONS) {
        int16_t apis[][3] = {{3, 0, 6}, {18, 0, 3}, {19, 0, 4}, {20, 0, 3}};
        sc_kw_i16(&w, 0);
        sc_kw_array_len(&w, 4);
        for (int i = 0; i < 4; i++) {
            sc_kw_i16(&w, apis[i][0]);
            sc_kw_i16(&w, apis[i][1]);
            sc_kw_i16(&w, apis[i][2]);
        }
    } else if (f->dance && key == SC_KAFKA_API_METADATA) {
        if (ver >= 3)
            sc_kw_i32(&w, 0);
        sc_kw_array_len(&w, 1);
        sc_kw_i32(&w, 0);
        sc_kw_cstr(&w, 0, "127.0.0.1");
        sc_kw_i32(&w, f->port);
        if (ver >= 1)
            sc_kw_string(&w, NULL, 0);
        if (ver >= 2)
            sc_kw_cstr(&w, 0, "fake");
        if (ver >= 1)
            sc_kw_i32(&w, 0);
        sc_kw_array_len(&w, 0);
    } else if (f->dance && (key == SC_KAFKA_API_CREATE_TOPICS || key == SC_KAFKA_API_DELETE_TOPICS)) {
        int first = __atomic_fetch_add(key == SC_KAFKA_API_CREATE_TOPICS ? &f->creates : &f->deletes, 1,
                                       __ATOMIC_SEQ_CST) == 0;
        if ((key == SC_KAFKA_API_CREATE_TOPICS && ver >= 2) ||
            (key == SC_KAFKA_API_DELETE_TOPICS && ver >= 1))
            sc_kw_i32(&w, 0);
        sc_kw_array_len(&w, 1);
        sc_kw_cstr(&w, 0, "t");
        sc_kw_i16(&w, first ? 41 /* NOT_CONTROLLER */ : 0);
        if (key == SC_KAFKA_API_CREATE_TOPICS && ver >= 1)
            sc_kw_string(&w, NULL, 0);
    } else {
        sc_buf_fini(&out);
        return; /* never answered */
    }
    reply(fd, req, &out);
    sc_buf_fini(&out);
}

static void *fake_main(void *arg)
{
    fake_t *f = arg;
    struct pollfd pf[5];
    uint8_t buf[4][4096];
    size_t have[4] = {0};
    int n = 0;

    pf[0] = (struct pollfd){f->lfd, POLLIN, 0};
    while (!__atomic_load_n(&f->stop, __ATOMIC_SEQ_CST)) {
        if (poll(pf, (nfds_t)(1 + n), 50) <= 0)
            continue;
        if ((pf[0].revents & POLLIN) && n < 4) {
            int fd = accept(f->lfd, NULL, NULL);
            if (fd >= 0) {
                pf[1 + n] = (struct pollfd){fd, POLLIN, 0};
                have[n++] = 0;
            }
        }
        for (int c = 0; c < n; c++) {
            if (pf[1 + c].fd < 0 || !(pf[1 + c].revents & (POLLIN | POLLHUP)))
                continue;
            ssize_t r = recv(pf[1 + c].fd, buf[c] + have[c], sizeof buf[c] - have[c], 0);
            if (r <= 0) {
                close(pf[1 + c].fd);
                pf[1 + c].fd = -1;
                continue;
            }
            have[c] += (size_t)r;
            while (have[c] >= 4) {
                uint32_t len = (uint32_t)buf[c][0] << 24 | (uint32_t)buf[c][1] << 16 |
                               (uint32_t)buf[c][2] << 8 | buf[c][3];
                if (have[c] < 4 + len)
                    break;
                fake_handle(f, pf[1 + c].fd, buf[c]);
                memmove(buf[c], buf[c] + 4 + len, have[c] - 4 - len);
                have[c] -= 4 + len;
            }
        }
    }
    for (int c = 0; c < n; c++)
        if (pf[1 + c].fd >= 0)
            close(pf[1 + c].fd);
    return NULL;
}

/* Starts f on a free loopback port; *bootstrap gets "127.0.0.1:<port>". */
static void fake_start(fake_t *f, pthread_t *th, char *bootstrap, size_t n)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sa;

    f->lfd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_eq(bind(f->lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    ck_assert_int_eq(listen(f->lfd, 4), 0);
    ck_assert_int_eq(getsockname(f->lfd, (struct sockaddr *)&sa, &sl), 0);
    f->port = ntohs(sa.sin_port);
    snprintf(bootstrap, n, "127.0.0.1:%d", f->port);
    ck_assert_int_eq(pthread_create(th, NULL, fake_main, f), 0);
}

static void fake_stop(fake_t *f, pthread_t th)
{
    __atomic_store_n(&f->stop, 1, __ATOMIC_SEQ_CST);
    pthread_join(th, NULL);
    close(f->lfd);
}

START_TEST(test_cl_admin_timeout_in_flight)
{
    fake_t f = {0};
    pthread_t th;
    char addr[64], errstr[128];
    strata_conf_t *conf = strata_conf_new();
    strata_admin_t *a = NULL;

    fake_start(&f, &th, addr, sizeof addr);
    ck_assert_int_eq(strata_conf_set(conf, "bootstrap.servers", addr, NULL, 0), 0);
    ck_assert_int_eq(strata_admin_new(conf, &a, errstr, sizeof errstr), 0);
    strata_metadata_t *md = NULL;
    /* the request goes out and is never answered: the caller gets its time
     * back, the op stays with the I/O thread until the handle stops */
    ck_assert_int_eq(strata_admin_describe_topics(a, NULL, 0, 300, &md), STRATA_ERR_TIMED_OUT);
    ck_assert_ptr_null(md);
    ck_assert_int_eq(strata_admin_describe_topics(a, NULL, 0, 200, &md), STRATA_ERR_TIMED_OUT);
    strata_topic_partition_t tp = {"t", 0, STRATA_OFFSET_END, 0};
    ck_assert_int_eq(strata_admin_list_offsets(a, &tp, 1, 300), STRATA_ERR_TIMED_OUT); /* its Metadata */
    strata_admin_free(a); /* frees the abandoned ops (ASan: no leak, no use after free) */
    fake_stop(&f, th);
    strata_conf_free(conf);
}
END_TEST

START_TEST(test_cl_admin_not_controller_retried)
{
    fake_t f = {.dance = 1};
    pthread_t th;
    char addr[64], errstr[128];
    strata_conf_t *conf = strata_conf_new();
    strata_admin_t *a = NULL;
    strata_err_t res[1];
    const char *names[] = {"t"};
    strata_new_topic_t nt = {"t", 1, 1, NULL, 0};

    fake_start(&f, &th, addr, sizeof addr);
    ck_assert_int_eq(strata_conf_set(conf, "bootstrap.servers", addr, NULL, 0), 0);
    ck_assert_int_eq(strata_conf_set(conf, "retry.backoff.ms", "10", NULL, 0), 0);
    ck_assert_int_eq(strata_admin_new(conf, &a, errstr, sizeof errstr), 0);
    /* NOT_CONTROLLER for every topic: metadata again, then the request again */
    ck_assert_int_eq(strata_admin_create_topics(a, &nt, 1, 5000, res), 0);
    ck_assert_int_eq(res[0], 0);
    ck_assert_int_eq(__atomic_load_n(&f.creates, __ATOMIC_SEQ_CST), 2);
    ck_assert_int_eq(strata_admin_delete_topics(a, names, 1, 5000, res), 0);
    ck_assert_int_eq(res[0], 0);
    ck_assert_int_eq(__atomic_load_n(&f.deletes, __ATOMIC_SEQ_CST), 2);
    strata_admin_free(a);
    fake_stop(&f, th);
    strata_conf_free(conf);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("cl_admin");
    TCase *tc = tcase_create("admin");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_cl_admin_metadata_every_version);
    tcase_add_test(tc, test_cl_admin_metadata_truncated_is_bad_format);
    tcase_add_test(tc, test_cl_admin_assignment);
    tcase_add_test(tc, test_cl_admin_describe_group);
    tcase_add_test(tc, test_cl_admin_describe_config);
    tcase_add_test(tc, test_cl_admin_offset_fetch);
    tcase_add_test(tc, test_cl_admin_encoders);
    tcase_add_test(tc, test_cl_admin_arena);
    tcase_add_test(tc, test_cl_admin_api_errors);
    tcase_add_test(tc, test_cl_admin_timeout_in_flight);
    tcase_add_test(tc, test_cl_admin_not_controller_retried);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return t_run_suite(suite()); }
