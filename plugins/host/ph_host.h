/*
 * ph_host -- the plugin host (design.md §8): loads plugin libraries from
 * plugin.dir, checks each instance's config against its plugin's schema,
 * runs each instance on its own thread (a poll(2) loop: fd watches, timers,
 * a wake eventfd), restarts failing instances with backoff, keeps their
 * source offsets, kv state and status, and hands their records to a sink.
 *
 * Dependency direction: plugins/host depends on common/ and
 * include/strata/plugin.h only. The broker (broker/bk_plugin.c) is the sink:
 * it takes queued records on its shard thread, appends them through the log
 * like Produce, and reports each one back with ph_rec_done once durable.
 *
 * Threads: ph_host_new / _start / _stop / _free and ph_host_write_status on
 * one control thread (the broker's shard 0); ph_host_take and ph_rec_done on
 * the sink's thread (the same one today); everything else is internal.
 */
#ifndef PH_HOST_H
#define PH_HOST_H

#include "sc_recbatch.h"

#include <stddef.h>
#include <stdint.h>

typedef struct ph_host ph_host_t;
typedef struct ph_inst ph_inst_t;

/* One record queued by an instance. Read-only for the sink. */
typedef struct ph_rec {
    struct ph_rec *next;  /* ph_host_take's list */
    struct ph_rec *onext; /* (internal) the instance's produce order */
    ph_inst_t *inst;
    const char *topic;
    int32_t partition;    /* -1: by key */
    const void *key;
    int32_t key_len;      /* -1: null */
    const void *value;
    int32_t value_len;    /* -1: null */
    const sc_rec_header_t *headers;
    int nheaders;
    int64_t timestamp_ms;
    size_t bytes;         /* counted against the instance's memory.bytes */
    /* internal */
    const char *src_part; /* NULL: none */
    int64_t src_off;
    int done;
    int rc;
} ph_rec_t;

typedef struct {
    /* [any thread] records are waiting: call ph_host_take soon */
    void (*notify)(void *arg);
    void *arg;
} ph_sink_t;

typedef struct {
    const char *plugin_dir;      /* plugin.dir ("" = plugins disabled) */
    const char *instances;       /* plugins: "a,b" */
    int signature_required;      /* plugin.signature.required */
    const char *signature_key;   /* plugin.signature.public.key: PEM path */
    const char *state_dir;       /* offsets, kv, status.json live here */
    /* every plugin.<instance>.<key> from server.properties (full names) */
    const char *const *keys;
    const char *const *values;
    size_t nkv;
} ph_config_t;

/* Loads every library and validates every instance's config (schema, then
 * the plugin's validate). 0, or an error with a message naming the instance
 * and the key (or the library and the reason) in err. No thread started. */
int ph_host_new(const ph_config_t *cfg, const ph_sink_t *sink, ph_host_t **out, char *err,
                size_t errlen);
/* Starts one thread per instance. */
int ph_host_start(ph_host_t *h);
/* Asks every instance to stop and waits for each at most its stop.timeout.ms;
 * a thread that does not finish is abandoned (instance marked failed). */
void ph_host_stop(ph_host_t *h);
/* Every record queued since the last call, in produce order per instance
 * (NULL if none). The sink appends them and calls ph_rec_done for each. */
ph_rec_t *ph_host_take(ph_host_t *h);
/* The record's append finished: rc 0 (durable at offset), else an error
 * (counted, shown in status). Frees r. Thread-safe. */
void ph_rec_done(ph_rec_t *r, int rc, const char *reason);
/* Writes the status of every instance as JSON to path (temp + rename). */
int ph_host_write_status(ph_host_t *h, const char *path);
/* Number of instances. */
size_t ph_host_count(const ph_host_t *h);
/* Frees everything (after ph_host_stop and after every taken record was
 * done); writes the final offsets checkpoints. NULL is a no-op. */
void ph_host_free(ph_host_t *h);

/* Instance keys the host consumes itself (also passed to the plugin). */
extern const char *const ph_host_keys[];

/* Encodes a telemetry point (ph_telemetry.c): protobuf (telemetry.proto) when
 * protobuf != 0, else a JSON object. Returns a malloc'd buffer and *len, or
 * NULL (no memory). */
struct strata_point;
uint8_t *ph_point_encode(const struct strata_point *pt, int64_t ts_ms, int protobuf, size_t *len);

#endif
