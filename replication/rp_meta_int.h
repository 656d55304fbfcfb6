/*
 * rp_meta_int -- what the metadata store's files share: the in-memory image,
 * the backend vtable and the codec. Not an API: nothing outside replication/
 * includes this (tests excepted).
 *
 * A backend is one rp__meta_ops_t filled with designated initializers plus
 * its private state (void *be). rp_meta.c owns the image; for each change it
 * builds the complete next image (sharing unchanged topics with the current
 * one), hands it to the backend op, and makes it current only when the op
 * returned 0. Ops therefore never mutate the image they are given. The
 * two-phase ops (rp_meta_op_run) call put_topic / delete_topic /
 * set_topic_config / alloc_remote with next = NULL, on another thread: only
 * a backend that ignores next and has alloc_remote (zookeeper) runs them.
 *
 *   local      every op = encode the next image, st_file_write_atomic
 *   zookeeper  rp_zk.c: put = create / versioned set of /brokers/topics/<name>
 *              (a Topic record, configs included); producer-id block = a
 *              versioned update of /latest_producer_id_block, as Kafka does
 *
 * Threading: the store's owner thread only.
 */
#ifndef RP_META_INT_H
#define RP_META_INT_H

#include "rp_assign.h"
#include "rp_meta.h"
#include "sc_buf.h"

#include <stddef.h>
#include <stdint.h>

/* The whole state. topics[] holds pointers so that the next image can share
 * unchanged topics with the current one. */
typedef struct {
    char cluster_id[RP_META_CLUSTER_ID_MAX + 1];
    rp_meta_topic_t **topics;
    size_t ntopics;
    int64_t next_producer_id; /* end of the last reserved block */
} rp__image_t;

typedef struct {
    const char *name;
    /* Loads the stored state into img (zeroed on entry). When nothing is
     * stored yet, the backend records proposed_cluster_id as the cluster id
     * (durably) and leaves img empty with that id. 0, SC_ERR_BAD_FORMAT
     * (logged with where and why), -errno, SC_ERR_NO_MEMORY. */
    int (*load)(void *be, const char *proposed_cluster_id, rp__image_t *img);
    /* t was created or changed (partition count) in next. */
    int (*put_topic)(void *be, const rp__image_t *next, const rp_meta_topic_t *t);
    /* name is no longer in next. */
    int (*delete_topic)(void *be, const rp__image_t *next, const char *name);
    /* t's override set was replaced in next. */
    int (*set_topic_config)(void *be, const rp__image_t *next, const rp_meta_topic_t *t);
    /* next->next_producer_id was raised to first + count. */
    int (*alloc_producer_ids)(void *be, const rp__image_t *next, int64_t first, int64_t count);
    /* Optional (shared stores): reserves count ids against the stored
     * counter itself (a compare-and-set there), whatever this image says;
     * *first = the block's start. Used instead of alloc_producer_ids. */
    int (*alloc_remote)(void *be, int64_t count, int64_t *first);
    /* Optional: a topic write (put_topic, delete_topic, set_topic_config)
     * through this store ended, called on the owner thread (the zookeeper
     * backend counts them: an image read before is stale). */
    void (*wrote)(void *be);
    /* Releases the backend state. */
    void (*close)(void *be);
} rp__meta_ops_t;

/* rp_meta.c: wraps a backend into a store and loads it. Takes ownership of
 * be (closed with ops->close on failure too). */
int rp__meta_open(const rp__meta_ops_t *ops, void *be, const char *cluster_id, rp_meta_t **out);

/* rp_meta.c: frees a topic deep copy / an image's topics (not the array
 * owner semantics: see callers). */
void rp__topic_free(rp_meta_topic_t *t);
void rp__image_fini(rp__image_t *img);

/* ---- codec (rp_meta_codec.c, the one file that sees protobuf-c names) ----- */

/* Magic, header size and version of the local file (rp_meta_local.c). */
#define RP_META_MAGIC "STMD"
#define RP_META_HDR_SIZE 16
#define RP_META_FILE_VERSION 1

/* Appends the framed encoding of img (header + protobuf) to out.
 * 0 or SC_ERR_NO_MEMORY. */
int rp__meta_encode(const rp__image_t *img, sc_buf_t *out);

/* Decodes a framed file into img (zeroed on entry; filled only on success,
 * rp__image_fini it). Every structural problem is SC_ERR_BAD_FORMAT with a
 * reason in why. Also SC_ERR_NO_MEMORY. */
int rp__meta_decode(const uint8_t *p, size_t n, rp__image_t *img, char *why, size_t whylen);

/* Single records of the zookeeper backend (proto/metadata.proto). pack
 * appends to out (0 or SC_ERR_NO_MEMORY); unpack returns 0 or
 * SC_ERR_BAD_FORMAT (topic: with a reason in why; also NO_MEMORY). */
int rp__topic_pack(const rp_meta_topic_t *t, sc_buf_t *out);
int rp__topic_unpack(const uint8_t *p, size_t n, rp_meta_topic_t **out, char *why, size_t whylen);
int rp__cluster_id_pack(const char *id, sc_buf_t *out);
int rp__cluster_id_unpack(const uint8_t *p, size_t n, char *id, size_t idlen);
int rp__broker_pack(const rp_broker_t *b, const char *host, int32_t port, sc_buf_t *out);
int rp__broker_unpack(const uint8_t *p, size_t n, rp_broker_t *b, char *host, size_t hostlen,
                      int32_t *port);
int rp__controller_pack(int32_t broker_id, int32_t epoch, sc_buf_t *out);
int rp__controller_unpack(const uint8_t *p, size_t n, int32_t *broker_id, int32_t *epoch);
int rp__pstate_pack(const rp_pstate_t *s, sc_buf_t *out);
int rp__pstate_unpack(const uint8_t *p, size_t n, rp_pstate_t *s);
int rp__pid_block_pack(int64_t next, sc_buf_t *out);
int rp__pid_block_unpack(const uint8_t *p, size_t n, int64_t *next);

/* Tests only (rp_zk.c): deletes one znode of z's tree (e.g. /controller, to
 * make a live controller stale). 0, SC_ERR_NOT_FOUND, BROKER_NOT_AVAILABLE. */
struct rp_zk;
int rp__zk_delete_for_test(struct rp_zk *z, const char *path);

#endif
