#include "sc_log.h"

#include "sc_err.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define MAX_OVERRIDES 16
#define SUBSYS_LEN 24

struct override {
    char subsys[SUBSYS_LEN];
    int level;
};

/* Overrides change rarely (at start, or by admin action); readers take the
 * lock only when any override exists. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct override overrides[MAX_OVERRIDES];
static atomic_int noverrides;
static atomic_int global_level = SC_LOG_INFO;
static atomic_int sink_fd = 2;

static const char *const level_names[] = {"ERROR", "WARN", "INFO", "DEBUG", "TRACE"};

int sc_log_level_parse(const char *s)
{
    for (int i = 0; i <= SC_LOG_TRACE; i++)
        if (strcasecmp(s, level_names[i]) == 0)
            return i;
    if (strcasecmp(s, "warning") == 0)
        return SC_LOG_WARN;
    return -1;
}

void sc_log_set_level(sc_log_level_t level) { atomic_store(&global_level, (int)level); }

void sc_log_set_fd(int fd) { atomic_store(&sink_fd, fd); }

int sc_log_configure(const char *spec)
{
    char buf[512], *save = NULL;
    struct override tmp[MAX_OVERRIDES];
    int ntmp = 0, glevel = atomic_load(&global_level);

    if (strlen(spec) >= sizeof buf)
        return SC_ERR_BAD_CONFIG;
    strcpy(buf, spec);
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        if (!eq) {
            if ((glevel = sc_log_level_parse(tok)) < 0)
                return SC_ERR_BAD_CONFIG;
            continue;
        }
        *eq = '\0';
        int lv = sc_log_level_parse(eq + 1);
        if (lv < 0 || ntmp == MAX_OVERRIDES || strlen(tok) == 0 || strlen(tok) >= SUBSYS_LEN)
            return SC_ERR_BAD_CONFIG;
        strcpy(tmp[ntmp].subsys, tok);
        tmp[ntmp++].level = lv;
    }
    pthread_mutex_lock(&lock);
    memcpy(overrides, tmp, sizeof(tmp[0]) * (size_t)ntmp);
    atomic_store(&noverrides, ntmp);
    atomic_store(&global_level, glevel);
    pthread_mutex_unlock(&lock);
    return 0;
}

int sc_log_enabled(sc_log_level_t level, const char *subsys)
{
    int lv = atomic_load(&global_level);

    if (atomic_load(&noverrides) > 0 && subsys) {
        pthread_mutex_lock(&lock);
        for (int i = 0; i < atomic_load(&noverrides); i++)
            if (strcmp(overrides[i].subsys, subsys) == 0) {
                lv = overrides[i].level;
                break;
            }
        pthread_mutex_unlock(&lock);
    }
    return (int)level <= lv;
}

void sc_log_vwrite(sc_log_level_t level, const char *subsys, const char *fmt, va_list ap)
{
    char line[2048];
    struct timeval tv;
    struct tm tm;
    size_t n;
    int r;

    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    n = strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%S", &tm);
    r = snprintf(line + n, sizeof line - n, ".%03dZ %-5s %s: ", (int)(tv.tv_usec / 1000),
                 level_names[level], subsys ? subsys : "-");
    if (r > 0)
        n += (size_t)r;
    if (n < sizeof line) {
        r = vsnprintf(line + n, sizeof line - n, fmt, ap);
        if (r > 0)
            n += (size_t)r;
    }
    if (n >= sizeof line - 1)
        n = sizeof line - 2;
    line[n++] = '\n';
    ssize_t w = write(atomic_load(&sink_fd), line, n);
    (void)w;
}

void sc_log_write(sc_log_level_t level, const char *subsys, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sc_log_vwrite(level, subsys, fmt, ap);
    va_end(ap);
}
