/*
 * test_llm_anthropic - the Anthropic Messages translator, both ways:
 * OpenAI request -> Messages request (compared with what real clients
 * recorded), message -> chat.completion, recorded SSE streams (text,
 * parallel tool_use with input_json_delta, thinking, server tools) ->
 * OpenAI chunks, error events, error replies and models.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llm_cassette.h"
#include "omni_buf.h"
#include "provider.h"
#include "unit.h"

static const struct llm_target target = {
    .prov = &llm_anthropic,
    .name = "anthropic",
    .model = "claude-sonnet-4-5",
    .base_url = "https://api.anthropic.com",
    .api_key = "sk-ant-test-0123456789",
};

static bool has_header(const struct llm_http_req *r, const char *h)
{
    for (const struct curl_slist *l = r->headers; l; l = l->next)
        if (strcmp(l->data, h) == 0)
            return true;
    return false;
}

/* build_chat(req) body, or NULL with err set. */
static json_t *translate(const struct llm_target *t, const char *req_text,
                         bool stream, struct llm_http_req *r, enum omni_err *rc,
                         char err[OMNI_ERR_LEN])
{
    json_t *req = json_loads(req_text, 0, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(req);
    memset(r, 0, sizeof *r);
    *rc = llm_anthropic.build_chat(t, req, stream, r, err);
    json_decref(req);
    if (*rc != OMNI_OK)
        return NULL;
    json_t *b = json_loadb(r->body, r->body_len, 0, NULL);
    CU_ASSERT_PTR_NOT_NULL(b);
    return b;
}

static void expect_json(json_t *got, const char *want_text, const char *what)
{
    json_t *want = json_loads(want_text, 0, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(want);
    if (!json_equal(got, want)) {
        char *g = json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS);
        char *w = json_dumps(want, JSON_COMPACT | JSON_SORT_KEYS);
        fprintf(stderr, "%s:\n  got  %s\n  want %s\n", what, g, w);
        free(g);
        free(w);
        CU_FAIL(what);
    }
    json_decref(want);
}

static void test_build_chat(void)
{
    struct llm_http_req r;
    enum omni_err rc;
    char err[OMNI_ERR_LEN] = "";
    json_t *b = translate(
        &target,
        "{\"model\":\"anthropic/x\",\"omni\":{\"cache\":false},"
        "\"messages\":["
        "{\"role\":\"system\",\"content\":\"Be brief.\"},"
        "{\"role\":\"developer\",\"content\":[{\"type\":\"text\","
        "\"text\":\"Use tools.\"}]},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Look:\"}"
        ","
        "{\"type\":\"image_url\",\"image_url\":{\"url\":"
        "\"data:image/png;base64,iVBORw0KGgo=\"}},"
        "{\"type\":\"image_url\",\"image_url\":{\"url\":"
        "\"https://example.com/a.jpg\"}}]},"
        "{\"role\":\"assistant\",\"content\":\"Checking.\",\"tool_calls\":["
        "{\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":"
        "\"get_weather\",\"arguments\":\"{\\\"city\\\":\\\"Paris\\\"}\"}},"
        "{\"id\":\"call_2\",\"type\":\"function\",\"function\":{\"name\":"
        "\"now\",\"arguments\":\"\"}}]},"
        "{\"role\":\"tool\",\"tool_call_id\":\"call_1\",\"content\":\"Sunny\"},"
        "{\"role\":\"tool\",\"tool_call_id\":\"call_2\",\"content\":[{\"type\":"
        "\"text\",\"text\":\"noon\"}]},"
        "{\"role\":\"user\",\"content\":\"Thanks\"}],"
        "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":"
        "\"get_weather\",\"description\":\"Weather.\",\"parameters\":{"
        "\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}}}}}"
        ","
        "{\"type\":\"function\",\"function\":{\"name\":\"now\"}},"
        "{\"type\":\"mcp\",\"server_label\":\"fs\"}],"
        "\"tool_choice\":\"required\",\"parallel_tool_calls\":false,"
        "\"max_completion_tokens\":100,\"max_tokens\":50,\"temperature\":0.2,"
        "\"top_p\":0.9,\"stop\":\"END\",\"user\":\"u1\",\"seed\":4,"
        "\"stream_options\":{\"include_usage\":true}}",
        true, &r, &rc, err);
    CU_ASSERT_EQUAL_FATAL(rc, OMNI_OK);
    CU_ASSERT_STRING_EQUAL(r.url, "https://api.anthropic.com/v1/messages");
    CU_ASSERT(has_header(&r, "x-api-key: sk-ant-test-0123456789"));
    CU_ASSERT(has_header(&r, "anthropic-version: 2023-06-01"));
    CU_ASSERT(has_header(&r, "Content-Type: application/json"));
    CU_ASSERT(has_header(&r, "Accept: text/event-stream"));
    expect_json(
        b,
        "{\"model\":\"claude-sonnet-4-5\",\"stream\":true,"
        "\"system\":[{\"type\":\"text\",\"text\":\"Be brief.\"},"
        "{\"type\":\"text\",\"text\":\"Use tools.\"}],"
        "\"messages\":["
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Look:\"}"
        ","
        "{\"type\":\"image\",\"source\":{\"type\":\"base64\",\"media_type\":"
        "\"image/png\",\"data\":\"iVBORw0KGgo=\"}},"
        "{\"type\":\"image\",\"source\":{\"type\":\"url\",\"url\":"
        "\"https://example.com/a.jpg\"}}]},"
        "{\"role\":\"assistant\",\"content\":[{\"type\":\"text\",\"text\":"
        "\"Checking.\"},{\"type\":\"tool_use\",\"id\":\"call_1\",\"name\":"
        "\"get_weather\",\"input\":{\"city\":\"Paris\"}},{\"type\":"
        "\"tool_use\",\"id\":\"call_2\",\"name\":\"now\",\"input\":{}}]},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\","
        "\"tool_use_id\":\"call_1\",\"content\":\"Sunny\"},{\"type\":"
        "\"tool_result\",\"tool_use_id\":\"call_2\",\"content\":[{\"type\":"
        "\"text\",\"text\":\"noon\"}]},{\"type\":\"text\",\"text\":"
        "\"Thanks\"}]}],"
        "\"tools\":[{\"name\":\"get_weather\",\"description\":\"Weather.\","
        "\"input_schema\":{\"type\":\"object\",\"properties\":{\"city\":{"
        "\"type\":\"string\"}}}},{\"name\":\"now\",\"input_schema\":{"
        "\"type\":\"object\",\"properties\":{}}}],"
        "\"tool_choice\":{\"type\":\"any\",\"disable_parallel_tool_use\":true},"
        "\"max_tokens\":100,\"temperature\":0.2,\"top_p\":0.9,"
        "\"stop_sequences\":[\"END\"],\"metadata\":{\"user_id\":\"u1\"}}",
        "full translation");
    json_decref(b);
    llm_http_req_release(&r);

    /* one system message is a string; defaults; version; no key */
    struct llm_target t = target;
    t.api_key = "";
    t.version = "2026-10-21";
    t.base_url = "http://127.0.0.1:8/";
    b = translate(&t,
                  "{\"messages\":[{\"role\":\"system\",\"content\":\"S\"},"
                  "{\"role\":\"user\",\"content\":\"hi\"}],"
                  "\"stop\":[\"a\",\"b\"],\"stream\":true}",
                  false, &r, &rc, err);
    CU_ASSERT_EQUAL_FATAL(rc, OMNI_OK);
    CU_ASSERT_STRING_EQUAL(r.url, "http://127.0.0.1:8/v1/messages");
    CU_ASSERT(has_header(&r, "anthropic-version: 2026-10-21"));
    for (const struct curl_slist *l = r.headers; l; l = l->next)
        CU_ASSERT(strncmp(l->data, "x-api-key", 9) != 0);
    expect_json(b,
                "{\"model\":\"claude-sonnet-4-5\",\"system\":\"S\","
                "\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":"
                "\"text\",\"text\":\"hi\"}]}],\"max_tokens\":4096,"
                "\"stop_sequences\":[\"a\",\"b\"]}",
                "defaults");
    json_decref(b);
    llm_http_req_release(&r);
}

static void test_tool_choice(void)
{
    static const struct {
        const char *choice;
        const char *want; /* tool_choice sent, or "" for none */
    } cases[] = {
        {"\"auto\"", "{\"type\":\"auto\"}"},
        {"\"none\"", "{\"type\":\"none\"}"},
        {"\"required\"", "{\"type\":\"any\"}"},
        {"{\"type\":\"function\",\"function\":{\"name\":\"f\"}}",
         "{\"type\":\"tool\",\"name\":\"f\"}"},
        {"null", ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char req[512];
        snprintf(req, sizeof req,
                 "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                 "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":"
                 "\"f\"}}],\"tool_choice\":%s}",
                 cases[i].choice);
        struct llm_http_req r;
        enum omni_err rc;
        char err[OMNI_ERR_LEN];
        json_t *b = translate(&target, req, false, &r, &rc, err);
        CU_ASSERT_EQUAL_FATAL(rc, OMNI_OK);
        json_t *tc = json_object_get(b, "tool_choice");
        if (*cases[i].want)
            expect_json(tc, cases[i].want, "tool_choice");
        else
            CU_ASSERT_PTR_NULL(tc);
        json_decref(b);
        llm_http_req_release(&r);
    }
}

static void test_build_rejects(void)
{
    static const struct {
        const char *req;
        const char *err;
    } cases[] = {
        {"{}", "anthropic: request needs a 'messages' array"},
        {"{\"messages\":[{\"content\":\"x\"}]}",
         "anthropic: message without a 'role'"},
        {"{\"messages\":[{\"role\":\"function\",\"content\":\"x\"}]}",
         "anthropic: unsupported message role 'function'"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":"
         "\"input_audio\"}]}]}",
         "anthropic: unsupported content part type 'input_audio'"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":"
         "\"image_url\",\"image_url\":{\"url\":\"data:image/png,xx\"}}]}]}",
         "anthropic: unusable image_url in part 0"},
        {"{\"messages\":[{\"role\":\"assistant\",\"tool_calls\":[{\"id\":"
         "\"c\",\"function\":{\"name\":\"f\",\"arguments\":\"[1]\"}}]}]}",
         "anthropic: arguments of tool call 'c' are not a JSON object"},
        {"{\"messages\":[{\"role\":\"tool\",\"content\":\"x\"}]}",
         "anthropic: tool message without 'tool_call_id'"},
        {"{\"messages\":[],\"n\":2}", "anthropic: 'n' > 1 is not supported"},
        {"{\"messages\":[],\"tools\":[{\"type\":\"web_search\"}]}",
         "anthropic: tool 0 is not a named function"},
        {"{\"messages\":[],\"tools\":[{\"type\":\"function\",\"function\":{"
         "\"name\":\"f\"}}],\"tool_choice\":{\"type\":\"function\"}}",
         "anthropic: tool_choice names no function"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        struct llm_http_req r;
        enum omni_err rc;
        char err[OMNI_ERR_LEN] = "";
        json_t *b = translate(&target, cases[i].req, false, &r, &rc, err);
        CU_ASSERT_PTR_NULL(b);
        CU_ASSERT_EQUAL(rc, OMNI_E_BAD_REQUEST);
        if (strcmp(err, cases[i].err) != 0) {
            fprintf(stderr, "reject %zu: got '%s', want '%s'\n", i, err,
                    cases[i].err);
            CU_FAIL("reject message");
        }
        CU_ASSERT_PTR_NULL(r.url);
        json_decref(b);
    }
}

/* The same conversation as the recorded OpenAI request, translated,
 * equals what Anthropic's own client sent (ids aside). */
static void test_recorded_requests(void)
{
    json_t *oa =
        llm_cassette_load("openai/test_tool_choice_matrix[auto-openai].yaml");
    json_t *an = llm_cassette_load(
        "anthropic/test_tool_choice_matrix[auto-anthropic].yaml");
    json_t *tools = llm_cassette_load("anthropic/test_tools.yaml");
    if (!oa || !an || !tools) {
        fprintf(stderr, "note: skipping recorded requests (no shared/)\n");
        json_decref(oa);
        json_decref(an);
        json_decref(tools);
        return;
    }
    for (size_t i = 0; i < 2; i++) {
        json_t *req = llm_cassette_request(oa, i);
        json_t *want = llm_cassette_request(an, i);
        json_object_del(want, "stream"); /* false: we leave it out */
        /* the tool call ids the two providers invented */
        json_t *msgs = json_object_get(req, "messages");
        size_t k;
        json_t *m;
        json_array_foreach(msgs, k, m)
        {
            if (json_object_get(m, "tool_call_id"))
                json_object_set_new(
                    m, "tool_call_id",
                    json_string("toolu_01WN4AuToBnJyXNQXwQBBebj"));
            json_t *tc = json_array_get(json_object_get(m, "tool_calls"), 0);
            if (tc)
                json_object_set_new(
                    tc, "id", json_string("toolu_01WN4AuToBnJyXNQXwQBBebj"));
        }
        /* Anthropic's client marks results as not errors explicitly */
        json_t *last = json_array_get(json_object_get(want, "messages"), 2);
        json_object_del(json_array_get(json_object_get(last, "content"), 0),
                        "is_error");
        struct llm_http_req r = {0};
        char err[OMNI_ERR_LEN];
        CU_ASSERT_EQUAL(llm_anthropic.build_chat(&target, req, false, &r, err),
                        OMNI_OK);
        json_t *b = json_loadb(r.body, r.body_len, 0, NULL);
        char *wt = json_dumps(want, JSON_COMPACT);
        expect_json(b, wt, "matrix request");
        free(wt);
        json_decref(b);
        llm_http_req_release(&r);
        json_decref(req);
        json_decref(want);
    }

    /* simonw/llm-anthropic's second turn: text + two parallel calls,
     * two results merged into one user message */
    json_t *want = llm_cassette_request(tools, 1);
    struct llm_target t = target;
    t.model = "claude-3-5-haiku-latest";
    struct llm_http_req r;
    enum omni_err rc;
    char err[OMNI_ERR_LEN];
    json_t *b = translate(
        &t,
        "{\"model\":\"anthropic/claude-3-5-haiku-latest\",\"max_tokens\":8192,"
        "\"temperature\":1.0,\"messages\":["
        "{\"role\":\"user\",\"content\":\"Two names for a pet pelican\"},"
        "{\"role\":\"assistant\",\"content\":\"I'll help you generate two "
        "names for a pet pelican using the pelican name generator tool. \","
        "\"tool_calls\":[{\"id\":\"toolu_017ngBid8gmdReTeroVSZf7r\",\"type\":"
        "\"function\",\"function\":{\"name\":\"pelican_name_generator\","
        "\"arguments\":\"{}\"}},{\"id\":\"toolu_01FJrHJrmnfEqR6NxkQ3yhpu\","
        "\"type\":\"function\",\"function\":{\"name\":"
        "\"pelican_name_generator\",\"arguments\":\"\"}}]},"
        "{\"role\":\"tool\",\"tool_call_id\":\"toolu_"
        "017ngBid8gmdReTeroVSZf7r\","
        "\"content\":\"Charles\"},"
        "{\"role\":\"tool\",\"tool_call_id\":\"toolu_"
        "01FJrHJrmnfEqR6NxkQ3yhpu\","
        "\"content\":\"Sammy\"}],"
        "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":"
        "\"pelican_name_generator\",\"description\":\"\",\"parameters\":{"
        "\"properties\":{},\"type\":\"object\"}}}],\"stream\":true}",
        true, &r, &rc, err);
    CU_ASSERT_EQUAL(rc, OMNI_OK);
    char *wt = json_dumps(want, JSON_COMPACT);
    expect_json(b, wt, "test_tools request");
    free(wt);
    json_decref(b);
    json_decref(want);
    llm_http_req_release(&r);
    json_decref(oa);
    json_decref(an);
    json_decref(tools);
}

static void test_recorded_replies(void)
{
    json_t *c = llm_cassette_load(
        "anthropic/test_tool_choice_matrix[auto-anthropic].yaml");
    if (!c) {
        fprintf(stderr, "note: skipping recorded replies (no shared/)\n");
        return;
    }
    size_t len;
    char err[OMNI_ERR_LEN] = "";
    char *body = llm_cassette_body(c, 0, &len);
    json_t *r = llm_anthropic.parse_chat(&target, body, len, err);
    free(body);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    json_object_del(r, "created");
    expect_json(r,
                "{\"id\":\"msg_0157RbBMVd2po91eocfMnSDy\",\"object\":"
                "\"chat.completion\",\"model\":\"claude-sonnet-4-5-20250929\","
                "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
                "\"content\":null,\"tool_calls\":[{\"id\":"
                "\"toolu_01WN4AuToBnJyXNQXwQBBebj\",\"type\":\"function\","
                "\"function\":{\"name\":\"get_weather\",\"arguments\":"
                "\"{\\\"city\\\":\\\"Paris\\\"}\"}}]},\"finish_reason\":"
                "\"tool_calls\",\"logprobs\":null}],\"usage\":{"
                "\"prompt_tokens\":572,\"completion_tokens\":53,"
                "\"total_tokens\":625,\"prompt_tokens_details\":{"
                "\"cached_tokens\":0}}}",
                "tool_use reply");
    json_decref(r);

    body = llm_cassette_body(c, 1, &len);
    r = llm_anthropic.parse_chat(&target, body, len, err);
    free(body);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    json_t *ch = json_array_get(json_object_get(r, "choices"), 0);
    json_t *msg = json_object_get(ch, "message");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(msg, "content")),
                           "The weather in Paris is currently sunny with a "
                           "temperature of 22\xc2\xb0"
                           "C (approximately 72\xc2\xb0"
                           "F). It's a beautiful day!");
    CU_ASSERT_PTR_NULL(json_object_get(msg, "tool_calls"));
    CU_ASSERT_STRING_EQUAL(
        json_string_value(json_object_get(ch, "finish_reason")), "stop");
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(
                        json_object_get(r, "usage"), "total_tokens")),
                    677);
    json_decref(r);
    json_decref(c);
}

static void test_parse_chat_synthetic(void)
{
    static const struct {
        const char *stop;
        const char *want;
    } stops[] = {
        {"end_turn", "stop"},          {"stop_sequence", "stop"},
        {"max_tokens", "length"},      {"tool_use", "tool_calls"},
        {"refusal", "content_filter"}, {"pause_turn", "stop"},
    };
    char err[OMNI_ERR_LEN] = "";
    for (size_t i = 0; i < sizeof stops / sizeof *stops; i++) {
        char body[1024];
        snprintf(body, sizeof body,
                 "{\"id\":\"msg_1\",\"type\":\"message\",\"role\":"
                 "\"assistant\",\"model\":\"claude-x\",\"content\":["
                 "{\"type\":\"thinking\",\"thinking\":\"Hmm. \",\"signature\":"
                 "\"sig\"},{\"type\":\"thinking\",\"thinking\":\"Yes.\"},"
                 "{\"type\":\"text\",\"text\":\"A\"},{\"type\":"
                 "\"server_tool_use\",\"id\":\"srv\",\"name\":\"web\","
                 "\"input\":{}},{\"type\":\"text\",\"text\":\"B\"}],"
                 "\"stop_reason\":\"%s\",\"usage\":{\"input_tokens\":10,"
                 "\"cache_creation_input_tokens\":5,"
                 "\"cache_read_input_tokens\":20,\"output_tokens\":7}}",
                 stops[i].stop);
        json_t *r = llm_anthropic.parse_chat(&target, body, strlen(body), err);
        CU_ASSERT_PTR_NOT_NULL_FATAL(r);
        json_t *ch = json_array_get(json_object_get(r, "choices"), 0);
        json_t *msg = json_object_get(ch, "message");
        CU_ASSERT_STRING_EQUAL(
            json_string_value(json_object_get(ch, "finish_reason")),
            stops[i].want);
        CU_ASSERT_STRING_EQUAL(
            json_string_value(json_object_get(msg, "content")), "AB");
        CU_ASSERT_STRING_EQUAL(
            json_string_value(json_object_get(msg, "reasoning_content")),
            "Hmm. Yes.");
        CU_ASSERT_PTR_NULL(json_object_get(msg, "tool_calls"));
        expect_json(json_object_get(r, "usage"),
                    "{\"prompt_tokens\":35,\"completion_tokens\":7,"
                    "\"total_tokens\":42,\"prompt_tokens_details\":{"
                    "\"cached_tokens\":20}}",
                    "usage with cache");
        json_decref(r);
    }
    static const struct {
        const char *body;
        const char *err;
    } bad[] = {
        {"nope", "anthropic: invalid JSON reply"},
        {"{\"type\":\"error\",\"error\":{\"type\":\"api_error\","
         "\"message\":\"Internal\"}}",
         "anthropic: Internal"},
        {"{\"type\":\"message\"}", "anthropic: reply is not a message"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        err[0] = '\0';
        json_t *r = llm_anthropic.parse_chat(&target, bad[i].body,
                                             strlen(bad[i].body), err);
        CU_ASSERT_PTR_NULL(r);
        CU_ASSERT(strncmp(err, bad[i].err, strlen(bad[i].err)) == 0);
        json_decref(r);
    }
}

/* What the recorded events say, straight from their JSON: the text and
 * thinking of all deltas and the input of every client tool_use block. */
struct truth {
    json_t *text, *thinking, *tools, *stop, *out_tokens, *in_tokens;
};

static void recorded_truth(const char *body, struct truth *t)
{
    struct omni_buf txt = OMNI_BUF_INIT, th = OMNI_BUF_INIT;
    t->tools = json_array();
    t->stop = NULL;
    json_t *args = json_object(); /* block index -> partial json */
    const char *p = body;
    while ((p = strstr(p, "data: "))) {
        p += 6;
        const char *e = strchr(p, '\n');
        json_t *d = json_loadb(p, e ? (size_t)(e - p) : strlen(p), 0, NULL);
        const char *type = json_string_value(json_object_get(d, "type"));
        json_t *delta = json_object_get(d, "delta");
        json_t *cb = json_object_get(d, "content_block");
        char key[16];
        snprintf(key, sizeof key, "%lld",
                 (long long)json_integer_value(json_object_get(d, "index")));
        const char *dt = json_string_value(json_object_get(delta, "type"));
        if (type && strcmp(type, "content_block_start") == 0 &&
            strcmp(json_string_value(json_object_get(cb, "type")),
                   "tool_use") == 0) {
            json_array_append_new(
                t->tools,
                json_pack("{s:O,s:O,s:s}", "id", json_object_get(cb, "id"),
                          "name", json_object_get(cb, "name"), "key", key));
            json_object_set_new(args, key, json_string(""));
        } else if (dt && strcmp(dt, "text_delta") == 0) {
            omni_buf_adds(&txt,
                          json_string_value(json_object_get(delta, "text")));
        } else if (dt && strcmp(dt, "thinking_delta") == 0) {
            omni_buf_adds(
                &th, json_string_value(json_object_get(delta, "thinking")));
        } else if (dt && strcmp(dt, "input_json_delta") == 0 &&
                   json_object_get(args, key)) {
            char *cat = NULL;
            const char *old = json_string_value(json_object_get(args, key));
            const char *frag =
                json_string_value(json_object_get(delta, "partial_json"));
            if (asprintf(&cat, "%s%s", old, frag) > 0)
                json_object_set_new(args, key, json_string(cat));
            free(cat);
        } else if (type && strcmp(type, "message_delta") == 0) {
            t->stop = json_incref(json_object_get(delta, "stop_reason"));
            t->out_tokens = json_incref(
                json_object_get(json_object_get(d, "usage"), "output_tokens"));
        } else if (type && strcmp(type, "message_start") == 0) {
            t->in_tokens = json_incref(json_object_get(
                json_object_get(json_object_get(d, "message"), "usage"),
                "input_tokens"));
        }
        json_decref(d);
    }
    size_t i;
    json_t *tool;
    json_array_foreach(t->tools, i, tool)
    {
        const char *a = json_string_value(json_object_get(
            args, json_string_value(json_object_get(tool, "key"))));
        json_t *input = *a ? json_loads(a, 0, NULL) : json_object();
        json_object_set_new(tool, "input", input);
        json_object_del(tool, "key");
    }
    json_decref(args);
    t->text = json_stringn(txt.data, txt.len);
    t->thinking = json_stringn(th.data, th.len);
    omni_buf_release(&txt);
    omni_buf_release(&th);
}

static void test_recorded_streams(void)
{
    static const struct {
        const char *file;
        size_t i;
        const char *finish;
        size_t ntools;
        bool thinking;
    } cases[] = {
        {"anthropic/test_tools.yaml", 0, "tool_calls", 2, false},
        {"anthropic/test_tools.yaml", 1, "stop", 0, false},
        {"anthropic/test_anthropic_model_thinking_part_stream.yaml", 0, "stop",
         0, true},
        {"anthropic/test_anthropic_native_tool_search_streaming.yaml", 0,
         "tool_calls", 1, false},
        {"anthropic/test_anthropic_native_tool_search_streaming.yaml", 1,
         "stop", 0, false},
    };
    static const size_t pieces[] = {1, 13, 4096};
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        json_t *c = llm_cassette_load(cases[k].file);
        if (!c) {
            fprintf(stderr, "note: skipping recorded streams (no shared/)\n");
            return;
        }
        size_t len;
        char *body = llm_cassette_body(c, cases[k].i, &len);
        struct truth t = {0};
        recorded_truth(body, &t);
        CU_ASSERT(json_string_length(t.text) > 0);
        CU_ASSERT_EQUAL(json_array_size(t.tools), cases[k].ntools);
        CU_ASSERT_EQUAL(json_string_length(t.thinking) > 0, cases[k].thinking);
        for (size_t p = 0; p < sizeof pieces / sizeof *pieces; p++) {
            json_t *req = json_pack("{s:b,s:{s:b}}", "stream", 1,
                                    "stream_options", "include_usage", p != 1);
            enum llm_stream_rc rc;
            struct llm_error err = {0};
            json_t *usage;
            json_t *chunks = llm_test_stream(&llm_anthropic, &target, req, body,
                                             len, pieces[p], &rc, &err, &usage);
            CU_ASSERT_EQUAL(rc, LLM_STREAM_DONE);
            json_t *a = llm_test_assemble(chunks);
            CU_ASSERT_STRING_EQUAL(
                json_string_value(json_object_get(a, "role")), "assistant");
            CU_ASSERT(json_equal(json_object_get(a, "content"), t.text));
            CU_ASSERT(json_equal(json_object_get(a, "reasoning_content"),
                                 t.thinking));
            CU_ASSERT_STRING_EQUAL(
                json_string_value(json_object_get(a, "finish_reason")),
                cases[k].finish);
            json_t *calls = json_object_get(a, "tool_calls");
            CU_ASSERT_EQUAL(json_array_size(calls), cases[k].ntools);
            size_t i;
            json_t *tc;
            json_array_foreach(calls, i, tc)
            {
                json_t *want = json_array_get(t.tools, i);
                CU_ASSERT(json_equal(json_object_get(tc, "id"),
                                     json_object_get(want, "id")));
                CU_ASSERT(json_equal(json_object_get(tc, "name"),
                                     json_object_get(want, "name")));
                json_t *args = json_loads(
                    json_string_value(json_object_get(tc, "arguments")), 0,
                    NULL);
                CU_ASSERT(json_is_object(args));
                CU_ASSERT(json_equal(args, json_object_get(want, "input")));
                json_decref(args);
            }
            /* usage: recorded counts; the last chunk only when asked */
            CU_ASSERT_EQUAL(
                json_integer_value(json_object_get(usage, "completion_tokens")),
                json_integer_value(t.out_tokens));
            CU_ASSERT(
                json_integer_value(json_object_get(usage, "prompt_tokens")) >=
                json_integer_value(t.in_tokens));
            CU_ASSERT_EQUAL(
                json_integer_value(json_object_get(usage, "total_tokens")),
                json_integer_value(json_object_get(usage, "prompt_tokens")) +
                    json_integer_value(t.out_tokens));
            json_t *lastc = json_array_get(chunks, json_array_size(chunks) - 1);
            if (p != 1) {
                CU_ASSERT_EQUAL(
                    json_array_size(json_object_get(lastc, "choices")), 0);
                CU_ASSERT(json_equal(json_object_get(lastc, "usage"), usage));
            } else {
                CU_ASSERT(json_is_null(json_object_get(a, "usage")));
                CU_ASSERT_EQUAL(
                    json_array_size(json_object_get(lastc, "choices")), 1);
            }
            /* one message: one id for every chunk */
            const char *id0 = json_string_value(
                json_object_get(json_array_get(chunks, 0), "id"));
            CU_ASSERT(id0 && strncmp(id0, "msg_", 4) == 0);
            json_array_foreach(chunks, i, tc)
            {
                CU_ASSERT_STRING_EQUAL(
                    json_string_value(json_object_get(tc, "id")), id0);
            }
            json_decref(usage);
            json_decref(a);
            json_decref(chunks);
            json_decref(req);
        }
        if (cases[k].thinking)
            CU_ASSERT(strstr(body, "signature_delta") != NULL);
        json_decref(t.text);
        json_decref(t.thinking);
        json_decref(t.tools);
        json_decref(t.stop);
        json_decref(t.out_tokens);
        json_decref(t.in_tokens);
        free(body);
        json_decref(c);
    }
}

/* Error events inside a 200 stream, and a stream without event lines. */
static void test_stream_errors(void)
{
    static const struct {
        const char *type;
        int status;
        bool retryable;
    } cases[] = {
        {"overloaded_error", 529, true}, {"rate_limit_error", 429, true},
        {"api_error", 500, true},        {"invalid_request_error", 400, false},
        {"something_new", 500, true},
    };
    json_t *req = json_pack("{s:b}", "stream", 1);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char body[512];
        snprintf(body, sizeof body,
                 "event: message_start\ndata: {\"type\":\"message_start\","
                 "\"message\":{\"id\":\"msg_e\",\"model\":\"m\",\"usage\":{"
                 "\"input_tokens\":3,\"output_tokens\":1}}}\n\n"
                 "event: ping\ndata: {\"type\": \"ping\"}\n\n"
                 "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":"
                 "\"%s\",\"message\":\"Overloaded\"}}\n\n"
                 "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
                 cases[i].type);
        enum llm_stream_rc rc;
        struct llm_error err = {0};
        json_t *usage;
        json_t *chunks = llm_test_stream(&llm_anthropic, &target, req, body,
                                         strlen(body), 11, &rc, &err, &usage);
        CU_ASSERT_EQUAL(rc, LLM_STREAM_ERROR);
        CU_ASSERT_EQUAL(err.code, OMNI_E_UPSTREAM);
        CU_ASSERT_EQUAL(err.status, cases[i].status);
        CU_ASSERT_EQUAL(err.retryable, cases[i].retryable);
        CU_ASSERT_STRING_EQUAL(err.message, "anthropic: Overloaded");
        CU_ASSERT_EQUAL(json_array_size(chunks), 1); /* the role chunk */
        json_decref(usage);
        json_decref(chunks);
    }

    /* no "event:" lines (a proxy dropped them): the data type decides */
    const char *body =
        "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_p\","
        "\"model\":\"m\",\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}"
        "\n\ndata: {\"type\":\"content_block_start\",\"index\":0,"
        "\"content_block\":{\"type\":\"text\",\"text\":\"He\"}}\n\n"
        "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{"
        "\"type\":\"text_delta\",\"text\":\"llo\"}}\n\n"
        "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":"
        "\"max_tokens\"},\"usage\":{\"output_tokens\":2}}\n\n"
        "data: {\"type\":\"message_stop\"}\n\n";
    enum llm_stream_rc rc;
    struct llm_error err = {0};
    json_t *usage;
    json_t *chunks = llm_test_stream(&llm_anthropic, &target, req, body,
                                     strlen(body), 3, &rc, &err, &usage);
    CU_ASSERT_EQUAL(rc, LLM_STREAM_DONE);
    json_t *a = llm_test_assemble(chunks);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(a, "content")),
                           "Hello");
    CU_ASSERT_STRING_EQUAL(
        json_string_value(json_object_get(a, "finish_reason")), "length");
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(usage, "total_tokens")),
                    5);
    json_decref(a);
    json_decref(usage);
    json_decref(chunks);

    body = "event: message_start\ndata: {oops\n\n";
    chunks = llm_test_stream(&llm_anthropic, &target, req, body, strlen(body),
                             100, &rc, &err, &usage);
    CU_ASSERT_EQUAL(rc, LLM_STREAM_ERROR);
    CU_ASSERT(strncmp(err.message, "anthropic: invalid stream data", 30) == 0);
    CU_ASSERT_EQUAL(json_array_size(chunks), 0);
    json_decref(usage);
    json_decref(chunks);
    json_decref(req);
}

static void test_map_error(void)
{
    static const struct {
        int status;
        const char *ra, *ra_ms, *body;
        uint32_t want_ms;
        bool retryable;
        const char *msg;
    } cases[] = {
        {529, NULL, NULL,
         "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\","
         "\"message\":\"Overloaded\"}}",
         0, true, "anthropic: Overloaded"},
        {429, "7", NULL,
         "{\"type\":\"error\",\"error\":{\"type\":\"rate_limit_error\","
         "\"message\":\"Number of request tokens has exceeded your per-minute "
         "rate limit\"}}",
         7000, true,
         "anthropic: Number of request tokens has exceeded your per-minute "
         "rate limit"},
        {401, NULL, NULL,
         "{\"type\":\"error\",\"error\":{\"type\":\"authentication_error\","
         "\"message\":\"invalid x-api-key\"}}",
         0, false, "anthropic: invalid x-api-key"},
        {413, NULL, NULL,
         "{\"type\":\"error\",\"error\":{\"type\":\"request_too_large\","
         "\"message\":\"Request exceeds the maximum allowed number of "
         "bytes.\"}}",
         0, false,
         "anthropic: Request exceeds the maximum allowed number of bytes."},
        {500, NULL, "1500", "upstream connect error", 1500, true,
         "anthropic: upstream connect error"},
        {503, NULL, NULL, NULL, 0, true,
         "anthropic: upstream answered HTTP 503"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        struct llm_error e;
        memset(&e, 0x5a, sizeof e);
        llm_anthropic.map_error(cases[i].status, cases[i].ra, cases[i].ra_ms,
                                cases[i].body,
                                cases[i].body ? strlen(cases[i].body) : 0, &e);
        CU_ASSERT_EQUAL(e.code, OMNI_E_UPSTREAM);
        CU_ASSERT_EQUAL(e.status, cases[i].status);
        CU_ASSERT_EQUAL(e.retry_after_ms, cases[i].want_ms);
        CU_ASSERT_EQUAL(e.retryable, cases[i].retryable);
        if (strcmp(e.message, cases[i].msg) != 0) {
            fprintf(stderr, "map_error %zu: got '%s', want '%s'\n", i,
                    e.message, cases[i].msg);
            CU_FAIL("message");
        }
    }

    static const struct {
        const char *file;
        int status;
        const char *msg;
    } rec[] = {
        {"anthropic/"
         "test_anthropic_explicit_effort_xhigh_unsupported_model_errors.yaml",
         400,
         "anthropic: This model does not support effort level 'xhigh'. "
         "Supported levels: high, low, max, medium."},
        {"anthropic/test_model_name_suggestion[anthropic].yaml", 404,
         "anthropic: model: claude-sonet-4-5"},
    };
    for (size_t i = 0; i < sizeof rec / sizeof *rec; i++) {
        json_t *c = llm_cassette_load(rec[i].file);
        if (!c) {
            fprintf(stderr, "note: skipping recorded errors (no shared/)\n");
            return;
        }
        size_t len;
        char *body = llm_cassette_body(c, 0, &len);
        struct llm_error e;
        llm_anthropic.map_error(llm_cassette_status(c, 0), NULL, NULL, body,
                                len, &e);
        CU_ASSERT_EQUAL(e.status, rec[i].status);
        CU_ASSERT(!e.retryable);
        CU_ASSERT_STRING_EQUAL(e.message, rec[i].msg);
        free(body);
        json_decref(c);
    }
}

static void test_models(void)
{
    CU_ASSERT_PTR_NULL(llm_anthropic.build_embed);
    CU_ASSERT_PTR_NULL(llm_anthropic.parse_embed);
    struct llm_http_req r = {0};
    char err[OMNI_ERR_LEN] = "";
    CU_ASSERT_EQUAL(llm_anthropic.build_models(&target, &r, err), OMNI_OK);
    CU_ASSERT_STRING_EQUAL(r.url,
                           "https://api.anthropic.com/v1/models?limit=1000");
    CU_ASSERT(has_header(&r, "x-api-key: sk-ant-test-0123456789"));
    CU_ASSERT(has_header(&r, "anthropic-version: 2023-06-01"));
    CU_ASSERT_PTR_NULL(r.body);
    llm_http_req_release(&r);
    const char *s =
        "{\"data\":[{\"type\":\"model\",\"id\":\"claude-sonnet-4-5-20250929\","
        "\"display_name\":\"Claude Sonnet 4.5\",\"created_at\":"
        "\"2025-09-29T00:00:00Z\"},{\"type\":\"model\",\"id\":\"c2\"}],"
        "\"has_more\":false}";
    json_t *m = llm_anthropic.parse_models(&target, s, strlen(s), err);
    expect_json(m,
                "{\"object\":\"list\",\"data\":[{\"id\":"
                "\"anthropic/claude-sonnet-4-5-20250929\",\"object\":"
                "\"model\",\"owned_by\":\"anthropic\",\"created\":"
                "1759104000},{\"id\":\"anthropic/c2\",\"object\":\"model\","
                "\"owned_by\":\"anthropic\"}]}",
                "models");
    json_decref(m);
    CU_ASSERT_PTR_NULL(llm_anthropic.parse_models(&target, "[]", 2, err));
}

static CU_TestInfo anthropic_tests[] = {
    {"build_chat translation", test_build_chat},
    {"tool_choice mapping", test_tool_choice},
    {"build_chat rejects", test_build_rejects},
    {"recorded requests", test_recorded_requests},
    {"recorded replies", test_recorded_replies},
    {"parse_chat synthetic", test_parse_chat_synthetic},
    {"recorded streams -> chunks", test_recorded_streams},
    {"stream errors and event-less streams", test_stream_errors},
    {"map_error", test_map_error},
    {"models", test_models},
    CU_TEST_INFO_NULL,
};

CU_SuiteInfo omni_test_suites[] = {
    {"llm_anthropic", NULL, NULL, NULL, NULL, anthropic_tests},
    CU_SUITE_INFO_NULL,
};
