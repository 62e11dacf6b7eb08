/*
 * llm_retry - when to try an upstream call again, and after how long.
 *
 * One decision for every upstream call of the llm worker: retry 429,
 * 5xx, 529 and connection errors (the provider's map_error and the HTTP
 * layer say which via struct llm_error.retryable) while nothing has
 * reached the client, up to a number of retries, after a jittered
 * exponential backoff that honours the upstream's retry-after hint and
 * never waits past the request's deadline.  Pure functions: no clock,
 * no randomness of their own, so tests can pin every branch.
 */
#ifndef LLM_RETRY_H
#define LLM_RETRY_H

#include <stdbool.h>
#include <stdint.h>

#include "providers/provider.h"

struct llm_retry_policy {
    int max_retries;       /* llm.retries */
    uint32_t base_ms;      /* first backoff before jitter */
    uint32_t max_delay_ms; /* longest wait we accept, retry-after included */
};

struct llm_retry_decision {
    bool retry;
    uint32_t delay_ms;
};

/* The policy from the configuration (llm.retries) with built-in delays. */
void llm_retry_policy_load(struct llm_retry_policy *p);

/* Decide after a failed attempt.  retries: retries done so far; sent:
 * something already reached the client; now, deadline: omni_now_ms()
 * clock (deadline 0 = none); rnd: a random 32-bit value for the jitter.
 * A wait that would end at or past the deadline, or exceed
 * max_delay_ms, means no retry. */
struct llm_retry_decision llm_retry_decide(const struct llm_retry_policy *p,
                                           int retries,
                                           const struct llm_error *e, bool sent,
                                           int64_t now, int64_t deadline,
                                           uint32_t rnd);

#endif
