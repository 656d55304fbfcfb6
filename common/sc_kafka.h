/*
 * sc_kafka -- Kafka wire codec primitives: a reader over sc_rd_t, a writer
 * over sc_buf_t, request/response headers and the "is this version flexible"
 * table.
 *
 * Encoding (shared/kafka-protocol/reference.md §1.1): integers big-endian;
 * classic string = int16 length + bytes (nullable: -1 = null); classic bytes =
 * int32 length + bytes (-1 = null); classic array = int32 count (-1 = null).
 * Flexible ("compact") versions use an unsigned varint N+1 for strings, bytes
 * and arrays (0 = null) and end every struct with a tag buffer: uvarint count,
 * then per field uvarint tag, uvarint size, size bytes.
 *
 * Headers (§1.3): request header v1 = api_key int16, api_version int16,
 * correlation_id int32, client_id nullable classic string; v2 = v1 + tag
 * buffer (client_id stays classic). Response header v0 = correlation_id;
 * v1 = v0 + tag buffer. ApiVersions responses always use v0.
 *
 * Reader model: every sc_kr_* call reads from an sc_rd_t whose err field is
 * sticky. A read past the end, a negative length other than -1, a null where
 * the field is not nullable or a count that cannot fit in the bytes left sets
 * r->err (SC_ERR_CORRUPT_MESSAGE, or SC_ERR_INVALID_REQUEST for a null in a
 * non-nullable field) and returns 0 / an empty view; once set, later reads
 * return 0 too. A decoder reads a whole struct and checks r->err once.
 * Functions that return int return r->err after the read. Strings and bytes
 * are (ptr,len) views into the reader's buffer: no allocation on the decode
 * path; a view lives as long as that buffer.
 *
 * Writer model: sc_kw_t wraps a caller-owned sc_buf_t; the first failed
 * append (SC_ERR_NO_MEMORY) is sticky in w->err and later writes are no-ops.
 *
 * Pure functions, no global state: any thread may use its own rd/kw.
 */
#ifndef SC_KAFKA_H
#define SC_KAFKA_H

#include "sc_buf.h"

#include <stddef.h>
#include <stdint.h>

/* ---- API keys used by the broker (reference.md §3) ----------------------- */
enum {
    SC_KAFKA_API_PRODUCE = 0,
    SC_KAFKA_API_FETCH = 1,
    SC_KAFKA_API_LIST_OFFSETS = 2,
    SC_KAFKA_API_METADATA = 3,
    SC_KAFKA_API_OFFSET_COMMIT = 8,
    SC_KAFKA_API_OFFSET_FETCH = 9,
    SC_KAFKA_API_FIND_COORDINATOR = 10,
    SC_KAFKA_API_JOIN_GROUP = 11,
    SC_KAFKA_API_HEARTBEAT = 12,
    SC_KAFKA_API_LEAVE_GROUP = 13,
    SC_KAFKA_API_SYNC_GROUP = 14,
    SC_KAFKA_API_DESCRIBE_GROUPS = 15,
    SC_KAFKA_API_LIST_GROUPS = 16,
    SC_KAFKA_API_SASL_HANDSHAKE = 17,
    SC_KAFKA_API_API_VERSIONS = 18,
    SC_KAFKA_API_CREATE_TOPICS = 19,
    SC_KAFKA_API_DELETE_TOPICS = 20,
    SC_KAFKA_API_DELETE_RECORDS = 21,
    SC_KAFKA_API_INIT_PRODUCER_ID = 22,
    SC_KAFKA_API_OFFSET_FOR_LEADER_EPOCH = 23,
    SC_KAFKA_API_DESCRIBE_CONFIGS = 32,
    SC_KAFKA_API_ALTER_CONFIGS = 33,
    SC_KAFKA_API_SASL_AUTHENTICATE = 36,
    SC_KAFKA_API_CREATE_PARTITIONS = 37,
    SC_KAFKA_API_DELETE_GROUPS = 42,
    SC_KAFKA_API_OFFSET_DELETE = 47,
    SC_KAFKA_API_KEY_MAX = 47, /* highest key in the table below */
};

/* A string view into a request buffer. len == -1 means null (p == NULL). */
typedef struct {
    const char *p;
    int32_t len;
} sc_kstr_t;

/* A bytes view. len == -1 means null (p == NULL). */
typedef struct {
    const uint8_t *p;
    int32_t len;
} sc_kbytes_t;

/* A decoded request header; client_id is a view into the frame. */
typedef struct {
    int16_t api_key;
    int16_t api_version;
    int32_t correlation_id;
    sc_kstr_t client_id;
    int flexible; /* 1 when this was a v2 header (tag buffer consumed) */
} sc_kreq_hdr_t;

/* Sticky-error writer over a caller-owned buffer. */
typedef struct {
    sc_buf_t *b;
    int err; /* 0 or SC_ERR_NO_MEMORY, sticky */
} sc_kw_t;

/* ---- version table ---------------------------------------------------------- */

/* First flexible version of api_key per Kafka 3.7.1 (reference.md §3), or -1
 * when the API has no flexible version or the key is not in the table. */
int sc_kafka_first_flexible(int16_t api_key);

/* 1 when (api_key, api_version) uses the compact encoding + tag buffers
 * (request header v2, response header v1 except ApiVersions); else 0.
 * Unknown keys are non-flexible. */
int sc_kafka_is_flexible(int16_t api_key, int16_t api_version);

/* Response header version for this request: 1 if flexible, else 0; always 0
 * for ApiVersions. */
int sc_kafka_resp_hdr_version(int16_t api_key, int16_t api_version);

/* "Produce", "ApiVersions", ... or NULL for a key not in the table. Static. */
const char *sc_kafka_api_name(int16_t api_key);

/* ---- reader ------------------------------------------------------------------- */

int8_t sc_kr_i8(sc_rd_t *r);
int16_t sc_kr_i16(sc_rd_t *r);
int32_t sc_kr_i32(sc_rd_t *r);
int64_t sc_kr_i64(sc_rd_t *r);
uint32_t sc_kr_uvarint32(sc_rd_t *r); /* uvarint that must fit in 32 bits */
/* bool: 0 -> 0, any non-zero byte -> 1 (Kafka's reader accepts any non-zero) */
int sc_kr_bool(sc_rd_t *r);

/* Classic string (int16 length). nullable=0 rejects -1 with INVALID_REQUEST.
 * Writes *out (a null view on error) and returns r->err. */
int sc_kr_string(sc_rd_t *r, int nullable, sc_kstr_t *out);
/* Compact string (uvarint N+1, 0 = null). */
int sc_kr_compact_string(sc_rd_t *r, int nullable, sc_kstr_t *out);
/* Classic bytes (int32 length) / compact bytes (uvarint N+1). */
int sc_kr_bytes(sc_rd_t *r, int nullable, sc_kbytes_t *out);
int sc_kr_compact_bytes(sc_rd_t *r, int nullable, sc_kbytes_t *out);
/* String in either encoding, chosen by flexible. */
int sc_kr_str(sc_rd_t *r, int flexible, int nullable, sc_kstr_t *out);

/* Array count: classic int32 (-1 = null) or compact uvarint (0 = null).
 * A null array gives *count = -1 (only when nullable). min_elem_size is the
 * smallest encoding of one element (>= 1): a count that cannot fit in the
 * bytes left is rejected, so a hostile count never drives an allocation. */
int sc_kr_array_len(sc_rd_t *r, int nullable, size_t min_elem_size, int32_t *count);
int sc_kr_compact_array_len(sc_rd_t *r, int nullable, size_t min_elem_size, int32_t *count);
int sc_kr_arr(sc_rd_t *r, int flexible, int nullable, size_t min_elem_size, int32_t *count);

/* Reads a tag buffer and skips every field in it (none are known yet).
 * Returns r->err. */
int sc_kr_tags_skip(sc_rd_t *r);

/* ---- writer ------------------------------------------------------------------- */

void sc_kw_init(sc_kw_t *w, sc_buf_t *b);
void sc_kw_i8(sc_kw_t *w, int8_t v);
void sc_kw_i16(sc_kw_t *w, int16_t v);
void sc_kw_i32(sc_kw_t *w, int32_t v);
void sc_kw_i64(sc_kw_t *w, int64_t v);
void sc_kw_bool(sc_kw_t *w, int v);
void sc_kw_uvarint(sc_kw_t *w, uint64_t v);
void sc_kw_raw(sc_kw_t *w, const void *p, size_t n);
/* Classic string; p == NULL writes null (-1). len must be <= INT16_MAX. */
void sc_kw_string(sc_kw_t *w, const char *p, size_t len);
void sc_kw_compact_string(sc_kw_t *w, const char *p, size_t len);
void sc_kw_str(sc_kw_t *w, int flexible, const char *p, size_t len);
/* NUL-terminated convenience (s == NULL writes null). */
void sc_kw_cstr(sc_kw_t *w, int flexible, const char *s);
void sc_kw_bytes(sc_kw_t *w, const void *p, size_t len); /* p NULL: null */
void sc_kw_compact_bytes(sc_kw_t *w, const void *p, size_t len);
/* Array count; count -1 writes null. */
void sc_kw_array_len(sc_kw_t *w, int32_t count);
void sc_kw_compact_array_len(sc_kw_t *w, int32_t count);
void sc_kw_arr(sc_kw_t *w, int flexible, int32_t count);
/* Empty tag buffer (one 0x00 byte). */
void sc_kw_tags_empty(sc_kw_t *w);

/* Reserves 4 bytes and returns their offset in the buffer, to be filled by
 * sc_kw_patch_i32 once the value (a frame size, an array count) is known. */
size_t sc_kw_reserve_i32(sc_kw_t *w);
void sc_kw_patch_i32(sc_kw_t *w, size_t off, int32_t v);

/* ---- headers -------------------------------------------------------------------- */

/* Reads api_key, api_version and correlation_id at their fixed offsets 0, 2,
 * 4 of a frame body without interpreting the rest (enough to answer or log a
 * request whose version cannot be parsed). 0, or SC_ERR_CORRUPT_MESSAGE when
 * n < 8. */
int sc_kafka_req_peek(const void *body, size_t n, int16_t *api_key, int16_t *api_version,
                      int32_t *correlation_id);

/* Decodes a request header v1/v2 from r (positioned at the frame body); the
 * header version follows from sc_kafka_is_flexible(api_key, api_version).
 * On success r is left at the request body. Returns 0 or the reader error;
 * *out is written only on success. */
int sc_kafka_req_hdr_decode(sc_rd_t *r, sc_kreq_hdr_t *out);

/* Encodes request header v1 (flexible=0) or v2 (flexible=1). For clients and
 * tests. */
void sc_kafka_req_hdr_encode(sc_kw_t *w, const sc_kreq_hdr_t *h);

/* Encodes response header v0 (hdr_version 0) or v1 (1). */
void sc_kafka_resp_hdr_encode(sc_kw_t *w, int32_t correlation_id, int hdr_version);

#endif
