/*
 * st_epoch.c -- leader epoch history (Kafka's LeaderEpochFileCache).
 *
 * FILE FORMAT: <partition dir>/leader-epoch-checkpoint, ASCII text, Kafka's:
 *
 *   0                      version line
 *   <N>                    number of entries
 *   <epoch> <startOffset>  N lines, one space, epochs and offsets increasing
 *
 * each line ending in "\n". Written whole with st_file_write_atomic after
 * every change (leader changes are rare). A missing file is an empty history.
 *
 * INVARIANTS: epochs strictly increase and start offsets strictly increase
 * (assign removes entries that would break that, as Kafka does).
 */
#include "st_file.h"
#include "st_log_int.h"

#include "sc_err.h"
#include "sc_mem.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EPOCH_FILE_MAX (1u << 20)

void st__epochs_fini(st__epochs_t *e)
{
    sc_free(e->v);
    memset(e, 0, sizeof *e);
}

void st__epochs_clear(st__epochs_t *e) { e->n = 0; }

static int push(st__epochs_t *e, int32_t epoch, int64_t start)
{
    if (e->n == e->cap) {
        unsigned cap = e->cap ? e->cap * 2 : 8;
        st__epoch_t *v = sc_realloc(e->v, cap * sizeof *v);
        if (!v)
            return SC_ERR_NO_MEMORY;
        e->v = v;
        e->cap = cap;
    }
    e->v[e->n].epoch = epoch;
    e->v[e->n].start = start;
    e->n++;
    return 0;
}

/* Parses a non-negative decimal integer at *p (skipping spaces before it)
 * up to max; advances *p. 0 or -1. */
static int parse_num(const char **p, int64_t max, int64_t *out)
{
    const char *s = *p;
    int64_t v = 0;

    while (*s == ' ' || *s == '\t')
        s++;
    if (*s < '0' || *s > '9')
        return -1;
    while (*s >= '0' && *s <= '9') {
        if (v > (max - (*s - '0')) / 10)
            return -1;
        v = v * 10 + (*s - '0');
        s++;
    }
    *p = s;
    *out = v;
    return 0;
}

/* Expects optional spaces, then "\n" (or "\r\n"); advances. 0 or -1. */
static int parse_eol(const char **p)
{
    const char *s = *p;
    while (*s == ' ' || *s == '\t')
        s++;
    if (*s == '\r')
        s++;
    if (*s != '\n')
        return -1;
    *p = s + 1;
    return 0;
}

int st__epochs_load(st__epochs_t *e, const char *dir)
{
    char path[PATH_MAX];
    char *text = NULL;
    const char *p;
    size_t len;
    int64_t version, count;
    int rc;

    e->n = 0;
    if (snprintf(path, sizeof path, "%s/%s", dir, ST_EPOCH_FILE) >= (int)sizeof path)
        return -ENAMETOOLONG;
    rc = st_file_read_small(path, EPOCH_FILE_MAX, &text, &len);
    if (rc == -ENOENT)
        return 0;
    if (rc)
        return rc == -EFBIG ? SC_ERR_BAD_FORMAT : rc;
    p = text;
    if (strlen(text) != len || parse_num(&p, INT64_MAX, &version) || version != 0 ||
        parse_eol(&p) || parse_num(&p, INT32_MAX, &count) || parse_eol(&p)) {
        rc = SC_ERR_BAD_FORMAT;
        goto out;
    }
    for (int64_t i = 0; i < count; i++) {
        int64_t epoch, start;
        if (parse_num(&p, INT32_MAX, &epoch) || parse_num(&p, INT64_MAX, &start) ||
            parse_eol(&p)) {
            rc = SC_ERR_BAD_FORMAT;
            goto out;
        }
        if (e->n > 0 && (epoch <= e->v[e->n - 1].epoch || start < e->v[e->n - 1].start)) {
            rc = SC_ERR_BAD_FORMAT;
            goto out;
        }
        if ((rc = push(e, (int32_t)epoch, start)))
            goto out;
    }
    if (*p != '\0')
        rc = SC_ERR_BAD_FORMAT;
out:
    if (rc)
        e->n = 0;
    sc_free(text);
    return rc;
}

int st__epochs_store(const st__epochs_t *e, const char *dir, int dir_fd)
{
    size_t cap = 32 + (size_t)e->n * 32, len = 0;
    char *buf = sc_malloc(cap);
    int rc;

    if (!buf)
        return SC_ERR_NO_MEMORY;
    len += (size_t)snprintf(buf + len, cap - len, "0\n%u\n", e->n);
    for (unsigned i = 0; i < e->n; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%" PRId32 " %" PRId64 "\n", e->v[i].epoch,
                                e->v[i].start);
    rc = st_file_write_atomic(dir, dir_fd, ST_EPOCH_FILE, buf, len);
    sc_free(buf);
    return rc;
}

int32_t st__epochs_latest(const st__epochs_t *e) { return e->n ? e->v[e->n - 1].epoch : -1; }

int st__epochs_assign(st__epochs_t *e, int32_t epoch, int64_t start)
{
    int rc;

    if (epoch < 0 || start < 0)
        return 0;
    if (e->n > 0) {
        const st__epoch_t *last = &e->v[e->n - 1];
        if (last->epoch == epoch && start >= last->start)
            return 0;
    }
    /* Kafka: drop entries that would not stay monotonic with the new one */
    while (e->n > 0 && (e->v[e->n - 1].epoch >= epoch || e->v[e->n - 1].start >= start))
        e->n--;
    if ((rc = push(e, epoch, start)))
        return rc;
    return 1;
}

int st__epochs_truncate_end(st__epochs_t *e, int64_t end)
{
    unsigned n = e->n;
    while (e->n > 0 && e->v[e->n - 1].start >= end)
        e->n--;
    return e->n != n;
}

int st__epochs_truncate_start(st__epochs_t *e, int64_t start)
{
    unsigned k = 0; /* entries [0, k) start below start */
    while (k < e->n && e->v[k].start < start)
        k++;
    if (k == 0)
        return 0;
    /* keep the last of them, moved up to start, unless the next one starts there */
    if (k < e->n && e->v[k].start == start) {
        memmove(e->v, e->v + k, (e->n - k) * sizeof *e->v);
        e->n -= k;
        return 1;
    }
    e->v[k - 1].start = start;
    if (k > 1) {
        memmove(e->v, e->v + k - 1, (e->n - (k - 1)) * sizeof *e->v);
        e->n -= k - 1;
        return 1;
    }
    return 1;
}

int st__epochs_end_offset(const st__epochs_t *e, int32_t epoch, int64_t leo, int32_t *found,
                          int64_t *end)
{
    unsigned hi = 0;

    if (epoch < 0 || e->n == 0 || epoch > e->v[e->n - 1].epoch) {
        *found = -1;
        *end = -1;
        return SC_ERR_NOT_FOUND;
    }
    if (epoch == e->v[e->n - 1].epoch) {
        *found = epoch;
        *end = leo;
        return 0;
    }
    while (e->v[hi].epoch <= epoch) /* smallest epoch > epoch; exists (epoch < latest) */
        hi++;
    /* Kafka: with no entry <= epoch, answer (epoch, start of the first one) */
    *found = hi == 0 ? epoch : e->v[hi - 1].epoch;
    *end = e->v[hi].start;
    return 0;
}
