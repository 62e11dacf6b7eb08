/*
 * llm_up - one upstream exchange with retries (see llm_up.h).
 *
 * States: attempt -> (retry wait -> attempt)* -> done or failed.  A
 * streamed exchange feeds the upstream's bytes through the SSE parser
 * into the provider's stream_event and hands each unified chunk out at
 * once (as the upstream's bytes when the provider and the owner allow
 * it); a non-streamed one buffers the body and parses it whole.  A
 * stream that reached its end marker lets the transfer finish in the
 * background so that its connection can be reused.  Every failure ends
 * in one fail callback; nothing is logged but retries.
 */
#include "llm_up.h"

#include <string.h>
#include <strings.h>

#include "llm.h"
#include "llm_sse.h"
#include "omni_alloc.h"
#include "omni_log.h"
#include "omni_time.h"

/* A reply body must fit in one frame. */
#define BODY_MAX ((16u << 20) - (64u << 10))
/* Largest SSE event accepted from an upstream. */
#define SSE_EVENT_MAX (4u << 20)

struct llm_up {
    struct llm_engine *e;
    const struct llm_target *t; /* not used once the owner is told */
    const struct llm_provider *prov;
    json_t *req;
    bool embed, stream, sent_before;
    int64_t deadline;
    const struct llm_up_cbs *cb;
    void *arg;

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
    size_t sent; /* chunks handed out */
};

static void up_free(struct llm_up *u)
{
    if (u->ps)
        u->prov->stream_free(u->ps);
    llm_sse_release(&u->sse);
    omni_buf_release(&u->body);
    event_free(u->retry_ev);
    json_decref(u->req);
    omni_free(u);
}

void llm_up_cancel(struct llm_up *u)
{
    if (!u)
        return;
    llm_xfer_cancel(u->x);
    up_free(u);
}

/* Provider messages start with the provider's own name ("openai: ");
 * the client sees the configured one instead ("groq: "). */
static const char *bare(const struct llm_up *u, const char *msg)
{
    size_t n = strlen(u->t->prov->name);
    if (strncmp(msg, u->t->prov->name, n) == 0 && msg[n] == ':' &&
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

static void set_err(struct llm_error *err, enum omni_err code, int status,
                    bool retryable, const char *fmt, const char *arg)
{
    memset(err, 0, sizeof *err);
    err->code = code;
    err->status = status;
    err->retryable = retryable;
    snprintf(err->message, sizeof err->message, fmt, arg);
}

/* Forget what the last attempt received. */
static void reset_attempt(struct llm_up *u)
{
    omni_buf_reset(&u->body);
    if (u->ps)
        u->t->prov->stream_free(u->ps);
    u->ps = NULL;
    llm_sse_release(&u->sse);
    llm_sse_init(&u->sse, SSE_EVENT_MAX);
    u->sse_mode = u->done = u->failed = false;
    memset(&u->err, 0, sizeof u->err);
}

/* The end: tell the owner, then go. */
static void end_fail(struct llm_up *u, enum omni_err code, int status,
                     uint32_t retry_after_ms, const char *msg)
{
    struct llm_error out = {
        .code = code, .status = status, .retry_after_ms = retry_after_ms};
    snprintf(out.message, sizeof out.message, "%s: %s", u->t->name,
             bare(u, msg));
    u->cb->fail(u->arg, &out);
    up_free(u);
}

/* Give up or retry after a failed attempt. */
static void fail(struct llm_up *u, const struct llm_error *err)
{
    struct llm_engine *e = u->e;
    llm_stats_upstream_error(e, err->status);
    if (err->code == OMNI_E_TIMEOUT)
        e->stats.timeouts++;
    struct llm_retry_decision d = llm_retry_decide(
        &e->retry, u->retries, err, u->sent > 0 || u->sent_before,
        omni_now_ms(), u->deadline, llm_random());
    if (d.retry) {
        u->retries++;
        e->stats.retries++;
        omni_info("%s: %s (status %d); retry %d in %u ms", u->t->name,
                  bare(u, err->message), err->status, u->retries, d.delay_ms);
        reset_attempt(u);
        struct timeval tv = {d.delay_ms / 1000, (d.delay_ms % 1000) * 1000};
        evtimer_add(u->retry_ev, &tv);
        return;
    }
    enum omni_err code = OMNI_E_UPSTREAM;
    int status = err->status >= 400 && err->status <= 599 ? err->status : 502;
    if (err->code == OMNI_E_TIMEOUT) {
        code = OMNI_E_TIMEOUT;
        status = 0;
    }
    end_fail(u, code, status, err->retry_after_ms, err->message);
}

static void emit(json_t *chunk, void *arg)
{
    struct llm_up *u = arg;
    u->sent++;
    u->cb->chunk(u->arg, chunk);
}

static void emit_raw(const char *p, size_t n, void *arg)
{
    struct llm_up *u = arg;
    u->sent++;
    u->cb->raw_chunk(u->arg, p, n);
}

static int on_event(const struct llm_sse_event *ev, void *arg)
{
    struct llm_up *u = arg;
    const struct llm_provider *pv = u->t->prov;
    enum llm_stream_rc rc =
        u->cb->raw_chunk && pv->stream_event_raw
            ? pv->stream_event_raw(u->ps, ev, emit, emit_raw, u, &u->err)
            : pv->stream_event(u->ps, ev, emit, u, &u->err);
    switch (rc) {
    case LLM_STREAM_MORE: return 0;
    case LLM_STREAM_DONE: u->done = true; return 1;
    case LLM_STREAM_ERROR: u->failed = true; return 1;
    }
    return 1;
}

static int on_data(void *arg, const char *p, size_t n)
{
    struct llm_up *u = arg;
    int status = llm_xfer_status(u->x);
    if (u->stream && status >= 200 && status < 300 &&
        is_sse(llm_xfer_content_type(u->x))) {
        u->sse_mode = true;
        if (llm_sse_feed(&u->sse, p, n, on_event, u) == -1) {
            u->failed = true;
            set_err(&u->err, OMNI_E_UPSTREAM, 502, false, "%s",
                    "stream event over the size limit");
        }
        if (u->failed) {
            struct llm_error err = u->err;
            u->x = NULL; /* returning 1 cancels it */
            fail(u, &err);
            return 1;
        }
        if (u->done) {
            llm_xfer_detach(u->x);
            u->x = NULL;
            u->cb->done(u->arg, NULL);
            up_free(u);
        }
        return 0;
    }
    if (u->body.len + n > BODY_MAX) {
        struct llm_error err;
        set_err(&err, OMNI_E_UPSTREAM, 502, false, "%s",
                "reply over the size limit");
        u->x = NULL;
        fail(u, &err);
        return 1;
    }
    omni_buf_add(&u->body, p, n);
    return 0;
}

/* A non-streamed reply arrived whole. */
static void succeed_unary(struct llm_up *u)
{
    const struct llm_provider *pv = u->t->prov;
    char why[OMNI_ERR_LEN] = "";
    bool verbatim = false;
    json_t *out;
    if (u->embed)
        out = pv->parse_embed(u->t, u->req, u->body.data, u->body.len, why);
    else if (u->cb->raw_done && pv->parse_chat_verbatim)
        out = pv->parse_chat_verbatim(u->t, u->body.data, u->body.len,
                                      &verbatim, why);
    else
        out = pv->parse_chat(u->t, u->body.data, u->body.len, why);
    if (!out) {
        struct llm_error err;
        set_err(&err, OMNI_E_UPSTREAM, 502, false, "malformed reply: %s",
                bare(u, why));
        fail(u, &err);
        return;
    }
    if (verbatim) {
        /* the reply as the upstream wrote it, less trailing space */
        size_t n = u->body.len;
        while (n && strchr(" \t\r\n", u->body.data[n - 1]))
            n--;
        u->cb->raw_done(u->arg, u->body.data, n);
    } else {
        u->cb->done(u->arg, out);
    }
    json_decref(out);
    up_free(u);
}

static void on_done(void *arg, const struct llm_xfer_result *res)
{
    struct llm_up *u = arg;
    struct llm_engine *e = u->e;
    u->x = NULL;
    struct llm_error err;
    switch (res->end) {
    case LLM_XFER_OK:
        e->stats.latency_us_sum += (uint64_t)res->elapsed_us;
        e->stats.latency_count++;
        break;
    case LLM_XFER_CONNECT:
        set_err(&err, OMNI_E_UPSTREAM, 502, true, "cannot connect: %s",
                res->error);
        fail(u, &err);
        return;
    case LLM_XFER_BROKEN:
        set_err(&err, OMNI_E_UPSTREAM, 502, true, "connection lost: %s",
                res->error);
        fail(u, &err);
        return;
    case LLM_XFER_CONNECT_TIMEOUT:
        set_err(&err, OMNI_E_TIMEOUT, 0, true, "%s", res->error);
        fail(u, &err);
        return;
    case LLM_XFER_FIRST_BYTE:
    case LLM_XFER_IDLE:
    case LLM_XFER_DEADLINE:
        set_err(&err, OMNI_E_TIMEOUT, 0, false, "%s", res->error);
        fail(u, &err);
        return;
    }
    int status = res->status;
    if (status < 200 || status >= 300) {
        memset(&err, 0, sizeof err);
        u->t->prov->map_error(status, nonempty(res->retry_after),
                              nonempty(res->retry_after_ms), u->body.data,
                              u->body.len, &err);
        fail(u, &err);
        return;
    }
    if (u->sse_mode) {
        set_err(&err, OMNI_E_UPSTREAM, 502, true, "%s",
                "stream ended before its end marker");
        fail(u, &err);
        return;
    }
    if (u->stream) {
        set_err(&err, OMNI_E_UPSTREAM, 502, false,
                "unexpected content-type '%.64s' for a streamed reply",
                res->content_type);
        fail(u, &err);
        return;
    }
    succeed_unary(u);
}

/* One attempt; on failure err holds the reason and nothing started. */
static enum omni_err attempt(struct llm_up *u, char err[OMNI_ERR_LEN])
{
    const struct llm_provider *pv = u->t->prov;
    struct llm_http_req hr = {0};
    enum omni_err rc = u->embed
                           ? pv->build_embed(u->t, u->req, &hr, err)
                           : pv->build_chat(u->t, u->req, u->stream, &hr, err);
    if (rc == OMNI_OK) {
        if (u->stream)
            u->ps = pv->stream_new(u->t, u->req);
        u->x = llm_http_start(u->e->http, &hr, u->deadline, on_data, on_done, u,
                              err);
        if (!u->x)
            rc = OMNI_E_INTERNAL;
    }
    llm_http_req_release(&hr);
    if (rc == OMNI_OK)
        u->e->stats.upstream_calls++;
    return rc;
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    struct llm_up *u = arg;
    char err[OMNI_ERR_LEN] = "";
    (void)fd;
    (void)what;
    enum omni_err rc = attempt(u, err);
    if (rc != OMNI_OK)
        end_fail(u, rc, 0, 0, err);
}

struct llm_up *llm_up_start(struct llm_engine *e, const struct llm_up_spec *s,
                            const struct llm_up_cbs *cb, void *arg,
                            struct llm_error *err)
{
    struct llm_up *u = omni_calloc(1, sizeof *u);
    u->e = e;
    u->t = s->t;
    u->prov = s->t->prov;
    u->req = json_incref(s->req);
    u->embed = s->embed;
    u->stream = s->stream;
    u->deadline = s->deadline;
    u->sent_before = s->sent;
    u->cb = cb;
    u->arg = arg;
    u->retry_ev = evtimer_new(e->base, on_retry, u);
    omni_buf_init(&u->body);
    llm_sse_init(&u->sse, SSE_EVENT_MAX);
    char why[OMNI_ERR_LEN] = "";
    enum omni_err rc = attempt(u, why);
    if (rc == OMNI_OK)
        return u;
    memset(err, 0, sizeof *err);
    err->code = rc;
    snprintf(err->message, sizeof err->message, "%s: %s", u->t->name,
             bare(u, why));
    up_free(u);
    return NULL;
}
