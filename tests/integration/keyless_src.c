/*
 * keyless_src -- a source plugin for test_produce.py (mode plugin): on a
 * timer it produces `records` records to its topic, partition 0, source
 * offsets 0, 1, 2, ...; records at odd source offsets have no key (NULL),
 * the others key "k<offset>" (and offset 0 an empty key, not a null one).
 * Built against include/strata/plugin.h only.
 */
#include "strata/plugin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const strata_host_api_t *H;

typedef struct {
    strata_host_ctx_t *ctx;
    long records, sent;
    int64_t timer;
} ks_t;

static int ks_create(strata_host_ctx_t *ctx, const strata_config_t *cfg, void **out)
{
    ks_t *t = calloc(1, sizeof *t);
    if (!t)
        return -ENOMEM;
    t->ctx = ctx;
    const char *v = strata_config_get(cfg, "records");
    t->records = v ? strtol(v, NULL, 10) : 10;
    *out = t;
    return 0;
}

static int ks_start(void *p)
{
    ks_t *t = p;
    t->timer = H->timer_add(t->ctx, 0, 5, NULL);
    H->set_link_state(t->ctx, STRATA_LINK_UP, NULL);
    return t->timer > 0 ? 0 : (int)t->timer;
}

static void ks_timer(void *p, int64_t id, void *arg)
{
    ks_t *t = p;
    (void)id;
    (void)arg;
    if (t->sent >= t->records)
        return;
    char k[32], v[32];
    int kn = t->sent == 0 ? 0 : snprintf(k, sizeof k, "k%ld", t->sent);
    int vn = snprintf(v, sizeof v, "v%ld", t->sent);
    strata_record_t r = {.struct_size = sizeof r, .partition = 0,
                         .key = t->sent % 2 ? NULL : k, .key_len = t->sent % 2 ? 0 : (size_t)kn,
                         .value = v, .value_len = (size_t)vn, .timestamp_ms = -1,
                         .source_partition = "s", .source_offset = t->sent};
    int rc = H->produce(t->ctx, &r);
    if (rc == STRATA_PLUGIN_EAGAIN)
        return; /* next tick */
    if (rc) {
        H->log(t->ctx, STRATA_LOG_WARN, "produce: %d", rc);
        return;
    }
    t->sent++;
}

static void ks_stop(void *p)
{
    ks_t *t = p;
    if (t->timer > 0)
        H->timer_del(t->ctx, t->timer);
}

static void ks_destroy(void *p) { free(p); }

static const strata_plugin_ops_t ops = {
    .struct_size = sizeof ops,
    .create = ks_create,
    .start = ks_start,
    .stop = ks_stop,
    .destroy = ks_destroy,
    .on_timer = ks_timer,
};

static const strata_plugin_param_t params[] = {
    {sizeof params[0], STRATA_PARAM_INT, "records", "10", NULL, "records to send", 0, 1e6,
     STRATA_PARAM_HAS_RANGE, 0},
};

static const strata_plugin_desc_t desc = {
    .struct_size = sizeof desc,
    .abi_major = STRATA_PLUGIN_ABI_MAJOR,
    .abi_minor = STRATA_PLUGIN_ABI_MINOR,
    .name = "keyless_src",
    .version = "1.0.0",
    .description = "keyed and keyless records, alternating",
    .kind = STRATA_PLUGIN_KIND_SOURCE,
    .param_size = sizeof(strata_plugin_param_t),
    .caps = STRATA_PLUGIN_CAP_SOURCE_OFFSETS | STRATA_PLUGIN_CAP_TIMERS,
    .required_host_caps = STRATA_HOST_CAP_PRODUCE | STRATA_HOST_CAP_TIMERS,
    .params = params,
    .param_count = sizeof params / sizeof params[0],
    .ops = &ops,
};

STRATA_PLUGIN_EXPORT const strata_plugin_desc_t *
strata_plugin_entry_v1(uint32_t major, uint32_t minor, const strata_host_api_t *host)
{
    (void)minor;
    if (major != STRATA_PLUGIN_ABI_MAJOR || !host)
        return NULL;
    H = host;
    return &desc;
}
