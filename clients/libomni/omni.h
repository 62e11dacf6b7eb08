/*
 * omni.h - libomni, the C client of the Omni broker.  The one public
 * header: link with -lomni (build/lib) and include <omni.h>.
 *
 * A client holds one Unix-socket connection to omni-broker and any
 * number of requests in flight on it; replies arrive in any order, each
 * tagged with the id omni_send() returned.  A request ends with exactly
 * one FINAL or ERROR event, after zero or more CHUNK events when it was
 * sent with stream set.
 *
 * Blocking use:      omni_send() then omni_recv() until the FINAL/ERROR
 *                    of your id, or omni_call() for one request.
 * Non-blocking use:  watch omni_fd() for reading (and for writing while
 *                    omni_want_write() is true); on readiness call
 *                    omni_flush() and then omni_next() until it returns 0.
 *
 * Threads: a client is not thread-safe; use one per thread or lock.
 * Errors: functions returning int give 0 or a positive count on success
 * and -1 on failure, with a message in omni_last_error().  Secrets never
 * appear in error messages.
 */
#ifndef OMNI_H
#define OMNI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct omni_client omni_client;

/* Connect to the broker at path (NULL: $OMNI_SOCKET, else the default
 * path of the contract).  Returns NULL on failure with a message in err
 * (errlen bytes, may be 0).  The connection is non-blocking inside;
 * omni_recv and omni_call block only as their timeouts allow. */
omni_client *omni_connect(const char *path, char *err, size_t errlen);
/* Close the connection and free the client (NULL is fine).  Requests in
 * flight are cancelled by the broker when it sees the close. */
void omni_close(omni_client *c);

struct omni_request {
    const char *service; /* "llm", "echo", "omni", ... (required) */
    const char *op;      /* "chat", "ping", ... (required) */
    const void *body;    /* payload, JSON for the built-in services */
    size_t body_len;
    bool stream;         /* accept CHUNK events */
    bool idempotent;     /* broker may re-dispatch if a worker dies */
    uint32_t timeout_ms; /* 0: the broker's default deadline */
    const char *auth;    /* client key, or NULL */
    const char *trace;   /* trace id, or NULL */
};

/* Queue a request and try to write it.  *id gets the request id.  The
 * body is copied; the caller keeps ownership of req.  Returns 0 or -1. */
int omni_send(omni_client *c, const struct omni_request *req, uint64_t *id);
/* Ask the broker to cancel request id.  The request still ends with an
 * event (an ERROR with code CANCELLED unless it finished first). */
int omni_cancel(omni_client *c, uint64_t id);

enum omni_event_type {
    OMNI_EVENT_CHUNK = 1,
    OMNI_EVENT_FINAL = 2,
    OMNI_EVENT_ERROR = 3,
};

/* An event.  body, code and message are borrowed from the client and
 * stay valid until the next call on it; copy what you keep.  code and
 * message are NUL-terminated; body is not necessarily. */
struct omni_event {
    enum omni_event_type type;
    uint64_t id;
    uint64_t seq; /* CHUNK: 0, 1, 2, ... */
    const void *body;
    size_t body_len;
    const char *code;        /* ERROR: "TIMEOUT", "NO_SERVICE", ... */
    int status;              /* ERROR: HTTP-like status */
    const char *message;     /* ERROR: human text */
    uint32_t retry_after_ms; /* ERROR: retry hint, 0 = none */
};

/* Wait up to timeout_ms (-1: forever) for the next event of any request.
 * Returns 1 with *ev filled, 0 on timeout, -1 on error (connection lost:
 * every request in flight is over). */
int omni_recv(omni_client *c, struct omni_event *ev, int timeout_ms);

/* Non-blocking: the next event already received, reading whatever the
 * socket has without waiting.  Returns 1 with *ev filled, 0 if none is
 * ready, -1 if the connection is lost. */
int omni_next(omni_client *c, struct omni_event *ev);
/* The socket, for poll/epoll/libevent. */
int omni_fd(const omni_client *c);
/* Write queued bytes without blocking.  Returns 0, or -1 on error. */
int omni_flush(omni_client *c);
/* True while queued bytes wait for the socket to become writable. */
bool omni_want_write(const omni_client *c);
/* Requests sent and not yet finished. */
size_t omni_in_flight(const omni_client *c);

/* One blocking request: send, wait for the end, and give back the FINAL
 * body (malloc'ed, NUL-terminated, caller frees) in *body and *body_len.
 * CHUNK bodies are concatenated into it if the request streams, and
 * also passed to on_chunk when it is not NULL.  On an ERROR event,
 * returns -1 with the event's code and message in omni_last_error()
 * (as "CODE: message") and, if not NULL, *status.  *status is 200 on
 * success and 0 on a local failure (connection lost).  With timeout_ms
 * set, omni_call stops waiting 2 s after it (the broker should have
 * answered TIMEOUT), cancels the request and gives status 504.  Events
 * of other requests that arrive meanwhile are kept for omni_next(). */
int omni_call(omni_client *c, const struct omni_request *req,
              void (*on_chunk)(const void *p, size_t n, void *arg), void *arg,
              char **body, size_t *body_len, int *status);

/* The last error on c (or of the last failed omni_connect if c is NULL). */
const char *omni_last_error(const omni_client *c);

#ifdef __cplusplus
}
#endif

#endif
