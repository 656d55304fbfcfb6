/*
 * bench_kadmin -- the few admin requests the workloads need, sent over one
 * blocking socket with the tree's Kafka codec, so they work the same against
 * any Kafka-protocol broker whichever client drives the data path:
 * CreateTopics v2, DeleteTopics v1, Metadata v4 (no auto-creation) and
 * ListOffsets v1 (latest).
 */
#include "bench.h"

#include "sc_buf.h"
#include "sc_err.h"
#include "sc_kafka.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    int fd;
    int32_t corr;
    sc_buf_t resp;
} kconn_t;

static int kconnect(kconn_t *k, const char *bootstrap, char *err, size_t errn)
{
    char host[300], port[300];
    const char *hp = bootstrap;
    size_t hl = strcspn(hp, ",");
    char first[300];
    snprintf(first, sizeof first, "%.*s", (int)hl, hp);
    char *colon = strrchr(first, ':');
    if (!colon) {
        snprintf(err, errn, "bootstrap '%s': want HOST:PORT", bootstrap);
        return -1;
    }
    *colon = 0;
    snprintf(host, sizeof host, "%s", first);
    snprintf(port, sizeof port, "%s", colon + 1);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
    int rc = getaddrinfo(host, port, &hints, &ai);
    if (rc || !ai) {
        snprintf(err, errn, "%s: %s", bootstrap, gai_strerror(rc));
        return -1;
    }
    k->fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (k->fd < 0 || connect(k->fd, ai->ai_addr, ai->ai_addrlen)) {
        snprintf(err, errn, "connect %s: %s", bootstrap, strerror(errno));
        if (k->fd >= 0)
            close(k->fd);
        freeaddrinfo(ai);
        return -1;
    }
    freeaddrinfo(ai);
    struct timeval tv = {30, 0};
    setsockopt(k->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(k->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    k->corr = 1;
    sc_buf_init(&k->resp);
    return 0;
}

static void kclose(kconn_t *k)
{
    close(k->fd);
    sc_buf_fini(&k->resp);
}

static int xfer(int fd, void *p, size_t n, int wr)
{
    uint8_t *b = p;
    while (n) {
        ssize_t r = wr ? send(fd, b, n, MSG_NOSIGNAL) : recv(fd, b, n, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        b += r;
        n -= (size_t)r;
    }
    return 0;
}

/* Sends body (request body only) as api/ver and leaves the response body
 * (after the v0 response header) in k->resp. */
static int kcall(kconn_t *k, int16_t api, int16_t ver, const sc_buf_t *body, sc_rd_t *r,
                 char *err, size_t errn)
{
    sc_buf_t f;
    sc_kw_t w;
    sc_buf_init(&f);
    sc_kw_init(&w, &f);
    size_t off = sc_kw_reserve_i32(&w);
    sc_kreq_hdr_t h = {.api_key = api, .api_version = ver, .correlation_id = k->corr++,
                       .client_id = {"strata-bench", 12}};
    sc_kafka_req_hdr_encode(&w, &h);
    sc_kw_raw(&w, body->data, body->len);
    sc_kw_patch_i32(&w, off, (int32_t)(f.len - 4));
    int rc = w.err ? -1 : xfer(k->fd, f.data, f.len, 1);
    sc_buf_fini(&f);
    uint8_t szb[4];
    if (rc || xfer(k->fd, szb, 4, 0)) {
        snprintf(err, errn, "%s request: %s", sc_kafka_api_name(api), strerror(errno));
        return -1;
    }
    uint32_t sz = (uint32_t)szb[0] << 24 | (uint32_t)szb[1] << 16 | (uint32_t)szb[2] << 8 | szb[3];
    if (sz < 4 || sz > (64u << 20)) {
        snprintf(err, errn, "%s: bad response size %u", sc_kafka_api_name(api), sz);
        return -1;
    }
    sc_buf_reset(&k->resp);
    if (sc_buf_reserve(&k->resp, sz) || xfer(k->fd, k->resp.data, sz, 0)) {
        snprintf(err, errn, "%s response: %s", sc_kafka_api_name(api), strerror(errno));
        return -1;
    }
    k->resp.len = sz;
    sc_rd_init(r, k->resp.data, sz);
    (void)sc_kr_i32(r); /* correlation id */
    return 0;
}

/* Partition count of topic (Metadata v4, allow_auto_topic_creation=false);
 * 0 when the topic does not exist, -1 on error. *leaders = partitions with a
 * leader. */
static int kmeta(kconn_t *k, const char *topic, int *leaders, char *err, size_t errn)
{
    sc_buf_t b;
    sc_kw_t w;
    sc_rd_t r;
    sc_buf_init(&b);
    sc_kw_init(&w, &b);
    sc_kw_array_len(&w, 1);
    sc_kw_string(&w, topic, strlen(topic));
    sc_kw_bool(&w, 0);
    int rc = kcall(k, SC_KAFKA_API_METADATA, 4, &b, &r, err, errn);
    sc_buf_fini(&b);
    if (rc)
        return -1;
    int32_t n;
    sc_kstr_t s;
    (void)sc_kr_i32(&r); /* throttle */
    sc_kr_array_len(&r, 0, 14, &n);
    for (int32_t i = 0; i < n && !r.err; i++) {
        (void)sc_kr_i32(&r);
        sc_kr_string(&r, 0, &s);
        (void)sc_kr_i32(&r);
        sc_kr_string(&r, 1, &s);
    }
    sc_kr_string(&r, 1, &s); /* cluster id */
    (void)sc_kr_i32(&r);     /* controller */
    sc_kr_array_len(&r, 0, 5, &n);
    int parts = 0, lead = 0;
    int16_t terr = 0;
    for (int32_t i = 0; i < n && !r.err; i++) {
        terr = sc_kr_i16(&r);
        sc_kr_string(&r, 0, &s);
        (void)sc_kr_bool(&r);
        int32_t np;
        sc_kr_array_len(&r, 0, 18, &np);
        for (int32_t j = 0; j < np && !r.err; j++) {
            int16_t perr = sc_kr_i16(&r);
            (void)sc_kr_i32(&r);
            int32_t leader = sc_kr_i32(&r), nr;
            sc_kr_array_len(&r, 0, 4, &nr);
            for (int32_t x = 0; x < nr; x++)
                (void)sc_kr_i32(&r);
            sc_kr_array_len(&r, 0, 4, &nr);
            for (int32_t x = 0; x < nr; x++)
                (void)sc_kr_i32(&r);
            parts++;
            if (leader >= 0 && perr == 0)
                lead++;
        }
    }
    if (r.err) {
        snprintf(err, errn, "Metadata: malformed response");
        return -1;
    }
    *leaders = lead;
    if (terr == SC_ERR_UNKNOWN_TOPIC_OR_PARTITION)
        return 0;
    if (terr && terr != SC_ERR_LEADER_NOT_AVAILABLE) {
        snprintf(err, errn, "Metadata %s: %s", topic, sc_err_name(terr));
        return -1;
    }
    return parts;
}

int bench_kafka_setup_topic(const char *bootstrap, const char *topic, int partitions, int create,
                            char *err, size_t errn)
{
    kconn_t k;
    if (kconnect(&k, bootstrap, err, errn))
        return -1;
    int leaders = 0, parts = kmeta(&k, topic, &leaders, err, errn);
    if (parts == 0 && create) {
        sc_buf_t b;
        sc_kw_t w;
        sc_rd_t r;
        sc_buf_init(&b);
        sc_kw_init(&w, &b);
        sc_kw_array_len(&w, 1);
        sc_kw_string(&w, topic, strlen(topic));
        sc_kw_i32(&w, partitions);
        sc_kw_i16(&w, -1); /* broker default replication factor */
        sc_kw_array_len(&w, 0);
        sc_kw_array_len(&w, 0);
        sc_kw_i32(&w, 30000);
        sc_kw_bool(&w, 0);
        int rc = kcall(&k, SC_KAFKA_API_CREATE_TOPICS, 2, &b, &r, err, errn);
        sc_buf_fini(&b);
        if (rc) {
            kclose(&k);
            return -1;
        }
        int32_t n;
        sc_kstr_t s;
        (void)sc_kr_i32(&r);
        sc_kr_array_len(&r, 0, 6, &n);
        sc_kr_string(&r, 0, &s);
        int16_t e = sc_kr_i16(&r);
        sc_kstr_t msg;
        sc_kr_string(&r, 1, &msg);
        if (r.err || n != 1 || (e && e != SC_ERR_TOPIC_ALREADY_EXISTS)) {
            snprintf(err, errn, "CreateTopics %s: %s%s%.*s", topic, r.err ? "malformed response" : sc_err_name(e),
                     msg.len > 0 ? ": " : "", msg.len > 0 ? (int)msg.len : 0, msg.len > 0 ? msg.p : "");
            kclose(&k);
            return -1;
        }
        parts = 0;
    } else if (parts == 0) {
        snprintf(err, errn, "topic %s does not exist (and --no-create)", topic);
        kclose(&k);
        return -1;
    }
    /* wait until every partition has a leader */
    struct timespec ts = {0, 50 * 1000 * 1000};
    for (int i = 0; i < 200 && parts >= 0; i++) {
        parts = kmeta(&k, topic, &leaders, err, errn);
        if (parts > 0 && leaders == parts)
            break;
        nanosleep(&ts, NULL);
    }
    kclose(&k);
    if (parts > 0 && leaders != parts) {
        snprintf(err, errn, "topic %s: %d of %d partitions have a leader after 10 s", topic, leaders,
                 parts);
        return -1;
    }
    return parts;
}

int bench_kafka_delete_topic(const char *bootstrap, const char *topic, char *err, size_t errn)
{
    kconn_t k;
    if (kconnect(&k, bootstrap, err, errn))
        return -1;
    sc_buf_t b;
    sc_kw_t w;
    sc_rd_t r;
    sc_buf_init(&b);
    sc_kw_init(&w, &b);
    sc_kw_array_len(&w, 1);
    sc_kw_string(&w, topic, strlen(topic));
    sc_kw_i32(&w, 30000);
    int rc = kcall(&k, SC_KAFKA_API_DELETE_TOPICS, 1, &b, &r, err, errn);
    sc_buf_fini(&b);
    if (!rc) {
        int32_t n;
        sc_kstr_t s;
        (void)sc_kr_i32(&r);
        sc_kr_array_len(&r, 0, 4, &n);
        sc_kr_string(&r, 0, &s);
        int16_t e = sc_kr_i16(&r);
        if (r.err || (e && e != SC_ERR_UNKNOWN_TOPIC_OR_PARTITION)) {
            snprintf(err, errn, "DeleteTopics %s: %s", topic, r.err ? "malformed" : sc_err_name(e));
            rc = -1;
        }
    }
    kclose(&k);
    return rc;
}

int bench_kafka_end_offsets(const char *bootstrap, const char *topic, int parts, int64_t *ends,
                            char *err, size_t errn)
{
    kconn_t k;
    if (kconnect(&k, bootstrap, err, errn))
        return -1;
    sc_buf_t b;
    sc_kw_t w;
    sc_rd_t r;
    sc_buf_init(&b);
    sc_kw_init(&w, &b);
    sc_kw_i32(&w, -1);
    sc_kw_array_len(&w, 1);
    sc_kw_string(&w, topic, strlen(topic));
    sc_kw_array_len(&w, parts);
    for (int i = 0; i < parts; i++) {
        sc_kw_i32(&w, i);
        sc_kw_i64(&w, -1); /* latest */
    }
    int rc = kcall(&k, SC_KAFKA_API_LIST_OFFSETS, 1, &b, &r, err, errn);
    sc_buf_fini(&b);
    if (!rc) {
        int32_t n, np;
        sc_kstr_t s;
        for (int i = 0; i < parts; i++)
            ends[i] = -1;
        sc_kr_array_len(&r, 0, 6, &n);
        for (int32_t t = 0; t < n && !r.err; t++) {
            sc_kr_string(&r, 0, &s);
            sc_kr_array_len(&r, 0, 22, &np);
            for (int32_t j = 0; j < np && !r.err; j++) {
                int32_t p = sc_kr_i32(&r);
                int16_t e = sc_kr_i16(&r);
                (void)sc_kr_i64(&r);
                int64_t off = sc_kr_i64(&r);
                if (e && !rc) {
                    snprintf(err, errn, "ListOffsets %s[%d]: %s", topic, p, sc_err_name(e));
                    rc = -1;
                }
                if (p >= 0 && p < parts)
                    ends[p] = off;
            }
        }
        if (r.err) {
            snprintf(err, errn, "ListOffsets: malformed response");
            rc = -1;
        }
        for (int i = 0; i < parts && !rc; i++)
            if (ends[i] < 0) {
                snprintf(err, errn, "ListOffsets %s[%d]: no answer", topic, i);
                rc = -1;
            }
    }
    kclose(&k);
    return rc;
}
