#include "sc_crc32c.h"

#include <pthread.h>
#include <string.h>

#if defined(__x86_64__)
#include <cpuid.h>
#include <nmmintrin.h>
#define HAVE_X86_CRC 1
#elif defined(__aarch64__) && defined(__linux__)
#include <arm_acle.h>
#include <asm/hwcap.h>
#include <sys/auxv.h>
#define HAVE_ARM_CRC 1
#endif

#define POLY 0x82F63B78u

static uint32_t table[8][256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;
static void tables_build(void);

static void table_build(void)
{
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ POLY : c >> 1;
        table[0][n] = c;
    }
    for (uint32_t n = 0; n < 256; n++)
        for (int k = 1; k < 8; k++)
            table[k][n] = (table[k - 1][n] >> 8) ^ table[0][table[k - 1][n] & 0xff];
}

/*
 * Parallel streams. The crc32 instruction has a latency of about three cycles
 * and a throughput of one per cycle, so one dependent chain runs at a third of
 * the unit's speed. The hardware variants below run three chains over three
 * adjacent blocks of the input and then join them: for the raw (uninverted)
 * CRC register, crc(A || B) = Z_|B|(crc(A)) ^ crc_from_zero(B), where Z_n --
 * feeding n zero bytes -- is linear over GF(2), so it is applied as four
 * 256-entry table lookups (one per byte of the register), built once from Z_n
 * of the 32 unit vectors. (This is the technique of Adler's crc32c.c and
 * Intel's ISA-L; the code here is ours.)
 */
#define LONG_BLOCK 8192
#define SHORT_BLOCK 256

static uint32_t shift_long[4][256], shift_short[4][256];

static uint32_t zeros_apply(uint32_t c, size_t n)
{
    while (n--)
        c = (c >> 8) ^ table[0][c & 0xff];
    return c;
}

static void shift_build(uint32_t t[4][256], size_t n)
{
    uint32_t basis[32];
    for (int i = 0; i < 32; i++)
        basis[i] = zeros_apply(1u << i, n);
    for (int k = 0; k < 4; k++)
        for (uint32_t b = 0; b < 256; b++) {
            uint32_t v = 0;
            for (int j = 0; j < 8; j++)
                if (b & (1u << j))
                    v ^= basis[8 * k + j];
            t[k][b] = v;
        }
}

static void tables_build(void)
{
    table_build();
    shift_build(shift_long, LONG_BLOCK);
    shift_build(shift_short, SHORT_BLOCK);
}

static inline uint32_t shift(uint32_t t[4][256], uint32_t c)
{
    return t[0][c & 0xff] ^ t[1][(c >> 8) & 0xff] ^ t[2][(c >> 16) & 0xff] ^ t[3][c >> 24];
}

uint32_t sc_crc32c_sw(uint32_t crc, const void *data, size_t len)
{
    const uint8_t *p = data;

    pthread_once(&table_once, tables_build);
    crc = ~crc;
    while (len && ((uintptr_t)p & 7)) {
        crc = (crc >> 8) ^ table[0][(crc ^ *p++) & 0xff];
        len--;
    }
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        w = __builtin_bswap64(w);
#endif
        w ^= crc;
        crc = table[7][w & 0xff] ^ table[6][(w >> 8) & 0xff] ^ table[5][(w >> 16) & 0xff] ^
              table[4][(w >> 24) & 0xff] ^ table[3][(w >> 32) & 0xff] ^
              table[2][(w >> 40) & 0xff] ^ table[1][(w >> 48) & 0xff] ^ table[0][w >> 56];
        p += 8;
        len -= 8;
    }
    while (len--)
        crc = (crc >> 8) ^ table[0][(crc ^ *p++) & 0xff];
    return ~crc;
}

#ifdef HAVE_X86_CRC
/* Three chains over blocks of n bytes each (see "Parallel streams"). */
#define CRC_3WAY(step64, n, t)                                                                   \
    while (len >= 3 * (n)) {                                                                     \
        uint64_t c1 = 0, c2 = 0, w0, w1, w2;                                                     \
        const uint8_t *end = p + (n);                                                            \
        do {                                                                                     \
            memcpy(&w0, p, 8);                                                                   \
            memcpy(&w1, p + (n), 8);                                                             \
            memcpy(&w2, p + 2 * (n), 8);                                                         \
            c = step64(c, w0);                                                                   \
            c1 = step64(c1, w1);                                                                 \
            c2 = step64(c2, w2);                                                                 \
            p += 8;                                                                              \
        } while (p < end);                                                                       \
        c = shift(t, (uint32_t)c) ^ (uint32_t)c1;                                                \
        c = shift(t, (uint32_t)c) ^ (uint32_t)c2;                                                \
        p += 2 * (n);                                                                            \
        len -= 3 * (n);                                                                          \
    }

__attribute__((target("sse4.2"))) static uint32_t crc_x86(uint32_t crc, const void *data,
                                                           size_t len)
{
    const uint8_t *p = data;
    uint64_t c = ~crc;

    pthread_once(&table_once, tables_build);
    while (len && ((uintptr_t)p & 7)) {
        c = _mm_crc32_u8((uint32_t)c, *p++);
        len--;
    }
    CRC_3WAY(_mm_crc32_u64, LONG_BLOCK, shift_long)
    CRC_3WAY(_mm_crc32_u64, SHORT_BLOCK, shift_short)
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        c = _mm_crc32_u64(c, w);
        p += 8;
        len -= 8;
    }
    while (len--)
        c = _mm_crc32_u8((uint32_t)c, *p++);
    return ~(uint32_t)c;
}

sc_crc32c_fn sc_crc32c_hw(void)
{
    unsigned a, b, c, d;
    if (__get_cpuid(1, &a, &b, &c, &d) && (c & bit_SSE4_2))
        return crc_x86;
    return NULL;
}
#elif defined(HAVE_ARM_CRC)
/* Three chains over blocks of n bytes each (see "Parallel streams"). */
#define CRC_3WAY(step64, n, t)                                                                   \
    while (len >= 3 * (n)) {                                                                     \
        uint32_t c1 = 0, c2 = 0;                                                                 \
        uint64_t w0, w1, w2;                                                                     \
        const uint8_t *end = p + (n);                                                            \
        do {                                                                                     \
            memcpy(&w0, p, 8);                                                                   \
            memcpy(&w1, p + (n), 8);                                                             \
            memcpy(&w2, p + 2 * (n), 8);                                                         \
            c = step64(c, w0);                                                                   \
            c1 = step64(c1, w1);                                                                 \
            c2 = step64(c2, w2);                                                                 \
            p += 8;                                                                              \
        } while (p < end);                                                                       \
        c = shift(t, c) ^ c1;                                                                    \
        c = shift(t, c) ^ c2;                                                                    \
        p += 2 * (n);                                                                            \
        len -= 3 * (n);                                                                          \
    }

__attribute__((target("+crc"))) static uint32_t crc_arm(uint32_t crc, const void *data,
                                                         size_t len)
{
    const uint8_t *p = data;
    uint32_t c = ~crc;

    pthread_once(&table_once, tables_build);
    while (len && ((uintptr_t)p & 7)) {
        c = __crc32cb(c, *p++);
        len--;
    }
    CRC_3WAY(__crc32cd, LONG_BLOCK, shift_long)
    CRC_3WAY(__crc32cd, SHORT_BLOCK, shift_short)
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        c = __crc32cd(c, w);
        p += 8;
        len -= 8;
    }
    while (len--)
        c = __crc32cb(c, *p++);
    return ~c;
}

sc_crc32c_fn sc_crc32c_hw(void) { return (getauxval(AT_HWCAP) & HWCAP_CRC32) ? crc_arm : NULL; }
#else
sc_crc32c_fn sc_crc32c_hw(void) { return NULL; }
#endif

static sc_crc32c_fn chosen;
static pthread_once_t chosen_once = PTHREAD_ONCE_INIT;

static void choose(void)
{
    chosen = sc_crc32c_hw();
    if (!chosen)
        chosen = sc_crc32c_sw;
}

uint32_t sc_crc32c(uint32_t crc, const void *data, size_t len)
{
    pthread_once(&chosen_once, choose);
    return chosen(crc, data, len);
}

const char *sc_crc32c_impl(void)
{
    pthread_once(&chosen_once, choose);
    if (chosen == sc_crc32c_sw)
        return "software";
#ifdef HAVE_X86_CRC
    return "sse4.2";
#else
    return "armv8-crc";
#endif
}
