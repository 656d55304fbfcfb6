/*
 * sc_log -- leveled logging with subsystems.
 *
 * A line looks like
 *   2026-11-26T07:01:02.345Z INFO  storage: opened 12 partitions in 31 ms
 * and goes to stderr (or the sink set with sc_log_set_sink). Thread-safe: each
 * line is formatted into a local buffer and written with one write(2).
 *
 * Levels can be set globally and per subsystem with a spec string such as
 * "info" or "info,storage=debug,net=warn" (sc_log_configure).
 */
#ifndef SC_LOG_H
#define SC_LOG_H

#include <stdarg.h>

typedef enum {
    SC_LOG_ERROR = 0,
    SC_LOG_WARN = 1,
    SC_LOG_INFO = 2,
    SC_LOG_DEBUG = 3,
    SC_LOG_TRACE = 4,
} sc_log_level_t;

/* Parses a spec ("info", "warn,storage=debug"). Returns 0, or SC_ERR_BAD_CONFIG
 * naming nothing on a bad spec (the previous levels stay). */
int sc_log_configure(const char *spec);

/* Sets the global level (subsystem overrides stay). */
void sc_log_set_level(sc_log_level_t level);

/* Writes lines to fd instead of stderr (2). */
void sc_log_set_fd(int fd);

/* True when a line of this level for this subsystem would be written. */
int sc_log_enabled(sc_log_level_t level, const char *subsys);

void sc_log_write(sc_log_level_t level, const char *subsys, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void sc_log_vwrite(sc_log_level_t level, const char *subsys, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

/* Parses "error", "warn", "info", "debug", "trace". Returns -1 if unknown. */
int sc_log_level_parse(const char *s);

#define SC_LOG(level, subsys, ...)                                                  \
    do {                                                                            \
        if (sc_log_enabled((level), (subsys)))                                      \
            sc_log_write((level), (subsys), __VA_ARGS__);                           \
    } while (0)

#define SC_ERROR(subsys, ...) SC_LOG(SC_LOG_ERROR, subsys, __VA_ARGS__)
#define SC_WARN(subsys, ...) SC_LOG(SC_LOG_WARN, subsys, __VA_ARGS__)
#define SC_INFO(subsys, ...) SC_LOG(SC_LOG_INFO, subsys, __VA_ARGS__)
#define SC_DEBUG(subsys, ...) SC_LOG(SC_LOG_DEBUG, subsys, __VA_ARGS__)
#define SC_TRACE(subsys, ...) SC_LOG(SC_LOG_TRACE, subsys, __VA_ARGS__)

#endif
