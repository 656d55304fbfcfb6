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
 * "<client id>-00000000-0000-4000-8XXX-XXXXXXXXXXXX" from a counter. */
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
    if (bk_config_override(&cfg, kv, err, sizeof err) ||
        bk_config_override(&cfg, "log.level=error", err, sizeof err))
        abort();
    sc_log_configure("error");
    /* topic "t" (2 partitions): the hand-made group frames commit to it */
    if (bk_server_new_offline(&cfg, &srv) || bk__group_start_offline(srv) ||
        bk_topics_create_ex(srv->topics, "t", 1, 2, 1, NULL, 0))
        abort();
    if (!registered++)
        atexit(cleanup);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sc_buf_t out;

    /* A fresh server every 256 inputs: the topics that fuzzed CreateTopics
     * requests leave behind would otherwise slow every later input down. */
    static unsigned runs;
    if (srv && ++runs % 256 == 0)
        cleanup();
    if (!srv)
        init();
    /* exact-size heap copy so ASan sees every overread */
    uint8_t *p = malloc(size ? size : 1);
    memcpy(p, data, size);
    sc_buf_init(&out);
    (void)bk_dispatch_frame_for_test(srv, p, size, &out);
    sc_buf_fini(&out);
    free(p);
    return 0;
}
