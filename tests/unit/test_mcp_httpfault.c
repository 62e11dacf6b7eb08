/*
 * test_mcp_httpfault - the Streamable HTTP transport (mcp_http) against
 * tests/mcp/http_fake.py, a server that fails on request: HTTP 500 with
 * a JSON-RPC error, 503 with text, an empty 200, a reply (JSON or SSE)
 * over mcp.max_line, a session the server forgot (initialize again,
 * resend once), an SSE reply with a foreign event, GET refused with
 * 405, a call cancelled in flight, and a server that went away (the
 * call fails, it does not hang).  Two more instances: one of the
 * stateless era (Mcp-Name, base64 for a non-ASCII name) and one whose
 * GET stream announces list_changed (the tools are listed again).  Runs the hub
 * on a real libevent loop.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mcp.h"
#include "omni_cfg.h"
#include "omni_time.h"
#include "mcp_testlib.h"
#include "unit.h"

static struct event_base *base;
static struct event *tick;
static struct omni_mcp_hub *hub;
/* h: handshake era, m: --modern, g: --get. */
static const char *const flags[3] = {NULL, "--modern", "--get"};
static pid_t pids[3];
static int ports[3];

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

static void call(const char *name, const char *args, struct result *r)
{
    CU_ASSERT(hub_call(base, hub, name, args, omni_now_ms() + 10000, r));
}

static bool has_echo(void *arg)
{
    (void)arg;
    return omni_mcp_catalog_find(&hub->cat, "h__echo") &&
           omni_mcp_catalog_find(&hub->cat, "m__echo") &&
           omni_mcp_catalog_find(&hub->cat, "g__echo");
}

static int free_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (bind(s, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(s, (struct sockaddr *)&a, &len) != 0)
        a.sin_port = 0;
    close(s);
    return ntohs(a.sin_port);
}

static bool port_open(void *arg)
{
    int port = *(int *)arg;
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bool ok = connect(s, (struct sockaddr *)&a, sizeof a) == 0;
    close(s);
    if (!ok)
        usleep(20000);
    return ok;
}

static int setup(void)
{
    setenv("OMNI_MCP_MAX_LINE", "1024", 1);
    setenv("OMNI_MCP_RESTART_MIN_MS", "50", 1);
    char err[OMNI_ERR_LEN];
    if (omni_cfg_load(NULL, err) != OMNI_OK) {
        fprintf(stderr, "config: %s\n", err);
        return 1;
    }
    base = event_base_new();
    tick = event_new(base, -1, EV_PERSIST, on_tick, NULL);
    struct timeval tv = {0, 20000};
    evtimer_add(tick, &tv);
    /* The runner starts tests from the top of the tree; the arm64 run
     * under qemu starts them from tests/. */
    const char *fake = access("tests/mcp/http_fake.py", R_OK) == 0
                           ? "tests/mcp/http_fake.py"
                           : "mcp/http_fake.py";
    for (int i = 0; i < 3; i++) {
        ports[i] = free_port();
        char ps[16];
        snprintf(ps, sizeof ps, "%d", ports[i]);
        fflush(NULL);
        pids[i] = fork();
        if (pids[i] == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            execl("/usr/bin/python3", "python3", fake, "--port", ps, flags[i],
                  (char *)NULL);
            _exit(127);
        }
        if (!run_until(base, port_open, &ports[i], 10000)) {
            fprintf(stderr, "http_fake.py did not start\n");
            return 1;
        }
    }
    char doc[512];
    snprintf(doc, sizeof doc,
             "{\"mcpServers\":{"
             "\"h\":{\"url\":\"http://127.0.0.1:%d/mcp\"},"
             "\"m\":{\"url\":\"http://127.0.0.1:%d/mcp\"},"
             "\"g\":{\"url\":\"http://127.0.0.1:%d/mcp\"}}}",
             ports[0], ports[1], ports[2]);
    struct omni_mcp_config cfg;
    if (omni_mcp_config_parse(doc, strlen(doc), &cfg, err) != OMNI_OK) {
        fprintf(stderr, "mcp config: %s\n", err);
        return 1;
    }
    hub = omni_mcp_hub_new(base, &cfg);
    return 0;
}

static int teardown(void)
{
    omni_mcp_hub_free(hub);
    event_free(tick);
    event_base_free(base);
    for (int i = 0; i < 3; i++) {
        if (pids[i] > 0) {
            kill(pids[i], SIGTERM);
            waitpid(pids[i], NULL, 0);
        }
    }
    omni_cfg_free();
    unsetenv("OMNI_MCP_MAX_LINE");
    unsetenv("OMNI_MCP_RESTART_MIN_MS");
    return 0;
}

/* The catalog came over an SSE reply; a plain call works. */
static void test_catalog_and_echo(void)
{
    CU_ASSERT_FATAL(run_until(base, has_echo, NULL, 10000));
    CU_ASSERT_PTR_NOT_NULL(omni_mcp_catalog_find(&hub->cat, "h__gone"));
    struct result r;
    call("h__echo", "{\"text\":\"over http\"}", &r);
    CU_ASSERT_EQUAL(r.err, OMNI_OK);
    CU_ASSERT_STRING_EQUAL(text0(r.res), "over http");
    json_decref(r.res);
}

/* Each failing reply ends the call with an error naming what happened;
 * the server stays usable after each. */
static void test_failures(void)
{
    static const struct {
        const char *tool, *words;
    } cases[] = {
        {"h__fail500", "boom"},
        {"h__fail503", "503"},
        {"h__empty", "answered HTTP 200"},
        {"h__big", "max_line"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        struct result r;
        call(cases[i].tool, "{}", &r);
        /* An error either as the call's error or as a tool result with
         * isError (upstream trouble the model sees). */
        bool failed =
            r.err != OMNI_OK || json_is_true(json_object_get(r.res, "isError"));
        const char *why = r.err != OMNI_OK ? r.msg : text0(r.res);
        if (!failed || !strstr(why, cases[i].words))
            fprintf(stderr, "%s: got %d '%s', want an error with '%s'\n",
                    cases[i].tool, r.err, why, cases[i].words);
        CU_ASSERT(failed);
        CU_ASSERT_PTR_NOT_NULL(strstr(why, cases[i].words));
        json_decref(r.res);
        call("h__echo", "{\"text\":\"still here\"}", &r);
        CU_ASSERT_EQUAL(r.err, OMNI_OK);
        CU_ASSERT_STRING_EQUAL(text0(r.res), "still here");
        json_decref(r.res);
    }
}

/* The server forgets our session (404): initialize again, resend once. */
static void test_session_gone(void)
{
    struct result r;
    call("h__gone", "{}", &r);
    if (r.err != OMNI_OK)
        fprintf(stderr, "gone: got %d '%s'\n", r.err, r.msg);
    CU_ASSERT_EQUAL(r.err, OMNI_OK);
    CU_ASSERT_STRING_EQUAL(text0(r.res), "after gone");
    json_decref(r.res);
    call("h__echo", "{\"text\":\"new session\"}", &r);
    CU_ASSERT_EQUAL(r.err, OMNI_OK);
    json_decref(r.res);
}

/* A call over SSE whose event is over mcp.max_line: dropped, and the
 * call ends at its deadline. */
static void test_big_event(void)
{
    struct result r;
    memset(&r, 0, sizeof r);
    int64_t t0 = omni_now_ms();
    omni_mcp_hub_call(hub, "h__bigsse", NULL, t0 + 800, on_done, &r);
    CU_ASSERT(run_until(base, is_done, &r, 10000));
    CU_ASSERT_NOT_EQUAL(r.err, OMNI_OK);
    CU_ASSERT(omni_now_ms() - t0 < 5000);
    json_decref(r.res);
}

/* A call cancelled in flight is never answered; the server stays in
 * use. */
static void test_cancel(void)
{
    struct result r;
    memset(&r, 0, sizeof r);
    json_t *args = json_pack("{s:i}", "ms", 2000);
    struct omni_mcp_call *c =
        omni_mcp_hub_call(hub, "h__sleep", args, 0, on_done, &r);
    json_decref(args);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    int64_t end = omni_now_ms() + 200;
    while (omni_now_ms() < end)
        event_base_loop(base, EVLOOP_ONCE);
    omni_mcp_call_cancel(c);
    struct result e;
    call("h__echo", "{\"text\":\"after cancel\"}", &e);
    CU_ASSERT_EQUAL(e.err, OMNI_OK);
    CU_ASSERT_STRING_EQUAL(text0(e.res), "after cancel");
    json_decref(e.res);
    CU_ASSERT_FALSE(r.done);
}

/* The stateless era over HTTP: Mcp-Name as is for ASCII, base64 in
 * the sentinel otherwise. */
static void test_modern_names(void)
{
    struct result r;
    call("m__echo", "{\"text\":\"stateless\"}", &r);
    CU_ASSERT_EQUAL(r.err, OMNI_OK);
    CU_ASSERT_STRING_EQUAL(text0(r.res), "stateless");
    json_decref(r.res);
    call("m__caf\xc3\xa9", "{}", &r);
    CU_ASSERT_EQUAL_FATAL(r.err, OMNI_OK);
    json_t *got = json_loads(text0(r.res), 0, NULL);
    json_t *names = json_object_get(got, "names");
    CU_ASSERT_EQUAL(json_array_size(names), 2);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_array_get(names, 0)), "echo");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_array_get(names, 1)),
                           "=?base64?Y2Fmw6k=?=");
    json_decref(got);
    json_decref(r.res);
}

/* list_changed on the GET stream: the tools are listed again (and the
 * stream, closed by the server, is reopened). */
static void test_get_stream(void)
{
    int64_t end = omni_now_ms() + 1500;
    while (omni_now_ms() < end)
        event_base_loop(base, EVLOOP_ONCE);
    struct result r;
    call("g__caf\xc3\xa9", "{}", &r);
    CU_ASSERT_EQUAL_FATAL(r.err, OMNI_OK);
    json_t *got = json_loads(text0(r.res), 0, NULL);
    json_int_t lists = json_integer_value(json_object_get(got, "lists"));
    if (lists < 2)
        fprintf(stderr, "g: got %lld tools/list, want 2 or more\n",
                (long long)lists);
    CU_ASSERT(lists >= 2);
    json_decref(got);
    json_decref(r.res);
}

/* The server goes away: a call fails with "cannot reach", not a hang. */
static void test_server_gone(void)
{
    kill(pids[0], SIGKILL);
    waitpid(pids[0], NULL, 0);
    pids[0] = 0;
    struct result r;
    call("h__echo", "{\"text\":\"x\"}", &r);
    CU_ASSERT_NOT_EQUAL(r.err, OMNI_OK);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.msg, "cannot reach"));
    json_decref(r.res);
}

static CU_TestInfo tests[] = {
    {"catalog over SSE, echo", test_catalog_and_echo},
    {"failing replies", test_failures},
    {"session forgotten", test_session_gone},
    {"SSE event over max_line", test_big_event},
    {"cancelled in flight", test_cancel},
    {"stateless era names", test_modern_names},
    {"GET stream list_changed", test_get_stream},
    {"server gone", test_server_gone},
    CU_TEST_INFO_NULL,
};

CU_SuiteInfo omni_test_suites[] = {
    {"mcp_httpfault", setup, teardown, NULL, NULL, tests},
    CU_SUITE_INFO_NULL,
};
