/*
 * lstream - one streamed reply as a Lambda response stream.
 *
 * The broker's events for a request become the chunked body of
 * POST /runtime/invocation/{id}/response with
 * Lambda-Runtime-Function-Response-Mode: streaming.  For HTTP events the
 * body starts with the HTTP-integration prelude (status and headers as
 * JSON, then 8 NUL bytes) and carries SSE; for direct invocations it is
 * the SSE alone.  A stream that fails after its first bytes ends with an
 * SSE error event and the trailers Lambda-Runtime-Function-Error-Type
 * and Lambda-Runtime-Function-Error-Body (base64 JSON).
 *
 * Single-threaded: curl_multi drives the upload and also waits on the
 * libomni socket; the read callback pauses the upload while no bytes
 * are waiting and the loop resumes it when the next event arrives.
 */
#ifndef OMNI_LSTREAM_H
#define OMNI_LSTREAM_H

#include <stdbool.h>
#include <stdint.h>

#include "omni.h"
#include "omni_err.h"
#include "routes.h"

struct omni_lstream_cfg {
    const char *url;             /* .../runtime/invocation/ID/response */
    bool http;                   /* HTTP event: prelude first */
    enum omni_reply_shape shape; /* OMNI_SHAPE_SSE or OMNI_SHAPE_MCP_SSE */
    int64_t give_up_ms;          /* monotonic ms to stop waiting for the
                                  * broker (its deadline has passed); 0:
                                  * never */
};

struct omni_lstream_result {
    long status;            /* of the POST; 0 if none arrived */
    int http_status;        /* the status in the prelude */
    char error_type[64];    /* the error trailer sent, "" if none */
    char code[48];          /* broker error code word, "" if none */
    uint64_t chunks;        /* chunk events forwarded */
    char err[OMNI_ERR_LEN]; /* why the POST failed */
};

/* Stream request id of client c, whose first event (already received,
 * borrowed) is first.  Returns OMNI_OK when the POST got a response (see
 * res->status), else OMNI_E_IO with res->err. */
enum omni_err omni_lstream_run(const struct omni_lstream_cfg *cfg,
                               omni_client *c, uint64_t id,
                               const struct omni_event *first,
                               struct omni_lstream_result *res);

#endif
