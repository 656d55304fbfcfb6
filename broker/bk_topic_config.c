/* bk_topic_config -- the topic-level key table. See bk_topic_config.h.
 * Ranges follow Kafka 3.7's LogConfig validators. */
#include "bk_topic_config.h"

#include "sc_err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static const char *const cleanup_policies[] = {"delete", "compact", NULL};
static const char *const timestamp_types[] = {"CreateTime", "LogAppendTime", NULL};
static const char *const booleans[] = {"true", "false", NULL};
static const char *const compression_types[] = {"uncompressed", "zstd",   "lz4",      "snappy",
                                                "gzip",         "producer", NULL};

static const bk_topic_key_t keys[] = {
    {"cleanup.policy", BK_TCFG_LIST, 0, 0, cleanup_policies, "log.cleanup.policy",
     "`delete` (retention.ms / retention.bytes remove old segments), `compact` (the log "
     "cleaner keeps the last record per key, docs/compaction.md; retention never deletes a "
     "compact-only topic's segments) or both."},
    {"compression.type", BK_TCFG_ENUM, 0, 0, compression_types, "compression.type",
     "Codec batches are stored with; `producer` keeps what the producer sent."},
    {"delete.retention.ms", BK_TCFG_LONG, 0, INT64_MAX, NULL, "log.cleaner.delete.retention.ms",
     "Compacted topics: how long a tombstone (null value) stays after the cleaner first kept "
     "it, so consumers can see the delete."},
    {"flush.messages", BK_TCFG_LONG, 1, INT64_MAX, NULL, "log.flush.interval.messages",
     "fdatasync after this many messages (Strata default 1: every acknowledged write is "
     "durable)."},
    {"flush.ms", BK_TCFG_LONG, 0, INT64_MAX, NULL, "log.flush.interval.ms",
     "fdatasync when unflushed data is this old."},
    {"index.interval.bytes", BK_TCFG_INT, 0, INT32_MAX, NULL, "log.index.interval.bytes",
     "Bytes of log between two offset-index entries."},
    {"max.message.bytes", BK_TCFG_INT, 0, INT32_MAX, NULL, "message.max.bytes",
     "Largest record batch accepted for this topic."},
    {"message.timestamp.type", BK_TCFG_ENUM, 0, 0, timestamp_types, "log.message.timestamp.type",
     "`CreateTime` keeps the producer's timestamps, `LogAppendTime` stamps the broker's clock."},
    {"min.cleanable.dirty.ratio", BK_TCFG_DOUBLE, 0, 1, NULL, "log.cleaner.min.cleanable.ratio",
     "Compacted topics: clean when the not-yet-cleaned share of the closed segments reaches "
     "this."},
    {"min.compaction.lag.ms", BK_TCFG_LONG, 0, INT64_MAX, NULL,
     "log.cleaner.min.compaction.lag.ms",
     "Compacted topics: a record stays uncompacted at least this long (its segment's newest "
     "timestamp must be older)."},
    {"min.insync.replicas", BK_TCFG_INT, 1, INT32_MAX, NULL, "min.insync.replicas",
     "acks=all produce fails with NOT_ENOUGH_REPLICAS below this many in-sync replicas."},
    {"retention.bytes", BK_TCFG_LONG, -1, INT64_MAX, NULL, "log.retention.bytes",
     "Delete the oldest segments while a partition is larger than this; -1 = no limit."},
    {"retention.ms", BK_TCFG_LONG, -1, INT64_MAX, NULL, "log.retention.ms",
     "Delete segments whose newest record is older than this; -1 keeps them forever."},
    {"segment.bytes", BK_TCFG_INT, 14, INT32_MAX, NULL, "log.segment.bytes",
     "Roll to a new segment when the active one reaches this size."},
    {"segment.index.bytes", BK_TCFG_INT, 4, INT32_MAX, NULL, "log.index.size.max.bytes",
     "Maximum size of a segment's offset or time index."},
    {"segment.ms", BK_TCFG_LONG, 1, INT64_MAX, NULL, "log.roll.ms",
     "Roll to a new segment when the active one's first record is this old."},
    {"unclean.leader.election.enable", BK_TCFG_ENUM, 0, 0, booleans,
     "unclean.leader.election.enable",
     "Cluster mode: with no in-sync replica alive, a live replica outside the ISR may lead "
     "(records only the old ISR had are lost)."},
};

#define NKEYS (sizeof keys / sizeof keys[0])

static int why_f(char *why, size_t whylen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int why_f(char *why, size_t whylen, const char *fmt, ...)
{
    if (why && whylen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, whylen, fmt, ap);
        va_end(ap);
    }
    return SC_ERR_INVALID_CONFIG;
}

const bk_topic_key_t *bk_topic_config_keys(size_t *n)
{
    *n = NKEYS;
    return keys;
}

const bk_topic_key_t *bk_topic_config_find(const char *key)
{
    for (size_t i = 0; i < NKEYS; i++)
        if (strcmp(keys[i].name, key) == 0)
            return &keys[i];
    return NULL;
}

static int in_choices(const bk_topic_key_t *k, const char *s, size_t len)
{
    for (const char *const *c = k->choices; *c; c++)
        if (strlen(*c) == len && memcmp(*c, s, len) == 0)
            return 1;
    return 0;
}

static void choices_text(const bk_topic_key_t *k, char *buf, size_t len)
{
    size_t o = 0;
    buf[0] = 0;
    for (const char *const *c = k->choices; *c && o < len; c++)
        o += (size_t)snprintf(buf + o, len - o, "%s%s", o ? ", " : "", *c);
}

int bk_topic_config_check_value(const bk_topic_key_t *k, const char *value, char *why,
                                size_t whylen)
{
    char list[128];
    switch (k->type) {
    case BK_TCFG_INT:
    case BK_TCFG_LONG: {
        char *end;
        errno = 0;
        long long x = strtoll(value, &end, 10);
        if (!*value || *end || errno == ERANGE || *value == ' ' || *value == '\t')
            return why_f(why, whylen, "%s: '%s' is not an integer", k->name, value);
        if (x < k->min || x > k->max)
            return why_f(why, whylen, "%s: %lld is out of range [%lld, %lld]", k->name, x,
                         (long long)k->min, (long long)k->max);
        return 0;
    }
    case BK_TCFG_DOUBLE: {
        char *end;
        errno = 0;
        double d = strtod(value, &end);
        if (!*value || *end || errno == ERANGE || *value == ' ' || *value == '\t' || d != d)
            return why_f(why, whylen, "%s: '%s' is not a number", k->name, value);
        if (d < (double)k->min || d > (double)k->max)
            return why_f(why, whylen, "%s: %s is out of range [%lld, %lld]", k->name, value,
                         (long long)k->min, (long long)k->max);
        return 0;
    }
    case BK_TCFG_ENUM:
        if (in_choices(k, value, strlen(value)))
            return 0;
        choices_text(k, list, sizeof list);
        return why_f(why, whylen, "%s: '%s' is not one of %s", k->name, value, list);
    case BK_TCFG_LIST: {
        const char *p = value;
        int n = 0;
        while (1) {
            const char *comma = strchr(p, ',');
            const char *e = comma ? comma : p + strlen(p);
            const char *s = p;
            while (s < e && *s == ' ')
                s++;
            const char *t = e;
            while (t > s && t[-1] == ' ')
                t--;
            if (!in_choices(k, s, (size_t)(t - s))) {
                choices_text(k, list, sizeof list);
                return why_f(why, whylen, "%s: '%s' is not a list of %s", k->name, value, list);
            }
            n++;
            if (!comma)
                break;
            p = comma + 1;
        }
        return n ? 0 : why_f(why, whylen, "%s: empty", k->name);
    }
    }
    return why_f(why, whylen, "%s: bad type", k->name);
}

int bk_topic_config_check(const char *key, const char *value, char *why, size_t whylen)
{
    const bk_topic_key_t *k = bk_topic_config_find(key);
    if (!k)
        return why_f(why, whylen, "unknown topic config '%s'", key);
    if (!value)
        return why_f(why, whylen, "%s: null value", key);
    return bk_topic_config_check_value(k, value, why, whylen);
}

int bk_topic_config_default(const bk_config_t *cfg, const bk_topic_key_t *k, char *buf,
                            size_t len)
{
    if (bk_config_value_str(cfg, k->broker_key, buf, len) != 0)
        buf[0] = 0; /* cannot happen: test_bk_topic_config checks every synonym */
    return bk_config_is_set(cfg, k->broker_key) ? BK_CFG_SOURCE_STATIC_BROKER
                                                : BK_CFG_SOURCE_DEFAULT;
}

int bk_topic_config_print_markdown(FILE *f)
{
    size_t nk;
    const bk_cfg_key_t *bkeys = bk_config_keys(&nk);
    fprintf(f, "\n## Topic-level configuration\n\n"
               "Set per topic with CreateTopics `configs` or AlterConfigs (which replaces the\n"
               "topic's whole override set, as Kafka's non-incremental AlterConfigs does), and\n"
               "shown by DescribeConfigs. A topic without an override uses the broker key in\n"
               "the second column. Overrides are stored in the metadata store\n"
               "(`<log.dirs[0]>/__cluster_metadata.bin`) and survive restarts. Any other key is\n"
               "rejected with INVALID_CONFIG.\n\n"
               "| topic key | broker default from | broker default | valid values | description |\n"
               "|---|---|---|---|---|\n");
    for (size_t i = 0; i < NKEYS; i++) {
        const bk_topic_key_t *k = &keys[i];
        const char *def = "";
        for (size_t j = 0; j < nk; j++)
            if (strcmp(bkeys[j].name, k->broker_key) == 0)
                def = bkeys[j].def;
        char range[128];
        if (k->type == BK_TCFG_INT || k->type == BK_TCFG_LONG || k->type == BK_TCFG_DOUBLE) {
            snprintf(range, sizeof range, "[%lld, %lld]", (long long)k->min, (long long)k->max);
        } else {
            choices_text(k, range, sizeof range);
            if (k->type == BK_TCFG_LIST)
                strncat(range, " (comma list)", sizeof range - strlen(range) - 1);
        }
        fprintf(f, "| `%s` | `%s` | `%s` | %s | %s |\n", k->name, k->broker_key, def, range,
                k->help);
    }
    return ferror(f) ? -EIO : 0;
}
