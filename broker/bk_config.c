/* bk_config -- server.properties parsing and the key table. See bk_config.h. */
#include "bk_config.h"
#include "bk_topic_config.h"

#include "sc_err.h"
#include "sc_log.h"
#include "sc_mem.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define OFF(field) offsetof(bk_config_t, field)

static int check_listeners(const char *v, char *err, size_t errlen);
static int check_advertised(const char *v, char *err, size_t errlen);
static int check_hostport(const char *v, char *err, size_t errlen);
static int check_nonempty(const char *v, char *err, size_t errlen);
static int check_log_level(const char *v, char *err, size_t errlen);
static int check_cleanup_policy(const char *v, char *err, size_t errlen);
static int check_timestamp_type(const char *v, char *err, size_t errlen);
static int check_compression_type(const char *v, char *err, size_t errlen);
static int check_cleanable_ratio(const char *v, char *err, size_t errlen);
static int check_positive_double(const char *v, char *err, size_t errlen);
static int check_metadata_store(const char *v, char *err, size_t errlen);

/* The key table. Order = order in docs and in config/server.properties. */
static const bk_cfg_key_t keys[] = {
    {"listeners", BK_CFG_LIST, OFF(listeners), "PLAINTEXT://127.0.0.1:9092", 0, 0, NULL,
     check_listeners,
     "Comma-separated listeners `NAME://host:port` the broker binds. An empty host binds all "
     "interfaces. Only PLAINTEXT is supported so far."},
    {"advertised.listeners", BK_CFG_LIST, OFF(advertised_listeners), "", 0, 0, NULL,
     check_advertised,
     "Listeners published to clients in Metadata, same form as `listeners`. Empty: use "
     "`listeners` (a wildcard host is replaced by the address the client connected to)."},
    {"node.id", BK_CFG_INT, OFF(node_id), "0", 0, INT32_MAX, NULL, NULL,
     "This broker's id in the cluster (Metadata NodeId, ControllerId)."},
    {"broker.id", BK_CFG_INT, OFF(node_id), "0", 0, INT32_MAX, "node.id", NULL,
     "Alias of `node.id` (Kafka's ZooKeeper-mode name). Setting both to different values is "
     "an error."},
    {"broker.rack", BK_CFG_STRING, OFF(broker_rack), "", 0, 0, NULL, NULL,
     "Rack of this broker (cluster mode): when every broker has one, the replicas of a "
     "partition are spread over racks. Shown in Metadata."},
    {"metadata.store", BK_CFG_STRING, OFF(metadata_store), "local", 0, 0, NULL,
     check_metadata_store,
     "Where cluster metadata lives: `local` (a single node; a file in the first log dir, no "
     "other process) or `zookeeper` (cluster mode through `zookeeper.connect`; see "
     "[replication.md](replication.md))."},
    {"zookeeper.connect", BK_CFG_STRING, OFF(zookeeper_connect), "", 0, 0, NULL, NULL,
     "ZooKeeper ensemble for `metadata.store=zookeeper`: `host:port[,host:port...][/chroot]`."},
    {"zookeeper.session.timeout.ms", BK_CFG_INT, OFF(zookeeper_session_timeout_ms), "18000", 1000,
     INT32_MAX, NULL, NULL,
     "ZooKeeper session timeout: a broker that stops heartbeating is taken as dead (its "
     "registration and controller role vanish) after this long. Also bounds the wait for "
     "the first session at start."},
    {"replica.lag.time.max.ms", BK_CFG_LONG, OFF(replica_lag_time_max_ms), "30000", 1, INT64_MAX,
     NULL, NULL,
     "Cluster mode: a follower that has not caught up with the leader's log end for this long "
     "leaves the ISR; it is re-admitted once it has caught up."},
    {"replica.fetch.wait.max.ms", BK_CFG_INT, OFF(replica_fetch_wait_max_ms), "500", 0,
     INT32_MAX, NULL, NULL,
     "Cluster mode: how long a leader may park a follower's Fetch that has nothing new (each "
     "leader has its own fetch in flight, so this does not delay the others). At most "
     "`replica.lag.time.max.ms`."},
    {"replica.fetch.max.bytes", BK_CFG_INT, OFF(replica_fetch_max_bytes), "1048576", 1,
     INT32_MAX, NULL, NULL,
     "Cluster mode: bytes a follower asks for per partition in one Fetch (a larger first batch "
     "still comes whole)."},
    {"replica.fetch.min.bytes", BK_CFG_INT, OFF(replica_fetch_min_bytes), "1", 1, INT32_MAX,
     NULL, NULL,
     "Cluster mode: bytes a leader waits for (up to `replica.fetch.wait.max.ms`) before it "
     "answers a follower's Fetch."},
    {"replica.fetch.backoff.ms", BK_CFG_INT, OFF(replica_fetch_backoff_ms), "1000", 0,
     INT32_MAX, NULL, NULL,
     "Cluster mode: how long a follower leaves a partition alone after its leader answered it "
     "with an error, and the longest wait between attempts to reconnect to a leader (at least "
     "50 ms)."},
    {"controlled.shutdown.enable", BK_CFG_BOOL, OFF(controlled_shutdown_enable), "true", 0, 0,
     NULL, NULL,
     "Cluster mode: on SIGTERM, give up the registration first and wait (up to 10 s) until "
     "the controller has moved the leadership of every partition this broker leads to "
     "another in-sync replica, then stop."},
    {"auto.leader.rebalance.enable", BK_CFG_BOOL, OFF(auto_leader_rebalance_enable), "true", 0,
     0, NULL, NULL,
     "Cluster mode: the controller gives each partition back to its preferred (first) "
     "replica when that replica is live and in the ISR, every "
     "`leader.imbalance.check.interval.seconds` (Kafka's per-broker imbalance threshold is "
     "not applied: any such partition moves)."},
    {"leader.imbalance.check.interval.seconds", BK_CFG_LONG,
     OFF(leader_imbalance_check_interval_seconds), "300", 1, 86400, NULL, NULL,
     "How often the controller runs the preferred-leader election."},
    {"unclean.leader.election.enable", BK_CFG_BOOL, OFF(unclean_leader_election_enable), "false",
     0, 0, NULL, NULL,
     "Cluster mode: when no in-sync replica of a partition is alive, let the controller make a "
     "live replica outside the ISR its leader (a WARN is logged; records only the old ISR had "
     "are lost). False keeps the partition without a leader (LEADER_NOT_AVAILABLE) until an "
     "in-sync replica returns. Topic-level key of the same name."},
    {"log.dirs", BK_CFG_LIST, OFF(log_dirs), "./data", 0, 0, NULL, check_nonempty,
     "Directories that hold partition data, comma-separated; new partitions go to the one "
     "holding the fewest. The first also holds the cluster metadata."},
    {"num.partitions", BK_CFG_INT, OFF(num_partitions), "1", 1, 1000000, NULL, NULL,
     "Partitions of an auto-created topic."},
    {"default.replication.factor", BK_CFG_INT, OFF(default_replication_factor), "1", 1, 32767,
     NULL, NULL, "Replication factor of an auto-created topic."},
    {"auto.create.topics.enable", BK_CFG_BOOL, OFF(auto_create_topics_enable), "true", 0, 0, NULL,
     NULL,
     "Create a topic when a client asks Metadata for one that does not exist (and, for "
     "Metadata v4+, the request allows it)."},
    {"message.max.bytes", BK_CFG_INT, OFF(message_max_bytes), "1048588", 0, INT32_MAX, NULL, NULL,
     "Largest record batch the broker accepts (topic-level `max.message.bytes`)."},
    {"socket.request.max.bytes", BK_CFG_INT, OFF(socket_request_max_bytes), "104857600", 1,
     INT32_MAX, NULL, NULL,
     "Largest request frame; a larger (or negative) size prefix closes the connection."},
    {"connections.max.idle.ms", BK_CFG_LONG, OFF(connections_max_idle_ms), "600000", 1,
     INT64_MAX, NULL, NULL,
     "Close a connection that has had no request in flight and no traffic for this long."},
    {"log.segment.bytes", BK_CFG_INT, OFF(log_segment_bytes), "1073741824", 14, INT32_MAX, NULL,
     NULL, "Roll to a new segment when the active one reaches this size."},
    {"log.roll.ms", BK_CFG_LONG, OFF(log_roll_ms), "604800000", 1, INT64_MAX, NULL, NULL,
     "Roll to a new segment when the active one's first record is this old (Kafka: "
     "log.roll.hours = 168)."},
    {"log.retention.ms", BK_CFG_LONG, OFF(log_retention_ms), "604800000", -1, INT64_MAX, NULL,
     NULL, "Delete segments whose newest record is older than this; -1 keeps them forever."},
    {"log.retention.bytes", BK_CFG_LONG, OFF(log_retention_bytes), "-1", -1, INT64_MAX, NULL, NULL,
     "Delete the oldest segments while a partition is larger than this; -1 = no limit."},
    {"log.retention.check.interval.ms", BK_CFG_LONG, OFF(log_retention_check_interval_ms),
     "300000", 1, INT64_MAX, NULL, NULL, "How often retention is checked."},
    {"log.index.interval.bytes", BK_CFG_INT, OFF(log_index_interval_bytes), "4096", 0, INT32_MAX,
     NULL, NULL, "Bytes of log between two offset-index entries."},
    {"log.index.size.max.bytes", BK_CFG_INT, OFF(log_index_size_max_bytes), "10485760", 4,
     INT32_MAX, NULL, NULL, "Maximum size of an offset or time index file; a full index rolls the segment."},
    {"log.flush.interval.messages", BK_CFG_LONG, OFF(log_flush_interval_messages), "1", 1,
     INT64_MAX, NULL, NULL,
     "fdatasync after this many messages. Strata's default 1 makes every acknowledged write "
     "durable (Kafka's default leaves flushing to the OS: 9223372036854775807)."},
    {"log.flush.interval.ms", BK_CFG_LONG, OFF(log_flush_interval_ms), "9223372036854775807", 0,
     INT64_MAX, NULL, NULL,
     "fdatasync when unflushed data is this old; the default never flushes by time."},
    {"log.cleanup.policy", BK_CFG_LIST, OFF(log_cleanup_policy), "delete", 0, 0, NULL,
     check_cleanup_policy,
     "Default `cleanup.policy` of topics: `delete`, `compact` or `delete,compact`."},
    {"log.cleaner.enable", BK_CFG_BOOL, OFF(log_cleaner_enable), "true", 0, 0, NULL, NULL,
     "Run the log cleaner, which compacts topics whose `cleanup.policy` contains `compact` "
     "(docs/compaction.md)."},
    {"log.cleaner.threads", BK_CFG_INT, OFF(log_cleaner_threads), "1", 1, 64, NULL, NULL,
     "Cleaner threads; each cleans one partition at a time."},
    {"log.cleaner.dedupe.buffer.size", BK_CFG_LONG, OFF(log_cleaner_dedupe_buffer_size),
     "134217728", 1024, INT64_MAX, NULL, NULL,
     "Memory for the cleaners' key -> offset maps, split between the threads (24 bytes per "
     "key, filled to 90%); a dirty section with more keys is cleaned a prefix at a time."},
    {"log.cleaner.io.max.bytes.per.second", BK_CFG_STRING,
     OFF(log_cleaner_io_max_bytes_per_second), "1.7976931348623157E308", 0, 0, NULL,
     check_positive_double,
     "Bytes per second the cleaners may read plus write, all threads together (a token bucket "
     "with a one-second burst); the default is unlimited."},
    {"log.cleaner.backoff.ms", BK_CFG_LONG, OFF(log_cleaner_backoff_ms), "15000", 0, INT64_MAX,
     NULL, NULL, "How often each shard looks for a partition to clean."},
    {"log.cleaner.min.cleanable.ratio", BK_CFG_STRING, OFF(log_cleaner_min_cleanable_ratio),
     "0.5", 0, 0, NULL, check_cleanable_ratio,
     "Default `min.cleanable.dirty.ratio` of topics."},
    {"log.cleaner.delete.retention.ms", BK_CFG_LONG, OFF(log_cleaner_delete_retention_ms),
     "86400000", 0, INT64_MAX, NULL, NULL, "Default `delete.retention.ms` of topics."},
    {"log.cleaner.min.compaction.lag.ms", BK_CFG_LONG, OFF(log_cleaner_min_compaction_lag_ms),
     "0", 0, INT64_MAX, NULL, NULL, "Default `min.compaction.lag.ms` of topics."},
    {"log.message.timestamp.type", BK_CFG_STRING, OFF(log_message_timestamp_type), "CreateTime",
     0, 0, NULL, check_timestamp_type,
     "Default `message.timestamp.type` of topics: `CreateTime` or `LogAppendTime`."},
    {"compression.type", BK_CFG_STRING, OFF(compression_type), "producer", 0, 0, NULL,
     check_compression_type,
     "Default `compression.type` of topics: `producer` (keep the producer's codec), "
     "`uncompressed`, `gzip`, `snappy`, `lz4` or `zstd`."},
    {"min.insync.replicas", BK_CFG_INT, OFF(min_insync_replicas), "1", 1, INT32_MAX, NULL, NULL,
     "Default `min.insync.replicas` of topics: acks=all produce needs this many in-sync "
     "replicas."},
    {"group.min.session.timeout.ms", BK_CFG_INT, OFF(group_min_session_timeout_ms), "6000", 1,
     INT32_MAX, NULL, NULL,
     "Smallest session timeout a JoinGroup may ask for (else INVALID_SESSION_TIMEOUT)."},
    {"group.max.session.timeout.ms", BK_CFG_INT, OFF(group_max_session_timeout_ms), "1800000", 1,
     INT32_MAX, NULL, NULL,
     "Largest session timeout a JoinGroup may ask for (else INVALID_SESSION_TIMEOUT)."},
    {"group.initial.rebalance.delay.ms", BK_CFG_INT, OFF(group_initial_rebalance_delay_ms), "500",
     0, INT32_MAX, NULL, NULL,
     "How long the first rebalance of an empty group waits for more members (extended per "
     "joining member, capped by the rebalance timeout). Kafka's default is 3000; Strata uses "
     "500 so a single consumer starts within half a second while members started together "
     "still land in one generation."},
    {"group.max.size", BK_CFG_INT, OFF(group_max_size), "2147483647", 1, INT32_MAX, NULL, NULL,
     "Most members a consumer group may have; a JoinGroup that would exceed it gets "
     "GROUP_MAX_SIZE_REACHED (81) (Kafka's rules; a static member replacing its own "
     "group.instance.id is always accepted)."},
    {"offsets.topic.num.partitions", BK_CFG_INT, OFF(offsets_topic_num_partitions), "50", 1,
     1000, NULL, NULL,
     "Partitions of `__consumer_offsets` when the broker creates it (first start); an existing "
     "topic keeps its count. A group's commits go to partition abs(hash(group id)) % count."},
    {"offsets.topic.replication.factor", BK_CFG_INT, OFF(offsets_topic_replication_factor), "-1",
     -1, 32767, NULL, NULL,
     "Cluster mode: replication factor of `__consumer_offsets` when a broker creates it; -1 = "
     "min(3, live brokers); a value above the live brokers waits for them (FindCoordinator answers "
     "COORDINATOR_NOT_AVAILABLE meanwhile)."},
    {"offsets.retention.minutes", BK_CFG_INT, OFF(offsets_retention_minutes), "10080", 1,
     INT32_MAX, NULL, NULL,
     "Committed offsets of a group that has been empty this long expire (Kafka 3.7 rules: "
     "from when the group became Empty; from each commit for a group that never had members "
     "since the broker started; at the commit's own expire time when OffsetCommit v2-v4 gave "
     "a retention time). Expired offsets get a tombstone in `__consumer_offsets`; an Empty "
     "group left without offsets is removed."},
    {"offsets.retention.check.interval.ms", BK_CFG_LONG, OFF(offsets_retention_check_interval_ms),
     "600000", 1, INT64_MAX, NULL, NULL, "How often the coordinator looks for expired offsets."},
    {"num.shards", BK_CFG_INT, OFF(num_shards), "0", 0, 1024, NULL, NULL,
     "Data-path threads (one libuv loop + io_uring ring each); 0 = one per core. Strata-only."},
    {"admin.listener", BK_CFG_STRING, OFF(admin_listener), "127.0.0.1:9644", 0, 0, NULL,
     check_hostport, "host:port of the admin HTTP endpoint (/metrics, /v1/health). Strata-only."},
    {"log.level", BK_CFG_STRING, OFF(log_level), "info", 0, 0, NULL, check_log_level,
     "Log level, optionally per subsystem: `info` or `info,net=debug,storage=warn`. "
     "Strata-only."},
    {"plugin.dir", BK_CFG_STRING, OFF(plugin_dir), "", 0, 0, NULL, NULL,
     "Directory plugin libraries are loaded from (and only from); it and each library must "
     "not be writable by others (world-writable, or group-writable by another group, is "
     "refused). Each instance is configured with `plugin.<instance>.<key>=value` keys or a "
     "`plugin.<instance>.config.file`; see [plugins.md](plugins.md). Strata-only."},
    {"plugins", BK_CFG_LIST, OFF(plugins), "", 0, 0, NULL, NULL,
     "Plugin instances to run, by name (`plc1,lora`); each needs `plugin.<name>.library` and "
     "`plugin.<name>.topic`. A bad instance config stops the broker with a message naming the "
     "instance and the key. Strata-only."},
    {"plugin.signature.required", BK_CFG_BOOL, OFF(plugin_signature_required), "false", 0, 0,
     NULL, NULL,
     "Load a plugin library only if `<library>.sig` (a raw 64-byte Ed25519 signature of the "
     "file) verifies with `plugin.signature.public.key`. Strata-only."},
    {"plugin.signature.public.key", BK_CFG_STRING, OFF(plugin_signature_public_key), "", 0, 0,
     NULL, NULL, "PEM file with the Ed25519 public key that plugin signatures are checked "
     "against. Strata-only."},
};

#define NKEYS (sizeof keys / sizeof keys[0])
_Static_assert(NKEYS <= 64, "set_mask has 64 bits");

static void errf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void errf(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* ---- value checks ---------------------------------------------------------- */

int bk_hostport_parse(const char *s, char *host, size_t hostlen, int *port)
{
    const char *colon;
    const char *h = s;
    size_t hl;
    if (s[0] == '[') { /* [v6addr]:port */
        const char *rb = strchr(s, ']');
        if (!rb || rb[1] != ':')
            return SC_ERR_BAD_CONFIG;
        h = s + 1;
        hl = (size_t)(rb - h);
        colon = rb + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon)
            return SC_ERR_BAD_CONFIG;
        hl = (size_t)(colon - s);
        if (memchr(s, ':', hl)) /* bare v6 needs brackets */
            return SC_ERR_BAD_CONFIG;
    }
    if (hl >= hostlen)
        return SC_ERR_BAD_CONFIG;
    char *end;
    errno = 0;
    long p = strtol(colon + 1, &end, 10);
    if (errno || end == colon + 1 || *end || p < 0 || p > 65535)
        return SC_ERR_BAD_CONFIG;
    memcpy(host, h, hl);
    host[hl] = 0;
    *port = (int)p;
    return 0;
}

int bk_listeners_parse(const char *list, bk_listener_t *out, int max, int *n, char *err,
                       size_t errlen)
{
    int count = 0;
    const char *p = list;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char one[320];
        if (len >= sizeof one) {
            errf(err, errlen, "listener too long");
            return SC_ERR_BAD_CONFIG;
        }
        memcpy(one, p, len);
        one[len] = 0;
        const char *sep = strstr(one, "://");
        if (!sep || sep == one || (size_t)(sep - one) >= sizeof out->name) {
            errf(err, errlen, "listener '%s' is not NAME://host:port", one);
            return SC_ERR_BAD_CONFIG;
        }
        if (count >= max) {
            errf(err, errlen, "more than %d listeners", max);
            return SC_ERR_BAD_CONFIG;
        }
        bk_listener_t *l = &out[count];
        memcpy(l->name, one, (size_t)(sep - one));
        l->name[sep - one] = 0;
        if (strcmp(l->name, "PLAINTEXT") != 0) {
            errf(err, errlen, "listener '%s': only PLAINTEXT is supported so far", one);
            return SC_ERR_BAD_CONFIG;
        }
        if (bk_hostport_parse(sep + 3, l->host, sizeof l->host, &l->port)) {
            errf(err, errlen, "listener '%s': bad host:port", one);
            return SC_ERR_BAD_CONFIG;
        }
        for (int i = 0; i < count; i++) {
            if (strcmp(out[i].name, l->name) == 0) {
                errf(err, errlen, "listener name %s used twice", l->name);
                return SC_ERR_BAD_CONFIG;
            }
        }
        count++;
        p += len;
        if (*p == ',')
            p++;
    }
    *n = count;
    return 0;
}

static int check_listeners(const char *v, char *err, size_t errlen)
{
    bk_listener_t ls[BK_LISTENERS_MAX];
    int n;
    int rc = bk_listeners_parse(v, ls, BK_LISTENERS_MAX, &n, err, errlen);
    if (!rc && n == 0) {
        errf(err, errlen, "at least one listener is needed");
        rc = SC_ERR_BAD_CONFIG;
    }
    return rc;
}

static int check_advertised(const char *v, char *err, size_t errlen)
{
    bk_listener_t ls[BK_LISTENERS_MAX];
    int n;
    return bk_listeners_parse(v, ls, BK_LISTENERS_MAX, &n, err, errlen);
}

static int check_hostport(const char *v, char *err, size_t errlen)
{
    char host[256];
    int port;
    if (bk_hostport_parse(v, host, sizeof host, &port)) {
        errf(err, errlen, "expected host:port");
        return SC_ERR_BAD_CONFIG;
    }
    return 0;
}

static int check_nonempty(const char *v, char *err, size_t errlen)
{
    if (!*v) {
        errf(err, errlen, "must not be empty");
        return SC_ERR_BAD_CONFIG;
    }
    return 0;
}

/* The broker defaults of topic keys accept what the topic keys accept. */
static int check_topic_synonym(const char *topic_key, const char *v, char *err, size_t errlen)
{
    char why[256];
    if (bk_topic_config_check_value(bk_topic_config_find(topic_key), v, why, sizeof why)) {
        /* why reads "<topic key>: reason"; the caller names the broker key */
        const char *colon = strstr(why, ": ");
        errf(err, errlen, "%s", colon ? colon + 2 : why);
        return SC_ERR_BAD_CONFIG;
    }
    return 0;
}

static int check_cleanup_policy(const char *v, char *err, size_t errlen)
{
    return check_topic_synonym("cleanup.policy", v, err, errlen);
}

static int check_cleanable_ratio(const char *v, char *err, size_t errlen)
{
    return check_topic_synonym("min.cleanable.dirty.ratio", v, err, errlen);
}

static int check_positive_double(const char *v, char *err, size_t errlen)
{
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (end == v || *end || !(d > 0) || (errno == ERANGE && d < 1)) {
        errf(err, errlen, "'%s' is not a positive number", v);
        return SC_ERR_BAD_CONFIG;
    }
    return 0;
}

static int check_timestamp_type(const char *v, char *err, size_t errlen)
{
    return check_topic_synonym("message.timestamp.type", v, err, errlen);
}

static int check_compression_type(const char *v, char *err, size_t errlen)
{
    return check_topic_synonym("compression.type", v, err, errlen);
}

static int check_metadata_store(const char *v, char *err, size_t errlen)
{
    if (strcmp(v, "local") == 0 || strcmp(v, "zookeeper") == 0)
        return 0;
    errf(err, errlen, "expected local or zookeeper");
    return SC_ERR_BAD_CONFIG;
}

/* Accepts what sc_log_configure accepts: "level" and "subsys=level" parts. */
static int check_log_level(const char *v, char *err, size_t errlen)
{
    char buf[256];
    if (strlen(v) >= sizeof buf || !*v) {
        errf(err, errlen, "expected a level such as info or info,net=debug");
        return SC_ERR_BAD_CONFIG;
    }
    strcpy(buf, v);
    char *save = NULL;
    for (char *part = strtok_r(buf, ",", &save); part; part = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(part, '=');
        const char *lvl = eq ? eq + 1 : part;
        if ((eq && eq == part) || sc_log_level_parse(lvl) < 0) {
            errf(err, errlen, "unknown level '%s' (error, warn, info, debug, trace)", part);
            return SC_ERR_BAD_CONFIG;
        }
    }
    return 0;
}

/* ---- setting values ------------------------------------------------------ */

static const bk_cfg_key_t *find_key(const char *name, size_t *idx)
{
    for (size_t i = 0; i < NKEYS; i++) {
        if (strcmp(keys[i].name, name) == 0) {
            *idx = i;
            return &keys[i];
        }
    }
    return NULL;
}

static int parse_int(const char *v, int64_t min, int64_t max, int64_t *out, char *err,
                     size_t errlen)
{
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (!*v || *end || errno == ERANGE || isspace((unsigned char)*v)) {
        errf(err, errlen, "not an integer");
        return SC_ERR_BAD_CONFIG;
    }
    if (x < min || x > max) {
        errf(err, errlen, "out of range [%lld, %lld]", (long long)min, (long long)max);
        return SC_ERR_BAD_CONFIG;
    }
    *out = x;
    return 0;
}

/* Normalises a list: trims every entry, drops empty ones, joins with ",". */
static char *normalise_list(const char *v)
{
    size_t n = strlen(v);
    char *out = sc_malloc(n + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    const char *p = v;
    while (1) {
        const char *comma = strchr(p, ',');
        const char *e = comma ? comma : p + strlen(p);
        const char *s = p;
        while (s < e && isspace((unsigned char)*s))
            s++;
        const char *t = e;
        while (t > s && isspace((unsigned char)t[-1]))
            t--;
        if (t > s) {
            if (o)
                out[o++] = ',';
            memcpy(out + o, s, (size_t)(t - s));
            o += (size_t)(t - s);
        }
        if (!comma)
            break;
        p = comma + 1;
    }
    out[o] = 0;
    return out;
}

static int set_value(bk_config_t *cfg, const bk_cfg_key_t *k, const char *value, char *err,
                     size_t errlen)
{
    char reason[200] = "";
    int rc = 0;
    char *s = NULL;
    void *field = (char *)cfg + k->offset;

    switch (k->type) {
    case BK_CFG_INT:
    case BK_CFG_LONG: {
        int64_t x;
        rc = parse_int(value, k->min, k->max, &x, reason, sizeof reason);
        if (rc)
            goto out;
        if (k->type == BK_CFG_INT)
            *(int32_t *)field = (int32_t)x;
        else
            *(int64_t *)field = x;
        break;
    }
    case BK_CFG_BOOL:
        if (strcasecmp(value, "true") == 0) {
            *(int *)field = 1;
        } else if (strcasecmp(value, "false") == 0) {
            *(int *)field = 0;
        } else {
            snprintf(reason, sizeof reason, "expected true or false");
            rc = SC_ERR_BAD_CONFIG;
            goto out;
        }
        break;
    case BK_CFG_STRING:
    case BK_CFG_LIST:
        s = k->type == BK_CFG_LIST ? normalise_list(value) : sc_strdup(value);
        if (!s) {
            rc = SC_ERR_NO_MEMORY;
            snprintf(reason, sizeof reason, "out of memory");
            goto out;
        }
        if (k->check && (rc = k->check(s, reason, sizeof reason)))
            goto out;
        sc_free(*(char **)field);
        *(char **)field = s;
        s = NULL;
        break;
    }
out:
    sc_free(s);
    if (rc)
        errf(err, errlen, "bad value '%s' for %s: %s", value, k->name, reason);
    return rc;
}

/* Records plugin.<instance>.<key>=value (a later occurrence wins). */
static int set_plugin_kv(bk_config_t *cfg, const char *key, const char *value)
{
    for (size_t i = 0; i < cfg->plugin_kv_count; i++)
        if (strcmp(cfg->plugin_kv_keys[i], key) == 0) {
            char *v = sc_strdup(value);
            if (!v)
                return SC_ERR_NO_MEMORY;
            sc_free(cfg->plugin_kv_values[i]);
            cfg->plugin_kv_values[i] = v;
            return 0;
        }
    size_t n = cfg->plugin_kv_count + 1;
    char **k = sc_realloc(cfg->plugin_kv_keys, n * sizeof *k);
    if (!k)
        return SC_ERR_NO_MEMORY;
    cfg->plugin_kv_keys = k;
    char **v = sc_realloc(cfg->plugin_kv_values, n * sizeof *v);
    if (!v)
        return SC_ERR_NO_MEMORY;
    cfg->plugin_kv_values = v;
    k[n - 1] = sc_strdup(key);
    v[n - 1] = sc_strdup(value);
    if (!k[n - 1] || !v[n - 1]) {
        sc_free(k[n - 1]);
        sc_free(v[n - 1]);
        return SC_ERR_NO_MEMORY;
    }
    cfg->plugin_kv_count = n;
    return 0;
}

int bk_config_set(bk_config_t *cfg, const char *key, const char *value, char *err, size_t errlen)
{
    size_t idx;
    const bk_cfg_key_t *k = find_key(key, &idx);
    if (!k && strncmp(key, "plugin.", 7) == 0 && strchr(key + 7, '.') && key[7] != '.')
        return set_plugin_kv(cfg, key, value); /* plugin.<instance>.<key>: the plugin host checks */
    if (!k) {
        errf(err, errlen, "unknown key '%s'", key);
        return SC_ERR_BAD_CONFIG;
    }
    /* node.id and broker.id share a field: both set to different values is an
     * error (as in Kafka), whichever comes first. */
    size_t other;
    const bk_cfg_key_t *twin = NULL;
    if (k->alias_of)
        twin = find_key(k->alias_of, &other);
    else
        for (other = 0; other < NKEYS; other++)
            if (keys[other].alias_of && strcmp(keys[other].alias_of, k->name) == 0) {
                twin = &keys[other];
                break;
            }
    int64_t before = 0;
    if (twin && (cfg->set_mask >> other & 1) && k->type == BK_CFG_INT)
        before = *(int32_t *)((char *)cfg + k->offset);
    int rc = set_value(cfg, k, value, err, errlen);
    if (rc)
        return rc;
    if (twin && (cfg->set_mask >> other & 1) && k->type == BK_CFG_INT &&
        before != *(int32_t *)((char *)cfg + k->offset)) {
        *(int32_t *)((char *)cfg + k->offset) = (int32_t)before;
        errf(err, errlen, "%s=%s disagrees with %s=%lld", k->name, value, twin->name,
             (long long)before);
        return SC_ERR_BAD_CONFIG;
    }
    cfg->set_mask |= UINT64_C(1) << idx;
    return 0;
}

/* ---- lifecycle ------------------------------------------------------------- */

int bk_config_init(bk_config_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    for (size_t i = 0; i < NKEYS; i++) {
        if (keys[i].alias_of)
            continue;
        char err[256];
        int rc = set_value(cfg, &keys[i], keys[i].def, err, sizeof err);
        if (rc) {
            bk_config_fini(cfg);
            return rc == SC_ERR_NO_MEMORY ? rc : SC_ERR_BAD_CONFIG;
        }
    }
    cfg->set_mask = 0;
    return 0;
}

void bk_config_fini(bk_config_t *cfg)
{
    for (size_t i = 0; i < NKEYS; i++) {
        if (keys[i].type == BK_CFG_STRING || keys[i].type == BK_CFG_LIST) {
            char **f = (char **)((char *)cfg + keys[i].offset);
            sc_free(*f);
            *f = NULL;
        }
    }
    for (size_t i = 0; i < cfg->plugin_kv_count; i++) {
        sc_free(cfg->plugin_kv_keys[i]);
        sc_free(cfg->plugin_kv_values[i]);
    }
    sc_free(cfg->plugin_kv_keys);
    sc_free(cfg->plugin_kv_values);
    cfg->plugin_kv_keys = cfg->plugin_kv_values = NULL;
    cfg->plugin_kv_count = 0;
}

/* ---- parsing -------------------------------------------------------------- */

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        s[--n] = 0;
    return s;
}

/* Handles one logical line (continuations already joined, NUL-terminated). */
static int parse_line(bk_config_t *cfg, char *line, const char *origin, int lineno, char *err,
                      size_t errlen)
{
    char *s = trim(line);
    if (!*s || *s == '#' || *s == '!')
        return 0;
    size_t klen = strcspn(s, "=:");
    if (!s[klen]) {
        errf(err, errlen, "%s:%d: expected key=value, got '%s'", origin, lineno, s);
        return SC_ERR_BAD_CONFIG;
    }
    s[klen] = 0;
    char *key = trim(s);
    char *value = trim(s + klen + 1);
    if (!*key) {
        errf(err, errlen, "%s:%d: empty key", origin, lineno);
        return SC_ERR_BAD_CONFIG;
    }
    char why[512];
    int rc = bk_config_set(cfg, key, value, why, sizeof why);
    if (rc)
        errf(err, errlen, "%s:%d: %s", origin, lineno, why);
    return rc;
}

int bk_config_load_string(bk_config_t *cfg, const char *text, size_t len, const char *origin,
                          char *err, size_t errlen)
{
    int rc = 0;
    char *logical = sc_malloc(len + 1); /* a logical line is never longer than the text */
    if (!logical)
        return SC_ERR_NO_MEMORY;
    size_t pos = 0;
    int lineno = 0;
    while (pos < len) {
        size_t ll = 0;
        int start = lineno + 1;
        int continued = 0;
        do {
            lineno++;
            size_t e = pos;
            while (e < len && text[e] != '\n')
                e++;
            size_t seg = e - pos;
            if (seg && text[pos + seg - 1] == '\r')
                seg--;
            const char *p = text + pos;
            if (continued) { /* drop the continuation line's leading blanks */
                while (seg && (*p == ' ' || *p == '\t' || *p == '\f')) {
                    p++;
                    seg--;
                }
            }
            size_t bs = 0;
            while (bs < seg && p[seg - 1 - bs] == '\\')
                bs++;
            int is_comment = !continued && seg && (p[strspn(p, " \t\f")] == '#' ||
                                                   p[strspn(p, " \t\f")] == '!');
            continued = (bs % 2 == 1) && !is_comment;
            if (continued)
                seg--;
            memcpy(logical + ll, p, seg);
            ll += seg;
            pos = e < len ? e + 1 : e;
        } while (continued && pos < len);
        logical[ll] = 0;
        if (strlen(logical) != ll) {
            errf(err, errlen, "%s:%d: NUL byte in line", origin, start);
            rc = SC_ERR_BAD_CONFIG;
            goto out;
        }
        if ((rc = parse_line(cfg, logical, origin, start, err, errlen)))
            goto out;
    }
out:
    sc_free(logical);
    return rc;
}

int bk_config_load_file(bk_config_t *cfg, const char *path, char *err, size_t errlen)
{
    int rc = 0;
    char *text = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = -errno;
        errf(err, errlen, "%s: %s", path, strerror(errno));
        goto out;
    }
    struct stat st;
    if (fstat(fd, &st) < 0) {
        rc = -errno;
        errf(err, errlen, "%s: %s", path, strerror(errno));
        goto out;
    }
    if (st.st_size > 16 * 1024 * 1024) {
        rc = SC_ERR_BAD_CONFIG;
        errf(err, errlen, "%s: larger than 16 MiB", path);
        goto out;
    }
    size_t cap = (size_t)st.st_size, len = 0;
    text = sc_malloc(cap + 1);
    if (!text) {
        rc = SC_ERR_NO_MEMORY;
        goto out;
    }
    while (len < cap) {
        ssize_t r = read(fd, text + len, cap - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = -errno;
            errf(err, errlen, "%s: %s", path, strerror(errno));
            goto out;
        }
        if (r == 0)
            break;
        len += (size_t)r;
    }
    rc = bk_config_load_string(cfg, text, len, path, err, errlen);
out:
    sc_free(text);
    if (fd >= 0)
        close(fd);
    return rc;
}

int bk_config_override(bk_config_t *cfg, const char *kv, char *err, size_t errlen)
{
    int rc = 0;
    char why[512];
    char *copy = sc_strdup(kv);
    if (!copy)
        return SC_ERR_NO_MEMORY;
    char *eq = strchr(copy, '=');
    if (!eq) {
        errf(err, errlen, "--override %s: expected key=value", kv);
        rc = SC_ERR_BAD_CONFIG;
        goto out;
    }
    *eq = 0;
    if ((rc = bk_config_set(cfg, trim(copy), trim(eq + 1), why, sizeof why)))
        errf(err, errlen, "--override %s: %s", kv, why);
out:
    sc_free(copy);
    return rc;
}

int bk_config_validate(const bk_config_t *cfg, char *err, size_t errlen)
{
    bk_listener_t ls[BK_LISTENERS_MAX], adv[BK_LISTENERS_MAX];
    int n, na;
    char why[256];
    if (bk_listeners_parse(cfg->listeners, ls, BK_LISTENERS_MAX, &n, why, sizeof why) || !n) {
        errf(err, errlen, "listeners: %s", n ? why : "at least one listener is needed");
        return SC_ERR_BAD_CONFIG;
    }
    if (bk_listeners_parse(cfg->advertised_listeners, adv, BK_LISTENERS_MAX, &na, why,
                           sizeof why)) {
        errf(err, errlen, "advertised.listeners: %s", why);
        return SC_ERR_BAD_CONFIG;
    }
    for (int i = 0; i < na; i++) {
        int found = 0;
        for (int j = 0; j < n; j++)
            found |= strcmp(adv[i].name, ls[j].name) == 0;
        if (!found) {
            errf(err, errlen, "advertised.listeners: %s is not in listeners", adv[i].name);
            return SC_ERR_BAD_CONFIG;
        }
    }
    if (cfg->group_min_session_timeout_ms > cfg->group_max_session_timeout_ms) {
        errf(err, errlen, "group.min.session.timeout.ms=%d is above group.max.session.timeout.ms=%d",
             cfg->group_min_session_timeout_ms, cfg->group_max_session_timeout_ms);
        return SC_ERR_BAD_CONFIG;
    }
    if (cfg->replica_fetch_wait_max_ms > cfg->replica_lag_time_max_ms) {
        errf(err, errlen, "replica.fetch.wait.max.ms=%d is above replica.lag.time.max.ms=%lld",
             cfg->replica_fetch_wait_max_ms, (long long)cfg->replica_lag_time_max_ms);
        return SC_ERR_BAD_CONFIG;
    }
    int zk = strcmp(cfg->metadata_store, "zookeeper") == 0;
    if (zk && !*cfg->zookeeper_connect) {
        errf(err, errlen, "metadata.store=zookeeper needs zookeeper.connect");
        return SC_ERR_BAD_CONFIG;
    }
    if (cfg->default_replication_factor > 1 && !zk) {
        errf(err, errlen, "default.replication.factor=%d but this is a single-node broker",
             cfg->default_replication_factor);
        return SC_ERR_BAD_CONFIG;
    }
    return 0;
}

/* ---- accessors ------------------------------------------------------------- */

const bk_cfg_key_t *bk_config_keys(size_t *n)
{
    *n = NKEYS;
    return keys;
}

int bk_config_is_set(const bk_config_t *cfg, const char *key)
{
    size_t idx;
    return find_key(key, &idx) ? (int)(cfg->set_mask >> idx & 1) : 0;
}

int bk_config_value_str(const bk_config_t *cfg, const char *key, char *buf, size_t len)
{
    size_t idx;
    const bk_cfg_key_t *k = find_key(key, &idx);
    if (!k)
        return SC_ERR_NOT_FOUND;
    const void *field = (const char *)cfg + k->offset;
    switch (k->type) {
    case BK_CFG_INT:
        snprintf(buf, len, "%d", *(const int32_t *)field);
        break;
    case BK_CFG_LONG:
        snprintf(buf, len, "%lld", (long long)*(const int64_t *)field);
        break;
    case BK_CFG_BOOL:
        snprintf(buf, len, "%s", *(const int *)field ? "true" : "false");
        break;
    case BK_CFG_STRING:
    case BK_CFG_LIST:
        snprintf(buf, len, "%s", *(char *const *)field ? *(char *const *)field : "");
        break;
    }
    return 0;
}

static const char *type_name(bk_cfg_type_t t)
{
    switch (t) {
    case BK_CFG_INT: return "int";
    case BK_CFG_LONG: return "long";
    case BK_CFG_BOOL: return "bool";
    case BK_CFG_STRING: return "string";
    case BK_CFG_LIST: return "list";
    }
    return "?";
}

int bk_config_print_markdown(FILE *f)
{
    fprintf(f, "# Configuration\n\n"
               "<!-- Generated by `stratad --config-markdown` from the key table in\n"
               "     broker/bk_config.c; test_bk_config checks that they agree. -->\n\n"
               "`stratad -c server.properties [--override key=value]...` reads a Java-style\n"
               "properties file (`key=value` or `key: value`, `#`/`!` comments, backslash line\n"
               "continuation); each `--override` is applied after the file. An unknown key or a\n"
               "bad value stops the broker with a message naming the key and `file:line`.\n"
               "Names are Kafka's wherever the concept is Kafka's.\n\n"
               "| key | type | default | valid values | description |\n"
               "|---|---|---|---|---|\n");
    for (size_t i = 0; i < NKEYS; i++) {
        const bk_cfg_key_t *k = &keys[i];
        char range[64] = "";
        if (k->type == BK_CFG_INT || k->type == BK_CFG_LONG)
            snprintf(range, sizeof range, "[%lld, %lld]", (long long)k->min, (long long)k->max);
        else if (k->type == BK_CFG_BOOL)
            snprintf(range, sizeof range, "true, false");
        fprintf(f, "| `%s` | %s | %s%s%s | %s | %s |\n", k->name, type_name(k->type),
                *k->def ? "`" : "", *k->def ? k->def : "(empty)", *k->def ? "`" : "", range,
                k->help);
    }
    if (bk_topic_config_print_markdown(f))
        return -EIO;
    return ferror(f) ? -EIO : 0;
}
