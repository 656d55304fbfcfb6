/*
 * mb_proto -- Modbus/TCP framing (MBAP + PDU) for the modbus plugin: request
 * building, response parsing, value decoding. Pure functions, no I/O, no
 * allocation: fuzzed by tests/fuzz/fuzz_modbus.c.
 *
 * MBAP header (7 bytes, big-endian): transaction id u16, protocol id u16 (0),
 * length u16 (= unit id + PDU bytes), unit id u8. PDU: function code u8 +
 * data; max 253 bytes (ADU max 260). Responses to reads:
 *   01/02 (coils / discrete inputs): byte count, bits LSB first;
 *   03/04 (holding / input registers): byte count = 2N, N big-endian u16;
 *   exception: function code | 0x80, exception code u8.
 */
#ifndef MB_PROTO_H
#define MB_PROTO_H

#include <stddef.h>
#include <stdint.h>

#define MB_MBAP_LEN 7
#define MB_PDU_MAX 253
#define MB_ADU_MAX (MB_MBAP_LEN - 1 + MB_PDU_MAX) /* 259 + ... = 260 with unit */

enum { MB_FC_COILS = 1, MB_FC_DISCRETE = 2, MB_FC_HOLDING = 3, MB_FC_INPUT = 4 };

/* Largest quantities one read may ask for (spec). */
#define MB_MAX_BITS 2000
#define MB_MAX_REGS 125

/* Value types and 32-bit orders (A = most significant byte). */
enum { MB_T_BOOL, MB_T_INT16, MB_T_UINT16, MB_T_INT32, MB_T_UINT32, MB_T_FLOAT32 };
enum { MB_O_ABCD, MB_O_CDAB, MB_O_BADC, MB_O_DCBA };

typedef struct {
    uint16_t tid;
    uint8_t unit;
    const uint8_t *pdu; /* function code + data (points into the input) */
    size_t pdu_len;     /* >= 1 */
} mb_adu_t;

typedef struct {
    int exception;        /* 0, or the exception code (1..255) */
    const uint8_t *data;  /* bits (packed) or registers (big-endian pairs) */
    size_t data_len;
} mb_resp_t;

/* Writes a read request (12 bytes) to out. Returns 12. */
size_t mb_build_read(uint8_t out[12], uint16_t tid, uint8_t unit, uint8_t fc, uint16_t start,
                     uint16_t qty);

/* Frames one ADU from the start of buf. Returns its total length (> 0) and
 * fills *out; 0 when more bytes are needed; -1 when the bytes cannot be
 * Modbus/TCP (protocol id != 0, length < 2 or > 254): the stream is out of
 * sync and the connection must be dropped. */
int mb_frame(const uint8_t *buf, size_t len, mb_adu_t *out);

/* Checks a framed ADU as the response to a read (fc, qty). Returns 0 with
 * *out (an exception response is 0 with out->exception set), or -1 when it
 * is not a valid answer to that request (wrong function code, byte count,
 * length) -- counted as a bad frame. */
int mb_parse_read(const mb_adu_t *adu, uint8_t fc, uint16_t qty, mb_resp_t *out);

/* Bit i (0-based from the request's start) of a bit response. */
int mb_bit(const mb_resp_t *r, unsigned i);
/* Register i of a register response. */
uint16_t mb_reg(const mb_resp_t *r, unsigned i);

/* Registers a type occupies (bool: 1 bit). */
unsigned mb_type_regs(int type);

/* Decodes a value from registers regs[0..mb_type_regs) with order (32-bit
 * types). Integers come back in *i (and *d), float32 in *d; returns 1 when
 * the value is integral (*i valid), 0 for float. */
int mb_decode(const uint16_t *regs, int type, int order, int64_t *i, double *d);

/* Text for an exception code ("illegal data address"); "unknown" otherwise. */
const char *mb_exception_str(int code);

#endif
