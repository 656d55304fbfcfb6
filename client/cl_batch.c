/*
 * cl_batch -- compress and decode RecordBatch v2 (layout in cl_batch.h).
 * Every codec through common/sc_codec: gzip, snappy (raw block written;
 * raw and xerial-framed read), lz4 (KIP-57 frame), zstd.
 */
#include "cl_batch.h"

#include "cl_conf.h"
#include "sc_codec.h"
#include "sc_crc32c.h"
#include "sc_endian.h"
#include "sc_err.h"
#include "sc_mem.h"
#include "sc_varint.h"

#include <string.h>

#define HDR 61
#define MAX_INFLATE (256u << 20)

int cl_codec_supported(int codec) { return sc_codec_name(codec) != NULL; }

int cl_batch_encode(const sc_recbatch_t *b, int codec, int level, sc_buf_t *out)
{
    const uint8_t *src = b->buf.data;
    int rc;

    sc_buf_reset(out);
    if (!cl_codec_supported(codec))
        return SC_ERR_UNSUPPORTED_COMPRESSION_TYPE;
    if (codec == CL_CODEC_NONE)
        return sc_buf_append(out, src, b->buf.len);
    if ((rc = sc_buf_append(out, src, HDR)))
        return rc;
    if ((rc = sc_codec_compress(codec, level, src + HDR, b->buf.len - HDR, out)))
        return rc;
    uint8_t *h = out->data;
    sc_store_be32(h + 8, (uint32_t)(out->len - 12));
    sc_store_be16(h + 21, (uint16_t)((sc_load_be16(h + 21) & ~7u) | (unsigned)codec));
    sc_store_be32(h + 17, sc_crc32c(0, h + 21, out->len - 21));
    return 0;
}

/* Reads a zigzag varint length field that must be -1 or 0..limit. */
static int rd_len(sc_rd_t *r, size_t limit, int32_t *out)
{
    int64_t v = sc_rd_varint(r);
    if (r->err || v < -1 || v > (int64_t)limit)
        return SC_ERR_CORRUPT_MESSAGE;
    *out = (int32_t)v;
    return 0;
}

int cl_batch_decode(const uint8_t *p, size_t n, int check_crc, cl_record_fn fn, void *arg,
                    cl_batch_info_t *info)
{
    cl_batch_info_t bi;
    sc_buf_t plain;
    strata_header_t *hdrs = NULL;
    size_t hcap = 0;
    const uint8_t *recs;
    size_t recs_len;
    int64_t base_ts, max_ts;
    int rc = 0;

    sc_buf_init(&plain);
    if (n < HDR || p[16] != 2 || (size_t)sc_load_be32(p + 8) + 12 != n)
        return SC_ERR_CORRUPT_MESSAGE;
    if (check_crc && sc_crc32c(0, p + 21, n - 21) != sc_load_be32(p + 17))
        return SC_ERR_CORRUPT_MESSAGE;
    bi.base_offset = (int64_t)sc_load_be64(p);
    bi.attributes = (int16_t)sc_load_be16(p + 21);
    bi.last_offset_delta = (int32_t)sc_load_be32(p + 23);
    base_ts = (int64_t)sc_load_be64(p + 27);
    max_ts = (int64_t)sc_load_be64(p + 35);
    bi.producer_id = (int64_t)sc_load_be64(p + 43);
    bi.producer_epoch = (int16_t)sc_load_be16(p + 51);
    bi.base_sequence = (int32_t)sc_load_be32(p + 53);
    bi.count = (int32_t)sc_load_be32(p + 57);
    if (bi.count < 0)
        return SC_ERR_CORRUPT_MESSAGE;
    recs = p + HDR;
    recs_len = n - HDR;
    if ((bi.attributes & 7) != CL_CODEC_NONE) {
        if ((rc = sc_codec_decompress(bi.attributes & 7, recs, recs_len, MAX_INFLATE, &plain)))
            goto out;
        recs = plain.data;
        recs_len = plain.len;
    }
    if (bi.attributes & 0x20) /* control batch: nothing for the application */
        goto done;
    sc_rd_t r;
    sc_rd_init(&r, recs, recs_len);
    for (int32_t i = 0; i < bi.count; i++) {
        cl_record_t rec;
        int64_t len = sc_rd_varint(&r), nh;
        int32_t kl, vl;
        if (r.err || len < 0 || (uint64_t)len > sc_rd_left(&r)) {
            rc = SC_ERR_CORRUPT_MESSAGE;
            goto out;
        }
        const uint8_t *rend = r.p + len;
        sc_rd_u8(&r); /* attributes */
        rec.timestamp = base_ts + sc_rd_varint(&r);
        if (bi.attributes & 0x08) /* LogAppendTime: the broker's time is maxTimestamp */
            rec.timestamp = max_ts;
        rec.offset = bi.base_offset + sc_rd_varint(&r);
        if ((rc = rd_len(&r, sc_rd_left(&r), &kl)))
            goto out;
        rec.key = kl < 0 ? NULL : sc_rd_bytes(&r, (size_t)kl);
        rec.key_len = kl < 0 ? 0 : kl;
        if ((rc = rd_len(&r, sc_rd_left(&r), &vl)))
            goto out;
        rec.value = vl < 0 ? NULL : sc_rd_bytes(&r, (size_t)vl);
        rec.value_len = vl < 0 ? 0 : vl;
        nh = sc_rd_varint(&r);
        if (r.err || nh < 0 || (uint64_t)nh > sc_rd_left(&r)) {
            rc = SC_ERR_CORRUPT_MESSAGE;
            goto out;
        }
        if ((size_t)nh > hcap) {
            strata_header_t *nhdrs = sc_realloc(hdrs, (size_t)nh * sizeof *hdrs);
            if (!nhdrs) {
                rc = SC_ERR_NO_MEMORY;
                goto out;
            }
            hdrs = nhdrs;
            hcap = (size_t)nh;
        }
        for (int64_t h = 0; h < nh; h++) {
            int32_t hkl, hvl;
            if ((rc = rd_len(&r, sc_rd_left(&r), &hkl)) || hkl < 0) {
                rc = SC_ERR_CORRUPT_MESSAGE;
                goto out;
            }
            hdrs[h].key = (const char *)sc_rd_bytes(&r, (size_t)hkl);
            hdrs[h].key_len = (size_t)hkl;
            if ((rc = rd_len(&r, sc_rd_left(&r), &hvl)))
                goto out;
            hdrs[h].value = hvl < 0 ? NULL : sc_rd_bytes(&r, (size_t)hvl);
            hdrs[h].value_len = hvl < 0 ? 0 : (size_t)hvl;
        }
        if (r.err || r.p != rend) {
            rc = SC_ERR_CORRUPT_MESSAGE;
            goto out;
        }
        rec.headers = hdrs;
        rec.header_count = (size_t)nh;
        if ((rc = fn(arg, &bi, &rec)))
            goto out;
    }
done:
    if (info)
        *info = bi;
out:
    sc_free(hdrs);
    sc_buf_fini(&plain);
    return rc;
}
