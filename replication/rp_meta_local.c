/*
 * rp_meta_local -- the `local` metadata backend: one file,
 * <dir>/__cluster_metadata.bin (RP_META_LOCAL_FILE), holding the whole
 * image in the framed protobuf format documented in rp_meta_codec.c.
 *
 * Writes: every change re-encodes the whole image and replaces the file with
 * st_file_write_atomic (temp -> fsync -> rename -> fsync dir), so after a
 * crash the file holds either the state before or after the change, never a
 * mix. The image is a few hundred bytes per topic; rewriting it whole keeps
 * the format trivially consistent. A leftover __cluster_metadata.bin.tmp from
 * a crash is simply overwritten by the next write and ignored on load.
 *
 * Load: absent file -> a new, empty store with the proposed cluster id,
 * written at once (so the id is durable before any client sees it). Present
 * but not decodable (short, bad magic, length or CRC mismatch, invalid
 * protobuf or invariant) -> SC_ERR_BAD_FORMAT, logged with the path and the
 * reason: the broker refuses to start rather than silently forgetting every
 * topic. Restore the file from a backup, or move it away to start empty.
 *
 * Threading: the store's owner thread; blocking I/O (see rp_meta.h).
 */
#include "rp_meta_int.h"

#include "sc_err.h"
#include "sc_log.h"
#include "sc_mem.h"
#include "st_file.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define SUB "meta"

/* Refuse to load anything larger (a runaway or foreign file). */
#define LOCAL_MAX_BYTES (256u << 20)

typedef struct {
    char dir[PATH_MAX];
    char path[PATH_MAX];
    int dir_fd;
} local_t;

static int persist(local_t *l, const rp__image_t *img)
{
    sc_buf_t b;
    sc_buf_init(&b);
    int rc = rp__meta_encode(img, &b);
    if (rc == 0)
        rc = st_file_write_atomic(l->dir, l->dir_fd, RP_META_LOCAL_FILE, b.data, b.len);
    if (rc)
        SC_ERROR(SUB, "writing %s: %s", l->path, sc_err_str(rc));
    sc_buf_fini(&b);
    return rc;
}

static int local_load(void *be, const char *proposed, rp__image_t *img)
{
    local_t *l = be;
    char *data = NULL;
    size_t len = 0;
    char why[256] = "";
    int rc = st_file_read_small(l->path, LOCAL_MAX_BYTES, &data, &len);
    if (rc == -ENOENT) {
        memset(img, 0, sizeof *img);
        snprintf(img->cluster_id, sizeof img->cluster_id, "%s", proposed);
        if ((rc = persist(l, img)) == 0)
            SC_INFO(SUB, "created %s (cluster id %s)", l->path, img->cluster_id);
        goto out;
    }
    if (rc) {
        SC_ERROR(SUB, "reading %s: %s", l->path,
                 rc == -EFBIG ? "larger than 256 MiB, not a metadata file" : sc_err_str(rc));
        if (rc == -EFBIG)
            rc = SC_ERR_BAD_FORMAT;
        goto out;
    }
    rc = rp__meta_decode((const uint8_t *)data, len, img, why, sizeof why);
    if (rc == SC_ERR_BAD_FORMAT) {
        SC_ERROR(SUB,
                 "%s is corrupt (%s); refusing to start without the cluster metadata. "
                 "Restore it from a backup, or move it away to start with no topics.",
                 l->path, why);
        goto out;
    }
    if (rc)
        goto out;
    SC_INFO(SUB, "loaded %s: cluster id %s, %zu topic(s)", l->path, img->cluster_id,
            img->ntopics);
out:
    sc_free(data);
    return rc;
}

static int local_put_topic(void *be, const rp__image_t *next, const rp_meta_topic_t *t)
{
    (void)t;
    return persist(be, next);
}

static int local_delete_topic(void *be, const rp__image_t *next, const char *name)
{
    (void)name;
    return persist(be, next);
}

static int local_alloc_pids(void *be, const rp__image_t *next, int64_t first, int64_t count)
{
    (void)first;
    (void)count;
    return persist(be, next);
}

static void local_close(void *be)
{
    local_t *l = be;
    if (l->dir_fd >= 0)
        close(l->dir_fd);
    sc_free(l);
}

static const rp__meta_ops_t local_ops = {
    .name = "local",
    .load = local_load,
    .put_topic = local_put_topic,
    .delete_topic = local_delete_topic,
    .set_topic_config = local_put_topic,
    .alloc_producer_ids = local_alloc_pids,
    .close = local_close,
};

int rp_meta_open_local(const char *dir, const char *cluster_id, rp_meta_t **out)
{
    local_t *l = sc_calloc(1, sizeof *l);
    if (!l)
        return SC_ERR_NO_MEMORY;
    l->dir_fd = -1;
    if (snprintf(l->dir, sizeof l->dir, "%s", dir) >= (int)sizeof l->dir ||
        snprintf(l->path, sizeof l->path, "%s/%s", dir, RP_META_LOCAL_FILE) >=
            (int)sizeof l->path) {
        sc_free(l);
        return -ENAMETOOLONG;
    }
    l->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (l->dir_fd < 0) {
        int rc = -errno;
        SC_ERROR(SUB, "opening metadata directory %s: %s", dir, sc_err_str(rc));
        sc_free(l);
        return rc;
    }
    return rp__meta_open(&local_ops, l, cluster_id, out); /* takes l */
}
