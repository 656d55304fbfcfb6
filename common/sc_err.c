#include "sc_err.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* strerrorname_np is glibc >= 2.32; keep a small fallback for other libcs. */
static const char *errno_name(int e)
{
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
    const char *n = strerrorname_np(e);
    if (n)
        return n;
#endif
    switch (e) {
    case EIO: return "EIO";
    case ENOSPC: return "ENOSPC";
    case ENOENT: return "ENOENT";
    case EINVAL: return "EINVAL";
    case ENOMEM: return "ENOMEM";
    case EAGAIN: return "EAGAIN";
    default: return "ERRNO";
    }
}

const char *sc_err_name(sc_err_t err)
{
    static __thread char unknown[24];

    switch (err) {
    case SC_OK: return "OK";
#define SC__X(name, code, msg) case code: return #name;
    SC_KAFKA_ERRORS(SC__X) SC_LOCAL_ERRORS(SC__X)
#undef SC__X
    default: break;
    }
    if (err < 0 && err > -4096)
        return errno_name(-err);
    snprintf(unknown, sizeof unknown, "ERR_%d", err);
    return unknown;
}

const char *sc_err_str(sc_err_t err)
{
    switch (err) {
    case SC_OK: return "success";
#define SC__X(name, code, msg) case code: return msg;
    SC_KAFKA_ERRORS(SC__X) SC_LOCAL_ERRORS(SC__X)
#undef SC__X
    default: break;
    }
    if (err < 0 && err > -4096)
        return strerror(-err);
    return "unknown error";
}

int16_t sc_err_to_kafka(sc_err_t err)
{
    if (err == SC_OK)
        return 0;
    if (err > 0 && err < 4096)
        return (int16_t)err;
    if (err == SC_ERR_LOG_FAILED || err == -EIO || err == -ENOSPC || err == -EDQUOT ||
        err == -EROFS)
        return SC_ERR_KAFKA_STORAGE_ERROR;
    return -1;
}
