/*
 * bk_api -- request dispatch, the apis[] table and the handlers for
 * ApiVersions (18) v0-3 and Metadata (3) v0-6; the admin handlers live in
 * bk_admin.c, Produce in bk_produce.c, Fetch / ListOffsets / DeleteRecords /
 * OffsetForLeaderEpoch in bk_fetch.c. Runs on the connection's shard thread.
 *
 * Dispatch rules (reference.md §1.4):
 *   - api_key / api_version / correlation_id are read at their fixed offsets
 *     first, so even an unparseable request can be logged;
 *   - ApiVersions above our max: no parsing at all; a v0-format reply with
 *     UNSUPPORTED_VERSION and our ApiVersions range; the connection stays up;
 *   - any other key or version not in the table: log and close;
 *   - a request that does not decode: log and close (Kafka does the same).
 * The ApiVersions reply is generated from the table, so only what is
 * implemented is ever advertised.
 */
#include "bk_int.h"

#include "sc_err.h"
#include "sc_log.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <string.h>

#define SUB "kafka"

static int h_api_versions(bk_req_t *req, sc_kw_t *w);
static int h_metadata(bk_req_t *req, sc_kw_t *w);

/* Ranges: reference.md §3 (non-flexible versions only, except ApiVersions 3). */
static const bk_api_t apis[] = {
    /* From v0 although every client here sends v7: librdkafka >= 1.9 turns
     * gzip, snappy and lz4 off unless the Produce range overlaps [0, 0]
     * (rd_kafka_msgset_writer_select_MsgVersion), and sends those batches
     * uncompressed. v0-v2 requests are handled (MessageSet v0/v1 records are
     * refused with UNSUPPORTED_FOR_MESSAGE_FORMAT). */
    {SC_KAFKA_API_PRODUCE, 0, 7, bk__h_produce},
    {SC_KAFKA_API_FETCH, 4, 11, bk__h_fetch},
    {SC_KAFKA_API_LIST_OFFSETS, 1, 3, bk__h_list_offsets},
    {SC_KAFKA_API_METADATA, 0, 6, h_metadata},
    {SC_KAFKA_API_OFFSET_COMMIT, 2, 7, bk__h_offset_commit},
    {SC_KAFKA_API_OFFSET_FETCH, 1, 5, bk__h_offset_fetch},
    {SC_KAFKA_API_FIND_COORDINATOR, 0, 2, bk__h_find_coordinator},
    {SC_KAFKA_API_JOIN_GROUP, 0, 5, bk__h_join_group},
    {SC_KAFKA_API_HEARTBEAT, 0, 3, bk__h_heartbeat},
    {SC_KAFKA_API_LEAVE_GROUP, 0, 3, bk__h_leave_group},
    {SC_KAFKA_API_SYNC_GROUP, 0, 3, bk__h_sync_group},
    {SC_KAFKA_API_DESCRIBE_GROUPS, 0, 4, bk__h_describe_groups},
    {SC_KAFKA_API_LIST_GROUPS, 0, 2, bk__h_list_groups},
    {SC_KAFKA_API_API_VERSIONS, 0, 3, h_api_versions},
    {SC_KAFKA_API_CREATE_TOPICS, 0, 4, bk__h_create_topics},
    {SC_KAFKA_API_DELETE_TOPICS, 0, 3, bk__h_delete_topics},
    {SC_KAFKA_API_DELETE_RECORDS, 0, 1, bk__h_delete_records},
    {SC_KAFKA_API_INIT_PRODUCER_ID, 0, 1, bk__h_init_producer_id},
    {SC_KAFKA_API_OFFSET_FOR_LEADER_EPOCH, 2, 3, bk__h_offset_for_leader_epoch},
    {SC_KAFKA_API_DESCRIBE_CONFIGS, 0, 2, bk__h_describe_configs},
    {SC_KAFKA_API_ALTER_CONFIGS, 0, 1, bk__h_alter_configs},
    {SC_KAFKA_API_CREATE_PARTITIONS, 0, 1, bk__h_create_partitions},
    {SC_KAFKA_API_DELETE_GROUPS, 0, 1, bk__h_delete_groups},
    {SC_KAFKA_API_OFFSET_DELETE, 0, 0, bk__h_offset_delete},
};

const bk_api_t *bk__api_table(size_t *n)
{
    *n = sizeof apis / sizeof apis[0];
    return apis;
}

const bk_api_t *bk__api_find(int16_t api_key)
{
    for (size_t i = 0; i < sizeof apis / sizeof apis[0]; i++)
        if (apis[i].api_key == api_key)
            return &apis[i];
    return NULL;
}

/* ---- ApiVersions ---------------------------------------------------------- */

static void write_api_keys(sc_kw_t *w, int flexible)
{
    size_t n;
    const bk_api_t *t = bk__api_table(&n);
    sc_kw_arr(w, flexible, (int32_t)n);
    for (size_t i = 0; i < n; i++) {
        sc_kw_i16(w, t[i].api_key);
        sc_kw_i16(w, t[i].min_version);
        sc_kw_i16(w, t[i].max_version);
        if (flexible)
            sc_kw_tags_empty(w);
    }
}

/* Kafka's check for ClientSoftwareName/Version:
 * [a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])? */
static int software_field_valid(sc_kstr_t s)
{
    if (s.len <= 0)
        return 0;
    for (int32_t i = 0; i < s.len; i++) {
        unsigned char ch = (unsigned char)s.p[i];
        int edge = i == 0 || i == s.len - 1;
        if (!isalnum(ch) && (edge || (ch != '-' && ch != '.')))
            return 0;
    }
    return 1;
}

static int h_api_versions(bk_req_t *req, sc_kw_t *w)
{
    int v = req->hdr.api_version;
    int flexible = v >= 3;
    int16_t error = 0;
    if (v >= 3) {
        sc_kstr_t name, ver;
        sc_kr_compact_string(&req->body, 0, &name);
        sc_kr_compact_string(&req->body, 0, &ver);
        sc_kr_tags_skip(&req->body);
        if (req->body.err)
            return req->body.err;
        if (!software_field_valid(name) || !software_field_valid(ver)) {
            SC_DEBUG(SUB, "ApiVersions v%d: invalid client software name/version", v);
            error = SC_ERR_INVALID_REQUEST;
        }
    }
    sc_kw_i16(w, error);
    if (error)
        sc_kw_arr(w, flexible, 0); /* Kafka: empty list with the error */
    else
        write_api_keys(w, flexible);
    if (v >= 1)
        sc_kw_i32(w, 0); /* throttle_time_ms */
    if (flexible)
        sc_kw_tags_empty(w);
    return 0;
}

/* v0-format reply to an ApiVersions version we do not know (§1.4). */
static void write_api_versions_unsupported(sc_kw_t *w)
{
    const bk_api_t *self = bk__api_find(SC_KAFKA_API_API_VERSIONS);
    sc_kw_i16(w, SC_ERR_UNSUPPORTED_VERSION);
    sc_kw_array_len(w, 1);
    sc_kw_i16(w, SC_KAFKA_API_API_VERSIONS);
    sc_kw_i16(w, self->min_version);
    sc_kw_i16(w, self->max_version);
}

/* ---- Metadata --------------------------------------------------------------- */

/* The host:port to advertise for the listener c arrived on: the matching
 * advertised listener if any, else the bound one, with a wildcard host
 * replaced by the local address of this very connection. */
void bk__advertised_address(bk_server_t *srv, bk_conn_t *c, char *host, size_t hostlen,
                            int *port)
{
    const bk_listener_t *l = &srv->listeners[c ? c->listener : 0];
    for (int i = 0; i < srv->nadvertised; i++) {
        if (strcmp(srv->advertised[i].name, l->name) == 0) {
            l = &srv->advertised[i];
            break;
        }
    }
    snprintf(host, hostlen, "%s", l->host);
    *port = l->port;

    struct sockaddr_storage ss;
    int len = sizeof ss;
    int wildcard = !*host || strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0;
    if (c && (wildcard || *port == 0) &&
        uv_tcp_getsockname(&c->tcp, (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET) {
            struct sockaddr_in *a = (struct sockaddr_in *)&ss;
            if (wildcard)
                uv_ip4_name(a, host, hostlen);
            if (*port == 0)
                *port = ntohs(a->sin_port);
        } else if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
            if (wildcard)
                uv_ip6_name(a, host, hostlen);
            if (*port == 0)
                *port = ntohs(a->sin6_port);
        }
    }
}

static void write_topic(bk_server_t *srv, sc_kw_t *w, int v, int32_t node, int16_t error,
                        const char *name, size_t len, int32_t partitions)
{
    sc_kw_i16(w, error);
    sc_kw_string(w, name, len);
    if (v >= 1)
        sc_kw_bool(w, bk__topic_is_internal(name, len));
    if (srv->cluster) { /* leaders, replicas, ISR as the controller stored them */
        bk__cluster_write_partitions(srv, w, v, name, len, partitions);
        return;
    }
    sc_kw_array_len(w, partitions);
    for (int32_t p = 0; p < partitions; p++) {
        sc_kw_i16(w, 0);
        sc_kw_i32(w, p);
        sc_kw_i32(w, node); /* leader */
        sc_kw_array_len(w, 1);
        sc_kw_i32(w, node); /* replicas */
        sc_kw_array_len(w, 1);
        sc_kw_i32(w, node); /* isr */
        if (v >= 5)
            sc_kw_array_len(w, 0); /* offline replicas */
    }
}

static int h_metadata(bk_req_t *req, sc_kw_t *w)
{
    int v = req->hdr.api_version;
    sc_rd_t *r = &req->body;
    bk_server_t *srv = req->srv;
    const bk_config_t *cfg = srv->cfg;
    int32_t node = cfg->node_id;
    int32_t ntopics;

    /* First pass: validate the request (names are views, nothing copied). */
    sc_kr_array_len(r, v >= 1, 2, &ntopics);
    sc_rd_t names = *r;
    for (int32_t i = 0; i < ntopics && !r->err; i++) {
        sc_kstr_t s;
        sc_kr_string(r, 0, &s);
    }
    int allow_auto = 1;
    if (v >= 4)
        allow_auto = sc_kr_bool(r);
    if (r->err)
        return r->err;
    /* v0: empty list = all topics; v1+: null = all, empty = none. */
    int all = ntopics == -1 || (v == 0 && ntopics == 0);

    if (v >= 3)
        sc_kw_i32(w, 0); /* throttle_time_ms */
    char host[256];
    int port;
    bk__advertised_address(srv, req->conn, host, sizeof host, &port);
    if (srv->cluster) {
        bk__cluster_write_brokers(srv, w, v);
    } else {
        sc_kw_array_len(w, 1);
        sc_kw_i32(w, node);
        sc_kw_cstr(w, 0, host);
        sc_kw_i32(w, port);
        if (v >= 1)
            sc_kw_string(w, NULL, 0); /* rack */
    }
    if (v >= 2)
        sc_kw_cstr(w, 0, srv->cluster_id);
    if (v >= 1)
        sc_kw_i32(w, srv->cluster ? bk__cluster_controller(srv) : node); /* controller */

    if (all) {
        /* internal topics only when asked for by name */
        size_t n = bk_topics_count(srv->topics);
        size_t at = sc_kw_reserve_i32(w);
        int32_t listed = 0;
        for (size_t i = 0; i < n; i++) {
            int32_t parts;
            const char *name = bk_topics_get(srv->topics, i, &parts);
            if (bk__topic_is_internal(name, strlen(name)))
                continue;
            write_topic(srv, w, v, node, 0, name, strlen(name), parts);
            listed++;
        }
        sc_kw_patch_i32(w, at, listed);
        return 0;
    }
    sc_kw_array_len(w, ntopics);
    for (int32_t i = 0; i < ntopics; i++) {
        sc_kstr_t s;
        int32_t parts = 0;
        sc_kr_string(&names, 0, &s);
        int rc = bk_topics_find(srv->topics, s.p, (size_t)s.len, &parts);
        if (rc && !bk_topic_name_valid(s.p, (size_t)s.len)) {
            rc = SC_ERR_INVALID_TOPIC_EXCEPTION;
        } else if (rc && cfg->auto_create_topics_enable && allow_auto) {
            rc = bk_topics_create(srv->topics, s.p, (size_t)s.len, cfg->num_partitions);
            if (rc == 0) {
                parts = cfg->num_partitions;
                SC_INFO(SUB, "auto-created topic %.*s with %d partition(s)", (int)s.len, s.p,
                        parts);
            } else {
                SC_WARN(SUB, "auto-creating topic %.*s: %s", (int)s.len, s.p, sc_err_str(rc));
                rc = SC_ERR_LEADER_NOT_AVAILABLE;
            }
        }
        write_topic(srv, w, v, node, sc_err_to_kafka(rc), s.p, (size_t)s.len, rc ? 0 : parts);
    }
    return 0;
}

/* ---- dispatch --------------------------------------------------------------- */

/*
 * Runs one frame body through header decoding and its handler and writes the
 * whole response (int32 size, header, body) into out. c is the connection
 * (NULL from bk_dispatch_frame_for_test: then only logging and Metadata's
 * advertised address differ). Returns 0, or non-zero when the connection
 * must be closed (logged); out may then hold a partial response.
 */
static int dispatch_into(bk_server_t *srv, bk_conn_t *c, bk_slot_t *slot, bk_frame_t *frame,
                         const uint8_t *body, size_t len, sc_buf_t *out, bk_req_t *reqp)
{
    unsigned long long id = c ? (unsigned long long)c->id : 0;
    const char *peer = c ? c->peer : "(no socket)";
    int16_t key, ver;
    int32_t corr;
    int rc = sc_kafka_req_peek(body, len, &key, &ver, &corr);
    if (rc) {
        SC_WARN(SUB, "conn %llu %s: %zu-byte request is shorter than a header; closing", id, peer,
                len);
        return rc;
    }
    const bk_api_t *api = bk__api_find(key);
    int too_new_api_versions = key == SC_KAFKA_API_API_VERSIONS && api && ver > api->max_version;
    if (!too_new_api_versions && (!api || ver < api->min_version || ver > api->max_version)) {
        const char *name = sc_kafka_api_name(key);
        SC_INFO(SUB, "conn %llu %s: unsupported request %s(%d) v%d (correlation id %d); closing",
                id, peer, name ? name : "?", key, ver, corr);
        return SC_ERR_UNSUPPORTED_VERSION;
    }

    bk_req_t req = {.conn = c, .srv = srv, .slot = slot, .frame = frame};
    if (!too_new_api_versions) {
        sc_rd_init(&req.body, body, len);
        if ((rc = sc_kafka_req_hdr_decode(&req.body, &req.hdr)) != 0) {
            SC_WARN(SUB, "conn %llu %s: bad request header (%s); closing", id, peer,
                    sc_err_name(rc));
            return rc;
        }
    }

    sc_kw_t w;
    sc_kw_init(&w, out);
    size_t size_at = sc_kw_reserve_i32(&w);
    if (too_new_api_versions) {
        SC_DEBUG(SUB, "conn %llu %s: ApiVersions v%d is above our max; replying v0 + %d", id, peer,
                 ver, SC_ERR_UNSUPPORTED_VERSION);
        sc_kafka_resp_hdr_encode(&w, corr, 0);
        write_api_versions_unsupported(&w);
    } else {
        sc_kafka_resp_hdr_encode(&w, corr, sc_kafka_resp_hdr_version(key, ver));
        rc = api->fn(&req, &w);
        if (rc) {
            const char *name = sc_kafka_api_name(key);
            SC_WARN(SUB, "conn %llu %s: malformed %s(%d) v%d request (correlation id %d): %s; "
                         "closing", id, peer, name ? name : "?", key, ver, corr, sc_err_name(rc));
            return rc;
        }
    }
    *reqp = req;
    if (w.err) {
        SC_WARN(SUB, "conn %llu %s: out of memory building a response; closing", id, peer);
        return w.err;
    }
    if (req.async || req.no_response)
        return 0; /* the handler completes (or drops) the slot */
    if (req.close_conn)
        return SC_ERR_INVALID_REQUEST; /* the handler logged why */
    sc_kw_patch_i32(&w, size_at, (int32_t)(out->len - size_at - 4 + (slot ? bk__slot_file_bytes(slot) : 0)));
    return 0;
}

int bk__dispatch(bk_conn_t *c, const uint8_t *body, size_t len, bk_frame_t *frame)
{
    bk_slot_t *slot = bk__slot_push(c);
    if (!slot) {
        SC_WARN(SUB, "conn %llu %s: out of memory for a response; closing",
                (unsigned long long)c->id, c->peer);
        return SC_ERR_NO_MEMORY;
    }
    bk_req_t req;
    memset(&req, 0, sizeof req);
    int rc = dispatch_into(c->shard->srv, c, slot, frame, body, len, &slot->buf, &req);
    if (rc)
        return rc; /* the slot (never ready) is freed with the connection */
    if (req.no_response) {
        slot->no_response = 1;
        slot->ready = 1;
    } else if (!req.async) {
        if (slot->pieces)
            bk__slot_complete(slot); /* adds the tail piece */
        else
            slot->ready = 1;
    }
    return 0;
}

int bk_dispatch_frame_for_test(bk_server_t *srv, const uint8_t *body, size_t len, sc_buf_t *out)
{
    bk_req_t req;
    return dispatch_into(srv, NULL, NULL, NULL, body, len, out, &req);
}
