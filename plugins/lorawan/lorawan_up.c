/*
 * lorawan_up -- the uplink pipeline; see lorawan_up.h for the steps.
 *
 * Pending uplinks live in a FIFO ring: the window is the same for all, so
 * deadlines are in arrival order and the head is always the next to emit.
 * A full ring emits its head early (counted) rather than dropping anything.
 * Dedup compares the whole PHYPayload with each pending uplink's: gateways
 * forward the same bytes, and at most PL_LORAWAN_MAX_PENDING are compared.
 */
#include "lorawan_up.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TOKENS 8192 /* JSON tokens per PUSH_DATA (a full 64 KiB datagram needs fewer) */

typedef struct {
    int have_last;
    uint32_t last;
    uint8_t last_mic[4];
} devstate_t;

typedef struct {
    size_t dev;
    uint32_t fcnt32;
    uint8_t phy[PL_LORAWAN_PHY_MAX];
    size_t phy_len;
    uint8_t payload[PL_LORAWAN_PHY_MAX];
    size_t payload_len;
    pl_lorawan_rxmeta_t gw[PL_LORAWAN_MAX_GW];
    int ngw;
    int64_t first_ms, deadline;
} pending_t;

struct pl_lorawan_up {
    pl_lorawan_device_t *devs;
    devstate_t *st;
    uint64_t *by_addr; /* dev_addr << 32 | device index, sorted */
    size_t ndev;
    uint32_t window;
    pl_lorawan_emit_cb emit;
    void *arg;
    pending_t *ring;
    size_t head, count;
    pl_lorawan_jtok_t *tok;
    pl_lorawan_counters_t c;
    int64_t now; /* of the datagram being handled */
};

static int u64_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int pl_lorawan_up_new(const pl_lorawan_device_t *devs, size_t n, uint32_t window_ms,
                      pl_lorawan_emit_cb emit, void *arg, pl_lorawan_up_t **out)
{
    pl_lorawan_up_t *u;
    if (n > 65535)
        return -EINVAL;
    if (!(u = calloc(1, sizeof(*u))))
        return -ENOMEM;
    u->devs = calloc(n ? n : 1, sizeof(*u->devs));
    u->st = calloc(n ? n : 1, sizeof(*u->st));
    u->by_addr = calloc(n ? n : 1, sizeof(*u->by_addr));
    u->ring = calloc(PL_LORAWAN_MAX_PENDING, sizeof(*u->ring));
    u->tok = calloc(MAX_TOKENS, sizeof(*u->tok));
    if (!u->devs || !u->st || !u->by_addr || !u->ring || !u->tok) {
        pl_lorawan_up_free(u);
        return -ENOMEM;
    }
    if (n)
        memcpy(u->devs, devs, n * sizeof(*devs));
    u->ndev = n;
    for (size_t i = 0; i < n; i++)
        u->by_addr[i] = (uint64_t)devs[i].dev_addr << 32 | i;
    qsort(u->by_addr, n, sizeof(*u->by_addr), u64_cmp);
    u->window = window_ms;
    u->emit = emit;
    u->arg = arg;
    *out = u;
    return 0;
}

void pl_lorawan_up_free(pl_lorawan_up_t *u)
{
    if (!u)
        return;
    free(u->devs);
    free(u->st);
    free(u->by_addr);
    free(u->ring);
    free(u->tok);
    free(u);
}

int pl_lorawan_up_set_last(pl_lorawan_up_t *u, size_t i, uint32_t fcnt32)
{
    if (i >= u->ndev)
        return -EINVAL;
    u->st[i].have_last = 1;
    u->st[i].last = fcnt32;
    memset(u->st[i].last_mic, 0, 4);
    return 0;
}

int pl_lorawan_up_get_last(const pl_lorawan_up_t *u, size_t i, uint32_t *fcnt32)
{
    if (i >= u->ndev || !u->st[i].have_last)
        return 0;
    *fcnt32 = u->st[i].last;
    return 1;
}

int pl_lorawan_up_find(const pl_lorawan_up_t *u, const char *id)
{
    for (size_t i = 0; i < u->ndev; i++)
        if (strcmp(u->devs[i].id, id) == 0)
            return (int)i;
    return -1;
}

const pl_lorawan_device_t *pl_lorawan_up_device(const pl_lorawan_up_t *u, size_t i)
{
    return i < u->ndev ? &u->devs[i] : NULL;
}

size_t pl_lorawan_up_ndevices(const pl_lorawan_up_t *u)
{
    return u->ndev;
}

const pl_lorawan_counters_t *pl_lorawan_up_counters(const pl_lorawan_up_t *u)
{
    return &u->c;
}

static void emit_head(pl_lorawan_up_t *u)
{
    pending_t *p = &u->ring[u->head];
    pl_lorawan_uplink_t up;
    memset(&up, 0, sizeof(up));
    up.dev = &u->devs[p->dev];
    up.fcnt32 = p->fcnt32;
    (void)pl_lorawan_phy_parse(p->phy, p->phy_len, &up.phy); /* parsed before: cannot fail */
    up.payload = p->payload;
    up.payload_len = p->payload_len;
    up.gw = p->gw;
    up.ngw = p->ngw;
    up.first_ms = p->first_ms;
    u->head = (u->head + 1) % PL_LORAWAN_MAX_PENDING;
    u->count--;
    u->c.uplinks++;
    if (u->emit)
        u->emit(u->arg, &up);
}

int64_t pl_lorawan_up_flush(pl_lorawan_up_t *u, int64_t now_ms, int all)
{
    while (u->count && (all || u->ring[u->head].deadline <= now_ms))
        emit_head(u);
    return u->count ? u->ring[u->head].deadline : -1;
}

/* The pending uplink holding exactly these bytes, or NULL. */
static pending_t *pending_find(pl_lorawan_up_t *u, const uint8_t *phy, size_t len)
{
    for (size_t k = 0; k < u->count; k++) {
        pending_t *p = &u->ring[(u->head + k) % PL_LORAWAN_MAX_PENDING];
        if (p->phy_len == len && memcmp(p->phy, phy, len) == 0)
            return p;
    }
    return NULL;
}

static void add_gw(pl_lorawan_up_t *u, pending_t *p, uint64_t gw_eui,
                   const pl_lorawan_rxmeta_t *m)
{
    for (int i = 0; i < p->ngw; i++)
        if (p->gw[i].gw_eui == gw_eui)
            return; /* the same gateway forwarded it twice: one entry */
    if (p->ngw >= PL_LORAWAN_MAX_GW) {
        u->c.gw_overflow++;
        return;
    }
    p->gw[p->ngw] = *m;
    p->gw[p->ngw].gw_eui = gw_eui;
    p->ngw++;
}

void pl_lorawan_up_rx(pl_lorawan_up_t *u, uint64_t gw_eui, const pl_lorawan_rxpk_t *rx,
                      int64_t now_ms)
{
    pl_lorawan_phy_t f;
    if (pl_lorawan_phy_parse(rx->phy, rx->phy_len, &f)) {
        u->c.phy_invalid++;
        return;
    }
    if (f.mtype == PL_LORAWAN_JOIN_REQUEST) {
        u->c.join_requests++;
        return;
    }
    if (f.mtype != PL_LORAWAN_UNCONFIRMED_UP && f.mtype != PL_LORAWAN_CONFIRMED_UP) {
        u->c.not_uplink++;
        return;
    }
    pending_t *p = pending_find(u, rx->phy, rx->phy_len);
    if (p) {
        u->c.duplicates++;
        add_gw(u, p, gw_eui, &rx->meta);
        return;
    }

    /* the devices sharing this DevAddr: the MIC tells them apart */
    size_t lo = 0, hi = u->ndev;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (u->by_addr[mid] >> 32 < f.dev_addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == u->ndev || u->by_addr[lo] >> 32 != f.dev_addr) {
        u->c.unknown_device++;
        return;
    }
    int replay = 0, late = 0;
    size_t dev = SIZE_MAX;
    uint32_t fcnt32 = 0;
    for (size_t k = lo; k < u->ndev && u->by_addr[k] >> 32 == f.dev_addr; k++) {
        size_t d = (size_t)(u->by_addr[k] & 0xFFFFFFFFu);
        uint32_t c32 = 0;
        int r = pl_lorawan_fcnt_verify(&f, u->devs[d].nwk_skey, u->st[d].have_last,
                                       u->st[d].last, &c32);
        if (r < 0) {
            u->c.crypto_errors++;
            return;
        }
        if (r == PL_LORAWAN_FCNT_OK) {
            dev = d;
            fcnt32 = c32;
            break;
        }
        if (r == PL_LORAWAN_FCNT_REPLAY) {
            replay = 1;
            if (c32 == u->st[d].last && memcmp(f.mic, u->st[d].last_mic, 4) == 0)
                late = 1;
        }
    }
    if (dev == SIZE_MAX) {
        if (late)
            u->c.late_duplicates++;
        else if (replay)
            u->c.replay++;
        else
            u->c.bad_mic++;
        return;
    }

    if (u->count == PL_LORAWAN_MAX_PENDING) {
        u->c.early_flush++;
        emit_head(u);
    }
    p = &u->ring[(u->head + u->count) % PL_LORAWAN_MAX_PENDING];
    memset(p, 0, offsetof(pending_t, gw));
    p->ngw = 0;
    p->dev = dev;
    p->fcnt32 = fcnt32;
    memcpy(p->phy, rx->phy, rx->phy_len);
    p->phy_len = rx->phy_len;
    if (f.has_fport && f.frm_len) {
        const uint8_t *key = f.fport == 0 ? u->devs[dev].nwk_skey : u->devs[dev].app_skey;
        if (pl_lorawan_crypt(key, 0, f.dev_addr, fcnt32, f.frm, f.frm_len, p->payload)) {
            u->c.crypto_errors++;
            return;
        }
        p->payload_len = f.frm_len;
    }
    p->first_ms = now_ms;
    p->deadline = now_ms + u->window;
    add_gw(u, p, gw_eui, &rx->meta);
    u->st[dev].have_last = 1;
    u->st[dev].last = fcnt32;
    memcpy(u->st[dev].last_mic, f.mic, 4);
    u->count++;
    if (u->window == 0)
        pl_lorawan_up_flush(u, now_ms, 0);
}

typedef struct {
    pl_lorawan_up_t *u;
    uint64_t gw_eui;
} rx_ctx_t;

static void on_rxpk(void *arg, const pl_lorawan_rxpk_t *rx)
{
    rx_ctx_t *c = arg;
    pl_lorawan_up_rx(c->u, c->gw_eui, rx, c->u->now);
}

size_t pl_lorawan_up_datagram(pl_lorawan_up_t *u, const uint8_t *d, size_t n, int64_t now_ms,
                              uint8_t ack[4])
{
    pl_lorawan_gwmp_t g;
    u->c.datagrams++;
    if (pl_lorawan_gwmp_parse(d, n, &g)) {
        u->c.bad_datagrams++;
        return 0;
    }
    size_t alen = pl_lorawan_gwmp_ack(&g, ack);
    switch (g.ident) {
    case PL_LORAWAN_PULL_DATA:
        u->c.pull_data++;
        break;
    case PL_LORAWAN_TX_ACK:
        u->c.tx_ack++;
        break;
    case PL_LORAWAN_PUSH_DATA: {
        pl_lorawan_rxpk_counts_t cnt = {0};
        rx_ctx_t c = {.u = u, .gw_eui = g.gw_eui};
        u->c.push_data++;
        u->now = now_ms;
        /* emit what is due before these receptions join the window */
        pl_lorawan_up_flush(u, now_ms, 0);
        if (pl_lorawan_rxpk_parse((const char *)g.json, g.json_len, u->tok, MAX_TOKENS, on_rxpk,
                                  &c, &cnt))
            u->c.bad_json++;
        u->c.rxpk += cnt.rxpk;
        u->c.crc_bad += cnt.crc_bad;
        u->c.rxpk_invalid += cnt.invalid;
        break;
    }
    }
    return alen;
}

/* ---- the record value -------------------------------------------------------- */

typedef struct {
    char *buf;
    size_t cap, pos;
    int err;
} out_t;

static void put(out_t *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(out_t *o, const char *fmt, ...)
{
    va_list ap;
    if (o->err)
        return;
    va_start(ap, fmt);
    int n = vsnprintf(o->buf + o->pos, o->cap - o->pos, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= o->cap - o->pos) {
        o->err = 1;
        return;
    }
    o->pos += (size_t)n;
}

static void put_s(out_t *o, const char *s)
{
    if (o->err)
        return;
    if (pl_lorawan_json_put_str(o->buf, o->cap, &o->pos, s, strlen(s)))
        o->err = 1;
}

static const char *tf(int b)
{
    return b ? "true" : "false";
}

int pl_lorawan_uplink_json(const pl_lorawan_uplink_t *up, char *out, size_t cap)
{
    out_t o = {.buf = out, .cap = cap};
    char hex[2 * PL_LORAWAN_PHY_MAX + 1], b64[4 * ((PL_LORAWAN_PHY_MAX + 2) / 3) + 1];
    uint8_t fc = up->phy.fctrl;
    if (cap == 0)
        return -ENOSPC;
    put(&o, "{\"device_id\":");
    put_s(&o, up->dev->id);
    put(&o, ",\"dev_addr\":\"%08" PRIx32 "\",\"fcnt\":%" PRIu32 ",\"fport\":", up->phy.dev_addr,
        up->fcnt32);
    if (up->phy.has_fport)
        put(&o, "%u", (unsigned)up->phy.fport);
    else
        put(&o, "null");
    put(&o, ",\"mtype\":\"%s\",\"adr\":%s,\"adr_ack_req\":%s,\"ack\":%s,\"class_b\":%s",
        pl_lorawan_mtype_name(up->phy.mtype), tf(fc & PL_LORAWAN_FCTRL_ADR),
        tf(fc & PL_LORAWAN_FCTRL_ADRACKREQ), tf(fc & PL_LORAWAN_FCTRL_ACK),
        tf(fc & PL_LORAWAN_FCTRL_CLASSB));
    pl_lorawan_hex_encode(up->phy.fopts, up->phy.fopts_len, hex);
    pl_lorawan_base64_encode(up->payload, up->payload_len, b64);
    put(&o, ",\"fopts\":\"%s\",\"payload\":\"%s\",\"received_ms\":%" PRId64 ",\"gateways\":[",
        hex, b64, up->first_ms);
    for (int i = 0; i < up->ngw; i++) {
        const pl_lorawan_rxmeta_t *m = &up->gw[i];
        put(&o, "%s{\"gw_eui\":\"%016" PRIx64 "\"", i ? "," : "", m->gw_eui);
        if (m->has_rssi)
            put(&o, ",\"rssi\":%d", m->rssi);
        if (m->has_lsnr)
            put(&o, ",\"lsnr\":%.10g", m->lsnr);
        if (m->has_freq)
            put(&o, ",\"freq\":%.10g", m->freq);
        if (m->datr[0]) {
            put(&o, ",\"datr\":");
            put_s(&o, m->datr);
        }
        if (m->codr[0]) {
            put(&o, ",\"codr\":");
            put_s(&o, m->codr);
        }
        if (m->modu[0]) {
            put(&o, ",\"modu\":");
            put_s(&o, m->modu);
        }
        if (m->has_chan)
            put(&o, ",\"chan\":%d", m->chan);
        if (m->has_rfch)
            put(&o, ",\"rfch\":%d", m->rfch);
        if (m->has_tmst)
            put(&o, ",\"tmst\":%" PRIu32, m->tmst);
        if (m->has_tmms)
            put(&o, ",\"tmms\":%" PRId64, m->tmms);
        if (m->has_time) {
            put(&o, ",\"time\":");
            put_s(&o, m->time);
        }
        put(&o, "}");
    }
    put(&o, "]}");
    return o.err ? -ENOSPC : (int)o.pos;
}
