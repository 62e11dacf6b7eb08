/*
 * llm_up - one upstream exchange: a chat or embeddings request sent to
 * a provider, with its retries, ending in one unified reply.
 *
 * The caller (the plain chat operation of llm_call.c, or the augmented
 * one of llm_aug.c) gives the request in unified form and gets back the
 * unified chunks of a streamed reply, then exactly one done or fail
 * callback, after which the exchange is freed.  Retries (llm_retry)
 * happen only while nothing reached the client: the exchange counts the
 * chunks it handed out, and the caller says whether something else was
 * sent before.  Owns the transfer, the retry timer, the SSE parser and
 * the provider's stream state; borrows the target and the request.
 */
#ifndef LLM_UP_H
#define LLM_UP_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "providers/provider.h"

struct llm_engine;
struct llm_up;

struct llm_up_cbs {
    /* One unified chunk of a streamed reply (borrowed for the call).
     * Runs inside a curl callback: start no transfer from here. */
    void (*chunk)(void *arg, json_t *chunk);
    /* Success: reply is the unified chat.completion or embeddings
     * response (borrowed) of a non-streamed exchange, NULL at the end
     * of a stream.  May run inside a curl callback.  The exchange is
     * freed when this returns: drop the pointer, do not cancel it. */
    void (*done)(void *arg, json_t *reply);
    /* Failure for good: err->code is UPSTREAM (status: the provider's,
     * or 502) or TIMEOUT (status 0), or the build error; err->message
     * starts with the configured provider name.  Freed as for done. */
    void (*fail)(void *arg, const struct llm_error *err);
    /* Optional: a unified chunk, or the reply of a non-streamed chat,
     * that is the upstream's own bytes (one JSON object; a chunk is on
     * one line), given here instead of to chunk or done when the
     * provider finds it needs no translation.  raw_done is a done: the
     * same rules apply.  When NULL, everything comes parsed. */
    void (*raw_chunk)(void *arg, const char *p, size_t n);
    void (*raw_done)(void *arg, const char *p, size_t n);
};

struct llm_up_spec {
    const struct llm_target *t; /* borrowed until the last callback */
    json_t *req;                /* unified body; a reference is taken */
    bool embed;
    bool stream;
    int64_t deadline; /* omni_now_ms() clock, 0 = none */
    bool sent;        /* something already reached the client */
};

/* Build and send the first attempt.  Returns NULL with err filled (no
 * callback follows) when the provider refuses to build the request or
 * curl cannot start it; callbacks only ever come later, from the loop.
 * Must not be called from inside a curl callback. */
struct llm_up *llm_up_start(struct llm_engine *e, const struct llm_up_spec *s,
                            const struct llm_up_cbs *cb, void *arg,
                            struct llm_error *err);
/* Abort now: no callback runs afterwards, u is freed (NULL is fine). */
void llm_up_cancel(struct llm_up *u);

#endif
