/*
 * llm_aug - a chat request augmented by Omni: the semantic cache, RAG
 * context with citations, and the MCP tool loop, around one or more
 * upstream exchanges (llm_up).
 *
 * Steps: semantic cache lookup (rag "semcache_get"; a hit answers at
 * once) -> RAG context (rag "context") and MCP tool definitions (mcp
 * "tools"), in parallel -> model turn -> for MCP tool calls, mcp "call"
 * for each, in parallel, results appended, next turn (at most
 * llm.tool_loop_max turns) -> answer, and a semantic cache store (rag
 * "semcache_put", fire and forget).  Sub-requests go through the broker
 * (omni_worker_subcall) with the client's credential, trace and what is
 * left of its deadline.
 *
 * Streaming: every turn streams from the upstream; the client gets one
 * chat.completion.chunk stream under the first turn's id: text deltas of
 * every turn as they arrive, tool call fragments held back, no
 * finish_reason until the loop ends.  After each tool round an extra
 * chunk with "choices": [] carries "omni":{"tool_calls":[...]} for that
 * round; at the end come the client's own tool calls (if the loop ended
 * on them), the finish chunk, the usage chunk (summed over turns, when
 * include_usage) and a last "choices": [] chunk with the "omni" object
 * (citations, tool trace, tool_loop, semantic_cache), then the end.
 * Non-streamed, the reply is the last turn's chat.completion with the
 * summed usage and the same "omni" object.
 *
 * Failures: a sub-request's error ends the request with its code (a
 * missing service reads UNAVAILABLE), except an MCP tool's own failure
 * (NOT_FOUND, UPSTREAM, TIMEOUT, BAD_REQUEST), which goes back to the
 * model as an "error: ..." result, and the semantic cache, which is
 * skipped (with a rate-limited warning) when rag cannot answer.  The
 * exact response cache is not used here.  Cancelling the request
 * cancels its sub-requests and its upstream exchange.
 */
#include <string.h>

#include "llm.h"
#include "llm_rag.h"
#include "llm_tools.h"
#include "llm_up.h"
#include "omni_alloc.h"
#include "omni_cfg.h"
#include "omni_log.h"
#include "omni_time.h"

/* The rag service refuses longer semantic cache texts. */
#define SEM_TEXT_MAX  65536
#define SEM_THRESHOLD 0.9
#define WARN_EVERY_MS 30000

/* When the semantic cache last said it was unavailable. */
static int64_t last_sem_warn;

enum sub_kind { K_SEMGET, K_SEMPUT, K_CONTEXT, K_TOOLS, K_CALL };

/* A sub-request in flight: its callback finds the operation here. */
struct sub {
    struct aug *a;
    enum sub_kind kind;
    size_t idx; /* K_CALL: which call of the round */
    uint64_t id;
    bool live;
};

/* One tool call of the model in the current round. */
struct tcall {
    json_t *call;    /* the model's tool call */
    const char *mcp; /* the MCP name (borrowed from the map), or NULL */
    json_t *args;    /* parsed, or NULL */
    char *result;    /* the text fed back */
    bool is_error;
    struct sub sub;
};

struct aug {
    struct llm_op op; /* first: the engine sees a struct llm_op */
    json_t *req;      /* upstream form; the messages grow */
    char *model_name;
    struct llm_target t;
    bool stream, include_usage;
    int64_t deadline;
    char *auth, *trace_id;

    json_t *rag; /* the omni.rag object, or NULL */
    bool sem;
    double threshold;
    char ns[LLM_SEM_NS_LEN];
    char *sem_text;
    bool mcp;
    json_t *client_tools; /* the tools as the client sent them */
    json_t *map;          /* function name -> MCP name */
    json_t *citations;    /* retrieved */
    json_t *trace;        /* tool calls run */
    json_t *usage;        /* summed over turns */
    int turns, max_turns;

    struct sub subs[3];
    size_t pending;
    struct tcall *calls;
    size_t ncalls, calls_left;

    struct llm_up *up;
    json_t *acc; /* this turn's reply (streamed: folded from chunks) */
    struct event *step;

    json_t *head; /* {"id","created"} of the client's stream */
    bool role_sent;
    size_t sent;
    struct omni_buf scratch;
};

static void turn(struct aug *a);

static int dump_cb(const char *p, size_t n, void *arg)
{
    omni_buf_add(arg, p, n);
    return 0;
}

/* Warn at most every WARN_EVERY_MS per call site (last). */
static bool warn_due(int64_t *last)
{
    int64_t now = omni_now_ms();
    if (*last && now - *last < WARN_EVERY_MS)
        return false;
    *last = now;
    return true;
}

static void free_calls(struct aug *a)
{
    for (size_t i = 0; i < a->ncalls; i++) {
        json_decref(a->calls[i].call);
        json_decref(a->calls[i].args);
        omni_free(a->calls[i].result);
    }
    omni_free(a->calls);
    a->calls = NULL;
    a->ncalls = a->calls_left = 0;
}

/* Stop whatever is in flight: sub-requests, the exchange, the step. */
static void drop_work(struct aug *a)
{
    struct omni_worker *w = a->op.e->w;
    llm_up_cancel(a->up);
    a->up = NULL;
    for (size_t i = 0; i < sizeof a->subs / sizeof *a->subs; i++)
        if (a->subs[i].live)
            omni_worker_subcancel(w, a->subs[i].id);
    for (size_t i = 0; i < a->ncalls; i++)
        if (a->calls[i].sub.live)
            omni_worker_subcancel(w, a->calls[i].sub.id);
    event_del(a->step);
}

/* The request is answered or cancelled: free a. */
static void release(struct aug *a)
{
    a->op.r = NULL;
    llm_op_end(&a->op);
    free_calls(a);
    event_free(a->step);
    json_decref(a->req);
    json_decref(a->rag);
    json_decref(a->client_tools);
    json_decref(a->map);
    json_decref(a->citations);
    json_decref(a->trace);
    json_decref(a->usage);
    json_decref(a->acc);
    json_decref(a->head);
    omni_free(a->sem_text);
    omni_free(a->model_name);
    omni_free(a->auth);
    omni_free(a->trace_id);
    omni_buf_release(&a->scratch);
    omni_free(a);
}

static void cancel_op(struct llm_op *op)
{
    struct aug *a = (struct aug *)op;
    drop_work(a);
    release(a);
}

static void finish_error(struct aug *a, enum omni_err code, int status,
                         uint32_t retry_after_ms, const char *msg)
{
    drop_work(a);
    omni_wreq_error(a->op.r, code, status, retry_after_ms, "%s", msg);
    release(a);
}

/* Serialise and send one chunk (a reference is taken over). */
static void send_chunk(struct aug *a, json_t *chunk)
{
    omni_buf_reset(&a->scratch);
    json_dump_callback(chunk, dump_cb, &a->scratch, JSON_COMPACT);
    json_decref(chunk);
    omni_wreq_partial(a->op.r, a->scratch.data, a->scratch.len);
    a->sent++;
}

/* A chunk with no choice under the stream's id: the carrier of usage
 * and of the "omni" extension. */
static json_t *bare_chunk(struct aug *a, json_t *completion)
{
    json_t *id = json_object_get(a->head, "id");
    json_t *created = json_object_get(a->head, "created");
    json_t *model = json_object_get(completion, "model");
    json_t *c = json_object();
    json_object_set_new(c, "id", id ? json_incref(id) : json_string(""));
    json_object_set_new(c, "object", json_string("chat.completion.chunk"));
    json_object_set_new(c, "created",
                        created ? json_incref(created) : json_integer(0));
    json_object_set_new(c, "model",
                        model ? json_incref(model) : json_string(""));
    json_object_set_new(c, "choices", json_array());
    return c;
}

/* Remember the stream's id and created (from the first chunk, or the
 * reply when nothing was streamed). */
static void set_head(struct aug *a, json_t *src)
{
    if (a->head)
        return;
    json_t *id = json_object_get(src, "id");
    json_t *created = json_object_get(src, "created");
    a->head = json_object();
    json_object_set_new(a->head, "id",
                        json_is_string(id) ? json_incref(id) : json_string(""));
    json_object_set_new(a->head, "created",
                        json_is_integer(created) ? json_incref(created)
                                                 : json_integer(0));
}

/* Does a delta still say anything once tool calls are taken out? */
static bool delta_says(json_t *delta)
{
    const char *k;
    json_t *v;
    json_object_foreach(delta, k, v)
    {
        if (json_is_null(v) ||
            (json_is_string(v) && json_string_length(v) == 0 &&
             strcmp(k, "role") != 0))
            continue;
        return true;
    }
    return false;
}

/* Pass one upstream chunk on: under the stream's id, without tool call
 * fragments, usage or finish_reason, which come at the end. */
static void forward(struct aug *a, json_t *chunk)
{
    json_t *choice = json_array_get(json_object_get(chunk, "choices"), 0);
    if (!choice)
        return;
    set_head(a, chunk);
    json_t *delta = json_deep_copy(json_object_get(choice, "delta"));
    if (!json_is_object(delta)) {
        json_decref(delta);
        return;
    }
    json_object_del(delta, "tool_calls");
    if (a->role_sent)
        json_object_del(delta, "role");
    if (!delta_says(delta)) {
        json_decref(delta);
        return;
    }
    if (json_object_get(delta, "role"))
        a->role_sent = true;
    json_t *out = bare_chunk(a, chunk);
    json_array_append_new(json_object_get(out, "choices"),
                          json_pack("{s:i,s:o,s:n}", "index", 0, "delta", delta,
                                    "finish_reason"));
    send_chunk(a, out);
}

/* ---- sub-requests ---- */

static void on_sub(const struct omni_event *ev, void *arg);

static void on_put(const struct omni_event *ev, void *arg)
{
    static int64_t last;
    (void)arg;
    if (ev->type == OMNI_EVENT_ERROR && warn_due(&last))
        omni_warn("semantic cache: cannot store an answer: %s: %s", ev->code,
                  ev->message);
}

/* Send op of svc with body (stolen) as sub-request s (NULL: fire and
 * forget).  Returns false if the broker cannot be reached. */
static bool subcall(struct aug *a, struct sub *s, enum sub_kind kind,
                    const char *svc, const char *op, json_t *body)
{
    struct omni_buf b = OMNI_BUF_INIT;
    json_dump_callback(body, dump_cb, &b, JSON_COMPACT);
    json_decref(body);
    int64_t left = a->deadline ? a->deadline - omni_now_ms() : 0;
    if (a->deadline && left < 1)
        left = 1;
    if (kind == K_SEMGET) {
        long cap = omni_cfg_int("llm.semantic_timeout_ms");
        if (left == 0 || left > cap)
            left = cap;
    }
    struct omni_request rq = {.service = svc,
                              .op = op,
                              .body = b.data,
                              .body_len = b.len,
                              .idempotent = kind != K_CALL,
                              .timeout_ms = (uint32_t)left,
                              .auth = a->auth,
                              .trace = a->trace_id};
    int rc;
    if (s) {
        s->a = a;
        s->kind = kind;
        rc = omni_worker_subcall(a->op.e->w, &rq, on_sub, s, &s->id);
        s->live = rc == 0;
    } else {
        rc = omni_worker_subcall(a->op.e->w, &rq, on_put, NULL, NULL);
    }
    omni_buf_release(&b);
    return rc == 0;
}

/* The error of a needed sub-request ends the request. */
static void fail_sub(struct aug *a, const char *what,
                     const struct omni_event *ev)
{
    char msg[OMNI_ERR_LEN];
    enum omni_err code = omni_err_parse(ev->code, strlen(ev->code));
    int status = ev->status;
    if (code == OMNI_E_NO_SERVICE) {
        code = OMNI_E_UNAVAILABLE;
        status = 0;
    }
    snprintf(msg, sizeof msg, "%s: %s", what, ev->message);
    finish_error(a, code, status, ev->retry_after_ms, msg);
}

static json_t *event_json(const struct omni_event *ev)
{
    return json_loadb(ev->body, ev->body_len, 0, NULL);
}

/* ---- answers ---- */

static void sem_store(struct aug *a, json_t *value)
{
    if (!a->sem)
        return;
    json_t *v = json_deep_copy(value);
    json_object_del(json_object_get(v, "omni"), "semantic_cache");
    if (json_object_size(json_object_get(v, "omni")) == 0)
        json_object_del(v, "omni");
    if (subcall(a, NULL, K_SEMPUT, "rag", "semcache_put",
                json_pack("{s:s,s:s,s:o}", "namespace", a->ns, "text",
                          a->sem_text, "value", v)))
        a->op.e->stats.sem_stores++;
}

/* The "omni" object of the answer; answer is the final text. */
static json_t *omni_ext(struct aug *a, const char *answer, bool limit)
{
    json_t *o = json_object();
    if (a->citations)
        json_object_set_new(o, "citations",
                            llm_rag_cited(answer, a->citations));
    if (a->mcp) {
        json_object_set(o, "tool_calls", a->trace);
        json_object_set_new(
            o, "tool_loop",
            json_pack("{s:i,s:b}", "turns", a->turns, "limit_reached", limit));
    }
    return o;
}

static void finish_unary(struct aug *a, bool limit)
{
    json_t *reply = a->acc;
    json_t *choice = json_array_get(json_object_get(reply, "choices"), 0);
    json_t *msg = json_object_get(choice, "message");
    if (a->turns > 1 && a->usage)
        json_object_set(reply, "usage", a->usage);
    if (limit) {
        json_object_set_new(choice, "finish_reason", json_string("length"));
        json_object_del(msg, "tool_calls");
        if (!json_is_string(json_object_get(msg, "content")))
            json_object_set_new(msg, "content", json_string(""));
    }
    json_t *o =
        omni_ext(a, json_string_value(json_object_get(msg, "content")), limit);
    if (json_object_size(o))
        json_object_set(reply, "omni", o);
    json_decref(o);
    if (!limit)
        sem_store(a, reply);
    omni_buf_reset(&a->scratch);
    json_dump_callback(reply, dump_cb, &a->scratch, JSON_COMPACT);
    omni_wreq_final(a->op.r, a->scratch.data, a->scratch.len);
    release(a);
}

static void finish_stream(struct aug *a, bool limit)
{
    json_t *reply = a->acc;
    json_t *choice = json_array_get(json_object_get(reply, "choices"), 0);
    json_t *msg = json_object_get(choice, "message");
    json_t *calls = json_object_get(msg, "tool_calls");
    set_head(a, reply);
    if (limit) {
        json_object_set_new(choice, "finish_reason", json_string("length"));
        json_object_del(msg, "tool_calls");
    } else if (json_array_size(calls)) {
        /* The loop ended on the client's own tool calls: they go out
         * whole, in one delta. */
        json_t *frags = json_array();
        size_t i;
        json_t *tc;
        json_array_foreach(calls, i, tc)
        {
            json_t *f = json_deep_copy(tc);
            json_object_set_new(f, "index", json_integer((json_int_t)i));
            json_array_append_new(frags, f);
        }
        json_t *c = bare_chunk(a, reply);
        json_array_append_new(json_object_get(c, "choices"),
                              json_pack("{s:i,s:{s:o},s:n}", "index", 0,
                                        "delta", "tool_calls", frags,
                                        "finish_reason"));
        send_chunk(a, c);
    }
    json_t *fr = json_object_get(choice, "finish_reason");
    json_t *c = bare_chunk(a, reply);
    json_array_append_new(json_object_get(c, "choices"),
                          json_pack("{s:i,s:{},s:O}", "index", 0, "delta",
                                    "finish_reason",
                                    json_is_string(fr) ? fr : json_null()));
    send_chunk(a, c);
    if (a->turns > 1 && a->usage)
        json_object_set(reply, "usage", a->usage);
    json_t *usage = json_object_get(reply, "usage");
    if (a->include_usage && json_is_object(usage)) {
        c = bare_chunk(a, reply);
        json_object_set(c, "usage", usage);
        send_chunk(a, c);
    }
    json_t *o =
        omni_ext(a, json_string_value(json_object_get(msg, "content")), limit);
    if (json_object_size(o)) {
        json_object_set(reply, "omni", o);
        c = bare_chunk(a, reply);
        json_object_set(c, "omni", o);
        send_chunk(a, c);
    }
    json_decref(o);
    json_object_set(reply, "id", json_object_get(a->head, "id"));
    if (!limit)
        sem_store(a, reply);
    omni_wreq_final(a->op.r, "", 0);
    release(a);
}

/* Answer from a semantic cache entry; false (nothing sent) when it is
 * not a usable chat.completion. */
static bool answer_cached(struct aug *a, json_t *value, json_t *score)
{
    json_t *v = json_is_string(value)
                    ? json_loadb(json_string_value(value),
                                 json_string_length(value), 0, NULL)
                    : json_deep_copy(value);
    if (!json_is_object(v) ||
        !json_object_get(json_array_get(json_object_get(v, "choices"), 0),
                         "message")) {
        json_decref(v);
        return false;
    }
    json_t *o = json_object_get(v, "omni");
    if (!json_is_object(o)) {
        o = json_object();
        json_object_set_new(v, "omni", o);
    }
    json_object_set_new(
        o, "semantic_cache",
        json_pack("{s:b,s:O}", "hit", 1, "score", score ? score : json_null()));
    if (!a->stream) {
        omni_buf_reset(&a->scratch);
        json_dump_callback(v, dump_cb, &a->scratch, JSON_COMPACT);
        omni_wreq_final(a->op.r, a->scratch.data, a->scratch.len);
    } else {
        json_t *chunks = llm_completion_chunks(v, a->include_usage);
        size_t i;
        json_t *c;
        json_array_foreach(chunks, i, c) send_chunk(a, json_incref(c));
        json_decref(chunks);
        set_head(a, v);
        c = bare_chunk(a, v);
        json_object_set(c, "omni", o);
        send_chunk(a, c);
        omni_wreq_final(a->op.r, "", 0);
    }
    json_decref(v);
    release(a);
    return true;
}

/* ---- the steps ---- */

/* After the semantic cache: fetch the RAG context and the MCP tool
 * definitions, then the first turn. */
static void prepare(struct aug *a)
{
    if (a->rag) {
        json_t *q =
            json_pack("{s:O,s:s}", "collection",
                      json_object_get(a->rag, "collection"), "query", "");
        char *text = llm_rag_query(json_object_get(a->req, "messages"));
        json_object_set_new(q, "query", json_string(text));
        omni_free(text);
        static const char *const passed[] = {"top_k", "mode", "filter"};
        for (size_t i = 0; i < sizeof passed / sizeof *passed; i++) {
            json_t *v = json_object_get(a->rag, passed[i]);
            if (v)
                json_object_set(q, passed[i], v);
        }
        if (!subcall(a, &a->subs[1], K_CONTEXT, "rag", "context", q)) {
            finish_error(a, OMNI_E_UNAVAILABLE, 0, 0,
                         "rag: cannot reach the broker");
            return;
        }
        a->pending++;
    }
    if (a->mcp) {
        json_t *q;
        char err[OMNI_ERR_LEN];
        llm_tools_mcp_query(a->client_tools, &q, err); /* checked at start */
        if (!subcall(a, &a->subs[2], K_TOOLS, "mcp", "tools", q)) {
            finish_error(a, OMNI_E_UNAVAILABLE, 0, 0,
                         "mcp: cannot reach the broker");
            return;
        }
        a->pending++;
    }
    if (a->pending == 0)
        turn(a);
}

static void on_context(struct aug *a, json_t *body)
{
    json_t *ctx = json_object_get(body, "context");
    json_t *cites = json_object_get(body, "citations");
    if (!json_is_string(ctx) || !json_is_array(cites)) {
        finish_error(a, OMNI_E_UPSTREAM, 502, 0,
                     "rag context: reply lacks 'context' or 'citations'");
        return;
    }
    a->citations = json_incref(cites);
    json_array_insert_new(json_object_get(a->req, "messages"), 0,
                          llm_rag_system(json_string_value(ctx)));
    if (--a->pending == 0)
        turn(a);
}

static void on_tools(struct aug *a, json_t *body)
{
    json_t *merged, *map;
    char err[OMNI_ERR_LEN];
    enum omni_err rc =
        llm_tools_merge(a->client_tools, body, &merged, &map, err);
    if (rc != OMNI_OK) {
        finish_error(a, rc, 0, 0, err);
        return;
    }
    json_object_set_new(a->req, "tools", merged);
    a->map = map;
    if (--a->pending == 0)
        turn(a);
}

/* Every call of the round has its result: feed them back, go on. */
static void round_done(struct aug *a)
{
    json_t *msgs = json_object_get(a->req, "messages");
    json_t *round = json_array();
    for (size_t i = 0; i < a->ncalls; i++) {
        struct tcall *tc = &a->calls[i];
        const char *id = json_string_value(json_object_get(tc->call, "id"));
        json_array_append_new(msgs,
                              llm_tools_result_msg(id ? id : "", tc->result));
        json_t *args =
            tc->args ? json_incref(tc->args)
                     : json_incref(json_object_get(
                           json_object_get(tc->call, "function"), "arguments"));
        json_array_append_new(
            round, json_pack("{s:s,s:s,s:o,s:b}", "id", id ? id : "", "name",
                             tc->mcp ? tc->mcp : llm_tools_call_name(tc->call),
                             "arguments", args ? args : json_null(), "isError",
                             tc->is_error));
    }
    json_array_extend(a->trace, round);
    if (a->stream) {
        json_t *c = bare_chunk(a, a->acc);
        json_object_set_new(c, "omni", json_pack("{s:o}", "tool_calls", round));
        send_chunk(a, c);
    } else {
        json_decref(round);
    }
    free_calls(a);
    json_t *choice =
        llm_tools_next_choice(json_object_get(a->req, "tool_choice"));
    if (choice)
        json_object_set_new(a->req, "tool_choice", choice);
    turn(a);
}

static void on_call(struct aug *a, struct tcall *tc,
                    const struct omni_event *ev)
{
    struct llm_engine *e = a->op.e;
    if (ev->type == OMNI_EVENT_FINAL) {
        json_t *res = event_json(ev);
        tc->result = llm_tools_result_text(res);
        tc->is_error = json_is_true(json_object_get(res, "isError"));
        json_decref(res);
    } else {
        enum omni_err code = omni_err_parse(ev->code, strlen(ev->code));
        if (code != OMNI_E_NOT_FOUND && code != OMNI_E_UPSTREAM &&
            code != OMNI_E_TIMEOUT && code != OMNI_E_BAD_REQUEST) {
            fail_sub(a, "mcp call", ev);
            return;
        }
        struct omni_buf b = OMNI_BUF_INIT;
        omni_buf_addf(&b, "error: %s", ev->message);
        tc->result = omni_buf_detach(&b, NULL);
        tc->is_error = true;
    }
    if (tc->is_error)
        e->stats.tool_errors++;
    if (--a->calls_left == 0)
        round_done(a);
}

static void on_sub(const struct omni_event *ev, void *arg)
{
    struct sub *s = arg;
    struct aug *a = s->a;
    struct llm_engine *e = a->op.e;
    if (ev->type == OMNI_EVENT_CHUNK)
        return;
    s->live = false;
    if (s->kind == K_CALL) {
        on_call(a, &a->calls[s->idx], ev);
        return;
    }
    if (s->kind == K_SEMGET) {
        json_t *body = ev->type == OMNI_EVENT_FINAL ? event_json(ev) : NULL;
        if (ev->type == OMNI_EVENT_ERROR) {
            e->stats.sem_unavailable++;
            if (warn_due(&last_sem_warn))
                omni_warn("semantic cache unavailable, serving without it: "
                          "%s: %s",
                          ev->code, ev->message);
        } else if (json_is_true(json_object_get(body, "hit")) &&
                   answer_cached(a, json_object_get(body, "value"),
                                 json_object_get(body, "score"))) {
            e->stats.sem_hits++;
            json_decref(body);
            return;
        } else {
            e->stats.sem_misses++;
        }
        json_decref(body);
        prepare(a);
        return;
    }
    const char *what = s->kind == K_CONTEXT ? "rag context" : "mcp tools";
    if (ev->type == OMNI_EVENT_ERROR) {
        if (s->kind == K_CONTEXT)
            e->stats.rag_errors++;
        fail_sub(a, what, ev);
        return;
    }
    json_t *body = event_json(ev);
    if (!json_is_object(body)) {
        json_decref(body);
        char msg[OMNI_ERR_LEN];
        snprintf(msg, sizeof msg, "%s: reply is not a JSON object", what);
        finish_error(a, OMNI_E_UPSTREAM, 502, 0, msg);
        return;
    }
    if (s->kind == K_CONTEXT)
        on_context(a, body);
    else
        on_tools(a, body);
    json_decref(body);
}

/* Run the round's MCP calls; the unknown ones and those with broken
 * arguments are answered at once with an error text. */
static void run_round(struct aug *a, json_t *calls)
{
    struct llm_engine *e = a->op.e;
    json_array_append_new(
        json_object_get(a->req, "messages"),
        llm_tools_assistant(json_object_get(
            json_array_get(json_object_get(a->acc, "choices"), 0), "message")));
    a->ncalls = json_array_size(calls);
    a->calls = omni_calloc(a->ncalls, sizeof *a->calls);
    for (size_t i = 0; i < a->ncalls; i++) {
        struct tcall *tc = &a->calls[i];
        char err[OMNI_ERR_LEN];
        tc->call = json_incref(json_array_get(calls, i));
        const char *fname = llm_tools_call_name(tc->call);
        tc->mcp = json_string_value(json_object_get(a->map, fname));
        e->stats.tool_calls++;
        if (!tc->mcp) {
            struct omni_buf b = OMNI_BUF_INIT;
            omni_buf_addf(&b, "error: there is no tool named '%s'", fname);
            tc->result = omni_buf_detach(&b, NULL);
        } else if (!(tc->args = llm_tools_call_args(tc->call, err))) {
            struct omni_buf b = OMNI_BUF_INIT;
            omni_buf_addf(&b, "error: %s", err);
            tc->result = omni_buf_detach(&b, NULL);
        }
        if (tc->result) {
            tc->is_error = true;
            e->stats.tool_errors++;
        }
    }
    for (size_t i = 0; i < a->ncalls; i++) {
        struct tcall *tc = &a->calls[i];
        if (tc->result)
            continue;
        tc->sub.idx = i;
        if (!subcall(a, &tc->sub, K_CALL, "mcp", "call",
                     json_pack("{s:s,s:O}", "name", tc->mcp, "arguments",
                               tc->args))) {
            finish_error(a, OMNI_E_UNAVAILABLE, 0, 0,
                         "mcp: cannot reach the broker");
            return;
        }
        a->calls_left++;
    }
    if (a->calls_left == 0)
        round_done(a);
}

/* A turn's reply is in a->acc: answer, or run its MCP tool calls. */
static void after_turn(struct aug *a)
{
    struct llm_engine *e = a->op.e;
    json_t *choice = json_array_get(json_object_get(a->acc, "choices"), 0);
    json_t *calls =
        json_object_get(json_object_get(choice, "message"), "tool_calls");
    llm_usage_add(&a->usage, json_object_get(a->acc, "usage"));
    bool loop = a->mcp && json_array_size(calls) > 0;
    size_t i;
    json_t *tc;
    json_array_foreach(calls, i, tc)
    {
        if (llm_tools_kind(tc, a->map, a->client_tools) == LLM_TC_CLIENT)
            loop = false;
    }
    bool limit = loop && a->turns >= a->max_turns;
    if (limit)
        e->stats.tool_limits++;
    if (!loop || limit) {
        if (a->stream)
            finish_stream(a, limit);
        else
            finish_unary(a, limit);
        return;
    }
    run_round(a, calls);
}

static void on_step(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    after_turn(arg);
}

static void on_up_chunk(void *arg, json_t *chunk)
{
    struct aug *a = arg;
    llm_acc_add(a->acc, chunk);
    forward(a, chunk);
}

/* The turn is over.  We may be inside a curl callback, where no new
 * transfer can start: the next step runs from the loop. */
static void on_up_done(void *arg, json_t *reply)
{
    struct aug *a = arg;
    a->up = NULL;
    if (reply) {
        json_decref(a->acc);
        a->acc = json_deep_copy(reply);
    }
    event_active(a->step, EV_TIMEOUT, 0);
}

static void on_up_fail(void *arg, const struct llm_error *err)
{
    struct aug *a = arg;
    a->up = NULL;
    finish_error(a, err->code, err->status, err->retry_after_ms, err->message);
}

/* No raw_chunk / raw_done: the loop reads the parsed chunks and reply. */
static const struct llm_up_cbs up_cbs = {on_up_chunk, on_up_done, on_up_fail,
                                         NULL, NULL};

/* One model turn. */
static void turn(struct aug *a)
{
    struct llm_engine *e = a->op.e;
    a->turns++;
    if (a->mcp)
        e->stats.tool_turns++;
    json_decref(a->acc);
    a->acc = a->stream ? llm_acc_new() : NULL;
    struct llm_up_spec s = {.t = &a->t,
                            .req = a->req,
                            .stream = a->stream,
                            .deadline = a->deadline,
                            .sent = a->sent > 0};
    struct llm_error err;
    a->up = llm_up_start(e, &s, &up_cbs, a, &err);
    if (!a->up)
        finish_error(a, err.code, 0, 0, err.message);
}

/* ---- start ---- */

bool llm_aug_wanted(json_t *req)
{
    json_t *o = json_object_get(req, "omni");
    json_t *rag = json_object_get(o, "rag");
    return llm_tools_has_mcp(json_object_get(req, "tools")) ||
           (rag && !json_is_null(rag)) ||
           json_is_true(json_object_get(o, "semantic_cache"));
}

/* Check the Omni extension fields; false with err set. */
static bool read_options(struct aug *a, json_t *req, char err[OMNI_ERR_LEN])
{
    json_t *o = json_object_get(req, "omni");
    json_t *rag = json_object_get(o, "rag");
    json_t *n = json_object_get(req, "n");
    if (json_is_integer(n) && json_integer_value(n) != 1) {
        snprintf(err, OMNI_ERR_LEN,
                 "field 'n': MCP tools, RAG and the semantic cache need n = 1");
        return false;
    }
    if (rag && !json_is_null(rag)) {
        json_t *coll = json_object_get(rag, "collection");
        json_t *k = json_object_get(rag, "top_k");
        if (!json_is_object(rag) || !json_is_string(coll) ||
            json_string_length(coll) == 0) {
            snprintf(err, OMNI_ERR_LEN,
                     "field 'omni.rag.collection': want a collection name");
            return false;
        }
        if (k && (!json_is_integer(k) || json_integer_value(k) < 1)) {
            snprintf(err, OMNI_ERR_LEN,
                     "field 'omni.rag.top_k': want a positive integer");
            return false;
        }
        char *q = llm_rag_query(json_object_get(req, "messages"));
        if (!q) {
            snprintf(err, OMNI_ERR_LEN,
                     "field 'messages': RAG needs a user message with text");
            return false;
        }
        omni_free(q);
        a->rag = json_incref(rag);
    }
    json_t *th = json_object_get(o, "semantic_threshold");
    if (th && (!json_is_number(th) || json_number_value(th) < 0 ||
               json_number_value(th) > 1)) {
        snprintf(err, OMNI_ERR_LEN,
                 "field 'omni.semantic_threshold': want a number in [0, 1]");
        return false;
    }
    a->threshold = th ? json_number_value(th) : SEM_THRESHOLD;
    json_t *tools = json_object_get(req, "tools");
    if (llm_tools_has_mcp(tools)) {
        json_t *q;
        if (llm_tools_mcp_query(tools, &q, err) != OMNI_OK)
            return false;
        json_decref(q);
        a->mcp = true;
        a->client_tools = json_incref(tools);
    }
    /* A tool loop runs tools with side effects, and its answer depends
     * on what they return: never from or into the semantic cache. */
    a->sem = json_is_true(json_object_get(o, "semantic_cache")) && !a->mcp;
    return true;
}

static char *str_dup(struct omni_str s)
{
    return s.n ? omni_strndup(s.p, s.n) : NULL;
}

void llm_aug_start(struct llm_engine *e, struct omni_wreq *r, json_t *req)
{
    struct aug *a = omni_calloc(1, sizeof *a);
    llm_op_begin(&a->op, e, r, cancel_op);
    omni_wreq_set_data(r, a);
    a->req = req;
    a->deadline = omni_wreq_deadline(r);
    a->auth = str_dup(omni_wreq_auth(r));
    a->trace_id = str_dup(omni_wreq_trace(r));
    a->max_turns = (int)omni_cfg_int("llm.tool_loop_max");
    a->trace = json_array();
    a->step = event_new(e->base, -1, 0, on_step, a);
    omni_buf_init(&a->scratch);
    json_t *m = json_object_get(req, "model");
    const char *name = m ? json_string_value(m) : "";
    a->model_name = omni_strdup(*name ? name : e->routes.default_model);
    char err[OMNI_ERR_LEN];
    enum omni_err rc = llm_route(&e->routes, a->model_name, &a->t, err);
    if (rc == OMNI_OK && !read_options(a, req, err))
        rc = OMNI_E_BAD_REQUEST;
    if (rc != OMNI_OK) {
        finish_error(a, rc, 0, 0, err);
        return;
    }
    a->stream =
        omni_wreq_stream(r) && json_is_true(json_object_get(req, "stream"));
    a->include_usage = json_is_true(json_object_get(
        json_object_get(req, "stream_options"), "include_usage"));
    if (a->rag)
        e->stats.rag_chats++;
    if (a->mcp)
        e->stats.tool_loops++;
    if (a->sem) {
        a->sem_text = llm_sem_text(json_object_get(req, "messages"));
        if (!*a->sem_text || strlen(a->sem_text) > SEM_TEXT_MAX)
            a->sem = false;
        else
            llm_sem_namespace(req, a->model_name, a->rag, a->ns);
    }

    /* The upstream form: its own model id, no Omni extension; a stream
     * always asks for usage, summed over turns and passed on only when
     * the client asked for it. */
    json_object_set_new(req, "model", json_string(a->t.model));
    json_object_del(req, "omni");
    if (a->stream) {
        json_t *so = json_object_get(req, "stream_options");
        if (!json_is_object(so)) {
            so = json_object();
            json_object_set_new(req, "stream_options", so);
        }
        json_object_set_new(so, "include_usage", json_true());
    } else {
        json_object_del(req, "stream");
        json_object_del(req, "stream_options");
    }
    if (!a->sem) {
        prepare(a);
        return;
    }
    if (!subcall(a, &a->subs[0], K_SEMGET, "rag", "semcache_get",
                 json_pack("{s:s,s:s,s:f}", "namespace", a->ns, "text",
                           a->sem_text, "threshold", a->threshold))) {
        e->stats.sem_unavailable++;
        if (warn_due(&last_sem_warn))
            omni_warn("semantic cache unavailable, serving without it: "
                      "cannot reach the broker");
        prepare(a);
    }
}
