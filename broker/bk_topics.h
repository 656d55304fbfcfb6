/*
 * bk_topics -- the broker's topic registry: which topics exist and how many
 * partitions each has. This is the interface Metadata answers from.
 *
 * This session's implementation is in memory only (topics vanish at exit);
 * the storage-backed registry (a partition = an st_log directory under
 * log.dirs, reloaded at start) replaces bk_topics.c behind this same header.
 *
 * Threading: owned by shard 0 and touched only on its loop thread. When more
 * shards run, other shards will ask shard 0 (message + uv_async) or read a
 * published immutable snapshot; nothing here is locked.
 */
#ifndef BK_TOPICS_H
#define BK_TOPICS_H

#include <stddef.h>
#include <stdint.h>

typedef struct bk_topics bk_topics_t;

#define BK_TOPIC_NAME_MAX 249

/* ---- lifecycle ------------------------------------------------------------- */

/* 0 or SC_ERR_NO_MEMORY. *out is the caller's, freed with bk_topics_free. */
int bk_topics_new(bk_topics_t **out);
void bk_topics_free(bk_topics_t *t); /* NULL is a no-op */

/* ---- operations ------------------------------------------------------------- */

/* Creates a topic. 0, SC_ERR_INVALID_TOPIC_EXCEPTION (bad name),
 * SC_ERR_INVALID_PARTITIONS (partitions < 1), SC_ERR_TOPIC_ALREADY_EXISTS,
 * SC_ERR_NO_MEMORY. name need not be NUL-terminated. */
int bk_topics_create(bk_topics_t *t, const char *name, size_t len, int32_t partitions);

/* Looks a topic up. 0 with *partitions set, or SC_ERR_UNKNOWN_TOPIC_OR_PARTITION. */
int bk_topics_find(const bk_topics_t *t, const char *name, size_t len, int32_t *partitions);

/* ---- accessors ------------------------------------------------------------- */

/* Number of topics, and the i-th in creation order (0 <= i < count). The name
 * is NUL-terminated and valid until the topic is deleted or t is freed. */
size_t bk_topics_count(const bk_topics_t *t);
const char *bk_topics_get(const bk_topics_t *t, size_t i, int32_t *partitions);

/* 1 when name is a legal Kafka topic name: 1..249 chars of [a-zA-Z0-9._-],
 * not "." or "..". */
int bk_topic_name_valid(const char *name, size_t len);

#endif
