/*
 * bk_plugin -- see bk_plugin.h.
 *
 * Append path: ph_host_take returns every queued record in produce order
 * per instance. Consecutive records for the same (topic, partition) are
 * packed into one RecordBatch v2 (at most BK_PLUGIN_BATCH_BYTES, and within
 * the partition's max.message.bytes), appended with st_log_append_ex (flags
 * 0: the callback runs once the topic's flush policy has the bytes durable,
 * like acks=all) and the partition is marked dirty for the shard's group
 * commit, exactly as Produce does. The batch's callback reports each record
 * back to the host, which advances the instance's committed source offsets.
 *
 * A record without a key bound for a compacted topic (cleanup.policy
 * contains compact) fails with INVALID_RECORD, as Produce refuses it.
 *
 * A topic that does not exist is created with num.partitions when
 * auto.create.topics.enable is true (as Metadata does); otherwise its records
 * fail with UNKNOWN_TOPIC_OR_PARTITION (counted in the instance's status).
 */
#include "bk_plugin.h"

#include "bk_int.h"
#include "ph_host.h"
#include "sc_err.h"
#include "sc_log.h"
#include "sc_mem.h"
#include "sc_crc32c.h"
#include "sc_endian.h"
#include "sc_recbatch.h"
#include "sc_time.h"
#include "st_batch.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

#define SUB "plugin"
#define BK_PLUGIN_BATCH_BYTES (512u << 10)
#define BK_PLUGIN_STATUS_MS 1000

struct bk_plugins {
    bk_server_t *srv;
    ph_host_t *host;
    uv_async_t async;
    uv_timer_t status_timer;
    int handles; /* async + timer initialised, not closed */
    int stopped;
    char status_path[PATH_MAX];
};

typedef struct {
    ph_rec_t *recs; /* linked through ->next */
    sc_recbatch_t rb;
} bk_plbatch_t;

static uint32_t murmur2(const void *key, size_t len)
{
    const uint8_t *d = key;
    const uint32_t m = 0x5bd1e995;
    uint32_t h = 0x9747b28cu ^ (uint32_t)len;
    size_t n4 = len / 4;
    for (size_t i = 0; i < n4; i++) {
        const uint8_t *p = d + 4 * i;
        uint32_t k = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                     (uint32_t)p[3] << 24;
        k *= m;
        k ^= k >> 24;
        k *= m;
        h *= m;
        h ^= k;
    }
    switch (len % 4) {
    case 3:
        h ^= (uint32_t)d[(len & ~(size_t)3) + 2] << 16;
        /* fallthrough */
    case 2:
        h ^= (uint32_t)d[(len & ~(size_t)3) + 1] << 8;
        /* fallthrough */
    case 1:
        h ^= (uint32_t)d[len & ~(size_t)3];
        h *= m;
    }
    h ^= h >> 13;
    h *= m;
    h ^= h >> 15;
    return h;
}

static void fail_list(ph_rec_t *r, int rc, const char *reason)
{
    while (r) {
        ph_rec_t *next = r->next;
        ph_rec_done(r, rc, reason);
        r = next;
    }
}

static void batch_done(void *arg, int rc, int64_t base, int64_t last)
{
    bk_plbatch_t *b = arg;
    ph_rec_t *r = b->recs;
    while (r) {
        ph_rec_t *next = r->next;
        ph_rec_done(r, rc, rc ? sc_err_str(rc) : NULL);
        r = next;
    }
    sc_recbatch_fini(&b->rb);
    sc_free(b);
}

/* The partition a record goes to: -1 and *err when it cannot. */
static int32_t pick_partition(bk_server_t *s, const ph_rec_t *r, int *err)
{
    int32_t n = 0;
    size_t tl = strlen(r->topic);
    if (bk__topic_is_internal(r->topic, tl)) {
        *err = SC_ERR_INVALID_TOPIC_EXCEPTION;
        return -1;
    }
    if (bk_topics_find(s->topics, r->topic, tl, &n) != 0) {
        if (!s->cfg->auto_create_topics_enable) {
            *err = SC_ERR_UNKNOWN_TOPIC_OR_PARTITION;
            return -1;
        }
        int rc = bk_topics_create(s->topics, r->topic, tl, s->cfg->num_partitions);
        if (rc && rc != SC_ERR_TOPIC_ALREADY_EXISTS) {
            *err = rc;
            return -1;
        }
        SC_INFO(SUB, "created topic %s (%d partitions) for plugin records", r->topic,
                s->cfg->num_partitions);
        if (bk_topics_find(s->topics, r->topic, tl, &n) != 0) {
            *err = SC_ERR_UNKNOWN_TOPIC_OR_PARTITION;
            return -1;
        }
    }
    if (r->partition >= 0) {
        if (r->partition >= n) {
            *err = SC_ERR_UNKNOWN_TOPIC_OR_PARTITION;
            return -1;
        }
        return r->partition;
    }
    if (r->key_len < 0 || n <= 0)
        return 0;
    return (int32_t)((murmur2(r->key, (size_t)r->key_len) & 0x7fffffffu) % (uint32_t)n);
}

/* Appends everything the instances queued. */
static void drain(struct bk_plugins *pl)
{
    bk_server_t *s = pl->srv;
    ph_rec_t *r = ph_host_take(pl->host);
    while (r) {
        int err = 0;
        int32_t part = pick_partition(s, r, &err);
        bk_part_t *p = part >= 0 ? bk__part_find(s, r->topic, strlen(r->topic), part) : NULL;
        if (!p || p->shard != &s->shard0) {
            ph_rec_t *next = r->next;
            r->next = NULL;
            fail_list(r, err ? err : SC_ERR_NOT_LEADER_OR_FOLLOWER, NULL);
            r = next;
            continue;
        }
        /* a compacted topic takes keyed records only (as Produce: Kafka's
         * LogValidator); a keyless one fails alone, its neighbours go on */
        int compact = st_log_config(p->log)->compact;
        if (compact && (!r->key || r->key_len < 0)) {
            ph_rec_t *next = r->next;
            r->next = NULL;
            fail_list(r, SC_ERR_INVALID_RECORD,
                      "compacted topic cannot accept a record without a key");
            r = next;
            continue;
        }
        bk_plbatch_t *b = sc_calloc(1, sizeof *b);
        if (!b) {
            ph_rec_t *next = r->next;
            r->next = NULL;
            fail_list(r, SC_ERR_NO_MEMORY, NULL);
            r = next;
            continue;
        }
        sc_recbatch_init(&b->rb);
        size_t limit = (size_t)p->max_message_bytes;
        if (limit > BK_PLUGIN_BATCH_BYTES)
            limit = BK_PLUGIN_BATCH_BYTES;
        int rc = sc_recbatch_begin(&b->rb, r->timestamp_ms, -1, -1, -1);
        ph_rec_t **tail = &b->recs;
        while (!rc && r) {
            if (b->recs) { /* same destination, and room left? */
                if (strcmp(r->topic, b->recs->topic) != 0)
                    break;
                int e2 = 0;
                if (pick_partition(s, r, &e2) != part)
                    break;
                if (b->rb.buf.len + r->bytes > limit)
                    break;
                if (compact && (!r->key || r->key_len < 0))
                    break; /* failed alone by the outer loop */
            }
            rc = sc_recbatch_add(&b->rb, r->timestamp_ms, r->key, r->key_len, r->value,
                                 r->value_len, r->headers, r->nheaders);
            ph_rec_t *next = r->next;
            r->next = NULL;
            *tail = r;
            tail = &r->next;
            r = next;
        }
        if (!rc)
            rc = sc_recbatch_finish(&b->rb);
        if (!rc && b->rb.buf.len > (size_t)p->max_message_bytes)
            rc = SC_ERR_MESSAGE_TOO_LARGE;
        if (!rc && p->log_append_time) { /* message.timestamp.type=LogAppendTime, as Produce */
            uint8_t *bb = b->rb.buf.data;
            uint16_t attr = sc_load_be16(bb + ST_BATCH_OFF_ATTRIBUTES);
            sc_store_be16(bb + ST_BATCH_OFF_ATTRIBUTES,
                          (uint16_t)(attr | ST_BATCH_ATTR_LOG_APPEND_TIME));
            sc_store_be64(bb + ST_BATCH_OFF_MAX_TIMESTAMP, (uint64_t)sc_now_ms());
            sc_store_be32(bb + ST_BATCH_OFF_CRC,
                          sc_crc32c(0, bb + ST_BATCH_OFF_ATTRIBUTES,
                                    b->rb.buf.len - ST_BATCH_OFF_ATTRIBUTES));
        }
        int64_t base, leo;
        if (!rc)
            rc = st_log_append_ex(p->log, b->rb.buf.data, b->rb.buf.len, 0, 0, batch_done, b,
                                  &base, &leo);
        if (rc) {
            fail_list(b->recs, rc, NULL);
            sc_recbatch_fini(&b->rb);
            sc_free(b);
            continue;
        }
        bk__part_dirty(p);
    }
}

static void on_async(uv_async_t *a) { drain(a->data); }

static void notify(void *arg) { uv_async_send(&((struct bk_plugins *)arg)->async); }

static void on_status(uv_timer_t *t)
{
    struct bk_plugins *pl = t->data;
    int rc = ph_host_write_status(pl->host, pl->status_path);
    if (rc)
        SC_DEBUG(SUB, "writing %s: %s", pl->status_path, sc_err_str(rc));
}

int bk__plugins_start(bk_server_t *s)
{
    const bk_config_t *cfg = s->cfg;
    if ((!cfg->plugins || !*cfg->plugins) && cfg->plugin_kv_count == 0)
        return 0;
    struct bk_plugins *pl = sc_calloc(1, sizeof *pl);
    if (!pl)
        return SC_ERR_NO_MEMORY;
    pl->srv = s;
    char state[PATH_MAX];
    size_t dl = strcspn(cfg->log_dirs, ",");
    if (snprintf(state, sizeof state, "%.*s/.plugins", (int)dl, cfg->log_dirs) >=
            (int)sizeof state - 16 ||
        snprintf(pl->status_path, sizeof pl->status_path, "%s/status.json", state) >=
            (int)sizeof pl->status_path) {
        SC_ERROR(SUB, "log.dirs path too long");
        sc_free(pl);
        return SC_ERR_BAD_CONFIG;
    }
    ph_config_t pc = {
        .plugin_dir = cfg->plugin_dir,
        .instances = cfg->plugins,
        .signature_required = cfg->plugin_signature_required,
        .signature_key = cfg->plugin_signature_public_key,
        .state_dir = state,
        .keys = (const char *const *)cfg->plugin_kv_keys,
        .values = (const char *const *)cfg->plugin_kv_values,
        .nkv = cfg->plugin_kv_count,
    };
    ph_sink_t sink = {.notify = notify, .arg = pl};
    char err[1024] = "";
    int rc = ph_host_new(&pc, &sink, &pl->host, err, sizeof err);
    if (rc) {
        SC_ERROR(SUB, "%s", err);
        sc_free(pl);
        return SC_ERR_BAD_CONFIG;
    }
    uv_async_init(&s->shard0.loop, &pl->async, on_async);
    pl->async.data = pl;
    uv_timer_init(&s->shard0.loop, &pl->status_timer);
    pl->status_timer.data = pl;
    pl->handles = 1;
    s->plugins = pl;
    uv_timer_start(&pl->status_timer, on_status, BK_PLUGIN_STATUS_MS, BK_PLUGIN_STATUS_MS);
    ph_host_start(pl->host);
    SC_INFO(SUB, "%zu plugin instance(s) started; status in %s", ph_host_count(pl->host),
            pl->status_path);
    return 0;
}

void bk__plugins_stop(bk_server_t *s)
{
    struct bk_plugins *pl = s->plugins;
    if (!pl || pl->stopped)
        return;
    pl->stopped = 1;
    ph_host_stop(pl->host); /* bounded by each instance's stop.timeout.ms */
    drain(pl);              /* what they queued last goes to the logs too */
    (void)ph_host_write_status(pl->host, pl->status_path);
    if (pl->handles) {
        uv_close((uv_handle_t *)&pl->async, NULL);
        uv_close((uv_handle_t *)&pl->status_timer, NULL);
        pl->handles = 0;
    }
}

void bk__plugins_free(bk_server_t *s)
{
    struct bk_plugins *pl = s->plugins;
    if (!pl)
        return;
    bk__plugins_stop(s);
    (void)ph_host_write_status(pl->host, pl->status_path);
    ph_host_free(pl->host);
    sc_free(pl);
    s->plugins = NULL;
}
