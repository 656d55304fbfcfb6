#include "sc_buf.h"

#include "sc_endian.h"
#include "sc_err.h"
#include "sc_mem.h"
#include "sc_varint.h"

#include <string.h>

void sc_buf_init(sc_buf_t *b) { memset(b, 0, sizeof *b); }

void sc_buf_fini(sc_buf_t *b)
{
    sc_free(b->data);
    memset(b, 0, sizeof *b);
}

void sc_buf_reset(sc_buf_t *b) { b->len = 0; }

int sc_buf_reserve(sc_buf_t *b, size_t n)
{
    if (b->cap - b->len >= n)
        return 0;
    if (n > SIZE_MAX / 2 - b->len)
        return SC_ERR_NO_MEMORY;
    size_t cap = b->cap ? b->cap : 64;
    while (cap - b->len < n)
        cap *= 2;
    uint8_t *d = sc_realloc(b->data, cap);
    if (!d)
        return SC_ERR_NO_MEMORY;
    b->data = d;
    b->cap = cap;
    return 0;
}

int sc_buf_append(sc_buf_t *b, const void *p, size_t n)
{
    int rc = sc_buf_reserve(b, n);
    if (rc)
        return rc;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

int sc_buf_append_u8(sc_buf_t *b, uint8_t v) { return sc_buf_append(b, &v, 1); }

int sc_buf_append_be16(sc_buf_t *b, uint16_t v)
{
    uint8_t t[2];
    sc_store_be16(t, v);
    return sc_buf_append(b, t, 2);
}

int sc_buf_append_be32(sc_buf_t *b, uint32_t v)
{
    uint8_t t[4];
    sc_store_be32(t, v);
    return sc_buf_append(b, t, 4);
}

int sc_buf_append_be64(sc_buf_t *b, uint64_t v)
{
    uint8_t t[8];
    sc_store_be64(t, v);
    return sc_buf_append(b, t, 8);
}

int sc_buf_append_uvarint(sc_buf_t *b, uint64_t v)
{
    uint8_t t[SC_VARINT_MAX];
    return sc_buf_append(b, t, sc_uvarint_encode(t, v));
}

int sc_buf_append_varint(sc_buf_t *b, int64_t v)
{
    uint8_t t[SC_VARINT_MAX];
    return sc_buf_append(b, t, sc_varint_encode(t, v));
}

void sc_rd_init(sc_rd_t *r, const void *p, size_t n)
{
    r->p = p;
    r->end = r->p + n;
    r->err = 0;
}

size_t sc_rd_left(const sc_rd_t *r) { return (size_t)(r->end - r->p); }

const uint8_t *sc_rd_bytes(sc_rd_t *r, size_t n)
{
    if (r->err || sc_rd_left(r) < n) {
        r->err = SC_ERR_CORRUPT_MESSAGE;
        return NULL;
    }
    const uint8_t *p = r->p;
    r->p += n;
    return p;
}

uint8_t sc_rd_u8(sc_rd_t *r)
{
    const uint8_t *p = sc_rd_bytes(r, 1);
    return p ? *p : 0;
}

uint16_t sc_rd_be16(sc_rd_t *r)
{
    const uint8_t *p = sc_rd_bytes(r, 2);
    return p ? sc_load_be16(p) : 0;
}

uint32_t sc_rd_be32(sc_rd_t *r)
{
    const uint8_t *p = sc_rd_bytes(r, 4);
    return p ? sc_load_be32(p) : 0;
}

uint64_t sc_rd_be64(sc_rd_t *r)
{
    const uint8_t *p = sc_rd_bytes(r, 8);
    return p ? sc_load_be64(p) : 0;
}

uint64_t sc_rd_uvarint(sc_rd_t *r)
{
    uint64_t v = 0;
    size_t n;
    if (r->err || !(n = sc_uvarint_decode(r->p, sc_rd_left(r), &v))) {
        r->err = SC_ERR_CORRUPT_MESSAGE;
        return 0;
    }
    r->p += n;
    return v;
}

int64_t sc_rd_varint(sc_rd_t *r) { return sc_zigzag_decode(sc_rd_uvarint(r)); }
