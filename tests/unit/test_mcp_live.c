/*
 * test_mcp_live - the MCP hub and Omni's MCP server side on a real
 * libevent loop against real servers nobody here wrote (the reference
 * servers everything, memory and filesystem over stdio, everything over
 * Streamable HTTP) and tests/mcp/fake_server.py for misbehaviour and
 * the stateless era.  No broker: the calls go straight to the hub, so
 * this checks the worker's core even where the broker is absent.
 * Skips (passing, with a note) without node and node_modules.
 */
#include <arpa/inet.h>
#include <fcntl.h>
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
#include "omni_alloc.h"
#include "omni_cfg.h"
#include "omni_log.h"
#include "omni_time.h"
#include "mcp_testlib.h"
#include "unit.h"

#define EVERYTHING "node_modules/@modelcontextprotocol/server-everything/dist/"
#define MEMORY     "node_modules/@modelcontextprotocol/server-memory/dist/index.js"
#define FILESYS                                                                \
    "node_modules/@modelcontextprotocol/server-filesystem/dist/index.js"

static struct event_base *base;
static struct event *tick;
static struct omni_mcp_hub *hub;
static struct omni_mcp_front *front;
static pid_t http_pid;
static char dir[] = "/tmp/omni-mcp-live-XXXXXX";
static char cwd[1024];
static bool skip;

/* ---- driving the loop ---- */

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

/* Call a tool and wait; r->res must be released by the caller. */
static void call(const char *name, const char *args, int64_t deadline,
                 struct result *r)
{
    CU_ASSERT(hub_call(base, hub, name, args, deadline, r));
}

static bool has_tools(void *arg)
{
    const char *const *names = arg;
    for (size_t i = 0; names[i]; i++)
        if (!omni_mcp_catalog_find(&hub->cat, names[i]))
            return false;
    return true;
}

/* ---- setup ---- */

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

static pid_t start_http(int port)
{
    pid_t pid = fork();
    if (pid == 0) {
        char p[16], opts[1200];
        /* Dies with the test, even if the test crashes. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        snprintf(p, sizeof p, "%d", port);
        snprintf(opts, sizeof opts, "--require %s/tests/mcp/loopback.cjs", cwd);
        setenv("PORT", p, 1);
        setenv("NODE_OPTIONS", opts, 1);
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        dup2(null, 2);
        execlp("node", "node", EVERYTHING "index.js", "streamableHttp",
               (char *)NULL);
        _exit(127);
    }
    return pid;
}

static int setup(void)
{
    char err[OMNI_ERR_LEN];
    if (access(EVERYTHING "index.js", R_OK) ||
        system("node --version >/dev/null 2>&1") != 0) {
        fprintf(stderr, "note: node or node_modules absent; live MCP tests "
                        "skip\n");
        skip = true;
        return 0;
    }
    if (!getcwd(cwd, sizeof cwd) || !mkdtemp(dir))
        return 1;
    omni_log_init("test_mcp_live");
    omni_cfg_load(NULL, err);
    omni_cfg_set("mcp.init_timeout_ms", "2500", err);
    omni_cfg_set("mcp.call_timeout_ms", "8000", err);
    omni_cfg_set("mcp.max_line", "65536", err);
    omni_cfg_set("mcp.restart_min_ms", "100", err);
    omni_cfg_set("mcp.restart_max_ms", "1000", err);
    int port = free_port();
    http_pid = start_http(port);
    char doc[8192];
    snprintf(doc, sizeof doc,
             "{\"mcpServers\":{"
             "\"everything\":{\"command\":\"node\",\"args\":[\"%s/" EVERYTHING
             "index.js\",\"stdio\"]},"
             "\"memory\":{\"command\":\"node\",\"args\":[\"%s/" MEMORY "\"],"
             "\"env\":{\"MEMORY_FILE_PATH\":\"%s/memory.jsonl\"}},"
             "\"fs\":{\"command\":\"node\",\"args\":[\"%s/" FILESYS "\","
             "\"%s\"]},"
             "\"fake\":{\"command\":\"/usr/bin/python3\",\"args\":["
             "\"%s/tests/mcp/fake_server.py\",\"--page\",\"2\",\"--dup\","
             "\"--early\",\"--pidfile\",\"%s/fake.pid\"]},"
             "\"modern\":{\"command\":\"/usr/bin/python3\",\"args\":["
             "\"%s/tests/mcp/fake_server.py\",\"--modern\"]},"
             "\"old\":{\"command\":\"/usr/bin/python3\",\"args\":["
             "\"%s/tests/mcp/fake_server.py\",\"--version\",\"2024-11-05\"]},"
             "\"silent\":{\"command\":\"/usr/bin/python3\",\"args\":["
             "\"%s/tests/mcp/fake_server.py\",\"--silent\"]},"
             "\"http\":{\"url\":\"http://127.0.0.1:%d/mcp\"},"
             "\"broken\":{\"url\":3}}}",
             cwd, cwd, dir, cwd, dir, cwd, dir, cwd, cwd, cwd, port);
    char path[256];
    snprintf(path, sizeof path, "%s/secret.txt", dir);
    FILE *f = fopen(path, "w");
    fputs("inside the root\n", f);
    fclose(f);
    struct omni_mcp_config cfg;
    if (omni_mcp_config_parse(doc, strlen(doc), &cfg, err) != OMNI_OK) {
        fprintf(stderr, "config: %s\n", err);
        return 1;
    }
    base = event_base_new();
    tick = event_new(base, -1, EV_PERSIST, on_tick, NULL);
    struct timeval tv = {0, 20000};
    evtimer_add(tick, &tv);
    hub = omni_mcp_hub_new(base, &cfg);
    front = omni_mcp_front_new(hub);
    return 0;
}

static int teardown(void)
{
    if (skip)
        return 0;
    omni_mcp_front_free(front);
    omni_mcp_hub_free(hub);
    event_free(tick);
    event_base_free(base);
    if (http_pid > 0) {
        kill(http_pid, SIGTERM);
        waitpid(http_pid, NULL, 0);
    }
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        return 1;
    omni_cfg_free();
    return 0;
}

/* ---- tests ---- */

static void test_catalog_from_all(void)
{
    if (skip)
        return;
    static const char *const want[] = {"everything__echo",
                                       "everything__get-sum",
                                       "memory__create_entities",
                                       "memory__read_graph",
                                       "fs__read_text_file",
                                       "fake__echo",
                                       "fake__dup",
                                       "fake__grow",
                                       "modern__echo",
                                       "http__echo",
                                       NULL};
    bool ok = run_until(base, has_tools, (void *)want, 30000);
    for (size_t i = 0; want[i]; i++)
        if (!omni_mcp_catalog_find(&hub->cat, want[i]))
            fprintf(stderr, "missing tool %s\n", want[i]);
    CU_ASSERT_FATAL(ok);
    for (size_t i = 1; i < hub->cat.n; i++)
        CU_ASSERT(strcmp(hub->cat.tools[i - 1].name, hub->cat.tools[i].name) <
                  0);
    struct omni_mcp_up *m = omni_mcp_hub_server(hub, "modern", 6);
    struct omni_mcp_up *f = omni_mcp_hub_server(hub, "fake", 4);
    struct omni_mcp_up *e = omni_mcp_hub_server(hub, "everything", 10);
    CU_ASSERT_EQUAL(m->era, OMNI_MCP_ERA_MODERN);
    CU_ASSERT_EQUAL(f->era, OMNI_MCP_ERA_LEGACY);
    CU_ASSERT_EQUAL(e->era, OMNI_MCP_ERA_LEGACY);
    CU_ASSERT_STRING_EQUAL(e->version, "2025-11-25");
    /* paged list (2 per page) with "dup" twice: listed once */
    CU_ASSERT_EQUAL(json_array_size(f->tools), 8);
    json_t *fake_only = json_pack("{s:[s]}", "servers", "fake");
    char err[OMNI_ERR_LEN];
    json_t *l = omni_mcp_catalog_json(&hub->cat, fake_only, err);
    CU_ASSERT_EQUAL(json_array_size(json_object_get(l, "tools")), 7);
    json_decref(l);
    json_decref(fake_only);
    /* an unsupported version answered to initialize is refused */
    struct omni_mcp_up *old = omni_mcp_hub_server(hub, "old", 3);
    CU_ASSERT_NOT_EQUAL(old->state, OMNI_MCP_S_READY);
    CU_ASSERT_PTR_NOT_NULL(strstr(old->why, "2024-11-05"));
}

static void test_calls(void)
{
    if (skip)
        return;
    struct result r;
    call("everything__echo", "{\"message\":\"hi\"}", 0, &r);
    CU_ASSERT_EQUAL(r.err, OMNI_OK);
    CU_ASSERT_STRING_EQUAL(text0(r.res), "Echo: hi");
    json_decref(r.res);
    call("everything__get-sum", "{\"a\":2,\"b\":3}", 0, &r);
    CU_ASSERT_EQUAL(r.err, OMNI_OK);
    CU_ASSERT_PTR_NOT_NULL(strstr(text0(r.res), "5"));
    json_decref(r.res);
    call("everything__get-structured-content", "{\"location\":\"New York\"}", 0,
         &r);
    CU_ASSERT_EQUAL(r.err, OMNI_OK);
    CU_ASSERT(json_is_object(json_object_get(r.res, "structuredContent")));
    json_decref(r.res);
    call("http__echo", "{\"message\":\"over http\"}", 0, &r);
    CU_ASSERT_EQUAL(r.err, OMNI_OK);
    CU_ASSERT_STRING_EQUAL(text0(r.res), "Echo: over http");
    json_decref(r.res);
    call("modern__echo", "{\"text\":\"stateless\"}", 0, &r);
    CU_ASSERT_EQUAL(r.err, OMNI_OK);
    CU_ASSERT_STRING_EQUAL(text0(r.res), "stateless");
    json_decref(r.res);
    call("memory__create_entities",
         "{\"entities\":[{\"name\":\"omni\",\"entityType\":\"gateway\","
         "\"observations\":[\"speaks MCP\"]}]}",
         0, &r);
    CU_ASSERT_EQUAL(r.err, OMNI_OK);
    json_decref(r.res);
    call("memory__read_graph", "{}", 0, &r);
    CU_ASSERT_EQUAL(r.err, OMNI_OK);
    CU_ASSERT_PTR_NOT_NULL(strstr(text0(r.res), "speaks MCP"));
    json_decref(r.res);
    char args[512];
    snprintf(args, sizeof args, "{\"path\":\"%s/secret.txt\"}", dir);
    call("fs__read_text_file", args, 0, &r);
    CU_ASSERT_EQUAL(r.err, OMNI_OK);
    CU_ASSERT_PTR_NOT_NULL(strstr(text0(r.res), "inside the root"));
    CU_ASSERT(!json_is_true(json_object_get(r.res, "isError")));
    json_decref(r.res);
    call("fs__read_text_file", "{\"path\":\"/etc/hostname\"}", 0, &r);
    CU_ASSERT_EQUAL(r.err, OMNI_OK);
    CU_ASSERT(json_is_true(json_object_get(r.res, "isError")));
    json_decref(r.res);
    call("nope__tool", "{}", 0, &r);
    CU_ASSERT_EQUAL(r.err, OMNI_E_NOT_FOUND);
    call("everything__nope", "{}", 0, &r);
    CU_ASSERT_EQUAL(r.err, OMNI_E_NOT_FOUND);
    call("everything__echo", "[1]", 0, &r);
    CU_ASSERT_EQUAL(r.err, OMNI_E_BAD_REQUEST);
}

/* Many calls in flight at once, answered in whatever order. */
static bool all_done(void *arg)
{
    struct result *r = arg;
    for (int i = 0; i < 32; i++)
        if (!r[i].done)
            return false;
    return true;
}

static void test_concurrent(void)
{
    if (skip)
        return;
    struct result r[32];
    memset(r, 0, sizeof r);
    for (int i = 0; i < 32; i++) {
        char args[64];
        snprintf(args, sizeof args, "{\"message\":\"m%d\"}", i);
        json_t *a = json_loads(args, 0, NULL);
        omni_mcp_hub_call(hub, i % 2 ? "everything__echo" : "http__echo", a, 0,
                          on_done, &r[i]);
        json_decref(a);
    }
    CU_ASSERT_FATAL(run_until(base, all_done, r, 15000));
    for (int i = 0; i < 32; i++) {
        char want[64];
        snprintf(want, sizeof want, "Echo: m%d", i);
        CU_ASSERT_EQUAL(r[i].err, OMNI_OK);
        if (r[i].res)
            CU_ASSERT_STRING_EQUAL(text0(r[i].res), want);
        json_decref(r[i].res);
    }
}

static void test_misbehaviour(void)
{
    if (skip)
        return;
    struct result r;
    /* malformed lines and non-JSON-RPC objects are dropped, the reply
     * behind them arrives */
    call("fake__garbage", "{}", 0, &r);
    CU_ASSERT_EQUAL(r.err, OMNI_OK);
    CU_ASSERT_STRING_EQUAL(text0(r.res), "after garbage");
    json_decref(r.res);
    /* a reply over mcp.max_line fails that call at once, clearly */
    int64_t t0 = omni_now_ms();
    call("fake__big", "{\"bytes\":200000}", 0, &r);
    CU_ASSERT_EQUAL(r.err, OMNI_E_UPSTREAM);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.msg, "max_line"));
    CU_ASSERT(omni_now_ms() - t0 < 3000);
    call("fake__echo", "{\"text\":\"still fine\"}", 0, &r);
    CU_ASSERT_EQUAL(r.err, OMNI_OK);
    CU_ASSERT_STRING_EQUAL(text0(r.res), "still fine");
    json_decref(r.res);
    /* a deadline: TIMEOUT, and the server is told */
    call("fake__sleep", "{\"ms\":3000}", omni_now_ms() + 300, &r);
    CU_ASSERT_EQUAL(r.err, OMNI_E_TIMEOUT);
    call("fake__cancelled", "{}", 0, &r);
    CU_ASSERT_EQUAL(r.err, OMNI_OK);
    CU_ASSERT(r.res && strcmp(text0(r.res), "[]") != 0);
    json_decref(r.res);
    /* a server that never answers initialize: unavailable, named */
    call("silent__anything", "{}", 0, &r);
    CU_ASSERT_EQUAL(r.err, OMNI_E_UNAVAILABLE);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.msg, "'silent'"));
}

struct listen_got {
    int pushes;
    int ends;
};

static void on_push(void *arg, const char *json, size_t n)
{
    struct listen_got *g = arg;
    if (memmem(json, n, "notifications/tools/list_changed", 32))
        g->pushes++;
}

static void on_end(void *arg)
{
    ((struct listen_got *)arg)->ends++;
}

struct rpc_got {
    bool done;
    json_t *answer;
};

static void on_rpc(void *arg, json_t *answer)
{
    struct rpc_got *g = arg;
    g->done = true;
    g->answer = json_incref(answer);
}

static bool rpc_done(void *arg)
{
    return ((struct rpc_got *)arg)->done;
}

/* Send one rpc body and wait for its answer (caller releases it). */
static json_t *rpc(const char *fmt, const char *session)
{
    char body[2048];
    snprintf(body, sizeof body, fmt, session ? session : "");
    json_t *b = json_loads(body, 0, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    struct rpc_got g = {0};
    omni_mcp_front_rpc(front, b, 0, on_rpc, &g);
    json_decref(b);
    CU_ASSERT(run_until(base, rpc_done, &g, 15000));
    return g.answer;
}

static int status_of(const json_t *a)
{
    return (int)json_integer_value(json_object_get(a, "status"));
}

static void test_front(void)
{
    if (skip)
        return;
    json_t *a = rpc("{\"session\":null,\"message\":{\"jsonrpc\":\"2.0\","
                    "\"id\":1,\"method\":\"initialize\",\"params\":{"
                    "\"protocolVersion\":\"2025-06-18\",\"capabilities\":{},"
                    "\"clientInfo\":{\"name\":\"t\",\"version\":\"0\"}}}}%s",
                    NULL);
    CU_ASSERT_EQUAL(status_of(a), 200);
    char sid[64];
    snprintf(sid, sizeof sid, "%s",
             json_string_value(json_object_get(a, "session")));
    CU_ASSERT_EQUAL(strlen(sid), 32);
    json_t *res = json_object_get(json_object_get(a, "message"), "result");
    CU_ASSERT_STRING_EQUAL(
        json_string_value(json_object_get(res, "protocolVersion")),
        "2025-06-18");
    CU_ASSERT(json_is_true(json_object_get(
        json_object_get(json_object_get(res, "capabilities"), "tools"),
        "listChanged")));
    json_decref(a);

    a = rpc("{\"session\":\"%s\",\"message\":{\"jsonrpc\":\"2.0\",\"method\":"
            "\"notifications/initialized\"}}",
            sid);
    CU_ASSERT_EQUAL(status_of(a), 202);
    CU_ASSERT(json_is_null(json_object_get(a, "message")));
    json_decref(a);

    /* tools/list, every page */
    size_t total = 0;
    char cursor[512] = "";
    int pages = 0;
    do {
        char fmt[1024];
        snprintf(fmt, sizeof fmt,
                 "{\"session\":\"%%s\",\"message\":{\"jsonrpc\":\"2.0\","
                 "\"id\":2,\"method\":\"tools/list\"%s%s%s}}",
                 cursor[0] ? ",\"params\":{\"cursor\":\"" : "", cursor,
                 cursor[0] ? "\"}" : "");
        a = rpc(fmt, sid);
        CU_ASSERT_EQUAL(status_of(a), 200);
        json_t *r = json_object_get(json_object_get(a, "message"), "result");
        total += json_array_size(json_object_get(r, "tools"));
        const char *next = json_string_value(json_object_get(r, "nextCursor"));
        snprintf(cursor, sizeof cursor, "%s", next ? next : "");
        pages++;
        json_decref(a);
    } while (cursor[0] && pages < 10);
    CU_ASSERT_EQUAL(total, hub->cat.n);
    CU_ASSERT(pages >= 2);

    a = rpc("{\"session\":\"%s\",\"message\":{\"jsonrpc\":\"2.0\",\"id\":3,"
            "\"method\":\"tools/call\",\"params\":{\"name\":"
            "\"everything__echo\",\"arguments\":{\"message\":\"via front\"}}}}",
            sid);
    CU_ASSERT_EQUAL(status_of(a), 200);
    json_t *r = json_object_get(json_object_get(a, "message"), "result");
    CU_ASSERT_STRING_EQUAL(text0(r), "Echo: via front");
    json_decref(a);

    a = rpc("{\"session\":\"%s\",\"message\":{\"jsonrpc\":\"2.0\",\"id\":4,"
            "\"method\":\"tools/call\",\"params\":{\"name\":\"no__such\"}}}",
            sid);
    CU_ASSERT_EQUAL(
        json_integer_value(json_object_get(
            json_object_get(json_object_get(a, "message"), "error"), "code")),
        -32602);
    json_decref(a);

    a = rpc("{\"session\":\"%s\",\"message\":{\"jsonrpc\":\"2.0\",\"id\":5,"
            "\"method\":\"ping\"}}",
            sid);
    CU_ASSERT(json_is_object(
        json_object_get(json_object_get(a, "message"), "result")));
    json_decref(a);

    /* list_changed from an upstream reaches the listener */
    struct listen_got lg = {0};
    char err[OMNI_ERR_LEN];
    struct omni_mcp_listener *l =
        omni_mcp_front_listen(front, sid, on_push, on_end, &lg, err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(l);
    CU_ASSERT_PTR_NULL(
        omni_mcp_front_listen(front, "nope", on_push, on_end, &lg, err));
    struct result cr;
    call("fake__grow", "{\"name\":\"fresh\"}", 0, &cr);
    CU_ASSERT_EQUAL(cr.err, OMNI_OK);
    json_decref(cr.res);
    static const char *const fresh[] = {"fake__fresh", NULL};
    CU_ASSERT(run_until(base, has_tools, (void *)fresh, 5000));
    CU_ASSERT_EQUAL(lg.pushes, 1);
    omni_mcp_front_unlisten(l);

    /* errors: unknown session 404, none 400, bad version 400 */
    a = rpc("{\"session\":\"feedface\",\"message\":{\"jsonrpc\":\"2.0\","
            "\"id\":6,\"method\":\"tools/list\"}}%s",
            NULL);
    CU_ASSERT_EQUAL(status_of(a), 404);
    json_decref(a);
    a = rpc("{\"session\":null,\"message\":{\"jsonrpc\":\"2.0\",\"id\":7,"
            "\"method\":\"tools/list\"}}%s",
            NULL);
    CU_ASSERT_EQUAL(status_of(a), 400);
    json_decref(a);
    a = rpc("{\"session\":\"%s\",\"protocol_version\":\"1999-01-01\","
            "\"message\":{\"jsonrpc\":\"2.0\",\"id\":8,\"method\":\"ping\"}}",
            sid);
    CU_ASSERT_EQUAL(status_of(a), 400);
    json_decref(a);
    a = rpc("{\"session\":\"%s\",\"message\":[1]}", sid);
    CU_ASSERT_EQUAL(status_of(a), 400);
    json_decref(a);

    /* stateless era: no session, _meta envelope */
    a = rpc("{\"session\":null,\"message\":{\"jsonrpc\":\"2.0\",\"id\":9,"
            "\"method\":\"server/discover\",\"params\":{\"_meta\":{"
            "\"io.modelcontextprotocol/protocolVersion\":\"2026-07-28\"}}}}%s",
            NULL);
    CU_ASSERT_EQUAL(status_of(a), 200);
    r = json_object_get(json_object_get(a, "message"), "result");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(r, "resultType")),
                           "complete");
    json_decref(a);
    a = rpc("{\"session\":null,\"message\":{\"jsonrpc\":\"2.0\",\"id\":10,"
            "\"method\":\"tools/list\",\"params\":{\"_meta\":{"
            "\"io.modelcontextprotocol/protocolVersion\":\"2030-01-01\"}}}}%s",
            NULL);
    CU_ASSERT_EQUAL(status_of(a), 400);
    CU_ASSERT_EQUAL(
        json_integer_value(json_object_get(
            json_object_get(json_object_get(a, "message"), "error"), "code")),
        -32022);
    json_decref(a);

    /* delete: 200, then the session is gone */
    a = rpc("{\"session\":\"%s\",\"message\":null,\"delete\":true}", sid);
    CU_ASSERT_EQUAL(status_of(a), 200);
    json_decref(a);
    a = rpc("{\"session\":\"%s\",\"message\":{\"jsonrpc\":\"2.0\",\"id\":11,"
            "\"method\":\"ping\"}}",
            sid);
    CU_ASSERT_EQUAL(status_of(a), 404);
    json_decref(a);
    CU_ASSERT_EQUAL(omni_mcp_front_sessions(front), 0);
}

static bool fake_ready(void *arg)
{
    (void)arg;
    struct omni_mcp_up *u = omni_mcp_hub_server(hub, "fake", 4);
    return u->state == OMNI_MCP_S_READY;
}

/* A stdio server killed mid-call: that call fails clearly, the server
 * comes back, later calls work. */
static void test_killed_mid_call(void)
{
    if (skip)
        return;
    char path[256];
    snprintf(path, sizeof path, "%s/fake.pid", dir);
    FILE *f = fopen(path, "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    long pid = 0;
    CU_ASSERT(fscanf(f, "%ld", &pid) == 1);
    fclose(f);
    struct result r = {0};
    json_t *a = json_pack("{s:i}", "ms", 5000);
    omni_mcp_hub_call(hub, "fake__sleep", a, 0, on_done, &r);
    json_decref(a);
    /* let the request reach the child, then kill it */
    int64_t until = omni_now_ms() + 300;
    while (omni_now_ms() < until)
        event_base_loop(base, EVLOOP_ONCE);
    CU_ASSERT(kill((pid_t)pid, SIGKILL) == 0);
    CU_ASSERT(run_until(base, is_done, &r, 5000));
    CU_ASSERT_EQUAL(r.err, OMNI_E_UNAVAILABLE);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.msg, "went away"));
    CU_ASSERT_PTR_NOT_NULL(strstr(r.msg, "signal 9"));
    CU_ASSERT(run_until(base, fake_ready, NULL, 10000));
    call("fake__echo", "{\"text\":\"back\"}", 0, &r);
    CU_ASSERT_EQUAL(r.err, OMNI_OK);
    CU_ASSERT_STRING_EQUAL(text0(r.res), "back");
    json_decref(r.res);
}

static void test_gather(void)
{
    if (skip)
        return;
    struct result r = {0};
    omni_mcp_hub_gather(hub, "prompts", on_done, &r);
    CU_ASSERT(run_until(base, is_done, &r, 10000));
    CU_ASSERT_EQUAL(r.err, OMNI_OK);
    json_t *p = json_object_get(r.res, "prompts");
    CU_ASSERT(json_array_size(p) > 0);
    CU_ASSERT_PTR_NOT_NULL(
        strstr(json_string_value(json_object_get(json_array_get(p, 0), "name")),
               "__"));
    json_decref(r.res);
    memset(&r, 0, sizeof r);
    omni_mcp_hub_gather(hub, "resources", on_done, &r);
    CU_ASSERT(run_until(base, is_done, &r, 10000));
    CU_ASSERT_EQUAL(r.err, OMNI_OK);
    CU_ASSERT(json_array_size(json_object_get(r.res, "resources")) > 0);
    json_decref(r.res);
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
    return ok;
}

/* The HTTP server restarts and forgets our session: the next call gets
 * 400/404 for it, and the hub initializes again and retries once. */
static void test_http_session_lost(void)
{
    if (skip)
        return;
    struct omni_mcp_up *u = omni_mcp_hub_server(hub, "http", 4);
    int port = (int)strtol(strrchr(u->cfg->url, ':') + 1, NULL, 10);
    kill(http_pid, SIGTERM);
    waitpid(http_pid, NULL, 0);
    http_pid = start_http(port);
    CU_ASSERT_FATAL(run_until(base, port_open, &port, 10000));
    struct result r;
    call("http__echo", "{\"message\":\"new session\"}", 0, &r);
    if (r.err != OMNI_OK)
        fprintf(stderr, "http after restart: %s\n", r.msg);
    CU_ASSERT_EQUAL(r.err, OMNI_OK);
    CU_ASSERT_STRING_EQUAL(text0(r.res), "Echo: new session");
    json_decref(r.res);
}

static CU_TestInfo tests[] = {
    {"catalog from every server", test_catalog_from_all},
    {"tool calls", test_calls},
    {"concurrent calls, stdio and http", test_concurrent},
    {"misbehaving servers", test_misbehaviour},
    {"omni as an MCP server", test_front},
    {"server killed mid-call", test_killed_mid_call},
    {"prompts and resources", test_gather},
    {"http session lost", test_http_session_lost},
    CU_TEST_INFO_NULL,
};

CU_SuiteInfo omni_test_suites[] = {
    {"mcp_live", setup, teardown, NULL, NULL, tests},
    CU_SUITE_INFO_NULL,
};
