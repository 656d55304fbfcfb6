/*
 * sc_mem -- the one allocation wrapper. Every allocation in the tree goes
 * through these so that tests and fuzzers can make the Nth one fail.
 * sc_malloc/sc_calloc/sc_realloc return NULL on failure like libc; callers
 * turn that into SC_ERR_NO_MEMORY. Thread-safe.
 */
#ifndef SC_MEM_H
#define SC_MEM_H

#include <stddef.h>

void *sc_malloc(size_t n);
void *sc_calloc(size_t count, size_t size);
void *sc_realloc(void *p, size_t n);
void sc_free(void *p);
char *sc_strdup(const char *s);

/* Test hook: the nth allocation from now (1 = the next) fails, and every one
 * after it too when sticky. 0 disarms. */
void sc_mem_fail_after(long nth, int sticky);

#endif
