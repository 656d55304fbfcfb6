/* bk_topics -- the topic registry over the metadata store (see bk_topics.h).
 * Lookups are linear over the store's topics: fine for the number of topics
 * a single node serves today; a hash index belongs in rp_meta when needed. */
#include "bk_topics.h"

#include "sc_err.h"
#include "sc_log.h"
#include "sc_mem.h"
#include "rp_zk.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#define SUB "broker"

enum { J_CREATE, J_DELETE, J_PARTS, J_CONFIGS, J_PID };

/* A queued asynchronous change (shard 0). */
typedef struct bk_tjob {
    struct bk_tjob *next;
    int kind;
    char name[BK_TOPIC_NAME_MAX + 1];
    int bad_name; /* not a legal name: answered at its turn */
    int32_t count;
    int16_t rf;
    rp_meta_kv_t *kv; /* copies */
    size_t nkv;
    bk_topics_done_fn done;
    void *arg;
} bk_tjob_t;

struct bk_topics {
    rp_meta_t *store;
    bk_partition_hooks_t hooks;
    /* cluster mode: the store worker (see bk_topics.h) */
    int async_on;          /* shard 0: started and not stopped */
    uv_async_t async;      /* the worker's "op done"; shard 0's loop */
    bk_tjob_t *head, *tail; /* shard 0: queued jobs; head's op may be with the worker */
    int head_running;      /* shard 0: head's op was handed to the worker */
    pthread_t thread;
    int thread_on;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    rp_meta_op_t *work;    /* under mu: the op handed to the worker (until taken back) */
    int work_done;         /* under mu: the worker ran it */
    int quit, exited, closed; /* under mu; closed: no uv_async_send any more */
};

static int noop_created(void *arg, const char *topic, const uint8_t id[16], int32_t partition)
{
    (void)arg;
    (void)topic;
    (void)id;
    (void)partition;
    return 0;
}

static void noop_deleted(void *arg, const char *topic, const uint8_t id[16], int32_t partition)
{
    (void)arg;
    (void)topic;
    (void)id;
    (void)partition;
}

static const bk_partition_hooks_t noop_hooks = {noop_created, noop_deleted, NULL};

int bk_topics_open(const char *dir, const char *cluster_id, bk_topics_t **out)
{
    bk_topics_t *t = sc_calloc(1, sizeof *t);
    if (!t)
        return SC_ERR_NO_MEMORY;
    t->hooks = noop_hooks;
    int rc = rp_meta_open_local(dir, cluster_id, &t->store);
    if (rc) {
        sc_free(t);
        return rc;
    }
    *out = t;
    return 0;
}

static int run_created(bk_topics_t *t, const char *name, int32_t from, int32_t to);

int bk_topics_open_zk(struct rp_zk *z, const char *cluster_id, bk_topics_t **out)
{
    bk_topics_t *t = sc_calloc(1, sizeof *t);
    if (!t)
        return SC_ERR_NO_MEMORY;
    t->hooks = noop_hooks;
    int rc = rp_meta_open_zk(z, cluster_id, &t->store);
    if (rc) {
        sc_free(t);
        return rc;
    }
    *out = t;
    return 0;
}

typedef struct {
    char name[BK_TOPIC_NAME_MAX + 1];
    uint8_t id[16];
    int32_t parts;
} snap_t;

int bk_topics_reload(bk_topics_t *t)
{
    size_t n = rp_meta_topic_count(t->store);
    snap_t *old = n ? sc_calloc(n, sizeof *old) : NULL;
    if (n && !old)
        return SC_ERR_NO_MEMORY;
    for (size_t i = 0; i < n; i++) {
        const rp_meta_topic_t *x = rp_meta_topic_at(t->store, i);
        snprintf(old[i].name, sizeof old[i].name, "%s", x->name);
        memcpy(old[i].id, x->id, 16);
        old[i].parts = x->partitions;
    }
    int rc = rp_meta_reload(t->store);
    if (rc) {
        sc_free(old);
        return rc;
    }
    /* gone (or replaced by a new topic of the same name) */
    for (size_t i = 0; i < n; i++) {
        const rp_meta_topic_t *x = rp_meta_topic_find(t->store, old[i].name, strlen(old[i].name));
        if (x && memcmp(x->id, old[i].id, 16) == 0)
            continue;
        SC_INFO(SUB, "topic %s was deleted in the cluster", old[i].name);
        for (int32_t p = 0; p < old[i].parts; p++)
            t->hooks.deleted(t->hooks.arg, old[i].name, old[i].id, p);
    }
    /* new, or grown */
    size_t m = rp_meta_topic_count(t->store);
    for (size_t j = 0; j < m; j++) {
        const rp_meta_topic_t *x = rp_meta_topic_at(t->store, j);
        int32_t from = 0;
        for (size_t i = 0; i < n; i++)
            if (strcmp(old[i].name, x->name) == 0 && memcmp(old[i].id, x->id, 16) == 0)
                from = old[i].parts;
        if (from < x->partitions) {
            char name[BK_TOPIC_NAME_MAX + 1];
            snprintf(name, sizeof name, "%s", x->name);
            SC_INFO(SUB, "topic %s: partitions %d..%d appeared in the cluster", name, from,
                    x->partitions - 1);
            (void)run_created(t, name, from, x->partitions);
            m = rp_meta_topic_count(t->store);
        }
    }
    sc_free(old);
    return 0;
}

static bk_topics_t *left_behind; /* see bk_topics_free (still reachable, not a leak) */

int bk_topics_left_behind(void) { return left_behind != NULL; }

void bk_topics_free(bk_topics_t *t)
{
    if (!t)
        return;
    if (t->thread_on) {
        /* The worker may be inside a ZooKeeper call that waits for the
         * client's timeout (a hung server): waited for BK_TOPICS_JOIN_MS,
         * then left behind with the store (its op's state only). */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += BK_TOPICS_JOIN_MS / 1000;
        pthread_mutex_lock(&t->mu);
        t->quit = 1;
        t->closed = 1;
        pthread_cond_broadcast(&t->cv);
        while (!t->exited && pthread_cond_timedwait(&t->cv, &t->mu, &ts) == 0)
            ;
        int exited = t->exited;
        pthread_mutex_unlock(&t->mu);
        if (!exited) {
            SC_WARN(SUB, "metadata store worker still waiting for ZooKeeper after %d ms; not "
                         "waiting for it", BK_TOPICS_JOIN_MS);
            pthread_detach(t->thread);
            left_behind = t;
            return;
        }
        pthread_join(t->thread, NULL);
        rp_meta_op_free(t->work);
    }
    while (t->head) { /* only when the loop never ran the stop */
        bk_tjob_t *j = t->head;
        t->head = j->next;
        for (size_t i = 0; i < j->nkv; i++) {
            sc_free((char *)j->kv[i].key);
            sc_free((char *)j->kv[i].value);
        }
        sc_free(j->kv);
        sc_free(j);
    }
    if (t->thread_on) {
        pthread_mutex_destroy(&t->mu);
        pthread_cond_destroy(&t->cv);
    }
    rp_meta_close(t->store);
    sc_free(t);
}

void bk_topics_set_hooks(bk_topics_t *t, const bk_partition_hooks_t *hooks)
{
    t->hooks = hooks ? *hooks : noop_hooks;
    if (!t->hooks.created)
        t->hooks.created = noop_created;
    if (!t->hooks.deleted)
        t->hooks.deleted = noop_deleted;
}

int bk_topic_name_valid(const char *name, size_t len)
{
    if (len == 0 || len > BK_TOPIC_NAME_MAX)
        return 0;
    if ((len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.'))
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

/* Copies a request name view into buf (BK_TOPIC_NAME_MAX + 1). 0 or
 * SC_ERR_INVALID_TOPIC_EXCEPTION. */
static int cname(const char *name, size_t len, char *buf)
{
    if (!bk_topic_name_valid(name, len))
        return SC_ERR_INVALID_TOPIC_EXCEPTION;
    memcpy(buf, name, len);
    buf[len] = 0;
    return 0;
}

/* Runs the created hook for partitions [from, to); returns the first error. */
static int run_created(bk_topics_t *t, const char *name, int32_t from, int32_t to)
{
    const rp_meta_topic_t *tp = rp_meta_topic_find(t->store, name, strlen(name));
    int first = 0;
    for (int32_t p = from; tp && p < to; p++) {
        int rc = t->hooks.created(t->hooks.arg, name, tp->id, p);
        if (rc) {
            SC_ERROR(SUB, "creating the log of %s-%d: %s", name, p, sc_err_str(rc));
            if (!first)
                first = rc;
        }
    }
    return first;
}

int bk_topics_create_ex(bk_topics_t *t, const char *name, size_t len, int32_t partitions,
                        int16_t rf, const rp_meta_kv_t *configs, size_t n)
{
    char buf[BK_TOPIC_NAME_MAX + 1];
    int rc = cname(name, len, buf);
    if (rc)
        return rc;
    if ((rc = rp_meta_topic_create(t->store, buf, partitions, rf, configs, n)) != 0)
        return rc;
    SC_INFO(SUB, "created topic %s with %d partition(s)", buf, partitions);
    return run_created(t, buf, 0, partitions);
}

int bk_topics_create(bk_topics_t *t, const char *name, size_t len, int32_t partitions)
{
    return bk_topics_create_ex(t, name, len, partitions, 1, NULL, 0);
}

int bk_topics_delete(bk_topics_t *t, const char *name, size_t len)
{
    char buf[BK_TOPIC_NAME_MAX + 1];
    if (cname(name, len, buf))
        return SC_ERR_UNKNOWN_TOPIC_OR_PARTITION;
    const rp_meta_topic_t *tp = rp_meta_topic_find(t->store, buf, len);
    if (!tp)
        return SC_ERR_UNKNOWN_TOPIC_OR_PARTITION;
    uint8_t id[16];
    int32_t parts = tp->partitions;
    memcpy(id, tp->id, sizeof id);
    int rc = rp_meta_topic_delete(t->store, buf);
    if (rc)
        return rc;
    SC_INFO(SUB, "deleted topic %s (%d partition(s))", buf, parts);
    for (int32_t p = 0; p < parts; p++)
        t->hooks.deleted(t->hooks.arg, buf, id, p);
    return 0;
}

int bk_topics_add_partitions(bk_topics_t *t, const char *name, size_t len, int32_t count)
{
    char buf[BK_TOPIC_NAME_MAX + 1];
    if (cname(name, len, buf))
        return SC_ERR_UNKNOWN_TOPIC_OR_PARTITION;
    const rp_meta_topic_t *tp = rp_meta_topic_find(t->store, buf, len);
    if (!tp)
        return SC_ERR_UNKNOWN_TOPIC_OR_PARTITION;
    int32_t old = tp->partitions;
    int rc = rp_meta_topic_set_partitions(t->store, buf, count);
    if (rc)
        return rc;
    SC_INFO(SUB, "topic %s: %d -> %d partitions", buf, old, count);
    return run_created(t, buf, old, count);
}

int bk_topics_set_configs(bk_topics_t *t, const char *name, size_t len, const rp_meta_kv_t *kv,
                          size_t n)
{
    char buf[BK_TOPIC_NAME_MAX + 1];
    if (cname(name, len, buf))
        return SC_ERR_UNKNOWN_TOPIC_OR_PARTITION;
    int rc = rp_meta_topic_set_configs(t->store, buf, kv, n);
    if (rc == 0)
        SC_INFO(SUB, "topic %s: %zu config override(s) set", buf, n);
    return rc;
}

const rp_meta_topic_t *bk_topics_lookup(const bk_topics_t *t, const char *name, size_t len)
{
    return rp_meta_topic_find(t->store, name, len);
}

int bk_topics_find(const bk_topics_t *t, const char *name, size_t len, int32_t *partitions)
{
    const rp_meta_topic_t *x = rp_meta_topic_find(t->store, name, len);
    if (!x)
        return SC_ERR_UNKNOWN_TOPIC_OR_PARTITION;
    *partitions = x->partitions;
    return 0;
}

int bk_topics_producer_id_next(bk_topics_t *t, int64_t *pid)
{
    return rp_meta_producer_id_next(t->store, pid);
}

size_t bk_topics_count(const bk_topics_t *t) { return rp_meta_topic_count(t->store); }

const char *bk_topics_get(const bk_topics_t *t, size_t i, int32_t *partitions)
{
    const rp_meta_topic_t *x = rp_meta_topic_at(t->store, i);
    *partitions = x->partitions;
    return x->name;
}

const char *bk_topics_cluster_id(const bk_topics_t *t) { return rp_meta_cluster_id(t->store); }

/* ---- asynchronous changes (cluster mode) ----------------------------------------- */

static void *worker_main(void *arg)
{
    bk_topics_t *t = arg;
    pthread_mutex_lock(&t->mu);
    for (;;) {
        while (!t->quit && (!t->work || t->work_done))
            pthread_cond_wait(&t->cv, &t->mu);
        if (t->quit)
            break;
        rp_meta_op_t *op = t->work;
        pthread_mutex_unlock(&t->mu);
        rp_meta_op_run(op); /* ZooKeeper; nothing else of t */
        pthread_mutex_lock(&t->mu);
        t->work_done = 1;
        if (!t->closed)
            uv_async_send(&t->async);
    }
    t->exited = 1;
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
    return NULL;
}

static void job_free(bk_tjob_t *j)
{
    for (size_t i = 0; i < j->nkv; i++) {
        sc_free((char *)j->kv[i].key);
        sc_free((char *)j->kv[i].value);
    }
    sc_free(j->kv);
    sc_free(j);
}

/* Pops the head and answers it. */
static void job_done(bk_topics_t *t, int rc, int64_t pid)
{
    bk_tjob_t *j = t->head;
    t->head = j->next;
    if (!t->head)
        t->tail = NULL;
    t->head_running = 0;
    j->done(j->arg, rc, pid);
    job_free(j);
}

/* What the registry knew of a topic before a job's result is applied. */
typedef struct {
    int found;
    uint8_t id[16];
    int32_t parts;
} before_t;

static void before_get(bk_topics_t *t, const char *name, before_t *b)
{
    const rp_meta_topic_t *tp = rp_meta_topic_find(t->store, name, strlen(name));
    b->found = tp != NULL;
    if (tp) {
        memcpy(b->id, tp->id, 16);
        b->parts = tp->partitions;
    }
}

/* The head's op came back: applies it, runs the hooks for what a reload did
 * not already bring, answers. */
static void head_finish(bk_topics_t *t, rp_meta_op_t *op)
{
    bk_tjob_t *j = t->head;
    before_t b;
    before_get(t, j->name, &b);
    int rc = rp_meta_op_finish(t->store, op);
    int64_t pid = -1;
    if (rc == 0) {
        const rp_meta_topic_t *tp = rp_meta_topic_find(t->store, j->name, strlen(j->name));
        switch (j->kind) {
        case J_CREATE:
            SC_INFO(SUB, "created topic %s with %d partition(s)", j->name, j->count);
            if (tp && !(b.found && memcmp(b.id, tp->id, 16) == 0))
                rc = run_created(t, j->name, 0, tp->partitions);
            break;
        case J_PARTS:
            SC_INFO(SUB, "topic %s: %d -> %d partitions", j->name, b.parts, j->count);
            if (tp && b.found && memcmp(b.id, tp->id, 16) == 0 && b.parts < tp->partitions)
                rc = run_created(t, j->name, b.parts, tp->partitions);
            break;
        case J_DELETE:
            SC_INFO(SUB, "deleted topic %s", j->name);
            for (int32_t p = 0; b.found && !tp && p < b.parts; p++)
                t->hooks.deleted(t->hooks.arg, j->name, b.id, p);
            break;
        case J_CONFIGS:
            SC_INFO(SUB, "topic %s: %zu config override(s) set", j->name, j->nkv);
            break;
        default:
            if (!rp_meta_producer_id_cached(t->store, &pid))
                rc = SC_ERR_INVALID_REQUEST;
            break;
        }
    }
    job_done(t, rc, pid);
}

/* Starts the head job (prepare + hand to the worker), answering the ones
 * that end at prepare, until one runs or none is left. */
static void pump(bk_topics_t *t)
{
    while (t->async_on && t->head && !t->head_running) {
        bk_tjob_t *j = t->head;
        rp_meta_op_t *op = NULL;
        int rc = 0;
        int64_t pid;
        if (j->bad_name) {
            rc = j->kind == J_CREATE ? SC_ERR_INVALID_TOPIC_EXCEPTION
                                     : SC_ERR_UNKNOWN_TOPIC_OR_PARTITION;
        } else {
            switch (j->kind) {
            case J_CREATE:
                rc = rp_meta_op_topic_create(t->store, j->name, j->count, j->rf, j->kv, j->nkv,
                                             &op);
                break;
            case J_DELETE:
                rc = rp_meta_op_topic_delete(t->store, j->name, &op);
                break;
            case J_PARTS:
                rc = rp_meta_op_topic_set_partitions(t->store, j->name, j->count, &op);
                break;
            case J_CONFIGS:
                rc = rp_meta_op_topic_set_configs(t->store, j->name, j->kv, j->nkv, &op);
                break;
            default:
                if (rp_meta_producer_id_cached(t->store, &pid)) {
                    job_done(t, 0, pid);
                    continue;
                }
                rc = rp_meta_op_producer_ids(t->store, &op);
                break;
            }
        }
        if (rc) {
            job_done(t, rc, -1);
            continue;
        }
        pthread_mutex_lock(&t->mu);
        t->work = op;
        t->work_done = 0;
        pthread_cond_signal(&t->cv);
        pthread_mutex_unlock(&t->mu);
        t->head_running = 1;
    }
}

static void on_async(uv_async_t *h)
{
    bk_topics_t *t = h->data;
    pthread_mutex_lock(&t->mu);
    rp_meta_op_t *op = t->work_done ? t->work : NULL;
    if (op) {
        t->work = NULL;
        t->work_done = 0;
    }
    pthread_mutex_unlock(&t->mu);
    if (op && t->head_running)
        head_finish(t, op);
    else
        rp_meta_op_free(op);
    pump(t);
}

int bk_topics_async_start(bk_topics_t *t, struct uv_loop_s *loop)
{
    if (t->thread_on)
        return 0;
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->cv, NULL);
    uv_async_init(loop, &t->async, on_async);
    t->async.data = t;
    if (pthread_create(&t->thread, NULL, worker_main, t) != 0) {
        uv_close((uv_handle_t *)&t->async, NULL);
        pthread_mutex_destroy(&t->mu);
        pthread_cond_destroy(&t->cv);
        return SC_ERR_NO_MEMORY;
    }
    t->thread_on = 1;
    t->async_on = 1;
    return 0;
}

void bk_topics_async_stop(bk_topics_t *t)
{
    if (!t || !t->async_on)
        return;
    t->async_on = 0;
    pthread_mutex_lock(&t->mu);
    t->closed = 1; /* no uv_async_send from now on */
    pthread_mutex_unlock(&t->mu);
    uv_close((uv_handle_t *)&t->async, NULL);
    pthread_mutex_lock(&t->mu);
    rp_meta_op_t *op = t->work_done ? t->work : NULL;
    if (op)
        t->work = NULL;
    pthread_mutex_unlock(&t->mu);
    if (op && t->head_running)
        head_finish(t, op); /* written just now: applied and answered */
    else
        rp_meta_op_free(op);
    /* a running op (if any) stays with the worker; bk_topics_free frees it */
    while (t->head) {
        int running = t->head_running;
        if (running)
            SC_WARN(SUB, "stopping: a metadata store write is still waiting for ZooKeeper; "
                         "answered REQUEST_TIMED_OUT");
        job_done(t, running ? SC_ERR_REQUEST_TIMED_OUT : SC_ERR_BROKER_NOT_AVAILABLE, -1);
    }
}

int bk_topics_async(const bk_topics_t *t) { return t->async_on; }

static int submit(bk_topics_t *t, int kind, const char *name, size_t len, int32_t count,
                  int16_t rf, const rp_meta_kv_t *kv, size_t n, bk_topics_done_fn done,
                  void *arg)
{
    bk_tjob_t *j = sc_calloc(1, sizeof *j);
    if (!j)
        return SC_ERR_NO_MEMORY;
    j->kind = kind;
    if (name && cname(name, len, j->name))
        j->bad_name = 1;
    j->count = count;
    j->rf = rf;
    if (n) {
        if (!(j->kv = sc_calloc(n, sizeof *j->kv))) {
            sc_free(j);
            return SC_ERR_NO_MEMORY;
        }
        j->nkv = n;
        for (size_t i = 0; i < n; i++) {
            j->kv[i].key = sc_strdup(kv[i].key);
            j->kv[i].value = sc_strdup(kv[i].value);
            if (!j->kv[i].key || !j->kv[i].value) {
                job_free(j);
                return SC_ERR_NO_MEMORY;
            }
        }
    }
    j->done = done;
    j->arg = arg;
    if (t->tail)
        t->tail->next = j;
    else
        t->head = j;
    t->tail = j;
    uv_async_send(&t->async); /* pump on the next loop turn, not inside the caller */
    return 0;
}

int bk_topics_create_async(bk_topics_t *t, const char *name, size_t len, int32_t partitions,
                           int16_t rf, const rp_meta_kv_t *configs, size_t n,
                           bk_topics_done_fn done, void *arg)
{
    return submit(t, J_CREATE, name, len, partitions, rf, configs, n, done, arg);
}

int bk_topics_delete_async(bk_topics_t *t, const char *name, size_t len, bk_topics_done_fn done,
                           void *arg)
{
    return submit(t, J_DELETE, name, len, 0, 0, NULL, 0, done, arg);
}

int bk_topics_add_partitions_async(bk_topics_t *t, const char *name, size_t len, int32_t count,
                                   bk_topics_done_fn done, void *arg)
{
    return submit(t, J_PARTS, name, len, count, 0, NULL, 0, done, arg);
}

int bk_topics_set_configs_async(bk_topics_t *t, const char *name, size_t len,
                                const rp_meta_kv_t *kv, size_t n, bk_topics_done_fn done,
                                void *arg)
{
    return submit(t, J_CONFIGS, name, len, 0, 0, kv, n, done, arg);
}

int bk_topics_producer_id_async(bk_topics_t *t, bk_topics_done_fn done, void *arg)
{
    return submit(t, J_PID, NULL, 0, 0, 0, NULL, 0, done, arg);
}

int bk_topics_producer_id_cached(bk_topics_t *t, int64_t *pid)
{
    return rp_meta_producer_id_cached(t->store, pid);
}
