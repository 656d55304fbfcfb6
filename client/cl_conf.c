/*
 * cl_conf -- strata_conf_t: the key table, parsing, defaults, get/set.
 *
 * Each entry: canonical name (librdkafka's), an optional alias (librdkafka's
 * older or Java's name for the same thing), a type, the offset of its field,
 * a default as text, a range for integers and the accepted words for enums.
 * Integers accept decimal only; booleans true/false (also 1/0); enums map a
 * word to an index and aliases map several words to one index.
 */
#include "cl_conf.h"

#include "sc_err.h"
#include "sc_mem.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { T_STR, T_INT, T_BOOL, T_ENUM };

typedef struct {
    const char *word;
    int value;
} enum_word_t;

typedef struct {
    const char *name;
    const char *alias;
    int type;
    size_t off;
    const char *def;
    int64_t min, max;
    const enum_word_t *words; /* T_ENUM: terminated by {NULL, 0}; first word per value is canonical */
    int explicit_bit;         /* -1 or CL_CONF_KEY_* */
} desc_t;

static const enum_word_t codec_words[] = {
    {"none", CL_CODEC_NONE}, {"gzip", CL_CODEC_GZIP}, {"snappy", CL_CODEC_SNAPPY},
    {"lz4", CL_CODEC_LZ4},   {"zstd", CL_CODEC_ZSTD}, {NULL, 0}};
static const enum_word_t partitioner_words[] = {
    {"murmur2_random", CL_PART_MURMUR2_RANDOM}, {"murmur2", CL_PART_MURMUR2}, {NULL, 0}};
static const enum_word_t reset_words[] = {
    {"latest", CL_RESET_LATEST},     {"earliest", CL_RESET_EARLIEST}, {"error", CL_RESET_ERROR},
    {"smallest", CL_RESET_EARLIEST}, {"beginning", CL_RESET_EARLIEST}, {"largest", CL_RESET_LATEST},
    {"end", CL_RESET_LATEST},        {NULL, 0}};
static const enum_word_t isolation_words[] = {
    {"read_committed", CL_ISO_READ_COMMITTED}, {"read_uncommitted", CL_ISO_READ_UNCOMMITTED}, {NULL, 0}};

#define F(field) offsetof(struct strata_conf, field)
#define I32MAX 2147483647

static const desc_t keys[] = {
    {"bootstrap.servers", "metadata.broker.list", T_STR, F(bootstrap_servers), "", 0, 0, NULL, -1},
    {"client.id", NULL, T_STR, F(client_id), "strata", 0, 0, NULL, -1},
    {"request.timeout.ms", NULL, T_INT, F(request_timeout_ms), "30000", 1, 900000, NULL, -1},
    {"socket.timeout.ms", NULL, T_INT, F(socket_timeout_ms), "60000", 10, 300000, NULL, -1},
    {"socket.connection.setup.timeout.ms", NULL, T_INT, F(socket_connection_setup_timeout_ms),
     "30000", 1000, I32MAX, NULL, -1},
    {"reconnect.backoff.ms", NULL, T_INT, F(reconnect_backoff_ms), "100", 0, 3600000, NULL, -1},
    {"metadata.max.age.ms", NULL, T_INT, F(metadata_max_age_ms), "900000", 1, 86400000, NULL, -1},
    {"topic.metadata.refresh.interval.ms", NULL, T_INT, F(topic_metadata_refresh_interval_ms),
     "300000", -1, 3600000, NULL, -1},
    {"retry.backoff.ms", NULL, T_INT, F(retry_backoff_ms), "100", 1, 300000, NULL, -1},
    {"message.max.bytes", NULL, T_INT, F(message_max_bytes), "1000000", 1000, 1000000000, NULL, -1},
    {"max.in.flight.requests.per.connection", "max.in.flight", T_INT, F(max_in_flight), "5", 1,
     1000000, NULL, -1},
    {"linger.ms", "queue.buffering.max.ms", T_INT, F(linger_ms), "5", 0, 900000, NULL, -1},
    {"batch.size", NULL, T_INT, F(batch_size), "1000000", 1, I32MAX, NULL, -1},
    {"batch.num.messages", NULL, T_INT, F(batch_num_messages), "10000", 1, 1000000, NULL, -1},
    {"compression.type", "compression.codec", T_ENUM, F(compression_type), "none", 0, 0,
     codec_words, -1},
    {"compression.level", NULL, T_INT, F(compression_level), "-1", -1, 12, NULL, -1},
    {"acks", "request.required.acks", T_INT, F(acks), "-1", -1, 1000, NULL, -1},
    {"enable.idempotence", NULL, T_BOOL, F(enable_idempotence), "true", 0, 1, NULL,
     CL_CONF_KEY_ENABLE_IDEMPOTENCE},
    {"queue.buffering.max.kbytes", NULL, T_INT, F(queue_buffering_max_kbytes), "1048576", 1,
     I32MAX, NULL, -1},
    {"queue.buffering.max.messages", NULL, T_INT, F(queue_buffering_max_messages), "100000", 1,
     I32MAX, NULL, -1},
    {"message.timeout.ms", "delivery.timeout.ms", T_INT, F(message_timeout_ms), "300000", 0,
     I32MAX, NULL, -1},
    {"retries", "message.send.max.retries", T_INT, F(retries), "2147483647", 0, I32MAX, NULL, -1},
    {"partitioner", NULL, T_ENUM, F(partitioner), "murmur2_random", 0, 0, partitioner_words, -1},
    {"sticky.partitioning.linger.ms", NULL, T_INT, F(sticky_linger_ms), "10", 0, 900000, NULL, -1},
    {"group.id", NULL, T_STR, F(group_id), "", 0, 0, NULL, -1},
    {"group.instance.id", NULL, T_STR, F(group_instance_id), "", 0, 0, NULL, -1},
    {"partition.assignment.strategy", NULL, T_STR, F(partition_assignment_strategy),
     "range,roundrobin", 0, 0, NULL, -1},
    {"session.timeout.ms", NULL, T_INT, F(session_timeout_ms), "45000", 1, 3600000, NULL, -1},
    {"heartbeat.interval.ms", NULL, T_INT, F(heartbeat_interval_ms), "3000", 1, 3600000, NULL, -1},
    {"max.poll.interval.ms", NULL, T_INT, F(max_poll_interval_ms), "300000", 1, 86400000, NULL, -1},
    {"enable.auto.commit", NULL, T_BOOL, F(enable_auto_commit), "true", 0, 1, NULL, -1},
    {"auto.commit.interval.ms", NULL, T_INT, F(auto_commit_interval_ms), "5000", 0, 86400000,
     NULL, -1},
    {"auto.offset.reset", NULL, T_ENUM, F(auto_offset_reset), "latest", 0, 0, reset_words, -1},
    {"fetch.min.bytes", NULL, T_INT, F(fetch_min_bytes), "1", 1, 100000000, NULL, -1},
    {"fetch.wait.max.ms", NULL, T_INT, F(fetch_wait_max_ms), "500", 0, 300000, NULL, -1},
    {"fetch.max.bytes", NULL, T_INT, F(fetch_max_bytes), "52428800", 0, 2147483135, NULL, -1},
    {"max.partition.fetch.bytes", NULL, T_INT, F(max_partition_fetch_bytes), "1048576", 1,
     1000000000, NULL, -1},
    {"isolation.level", NULL, T_ENUM, F(isolation_level), "read_committed", 0, 0,
     isolation_words, -1},
    {"check.crcs", NULL, T_BOOL, F(check_crcs), "false", 0, 1, NULL, -1},
};
#define NKEYS ((int)(sizeof keys / sizeof keys[0]))

int cl_conf_key_count(void) { return NKEYS; }
const char *cl_conf_key_name(int i) { return i >= 0 && i < NKEYS ? keys[i].name : NULL; }

static const desc_t *find_key(const char *key)
{
    for (int i = 0; i < NKEYS; i++)
        if (!strcmp(keys[i].name, key) || (keys[i].alias && !strcmp(keys[i].alias, key)))
            return &keys[i];
    return NULL;
}

__attribute__((format(printf, 3, 4))) static void errf(char *errstr, size_t n,
                                                       const char *fmt, ...)
{
    va_list ap;

    if (!errstr || !n)
        return;
    va_start(ap, fmt);
    vsnprintf(errstr, n, fmt, ap);
    va_end(ap);
}

/* Parses value for d. On success writes the typed value to *iv or *sv (a new
 * string) and returns 0. */
static int parse(const desc_t *d, const char *value, int64_t *iv, char **sv, char *errstr,
                 size_t n)
{
    char *end;
    long long ll;

    switch (d->type) {
    case T_STR:
        if (!(*sv = sc_strdup(value)))
            return SC_ERR_NO_MEMORY;
        return 0;
    case T_BOOL:
        if (!strcmp(value, "true") || !strcmp(value, "1"))
            *iv = 1;
        else if (!strcmp(value, "false") || !strcmp(value, "0"))
            *iv = 0;
        else
            goto bad;
        return 0;
    case T_ENUM:
        for (const enum_word_t *w = d->words; w->word; w++)
            if (!strcmp(w->word, value)) {
                *iv = w->value;
                return 0;
            }
        goto bad;
    case T_INT:
        if (d->off == offsetof(struct strata_conf, acks) && !strcmp(value, "all")) {
            *iv = -1;
            return 0;
        }
        errno = 0;
        ll = strtoll(value, &end, 10);
        if (errno || end == value || *end)
            goto bad;
        if (ll < d->min || ll > d->max) {
            errf(errstr, n, "%s: value %s out of range [%" PRId64 "..%" PRId64 "]", d->name,
                 value, d->min, d->max);
            return SC_ERR_BAD_CONFIG;
        }
        *iv = ll;
        return 0;
    }
bad:
    errf(errstr, n, "%s: invalid value \"%s\"", d->name, value);
    return SC_ERR_BAD_CONFIG;
}

strata_err_t strata_conf_set(strata_conf_t *conf, const char *key, const char *value,
                             char *errstr, size_t errstr_size)
{
    const desc_t *d;
    int64_t iv = 0;
    char *sv = NULL;
    int rc;

    if (!conf || !key || !value) {
        errf(errstr, errstr_size, "strata_conf_set: NULL argument");
        return SC_ERR_BAD_CONFIG;
    }
    if (!(d = find_key(key))) {
        errf(errstr, errstr_size, "unknown configuration key \"%s\"", key);
        return SC_ERR_BAD_CONFIG;
    }
    if ((rc = parse(d, value, &iv, &sv, errstr, errstr_size)))
        return rc;
    if (d->type == T_STR) {
        char **slot = (char **)((char *)conf + d->off);
        sc_free(*slot);
        *slot = sv;
    } else {
        *(int64_t *)((char *)conf + d->off) = iv;
    }
    if (d->explicit_bit >= 0)
        conf->explicit_set |= 1u << d->explicit_bit;
    return 0;
}

strata_conf_t *strata_conf_new(void)
{
    strata_conf_t *c = sc_calloc(1, sizeof *c);

    if (!c)
        return NULL;
    for (int i = 0; i < NKEYS; i++) {
        if (strata_conf_set(c, keys[i].name, keys[i].def, NULL, 0)) {
            strata_conf_free(c);
            return NULL;
        }
    }
    c->explicit_set = 0;
    return c;
}

void strata_conf_free(strata_conf_t *conf)
{
    if (!conf)
        return;
    for (int i = 0; i < NKEYS; i++)
        if (keys[i].type == T_STR)
            sc_free(*(char **)((char *)conf + keys[i].off));
    sc_free(conf);
}

strata_conf_t *strata_conf_dup(const strata_conf_t *conf)
{
    strata_conf_t *c = sc_malloc(sizeof *c);

    if (!c)
        return NULL;
    memcpy(c, conf, sizeof *c);
    for (int i = 0; i < NKEYS; i++)
        if (keys[i].type == T_STR)
            *(char **)((char *)c + keys[i].off) = NULL;
    for (int i = 0; i < NKEYS; i++) {
        if (keys[i].type != T_STR)
            continue;
        char *s = sc_strdup(*(char *const *)((const char *)conf + keys[i].off));
        if (!s) {
            strata_conf_free(c);
            return NULL;
        }
        *(char **)((char *)c + keys[i].off) = s;
    }
    return c;
}

strata_err_t strata_conf_get(const strata_conf_t *conf, const char *key, char *out,
                             size_t *out_size)
{
    const desc_t *d;
    char num[32];
    const char *text = num;
    size_t need;

    if (!conf || !key || !out_size)
        return -EINVAL;
    if (!(d = find_key(key)))
        return SC_ERR_NOT_FOUND;
    if (d->type == T_STR) {
        text = *(char *const *)((const char *)conf + d->off);
    } else {
        int64_t v = *(const int64_t *)((const char *)conf + d->off);
        if (d->type == T_BOOL) {
            text = v ? "true" : "false";
        } else if (d->type == T_ENUM) {
            text = "?";
            for (const enum_word_t *w = d->words; w->word; w++)
                if (w->value == v) {
                    text = w->word;
                    break;
                }
        } else {
            snprintf(num, sizeof num, "%" PRId64, v);
        }
    }
    need = strlen(text) + 1;
    if (!out || *out_size < need) {
        *out_size = need;
        return -EINVAL;
    }
    memcpy(out, text, need);
    *out_size = need;
    return 0;
}
