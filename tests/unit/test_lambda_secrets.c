/*
 * test_lambda_secrets - GetSecretValue replies to variables (secrets),
 * the ARN's region, the refusals before any network call, and header
 * lookup in a Runtime API response (lapi).
 */
#include <stdio.h>
#include <string.h>

#include "lapi.h"
#include "secrets.h"
#include "unit.h"

static void test_parse(void)
{
    static const char reply[] =
        "{\"ARN\":\"arn:x\",\"Name\":\"n\",\"SecretString\":"
        "\"{\\\"OPENAI_API_KEY\\\":\\\"sk-1\\\",\\\"B_2\\\":\\\"v\\\","
        "\\\"bad name\\\":\\\"x\\\",\\\"9X\\\":\\\"y\\\",\\\"N\\\":5}\"}";
    struct omni_secrets s = {0};
    char err[OMNI_ERR_LEN] = "";
    CU_ASSERT_EQUAL_FATAL(omni_secrets_parse(reply, strlen(reply), &s, err),
                          OMNI_OK);
    CU_ASSERT_EQUAL_FATAL(s.n, 2);
    CU_ASSERT_EQUAL(s.skipped, 3);
    CU_ASSERT_STRING_EQUAL(s.names[0], "OPENAI_API_KEY");
    CU_ASSERT_STRING_EQUAL(s.values[0], "sk-1");
    CU_ASSERT_STRING_EQUAL(s.names[1], "B_2");
    CU_ASSERT_STRING_EQUAL(s.values[1], "v");
    omni_secrets_release(&s);
    CU_ASSERT_EQUAL(s.n, 0);
    CU_ASSERT_PTR_NULL(s.names);
}

static void test_parse_refusals(void)
{
    static const struct {
        const char *reply, *want;
    } cases[] = {
        {"{\"SecretBinary\":\"AAAA\"}", "SecretBinary"},
        {"{\"Name\":\"n\"}", "no SecretString"},
        {"not json", "no SecretString"},
        {"{\"SecretString\":\"[1,2]\"}", "JSON object"},
        {"{\"SecretString\":\"sk-plain-text\"}", "JSON object"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        struct omni_secrets s = {0};
        char err[OMNI_ERR_LEN] = "";
        CU_ASSERT_NOT_EQUAL(
            omni_secrets_parse(cases[i].reply, strlen(cases[i].reply), &s, err),
            OMNI_OK);
        if (!strstr(err, cases[i].want))
            fprintf(stderr, "case %zu: got '%s', want '%s'\n", i, err,
                    cases[i].want);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, cases[i].want));
        /* The secret's text never comes back in the message. */
        CU_ASSERT_PTR_NULL(strstr(err, "sk-plain-text"));
        CU_ASSERT_EQUAL(s.n, 0);
        omni_secrets_release(&s);
    }
}

static void test_arn_region(void)
{
    static const struct {
        const char *arn, *want;
    } cases[] = {
        {"arn:aws:secretsmanager:eu-west-1:123456789012:secret:k-AbC",
         "eu-west-1"},
        {"arn:aws-cn:secretsmanager:cn-north-1:1:secret:x", "cn-north-1"},
        {"arn:aws:secretsmanager", ""},
        {"omni-keys", ""},
        {"", ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char r[64];
        omni_secrets_arn_region(cases[i].arn, r, sizeof r);
        CU_ASSERT_STRING_EQUAL(r, cases[i].want);
    }
}

/* Missing region or credentials fail before any request is made. */
static void test_fetch_refusals(void)
{
    struct omni_secrets_cfg cfg = {.arn = "omni-keys",
                                   .key_id = "AKIA",
                                   .secret_key = "s",
                                   .endpoint = "http://127.0.0.1:9/",
                                   .timeout_ms = 100};
    struct omni_secrets s = {0};
    char err[OMNI_ERR_LEN] = "";
    CU_ASSERT_EQUAL(omni_secrets_fetch(&cfg, &s, err), OMNI_E_CONFIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "AWS_REGION"));
    cfg.region = "us-east-1";
    cfg.secret_key = "";
    CU_ASSERT_EQUAL(omni_secrets_fetch(&cfg, &s, err), OMNI_E_CONFIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "AWS_SECRET_ACCESS_KEY"));
    /* Nothing listens on port 9: a network error, tried twice. */
    cfg.secret_key = "s";
    CU_ASSERT_EQUAL(omni_secrets_fetch(&cfg, &s, err), OMNI_E_IO);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "omni-keys"));
    omni_secrets_release(&s);
}

static void test_header(void)
{
    struct omni_lapi_resp r;
    omni_lapi_resp_init(&r);
    omni_buf_adds(&r.headers, "HTTP/1.1 200 OK\r\n"
                              "Lambda-Runtime-Aws-Request-Id: abc-1\r\n"
                              "lambda-runtime-deadline-ms:  1700000000000 \r\n"
                              "X-Empty:\r\n"
                              "\r\n");
    char v[64];
    CU_ASSERT(
        omni_lapi_header(&r, "Lambda-Runtime-Aws-Request-Id", v, sizeof v));
    CU_ASSERT_STRING_EQUAL(v, "abc-1");
    CU_ASSERT(omni_lapi_header(&r, "Lambda-Runtime-Deadline-Ms", v, sizeof v));
    CU_ASSERT_STRING_EQUAL(v, "1700000000000");
    CU_ASSERT(omni_lapi_header(&r, "x-empty", v, sizeof v));
    CU_ASSERT_STRING_EQUAL(v, "");
    CU_ASSERT_FALSE(
        omni_lapi_header(&r, "Lambda-Runtime-Trace-Id", v, sizeof v));
    CU_ASSERT_STRING_EQUAL(v, "");
    /* A prefix of a name is not the name. */
    CU_ASSERT_FALSE(omni_lapi_header(&r, "Lambda-Runtime", v, sizeof v));
    /* Truncated into a small buffer, still terminated. */
    char small[5];
    CU_ASSERT(omni_lapi_header(&r, "Lambda-Runtime-Aws-Request-Id", small,
                               sizeof small));
    CU_ASSERT_STRING_EQUAL(small, "abc-");
    omni_lapi_resp_release(&r);
}

static CU_TestInfo tests[] = {
    {"GetSecretValue reply", test_parse},
    {"refused replies", test_parse_refusals},
    {"region of an ARN", test_arn_region},
    {"refused before the network", test_fetch_refusals},
    {"Runtime API header lookup", test_header},
    CU_TEST_INFO_NULL,
};

CU_SuiteInfo omni_test_suites[] = {
    {"lambda_secrets", NULL, NULL, NULL, NULL, tests},
    CU_SUITE_INFO_NULL,
};
