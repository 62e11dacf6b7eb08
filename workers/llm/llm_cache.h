/*
 * llm_cache - exact response cache in Redis, through hiredis' async API
 * on the worker's libevent loop.
 *
 * Key: "omni:{cache}:" + hex SHA-256 of the canonical request: the body
 * with the fields that do not change the answer dropped (stream,
 * stream_options, user, omni, metadata, store, service_tier,
 * prompt_cache_key, safety_identifier), "model" set to the resolved
 * "provider/model", dumped with sorted keys and no spaces.  Sampling
 * fields (temperature, seed, n, ...) stay in the key; a request is
 * cached whatever its temperature (opt out per request with
 * "omni":{"cache":false}).  Each key is a Redis hash: field "c" holds a
 * non-streamed reply (the chat.completion JSON), field "s" a streamed
 * one (its chunks, one JSON per line), so a streamed request never
 * hits a non-streamed entry or the reverse.  The key expires
 * cache.ttl_s after the last write.
 *
 * Redis is never needed to serve: a lookup while Redis is down answers
 * UNAVAILABLE at once, one that takes longer than cache.timeout_ms
 * answers UNAVAILABLE then; the connection comes back with backoff and
 * a rate-limited warning says so.
 */
#ifndef LLM_CACHE_H
#define LLM_CACHE_H

#include <event2/event.h>
#include <jansson.h>
#include <stddef.h>

#include "omni_buf.h"
#include "omni_err.h"

#define LLM_CACHE_PREFIX "omni:{cache}:"
/* Prefix + 64 hex digits + NUL. */
#define LLM_CACHE_KEY_LEN (sizeof LLM_CACHE_PREFIX + 64)

/* The canonical text of req for model, appended to out. */
void llm_cache_canonical(json_t *req, const char *model, struct omni_buf *out);
/* The Redis key of req for model. */
void llm_cache_key(json_t *req, const char *model, char key[LLM_CACHE_KEY_LEN]);

struct llm_cache_url {
    char *host; /* TCP, or NULL */
    int port;
    char *path; /* Unix socket, or NULL */
    char *user; /* NULL when none */
    char *pass; /* NULL when none */
    int db;
};
/* Parse redis://[user:pass@]host[:port][/db] or unix:///path[?db=N]. */
enum omni_err llm_cache_parse_url(const char *url, struct llm_cache_url *u,
                                  char err[OMNI_ERR_LEN]);
void llm_cache_url_release(struct llm_cache_url *u);

enum llm_cache_state {
    LLM_CACHE_CONNECTING,
    LLM_CACHE_UP,
    LLM_CACHE_DOWN,
};

enum llm_cache_result {
    LLM_CACHE_HIT,
    LLM_CACHE_MISS,
    LLM_CACHE_UNAVAILABLE,
};

struct llm_cache;
struct llm_cache_op;

/* Connect (asynchronously) to url; NULL with err set if the URL is
 * malformed.  ttl_s > 0. */
struct llm_cache *llm_cache_new(struct event_base *base, const char *url,
                                long ttl_s, long timeout_ms,
                                char err[OMNI_ERR_LEN]);
/* Disconnect; pending lookups must have been cancelled. */
void llm_cache_free(struct llm_cache *c);
enum llm_cache_state llm_cache_state(const struct llm_cache *c);
/* "up", "connecting" or "down". */
const char *llm_cache_state_name(const struct llm_cache *c);

/* The value (borrowed for the call) on a HIT. */
typedef void (*llm_cache_cb)(void *arg, enum llm_cache_result res,
                             const char *val, size_t n);

/* Look field ("c" or "s") of key up.  Returns NULL when Redis is not
 * connected (the caller treats that as UNAVAILABLE at once); else cb is
 * called exactly once, later, unless the op is cancelled first. */
struct llm_cache_op *llm_cache_get(struct llm_cache *c, const char *key,
                                   const char *field, llm_cache_cb cb,
                                   void *arg);
/* Forget a lookup: its callback will not run. */
void llm_cache_op_cancel(struct llm_cache_op *op);
/* Store val in field of key and refresh its TTL (fire and forget; a
 * no-op while Redis is not connected). */
void llm_cache_put(struct llm_cache *c, const char *key, const char *field,
                   const char *val, size_t n);

#endif
