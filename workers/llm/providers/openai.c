/*
 * openai - the OpenAI Chat Completions, Embeddings and Models APIs, and
 * every server that copies them (Azure's v1 paths, Ollama, vLLM, Groq,
 * Mistral, OpenRouter): the unified form is OpenAI's, so translation is
 * mostly a pass-through with the Omni fields removed and the replies
 * normalised (missing ids, tool call types, "reasoning" renamed to the
 * "reasoning_content" extension that the Anthropic translator also
 * produces).  The "model" of replies and chunks stays the one the
 * upstream reports (e.g. "gpt-4o-mini-2024-07-18").  Failures come back
 * as err text or struct llm_error; nothing is logged.
 */
#include <stdlib.h>
#include <string.h>

#include "omni_alloc.h"
#include "omni_buf.h"
#include "provider_common.h"

#define NAME "openai"

static void set_auth(const struct llm_target *t, struct llm_http_req *out)
{
    if (t->api_key && *t->api_key) {
        struct omni_buf b = OMNI_BUF_INIT;
        omni_buf_addf(&b, "Bearer %s", t->api_key);
        prov_req_header(out, "Authorization", b.data);
        explicit_bzero(b.data, b.len);
        omni_buf_release(&b);
    }
}

static enum omni_err build_chat(const struct llm_target *t, json_t *req,
                                bool stream, struct llm_http_req *out,
                                char err[OMNI_ERR_LEN])
{
    if (!json_is_object(req) ||
        !json_is_array(json_object_get(req, "messages"))) {
        prov_errf(err, NAME, "request needs a 'messages' array");
        return OMNI_E_BAD_REQUEST;
    }
    json_t *c = prov_clean_request(req, t->model);
    if (stream) {
        json_t *so = json_object_get(c, "stream_options");
        if (!json_is_object(so)) {
            so = json_object();
            json_object_set_new(c, "stream_options", so);
        }
        /* always ask for usage: accounting needs it even when the
         * client did not (the chunk is then not passed on) */
        json_object_set_new(so, "include_usage", json_true());
        json_object_set_new(c, "stream", json_true());
    } else {
        json_object_del(c, "stream");
        json_object_del(c, "stream_options");
    }
    prov_req_init(out, t->base_url, "/chat/completions", c, stream);
    set_auth(t, out);
    json_decref(c);
    return OMNI_OK;
}

/* Servers differ on the name of the reasoning text: Ollama and vLLM say
 * "reasoning", DeepSeek "reasoning_content"; Omni says the latter.
 * Says whether it changed anything. */
static bool rename_reasoning(json_t *msg)
{
    json_t *r = json_object_get(msg, "reasoning");
    if (!r)
        return false;
    if (json_is_string(r) && !json_object_get(msg, "reasoning_content"))
        json_object_set(msg, "reasoning_content", r);
    json_object_del(msg, "reasoning");
    return true;
}

/* Tool calls without "type" (Mistral) get "function".  Says whether it
 * changed anything. */
static bool fix_tool_calls(json_t *msg)
{
    size_t i;
    json_t *tc;
    bool changed = false;
    json_array_foreach(json_object_get(msg, "tool_calls"), i, tc)
    {
        if (json_is_object(tc) && !json_object_get(tc, "type") &&
            json_object_get(tc, "function")) {
            json_object_set_new(tc, "type", json_string("function"));
            changed = true;
        }
    }
    return changed;
}

/* A message of an error reply or stream error object, plus OpenRouter's
 * metadata.raw detail. */
static void error_text(json_t *e, struct omni_buf *b)
{
    const char *msg = json_string_value(json_object_get(e, "message"));
    if (json_is_string(e))
        msg = json_string_value(e);
    if (msg)
        omni_buf_adds(b, msg);
    const char *raw = json_string_value(
        json_object_get(json_object_get(e, "metadata"), "raw"));
    if (raw)
        omni_buf_addf(b, "%s%s", b->len ? ": " : "", raw);
}

/* The reply normalised; *verbatim (if not NULL) says whether body,
 * starting with '{', needed no change. */
static json_t *parse_chat_v(const struct llm_target *t, const char *body,
                            size_t len, bool *verbatim, char err[OMNI_ERR_LEN])
{
    bool same = len && body[0] == '{';
    if (verbatim)
        *verbatim = false;
    json_t *j = prov_parse_object(NAME, body, len, err);
    if (!j)
        return NULL;
    json_t *e = json_object_get(j, "error");
    if (e && !json_is_null(e)) {
        struct omni_buf b = OMNI_BUF_INIT;
        error_text(e, &b);
        prov_errf(err, NAME, "%s", b.len ? b.data : "error reply");
        omni_buf_release(&b);
        json_decref(j);
        return NULL;
    }
    json_t *choices = json_object_get(j, "choices");
    if (!json_is_array(choices)) {
        prov_errf(err, NAME, "reply has no 'choices' array");
        json_decref(j);
        return NULL;
    }
    size_t i;
    json_t *ch;
    json_array_foreach(choices, i, ch)
    {
        json_t *msg = json_object_get(ch, "message");
        if (!json_is_object(msg)) {
            prov_errf(err, NAME, "reply choice %zu has no 'message'", i);
            json_decref(j);
            return NULL;
        }
        if (!json_object_get(ch, "index")) {
            json_object_set_new(ch, "index", json_integer((json_int_t)i));
            same = false;
        }
        if (!json_object_get(ch, "finish_reason")) {
            json_object_set_new(ch, "finish_reason", json_null());
            same = false;
        }
        if (!json_object_get(msg, "role")) {
            json_object_set_new(msg, "role", json_string("assistant"));
            same = false;
        }
        if (rename_reasoning(msg))
            same = false;
        if (fix_tool_calls(msg))
            same = false;
    }
    const char *obj = json_string_value(json_object_get(j, "object"));
    if (!obj || strcmp(obj, "chat.completion") != 0) {
        json_object_set_new(j, "object", json_string("chat.completion"));
        same = false;
    }
    if (!json_is_string(json_object_get(j, "id"))) {
        json_object_set_new(j, "id", json_string("chatcmpl-omni"));
        same = false;
    }
    if (!json_is_integer(json_object_get(j, "created"))) {
        json_object_set_new(j, "created", json_integer(prov_now()));
        same = false;
    }
    if (!json_is_string(json_object_get(j, "model"))) {
        json_object_set_new(j, "model", json_string(t->model));
        same = false;
    }
    if (verbatim)
        *verbatim = same;
    return j;
}

static json_t *parse_chat(const struct llm_target *t, const char *body,
                          size_t len, char err[OMNI_ERR_LEN])
{
    return parse_chat_v(t, body, len, NULL, err);
}

static struct llm_stream *stream_new(const struct llm_target *t, json_t *req)
{
    (void)t;
    struct llm_stream *s = omni_calloc(1, sizeof *s);
    s->want_usage = prov_wants_usage(req);
    return s;
}

static void stream_free(struct llm_stream *s)
{
    if (!s)
        return;
    json_decref(s->usage);
    omni_free(s);
}

static json_t *stream_usage(struct llm_stream *s)
{
    return s->usage;
}

/* Status implied by an in-stream error object without an HTTP status. */
static int stream_error_status(json_t *e)
{
    json_t *code = json_object_get(e, "code");
    if (json_is_integer(code) && json_integer_value(code) >= 400 &&
        json_integer_value(code) <= 599)
        return (int)json_integer_value(code);
    const char *type = json_string_value(json_object_get(e, "type"));
    const char *scode = json_string_value(code);
    static const struct {
        const char *word;
        int status;
    } words[] = {
        {"server_error", 500},          {"rate_limit_exceeded", 429},
        {"rate_limit_error", 429},      {"overloaded_error", 503},
        {"invalid_request_error", 400},
    };
    for (size_t i = 0; i < sizeof words / sizeof *words; i++)
        if ((scode && strcmp(scode, words[i].word) == 0) ||
            (type && strcmp(type, words[i].word) == 0))
            return words[i].status;
    return 0;
}

/* Would the parsed path below pass this chunk payload d[0..n) (trimmed)
 * on unchanged, so that its bytes can be sent as they are?  Yes for an
 * object on one line that says "object": "chat.completion.chunk" and has
 * none of the keys that path looks at or changes.  In JSON a quote
 * inside a string is escaped, so a quoted word such as "usage" that is
 * not in the payload is no key of it (unless spelt with escapes).
 * A false yes is excluded; a false no costs only the parse, which also
 * rejects what is not JSON. */
static bool chunk_verbatim(const char *d, size_t n)
{
    static const char obj[] = "\"object\"";
    static const char val[] = "\"chat.completion.chunk\"";
    static const char *const keys[] = {
        "\"error\"",     "\"usage\"",      "\"x_groq\"",
        "\"reasoning\"", "\"tool_calls\"",
    };
    if (n < 2 || d[0] != '{' || d[n - 1] != '}' || memchr(d, '\n', n))
        return false;
    const char *p = memmem(d, n, obj, sizeof obj - 1), *end = d + n;
    if (!p)
        return false;
    p += sizeof obj - 1;
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\r'))
        p++;
    if (p == end || *p++ != ':')
        return false;
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\r'))
        p++;
    if ((size_t)(end - p) < sizeof val - 1 || memcmp(p, val, sizeof val - 1))
        return false;
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        if (memmem(d, n, keys[i], strlen(keys[i])))
            return false;
    return true;
}

static enum llm_stream_rc stream_event_raw(struct llm_stream *s,
                                           const struct llm_sse_event *ev,
                                           llm_chunk_cb emit,
                                           llm_raw_cb emit_raw, void *arg,
                                           struct llm_error *err)
{
    const char *d = ev->data;
    size_t n = ev->data_len;
    while (n && (*d == ' ' || *d == '\t')) {
        d++;
        n--;
    }
    while (n && (d[n - 1] == ' ' || d[n - 1] == '\t' || d[n - 1] == '\n'))
        n--;
    if (n == 6 && memcmp(d, "[DONE]", 6) == 0)
        return LLM_STREAM_DONE;
    if (emit_raw && chunk_verbatim(d, n)) {
        emit_raw(d, n, arg);
        return LLM_STREAM_MORE;
    }
    json_error_t je;
    json_t *c = json_loadb(d, n, 0, &je);
    if (!json_is_object(c)) {
        json_decref(c);
        prov_error(err, NAME, 0, NULL, NULL, NULL);
        prov_errf(err->message, NAME, "invalid stream data: %s",
                  c ? "not an object" : je.text);
        return LLM_STREAM_ERROR;
    }
    json_t *e = json_object_get(c, "error");
    if (e && !json_is_null(e)) {
        struct omni_buf b = OMNI_BUF_INIT;
        error_text(e, &b);
        prov_error(err, NAME, stream_error_status(e), NULL, NULL, b.data);
        omni_buf_release(&b);
        json_decref(c);
        return LLM_STREAM_ERROR;
    }
    /* usage: the final chunk (include_usage), or Groq's x_groq.usage */
    json_t *u = json_object_get(c, "usage");
    if (!json_is_object(u))
        u = json_object_get(json_object_get(c, "x_groq"), "usage");
    bool has_usage = json_is_object(u);
    if (has_usage) {
        json_decref(s->usage);
        s->usage = json_deep_copy(u);
    }
    json_t *choices = json_object_get(c, "choices");
    if (!s->want_usage) {
        json_object_del(c, "usage");
        if (has_usage && json_array_size(choices) == 0) {
            json_decref(c);
            return LLM_STREAM_MORE;
        }
    }
    size_t i;
    json_t *ch;
    json_array_foreach(choices, i, ch)
    {
        json_t *delta = json_object_get(ch, "delta");
        rename_reasoning(delta);
        fix_tool_calls(delta);
    }
    json_object_set_new(c, "object", json_string("chat.completion.chunk"));
    emit(c, arg);
    json_decref(c);
    return LLM_STREAM_MORE;
}

static enum llm_stream_rc stream_event(struct llm_stream *s,
                                       const struct llm_sse_event *ev,
                                       llm_chunk_cb emit, void *arg,
                                       struct llm_error *err)
{
    return stream_event_raw(s, ev, emit, NULL, arg, err);
}

static enum omni_err build_embed(const struct llm_target *t, json_t *req,
                                 struct llm_http_req *out,
                                 char err[OMNI_ERR_LEN])
{
    if (!json_is_object(req) || !json_object_get(req, "input")) {
        prov_errf(err, NAME, "embeddings request needs 'input'");
        return OMNI_E_BAD_REQUEST;
    }
    json_t *c = prov_clean_request(req, t->model);
    prov_req_init(out, t->base_url, "/embeddings", c, false);
    set_auth(t, out);
    json_decref(c);
    return OMNI_OK;
}

/* The reply in the encoding the client asked for: float arrays unless it
 * said base64, whatever the upstream sent. */
static json_t *parse_embed(const struct llm_target *t, json_t *req,
                           const char *body, size_t len, char err[OMNI_ERR_LEN])
{
    json_t *j = prov_parse_object(NAME, body, len, err);
    if (!j)
        return NULL;
    json_t *data = json_object_get(j, "data");
    if (!json_is_array(data)) {
        prov_errf(err, NAME, "embeddings reply has no 'data' array");
        json_decref(j);
        return NULL;
    }
    const char *fmt =
        json_string_value(json_object_get(req, "encoding_format"));
    bool b64 = fmt && strcmp(fmt, "base64") == 0;
    size_t i;
    json_t *item;
    json_array_foreach(data, i, item)
    {
        json_t *emb = json_object_get(item, "embedding");
        json_t *conv = NULL;
        if (json_is_array(emb) && b64)
            conv = prov_floats_to_b64(emb);
        else if (json_is_string(emb) && !b64)
            conv = prov_b64_to_floats(json_string_value(emb),
                                      json_string_length(emb));
        else if (json_is_array(emb) || json_is_string(emb))
            continue;
        if (!conv) {
            prov_errf(err, NAME, "embedding %zu is not a vector", i);
            json_decref(j);
            return NULL;
        }
        json_object_set_new(item, "embedding", conv);
    }
    json_object_set_new(j, "object", json_string("list"));
    if (!json_is_string(json_object_get(j, "model")))
        json_object_set_new(j, "model", json_string(t->model));
    return j;
}

static enum omni_err build_models(const struct llm_target *t,
                                  struct llm_http_req *out,
                                  char err[OMNI_ERR_LEN])
{
    (void)err;
    prov_req_init(out, t->base_url, "/models", NULL, false);
    set_auth(t, out);
    return OMNI_OK;
}

static json_t *parse_models(const struct llm_target *t, const char *body,
                            size_t len, char err[OMNI_ERR_LEN])
{
    json_t *j = prov_parse_object(NAME, body, len, err);
    if (!j)
        return NULL;
    json_t *data = json_object_get(j, "data");
    if (!json_is_array(data)) {
        prov_errf(err, NAME, "models reply has no 'data' array");
        json_decref(j);
        return NULL;
    }
    json_t *out = prov_models_list(data, t->name ? t->name : NAME);
    json_decref(j);
    return out;
}

static void map_error(int status, const char *retry_after,
                      const char *retry_after_ms, const char *body, size_t len,
                      struct llm_error *out)
{
    struct omni_buf b = OMNI_BUF_INIT;
    json_t *j = body ? json_loadb(body, len, 0, NULL) : NULL;
    json_t *e = json_object_get(j, "error");
    if (e)
        error_text(e, &b);
    else if (json_is_string(json_object_get(j, "message")))
        error_text(j, &b); /* vLLM: {"object":"error","message",...} */
    else if (json_is_string(json_object_get(j, "detail")))
        omni_buf_adds(&b, json_string_value(json_object_get(j, "detail")));
    if (!b.len && body && len) {
        char ex[128];
        prov_body_excerpt(body, len, ex, sizeof ex);
        if (*ex)
            omni_buf_addf(&b, "HTTP %d: %s", status, ex);
    }
    prov_error(out, NAME, status, retry_after, retry_after_ms, b.data);
    /* an exhausted quota does not come back by waiting */
    const char *code = json_string_value(json_object_get(e, "code"));
    const char *type = json_string_value(json_object_get(e, "type"));
    if ((code && strcmp(code, "insufficient_quota") == 0) ||
        (type && strcmp(type, "insufficient_quota") == 0))
        out->retryable = false;
    json_decref(j);
    omni_buf_release(&b);
}

const struct llm_provider llm_openai = {
    .name = NAME,
    .build_chat = build_chat,
    .parse_chat = parse_chat,
    .parse_chat_verbatim = parse_chat_v,
    .stream_new = stream_new,
    .stream_event = stream_event,
    .stream_event_raw = stream_event_raw,
    .stream_usage = stream_usage,
    .stream_free = stream_free,
    .build_embed = build_embed,
    .parse_embed = parse_embed,
    .build_models = build_models,
    .parse_models = parse_models,
    .map_error = map_error,
};
