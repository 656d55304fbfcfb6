/*
 * st_file -- small-file helpers for checkpoints: an atomic replace (temp file
 * -> fsync -> rename -> fsync directory) and a read of a whole small file.
 *
 * These run synchronously on the caller's thread (checkpoints are small and
 * rare: close, periodic checkpoint, leader change). Thread-safe (no state).
 */
#ifndef ST_FILE_H
#define ST_FILE_H

#include <stddef.h>

/* Suffix of the temp file st_file_write_atomic writes next to the target;
 * recovery deletes leftovers ending in it. */
#define ST_FILE_TMP_SUFFIX ".tmp"

/*
 * Replaces dir/name with data[0..len) atomically: writes dir/name.tmp, fsyncs
 * it, renames it over dir/name and fsyncs dir. After a crash dir/name holds
 * either the old or the new content, never a mix. dir_fd may be an open fd of
 * dir (used for the directory fsync) or -1 (the helper opens dir). Returns 0
 * or -errno (the temp file is removed on failure).
 */
int st_file_write_atomic(const char *dir, int dir_fd, const char *name, const void *data,
                         size_t len);

/*
 * Reads the whole file at path, at most max bytes, into a new buffer (one
 * extra NUL byte is appended so text parsers can use it as a string). Returns
 * 0 with *out (sc_free it) and *len, -ENOENT when absent, -EFBIG when the file
 * is larger than max, -errno, SC_ERR_NO_MEMORY.
 */
int st_file_read_small(const char *path, size_t max, char **out, size_t *len);

/* fsyncs a directory (by path when dir_fd < 0). Returns 0 or -errno. */
int st_file_sync_dir(const char *dir, int dir_fd);

/* Writes all len bytes at off with pwrite, continuing short writes. 0 or -errno. */
int st_file_pwrite_all(int fd, const void *buf, size_t len, unsigned long long off);

/* Reads exactly len bytes at off. 0, SC_ERR_CORRUPT_MESSAGE when the file ends
 * first, or -errno. */
int st_file_pread_all(int fd, void *buf, size_t len, unsigned long long off);

#endif
