/*
 * cl_batch -- RecordBatch v2 on the client side: compress a finished batch
 * and decode a fetched one (any codec libstrata supports).
 *
 * Layout (shared/kafka-protocol/reference.md §5): a 61-byte header, then the
 * records -- raw, or for a compressed batch (attributes bits 0-2 = codec) one
 * compressed blob of all of them. The CRC-32C at offset 17 covers bytes
 * 21..end, i.e. the compressed bytes, so compressing means: compress bytes
 * 61..end of the uncompressed batch, set the codec bits, fix batchLength,
 * recompute the CRC.
 *
 * Pure functions over caller buffers; any thread.
 */
#ifndef CL_BATCH_H
#define CL_BATCH_H

#include "sc_buf.h"
#include "sc_recbatch.h"
#include "strata/client.h"

#include <stddef.h>
#include <stdint.h>

/* 1 when libstrata can write and read this codec (CL_CODEC_*). */
int cl_codec_supported(int codec);

/* Turns the finished uncompressed batch in b into the batch to send, in out
 * (reset first). codec CL_CODEC_NONE copies; level -1 = the codec's default.
 * Returns 0, SC_ERR_NO_MEMORY, SC_ERR_UNSUPPORTED_COMPRESSION_TYPE. */
int cl_batch_encode(const sc_recbatch_t *b, int codec, int level, sc_buf_t *out);

/* One decoded record; pointers into the batch or into the decompressed
 * buffer, valid during the callback. */
typedef struct {
    int64_t offset;
    int64_t timestamp;
    const uint8_t *key; /* NULL = null */
    int32_t key_len;
    const uint8_t *value; /* NULL = null */
    int32_t value_len;
    const strata_header_t *headers;
    size_t header_count;
} cl_record_t;

typedef struct {
    int64_t base_offset;
    int32_t last_offset_delta;
    int16_t attributes;
    int64_t producer_id;
    int16_t producer_epoch;
    int32_t base_sequence;
    int32_t count;
} cl_batch_info_t;

/* Returns non-zero to stop (that value is returned by cl_batch_decode). */
typedef int (*cl_record_fn)(void *arg, const cl_batch_info_t *bi, const cl_record_t *rec);

/* Decodes the one whole batch at p[0..n) (n = batchLength + 12): magic 2,
 * CRC when check_crc, decompression, every record. Control batches call fn
 * for no record. Returns 0, fn's non-zero value, SC_ERR_CORRUPT_MESSAGE for a
 * malformed batch or CRC mismatch, SC_ERR_UNSUPPORTED_COMPRESSION_TYPE,
 * SC_ERR_NO_MEMORY. Decompressed data is capped at 256 MiB per batch
 * (SC_ERR_CORRUPT_MESSAGE beyond: a bomb, not a batch). */
int cl_batch_decode(const uint8_t *p, size_t n, int check_crc, cl_record_fn fn, void *arg,
                    cl_batch_info_t *info);

#endif
