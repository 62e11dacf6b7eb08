/*
 * test_http_routes - the HTTP route table, request checks and reply
 * shaping of clients/http/routes.c, and multipart uploads.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "multipart.h"
#include "routes.h"
#include "unit.h"

static struct omni_route_cfg open_cfg = {NULL, 0, 1 << 20};

/* Resolve with the usual defaults: loopback peer, no headers. */
static void resolve(const struct omni_route_cfg *cfg, const char *method,
                    const char *target, const char *body, struct omni_route *r)
{
    struct omni_http_in in = {.method = method,
                              .target = target,
                              .loopback = true,
                              .body = body,
                              .body_len = body ? strlen(body) : 0};
    omni_route_resolve(cfg, &in, r);
}

/* The "error" object of a reply body, checked for OpenAI's shape. */
static json_t *error_of(const struct omni_http_out *out)
{
    json_t *j = json_loadb(out->body.data, out->body.len, 0, NULL);
    json_t *e = json_object_get(j, "error");
    CU_ASSERT_FATAL(json_is_object(e));
    CU_ASSERT(json_is_string(json_object_get(e, "message")));
    CU_ASSERT(json_is_string(json_object_get(e, "type")));
    CU_ASSERT(json_is_string(json_object_get(e, "code")));
    CU_ASSERT(json_object_get(e, "param") != NULL);
    json_incref(e);
    json_decref(j);
    return e;
}

static const char *field(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "(none)";
}

static void test_routes_table(void)
{
    static const struct {
        const char *method, *target, *body;
        const char *service, *op;
        bool stream;
        enum omni_reply_shape shape;
        enum omni_route_name name;
        const char *want_body; /* exact broker body */
    } cases[] = {
        {"POST", "/v1/chat/completions", "{\"model\":\"m\",\"stream\":true}",
         "llm", "chat", true, OMNI_SHAPE_SSE, OMNI_R_CHAT,
         "{\"model\":\"m\",\"stream\":true}"},
        {"POST", "/v1/chat/completions?x=1", "{ \"model\" : \"m\" }", "llm",
         "chat", false, OMNI_SHAPE_JSON, OMNI_R_CHAT, "{ \"model\" : \"m\" }"},
        {"POST", "/v1/chat/completions", "{\"stream\":false}", "llm", "chat",
         false, OMNI_SHAPE_JSON, OMNI_R_CHAT, "{\"stream\":false}"},
        {"POST", "/v1/embeddings", "{\"input\":\"x\"}", "llm", "embeddings",
         false, OMNI_SHAPE_JSON, OMNI_R_EMBEDDINGS, "{\"input\":\"x\"}"},
        {"GET", "/v1/models", NULL, "llm", "models", false, OMNI_SHAPE_JSON,
         OMNI_R_MODELS, "{}"},
        {"GET", "/v1/mcp/tools", NULL, "mcp", "tools", false, OMNI_SHAPE_JSON,
         OMNI_R_MCP_TOOLS, "{}"},
        {"POST", "/v1/mcp/call", "{\"name\":\"a__b\",\"arguments\":{}}", "mcp",
         "call", false, OMNI_SHAPE_JSON, OMNI_R_MCP_CALL,
         "{\"name\":\"a__b\",\"arguments\":{}}"},
        {"POST", "/mcp", "{\"jsonrpc\":\"2.0\",\"id\":1}", "mcp", "rpc", false,
         OMNI_SHAPE_MCP, OMNI_R_MCP,
         "{\"session\":null,\"message\":{\"jsonrpc\":\"2.0\",\"id\":1},"
         "\"protocol_version\":null}"},
        {"DELETE", "/mcp", NULL, "mcp", "rpc", false, OMNI_SHAPE_MCP,
         OMNI_R_MCP,
         "{\"session\":null,\"message\":null,\"protocol_version\":null,"
         "\"delete\":true}"},
        {"POST", "/v1/rag/docs/documents",
         "{\"documents\":[{\"id\":\"a\",\"text\":\"t\"}]}", "rag", "ingest",
         false, OMNI_SHAPE_JSON, OMNI_R_RAG_INGEST,
         "{\"documents\":[{\"id\":\"a\",\"text\":\"t\"}],"
         "\"collection\":\"docs\"}"},
        {"POST", "/v1/rag/a.b-c_1/query", "{\"query\":\"q\",\"top_k\":3}",
         "rag", "query", false, OMNI_SHAPE_JSON, OMNI_R_RAG_QUERY,
         "{\"query\":\"q\",\"top_k\":3,\"collection\":\"a.b-c_1\"}"},
        {"DELETE", "/v1/rag/docs/documents/a%2Fb%20c", NULL, "rag", "delete",
         false, OMNI_SHAPE_JSON, OMNI_R_RAG_DELETE,
         "{\"collection\":\"docs\",\"id\":\"a/b c\"}"},
        {"DELETE", "/v1/rag/docs/documents/%C3%A9t%C3%A9", NULL, "rag",
         "delete", false, OMNI_SHAPE_JSON, OMNI_R_RAG_DELETE,
         "{\"collection\":\"docs\",\"id\":\"\xc3\xa9t\xc3\xa9\"}"},
        {"GET", "/v1/rag/docs/documents", NULL, "rag", "list", false,
         OMNI_SHAPE_JSON, OMNI_R_RAG_LIST, "{\"collection\":\"docs\"}"},
        {"GET", "/v1/rag/d%6Fcs/documents", NULL, "rag", "list", false,
         OMNI_SHAPE_JSON, OMNI_R_RAG_LIST, "{\"collection\":\"docs\"}"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        struct omni_route r;
        resolve(&open_cfg, cases[i].method, cases[i].target, cases[i].body, &r);
        if (r.kind != OMNI_ROUTE_CALL)
            fprintf(stderr, "case %zu %s %s: got kind %d (%s), want call\n", i,
                    cases[i].method, cases[i].target, r.kind, r.out.body.data);
        CU_ASSERT_EQUAL(r.kind, OMNI_ROUTE_CALL);
        if (r.kind == OMNI_ROUTE_CALL) {
            CU_ASSERT_STRING_EQUAL(r.service, cases[i].service);
            CU_ASSERT_STRING_EQUAL(r.op, cases[i].op);
            if (strcmp(r.body.data, cases[i].want_body) != 0)
                fprintf(stderr, "case %zu: got body %s, want %s\n", i,
                        r.body.data, cases[i].want_body);
            CU_ASSERT_STRING_EQUAL(r.body.data, cases[i].want_body);
        }
        CU_ASSERT_EQUAL(r.stream, cases[i].stream);
        CU_ASSERT_EQUAL(r.shape, cases[i].shape);
        CU_ASSERT_EQUAL(r.name, cases[i].name);
        CU_ASSERT_EQUAL(r.timeout_ms, 0);
        CU_ASSERT_PTR_NULL(r.auth);
        omni_route_release(&r);
    }
}

static void test_routes_local(void)
{
    struct omni_route r;
    resolve(&open_cfg, "GET", "/health", NULL, &r);
    CU_ASSERT_EQUAL(r.kind, OMNI_ROUTE_HEALTH);
    CU_ASSERT_EQUAL(r.name, OMNI_R_HEALTH);
    omni_route_release(&r);
    resolve(&open_cfg, "GET", "/metrics?x", NULL, &r);
    CU_ASSERT_EQUAL(r.kind, OMNI_ROUTE_METRICS);
    CU_ASSERT_STRING_EQUAL(omni_route_label(r.name), "metrics");
    omni_route_release(&r);
    CU_ASSERT_STRING_EQUAL(omni_route_label(OMNI_R_RAG_LIST), "rag_list");
    CU_ASSERT_STRING_EQUAL(omni_route_label(OMNI_R__COUNT), "unknown");
}

/* Every immediate refusal: status, code word, Allow, message fragment. */
static void test_routes_errors(void)
{
    static const struct {
        const char *method, *target, *body, *ctype;
        int status;
        const char *code, *type, *allow, *msg;
    } cases[] = {
        {"GET", "/v1/nope", NULL, NULL, 404, "not_found", "not_found_error",
         NULL, "unknown path '/v1/nope'"},
        {"GET", "/", NULL, NULL, 404, "not_found", "not_found_error", NULL,
         "unknown path"},
        {"GET", "/v1/models/", NULL, NULL, 404, "not_found", "not_found_error",
         NULL, "unknown path"},
        {"GET", "/v1/a/b/c/d/e/f/g", NULL, NULL, 404, "not_found",
         "not_found_error", NULL, "unknown path"},
        {"GET", "v1/models", NULL, NULL, 404, "not_found", "not_found_error",
         NULL, "unknown path"},
        {"GET", "/v1/chat/completions", NULL, NULL, 405, "method_not_allowed",
         "invalid_request_error", "POST",
         "method GET not allowed here: use POST"},
        {"PUT", "/mcp", NULL, NULL, 405, "method_not_allowed",
         "invalid_request_error", "GET, POST, DELETE", "use GET, POST"},
        {"POST", "/health", NULL, NULL, 405, "method_not_allowed",
         "invalid_request_error", "GET", "not allowed"},
        {"DELETE", "/v1/rag/c/documents", NULL, NULL, 405, "method_not_allowed",
         "invalid_request_error", "GET, POST", "not allowed"},
        {"GET", "/v1/rag/c/documents/x", NULL, NULL, 405, "method_not_allowed",
         "invalid_request_error", "DELETE", "use DELETE"},
        {"POST", "/v1/chat/completions", "{\"a\":", NULL, 400, "bad_request",
         "invalid_request_error", NULL, "invalid JSON body"},
        {"POST", "/v1/chat/completions", NULL, NULL, 400, "bad_request",
         "invalid_request_error", NULL, "missing request body"},
        {"POST", "/v1/chat/completions", "[1,2]", NULL, 400, "bad_request",
         "invalid_request_error", NULL, "want a JSON object"},
        {"POST", "/v1/embeddings", "\"x\"", NULL, 400, "bad_request",
         "invalid_request_error", NULL, "want a JSON object"},
        {"POST", "/v1/mcp/call", "{\"arguments\":{}}", NULL, 400, "bad_request",
         "invalid_request_error", NULL, "missing 'name'"},
        {"POST", "/mcp", "{oops}", NULL, 400, "bad_request",
         "invalid_request_error", NULL, "invalid JSON body"},
        {"GET", "/mcp", NULL, NULL, 406, "not_acceptable",
         "invalid_request_error", NULL, "text/event-stream"},
        {"POST", "/v1/rag/docs/documents", "{\"documents\":{}}", NULL, 400,
         "bad_request", "invalid_request_error", NULL, "missing 'documents'"},
        {"POST", "/v1/rag/bad%20name/query", "{}", NULL, 400, "bad_request",
         "invalid_request_error", NULL, "bad collection name"},
        {"GET",
         "/v1/rag/"
         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
         "/documents",
         NULL, NULL, 400, "bad_request", "invalid_request_error", NULL,
         "bad collection name"},
        {"GET", "/v1/rag//documents", NULL, NULL, 400, "bad_request",
         "invalid_request_error", NULL, "bad collection name"},
        {"DELETE", "/v1/rag/c/documents/a%0Ab", NULL, NULL, 400, "bad_request",
         "invalid_request_error", NULL, "bad document id"},
        {"DELETE", "/v1/rag/c/documents/%FF", NULL, NULL, 400, "bad_request",
         "invalid_request_error", NULL, "bad document id"},
        {"DELETE", "/v1/rag/c/documents/", NULL, NULL, 400, "bad_request",
         "invalid_request_error", NULL, "bad document id"},
        {"DELETE", "/v1/rag/c/documents/a%00b", NULL, NULL, 400, "bad_request",
         "invalid_request_error", NULL, "percent-escape"},
        {"DELETE", "/v1/rag/c/documents/a%zz", NULL, NULL, 400, "bad_request",
         "invalid_request_error", NULL, "percent-escape"},
        {"DELETE", "/v1/rag/c/documents/a%4", NULL, NULL, 400, "bad_request",
         "invalid_request_error", NULL, "percent-escape"},
        {"POST", "/v1/rag/c/documents", "--x--", "multipart/form-data", 400,
         "bad_request", "invalid_request_error", NULL, "boundary"},
        {"POST", "/v1/rag/c/documents",
         "--b\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\nv"
         "\r\n--b--\r\n",
         "multipart/form-data; boundary=b", 400, "bad_request",
         "invalid_request_error", NULL, "no file in multipart body"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        struct omni_http_in in = {
            .method = cases[i].method,
            .target = cases[i].target,
            .content_type = cases[i].ctype,
            .loopback = true,
            .body = cases[i].body,
            .body_len = cases[i].body ? strlen(cases[i].body) : 0};
        struct omni_route r;
        omni_route_resolve(&open_cfg, &in, &r);
        CU_ASSERT_EQUAL(r.kind, OMNI_ROUTE_REPLY);
        if (r.out.status != cases[i].status)
            fprintf(stderr, "case %zu %s %s: got status %d, want %d (%s)\n", i,
                    cases[i].method, cases[i].target, r.out.status,
                    cases[i].status, r.out.body.data);
        CU_ASSERT_EQUAL(r.out.status, cases[i].status);
        CU_ASSERT_STRING_EQUAL(r.out.content_type, "application/json");
        json_t *e = error_of(&r.out);
        CU_ASSERT_STRING_EQUAL(field(e, "code"), cases[i].code);
        CU_ASSERT_STRING_EQUAL(r.out.code, cases[i].code);
        CU_ASSERT_STRING_EQUAL(field(e, "type"), cases[i].type);
        if (!strstr(field(e, "message"), cases[i].msg))
            fprintf(stderr, "case %zu: got message '%s', want '%s' in it\n", i,
                    field(e, "message"), cases[i].msg);
        CU_ASSERT_PTR_NOT_NULL(strstr(field(e, "message"), cases[i].msg));
        if (cases[i].allow) {
            CU_ASSERT_STRING_EQUAL(r.out.allow ? r.out.allow : "(none)",
                                   cases[i].allow);
        } else {
            CU_ASSERT_PTR_NULL(r.out.allow);
        }
        json_decref(e);
        omni_route_release(&r);
    }
}

static void test_routes_limits(void)
{
    struct omni_route_cfg small = {NULL, 0, 8};
    struct omni_route r;
    resolve(&small, "POST", "/v1/embeddings", "{\"input\":\"x\"}", &r);
    CU_ASSERT_EQUAL(r.out.status, 413);
    json_t *e = error_of(&r.out);
    CU_ASSERT_STRING_EQUAL(field(e, "code"), "too_large");
    CU_ASSERT_STRING_EQUAL(field(e, "type"), "invalid_request_error");
    json_decref(e);
    omni_route_release(&r);
    resolve(&small, "POST", "/v1/embeddings", "{\"a\":1}", &r);
    CU_ASSERT_EQUAL(r.kind, OMNI_ROUTE_CALL);
    omni_route_release(&r);

    static const struct {
        const char *v;
        int ok;
        uint32_t ms;
    } t[] = {{"2500", 1, 2500}, {"1", 1, 1},  {"86400000", 1, 86400000},
             {"0", 0, 0},       {"-5", 0, 0}, {"86400001", 0, 0},
             {"12ms", 0, 0},    {"", 0, 0},   {"99999999999999999999", 0, 0}};
    for (size_t i = 0; i < sizeof t / sizeof *t; i++) {
        struct omni_http_in in = {.method = "GET",
                                  .target = "/v1/models",
                                  .timeout_ms = t[i].v,
                                  .loopback = true};
        omni_route_resolve(&open_cfg, &in, &r);
        if ((r.kind == OMNI_ROUTE_CALL) != t[i].ok)
            fprintf(stderr, "timeout '%s': got kind %d, want ok=%d\n", t[i].v,
                    r.kind, t[i].ok);
        CU_ASSERT_EQUAL(r.kind == OMNI_ROUTE_CALL, t[i].ok);
        if (t[i].ok) {
            CU_ASSERT_EQUAL(r.timeout_ms, t[i].ms);
        } else {
            CU_ASSERT_EQUAL(r.out.status, 400);
        }
        omni_route_release(&r);
    }
}

static void test_routes_auth(void)
{
    struct omni_route_cfg cfg = {NULL, 0, 1 << 20};
    omni_route_cfg_keys(&cfg, " k-one , ,k-two,");
    CU_ASSERT_EQUAL_FATAL(cfg.nkeys, 2);
    CU_ASSERT_STRING_EQUAL(cfg.keys[0], "k-one");
    CU_ASSERT_STRING_EQUAL(cfg.keys[1], "k-two");

    static const struct {
        const char *target, *authz;
        bool loopback;
        int status; /* 0: routed */
        const char *key;
    } cases[] = {
        {"/v1/models", NULL, true, 401, NULL},
        {"/v1/models", "Bearer nope", true, 401, NULL},
        {"/v1/models", "Bearer k-one", true, 0, "k-one"},
        {"/v1/models", "bearer   k-two  ", true, 0, "k-two"},
        {"/v1/models", "Bearer k-on", true, 401, NULL},
        {"/v1/models", "Bearer k-one2", true, 401, NULL},
        {"/v1/models", "Basic k-one", true, 401, NULL},
        {"/v1/models", "Bearerk-one", true, 401, NULL},
        {"/v1/models", "Bearer ", true, 401, NULL},
        {"/v1/unknown", NULL, true, 401, NULL},
        {"/mcp", NULL, true, 401, NULL},
        {"/mcp?x=1", NULL, true, 401, NULL},
        {"/mcp", "Bearer k-two", false, 0, "k-two"},
        {"/health", NULL, false, -1, NULL},
        {"/metrics", NULL, false, -2, NULL},
        {"/mcpx", NULL, true, 404, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        struct omni_http_in in = {.method = "GET",
                                  .target = cases[i].target,
                                  .authorization = cases[i].authz,
                                  .accept = "text/event-stream",
                                  .loopback = cases[i].loopback};
        if (strncmp(cases[i].target, "/mcp", 4) == 0 &&
            cases[i].target[4] != 'x') {
            in.method = "POST";
            in.body = "{}";
            in.body_len = 2;
        }
        struct omni_route r;
        omni_route_resolve(&cfg, &in, &r);
        int got = r.kind == OMNI_ROUTE_CALL      ? 0
                  : r.kind == OMNI_ROUTE_HEALTH  ? -1
                  : r.kind == OMNI_ROUTE_METRICS ? -2
                                                 : r.out.status;
        if (got != cases[i].status)
            fprintf(stderr, "auth case %zu: got %d, want %d\n", i, got,
                    cases[i].status);
        CU_ASSERT_EQUAL(got, cases[i].status);
        if (cases[i].key) {
            CU_ASSERT_STRING_EQUAL(r.auth ? r.auth : "(null)", cases[i].key);
        } else {
            CU_ASSERT_PTR_NULL(r.auth);
        }
        if (got == 401) {
            json_t *e = error_of(&r.out);
            CU_ASSERT_STRING_EQUAL(field(e, "type"), "authentication_error");
            CU_ASSERT_STRING_EQUAL(field(e, "code"), "unauthorized");
            json_decref(e);
        }
        omni_route_release(&r);
    }
    omni_route_cfg_release(&cfg);
    CU_ASSERT_EQUAL(cfg.nkeys, 0);

    /* Without keys /mcp is for loopback peers only. */
    struct omni_http_in in = {
        .method = "POST", .target = "/mcp", .body = "{}", .body_len = 2};
    struct omni_route r;
    omni_route_resolve(&open_cfg, &in, &r);
    CU_ASSERT_EQUAL(r.out.status, 403);
    json_t *e = error_of(&r.out);
    CU_ASSERT_STRING_EQUAL(field(e, "type"), "permission_error");
    json_decref(e);
    omni_route_release(&r);
    in.target = "/v1/models";
    in.method = "GET";
    omni_route_resolve(&open_cfg, &in, &r);
    CU_ASSERT_EQUAL(r.kind, OMNI_ROUTE_CALL);
    omni_route_release(&r);
}

static void test_routes_mcp_headers(void)
{
    struct omni_http_in in = {.method = "POST",
                              .target = "/mcp",
                              .mcp_session = "s-1",
                              .mcp_protocol = "2025-06-18",
                              .loopback = true,
                              .body = "[{\"id\":1}]",
                              .body_len = 10};
    struct omni_route r;
    omni_route_resolve(&open_cfg, &in, &r);
    CU_ASSERT_EQUAL(r.kind, OMNI_ROUTE_CALL);
    CU_ASSERT_STRING_EQUAL(r.body.data,
                           "{\"session\":\"s-1\",\"message\":[{\"id\":1}],"
                           "\"protocol_version\":\"2025-06-18\"}");
    omni_route_release(&r);

    in.method = "GET";
    in.accept = "application/json, Text/Event-Stream";
    omni_route_resolve(&open_cfg, &in, &r);
    CU_ASSERT_EQUAL(r.kind, OMNI_ROUTE_CALL);
    CU_ASSERT_STRING_EQUAL(r.op, "listen");
    CU_ASSERT(r.stream);
    CU_ASSERT_EQUAL(r.shape, OMNI_SHAPE_MCP_SSE);
    CU_ASSERT_STRING_EQUAL(r.body.data, "{\"session\":\"s-1\"}");
    omni_route_release(&r);

    in.mcp_session = "bad id";
    omni_route_resolve(&open_cfg, &in, &r);
    CU_ASSERT_EQUAL(r.out.status, 400);
    omni_route_release(&r);
    in.mcp_session = NULL;
    in.mcp_protocol = "";
    omni_route_resolve(&open_cfg, &in, &r);
    CU_ASSERT_EQUAL(r.out.status, 400);
    omni_route_release(&r);
}

/* Broker error events to HTTP: status, type, code, Retry-After. */
static void test_reply_event_errors(void)
{
    static const struct {
        const char *code;
        int status;
        uint32_t retry_ms;
        int want_status;
        uint32_t retry_s;
        const char *type, *word;
    } cases[] = {
        {"BAD_REQUEST", 400, 0, 400, 0, "invalid_request_error", "bad_request"},
        {"UNAUTHORIZED", 401, 0, 401, 0, "authentication_error",
         "unauthorized"},
        {"FORBIDDEN", 403, 0, 403, 0, "permission_error", "forbidden"},
        {"NOT_FOUND", 404, 0, 404, 0, "not_found_error", "not_found"},
        {"NO_SERVICE", 404, 0, 404, 0, "not_found_error", "no_service"},
        {"TOO_LARGE", 413, 0, 413, 0, "invalid_request_error", "too_large"},
        {"RATE_LIMITED", 429, 1500, 429, 2, "rate_limit_error", "rate_limited"},
        {"UPSTREAM", 429, 0, 429, 0, "rate_limit_error", "upstream"},
        {"UPSTREAM", 529, 0, 529, 0, "api_error", "upstream"},
        {"UPSTREAM", 0, 0, 502, 0, "api_error", "upstream"},
        {"UPSTREAM", 200, 0, 502, 0, "api_error", "upstream"},
        {"TIMEOUT", 504, 0, 504, 0, "api_error", "timeout"},
        {"TIMEOUT", 0, 0, 504, 0, "api_error", "timeout"},
        {"OVERLOADED", 503, 250, 503, 1, "api_error", "overloaded"},
        {"OVERLOADED", 503, 3000, 503, 3, "api_error", "overloaded"},
        {"UNAVAILABLE", 503, 0, 503, 0, "api_error", "unavailable"},
        {"WORKER_LOST", 502, 0, 502, 0, "api_error", "worker_lost"},
        {"INTERNAL", 500, 0, 500, 0, "server_error", "internal"},
        {"UNSUPPORTED", 501, 0, 501, 0, "api_error", "unsupported"},
        {"SOMETHING_NEW", 0, 0, 500, 0, "server_error", "something_new"},
        {"SOMETHING_NEW", 418, 0, 418, 0, "invalid_request_error",
         "something_new"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        struct omni_http_out out;
        omni_http_out_init(&out);
        omni_reply_event_error(&out, cases[i].code, cases[i].status, "boom",
                               cases[i].retry_ms);
        if (out.status != cases[i].want_status)
            fprintf(stderr, "%s/%d: got status %d, want %d\n", cases[i].code,
                    cases[i].status, out.status, cases[i].want_status);
        CU_ASSERT_EQUAL(out.status, cases[i].want_status);
        CU_ASSERT_EQUAL(out.retry_after_s, cases[i].retry_s);
        json_t *e = error_of(&out);
        CU_ASSERT_STRING_EQUAL(field(e, "type"), cases[i].type);
        CU_ASSERT_STRING_EQUAL(field(e, "code"), cases[i].word);
        CU_ASSERT_STRING_EQUAL(out.code, cases[i].word);
        CU_ASSERT_STRING_EQUAL(field(e, "message"), "boom");
        CU_ASSERT(json_is_null(json_object_get(e, "param")));
        json_decref(e);
        omni_http_out_release(&out);
    }
}

/* An upstream error carrying the provider's error JSON keeps its code. */
static void test_reply_upstream_json(void)
{
    struct omni_http_out out;
    omni_http_out_init(&out);
    omni_reply_event_error(
        &out, "UPSTREAM", 400,
        "{\"error\":{\"message\":\"bad model\",\"type\":\"x\","
        "\"code\":\"model_not_found\",\"param\":\"model\"}}",
        0);
    CU_ASSERT_EQUAL(out.status, 400);
    json_t *e = error_of(&out);
    CU_ASSERT_STRING_EQUAL(field(e, "code"), "model_not_found");
    CU_ASSERT_STRING_EQUAL(out.code, "model_not_found");
    CU_ASSERT_STRING_EQUAL(field(e, "message"), "bad model");
    CU_ASSERT_STRING_EQUAL(field(e, "param"), "model");
    CU_ASSERT_STRING_EQUAL(field(e, "type"), "invalid_request_error");
    json_decref(e);

    /* Not JSON, or JSON without a message: the text is the message. */
    omni_reply_event_error(&out, "UPSTREAM", 500, "{not json", 0);
    e = error_of(&out);
    CU_ASSERT_STRING_EQUAL(field(e, "message"), "{not json");
    CU_ASSERT_STRING_EQUAL(field(e, "code"), "upstream");
    json_decref(e);
    omni_reply_event_error(&out, "UPSTREAM", 500, "{\"code\":\"x\"}", 0);
    e = error_of(&out);
    CU_ASSERT_STRING_EQUAL(field(e, "code"), "upstream");
    json_decref(e);

    /* Secrets never reach the client. */
    omni_reply_event_error(&out, "UPSTREAM", 401,
                           "bad key sk-abcdefghijklmnopqrstuvwxyz0123", 0);
    CU_ASSERT_PTR_NULL(strstr(out.body.data, "abcdefghijklmnop"));
    omni_http_out_release(&out);
}

static void test_reply_local_errors(void)
{
    struct omni_http_out out;
    omni_http_out_init(&out);
    omni_reply_error(&out, 503, NULL, "broker \"down\"\n");
    CU_ASSERT_EQUAL(out.status, 503);
    json_t *e = error_of(&out);
    CU_ASSERT_STRING_EQUAL(field(e, "code"), "unavailable");
    CU_ASSERT_STRING_EQUAL(field(e, "type"), "api_error");
    CU_ASSERT_STRING_EQUAL(field(e, "message"), "broker \"down\"\n");
    json_decref(e);
    omni_reply_error(&out, 502, "worker_lost", "x");
    e = error_of(&out);
    CU_ASSERT_STRING_EQUAL(field(e, "code"), "worker_lost");
    json_decref(e);
    omni_http_out_release(&out);
    CU_ASSERT_STRING_EQUAL(omni_reply_error_type(422), "invalid_request_error");
    CU_ASSERT_STRING_EQUAL(omni_reply_error_type(504), "api_error");
}

static void test_reply_final(void)
{
    struct omni_http_out out;
    omni_http_out_init(&out);
    omni_reply_final(&out, OMNI_SHAPE_JSON, "{\"id\":\"x\"}", 10);
    CU_ASSERT_EQUAL(out.status, 200);
    CU_ASSERT_STRING_EQUAL(out.code, "");
    CU_ASSERT_STRING_EQUAL(out.content_type, "application/json");
    CU_ASSERT_STRING_EQUAL(out.body.data, "{\"id\":\"x\"}");
    omni_reply_final(&out, OMNI_SHAPE_JSON, "", 0);
    CU_ASSERT_STRING_EQUAL(out.body.data, "{}");

    static const struct {
        const char *body;
        int status;
        const char *session, *json;
    } mcp[] = {
        {"{\"session\":\"s1\",\"status\":200,\"message\":{\"jsonrpc\":\"2.0\","
         "\"id\":1,\"result\":{}}}",
         200, "s1", "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}"},
        {"{\"session\":\"s1\",\"status\":202,\"message\":null}", 202, "s1",
         NULL},
        {"{\"session\":null,\"status\":200,\"message\":null}", 202, NULL, NULL},
        {"{\"status\":404,\"message\":null}", 404, NULL, NULL},
        {"{\"status\":400,\"message\":{\"jsonrpc\":\"2.0\",\"error\":{}}}", 400,
         NULL, "{\"jsonrpc\":\"2.0\",\"error\":{}}"},
        {"{\"message\":[1]}", 200, NULL, "[1]"},
        {"{\"status\":1000,\"message\":1}", 502, NULL, "1"},
        {"[]", 502, NULL, NULL},
        {"nope", 502, NULL, NULL},
    };
    for (size_t i = 0; i < sizeof mcp / sizeof *mcp; i++) {
        omni_http_out_release(&out);
        omni_http_out_init(&out);
        omni_reply_final(&out, OMNI_SHAPE_MCP, mcp[i].body,
                         strlen(mcp[i].body));
        if (out.status != mcp[i].status)
            fprintf(stderr, "mcp case %zu: got %d, want %d\n", i, out.status,
                    mcp[i].status);
        CU_ASSERT_EQUAL(out.status, mcp[i].status);
        if (mcp[i].session) {
            CU_ASSERT_STRING_EQUAL(out.session ? out.session : "(null)",
                                   mcp[i].session);
        } else {
            CU_ASSERT_PTR_NULL(out.session);
        }
        if (mcp[i].json) {
            CU_ASSERT_STRING_EQUAL(out.body.data, mcp[i].json);
        } else if (out.status < 300 || out.status == 404) {
            CU_ASSERT_PTR_NULL(out.content_type);
            CU_ASSERT_EQUAL(out.body.len, 0);
        } else {
            json_decref(error_of(&out));
        }
    }
    omni_http_out_release(&out);
}

static void test_reply_sse(void)
{
    struct omni_buf b = OMNI_BUF_INIT;
    omni_reply_chunk(&b, OMNI_SHAPE_SSE, "{\"a\":1}", 7);
    CU_ASSERT_STRING_EQUAL(b.data, "data: {\"a\":1}\n\n");
    omni_buf_reset(&b);
    omni_reply_chunk(&b, OMNI_SHAPE_SSE, "{\n \"a\": 1\r\n}", 12);
    CU_ASSERT_STRING_EQUAL(b.data, "data: {\ndata:  \"a\": 1\ndata: }\n\n");
    omni_buf_reset(&b);
    omni_reply_chunk(&b, OMNI_SHAPE_SSE, "", 0);
    CU_ASSERT_STRING_EQUAL(b.data, "data: \n\n");
    omni_buf_reset(&b);
    omni_reply_chunk(&b, OMNI_SHAPE_MCP_SSE, "{\"method\":\"x\"}", 14);
    CU_ASSERT_STRING_EQUAL(b.data,
                           "event: message\ndata: {\"method\":\"x\"}\n\n");
    omni_buf_reset(&b);
    omni_reply_stream_end(&b, OMNI_SHAPE_SSE);
    CU_ASSERT_STRING_EQUAL(b.data, "data: [DONE]\n\n");
    omni_buf_reset(&b);
    omni_reply_stream_end(&b, OMNI_SHAPE_MCP_SSE);
    CU_ASSERT_EQUAL(b.len, 0);
    omni_reply_stream_error(&b, OMNI_SHAPE_SSE, "UPSTREAM", 500, "x\ny");
    CU_ASSERT_STRING_EQUAL(b.data,
                           "data: {\"error\":{\"message\":\"x\\ny\",\"type\":"
                           "\"server_error\",\"code\":\"upstream\","
                           "\"param\":null}}\n\n");
    omni_buf_reset(&b);
    omni_reply_stream_error(&b, OMNI_SHAPE_MCP_SSE, "UPSTREAM", 500, "x");
    CU_ASSERT_EQUAL(b.len, 0);
    omni_buf_release(&b);
}

static void test_path_checks(void)
{
    static const struct {
        const char *in, *out; /* out NULL: rejected */
    } esc[] = {
        {"abc", "abc"},   {"a%20b", "a b"},
        {"%2f%2F", "//"}, {"%e2%82%ac", "\xe2\x82\xac"},
        {"a+b", "a+b"},   {"%", NULL},
        {"%4", NULL},     {"%g0", NULL},
        {"%00", NULL},    {"", ""},
    };
    for (size_t i = 0; i < sizeof esc / sizeof *esc; i++) {
        struct omni_buf b = OMNI_BUF_INIT;
        int rc = omni_route_unescape(esc[i].in, strlen(esc[i].in), &b);
        CU_ASSERT_EQUAL(rc, esc[i].out ? 0 : -1);
        if (esc[i].out)
            CU_ASSERT_STRING_EQUAL(b.data, esc[i].out);
        omni_buf_release(&b);
    }
    char c64[66];
    memset(c64, 'a', 65);
    c64[65] = '\0';
    CU_ASSERT(!omni_route_valid_collection(c64));
    c64[64] = '\0';
    CU_ASSERT(omni_route_valid_collection(c64));
    CU_ASSERT(omni_route_valid_collection("A-z_0.9"));
    CU_ASSERT(!omni_route_valid_collection(""));
    CU_ASSERT(!omni_route_valid_collection("a/b"));
    CU_ASSERT(!omni_route_valid_collection("a b"));
    CU_ASSERT(!omni_route_valid_collection("\xc3\xa9"));

    static const struct {
        const char *s;
        bool ok;
    } ids[] = {
        {"doc.txt", true},
        {"a/b c", true},
        {"\xc3\xa9", true},
        {"\xf0\x9f\x98\x80", true},
        {"a\tb", false},
        {"a\x7f", false},
        {"\xc3", false},
        {"\xc0\xaf", false},
        {"\xed\xa0\x80", false},
        {"\xff", false},
        {"\xf4\x90\x80\x80", false},
    };
    for (size_t i = 0; i < sizeof ids / sizeof *ids; i++)
        CU_ASSERT_EQUAL(omni_route_valid_id(ids[i].s, strlen(ids[i].s)),
                        ids[i].ok);
    char big[OMNI_ROUTE_MAX_ID + 2];
    memset(big, 'x', sizeof big);
    CU_ASSERT(omni_route_valid_id(big, OMNI_ROUTE_MAX_ID));
    CU_ASSERT(!omni_route_valid_id(big, OMNI_ROUTE_MAX_ID + 1));
    CU_ASSERT(!omni_route_valid_id(big, 0));
}

static void test_base64(void)
{
    static const char *const v[][2] = {
        {"", ""},
        {"f", "Zg=="},
        {"fo", "Zm8="},
        {"foo", "Zm9v"},
        {"foob", "Zm9vYg=="},
        {"fooba", "Zm9vYmE="},
        {"foobar", "Zm9vYmFy"},
        {"\xff\xfe\x00", "//4A"},
    };
    for (size_t i = 0; i < sizeof v / sizeof *v; i++) {
        struct omni_buf b = OMNI_BUF_INIT;
        size_t n = strlen(v[i][0]) + (i == 7);
        omni_base64_add(&b, v[i][0], n);
        CU_ASSERT_STRING_EQUAL(b.data, v[i][1]);
        omni_buf_release(&b);
    }
}

/* Resolve a multipart upload and return the documents sent, or NULL. */
static json_t *upload(const char *ctype, const char *body, size_t n,
                      struct omni_route *r)
{
    struct omni_http_in in = {.method = "POST",
                              .target = "/v1/rag/docs/documents",
                              .content_type = ctype,
                              .loopback = true,
                              .body = body,
                              .body_len = n};
    omni_route_resolve(&open_cfg, &in, r);
    if (r->kind != OMNI_ROUTE_CALL)
        return NULL;
    json_t *j = json_loads(r->body.data, 0, NULL);
    CU_ASSERT_STRING_EQUAL(field(j, "collection"), "docs");
    json_t *d = json_object_get(j, "documents");
    json_incref(d);
    json_decref(j);
    return d;
}

static void test_multipart(void)
{
    static const char body[] =
        "preamble\r\n"
        "--XyZ\r\n"
        "Content-Disposition: form-data; name=\"file\"; "
        "filename=\"C:\\\\dir\\\\a.txt\"\r\n"
        "Content-Type: text/plain\r\n"
        "\r\n"
        "hello\r\n"
        "--XyZ\r\n"
        "content-disposition: form-data; name=note\r\n"
        "\r\n"
        "ignored\r\n"
        "--XyZ  \r\n"
        "Content-Disposition: form-data; name=\"file\"; filename=\"x\"; "
        "filename*=UTF-8''caf%C3%A9.bin\r\n"
        "\r\n"
        "\x00\x01\xff\r\n--XyZ--\r\n"
        "epilogue";
    struct omni_route r;
    json_t *d = upload("multipart/form-data; boundary=\"XyZ\"", body,
                       sizeof body - 1, &r);
    CU_ASSERT_FATAL(d != NULL);
    CU_ASSERT_EQUAL_FATAL(json_array_size(d), 2);
    json_t *a = json_array_get(d, 0), *b = json_array_get(d, 1);
    CU_ASSERT_STRING_EQUAL(field(a, "id"), "a.txt");
    CU_ASSERT_STRING_EQUAL(field(a, "content_base64"), "aGVsbG8=");
    CU_ASSERT_STRING_EQUAL(field(a, "content_type"), "text/plain");
    CU_ASSERT_STRING_EQUAL(field(b, "id"), "caf\xc3\xa9.bin");
    CU_ASSERT_STRING_EQUAL(field(b, "content_base64"), "AAH/");
    CU_ASSERT_STRING_EQUAL(field(b, "content_type"),
                           "application/octet-stream");
    json_decref(d);
    omni_route_release(&r);

    /* A part with no headers at all, then an empty file. */
    static const char b2[] = "--b\r\n\r\nx\r\n--b\r\nContent-Disposition: "
                             "form-data; name=file; filename=e\r\n\r\n"
                             "\r\n--b--";
    d = upload("multipart/form-data; charset=utf-8; boundary=b", b2,
               sizeof b2 - 1, &r);
    CU_ASSERT_FATAL(d != NULL);
    CU_ASSERT_EQUAL(json_array_size(d), 1);
    CU_ASSERT_STRING_EQUAL(field(json_array_get(d, 0), "id"), "e");
    CU_ASSERT_STRING_EQUAL(field(json_array_get(d, 0), "content_base64"), "");
    json_decref(d);
    omni_route_release(&r);

    static const struct {
        const char *ctype, *body, *msg;
    } bad[] = {
        {"multipart/form-data", "--b\r\n", "boundary"},
        {"multipart/form-data; boundary=", "--\r\n", "boundary"},
        {"multipart/form-data; boundary=b", "nothing here", "no part"},
        {"multipart/form-data; boundary=b",
         "--b\r\nContent-Disposition: form-data; name=file; filename=a\r\n"
         "\r\nabc",
         "truncated multipart body"},
        {"multipart/form-data; boundary=b",
         "--b\r\nContent-Disposition: form-data; name=file", "truncated"},
        {"multipart/form-data; boundary=b", "--bx\r\n\r\n\r\n--b--",
         "malformed multipart delimiter"},
        {"multipart/form-data; boundary=b",
         "--b\r\nContent-Disposition: form-data; name=\"file; "
         "filename=a\r\n\r\nx\r\n--b--",
         "Content-Disposition"},
        {"multipart/form-data; boundary=b",
         "--b\r\nContent-Disposition: form-data; name=file\r\n\r\nx\r\n"
         "--b--",
         "bad file name"},
        {"multipart/form-data; boundary=b",
         "--b\r\nContent-Disposition: form-data; name=file; filename=\"d/"
         "\"\r\n\r\nx\r\n--b--",
         "bad file name"},
        {"multipart/form-data; boundary=b",
         "--b\r\nContent-Disposition: form-data; name=file; filename=a; "
         "filename*=bad\r\n\r\nx\r\n--b--",
         "Content-Disposition"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        d = upload(bad[i].ctype, bad[i].body, strlen(bad[i].body), &r);
        CU_ASSERT_PTR_NULL(d);
        json_decref(d);
        CU_ASSERT_EQUAL(r.out.status, 400);
        if (!strstr(r.out.body.data, bad[i].msg))
            fprintf(stderr, "multipart case %zu: got %s, want '%s'\n", i,
                    r.out.body.data, bad[i].msg);
        CU_ASSERT_PTR_NOT_NULL(strstr(r.out.body.data, bad[i].msg));
        omni_route_release(&r);
    }
}

static CU_TestInfo route_tests[] = {
    {"every route", test_routes_table},
    {"health and metrics", test_routes_local},
    {"immediate errors", test_routes_errors},
    {"body limit and deadline header", test_routes_limits},
    {"client keys", test_routes_auth},
    {"mcp headers", test_routes_mcp_headers},
    {"path escapes, names and ids", test_path_checks},
    CU_TEST_INFO_NULL,
};

static CU_TestInfo reply_tests[] = {
    {"event errors", test_reply_event_errors},
    {"upstream error json", test_reply_upstream_json},
    {"local errors", test_reply_local_errors},
    {"final bodies", test_reply_final},
    {"sse framing", test_reply_sse},
    CU_TEST_INFO_NULL,
};

static CU_TestInfo multipart_tests[] = {
    {"base64", test_base64},
    {"uploads", test_multipart},
    CU_TEST_INFO_NULL,
};

CU_SuiteInfo omni_test_suites[] = {
    {"routes", NULL, NULL, NULL, NULL, route_tests},
    {"replies", NULL, NULL, NULL, NULL, reply_tests},
    {"multipart", NULL, NULL, NULL, NULL, multipart_tests},
    CU_SUITE_INFO_NULL,
};
