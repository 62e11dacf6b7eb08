/*
 * test_llmeng_tools - the pure parts of the augmented chat: MCP tool
 * definitions and the tool loop's messages (llm_tools), folding a
 * stream into a chat.completion and back, RAG citations and the
 * semantic cache's namespace and text (llm_rag).
 */
#include <stdlib.h>
#include <string.h>

#include "llm_rag.h"
#include "llm_tools.h"
#include "omni_alloc.h"
#include "unit.h"

static json_t *parse(const char *s)
{
    json_error_t je;
    json_t *j = json_loads(s, JSON_DECODE_ANY, &je);
    if (!j)
        fprintf(stderr, "bad test JSON: %s: %s\n", je.text, s);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    return j;
}

/* got (a new reference, consumed) equals the JSON text want. */
static void json_is(json_t *got, const char *want, const char *what)
{
    json_t *w = parse(want);
    if (!json_equal(got, w)) {
        char *g = got ? json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
        fprintf(stderr, "%s: got %s, want %s\n", what, g ? g : "NULL", want);
        free(g);
    }
    CU_ASSERT_TRUE(json_equal(got, w));
    json_decref(w);
    json_decref(got);
}

/* ---- MCP tool definitions ---- */

static void test_mcp_query(void)
{
    static const struct {
        const char *tools, *want; /* want NULL: BAD_REQUEST */
        const char *err;          /* part of the message */
    } cases[] = {
        {"[{\"type\":\"function\",\"function\":{\"name\":\"f\"}},"
         "{\"type\":\"mcp\",\"server_label\":\"a\",\"allowed_tools\":[\"x\"]},"
         "{\"type\":\"mcp\",\"server_label\":\"b\",\"allowed_tools\":"
         "{\"tool_names\":[\"y\",\"x\"]}}]",
         "{\"servers\":[\"a\",\"b\"],\"allowed_tools\":[\"x\",\"y\"]}", NULL},
        /* One entry without allowed_tools: no tool filter at all. */
        {"[{\"type\":\"mcp\",\"server_label\":\"a\",\"allowed_tools\":[\"x\"]},"
         "{\"type\":\"mcp\",\"server_label\":\"a\"}]",
         "{\"servers\":[\"a\"]}", NULL},
        {"[{\"type\":\"mcp\"}]", NULL, "tools[0].server_label"},
        {"[{\"type\":\"function\"},{\"type\":\"mcp\",\"server_label\":\"\"}]",
         NULL, "tools[1].server_label"},
        {"[{\"type\":\"mcp\",\"server_label\":\"a\",\"allowed_tools\":[1]}]",
         NULL, "tools[0].allowed_tools"},
        {"[{\"type\":\"mcp\",\"server_label\":\"a\",\"allowed_tools\":\"x\"}]",
         NULL, "tools[0].allowed_tools"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        json_t *tools = parse(cases[i].tools), *q = NULL;
        char err[OMNI_ERR_LEN] = "";
        enum omni_err rc = llm_tools_mcp_query(tools, &q, err);
        if (cases[i].want) {
            CU_ASSERT_EQUAL(rc, OMNI_OK);
            json_is(q, cases[i].want, "mcp query");
        } else {
            CU_ASSERT_EQUAL(rc, OMNI_E_BAD_REQUEST);
            CU_ASSERT_PTR_NULL(q);
            if (!strstr(err, cases[i].err))
                fprintf(stderr, "case %zu: got '%s', want it to name %s\n", i,
                        err, cases[i].err);
            CU_ASSERT_PTR_NOT_NULL(strstr(err, cases[i].err));
        }
        json_decref(tools);
    }
    json_t *t = parse("[{\"type\":\"function\"},{\"type\":\"mcp\"}]");
    CU_ASSERT_TRUE(llm_tools_has_mcp(t));
    json_decref(t);
    t = parse("[{\"type\":\"function\"}]");
    CU_ASSERT_FALSE(llm_tools_has_mcp(t));
    CU_ASSERT_FALSE(llm_tools_has_mcp(NULL));
    json_decref(t);
}

static void test_fname(void)
{
    char *s = llm_tools_fname("everything__get-sum");
    CU_ASSERT_STRING_EQUAL(s, "everything__get-sum");
    omni_free(s);
    s = llm_tools_fname("fs__read.file/x y");
    CU_ASSERT_STRING_EQUAL(s, "fs__read_file_x_y");
    omni_free(s);
    char longname[100];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    char *a = llm_tools_fname(longname);
    longname[98] = 'b';
    char *b = llm_tools_fname(longname);
    CU_ASSERT_EQUAL(strlen(a), LLM_TOOL_NAME_MAX);
    CU_ASSERT_EQUAL(strlen(b), LLM_TOOL_NAME_MAX);
    CU_ASSERT_EQUAL(strncmp(a, b, 55), 0);
    CU_ASSERT_EQUAL(a[55], '_');
    CU_ASSERT_STRING_NOT_EQUAL(a, b); /* the hash tells them apart */
    omni_free(a);
    omni_free(b);
}

static const char listed[] =
    "{\"tools\":["
    "{\"name\":\"a__echo\",\"description\":\"Echoes\",\"inputSchema\":"
    "{\"type\":\"object\",\"properties\":{\"m\":{\"type\":\"string\"}}},"
    "\"server\":\"a\"},"
    "{\"name\":\"a__sum\",\"description\":\"Adds\",\"inputSchema\":"
    "{\"type\":\"object\"},\"server\":\"a\"},"
    "{\"name\":\"b__x.y\",\"inputSchema\":null,\"server\":\"b\"},"
    "{\"name\":\"a__f\",\"description\":\"clashes\",\"inputSchema\":"
    "{\"type\":\"object\"},\"server\":\"a\"}]}";

static void test_merge(void)
{
    json_t *tools =
        parse("[{\"type\":\"function\",\"function\":{\"name\":\"a__f\","
              "\"parameters\":{\"type\":\"object\"}}},"
              "{\"type\":\"mcp\",\"server_label\":\"a\",\"allowed_tools\":"
              "[\"echo\",\"a__f\"]},"
              "{\"type\":\"mcp\",\"server_label\":\"b\"}]");
    json_t *avail = parse(listed), *out, *map;
    char err[OMNI_ERR_LEN];
    CU_ASSERT_EQUAL_FATAL(llm_tools_merge(tools, avail, &out, &map, err),
                          OMNI_OK);
    /* The client's own first; sum is not allowed; a__f is the client's
     * name already; b__x.y gets a legal name and a default schema. */
    json_is(out,
            "[{\"type\":\"function\",\"function\":{\"name\":\"a__f\","
            "\"parameters\":{\"type\":\"object\"}}},"
            "{\"type\":\"function\",\"function\":{\"name\":\"a__echo\","
            "\"description\":\"Echoes\",\"parameters\":{\"type\":\"object\","
            "\"properties\":{\"m\":{\"type\":\"string\"}}}}},"
            "{\"type\":\"function\",\"function\":{\"name\":\"b__x_y\","
            "\"description\":\"\",\"parameters\":{\"type\":\"object\"}}}]",
            "merged tools");
    json_is(map, "{\"a__echo\":\"a__echo\",\"b__x_y\":\"b__x.y\"}", "map");
    json_decref(tools);

    /* An entry naming a server with nothing to offer: NOT_FOUND. */
    tools = parse("[{\"type\":\"mcp\",\"server_label\":\"c\"}]");
    CU_ASSERT_EQUAL(llm_tools_merge(tools, avail, &out, &map, err),
                    OMNI_E_NOT_FOUND);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "'c'"));
    CU_ASSERT_PTR_NULL(out);
    json_decref(tools);
    tools = parse("[{\"type\":\"mcp\",\"server_label\":\"a\","
                  "\"allowed_tools\":[\"nope\"]}]");
    CU_ASSERT_EQUAL(llm_tools_merge(tools, avail, &out, &map, err),
                    OMNI_E_NOT_FOUND);
    json_decref(avail);
    /* A malformed mcp answer. */
    avail = parse("{\"nothing\":1}");
    CU_ASSERT_EQUAL(llm_tools_merge(tools, avail, &out, &map, err),
                    OMNI_E_UPSTREAM);
    json_decref(avail);
    json_decref(tools);
}

/* ---- the loop ---- */

static void test_kind(void)
{
    json_t *client =
        parse("[{\"type\":\"function\",\"function\":{\"name\":\"mine\"}},"
              "{\"type\":\"mcp\",\"server_label\":\"a\"}]");
    json_t *map = parse("{\"a__echo\":\"a__echo\"}");
    static const struct {
        const char *call;
        enum llm_tc_kind want;
    } cases[] = {
        {"{\"function\":{\"name\":\"a__echo\"}}", LLM_TC_MCP},
        {"{\"function\":{\"name\":\"mine\"}}", LLM_TC_CLIENT},
        {"{\"function\":{\"name\":\"other\"}}", LLM_TC_UNKNOWN},
        {"{\"id\":\"x\"}", LLM_TC_UNKNOWN},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        json_t *c = parse(cases[i].call);
        enum llm_tc_kind got = llm_tools_kind(c, map, client);
        if (got != cases[i].want)
            fprintf(stderr, "case %zu: got kind %d, want %d\n", i, got,
                    cases[i].want);
        CU_ASSERT_EQUAL(got, cases[i].want);
        json_decref(c);
    }
    json_decref(client);
    json_decref(map);
}

static void test_args(void)
{
    static const struct {
        const char *call, *want; /* want NULL: an error */
    } cases[] = {
        {"{\"function\":{\"arguments\":\"{\\\"a\\\":1}\"}}", "{\"a\":1}"},
        {"{\"function\":{\"arguments\":\"\"}}", "{}"},
        {"{\"function\":{\"arguments\":\" \\n\"}}", "{}"},
        {"{\"function\":{}}", "{}"},
        {"{\"function\":{\"arguments\":{\"b\":2}}}", "{\"b\":2}"},
        {"{\"function\":{\"arguments\":\"[1]\"}}", NULL},
        {"{\"function\":{\"arguments\":\"{broken\"}}", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        json_t *c = parse(cases[i].call);
        char err[OMNI_ERR_LEN] = "";
        json_t *got = llm_tools_call_args(c, err);
        if (cases[i].want) {
            json_is(got, cases[i].want, "arguments");
        } else {
            CU_ASSERT_PTR_NULL(got);
            CU_ASSERT_PTR_NOT_NULL(strstr(err, "not a JSON object"));
        }
        json_decref(c);
    }
}

static void test_messages(void)
{
    json_t *msg = parse(
        "{\"role\":\"assistant\",\"content\":\"\",\"refusal\":null,"
        "\"annotations\":[],\"tool_calls\":[{\"id\":\"c1\",\"type\":"
        "\"function\",\"function\":{\"name\":\"a__echo\",\"arguments\":"
        "\"{\\\"m\\\":1}\"}},{\"id\":\"c2\",\"function\":{\"name\":\"x\"}}]}");
    json_is(llm_tools_assistant(msg),
            "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":["
            "{\"id\":\"c1\",\"type\":\"function\",\"function\":{\"name\":"
            "\"a__echo\",\"arguments\":\"{\\\"m\\\":1}\"}},"
            "{\"id\":\"c2\",\"type\":\"function\",\"function\":{\"name\":"
            "\"x\",\"arguments\":\"{}\"}}]}",
            "assistant message");
    json_decref(msg);
    msg = parse("{\"content\":\"let me look\",\"tool_calls\":[]}");
    json_is(llm_tools_assistant(msg),
            "{\"role\":\"assistant\",\"content\":\"let me look\","
            "\"tool_calls\":[]}",
            "assistant with text");
    json_decref(msg);
    json_is(llm_tools_result_msg("c1", "Echo: hi"),
            "{\"role\":\"tool\",\"tool_call_id\":\"c1\",\"content\":"
            "\"Echo: hi\"}",
            "tool message");
}

static void test_result_text(void)
{
    static const struct {
        const char *result, *want;
    } cases[] = {
        {"{\"content\":[{\"type\":\"text\",\"text\":\"a\"},{\"type\":\"text\","
         "\"text\":\"b\"}],\"isError\":false}",
         "a\nb"},
        {"{\"content\":[{\"type\":\"text\",\"text\":\"boom\"}],"
         "\"isError\":true}",
         "error: boom"},
        {"{\"content\":[{\"type\":\"image\",\"data\":\"AA==\"},{\"type\":"
         "\"resource\",\"resource\":{\"uri\":\"u\",\"text\":\"doc\"}}]}",
         "[image content]\ndoc"},
        {"{\"content\":[],\"structuredContent\":{\"t\":1}}", "{\"t\":1}"},
        {"{}", ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        json_t *r = parse(cases[i].result);
        char *got = llm_tools_result_text(r);
        if (strcmp(got, cases[i].want) != 0)
            fprintf(stderr, "case %zu: got '%s', want '%s'\n", i, got,
                    cases[i].want);
        CU_ASSERT_STRING_EQUAL(got, cases[i].want);
        omni_free(got);
        json_decref(r);
    }
}

static void test_next_choice(void)
{
    static const struct {
        const char *in, *want; /* NULL: absent */
    } cases[] = {
        {"\"required\"", "\"auto\""},
        {"{\"type\":\"function\",\"function\":{\"name\":\"f\"}}", "\"auto\""},
        {"\"none\"", "\"none\""},
        {"\"auto\"", "\"auto\""},
        {"null", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        json_t *in = json_loads(cases[i].in, JSON_DECODE_ANY, NULL);
        json_t *got = llm_tools_next_choice(in);
        if (cases[i].want)
            json_is(got, cases[i].want, "tool_choice");
        else
            CU_ASSERT_PTR_NULL(got);
        json_decref(in);
    }
    CU_ASSERT_PTR_NULL(llm_tools_next_choice(NULL));
}

/* ---- replies ---- */

static void test_fold(void)
{
    static const char *const chunks[] = {
        "{\"id\":\"c-1\",\"object\":\"chat.completion.chunk\",\"created\":7,"
        "\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"role\":"
        "\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}",
        "{\"id\":\"c-1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":"
        "\"Hel\"}}]}",
        "{\"id\":\"c-1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":"
        "\"lo\",\"tool_calls\":[{\"index\":1,\"id\":\"t2\",\"type\":"
        "\"function\",\"function\":{\"name\":\"b\",\"arguments\":\"\"}}]}}]}",
        "{\"id\":\"c-1\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":"
        "[{\"index\":0,\"id\":\"t1\",\"function\":{\"name\":\"a\","
        "\"arguments\":\"{\\\"x\\\"\"}}]}}]}",
        "{\"id\":\"c-1\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":"
        "[{\"index\":0,\"function\":{\"arguments\":\":1}\"}},{\"index\":1,"
        "\"function\":{\"arguments\":\"{}\"}}]}},{\"index\":1,\"delta\":"
        "{\"content\":\"other choice\"}}]}",
        "{\"id\":\"c-1\",\"choices\":[{\"index\":0,\"delta\":{},"
        "\"finish_reason\":\"tool_calls\"}]}",
        "{\"id\":\"c-1\",\"choices\":[],\"usage\":{\"prompt_tokens\":3,"
        "\"completion_tokens\":2,\"total_tokens\":5}}",
    };
    json_t *acc = llm_acc_new();
    for (size_t i = 0; i < sizeof chunks / sizeof *chunks; i++) {
        json_t *c = parse(chunks[i]);
        llm_acc_add(acc, c);
        json_decref(c);
    }
    static const char want[] =
        "{\"id\":\"c-1\",\"object\":\"chat.completion\",\"created\":7,"
        "\"model\":\"m\",\"choices\":[{\"index\":0,\"message\":{\"role\":"
        "\"assistant\",\"content\":\"Hello\",\"tool_calls\":["
        "{\"id\":\"t1\",\"type\":\"function\",\"function\":{\"name\":\"a\","
        "\"arguments\":\"{\\\"x\\\":1}\"}},"
        "{\"id\":\"t2\",\"type\":\"function\",\"function\":{\"name\":\"b\","
        "\"arguments\":\"{}\"}}]},\"finish_reason\":\"tool_calls\"}],"
        "\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2,"
        "\"total_tokens\":5}}";
    json_t *copy = json_deep_copy(acc);
    json_is(acc, want, "folded stream");

    /* Unfolding gives chunks that fold back to the same completion. */
    json_t *out = llm_completion_chunks(copy, true);
    CU_ASSERT_EQUAL(json_array_size(out), 5); /* role, text, calls, end, use */
    json_t *last = json_array_get(out, json_array_size(out) - 1);
    CU_ASSERT_EQUAL(json_array_size(json_object_get(last, "choices")), 0);
    CU_ASSERT_PTR_NOT_NULL(json_object_get(last, "usage"));
    json_t *again = llm_acc_new();
    size_t i;
    json_t *c;
    json_array_foreach(out, i, c)
    {
        CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(c, "object")),
                               "chat.completion.chunk");
        llm_acc_add(again, c);
    }
    json_is(again, want, "unfolded and folded again");
    json_decref(out);
    out = llm_completion_chunks(copy, false);
    CU_ASSERT_EQUAL(json_array_size(out), 4);
    json_decref(out);
    json_decref(copy);
}

static void test_usage_and_text(void)
{
    json_t *sum = NULL;
    llm_usage_add(&sum, NULL);
    CU_ASSERT_PTR_NULL(sum);
    json_t *u = parse("{\"prompt_tokens\":3,\"completion_tokens\":2,"
                      "\"total_tokens\":5,\"prompt_tokens_details\":{}}");
    llm_usage_add(&sum, u);
    llm_usage_add(&sum, u);
    json_decref(u);
    json_is(sum,
            "{\"prompt_tokens\":6,\"completion_tokens\":4,"
            "\"total_tokens\":10}",
            "usage sum");

    json_t *parts = parse("[{\"type\":\"text\",\"text\":\"a\"},{\"type\":"
                          "\"image_url\"},{\"type\":\"text\",\"text\":\"b\"}]");
    char *s = llm_content_text(parts, " ");
    CU_ASSERT_STRING_EQUAL(s, "a b");
    omni_free(s);
    json_decref(parts);
    s = llm_content_text(NULL, " ");
    CU_ASSERT_STRING_EQUAL(s, "");
    omni_free(s);
}

/* ---- RAG and the semantic cache ---- */

static void test_cited(void)
{
    static const char cites[] =
        "[{\"n\":1,\"document_id\":\"a\",\"chunk_id\":0},"
        "{\"n\":2,\"document_id\":\"b\",\"chunk_id\":3},"
        "{\"n\":3,\"document_id\":\"a\",\"chunk_id\":1}]";
    static const struct {
        const char *answer, *want; /* want: the n cited */
    } cases[] = {
        {"Erebus [2].", "[2]"},
        {"Both [1][3] say so.", "[1,3]"},
        {"See [3, 1] and [1].", "[1,3]"},
        {"No markers here.", "[1,2,3]"},
        {"Not markers: [a], [], [1.5, [ 2 ]", "[2]"},
        {"Out of range [9] only.", "[1,2,3]"},
        {"[2] then [99999999999999999999] then [3]", "[2,3]"},
        {NULL, "[1,2,3]"},
    };
    json_t *c = parse(cites);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        json_t *got = llm_rag_cited(cases[i].answer, c);
        json_t *ns = json_array();
        size_t k;
        json_t *x;
        json_array_foreach(got, k, x)
        {
            json_array_append(ns, json_object_get(x, "n"));
            CU_ASSERT_PTR_NOT_NULL(json_object_get(x, "chunk_id"));
        }
        json_is(ns, cases[i].want, cases[i].answer ? cases[i].answer : "NULL");
        json_decref(got);
    }
    json_decref(c);
}

static void test_rag_query(void)
{
    json_t *m = parse(
        "[{\"role\":\"system\",\"content\":\"s\"},{\"role\":\"user\","
        "\"content\":\"first\"},{\"role\":\"assistant\",\"content\":\"x\"},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"two\"},"
        "{\"type\":\"text\",\"text\":\"parts\"}]},{\"role\":\"user\","
        "\"content\":\"\"}]");
    char *q = llm_rag_query(m);
    CU_ASSERT_STRING_EQUAL(q, "two parts");
    omni_free(q);
    char *t = llm_sem_text(m);
    CU_ASSERT_STRING_EQUAL(t, "first\ntwo parts");
    omni_free(t);
    json_decref(m);
    m = parse("[{\"role\":\"system\",\"content\":\"s\"}]");
    CU_ASSERT_PTR_NULL(llm_rag_query(m));
    t = llm_sem_text(m);
    CU_ASSERT_STRING_EQUAL(t, "");
    omni_free(t);
    json_decref(m);

    json_t *sys = llm_rag_system("[1] alpha\n[2] beta");
    const char *s = json_string_value(json_object_get(sys, "content"));
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(sys, "role")),
                           "system");
    CU_ASSERT_PTR_NOT_NULL(strstr(s, "[1] alpha\n[2] beta"));
    CU_ASSERT_PTR_NOT_NULL(strstr(s, "square brackets"));
    json_decref(sys);
}

static void ns_of(const char *body, const char *model, const char *rag,
                  char ns[LLM_SEM_NS_LEN])
{
    json_t *b = parse(body), *r = rag ? parse(rag) : NULL;
    llm_sem_namespace(b, model, r, ns);
    json_decref(b);
    json_decref(r);
}

static void test_namespace(void)
{
    char a[LLM_SEM_NS_LEN], b[LLM_SEM_NS_LEN];
    static const char base[] =
        "{\"messages\":[{\"role\":\"system\",\"content\":\"S\"},"
        "{\"role\":\"user\",\"content\":\"q1\"}],\"temperature\":0.2}";
    ns_of(base, "openai/gpt-4o-mini", NULL, a);
    /* Shape: the model made safe, '.', 32 hex digits. */
    CU_ASSERT_EQUAL(strlen(a), strlen("openai_gpt-4o-mini.") + 32);
    CU_ASSERT_EQUAL(strncmp(a, "openai_gpt-4o-mini.", 19), 0);
    for (const char *p = a; *p; p++)
        CU_ASSERT_PTR_NOT_NULL(
            strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                   "0123456789_-.",
                   *p));
    /* The user's words, the sampling and the field order do not
     * matter. */
    ns_of("{\"temperature\":0.9,\"messages\":[{\"role\":\"user\","
          "\"content\":\"other\"},{\"role\":\"system\",\"content\":\"S\"}]}",
          "openai/gpt-4o-mini", NULL, b);
    CU_ASSERT_STRING_EQUAL(a, b);
    /* "developer" is the newer name of "system". */
    ns_of("{\"messages\":[{\"role\":\"developer\",\"content\":\"S\"}]}",
          "openai/gpt-4o-mini", NULL, b);
    CU_ASSERT_STRING_EQUAL(a, b);
    /* The system prompt, the tools, the model and RAG options do. */
    static const struct {
        const char *body, *model, *rag;
    } diff[] = {
        {"{\"messages\":[{\"role\":\"system\",\"content\":\"T\"}]}",
         "openai/gpt-4o-mini", NULL},
        {"{\"messages\":[{\"role\":\"system\",\"content\":\"S\"}],"
         "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}]}",
         "openai/gpt-4o-mini", NULL},
        {"{\"messages\":[{\"role\":\"system\",\"content\":\"S\"}]}",
         "openai/gpt-4o", NULL},
        {"{\"messages\":[{\"role\":\"system\",\"content\":\"S\"}]}",
         "openai/gpt-4o-mini", "{\"collection\":\"c\"}"},
        {"{\"messages\":[{\"role\":\"system\",\"content\":\"S\"}],"
         "\"response_format\":{\"type\":\"json_object\"}}",
         "openai/gpt-4o-mini", NULL},
    };
    for (size_t i = 0; i < sizeof diff / sizeof *diff; i++) {
        ns_of(diff[i].body, diff[i].model, diff[i].rag, b);
        if (strcmp(a, b) == 0)
            fprintf(stderr, "case %zu: same namespace %s\n", i, b);
        CU_ASSERT_STRING_NOT_EQUAL(a, b);
    }
    /* Models that only differ in unsafe characters stay apart. */
    ns_of(base, "x/a:b", NULL, a);
    ns_of(base, "x/a_b", NULL, b);
    CU_ASSERT_EQUAL(strncmp(a, "x_a_b.", 6), 0);
    CU_ASSERT_STRING_NOT_EQUAL(a, b);
    /* A long model name is cut to 80 characters. */
    char model[200];
    memset(model, 'm', sizeof model - 1);
    model[sizeof model - 1] = '\0';
    ns_of(base, model, NULL, a);
    CU_ASSERT_EQUAL(strlen(a), 80 + 1 + 32);
}

static CU_TestInfo tests[] = {
    {"mcp entries -> mcp tools query", test_mcp_query},
    {"function names for MCP tools", test_fname},
    {"merge MCP tools into function tools", test_merge},
    {"tool call kinds", test_kind},
    {"tool call arguments", test_args},
    {"loop messages", test_messages},
    {"CallToolResult -> tool message text", test_result_text},
    {"tool_choice after the first turn", test_next_choice},
    {"fold a stream, unfold a completion", test_fold},
    {"usage sum, content text", test_usage_and_text},
    {"citations used by an answer", test_cited},
    {"RAG query, context message, semantic text", test_rag_query},
    {"semantic cache namespace", test_namespace},
    CU_TEST_INFO_NULL,
};

CU_SuiteInfo omni_test_suites[] = {
    {"llmeng_tools", NULL, NULL, NULL, NULL, tests},
    CU_SUITE_INFO_NULL,
};
