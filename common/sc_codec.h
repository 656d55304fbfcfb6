/*
 * sc_codec -- Kafka's record-batch compression codecs, one place for the
 * client (libstrata), the broker and the log cleaner.
 *
 * The codec numbers are the RecordBatch attributes bits 0-2. The byte formats
 * are the ones Kafka clients write and read:
 *   gzip    RFC 1952 gzip stream (zlib)
 *   snappy  raw snappy block, or the xerial "snappy-java" framing (magic
 *           82 'S' 'N' 'A' 'P' 'P' 'Y' 00 ...), which Java and kafka-python
 *           write; both are read, raw is written (librdkafka does the same)
 *   lz4     LZ4 frame format (KIP-57: correct header checksum)
 *   zstd    zstd frame (libzstd)
 *
 * Pure functions over caller buffers; any thread; no global state.
 */
#ifndef SC_CODEC_H
#define SC_CODEC_H

#include "sc_buf.h"

#include <stddef.h>
#include <stdint.h>

typedef enum {
    SC_CODEC_NONE = 0,
    SC_CODEC_GZIP = 1,
    SC_CODEC_SNAPPY = 2,
    SC_CODEC_LZ4 = 3,
    SC_CODEC_ZSTD = 4,
} sc_codec_t;

/* "none", "gzip", "snappy", "lz4", "zstd"; NULL for any other value. */
const char *sc_codec_name(int codec);

/* Parses a codec name as Kafka's compression.type spells it (also
 * "uncompressed" for none). Returns the codec or -1. */
int sc_codec_from_name(const char *name);

/* Appends the compressed form of src[0..n) to out. level < 0 = the codec's
 * default. Returns 0, SC_ERR_NO_MEMORY, SC_ERR_UNSUPPORTED_COMPRESSION_TYPE
 * (unknown codec). */
int sc_codec_compress(int codec, int level, const void *src, size_t n, sc_buf_t *out);

/* Appends the decompressed form of src[0..n) to out, refusing to produce more
 * than max_out bytes in all (a decompression bomb is corrupt input, not an
 * allocation). Returns 0, SC_ERR_CORRUPT_MESSAGE (bad, truncated or oversized
 * input), SC_ERR_NO_MEMORY, SC_ERR_UNSUPPORTED_COMPRESSION_TYPE. */
int sc_codec_decompress(int codec, const void *src, size_t n, size_t max_out, sc_buf_t *out);

#endif
