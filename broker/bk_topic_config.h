/*
 * bk_topic_config -- the topic-level configuration keys (Kafka's names):
 * one table giving each key's type, valid values, the broker key it
 * defaults from (its "synonym", e.g. retention.ms <- log.retention.ms) and
 * help. CreateTopics, AlterConfigs and DescribeConfigs validate and describe
 * with it, the broker's own defaults for these keys are checked with it, and
 * docs/configuration.md's topic table is generated from it.
 *
 * The storage keys (segment.*, retention.*, index.interval.bytes, flush.*)
 * accept exactly what st_log_config_set accepts for the same names; the log
 * manager hook (bk_topics.h) turns a topic's effective values into an
 * st_log_config_t.
 *
 * Pure table + functions: any thread.
 */
#ifndef BK_TOPIC_CONFIG_H
#define BK_TOPIC_CONFIG_H

#include "bk_config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum {
    BK_TCFG_INT,  /* int32 in [min, max] */
    BK_TCFG_LONG, /* int64 in [min, max] */
    BK_TCFG_ENUM, /* one of choices (case-sensitive, as Kafka) */
    BK_TCFG_LIST, /* comma list, each entry one of choices, at least one */
    BK_TCFG_DOUBLE, /* a number in [min, max] */
} bk_tcfg_type_t;

typedef struct {
    const char *name;         /* topic-level key, e.g. "retention.ms" */
    bk_tcfg_type_t type;
    int64_t min, max;         /* INT/LONG */
    const char *const *choices; /* ENUM/LIST: NULL-terminated */
    const char *broker_key;   /* bk_config key the default comes from */
    const char *help;
} bk_topic_key_t;

/* Kafka's DescribeConfigs ConfigSource values (reference.md §4.20). */
enum {
    BK_CFG_SOURCE_TOPIC = 1,         /* DYNAMIC_TOPIC_CONFIG: a topic override */
    BK_CFG_SOURCE_STATIC_BROKER = 4, /* set in server.properties / --override */
    BK_CFG_SOURCE_DEFAULT = 5,       /* the built-in default */
};

/* The table (static) and its length. */
const bk_topic_key_t *bk_topic_config_keys(size_t *n);

/* The row for key, or NULL when it is not a topic-level key. */
const bk_topic_key_t *bk_topic_config_find(const char *key);

/* Checks one key=value. 0, or SC_ERR_INVALID_CONFIG with a reason in why
 * ("unknown topic config 'x'", "retention.ms: not an integer", ...). */
int bk_topic_config_check(const char *key, const char *value, char *why, size_t whylen);

/* Checks a value against k's rules only (used for the broker-level synonyms
 * too). 0 or SC_ERR_INVALID_CONFIG with a reason. */
int bk_topic_config_check_value(const bk_topic_key_t *k, const char *value, char *why,
                                size_t whylen);

/* The broker-wide default of k: the broker synonym's value in cfg, written to
 * buf. Returns BK_CFG_SOURCE_STATIC_BROKER when that key was set explicitly,
 * else BK_CFG_SOURCE_DEFAULT. */
int bk_topic_config_default(const bk_config_t *cfg, const bk_topic_key_t *k, char *buf,
                            size_t len);

/* Writes the topic-level table as Markdown (part of docs/configuration.md).
 * 0 or -EIO. */
int bk_topic_config_print_markdown(FILE *f);

#endif
