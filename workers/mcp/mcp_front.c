/*
 * mcp_front - Omni as an MCP server: the tools of every upstream behind
 * one endpoint (the HTTP front's /mcp, as the broker ops rpc/listen).
 *
 * Handshake era: initialize creates a session (a random id) and
 * negotiates the version; later requests name it (unknown -> HTTP 404,
 * missing -> 400); tools/list pages the merged catalog 50 at a time
 * (the cursor is the next tool's name, so paging survives a change);
 * tools/call goes to the upstream server; ping answers {}.  A listen
 * stream per session receives notifications/tools/list_changed when the
 * catalog changes.  Sessions idle for mcp.session_idle_ms (with no
 * stream and no call open) are dropped.  Stateless era: a request with
 * the _meta envelope and no session is served on its own
 * (server/discover, tools/list, tools/call).
 *
 * Sessions live in this worker's memory: with several mcp workers a
 * session only works on the worker that made it (see README).
 */
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "mcp.h"
#include "omni_alloc.h"
#include "omni_cfg.h"
#include "omni_log.h"
#include "omni_time.h"

#define PAGE 50

struct omni_mcp_session {
    char id[33];
    char version[16];
    bool initialized;
    int64_t last_ms;
    struct omni_mcp_listener *listeners;
    struct omni_mcp_rpc *calls;
    struct omni_mcp_session *next, *prev;
};

struct omni_mcp_listener {
    struct omni_mcp_session *s;
    omni_mcp_push_fn push;
    omni_mcp_end_fn end;
    void *arg;
    struct omni_mcp_listener *next, *prev;
};

struct omni_mcp_rpc {
    struct omni_mcp_front *f;
    struct omni_mcp_session *s; /* NULL: stateless */
    json_t *id;                 /* the JSON-RPC id */
    char *tool;
    struct omni_mcp_call *call;
    omni_mcp_rpc_fn fn;
    void *arg;
    struct omni_mcp_rpc *next, *prev;
};

struct omni_mcp_front {
    struct omni_mcp_hub *hub;
    struct omni_mcp_session *sessions;
    size_t nsessions;
    struct event *sweep;
    int64_t idle_ms;
    size_t max_sessions;
};

/* ---- answers ---- */

/* {"session":..,"status":..,"message":..}; message taken over. */
static void answer(omni_mcp_rpc_fn fn, void *arg, const char *session,
                   int status, json_t *message)
{
    json_t *a = json_pack("{s:s?,s:i,s:o}", "session", session, "status",
                          status, "message", message ? message : json_null());
    fn(arg, a);
    json_decref(a);
}

static json_t *server_info(void)
{
    return json_pack("{s:s,s:s,s:s}", "name", "omni", "title",
                     "Omni MCP gateway", "version", "1.0");
}

/* A result of the stateless era carries resultType and serverInfo. */
static json_t *modern_result(json_t *result)
{
    json_object_set_new(result, "resultType", json_string("complete"));
    json_object_set_new(result, "_meta",
                        json_pack("{s:o}", "io.modelcontextprotocol/serverInfo",
                                  server_info()));
    return result;
}

/* ---- sessions ---- */

static struct omni_mcp_session *find(struct omni_mcp_front *f, const char *id)
{
    for (struct omni_mcp_session *s = f->sessions; id && s; s = s->next)
        if (strcmp(s->id, id) == 0)
            return s;
    return NULL;
}

static void rpc_free(struct omni_mcp_rpc *r)
{
    if (r->s) {
        if (r->prev)
            r->prev->next = r->next;
        else
            r->s->calls = r->next;
        if (r->next)
            r->next->prev = r->prev;
    }
    json_decref(r->id);
    omni_free(r->tool);
    omni_free(r);
}

/* End the session: close its streams, end its calls. */
static void destroy(struct omni_mcp_front *f, struct omni_mcp_session *s)
{
    while (s->listeners) {
        struct omni_mcp_listener *l = s->listeners;
        s->listeners = l->next;
        l->end(l->arg);
        omni_free(l);
    }
    while (s->calls) {
        struct omni_mcp_rpc *r = s->calls;
        omni_mcp_call_cancel(r->call);
        answer(r->fn, r->arg, s->id, 404,
               omni_mcp_error(r->id, -32001, "Session ended"));
        rpc_free(r);
    }
    if (s->prev)
        s->prev->next = s->next;
    else
        f->sessions = s->next;
    if (s->next)
        s->next->prev = s->prev;
    f->nsessions--;
    omni_free(s);
}

static struct omni_mcp_session *create(struct omni_mcp_front *f,
                                       const char *version)
{
    unsigned char rnd[16];
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
        return NULL;
    struct omni_mcp_session *s = omni_calloc(1, sizeof *s);
    for (size_t i = 0; i < sizeof rnd; i++)
        snprintf(s->id + 2 * i, 3, "%02x", rnd[i]);
    snprintf(s->version, sizeof s->version, "%s", version);
    s->last_ms = omni_now_ms();
    s->next = f->sessions;
    if (f->sessions)
        f->sessions->prev = s;
    f->sessions = s;
    f->nsessions++;
    return s;
}

static void on_sweep(evutil_socket_t fd, short what, void *arg)
{
    struct omni_mcp_front *f = arg;
    int64_t now = omni_now_ms();
    (void)fd;
    (void)what;
    for (struct omni_mcp_session *s = f->sessions, *next; s; s = next) {
        next = s->next;
        if (!s->listeners && !s->calls && now - s->last_ms > f->idle_ms) {
            omni_debug("mcp session %.8s... expired", s->id);
            destroy(f, s);
        }
    }
}

/* ---- requests ---- */

static json_t *tools_page(struct omni_mcp_front *f, const json_t *params,
                          const json_t *id, bool modern)
{
    const struct omni_mcp_catalog *cat = &f->hub->cat;
    const json_t *cursor = json_object_get(params, "cursor");
    size_t start = 0;
    if (cursor && !json_is_null(cursor)) {
        if (!json_is_string(cursor))
            return omni_mcp_error(id, -32602, "Invalid cursor");
        start = omni_mcp_catalog_lower(cat, json_string_value(cursor));
    }
    json_t *tools = json_array();
    size_t i = start;
    for (; i < cat->n && i < start + PAGE; i++)
        json_array_append_new(tools, omni_mcp_catalog_tool(&cat->tools[i]));
    json_t *res = json_pack("{s:o}", "tools", tools);
    if (i < cat->n)
        json_object_set_new(res, "nextCursor", json_string(cat->tools[i].name));
    if (modern) {
        json_object_set_new(res, "ttlMs", json_integer(0));
        json_object_set_new(res, "cacheScope", json_string("private"));
        modern_result(res);
    }
    return omni_mcp_result(id, res);
}

static void call_done(void *arg, enum omni_err err, const char *msg,
                      json_t *result)
{
    struct omni_mcp_rpc *r = arg;
    json_t *reply;
    if (err == OMNI_OK) {
        json_t *res = json_deep_copy(result);
        json_object_del(res, "resultType");
        if (!r->s)
            modern_result(res);
        reply = omni_mcp_result(r->id, res);
    } else if (err == OMNI_E_NOT_FOUND) {
        reply = omni_mcp_error(r->id, -32602, "Unknown tool: %.200s", r->tool);
    } else if (err == OMNI_E_BAD_REQUEST) {
        reply = omni_mcp_error(r->id, -32602, "%s", msg);
    } else {
        /* Upstream trouble is the tool's failure, for the model to see. */
        char safe[OMNI_ERR_LEN];
        omni_redact_str(msg, safe, sizeof safe);
        json_t *res = json_pack("{s:[{s:s,s:s}],s:b}", "content", "type",
                                "text", "text", safe, "isError", 1);
        if (!r->s)
            modern_result(res);
        reply = omni_mcp_result(r->id, res);
    }
    r->call = NULL;
    answer(r->fn, r->arg, r->s ? r->s->id : NULL, 200, reply);
    rpc_free(r);
}

/* tools/call: returns the handle, or NULL once answered. */
static struct omni_mcp_rpc *tools_call(struct omni_mcp_front *f,
                                       struct omni_mcp_session *s,
                                       const json_t *id, const json_t *params,
                                       int64_t deadline, omni_mcp_rpc_fn fn,
                                       void *arg)
{
    const json_t *name = json_object_get(params, "name");
    json_t *args = json_object_get(params, "arguments");
    if (!json_is_string(name) || (args && !json_is_object(args))) {
        answer(fn, arg, s ? s->id : NULL, 200,
               omni_mcp_error(id, -32602,
                              "tools/call needs a string 'name' "
                              "and an object 'arguments'"));
        return NULL;
    }
    struct omni_mcp_rpc *r = omni_calloc(1, sizeof *r);
    r->f = f;
    r->s = s;
    r->id = json_deep_copy(id);
    r->tool = omni_strdup(json_string_value(name));
    r->fn = fn;
    r->arg = arg;
    if (s) {
        r->next = s->calls;
        if (s->calls)
            s->calls->prev = r;
        s->calls = r;
    }
    /* call_done may run (and free r) before this returns NULL. */
    struct omni_mcp_call *c =
        omni_mcp_hub_call(f->hub, r->tool, args, deadline, call_done, r);
    if (!c)
        return NULL;
    r->call = c;
    return r;
}

/* A stateless-era request (no session, _meta envelope). */
static struct omni_mcp_rpc *stateless(struct omni_mcp_front *f, const json_t *m,
                                      const char *version, int64_t deadline,
                                      omni_mcp_rpc_fn fn, void *arg)
{
    const char *method = json_string_value(json_object_get(m, "method"));
    const json_t *id = json_object_get(m, "id");
    const json_t *params = json_object_get(m, "params");
    if (!id) {
        answer(fn, arg, NULL, 202, NULL);
        return NULL;
    }
    if (strcmp(version, OMNI_MCP_V_MODERN)) {
        json_t *e = omni_mcp_error(id, -32022, "Unsupported protocol version");
        json_object_set_new(json_object_get(e, "error"), "data",
                            json_pack("{s:[s],s:s}", "supported",
                                      OMNI_MCP_V_MODERN, "requested", version));
        answer(fn, arg, NULL, 400, e);
        return NULL;
    }
    json_t *reply;
    if (strcmp(method, "server/discover") == 0) {
        json_t *res =
            json_pack("{s:[s,s,s,s],s:{s:{s:b}},s:i,s:s}", "supportedVersions",
                      OMNI_MCP_V_MODERN, "2025-11-25", "2025-06-18",
                      "2025-03-26", "capabilities", "tools", "listChanged", 1,
                      "ttlMs", 0, "cacheScope", "private");
        reply = omni_mcp_result(id, modern_result(res));
    } else if (strcmp(method, "tools/list") == 0) {
        reply = tools_page(f, params, id, true);
    } else if (strcmp(method, "tools/call") == 0) {
        return tools_call(f, NULL, id, params, deadline, fn, arg);
    } else {
        reply = omni_mcp_error(id, -32601, "Method not found: %.64s", method);
    }
    answer(fn, arg, NULL, 200, reply);
    return NULL;
}

static bool is_stateless(const json_t *m)
{
    const json_t *meta = json_object_get(json_object_get(m, "params"), "_meta");
    return json_is_string(
        json_object_get(meta, "io.modelcontextprotocol/protocolVersion"));
}

static const char *stateless_version(const json_t *m)
{
    const json_t *meta = json_object_get(json_object_get(m, "params"), "_meta");
    return json_string_value(
        json_object_get(meta, "io.modelcontextprotocol/protocolVersion"));
}

/* Cancel the tools/call whose JSON-RPC id is rid. */
static void cancel_call(struct omni_mcp_session *s, const json_t *rid)
{
    for (struct omni_mcp_rpc *r = s->calls; rid && r; r = r->next) {
        if (!json_equal(r->id, rid))
            continue;
        omni_mcp_call_cancel(r->call);
        answer(r->fn, r->arg, s->id, 200,
               omni_mcp_error(r->id, -32800, "Request cancelled"));
        rpc_free(r);
        return;
    }
}

struct omni_mcp_rpc *omni_mcp_front_rpc(struct omni_mcp_front *f,
                                        const json_t *body, int64_t deadline,
                                        omni_mcp_rpc_fn fn, void *arg)
{
    const json_t *sid = json_object_get(body, "session");
    const json_t *m = json_object_get(body, "message");
    const json_t *pv = json_object_get(body, "protocol_version");
    const char *session = json_is_string(sid) ? json_string_value(sid) : NULL;
    struct omni_mcp_session *s = find(f, session);
    if (json_is_true(json_object_get(body, "delete"))) {
        if (!s) {
            answer(fn, arg, session, 404,
                   omni_mcp_error(NULL, -32001, "Session not found"));
            return NULL;
        }
        omni_debug("mcp session %.8s... deleted", s->id);
        destroy(f, s);
        answer(fn, arg, session, 200, NULL);
        return NULL;
    }
    if (json_is_array(m)) {
        answer(fn, arg, session, 400,
               omni_mcp_error(NULL, -32600, "batching is not supported"));
        return NULL;
    }
    enum omni_mcp_kind kind = omni_mcp_classify(m);
    if (kind == OMNI_MCP_INVALID) {
        answer(fn, arg, session, 400,
               omni_mcp_error(NULL, -32600, "Invalid Request"));
        return NULL;
    }
    const char *method = json_string_value(json_object_get(m, "method"));
    const json_t *id = json_object_get(m, "id");
    const json_t *params = json_object_get(m, "params");
    if (!session && kind != OMNI_MCP_RESPONSE && is_stateless(m))
        return stateless(f, m, stateless_version(m), deadline, fn, arg);
    if (kind == OMNI_MCP_REQUEST && strcmp(method, "initialize") == 0) {
        const char *want =
            json_string_value(json_object_get(params, "protocolVersion"));
        if (f->nsessions >= f->max_sessions) {
            answer(fn, arg, NULL, 503,
                   omni_mcp_error(id, -32000, "too many sessions"));
            return NULL;
        }
        struct omni_mcp_session *ns =
            create(f, omni_mcp_version_negotiate(want));
        if (!ns) {
            answer(fn, arg, NULL, 500,
                   omni_mcp_error(id, -32603, "cannot make a session id"));
            return NULL;
        }
        json_t *res = json_pack(
            "{s:s,s:{s:{s:b}},s:o,s:s}", "protocolVersion", ns->version,
            "capabilities", "tools", "listChanged", 1, "serverInfo",
            server_info(), "instructions",
            "Tools of every MCP server Omni is configured with, named "
            "server__tool.");
        answer(fn, arg, ns->id, 200, omni_mcp_result(id, res));
        return NULL;
    }
    if (!session) {
        answer(fn, arg, NULL, 400,
               omni_mcp_error(id, -32000,
                              "Bad Request: Mcp-Session-Id "
                              "header is required"));
        return NULL;
    }
    if (!s) {
        answer(fn, arg, session, 404,
               omni_mcp_error(id, -32001, "Session not found"));
        return NULL;
    }
    s->last_ms = omni_now_ms();
    if (json_is_string(pv) && !omni_mcp_version_known(json_string_value(pv))) {
        answer(fn, arg, s->id, 400,
               omni_mcp_error(id, -32000,
                              "Bad Request: Unsupported protocol "
                              "version: %.32s",
                              json_string_value(pv)));
        return NULL;
    }
    if (kind == OMNI_MCP_RESPONSE) {
        answer(fn, arg, s->id, 202, NULL);
        return NULL;
    }
    if (kind == OMNI_MCP_NOTIFICATION) {
        if (strcmp(method, "notifications/initialized") == 0)
            s->initialized = true;
        else if (strcmp(method, "notifications/cancelled") == 0)
            cancel_call(s, json_object_get(params, "requestId"));
        answer(fn, arg, s->id, 202, NULL);
        return NULL;
    }
    json_t *reply;
    if (strcmp(method, "ping") == 0)
        reply = omni_mcp_result(id, json_object());
    else if (strcmp(method, "tools/list") == 0)
        reply = tools_page(f, params, id, false);
    else if (strcmp(method, "tools/call") == 0)
        return tools_call(f, s, id, params, deadline, fn, arg);
    else
        reply = omni_mcp_error(id, -32601, "Method not found: %.64s", method);
    answer(fn, arg, s->id, 200, reply);
    return NULL;
}

void omni_mcp_front_rpc_cancel(struct omni_mcp_rpc *r)
{
    if (!r)
        return;
    omni_mcp_call_cancel(r->call);
    rpc_free(r);
}

/* ---- listen streams ---- */

struct omni_mcp_listener *omni_mcp_front_listen(struct omni_mcp_front *f,
                                                const char *session,
                                                omni_mcp_push_fn push,
                                                omni_mcp_end_fn end, void *arg,
                                                char err[OMNI_ERR_LEN])
{
    struct omni_mcp_session *s = find(f, session);
    if (!s) {
        snprintf(err, OMNI_ERR_LEN, "no mcp session '%.40s'",
                 session ? session : "(null)");
        return NULL;
    }
    struct omni_mcp_listener *l = omni_calloc(1, sizeof *l);
    l->s = s;
    l->push = push;
    l->end = end;
    l->arg = arg;
    l->next = s->listeners;
    if (s->listeners)
        s->listeners->prev = l;
    s->listeners = l;
    s->last_ms = omni_now_ms();
    return l;
}

void omni_mcp_front_unlisten(struct omni_mcp_listener *l)
{
    if (!l)
        return;
    struct omni_mcp_session *s = l->s;
    if (l->prev)
        l->prev->next = l->next;
    else
        s->listeners = l->next;
    if (l->next)
        l->next->prev = l->prev;
    s->last_ms = omni_now_ms();
    omni_free(l);
}

void omni_mcp_front_changed(void *front)
{
    struct omni_mcp_front *f = front;
    static const char note[] =
        "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/tools/list_changed\"}";
    for (struct omni_mcp_session *s = f->sessions; s; s = s->next)
        for (struct omni_mcp_listener *l = s->listeners; l; l = l->next)
            l->push(l->arg, note, sizeof note - 1);
}

void omni_mcp_front_end_streams(struct omni_mcp_front *f)
{
    for (struct omni_mcp_session *s = f->sessions; s; s = s->next) {
        while (s->listeners) {
            struct omni_mcp_listener *l = s->listeners;
            s->listeners = l->next;
            l->end(l->arg);
            omni_free(l);
        }
    }
}

size_t omni_mcp_front_sessions(const struct omni_mcp_front *f)
{
    return f->nsessions;
}

/* ---- life ---- */

struct omni_mcp_front *omni_mcp_front_new(struct omni_mcp_hub *hub)
{
    struct omni_mcp_front *f = omni_calloc(1, sizeof *f);
    f->hub = hub;
    f->idle_ms = omni_cfg_int("mcp.session_idle_ms");
    f->max_sessions = (size_t)omni_cfg_int("mcp.max_sessions");
    f->sweep = event_new(hub->base, -1, EV_PERSIST, on_sweep, f);
    int64_t every = f->idle_ms / 4 < 1000 ? 1000 : f->idle_ms / 4;
    if (every > 60000)
        every = 60000;
    struct timeval tv = {every / 1000, (every % 1000) * 1000};
    evtimer_add(f->sweep, &tv);
    hub->changed = omni_mcp_front_changed;
    hub->changed_arg = f;
    return f;
}

void omni_mcp_front_free(struct omni_mcp_front *f)
{
    if (!f)
        return;
    while (f->sessions)
        destroy(f, f->sessions);
    f->hub->changed = NULL;
    event_free(f->sweep);
    omni_free(f);
}
