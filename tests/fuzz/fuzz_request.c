/* libFuzzer target: the Kafka request decoder and dispatcher. Each input is
 * one frame body (header + request, without the int32 size prefix) run
 * through exactly the dispatcher a connection uses, on an offline server
 * (real handlers, real metadata store in a temp dir; no sockets). Must never
 * crash, hang, leak or read out of bounds; a malformed frame gets an error
 * return (the connection would be closed), never an assert.
 * The seed corpus is frames captured from kcat and kafka-python talking to
 * stratad (every API they use), plus hand-made group frames (static
 * membership, DeleteGroups, OffsetDelete).
 *
 * The group coordinator runs offline (bk__group_start_offline): no
 * __consumer_offsets log, commits and tombstones take effect at once, and
 * requests are handled without a response slot, so JoinGroup / SyncGroup /
 * OffsetCommit / DeleteGroups / OffsetDelete reach the state machine and the
 * offsets cache, and group state carries over between inputs until the
 * server is recreated (every 256 inputs); topic "t" (2 partitions) exists
 * from the start so that commits in the corpus are accepted. Member ids are
 * "<client id>-00000000-0000-4000-8XXX-XXXXXXXXXXXX" from a counter, and
 * group.initial.rebalance.delay.ms is 0. An input starting with 0xFF is a
 * script of several frames on a fresh coordinator (run_script). */
#include "bk_config.h"
#include "bk_int.h"
#include "bk_server.h"
#include "sc_buf.h"
#include "sc_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bk_config_t cfg;
static bk_server_t *srv;
static char dir[4096];

static void cleanup(void)
{
    char cmd[4200];
    if (!srv)
        return;
    bk_server_free(srv);
    bk_config_fini(&cfg);
    srv = NULL;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "fuzz_request: could not remove %s\n", dir);
}

static void init(void)
{
    static int registered;
    char err[512], kv[4200];
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/strata-fuzzreq-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir) || bk_config_init(&cfg))
        abort();
    snprintf(kv, sizeof kv, "log.dirs=%s", dir);
    /* no initial rebalance delay: without a timer a delayed join phase would
     * only end at a later JoinGroup */
    if (bk_config_override(&cfg, kv, err, sizeof err) ||
        bk_config_override(&cfg, "log.level=error", err, sizeof err) ||
        bk_config_override(&cfg, "group.initial.rebalance.delay.ms=0", err, sizeof err))
        abort();
    sc_log_configure("error");
    /* topic "t" (2 partitions): the hand-made group frames commit to it */
    if (bk_server_new_offline(&cfg, &srv) || bk__group_start_offline(srv) ||
        bk_topics_create_ex(srv->topics, "t", 1, 2, 1, NULL, 0))
        abort();
    if (!registered++)
        atexit(cleanup);
}

/* One frame body through the dispatcher, from an exact-size heap copy so
 * ASan sees every overread. */
static void dispatch(const uint8_t *data, size_t size)
{
    sc_buf_t out;
    uint8_t *p = malloc(size ? size : 1);
    memcpy(p, data, size);
    sc_buf_init(&out);
    (void)bk_dispatch_frame_for_test(srv, p, size, &out);
    sc_buf_fini(&out);
    free(p);
}

/* A script (input starting with 0xFF, never a valid api key byte in a frame
 * the broker accepts): a fresh offline coordinator, then up to 64 frames,
 * each [uint16 big-endian size][frame body], run in order. Member ids then
 * start from 1 again, so a script can name the members it created and walk
 * a group through Join -> Sync -> Stable -> static rejoin -> ... */
static void run_script(const uint8_t *p, size_t n)
{
    bk__group_free(srv);
    if (bk__group_init(srv) || bk__group_start_offline(srv))
        abort();
    for (int i = 0; i < 64 && n >= 2; i++) {
        size_t len = (size_t)p[0] << 8 | p[1];
        p += 2;
        n -= 2;
        if (len > n)
            len = n;
        dispatch(p, len);
        p += len;
        n -= len;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{

    /* A fresh server every 256 inputs: the topics that fuzzed CreateTopics
     * requests leave behind would otherwise slow every later input down. */
    static unsigned runs;
    if (srv && ++runs % 256 == 0)
        cleanup();
    if (!srv)
        init();
    if (size > 0 && data[0] == 0xFF)
        run_script(data + 1, size - 1);
    else
        dispatch(data, size);
    return 0;
}
