#include "sc_mem.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static atomic_long fail_countdown;
static atomic_int fail_sticky;

void sc_mem_fail_after(long nth, int sticky)
{
    atomic_store(&fail_sticky, sticky);
    atomic_store(&fail_countdown, nth);
}

static int should_fail(void)
{
    long c = atomic_load_explicit(&fail_countdown, memory_order_relaxed);
    if (c == 0)
        return 0;
    if (c == 1) {
        if (!atomic_load(&fail_sticky))
            atomic_store(&fail_countdown, 0);
        return 1;
    }
    atomic_fetch_sub(&fail_countdown, 1);
    return 0;
}

void *sc_malloc(size_t n) { return should_fail() ? NULL : malloc(n ? n : 1); }

void *sc_calloc(size_t count, size_t size)
{
    return should_fail() ? NULL : calloc(count ? count : 1, size ? size : 1);
}

void *sc_realloc(void *p, size_t n) { return should_fail() ? NULL : realloc(p, n ? n : 1); }

void sc_free(void *p) { free(p); }

char *sc_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = sc_malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}
