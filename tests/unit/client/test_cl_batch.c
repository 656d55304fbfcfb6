/*
 * Unit tests for client/cl_batch.c: a producer batch encoded with every
 * codec (none, gzip, snappy, lz4, zstd) keeps its header fields, gets a valid CRC-32C over the
 * compressed bytes, and decodes back to the same records (keys, values,
 * headers, nulls, timestamps, offsets); malformed batches are errors.
 */
#include "cl_batch.h"
#include "cl_conf.h"
#include "sc_crc32c.h"
#include "sc_endian.h"
#include "sc_err.h"
#include "t_util.h"

#include <stdio.h>
#include <string.h>
#include <zlib.h>

#define N 40

static void build(sc_recbatch_t *rb)
{
    sc_recbatch_init(rb);
    ck_assert_int_eq(sc_recbatch_begin(rb, 1700000000000, 42, 3, 100), 0);
    for (int i = 0; i < N; i++) {
        char key[16], val[64];
        int kl = snprintf(key, sizeof key, "k%d", i);
        int vl = snprintf(val, sizeof val, "value %d %s", i, "aaaaaaaaaaaaaaaaaaaa");
        sc_rec_header_t h[2] = {{"h", 1, "hv", 2}, {"n", 1, NULL, 0}};
        ck_assert_int_eq(sc_recbatch_add(rb, 1700000000000 + i, i % 5 ? key : NULL, kl,
                                         i == 7 ? NULL : val, vl, h, i % 3),
                         0);
    }
    sc_recbatch_finish(rb);
}

typedef struct {
    int n;
} seen_t;

static int check_rec(void *arg, const cl_batch_info_t *bi, const cl_record_t *r)
{
    seen_t *s = arg;
    int i = s->n++;
    char key[16], val[64];
    int kl = snprintf(key, sizeof key, "k%d", i);
    int vl = snprintf(val, sizeof val, "value %d %s", i, "aaaaaaaaaaaaaaaaaaaa");

    ck_assert_int_eq(r->offset, 1000 + i);
    ck_assert_int_eq(r->timestamp, 1700000000000 + i);
    if (i % 5) {
        ck_assert_int_eq(r->key_len, kl);
        ck_assert_int_eq(memcmp(r->key, key, (size_t)kl), 0);
    } else {
        ck_assert_ptr_null(r->key);
    }
    if (i == 7) {
        ck_assert_ptr_null(r->value);
    } else {
        ck_assert_int_eq(r->value_len, vl);
        ck_assert_int_eq(memcmp(r->value, val, (size_t)vl), 0);
    }
    ck_assert_uint_eq(r->header_count, (size_t)(i % 3));
    if (i % 3 >= 1) {
        ck_assert_uint_eq(r->headers[0].key_len, 1);
        ck_assert_int_eq(memcmp(r->headers[0].value, "hv", 2), 0);
    }
    if (i % 3 == 2)
        ck_assert_ptr_null(r->headers[1].value);
    ck_assert_int_eq(bi->producer_id, 42);
    ck_assert_int_eq(bi->producer_epoch, 3);
    ck_assert_int_eq(bi->base_sequence, 100);
    return 0;
}

static void roundtrip(int codec)
{
    sc_recbatch_t rb;
    sc_buf_t out;
    cl_batch_info_t bi;
    seen_t s = {0};

    build(&rb);
    sc_buf_init(&out);
    ck_assert_int_eq(cl_batch_encode(&rb, codec, -1, &out), 0);
    sc_store_be64(out.data, 1000); /* what the broker writes: outside the CRC */
    ck_assert_int_eq(sc_load_be32(out.data + 8) + 12, out.len);
    ck_assert_int_eq(sc_load_be16(out.data + 21) & 7, codec);
    ck_assert_uint_eq(sc_crc32c(0, out.data + 21, out.len - 21), sc_load_be32(out.data + 17));
    ck_assert_int_eq(memcmp(out.data + 23, rb.buf.data + 23, 61 - 23), 0); /* same header fields */
    if (codec != CL_CODEC_NONE)
        ck_assert_uint_lt(out.len, rb.buf.len);
    if (codec == CL_CODEC_GZIP) {
        ck_assert_int_eq(out.data[61], 0x1f); /* gzip magic, RFC 1952 */
        ck_assert_int_eq(out.data[62], 0x8b);
    } else if (codec == CL_CODEC_LZ4) {
        ck_assert_int_eq(sc_load_be32(out.data + 61), 0x04224d18); /* LZ4 frame magic (LE) */
    } else if (codec == CL_CODEC_ZSTD) {
        ck_assert_int_eq(sc_load_be32(out.data + 61), 0x28b52ffd); /* zstd frame magic (LE) */
    } else if (codec == CL_CODEC_SNAPPY) {
        /* a raw block: its preamble is the uncompressed length */
        ck_assert_uint_lt(rb.buf.len - 61, 1u << 14); /* a 2-byte uvarint */
        ck_assert_int_eq((out.data[61] & 0x7f) | out.data[62] << 7, (int)(rb.buf.len - 61));
    } else {
        ck_assert_int_eq(memcmp(out.data + 12, rb.buf.data + 12, out.len - 12), 0);
    }
    ck_assert_int_eq(cl_batch_decode(out.data, out.len, 1, check_rec, &s, &bi), 0);
    ck_assert_int_eq(s.n, N);
    ck_assert_int_eq(bi.count, N);
    ck_assert_int_eq(bi.last_offset_delta, N - 1);
    sc_buf_fini(&out);
    sc_recbatch_fini(&rb);
}

START_TEST(test_cl_batch_none_roundtrips) { roundtrip(CL_CODEC_NONE); }
END_TEST

START_TEST(test_cl_batch_gzip_roundtrips_with_crc_over_compressed) { roundtrip(CL_CODEC_GZIP); }
END_TEST

START_TEST(test_cl_batch_snappy_roundtrips) { roundtrip(CL_CODEC_SNAPPY); }
END_TEST

START_TEST(test_cl_batch_lz4_roundtrips) { roundtrip(CL_CODEC_LZ4); }
END_TEST

START_TEST(test_cl_batch_zstd_roundtrips) { roundtrip(CL_CODEC_ZSTD); }
END_TEST

START_TEST(test_cl_batch_gzip_inflates_to_the_uncompressed_records)
{
    sc_recbatch_t rb;
    sc_buf_t out;
    uint8_t plain[16384];
    uLongf n = sizeof plain;
    z_stream zs;

    build(&rb);
    sc_buf_init(&out);
    ck_assert_int_eq(cl_batch_encode(&rb, CL_CODEC_GZIP, 6, &out), 0);
    memset(&zs, 0, sizeof zs);
    ck_assert_int_eq(inflateInit2(&zs, 16 + MAX_WBITS), Z_OK);
    zs.next_in = out.data + 61;
    zs.avail_in = (uInt)(out.len - 61);
    zs.next_out = plain;
    zs.avail_out = (uInt)n;
    ck_assert_int_eq(inflate(&zs, Z_FINISH), Z_STREAM_END);
    ck_assert_uint_eq(zs.total_out, rb.buf.len - 61);
    ck_assert_int_eq(memcmp(plain, rb.buf.data + 61, rb.buf.len - 61), 0);
    inflateEnd(&zs);
    sc_buf_fini(&out);
    sc_recbatch_fini(&rb);
}
END_TEST

static int count_rec(void *arg, const cl_batch_info_t *bi, const cl_record_t *r)
{
    (*(int *)arg)++;
    return 0;
}

START_TEST(test_cl_batch_decode_rejects_malformed)
{
    sc_recbatch_t rb;
    sc_buf_t out;
    int n = 0;

    build(&rb);
    sc_buf_init(&out);
    ck_assert_int_eq(cl_batch_encode(&rb, CL_CODEC_GZIP, -1, &out), 0);
    /* truncated */
    ck_assert_int_eq(cl_batch_decode(out.data, out.len - 1, 1, count_rec, &n, NULL),
                     SC_ERR_CORRUPT_MESSAGE);
    ck_assert_int_eq(cl_batch_decode(out.data, 30, 0, count_rec, &n, NULL), SC_ERR_CORRUPT_MESSAGE);
    /* flipped byte in the compressed data: CRC catches it; without the CRC check
     * inflate or the record parser must */
    out.data[out.len - 10] ^= 0x55;
    ck_assert_int_eq(cl_batch_decode(out.data, out.len, 1, count_rec, &n, NULL),
                     SC_ERR_CORRUPT_MESSAGE);
    ck_assert_int_ne(cl_batch_decode(out.data, out.len, 0, count_rec, &n, NULL), 0);
    out.data[out.len - 10] ^= 0x55;
    /* bad magic */
    out.data[16] = 1;
    ck_assert_int_eq(cl_batch_decode(out.data, out.len, 0, count_rec, &n, NULL),
                     SC_ERR_CORRUPT_MESSAGE);
    out.data[16] = 2;
    /* record count larger than the records */
    sc_store_be32(out.data + 57, N + 1);
    ck_assert_int_eq(cl_batch_decode(out.data, out.len, 0, count_rec, &n, NULL),
                     SC_ERR_CORRUPT_MESSAGE);
    /* the gzip bytes labelled zstd: corrupt; codec 5 does not exist */
    sc_store_be32(out.data + 57, N);
    sc_store_be16(out.data + 21, CL_CODEC_ZSTD);
    ck_assert_int_eq(cl_batch_decode(out.data, out.len, 0, count_rec, &n, NULL),
                     SC_ERR_CORRUPT_MESSAGE);
    sc_store_be16(out.data + 21, 5);
    ck_assert_int_eq(cl_batch_decode(out.data, out.len, 0, count_rec, &n, NULL),
                     SC_ERR_UNSUPPORTED_COMPRESSION_TYPE);
    ck_assert_int_eq(cl_batch_encode(&rb, 5, -1, &out), SC_ERR_UNSUPPORTED_COMPRESSION_TYPE);
    for (int c = CL_CODEC_NONE; c <= CL_CODEC_ZSTD; c++)
        ck_assert(cl_codec_supported(c));
    ck_assert(!cl_codec_supported(5));
    sc_buf_fini(&out);
    sc_recbatch_fini(&rb);
}
END_TEST

static int check_ts(void *arg, const cl_batch_info_t *bi, const cl_record_t *r)
{
    ck_assert_int_eq(r->timestamp, *(int64_t *)arg);
    return 0;
}

/* LogAppendTime (attributes bit 3): every record carries the batch's
 * maxTimestamp, the broker's append time, not its own CreateTime delta. */
START_TEST(test_cl_batch_decode_log_append_time_uses_max_timestamp)
{
    sc_recbatch_t rb;
    sc_buf_t out;
    int64_t want = 1700000000000 + 100000; /* no record's create time in build() */

    build(&rb);
    sc_buf_init(&out);
    ck_assert_int_eq(cl_batch_encode(&rb, CL_CODEC_NONE, -1, &out), 0);
    sc_store_be16(out.data + 21, 0x08);
    sc_store_be64(out.data + 35, (uint64_t)want);
    ck_assert_int_eq(cl_batch_decode(out.data, out.len, 0, check_ts, &want, NULL), 0);
    sc_buf_fini(&out);
    sc_recbatch_fini(&rb);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("cl_batch");
    TCase *tc = tcase_create("batch");
    tcase_add_test(tc, test_cl_batch_none_roundtrips);
    tcase_add_test(tc, test_cl_batch_gzip_roundtrips_with_crc_over_compressed);
    tcase_add_test(tc, test_cl_batch_snappy_roundtrips);
    tcase_add_test(tc, test_cl_batch_lz4_roundtrips);
    tcase_add_test(tc, test_cl_batch_zstd_roundtrips);
    tcase_add_test(tc, test_cl_batch_gzip_inflates_to_the_uncompressed_records);
    tcase_add_test(tc, test_cl_batch_decode_rejects_malformed);
    tcase_add_test(tc, test_cl_batch_decode_log_append_time_uses_max_timestamp);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return t_run_suite(suite()); }
