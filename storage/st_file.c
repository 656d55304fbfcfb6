/*
 * st_file.c -- atomic small-file replace and whole-file read.
 *
 * The replace follows Redis' writeAofManifestFile / SQLite's journal rule:
 *   1. open <dir>/<name>.tmp (O_CREAT|O_TRUNC), write everything, fsync it;
 *   2. rename(<name>.tmp, <name>) -- atomic on POSIX filesystems;
 *   3. fsync <dir> so the rename itself survives a crash.
 * A crash before 2 leaves the old file (plus a stale .tmp that the next writer
 * truncates, and log recovery deletes); after 2 the new one. There is one
 * cleanup exit; the temp file is unlinked whenever the rename did not happen.
 */
#include "st_file.h"

#include "sc_err.h"
#include "sc_mem.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int st_file_pwrite_all(int fd, const void *buf, size_t len, unsigned long long off)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = pwrite(fd, p, len, (off_t)off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0)
            return -EIO;
        p += n;
        len -= (size_t)n;
        off += (unsigned long long)n;
    }
    return 0;
}

int st_file_pread_all(int fd, void *buf, size_t len, unsigned long long off)
{
    char *p = buf;
    while (len > 0) {
        ssize_t n = pread(fd, p, len, (off_t)off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0)
            return SC_ERR_CORRUPT_MESSAGE;
        p += n;
        len -= (size_t)n;
        off += (unsigned long long)n;
    }
    return 0;
}

int st_file_sync_dir(const char *dir, int dir_fd)
{
    int rc = 0, fd = dir_fd;

    if (fd < 0) {
        fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
            return -errno;
    }
    if (fsync(fd))
        rc = -errno;
    if (dir_fd < 0)
        close(fd);
    return rc;
}

int st_file_write_atomic(const char *dir, int dir_fd, const char *name, const void *data,
                         size_t len)
{
    char tmp[PATH_MAX], dst[PATH_MAX];
    int rc = 0, fd = -1, renamed = 0;

    if (snprintf(dst, sizeof dst, "%s/%s", dir, name) >= (int)sizeof dst ||
        snprintf(tmp, sizeof tmp, "%s/%s%s", dir, name, ST_FILE_TMP_SUFFIX) >= (int)sizeof tmp)
        return -ENAMETOOLONG;

    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        rc = -errno;
        goto out;
    }
    if ((rc = st_file_pwrite_all(fd, data, len, 0)))
        goto out;
    if (fsync(fd)) {
        rc = -errno;
        goto out;
    }
    if (close(fd)) {
        fd = -1;
        rc = -errno;
        goto out;
    }
    fd = -1;
    if (rename(tmp, dst)) {
        rc = -errno;
        goto out;
    }
    renamed = 1;
    rc = st_file_sync_dir(dir, dir_fd);
out:
    if (fd >= 0)
        close(fd);
    if (!renamed)
        unlink(tmp);
    return rc;
}

int st_file_read_small(const char *path, size_t max, char **out, size_t *len)
{
    struct stat st;
    char *buf = NULL;
    int rc = 0, fd;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    if (fstat(fd, &st)) {
        rc = -errno;
        goto out;
    }
    if ((unsigned long long)st.st_size > max) {
        rc = -EFBIG;
        goto out;
    }
    buf = sc_malloc((size_t)st.st_size + 1);
    if (!buf) {
        rc = SC_ERR_NO_MEMORY;
        goto out;
    }
    if ((rc = st_file_pread_all(fd, buf, (size_t)st.st_size, 0))) {
        if (rc == SC_ERR_CORRUPT_MESSAGE) /* shrank under us */
            rc = -EIO;
        goto out;
    }
    buf[st.st_size] = '\0';
    *out = buf;
    *len = (size_t)st.st_size;
    buf = NULL;
out:
    sc_free(buf);
    close(fd);
    return rc;
}
