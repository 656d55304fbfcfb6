/*
 * bk_config -- the broker's configuration: server.properties + --override.
 *
 * Every key is declared once, in a table in bk_config.c (name, type, default,
 * range, help); parsing, defaults, validation, `stratad --help-config` and
 * docs/configuration.md all come from that table. Key names are Kafka's
 * wherever the concept is Kafka's.
 *
 * File syntax (a subset of java.util.Properties):
 *   - one `key=value` or `key: value` per logical line; whitespace around the
 *     key and the value is trimmed;
 *   - a line whose first non-blank character is `#` or `!` is a comment;
 *   - a line ending in an odd number of backslashes continues on the next
 *     line (the backslash and the next line's leading blanks are dropped);
 *   - no other escapes are interpreted; a later occurrence of a key wins.
 * An unknown key or a bad value is an error naming the key and file:line.
 *
 * Threading: filled once on the main thread before any shard starts, then
 * read-only (shards read it without locks).
 */
#ifndef BK_CONFIG_H
#define BK_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* The parsed configuration. Strings are owned (sc_malloc'd) and freed by
 * bk_config_fini. Lists are stored normalised: entries trimmed, joined by ",". */
typedef struct {
    char *listeners;                         /* listeners */
    char *advertised_listeners;              /* advertised.listeners ("" = listeners) */
    int32_t node_id;                         /* node.id / broker.id */
    char *broker_rack;                       /* broker.rack ("" = none) */
    char *metadata_store;                    /* metadata.store: local | zookeeper */
    char *zookeeper_connect;                 /* zookeeper.connect */
    int32_t zookeeper_session_timeout_ms;    /* zookeeper.session.timeout.ms */
    int64_t replica_lag_time_max_ms;         /* replica.lag.time.max.ms */
    int32_t replica_fetch_wait_max_ms;       /* replica.fetch.wait.max.ms */
    int32_t replica_fetch_max_bytes;         /* replica.fetch.max.bytes (per partition) */
    int32_t replica_fetch_min_bytes;         /* replica.fetch.min.bytes */
    int32_t replica_fetch_backoff_ms;        /* replica.fetch.backoff.ms */
    int controlled_shutdown_enable;          /* controlled.shutdown.enable */
    int auto_leader_rebalance_enable;        /* auto.leader.rebalance.enable */
    int64_t leader_imbalance_check_interval_seconds; /* leader.imbalance.check.interval.seconds */
    int unclean_leader_election_enable;      /* unclean.leader.election.enable */
    char *log_dirs;                          /* log.dirs */
    int32_t num_partitions;                  /* num.partitions */
    int32_t default_replication_factor;      /* default.replication.factor */
    int auto_create_topics_enable;           /* auto.create.topics.enable */
    int32_t message_max_bytes;               /* message.max.bytes */
    int32_t socket_request_max_bytes;        /* socket.request.max.bytes */
    int64_t connections_max_idle_ms;         /* connections.max.idle.ms */
    int32_t log_segment_bytes;               /* log.segment.bytes */
    int64_t log_roll_ms;                     /* log.roll.ms */
    int64_t log_retention_ms;                /* log.retention.ms (-1 = forever) */
    int64_t log_retention_bytes;             /* log.retention.bytes (-1 = unlimited) */
    int64_t log_retention_check_interval_ms; /* log.retention.check.interval.ms */
    int32_t log_index_interval_bytes;        /* log.index.interval.bytes */
    int32_t log_index_size_max_bytes;        /* log.index.size.max.bytes */
    int64_t log_flush_interval_messages;     /* log.flush.interval.messages */
    int64_t log_flush_interval_ms;           /* log.flush.interval.ms */
    char *log_cleanup_policy;                /* log.cleanup.policy */
    int log_cleaner_enable;                  /* log.cleaner.enable */
    int32_t log_cleaner_threads;             /* log.cleaner.threads */
    int64_t log_cleaner_dedupe_buffer_size;  /* log.cleaner.dedupe.buffer.size */
    char *log_cleaner_io_max_bytes_per_second; /* log.cleaner.io.max.bytes.per.second (double) */
    int64_t log_cleaner_backoff_ms;          /* log.cleaner.backoff.ms */
    char *log_cleaner_min_cleanable_ratio;   /* log.cleaner.min.cleanable.ratio (double) */
    int64_t log_cleaner_delete_retention_ms; /* log.cleaner.delete.retention.ms */
    int64_t log_cleaner_min_compaction_lag_ms; /* log.cleaner.min.compaction.lag.ms */
    char *log_message_timestamp_type;        /* log.message.timestamp.type */
    char *compression_type;                  /* compression.type */
    int32_t min_insync_replicas;             /* min.insync.replicas */
    int32_t num_shards;                      /* num.shards (0 = one per core) */
    char *admin_listener;                    /* admin.listener host:port */
    char *log_level;                         /* log.level (sc_log spec) */
    int32_t group_min_session_timeout_ms;    /* group.min.session.timeout.ms */
    int32_t group_max_session_timeout_ms;    /* group.max.session.timeout.ms */
    int32_t group_initial_rebalance_delay_ms; /* group.initial.rebalance.delay.ms */
    int32_t group_max_size;                  /* group.max.size */
    int32_t offsets_topic_num_partitions;    /* offsets.topic.num.partitions */
    int32_t offsets_topic_replication_factor; /* offsets.topic.replication.factor (-1 = min(3, live)) */
    int32_t offsets_retention_minutes;       /* offsets.retention.minutes */
    int64_t offsets_retention_check_interval_ms; /* offsets.retention.check.interval.ms */
    char *plugin_dir;                        /* plugin.dir */
    char *plugins;                           /* plugins (instance names) */
    int plugin_signature_required;           /* plugin.signature.required */
    char *plugin_signature_public_key;       /* plugin.signature.public.key */
    /* plugin.<instance>.<key>=value pairs (full key names), in file order;
     * checked by the plugin host (plugins/host), not by the table */
    char **plugin_kv_keys, **plugin_kv_values;
    size_t plugin_kv_count;

    uint64_t set_mask; /* bit i: table key i was set explicitly (internal) */
} bk_config_t;

typedef enum {
    BK_CFG_INT,    /* int32 */
    BK_CFG_LONG,   /* int64 */
    BK_CFG_BOOL,   /* true / false (case-insensitive) */
    BK_CFG_STRING, /* any text */
    BK_CFG_LIST,   /* comma-separated; entries trimmed */
} bk_cfg_type_t;

/* One row of the key table. */
typedef struct {
    const char *name;
    bk_cfg_type_t type;
    size_t offset;       /* offsetof(bk_config_t, field) */
    const char *def;     /* default, as it would be written in the file */
    int64_t min, max;    /* INT/LONG only */
    const char *alias_of; /* non-NULL: another name for that key */
    /* optional extra check of the parsed text; writes a reason to err */
    int (*check)(const char *value, char *err, size_t errlen);
    const char *help;
} bk_cfg_key_t;

/* A parsed listener "NAME://host:port". host "" means all interfaces. */
typedef struct {
    char name[32]; /* security protocol / listener name, e.g. PLAINTEXT */
    char host[256];
    int port;
} bk_listener_t;

#define BK_LISTENERS_MAX 8

/* ---- lifecycle ------------------------------------------------------------- */

/* Fills cfg with every key's default. 0 or SC_ERR_NO_MEMORY (cfg finalised). */
int bk_config_init(bk_config_t *cfg);
/* Frees the owned strings; cfg may be reused after bk_config_init. */
void bk_config_fini(bk_config_t *cfg);

/* ---- loading ------------------------------------------------------------- */

/* Sets one key from text. 0, or SC_ERR_BAD_CONFIG with "unknown key 'k'" /
 * "bad value 'v' for k: reason" in err, or SC_ERR_NO_MEMORY. cfg keeps its
 * previous value for that key on error. */
int bk_config_set(bk_config_t *cfg, const char *key, const char *value, char *err, size_t errlen);

/* Parses properties text; origin names it in messages ("server.properties").
 * Errors read "<origin>:<line>: <reason>". Stops at the first error. */
int bk_config_load_string(bk_config_t *cfg, const char *text, size_t len, const char *origin,
                          char *err, size_t errlen);

/* Reads and parses a file. Also -errno (message names the path) when it
 * cannot be read. */
int bk_config_load_file(bk_config_t *cfg, const char *path, char *err, size_t errlen);

/* Applies one "--override key=value". Errors read "--override key=value: ...". */
int bk_config_override(bk_config_t *cfg, const char *kv, char *err, size_t errlen);

/* Cross-key checks after everything is loaded (listeners parse, ...).
 * 0 or SC_ERR_BAD_CONFIG with a message. */
int bk_config_validate(const bk_config_t *cfg, char *err, size_t errlen);

/* ---- accessors ------------------------------------------------------------- */

/* The key table (static) and its length. */
const bk_cfg_key_t *bk_config_keys(size_t *n);

/* 1 when key was set explicitly (file or override), 0 when defaulted or
 * unknown. */
int bk_config_is_set(const bk_config_t *cfg, const char *key);

/* Writes key's current value in cfg as the text it would have in the file
 * (ints in decimal, bools as true/false) to buf. 0, or SC_ERR_NOT_FOUND for
 * an unknown key. Truncates to len - 1 chars. */
int bk_config_value_str(const bk_config_t *cfg, const char *key, char *buf, size_t len);

/* Writes the key table as Markdown (docs/configuration.md is this output).
 * Returns 0 or -errno. */
int bk_config_print_markdown(FILE *f);

/* Parses a comma list of listeners into out[0..*n). 0 or SC_ERR_BAD_CONFIG
 * with a reason. Only PLAINTEXT is accepted for now. */
int bk_listeners_parse(const char *list, bk_listener_t *out, int max, int *n, char *err,
                       size_t errlen);

/* Parses "host:port" (host may be empty or [v6]). 0 or SC_ERR_BAD_CONFIG. */
int bk_hostport_parse(const char *s, char *host, size_t hostlen, int *port);

#endif
