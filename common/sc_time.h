/* sc_time -- clocks in milliseconds and nanoseconds. Thread-safe. */
#ifndef SC_TIME_H
#define SC_TIME_H

#include <stdint.h>
#include <time.h>

/* Wall clock, ms since the epoch (Kafka timestamps). */
static inline int64_t sc_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Monotonic clock, ns (durations, timers). */
static inline int64_t sc_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline int64_t sc_mono_ms(void) { return sc_mono_ns() / 1000000; }

#endif
