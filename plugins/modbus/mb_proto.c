/*
 * mb_proto -- see mb_proto.h.
 */
#include "mb_proto.h"

#include <string.h>

static uint16_t be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }

size_t mb_build_read(uint8_t out[12], uint16_t tid, uint8_t unit, uint8_t fc, uint16_t start,
                     uint16_t qty)
{
    out[0] = (uint8_t)(tid >> 8);
    out[1] = (uint8_t)tid;
    out[2] = 0;
    out[3] = 0;
    out[4] = 0;
    out[5] = 6; /* unit + fc + start(2) + qty(2) */
    out[6] = unit;
    out[7] = fc;
    out[8] = (uint8_t)(start >> 8);
    out[9] = (uint8_t)start;
    out[10] = (uint8_t)(qty >> 8);
    out[11] = (uint8_t)qty;
    return 12;
}

int mb_frame(const uint8_t *buf, size_t len, mb_adu_t *out)
{
    if (len < 6)
        return 0;
    uint16_t proto = be16(buf + 2), l = be16(buf + 4);
    if (proto != 0 || l < 2 || l > MB_PDU_MAX + 1)
        return -1;
    if (len < 6 + (size_t)l)
        return 0;
    out->tid = be16(buf);
    out->unit = buf[6];
    out->pdu = buf + 7;
    out->pdu_len = (size_t)l - 1;
    return 6 + l;
}

int mb_parse_read(const mb_adu_t *adu, uint8_t fc, uint16_t qty, mb_resp_t *out)
{
    memset(out, 0, sizeof *out);
    if (adu->pdu_len < 1)
        return -1;
    uint8_t f = adu->pdu[0];
    if (f == (fc | 0x80)) {
        if (adu->pdu_len != 2)
            return -1;
        out->exception = adu->pdu[1] ? adu->pdu[1] : 0xff;
        return 0;
    }
    if (f != fc || adu->pdu_len < 2)
        return -1;
    size_t bc = adu->pdu[1];
    if (bc != adu->pdu_len - 2)
        return -1;
    size_t want;
    if (fc == MB_FC_COILS || fc == MB_FC_DISCRETE) {
        if (qty < 1 || qty > MB_MAX_BITS)
            return -1;
        want = ((size_t)qty + 7) / 8;
    } else if (fc == MB_FC_HOLDING || fc == MB_FC_INPUT) {
        if (qty < 1 || qty > MB_MAX_REGS)
            return -1;
        want = (size_t)qty * 2;
    } else {
        return -1;
    }
    if (bc != want)
        return -1;
    out->data = adu->pdu + 2;
    out->data_len = bc;
    return 0;
}

int mb_bit(const mb_resp_t *r, unsigned i)
{
    if (i / 8 >= r->data_len)
        return 0;
    return r->data[i / 8] >> (i % 8) & 1;
}

uint16_t mb_reg(const mb_resp_t *r, unsigned i)
{
    if ((size_t)i * 2 + 2 > r->data_len)
        return 0;
    return be16(r->data + 2 * (size_t)i);
}

unsigned mb_type_regs(int type)
{
    return type == MB_T_INT32 || type == MB_T_UINT32 || type == MB_T_FLOAT32 ? 2 : 1;
}

int mb_decode(const uint16_t *regs, int type, int order, int64_t *i, double *d)
{
    switch (type) {
    case MB_T_BOOL:
        *i = regs[0] != 0;
        *d = (double)*i;
        return 1;
    case MB_T_INT16:
        *i = (int16_t)regs[0];
        *d = (double)*i;
        return 1;
    case MB_T_UINT16:
        *i = regs[0];
        *d = (double)*i;
        return 1;
    default:
        break;
    }
    /* bytes as received: r0 = A B, r1 = C D for ABCD (big-endian, high word first) */
    uint8_t b[4] = {(uint8_t)(regs[0] >> 8), (uint8_t)regs[0], (uint8_t)(regs[1] >> 8),
                    (uint8_t)regs[1]};
    uint8_t v[4]; /* v[0] = most significant */
    switch (order) {
    case MB_O_CDAB: /* word swap */
        v[0] = b[2], v[1] = b[3], v[2] = b[0], v[3] = b[1];
        break;
    case MB_O_BADC: /* byte swap within words */
        v[0] = b[1], v[1] = b[0], v[2] = b[3], v[3] = b[2];
        break;
    case MB_O_DCBA: /* little-endian */
        v[0] = b[3], v[1] = b[2], v[2] = b[1], v[3] = b[0];
        break;
    default:
        memcpy(v, b, 4);
    }
    uint32_t u = (uint32_t)v[0] << 24 | (uint32_t)v[1] << 16 | (uint32_t)v[2] << 8 | v[3];
    if (type == MB_T_INT32) {
        *i = (int32_t)u;
        *d = (double)*i;
        return 1;
    }
    if (type == MB_T_UINT32) {
        *i = u;
        *d = (double)*i;
        return 1;
    }
    float f;
    memcpy(&f, &u, 4);
    *d = f;
    *i = 0;
    return 0;
}

const char *mb_exception_str(int code)
{
    switch (code) {
    case 1: return "illegal function";
    case 2: return "illegal data address";
    case 3: return "illegal data value";
    case 4: return "server device failure";
    case 5: return "acknowledge";
    case 6: return "server device busy";
    case 8: return "memory parity error";
    case 10: return "gateway path unavailable";
    case 11: return "gateway target device failed to respond";
    default: return "unknown exception";
    }
}
