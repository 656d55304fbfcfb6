/*
 * ph_telemetry -- encodes a strata_point_t as proto/telemetry.proto's Point
 * (protobuf-c) or as one JSON object:
 *   {"device_id":"d1","point":"temp","timestamp_ms":1700000000000,
 *    "value":21.5,"quality":"GOOD","unit":"degC","status":""}
 * value is a JSON bool, number (integers exact), string, or for bytes a
 * base64 string; null when the point has no value. Non-finite doubles are
 * written as null (JSON has no NaN).
 */
#include "ph_host.h"
#include "strata/plugin.h"
#include "telemetry.pb-c.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *p;
    size_t len, cap;
    int oom;
} jb_t;

static void jb_put(jb_t *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *q = realloc(b->p, cap);
        if (!q) {
            b->oom = 1;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

static void jb_fmt(jb_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void jb_fmt(jb_t *b, const char *fmt, ...)
{
    char tmp[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0)
        jb_put(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

static void jb_str(jb_t *b, const char *s)
{
    jb_put(b, "\"", 1);
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            jb_put(b, e, 2);
        } else if (c < 0x20) {
            jb_fmt(b, "\\u%04x", c);
        } else {
            jb_put(b, (const char *)&c, 1);
        }
    }
    jb_put(b, "\"", 1);
}

static void jb_b64(jb_t *b, const uint8_t *d, size_t n)
{
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    jb_put(b, "\"", 1);
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)d[i] << 16 | (i + 1 < n ? (uint32_t)d[i + 1] << 8 : 0) |
                     (i + 2 < n ? d[i + 2] : 0);
        char o[4] = {t[v >> 18 & 63], t[v >> 12 & 63], i + 1 < n ? t[v >> 6 & 63] : '=',
                     i + 2 < n ? t[v & 63] : '='};
        jb_put(b, o, 4);
    }
    jb_put(b, "\"", 1);
}

static const char *qname(uint32_t q)
{
    return q == STRATA_QUALITY_GOOD ? "GOOD" : q == STRATA_QUALITY_UNCERTAIN ? "UNCERTAIN" : "BAD";
}

uint8_t *ph_point_encode(const struct strata_point *pt, int64_t ts_ms, int protobuf, size_t *len)
{
    if (protobuf) {
        Strata__Telemetry__Point m = STRATA__TELEMETRY__POINT__INIT;
        m.device_id = (char *)pt->device_id;
        m.point = (char *)pt->point;
        m.timestamp_ms = ts_ms;
        switch (pt->type) {
        case STRATA_VALUE_BOOL:
            m.value_case = STRATA__TELEMETRY__POINT__VALUE_BOOL_VALUE;
            m.bool_value = pt->v_bool != 0;
            break;
        case STRATA_VALUE_INT:
            m.value_case = STRATA__TELEMETRY__POINT__VALUE_INT_VALUE;
            m.int_value = pt->v_int;
            break;
        case STRATA_VALUE_DOUBLE:
            m.value_case = STRATA__TELEMETRY__POINT__VALUE_DOUBLE_VALUE;
            m.double_value = pt->v_double;
            break;
        case STRATA_VALUE_STRING:
            m.value_case = STRATA__TELEMETRY__POINT__VALUE_STRING_VALUE;
            m.string_value = (char *)(pt->v_str ? pt->v_str : "");
            break;
        case STRATA_VALUE_BYTES:
            m.value_case = STRATA__TELEMETRY__POINT__VALUE_BYTES_VALUE;
            m.bytes_value.data = (uint8_t *)pt->v_bytes;
            m.bytes_value.len = pt->v_bytes ? pt->v_bytes_len : 0;
            break;
        default:
            break;
        }
        m.quality = pt->quality == STRATA_QUALITY_GOOD        ? STRATA__TELEMETRY__QUALITY__GOOD
                    : pt->quality == STRATA_QUALITY_UNCERTAIN ? STRATA__TELEMETRY__QUALITY__UNCERTAIN
                                                              : STRATA__TELEMETRY__QUALITY__BAD;
        m.unit = (char *)(pt->unit ? pt->unit : "");
        m.status = (char *)(pt->status ? pt->status : "");
        size_t n = strata__telemetry__point__get_packed_size(&m);
        uint8_t *out = malloc(n ? n : 1);
        if (!out)
            return NULL;
        *len = strata__telemetry__point__pack(&m, out);
        return out;
    }
    jb_t b = {0};
    jb_put(&b, "{\"device_id\":", 13);
    jb_str(&b, pt->device_id);
    jb_put(&b, ",\"point\":", 9);
    jb_str(&b, pt->point);
    jb_fmt(&b, ",\"timestamp_ms\":%lld,\"value\":", (long long)ts_ms);
    switch (pt->type) {
    case STRATA_VALUE_BOOL:
        jb_put(&b, pt->v_bool ? "true" : "false", pt->v_bool ? 4 : 5);
        break;
    case STRATA_VALUE_INT:
        jb_fmt(&b, "%lld", (long long)pt->v_int);
        break;
    case STRATA_VALUE_DOUBLE:
        if (isfinite(pt->v_double))
            jb_fmt(&b, "%.17g", pt->v_double);
        else
            jb_put(&b, "null", 4);
        break;
    case STRATA_VALUE_STRING:
        jb_str(&b, pt->v_str ? pt->v_str : "");
        break;
    case STRATA_VALUE_BYTES:
        jb_b64(&b, pt->v_bytes, pt->v_bytes ? pt->v_bytes_len : 0);
        break;
    default:
        jb_put(&b, "null", 4);
    }
    jb_put(&b, ",\"quality\":", 11);
    jb_str(&b, qname(pt->quality));
    jb_put(&b, ",\"unit\":", 8);
    jb_str(&b, pt->unit ? pt->unit : "");
    jb_put(&b, ",\"status\":", 10);
    jb_str(&b, pt->status ? pt->status : "");
    jb_put(&b, "}", 1);
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    *len = b.len;
    return (uint8_t *)b.p;
}
