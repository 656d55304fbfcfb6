/*
 * bench_nats -- the NATS JetStream driver of the workloads (Debian's
 * libnats-dev, the NATS C client), built when pkg-config finds libnats.
 *
 * The topic is a subject; its stream is named after it ('.' -> '_') with
 * file storage, no limits, one replica (c->replication_factor when set: a
 * replicas=3 stream on a three-node JetStream cluster). Producers publish asynchronously
 * (js_PublishAsync) with at most max_pending publishes waiting for their
 * JetStream ack — the analogue of Kafka's in-flight window; the ack handler
 * (the client's own thread) reports each one. Consumers are ordered push
 * consumers (ephemeral, no acks, flow control: the library's recommended
 * way to read a stream in order), started at the first sequence or at a given
 * one. JetStream has no partitions: --partitions must be 1.
 *
 * Durability: what a JetStream ack means is the server's configuration. In
 * nats-server 2.9.10 (Debian 12) an ack follows the write to the OS; the
 * file store fsyncs every 2 minutes and there is no option to sync per ack
 * (sync_interval / "always" arrived in later versions).
 */
#include "bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef HAVE_NATS
#include <nats/nats.h>

static void stream_name(const char *topic, char *out, size_t n)
{
    snprintf(out, n, "%s", topic);
    for (char *p = out; *p; p++)
        if (*p == '.' || *p == '*' || *p == '>' || *p == ' ')
            *p = '_';
}

typedef struct {
    natsConnection *nc;
    jsCtx *js;
    natsSubscription *sub;
    bench_prod_t *bp;
    bench_sink_t *s;
    char subject[200];
} nb_t;

static int nb_connect(const bench_cfg_t *c, nb_t *b, jsOptions *jo, char *err, size_t n)
{
    natsOptions *o = NULL;
    natsStatus st = natsOptions_Create(&o);
    if (st == NATS_OK)
        st = natsOptions_SetURL(o, c->brokers);
    if (st == NATS_OK)
        st = natsOptions_SetTimeout(o, 10000);
    if (st == NATS_OK)
        st = natsConnection_Connect(&b->nc, o);
    natsOptions_Destroy(o);
    if (st == NATS_OK)
        st = natsConnection_JetStream(&b->js, b->nc, jo);
    if (st != NATS_OK) {
        snprintf(err, n, "nats %s: %s (%s)", c->brokers, natsStatus_GetText(st),
                 nats_GetLastError(NULL));
        if (b->nc)
            natsConnection_Destroy(b->nc);
        b->nc = NULL;
        return -1;
    }
    snprintf(b->subject, sizeof b->subject, "%s", c->topic);
    return 0;
}

static void nb_close(nb_t *b)
{
    if (b->sub) {
        natsSubscription_Unsubscribe(b->sub);
        natsSubscription_Destroy(b->sub);
    }
    if (b->js)
        jsCtx_Destroy(b->js);
    if (b->nc) {
        natsConnection_Close(b->nc);
        natsConnection_Destroy(b->nc);
    }
    free(b);
}

static int n_setup(const bench_cfg_t *c, char *err, size_t n)
{
    if (c->partitions != 1) {
        snprintf(err, n, "JetStream has no partitions: use --partitions 1");
        return -1;
    }
    nb_t *b = calloc(1, sizeof *b);
    if (!b || nb_connect(c, b, NULL, err, n)) {
        free(b);
        return -1;
    }
    char name[200];
    stream_name(c->topic, name, sizeof name);
    jsStreamInfo *si = NULL;
    jsErrCode je = 0;
    natsStatus st = js_GetStreamInfo(&si, b->js, name, NULL, &je);
    if (st == NATS_NOT_FOUND && c->create) {
        jsStreamConfig sc;
        jsStreamConfig_Init(&sc);
        const char *subj[1] = {c->topic};
        sc.Name = name;
        sc.Subjects = subj;
        sc.SubjectsLen = 1;
        sc.Storage = js_FileStorage;
        sc.Replicas = c->replication_factor > 0 ? c->replication_factor : 1;
        st = js_AddStream(&si, b->js, &sc, NULL, &je);
    } else if (st == NATS_NOT_FOUND) {
        snprintf(err, n, "stream %s does not exist (and --no-create)", name);
        nb_close(b);
        return -1;
    }
    if (si)
        jsStreamInfo_Destroy(si);
    if (st != NATS_OK) {
        snprintf(err, n, "stream %s: %s (%s, js err %d)", name, natsStatus_GetText(st),
                 nats_GetLastError(NULL), (int)je);
        nb_close(b);
        return -1;
    }
    nb_close(b);
    return 1;
}

static int n_end_offsets(const bench_cfg_t *c, int parts, int64_t *ends, char *err, size_t n)
{
    (void)parts;
    nb_t *b = calloc(1, sizeof *b);
    if (!b || nb_connect(c, b, NULL, err, n)) {
        free(b);
        return -1;
    }
    char name[200];
    stream_name(c->topic, name, sizeof name);
    jsStreamInfo *si = NULL;
    jsErrCode je = 0;
    natsStatus st = js_GetStreamInfo(&si, b->js, name, NULL, &je);
    if (st != NATS_OK) {
        snprintf(err, n, "stream %s: %s", name, natsStatus_GetText(st));
        nb_close(b);
        return -1;
    }
    /* "offset" = records before the end, as a Kafka end offset on a log that
     * starts at 0; the consumer starts at sequence ends[0] + 1 */
    ends[0] = (int64_t)si->State.LastSeq;
    jsStreamInfo_Destroy(si);
    nb_close(b);
    return 0;
}

static int n_teardown(const bench_cfg_t *c, char *err, size_t n)
{
    nb_t *b = calloc(1, sizeof *b);
    if (!b || nb_connect(c, b, NULL, err, n)) {
        free(b);
        return -1;
    }
    char name[200];
    stream_name(c->topic, name, sizeof name);
    jsErrCode je = 0;
    natsStatus st = js_DeleteStream(b->js, name, NULL, &je);
    nb_close(b);
    if (st != NATS_OK && st != NATS_NOT_FOUND) {
        snprintf(err, n, "delete stream %s: %s", name, natsStatus_GetText(st));
        return -1;
    }
    return 0;
}

static void n_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
    (void)js;
    (void)pa;
    nb_t *b = closure;
    char e[200];
    if (pae)
        snprintf(e, sizeof e, "%s (js err %d: %s)", natsStatus_GetText(pae->Err), (int)pae->ErrCode,
                 pae->ErrText ? pae->ErrText : "");
    bench_on_ack(b->bp, natsMsg_GetData(msg), (size_t)natsMsg_GetDataLength(msg), pae ? e : NULL);
    natsMsg_Destroy(msg);
}

static int n_prod_new(const bench_cfg_t *c, bench_prod_t *bp, void **h, char *err, size_t n)
{
    nb_t *b = calloc(1, sizeof *b);
    if (!b)
        return -1;
    b->bp = bp;
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.PublishAsync.MaxPending = c->max_pending;
    jo.PublishAsync.AckHandler = n_ack;
    jo.PublishAsync.AckHandlerClosure = b;
    jo.PublishAsync.StallWait = 1000;
    jo.Wait = 30000;
    if (nb_connect(c, b, &jo, err, n)) {
        free(b);
        return -1;
    }
    *h = b;
    return 0;
}

static int n_send(void *h, int32_t part, const void *val, size_t len, char *err, size_t n)
{
    (void)part;
    nb_t *b = h;
    natsStatus st = js_PublishAsync(b->js, b->subject, val, (int)len, NULL);
    if (st == NATS_OK)
        return 0;
    if (st == NATS_TIMEOUT) /* MaxPending publishes outstanding for StallWait */
        return 1;
    snprintf(err, n, "js_PublishAsync: %s (%s)", natsStatus_GetText(st), nats_GetLastError(NULL));
    return -1;
}

static int n_flush(void *h, int ms)
{
    nb_t *b = h;
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = ms;
    return js_PublishAsyncComplete(b->js, &po) == NATS_OK ? 0 : -1;
}

static void n_prod_free(void *h)
{
    if (h)
        nb_close(h);
}

static void n_on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    (void)nc;
    (void)sub;
    nb_t *b = closure;
    /* flow-control requests and heartbeats are handled by the library; only
     * stream messages reach here */
    bench_on_record(b->s, natsMsg_GetData(msg), (size_t)natsMsg_GetDataLength(msg));
    natsMsg_Destroy(msg);
}

static int n_cons_new(const bench_cfg_t *c, int parts, const int64_t *start, bench_sink_t *s,
                      void **h, char *err, size_t n)
{
    (void)parts;
    nb_t *b = calloc(1, sizeof *b);
    if (!b)
        return -1;
    b->s = s;
    if (nb_connect(c, b, NULL, err, n)) {
        free(b);
        return -1;
    }
    jsSubOptions so;
    jsSubOptions_Init(&so);
    char name[200];
    stream_name(c->topic, name, sizeof name);
    so.Stream = name;
    so.Ordered = true;
    if (start) {
        so.Config.DeliverPolicy = js_DeliverByStartSequence;
        so.Config.OptStartSeq = (uint64_t)start[0] + 1;
    } else {
        so.Config.DeliverPolicy = js_DeliverAll;
    }
    jsErrCode je = 0;
    natsStatus st = js_Subscribe(&b->sub, b->js, c->topic, n_on_msg, b, NULL, &so, &je);
    if (st == NATS_OK)
        st = natsSubscription_SetPendingLimits(b->sub, 10000000, 1 << 30);
    if (st != NATS_OK) {
        snprintf(err, n, "js_Subscribe %s: %s (%s, js err %d)", c->topic, natsStatus_GetText(st),
                 nats_GetLastError(NULL), (int)je);
        nb_close(b);
        return -1;
    }
    *h = b;
    return 0;
}

static int n_poll(void *h, int ms)
{
    (void)h;
    /* records arrive on the subscription's own thread */
    nats_Sleep(ms);
    return 0;
}

static void n_cons_free(void *h)
{
    if (h)
        nb_close(h);
}

static const bench_ops_t n_ops = {
    .name = "nats",
    .setup = n_setup,
    .end_offsets = n_end_offsets,
    .teardown = n_teardown,
    .prod_new = n_prod_new,
    .prod_send = n_send,
    .prod_flush = n_flush,
    .prod_free = n_prod_free,
    .cons_new = n_cons_new,
    .cons_poll = n_poll,
    .cons_free = n_cons_free,
};

const bench_ops_t *bench_ops_nats(void) { return &n_ops; }
#else
const bench_ops_t *bench_ops_nats(void) { return NULL; }
#endif
