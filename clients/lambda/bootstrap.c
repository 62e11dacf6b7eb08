/*
 * bootstrap - the Lambda custom runtime (provided.al2023): each
 * invocation becomes one broker request over the Unix socket.
 *
 * Init waits (bounded by lambda.wait_ms, with backoff) for the socket
 * that the omni extension binds before it registers; if it never
 * accepts, we report Runtime.ExtensionUnavailable to /init/error and
 * exit.  Then: long-poll /next, map the event (HTTP payload 2.0 through
 * the HTTP front's route table, or a direct invocation), pass the
 * deadline and trace id on, and post the reply: buffered as payload-2.0
 * JSON (HTTP) or the final body (direct), streamed with Lambda response
 * streaming when the request streams.  Failures of a direct invocation
 * go to /invocation/{id}/error as Function.<Code>; HTTP events get HTTP
 * error replies, like the HTTP front.  SIGTERM (Lambda's shutdown)
 * ends the /next long-poll and the process exits normally (status 0);
 * outside that wait it exits at once.
 */
#include <curl/curl.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lapi.h"
#include "levent.h"
#include "lstream.h"
#include "metrics.h"
#include "omni.h"
#include "omni_alloc.h"
#include "omni_cfg.h"
#include "omni_log.h"
#include "omni_time.h"
#include "routes.h"

#define RESERVE_MS 200  /* kept back from the deadline to post a reply */
#define GRACE_MS   2000 /* past the broker's deadline before we give up */
#define NEXT_TRIES 3
#define JSON_CT    "application/json"
#define SSE_CT     "text/event-stream"

/* The runtime's state, one per process. */
struct rt {
    CURL *h;        /* /next and buffered posts */
    char base[256]; /* http://HOST:PORT/2018-06-01/runtime */
    char *sock;     /* broker socket path */
    omni_client *c; /* NULL while disconnected */
    struct omni_route_cfg rcfg;
    struct omni_metrics *metrics;
};

/* One invocation. */
struct inv {
    char id[128];
    int64_t deadline_ms; /* wall clock, 0: unknown */
    char trace[512];
};

/* What a request came to: the events' verdict. */
struct result {
    int status;    /* HTTP-like */
    char code[48]; /* error code word, "" on success */
};

static volatile sig_atomic_t stopping; /* SIGTERM seen */
static volatile sig_atomic_t idle;     /* no invocation left to answer */

/* SIGTERM while idle (posting the reply, or waiting in /next) only
 * raises the flag (exit() is not async-signal-safe): the loop leaves
 * through main's normal return, which lets the process write what
 * atexit handlers write.  Anywhere else (init, an invocation) nothing
 * is worth finishing: out at once. */
static void on_term(int sig)
{
    (void)sig;
    stopping = 1;
    if (!idle)
        _exit(0);
}

/* curl's progress callback while waiting in /next: the signal wakes
 * curl's poll, and a non-zero return aborts the transfer. */
static int on_progress(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut,
                       curl_off_t un)
{
    (void)arg;
    (void)dt;
    (void)dn;
    (void)ut;
    (void)un;
    return stopping;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR && !stopping)
        ;
}

/* ---------------------------------------------------------- Runtime API */

static long post(struct rt *rt, const char *path, const char *const *hdrs,
                 const void *body, size_t n)
{
    char url[512], err[OMNI_ERR_LEN];
    snprintf(url, sizeof url, "%s%s", rt->base, path);
    struct omni_lapi_resp r;
    omni_lapi_resp_init(&r);
    struct omni_lapi_req req = {.method = "POST",
                                .url = url,
                                .hdrs = hdrs,
                                .body = body,
                                .body_len = n};
    long status = 0;
    if (omni_lapi_do(rt->h, &req, &r, err) != OMNI_OK)
        omni_error("%s", err);
    else
        status = r.status;
    if (status && status != 202)
        omni_error("POST %s: HTTP %ld %.200s", path, status, r.body.data);
    omni_lapi_resp_release(&r);
    /* 500 from the Runtime API: "non-recoverable state, exit promptly". */
    if (status == 500)
        exit(1);
    return status;
}

/* POST an error (to /init/error or /invocation/ID/error). */
static void post_error(struct rt *rt, const char *path, const char *type,
                       const char *message, const char *code, int status,
                       uint32_t retry_after_ms)
{
    char th[128];
    snprintf(th, sizeof th, "Lambda-Runtime-Function-Error-Type: %s", type);
    const char *hdrs[] = {th, "Content-Type: " JSON_CT, NULL};
    struct omni_buf b = OMNI_BUF_INIT;
    omni_levent_error_body(&b, type, message, code, status, retry_after_ms);
    post(rt, path, hdrs, b.data, b.len);
    omni_buf_release(&b);
}

/* The reply of an invocation: from here a SIGTERM lets the post finish
 * (the caller may already have the reply: the emulator and Lambda pass
 * it on before they answer the post). */
static void inv_error(struct rt *rt, const struct inv *iv, const char *type,
                      const char *message, const char *code, int status,
                      uint32_t retry_after_ms)
{
    idle = 1;
    char path[192];
    snprintf(path, sizeof path, "/invocation/%s/error", iv->id);
    post_error(rt, path, type, message, code, status, retry_after_ms);
}

static void inv_response(struct rt *rt, const struct inv *iv, const void *body,
                         size_t n)
{
    idle = 1;
    char path[192];
    snprintf(path, sizeof path, "/invocation/%s/response", iv->id);
    const char *hdrs[] = {"Content-Type: " JSON_CT, NULL};
    post(rt, path, hdrs, body, n);
}

/* Long-poll the next invocation (no timeout: the process may be frozen
 * inside this call for any time).  Exits when the API is gone; false
 * when SIGTERM came (before or during the wait). */
static bool next(struct rt *rt, struct inv *iv, struct omni_lapi_resp *r)
{
    char url[512], err[OMNI_ERR_LEN];
    snprintf(url, sizeof url, "%s/invocation/next", rt->base);
    struct omni_lapi_req req = {.method = "GET", .url = url};
    idle = 1;
    for (int i = 0;; i++) {
        if (stopping)
            return false;
        curl_easy_setopt(rt->h, CURLOPT_NOPROGRESS, 0L);
        enum omni_err rc = omni_lapi_do(rt->h, &req, r, err);
        curl_easy_setopt(rt->h, CURLOPT_NOPROGRESS, 1L);
        if (stopping)
            return false;
        if (rc == OMNI_OK && r->status == 200)
            break;
        if (i + 1 >= NEXT_TRIES || r->status == 500) {
            omni_error("cannot get the next invocation: %s",
                       r->status ? "Runtime API error" : err);
            exit(1);
        }
        sleep_ms(10L << i);
    }
    idle = 0;
    if (stopping)
        return false;
    char v[64];
    memset(iv, 0, sizeof *iv);
    omni_lapi_header(r, "Lambda-Runtime-Aws-Request-Id", iv->id, sizeof iv->id);
    if (omni_lapi_header(r, "Lambda-Runtime-Deadline-Ms", v, sizeof v))
        iv->deadline_ms = strtoll(v, NULL, 10);
    omni_lapi_header(r, "Lambda-Runtime-Trace-Id", iv->trace, sizeof iv->trace);
    return true;
}

/* ---------------------------------------------------------- the broker */

/* Connect, retrying with backoff for up to wait_ms. */
static omni_client *connect_wait(const char *sock, long wait_ms, char *err,
                                 size_t n)
{
    int64_t end = omni_now_ms() + wait_ms;
    long delay = 2;
    for (;;) {
        omni_client *c = omni_connect(sock, err, n);
        if (c || omni_now_ms() >= end)
            return c;
        sleep_ms(delay);
        delay = delay * 2 > 100 ? 100 : delay * 2;
    }
}

/* Send req, reconnecting once if the connection was lost. */
static int send_req(struct rt *rt, const struct omni_request *req, uint64_t *id,
                    char *err, size_t n)
{
    for (int i = 0; i < 2; i++) {
        if (!rt->c && !(rt->c = omni_connect(rt->sock, err, n)))
            return -1;
        if (omni_send(rt->c, req, id) == 0)
            return 0;
        snprintf(err, n, "%s", omni_last_error(rt->c));
        omni_close(rt->c);
        rt->c = NULL;
    }
    return -1;
}

/* The next event of request id, or a made-up TIMEOUT/UNAVAILABLE error
 * when give_up_ms (monotonic, 0: never) passes or the broker is lost. */
static void wait_event(struct rt *rt, uint64_t id, int64_t give_up_ms,
                       struct omni_event *ev)
{
    for (;;) {
        int wait = -1;
        if (give_up_ms) {
            int64_t left = give_up_ms - omni_now_ms();
            wait = left > 0 ? (int)left : 0;
        }
        int r = omni_recv(rt->c, ev, wait);
        if (r == 1 && ev->id != id)
            continue;
        if (r == 1)
            return;
        memset(ev, 0, sizeof *ev);
        ev->type = OMNI_EVENT_ERROR;
        ev->id = id;
        if (r == 0) {
            omni_cancel(rt->c, id);
            ev->code = "TIMEOUT";
            ev->status = 504;
            ev->message = "no reply from the broker in time";
        } else {
            omni_close(rt->c);
            rt->c = NULL;
            ev->code = "UNAVAILABLE";
            ev->status = 503;
            ev->message = "broker connection lost";
        }
        return;
    }
}

/* The broker deadline for a request: the route's, capped by what is
 * left of the invocation (minus the time to post the reply). */
static uint32_t budget(const struct inv *iv, uint32_t route_ms)
{
    if (!iv->deadline_ms)
        return route_ms;
    int64_t left = iv->deadline_ms - omni_wall_ms();
    int64_t ms = left > 2 * RESERVE_MS ? left - RESERVE_MS : left / 2;
    if (ms < 1)
        ms = 1;
    if (route_ms && route_ms < ms)
        ms = route_ms;
    return (uint32_t)ms;
}

static int64_t give_up_at(uint32_t timeout_ms)
{
    return timeout_ms ? omni_now_ms() + timeout_ms + GRACE_MS : 0;
}

/* ----------------------------------------------------------- HTTP events */

static void http_reply(struct rt *rt, const struct inv *iv,
                       const struct omni_http_out *out)
{
    struct omni_buf j = OMNI_BUF_INIT;
    omni_levent_response(out, &j);
    inv_response(rt, iv, j.data, j.len);
    omni_buf_release(&j);
}

/* Buffered: collect the events of id into out (SSE text for a streamed
 * route on a transport that cannot stream). */
static void collect(struct rt *rt, uint64_t id, uint32_t timeout_ms,
                    enum omni_reply_shape shape, bool stream,
                    struct omni_http_out *out)
{
    int64_t give_up = give_up_at(timeout_ms);
    bool started = false;
    for (;;) {
        struct omni_event ev;
        wait_event(rt, id, give_up, &ev);
        if (ev.type == OMNI_EVENT_CHUNK) {
            if (stream) {
                omni_reply_chunk(&out->body, shape, ev.body, ev.body_len);
                started = true;
            }
            continue;
        }
        if (ev.type == OMNI_EVENT_FINAL && stream) {
            omni_reply_stream_end(&out->body, shape);
        } else if (ev.type == OMNI_EVENT_FINAL) {
            omni_reply_final(out, shape, ev.body, ev.body_len);
            return;
        } else if (started) {
            omni_reply_stream_error(&out->body, shape, ev.code, ev.status,
                                    ev.message);
            snprintf(out->code, sizeof out->code, "%s", ev.code);
        } else {
            omni_reply_event_error(out, ev.code, ev.status, ev.message,
                                   ev.retry_after_ms);
            return;
        }
        out->status = 200;
        out->content_type = SSE_CT;
        return;
    }
}

/* A streamed HTTP or direct reply: wait for the first event, then hand
 * the rest to lstream. */
static void stream(struct rt *rt, const struct inv *iv, uint64_t id,
                   uint32_t timeout_ms, bool http, enum omni_reply_shape shape,
                   struct result *res)
{
    int64_t give_up = give_up_at(timeout_ms);
    struct omni_event first;
    wait_event(rt, id, give_up, &first);
    if (!http && first.type == OMNI_EVENT_ERROR) {
        char type[64];
        omni_levent_error_type(first.code, type, sizeof type);
        inv_error(rt, iv, type, first.message, first.code, first.status,
                  first.retry_after_ms);
        res->status = first.status;
        snprintf(res->code, sizeof res->code, "%s", first.code);
        return;
    }
    if (!rt->c) {
        /* The broker is gone: no stream to follow, only this event. */
        struct omni_http_out out;
        omni_http_out_init(&out);
        omni_reply_event_error(&out, first.code, first.status, first.message,
                               0);
        http_reply(rt, iv, &out);
        res->status = out.status;
        snprintf(res->code, sizeof res->code, "%s", out.code);
        omni_http_out_release(&out);
        return;
    }
    char url[512];
    snprintf(url, sizeof url, "%s/invocation/%s/response", rt->base, iv->id);
    struct omni_lstream_cfg cfg = {
        .url = url, .http = http, .shape = shape, .give_up_ms = give_up};
    struct omni_lstream_result r;
    enum omni_err sr = omni_lstream_run(&cfg, rt->c, id, &first, &r);
    idle = 1;
    if (sr != OMNI_OK)
        omni_error("%s", r.err);
    else if (r.status != 202)
        omni_error("streamed response: HTTP %ld", r.status);
    if (r.status == 500)
        exit(1);
    res->status = r.http_status ? r.http_status : 200;
    snprintf(res->code, sizeof res->code, "%s", r.code);
    if (r.error_type[0])
        omni_warn("invocation %s: stream failed midway: %s", iv->id,
                  r.error_type);
}

/* omni/ping or omni/stats, buffered; the final body or NULL into out. */
static bool broker_op(struct rt *rt, const char *op, struct omni_buf *body,
                      char *why, size_t n)
{
    struct omni_request req = {.service = "omni", .op = op, .timeout_ms = 2000};
    uint64_t id;
    if (send_req(rt, &req, &id, why, n) < 0)
        return false;
    struct omni_event ev;
    wait_event(rt, id, give_up_at(req.timeout_ms), &ev);
    if (ev.type != OMNI_EVENT_FINAL) {
        snprintf(why, n, "%s", ev.message ? ev.message : "broker error");
        return false;
    }
    omni_buf_add(body, ev.body, ev.body_len);
    return true;
}

static void health(struct rt *rt, struct omni_http_out *out)
{
    struct omni_buf b = OMNI_BUF_INIT;
    char why[OMNI_ERR_LEN];
    out->content_type = JSON_CT;
    if (broker_op(rt, "ping", &b, why, sizeof why)) {
        out->status = 200;
        omni_buf_adds(&out->body, "{\"status\":\"ok\"}");
    } else {
        char red[OMNI_ERR_LEN];
        omni_redact_str(why, red, sizeof red);
        out->status = 503;
        snprintf(out->code, sizeof out->code, "unavailable");
        omni_buf_adds(&out->body, "{\"status\":\"unavailable\",\"reason\":");
        omni_buf_add_json_str(&out->body, red, strlen(red));
        omni_buf_addch(&out->body, '}');
    }
    omni_buf_release(&b);
}

static void metrics(struct rt *rt, struct omni_http_out *out)
{
    struct omni_buf b = OMNI_BUF_INIT;
    char why[OMNI_ERR_LEN];
    bool ok = broker_op(rt, "stats", &b, why, sizeof why);
    out->status = 200;
    out->content_type = "text/plain; version=0.0.4";
    omni_metrics_render(rt->metrics, ok ? b.data : NULL, ok ? b.len : 0,
                        &out->body);
    omni_buf_release(&b);
}

static void http_event(struct rt *rt, const struct inv *iv,
                       const struct omni_levent *ev, struct result *res,
                       enum omni_route_name *name)
{
    struct omni_http_in in;
    omni_levent_http_in(ev, &in);
    struct omni_route r;
    omni_route_resolve(&rt->rcfg, &in, &r);
    *name = r.name;
    struct omni_http_out out;
    omni_http_out_init(&out);
    const struct omni_http_out *o = &out;
    if (ev->body_invalid) {
        omni_reply_error(&out, 400, NULL,
                         "invalid body: isBase64Encoded is set but the body "
                         "is not base64");
    } else if (r.kind == OMNI_ROUTE_REPLY) {
        o = &r.out;
    } else if (r.kind == OMNI_ROUTE_HEALTH) {
        health(rt, &out);
    } else if (r.kind == OMNI_ROUTE_METRICS) {
        metrics(rt, &out);
    } else {
        uint32_t tmo = budget(iv, r.timeout_ms);
        struct omni_request req = {.service = r.service,
                                   .op = r.op,
                                   .body = r.body.data,
                                   .body_len = r.body.len,
                                   .stream = r.stream,
                                   .timeout_ms = tmo,
                                   .auth = r.auth,
                                   .trace = iv->trace[0] ? iv->trace : NULL};
        uint64_t id;
        char why[OMNI_ERR_LEN];
        if (send_req(rt, &req, &id, why, sizeof why) < 0) {
            omni_error("cannot reach the broker: %s", why);
            omni_reply_error(&out, 503, "unavailable", "broker unavailable");
        } else if (r.stream && ev->function_url) {
            stream(rt, iv, id, tmo, true, r.shape, res);
            omni_route_release(&r);
            omni_http_out_release(&out);
            return;
        } else {
            collect(rt, id, tmo, r.shape, r.stream, &out);
        }
    }
    http_reply(rt, iv, o);
    res->status = o->status;
    snprintf(res->code, sizeof res->code, "%s", o->code);
    omni_http_out_release(&out);
    omni_route_release(&r);
}

/* --------------------------------------------------- direct invocations */

static void direct_event(struct rt *rt, const struct inv *iv,
                         const struct omni_levent *ev, struct result *res)
{
    uint32_t tmo = budget(iv, ev->direct_timeout_ms);
    struct omni_request req = {.service = ev->service,
                               .op = ev->op,
                               .body = ev->body.data,
                               .body_len = ev->body.len,
                               .stream = ev->stream,
                               .idempotent = ev->idempotent,
                               .timeout_ms = tmo,
                               .auth = ev->auth,
                               .trace = iv->trace[0] ? iv->trace : NULL};
    uint64_t id;
    char why[OMNI_ERR_LEN];
    if (send_req(rt, &req, &id, why, sizeof why) < 0) {
        omni_error("cannot reach the broker: %s", why);
        inv_error(rt, iv, "Runtime.BrokerUnavailable", "broker unavailable",
                  "UNAVAILABLE", 503, 0);
        res->status = 503;
        return;
    }
    if (ev->stream) {
        stream(rt, iv, id, tmo, false, OMNI_SHAPE_SSE, res);
        return;
    }
    struct omni_event e;
    wait_event(rt, id, give_up_at(tmo), &e);
    while (e.type == OMNI_EVENT_CHUNK)
        wait_event(rt, id, give_up_at(tmo), &e);
    if (e.type == OMNI_EVENT_FINAL) {
        inv_response(rt, iv, e.body_len ? e.body : "{}",
                     e.body_len ? e.body_len : 2);
        res->status = 200;
        return;
    }
    char type[64];
    omni_levent_error_type(e.code, type, sizeof type);
    inv_error(rt, iv, type, e.message, e.code, e.status, e.retry_after_ms);
    res->status = e.status;
    snprintf(res->code, sizeof res->code, "%s", e.code);
}

/* ------------------------------------------------------------- the loop */

static void invocation(struct rt *rt, const struct inv *iv,
                       const struct omni_lapi_resp *r)
{
    if (iv->trace[0])
        setenv("_X_AMZN_TRACE_ID", iv->trace, 1);
    else
        unsetenv("_X_AMZN_TRACE_ID");
    int64_t t0 = omni_now_us();
    struct omni_levent ev;
    omni_levent_parse(r->body.data, r->body.len, &ev);
    struct result res = {0};
    enum omni_route_name name = OMNI_R_UNKNOWN;
    omni_metrics_begin(rt->metrics);
    switch (ev.kind) {
    case OMNI_LEVENT_HTTP: http_event(rt, iv, &ev, &res, &name); break;
    case OMNI_LEVENT_DIRECT: direct_event(rt, iv, &ev, &res); break;
    case OMNI_LEVENT_BAD:
        inv_error(rt, iv, "Function.InvalidEvent", ev.err, NULL, 400, 0);
        res.status = 400;
        snprintf(res.code, sizeof res.code, "bad_request");
        break;
    }
    double secs = (double)(omni_now_us() - t0) / 1e6;
    omni_metrics_end(rt->metrics, name, res.status, res.code, secs);
    omni_debug("invocation %s: %s %s -> %d %s (%.1f ms)", iv->id,
               ev.kind == OMNI_LEVENT_HTTP ? ev.method : "direct",
               ev.kind == OMNI_LEVENT_HTTP     ? ev.target
               : ev.kind == OMNI_LEVENT_DIRECT ? ev.service
                                               : "invalid",
               res.status, res.code, secs * 1e3);
    omni_levent_release(&ev);
}

static void init_fail(struct rt *rt, const char *type, const char *msg)
{
    omni_error("%s", msg);
    post_error(rt, "/init/error", type, msg, NULL, 0, 0);
    exit(1);
}

int main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    omni_log_init("bootstrap");
    /* No SA_RESTART: the signal must interrupt what we wait in. */
    struct sigaction sa = {.sa_handler = on_term};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    struct rt rt = {0};
    char err[OMNI_ERR_LEN];
    enum omni_err cfg_rc = omni_cfg_load(NULL, err);
    const char *api = cfg_rc == OMNI_OK ? omni_cfg_str("lambda.runtime_api")
                                        : getenv("AWS_LAMBDA_RUNTIME_API");
    if (!api || !*api)
        omni_fatal("AWS_LAMBDA_RUNTIME_API is not set: bootstrap runs "
                   "inside AWS Lambda or its emulator");
    snprintf(rt.base, sizeof rt.base, "http://%s/2018-06-01/runtime", api);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK ||
        !(rt.h = curl_easy_init()))
        omni_fatal("cannot initialise libcurl");
    omni_lapi_setup(rt.h);
    curl_easy_setopt(rt.h, CURLOPT_XFERINFOFUNCTION, on_progress);
    if (cfg_rc != OMNI_OK)
        init_fail(&rt, "Runtime.ConfigInvalid", err);
    int lvl = omni_log_level_parse(omni_cfg_str("log_level"));
    if (lvl >= 0)
        omni_log_set_level((enum omni_log_level)lvl);
    omni_log_set_json(strcmp(omni_cfg_str("log_format"), "text") != 0);

    rt.sock = omni_strdup(omni_cfg_socket_path());
    long wait_ms = omni_cfg_int("lambda.wait_ms");
    rt.c = connect_wait(rt.sock, wait_ms, err, sizeof err);
    if (!rt.c) {
        char msg[OMNI_ERR_LEN + 128];
        snprintf(msg, sizeof msg,
                 "broker socket '%s' not ready after %ld ms: %s", rt.sock,
                 wait_ms, err);
        init_fail(&rt, "Runtime.ExtensionUnavailable", msg);
    }
    omni_route_cfg_keys(&rt.rcfg, omni_cfg_str("client_keys"));
    rt.rcfg.max_body = (size_t)omni_cfg_int("http.max_body");
    rt.metrics = omni_metrics_new();
    omni_debug("connected to '%s'", rt.sock);

    struct omni_lapi_resp r;
    omni_lapi_resp_init(&r);
    struct inv iv;
    while (next(&rt, &iv, &r))
        invocation(&rt, &iv, &r);
    omni_debug("SIGTERM: exiting");
    omni_lapi_resp_release(&r);
    omni_metrics_free(rt.metrics);
    omni_route_cfg_release(&rt.rcfg);
    if (rt.c)
        omni_close(rt.c);
    omni_free(rt.sock);
    curl_easy_cleanup(rt.h);
    curl_global_cleanup();
    omni_cfg_free();
    return 0;
}
