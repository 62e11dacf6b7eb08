/*
 * test_mcp_policy - the MCP worker's decisions, apart from any I/O:
 * pagination, the merged catalog (namespacing, order, collisions,
 * filters), protocol versions and the era probe, and config parsing.
 */
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <unistd.h>

#include "mcp.h"
#include "omni_alloc.h"
#include "omni_log.h"
#include "unit.h"

static json_t *J(const char *s)
{
    json_t *v = json_loads(s, JSON_DECODE_ANY, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    return v;
}

/* ---- pagination ---- */

static int page(struct omni_mcp_pager *g, const char *json, char *err)
{
    json_t *r = J(json);
    int rc = omni_mcp_pager_add(g, r, err);
    json_decref(r);
    return rc;
}

static void test_pager(void)
{
    struct omni_mcp_pager g;
    char err[OMNI_ERR_LEN];
    omni_mcp_pager_init(&g, "tools");
    CU_ASSERT_EQUAL(page(&g,
                         "{\"tools\":[{\"name\":\"a\"}],\"nextCursor\":"
                         "\"c1\"}",
                         err),
                    1);
    CU_ASSERT_STRING_EQUAL(g.cursor, "c1");
    CU_ASSERT_EQUAL(page(&g,
                         "{\"tools\":[{\"name\":\"b\"},{\"name\":\"c\"}],"
                         "\"nextCursor\":\"c2\"}",
                         err),
                    1);
    CU_ASSERT_EQUAL(page(&g, "{\"tools\":[],\"nextCursor\":\"\"}", err), 0);
    json_t *all = omni_mcp_pager_take(&g);
    CU_ASSERT_EQUAL(json_array_size(all), 3);
    json_decref(all);

    /* A cursor that comes back is a loop. */
    CU_ASSERT_EQUAL(page(&g, "{\"tools\":[],\"nextCursor\":\"x\"}", err), 1);
    CU_ASSERT_EQUAL(page(&g, "{\"tools\":[],\"nextCursor\":\"x\"}", err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "loops"));
    json_decref(omni_mcp_pager_take(&g));

    /* Malformed pages. */
    CU_ASSERT_EQUAL(page(&g, "{\"prompts\":[]}", err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "no 'tools' array"));
    CU_ASSERT_EQUAL(page(&g, "{\"tools\":[],\"nextCursor\":5}", err), -1);
    CU_ASSERT_EQUAL(page(&g, "[]", err), -1);
    json_decref(omni_mcp_pager_take(&g));

    /* Null cursor ends; the page limit stops an endless server. */
    CU_ASSERT_EQUAL(page(&g, "{\"tools\":[1],\"nextCursor\":null}", err), 0);
    json_decref(omni_mcp_pager_take(&g));
    int rc = 1;
    char buf[96];
    for (int i = 0; rc == 1 && i < OMNI_MCP_MAX_PAGES + 5; i++) {
        snprintf(buf, sizeof buf, "{\"tools\":[],\"nextCursor\":\"p%d\"}", i);
        rc = page(&g, buf, err);
    }
    CU_ASSERT_EQUAL(rc, -1);
    CU_ASSERT_EQUAL(g.pages, OMNI_MCP_MAX_PAGES);
    omni_mcp_pager_release(&g);
}

/* ---- catalog ---- */

struct refusals {
    int n;
    char last[512];
};

static void refused(void *arg, const char *msg)
{
    struct refusals *r = arg;
    r->n++;
    snprintf(r->last, sizeof r->last, "%s", msg);
}

static void test_catalog_merge(void)
{
    json_t *a = J("[{\"name\":\"zeta\",\"description\":\"z\",\"inputSchema\":"
                  "{\"type\":\"object\"}},{\"name\":\"alpha\"},"
                  "{\"name\":\"dup\"},{\"name\":\"dup\",\"description\":"
                  "\"second\"},{\"description\":\"no name\"}]");
    json_t *b = J("[{\"name\":\"echo\"},{\"name\":\"a.b-c\"}]");
    struct omni_mcp_source src[] = {
        {"files", a}, {"bravo", b}, {"empty", NULL}};
    struct omni_mcp_catalog cat;
    struct refusals r = {0};
    omni_mcp_catalog_build(&cat, src, 3, refused, &r);
    static const char *const want[] = {"bravo__a.b-c", "bravo__echo",
                                       "files__alpha", "files__dup",
                                       "files__zeta"};
    CU_ASSERT_EQUAL_FATAL(cat.n, 5);
    for (size_t i = 0; i < cat.n; i++) {
        if (strcmp(cat.tools[i].name, want[i]))
            fprintf(stderr, "catalog[%zu]: got %s, want %s\n", i,
                    cat.tools[i].name, want[i]);
        CU_ASSERT_STRING_EQUAL(cat.tools[i].name, want[i]);
    }
    /* two refusals: the nameless tool and the second "dup" */
    CU_ASSERT_EQUAL(r.n, 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.last, "collision"));
    CU_ASSERT_PTR_NOT_NULL(strstr(r.last, "files__dup"));
    const struct omni_mcp_tool *t = omni_mcp_catalog_find(&cat, "files__dup");
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    if (!t)
        return;
    CU_ASSERT_PTR_NULL(json_object_get(t->def, "description")); /* first */
    CU_ASSERT_EQUAL(t->server, 0);
    CU_ASSERT_STRING_EQUAL(t->tool, "dup");
    t = omni_mcp_catalog_find(&cat, "bravo__echo");
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    if (!t)
        return;
    CU_ASSERT_EQUAL(t->server, 1);
    CU_ASSERT_STRING_EQUAL(t->sname, "bravo");
    CU_ASSERT_PTR_NULL(omni_mcp_catalog_find(&cat, "bravo__nope"));
    CU_ASSERT_PTR_NULL(omni_mcp_catalog_find(&cat, "echo"));
    CU_ASSERT_EQUAL(omni_mcp_catalog_lower(&cat, "c"), 2);
    CU_ASSERT_EQUAL(omni_mcp_catalog_lower(&cat, "zzz"), 5);

    /* Same input in another server order: same catalog, and "same". */
    struct omni_mcp_catalog again;
    omni_mcp_catalog_build(&again, src, 3, NULL, NULL);
    CU_ASSERT(omni_mcp_catalog_same(&cat, &again));
    omni_mcp_catalog_release(&again);
    json_t *b2 = J("[{\"name\":\"echo\",\"description\":\"changed\"},"
                   "{\"name\":\"a.b-c\"}]");
    src[1].tools = b2;
    omni_mcp_catalog_build(&again, src, 3, NULL, NULL);
    CU_ASSERT(!omni_mcp_catalog_same(&cat, &again));
    omni_mcp_catalog_release(&again);

    json_t *tool = omni_mcp_catalog_tool(&cat.tools[4]);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(tool, "name")),
                           "files__zeta");
    CU_ASSERT_STRING_EQUAL(
        json_string_value(json_object_get(tool, "description")), "z");
    json_decref(tool);
    omni_mcp_catalog_release(&cat);
    json_decref(a);
    json_decref(b);
    json_decref(b2);
}

static void test_catalog_filter(void)
{
    json_t *a = J("[{\"name\":\"read\",\"description\":\"r\"},"
                  "{\"name\":\"write\"}]");
    json_t *b = J("[{\"name\":\"read\"},{\"name\":\"echo\"}]");
    struct omni_mcp_source src[] = {{"fs", a}, {"web", b}};
    struct omni_mcp_catalog cat;
    omni_mcp_catalog_build(&cat, src, 2, NULL, NULL);
    static const struct {
        const char *filter;
        const char *want; /* names joined by ',' or "ERR" */
    } cases[] = {
        {"null", "fs__read,fs__write,web__echo,web__read"},
        {"{}", "fs__read,fs__write,web__echo,web__read"},
        {"{\"servers\":[\"web\"]}", "web__echo,web__read"},
        {"{\"allowed_tools\":[\"read\"]}", "fs__read,web__read"},
        {"{\"servers\":[\"fs\"],\"allowed_tools\":[\"read\",\"web__echo\"]}",
         "fs__read"},
        {"{\"allowed_tools\":[\"web__echo\"]}", "web__echo"},
        {"{\"servers\":[]}", ""},
        {"{\"servers\":\"fs\"}", "ERR"},
        {"{\"allowed_tools\":[1]}", "ERR"},
        {"[]", "ERR"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        json_t *f = J(cases[i].filter);
        char err[OMNI_ERR_LEN];
        json_t *out = omni_mcp_catalog_json(&cat, f, err);
        char got[256] = "";
        if (!out) {
            snprintf(got, sizeof got, "ERR");
        } else {
            size_t k;
            json_t *t;
            json_array_foreach(json_object_get(out, "tools"), k, t)
            {
                size_t len = strlen(got);
                snprintf(got + len, sizeof got - len, "%s%s", k ? "," : "",
                         json_string_value(json_object_get(t, "name")));
                CU_ASSERT(json_is_object(json_object_get(t, "inputSchema")));
                CU_ASSERT(json_is_string(json_object_get(t, "server")));
                CU_ASSERT(json_is_string(json_object_get(t, "description")));
            }
        }
        if (strcmp(got, cases[i].want))
            fprintf(stderr, "filter %s: got '%s', want '%s'\n", cases[i].filter,
                    got, cases[i].want);
        CU_ASSERT_STRING_EQUAL(got, cases[i].want);
        json_decref(out);
        json_decref(f);
    }
    omni_mcp_catalog_release(&cat);
    json_decref(a);
    json_decref(b);
}

/* ---- versions and eras ---- */

static void test_versions(void)
{
    CU_ASSERT_STRING_EQUAL(omni_mcp_version_accept("2025-06-18"), "2025-06-18");
    CU_ASSERT_STRING_EQUAL(omni_mcp_version_accept("2025-03-26"), "2025-03-26");
    CU_ASSERT_PTR_NULL(omni_mcp_version_accept("2024-11-05"));
    CU_ASSERT_PTR_NULL(omni_mcp_version_accept("2026-07-28"));
    CU_ASSERT_PTR_NULL(omni_mcp_version_accept(NULL));
    CU_ASSERT_STRING_EQUAL(omni_mcp_version_negotiate("2025-06-18"),
                           "2025-06-18");
    CU_ASSERT_STRING_EQUAL(omni_mcp_version_negotiate("1999-01-01"),
                           "2025-11-25");
    CU_ASSERT_STRING_EQUAL(omni_mcp_version_negotiate(NULL), "2025-11-25");
    CU_ASSERT(omni_mcp_version_known("2025-11-25"));
    CU_ASSERT(!omni_mcp_version_known("2025-11-26"));
    json_t *meta = omni_mcp_modern_meta();
    CU_ASSERT_STRING_EQUAL(
        json_string_value(
            json_object_get(meta, "io.modelcontextprotocol/protocolVersion")),
        "2026-07-28");
    CU_ASSERT(json_is_object(
        json_object_get(meta, "io.modelcontextprotocol/clientCapabilities")));
    json_decref(meta);
}

static void test_era_decide(void)
{
    /* NOLINTNEXTLINE(clang-analyzer-optin.performance.Padding) */
    static const struct {
        enum omni_mcp_tp tp;
        enum omni_mcp_outcome outcome;
        int status;
        const char *json; /* result or error */
        enum omni_mcp_era want;
    } cases[] = {
        /* stdio */
        {OMNI_MCP_STDIO, OMNI_MCP_OK, 0,
         "{\"supportedVersions\":[\"2026-07-28\"],\"capabilities\":{}}",
         OMNI_MCP_ERA_MODERN},
        {OMNI_MCP_STDIO, OMNI_MCP_OK, 0, "{\"capabilities\":{}}",
         OMNI_MCP_ERA_MODERN},
        {OMNI_MCP_STDIO, OMNI_MCP_OK, 0,
         "{\"supportedVersions\":[\"2025-11-25\"]}", OMNI_MCP_ERA_LEGACY},
        {OMNI_MCP_STDIO, OMNI_MCP_RPC_ERROR, 0,
         "{\"code\":-32601,\"message\":\"Method not found\"}",
         OMNI_MCP_ERA_LEGACY},
        {OMNI_MCP_STDIO, OMNI_MCP_RPC_ERROR, 0,
         "{\"code\":-32022,\"data\":{\"supported\":[\"2026-07-28\"],"
         "\"requested\":\"x\"}}",
         OMNI_MCP_ERA_MODERN},
        {OMNI_MCP_STDIO, OMNI_MCP_RPC_ERROR, 0,
         "{\"code\":-32022,\"data\":{\"supported\":[\"2025-11-25\"]}}",
         OMNI_MCP_ERA_LEGACY},
        {OMNI_MCP_STDIO, OMNI_MCP_RPC_ERROR, 0, "{\"code\":-32021}",
         OMNI_MCP_ERA_MODERN},
        {OMNI_MCP_STDIO, OMNI_MCP_RPC_ERROR, 0, "{\"code\":-32602}",
         OMNI_MCP_ERA_LEGACY},
        {OMNI_MCP_STDIO, OMNI_MCP_TIMEOUT, 0, NULL, OMNI_MCP_ERA_LEGACY},
        {OMNI_MCP_STDIO, OMNI_MCP_DOWN, 0, NULL, OMNI_MCP_ERA_UNKNOWN},
        /* HTTP */
        {OMNI_MCP_HTTP, OMNI_MCP_HTTP_ERROR, 400,
         "{\"code\":-32020,\"message\":\"header mismatch\"}",
         OMNI_MCP_ERA_MODERN},
        {OMNI_MCP_HTTP, OMNI_MCP_HTTP_ERROR, 400,
         "{\"code\":-32000,\"message\":\"Bad Request: Server not "
         "initialized\"}",
         OMNI_MCP_ERA_LEGACY},
        {OMNI_MCP_HTTP, OMNI_MCP_HTTP_ERROR, 400, NULL, OMNI_MCP_ERA_LEGACY},
        {OMNI_MCP_HTTP, OMNI_MCP_HTTP_ERROR, 404, "{\"code\":-32020}",
         OMNI_MCP_ERA_LEGACY},
        {OMNI_MCP_HTTP, OMNI_MCP_HTTP_ERROR, 405, NULL, OMNI_MCP_ERA_LEGACY},
        {OMNI_MCP_HTTP, OMNI_MCP_OK, 200,
         "{\"supportedVersions\":"
         "[\"2026-07-28\",\"2025-11-25\"]}",
         OMNI_MCP_ERA_MODERN},
        {OMNI_MCP_HTTP, OMNI_MCP_RPC_ERROR, 200, "{\"code\":-32601}",
         OMNI_MCP_ERA_LEGACY},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        json_t *v = cases[i].json ? J(cases[i].json) : NULL;
        struct omni_mcp_reply r = {.outcome = cases[i].outcome,
                                   .http_status = cases[i].status};
        if (cases[i].outcome == OMNI_MCP_OK)
            r.result = v;
        else
            r.error = v;
        enum omni_mcp_era got = omni_mcp_era_decide(cases[i].tp, &r);
        if (got != cases[i].want)
            fprintf(stderr, "era case %zu: got %d, want %d\n", i, got,
                    cases[i].want);
        CU_ASSERT_EQUAL(got, cases[i].want);
        json_decref(v);
    }
}

/* ---- config ---- */

static void test_config_good(void)
{
    const char *doc =
        "{\"mcpServers\":{"
        "\"zfs\":{\"command\":\"node\",\"args\":[\"s.js\",\"/tmp\"],"
        "\"env\":{\"A\":\"1\",\"PATH\":\"/x\"}},"
        "\"remote\":{\"type\":\"http\",\"url\":\"http://127.0.0.1:9/mcp\","
        "\"headers\":{\"Authorization\":\"Bearer s3cr3t-token\"}},"
        "\"off\":{\"command\":\"x\",\"disabled\":true},"
        "\"plain\":{\"type\":\"stdio\",\"command\":\"srv\"}}}";
    struct omni_mcp_config cfg;
    char err[OMNI_ERR_LEN];
    CU_ASSERT_EQUAL_FATAL(omni_mcp_config_parse(doc, strlen(doc), &cfg, err),
                          OMNI_OK);
    CU_ASSERT_EQUAL_FATAL(cfg.n, 3);
    CU_ASSERT_EQUAL(cfg.nerrors, 0);
    CU_ASSERT_STRING_EQUAL(cfg.servers[0].name, "plain"); /* sorted */
    CU_ASSERT_STRING_EQUAL(cfg.servers[1].name, "remote");
    CU_ASSERT_STRING_EQUAL(cfg.servers[2].name, "zfs");
    CU_ASSERT_EQUAL(cfg.servers[1].tp, OMNI_MCP_HTTP);
    CU_ASSERT_STRING_EQUAL(cfg.servers[1].headers[0],
                           "Authorization: Bearer s3cr3t-token");
    CU_ASSERT_PTR_NULL(cfg.servers[1].headers[1]);
    const struct omni_mcp_server_cfg *z = &cfg.servers[2];
    CU_ASSERT_EQUAL(z->tp, OMNI_MCP_STDIO);
    CU_ASSERT_STRING_EQUAL(z->argv[0], "node");
    CU_ASSERT_STRING_EQUAL(z->argv[1], "s.js");
    CU_ASSERT_STRING_EQUAL(z->argv[2], "/tmp");
    CU_ASSERT_PTR_NULL(z->argv[3]);
    CU_ASSERT_STRING_EQUAL(z->env[0], "A=1");
    CU_ASSERT_STRING_EQUAL(z->env[1], "PATH=/x");
    CU_ASSERT_PTR_NULL(cfg.servers[0].env[0]);
    /* header values are secrets */
    char out[128];
    omni_redact_str("sent s3cr3t-token", out, sizeof out);
    CU_ASSERT_PTR_NULL(strstr(out, "s3cr3t-token"));
    omni_mcp_config_release(&cfg);
}

static void test_config_bad(void)
{
    static const struct {
        const char *doc;
        enum omni_err rc;
        size_t n, nerrors;
        const char *msg; /* in err or in errors[0] */
    } cases[] = {
        {"not json", OMNI_E_CONFIG, 0, 0, "bad JSON"},
        {"[]", OMNI_E_CONFIG, 0, 0, "mcpServers"},
        {"{\"mcpServers\":[]}", OMNI_E_CONFIG, 0, 0, "mcpServers"},
        {"{\"mcpServers\":{\"a\":1,\"a\":2}}", OMNI_E_CONFIG, 0, 0,
         "duplicate"},
        {"{\"mcpServers\":{}}", OMNI_OK, 0, 0, NULL},
        {"{\"servers\":{\"v\":{\"command\":\"x\"}}}", OMNI_OK, 1, 0, NULL},
        {"{\"mcpServers\":{\"a__b\":{\"command\":\"x\"}}}", OMNI_OK, 0, 1,
         "'a__b' refused"},
        {"{\"mcpServers\":{\"a_\":{\"command\":\"x\"}}}", OMNI_OK, 0, 1,
         "no '__'"},
        {"{\"mcpServers\":{\"a b\":{\"command\":\"x\"}}}", OMNI_OK, 0, 1,
         "letters"},
        {"{\"mcpServers\":{\"\":{\"command\":\"x\"}}}", OMNI_OK, 0, 1,
         "refused"},
        {"{\"mcpServers\":{\"a\":[]}}", OMNI_OK, 0, 1, "not an object"},
        {"{\"mcpServers\":{\"a\":{}}}", OMNI_OK, 0, 1, "exactly one"},
        {"{\"mcpServers\":{\"a\":{\"command\":\"x\",\"url\":\"http://h\"}}}",
         OMNI_OK, 0, 1, "exactly one"},
        {"{\"mcpServers\":{\"a\":{\"command\":\"\"}}}", OMNI_OK, 0, 1,
         "non-empty"},
        {"{\"mcpServers\":{\"a\":{\"command\":7}}}", OMNI_OK, 0, 1,
         "non-empty"},
        {"{\"mcpServers\":{\"a\":{\"command\":\"x\",\"args\":\"y\"}}}", OMNI_OK,
         0, 1, "'args'"},
        {"{\"mcpServers\":{\"a\":{\"command\":\"x\",\"args\":[\"y\",2]}}}",
         OMNI_OK, 0, 1, "args[1]"},
        {"{\"mcpServers\":{\"a\":{\"command\":\"x\",\"env\":{\"K\":1}}}}",
         OMNI_OK, 0, 1, "env.K"},
        {"{\"mcpServers\":{\"a\":{\"command\":\"x\",\"env\":{\"K=\":\"v\"}}}}",
         OMNI_OK, 0, 1, "env.K="},
        {"{\"mcpServers\":{\"a\":{\"url\":\"ftp://h\"}}}", OMNI_OK, 0, 1,
         "http://"},
        {"{\"mcpServers\":{\"a\":{\"url\":\"http://h\",\"headers\":[]}}}",
         OMNI_OK, 0, 1, "'headers'"},
        {"{\"mcpServers\":{\"a\":{\"url\":\"http://h\",\"headers\":"
         "{\"X\":\"a\\nb\"}}}}",
         OMNI_OK, 0, 1, "headers.X"},
        {"{\"mcpServers\":{\"a\":{\"type\":\"sse\",\"url\":\"http://h\"}}}",
         OMNI_OK, 0, 1, "HTTP+SSE"},
        {"{\"mcpServers\":{\"a\":{\"type\":\"ws\",\"url\":\"http://h\"}}}",
         OMNI_OK, 0, 1, "unknown type"},
        {"{\"mcpServers\":{\"a\":{\"type\":\"stdio\",\"url\":\"http://h\"}}}",
         OMNI_OK, 0, 1, "does not match"},
        {"{\"mcpServers\":{\"a\":{\"type\":3,\"command\":\"x\"}}}", OMNI_OK, 0,
         1, "'type'"},
        /* one bad entry leaves the good one alone */
        {"{\"mcpServers\":{\"bad\":{\"url\":3},\"good\":{\"command\":\"x\"}}}",
         OMNI_OK, 1, 1, "'bad'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        struct omni_mcp_config cfg;
        char err[OMNI_ERR_LEN] = "";
        enum omni_err rc = omni_mcp_config_parse(
            cases[i].doc, strlen(cases[i].doc), &cfg, err);
        const char *msg = rc != OMNI_OK ? err
                          : cfg.nerrors ? cfg.errors[0]
                                        : "";
        bool ok = rc == cases[i].rc && cfg.n == cases[i].n &&
                  cfg.nerrors == cases[i].nerrors &&
                  (!cases[i].msg || strstr(msg, cases[i].msg));
        if (!ok)
            fprintf(stderr, "config %s: got rc %d n %zu errors %zu '%s'\n",
                    cases[i].doc, rc, cfg.n, cfg.nerrors, msg);
        CU_ASSERT(ok);
        omni_mcp_config_release(&cfg);
    }
}

static void test_config_load(void)
{
    struct omni_mcp_config cfg;
    char err[OMNI_ERR_LEN];
    CU_ASSERT_EQUAL(omni_mcp_config_load("", &cfg, err), OMNI_OK);
    CU_ASSERT_EQUAL(cfg.n, 0);
    CU_ASSERT_EQUAL(omni_mcp_config_load("/nonexistent/mcp.json", &cfg, err),
                    OMNI_E_CONFIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "cannot open"));
    CU_ASSERT_EQUAL(omni_mcp_config_load(" {\"mcpServers\":{\"x\":{\"command\""
                                         ":\"y\"}}}",
                                         &cfg, err),
                    OMNI_OK);
    CU_ASSERT_EQUAL(cfg.n, 1);
    omni_mcp_config_release(&cfg);
    char path[] = "/tmp/omni-mcp-cfg-XXXXXX";
    int fd = mkstemp(path);
    CU_ASSERT_FATAL(fd >= 0);
    const char *doc = "{\"mcpServers\":{\"f\":{\"url\":\"https://x/mcp\"}}}";
    CU_ASSERT(write(fd, doc, strlen(doc)) == (ssize_t)strlen(doc));
    close(fd);
    CU_ASSERT_EQUAL(omni_mcp_config_load(path, &cfg, err), OMNI_OK);
    CU_ASSERT_EQUAL(cfg.n, 1);
    omni_mcp_config_release(&cfg);
    unlink(path);
}

static void test_server_names(void)
{
    static const struct {
        const char *name;
        bool ok;
    } cases[] = {
        {"github", true},
        {"my-server", true},
        {"a_b", true},
        {"A9", true},
        {"", false},
        {"a__b", false},
        {"a_", false},
        {"a.b", false},
        {"a b", false},
        {"é", false},
        {"12345678901234567890123456789012345678901234567890123456789012345",
         false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        if (omni_mcp_server_name_ok(cases[i].name) != cases[i].ok)
            fprintf(stderr, "name '%s': want %d\n", cases[i].name, cases[i].ok);
        CU_ASSERT_EQUAL(omni_mcp_server_name_ok(cases[i].name), cases[i].ok);
    }
}

static CU_TestInfo tests[] = {
    {"pagination", test_pager},
    {"catalog merge, order, collisions", test_catalog_merge},
    {"catalog filters", test_catalog_filter},
    {"protocol versions", test_versions},
    {"era probe decision", test_era_decide},
    {"config: good document", test_config_good},
    {"config: bad inputs", test_config_bad},
    {"config: load from file or inline", test_config_load},
    {"server names", test_server_names},
    CU_TEST_INFO_NULL,
};

CU_SuiteInfo omni_test_suites[] = {
    {"mcp_policy", NULL, NULL, NULL, NULL, tests},
    CU_SUITE_INFO_NULL,
};
