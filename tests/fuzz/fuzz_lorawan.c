/* libFuzzer target: the LoRaWAN plugin's parsers on arbitrary bytes -- the
 * GWMP datagram, the rxpk JSON (and every JSON accessor on every token), the
 * PHYPayload decoder with MIC / frame counter / decryption, and the whole
 * uplink pipeline (dedup window, device lookup) fed the input as a datagram.
 * Must never crash, hang or read out of bounds.
 *
 * The pipeline knows one device at DevAddr 26011bda (the lora-packet fixture
 * keys), so seeds built from real frames reach the MIC and dedup paths. */
#include "lorawan_gwmp.h"
#include "lorawan_json.h"
#include "lorawan_phy.h"
#include "lorawan_up.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static pl_lorawan_jtok_t tok[4096];
static pl_lorawan_up_t *up;
static int64_t now_ms;
static unsigned inputs;

static void sink(void *arg, const pl_lorawan_uplink_t *u)
{
    static char buf[16384];
    /* the record value must always fit and be valid JSON */
    int n = pl_lorawan_uplink_json(u, buf, sizeof(buf));
    pl_lorawan_json_t d;
    if (n < 0 || pl_lorawan_json_parse(&d, buf, (size_t)n, tok, 4096) != 0)
        abort();
}

static void on_rx(void *arg, const pl_lorawan_rxpk_t *rx)
{
    (void)arg;
    (void)rx;
}

static void walk_json(const uint8_t *p, size_t n)
{
    pl_lorawan_json_t d;
    char s[64];
    double v;
    int64_t iv;
    int b;
    if (pl_lorawan_json_parse(&d, (const char *)p, n, tok, 4096))
        return;
    for (uint32_t i = 0; i < d.ntok; i++) {
        (void)pl_lorawan_json_str(&d, i, s, sizeof(s));
        (void)pl_lorawan_json_num(&d, i, &v);
        (void)pl_lorawan_json_int(&d, i, INT64_MIN, INT64_MAX, &iv);
        (void)pl_lorawan_json_bool(&d, i, &b);
        (void)pl_lorawan_json_get(&d, i, "data");
        if (d.tok[i].next > d.ntok || d.tok[i].next <= i)
            abort(); /* the subtree links must stay inside the document */
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *p = malloc(size ? size : 1); /* exact size: ASan sees overreads */
    memcpy(p, data, size);

    if (!up || ++inputs % 512 == 0) {
        pl_lorawan_device_t dev[2];
        memset(dev, 0, sizeof(dev));
        strcpy(dev[0].id, "sensor-1");
        dev[0].dev_addr = 0x26011bda;
        (void)pl_lorawan_hex_decode("2b7e151628aed2a6abf7158809cf4f3c", dev[0].nwk_skey, 16);
        (void)pl_lorawan_hex_decode("000102030405060708090a0b0c0d0e0f", dev[0].app_skey, 16);
        dev[1] = dev[0];
        strcpy(dev[1].id, "same-addr");
        dev[1].nwk_skey[0] ^= 1;
        pl_lorawan_up_free(up);
        up = NULL;
        if (pl_lorawan_up_new(dev, 2, 200, sink, NULL, &up))
            abort();
    }

    /* 1. the datagram header and the ACK */
    pl_lorawan_gwmp_t g;
    uint8_t ack[4];
    if (pl_lorawan_gwmp_parse(p, size, &g) == 0) {
        (void)pl_lorawan_gwmp_ack(&g, ack);
        if (g.json + g.json_len != p + size)
            abort();
    }
    /* 2. the input as PUSH_DATA JSON, and every JSON accessor */
    pl_lorawan_rxpk_counts_t c = {0};
    (void)pl_lorawan_rxpk_parse((const char *)p, size, tok, 4096, on_rx, NULL, &c);
    if (c.ok + c.crc_bad + c.invalid != c.rxpk)
        abort();
    walk_json(p, size);
    /* 3. the input as a PHYPayload: decode, MIC, counters, decryption */
    pl_lorawan_phy_t f;
    if (pl_lorawan_phy_parse(p, size, &f) == 0) {
        uint8_t k[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}, out[256];
        uint32_t c32;
        if (f.msg + f.msg_len + 4 != p + size)
            abort();
        if (f.mtype >= 2 && f.mtype <= 5) {
            if (f.frm && f.frm + f.frm_len != f.msg + f.msg_len)
                abort();
            (void)pl_lorawan_fcnt_verify(&f, k, size & 1, (uint32_t)size * 40503u, &c32);
            (void)pl_lorawan_crypt(k, 0, f.dev_addr, f.fcnt16, f.frm, f.frm_len, out);
        }
    }
    /* 4. inputs starting with 'M': the rest made into a data uplink of
     * device 0 with a valid MIC for its next counter, so the fuzzer reaches
     * acceptance, decryption, dedup and the record JSON (checked in sink) */
    if (size >= 13 && size <= PL_LORAWAN_PHY_MAX + 1 && p[0] == 'M') {
        pl_lorawan_rxpk_t rx;
        pl_lorawan_phy_t ff;
        const pl_lorawan_device_t *d0 = pl_lorawan_up_device(up, 0);
        uint32_t last = 0;
        int have = pl_lorawan_up_get_last(up, 0, &last);
        memset(&rx, 0, sizeof(rx));
        memcpy(rx.phy, p + 1, size - 1);
        rx.phy_len = size - 1;
        rx.phy[0] = (uint8_t)((rx.phy[0] & 0x80) | 0x40); /* unconfirmed / confirmed up */
        rx.phy[1] = 0xda, rx.phy[2] = 0x1b, rx.phy[3] = 0x01, rx.phy[4] = 0x26;
        if (pl_lorawan_phy_parse(rx.phy, rx.phy_len, &ff) == 0) {
            uint32_t c32 = pl_lorawan_fcnt_next(have, last, ff.fcnt16);
            (void)pl_lorawan_mic(d0->nwk_skey, 0, ff.dev_addr, c32, rx.phy, rx.phy_len - 4,
                                 rx.phy + rx.phy_len - 4);
            rx.stat = 1;
            rx.meta.has_rssi = 1;
            rx.meta.rssi = -(int)size;
            pl_lorawan_up_rx(up, p[size - 1] & 3, &rx, now_ms);
            pl_lorawan_up_rx(up, (p[size - 1] & 3) + 1, &rx, now_ms + 1); /* a second gateway */
        }
    }
    /* 5. the pipeline: the input as a datagram, time moving on */
    now_ms += 37;
    (void)pl_lorawan_up_datagram(up, p, size, now_ms, ack);
    if (size > 0 && size <= PL_LORAWAN_PHY_MAX) {
        pl_lorawan_rxpk_t rx;
        memset(&rx, 0, sizeof(rx));
        memcpy(rx.phy, p, size);
        rx.phy_len = size;
        rx.stat = 1;
        pl_lorawan_up_rx(up, size, &rx, now_ms);
    }
    free(p);
    return 0;
}
