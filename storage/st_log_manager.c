/*
 * st_log_manager.c -- partition logs by (topic, partition).
 *
 * A chained hash map (FNV-1a over topic and partition, power-of-two buckets,
 * doubled at load factor 1). Opening: directory names are collected and the
 * io picked on the calling thread, then st_log_open runs on up to
 * opts->threads workers pulling jobs from a shared counter; the map is filled
 * after the join, so no lock guards it.
 */
#include "st_log_manager.h"

#include "sc_err.h"
#include "sc_log.h"
#include "sc_mem.h"
#include "sc_time.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define TOPIC_MAX 249

typedef struct entry {
    struct entry *next;
    char *topic;
    int32_t partition;
    unsigned dir;
    st_log_t *log;
} entry_t;

struct st_log_manager {
    char **dirs;
    unsigned ndirs;
    unsigned *per_dir; /* partitions per dir */
    st_log_config_t cfg;
    st_log_pick_io_cb pick_io;
    void *pick_arg;
    entry_t **buckets;
    unsigned nbuckets, count;
};

int st_log_parse_tp(const char *name, char *topic, size_t cap, int32_t *partition)
{
    const char *dash = strrchr(name, '-');
    size_t tl;
    int64_t p = 0;

    if (!dash || dash == name || dash[1] == '\0')
        return -1;
    tl = (size_t)(dash - name);
    if (tl > TOPIC_MAX || tl + 1 > cap)
        return -1;
    for (const char *c = dash + 1; *c; c++) {
        if (*c < '0' || *c > '9')
            return -1;
        p = p * 10 + (*c - '0');
        if (p > INT32_MAX)
            return -1;
    }
    for (size_t i = 0; i < tl; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return -1;
    }
    if ((tl == 1 && name[0] == '.') || (tl == 2 && name[0] == '.' && name[1] == '.'))
        return -1;
    memcpy(topic, name, tl);
    topic[tl] = '\0';
    *partition = (int32_t)p;
    return 0;
}

static uint32_t hash_tp(const char *topic, int32_t partition)
{
    uint32_t h = 2166136261u;
    for (const unsigned char *p = (const unsigned char *)topic; *p; p++)
        h = (h ^ *p) * 16777619u;
    for (int i = 0; i < 4; i++)
        h = (h ^ ((uint32_t)partition >> (8 * i) & 0xff)) * 16777619u;
    return h;
}

static entry_t **slot(const st_log_manager_t *m, const char *topic, int32_t partition)
{
    entry_t **e = &m->buckets[hash_tp(topic, partition) & (m->nbuckets - 1)];
    while (*e && !((*e)->partition == partition && strcmp((*e)->topic, topic) == 0))
        e = &(*e)->next;
    return e;
}

static int map_grow(st_log_manager_t *m)
{
    unsigned n = m->nbuckets ? m->nbuckets * 2 : 64;
    entry_t **b = sc_calloc(n, sizeof *b);
    if (!b)
        return SC_ERR_NO_MEMORY;
    for (unsigned i = 0; i < m->nbuckets; i++) {
        entry_t *e = m->buckets[i];
        while (e) {
            entry_t *next = e->next;
            unsigned k = hash_tp(e->topic, e->partition) & (n - 1);
            e->next = b[k];
            b[k] = e;
            e = next;
        }
    }
    sc_free(m->buckets);
    m->buckets = b;
    m->nbuckets = n;
    return 0;
}

/* Adds (topic, partition) -> log. Takes no ownership on failure. */
static int map_put(st_log_manager_t *m, const char *topic, int32_t partition, unsigned dir,
                   st_log_t *log)
{
    entry_t *e;
    int rc;

    if (m->count >= m->nbuckets && (rc = map_grow(m)))
        return rc;
    if (!(e = sc_calloc(1, sizeof *e)) || !(e->topic = sc_strdup(topic))) {
        sc_free(e);
        return SC_ERR_NO_MEMORY;
    }
    e->partition = partition;
    e->dir = dir;
    e->log = log;
    unsigned k = hash_tp(topic, partition) & (m->nbuckets - 1);
    e->next = m->buckets[k];
    m->buckets[k] = e;
    m->count++;
    m->per_dir[dir]++;
    return 0;
}

static void manager_free(st_log_manager_t *m)
{
    for (unsigned i = 0; i < m->nbuckets; i++) {
        entry_t *e = m->buckets[i];
        while (e) {
            entry_t *next = e->next;
            sc_free(e->topic);
            sc_free(e);
            e = next;
        }
    }
    for (unsigned i = 0; i < m->ndirs; i++)
        sc_free(m->dirs[i]);
    sc_free(m->dirs);
    sc_free(m->per_dir);
    sc_free(m->buckets);
    sc_free(m);
}

/* ---- parallel open ---- */

typedef struct {
    char path[PATH_MAX];
    char topic[TOPIC_MAX + 1];
    int32_t partition;
    unsigned dir;
    st_io_t *io;
    st_log_t *log;
    int rc;
} job_t;

typedef struct {
    job_t *jobs;
    size_t njobs;
    atomic_size_t next;
    const st_log_config_t *cfg;
} pool_t;

static void *worker(void *arg)
{
    pool_t *p = arg;
    for (;;) {
        size_t i = atomic_fetch_add(&p->next, 1);
        if (i >= p->njobs)
            break;
        job_t *j = &p->jobs[i];
        j->rc = st_log_open(j->path, p->cfg, j->io, &j->log);
        if (j->rc)
            SC_ERROR("storage", "cannot open partition %s: %s", j->path, sc_err_str(j->rc));
    }
    return NULL;
}

static int collect(st_log_manager_t *m, unsigned d, job_t **jobs, size_t *n, size_t *cap)
{
    DIR *dh;
    struct dirent *de;
    int rc = 0;

    if (mkdir(m->dirs[d], 0755) && errno != EEXIST)
        return -errno;
    if (!(dh = opendir(m->dirs[d])))
        return -errno;
    while ((de = readdir(dh))) {
        char path[PATH_MAX], topic[TOPIC_MAX + 1];
        int32_t partition;
        struct stat st;
        if (de->d_name[0] == '.')
            continue;
        if (snprintf(path, sizeof path, "%s/%s", m->dirs[d], de->d_name) >= (int)sizeof path)
            continue;
        if (stat(path, &st) || !S_ISDIR(st.st_mode))
            continue;
        if (st_log_parse_tp(de->d_name, topic, sizeof topic, &partition)) {
            SC_WARN("storage", "%s: not a <topic>-<partition> directory; skipped", path);
            continue;
        }
        if (*n == *cap) {
            size_t c = *cap ? *cap * 2 : 16;
            job_t *v = sc_realloc(*jobs, c * sizeof *v);
            if (!v) {
                rc = SC_ERR_NO_MEMORY;
                break;
            }
            *jobs = v;
            *cap = c;
        }
        job_t *j = &(*jobs)[(*n)++];
        memset(j, 0, sizeof *j);
        memcpy(j->path, path, sizeof path);
        memcpy(j->topic, topic, sizeof topic);
        j->partition = partition;
        j->dir = d;
    }
    closedir(dh);
    return rc;
}

int st_log_manager_open(const st_log_manager_opts_t *opts, st_log_manager_t **out)
{
    st_log_manager_t *m;
    job_t *jobs = NULL;
    size_t njobs = 0, cap = 0;
    pthread_t th[16];
    unsigned nth = 0, want = opts->threads ? opts->threads : 4;
    int64_t t0 = sc_mono_ms();
    char dirs[1024];
    size_t dl = 0;
    int rc = 0;

    if (opts->ndirs == 0 || !opts->pick_io)
        return SC_ERR_INVALID_CONFIG;
    if (!(m = sc_calloc(1, sizeof *m)))
        return SC_ERR_NO_MEMORY;
    m->cfg = opts->cfg;
    m->pick_io = opts->pick_io;
    m->pick_arg = opts->pick_arg;
    if (!(m->dirs = sc_calloc(opts->ndirs, sizeof *m->dirs)) ||
        !(m->per_dir = sc_calloc(opts->ndirs, sizeof *m->per_dir)) || map_grow(m)) {
        rc = SC_ERR_NO_MEMORY;
        goto out;
    }
    for (unsigned d = 0; d < opts->ndirs; d++) {
        if (!(m->dirs[d] = sc_strdup(opts->dirs[d]))) {
            rc = SC_ERR_NO_MEMORY;
            goto out;
        }
        m->ndirs++;
        if ((rc = collect(m, d, &jobs, &njobs, &cap))) {
            SC_ERROR("storage", "%s: listing log dir: %s", m->dirs[d], sc_err_str(rc));
            goto out;
        }
        dl += (size_t)snprintf(dirs + dl, sizeof dirs - dl, "%s%s", d ? "," : "", m->dirs[d]);
        if (dl >= sizeof dirs)
            dl = sizeof dirs - 1;
    }
    for (size_t i = 0; i < njobs; i++) {
        jobs[i].io = m->pick_io(m->pick_arg, jobs[i].topic, jobs[i].partition);
        if (!jobs[i].io) {
            rc = SC_ERR_INVALID_CONFIG;
            goto out;
        }
    }
    pool_t pool = {.jobs = jobs, .njobs = njobs, .cfg = &m->cfg};
    atomic_init(&pool.next, 0);
    if (want > sizeof th / sizeof th[0])
        want = sizeof th / sizeof th[0];
    if (want > njobs)
        want = (unsigned)njobs;
    for (; nth < want; nth++)
        if (pthread_create(&th[nth], NULL, worker, &pool))
            break;
    if (nth == 0)
        worker(&pool); /* no thread could start: do it here */
    for (unsigned t = 0; t < nth; t++)
        pthread_join(th[t], NULL);
    for (size_t i = 0; i < njobs; i++)
        if (jobs[i].rc && !rc)
            rc = jobs[i].rc;
    for (size_t i = 0; i < njobs && !rc; i++) {
        if ((rc = map_put(m, jobs[i].topic, jobs[i].partition, jobs[i].dir, jobs[i].log)))
            break;
        jobs[i].log = NULL;
    }
    if (!rc)
        SC_INFO("storage", "opened %zu partitions in %" PRId64 " ms from %s", njobs,
                sc_mono_ms() - t0, dirs);
out:
    for (size_t i = 0; i < njobs; i++)
        st_log_close(jobs[i].log); /* only those not handed to the map */
    sc_free(jobs);
    if (rc) {
        st_log_manager_close(m);
        return rc;
    }
    *out = m;
    return 0;
}

int st_log_manager_close(st_log_manager_t *m)
{
    int rc = 0;

    if (!m)
        return 0;
    for (unsigned i = 0; i < m->nbuckets; i++)
        for (entry_t *e = m->buckets[i]; e; e = e->next) {
            int r = st_log_close(e->log);
            e->log = NULL;
            if (r && !rc)
                rc = r;
        }
    manager_free(m);
    return rc;
}

st_log_t *st_log_manager_find(const st_log_manager_t *m, const char *topic, int32_t partition)
{
    entry_t *e = *slot(m, topic, partition);
    return e ? e->log : NULL;
}

int st_log_manager_create(st_log_manager_t *m, const char *topic, int32_t partition,
                          const st_log_config_t *cfg, st_log_t **out)
{
    char name[TOPIC_MAX + 16], chk[TOPIC_MAX + 1], path[PATH_MAX];
    int32_t p2;
    unsigned d = 0;
    st_io_t *io;
    st_log_t *log;
    int rc;

    snprintf(name, sizeof name, "%s-%" PRId32, topic, partition);
    if (partition < 0 || strlen(topic) > TOPIC_MAX ||
        st_log_parse_tp(name, chk, sizeof chk, &p2) || strcmp(chk, topic) != 0)
        return SC_ERR_INVALID_TOPIC_EXCEPTION;
    if (*slot(m, topic, partition))
        return -EEXIST;
    for (unsigned i = 1; i < m->ndirs; i++)
        if (m->per_dir[i] < m->per_dir[d])
            d = i;
    if (snprintf(path, sizeof path, "%s/%s", m->dirs[d], name) >= (int)sizeof path)
        return -ENAMETOOLONG;
    if (!(io = m->pick_io(m->pick_arg, topic, partition)))
        return SC_ERR_INVALID_CONFIG;
    if ((rc = st_log_open(path, cfg ? cfg : &m->cfg, io, &log)))
        return rc;
    if ((rc = map_put(m, topic, partition, d, log))) {
        st_log_close(log);
        return rc;
    }
    SC_INFO("storage", "created partition %s", path);
    if (out)
        *out = log;
    return 0;
}

int st_log_manager_delete(st_log_manager_t *m, const char *topic, int32_t partition)
{
    entry_t **pe = slot(m, topic, partition), *e = *pe;
    int rc;

    if (!e)
        return SC_ERR_UNKNOWN_TOPIC_OR_PARTITION;
    *pe = e->next;
    m->count--;
    m->per_dir[e->dir]--;
    rc = st_log_delete(e->log);
    sc_free(e->topic);
    sc_free(e);
    return rc;
}

unsigned st_log_manager_count(const st_log_manager_t *m) { return m->count; }

void st_log_manager_foreach(const st_log_manager_t *m, st_log_manager_each_cb cb, void *arg)
{
    for (unsigned i = 0; i < m->nbuckets; i++)
        for (entry_t *e = m->buckets[i]; e; e = e->next)
            cb(arg, e->topic, e->partition, e->log);
}
