/*
 * levent - Lambda invocation events in, Lambda payloads out.
 *
 * Two kinds of event are accepted:
 *  - HTTP events in payload format 2.0 (API Gateway HTTP API, Function
 *    URLs): method, rawPath (stage prefix removed), rawQueryString,
 *    headers, body (base64 when isBase64Encoded).  They are routed like
 *    HTTP requests by clients/http/routes.h.
 *  - Direct invocations (deployment/lambda/README.md, "Direct invocation"):
 *      {"service":"llm","op":"chat","body":{...}|"text",
 *       "stream":false,"timeout_ms":0,"idempotent":false,"auth":null}
 * Anything else is an invalid event with a message saying why.
 *
 * Out: payload-2.0 response JSON, the streaming prelude (JSON + 8 NUL
 * bytes), Runtime API error bodies and types (Function.NoService for
 * NO_SERVICE, ...), base64.
 */
#ifndef OMNI_LEVENT_H
#define OMNI_LEVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "omni_buf.h"
#include "omni_err.h"
#include "routes.h"

#define OMNI_LEVENT_NUL_LEN 8 /* NUL bytes after the streaming prelude */

enum omni_levent_kind {
    OMNI_LEVENT_BAD = 0,
    OMNI_LEVENT_HTTP,
    OMNI_LEVENT_DIRECT,
};

/* A parsed event.  Strings are owned by the event. */
struct omni_levent {
    enum omni_levent_kind kind;
    char err[OMNI_ERR_LEN]; /* BAD: why */
    /* HTTP */
    bool function_url;     /* a Function URL event: the reply may stream */
    char *method, *target; /* target: path[?query] */
    char *authorization, *content_type, *accept, *mcp_session, *mcp_protocol,
        *timeout_ms;
    bool body_invalid; /* isBase64Encoded with a bad body */
    /* DIRECT */
    char *service, *op, *auth;
    bool stream, idempotent;
    uint32_t direct_timeout_ms;
    /* both: the request body (decoded) */
    struct omni_buf body;
};

/* Parse the event p[0..n).  Always fills ev (kind BAD with err on
 * failure); release it with omni_levent_release(). */
void omni_levent_parse(const char *p, size_t n, struct omni_levent *ev);
void omni_levent_release(struct omni_levent *ev);

/* The HTTP request of an HTTP event, borrowing from ev. */
void omni_levent_http_in(const struct omni_levent *ev, struct omni_http_in *in);

/* Append the payload-2.0 response of out to json. */
void omni_levent_response(const struct omni_http_out *out,
                          struct omni_buf *json);

/* Append the HTTP-integration streaming prelude for status and
 * content_type, then the 8 NUL bytes, to b. */
void omni_levent_prelude(int status, const char *content_type,
                         struct omni_buf *b);

/* The Lambda error type of a broker code word: "Function." + the word in
 * CamelCase (NO_SERVICE -> Function.NoService); written to out. */
void omni_levent_error_type(const char *code, char *out, size_t n);

/* Append a Runtime API error body {"errorMessage","errorType",
 * "stackTrace":[]} (+ "code", "status", "retryAfterMs" when code is not
 * NULL) to b; the message is redacted. */
void omni_levent_error_body(struct omni_buf *b, const char *type,
                            const char *message, const char *code, int status,
                            uint32_t retry_after_ms);

void omni_levent_b64_encode(const void *p, size_t n, struct omni_buf *out);
/* Decode standard base64 (padding optional, no whitespace).  Returns 0,
 * or -1 on a bad character or length. */
int omni_levent_b64_decode(const char *s, size_t n, struct omni_buf *out);

#endif
