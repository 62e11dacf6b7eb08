/*
 * test_llmeng_logic - the llm engine's pure parts: cache keys and their
 * canonical form, Redis URLs, the retry policy, provider configuration
 * (OMNI_PROVIDERS) and model routing.
 */
#include <stdlib.h>
#include <string.h>

#include "llm_cache.h"
#include "llm_retry.h"
#include "llm_route.h"
#include "omni_cfg.h"
#include "unit.h"

static json_t *parse(const char *s)
{
    json_t *j = json_loads(s, 0, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    return j;
}

static char *canon(const char *body, const char *model)
{
    struct omni_buf b = OMNI_BUF_INIT;
    json_t *j = parse(body);
    llm_cache_canonical(j, model, &b);
    json_decref(j);
    return omni_buf_detach(&b, NULL);
}

/* Dropped fields go, the rest stay sorted, the model is the resolved
 * one. */
static void test_canonical(void)
{
    static const struct {
        const char *body, *want;
    } cases[] = {
        {"{\"model\":\"gpt\",\"messages\":[{\"role\":\"user\",\"content\":"
         "\"hi\"}],\"stream\":true,\"stream_options\":{\"include_usage\":"
         "true},\"user\":\"u1\",\"omni\":{\"cache\":true},\"metadata\":{"
         "\"a\":1},\"store\":true,\"service_tier\":\"auto\","
         "\"prompt_cache_key\":\"k\",\"safety_identifier\":\"s\"}",
         "{\"messages\":[{\"content\":\"hi\",\"role\":\"user\"}],"
         "\"model\":\"openai/gpt\"}"},
        {"{\"temperature\":0.5,\"n\":2,\"seed\":7,\"messages\":[]}",
         "{\"messages\":[],\"model\":\"openai/gpt\",\"n\":2,\"seed\":7,"
         "\"temperature\":0.5}"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *got = canon(cases[i].body, "openai/gpt");
        if (strcmp(got, cases[i].want) != 0)
            fprintf(stderr, "case %zu: got %s, want %s\n", i, got,
                    cases[i].want);
        CU_ASSERT_STRING_EQUAL(got, cases[i].want);
        free(got);
    }
}

static void key_of(const char *body, const char *model,
                   char key[LLM_CACHE_KEY_LEN])
{
    json_t *j = parse(body);
    llm_cache_key(j, model, key);
    json_decref(j);
}

static void test_key(void)
{
    char a[LLM_CACHE_KEY_LEN], b[LLM_CACHE_KEY_LEN];
    key_of("{\"messages\":[1],\"stream\":true,\"user\":\"x\"}", "openai/m", a);
    key_of("{\"user\":\"y\",\"messages\":[1]}", "openai/m", b);
    CU_ASSERT_EQUAL(strlen(a), strlen(LLM_CACHE_PREFIX) + 64);
    CU_ASSERT_EQUAL(strncmp(a, LLM_CACHE_PREFIX, strlen(LLM_CACHE_PREFIX)), 0);
    CU_ASSERT_STRING_EQUAL(a, b);
    /* SHA-256 of {"model":"openai/m"} (from sha256sum) */
    key_of("{}", "openai/m", a);
    CU_ASSERT_STRING_EQUAL(a, "omni:{cache}:"
                              "f22aeea552d1ace786fe62d5d2bc4019"
                              "52d12347c52930c508fc4c9df1b11963");
    /* What changes the answer changes the key. */
    key_of("{\"messages\":[1]}", "openai/m", a);
    key_of("{\"messages\":[1],\"temperature\":1}", "openai/m", b);
    CU_ASSERT_STRING_NOT_EQUAL(a, b);
    key_of("{\"messages\":[1]}", "anthropic/m", b);
    CU_ASSERT_STRING_NOT_EQUAL(a, b);
    key_of("{\"messages\":[1],\"n\":2}", "openai/m", b);
    CU_ASSERT_STRING_NOT_EQUAL(a, b);
}

static void test_redis_url(void)
{
    static const struct {
        const char *url;
        bool ok;
        const char *host, *path, *user, *pass;
        int port, db;
    } cases[] = {
        {"redis://127.0.0.1:6390/2", true, "127.0.0.1", NULL, NULL, NULL, 6390,
         2},
        {"redis://localhost", true, "localhost", NULL, NULL, NULL, 6379, 0},
        {"redis://:secret@h:1/", true, "h", NULL, NULL, "secret", 1, 0},
        {"redis://bob:pw@h/3", true, "h", NULL, "bob", "pw", 6379, 3},
        {"redis://[::1]:7000", true, "::1", NULL, NULL, NULL, 7000, 0},
        {"unix:///run/redis.sock", true, NULL, "/run/redis.sock", NULL, NULL,
         6379, 0},
        {"unix:///tmp/r.sock?db=4", true, NULL, "/tmp/r.sock", NULL, NULL, 6379,
         4},
        {"http://h:1", false, NULL, NULL, NULL, NULL, 0, 0},
        {"redis://h:99999", false, NULL, NULL, NULL, NULL, 0, 0},
        {"redis://h:x", false, NULL, NULL, NULL, NULL, 0, 0},
        {"redis://:1", false, NULL, NULL, NULL, NULL, 0, 0},
        {"redis://h/db", false, NULL, NULL, NULL, NULL, 0, 0},
        {"unix://rel.sock", false, NULL, NULL, NULL, NULL, 0, 0},
        {"redis://[::1", false, NULL, NULL, NULL, NULL, 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        struct llm_cache_url u;
        char err[OMNI_ERR_LEN] = "";
        enum omni_err rc = llm_cache_parse_url(cases[i].url, &u, err);
        if ((rc == OMNI_OK) != cases[i].ok)
            fprintf(stderr, "'%s': got %s, want %s\n", cases[i].url,
                    rc == OMNI_OK ? "ok" : err,
                    cases[i].ok ? "ok" : "an error");
        CU_ASSERT_EQUAL(rc == OMNI_OK, cases[i].ok);
        if (rc != OMNI_OK) {
            CU_ASSERT(strstr(err, "redis_url") != NULL);
            continue;
        }
#define SAME(a, b) ((a) == NULL ? (b) == NULL : (b) && !strcmp((a), (b)))
        CU_ASSERT(SAME(cases[i].host, u.host));
        CU_ASSERT(SAME(cases[i].path, u.path));
        CU_ASSERT(SAME(cases[i].user, u.user));
        CU_ASSERT(SAME(cases[i].pass, u.pass));
#undef SAME
        CU_ASSERT_EQUAL(u.port, cases[i].port);
        CU_ASSERT_EQUAL(u.db, cases[i].db);
        llm_cache_url_release(&u);
    }
}

static const struct llm_retry_policy pol = {2, 250, 30000};

static struct llm_error err_of(int status, bool retryable, uint32_t ra)
{
    struct llm_error e = {OMNI_E_UPSTREAM, status, ra, retryable, ""};
    return e;
}

static void test_retry_decisions(void)
{
    static const struct {
        int status;
        bool retryable, sent;
        int retries;
        uint32_t retry_after;
        int64_t deadline;
        bool want;
    } cases[] = {
        {429, true, false, 0, 0, 0, true},
        {500, true, false, 1, 0, 0, true},
        {529, true, false, 0, 0, 0, true},
        {0, true, false, 0, 0, 0, true},        /* connection error */
        {500, true, false, 2, 0, 0, false},     /* retries used up */
        {500, true, true, 0, 0, 0, false},      /* a chunk went out */
        {400, false, false, 0, 0, 0, false},    /* not retryable */
        {429, true, false, 0, 60000, 0, false}, /* hint beyond the cap */
        {429, true, false, 0, 5000, 1000 + 3000, false}, /* past deadline */
        {429, true, false, 0, 2000, 1000 + 3500, true},
        {500, true, false, 0, 0, 1000 + 100, false}, /* backoff > left */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        struct llm_error e =
            err_of(cases[i].status, cases[i].retryable, cases[i].retry_after);
        struct llm_retry_decision d =
            llm_retry_decide(&pol, cases[i].retries, &e, cases[i].sent, 1000,
                             cases[i].deadline, 12345);
        if (d.retry != cases[i].want)
            fprintf(stderr, "case %zu: got retry=%d, want %d\n", i, d.retry,
                    cases[i].want);
        CU_ASSERT_EQUAL(d.retry, cases[i].want);
        if (d.retry && cases[i].retry_after)
            CU_ASSERT(d.delay_ms >= cases[i].retry_after);
    }
}

/* Jittered exponential: within [b/2, b] for b = base * 2^retries, and
 * the extremes of the random value reach both ends. */
static void test_retry_backoff_bounds(void)
{
    struct llm_retry_policy p = {5, 250, 30000};
    struct llm_error e = err_of(503, true, 0);
    uint32_t rnds[] = {0, 1, 125, 126, 777, 0xffffffffu};
    for (int k = 0; k < 5; k++) {
        uint32_t b = 250u << k;
        uint32_t lo = UINT32_MAX, hi = 0;
        for (size_t i = 0; i < sizeof rnds / sizeof *rnds; i++) {
            struct llm_retry_decision d =
                llm_retry_decide(&p, k, &e, false, 0, 0, rnds[i]);
            CU_ASSERT_TRUE(d.retry);
            if (d.delay_ms < b / 2 || d.delay_ms > b)
                fprintf(stderr, "retry %d: got %u ms, want [%u, %u]\n", k,
                        d.delay_ms, b / 2, b);
            CU_ASSERT(d.delay_ms >= b / 2 && d.delay_ms <= b);
            lo = d.delay_ms < lo ? d.delay_ms : lo;
            hi = d.delay_ms > hi ? d.delay_ms : hi;
        }
        CU_ASSERT_EQUAL(lo, b / 2);
        CU_ASSERT(hi > lo);
    }
    /* The cap holds for many retries. */
    p.max_retries = 40;
    struct llm_retry_decision d =
        llm_retry_decide(&p, 30, &e, false, 0, 0, 0xffffffffu);
    CU_ASSERT_TRUE(d.retry);
    CU_ASSERT(d.delay_ms <= 30000);
}

static void load_env(const char *providers)
{
    char err[OMNI_ERR_LEN];
    setenv("OMNI_PROVIDERS", providers, 1);
    CU_ASSERT_EQUAL_FATAL(omni_cfg_load(NULL, err), OMNI_OK);
}

static void clear_env(void)
{
    unsetenv("OPENAI_API_KEY");
    unsetenv("OPENAI_BASE_URL");
    unsetenv("ANTHROPIC_API_KEY");
    unsetenv("ANTHROPIC_BASE_URL");
    unsetenv("OMNI_DEFAULT_MODEL");
    unsetenv("OMNI_CONFIG");
    unsetenv("TEST_GROQ_KEY");
}

static void test_providers_spec(void)
{
    clear_env();
    setenv("TEST_GROQ_KEY", "gsk-test-1234", 1);
    load_env(" ollama=http://127.0.0.1:11434/v1/ , "
             "groq=https://api.groq.com/openai/v1|TEST_GROQ_KEY,"
             "nokey=http://h/v1|TEST_UNSET_KEY,,");
    struct llm_routes rt;
    char err[OMNI_ERR_LEN];
    CU_ASSERT_EQUAL_FATAL(llm_routes_load(&rt, err), OMNI_OK);
    CU_ASSERT_EQUAL_FATAL(rt.n, 5);
    CU_ASSERT_STRING_EQUAL(rt.v[2].name, "ollama");
    CU_ASSERT_STRING_EQUAL(rt.v[2].base_url, "http://127.0.0.1:11434/v1");
    CU_ASSERT_STRING_EQUAL(rt.v[2].api_key, "");
    CU_ASSERT_TRUE(rt.v[2].enabled);
    CU_ASSERT_STRING_EQUAL(rt.v[3].api_key, "gsk-test-1234");
    CU_ASSERT_TRUE(rt.v[3].enabled);
    CU_ASSERT_FALSE(rt.v[4].enabled);
    /* Neither key nor base URL: openai and anthropic are off. */
    CU_ASSERT_FALSE(rt.v[0].enabled);
    CU_ASSERT_FALSE(rt.v[1].enabled);
    CU_ASSERT_EQUAL(llm_routes_enabled(&rt), 2);
    llm_routes_release(&rt);
}

static void test_providers_bad(void)
{
    static const char *bad[] = {
        "noequals",        "=http://h",
        "a b=http://h",    "x=ftp://h",
        "x=http://",       "x=http://h|1BAD",
        "x=http://h|",     "x=http://h,x=http://g",
        "openai=http://h",
    };
    clear_env();
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        struct llm_routes rt;
        char err[OMNI_ERR_LEN] = "";
        load_env(bad[i]);
        enum omni_err rc = llm_routes_load(&rt, err);
        if (rc == OMNI_OK)
            fprintf(stderr, "'%s': got ok, want an error\n", bad[i]);
        CU_ASSERT_EQUAL(rc, OMNI_E_CONFIG);
        CU_ASSERT(strstr(err, "provider") != NULL);
        CU_ASSERT_EQUAL(rt.n, 0);
    }
}

static void test_routing(void)
{
    clear_env();
    setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1", 1);
    setenv("ANTHROPIC_API_KEY", "sk-ant-test-123456", 1);
    setenv("OMNI_DEFAULT_MODEL", "anthropic/claude-x", 1);
    load_env("or=http://h/api/v1");
    struct llm_routes rt;
    char err[OMNI_ERR_LEN];
    CU_ASSERT_EQUAL_FATAL(llm_routes_load(&rt, err), OMNI_OK);
    static const struct {
        const char *model;
        enum omni_err want;
        const char *prov, *upstream, *err_has;
    } cases[] = {
        {"openai/gpt-4o-mini", OMNI_OK, "openai", "gpt-4o-mini", NULL},
        {"anthropic/claude-sonnet-4-5", OMNI_OK, "anthropic",
         "claude-sonnet-4-5", NULL},
        {"or/meta/llama-3", OMNI_OK, "or", "meta/llama-3", NULL},
        {"", OMNI_OK, "anthropic", "claude-x", NULL},
        {NULL, OMNI_OK, "anthropic", "claude-x", NULL},
        {"gpt-4o", OMNI_E_BAD_REQUEST, NULL, NULL, "'gpt-4o'"},
        {"openai/", OMNI_E_BAD_REQUEST, NULL, NULL, "'openai/'"},
        {"/m", OMNI_E_BAD_REQUEST, NULL, NULL, "'/m'"},
        {"nope/m", OMNI_E_NOT_FOUND, NULL, NULL, "'nope/m'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        struct llm_target t;
        char e2[OMNI_ERR_LEN] = "";
        enum omni_err rc = llm_route(&rt, cases[i].model, &t, e2);
        if (rc != cases[i].want)
            fprintf(stderr, "'%s': got %d (%s), want %d\n",
                    cases[i].model ? cases[i].model : "(null)", rc, e2,
                    cases[i].want);
        CU_ASSERT_EQUAL(rc, cases[i].want);
        if (rc == OMNI_OK && cases[i].want == OMNI_OK) {
            CU_ASSERT_STRING_EQUAL(t.name, cases[i].prov);
            CU_ASSERT_STRING_EQUAL(t.model, cases[i].upstream);
        } else if (cases[i].err_has) {
            CU_ASSERT(strstr(e2, cases[i].err_has) != NULL);
        }
    }
    struct llm_target t;
    CU_ASSERT_EQUAL(llm_route(&rt, "openai/x", &t, err), OMNI_OK);
    CU_ASSERT_STRING_EQUAL(t.base_url, "http://127.0.0.1:9/v1");
    CU_ASSERT_STRING_EQUAL(t.api_key, "");
    CU_ASSERT_EQUAL(llm_route(&rt, "anthropic/x", &t, err), OMNI_OK);
    CU_ASSERT_STRING_EQUAL(t.version, "2023-06-01");
    CU_ASSERT_STRING_EQUAL(t.base_url, "https://api.anthropic.com");
    llm_routes_release(&rt);

    /* A disabled provider is named with the variable that enables it. */
    clear_env();
    load_env("");
    CU_ASSERT_EQUAL_FATAL(llm_routes_load(&rt, err), OMNI_OK);
    CU_ASSERT_EQUAL(llm_route(&rt, "anthropic/claude", &t, err),
                    OMNI_E_NOT_FOUND);
    CU_ASSERT(strstr(err, "ANTHROPIC_API_KEY") != NULL);
    CU_ASSERT(strstr(err, "'anthropic/claude'") != NULL);
    CU_ASSERT_EQUAL(llm_route(&rt, NULL, &t, err), OMNI_E_BAD_REQUEST);
    CU_ASSERT(strstr(err, "model") != NULL);
    llm_routes_release(&rt);
    omni_cfg_free();
}

static CU_TestInfo tests[] = {
    {"canonical form drops and sorts", test_canonical},
    {"cache key", test_key},
    {"redis url", test_redis_url},
    {"retry decisions", test_retry_decisions},
    {"retry backoff bounds", test_retry_backoff_bounds},
    {"OMNI_PROVIDERS parsing", test_providers_spec},
    {"OMNI_PROVIDERS errors", test_providers_bad},
    {"model routing", test_routing},
    CU_TEST_INFO_NULL,
};

CU_SuiteInfo omni_test_suites[] = {
    {"llmeng_logic", NULL, NULL, NULL, NULL, tests},
    CU_SUITE_INFO_NULL,
};
