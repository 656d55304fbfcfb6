/*
 * sc_crc32c -- CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the
 * checksum of Kafka RecordBatch v2.
 *
 * sc_crc32c() picks, once, the SSE4.2 crc32 instruction on x86-64 or the ARMv8
 * CRC32C instructions on arm64 when the CPU has them, else a portable
 * slice-by-8 table. All variants give identical results (tests check each one
 * against published vectors). Thread-safe.
 *
 * crc is the running value: start with 0, feed chunks, the result is final
 * (pre- and post-inversion are done inside).
 */
#ifndef SC_CRC32C_H
#define SC_CRC32C_H

#include <stddef.h>
#include <stdint.h>

uint32_t sc_crc32c(uint32_t crc, const void *data, size_t len);

/* The portable variant, always available. */
uint32_t sc_crc32c_sw(uint32_t crc, const void *data, size_t len);

/* The hardware variant, or NULL when this CPU has none. */
typedef uint32_t (*sc_crc32c_fn)(uint32_t crc, const void *data, size_t len);
sc_crc32c_fn sc_crc32c_hw(void);

/* "sse4.2", "armv8-crc" or "software": what sc_crc32c uses. */
const char *sc_crc32c_impl(void);

#endif
