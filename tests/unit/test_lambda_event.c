/*
 * test_lambda_event - Lambda events in, Lambda payloads out (levent):
 * payload 2.0 parsing (stage prefix, query, headers in any case, base64
 * bodies, Function URL detection), direct invocations and their
 * validation, invalid events, payload-2.0 responses, the streaming
 * prelude, error types and bodies, base64.
 */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "levent.h"
#include "unit.h"

static void parse(const char *json, struct omni_levent *ev)
{
    omni_levent_parse(json, strlen(json), ev);
}

static void test_http_event(void)
{
    struct omni_levent ev;
    parse("{\"version\":\"2.0\",\"rawPath\":\"/prod/v1/chat/completions\","
          "\"rawQueryString\":\"a=1&b=2\",\"headers\":{\"Authorization\":"
          "\"Bearer k\",\"content-type\":\"application/json\","
          "\"x-omni-timeout-ms\":\"900\",\"mcp-session-id\":\"s1\"},"
          "\"requestContext\":{\"domainName\":\"x.execute-api.us-east-1."
          "amazonaws.com\",\"stage\":\"prod\",\"http\":{\"method\":\"POST\"}"
          "},\"body\":\"eyJhIjoxfQ==\",\"isBase64Encoded\":true}",
          &ev);
    CU_ASSERT_EQUAL_FATAL(ev.kind, OMNI_LEVENT_HTTP);
    CU_ASSERT_STRING_EQUAL(ev.method, "POST");
    CU_ASSERT_STRING_EQUAL(ev.target, "/v1/chat/completions?a=1&b=2");
    CU_ASSERT_STRING_EQUAL(ev.authorization, "Bearer k");
    CU_ASSERT_STRING_EQUAL(ev.content_type, "application/json");
    CU_ASSERT_STRING_EQUAL(ev.timeout_ms, "900");
    CU_ASSERT_STRING_EQUAL(ev.mcp_session, "s1");
    CU_ASSERT_PTR_NULL(ev.accept);
    CU_ASSERT_FALSE(ev.function_url);
    CU_ASSERT_FALSE(ev.body_invalid);
    CU_ASSERT_STRING_EQUAL(ev.body.data, "{\"a\":1}");
    struct omni_http_in in;
    omni_levent_http_in(&ev, &in);
    CU_ASSERT_PTR_EQUAL(in.target, ev.target);
    CU_ASSERT_EQUAL(in.body_len, 7);
    CU_ASSERT_FALSE(in.loopback);
    omni_levent_release(&ev);
}

/* rawPath and stage -> target. */
static void test_stage_prefix(void)
{
    static const struct {
        const char *path, *stage, *want;
    } cases[] = {
        {"/v1/models", "$default", "/v1/models"},
        {"/v1/models", NULL, "/v1/models"},
        {"/staging/v1/models", "staging", "/v1/models"},
        {"/staging", "staging", "/"},
        {"/stagingx/v1", "staging", "/stagingx/v1"},
        {"/v1/staging/x", "staging", "/v1/staging/x"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char js[512];
        char stage[64] = "";
        if (cases[i].stage)
            snprintf(stage, sizeof stage, ",\"stage\":\"%s\"", cases[i].stage);
        snprintf(js, sizeof js,
                 "{\"rawPath\":\"%s\",\"requestContext\":{\"domainName\":"
                 "\"a.lambda-url.eu-west-1.on.aws\",\"http\":{\"method\":"
                 "\"GET\"}%s}}",
                 cases[i].path, stage);
        struct omni_levent ev;
        parse(js, &ev);
        CU_ASSERT_EQUAL_FATAL(ev.kind, OMNI_LEVENT_HTTP);
        CU_ASSERT(ev.function_url);
        if (strcmp(ev.target, cases[i].want) != 0)
            fprintf(stderr, "case %zu: got '%s', want '%s'\n", i, ev.target,
                    cases[i].want);
        CU_ASSERT_STRING_EQUAL(ev.target, cases[i].want);
        CU_ASSERT_EQUAL(ev.body.len, 0);
        omni_levent_release(&ev);
    }
}

static void test_direct(void)
{
    struct omni_levent ev;
    parse("{\"service\":\"llm\",\"op\":\"chat\",\"body\":{\"model\":\"m\"},"
          "\"stream\":true,\"timeout_ms\":1500,\"idempotent\":true,"
          "\"auth\":\"key\"}",
          &ev);
    CU_ASSERT_EQUAL_FATAL(ev.kind, OMNI_LEVENT_DIRECT);
    CU_ASSERT_STRING_EQUAL(ev.service, "llm");
    CU_ASSERT_STRING_EQUAL(ev.op, "chat");
    CU_ASSERT_STRING_EQUAL(ev.body.data, "{\"model\":\"m\"}");
    CU_ASSERT(ev.stream);
    CU_ASSERT(ev.idempotent);
    CU_ASSERT_EQUAL(ev.direct_timeout_ms, 1500);
    CU_ASSERT_STRING_EQUAL(ev.auth, "key");
    omni_levent_release(&ev);

    /* A string body is sent as it is; no body is {}. */
    parse("{\"service\":\"echo\",\"op\":\"echo\",\"body\":\"raw text\"}", &ev);
    CU_ASSERT_EQUAL_FATAL(ev.kind, OMNI_LEVENT_DIRECT);
    CU_ASSERT_STRING_EQUAL(ev.body.data, "raw text");
    CU_ASSERT_FALSE(ev.stream);
    CU_ASSERT_PTR_NULL(ev.auth);
    omni_levent_release(&ev);
    parse("{\"service\":\"omni\",\"op\":\"ping\"}", &ev);
    CU_ASSERT_STRING_EQUAL(ev.body.data, "{}");
    omni_levent_release(&ev);
}

/* Events that are refused, with a word the message must hold. */
static void test_invalid(void)
{
    static const struct {
        const char *json, *want;
    } cases[] = {
        {"", "not JSON"},
        {"[1]", "JSON object"},
        {"{\"a\":1}", "invalid event"},
        {"{\"service\":\"\",\"op\":\"x\"}", "'service'"},
        {"{\"service\":\"llm\"}", "'op'"},
        {"{\"service\":\"llm\",\"op\":7}", "'op'"},
        {"{\"service\":\"llm\",\"op\":\"x\",\"stream\":1}", "booleans"},
        {"{\"service\":\"llm\",\"op\":\"x\",\"timeout_ms\":-1}",
         "'timeout_ms'"},
        {"{\"service\":\"llm\",\"op\":\"x\",\"auth\":5}", "'auth'"},
        {"{\"service\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
         "aaaaaaaaaaaaaa\",\"op\":\"x\"}",
         "'service'"},
        {"{\"httpMethod\":\"GET\",\"requestContext\":{}}", "1.0"},
        {"{\"rawPath\":\"/x\",\"requestContext\":{}}", "method"},
        {"{\"requestContext\":{\"http\":{\"method\":\"GET\"}}}", "rawPath"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        struct omni_levent ev;
        parse(cases[i].json, &ev);
        CU_ASSERT_EQUAL(ev.kind, OMNI_LEVENT_BAD);
        if (!strstr(ev.err, cases[i].want))
            fprintf(stderr, "case %zu: got '%s', want '%s' in it\n", i, ev.err,
                    cases[i].want);
        CU_ASSERT_PTR_NOT_NULL(strstr(ev.err, cases[i].want));
        omni_levent_release(&ev);
    }
    struct omni_levent ev;
    parse("{\"rawPath\":\"/x\",\"requestContext\":{\"http\":{\"method\":"
          "\"POST\"}},\"body\":\"a$b\",\"isBase64Encoded\":true}",
          &ev);
    CU_ASSERT_EQUAL(ev.kind, OMNI_LEVENT_HTTP);
    CU_ASSERT(ev.body_invalid);
    omni_levent_release(&ev);
}

static void test_response(void)
{
    struct omni_http_out out;
    omni_http_out_init(&out);
    out.status = 429;
    out.content_type = "application/json";
    out.allow = "POST";
    out.retry_after_s = 3;
    out.session = strdup("sess");
    omni_buf_adds(&out.body, "{\"q\":\"a\\\"b\"}\n");
    struct omni_buf b = OMNI_BUF_INIT;
    omni_levent_response(&out, &b);
    json_t *j = json_loads(b.data, 0, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(j, "statusCode")), 429);
    json_t *h = json_object_get(j, "headers");
    CU_ASSERT_STRING_EQUAL(
        json_string_value(json_object_get(h, "content-type")),
        "application/json");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(h, "allow")),
                           "POST");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(h, "retry-after")),
                           "3");
    CU_ASSERT_STRING_EQUAL(
        json_string_value(json_object_get(h, "mcp-session-id")), "sess");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(j, "body")),
                           "{\"q\":\"a\\\"b\"}\n");
    CU_ASSERT(json_is_false(json_object_get(j, "isBase64Encoded")));
    json_decref(j);
    free(out.session);
    out.session = NULL;
    omni_http_out_release(&out);
    omni_buf_release(&b);
}

static void test_prelude(void)
{
    struct omni_buf b = OMNI_BUF_INIT;
    omni_levent_prelude(200, "text/event-stream", &b);
    char *nul = memchr(b.data, '\0', b.len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(nul);
    size_t json_len = (size_t)(nul - b.data);
    CU_ASSERT_EQUAL(b.len, json_len + OMNI_LEVENT_NUL_LEN);
    for (size_t i = json_len; i < b.len; i++)
        CU_ASSERT_EQUAL(b.data[i], '\0');
    json_t *j = json_loadb(b.data, json_len, 0, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(j, "statusCode")), 200);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(
                               json_object_get(j, "headers"), "content-type")),
                           "text/event-stream");
    CU_ASSERT(json_is_array(json_object_get(j, "cookies")));
    json_decref(j);
    omni_buf_release(&b);
}

static void test_error_type(void)
{
    static const struct {
        const char *code, *want;
    } cases[] = {
        {"NO_SERVICE", "Function.NoService"},
        {"TIMEOUT", "Function.Timeout"},
        {"WORKER_LOST", "Function.WorkerLost"},
        {"upstream", "Function.Upstream"},
        {"", "Function.Internal"},
        {NULL, "Function.Internal"},
        {"__", "Function.Internal"},
        {"BAD-REQUEST 4", "Function.BadRequest"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char t[64];
        omni_levent_error_type(cases[i].code, t, sizeof t);
        if (strcmp(t, cases[i].want) != 0)
            fprintf(stderr, "case %zu: got '%s', want '%s'\n", i, t,
                    cases[i].want);
        CU_ASSERT_STRING_EQUAL(t, cases[i].want);
    }
    struct omni_buf b = OMNI_BUF_INIT;
    omni_levent_error_body(&b, "Function.Timeout", "late", "TIMEOUT", 504,
                           1500);
    json_t *j = json_loads(b.data, 0, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(j, "errorType")),
                           "Function.Timeout");
    CU_ASSERT_STRING_EQUAL(
        json_string_value(json_object_get(j, "errorMessage")), "late");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(j, "code")),
                           "TIMEOUT");
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(j, "status")), 504);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(j, "retryAfterMs")),
                    1500);
    CU_ASSERT(json_is_array(json_object_get(j, "stackTrace")));
    json_decref(j);
    omni_buf_reset(&b);
    omni_levent_error_body(&b, "Runtime.X", "m", NULL, 0, 0);
    CU_ASSERT_PTR_NULL(strstr(b.data, "\"code\""));
    omni_buf_release(&b);
}

static void test_base64(void)
{
    static const char *const plain[] = {"",     "f",     "fo",    "foo",
                                        "foob", "fooba", "foobar"};
    static const char *const coded[] = {
        "", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    for (size_t i = 0; i < sizeof plain / sizeof *plain; i++) {
        struct omni_buf e = OMNI_BUF_INIT, d = OMNI_BUF_INIT;
        omni_levent_b64_encode(plain[i], strlen(plain[i]), &e);
        CU_ASSERT_STRING_EQUAL(e.data, coded[i]);
        CU_ASSERT_EQUAL(omni_levent_b64_decode(e.data, e.len, &d), 0);
        CU_ASSERT_STRING_EQUAL(d.data, plain[i]);
        omni_buf_release(&e);
        omni_buf_release(&d);
    }
    static const char *const bad[] = {"Z", "Zm9v!", "Zm 9", "Zm9vY"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        struct omni_buf d = OMNI_BUF_INIT;
        CU_ASSERT_EQUAL(omni_levent_b64_decode(bad[i], strlen(bad[i]), &d), -1);
        omni_buf_release(&d);
    }
    /* Unpadded input decodes too. */
    struct omni_buf d = OMNI_BUF_INIT;
    CU_ASSERT_EQUAL(omni_levent_b64_decode("Zm8", 3, &d), 0);
    CU_ASSERT_STRING_EQUAL(d.data, "fo");
    omni_buf_release(&d);
}

static CU_TestInfo tests[] = {
    {"payload 2.0 event", test_http_event},
    {"stage prefix", test_stage_prefix},
    {"direct invocation", test_direct},
    {"invalid events", test_invalid},
    {"payload 2.0 response", test_response},
    {"streaming prelude", test_prelude},
    {"error types and bodies", test_error_type},
    {"base64", test_base64},
    CU_TEST_INFO_NULL,
};

CU_SuiteInfo omni_test_suites[] = {
    {"lambda_event", NULL, NULL, NULL, NULL, tests},
    CU_SUITE_INFO_NULL,
};
