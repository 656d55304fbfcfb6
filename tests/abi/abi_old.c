/*
 * abi_old -- a plugin built against the frozen ABI 1.0 header
 * (plugin_v1_0.h): smaller host table and ops table than today's. The host
 * must load it and run it: it emits `records` points on a timer and reads
 * nothing beyond the 1.0 host table.
 */
#include "plugin_v1_0.h"

#include <stdlib.h>

static const strata_host_api_t *H;

typedef struct {
    strata_host_ctx_t *ctx;
    long left;
    int64_t off;
} old_t;

static int old_create(strata_host_ctx_t *ctx, const strata_config_t *cfg, void **out)
{
    old_t *o = calloc(1, sizeof *o);
    if (!o)
        return -ENOMEM;
    const char *r = strata_config_get(cfg, "records");
    o->ctx = ctx;
    o->left = r ? strtol(r, NULL, 10) : 3;
    int64_t last;
    o->off = H->offset_get(ctx, "old", &last) == 0 ? last + 1 : 0;
    *out = o;
    return 0;
}

static int old_start(void *p)
{
    old_t *o = p;
    H->log(o->ctx, STRATA_LOG_INFO, "abi_old (built against ABI 1.0) running");
    return H->timer_add(o->ctx, 0, 5, NULL) > 0 ? 0 : -EIO;
}

static void old_timer(void *p, int64_t id, void *arg)
{
    old_t *o = p;
    if (o->left <= 0)
        return;
    strata_point_t pt = {.struct_size = sizeof pt, .type = STRATA_VALUE_DOUBLE,
                         .device_id = "old-device", .point = "p", .timestamp_ms = -1,
                         .v_double = 0.5 * (double)o->off, .quality = STRATA_QUALITY_GOOD,
                         .source_partition = "old", .source_offset = o->off};
    if (H->emit_point(o->ctx, &pt) == 0) {
        o->off++;
        o->left--;
    }
}

static void old_stop(void *p) {}
static void old_destroy(void *p) { free(p); }

static const strata_plugin_ops_t ops = {
    .struct_size = sizeof ops, /* the 1.0 size: no describe */
    .create = old_create,
    .start = old_start,
    .stop = old_stop,
    .destroy = old_destroy,
    .on_timer = old_timer,
};

static const strata_plugin_param_t params[] = {
    {sizeof params[0], STRATA_PARAM_INT, "records", "3", NULL, "points to emit", 0, 1e6,
     STRATA_PARAM_HAS_RANGE, 0},
};

static const strata_plugin_desc_t desc = {
    .struct_size = sizeof desc,
    .abi_major = STRATA_PLUGIN_ABI_MAJOR,
    .abi_minor = STRATA_PLUGIN_ABI_MINOR, /* 0 */
    .name = "abi_old",
    .version = "1.0",
    .kind = STRATA_PLUGIN_KIND_SOURCE,
    .param_size = sizeof(strata_plugin_param_t),
    .required_host_caps = STRATA_HOST_CAP_POINTS | STRATA_HOST_CAP_TIMERS,
    .params = params,
    .param_count = 1,
    .ops = &ops,
};

STRATA_PLUGIN_EXPORT const strata_plugin_desc_t *
strata_plugin_entry_v1(uint32_t major, uint32_t minor, const strata_host_api_t *host)
{
    H = host;
    return major == STRATA_PLUGIN_ABI_MAJOR ? &desc : NULL;
}
