/*
 * bk_meta -- <log dir>/meta.properties: the node's identity on disk.
 *
 * Format (Kafka's, a properties file):
 *   version=1
 *   cluster.id=<22 chars, URL-safe base64 of 16 random bytes>
 *   node.id=<int>
 * Created on first start (temp file -> fsync -> rename -> fsync dir), read on
 * every later start so the ClusterId in Metadata is stable. A node.id that
 * differs from the configured one stops the broker, as in Kafka.
 *
 * Runs once on the main thread before any shard starts.
 */
#include "bk_int.h"

#include "sc_err.h"
#include "sc_log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#define SUB "broker"

/* mkdir -p */
static int mkdirs(const char *dir)
{
    char p[4096];
    size_t n = strlen(dir);
    if (n == 0 || n >= sizeof p)
        return -EINVAL;
    memcpy(p, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (p[i] == '/' || p[i] == 0) {
            char c = p[i];
            p[i] = 0;
            if (mkdir(p, 0755) < 0 && errno != EEXIST)
                return -errno;
            p[i] = c;
        }
    }
    return 0;
}

static int read_meta(const char *path, char *cluster, size_t clen, long *node)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -errno;
    char line[512];
    *cluster = 0;
    *node = -1;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = 0;
        if (strncmp(line, "cluster.id=", 11) == 0) {
            size_t n = strlen(line + 11);
            if (n >= clen)
                n = clen - 1; /* too long: rejected by the caller's length check */
            memcpy(cluster, line + 11, n);
            cluster[n] = 0;
        }
        else if (strncmp(line, "node.id=", 8) == 0 || strncmp(line, "broker.id=", 10) == 0)
            *node = strtol(strchr(line, '=') + 1, NULL, 10);
    }
    fclose(f);
    return 0;
}

static void new_cluster_id(char out[32])
{
    static const char b64[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    uint8_t r[16];
    size_t got = 0;
    while (got < sizeof r) {
        ssize_t n = getrandom(r + got, sizeof r - got, 0);
        if (n > 0)
            got += (size_t)n;
        else if (errno != EINTR)
            break;
    }
    /* 128 bits -> 22 base64 chars (the last holds 2 bits) */
    uint32_t acc = 0;
    int bits = 0, o = 0;
    for (size_t i = 0; i < sizeof r; i++) {
        acc = (acc << 8) | r[i];
        bits += 8;
        while (bits >= 6) {
            out[o++] = b64[(acc >> (bits - 6)) & 63];
            bits -= 6;
        }
    }
    out[o++] = b64[(acc << (6 - bits)) & 63];
    out[o] = 0;
}

static int write_meta(const char *dir, const char *path, const char *cluster, int32_t node)
{
    int rc = 0, fd = -1, dfd = -1;
    char tmp[4200], text[256];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int n = snprintf(text, sizeof text,
                     "#\n# Written by stratad on first start; do not edit.\n#\n"
                     "version=1\ncluster.id=%s\nnode.id=%d\n",
                     cluster, node);
    if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0 ||
        write(fd, text, (size_t)n) != n || fsync(fd) < 0) {
        rc = errno ? -errno : -EIO;
        goto out;
    }
    close(fd);
    fd = -1;
    if (rename(tmp, path) < 0) {
        rc = -errno;
        goto out;
    }
    if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 || fsync(dfd) < 0) {
        rc = -errno;
        goto out;
    }
out:
    if (fd >= 0)
        close(fd);
    if (dfd >= 0)
        close(dfd);
    if (rc)
        SC_ERROR(SUB, "writing %s: %s", path, sc_err_str(rc));
    return rc;
}

int bk__meta_load(const char *dir, int32_t node_id, char out[32])
{
    char path[4150], cluster[64];
    long node = -1;
    int rc = mkdirs(dir);
    if (rc) {
        SC_ERROR(SUB, "log.dirs %s: %s", dir, sc_err_str(rc));
        return rc;
    }
    snprintf(path, sizeof path, "%s/meta.properties", dir);
    rc = read_meta(path, cluster, sizeof cluster, &node);
    if (rc == -ENOENT) {
        if (*out && strlen(out) < 32)
            memcpy(cluster, out, strlen(out) + 1); /* the cluster's (ZooKeeper) */
        else
            new_cluster_id(cluster);
        if ((rc = write_meta(dir, path, cluster, node_id)) != 0)
            return rc;
        SC_INFO(SUB, "created %s (cluster id %s)", path, cluster);
    } else if (rc) {
        SC_ERROR(SUB, "reading %s: %s", path, sc_err_str(rc));
        return rc;
    } else {
        size_t cl = strlen(cluster);
        if (cl == 0 || cl >= 32) {
            SC_ERROR(SUB, "%s: missing or bad cluster.id", path);
            return SC_ERR_BAD_CONFIG;
        }
        if (*out && strcmp(out, cluster) != 0) {
            SC_ERROR(SUB, "%s has cluster.id=%s but the cluster (ZooKeeper) has %s; refusing "
                          "to join another cluster", path, cluster, out);
            return SC_ERR_BAD_CONFIG;
        }
        if (node != node_id) {
            SC_ERROR(SUB, "%s has node.id=%ld but the configuration says node.id=%d", path,
                     node, node_id);
            return SC_ERR_BAD_CONFIG;
        }
    }
    memcpy(out, cluster, strlen(cluster) + 1); /* < 32, checked above */
    return 0;
}
