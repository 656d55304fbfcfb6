/* sc_kafka -- Kafka wire codec primitives. Format notes are in sc_kafka.h. */
#include "sc_kafka.h"

#include "sc_endian.h"
#include "sc_err.h"

#include <string.h>

/* ---- version table ---------------------------------------------------------- */

/* Per key: first flexible version in Kafka 3.7.1 (-1: never), and the name. */
static const struct {
    int8_t first_flexible;
    const char *name;
} apis[SC_KAFKA_API_KEY_MAX + 1] = {
    [SC_KAFKA_API_PRODUCE] = {9, "Produce"},
    [SC_KAFKA_API_FETCH] = {12, "Fetch"},
    [SC_KAFKA_API_LIST_OFFSETS] = {6, "ListOffsets"},
    [SC_KAFKA_API_METADATA] = {9, "Metadata"},
    [SC_KAFKA_API_OFFSET_COMMIT] = {8, "OffsetCommit"},
    [SC_KAFKA_API_OFFSET_FETCH] = {6, "OffsetFetch"},
    [SC_KAFKA_API_FIND_COORDINATOR] = {3, "FindCoordinator"},
    [SC_KAFKA_API_JOIN_GROUP] = {6, "JoinGroup"},
    [SC_KAFKA_API_HEARTBEAT] = {4, "Heartbeat"},
    [SC_KAFKA_API_LEAVE_GROUP] = {4, "LeaveGroup"},
    [SC_KAFKA_API_SYNC_GROUP] = {4, "SyncGroup"},
    [SC_KAFKA_API_DESCRIBE_GROUPS] = {5, "DescribeGroups"},
    [SC_KAFKA_API_LIST_GROUPS] = {3, "ListGroups"},
    [SC_KAFKA_API_SASL_HANDSHAKE] = {-1, "SaslHandshake"},
    [SC_KAFKA_API_API_VERSIONS] = {3, "ApiVersions"},
    [SC_KAFKA_API_CREATE_TOPICS] = {5, "CreateTopics"},
    [SC_KAFKA_API_DELETE_TOPICS] = {4, "DeleteTopics"},
    [SC_KAFKA_API_DELETE_RECORDS] = {2, "DeleteRecords"},
    [SC_KAFKA_API_INIT_PRODUCER_ID] = {2, "InitProducerId"},
    [SC_KAFKA_API_OFFSET_FOR_LEADER_EPOCH] = {4, "OffsetForLeaderEpoch"},
    [SC_KAFKA_API_DESCRIBE_CONFIGS] = {4, "DescribeConfigs"},
    [SC_KAFKA_API_ALTER_CONFIGS] = {2, "AlterConfigs"},
    [SC_KAFKA_API_SASL_AUTHENTICATE] = {2, "SaslAuthenticate"},
    [SC_KAFKA_API_CREATE_PARTITIONS] = {2, "CreatePartitions"},
    [SC_KAFKA_API_DELETE_GROUPS] = {2, "DeleteGroups"},
    [SC_KAFKA_API_OFFSET_DELETE] = {-1, "OffsetDelete"},
};

static int known(int16_t api_key)
{
    return api_key >= 0 && api_key <= SC_KAFKA_API_KEY_MAX && apis[api_key].name != NULL;
}

int sc_kafka_first_flexible(int16_t api_key)
{
    return known(api_key) ? apis[api_key].first_flexible : -1;
}

int sc_kafka_is_flexible(int16_t api_key, int16_t api_version)
{
    int first = sc_kafka_first_flexible(api_key);
    return first >= 0 && api_version >= first;
}

int sc_kafka_resp_hdr_version(int16_t api_key, int16_t api_version)
{
    if (api_key == SC_KAFKA_API_API_VERSIONS)
        return 0;
    return sc_kafka_is_flexible(api_key, api_version);
}

const char *sc_kafka_api_name(int16_t api_key) { return known(api_key) ? apis[api_key].name : NULL; }

/* ---- reader ------------------------------------------------------------------- */

static void fail(sc_rd_t *r, int err)
{
    if (!r->err)
        r->err = err;
}

/* sc_rd_* turn any earlier error into CORRUPT_MESSAGE; the guards below keep
 * the first error (e.g. INVALID_REQUEST) as it was. */
int8_t sc_kr_i8(sc_rd_t *r) { return r->err ? 0 : (int8_t)sc_rd_u8(r); }
int16_t sc_kr_i16(sc_rd_t *r) { return r->err ? 0 : (int16_t)sc_rd_be16(r); }
int32_t sc_kr_i32(sc_rd_t *r) { return r->err ? 0 : (int32_t)sc_rd_be32(r); }
int64_t sc_kr_i64(sc_rd_t *r) { return r->err ? 0 : (int64_t)sc_rd_be64(r); }
int sc_kr_bool(sc_rd_t *r) { return r->err ? 0 : sc_rd_u8(r) != 0; }

uint32_t sc_kr_uvarint32(sc_rd_t *r)
{
    if (r->err)
        return 0;
    uint64_t v = sc_rd_uvarint(r);
    if (r->err)
        return 0;
    if (v > UINT32_MAX) {
        fail(r, SC_ERR_CORRUPT_MESSAGE);
        return 0;
    }
    return (uint32_t)v;
}

/* Common tail of the string readers: len is the decoded length, -1 = null. */
static int str_finish(sc_rd_t *r, int64_t len, int nullable, int32_t max, sc_kstr_t *out)
{
    out->p = NULL;
    out->len = -1;
    if (r->err)
        return r->err;
    if (len == -1) {
        if (!nullable)
            fail(r, SC_ERR_INVALID_REQUEST);
        return r->err;
    }
    if (len < 0 || len > max) {
        fail(r, SC_ERR_CORRUPT_MESSAGE);
        return r->err;
    }
    const uint8_t *p = sc_rd_bytes(r, (size_t)len);
    if (!p)
        return r->err;
    out->p = (const char *)p;
    out->len = (int32_t)len;
    return 0;
}

int sc_kr_string(sc_rd_t *r, int nullable, sc_kstr_t *out)
{
    int64_t len = sc_kr_i16(r);
    return str_finish(r, len, nullable, INT16_MAX, out);
}

int sc_kr_compact_string(sc_rd_t *r, int nullable, sc_kstr_t *out)
{
    int64_t len = (int64_t)sc_kr_uvarint32(r) - 1;
    return str_finish(r, len, nullable, INT16_MAX, out);
}

int sc_kr_str(sc_rd_t *r, int flexible, int nullable, sc_kstr_t *out)
{
    return flexible ? sc_kr_compact_string(r, nullable, out) : sc_kr_string(r, nullable, out);
}

int sc_kr_bytes(sc_rd_t *r, int nullable, sc_kbytes_t *out)
{
    sc_kstr_t s;
    int64_t len = sc_kr_i32(r);
    int rc = str_finish(r, len, nullable, INT32_MAX, &s);
    out->p = (const uint8_t *)s.p;
    out->len = s.len;
    return rc;
}

int sc_kr_compact_bytes(sc_rd_t *r, int nullable, sc_kbytes_t *out)
{
    sc_kstr_t s;
    int64_t len = (int64_t)sc_kr_uvarint32(r) - 1;
    int rc = str_finish(r, len, nullable, INT32_MAX, &s);
    out->p = (const uint8_t *)s.p;
    out->len = s.len;
    return rc;
}

static int count_finish(sc_rd_t *r, int64_t n, int nullable, size_t min_elem, int32_t *count)
{
    *count = 0;
    if (r->err)
        return r->err;
    if (n == -1) {
        if (!nullable)
            fail(r, SC_ERR_INVALID_REQUEST);
        else
            *count = -1;
        return r->err;
    }
    if (min_elem == 0)
        min_elem = 1;
    if (n < 0 || n > INT32_MAX || (uint64_t)n > sc_rd_left(r) / min_elem) {
        fail(r, SC_ERR_CORRUPT_MESSAGE);
        return r->err;
    }
    *count = (int32_t)n;
    return 0;
}

int sc_kr_array_len(sc_rd_t *r, int nullable, size_t min_elem_size, int32_t *count)
{
    int64_t n = sc_kr_i32(r);
    return count_finish(r, n, nullable, min_elem_size, count);
}

int sc_kr_compact_array_len(sc_rd_t *r, int nullable, size_t min_elem_size, int32_t *count)
{
    int64_t n = (int64_t)sc_kr_uvarint32(r) - 1;
    return count_finish(r, n, nullable, min_elem_size, count);
}

int sc_kr_arr(sc_rd_t *r, int flexible, int nullable, size_t min_elem_size, int32_t *count)
{
    return flexible ? sc_kr_compact_array_len(r, nullable, min_elem_size, count)
                    : sc_kr_array_len(r, nullable, min_elem_size, count);
}

int sc_kr_tags_skip(sc_rd_t *r)
{
    /* Each field takes at least two bytes (tag, size), which bounds the loop
     * by the bytes left even for a hostile count. */
    uint32_t n = sc_kr_uvarint32(r);
    if (!r->err && n > sc_rd_left(r) / 2)
        fail(r, SC_ERR_CORRUPT_MESSAGE);
    for (uint32_t i = 0; i < n && !r->err; i++) {
        (void)sc_kr_uvarint32(r); /* tag: none are known, all are skipped */
        uint32_t size = sc_kr_uvarint32(r);
        if (!r->err)
            (void)sc_rd_bytes(r, size);
    }
    return r->err;
}

/* ---- writer ------------------------------------------------------------------- */

void sc_kw_init(sc_kw_t *w, sc_buf_t *b)
{
    w->b = b;
    w->err = 0;
}

static void wr(sc_kw_t *w, int rc)
{
    if (rc && !w->err)
        w->err = rc;
}

void sc_kw_raw(sc_kw_t *w, const void *p, size_t n)
{
    if (!w->err)
        wr(w, sc_buf_append(w->b, p, n));
}
void sc_kw_i8(sc_kw_t *w, int8_t v)
{
    if (!w->err)
        wr(w, sc_buf_append_u8(w->b, (uint8_t)v));
}
void sc_kw_i16(sc_kw_t *w, int16_t v)
{
    if (!w->err)
        wr(w, sc_buf_append_be16(w->b, (uint16_t)v));
}
void sc_kw_i32(sc_kw_t *w, int32_t v)
{
    if (!w->err)
        wr(w, sc_buf_append_be32(w->b, (uint32_t)v));
}
void sc_kw_i64(sc_kw_t *w, int64_t v)
{
    if (!w->err)
        wr(w, sc_buf_append_be64(w->b, (uint64_t)v));
}
void sc_kw_bool(sc_kw_t *w, int v) { sc_kw_i8(w, v ? 1 : 0); }
void sc_kw_uvarint(sc_kw_t *w, uint64_t v)
{
    if (!w->err)
        wr(w, sc_buf_append_uvarint(w->b, v));
}

void sc_kw_string(sc_kw_t *w, const char *p, size_t len)
{
    if (!p) {
        sc_kw_i16(w, -1);
        return;
    }
    if (len > INT16_MAX)
        len = INT16_MAX; /* callers never pass longer; never emit a bad length */
    sc_kw_i16(w, (int16_t)len);
    sc_kw_raw(w, p, len);
}

void sc_kw_compact_string(sc_kw_t *w, const char *p, size_t len)
{
    if (!p) {
        sc_kw_uvarint(w, 0);
        return;
    }
    if (len > INT16_MAX)
        len = INT16_MAX;
    sc_kw_uvarint(w, (uint64_t)len + 1);
    sc_kw_raw(w, p, len);
}

void sc_kw_str(sc_kw_t *w, int flexible, const char *p, size_t len)
{
    if (flexible)
        sc_kw_compact_string(w, p, len);
    else
        sc_kw_string(w, p, len);
}

void sc_kw_cstr(sc_kw_t *w, int flexible, const char *s)
{
    sc_kw_str(w, flexible, s, s ? strlen(s) : 0);
}

void sc_kw_bytes(sc_kw_t *w, const void *p, size_t len)
{
    if (!p) {
        sc_kw_i32(w, -1);
        return;
    }
    sc_kw_i32(w, (int32_t)len);
    sc_kw_raw(w, p, len);
}

void sc_kw_compact_bytes(sc_kw_t *w, const void *p, size_t len)
{
    if (!p) {
        sc_kw_uvarint(w, 0);
        return;
    }
    sc_kw_uvarint(w, (uint64_t)len + 1);
    sc_kw_raw(w, p, len);
}

void sc_kw_array_len(sc_kw_t *w, int32_t count) { sc_kw_i32(w, count < 0 ? -1 : count); }

void sc_kw_compact_array_len(sc_kw_t *w, int32_t count)
{
    sc_kw_uvarint(w, count < 0 ? 0 : (uint64_t)count + 1);
}

void sc_kw_arr(sc_kw_t *w, int flexible, int32_t count)
{
    if (flexible)
        sc_kw_compact_array_len(w, count);
    else
        sc_kw_array_len(w, count);
}

void sc_kw_tags_empty(sc_kw_t *w) { sc_kw_uvarint(w, 0); }

size_t sc_kw_reserve_i32(sc_kw_t *w)
{
    size_t off = w->b->len;
    sc_kw_i32(w, 0);
    return off;
}

void sc_kw_patch_i32(sc_kw_t *w, size_t off, int32_t v)
{
    if (w->err || off + 4 > w->b->len)
        return;
    sc_store_be32(w->b->data + off, (uint32_t)v);
}

/* ---- headers -------------------------------------------------------------------- */

int sc_kafka_req_peek(const void *body, size_t n, int16_t *api_key, int16_t *api_version,
                      int32_t *correlation_id)
{
    const uint8_t *p = body;
    if (n < 8)
        return SC_ERR_CORRUPT_MESSAGE;
    *api_key = (int16_t)sc_load_be16(p);
    *api_version = (int16_t)sc_load_be16(p + 2);
    *correlation_id = (int32_t)sc_load_be32(p + 4);
    return 0;
}

int sc_kafka_req_hdr_decode(sc_rd_t *r, sc_kreq_hdr_t *out)
{
    sc_kreq_hdr_t h;
    h.api_key = sc_kr_i16(r);
    h.api_version = sc_kr_i16(r);
    h.correlation_id = sc_kr_i32(r);
    /* client_id is a classic nullable string even in header v2. */
    sc_kr_string(r, 1, &h.client_id);
    h.flexible = !r->err && sc_kafka_is_flexible(h.api_key, h.api_version);
    if (h.flexible)
        sc_kr_tags_skip(r);
    if (r->err)
        return r->err;
    *out = h;
    return 0;
}

void sc_kafka_req_hdr_encode(sc_kw_t *w, const sc_kreq_hdr_t *h)
{
    sc_kw_i16(w, h->api_key);
    sc_kw_i16(w, h->api_version);
    sc_kw_i32(w, h->correlation_id);
    sc_kw_string(w, h->client_id.len < 0 ? NULL : h->client_id.p,
                 h->client_id.len < 0 ? 0 : (size_t)h->client_id.len);
    if (h->flexible)
        sc_kw_tags_empty(w);
}

void sc_kafka_resp_hdr_encode(sc_kw_t *w, int32_t correlation_id, int hdr_version)
{
    sc_kw_i32(w, correlation_id);
    if (hdr_version >= 1)
        sc_kw_tags_empty(w);
}
