/*
 * Unit tests for the murmur2 partitioner (client/cl_misc.c).
 *
 * Vectors: Java's Utils.murmur2 as librdkafka's rdmurmur2.c unit test lists
 * them ("kafka" 0xd067cf64, "giberish123456789" 0x8f552b0c, "" 0x106e08d9),
 * and kafka-python's kafka.partitioner.default.murmur2 for the rest (written
 * down here, and recomputed from /usr/bin/python3 when kafka-python is
 * installed, over keys of every length 0..64 so every tail case is covered).
 */
#include "strata/client.h"
#include "t_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

START_TEST(test_cl_murmur2_matches_java_vectors)
{
    static const struct {
        const char *key;
        uint32_t hash;
    } v[] = {
        {"kafka", 0xd067cf64u},
        {"giberish123456789", 0x8f552b0cu},
        {"", 0x106e08d9u},
        {"a", 2731586172u},
        {"abc", 479470107u},
        {"123456789", 2472730214u},
        {"key-0", 29210041u},
        {"hello world", 1221641059u},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        ck_assert_msg(strata_murmur2(v[i].key, strlen(v[i].key)) == v[i].hash,
                      "murmur2(\"%s\") = %u, want %u", v[i].key,
                      strata_murmur2(v[i].key, strlen(v[i].key)), v[i].hash);
    ck_assert_uint_eq(strata_murmur2("\0", 1), 0x166197bcu);
}
END_TEST

START_TEST(test_cl_partition_is_to_positive_mod_n)
{
    /* "a" hashes to 0xa2d1e97c: the sign bit is set, so abs() would differ
     * from Java's toPositive (h & 0x7fffffff). */
    ck_assert_int_eq(strata_partition_murmur2("a", 1, 3), 1);
    ck_assert_int_eq(strata_partition_murmur2("a", 1, 7), 5);
    ck_assert_int_eq(strata_partition_murmur2("", 0, 3), 0);
    ck_assert_int_eq(strata_partition_murmur2("abc", 3, 7), 4);
    ck_assert_int_eq(strata_partition_murmur2("123456789", 9, 7), 1);
    ck_assert_int_eq(strata_partition_murmur2("key-0", 5, 3), 1);
    ck_assert_int_eq(strata_partition_murmur2("x", 1, 1), 0);
    ck_assert_int_eq(strata_partition_murmur2("x", 1, 0), -1);
}
END_TEST

START_TEST(test_cl_murmur2_matches_kafka_python_every_tail_length)
{
    FILE *f;
    char line[128];
    int n = 0;

    if (system("/usr/bin/python3 -c 'import kafka.partitioner.default' 2>/dev/null") != 0)
        return; /* kafka-python missing: the fixed vectors above still ran */
    f = popen("/usr/bin/python3 -c '"
              "from kafka.partitioner.default import murmur2\n"
              "for n in range(65):\n"
              "    k = bytes((i * 37 + 11) & 0xff for i in range(n))\n"
              "    print(n, murmur2(k) & 0xffffffff)'",
              "r");
    ck_assert_ptr_nonnull(f);
    while (fgets(line, sizeof line, f)) {
        unsigned len;
        unsigned long want;
        uint8_t key[64];
        ck_assert_int_eq(sscanf(line, "%u %lu", &len, &want), 2);
        for (unsigned i = 0; i < len; i++)
            key[i] = (uint8_t)((i * 37 + 11) & 0xff);
        ck_assert_msg(strata_murmur2(key, len) == (uint32_t)want, "len %u: %u vs %lu", len,
                      strata_murmur2(key, len), want);
        n++;
    }
    pclose(f);
    ck_assert_int_eq(n, 65);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("cl_partitioner");
    TCase *tc = tcase_create("murmur2");
    tcase_add_test(tc, test_cl_murmur2_matches_java_vectors);
    tcase_add_test(tc, test_cl_partition_is_to_positive_mod_n);
    tcase_add_test(tc, test_cl_murmur2_matches_kafka_python_every_tail_length);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return t_run_suite(suite()); }
