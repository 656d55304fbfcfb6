/*
 * bk_group_offsets -- committed offsets: OffsetCommit (8) v2-7, OffsetFetch
 * (9) v1-5 (reference.md §4.11, §4.12, §7.5), DeleteGroups (42) v0-1,
 * OffsetDelete (47) v0, offset expiry, and their storage in the internal
 * topic __consumer_offsets. Runs on shard 0 (bk_group_int.h).
 *
 * The topic: created at start when absent with offsets.topic.num.partitions
 * partitions, replication factor 1, cleanup.policy=compact (so retention
 * never deletes its segments: bk_part maps a compact-only policy to unlimited
 * retention; storage has no compaction yet) and segment.bytes=104857600
 * (Kafka's offsets.topic.segment.bytes). DeleteTopics, CreatePartitions and
 * an AlterConfigs that does not keep cleanup.policy=compact are refused on
 * it (bk_admin.c). An
 * existing topic keeps its partition count. A group's records all go to
 * partition abs(javaHashCode(group id)) % partitions, as in Kafka, so
 * Kafka's tools find them where they expect.
 *
 * Records, in Kafka's format (GroupMetadataManager / OffsetCommitKey,
 * OffsetCommitValue), one uncompressed RecordBatch v2 per OffsetCommit
 * request (producer id -1, timestamps = commit time):
 *   key   int16 version (1; 0 is read too), string group, string topic,
 *         int32 partition                        -- "string" = int16 length
 *   value int16 version, then
 *         v0: int64 offset, string metadata, int64 commit_timestamp
 *         v1: int64 offset, string metadata, int64 commit_timestamp,
 *             int64 expire_timestamp              (written when the request
 *                                                  carried a retention time)
 *         v2: as v0
 *         v3: int64 offset, int32 leader_epoch, string metadata,
 *             int64 commit_timestamp              (written otherwise)
 *         v4: v3 with compact strings and a trailing tag buffer (read only)
 *   null value = tombstone: the offset is deleted.
 * Key version 2 (GroupMetadataKey: int16 2, string group) holds the group
 * itself, value GroupMetadataValue v3 (bk__group_write_value; v0-v4 read by
 * bk__group_load): written when the leader's SyncGroup completes a
 * generation (the members are answered once it is committed), when the
 * group becomes Empty and when a static member rejoins without a rebalance;
 * a tombstone when the group is deleted or removed. At load a group with
 * members comes back Stable, so members keep their generation across a
 * restart or a coordinator move.
 *
 * Durability: the commit is answered from the append callback, i.e. once
 * the batch is committed under the topic's flush policy (durable with the
 * default flush.messages=1); the in-memory cache is updated at the same
 * moment, so OffsetFetch never returns an offset a crash could take back.
 *
 * Load (start, before listeners open): every partition is read from its log
 * start to its end; the last value per key wins, tombstones delete. Batches
 * that are compressed, transactional/control or unparseable are skipped with
 * a warning (only this file writes the topic: Produce refuses it).
 *
 * Cluster mode (metadata.store=zookeeper): the topic is created on the first
 * FindCoordinator with offsets.topic.replication.factor (-1 = min(3, live
 * brokers)); a broker coordinates the groups of the partitions it leads
 * (bk__coord_error: NOT_COORDINATOR elsewhere), loads a partition when it
 * becomes its leader (COORDINATOR_LOAD_IN_PROGRESS until then) and drops its
 * groups when it stops leading it (bk__offsets_cluster_tick, every group
 * tick and on FindCoordinator). An OffsetCommit is answered once the ISR has
 * the batch (bk__cluster_wait_isr_cb, offsets.commit.timeout.ms = 5 s);
 * tombstones (expiry, DeleteGroups, OffsetDelete) and GroupMetadata records
 * likewise (acked_append). Every write is refused before the append when the
 * partition's ISR is below min.insync.replicas (Kafka appends with acks=-1:
 * NOT_ENOUGH_REPLICAS, answered as COORDINATOR_NOT_AVAILABLE).
 */
#include "bk_group_int.h"

#include "sc_err.h"
#include "sc_log.h"
#include "sc_mem.h"
#include "sc_recbatch.h"
#include "sc_time.h"
#include "st_batch.h"

#include <stdlib.h>
#include <string.h>

#define SUB "group"

int bk__topic_is_internal(const char *name, size_t len)
{
    return len == sizeof BK_OFFSETS_TOPIC - 1 && memcmp(name, BK_OFFSETS_TOPIC, len) == 0;
}

/* Java's String.hashCode over the UTF-16 units of a UTF-8 string (invalid
 * bytes count as U+FFFD, as Java's decoder makes them). */
static int32_t java_hash(const char *s, size_t len)
{
    uint32_t h = 0;
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        uint32_t cp = 0xFFFD;
        unsigned c = p[i];
        if (c < 0x80) {
            cp = c;
            i++;
        } else {
            size_t need = (c >> 5) == 6 ? 1 : (c >> 4) == 14 ? 2 : (c >> 3) == 30 ? 3 : 0;
            size_t k = 1;
            uint32_t v = c & (0x3Fu >> need);
            while (need && k <= need && i + k < len && (p[i + k] & 0xC0) == 0x80) {
                v = (v << 6) | (p[i + k] & 0x3F);
                k++;
            }
            if (need && k == need + 1)
                cp = v;
            i += k;
        }
        if (cp >= 0x10000) {
            cp -= 0x10000;
            h = 31 * h + (0xD800 + (cp >> 10));
            h = 31 * h + (0xDC00 + (cp & 0x3FF));
        } else {
            h = 31 * h + cp;
        }
    }
    return (int32_t)h;
}

static int32_t offsets_partition(const bk_coord_t *co, const char *group, size_t len)
{
    int32_t h = java_hash(group, len);
    int32_t a = h == INT32_MIN ? 0 : abs(h);
    return a % co->nparts;
}

int32_t bk__offsets_partition(const bk_coord_t *co, const char *group, size_t len)
{
    return offsets_partition(co, group, len);
}

static int32_t leader_epoch_of(const bk_coord_t *co, int32_t part)
{
    return co->srv->cluster ? bk__cluster_leader_epoch(co->srv, BK_OFFSETS_TOPIC,
                                                        sizeof BK_OFFSETS_TOPIC - 1, part)
                            : 0;
}

/* Cluster mode: 1 when partition part of __consumer_offsets has fewer ISR
 * members than its min.insync.replicas (an acks=all append would get
 * NOT_ENOUGH_REPLICAS). */
static int isr_short(const bk_coord_t *co, int32_t part)
{
    return co->srv->cluster &&
           bk__cluster_isr_short(co->srv, BK_OFFSETS_TOPIC, sizeof BK_OFFSETS_TOPIC - 1, part);
}

int16_t bk__coord_error(const bk_coord_t *co, const char *gid, int32_t len)
{
    if (!co->srv->cluster || co->offline || len <= 0)
        return 0;
    if (co->nparts <= 0 || !co->loaded)
        return SC_ERR_NOT_COORDINATOR; /* no __consumer_offsets yet: FindCoordinator makes it */
    int32_t part = offsets_partition(co, gid, (size_t)len);
    if (bk__cluster_leader(co->srv, BK_OFFSETS_TOPIC, sizeof BK_OFFSETS_TOPIC - 1, part) !=
        co->srv->cfg->node_id)
        return SC_ERR_NOT_COORDINATOR;
    if (co->loaded[part] != leader_epoch_of(co, part) + 1)
        return SC_ERR_COORDINATOR_LOAD_IN_PROGRESS; /* the next tick loads it */
    return 0;
}

/* ---- the cache ---------------------------------------------------------------- */

static bk_offset_t *off_find(bk_group_t *g, const char *topic, size_t tlen, int32_t partition)
{
    for (size_t i = 0; i < g->noffs; i++)
        if (g->offs[i].partition == partition && strlen(g->offs[i].topic) == tlen &&
            memcmp(g->offs[i].topic, topic, tlen) == 0)
            return &g->offs[i];
    return NULL;
}

static int str_eq_n(const char *s, const char *p, size_t len)
{
    return strlen(s) == len && memcmp(s, p, len) == 0;
}

static void off_fini(bk_offset_t *o)
{
    sc_free(o->topic);
    sc_free(o->metadata);
}

static void off_delete(bk_group_t *g, const char *topic, size_t tlen, int32_t partition)
{
    bk_offset_t *o = off_find(g, topic, tlen, partition);
    if (!o)
        return;
    off_fini(o);
    *o = g->offs[--g->noffs];
}

/* Sets the committed offset of (topic, partition). 0 or SC_ERR_NO_MEMORY. */
static int off_set(bk_group_t *g, const char *topic, size_t tlen, int32_t partition,
                   int64_t offset, int32_t epoch, const char *meta, size_t mlen, int64_t ts,
                   int64_t expire)
{
    char *m = bk__group_strdup(meta ? meta : "", meta ? mlen : 0);
    if (!m)
        return SC_ERR_NO_MEMORY;
    bk_offset_t *o = off_find(g, topic, tlen, partition);
    if (!o) {
        if (g->noffs == g->offs_cap) {
            size_t cap = g->offs_cap ? g->offs_cap * 2 : 16;
            bk_offset_t *v = sc_realloc(g->offs, cap * sizeof *v);
            if (!v) {
                sc_free(m);
                return SC_ERR_NO_MEMORY;
            }
            g->offs = v;
            g->offs_cap = cap;
        }
        char *t = bk__group_strdup(topic, tlen);
        if (!t) {
            sc_free(m);
            return SC_ERR_NO_MEMORY;
        }
        o = &g->offs[g->noffs++];
        memset(o, 0, sizeof *o);
        o->topic = t;
        o->partition = partition;
    }
    sc_free(o->metadata);
    o->metadata = m;
    o->offset = offset;
    o->leader_epoch = epoch;
    o->commit_ts = ts;
    o->expire_ts = expire;
    return 0;
}

void bk__offsets_free(bk_group_t *g)
{
    for (size_t i = 0; i < g->noffs; i++)
        off_fini(&g->offs[i]);
    sc_free(g->offs);
    g->offs = NULL;
    g->noffs = g->offs_cap = 0;
}

/* ---- records ------------------------------------------------------------------ */

static void write_key(sc_kw_t *w, const char *group, size_t glen, const char *topic, size_t tlen,
                      int32_t partition)
{
    sc_kw_i16(w, 1);
    sc_kw_string(w, group, glen);
    sc_kw_string(w, topic, tlen);
    sc_kw_i32(w, partition);
}

/* Value v3, or v1 when the commit carries an expire timestamp. */
static void write_value(sc_kw_t *w, int64_t offset, int32_t epoch, const char *meta, size_t mlen,
                        int64_t ts, int64_t expire)
{
    if (expire >= 0) {
        sc_kw_i16(w, 1);
        sc_kw_i64(w, offset);
        sc_kw_string(w, meta ? meta : "", meta ? mlen : 0);
        sc_kw_i64(w, ts);
        sc_kw_i64(w, expire);
        return;
    }
    sc_kw_i16(w, 3);
    sc_kw_i64(w, offset);
    sc_kw_i32(w, epoch);
    sc_kw_string(w, meta ? meta : "", meta ? mlen : 0);
    sc_kw_i64(w, ts);
}

/* Applies one stored record (key, value or NULL). Unknown key versions are
 * skipped (0); a malformed key or value is SC_ERR_CORRUPT_MESSAGE. */
static int apply_record(bk_coord_t *co, const uint8_t *k, int64_t klen, const uint8_t *v,
                        int64_t vlen)
{
    sc_rd_t r;
    sc_kstr_t group, topic;
    if (klen < 2)
        return SC_ERR_CORRUPT_MESSAGE;
    sc_rd_init(&r, k, (size_t)klen);
    int16_t kv = sc_kr_i16(&r);
    if (kv == 2) { /* GroupMetadataKey: the group's membership (or its tombstone) */
        if (sc_kr_string(&r, 0, &group))
            return SC_ERR_CORRUPT_MESSAGE;
        return bk__group_load(co, group.p, (size_t)group.len, v, vlen);
    }
    if (kv != 0 && kv != 1)
        return 0; /* newer: not kept */
    sc_kr_string(&r, 0, &group);
    sc_kr_string(&r, 0, &topic);
    int32_t partition = sc_kr_i32(&r);
    if (r.err)
        return SC_ERR_CORRUPT_MESSAGE;
    bk_group_t *g = bk__group_get(co, group.p, (size_t)group.len);
    if (!g)
        return SC_ERR_NO_MEMORY;
    if (!v) {
        off_delete(g, topic.p, (size_t)topic.len, partition);
        return 0;
    }
    sc_rd_init(&r, v, (size_t)vlen);
    int16_t ver = sc_kr_i16(&r);
    int64_t offset = sc_kr_i64(&r), ts, expire = -1;
    int32_t epoch = -1;
    sc_kstr_t meta;
    if (ver >= 3 && ver <= 4) {
        epoch = sc_kr_i32(&r);
        sc_kr_str(&r, ver == 4, 0, &meta);
        ts = sc_kr_i64(&r);
    } else if (ver >= 0 && ver <= 2) {
        sc_kr_string(&r, 0, &meta);
        ts = sc_kr_i64(&r);
        if (ver == 1)
            expire = sc_kr_i64(&r);
    } else {
        return SC_ERR_CORRUPT_MESSAGE;
    }
    if (r.err)
        return SC_ERR_CORRUPT_MESSAGE;
    return off_set(g, topic.p, (size_t)topic.len, partition, offset, epoch, meta.p,
                   (size_t)meta.len, ts, expire);
}

/* Applies every record of one uncompressed batch. */
static int apply_batch(bk_coord_t *co, const uint8_t *b, size_t len, const st_batch_hdr_t *h)
{
    sc_rd_t r;
    sc_rd_init(&r, b + ST_BATCH_HEADER_SIZE, len - ST_BATCH_HEADER_SIZE);
    for (int32_t i = 0; i < h->records_count; i++) {
        int64_t rlen = sc_rd_varint(&r);
        if (r.err || rlen < 0 || (uint64_t)rlen > sc_rd_left(&r))
            return SC_ERR_CORRUPT_MESSAGE;
        sc_rd_t rec;
        sc_rd_init(&rec, sc_rd_bytes(&r, (size_t)rlen), (size_t)rlen);
        sc_rd_u8(&rec);       /* attributes */
        sc_rd_varint(&rec);   /* timestamp delta */
        sc_rd_varint(&rec);   /* offset delta */
        int64_t kl = sc_rd_varint(&rec);
        const uint8_t *k = kl > 0 && (uint64_t)kl <= sc_rd_left(&rec) ? sc_rd_bytes(&rec, (size_t)kl)
                                                                      : NULL;
        int64_t vl = sc_rd_varint(&rec);
        const uint8_t *v = vl >= 0 && (uint64_t)vl <= sc_rd_left(&rec)
                               ? sc_rd_bytes(&rec, (size_t)vl)
                               : NULL;
        if (rec.err || !k || (vl >= 0 && !v))
            return SC_ERR_CORRUPT_MESSAGE;
        int rc = apply_record(co, k, kl, v, vl);
        if (rc)
            return rc;
    }
    return 0;
}

/* Reads one partition of __consumer_offsets into the cache. */
static int load_partition(bk_coord_t *co, bk_part_t *p, size_t *records)
{
    int rc = 0;
    size_t cap = 1u << 20;
    uint8_t *buf = sc_malloc(cap);
    int64_t off = st_log_start_offset(p->log);
    int64_t end = st_log_end_offset(p->log);
    if (!buf)
        return SC_ERR_NO_MEMORY;
    while (off < end) {
        size_t len = 0;
        rc = st_log_read_into(p->log, off, buf, cap, INT64_MAX, &len);
        if (rc == SC_ERR_MESSAGE_TOO_LARGE && cap < (256u << 20)) {
            uint8_t *nb = sc_realloc(buf, cap * 4);
            if (!nb) {
                rc = SC_ERR_NO_MEMORY;
                goto out;
            }
            buf = nb;
            cap *= 4;
            continue;
        }
        if (rc)
            goto out;
        if (len == 0)
            break;
        for (size_t pos = 0; pos + ST_BATCH_HEADER_SIZE <= len;) {
            st_batch_hdr_t h;
            int64_t bs = st_batch_size(buf + pos, len - pos);
            if (bs <= 0 || (size_t)bs > len - pos ||
                st_batch_hdr_decode(buf + pos, (size_t)bs, &h)) {
                rc = SC_ERR_CORRUPT_MESSAGE;
                goto out;
            }
            off = h.base_offset + h.last_offset_delta + 1;
            if ((h.attributes & (ST_BATCH_ATTR_CODEC_MASK | ST_BATCH_ATTR_CONTROL |
                                 ST_BATCH_ATTR_TRANSACTIONAL)) != 0) {
                SC_WARN(SUB, "%s-%d: skipping batch at offset %lld (compressed, control or "
                             "transactional: not written by this broker)",
                        p->topic, p->partition, (long long)h.base_offset);
            } else if (apply_batch(co, buf + pos, (size_t)bs, &h)) {
                SC_WARN(SUB, "%s-%d: skipping unreadable batch at offset %lld", p->topic,
                        p->partition, (long long)h.base_offset);
            } else {
                *records += (size_t)h.records_count;
            }
            pos += (size_t)bs;
        }
    }
out:
    sc_free(buf);
    return rc;
}

static const rp_meta_kv_t offsets_configs[] = {
    {"cleanup.policy", "compact"},
    {"segment.bytes", "104857600"},
};

/* Cluster mode: the queued creation of the topic answered (shard 0). */
static void offsets_created(void *arg, int rc, int64_t pid)
{
    bk_coord_t *co = arg;
    (void)pid;
    co->offsets_creating = 0;
    if (rc && rc != SC_ERR_TOPIC_ALREADY_EXISTS)
        SC_WARN(SUB, "creating %s: %s", BK_OFFSETS_TOPIC, sc_err_str(rc));
    else if (!rc)
        SC_INFO(SUB, "created %s with %d partition(s), replication factor %d", BK_OFFSETS_TOPIC,
                co->srv->cfg->offsets_topic_num_partitions, co->creating_rf);
}

void bk__offsets_cluster_tick(bk_coord_t *co, int create)
{
    bk_server_t *s = co->srv;
    size_t n = sizeof BK_OFFSETS_TOPIC - 1;
    if (!s->cluster || !co->ready || co->offline)
        return;
    if (!co->loaded) {
        int32_t parts = 0;
        if (bk_topics_find(s->topics, BK_OFFSETS_TOPIC, n, &parts)) {
            if (!create)
                return;
            /* Kafka creates it on the first FindCoordinator. */
            int live = bk__cluster_live_brokers(s);
            int rf = s->cfg->offsets_topic_replication_factor;
            if (rf <= 0)
                rf = live < 3 ? live : 3;
            if (live <= 0 || rf > live) {
                SC_WARN(SUB, "%s: replication factor %d but %d live broker(s); not created yet",
                        BK_OFFSETS_TOPIC, rf, live);
                return;
            }
            if (bk_topics_async(s->topics)) {
                /* the store's write waits for ZooKeeper on its worker; until
                 * it is back FindCoordinator answers COORDINATOR_NOT_AVAILABLE */
                if (co->offsets_creating)
                    return;
                co->creating_rf = rf;
                if (bk_topics_create_async(s->topics, BK_OFFSETS_TOPIC, n,
                                           s->cfg->offsets_topic_num_partitions, (int16_t)rf,
                                           offsets_configs,
                                           sizeof offsets_configs / sizeof offsets_configs[0],
                                           offsets_created, co) == 0)
                    co->offsets_creating = 1;
                return;
            }
            int rc = bk_topics_create_ex(s->topics, BK_OFFSETS_TOPIC, n,
                                         s->cfg->offsets_topic_num_partitions, (int16_t)rf,
                                         offsets_configs,
                                         sizeof offsets_configs / sizeof offsets_configs[0]);
            if (rc && rc != SC_ERR_TOPIC_ALREADY_EXISTS) {
                SC_WARN(SUB, "creating %s: %s", BK_OFFSETS_TOPIC, sc_err_str(rc));
                return;
            }
            if (!rc)
                SC_INFO(SUB, "created %s with %d partition(s), replication factor %d",
                        BK_OFFSETS_TOPIC, s->cfg->offsets_topic_num_partitions, rf);
            if (bk_topics_find(s->topics, BK_OFFSETS_TOPIC, n, &parts))
                return;
        }
        if (!(co->loaded = sc_calloc((size_t)parts, sizeof co->loaded[0])))
            return;
        co->nparts = parts;
    }
    for (int32_t i = 0; i < co->nparts; i++) {
        int32_t leader = bk__cluster_leader(s, BK_OFFSETS_TOPIC, n, i);
        int32_t want = leader_epoch_of(co, i) + 1;
        if (leader != s->cfg->node_id) {
            if (co->loaded[i]) {
                bk__group_drop_partition(co, i);
                co->loaded[i] = 0;
            }
            continue;
        }
        if (co->loaded[i] == want)
            continue;
        if (co->loaded[i]) /* lost and regained between two ticks */
            bk__group_drop_partition(co, i);
        co->loaded[i] = 0;
        bk_part_t *p = bk__part_find(s, BK_OFFSETS_TOPIC, n, i);
        if (!p)
            continue; /* its log is not open yet: LOAD_IN_PROGRESS until it is */
        size_t records = 0;
        int64_t t0 = sc_mono_ms();
        int rc = load_partition(co, p, &records);
        if (rc) {
            SC_ERROR(SUB, "loading %s-%d: %s", BK_OFFSETS_TOPIC, i, sc_err_str(rc));
            bk__group_drop_partition(co, i);
            continue;
        }
        co->loaded[i] = want;
        bk__group_prune_loaded(co);
        SC_INFO(SUB, "%s-%d: leader (epoch %d); loaded %zu record(s) in %lld ms",
                BK_OFFSETS_TOPIC, i, want - 1, records, (long long)(sc_mono_ms() - t0));
    }
}

int bk__offsets_start(bk_coord_t *co)
{
    bk_server_t *s = co->srv;
    int32_t parts = 0;
    size_t n = sizeof BK_OFFSETS_TOPIC - 1;
    if (s->cluster)
        return 0; /* created on the first FindCoordinator, loaded per leadership (tick) */
    int rc = bk_topics_find(s->topics, BK_OFFSETS_TOPIC, n, &parts);
    if (rc) {
        const rp_meta_kv_t *configs = offsets_configs;
        parts = s->cfg->offsets_topic_num_partitions;
        rc = bk_topics_create_ex(s->topics, BK_OFFSETS_TOPIC, n, parts, 1, configs,
                                 sizeof offsets_configs / sizeof offsets_configs[0]);
        if (rc) {
            SC_ERROR(SUB, "creating %s: %s", BK_OFFSETS_TOPIC, sc_err_str(rc));
            return rc;
        }
        SC_INFO(SUB, "created %s with %d partition(s)", BK_OFFSETS_TOPIC, parts);
    } else if (parts != s->cfg->offsets_topic_num_partitions) {
        SC_WARN(SUB, "%s has %d partition(s); offsets.topic.num.partitions=%d applies only when "
                     "the topic is created",
                BK_OFFSETS_TOPIC, parts, s->cfg->offsets_topic_num_partitions);
    }
    co->nparts = parts;
    size_t records = 0;
    int64_t t0 = sc_mono_ms();
    for (int32_t i = 0; i < parts; i++) {
        bk_part_t *p = bk__part_find(s, BK_OFFSETS_TOPIC, n, i);
        if (!p) {
            SC_ERROR(SUB, "%s-%d has no log", BK_OFFSETS_TOPIC, i);
            return SC_ERR_UNKNOWN_TOPIC_OR_PARTITION;
        }
        if ((rc = load_partition(co, p, &records)) != 0) {
            SC_ERROR(SUB, "loading %s-%d: %s", BK_OFFSETS_TOPIC, i, sc_err_str(rc));
            return rc;
        }
    }
    size_t groups = 0, offsets = 0, members = 0;
    for (bk_group_t *g = co->groups; g; g = g->next) {
        groups += g->noffs > 0; /* the others (all tombstoned) are dropped by the caller */
        offsets += g->noffs;
        members += g->nmembers > 0;
    }
    SC_INFO(SUB, "loaded %zu committed offset(s) of %zu group(s) from %zu record(s) in %lld ms; "
                 "%zu group(s) Stable with their members",
            offsets, groups, records, (long long)(sc_mono_ms() - t0), members);
    return 0;
}

/* ---- topic arrays ------------------------------------------------------------------ */

/* Walks a request's topics array topic by topic, partition by partition:
 * OffsetCommit's (version >= 0: partition index, committed offset, leader
 * epoch from v6, nullable metadata) or plain partition indexes (version -1:
 * OffsetDelete, OffsetFetch v1-5). The first walk goes over the request
 * body and validates it; later ones (echoing it in the response, applying
 * it) go over a copy or a reader that passed, so they read no error. */
typedef struct {
    sc_rd_t r;
    int version;
    sc_kstr_t topic; /* the current topic's name */
} twalk_t;

typedef struct {
    int32_t index;
    int64_t offset;  /* -1 for index arrays */
    int32_t epoch;   /* -1 before OffsetCommit v6 */
    sc_kstr_t meta;  /* null for index arrays */
} tpart_t;

static void twalk_init(twalk_t *wk, const sc_rd_t *r, int version)
{
    wk->r = *r;
    wk->version = version;
    wk->topic = (sc_kstr_t){NULL, -1};
}

/* The next topic: its name into wk->topic; returns its partition count (0
 * once the reader failed). */
static int32_t twalk_topic(twalk_t *wk)
{
    int32_t np = 0;
    sc_kr_string(&wk->r, 0, &wk->topic);
    sc_kr_array_len(&wk->r, 0, wk->version >= 0 ? 14 : 4, &np);
    return wk->r.err ? 0 : np;
}

static void twalk_part(twalk_t *wk, tpart_t *o)
{
    o->index = sc_kr_i32(&wk->r);
    o->offset = -1;
    o->epoch = -1;
    o->meta = (sc_kstr_t){NULL, -1};
    if (wk->version < 0)
        return;
    o->offset = sc_kr_i64(&wk->r);
    if (wk->version >= 6)
        o->epoch = sc_kr_i32(&wk->r);
    sc_kr_string(&wk->r, 1, &o->meta);
}

/* A walk over a copied array (blob, len). */
static void twalk_blob(twalk_t *wk, const uint8_t *blob, size_t len, int version)
{
    sc_rd_t r;
    sc_rd_init(&r, blob, len);
    twalk_init(wk, &r, version);
}

/* ---- OffsetCommit ------------------------------------------------------------------ */

typedef struct {
    bk_coord_t *co;
    bk_part_t *part; /* the __consumer_offsets partition appended to */
    bk_slot_t *slot; /* NULL once the connection closed */
    int16_t version;
    char *group;
    size_t glen;
    int64_t ts, expire;
    uint8_t *blob; /* the request's topics array, copied */
    size_t blen;
    int32_t ntopics;
    sc_recbatch_t batch;
    size_t n;
    int16_t errs[];
} commit_op_t;

static void commit_write(const commit_op_t *op, sc_kw_t *w)
{
    twalk_t wk;
    size_t k = 0;
    twalk_blob(&wk, op->blob, op->blen, op->version);
    if (op->version >= 3)
        sc_kw_i32(w, 0);
    sc_kw_array_len(w, op->ntopics);
    for (int32_t t = 0; t < op->ntopics; t++) {
        int32_t np = twalk_topic(&wk);
        sc_kw_string(w, wk.topic.p, (size_t)wk.topic.len);
        sc_kw_array_len(w, np);
        for (int32_t i = 0; i < np; i++, k++) {
            tpart_t pt;
            twalk_part(&wk, &pt);
            sc_kw_i32(w, pt.index);
            sc_kw_i16(w, op->errs[k]);
        }
    }
}

static void commit_free(commit_op_t *op)
{
    sc_recbatch_fini(&op->batch);
    sc_free(op->blob);
    sc_free(op->group);
    sc_free(op);
}

static void commit_detach(bk_slot_t *s)
{
    commit_op_t *op = s->op;
    op->slot = NULL;
}

/* Applies the committed entries to the cache (after the append). */
static void commit_apply(commit_op_t *op)
{
    bk_group_t *g = bk__group_get(op->co, op->group, op->glen);
    twalk_t wk;
    size_t k = 0;
    twalk_blob(&wk, op->blob, op->blen, op->version);
    for (int32_t t = 0; t < op->ntopics; t++) {
        int32_t np = twalk_topic(&wk);
        for (int32_t i = 0; i < np; i++, k++) {
            tpart_t pt;
            twalk_part(&wk, &pt);
            if (op->errs[k] != -2)
                continue; /* -2: written, to be applied */
            op->errs[k] = 0;
            if (!g || off_set(g, wk.topic.p, (size_t)wk.topic.len, pt.index, pt.offset,
                              pt.epoch, pt.meta.p, pt.meta.len < 0 ? 0 : (size_t)pt.meta.len,
                              op->ts, op->expire))
                op->errs[k] = sc_err_to_kafka(SC_ERR_NO_MEMORY);
        }
    }
}

static void commit_respond(commit_op_t *op)
{
    bk_slot_t *s = op->slot;
    if (s) {
        sc_kw_t w;
        sc_kw_init(&w, &s->buf);
        commit_write(op, &w);
        s->op = NULL;
        s->detach = NULL;
        if (w.err) {
            SC_WARN(SUB, "out of memory building an OffsetCommit response; closing");
            bk__conn_close(s->conn);
        } else {
            sc_kw_patch_i32(&w, 0, (int32_t)(s->buf.len - 4));
            bk__slot_complete(s);
        }
    }
    commit_free(op);
}

/* kerr: 0 once the batch is committed (cluster mode: the ISR has it), else
 * the error for every entry written. */
static void commit_finish(commit_op_t *op, int rc, int16_t kerr)
{
    bk_group_t *g = bk__group_find(op->co, op->group, op->glen); /* kept while inflight */
    if (g && g->inflight > 0)
        g->inflight--;
    if (rc == 0 && !kerr && bk__coord_error(op->co, op->group, (int32_t)op->glen))
        kerr = SC_ERR_NOT_COORDINATOR; /* leadership moved meanwhile: the group is gone here */
    if (rc == 0 && kerr) {
        SC_WARN(SUB, "group %s: offsets not committed on the ISR: %s", op->group,
                sc_err_str(kerr));
        for (size_t k = 0; k < op->n; k++)
            if (op->errs[k] == -2)
                op->errs[k] = kerr;
    } else if (rc == 0) {
        commit_apply(op);
    } else {
        SC_WARN(SUB, "group %s: appending offsets failed: %s", op->group, sc_err_str(rc));
        int16_t e = rc == SC_ERR_MESSAGE_TOO_LARGE ? SC_ERR_INVALID_COMMIT_OFFSET_SIZE
                                                   : SC_ERR_COORDINATOR_NOT_AVAILABLE;
        for (size_t k = 0; k < op->n; k++)
            if (op->errs[k] == -2)
                op->errs[k] = e;
    }
    commit_respond(op);
}

/* Kafka's mapping of the append errors (GroupMetadataManager.storeOffsets). */
static void commit_isr_done(void *arg, int16_t err)
{
    int16_t e = err == 0 ? 0
                : err == SC_ERR_NOT_LEADER_OR_FOLLOWER ? SC_ERR_NOT_COORDINATOR
                                                       : SC_ERR_COORDINATOR_NOT_AVAILABLE;
    commit_finish(arg, 0, e);
}

static void commit_done(void *arg, int rc, int64_t base, int64_t last)
{
    commit_op_t *op = arg;
    (void)base;
    bk_server_t *s = op->co->srv;
    if (rc == 0 && s->cluster && op->part &&
        bk__cluster_wait_isr_cb(s, op->part, last + 1,
                                sc_mono_ms() + BK_OFFSETS_COMMIT_TIMEOUT_MS, commit_isr_done, op))
        return; /* acks=all: answered when the ISR has it */
    commit_finish(op, rc, 0);
}

/* Kafka 3.7 validateOffsetCommit (§7.5): 0 to commit, else the error for
 * every partition. *create: commit for a group that does not exist yet. */
static int16_t commit_check(bk_coord_t *co, sc_kstr_t gid, int32_t gen, sc_kstr_t mid,
                            sc_kstr_t inst)
{
    bk_group_t *g = bk__group_find(co, gid.p, (size_t)gid.len);
    int simple = gen < 0 && mid.len == 0 && inst.len < 0;
    if (!g)
        return simple ? 0 : SC_ERR_ILLEGAL_GENERATION;
    if (g->state == BK_GROUP_DEAD)
        return SC_ERR_COORDINATOR_NOT_AVAILABLE;
    if (simple)
        return g->nmembers == 0 ? 0 : SC_ERR_UNKNOWN_MEMBER_ID;
    bk_member_t *m = bk__group_member_find(g, mid.p, (size_t)mid.len);
    if (inst.len >= 0) {
        bk_member_t *by = NULL;
        for (bk_member_t *x = g->members; x && !by; x = x->next)
            if (x->instance_id && strlen(x->instance_id) == (size_t)inst.len &&
                memcmp(x->instance_id, inst.p, (size_t)inst.len) == 0)
                by = x;
        if (by && by != m)
            return SC_ERR_FENCED_INSTANCE_ID;
    }
    if (!m)
        return SC_ERR_UNKNOWN_MEMBER_ID;
    if (gen != g->generation)
        return SC_ERR_ILLEGAL_GENERATION;
    if (g->state == BK_GROUP_COMPLETING)
        return SC_ERR_REBALANCE_IN_PROGRESS;
    bk__group_member_touch(m);
    return 0;
}

int bk__h_offset_commit(bk_req_t *req, sc_kw_t *w)
{
    int v = req->hdr.api_version;
    sc_rd_t *r = &req->body;
    sc_kstr_t gid, mid, inst = {NULL, -1};
    int64_t retention = -1;
    int32_t ntopics;
    size_t n = 0;
    sc_kr_string(r, 0, &gid);
    int32_t gen = sc_kr_i32(r);
    sc_kr_string(r, 0, &mid);
    if (v >= 7)
        sc_kr_string(r, 1, &inst);
    if (v <= 4)
        retention = sc_kr_i64(r);
    sc_kr_array_len(r, 0, 6, &ntopics);
    const uint8_t *tstart = r->p;
    twalk_t wk;
    twalk_init(&wk, r, v);
    for (int32_t t = 0; t < ntopics && !wk.r.err; t++) {
        int32_t np = twalk_topic(&wk);
        for (int32_t i = 0; i < np && !wk.r.err; i++, n++) {
            tpart_t pt;
            twalk_part(&wk, &pt);
        }
    }
    *r = wk.r;
    if (r->err)
        return r->err;

    commit_op_t *op = sc_calloc(1, sizeof *op + (n ? n : 1) * sizeof op->errs[0]);
    if (!op)
        return SC_ERR_NO_MEMORY;
    int rc = 0;
    op->co = req->srv->coord;
    op->version = (int16_t)v;
    op->ntopics = ntopics;
    op->n = n;
    op->blen = (size_t)(r->p - tstart);
    op->ts = sc_now_ms();
    /* RetentionTimeMs (v2-v4): -1 = the broker's retention; a sum past
     * INT64_MAX saturates (never expires) instead of overflowing. */
    op->expire = retention < 0 ? -1
                 : retention > INT64_MAX - op->ts ? INT64_MAX
                                                   : op->ts + retention;
    sc_recbatch_init(&op->batch);
    if (!(op->blob = sc_malloc(op->blen ? op->blen : 1)) ||
        !(op->group = bk__group_strdup(gid.p, (size_t)gid.len))) {
        rc = SC_ERR_NO_MEMORY;
        goto out;
    }
    memcpy(op->blob, tstart, op->blen);
    op->glen = (size_t)gid.len;

    bk_coord_t *co = op->co;
    int16_t gerr = 0;
    bk_part_t *part = NULL;
    if (!co || !co->ready || (!req->slot && !co->offline))
        gerr = SC_ERR_COORDINATOR_NOT_AVAILABLE;
    else if ((gerr = bk__coord_error(co, gid.p, gid.len)) != 0)
        ;
    else if (!(gerr = commit_check(co, gid, gen, mid, inst)) && !co->offline &&
             (!(part = bk__part_find(req->srv, BK_OFFSETS_TOPIC, sizeof BK_OFFSETS_TOPIC - 1,
                                     offsets_partition(co, gid.p, (size_t)gid.len))) ||
              part->shard != req->conn->shard))
        gerr = SC_ERR_COORDINATOR_NOT_AVAILABLE;
    else if (!gerr && part && isr_short(co, part->partition))
        /* acks=all on an ISR below min.insync.replicas: NOT_ENOUGH_REPLICAS
         * before the append, which Kafka's storeOffsets answers as
         * COORDINATOR_NOT_AVAILABLE; nothing is written */
        gerr = SC_ERR_COORDINATOR_NOT_AVAILABLE;

    /* per partition: check, then one record each into the batch */
    twalk_blob(&wk, op->blob, op->blen, v);
    size_t k = 0, records = 0;
    sc_buf_t kb, vb;
    sc_buf_init(&kb);
    sc_buf_init(&vb);
    if (!gerr && (rc = sc_recbatch_begin(&op->batch, op->ts, -1, -1, -1)) != 0)
        goto out_bufs;
    for (int32_t t = 0; t < ntopics; t++) {
        int32_t nparts = 0, np = twalk_topic(&wk);
        sc_kstr_t name = wk.topic;
        int known = !gerr && bk_topics_find(req->srv->topics, name.p, (size_t)name.len,
                                            &nparts) == 0;
        for (int32_t i = 0; i < np; i++, k++) {
            tpart_t pt;
            twalk_part(&wk, &pt);
            int32_t idx = pt.index;
            sc_kstr_t meta = pt.meta;
            if (gerr) {
                op->errs[k] = gerr;
                continue;
            }
            if (!known || idx < 0 || idx >= nparts) {
                op->errs[k] = SC_ERR_UNKNOWN_TOPIC_OR_PARTITION;
                continue;
            }
            if (meta.len > BK_OFFSET_METADATA_MAX) {
                op->errs[k] = SC_ERR_OFFSET_METADATA_TOO_LARGE;
                continue;
            }
            sc_kw_t kw, vw;
            sc_buf_reset(&kb);
            sc_buf_reset(&vb);
            sc_kw_init(&kw, &kb);
            sc_kw_init(&vw, &vb);
            write_key(&kw, gid.p, (size_t)gid.len, name.p, (size_t)name.len, idx);
            write_value(&vw, pt.offset, pt.epoch, meta.p, meta.len < 0 ? 0 : (size_t)meta.len,
                        op->ts, op->expire);
            if (kw.err || vw.err ||
                sc_recbatch_add(&op->batch, op->ts, kb.data, (int32_t)kb.len, vb.data,
                                (int32_t)vb.len, NULL, 0)) {
                rc = SC_ERR_NO_MEMORY;
                goto out_bufs;
            }
            op->errs[k] = -2; /* pending append */
            records++;
        }
    }
    if (records == 0) {
        commit_write(op, w);
        goto out_bufs;
    }
    sc_recbatch_finish(&op->batch);
    /* the group exists while its commit is in flight: expiry skips it */
    bk_group_t *g = bk__group_get(co, gid.p, (size_t)gid.len);
    if (!g) {
        rc = SC_ERR_NO_MEMORY;
        goto out_bufs;
    }
    if (co->offline) { /* no log: the batch is built, then "committed" at once */
        commit_apply(op);
        commit_write(op, w);
        goto out_bufs;
    }
    int64_t base, leo;
    op->part = part;
    rc = st_log_append(part->log, op->batch.buf.data, op->batch.buf.len,
                       leader_epoch_of(co, part->partition), commit_done, op, &base, &leo);
    if (rc) {
        SC_WARN(SUB, "group %.*s: appending offsets to %s-%d: %s", (int)gid.len, gid.p,
                part->topic, part->partition, sc_err_str(rc));
        int16_t e = rc == SC_ERR_MESSAGE_TOO_LARGE ? SC_ERR_INVALID_COMMIT_OFFSET_SIZE
                                                   : SC_ERR_COORDINATOR_NOT_AVAILABLE;
        for (size_t i = 0; i < n; i++)
            if (op->errs[i] == -2)
                op->errs[i] = e;
        rc = 0;
        commit_write(op, w);
        goto out_bufs;
    }
    bk__part_dirty(part);
    g->inflight++;
    op->slot = req->slot;
    req->slot->op = op;
    req->slot->detach = commit_detach;
    req->async = 1;
    op = NULL; /* the append callback owns it */
out_bufs:
    sc_buf_fini(&kb);
    sc_buf_fini(&vb);
out:
    if (op)
        commit_free(op);
    return rc;
}

/* ---- appends answered once replicated ----------------------------------------------- */

/* err: 0 once the batch is committed and (cluster mode) every ISR member has
 * it; else the append's error, or NOT_LEADER_OR_FOLLOWER / REQUEST_TIMED_OUT
 * / NOT_ENOUGH_REPLICAS_AFTER_APPEND from the ISR wait. */
typedef void (*acked_cb_t)(void *arg, int err);

typedef struct {
    bk_server_t *srv;
    bk_part_t *part;
    sc_recbatch_t batch; /* built by the caller; the log's until the append callback */
    acked_cb_t cb;
    void *arg;
} acked_t;

static acked_t *acked_new(bk_coord_t *co)
{
    acked_t *a = sc_calloc(1, sizeof *a);
    if (a) {
        a->srv = co->srv;
        sc_recbatch_init(&a->batch);
    }
    return a;
}

static void acked_free(acked_t *a)
{
    sc_recbatch_fini(&a->batch);
    sc_free(a);
}

static void acked_isr_done(void *arg, int16_t err)
{
    acked_t *a = arg;
    a->cb(a->arg, err);
    acked_free(a);
}

static void acked_appended(void *arg, int rc, int64_t base, int64_t last)
{
    acked_t *a = arg;
    (void)base;
    if (rc == 0 && a->srv->cluster &&
        bk__cluster_wait_isr_cb(a->srv, a->part, last + 1,
                                sc_mono_ms() + BK_OFFSETS_COMMIT_TIMEOUT_MS, acked_isr_done, a))
        return;
    a->cb(a->arg, rc);
    acked_free(a);
}

/* Appends a's finished batch to part with acks=all semantics, as Kafka's
 * coordinator writes (offsets.commit.required.acks -1, offsets.commit.timeout.ms):
 * refused before the append with NOT_ENOUGH_REPLICAS when the ISR is below
 * min.insync.replicas. 0: cb(arg, err) runs later and a belongs to it; else
 * the error, a freed, cb not called. */
static int acked_append(bk_coord_t *co, acked_t *a, bk_part_t *part, acked_cb_t cb, void *arg)
{
    int64_t base, leo;
    int rc = isr_short(co, part->partition) ? SC_ERR_NOT_ENOUGH_REPLICAS : 0;
    a->part = part;
    a->cb = cb;
    a->arg = arg;
    if (!rc)
        rc = st_log_append(part->log, a->batch.buf.data, a->batch.buf.len,
                           leader_epoch_of(co, part->partition), acked_appended, a, &base, &leo);
    if (rc) {
        acked_free(a);
        return rc;
    }
    bk__part_dirty(part);
    return 0;
}

/* The new group coordinator's normalisation of a write's error (Kafka
 * GroupCoordinatorService: NOT_ENOUGH_REPLICAS, NOT_ENOUGH_REPLICAS_AFTER_APPEND
 * and REQUEST_TIMED_OUT are COORDINATOR_NOT_AVAILABLE; a lost leadership is
 * NOT_COORDINATOR); other append errors as sc_err_to_kafka. */
static int16_t write_error(int err)
{
    switch (err) {
    case 0:
        return 0;
    case SC_ERR_NOT_ENOUGH_REPLICAS:
    case SC_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND:
    case SC_ERR_REQUEST_TIMED_OUT:
    case SC_ERR_UNKNOWN_TOPIC_OR_PARTITION:
        return SC_ERR_COORDINATOR_NOT_AVAILABLE;
    case SC_ERR_NOT_LEADER_OR_FOLLOWER:
        return SC_ERR_NOT_COORDINATOR;
    default:
        return sc_err_to_kafka(err);
    }
}

/* ---- tombstones ------------------------------------------------------------------ */

/* kerr: 0, or the Kafka error for the client (write_error). */
typedef void (*tomb_done_t)(void *arg, int16_t kerr);

typedef struct {
    char *group;
    size_t n;
    const char *why;
    tomb_done_t done;
    void *arg;
} tomb_op_t;

static void tomb_free(tomb_op_t *op)
{
    sc_free(op->group);
    sc_free(op);
}

static void tomb_cb(void *arg, int err)
{
    tomb_op_t *op = arg;
    if (err)
        SC_WARN(SUB, "group %s: %zu %s tombstone(s) not acknowledged by the ISR: %s (the "
                     "offsets stay deleted here; a coordinator that takes over before the "
                     "followers have them still has them)",
                op->group, op->n, op->why, sc_err_str(err));
    else
        SC_DEBUG(SUB, "group %s: %zu %s tombstone(s) written", op->group, op->n, op->why);
    if (op->done)
        op->done(op->arg, write_error(err));
    tomb_free(op);
}

/* Removes g's offsets marked in del[] from the cache; from the end, so that
 * the entry moved into a freed slot has already been looked at. */
static void offs_remove(bk_group_t *g, const uint8_t *del)
{
    for (size_t i = g->noffs; i-- > 0;) {
        if (!del[i])
            continue;
        off_fini(&g->offs[i]);
        g->offs[i] = g->offs[--g->noffs];
    }
}

static void write_group_key(sc_kw_t *w, const char *group, size_t glen)
{
    sc_kw_i16(w, 2);
    sc_kw_string(w, group, glen);
}

/* Appends one batch holding a tombstone for each of g's offsets marked in
 * del[] (g->noffs entries, n marked; del may be NULL when n is 0) and, when
 * group_tomb, one for g's GroupMetadata record, to g's __consumer_offsets
 * partition, and removes the offsets from the cache at once, as Kafka does
 * (a commit arriving meanwhile is appended after the tombstones, so it wins
 * at the next load too). Written like a commit (acks=all, acked_append):
 * refused before the append with NOT_ENOUGH_REPLICAS when the ISR is short.
 * 0 with *pending = 1: done(arg, kerr) runs once the ISR has the batch (done
 * may be NULL); 0 with *pending = 0 (offline coordinator): removed, nothing
 * written, done not called; else the error, with the cache unchanged and
 * done not called. */
static int tomb_write(bk_coord_t *co, bk_group_t *g, const uint8_t *del, size_t n,
                      int group_tomb, int64_t now, const char *why, tomb_done_t done, void *arg,
                      int *pending)
{
    size_t glen = strlen(g->id);
    bk_part_t *part = bk__part_find(co->srv, BK_OFFSETS_TOPIC, sizeof BK_OFFSETS_TOPIC - 1,
                                    offsets_partition(co, g->id, glen));
    *pending = 0;
    if (co->offline) {
        if (n)
            offs_remove(g, del);
        return 0;
    }
    if (!part)
        return SC_ERR_UNKNOWN_TOPIC_OR_PARTITION;
    tomb_op_t *op = sc_calloc(1, sizeof *op);
    acked_t *a = acked_new(co);
    sc_buf_t kb;
    sc_buf_init(&kb);
    int rc = SC_ERR_NO_MEMORY;
    if (!op || !a)
        goto out;
    op->n = n;
    op->why = why;
    op->done = done;
    op->arg = arg;
    if (!(op->group = bk__group_strdup(g->id, glen)))
        goto out;
    if ((rc = sc_recbatch_begin(&a->batch, now, -1, -1, -1)) != 0)
        goto out;
    for (size_t i = 0; i < g->noffs + (group_tomb ? 1 : 0); i++) {
        if (i < g->noffs && (!del || !del[i]))
            continue;
        sc_kw_t kw;
        sc_buf_reset(&kb);
        sc_kw_init(&kw, &kb);
        if (i < g->noffs)
            write_key(&kw, g->id, glen, g->offs[i].topic, strlen(g->offs[i].topic),
                      g->offs[i].partition);
        else
            write_group_key(&kw, g->id, glen);
        if (kw.err ||
            sc_recbatch_add(&a->batch, now, kb.data, (int32_t)kb.len, NULL, -1, NULL, 0)) {
            rc = SC_ERR_NO_MEMORY;
            goto out;
        }
    }
    sc_recbatch_finish(&a->batch);
    rc = acked_append(co, a, part, tomb_cb, op);
    a = NULL; /* acked_append owns it either way */
    if (rc)
        goto out;
    op = NULL; /* the append callback owns it */
    *pending = 1;
    if (n)
        offs_remove(g, del);
out:
    if (a)
        acked_free(a);
    if (op)
        tomb_free(op);
    sc_buf_fini(&kb);
    return rc;
}

/* ---- GroupMetadata records ----------------------------------------------------- */

typedef struct {
    char *group;
    int32_t generation;
    int tomb;
    bk_store_cb_t done;
    void *arg;
} gstore_op_t;

/* Kafka's GroupMetadataManager.storeGroup mapping of the append error. */
static int16_t store_error(int err)
{
    switch (err) {
    case 0:
        return 0;
    case SC_ERR_UNKNOWN_TOPIC_OR_PARTITION:
    case SC_ERR_NOT_ENOUGH_REPLICAS:
    case SC_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND:
        return SC_ERR_COORDINATOR_NOT_AVAILABLE;
    case SC_ERR_NOT_LEADER_OR_FOLLOWER:
        return SC_ERR_NOT_COORDINATOR;
    case SC_ERR_REQUEST_TIMED_OUT:
        return SC_ERR_REBALANCE_IN_PROGRESS;
    case SC_ERR_MESSAGE_TOO_LARGE:
        return -1; /* UNKNOWN_SERVER_ERROR, as Kafka */
    default:
        return sc_err_to_kafka(err);
    }
}

static void gstore_free(gstore_op_t *op)
{
    sc_free(op->group);
    sc_free(op);
}

static void gstore_cb(void *arg, int err)
{
    gstore_op_t *op = arg;
    if (err)
        SC_WARN(SUB, "group %s: writing its %s (generation %d) failed: %s", op->group,
                op->tomb ? "GroupMetadata tombstone" : "GroupMetadata record", op->generation,
                sc_err_str(err));
    else
        SC_DEBUG(SUB, "group %s: %s of generation %d written", op->group,
                 op->tomb ? "GroupMetadata tombstone" : "GroupMetadata record", op->generation);
    if (op->done)
        op->done(op->arg, store_error(err));
    gstore_free(op);
}

int bk__offsets_store_group(bk_coord_t *co, bk_group_t *g, int tomb, bk_store_cb_t done,
                            void *arg, int16_t *kerr)
{
    size_t glen = strlen(g->id);
    *kerr = 0;
    if (co->offline)
        return 0;
    bk_part_t *part = bk__part_find(co->srv, BK_OFFSETS_TOPIC, sizeof BK_OFFSETS_TOPIC - 1,
                                    offsets_partition(co, g->id, glen));
    if (!part) {
        *kerr = store_error(SC_ERR_UNKNOWN_TOPIC_OR_PARTITION);
        return 0;
    }
    int64_t now = sc_now_ms();
    gstore_op_t *op = sc_calloc(1, sizeof *op);
    acked_t *a = acked_new(co);
    sc_buf_t kb, vb;
    sc_buf_init(&kb);
    sc_buf_init(&vb);
    int rc = SC_ERR_NO_MEMORY;
    if (!op || !a || !(op->group = bk__group_strdup(g->id, glen)))
        goto out;
    op->generation = g->generation;
    op->tomb = tomb;
    op->done = done;
    op->arg = arg;
    sc_kw_t kw, vw;
    sc_kw_init(&kw, &kb);
    sc_kw_init(&vw, &vb);
    write_group_key(&kw, g->id, glen);
    if (!tomb)
        bk__group_write_value(g, &vw, now);
    if (kw.err || vw.err || (rc = sc_recbatch_begin(&a->batch, now, -1, -1, -1)) != 0 ||
        (rc = sc_recbatch_add(&a->batch, now, kb.data, (int32_t)kb.len,
                              tomb ? NULL : vb.data, tomb ? -1 : (int32_t)vb.len, NULL, 0)) !=
            0) {
        rc = rc ? rc : SC_ERR_NO_MEMORY;
        goto out;
    }
    sc_recbatch_finish(&a->batch);
    rc = acked_append(co, a, part, gstore_cb, op);
    a = NULL; /* acked_append owns it either way */
    if (!rc)
        op = NULL; /* the append callback owns it */
out:
    sc_buf_fini(&kb);
    sc_buf_fini(&vb);
    if (a)
        acked_free(a);
    if (op)
        gstore_free(op);
    if (rc) {
        SC_WARN(SUB, "group %s: appending its GroupMetadata %s: %s", g->id,
                tomb ? "tombstone" : "record", sc_err_str(rc));
        *kerr = store_error(rc);
        return 0;
    }
    return 1;
}

/* ---- expiry ------------------------------------------------------------------------ */

/* Kafka 3.7 GroupMetadata.removeExpiredOffsets. An offset with an expire
 * timestamp (value v1) expires at it; otherwise after offsets.retention
 * counted from
 *   - Empty: when the group became Empty (its GroupMetadata record's
 *     timestamp after a load), or from the commit when the group never had
 *     members or its record has no timestamp (Kafka's "no protocol type" and
 *     old-schema cases);
 *   - Stable "consumer" group with known subscriptions: the commit, and only
 *     for topics no member subscribes to any more (subscribed ones never
 *     expire while the group is Stable). */
static int off_expired(const bk_group_t *g, const bk_offset_t *o, int64_t now, int64_t retention)
{
    int stable = g->state == BK_GROUP_STABLE;
    if (stable && bk__group_subscribed(g, o->topic, strlen(o->topic)))
        return 0;
    if (o->expire_ts >= 0)
        return now >= o->expire_ts;
    int64_t base = !stable && g->protocol_type && g->empty_since > 0 ? g->empty_since
                                                                     : o->commit_ts;
    return now - base >= retention;
}

static void expire_group(bk_coord_t *co, bk_group_t *g, int64_t now, int64_t retention)
{
    size_t n = 0;
    uint8_t *del = sc_calloc(g->noffs, 1);
    if (!del) {
        SC_WARN(SUB, "group %s: no memory to expire offsets; kept until the next check", g->id);
        return;
    }
    for (size_t i = 0; i < g->noffs; i++)
        n += del[i] = (uint8_t)off_expired(g, &g->offs[i], now, retention);
    if (n) {
        int pending;
        int rc = tomb_write(co, g, del, n, 0, now, "expiry", NULL, NULL, &pending);
        if (rc)
            SC_WARN(SUB, "group %s: expiring %zu offset(s): %s; kept until the next check", g->id,
                    n, sc_err_str(rc));
        else
            SC_INFO(SUB, "group %s: %zu committed offset(s) expired%s", g->id, n,
                    g->state == BK_GROUP_STABLE ? " (topics the group no longer subscribes to)"
                                                : "");
    }
    sc_free(del);
}

void bk__offsets_expire(bk_coord_t *co, int64_t now)
{
    if (!co->ready)
        return;
    int64_t retention = (int64_t)co->srv->cfg->offsets_retention_minutes * 60000;
    for (bk_group_t *g = co->groups; g; g = g->next)
        if ((g->state == BK_GROUP_EMPTY || (g->state == BK_GROUP_STABLE && g->subs_known)) &&
            !g->inflight && g->noffs)
            expire_group(co, g, now, retention);
}

/* ---- DeleteGroups ------------------------------------------------------------------ */

typedef struct delgrp_op delgrp_op_t;

typedef struct {
    delgrp_op_t *op;
    int32_t idx;
} delgrp_ctx_t;

struct delgrp_op {
    bk_slot_t *slot; /* NULL once the connection closed */
    int16_t version;
    int32_t n;
    int pending; /* tombstone appends not completed */
    uint8_t *blob; /* the request's group ids array, copied */
    size_t blen;
    delgrp_ctx_t *ctx;
    int16_t errs[];
};

static void delgrp_write(const delgrp_op_t *op, sc_kw_t *w)
{
    sc_rd_t r;
    sc_rd_init(&r, op->blob, op->blen);
    sc_kw_i32(w, 0); /* throttle_time_ms */
    sc_kw_array_len(w, op->n);
    for (int32_t i = 0; i < op->n; i++) {
        sc_kstr_t id;
        sc_kr_string(&r, 0, &id);
        sc_kw_string(w, id.p, (size_t)id.len);
        sc_kw_i16(w, op->errs[i]);
    }
}

static void delgrp_free(delgrp_op_t *op)
{
    sc_free(op->ctx);
    sc_free(op->blob);
    sc_free(op);
}

/* Writes the response of an asynchronous op into its parked slot. */
static void slot_respond(bk_slot_t *s, void (*fn)(const void *, sc_kw_t *), const void *op)
{
    sc_kw_t w;
    sc_kw_init(&w, &s->buf);
    fn(op, &w);
    s->op = NULL;
    s->detach = NULL;
    if (w.err) {
        SC_WARN(SUB, "out of memory building a group response; closing the connection");
        bk__conn_close(s->conn);
        return;
    }
    sc_kw_patch_i32(&w, 0, (int32_t)(s->buf.len - 4));
    bk__slot_complete(s);
}

static void delgrp_write_v(const void *op, sc_kw_t *w) { delgrp_write(op, w); }

static void delgrp_detach(bk_slot_t *s)
{
    delgrp_op_t *op = s->op;
    op->slot = NULL;
}

static void delgrp_done(void *arg, int16_t kerr)
{
    delgrp_ctx_t *c = arg;
    delgrp_op_t *op = c->op;
    if (kerr)
        op->errs[c->idx] = kerr;
    if (--op->pending > 0)
        return;
    if (op->slot)
        slot_respond(op->slot, delgrp_write_v, op);
    delgrp_free(op);
}

/* Kafka 3.7 GroupCoordinator.handleDeleteGroups: only Empty groups; their
 * offsets get tombstones and the group is gone. A group with an OffsetCommit
 * still being appended answers COORDINATOR_LOAD_IN_PROGRESS (retriable)
 * rather than racing it. Answered once the tombstones are durable. */
int bk__h_delete_groups(bk_req_t *req, sc_kw_t *w)
{
    int v = req->hdr.api_version;
    sc_rd_t *r = &req->body;
    int32_t n;
    sc_kr_array_len(r, 0, 2, &n);
    const uint8_t *start = r->p;
    for (int32_t i = 0; i < n && !r->err; i++) {
        sc_kstr_t id;
        sc_kr_string(r, 0, &id);
    }
    if (r->err)
        return r->err;
    delgrp_op_t *op = sc_calloc(1, sizeof *op + (size_t)(n ? n : 1) * sizeof op->errs[0]);
    if (!op)
        return SC_ERR_NO_MEMORY;
    op->version = (int16_t)v;
    op->n = n;
    op->blen = (size_t)(r->p - start);
    op->ctx = sc_calloc((size_t)(n ? n : 1), sizeof *op->ctx);
    op->blob = sc_malloc(op->blen ? op->blen : 1);
    if (!op->ctx || !op->blob) {
        delgrp_free(op);
        return SC_ERR_NO_MEMORY;
    }
    memcpy(op->blob, start, op->blen);
    bk_coord_t *co = req->srv->coord;
    int64_t now = sc_now_ms();
    sc_rd_t ids;
    sc_rd_init(&ids, op->blob, op->blen);
    op->pending = 1; /* this function's own reference */
    for (int32_t i = 0; i < n; i++) {
        sc_kstr_t id;
        sc_kr_string(&ids, 0, &id);
        bk_group_t *g = NULL;
        int16_t e = 0;
        if (!co || !co->ready || (!req->slot && !co->offline))
            e = SC_ERR_COORDINATOR_NOT_AVAILABLE;
        else if (id.len == 0)
            e = SC_ERR_INVALID_GROUP_ID;
        else if ((e = bk__coord_error(co, id.p, id.len)) != 0)
            ;
        else if (!(g = bk__group_find(co, id.p, (size_t)id.len)) || g->state == BK_GROUP_DEAD)
            e = BK_ERR_GROUP_ID_NOT_FOUND;
        else if (g->state != BK_GROUP_EMPTY)
            e = BK_ERR_NON_EMPTY_GROUP;
        else if (g->inflight)
            e = SC_ERR_COORDINATOR_LOAD_IN_PROGRESS;
        if (!e && (g->noffs || g->generation > 0)) {
            /* tombstones for the offsets and for the GroupMetadata record a
             * group that ever had a generation may have */
            uint8_t *del = sc_malloc(g->noffs ? g->noffs : 1);
            if (!del) {
                e = sc_err_to_kafka(SC_ERR_NO_MEMORY);
            } else {
                memset(del, 1, g->noffs ? g->noffs : 1);
                op->ctx[i] = (delgrp_ctx_t){op, i};
                int pending;
                int rc = tomb_write(co, g, del, g->noffs, g->generation > 0, now,
                                    "DeleteGroups", delgrp_done, &op->ctx[i], &pending);
                sc_free(del);
                if (rc)
                    e = write_error(rc);
                else
                    op->pending += pending;
            }
        }
        if (!e) {
            SC_INFO(SUB, "group %s deleted (DeleteGroups)", g->id);
            bk__group_delete(co, g);
        }
        op->errs[i] = e;
    }
    if (op->pending == 1) { /* nothing written: answer now */
        delgrp_write(op, w);
        delgrp_free(op);
        return 0;
    }
    op->pending--;
    op->slot = req->slot;
    req->slot->op = op;
    req->slot->detach = delgrp_detach;
    req->async = 1;
    return 0;
}

/* ---- OffsetDelete ------------------------------------------------------------------ */

typedef struct {
    bk_slot_t *slot;
    int16_t top;
    int32_t ntopics;
    uint8_t *blob; /* the request's topics array, copied */
    size_t blen;
    size_t n;
    int16_t errs[];
} offdel_op_t;

static void offdel_write(const void *arg, sc_kw_t *w)
{
    const offdel_op_t *op = arg;
    sc_kw_i16(w, op->top);
    sc_kw_i32(w, 0); /* throttle_time_ms */
    if (op->top) { /* Kafka: the error alone, no topics */
        sc_kw_array_len(w, 0);
        return;
    }
    twalk_t wk;
    size_t k = 0;
    twalk_blob(&wk, op->blob, op->blen, -1);
    sc_kw_array_len(w, op->ntopics);
    for (int32_t t = 0; t < op->ntopics; t++) {
        int32_t np = twalk_topic(&wk);
        sc_kw_string(w, wk.topic.p, (size_t)wk.topic.len);
        sc_kw_array_len(w, np);
        for (int32_t i = 0; i < np; i++, k++) {
            tpart_t pt;
            twalk_part(&wk, &pt);
            sc_kw_i32(w, pt.index);
            sc_kw_i16(w, op->errs[k]);
        }
    }
}

static void offdel_detach(bk_slot_t *s)
{
    offdel_op_t *op = s->op;
    op->slot = NULL;
}

static void offdel_free(offdel_op_t *op)
{
    sc_free(op->blob);
    sc_free(op);
}

static void offdel_done(void *arg, int16_t kerr)
{
    offdel_op_t *op = arg;
    if (kerr)
        for (size_t k = 0; k < op->n; k++)
            if (op->errs[k] == 0)
                op->errs[k] = kerr;
    if (op->slot)
        slot_respond(op->slot, offdel_write, op);
    offdel_free(op);
}

/* Kafka 3.7 handleDeleteOffsets: an Empty group loses any of the offsets; a
 * "consumer" group with members only those of topics it does not subscribe
 * to (GROUP_SUBSCRIBED_TO_TOPIC for the others); any other group with
 * members is NON_EMPTY_GROUP. Unknown topics / partitions are
 * UNKNOWN_TOPIC_OR_PARTITION (KafkaApis checks them first). Answered once the
 * tombstones are durable (cluster mode: on the ISR). */
int bk__h_offset_delete(bk_req_t *req, sc_kw_t *w)
{
    sc_rd_t *r = &req->body;
    sc_kstr_t gid;
    int32_t ntopics;
    size_t n = 0;
    sc_kr_string(r, 0, &gid);
    sc_kr_array_len(r, 0, 6, &ntopics);
    const uint8_t *start = r->p;
    twalk_t wk;
    twalk_init(&wk, r, -1);
    for (int32_t t = 0; t < ntopics && !wk.r.err; t++) {
        int32_t np = twalk_topic(&wk);
        for (int32_t i = 0; i < np && !wk.r.err; i++, n++) {
            tpart_t pt;
            twalk_part(&wk, &pt);
        }
    }
    *r = wk.r;
    if (r->err)
        return r->err;
    offdel_op_t *op = sc_calloc(1, sizeof *op + (n ? n : 1) * sizeof op->errs[0]);
    if (!op)
        return SC_ERR_NO_MEMORY;
    op->ntopics = ntopics;
    op->n = n;
    op->blen = (size_t)(r->p - start);
    if (!(op->blob = sc_malloc(op->blen ? op->blen : 1))) {
        offdel_free(op);
        return SC_ERR_NO_MEMORY;
    }
    memcpy(op->blob, start, op->blen);

    bk_coord_t *co = req->srv->coord;
    bk_group_t *g = NULL;
    if (!co || !co->ready || (!req->slot && !co->offline))
        op->top = SC_ERR_COORDINATOR_NOT_AVAILABLE;
    else if (gid.len == 0)
        op->top = SC_ERR_INVALID_GROUP_ID;
    else if ((op->top = bk__coord_error(co, gid.p, gid.len)) != 0)
        ;
    else if (!(g = bk__group_find(co, gid.p, (size_t)gid.len)) || g->state == BK_GROUP_DEAD)
        op->top = BK_ERR_GROUP_ID_NOT_FOUND;
    else if (g->state != BK_GROUP_EMPTY &&
             (!g->protocol_type || strcmp(g->protocol_type, "consumer") != 0))
        op->top = BK_ERR_NON_EMPTY_GROUP;
    else if (g->inflight)
        op->top = SC_ERR_COORDINATOR_LOAD_IN_PROGRESS;
    uint8_t *del = NULL;
    size_t ndel = 0;
    if (!op->top && g->noffs && !(del = sc_calloc(g->noffs, 1))) {
        offdel_free(op);
        return SC_ERR_NO_MEMORY;
    }
    twalk_blob(&wk, op->blob, op->blen, -1);
    size_t k = 0;
    for (int32_t t = 0; !op->top && t < ntopics; t++) {
        int32_t nparts = 0, np = twalk_topic(&wk);
        sc_kstr_t name = wk.topic;
        int known = bk_topics_find(req->srv->topics, name.p, (size_t)name.len, &nparts) == 0;
        int subscribed = g->state != BK_GROUP_EMPTY &&
                         bk__group_subscribed(g, name.p, (size_t)name.len);
        for (int32_t i = 0; i < np; i++, k++) {
            tpart_t pt;
            twalk_part(&wk, &pt);
            int32_t idx = pt.index;
            if (!known || idx < 0 || idx >= nparts) {
                op->errs[k] = SC_ERR_UNKNOWN_TOPIC_OR_PARTITION;
                continue;
            }
            if (subscribed) {
                op->errs[k] = BK_ERR_GROUP_SUBSCRIBED_TO_TOPIC;
                continue;
            }
            for (size_t x = 0; x < g->noffs; x++)
                if (!del[x] && g->offs[x].partition == idx &&
                    str_eq_n(g->offs[x].topic, name.p, (size_t)name.len)) {
                    del[x] = 1;
                    ndel++;
                }
        }
    }
    int rc = 0, pending = 0;
    if (ndel) {
        /* Kafka: an Empty group left without offsets is Dead: its
         * GroupMetadata record gets a tombstone in the same batch */
        int dies = g->state == BK_GROUP_EMPTY && ndel == g->noffs && !g->pending &&
                   !g->inflight && g->generation > 0;
        rc = tomb_write(co, g, del, ndel, dies, sc_now_ms(), "OffsetDelete", offdel_done, op,
                        &pending);
        if (rc) {
            SC_WARN(SUB, "group %s: OffsetDelete of %zu offset(s): %s", g->id, ndel,
                    sc_err_str(rc));
            for (size_t x = 0; x < n; x++)
                if (op->errs[x] == 0)
                    op->errs[x] = write_error(rc);
        }
    }
    sc_free(del);
    if (g && !op->top && g->state == BK_GROUP_EMPTY && !g->noffs && !g->pending && !g->inflight) {
        SC_DEBUG(SUB, "group %s: empty with no committed offsets left; removed", g->id);
        bk__group_delete(co, g); /* Kafka: Empty without offsets -> Dead */
    }
    if (!pending) { /* nothing written, failed, or offline */
        offdel_write(op, w);
        offdel_free(op);
        return 0;
    }
    op->slot = req->slot;
    req->slot->op = op;
    req->slot->detach = offdel_detach;
    req->async = 1;
    return 0;
}

/* ---- OffsetFetch --------------------------------------------------------------------- */

static void fetch_partition(sc_kw_t *w, int v, int32_t idx, const bk_offset_t *o, int16_t err)
{
    sc_kw_i32(w, idx);
    sc_kw_i64(w, o && !err ? o->offset : -1);
    if (v >= 5)
        sc_kw_i32(w, o && !err ? o->leader_epoch : -1);
    sc_kw_cstr(w, 0, o && !err ? o->metadata : "");
    sc_kw_i16(w, err);
}

int bk__h_offset_fetch(bk_req_t *req, sc_kw_t *w)
{
    int v = req->hdr.api_version;
    sc_rd_t *r = &req->body;
    sc_kstr_t gid;
    int32_t ntopics;
    sc_kr_string(r, 0, &gid);
    sc_kr_array_len(r, v >= 2, 6, &ntopics);
    sc_rd_t topics = *r;
    twalk_t wk;
    twalk_init(&wk, r, -1);
    for (int32_t t = 0; t < ntopics && !wk.r.err; t++) {
        int32_t np = twalk_topic(&wk);
        for (int32_t i = 0; i < np && !wk.r.err; i++) {
            tpart_t pt;
            twalk_part(&wk, &pt);
        }
    }
    *r = wk.r;
    if (r->err)
        return r->err;
    bk_coord_t *co = req->srv->coord;
    int16_t gerr = !co || !co->ready ? SC_ERR_COORDINATOR_NOT_AVAILABLE
                                     : bk__coord_error(co, gid.p, gid.len);
    bk_group_t *g = gerr ? NULL : bk__group_find(co, gid.p, (size_t)gid.len);

    if (v >= 3)
        sc_kw_i32(w, 0);
    if (ntopics >= 0) {
        sc_kw_array_len(w, ntopics);
        twalk_init(&wk, &topics, -1);
        for (int32_t t = 0; t < ntopics; t++) {
            int32_t np = twalk_topic(&wk);
            sc_kstr_t name = wk.topic;
            sc_kw_string(w, name.p, (size_t)name.len);
            sc_kw_array_len(w, np);
            for (int32_t i = 0; i < np; i++) {
                tpart_t pt;
                twalk_part(&wk, &pt);
                const bk_offset_t *o = g ? off_find(g, name.p, (size_t)name.len, pt.index) : NULL;
                fetch_partition(w, v, pt.index, o, v >= 2 ? 0 : gerr);
            }
        }
    } else if (!g) {
        sc_kw_array_len(w, 0);
    } else {
        /* every committed offset of the group, grouped by topic */
        size_t at = sc_kw_reserve_i32(w);
        int32_t nt = 0;
        for (size_t i = 0; i < g->noffs; i++) {
            const char *tn = g->offs[i].topic;
            int seen = 0;
            for (size_t j = 0; j < i && !seen; j++)
                seen = strcmp(g->offs[j].topic, tn) == 0;
            if (seen)
                continue;
            nt++;
            sc_kw_cstr(w, 0, tn);
            size_t pat = sc_kw_reserve_i32(w);
            int32_t np = 0;
            for (size_t j = i; j < g->noffs; j++) {
                if (strcmp(g->offs[j].topic, tn) != 0)
                    continue;
                fetch_partition(w, v, g->offs[j].partition, &g->offs[j], 0);
                np++;
            }
            sc_kw_patch_i32(w, pat, np);
        }
        sc_kw_patch_i32(w, at, nt);
    }
    if (v >= 2)
        sc_kw_i16(w, gerr);
    return 0;
}
