#include "bench.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/utsname.h>
#include <unistd.h>

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

bench_stats_t bench_stats(double *v, int n)
{
    bench_stats_t s;
    qsort(v, (size_t)n, sizeof *v, cmp);
    s.min = v[0];
    s.max = v[n - 1];
    s.median = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
    return s;
}

void bench_machine_banner(const char *dir)
{
    struct utsname u;
    char model[512] = "unknown", line[512];
    FILE *f = fopen("/proc/cpuinfo", "r");
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "model name", 10) == 0) {
            char *c = strchr(line, ':');
            snprintf(model, sizeof model, "%s", c ? c + 2 : line);
            model[strcspn(model, "\n")] = 0;
            break;
        }
    if (f)
        fclose(f);
    uname(&u);
    long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
    struct statfs sf;
    const char *fs = "?";
    if (statfs(dir, &sf) == 0) {
        switch ((unsigned long)sf.f_type) {
        case 0xEF53: fs = "ext4"; break;
        case 0x58465342: fs = "xfs"; break;
        case 0x9123683E: fs = "btrfs"; break;
        case 0x01021994: fs = "tmpfs"; break;
        case 0x794c7630: fs = "overlayfs"; break;
        default: fs = "other"; break;
        }
    }
    printf("machine: %ld cores, %.1f GiB RAM, %s, kernel %s %s\n", sysconf(_SC_NPROCESSORS_ONLN),
           (double)pages * (double)psz / (1 << 30), model, u.sysname, u.release);
    printf("disk: %s on %s\n", dir, fs);
}

int bench_mkdir_p(const char *dir)
{
    char p[4096];
    snprintf(p, sizeof p, "%s", dir);
    for (char *s = p + 1; *s; s++)
        if (*s == '/') {
            *s = 0;
            if (mkdir(p, 0755) && errno != EEXIST)
                return -1;
            *s = '/';
        }
    return mkdir(p, 0755) && errno != EEXIST ? -1 : 0;
}

static int rm_one(const char *p, const struct stat *st, int fl, struct FTW *f)
{
    (void)st;
    (void)fl;
    (void)f;
    return remove(p);
}

int bench_rm_rf(const char *path)
{
    if (access(path, F_OK))
        return 0;
    return nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}
