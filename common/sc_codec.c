/*
 * sc_codec -- Kafka's record-batch compression codecs (contract in sc_codec.h).
 *
 *   gzip    zlib, RFC 1952 gzip stream; several concatenated members are read
 *           as one stream (what `cat a.gz b.gz` and some writers produce).
 *   lz4     liblz4's frame API. Written as Kafka's Java client writes it
 *           (KafkaLZ4BlockOutputStream): 64 KiB independent blocks, no block
 *           or content checksum, no content size, header checksum over the
 *           frame descriptor only (KIP-57; the pre-KIP-57 checksum that also
 *           covered the magic belongs to message format v0/v1, never v2).
 *           Any valid frame is read, including concatenated frames.
 *   zstd    libzstd. Decompression is streaming (ZSTD_decompressStream):
 *           frames written by kafka-python and librdkafka may not carry the
 *           content size, so it cannot be trusted for sizing. Concatenated
 *           frames are read.
 *   snappy  our own code (libsnappy is C++). The raw block format
 *           (github.com/google/snappy format_description.txt):
 *             preamble   uvarint uncompressed length
 *             elements   tag byte, low 2 bits = type:
 *               00 literal   len-1 = tag>>2 (0..59), or 60..63 = 1..4 more
 *                            bytes of len-1, little-endian; then the bytes
 *               01 copy      len = 4 + ((tag>>2)&7), offset = (tag>>5)<<8 | byte
 *               10 copy      len = 1 + (tag>>2), offset = le16
 *               11 copy      len = 1 + (tag>>2), offset = le32
 *           A copy's offset is 1..bytes-produced-so-far; it may overlap its
 *           own output (offset < len repeats a pattern).
 *           The xerial snappy-java framing that the Java client and
 *           kafka-python write: 82 'S' 'N' 'A' 'P' 'P' 'Y' 00, be32 version,
 *           be32 min-compatible version, then chunks [be32 length][raw block].
 *           We write one raw block (as librdkafka does; the Java client's
 *           SnappyInputStream and kafka-python both read raw blocks).
 *           The compressor is the classic greedy one: per 64 KiB fragment a
 *           hash table of 4-byte sequences, a match extends as far as it
 *           goes, misses accelerate the scan (skip heuristic) so
 *           incompressible input costs little.
 *
 * Bounds: every decoder stops once the output of this call would pass max_out
 * and returns SC_ERR_CORRUPT_MESSAGE; no allocation is sized from a length
 * the input claims unless that length is both <= max_out and achievable from
 * the input's size (snappy cannot expand more than ~21x).
 */
#include "sc_codec.h"

#include "sc_err.h"

#include <lz4frame.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>
#include <zstd_errors.h>

static const char *const names[] = {"none", "gzip", "snappy", "lz4", "zstd"};

const char *sc_codec_name(int codec)
{
    return codec >= 0 && codec <= SC_CODEC_ZSTD ? names[codec] : NULL;
}

int sc_codec_from_name(const char *name)
{
    if (!name)
        return -1;
    if (!strcmp(name, "uncompressed"))
        return SC_CODEC_NONE;
    for (int i = 0; i <= SC_CODEC_ZSTD; i++)
        if (!strcmp(name, names[i]))
            return i;
    return -1;
}

/* Room for the next chunk of output: grows geometrically with what this call
 * produced so far, never past max_out (+1 so that overflow is detectable). */
static size_t next_room(size_t produced, size_t max_out)
{
    size_t room = produced < 16384 ? 16384 : produced;
    size_t left = max_out - produced; /* produced <= max_out always */
    if (room > left + 1)
        room = left + 1;
    return room;
}

/* ---- gzip ----------------------------------------------------------------- */

static int gzip_compress(int level, const uint8_t *in, size_t n, sc_buf_t *out)
{
    z_stream zs;
    int rc = 0;

    if (level > 9)
        level = 9;
    memset(&zs, 0, sizeof zs);
    if (deflateInit2(&zs, level < 0 ? Z_DEFAULT_COMPRESSION : level, Z_DEFLATED, 16 + MAX_WBITS,
                     8, Z_DEFAULT_STRATEGY) != Z_OK)
        return SC_ERR_NO_MEMORY;
    zs.next_in = (Bytef *)(uintptr_t)in;
    for (;;) {
        /* zlib counts in uInt: feed and drain in <= 1 GiB steps */
        size_t feed = n > (1u << 30) ? (1u << 30) : n;
        uLong bound = deflateBound(&zs, (uLong)feed) + 64;
        int zrc;
        if ((rc = sc_buf_reserve(out, bound)))
            goto out;
        zs.avail_in = (uInt)feed;
        zs.next_out = out->data + out->len;
        zs.avail_out = (uInt)bound;
        zrc = deflate(&zs, feed == n ? Z_FINISH : Z_NO_FLUSH);
        out->len += bound - zs.avail_out;
        n -= feed - zs.avail_in;
        if (zrc == Z_STREAM_END)
            break;
        if (zrc != Z_OK && zrc != Z_BUF_ERROR) {
            rc = SC_ERR_NO_MEMORY;
            goto out;
        }
    }
out:
    deflateEnd(&zs);
    return rc;
}

static int gzip_decompress(const uint8_t *in, size_t n, size_t max_out, sc_buf_t *out)
{
    z_stream zs;
    size_t produced = 0;
    int rc = 0, zrc = Z_OK;

    if (n > UINT32_MAX)
        return SC_ERR_CORRUPT_MESSAGE;
    memset(&zs, 0, sizeof zs);
    if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK)
        return SC_ERR_NO_MEMORY;
    zs.next_in = (Bytef *)(uintptr_t)in;
    zs.avail_in = (uInt)n;
    for (;;) {
        size_t room = next_room(produced, max_out);
        if (room > (1u << 30))
            room = 1u << 30;
        if ((rc = sc_buf_reserve(out, room)))
            goto out;
        zs.next_out = out->data + out->len;
        zs.avail_out = (uInt)room;
        zrc = inflate(&zs, Z_NO_FLUSH);
        out->len += room - zs.avail_out;
        produced += room - zs.avail_out;
        if (produced > max_out) {
            rc = SC_ERR_CORRUPT_MESSAGE;
            goto out;
        }
        if (zrc == Z_MEM_ERROR) {
            rc = SC_ERR_NO_MEMORY;
            goto out;
        }
        if (zrc == Z_STREAM_END) {
            /* another gzip member follows? (1f 8b) */
            if (zs.avail_in == 0)
                break;
            if (zs.avail_in < 2 || zs.next_in[0] != 0x1f || zs.next_in[1] != 0x8b ||
                inflateReset(&zs) != Z_OK) {
                rc = SC_ERR_CORRUPT_MESSAGE; /* trailing garbage */
                goto out;
            }
            continue;
        }
        if (zrc != Z_OK && zrc != Z_BUF_ERROR) {
            rc = SC_ERR_CORRUPT_MESSAGE;
            goto out;
        }
        if (zs.avail_in == 0 && zs.avail_out != 0) {
            rc = SC_ERR_CORRUPT_MESSAGE; /* truncated stream */
            goto out;
        }
    }
out:
    inflateEnd(&zs);
    return rc;
}

/* ---- lz4 ------------------------------------------------------------------ */

static int lz4_compress(int level, const uint8_t *in, size_t n, sc_buf_t *out)
{
    LZ4F_preferences_t prefs;
    size_t bound, r;
    int rc;

    memset(&prefs, 0, sizeof prefs);
    prefs.frameInfo.blockSizeID = LZ4F_max64KB;
    prefs.frameInfo.blockMode = LZ4F_blockIndependent;
    prefs.frameInfo.contentChecksumFlag = LZ4F_noContentChecksum;
    prefs.frameInfo.blockChecksumFlag = LZ4F_noBlockChecksum;
    prefs.compressionLevel = level < 0 ? 0 : level;
    bound = LZ4F_compressFrameBound(n, &prefs);
    if ((rc = sc_buf_reserve(out, bound)))
        return rc;
    r = LZ4F_compressFrame(out->data + out->len, bound, in, n, &prefs);
    if (LZ4F_isError(r))
        return SC_ERR_NO_MEMORY;
    out->len += r;
    return 0;
}

static int lz4_decompress(const uint8_t *in, size_t n, size_t max_out, sc_buf_t *out)
{
    LZ4F_dctx *dctx = NULL;
    size_t produced = 0, hint = 1;
    int rc = 0;

    if (LZ4F_isError(LZ4F_createDecompressionContext(&dctx, LZ4F_VERSION)))
        return SC_ERR_NO_MEMORY;
    while (n > 0) {
        size_t room = next_room(produced, max_out);
        size_t dst_len = room, src_len = n;
        if ((rc = sc_buf_reserve(out, room)))
            goto out;
        hint = LZ4F_decompress(dctx, out->data + out->len, &dst_len, in, &src_len, NULL);
        if (LZ4F_isError(hint)) {
            rc = SC_ERR_CORRUPT_MESSAGE; /* (an allocation failure reads as corrupt too) */
            goto out;
        }
        out->len += dst_len;
        produced += dst_len;
        in += src_len;
        n -= src_len;
        if (produced > max_out) {
            rc = SC_ERR_CORRUPT_MESSAGE;
            goto out;
        }
        if (src_len == 0 && dst_len == 0) {
            rc = SC_ERR_CORRUPT_MESSAGE; /* no progress */
            goto out;
        }
    }
    /* drain what the context still holds (output that did not fit) */
    while (hint != 0) {
        size_t room = next_room(produced, max_out);
        size_t dst_len = room, src_len = 0;
        if ((rc = sc_buf_reserve(out, room)))
            goto out;
        hint = LZ4F_decompress(dctx, out->data + out->len, &dst_len, in, &src_len, NULL);
        if (LZ4F_isError(hint) || dst_len == 0) {
            rc = SC_ERR_CORRUPT_MESSAGE; /* truncated frame */
            goto out;
        }
        out->len += dst_len;
        produced += dst_len;
        if (produced > max_out) {
            rc = SC_ERR_CORRUPT_MESSAGE;
            goto out;
        }
    }
out:
    LZ4F_freeDecompressionContext(dctx);
    return rc;
}

/* ---- zstd ----------------------------------------------------------------- */

static int zstd_compress(int level, const uint8_t *in, size_t n, sc_buf_t *out)
{
    size_t bound = ZSTD_compressBound(n), r;
    int rc;

    if (level < 0 || level == 0)
        level = ZSTD_CLEVEL_DEFAULT;
    if (level > ZSTD_maxCLevel())
        level = ZSTD_maxCLevel();
    if ((rc = sc_buf_reserve(out, bound)))
        return rc;
    r = ZSTD_compress(out->data + out->len, bound, in, n, level);
    if (ZSTD_isError(r))
        return SC_ERR_NO_MEMORY;
    out->len += r;
    return 0;
}

static int zstd_decompress(const uint8_t *in, size_t n, size_t max_out, sc_buf_t *out)
{
    ZSTD_DStream *ds = ZSTD_createDStream();
    ZSTD_inBuffer ib = {in, n, 0};
    size_t produced = 0, consumed = 0, r = 1;
    int rc = 0;

    if (!ds)
        return SC_ERR_NO_MEMORY;
    if (n == 0) {
        rc = SC_ERR_CORRUPT_MESSAGE;
        goto out;
    }
    for (;;) {
        size_t room = next_room(produced, max_out);
        ZSTD_outBuffer ob;
        if ((rc = sc_buf_reserve(out, room)))
            goto out;
        ob.dst = out->data + out->len;
        ob.size = room;
        ob.pos = 0;
        r = ZSTD_decompressStream(ds, &ob, &ib);
        if (ZSTD_isError(r)) {
            rc = ZSTD_getErrorCode(r) == ZSTD_error_memory_allocation ? SC_ERR_NO_MEMORY
                                                                      : SC_ERR_CORRUPT_MESSAGE;
            goto out;
        }
        out->len += ob.pos;
        produced += ob.pos;
        if (ob.pos == 0 && ib.pos == consumed && ib.pos < ib.size) {
            rc = SC_ERR_CORRUPT_MESSAGE; /* no progress */
            goto out;
        }
        consumed = ib.pos;
        if (produced > max_out) {
            rc = SC_ERR_CORRUPT_MESSAGE;
            goto out;
        }
        if (ib.pos == ib.size && r == 0)
            break; /* last frame complete and flushed */
        if (ib.pos == ib.size && ob.pos < ob.size) {
            rc = SC_ERR_CORRUPT_MESSAGE; /* input ends inside a frame */
            goto out;
        }
    }
out:
    ZSTD_freeDStream(ds);
    return rc;
}

/* ---- snappy --------------------------------------------------------------- */

static inline uint32_t ld32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static inline uint64_t ld64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static uint8_t *emit_literal(uint8_t *op, const uint8_t *lit, size_t len)
{
    size_t n = len - 1;
    if (n < 60) {
        *op++ = (uint8_t)(n << 2);
    } else {
        int bytes = n < (1u << 8) ? 1 : n < (1u << 16) ? 2 : n < (1u << 24) ? 3 : 4;
        *op++ = (uint8_t)((59 + bytes) << 2);
        for (int i = 0; i < bytes; i++)
            *op++ = (uint8_t)(n >> (8 * i));
    }
    memcpy(op, lit, len);
    return op + len;
}

static uint8_t *emit_copy_upto64(uint8_t *op, size_t offset, size_t len)
{
    if (len < 12 && offset < 2048) {
        *op++ = (uint8_t)(1 | ((len - 4) << 2) | ((offset >> 8) << 5));
        *op++ = (uint8_t)offset;
    } else {
        *op++ = (uint8_t)(2 | ((len - 1) << 2));
        *op++ = (uint8_t)offset;
        *op++ = (uint8_t)(offset >> 8);
    }
    return op;
}

static uint8_t *emit_copy(uint8_t *op, size_t offset, size_t len)
{
    /* len >= 4; emit 64s while a >= 4 remainder stays, then the rest */
    while (len >= 68) {
        op = emit_copy_upto64(op, offset, 64);
        len -= 64;
    }
    if (len > 64) {
        op = emit_copy_upto64(op, offset, 60);
        len -= 60;
    }
    return emit_copy_upto64(op, offset, len);
}

#define SNAPPY_FRAGMENT 65536
#define SNAPPY_HASH_BITS 14

static inline uint32_t snappy_hash(uint32_t v) { return (v * 0x1e35a7bdu) >> (32 - SNAPPY_HASH_BITS); }

/* Compresses one fragment (<= 64 KiB, so offsets fit 16 bits). */
static uint8_t *snappy_fragment(const uint8_t *in, size_t n, uint8_t *op, uint16_t *table)
{
    const uint8_t *ip = in, *end = in + n, *lit = in;
    const uint8_t *limit; /* last position a 4-byte load + match scan may start */

    if (n < 15)
        goto tail;
    memset(table, 0, sizeof(uint16_t) << SNAPPY_HASH_BITS);
    limit = end - 15;
    ip++;
    for (;;) {
        const uint8_t *cand;
        uint32_t skip = 32;
        /* find a 4-byte match */
        for (;;) {
            uint32_t h = snappy_hash(ld32(ip));
            const uint8_t *next = ip + (skip++ >> 5);
            cand = in + table[h];
            table[h] = (uint16_t)(ip - in);
            if (ld32(cand) == ld32(ip) && cand < ip)
                break;
            ip = next;
            if (ip > limit)
                goto tail;
        }
        op = emit_literal(op, lit, (size_t)(ip - lit));
        /* extend and emit matches back to back while they continue */
        for (;;) {
            const uint8_t *base = ip;
            size_t m = 4;
            while (ip + m + 8 <= end && ld64(ip + m) == ld64(cand + m))
                m += 8;
            while (ip + m < end && ip[m] == cand[m])
                m++;
            op = emit_copy(op, (size_t)(base - cand), m);
            ip += m;
            lit = ip;
            if (ip > limit)
                goto tail;
            /* re-seed the table at ip-1 and try ip right away */
            table[snappy_hash(ld32(ip - 1))] = (uint16_t)(ip - 1 - in);
            uint32_t h = snappy_hash(ld32(ip));
            cand = in + table[h];
            table[h] = (uint16_t)(ip - in);
            if (ld32(cand) != ld32(ip) || cand >= ip)
                break;
        }
        ip++;
        if (ip > limit)
            goto tail;
    }
tail:
    if (lit < end)
        op = emit_literal(op, lit, (size_t)(end - lit));
    return op;
}

static int snappy_compress(const uint8_t *in, size_t n, sc_buf_t *out)
{
    /* worst case: 5-byte preamble + every byte a literal with a 5-byte tag
     * per 64 KiB fragment (n/6 is the documented loose bound) */
    size_t bound = 32 + n + n / 6;
    uint16_t table[1 << SNAPPY_HASH_BITS];
    uint8_t *op;
    int rc;

    if (n > UINT32_MAX)
        return SC_ERR_NO_MEMORY; /* the format's length is 32-bit */
    if ((rc = sc_buf_reserve(out, bound)))
        return rc;
    op = out->data + out->len;
    for (size_t v = n;; v >>= 7) { /* preamble: uvarint length */
        if (v < 0x80) {
            *op++ = (uint8_t)v;
            break;
        }
        *op++ = (uint8_t)(v | 0x80);
    }
    for (size_t off = 0; off < n; off += SNAPPY_FRAGMENT) {
        size_t len = n - off < SNAPPY_FRAGMENT ? n - off : SNAPPY_FRAGMENT;
        op = snappy_fragment(in + off, len, op, table);
    }
    out->len = (size_t)(op - out->data);
    return 0;
}

/* Decodes one raw snappy block, appending to out; *budget = bytes this call
 * may still produce, reduced by what the block produced. */
static int snappy_block(const uint8_t *in, size_t n, size_t *budget, sc_buf_t *out)
{
    const uint8_t *ip = in, *end = in + n;
    uint64_t len = 0;
    uint8_t *base, *op, *oend;
    int shift = 0, rc;

    for (;;) { /* preamble */
        if (ip >= end || shift > 28)
            return SC_ERR_CORRUPT_MESSAGE;
        uint8_t b = *ip++;
        len |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            break;
        shift += 7;
    }
    if (len > UINT32_MAX || len > *budget)
        return SC_ERR_CORRUPT_MESSAGE;
    /* a 3-byte copy yields at most 64 bytes: more than that ratio is a lie */
    if (len > (uint64_t)(end - ip) * 22 + 64)
        return SC_ERR_CORRUPT_MESSAGE;
    if (len == 0) /* (out->data may still be NULL) */
        return ip == end ? 0 : SC_ERR_CORRUPT_MESSAGE;
    if ((rc = sc_buf_reserve(out, (size_t)len)))
        return rc;
    base = out->data + out->len;
    op = base;
    oend = base + len;
    while (ip < end) {
        uint8_t tag = *ip++;
        size_t l, off;
        switch (tag & 3) {
        case 0:
            l = tag >> 2;
            if (l >= 60) {
                size_t nb = l - 59;
                if ((size_t)(end - ip) < nb)
                    return SC_ERR_CORRUPT_MESSAGE;
                l = 0;
                for (size_t i = 0; i < nb; i++)
                    l |= (size_t)ip[i] << (8 * i);
                ip += nb;
            }
            l += 1;
            if ((size_t)(end - ip) < l || (size_t)(oend - op) < l)
                return SC_ERR_CORRUPT_MESSAGE;
            memcpy(op, ip, l);
            op += l;
            ip += l;
            continue;
        case 1:
            if (ip >= end)
                return SC_ERR_CORRUPT_MESSAGE;
            l = 4 + ((tag >> 2) & 7);
            off = ((size_t)(tag >> 5) << 8) | *ip++;
            break;
        case 2:
            if (end - ip < 2)
                return SC_ERR_CORRUPT_MESSAGE;
            l = 1 + (size_t)(tag >> 2);
            off = (size_t)ip[0] | (size_t)ip[1] << 8;
            ip += 2;
            break;
        default:
            if (end - ip < 4)
                return SC_ERR_CORRUPT_MESSAGE;
            l = 1 + (size_t)(tag >> 2);
            off = (size_t)ip[0] | (size_t)ip[1] << 8 | (size_t)ip[2] << 16 | (size_t)ip[3] << 24;
            ip += 4;
            break;
        }
        if (off == 0 || off > (size_t)(op - base) || (size_t)(oend - op) < l)
            return SC_ERR_CORRUPT_MESSAGE;
        const uint8_t *src = op - off;
        if (off >= l) {
            memcpy(op, src, l);
            op += l;
        } else {
            for (size_t i = 0; i < l; i++) /* overlapping: byte by byte */
                *op++ = src[i];
        }
    }
    if (op != oend)
        return SC_ERR_CORRUPT_MESSAGE;
    out->len += (size_t)len;
    *budget -= (size_t)len;
    return 0;
}

static const uint8_t xerial_magic[8] = {0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0};

static int snappy_decompress(const uint8_t *in, size_t n, size_t max_out, sc_buf_t *out)
{
    size_t budget = max_out, start = out->len;
    int rc = 0;

    if (n < 16 || memcmp(in, xerial_magic, 8) != 0)
        return snappy_block(in, n, &budget, out);
    /* xerial: magic, be32 version, be32 compatible version, chunks */
    in += 16;
    n -= 16;
    while (n > 0) {
        uint32_t clen;
        if (n < 4) {
            rc = SC_ERR_CORRUPT_MESSAGE;
            break;
        }
        clen = (uint32_t)in[0] << 24 | (uint32_t)in[1] << 16 | (uint32_t)in[2] << 8 | in[3];
        in += 4;
        n -= 4;
        if (clen > n) {
            rc = SC_ERR_CORRUPT_MESSAGE;
            break;
        }
        if ((rc = snappy_block(in, clen, &budget, out)))
            break;
        in += clen;
        n -= clen;
    }
    if (rc)
        out->len = start;
    return rc;
}

/* ---- dispatch ------------------------------------------------------------- */

int sc_codec_compress(int codec, int level, const void *src, size_t n, sc_buf_t *out)
{
    size_t start = out->len;
    int rc;

    switch (codec) {
    case SC_CODEC_NONE:
        return sc_buf_append(out, src, n);
    case SC_CODEC_GZIP:
        rc = gzip_compress(level, src, n, out);
        break;
    case SC_CODEC_SNAPPY:
        rc = snappy_compress(src, n, out);
        break;
    case SC_CODEC_LZ4:
        rc = lz4_compress(level, src, n, out);
        break;
    case SC_CODEC_ZSTD:
        rc = zstd_compress(level, src, n, out);
        break;
    default:
        return SC_ERR_UNSUPPORTED_COMPRESSION_TYPE;
    }
    if (rc)
        out->len = start;
    return rc;
}

int sc_codec_decompress(int codec, const void *src, size_t n, size_t max_out, sc_buf_t *out)
{
    size_t start = out->len;
    int rc;

    switch (codec) {
    case SC_CODEC_NONE:
        if (n > max_out)
            return SC_ERR_CORRUPT_MESSAGE;
        return sc_buf_append(out, src, n);
    case SC_CODEC_GZIP:
        rc = gzip_decompress(src, n, max_out, out);
        break;
    case SC_CODEC_SNAPPY:
        rc = snappy_decompress(src, n, max_out, out);
        break;
    case SC_CODEC_LZ4:
        rc = lz4_decompress(src, n, max_out, out);
        break;
    case SC_CODEC_ZSTD:
        rc = zstd_decompress(src, n, max_out, out);
        break;
    default:
        return SC_ERR_UNSUPPORTED_COMPRESSION_TYPE;
    }
    if (rc)
        out->len = start;
    return rc;
}
