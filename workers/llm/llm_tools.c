/*
 * llm_tools - MCP tool definitions, the tool loop's messages, and
 * folding and unfolding of chat replies (see llm_tools.h).
 *
 * Pure functions over jansson values: they never log and never fail
 * but on malformed input, which they report through err.  The hash that
 * shortens long function names is FNV-1a: it needs spread, not secrecy.
 */
#include "llm_tools.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "omni_alloc.h"
#include "omni_buf.h"

/* ---- replies ---- */

json_t *llm_acc_new(void)
{
    return json_pack("{s:s,s:s,s:i,s:s,s:[{s:i,s:{s:s,s:n},s:n}]}", "id", "",
                     "object", "chat.completion", "created", 0, "model", "",
                     "choices", "index", 0, "message", "role", "assistant",
                     "content", "finish_reason");
}

/* Append the string src to the string member key of o (created when
 * absent or null). */
static void append_str(json_t *o, const char *key, json_t *src)
{
    if (!json_is_string(src))
        return;
    json_t *cur = json_object_get(o, key);
    if (!json_is_string(cur)) {
        json_object_set(o, key, src);
        return;
    }
    struct omni_buf b = OMNI_BUF_INIT;
    omni_buf_add(&b, json_string_value(cur), json_string_length(cur));
    omni_buf_add(&b, json_string_value(src), json_string_length(src));
    json_object_set_new(o, key, json_stringn(b.data ? b.data : "", b.len));
    omni_buf_release(&b);
}

static void acc_tool_call(json_t *msg, json_t *frag)
{
    json_t *idx = json_object_get(frag, "index");
    size_t i = json_is_integer(idx) && json_integer_value(idx) >= 0 &&
                       json_integer_value(idx) < 128
                   ? (size_t)json_integer_value(idx)
                   : 0;
    json_t *calls = json_object_get(msg, "tool_calls");
    if (!json_is_array(calls)) {
        calls = json_array();
        json_object_set_new(msg, "tool_calls", calls);
    }
    while (json_array_size(calls) <= i)
        json_array_append_new(calls,
                              json_pack("{s:s,s:s,s:{s:s,s:s}}", "id", "",
                                        "type", "function", "function", "name",
                                        "", "arguments", ""));
    json_t *tc = json_array_get(calls, i);
    json_t *id = json_object_get(frag, "id");
    if (json_is_string(id) && json_string_length(id))
        json_object_set(tc, "id", id);
    json_t *type = json_object_get(frag, "type");
    if (json_is_string(type))
        json_object_set(tc, "type", type);
    json_t *fn = json_object_get(frag, "function");
    json_t *tfn = json_object_get(tc, "function");
    append_str(tfn, "name", json_object_get(fn, "name"));
    append_str(tfn, "arguments", json_object_get(fn, "arguments"));
}

void llm_acc_add(json_t *acc, json_t *chunk)
{
    static const char *const copied[] = {"id", "created", "model",
                                         "system_fingerprint"};
    for (size_t i = 0; i < sizeof copied / sizeof *copied; i++) {
        json_t *v = json_object_get(chunk, copied[i]);
        if (v && !json_is_null(v) &&
            !(json_is_string(v) && json_string_length(v) == 0))
            json_object_set(acc, copied[i], v);
    }
    json_t *usage = json_object_get(chunk, "usage");
    if (json_is_object(usage))
        json_object_set(acc, "usage", usage);
    json_t *choice = json_array_get(json_object_get(acc, "choices"), 0);
    json_t *msg = json_object_get(choice, "message");
    size_t i;
    json_t *ch;
    json_array_foreach(json_object_get(chunk, "choices"), i, ch)
    {
        json_t *idx = json_object_get(ch, "index");
        if (json_is_integer(idx) && json_integer_value(idx) != 0)
            continue;
        json_t *delta = json_object_get(ch, "delta");
        append_str(msg, "content", json_object_get(delta, "content"));
        append_str(msg, "reasoning_content",
                   json_object_get(delta, "reasoning_content"));
        append_str(msg, "refusal", json_object_get(delta, "refusal"));
        size_t k;
        json_t *frag;
        json_array_foreach(json_object_get(delta, "tool_calls"), k, frag)
            acc_tool_call(msg, frag);
        json_t *fr = json_object_get(ch, "finish_reason");
        if (json_is_string(fr))
            json_object_set(choice, "finish_reason", fr);
    }
}

/* A chunk of completion with choice 0's delta (stolen), or with no
 * choice when delta is NULL. */
static json_t *chunk_of(json_t *completion, json_t *delta, json_t *finish)
{
    static const char *const keys[] = {"id", "object", "created", "model",
                                       "system_fingerprint"};
    json_t *c = json_object();
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
        json_t *v = json_object_get(completion, keys[i]);
        if (i == 1)
            json_object_set_new(c, keys[i],
                                json_string("chat.completion.chunk"));
        else if (v)
            json_object_set(c, keys[i], v);
    }
    json_t *choices = json_array();
    if (delta)
        json_array_append_new(
            choices, json_pack("{s:i,s:o,s:O}", "index", 0, "delta", delta,
                               "finish_reason", finish ? finish : json_null()));
    json_object_set_new(c, "choices", choices);
    return c;
}

json_t *llm_completion_chunks(json_t *completion, bool include_usage)
{
    json_t *out = json_array();
    json_t *choice = json_array_get(json_object_get(completion, "choices"), 0);
    json_t *msg = json_object_get(choice, "message");
    json_array_append_new(out, chunk_of(completion,
                                        json_pack("{s:s,s:s}", "role",
                                                  "assistant", "content", ""),
                                        NULL));
    json_t *rc = json_object_get(msg, "reasoning_content");
    if (json_is_string(rc) && json_string_length(rc))
        json_array_append_new(
            out, chunk_of(completion,
                          json_pack("{s:O}", "reasoning_content", rc), NULL));
    json_t *content = json_object_get(msg, "content");
    if (json_is_string(content) && json_string_length(content))
        json_array_append_new(
            out,
            chunk_of(completion, json_pack("{s:O}", "content", content), NULL));
    json_t *calls = json_object_get(msg, "tool_calls");
    if (json_array_size(calls)) {
        json_t *frags = json_array();
        size_t i;
        json_t *tc;
        json_array_foreach(calls, i, tc)
        {
            json_t *f = json_deep_copy(tc);
            json_object_set_new(f, "index", json_integer((json_int_t)i));
            json_array_append_new(frags, f);
        }
        json_array_append_new(
            out, chunk_of(completion, json_pack("{s:o}", "tool_calls", frags),
                          NULL));
    }
    json_t *fr = json_object_get(choice, "finish_reason");
    json_array_append_new(out, chunk_of(completion, json_object(),
                                        json_is_string(fr) ? fr : NULL));
    json_t *usage = json_object_get(completion, "usage");
    if (include_usage && json_is_object(usage)) {
        json_t *u = chunk_of(completion, NULL, NULL);
        json_object_set(u, "usage", usage);
        json_array_append_new(out, u);
    }
    return out;
}

void llm_usage_add(json_t **sum, json_t *usage)
{
    static const char *const keys[] = {"prompt_tokens", "completion_tokens",
                                       "total_tokens"};
    if (!json_is_object(usage))
        return;
    if (!*sum)
        *sum = json_pack("{s:i,s:i,s:i}", keys[0], 0, keys[1], 0, keys[2], 0);
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
        json_t *v = json_object_get(usage, keys[i]);
        json_int_t cur = json_integer_value(json_object_get(*sum, keys[i]));
        if (json_is_integer(v))
            json_object_set_new(*sum, keys[i],
                                json_integer(cur + json_integer_value(v)));
    }
}

char *llm_content_text(json_t *content, const char *sep)
{
    if (json_is_string(content))
        return omni_strdup(json_string_value(content));
    struct omni_buf b = OMNI_BUF_INIT;
    size_t i;
    json_t *part;
    json_array_foreach(content, i, part)
    {
        json_t *t = json_object_get(part, "text");
        if (!json_is_string(t))
            continue;
        if (b.len)
            omni_buf_adds(&b, sep);
        omni_buf_add(&b, json_string_value(t), json_string_length(t));
    }
    return omni_buf_detach(&b, NULL);
}

/* ---- MCP tool definitions ---- */

static bool is_mcp(json_t *tool)
{
    const char *type = json_string_value(json_object_get(tool, "type"));
    return type && strcmp(type, "mcp") == 0;
}

bool llm_tools_has_mcp(json_t *tools)
{
    size_t i;
    json_t *t;
    json_array_foreach(tools, i, t) if (is_mcp(t)) return true;
    return false;
}

/* The names of an entry's allowed_tools: a list of strings, or
 * {"tool_names":[...]} as the Responses API also allows; *names is NULL
 * when the entry has none (every tool of the server). */
static bool allowed_of(json_t *entry, json_t **names)
{
    json_t *a = json_object_get(entry, "allowed_tools");
    *names = NULL;
    if (!a || json_is_null(a))
        return true;
    if (json_is_object(a))
        a = json_object_get(a, "tool_names");
    if (!json_is_array(a))
        return false;
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v) if (!json_is_string(v)) return false;
    *names = a;
    return true;
}

static bool listed(json_t *arr, const char *s)
{
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        const char *x = json_string_value(v);
        if (x && strcmp(x, s) == 0)
            return true;
    }
    return false;
}

static void add_unique(json_t *arr, json_t *str)
{
    if (!listed(arr, json_string_value(str)))
        json_array_append(arr, str);
}

enum omni_err llm_tools_mcp_query(json_t *tools, json_t **query,
                                  char err[OMNI_ERR_LEN])
{
    json_t *servers = json_array(), *allowed = json_array();
    bool all_restricted = true;
    size_t i;
    json_t *t;
    *query = NULL;
    json_array_foreach(tools, i, t)
    {
        if (!is_mcp(t))
            continue;
        json_t *label = json_object_get(t, "server_label");
        json_t *names;
        if (!json_is_string(label) || json_string_length(label) == 0) {
            snprintf(err, OMNI_ERR_LEN,
                     "field 'tools[%zu].server_label': want the name of a "
                     "configured MCP server",
                     i);
            goto bad;
        }
        if (!allowed_of(t, &names)) {
            snprintf(err, OMNI_ERR_LEN,
                     "field 'tools[%zu].allowed_tools': want a list of tool "
                     "names",
                     i);
            goto bad;
        }
        add_unique(servers, label);
        if (!names)
            all_restricted = false;
        size_t k;
        json_t *n;
        json_array_foreach(names, k, n) add_unique(allowed, n);
    }
    *query = json_pack("{s:o}", "servers", servers);
    if (all_restricted)
        json_object_set_new(*query, "allowed_tools", allowed);
    else
        json_decref(allowed);
    return OMNI_OK;
bad:
    json_decref(servers);
    json_decref(allowed);
    return OMNI_E_BAD_REQUEST;
}

static uint32_t fnv1a(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

char *llm_tools_fname(const char *mcp_name)
{
    size_t n = strlen(mcp_name);
    char *out =
        omni_malloc(n > LLM_TOOL_NAME_MAX ? LLM_TOOL_NAME_MAX + 1 : n + 1);
    size_t keep = n > LLM_TOOL_NAME_MAX ? 55 : n;
    for (size_t i = 0; i < keep; i++) {
        char c = mcp_name[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                  (c >= '0' && c <= '9') || c == '_' || c == '-';
        out[i] = ok ? c : '_';
    }
    if (n > LLM_TOOL_NAME_MAX)
        snprintf(out + keep, LLM_TOOL_NAME_MAX + 1 - keep, "_%08x",
                 fnv1a(mcp_name));
    else
        out[keep] = '\0';
    return out;
}

/* The function name of a client tool entry, or NULL. */
static const char *client_name(json_t *tool)
{
    const char *n = json_string_value(
        json_object_get(json_object_get(tool, "function"), "name"));
    return n ? n : json_string_value(json_object_get(tool, "name"));
}

/* Does entry (an mcp tools entry) select the listed tool lt? */
static bool selects(json_t *entry, json_t *lt)
{
    const char *server = json_string_value(json_object_get(lt, "server"));
    const char *name = json_string_value(json_object_get(lt, "name"));
    const char *label =
        json_string_value(json_object_get(entry, "server_label"));
    json_t *names;
    if (!server || !name || !label || strcmp(server, label) != 0)
        return false;
    if (!allowed_of(entry, &names) || !names)
        return true;
    size_t sl = strlen(server);
    const char *bare =
        strncmp(name, server, sl) == 0 && name[sl] == '_' && name[sl + 1] == '_'
            ? name + sl + 2
            : name;
    return listed(names, name) || listed(names, bare);
}

enum omni_err llm_tools_merge(json_t *tools, json_t *listed_tools, json_t **out,
                              json_t **map, char err[OMNI_ERR_LEN])
{
    json_t *avail = json_object_get(listed_tools, "tools");
    *out = *map = NULL;
    if (!json_is_array(avail)) {
        snprintf(err, OMNI_ERR_LEN, "mcp tools: reply has no 'tools' list");
        return OMNI_E_UPSTREAM;
    }
    json_t *res = json_array(), *m = json_object();
    size_t i;
    json_t *t;
    json_array_foreach(tools, i, t) if (!is_mcp(t)) json_array_append(res, t);
    json_array_foreach(tools, i, t)
    {
        if (!is_mcp(t))
            continue;
        size_t found = 0, k;
        json_t *lt;
        json_array_foreach(avail, k, lt)
        {
            if (!selects(t, lt))
                continue;
            found++;
            const char *name = json_string_value(json_object_get(lt, "name"));
            char *fname = llm_tools_fname(name);
            bool taken = json_object_get(m, fname) != NULL;
            size_t c;
            json_t *ct;
            json_array_foreach(tools, c, ct)
            {
                const char *cn = is_mcp(ct) ? NULL : client_name(ct);
                if (cn && strcmp(cn, fname) == 0)
                    taken = true;
            }
            if (!taken) {
                json_t *schema = json_object_get(lt, "inputSchema");
                json_t *desc = json_object_get(lt, "description");
                json_array_append_new(
                    res,
                    json_pack("{s:s,s:{s:s,s:s,s:o}}", "type", "function",
                              "function", "name", fname, "description",
                              json_is_string(desc) ? json_string_value(desc)
                                                   : "",
                              "parameters",
                              json_is_object(schema)
                                  ? json_incref(schema)
                                  : json_pack("{s:s}", "type", "object")));
                json_object_set_new(m, fname, json_string(name));
            }
            omni_free(fname);
        }
        if (!found) {
            snprintf(err, OMNI_ERR_LEN,
                     "MCP server '%s' is not configured or has none of the "
                     "tools asked for",
                     json_string_value(json_object_get(t, "server_label")));
            json_decref(res);
            json_decref(m);
            return OMNI_E_NOT_FOUND;
        }
    }
    *out = res;
    *map = m;
    return OMNI_OK;
}

/* ---- the loop ---- */

const char *llm_tools_call_name(json_t *tool_call)
{
    const char *n = json_string_value(
        json_object_get(json_object_get(tool_call, "function"), "name"));
    return n ? n : "";
}

enum llm_tc_kind llm_tools_kind(json_t *tool_call, json_t *map,
                                json_t *client_tools)
{
    const char *name = llm_tools_call_name(tool_call);
    size_t i;
    json_t *t;
    json_array_foreach(client_tools, i, t)
    {
        const char *cn = is_mcp(t) ? NULL : client_name(t);
        if (cn && strcmp(cn, name) == 0)
            return LLM_TC_CLIENT;
    }
    if (json_object_get(map, name))
        return LLM_TC_MCP;
    return LLM_TC_UNKNOWN;
}

json_t *llm_tools_call_args(json_t *tool_call, char err[OMNI_ERR_LEN])
{
    json_t *a =
        json_object_get(json_object_get(tool_call, "function"), "arguments");
    if (json_is_object(a))
        return json_incref(a);
    const char *s = json_string_value(a);
    size_t n = json_string_length(a);
    while (s && n && (*s == ' ' || *s == '\n' || *s == '\t')) {
        s++;
        n--;
    }
    if (!s || n == 0)
        return json_object();
    json_error_t je;
    json_t *j = json_loadb(s, n, 0, &je);
    if (json_is_object(j))
        return j;
    snprintf(err, OMNI_ERR_LEN, "arguments are not a JSON object%s%s",
             j ? "" : ": ", j ? "" : je.text);
    json_decref(j);
    return NULL;
}

json_t *llm_tools_assistant(json_t *message)
{
    json_t *content = json_object_get(message, "content");
    json_t *m = json_pack("{s:s,s:O}", "role", "assistant", "content",
                          json_is_string(content) && json_string_length(content)
                              ? content
                              : json_null());
    json_t *calls = json_array();
    size_t i;
    json_t *tc;
    json_array_foreach(json_object_get(message, "tool_calls"), i, tc)
    {
        json_t *fn = json_object_get(tc, "function");
        json_t *args = json_object_get(fn, "arguments");
        const char *id = json_string_value(json_object_get(tc, "id"));
        json_array_append_new(
            calls,
            json_pack("{s:s,s:s,s:{s:s,s:s}}", "id", id ? id : "", "type",
                      "function", "function", "name", llm_tools_call_name(tc),
                      "arguments",
                      json_is_string(args) ? json_string_value(args) : "{}"));
    }
    json_object_set_new(m, "tool_calls", calls);
    return m;
}

json_t *llm_tools_result_msg(const char *id, const char *text)
{
    return json_pack("{s:s,s:s,s:s}", "role", "tool", "tool_call_id", id,
                     "content", text);
}

char *llm_tools_result_text(json_t *result)
{
    struct omni_buf b = OMNI_BUF_INIT;
    if (json_is_true(json_object_get(result, "isError")))
        omni_buf_adds(&b, "error: ");
    size_t start = b.len, i;
    json_t *c;
    json_array_foreach(json_object_get(result, "content"), i, c)
    {
        const char *type = json_string_value(json_object_get(c, "type"));
        json_t *text = json_object_get(c, "text");
        if (!json_is_string(text))
            text = json_object_get(json_object_get(c, "resource"), "text");
        if (b.len > start)
            omni_buf_addch(&b, '\n');
        if (json_is_string(text))
            omni_buf_add(&b, json_string_value(text), json_string_length(text));
        else
            omni_buf_addf(&b, "[%s content]", type ? type : "unknown");
    }
    if (b.len == start) {
        json_t *sc = json_object_get(result, "structuredContent");
        if (sc) {
            char *s = json_dumps(sc, JSON_COMPACT);
            omni_buf_adds(&b, s);
            free(s);
        }
    }
    return omni_buf_detach(&b, NULL);
}

json_t *llm_tools_next_choice(json_t *tool_choice)
{
    if (!tool_choice || json_is_null(tool_choice))
        return NULL;
    const char *s = json_string_value(tool_choice);
    if (json_is_object(tool_choice) || (s && strcmp(s, "required") == 0))
        return json_string("auto");
    return json_incref(tool_choice);
}
