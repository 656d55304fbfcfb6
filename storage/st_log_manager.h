/*
 * st_log_manager -- every partition log under one or more log dirs.
 *
 * Layout: <log.dir>/<topic>-<partition>/ per partition (st_log.h). Other
 * directories (Kafka's *-delete / *-future, anything unparsable) are skipped
 * with a warning; plain files are ignored.
 *
 * Opening runs st_log_open (recovery) for every partition on a few threads
 * and logs "storage: opened N partitions in M ms from DIRS". Each log gets
 * the io backend the caller's pick callback returns (so the broker can
 * assign partitions to shards); pick runs on the calling thread.
 *
 * Threading: the manager (its map) belongs to one control thread. The logs it
 * holds belong to their io's thread: st_log_manager_close and _delete act on
 * logs, so call them where that is safe (the shard owning the log, or after
 * the shards stopped).
 */
#ifndef ST_LOG_MANAGER_H
#define ST_LOG_MANAGER_H

#include "st_log.h"

#include <stdint.h>

typedef struct st_log_manager st_log_manager_t;

/* Returns the io backend for a partition (borrowed; must outlive its log). */
typedef st_io_t *(*st_log_pick_io_cb)(void *arg, const char *topic, int32_t partition);

typedef struct {
    const char *const *dirs; /* log.dirs; created if absent */
    unsigned ndirs;
    st_log_config_t cfg;     /* config of every log opened or created */
    st_log_pick_io_cb pick_io;
    void *pick_arg;
    unsigned threads;        /* recovery threads; 0 = 4 */
} st_log_manager_opts_t;

/* Opens every partition under opts->dirs. On any failure nothing stays open
 * and the first error is returned (the failing partition is logged):
 * -errno, SC_ERR_NO_MEMORY, SC_ERR_INVALID_CONFIG, SC_ERR_BAD_FORMAT. */
int st_log_manager_open(const st_log_manager_opts_t *opts, st_log_manager_t **out);

/* Closes every log (st_log_close) and frees. Returns 0 or the first error.
 * NULL is a no-op. */
int st_log_manager_close(st_log_manager_t *m);

/* The log of (topic, partition), or NULL. */
st_log_t *st_log_manager_find(const st_log_manager_t *m, const char *topic, int32_t partition);

/* Creates (or opens, if the directory exists) a partition in the log dir
 * holding the fewest partitions, with cfg (NULL: the manager's). Returns 0
 * and *out (may be NULL), -EEXIST when already held, SC_ERR_INVALID_TOPIC_EXCEPTION,
 * or st_log_open's errors. */
int st_log_manager_create(st_log_manager_t *m, const char *topic, int32_t partition,
                          const st_log_config_t *cfg, st_log_t **out);

/* Deletes a partition's log and directory. 0, SC_ERR_UNKNOWN_TOPIC_OR_PARTITION, -errno. */
int st_log_manager_delete(st_log_manager_t *m, const char *topic, int32_t partition);

unsigned st_log_manager_count(const st_log_manager_t *m);

/* Calls cb for every log (order unspecified). cb must not create or delete. */
typedef void (*st_log_manager_each_cb)(void *arg, const char *topic, int32_t partition,
                                       st_log_t *log);
void st_log_manager_foreach(const st_log_manager_t *m, st_log_manager_each_cb cb, void *arg);

/* Parses "<topic>-<partition>" (Kafka's legal topic characters, 1..249 of
 * them; partition a decimal int32 >= 0). topic gets the name (cap >= 250).
 * 0 or -1. */
int st_log_parse_tp(const char *name, char *topic, size_t cap, int32_t *partition);

#endif
