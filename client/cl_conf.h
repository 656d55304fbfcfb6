/*
 * cl_conf -- the configuration object behind strata_conf_t: a table of keys
 * named as librdkafka names them, each with a type, a default, a range and an
 * offset into struct strata_conf. strata_conf_new applies every default
 * through the same parser that strata_conf_set uses, so a default that does
 * not parse fails the unit test, not a user.
 *
 * Not thread-safe: a conf is built by one thread, then copied by a handle's
 * _new; a handle reads its own copy only.
 */
#ifndef CL_CONF_H
#define CL_CONF_H

#include "strata/client.h"

#include <stdint.h>

enum { CL_CODEC_NONE = 0, CL_CODEC_GZIP = 1, CL_CODEC_SNAPPY = 2, CL_CODEC_LZ4 = 3, CL_CODEC_ZSTD = 4 };
enum { CL_PART_MURMUR2_RANDOM = 0, CL_PART_MURMUR2 = 1 };
enum { CL_RESET_EARLIEST = 0, CL_RESET_LATEST = 1, CL_RESET_ERROR = 2 };
enum { CL_ISO_READ_UNCOMMITTED = 0, CL_ISO_READ_COMMITTED = 1 };

/* Key ids for "was it set explicitly". */
enum { CL_CONF_KEY_ENABLE_IDEMPOTENCE = 0 };

struct strata_conf {
    /* common */
    char *bootstrap_servers;
    char *client_id;
    int64_t request_timeout_ms;
    int64_t socket_timeout_ms;
    int64_t socket_connection_setup_timeout_ms;
    int64_t reconnect_backoff_ms;
    int64_t metadata_max_age_ms;
    int64_t topic_metadata_refresh_interval_ms;
    int64_t retry_backoff_ms;
    int64_t message_max_bytes;
    int64_t max_in_flight;
    /* producer */
    int64_t linger_ms;
    int64_t batch_size;
    int64_t batch_num_messages;
    int64_t compression_type;
    int64_t compression_level;
    int64_t acks;
    int64_t enable_idempotence;
    int64_t queue_buffering_max_kbytes;
    int64_t queue_buffering_max_messages;
    int64_t message_timeout_ms;
    int64_t retries;
    int64_t partitioner;
    int64_t sticky_linger_ms;
    /* consumer */
    char *group_id;
    char *group_instance_id;
    char *partition_assignment_strategy;
    int64_t session_timeout_ms;
    int64_t heartbeat_interval_ms;
    int64_t max_poll_interval_ms;
    int64_t enable_auto_commit;
    int64_t auto_commit_interval_ms;
    int64_t auto_offset_reset;
    int64_t fetch_min_bytes;
    int64_t fetch_wait_max_ms;
    int64_t fetch_max_bytes;
    int64_t max_partition_fetch_bytes;
    int64_t isolation_level;
    int64_t check_crcs;
    /* which keys the application set explicitly (bit = CL_CONF_KEY_*) */
    uint32_t explicit_set;
};

/* Number of keys in the table and the i-th key's canonical name (tests,
 * docs). NULL past the end. */
int cl_conf_key_count(void);
const char *cl_conf_key_name(int i);

#endif
