/*
 * anthropic - the Anthropic Messages API behind the unified (OpenAI)
 * form.  Requests: system/developer messages become the top-level
 * "system", tool calls become tool_use blocks, tool messages become
 * tool_result blocks of a user message, consecutive same-role messages
 * are merged (the API wants alternation), max_tokens is always set.
 * Replies and stream events become chat.completion / chunk objects;
 * thinking text is returned in the "reasoning_content" field of the
 * message (or delta), an Omni extension shared with the OpenAI
 * translator.  prompt_tokens counts input plus cache read and cache
 * creation tokens (what OpenAI's prompt_tokens means), cached_tokens the
 * cache reads.  Server-side tool blocks (server_tool_use, *_result) are
 * not client tool calls and are left out.  Failures come back as err
 * text or struct llm_error; nothing is logged.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "omni_alloc.h"
#include "omni_buf.h"
#include "provider_common.h"

#define NAME            "anthropic"
#define DEFAULT_VERSION "2023-06-01"
#define DEFAULT_MAX     4096

static void set_headers(const struct llm_target *t, struct llm_http_req *out)
{
    if (t->api_key && *t->api_key)
        prov_req_header(out, "x-api-key", t->api_key);
    prov_req_header(out, "anthropic-version",
                    t->version && *t->version ? t->version : DEFAULT_VERSION);
}

/* ------------------------------------------------------------ requests */

/* Append {"type":"text","text":s} unless s is empty (the API rejects
 * empty text blocks). */
static void add_text(json_t *blocks, const char *s, size_t n)
{
    if (n)
        json_array_append_new(
            blocks, json_pack("{s:s,s:s%}", "type", "text", "text", s, n));
}

/* An OpenAI image_url part as an Anthropic image block. */
static json_t *image_block(json_t *part)
{
    json_t *iu = json_object_get(part, "image_url");
    const char *url = json_is_string(iu)
                          ? json_string_value(iu)
                          : json_string_value(json_object_get(iu, "url"));
    if (!url)
        return NULL;
    if (strncmp(url, "data:", 5) == 0) {
        const char *semi = strstr(url, ";base64,");
        if (!semi)
            return NULL;
        return json_pack("{s:s,s:{s:s,s:s%,s:s}}", "type", "image", "source",
                         "type", "base64", "media_type", url + 5,
                         (size_t)(semi - url - 5), "data", semi + 8);
    }
    return json_pack("{s:s,s:{s:s,s:s}}", "type", "image", "source", "type",
                     "url", "url", url);
}

/* OpenAI content (string, array of parts, null) -> blocks appended to
 * out.  Returns false with err set on a part we cannot translate. */
static bool content_blocks(json_t *content, json_t *out, bool images,
                           char err[OMNI_ERR_LEN])
{
    if (json_is_string(content)) {
        add_text(out, json_string_value(content), json_string_length(content));
        return true;
    }
    if (json_is_null(content) || !content)
        return true;
    if (!json_is_array(content)) {
        prov_errf(err, NAME, "message content must be a string or array");
        return false;
    }
    size_t i;
    json_t *part;
    json_array_foreach(content, i, part)
    {
        const char *type = json_string_value(json_object_get(part, "type"));
        json_t *text = json_object_get(part, "text");
        if (type && strcmp(type, "text") == 0 && json_is_string(text)) {
            add_text(out, json_string_value(text), json_string_length(text));
        } else if (type && strcmp(type, "refusal") == 0) {
            continue;
        } else if (images && type && strcmp(type, "image_url") == 0) {
            json_t *b = image_block(part);
            if (!b) {
                prov_errf(err, NAME, "unusable image_url in part %zu", i);
                return false;
            }
            json_array_append_new(out, b);
        } else {
            prov_errf(err, NAME, "unsupported content part type '%s'",
                      type ? type : "(none)");
            return false;
        }
    }
    return true;
}

/* Add blocks as a message of role, merged into the previous message when
 * that has the same role.  Steals blocks. */
static void add_message(json_t *msgs, const char *role, json_t *blocks)
{
    if (json_array_size(blocks) == 0) {
        json_decref(blocks);
        return;
    }
    json_t *last = json_array_get(msgs, json_array_size(msgs) - 1);
    const char *lrole = json_string_value(json_object_get(last, "role"));
    if (lrole && strcmp(lrole, role) == 0) {
        json_array_extend(json_object_get(last, "content"), blocks);
        json_decref(blocks);
        return;
    }
    json_array_append_new(
        msgs, json_pack("{s:s,s:o}", "role", role, "content", blocks));
}

/* tool_calls of an assistant message -> tool_use blocks. */
static bool tool_use_blocks(json_t *calls, json_t *out, char err[OMNI_ERR_LEN])
{
    size_t i;
    json_t *tc;
    json_array_foreach(calls, i, tc)
    {
        json_t *fn = json_object_get(tc, "function");
        const char *id = json_string_value(json_object_get(tc, "id"));
        const char *name = json_string_value(json_object_get(fn, "name"));
        const char *args = json_string_value(json_object_get(fn, "arguments"));
        if (!id || !name) {
            prov_errf(err, NAME, "tool call %zu needs 'id' and a name", i);
            return false;
        }
        json_t *input =
            args && *args ? json_loads(args, 0, NULL) : json_object();
        if (!json_is_object(input)) {
            json_decref(input);
            prov_errf(err, NAME,
                      "arguments of tool call '%s' are not a JSON object", id);
            return false;
        }
        json_array_append_new(out, json_pack("{s:s,s:s,s:s,s:o}", "type",
                                             "tool_use", "id", id, "name", name,
                                             "input", input));
    }
    return true;
}

/* One OpenAI message -> system text or a (merged) Anthropic message. */
static bool add_openai_message(json_t *m, json_t *system, json_t *msgs,
                               char err[OMNI_ERR_LEN])
{
    const char *role = json_string_value(json_object_get(m, "role"));
    json_t *content = json_object_get(m, "content");
    json_t *blocks = json_array();
    if (!role) {
        prov_errf(err, NAME, "message without a 'role'");
        goto fail;
    }
    if (strcmp(role, "system") == 0 || strcmp(role, "developer") == 0) {
        if (!content_blocks(content, system, false, err))
            goto fail;
        json_decref(blocks);
        return true;
    }
    if (strcmp(role, "user") == 0) {
        if (!content_blocks(content, blocks, true, err))
            goto fail;
        add_message(msgs, "user", blocks);
        return true;
    }
    if (strcmp(role, "assistant") == 0) {
        if (!content_blocks(content, blocks, false, err) ||
            !tool_use_blocks(json_object_get(m, "tool_calls"), blocks, err))
            goto fail;
        add_message(msgs, "assistant", blocks);
        return true;
    }
    if (strcmp(role, "tool") == 0) {
        const char *id = json_string_value(json_object_get(m, "tool_call_id"));
        if (!id) {
            prov_errf(err, NAME, "tool message without 'tool_call_id'");
            goto fail;
        }
        json_t *res =
            json_pack("{s:s,s:s}", "type", "tool_result", "tool_use_id", id);
        if (json_is_string(content) && json_string_length(content)) {
            json_object_set(res, "content", content);
        } else if (json_is_array(content)) {
            json_t *parts = json_array();
            if (!content_blocks(content, parts, true, err)) {
                json_decref(parts);
                json_decref(res);
                goto fail;
            }
            json_object_set_new(res, "content", parts);
        }
        json_array_append_new(blocks, res);
        add_message(msgs, "user", blocks);
        return true;
    }
    prov_errf(err, NAME, "unsupported message role '%s'", role);
fail:
    json_decref(blocks);
    return false;
}

/* OpenAI tools and tool_choice -> Anthropic's; MCP entries are Omni's. */
static bool add_tools(json_t *req, json_t *body, char err[OMNI_ERR_LEN])
{
    json_t *tools = json_array();
    size_t i;
    json_t *tool;
    json_array_foreach(json_object_get(req, "tools"), i, tool)
    {
        const char *type = json_string_value(json_object_get(tool, "type"));
        if (type && strcmp(type, "mcp") == 0)
            continue;
        json_t *fn = json_object_get(tool, "function");
        const char *name = json_string_value(json_object_get(fn, "name"));
        if (!type || strcmp(type, "function") != 0 || !name) {
            prov_errf(err, NAME, "tool %zu is not a named function", i);
            json_decref(tools);
            return false;
        }
        json_t *t = json_pack("{s:s}", "name", name);
        json_t *desc = json_object_get(fn, "description");
        if (json_is_string(desc))
            json_object_set(t, "description", desc);
        json_t *params = json_object_get(fn, "parameters");
        if (json_is_object(params))
            json_object_set(t, "input_schema", params);
        else
            json_object_set_new(
                t, "input_schema",
                json_pack("{s:s,s:{}}", "type", "object", "properties"));
        json_array_append_new(tools, t);
    }
    if (json_array_size(tools) == 0) {
        json_decref(tools);
        return true;
    }
    json_object_set_new(body, "tools", tools);

    json_t *tc = json_object_get(req, "tool_choice");
    json_t *choice = NULL;
    const char *word = json_string_value(tc);
    if (word && strcmp(word, "required") == 0)
        choice = json_pack("{s:s}", "type", "any");
    else if (word && (strcmp(word, "auto") == 0 || strcmp(word, "none") == 0))
        choice = json_pack("{s:s}", "type", word);
    else if (json_is_object(tc)) {
        const char *name = json_string_value(
            json_object_get(json_object_get(tc, "function"), "name"));
        if (!name) {
            prov_errf(err, NAME, "tool_choice names no function");
            return false;
        }
        choice = json_pack("{s:s,s:s}", "type", "tool", "name", name);
    } else if (tc && !json_is_null(tc)) {
        prov_errf(err, NAME, "unsupported tool_choice");
        return false;
    }
    if (json_is_false(json_object_get(req, "parallel_tool_calls"))) {
        if (!choice)
            choice = json_pack("{s:s}", "type", "auto");
        json_object_set_new(choice, "disable_parallel_tool_use", json_true());
    }
    if (choice)
        json_object_set_new(body, "tool_choice", choice);
    return true;
}

static bool add_params(json_t *req, json_t *body, char err[OMNI_ERR_LEN])
{
    json_t *n = json_object_get(req, "n");
    if (json_is_integer(n) && json_integer_value(n) > 1) {
        prov_errf(err, NAME, "'n' > 1 is not supported");
        return false;
    }
    json_t *max = json_object_get(req, "max_completion_tokens");
    if (!json_is_integer(max))
        max = json_object_get(req, "max_tokens");
    if (json_is_integer(max))
        json_object_set(body, "max_tokens", max);
    else
        json_object_set_new(body, "max_tokens", json_integer(DEFAULT_MAX));
    static const char *const same[] = {"temperature", "top_p"};
    for (size_t i = 0; i < sizeof same / sizeof *same; i++) {
        json_t *v = json_object_get(req, same[i]);
        if (json_is_number(v))
            json_object_set(body, same[i], v);
    }
    json_t *stop = json_object_get(req, "stop");
    if (json_is_string(stop)) {
        json_object_set_new(body, "stop_sequences", json_pack("[O]", stop));
    } else if (json_is_array(stop) && json_array_size(stop)) {
        json_object_set(body, "stop_sequences", stop);
    }
    const char *user = json_string_value(json_object_get(req, "user"));
    if (user)
        json_object_set_new(body, "metadata",
                            json_pack("{s:s}", "user_id", user));
    return true;
}

static enum omni_err build_chat(const struct llm_target *t, json_t *req,
                                bool stream, struct llm_http_req *out,
                                char err[OMNI_ERR_LEN])
{
    json_t *messages = json_object_get(req, "messages");
    if (!json_is_array(messages)) {
        prov_errf(err, NAME, "request needs a 'messages' array");
        return OMNI_E_BAD_REQUEST;
    }
    json_t *body = json_pack("{s:s}", "model", t->model);
    json_t *system = json_array();
    json_t *msgs = json_array();
    size_t i;
    json_t *m;
    json_array_foreach(messages, i, m)
    {
        if (!add_openai_message(m, system, msgs, err))
            goto fail;
    }
    if (json_array_size(system) == 1)
        json_object_set(body, "system",
                        json_object_get(json_array_get(system, 0), "text"));
    else if (json_array_size(system) > 1)
        json_object_set(body, "system", system);
    json_object_set(body, "messages", msgs);
    if (!add_params(req, body, err) || !add_tools(req, body, err))
        goto fail;
    if (stream)
        json_object_set_new(body, "stream", json_true());
    prov_req_init(out, t->base_url, "/v1/messages", body, stream);
    set_headers(t, out);
    json_decref(system);
    json_decref(msgs);
    json_decref(body);
    return OMNI_OK;
fail:
    json_decref(system);
    json_decref(msgs);
    json_decref(body);
    return OMNI_E_BAD_REQUEST;
}

/* ------------------------------------------------------------- replies */

static const char *finish_reason(const char *stop)
{
    if (!stop)
        return NULL;
    if (strcmp(stop, "max_tokens") == 0)
        return "length";
    if (strcmp(stop, "tool_use") == 0)
        return "tool_calls";
    if (strcmp(stop, "refusal") == 0)
        return "content_filter";
    return "stop"; /* end_turn, stop_sequence, pause_turn */
}

static json_int_t usage_int(json_t *u, const char *key)
{
    json_t *v = json_object_get(u, key);
    return json_is_integer(v) ? json_integer_value(v) : 0;
}

static json_t *openai_usage(json_int_t prompt, json_int_t cached,
                            json_int_t completion)
{
    return json_pack("{s:I,s:I,s:I,s:{s:I}}", "prompt_tokens", prompt,
                     "completion_tokens", completion, "total_tokens",
                     prompt + completion, "prompt_tokens_details",
                     "cached_tokens", cached);
}

/* Input tokens in OpenAI's sense: fresh, cache-written and cache-read. */
static json_int_t prompt_tokens(json_t *u)
{
    return usage_int(u, "input_tokens") +
           usage_int(u, "cache_creation_input_tokens") +
           usage_int(u, "cache_read_input_tokens");
}

static json_t *parse_chat(const struct llm_target *t, const char *body,
                          size_t len, char err[OMNI_ERR_LEN])
{
    json_t *j = prov_parse_object(NAME, body, len, err);
    if (!j)
        return NULL;
    json_t *content = json_object_get(j, "content");
    const char *type = json_string_value(json_object_get(j, "type"));
    if (!json_is_array(content) || !type || strcmp(type, "message") != 0) {
        const char *msg = json_string_value(
            json_object_get(json_object_get(j, "error"), "message"));
        prov_errf(err, NAME, "%s", msg ? msg : "reply is not a message");
        json_decref(j);
        return NULL;
    }
    struct omni_buf text = OMNI_BUF_INIT, thinking = OMNI_BUF_INIT;
    json_t *calls = json_array();
    size_t i;
    json_t *b;
    json_array_foreach(content, i, b)
    {
        const char *bt = json_string_value(json_object_get(b, "type"));
        json_t *s;
        if (!bt)
            continue;
        if (strcmp(bt, "text") == 0 &&
            json_is_string(s = json_object_get(b, "text"))) {
            omni_buf_add(&text, json_string_value(s), json_string_length(s));
        } else if (strcmp(bt, "thinking") == 0 &&
                   json_is_string(s = json_object_get(b, "thinking"))) {
            omni_buf_add(&thinking, json_string_value(s),
                         json_string_length(s));
        } else if (strcmp(bt, "tool_use") == 0 &&
                   json_is_string(json_object_get(b, "id")) &&
                   json_is_string(json_object_get(b, "name"))) {
            char *args = json_dumps(json_object_get(b, "input"),
                                    JSON_COMPACT | JSON_ENCODE_ANY);
            json_array_append_new(
                calls, json_pack("{s:O,s:s,s:{s:O,s:s}}", "id",
                                 json_object_get(b, "id"), "type", "function",
                                 "function", "name", json_object_get(b, "name"),
                                 "arguments", args ? args : "{}"));
            free(args);
        }
    }
    json_t *msg = json_pack("{s:s}", "role", "assistant");
    json_object_set_new(msg, "content",
                        text.len || !json_array_size(calls)
                            ? json_stringn(text.data, text.len)
                            : json_null());
    if (json_array_size(calls))
        json_object_set(msg, "tool_calls", calls);
    if (thinking.len)
        json_object_set_new(msg, "reasoning_content",
                            json_stringn(thinking.data, thinking.len));
    const char *fr =
        finish_reason(json_string_value(json_object_get(j, "stop_reason")));
    json_t *u = json_object_get(j, "usage");
    json_t *id = json_object_get(j, "id");
    json_t *model = json_object_get(j, "model");
    json_t *out = json_pack(
        "{s:o,s:s,s:I,s:o,s:[{s:i,s:o,s:o,s:n}],s:o}", "id",
        json_is_string(id) ? json_incref(id) : json_string("msg"), "object",
        "chat.completion", "created", prov_now(), "model",
        json_is_string(model) ? json_incref(model) : json_string(t->model),
        "choices", "index", 0, "message", msg, "finish_reason",
        fr ? json_string(fr) : json_null(), "logprobs", "usage",
        openai_usage(prompt_tokens(u), usage_int(u, "cache_read_input_tokens"),
                     usage_int(u, "output_tokens")));
    json_decref(calls);
    omni_buf_release(&text);
    omni_buf_release(&thinking);
    json_decref(j);
    return out;
}

/* -------------------------------------------------------------- streams */

static struct llm_stream *stream_new(const struct llm_target *t, json_t *req)
{
    struct llm_stream *s = omni_calloc(1, sizeof *s);
    s->want_usage = prov_wants_usage(req);
    s->model = omni_strdup(t->model ? t->model : "");
    s->id = omni_strdup("msg");
    s->created = prov_now();
    return s;
}

static void stream_free(struct llm_stream *s)
{
    if (!s)
        return;
    json_decref(s->usage);
    omni_free(s->id);
    omni_free(s->model);
    omni_free(s->blocks);
    omni_free(s);
}

static json_t *stream_usage(struct llm_stream *s)
{
    return s->usage;
}

static void update_usage(struct llm_stream *s)
{
    json_decref(s->usage);
    s->usage = openai_usage(s->in_tokens, s->cached, s->out_tokens);
}

/* Emit one chunk with delta (stolen) and finish_reason (NULL: null). */
static void emit_delta(struct llm_stream *s, json_t *delta, const char *fr,
                       llm_chunk_cb emit, void *arg)
{
    if (!s->role_sent) {
        json_object_set_new(delta, "role", json_string("assistant"));
        s->role_sent = true;
    }
    json_t *c =
        json_pack("{s:s,s:s,s:I,s:s,s:[{s:i,s:o,s:o}]}", "id", s->id, "object",
                  "chat.completion.chunk", "created", s->created, "model",
                  s->model, "choices", "index", 0, "delta", delta,
                  "finish_reason", fr ? json_string(fr) : json_null());
    emit(c, arg);
    json_decref(c);
}

/* Content block i when it is a client tool call, else NULL. */
static struct prov_block *tool_block(struct llm_stream *s, json_t *d)
{
    json_int_t i = json_integer_value(json_object_get(d, "index"));
    if (i < 0 || (size_t)i >= s->nblocks || s->blocks[i].tool < 0)
        return NULL;
    return &s->blocks[i];
}

static void emit_args(struct llm_stream *s, struct prov_block *b, json_t *frag,
                      llm_chunk_cb emit, void *arg)
{
    json_t *tc = json_pack("{s:i,s:{s:o}}", "index", b->tool, "function",
                           "arguments", frag);
    b->args = true;
    emit_delta(s, json_pack("{s:[o]}", "tool_calls", tc), NULL, emit, arg);
}

static void block_start(struct llm_stream *s, json_t *d, llm_chunk_cb emit,
                        void *arg)
{
    json_t *idx = json_object_get(d, "index");
    json_t *cb = json_object_get(d, "content_block");
    const char *type = json_string_value(json_object_get(cb, "type"));
    if (!json_is_integer(idx) || json_integer_value(idx) < 0 ||
        json_integer_value(idx) > 4096 || !type)
        return;
    size_t i = (size_t)json_integer_value(idx);
    if (i >= s->nblocks) {
        s->blocks = omni_realloc(s->blocks, (i + 1) * sizeof *s->blocks);
        for (size_t k = s->nblocks; k <= i; k++)
            s->blocks[k] = (struct prov_block){-1, false};
        s->nblocks = i + 1;
    }
    json_t *str;
    if (strcmp(type, "tool_use") == 0 &&
        json_is_string(json_object_get(cb, "id")) &&
        json_is_string(json_object_get(cb, "name"))) {
        int k = s->ntools++;
        s->blocks[i] = (struct prov_block){k, false};
        json_t *tc =
            json_pack("{s:i,s:O,s:s,s:{s:O,s:s}}", "index", k, "id",
                      json_object_get(cb, "id"), "type", "function", "function",
                      "name", json_object_get(cb, "name"), "arguments", "");
        emit_delta(s, json_pack("{s:[o]}", "tool_calls", tc), NULL, emit, arg);
    } else if (strcmp(type, "text") == 0 &&
               json_string_length(str = json_object_get(cb, "text"))) {
        emit_delta(s, json_pack("{s:O}", "content", str), NULL, emit, arg);
    } else if (strcmp(type, "thinking") == 0 &&
               json_string_length(str = json_object_get(cb, "thinking"))) {
        emit_delta(s, json_pack("{s:O}", "reasoning_content", str), NULL, emit,
                   arg);
    }
}

static void block_delta(struct llm_stream *s, json_t *d, llm_chunk_cb emit,
                        void *arg)
{
    json_t *delta = json_object_get(d, "delta");
    const char *type = json_string_value(json_object_get(delta, "type"));
    if (!type)
        return;
    json_t *v;
    if (strcmp(type, "text_delta") == 0 &&
        json_is_string(v = json_object_get(delta, "text"))) {
        emit_delta(s, json_pack("{s:O}", "content", v), NULL, emit, arg);
    } else if (strcmp(type, "thinking_delta") == 0 &&
               json_is_string(v = json_object_get(delta, "thinking"))) {
        emit_delta(s, json_pack("{s:O}", "reasoning_content", v), NULL, emit,
                   arg);
    } else if (strcmp(type, "input_json_delta") == 0 &&
               json_string_length(v = json_object_get(delta, "partial_json"))) {
        struct prov_block *b = tool_block(s, d);
        /* a server tool's input is not the client's business */
        if (b)
            emit_args(s, b, json_incref(v), emit, arg);
    }
    /* signature_delta, citations_delta: nothing to pass on */
}

static void message_start(struct llm_stream *s, json_t *d, llm_chunk_cb emit,
                          void *arg)
{
    json_t *m = json_object_get(d, "message");
    const char *id = json_string_value(json_object_get(m, "id"));
    const char *model = json_string_value(json_object_get(m, "model"));
    if (id) {
        omni_free(s->id);
        s->id = omni_strdup(id);
    }
    if (model) {
        omni_free(s->model);
        s->model = omni_strdup(model);
    }
    json_t *u = json_object_get(m, "usage");
    s->in_tokens = prompt_tokens(u);
    s->cached = usage_int(u, "cache_read_input_tokens");
    s->out_tokens = usage_int(u, "output_tokens");
    update_usage(s);
    emit_delta(s, json_pack("{s:s}", "content", ""), NULL, emit, arg);
}

static void message_delta(struct llm_stream *s, json_t *d, llm_chunk_cb emit,
                          void *arg)
{
    json_t *u = json_object_get(d, "usage");
    if (json_is_integer(json_object_get(u, "output_tokens")))
        s->out_tokens = usage_int(u, "output_tokens");
    /* newer streams repeat the (final) input counts here */
    if (json_is_integer(json_object_get(u, "input_tokens"))) {
        s->in_tokens = prompt_tokens(u);
        s->cached = usage_int(u, "cache_read_input_tokens");
    }
    update_usage(s);
    const char *fr = finish_reason(json_string_value(
        json_object_get(json_object_get(d, "delta"), "stop_reason")));
    if (fr)
        emit_delta(s, json_object(), fr, emit, arg);
}

/* HTTP-like status of an Anthropic error type. */
static int error_status(const char *type)
{
    static const struct {
        const char *type;
        int status;
    } map[] = {
        {"invalid_request_error", 400},
        {"authentication_error", 401},
        {"permission_error", 403},
        {"not_found_error", 404},
        {"request_too_large", 413},
        {"rate_limit_error", 429},
        {"api_error", 500},
        {"timeout_error", 504},
        {"overloaded_error", 529},
    };
    for (size_t i = 0; type && i < sizeof map / sizeof *map; i++)
        if (strcmp(type, map[i].type) == 0)
            return map[i].status;
    return 500;
}

static enum llm_stream_rc stream_event(struct llm_stream *s,
                                       const struct llm_sse_event *ev,
                                       llm_chunk_cb emit, void *arg,
                                       struct llm_error *err)
{
    json_error_t je;
    json_t *d = json_loadb(ev->data, ev->data_len, 0, &je);
    if (!json_is_object(d)) {
        json_decref(d);
        prov_error(err, NAME, 0, NULL, NULL, NULL);
        prov_errf(err->message, NAME, "invalid stream data: %s",
                  d ? "not an object" : je.text);
        return LLM_STREAM_ERROR;
    }
    /* the data names its type; the event line is only a fallback */
    const char *type = json_string_value(json_object_get(d, "type"));
    char evname[32];
    if (!type) {
        size_t n = ev->event_len < sizeof evname - 1 ? ev->event_len
                                                     : sizeof evname - 1;
        memcpy(evname, ev->event, n);
        evname[n] = '\0';
        type = evname;
    }
    enum llm_stream_rc rc = LLM_STREAM_MORE;
    if (strcmp(type, "message_start") == 0) {
        message_start(s, d, emit, arg);
    } else if (strcmp(type, "content_block_start") == 0) {
        block_start(s, d, emit, arg);
    } else if (strcmp(type, "content_block_delta") == 0) {
        block_delta(s, d, emit, arg);
    } else if (strcmp(type, "content_block_stop") == 0) {
        /* a call without input streams no JSON at all; OpenAI clients
         * parse the arguments, so they get "{}" */
        struct prov_block *b = tool_block(s, d);
        if (b && !b->args)
            emit_args(s, b, json_string("{}"), emit, arg);
    } else if (strcmp(type, "message_delta") == 0) {
        message_delta(s, d, emit, arg);
    } else if (strcmp(type, "message_stop") == 0) {
        if (!s->usage)
            update_usage(s);
        if (s->want_usage) {
            json_t *c =
                json_pack("{s:s,s:s,s:I,s:s,s:[],s:O}", "id", s->id, "object",
                          "chat.completion.chunk", "created", s->created,
                          "model", s->model, "choices", "usage", s->usage);
            emit(c, arg);
            json_decref(c);
        }
        rc = LLM_STREAM_DONE;
    } else if (strcmp(type, "error") == 0) {
        json_t *e = json_object_get(d, "error");
        const char *et = json_string_value(json_object_get(e, "type"));
        prov_error(err, NAME, error_status(et), NULL, NULL,
                   json_string_value(json_object_get(e, "message")));
        rc = LLM_STREAM_ERROR;
    }
    /* ping and unknown events carry nothing */
    json_decref(d);
    return rc;
}

/* ---------------------------------------------------- models and errors */

static enum omni_err build_models(const struct llm_target *t,
                                  struct llm_http_req *out,
                                  char err[OMNI_ERR_LEN])
{
    (void)err;
    prov_req_init(out, t->base_url, "/v1/models?limit=1000", NULL, false);
    set_headers(t, out);
    return OMNI_OK;
}

/* RFC 3339 "2025-02-19T00:00:00Z" -> Unix seconds, or -1. */
static json_int_t rfc3339(const char *s)
{
    struct tm tm = {0};
    if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d", &tm.tm_year, &tm.tm_mon,
                     &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6)
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (json_int_t)timegm(&tm);
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
    size_t i;
    json_t *m;
    json_array_foreach(data, i, m)
    {
        json_int_t c =
            rfc3339(json_string_value(json_object_get(m, "created_at")));
        if (c >= 0)
            json_object_set_new(m, "created", json_integer(c));
        json_object_set_new(m, "owned_by", json_string(NAME));
    }
    json_t *out = prov_models_list(data, t->name ? t->name : NAME);
    json_decref(j);
    return out;
}

static void map_error(int status, const char *retry_after,
                      const char *retry_after_ms, const char *body, size_t len,
                      struct llm_error *out)
{
    json_t *j = body ? json_loadb(body, len, 0, NULL) : NULL;
    const char *msg = json_string_value(
        json_object_get(json_object_get(j, "error"), "message"));
    char ex[128] = "";
    if (!msg && body && len) {
        prov_body_excerpt(body, len, ex, sizeof ex);
        msg = ex;
    }
    prov_error(out, NAME, status, retry_after, retry_after_ms, msg);
    json_decref(j);
}

const struct llm_provider llm_anthropic = {
    .name = NAME,
    .build_chat = build_chat,
    .parse_chat = parse_chat,
    .stream_new = stream_new,
    .stream_event = stream_event,
    .stream_usage = stream_usage,
    .stream_free = stream_free,
    .build_embed = NULL,
    .parse_embed = NULL,
    .build_models = build_models,
    .parse_models = parse_models,
    .map_error = map_error,
};
