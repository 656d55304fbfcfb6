/* Unit tests for storage/st_batch: RecordBatch v2 validation and offsets. */
#include "sc_endian.h"
#include "sc_err.h"
#include "st_batch.h"
#include "t_util.h"

#include <stdlib.h>
#include <string.h>

START_TEST(test_st_batch_validate_accepts_built_batch)
{
    sc_recbatch_t b;
    st_batch_hdr_t h;
    sc_recbatch_init(&b);
    t_batch_make(&b, 10, 100, 1, 1000);
    ck_assert_int_eq(st_batch_validate(b.buf.data, b.buf.len, 0, &h), 0);
    ck_assert_int_eq(h.records_count, 10);
    ck_assert_int_eq(h.last_offset_delta, 9);
    ck_assert_int_eq(h.base_timestamp, 1000);
    ck_assert_int_eq(h.max_timestamp, 1009);
    ck_assert_int_eq(h.producer_id, -1);
    ck_assert_int_eq(st_batch_size(b.buf.data, b.buf.len), (int64_t)b.buf.len);
    sc_recbatch_fini(&b);
}
END_TEST

START_TEST(test_st_batch_validate_rejects_every_bit_flip_in_crc_range)
{
    sc_recbatch_t b;
    sc_recbatch_init(&b);
    t_batch_make(&b, 3, 20, 2, 5);
    for (size_t i = ST_BATCH_OFF_CRC; i < b.buf.len; i++) {
        for (int bit = 0; bit < 8; bit++) {
            b.buf.data[i] ^= (uint8_t)(1 << bit);
            ck_assert_int_ne(st_batch_validate(b.buf.data, b.buf.len, 0, NULL), 0);
            b.buf.data[i] ^= (uint8_t)(1 << bit);
        }
    }
    ck_assert_int_eq(st_batch_validate(b.buf.data, b.buf.len, 0, NULL), 0);
    sc_recbatch_fini(&b);
}
END_TEST

START_TEST(test_st_batch_validate_rejects_truncation_and_bad_length)
{
    sc_recbatch_t b;
    sc_recbatch_init(&b);
    t_batch_make(&b, 4, 50, 3, 5);
    for (size_t n = 0; n < b.buf.len; n++)
        ck_assert_int_eq(st_batch_validate(b.buf.data, n, 0, NULL), SC_ERR_CORRUPT_MESSAGE);
    uint32_t len = sc_load_be32(b.buf.data + 8);
    sc_store_be32(b.buf.data + 8, 0x7fffffff);
    ck_assert_int_eq(st_batch_validate(b.buf.data, b.buf.len, 0, NULL), SC_ERR_CORRUPT_MESSAGE);
    sc_store_be32(b.buf.data + 8, 0xffffffff);
    ck_assert_int_eq(st_batch_validate(b.buf.data, b.buf.len, 0, NULL), SC_ERR_CORRUPT_MESSAGE);
    sc_store_be32(b.buf.data + 8, len);
    b.buf.data[ST_BATCH_OFF_MAGIC] = 1;
    ck_assert_int_eq(st_batch_validate(b.buf.data, b.buf.len, 0, NULL), SC_ERR_INVALID_RECORD);
    sc_recbatch_fini(&b);
}
END_TEST

START_TEST(test_st_batch_set_offset_keeps_crc_valid)
{
    sc_recbatch_t b;
    st_batch_hdr_t h;
    sc_recbatch_init(&b);
    t_batch_make(&b, 5, 10, 4, 5);
    st_batch_set_offset(b.buf.data, 123456789012LL, 7);
    ck_assert_int_eq(st_batch_validate(b.buf.data, b.buf.len, 0, &h), 0);
    ck_assert_int_eq(h.base_offset, 123456789012LL);
    ck_assert_int_eq(h.leader_epoch, 7);
    ck_assert_int_eq(st_batch_last_offset(&h), 123456789016LL);
    sc_recbatch_fini(&b);
}
END_TEST

START_TEST(test_st_batch_validate_all_counts_sequence)
{
    sc_recbatch_t a, b;
    int nb;
    int64_t no;
    sc_recbatch_init(&a);
    sc_recbatch_init(&b);
    t_batch_make(&a, 3, 10, 1, 0);
    t_batch_make(&b, 7, 10, 2, 0);
    size_t n = a.buf.len + b.buf.len;
    uint8_t *seq = malloc(n + 5);
    memcpy(seq, a.buf.data, a.buf.len);
    memcpy(seq + a.buf.len, b.buf.data, b.buf.len);
    ck_assert_int_eq(st_batch_validate_all(seq, n, &nb, &no), 0);
    ck_assert_int_eq(nb, 2);
    ck_assert_int_eq(no, 10);
    ck_assert_int_eq(st_batch_validate_all(seq, n - 1, &nb, &no), SC_ERR_CORRUPT_MESSAGE);
    memset(seq + n, 0, 5);
    ck_assert_int_eq(st_batch_validate_all(seq, n + 5, &nb, &no), SC_ERR_CORRUPT_MESSAGE);
    ck_assert_int_eq(st_batch_validate_all(seq, 0, &nb, &no), SC_ERR_CORRUPT_MESSAGE);
    free(seq);
    sc_recbatch_fini(&a);
    sc_recbatch_fini(&b);
}
END_TEST

START_TEST(test_st_batch_find_timestamp_inside_batch)
{
    sc_recbatch_t b;
    int64_t off;
    sc_recbatch_init(&b);
    t_batch_make(&b, 10, 8, 1, 1000); /* timestamps 1000..1009 */
    st_batch_set_offset(b.buf.data, 50, 0);
    ck_assert_int_eq(st_batch_find_timestamp(b.buf.data, b.buf.len, 0, &off), 0);
    ck_assert_int_eq(off, 50);
    ck_assert_int_eq(st_batch_find_timestamp(b.buf.data, b.buf.len, 1004, &off), 0);
    ck_assert_int_eq(off, 54);
    ck_assert_int_eq(st_batch_find_timestamp(b.buf.data, b.buf.len, 1009, &off), 0);
    ck_assert_int_eq(off, 59);
    ck_assert_int_eq(st_batch_find_timestamp(b.buf.data, b.buf.len, 1010, &off), SC_ERR_NOT_FOUND);
    sc_recbatch_fini(&b);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("st_batch");
    TCase *tc = tcase_create("batch");
    tcase_add_test(tc, test_st_batch_validate_accepts_built_batch);
    tcase_add_test(tc, test_st_batch_validate_rejects_every_bit_flip_in_crc_range);
    tcase_add_test(tc, test_st_batch_validate_rejects_truncation_and_bad_length);
    tcase_add_test(tc, test_st_batch_set_offset_keeps_crc_valid);
    tcase_add_test(tc, test_st_batch_validate_all_counts_sequence);
    tcase_add_test(tc, test_st_batch_find_timestamp_inside_batch);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return t_run_suite(suite()); }
