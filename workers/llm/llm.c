/*
 * llm - the engine: what every request of the llm worker shares, the
 * dispatch of operations, cancellation and the counters (see llm.h).
 *
 * Fails at start-up (llm_engine_new returns NULL with the reason) on a
 * malformed provider list or Redis URL, or when curl cannot be set up;
 * after that every failure is one request's error.
 */
#include "llm.h"

#include <string.h>
#include <unistd.h>

#include "omni_alloc.h"
#include "omni_cfg.h"
#include "omni_log.h"
#include "omni_time.h"

static uint32_t rnd_state;

uint32_t llm_random(void)
{
    /* xorshift32: jitter needs spread, not secrecy. */
    uint32_t x = rnd_state ? rnd_state : 0x9e3779b9u;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    rnd_state = x;
    return x;
}

static void on_reaper(evutil_socket_t fd, short what, void *arg)
{
    struct llm_engine *e = arg;
    (void)fd;
    (void)what;
    omni_worker_set_data(e->w, NULL);
    llm_engine_free(e);
}

static void log_providers(const struct llm_routes *rt)
{
    for (size_t i = 0; i < rt->n; i++)
        if (rt->v[i].enabled)
            omni_info("provider '%s' at '%s'%s", rt->v[i].name,
                      rt->v[i].base_url, *rt->v[i].api_key ? "" : " (no key)");
    if (llm_routes_enabled(rt) == 0)
        omni_info("no LLM provider is configured: set OPENAI_API_KEY or "
                  "ANTHROPIC_API_KEY, or OPENAI_BASE_URL / "
                  "ANTHROPIC_BASE_URL for a keyless server, or "
                  "OMNI_PROVIDERS");
}

struct llm_engine *llm_engine_new(struct omni_worker *w, char err[OMNI_ERR_LEN])
{
    struct llm_engine *e = omni_calloc(1, sizeof *e);
    e->w = w;
    e->base = omni_worker_base(w);
    rnd_state = (uint32_t)omni_now_us() ^ ((uint32_t)getpid() << 16);
    if (llm_routes_load(&e->routes, err) != OMNI_OK) {
        omni_free(e);
        return NULL;
    }
    llm_retry_policy_load(&e->retry);
    struct llm_http_limits lim = {
        .connect_ms = omni_cfg_int("llm.connect_timeout_ms"),
        .first_byte_ms = omni_cfg_int("llm.first_byte_timeout_ms"),
        .idle_ms = omni_cfg_int("llm.idle_timeout_ms"),
        .max_host_conns = omni_cfg_int("llm.max_host_connections"),
        .max_idle_conns = omni_cfg_int("llm.max_idle_connections"),
    };
    e->http = llm_http_new(e->base, &lim, err);
    const char *url = omni_cfg_str("redis_url");
    long ttl = omni_cfg_int("cache.ttl_s");
    if (e->http && *url && ttl > 0) {
        e->cache = llm_cache_new(e->base, url, ttl,
                                 omni_cfg_int("cache.timeout_ms"), err);
        if (!e->cache) {
            llm_http_free(e->http);
            e->http = NULL;
        }
    }
    if (!e->http) {
        llm_routes_release(&e->routes);
        omni_free(e);
        return NULL;
    }
    e->reaper = event_new(e->base, -1, 0, on_reaper, e);
    log_providers(&e->routes);
    if (!e->cache)
        omni_info("response cache off (%s)",
                  *url ? "cache.ttl_s is 0" : "no redis_url");
    return e;
}

void llm_engine_free(struct llm_engine *e)
{
    if (!e)
        return;
    llm_cache_free(e->cache);
    llm_http_free(e->http);
    llm_routes_release(&e->routes);
    event_free(e->reaper);
    omni_free(e);
}

void llm_engine_drain(struct llm_engine *e)
{
    e->draining = true;
    if (e->ops == 0)
        event_active(e->reaper, EV_TIMEOUT, 0);
}

void llm_op_begin(struct llm_op *op, struct llm_engine *e, struct omni_wreq *r,
                  void (*cancel)(struct llm_op *))
{
    op->e = e;
    op->r = r;
    op->cancel = cancel;
    e->ops++;
}

/* The last operation of a draining engine schedules its release: not
 * now, since we may be inside a curl or hiredis callback. */
void llm_op_end(struct llm_op *op)
{
    struct llm_engine *e = op->e;
    e->ops--;
    if (e->draining && e->ops == 0)
        event_active(e->reaper, EV_TIMEOUT, 0);
}

void llm_request(struct llm_engine *e, struct omni_wreq *r)
{
    struct omni_str op = omni_wreq_op(r);
    e->stats.requests++;
    if (e->draining) {
        omni_wreq_error(r, OMNI_E_UNAVAILABLE, 0, 0, "llm worker is draining");
    } else if (omni_str_eq(op, "chat")) {
        e->stats.chat++;
        llm_chat_start(e, r, false);
    } else if (omni_str_eq(op, "embeddings")) {
        e->stats.embeddings++;
        llm_chat_start(e, r, true);
    } else if (omni_str_eq(op, "models")) {
        e->stats.models++;
        llm_models_start(e, r);
    } else {
        omni_wreq_error(r, OMNI_E_UNSUPPORTED, 0, 0,
                        "service 'llm' has no operation '%.*s'",
                        (int)(op.n > 64 ? 64 : op.n), op.p);
    }
}

void llm_cancel(struct omni_wreq *r)
{
    struct llm_op *op = omni_wreq_data(r);
    if (!op)
        return;
    omni_wreq_set_data(r, NULL);
    op->cancel(op);
}

void llm_stats_upstream_error(struct llm_engine *e, int status)
{
    if (status < 0 || status >= LLM_STATUS_MAX)
        status = 0;
    e->stats.upstream_errors[status]++;
}

void llm_stats_json(struct llm_engine *e, struct omni_buf *out)
{
    const struct llm_stats *s = &e->stats;
    omni_buf_addf(
        out,
        ",\"llm\":{\"requests\":%llu,\"chat\":%llu,"
        "\"embeddings\":%llu,\"models\":%llu,\"in_flight\":%zu,"
        "\"transfers\":%zu,\"upstream_calls\":%llu,"
        "\"retries\":%llu,\"timeouts\":%llu,"
        "\"upstream_latency_us_sum\":%llu,"
        "\"upstream_latency_count\":%llu,\"upstream_errors\":{",
        (unsigned long long)s->requests, (unsigned long long)s->chat,
        (unsigned long long)s->embeddings, (unsigned long long)s->models,
        e->ops, llm_http_in_flight(e->http),
        (unsigned long long)s->upstream_calls, (unsigned long long)s->retries,
        (unsigned long long)s->timeouts, (unsigned long long)s->latency_us_sum,
        (unsigned long long)s->latency_count);
    const char *sep = "";
    for (int i = 0; i < LLM_STATUS_MAX; i++) {
        if (!s->upstream_errors[i])
            continue;
        omni_buf_addf(out, "%s\"%d\":%llu", sep, i,
                      (unsigned long long)s->upstream_errors[i]);
        sep = ",";
    }
    omni_buf_addf(out,
                  "},\"cache\":{\"state\":\"%s\",\"hits\":%llu,"
                  "\"misses\":%llu,\"unavailable\":%llu,\"stores\":%llu}",
                  e->cache ? llm_cache_state_name(e->cache) : "off",
                  (unsigned long long)s->cache_hits,
                  (unsigned long long)s->cache_misses,
                  (unsigned long long)s->cache_unavailable,
                  (unsigned long long)s->cache_stores);
    omni_buf_addf(
        out,
        ",\"tools\":{\"loops\":%llu,\"turns\":%llu,"
        "\"calls\":%llu,\"errors\":%llu,\"limits\":%llu},"
        "\"rag\":{\"chats\":%llu,\"errors\":%llu},"
        "\"semantic_cache\":{\"hits\":%llu,\"misses\":%llu,"
        "\"unavailable\":%llu,\"stores\":%llu}}",
        (unsigned long long)s->tool_loops, (unsigned long long)s->tool_turns,
        (unsigned long long)s->tool_calls, (unsigned long long)s->tool_errors,
        (unsigned long long)s->tool_limits, (unsigned long long)s->rag_chats,
        (unsigned long long)s->rag_errors, (unsigned long long)s->sem_hits,
        (unsigned long long)s->sem_misses,
        (unsigned long long)s->sem_unavailable,
        (unsigned long long)s->sem_stores);
}
