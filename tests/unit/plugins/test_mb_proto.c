/*
 * test_mb_proto -- Modbus/TCP framing, read-response parsing and value
 * decoding of the modbus plugin (plugins/modbus/mb_proto.c). Float vectors
 * are libmodbus's (unit-test.h: 123456.0 = 0x47F12000 in each order).
 */
#include "mb_proto.h"
#include "t_util.h"

#include <string.h>

START_TEST(test_build_read)
{
    uint8_t b[12];
    ck_assert_uint_eq(mb_build_read(b, 0x1234, 17, MB_FC_HOLDING, 0x160, 3), 12);
    const uint8_t want[12] = {0x12, 0x34, 0, 0, 0, 6, 17, 3, 0x01, 0x60, 0, 3};
    ck_assert_mem_eq(b, want, 12);
}
END_TEST

START_TEST(test_frame)
{
    const uint8_t r[] = {0, 7, 0, 0, 0, 5, 1, 3, 2, 0x12, 0x34, /* next */ 0, 8, 0, 0};
    mb_adu_t a;
    for (size_t n = 0; n < 11; n++)
        ck_assert_int_eq(mb_frame(r, n, &a), 0); /* need more */
    ck_assert_int_eq(mb_frame(r, sizeof r, &a), 11);
    ck_assert_uint_eq(a.tid, 7);
    ck_assert_uint_eq(a.unit, 1);
    ck_assert_uint_eq(a.pdu_len, 4);
    ck_assert_int_eq(mb_frame(r + 11, 4, &a), 0);
    const uint8_t badproto[] = {0, 1, 0, 1, 0, 5, 1, 3, 2, 0, 0};
    ck_assert_int_eq(mb_frame(badproto, sizeof badproto, &a), -1);
    const uint8_t badlen[] = {0, 1, 0, 0, 0, 1, 1};
    ck_assert_int_eq(mb_frame(badlen, sizeof badlen, &a), -1);
    const uint8_t toolong[] = {0, 1, 0, 0, 0x01, 0x00, 1};
    ck_assert_int_eq(mb_frame(toolong, sizeof toolong, &a), -1);
}
END_TEST

START_TEST(test_parse_read)
{
    mb_adu_t a = {.tid = 1, .unit = 1};
    mb_resp_t r;
    const uint8_t regs[] = {3, 6, 0x02, 0x2B, 0x00, 0x01, 0x00, 0x64};
    a.pdu = regs;
    a.pdu_len = sizeof regs;
    ck_assert_int_eq(mb_parse_read(&a, MB_FC_HOLDING, 3, &r), 0);
    ck_assert_int_eq(r.exception, 0);
    ck_assert_uint_eq(mb_reg(&r, 0), 0x022B);
    ck_assert_uint_eq(mb_reg(&r, 2), 0x0064);
    ck_assert_uint_eq(mb_reg(&r, 3), 0); /* out of range reads as 0, no overread */
    ck_assert_int_eq(mb_parse_read(&a, MB_FC_HOLDING, 2, &r), -1); /* byte count mismatch */
    ck_assert_int_eq(mb_parse_read(&a, MB_FC_INPUT, 3, &r), -1);   /* wrong function */
    const uint8_t exc[] = {0x83, 0x02};
    a.pdu = exc;
    a.pdu_len = 2;
    ck_assert_int_eq(mb_parse_read(&a, MB_FC_HOLDING, 1, &r), 0);
    ck_assert_int_eq(r.exception, 2);
    ck_assert_str_eq(mb_exception_str(2), "illegal data address");
    ck_assert_int_eq(mb_parse_read(&a, MB_FC_INPUT, 1, &r), -1); /* 0x83 answers fc 3 only */
    /* libmodbus UT_BITS_TAB: 37 coils from 0xCD 0x6B 0xB2 0x0E 0x1B, LSB first */
    const uint8_t bits[] = {1, 5, 0xCD, 0x6B, 0xB2, 0x0E, 0x1B};
    a.pdu = bits;
    a.pdu_len = sizeof bits;
    ck_assert_int_eq(mb_parse_read(&a, MB_FC_COILS, 37, &r), 0);
    ck_assert_int_eq(mb_bit(&r, 0), 1);
    ck_assert_int_eq(mb_bit(&r, 1), 0);
    ck_assert_int_eq(mb_bit(&r, 2), 1);
    ck_assert_int_eq(mb_bit(&r, 8), 1);
    ck_assert_int_eq(mb_bit(&r, 36), 1);
    ck_assert_int_eq(mb_parse_read(&a, MB_FC_COILS, 41, &r), -1); /* 6 bytes needed */
}
END_TEST

START_TEST(test_decode)
{
    int64_t i;
    double d;
    const uint16_t abcd[] = {0x47F1, 0x2000}, cdab[] = {0x2000, 0x47F1}, badc[] = {0xF147, 0x0020},
                   dcba[] = {0x0020, 0xF147};
    ck_assert_int_eq(mb_decode(abcd, MB_T_FLOAT32, MB_O_ABCD, &i, &d), 0);
    ck_assert(d == 123456.0);
    mb_decode(cdab, MB_T_FLOAT32, MB_O_CDAB, &i, &d);
    ck_assert(d == 123456.0);
    mb_decode(badc, MB_T_FLOAT32, MB_O_BADC, &i, &d);
    ck_assert(d == 123456.0);
    mb_decode(dcba, MB_T_FLOAT32, MB_O_DCBA, &i, &d);
    ck_assert(d == 123456.0);
    const uint16_t neg[] = {0xFFFE, 0};
    ck_assert_int_eq(mb_decode(neg, MB_T_INT16, 0, &i, &d), 1);
    ck_assert_int_eq(i, -2);
    mb_decode(neg, MB_T_UINT16, 0, &i, &d);
    ck_assert_int_eq(i, 65534);
    const uint16_t big[] = {0xFFFF, 0xFFFE};
    mb_decode(big, MB_T_INT32, MB_O_ABCD, &i, &d);
    ck_assert_int_eq(i, -2);
    mb_decode(big, MB_T_UINT32, MB_O_ABCD, &i, &d);
    ck_assert_int_eq(i, 4294967294LL);
    mb_decode(big, MB_T_UINT32, MB_O_CDAB, &i, &d);
    ck_assert_int_eq(i, 0xFFFEFFFFLL);
    ck_assert_uint_eq(mb_type_regs(MB_T_FLOAT32), 2);
    ck_assert_uint_eq(mb_type_regs(MB_T_INT16), 1);
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("mb_proto");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_build_read);
    tcase_add_test(tc, test_frame);
    tcase_add_test(tc, test_parse_read);
    tcase_add_test(tc, test_decode);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return t_run_suite(make_suite()); }
