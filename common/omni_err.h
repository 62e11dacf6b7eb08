/*
 * omni_err - the one error vocabulary, from a C return code to the wire.
 *
 * Each code has a stable code word used on the wire (BAD_REQUEST,
 * NO_SERVICE, ...) and an HTTP-like status.  Append new codes at the end
 * and never remove one: the numeric values are part of libomni's ABI.
 * omni_err_code() is a switch with no default so -Wswitch flags a code
 * added without its word.
 */
#ifndef OMNI_ERR_H
#define OMNI_ERR_H

#include <stddef.h>

enum omni_err {
    OMNI_OK = 0,
    OMNI_AGAIN,          /* incremental decoder: need more bytes */
    OMNI_E_BAD_REQUEST,  /* malformed or invalid request (400) */
    OMNI_E_UNAUTHORIZED, /* missing or wrong credentials (401) */
    OMNI_E_FORBIDDEN,    /* credentials valid, action refused (403) */
    OMNI_E_NOT_FOUND,    /* named object does not exist (404) */
    OMNI_E_NO_SERVICE,   /* no such service configured (404) */
    OMNI_E_TOO_LARGE,    /* frame, body or field over a limit (413) */
    OMNI_E_RATE_LIMITED, /* caller over its quota (429) */
    OMNI_E_OVERLOADED,   /* service queue full; retry later (503) */
    OMNI_E_UNAVAILABLE,  /* no ready worker, draining, dependency down */
    OMNI_E_TIMEOUT,      /* request deadline passed (504) */
    OMNI_E_WORKER_LOST,  /* worker died or went silent mid-request */
    OMNI_E_UPSTREAM,     /* provider or tool server failed (502) */
    OMNI_E_CANCELLED,    /* caller cancelled or disconnected (499) */
    OMNI_E_INTERNAL,     /* broken invariant in Omni itself (500) */
    OMNI_E_UNSUPPORTED,  /* operation not implemented here (501) */
    OMNI_E_PROTOCOL,     /* undecodable frame or message (400) */
    OMNI_E_CONFIG,       /* bad configuration (local only) */
    OMNI_E_IO,           /* system call failed (local only) */
    OMNI_E__COUNT
};

#define OMNI_ERR_LEN 256

/* Stable code word, e.g. "NO_SERVICE". */
const char *omni_err_code(enum omni_err e);
/* HTTP-like status for the code. */
int omni_err_status(enum omni_err e);
/* Parse a code word (n bytes, not NUL-terminated); unknown words map to
 * OMNI_E_INTERNAL so that a newer peer's codes still read as errors. */
enum omni_err omni_err_parse(const char *word, size_t n);

#endif
