/*
 * omni_err - code words and statuses of the error vocabulary.
 */
#include "omni_err.h"

#include <string.h>

const char *omni_err_code(enum omni_err e)
{
    switch (e) {
    case OMNI_OK: return "OK";
    case OMNI_AGAIN: return "AGAIN";
    case OMNI_E_BAD_REQUEST: return "BAD_REQUEST";
    case OMNI_E_UNAUTHORIZED: return "UNAUTHORIZED";
    case OMNI_E_FORBIDDEN: return "FORBIDDEN";
    case OMNI_E_NOT_FOUND: return "NOT_FOUND";
    case OMNI_E_NO_SERVICE: return "NO_SERVICE";
    case OMNI_E_TOO_LARGE: return "TOO_LARGE";
    case OMNI_E_RATE_LIMITED: return "RATE_LIMITED";
    case OMNI_E_OVERLOADED: return "OVERLOADED";
    case OMNI_E_UNAVAILABLE: return "UNAVAILABLE";
    case OMNI_E_TIMEOUT: return "TIMEOUT";
    case OMNI_E_WORKER_LOST: return "WORKER_LOST";
    case OMNI_E_UPSTREAM: return "UPSTREAM";
    case OMNI_E_CANCELLED: return "CANCELLED";
    case OMNI_E_INTERNAL: return "INTERNAL";
    case OMNI_E_UNSUPPORTED: return "UNSUPPORTED";
    case OMNI_E_PROTOCOL: return "PROTOCOL";
    case OMNI_E_CONFIG: return "CONFIG";
    case OMNI_E_IO: return "IO";
    case OMNI_E__COUNT: break;
    }
    return "INTERNAL";
}

int omni_err_status(enum omni_err e)
{
    switch (e) {
    case OMNI_OK: return 200;
    case OMNI_AGAIN: return 500;
    case OMNI_E_BAD_REQUEST: return 400;
    case OMNI_E_UNAUTHORIZED: return 401;
    case OMNI_E_FORBIDDEN: return 403;
    case OMNI_E_NOT_FOUND: return 404;
    case OMNI_E_NO_SERVICE: return 404;
    case OMNI_E_TOO_LARGE: return 413;
    case OMNI_E_RATE_LIMITED: return 429;
    case OMNI_E_OVERLOADED: return 503;
    case OMNI_E_UNAVAILABLE: return 503;
    case OMNI_E_TIMEOUT: return 504;
    case OMNI_E_WORKER_LOST: return 502;
    case OMNI_E_UPSTREAM: return 502;
    case OMNI_E_CANCELLED: return 499;
    case OMNI_E_INTERNAL: return 500;
    case OMNI_E_UNSUPPORTED: return 501;
    case OMNI_E_PROTOCOL: return 400;
    case OMNI_E_CONFIG: return 500;
    case OMNI_E_IO: return 500;
    case OMNI_E__COUNT: break;
    }
    return 500;
}

enum omni_err omni_err_parse(const char *word, size_t n)
{
    for (int e = OMNI_OK; e < OMNI_E__COUNT; e++) {
        const char *w = omni_err_code((enum omni_err)e);
        if (strlen(w) == n && memcmp(w, word, n) == 0)
            return (enum omni_err)e;
    }
    return OMNI_E_INTERNAL;
}
