/*
 * test_llmeng_http - llm_http against a loopback libevent HTTP server on
 * the same loop: bodies and headers, the first-byte, idle and deadline
 * timers, connection failures, cancelling from inside the data callback,
 * and a thousand transfers at once.
 */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <stdlib.h>
#include <string.h>

#include "llm_http.h"
#include "omni_alloc.h"
#include "omni_buf.h"
#include "omni_time.h"
#include "unit.h"

/* The loopback server side (libevent's evhttp) keeps a request whose
 * client vanished before any reply until the reply is sent, which a
 * never-answering test handler does not do: not ours to report. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:evhttp_request_new\n";
}

static struct event_base *base;
static struct evhttp *srv;
static int port;

struct res {
    bool done;
    struct llm_xfer_result r;
    char error[256];
    char ctype[128], ra[64], rams[32];
    struct omni_buf body;
    int cancel_after; /* cancel on the Nth data call (0: never) */
    int calls;
    struct llm_xfer *x;
};

static void stream_tick(evutil_socket_t fd, short what, void *arg)
{
    struct evhttp_request *req = arg;
    (void)fd;
    (void)what;
    struct evbuffer *b = evbuffer_new();
    evbuffer_add_printf(b, "data: tick\n\n");
    evhttp_send_reply_chunk(req, b);
    evbuffer_free(b);
}

struct pusher {
    struct event *ev;
    struct evhttp_request *req;
};

/* The client went away: stop pushing, and end the reply, which frees a
 * request whose connection is gone. */
static void on_close(struct evhttp_connection *conn, void *arg)
{
    struct pusher *p = arg;
    (void)conn;
    if (p->ev) {
        event_free(p->ev);
        evhttp_send_reply_end(p->req);
    } else {
        evhttp_send_reply(p->req, 200, "OK", NULL);
    }
    free(p);
}

/* /ok: a body with headers; /hang: never answers; /idle: one chunk then
 * silence; /stream: a chunk every 20 ms, forever. */
static void handler(struct evhttp_request *req, void *arg)
{
    const char *uri = evhttp_request_get_uri(req);
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    (void)arg;
    if (strcmp(uri, "/ok") == 0) {
        struct evbuffer *b = evbuffer_new();
        evbuffer_add_printf(b, "hello");
        evhttp_add_header(h, "Content-Type", "text/event-stream");
        evhttp_add_header(h, "Retry-After", "3");
        evhttp_add_header(h, "retry-after-ms", "2500");
        evhttp_send_reply(req, 429, "Too Many", b);
        evbuffer_free(b);
    } else if (strcmp(uri, "/idle") == 0 || strcmp(uri, "/stream") == 0) {
        evhttp_add_header(h, "Content-Type", "text/event-stream");
        evhttp_send_reply_start(req, 200, "OK");
        stream_tick(-1, 0, req);
        if (uri[1] == 's') {
            struct pusher *p = calloc(1, sizeof *p);
            struct timeval tv = {0, 20000};
            p->req = req;
            p->ev = event_new(base, -1, EV_PERSIST, stream_tick, req);
            event_add(p->ev, &tv);
            evhttp_connection_set_closecb(evhttp_request_get_connection(req),
                                          on_close, p);
        }
    } else if (strcmp(uri, "/hang") == 0) {
        struct pusher *p = calloc(1, sizeof *p);
        p->req = req;
        evhttp_connection_set_closecb(evhttp_request_get_connection(req),
                                      on_close, p);
    } else {
        evhttp_send_reply(req, 404, "Not Found", NULL);
    }
}

static int on_data(void *arg, const char *p, size_t n)
{
    struct res *r = arg;
    omni_buf_add(&r->body, p, n);
    if (++r->calls == r->cancel_after) {
        r->done = true; /* the test ends here: no on_done may follow */
        llm_xfer_cancel(r->x);
    }
    return 0;
}

static void on_done(void *arg, const struct llm_xfer_result *res)
{
    struct res *r = arg;
    CU_ASSERT_FALSE(r->done);
    r->done = true;
    r->r = *res;
    snprintf(r->error, sizeof r->error, "%s", res->error);
    snprintf(r->ctype, sizeof r->ctype, "%s", res->content_type);
    snprintf(r->ra, sizeof r->ra, "%s", res->retry_after);
    snprintf(r->rams, sizeof r->rams, "%s", res->retry_after_ms);
    r->r.error = r->error;
}

static struct llm_http *client(long first_byte, long idle)
{
    struct llm_http_limits lim = {2000, first_byte, idle, 0, 0};
    char err[OMNI_ERR_LEN];
    struct llm_http *h = llm_http_new(base, &lim, err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    return h;
}

static struct llm_xfer *get(struct llm_http *h, const char *path, int p,
                            int64_t deadline, struct res *r)
{
    struct llm_http_req req = {0};
    char url[128], err[OMNI_ERR_LEN];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", p, path);
    req.url = omni_strdup(url);
    omni_buf_init(&r->body);
    r->x = llm_http_start(h, &req, deadline, on_data, on_done, r, err);
    CU_ASSERT_PTR_NOT_NULL(r->x);
    CU_ASSERT_PTR_NULL(req.url);
    return r->x;
}

/* Run the loop until r is done or 10 s pass. */
static void wait_for(struct res *r)
{
    int64_t end = omni_now_ms() + 10000;
    while (!r->done && omni_now_ms() < end)
        event_base_loop(base, EVLOOP_ONCE);
    CU_ASSERT_TRUE(r->done);
}

static int setup(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    base = event_base_new();
    srv = evhttp_new(base);
    evhttp_set_gencb(srv, handler, NULL);
    /* A deep accept queue: a thousand connects arrive at once. */
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct evconnlistener *l = evconnlistener_new_bind(
        base, NULL, NULL, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 4096,
        (struct sockaddr *)&sa, sizeof sa);
    if (!l || !evhttp_bind_listener(srv, l))
        return 1;
    socklen_t len = sizeof sa;
    getsockname(evconnlistener_get_fd(l), (struct sockaddr *)&sa, &len);
    port = ntohs(sa.sin_port);
    return 0;
}

static int teardown(void)
{
    /* Let the server see its clients gone before it is freed. */
    int64_t end = omni_now_ms() + 100;
    while (omni_now_ms() < end)
        event_base_loop(base, EVLOOP_NONBLOCK);
    evhttp_free(srv);
    event_base_free(base);
    curl_global_cleanup();
    return 0;
}

static void test_body_and_headers(void)
{
    struct llm_http *h = client(2000, 2000);
    struct res r = {0};
    get(h, "/ok", port, 0, &r);
    CU_ASSERT_EQUAL(llm_http_in_flight(h), 1);
    wait_for(&r);
    CU_ASSERT_EQUAL(r.r.end, LLM_XFER_OK);
    CU_ASSERT_EQUAL(r.r.status, 429);
    CU_ASSERT_STRING_EQUAL(r.body.data, "hello");
    CU_ASSERT_STRING_EQUAL(r.ctype, "text/event-stream");
    CU_ASSERT_STRING_EQUAL(r.ra, "3");
    CU_ASSERT_STRING_EQUAL(r.rams, "2500");
    CU_ASSERT_EQUAL(llm_http_in_flight(h), 0);
    omni_buf_release(&r.body);
    llm_http_free(h);
}

static void test_timeouts(void)
{
    struct llm_http *h = client(300, 300);
    struct res a = {0}, b = {0}, c = {0};
    int64_t t0 = omni_now_ms();
    get(h, "/hang", port, 0, &a);
    get(h, "/idle", port, 0, &b);
    get(h, "/hang", port, omni_now_ms() + 100, &c);
    wait_for(&c);
    CU_ASSERT_EQUAL(c.r.end, LLM_XFER_DEADLINE);
    CU_ASSERT(omni_now_ms() - t0 < 300);
    wait_for(&a);
    wait_for(&b);
    int64_t dt = omni_now_ms() - t0;
    CU_ASSERT_EQUAL(a.r.end, LLM_XFER_FIRST_BYTE);
    if (b.r.end != LLM_XFER_IDLE)
        fprintf(stderr, "idle: got end %d (%s)\n", b.r.end, b.error);
    CU_ASSERT_EQUAL(b.r.end, LLM_XFER_IDLE);
    CU_ASSERT_EQUAL(b.r.status, 200);
    CU_ASSERT_STRING_EQUAL(b.body.data, "data: tick\n\n");
    CU_ASSERT(dt >= 290 && dt < 2000);
    omni_buf_release(&a.body);
    omni_buf_release(&b.body);
    omni_buf_release(&c.body);
    llm_http_free(h);
}

static void test_connect_refused(void)
{
    struct llm_http *h = client(2000, 2000);
    struct res r = {0};
    /* A port just bound and closed is refused on loopback. */
    evutil_socket_t s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    CU_ASSERT_EQUAL(bind(s, (struct sockaddr *)&sa, sizeof sa), 0);
    CU_ASSERT_EQUAL(getsockname(s, (struct sockaddr *)&sa, &len), 0);
    evutil_closesocket(s);
    get(h, "/ok", ntohs(sa.sin_port), 0, &r);
    wait_for(&r);
    CU_ASSERT_EQUAL(r.r.end, LLM_XFER_CONNECT);
    CU_ASSERT_EQUAL(r.r.status, 0);
    CU_ASSERT(strlen(r.error) > 0);
    omni_buf_release(&r.body);
    llm_http_free(h);
}

/* Cancel inside on_data; the transfer is reaped after curl returns and
 * nothing more is reported; others go on. */
static void test_cancel_in_callback(void)
{
    struct llm_http *h = client(2000, 2000);
    struct res a = {0}, b = {0};
    a.cancel_after = 2;
    get(h, "/stream", port, 0, &a);
    get(h, "/ok", port, 0, &b);
    wait_for(&a);
    wait_for(&b);
    CU_ASSERT_EQUAL(a.calls, 2);
    CU_ASSERT_EQUAL(b.r.end, LLM_XFER_OK);
    /* Let the server push more: no callback may reach a. */
    int64_t end = omni_now_ms() + 100;
    while (omni_now_ms() < end)
        event_base_loop(base, EVLOOP_NONBLOCK);
    CU_ASSERT_EQUAL(a.calls, 2);
    CU_ASSERT_EQUAL(llm_http_in_flight(h), 0);
    /* Cancel from outside any callback, and detach. */
    struct res c = {0}, d = {0};
    get(h, "/stream", port, 0, &c);
    get(h, "/ok", port, 0, &d);
    llm_xfer_cancel(c.x);
    llm_xfer_detach(d.x);
    CU_ASSERT_EQUAL(llm_http_in_flight(h), 1);
    end = omni_now_ms() + 200;
    while (omni_now_ms() < end && llm_http_in_flight(h))
        event_base_loop(base, EVLOOP_ONCE);
    CU_ASSERT_EQUAL(llm_http_in_flight(h), 0);
    CU_ASSERT_FALSE(c.done);
    CU_ASSERT_FALSE(d.done);
    omni_buf_release(&a.body);
    omni_buf_release(&b.body);
    omni_buf_release(&c.body);
    omni_buf_release(&d.body);
    llm_http_free(h);
}

/* Many transfers at once on one loop; freeing the client with some still
 * running releases them. */
static void test_many(void)
{
    enum { N = 1000 };
    struct llm_http *h = client(10000, 10000);
    struct res *r = omni_calloc(N, sizeof *r);
    for (int i = 0; i < N; i++)
        get(h, "/ok", port, 0, &r[i]);
    CU_ASSERT_EQUAL(llm_http_in_flight(h), N);
    int64_t end = omni_now_ms() + 20000;
    int done = 0;
    while (done < N && omni_now_ms() < end) {
        event_base_loop(base, EVLOOP_ONCE);
        for (done = 0; done < N && r[done].done; done++)
            ;
    }
    int ok = 0, bad = -1;
    for (int i = 0; i < N; i++) {
        if (r[i].done && r[i].r.end == LLM_XFER_OK && r[i].r.status == 429)
            ok++;
        else if (bad < 0)
            bad = i;
        omni_buf_release(&r[i].body);
    }
    if (bad >= 0)
        fprintf(stderr, "got %d transfers done, want %d (#%d: end %d, %s)\n",
                ok, N, bad, r[bad].r.end, r[bad].error);
    CU_ASSERT_EQUAL(ok, N);
    struct res s1 = {0}, s2 = {0};
    get(h, "/stream", port, 0, &s1);
    get(h, "/hang", port, 0, &s2);
    for (int i = 0; i < 5; i++)
        event_base_loop(base, EVLOOP_NONBLOCK);
    llm_http_free(h);
    CU_ASSERT_FALSE(s2.done);
    omni_buf_release(&s1.body);
    omni_buf_release(&s2.body);
    omni_free(r);
}

static CU_TestInfo tests[] = {
    {"body and headers", test_body_and_headers},
    {"first-byte, idle and deadline timeouts", test_timeouts},
    {"connection refused", test_connect_refused},
    {"cancel inside a callback", test_cancel_in_callback},
    {"a thousand at once", test_many},
    CU_TEST_INFO_NULL,
};

CU_SuiteInfo omni_test_suites[] = {
    {"llmeng_http", setup, teardown, NULL, NULL, tests},
    CU_SUITE_INFO_NULL,
};
