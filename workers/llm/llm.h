/*
 * llm - the llm service: chat, embeddings and models (PROTOCOL.md 5).
 *
 * One struct llm_engine per worker process holds what every request
 * shares: the HTTP client, the response cache, the provider table, the
 * retry policy and the counters.  Each request becomes one operation
 * object (struct llm_op) attached to it with omni_wreq_set_data; the
 * operation ends the request exactly once and frees itself when its
 * last upstream transfer is gone.
 */
#ifndef LLM_H
#define LLM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "llm_cache.h"
#include "llm_http.h"
#include "llm_retry.h"
#include "llm_route.h"
#include "omni_buf.h"
#include "omni_worker.h"

/* Upstream statuses counted one by one; 0 is "no status" (connection). */
#define LLM_STATUS_MAX 600

struct llm_stats {
    uint64_t requests, chat, embeddings, models;
    uint64_t upstream_calls, retries;
    uint64_t upstream_errors[LLM_STATUS_MAX];
    uint64_t timeouts;
    uint64_t cache_hits, cache_misses, cache_unavailable, cache_stores;
    /* llm_aug.c: MCP tool loops, RAG chats, the semantic cache */
    uint64_t tool_loops, tool_turns, tool_calls, tool_errors, tool_limits;
    uint64_t rag_chats, rag_errors;
    uint64_t sem_hits, sem_misses, sem_unavailable, sem_stores;
    uint64_t latency_us_sum, latency_count;
};

struct llm_engine {
    struct omni_worker *w;
    struct event_base *base;
    struct llm_http *http;
    struct llm_cache *cache; /* NULL: no redis_url, or cache.ttl_s = 0 */
    struct llm_routes routes;
    struct llm_retry_policy retry;
    struct llm_stats stats;
    size_t ops; /* operations alive (answered or not) */
    bool draining;
    struct event *reaper; /* frees the engine once drained */
};

/* An operation: the first member of every per-request object. */
struct llm_op {
    struct llm_engine *e;
    struct omni_wreq *r; /* NULL once answered or cancelled */
    void (*cancel)(struct llm_op *op);
};

/* Build the engine from the configuration; NULL with err set. */
struct llm_engine *llm_engine_new(struct omni_worker *w,
                                  char err[OMNI_ERR_LEN]);
void llm_engine_free(struct llm_engine *e);
/* Stop taking work; the engine frees itself once its operations end. */
void llm_engine_drain(struct llm_engine *e);

/* Service entry points (from the worker runtime). */
void llm_request(struct llm_engine *e, struct omni_wreq *r);
void llm_cancel(struct omni_wreq *r);
/* Append ,"llm":{...} counters to out. */
void llm_stats_json(struct llm_engine *e, struct omni_buf *out);

/* Operations (llm_call.c, llm_models.c); they take the request. */
void llm_chat_start(struct llm_engine *e, struct omni_wreq *r, bool embed);
/* Does the chat body req name MCP tools, a RAG collection or the
 * semantic cache? */
bool llm_aug_wanted(json_t *req);
/* Serve such a chat (llm_aug.c); takes r and req (the parsed body). */
void llm_aug_start(struct llm_engine *e, struct omni_wreq *r, json_t *req);
void llm_models_start(struct llm_engine *e, struct omni_wreq *r);

/* Bookkeeping shared by the operations (llm.c). */
void llm_op_begin(struct llm_op *op, struct llm_engine *e, struct omni_wreq *r,
                  void (*cancel)(struct llm_op *));
/* The operation is gone (call just before freeing it). */
void llm_op_end(struct llm_op *op);
/* Count an upstream failure by status (0: no HTTP status). */
void llm_stats_upstream_error(struct llm_engine *e, int status);
/* A random 32-bit value for jitter. */
uint32_t llm_random(void);

#endif
