/*
 * ph_host -- see ph_host.h. Layout of this file:
 *   config: instance keys, config.file, schema check
 *   loading: plugin.dir / file permission checks, Ed25519 signature, dlopen,
 *            descriptor and ABI checks
 *   host table: the strata_host_api_t functions
 *   instance thread: supervisor (create/start/loop/stop/destroy, restart
 *            with backoff), poll loop, committed delivery
 *   records: produce queue, memory budget, ph_rec_done, offsets checkpoint
 *   status: JSON
 */
#include "ph_host.h"

#include "sc_err.h"
#include "sc_log.h"
#include "sc_mem.h"
#include "strata/plugin.h"

#include <ctype.h>
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SUB "plugin"

#define PH_MAX_WATCH 64
#define PH_MAX_TIMERS 256
#define PH_MAX_METRICS 64
#define PH_KV_MAX (64u << 10)

const char *const ph_host_keys[] = {"library", "topic", "format", "memory.bytes",
                                    "restart.backoff.ms", "restart.backoff.max.ms",
                                    "stop.timeout.ms", "config.file", NULL};

enum { ST_NEW, ST_STARTING, ST_RUNNING, ST_BACKOFF, ST_FAILED, ST_STOPPED };
static const char *state_name(int s)
{
    static const char *n[] = {"new", "starting", "running", "backoff", "failed", "stopped"};
    return s >= 0 && s <= ST_STOPPED ? n[s] : "?";
}

typedef struct {
    const strata_plugin_desc_t *desc;
    const strata_plugin_ops_t *ops;
    size_t ops_size;
    char path[PATH_MAX];
    void *dl;
} ph_lib_t;

typedef struct {
    int fd;
    uint32_t events;
    void *arg;
} ph_watch_t;

typedef struct {
    int64_t id;
    int64_t due_ms;
    uint64_t period_ms;
    void *arg;
} ph_timer_t;

typedef struct {
    char name[64];
    int kind;
    double value, sum, min, max;
    uint64_t count;
} ph_metric_t;

typedef struct {
    char *part;
    int64_t off;       /* committed (durable) */
    int64_t delivered; /* last handed to ops->committed */
    int has_delivered;
} ph_off_t;

struct ph_inst {
    ph_host_t *host;
    char name[64];
    ph_lib_t *lib;
    char **keys, **values; /* the instance's config, prefix stripped */
    size_t nkv;
    strata_config_t cfg;
    char topic[256];
    int protobuf;
    size_t mem_limit;
    uint32_t backoff_base, backoff_max;
    uint32_t stop_timeout_ms;
    char dir[PATH_MAX]; /* state_dir/<name> */

    pthread_t thread;
    int thread_live, abandoned;
    int wake_fd;
    atomic_int stop_req;
    atomic_int wake_req;  /* plugin asked for on_wake */
    atomic_int fail_req;  /* link state FAILED */
    atomic_int eagain_flag; /* produce answered EAGAIN since the loop last looked */
    atomic_int host_paused; /* the host paused the instance (backpressure) */
    atomic_size_t mem_used;

    /* thread-private */
    void *pinst;
    ph_watch_t watch[PH_MAX_WATCH];
    int nwatch;
    ph_timer_t timers[PH_MAX_TIMERS];
    int ntimers;
    int64_t next_timer_id;
    strata_backoff_t restart_bo;

    pthread_mutex_t mu; /* everything below */
    int state;
    int link_state;
    char link_reason[160];
    char last_error[256];
    uint64_t restarts;
    uint64_t produced, produced_bytes, eagain, append_errors, durable, pauses;
    ph_rec_t *ohead, *otail; /* outstanding, produce order */
    ph_off_t *offs;
    size_t noffs, offs_cap;
    int offs_dirty;
    ph_metric_t metrics[PH_MAX_METRICS];
    int nmetrics;
    strata_health_t health;
    char describe[2048];
};

struct ph_host {
    ph_config_t cfg;
    char state_dir[PATH_MAX];
    ph_sink_t sink;
    ph_lib_t *libs;
    size_t nlibs;
    ph_inst_t **insts;
    size_t ninst;
    pthread_mutex_t qmu;
    ph_rec_t *qhead, *qtail;
    atomic_int stopping;
};

/* The host context handed to plugins is the instance itself. */
#define CTX(i) ((strata_host_ctx_t *)(i))
#define INST(c) ((ph_inst_t *)(c))

static void errf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void errf(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void set_error(ph_inst_t *in, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_error(ph_inst_t *in, const char *fmt, ...)
{
    va_list ap;
    pthread_mutex_lock(&in->mu);
    va_start(ap, fmt);
    vsnprintf(in->last_error, sizeof in->last_error, fmt, ap);
    va_end(ap);
    pthread_mutex_unlock(&in->mu);
}

/* ---- config ------------------------------------------------------------------ */

static int is_host_key(const char *k)
{
    for (int i = 0; ph_host_keys[i]; i++)
        if (strcmp(k, ph_host_keys[i]) == 0)
            return 1;
    return 0;
}

static const char *inst_get(const ph_inst_t *in, const char *key)
{
    for (size_t i = 0; i < in->nkv; i++)
        if (strcmp(in->keys[i], key) == 0)
            return in->values[i];
    return NULL;
}

/* Sets (or replaces) key in the instance's config. */
static int inst_set(ph_inst_t *in, const char *key, const char *val)
{
    for (size_t i = 0; i < in->nkv; i++)
        if (strcmp(in->keys[i], key) == 0) {
            char *v = sc_strdup(val);
            if (!v)
                return SC_ERR_NO_MEMORY;
            sc_free(in->values[i]);
            in->values[i] = v;
            return 0;
        }
    char **k = sc_realloc(in->keys, (in->nkv + 1) * sizeof *k);
    if (!k)
        return SC_ERR_NO_MEMORY;
    in->keys = k;
    char **v = sc_realloc(in->values, (in->nkv + 1) * sizeof *v);
    if (!v)
        return SC_ERR_NO_MEMORY;
    in->values = v;
    in->keys[in->nkv] = sc_strdup(key);
    in->values[in->nkv] = sc_strdup(val);
    if (!in->keys[in->nkv] || !in->values[in->nkv]) {
        sc_free(in->keys[in->nkv]);
        sc_free(in->values[in->nkv]);
        return SC_ERR_NO_MEMORY;
    }
    in->nkv++;
    return 0;
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = 0;
    return s;
}

/* config.file: key=value lines (keys without the plugin.<instance>. prefix);
 * '#'/'!' comments. Keys given in server.properties win. */
static int load_config_file(ph_inst_t *in, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        errf(err, errlen, "plugin instance '%s': key 'config.file': cannot read %s: %s", in->name,
             path, strerror(errno));
        return SC_ERR_BAD_CONFIG;
    }
    char line[4096];
    int lineno = 0, rc = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        char *s = trim(line);
        if (!*s || *s == '#' || *s == '!')
            continue;
        char *eq = strpbrk(s, "=:");
        if (!eq) {
            errf(err, errlen, "plugin instance '%s': %s:%d: expected key=value", in->name, path,
                 lineno);
            rc = SC_ERR_BAD_CONFIG;
            break;
        }
        *eq = 0;
        char *k = trim(s), *v = trim(eq + 1);
        if (strcmp(k, "config.file") == 0 || strcmp(k, "library") == 0) {
            errf(err, errlen, "plugin instance '%s': %s:%d: key '%s' belongs in server.properties",
                 in->name, path, lineno, k);
            rc = SC_ERR_BAD_CONFIG;
            break;
        }
        if (inst_get(in, k))
            continue; /* server.properties wins */
        if ((rc = inst_set(in, k, v)) != 0)
            break;
    }
    fclose(f);
    return rc;
}

static int parse_i64(const char *v, int64_t *out)
{
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno || end == v || *end)
        return -1;
    *out = x;
    return 0;
}

/* Does key match pattern (segments split on '.', '*' = one segment)? */
static int key_match(const char *pat, const char *key)
{
    while (*pat && *key) {
        if (*pat == '*') {
            const char *dot = strchr(key, '.');
            size_t seg = dot ? (size_t)(dot - key) : strlen(key);
            if (seg == 0)
                return 0;
            key += seg;
            pat++;
        } else {
            if (*pat != *key)
                return 0;
            pat++;
            key++;
        }
    }
    return !*pat && !*key;
}

static const strata_plugin_param_t *param_at(const ph_lib_t *lib, uint32_t i)
{
    return (const strata_plugin_param_t *)((const char *)lib->desc->params +
                                           (size_t)i * lib->desc->param_size);
}

static int check_value(const ph_inst_t *in, const strata_plugin_param_t *p, const char *key,
                       const char *v, char *err, size_t errlen)
{
    double d;
    int64_t x;
    char *end;
    switch (p->type) {
    case STRATA_PARAM_INT:
        if (parse_i64(v, &x)) {
            errf(err, errlen, "plugin instance '%s': key '%s': '%s' is not an integer", in->name,
                 key, v);
            return SC_ERR_BAD_CONFIG;
        }
        d = (double)x;
        break;
    case STRATA_PARAM_DOUBLE:
        errno = 0;
        d = strtod(v, &end);
        if (errno || end == v || *end || !isfinite(d)) {
            errf(err, errlen, "plugin instance '%s': key '%s': '%s' is not a number", in->name,
                 key, v);
            return SC_ERR_BAD_CONFIG;
        }
        break;
    case STRATA_PARAM_BOOL:
        if (strcmp(v, "true") && strcmp(v, "false")) {
            errf(err, errlen, "plugin instance '%s': key '%s': '%s' is not true or false",
                 in->name, key, v);
            return SC_ERR_BAD_CONFIG;
        }
        return 0;
    case STRATA_PARAM_ENUM: {
        const char *e = p->enum_values ? p->enum_values : "";
        size_t vl = strlen(v);
        while (*e) {
            size_t l = strcspn(e, "|");
            if (l == vl && strncmp(e, v, l) == 0)
                return 0;
            e += l;
            if (*e == '|')
                e++;
        }
        errf(err, errlen, "plugin instance '%s': key '%s': '%s' is not one of %s", in->name, key,
             v, p->enum_values ? p->enum_values : "");
        return SC_ERR_BAD_CONFIG;
    }
    default:
        return 0;
    }
    if ((p->flags & STRATA_PARAM_HAS_RANGE) && (d < p->min || d > p->max)) {
        errf(err, errlen, "plugin instance '%s': key '%s': %s is out of range [%g, %g]", in->name,
             key, v, p->min, p->max);
        return SC_ERR_BAD_CONFIG;
    }
    return 0;
}

/* Every plugin key matches a schema entry with a valid value; required
 * entries are present (per wildcard binding). */
static int check_schema(ph_inst_t *in, char *err, size_t errlen)
{
    const ph_lib_t *lib = in->lib;
    uint32_t np = lib->desc->params ? lib->desc->param_count : 0;
    for (size_t i = 0; i < in->nkv; i++) {
        const char *k = in->keys[i];
        if (is_host_key(k))
            continue;
        const strata_plugin_param_t *m = NULL;
        for (uint32_t j = 0; j < np && !m; j++) {
            const strata_plugin_param_t *p = param_at(lib, j);
            if (p->key && key_match(p->key, k))
                m = p;
        }
        if (!m) {
            errf(err, errlen, "plugin instance '%s': unknown key '%s' for plugin %s", in->name, k,
                 lib->desc->name);
            return SC_ERR_BAD_CONFIG;
        }
        int rc = check_value(in, m, k, in->values[i], err, errlen);
        if (rc)
            return rc;
    }
    for (uint32_t j = 0; j < np; j++) {
        const strata_plugin_param_t *p = param_at(lib, j);
        if (!p->key || !(p->flags & STRATA_PARAM_REQUIRED))
            continue;
        const char *star = strchr(p->key, '*');
        if (!star) {
            if (!inst_get(in, p->key)) {
                errf(err, errlen, "plugin instance '%s': missing required key '%s'", in->name,
                     p->key);
                return SC_ERR_BAD_CONFIG;
            }
            continue;
        }
        /* bindings of the first '*': every key starting with the prefix */
        size_t pl = (size_t)(star - p->key);
        for (size_t i = 0; i < in->nkv; i++) {
            const char *k = in->keys[i];
            if (strncmp(k, p->key, pl) != 0)
                continue;
            const char *seg = k + pl;
            size_t sl = strcspn(seg, ".");
            if (sl == 0)
                continue;
            char want[512];
            int n = snprintf(want, sizeof want, "%.*s%.*s%s", (int)pl, p->key, (int)sl, seg,
                             star + 1);
            if (n < 0 || (size_t)n >= sizeof want || strchr(want, '*'))
                continue;
            if (!inst_get(in, want)) {
                errf(err, errlen, "plugin instance '%s': missing required key '%s'", in->name,
                     want);
                return SC_ERR_BAD_CONFIG;
            }
        }
    }
    return 0;
}

static int host_key_u(ph_inst_t *in, const char *key, int64_t def, int64_t min, int64_t max,
                      int64_t *out, char *err, size_t errlen)
{
    const char *v = inst_get(in, key);
    int64_t x = def;
    if (v && (parse_i64(v, &x) || x < min || x > max)) {
        errf(err, errlen, "plugin instance '%s': key '%s': '%s' is not an integer in [%lld, %lld]",
             in->name, key, v, (long long)min, (long long)max);
        return SC_ERR_BAD_CONFIG;
    }
    *out = x;
    return 0;
}

/* ---- loading ------------------------------------------------------------------ */

/* Writable by others? Refuse o+w always; g+w unless the group is ours. The
 * owner must be us or root. */
static int perm_ok(const struct stat *st, const char *what, const char *path, char *err,
                   size_t errlen)
{
    if (st->st_mode & S_IWOTH) {
        errf(err, errlen, "%s %s is world-writable; refusing to load plugins from it", what, path);
        return 0;
    }
    if ((st->st_mode & S_IWGRP) && st->st_gid != getegid()) {
        errf(err, errlen, "%s %s is writable by group %u; refusing to load plugins from it", what,
             path, (unsigned)st->st_gid);
        return 0;
    }
    if (st->st_uid != geteuid() && st->st_uid != 0) {
        errf(err, errlen, "%s %s is owned by uid %u (not us, not root); refusing it", what, path,
             (unsigned)st->st_uid);
        return 0;
    }
    return 1;
}

static int read_fd_all(int fd, uint8_t **out, size_t *len)
{
    struct stat st;
    if (fstat(fd, &st))
        return -errno;
    size_t n = (size_t)st.st_size, got = 0;
    uint8_t *b = sc_malloc(n ? n : 1);
    if (!b)
        return SC_ERR_NO_MEMORY;
    while (got < n) {
        ssize_t r = pread(fd, b + got, n - got, (off_t)got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            sc_free(b);
            return r < 0 ? -errno : -EIO;
        }
        got += (size_t)r;
    }
    *out = b;
    *len = n;
    return 0;
}

/* Verifies <path>.sig (64 raw bytes, Ed25519 over the library bytes) with the
 * PEM public key. */
static int verify_sig(const ph_host_t *h, const char *path, const uint8_t *data, size_t len,
                      char *err, size_t errlen)
{
    char sp[PATH_MAX + 8];
    snprintf(sp, sizeof sp, "%s.sig", path);
    uint8_t sig[128];
    size_t sl = 0;
    FILE *f = fopen(sp, "rb");
    if (!f) {
        errf(err, errlen, "library %s: plugin.signature.required=true but %s cannot be read: %s",
             path, sp, strerror(errno));
        return SC_ERR_BAD_CONFIG;
    }
    sl = fread(sig, 1, sizeof sig, f);
    fclose(f);
    FILE *kf = fopen(h->cfg.signature_key, "r");
    if (!kf) {
        errf(err, errlen, "plugin.signature.public.key: cannot read %s: %s",
             h->cfg.signature_key, strerror(errno));
        return SC_ERR_BAD_CONFIG;
    }
    EVP_PKEY *pk = PEM_read_PUBKEY(kf, NULL, NULL, NULL);
    fclose(kf);
    if (!pk || EVP_PKEY_id(pk) != EVP_PKEY_ED25519) {
        EVP_PKEY_free(pk);
        errf(err, errlen, "plugin.signature.public.key: %s is not an Ed25519 PEM public key",
             h->cfg.signature_key);
        return SC_ERR_BAD_CONFIG;
    }
    int ok = 0;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (md && EVP_DigestVerifyInit(md, NULL, NULL, NULL, pk) == 1 && sl == 64 &&
        EVP_DigestVerify(md, sig, sl, data, len) == 1)
        ok = 1;
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(pk);
    if (!ok) {
        errf(err, errlen, "library %s: signature %s does not verify with %s; refusing to load it",
             path, sp, h->cfg.signature_key);
        return SC_ERR_BAD_CONFIG;
    }
    return 0;
}

static void host_log(strata_host_ctx_t *ctx, int level, const char *fmt, ...);
static const strata_host_api_t host_api;

static int load_lib(ph_host_t *h, const char *file, ph_lib_t *lib, char *err, size_t errlen)
{
    struct stat st;
    if (!*file || strchr(file, '/') || strcmp(file, ".") == 0 || strcmp(file, "..") == 0) {
        errf(err, errlen, "library '%s': must be a file name inside plugin.dir", file);
        return SC_ERR_BAD_CONFIG;
    }
    snprintf(lib->path, sizeof lib->path, "%s/%s", h->cfg.plugin_dir, file);
    int fd = open(lib->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        errf(err, errlen, "library %s: %s", lib->path, strerror(errno));
        return SC_ERR_BAD_CONFIG;
    }
    if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
        errf(err, errlen, "library %s: not a regular file", lib->path);
        close(fd);
        return SC_ERR_BAD_CONFIG;
    }
    if (!perm_ok(&st, "library", lib->path, err, errlen)) {
        close(fd);
        return SC_ERR_BAD_CONFIG;
    }
    if (h->cfg.signature_required) {
        uint8_t *data;
        size_t len;
        int rc = read_fd_all(fd, &data, &len);
        if (rc) {
            errf(err, errlen, "library %s: read: %s", lib->path, sc_err_str(rc));
            close(fd);
            return SC_ERR_BAD_CONFIG;
        }
        rc = verify_sig(h, lib->path, data, len, err, errlen);
        sc_free(data);
        if (rc) {
            close(fd);
            return rc;
        }
    }
    /* dlopen the very file checked (not the path again: no swap in between) */
    /* glibc recognises an already loaded object by its name first, and fd
     * numbers are reused: give each load a fresh number (upwards from 512)
     * so "/proc/self/fd/N" never names an earlier, different library. */
    static atomic_int next_fd = 512;
    int want = atomic_fetch_add(&next_fd, 1);
    int ufd = want < 900 ? fcntl(fd, F_DUPFD_CLOEXEC, want) : -1;
    if (ufd >= 0) {
        if (ufd >= want)
            atomic_store(&next_fd, ufd + 1);
        close(fd);
        fd = ufd;
    }
    char fdp[64];
    snprintf(fdp, sizeof fdp, "/proc/self/fd/%d", fd);
    lib->dl = dlopen(fdp, RTLD_NOW | RTLD_LOCAL);
    close(fd);
    if (!lib->dl) {
        errf(err, errlen, "library %s: dlopen: %s", lib->path, dlerror());
        return SC_ERR_BAD_CONFIG;
    }
    strata_plugin_entry_fn entry;
    *(void **)&entry = dlsym(lib->dl, STRATA_PLUGIN_ENTRY_SYMBOL);
    if (!entry) {
        errf(err, errlen, "library %s: no %s symbol; not a Strata plugin", lib->path,
             STRATA_PLUGIN_ENTRY_SYMBOL);
        return SC_ERR_BAD_CONFIG;
    }
    const strata_plugin_desc_t *d = entry(STRATA_PLUGIN_ABI_MAJOR, STRATA_PLUGIN_ABI_MINOR, &host_api);
    if (!d) {
        errf(err, errlen, "library %s: the plugin refused to load (see its log line above)",
             lib->path);
        return SC_ERR_BAD_CONFIG;
    }
    if (d->struct_size < offsetof(strata_plugin_desc_t, ops) + sizeof d->ops) {
        errf(err, errlen, "library %s: descriptor too small (%u bytes)", lib->path,
             d->struct_size);
        return SC_ERR_BAD_CONFIG;
    }
    if (d->abi_major != STRATA_PLUGIN_ABI_MAJOR) {
        errf(err, errlen, "library %s: plugin ABI %u.%u, host ABI %u.%u: major version differs; "
                          "refusing it",
             lib->path, d->abi_major, d->abi_minor, STRATA_PLUGIN_ABI_MAJOR,
             STRATA_PLUGIN_ABI_MINOR);
        return SC_ERR_BAD_CONFIG;
    }
    if (d->abi_minor > STRATA_PLUGIN_ABI_MINOR) {
        errf(err, errlen, "library %s: plugin ABI %u.%u is newer than host ABI %u.%u; refusing it",
             lib->path, d->abi_major, d->abi_minor, STRATA_PLUGIN_ABI_MAJOR,
             STRATA_PLUGIN_ABI_MINOR);
        return SC_ERR_BAD_CONFIG;
    }
    uint64_t unknown = d->required_host_caps & ~host_api.caps;
    if (unknown) {
        errf(err, errlen, "library %s: requires host capabilities 0x%llx that this host lacks; "
                          "refusing it",
             lib->path, (unsigned long long)unknown);
        return SC_ERR_BAD_CONFIG;
    }
    if (d->kind != STRATA_PLUGIN_KIND_SOURCE) {
        errf(err, errlen, "library %s: plugin kind %u is not supported (only source)", lib->path,
             d->kind);
        return SC_ERR_BAD_CONFIG;
    }
    if (!d->name || !d->ops || d->ops->struct_size < offsetof(strata_plugin_ops_t, on_wake) ||
        (d->params && d->param_count &&
         d->param_size < offsetof(strata_plugin_param_t, min))) {
        errf(err, errlen, "library %s: malformed descriptor (name, ops or params)", lib->path);
        return SC_ERR_BAD_CONFIG;
    }
    lib->desc = d;
    lib->ops = d->ops;
    lib->ops_size = d->ops->struct_size;
    SC_INFO(SUB, "loaded %s: plugin %s %s (ABI %u.%u, host %u.%u)", lib->path, d->name,
            d->version ? d->version : "?", d->abi_major, d->abi_minor, STRATA_PLUGIN_ABI_MAJOR,
            STRATA_PLUGIN_ABI_MINOR);
    return 0;
}

/* The op if the plugin's ops table holds it, else NULL. */
#define OP(in, f)                                                                              \
    (STRATA_HAS_FIELD((in)->lib->ops, (in)->lib->ops_size, strata_plugin_ops_t, f)             \
         ? (in)->lib->ops->f                                                                   \
         : NULL)

/* ---- files: offsets, kv ------------------------------------------------------ */

static int mkdir_p(const char *path)
{
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            if (mkdir(tmp, 0750) && errno != EEXIST)
                return -errno;
            *p = '/';
        }
    if (mkdir(tmp, 0750) && errno != EEXIST)
        return -errno;
    return 0;
}

static int write_atomic(const char *dir, const char *name, const void *data, size_t len)
{
    char path[PATH_MAX + 64], tmp[PATH_MAX + 80];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0)
        return -errno;
    const uint8_t *p = data;
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, p + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            int e = -errno;
            close(fd);
            unlink(tmp);
            return e;
        }
        off += (size_t)w;
    }
    if (fdatasync(fd)) {
        int e = -errno;
        close(fd);
        unlink(tmp);
        return e;
    }
    close(fd);
    if (rename(tmp, path))
        return -errno;
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    return 0;
}

/* offsets: one "<offset>\t<source partition>\n" per partition. */
static void offsets_load(ph_inst_t *in)
{
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/offsets", in->dir);
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    char line[1024];
    while (fgets(line, sizeof line, f)) {
        char *tab = strchr(line, '\t');
        size_t l = strlen(line);
        if (!tab || l < 2 || line[l - 1] != '\n')
            continue;
        line[l - 1] = 0;
        *tab = 0;
        int64_t off;
        if (parse_i64(line, &off))
            continue;
        if (in->noffs == in->offs_cap) {
            size_t cap = in->offs_cap ? in->offs_cap * 2 : 16;
            ph_off_t *n = sc_realloc(in->offs, cap * sizeof *n);
            if (!n)
                break;
            in->offs = n;
            in->offs_cap = cap;
        }
        char *p = sc_strdup(tab + 1);
        if (!p)
            break;
        in->offs[in->noffs++] = (ph_off_t){.part = p, .off = off, .delivered = off,
                                           .has_delivered = 1};
    }
    fclose(f);
}

/* Caller holds in->mu. */
static ph_off_t *off_find(ph_inst_t *in, const char *part, int create)
{
    for (size_t i = 0; i < in->noffs; i++)
        if (strcmp(in->offs[i].part, part) == 0)
            return &in->offs[i];
    if (!create)
        return NULL;
    if (in->noffs == in->offs_cap) {
        size_t cap = in->offs_cap ? in->offs_cap * 2 : 16;
        ph_off_t *n = sc_realloc(in->offs, cap * sizeof *n);
        if (!n)
            return NULL;
        in->offs = n;
        in->offs_cap = cap;
    }
    char *p = sc_strdup(part);
    if (!p)
        return NULL;
    in->offs[in->noffs] = (ph_off_t){.part = p, .off = INT64_MIN};
    return &in->offs[in->noffs++];
}

/* Writes the checkpoint if it changed. Any thread (not under in->mu). */
static void offsets_save(ph_inst_t *in)
{
    pthread_mutex_lock(&in->mu);
    if (!in->offs_dirty) {
        pthread_mutex_unlock(&in->mu);
        return;
    }
    in->offs_dirty = 0;
    size_t cap = 64, len = 0;
    for (size_t i = 0; i < in->noffs; i++)
        cap += strlen(in->offs[i].part) + 24;
    char *buf = sc_malloc(cap);
    if (buf)
        for (size_t i = 0; i < in->noffs; i++)
            if (in->offs[i].off != INT64_MIN)
                len += (size_t)snprintf(buf + len, cap - len, "%lld\t%s\n",
                                        (long long)in->offs[i].off, in->offs[i].part);
    pthread_mutex_unlock(&in->mu);
    if (!buf)
        return;
    int rc = write_atomic(in->dir, "offsets", buf, len);
    sc_free(buf);
    if (rc) {
        SC_WARN(SUB, "%s: writing the offsets checkpoint: %s", in->name, sc_err_str(rc));
        pthread_mutex_lock(&in->mu);
        in->offs_dirty = 1;
        pthread_mutex_unlock(&in->mu);
    }
}

static int kv_key_ok(const char *k)
{
    size_t n = strlen(k);
    if (n == 0 || n > 128 || k[0] == '.')
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)k[i]) && k[i] != '.' && k[i] != '_' && k[i] != '-')
            return 0;
    return 1;
}

/* ---- host table ------------------------------------------------------------- */

static void host_log(strata_host_ctx_t *ctx, int level, const char *fmt, ...)
{
    ph_inst_t *in = INST(ctx);
    sc_log_level_t l = level <= STRATA_LOG_ERROR  ? SC_LOG_ERROR
                       : level == STRATA_LOG_WARN ? SC_LOG_WARN
                       : level == STRATA_LOG_INFO ? SC_LOG_INFO
                                                  : SC_LOG_DEBUG;
    if (!sc_log_enabled(l, SUB))
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    sc_log_write(l, SUB, "%s%s%s", in ? in->name : "", in ? ": " : "", msg);
    if (in && level <= STRATA_LOG_WARN)
        set_error(in, "%s", msg);
}

static int64_t host_now_ns(strata_host_ctx_t *ctx, int clock)
{
    struct timespec ts;
    clock_gettime(clock == STRATA_CLOCK_MONOTONIC ? CLOCK_MONOTONIC : CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void wake_fd(ph_inst_t *in)
{
    uint64_t one = 1;
    if (in->wake_fd >= 0)
        (void)!write(in->wake_fd, &one, sizeof one);
}

/* Queues one record (all bytes copied into one allocation). */
static int enqueue(ph_inst_t *in, const char *topic, int32_t partition, const void *key,
                   size_t key_len, const void *value, size_t value_len,
                   const strata_header_t *hdrs, size_t nh, int64_t ts, const char *src_part,
                   int64_t src_off)
{
    ph_host_t *h = in->host;
    if (atomic_load(&in->stop_req) || h->stopping)
        return -ESHUTDOWN;
    if (key_len > INT32_MAX / 2 || value_len > INT32_MAX / 2 || nh > 1000)
        return -EMSGSIZE;
    if (src_part && (strchr(src_part, '\n') || strchr(src_part, '\t') || strlen(src_part) > 512))
        return -EINVAL;
    if (!topic || !*topic)
        topic = in->topic;
    size_t tl = strlen(topic) + 1;
    size_t nhdr = nh + (src_part ? 2 : 0);
    char offtxt[24];
    size_t need = sizeof(ph_rec_t) + nhdr * sizeof(sc_rec_header_t) + tl + key_len + value_len;
    for (size_t i = 0; i < nh; i++) {
        if (!hdrs[i].key)
            return -EINVAL;
        need += strlen(hdrs[i].key) + hdrs[i].value_len;
    }
    if (src_part) {
        snprintf(offtxt, sizeof offtxt, "%lld", (long long)src_off);
        need += 2 * strlen(src_part) + 2 + strlen(offtxt) + 64;
    }
    size_t used = atomic_fetch_add(&in->mem_used, need);
    if (used > 0 && used + need > in->mem_limit) {
        atomic_fetch_sub(&in->mem_used, need);
        pthread_mutex_lock(&in->mu);
        in->eagain++;
        pthread_mutex_unlock(&in->mu);
        if (!atomic_exchange(&in->eagain_flag, 1))
            wake_fd(in); /* the loop pauses the instance if it can */
        return STRATA_PLUGIN_EAGAIN;
    }
    ph_rec_t *r = sc_calloc(1, need);
    if (!r) {
        atomic_fetch_sub(&in->mem_used, need);
        return -ENOMEM;
    }
    sc_rec_header_t *hh = (sc_rec_header_t *)(r + 1);
    char *p = (char *)(hh + nhdr);
    r->inst = in;
    r->bytes = need;
    memcpy(p, topic, tl);
    r->topic = p;
    p += tl;
    r->partition = partition;
    if (key) {
        memcpy(p, key, key_len);
        r->key = p;
        r->key_len = (int32_t)key_len;
        p += key_len;
    } else {
        r->key_len = -1;
    }
    if (value) {
        memcpy(p, value, value_len);
        r->value = p;
        r->value_len = (int32_t)value_len;
        p += value_len;
    } else {
        r->value_len = -1;
    }
    for (size_t i = 0; i < nh; i++) {
        size_t kl = strlen(hdrs[i].key);
        memcpy(p, hdrs[i].key, kl);
        hh[i].key = p;
        hh[i].key_len = kl;
        p += kl;
        if (hdrs[i].value) {
            memcpy(p, hdrs[i].value, hdrs[i].value_len);
            hh[i].value = p;
            hh[i].value_len = hdrs[i].value_len;
            p += hdrs[i].value_len;
        }
    }
    if (src_part) {
        size_t sl = strlen(src_part), ol = strlen(offtxt);
        hh[nh].key = "strata.source.partition";
        hh[nh].key_len = strlen(hh[nh].key);
        memcpy(p, src_part, sl + 1);
        hh[nh].value = p;
        hh[nh].value_len = sl;
        r->src_part = p;
        r->src_off = src_off;
        p += sl + 1;
        hh[nh + 1].key = "strata.source.offset";
        hh[nh + 1].key_len = strlen(hh[nh + 1].key);
        memcpy(p, offtxt, ol);
        hh[nh + 1].value = p;
        hh[nh + 1].value_len = ol;
        p += ol;
    }
    r->headers = hh;
    r->nheaders = (int)nhdr;
    r->timestamp_ms = ts >= 0 ? ts : host_now_ns(NULL, STRATA_CLOCK_REALTIME) / 1000000;

    pthread_mutex_lock(&in->mu);
    in->produced++;
    in->produced_bytes += key_len + value_len;
    if (in->otail)
        in->otail->onext = r;
    else
        in->ohead = r;
    in->otail = r;
    pthread_mutex_unlock(&in->mu);

    pthread_mutex_lock(&h->qmu);
    if (h->qtail)
        h->qtail->next = r;
    else
        h->qhead = r;
    h->qtail = r;
    pthread_mutex_unlock(&h->qmu);
    if (h->sink.notify)
        h->sink.notify(h->sink.arg);
    return 0;
}

static int host_produce(strata_host_ctx_t *ctx, const strata_record_t *rec)
{
    ph_inst_t *in = INST(ctx);
    if (!in || !rec || rec->struct_size < offsetof(strata_record_t, source_offset) + 8)
        return -EINVAL;
    return enqueue(in, rec->topic, rec->partition, rec->key, rec->key_len, rec->value,
                   rec->value_len, rec->headers, rec->headers ? rec->header_count : 0,
                   rec->timestamp_ms, rec->source_partition, rec->source_offset);
}

static int host_emit_point(strata_host_ctx_t *ctx, const strata_point_t *pt)
{
    ph_inst_t *in = INST(ctx);
    if (!in || !pt || pt->struct_size < offsetof(strata_point_t, source_offset) + 8 ||
        !pt->device_id || !pt->point)
        return -EINVAL;
    int64_t ts = pt->timestamp_ms >= 0 ? pt->timestamp_ms
                                       : host_now_ns(NULL, STRATA_CLOCK_REALTIME) / 1000000;
    size_t len;
    uint8_t *v = ph_point_encode(pt, ts, in->protobuf, &len);
    if (!v)
        return -ENOMEM;
    int rc = enqueue(in, pt->topic, -1, pt->device_id, strlen(pt->device_id), v, len, NULL, 0, ts,
                     pt->source_partition, pt->source_offset);
    free(v);
    return rc;
}

static int host_offset_get(strata_host_ctx_t *ctx, const char *part, int64_t *offset)
{
    ph_inst_t *in = INST(ctx);
    if (!in || !part || !offset)
        return -EINVAL;
    pthread_mutex_lock(&in->mu);
    ph_off_t *o = off_find(in, part, 0);
    int rc = -ENOENT;
    if (o && o->off != INT64_MIN) {
        *offset = o->off;
        rc = 0;
    }
    pthread_mutex_unlock(&in->mu);
    return rc;
}

static int64_t host_timer_add(strata_host_ctx_t *ctx, uint64_t delay_ms, uint64_t period_ms,
                              void *arg)
{
    ph_inst_t *in = INST(ctx);
    if (!in || in->ntimers == PH_MAX_TIMERS)
        return -ENOSPC;
    ph_timer_t *t = &in->timers[in->ntimers++];
    t->id = ++in->next_timer_id;
    t->due_ms = mono_ms() + (int64_t)delay_ms;
    t->period_ms = period_ms;
    t->arg = arg;
    return t->id;
}

static void host_timer_del(strata_host_ctx_t *ctx, int64_t id)
{
    ph_inst_t *in = INST(ctx);
    for (int i = 0; in && i < in->ntimers; i++)
        if (in->timers[i].id == id) {
            in->timers[i] = in->timers[--in->ntimers];
            return;
        }
}

static int host_fd_watch(strata_host_ctx_t *ctx, int fd, uint32_t events, void *arg)
{
    ph_inst_t *in = INST(ctx);
    if (!in || fd < 0)
        return -EINVAL;
    for (int i = 0; i < in->nwatch; i++)
        if (in->watch[i].fd == fd) {
            in->watch[i].events = events;
            in->watch[i].arg = arg;
            return 0;
        }
    if (in->nwatch == PH_MAX_WATCH)
        return -ENOSPC;
    in->watch[in->nwatch++] = (ph_watch_t){fd, events, arg};
    return 0;
}

static void host_fd_unwatch(strata_host_ctx_t *ctx, int fd)
{
    ph_inst_t *in = INST(ctx);
    for (int i = 0; in && i < in->nwatch; i++)
        if (in->watch[i].fd == fd) {
            in->watch[i] = in->watch[--in->nwatch];
            in->watch[in->nwatch].fd = -1;
            return;
        }
}

static void host_wake(strata_host_ctx_t *ctx)
{
    ph_inst_t *in = INST(ctx);
    if (!in)
        return;
    atomic_store(&in->wake_req, 1);
    wake_fd(in);
}

static int host_metric_register(strata_host_ctx_t *ctx, const char *name, int kind,
                                const char *help)
{
    ph_inst_t *in = INST(ctx);
    if (!in || !name || !*name || strlen(name) >= 64 || kind < 0 || kind > 2)
        return -EINVAL;
    for (const char *c = name; *c; c++)
        if (!islower((unsigned char)*c) && !isdigit((unsigned char)*c) && *c != '_' && *c != '.')
            return -EINVAL;
    pthread_mutex_lock(&in->mu);
    int id = -ENOSPC;
    for (int i = 0; i < in->nmetrics; i++)
        if (strcmp(in->metrics[i].name, name) == 0)
            id = i;
    if (id < 0 && in->nmetrics < PH_MAX_METRICS) {
        id = in->nmetrics++;
        ph_metric_t *m = &in->metrics[id];
        memset(m, 0, sizeof *m);
        snprintf(m->name, sizeof m->name, "%s", name);
        m->kind = kind;
    }
    pthread_mutex_unlock(&in->mu);
    return id;
}

static void host_metric_update(strata_host_ctx_t *ctx, int id, double v)
{
    ph_inst_t *in = INST(ctx);
    if (!in || id < 0 || !isfinite(v))
        return;
    pthread_mutex_lock(&in->mu);
    if (id < in->nmetrics) {
        ph_metric_t *m = &in->metrics[id];
        if (m->kind == STRATA_METRIC_COUNTER) {
            m->value += v;
        } else if (m->kind == STRATA_METRIC_GAUGE) {
            m->value = v;
        } else {
            if (!m->count || v < m->min)
                m->min = v;
            if (!m->count || v > m->max)
                m->max = v;
            m->sum += v;
            m->count++;
            m->value = v;
        }
    }
    pthread_mutex_unlock(&in->mu);
}

static int host_kv_get(strata_host_ctx_t *ctx, const char *key, void *buf, size_t cap,
                       size_t *len)
{
    ph_inst_t *in = INST(ctx);
    if (!in || !key || !kv_key_ok(key))
        return -EINVAL;
    char path[PATH_MAX + 160];
    snprintf(path, sizeof path, "%s/kv/%s", in->dir, key);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? -ENOENT : -errno;
    uint8_t *data;
    size_t n;
    int rc = read_fd_all(fd, &data, &n);
    close(fd);
    if (rc)
        return rc;
    if (buf)
        memcpy(buf, data, n < cap ? n : cap);
    if (len)
        *len = n;
    sc_free(data);
    return 0;
}

static int host_kv_put(strata_host_ctx_t *ctx, const char *key, const void *val, size_t len)
{
    ph_inst_t *in = INST(ctx);
    if (!in || !key || !kv_key_ok(key) || (len && !val))
        return -EINVAL;
    if (len > PH_KV_MAX)
        return -EMSGSIZE;
    char dir[PATH_MAX + 8];
    snprintf(dir, sizeof dir, "%s/kv", in->dir);
    int rc = mkdir_p(dir);
    return rc ? rc : write_atomic(dir, key, val, len);
}

static int host_kv_del(strata_host_ctx_t *ctx, const char *key)
{
    ph_inst_t *in = INST(ctx);
    if (!in || !key || !kv_key_ok(key))
        return -EINVAL;
    char path[PATH_MAX + 160];
    snprintf(path, sizeof path, "%s/kv/%s", in->dir, key);
    return unlink(path) ? -errno : 0;
}

static void host_set_link_state(strata_host_ctx_t *ctx, int state, const char *reason)
{
    ph_inst_t *in = INST(ctx);
    if (!in)
        return;
    pthread_mutex_lock(&in->mu);
    if (in->link_state != state)
        SC_INFO(SUB, "%s: link %d -> %d%s%s", in->name, in->link_state, state,
                reason ? ": " : "", reason ? reason : "");
    in->link_state = state;
    snprintf(in->link_reason, sizeof in->link_reason, "%s", reason ? reason : "");
    pthread_mutex_unlock(&in->mu);
    if (state == STRATA_LINK_FAILED) {
        set_error(in, "plugin reported failure: %s", reason ? reason : "");
        atomic_store(&in->fail_req, 1);
        wake_fd(in);
    }
}

static uint64_t host_backoff_next(strata_host_ctx_t *ctx, strata_backoff_t *b)
{
    if (!b)
        return 1000;
    uint64_t base = b->base_ms ? b->base_ms : 100, max = b->max_ms ? b->max_ms : 30000;
    uint64_t d = base;
    for (uint32_t i = 0; i < b->attempt && d < max; i++)
        d *= 2;
    if (d > max)
        d = max;
    if (b->attempt < 64)
        b->attempt++;
    static _Thread_local unsigned seed;
    if (!seed)
        seed = (unsigned)(host_now_ns(NULL, STRATA_CLOCK_MONOTONIC) ^ (uintptr_t)&seed);
    uint64_t half = d / 2;
    return half + (half ? (uint64_t)rand_r(&seed) % (half + 1) : 0);
}

static const char *host_instance_name(strata_host_ctx_t *ctx)
{
    return ctx ? INST(ctx)->name : "";
}

static const strata_host_api_t host_api = {
    .struct_size = sizeof(strata_host_api_t),
    .abi_major = STRATA_PLUGIN_ABI_MAJOR,
    .abi_minor = STRATA_PLUGIN_ABI_MINOR,
    .caps = STRATA_HOST_CAP_V1_ALL,
    .log = host_log,
    .now_ns = host_now_ns,
    .produce = host_produce,
    .emit_point = host_emit_point,
    .offset_get = host_offset_get,
    .timer_add = host_timer_add,
    .timer_del = host_timer_del,
    .fd_watch = host_fd_watch,
    .fd_unwatch = host_fd_unwatch,
    .wake = host_wake,
    .metric_register = host_metric_register,
    .metric_update = host_metric_update,
    .kv_get = host_kv_get,
    .kv_put = host_kv_put,
    .set_link_state = host_set_link_state,
    .backoff_next = host_backoff_next,
    .kv_del = host_kv_del,
    .instance_name = host_instance_name,
};

/* ---- records ---------------------------------------------------------------- */

ph_rec_t *ph_host_take(ph_host_t *h)
{
    pthread_mutex_lock(&h->qmu);
    ph_rec_t *r = h->qhead;
    h->qhead = h->qtail = NULL;
    pthread_mutex_unlock(&h->qmu);
    return r;
}

void ph_rec_done(ph_rec_t *r, int rc, const char *reason)
{
    ph_inst_t *in = r->inst;
    ph_rec_t *freelist = NULL;
    int advanced = 0;
    pthread_mutex_lock(&in->mu);
    r->done = 1;
    r->rc = rc;
    if (rc) {
        in->append_errors++;
        snprintf(in->last_error, sizeof in->last_error, "append to %s failed: %s", r->topic,
                 reason ? reason : sc_err_str(rc));
    } else {
        in->durable++;
    }
    /* the durable prefix, in produce order */
    while (in->ohead && in->ohead->done) {
        ph_rec_t *x = in->ohead;
        in->ohead = x->onext;
        if (!in->ohead)
            in->otail = NULL;
        if (x->src_part && x->rc == 0) {
            ph_off_t *o = off_find(in, x->src_part, 1);
            if (o && (o->off == INT64_MIN || x->src_off > o->off)) {
                o->off = x->src_off;
                in->offs_dirty = 1;
                advanced = 1;
            }
        }
        x->next = freelist;
        freelist = x;
    }
    pthread_mutex_unlock(&in->mu);
    if (rc)
        SC_WARN(SUB, "%s: append to %s failed: %s", in->name, r->topic,
                reason ? reason : sc_err_str(rc));
    while (freelist) {
        ph_rec_t *x = freelist;
        freelist = x->next;
        atomic_fetch_sub(&in->mem_used, x->bytes);
        sc_free(x);
    }
    if (advanced ||
        (atomic_load(&in->host_paused) && atomic_load(&in->mem_used) <= in->mem_limit / 2))
        wake_fd(in);
}

/* Instance thread: checkpoint, then committed() for each partition that
 * advanced since the last delivery. */
static void deliver_committed(ph_inst_t *in)
{
    void (*committed)(void *, const char *, int64_t) = OP(in, committed);
    offsets_save(in);
    for (;;) {
        char part[520];
        int64_t off = 0;
        int found = 0;
        pthread_mutex_lock(&in->mu);
        for (size_t i = 0; i < in->noffs; i++) {
            ph_off_t *o = &in->offs[i];
            if (o->off != INT64_MIN && (!o->has_delivered || o->delivered != o->off)) {
                o->delivered = o->off;
                o->has_delivered = 1;
                snprintf(part, sizeof part, "%s", o->part);
                off = o->off;
                found = 1;
                break;
            }
        }
        pthread_mutex_unlock(&in->mu);
        if (!found)
            break;
        if (committed && in->pinst)
            committed(in->pinst, part, off);
    }
}

/* ---- instance thread ---------------------------------------------------------- */

static void set_state(ph_inst_t *in, int s)
{
    pthread_mutex_lock(&in->mu);
    in->state = s;
    pthread_mutex_unlock(&in->mu);
}

static void refresh_health(ph_inst_t *in)
{
    void (*health)(void *, strata_health_t *) = OP(in, health);
    size_t (*describe)(void *, char *, size_t) = OP(in, describe);
    strata_health_t hb;
    char desc[sizeof in->describe];
    memset(&hb, 0, sizeof hb);
    hb.struct_size = sizeof hb;
    desc[0] = 0;
    if (health && in->pinst)
        health(in->pinst, &hb);
    if (describe && in->pinst) {
        size_t n = describe(in->pinst, desc, sizeof desc);
        desc[n < sizeof desc ? n : sizeof desc - 1] = 0;
    }
    hb.last_error[sizeof hb.last_error - 1] = 0;
    pthread_mutex_lock(&in->mu);
    in->health = hb;
    snprintf(in->describe, sizeof in->describe, "%s", desc);
    pthread_mutex_unlock(&in->mu);
}

/* Backpressure for plugins with a pause op: after produce answered EAGAIN
 * the host pauses the instance; once its queued bytes fall to half of
 * memory.bytes it resumes it. Instance thread. */
static void backpressure(ph_inst_t *in)
{
    void (*pause)(void *) = OP(in, pause);
    void (*resume)(void *) = OP(in, resume);
    int eagain = atomic_exchange(&in->eagain_flag, 0);
    if (!pause || !resume || !in->pinst)
        return;
    if (eagain && !atomic_load(&in->host_paused)) {
        atomic_store(&in->host_paused, 1);
        pthread_mutex_lock(&in->mu);
        in->pauses++;
        pthread_mutex_unlock(&in->mu);
        SC_DEBUG(SUB, "%s: over memory.bytes=%zu: paused", in->name, in->mem_limit);
        pause(in->pinst);
    } else if (atomic_load(&in->host_paused) && atomic_load(&in->mem_used) <= in->mem_limit / 2) {
        atomic_store(&in->host_paused, 0);
        SC_DEBUG(SUB, "%s: below half of memory.bytes: resumed", in->name);
        resume(in->pinst);
    }
}

/* Runs the instance until stop or failure. Returns 0 on stop, <0 on failure. */
static int run_loop(ph_inst_t *in)
{
    struct pollfd pfd[PH_MAX_WATCH + 1];
    ph_watch_t snap[PH_MAX_WATCH];
    int64_t last_health = 0;
    while (!atomic_load(&in->stop_req)) {
        if (atomic_load(&in->fail_req))
            return -EIO;
        int64_t now = mono_ms();
        if (now - last_health >= 500) {
            refresh_health(in);
            last_health = now;
        }
        int timeout = 500;
        for (int i = 0; i < in->ntimers; i++) {
            int64_t d = in->timers[i].due_ms - now;
            if (d < timeout)
                timeout = d < 0 ? 0 : (int)d;
        }
        int n = in->nwatch;
        memcpy(snap, in->watch, (size_t)n * sizeof *snap);
        pfd[0] = (struct pollfd){.fd = in->wake_fd, .events = POLLIN};
        for (int i = 0; i < n; i++) {
            short ev = 0;
            if (snap[i].events & STRATA_FD_READ)
                ev |= POLLIN;
            if (snap[i].events & STRATA_FD_WRITE)
                ev |= POLLOUT;
            pfd[i + 1] = (struct pollfd){.fd = snap[i].fd, .events = ev};
        }
        int pr = poll(pfd, (nfds_t)n + 1, timeout);
        if (pr < 0 && errno != EINTR) {
            set_error(in, "poll: %s", strerror(errno));
            return -errno;
        }
        if (atomic_load(&in->stop_req))
            break;
        if (pr > 0 && (pfd[0].revents & POLLIN)) {
            uint64_t v;
            (void)!read(in->wake_fd, &v, sizeof v);
        }
        deliver_committed(in);
        backpressure(in);
        if (atomic_exchange(&in->wake_req, 0)) {
            void (*on_wake)(void *) = OP(in, on_wake);
            if (on_wake)
                on_wake(in->pinst);
        }
        /* timers due now (a callback may add or delete timers) */
        now = mono_ms();
        for (int guard = 0; guard < PH_MAX_TIMERS; guard++) {
            int idx = -1;
            for (int i = 0; i < in->ntimers; i++)
                if (in->timers[i].due_ms <= now &&
                    (idx < 0 || in->timers[i].due_ms < in->timers[idx].due_ms))
                    idx = i;
            if (idx < 0)
                break;
            ph_timer_t t = in->timers[idx];
            if (t.period_ms) {
                in->timers[idx].due_ms += (int64_t)t.period_ms;
                if (in->timers[idx].due_ms <= now) /* fell behind: skip, don't burst */
                    in->timers[idx].due_ms = now + (int64_t)t.period_ms;
            } else {
                in->timers[idx] = in->timers[--in->ntimers];
            }
            void (*on_timer)(void *, int64_t, void *) = OP(in, on_timer);
            if (on_timer)
                on_timer(in->pinst, t.id, t.arg);
            if (atomic_load(&in->stop_req) || atomic_load(&in->fail_req))
                break;
        }
        if (pr > 0) {
            void (*on_fd)(void *, int, uint32_t, void *) = OP(in, on_fd);
            for (int i = 0; i < n && on_fd; i++) {
                short re = pfd[i + 1].revents;
                if (!re)
                    continue;
                /* still watched (an earlier callback may have removed it)? */
                int still = 0;
                for (int j = 0; j < in->nwatch; j++)
                    if (in->watch[j].fd == snap[i].fd) {
                        still = 1;
                        snap[i].arg = in->watch[j].arg;
                    }
                if (!still)
                    continue;
                uint32_t ev = 0;
                if (re & POLLIN)
                    ev |= STRATA_FD_READ;
                if (re & POLLOUT)
                    ev |= STRATA_FD_WRITE;
                if (re & (POLLERR | POLLNVAL))
                    ev |= STRATA_FD_ERROR;
                if (re & POLLHUP)
                    ev |= STRATA_FD_HUP;
                on_fd(in->pinst, snap[i].fd, ev, snap[i].arg);
            }
        }
    }
    return 0;
}

/* Sleeps ms, or until a stop request. */
static void backoff_sleep(ph_inst_t *in, uint64_t ms)
{
    int64_t until = mono_ms() + (int64_t)ms;
    while (!atomic_load(&in->stop_req)) {
        int64_t left = until - mono_ms();
        if (left <= 0)
            break;
        struct pollfd p = {.fd = in->wake_fd, .events = POLLIN};
        if (poll(&p, 1, left > 1000 ? 1000 : (int)left) > 0) {
            uint64_t v;
            (void)!read(in->wake_fd, &v, sizeof v);
        }
    }
}

static void *inst_thread(void *arg)
{
    ph_inst_t *in = arg;
    char tn[16];
    tn[0] = 'p';
    tn[1] = ':';
    size_t tl = strlen(in->name) < sizeof tn - 3 ? strlen(in->name) : sizeof tn - 3;
    memcpy(tn + 2, in->name, tl);
    tn[2 + tl] = 0;
    pthread_setname_np(pthread_self(), tn);
    const strata_plugin_ops_t *ops = in->lib->ops;
    while (!atomic_load(&in->stop_req)) {
        set_state(in, ST_STARTING);
        in->nwatch = 0;
        in->ntimers = 0;
        atomic_store(&in->fail_req, 0);
        atomic_store(&in->host_paused, 0);
        in->pinst = NULL;
        int rc = -EINVAL;
        if (ops->create)
            rc = ops->create(CTX(in), &in->cfg, &in->pinst);
        if (rc) {
            set_error(in, "create failed: %s", strerror(rc < 0 ? -rc : EINVAL));
            in->pinst = NULL;
        } else if (ops->start && (rc = ops->start(in->pinst)) != 0) {
            set_error(in, "start failed: %s", strerror(rc < 0 ? -rc : EINVAL));
        }
        if (rc == 0) {
            set_state(in, ST_RUNNING);
            SC_INFO(SUB, "%s: running (plugin %s)", in->name, in->lib->desc->name);
            rc = run_loop(in);
            /* a stable run resets the restart backoff */
            in->restart_bo.attempt = 0;
        }
        if (in->pinst) {
            if (ops->stop)
                ops->stop(in->pinst);
            refresh_health(in);
            if (ops->destroy)
                ops->destroy(in->pinst);
            in->pinst = NULL;
        }
        if (atomic_load(&in->stop_req))
            break;
        /* failed: restart with backoff */
        pthread_mutex_lock(&in->mu);
        in->restarts++;
        in->state = ST_BACKOFF;
        pthread_mutex_unlock(&in->mu);
        uint64_t d = host_backoff_next(CTX(in), &in->restart_bo);
        SC_WARN(SUB, "%s: instance failed (%s); restarting in %llu ms", in->name, in->last_error,
                (unsigned long long)d);
        backoff_sleep(in, d);
    }
    set_state(in, ST_STOPPED);
    return NULL;
}

/* ---- lifecycle ---------------------------------------------------------------- */

static void inst_free(ph_inst_t *in)
{
    if (!in)
        return;
    for (size_t i = 0; i < in->nkv; i++) {
        sc_free(in->keys[i]);
        sc_free(in->values[i]);
    }
    sc_free(in->keys);
    sc_free(in->values);
    for (size_t i = 0; i < in->noffs; i++)
        sc_free(in->offs[i].part);
    sc_free(in->offs);
    if (in->wake_fd >= 0)
        close(in->wake_fd);
    pthread_mutex_destroy(&in->mu);
    sc_free(in);
}

static int name_ok(const char *n, size_t l)
{
    if (l == 0 || l >= 64)
        return 0;
    for (size_t i = 0; i < l; i++)
        if (!isalnum((unsigned char)n[i]) && n[i] != '_' && n[i] != '-')
            return 0;
    return 1;
}

static int setup_inst(ph_host_t *h, ph_inst_t *in, char *err, size_t errlen)
{
    int rc;
    /* keys plugin.<name>.* */
    char prefix[80];
    snprintf(prefix, sizeof prefix, "plugin.%s.", in->name);
    size_t pl = strlen(prefix);
    for (size_t i = 0; i < h->cfg.nkv; i++)
        if (strncmp(h->cfg.keys[i], prefix, pl) == 0 && h->cfg.keys[i][pl])
            if ((rc = inst_set(in, h->cfg.keys[i] + pl, h->cfg.values[i])) != 0)
                return rc;
    const char *cf = inst_get(in, "config.file");
    if (cf && (rc = load_config_file(in, cf, err, errlen)) != 0)
        return rc;
    const char *libname = inst_get(in, "library");
    if (!libname) {
        errf(err, errlen, "plugin instance '%s': missing required key 'plugin.%s.library'",
             in->name, in->name);
        return SC_ERR_BAD_CONFIG;
    }
    for (size_t i = 0; i < h->nlibs; i++)
        if (strcmp(strrchr(h->libs[i].path, '/') + 1, libname) == 0)
            in->lib = &h->libs[i];
    if (!in->lib) {
        ph_lib_t *lib = &h->libs[h->nlibs];
        char lerr[768];
        if ((rc = load_lib(h, libname, lib, lerr, sizeof lerr)) != 0) {
            errf(err, errlen, "plugin instance '%s': key 'library': %s", in->name, lerr);
            return rc;
        }
        h->nlibs++;
        in->lib = lib;
    }
    const char *topic = inst_get(in, "topic");
    if (!topic || !*topic || strlen(topic) >= sizeof in->topic) {
        errf(err, errlen, "plugin instance '%s': missing required key 'plugin.%s.topic'",
             in->name, in->name);
        return SC_ERR_BAD_CONFIG;
    }
    snprintf(in->topic, sizeof in->topic, "%s", topic);
    const char *fmt = inst_get(in, "format");
    if (fmt && strcmp(fmt, "json") && strcmp(fmt, "protobuf")) {
        errf(err, errlen, "plugin instance '%s': key 'format': '%s' is not json or protobuf",
             in->name, fmt);
        return SC_ERR_BAD_CONFIG;
    }
    in->protobuf = fmt && strcmp(fmt, "protobuf") == 0;
    int64_t v;
    if ((rc = host_key_u(in, "memory.bytes", 8 << 20, 4096, INT64_C(1) << 40, &v, err, errlen)))
        return rc;
    in->mem_limit = (size_t)v;
    if ((rc = host_key_u(in, "restart.backoff.ms", 1000, 1, 3600000, &v, err, errlen)))
        return rc;
    in->backoff_base = (uint32_t)v;
    if ((rc = host_key_u(in, "restart.backoff.max.ms", 60000, 1, 86400000, &v, err, errlen)))
        return rc;
    in->backoff_max = (uint32_t)v;
    if ((rc = host_key_u(in, "stop.timeout.ms", 5000, 1, 600000, &v, err, errlen)))
        return rc;
    in->stop_timeout_ms = (uint32_t)v;
    in->restart_bo = (strata_backoff_t){.base_ms = in->backoff_base, .max_ms = in->backoff_max};
    if ((rc = check_schema(in, err, errlen)) != 0)
        return rc;
    in->cfg.struct_size = sizeof in->cfg;
    in->cfg.count = (uint32_t)in->nkv;
    in->cfg.keys = (const char *const *)in->keys;
    in->cfg.values = (const char *const *)in->values;
    if (in->lib->ops->validate) {
        char perr[512] = "";
        if ((rc = in->lib->ops->validate(&in->cfg, perr, sizeof perr)) != 0) {
            perr[sizeof perr - 1] = 0;
            errf(err, errlen, "plugin instance '%s': %s", in->name,
                 *perr ? perr : "rejected by the plugin's validate");
            return SC_ERR_BAD_CONFIG;
        }
    }
    if (snprintf(in->dir, sizeof in->dir, "%s/%s", h->state_dir, in->name) >=
        (int)sizeof in->dir) {
        errf(err, errlen, "plugin instance '%s': state directory path too long", in->name);
        return SC_ERR_BAD_CONFIG;
    }
    if ((rc = mkdir_p(in->dir)) != 0) {
        errf(err, errlen, "plugin instance '%s': cannot create %s: %s", in->name, in->dir,
             sc_err_str(rc));
        return rc;
    }
    offsets_load(in);
    return 0;
}

int ph_host_new(const ph_config_t *cfg, const ph_sink_t *sink, ph_host_t **out, char *err,
                size_t errlen)
{
    int rc = 0;
    ph_host_t *h = sc_calloc(1, sizeof *h);
    if (!h)
        return SC_ERR_NO_MEMORY;
    h->cfg = *cfg;
    if (sink)
        h->sink = *sink;
    pthread_mutex_init(&h->qmu, NULL);
    snprintf(h->state_dir, sizeof h->state_dir, "%s", cfg->state_dir);
    const char *list = cfg->instances ? cfg->instances : "";
    size_t n = 0;
    for (const char *p = list; *p;) {
        size_t l = strcspn(p, ",");
        if (l)
            n++;
        p += l;
        if (*p)
            p++;
    }
    if (n && (!cfg->plugin_dir || !*cfg->plugin_dir)) {
        errf(err, errlen, "plugins is set but plugin.dir is empty");
        rc = SC_ERR_BAD_CONFIG;
        goto fail;
    }
    if (n) {
        struct stat st;
        if (stat(cfg->plugin_dir, &st) || !S_ISDIR(st.st_mode)) {
            errf(err, errlen, "plugin.dir %s: not a directory", cfg->plugin_dir);
            rc = SC_ERR_BAD_CONFIG;
            goto fail;
        }
        if (!perm_ok(&st, "plugin.dir", cfg->plugin_dir, err, errlen)) {
            rc = SC_ERR_BAD_CONFIG;
            goto fail;
        }
        if (cfg->signature_required && (!cfg->signature_key || !*cfg->signature_key)) {
            errf(err, errlen, "plugin.signature.required=true needs plugin.signature.public.key");
            rc = SC_ERR_BAD_CONFIG;
            goto fail;
        }
    }
    h->libs = sc_calloc(n ? n : 1, sizeof *h->libs);
    h->insts = sc_calloc(n ? n : 1, sizeof *h->insts);
    if (!h->libs || !h->insts) {
        rc = SC_ERR_NO_MEMORY;
        goto fail;
    }
    /* every plugin.<x>.<key> must name a listed instance */
    for (size_t i = 0; i < cfg->nkv; i++) {
        const char *k = cfg->keys[i] + 7; /* after "plugin." */
        size_t l = strcspn(k, ".");
        int found = 0;
        for (const char *p = list; *p;) {
            size_t pl = strcspn(p, ",");
            if (pl == l && strncmp(p, k, l) == 0)
                found = 1;
            p += pl;
            if (*p)
                p++;
        }
        if (!found) {
            errf(err, errlen, "key '%s': instance '%.*s' is not listed in plugins", cfg->keys[i],
                 (int)l, k);
            rc = SC_ERR_BAD_CONFIG;
            goto fail;
        }
    }
    for (const char *p = list; *p;) {
        size_t l = strcspn(p, ",");
        if (l) {
            if (!name_ok(p, l)) {
                errf(err, errlen, "plugins: bad instance name '%.*s' (use [A-Za-z0-9_-], < 64)",
                     (int)l, p);
                rc = SC_ERR_BAD_CONFIG;
                goto fail;
            }
            for (size_t j = 0; j < h->ninst; j++)
                if (strlen(h->insts[j]->name) == l && strncmp(h->insts[j]->name, p, l) == 0) {
                    errf(err, errlen, "plugins: instance '%.*s' listed twice", (int)l, p);
                    rc = SC_ERR_BAD_CONFIG;
                    goto fail;
                }
            ph_inst_t *in = sc_calloc(1, sizeof *in);
            if (!in) {
                rc = SC_ERR_NO_MEMORY;
                goto fail;
            }
            in->host = h;
            in->wake_fd = -1;
            pthread_mutex_init(&in->mu, NULL);
            memcpy(in->name, p, l);
            h->insts[h->ninst++] = in;
            if ((rc = setup_inst(h, in, err, errlen)) != 0)
                goto fail;
            in->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
            if (in->wake_fd < 0) {
                rc = -errno;
                errf(err, errlen, "eventfd: %s", strerror(errno));
                goto fail;
            }
        }
        p += l;
        if (*p)
            p++;
    }
    *out = h;
    return 0;
fail:
    if (rc == SC_ERR_NO_MEMORY && !*err)
        errf(err, errlen, "out of memory");
    ph_host_free(h);
    return rc ? rc : SC_ERR_BAD_CONFIG;
}

int ph_host_start(ph_host_t *h)
{
    for (size_t i = 0; i < h->ninst; i++) {
        ph_inst_t *in = h->insts[i];
        int rc = pthread_create(&in->thread, NULL, inst_thread, in);
        if (rc) {
            SC_ERROR(SUB, "%s: cannot start its thread: %s", in->name, strerror(rc));
            set_state(in, ST_FAILED);
            continue;
        }
        in->thread_live = 1;
    }
    return 0;
}

void ph_host_stop(ph_host_t *h)
{
    if (!h)
        return;
    for (size_t i = 0; i < h->ninst; i++) {
        atomic_store(&h->insts[i]->stop_req, 1);
        wake_fd(h->insts[i]);
    }
    for (size_t i = 0; i < h->ninst; i++) {
        ph_inst_t *in = h->insts[i];
        if (!in->thread_live)
            continue;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += in->stop_timeout_ms / 1000;
        ts.tv_nsec += (long)(in->stop_timeout_ms % 1000) * 1000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        int rc = pthread_timedjoin_np(in->thread, NULL, &ts);
        if (rc == 0) {
            in->thread_live = 0;
            continue;
        }
        SC_ERROR(SUB, "%s: did not stop within stop.timeout.ms=%u; abandoning its thread "
                      "(instance marked failed)",
                 in->name, in->stop_timeout_ms);
        pthread_detach(in->thread);
        in->thread_live = 0;
        in->abandoned = 1;
        pthread_mutex_lock(&in->mu);
        in->state = ST_FAILED;
        snprintf(in->last_error, sizeof in->last_error,
                 "did not stop within stop.timeout.ms=%u; thread abandoned", in->stop_timeout_ms);
        pthread_mutex_unlock(&in->mu);
    }
    h->stopping = 1;
}

size_t ph_host_count(const ph_host_t *h) { return h ? h->ninst : 0; }

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

static const char *link_name(int s)
{
    static const char *n[] = {"unknown", "down", "connecting", "up", "degraded", "failed"};
    return s >= 0 && s <= 5 ? n[s] : "unknown";
}

int ph_host_write_status(ph_host_t *h, const char *path)
{
    char tmp[PATH_MAX + 8];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return -errno;
    fprintf(f, "{\"abi\":\"%d.%d\",\"instances\":[", STRATA_PLUGIN_ABI_MAJOR,
            STRATA_PLUGIN_ABI_MINOR);
    for (size_t i = 0; i < h->ninst; i++) {
        ph_inst_t *in = h->insts[i];
        pthread_mutex_lock(&in->mu);
        fprintf(f, "%s\n{\"name\":", i ? "," : "");
        json_str(f, in->name);
        fprintf(f, ",\"plugin\":");
        json_str(f, in->lib->desc->name);
        fprintf(f, ",\"version\":");
        json_str(f, in->lib->desc->version);
        fprintf(f, ",\"library\":");
        json_str(f, in->lib->path);
        fprintf(f, ",\"abi\":\"%u.%u\",\"topic\":", in->lib->desc->abi_major,
                in->lib->desc->abi_minor);
        json_str(f, in->topic);
        fprintf(f, ",\"format\":\"%s\",\"state\":\"%s\",\"link\":\"%s\",\"link_reason\":",
                in->protobuf ? "protobuf" : "json", state_name(in->state),
                link_name(in->link_state));
        json_str(f, in->link_reason);
        fprintf(f, ",\"last_error\":");
        json_str(f, in->last_error);
        fprintf(f,
                ",\"restarts\":%llu,\"records_produced\":%llu,\"bytes_produced\":%llu,"
                "\"records_durable\":%llu,\"append_errors\":%llu,\"eagain\":%llu,"
                "\"memory_used\":%zu,\"memory_limit\":%zu,\"paused\":%s,\"pauses\":%llu",
                (unsigned long long)in->restarts, (unsigned long long)in->produced,
                (unsigned long long)in->produced_bytes, (unsigned long long)in->durable,
                (unsigned long long)in->append_errors, (unsigned long long)in->eagain,
                atomic_load(&in->mem_used), in->mem_limit,
                atomic_load(&in->host_paused) ? "true" : "false", (unsigned long long)in->pauses);
        fprintf(f, ",\"health\":{\"link\":\"%s\",\"errors\":%llu,\"messages_in\":%llu,"
                   "\"last_error\":",
                link_name((int)in->health.link_state), (unsigned long long)in->health.errors,
                (unsigned long long)in->health.messages_in);
        json_str(f, in->health.last_error);
        fprintf(f, "},\"metrics\":{");
        for (int m = 0; m < in->nmetrics; m++) {
            ph_metric_t *x = &in->metrics[m];
            fprintf(f, "%s", m ? "," : "");
            json_str(f, x->name);
            if (x->kind == STRATA_METRIC_HISTOGRAM)
                fprintf(f, ":{\"count\":%llu,\"sum\":%.17g,\"min\":%.17g,\"max\":%.17g}",
                        (unsigned long long)x->count, x->sum, x->min, x->max);
            else
                fprintf(f, ":%.17g", x->value);
        }
        fprintf(f, "},\"source_offsets\":{");
        int first = 1;
        for (size_t o = 0; o < in->noffs; o++) {
            if (in->offs[o].off == INT64_MIN)
                continue;
            fprintf(f, "%s", first ? "" : ",");
            first = 0;
            json_str(f, in->offs[o].part);
            fprintf(f, ":%lld", (long long)in->offs[o].off);
        }
        fprintf(f, "},\"details\":%s}", in->describe[0] == '{' ? in->describe : "{}");
        pthread_mutex_unlock(&in->mu);
    }
    fprintf(f, "\n]}\n");
    int bad = ferror(f);
    if (fclose(f) || bad) {
        unlink(tmp);
        return -EIO;
    }
    return rename(tmp, path) ? -errno : 0;
}

void ph_host_free(ph_host_t *h)
{
    if (!h)
        return;
    ph_host_stop(h);
    /* records never taken (the sink is gone): fail them */
    ph_rec_t *r = ph_host_take(h);
    while (r) {
        ph_rec_t *next = r->next;
        ph_rec_done(r, SC_ERR_NOT_FOUND, "broker stopped before the append");
        r = next;
    }
    int abandoned = 0;
    for (size_t i = 0; i < h->ninst; i++) {
        ph_inst_t *in = h->insts[i];
        if (in->abandoned) {
            abandoned = 1; /* its thread may still run: leak it */
            continue;
        }
        offsets_save(in);
        inst_free(in);
    }
    if (abandoned) {
        /* an abandoned thread still reaches its library's ops (h->libs) and
         * the host (in->host): leak those too rather than free them under it */
        return;
    }
    sc_free(h->insts);
    /* libraries stay loaded until process exit (never dlclose: TLS/atexit) */
    sc_free(h->libs);
    pthread_mutex_destroy(&h->qmu);
    sc_free(h);
}
