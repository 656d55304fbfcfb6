/*
 * sc_recbatch -- builds an uncompressed Kafka RecordBatch v2 (see
 * storage/st_batch.h for the layout) the way a producer does: baseOffset 0,
 * CRC-32C over attributes..end. Used by the client, the bench and tests.
 *
 * Usage: sc_recbatch_begin, sc_recbatch_add per record, sc_recbatch_finish;
 * the batch is then b->buf.data[0 .. b->buf.len). Caller's storage; not
 * thread-safe.
 */
#ifndef SC_RECBATCH_H
#define SC_RECBATCH_H

#include "sc_buf.h"

#include <stddef.h>
#include <stdint.h>

typedef struct {
    sc_buf_t buf;
    int64_t base_timestamp;
    int64_t max_timestamp;
    int32_t count;
} sc_recbatch_t;

typedef struct {
    const char *key; /* NULL = null key */
    size_t key_len;
    const char *value; /* NULL = null value */
    size_t value_len;
} sc_rec_header_t;

void sc_recbatch_init(sc_recbatch_t *b);
void sc_recbatch_fini(sc_recbatch_t *b);

/* Starts a batch. producer_id -1 for a plain producer. Returns 0 or
 * SC_ERR_NO_MEMORY. */
int sc_recbatch_begin(sc_recbatch_t *b, int64_t base_timestamp, int64_t producer_id,
                      int16_t producer_epoch, int32_t base_sequence);

/* Adds one record. key/value NULL = null. Returns 0 or SC_ERR_NO_MEMORY. */
int sc_recbatch_add(sc_recbatch_t *b, int64_t timestamp, const void *key, int32_t key_len,
                    const void *value, int32_t value_len, const sc_rec_header_t *headers,
                    int nheaders);

/* Writes the header fields and the CRC. Returns 0. */
int sc_recbatch_finish(sc_recbatch_t *b);

#endif
