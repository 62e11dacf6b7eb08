/*
 * test_worker_echo - the omni-echo program against a fake broker.
 *
 * Spawns the omni-echo built beside this test (../bin/omni-echo; the
 * tests skip with a note when it is absent) with OMNI_ZMQ_ENDPOINT at a
 * ROUTER bound here, OMNI_SOCKET at a Unix socket answered here (for the
 * sub op) and OMNI_PARENT_FD at a pipe we hold, and checks every op of
 * PROTOCOL.md section 5, cancellation, drain on SIGTERM, exit on parent
 * EOF, and crash.
 */
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

#include "omni_alloc.h"
#include "omni_proto.h"
#include "omni_time.h"
#include "omni_wire.h"
#include "unit.h"

static char bin[PATH_MAX];
static bool have_bin;
static char dir[64], endpoint[128], sock_path[128], log_path[128];
static void *zctx, *router;
static int lfd = -1;

/* One spawned worker. */
struct child {
    pid_t pid;
    int parent_w; /* our end of its OMNI_PARENT_FD pipe */
    unsigned char ident[256];
    size_t ident_len;
    int64_t last_hb;
};

static struct child ch;

static bool find_bin(void)
{
    /* Under qemu-user (the arm64 run of make lambda-test) the test runs
     * emulated but could not exec another guest program. */
    if (getenv("OMNI_TEST_NO_SPAWN")) {
        fprintf(stderr, "note: OMNI_TEST_NO_SPAWN is set; echo tests skip\n");
        return false;
    }
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return false;
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    if (!slash)
        return false;
    *slash = '\0';
    snprintf(bin, sizeof bin, "%s/../bin/omni-echo", self);
    if (access(bin, X_OK) != 0) {
        fprintf(stderr, "note: '%s' is absent; echo tests skip\n", bin);
        return false;
    }
    return true;
}

static int spawn(struct child *c)
{
    int p[2];
    memset(c, 0, sizeof *c);
    if (pipe2(p, O_CLOEXEC) < 0)
        return -1;
    c->pid = fork();
    if (c->pid < 0)
        return -1;
    if (c->pid == 0) {
        char fd[16];
        int log = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
        dup2(log, 2);
        fcntl(p[0], F_SETFD, 0);
        snprintf(fd, sizeof fd, "%d", p[0]);
        setenv("OMNI_PARENT_FD", fd, 1);
        setenv("OMNI_ZMQ_ENDPOINT", endpoint, 1);
        setenv("OMNI_SOCKET", sock_path, 1);
        setenv("OMNI_HEARTBEAT_MS", "1000", 1);
        setenv("OMNI_DRAIN_MS", "5000", 1);
        setenv("OMNI_LOG_LEVEL", "info", 1);
        setenv("OMNI_LOG_FORMAT", "text", 1);
        unsetenv("OMNI_CONFIG");
        execl(bin, "omni-echo", (char *)NULL);
        _exit(127);
    }
    close(p[0]);
    c->parent_w = p[1];
    return 0;
}

/* Wait for the child to exit; its status, or -1 after timeout_ms. */
static int reap(struct child *c, int timeout_ms)
{
    int64_t end = omni_now_ms() + timeout_ms;
    int st;
    while (omni_now_ms() < end) {
        pid_t r = waitpid(c->pid, &st, WNOHANG);
        if (r == c->pid) {
            close(c->parent_w);
            c->pid = 0;
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        }
        usleep(5000);
    }
    return -1;
}

static void kill_child(struct child *c)
{
    if (c->pid <= 0)
        return;
    kill(c->pid, SIGKILL);
    reap(c, 5000);
}

/* Next command from the child other than HEARTBEAT, within timeout_ms;
 * we heartbeat meanwhile.  0 when one of cmd want arrived. */
static int expect(struct child *c, struct omni_wire_msg *m,
                  enum omni_wire_cmd want, int timeout_ms)
{
    int64_t end = omni_now_ms() + timeout_ms;
    char err[OMNI_ERR_LEN];
    memset(m, 0, sizeof *m);
    while (omni_now_ms() < end) {
        if (c->ident_len && omni_now_ms() - c->last_hb > 300) {
            omni_wire_send(router, c->ident, c->ident_len, OMNI_W_HEARTBEAT,
                           false, 0, NULL, 0, NULL, 0, NULL);
            c->last_hb = omni_now_ms();
        }
        zmq_pollitem_t it = {router, 0, ZMQ_POLLIN, 0};
        zmq_poll(&it, 1, 20);
        enum omni_err rc = omni_wire_recv(router, true, m, err);
        if (rc == OMNI_AGAIN)
            continue;
        if (rc != OMNI_OK) {
            omni_wire_msg_close(m);
            CU_FAIL("omni-echo sent a malformed message");
            continue;
        }
        /* The identity comes with READY; an earlier child's goodbye
         * (DISCONNECT) may still be queued: skip it. */
        if (m->cmd == OMNI_W_READY) {
            c->ident_len = zmq_msg_size(&m->ident);
            memcpy(c->ident, zmq_msg_data(&m->ident), c->ident_len);
        }
        if (m->cmd == want)
            return 0;
        if (m->cmd != OMNI_W_HEARTBEAT && m->cmd != OMNI_W_DISCONNECT) {
            fprintf(stderr, "got command %d, want %d\n", (int)m->cmd,
                    (int)want);
            omni_wire_msg_close(m);
            return -1;
        }
        omni_wire_msg_close(m);
    }
    return -1;
}

static void send_req(struct child *c, uint64_t key, const char *op,
                     const char *body, bool stream)
{
    struct omni_buf hdr = OMNI_BUF_INIT;
    struct omni_msg m = {.type = OMNI_MSG_REQUEST,
                         .service = omni_str_c("echo"),
                         .op = omni_str_c(op),
                         .stream = stream,
                         .deadline_ms = 30000};
    omni_msg_pack(&m, &hdr);
    omni_wire_send(router, c->ident, c->ident_len, OMNI_W_REQUEST, true, key,
                   hdr.data, hdr.len, body, strlen(body), NULL);
    omni_buf_release(&hdr);
}

static bool part_is(struct omni_wire_msg *m, int i, const char *s)
{
    size_t n;
    const void *p = omni_wire_part(m, i, &n);
    if (n == strlen(s) && memcmp(p, s, n) == 0)
        return true;
    fprintf(stderr, "part %d: got '%.*s', want '%s'\n", i, (int)n,
            (const char *)p, s);
    return false;
}

/* Expect an ERROR for key with code; its message must contain has. */
static void expect_error(uint64_t key, enum omni_err code, const char *has)
{
    struct omni_wire_msg m;
    char err[OMNI_ERR_LEN];
    if (expect(&ch, &m, OMNI_W_ERROR, 3000) != 0) {
        CU_FAIL("no ERROR");
        return;
    }
    CU_ASSERT_EQUAL(m.key, key);
    size_t n;
    const void *p = omni_wire_part(&m, 0, &n);
    struct omni_msg em;
    CU_ASSERT_EQUAL(omni_msg_decode(p, n, &em, err), OMNI_OK);
    char *text = omni_strndup(em.message.p, em.message.n);
    if (em.code != code || !strstr(text, has))
        fprintf(stderr, "error: got %s '%s', want %s with '%s'\n",
                omni_err_code(em.code), text, omni_err_code(code), has);
    CU_ASSERT_EQUAL(em.code, code);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, has));
    omni_free(text);
    omni_wire_msg_close(&m);
}

static bool log_has(const char *needle)
{
    FILE *f = fopen(log_path, "r");
    char line[1024];
    bool found = false;
    while (f && !found && fgets(line, sizeof line, f))
        found = strstr(line, needle) != NULL;
    if (f)
        fclose(f);
    return found;
}

/* A fresh worker, READY read. */
static int start_child(struct child *c)
{
    struct omni_wire_msg m;
    if (spawn(c) < 0 || expect(c, &m, OMNI_W_READY, 5000) != 0)
        return -1;
    omni_wire_msg_close(&m);
    return 0;
}

static int setup(void)
{
    have_bin = find_bin();
    snprintf(dir, sizeof dir, "/tmp/omni-we.XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(endpoint, sizeof endpoint, "ipc://%s/w.ipc", dir);
    snprintf(sock_path, sizeof sock_path, "%s/omni.sock", dir);
    snprintf(log_path, sizeof log_path, "%s/echo.log", dir);
    signal(SIGPIPE, SIG_IGN);
    zctx = zmq_ctx_new();
    router = zmq_socket(zctx, ZMQ_ROUTER);
    int one = 1, zero = 0;
    zmq_setsockopt(router, ZMQ_ROUTER_MANDATORY, &one, sizeof one);
    zmq_setsockopt(router, ZMQ_LINGER, &zero, sizeof zero);
    if (zmq_bind(router, endpoint) < 0)
        return -1;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", sock_path);
    lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (bind(lfd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(lfd, 8))
        return -1;
    if (have_bin && start_child(&ch) < 0)
        return -1;
    return 0;
}

static int teardown(void)
{
    kill_child(&ch);
    close(lfd);
    zmq_close(router);
    zmq_ctx_term(zctx);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

#define NEED_BIN()                                                             \
    do {                                                                       \
        if (!have_bin)                                                         \
            return;                                                            \
    } while (0)

/* ---- tests ---- */

static void test_echo(void)
{
    NEED_BIN();
    struct omni_wire_msg m;
    send_req(&ch, 1, "echo", "{\"hi\":[1,2]}", false);
    CU_ASSERT_EQUAL_FATAL(expect(&ch, &m, OMNI_W_FINAL, 3000), 0);
    CU_ASSERT_EQUAL(m.key, 1);
    CU_ASSERT(part_is(&m, 0, "{\"hi\":[1,2]}"));
    omni_wire_msg_close(&m);
}

static void test_stream(void)
{
    NEED_BIN();
    struct omni_wire_msg m;
    send_req(&ch, 2, "stream", "{\"chunks\":3,\"size\":10,\"interval_ms\":20}",
             true);
    const char *want[] = {"0\n........", "1\n........", "2\n........"};
    for (int i = 0; i < 3; i++) {
        CU_ASSERT_EQUAL_FATAL(expect(&ch, &m, OMNI_W_PARTIAL, 3000), 0);
        CU_ASSERT_EQUAL(m.key, 2);
        CU_ASSERT(part_is(&m, 0, want[i]));
        omni_wire_msg_close(&m);
    }
    CU_ASSERT_EQUAL_FATAL(expect(&ch, &m, OMNI_W_FINAL, 3000), 0);
    CU_ASSERT(part_is(&m, 0, "{\"chunks\":3}"));
    omni_wire_msg_close(&m);
    /* Many chunks with no interval. */
    send_req(&ch, 3, "stream", "{\"chunks\":500,\"size\":1}", true);
    int parts = 0;
    while (expect(&ch, &m, OMNI_W_PARTIAL, 3000) == 0) {
        parts++;
        omni_wire_msg_close(&m);
        if (parts == 500)
            break;
    }
    CU_ASSERT_EQUAL(parts, 500);
    CU_ASSERT_EQUAL_FATAL(expect(&ch, &m, OMNI_W_FINAL, 3000), 0);
    CU_ASSERT(part_is(&m, 0, "{\"chunks\":500}"));
    omni_wire_msg_close(&m);
    /* Not a stream request. */
    send_req(&ch, 4, "stream", "{\"chunks\":1}", false);
    expect_error(4, OMNI_E_BAD_REQUEST, "stream");
    send_req(&ch, 5, "stream", "{\"size\":1}", true);
    expect_error(5, OMNI_E_BAD_REQUEST, "'chunks'");
    send_req(&ch, 6, "stream", "{\"chunks\":-1}", true);
    expect_error(6, OMNI_E_BAD_REQUEST, "'chunks'");
}

static void test_sleep(void)
{
    NEED_BIN();
    struct omni_wire_msg m;
    int64_t t0 = omni_now_ms();
    send_req(&ch, 7, "sleep", "{\"ms\":150}", false);
    CU_ASSERT_EQUAL_FATAL(expect(&ch, &m, OMNI_W_FINAL, 3000), 0);
    CU_ASSERT(omni_now_ms() - t0 >= 150);
    CU_ASSERT(part_is(&m, 0, "{\"slept_ms\":150}"));
    omni_wire_msg_close(&m);
    send_req(&ch, 8, "sleep", "{\"ms\":\"soon\"}", false);
    expect_error(8, OMNI_E_BAD_REQUEST, "field 'ms'");
}

static void test_fail(void)
{
    NEED_BIN();
    struct omni_wire_msg m;
    char err[OMNI_ERR_LEN];
    send_req(&ch, 9, "fail",
             "{\"code\":\"UPSTREAM\",\"status\":529,\"message\":\"boom\"}",
             false);
    CU_ASSERT_EQUAL_FATAL(expect(&ch, &m, OMNI_W_ERROR, 3000), 0);
    size_t n;
    const void *p = omni_wire_part(&m, 0, &n);
    struct omni_msg em;
    CU_ASSERT_EQUAL(omni_msg_decode(p, n, &em, err), OMNI_OK);
    CU_ASSERT_EQUAL(em.code, OMNI_E_UPSTREAM);
    CU_ASSERT_EQUAL(em.status, 529);
    CU_ASSERT(omni_str_eq(em.message, "boom"));
    omni_wire_msg_close(&m);
    send_req(&ch, 10, "fail", "{\"code\":\"OVERLOADED\"}", false);
    CU_ASSERT_EQUAL_FATAL(expect(&ch, &m, OMNI_W_ERROR, 3000), 0);
    p = omni_wire_part(&m, 0, &n);
    omni_msg_decode(p, n, &em, err);
    CU_ASSERT_EQUAL(em.code, OMNI_E_OVERLOADED);
    CU_ASSERT_EQUAL(em.status, 503);
    omni_wire_msg_close(&m);
}

static void test_bad_input(void)
{
    NEED_BIN();
    send_req(&ch, 11, "sleep", "{\"ms\":", false);
    expect_error(11, OMNI_E_BAD_REQUEST, "not valid JSON");
    send_req(&ch, 12, "sleep", "[1]", false);
    expect_error(12, OMNI_E_BAD_REQUEST, "JSON object");
    send_req(&ch, 13, "frobnicate", "{}", false);
    expect_error(13, OMNI_E_UNSUPPORTED, "'frobnicate'");
    send_req(&ch, 14, "sub", "{\"op\":\"echo\"}", false);
    expect_error(14, OMNI_E_BAD_REQUEST, "'svc'");
}

static void test_cancel(void)
{
    NEED_BIN();
    struct omni_wire_msg m;
    send_req(&ch, 15, "sleep", "{\"ms\":5000}", false);
    send_req(&ch, 16, "stream", "{\"chunks\":1000,\"interval_ms\":1000}", true);
    CU_ASSERT_EQUAL_FATAL(expect(&ch, &m, OMNI_W_PARTIAL, 3000), 0);
    omni_wire_msg_close(&m);
    omni_wire_send(router, ch.ident, ch.ident_len, OMNI_W_CANCEL, true, 15,
                   NULL, 0, NULL, 0, NULL);
    omni_wire_send(router, ch.ident, ch.ident_len, OMNI_W_CANCEL, true, 16,
                   NULL, 0, NULL, 0, NULL);
    /* Neither answers again; the worker still serves. */
    send_req(&ch, 17, "echo", "after", false);
    CU_ASSERT_EQUAL_FATAL(expect(&ch, &m, OMNI_W_FINAL, 3000), 0);
    CU_ASSERT_EQUAL(m.key, 17);
    omni_wire_msg_close(&m);
    CU_ASSERT(log_has("echo: request 15 cancelled"));
    CU_ASSERT(log_has("echo: request 16 cancelled"));
}

static void test_sub(void)
{
    NEED_BIN();
    send_req(&ch, 18, "sub",
             "{\"svc\":\"echo\",\"op\":\"echo\",\"body\":{\"a\":1}}", false);
    /* Play the broker's Unix socket. */
    int c = -1;
    struct omni_wire_msg m;
    int64_t end = omni_now_ms() + 3000;
    while (c < 0 && omni_now_ms() < end) {
        c = accept4(lfd, NULL, NULL, 0);
        if (c < 0)
            usleep(5000);
    }
    CU_ASSERT_FATAL(c >= 0);
    struct omni_buf in = OMNI_BUF_INIT;
    size_t n = 0;
    while (omni_frame_peek(in.data, in.len, 1 << 20, &n) != OMNI_OK) {
        struct pollfd pfd = {c, POLLIN, 0};
        if (poll(&pfd, 1, 3000) <= 0)
            break;
        char tmp[4096];
        ssize_t got = read(c, tmp, sizeof tmp);
        if (got <= 0)
            break;
        omni_buf_add(&in, tmp, (size_t)got);
    }
    struct omni_msg rq;
    char err[OMNI_ERR_LEN];
    CU_ASSERT_EQUAL_FATAL(omni_msg_decode(in.data + 4, n, &rq, err), OMNI_OK);
    CU_ASSERT(omni_str_eq(rq.service, "echo"));
    CU_ASSERT(omni_str_eq(rq.op, "echo"));
    CU_ASSERT(omni_str_eq(rq.body, "{\"a\":1}"));
    CU_ASSERT(rq.deadline_ms > 0 && rq.deadline_ms <= 30000);
    struct omni_buf out = OMNI_BUF_INIT;
    struct omni_msg fm = {.type = OMNI_MSG_FINAL,
                          .id = rq.id,
                          .body = omni_str_c("{\"from\":\"sub\"}")};
    omni_msg_encode(&fm, &out);
    CU_ASSERT_EQUAL((size_t)write(c, out.data, out.len), out.len);
    CU_ASSERT_EQUAL_FATAL(expect(&ch, &m, OMNI_W_FINAL, 3000), 0);
    CU_ASSERT_EQUAL(m.key, 18);
    CU_ASSERT(part_is(&m, 0, "{\"from\":\"sub\"}"));
    omni_wire_msg_close(&m);
    /* A sub-request error comes back as the request's error. */
    send_req(&ch, 19, "sub", "{\"svc\":\"nope\",\"op\":\"x\"}", false);
    omni_buf_reset(&in);
    n = 0;
    while (omni_frame_peek(in.data, in.len, 1 << 20, &n) != OMNI_OK) {
        struct pollfd pfd = {c, POLLIN, 0};
        if (poll(&pfd, 1, 3000) <= 0)
            break;
        char tmp[4096];
        ssize_t got = read(c, tmp, sizeof tmp);
        if (got <= 0)
            break;
        omni_buf_add(&in, tmp, (size_t)got);
    }
    CU_ASSERT_EQUAL_FATAL(omni_msg_decode(in.data + 4, n, &rq, err), OMNI_OK);
    omni_buf_reset(&out);
    omni_msg_encode_error(&out, rq.id, OMNI_E_NO_SERVICE, 0,
                          "no service 'nope'");
    CU_ASSERT_EQUAL((size_t)write(c, out.data, out.len), out.len);
    expect_error(19, OMNI_E_NO_SERVICE, "no service 'nope'");
    omni_buf_release(&in);
    omni_buf_release(&out);
    close(c);
}

static void test_sigterm_drains(void)
{
    NEED_BIN();
    struct child c;
    struct omni_wire_msg m;
    CU_ASSERT_EQUAL_FATAL(start_child(&c), 0);
    send_req(&c, 20, "sleep", "{\"ms\":300}", false);
    usleep(50000);
    kill(c.pid, SIGTERM);
    CU_ASSERT_EQUAL(expect(&c, &m, OMNI_W_FINAL, 3000), 0);
    CU_ASSERT_EQUAL(m.key, 20);
    omni_wire_msg_close(&m);
    CU_ASSERT_EQUAL(expect(&c, &m, OMNI_W_DISCONNECT, 3000), 0);
    omni_wire_msg_close(&m);
    CU_ASSERT_EQUAL(reap(&c, 5000), 0);
    kill_child(&c);
}

static void test_parent_gone(void)
{
    NEED_BIN();
    struct child c;
    CU_ASSERT_EQUAL_FATAL(start_child(&c), 0);
    close(c.parent_w);
    c.parent_w = -1;
    int64_t t0 = omni_now_ms();
    int st = reap(&c, 5000);
    CU_ASSERT_EQUAL(st, 0);
    CU_ASSERT(omni_now_ms() - t0 < 3000);
    kill_child(&c);
}

static void test_crash(void)
{
    NEED_BIN();
    struct child c;
    CU_ASSERT_EQUAL_FATAL(start_child(&c), 0);
    send_req(&c, 21, "crash", "{}", false);
    CU_ASSERT_EQUAL(reap(&c, 5000), 3);
    kill_child(&c);
}

/* Last: the long-lived child drains cleanly (under sanitizers its leak
 * check runs at exit) and no child reported a sanitizer error. */
static void test_clean_exit(void)
{
    NEED_BIN();
    kill(ch.pid, SIGTERM);
    CU_ASSERT_EQUAL(reap(&ch, 10000), 0);
    CU_ASSERT(!log_has("runtime error"));
    CU_ASSERT(!log_has("Sanitizer"));
}

static CU_TestInfo tests[] = {
    {"echo", test_echo},
    {"stream: chunks, final, needs stream", test_stream},
    {"sleep", test_sleep},
    {"fail gives that error", test_fail},
    {"bad JSON, bad fields, unknown op", test_bad_input},
    {"cancel stops and logs", test_cancel},
    {"sub: through the broker socket", test_sub},
    {"SIGTERM drains then exits 0", test_sigterm_drains},
    {"parent pipe EOF: exit 0", test_parent_gone},
    {"crash exits 3", test_crash},
    {"clean exit, no sanitizer reports", test_clean_exit},
    CU_TEST_INFO_NULL,
};

CU_SuiteInfo omni_test_suites[] = {
    {"worker_echo", setup, teardown, NULL, NULL, tests},
    CU_SUITE_INFO_NULL,
};
