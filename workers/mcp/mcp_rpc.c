/*
 * mcp_rpc - JSON-RPC 2.0 message shapes and the table of requests in
 * flight to one server.
 *
 * We number our requests with integers from 1 and match replies by id
 * in any order.  The table is a small chained hash on the id that grows
 * as needed; it owns no entries (mcp_up does), only their links.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mcp.h"
#include "omni_alloc.h"

/* Classify a parsed message: request, notification, response, or not
 * JSON-RPC at all. */
enum omni_mcp_kind omni_mcp_classify(const json_t *m)
{
    if (!json_is_object(m))
        return OMNI_MCP_INVALID;
    const json_t *v = json_object_get(m, "jsonrpc");
    if (v && (!json_is_string(v) || strcmp(json_string_value(v), "2.0")))
        return OMNI_MCP_INVALID;
    const json_t *id = json_object_get(m, "id");
    const json_t *method = json_object_get(m, "method");
    bool id_ok = json_is_string(id) || json_is_integer(id);
    if (method) {
        if (!json_is_string(method))
            return OMNI_MCP_INVALID;
        if (!id)
            return OMNI_MCP_NOTIFICATION;
        return id_ok ? OMNI_MCP_REQUEST : OMNI_MCP_INVALID;
    }
    const json_t *res = json_object_get(m, "result");
    const json_t *err = json_object_get(m, "error");
    if (!res == !err)
        return OMNI_MCP_INVALID;
    if (err && !json_is_object(err))
        return OMNI_MCP_INVALID;
    /* An error about an unparseable request may carry a null id. */
    if (id_ok || (err && json_is_null(id)))
        return OMNI_MCP_RESPONSE;
    return OMNI_MCP_INVALID;
}

/* Compact serialization: jansson escapes control characters, so the
 * text never holds a raw newline. */
char *omni_mcp_dump(const json_t *m, size_t *n)
{
    char *s = json_dumps(m, JSON_COMPACT);
    if (!s) {
        s = omni_strdup("null");
    } else {
        char *copy = omni_strdup(s);
        free(s);
        s = copy;
    }
    if (n)
        *n = strlen(s);
    return s;
}

/* {"jsonrpc":"2.0","id":id,"method":method[,"params":params]};
 * params is taken over. */
json_t *omni_mcp_request(int64_t id, const char *method, json_t *params)
{
    json_t *m = json_pack("{s:s,s:I,s:s}", "jsonrpc", "2.0", "id",
                          (json_int_t)id, "method", method);
    if (params)
        json_object_set_new(m, "params", params);
    return m;
}

/* A notification; params taken over. */
json_t *omni_mcp_notification(const char *method, json_t *params)
{
    json_t *m = json_pack("{s:s,s:s}", "jsonrpc", "2.0", "method", method);
    if (params)
        json_object_set_new(m, "params", params);
    return m;
}

/* A result response to id (copied); result taken over. */
json_t *omni_mcp_result(const json_t *id, json_t *result)
{
    json_t *m = json_pack("{s:s}", "jsonrpc", "2.0");
    json_object_set_new(m, "id", id ? json_deep_copy(id) : json_null());
    json_object_set_new(m, "result", result);
    return m;
}

/* An error response to id (NULL: null id). */
json_t *omni_mcp_error(const json_t *id, int code, const char *fmt, ...)
{
    struct omni_buf msg = OMNI_BUF_INIT;
    va_list ap;
    va_start(ap, fmt);
    omni_buf_vaddf(&msg, fmt, ap);
    va_end(ap);
    json_t *m = json_pack("{s:s,s:{s:i,s:s}}", "jsonrpc", "2.0", "error",
                          "code", code, "message", msg.data);
    omni_buf_release(&msg);
    json_object_set_new(m, "id", id ? json_deep_copy(id) : json_null());
    return m;
}

/* Our ids are integers; tolerate a server that echoes them as strings. */
bool omni_mcp_id_value(const json_t *id, int64_t *out)
{
    if (json_is_integer(id)) {
        *out = (int64_t)json_integer_value(id);
        return true;
    }
    if (!json_is_string(id))
        return false;
    const char *s = json_string_value(id);
    char *end;
    if (!*s || *s == '-' || *s == '+' || *s == ' ')
        return false;
    long long v = strtoll(s, &end, 10);
    if (*end)
        return false;
    *out = v;
    return true;
}

static size_t slot_of(const struct omni_mcp_ptab *t, int64_t id)
{
    uint64_t h = (uint64_t)id * 0x9e3779b97f4a7c15ULL;
    return (size_t)(h >> 32) & (t->nslots - 1);
}

/* An empty table. */
void omni_mcp_ptab_init(struct omni_mcp_ptab *t)
{
    t->nslots = 16;
    t->slots = omni_calloc(t->nslots, sizeof(struct omni_mcp_pending *));
    t->count = 0;
    t->next_id = 1;
}

void omni_mcp_ptab_release(struct omni_mcp_ptab *t)
{
    omni_free(t->slots);
    t->slots = NULL;
    t->nslots = t->count = 0;
}

/* Double the slots when the load passes 1. */
static void grow(struct omni_mcp_ptab *t)
{
    struct omni_mcp_pending **old = t->slots;
    size_t n = t->nslots;
    t->nslots = n * 2;
    t->slots = omni_calloc(t->nslots, sizeof(struct omni_mcp_pending *));
    for (size_t i = 0; i < n; i++) {
        struct omni_mcp_pending *p = old[i], *next;
        for (; p; p = next) {
            next = p->next;
            size_t s = slot_of(t, p->id);
            p->next = t->slots[s];
            t->slots[s] = p;
        }
    }
    omni_free(old);
}

/* Number p and link it in. */
void omni_mcp_ptab_add(struct omni_mcp_ptab *t, struct omni_mcp_pending *p)
{
    if (t->count >= t->nslots)
        grow(t);
    p->id = t->next_id++;
    size_t s = slot_of(t, p->id);
    p->next = t->slots[s];
    t->slots[s] = p;
    t->count++;
}

struct omni_mcp_pending *omni_mcp_ptab_find(const struct omni_mcp_ptab *t,
                                            int64_t id)
{
    if (!t->nslots)
        return NULL;
    struct omni_mcp_pending *p = t->slots[slot_of(t, id)];
    while (p && p->id != id)
        p = p->next;
    return p;
}

void omni_mcp_ptab_remove(struct omni_mcp_ptab *t, struct omni_mcp_pending *p)
{
    if (!t->nslots)
        return;
    struct omni_mcp_pending **pp = &t->slots[slot_of(t, p->id)];
    while (*pp && *pp != p)
        pp = &(*pp)->next;
    if (*pp) {
        *pp = p->next;
        p->next = NULL;
        t->count--;
    }
}

struct omni_mcp_pending *omni_mcp_ptab_pop(struct omni_mcp_ptab *t)
{
    for (size_t i = 0; t->count && i < t->nslots; i++) {
        struct omni_mcp_pending *p = t->slots[i];
        if (p) {
            t->slots[i] = p->next;
            p->next = NULL;
            t->count--;
            return p;
        }
    }
    return NULL;
}
