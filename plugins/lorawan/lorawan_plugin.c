/*
 * lorawan_plugin -- the LoRaWAN gateway source plugin: a Semtech UDP
 * packet-forwarder server (GWMP v1/v2) that decodes LoRaWAN 1.0.x ABP uplinks
 * and produces one record per deduplicated uplink, keyed by device id.
 *
 * Thread: everything runs on the instance thread the host gives us (fd watch
 * on the UDP socket, one-shot timers for the dedup window and for retries).
 *
 * Records: value = the uplink JSON of lorawan_up.h (format=json, the default),
 * or, with format=protobuf, a telemetry Point (point "uplink", bytes value =
 * the decrypted FRMPayload; the gateway metadata is not in a Point). Each
 * record carries the source offset (partition "<DevAddr>/<device id>",
 * offset = the 32-bit FCnt), so after a restart offset_get hands the last
 * durable counter back and frames at or below it are refused as replays:
 * nothing is produced twice. Uplinks still in the dedup window (or behind
 * EAGAIN) when the instance stops are kept in the host's kv store and
 * produced first at the next start (see save_pending). Uplinks not yet
 * durable when the broker is killed are lost with it (the forwarder does not
 * retransmit: UDP and LoRaWAN unconfirmed uplinks have no retry here).
 *
 * Backpressure: when produce answers EAGAIN the uplink stays in an outbox (in
 * order), reading the socket stops, and the outbox is retried on committed()
 * and on a short timer. Nothing is dropped by us; the kernel's socket buffer
 * drops what the forwarder sends meanwhile (visible as missing PUSH_ACKs).
 *
 * Bad input (garbage datagrams, malformed JSON, bad MICs, unknown devices,
 * replays) is counted (metrics, health, describe) and logged at most once per
 * log.interval.ms per kind, with the number suppressed since.
 */
#include "strata/plugin.h"

#include "lorawan_gwmp.h"
#include "lorawan_json.h"
#include "lorawan_phy.h"
#include "lorawan_up.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define PLUGIN_VERSION "1.0.0"
#define MAX_DEVICES 4096
#define MAX_GATEWAYS 64
#define DRAIN_PER_EVENT 256 /* datagrams read per poll wake-up */
#define RETRY_MS 50
#define OUTBOX_MAX 4096

static const strata_host_api_t *host;

/* ---- counters, as metrics ---------------------------------------------------------- */

#define COUNTERS(X)                                                                        \
    X(datagrams, "datagrams received")                                                     \
    X(bad_datagrams, "datagrams that are not GWMP from a gateway (dropped)")               \
    X(push_data, "PUSH_DATA datagrams (each answered with PUSH_ACK)")                      \
    X(pull_data, "PULL_DATA datagrams (each answered with PULL_ACK)")                      \
    X(tx_ack, "TX_ACK datagrams")                                                          \
    X(bad_json, "PUSH_DATA whose JSON is malformed (acknowledged, contents dropped)")      \
    X(rxpk, "rxpk entries")                                                                \
    X(crc_bad, "rxpk with stat != 1 (CRC failed or absent; dropped)")                      \
    X(rxpk_invalid, "malformed rxpk entries (dropped)")                                    \
    X(phy_invalid, "PHYPayloads that do not decode (dropped)")                             \
    X(not_uplink, "frames that are not data uplinks (dropped)")                            \
    X(join_requests, "join-requests (OTAA is not supported; dropped)")                     \
    X(unknown_device, "uplinks from a DevAddr not configured (dropped)")                   \
    X(bad_mic, "uplinks whose MIC does not verify (dropped)")                              \
    X(replay, "uplinks with a frame counter not above the last one (dropped)")             \
    X(duplicates, "copies merged into an uplink inside the dedup window")                  \
    X(late_duplicates, "copies of the last uplink arriving after its window (dropped)")    \
    X(gw_overflow, "gateway receptions beyond 16 per uplink (metadata not kept)")          \
    X(uplinks, "deduplicated uplinks")                                                     \
    X(early_flush, "uplinks emitted before their window ended (256 pending)")              \
    X(crypto_errors, "OpenSSL failures")

enum {
#define X(n, h) C_##n,
    COUNTERS(X)
#undef X
        C_COUNT
};

static const char *const counter_names[] = {
#define X(n, h) #n,
    COUNTERS(X)
#undef X
};
static const char *const counter_help[] = {
#define X(n, h) h,
    COUNTERS(X)
#undef X
};

enum { E_PRODUCED, E_PRODUCE_ERRORS, E_EAGAIN, E_COUNT };
static const char *const extra_names[] = {"records_produced", "produce_errors", "produce_eagain"};
static const char *const extra_help[] = {
    "records handed to the host", "records the host refused (not EAGAIN; dropped)",
    "produce answered EAGAIN (record kept, retried)"};

/* ---- instance ---------------------------------------------------------------------- */

typedef struct outrec {
    struct outrec *next;
    char *topic; /* NULL: the instance's */
    char key[64];
    char part[80];
    int64_t off, ts;
    size_t len;
    uint8_t *value;
    int point; /* format=protobuf: emit as a Point */
} outrec_t;

typedef struct {
    uint64_t eui;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    int64_t last_ms;
    uint64_t datagrams;
} gwinfo_t;

typedef struct {
    strata_host_ctx_t *ctx;
    char name[64];
    char addr[128];
    int port;
    uint32_t window_ms;
    int64_t log_interval_ms;
    int protobuf;
    int fd;
    int watching, paused;
    int stopping;  /* in stop: uplinks go to the outbox, then to kv */
    int kv_dirty;  /* KV_PENDING holds records restored at start */
    int64_t flush_timer, retry_timer;
    pl_lorawan_up_t *up;
    pl_lorawan_device_t *devs;
    size_t ndev;
    int64_t *cfg_last; /* device.<d>.fcnt.last, -1: not given */
    int64_t *dev_last_ms;
    outrec_t *ohead, *otail;
    size_t olen;
    gwinfo_t gw[MAX_GATEWAYS];
    int ngw;
    int metric[C_COUNT + E_COUNT];
    uint64_t synced[C_COUNT];
    uint64_t extra[E_COUNT];
    /* rate-limited logging, per counter */
    int64_t log_last[C_COUNT + E_COUNT];
    uint64_t log_supp[C_COUNT + E_COUNT];
    char last_error[160];
    uint8_t buf[65536];
} inst_t;

/* Copies src into dst[cap], truncating. */
static void set_str(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = 0;
}

static int64_t now_ms(int clock)
{
    return host->now_ns(NULL, clock) / 1000000;
}

/* Logs one line for kind k unless one was logged less than log.interval.ms
 * ago; then counts it and mentions the count on the next line. */
static void rlog(inst_t *in, int k, int level, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void rlog(inst_t *in, int k, int level, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    set_str(in->last_error, sizeof in->last_error, msg);
    int64_t t = now_ms(STRATA_CLOCK_MONOTONIC);
    if (in->log_last[k] && t - in->log_last[k] < in->log_interval_ms) {
        in->log_supp[k]++;
        return;
    }
    if (in->log_supp[k])
        host->log(in->ctx, level, "%s (%" PRIu64 " more like it in the last %" PRId64 " ms)", msg,
                  in->log_supp[k], t - in->log_last[k]);
    else
        host->log(in->ctx, level, "%s", msg);
    in->log_last[k] = t;
    in->log_supp[k] = 0;
}

static uint64_t counter_at(const pl_lorawan_counters_t *c, int i)
{
    const uint64_t *v = (const uint64_t *)c; /* the struct is C_COUNT uint64_t in order */
    return v[i];
}

_Static_assert(sizeof(pl_lorawan_counters_t) == C_COUNT * sizeof(uint64_t),
               "COUNTERS() must list pl_lorawan_counters_t's fields in order");

/* Pushes counter deltas to the host's metrics and logs new bad input. */
static void sync_counters(inst_t *in, const uint8_t *d, size_t n)
{
    const pl_lorawan_counters_t *c = pl_lorawan_up_counters(in->up);
    for (int i = 0; i < C_COUNT; i++) {
        uint64_t v = counter_at(c, i);
        if (v == in->synced[i])
            continue;
        if (in->metric[i] >= 0)
            host->metric_update(in->ctx, in->metric[i], (double)(v - in->synced[i]));
        switch (i) {
        case C_bad_datagrams:
        case C_bad_json:
        case C_rxpk_invalid:
        case C_phy_invalid:
        case C_unknown_device:
        case C_bad_mic:
        case C_replay:
        case C_crypto_errors: {
            char hex[33];
            pl_lorawan_hex_encode(d, n < 16 ? n : 16, hex);
            rlog(in, i, STRATA_LOG_WARN, "%s: %s (datagram of %zu bytes, starting %s)",
                 counter_names[i], counter_help[i], n, hex);
            break;
        }
        default:
            break;
        }
        in->synced[i] = v;
    }
}

static void extra_add(inst_t *in, int e, uint64_t by)
{
    in->extra[e] += by;
    if (in->metric[C_COUNT + e] >= 0)
        host->metric_update(in->ctx, in->metric[C_COUNT + e], (double)by);
}

/* ---- producing ---------------------------------------------------------------------- */

static void watch(inst_t *in, int on);
static void arm_retry(inst_t *in);

/* 0 produced (or refused for good: counted), EAGAIN: keep it. */
static int produce_one(inst_t *in, const outrec_t *o)
{
    int rc;
    if (o->point) {
        strata_point_t pt;
        memset(&pt, 0, sizeof pt);
        pt.struct_size = sizeof pt;
        pt.type = STRATA_VALUE_BYTES;
        pt.device_id = o->key;
        pt.point = "uplink";
        pt.timestamp_ms = o->ts;
        pt.v_bytes = o->value;
        pt.v_bytes_len = o->len;
        pt.quality = STRATA_QUALITY_GOOD;
        pt.topic = o->topic;
        pt.source_partition = o->part;
        pt.source_offset = o->off;
        rc = host->emit_point(in->ctx, &pt);
    } else {
        strata_record_t r;
        memset(&r, 0, sizeof r);
        r.struct_size = sizeof r;
        r.partition = -1;
        r.topic = o->topic;
        r.key = o->key;
        r.key_len = strlen(o->key);
        r.value = o->value;
        r.value_len = o->len;
        r.timestamp_ms = o->ts;
        r.source_partition = o->part;
        r.source_offset = o->off;
        rc = host->produce(in->ctx, &r);
    }
    if (rc == STRATA_PLUGIN_EAGAIN) {
        extra_add(in, E_EAGAIN, 1);
        return EAGAIN;
    }
    if (rc) {
        extra_add(in, E_PRODUCE_ERRORS, 1);
        rlog(in, C_COUNT + E_PRODUCE_ERRORS, STRATA_LOG_ERROR,
             "produce of %s fcnt %" PRId64 " to %s failed: %s", o->key, o->off,
             o->topic ? o->topic : "the instance topic", strerror(-rc));
        return 0;
    }
    extra_add(in, E_PRODUCED, 1);
    return 0;
}

static void outrec_free(outrec_t *o)
{
    if (o) {
        free(o->topic);
        free(o->value);
        free(o);
    }
}

/* ---- uplinks kept over a stop ------------------------------------------------------
 *
 * The host refuses records while an instance stops, but uplinks inside the
 * dedup window (and any behind an EAGAIN) were already accepted: their frame
 * counters moved on, and the device will not send them again. stop writes
 * them to the host's kv store (durable when kv_put returns) as
 *   "LWP1" { point(1) keylen(1) key partlen(1) part topiclen(2) topic
 *            off(8) ts(8) vlen(4) value }*      (host byte order, <= 64 KiB)
 * and the next create puts them back at the head of the outbox -- skipping
 * any whose source offset the host already has as committed -- and moves each
 * device's counter past them, so they are produced once and their copies are
 * replays. The key is removed once they are all with the host. */

#define KV_PENDING "pending-uplinks"
#define KV_MAX (64u << 10)

static int kv_usable(void)
{
    return (host->caps & STRATA_HOST_CAP_KV) && host->kv_get && host->kv_put;
}

static void kv_clear(inst_t *in)
{
    if (!kv_usable())
        return;
    if (STRATA_HAS_FIELD(host, host->struct_size, strata_host_api_t, kv_del) && host->kv_del)
        (void)host->kv_del(in->ctx, KV_PENDING);
    else
        (void)host->kv_put(in->ctx, KV_PENDING, "", 0);
}

static void save_pending(inst_t *in)
{
    if (!kv_usable()) {
        host->log(in->ctx, STRATA_LOG_WARN,
                  "stopping: %zu accepted uplinks lost (the host has no kv store)", in->olen);
        extra_add(in, E_PRODUCE_ERRORS, in->olen);
        return;
    }
    uint8_t *b = malloc(KV_MAX);
    size_t n = 4, kept = 0, lost = 0;
    if (!b) {
        extra_add(in, E_PRODUCE_ERRORS, in->olen);
        return;
    }
    memcpy(b, "LWP1", 4);
    for (outrec_t *o = in->ohead; o; o = o->next) {
        size_t kl = strlen(o->key), pl = strlen(o->part), tl = o->topic ? strlen(o->topic) : 0;
        size_t need = 1 + 1 + kl + 1 + pl + 2 + tl + 8 + 8 + 4 + o->len;
        if (n + need > KV_MAX || kl > 255 || pl > 255 || tl > 65535) {
            lost++;
            continue;
        }
        uint16_t tl16 = (uint16_t)tl;
        uint32_t vl = (uint32_t)o->len;
        b[n++] = (uint8_t)o->point;
        b[n++] = (uint8_t)kl;
        memcpy(b + n, o->key, kl), n += kl;
        b[n++] = (uint8_t)pl;
        memcpy(b + n, o->part, pl), n += pl;
        memcpy(b + n, &tl16, 2), n += 2;
        if (tl)
            memcpy(b + n, o->topic, tl), n += tl;
        memcpy(b + n, &o->off, 8), n += 8;
        memcpy(b + n, &o->ts, 8), n += 8;
        memcpy(b + n, &vl, 4), n += 4;
        memcpy(b + n, o->value, o->len), n += o->len;
        kept++;
    }
    int rc = host->kv_put(in->ctx, KV_PENDING, b, n);
    free(b);
    if (rc) {
        host->log(in->ctx, STRATA_LOG_ERROR, "stopping: keeping %zu uplinks failed (%s): lost",
                  kept, strerror(-rc));
        lost += kept;
        kept = 0;
    }
    if (lost)
        extra_add(in, E_PRODUCE_ERRORS, lost);
    host->log(in->ctx, lost ? STRATA_LOG_WARN : STRATA_LOG_INFO,
              "stopping: %zu accepted uplinks kept for the next start, %zu lost (over 64 KiB)",
              kept, lost);
}

/* Reads KV_PENDING into the outbox (create). Malformed contents are dropped
 * with a log line, never trusted past their length. */
static void load_pending(inst_t *in)
{
    size_t len = 0;
    if (!kv_usable())
        return;
    uint8_t *b = malloc(KV_MAX);
    if (!b)
        return;
    int rc = host->kv_get(in->ctx, KV_PENDING, b, KV_MAX, &len);
    if (rc || len == 0 || len > KV_MAX) {
        free(b);
        return;
    }
    in->kv_dirty = 1;
    size_t p = 4, restored = 0, skipped = 0;
    if (len < 4 || memcmp(b, "LWP1", 4) != 0)
        p = len + 1; /* not ours: dropped below */
    while (p < len) {
        outrec_t *o = calloc(1, sizeof *o);
        size_t kl, pl, tl;
        uint16_t tl16;
        uint32_t vl;
        if (!o)
            break;
#define NEED(k)                                                                             \
    if (len - p < (size_t)(k)) {                                                            \
        outrec_free(o);                                                                     \
        goto bad;                                                                           \
    }
        NEED(2);
        o->point = b[p++] != 0;
        kl = b[p++];
        NEED(kl + 1);
        if (kl >= sizeof o->key) {
            outrec_free(o);
            goto bad;
        }
        memcpy(o->key, b + p, kl), p += kl;
        pl = b[p++];
        NEED(pl + 2);
        if (pl >= sizeof o->part) {
            outrec_free(o);
            goto bad;
        }
        memcpy(o->part, b + p, pl), p += pl;
        memcpy(&tl16, b + p, 2), p += 2;
        tl = tl16;
        NEED(tl + 20);
        if (tl && !(o->topic = strndup((const char *)b + p, tl))) {
            outrec_free(o);
            break;
        }
        p += tl;
        memcpy(&o->off, b + p, 8), p += 8;
        memcpy(&o->ts, b + p, 8), p += 8;
        memcpy(&vl, b + p, 4), p += 4;
        NEED(vl);
#undef NEED
        o->len = vl;
        if (!(o->value = malloc(vl ? vl : 1))) {
            outrec_free(o);
            break;
        }
        memcpy(o->value, b + p, vl), p += vl;
        /* already with the host (produced before a crash)? */
        int64_t committed;
        if (host->offset_get(in->ctx, o->part, &committed) == 0 && o->off <= committed) {
            skipped++;
            outrec_free(o);
            continue;
        }
        for (size_t i = 0; i < in->ndev; i++) {
            char part[80];
            uint32_t last = 0;
            snprintf(part, sizeof part, "%08" PRIx32 "/%s", in->devs[i].dev_addr, in->devs[i].id);
            if (strcmp(part, o->part) == 0 && o->off >= 0 && o->off <= UINT32_MAX &&
                (!pl_lorawan_up_get_last(in->up, i, &last) || (uint32_t)o->off > last))
                pl_lorawan_up_set_last(in->up, i, (uint32_t)o->off);
        }
        if (in->otail)
            in->otail->next = o;
        else
            in->ohead = o;
        in->otail = o;
        in->olen++;
        restored++;
    }
    goto done;
bad:
    host->log(in->ctx, STRATA_LOG_ERROR, "kv %s: malformed at byte %zu of %zu; the rest dropped",
              KV_PENDING, p, len);
done:
    if (restored || skipped)
        host->log(in->ctx, STRATA_LOG_INFO,
                  "%zu uplinks kept over the last stop restored (%zu already committed)", restored,
                  skipped);
    free(b);
}

/* Produces the outbox in order until EAGAIN. */
static void drain_outbox(inst_t *in)
{
    while (in->ohead) {
        outrec_t *o = in->ohead;
        if (produce_one(in, o) == EAGAIN) {
            watch(in, 0); /* stop reading until the host takes records again */
            arm_retry(in);
            return;
        }
        in->ohead = o->next;
        if (!in->ohead)
            in->otail = NULL;
        in->olen--;
        outrec_free(o);
    }
    if (in->kv_dirty) {
        kv_clear(in); /* the restored records are all with the host now */
        in->kv_dirty = 0;
    }
    if (!in->paused)
        watch(in, 1);
}

static void on_uplink(void *arg, const pl_lorawan_uplink_t *mono_up)
{
    inst_t *in = arg;
    /* the pipeline runs on the monotonic clock; records carry wall time */
    pl_lorawan_uplink_t wall = *mono_up;
    const pl_lorawan_uplink_t *up = &wall;
    wall.first_ms = now_ms(STRATA_CLOCK_REALTIME) - (now_ms(STRATA_CLOCK_MONOTONIC) - mono_up->first_ms);
    outrec_t *o = calloc(1, sizeof *o);
    if (!o)
        goto nomem;
    snprintf(o->key, sizeof o->key, "%s", up->dev->id);
    snprintf(o->part, sizeof o->part, "%08" PRIx32 "/%s", up->dev->dev_addr, up->dev->id);
    o->off = up->fcnt32;
    o->ts = wall.first_ms;
    if (up->dev->topic[0] && !(o->topic = strdup(up->dev->topic)))
        goto nomem;
    if (in->protobuf) {
        o->point = 1;
        o->len = up->payload_len;
        if (!(o->value = malloc(o->len ? o->len : 1)))
            goto nomem;
        memcpy(o->value, up->payload, up->payload_len);
    } else {
        size_t cap = 1024 + 2 * PL_LORAWAN_PHY_MAX + (size_t)up->ngw * 400;
        if (!(o->value = malloc(cap)))
            goto nomem;
        int n = pl_lorawan_uplink_json(up, (char *)o->value, cap);
        if (n < 0) {
            extra_add(in, E_PRODUCE_ERRORS, 1);
            outrec_free(o);
            return;
        }
        o->len = (size_t)n;
    }
    size_t di = (size_t)(up->dev - pl_lorawan_up_device(in->up, 0));
    if (di < in->ndev)
        in->dev_last_ms[di] = o->ts;
    if (!in->ohead && !in->stopping && produce_one(in, o) != EAGAIN) {
        outrec_free(o);
        return;
    }
    /* behind an EAGAIN: keep the order */
    if (in->olen >= OUTBOX_MAX) {
        extra_add(in, E_PRODUCE_ERRORS, 1);
        rlog(in, C_COUNT + E_PRODUCE_ERRORS, STRATA_LOG_ERROR,
             "outbox full (%d records behind EAGAIN): dropping %s fcnt %" PRId64, OUTBOX_MAX,
             o->key, o->off);
        outrec_free(o);
        return;
    }
    if (in->otail)
        in->otail->next = o;
    else
        in->ohead = o;
    in->otail = o;
    in->olen++;
    if (in->stopping)
        return;
    watch(in, 0);
    arm_retry(in);
    return;
nomem:
    outrec_free(o);
    extra_add(in, E_PRODUCE_ERRORS, 1);
    rlog(in, C_COUNT + E_PRODUCE_ERRORS, STRATA_LOG_ERROR, "out of memory: uplink of %s dropped",
         up->dev->id);
}

/* ---- timers, socket -------------------------------------------------------------------- */

enum { T_FLUSH = 1, T_RETRY = 2 };

static void arm_flush(inst_t *in)
{
    if (in->flush_timer > 0)
        return;
    int64_t next = pl_lorawan_up_flush(in->up, now_ms(STRATA_CLOCK_MONOTONIC), 0);
    if (next < 0)
        return;
    int64_t d = next - now_ms(STRATA_CLOCK_MONOTONIC);
    int64_t id = host->timer_add(in->ctx, d > 0 ? (uint64_t)d : 0, 0, (void *)(intptr_t)T_FLUSH);
    if (id > 0)
        in->flush_timer = id;
}

static void arm_retry(inst_t *in)
{
    if (in->retry_timer > 0)
        return;
    int64_t id = host->timer_add(in->ctx, RETRY_MS, 0, (void *)(intptr_t)T_RETRY);
    if (id > 0)
        in->retry_timer = id;
}

static void watch(inst_t *in, int on)
{
    if (in->fd < 0 || on == in->watching)
        return;
    if (on) {
        if (host->fd_watch(in->ctx, in->fd, STRATA_FD_READ, NULL) == 0)
            in->watching = 1;
    } else {
        host->fd_unwatch(in->ctx, in->fd);
        in->watching = 0;
    }
}

static void note_gateway(inst_t *in, const uint8_t *d, size_t n, const struct sockaddr_storage *sa,
                         socklen_t sl, int64_t t)
{
    pl_lorawan_gwmp_t g;
    if (pl_lorawan_gwmp_parse(d, n, &g))
        return;
    int i;
    for (i = 0; i < in->ngw; i++)
        if (in->gw[i].eui == g.gw_eui)
            break;
    if (i == in->ngw) {
        if (in->ngw == MAX_GATEWAYS)
            return;
        in->ngw++;
        memset(&in->gw[i], 0, sizeof in->gw[i]);
        in->gw[i].eui = g.gw_eui;
        host->log(in->ctx, STRATA_LOG_INFO, "gateway %016" PRIx64 " seen", g.gw_eui);
    }
    in->gw[i].addr = *sa;
    in->gw[i].addrlen = sl;
    in->gw[i].last_ms = t;
    in->gw[i].datagrams++;
}

static void read_socket(inst_t *in)
{
    for (int k = 0; k < DRAIN_PER_EVENT && in->watching; k++) {
        struct sockaddr_storage sa;
        socklen_t sl = sizeof sa;
        ssize_t n = recvfrom(in->fd, in->buf, sizeof in->buf, 0, (struct sockaddr *)&sa, &sl);
        if (n < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                rlog(in, C_bad_datagrams, STRATA_LOG_WARN, "recvfrom: %s", strerror(errno));
            break;
        }
        uint8_t ack[4];
        int64_t t = now_ms(STRATA_CLOCK_MONOTONIC);
        note_gateway(in, in->buf, (size_t)n, &sa, sl, t);
        size_t al = pl_lorawan_up_datagram(in->up, in->buf, (size_t)n, t, ack);
        if (al && sendto(in->fd, ack, al, 0, (struct sockaddr *)&sa, sl) < 0)
            rlog(in, C_datagrams, STRATA_LOG_WARN, "sending the ACK: %s", strerror(errno));
        sync_counters(in, in->buf, (size_t)n);
    }
    arm_flush(in);
}

/* ---- config ---------------------------------------------------------------------------- */

static const strata_plugin_param_t params[] = {
    {sizeof(strata_plugin_param_t), STRATA_PARAM_STRING, "listen.address", "0.0.0.0", NULL,
     "UDP address the packet forwarders send to (IPv4 or IPv6 literal, or a host name)", 0, 0, 0,
     0},
    {sizeof(strata_plugin_param_t), STRATA_PARAM_INT, "listen.port", "1700", NULL,
     "UDP port (the forwarders' serv_port_up and serv_port_down)", 1, 65535,
     STRATA_PARAM_HAS_RANGE, 0},
    {sizeof(strata_plugin_param_t), STRATA_PARAM_INT, "dedup.window.ms", "200", NULL,
     "How long an uplink waits for copies from other gateways before it is produced", 0, 60000,
     STRATA_PARAM_HAS_RANGE, 0},
    {sizeof(strata_plugin_param_t), STRATA_PARAM_INT, "log.interval.ms", "10000", NULL,
     "At most one log line per kind of bad input per interval (the rest are counted)", 0,
     86400000, STRATA_PARAM_HAS_RANGE, 0},
    {sizeof(strata_plugin_param_t), STRATA_PARAM_STRING, "device.*.dev_addr", NULL, NULL,
     "The device's DevAddr, 8 hex digits as printed (MSB first), e.g. 26011bda", 0, 0,
     STRATA_PARAM_REQUIRED, 0},
    {sizeof(strata_plugin_param_t), STRATA_PARAM_STRING, "device.*.nwk_skey", NULL, NULL,
     "NwkSKey, 32 hex digits (MIC, FPort 0 payloads)", 0, 0, STRATA_PARAM_REQUIRED, 0},
    {sizeof(strata_plugin_param_t), STRATA_PARAM_STRING, "device.*.app_skey", NULL, NULL,
     "AppSKey, 32 hex digits (FPort 1..255 payloads)", 0, 0, STRATA_PARAM_REQUIRED, 0},
    {sizeof(strata_plugin_param_t), STRATA_PARAM_STRING, "device.*.id", NULL, NULL,
     "Device id: the record key (default: the name in device.<name>.)", 0, 0, 0, 0},
    {sizeof(strata_plugin_param_t), STRATA_PARAM_INT, "device.*.fcnt.last", NULL, NULL,
     "The device's last frame counter when it is added (one already past 0xFFFF); the "
     "committed source offset wins once there is one",
     0, 4294967295.0, STRATA_PARAM_HAS_RANGE, 0},
    {sizeof(strata_plugin_param_t), STRATA_PARAM_STRING, "device.*.topic", NULL, NULL,
     "Topic for this device's uplinks (default: the instance's topic)", 0, 0, 0, 0},
};

static int parse_int(const char *v, int64_t lo, int64_t hi, int64_t *out)
{
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno || end == v || *end || x < lo || x > hi)
        return -1;
    *out = x;
    return 0;
}

/* The device names (the <name> of device.<name>.*), deduplicated, in order. */
static size_t device_names(const strata_config_t *cfg, char (*names)[64], size_t max)
{
    size_t n = 0;
    for (uint32_t i = 0; i < cfg->count; i++) {
        const char *k = cfg->keys[i];
        if (strncmp(k, "device.", 7) != 0)
            continue;
        const char *s = k + 7, *dot = strchr(s, '.');
        if (!dot || dot == s || (size_t)(dot - s) >= 64)
            continue;
        char nm[64];
        memcpy(nm, s, (size_t)(dot - s));
        nm[dot - s] = 0;
        size_t j;
        for (j = 0; j < n; j++)
            if (strcmp(names[j], nm) == 0)
                break;
        if (j == n && n < max)
            memcpy(names[n++], nm, 64);
    }
    return n;
}

static const char *dev_get(const strata_config_t *cfg, const char *dev, const char *field)
{
    char k[160];
    snprintf(k, sizeof k, "device.%s.%s", dev, field);
    return strata_config_get(cfg, k);
}

/* Parses and checks the whole config. On error: a message naming the key. */
static int parse_config(const strata_config_t *cfg, inst_t *in, pl_lorawan_device_t **devs_out,
                        size_t *ndev_out, char *err, size_t errlen)
{
    int64_t v;
    const char *s;
    pl_lorawan_device_t *devs = NULL;
    char(*names)[64] = NULL;
    int rc = -EINVAL;

    s = strata_config_get(cfg, "listen.address");
    snprintf(in->addr, sizeof in->addr, "%s", s ? s : "0.0.0.0");
    if (s && (!*s || strlen(s) >= sizeof in->addr)) {
        snprintf(err, errlen, "key 'listen.address': '%s' is not an address", s);
        goto out;
    }
    s = strata_config_get(cfg, "listen.port");
    if (s && parse_int(s, 1, 65535, &v)) {
        snprintf(err, errlen, "key 'listen.port': '%s' is not a port in [1, 65535]", s);
        goto out;
    }
    in->port = s ? (int)v : 1700;
    s = strata_config_get(cfg, "dedup.window.ms");
    if (s && parse_int(s, 0, 60000, &v)) {
        snprintf(err, errlen, "key 'dedup.window.ms': '%s' is not an integer in [0, 60000]", s);
        goto out;
    }
    in->window_ms = s ? (uint32_t)v : 200;
    s = strata_config_get(cfg, "log.interval.ms");
    if (s && parse_int(s, 0, 86400000, &v)) {
        snprintf(err, errlen, "key 'log.interval.ms': '%s' is not an integer in [0, 86400000]",
                 s);
        goto out;
    }
    in->log_interval_ms = s ? v : 10000;
    s = strata_config_get(cfg, "format");
    in->protobuf = s && strcmp(s, "protobuf") == 0;

    if (!(names = calloc(MAX_DEVICES + 1, sizeof *names)))
        goto nomem;
    size_t n = device_names(cfg, names, MAX_DEVICES + 1);
    if (n == 0) {
        snprintf(err, errlen, "no devices: give device.<name>.dev_addr, .nwk_skey and .app_skey");
        goto out;
    }
    if (n > MAX_DEVICES) {
        snprintf(err, errlen, "more than %d devices", MAX_DEVICES);
        goto out;
    }
    if (!(devs = calloc(n, sizeof *devs)) || !(in->cfg_last = calloc(n, sizeof *in->cfg_last)))
        goto nomem;
    for (size_t i = 0; i < n; i++) {
        pl_lorawan_device_t *d = &devs[i];
        const char *a = dev_get(cfg, names[i], "dev_addr");
        const char *nk = dev_get(cfg, names[i], "nwk_skey");
        const char *ak = dev_get(cfg, names[i], "app_skey");
        const char *id = dev_get(cfg, names[i], "id");
        const char *tp = dev_get(cfg, names[i], "topic");
        uint8_t b[4];
        if (!a || pl_lorawan_hex_decode(a, b, 4)) {
            snprintf(err, errlen, "key 'device.%s.dev_addr': %s%s%s", names[i],
                     a ? "'" : "missing", a ? a : "", a ? "' is not 8 hex digits" : "");
            goto out;
        }
        d->dev_addr = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
        if (!nk || pl_lorawan_hex_decode(nk, d->nwk_skey, 16)) {
            snprintf(err, errlen, "key 'device.%s.nwk_skey': %s", names[i],
                     nk ? "not 32 hex digits" : "missing");
            goto out;
        }
        if (!ak || pl_lorawan_hex_decode(ak, d->app_skey, 16)) {
            snprintf(err, errlen, "key 'device.%s.app_skey': %s", names[i],
                     ak ? "not 32 hex digits" : "missing");
            goto out;
        }
        if (!id)
            id = names[i];
        if (!*id || strlen(id) >= sizeof d->id || strchr(id, '/')) {
            snprintf(err, errlen, "key 'device.%s.id': '%s' must be 1..63 bytes without '/'",
                     names[i], id);
            goto out;
        }
        snprintf(d->id, sizeof d->id, "%s", id);
        for (size_t j = 0; j < i; j++)
            if (strcmp(devs[j].id, d->id) == 0) {
                snprintf(err, errlen, "key 'device.%s.id': '%s' is used by another device",
                         names[i], id);
                goto out;
            }
        if (tp && (!*tp || strlen(tp) >= sizeof d->topic)) {
            snprintf(err, errlen, "key 'device.%s.topic': not a topic name", names[i]);
            goto out;
        }
        if (tp)
            snprintf(d->topic, sizeof d->topic, "%s", tp);
        const char *fl = dev_get(cfg, names[i], "fcnt.last");
        in->cfg_last[i] = -1;
        if (fl && parse_int(fl, 0, UINT32_MAX, &in->cfg_last[i])) {
            snprintf(err, errlen, "key 'device.%s.fcnt.last': '%s' is not in [0, 4294967295]",
                     names[i], fl);
            goto out;
        }
    }
    *devs_out = devs;
    *ndev_out = n;
    devs = NULL;
    rc = 0;
    goto out;
nomem:
    snprintf(err, errlen, "out of memory");
    rc = -ENOMEM;
out:
    if (rc) {
        free(in->cfg_last);
        in->cfg_last = NULL;
    }
    free(devs);
    free(names);
    return rc;
}

/* ---- ops ------------------------------------------------------------------------------- */

static int lw_validate(const strata_config_t *cfg, char *err, size_t err_len)
{
    inst_t *in = calloc(1, sizeof *in);
    pl_lorawan_device_t *devs = NULL;
    size_t n = 0;
    if (!in) {
        snprintf(err, err_len, "out of memory");
        return -ENOMEM;
    }
    int rc = parse_config(cfg, in, &devs, &n, err, err_len);
    free(devs);
    free(in->cfg_last);
    free(in);
    return rc;
}

static void lw_destroy(void *p);

static int lw_create(strata_host_ctx_t *ctx, const strata_config_t *cfg, void **out)
{
    char err[256];
    inst_t *in = calloc(1, sizeof *in);
    if (!in)
        return -ENOMEM;
    in->ctx = ctx;
    in->fd = -1;
    const char *nm = STRATA_HAS_FIELD(host, host->struct_size, strata_host_api_t, instance_name) &&
                             host->instance_name
                         ? host->instance_name(ctx)
                         : "lorawan";
    snprintf(in->name, sizeof in->name, "%s", nm ? nm : "lorawan");
    int rc = parse_config(cfg, in, &in->devs, &in->ndev, err, sizeof err);
    if (rc) {
        host->log(ctx, STRATA_LOG_ERROR, "%s", err);
        free(in);
        return rc;
    }
    if ((rc = pl_lorawan_up_new(in->devs, in->ndev, in->window_ms, on_uplink, in, &in->up)) ||
        !(in->dev_last_ms = calloc(in->ndev, sizeof *in->dev_last_ms))) {
        lw_destroy(in);
        return rc ? rc : -ENOMEM;
    }
    for (int i = 0; i < C_COUNT + E_COUNT; i++) {
        const char *mn = i < C_COUNT ? counter_names[i] : extra_names[i - C_COUNT];
        const char *mh = i < C_COUNT ? counter_help[i] : extra_help[i - C_COUNT];
        char full[64];
        snprintf(full, sizeof full, "lorawan.%s", mn);
        in->metric[i] = host->metric_register(ctx, full, STRATA_METRIC_COUNTER, mh);
    }
    /* the last durable frame counter of each device: frames at or below it
     * are replays after a restart */
    for (size_t i = 0; i < in->ndev; i++) {
        char part[80];
        int64_t off;
        snprintf(part, sizeof part, "%08" PRIx32 "/%s", in->devs[i].dev_addr, in->devs[i].id);
        if (host->offset_get(ctx, part, &off) == 0 && off >= 0 && off <= UINT32_MAX) {
            pl_lorawan_up_set_last(in->up, i, (uint32_t)off);
            host->log(ctx, STRATA_LOG_INFO, "device %s: resuming above frame counter %" PRId64,
                      in->devs[i].id, off);
        } else if (in->cfg_last[i] >= 0) {
            pl_lorawan_up_set_last(in->up, i, (uint32_t)in->cfg_last[i]);
            host->log(ctx, STRATA_LOG_INFO, "device %s: starting above frame counter %" PRId64
                      " (device.<d>.fcnt.last)", in->devs[i].id, in->cfg_last[i]);
        }
    }
    load_pending(in);
    *out = in;
    return 0;
}

static int lw_start(void *p)
{
    inst_t *in = p;
    struct addrinfo hints, *ai = NULL;
    char port[8];
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_DGRAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    snprintf(port, sizeof port, "%d", in->port);
    int gai = getaddrinfo(in->addr, port, &hints, &ai);
    if (gai) {
        host->log(in->ctx, STRATA_LOG_ERROR, "listen.address %s: %s", in->addr, gai_strerror(gai));
        host->set_link_state(in->ctx, STRATA_LINK_DOWN, "cannot resolve listen.address");
        return -EINVAL;
    }
    int fd = socket(ai->ai_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int rc = 0;
    if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
        rc = -errno;
        host->log(in->ctx, STRATA_LOG_ERROR, "UDP %s:%d: %s", in->addr, in->port, strerror(errno));
        snprintf(in->last_error, sizeof in->last_error, "bind %s:%d: %s", in->addr, in->port,
                 strerror(errno));
        host->set_link_state(in->ctx, STRATA_LINK_DOWN, in->last_error);
        if (fd >= 0)
            close(fd);
        freeaddrinfo(ai);
        return rc;
    }
    freeaddrinfo(ai);
    int sz = 4 << 20;
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
    in->fd = fd;
    watch(in, 1);
    if (!in->watching) {
        close(fd);
        in->fd = -1;
        return -EIO;
    }
    if (in->ohead || in->kv_dirty)
        drain_outbox(in); /* the uplinks kept over the last stop, first */
    host->set_link_state(in->ctx, STRATA_LINK_UP, NULL);
    host->log(in->ctx, STRATA_LOG_INFO,
              "GWMP server on UDP %s:%d, %zu devices, dedup window %u ms, format %s", in->addr,
              in->port, in->ndev, in->window_ms, in->protobuf ? "protobuf" : "json");
    return 0;
}

static void lw_stop(void *p)
{
    inst_t *in = p;
    /* what is inside the dedup window was accepted (its counters moved on):
     * into the outbox, and the outbox into kv for the next start */
    in->stopping = 1;
    pl_lorawan_up_flush(in->up, INT64_MAX, 1);
    watch(in, 0);
    if (in->fd >= 0)
        close(in->fd);
    in->fd = -1;
    if (in->flush_timer > 0)
        host->timer_del(in->ctx, in->flush_timer);
    if (in->retry_timer > 0)
        host->timer_del(in->ctx, in->retry_timer);
    in->flush_timer = in->retry_timer = 0;
    if (in->ohead)
        save_pending(in);
    else if (in->kv_dirty)
        kv_clear(in);
}

static void lw_destroy(void *p)
{
    inst_t *in = p;
    if (!in)
        return;
    while (in->ohead) {
        outrec_t *o = in->ohead;
        in->ohead = o->next;
        outrec_free(o);
    }
    if (in->fd >= 0)
        close(in->fd);
    pl_lorawan_up_free(in->up);
    free(in->devs);
    free(in->cfg_last);
    free(in->dev_last_ms);
    free(in);
}

static void lw_pause(void *p)
{
    inst_t *in = p;
    in->paused = 1;
    watch(in, 0);
}

static void lw_resume(void *p)
{
    inst_t *in = p;
    in->paused = 0;
    drain_outbox(in); /* re-watches the socket once the outbox is empty */
}

static void lw_committed(void *p, const char *part, int64_t off)
{
    inst_t *in = p;
    if (in->ohead)
        drain_outbox(in);
}

static void lw_on_fd(void *p, int fd, uint32_t events, void *arg)
{
    inst_t *in = p;
    if (fd == in->fd)
        read_socket(in);
}

static void lw_on_timer(void *p, int64_t id, void *arg)
{
    inst_t *in = p;
    if ((intptr_t)arg == T_FLUSH) {
        if (id == in->flush_timer)
            in->flush_timer = 0;
        arm_flush(in); /* flushes what is due, re-arms for the rest */
        sync_counters(in, NULL, 0);
    } else {
        if (id == in->retry_timer)
            in->retry_timer = 0;
        drain_outbox(in);
    }
}

static uint64_t errors_total(const inst_t *in)
{
    const pl_lorawan_counters_t *c = pl_lorawan_up_counters(in->up);
    return c->bad_datagrams + c->bad_json + c->rxpk_invalid + c->phy_invalid + c->unknown_device +
           c->bad_mic + c->replay + c->crypto_errors + in->extra[E_PRODUCE_ERRORS];
}

static void lw_health(void *p, strata_health_t *out)
{
    inst_t *in = p;
    size_t sz = out->struct_size;
    if (STRATA_HAS_FIELD(out, sz, strata_health_t, link_state))
        out->link_state = in->fd >= 0 ? STRATA_LINK_UP : STRATA_LINK_DOWN;
    if (STRATA_HAS_FIELD(out, sz, strata_health_t, errors))
        out->errors = errors_total(in);
    if (STRATA_HAS_FIELD(out, sz, strata_health_t, messages_in))
        out->messages_in = pl_lorawan_up_counters(in->up)->datagrams;
    if (STRATA_HAS_FIELD(out, sz, strata_health_t, last_error))
        set_str(out->last_error, sizeof out->last_error, in->last_error);
}

typedef struct {
    char *b;
    size_t len, pos;
} sbuf_t;

static void sput(sbuf_t *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sput(sbuf_t *s, const char *fmt, ...)
{
    if (s->pos + 1 >= s->len)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(s->b + s->pos, s->len - s->pos, fmt, ap);
    va_end(ap);
    if (n > 0)
        s->pos = s->pos + (size_t)n < s->len ? s->pos + (size_t)n : s->len - 1;
}

/* {"listen":..,"counters":{..},"devices":[{"id","dev_addr","fcnt","last_ms"}],
 *  "gateways":[{"gw_eui","addr","datagrams","last_ms"}]} -- truncated to len */
static size_t lw_describe(void *p, char *buf, size_t len)
{
    inst_t *in = p;
    sbuf_t s = {buf, len, 0};
    if (!len)
        return 0;
    buf[0] = 0;
    const pl_lorawan_counters_t *c = pl_lorawan_up_counters(in->up);
    sput(&s, "{\"listen\":\"%s:%d\",\"dedup_window_ms\":%u,\"outbox\":%zu,\"counters\":{",
         in->addr, in->port, in->window_ms, in->olen);
    for (int i = 0; i < C_COUNT; i++)
        sput(&s, "%s\"%s\":%" PRIu64, i ? "," : "", counter_names[i], counter_at(c, i));
    for (int e = 0; e < E_COUNT; e++)
        sput(&s, ",\"%s\":%" PRIu64, extra_names[e], in->extra[e]);
    sput(&s, "},\"devices\":[");
    for (size_t i = 0; i < in->ndev; i++) {
        const pl_lorawan_device_t *d = pl_lorawan_up_device(in->up, i);
        uint32_t f;
        char idq[2 * sizeof d->id + 8];
        size_t ql = 0;
        if (pl_lorawan_json_put_str(idq, sizeof idq, &ql, d->id, strlen(d->id)))
            set_str(idq, sizeof idq, "\"?\"");
        sput(&s, "%s{\"id\":%s,\"dev_addr\":\"%08" PRIx32 "\"", i ? "," : "", idq, d->dev_addr);
        if (pl_lorawan_up_get_last(in->up, i, &f))
            sput(&s, ",\"fcnt\":%" PRIu32, f);
        if (in->dev_last_ms[i])
            sput(&s, ",\"last_uplink_ms\":%" PRId64, in->dev_last_ms[i]);
        sput(&s, "}");
    }
    sput(&s, "],\"gateways\":[");
    int64_t t = now_ms(STRATA_CLOCK_MONOTONIC);
    for (int i = 0; i < in->ngw; i++) {
        char host_s[INET6_ADDRSTRLEN] = "?";
        int port = 0;
        const struct sockaddr_storage *sa = &in->gw[i].addr;
        if (sa->ss_family == AF_INET) {
            const struct sockaddr_in *a4 = (const struct sockaddr_in *)sa;
            inet_ntop(AF_INET, &a4->sin_addr, host_s, sizeof host_s);
            port = ntohs(a4->sin_port);
        } else if (sa->ss_family == AF_INET6) {
            const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)sa;
            inet_ntop(AF_INET6, &a6->sin6_addr, host_s, sizeof host_s);
            port = ntohs(a6->sin6_port);
        }
        sput(&s,
             "%s{\"gw_eui\":\"%016" PRIx64 "\",\"addr\":\"%s:%d\",\"datagrams\":%" PRIu64
             ",\"idle_ms\":%" PRId64 "}",
             i ? "," : "", in->gw[i].eui, host_s, port, in->gw[i].datagrams, t - in->gw[i].last_ms);
    }
    sput(&s, "]}");
    return s.pos;
}

static const strata_plugin_ops_t ops = {
    .struct_size = sizeof(strata_plugin_ops_t),
    .validate = lw_validate,
    .create = lw_create,
    .start = lw_start,
    .stop = lw_stop,
    .destroy = lw_destroy,
    .pause = lw_pause,
    .resume = lw_resume,
    .committed = lw_committed,
    .health = lw_health,
    .on_fd = lw_on_fd,
    .on_timer = lw_on_timer,
    .describe = lw_describe,
};

static const strata_plugin_desc_t desc = {
    .struct_size = sizeof(strata_plugin_desc_t),
    .abi_major = STRATA_PLUGIN_ABI_MAJOR,
    .abi_minor = STRATA_PLUGIN_ABI_MINOR,
    .name = "lorawan",
    .version = PLUGIN_VERSION,
    .description = "LoRaWAN 1.0.x ABP uplinks from Semtech UDP packet forwarders (GWMP v2)",
    .kind = STRATA_PLUGIN_KIND_SOURCE,
    .param_size = sizeof(strata_plugin_param_t),
    .caps = STRATA_PLUGIN_CAP_PAUSE | STRATA_PLUGIN_CAP_SOURCE_OFFSETS |
            STRATA_PLUGIN_CAP_FD_EVENTS | STRATA_PLUGIN_CAP_TIMERS,
    .required_host_caps = STRATA_HOST_CAP_PRODUCE | STRATA_HOST_CAP_TIMERS |
                          STRATA_HOST_CAP_FD_WATCH | STRATA_HOST_CAP_METRICS,
    .params = params,
    .param_count = sizeof params / sizeof params[0],
    .ops = &ops,
};

STRATA_PLUGIN_EXPORT const strata_plugin_desc_t *
strata_plugin_entry_v1(uint32_t host_abi_major, uint32_t host_abi_minor,
                       const strata_host_api_t *h);

STRATA_PLUGIN_EXPORT const strata_plugin_desc_t *
strata_plugin_entry_v1(uint32_t host_abi_major, uint32_t host_abi_minor,
                       const strata_host_api_t *h)
{
    if (!h || host_abi_major != STRATA_PLUGIN_ABI_MAJOR ||
        !STRATA_HAS_FIELD(h, h->struct_size, strata_host_api_t, backoff_next)) {
        if (h && h->log)
            h->log(NULL, STRATA_LOG_ERROR, "lorawan: needs plugin ABI %d.x, host has %u.%u",
                   STRATA_PLUGIN_ABI_MAJOR, host_abi_major, host_abi_minor);
        return NULL;
    }
    host = h;
    return &desc;
}
