/*
 * provider_common - helpers the provider translators share: request
 * building (URL, headers, JSON body), JSON reply checks, error mapping
 * from HTTP status and retry headers, base64 float vectors.  Private to
 * workers/llm/providers/.
 */
#ifndef LLM_PROVIDER_COMMON_H
#define LLM_PROVIDER_COMMON_H

#include <stdbool.h>

#include "provider.h"

/* Start a request: url = base + path (both borrowed; a trailing '/' on
 * base is dropped), header Accept (application/json, or
 * text/event-stream when sse).  With a body (borrowed, serialised):
 * Content-Type application/json and an empty Expect (no 100-continue
 * round trip). */
void prov_req_init(struct llm_http_req *r, const char *base, const char *path,
                   json_t *body, bool sse);
/* Append one "Name: value" header. */
void prov_req_header(struct llm_http_req *r, const char *name,
                     const char *value);

/* Stream state of every provider (each uses its own part). */
struct llm_stream {
    bool want_usage; /* the client asked stream_options.include_usage */
    json_t *usage;   /* unified usage seen so far, or NULL */
    /* anthropic: message identity and content block bookkeeping */
    char *id;
    char *model;
    json_int_t created;
    json_int_t in_tokens; /* input + cache tokens from message_start */
    json_int_t cached;    /* cache_read_input_tokens */
    json_int_t out_tokens;
    struct prov_block {
        int tool;  /* tool_calls index of a tool_use block, or -1 */
        bool args; /* an arguments fragment was passed on */
    } * blocks;    /* by content block index */
    size_t nblocks;
    int ntools;
    bool role_sent; /* the first chunk (role) went out */
};

/* Parse a reply body that must be a JSON object; NULL with err set
 * (prefixed with prov) otherwise. */
json_t *prov_parse_object(const char *prov, const char *body, size_t len,
                          char err[OMNI_ERR_LEN]);

/* Fill out for an HTTP failure of provider prov: code UPSTREAM, the
 * status, the retry hint, retryable for 429 and 5xx; message is
 * "prov: " + msg (or a generic text naming the status), redacted. */
void prov_error(struct llm_error *out, const char *prov, int status,
                const char *retry_after, const char *retry_after_ms,
                const char *msg);
/* Format err (OMNI_ERR_LEN) as "prov: fmt...", redacted. */
void prov_errf(char *err, const char *prov, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A printable excerpt of a non-JSON error body, for messages. */
void prov_body_excerpt(const char *body, size_t len, char *out, size_t n);

/* A copy of s with every key of the Omni request that must not reach an
 * upstream removed ("omni", MCP tool entries), model set to model. */
json_t *prov_clean_request(json_t *req, const char *model);

/* The stream_options.include_usage flag of a unified request. */
bool prov_wants_usage(json_t *req);

/* Float vectors as OpenAI's base64 (little-endian float32). */
json_t *prov_floats_to_b64(json_t *arr);
json_t *prov_b64_to_floats(const char *s, size_t n);

/* {"object":"list","data":[...]} from an upstream list of models:
 * each id is prefixed "name/"; owned_by defaults to name. */
json_t *prov_models_list(json_t *data, const char *name);

/* Current Unix time in seconds, for "created". */
json_int_t prov_now(void);

#endif
