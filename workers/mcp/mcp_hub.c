/*
 * mcp_hub - every configured MCP server, the merged catalog, and calls.
 *
 * Owns the upstream connections (one struct omni_mcp_up each, in the
 * config's sorted order), the curl multi they share, and the catalog
 * rebuilt whenever a server's tool list changes.  A call is routed by
 * its namespaced name to its server and ends exactly once: a result, or
 * NOT_FOUND (no such tool), UNAVAILABLE (its server is down, named),
 * TIMEOUT (mcp.call_timeout_ms or the request's deadline: the server is
 * told with notifications/cancelled), UPSTREAM (a protocol error).
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "mcp.h"
#include "omni_alloc.h"
#include "omni_cfg.h"
#include "omni_log.h"
#include "omni_time.h"

void omni_mcp_stdio_reap_all(void);

/* One server's share of a prompts/resources gather. */
struct omni_mcp_gather_part {
    struct omni_mcp_call *c;
    struct omni_mcp_up *up;
    struct omni_mcp_pending *p;
    struct omni_mcp_pager pager;
};

struct omni_mcp_hub *omni_mcp_hub_new(struct event_base *base,
                                      struct omni_mcp_config *cfg)
{
    struct omni_mcp_hub *h = omni_calloc(1, sizeof *h);
    h->base = base;
    h->cfg = *cfg;
    memset(cfg, 0, sizeof *cfg);
    h->call_timeout_ms = omni_cfg_int("mcp.call_timeout_ms");
    h->init_timeout_ms = omni_cfg_int("mcp.init_timeout_ms");
    h->restart_min_ms = omni_cfg_int("mcp.restart_min_ms");
    h->restart_max_ms = omni_cfg_int("mcp.restart_max_ms");
    h->max_line = (size_t)omni_cfg_int("mcp.max_line");
    /* A child that dies while we write to it must not kill us. */
    signal(SIGPIPE, SIG_IGN);
    h->curl = omni_mcp_curl_new(base);
    for (size_t i = 0; i < h->cfg.nerrors; i++)
        omni_error("%s", h->cfg.errors[i]);
    h->nups = h->cfg.n;
    h->ups = omni_calloc(h->nups ? h->nups : 1, sizeof(struct omni_mcp_up *));
    for (size_t i = 0; i < h->nups; i++)
        h->ups[i] = omni_mcp_up_new(h, i, &h->cfg.servers[i]);
    for (size_t i = 0; i < h->nups; i++)
        omni_mcp_up_start(h->ups[i]);
    return h;
}

void omni_mcp_hub_free(struct omni_mcp_hub *h)
{
    if (!h)
        return;
    h->stopping = true;
    for (size_t i = 0; i < h->nups; i++)
        omni_mcp_up_free(h->ups[i]);
    omni_free(h->ups);
    omni_mcp_stdio_reap_all();
    omni_mcp_curl_free(h->curl);
    omni_mcp_catalog_release(&h->cat);
    omni_mcp_config_release(&h->cfg);
    omni_free(h);
}

static void log_refusal(void *arg, const char *msg)
{
    (void)arg;
    omni_error("mcp catalog: %s", msg);
}

void omni_mcp_hub_rebuild(struct omni_mcp_hub *h)
{
    struct omni_mcp_source *src =
        omni_calloc(h->nups ? h->nups : 1, sizeof *src);
    for (size_t i = 0; i < h->nups; i++) {
        src[i].server = h->ups[i]->cfg->name;
        src[i].tools = h->ups[i]->tools;
    }
    struct omni_mcp_catalog cat;
    omni_mcp_catalog_build(&cat, src, h->nups, log_refusal, h);
    omni_free(src);
    bool same = omni_mcp_catalog_same(&cat, &h->cat);
    omni_mcp_catalog_release(&h->cat);
    h->cat = cat;
    if (same)
        return;
    omni_info("mcp catalog: %zu tools", h->cat.n);
    if (h->changed)
        h->changed(h->changed_arg);
}

struct omni_mcp_up *omni_mcp_hub_server(struct omni_mcp_hub *h,
                                        const char *name, size_t n)
{
    for (size_t i = 0; i < h->nups; i++)
        if (strlen(h->ups[i]->cfg->name) == n &&
            memcmp(h->ups[i]->cfg->name, name, n) == 0)
            return h->ups[i];
    return NULL;
}

/* ---- calls ---- */

static void call_free(struct omni_mcp_call *c)
{
    if (c->timer)
        event_free(c->timer);
    omni_free(c->tool);
    json_decref(c->args);
    json_decref(c->merged);
    omni_free(c->parts);
    omni_free(c);
}

void omni_mcp_call_finish(struct omni_mcp_call *c, enum omni_err err,
                          const char *msg, json_t *result)
{
    c->done(c->arg, err, msg, result);
    call_free(c);
}

static void on_call_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct omni_mcp_call *c = arg;
    char msg[OMNI_ERR_LEN];
    (void)fd;
    (void)what;
    bool sent = c->p != NULL;
    omni_mcp_up_uncall(c->up, c, "timeout");
    if (sent)
        snprintf(msg, sizeof msg,
                 "tool '%s' of mcp server '%s' did not "
                 "answer within %lld ms",
                 c->tool, c->up->cfg->name, (long long)c->timeout_ms);
    else
        snprintf(msg, sizeof msg,
                 "mcp server '%s' did not become ready "
                 "within %lld ms",
                 c->up->cfg->name, (long long)c->timeout_ms);
    omni_warn("%s", msg);
    omni_mcp_call_finish(c, OMNI_E_TIMEOUT, msg, NULL);
}

struct omni_mcp_call *omni_mcp_hub_call(struct omni_mcp_hub *h,
                                        const char *name, json_t *arguments,
                                        int64_t deadline, omni_mcp_done_fn done,
                                        void *arg)
{
    char msg[OMNI_ERR_LEN + 128];
    const struct omni_mcp_tool *t = omni_mcp_catalog_find(&h->cat, name);
    if (arguments && !json_is_object(arguments)) {
        done(arg, OMNI_E_BAD_REQUEST, "'arguments' must be a JSON object",
             NULL);
        return NULL;
    }
    if (!t) {
        /* A known server that is not up yet says so; otherwise the tool
         * simply does not exist. */
        const char *sep = strstr(name, OMNI_MCP_SEP);
        struct omni_mcp_up *u =
            sep ? omni_mcp_hub_server(h, name, (size_t)(sep - name)) : NULL;
        if (u && u->state != OMNI_MCP_S_READY) {
            snprintf(msg, sizeof msg, "mcp server '%s' is unavailable: %s",
                     u->cfg->name, u->why[0] ? u->why : "starting");
            done(arg, OMNI_E_UNAVAILABLE, msg, NULL);
        } else {
            snprintf(msg, sizeof msg, "no mcp tool '%.200s'", name);
            done(arg, OMNI_E_NOT_FOUND, msg, NULL);
        }
        return NULL;
    }
    int64_t timeout = h->call_timeout_ms;
    if (deadline) {
        int64_t left = deadline - omni_now_ms();
        if (left < timeout)
            timeout = left;
        if (timeout <= 0) {
            done(arg, OMNI_E_TIMEOUT, "the request's deadline has passed",
                 NULL);
            return NULL;
        }
    }
    struct omni_mcp_call *c = omni_calloc(1, sizeof *c);
    c->hub = h;
    c->up = h->ups[t->server];
    c->tool = omni_strdup(t->tool);
    c->args = arguments ? json_incref(arguments) : json_object();
    c->done = done;
    c->arg = arg;
    c->timeout_ms = timeout;
    c->timer = evtimer_new(h->base, on_call_timeout, c);
    struct timeval tv = {timeout / 1000, (timeout % 1000) * 1000};
    evtimer_add(c->timer, &tv);
    if (omni_mcp_up_call(c->up, c))
        return NULL;
    return c;
}

void omni_mcp_call_cancel(struct omni_mcp_call *c)
{
    if (!c)
        return;
    if (c->what) {
        for (unsigned i = 0; i < c->hub->nups; i++) {
            struct omni_mcp_gather_part *g = &c->parts[i];
            if (g->p)
                omni_mcp_up_drop(g->up, g->p, "cancelled");
            g->p = NULL;
            omni_mcp_pager_release(&g->pager);
        }
    } else {
        omni_mcp_up_uncall(c->up, c, "cancelled");
    }
    call_free(c);
}

/* ---- prompts and resources ---- */

static void gather_end(struct omni_mcp_call *c)
{
    for (size_t i = 0; i < c->hub->nups; i++)
        omni_mcp_pager_release(&c->parts[i].pager);
    json_t *r = json_pack("{s:O}", c->what, c->merged);
    omni_mcp_call_finish(c, OMNI_OK, NULL, r);
    json_decref(r);
}

static void part_done(struct omni_mcp_pending *p,
                      const struct omni_mcp_reply *r)
{
    struct omni_mcp_gather_part *g = p->arg;
    struct omni_mcp_call *c = g->c;
    struct omni_mcp_up *u = g->up;
    char err[OMNI_ERR_LEN] = "no answer";
    char method[32];
    g->p = NULL;
    int rc = -1;
    if (r->outcome == OMNI_MCP_OK)
        rc = omni_mcp_pager_add(&g->pager, r->result, err);
    snprintf(method, sizeof method, "%s/list", c->what);
    if (rc == 1) {
        g->p = omni_mcp_up_request(
            u, method, json_pack("{s:s}", "cursor", g->pager.cursor),
            c->hub->call_timeout_ms, part_done, g);
        return;
    }
    json_t *items = omni_mcp_pager_take(&g->pager);
    if (rc == 0) {
        size_t i;
        json_t *it;
        bool prompts = strcmp(c->what, "prompts") == 0;
        json_array_foreach(items, i, it)
        {
            if (!json_is_object(it))
                continue;
            json_t *o = json_copy(it);
            const char *nm = json_string_value(json_object_get(o, "name"));
            if (prompts && nm) {
                struct omni_buf b = OMNI_BUF_INIT;
                omni_buf_addf(&b, "%s%s%s", u->cfg->name, OMNI_MCP_SEP, nm);
                json_object_set_new(o, "name", json_string(b.data));
                omni_buf_release(&b);
            }
            json_object_set_new(o, "server", json_string(u->cfg->name));
            json_array_append_new(c->merged, o);
        }
    } else if (r->outcome != OMNI_MCP_DOWN) {
        omni_warn("mcp server '%s': %s failed: %s", u->cfg->name, method, err);
    }
    json_decref(items);
    if (--c->waiting == 0)
        gather_end(c);
}

struct omni_mcp_call *omni_mcp_hub_gather(struct omni_mcp_hub *h,
                                          const char *what,
                                          omni_mcp_done_fn done, void *arg)
{
    struct omni_mcp_call *c = omni_calloc(1, sizeof *c);
    char method[32];
    c->hub = h;
    c->what = what;
    c->done = done;
    c->arg = arg;
    c->merged = json_array();
    c->parts = omni_calloc(h->nups ? h->nups : 1, sizeof *c->parts);
    snprintf(method, sizeof method, "%s/list", what);
    for (size_t i = 0; i < h->nups; i++) {
        struct omni_mcp_gather_part *g = &c->parts[i];
        g->c = c;
        g->up = h->ups[i];
        omni_mcp_pager_init(&g->pager, what);
        if (g->up->state != OMNI_MCP_S_READY ||
            !json_object_get(g->up->caps, what))
            continue;
        c->waiting++;
    }
    if (c->waiting == 0) {
        gather_end(c);
        return NULL;
    }
    /* Count first, then send: no reply can come back before we return
     * (every transport answers from the loop), so waiting stays right. */
    for (size_t i = 0; i < h->nups; i++) {
        struct omni_mcp_gather_part *g = &c->parts[i];
        if (g->up->state != OMNI_MCP_S_READY ||
            !json_object_get(g->up->caps, what))
            continue;
        g->p = omni_mcp_up_request(g->up, method, NULL, h->call_timeout_ms,
                                   part_done, g);
    }
    return c;
}

void omni_mcp_hub_stats(struct omni_mcp_hub *h, struct omni_buf *out)
{
    omni_buf_adds(out, ",\"mcp\":{\"tools\":");
    omni_buf_addf(out, "%zu,\"servers\":{", h->cat.n);
    for (size_t i = 0; i < h->nups; i++) {
        struct omni_mcp_up *u = h->ups[i];
        if (i)
            omni_buf_addch(out, ',');
        omni_buf_add_json_str(out, u->cfg->name, strlen(u->cfg->name));
        omni_buf_addf(out, ":{\"state\":\"%s\",\"era\":\"%s\",\"version\":",
                      omni_mcp_state_name(u->state),
                      u->era == OMNI_MCP_ERA_MODERN   ? "stateless"
                      : u->era == OMNI_MCP_ERA_LEGACY ? "handshake"
                                                      : "unknown");
        omni_buf_add_json_str(out, u->version, strlen(u->version));
        omni_buf_addf(out,
                      ",\"tools\":%zu,\"restarts\":%u,\"in_flight\":%zu"
                      ",\"pid\":%ld}",
                      json_array_size(u->tools), u->restarts, u->ptab.count,
                      u->ops->pid(u));
    }
    omni_buf_adds(out, "}}");
}
