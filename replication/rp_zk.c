/* rp_zk -- ZooKeeper session, metadata-store backend, registration,
 * controller election and partition state. See rp_zk.h. */
#include "rp_zk.h"
#include "rp_meta_int.h"

#include "sc_err.h"
#include "sc_log.h"
#include "sc_mem.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#define THREADED 1 /* the synchronous API of libzookeeper_mt */
#include <zookeeper/zookeeper.h>

#define SUB "zk"
#define PATH_MAX_ZK 512

struct rp_zk_topics {
    rp__image_t img;
    uint64_t writes; /* z->store_writes when the read began */
};

struct rp_zk {
    zhandle_t *zh;         /* replaced only by rp_zk_reconnect, under zl (write) */
    pthread_rwlock_t zl;   /* store ops from another thread hold it (read) */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int connected;         /* under mu */
    atomic_int expired;
    void (*_Atomic notify)(void *, const char *); /* the client's thread reads them */
    void *_Atomic notify_arg;
    int32_t ctl_epoch;     /* the epoch we won, 0 = not controller */
    int ctl_epoch_version; /* /controller_epoch znode version we wrote */
    int64_t session_id;
    char connect[1024];
    int session_timeout_ms, timeout_ms;
    atomic_uint_fast64_t store_writes; /* topic writes through the store */
    rp_zk_topics_t *offered;           /* under mu: the next be_load's image */
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int zerr(const char *what, const char *path, int rc)
{
    SC_WARN(SUB, "%s %s: %s", what, path, zerror(rc));
    return SC_ERR_BROKER_NOT_AVAILABLE;
}

static void watcher(zhandle_t *zh, int type, int state, const char *path, void *ctx)
{
    (void)zh;
    rp_zk_t *z = ctx;
    if (type == ZOO_SESSION_EVENT) {
        pthread_mutex_lock(&z->mu);
        if (state == ZOO_CONNECTED_STATE)
            z->connected = 1;
        else if (state == ZOO_EXPIRED_SESSION_STATE) {
            z->connected = 0;
            atomic_store(&z->expired, 1);
        } else
            z->connected = 0;
        pthread_cond_broadcast(&z->cv);
        pthread_mutex_unlock(&z->mu);
    }
    void (*fn)(void *, const char *) = atomic_load(&z->notify);
    if (fn)
        fn(atomic_load(&z->notify_arg),
           (type == ZOO_CHANGED_EVENT || type == ZOO_CREATED_EVENT) ? path : NULL);
}

static int mkpath(rp_zk_t *z, const char *path)
{
    int rc = zoo_create(z->zh, path, NULL, -1, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0);
    if (rc != ZOK && rc != ZNODEEXISTS)
        return zerr("create", path, rc);
    return 0;
}

static int open_one(const char *connect, int session_timeout_ms, int timeout_ms, rp_zk_t **out);

/* Creates the chroot of "hosts/chroot" (each component) through a session
 * without it, as Kafka does. */
static int make_chroot(const char *connect, int session_timeout_ms, int timeout_ms)
{
    const char *slash = strchr(connect, '/');
    if (!slash || !slash[1])
        return 0;
    char hosts[1024], path[PATH_MAX_ZK];
    size_t hl = (size_t)(slash - connect);
    if (hl >= sizeof hosts || strlen(slash) >= sizeof path)
        return SC_ERR_BAD_CONFIG;
    memcpy(hosts, connect, hl);
    hosts[hl] = 0;
    rp_zk_t *z;
    int rc = open_one(hosts, session_timeout_ms, timeout_ms, &z);
    if (rc)
        return rc;
    snprintf(path, sizeof path, "%s", slash);
    for (char *p = path + 1; !rc; p++) {
        if (*p == '/' || *p == 0) {
            char c = *p;
            *p = 0;
            rc = mkpath(z, path);
            *p = c;
            if (!c)
                break;
        }
    }
    rp_zk_close(z);
    return rc;
}

int rp_zk_open(const char *connect, int session_timeout_ms, int timeout_ms, rp_zk_t **out)
{
    if (!connect || !*connect)
        return SC_ERR_BAD_CONFIG;
    int rc = make_chroot(connect, session_timeout_ms, timeout_ms);
    if (rc)
        return rc;
    if ((rc = open_one(connect, session_timeout_ms, timeout_ms, out)) != 0)
        return rc;
    rp_zk_t *z = *out;
    if ((rc = mkpath(z, "/cluster")) || (rc = mkpath(z, "/brokers")) ||
        (rc = mkpath(z, "/brokers/ids")) || (rc = mkpath(z, "/brokers/topics"))) {
        rp_zk_close(z);
        return rc;
    }
    SC_INFO(SUB, "ZooKeeper session 0x%llx with %s", (unsigned long long)z->session_id, connect);
    return 0;
}

/* (Re)starts z's session with z->connect and waits for it. */
static int session_start(rp_zk_t *z)
{
    zoo_set_debug_level(ZOO_LOG_LEVEL_ERROR);
    pthread_mutex_lock(&z->mu);
    z->connected = 0;
    pthread_mutex_unlock(&z->mu);
    atomic_store(&z->expired, 0);
    zhandle_t *zh = zookeeper_init(z->connect, watcher, z->session_timeout_ms, NULL, z, 0);
    pthread_rwlock_wrlock(&z->zl);
    z->zh = zh;
    pthread_rwlock_unlock(&z->zl);
    if (!z->zh) {
        SC_ERROR(SUB, "zookeeper.connect %s: %s", z->connect, strerror(errno));
        return SC_ERR_BAD_CONFIG;
    }
    int64_t deadline = now_ms() + z->timeout_ms;
    pthread_mutex_lock(&z->mu);
    while (!z->connected && now_ms() < deadline) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 50 * 1000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&z->cv, &z->mu, &ts);
    }
    int ok = z->connected;
    pthread_mutex_unlock(&z->mu);
    if (!ok) {
        SC_ERROR(SUB, "no ZooKeeper session with %s within %d ms", z->connect, z->timeout_ms);
        return SC_ERR_BROKER_NOT_AVAILABLE;
    }
    const clientid_t *cid = zoo_client_id(z->zh);
    z->session_id = cid ? cid->client_id : 0;
    return 0;
}

static int open_one(const char *connect, int session_timeout_ms, int timeout_ms, rp_zk_t **out)
{
    rp_zk_t *z = sc_calloc(1, sizeof *z);
    if (!z)
        return SC_ERR_NO_MEMORY;
    pthread_mutex_init(&z->mu, NULL);
    pthread_cond_init(&z->cv, NULL);
    pthread_rwlock_init(&z->zl, NULL);
    snprintf(z->connect, sizeof z->connect, "%s", connect);
    z->session_timeout_ms = session_timeout_ms;
    z->timeout_ms = timeout_ms;
    int rc = strlen(connect) >= sizeof z->connect ? SC_ERR_BAD_CONFIG : session_start(z);
    if (rc) {
        rp_zk_close(z);
        return rc;
    }
    *out = z;
    return 0;
}

int rp_zk_reconnect(rp_zk_t *z)
{
    if (z->zh) {
        pthread_rwlock_wrlock(&z->zl); /* no store op is using it */
        zhandle_t *old = z->zh;
        z->zh = NULL;
        pthread_rwlock_unlock(&z->zl);
        zookeeper_close(old);
    }
    z->ctl_epoch = 0;
    int rc = session_start(z);
    if (rc == 0)
        SC_INFO(SUB, "new ZooKeeper session 0x%llx with %s", (unsigned long long)z->session_id,
                z->connect);
    return rc;
}

void rp_zk_close(rp_zk_t *z)
{
    if (!z)
        return;
    if (z->zh)
        zookeeper_close(z->zh);
    rp_zk_topics_free(z->offered);
    pthread_rwlock_destroy(&z->zl);
    pthread_mutex_destroy(&z->mu);
    pthread_cond_destroy(&z->cv);
    sc_free(z);
}

void rp_zk_set_notify(rp_zk_t *z, void (*fn)(void *arg, const char *path), void *arg)
{
    atomic_store(&z->notify_arg, arg);
    atomic_store(&z->notify, fn);
}

int rp_zk_session_state(rp_zk_t *z)
{
    return atomic_load(&z->expired) ? SC_ERR_BROKER_NOT_AVAILABLE : 0;
}

/* zoo_get into a growing buffer. 0 with *data (sc_free) and *len;
 * SC_ERR_NOT_FOUND; BROKER_NOT_AVAILABLE. */
static int zget(rp_zk_t *z, const char *path, int watch, uint8_t **data, size_t *len,
                int *version)
{
    int cap = 4096;
    for (int tries = 0; tries < 4; tries++) {
        char *buf = sc_malloc((size_t)cap);
        if (!buf)
            return SC_ERR_NO_MEMORY;
        int n = cap;
        struct Stat st;
        int rc = zoo_get(z->zh, path, watch, buf, &n, &st);
        if (rc == ZNONODE) {
            sc_free(buf);
            return SC_ERR_NOT_FOUND;
        }
        if (rc != ZOK) {
            sc_free(buf);
            return zerr("get", path, rc);
        }
        if (st.dataLength > cap) {
            cap = st.dataLength;
            sc_free(buf);
            continue;
        }
        *data = (uint8_t *)buf;
        *len = n < 0 ? 0 : (size_t)n;
        if (version)
            *version = st.version;
        return 0;
    }
    return SC_ERR_BROKER_NOT_AVAILABLE;
}

int rp_zk_cluster_id(rp_zk_t *z, char *out, size_t len)
{
    uint8_t *d;
    size_t n;
    int rc = zget(z, "/cluster/id", 0, &d, &n, NULL);
    if (rc)
        return rc;
    rc = rp__cluster_id_unpack(d, n, out, len);
    sc_free(d);
    return rc;
}

/* ---- the metadata-store backend ---------------------------------------------- */

/* Reads the whole topic registry into img. proposed: the cluster id to
 * create when none is stored (NULL: none is created, SC_ERR_NOT_FOUND). */
static int load_image(rp_zk_t *z, const char *proposed, rp__image_t *img)
{
    if (!z->zh)
        return SC_ERR_BROKER_NOT_AVAILABLE; /* between two sessions */
    char id[RP_META_CLUSTER_ID_MAX + 1];
    int rc = rp_zk_cluster_id(z, id, sizeof id);
    if (rc == SC_ERR_NOT_FOUND && proposed) {
        sc_buf_t b = {0};
        if ((rc = rp__cluster_id_pack(proposed, &b)) != 0)
            return rc;
        int zrc = zoo_create(z->zh, "/cluster/id", (const char *)b.data, (int)b.len,
                             &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0);
        sc_buf_fini(&b);
        if (zrc != ZOK && zrc != ZNODEEXISTS)
            return zerr("create", "/cluster/id", zrc);
        rc = rp_zk_cluster_id(z, id, sizeof id); /* whoever won */
    }
    if (rc) {
        if (rc == SC_ERR_BAD_FORMAT)
            SC_ERROR(SUB, "/cluster/id does not decode");
        return rc;
    }
    memcpy(img->cluster_id, id, strlen(id) + 1);

    uint8_t *d;
    size_t n;
    rc = zget(z, "/latest_producer_id_block", 0, &d, &n, NULL);
    if (rc == 0) {
        rc = rp__pid_block_unpack(d, n, &img->next_producer_id);
        sc_free(d);
        if (rc)
            SC_ERROR(SUB, "/latest_producer_id_block does not decode");
    } else if (rc == SC_ERR_NOT_FOUND)
        rc = 0;
    if (rc)
        return rc;

    struct String_vector kids = {0};
    int zrc = zoo_get_children(z->zh, "/brokers/topics", 1, &kids);
    if (zrc != ZOK)
        return zerr("list", "/brokers/topics", zrc);
    img->topics = kids.count ? sc_calloc((size_t)kids.count, sizeof *img->topics) : NULL;
    if (kids.count && !img->topics) {
        deallocate_String_vector(&kids);
        return SC_ERR_NO_MEMORY;
    }
    /* Topics in name order (ZooKeeper keeps no creation order). */
    qsort(kids.data, (size_t)kids.count, sizeof *kids.data,
          (int (*)(const void *, const void *))strcmp);
    for (int i = 0; i < kids.count && !rc; i++) {
        char path[PATH_MAX_ZK], why[160];
        snprintf(path, sizeof path, "/brokers/topics/%s", kids.data[i]);
        rc = zget(z, path, 0, &d, &n, NULL);
        if (rc == SC_ERR_NOT_FOUND) { /* deleted meanwhile */
            rc = 0;
            continue;
        }
        if (rc)
            break;
        if (n == 0) { /* created by someone else, data not written: skip */
            sc_free(d);
            continue;
        }
        rc = rp__topic_unpack(d, n, &img->topics[img->ntopics], why, sizeof why);
        sc_free(d);
        if (rc == SC_ERR_BAD_FORMAT)
            SC_ERROR(SUB, "%s: %s", path, why);
        if (rc == 0)
            img->ntopics++;
    }
    deallocate_String_vector(&kids);
    return rc;
}

static int be_load(void *be, const char *proposed, rp__image_t *img)
{
    rp_zk_t *z = be;
    pthread_mutex_lock(&z->mu);
    rp_zk_topics_t *t = z->offered;
    z->offered = NULL;
    pthread_mutex_unlock(&z->mu);
    if (t && t->writes == atomic_load(&z->store_writes)) {
        *img = t->img; /* read by the cluster thread: no ZooKeeper call here */
        memset(&t->img, 0, sizeof t->img);
        rp_zk_topics_free(t);
        return 0;
    }
    rp_zk_topics_free(t); /* older than a write of ours: read again */
    pthread_rwlock_rdlock(&z->zl);
    int rc = load_image(z, proposed, img);
    pthread_rwlock_unlock(&z->zl);
    return rc;
}

int rp_zk_topics_read(rp_zk_t *z, rp_zk_topics_t **out)
{
    rp_zk_topics_t *t = sc_calloc(1, sizeof *t);
    if (!t)
        return SC_ERR_NO_MEMORY;
    t->writes = atomic_load(&z->store_writes);
    int rc = load_image(z, NULL, &t->img);
    if (rc) {
        rp_zk_topics_free(t);
        return rc;
    }
    *out = t;
    return 0;
}

size_t rp_zk_topics_count(const rp_zk_topics_t *t) { return t->img.ntopics; }

const rp_meta_topic_t *rp_zk_topics_at(const rp_zk_topics_t *t, size_t i)
{
    return t->img.topics[i];
}

void rp_zk_topics_free(rp_zk_topics_t *t)
{
    if (!t)
        return;
    rp__image_fini(&t->img);
    sc_free(t);
}

void rp_zk_topics_offer(rp_zk_t *z, rp_zk_topics_t *t)
{
    pthread_mutex_lock(&z->mu);
    rp_zk_topics_t *old = z->offered;
    z->offered = t;
    pthread_mutex_unlock(&z->mu);
    rp_zk_topics_free(old);
}

int rp_zk_topics_offered(rp_zk_t *z)
{
    pthread_mutex_lock(&z->mu);
    int r = !z->offered                                            ? 0
            : z->offered->writes == atomic_load(&z->store_writes) ? 1
                                                                    : -1;
    if (r < 0) {
        rp_zk_topics_free(z->offered);
        z->offered = NULL;
    }
    pthread_mutex_unlock(&z->mu);
    return r;
}

static int count_brokers(rp_zk_t *z, int *n)
{
    struct String_vector kids = {0};
    int zrc = zoo_get_children(z->zh, "/brokers/ids", 0, &kids);
    if (zrc != ZOK)
        return zerr("list", "/brokers/ids", zrc);
    *n = kids.count;
    deallocate_String_vector(&kids);
    return 0;
}

static int put_topic(rp_zk_t *z, const rp_meta_topic_t *t)
{
    if (!z->zh)
        return SC_ERR_BROKER_NOT_AVAILABLE;
    char path[PATH_MAX_ZK];
    snprintf(path, sizeof path, "/brokers/topics/%s", t->name);
    sc_buf_t b = {0};
    int rc = rp__topic_pack(t, &b);
    if (rc)
        return rc;
    struct Stat st;
    int zrc = zoo_exists(z->zh, path, 0, &st);
    if (zrc == ZNONODE) {
        int live = 0;
        /* none registered yet (this broker's own start creating
         * __consumer_offsets): the controller assigns once brokers are up */
        if ((rc = count_brokers(z, &live)) == 0 && live > 0 && t->replication_factor > live) {
            SC_WARN(SUB, "topic %s: replication factor %d but %d live broker(s)", t->name,
                    t->replication_factor, live);
            rc = SC_ERR_INVALID_REPLICATION_FACTOR;
        }
        if (!rc) {
            zrc = zoo_create(z->zh, path, (const char *)b.data, (int)b.len, &ZOO_OPEN_ACL_UNSAFE,
                             0, NULL, 0);
            rc = zrc == ZOK           ? 0
                 : zrc == ZNODEEXISTS ? SC_ERR_TOPIC_ALREADY_EXISTS
                                      : zerr("create", path, zrc);
        }
    } else if (zrc == ZOK) {
        /* A change of the topic this image knows (same topic id), versioned:
         * a concurrent change of it fails this one. Another topic id under
         * that name is a create racing another broker's: that one won. */
        uint8_t *d;
        size_t n;
        int version = -1;
        rp_meta_topic_t *cur = NULL;
        char why[160];
        if ((rc = zget(z, path, 0, &d, &n, &version)) == 0) {
            rc = rp__topic_unpack(d, n, &cur, why, sizeof why);
            sc_free(d);
        }
        if (rc == 0 && memcmp(cur->id, t->id, sizeof t->id) != 0)
            rc = SC_ERR_TOPIC_ALREADY_EXISTS;
        else if (rc == 0 && cur->partitions > t->partitions)
            rc = SC_ERR_INVALID_PARTITIONS; /* grown by another broker: this image is stale */
        else if (rc == SC_ERR_NOT_FOUND)
            rc = SC_ERR_UNKNOWN_TOPIC_OR_PARTITION; /* deleted meanwhile */
        rp__topic_free(cur);
        if (rc == 0) {
            zrc = zoo_set(z->zh, path, (const char *)b.data, (int)b.len, version);
            rc = zrc == ZOK           ? 0
                 : zrc == ZBADVERSION ? SC_ERR_INVALID_REQUEST
                                      : zerr("set", path, zrc);
        }
    } else
        rc = zerr("exists", path, zrc);
    sc_buf_fini(&b);
    return rc;
}

/* Store ops run on a thread other than the cluster thread (shard 0's store
 * worker, bk_topics.c; or shard 0 itself) while the cluster thread may
 * replace the session: they hold zl. Each topic write counts (be_wrote, on
 * the store's owner thread once the write's result is back there): an image
 * read before is not installed (be_load). Counting there, not here, keeps
 * the check rp_zk_topics_offered made on that thread true for the be_load
 * that follows it (no read of ZooKeeper on shard 0). */
static int be_put_topic(void *be, const rp__image_t *next, const rp_meta_topic_t *t)
{
    (void)next;
    rp_zk_t *z = be;
    pthread_rwlock_rdlock(&z->zl);
    int rc = put_topic(z, t);
    pthread_rwlock_unlock(&z->zl);
    return rc;
}

static void be_wrote(void *be)
{
    rp_zk_t *z = be;
    atomic_fetch_add(&z->store_writes, 1);
}

static int be_set_topic_config(void *be, const rp__image_t *next, const rp_meta_topic_t *t)
{
    return be_put_topic(be, next, t);
}

/* Deletes path and everything below it. A child created meanwhile (the
 * controller writing the first state of a topic being deleted) makes the
 * delete of path fail with ZNOTEMPTY: listed and deleted again, a few times. */
static int rdelete(rp_zk_t *z, const char *path)
{
    for (int tries = 0;; tries++) {
        struct String_vector kids = {0};
        int zrc = zoo_get_children(z->zh, path, 0, &kids);
        if (zrc == ZNONODE)
            return 0;
        if (zrc != ZOK)
            return zerr("list", path, zrc);
        int rc = 0;
        for (int i = 0; i < kids.count && !rc; i++) {
            char sub[PATH_MAX_ZK];
            snprintf(sub, sizeof sub, "%s/%s", path, kids.data[i]);
            rc = rdelete(z, sub);
        }
        deallocate_String_vector(&kids);
        if (rc)
            return rc;
        zrc = zoo_delete(z->zh, path, -1);
        if (zrc == ZNOTEMPTY && tries < 10)
            continue;
        return zrc == ZOK || zrc == ZNONODE ? 0 : zerr("delete", path, zrc);
    }
}

static int be_delete_topic(void *be, const rp__image_t *next, const char *name)
{
    (void)next;
    rp_zk_t *z = be;
    char path[PATH_MAX_ZK];
    snprintf(path, sizeof path, "/brokers/topics/%s", name);
    pthread_rwlock_rdlock(&z->zl);
    int rc = z->zh ? rdelete(z, path) : SC_ERR_BROKER_NOT_AVAILABLE;
    pthread_rwlock_unlock(&z->zl);
    return rc;
}

static int be_alloc_producer_ids(void *be, const rp__image_t *next, int64_t first, int64_t count)
{
    (void)be;
    (void)next;
    (void)first;
    (void)count;
    return SC_ERR_INVALID_REQUEST; /* alloc_remote is used instead */
}

/* Compare-and-set on /latest_producer_id_block: the block starts where the
 * stored counter is, whatever this broker's image says. */
static int alloc_remote(rp_zk_t *z, int64_t count, int64_t *first)
{
    const char *path = "/latest_producer_id_block";
    for (int tries = 0; tries < 100; tries++) {
        uint8_t *d;
        size_t n;
        int version = -1;
        int64_t cur = 0;
        int rc = zget(z, path, 0, &d, &n, &version);
        if (rc == 0) {
            rc = rp__pid_block_unpack(d, n, &cur);
            sc_free(d);
            if (rc)
                return rc;
        } else if (rc != SC_ERR_NOT_FOUND)
            return rc;
        if (cur < 0 || cur > INT64_MAX - count)
            return SC_ERR_INVALID_REQUEST;
        sc_buf_t b = {0};
        if ((rc = rp__pid_block_pack(cur + count, &b)) != 0)
            return rc;
        int zrc = version < 0 ? zoo_create(z->zh, path, (const char *)b.data, (int)b.len,
                                           &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0)
                              : zoo_set(z->zh, path, (const char *)b.data, (int)b.len, version);
        sc_buf_fini(&b);
        if (zrc == ZOK) {
            *first = cur;
            return 0;
        }
        if (zrc != ZBADVERSION && zrc != ZNODEEXISTS)
            return zerr("set", path, zrc);
    }
    return SC_ERR_BROKER_NOT_AVAILABLE;
}

static int be_alloc_remote(void *be, int64_t count, int64_t *first)
{
    rp_zk_t *z = be;
    pthread_rwlock_rdlock(&z->zl);
    int rc = z->zh ? alloc_remote(z, count, first) : SC_ERR_BROKER_NOT_AVAILABLE;
    pthread_rwlock_unlock(&z->zl);
    return rc;
}

static void be_close(void *be) { (void)be; /* the session is not the store's */ }

static const rp__meta_ops_t zk_ops = {
    .name = "zookeeper",
    .load = be_load,
    .put_topic = be_put_topic,
    .delete_topic = be_delete_topic,
    .set_topic_config = be_set_topic_config,
    .alloc_producer_ids = be_alloc_producer_ids,
    .alloc_remote = be_alloc_remote,
    .wrote = be_wrote,
    .close = be_close,
};

int rp_meta_open_zk(rp_zk_t *z, const char *cluster_id, rp_meta_t **out)
{
    return rp__meta_open(&zk_ops, z, cluster_id, out);
}

/* ---- brokers ---------------------------------------------------------------- */

int rp_zk_register(rp_zk_t *z, const rp_broker_t *self, const char *host, int32_t port,
                   int wait_ms)
{
    char path[PATH_MAX_ZK];
    snprintf(path, sizeof path, "/brokers/ids/%d", self->id);
    sc_buf_t b = {0};
    int rc = rp__broker_pack(self, host, port, &b);
    if (rc)
        return rc;
    int64_t deadline = now_ms() + wait_ms;
    for (;;) {
        int zrc = zoo_create(z->zh, path, (const char *)b.data, (int)b.len, &ZOO_OPEN_ACL_UNSAFE,
                             ZOO_EPHEMERAL, NULL, 0);
        if (zrc == ZOK) {
            rc = 0;
            break;
        }
        if (zrc != ZNODEEXISTS) {
            rc = zerr("create", path, zrc);
            break;
        }
        if (now_ms() >= deadline) {
            SC_ERROR(SUB, "broker.id %d is registered by another live broker (%s exists)",
                     self->id, path);
            rc = SC_ERR_BAD_CONFIG;
            break;
        }
        usleep(200 * 1000); /* an earlier session of ours, not yet expired */
    }
    sc_buf_fini(&b);
    if (!rc)
        SC_INFO(SUB, "registered broker %d (%s:%d%s%s)", self->id, host, port,
                self->rack[0] ? ", rack " : "", self->rack);
    return rc;
}

int rp_zk_deregister(rp_zk_t *z, int32_t id)
{
    char path[PATH_MAX_ZK];
    snprintf(path, sizeof path, "/brokers/ids/%d", id);
    struct Stat st;
    int zrc = zoo_exists(z->zh, path, 0, &st);
    if (zrc == ZNONODE || (zrc == ZOK && st.ephemeralOwner != z->session_id))
        return SC_ERR_NOT_FOUND;
    if (zrc == ZOK)
        zrc = zoo_delete(z->zh, path, st.version);
    return zrc == ZOK ? 0 : zerr("delete", path, zrc);
}

int rp_zk_brokers(rp_zk_t *z, rp_zk_broker_t *out, int max, int *n)
{
    struct String_vector kids = {0};
    int zrc = zoo_get_children(z->zh, "/brokers/ids", 1, &kids);
    if (zrc != ZOK)
        return zerr("list", "/brokers/ids", zrc);
    int k = 0, rc = 0;
    for (int i = 0; i < kids.count && k < max; i++) {
        char path[PATH_MAX_ZK];
        uint8_t *d;
        size_t len;
        snprintf(path, sizeof path, "/brokers/ids/%s", kids.data[i]);
        rc = zget(z, path, 0, &d, &len, NULL);
        if (rc == SC_ERR_NOT_FOUND) {
            rc = 0;
            continue;
        }
        if (rc)
            break;
        if (rp__broker_unpack(d, len, &out[k].b, out[k].host, sizeof out[k].host,
                              &out[k].port) == 0)
            k++;
        else
            SC_WARN(SUB, "%s does not decode; ignored", path);
        sc_free(d);
    }
    deallocate_String_vector(&kids);
    *n = k;
    return rc;
}

/* ---- controller --------------------------------------------------------------- */

int rp_zk_controller(rp_zk_t *z, int32_t *id, int32_t *epoch)
{
    uint8_t *d;
    size_t n;
    struct Stat st;
    /* exists() with a watch also fires on creation, get() does not */
    int zrc = zoo_exists(z->zh, "/controller", 1, &st);
    if (zrc == ZNONODE)
        return SC_ERR_NOT_FOUND;
    if (zrc != ZOK)
        return zerr("exists", "/controller", zrc);
    int rc = zget(z, "/controller", 1, &d, &n, NULL);
    if (rc)
        return rc;
    rc = rp__controller_unpack(d, n, id, epoch);
    sc_free(d);
    if (rc == 0 && st.ephemeralOwner != z->session_id && z->ctl_epoch) {
        SC_WARN(SUB, "lost the controller role (epoch %d)", z->ctl_epoch);
        z->ctl_epoch = 0;
    }
    return rc;
}

int rp_zk_elect(rp_zk_t *z, int32_t my_id, int32_t *epoch)
{
    uint8_t *d;
    size_t n;
    int version = -1;
    int32_t cur = 0, who = -1;
    int rc = zget(z, "/controller_epoch", 0, &d, &n, &version);
    if (rc == 0) {
        rc = rp__controller_unpack(d, n, &who, &cur);
        sc_free(d);
    } else if (rc == SC_ERR_NOT_FOUND) {
        rc = 0;
        version = -1;
    }
    if (rc)
        return rc;
    sc_buf_t ctl = {0}, ep = {0};
    if ((rc = rp__controller_pack(my_id, cur + 1, &ctl)) ||
        (rc = rp__controller_pack(my_id, cur + 1, &ep))) {
        sc_buf_fini(&ctl);
        sc_buf_fini(&ep);
        return rc;
    }
    zoo_op_t ops[2];
    zoo_op_result_t res[2];
    struct Stat st;
    memset(&st, 0, sizeof st);
    zoo_create_op_init(&ops[0], "/controller", (const char *)ctl.data, (int)ctl.len,
                       &ZOO_OPEN_ACL_UNSAFE, ZOO_EPHEMERAL, NULL, 0);
    if (version < 0)
        zoo_create_op_init(&ops[1], "/controller_epoch", (const char *)ep.data, (int)ep.len,
                           &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0);
    else
        zoo_set_op_init(&ops[1], "/controller_epoch", (const char *)ep.data, (int)ep.len, version,
                        &st);
    int zrc = zoo_multi(z->zh, 2, ops, res);
    sc_buf_fini(&ctl);
    sc_buf_fini(&ep);
    if (zrc == ZNODEEXISTS || zrc == ZBADVERSION)
        return SC_ERR_NOT_CONTROLLER;
    if (zrc != ZOK)
        return zerr("multi", "/controller", zrc);
    z->ctl_epoch = cur + 1;
    z->ctl_epoch_version = version < 0 ? 0 : st.version;
    *epoch = z->ctl_epoch;
    SC_INFO(SUB, "broker %d is the controller (epoch %d)", my_id, z->ctl_epoch);
    return 0;
}

int rp_zk_is_controller(rp_zk_t *z) { return z->ctl_epoch != 0; }

void rp_zk_resign(rp_zk_t *z)
{
    if (!z->ctl_epoch)
        return;
    struct Stat st;
    if (zoo_exists(z->zh, "/controller", 0, &st) == ZOK && st.ephemeralOwner == z->session_id)
        (void)zoo_delete(z->zh, "/controller", st.version);
    z->ctl_epoch = 0;
}

/* ---- partition state ------------------------------------------------------------ */

int rp_zk_pstate_get(rp_zk_t *z, const char *topic, int32_t p, rp_pstate_t *s, int *version)
{
    char path[PATH_MAX_ZK];
    snprintf(path, sizeof path, "/brokers/topics/%s/partitions/%d/state", topic, p);
    struct Stat st;
    int zrc = zoo_exists(z->zh, path, 1, &st); /* the watch also sees the creation */
    if (zrc == ZNONODE)
        return SC_ERR_NOT_FOUND;
    if (zrc != ZOK)
        return zerr("exists", path, zrc);
    uint8_t *d;
    size_t n;
    int rc = zget(z, path, 1, &d, &n, version);
    if (rc)
        return rc;
    rc = rp__pstate_unpack(d, n, s);
    sc_free(d);
    if (rc)
        SC_WARN(SUB, "%s does not decode", path);
    return rc;
}

int rp_zk_pstate_write(rp_zk_t *z, const char *topic, int32_t p, const rp_pstate_t *s,
                       int version)
{
    if (!z->ctl_epoch)
        return SC_ERR_STALE_CONTROLLER_EPOCH;
    char path[PATH_MAX_ZK], parent[PATH_MAX_ZK];
    int rc;
    if (version < 0) {
        snprintf(parent, sizeof parent, "/brokers/topics/%s", topic);
        struct Stat st;
        if (zoo_exists(z->zh, parent, 0, &st) == ZNONODE)
            return SC_ERR_UNKNOWN_TOPIC_OR_PARTITION;
        snprintf(parent, sizeof parent, "/brokers/topics/%s/partitions", topic);
        if ((rc = mkpath(z, parent)) != 0)
            return rc;
        snprintf(parent, sizeof parent, "/brokers/topics/%s/partitions/%d", topic, p);
        if ((rc = mkpath(z, parent)) != 0)
            return rc;
    }
    snprintf(path, sizeof path, "/brokers/topics/%s/partitions/%d/state", topic, p);
    sc_buf_t b = {0};
    if ((rc = rp__pstate_pack(s, &b)) != 0)
        return rc;
    zoo_op_t ops[2];
    zoo_op_result_t res[2];
    struct Stat st;
    zoo_check_op_init(&ops[0], "/controller_epoch", z->ctl_epoch_version);
    if (version < 0)
        zoo_create_op_init(&ops[1], path, (const char *)b.data, (int)b.len, &ZOO_OPEN_ACL_UNSAFE,
                           0, NULL, 0);
    else
        zoo_set_op_init(&ops[1], path, (const char *)b.data, (int)b.len, version, &st);
    int zrc = zoo_multi(z->zh, 2, ops, res);
    sc_buf_fini(&b);
    if (zrc == ZOK)
        return 0;
    if (res[0].err == ZBADVERSION || res[0].err == ZNONODE) {
        SC_WARN(SUB, "controller epoch %d is stale; giving up the role", z->ctl_epoch);
        z->ctl_epoch = 0;
        return SC_ERR_STALE_CONTROLLER_EPOCH;
    }
    if (zrc == ZBADVERSION || zrc == ZNODEEXISTS)
        return SC_ERR_INVALID_REQUEST;
    if (zrc == ZNONODE)
        return SC_ERR_UNKNOWN_TOPIC_OR_PARTITION;
    return zerr("multi", path, zrc);
}

int rp_zk_pstate_write_leader(rp_zk_t *z, const char *topic, int32_t p, const rp_pstate_t *s,
                              int version)
{
    char path[PATH_MAX_ZK];
    snprintf(path, sizeof path, "/brokers/topics/%s/partitions/%d/state", topic, p);
    sc_buf_t b = {0};
    int rc = rp__pstate_pack(s, &b);
    if (rc)
        return rc;
    int zrc = zoo_set(z->zh, path, (const char *)b.data, (int)b.len, version);
    sc_buf_fini(&b);
    if (zrc == ZOK)
        return 0;
    if (zrc == ZBADVERSION)
        return SC_ERR_INVALID_REQUEST;
    if (zrc == ZNONODE)
        return SC_ERR_UNKNOWN_TOPIC_OR_PARTITION;
    return zerr("set", path, zrc);
}

int rp__zk_delete_for_test(rp_zk_t *z, const char *path)
{
    int zrc = zoo_delete(z->zh, path, -1);
    return zrc == ZOK ? 0 : zrc == ZNONODE ? SC_ERR_NOT_FOUND : SC_ERR_BROKER_NOT_AVAILABLE;
}
