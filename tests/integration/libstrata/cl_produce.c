/*
 * cl_produce -- the libstrata side of test_libstrata.py: produces a fixed,
 * reproducible set of records with libstrata and prints one line per
 * delivery report, so the Python wrapper can read the topic back with kcat
 * and raw Fetch and compare byte for byte.
 *
 *   cl_produce -b HOST:PORT -t TOPIC -n COUNT [-s USEC] [-N] [-X key=value]...
 *
 * -s sleeps USEC microseconds after each record (so a test can restart the
 * broker while records are in flight). -N: every key is null (the sticky
 * partitioner's case).
 *
 * Record i: key "key-<i>" except every 7th record (null key) and i == 3
 * (empty key); value "value-<i>-" followed by i % 50 'x' bytes, except i == 5
 * (null value) and i == 6 (empty value); headers on odd i:
 * ("h1", "one-<i>"), ("h2", ""). Output, per delivered record in report
 * order: "DR <i> <partition> <offset> <err>". Exit 0 when every record was
 * delivered without error, 1 otherwise, 2 on bad usage or configuration
 * (the message names the key).
 */
#include "strata/client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int failures;

static void on_delivery(strata_producer_t *p, const strata_message_t *m, void *arg)
{
    long i = (long)(intptr_t)m->opaque;
    printf("DR %ld %d %lld %d\n", i, m->partition, (long long)m->offset, m->err);
    if (m->err) {
        fprintf(stderr, "record %ld: %s\n", i, strata_err_str(m->err));
        failures++;
    }
}

int main(int argc, char **argv)
{
    strata_conf_t *conf = strata_conf_new();
    strata_producer_t *p = NULL;
    const char *topic = NULL;
    char err[256];
    long n = 100, pause_us = 0;
    int opt, rc, null_keys = 0;

    if (!conf)
        return 2;
    while ((opt = getopt(argc, argv, "b:t:n:s:NX:")) != -1) {
        switch (opt) {
        case 'b':
            if (strata_conf_set(conf, "bootstrap.servers", optarg, err, sizeof err)) {
                fprintf(stderr, "%s\n", err);
                goto usage;
            }
            break;
        case 't':
            topic = optarg;
            break;
        case 'n':
            n = atol(optarg);
            break;
        case 's':
            pause_us = atol(optarg);
            break;
        case 'N':
            null_keys = 1;
            break;
        case 'X': {
            char *eq = strchr(optarg, '=');
            if (!eq) {
                fprintf(stderr, "-X key=value\n");
                goto usage;
            }
            *eq = 0;
            if (strata_conf_set(conf, optarg, eq + 1, err, sizeof err)) {
                fprintf(stderr, "config: %s\n", err);
                goto usage;
            }
            break;
        }
        default:
            fprintf(stderr, "usage: cl_produce -b HOST:PORT -t TOPIC [-n N] [-s USEC] [-N] [-X k=v]...\n");
            goto usage;
        }
    }
    if (!topic) {
        fprintf(stderr, "-t TOPIC is required\n");
        goto usage;
    }
    if ((rc = strata_producer_new(conf, on_delivery, NULL, &p, err, sizeof err))) {
        fprintf(stderr, "strata_producer_new: %s: %s\n", strata_err_name(rc), err);
        goto usage;
    }
    strata_conf_free(conf);
    conf = NULL;
    for (long i = 0; i < n; i++) {
        char key[32], value[128], h1[32];
        strata_header_t hdrs[2] = {{"h1", 2, h1, 0}, {"h2", 2, "", 0}};
        strata_record_t rec = {.topic = topic, .partition = STRATA_PARTITION_ANY};
        int vl;

        snprintf(key, sizeof key, "key-%ld", i);
        vl = snprintf(value, sizeof value, "value-%ld-", i);
        memset(value + vl, 'x', (size_t)(i % 50));
        vl += (int)(i % 50);
        hdrs[0].value_len = (size_t)snprintf(h1, sizeof h1, "one-%ld", i);
        if (i % 7 != 0 && !null_keys) {
            rec.key = key;
            rec.key_len = i == 3 ? 0 : strlen(key);
        }
        if (i != 5) {
            rec.value = value;
            rec.value_len = i == 6 ? 0 : (size_t)vl;
        }
        if (i % 2) {
            rec.headers = hdrs;
            rec.header_count = 2;
        }
        while ((rc = strata_produce(p, &rec, (void *)(intptr_t)i)) == STRATA_ERR_QUEUE_FULL)
            strata_producer_flush(p, 100);
        if (rc) {
            fprintf(stderr, "strata_produce %ld: %s\n", i, strata_err_str(rc));
            failures++;
        }
        if (pause_us)
            usleep((useconds_t)pause_us);
    }
    rc = strata_producer_flush(p, 60000);
    if (rc) {
        fprintf(stderr, "flush: %s (%zu outstanding)\n", strata_err_str(rc),
                strata_producer_outstanding(p));
        failures++;
    }
    strata_producer_free(p);
    fflush(stdout);
    return failures ? 1 : 0;
usage:
    strata_conf_free(conf);
    return 2;
}
