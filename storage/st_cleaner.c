/*
 * st_cleaner.c -- log compaction. The design (passes, crash safety, the
 * checkpoint file) is described in st_cleaner.h; this file adds the details.
 *
 * OFFSET MAP: open addressing over slots of {hash[2], offset}, 24 bytes each;
 * the key hash is 128 bits (two 64-bit FNV-1a variants with different seeds,
 * each finished with a splitmix mixer), like Kafka's MD5-based SkimpyOffsetMap:
 * a collision between two live keys would drop one key's older records. The
 * map is filled to at most 90 % (Kafka's log.cleaner.io.buffer.load.factor)
 * and sized per clean for the dirty section's record count (from the batch
 * headers), at most dedupe_bytes. Before a dirty segment is mapped, its
 * record count must fit; otherwise the clean stops at that segment's base.
 *
 * SWAP FILE <B0>.swap (B0: the job's first group), big-endian: magic "STSW",
 * uint16 version 1, uint16 0, int64 new cleaner checkpoint, int64 group
 * count N, N x (int64 base, int64 end), uint32 CRC-32C of everything before.
 */
#include "st_cleaner.h"

#include "st_file.h"
#include "st_log_int.h"

#include "sc_buf.h"
#include "sc_crc32c.h"
#include "sc_endian.h"
#include "sc_err.h"
#include "sc_log.h"
#include "sc_mem.h"
#include "sc_time.h"
#include "sc_varint.h"
#ifdef ST_HAVE_CODEC
#include "sc_codec.h"
#endif

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SUB "cleaner"
#define CLEANED_SUFFIX ".cleaned"
#define SWAP_SUFFIX ".swap"
#define SWAP_MAGIC 0x53545357u
#define SWAP_VERSION 1
#define MAP_LOAD 0.9
#define WRITE_CHUNK (1u << 20)
#define MAX_DECOMPRESSED (256u << 20)
/* RecordBatch attributes bit 6 (KIP-534): baseTimestamp is the delete horizon */
#define ST_BATCH_ATTR_DELETE_HORIZON 0x40

/* ---- crash points (tests) ---- */

int st__cleaner_crash_after = -1;

/* Counts a crash point; _exit(86) when the count set by a test runs out. */
static void crash_point(void)
{
    if (st__cleaner_crash_after > 0 && --st__cleaner_crash_after == 0)
        _exit(86);
}

/* ---- throttle ---- */

void st_throttle_init(st_throttle_t *t, double rate)
{
    pthread_mutex_init(&t->mu, NULL);
    t->rate = rate;
    t->tokens = rate > 0 ? rate : 0;
    t->last_ns = sc_mono_ns();
}

void st_throttle_fini(st_throttle_t *t) { pthread_mutex_destroy(&t->mu); }

static int unlimited(double rate) { return !(rate > 0) || rate >= 1e300; }

int64_t st_throttle_charge(st_throttle_t *t, uint64_t bytes, int64_t now_ns)
{
    int64_t wait = 0;
    pthread_mutex_lock(&t->mu);
    if (!unlimited(t->rate)) {
        if (now_ns > t->last_ns) {
            t->tokens += t->rate * (double)(now_ns - t->last_ns) / 1e9;
            if (t->tokens > t->rate)
                t->tokens = t->rate; /* burst: one second's worth */
            t->last_ns = now_ns;
        }
        t->tokens -= (double)bytes;
        if (t->tokens < 0)
            wait = (int64_t)(-t->tokens / t->rate * 1e9);
    }
    pthread_mutex_unlock(&t->mu);
    return wait;
}

void st_throttle_take(st_throttle_t *t, uint64_t bytes)
{
    if (!t)
        return;
    int64_t wait = st_throttle_charge(t, bytes, sc_mono_ns());
    if (wait > 0) {
        struct timespec ts = {(time_t)(wait / 1000000000), (long)(wait % 1000000000)};
        while (nanosleep(&ts, &ts) && errno == EINTR)
            ;
    }
}

/* ---- key hashing and the offset map ---- */

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static void key_hash(const uint8_t *k, size_t n, uint64_t h[2])
{
    uint64_t a = 0xcbf29ce484222325ull, b = 0x84222325cbf29ce4ull ^ n;
    for (size_t i = 0; i < n; i++) {
        a = (a ^ k[i]) * 0x100000001b3ull;
        b = (b ^ k[i]) * 0x00000100000001b3ull + 0x9e3779b97f4a7c15ull;
    }
    h[0] = mix64(a ^ n);
    h[1] = mix64(b + 0x632be59bd9b4e019ull);
}

typedef struct {
    uint64_t h0, h1;
    int64_t offset; /* -1: empty */
} slot_t;

typedef struct {
    slot_t *s;
    uint64_t cap;   /* power of two */
    uint64_t n;
    uint64_t max_n; /* load limit */
} omap_t;

static int omap_init(omap_t *m, uint64_t bytes)
{
    uint64_t cap = 1;
    while (cap * 2 * sizeof(slot_t) <= bytes)
        cap *= 2;
    if (cap < 16)
        cap = 16;
    m->s = sc_malloc(cap * sizeof(slot_t));
    if (!m->s)
        return SC_ERR_NO_MEMORY;
    for (uint64_t i = 0; i < cap; i++)
        m->s[i].offset = -1;
    m->cap = cap;
    m->n = 0;
    m->max_n = (uint64_t)((double)cap * MAP_LOAD);
    return 0;
}

static void omap_fini(omap_t *m) { sc_free(m->s); }

static void omap_put(omap_t *m, const uint64_t h[2], int64_t offset)
{
    uint64_t i = h[0] & (m->cap - 1);
    for (;; i = (i + 1) & (m->cap - 1)) {
        slot_t *s = &m->s[i];
        if (s->offset < 0) {
            s->h0 = h[0];
            s->h1 = h[1];
            s->offset = offset;
            m->n++;
            return;
        }
        if (s->h0 == h[0] && s->h1 == h[1]) {
            if (offset > s->offset)
                s->offset = offset;
            return;
        }
    }
}

static int64_t omap_get(const omap_t *m, const uint64_t h[2])
{
    uint64_t i = h[0] & (m->cap - 1);
    for (;; i = (i + 1) & (m->cap - 1)) {
        const slot_t *s = &m->s[i];
        if (s->offset < 0)
            return -1;
        if (s->h0 == h[0] && s->h1 == h[1])
            return s->offset;
    }
}

/* ---- records ---- */

typedef struct {
    const uint8_t *start; /* the record, length prefix included */
    size_t size;
    int64_t offset_delta;
    const uint8_t *key;   /* NULL: null key */
    size_t key_len;
    int tombstone;        /* null value */
} rec_t;

/* Decodes the record at p[0..n): 0 and *r, or SC_ERR_CORRUPT_MESSAGE. */
static int rec_decode(const uint8_t *p, size_t n, rec_t *r)
{
    int64_t len, v;
    size_t k = sc_varint_decode(p, n, &len), o;
    if (!k || len < 0 || (uint64_t)len > n - k)
        return SC_ERR_CORRUPT_MESSAGE;
    r->start = p;
    r->size = k + (size_t)len;
    const uint8_t *q = p + k, *end = p + r->size;
    if (q >= end)
        return SC_ERR_CORRUPT_MESSAGE;
    q++; /* attributes */
    if (!(o = sc_varint_decode(q, (size_t)(end - q), &v))) /* timestampDelta */
        return SC_ERR_CORRUPT_MESSAGE;
    q += o;
    if (!(o = sc_varint_decode(q, (size_t)(end - q), &r->offset_delta)))
        return SC_ERR_CORRUPT_MESSAGE;
    q += o;
    if (!(o = sc_varint_decode(q, (size_t)(end - q), &v)) || v < -1)
        return SC_ERR_CORRUPT_MESSAGE;
    q += o;
    if (v >= 0) {
        if ((uint64_t)v > (uint64_t)(end - q))
            return SC_ERR_CORRUPT_MESSAGE;
        r->key = q;
        r->key_len = (size_t)v;
        q += v;
    } else {
        r->key = NULL;
        r->key_len = 0;
    }
    if (!(o = sc_varint_decode(q, (size_t)(end - q), &v)) || v < -1)
        return SC_ERR_CORRUPT_MESSAGE;
    q += o;
    if (v > 0 && (uint64_t)v > (uint64_t)(end - q))
        return SC_ERR_CORRUPT_MESSAGE;
    r->tombstone = v < 0;
    return 0;
}

/* The records of a batch (decompressed when needed) in recs and n; owned is
 * filled when decompression allocated (caller finis it). */
static int batch_records(const uint8_t *b, size_t size, const st_batch_hdr_t *h, sc_buf_t *owned,
                         const uint8_t **recs, size_t *n)
{
    int codec = h->attributes & ST_BATCH_ATTR_CODEC_MASK;
    if (codec == 0) {
        *recs = b + ST_BATCH_HEADER_SIZE;
        *n = size - ST_BATCH_HEADER_SIZE;
        return 0;
    }
#ifdef ST_HAVE_CODEC
    sc_buf_reset(owned);
    int rc = sc_codec_decompress(codec, b + ST_BATCH_HEADER_SIZE, size - ST_BATCH_HEADER_SIZE,
                                 MAX_DECOMPRESSED, owned);
    if (rc)
        return rc;
    *recs = owned->data;
    *n = owned->len;
    return 0;
#else
    (void)owned;
    return SC_ERR_UNSUPPORTED_COMPRESSION_TYPE;
#endif
}

/* ---- the job ---- */

typedef struct {
    int64_t base, end; /* end: the next segment's base */
    uint64_t size;
    int fd;
    int64_t mtime_ms;
    int64_t max_ts;
} src_t;

typedef struct {
    unsigned first, n; /* source segments [first, first + n) */
    int64_t base, end;
    int64_t mtime_ms;
    int written; /* .cleaned files complete */
} group_t;

struct st_clean_job {
    char *dir;
    int dir_fd;
    st_log_config_t cfg;
    int64_t now_ms;
    uint64_t gen;
    src_t *src;
    unsigned nsrc;
    unsigned first_dirty_seg;
    int64_t first_dirty, first_uncleanable;
    unsigned nclean; /* sources [0, nclean) are rewritten */
    int64_t end;
    group_t *groups;
    unsigned ngroups;
    int ran; /* st_cleaner_run succeeded */
    int cancel; /* st_cleaner_job_cancel (atomic) */
    st_clean_result_t res;
};

static int64_t file_mtime_ms(int fd)
{
    struct stat st;
    if (fstat(fd, &st))
        return 0;
    return (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
}

void st_cleaner_state(st_log_t *log, int64_t now_ms, st_clean_state_t *out)
{
    memset(out, 0, sizeof *out);
    if (log->nsegs < 2) {
        out->first_dirty = out->first_uncleanable = log->nsegs ? log->segs[0]->base : 0;
        return;
    }
    int64_t fd = log->clean_upto;
    if (fd < log->segs[0]->base)
        fd = log->segs[0]->base;
    int64_t fu = log->segs[log->nsegs - 1]->base;
    for (unsigned i = 0; i + 1 < log->nsegs; i++) {
        st_segment_t *s = log->segs[i];
        /* Kafka's first uncleanable offset: not past the high watermark, nor
         * into records younger than min.compaction.lag.ms */
        if (log->segs[i + 1]->base > log->hw ||
            (s->base >= fd && log->cfg.min_compaction_lag_ms > 0 && s->max_ts >= 0 &&
             now_ms - s->max_ts < log->cfg.min_compaction_lag_ms)) {
            fu = s->base;
            break;
        }
    }
    if (fd > fu)
        fd = fu;
    for (unsigned i = 0; i + 1 < log->nsegs; i++) {
        st_segment_t *s = log->segs[i];
        int64_t end = log->segs[i + 1]->base;
        if (end <= fd)
            out->clean_bytes += s->size;
        else if (end <= fu)
            out->dirty_bytes += s->size;
    }
    out->first_dirty = fd;
    out->first_uncleanable = fu;
    uint64_t tot = out->clean_bytes + out->dirty_bytes;
    out->ratio = tot ? (double)out->dirty_bytes / (double)tot : 0;
}

static void cleaned_name(char *out, const char *dir, int64_t base, const char *suffix)
{
    snprintf(out, PATH_MAX, "%s/%020" PRId64 "%s" CLEANED_SUFFIX, dir, base, suffix);
}

static const char *const seg_suffixes[3] = {ST_SEGMENT_INDEX_SUFFIX, ST_SEGMENT_TIMEINDEX_SUFFIX,
                                            ST_SEGMENT_LOG_SUFFIX};

static void unlink_cleaned(const char *dir, int64_t base)
{
    char path[PATH_MAX];
    for (int k = 0; k < 3; k++) {
        cleaned_name(path, dir, base, seg_suffixes[k]);
        (void)unlink(path);
    }
}

void st_cleaner_job_free(st_clean_job_t *job)
{
    if (!job)
        return;
    for (unsigned g = 0; g < job->ngroups; g++)
        unlink_cleaned(job->dir, job->groups[g].base);
    for (unsigned i = 0; i < job->nsrc; i++)
        if (job->src[i].fd >= 0)
            close(job->src[i].fd);
    if (job->dir_fd >= 0)
        close(job->dir_fd);
    sc_free(job->src);
    sc_free(job->groups);
    sc_free(job->dir);
    sc_free(job);
}

int st_cleaner_prepare(st_log_t *log, int64_t now_ms, st_clean_job_t **out)
{
    st_clean_state_t st;
    st_clean_job_t *job;

    if (log->failed)
        return SC_ERR_LOG_FAILED;
    st_cleaner_state(log, now_ms, &st);
    if (st.dirty_bytes == 0)
        return SC_ERR_NOT_FOUND;
    /* closed segments wholly below first_uncleanable */
    unsigned n = 0;
    while (n + 1 < log->nsegs && log->segs[n + 1]->base <= st.first_uncleanable)
        n++;
    if (n == 0)
        return SC_ERR_NOT_FOUND;
    if (!(job = sc_calloc(1, sizeof *job)))
        return SC_ERR_NO_MEMORY;
    job->dir_fd = -1;
    if (!(job->dir = sc_strdup(log->dir)) || !(job->src = sc_calloc(n, sizeof *job->src))) {
        st_cleaner_job_free(job);
        return SC_ERR_NO_MEMORY;
    }
    job->cfg = log->cfg;
    job->now_ms = now_ms;
    job->gen = log->gen;
    job->first_dirty = st.first_dirty;
    job->first_uncleanable = st.first_uncleanable;
    job->first_dirty_seg = n;
    for (unsigned i = 0; i < n; i++) {
        st_segment_t *s = log->segs[i];
        src_t *x = &job->src[job->nsrc];
        x->base = s->base;
        x->end = log->segs[i + 1]->base;
        x->size = s->size;
        x->max_ts = s->max_ts;
        x->fd = dup(s->fd);
        if (x->fd < 0) {
            int rc = -errno;
            st_cleaner_job_free(job);
            return rc;
        }
        x->mtime_ms = file_mtime_ms(x->fd);
        job->nsrc++;
        if (x->end > st.first_dirty && job->first_dirty_seg == n) {
            job->first_dirty_seg = i;
        }
    }
    job->dir_fd = open(log->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (job->dir_fd < 0) {
        int rc = -errno;
        st_cleaner_job_free(job);
        return rc;
    }
    if (job->first_dirty_seg == n) {
        st_cleaner_job_free(job);
        return SC_ERR_NOT_FOUND;
    }
    *out = job;
    return 0;
}

/* ---- reading a source segment batch by batch ---- */

typedef struct {
    const src_t *src;
    st_reader_t r;
    uint8_t win[8192];
    uint64_t pos;
    uint8_t *buf; /* the current batch */
    size_t cap;
    st_batch_hdr_t h;
    size_t size;
} walk_t;

static void walk_init(walk_t *w, const src_t *src)
{
    memset(w, 0, sizeof *w);
    w->src = src;
    st_reader_init(&w->r, src->fd, src->size, w->win, sizeof w->win);
}

static void walk_fini(walk_t *w) { sc_free(w->buf); }

/* Next batch: 1 and w->h / w->buf when headers_only is 0, 0 at the end, or an
 * error. */
static int walk_next(walk_t *w, int headers_only, st_throttle_t *thr)
{
    const char *why = NULL;
    if (w->size)
        w->pos += w->size;
    w->size = 0;
    int rc = st_reader_header(&w->r, w->pos, &w->h, &why);
    if (rc == 1)
        return 0;
    if (rc) {
        if (rc == SC_ERR_CORRUPT_MESSAGE)
            SC_ERROR(SUB, "segment %" PRId64 " position %" PRIu64 ": %s", w->src->base, w->pos,
                     why ? why : "bad batch");
        return rc;
    }
    w->size = (size_t)w->h.length + ST_BATCH_LOG_OVERHEAD;
    if (headers_only)
        return 1;
    if (w->size > w->cap) {
        uint8_t *b = sc_realloc(w->buf, w->size);
        if (!b)
            return SC_ERR_NO_MEMORY;
        w->buf = b;
        w->cap = w->size;
    }
    if ((rc = st_file_pread_all(w->src->fd, w->buf, w->size, w->pos)))
        return rc == SC_ERR_CORRUPT_MESSAGE ? -EIO : rc;
    st_throttle_take(thr, w->size);
    if (st_batch_validate(w->buf, w->size, 1, &w->h)) {
        SC_ERROR(SUB, "segment %" PRId64 " position %" PRIu64 ": invalid batch", w->src->base,
                 w->pos);
        return SC_ERR_CORRUPT_MESSAGE;
    }
    return 1;
}

/* ---- pass 1 ---- */

static int cancelled(const st_clean_job_t *job, const st_cleaner_opts_t *o)
{
    return (o->cancel && *o->cancel) || __atomic_load_n(&job->cancel, __ATOMIC_RELAXED);
}

void st_cleaner_job_cancel(st_clean_job_t *job)
{
    __atomic_store_n(&job->cancel, 1, __ATOMIC_RELAXED);
}

static int map_segment(const st_clean_job_t *job, omap_t *m, const src_t *src,
                       const st_cleaner_opts_t *o, int64_t *nrec,
                       sc_buf_t *tmp)
{
    walk_t w;
    int rc;
    walk_init(&w, src);
    while ((rc = walk_next(&w, 0, o->throttle)) == 1) {
        const uint8_t *recs;
        size_t n;
        if (cancelled(job, o)) {
            rc = SC_ERR_CLOSED;
            break;
        }
        if (w.h.attributes & ST_BATCH_ATTR_CONTROL)
            continue;
        rc = batch_records(w.buf, w.size, &w.h, tmp, &recs, &n);
        if (rc == SC_ERR_UNSUPPORTED_COMPRESSION_TYPE) {
            rc = 0; /* no codec built in: kept as is, its keys unknown */
            continue;
        }
        if (rc)
            break;
        for (int32_t i = 0; i < w.h.records_count; i++) {
            rec_t r;
            if ((rc = rec_decode(recs, n, &r)))
                goto out;
            recs += r.size;
            n -= r.size;
            (*nrec)++;
            if (!r.key)
                continue;
            uint64_t h[2];
            key_hash(r.key, r.key_len, h);
            omap_put(m, h, w.h.base_offset + r.offset_delta);
        }
    }
out:
    walk_fini(&w);
    return rc < 0 || rc > 1 ? rc : 0;
}

static int count_records(const src_t *src, int64_t *n)
{
    walk_t w;
    int rc;
    walk_init(&w, src);
    *n = 0;
    while ((rc = walk_next(&w, 1, NULL)) == 1)
        *n += w.h.records_count;
    walk_fini(&w);
    return rc;
}

/* ---- producers' last batches ---- */

/* producer id -> base offset of its last batch in the cleaned range */
typedef struct {
    int64_t *pid, *base; /* pid -1: empty slot */
    size_t cap, n;
} pidmap_t;

static uint64_t pid_slot(int64_t pid, size_t cap)
{
    return mix64((uint64_t)pid) & (cap - 1);
}

static int pidmap_put(pidmap_t *m, int64_t pid, int64_t base)
{
    if (2 * (m->n + 1) > m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 64;
        int64_t *np = sc_malloc(cap * sizeof *np), *nb = sc_malloc(cap * sizeof *nb);
        if (!np || !nb) {
            sc_free(np);
            sc_free(nb);
            return SC_ERR_NO_MEMORY;
        }
        for (size_t i = 0; i < cap; i++)
            np[i] = -1;
        for (size_t i = 0; i < m->cap; i++) {
            if (m->pid[i] < 0)
                continue;
            uint64_t k = pid_slot(m->pid[i], cap);
            while (np[k] >= 0)
                k = (k + 1) & (cap - 1);
            np[k] = m->pid[i];
            nb[k] = m->base[i];
        }
        sc_free(m->pid);
        sc_free(m->base);
        m->pid = np;
        m->base = nb;
        m->cap = cap;
    }
    uint64_t k = pid_slot(pid, m->cap);
    while (m->pid[k] >= 0 && m->pid[k] != pid)
        k = (k + 1) & (m->cap - 1);
    if (m->pid[k] < 0) {
        m->pid[k] = pid;
        m->n++;
    }
    m->base[k] = base;
    return 0;
}

static int64_t pidmap_get(const pidmap_t *m, int64_t pid)
{
    if (!m->cap)
        return -1;
    uint64_t k = pid_slot(pid, m->cap);
    while (m->pid[k] >= 0) {
        if (m->pid[k] == pid)
            return m->base[k];
        k = (k + 1) & (m->cap - 1);
    }
    return -1;
}

static void pidmap_fini(pidmap_t *m)
{
    sc_free(m->pid);
    sc_free(m->base);
}

/* The last batch of every producer id in sources [0, n), from the headers. */
static int map_producers(const st_clean_job_t *job, unsigned n, pidmap_t *m)
{
    int rc = 0;
    for (unsigned i = 0; i < n && !rc; i++) {
        walk_t w;
        walk_init(&w, &job->src[i]);
        while ((rc = walk_next(&w, 1, NULL)) == 1)
            if (w.h.producer_id >= 0 && !(w.h.attributes & ST_BATCH_ATTR_CONTROL) &&
                (rc = pidmap_put(m, w.h.producer_id, w.h.base_offset)))
                break;
        walk_fini(&w);
        if (rc == 1)
            rc = 0;
    }
    return rc;
}

/* ---- pass 2 ---- */

typedef struct {
    st_clean_job_t *job;
    const omap_t *map;
    const pidmap_t *pids;
    const st_cleaner_opts_t *o;
    int fd;
    uint64_t pos;   /* bytes written + buffered */
    sc_buf_t out;   /* pending writes */
    uint64_t flushed;
    st_segment_t seg; /* index state for the cleaned segment */
    sc_buf_t recs, tmp, z;
} writer_t;

static int writer_flush(writer_t *wr)
{
    if (!wr->out.len)
        return 0;
    int rc = st_file_pwrite_all(wr->fd, wr->out.data, wr->out.len, wr->flushed);
    if (rc)
        return rc;
    st_throttle_take(wr->o->throttle, wr->out.len);
    wr->flushed += wr->out.len;
    sc_buf_reset(&wr->out);
    return 0;
}

static int writer_add(writer_t *wr, const uint8_t *b, size_t size)
{
    st_batch_hdr_t h;
    int rc = st_batch_hdr_decode(b, size, &h);
    if (rc)
        return rc;
    st_segment_index_batch(&wr->seg, &h, wr->pos, wr->job->cfg.index_interval_bytes);
    if ((rc = sc_buf_append(&wr->out, b, size)))
        return rc;
    wr->pos += size;
    wr->job->res.bytes_out += size;
    return wr->out.len >= WRITE_CHUNK ? writer_flush(wr) : 0;
}

/* Appends record r to out with its timestamp delta moved from base old_ts
 * to new_ts (the record otherwise byte for byte). */
static int rebase_record(sc_buf_t *out, const rec_t *r, int64_t old_ts, int64_t new_ts)
{
    int64_t len, tsd;
    size_t k = sc_varint_decode(r->start, r->size, &len);
    const uint8_t *attr = r->start + k;
    size_t o = sc_varint_decode(attr + 1, r->size - k - 1, &tsd);
    const uint8_t *rest = attr + 1 + o;
    size_t rest_len = r->size - (size_t)(rest - r->start);
    int64_t nd = old_ts + tsd - new_ts;
    int64_t body = 1 + (int64_t)sc_varint_size(nd) + (int64_t)rest_len;
    int rc = sc_buf_append_varint(out, body);
    if (!rc)
        rc = sc_buf_append_u8(out, *attr);
    if (!rc)
        rc = sc_buf_append_varint(out, nd);
    if (!rc)
        rc = sc_buf_append(out, rest, rest_len);
    return rc;
}

/* The header of batch w with no records (Kafka's empty batch: uncompressed,
 * lastOffsetDelta, producer fields and timestamps kept), into the writer. */
static int write_empty_batch(writer_t *wr, const walk_t *w)
{
    uint8_t b[ST_BATCH_HEADER_SIZE];
    memcpy(b, w->buf, sizeof b);
    sc_store_be32(b + ST_BATCH_OFF_LENGTH, (uint32_t)(sizeof b - ST_BATCH_LOG_OVERHEAD));
    sc_store_be16(b + ST_BATCH_OFF_ATTRIBUTES,
                  (uint16_t)(w->h.attributes & ~(ST_BATCH_ATTR_CODEC_MASK |
                                                 ST_BATCH_ATTR_DELETE_HORIZON)));
    sc_store_be32(b + ST_BATCH_OFF_RECORDS_COUNT, 0);
    sc_store_be64(b + ST_BATCH_OFF_BASE_TIMESTAMP, (uint64_t)w->h.max_timestamp);
    sc_store_be32(b + ST_BATCH_OFF_CRC,
                  sc_crc32c(0, b + ST_BATCH_OFF_ATTRIBUTES, sizeof b - ST_BATCH_OFF_ATTRIBUTES));
    return writer_add(wr, b, sizeof b);
}

/* Filters one batch into the writer.
 *
 * Tombstones follow KIP-534 (Kafka 3.0+): the first clean that keeps a
 * tombstone sets the batch's delete horizon -- attributes bit 6, and
 * baseTimestamp = now + delete.retention.ms, every record's timestampDelta
 * re-based so record timestamps do not change -- and a later clean drops the
 * batch's tombstones once now >= that horizon. */
static int clean_batch(writer_t *wr, const walk_t *w)
{
    st_clean_job_t *job = wr->job;
    const uint8_t *recs;
    size_t n;
    int32_t kept = 0;
    int changed = 0, rc, kept_tomb = 0;
    int has_horizon = (w->h.attributes & ST_BATCH_ATTR_DELETE_HORIZON) != 0;

    job->res.records_in += w->h.records_count;
    if (w->h.attributes & ST_BATCH_ATTR_CONTROL) {
        job->res.records_out += w->h.records_count;
        return writer_add(wr, w->buf, w->size);
    }
    rc = batch_records(w->buf, w->size, &w->h, &wr->tmp, &recs, &n);
    if (rc == SC_ERR_UNSUPPORTED_COMPRESSION_TYPE) {
        job->res.records_out += w->h.records_count;
        return writer_add(wr, w->buf, w->size);
    }
    if (rc)
        return rc;
    /* first walk: decide; the kept records' spans go to wr->spans */
    rec_t *keep_v = NULL;
    if (w->h.records_count > 0 &&
        !(keep_v = sc_malloc((size_t)w->h.records_count * sizeof *keep_v)))
        return SC_ERR_NO_MEMORY;
    for (int32_t i = 0; i < w->h.records_count; i++) {
        rec_t r;
        if ((rc = rec_decode(recs, n, &r)))
            goto out;
        recs += r.size;
        n -= r.size;
        int keep = 1;
        int64_t off = w->h.base_offset + r.offset_delta;
        if (r.key) {
            uint64_t h[2];
            key_hash(r.key, r.key_len, h);
            int64_t last = omap_get(wr->map, h);
            if (last > off) {
                keep = 0;
            } else if (r.tombstone && has_horizon && job->now_ms >= w->h.base_timestamp) {
                keep = 0;
                job->res.tombstones_dropped++;
            }
        }
        if (!keep) {
            changed = 1;
            continue;
        }
        if (r.tombstone)
            kept_tomb = 1;
        keep_v[kept++] = r;
    }
    job->res.records_out += kept;
    int set_horizon = kept_tomb && !has_horizon;
    /* a producer's last batch stays, if need be empty (Kafka's rule): the
     * broker rebuilds idempotent producer state from batch headers */
    int producer_last = w->h.producer_id >= 0 &&
                        pidmap_get(wr->pids, w->h.producer_id) == w->h.base_offset;
    if (kept == 0 && !producer_last) {
        rc = 0;
        goto out; /* the whole batch goes */
    }
    if (!changed && !set_horizon) {
        rc = writer_add(wr, w->buf, w->size);
        goto out;
    }
    if (kept == 0) {
        rc = write_empty_batch(wr, w);
        goto out;
    }
    int64_t base_ts = w->h.base_timestamp;
    if (set_horizon)
        base_ts = job->now_ms > INT64_MAX - job->cfg.delete_retention_ms
                      ? INT64_MAX
                      : job->now_ms + job->cfg.delete_retention_ms;
    sc_buf_reset(&wr->recs);
    for (int32_t i = 0; i < kept && !rc; i++)
        rc = set_horizon ? rebase_record(&wr->recs, &keep_v[i], w->h.base_timestamp, base_ts)
                         : sc_buf_append(&wr->recs, keep_v[i].start, keep_v[i].size);
    if (rc)
        goto out;
    /* the same header; new length, count, CRC (and delete horizon) */
    const uint8_t *body = wr->recs.data;
    size_t blen = wr->recs.len;
    int codec = w->h.attributes & ST_BATCH_ATTR_CODEC_MASK;
    if (codec) {
#ifdef ST_HAVE_CODEC
        sc_buf_reset(&wr->z);
        if ((rc = sc_codec_compress(codec, -1, body, blen, &wr->z)))
            goto out;
        body = wr->z.data;
        blen = wr->z.len;
#else
        rc = SC_ERR_UNSUPPORTED_COMPRESSION_TYPE; /* not reached */
        goto out;
#endif
    }
    size_t size = ST_BATCH_HEADER_SIZE + blen;
    uint8_t *b = sc_malloc(size);
    if (!b) {
        rc = SC_ERR_NO_MEMORY;
        goto out;
    }
    memcpy(b, w->buf, ST_BATCH_HEADER_SIZE);
    memcpy(b + ST_BATCH_HEADER_SIZE, body, blen);
    sc_store_be32(b + ST_BATCH_OFF_LENGTH, (uint32_t)(size - ST_BATCH_LOG_OVERHEAD));
    sc_store_be32(b + ST_BATCH_OFF_RECORDS_COUNT, (uint32_t)kept);
    if (set_horizon) {
        sc_store_be16(b + ST_BATCH_OFF_ATTRIBUTES,
                      (uint16_t)(w->h.attributes | ST_BATCH_ATTR_DELETE_HORIZON));
        sc_store_be64(b + ST_BATCH_OFF_BASE_TIMESTAMP, (uint64_t)base_ts);
    }
    sc_store_be32(b + ST_BATCH_OFF_CRC,
                  sc_crc32c(0, b + ST_BATCH_OFF_ATTRIBUTES, size - ST_BATCH_OFF_ATTRIBUTES));
    rc = writer_add(wr, b, size);
    sc_free(b);
out:
    sc_free(keep_v);
    return rc;
}

static int fsync_path_fd(int fd) { return fsync(fd) ? -errno : 0; }

/* Writes the cleaned files of group g. */
static int write_group(st_clean_job_t *job, group_t *g, const omap_t *map,
                       const pidmap_t *pids, const st_cleaner_opts_t *o)
{
    char path[PATH_MAX];
    writer_t wr;
    int rc = 0;

    memset(&wr, 0, sizeof wr);
    wr.job = job;
    wr.map = map;
    wr.pids = pids;
    wr.o = o;
    wr.fd = -1;
    sc_buf_init(&wr.out);
    sc_buf_init(&wr.recs);
    sc_buf_init(&wr.tmp);
    sc_buf_init(&wr.z);
    wr.seg.base = g->base;
    wr.seg.next_offset = g->base;
    wr.seg.max_ts = -1;
    wr.seg.max_ts_offset = g->base;
    wr.seg.fd = -1;

    unlink_cleaned(job->dir, g->base);
    cleaned_name(path, job->dir, g->base, ST_SEGMENT_INDEX_SUFFIX);
    if ((rc = st_index_open(path, ST_INDEX_OFFSET, g->base, 2, &wr.seg.oidx)))
        goto out;
    cleaned_name(path, job->dir, g->base, ST_SEGMENT_TIMEINDEX_SUFFIX);
    if ((rc = st_index_open(path, ST_INDEX_TIME, g->base, 2, &wr.seg.tidx)))
        goto out;
    if ((rc = st_segment_activate(&wr.seg, job->cfg.segment_index_bytes)))
        goto out;
    cleaned_name(path, job->dir, g->base, ST_SEGMENT_LOG_SUFFIX);
    wr.fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (wr.fd < 0) {
        rc = -errno;
        goto out;
    }
    for (unsigned i = g->first; i < g->first + g->n && !rc; i++) {
        const src_t *src = &job->src[i];
        walk_t w;
        walk_init(&w, src);
        job->res.bytes_in += src->size;
        job->res.segments_in++;
        while ((rc = walk_next(&w, 0, o->throttle)) == 1) {
            if (cancelled(job, o)) {
                rc = SC_ERR_CLOSED;
                break;
            }
            if ((rc = clean_batch(&wr, &w)))
                break;
        }
        walk_fini(&w);
        if (rc == 0 || rc == 1)
            rc = 0;
    }
    if (rc || (rc = writer_flush(&wr)))
        goto out;
    if ((rc = st_segment_deactivate(&wr.seg)) || (rc = st_segment_sync_indexes(&wr.seg)) ||
        (rc = fsync_path_fd(wr.fd)))
        goto out;
    /* Kafka: the cleaned segment keeps the newest source mtime */
    struct timespec ts[2] = {{0, UTIME_OMIT},
                             {(time_t)(g->mtime_ms / 1000), (long)(g->mtime_ms % 1000) * 1000000}};
    if (futimens(wr.fd, ts))
        rc = -errno;
    if (!rc)
        g->written = 1;
    crash_point();
out:
    st_index_close(wr.seg.oidx);
    st_index_close(wr.seg.tidx);
    if (wr.fd >= 0)
        close(wr.fd);
    sc_buf_fini(&wr.out);
    sc_buf_fini(&wr.recs);
    sc_buf_fini(&wr.tmp);
    sc_buf_fini(&wr.z);
    if (rc && rc != SC_ERR_CLOSED)
        SC_ERROR(SUB, "%s: writing the cleaned segment %" PRId64 ": %s", job->dir, g->base,
                 sc_err_str(rc));
    return rc;
}

int st_cleaner_run(st_clean_job_t *job, const st_cleaner_opts_t *o)
{
    omap_t map;
    pidmap_t pids = {0};
    sc_buf_t tmp;
    int rc;
    int64_t t0 = sc_mono_ms();

    /* the map is sized for the dirty section's record count (an upper bound
     * of its keys), at most dedupe_bytes: small cleans stay cheap */
    int64_t *counts = sc_calloc(job->nsrc, sizeof *counts);
    uint64_t total = 0, limit = (uint64_t)((double)(o->dedupe_bytes / sizeof(slot_t)) * MAP_LOAD);
    if (!counts)
        return SC_ERR_NO_MEMORY;
    for (unsigned k = job->first_dirty_seg; k < job->nsrc && total <= limit; k++) {
        if ((rc = count_records(&job->src[k], &counts[k]))) {
            sc_free(counts);
            return rc;
        }
        total += (uint64_t)counts[k];
    }
    uint64_t want = 16;
    while (want < ((uint64_t)1 << 40) && (double)want * MAP_LOAD < (double)total)
        want *= 2;
    if ((rc = omap_init(&map, want * sizeof(slot_t) < o->dedupe_bytes ? want * sizeof(slot_t)
                                                                      : o->dedupe_bytes))) {
        sc_free(counts);
        return rc;
    }
    sc_buf_init(&tmp);
    /* pass 1: the dirty section, whole segments while they fit */
    unsigned i = job->first_dirty_seg;
    int64_t nrec = 0;
    for (; i < job->nsrc; i++) {
        int64_t cnt = counts[i];
        if (cnt == 0 && (rc = count_records(&job->src[i], &cnt)))
            goto out;
        if ((uint64_t)cnt + map.n > map.max_n) {
            if (i == job->first_dirty_seg) {
                SC_WARN(SUB, "%s: log.cleaner.dedupe.buffer.size too small for segment %" PRId64
                        " (%" PRId64 " records, room for %" PRIu64 ")",
                        job->dir, job->src[i].base, cnt, map.max_n);
                rc = SC_ERR_FULL;
                goto out;
            }
            break;
        }
        if ((rc = map_segment(job, &map, &job->src[i], o, &nrec, &tmp)))
            goto out;
    }
    job->nclean = i;
    job->end = job->src[i - 1].end;
    if ((rc = map_producers(job, job->nclean, &pids)))
        goto out;
    job->res.end = job->end;
    job->res.map_entries = (int64_t)map.n;
    /* groups: consecutive sources up to segment.bytes (Kafka's grouping) */
    if (!(job->groups = sc_calloc(job->nclean, sizeof *job->groups))) {
        rc = SC_ERR_NO_MEMORY;
        goto out;
    }
    for (unsigned k = 0; k < job->nclean;) {
        group_t *g = &job->groups[job->ngroups++];
        uint64_t sz = job->src[k].size;
        g->first = k;
        g->n = 1;
        g->base = job->src[k].base;
        g->mtime_ms = job->src[k].mtime_ms;
        while (k + g->n < job->nclean) {
            const src_t *nx = &job->src[k + g->n];
            if (sz + nx->size > (uint64_t)job->cfg.segment_bytes || nx->end - g->base > INT32_MAX)
                break;
            sz += nx->size;
            if (nx->mtime_ms > g->mtime_ms)
                g->mtime_ms = nx->mtime_ms;
            g->n++;
        }
        g->end = job->src[k + g->n - 1].end;
        k += g->n;
    }
    /* pass 2 */
    for (unsigned g = 0; g < job->ngroups; g++)
        if ((rc = write_group(job, &job->groups[g], &map, &pids, o)))
            goto out;
    if ((rc = st_file_sync_dir(job->dir, job->dir_fd)))
        goto out;
    job->res.segments_out = job->ngroups;
    job->ran = 1;
    SC_DEBUG(SUB, "%s: cleaned %u segment(s) into %u up to offset %" PRId64 " in %" PRId64
             " ms: %" PRId64 " -> %" PRId64 " records",
             job->dir, job->res.segments_in, job->ngroups, job->end, sc_mono_ms() - t0,
             job->res.records_in, job->res.records_out);
out:
    pidmap_fini(&pids);
    sc_free(counts);
    sc_buf_fini(&tmp);
    omap_fini(&map);
    return rc;
}

/* ---- the checkpoint file ---- */

static pthread_mutex_t ckpt_mu = PTHREAD_MUTEX_INITIALIZER;

/* Splits log_dir into parent and "topic partition" key. */
static int ckpt_names(const char *log_dir, char *parent, char *key)
{
    const char *slash = strrchr(log_dir, '/');
    const char *base = slash ? slash + 1 : log_dir;
    if (slash)
        snprintf(parent, PATH_MAX, "%.*s", (int)(slash - log_dir) ? (int)(slash - log_dir) : 1,
                 log_dir);
    else
        snprintf(parent, PATH_MAX, ".");
    const char *dash = strrchr(base, '-');
    char *end = NULL;
    long part = dash ? strtol(dash + 1, &end, 10) : -1;
    if (dash && end && *end == '\0' && dash[1] && part >= 0)
        snprintf(key, PATH_MAX, "%.*s %ld", (int)(dash - base), base, part);
    else
        snprintf(key, PATH_MAX, "%s -1", base);
    return 0;
}

/* Reads the file into lines (key, offset). */
typedef struct {
    char **keys;
    int64_t *offs;
    size_t n;
} ckpt_t;

static void ckpt_free(ckpt_t *c)
{
    for (size_t i = 0; i < c->n; i++)
        sc_free(c->keys[i]);
    sc_free(c->keys);
    sc_free(c->offs);
}

static int ckpt_load(const char *parent, ckpt_t *c)
{
    char path[PATH_MAX];
    char *buf = NULL;
    size_t len = 0;
    memset(c, 0, sizeof *c);
    snprintf(path, sizeof path, "%s/%s", parent, ST_CLEANER_CHECKPOINT_FILE);
    int rc = st_file_read_small(path, 64u << 20, &buf, &len);
    if (rc == -ENOENT)
        return 0;
    if (rc)
        return rc;
    char *save = NULL, *line;
    int lineno = 0;
    char *text = sc_malloc(len + 1);
    if (!text) {
        sc_free(buf);
        return SC_ERR_NO_MEMORY;
    }
    memcpy(text, buf, len);
    text[len] = 0;
    sc_free(buf);
    for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save), lineno++) {
        if (lineno < 2)
            continue; /* version, count */
        char *sp = strrchr(line, ' ');
        if (!sp)
            continue;
        *sp = 0;
        char **k = sc_realloc(c->keys, (c->n + 1) * sizeof *k);
        if (!k)
            break;
        c->keys = k;
        int64_t *o = sc_realloc(c->offs, (c->n + 1) * sizeof *o);
        if (!o)
            break;
        c->offs = o;
        if (!(c->keys[c->n] = sc_strdup(line)))
            break;
        c->offs[c->n++] = strtoll(sp + 1, NULL, 10);
    }
    sc_free(text);
    return 0;
}

int st_cleaner_checkpoint_get(const char *log_dir, int64_t *offset)
{
    char parent[PATH_MAX], key[PATH_MAX];
    ckpt_t c;
    ckpt_names(log_dir, parent, key);
    *offset = 0;
    pthread_mutex_lock(&ckpt_mu);
    int rc = ckpt_load(parent, &c);
    pthread_mutex_unlock(&ckpt_mu);
    if (rc)
        return rc;
    for (size_t i = 0; i < c.n; i++)
        if (strcmp(c.keys[i], key) == 0)
            *offset = c.offs[i];
    ckpt_free(&c);
    return 0;
}

int st_cleaner_checkpoint_set(const char *log_dir, int64_t offset)
{
    char parent[PATH_MAX], key[PATH_MAX];
    ckpt_t c;
    sc_buf_t b;
    char line[PATH_MAX + 32];
    int rc, found = 0;

    ckpt_names(log_dir, parent, key);
    pthread_mutex_lock(&ckpt_mu);
    if ((rc = ckpt_load(parent, &c)))
        goto unlock;
    sc_buf_init(&b);
    for (size_t i = 0; i < c.n; i++)
        if (strcmp(c.keys[i], key) == 0)
            found = 1;
    snprintf(line, sizeof line, "0\n%zu\n", c.n + !found);
    rc = sc_buf_append(&b, line, strlen(line));
    for (size_t i = 0; i < c.n && !rc; i++) {
        snprintf(line, sizeof line, "%s %" PRId64 "\n", c.keys[i],
                 strcmp(c.keys[i], key) == 0 ? offset : c.offs[i]);
        rc = sc_buf_append(&b, line, strlen(line));
    }
    if (!found && !rc) {
        snprintf(line, sizeof line, "%s %" PRId64 "\n", key, offset);
        rc = sc_buf_append(&b, line, strlen(line));
    }
    if (!rc)
        rc = st_file_write_atomic(parent, -1, ST_CLEANER_CHECKPOINT_FILE, b.data, b.len);
    sc_buf_fini(&b);
    ckpt_free(&c);
unlock:
    pthread_mutex_unlock(&ckpt_mu);
    if (rc)
        SC_ERROR(SUB, "%s: writing %s: %s", parent, ST_CLEANER_CHECKPOINT_FILE, sc_err_str(rc));
    return rc;
}

/* ---- swap ---- */

/* The swap file: one per job, named after its first group's base. */
static void swap_name(char *out, size_t n, int64_t base)
{
    snprintf(out, n, "%020" PRId64 SWAP_SUFFIX, base);
}

static int write_swap(const char *dir, int dir_fd, const st_clean_job_t *job)
{
    size_t len = 24 + 16 * (size_t)job->ngroups + 4;
    uint8_t *b = sc_malloc(len);
    char name[64];
    if (!b)
        return SC_ERR_NO_MEMORY;
    sc_store_be32(b, SWAP_MAGIC);
    sc_store_be16(b + 4, SWAP_VERSION);
    sc_store_be16(b + 6, 0);
    sc_store_be64(b + 8, (uint64_t)job->end);
    sc_store_be64(b + 16, (uint64_t)job->ngroups);
    for (unsigned g = 0; g < job->ngroups; g++) {
        sc_store_be64(b + 24 + 16 * g, (uint64_t)job->groups[g].base);
        sc_store_be64(b + 32 + 16 * g, (uint64_t)job->groups[g].end);
    }
    sc_store_be32(b + len - 4, sc_crc32c(0, b, len - 4));
    swap_name(name, sizeof name, job->groups[0].base);
    int rc = st_file_write_atomic(dir, dir_fd, name, b, len);
    sc_free(b);
    return rc;
}

/* Reads a swap file: *end, and the groups as (base, end) pairs in *pairs
 * (sc_free). 0, SC_ERR_BAD_FORMAT, -errno. */
static int read_swap(const char *dir, const char *name, int64_t *end, int64_t **pairs,
                     size_t *npairs)
{
    char path[PATH_MAX];
    char *buf = NULL;
    size_t len = 0;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int rc = st_file_read_small(path, 1u << 24, &buf, &len);
    if (rc)
        return rc;
    const uint8_t *b = (const uint8_t *)buf;
    rc = SC_ERR_BAD_FORMAT;
    if (len >= 28 && sc_load_be32(b) == SWAP_MAGIC && sc_load_be16(b + 4) == SWAP_VERSION &&
        sc_load_be32(b + len - 4) == sc_crc32c(0, b, len - 4)) {
        uint64_t n = sc_load_be64(b + 16);
        *end = (int64_t)sc_load_be64(b + 8);
        if (n >= 1 && n <= (len - 28) / 16 && len == 28 + 16 * n && *end >= 0 &&
            *end <= ST_OFFSET_MAX && (*pairs = sc_malloc(16 * n))) {
            rc = 0;
            for (uint64_t i = 0; i < 2 * n; i++) {
                (*pairs)[i] = (int64_t)sc_load_be64(b + 24 + 8 * i);
                if ((*pairs)[i] < 0 || (*pairs)[i] > *end)
                    rc = SC_ERR_BAD_FORMAT;
            }
            *npairs = n;
            if (rc) {
                sc_free(*pairs);
                *pairs = NULL;
            }
        }
    }
    sc_free(buf);
    return rc;
}

static int unlink_seg_files(int dir_fd, int64_t base)
{
    char name[64];
    for (int k = 0; k < 3; k++) {
        snprintf(name, sizeof name, "%020" PRId64 "%s", base, seg_suffixes[k]);
        if (unlinkat(dir_fd, name, 0) && errno != ENOENT)
            return -errno;
    }
    return 0;
}

/* Step 4 for one group whose other sources are gone: the .cleaned files of
 * base renamed over its files (indexes first, the .log last). */
static int rename_group(const char *dir, int dir_fd, int64_t base)
{
    char from[64], to[64];
    int rc;
    if ((rc = st_file_sync_dir(dir, dir_fd)))
        return rc;
    for (int k = 0; k < 3; k++) {
        snprintf(from, sizeof from, "%020" PRId64 "%s" CLEANED_SUFFIX, base, seg_suffixes[k]);
        snprintf(to, sizeof to, "%020" PRId64 "%s", base, seg_suffixes[k]);
        if (renameat(dir_fd, from, dir_fd, to) && errno != ENOENT)
            return -errno;
        crash_point();
    }
    return st_file_sync_dir(dir, dir_fd);
}

/* Steps 5-6: the checkpoint raised to end, the swap file removed. */
static int finish_job(const char *dir, int dir_fd, int64_t first_base, int64_t end,
                      int64_t *clean_upto)
{
    char name[64];
    int rc;
    if (end > *clean_upto) {
        if ((rc = st_cleaner_checkpoint_set(dir, end)))
            return rc;
        *clean_upto = end;
    }
    crash_point();
    swap_name(name, sizeof name, first_base);
    if (unlinkat(dir_fd, name, 0) && errno != ENOENT)
        return -errno;
    crash_point();
    return st_file_sync_dir(dir, dir_fd);
}

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

static int vec_add(int64_t **v, size_t *n, size_t *cap, int64_t x)
{
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 16;
        int64_t *p = sc_realloc(*v, c * sizeof *p);
        if (!p)
            return SC_ERR_NO_MEMORY;
        *v = p;
        *cap = c;
    }
    (*v)[(*n)++] = x;
    return 0;
}

int st__cleaner_recover(const char *dir, int dir_fd)
{
    int64_t *bases = NULL, *swaps = NULL;
    size_t nb = 0, ns = 0, cb = 0, cs = 0;
    int rc = 0, fd, changed = 0;
    DIR *d;
    struct dirent *e;

    if ((fd = dup(dir_fd)) < 0)
        return -errno;
    if (!(d = fdopendir(fd))) {
        rc = -errno;
        close(fd);
        return rc;
    }
    rewinddir(d);
    while ((e = readdir(d)) && !rc) {
        int64_t b;
        if (st_segment_parse_name(e->d_name, ST_SEGMENT_LOG_SUFFIX, &b) == 0)
            rc = vec_add(&bases, &nb, &cb, b);
        else if (st_segment_parse_name(e->d_name, SWAP_SUFFIX, &b) == 0)
            rc = vec_add(&swaps, &ns, &cs, b);
    }
    closedir(d);
    for (size_t i = 0; i < ns && !rc; i++) {
        char name[64];
        int64_t end, *pairs = NULL, upto = 0;
        size_t np = 0;
        swap_name(name, sizeof name, swaps[i]);
        changed = 1;
        if (read_swap(dir, name, &end, &pairs, &np) != 0 || pairs[0] != swaps[i]) {
            SC_WARN(SUB, "%s: ignoring a bad %s", dir, name);
            sc_free(pairs);
            if (unlinkat(dir_fd, name, 0) && errno != ENOENT)
                rc = -errno;
            continue;
        }
        SC_WARN(SUB, "%s: completing an interrupted swap of %zu cleaned segment(s) (up to offset "
                "%" PRId64 ")", dir, np, end);
        for (size_t g = 0; g < np && !rc; g++) {
            for (size_t k = 0; k < nb && !rc; k++)
                if (bases[k] > pairs[2 * g] && bases[k] < pairs[2 * g + 1])
                    rc = unlink_seg_files(dir_fd, bases[k]);
            if (!rc)
                rc = rename_group(dir, dir_fd, pairs[2 * g]);
        }
        if (!rc && !(rc = st_cleaner_checkpoint_get(dir, &upto)))
            rc = finish_job(dir, dir_fd, pairs[0], end, &upto);
        sc_free(pairs);
    }
    /* every other .cleaned file is an unfinished clean */
    if (!rc && (fd = dup(dir_fd)) >= 0 && (d = fdopendir(fd))) {
        rewinddir(d);
        while ((e = readdir(d))) {
            if (ends_with(e->d_name, CLEANED_SUFFIX) && unlinkat(dir_fd, e->d_name, 0) == 0) {
                SC_INFO(SUB, "%s: removed leftover %s", dir, e->d_name);
                changed = 1;
            }
        }
        closedir(d);
    } else if (!rc) {
        if (fd >= 0)
            close(fd);
        rc = -errno;
    }
    if (!rc && changed)
        rc = st_file_sync_dir(dir, dir_fd);
    sc_free(bases);
    sc_free(swaps);
    if (rc)
        SC_ERROR(SUB, "%s: recovering a clean: %s", dir, sc_err_str(rc));
    return rc;
}

int st_cleaner_commit(st_log_t *log, st_clean_job_t *job, st_clean_result_t *res)
{
    const char *what;
    int rc = 0;

    if (log->failed)
        return SC_ERR_LOG_FAILED;
    if (!job->ran || job->gen != log->gen || log->nsegs <= job->nclean)
        return SC_ERR_NOT_FOUND;
    for (unsigned i = 0; i < job->nclean; i++) {
        if (log->segs[i]->base != job->src[i].base || log->segs[i + 1]->base != job->src[i].end)
            return SC_ERR_NOT_FOUND;
        if (log->segs[i]->inflight)
            return SC_ERR_AGAIN;
    }
    /* the commit point: from here recovery completes the whole job */
    if ((rc = write_swap(log->dir, log->dir_fd, job)))
        return rc; /* nothing changed; st_cleaner_job_free deletes the files */
    crash_point();
    what = "swapping in the cleaned segments";
    int64_t now = sc_now_ms();
    /* from the last group backwards, so the indexes into segs stay valid */
    for (unsigned gi = job->ngroups; gi-- > 0;) {
        group_t *g = &job->groups[gi];
        for (unsigned k = g->first + g->n; k-- > g->first + 1;) {
            st_segment_t *s = log->segs[k];
            log->size_bytes -= s->size;
            rc = st_segment_delete(s); /* unlink: readers' dup'ed fds stay valid */
            log->segs[k] = NULL;
            if (rc)
                goto fail;
            crash_point();
        }
        if ((rc = rename_group(log->dir, log->dir_fd, g->base)))
            goto fail;
        st_segment_t *old = log->segs[g->first], *seg;
        int missing = 0;
        log->size_bytes -= old->size;
        st_segment_close(old);
        log->segs[g->first] = NULL;
        if ((rc = st_segment_open(log->dir, g->base, now, &seg, &missing)))
            goto fail;
        int64_t ts, toff;
        if (st_time_index_last(seg->tidx, &ts, &toff) == 0) {
            seg->max_ts = ts;
            seg->max_ts_offset = toff;
        }
        seg->next_offset = g->end;
        seg->allow_gaps = 1;
        log->segs[g->first] = seg;
        log->size_bytes += seg->size;
        /* close the hole left by the deleted sources */
        if (g->n > 1) {
            memmove(log->segs + g->first + 1, log->segs + g->first + g->n,
                    (log->nsegs - g->first - g->n) * sizeof *log->segs);
            log->nsegs -= g->n - 1;
        }
    }
    what = "finishing the swap";
    if ((rc = finish_job(log->dir, log->dir_fd, job->groups[0].base, job->end,
                         &log->clean_upto)))
        goto fail;
    log->gen++;
    job->ngroups = 0; /* renamed: nothing left to delete */
    if (res)
        *res = job->res;
    SC_INFO(SUB, "%s: cleaned %u segment(s) into %u up to offset %" PRId64 ": %" PRIu64
            " -> %" PRIu64 " bytes, %" PRId64 " -> %" PRId64 " records, %" PRId64
            " tombstone(s) removed",
            log->dir, job->res.segments_in, job->res.segments_out, job->end, job->res.bytes_in,
            job->res.bytes_out, job->res.records_in, job->res.records_out,
            job->res.tombstones_dropped);
    return 0;
fail:
    /* the next open completes the swap (or finds it was never committed) */
    st__log_fail(log, rc, what, NULL, 0, job->groups[0].base);
    {
        unsigned w = 0;
        for (unsigned k = 0; k < log->nsegs; k++)
            if (log->segs[k])
                log->segs[w++] = log->segs[k];
        log->nsegs = w;
    }
    log->gen++;
    job->ngroups = 0; /* leave the .cleaned files to recovery */
    return rc;
}

int st_cleaner_clean(st_log_t *log, int64_t now_ms, const st_cleaner_opts_t *opts,
                     st_clean_result_t *res)
{
    st_clean_job_t *job;
    int rc = st_cleaner_prepare(log, now_ms, &job);
    if (rc)
        return rc;
    if (!(rc = st_cleaner_run(job, opts)))
        rc = st_cleaner_commit(log, job, res);
    st_cleaner_job_free(job);
    return rc;
}

/* ---- pool ---- */

typedef struct item {
    struct item *next;
    st_clean_job_t *job;
    st_cleaner_done_cb cb;
    void *arg;
} item_t;

struct st_cleaner_pool {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    item_t *head, *tail;
    volatile int stop;
    unsigned nthreads;
    pthread_t *threads;
    uint64_t dedupe_bytes;
    st_throttle_t thr;
};

static void *pool_main(void *arg)
{
    st_cleaner_pool_t *p = arg;
    st_cleaner_opts_t o = {p->dedupe_bytes, &p->thr, &p->stop};
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->head && !p->stop)
            pthread_cond_wait(&p->cv, &p->mu);
        if (p->stop)
            break;
        item_t *it = p->head;
        p->head = it->next;
        if (!p->head)
            p->tail = NULL;
        pthread_mutex_unlock(&p->mu);
        int rc = st_cleaner_run(it->job, &o);
        it->cb(it->arg, it->job, rc);
        sc_free(it);
        pthread_mutex_lock(&p->mu);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

int st_cleaner_pool_new(unsigned threads, uint64_t dedupe_bytes, double rate,
                        st_cleaner_pool_t **out)
{
    st_cleaner_pool_t *p = sc_calloc(1, sizeof *p);
    if (!p)
        return SC_ERR_NO_MEMORY;
    if (threads < 1)
        threads = 1;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    st_throttle_init(&p->thr, rate);
    p->dedupe_bytes = dedupe_bytes / threads;
    if (!(p->threads = sc_calloc(threads, sizeof *p->threads))) {
        st_cleaner_pool_free(p);
        return SC_ERR_NO_MEMORY;
    }
    for (unsigned i = 0; i < threads; i++) {
        int e = pthread_create(&p->threads[i], NULL, pool_main, p);
        if (e) {
            st_cleaner_pool_free(p);
            return -e;
        }
        p->nthreads++;
    }
    *out = p;
    return 0;
}

int st_cleaner_pool_submit(st_cleaner_pool_t *p, st_clean_job_t *job, st_cleaner_done_cb cb,
                           void *arg)
{
    item_t *it = sc_calloc(1, sizeof *it);
    if (!it)
        return SC_ERR_NO_MEMORY;
    it->job = job;
    it->cb = cb;
    it->arg = arg;
    pthread_mutex_lock(&p->mu);
    if (p->stop) {
        pthread_mutex_unlock(&p->mu);
        sc_free(it);
        return SC_ERR_CLOSED;
    }
    if (p->tail)
        p->tail->next = it;
    else
        p->head = it;
    p->tail = it;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
    return 0;
}

void st_cleaner_pool_free(st_cleaner_pool_t *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_broadcast(&p->cv);
    item_t *it = p->head;
    p->head = p->tail = NULL;
    pthread_mutex_unlock(&p->mu);
    for (unsigned i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
    while (it) {
        item_t *next = it->next;
        it->cb(it->arg, it->job, SC_ERR_CLOSED);
        sc_free(it);
        it = next;
    }
    sc_free(p->threads);
    st_throttle_fini(&p->thr);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    sc_free(p);
}
