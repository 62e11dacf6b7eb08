/*
 * mcp_ops - the mcp service's broker operations (PROTOCOL.md section 5).
 *
 *   tools      {"servers"?,"allowed_tools"?} -> {"tools":[...]}
 *   call       {"name","arguments"} -> CallToolResult
 *   prompts    {} -> {"prompts":[...]}     resources  {} -> {"resources":[...]}
 *   rpc        {"session","message","protocol_version"?,"delete"?}
 *              -> {"session","status","message"}  (Omni as MCP server)
 *   listen     {"session"}, streamed: each chunk one JSON-RPC notification
 *
 * Each request in flight carries a small context (what it waits on) so
 * that a cancel from the broker can withdraw it; every path answers the
 * request exactly once and frees the context there.
 */
#include <stdio.h>
#include <string.h>

#include "mcp.h"
#include "omni_alloc.h"
#include "omni_cfg.h"
#include "omni_log.h"
#include "omni_worker.h"

enum kind { K_CALL, K_GATHER, K_RPC, K_LISTEN };

struct ctx {
    enum kind kind;
    struct omni_wreq *r;
    struct omni_mcp_call *call;
    struct omni_mcp_rpc *rpc;
    struct omni_mcp_listener *listener;
};

static struct omni_mcp_hub *hub;
static struct omni_mcp_front *front;

static struct ctx *ctx_new(struct omni_wreq *r, enum kind kind)
{
    struct ctx *c = omni_calloc(1, sizeof *c);
    c->r = r;
    c->kind = kind;
    omni_wreq_set_data(r, c);
    return c;
}

static void final_json(struct omni_wreq *r, const json_t *v)
{
    size_t n;
    char *s = omni_mcp_dump(v, &n);
    omni_wreq_final(r, s, n);
    omni_free(s);
}

/* ---- call, prompts, resources ---- */

/* MCP's CallToolResult as the contract gives it: content, isError and,
 * when the server sent it, structuredContent. */
static json_t *call_result(const json_t *res)
{
    json_t *content = json_object_get(res, "content");
    json_t *out = json_pack(
        "{s:O,s:b}", "content", json_is_array(content) ? content : json_array(),
        "isError", json_is_true(json_object_get(res, "isError")));
    if (!json_is_array(content))
        json_decref(json_object_get(out, "content"));
    json_t *sc = json_object_get(res, "structuredContent");
    if (sc)
        json_object_set(out, "structuredContent", sc);
    return out;
}

static void on_done(void *arg, enum omni_err err, const char *msg,
                    json_t *result)
{
    struct ctx *c = arg;
    struct omni_wreq *r = c->r;
    enum kind kind = c->kind;
    omni_free(c);
    if (err != OMNI_OK) {
        omni_wreq_error(r, err, 0, 0, "%s", msg);
        return;
    }
    if (kind == K_CALL) {
        json_t *out = call_result(result);
        final_json(r, out);
        json_decref(out);
    } else {
        final_json(r, result);
    }
}

static void op_call(struct omni_wreq *r, const json_t *body)
{
    const json_t *name = json_object_get(body, "name");
    json_t *args = json_object_get(body, "arguments");
    if (!json_is_string(name)) {
        omni_wreq_error(r, OMNI_E_BAD_REQUEST, 0, 0, "'name' must be a string");
        return;
    }
    if (json_is_null(args))
        args = NULL;
    struct ctx *c = ctx_new(r, K_CALL);
    /* on_done may run, answering r and freeing c, before this returns. */
    struct omni_mcp_call *call = omni_mcp_hub_call(
        hub, json_string_value(name), args, omni_wreq_deadline(r), on_done, c);
    if (call)
        c->call = call;
}

static void op_gather(struct omni_wreq *r, const char *what)
{
    struct ctx *c = ctx_new(r, K_GATHER);
    struct omni_mcp_call *call = omni_mcp_hub_gather(hub, what, on_done, c);
    if (call)
        c->call = call;
}

/* ---- rpc and listen ---- */

static void on_rpc(void *arg, json_t *answer)
{
    struct ctx *c = arg;
    struct omni_wreq *r = c->r;
    omni_free(c);
    final_json(r, answer);
}

static void op_rpc(struct omni_wreq *r, const json_t *body)
{
    const json_t *s = json_object_get(body, "session");
    if (s && !json_is_null(s) && !json_is_string(s)) {
        omni_wreq_error(r, OMNI_E_BAD_REQUEST, 0, 0,
                        "'session' must be a string or null");
        return;
    }
    if (!json_object_get(body, "message") &&
        !json_is_true(json_object_get(body, "delete"))) {
        omni_wreq_error(r, OMNI_E_BAD_REQUEST, 0, 0, "'message' is missing");
        return;
    }
    struct ctx *c = ctx_new(r, K_RPC);
    struct omni_mcp_rpc *rpc =
        omni_mcp_front_rpc(front, body, omni_wreq_deadline(r), on_rpc, c);
    if (rpc)
        c->rpc = rpc;
}

static void on_push(void *arg, const char *json, size_t n)
{
    struct ctx *c = arg;
    omni_wreq_partial(c->r, json, n);
}

static void on_end(void *arg)
{
    struct ctx *c = arg;
    struct omni_wreq *r = c->r;
    omni_free(c);
    omni_wreq_final(r, "{}", 2);
}

static void op_listen(struct omni_wreq *r, const json_t *body)
{
    char err[OMNI_ERR_LEN];
    const json_t *s = json_object_get(body, "session");
    if (!omni_wreq_stream(r)) {
        omni_wreq_error(r, OMNI_E_BAD_REQUEST, 0, 0,
                        "listen needs a streamed request");
        return;
    }
    if (!json_is_string(s)) {
        omni_wreq_error(r, OMNI_E_BAD_REQUEST, 0, 0,
                        "'session' must be a string");
        return;
    }
    struct ctx *c = ctx_new(r, K_LISTEN);
    c->listener = omni_mcp_front_listen(front, json_string_value(s), on_push,
                                        on_end, c, err);
    if (!c->listener) {
        omni_free(c);
        omni_wreq_set_data(r, NULL);
        omni_wreq_error(r, OMNI_E_NOT_FOUND, 0, 0, "%s", err);
    }
}

/* ---- the worker definition ---- */

static void request(struct omni_wreq *r)
{
    struct omni_str op = omni_wreq_op(r);
    struct omni_str b = omni_wreq_body(r);
    json_t *body = NULL;
    if (b.n > 0) {
        json_error_t je;
        body = json_loadb(b.p, b.n, 0, &je);
        if (!body) {
            omni_wreq_error(r, OMNI_E_BAD_REQUEST, 0, 0, "body is not JSON: %s",
                            je.text);
            return;
        }
    }
    if (body && !json_is_object(body)) {
        json_decref(body);
        omni_wreq_error(r, OMNI_E_BAD_REQUEST, 0, 0,
                        "body must be a JSON object");
        return;
    }
    if (omni_str_eq(op, "tools")) {
        char err[OMNI_ERR_LEN];
        json_t *out = omni_mcp_catalog_json(&hub->cat, body, err);
        if (out) {
            final_json(r, out);
            json_decref(out);
        } else {
            omni_wreq_error(r, OMNI_E_BAD_REQUEST, 0, 0, "%s", err);
        }
    } else if (omni_str_eq(op, "call")) {
        op_call(r, body);
    } else if (omni_str_eq(op, "prompts")) {
        op_gather(r, "prompts");
    } else if (omni_str_eq(op, "resources")) {
        op_gather(r, "resources");
    } else if (omni_str_eq(op, "rpc")) {
        op_rpc(r, body);
    } else if (omni_str_eq(op, "listen")) {
        op_listen(r, body);
    } else {
        omni_wreq_error(r, OMNI_E_UNSUPPORTED, 0, 0,
                        "mcp has no operation '%.*s'", (int)op.n, op.p);
    }
    json_decref(body);
}

static void cancel(struct omni_wreq *r)
{
    struct ctx *c = omni_wreq_data(r);
    if (!c)
        return;
    switch (c->kind) {
    case K_CALL:
    case K_GATHER: omni_mcp_call_cancel(c->call); break;
    case K_RPC: omni_mcp_front_rpc_cancel(c->rpc); break;
    case K_LISTEN: omni_mcp_front_unlisten(c->listener); break;
    }
    omni_free(c);
    omni_wreq_set_data(r, NULL);
}

static int init(struct omni_worker *w)
{
    struct omni_mcp_config cfg;
    char err[OMNI_ERR_LEN];
    if (omni_mcp_config_load(omni_cfg_str("mcp_config"), &cfg, err) !=
        OMNI_OK) {
        omni_error("mcp_config: %s", err);
        return -1;
    }
    omni_info("mcp: %zu servers configured", cfg.n);
    hub = omni_mcp_hub_new(omni_worker_base(w), &cfg);
    front = omni_mcp_front_new(hub);
    return 0;
}

static void shutdown_cb(struct omni_worker *w)
{
    (void)w;
    if (front)
        omni_mcp_front_end_streams(front);
}

static void stats(struct omni_worker *w, struct omni_buf *out)
{
    (void)w;
    if (!hub)
        return;
    omni_mcp_hub_stats(hub, out);
    omni_buf_addf(out, ",\"mcp_sessions\":%zu", omni_mcp_front_sessions(front));
}

/* Free what init made while the loop still exists (the hub's and the
 * front's events are on it). */
static void fini(struct omni_worker *w)
{
    (void)w;
    omni_mcp_front_free(front);
    omni_mcp_hub_free(hub);
    front = NULL;
    hub = NULL;
}

const struct omni_worker_def omni_mcp_worker_def = {
    .service = "mcp",
    .capacity = 0,
    .init = init,
    .request = request,
    .cancel = cancel,
    .shutdown = shutdown_cb,
    .stats = stats,
    .fini = fini,
};
