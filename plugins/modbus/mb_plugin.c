/*
 * strata_modbus -- Modbus/TCP client gateway plugin (docs/plugins.md).
 *
 * Model (Neuron-style): devices (host, port, unit id), groups (a device and a
 * poll interval) and points (a group, a table, an address, a type, byte/word
 * order, scale/offset, unit). At load, each group's points are coalesced into
 * read requests per table (contiguous-ish addresses within request.gap, at
 * most 125 registers / 2000 bits per request). Every interval.ms the group's
 * requests are queued on its device's connection; up to max.inflight of them
 * are on the wire at once, matched back by transaction id. Each poll produces
 * one record per point (emit_point, keyed by the device id): GOOD with the
 * decoded value, or BAD with the reason (exception code per request's
 * points, timeout, device offline). A poll that finds the group's previous
 * poll still outstanding is skipped and counted (a gap).
 *
 * Connections are non-blocking sockets on the host's fd watches; a failed
 * connect, a closed socket, a malformed frame (the stream is then out of
 * sync) or 3 consecutive timeouts drop the connection, which is retried with
 * the host's jittered backoff (reconnect.backoff.ms .. .max.ms).
 *
 * Source offsets: none (a poll is a snapshot, design: edge-protocols §6.2).
 * Backpressure: a point that the host refuses with EAGAIN is dropped and
 * counted (modbus.dropped); the host then pauses the instance (polls stop)
 * until its queue drains, and the next poll carries fresh values.
 */
#include "mb_proto.h"
#include "strata/plugin.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static const strata_host_api_t *H;

enum { T_COIL, T_DISCRETE, T_HOLDING, T_INPUT };
static const char *const table_names[] = {"coil", "discrete", "holding", "input"};
static const uint8_t table_fc[] = {MB_FC_COILS, MB_FC_DISCRETE, MB_FC_HOLDING, MB_FC_INPUT};
static const char *const type_names[] = {"bool", "int16", "uint16", "int32", "uint32", "float32"};
static const char *const order_names[] = {"ABCD", "CDAB", "BADC", "DCBA"};

enum { D_DOWN, D_CONNECTING, D_UP };

typedef struct {
    char *name, *unit;
    int group, table, type, order;
    uint16_t address;
    double scale, offset;
    int scaled;
} mb_point_t;

typedef struct {
    int table;
    uint16_t start, qty;
    int *points, npoints;
} mb_req_t;

typedef struct {
    char *name;
    int dev;
    uint64_t interval_ms;
    mb_req_t *reqs;
    int nreqs;
    int outstanding; /* requests of the current poll not answered yet */
    int64_t timer;
    int64_t poll_ts;  /* ms, the poll's timestamp */
} mb_group_t;

typedef struct {
    uint16_t tid;
    int group, req;
    int64_t deadline_ns, sent_ns;
} mb_flight_t;

typedef struct {
    int group, req;
} mb_qent_t;

typedef struct {
    char *name, *id, *host;
    int port, unit, max_inflight;
    uint64_t timeout_ms;
    int fd, state;
    uint8_t out[4096];
    size_t outlen;
    uint8_t in[1024];
    size_t inlen;
    mb_flight_t flight[16];
    int nflight;
    mb_qent_t *queue;
    int qhead, qlen, qcap;
    uint16_t next_tid;
    strata_backoff_t bo;
    int64_t reconnect_timer;
    int consecutive_timeouts;
    /* counters */
    uint64_t requests, responses, exceptions, timeouts, bad_frames, unmatched, reconnects;
    int inflight_max; /* most requests seen on the wire at once */
    char last_error[160];
} mb_dev_t;

typedef struct {
    int kind; /* 0 group poll, 1 reconnect, 2 tick */
    int idx;
} mb_targ_t;

typedef struct {
    strata_host_ctx_t *ctx;
    mb_targ_t *targs;
    mb_dev_t *devs;
    int ndevs;
    mb_group_t *groups;
    int ngroups;
    mb_point_t *points;
    int npoints;
    int request_gap;
    int64_t tick;
    int paused;
    uint64_t records, dropped, skipped, errors, polls;
    int m_requests, m_exceptions, m_timeouts, m_bad, m_unmatched, m_reconnects, m_skipped,
        m_records, m_dropped, m_rtt;
    char last_error[160];
} mb_t;

/* ---- config ------------------------------------------------------------------ */

static int lookup(const char *const *names, int n, const char *v)
{
    for (int i = 0; i < n; i++)
        if (v && strcmp(names[i], v) == 0)
            return i;
    return -1;
}

/* Distinct names <x> of keys "<prefix>.<x>.<...>", in first-seen order. */
static int collect(const strata_config_t *c, const char *prefix, char ***out)
{
    size_t pl = strlen(prefix);
    char **names = NULL;
    int n = 0;
    for (uint32_t i = 0; i < c->count; i++) {
        const char *k = c->keys[i];
        if (strncmp(k, prefix, pl) != 0 || k[pl] != '.')
            continue;
        const char *s = k + pl + 1;
        size_t l = strcspn(s, ".");
        if (!l || !s[l])
            continue;
        int dup = 0;
        for (int j = 0; j < n && !dup; j++)
            dup = strlen(names[j]) == l && strncmp(names[j], s, l) == 0;
        if (dup)
            continue;
        char **nn = realloc(names, (size_t)(n + 1) * sizeof *nn);
        if (!nn)
            break;
        names = nn;
        names[n] = strndup(s, l);
        if (!names[n])
            break;
        n++;
    }
    *out = names;
    return n;
}

static void free_names(char **v, int n)
{
    for (int i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static const char *cget(const strata_config_t *c, const char *kind, const char *name,
                        const char *key)
{
    char k[512];
    snprintf(k, sizeof k, "%s.%s.%s", kind, name, key);
    return strata_config_get(c, k);
}

static int cmp_points(const void *a, const void *b, void *arg)
{
    const mb_point_t *p = arg;
    const mb_point_t *x = &p[*(const int *)a], *y = &p[*(const int *)b];
    if (x->group != y->group)
        return x->group - y->group;
    if (x->table != y->table)
        return x->table - y->table;
    return (int)x->address - (int)y->address;
}

/* Sorts with a context (qsort_r is GNU; this is a small insertion sort). */
static void sort_idx(int *idx, int n, const mb_point_t *pts)
{
    for (int i = 1; i < n; i++) {
        int v = idx[i], j = i - 1;
        while (j >= 0 && cmp_points(&idx[j], &v, (void *)pts) > 0) {
            idx[j + 1] = idx[j];
            j--;
        }
        idx[j + 1] = v;
    }
}

static void mb_free_all(mb_t *m)
{
    for (int i = 0; i < m->ndevs; i++) {
        free(m->devs[i].name);
        free(m->devs[i].id);
        free(m->devs[i].host);
        free(m->devs[i].queue);
    }
    free(m->devs);
    for (int i = 0; i < m->ngroups; i++) {
        for (int r = 0; r < m->groups[i].nreqs; r++)
            free(m->groups[i].reqs[r].points);
        free(m->groups[i].reqs);
        free(m->groups[i].name);
    }
    free(m->groups);
    for (int i = 0; i < m->npoints; i++) {
        free(m->points[i].name);
        free(m->points[i].unit);
    }
    free(m->points);
    free(m->targs);
    free(m);
}

/* Builds the model from cfg; err names the key on failure. */
static int build(const strata_config_t *cfg, mb_t *m, char *err, size_t errlen)
{
    char **dn, **gn, **pn;
    int nd = collect(cfg, "device", &dn), ng = collect(cfg, "group", &gn),
        np = collect(cfg, "point", &pn);
    int rc = -EINVAL;
    const char *v;
    m->devs = calloc((size_t)(nd ? nd : 1), sizeof *m->devs);
    m->groups = calloc((size_t)(ng ? ng : 1), sizeof *m->groups);
    m->points = calloc((size_t)(np ? np : 1), sizeof *m->points);
    if (!m->devs || !m->groups || !m->points) {
        rc = -ENOMEM;
        goto out;
    }
    if (!np) {
        snprintf(err, errlen, "no points configured (point.<name>.group/table/address)");
        goto out;
    }
    v = strata_config_get(cfg, "request.gap");
    m->request_gap = v ? atoi(v) : 16;
    for (int i = 0; i < nd; i++) {
        mb_dev_t *d = &m->devs[m->ndevs++];
        d->fd = -1;
        d->name = strdup(dn[i]);
        v = cget(cfg, "device", dn[i], "id");
        d->id = strdup(v ? v : dn[i]);
        v = cget(cfg, "device", dn[i], "host");
        d->host = strdup(v ? v : "");
        v = cget(cfg, "device", dn[i], "port");
        d->port = v ? atoi(v) : 502;
        v = cget(cfg, "device", dn[i], "unit");
        d->unit = v ? atoi(v) : 1;
        v = cget(cfg, "device", dn[i], "timeout.ms");
        d->timeout_ms = v ? (uint64_t)atoll(v) : 1000;
        v = cget(cfg, "device", dn[i], "max.inflight");
        d->max_inflight = v ? atoi(v) : 4;
        v = cget(cfg, "device", dn[i], "reconnect.backoff.ms");
        d->bo.base_ms = v ? (uint32_t)atoi(v) : 200;
        v = cget(cfg, "device", dn[i], "reconnect.backoff.max.ms");
        d->bo.max_ms = v ? (uint32_t)atoi(v) : 10000;
        d->next_tid = (uint16_t)(1 + i * 7919);
        if (!d->name || !d->id || !d->host) {
            rc = -ENOMEM;
            goto out;
        }
    }
    for (int i = 0; i < ng; i++) {
        mb_group_t *g = &m->groups[m->ngroups++];
        g->name = strdup(gn[i]);
        v = cget(cfg, "group", gn[i], "device");
        g->dev = -1;
        for (int j = 0; j < m->ndevs; j++)
            if (v && strcmp(m->devs[j].name, v) == 0)
                g->dev = j;
        if (g->dev < 0) {
            snprintf(err, errlen, "key 'group.%s.device': no device '%s' (device.<name>.host)",
                     gn[i], v ? v : "");
            goto out;
        }
        v = cget(cfg, "group", gn[i], "interval.ms");
        g->interval_ms = v ? (uint64_t)atoll(v) : 1000;
    }
    for (int i = 0; i < np; i++) {
        mb_point_t *p = &m->points[m->npoints++];
        p->name = strdup(pn[i]);
        v = cget(cfg, "point", pn[i], "group");
        p->group = -1;
        for (int j = 0; j < m->ngroups; j++)
            if (v && strcmp(m->groups[j].name, v) == 0)
                p->group = j;
        if (p->group < 0) {
            snprintf(err, errlen, "key 'point.%s.group': no group '%s' (group.<name>.device)",
                     pn[i], v ? v : "");
            goto out;
        }
        p->table = lookup(table_names, 4, cget(cfg, "point", pn[i], "table"));
        v = cget(cfg, "point", pn[i], "address");
        p->address = (uint16_t)(v ? atoi(v) : 0);
        v = cget(cfg, "point", pn[i], "type");
        p->type = v ? lookup(type_names, 6, v)
                    : (p->table == T_COIL || p->table == T_DISCRETE ? MB_T_BOOL : MB_T_UINT16);
        int bits = p->table == T_COIL || p->table == T_DISCRETE;
        if (bits != (p->type == MB_T_BOOL)) {
            snprintf(err, errlen, "key 'point.%s.type': %s does not fit table %s (bool for "
                                  "coil/discrete, a number type for holding/input)",
                     pn[i], type_names[p->type], table_names[p->table]);
            goto out;
        }
        if (!bits && (uint32_t)p->address + mb_type_regs(p->type) > 65536) {
            snprintf(err, errlen, "key 'point.%s.address': %u + %u registers passes 65535",
                     pn[i], p->address, mb_type_regs(p->type));
            goto out;
        }
        v = cget(cfg, "point", pn[i], "order");
        p->order = v ? lookup(order_names, 4, v) : MB_O_ABCD;
        v = cget(cfg, "point", pn[i], "scale");
        p->scale = v ? strtod(v, NULL) : 1.0;
        v = cget(cfg, "point", pn[i], "offset");
        p->offset = v ? strtod(v, NULL) : 0.0;
        p->scaled = p->scale != 1.0 || p->offset != 0.0;
        v = cget(cfg, "point", pn[i], "unit");
        p->unit = v ? strdup(v) : NULL;
        if (!p->name) {
            rc = -ENOMEM;
            goto out;
        }
    }
    /* coalesce each group's points into read requests */
    int *idx = malloc((size_t)m->npoints * sizeof *idx);
    if (!idx) {
        rc = -ENOMEM;
        goto out;
    }
    for (int i = 0; i < m->npoints; i++)
        idx[i] = i;
    sort_idx(idx, m->npoints, m->points);
    for (int i = 0; i < m->npoints;) {
        const mb_point_t *p0 = &m->points[idx[i]];
        mb_group_t *g = &m->groups[p0->group];
        int bits = p0->table == T_COIL || p0->table == T_DISCRETE;
        unsigned maxq = bits ? MB_MAX_BITS : MB_MAX_REGS;
        uint32_t start = p0->address, end = start + (bits ? 1 : mb_type_regs(p0->type));
        int j = i + 1;
        while (j < m->npoints) {
            const mb_point_t *p = &m->points[idx[j]];
            if (p->group != p0->group || p->table != p0->table)
                break;
            uint32_t pe = p->address + (bits ? 1 : mb_type_regs(p->type));
            if (p->address > end + (uint32_t)m->request_gap)
                break;
            uint32_t ne = pe > end ? pe : end;
            if (ne - start > maxq)
                break;
            end = ne;
            j++;
        }
        mb_req_t *nr = realloc(g->reqs, (size_t)(g->nreqs + 1) * sizeof *nr);
        if (!nr) {
            free(idx);
            rc = -ENOMEM;
            goto out;
        }
        g->reqs = nr;
        mb_req_t *r = &g->reqs[g->nreqs++];
        memset(r, 0, sizeof *r);
        r->table = p0->table;
        r->start = (uint16_t)start;
        r->qty = (uint16_t)(end - start);
        r->points = malloc((size_t)(j - i) * sizeof *r->points);
        if (!r->points) {
            free(idx);
            rc = -ENOMEM;
            goto out;
        }
        for (int k = i; k < j; k++)
            r->points[r->npoints++] = idx[k];
        i = j;
    }
    free(idx);
    rc = 0;
out:
    free_names(dn, nd);
    free_names(gn, ng);
    free_names(pn, np);
    return rc;
}

static int mb_validate(const strata_config_t *cfg, char *err, size_t errlen)
{
    mb_t *m = calloc(1, sizeof *m);
    if (!m)
        return -ENOMEM;
    int rc = build(cfg, m, err, errlen);
    mb_free_all(m);
    return rc;
}

/* ---- records ------------------------------------------------------------------ */

static void emit(mb_t *m, mb_dev_t *d, const mb_point_t *p, int64_t ts, int ok, int64_t iv,
                 double dv, int integral, const char *status)
{
    strata_point_t pt = {.struct_size = sizeof pt, .device_id = d->id, .point = p->name,
                         .timestamp_ms = ts, .unit = p->unit, .source_offset = -1};
    if (!ok) {
        pt.type = STRATA_VALUE_NONE;
        pt.quality = STRATA_QUALITY_BAD;
        pt.status = status;
    } else if (p->type == MB_T_BOOL) {
        pt.type = STRATA_VALUE_BOOL;
        pt.v_bool = iv != 0;
    } else if (integral && !p->scaled) {
        pt.type = STRATA_VALUE_INT;
        pt.v_int = iv;
    } else {
        pt.type = STRATA_VALUE_DOUBLE;
        pt.v_double = (integral ? (double)iv : dv) * p->scale + p->offset;
    }
    int rc = H->emit_point(m->ctx, &pt);
    if (rc == 0) {
        m->records++;
        H->metric_update(m->ctx, m->m_records, 1);
    } else {
        m->dropped++;
        H->metric_update(m->ctx, m->m_dropped, 1);
    }
}

/* Every point of request r of group g as BAD with status. */
static void fail_req(mb_t *m, int gi, int ri, const char *status)
{
    mb_group_t *g = &m->groups[gi];
    mb_req_t *r = &g->reqs[ri];
    for (int k = 0; k < r->npoints; k++)
        emit(m, &m->devs[g->dev], &m->points[r->points[k]], g->poll_ts, 0, 0, 0, 0, status);
}

static void req_finished(mb_t *m, int gi)
{
    if (m->groups[gi].outstanding > 0)
        m->groups[gi].outstanding--;
}

/* A read covering several points was refused as a whole (exception 2/3: one
 * of its addresses does not exist): from the next poll on, read each point
 * on its own, so only the bad one stays BAD. Requests are appended, so the
 * indices of requests in flight stay valid. */
static void split_req(mb_t *m, mb_dev_t *d, int gi, int ri)
{
    mb_group_t *g = &m->groups[gi];
    int n = g->reqs[ri].npoints;
    mb_req_t *nr = realloc(g->reqs, (size_t)(g->nreqs + n - 1) * sizeof *nr);
    if (!nr)
        return;
    g->reqs = nr;
    mb_req_t *r = &g->reqs[ri];
    for (int k = n - 1; k >= 0; k--) {
        const mb_point_t *p = &m->points[r->points[k]];
        int bits = p->table == T_COIL || p->table == T_DISCRETE;
        mb_req_t *x = k ? &g->reqs[g->nreqs] : r;
        if (k) {
            int *pt = malloc(sizeof *pt);
            if (!pt)
                continue;
            memset(x, 0, sizeof *x);
            x->points = pt;
            x->points[0] = r->points[k];
            x->npoints = 1;
            x->table = r->table;
            g->nreqs++;
        } else {
            r->npoints = 1;
        }
        x->start = p->address;
        x->qty = (uint16_t)(bits ? 1 : mb_type_regs(p->type));
    }
    H->log(m->ctx, STRATA_LOG_WARN,
           "device %s: a read of %d points of group %s was refused (%s); reading them one by "
           "one from now on",
           d->name, n, g->name, d->last_error);
}

static void handle_response(mb_t *m, mb_dev_t *d, int gi, int ri, const mb_resp_t *resp)
{
    mb_group_t *g = &m->groups[gi];
    mb_req_t *r = &g->reqs[ri];
    if (resp->exception) {
        char st[128];
        snprintf(st, sizeof st, "exception %d: %s", resp->exception,
                 mb_exception_str(resp->exception));
        d->exceptions++;
        m->errors++;
        H->metric_update(m->ctx, m->m_exceptions, 1);
        snprintf(d->last_error, sizeof d->last_error, "%s (%s %u+%u)", st, table_names[r->table],
                 r->start, r->qty);
        fail_req(m, gi, ri, st);
        if ((resp->exception == 2 || resp->exception == 3) && r->npoints > 1)
            split_req(m, d, gi, ri);
        return;
    }
    for (int k = 0; k < r->npoints; k++) {
        const mb_point_t *p = &m->points[r->points[k]];
        unsigned off = (unsigned)(p->address - r->start);
        int64_t iv = 0;
        double dv = 0;
        int integral = 1;
        if (p->type == MB_T_BOOL) {
            iv = mb_bit(resp, off);
        } else {
            uint16_t regs[2] = {mb_reg(resp, off), mb_type_regs(p->type) > 1 ? mb_reg(resp, off + 1) : 0};
            integral = mb_decode(regs, p->type, p->order, &iv, &dv);
        }
        if (!integral && !isfinite(dv)) {
            emit(m, d, p, g->poll_ts, 0, 0, 0, 0, "not a finite float32");
            continue;
        }
        emit(m, d, p, g->poll_ts, 1, iv, dv, integral, NULL);
    }
}

/* ---- connection ------------------------------------------------------------------ */

static void dev_close(mb_t *m, mb_dev_t *d, const char *why);
static void dev_flush(mb_t *m, mb_dev_t *d);

static void on_reconnect_timer(mb_t *m, mb_dev_t *d);

static void link_update(mb_t *m)
{
    int up = 0, down = 0;
    for (int i = 0; i < m->ndevs; i++) {
        if (m->devs[i].state == D_UP)
            up++;
        else
            down++;
    }
    int s = down == 0 ? STRATA_LINK_UP : up == 0 ? STRATA_LINK_DOWN : STRATA_LINK_DEGRADED;
    H->set_link_state(m->ctx, s, down ? m->last_error : NULL);
}

/* timer args: m->targs[] = groups..., devices..., tick (per instance) */
static void *targ(mb_t *m, int kind, int idx)
{
    return &m->targs[kind == 0 ? idx : kind == 1 ? m->ngroups + idx : m->ngroups + m->ndevs];
}

static void dev_connect(mb_t *m, mb_dev_t *d)
{
    char port[16];
    snprintf(port, sizeof port, "%d", d->port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai = NULL;
    int rc = getaddrinfo(d->host, port, &hints, &ai);
    if (rc || !ai) {
        char why[160];
        snprintf(why, sizeof why, "resolve %s: %s", d->host, gai_strerror(rc));
        if (ai)
            freeaddrinfo(ai);
        dev_close(m, d, why);
        return;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        freeaddrinfo(ai);
        dev_close(m, d, strerror(errno));
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    rc = connect(fd, ai->ai_addr, ai->ai_addrlen);
    freeaddrinfo(ai);
    if (rc && errno != EINPROGRESS) {
        char why[160];
        snprintf(why, sizeof why, "connect %s:%d: %s", d->host, d->port, strerror(errno));
        close(fd);
        dev_close(m, d, why);
        return;
    }
    d->fd = fd;
    d->state = D_CONNECTING;
    d->inlen = 0;
    H->fd_watch(m->ctx, fd, STRATA_FD_WRITE, d);
}

static void dev_close(mb_t *m, mb_dev_t *d, const char *why)
{
    if (d->fd >= 0) {
        H->fd_unwatch(m->ctx, d->fd);
        close(d->fd);
        d->fd = -1;
    }
    int was = d->state;
    d->state = D_DOWN;
    d->outlen = 0;
    d->inlen = 0;
    d->consecutive_timeouts = 0;
    snprintf(d->last_error, sizeof d->last_error, "%s", why);
    snprintf(m->last_error, sizeof m->last_error, "%s: %s", d->name, why);
    /* what was in flight or queued fails: device offline */
    char st[200];
    snprintf(st, sizeof st, "device offline: %s", why);
    for (int i = 0; i < d->nflight; i++) {
        fail_req(m, d->flight[i].group, d->flight[i].req, st);
        req_finished(m, d->flight[i].group);
    }
    d->nflight = 0;
    while (d->qlen) {
        mb_qent_t q = d->queue[d->qhead];
        d->qhead = (d->qhead + 1) % d->qcap;
        d->qlen--;
        fail_req(m, q.group, q.req, st);
        req_finished(m, q.group);
    }
    if (was == D_UP)
        H->log(m->ctx, STRATA_LOG_WARN, "device %s (%s:%d): %s", d->name, d->host, d->port, why);
    link_update(m);
    d->reconnects++;
    H->metric_update(m->ctx, m->m_reconnects, 1);
    uint64_t delay = H->backoff_next(m->ctx, &d->bo);
    d->reconnect_timer = H->timer_add(m->ctx, delay, 0, targ(m, 1, (int)(d - m->devs)));
}

static void on_reconnect_timer(mb_t *m, mb_dev_t *d)
{
    d->reconnect_timer = 0;
    if (d->state == D_DOWN && !m->paused)
        dev_connect(m, d);
}

/* Puts queued requests on the wire, up to max.inflight. */
static void dev_pump(mb_t *m, mb_dev_t *d)
{
    if (d->state != D_UP)
        return;
    while (d->qlen && d->nflight < d->max_inflight && d->outlen + 12 <= sizeof d->out) {
        mb_qent_t q = d->queue[d->qhead];
        d->qhead = (d->qhead + 1) % d->qcap;
        d->qlen--;
        mb_req_t *r = &m->groups[q.group].reqs[q.req];
        uint16_t tid = d->next_tid++;
        mb_build_read(d->out + d->outlen, tid, (uint8_t)d->unit, table_fc[r->table], r->start,
                      r->qty);
        d->outlen += 12;
        int64_t now = H->now_ns(m->ctx, STRATA_CLOCK_MONOTONIC);
        d->flight[d->nflight++] = (mb_flight_t){tid, q.group, q.req,
                                                now + (int64_t)d->timeout_ms * 1000000, now};
        if (d->nflight > d->inflight_max)
            d->inflight_max = d->nflight;
        d->requests++;
        H->metric_update(m->ctx, m->m_requests, 1);
    }
    dev_flush(m, d);
}

static void dev_flush(mb_t *m, mb_dev_t *d)
{
    while (d->outlen) {
        ssize_t w = send(d->fd, d->out, d->outlen, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (w <= 0) {
            char why[160];
            snprintf(why, sizeof why, "send: %s", strerror(errno));
            dev_close(m, d, why);
            return;
        }
        memmove(d->out, d->out + w, d->outlen - (size_t)w);
        d->outlen -= (size_t)w;
    }
    H->fd_watch(m->ctx, d->fd, STRATA_FD_READ | (d->outlen ? STRATA_FD_WRITE : 0), d);
}

static void dev_read(mb_t *m, mb_dev_t *d)
{
    for (;;) {
        ssize_t n = recv(d->fd, d->in + d->inlen, sizeof d->in - d->inlen, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n <= 0) {
            dev_close(m, d, n == 0 ? "connection closed by the device" : strerror(errno));
            return;
        }
        d->inlen += (size_t)n;
        size_t off = 0;
        for (;;) {
            mb_adu_t adu;
            int fl = mb_frame(d->in + off, d->inlen - off, &adu);
            if (fl == 0)
                break;
            if (fl < 0) {
                d->bad_frames++;
                m->errors++;
                H->metric_update(m->ctx, m->m_bad, 1);
                dev_close(m, d, "malformed MBAP header (stream out of sync)");
                return;
            }
            off += (size_t)fl;
            int fi = -1;
            for (int i = 0; i < d->nflight; i++)
                if (d->flight[i].tid == adu.tid)
                    fi = i;
            if (fi < 0) { /* late answer to a timed-out request, or garbage */
                d->unmatched++;
                H->metric_update(m->ctx, m->m_unmatched, 1);
                continue;
            }
            mb_flight_t f = d->flight[fi];
            d->flight[fi] = d->flight[--d->nflight];
            mb_req_t *r = &m->groups[f.group].reqs[f.req];
            mb_resp_t resp;
            if (adu.unit != (uint8_t)d->unit || mb_parse_read(&adu, table_fc[r->table], r->qty, &resp)) {
                d->bad_frames++;
                m->errors++;
                H->metric_update(m->ctx, m->m_bad, 1);
                snprintf(d->last_error, sizeof d->last_error,
                         "malformed response to %s %u+%u (tid %u)", table_names[r->table],
                         r->start, r->qty, adu.tid);
                fail_req(m, f.group, f.req, "malformed response");
            } else {
                d->responses++;
                d->consecutive_timeouts = 0;
                d->bo.attempt = 0;
                H->metric_update(m->ctx, m->m_rtt,
                                 (double)(H->now_ns(m->ctx, STRATA_CLOCK_MONOTONIC) - f.sent_ns) / 1e6);
                handle_response(m, d, f.group, f.req, &resp);
            }
            req_finished(m, f.group);
        }
        memmove(d->in, d->in + off, d->inlen - off);
        d->inlen -= off;
    }
    dev_pump(m, d);
}

static void mb_on_fd(void *inst, int fd, uint32_t ev, void *arg)
{
    mb_t *m = inst;
    mb_dev_t *d = arg;
    if (d->fd != fd)
        return;
    if (d->state == D_CONNECTING) {
        int e = 0;
        socklen_t l = sizeof e;
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &l);
        if (e || (ev & (STRATA_FD_ERROR | STRATA_FD_HUP) && !(ev & STRATA_FD_WRITE))) {
            char why[160];
            snprintf(why, sizeof why, "connect %s:%d: %s", d->host, d->port,
                     strerror(e ? e : ECONNREFUSED));
            dev_close(m, d, why);
            return;
        }
        d->state = D_UP;
        H->log(m->ctx, STRATA_LOG_INFO, "device %s connected (%s:%d unit %d)", d->name, d->host,
               d->port, d->unit);
        link_update(m);
        dev_pump(m, d);
        return;
    }
    if (ev & STRATA_FD_READ || ev & (STRATA_FD_ERROR | STRATA_FD_HUP))
        dev_read(m, d);
    if (d->fd == fd && (ev & STRATA_FD_WRITE))
        dev_flush(m, d);
}

/* ---- polling ------------------------------------------------------------------ */

static void poll_group(mb_t *m, int gi)
{
    mb_group_t *g = &m->groups[gi];
    mb_dev_t *d = &m->devs[g->dev];
    if (m->paused)
        return;
    if (g->outstanding > 0) { /* previous poll still running: a gap */
        m->skipped++;
        H->metric_update(m->ctx, m->m_skipped, 1);
        return;
    }
    if (d->state == D_CONNECTING && d->reconnects == 0)
        return; /* first connect still in progress: no poll yet, not a gap */
    m->polls++;
    g->poll_ts = H->now_ns(m->ctx, STRATA_CLOCK_REALTIME) / 1000000;
    if (d->state != D_UP) {
        char st[200];
        snprintf(st, sizeof st, "device offline: %s",
                 d->last_error[0] ? d->last_error : "not connected");
        for (int r = 0; r < g->nreqs; r++)
            fail_req(m, gi, r, st);
        return;
    }
    if (d->qlen + g->nreqs > d->qcap) {
        int cap = (d->qlen + g->nreqs) * 2;
        mb_qent_t *q = malloc((size_t)cap * sizeof *q);
        if (!q)
            return;
        for (int i = 0; i < d->qlen; i++)
            q[i] = d->queue[(d->qhead + i) % d->qcap];
        free(d->queue);
        d->queue = q;
        d->qcap = cap;
        d->qhead = 0;
    }
    for (int r = 0; r < g->nreqs; r++) {
        d->queue[(d->qhead + d->qlen) % d->qcap] = (mb_qent_t){gi, r};
        d->qlen++;
        g->outstanding++;
    }
    dev_pump(m, d);
}

/* Every 20 ms: request timeouts. */
static void tick(mb_t *m)
{
    int64_t now = H->now_ns(m->ctx, STRATA_CLOCK_MONOTONIC);
    for (int i = 0; i < m->ndevs; i++) {
        mb_dev_t *d = &m->devs[i];
        int timed_out = 0;
        for (int f = 0; f < d->nflight;) {
            if (d->flight[f].deadline_ns > now) {
                f++;
                continue;
            }
            mb_flight_t x = d->flight[f];
            d->flight[f] = d->flight[--d->nflight];
            d->timeouts++;
            m->errors++;
            timed_out++;
            H->metric_update(m->ctx, m->m_timeouts, 1);
            mb_req_t *r = &m->groups[x.group].reqs[x.req];
            snprintf(d->last_error, sizeof d->last_error, "timeout after %llu ms (%s %u+%u, tid %u)",
                     (unsigned long long)d->timeout_ms, table_names[r->table], r->start, r->qty,
                     x.tid);
            fail_req(m, x.group, x.req, "timeout");
            req_finished(m, x.group);
        }
        if (timed_out) {
            d->consecutive_timeouts += timed_out;
            if (d->consecutive_timeouts >= 3) {
                dev_close(m, d, "3 consecutive timeouts");
                continue;
            }
            dev_pump(m, d);
        }
    }
}

static void mb_on_timer(void *inst, int64_t id, void *arg)
{
    mb_t *m = inst;
    mb_targ_t *t = arg;
    if (!t)
        return;
    if (t->kind == 0)
        poll_group(m, t->idx);
    else if (t->kind == 1)
        on_reconnect_timer(m, &m->devs[t->idx]);
    else
        tick(m);
}

/* ---- lifecycle ------------------------------------------------------------------ */

static int mb_create(strata_host_ctx_t *ctx, const strata_config_t *cfg, void **out)
{
    mb_t *m = calloc(1, sizeof *m);
    if (!m)
        return -ENOMEM;
    char err[256];
    int rc = build(cfg, m, err, sizeof err);
    if (rc) {
        H->log(ctx, STRATA_LOG_ERROR, "%s", err);
        mb_free_all(m);
        return rc;
    }
    m->ctx = ctx;
    m->targs = calloc((size_t)(m->ngroups + m->ndevs + 1), sizeof *m->targs);
    if (!m->targs) {
        mb_free_all(m);
        return -ENOMEM;
    }
    for (int i = 0; i < m->ngroups; i++)
        m->targs[i] = (mb_targ_t){0, i};
    for (int i = 0; i < m->ndevs; i++)
        m->targs[m->ngroups + i] = (mb_targ_t){1, i};
    m->targs[m->ngroups + m->ndevs] = (mb_targ_t){2, 0};
    m->m_requests = H->metric_register(ctx, "modbus.requests", STRATA_METRIC_COUNTER, "read requests sent");
    m->m_exceptions = H->metric_register(ctx, "modbus.exceptions", STRATA_METRIC_COUNTER, "exception responses");
    m->m_timeouts = H->metric_register(ctx, "modbus.timeouts", STRATA_METRIC_COUNTER, "requests timed out");
    m->m_bad = H->metric_register(ctx, "modbus.bad_frames", STRATA_METRIC_COUNTER, "malformed responses");
    m->m_unmatched = H->metric_register(ctx, "modbus.unmatched", STRATA_METRIC_COUNTER, "responses with an unknown transaction id");
    m->m_reconnects = H->metric_register(ctx, "modbus.reconnects", STRATA_METRIC_COUNTER, "connection drops");
    m->m_skipped = H->metric_register(ctx, "modbus.polls_skipped", STRATA_METRIC_COUNTER, "polls skipped: previous one still outstanding");
    m->m_records = H->metric_register(ctx, "modbus.records", STRATA_METRIC_COUNTER, "point records produced");
    m->m_dropped = H->metric_register(ctx, "modbus.dropped", STRATA_METRIC_COUNTER, "point records refused by the host (backpressure)");
    m->m_rtt = H->metric_register(ctx, "modbus.rtt_ms", STRATA_METRIC_HISTOGRAM, "request round trip");
    *out = m;
    return 0;
}

static int mb_start(void *inst)
{
    mb_t *m = inst;
    for (int i = 0; i < m->ngroups; i++)
        m->groups[i].timer = H->timer_add(m->ctx, 0, m->groups[i].interval_ms, targ(m, 0, i));
    m->tick = H->timer_add(m->ctx, 20, 20, targ(m, 2, 0));
    H->set_link_state(m->ctx, STRATA_LINK_CONNECTING, NULL);
    for (int i = 0; i < m->ndevs; i++)
        dev_connect(m, &m->devs[i]);
    return 0;
}

static void mb_stop(void *inst)
{
    mb_t *m = inst;
    for (int i = 0; i < m->ndevs; i++) {
        mb_dev_t *d = &m->devs[i];
        if (d->fd >= 0) {
            H->fd_unwatch(m->ctx, d->fd);
            close(d->fd);
            d->fd = -1;
        }
        d->state = D_DOWN;
    }
}

static void mb_destroy(void *inst) { mb_free_all(inst); }

static void mb_pause(void *inst) { ((mb_t *)inst)->paused = 1; }
static void mb_resume(void *inst) { ((mb_t *)inst)->paused = 0; }

static void mb_health(void *inst, strata_health_t *h)
{
    mb_t *m = inst;
    int up = 0;
    for (int i = 0; i < m->ndevs; i++)
        up += m->devs[i].state == D_UP;
    h->link_state = up == m->ndevs ? STRATA_LINK_UP : up ? STRATA_LINK_DEGRADED : STRATA_LINK_DOWN;
    if (STRATA_HAS_FIELD(h, h->struct_size, strata_health_t, messages_in)) {
        h->errors = m->errors;
        h->messages_in = m->polls;
    }
    if (STRATA_HAS_FIELD(h, h->struct_size, strata_health_t, last_error))
        snprintf(h->last_error, sizeof h->last_error, "%s", m->last_error);
}

static size_t mb_describe(void *inst, char *buf, size_t len)
{
    mb_t *m = inst;
    static const char *sn[] = {"down", "connecting", "up"};
    size_t o = 0;
#define PUT(...)                                                                  \
    do {                                                                          \
        int n_ = snprintf(buf + o, o < len ? len - o : 0, __VA_ARGS__);            \
        if (n_ > 0)                                                               \
            o += (size_t)n_;                                                      \
    } while (0)
    PUT("{\"records\":%llu,\"dropped\":%llu,\"polls\":%llu,\"polls_skipped\":%llu,\"devices\":{",
        (unsigned long long)m->records, (unsigned long long)m->dropped,
        (unsigned long long)m->polls, (unsigned long long)m->skipped);
    for (int i = 0; i < m->ndevs; i++) {
        mb_dev_t *d = &m->devs[i];
        char le[160];
        size_t k = 0;
        for (const char *c = d->last_error; *c && k < sizeof le - 1; c++)
            le[k++] = (*c == '"' || *c == '\\') ? '\'' : *c;
        le[k] = 0;
        PUT("%s\"%s\":{\"state\":\"%s\",\"requests\":%llu,\"responses\":%llu,\"exceptions\":%llu,"
            "\"timeouts\":%llu,\"bad_frames\":%llu,\"unmatched\":%llu,\"reconnects\":%llu,"
            "\"inflight_max\":%d,\"last_error\":\"%s\"}",
            i ? "," : "", d->name, sn[d->state], (unsigned long long)d->requests,
            (unsigned long long)d->responses, (unsigned long long)d->exceptions,
            (unsigned long long)d->timeouts, (unsigned long long)d->bad_frames,
            (unsigned long long)d->unmatched, (unsigned long long)d->reconnects, d->inflight_max,
            le);
    }
    PUT("}}");
#undef PUT
    if (o >= len) { /* truncated: not valid JSON, say nothing */
        if (len > 2) {
            buf[0] = '{';
            buf[1] = '}';
            buf[2] = 0;
        }
        return len > 2 ? 2 : 0;
    }
    return o;
}

static const strata_plugin_ops_t ops = {
    .struct_size = sizeof ops,
    .validate = mb_validate,
    .create = mb_create,
    .start = mb_start,
    .stop = mb_stop,
    .destroy = mb_destroy,
    .pause = mb_pause,
    .resume = mb_resume,
    .health = mb_health,
    .on_fd = mb_on_fd,
    .on_timer = mb_on_timer,
    .describe = mb_describe,
};

#define P(type, key, def, en, help, lo, hi, fl) \
    {sizeof(strata_plugin_param_t), type, key, def, en, help, lo, hi, fl, 0}
static const strata_plugin_param_t params[] = {
    P(STRATA_PARAM_STRING, "device.*.host", NULL, NULL, "device address (name or IP)", 0, 0, STRATA_PARAM_REQUIRED),
    P(STRATA_PARAM_INT, "device.*.port", "502", NULL, "TCP port", 1, 65535, STRATA_PARAM_HAS_RANGE),
    P(STRATA_PARAM_INT, "device.*.unit", "1", NULL, "unit id (slave address behind a gateway; 1 or 255 for native TCP)", 0, 255, STRATA_PARAM_HAS_RANGE),
    P(STRATA_PARAM_STRING, "device.*.id", "<device name>", NULL, "device id: the record key", 0, 0, 0),
    P(STRATA_PARAM_INT, "device.*.timeout.ms", "1000", NULL, "response timeout per request", 1, 600000, STRATA_PARAM_HAS_RANGE),
    P(STRATA_PARAM_INT, "device.*.max.inflight", "4", NULL, "requests on the wire at once (matched by transaction id)", 1, 16, STRATA_PARAM_HAS_RANGE),
    P(STRATA_PARAM_INT, "device.*.reconnect.backoff.ms", "200", NULL, "first reconnect delay (jittered, doubling)", 1, 3600000, STRATA_PARAM_HAS_RANGE),
    P(STRATA_PARAM_INT, "device.*.reconnect.backoff.max.ms", "10000", NULL, "largest reconnect delay", 1, 3600000, STRATA_PARAM_HAS_RANGE),
    P(STRATA_PARAM_STRING, "group.*.device", NULL, NULL, "device the group polls", 0, 0, STRATA_PARAM_REQUIRED),
    P(STRATA_PARAM_INT, "group.*.interval.ms", "1000", NULL, "poll interval", 10, 86400000, STRATA_PARAM_HAS_RANGE),
    P(STRATA_PARAM_STRING, "point.*.group", NULL, NULL, "group the point belongs to", 0, 0, STRATA_PARAM_REQUIRED),
    P(STRATA_PARAM_ENUM, "point.*.table", NULL, "coil|discrete|holding|input", "Modbus table (function 1/2/3/4)", 0, 0, STRATA_PARAM_REQUIRED),
    P(STRATA_PARAM_INT, "point.*.address", NULL, NULL, "0-based address (protocol address; mbpoll -r is 1-based)", 0, 65535, STRATA_PARAM_HAS_RANGE | STRATA_PARAM_REQUIRED),
    P(STRATA_PARAM_ENUM, "point.*.type", "bool / uint16", "bool|int16|uint16|int32|uint32|float32", "value type (bool for coil/discrete)", 0, 0, 0),
    P(STRATA_PARAM_ENUM, "point.*.order", "ABCD", "ABCD|CDAB|BADC|DCBA", "32-bit byte order: ABCD big-endian, CDAB word-swapped, BADC byte-swapped, DCBA little-endian", 0, 0, 0),
    P(STRATA_PARAM_DOUBLE, "point.*.scale", "1", NULL, "value = raw * scale + offset (then a double)", -1e300, 1e300, STRATA_PARAM_HAS_RANGE),
    P(STRATA_PARAM_DOUBLE, "point.*.offset", "0", NULL, "added after scale", -1e300, 1e300, STRATA_PARAM_HAS_RANGE),
    P(STRATA_PARAM_STRING, "point.*.unit", NULL, NULL, "engineering unit carried in each record", 0, 0, 0),
    P(STRATA_PARAM_INT, "request.gap", "16", NULL, "merge points of a group into one read when at most this many unused addresses lie between them", 0, 2000, STRATA_PARAM_HAS_RANGE),
};
#undef P

static const strata_plugin_desc_t desc = {
    .struct_size = sizeof desc,
    .abi_major = STRATA_PLUGIN_ABI_MAJOR,
    .abi_minor = STRATA_PLUGIN_ABI_MINOR,
    .name = "modbus",
    .version = "1.0.0",
    .description = "Modbus/TCP client: polls coils, discrete inputs, holding and input registers",
    .kind = STRATA_PLUGIN_KIND_SOURCE,
    .param_size = sizeof(strata_plugin_param_t),
    .caps = STRATA_PLUGIN_CAP_PAUSE | STRATA_PLUGIN_CAP_FD_EVENTS | STRATA_PLUGIN_CAP_TIMERS,
    .required_host_caps = STRATA_HOST_CAP_POINTS | STRATA_HOST_CAP_TIMERS |
                          STRATA_HOST_CAP_FD_WATCH | STRATA_HOST_CAP_METRICS,
    .params = params,
    .param_count = sizeof params / sizeof params[0],
    .ops = &ops,
};

STRATA_PLUGIN_EXPORT const strata_plugin_desc_t *
strata_plugin_entry_v1(uint32_t major, uint32_t minor, const strata_host_api_t *host)
{
    if (major != STRATA_PLUGIN_ABI_MAJOR || !host ||
        !STRATA_HAS_FIELD(host, host->struct_size, strata_host_api_t, backoff_next)) {
        if (host && host->log)
            host->log(NULL, STRATA_LOG_ERROR, "modbus: host ABI %u.%u not supported", major, minor);
        return NULL;
    }
    H = host;
    return &desc;
}
