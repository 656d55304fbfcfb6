/*
 * tests/abi/plugin_v1_0.h -- FROZEN copy of include/strata/plugin.h as of ABI 1.0
 * (before minor 1 appended kv_del / instance_name to the host table and
 * describe to the ops table). Plugins built against it must keep loading:
 * never edit this file except to fix the fixture itself.
 *
 * Original title: the Strata plugin ABI, version 1 (major 1, minor 0).
 *
 * A plugin is a shared object that stratad loads from `plugin.dir`. It
 * includes this header only and never links a broker symbol: everything it
 * may ask of the broker is in the host table (strata_host_api_t) handed to
 * its entry point. See docs/plugins.md for a walk-through and an example.
 *
 * ---- Entry point -------------------------------------------------------------
 *
 * The plugin exports exactly one symbol (build with -fPIC
 * -fvisibility=hidden and mark it STRATA_PLUGIN_EXPORT):
 *
 *     const strata_plugin_desc_t *
 *     strata_plugin_entry_v1(uint32_t host_abi_major, uint32_t host_abi_minor,
 *                            const strata_host_api_t *host);
 *
 * It returns a pointer to a constant descriptor (static storage, valid until
 * process exit), or NULL after logging why through host->log (ctx NULL). A
 * plugin that needs a newer host minor than host_abi_minor returns NULL or
 * degrades (checking host->struct_size before each newer field). The host is
 * dlopen(RTLD_NOW | RTLD_LOCAL)'d once per library and never dlclose'd while
 * the process runs.
 *
 * ---- Versioning rules ----------------------------------------------------------
 *
 * 1. abi_major must equal the host's, or the library is refused.
 * 2. The plugin's abi_minor must be <= the host's (minor is negotiated: a
 *    newer host loads older plugins; an older host refuses newer ones).
 * 3. Every struct crossing the boundary starts with uint32_t struct_size and
 *    only ever grows at the end (new fields appended, none removed, none
 *    moved, none retyped). The READER of a struct checks struct_size before
 *    touching a field (STRATA_HAS_FIELD): the host checks the plugin's
 *    descriptor / ops / param sizes, the plugin checks the host table's size
 *    and the size of output structs the host hands it (strata_health_t).
 *    A field beyond struct_size is treated as absent (NULL / 0).
 * 4. required_host_caps: a bit the host does not know => refused. Optional
 *    capability bits (caps) that the host does not know are ignored.
 * 5. The _Static_assert block at the end pins the v1 layout on LP64.
 *
 * ---- Threads -------------------------------------------------------------------
 *
 * Each plugin INSTANCE runs on its own thread, owned by the host, which runs
 * a small poll(2) loop for it: the instance's fd watches, its timers and a
 * wake-up eventfd. Every op except validate is called on that thread, one at
 * a time, so a plugin needs no locks of its own for its instance state:
 *     create -> start -> (on_fd | on_timer | on_wake | committed | pause |
 *     resume | health | describe)* -> stop -> destroy
 * validate is called on the broker's control thread at startup (before any
 * instance thread exists) and must not touch global state.
 * A callback may block briefly (a blocking connect to a local device, say):
 * it only delays its own instance, never a broker shard. stop must return
 * promptly: after stop.timeout.ms the host abandons the thread (it is never
 * joined, destroy is never called, its memory is leaked) and marks the
 * instance failed; the broker keeps running.
 * Host functions must be called from the instance's thread, except those
 * marked [any thread]: log, now_ns, wake, produce, emit_point.
 *
 * ---- Errors ----------------------------------------------------------------------
 *
 * Host and op functions return 0 or a negative errno value. Notably:
 *   STRATA_PLUGIN_EAGAIN (-EAGAIN): produce is over the instance's memory
 *       budget (memory.bytes); nothing was taken. The plugin stops reading
 *       its source (or drops and counts the drop) and tries again later --
 *       e.g. on the next committed() call, which frees budget.
 *   -EINVAL bad argument, -ENOMEM, -EMSGSIZE record too large, -ENOENT not
 *   found, -ESHUTDOWN the instance is stopping, -ENOTSUP not available.
 * An op that fails (create/start returning < 0) or a plugin that sets its
 * link state to STRATA_LINK_FAILED is stopped, destroyed and created again
 * after a jittered exponential backoff (restart.backoff.ms ..
 * restart.backoff.max.ms).
 *
 * ---- Source offsets and `committed` --------------------------------------------
 *
 * produce/emit_point may carry (source_partition, source_offset): the position
 * of the record in the plugin's upstream (a LoRa DevEUI and its 32-bit frame
 * counter, an OPC UA subscription and sequence number). The host stores it in
 * the record itself (headers `strata.source.partition`, `strata.source.offset`,
 * in the same batch, hence atomically with the append) and, once the append is
 * durable (the topic's flush policy), in the instance's offsets checkpoint
 * (<first log dir>/__plugins/<instance>/offsets, written temp+fsync+rename).
 * It then calls committed(inst, partition, offset) on the instance thread,
 * in produce order, for the highest offset per partition made durable.
 * offset_get hands the last committed offset back after a restart of the
 * instance or the broker. Guarantee: at-least-once towards the plugin's
 * upstream -- a crash between the durable append and the checkpoint re-offers
 * the records since the checkpoint; they carry their source offset in their
 * headers, so a consumer can drop duplicates.
 */
#ifndef STRATA_PLUGIN_H
#define STRATA_PLUGIN_H

#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

#define STRATA_PLUGIN_ABI_MAJOR 1
#define STRATA_PLUGIN_ABI_MINOR 0

#define STRATA_PLUGIN_ENTRY_SYMBOL "strata_plugin_entry_v1"

#if defined(__GNUC__)
#define STRATA_PLUGIN_EXPORT __attribute__((visibility("default")))
#else
#define STRATA_PLUGIN_EXPORT
#endif

/* True when a struct of the given (reader-checked) size holds field. */
#define STRATA_HAS_FIELD(ptr, size, type, field) \
    ((ptr) && (size_t)(size) >= offsetof(type, field) + sizeof(((type *)0)->field))

/* ---- return codes -------------------------------------------------------- */
#define STRATA_PLUGIN_OK 0
#define STRATA_PLUGIN_EAGAIN (-EAGAIN)

/* ---- enums ---------------------------------------------------------------- */

/* Plugin kinds (descriptor.kind). */
enum {
    STRATA_PLUGIN_KIND_SOURCE = 1,    /* produces into topics */
    STRATA_PLUGIN_KIND_TRANSFORM = 2, /* reserved: consumes + produces (not in v1 hosts) */
};

/* Plugin capability bits (descriptor.caps): informative; unknown ones are
 * ignored by the host. */
#define STRATA_PLUGIN_CAP_PAUSE ((uint64_t)1 << 0)          /* pause/resume do something */
#define STRATA_PLUGIN_CAP_SOURCE_OFFSETS ((uint64_t)1 << 1) /* produces source offsets */
#define STRATA_PLUGIN_CAP_FD_EVENTS ((uint64_t)1 << 2)      /* uses fd_watch */
#define STRATA_PLUGIN_CAP_TIMERS ((uint64_t)1 << 3)         /* uses timer_add */

/* Host capability bits: what a host provides. A plugin lists those it cannot
 * work without in descriptor.required_host_caps; any bit the host does not
 * provide (including bits unknown to it) refuses the library. */
#define STRATA_HOST_CAP_PRODUCE ((uint64_t)1 << 0)     /* produce, offset_get */
#define STRATA_HOST_CAP_POINTS ((uint64_t)1 << 1)      /* emit_point (telemetry encoding) */
#define STRATA_HOST_CAP_TIMERS ((uint64_t)1 << 2)
#define STRATA_HOST_CAP_FD_WATCH ((uint64_t)1 << 3)
#define STRATA_HOST_CAP_KV ((uint64_t)1 << 4)          /* kv_get / kv_put */
#define STRATA_HOST_CAP_METRICS ((uint64_t)1 << 5)
#define STRATA_HOST_CAP_V1_ALL ((uint64_t)0x3f)

/* Log levels (host->log). */
enum {
    STRATA_LOG_ERROR = 0,
    STRATA_LOG_WARN = 1,
    STRATA_LOG_INFO = 2,
    STRATA_LOG_DEBUG = 3,
};

/* Link state (host->set_link_state, strata_health_t.link_state). */
enum {
    STRATA_LINK_UNKNOWN = 0,
    STRATA_LINK_DOWN = 1,
    STRATA_LINK_CONNECTING = 2,
    STRATA_LINK_UP = 3,
    STRATA_LINK_DEGRADED = 4, /* up, but some points/devices fail */
    STRATA_LINK_FAILED = 5,   /* unrecoverable: the host restarts the instance */
};

/* fd watch events (fd_watch mask, on_fd events). ERR/HUP are always
 * reported. */
enum {
    STRATA_FD_READ = 1,
    STRATA_FD_WRITE = 2,
    STRATA_FD_ERROR = 4,
    STRATA_FD_HUP = 8,
};

/* Metric kinds (metric_register). */
enum {
    STRATA_METRIC_COUNTER = 0,   /* metric_update adds */
    STRATA_METRIC_GAUGE = 1,     /* metric_update sets */
    STRATA_METRIC_HISTOGRAM = 2, /* metric_update observes (count/sum/min/max) */
};

/* Clocks (now_ns). */
enum {
    STRATA_CLOCK_REALTIME = 0,  /* ns since the Unix epoch */
    STRATA_CLOCK_MONOTONIC = 1,
};

/* Telemetry value types (strata_point_t.type). */
enum {
    STRATA_VALUE_NONE = 0, /* no value (a bad-quality point) */
    STRATA_VALUE_BOOL = 1,
    STRATA_VALUE_INT = 2,    /* v_int */
    STRATA_VALUE_DOUBLE = 3, /* v_double */
    STRATA_VALUE_STRING = 4, /* v_str, NUL-terminated */
    STRATA_VALUE_BYTES = 5,  /* v_bytes / v_bytes_len */
};

/* Telemetry quality (strata_point_t.quality). */
enum {
    STRATA_QUALITY_GOOD = 0,
    STRATA_QUALITY_UNCERTAIN = 1,
    STRATA_QUALITY_BAD = 2,
};

/* Config parameter types (strata_plugin_param_t.type). */
enum {
    STRATA_PARAM_STRING = 0,
    STRATA_PARAM_INT = 1,    /* int64 decimal, range [min, max] */
    STRATA_PARAM_DOUBLE = 2, /* range [min, max] */
    STRATA_PARAM_BOOL = 3,   /* true | false */
    STRATA_PARAM_ENUM = 4,   /* one of enum_values ("a|b|c") */
};

/* Config parameter flags. */
#define STRATA_PARAM_REQUIRED 1u   /* must be given (for each match of a '*' key: see below) */
#define STRATA_PARAM_HAS_RANGE 2u  /* min/max apply */

/* ---- opaque handles ------------------------------------------------------------ */

/* The host's per-instance context: passed back to every host function. */
typedef struct strata_host_ctx strata_host_ctx_t;

/* ---- plain structs -------------------------------------------------------------- */

/* An instance's configuration: the flat key = value pairs given for it in
 * server.properties (plugin.<instance>.<key>=...) and in its config.file,
 * without the "plugin.<instance>." prefix, host keys included (topic,
 * format, ...). Values are strings; the host has already checked them
 * against the schema. Valid for the duration of the call; copy what you keep. */
typedef struct strata_config {
    uint32_t struct_size;
    uint32_t count;
    const char *const *keys;
    const char *const *values;
} strata_config_t;

/* The value of key, or NULL. */
static inline const char *strata_config_get(const strata_config_t *c, const char *key)
{
    uint32_t i;
    if (!c)
        return NULL;
    for (i = 0; i < c->count; i++)
        if (strcmp(c->keys[i], key) == 0)
            return c->values[i];
    return NULL;
}

/* One entry of the config schema. key is a dotted name in which '*' matches
 * exactly one dot-free segment, e.g. "device.*.host". A REQUIRED entry with
 * '*' segments is required for every distinct prefix that appears, e.g.
 * "device.*.host" is required for each device named by any "device.<d>."
 * key. default_value (may be NULL) is documentation and what the CLI shows;
 * the host does not inject it. Arrays of these are read with param_size as
 * the element stride (append-only too). */
typedef struct strata_plugin_param {
    uint32_t struct_size; /* sizeof(strata_plugin_param_t) as built */
    uint32_t type;        /* STRATA_PARAM_* */
    const char *key;
    const char *default_value;
    const char *enum_values; /* ENUM: "a|b|c" */
    const char *help;
    double min, max; /* with STRATA_PARAM_HAS_RANGE */
    uint32_t flags;  /* STRATA_PARAM_* flags */
    uint32_t reserved;
} strata_plugin_param_t;

/* A record header (produce). */
typedef struct strata_header {
    const char *key; /* NUL-terminated */
    const void *value;
    size_t value_len;
} strata_header_t;

/* A record to produce. Every pointer is borrowed for the call (copied). */
typedef struct strata_record {
    uint32_t struct_size;
    int32_t partition;  /* -1: by key (Kafka's murmur2 partitioner), 0 without a key */
    const char *topic;  /* NULL: the instance's `topic` */
    const void *key;    /* NULL: no key */
    size_t key_len;
    const void *value;  /* NULL: a null value (tombstone) */
    size_t value_len;
    const strata_header_t *headers;
    size_t header_count;
    int64_t timestamp_ms;            /* -1: now */
    const char *source_partition;    /* NULL: no source offset */
    int64_t source_offset;
} strata_record_t;

/* A telemetry point: the host encodes it as proto/telemetry.proto's Point or
 * as JSON (the instance's `format`) and produces it keyed by device_id. */
typedef struct strata_point {
    uint32_t struct_size;
    uint32_t type;     /* STRATA_VALUE_* */
    const char *device_id;
    const char *point;
    int64_t timestamp_ms; /* -1: now */
    int64_t v_int;
    double v_double;
    const char *v_str;
    const void *v_bytes;
    size_t v_bytes_len;
    int32_t v_bool;
    uint32_t quality;     /* STRATA_QUALITY_* */
    const char *unit;     /* NULL: none */
    const char *status;   /* NULL or a short reason ("exception 2: illegal data address") */
    const char *topic;    /* NULL: the instance's `topic` */
    const char *source_partition; /* NULL: no source offset */
    int64_t source_offset;
} strata_point_t;

/* Health, filled by the plugin's health op. The host zeroes it and sets
 * struct_size to its own size; the plugin writes only the fields that fit
 * (STRATA_HAS_FIELD). */
typedef struct strata_health {
    uint32_t struct_size;
    uint32_t link_state;  /* STRATA_LINK_* */
    uint64_t errors;      /* total errors seen (bad frames, timeouts, ...) */
    uint64_t messages_in; /* upstream messages/polls handled */
    char last_error[160];
} strata_health_t;

/* Jittered exponential backoff state, owned by the plugin, advanced by
 * host->backoff_next. Zero attempt restarts the sequence. */
typedef struct strata_backoff {
    uint32_t attempt;
    uint32_t base_ms; /* 0: 100 */
    uint32_t max_ms;  /* 0: 30000 */
    uint32_t reserved;
} strata_backoff_t;

/* ---- the host table ----------------------------------------------------------------- */

typedef struct strata_host_api {
    uint32_t struct_size;
    uint16_t abi_major, abi_minor;
    uint64_t caps; /* STRATA_HOST_CAP_* */

    /* [any thread] printf-style; one line; the host prefixes the instance.
     * ctx may be NULL (from the entry point / validate). */
    void (*log)(strata_host_ctx_t *ctx, int level, const char *fmt, ...);
    /* [any thread] clock: STRATA_CLOCK_*. */
    int64_t (*now_ns)(strata_host_ctx_t *ctx, int clock);

    /* [any thread] Copies rec and queues it for the broker's append path
     * (the same one Kafka Produce uses). 0, STRATA_PLUGIN_EAGAIN (over
     * memory.bytes; nothing taken), -ENOENT (no such topic), -EMSGSIZE,
     * -EINVAL, -ESHUTDOWN. 0 means queued, not yet durable: committed()
     * reports durability for records with a source offset; failures of the
     * append itself are counted in the instance's status. */
    int (*produce)(strata_host_ctx_t *ctx, const strata_record_t *rec);
    /* [any thread] Encodes pt (telemetry.proto or JSON per the instance's
     * `format`) and produces it keyed by device_id. Same returns. */
    int (*emit_point)(strata_host_ctx_t *ctx, const strata_point_t *pt);
    /* Last committed source offset of source_partition: 0 and *offset, or
     * -ENOENT. */
    int (*offset_get)(strata_host_ctx_t *ctx, const char *source_partition, int64_t *offset);

    /* A timer firing ops->on_timer(inst, id, arg) after delay_ms, then every
     * period_ms (0: once). Returns an id > 0 or a negative errno. */
    int64_t (*timer_add)(strata_host_ctx_t *ctx, uint64_t delay_ms, uint64_t period_ms, void *arg);
    /* Cancels a timer (a no-op for an unknown / fired one-shot id). */
    void (*timer_del)(strata_host_ctx_t *ctx, int64_t id);
    /* Watches fd for events (STRATA_FD_READ|WRITE); calling again for the
     * same fd replaces its mask and arg. ops->on_fd(inst, fd, events, arg).
     * 0 or a negative errno. The plugin still owns (and closes) the fd, after
     * fd_unwatch. */
    int (*fd_watch)(strata_host_ctx_t *ctx, int fd, uint32_t events, void *arg);
    void (*fd_unwatch)(strata_host_ctx_t *ctx, int fd);
    /* [any thread] Makes the instance thread call ops->on_wake soon. */
    void (*wake)(strata_host_ctx_t *ctx);

    /* Registers a per-instance metric (name: [a-z0-9_.]+). Returns an id >= 0
     * or a negative errno. Registering an existing name returns its id. */
    int (*metric_register)(strata_host_ctx_t *ctx, const char *name, int kind, const char *help);
    void (*metric_update)(strata_host_ctx_t *ctx, int id, double value);

    /* Small persistent state (key <= 128 bytes of [A-Za-z0-9._-], value
     * <= 64 KiB), per instance, under the data dir; a put is durable when it
     * returns. kv_get: 0 and *len (the full length, even if larger than cap:
     * then only cap bytes are copied), -ENOENT, or an error. */
    int (*kv_get)(strata_host_ctx_t *ctx, const char *key, void *buf, size_t cap, size_t *len);
    int (*kv_put)(strata_host_ctx_t *ctx, const char *key, const void *val, size_t len);

    /* Link state shown in status (reason may be NULL). STRATA_LINK_FAILED
     * asks the host to restart the instance (with backoff). */
    void (*set_link_state)(strata_host_ctx_t *ctx, int state, const char *reason);
    /* Next delay (ms) of b's sequence: random in [d/2, d] with d =
     * min(max_ms, base_ms * 2^attempt); advances attempt. */
    uint64_t (*backoff_next)(strata_host_ctx_t *ctx, strata_backoff_t *b);

} strata_host_api_t;

/* ---- the plugin's ops table ------------------------------------------------------------ */

typedef struct strata_plugin_ops {
    uint32_t struct_size;
    uint32_t reserved;

    /* Semantic checks of a config the host has checked against the schema.
     * 0, or < 0 with a NUL-terminated message naming the key in err. */
    int (*validate)(const strata_config_t *cfg, char *err, size_t err_len);
    /* Creates an instance (no I/O yet). 0 and *inst, or < 0. */
    int (*create)(strata_host_ctx_t *ctx, const strata_config_t *cfg, void **inst);
    /* Starts: register fd watches / timers. 0 or < 0. */
    int (*start)(void *inst);
    /* Stops: unwatch, close, cancel. Must return promptly. */
    void (*stop)(void *inst);
    void (*destroy)(void *inst);
    /* Stop / restart reading upstream (operator request or backpressure). */
    void (*pause)(void *inst);
    void (*resume)(void *inst);
    /* Every record with a source offset <= source_offset in source_partition
     * is durable in the log (see the header comment). */
    void (*committed)(void *inst, const char *source_partition, int64_t source_offset);
    /* Fills *out (see strata_health_t). */
    void (*health)(void *inst, strata_health_t *out);
    void (*on_fd)(void *inst, int fd, uint32_t events, void *arg);
    void (*on_timer)(void *inst, int64_t timer_id, void *arg);
    void (*on_wake)(void *inst);

} strata_plugin_ops_t;

/* ---- the descriptor ------------------------------------------------------------------------- */

typedef struct strata_plugin_desc {
    uint32_t struct_size;
    uint16_t abi_major, abi_minor; /* STRATA_PLUGIN_ABI_MAJOR/MINOR as built */
    const char *name;              /* [a-z0-9_-]+ */
    const char *version;           /* free text, e.g. "1.0.0" */
    const char *description;
    uint32_t kind; /* STRATA_PLUGIN_KIND_* */
    uint32_t param_size;                 /* stride of params[] */
    uint64_t caps;                       /* STRATA_PLUGIN_CAP_* */
    uint64_t required_host_caps;         /* STRATA_HOST_CAP_* */
    const strata_plugin_param_t *params; /* the config schema */
    uint32_t param_count;
    uint32_t reserved;
    const strata_plugin_ops_t *ops;
} strata_plugin_desc_t;

typedef const strata_plugin_desc_t *(*strata_plugin_entry_fn)(uint32_t host_abi_major,
                                                              uint32_t host_abi_minor,
                                                              const strata_host_api_t *host);

/* ---- layout pins (LP64: x86-64, aarch64 Linux) ----------------------------------------------- */
#if defined(__LP64__) && !defined(STRATA_PLUGIN_NO_LAYOUT_ASSERTS)
_Static_assert(sizeof(strata_config_t) == 24, "strata_config_t v1 layout");
_Static_assert(sizeof(strata_plugin_param_t) == 64, "strata_plugin_param_t v1 layout");
_Static_assert(offsetof(strata_plugin_param_t, min) == 40, "strata_plugin_param_t v1 layout");
_Static_assert(sizeof(strata_header_t) == 24, "strata_header_t v1 layout");
_Static_assert(sizeof(strata_record_t) == 88, "strata_record_t v1 layout");
_Static_assert(offsetof(strata_record_t, timestamp_ms) == 64, "strata_record_t v1 layout");
_Static_assert(sizeof(strata_point_t) == 120, "strata_point_t v1 layout");
_Static_assert(offsetof(strata_point_t, quality) == 76, "strata_point_t v1 layout");
_Static_assert(sizeof(strata_health_t) == 184, "strata_health_t v1 layout");
_Static_assert(sizeof(strata_backoff_t) == 16, "strata_backoff_t v1 layout");
_Static_assert(offsetof(strata_host_api_t, log) == 16, "strata_host_api_t v1 layout");
_Static_assert(offsetof(strata_host_api_t, backoff_next) == 136, "strata_host_api_t v1.0 layout");
_Static_assert(sizeof(strata_host_api_t) == 144, "strata_host_api_t v1.0 layout");
_Static_assert(offsetof(strata_plugin_ops_t, validate) == 8, "strata_plugin_ops_t v1 layout");
_Static_assert(offsetof(strata_plugin_ops_t, on_wake) == 96, "strata_plugin_ops_t v1.0 layout");
_Static_assert(sizeof(strata_plugin_ops_t) == 104, "strata_plugin_ops_t v1.0 layout");
_Static_assert(offsetof(strata_plugin_desc_t, caps) == 40, "strata_plugin_desc_t v1 layout");
_Static_assert(sizeof(strata_plugin_desc_t) == 80, "strata_plugin_desc_t v1 layout");
#endif

#ifdef __cplusplus
}
#endif
#endif
