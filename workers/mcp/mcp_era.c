/*
 * mcp_era - which protocol revision to speak with a peer.
 *
 * Two eras exist.  The handshake era (initialize, sessions) has the
 * revisions 2025-11-25, 2025-06-18 and 2025-03-26, which differ little
 * on the wire for what we use; we offer the newest and accept what the
 * server answers among these.  The stateless era (2026-07-28) has no
 * initialize: each request carries a _meta envelope, and a client finds
 * out which era a server speaks by probing with server/discover.  The
 * decision rules of the spec's "Versioning" section live here, apart
 * from any I/O, so they can be tested on their own.
 */
#include <string.h>

#include "mcp.h"

static const char *const legacy[] = {"2025-11-25", "2025-06-18", "2025-03-26"};
#define NLEGACY (sizeof legacy / sizeof *legacy)

bool omni_mcp_version_known(const char *v)
{
    for (size_t i = 0; v && i < NLEGACY; i++)
        if (strcmp(v, legacy[i]) == 0)
            return true;
    return false;
}

const char *omni_mcp_version_accept(const char *answered)
{
    for (size_t i = 0; answered && i < NLEGACY; i++)
        if (strcmp(answered, legacy[i]) == 0)
            return legacy[i];
    return NULL;
}

/* The spec: answer the client's version if we support it, else our
 * latest, and let the client decide whether to go on. */
const char *omni_mcp_version_negotiate(const char *requested)
{
    const char *v = omni_mcp_version_accept(requested);
    return v ? v : OMNI_MCP_V_LATEST;
}

/* A JSON-RPC error only a stateless-era server sends: unsupported
 * version (listing the modern revision), missing capability, header
 * mismatch. */
static bool modern_error(const json_t *err)
{
    const json_t *code = json_object_get(err, "code");
    if (!json_is_integer(code))
        return false;
    json_int_t c = json_integer_value(code);
    if (c == -32021 || c == -32020)
        return true;
    if (c != -32022)
        return false;
    const json_t *sup =
        json_object_get(json_object_get(err, "data"), "supported");
    size_t i;
    json_t *v;
    json_array_foreach(sup, i, v)
    {
        if (json_is_string(v) &&
            strcmp(json_string_value(v), OMNI_MCP_V_MODERN) == 0)
            return true;
    }
    return false;
}

/* A DiscoverResult that lists the modern revision (or lists nothing,
 * since answering server/discover at all is a modern trait). */
static bool modern_result(const json_t *res)
{
    const json_t *sup = json_object_get(res, "supportedVersions");
    if (!json_is_object(res))
        return false;
    if (!json_is_array(sup))
        return true;
    size_t i;
    json_t *v;
    json_array_foreach(sup, i, v)
    {
        if (json_is_string(v) &&
            strcmp(json_string_value(v), OMNI_MCP_V_MODERN) == 0)
            return true;
    }
    return false;
}

enum omni_mcp_era omni_mcp_era_decide(enum omni_mcp_tp tp,
                                      const struct omni_mcp_reply *r)
{
    switch (r->outcome) {
    case OMNI_MCP_OK:
        return modern_result(r->result) ? OMNI_MCP_ERA_MODERN
                                        : OMNI_MCP_ERA_LEGACY;
    case OMNI_MCP_RPC_ERROR:
        return modern_error(r->error) ? OMNI_MCP_ERA_MODERN
                                      : OMNI_MCP_ERA_LEGACY;
    case OMNI_MCP_HTTP_ERROR:
        /* Over HTTP a modern server rejects with 400 and a modern error
         * body; a legacy one says 400/404/405 with anything else. */
        if (tp == OMNI_MCP_HTTP && r->http_status == 400 && r->error &&
            modern_error(r->error))
            return OMNI_MCP_ERA_MODERN;
        return OMNI_MCP_ERA_LEGACY;
    case OMNI_MCP_TIMEOUT: return OMNI_MCP_ERA_LEGACY;
    case OMNI_MCP_DOWN: return OMNI_MCP_ERA_UNKNOWN;
    }
    return OMNI_MCP_ERA_UNKNOWN;
}

json_t *omni_mcp_modern_meta(void)
{
    return json_pack(
        "{s:s,s:{s:s,s:s},s:{}}", "io.modelcontextprotocol/protocolVersion",
        OMNI_MCP_V_MODERN, "io.modelcontextprotocol/clientInfo", "name", "omni",
        "version", "1.0", "io.modelcontextprotocol/clientCapabilities");
}
