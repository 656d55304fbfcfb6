/* Unit tests for broker/bk_config: defaults, properties syntax, overrides,
 * error messages, listener parsing, and the docs generated from the table. */
#include "bk_config.h"
#include "bk_topic_config.h"
#include "sc_err.h"
#include "sc_mem.h"
#include "t_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef STRATA_SOURCE_DIR
#error "STRATA_SOURCE_DIR must be defined by the build"
#endif

static int load(bk_config_t *c, const char *text, char *err, size_t errlen)
{
    return bk_config_load_string(c, text, strlen(text), "test.properties", err, errlen);
}

START_TEST(test_bk_config_defaults_are_kafkas)
{
    bk_config_t c;
    char err[512];
    ck_assert_int_eq(bk_config_init(&c), 0);
    ck_assert_str_eq(c.listeners, "PLAINTEXT://127.0.0.1:9092");
    ck_assert_str_eq(c.advertised_listeners, "");
    ck_assert_int_eq(c.node_id, 0);
    ck_assert_str_eq(c.log_dirs, "./data");
    ck_assert_int_eq(c.num_partitions, 1);
    ck_assert_int_eq(c.default_replication_factor, 1);
    ck_assert_int_eq(c.auto_create_topics_enable, 1);
    ck_assert_int_eq(c.message_max_bytes, 1048588);
    ck_assert_int_eq(c.socket_request_max_bytes, 104857600);
    ck_assert(c.connections_max_idle_ms == 600000);
    ck_assert_int_eq(c.log_segment_bytes, 1073741824);
    ck_assert(c.log_roll_ms == 604800000);
    ck_assert(c.log_retention_ms == 604800000);
    ck_assert(c.log_retention_bytes == -1);
    ck_assert(c.log_retention_check_interval_ms == 300000);
    ck_assert_int_eq(c.log_index_interval_bytes, 4096);
    ck_assert_int_eq(c.log_index_size_max_bytes, 10485760);
    ck_assert(c.log_flush_interval_messages == 1);
    ck_assert(c.log_flush_interval_ms == INT64_MAX);
    ck_assert_int_eq(c.num_shards, 0);
    ck_assert_str_eq(c.admin_listener, "127.0.0.1:9644");
    ck_assert_str_eq(c.log_level, "info");
    ck_assert_int_eq(bk_config_is_set(&c, "num.partitions"), 0);
    ck_assert_int_eq(bk_config_validate(&c, err, sizeof err), 0);
    bk_config_fini(&c);
}
END_TEST

START_TEST(test_bk_config_properties_syntax)
{
    bk_config_t c;
    char err[512] = "";
    ck_assert_int_eq(bk_config_init(&c), 0);
    const char *text = "# a comment\n"
                       "   ! another comment \\\n"
                       "num.partitions = 3\n"
                       "\n"
                       "  log.retention.ms: 1000   \r\n"
                       "log.dirs=/a, \\\n"
                       "         /b ,, /c\n"
                       "auto.create.topics.enable=FALSE\n"
                       "log.level = info,net=debug\n"
                       "num.partitions=4\n" /* later wins */
                       "listeners=PLAINTEXT://:0";  /* no trailing newline */
    ck_assert_msg(load(&c, text, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(c.num_partitions, 4);
    ck_assert(c.log_retention_ms == 1000);
    ck_assert_str_eq(c.log_dirs, "/a,/b,/c");
    ck_assert_int_eq(c.auto_create_topics_enable, 0);
    ck_assert_str_eq(c.log_level, "info,net=debug");
    ck_assert_str_eq(c.listeners, "PLAINTEXT://:0");
    ck_assert_int_eq(bk_config_is_set(&c, "num.partitions"), 1);
    ck_assert_int_eq(bk_config_is_set(&c, "log.segment.bytes"), 0);
    ck_assert_int_eq(bk_config_validate(&c, err, sizeof err), 0);
    bk_config_fini(&c);
}
END_TEST

START_TEST(test_bk_config_errors_name_key_and_line)
{
    static const struct {
        const char *text;
        const char *want;
    } cases[] = {
        {"num.partitions=1\n\nlog.retention.mss=5\n", "test.properties:3: unknown key 'log.retention.mss'"},
        {"num.partitions=0\n", "test.properties:1: bad value '0' for num.partitions: out of range"},
        {"# x\nnum.partitions=abc\n", "test.properties:2: bad value 'abc' for num.partitions: not an integer"},
        {"num.partitions=\n", "test.properties:1: bad value '' for num.partitions: not an integer"},
        {"message.max.bytes=99999999999\n", "test.properties:1: bad value '99999999999' for message.max.bytes"},
        {"auto.create.topics.enable=yes\n", "test.properties:1: bad value 'yes' for auto.create.topics.enable: expected true or false"},
        {"listeners=SSL://h:1\n", "test.properties:1: bad value 'SSL://h:1' for listeners: listener 'SSL://h:1': only PLAINTEXT"},
        {"listeners=PLAINTEXT://h:99999\n", "bad host:port"},
        {"listeners=\n", "at least one listener"},
        {"log.dirs= , \n", "log.dirs: must not be empty"},
        {"log.level=loud\n", "unknown level 'loud'"},
        {"admin.listener=9644\n", "expected host:port"},
        {"just-a-word\n", "test.properties:1: expected key=value"},
        {"log.dirs=/a,\\\n/b,\\\n/c\nnode.id=x\n", "test.properties:4: bad value 'x' for node.id"},
        {"node.id=1\nbroker.id=2\n", "test.properties:2: broker.id=2 disagrees with node.id=1"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bk_config_t c;
        char err[512] = "";
        ck_assert_int_eq(bk_config_init(&c), 0);
        int rc = load(&c, cases[i].text, err, sizeof err);
        ck_assert_msg(rc == SC_ERR_BAD_CONFIG, "case %zu: rc %d", i, rc);
        ck_assert_msg(strstr(err, cases[i].want) != NULL, "case %zu: '%s' lacks '%s'", i, err,
                      cases[i].want);
        bk_config_fini(&c);
    }
    /* a failed set keeps the previous value */
    bk_config_t c;
    char err[512];
    ck_assert_int_eq(bk_config_init(&c), 0);
    ck_assert_int_ne(load(&c, "listeners=SSL://h:1\n", err, sizeof err), 0);
    ck_assert_str_eq(c.listeners, "PLAINTEXT://127.0.0.1:9092");
    ck_assert_int_eq(load(&c, "broker.id=7\nnode.id=7\n", err, sizeof err), 0);
    ck_assert_int_eq(c.node_id, 7);
    bk_config_fini(&c);
}
END_TEST

START_TEST(test_bk_config_override_and_file)
{
    char dir[PATH_MAX], path[PATH_MAX + 32], err[512] = "";
    t_tmpdir("cfg", dir);
    snprintf(path, sizeof path, "%s/server.properties", dir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("num.partitions=2\nlog.segment.bytes=2048\n", f);
    fclose(f);

    bk_config_t c;
    ck_assert_int_eq(bk_config_init(&c), 0);
    ck_assert_msg(bk_config_load_file(&c, path, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(c.num_partitions, 2);
    ck_assert_int_eq(bk_config_override(&c, "num.partitions=5", err, sizeof err), 0);
    ck_assert_int_eq(c.num_partitions, 5);
    ck_assert_int_eq(bk_config_override(&c, " log.dirs = /x ", err, sizeof err), 0);
    ck_assert_str_eq(c.log_dirs, "/x");
    ck_assert_int_eq(bk_config_override(&c, "nope=1", err, sizeof err), SC_ERR_BAD_CONFIG);
    ck_assert_str_eq(err, "--override nope=1: unknown key 'nope'");
    ck_assert_int_eq(bk_config_override(&c, "num.partitions", err, sizeof err), SC_ERR_BAD_CONFIG);
    ck_assert(strstr(err, "expected key=value"));
    snprintf(path, sizeof path, "%s/missing.properties", dir);
    ck_assert_int_lt(bk_config_load_file(&c, path, err, sizeof err), 0);
    ck_assert(strstr(err, "missing.properties"));
    bk_config_fini(&c);
    t_rm_rf(dir);
}
END_TEST

START_TEST(test_bk_config_listeners_and_validate)
{
    bk_listener_t ls[BK_LISTENERS_MAX];
    int n;
    char err[256];
    ck_assert_int_eq(bk_listeners_parse("PLAINTEXT://0.0.0.0:9092", ls, 8, &n, err, sizeof err), 0);
    ck_assert_int_eq(n, 1);
    ck_assert_str_eq(ls[0].name, "PLAINTEXT");
    ck_assert_str_eq(ls[0].host, "0.0.0.0");
    ck_assert_int_eq(ls[0].port, 9092);
    ck_assert_int_eq(bk_listeners_parse("PLAINTEXT://[::1]:1", ls, 8, &n, err, sizeof err), 0);
    ck_assert_str_eq(ls[0].host, "::1");
    ck_assert_int_eq(bk_listeners_parse("PLAINTEXT://:9", ls, 8, &n, err, sizeof err), 0);
    ck_assert_str_eq(ls[0].host, "");
    ck_assert_int_ne(bk_listeners_parse("PLAINTEXT://::1:1", ls, 8, &n, err, sizeof err), 0);
    ck_assert_int_ne(bk_listeners_parse("PLAINTEXT://h:1,PLAINTEXT://h:2", ls, 8, &n, err,
                                        sizeof err), 0);
    ck_assert(strstr(err, "used twice"));
    ck_assert_int_ne(bk_listeners_parse("h:1", ls, 8, &n, err, sizeof err), 0);

    bk_config_t c;
    ck_assert_int_eq(bk_config_init(&c), 0);
    ck_assert_int_eq(load(&c, "default.replication.factor=3\n", err, sizeof err), 0);
    ck_assert_int_eq(bk_config_validate(&c, err, sizeof err), SC_ERR_BAD_CONFIG);
    ck_assert(strstr(err, "default.replication.factor"));
    bk_config_fini(&c);
}
END_TEST

START_TEST(test_bk_config_example_file_lists_every_key_and_parses)
{
    char err[512] = "";
    bk_config_t c;
    ck_assert_int_eq(bk_config_init(&c), 0);
    ck_assert_msg(bk_config_load_file(&c, STRATA_SOURCE_DIR "/config/server.properties", err,
                                      sizeof err) == 0,
                  "%s", err);
    ck_assert_int_eq(bk_config_validate(&c, err, sizeof err), 0);
    bk_config_fini(&c);

    /* every key appears (commented or not) in the example */
    FILE *f = fopen(STRATA_SOURCE_DIR "/config/server.properties", "r");
    ck_assert_ptr_nonnull(f);
    static char text[65536];
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = 0;
    fclose(f);
    size_t nk;
    const bk_cfg_key_t *keys = bk_config_keys(&nk);
    for (size_t i = 0; i < nk; i++) {
        char pat[128];
        snprintf(pat, sizeof pat, "%s=", keys[i].name);
        ck_assert_msg(strstr(text, pat), "config/server.properties lacks %s", keys[i].name);
    }
}
END_TEST

START_TEST(test_bk_config_docs_match_table)
{
    char *gen = NULL;
    size_t genlen = 0;
    FILE *m = open_memstream(&gen, &genlen);
    ck_assert_int_eq(bk_config_print_markdown(m), 0);
    fclose(m);

    FILE *f = fopen(STRATA_SOURCE_DIR "/docs/configuration.md", "r");
    ck_assert_msg(f != NULL, "docs/configuration.md missing");
    static char doc[65536];
    size_t n = fread(doc, 1, sizeof doc - 1, f);
    doc[n] = 0;
    fclose(f);
    ck_assert_msg(n == genlen && memcmp(doc, gen, n) == 0,
                  "docs/configuration.md is stale: regenerate with "
                  "build/bin/stratad --config-markdown > docs/configuration.md");
    free(gen);

    /* every default in the table parses under its own rules */
    size_t nk;
    const bk_cfg_key_t *keys = bk_config_keys(&nk);
    bk_config_t c;
    ck_assert_int_eq(bk_config_init(&c), 0);
    for (size_t i = 0; i < nk; i++) {
        char err[256];
        if (keys[i].alias_of)
            continue;
        ck_assert_msg(bk_config_set(&c, keys[i].name, keys[i].def, err, sizeof err) == 0, "%s",
                      err);
    }
    bk_config_fini(&c);
}
END_TEST

START_TEST(test_bk_config_survives_allocation_failure)
{
    for (long nth = 1; nth < 40; nth++) {
        bk_config_t c;
        char err[512];
        sc_mem_fail_after(nth, 1);
        int rc = bk_config_init(&c);
        if (rc == 0) {
            rc = load(&c, "log.dirs=/a,/b\nlisteners=PLAINTEXT://:1\n", err, sizeof err);
            bk_config_fini(&c);
        }
        sc_mem_fail_after(0, 0);
        ck_assert(rc == 0 || rc == SC_ERR_NO_MEMORY);
    }
}
END_TEST

/* Every topic key defaults from a real broker key whose default passes the
 * topic key's own check; values are checked as Kafka's LogConfig does. */
START_TEST(test_bk_topic_config_table_and_checks)
{
    size_t n;
    const bk_topic_key_t *k = bk_topic_config_keys(&n);
    bk_config_t c;
    char why[256], buf[256];
    ck_assert_int_eq(n, 17);
    ck_assert_int_eq(bk_config_init(&c), 0);
    for (size_t i = 0; i < n; i++) {
        ck_assert_msg(bk_config_value_str(&c, k[i].broker_key, buf, sizeof buf) == 0, "%s",
                      k[i].broker_key);
        ck_assert_msg(bk_topic_config_check(k[i].name, buf, why, sizeof why) == 0, "%s=%s: %s",
                      k[i].name, buf, why);
        ck_assert_int_eq(bk_topic_config_default(&c, &k[i], buf, sizeof buf),
                         BK_CFG_SOURCE_DEFAULT);
    }
    ck_assert_int_eq(bk_config_set(&c, "log.retention.ms", "5", why, sizeof why), 0);
    ck_assert_int_eq(bk_topic_config_default(&c, bk_topic_config_find("retention.ms"), buf,
                                             sizeof buf),
                     BK_CFG_SOURCE_STATIC_BROKER);
    ck_assert_str_eq(buf, "5");
    ck_assert_int_ne(bk_config_set(&c, "log.cleanup.policy", "shred", why, sizeof why), 0);
    ck_assert_int_eq(bk_config_set(&c, "log.cleanup.policy", "compact, delete", why, sizeof why), 0);
    bk_config_fini(&c);

    const char *good[][2] = {{"cleanup.policy", "compact"},   {"cleanup.policy", "delete,compact"},
                             {"retention.ms", "-1"},          {"retention.bytes", "0"},
                             {"segment.bytes", "14"},         {"segment.ms", "1"},
                             {"flush.ms", "0"},               {"compression.type", "zstd"},
                             {"message.timestamp.type", "LogAppendTime"},
                             {"min.insync.replicas", "2"},    {"max.message.bytes", "0"},
                             {"unclean.leader.election.enable", "true"}};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        ck_assert_msg(bk_topic_config_check(good[i][0], good[i][1], why, sizeof why) == 0,
                      "%s=%s: %s", good[i][0], good[i][1], why);
    const char *bad[][2] = {{"cleanup.policy", ""},        {"cleanup.policy", "compact,"},
                            {"retention.ms", "-2"},        {"retention.ms", "1s"},
                            {"retention.ms", " 1"},        {"segment.bytes", "13"},
                            {"segment.bytes", "2147483648"}, {"segment.ms", "0"},
                            {"flush.messages", "0"},       {"compression.type", "ZSTD"},
                            {"message.timestamp.type", "createtime"},
                            {"min.insync.replicas", "0"},  {"no.such.key", "1"},
                            {"log.retention.ms", "1"},
                            {"unclean.leader.election.enable", "yes"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(bk_topic_config_check(bad[i][0], bad[i][1], why, sizeof why) ==
                          SC_ERR_INVALID_CONFIG,
                      "%s=%s accepted", bad[i][0], bad[i][1]);
    ck_assert_int_eq(bk_topic_config_check("retention.ms", NULL, why, sizeof why),
                     SC_ERR_INVALID_CONFIG);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("bk_config");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_bk_config_defaults_are_kafkas);
    tcase_add_test(tc, test_bk_config_properties_syntax);
    tcase_add_test(tc, test_bk_config_errors_name_key_and_line);
    tcase_add_test(tc, test_bk_config_override_and_file);
    tcase_add_test(tc, test_bk_config_listeners_and_validate);
    tcase_add_test(tc, test_bk_config_example_file_lists_every_key_and_parses);
    tcase_add_test(tc, test_bk_config_docs_match_table);
    tcase_add_test(tc, test_bk_config_survives_allocation_failure);
    tcase_add_test(tc, test_bk_topic_config_table_and_checks);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return t_run_suite(suite()); }
