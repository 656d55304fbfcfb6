#include "t_util.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void t_tmpdir(const char *tag, char *out)
{
    const char *base = getenv("TMPDIR");
    if (!base || !*base)
        base = "/tmp";
    snprintf(out, PATH_MAX, "%s/strata-%s-XXXXXX", base, tag);
    if (!mkdtemp(out)) {
        fprintf(stderr, "mkdtemp %s: %s\n", out, strerror(errno));
        abort();
    }
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path) ? -errno : 0;
}

int t_rm_rf(const char *path) { return nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS); }

void t_batch_make(sc_recbatch_t *b, int n, size_t value_size, uint32_t seed, int64_t ts0)
{
    char key[32];
    char *val = malloc(value_size ? value_size : 1);
    sc_recbatch_begin(b, ts0, -1, -1, -1);
    for (int i = 0; i < n; i++) {
        uint32_t x = seed * 2654435761u + (uint32_t)i;
        for (size_t j = 0; j < value_size; j++) {
            x = x * 1103515245u + 12345u;
            val[j] = (char)('a' + (x >> 16) % 26);
        }
        int kl = snprintf(key, sizeof key, "k%d", i);
        sc_recbatch_add(b, ts0 + i, key, kl, val, (int32_t)value_size, NULL, 0);
    }
    sc_recbatch_finish(b);
    free(val);
}

int64_t t_file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) ? -1 : (int64_t)st.st_size;
}

int t_run_suite(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_FORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
