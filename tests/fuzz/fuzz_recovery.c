/* libFuzzer target: log recovery over an arbitrary segment file. The input
 * becomes 00000000000000000000.log in a fresh directory with no checkpoint;
 * st_log_open must recover a valid prefix (or refuse cleanly), reads of the
 * whole recovered log must succeed, and an append afterwards must work. */
#include "sc_log.h"
#include "st_batch.h"
#include "st_log.h"

#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int rm_one(const char *p, const struct stat *st, int fl, struct FTW *f)
{
    (void)st;
    (void)fl;
    (void)f;
    return remove(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static st_io_t *io;
    char dir[PATH_MAX], path[PATH_MAX + 32];
    st_log_config_t cfg;
    st_log_t *log;
    static uint8_t buf[1 << 20];

    if (!io) {
        sc_log_set_level(SC_LOG_ERROR);
        if (st_io_new(ST_IO_FAULT, NULL, &io))
            abort();
    }
    snprintf(dir, sizeof dir, "%s/strata-fuzz-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(dir))
        abort();
    snprintf(path, sizeof path, "%s/%020d.log", dir, 0);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || write(fd, data, size) != (ssize_t)size)
        abort();
    close(fd);

    st_log_config_default(&cfg);
    cfg.index_interval_bytes = 128;
    if (st_log_open(dir, &cfg, io, &log) == 0) {
        int64_t off = st_log_start_offset(log), leo = st_log_end_offset(log);
        while (off < leo) {
            int64_t n = st_log_read_copy(log, off, buf, sizeof buf, INT64_MAX);
            if (n <= 0)
                abort(); /* a recovered log must be readable to its end */
            size_t pos = 0;
            while (pos < (size_t)n) {
                st_batch_hdr_t h;
                if (st_batch_validate(buf + pos, (size_t)n - pos, 0, &h))
                    abort(); /* recovery kept an invalid batch */
                off = st_batch_last_offset(&h) + 1;
                pos += (size_t)h.length + 12;
            }
        }
        int64_t t;
        (void)st_log_lookup_time(log, 0, &t);
        st_log_close(log);
    }
    nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
    return 0;
}
