/*
 * llm_http - asynchronous HTTP client on the worker's libevent loop.
 *
 * One struct llm_http per worker wraps one libcurl multi handle driven by
 * curl_multi_socket_action from libevent socket and timer events; the
 * multi keeps its connection cache, so connections to a host are reused
 * and HTTP/2 streams multiplexed.  A transfer (struct llm_xfer) hands
 * its body bytes to on_data as they arrive and ends with exactly one
 * on_done, unless it was cancelled first.  Each transfer has one timer
 * covering the first-byte wait, the idle gap while streaming and the
 * request's absolute deadline.
 *
 * Safety: llm_xfer_cancel may be called from any callback, including
 * the transfer's own on_data; the curl handle is then released after
 * curl returns.  No per-transfer thread, no scan over transfers.
 */
#ifndef LLM_HTTP_H
#define LLM_HTTP_H

#include <event2/event.h>
#include <stddef.h>
#include <stdint.h>

#include "omni_err.h"
#include "providers/provider.h"

struct llm_http;
struct llm_xfer;

struct llm_http_limits {
    long connect_ms;     /* TCP + TLS connect */
    long first_byte_ms;  /* start of the transfer to the first byte */
    long idle_ms;        /* longest silence once bytes flow */
    long max_host_conns; /* CURLMOPT_MAX_HOST_CONNECTIONS; 0: no limit */
    long max_idle_conns; /* CURLMOPT_MAXCONNECTS; 0: libcurl's default */
};

/* How a transfer ended. */
enum llm_xfer_end {
    LLM_XFER_OK = 0,          /* a whole response arrived (any status) */
    LLM_XFER_CONNECT,         /* no response: resolve, connect, TLS, send */
    LLM_XFER_BROKEN,          /* the connection failed mid-response */
    LLM_XFER_CONNECT_TIMEOUT, /* connect did not finish in connect_ms */
    LLM_XFER_FIRST_BYTE,      /* no byte within first_byte_ms */
    LLM_XFER_IDLE,            /* silent for idle_ms mid-response */
    LLM_XFER_DEADLINE,        /* the request's deadline passed */
};

struct llm_xfer_result {
    enum llm_xfer_end end;
    int status;         /* HTTP status, 0 when none arrived */
    const char *error;  /* what went wrong ("" for LLM_XFER_OK) */
    int64_t elapsed_us; /* start to end */
    /* Response headers, "" when absent. */
    const char *content_type;
    const char *retry_after;
    const char *retry_after_ms;
};

/* Body bytes (borrowed for the call).  Return 0 to go on; non-zero
 * cancels the transfer as llm_xfer_cancel does (no on_done follows). */
typedef int (*llm_xfer_data_cb)(void *arg, const char *p, size_t n);
/* The end.  The transfer is freed when this returns: drop the pointer,
 * do not cancel it. */
typedef void (*llm_xfer_done_cb)(void *arg, const struct llm_xfer_result *res);

/* A client on base; NULL with err set when curl cannot be set up. */
struct llm_http *llm_http_new(struct event_base *base,
                              const struct llm_http_limits *lim,
                              char err[OMNI_ERR_LEN]);
/* Cancel every transfer (no callbacks) and release the multi handle.
 * Call it from outside curl's callbacks, before the event base goes. */
void llm_http_free(struct llm_http *h);

/* Start req (its url, headers and body move into the transfer; req is
 * left empty).  deadline: absolute, on omni_now_ms()'s clock, 0 = none.
 * Returns NULL with err set if curl refuses the request. */
struct llm_xfer *llm_http_start(struct llm_http *h, struct llm_http_req *req,
                                int64_t deadline, llm_xfer_data_cb on_data,
                                llm_xfer_done_cb on_done, void *arg,
                                char err[OMNI_ERR_LEN]);
/* Abort now: no callback runs afterwards.  Safe inside any callback. */
void llm_xfer_cancel(struct llm_xfer *x);
/* Let x run to its end with no owner (no callback runs afterwards), so
 * that a reply read to its end keeps its connection for reuse.  Safe
 * inside any callback; its timeouts still bound it. */
void llm_xfer_detach(struct llm_xfer *x);

/* Response head, valid once bytes arrived.  Header values are "" when
 * absent. */
int llm_xfer_status(const struct llm_xfer *x);
const char *llm_xfer_content_type(const struct llm_xfer *x);
const char *llm_xfer_retry_after(const struct llm_xfer *x);
const char *llm_xfer_retry_after_ms(const struct llm_xfer *x);

/* Transfers started and not yet ended or reaped. */
size_t llm_http_in_flight(const struct llm_http *h);

#endif
