/*
 * test_lambda_fetch - GetSecretValue over HTTP (secrets) and the
 * Lambda API calls under it (lapi), against a canned loopback server
 * in a child process: good and bad replies, AWS errors with and
 * without a retry, interim 1xx headers, the CA file lookup.
 */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lapi.h"
#include "secrets.h"
#include "unit.h"

#define ARN "arn:aws:secretsmanager:eu-west-1:123456789012:secret:k"

/* The canned server: one reply per connection, in order; every request
 * (head and body) is appended to log, the count on the last line. */
struct srv {
    pid_t pid;
    int port;
    char log[64];
};

static size_t read_req(int fd, char *buf, size_t cap)
{
    size_t n = 0;
    long want = -1;
    while (n + 1 < cap) {
        ssize_t r = read(fd, buf + n, cap - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
        buf[n] = '\0';
        char *eoh = strstr(buf, "\r\n\r\n");
        if (!eoh)
            continue;
        if (want < 0) {
            char *cl = strcasestr(buf, "content-length:");
            want = (long)(eoh + 4 - buf) + (cl ? strtol(cl + 15, NULL, 10) : 0);
        }
        if ((long)n >= want)
            break;
    }
    buf[n] = '\0';
    return n;
}

static void serve(int ls, const char *const *replies, const char *log)
{
    for (size_t i = 0; replies[i]; i++) {
        int fd = accept(ls, NULL, NULL);
        if (fd < 0)
            _exit(1);
        static char req[16384];
        size_t n = read_req(fd, req, sizeof req);
        FILE *f = fopen(log, "a");
        if (f) {
            fwrite(req, 1, n, f);
            fputs("\n--end--\n", f);
            fclose(f);
        }
        size_t left = strlen(replies[i]);
        const char *p = replies[i];
        while (left) {
            ssize_t w = write(fd, p, left);
            if (w <= 0)
                break;
            p += w;
            left -= (size_t)w;
        }
        shutdown(fd, SHUT_WR);
        close(fd);
    }
    _exit(0);
}

static int srv_start(struct srv *s, const char *const *replies)
{
    snprintf(s->log, sizeof s->log, "/tmp/omni-fetch.%d.log", (int)getpid());
    unlink(s->log);
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof a) != 0 ||
        listen(ls, 8) != 0 || getsockname(ls, (struct sockaddr *)&a, &al))
        return -1;
    s->port = ntohs(a.sin_port);
    fflush(NULL);
    s->pid = fork();
    if (s->pid == 0)
        serve(ls, replies, s->log);
    close(ls);
    return s->pid > 0 ? 0 : -1;
}

/* Stop the server; the number of requests it logged into *log_out
 * (a malloc'd copy of the log, caller frees). */
static int srv_stop(struct srv *s, char **log_out)
{
    kill(s->pid, SIGKILL);
    waitpid(s->pid, NULL, 0);
    int n = 0;
    char *text = calloc(1, 65536);
    FILE *f = fopen(s->log, "r");
    if (f) {
        size_t got = fread(text, 1, 65535, f);
        text[got] = '\0';
        fclose(f);
    }
    for (const char *p = text; (p = strstr(p, "--end--")); p += 7)
        n++;
    unlink(s->log);
    if (log_out)
        *log_out = text;
    else
        free(text);
    return n;
}

#define OK_BODY                                                                \
    "{\"ARN\":\"a\",\"SecretString\":\"{\\\"OPENAI_API_KEY\\\":\\\"sk-9\\\"}"  \
    "\"}"

static char *reply(const char *status, const char *body)
{
    static char bufs[8][1024];
    static int next;
    char *b = bufs[next++ % 8];
    snprintf(b, sizeof bufs[0],
             "HTTP/1.1 %s\r\nContent-Type: application/x-amz-json-1.1\r\n"
             "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
             status, strlen(body), body);
    return b;
}

static void fetch_cfg(struct omni_secrets_cfg *cfg, char *url, size_t n,
                      int port)
{
    snprintf(url, n, "http://127.0.0.1:%d/", port);
    *cfg = (struct omni_secrets_cfg){.arn = ARN,
                                     .endpoint = url,
                                     .key_id = "AKIAEXAMPLE",
                                     .secret_key = "secretkey",
                                     .token = "session-tok",
                                     .timeout_ms = 2000};
}

/* A 200 with a SecretString: the values, and a signed request. */
static void test_fetch_ok(void)
{
    const char *replies[] = {reply("200 OK", OK_BODY), NULL};
    struct srv s = {0};
    CU_ASSERT_EQUAL_FATAL(srv_start(&s, replies), 0);
    struct omni_secrets_cfg cfg;
    char url[64], err[OMNI_ERR_LEN] = "";
    fetch_cfg(&cfg, url, sizeof url, s.port);
    struct omni_secrets out = {0};
    enum omni_err e = omni_secrets_fetch(&cfg, &out, err);
    char *log;
    int n = srv_stop(&s, &log);
    CU_ASSERT_EQUAL(e, OMNI_OK);
    if (e != OMNI_OK)
        fprintf(stderr, "got %d '%s', want OMNI_OK\n", e, err);
    CU_ASSERT_EQUAL(n, 1);
    CU_ASSERT_EQUAL_FATAL(out.n, 1);
    CU_ASSERT_STRING_EQUAL(out.names[0], "OPENAI_API_KEY");
    CU_ASSERT_STRING_EQUAL(out.values[0], "sk-9");
    /* The region comes from the ARN; the request is SigV4-signed and
     * carries the session token and the target. */
    CU_ASSERT_PTR_NOT_NULL(strstr(log, "AWS4-HMAC-SHA256"));
    CU_ASSERT_PTR_NOT_NULL(strstr(log, "eu-west-1/secretsmanager"));
    CU_ASSERT_PTR_NOT_NULL(strstr(log, "x-amz-security-token: session-tok"));
    CU_ASSERT_PTR_NOT_NULL(
        strstr(log, "X-Amz-Target: secretsmanager.GetSecretValue"));
    CU_ASSERT_PTR_NOT_NULL(strstr(log, "{\"SecretId\":\"" ARN "\"}"));
    free(log);
    omni_secrets_release(&out);
}

/* Failing replies: the error code, the words of the message, how many
 * attempts were made, and never the secret value in the message. */
static void test_fetch_failures(void)
{
    static const struct {
        const char *status1, *body1, *status2, *body2;
        enum omni_err want;
        const char *words;
        int attempts;
    } cases[] = {
        {"200 OK", "not json", NULL, NULL, OMNI_E_CONFIG, "no SecretString", 1},
        {"200 OK", "{\"SecretString\":\"[1]\"}", NULL, NULL, OMNI_E_CONFIG,
         "invalid SecretString", 1},
        {"400 Bad Request",
         "{\"__type\":\"ResourceNotFoundException\",\"message\":\"m\"}", NULL,
         NULL, OMNI_E_FORBIDDEN, "HTTP 400 ResourceNotFoundException", 1},
        {"403 Forbidden", "<html>denied</html>", NULL, NULL, OMNI_E_FORBIDDEN,
         "HTTP 403", 1},
        {"500 Internal Server Error", "{\"__type\":\"InternalServiceError\"}",
         "503 Service Unavailable", "{}", OMNI_E_UPSTREAM, "HTTP 503", 2},
        {"503 Service Unavailable", "{}", "200 OK", OK_BODY, OMNI_OK, NULL, 2},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *replies[3] = {
            reply(cases[i].status1, cases[i].body1),
            cases[i].status2 ? reply(cases[i].status2, cases[i].body2) : NULL,
            NULL};
        struct srv s = {0};
        CU_ASSERT_EQUAL_FATAL(srv_start(&s, replies), 0);
        struct omni_secrets_cfg cfg;
        char url[64], err[OMNI_ERR_LEN] = "";
        fetch_cfg(&cfg, url, sizeof url, s.port);
        cfg.token = NULL;
        struct omni_secrets out = {0};
        enum omni_err e = omni_secrets_fetch(&cfg, &out, err);
        char *log;
        int n = srv_stop(&s, &log);
        if (e != cases[i].want || n != cases[i].attempts)
            fprintf(stderr,
                    "case %zu: got %d after %d attempts ('%s'), "
                    "want %d after %d\n",
                    i, e, n, err, cases[i].want, cases[i].attempts);
        CU_ASSERT_EQUAL(e, cases[i].want);
        CU_ASSERT_EQUAL(n, cases[i].attempts);
        CU_ASSERT_PTR_NULL(strstr(log, "x-amz-security-token"));
        if (cases[i].words) {
            CU_ASSERT_PTR_NOT_NULL(strstr(err, cases[i].words));
            CU_ASSERT_PTR_NOT_NULL(strstr(err, ARN));
            CU_ASSERT_EQUAL(out.n, 0);
        } else {
            CU_ASSERT_EQUAL(out.n, 1);
        }
        CU_ASSERT_PTR_NULL(strstr(err, "sk-9"));
        free(log);
        omni_secrets_release(&out);
    }
}

/* An explicit region wins over the ARN's (it names the signing scope). */
static void test_fetch_region(void)
{
    const char *replies[] = {reply("200 OK", OK_BODY), NULL};
    struct srv s = {0};
    CU_ASSERT_EQUAL_FATAL(srv_start(&s, replies), 0);
    struct omni_secrets_cfg cfg;
    char url[64], err[OMNI_ERR_LEN] = "";
    fetch_cfg(&cfg, url, sizeof url, s.port);
    cfg.region = "ap-south-2";
    struct omni_secrets out = {0};
    CU_ASSERT_EQUAL(omni_secrets_fetch(&cfg, &out, err), OMNI_OK);
    char *log;
    srv_stop(&s, &log);
    CU_ASSERT_PTR_NOT_NULL(strstr(log, "ap-south-2/secretsmanager"));
    free(log);
    omni_secrets_release(&out);
}

/* lapi: a POST with headers and a body; interim 1xx header blocks are
 * dropped; a closed connection without a reply is OMNI_E_IO. */
static void test_lapi_do(void)
{
    const char *replies[] = {
        "HTTP/1.1 100 Continue\r\nX-Interim: 1\r\n\r\n"
        "HTTP/1.1 202 Accepted\r\nX-Final: yes\r\nContent-Length: 2\r\n"
        "Connection: close\r\n\r\nok",
        "", NULL};
    struct srv s = {0};
    CU_ASSERT_EQUAL_FATAL(srv_start(&s, replies), 0);
    CURL *h = curl_easy_init();
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    omni_lapi_setup(h);
    char url[64], err[OMNI_ERR_LEN] = "", v[32];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/x", s.port);
    const char *hdrs[] = {"X-Mine: 7", NULL};
    struct omni_lapi_req req = {.method = "POST",
                                .url = url,
                                .hdrs = hdrs,
                                .body = "abc",
                                .body_len = 3,
                                .timeout_ms = 2000};
    struct omni_lapi_resp r;
    omni_lapi_resp_init(&r);
    CU_ASSERT_EQUAL(omni_lapi_do(h, &req, &r, err), OMNI_OK);
    CU_ASSERT_EQUAL(r.status, 202);
    CU_ASSERT_EQUAL(r.body.len, 2);
    CU_ASSERT(omni_lapi_header(&r, "X-Final", v, sizeof v));
    CU_ASSERT_STRING_EQUAL(v, "yes");
    CU_ASSERT_FALSE(omni_lapi_header(&r, "X-Interim", v, sizeof v));
    /* The second connection is closed without a byte. */
    req.method = "GET";
    CU_ASSERT_EQUAL(omni_lapi_do(h, &req, &r, err), OMNI_E_IO);
    CU_ASSERT_EQUAL(r.status, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "GET http://127.0.0.1:"));
    char *log;
    srv_stop(&s, &log);
    CU_ASSERT_PTR_NOT_NULL(strstr(log, "X-Mine: 7"));
    CU_ASSERT_PTR_NOT_NULL(strstr(log, "POST /x HTTP/1.1"));
    CU_ASSERT_PTR_NULL(strstr(log, "Expect:"));
    free(log);
    omni_lapi_resp_release(&r);
    curl_easy_cleanup(h);
}

/* SSL_CERT_FILE when it is readable, else a distribution's bundle. */
static void test_ca_file(void)
{
    const char *was = getenv("SSL_CERT_FILE");
    char *old = was ? strdup(was) : NULL;
    setenv("SSL_CERT_FILE", "/proc/self/status", 1);
    CU_ASSERT_STRING_EQUAL(omni_lapi_ca_file(), "/proc/self/status");
    setenv("SSL_CERT_FILE", "/nonexistent/ca.pem", 1);
    const char *ca = omni_lapi_ca_file();
    if (ca)
        CU_ASSERT(strcmp(ca, "/nonexistent/ca.pem") != 0 &&
                  access(ca, R_OK) == 0);
    if (old)
        setenv("SSL_CERT_FILE", old, 1);
    else
        unsetenv("SSL_CERT_FILE");
    free(old);
}

static CU_TestInfo tests[] = {
    {"GetSecretValue 200", test_fetch_ok},
    {"GetSecretValue failures", test_fetch_failures},
    {"explicit region", test_fetch_region},
    {"lapi POST, 1xx, no reply", test_lapi_do},
    {"CA file lookup", test_ca_file},
    CU_TEST_INFO_NULL,
};

CU_SuiteInfo omni_test_suites[] = {
    {"lambda_fetch", NULL, NULL, NULL, NULL, tests},
    CU_SUITE_INFO_NULL,
};
