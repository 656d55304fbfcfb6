/*
 * cl_admin -- internals of strata_admin_t that the unit tests reach: the
 * result arena and the pure response decoders (no I/O, no locks).
 *
 * Result arena: every tree an admin call returns (strata_metadata_t,
 * strata_group_description_t, ...) hangs off one "top" allocation made by
 * cl_ar_top; every other allocation of the tree (cl_ar_alloc, cl_ar_strn) is
 * linked to it, and cl_ar_free(top) releases the whole tree. The public _free
 * functions are cl_ar_free. A decoder that fails leaves the caller to free
 * the top: nothing leaks, nothing is half-owned.
 */
#ifndef CL_ADMIN_H
#define CL_ADMIN_H

#include "sc_buf.h"
#include "sc_kafka.h"
#include "strata/client.h"

#include <stddef.h>
#include <stdint.h>

void *cl_ar_top(size_t size);                       /* zeroed; NULL when out of memory */
void *cl_ar_alloc(void *top, size_t size);          /* zeroed, freed with top */
char *cl_ar_strn(void *top, const char *p, int32_t len); /* len -1: NULL (not an error) */
void cl_ar_free(void *top);                         /* NULL: no-op */

/* Each decoder reads a whole response body (after the response header) of
 * the given version. Returns 0, SC_ERR_BAD_FORMAT (malformed), SC_ERR_NO_MEMORY. */

/* Metadata v1-v6 into a caller-made top (cl_ar_top(sizeof *md)). */
int cl_admin_decode_metadata(sc_rd_t *r, int16_t ver, strata_metadata_t *md);

/* A ConsumerProtocolAssignment (version, [topic, [partition]], user_data);
 * n == 0 gives an empty assignment. Arrays allocated under top. */
int cl_admin_decode_assignment(void *top, const uint8_t *p, size_t n,
                               const strata_topic_partitions_t **out, size_t *count);

/* DescribeGroups v0-v4 with exactly one group in it into d (a top). */
int cl_admin_decode_describe_group(sc_rd_t *r, int16_t ver, strata_group_description_t *d);

/* DescribeConfigs v0-v2 with exactly one resource into d (a top). */
int cl_admin_decode_describe_config(sc_rd_t *r, int16_t ver, strata_config_description_t *d);

/* OffsetFetch v2-v5: *out is a new top holding *count entries (topic,
 * partition, committed offset, err); *group_err the response-level error. */
int cl_admin_decode_offset_fetch(sc_rd_t *r, int16_t ver, strata_topic_partition_t **out,
                                 size_t *count, int *group_err);

/* Request encoders with logic worth a test: the partitions of one request,
 * addressed by index into the caller's array (idx lists this request's
 * entries with each topic's entries consecutive), become topics[name,
 * partitions[...]]. ListOffsets v1-v3 (_BEGINNING -> -2, _END -> -1, else a
 * timestamp) and the admin OffsetCommit v2-v7 (generation -1, empty member
 * id, no instance id, retention -1 up to v4, leader epoch -1 from v6). */
typedef struct {
    const char *group; /* OffsetCommit */
    strata_topic_partition_t *tps;
    const size_t *idx;
    size_t n;
} cl_admin_tps_t;

int cl_admin_enc_list_offsets(sc_kw_t *w, int16_t ver, const void *ctx);
int cl_admin_enc_offset_commit(sc_kw_t *w, int16_t ver, const void *ctx);

#endif
