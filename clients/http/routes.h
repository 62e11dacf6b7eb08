/*
 * routes - the OpenAI-compatible HTTP API mapped onto broker requests,
 * independent of any HTTP library (evhttp in omni-http, Lambda events in
 * the Lambda runtime).
 *
 * omni_route_resolve() turns one HTTP request (method, raw path with
 * query, the headers that matter, body) into either a broker request
 * (service, op, JSON body, stream flag, deadline, client key) or an
 * immediate reply (404, 405, 413, 400, 401, 403, health, metrics).  The
 * omni_reply_* functions shape what comes back from the broker: a final
 * body into an HTTP status and JSON, a chunk into SSE bytes, an error
 * event into OpenAI's error JSON with the matching status.
 */
#ifndef OMNI_ROUTES_H
#define OMNI_ROUTES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "omni_buf.h"

#define OMNI_ROUTE_MAX_ID         512 /* longest document id, bytes */
#define OMNI_ROUTE_MAX_TIMEOUT_MS 86400000u

/* Route labels, also the metrics' route dimension. */
enum omni_route_name {
    OMNI_R_UNKNOWN = 0,
    OMNI_R_CHAT,
    OMNI_R_EMBEDDINGS,
    OMNI_R_MODELS,
    OMNI_R_MCP_TOOLS,
    OMNI_R_MCP_CALL,
    OMNI_R_MCP,
    OMNI_R_RAG_INGEST,
    OMNI_R_RAG_QUERY,
    OMNI_R_RAG_DELETE,
    OMNI_R_RAG_LIST,
    OMNI_R_HEALTH,
    OMNI_R_METRICS,
    OMNI_R__COUNT
};

/* One HTTP request as the transport sees it.  Every field is borrowed;
 * absent headers are NULL. */
struct omni_http_in {
    const char *method;        /* "GET", "POST", ... */
    const char *target;        /* raw request target: path[?query] */
    const char *authorization; /* Authorization */
    const char *content_type;  /* Content-Type */
    const char *accept;        /* Accept */
    const char *mcp_session;   /* Mcp-Session-Id */
    const char *mcp_protocol;  /* MCP-Protocol-Version */
    const char *timeout_ms;    /* x-omni-timeout-ms */
    bool loopback;             /* peer is 127.0.0.0/8 or ::1 */
    const char *body;
    size_t body_len;
};

/* What the front was configured with. */
struct omni_route_cfg {
    char **keys; /* client keys; none: no authentication */
    size_t nkeys;
    size_t max_body; /* bytes */
};

/* An HTTP reply to write.  body is JSON unless content_type says other;
 * session and allow are extra headers when not NULL. */
struct omni_http_out {
    int status;
    const char *content_type; /* static string, NULL: no body */
    struct omni_buf body;
    char *session;          /* Mcp-Session-Id, owned */
    const char *allow;      /* Allow (405), static */
    uint32_t retry_after_s; /* Retry-After, 0: none */
    char code[48];          /* error code word sent, "" on success */
};

/* How the broker's replies to a routed request become HTTP. */
enum omni_reply_shape {
    OMNI_SHAPE_JSON,    /* final body, 200 application/json */
    OMNI_SHAPE_SSE,     /* chunks as "data: ..." events, then [DONE] */
    OMNI_SHAPE_MCP,     /* final {session,status,message} */
    OMNI_SHAPE_MCP_SSE, /* chunks as "event: message" events */
};

enum omni_route_kind {
    OMNI_ROUTE_REPLY,   /* answer with out at once */
    OMNI_ROUTE_CALL,    /* send service/op/body to the broker */
    OMNI_ROUTE_HEALTH,  /* the transport answers from omni/ping */
    OMNI_ROUTE_METRICS, /* the transport answers from its counters */
};

struct omni_route {
    enum omni_route_kind kind;
    enum omni_route_name name;
    const char *service; /* CALL: static strings */
    const char *op;
    struct omni_buf body; /* CALL: JSON for the broker */
    bool stream;
    enum omni_reply_shape shape;
    uint32_t timeout_ms;      /* 0: the broker's default */
    const char *auth;         /* the client key presented (borrowed from
                               * the cfg), NULL without keys */
    struct omni_http_out out; /* REPLY */
};

/* Split a comma-separated key list (blanks trimmed, empties dropped)
 * into cfg->keys; omni_route_cfg_release() frees them. */
void omni_route_cfg_keys(struct omni_route_cfg *cfg, const char *list);
void omni_route_cfg_release(struct omni_route_cfg *cfg);

/* Map in to a route.  r is overwritten; release it with
 * omni_route_release(). */
void omni_route_resolve(const struct omni_route_cfg *cfg,
                        const struct omni_http_in *in, struct omni_route *r);
void omni_route_release(struct omni_route *r);

/* The metrics label of a route: "chat", "rag_query", ... */
const char *omni_route_label(enum omni_route_name name);

void omni_http_out_init(struct omni_http_out *out);
void omni_http_out_release(struct omni_http_out *out);

/* An OpenAI error reply: {"error":{"message","type","code","param"}}
 * with status; code is a lower-case word (NULL: from the status).  The
 * message is redacted. */
void omni_reply_error(struct omni_http_out *out, int status, const char *code,
                      const char *message);
/* An error event from the broker (code word, status, message, retry
 * hint) as an HTTP error reply. */
void omni_reply_event_error(struct omni_http_out *out, const char *code,
                            int status, const char *message,
                            uint32_t retry_after_ms);
/* A final body as the HTTP reply of shape (JSON or MCP); a malformed MCP
 * final is a 502. */
void omni_reply_final(struct omni_http_out *out, enum omni_reply_shape shape,
                      const void *body, size_t n);
/* Append the SSE bytes of one chunk body to sse. */
void omni_reply_chunk(struct omni_buf *sse, enum omni_reply_shape shape,
                      const void *body, size_t n);
/* Append what ends a stream that went well ("data: [DONE]" for SSE). */
void omni_reply_stream_end(struct omni_buf *sse, enum omni_reply_shape shape);
/* Append an error event for a stream whose headers are already out. */
void omni_reply_stream_error(struct omni_buf *sse, enum omni_reply_shape shape,
                             const char *code, int status, const char *message);

/* The OpenAI error type of an HTTP status. */
const char *omni_reply_error_type(int status);

/* Percent-decode s[0..n) into out (NUL-terminated).  Returns -1 on a bad
 * escape or a decoded NUL. */
int omni_route_unescape(const char *s, size_t n, struct omni_buf *out);
/* True for [A-Za-z0-9_.-]{1,64}. */
bool omni_route_valid_collection(const char *s);
/* True for 1..OMNI_ROUTE_MAX_ID bytes of UTF-8 without control chars. */
bool omni_route_valid_id(const char *s, size_t n);
/* True when the Authorization value carries one of cfg's keys (compared
 * in constant time); *key gets the matching key. */
bool omni_route_auth(const struct omni_route_cfg *cfg,
                     const char *authorization, const char **key);

#endif
