/*
 * cl_group -- consumer-group membership and offset commits for
 * strata_consumer_t (classic group protocol), and the pure pieces it is made
 * of: the ConsumerProtocol subscription / assignment encodings and the
 * "range" / "roundrobin" assignors with the Java client's semantics.
 *
 * The group state lives in cl_group_t, owned by the consumer (one per
 * consumer whose conf has a group.id). Every cl_group_* function below that
 * takes a cl_group_t runs with cl.mu held, on the I/O thread unless it says
 * otherwise. The consumer exposes its assignment to this file through the
 * cl_consumer_* hooks at the end (implemented in cl_consumer.c).
 */
#ifndef CL_GROUP_H
#define CL_GROUP_H

#include "cl_client.h"

#include <stddef.h>
#include <stdint.h>

/* ---- ConsumerProtocol encodings (pure) ---------------------------------------------- */

typedef struct {
    char *topic;
    int32_t *parts;
    size_t nparts;
} cl_cp_tparts_t;

/* ConsumerProtocolSubscription v0-v3. Decode keeps what the version has and
 * ignores bytes after it (newer versions append fields). */
typedef struct {
    int16_t version;
    char **topics;
    size_t ntopics;
    uint8_t *user_data; /* NULL with user_data_len -1: null */
    int32_t user_data_len;
    cl_cp_tparts_t *owned; /* v1+ */
    size_t nowned;
    int32_t generation; /* v2+, -1 otherwise */
    char *rack;         /* v3+, NULL = null */
} cl_cp_sub_t;

/* ConsumerProtocolAssignment v0-v3 (same fields in every version). */
typedef struct {
    int16_t version;
    cl_cp_tparts_t *tps;
    size_t ntps;
    uint8_t *user_data;
    int32_t user_data_len; /* -1 = null */
} cl_cp_assign_t;

/* Appends the encoding to out. Returns 0 or SC_ERR_NO_MEMORY. */
int cl_cp_sub_encode(sc_buf_t *out, const cl_cp_sub_t *s);
int cl_cp_assign_encode(sc_buf_t *out, const cl_cp_assign_t *a);
/* Decodes into *out (allocated; free with the _free). Returns 0,
 * SC_ERR_BAD_FORMAT (truncated, negative counts, unknown negative version),
 * SC_ERR_NO_MEMORY. *out is zeroed on error. */
int cl_cp_sub_decode(const void *p, size_t n, cl_cp_sub_t *out);
int cl_cp_assign_decode(const void *p, size_t n, cl_cp_assign_t *out);
void cl_cp_sub_free(cl_cp_sub_t *s);
void cl_cp_assign_free(cl_cp_assign_t *a);

/* ---- assignors (pure) --------------------------------------------------------------------- */

typedef struct {
    const char *member_id;
    const char *instance_id; /* group.instance.id, NULL for dynamic members */
    const char *const *topics;
    size_t ntopics;
} cl_asg_member_t;

typedef struct {
    const char *name;
    int32_t nparts; /* 0 when unknown: nothing to assign */
} cl_asg_topic_t;

typedef struct {
    size_t topic; /* index into the topics array */
    int32_t part;
} cl_asg_tp_t;

typedef struct {
    cl_asg_tp_t *tps;
    size_t n, cap;
} cl_asg_out_t;

/* 1 when name is an assignor libstrata implements ("range", "roundrobin"). */
int cl_assignor_known(const char *name);
/* Runs assignor name over members (any order: sorted inside as Java's
 * MemberInfo: static members first by group.instance.id, then by member id)
 * and topics (any order). out[i] (nm entries, zeroed by the caller) receives
 * member i's partitions ordered by topic name, then partition. Returns 0,
 * SC_ERR_NO_MEMORY, -EINVAL (unknown assignor). Free with cl_asg_out_free. */
int cl_assign(const char *name, const cl_asg_member_t *members, size_t nm,
              const cl_asg_topic_t *topics, size_t nt, cl_asg_out_t *out);
void cl_asg_out_free(cl_asg_out_t *out, size_t nm);

/* ---- the consumer's group (mu held) ------------------------------------------------------- */

typedef struct cl_group cl_group_t;

/* NULL when out of memory. conf (the copy the client will own; its strings
 * are referenced) must have a non-empty group_id. */
cl_group_t *cl_group_new(strata_consumer_t *c, cl_client_t *cl, const strata_conf_t *conf);
/* After the I/O thread stopped: frees everything, completing unfinished
 * commits with SC_ERR_CLOSED (callbacks run on the calling thread). */
void cl_group_free(cl_group_t *g);
/* The loop's serve step for the group; returns the next time it wants to run. */
int64_t cl_group_serve(cl_group_t *g, int64_t now);
/* Runs pending rebalance / commit callbacks (releases mu around each). */
void cl_group_deliver(cl_group_t *g);
/* 1 while subscribed (assign must fail). */
int cl_group_subscribed(const cl_group_t *g);
/* The application polled: a member that left for max.poll.interval.ms
 * rejoins. Any thread. */
void cl_group_polled(cl_group_t *g);
/* 1 once strata_consumer_close finished for this group. */
int cl_group_closed(const cl_group_t *g);

/* ---- hooks cl_consumer.c gives cl_group.c (mu held) ------------------------------------ */

typedef struct {
    const char *topic;
    int32_t part;
    int64_t pos;        /* next offset for the application, STRATA_OFFSET_INVALID if unresolved */
    int need_committed; /* waiting to be told its committed offset */
    int committed_wait; /* an OffsetFetch for it is in flight */
} cl_tp_view_t;

size_t cl_consumer_tp_count(strata_consumer_t *c);
void cl_consumer_tp_view(strata_consumer_t *c, size_t i, cl_tp_view_t *v);
/* Marks tp i: an OffsetFetch for it was sent. */
void cl_consumer_tp_committed_sent(strata_consumer_t *c, size_t i);
/* The OffsetFetch answer for (topic, part): off >= 0 starts there, -1 (no
 * commit) applies auto.offset.reset; err != 0: back to waiting (retried). Only
 * applies to a partition still waiting for it. */
void cl_consumer_tp_committed(strata_consumer_t *c, const char *topic, int32_t part, int64_t off,
                              int err);
/* Replaces the assignment with tps (offsets: where to start, normally
 * STRATA_OFFSET_STORED). Drops buffered records. Returns 0 or
 * SC_ERR_NO_MEMORY. */
int cl_consumer_set_assignment(strata_consumer_t *c, const strata_topic_partition_t *tps, size_t n);
/* Queues a message with err and no payload for the application (topic "",
 * partition -1): a group-level error. */
void cl_consumer_push_group_error(strata_consumer_t *c, int err);
/* Milliseconds since the application last called or returned from poll; 0
 * while it is inside poll. */
int64_t cl_consumer_poll_idle_ms(strata_consumer_t *c, int64_t now);
/* The consumer's group, or NULL (no group.id). */
cl_group_t *cl_consumer_group(strata_consumer_t *c);

#endif
