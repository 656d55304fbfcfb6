/*
 * lorawan_gwmp -- the Semtech UDP packet-forwarder protocol (GWMP, v1 and v2),
 * server side: datagram headers, the ACKs, and the rxpk JSON of PUSH_DATA.
 *
 * Every datagram: version(1: 1 or 2) | token(2) | identifier(1) | ...
 *
 *   PUSH_DATA 0x00 gw->srv  ver tok 00 GatewayEUI(8) JSON{"rxpk":[...],"stat":{...}}
 *   PUSH_ACK  0x01 srv->gw  ver tok 01
 *   PULL_DATA 0x02 gw->srv  ver tok 02 GatewayEUI(8)
 *   PULL_RESP 0x03 srv->gw  ver tok 03 JSON{"txpk":{...}}        (not sent: uplink only)
 *   PULL_ACK  0x04 srv->gw  ver tok 04
 *   TX_ACK    0x05 gw->srv  ver tok 05 GatewayEUI(8) [JSON{"txpk_ack":{...}}]  (v2)
 *
 * The gateway EUI travels as 8 bytes, most significant first. ACKs echo the
 * version and token bytes unchanged. There is no authentication and no
 * retransmission: an ACK only tells the forwarder the server is alive.
 *
 * rxpk fields read: data (base64 PHYPayload, required), stat (required: 1 CRC
 * ok, 0 no CRC, -1 CRC bad; anything but 1 is dropped by the caller), size
 * (must match data when present), tmst, time, tmms, freq, chan, rfch, modu,
 * datr (string for LoRa, number for FSK), codr, rssi, lsnr. A field of the
 * wrong type or out of range makes that rxpk invalid; unknown fields are
 * ignored.
 *
 * Pure; thread-safe.
 */
#ifndef PL_LORAWAN_GWMP_H
#define PL_LORAWAN_GWMP_H

#include "lorawan_json.h"
#include "lorawan_phy.h"

#include <stddef.h>
#include <stdint.h>

enum {
    PL_LORAWAN_PUSH_DATA = 0x00,
    PL_LORAWAN_PUSH_ACK = 0x01,
    PL_LORAWAN_PULL_DATA = 0x02,
    PL_LORAWAN_PULL_RESP = 0x03,
    PL_LORAWAN_PULL_ACK = 0x04,
    PL_LORAWAN_TX_ACK = 0x05,
};

typedef struct {
    uint8_t version;  /* 1 or 2 */
    uint8_t token[2]; /* echoed as is */
    uint8_t ident;    /* PUSH_DATA, PULL_DATA or TX_ACK */
    uint64_t gw_eui;
    const uint8_t *json; /* PUSH_DATA: the JSON (non-empty); TX_ACK: may be empty */
    size_t json_len;
} pl_lorawan_gwmp_t;

/* Parses a datagram a gateway sends. Returns 0, or -EINVAL when it is not
 * one: shorter than its header, an unknown version, an identifier a gateway
 * does not send, a PULL_DATA with trailing bytes, a PUSH_DATA without JSON. */
int pl_lorawan_gwmp_parse(const uint8_t *d, size_t n, pl_lorawan_gwmp_t *out);

/* Writes the 4-byte answer (PUSH_ACK for PUSH_DATA, PULL_ACK for PULL_DATA)
 * to out and returns 4, or 0 when the datagram needs none (TX_ACK). */
size_t pl_lorawan_gwmp_ack(const pl_lorawan_gwmp_t *g, uint8_t out[4]);

/* The RF metadata of one reception, as the gateway reported it. */
typedef struct {
    uint64_t gw_eui; /* filled in by the caller (the datagram's header) */
    int has_tmst, has_time, has_tmms, has_freq, has_chan, has_rfch, has_rssi, has_lsnr;
    uint32_t tmst;
    int64_t tmms;
    char time[40]; /* ISO 8601 as sent */
    double freq;   /* MHz */
    int chan, rfch;
    int rssi;      /* dBm */
    double lsnr;   /* dB */
    char modu[8];  /* "LORA" / "FSK" or "" */
    char datr[24]; /* "SF7BW125", or FSK bit rate as decimal text, or "" */
    char codr[8];
} pl_lorawan_rxmeta_t;

/* One received packet. */
typedef struct {
    uint8_t phy[PL_LORAWAN_PHY_MAX];
    size_t phy_len;
    int stat;
    pl_lorawan_rxmeta_t meta;
} pl_lorawan_rxpk_t;

typedef struct {
    uint32_t rxpk;     /* entries seen */
    uint32_t ok;       /* handed to the callback (stat == 1) */
    uint32_t crc_bad;  /* stat != 1: dropped */
    uint32_t invalid;  /* malformed entries: dropped */
} pl_lorawan_rxpk_counts_t;

typedef void (*pl_lorawan_rxpk_cb)(void *arg, const pl_lorawan_rxpk_t *rx);

/* Parses the JSON of a PUSH_DATA and calls cb for every well-formed rxpk with
 * stat == 1. tok/max is the token work space (see lorawan_json.h). Adds to
 * *counts. Returns 0 (even if some entries were dropped; a document without
 * "rxpk" - a stat-only report - is fine), -EINVAL when the JSON is malformed
 * or not an object, or "rxpk" is not an array; -E2BIG when it needs more
 * than max tokens. */
int pl_lorawan_rxpk_parse(const char *json, size_t len, pl_lorawan_jtok_t *tok, uint32_t max,
                          pl_lorawan_rxpk_cb cb, void *arg, pl_lorawan_rxpk_counts_t *counts);

/* Standard base64 (RFC 4648 with padding; unpadded input is accepted too, as
 * some forwarders send it). Returns the decoded length, or -EINVAL (bad
 * characters or padding) / -ENOSPC (more than cap bytes). */
int pl_lorawan_base64_decode(const char *s, size_t n, uint8_t *out, size_t cap);

/* Encodes n bytes; out needs 4 * ((n + 2) / 3) + 1 bytes. Returns the length. */
size_t pl_lorawan_base64_encode(const uint8_t *in, size_t n, char *out);

#endif
