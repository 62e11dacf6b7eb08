/*
 * llm_retry - the retry decision (see llm_retry.h).
 *
 * Backoff: base * 2^retries, with "equal jitter" (half fixed, half
 * random) so a burst of failed calls does not come back in lockstep;
 * an upstream retry-after hint longer than that wins.
 */
#include "llm_retry.h"

#include "omni_cfg.h"

/* Built-in delays: 250 ms, 500 ms, 1 s, ...; a provider asking for
 * more than 30 s gets its error passed on with the hint instead. */
#define BASE_MS      250
#define MAX_DELAY_MS 30000

void llm_retry_policy_load(struct llm_retry_policy *p)
{
    p->max_retries = (int)omni_cfg_int("llm.retries");
    p->base_ms = BASE_MS;
    p->max_delay_ms = MAX_DELAY_MS;
}

struct llm_retry_decision llm_retry_decide(const struct llm_retry_policy *p,
                                           int retries,
                                           const struct llm_error *e, bool sent,
                                           int64_t now, int64_t deadline,
                                           uint32_t rnd)
{
    struct llm_retry_decision d = {false, 0};
    if (!e->retryable || sent || retries >= p->max_retries)
        return d;
    uint64_t backoff = (uint64_t)p->base_ms << (retries < 20 ? retries : 20);
    if (backoff > p->max_delay_ms)
        backoff = p->max_delay_ms;
    uint64_t half = backoff / 2;
    uint64_t delay = half + (half ? rnd % (half + 1) : 0);
    if (e->retry_after_ms > delay)
        delay = e->retry_after_ms;
    if (delay > p->max_delay_ms)
        return d;
    if (deadline && now + (int64_t)delay >= deadline)
        return d;
    d.retry = true;
    d.delay_ms = (uint32_t)delay;
    return d;
}
