#include "st_batch.h"

#include "sc_buf.h"
#include "sc_crc32c.h"
#include "sc_endian.h"
#include "sc_err.h"

int st_batch_hdr_decode(const void *p, size_t n, st_batch_hdr_t *out)
{
    const uint8_t *b = p;
    if (n < ST_BATCH_HEADER_SIZE)
        return SC_ERR_CORRUPT_MESSAGE;
    out->base_offset = (int64_t)sc_load_be64(b + ST_BATCH_OFF_BASE_OFFSET);
    out->length = (int32_t)sc_load_be32(b + ST_BATCH_OFF_LENGTH);
    out->leader_epoch = (int32_t)sc_load_be32(b + ST_BATCH_OFF_LEADER_EPOCH);
    out->magic = (int8_t)b[ST_BATCH_OFF_MAGIC];
    out->crc = sc_load_be32(b + ST_BATCH_OFF_CRC);
    out->attributes = (int16_t)sc_load_be16(b + ST_BATCH_OFF_ATTRIBUTES);
    out->last_offset_delta = (int32_t)sc_load_be32(b + ST_BATCH_OFF_LAST_OFFSET_DELTA);
    out->base_timestamp = (int64_t)sc_load_be64(b + ST_BATCH_OFF_BASE_TIMESTAMP);
    out->max_timestamp = (int64_t)sc_load_be64(b + ST_BATCH_OFF_MAX_TIMESTAMP);
    out->producer_id = (int64_t)sc_load_be64(b + ST_BATCH_OFF_PRODUCER_ID);
    out->producer_epoch = (int16_t)sc_load_be16(b + ST_BATCH_OFF_PRODUCER_EPOCH);
    out->base_sequence = (int32_t)sc_load_be32(b + ST_BATCH_OFF_BASE_SEQUENCE);
    out->records_count = (int32_t)sc_load_be32(b + ST_BATCH_OFF_RECORDS_COUNT);
    return 0;
}

int64_t st_batch_size(const void *p, size_t n)
{
    if (n < ST_BATCH_LOG_OVERHEAD)
        return -1;
    int32_t len = (int32_t)sc_load_be32((const uint8_t *)p + ST_BATCH_OFF_LENGTH);
    if (len < ST_BATCH_HEADER_SIZE - ST_BATCH_LOG_OVERHEAD)
        return -1;
    return (int64_t)len + ST_BATCH_LOG_OVERHEAD;
}

int st_batch_validate(const void *p, size_t n, int allow_gaps, st_batch_hdr_t *out)
{
    const uint8_t *b = p;
    st_batch_hdr_t h;
    int64_t size = st_batch_size(p, n);

    if (size < 0 || n < ST_BATCH_HEADER_SIZE || (uint64_t)size > n)
        return SC_ERR_CORRUPT_MESSAGE;
    st_batch_hdr_decode(p, n, &h);
    if (h.magic != ST_BATCH_MAGIC)
        return SC_ERR_INVALID_RECORD;
    if (sc_crc32c(0, b + ST_BATCH_OFF_ATTRIBUTES, (size_t)size - ST_BATCH_OFF_ATTRIBUTES) != h.crc)
        return SC_ERR_CORRUPT_MESSAGE;
    if (h.records_count < 0 || h.last_offset_delta < 0)
        return SC_ERR_CORRUPT_MESSAGE;
    if (allow_gaps ? h.records_count > (int64_t)h.last_offset_delta + 1
                   : h.records_count != (int64_t)h.last_offset_delta + 1)
        return SC_ERR_CORRUPT_MESSAGE;
    if (out)
        *out = h;
    return 0;
}

void st_batch_set_offset(void *p, int64_t base_offset, int32_t leader_epoch)
{
    uint8_t *b = p;
    sc_store_be64(b + ST_BATCH_OFF_BASE_OFFSET, (uint64_t)base_offset);
    sc_store_be32(b + ST_BATCH_OFF_LEADER_EPOCH, (uint32_t)leader_epoch);
}

int st_batch_validate_all(const void *p, size_t n, int *nbatches, int64_t *noffsets)
{
    const uint8_t *b = p;
    size_t pos = 0;
    int cnt = 0;
    int64_t offs = 0;

    if (n == 0)
        return SC_ERR_CORRUPT_MESSAGE;
    while (pos < n) {
        st_batch_hdr_t h;
        int rc = st_batch_validate(b + pos, n - pos, 0, &h);
        if (rc)
            return rc;
        pos += (size_t)h.length + ST_BATCH_LOG_OVERHEAD;
        offs += (int64_t)h.last_offset_delta + 1;
        cnt++;
    }
    *nbatches = cnt;
    *noffsets = offs;
    return 0;
}

int st_batch_find_timestamp(const void *p, size_t n, int64_t ts, int64_t *offset)
{
    st_batch_hdr_t h;
    sc_rd_t r;
    int64_t size = st_batch_size(p, n);

    if (size < 0 || (uint64_t)size > n || st_batch_hdr_decode(p, n, &h))
        return SC_ERR_CORRUPT_MESSAGE;
    if (h.max_timestamp < ts)
        return SC_ERR_NOT_FOUND;
    if (h.attributes & ST_BATCH_ATTR_CODEC_MASK)
        return SC_ERR_UNSUPPORTED_COMPRESSION_TYPE;
    if (h.attributes & ST_BATCH_ATTR_LOG_APPEND_TIME) {
        *offset = h.base_offset; /* every record carries maxTimestamp */
        return 0;
    }
    sc_rd_init(&r, (const uint8_t *)p + ST_BATCH_HEADER_SIZE, (size_t)size - ST_BATCH_HEADER_SIZE);
    for (int32_t i = 0; i < h.records_count; i++) {
        int64_t len = sc_rd_varint(&r);
        if (r.err || len < 0 || (uint64_t)len > sc_rd_left(&r))
            return SC_ERR_CORRUPT_MESSAGE;
        const uint8_t *rec = sc_rd_bytes(&r, (size_t)len);
        sc_rd_t rr;
        sc_rd_init(&rr, rec, (size_t)len);
        (void)sc_rd_u8(&rr); /* attributes */
        int64_t ts_delta = sc_rd_varint(&rr);
        int64_t off_delta = sc_rd_varint(&rr);
        if (rr.err)
            return SC_ERR_CORRUPT_MESSAGE;
        int64_t rts, roff;
        if (__builtin_add_overflow(h.base_timestamp, ts_delta, &rts) ||
            __builtin_add_overflow(h.base_offset, off_delta, &roff))
            return SC_ERR_CORRUPT_MESSAGE;
        if (rts >= ts) {
            *offset = roff;
            return 0;
        }
    }
    return SC_ERR_NOT_FOUND;
}
