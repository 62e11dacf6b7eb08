/*
 * llm_call - one chat or embeddings request, from the body to the answer.
 *
 * States: cache lookup (chat, when the cache is on) -> upstream attempt
 * -> retry wait -> upstream attempt ... -> answered.  A streamed chat
 * feeds the upstream's bytes through the SSE parser into the provider's
 * stream_event and sends each unified chunk as a PARTIAL at once; the
 * rest buffer the reply body.  Retries (llm_retry) happen only while
 * nothing reached the client.  Owns the parsed body, the transfer, the
 * retry timer and the cache lookup; ends the request exactly once and
 * frees itself when answered and its transfer is gone (a stream answered
 * at the upstream's end marker lets the transfer finish in the
 * background so its connection can be reused).
 */
#include <string.h>
#include <strings.h>

#include "llm.h"
#include "llm_sse.h"
#include "omni_alloc.h"
#include "omni_log.h"
#include "omni_time.h"

/* A reply body must fit in one frame. */
#define BODY_MAX (16u << 20) - (64u << 10)
/* Largest SSE event accepted from an upstream. */
#define SSE_EVENT_MAX (4u << 20)
/* Largest streamed reply kept for the cache. */
#define RECORD_MAX (4u << 20)

struct call {
    struct llm_op op; /* first: the engine sees a struct llm_op */
    bool embed;
    bool stream;        /* the client streams and asked "stream": true */
    bool include_usage; /* stream_options.include_usage */
    json_t *req;        /* the body, in upstream form once routed */
    char *model_name;   /* "provider/model" as resolved */
    struct llm_target t;
    int64_t deadline;

    bool cacheable;
    char key[LLM_CACHE_KEY_LEN];
    struct llm_cache_op *lookup;
    struct omni_buf record; /* streamed chunks, one per line */
    bool record_over;

    struct llm_xfer *x;
    int retries;
    struct event *retry_ev;
    struct omni_buf body; /* reply (non-streamed, or an error reply) */
    struct llm_sse sse;
    struct llm_stream *ps;
    bool sse_mode; /* this reply is parsed as a stream */
    bool done;     /* the upstream said the stream is complete */
    bool failed;   /* an error event arrived: err */
    struct llm_error err;
    size_t sent; /* chunks sent to the client */
    struct omni_buf scratch;
};

static void upstream(struct call *c);

static int dump_cb(const char *p, size_t n, void *arg)
{
    omni_buf_add(arg, p, n);
    return 0;
}

static void call_free(struct call *c)
{
    llm_op_end(&c->op);
    if (c->ps)
        c->t.prov->stream_free(c->ps);
    llm_sse_release(&c->sse);
    omni_buf_release(&c->record);
    omni_buf_release(&c->body);
    omni_buf_release(&c->scratch);
    event_free(c->retry_ev);
    json_decref(c->req);
    omni_free(c->model_name);
    omni_free(c);
}

/* The request is answered (or cancelled): release c.  No transfer is
 * attached any more at this point. */
static void answered(struct call *c)
{
    c->op.r = NULL;
    llm_cache_op_cancel(c->lookup);
    call_free(c);
}

static void cancel_op(struct llm_op *op)
{
    struct call *c = (struct call *)op;
    llm_xfer_cancel(c->x);
    c->x = NULL;
    answered(c);
}

/* Provider messages start with the provider's own name ("openai: ");
 * the client sees the configured one instead ("groq: "). */
static const char *bare(const struct call *c, const char *msg)
{
    size_t n = strlen(c->t.prov->name);
    if (strncmp(msg, c->t.prov->name, n) == 0 && msg[n] == ':' &&
        msg[n + 1] == ' ')
        return msg + n + 2;
    return msg;
}

static const char *nonempty(const char *s)
{
    return *s ? s : NULL;
}

static bool is_sse(const char *ctype)
{
    return strncasecmp(ctype, "text/event-stream", 17) == 0;
}

/* Forget what the last attempt received. */
static void reset_attempt(struct call *c)
{
    omni_buf_reset(&c->body);
    omni_buf_reset(&c->record);
    c->record_over = false;
    if (c->ps)
        c->t.prov->stream_free(c->ps);
    c->ps = NULL;
    llm_sse_release(&c->sse);
    llm_sse_init(&c->sse, SSE_EVENT_MAX);
    c->sse_mode = c->done = c->failed = false;
    memset(&c->err, 0, sizeof c->err);
}

/* Give up or retry after a failed attempt. */
static void fail(struct call *c, const struct llm_error *err)
{
    struct llm_engine *e = c->op.e;
    llm_stats_upstream_error(e, err->status);
    if (err->code == OMNI_E_TIMEOUT)
        e->stats.timeouts++;
    struct llm_retry_decision d =
        llm_retry_decide(&e->retry, c->retries, err, c->sent > 0, omni_now_ms(),
                         c->deadline, llm_random());
    if (d.retry) {
        c->retries++;
        e->stats.retries++;
        omni_info("%s: %s (status %d); retry %d in %u ms", c->t.name,
                  bare(c, err->message), err->status, c->retries, d.delay_ms);
        reset_attempt(c);
        struct timeval tv = {d.delay_ms / 1000, (d.delay_ms % 1000) * 1000};
        evtimer_add(c->retry_ev, &tv);
        return;
    }
    enum omni_err code = OMNI_E_UPSTREAM;
    int status = err->status >= 400 && err->status <= 599 ? err->status : 502;
    if (err->code == OMNI_E_TIMEOUT) {
        code = OMNI_E_TIMEOUT;
        status = 0;
    }
    omni_wreq_error(c->op.r, code, status, err->retry_after_ms, "%s: %s",
                    c->t.name, bare(c, err->message));
    answered(c);
}

static void set_err(struct llm_error *err, enum omni_err code, int status,
                    bool retryable, const char *fmt, const char *arg)
{
    memset(err, 0, sizeof *err);
    err->code = code;
    err->status = status;
    err->retryable = retryable;
    snprintf(err->message, sizeof err->message, fmt, arg);
}

/* Serialise one unified chunk, send it, keep it for the cache. */
static void emit(json_t *chunk, void *arg)
{
    struct call *c = arg;
    omni_buf_reset(&c->scratch);
    json_dump_callback(chunk, dump_cb, &c->scratch, JSON_COMPACT);
    omni_wreq_partial(c->op.r, c->scratch.data, c->scratch.len);
    c->sent++;
    if (!c->cacheable || c->record_over)
        return;
    if (c->record.len + c->scratch.len + 1 > RECORD_MAX) {
        c->record_over = true;
        omni_buf_release(&c->record);
        return;
    }
    omni_buf_add(&c->record, c->scratch.data, c->scratch.len);
    omni_buf_addch(&c->record, '\n');
}

static int on_event(const struct llm_sse_event *ev, void *arg)
{
    struct call *c = arg;
    switch (c->t.prov->stream_event(c->ps, ev, emit, c, &c->err)) {
    case LLM_STREAM_MORE: return 0;
    case LLM_STREAM_DONE: c->done = true; return 1;
    case LLM_STREAM_ERROR: c->failed = true; return 1;
    }
    return 1;
}

static void succeed_stream(struct call *c)
{
    struct llm_engine *e = c->op.e;
    if (c->cacheable && !c->record_over && c->record.len) {
        llm_cache_put(e->cache, c->key, "s", c->record.data, c->record.len - 1);
        e->stats.cache_stores++;
    }
    omni_wreq_final(c->op.r, "", 0);
    answered(c);
}

static int on_data(void *arg, const char *p, size_t n)
{
    struct call *c = arg;
    int status = llm_xfer_status(c->x);
    if (c->stream && status >= 200 && status < 300 &&
        is_sse(llm_xfer_content_type(c->x))) {
        c->sse_mode = true;
        if (llm_sse_feed(&c->sse, p, n, on_event, c) == -1) {
            c->failed = true;
            set_err(&c->err, OMNI_E_UPSTREAM, 502, false, "%s",
                    "stream event over the size limit");
        }
        if (c->failed) {
            struct llm_error err = c->err;
            c->x = NULL; /* returning 1 cancels it */
            fail(c, &err);
            return 1;
        }
        if (c->done) {
            llm_xfer_detach(c->x);
            c->x = NULL;
            succeed_stream(c);
        }
        return 0;
    }
    if (c->body.len + n > BODY_MAX) {
        struct llm_error err;
        set_err(&err, OMNI_E_UPSTREAM, 502, false, "%s",
                "reply over the size limit");
        c->x = NULL;
        fail(c, &err);
        return 1;
    }
    omni_buf_add(&c->body, p, n);
    return 0;
}

/* A non-streamed reply arrived whole. */
static void succeed_unary(struct call *c)
{
    struct llm_engine *e = c->op.e;
    const struct llm_provider *pv = c->t.prov;
    char why[OMNI_ERR_LEN] = "";
    json_t *out =
        c->embed
            ? pv->parse_embed(&c->t, c->req, c->body.data, c->body.len, why)
            : pv->parse_chat(&c->t, c->body.data, c->body.len, why);
    if (!out) {
        struct llm_error err;
        set_err(&err, OMNI_E_UPSTREAM, 502, false, "malformed reply: %s",
                bare(c, why));
        fail(c, &err);
        return;
    }
    omni_buf_reset(&c->scratch);
    json_dump_callback(out, dump_cb, &c->scratch, JSON_COMPACT);
    json_decref(out);
    if (c->cacheable) {
        llm_cache_put(e->cache, c->key, "c", c->scratch.data, c->scratch.len);
        e->stats.cache_stores++;
    }
    omni_wreq_final(c->op.r, c->scratch.data, c->scratch.len);
    answered(c);
}

static void on_done(void *arg, const struct llm_xfer_result *res)
{
    struct call *c = arg;
    struct llm_engine *e = c->op.e;
    c->x = NULL;
    struct llm_error err;
    switch (res->end) {
    case LLM_XFER_OK:
        e->stats.latency_us_sum += (uint64_t)res->elapsed_us;
        e->stats.latency_count++;
        break;
    case LLM_XFER_CONNECT:
        set_err(&err, OMNI_E_UPSTREAM, 502, true, "cannot connect: %s",
                res->error);
        fail(c, &err);
        return;
    case LLM_XFER_BROKEN:
        set_err(&err, OMNI_E_UPSTREAM, 502, true, "connection lost: %s",
                res->error);
        fail(c, &err);
        return;
    case LLM_XFER_CONNECT_TIMEOUT:
        set_err(&err, OMNI_E_TIMEOUT, 0, true, "%s", res->error);
        fail(c, &err);
        return;
    case LLM_XFER_FIRST_BYTE:
    case LLM_XFER_IDLE:
    case LLM_XFER_DEADLINE:
        set_err(&err, OMNI_E_TIMEOUT, 0, false, "%s", res->error);
        fail(c, &err);
        return;
    }
    int status = res->status;
    if (status < 200 || status >= 300) {
        memset(&err, 0, sizeof err);
        c->t.prov->map_error(status, nonempty(res->retry_after),
                             nonempty(res->retry_after_ms), c->body.data,
                             c->body.len, &err);
        fail(c, &err);
        return;
    }
    if (c->sse_mode) {
        set_err(&err, OMNI_E_UPSTREAM, 502, true, "%s",
                "stream ended before its end marker");
        fail(c, &err);
        return;
    }
    if (c->stream) {
        set_err(&err, OMNI_E_UPSTREAM, 502, false,
                "unexpected content-type '%.64s' for a streamed reply",
                res->content_type);
        fail(c, &err);
        return;
    }
    succeed_unary(c);
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    upstream(arg);
}

/* One upstream attempt. */
static void upstream(struct call *c)
{
    struct llm_engine *e = c->op.e;
    const struct llm_provider *pv = c->t.prov;
    struct llm_http_req hr = {0};
    char err[OMNI_ERR_LEN] = "";
    enum omni_err rc = c->embed
                           ? pv->build_embed(&c->t, c->req, &hr, err)
                           : pv->build_chat(&c->t, c->req, c->stream, &hr, err);
    if (rc == OMNI_OK) {
        if (c->stream)
            c->ps = pv->stream_new(&c->t, c->req);
        c->x =
            llm_http_start(e->http, &hr, c->deadline, on_data, on_done, c, err);
        if (!c->x)
            rc = OMNI_E_INTERNAL;
    }
    llm_http_req_release(&hr);
    if (rc != OMNI_OK) {
        omni_wreq_error(c->op.r, rc, 0, 0, "%s: %s", c->t.name, bare(c, err));
        answered(c);
        return;
    }
    e->stats.upstream_calls++;
}

/* A usage-only chunk ("choices": [] with "usage"), which a client that
 * did not ask for stream_options.include_usage must not see. */
static bool usage_only(json_t *chunk)
{
    json_t *ch = json_object_get(chunk, "choices");
    return json_is_array(ch) && json_array_size(ch) == 0 &&
           json_object_get(chunk, "usage");
}

/* Answer from a cache entry.  Returns false (a miss) if it is not
 * usable; nothing has been sent then. */
static bool replay(struct call *c, const char *val, size_t n)
{
    if (!c->stream) {
        if (n == 0 || val[0] != '{')
            return false;
        omni_wreq_final(c->op.r, val, n);
        answered(c);
        return true;
    }
    /* Check every line before sending the first, so that a damaged
     * entry is a clean miss; remember which ones to skip. */
    size_t lines = 0, cap = 16;
    bool *skip = omni_malloc(cap * sizeof *skip);
    for (const char *p = val, *end = val + n; p < end; lines++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        json_t *j = json_loadb(p, len, 0, NULL);
        if (!json_is_object(j)) {
            json_decref(j);
            omni_free(skip);
            return false;
        }
        if (lines == cap) {
            cap *= 2;
            skip = omni_realloc(skip, cap * sizeof *skip);
        }
        skip[lines] = !c->include_usage && usage_only(j);
        json_decref(j);
        p += len + 1;
    }
    if (lines == 0) {
        omni_free(skip);
        return false;
    }
    size_t i = 0;
    for (const char *p = val, *end = val + n; p < end; i++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (!skip[i])
            omni_wreq_partial(c->op.r, p, len);
        p += len + 1;
    }
    omni_free(skip);
    omni_wreq_final(c->op.r, "", 0);
    answered(c);
    return true;
}

static void on_lookup(void *arg, enum llm_cache_result res, const char *val,
                      size_t n)
{
    struct call *c = arg;
    struct llm_engine *e = c->op.e;
    c->lookup = NULL;
    if (res == LLM_CACHE_HIT && replay(c, val, n)) {
        e->stats.cache_hits++;
        return;
    }
    if (res == LLM_CACHE_UNAVAILABLE)
        e->stats.cache_unavailable++;
    else
        e->stats.cache_misses++;
    upstream(c);
}

/* The "omni" extension object asks to skip the cache. */
static bool cache_opt_out(json_t *req)
{
    json_t *o = json_object_get(req, "omni");
    return json_is_false(json_object_get(o, "cache"));
}

void llm_chat_start(struct llm_engine *e, struct omni_wreq *r, bool embed)
{
    struct omni_str body = omni_wreq_body(r);
    json_error_t jerr;
    json_t *req = json_loadb(body.p, body.n, 0, &jerr);
    if (!json_is_object(req)) {
        json_decref(req);
        omni_wreq_error(r, OMNI_E_BAD_REQUEST, 0, 0,
                        "body: want a JSON object%s%s", req ? "" : ": ",
                        req ? "" : jerr.text);
        return;
    }
    json_t *m = json_object_get(req, "model");
    if (m && !json_is_string(m)) {
        json_decref(req);
        omni_wreq_error(r, OMNI_E_BAD_REQUEST, 0, 0,
                        "field 'model': want a string");
        return;
    }
    const char *name = m ? json_string_value(m) : "";
    if (!*name)
        name = e->routes.default_model;
    struct call *c = omni_calloc(1, sizeof *c);
    llm_op_begin(&c->op, e, r, cancel_op);
    c->embed = embed;
    c->req = req;
    c->model_name = omni_strdup(name);
    c->deadline = omni_wreq_deadline(r);
    c->retry_ev = evtimer_new(e->base, on_retry, c);
    omni_buf_init(&c->record);
    omni_buf_init(&c->body);
    omni_buf_init(&c->scratch);
    llm_sse_init(&c->sse, SSE_EVENT_MAX);
    omni_wreq_set_data(r, c);
    char err[OMNI_ERR_LEN];
    enum omni_err rc = llm_route(&e->routes, c->model_name, &c->t, err);
    if (rc == OMNI_OK && embed && !c->t.prov->build_embed) {
        snprintf(err, sizeof err, "provider '%s' has no embeddings", c->t.name);
        rc = OMNI_E_UNSUPPORTED;
    }
    if (rc != OMNI_OK) {
        omni_wreq_error(r, rc, 0, 0, "%s", err);
        answered(c);
        return;
    }
    c->stream = !embed && omni_wreq_stream(r) &&
                json_is_true(json_object_get(req, "stream"));
    c->include_usage = json_is_true(json_object_get(
        json_object_get(req, "stream_options"), "include_usage"));
    c->cacheable = e->cache && !embed && !cache_opt_out(req);
    if (c->cacheable)
        llm_cache_key(req, c->model_name, c->key);

    /* The upstream form: its own model id, no Omni extension, and no
     * stream fields when the client does not stream. */
    json_object_set_new(req, "model", json_string(c->t.model));
    json_object_del(req, "omni");
    if (!c->stream) {
        json_object_del(req, "stream");
        json_object_del(req, "stream_options");
    }
    if (c->cacheable) {
        c->lookup = llm_cache_get(e->cache, c->key, c->stream ? "s" : "c",
                                  on_lookup, c);
        if (c->lookup)
            return;
        e->stats.cache_unavailable++;
    }
    upstream(c);
}
