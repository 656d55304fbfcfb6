#include "sc_recbatch.h"

#include "sc_crc32c.h"
#include "sc_endian.h"
#include "sc_err.h"
#include "sc_varint.h"

#include <string.h>

#define HDR 61

void sc_recbatch_init(sc_recbatch_t *b)
{
    memset(b, 0, sizeof *b);
    sc_buf_init(&b->buf);
}

void sc_recbatch_fini(sc_recbatch_t *b) { sc_buf_fini(&b->buf); }

int sc_recbatch_begin(sc_recbatch_t *b, int64_t base_timestamp, int64_t producer_id,
                      int16_t producer_epoch, int32_t base_sequence)
{
    uint8_t *h;
    int rc;

    sc_buf_reset(&b->buf);
    if ((rc = sc_buf_reserve(&b->buf, HDR)))
        return rc;
    h = b->buf.data;
    memset(h, 0, HDR);
    h[16] = 2;
    sc_store_be64(h + 43, (uint64_t)producer_id);
    sc_store_be16(h + 51, (uint16_t)producer_epoch);
    sc_store_be32(h + 53, (uint32_t)base_sequence);
    b->buf.len = HDR;
    b->base_timestamp = base_timestamp;
    b->max_timestamp = base_timestamp;
    b->count = 0;
    return 0;
}

static size_t bytes_field_size(int32_t len) { return sc_varint_size(len) + (len > 0 ? (size_t)len : 0); }

int sc_recbatch_add(sc_recbatch_t *b, int64_t timestamp, const void *key, int32_t key_len,
                    const void *value, int32_t value_len, const sc_rec_header_t *headers,
                    int nheaders)
{
    int32_t kl = key ? key_len : -1, vl = value ? value_len : -1;
    int64_t ts_delta = timestamp - b->base_timestamp;
    size_t body = 1 + sc_varint_size(ts_delta) + sc_varint_size(b->count) + bytes_field_size(kl) +
                  bytes_field_size(vl) + sc_varint_size(nheaders);
    int rc;

    for (int i = 0; i < nheaders; i++)
        body += bytes_field_size((int32_t)headers[i].key_len) +
                bytes_field_size(headers[i].value ? (int32_t)headers[i].value_len : -1);
    if ((rc = sc_buf_reserve(&b->buf, body + SC_VARINT_MAX)))
        return rc;
    sc_buf_append_varint(&b->buf, (int64_t)body);
    sc_buf_append_u8(&b->buf, 0);
    sc_buf_append_varint(&b->buf, ts_delta);
    sc_buf_append_varint(&b->buf, b->count);
    sc_buf_append_varint(&b->buf, kl);
    if (kl > 0)
        sc_buf_append(&b->buf, key, (size_t)kl);
    sc_buf_append_varint(&b->buf, vl);
    if (vl > 0)
        sc_buf_append(&b->buf, value, (size_t)vl);
    sc_buf_append_varint(&b->buf, nheaders);
    for (int i = 0; i < nheaders; i++) {
        sc_buf_append_varint(&b->buf, (int64_t)headers[i].key_len);
        sc_buf_append(&b->buf, headers[i].key, headers[i].key_len);
        if (!headers[i].value) {
            sc_buf_append_varint(&b->buf, -1);
        } else {
            sc_buf_append_varint(&b->buf, (int64_t)headers[i].value_len);
            sc_buf_append(&b->buf, headers[i].value, headers[i].value_len);
        }
    }
    if (timestamp > b->max_timestamp)
        b->max_timestamp = timestamp;
    b->count++;
    return 0;
}

int sc_recbatch_finish(sc_recbatch_t *b)
{
    uint8_t *h = b->buf.data;
    sc_store_be64(h + 0, 0);
    sc_store_be32(h + 8, (uint32_t)(b->buf.len - 12));
    sc_store_be32(h + 12, 0);
    h[16] = 2;
    sc_store_be16(h + 21, 0);
    sc_store_be32(h + 23, (uint32_t)(b->count > 0 ? b->count - 1 : 0));
    sc_store_be64(h + 27, (uint64_t)b->base_timestamp);
    sc_store_be64(h + 35, (uint64_t)b->max_timestamp);
    sc_store_be32(h + 57, (uint32_t)b->count);
    sc_store_be32(h + 17, sc_crc32c(0, h + 21, b->buf.len - 21));
    return 0;
}
