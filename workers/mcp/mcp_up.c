/*
 * mcp_up - one upstream MCP server: handshake, requests, tools, restarts.
 *
 * Life: start -> (era unknown: probe with server/discover) -> legacy:
 * initialize / notifications/initialized, or modern: discover result ->
 * READY -> tools/list (all pages) -> calls.  Replies are matched by id
 * in any order; notifications are taken at any time, even before the
 * initialize reply.  Any failure of the transport (child died, line
 * too long is not one, HTTP unreachable) or of the handshake fails every
 * request in flight, tears the transport down outside its own callbacks
 * and restarts it after a backoff that doubles up to mcp.restart_max_ms.
 * The era found by the probe is remembered for the worker's life.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "mcp.h"
#include "omni_alloc.h"
#include "omni_log.h"
#include "omni_time.h"

static void send_initialize(struct omni_mcp_up *u);
static void list_tools(struct omni_mcp_up *u);

const char *omni_mcp_state_name(enum omni_mcp_state s)
{
    switch (s) {
    case OMNI_MCP_S_DOWN: return "down";
    case OMNI_MCP_S_PROBING: return "probing";
    case OMNI_MCP_S_INIT: return "initializing";
    case OMNI_MCP_S_READY: return "ready";
    case OMNI_MCP_S_STOPPED: return "stopped";
    }
    return "?";
}

static const char *name_of(const struct omni_mcp_up *u)
{
    return u->cfg->name;
}

/* Free p after it left the table. */
static void pending_free(struct omni_mcp_pending *p)
{
    if (p->timer)
        event_free(p->timer);
    json_decref(p->msg);
    omni_free(p);
}

static void unhold(struct omni_mcp_up *u, struct omni_mcp_pending *p)
{
    if (!p->held)
        return;
    struct omni_mcp_pending **pp = &u->held;
    while (*pp && *pp != p)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = p->hnext;
    p->held = false;
    p->hnext = NULL;
}

void omni_mcp_up_answer(struct omni_mcp_up *u, struct omni_mcp_pending *p,
                        const struct omni_mcp_reply *r)
{
    omni_mcp_ptab_remove(&u->ptab, p);
    unhold(u, p);
    if (p->timer) {
        event_free(p->timer);
        p->timer = NULL;
    }
    p->fn(p, r);
    pending_free(p);
}

/* Tell the server we stopped waiting for id.  Never for initialize; in
 * the modern era over HTTP closing the stream is the cancel. */
static void send_cancelled(struct omni_mcp_up *u, int64_t id,
                           const char *reason)
{
    if (u->cfg->tp == OMNI_MCP_HTTP && u->era == OMNI_MCP_ERA_MODERN)
        return;
    json_t *n = omni_mcp_notification(
        "notifications/cancelled",
        json_pack("{s:I,s:s}", "requestId", (json_int_t)id, "reason", reason));
    u->ops->send(u, n, NULL);
    json_decref(n);
}

void omni_mcp_up_drop(struct omni_mcp_up *u, struct omni_mcp_pending *p,
                      const char *reason)
{
    u->ops->forget(u, p);
    omni_mcp_ptab_remove(&u->ptab, p);
    unhold(u, p);
    if (reason && u->state != OMNI_MCP_S_DOWN)
        send_cancelled(u, p->id, reason);
    pending_free(p);
}

static void on_ptimeout(evutil_socket_t fd, short what, void *arg)
{
    struct omni_mcp_pending *p = arg;
    struct omni_mcp_up *u = p->up;
    const char *method = json_string_value(json_object_get(p->msg, "method"));
    (void)fd;
    (void)what;
    u->ops->forget(u, p);
    if (method && strcmp(method, "initialize"))
        send_cancelled(u, p->id, "timeout");
    struct omni_mcp_reply r = {.outcome = OMNI_MCP_TIMEOUT,
                               .why = "no reply in time"};
    omni_mcp_up_answer(u, p, &r);
}

struct omni_mcp_pending *omni_mcp_up_request(struct omni_mcp_up *u,
                                             const char *method, json_t *params,
                                             int64_t timeout_ms,
                                             omni_mcp_reply_fn fn, void *arg)
{
    struct omni_mcp_pending *p = omni_calloc(1, sizeof *p);
    p->up = u;
    p->fn = fn;
    p->arg = arg;
    omni_mcp_ptab_add(&u->ptab, p);
    if (u->era == OMNI_MCP_ERA_MODERN) {
        if (!params)
            params = json_object();
        json_t *meta = json_object_get(params, "_meta");
        json_t *env = omni_mcp_modern_meta();
        if (json_is_object(meta))
            json_object_update(meta, env);
        else
            json_object_set(params, "_meta", env);
        json_decref(env);
    }
    p->msg = omni_mcp_request(p->id, method, params);
    if (timeout_ms > 0) {
        struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
        p->timer = evtimer_new(u->hub->base, on_ptimeout, p);
        evtimer_add(p->timer, &tv);
    }
    u->ops->send(u, p->msg, p);
    return p;
}

/* ---- calls ---- */

static void finish_unavailable(struct omni_mcp_call *c)
{
    char msg[OMNI_ERR_LEN + 128];
    snprintf(msg, sizeof msg, "mcp server '%s' is unavailable: %s",
             name_of(c->up), c->up->why[0] ? c->up->why : "starting");
    omni_mcp_call_finish(c, OMNI_E_UNAVAILABLE, msg, NULL);
}

static void call_done(struct omni_mcp_pending *p,
                      const struct omni_mcp_reply *r)
{
    struct omni_mcp_call *c = p->arg;
    struct omni_mcp_up *u = p->up;
    char msg[OMNI_ERR_LEN + 128];
    c->p = NULL;
    switch (r->outcome) {
    case OMNI_MCP_OK: {
        const json_t *rt = json_object_get(r->result, "resultType");
        if (json_is_string(rt) && strcmp(json_string_value(rt), "complete")) {
            snprintf(msg, sizeof msg,
                     "mcp server '%s' asked for input "
                     "(resultType '%.32s'), which omni cannot give",
                     name_of(u), json_string_value(rt));
            omni_mcp_call_finish(c, OMNI_E_UPSTREAM, msg, NULL);
        } else if (!json_is_object(r->result)) {
            snprintf(msg, sizeof msg,
                     "mcp server '%s' answered "
                     "tools/call with a non-object result",
                     name_of(u));
            omni_mcp_call_finish(c, OMNI_E_UPSTREAM, msg, NULL);
        } else {
            omni_mcp_call_finish(c, OMNI_OK, NULL, r->result);
        }
        break;
    }
    case OMNI_MCP_RPC_ERROR:
    case OMNI_MCP_HTTP_ERROR: {
        const json_t *code = json_object_get(r->error, "code");
        const json_t *m = json_object_get(r->error, "message");
        if (r->outcome == OMNI_MCP_HTTP_ERROR && !r->error)
            snprintf(msg, sizeof msg, "mcp server '%s' answered HTTP %d",
                     name_of(u), r->http_status);
        else
            snprintf(msg, sizeof msg, "mcp server '%s' error %lld: %.200s",
                     name_of(u), (long long)json_integer_value(code),
                     json_is_string(m) ? json_string_value(m) : "(none)");
        omni_mcp_call_finish(c,
                             json_integer_value(code) == -32602
                                 ? OMNI_E_BAD_REQUEST
                                 : OMNI_E_UPSTREAM,
                             msg, NULL);
        break;
    }
    case OMNI_MCP_TIMEOUT:
        snprintf(msg, sizeof msg, "mcp server '%s' did not answer in time",
                 name_of(u));
        omni_mcp_call_finish(c, OMNI_E_TIMEOUT, msg, NULL);
        break;
    case OMNI_MCP_DOWN:
        snprintf(msg, sizeof msg,
                 "mcp server '%s' went away during the "
                 "call: %s",
                 name_of(u), u->why);
        omni_mcp_call_finish(c, OMNI_E_UNAVAILABLE, msg, NULL);
        break;
    }
}

static void send_call(struct omni_mcp_up *u, struct omni_mcp_call *c)
{
    json_t *params =
        json_pack("{s:s,s:O}", "name", c->tool, "arguments", c->args);
    c->p = omni_mcp_up_request(u, "tools/call", params, 0, call_done, c);
}

int omni_mcp_up_call(struct omni_mcp_up *u, struct omni_mcp_call *c)
{
    switch (u->state) {
    case OMNI_MCP_S_READY: send_call(u, c); return 0;
    case OMNI_MCP_S_PROBING:
    case OMNI_MCP_S_INIT:
        /* Coming up: wait for it (the call's own timer still runs). */
        c->queued = true;
        c->qnext = NULL;
        *u->qtail = c;
        u->qtail = &c->qnext;
        return 0;
    case OMNI_MCP_S_DOWN:
    case OMNI_MCP_S_STOPPED: break;
    }
    finish_unavailable(c);
    return 1;
}

void omni_mcp_up_uncall(struct omni_mcp_up *u, struct omni_mcp_call *c,
                        const char *reason)
{
    if (c->queued) {
        struct omni_mcp_call **pp = &u->queue;
        while (*pp && *pp != c)
            pp = &(*pp)->qnext;
        if (*pp)
            *pp = c->qnext;
        u->qtail = &u->queue;
        while (*u->qtail)
            u->qtail = &(*u->qtail)->qnext;
        c->queued = false;
    }
    if (c->p) {
        omni_mcp_up_drop(u, c->p, reason);
        c->p = NULL;
    }
}

/* Take the queue, leaving it empty. */
static struct omni_mcp_call *take_queue(struct omni_mcp_up *u)
{
    struct omni_mcp_call *q = u->queue;
    u->queue = NULL;
    u->qtail = &u->queue;
    return q;
}

/* ---- failure and restart ---- */

/* Answer everything in flight with DOWN and every queued call with
 * UNAVAILABLE. */
static void fail_all(struct omni_mcp_up *u)
{
    struct omni_mcp_reply r = {.outcome = OMNI_MCP_DOWN, .why = u->why};
    struct omni_mcp_pending *p;
    u->held = NULL;
    while ((p = omni_mcp_ptab_pop(&u->ptab))) {
        p->held = false;
        p->hnext = NULL;
        if (p->timer) {
            event_free(p->timer);
            p->timer = NULL;
        }
        p->fn(p, &r);
        pending_free(p);
    }
    struct omni_mcp_call *c = take_queue(u), *next;
    for (; c; c = next) {
        next = c->qnext;
        c->queued = false;
        finish_unavailable(c);
    }
    u->listen = NULL;
    u->listing = u->relist = false;
    json_decref(omni_mcp_pager_take(&u->pager));
}

void omni_mcp_up_fail(struct omni_mcp_up *u, const char *fmt, ...)
{
    if (u->failing || u->state == OMNI_MCP_S_STOPPED)
        return;
    struct omni_buf why = OMNI_BUF_INIT;
    va_list ap;
    va_start(ap, fmt);
    omni_buf_vaddf(&why, fmt, ap);
    va_end(ap);
    snprintf(u->why, sizeof u->why, "%s", why.data);
    omni_buf_release(&why);
    omni_error("mcp server '%s' failed: %s", name_of(u), u->why);
    u->failing = true;
    u->state = OMNI_MCP_S_DOWN;
    fail_all(u);
    /* The transport may be inside its own callback: close it later. */
    event_active(u->fail_ev, 0, 0);
}

static void on_fail_ev(evutil_socket_t fd, short what, void *arg)
{
    struct omni_mcp_up *u = arg;
    struct omni_mcp_hub *h = u->hub;
    (void)fd;
    (void)what;
    u->ops->close(u);
    if (h->stopping || u->state == OMNI_MCP_S_STOPPED)
        return;
    /* A server that ran a while before dying starts over from the
     * shortest delay; one that keeps dying waits longer each time. */
    if (u->up_since && omni_now_ms() - u->up_since > 10000)
        u->backoff_ms = h->restart_min_ms;
    int64_t d = u->backoff_ms;
    u->backoff_ms = d * 2 > h->restart_max_ms ? h->restart_max_ms : d * 2;
    if (u->backoff_ms < h->restart_min_ms)
        u->backoff_ms = h->restart_min_ms;
    u->restarts++;
    omni_info("mcp server '%s' restarts in %lld ms", name_of(u), (long long)d);
    struct timeval tv = {d / 1000, (d % 1000) * 1000};
    evtimer_add(u->restart_ev, &tv);
}

static void on_restart(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    omni_mcp_up_start(arg);
}

/* ---- handshake ---- */

static void become_ready(struct omni_mcp_up *u)
{
    u->state = OMNI_MCP_S_READY;
    u->why[0] = '\0';
    omni_info("mcp server '%s' ready (%s era, version %s)", name_of(u),
              u->era == OMNI_MCP_ERA_MODERN ? "stateless" : "handshake",
              u->version);
    u->ops->ready(u);
    /* Requests that lost their HTTP session go again, once. */
    struct omni_mcp_pending *p = u->held, *next;
    u->held = NULL;
    for (; p; p = next) {
        next = p->hnext;
        p->held = false;
        p->hnext = NULL;
        u->ops->send(u, p->msg, p);
    }
    struct omni_mcp_call *c = take_queue(u), *cn;
    for (; c; c = cn) {
        cn = c->qnext;
        c->queued = false;
        send_call(u, c);
    }
    list_tools(u);
}

static void set_caps(struct omni_mcp_up *u, const json_t *caps)
{
    json_decref(u->caps);
    u->caps = json_is_object(caps) ? json_deep_copy(caps) : json_object();
}

static void init_done(struct omni_mcp_pending *p,
                      const struct omni_mcp_reply *r)
{
    struct omni_mcp_up *u = p->up;
    const json_t *m;
    switch (r->outcome) {
    case OMNI_MCP_OK: {
        const char *v =
            json_string_value(json_object_get(r->result, "protocolVersion"));
        const char *ok = omni_mcp_version_accept(v);
        if (!ok) {
            omni_mcp_up_fail(u,
                             "server answered protocol version '%.32s', "
                             "which omni does not speak",
                             v ? v : "(none)");
            return;
        }
        snprintf(u->version, sizeof u->version, "%s", ok);
        set_caps(u, json_object_get(r->result, "capabilities"));
        json_t *n = omni_mcp_notification("notifications/initialized", NULL);
        u->ops->send(u, n, NULL);
        json_decref(n);
        become_ready(u);
        break;
    }
    case OMNI_MCP_RPC_ERROR:
        m = json_object_get(r->error, "message");
        omni_mcp_up_fail(u, "initialize refused: %.200s",
                         json_is_string(m) ? json_string_value(m) : "?");
        break;
    case OMNI_MCP_HTTP_ERROR:
        omni_mcp_up_fail(u, "initialize answered HTTP %d", r->http_status);
        break;
    case OMNI_MCP_TIMEOUT:
        omni_mcp_up_fail(u, "no answer to initialize within %lld ms",
                         (long long)u->hub->init_timeout_ms);
        break;
    case OMNI_MCP_DOWN: break;
    }
}

static void send_initialize(struct omni_mcp_up *u)
{
    u->state = OMNI_MCP_S_INIT;
    json_t *params = json_pack("{s:s,s:{},s:{s:s,s:s}}", "protocolVersion",
                               OMNI_MCP_V_LATEST, "capabilities", "clientInfo",
                               "name", "omni", "version", "1.0");
    omni_mcp_up_request(u, "initialize", params, u->hub->init_timeout_ms,
                        init_done, NULL);
}

static void listen_done(struct omni_mcp_pending *p,
                        const struct omni_mcp_reply *r)
{
    struct omni_mcp_up *u = p->up;
    if (u->listen == p)
        u->listen = NULL;
    if (r->outcome != OMNI_MCP_DOWN)
        omni_debug("mcp server '%s': subscriptions/listen ended", name_of(u));
}

/* The stateless era's channel for list_changed. */
static void open_listen(struct omni_mcp_up *u)
{
    const json_t *tools = json_object_get(u->caps, "tools");
    if (u->listen || !json_is_true(json_object_get(tools, "listChanged")))
        return;
    json_t *params =
        json_pack("{s:{s:b}}", "notifications", "toolsListChanged", 1);
    u->listen = omni_mcp_up_request(u, "subscriptions/listen", params, 0,
                                    listen_done, NULL);
}

static void probe_done(struct omni_mcp_pending *p,
                       const struct omni_mcp_reply *r)
{
    struct omni_mcp_up *u = p->up;
    if (r->outcome == OMNI_MCP_DOWN)
        return;
    enum omni_mcp_era was = u->era;
    enum omni_mcp_era era = omni_mcp_era_decide(u->cfg->tp, r);
    if (era == OMNI_MCP_ERA_MODERN && r->outcome == OMNI_MCP_OK) {
        u->era = OMNI_MCP_ERA_MODERN;
        snprintf(u->version, sizeof u->version, "%s", OMNI_MCP_V_MODERN);
        set_caps(u, json_object_get(r->result, "capabilities"));
        become_ready(u);
        open_listen(u);
        return;
    }
    if (era == OMNI_MCP_ERA_MODERN || was == OMNI_MCP_ERA_MODERN) {
        const json_t *m = json_object_get(r->error, "message");
        omni_mcp_up_fail(u, "server/discover failed: %.200s",
                         json_is_string(m) ? json_string_value(m)
                                           : (r->why ? r->why : "error"));
        return;
    }
    u->era = OMNI_MCP_ERA_LEGACY;
    omni_info("mcp server '%s' speaks the handshake era (server/discover: "
              "%s)",
              name_of(u),
              r->outcome == OMNI_MCP_TIMEOUT ? "no answer" : "refused");
    send_initialize(u);
}

void omni_mcp_up_start(struct omni_mcp_up *u)
{
    char why[OMNI_ERR_LEN];
    if (u->state == OMNI_MCP_S_STOPPED)
        return;
    u->failing = false;
    u->up_since = 0;
    if (u->ops->open(u, why) < 0) {
        omni_mcp_up_fail(u, "%s", why);
        return;
    }
    u->up_since = omni_now_ms();
    if (u->era == OMNI_MCP_ERA_LEGACY) {
        send_initialize(u);
        return;
    }
    /* Probe (or, for a known modern server, discover its capabilities):
     * the modern envelope goes on because the era is not legacy. */
    enum omni_mcp_era keep = u->era;
    u->era = OMNI_MCP_ERA_MODERN;
    u->state = OMNI_MCP_S_PROBING;
    omni_mcp_up_request(u, "server/discover", NULL, u->hub->init_timeout_ms,
                        probe_done, NULL);
    u->era = keep;
}

/* ---- tools ---- */

static void list_done(struct omni_mcp_pending *p,
                      const struct omni_mcp_reply *r)
{
    struct omni_mcp_up *u = p->up;
    char err[OMNI_ERR_LEN];
    if (r->outcome == OMNI_MCP_DOWN)
        return;
    int rc = -1;
    if (r->outcome == OMNI_MCP_OK) {
        rc = omni_mcp_pager_add(&u->pager, r->result, err);
    } else {
        const json_t *m = json_object_get(r->error, "message");
        snprintf(err, sizeof err, "tools/list failed: %.200s",
                 json_is_string(m) ? json_string_value(m)
                                   : (r->why ? r->why : "error"));
    }
    if (rc == 1) {
        json_t *params = json_pack("{s:s}", "cursor", u->pager.cursor);
        omni_mcp_up_request(u, "tools/list", params, u->hub->call_timeout_ms,
                            list_done, NULL);
        return;
    }
    json_t *items = omni_mcp_pager_take(&u->pager);
    u->listing = false;
    if (rc == 0) {
        json_decref(u->tools);
        u->tools = items;
        omni_info("mcp server '%s' lists %zu tools", name_of(u),
                  json_array_size(items));
        omni_mcp_hub_rebuild(u->hub);
    } else {
        json_decref(items);
        omni_error("mcp server '%s': %s; keeping its previous tools",
                   name_of(u), err);
    }
    if (u->relist) {
        u->relist = false;
        list_tools(u);
    }
}

static void list_tools(struct omni_mcp_up *u)
{
    if (u->state != OMNI_MCP_S_READY)
        return;
    if (u->listing) {
        u->relist = true;
        return;
    }
    if (!json_object_get(u->caps, "tools")) {
        json_decref(u->tools);
        u->tools = json_array();
        omni_mcp_hub_rebuild(u->hub);
        return;
    }
    u->listing = true;
    omni_mcp_up_request(u, "tools/list", NULL, u->hub->call_timeout_ms,
                        list_done, NULL);
}

/* ---- input ---- */

static void on_notification(struct omni_mcp_up *u, const char *method,
                            const json_t *params)
{
    if (strcmp(method, "notifications/tools/list_changed") == 0) {
        omni_info("mcp server '%s': tool list changed", name_of(u));
        list_tools(u);
    } else if (strcmp(method, "notifications/message") == 0) {
        const json_t *lvl = json_object_get(params, "level");
        char *data = omni_mcp_dump(json_object_get(params, "data"), NULL);
        omni_info("mcp server '%s' log %s: %.300s", name_of(u),
                  json_is_string(lvl) ? json_string_value(lvl) : "info", data);
        omni_free(data);
    } else {
        omni_debug("mcp server '%s': %s", name_of(u), method);
    }
}

/* A request from the server: we answer ping and decline the rest (we
 * declare no client capabilities). */
static void on_request(struct omni_mcp_up *u, const json_t *m)
{
    const char *method = json_string_value(json_object_get(m, "method"));
    const json_t *id = json_object_get(m, "id");
    json_t *reply;
    if (strcmp(method, "ping") == 0)
        reply = omni_mcp_result(id, json_object());
    else
        reply = omni_mcp_error(id, -32601, "Method not found: %.64s", method);
    u->ops->send(u, reply, NULL);
    json_decref(reply);
}

static void on_response(struct omni_mcp_up *u, const json_t *m)
{
    const json_t *id = json_object_get(m, "id");
    const json_t *err = json_object_get(m, "error");
    int64_t v;
    struct omni_mcp_pending *p = NULL;
    if (omni_mcp_id_value(id, &v))
        p = omni_mcp_ptab_find(&u->ptab, v);
    if (!p) {
        if (json_is_null(id))
            omni_warn("mcp server '%s' reports an error without id: %.200s",
                      name_of(u),
                      json_string_value(json_object_get(err, "message")));
        else
            omni_debug("mcp server '%s': reply to no request in flight",
                       name_of(u));
        return;
    }
    struct omni_mcp_reply r = {0};
    if (err) {
        r.outcome = OMNI_MCP_RPC_ERROR;
        r.error = (json_t *)err;
    } else {
        r.outcome = OMNI_MCP_OK;
        r.result = json_object_get(m, "result");
    }
    omni_mcp_up_answer(u, p, &r);
}

void omni_mcp_up_input(struct omni_mcp_up *u, const char *text, size_t n)
{
    if (u->failing || u->state == OMNI_MCP_S_DOWN ||
        u->state == OMNI_MCP_S_STOPPED)
        return;
    json_error_t je;
    json_t *m = json_loadb(text, n, 0, &je);
    if (!m) {
        omni_warn("mcp server '%s' sent malformed JSON (%s), dropped: "
                  "%.*s",
                  name_of(u), je.text, (int)(n < 120 ? n : 120), text);
        return;
    }
    switch (omni_mcp_classify(m)) {
    case OMNI_MCP_RESPONSE: on_response(u, m); break;
    case OMNI_MCP_NOTIFICATION:
        on_notification(u, json_string_value(json_object_get(m, "method")),
                        json_object_get(m, "params"));
        break;
    case OMNI_MCP_REQUEST: on_request(u, m); break;
    case OMNI_MCP_INVALID:
        omni_warn("mcp server '%s' sent a message that is not JSON-RPC 2.0, "
                  "dropped: %.*s",
                  name_of(u), (int)(n < 120 ? n : 120), text);
        break;
    }
    json_decref(m);
}

/* ---- HTTP sessions ---- */

static void reinit(struct omni_mcp_up *u)
{
    if (u->state != OMNI_MCP_S_READY)
        return;
    omni_info("mcp server '%s': session gone, initializing again", name_of(u));
    u->ops->reset(u);
    send_initialize(u);
}

void omni_mcp_up_http_failed(struct omni_mcp_up *u, struct omni_mcp_pending *p,
                             int status, json_t *error, bool session_gone)
{
    bool handshake =
        u->state == OMNI_MCP_S_PROBING || u->state == OMNI_MCP_S_INIT;
    if (session_gone && !p->retried && u->era == OMNI_MCP_ERA_LEGACY &&
        (!handshake || p->fn == call_done)) {
        /* 404 (or 400 from servers that say so) for our session: a new
         * initialize, then this request once more. */
        p->retried = true;
        p->xfer = NULL;
        p->held = true;
        p->hnext = u->held;
        u->held = p;
        reinit(u);
        return;
    }
    struct omni_mcp_reply r = {.outcome = OMNI_MCP_HTTP_ERROR,
                               .error = error,
                               .http_status = status,
                               .why = "HTTP error"};
    omni_mcp_up_answer(u, p, &r);
}

void omni_mcp_up_session_gone(struct omni_mcp_up *u)
{
    if (u->era == OMNI_MCP_ERA_LEGACY)
        reinit(u);
}

/* ---- life ---- */

struct omni_mcp_up *omni_mcp_up_new(struct omni_mcp_hub *hub, size_t index,
                                    const struct omni_mcp_server_cfg *cfg)
{
    struct omni_mcp_up *u = omni_calloc(1, sizeof *u);
    u->hub = hub;
    u->index = index;
    u->cfg = cfg;
    u->ops =
        cfg->tp == OMNI_MCP_STDIO ? &omni_mcp_stdio_ops : &omni_mcp_http_ops;
    u->state = OMNI_MCP_S_DOWN;
    u->caps = json_object();
    u->qtail = &u->queue;
    u->backoff_ms = hub->restart_min_ms;
    omni_mcp_ptab_init(&u->ptab);
    omni_mcp_pager_init(&u->pager, "tools");
    u->restart_ev = evtimer_new(hub->base, on_restart, u);
    u->fail_ev = event_new(hub->base, -1, 0, on_fail_ev, u);
    return u;
}

void omni_mcp_up_free(struct omni_mcp_up *u)
{
    if (!u)
        return;
    snprintf(u->why, sizeof u->why, "omni is shutting down");
    u->state = OMNI_MCP_S_STOPPED;
    fail_all(u);
    u->ops->close(u);
    event_free(u->restart_ev);
    event_free(u->fail_ev);
    json_decref(u->caps);
    json_decref(u->tools);
    omni_mcp_pager_release(&u->pager);
    omni_mcp_ptab_release(&u->ptab);
    omni_free(u);
}
