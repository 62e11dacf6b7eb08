/*
 * mcp_pager - follow nextCursor through a paged MCP list.
 *
 * tools/list, prompts/list and resources/list answer one page at a time;
 * a missing or empty nextCursor ends the list.  A cursor seen before or
 * more than OMNI_MCP_MAX_PAGES pages mean a broken server: we stop with
 * an error rather than loop forever.
 */
#include <stdio.h>
#include <string.h>

#include "mcp.h"
#include "omni_alloc.h"

void omni_mcp_pager_init(struct omni_mcp_pager *g, const char *key)
{
    g->items = json_array();
    g->key = key;
    g->cursor = NULL;
    g->seen = json_object();
    g->pages = 0;
}

void omni_mcp_pager_release(struct omni_mcp_pager *g)
{
    json_decref(g->items);
    json_decref(g->seen);
    omni_free(g->cursor);
    g->items = g->seen = NULL;
    g->cursor = NULL;
}

/* Append one page's items; decide whether to go on. */
int omni_mcp_pager_add(struct omni_mcp_pager *g, const json_t *result,
                       char err[OMNI_ERR_LEN])
{
    const json_t *items = json_object_get(result, g->key);
    if (!json_is_object(result) || !json_is_array(items)) {
        snprintf(err, OMNI_ERR_LEN, "malformed %s page: no '%s' array", g->key,
                 g->key);
        return -1;
    }
    json_array_extend(g->items, (json_t *)items);
    g->pages++;
    omni_free(g->cursor);
    g->cursor = NULL;
    const json_t *next = json_object_get(result, "nextCursor");
    if (!next || json_is_null(next) ||
        (json_is_string(next) && !*json_string_value(next)))
        return 0;
    if (!json_is_string(next)) {
        snprintf(err, OMNI_ERR_LEN,
                 "malformed %s page: nextCursor is not "
                 "a string",
                 g->key);
        return -1;
    }
    const char *c = json_string_value(next);
    if (json_object_get(g->seen, c)) {
        snprintf(err, OMNI_ERR_LEN,
                 "%s paging loops: cursor '%.64s' "
                 "came twice",
                 g->key, c);
        return -1;
    }
    if (g->pages >= OMNI_MCP_MAX_PAGES) {
        snprintf(err, OMNI_ERR_LEN, "%s list has more than %d pages", g->key,
                 OMNI_MCP_MAX_PAGES);
        return -1;
    }
    json_object_set_new(g->seen, c, json_true());
    g->cursor = omni_strdup(c);
    return 1;
}

/* The finished list; the pager starts over empty. */
json_t *omni_mcp_pager_take(struct omni_mcp_pager *g)
{
    json_t *items = g->items;
    g->items = json_array();
    json_object_clear(g->seen);
    g->pages = 0;
    omni_free(g->cursor);
    g->cursor = NULL;
    return items;
}
