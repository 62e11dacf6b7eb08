/*
 * provider - one table of operations per upstream API.
 *
 * The unified form is OpenAI's: a chat request is an OpenAI Chat
 * Completions request (jansson json_t), a reply is a chat.completion
 * object, a stream is a sequence of chat.completion.chunk objects.  A
 * provider translates unified -> upstream request, and upstream reply,
 * stream events and errors -> unified.  It does no I/O: the engine
 * (llm_http.c) sends what build_* returns and feeds back what arrives.
 *
 * Ownership: build_* fill a struct llm_http_req the caller releases with
 * llm_http_req_release(); parse functions return new references;
 * stream state is freed with stream_free.  Nothing here logs a key.
 */
#ifndef LLM_PROVIDER_H
#define LLM_PROVIDER_H

#include <curl/curl.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "llm_sse.h"
#include "omni_err.h"

/* Where a request goes: resolved from a "provider/model" name. */
struct llm_target {
    const struct llm_provider *prov;
    const char *name;     /* provider name as configured: "openai", "groq" */
    const char *model;    /* upstream model id, "gpt-4o-mini" */
    const char *base_url; /* "https://api.openai.com/v1" (no trailing /) */
    const char *api_key;  /* may be "" for keyless local servers */
    const char *version;  /* anthropic-version, or NULL */
};

/* An upstream HTTP request, built by a provider. */
struct llm_http_req {
    char *url;                  /* owned */
    struct curl_slist *headers; /* owned */
    char *body;                 /* owned, NULL for GET */
    size_t body_len;
};
void llm_http_req_release(struct llm_http_req *r);

/* An upstream failure mapped onto the error vocabulary. */
struct llm_error {
    enum omni_err code;      /* UPSTREAM, RATE_LIMITED, TIMEOUT, ... */
    int status;              /* upstream HTTP status, 0 if none */
    uint32_t retry_after_ms; /* from retry-after-ms / retry-after */
    bool retryable;          /* 429, 5xx, 529, connection errors */
    char message[OMNI_ERR_LEN];
};

struct llm_stream;

/* Receives each unified chunk (borrowed for the call). */
typedef void (*llm_chunk_cb)(json_t *chunk, void *arg);
/* Receives a unified chunk that is the upstream's own bytes: one JSON
 * object on one line (borrowed for the call). */
typedef void (*llm_raw_cb)(const char *p, size_t n, void *arg);

enum llm_stream_rc {
    LLM_STREAM_MORE = 0, /* go on feeding */
    LLM_STREAM_DONE,     /* the upstream said the stream is complete */
    LLM_STREAM_ERROR,    /* an error event: err is filled */
};

struct llm_provider {
    const char *name; /* "openai", "anthropic" */

    enum omni_err (*build_chat)(const struct llm_target *t, json_t *req,
                                bool stream, struct llm_http_req *out,
                                char err[OMNI_ERR_LEN]);
    /* A whole (non-streamed) reply body -> chat.completion, or NULL with
     * err set. */
    json_t *(*parse_chat)(const struct llm_target *t, const char *body,
                          size_t len, char err[OMNI_ERR_LEN]);
    /* Optional: parse_chat that also sets *verbatim when body (starting
     * with '{') already is that chat.completion, so that its bytes can
     * be sent instead of the re-serialised reply. */
    json_t *(*parse_chat_verbatim)(const struct llm_target *t, const char *body,
                                   size_t len, bool *verbatim,
                                   char err[OMNI_ERR_LEN]);

    struct llm_stream *(*stream_new)(const struct llm_target *t, json_t *req);
    /* One SSE event of a streamed reply: emits zero or more chunks. */
    enum llm_stream_rc (*stream_event)(struct llm_stream *s,
                                       const struct llm_sse_event *ev,
                                       llm_chunk_cb emit, void *arg,
                                       struct llm_error *err);
    /* Optional: stream_event that passes a chunk needing no translation
     * to emit_raw as its bytes instead of parsing it (others to emit). */
    enum llm_stream_rc (*stream_event_raw)(struct llm_stream *s,
                                           const struct llm_sse_event *ev,
                                           llm_chunk_cb emit,
                                           llm_raw_cb emit_raw, void *arg,
                                           struct llm_error *err);
    /* Usage seen in the stream so far ({"prompt_tokens",...}) or NULL;
     * borrowed. */
    json_t *(*stream_usage)(struct llm_stream *s);
    void (*stream_free)(struct llm_stream *s);

    /* Embeddings and models; NULL when the API has none. */
    enum omni_err (*build_embed)(const struct llm_target *t, json_t *req,
                                 struct llm_http_req *out,
                                 char err[OMNI_ERR_LEN]);
    json_t *(*parse_embed)(const struct llm_target *t, json_t *req,
                           const char *body, size_t len,
                           char err[OMNI_ERR_LEN]);
    enum omni_err (*build_models)(const struct llm_target *t,
                                  struct llm_http_req *out,
                                  char err[OMNI_ERR_LEN]);
    json_t *(*parse_models)(const struct llm_target *t, const char *body,
                            size_t len, char err[OMNI_ERR_LEN]);

    /* Map an HTTP error reply.  retry_after / retry_after_ms are the
     * header values or NULL. */
    void (*map_error)(int status, const char *retry_after,
                      const char *retry_after_ms, const char *body, size_t len,
                      struct llm_error *out);
};

extern const struct llm_provider llm_openai; /* also OpenAI-compatible */
extern const struct llm_provider llm_anthropic;

/* Parse retry-after-ms or retry-after (seconds or an HTTP date) into ms;
 * 0 when absent or unparseable. */
uint32_t llm_retry_after_ms(const char *retry_after,
                            const char *retry_after_ms);

#endif
