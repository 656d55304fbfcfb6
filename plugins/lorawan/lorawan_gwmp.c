/*
 * lorawan_gwmp -- GWMP datagrams and rxpk JSON; the formats are in
 * lorawan_gwmp.h.
 */
#include "lorawan_gwmp.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

int pl_lorawan_gwmp_parse(const uint8_t *d, size_t n, pl_lorawan_gwmp_t *out)
{
    pl_lorawan_gwmp_t g;
    if (n < 4 || (d[0] != 1 && d[0] != 2))
        return -EINVAL;
    memset(&g, 0, sizeof(g));
    g.version = d[0];
    g.token[0] = d[1];
    g.token[1] = d[2];
    g.ident = d[3];
    switch (g.ident) {
    case PL_LORAWAN_PUSH_DATA:
    case PL_LORAWAN_PULL_DATA:
    case PL_LORAWAN_TX_ACK:
        break;
    default:
        return -EINVAL;
    }
    if (n < 12)
        return -EINVAL;
    for (int i = 0; i < 8; i++)
        g.gw_eui = g.gw_eui << 8 | d[4 + i];
    g.json = d + 12;
    g.json_len = n - 12;
    if (g.ident == PL_LORAWAN_PULL_DATA && g.json_len != 0)
        return -EINVAL;
    if (g.ident == PL_LORAWAN_PUSH_DATA && g.json_len == 0)
        return -EINVAL;
    *out = g;
    return 0;
}

size_t pl_lorawan_gwmp_ack(const pl_lorawan_gwmp_t *g, uint8_t out[4])
{
    uint8_t id;
    if (g->ident == PL_LORAWAN_PUSH_DATA)
        id = PL_LORAWAN_PUSH_ACK;
    else if (g->ident == PL_LORAWAN_PULL_DATA)
        id = PL_LORAWAN_PULL_ACK;
    else
        return 0;
    out[0] = g->version;
    out[1] = g->token[0];
    out[2] = g->token[1];
    out[3] = id;
    return 4;
}

static int b64val(int c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

int pl_lorawan_base64_decode(const char *s, size_t n, uint8_t *out, size_t cap)
{
    size_t pad = 0, o = 0;
    if (n % 4 == 0 && n >= 1 && s[n - 1] == '=') {
        pad = 1;
        if (s[n - 2] == '=')
            pad = 2;
    }
    size_t body = n - pad;
    if (body % 4 == 1)
        return -EINVAL;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < body; i++) {
        int v = b64val((unsigned char)s[i]);
        if (v < 0)
            return -EINVAL;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o >= cap)
                return -ENOSPC;
            out[o++] = (uint8_t)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    return (int)o;
}

size_t pl_lorawan_base64_encode(const uint8_t *in, size_t n, char *out)
{
    static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < n)
            v |= in[i + 2];
        out[o++] = al[v >> 18 & 63];
        out[o++] = al[v >> 12 & 63];
        out[o++] = i + 1 < n ? al[v >> 6 & 63] : '=';
        out[o++] = i + 2 < n ? al[v & 63] : '=';
    }
    out[o] = 0;
    return o;
}

/* Copies the string member key (if present) into buf. 1 present, 0 absent,
 * -EINVAL wrong type or too long. */
static int get_str(const pl_lorawan_json_t *doc, uint32_t obj, const char *key, char *buf,
                   size_t cap)
{
    int i = pl_lorawan_json_get(doc, obj, key);
    if (i < 0)
        return 0;
    return pl_lorawan_json_str(doc, (uint32_t)i, buf, cap) < 0 ? -EINVAL : 1;
}

static int get_int(const pl_lorawan_json_t *doc, uint32_t obj, const char *key, int64_t lo,
                   int64_t hi, int64_t *v)
{
    int i = pl_lorawan_json_get(doc, obj, key);
    if (i < 0)
        return 0;
    return pl_lorawan_json_int(doc, (uint32_t)i, lo, hi, v) ? -EINVAL : 1;
}

static int get_num(const pl_lorawan_json_t *doc, uint32_t obj, const char *key, double lo,
                   double hi, double *v)
{
    int i = pl_lorawan_json_get(doc, obj, key);
    if (i < 0)
        return 0;
    if (pl_lorawan_json_num(doc, (uint32_t)i, v) || *v < lo || *v > hi)
        return -EINVAL;
    return 1;
}

/* One rxpk object -> rx. 0 ok, -EINVAL malformed. */
static int rxpk_one(const pl_lorawan_json_t *doc, uint32_t o, pl_lorawan_rxpk_t *rx)
{
    int r;
    int64_t v = 0;
    memset(rx, 0, sizeof(*rx));
    if (doc->tok[o].type != PL_LORAWAN_JOBJ)
        return -EINVAL;

    int di = pl_lorawan_json_get(doc, o, "data");
    if (di < 0 || doc->tok[di].type != PL_LORAWAN_JSTR || doc->tok[di].escaped)
        return -EINVAL;
    int l = pl_lorawan_base64_decode(doc->text + doc->tok[di].start, doc->tok[di].len, rx->phy,
                                     sizeof(rx->phy));
    if (l <= 0)
        return -EINVAL;
    rx->phy_len = (size_t)l;
    if ((r = get_int(doc, o, "size", 0, 65535, &v)) < 0 || (r == 1 && (size_t)v != rx->phy_len))
        return -EINVAL;

    if ((r = get_int(doc, o, "stat", -1, 1, &v)) <= 0)
        return -EINVAL; /* required */
    rx->stat = (int)v;
    if ((r = get_int(doc, o, "tmst", 0, UINT32_MAX, &v)) < 0)
        return -EINVAL;
    rx->meta.has_tmst = r;
    rx->meta.tmst = r ? (uint32_t)v : 0;
    if ((r = get_int(doc, o, "tmms", 0, INT64_MAX, &v)) < 0)
        return -EINVAL;
    rx->meta.has_tmms = r;
    rx->meta.tmms = r ? v : 0;
    if ((r = get_str(doc, o, "time", rx->meta.time, sizeof(rx->meta.time))) < 0)
        return -EINVAL;
    rx->meta.has_time = r;
    if ((r = get_num(doc, o, "freq", 0.0, 10000.0, &rx->meta.freq)) < 0)
        return -EINVAL;
    rx->meta.has_freq = r;
    if ((r = get_int(doc, o, "chan", 0, 255, &v)) < 0)
        return -EINVAL;
    rx->meta.has_chan = r;
    rx->meta.chan = r ? (int)v : 0;
    if ((r = get_int(doc, o, "rfch", 0, 255, &v)) < 0)
        return -EINVAL;
    rx->meta.has_rfch = r;
    rx->meta.rfch = r ? (int)v : 0;
    if ((r = get_int(doc, o, "rssi", -1000, 1000, &v)) < 0)
        return -EINVAL;
    rx->meta.has_rssi = r;
    rx->meta.rssi = r ? (int)v : 0;
    if ((r = get_num(doc, o, "lsnr", -1000.0, 1000.0, &rx->meta.lsnr)) < 0)
        return -EINVAL;
    rx->meta.has_lsnr = r;
    if (get_str(doc, o, "modu", rx->meta.modu, sizeof(rx->meta.modu)) < 0)
        return -EINVAL;
    if (get_str(doc, o, "codr", rx->meta.codr, sizeof(rx->meta.codr)) < 0)
        return -EINVAL;
    int dr = pl_lorawan_json_get(doc, o, "datr");
    if (dr >= 0) {
        if (doc->tok[dr].type == PL_LORAWAN_JSTR) {
            if (pl_lorawan_json_str(doc, (uint32_t)dr, rx->meta.datr, sizeof(rx->meta.datr)) < 0)
                return -EINVAL;
        } else if (pl_lorawan_json_int(doc, (uint32_t)dr, 0, 100000000, &v) == 0) {
            snprintf(rx->meta.datr, sizeof(rx->meta.datr), "%lld", (long long)v);
        } else {
            return -EINVAL;
        }
    }
    return 0;
}

int pl_lorawan_rxpk_parse(const char *json, size_t len, pl_lorawan_jtok_t *tok, uint32_t max,
                          pl_lorawan_rxpk_cb cb, void *arg, pl_lorawan_rxpk_counts_t *counts)
{
    pl_lorawan_json_t doc;
    int rc = pl_lorawan_json_parse(&doc, json, len, tok, max);
    if (rc)
        return rc;
    if (doc.tok[0].type != PL_LORAWAN_JOBJ)
        return -EINVAL;
    int a = pl_lorawan_json_get(&doc, 0, "rxpk");
    if (a < 0)
        return 0;
    if (doc.tok[a].type != PL_LORAWAN_JARR)
        return -EINVAL;
    uint32_t e = (uint32_t)a + 1;
    for (uint32_t k = 0; k < doc.tok[a].count; k++) {
        pl_lorawan_rxpk_t rx;
        counts->rxpk++;
        if (rxpk_one(&doc, e, &rx))
            counts->invalid++;
        else if (rx.stat != 1)
            counts->crc_bad++;
        else {
            counts->ok++;
            cb(arg, &rx);
        }
        e = doc.tok[e].next;
    }
    return 0;
}
