/*
 * testsrc -- a scripted source plugin for the host's tests (unit and
 * integration). Built against include/strata/plugin.h only.
 *
 * Every interval.ms it produces one record for source partition
 * `source.partition` with source offset = previous + 1, starting after the
 * last committed offset the host hands back (offset_get) -- so a restart
 * neither repeats nor skips an offset that was committed. mode=point uses
 * emit_point (telemetry encoding), mode=raw uses produce with a header.
 * committed() writes the offset to kv key "committed". Misbehaviour on
 * request: fail.start, fail.after (link FAILED after N records),
 * block.stop.ms (sleeps in stop).
 */
#include "strata/plugin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const strata_host_api_t *H;

typedef struct {
    strata_host_ctx_t *ctx;
    long records, sent, fail_after, block_stop_ms, interval_ms;
    int raw, fail_start;
    int64_t next_off;
    char spart[64], dev[64];
    int m_sent, m_committed, m_lat;
    int64_t timer;
    uint64_t eagain, pauses;
    int paused;
} ts_t;

static long num(const strata_config_t *c, const char *k, long d)
{
    const char *v = strata_config_get(c, k);
    return v ? strtol(v, NULL, 10) : d;
}

static int ts_create(strata_host_ctx_t *ctx, const strata_config_t *cfg, void **out)
{
    ts_t *t = calloc(1, sizeof *t);
    if (!t)
        return -ENOMEM;
    t->ctx = ctx;
    t->records = num(cfg, "records", 10);
    t->interval_ms = num(cfg, "interval.ms", 10);
    t->fail_after = num(cfg, "fail.after", 0);
    t->block_stop_ms = num(cfg, "block.stop.ms", 0);
    const char *m = strata_config_get(cfg, "mode");
    t->raw = m && strcmp(m, "raw") == 0;
    const char *fs = strata_config_get(cfg, "fail.start");
    t->fail_start = fs && strcmp(fs, "true") == 0;
    const char *sp = strata_config_get(cfg, "source.partition");
    snprintf(t->spart, sizeof t->spart, "%s", sp ? sp : "sp0");
    const char *d = strata_config_get(cfg, "device");
    snprintf(t->dev, sizeof t->dev, "%s", d ? d : "dev1");
    int64_t last;
    t->next_off = H->offset_get(ctx, t->spart, &last) == 0 ? last + 1 : 0;
    t->m_sent = H->metric_register(ctx, "testsrc.sent", STRATA_METRIC_COUNTER, "records sent");
    t->m_committed = H->metric_register(ctx, "testsrc.committed", STRATA_METRIC_GAUGE, "");
    t->m_lat = H->metric_register(ctx, "testsrc.value", STRATA_METRIC_HISTOGRAM, "");
    *out = t;
    return 0;
}

static int ts_start(void *p)
{
    ts_t *t = p;
    if (t->fail_start) {
        H->log(t->ctx, STRATA_LOG_WARN, "fail.start=true: failing start");
        return -EIO;
    }
    H->log(t->ctx, STRATA_LOG_INFO, "testsrc starting at source offset %lld", (long long)t->next_off);
    t->timer = H->timer_add(t->ctx, 0, (uint64_t)t->interval_ms, NULL);
    H->set_link_state(t->ctx, STRATA_LINK_UP, NULL);
    return t->timer > 0 ? 0 : (int)t->timer;
}

static void ts_timer(void *p, int64_t id, void *arg)
{
    ts_t *t = p;
    if (t->paused || (t->records && t->sent >= t->records))
        return;
    if (t->fail_after && t->sent >= t->fail_after) {
        H->set_link_state(t->ctx, STRATA_LINK_FAILED, "fail.after reached");
        return;
    }
    int rc;
    if (t->raw) {
        char v[64];
        int n = snprintf(v, sizeof v, "value-%lld", (long long)t->next_off);
        strata_header_t h = {"testsrc", "yes", 3};
        strata_record_t r = {.struct_size = sizeof r, .partition = -1, .key = t->dev,
                             .key_len = strlen(t->dev), .value = v, .value_len = (size_t)n,
                             .headers = &h, .header_count = 1, .timestamp_ms = -1,
                             .source_partition = t->spart, .source_offset = t->next_off};
        rc = H->produce(t->ctx, &r);
    } else {
        strata_point_t pt = {.struct_size = sizeof pt, .type = STRATA_VALUE_INT,
                             .device_id = t->dev, .point = "counter", .timestamp_ms = -1,
                             .v_int = t->next_off, .quality = STRATA_QUALITY_GOOD, .unit = "n",
                             .source_partition = t->spart, .source_offset = t->next_off};
        rc = H->emit_point(t->ctx, &pt);
    }
    if (rc == STRATA_PLUGIN_EAGAIN) {
        t->eagain++;
        return; /* try again next tick */
    }
    if (rc) {
        H->log(t->ctx, STRATA_LOG_WARN, "produce: %d", rc);
        return;
    }
    H->metric_update(t->ctx, t->m_sent, 1);
    H->metric_update(t->ctx, t->m_lat, (double)t->next_off);
    t->next_off++;
    t->sent++;
}

static void ts_committed(void *p, const char *part, int64_t off)
{
    ts_t *t = p;
    char v[32];
    int n = snprintf(v, sizeof v, "%lld", (long long)off);
    H->kv_put(t->ctx, "committed", v, (size_t)n);
    H->metric_update(t->ctx, t->m_committed, (double)off);
}

static void ts_stop(void *p)
{
    ts_t *t = p;
    if (t->block_stop_ms) {
        H->log(t->ctx, STRATA_LOG_INFO, "blocking in stop for %ld ms", t->block_stop_ms);
        struct timespec ts = {t->block_stop_ms / 1000, (t->block_stop_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    if (t->timer > 0)
        H->timer_del(t->ctx, t->timer);
}

static void ts_destroy(void *p) { free(p); }

/* the host pauses us while over memory.bytes (backpressure) */
static void ts_pause(void *p)
{
    ts_t *t = p;
    t->paused = 1;
    t->pauses++;
}

static void ts_resume(void *p) { ((ts_t *)p)->paused = 0; }

static void ts_health(void *p, strata_health_t *h)
{
    ts_t *t = p;
    h->link_state = STRATA_LINK_UP;
    if (STRATA_HAS_FIELD(h, h->struct_size, strata_health_t, messages_in))
        h->messages_in = (uint64_t)t->sent;
}

static size_t ts_describe(void *p, char *buf, size_t len)
{
    ts_t *t = p;
    int n = snprintf(buf, len, "{\"sent\":%ld,\"next_offset\":%lld,\"eagain\":%llu,\"pauses\":%llu}",
                     t->sent, (long long)t->next_off, (unsigned long long)t->eagain,
                     (unsigned long long)t->pauses);
    return n < 0 ? 0 : (size_t)n < len ? (size_t)n : len - 1;
}

static int ts_validate(const strata_config_t *cfg, char *err, size_t len)
{
    const char *sp = strata_config_get(cfg, "source.partition");
    if (sp && !*sp) {
        snprintf(err, len, "key 'source.partition': must not be empty");
        return -EINVAL;
    }
    return 0;
}

static const strata_plugin_ops_t ops = {
    .struct_size = sizeof ops,
    .validate = ts_validate,
    .create = ts_create,
    .start = ts_start,
    .stop = ts_stop,
    .destroy = ts_destroy,
    .pause = ts_pause,
    .resume = ts_resume,
    .committed = ts_committed,
    .health = ts_health,
    .on_timer = ts_timer,
    .describe = ts_describe,
};

static const strata_plugin_param_t params[] = {
    {sizeof params[0], STRATA_PARAM_INT, "records", "10", NULL, "records to send (0: forever)", 0, 1e9, STRATA_PARAM_HAS_RANGE, 0},
    {sizeof params[0], STRATA_PARAM_INT, "interval.ms", "10", NULL, "one record per interval", 1, 60000, STRATA_PARAM_HAS_RANGE, 0},
    {sizeof params[0], STRATA_PARAM_ENUM, "mode", "point", "point|raw", "emit_point or produce", 0, 0, 0, 0},
    {sizeof params[0], STRATA_PARAM_STRING, "source.partition", "sp0", NULL, "source partition name", 0, 0, 0, 0},
    {sizeof params[0], STRATA_PARAM_STRING, "device", "dev1", NULL, "device id (record key)", 0, 0, 0, 0},
    {sizeof params[0], STRATA_PARAM_BOOL, "fail.start", "false", NULL, "start fails", 0, 0, 0, 0},
    {sizeof params[0], STRATA_PARAM_INT, "fail.after", "0", NULL, "link FAILED after N records", 0, 1e9, STRATA_PARAM_HAS_RANGE, 0},
    {sizeof params[0], STRATA_PARAM_INT, "block.stop.ms", "0", NULL, "sleep in stop", 0, 600000, STRATA_PARAM_HAS_RANGE, 0},
};

static const strata_plugin_desc_t desc = {
    .struct_size = sizeof desc,
    .abi_major = STRATA_PLUGIN_ABI_MAJOR,
    .abi_minor = STRATA_PLUGIN_ABI_MINOR,
    .name = "testsrc",
    .version = "1.0.0",
    .description = "scripted test source",
    .kind = STRATA_PLUGIN_KIND_SOURCE,
    .param_size = sizeof(strata_plugin_param_t),
    .caps = STRATA_PLUGIN_CAP_SOURCE_OFFSETS | STRATA_PLUGIN_CAP_TIMERS | STRATA_PLUGIN_CAP_PAUSE,
    .required_host_caps = STRATA_HOST_CAP_PRODUCE | STRATA_HOST_CAP_POINTS | STRATA_HOST_CAP_TIMERS |
                          STRATA_HOST_CAP_KV | STRATA_HOST_CAP_METRICS,
    .params = params,
    .param_count = sizeof params / sizeof params[0],
    .ops = &ops,
};

STRATA_PLUGIN_EXPORT const strata_plugin_desc_t *
strata_plugin_entry_v1(uint32_t major, uint32_t minor, const strata_host_api_t *host)
{
    if (major != STRATA_PLUGIN_ABI_MAJOR || !host ||
        !STRATA_HAS_FIELD(host, host->struct_size, strata_host_api_t, backoff_next))
        return NULL;
    H = host;
    return &desc;
}
