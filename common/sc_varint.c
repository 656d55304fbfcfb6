#include "sc_varint.h"

size_t sc_uvarint_encode(uint8_t *out, uint64_t v)
{
    size_t i = 0;
    while (v >= 0x80) {
        out[i++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    out[i++] = (uint8_t)v;
    return i;
}

size_t sc_varint_encode(uint8_t *out, int64_t v) { return sc_uvarint_encode(out, sc_zigzag_encode(v)); }

size_t sc_uvarint_size(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

size_t sc_varint_size(int64_t v) { return sc_uvarint_size(sc_zigzag_encode(v)); }

size_t sc_uvarint_decode(const uint8_t *p, size_t n, uint64_t *out)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n && i < SC_VARINT_MAX; i++) {
        uint64_t b = p[i];
        /* The tenth byte may carry only the top bit of a 64-bit value. */
        if (i == 9 && b > 1)
            return 0;
        v |= (b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            *out = v;
            return i + 1;
        }
    }
    return 0;
}

size_t sc_varint_decode(const uint8_t *p, size_t n, int64_t *out)
{
    uint64_t z;
    size_t r = sc_uvarint_decode(p, n, &z);
    if (r)
        *out = sc_zigzag_decode(z);
    return r;
}
