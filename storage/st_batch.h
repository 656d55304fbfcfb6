/*
 * st_batch -- Kafka RecordBatch v2 (magic 2) as the log stores it.
 *
 * Layout (big-endian, offsets from the batch start):
 *    0  int64  baseOffset            set by the broker on append
 *    8  int32  batchLength           bytes after this field (batch = batchLength + 12)
 *   12  int32  partitionLeaderEpoch  set by the broker on append
 *   16  int8   magic                 2
 *   17  uint32 crc                   CRC-32C of bytes 21 .. end
 *   21  int16  attributes            bits 0-2 codec, 3 timestamp type, 4 txn, 5 control
 *   23  int32  lastOffsetDelta
 *   27  int64  baseTimestamp
 *   35  int64  maxTimestamp
 *   43  int64  producerId
 *   51  int16  producerEpoch
 *   53  int32  baseSequence
 *   57  int32  recordsCount
 *   61  ...    records (raw, or one compressed blob)
 *
 * baseOffset, batchLength, partitionLeaderEpoch and magic are outside the CRC,
 * so the broker rewrites baseOffset and the epoch in place without touching the
 * checksum, and a fetch can send the stored bytes as they lie.
 *
 * Pure functions over borrowed bytes; thread-safe.
 */
#ifndef ST_BATCH_H
#define ST_BATCH_H

#include <stddef.h>
#include <stdint.h>

#define ST_BATCH_HEADER_SIZE 61
#define ST_BATCH_LOG_OVERHEAD 12 /* baseOffset + batchLength */
#define ST_BATCH_MAGIC 2

#define ST_BATCH_OFF_BASE_OFFSET 0
#define ST_BATCH_OFF_LENGTH 8
#define ST_BATCH_OFF_LEADER_EPOCH 12
#define ST_BATCH_OFF_MAGIC 16
#define ST_BATCH_OFF_CRC 17
#define ST_BATCH_OFF_ATTRIBUTES 21
#define ST_BATCH_OFF_LAST_OFFSET_DELTA 23
#define ST_BATCH_OFF_BASE_TIMESTAMP 27
#define ST_BATCH_OFF_MAX_TIMESTAMP 35
#define ST_BATCH_OFF_PRODUCER_ID 43
#define ST_BATCH_OFF_PRODUCER_EPOCH 51
#define ST_BATCH_OFF_BASE_SEQUENCE 53
#define ST_BATCH_OFF_RECORDS_COUNT 57

#define ST_BATCH_ATTR_CODEC_MASK 0x07
#define ST_BATCH_ATTR_LOG_APPEND_TIME 0x08
#define ST_BATCH_ATTR_TRANSACTIONAL 0x10
#define ST_BATCH_ATTR_CONTROL 0x20

/* A decoded header. Plain value type. */
typedef struct {
    int64_t base_offset;
    int32_t length; /* batchLength field; total size = length + 12 */
    int32_t leader_epoch;
    int8_t magic;
    uint32_t crc;
    int16_t attributes;
    int32_t last_offset_delta;
    int64_t base_timestamp;
    int64_t max_timestamp;
    int64_t producer_id;
    int16_t producer_epoch;
    int32_t base_sequence;
    int32_t records_count;
} st_batch_hdr_t;

/* Decodes the header at p (n bytes available, at least ST_BATCH_HEADER_SIZE).
 * Checks nothing but room. Returns 0 or SC_ERR_CORRUPT_MESSAGE. */
int st_batch_hdr_decode(const void *p, size_t n, st_batch_hdr_t *out);

/* Total bytes of the batch at p from its length field, or -1 when fewer than
 * 12 bytes are given or the length is negative / below the header size. */
int64_t st_batch_size(const void *p, size_t n);

/*
 * Validates one batch at the start of p[0..n): enough bytes for the header,
 * batchLength in range (header <= size <= n), magic 2, CRC-32C, recordsCount
 * >= 0 and, unless the batch is a compacted one (records_count <=
 * lastOffsetDelta + 1 allowed when allow_gaps), recordsCount ==
 * lastOffsetDelta + 1. On success writes the header to *out (may be NULL) and
 * returns 0; else SC_ERR_CORRUPT_MESSAGE (framing, CRC, counts) or
 * SC_ERR_INVALID_RECORD (magic != 2).
 */
int st_batch_validate(const void *p, size_t n, int allow_gaps, st_batch_hdr_t *out);

/* Rewrites baseOffset and partitionLeaderEpoch in place (outside the CRC). */
void st_batch_set_offset(void *p, int64_t base_offset, int32_t leader_epoch);

/* Last offset of a decoded batch. */
static inline int64_t st_batch_last_offset(const st_batch_hdr_t *h)
{
    return h->base_offset + h->last_offset_delta;
}

/*
 * Walks a record-batch sequence (e.g. a Produce request's records field):
 * validates every batch and returns how many there are in *nbatches and the
 * sum of (lastOffsetDelta + 1) in *nrecords. Trailing bytes that do not form
 * a whole batch are an error. Returns 0, SC_ERR_CORRUPT_MESSAGE or
 * SC_ERR_INVALID_RECORD.
 */
int st_batch_validate_all(const void *p, size_t n, int *nbatches, int64_t *noffsets);

/*
 * Finds, in an uncompressed batch, the offset of the first record whose
 * timestamp is >= ts. Returns 0 and *offset, SC_ERR_NOT_FOUND when no record
 * qualifies, SC_ERR_CORRUPT_MESSAGE on malformed records, or
 * SC_ERR_UNSUPPORTED_COMPRESSION_TYPE for a compressed batch (callers then use
 * the batch's base offset).
 */
int st_batch_find_timestamp(const void *p, size_t n, int64_t ts, int64_t *offset);

#endif
