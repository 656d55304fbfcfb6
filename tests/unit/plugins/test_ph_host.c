/*
 * test_ph_host -- the plugin host without the broker: this test is the sink
 * (it takes queued records and reports them durable itself). Loads the
 * fixtures built into ABI_DIR (tests/abi/CMakeLists.txt): testsrc, abi_old
 * (built against the frozen ABI 1.0 header), the refused abi_bad_* and
 * abi_noentry.
 */
/* test paths are short; silence the size-bound analysis */
#pragma GCC diagnostic ignored "-Wformat-truncation"
#include "ph_host.h"
#include "sc_err.h"
#include "strata/plugin.h"
#include "t_util.h"
#include "telemetry.pb-c.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifndef ABI_DIR
#error ABI_DIR
#endif

static char tmp[PATH_MAX], pdir[PATH_MAX + 16], sdir[PATH_MAX + 16];
static char err[1024];

static void setup(void)
{
    t_tmpdir("ph", tmp);
    snprintf(pdir, sizeof pdir, "%s/plugins", tmp);
    snprintf(sdir, sizeof sdir, "%s/state", tmp);
    ck_assert_int_eq(mkdir(pdir, 0755), 0);
    chmod(pdir, 0755);
    err[0] = 0;
}

static void teardown(void) { t_rm_rf(tmp); }

static void copy_lib(const char *name)
{
    char src[PATH_MAX], dst[PATH_MAX + 80], cmd[4 * PATH_MAX + 256];
    snprintf(src, sizeof src, "%s/%s.so", ABI_DIR, name);
    snprintf(dst, sizeof dst, "%s/%s.so", pdir, name);
    snprintf(cmd, sizeof cmd, "cp '%s' '%s' && chmod 0644 '%s'", src, dst, dst);
    ck_assert_int_eq(system(cmd), 0);
}

static int host_new(const char *insts, const char *const *kv, size_t nkv, ph_host_t **h)
{
    const char *keys[32], *vals[32];
    for (size_t i = 0; i < nkv; i++) {
        keys[i] = kv[2 * i];
        vals[i] = kv[2 * i + 1];
    }
    ph_config_t c = {.plugin_dir = pdir, .instances = insts, .state_dir = sdir,
                     .keys = keys, .values = vals, .nkv = nkv};
    return ph_host_new(&c, NULL, h, err, sizeof err);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Takes records until n were seen (bounded wait); each is reported done
 * (rc) and its value / source offset header collected. */
typedef struct {
    int n;
    char values[64][256];
    long long src_off[64];
} got_t;

static void take(ph_host_t *h, got_t *g, int want, int rc)
{
    for (int spin = 0; spin < 2000 && g->n < want; spin++) {
        ph_rec_t *r = ph_host_take(h);
        if (!r) {
            sleep_ms(5);
            continue;
        }
        while (r) {
            ph_rec_t *next = r->next;
            if (g->n < 64) {
                size_t l = r->value_len > 255 ? 255 : (size_t)r->value_len;
                memcpy(g->values[g->n], r->value, l);
                g->values[g->n][l] = 0;
                g->src_off[g->n] = -1;
                for (int i = 0; i < r->nheaders; i++)
                    if (strcmp(r->headers[i].key, "strata.source.offset") == 0) {
                        char b[32] = {0};
                        memcpy(b, r->headers[i].value,
                               r->headers[i].value_len < 31 ? r->headers[i].value_len : 31);
                        g->src_off[g->n] = atoll(b);
                    }
            }
            g->n++;
            ph_rec_done(r, rc, NULL);
            r = next;
        }
    }
    ck_assert_int_ge(g->n, want);
}

static int read_file(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, cap - 1, f);
    buf[n] = 0;
    fclose(f);
    return (int)n;
}

/* Waits (bounded) until file path contains needle. */
static int wait_file_has(const char *path, const char *needle)
{
    char buf[16384];
    for (int i = 0; i < 1000; i++) {
        if (read_file(path, buf, sizeof buf) >= 0 && strstr(buf, needle))
            return 1;
        sleep_ms(5);
    }
    return 0;
}

/* Writes status and checks it contains needle (bounded wait). */
static int wait_status_has(ph_host_t *h, const char *needle)
{
    char path[PATH_MAX + 16], buf[16384];
    snprintf(path, sizeof path, "%s/status.json", tmp);
    for (int i = 0; i < 1000; i++) {
        ck_assert_int_eq(ph_host_write_status(h, path), 0);
        if (read_file(path, buf, sizeof buf) >= 0 && strstr(buf, needle))
            return 1;
        sleep_ms(5);
    }
    printf("status: %s\n", buf);
    return 0;
}

START_TEST(test_run_commit_restart)
{
    copy_lib("testsrc");
    const char *kv[] = {"plugin.a.library", "testsrc.so", "plugin.a.topic", "t",
                        "plugin.a.records", "10", "plugin.a.interval.ms", "1"};
    ph_host_t *h;
    ck_assert_msg(host_new("a", kv, 4, &h) == 0, "%s", err);
    ck_assert_int_eq(ph_host_start(h), 0);
    got_t g = {0};
    take(h, &g, 10, 0);
    ck_assert_ptr_nonnull(strstr(g.values[0], "\"device_id\":\"dev1\""));
    ck_assert_ptr_nonnull(strstr(g.values[0], "\"value\":0,"));
    for (int i = 0; i < 10; i++)
        ck_assert_int_eq(g.src_off[i], i);
    char path[PATH_MAX + 32];
    /* committed() saw 9 (kv written by the plugin), the checkpoint holds 9 */
    snprintf(path, sizeof path, "%s/a/kv/committed", sdir);
    ck_assert(wait_file_has(path, "9"));
    snprintf(path, sizeof path, "%s/a/offsets", sdir);
    ck_assert(wait_file_has(path, "9\tsp0\n"));
    ck_assert(wait_status_has(h, "\"records_durable\":10"));
    ck_assert(wait_status_has(h, "\"testsrc.sent\":10"));
    ck_assert(wait_status_has(h, "\"details\":{\"sent\":10"));
    ck_assert(wait_status_has(h, "\"source_offsets\":{\"sp0\":9}"));
    ph_host_stop(h);
    ph_host_free(h);

    /* a new host (a broker restart) hands 9 back: the plugin goes on at 10 */
    ck_assert_msg(host_new("a", kv, 4, &h) == 0, "%s", err);
    ph_host_start(h);
    got_t g2 = {0};
    take(h, &g2, 3, 0);
    ck_assert_int_eq(g2.src_off[0], 10);
    ck_assert_int_eq(g2.src_off[2], 12);
    ph_host_stop(h);
    ph_host_free(h);
}
END_TEST

START_TEST(test_failed_append_does_not_commit)
{
    copy_lib("testsrc");
    const char *kv[] = {"plugin.a.library", "testsrc.so", "plugin.a.topic", "t",
                        "plugin.a.records", "3", "plugin.a.interval.ms", "1"};
    ph_host_t *h;
    ck_assert_msg(host_new("a", kv, 4, &h) == 0, "%s", err);
    ph_host_start(h);
    got_t g = {0};
    take(h, &g, 3, SC_ERR_UNKNOWN_TOPIC_OR_PARTITION);
    ck_assert(wait_status_has(h, "\"append_errors\":3"));
    ck_assert(wait_status_has(h, "append to t failed"));
    ph_host_stop(h);
    ph_host_free(h);
    char path[PATH_MAX + 32], buf[256];
    snprintf(path, sizeof path, "%s/a/offsets", sdir);
    ck_assert_int_le(read_file(path, buf, sizeof buf), 0); /* nothing committed */
}
END_TEST

static void expect_err(const char *insts, const char *const *kv, size_t n, const char *needle)
{
    ph_host_t *h = NULL;
    int rc = host_new(insts, kv, n, &h);
    ck_assert_int_ne(rc, 0);
    ck_assert_msg(strstr(err, needle), "error '%s' lacks '%s'", err, needle);
}

START_TEST(test_config_errors)
{
    copy_lib("testsrc");
    {
        const char *kv[] = {"plugin.a.library", "testsrc.so", "plugin.a.topic", "t",
                            "plugin.a.bogus", "1"};
        expect_err("a", kv, 3, "plugin instance 'a': unknown key 'bogus'");
    }
    {
        const char *kv[] = {"plugin.a.library", "testsrc.so", "plugin.a.topic", "t",
                            "plugin.a.interval.ms", "0"};
        expect_err("a", kv, 3, "plugin instance 'a': key 'interval.ms': 0 is out of range");
    }
    {
        const char *kv[] = {"plugin.a.library", "testsrc.so", "plugin.a.topic", "t",
                            "plugin.a.mode", "fast"};
        expect_err("a", kv, 3, "key 'mode': 'fast' is not one of point|raw");
    }
    {
        const char *kv[] = {"plugin.a.library", "testsrc.so", "plugin.a.topic", "t",
                            "plugin.a.fail.start", "yes"};
        expect_err("a", kv, 3, "key 'fail.start': 'yes' is not true or false");
    }
    {
        const char *kv[] = {"plugin.a.topic", "t"};
        expect_err("a", kv, 1, "plugin instance 'a': missing required key 'plugin.a.library'");
    }
    {
        const char *kv[] = {"plugin.a.library", "testsrc.so"};
        expect_err("a", kv, 1, "plugin instance 'a': missing required key 'plugin.a.topic'");
    }
    {
        const char *kv[] = {"plugin.a.library", "testsrc.so", "plugin.a.topic", "t",
                            "plugin.b.topic", "t"};
        expect_err("a", kv, 3, "key 'plugin.b.topic': instance 'b' is not listed in plugins");
    }
    {
        const char *kv[] = {"plugin.a.library", "testsrc.so", "plugin.a.topic", "t",
                            "plugin.a.source.partition", ""};
        expect_err("a", kv, 3, "plugin instance 'a': key 'source.partition': must not be empty");
    }
    {
        const char *kv[] = {"plugin.a.library", "nope.so", "plugin.a.topic", "t"};
        expect_err("a", kv, 2, "plugin instance 'a': key 'library': library");
    }
    {
        const char *kv[] = {"plugin.a.library", "../testsrc.so", "plugin.a.topic", "t"};
        expect_err("a", kv, 2, "must be a file name inside plugin.dir");
    }
    {
        const char *kv[] = {"plugin.a.library", "testsrc.so", "plugin.a.topic", "t",
                            "plugin.a.memory.bytes", "12x"};
        expect_err("a", kv, 3, "plugin instance 'a': key 'memory.bytes'");
    }
    {
        const char *kv[] = {"plugin.a.library", "testsrc.so", "plugin.a.topic", "t",
                            "plugin.a.format", "xml"};
        expect_err("a", kv, 3, "key 'format': 'xml' is not json or protobuf");
    }
    /* config.file: keys from a file, server.properties wins, errors name file:line */
    char cf[PATH_MAX + 16];
    snprintf(cf, sizeof cf, "%s/a.properties", tmp);
    FILE *f = fopen(cf, "w");
    fprintf(f, "# instance a\nrecords = 2\ninterval.ms=5\nmode=raw\n");
    fclose(f);
    {
        const char *kv[] = {"plugin.a.library", "testsrc.so", "plugin.a.topic", "t",
                            "plugin.a.config.file", cf, "plugin.a.mode", "point"};
        ph_host_t *h;
        ck_assert_msg(host_new("a", kv, 4, &h) == 0, "%s", err);
        ph_host_start(h);
        got_t g = {0};
        take(h, &g, 2, 0);
        ck_assert_ptr_nonnull(strstr(g.values[0], "\"point\":\"counter\"")); /* mode=point won */
        ph_host_stop(h);
        ph_host_free(h);
    }
    f = fopen(cf, "w");
    fprintf(f, "records=2\nthis line is wrong\n");
    fclose(f);
    {
        const char *kv[] = {"plugin.a.library", "testsrc.so", "plugin.a.topic", "t",
                            "plugin.a.config.file", cf};
        expect_err("a", kv, 3, "a.properties:2: expected key=value");
    }
}
END_TEST

START_TEST(test_permissions)
{
    copy_lib("testsrc");
    const char *kv[] = {"plugin.a.library", "testsrc.so", "plugin.a.topic", "t"};
    ck_assert_int_eq(chmod(pdir, 0777), 0);
    expect_err("a", kv, 2, "is world-writable; refusing");
    ck_assert_int_eq(chmod(pdir, 0755), 0);
    char lib[PATH_MAX + 16];
    snprintf(lib, sizeof lib, "%s/testsrc.so", pdir);
    ck_assert_int_eq(chmod(lib, 0666), 0);
    expect_err("a", kv, 2, "testsrc.so is world-writable; refusing");
    ck_assert_int_eq(chmod(lib, 0644), 0);
    /* a symlink inside plugin.dir pointing elsewhere is not followed */
    char ln[PATH_MAX + 16], src[PATH_MAX];
    snprintf(ln, sizeof ln, "%s/link.so", pdir);
    snprintf(src, sizeof src, "%s/testsrc.so", ABI_DIR);
    ck_assert_int_eq(symlink(src, ln), 0);
    const char *kv2[] = {"plugin.a.library", "link.so", "plugin.a.topic", "t"};
    expect_err("a", kv2, 2, "link.so");
    ph_host_t *h;
    ck_assert_msg(host_new("a", kv, 2, &h) == 0, "%s", err);
    ph_host_free(h);
}
END_TEST

START_TEST(test_abi)
{
    copy_lib("abi_old");
    copy_lib("abi_bad_major");
    copy_lib("abi_bad_cap");
    copy_lib("abi_bad_minor");
    copy_lib("abi_noentry");
    {
        const char *kv[] = {"plugin.o.library", "abi_old.so", "plugin.o.topic", "t",
                            "plugin.o.records", "3"};
        ph_host_t *h;
        ck_assert_msg(host_new("o", kv, 3, &h) == 0, "%s", err);
        ph_host_start(h);
        got_t g = {0};
        take(h, &g, 3, 0);
        ck_assert_ptr_nonnull(strstr(g.values[2], "\"device_id\":\"old-device\""));
        ck_assert_ptr_nonnull(strstr(g.values[2], "\"value\":1,")); /* 0.5 * 2 */
        ck_assert(wait_status_has(h, "\"abi\":\"1.0\""));
        ck_assert(wait_status_has(h, "\"source_offsets\":{\"old\":2}"));
        ph_host_stop(h);
        ph_host_free(h);
    }
    const char *kv[] = {"plugin.x.library", "abi_bad_major.so", "plugin.x.topic", "t"};
    expect_err("x", kv, 2, "plugin ABI 2.1, host ABI 1.1: major version differs; refusing it");
    kv[1] = "abi_bad_cap.so";
    expect_err("x", kv, 2, "requires host capabilities 0x10000000000 that this host lacks");
    kv[1] = "abi_bad_minor.so";
    expect_err("x", kv, 2, "plugin ABI 1.2 is newer than host ABI 1.1");
    kv[1] = "abi_noentry.so";
    expect_err("x", kv, 2, "no strata_plugin_entry_v1 symbol");
}
END_TEST

START_TEST(test_restart_backoff)
{
    copy_lib("testsrc");
    const char *kv[] = {"plugin.a.library", "testsrc.so", "plugin.a.topic", "t",
                        "plugin.a.fail.start", "true", "plugin.a.restart.backoff.ms", "5",
                        "plugin.a.restart.backoff.max.ms", "20",
                        "plugin.b.library", "testsrc.so", "plugin.b.topic", "t",
                        "plugin.b.fail.after", "2", "plugin.b.records", "0",
                        "plugin.b.interval.ms", "1", "plugin.b.restart.backoff.ms", "5"};
    ph_host_t *h;
    ck_assert_msg(host_new("a,b", kv, 10, &h) == 0, "%s", err);
    ph_host_start(h);
    got_t g = {0};
    take(h, &g, 6, 0); /* b keeps producing across its restarts */
    ck_assert(wait_status_has(h, "\"restarts\":3"));
    ck_assert(wait_status_has(h, "start failed"));
    ck_assert(wait_status_has(h, "plugin reported failure: fail.after reached"));
    /* b's restarts continue its source offsets from what was committed */
    for (int i = 1; i < g.n && i < 64; i++)
        ck_assert_int_gt(g.src_off[i], g.src_off[i - 1] - 1);
    ph_host_stop(h);
    ph_host_free(h);
}
END_TEST

START_TEST(test_stop_blocks)
{
    copy_lib("testsrc");
    const char *kv[] = {"plugin.a.library", "testsrc.so", "plugin.a.topic", "t",
                        "plugin.a.block.stop.ms", "5000", "plugin.a.stop.timeout.ms", "100"};
    ph_host_t *h;
    ck_assert_msg(host_new("a", kv, 4, &h) == 0, "%s", err);
    ph_host_start(h);
    ck_assert(wait_status_has(h, "\"state\":\"running\""));
    ph_host_stop(h); /* returns after ~100 ms, not 5 s */
    ck_assert(wait_status_has(h, "thread abandoned"));
    ck_assert(wait_status_has(h, "\"state\":\"failed\""));
    ph_host_free(h);
}
END_TEST

START_TEST(test_memory_budget)
{
    copy_lib("testsrc");
    const char *kv[] = {"plugin.a.library", "testsrc.so", "plugin.a.topic", "t",
                        "plugin.a.memory.bytes", "4096", "plugin.a.records", "200",
                        "plugin.a.interval.ms", "1"};
    ph_host_t *h;
    ck_assert_msg(host_new("a", kv, 5, &h) == 0, "%s", err);
    ph_host_start(h);
    /* nobody takes: the budget fills, produce answers EAGAIN, the host pauses it */
    ck_assert(wait_status_has(h, "\"eagain\":1"));
    ck_assert(wait_status_has(h, "\"paused\":true,\"pauses\":1"));
    ck_assert(wait_status_has(h, "\"pauses\":1}")); /* the plugin's pause op ran */
    got_t g = {0};
    take(h, &g, 60, 0); /* draining frees budget: the source resumes, nothing skipped */
    for (int i = 0; i < 60; i++)
        ck_assert_int_eq(g.src_off[i], i);
    /* 60 records are several budgets' worth: the host resumed it each time the
     * queue drained below half of memory.bytes */
    ph_host_stop(h);
    ph_host_free(h);
}
END_TEST

/* Ed25519: key pair, sign a file, verify through the host. */
static void sign_file(EVP_PKEY *k, const char *path, const char *sigpath)
{
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *d = malloc((size_t)n);
    ck_assert_int_eq(fread(d, 1, (size_t)n, f), n);
    fclose(f);
    unsigned char sig[64];
    size_t sl = sizeof sig;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    ck_assert_int_eq(EVP_DigestSignInit(md, NULL, NULL, NULL, k), 1);
    ck_assert_int_eq(EVP_DigestSign(md, sig, &sl, d, (size_t)n), 1);
    EVP_MD_CTX_free(md);
    free(d);
    f = fopen(sigpath, "wb");
    fwrite(sig, 1, sl, f);
    fclose(f);
}

START_TEST(test_signature)
{
    copy_lib("testsrc");
    EVP_PKEY *k = NULL, *other = NULL;
    EVP_PKEY_CTX *kc = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, NULL);
    ck_assert_int_eq(EVP_PKEY_keygen_init(kc), 1);
    ck_assert_int_eq(EVP_PKEY_keygen(kc, &k), 1);
    ck_assert_int_eq(EVP_PKEY_keygen(kc, &other), 1);
    EVP_PKEY_CTX_free(kc);
    char pub[PATH_MAX + 16], lib[PATH_MAX + 16], sig[PATH_MAX + 32];
    snprintf(pub, sizeof pub, "%s/pub.pem", tmp);
    snprintf(lib, sizeof lib, "%s/testsrc.so", pdir);
    snprintf(sig, sizeof sig, "%s/testsrc.so.sig", pdir);
    FILE *f = fopen(pub, "w");
    ck_assert_int_eq(PEM_write_PUBKEY(f, k), 1);
    fclose(f);
    const char *keys[] = {"plugin.a.library", "plugin.a.topic"};
    const char *vals[] = {"testsrc.so", "t"};
    ph_config_t c = {.plugin_dir = pdir, .instances = "a", .state_dir = sdir, .keys = keys,
                     .values = vals, .nkv = 2, .signature_required = 1, .signature_key = pub};
    ph_host_t *h = NULL;
    /* unsigned */
    ck_assert_int_ne(ph_host_new(&c, NULL, &h, err, sizeof err), 0);
    ck_assert_msg(strstr(err, "testsrc.so.sig cannot be read"), "%s", err);
    /* signed by another key */
    sign_file(other, lib, sig);
    ck_assert_int_ne(ph_host_new(&c, NULL, &h, err, sizeof err), 0);
    ck_assert_msg(strstr(err, "does not verify"), "%s", err);
    /* signed, then the library changed */
    sign_file(k, lib, sig);
    f = fopen(lib, "ab");
    fputc(0, f);
    fclose(f);
    ck_assert_int_ne(ph_host_new(&c, NULL, &h, err, sizeof err), 0);
    ck_assert_msg(strstr(err, "does not verify"), "%s", err);
    /* signed by the right key */
    sign_file(k, lib, sig);
    ck_assert_msg(ph_host_new(&c, NULL, &h, err, sizeof err) == 0, "%s", err);
    ph_host_free(h);
    /* no key configured */
    c.signature_key = "";
    ck_assert_int_ne(ph_host_new(&c, NULL, &h, err, sizeof err), 0);
    ck_assert_msg(strstr(err, "needs plugin.signature.public.key"), "%s", err);
    EVP_PKEY_free(k);
    EVP_PKEY_free(other);
}
END_TEST

START_TEST(test_point_encoding)
{
    strata_point_t pt = {.struct_size = sizeof pt, .type = STRATA_VALUE_DOUBLE,
                         .device_id = "plc\"1", .point = "temp", .v_double = 21.5,
                         .quality = STRATA_QUALITY_BAD, .unit = "degC",
                         .status = "exception 2: illegal data address"};
    size_t len;
    uint8_t *j = ph_point_encode(&pt, 1700000000123, 0, &len);
    ck_assert_str_eq((char *)j,
                     "{\"device_id\":\"plc\\\"1\",\"point\":\"temp\",\"timestamp_ms\":1700000000123,"
                     "\"value\":21.5,\"quality\":\"BAD\",\"unit\":\"degC\",\"status\":\"exception 2: "
                     "illegal data address\"}");
    free(j);
    uint8_t *p = ph_point_encode(&pt, 1700000000123, 1, &len);
    Strata__Telemetry__Point *m = strata__telemetry__point__unpack(NULL, len, p);
    ck_assert_ptr_nonnull(m);
    ck_assert_str_eq(m->device_id, "plc\"1");
    ck_assert_str_eq(m->point, "temp");
    ck_assert_int_eq(m->timestamp_ms, 1700000000123);
    ck_assert_int_eq(m->value_case, STRATA__TELEMETRY__POINT__VALUE_DOUBLE_VALUE);
    ck_assert(m->double_value == 21.5);
    ck_assert_int_eq(m->quality, STRATA__TELEMETRY__QUALITY__BAD);
    ck_assert_str_eq(m->unit, "degC");
    strata__telemetry__point__free_unpacked(m, NULL);
    free(p);
    pt.type = STRATA_VALUE_BYTES;
    pt.v_bytes = "\x01\x02\xff";
    pt.v_bytes_len = 3;
    j = ph_point_encode(&pt, 1, 0, &len);
    ck_assert_ptr_nonnull(strstr((char *)j, "\"value\":\"AQL/\""));
    free(j);
    pt.type = STRATA_VALUE_INT;
    pt.v_int = -9007199254740993LL;
    j = ph_point_encode(&pt, 1, 0, &len);
    ck_assert_ptr_nonnull(strstr((char *)j, "\"value\":-9007199254740993,"));
    free(j);
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("ph_host");
    TCase *tc = tcase_create("host");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_run_commit_restart);
    tcase_add_test(tc, test_failed_append_does_not_commit);
    tcase_add_test(tc, test_config_errors);
    tcase_add_test(tc, test_permissions);
    tcase_add_test(tc, test_abi);
    tcase_add_test(tc, test_restart_backoff);
    tcase_add_test(tc, test_stop_blocks);
    tcase_add_test(tc, test_memory_budget);
    tcase_add_test(tc, test_signature);
    tcase_add_test(tc, test_point_encoding);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return t_run_suite(make_suite()); }
