/*
 * cl_group -- the libstrata group-consumer side of test_libstrata_group.py:
 * subscribes to one topic in a group and polls, driven by commands on stdin,
 * reporting on stdout (one line each, flushed).
 *
 *   cl_group -b HOST:PORT -g GROUP -t TOPIC [-R] [-S OFFSET] [-X key=value]...
 *
 * -R: the revoke callback commits the positions with commit_async (the
 *     manual-commit pattern the header documents); -S: the assign callback
 *     seeks every partition to OFFSET ("beginning" or a number), overriding
 *     the committed offset.
 *
 * Commands (stdin, one per line):
 *   pause | resume        stop / start calling strata_consumer_poll
 *   commit                strata_consumer_commit(NULL): the positions   -> COMMIT <rc>
 *   commit <part> <off>   commit one offset explicitly                  -> COMMIT <rc> <part err>
 *   async                 strata_consumer_commit_async(NULL) -> ACB <err> <count> (callback)
 *   pos                   POS <part> <position> per assigned partition, then POS end
 *   close                 strata_consumer_close(15000) -> CLOSED <rc>, then free and exit 0
 *   exit                  strata_consumer_free without close, exit 0
 * Output:
 *   READY                 subscribed
 *   ASSIGN <p>...         rebalance callback (I/O thread): partitions now ours
 *   REVOKE <p>...         ... being taken away
 *   R <part> <offset> <value>
 *   E <part> <offset> <err>
 * Exit 2 on bad usage or configuration.
 */
#include "strata/client.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int revoke_commit;
static int64_t assign_seek = STRATA_OFFSET_INVALID;

static void on_commit(strata_consumer_t *c, strata_err_t err,
                      const strata_topic_partition_t *offsets, size_t count, void *arg);

static void on_rebalance(strata_consumer_t *c, strata_rebalance_t ev,
                         const strata_topic_partition_t *tps, size_t n, void *arg)
{
    char line[4096];
    size_t l;

    (void)arg;
    l = (size_t)snprintf(line, sizeof line, "%s",
                         ev == STRATA_REBALANCE_ASSIGN ? "ASSIGN" : "REVOKE");
    for (size_t i = 0; i < n && l < sizeof line - 16; i++)
        l += (size_t)snprintf(line + l, sizeof line - l, " %d", tps[i].partition);
    if (ev == STRATA_REBALANCE_REVOKE && revoke_commit) {
        strata_err_t rc = strata_consumer_commit_async(c, NULL, 0, on_commit, NULL);
        l += (size_t)snprintf(line + l, sizeof line - l, " (commit_async %d, sync %d)", rc,
                              strata_consumer_commit(c, NULL, 0, 1000));
    }
    if (ev == STRATA_REBALANCE_ASSIGN && assign_seek != STRATA_OFFSET_INVALID)
        for (size_t i = 0; i < n; i++)
            strata_consumer_seek(c, tps[i].topic, tps[i].partition, assign_seek);
    printf("%s\n", line);
    fflush(stdout);
}

static void on_commit(strata_consumer_t *c, strata_err_t err,
                      const strata_topic_partition_t *offsets, size_t count, void *arg)
{
    (void)c, (void)offsets, (void)arg;
    printf("ACB %d %zu\n", err, count);
    fflush(stdout);
}

static int usage(void)
{
    fprintf(stderr,
            "usage: cl_group -b HOST:PORT -g GROUP -t TOPIC [-R] [-S OFFSET] [-X key=value]...\n");
    return 2;
}

int main(int argc, char **argv)
{
    const char *brokers = NULL, *group = NULL, *topic = NULL;
    strata_conf_t *conf = strata_conf_new();
    strata_consumer_t *c = NULL;
    char err[256], buf[4096];
    size_t blen = 0;
    int opt, polling = 1;

    if (!conf)
        return 1;
    while ((opt = getopt(argc, argv, "b:g:t:RS:X:")) != -1) {
        switch (opt) {
        case 'R':
            revoke_commit = 1;
            break;
        case 'S':
            assign_seek = strcmp(optarg, "beginning") ? atoll(optarg) : STRATA_OFFSET_BEGINNING;
            break;
        case 'b':
            brokers = optarg;
            break;
        case 'g':
            group = optarg;
            break;
        case 't':
            topic = optarg;
            break;
        case 'X': {
            char *eq = strchr(optarg, '=');
            if (!eq)
                return usage();
            *eq = 0;
            if (strata_conf_set(conf, optarg, eq + 1, err, sizeof err)) {
                fprintf(stderr, "%s\n", err);
                return 2;
            }
            break;
        }
        default:
            return usage();
        }
    }
    if (!brokers || !group || !topic)
        return usage();
    if (strata_conf_set(conf, "bootstrap.servers", brokers, err, sizeof err) ||
        strata_conf_set(conf, "group.id", group, err, sizeof err) ||
        strata_consumer_new(conf, &c, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    strata_conf_free(conf);
    const char *topics[] = {topic};
    strata_err_t rc = strata_consumer_subscribe(c, topics, 1, on_rebalance, NULL);
    if (rc) {
        fprintf(stderr, "subscribe: %s\n", strata_err_name(rc));
        return 2;
    }
    printf("READY\n");
    fflush(stdout);

    for (;;) {
        struct pollfd pfd = {.fd = 0, .events = POLLIN};
        if (polling) {
            strata_message_t *m = NULL;
            if ((rc = strata_consumer_poll(c, 50, &m))) {
                fprintf(stderr, "poll: %s\n", strata_err_name(rc));
                return 1;
            }
            if (m) {
                if (m->err)
                    printf("E %d %lld %d\n", m->partition, (long long)m->offset, m->err);
                else
                    printf("R %d %lld %.*s\n", m->partition, (long long)m->offset,
                           (int)m->value_len, m->value ? (const char *)m->value : "");
                fflush(stdout);
                strata_message_free(m);
            }
        }
        if (poll(&pfd, 1, polling ? 0 : 50) <= 0)
            continue;
        ssize_t n = read(0, buf + blen, sizeof buf - 1 - blen);
        if (n <= 0)
            break; /* stdin closed: like exit */
        blen += (size_t)n;
        buf[blen] = 0;
        char *nl;
        while ((nl = strchr(buf, '\n'))) {
            *nl = 0;
            char cmd[32] = "";
            int part = -1;
            long long off = -1;
            int k = sscanf(buf, "%31s %d %lld", cmd, &part, &off);
            if (k < 1) {
                /* empty line */
            } else if (!strcmp(cmd, "pause")) {
                polling = 0;
            } else if (!strcmp(cmd, "resume")) {
                polling = 1;
            } else if (!strcmp(cmd, "commit") && k == 3) {
                strata_topic_partition_t tp = {.topic = topic, .partition = part, .offset = off};
                rc = strata_consumer_commit(c, &tp, 1, 15000);
                printf("COMMIT %d %d\n", rc, tp.err);
            } else if (!strcmp(cmd, "commit")) {
                rc = strata_consumer_commit(c, NULL, 0, 15000);
                printf("COMMIT %d\n", rc);
            } else if (!strcmp(cmd, "async")) {
                rc = strata_consumer_commit_async(c, NULL, 0, on_commit, NULL);
                if (rc)
                    printf("ACB %d -1\n", rc);
            } else if (!strcmp(cmd, "pos")) {
                for (int p = 0; p < 64; p++) {
                    int64_t pos;
                    if (!strata_consumer_position(c, topic, p, &pos))
                        printf("POS %d %lld\n", p, (long long)pos);
                }
                printf("POS end\n");
            } else if (!strcmp(cmd, "close")) {
                rc = strata_consumer_close(c, 15000);
                printf("CLOSED %d\n", rc);
                fflush(stdout);
                strata_consumer_free(c);
                return 0;
            } else if (!strcmp(cmd, "exit")) {
                goto out;
            } else {
                printf("UNKNOWN %s\n", cmd);
            }
            fflush(stdout);
            blen -= (size_t)(nl + 1 - buf);
            memmove(buf, nl + 1, blen + 1);
        }
    }
out:
    strata_consumer_free(c);
    return 0;
}
