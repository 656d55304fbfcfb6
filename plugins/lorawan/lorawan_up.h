/*
 * lorawan_up -- the uplink pipeline of the LoRaWAN gateway plugin, as pure
 * state: GWMP datagram in, ACK out, deduplicated, verified, decrypted uplinks
 * out through a callback. No sockets, no clock: the caller passes now_ms.
 *
 * Per received PHYPayload (a PUSH_DATA rxpk with stat 1):
 *   1. decode (lorawan_phy); only data uplinks (MType 010 / 100) go on, other
 *      frames are counted (join-requests: OTAA is not supported, devices are
 *      ABP with their session keys in the config);
 *   2. the same bytes already pending in the dedup window: the reception's
 *      gateway metadata is added to that uplink (one entry per gateway EUI);
 *   3. otherwise the device(s) with that DevAddr are tried: the 32-bit frame
 *      counter is rebuilt above the device's last accepted one and confirmed by
 *      the MIC (NwkSKey); MIC fails -> bad_mic; verifies only at or below the
 *      last counter -> replay (or late_duplicate when it is the very frame
 *      last accepted, heard by a slow gateway after the window);
 *   4. accepted: FRMPayload decrypted (FPort 0: NwkSKey, else AppSKey), the
 *      device's counter advanced, and the uplink held for dedup_window_ms to
 *      collect the other gateways' receptions; then emitted.
 * Uplinks are emitted in acceptance order, so each device's counters rise.
 *
 * Single-threaded: the owner (the plugin instance thread) calls everything.
 */
#ifndef PL_LORAWAN_UP_H
#define PL_LORAWAN_UP_H

#include "lorawan_gwmp.h"
#include "lorawan_phy.h"

#include <stddef.h>
#include <stdint.h>

#define PL_LORAWAN_MAX_GW 16      /* gateway receptions kept per uplink */
#define PL_LORAWAN_MAX_PENDING 256 /* uplinks inside the dedup window */

typedef struct {
    char id[64];        /* device id: the record key */
    char topic[256];    /* "" = the instance's topic */
    uint32_t dev_addr;
    uint8_t nwk_skey[16], app_skey[16];
} pl_lorawan_device_t;

/* One deduplicated uplink. Pointers valid during the callback only. */
typedef struct {
    const pl_lorawan_device_t *dev;
    uint32_t fcnt32;
    pl_lorawan_phy_t phy;     /* decoded header; phy.frm is the encrypted payload */
    const uint8_t *payload;   /* decrypted FRMPayload (empty without FPort) */
    size_t payload_len;
    const pl_lorawan_rxmeta_t *gw;
    int ngw;
    int64_t first_ms;         /* when the first gateway's copy arrived */
} pl_lorawan_uplink_t;

typedef void (*pl_lorawan_emit_cb)(void *arg, const pl_lorawan_uplink_t *up);

typedef struct {
    uint64_t datagrams, bad_datagrams, push_data, pull_data, tx_ack, bad_json;
    uint64_t rxpk, crc_bad, rxpk_invalid;
    uint64_t phy_invalid, not_uplink, join_requests, unknown_device, bad_mic, replay;
    uint64_t duplicates, late_duplicates, gw_overflow, uplinks, early_flush, crypto_errors;
} pl_lorawan_counters_t;

typedef struct pl_lorawan_up pl_lorawan_up_t;

/* Creates the state for devs[0..n) (copied; up to 65535 devices) with the
 * given dedup window (0: emit at once). emit is called for every uplink.
 * Returns 0, -EINVAL (n too large), -ENOMEM. */
int pl_lorawan_up_new(const pl_lorawan_device_t *devs, size_t n, uint32_t window_ms,
                      pl_lorawan_emit_cb emit, void *arg, pl_lorawan_up_t **out);
void pl_lorawan_up_free(pl_lorawan_up_t *u);

/* Sets device i's last accepted counter (from the host's offsets after a
 * restart). Returns 0 or -EINVAL. */
int pl_lorawan_up_set_last(pl_lorawan_up_t *u, size_t i, uint32_t fcnt32);
/* Device i's last accepted counter: 1 and *fcnt32, or 0 if never heard. */
int pl_lorawan_up_get_last(const pl_lorawan_up_t *u, size_t i, uint32_t *fcnt32);
/* Device index by id, or -1. */
int pl_lorawan_up_find(const pl_lorawan_up_t *u, const char *id);
const pl_lorawan_device_t *pl_lorawan_up_device(const pl_lorawan_up_t *u, size_t i);
size_t pl_lorawan_up_ndevices(const pl_lorawan_up_t *u);

/* Handles one datagram from a gateway. Writes the answer (PUSH_ACK /
 * PULL_ACK) to ack and returns its length (0: none). Uplinks whose window
 * is 0 are emitted from inside this call. Never fails: bad input is counted. */
size_t pl_lorawan_up_datagram(pl_lorawan_up_t *u, const uint8_t *d, size_t n, int64_t now_ms,
                              uint8_t ack[4]);

/* Handles one reception by gateway gw_eui (the datagram path calls this per
 * rxpk with stat 1; rx->meta.gw_eui is ignored). */
void pl_lorawan_up_rx(pl_lorawan_up_t *u, uint64_t gw_eui, const pl_lorawan_rxpk_t *rx,
                      int64_t now_ms);

/* Emits every pending uplink whose window has ended by now_ms (all of them
 * when all != 0). Returns the time of the next deadline, or -1 if none. */
int64_t pl_lorawan_up_flush(pl_lorawan_up_t *u, int64_t now_ms, int all);

const pl_lorawan_counters_t *pl_lorawan_up_counters(const pl_lorawan_up_t *u);

/* The uplink as a JSON object (the record value with format=json):
 *   {"device_id":..,"dev_addr":"01020304","fcnt":N,"fport":N|null,
 *    "mtype":"unconfirmed_up","adr":b,"adr_ack_req":b,"ack":b,"class_b":b,
 *    "fopts":"hex","payload":"base64","received_ms":N,
 *    "gateways":[{"gw_eui":"hex16","rssi":N,"lsnr":N,"freq":N,"datr":"..",
 *                 "codr":"..","modu":"..","chan":N,"rfch":N,"tmst":N,
 *                 "time":".."}, ...]}
 * (gateway fields the forwarder did not send are left out). Returns the
 * length, or -ENOSPC. */
int pl_lorawan_uplink_json(const pl_lorawan_uplink_t *up, char *out, size_t cap);

#endif
