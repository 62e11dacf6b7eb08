/*
 * test_core_common - buffers, errors, configuration and log redaction.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "omni_alloc.h"
#include "omni_buf.h"
#include "omni_cfg.h"
#include "omni_err.h"
#include "omni_log.h"
#include "omni_time.h"
#include "unit.h"

static void test_buf(void)
{
    struct omni_buf b = OMNI_BUF_INIT;
    CU_ASSERT_STRING_EQUAL(b.data, "");
    for (int i = 0; i < 1000; i++)
        omni_buf_addf(&b, "%d,", i);
    CU_ASSERT_EQUAL(b.len, strlen(b.data));
    CU_ASSERT_NSTRING_EQUAL(b.data, "0,1,2,", 6);
    omni_buf_consume(&b, 2);
    CU_ASSERT_NSTRING_EQUAL(b.data, "1,2,", 4);
    omni_buf_reset(&b);
    CU_ASSERT_EQUAL(b.len, 0);
    omni_buf_add_json_str(&b, "a\"b\\c\n\t\x01", 8);
    CU_ASSERT_STRING_EQUAL(b.data, "\"a\\\"b\\\\c\\n\\t\\u0001\"");
    size_t n;
    char *p = omni_buf_detach(&b, &n);
    CU_ASSERT_EQUAL(n, strlen(p));
    CU_ASSERT_EQUAL(b.len, 0);
    omni_free(p);
    p = omni_buf_detach(&b, NULL);
    CU_ASSERT_STRING_EQUAL(p, "");
    omni_free(p);
    omni_buf_consume(&b, 5);
    omni_buf_release(&b);
}

static void test_err_words(void)
{
    for (int e = OMNI_OK; e < OMNI_E__COUNT; e++) {
        const char *w = omni_err_code((enum omni_err)e);
        CU_ASSERT_EQUAL(omni_err_parse(w, strlen(w)), e);
        CU_ASSERT(omni_err_status((enum omni_err)e) >= 200);
    }
    CU_ASSERT_EQUAL(omni_err_parse("NOPE", 4), OMNI_E_INTERNAL);
    CU_ASSERT_EQUAL(omni_err_status(OMNI_E_NO_SERVICE), 404);
    CU_ASSERT_EQUAL(omni_err_status(OMNI_E_TIMEOUT), 504);
    CU_ASSERT_EQUAL(omni_err_status(OMNI_E_OVERLOADED), 503);
    CU_ASSERT_STRING_EQUAL(omni_err_code(OMNI_E_WORKER_LOST), "WORKER_LOST");
}

static char *write_tmp(const char *text)
{
    char *path = omni_strdup("/tmp/omni-cfg-XXXXXX");
    int fd = mkstemp(path);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    close(fd);
    return path;
}

static void test_cfg(void)
{
    char err[OMNI_ERR_LEN];
    unsetenv("OMNI_CONFIG");
    unsetenv("OMNI_QUEUE_MAX");
    CU_ASSERT_EQUAL(omni_cfg_load(NULL, err), OMNI_OK);
    CU_ASSERT_EQUAL(omni_cfg_int("broker.queue_max"), 1024);
    CU_ASSERT_STRING_EQUAL(omni_cfg_str("http_listen"), "127.0.0.1:8080");

    char *path = write_tmp("# comment\n\nbroker.queue_max = 7\n"
                           "  log_level=debug  \n");
    CU_ASSERT_EQUAL(omni_cfg_load(path, err), OMNI_OK);
    CU_ASSERT_EQUAL(omni_cfg_int("broker.queue_max"), 7);
    CU_ASSERT_STRING_EQUAL(omni_cfg_str("log_level"), "debug");
    CU_ASSERT_STRING_EQUAL(omni_cfg_path(), path);

    /* Environment beats the file; -o beats the environment. */
    setenv("OMNI_QUEUE_MAX", "9", 1);
    CU_ASSERT_EQUAL(omni_cfg_load(path, err), OMNI_OK);
    CU_ASSERT_EQUAL(omni_cfg_int("broker.queue_max"), 9);
    CU_ASSERT_EQUAL(omni_cfg_set("broker.queue_max=11", NULL, err), OMNI_OK);
    CU_ASSERT_EQUAL(omni_cfg_int("broker.queue_max"), 11);
    CU_ASSERT_EQUAL(omni_cfg_set("broker.queue_max", "x", err), OMNI_E_CONFIG);
    CU_ASSERT_EQUAL(omni_cfg_set("nokey=1", NULL, err), OMNI_E_CONFIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "unknown key 'nokey'"));
    CU_ASSERT_EQUAL(omni_cfg_set("novalue", NULL, err), OMNI_E_CONFIG);
    setenv("OMNI_QUEUE_MAX", "-5", 1);
    CU_ASSERT_EQUAL(omni_cfg_load(path, err), OMNI_E_CONFIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "OMNI_QUEUE_MAX"));
    unsetenv("OMNI_QUEUE_MAX");
    unlink(path);
    omni_free(path);

    static const struct {
        const char *text;
        const char *want;
    } bad[] = {
        {"brokr.socket = x\n", ":1: unknown key 'brokr.socket'"},
        {"\n\njust words\n", ":3: want 'key = value'"},
        {"broker.heartbeat_ms = 1\n", "want an integer in [50, 60000]"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        path = write_tmp(bad[i].text);
        CU_ASSERT_EQUAL(omni_cfg_load(path, err), OMNI_E_CONFIG);
        if (!strstr(err, bad[i].want))
            fprintf(stderr, "got '%s', want '%s'\n", err, bad[i].want);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, bad[i].want));
        unlink(path);
        omni_free(path);
    }
    CU_ASSERT_EQUAL(omni_cfg_load("/nonexistent/omni.conf", err),
                    OMNI_E_CONFIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "cannot open"));
    omni_cfg_free();
}

static void test_cfg_socket_default(void)
{
    char err[OMNI_ERR_LEN];
    unsetenv("OMNI_SOCKET");
    setenv("XDG_RUNTIME_DIR", "/run/user/1000", 1);
    CU_ASSERT_EQUAL(omni_cfg_load(NULL, err), OMNI_OK);
    CU_ASSERT_STRING_EQUAL(omni_cfg_socket_path(),
                           "/run/user/1000/omni/omni.sock");
    setenv("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001", 1);
    CU_ASSERT_STRING_EQUAL(omni_cfg_socket_path(), "/tmp/omni.sock");
    unsetenv("AWS_LAMBDA_RUNTIME_API");
    unsetenv("XDG_RUNTIME_DIR");
    CU_ASSERT_PTR_NOT_NULL(strstr(omni_cfg_socket_path(), "omni.sock"));
    setenv("OMNI_SOCKET", "/tmp/x.sock", 1);
    CU_ASSERT_EQUAL(omni_cfg_load(NULL, err), OMNI_OK);
    CU_ASSERT_STRING_EQUAL(omni_cfg_socket_path(), "/tmp/x.sock");
    unsetenv("OMNI_SOCKET");
    omni_cfg_free();
}

/* Read everything logged to a temp file during fn. */
static char *capture(void (*fn)(void))
{
    char path[] = "/tmp/omni-log-XXXXXX";
    int fd = mkstemp(path);
    omni_log_set_fd(fd);
    fn();
    omni_log_set_fd(2);
    off_t n = lseek(fd, 0, SEEK_END);
    char *out = omni_calloc(1, (size_t)n + 1);
    CU_ASSERT(pread(fd, out, (size_t)n, 0) == n);
    close(fd);
    unlink(path);
    return out;
}

static void log_secrets(void)
{
    omni_warn("calling with key %s", "sk-live-0123456789abcdefXYZ");
    omni_info("header Authorization: Bearer abcdefghijklmnop");
    omni_error("x-api-key: ant-secret-value-77 rejected");
    omni_info("json {\"api_key\":\"zzzz-registered-secret\"}");
    omni_info("aws AKIAIOSFODNN7EXAMPLE signed");
    omni_info("registered value plain: hunter2hunter2 end");
    omni_debug("not shown at info level");
}

static void test_redaction(void)
{
    omni_log_set_level(OMNI_LOG_INFO);
    omni_redact_add("hunter2hunter2");
    omni_redact_add("abc"); /* too short: ignored */
    omni_log_set_json(false);
    char *text = capture(log_secrets);
    omni_log_set_json(true);
    char *json = capture(log_secrets);
    const char *leaks[] = {"0123456789abcdef",
                           "abcdefghijklmnop",
                           "ant-secret-value-77",
                           "zzzz-registered-secret",
                           "AKIAIOSFODNN7EXAMPLE",
                           "hunter2hunter2",
                           "not shown"};
    for (size_t i = 0; i < sizeof leaks / sizeof *leaks; i++) {
        if (strstr(text, leaks[i]) || strstr(json, leaks[i]))
            fprintf(stderr, "leaked '%s'\n", leaks[i]);
        CU_ASSERT_PTR_NULL(strstr(text, leaks[i]));
        CU_ASSERT_PTR_NULL(strstr(json, leaks[i]));
    }
    CU_ASSERT_PTR_NOT_NULL(
        strstr(text, "warning: calling with key (redacted)"));
    CU_ASSERT_PTR_NOT_NULL(strstr(json, "\"level\":\"error\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "rejected"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "signed"));
    omni_free(text);
    omni_free(json);

    char out[64];
    omni_redact_str("token=hunter2hunter2 ok", out, sizeof out);
    CU_ASSERT_PTR_NULL(strstr(out, "hunter2"));
    omni_redact_str("unexpected token near end of file", out, sizeof out);
    CU_ASSERT_STRING_EQUAL(out, "unexpected token near end of file");
    omni_redact_str("token=abcdef123 password: swordfish1", out, sizeof out);
    CU_ASSERT_STRING_EQUAL(out, "token=(redacted) password: (redacted)");
    omni_redact_str("a very long line that will not fit in the buffer at all",
                    out, 8);
    CU_ASSERT_EQUAL(strlen(out), 7);
    omni_redact_clear();
    omni_redact_str("hunter2hunter2", out, sizeof out);
    CU_ASSERT_STRING_EQUAL(out, "hunter2hunter2");
}

/* Sensitive config values are registered for redaction as they load,
 * and print as (redacted). */
static void test_cfg_sensitive(void)
{
    char err[OMNI_ERR_LEN];
    setenv("OPENAI_API_KEY", "opaque-provider-key-4242", 1);
    CU_ASSERT_EQUAL(omni_cfg_load(NULL, err), OMNI_OK);
    char path[] = "/tmp/omni-print-XXXXXX";
    int fd = mkstemp(path);
    FILE *f = fdopen(fd, "w+");
    omni_cfg_print(f);
    fflush(f);
    rewind(f);
    char buf[16384];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    unlink(path);
    CU_ASSERT_PTR_NULL(strstr(buf, "opaque-provider-key-4242"));
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "openai.api_key = (redacted)"));
    char out[128];
    omni_redact_str("upstream said opaque-provider-key-4242 is bad", out,
                    sizeof out);
    CU_ASSERT_PTR_NULL(strstr(out, "4242"));
    unsetenv("OPENAI_API_KEY");
    omni_redact_clear();
    omni_cfg_free();
}

static void test_log_init_env(void)
{
    setenv("OMNI_LOG_LEVEL", "error", 1);
    setenv("ANTHROPIC_API_KEY", "sk-ant-fromenv-000111", 1);
    setenv("OMNI_REDIS_URL", "redis://user:redispass99@127.0.0.1:6379/0", 1);
    omni_log_init("/usr/bin/omni-test");
    CU_ASSERT_EQUAL(omni_log_get_level(), OMNI_LOG_ERROR);
    char out[128];
    omni_redact_str("pw redispass99 key sk-ant-fromenv-000111", out,
                    sizeof out);
    CU_ASSERT_PTR_NULL(strstr(out, "redispass99"));
    CU_ASSERT_PTR_NULL(strstr(out, "fromenv"));
    CU_ASSERT_EQUAL(omni_log_level_parse("warn"), OMNI_LOG_WARN);
    CU_ASSERT_EQUAL(omni_log_level_parse("loud"), -1);
    unsetenv("OMNI_LOG_LEVEL");
    unsetenv("ANTHROPIC_API_KEY");
    unsetenv("OMNI_REDIS_URL");
    omni_log_set_level(OMNI_LOG_INFO);
    omni_redact_clear();
}

static void test_time(void)
{
    int64_t a = omni_now_ms(), b = omni_now_us(), c = omni_wall_ms();
    CU_ASSERT(a > 0 && b / 1000 >= a - 1);
    CU_ASSERT(c > 1700000000000LL);
}

static CU_TestInfo common_tests[] = {
    {"buf", test_buf},
    {"error words", test_err_words},
    {"cfg precedence and errors", test_cfg},
    {"cfg socket default", test_cfg_socket_default},
    {"log redaction", test_redaction},
    {"cfg sensitive values", test_cfg_sensitive},
    {"log init from env", test_log_init_env},
    {"time", test_time},
    CU_TEST_INFO_NULL,
};

CU_SuiteInfo omni_test_suites[] = {
    {"common", NULL, NULL, NULL, NULL, common_tests},
    CU_SUITE_INFO_NULL,
};
