/*
 * sc_varint -- the two varint encodings Kafka uses.
 *
 * Unsigned varint (flexible protocol fields): 7 bits per byte, low group
 * first, high bit = more. Zigzag varint (inside records): n is mapped to
 * (n << 1) ^ (n >> 63) and then written as an unsigned varint.
 *
 * Decoders return the number of bytes consumed, or 0 when the input ends
 * early or the value overflows 64 bits (malformed input, never an assert).
 * Pure functions, thread-safe.
 */
#ifndef SC_VARINT_H
#define SC_VARINT_H

#include <stddef.h>
#include <stdint.h>

#define SC_VARINT_MAX 10 /* bytes in the longest 64-bit varint */

static inline uint64_t sc_zigzag_encode(int64_t n)
{
    return ((uint64_t)n << 1) ^ (uint64_t)(n >> 63);
}
static inline int64_t sc_zigzag_decode(uint64_t z)
{
    return (int64_t)(z >> 1) ^ -(int64_t)(z & 1);
}

/* Writes v to out (room for SC_VARINT_MAX). Returns bytes written. */
size_t sc_uvarint_encode(uint8_t *out, uint64_t v);
size_t sc_varint_encode(uint8_t *out, int64_t v);
/* Bytes that v takes encoded. */
size_t sc_uvarint_size(uint64_t v);
size_t sc_varint_size(int64_t v);
/* Returns bytes consumed (1..10) or 0 on truncated/overlong input. */
size_t sc_uvarint_decode(const uint8_t *p, size_t n, uint64_t *out);
size_t sc_varint_decode(const uint8_t *p, size_t n, int64_t *out);

#endif
