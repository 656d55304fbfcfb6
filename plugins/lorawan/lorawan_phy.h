/*
 * lorawan_phy -- LoRaWAN 1.0.x PHYPayload decoding, MIC and FRMPayload
 * encryption (AES-128 via OpenSSL 3), and 32-bit frame counter recovery.
 *
 *   PHYPayload = MHDR(1) | MACPayload | MIC(4)
 *   MHDR       = MType(bits 7..5) | RFU(4..2) | Major(1..0, must be 0)
 *   MACPayload = FHDR | [FPort(1) | FRMPayload]       (data frames)
 *   FHDR       = DevAddr(4, LE) | FCtrl(1) | FCnt(2, LE) | FOpts(FCtrl & 0x0F)
 *   Join-request = MHDR | JoinEUI(8, LE) | DevEUI(8, LE) | DevNonce(2, LE) | MIC
 *
 *   MIC  = AES-CMAC(NwkSKey, B0 | MHDR..FRMPayload)[0..3]
 *   B0   = 49 00000000 dir DevAddr(LE) FCnt32(LE) 00 len(msg)
 *   A_i  = 01 00000000 dir DevAddr(LE) FCnt32(LE) 00 i          (i = 1, 2, ...)
 *   FRMPayload xor AES-ECB(K, A_1) | AES-ECB(K, A_2) | ...   K = NwkSKey when
 *   FPort is 0, AppSKey otherwise; dir is 0 for uplinks, 1 for downlinks.
 *
 * Only 16 bits of the frame counter travel on air. The 32-bit counter is
 * rebuilt from the last accepted one: the next value above it whose low 16
 * bits match (so 0xFFFF -> 0x0000 steps into the next upper half), confirmed
 * by the MIC. A frame whose MIC only verifies with a counter at or below the
 * last accepted one is a replay.
 *
 * Pure apart from OpenSSL; thread-safe.
 */
#ifndef PL_LORAWAN_PHY_H
#define PL_LORAWAN_PHY_H

#include <stddef.h>
#include <stdint.h>

#define PL_LORAWAN_PHY_MAX 255 /* the largest PHYPayload any region allows */

enum {
    PL_LORAWAN_JOIN_REQUEST = 0,
    PL_LORAWAN_JOIN_ACCEPT = 1,
    PL_LORAWAN_UNCONFIRMED_UP = 2,
    PL_LORAWAN_UNCONFIRMED_DOWN = 3,
    PL_LORAWAN_CONFIRMED_UP = 4,
    PL_LORAWAN_CONFIRMED_DOWN = 5,
    PL_LORAWAN_RFU = 6,
    PL_LORAWAN_PROPRIETARY = 7,
};

/* FCtrl bits of an uplink */
#define PL_LORAWAN_FCTRL_ADR 0x80
#define PL_LORAWAN_FCTRL_ADRACKREQ 0x40
#define PL_LORAWAN_FCTRL_ACK 0x20
#define PL_LORAWAN_FCTRL_CLASSB 0x10 /* FPending on downlinks */

/* A decoded PHYPayload; the pointers point into the parsed buffer. */
typedef struct {
    uint8_t mhdr, mtype, major;
    /* data frames */
    uint32_t dev_addr;
    uint8_t fctrl, fopts_len;
    uint16_t fcnt16;
    const uint8_t *fopts;
    int has_fport;
    uint8_t fport;
    const uint8_t *frm;
    size_t frm_len;
    /* join-request */
    uint64_t join_eui, dev_eui;
    uint16_t dev_nonce;
    /* all frames */
    const uint8_t *msg; /* MHDR .. last byte before the MIC */
    size_t msg_len;
    uint8_t mic[4];
} pl_lorawan_phy_t;

/* Decodes p[0..n). Data frames (MType 2..5) and join-requests are decoded in
 * full; join-accepts (encrypted) and proprietary frames only down to MHDR and
 * MIC. Returns 0, or -EINVAL when the bytes cannot be such a frame: shorter
 * than MHDR + FHDR + MIC, longer than PL_LORAWAN_PHY_MAX, Major != 0, MType
 * RFU, FOpts running into the MIC, a join-request that is not 23 bytes, or
 * FOpts together with FPort 0 (the spec forbids MAC commands in both). */
int pl_lorawan_phy_parse(const uint8_t *p, size_t n, pl_lorawan_phy_t *out);

/* 1 for downlink MTypes (join-accept, data down), 0 for uplinks. */
int pl_lorawan_phy_dir(const pl_lorawan_phy_t *f);

/* Short stable name of an MType ("unconfirmed_up", ...). */
const char *pl_lorawan_mtype_name(uint8_t mtype);

/* MIC of a data frame: first 4 bytes of AES-CMAC(key, B0 | msg). Returns 0
 * or -EIO when OpenSSL fails. */
int pl_lorawan_mic(const uint8_t key[16], int dir, uint32_t dev_addr, uint32_t fcnt32,
                   const uint8_t *msg, size_t len, uint8_t mic[4]);

/* MIC of a join-request (AES-CMAC(AppKey, msg)[0..3]). 0 or -EIO. */
int pl_lorawan_join_mic(const uint8_t key[16], const uint8_t *msg, size_t len, uint8_t mic[4]);

/* FRMPayload en/decryption (the same operation): out = in xor the A-block
 * keystream. in and out may be the same buffer. 0 or -EIO. */
int pl_lorawan_crypt(const uint8_t key[16], int dir, uint32_t dev_addr, uint32_t fcnt32,
                     const uint8_t *in, size_t len, uint8_t *out);

typedef enum {
    PL_LORAWAN_FCNT_OK = 0,     /* MIC verified with *fcnt32, above the last one */
    PL_LORAWAN_FCNT_REPLAY = 1, /* MIC verifies only at or below the last one */
    PL_LORAWAN_FCNT_BAD_MIC = 2,
} pl_lorawan_fcnt_result_t;

/* Rebuilds the 32-bit counter of data frame f from the last accepted one
 * (have_last = 0 for a device never heard: the upper half is then 0) and
 * checks the MIC with nwk_skey. Writes *fcnt32 on OK (and, on REPLAY, the
 * counter the frame would have had). Returns a pl_lorawan_fcnt_result_t,
 * or -EIO when OpenSSL fails. */
int pl_lorawan_fcnt_verify(const pl_lorawan_phy_t *f, const uint8_t nwk_skey[16], int have_last,
                           uint32_t last, uint32_t *fcnt32);

/* The candidate 32-bit counter: the smallest value above last with the
 * given low 16 bits (fcnt16 itself when !have_last). Wraps past 2^32 to
 * the low half again, which the MIC then has to confirm. */
uint32_t pl_lorawan_fcnt_next(int have_last, uint32_t last, uint16_t fcnt16);

/* Hex helpers for keys and addresses in config and records. */
int pl_lorawan_hex_decode(const char *hex, uint8_t *out, size_t n); /* exactly 2n digits: 0/-EINVAL */
void pl_lorawan_hex_encode(const uint8_t *in, size_t n, char *out); /* 2n+1 bytes incl. NUL */

#endif
