/*
 * llm_call - one plain chat or embeddings request, from the body to the
 * answer.
 *
 * States: cache lookup (chat, when the cache is on) -> upstream exchange
 * (llm_up, with its retries) -> answered.  A streamed chat sends each
 * unified chunk as a PARTIAL at once and keeps it for the cache; chunks
 * and replies that need no translation go out as the upstream's bytes.
 * A chat that names MCP tools, a RAG collection or the semantic cache is
 * handed to llm_aug.c instead.  Owns the parsed body, the exchange and the
 * cache lookup; ends the request exactly once and frees itself then.
 */
#include <string.h>

#include "llm.h"
#include "llm_up.h"
#include "omni_alloc.h"

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

    struct llm_up *up;
    struct omni_buf scratch;
};

static int dump_cb(const char *p, size_t n, void *arg)
{
    omni_buf_add(arg, p, n);
    return 0;
}

static void call_free(struct call *c)
{
    llm_op_end(&c->op);
    omni_buf_release(&c->record);
    omni_buf_release(&c->scratch);
    json_decref(c->req);
    omni_free(c->model_name);
    omni_free(c);
}

/* The request is answered (or cancelled): release c.  No exchange is
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
    llm_up_cancel(c->up);
    c->up = NULL;
    answered(c);
}

/* Send one serialised chunk (a JSON object on one line), keep it for
 * the cache. */
static void on_raw_chunk(void *arg, const char *p, size_t n)
{
    struct call *c = arg;
    omni_wreq_partial(c->op.r, p, n);
    if (!c->cacheable || c->record_over)
        return;
    if (c->record.len + n + 1 > RECORD_MAX) {
        c->record_over = true;
        omni_buf_release(&c->record);
        return;
    }
    omni_buf_add(&c->record, p, n);
    omni_buf_addch(&c->record, '\n');
}

/* Serialise one unified chunk, then as above. */
static void on_chunk(void *arg, json_t *chunk)
{
    struct call *c = arg;
    omni_buf_reset(&c->scratch);
    json_dump_callback(chunk, dump_cb, &c->scratch, JSON_COMPACT);
    on_raw_chunk(c, c->scratch.data, c->scratch.len);
}

/* Answer with the serialised reply p[0..n), keep it for the cache. */
static void on_raw_done(void *arg, const char *p, size_t n)
{
    struct call *c = arg;
    struct llm_engine *e = c->op.e;
    c->up = NULL;
    if (c->cacheable) {
        llm_cache_put(e->cache, c->key, "c", p, n);
        e->stats.cache_stores++;
    }
    omni_wreq_final(c->op.r, p, n);
    answered(c);
}

static void on_done(void *arg, json_t *reply)
{
    struct call *c = arg;
    struct llm_engine *e = c->op.e;
    c->up = NULL;
    if (!reply) {
        if (c->cacheable && !c->record_over && c->record.len) {
            llm_cache_put(e->cache, c->key, "s", c->record.data,
                          c->record.len - 1);
            e->stats.cache_stores++;
        }
        omni_wreq_final(c->op.r, "", 0);
        answered(c);
        return;
    }
    omni_buf_reset(&c->scratch);
    json_dump_callback(reply, dump_cb, &c->scratch, JSON_COMPACT);
    on_raw_done(c, c->scratch.data, c->scratch.len);
}

static void on_fail(void *arg, const struct llm_error *err)
{
    struct call *c = arg;
    c->up = NULL;
    omni_wreq_error(c->op.r, err->code, err->status, err->retry_after_ms, "%s",
                    err->message);
    answered(c);
}

static const struct llm_up_cbs up_cbs = {on_chunk, on_done, on_fail,
                                         on_raw_chunk, on_raw_done};

/* Start the upstream exchange. */
static void upstream(struct call *c)
{
    struct llm_up_spec s = {.t = &c->t,
                            .req = c->req,
                            .embed = c->embed,
                            .stream = c->stream,
                            .deadline = c->deadline};
    struct llm_error err;
    c->up = llm_up_start(c->op.e, &s, &up_cbs, c, &err);
    if (c->up)
        return;
    omni_wreq_error(c->op.r, err.code, 0, 0, "%s", err.message);
    answered(c);
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
    if (!embed && llm_aug_wanted(req)) {
        llm_aug_start(e, r, req);
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
    omni_buf_init(&c->record);
    omni_buf_init(&c->scratch);
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
