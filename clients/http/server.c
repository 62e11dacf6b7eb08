/*
 * server - the evhttp side of omni-http.
 *
 * Every HTTP request goes through omni_route_resolve(); an immediate
 * reply is sent at once, a broker call gets a struct hreq that lives
 * until the broker's FINAL or ERROR for it (the one place it is freed),
 * even when the client went away first.  Streams send their headers
 * with the first chunk, so an error before any chunk still gets its
 * real HTTP status.
 *
 * Client disconnects: libevent 2.1's evhttp stops reading a connection
 * once the request is in, so it only notices a closed client when a
 * write fails.  We watch the socket ourselves with a one-shot read
 * event and MSG_PEEK: EOF or an error means the client is gone, so we
 * cancel its broker request and free the connection.  The loop keeps a
 * change list (main.c), so adding the watch right after evhttp stopped
 * reading the fd costs no epoll_ctl of its own.
 */
#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/http.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "link.h"
#include "metrics.h"
#include "omni_alloc.h"
#include "omni_log.h"
#include "omni_time.h"
#include "routes.h"

#define HEALTH_TTL_MS  250
#define MAX_HEADERS    (64 * 1024)
#define JSON_CT        "application/json"
#define PROM_CT        "text/plain; version=0.0.4; charset=utf-8"
#define FLUSH_LIMIT_MS 1000

/* One HTTP request waiting on the broker. */
struct hreq {
    struct omni_http_server *s;
    struct hreq *prev, *next;   /* every hreq of s */
    struct hreq *next_waiter;   /* /health requests waiting for a ping */
    struct evhttp_request *req; /* NULL once answered or gone */
    struct evhttp_connection *evcon;
    struct event *watch; /* client EOF watch */
    enum omni_route_name name;
    enum omni_reply_shape shape;
    bool stream;
    bool started; /* stream headers are out */
    bool has_id;
    uint64_t id;
    int status; /* for metrics and the log */
    char code[48];
    int64_t t0_us;
    char what[96]; /* "METHOD /path" for the log */
};

struct omni_http_server {
    struct event_base *base;
    struct evhttp *http;
    struct evhttp_bound_socket *sock;
    struct omni_link *link;
    struct omni_metrics *metrics;
    struct omni_route_cfg cfg;
    struct evbuffer *scratch;
    struct hreq *reqs;
    size_t in_flight;
    bool draining;
    bool drain_done;
    size_t unflushed;          /* replies handed to evhttp, not yet written */
    struct event *flush_limit; /* a drain waits that long for them */
    void (*drained_cb)(void *arg);
    void *drained_arg;
    int64_t health_at_ms; /* when the cached ping result was got */
    bool health_ok;
    char health_reason[OMNI_ERR_LEN];
    bool ping_pending;
    struct hreq *waiters;
};

static const char *method_name(enum evhttp_cmd_type m)
{
    switch (m) {
    case EVHTTP_REQ_GET: return "GET";
    case EVHTTP_REQ_POST: return "POST";
    case EVHTTP_REQ_HEAD: return "HEAD";
    case EVHTTP_REQ_PUT: return "PUT";
    case EVHTTP_REQ_DELETE: return "DELETE";
    case EVHTTP_REQ_OPTIONS: return "OPTIONS";
    case EVHTTP_REQ_PATCH: return "PATCH";
    default: return "OTHER";
    }
}

static bool addr_loopback(const char *addr)
{
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, addr, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, addr, &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&a6) ||
               (IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127);
    return false;
}

static bool peer_loopback(struct evhttp_connection *evcon)
{
    char *addr = NULL;
    ev_uint16_t port = 0;
    evhttp_connection_get_peer(evcon, &addr, &port);
    return addr && addr_loopback(addr);
}

/* Reason phrases evhttp 2.1 does not know. */
static const char *reason(int status)
{
    return status == 429 ? "Too Many Requests" : NULL;
}

static void maybe_drained(struct omni_http_server *s);

/* evhttp wrote the whole reply of req (its on-complete callback). */
static void on_sent(struct evhttp_request *req, void *arg)
{
    struct omni_http_server *s = arg;
    (void)req;
    if (s->unflushed) /* 0 once the flush limit gave up on them */
        s->unflushed--;
    maybe_drained(s);
}

/* Count req's reply until evhttp has written it, so that a drain does
 * not leave the loop with its last bytes (a stream's closing chunk)
 * still in the connection's buffer. */
static void track(struct omni_http_server *s, struct evhttp_request *req)
{
    evhttp_request_set_on_complete_cb(req, on_sent, s);
    s->unflushed++;
}

/* The reply of req will not be written (its client is gone). */
static void untrack(struct omni_http_server *s, struct evhttp_request *req)
{
    evhttp_request_set_on_complete_cb(req, NULL, NULL);
    s->unflushed--;
}

/* Write an immediate reply. */
static void send_out(struct omni_http_server *s, struct evhttp_request *req,
                     const struct omni_http_out *o)
{
    struct evbuffer *buf = s->scratch;
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    if (o->content_type)
        evhttp_add_header(h, "Content-Type", o->content_type);
    if (o->session)
        evhttp_add_header(h, "Mcp-Session-Id", o->session);
    if (o->allow)
        evhttp_add_header(h, "Allow", o->allow);
    if (o->retry_after_s) {
        char v[16];
        snprintf(v, sizeof v, "%u", o->retry_after_s);
        evhttp_add_header(h, "Retry-After", v);
    }
    evbuffer_add(buf, o->body.data, o->body.len);
    track(s, req);
    evhttp_send_reply(req, o->status, reason(o->status), buf);
}

/* Count and log a finished request. */
static void account(struct omni_http_server *s, enum omni_route_name name,
                    int status, const char *code, int64_t t0_us,
                    const char *what)
{
    double secs = (double)(omni_now_us() - t0_us) / 1e6;
    omni_metrics_end(s->metrics, name, status, code, secs);
    omni_debug("%s %d %.1f ms%s%s", what, status, secs * 1e3,
               code && *code ? " " : "", code ? code : "");
}

/* Forget the connection: no more close callback, no more watch. */
static void detach(struct hreq *h)
{
    if (h->watch) {
        event_free(h->watch);
        h->watch = NULL;
    }
    if (h->evcon)
        evhttp_connection_set_closecb(h->evcon, NULL, NULL);
}

/* A drain ends when nothing is in flight and every reply is written,
 * or FLUSH_LIMIT_MS after the last request ended if some never is (its
 * client went away while we wrote it). */
static void maybe_drained(struct omni_http_server *s)
{
    if (!s->draining || s->drain_done || s->in_flight)
        return;
    if (s->unflushed && !evtimer_pending(s->flush_limit, NULL)) {
        struct timeval tv = {FLUSH_LIMIT_MS / 1000,
                             (FLUSH_LIMIT_MS % 1000) * 1000};
        evtimer_add(s->flush_limit, &tv);
        return;
    }
    if (s->unflushed)
        return;
    s->drain_done = true;
    evtimer_del(s->flush_limit);
    if (s->drained_cb)
        s->drained_cb(s->drained_arg);
    else
        event_base_loopexit(s->base, NULL);
}

static void on_flush_limit(evutil_socket_t fd, short what, void *arg)
{
    struct omni_http_server *s = arg;
    (void)fd;
    (void)what;
    omni_warn("draining: %zu repl%s not written after %d ms: leaving them",
              s->unflushed, s->unflushed == 1 ? "y" : "ies", FLUSH_LIMIT_MS);
    s->unflushed = 0;
    maybe_drained(s);
}

/* The end of an hreq: count it, free it, maybe end the drain. */
static void finish(struct hreq *h)
{
    struct omni_http_server *s = h->s;
    detach(h);
    account(s, h->name, h->status, h->code, h->t0_us, h->what);
    if (h->prev)
        h->prev->next = h->next;
    else
        s->reqs = h->next;
    if (h->next)
        h->next->prev = h->prev;
    omni_free(h);
    s->in_flight--;
    maybe_drained(s);
}

/* The client went away: cancel its broker request.  The hreq stays
 * until the broker answers (the answer is dropped). */
static void client_gone(struct hreq *h)
{
    omni_debug("%s: client disconnected", h->what);
    if (h->req && h->started)
        untrack(h->s, h->req);
    detach(h);
    h->req = NULL;
    h->evcon = NULL;
    h->status = 499;
    h->code[0] = '\0';
    if (h->has_id)
        omni_link_cancel(h->s->link, h->id);
}

/* evhttp saw the connection fail.  A request it had handed us and we
 * had not finished is taken off the connection (its evcon is NULL) and
 * left to us to free; one still on the connection goes with it. */
static void on_close(struct evhttp_connection *evcon, void *arg)
{
    struct hreq *h = arg;
    struct evhttp_request *req = h->req;
    (void)evcon;
    client_gone(h);
    if (req && !evhttp_request_get_connection(req))
        evhttp_request_free(req);
}

static void on_watch(evutil_socket_t fd, short what, void *arg)
{
    struct hreq *h = arg;
    (void)what;
    char c;
    ssize_t n = recv(fd, &c, 1, MSG_PEEK);
    if (n > 0)
        return; /* a pipelined request: evhttp reads it later */
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        event_add(h->watch, NULL);
        return;
    }
    struct evhttp_connection *evcon = h->evcon;
    client_gone(h);
    evhttp_connection_free(evcon);
}

static struct hreq *hreq_new(struct omni_http_server *s,
                             struct evhttp_request *req,
                             enum omni_route_name name, int64_t t0,
                             const char *what)
{
    struct hreq *h = omni_calloc(1, sizeof *h);
    h->s = s;
    h->req = req;
    h->evcon = evhttp_request_get_connection(req);
    h->name = name;
    h->t0_us = t0;
    snprintf(h->what, sizeof h->what, "%s", what);
    evhttp_connection_set_closecb(h->evcon, on_close, h);
    evutil_socket_t fd =
        bufferevent_getfd(evhttp_connection_get_bufferevent(h->evcon));
    h->watch = event_new(s->base, fd, EV_READ, on_watch, h);
    event_add(h->watch, NULL);
    h->next = s->reqs;
    if (s->reqs)
        s->reqs->prev = h;
    s->reqs = h;
    s->in_flight++;
    return h;
}

/* Answer h with o (if the client is still there) and end it. */
static void reply(struct hreq *h, const struct omni_http_out *o)
{
    if (h->req) {
        h->status = o->status;
        snprintf(h->code, sizeof h->code, "%s", o->code);
        detach(h);
        send_out(h->s, h->req, o);
        h->req = NULL;
    }
    finish(h);
}

/* ------------------------------------------------------------ streams */

static void stream_start(struct hreq *h)
{
    if (h->started)
        return;
    h->started = true;
    h->status = 200;
    struct evkeyvalq *hd = evhttp_request_get_output_headers(h->req);
    evhttp_add_header(hd, "Content-Type", "text/event-stream");
    evhttp_add_header(hd, "Cache-Control", "no-cache");
    evhttp_add_header(hd, "X-Accel-Buffering", "no");
    track(h->s, h->req);
    evhttp_send_reply_start(h->req, 200, NULL);
}

static void stream_write(struct hreq *h, const struct omni_buf *b)
{
    if (!b->len)
        return;
    evbuffer_add(h->s->scratch, b->data, b->len);
    evhttp_send_reply_chunk(h->req, h->s->scratch);
}

static void stream_end(struct hreq *h)
{
    detach(h);
    evhttp_send_reply_end(h->req);
    h->req = NULL;
    finish(h);
}

/* Events of a routed call. */
static void on_event(const struct omni_event *ev, void *arg)
{
    struct hreq *h = arg;
    if (!h->req) {
        if (ev->type != OMNI_EVENT_CHUNK)
            finish(h);
        return;
    }
    struct omni_buf b = OMNI_BUF_INIT;
    struct omni_http_out out;
    omni_http_out_init(&out);
    switch (ev->type) {
    case OMNI_EVENT_CHUNK:
        if (!h->stream)
            break;
        if (!h->started) {
            stream_start(h);
            omni_metrics_first_chunk(h->s->metrics, h->name,
                                     (double)(omni_now_us() - h->t0_us) / 1e6);
        }
        omni_reply_chunk(&b, h->shape, ev->body, ev->body_len);
        stream_write(h, &b);
        break;
    case OMNI_EVENT_FINAL:
        if (h->stream) {
            stream_start(h);
            omni_reply_stream_end(&b, h->shape);
            stream_write(h, &b);
            stream_end(h);
        } else {
            omni_reply_final(&out, h->shape, ev->body, ev->body_len);
            reply(h, &out);
        }
        break;
    case OMNI_EVENT_ERROR:
        if (h->started) {
            omni_reply_stream_error(&b, h->shape, ev->code, ev->status,
                                    ev->message);
            stream_write(h, &b);
            snprintf(h->code, sizeof h->code, "%s", ev->code);
            stream_end(h);
        } else {
            omni_reply_event_error(&out, ev->code, ev->status, ev->message,
                                   ev->retry_after_ms);
            reply(h, &out);
        }
        break;
    }
    omni_buf_release(&b);
    omni_http_out_release(&out);
}

/* ------------------------------------------------------------ /health */

static void health_reply(struct hreq *h)
{
    struct omni_http_server *s = h->s;
    struct omni_http_out out;
    omni_http_out_init(&out);
    out.content_type = JSON_CT;
    if (s->health_ok) {
        out.status = 200;
        omni_buf_adds(&out.body, "{\"status\":\"ok\"}");
    } else {
        out.status = 503;
        snprintf(out.code, sizeof out.code, "unavailable");
        omni_buf_adds(&out.body, "{\"status\":\"unavailable\",\"reason\":");
        omni_buf_add_json_str(&out.body, s->health_reason,
                              strlen(s->health_reason));
        omni_buf_addch(&out.body, '}');
    }
    reply(h, &out);
    omni_http_out_release(&out);
}

/* Cache a ping result and answer everyone waiting for it. */
static void health_set(struct omni_http_server *s, bool ok, const char *reason)
{
    s->health_ok = ok;
    s->health_at_ms = omni_now_ms();
    omni_redact_str(reason ? reason : "", s->health_reason,
                    sizeof s->health_reason);
    while (s->waiters) {
        struct hreq *h = s->waiters;
        s->waiters = h->next_waiter;
        health_reply(h);
    }
}

static void on_ping(const struct omni_event *ev, void *arg)
{
    struct omni_http_server *s = arg;
    if (ev->type == OMNI_EVENT_CHUNK)
        return;
    s->ping_pending = false;
    health_set(s, ev->type == OMNI_EVENT_FINAL,
               ev->message && *ev->message ? ev->message : "broker error");
}

static void health(struct omni_http_server *s, struct evhttp_request *req,
                   int64_t t0, const char *what)
{
    struct hreq *h = hreq_new(s, req, OMNI_R_HEALTH, t0, what);
    if (s->health_at_ms && omni_now_ms() - s->health_at_ms < HEALTH_TTL_MS) {
        health_reply(h);
        return;
    }
    h->next_waiter = s->waiters;
    s->waiters = h;
    if (s->ping_pending)
        return;
    struct omni_request ping = {.service = "omni", .op = "ping"};
    uint64_t id;
    if (omni_link_send(s->link, &ping, on_ping, s, &id) == 0) {
        s->ping_pending = true;
        return;
    }
    health_set(s, false, "broker unavailable");
}

/* ----------------------------------------------------------- /metrics */

static void metrics_reply(struct hreq *h, const char *stats, size_t n)
{
    struct omni_http_out out;
    omni_http_out_init(&out);
    out.status = 200;
    out.content_type = PROM_CT;
    omni_metrics_render(h->s->metrics, stats, n, &out.body);
    reply(h, &out);
    omni_http_out_release(&out);
}

static void on_stats(const struct omni_event *ev, void *arg)
{
    struct hreq *h = arg;
    if (ev->type == OMNI_EVENT_CHUNK)
        return;
    if (!h->req) {
        finish(h);
        return;
    }
    if (ev->type == OMNI_EVENT_FINAL)
        metrics_reply(h, ev->body, ev->body_len);
    else
        metrics_reply(h, NULL, 0);
}

static void metrics(struct omni_http_server *s, struct evhttp_request *req,
                    int64_t t0, const char *what)
{
    struct hreq *h = hreq_new(s, req, OMNI_R_METRICS, t0, what);
    struct omni_request stats = {.service = "omni", .op = "stats"};
    if (omni_link_send(s->link, &stats, on_stats, h, &h->id) == 0)
        h->has_id = true;
    else
        metrics_reply(h, NULL, 0);
}

/* ------------------------------------------------------------ routing */

static void immediate(struct omni_http_server *s, struct evhttp_request *req,
                      const struct omni_http_out *o, int64_t t0,
                      const char *what, enum omni_route_name name)
{
    send_out(s, req, o);
    account(s, name, o->status, o->code, t0, what);
}

static void call(struct omni_http_server *s, struct evhttp_request *req,
                 const struct omni_route *r, int64_t t0, const char *what)
{
    struct hreq *h = hreq_new(s, req, r->name, t0, what);
    h->shape = r->shape;
    h->stream = r->stream;
    struct omni_request oreq = {.service = r->service,
                                .op = r->op,
                                .body = r->body.data,
                                .body_len = r->body.len,
                                .stream = r->stream,
                                .timeout_ms = r->timeout_ms,
                                .auth = r->auth};
    if (omni_link_send(s->link, &oreq, on_event, h, &h->id) == 0) {
        h->has_id = true;
        return;
    }
    struct omni_http_out out;
    omni_http_out_init(&out);
    omni_reply_error(&out, 503, NULL, "broker unavailable");
    reply(h, &out);
    omni_http_out_release(&out);
}

static void on_request(struct evhttp_request *req, void *arg)
{
    struct omni_http_server *s = arg;
    int64_t t0 = omni_now_us();
    omni_metrics_begin(s->metrics);
    struct evkeyvalq *hd = evhttp_request_get_input_headers(req);
    struct evbuffer *inb = evhttp_request_get_input_buffer(req);
    size_t blen = evbuffer_get_length(inb);
    const char *target = evhttp_request_get_uri(req);
    struct omni_http_in in = {
        .method = method_name(evhttp_request_get_command(req)),
        .target = target,
        .authorization = evhttp_find_header(hd, "Authorization"),
        .content_type = evhttp_find_header(hd, "Content-Type"),
        .accept = evhttp_find_header(hd, "Accept"),
        .mcp_session = evhttp_find_header(hd, "Mcp-Session-Id"),
        .mcp_protocol = evhttp_find_header(hd, "MCP-Protocol-Version"),
        .timeout_ms = evhttp_find_header(hd, "x-omni-timeout-ms"),
        .loopback = peer_loopback(evhttp_request_get_connection(req)),
        .body = blen ? (const char *)evbuffer_pullup(inb, -1) : NULL,
        .body_len = blen,
    };
    char what[96];
    snprintf(what, sizeof what, "%s %.*s", in.method,
             (int)strcspn(target, "?#"), target);

    struct omni_route r;
    omni_route_resolve(&s->cfg, &in, &r);
    if (s->draining && r.kind != OMNI_ROUTE_REPLY) {
        struct omni_http_out out;
        omni_http_out_init(&out);
        omni_reply_error(&out, 503, NULL, "the server is shutting down");
        evhttp_add_header(evhttp_request_get_output_headers(req), "Connection",
                          "close");
        immediate(s, req, &out, t0, what, r.name);
        omni_http_out_release(&out);
        omni_route_release(&r);
        return;
    }
    switch (r.kind) {
    case OMNI_ROUTE_REPLY: immediate(s, req, &r.out, t0, what, r.name); break;
    case OMNI_ROUTE_HEALTH: health(s, req, t0, what); break;
    case OMNI_ROUTE_METRICS: metrics(s, req, t0, what); break;
    case OMNI_ROUTE_CALL: call(s, req, &r, t0, what); break;
    }
    omni_route_release(&r);
}

/* ----------------------------------------------------------- lifetime */

/* Split "host:port" or "[v6]:port". */
static int parse_listen(const char *l, char *host, size_t hn, unsigned *port)
{
    const char *colon, *h = l;
    size_t len;
    if (*l == '[') {
        const char *close = strchr(l, ']');
        if (!close || close[1] != ':')
            return -1;
        h = l + 1;
        len = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(l, ':');
        if (!colon)
            return -1;
        len = (size_t)(colon - l);
    }
    char *end;
    errno = 0;
    unsigned long p = strtoul(colon + 1, &end, 10);
    if (len == 0 || len >= hn || errno || end == colon + 1 || *end || p > 65535)
        return -1;
    memcpy(host, h, len);
    host[len] = '\0';
    *port = (unsigned)p;
    return 0;
}

static unsigned bound_port(struct evhttp_bound_socket *b)
{
    union {
        struct sockaddr sa;
        struct sockaddr_in in;
        struct sockaddr_in6 in6;
    } u;
    memset(&u, 0, sizeof u);
    socklen_t n = sizeof u;
    if (getsockname(evhttp_bound_socket_get_fd(b), &u.sa, &n) < 0)
        return 0;
    return ntohs(u.sa.sa_family == AF_INET ? u.in.sin_port : u.in6.sin6_port);
}

struct omni_http_server *omni_http_server_new(struct event_base *base,
                                              const struct omni_http_opts *o,
                                              char err[OMNI_ERR_LEN])
{
    char host[256];
    unsigned port;
    if (parse_listen(o->listen, host, sizeof host, &port) < 0) {
        snprintf(err, OMNI_ERR_LEN,
                 "bad http_listen '%.64s': want host:port or [v6]:port",
                 o->listen);
        return NULL;
    }
    struct omni_http_server *s = omni_calloc(1, sizeof *s);
    s->base = base;
    s->http = evhttp_new(base);
    omni_route_cfg_keys(&s->cfg, o->client_keys);
    s->cfg.max_body = o->max_body;
    s->drained_cb = o->drained;
    s->drained_arg = o->drained_arg;
    /* evhttp answers bodies over its own limit with an HTML 413; ours is
     * twice the configured one, so a body a little over the limit gets
     * our JSON 413 while memory per connection stays bounded. */
    evhttp_set_max_body_size(s->http, (ev_ssize_t)(o->max_body * 2));
    evhttp_set_max_headers_size(s->http, MAX_HEADERS);
    evhttp_set_allowed_methods(
        s->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                     EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS |
                     EVHTTP_REQ_PATCH);
    evhttp_set_gencb(s->http, on_request, s);
    s->sock = evhttp_bind_socket_with_handle(s->http, host, (ev_uint16_t)port);
    if (!s->sock) {
        snprintf(err, OMNI_ERR_LEN, "cannot listen on '%.64s': %s", o->listen,
                 strerror(errno));
        omni_http_server_free(s);
        return NULL;
    }
    /* A streamed reply is many small writes: with Nagle on, each one
     * after the first waits for the client's delayed ACK (40 ms).
     * Linux copies TCP_NODELAY from the listening socket to every socket
     * accept() returns, so one call here covers all connections. */
    int one = 1;
    if (setsockopt(evhttp_bound_socket_get_fd(s->sock), IPPROTO_TCP,
                   TCP_NODELAY, &one, sizeof one) < 0)
        omni_warn("cannot set TCP_NODELAY on '%s': %s", o->listen,
                  strerror(errno));
    s->scratch = evbuffer_new();
    s->flush_limit = evtimer_new(base, on_flush_limit, s);
    s->metrics = omni_metrics_new();
    s->link = omni_link_new(base, o->socket);
    omni_info("listening on http://%s%s%s:%u%s", strchr(host, ':') ? "[" : "",
              host, strchr(host, ':') ? "]" : "", bound_port(s->sock),
              s->cfg.nkeys ? " with client keys" : "");
    if (!s->cfg.nkeys && !addr_loopback(host) && strcmp(host, "localhost"))
        omni_warn("listening on '%s' without client keys: anyone who can "
                  "reach it can use it; set OMNI_CLIENT_KEYS",
                  o->listen);
    return s;
}

void omni_http_server_drain(struct omni_http_server *s)
{
    if (s->draining)
        return;
    s->draining = true;
    if (s->sock) {
        evhttp_del_accept_socket(s->http, s->sock);
        s->sock = NULL;
    }
    omni_info("draining: %zu request(s) in flight", s->in_flight);
    maybe_drained(s);
}

void omni_http_server_free(struct omni_http_server *s)
{
    if (!s)
        return;
    /* Whatever is still in flight (the broker went away) is dropped
     * without replies: forget the connections first. */
    while (s->reqs) {
        struct hreq *h = s->reqs;
        s->reqs = h->next;
        detach(h);
        omni_free(h);
    }
    evhttp_free(s->http);
    if (s->flush_limit)
        event_free(s->flush_limit);
    omni_link_free(s->link);
    omni_metrics_free(s->metrics);
    if (s->scratch)
        evbuffer_free(s->scratch);
    omni_route_cfg_release(&s->cfg);
    omni_free(s);
}
