/*
 * sc_endian -- big-endian loads and stores on unaligned bytes (Kafka's byte
 * order). Header-only; the compiler turns each into one load/store + bswap.
 */
#ifndef SC_ENDIAN_H
#define SC_ENDIAN_H

#include <stdint.h>
#include <string.h>

#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define SC__BE16(v) __builtin_bswap16(v)
#define SC__BE32(v) __builtin_bswap32(v)
#define SC__BE64(v) __builtin_bswap64(v)
#else
#define SC__BE16(v) (v)
#define SC__BE32(v) (v)
#define SC__BE64(v) (v)
#endif

static inline uint16_t sc_load_be16(const void *p)
{
    uint16_t v;
    memcpy(&v, p, 2);
    return SC__BE16(v);
}
static inline uint32_t sc_load_be32(const void *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return SC__BE32(v);
}
static inline uint64_t sc_load_be64(const void *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return SC__BE64(v);
}
static inline void sc_store_be16(void *p, uint16_t v)
{
    v = SC__BE16(v);
    memcpy(p, &v, 2);
}
static inline void sc_store_be32(void *p, uint32_t v)
{
    v = SC__BE32(v);
    memcpy(p, &v, 4);
}
static inline void sc_store_be64(void *p, uint64_t v)
{
    v = SC__BE64(v);
    memcpy(p, &v, 8);
}

#endif
