/*
 * sc_buf -- a growable byte buffer (caller's storage), plus a bounded reader.
 *
 * sc_buf_t owns its bytes; sc_buf_fini releases them. Appends grow the buffer
 * geometrically and return SC_ERR_NO_MEMORY when that fails, leaving the buffer
 * as it was. Not thread-safe: one owner at a time.
 *
 * sc_rd_t reads big-endian integers and varints from a borrowed span; any read
 * past the end sets rd->err (sticky) and returns 0, so a decoder can read a
 * whole structure and check once at the end.
 */
#ifndef SC_BUF_H
#define SC_BUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint8_t *data;
    size_t len;
    size_t cap;
} sc_buf_t;

void sc_buf_init(sc_buf_t *b);
void sc_buf_fini(sc_buf_t *b);
/* Ensures room for n more bytes. 0 or SC_ERR_NO_MEMORY. */
int sc_buf_reserve(sc_buf_t *b, size_t n);
int sc_buf_append(sc_buf_t *b, const void *p, size_t n);
int sc_buf_append_u8(sc_buf_t *b, uint8_t v);
int sc_buf_append_be16(sc_buf_t *b, uint16_t v);
int sc_buf_append_be32(sc_buf_t *b, uint32_t v);
int sc_buf_append_be64(sc_buf_t *b, uint64_t v);
int sc_buf_append_uvarint(sc_buf_t *b, uint64_t v);
int sc_buf_append_varint(sc_buf_t *b, int64_t v);
void sc_buf_reset(sc_buf_t *b);

typedef struct {
    const uint8_t *p;
    const uint8_t *end;
    int err; /* 0, or SC_ERR_CORRUPT_MESSAGE once a read ran past the end */
} sc_rd_t;

void sc_rd_init(sc_rd_t *r, const void *p, size_t n);
size_t sc_rd_left(const sc_rd_t *r);
uint8_t sc_rd_u8(sc_rd_t *r);
uint16_t sc_rd_be16(sc_rd_t *r);
uint32_t sc_rd_be32(sc_rd_t *r);
uint64_t sc_rd_be64(sc_rd_t *r);
uint64_t sc_rd_uvarint(sc_rd_t *r);
int64_t sc_rd_varint(sc_rd_t *r);
/* Returns a pointer to the next n bytes and skips them, or NULL (sets err). */
const uint8_t *sc_rd_bytes(sc_rd_t *r, size_t n);

#endif
