/*
 * mcp_catalog - the tools of every server under one namespace.
 *
 * Each tool is exposed as "server__tool" (the MCP spec asks aggregators
 * to disambiguate; the server name is the config's key, never the
 * server's self-reported serverInfo.name).  The list is sorted by that
 * name, so the order is stable whatever order servers answer in.  Two
 * entries claiming one name are a collision: the first (by server name,
 * then by position in its list) keeps it, the other is left out and
 * reported, and nothing else is affected.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mcp.h"
#include "omni_alloc.h"

static int by_name(const void *a, const void *b)
{
    const struct omni_mcp_tool *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c)
        return c;
    /* Equal names: keep source order so the first claim sorts first. */
    return x->server < y->server ? -1 : x->server > y->server;
}

static void tool_release(struct omni_mcp_tool *t)
{
    omni_free(t->name);
    omni_free(t->tool);
    json_decref(t->def);
}

void omni_mcp_catalog_build(struct omni_mcp_catalog *cat,
                            const struct omni_mcp_source *src, size_t n,
                            omni_mcp_refuse_cb refuse, void *arg)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += json_array_size(src[i].tools);
    cat->tools = omni_calloc(total ? total : 1, sizeof *cat->tools);
    cat->n = 0;
    char msg[OMNI_ERR_LEN + 256];
    for (size_t i = 0; i < n; i++) {
        size_t j;
        json_t *t;
        json_array_foreach(src[i].tools, j, t)
        {
            const json_t *nm = json_object_get(t, "name");
            if (!json_is_string(nm) || !*json_string_value(nm)) {
                snprintf(msg, sizeof msg,
                         "server '%s': tool #%zu has no "
                         "name; left out",
                         src[i].server, j);
                if (refuse)
                    refuse(arg, msg);
                continue;
            }
            struct omni_mcp_tool *x = &cat->tools[cat->n++];
            size_t len = strlen(src[i].server) + strlen(OMNI_MCP_SEP) +
                         strlen(json_string_value(nm)) + 1;
            x->name = omni_malloc(len);
            snprintf(x->name, len, "%s%s%s", src[i].server, OMNI_MCP_SEP,
                     json_string_value(nm));
            x->sname = src[i].server;
            x->tool = omni_strdup(json_string_value(nm));
            x->def = json_incref(t);
            /* Position within the server breaks ties after the server. */
            x->server = i * 1000000 + j;
        }
    }
    /* qsort is not stable; the tie-break above makes it behave so. */
    qsort(cat->tools, cat->n, sizeof *cat->tools, by_name);
    size_t out = 0;
    for (size_t k = 0; k < cat->n; k++) {
        struct omni_mcp_tool *x = &cat->tools[k];
        if (out > 0 && strcmp(cat->tools[out - 1].name, x->name) == 0) {
            const struct omni_mcp_tool *w = &cat->tools[out - 1];
            snprintf(msg, sizeof msg,
                     "tool name collision: '%s' from "
                     "server '%s' (tool '%s') clashes with server '%s' "
                     "(tool '%s'); the second is left out",
                     x->name, x->sname, x->tool, w->sname, w->tool);
            if (refuse)
                refuse(arg, msg);
            tool_release(x);
            continue;
        }
        cat->tools[out++] = *x;
    }
    cat->n = out;
    for (size_t k = 0; k < cat->n; k++)
        cat->tools[k].server /= 1000000;
}

void omni_mcp_catalog_release(struct omni_mcp_catalog *cat)
{
    for (size_t i = 0; i < cat->n; i++)
        tool_release(&cat->tools[i]);
    omni_free(cat->tools);
    cat->tools = NULL;
    cat->n = 0;
}

size_t omni_mcp_catalog_lower(const struct omni_mcp_catalog *cat,
                              const char *name)
{
    size_t lo = 0, hi = cat->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(cat->tools[mid].name, name) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

const struct omni_mcp_tool *
omni_mcp_catalog_find(const struct omni_mcp_catalog *cat, const char *name)
{
    size_t i = omni_mcp_catalog_lower(cat, name);
    if (i < cat->n && strcmp(cat->tools[i].name, name) == 0)
        return &cat->tools[i];
    return NULL;
}

/* True if s is a string in array a (NULL array: everything passes). */
static bool listed(const json_t *a, const char *s)
{
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v)
    {
        if (json_is_string(v) && strcmp(json_string_value(v), s) == 0)
            return true;
    }
    return false;
}

static bool strings_only(const json_t *a)
{
    size_t i;
    json_t *v;
    if (!json_is_array(a))
        return false;
    json_array_foreach(a, i, v)
    {
        if (!json_is_string(v))
            return false;
    }
    return true;
}

json_t *omni_mcp_catalog_json(const struct omni_mcp_catalog *cat,
                              const json_t *filter, char err[OMNI_ERR_LEN])
{
    const json_t *servers = NULL, *allowed = NULL;
    if (filter && !json_is_null(filter)) {
        if (!json_is_object(filter)) {
            snprintf(err, OMNI_ERR_LEN, "body must be a JSON object");
            return NULL;
        }
        servers = json_object_get(filter, "servers");
        allowed = json_object_get(filter, "allowed_tools");
        if (servers && !json_is_null(servers) && !strings_only(servers)) {
            snprintf(err, OMNI_ERR_LEN,
                     "'servers' must be an array of strings");
            return NULL;
        }
        if (allowed && !json_is_null(allowed) && !strings_only(allowed)) {
            snprintf(err, OMNI_ERR_LEN,
                     "'allowed_tools' must be an array of strings");
            return NULL;
        }
        if (json_is_null(servers))
            servers = NULL;
        if (json_is_null(allowed))
            allowed = NULL;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < cat->n; i++) {
        const struct omni_mcp_tool *t = &cat->tools[i];
        if (servers && !listed(servers, t->sname))
            continue;
        if (allowed && !listed(allowed, t->tool) && !listed(allowed, t->name))
            continue;
        const json_t *desc = json_object_get(t->def, "description");
        json_t *schema = json_object_get(t->def, "inputSchema");
        schema = json_is_object(schema) ? json_incref(schema)
                                        : json_pack("{s:s}", "type", "object");
        json_array_append_new(
            arr, json_pack("{s:s,s:s,s:o,s:s}", "name", t->name, "description",
                           json_is_string(desc) ? json_string_value(desc) : "",
                           "inputSchema", schema, "server", t->sname));
    }
    return json_pack("{s:o}", "tools", arr);
}

json_t *omni_mcp_catalog_tool(const struct omni_mcp_tool *t)
{
    json_t *o = json_copy(t->def);
    json_object_set_new(o, "name", json_string(t->name));
    if (!json_is_object(json_object_get(o, "inputSchema")))
        json_object_set_new(o, "inputSchema",
                            json_pack("{s:s}", "type", "object"));
    return o;
}

bool omni_mcp_catalog_same(const struct omni_mcp_catalog *a,
                           const struct omni_mcp_catalog *b)
{
    if (a->n != b->n)
        return false;
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->tools[i].name, b->tools[i].name) ||
            !json_equal(a->tools[i].def, b->tools[i].def))
            return false;
    return true;
}
