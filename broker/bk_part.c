/*
 * bk_part -- the broker's storage wiring: partitions (bk_part_t) over the log
 * manager, their assignment to shards, each shard's io backend driven by its
 * uv loop, group commit, housekeeping ticks, and topic configs -> log
 * configs.
 *
 * Start (bk__storage_open, shard 0, before the loop runs):
 *   1. st_log_manager_open over every log.dirs entry: each partition
 *      directory is recovered; its io is the owner shard's (pick_io).
 *   2. Reconcile with the topic registry, which is the source of truth:
 *      a registry partition without a log gets one (a crash between the
 *      registry write and the created hook); a directory that the registry
 *      does not list is logged as a warning and left alone -- data is never
 *      deleted at start, an operator decides.
 *   3. Every registry partition becomes a bk_part_t on its shard, with its
 *      topic's effective config (overrides, else the broker's log.* keys).
 *   4. The partition hooks (bk_topics_set_hooks) create / delete logs from
 *      then on.
 *
 * Per shard (bk__shard_storage_init): one io backend (ST_IO_AUTO: io_uring,
 * else the thread pool; the choice is logged), a uv_poll on its eventfd that
 * runs st_io_poll(io, 0), a uv_check + uv_prepare that commit every log
 * appended to in this loop turn (each append of the turn shares one
 * fdatasync), a tick timer for st_log_tick (retention every
 * log.retention.check.interval.ms; flush.ms and segment.ms at the finest
 * flush.ms in use, at least every 10 ms).
 *
 * Log compaction (bk_cleaner_*, docs/compaction.md): with log.cleaner.enable,
 * a pool of log.cleaner.threads threads (st_cleaner_pool) runs the heavy part
 * of each clean. Every log.cleaner.backoff.ms the shard's tick rolls its
 * compacted logs by segment.ms (so a quiet topic still gets closed
 * segments), then, while fewer jobs than threads are out, picks the
 * partition with the highest dirty ratio at or above its
 * min.cleanable.dirty.ratio, prepares a job (st_cleaner_prepare: dup'ed fds
 * of the closed segments) and submits it. A finished job comes back through
 * a uv_async to the shard, which swaps the cleaned segments in
 * (st_cleaner_commit) on the log's own thread; a sync still in flight on a
 * source segment defers the swap to the next tick. Fetches in progress keep
 * their dup'ed fds of replaced segments. Deleting a partition cancels its
 * clean and waits for it (bounded) before the directory goes; stop cancels
 * running jobs and joins the threads before the logs close.
 *
 * Ownership: a part and its log are touched only on part->shard's thread.
 * Today every partition is assigned to shard 0 (the only shard).
 */
#include "bk_int.h"

#include "bk_topic_config.h"
#include "sc_err.h"
#include "sc_log.h"
#include "sc_mem.h"
#include "sc_time.h"

#include "st_cleaner.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SUB "storage"

int16_t bk__storage_err(int rc)
{
    if (rc > 0)
        return (int16_t)rc;
    return SC_ERR_KAFKA_STORAGE_ERROR;
}

/* ---- partition map (shard 0) ------------------------------------------------ */

static uint32_t hash_tp(const char *topic, size_t len, int32_t partition)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)topic[i]) * 16777619u;
    for (int i = 0; i < 4; i++)
        h = (h ^ ((uint32_t)partition >> (8 * i) & 0xff)) * 16777619u;
    return h;
}

bk_part_t *bk__part_find(const bk_server_t *s, const char *topic, size_t len, int32_t partition)
{
    if (!s->pmap || len > BK_TOPIC_NAME_MAX)
        return NULL;
    bk_part_t *p = s->pmap[hash_tp(topic, len, partition) & (s->pmap_buckets - 1)];
    for (; p; p = p->hnext)
        if (p->partition == partition && strlen(p->topic) == len && memcmp(p->topic, topic, len) == 0)
            return p;
    return NULL;
}

static int pmap_insert(bk_server_t *s, bk_part_t *p)
{
    if (s->pmap_count >= s->pmap_buckets) {
        unsigned n = s->pmap_buckets ? s->pmap_buckets * 2 : 64;
        bk_part_t **b = sc_calloc(n, sizeof *b);
        if (!b)
            return SC_ERR_NO_MEMORY;
        for (unsigned i = 0; i < s->pmap_buckets; i++) {
            while (s->pmap[i]) {
                bk_part_t *x = s->pmap[i];
                s->pmap[i] = x->hnext;
                unsigned k = hash_tp(x->topic, strlen(x->topic), x->partition) & (n - 1);
                x->hnext = b[k];
                b[k] = x;
            }
        }
        sc_free(s->pmap);
        s->pmap = b;
        s->pmap_buckets = n;
    }
    unsigned k = hash_tp(p->topic, strlen(p->topic), p->partition) & (s->pmap_buckets - 1);
    p->hnext = s->pmap[k];
    s->pmap[k] = p;
    s->pmap_count++;
    return 0;
}

static void pmap_remove(bk_server_t *s, bk_part_t *p)
{
    bk_part_t **e = &s->pmap[hash_tp(p->topic, strlen(p->topic), p->partition) &
                             (s->pmap_buckets - 1)];
    while (*e && *e != p)
        e = &(*e)->hnext;
    if (*e) {
        *e = p->hnext;
        s->pmap_count--;
    }
}

/* The shard that owns (topic, partition). One shard today. */
static bk_shard_t *owner(bk_server_t *s, const char *topic, int32_t partition)
{
    (void)topic;
    (void)partition;
    return &s->shard0;
}

/* ---- configs ------------------------------------------------------------------ */

/* 1 when the cleanup.policy list v (already validated) contains "delete". */
static int policy_deletes(const char *v)
{
    while (*v) {
        while (*v == ' ' || *v == ',')
            v++;
        size_t n = strcspn(v, ", ");
        if (n == 6 && memcmp(v, "delete", 6) == 0)
            return 1;
        v += n;
    }
    return 0;
}

/* The effective log config of topic t (NULL: broker defaults only), plus the
 * broker-side settings the log does not keep. */
static void topic_config(const bk_server_t *s, const rp_meta_topic_t *t, st_log_config_t *out,
                         int32_t *max_message_bytes, int *log_append_time)
{
    size_t n;
    const bk_topic_key_t *keys = bk_topic_config_keys(&n);
    int deletes = 1;
    st_log_config_default(out);
    *max_message_bytes = s->cfg->message_max_bytes;
    *log_append_time = 0;
    for (size_t i = 0; i < n; i++) {
        char buf[128];
        const char *v = t ? rp_meta_topic_config(t, keys[i].name) : NULL;
        if (!v) {
            bk_topic_config_default(s->cfg, &keys[i], buf, sizeof buf);
            v = buf;
        }
        if (strcmp(keys[i].name, "max.message.bytes") == 0) {
            *max_message_bytes = (int32_t)strtol(v, NULL, 10);
            continue;
        }
        if (strcmp(keys[i].name, "message.timestamp.type") == 0) {
            *log_append_time = strcmp(v, "LogAppendTime") == 0;
            continue;
        }
        if (strcmp(keys[i].name, "cleanup.policy") == 0) {
            deletes = policy_deletes(v);
            out->compact = strstr(v, "compact") != NULL;
            continue;
        }
        int rc = st_log_config_set(out, keys[i].name, v);
        if (rc == SC_ERR_INVALID_CONFIG)
            SC_WARN(SUB, "topic %s: %s=%s is not usable by the log; keeping %s's default",
                    t ? t->name : "(default)", keys[i].name, v, "storage");
    }
    /* Kafka deletes by retention.ms / retention.bytes only when the policy
     * includes "delete"; a compact-only topic keeps every segment. Storage
     * stays policy-agnostic: it just sees unlimited retention. */
    if (!deletes) {
        out->retention_ms = -1;
        out->retention_bytes = -1;
    }
}

static void part_apply_config(bk_server_t *s, bk_part_t *p, const rp_meta_topic_t *t)
{
    st_log_config_t cfg;
    topic_config(s, t, &cfg, &p->max_message_bytes, &p->log_append_time);
    p->flush_ms = cfg.flush_ms;
    st_log_set_config(p->log, &cfg);
}

void bk__topic_reconfigure(bk_server_t *s, const char *topic, size_t len)
{
    const rp_meta_topic_t *t = bk_topics_lookup(s->topics, topic, len);
    if (!t)
        return;
    for (int32_t i = 0; i < t->partitions; i++) {
        bk_part_t *p = bk__part_find(s, topic, len, i);
        if (p)
            part_apply_config(s, p, t); /* one shard: its owner is this thread */
    }
}

/* ---- partitions ---------------------------------------------------------------- */

/* ---- answers waiting for the log (bk__part_wait) ---------------------------------- */

static int wait_reached(const bk_part_t *p, const bk_pwait_t *w)
{
    return (w->written ? st_log_written_offset(p->log) : st_log_committed_offset(p->log)) >=
           w->end;
}

int bk__part_wait(bk_part_t *p, bk_pwait_t *w)
{
    if (wait_reached(p, w))
        return 0;
    if (st_log_failed(p->log))
        return SC_ERR_KAFKA_STORAGE_ERROR;
    w->next = p->waits;
    p->waits = w;
    return 1;
}

/* Answers the waits that reached their offset; the others with err when err
 * is set (the partition goes), or with KAFKA_STORAGE_ERROR when the log failed.
 * The due ones are unlinked first: a done callback may queue new waits. */
static void waits_run(bk_part_t *p, int16_t err)
{
    if (!p->waits)
        return;
    if (!err && st_log_failed(p->log))
        err = SC_ERR_KAFKA_STORAGE_ERROR;
    bk_pwait_t *due = NULL, **e = &p->waits;
    while (*e) {
        bk_pwait_t *w = *e;
        if (err || wait_reached(p, w)) {
            *e = w->next;
            w->next = due;
            due = w;
        } else {
            e = &w->next;
        }
    }
    while (due) {
        bk_pwait_t *w = due;
        due = w->next;
        w->done(w->arg, wait_reached(p, w) ? 0 : err);
    }
}

void bk__part_waits_check(bk_part_t *p) { waits_run(p, 0); }

/* The log's written/durable offsets moved: the high watermark follows what
 * the topic's flush policy counts as committed (st_log_committed_offset), so
 * under the durable default a consumer never sees a record that a crash could
 * take back -- not even one acknowledged with acks=1 -- and waiting fetches
 * are woken. Runs on the owner shard (from st_io_poll). */
static void part_progress(void *arg, st_log_t *log)
{
    bk_part_t *p = arg;
    int64_t c = st_log_committed_offset(log);
    if (p->shard->srv->cluster) { /* cluster mode: min over the ISR (bk_cluster.c) */
        bk__cluster_progress(p->shard->srv, p);
    } else if (c > st_log_high_watermark(log)) {
        st_log_set_high_watermark(log, c);
        p->shard->hw_moved = 1;
    }
    waits_run(p, 0); /* after the high watermark: an answer never runs ahead of it */
}

/* Creates the bk_part_t for an open log. */
static int part_add(bk_server_t *s, const char *topic, int32_t partition, st_log_t *log)
{
    bk_part_t *p = sc_calloc(1, sizeof *p);
    if (!p)
        return SC_ERR_NO_MEMORY;
    snprintf(p->topic, sizeof p->topic, "%s", topic);
    p->partition = partition;
    p->log = log;
    p->shard = owner(s, topic, partition);
    /* single node: everything the log holds after recovery is committed */
    st_log_set_high_watermark(log, st_log_end_offset(log));
    part_apply_config(s, p, bk_topics_lookup(s->topics, topic, strlen(topic)));
    bk__pids_rebuild(p);
    st_log_set_progress_cb(log, part_progress, p);
    int rc = pmap_insert(s, p);
    if (rc) {
        sc_free(p->pids);
        sc_free(p);
        return rc;
    }
    p->snext = p->shard->parts;
    p->shard->parts = p;
    return 0;
}

static void part_unlink(bk_server_t *s, bk_part_t *p)
{
    bk_shard_t *sh = p->shard;
    pmap_remove(s, p);
    for (bk_part_t **e = &sh->parts; *e; e = &(*e)->snext)
        if (*e == p) {
            *e = p->snext;
            break;
        }
    for (bk_part_t **e = &sh->dirty; *e; e = &(*e)->dnext)
        if (*e == p) {
            *e = p->dnext;
            break;
        }
}

/* Opens or creates the log of a registry partition and adds its part. */
static int part_create(bk_server_t *s, const char *topic, int32_t partition)
{
    st_log_config_t cfg;
    int32_t mmb;
    int lat;
    st_log_t *log = NULL;
    if (bk__part_find(s, topic, strlen(topic), partition))
        return 0;
    topic_config(s, bk_topics_lookup(s->topics, topic, strlen(topic)), &cfg, &mmb, &lat);
    int rc = st_log_manager_create(s->logs, topic, partition, &cfg, &log);
    if (rc == -EEXIST)
        log = st_log_manager_find(s->logs, topic, partition), rc = log ? 0 : rc;
    if (rc)
        return rc;
    return part_add(s, topic, partition, log);
}

static int hook_created(void *arg, const char *topic, const uint8_t id[16], int32_t partition)
{
    (void)id;
    return part_create(arg, topic, partition);
}

static void cleaner_forget(bk_server_t *s, bk_part_t *p);
static int cleaner_new(bk_server_t *s);
static void cleaner_free(bk_server_t *s);

static void hook_deleted(void *arg, const char *topic, const uint8_t id[16], int32_t partition)
{
    bk_server_t *s = arg;
    (void)id;
    bk_part_t *p = bk__part_find(s, topic, strlen(topic), partition);
    if (p)
        cleaner_forget(s, p); /* no clean writes into the directory from here */
    /* st_log_manager_delete drains the log's appends first: their callbacks
     * still see the part. Parked fetches look partitions up by name at each
     * check and a send in progress holds its own fd, so the part can go
     * right after. */
    int rc = st_log_manager_delete(s->logs, topic, partition);
    if (rc && rc != SC_ERR_UNKNOWN_TOPIC_OR_PARTITION)
        SC_ERROR(SUB, "deleting the log of %s-%d: %s", topic, partition, sc_err_str(rc));
    if (p) {
        waits_run(p, SC_ERR_UNKNOWN_TOPIC_OR_PARTITION);
        part_unlink(s, p);
        sc_free(p->pids);
        sc_free(p);
    }
}

static st_io_t *pick_io(void *arg, const char *topic, int32_t partition)
{
    return owner(arg, topic, partition)->io;
}

typedef struct {
    bk_server_t *s;
    unsigned orphans;
} orphan_ctx_t;

static void find_orphan(void *arg, const char *topic, int32_t partition, st_log_t *log)
{
    orphan_ctx_t *o = arg;
    int32_t parts;
    if (bk_topics_find(o->s->topics, topic, strlen(topic), &parts) == 0 && partition < parts)
        return;
    o->orphans++;
    SC_WARN(SUB, "%s: partition %s-%d is not in the topic registry; leaving its data alone "
                 "(not served; remove the directory to drop it)",
            st_log_dir(log), topic, partition);
}

int bk__storage_open(bk_server_t *s)
{
    const bk_config_t *cfg = s->cfg;
    char *dirs_buf = NULL;
    const char **dirs = NULL;
    unsigned ndirs = 0;
    int rc = 0;
    size_t len = strlen(cfg->log_dirs);

    if (!(dirs_buf = sc_malloc(len + 1)) || !(dirs = sc_calloc(len + 1, sizeof *dirs))) {
        rc = SC_ERR_NO_MEMORY;
        goto out;
    }
    memcpy(dirs_buf, cfg->log_dirs, len + 1);
    for (char *p = dirs_buf, *save = NULL, *d; (d = strtok_r(p, ",", &save)); p = NULL)
        if (*d)
            dirs[ndirs++] = d;

    st_log_manager_opts_t opts = {.dirs = dirs, .ndirs = ndirs, .pick_io = pick_io,
                                  .pick_arg = s};
    int32_t mmb;
    int lat;
    topic_config(s, NULL, &opts.cfg, &mmb, &lat);
    if ((rc = st_log_manager_open(&opts, &s->logs)) != 0) {
        SC_ERROR(SUB, "opening the logs under %s: %s", cfg->log_dirs, sc_err_str(rc));
        goto out;
    }
    /* the registry decides what is served */
    size_t nt = bk_topics_count(s->topics);
    unsigned created = 0;
    for (size_t i = 0; i < nt; i++) {
        int32_t parts;
        const char *name = bk_topics_get(s->topics, i, &parts);
        for (int32_t p = 0; p < parts; p++) {
            st_log_t *log = st_log_manager_find(s->logs, name, p);
            if (log) {
                rc = part_add(s, name, p, log);
            } else {
                SC_WARN(SUB, "%s-%d is in the topic registry but has no log; creating it", name,
                        p);
                rc = part_create(s, name, p);
                created++;
            }
            if (rc) {
                SC_ERROR(SUB, "serving %s-%d: %s", name, p, sc_err_str(rc));
                goto out;
            }
        }
    }
    orphan_ctx_t o = {.s = s};
    st_log_manager_foreach(s->logs, find_orphan, &o);
    SC_INFO(SUB, "serving %u partition(s) of %zu topic(s)%s", s->pmap_count, nt,
            o.orphans ? "; some directories are not in the registry (see warnings)" : "");
    bk_partition_hooks_t hooks = {.created = hook_created, .deleted = hook_deleted, .arg = s};
    bk_topics_set_hooks(s->topics, &hooks);
    if ((rc = cleaner_new(s)) != 0)
        SC_ERROR(SUB, "starting the log cleaner: %s", sc_err_str(rc));
out:
    sc_free(dirs);
    sc_free(dirs_buf);
    return rc;
}

int bk__storage_close(bk_server_t *s)
{
    if (s->topics)
        bk_topics_set_hooks(s->topics, NULL);
    cleaner_free(s); /* before the logs close: no job may outlive them */
    for (unsigned i = 0; i < s->pmap_buckets; i++) {
        while (s->pmap[i]) {
            bk_part_t *p = s->pmap[i];
            s->pmap[i] = p->hnext;
            /* the logs close below and may still complete a sync */
            st_log_set_progress_cb(p->log, NULL, NULL);
            waits_run(p, SC_ERR_NOT_LEADER_OR_FOLLOWER);
            sc_free(p->pids);
            sc_free(p);
        }
    }
    sc_free(s->pmap);
    s->pmap = NULL;
    s->pmap_buckets = s->pmap_count = 0;
    s->shard0.parts = s->shard0.dirty = NULL;
    int rc = st_log_manager_close(s->logs);
    s->logs = NULL;
    if (rc)
        SC_ERROR(SUB, "closing the logs: %s", sc_err_str(rc));
    return rc;
}

/* ---- log cleaner ---------------------------------------------------------------- */

typedef struct bk_cleaner bk_cleaner_t;

typedef struct bk_cjob {
    struct bk_cjob *next;  /* the cleaner's jobs (shard thread) */
    struct bk_cjob *dnext; /* finished, waiting for the shard (under mu) */
    struct bk_cleaner *c;
    bk_part_t *part;       /* NULL once the partition was deleted */
    st_clean_job_t *job;
    int rc;
    int returned; /* under mu: cleaner_done ran */
    int finished; /* st_cleaner_run returned (shard's view) */
} bk_cjob_t;

struct bk_cleaner {
    st_cleaner_pool_t *pool;
    unsigned threads;
    uv_async_t async;
    int async_live;
    pthread_mutex_t mu;
    bk_cjob_t *done; /* under mu */
    int closing;     /* under mu: no more async sends */
    bk_cjob_t *jobs; /* shard thread */
    int64_t last_check_ms;
};

static int cleaner_busy(const bk_cleaner_t *c, const bk_part_t *p)
{
    for (const bk_cjob_t *j = c->jobs; j; j = j->next)
        if (j->part == p)
            return 1;
    return 0;
}

static unsigned cleaner_running(const bk_cleaner_t *c)
{
    unsigned n = 0;
    for (const bk_cjob_t *j = c->jobs; j; j = j->next)
        n++;
    return n;
}

static void cleaner_unlink(bk_cleaner_t *c, bk_cjob_t *cj)
{
    for (bk_cjob_t **e = &c->jobs; *e; e = &(*e)->next)
        if (*e == cj) {
            *e = cj->next;
            break;
        }
    st_cleaner_job_free(cj->job);
    sc_free(cj);
}

/* Cleaner thread: a job is done; hand it to the shard. */
static void cleaner_done(void *arg, st_clean_job_t *job, int rc)
{
    bk_cjob_t *cj = arg;
    bk_cleaner_t *c = cj->c;
    (void)job;
    pthread_mutex_lock(&c->mu);
    cj->rc = rc;
    cj->returned = 1;
    cj->dnext = c->done;
    c->done = cj;
    if (!c->closing && c->async_live)
        uv_async_send(&c->async);
    pthread_mutex_unlock(&c->mu);
}

/* Shard thread: swap a finished job in. Returns 1 when it stays (retry). */
static int cleaner_commit(bk_cleaner_t *c, bk_cjob_t *cj)
{
    bk_part_t *p = cj->part;
    int rc = cj->rc;
    if (p && rc == 0) {
        st_clean_result_t res;
        rc = st_cleaner_commit(p->log, cj->job, &res);
        if (rc == SC_ERR_AGAIN)
            return 1;
        if (rc == 0)
            SC_DEBUG(SUB, "%s-%d: compacted up to offset %lld", p->topic, p->partition,
                     (long long)res.end);
    }
    if (p && rc && rc != SC_ERR_NOT_FOUND && rc != SC_ERR_CLOSED)
        SC_WARN(SUB, "%s-%d: log cleaner: %s", p->topic, p->partition, sc_err_str(rc));
    cleaner_unlink(c, cj);
    return 0;
}

static void on_clean_done(uv_async_t *h)
{
    bk_cleaner_t *c = h->data;
    pthread_mutex_lock(&c->mu);
    bk_cjob_t *d = c->done;
    c->done = NULL;
    pthread_mutex_unlock(&c->mu);
    while (d) {
        bk_cjob_t *next = d->dnext;
        d->finished = 1;
        (void)cleaner_commit(c, d);
        d = next;
    }
}

/* The tick's share: segment.ms rolls of compacted logs, deferred swaps, and
 * new jobs for the dirtiest logs. */
static void cleaner_tick(bk_shard_t *sh, int64_t now)
{
    bk_server_t *s = sh->srv;
    bk_cleaner_t *c = s->cleaner;
    if (!c)
        return;
    for (bk_cjob_t *j = c->jobs, *next; j; j = next) {
        next = j->next;
        if (j->finished) /* a swap deferred by a sync in flight */
            (void)cleaner_commit(c, j);
    }
    if (now - c->last_check_ms < s->cfg->log_cleaner_backoff_ms)
        return;
    c->last_check_ms = now;
    for (bk_part_t *p = sh->parts; p; p = p->snext)
        if (st_log_config(p->log)->compact)
            (void)st_log_tick(p->log, now); /* segment.ms: a quiet log still rolls */
    while (cleaner_running(c) < c->threads) {
        bk_part_t *best = NULL;
        double best_ratio = -1;
        for (bk_part_t *p = sh->parts; p; p = p->snext) {
            st_clean_state_t st;
            if (!st_log_config(p->log)->compact || cleaner_busy(c, p) || st_log_failed(p->log))
                continue;
            st_cleaner_state(p->log, now, &st);
            if (st.dirty_bytes > 0 && st.ratio >= st_log_config(p->log)->min_cleanable_dirty_ratio &&
                st.ratio > best_ratio) {
                best = p;
                best_ratio = st.ratio;
            }
        }
        if (!best)
            break;
        bk_cjob_t *cj = sc_calloc(1, sizeof *cj);
        if (!cj)
            break;
        int rc = st_cleaner_prepare(best->log, now, &cj->job);
        if (rc == 0) {
            cj->part = best;
            cj->c = c;
            cj->next = c->jobs;
            c->jobs = cj;
            SC_DEBUG(SUB, "%s-%d: cleaning (dirty ratio %.2f)", best->topic, best->partition,
                     best_ratio);
            if ((rc = st_cleaner_pool_submit(c->pool, cj->job, cleaner_done, cj)) == 0)
                continue;
            cleaner_unlink(c, cj);
        } else {
            sc_free(cj);
        }
        SC_DEBUG(SUB, "%s-%d: log cleaner: %s", best->topic, best->partition, sc_err_str(rc));
        break;
    }
}

static int cleaner_new(bk_server_t *s)
{
    const bk_config_t *cfg = s->cfg;
    if (!cfg->log_cleaner_enable)
        return 0;
    bk_cleaner_t *c = sc_calloc(1, sizeof *c);
    if (!c)
        return SC_ERR_NO_MEMORY;
    double rate = strtod(cfg->log_cleaner_io_max_bytes_per_second, NULL);
    c->threads = (unsigned)cfg->log_cleaner_threads;
    pthread_mutex_init(&c->mu, NULL);
    int rc = st_cleaner_pool_new(c->threads, (uint64_t)cfg->log_cleaner_dedupe_buffer_size, rate,
                                 &c->pool);
    if (rc) {
        pthread_mutex_destroy(&c->mu);
        sc_free(c);
        return rc;
    }
    s->cleaner = c;
    SC_INFO(SUB, "log cleaner: %u thread(s), %lld-byte dedupe buffer, io limit %s bytes/s",
            c->threads, (long long)cfg->log_cleaner_dedupe_buffer_size,
            rate >= 1e300 ? "unlimited" : cfg->log_cleaner_io_max_bytes_per_second);
    return 0;
}

/* Stops the threads (running jobs are cancelled) and drops every job. */
static void cleaner_stop(bk_server_t *s)
{
    bk_cleaner_t *c = s->cleaner;
    if (!c)
        return;
    pthread_mutex_lock(&c->mu);
    c->closing = 1;
    pthread_mutex_unlock(&c->mu);
    st_cleaner_pool_free(c->pool); /* joins; queued jobs come back CLOSED */
    c->pool = NULL;
    while (c->jobs)
        cleaner_unlink(c, c->jobs);
    c->done = NULL;
    if (c->async_live) {
        c->async_live = 0;
        uv_close((uv_handle_t *)&c->async, NULL);
    }
}

static void cleaner_free(bk_server_t *s)
{
    bk_cleaner_t *c = s->cleaner;
    if (!c)
        return;
    cleaner_stop(s);
    pthread_mutex_destroy(&c->mu);
    sc_free(c);
    s->cleaner = NULL;
}

/* A partition goes (before its log is deleted): its clean, if any, is
 * cancelled and waited for (a cancelled clean stops at its next batch; a
 * queued one when a thread takes it), so no .cleaned file appears in the
 * directory being deleted. If it does not come back within 10 s it is only
 * detached and discarded when it does. */
static void cleaner_forget(bk_server_t *s, bk_part_t *p)
{
    bk_cleaner_t *c = s->cleaner;
    bk_cjob_t *j = NULL;
    if (!c)
        return;
    for (j = c->jobs; j && j->part != p; j = j->next)
        ;
    if (!j)
        return;
    st_cleaner_job_cancel(j->job);
    int back = 0;
    for (int i = 0; i < 10000 && !back; i++) {
        pthread_mutex_lock(&c->mu);
        back = j->returned;
        pthread_mutex_unlock(&c->mu);
        if (!back) {
            struct timespec ts = {0, 1000000};
            nanosleep(&ts, NULL);
        }
    }
    if (!back) {
        SC_WARN(SUB, "%s-%d: the log cleaner did not stop within 10 s; its job is detached",
                p->topic, p->partition);
        pthread_mutex_lock(&c->mu);
        j->part = NULL;
        pthread_mutex_unlock(&c->mu);
        return;
    }
    pthread_mutex_lock(&c->mu);
    for (bk_cjob_t **e = &c->done; *e; e = &(*e)->dnext)
        if (*e == j) {
            *e = j->dnext;
            break;
        }
    pthread_mutex_unlock(&c->mu);
    cleaner_unlink(c, j); /* deletes its .cleaned files */
}

/* ---- the shard's io and group commit ------------------------------------------- */

void bk__part_dirty(bk_part_t *p)
{
    if (p->dirty)
        return;
    p->dirty = 1;
    p->dnext = p->shard->dirty;
    p->shard->dirty = p;
}

static void commit_dirty(bk_shard_t *sh)
{
    while (sh->dirty) {
        bk_part_t *p = sh->dirty;
        sh->dirty = p->dnext;
        p->dirty = 0;
        p->dnext = NULL;
        int rc = st_log_commit(p->log);
        if (rc)
            SC_DEBUG(SUB, "%s-%d: commit: %s", p->topic, p->partition, sc_err_str(rc));
    }
}

static void poll_io(bk_shard_t *sh)
{
    int n = st_io_poll(sh->io, 0);
    if (n < 0)
        SC_ERROR(SUB, "shard %d: io poll: %s", sh->id, sc_err_str(n));
    /* callbacks may have appended (nothing does today) */
    commit_dirty(sh);
    if (sh->hw_moved)
        bk__fetch_wake(sh);
}

static void on_io(uv_poll_t *h, int status, int events)
{
    (void)status;
    (void)events;
    poll_io(h->data);
}

static void on_check(uv_check_t *h) { commit_dirty(h->data); }
static void on_prepare(uv_prepare_t *h) { commit_dirty(h->data); }

static uint64_t tick_period(bk_shard_t *sh)
{
    int64_t every = sh->srv->cfg->log_retention_check_interval_ms;
    for (bk_part_t *p = sh->parts; p; p = p->snext)
        if (p->flush_ms < every)
            every = p->flush_ms;
    return (uint64_t)(every < 10 ? 10 : every > 1000 ? 1000 : every);
}

static void on_tick(uv_timer_t *t)
{
    bk_shard_t *sh = t->data;
    int64_t now = sc_now_ms();
    int retention = now - sh->last_retention_ms >= sh->srv->cfg->log_retention_check_interval_ms;
    /* st_log_tick does flush.ms, segment.ms and retention together; logs
     * that have no flush.ms are ticked only at the retention interval. */
    for (bk_part_t *p = sh->parts; p; p = p->snext) {
        if (p->waits && st_log_failed(p->log))
            waits_run(p, 0); /* a sync failed with no append left to tell */
        if (!retention && p->flush_ms == INT64_MAX)
            continue;
        int n = st_log_tick(p->log, now);
        if (n > 0)
            SC_INFO(SUB, "%s-%d: retention deleted %d segment(s); log start offset now %lld",
                    p->topic, p->partition, n, (long long)st_log_start_offset(p->log));
        else if (n < 0)
            SC_DEBUG(SUB, "%s-%d: tick: %s", p->topic, p->partition, sc_err_str(n));
    }
    if (retention)
        sh->last_retention_ms = now;
    cleaner_tick(sh, now);
    commit_dirty(sh);
    uv_timer_start(&sh->tick_timer, on_tick, tick_period(sh), 0);
}

int bk__shard_storage_init(bk_shard_t *sh)
{
    int rc = st_io_new(ST_IO_AUTO, NULL, &sh->io);
    if (rc) {
        SC_ERROR(SUB, "shard %d: no io backend: %s", sh->id, sc_err_str(rc));
        return rc;
    }
    SC_INFO(SUB, "shard %d: io backend %s", sh->id, st_io_name(sh->io));
    int fd = st_io_event_fd(sh->io);
    if (fd < 0) {
        SC_ERROR(SUB, "shard %d: io backend %s has no event fd", sh->id, st_io_name(sh->io));
        return SC_ERR_UNKNOWN_SERVER;
    }
    if ((rc = uv_poll_init(&sh->loop, &sh->io_poll, fd)) != 0) {
        SC_ERROR(SUB, "shard %d: watching the io event fd: %s", sh->id, uv_strerror(rc));
        return rc;
    }
    uv_check_init(&sh->loop, &sh->commit_check);
    uv_prepare_init(&sh->loop, &sh->commit_prep);
    uv_timer_init(&sh->loop, &sh->tick_timer);
    uv_timer_init(&sh->loop, &sh->fetch_timer);
    uv_timer_init(&sh->loop, &sh->stop_timer);
    sh->io_poll.data = sh->commit_check.data = sh->commit_prep.data = sh;
    sh->tick_timer.data = sh->fetch_timer.data = sh->stop_timer.data = sh;
    sh->storage_handles = 1;
    uv_poll_start(&sh->io_poll, UV_READABLE, on_io);
    uv_check_start(&sh->commit_check, on_check);
    uv_prepare_start(&sh->commit_prep, on_prepare);
    return 0;
}

void bk__shard_storage_start(bk_shard_t *sh)
{
    sh->last_retention_ms = sc_now_ms();
    bk_cleaner_t *c = sh->srv->cleaner;
    if (c && sh == &sh->srv->shard0 && uv_async_init(&sh->loop, &c->async, on_clean_done) == 0) {
        c->async.data = c;
        c->async_live = 1;
        c->last_check_ms = sc_now_ms();
    }
    if (sh->storage_handles)
        uv_timer_start(&sh->tick_timer, on_tick, tick_period(sh), 0);
}

void bk__shard_storage_stop(bk_shard_t *sh)
{
    if (!sh->storage_handles)
        return;
    bk__fetch_flush_all(sh);
    if (sh == &sh->srv->shard0)
        cleaner_stop(sh->srv); /* cancels running cleans, closes the async */
    commit_dirty(sh);
    /* every append's callback runs here, answering its produce */
    int rc = st_io_drain(sh->io);
    if (rc)
        SC_ERROR(SUB, "shard %d: draining the io at stop: %s", sh->id, sc_err_str(rc));
    if (sh->hw_moved)
        bk__fetch_wake(sh);
    sh->storage_handles = 0;
    uv_close((uv_handle_t *)&sh->io_poll, NULL);
    uv_close((uv_handle_t *)&sh->commit_check, NULL);
    uv_close((uv_handle_t *)&sh->commit_prep, NULL);
    uv_close((uv_handle_t *)&sh->tick_timer, NULL);
    uv_close((uv_handle_t *)&sh->fetch_timer, NULL);
}

void bk__shard_storage_fini(bk_shard_t *sh)
{
    st_io_free(sh->io);
    sh->io = NULL;
}
