/*
 * rp_meta_codec -- the metadata image <-> bytes, the only file that includes
 * the generated protobuf-c header (proto/metadata.proto), so generated names
 * stay out of module APIs.
 *
 * Framed format (all integers big-endian):
 *
 *   offset size  field
 *   0      4     magic "STMD"
 *   4      4     file version (RP_META_FILE_VERSION = 1)
 *   8      4     payload length N
 *   12     4     CRC-32C of the payload
 *   16     N     strata.meta.ClusterMetadata (protobuf)
 *
 * and nothing after the payload. A protobuf parser accepts many random byte
 * strings, so the length + CRC are what detect a torn or corrupted file; the
 * decoder then checks every invariant the rest of the broker relies on
 * (names 1..249 chars and unique, 16-byte topic ids, partitions >= 1,
 * 1 <= replication factor <= 32767, config keys non-empty and unique, a
 * non-empty cluster id, next_producer_id >= 0). Any failure is
 * SC_ERR_BAD_FORMAT with a reason; nothing is ever "repaired".
 *
 * Pure functions; any thread.
 */
#include "rp_meta_int.h"

#include "metadata.pb-c.h"
#include "sc_crc32c.h"
#include "sc_endian.h"
#include "sc_err.h"
#include "sc_mem.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* protobuf-c allocations go through sc_mem too (tests can fail them). data
 * points at a flag set when one fails: unpack returns NULL for both bad bytes
 * and no memory, and only the first is corruption. */
static void *pb_alloc(void *data, size_t size)
{
    void *p = sc_malloc(size ? size : 1);
    if (!p && data)
        *(int *)data = 1;
    return p;
}

static void pb_free(void *data, void *p)
{
    (void)data;
    sc_free(p);
}


int rp__meta_encode(const rp__image_t *img, sc_buf_t *out)
{
    int rc = 0;
    size_t nkv = 0;
    for (size_t i = 0; i < img->ntopics; i++)
        nkv += img->topics[i]->nconfigs;

    Strata__Meta__Topic *topics = sc_calloc(img->ntopics ? img->ntopics : 1, sizeof *topics);
    Strata__Meta__Topic **tptr = sc_calloc(img->ntopics ? img->ntopics : 1, sizeof *tptr);
    Strata__Meta__ConfigEntry *kvs = sc_calloc(nkv ? nkv : 1, sizeof *kvs);
    Strata__Meta__ConfigEntry **kvptr = sc_calloc(nkv ? nkv : 1, sizeof *kvptr);
    if (!topics || !tptr || !kvs || !kvptr) {
        rc = SC_ERR_NO_MEMORY;
        goto out;
    }
    size_t k = 0;
    for (size_t i = 0; i < img->ntopics; i++) {
        const rp_meta_topic_t *t = img->topics[i];
        Strata__Meta__Topic *pt = &topics[i];
        strata__meta__topic__init(pt);
        pt->name = (char *)t->name;
        pt->topic_id.data = (uint8_t *)t->id;
        pt->topic_id.len = sizeof t->id;
        pt->partitions = t->partitions;
        pt->replication_factor = t->replication_factor;
        pt->n_configs = t->nconfigs;
        pt->configs = &kvptr[k];
        for (size_t j = 0; j < t->nconfigs; j++, k++) {
            strata__meta__config_entry__init(&kvs[k]);
            kvs[k].key = (char *)t->configs[j].key;
            kvs[k].value = (char *)t->configs[j].value;
            kvptr[k] = &kvs[k];
        }
        tptr[i] = pt;
    }
    Strata__Meta__ClusterMetadata msg;
    strata__meta__cluster_metadata__init(&msg);
    msg.format_version = RP_META_FILE_VERSION;
    msg.cluster_id = (char *)img->cluster_id;
    msg.n_topics = img->ntopics;
    msg.topics = tptr;
    msg.next_producer_id = img->next_producer_id;

    size_t n = strata__meta__cluster_metadata__get_packed_size(&msg);
    if (n > UINT32_MAX) {
        rc = SC_ERR_INVALID_REQUEST;
        goto out;
    }
    if ((rc = sc_buf_reserve(out, RP_META_HDR_SIZE + n)) != 0)
        goto out;
    uint8_t *hdr = out->data + out->len;
    uint8_t *payload = hdr + RP_META_HDR_SIZE;
    size_t packed = strata__meta__cluster_metadata__pack(&msg, payload);
    memcpy(hdr, RP_META_MAGIC, 4);
    sc_store_be32(hdr + 4, RP_META_FILE_VERSION);
    sc_store_be32(hdr + 8, (uint32_t)packed);
    sc_store_be32(hdr + 12, sc_crc32c(0, payload, packed));
    out->len += RP_META_HDR_SIZE + packed;
out:
    sc_free(kvptr);
    sc_free(kvs);
    sc_free(tptr);
    sc_free(topics);
    return rc;
}

static int bad(char *why, size_t whylen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int bad(char *why, size_t whylen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, whylen, fmt, ap);
    va_end(ap);
    return SC_ERR_BAD_FORMAT;
}

/* Converts one decoded topic; checks its invariants. */
static int topic_from_pb(const Strata__Meta__Topic *pt, rp_meta_topic_t **out, char *why,
                         size_t whylen)
{
    size_t len = pt->name ? strlen(pt->name) : 0;
    if (len == 0 || len > RP_META_TOPIC_NAME_MAX)
        return bad(why, whylen, "topic with an empty or over-long name");
    if (pt->topic_id.len != 16)
        return bad(why, whylen, "topic %s: topic id of %zu bytes", pt->name, pt->topic_id.len);
    if (pt->partitions < 1)
        return bad(why, whylen, "topic %s: %d partitions", pt->name, pt->partitions);
    if (pt->replication_factor < 1 || pt->replication_factor > INT16_MAX)
        return bad(why, whylen, "topic %s: replication factor %d", pt->name,
                   pt->replication_factor);
    for (size_t i = 0; i < pt->n_configs; i++) {
        const Strata__Meta__ConfigEntry *e = pt->configs[i];
        if (!e->key || !*e->key || !e->value)
            return bad(why, whylen, "topic %s: config entry %zu has no key", pt->name, i);
        for (size_t j = 0; j < i; j++)
            if (strcmp(pt->configs[j]->key, e->key) == 0)
                return bad(why, whylen, "topic %s: config %s twice", pt->name, e->key);
    }
    rp_meta_topic_t *t = sc_calloc(1, sizeof *t);
    rp_meta_kv_t *kv = pt->n_configs ? sc_calloc(pt->n_configs, sizeof *kv) : NULL;
    if (!t || (pt->n_configs && !kv)) {
        sc_free(t);
        sc_free(kv);
        return SC_ERR_NO_MEMORY;
    }
    t->configs = kv;
    t->nconfigs = pt->n_configs;
    t->partitions = pt->partitions;
    t->replication_factor = (int16_t)pt->replication_factor;
    memcpy(t->id, pt->topic_id.data, 16);
    int oom = !(t->name = sc_strdup(pt->name));
    for (size_t i = 0; i < pt->n_configs; i++) {
        kv[i].key = sc_strdup(pt->configs[i]->key);
        kv[i].value = sc_strdup(pt->configs[i]->value);
        oom |= !kv[i].key || !kv[i].value;
    }
    if (oom) {
        rp__topic_free(t);
        return SC_ERR_NO_MEMORY;
    }
    *out = t;
    return 0;
}

int rp__meta_decode(const uint8_t *p, size_t n, rp__image_t *img, char *why, size_t whylen)
{
    int rc = 0;
    Strata__Meta__ClusterMetadata *msg = NULL;
    rp__image_t im = {0};
    int oom = 0;
    ProtobufCAllocator pb_allocator = {.alloc = pb_alloc, .free = pb_free, .allocator_data = &oom};

    if (n < RP_META_HDR_SIZE)
        return bad(why, whylen, "%zu bytes, shorter than the %d-byte header", n, RP_META_HDR_SIZE);
    if (memcmp(p, RP_META_MAGIC, 4) != 0)
        return bad(why, whylen, "bad magic (not a Strata metadata file)");
    uint32_t version = sc_load_be32(p + 4);
    uint32_t len = sc_load_be32(p + 8);
    uint32_t crc = sc_load_be32(p + 12);
    if (version != RP_META_FILE_VERSION)
        return bad(why, whylen, "file version %u, this build reads %d", version,
                   RP_META_FILE_VERSION);
    if (len != n - RP_META_HDR_SIZE)
        return bad(why, whylen, "payload length %u but %zu bytes follow the header", len,
                   n - RP_META_HDR_SIZE);
    const uint8_t *payload = p + RP_META_HDR_SIZE;
    uint32_t actual = sc_crc32c(0, payload, len);
    if (actual != crc)
        return bad(why, whylen, "CRC-32C mismatch (stored %08x, computed %08x)", crc, actual);

    msg = strata__meta__cluster_metadata__unpack(&pb_allocator, len, payload);
    if (!msg) {
        rc = oom ? SC_ERR_NO_MEMORY : bad(why, whylen, "protobuf payload does not decode");
        goto out;
    }
    if (msg->format_version != RP_META_FILE_VERSION) {
        rc = bad(why, whylen, "format_version %u", msg->format_version);
        goto out;
    }
    size_t cl = msg->cluster_id ? strlen(msg->cluster_id) : 0;
    if (cl == 0 || cl > RP_META_CLUSTER_ID_MAX) {
        rc = bad(why, whylen, "missing or over-long cluster id");
        goto out;
    }
    memcpy(im.cluster_id, msg->cluster_id, cl + 1);
    if (msg->next_producer_id < 0) {
        rc = bad(why, whylen, "next_producer_id %lld", (long long)msg->next_producer_id);
        goto out;
    }
    im.next_producer_id = msg->next_producer_id;
    if (msg->n_topics) {
        im.topics = sc_calloc(msg->n_topics, sizeof *im.topics);
        if (!im.topics) {
            rc = SC_ERR_NO_MEMORY;
            goto out;
        }
    }
    for (size_t i = 0; i < msg->n_topics; i++) {
        for (size_t j = 0; j < i; j++) {
            if (msg->topics[i]->name && strcmp(msg->topics[j]->name, msg->topics[i]->name) == 0) {
                rc = bad(why, whylen, "topic %s listed twice", msg->topics[i]->name);
                goto out;
            }
        }
        if ((rc = topic_from_pb(msg->topics[i], &im.topics[i], why, whylen)) != 0)
            goto out;
        im.ntopics++;
    }
    *img = im;
    im.topics = NULL;
    im.ntopics = 0;
out:
    rp__image_fini(&im);
    if (msg)
        strata__meta__cluster_metadata__free_unpacked(msg, &pb_allocator);
    return rc;
}

/* ---- single records of the zookeeper backend (rp_zk.c) --------------------- */

#define PACK_INTO(out, msgp, fn)                                                                 \
    do {                                                                                         \
        size_t n_ = fn##__get_packed_size(msgp);                                                 \
        int rc_ = sc_buf_reserve(out, n_);                                                       \
        if (rc_)                                                                                 \
            return rc_;                                                                          \
        out->len += fn##__pack(msgp, out->data + out->len);                                      \
        return 0;                                                                                \
    } while (0)

int rp__topic_pack(const rp_meta_topic_t *t, sc_buf_t *out)
{
    Strata__Meta__Topic pt;
    strata__meta__topic__init(&pt);
    Strata__Meta__ConfigEntry *kvs = sc_calloc(t->nconfigs ? t->nconfigs : 1, sizeof *kvs);
    Strata__Meta__ConfigEntry **kvptr = sc_calloc(t->nconfigs ? t->nconfigs : 1, sizeof *kvptr);
    int rc = 0;
    if (!kvs || !kvptr) {
        rc = SC_ERR_NO_MEMORY;
        goto out;
    }
    pt.name = (char *)t->name;
    pt.topic_id.data = (uint8_t *)t->id;
    pt.topic_id.len = sizeof t->id;
    pt.partitions = t->partitions;
    pt.replication_factor = t->replication_factor;
    pt.n_configs = t->nconfigs;
    pt.configs = kvptr;
    for (size_t j = 0; j < t->nconfigs; j++) {
        strata__meta__config_entry__init(&kvs[j]);
        kvs[j].key = (char *)t->configs[j].key;
        kvs[j].value = (char *)t->configs[j].value;
        kvptr[j] = &kvs[j];
    }
    size_t n = strata__meta__topic__get_packed_size(&pt);
    if ((rc = sc_buf_reserve(out, n)) != 0)
        goto out;
    out->len += strata__meta__topic__pack(&pt, out->data + out->len);
out:
    sc_free(kvs);
    sc_free(kvptr);
    return rc;
}

int rp__topic_unpack(const uint8_t *p, size_t n, rp_meta_topic_t **out, char *why, size_t whylen)
{
    int oom = 0;
    ProtobufCAllocator a = {.alloc = pb_alloc, .free = pb_free, .allocator_data = &oom};
    Strata__Meta__Topic *pt = strata__meta__topic__unpack(&a, n, p);
    if (!pt)
        return oom ? SC_ERR_NO_MEMORY : bad(why, whylen, "Topic record does not decode");
    int rc = topic_from_pb(pt, out, why, whylen);
    strata__meta__topic__free_unpacked(pt, &a);
    return rc;
}

int rp__cluster_id_pack(const char *id, sc_buf_t *out)
{
    Strata__Meta__ClusterId m;
    strata__meta__cluster_id__init(&m);
    m.id = (char *)id;
    PACK_INTO(out, &m, strata__meta__cluster_id);
}

int rp__cluster_id_unpack(const uint8_t *p, size_t n, char *id, size_t idlen)
{
    Strata__Meta__ClusterId *m = strata__meta__cluster_id__unpack(NULL, n, p);
    if (!m)
        return SC_ERR_BAD_FORMAT;
    int rc = 0;
    size_t l = m->id ? strlen(m->id) : 0;
    if (l == 0 || l >= idlen)
        rc = SC_ERR_BAD_FORMAT;
    else
        memcpy(id, m->id, l + 1);
    strata__meta__cluster_id__free_unpacked(m, NULL);
    return rc;
}

int rp__broker_pack(const rp_broker_t *b, const char *host, int32_t port, sc_buf_t *out)
{
    Strata__Meta__BrokerRegistration m;
    strata__meta__broker_registration__init(&m);
    m.id = b->id;
    m.host = (char *)host;
    m.port = port;
    m.rack = (char *)b->rack;
    PACK_INTO(out, &m, strata__meta__broker_registration);
}

int rp__broker_unpack(const uint8_t *p, size_t n, rp_broker_t *b, char *host, size_t hostlen,
                      int32_t *port)
{
    Strata__Meta__BrokerRegistration *m = strata__meta__broker_registration__unpack(NULL, n, p);
    if (!m)
        return SC_ERR_BAD_FORMAT;
    b->id = m->id;
    snprintf(b->rack, sizeof b->rack, "%s", m->rack ? m->rack : "");
    snprintf(host, hostlen, "%s", m->host ? m->host : "");
    *port = m->port;
    strata__meta__broker_registration__free_unpacked(m, NULL);
    return 0;
}

int rp__controller_pack(int32_t broker_id, int32_t epoch, sc_buf_t *out)
{
    Strata__Meta__ControllerRecord m;
    strata__meta__controller_record__init(&m);
    m.broker_id = broker_id;
    m.epoch = epoch;
    PACK_INTO(out, &m, strata__meta__controller_record);
}

int rp__controller_unpack(const uint8_t *p, size_t n, int32_t *broker_id, int32_t *epoch)
{
    Strata__Meta__ControllerRecord *m = strata__meta__controller_record__unpack(NULL, n, p);
    if (!m)
        return SC_ERR_BAD_FORMAT;
    *broker_id = m->broker_id;
    *epoch = m->epoch;
    strata__meta__controller_record__free_unpacked(m, NULL);
    return 0;
}

int rp__pstate_pack(const rp_pstate_t *s, sc_buf_t *out)
{
    Strata__Meta__PartitionState m;
    strata__meta__partition_state__init(&m);
    m.n_replicas = (size_t)s->nreplicas;
    m.replicas = (int32_t *)s->replicas;
    m.n_isr = (size_t)s->nisr;
    m.isr = (int32_t *)s->isr;
    m.leader = s->leader;
    m.leader_epoch = s->leader_epoch;
    m.controller_epoch = s->controller_epoch;
    PACK_INTO(out, &m, strata__meta__partition_state);
}

int rp__pstate_unpack(const uint8_t *p, size_t n, rp_pstate_t *s)
{
    Strata__Meta__PartitionState *m = strata__meta__partition_state__unpack(NULL, n, p);
    if (!m)
        return SC_ERR_BAD_FORMAT;
    int rc = 0;
    if (m->n_replicas > RP_RF_MAX || m->n_isr > RP_RF_MAX) {
        rc = SC_ERR_BAD_FORMAT;
    } else {
        memset(s, 0, sizeof *s);
        s->nreplicas = (int)m->n_replicas;
        memcpy(s->replicas, m->replicas, m->n_replicas * sizeof(int32_t));
        s->nisr = (int)m->n_isr;
        memcpy(s->isr, m->isr, m->n_isr * sizeof(int32_t));
        s->leader = m->leader;
        s->leader_epoch = m->leader_epoch;
        s->controller_epoch = m->controller_epoch;
    }
    strata__meta__partition_state__free_unpacked(m, NULL);
    return rc;
}

int rp__pid_block_pack(int64_t next, sc_buf_t *out)
{
    Strata__Meta__ProducerIdBlock m;
    strata__meta__producer_id_block__init(&m);
    m.next_producer_id = next;
    PACK_INTO(out, &m, strata__meta__producer_id_block);
}

int rp__pid_block_unpack(const uint8_t *p, size_t n, int64_t *next)
{
    Strata__Meta__ProducerIdBlock *m = strata__meta__producer_id_block__unpack(NULL, n, p);
    if (!m)
        return SC_ERR_BAD_FORMAT;
    *next = m->next_producer_id;
    strata__meta__producer_id_block__free_unpacked(m, NULL);
    return 0;
}
