/*
 * test_mcp_front - Omni as an MCP server (mcp_front) over a hub with no
 * upstream servers: every refusal of the handshake era (missing and
 * unknown sessions, batches, invalid messages, unknown versions and
 * methods, bad cursors and call parameters, the session cap), the
 * stateless era's answers, listen streams, and idle sessions swept.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mcp.h"
#include "omni_cfg.h"
#include "omni_time.h"
#include "unit.h"

static struct event_base *base;
static struct omni_mcp_hub *hub;
static struct omni_mcp_front *front;

struct got {
    int n;
    json_t *answer; /* the last one */
};

static void on_rpc(void *arg, json_t *answer)
{
    struct got *g = arg;
    g->n++;
    json_decref(g->answer);
    g->answer = json_incref(answer);
}

/* Send one rpc body (printf format, %s = session) and return the answer
 * (NULL if none came within 3 s); the caller releases it. */
static json_t *rpc(const char *body_fmt, const char *session)
{
    char body[2048];
    snprintf(body, sizeof body, body_fmt, session ? session : "");
    json_t *b = json_loads(body, 0, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    struct got g = {0};
    omni_mcp_front_rpc(front, b, 0, on_rpc, &g);
    json_decref(b);
    int64_t end = omni_now_ms() + 3000;
    while (!g.n && omni_now_ms() < end)
        event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    CU_ASSERT_EQUAL(g.n, 1);
    return g.answer;
}

static int status_of(const json_t *a)
{
    return (int)json_integer_value(json_object_get(a, "status"));
}

static json_int_t code_of(const json_t *a)
{
    return json_integer_value(json_object_get(
        json_object_get(json_object_get(a, "message"), "error"), "code"));
}

static const char *msg_of(const json_t *a)
{
    const char *m = json_string_value(json_object_get(
        json_object_get(json_object_get(a, "message"), "error"), "message"));
    return m ? m : "";
}

static const json_t *result_of(const json_t *a)
{
    return json_object_get(json_object_get(a, "message"), "result");
}

static int setup(void)
{
    setenv("OMNI_MCP_MAX_SESSIONS", "2", 1);
    setenv("OMNI_MCP_SESSION_IDLE_MS", "1000", 1);
    char err[OMNI_ERR_LEN];
    if (omni_cfg_load(NULL, err) != OMNI_OK) {
        fprintf(stderr, "config: %s\n", err);
        return 1;
    }
    static const char doc[] = "{\"mcpServers\":{}}";
    struct omni_mcp_config cfg;
    if (omni_mcp_config_parse(doc, strlen(doc), &cfg, err) != OMNI_OK) {
        fprintf(stderr, "mcp config: %s\n", err);
        return 1;
    }
    base = event_base_new();
    hub = omni_mcp_hub_new(base, &cfg);
    front = omni_mcp_front_new(hub);
    return 0;
}

static int teardown(void)
{
    omni_mcp_front_free(front);
    omni_mcp_hub_free(hub);
    event_base_free(base);
    omni_cfg_free();
    unsetenv("OMNI_MCP_MAX_SESSIONS");
    unsetenv("OMNI_MCP_SESSION_IDLE_MS");
    return 0;
}

#define INIT                                                                   \
    "{\"session\":null,\"message\":{\"jsonrpc\":\"2.0\",\"id\":1,"             \
    "\"method\":\"initialize\",\"params\":{\"protocolVersion\":"               \
    "\"2025-06-18\",\"capabilities\":{},\"clientInfo\":{\"name\":\"t\","       \
    "\"version\":\"1\"}}}}"

/* initialize: a new session id; NULL on failure. */
static char *new_session(void)
{
    json_t *a = rpc(INIT, NULL);
    const char *sid = json_string_value(json_object_get(a, "session"));
    char *out = sid && status_of(a) == 200 ? strdup(sid) : NULL;
    json_decref(a);
    return out;
}

static void end_session(const char *sid)
{
    json_t *a = rpc("{\"session\":\"%s\",\"delete\":true}", sid);
    CU_ASSERT_EQUAL(status_of(a), 200);
    json_decref(a);
}

/* The handshake era's refusals and answers: status, JSON-RPC error code
 * and a word of the message (code 0: a result). */
static void test_session_requests(void)
{
    char *sid = new_session();
    CU_ASSERT_PTR_NOT_NULL_FATAL(sid);
    CU_ASSERT_EQUAL(strlen(sid), 32);
    CU_ASSERT_EQUAL(omni_mcp_front_sessions(front), 1);
    static const struct {
        const char *body;
        int status;
        json_int_t code;
        const char *words;
    } cases[] = {
        {"{\"session\":\"%s\",\"message\":[{\"jsonrpc\":\"2.0\",\"id\":1,"
         "\"method\":\"ping\"}]}",
         400, -32600, "batching"},
        {"{\"session\":\"%s\",\"message\":{\"hello\":1}}", 400, -32600,
         "Invalid Request"},
        {"{\"x\":\"%s\",\"session\":null,\"message\":{\"jsonrpc\":\"2.0\","
         "\"id\":2,"
         "\"method\":\"ping\"}}",
         400, -32000, "Mcp-Session-Id"},
        {"{\"session\":\"nope%s\",\"message\":{\"jsonrpc\":\"2.0\",\"id\":2,"
         "\"method\":\"ping\"}}",
         404, -32001, "Session not found"},
        {"{\"session\":\"%s\",\"protocol_version\":\"1999-01-01\","
         "\"message\":{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"ping\"}}",
         400, -32000, "1999-01-01"},
        {"{\"session\":\"%s\",\"message\":{\"jsonrpc\":\"2.0\",\"id\":4,"
         "\"method\":\"ping\"}}",
         200, 0, NULL},
        {"{\"session\":\"%s\",\"message\":{\"jsonrpc\":\"2.0\",\"id\":5,"
         "\"method\":\"tools/list\",\"params\":{\"cursor\":7}}}",
         200, -32602, "Invalid cursor"},
        {"{\"session\":\"%s\",\"message\":{\"jsonrpc\":\"2.0\",\"id\":6,"
         "\"method\":\"resources/list\"}}",
         200, -32601, "resources/list"},
        {"{\"session\":\"%s\",\"message\":{\"jsonrpc\":\"2.0\",\"id\":7,"
         "\"method\":\"tools/call\",\"params\":{\"name\":5}}}",
         200, -32602, "string 'name'"},
        {"{\"session\":\"%s\",\"message\":{\"jsonrpc\":\"2.0\",\"id\":8,"
         "\"method\":\"tools/call\",\"params\":{\"name\":\"a__b\","
         "\"arguments\":[1]}}}",
         200, -32602, "object 'arguments'"},
        {"{\"session\":\"%s\",\"message\":{\"jsonrpc\":\"2.0\",\"id\":9,"
         "\"method\":\"tools/call\",\"params\":{\"name\":\"no__such\"}}}",
         200, -32602, "no__such"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        json_t *a = rpc(cases[i].body, sid);
        if (status_of(a) != cases[i].status || code_of(a) != cases[i].code)
            fprintf(stderr, "case %zu: got %d/%lld '%s', want %d/%lld\n", i,
                    status_of(a), (long long)code_of(a), msg_of(a),
                    cases[i].status, (long long)cases[i].code);
        CU_ASSERT_EQUAL(status_of(a), cases[i].status);
        CU_ASSERT_EQUAL(code_of(a), cases[i].code);
        if (cases[i].words) {
            CU_ASSERT_PTR_NOT_NULL(strstr(msg_of(a), cases[i].words));
        } else {
            CU_ASSERT(json_is_object(result_of(a)));
        }
        json_decref(a);
    }
    /* An empty catalog: one page, no cursor. */
    json_t *a = rpc("{\"session\":\"%s\",\"message\":{\"jsonrpc\":\"2.0\","
                    "\"id\":10,\"method\":\"tools/list\"}}",
                    sid);
    CU_ASSERT_EQUAL(json_array_size(json_object_get(result_of(a), "tools")), 0);
    CU_ASSERT_PTR_NULL(json_object_get(result_of(a), "nextCursor"));
    json_decref(a);
    /* Notifications and responses: 202 with no body. */
    static const char *const quiet[] = {
        "{\"session\":\"%s\",\"message\":{\"jsonrpc\":\"2.0\","
        "\"method\":\"notifications/initialized\"}}",
        "{\"session\":\"%s\",\"message\":{\"jsonrpc\":\"2.0\","
        "\"method\":\"notifications/cancelled\",\"params\":{"
        "\"requestId\":99}}}",
        "{\"session\":\"%s\",\"message\":{\"jsonrpc\":\"2.0\",\"id\":\"s1\","
        "\"result\":{}}}",
    };
    for (size_t i = 0; i < sizeof quiet / sizeof *quiet; i++) {
        a = rpc(quiet[i], sid);
        CU_ASSERT_EQUAL(status_of(a), 202);
        CU_ASSERT(json_is_null(json_object_get(a, "message")));
        json_decref(a);
    }
    end_session(sid);
    CU_ASSERT_EQUAL(omni_mcp_front_sessions(front), 0);
    /* Deleted: gone for every later request. */
    a = rpc("{\"session\":\"%s\",\"delete\":true}", sid);
    CU_ASSERT_EQUAL(status_of(a), 404);
    CU_ASSERT_EQUAL(code_of(a), -32001);
    json_decref(a);
    free(sid);
}

/* OMNI_MCP_MAX_SESSIONS=2: the third initialize gets 503. */
static void test_session_cap(void)
{
    char *s1 = new_session(), *s2 = new_session();
    CU_ASSERT_PTR_NOT_NULL_FATAL(s1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s2);
    CU_ASSERT_STRING_NOT_EQUAL(s1, s2);
    json_t *a = rpc(INIT, NULL);
    CU_ASSERT_EQUAL(status_of(a), 503);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg_of(a), "too many sessions"));
    json_decref(a);
    end_session(s1);
    end_session(s2);
    free(s1);
    free(s2);
}

/* The stateless era: the _meta envelope, no session. */
static void test_stateless(void)
{
#define META(v)                                                                \
    "\"_meta\":{\"io.modelcontextprotocol/protocolVersion\":\"" v "\"}"
    json_t *a = rpc("{\"session\":null,\"message\":{\"jsonrpc\":\"2.0\","
                    "\"id\":1,\"method\":\"server/discover\",\"params\":{" META(
                        OMNI_MCP_V_MODERN) "}}}%s",
                    NULL);
    CU_ASSERT_EQUAL(status_of(a), 200);
    const json_t *r = result_of(a);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_array_get(
                               json_object_get(r, "supportedVersions"), 0)),
                           OMNI_MCP_V_MODERN);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(r, "resultType")),
                           "complete");
    json_decref(a);

    a = rpc("{\"session\":null,\"message\":{\"jsonrpc\":\"2.0\","
            "\"id\":2,\"method\":\"tools/list\",\"params\":{" META(
                OMNI_MCP_V_MODERN) "}}}%s",
            NULL);
    CU_ASSERT_EQUAL(status_of(a), 200);
    CU_ASSERT_STRING_EQUAL(
        json_string_value(json_object_get(result_of(a), "cacheScope")),
        "private");
    json_decref(a);

    a = rpc("{\"session\":null,\"message\":{\"jsonrpc\":\"2.0\","
            "\"id\":3,\"method\":\"tools/list\",\"params\":{" META(
                "2025-06-18") "}}}%s",
            NULL);
    CU_ASSERT_EQUAL(status_of(a), 400);
    CU_ASSERT_EQUAL(code_of(a), -32022);
    CU_ASSERT_STRING_EQUAL(
        json_string_value(json_object_get(
            json_object_get(
                json_object_get(json_object_get(a, "message"), "error"),
                "data"),
            "requested")),
        "2025-06-18");
    json_decref(a);

    a = rpc("{\"session\":null,\"message\":{\"jsonrpc\":\"2.0\","
            "\"id\":4,\"method\":\"prompts/list\",\"params\":{" META(
                OMNI_MCP_V_MODERN) "}}}%s",
            NULL);
    CU_ASSERT_EQUAL(code_of(a), -32601);
    json_decref(a);

    a = rpc("{\"session\":null,\"message\":{\"jsonrpc\":\"2.0\","
            "\"id\":5,\"method\":\"tools/call\",\"params\":{\"name\":"
            "\"x__y\"," META(OMNI_MCP_V_MODERN) "}}}%s",
            NULL);
    CU_ASSERT_EQUAL(code_of(a), -32602);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg_of(a), "x__y"));
    json_decref(a);

    /* A notification: accepted, nothing to answer. */
    a = rpc("{\"session\":null,\"message\":{\"jsonrpc\":\"2.0\","
            "\"method\":\"notifications/x\",\"params\":{" META(
                OMNI_MCP_V_MODERN) "}}}%s",
            NULL);
    CU_ASSERT_EQUAL(status_of(a), 202);
    json_decref(a);
    CU_ASSERT_EQUAL(omni_mcp_front_sessions(front), 0);
#undef META
}

struct lis {
    int pushes, ends;
    char last[128];
};

static void on_push(void *arg, const char *json, size_t n)
{
    struct lis *l = arg;
    l->pushes++;
    snprintf(l->last, sizeof l->last, "%.*s", (int)n, json);
}

static void on_end(void *arg)
{
    ((struct lis *)arg)->ends++;
}

/* Listen streams: unknown sessions refused, list_changed pushed, ended
 * by the drain and by the session's deletion. */
static void test_listen(void)
{
    char err[OMNI_ERR_LEN] = "";
    struct lis l1 = {0}, l2 = {0};
    CU_ASSERT_PTR_NULL(
        omni_mcp_front_listen(front, "nope", on_push, on_end, &l1, err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "nope"));
    CU_ASSERT_PTR_NULL(
        omni_mcp_front_listen(front, NULL, on_push, on_end, &l1, err));
    char *sid = new_session();
    CU_ASSERT_PTR_NOT_NULL_FATAL(sid);
    struct omni_mcp_listener *a =
        omni_mcp_front_listen(front, sid, on_push, on_end, &l1, err);
    struct omni_mcp_listener *b =
        omni_mcp_front_listen(front, sid, on_push, on_end, &l2, err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    omni_mcp_front_changed(front);
    CU_ASSERT_EQUAL(l1.pushes, 1);
    CU_ASSERT_EQUAL(l2.pushes, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(l1.last, "notifications/tools/list_changed"));
    /* One stream closed by its client: the other still gets news. */
    omni_mcp_front_unlisten(a);
    omni_mcp_front_unlisten(NULL);
    omni_mcp_front_changed(front);
    CU_ASSERT_EQUAL(l1.pushes, 1);
    CU_ASSERT_EQUAL(l2.pushes, 2);
    /* The drain ends the open stream (once). */
    omni_mcp_front_end_streams(front);
    CU_ASSERT_EQUAL(l2.ends, 1);
    CU_ASSERT_EQUAL(l1.ends, 0);
    /* Deleting a session ends its streams too. */
    b = omni_mcp_front_listen(front, sid, on_push, on_end, &l2, err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    end_session(sid);
    CU_ASSERT_EQUAL(l2.ends, 2);
    free(sid);
}

/* OMNI_MCP_SESSION_IDLE_MS=1000: an idle session is swept, one with a
 * listen stream is kept. */
static void test_sweep(void)
{
    char err[OMNI_ERR_LEN] = "";
    struct lis l = {0};
    char *idle = new_session(), *busy = new_session();
    CU_ASSERT_PTR_NOT_NULL_FATAL(idle);
    CU_ASSERT_PTR_NOT_NULL_FATAL(busy);
    struct omni_mcp_listener *x =
        omni_mcp_front_listen(front, busy, on_push, on_end, &l, err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(x);
    int64_t end = omni_now_ms() + 4000;
    while (omni_mcp_front_sessions(front) > 1 && omni_now_ms() < end) {
        struct timeval tv = {0, 50000};
        event_base_loopexit(base, &tv);
        event_base_dispatch(base);
    }
    CU_ASSERT_EQUAL(omni_mcp_front_sessions(front), 1);
    json_t *a = rpc("{\"session\":\"%s\",\"message\":{\"jsonrpc\":\"2.0\","
                    "\"id\":1,\"method\":\"ping\"}}",
                    idle);
    CU_ASSERT_EQUAL(status_of(a), 404);
    json_decref(a);
    a = rpc("{\"session\":\"%s\",\"message\":{\"jsonrpc\":\"2.0\","
            "\"id\":1,\"method\":\"ping\"}}",
            busy);
    CU_ASSERT_EQUAL(status_of(a), 200);
    json_decref(a);
    CU_ASSERT_EQUAL(l.ends, 0);
    omni_mcp_front_unlisten(x);
    end_session(busy);
    free(idle);
    free(busy);
}

static CU_TestInfo tests[] = {
    {"handshake-era requests", test_session_requests},
    {"session cap", test_session_cap},
    {"stateless era", test_stateless},
    {"listen streams", test_listen},
    {"idle sessions swept", test_sweep},
    CU_TEST_INFO_NULL,
};

CU_SuiteInfo omni_test_suites[] = {
    {"mcp_front", setup, teardown, NULL, NULL, tests},
    CU_SUITE_INFO_NULL,
};
