/*
 * cl_consume -- the libstrata consumer side of test_libstrata.py: assigns
 * partitions 0..P-1 of one topic and prints every record it polls in a form
 * the Python wrapper parses and compares byte for byte.
 *
 *   cl_consume -b HOST:PORT -t TOPIC -p PARTS [-o START] [-n COUNT] [-T IDLE_MS]
 *              [-s PART:OFFSET] [-X key=value]...
 *
 * START: an offset, "beginning", "end" or "stored" (no group: auto.offset.reset).
 * Phase 1 polls until COUNT records arrived (or, without -n, until IDLE_MS
 * passed without a record). With -s, phase 2 seeks PART to OFFSET and polls
 * until IDLE_MS passes without a record.
 *
 * Output lines (fields separated by one space; a byte string is "-" when null,
 * else "x" followed by its hex):
 *   READY                        every partition's start offset is resolved
 *   R <part> <offset> <timestamp> <key> <value> <nheaders> [<hkey>=<hvalue>]...
 *   E <part> <offset> <err>      a partition error message
 *   SEEK <part> <offset>
 *   POS <part> <position>        at the end, per partition
 * Exit 0 when phase 1 got COUNT records (or -n was not given), 1 otherwise,
 * 2 on bad usage or configuration (the message names the key).
 */
#include "strata/client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void hex(const void *p, size_t n, int null)
{
    const unsigned char *b = p;
    if (null) {
        fputs("-", stdout);
        return;
    }
    putchar('x');
    for (size_t i = 0; i < n; i++)
        printf("%02x", b[i]);
}

static void print_msg(const strata_message_t *m)
{
    if (m->err) {
        printf("E %d %lld %d\n", m->partition, (long long)m->offset, m->err);
        return;
    }
    printf("R %d %lld %lld ", m->partition, (long long)m->offset, (long long)m->timestamp);
    hex(m->key, m->key_len, m->key == NULL);
    putchar(' ');
    hex(m->value, m->value_len, m->value == NULL);
    printf(" %zu", m->header_count);
    for (size_t i = 0; i < m->header_count; i++) {
        putchar(' ');
        hex(m->headers[i].key, m->headers[i].key_len, 0);
        putchar('=');
        hex(m->headers[i].value, m->headers[i].value_len, m->headers[i].value == NULL);
    }
    putchar('\n');
}

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Polls until count records (count < 0: until idle_ms without one). */
static long consume(strata_consumer_t *c, long count, int idle_ms)
{
    long got = 0;
    long long last = mono_ms();

    while (count < 0 || got < count) {
        strata_message_t *m = NULL;
        strata_err_t rc = strata_consumer_poll(c, 100, &m);
        if (rc) {
            fprintf(stderr, "poll: %s\n", strata_err_str(rc));
            break;
        }
        if (!m) {
            if (mono_ms() - last >= idle_ms)
                break;
            continue;
        }
        last = mono_ms();
        print_msg(m);
        if (!m->err)
            got++;
        strata_message_free(m);
    }
    fflush(stdout);
    return got;
}

int main(int argc, char **argv)
{
    strata_conf_t *conf = strata_conf_new();
    strata_consumer_t *c = NULL;
    strata_topic_partition_t *tps = NULL;
    const char *topic = NULL, *start = "beginning", *seek = NULL;
    char err[256];
    long count = -1, got;
    int parts = 1, idle_ms = 3000, opt, rc = 1;
    int64_t off;

    if (!conf)
        return 2;
    while ((opt = getopt(argc, argv, "b:t:p:o:n:T:s:X:")) != -1) {
        char *eq;
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
        case 'p':
            parts = atoi(optarg);
            break;
        case 'o':
            start = optarg;
            break;
        case 'n':
            count = atol(optarg);
            break;
        case 'T':
            idle_ms = atoi(optarg);
            break;
        case 's':
            seek = optarg;
            break;
        case 'X':
            if (!(eq = strchr(optarg, '=')))
                goto usage;
            *eq = 0;
            if (strata_conf_set(conf, optarg, eq + 1, err, sizeof err)) {
                fprintf(stderr, "%s\n", err);
                goto usage;
            }
            break;
        default:
            goto usage;
        }
    }
    if (!topic || parts <= 0)
        goto usage;
    if (!strcmp(start, "beginning"))
        off = STRATA_OFFSET_BEGINNING;
    else if (!strcmp(start, "end"))
        off = STRATA_OFFSET_END;
    else if (!strcmp(start, "stored"))
        off = STRATA_OFFSET_STORED;
    else
        off = atoll(start);
    if (strata_consumer_new(conf, &c, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        goto usage;
    }
    strata_conf_free(conf);
    conf = NULL;
    if (!(tps = calloc((size_t)parts, sizeof *tps)))
        goto out;
    for (int i = 0; i < parts; i++)
        tps[i] = (strata_topic_partition_t){.topic = topic, .partition = i, .offset = off};
    if (strata_consumer_assign(c, tps, (size_t)parts)) {
        fprintf(stderr, "assign failed\n");
        goto out;
    }
    /* READY once every start offset is resolved (a test then produces). */
    for (long long dl = mono_ms() + 30000; mono_ms() < dl;) {
        int ready = 1;
        for (int i = 0; i < parts; i++) {
            int64_t pos;
            if (strata_consumer_position(c, topic, i, &pos) || pos < 0)
                ready = 0;
        }
        if (ready) {
            printf("READY\n");
            fflush(stdout);
            break;
        }
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
    got = consume(c, count, idle_ms);
    rc = count < 0 || got == count ? 0 : 1;
    if (count >= 0 && got != count)
        fprintf(stderr, "got %ld records, wanted %ld\n", got, count);
    if (seek) {
        int sp = atoi(seek);
        const char *colon = strchr(seek, ':');
        long long so = colon ? atoll(colon + 1) : 0;
        strata_err_t src = strata_consumer_seek(c, topic, sp, so);
        if (src) {
            fprintf(stderr, "seek: %s\n", strata_err_str(src));
            rc = 1;
        }
        printf("SEEK %d %lld\n", sp, so);
        consume(c, -1, idle_ms);
    }
    for (int i = 0; i < parts; i++) {
        int64_t pos = -1;
        strata_consumer_position(c, topic, i, &pos);
        printf("POS %d %lld\n", i, (long long)pos);
    }
    fflush(stdout);
out:
    free(tps);
    strata_consumer_free(c);
    strata_conf_free(conf);
    return rc;
usage:
    strata_conf_free(conf);
    fprintf(stderr, "usage: cl_consume -b HOST:PORT -t TOPIC -p PARTS [-o START] [-n COUNT] "
                    "[-T IDLE_MS] [-s PART:OFFSET] [-X key=value]...\n");
    return 2;
}
