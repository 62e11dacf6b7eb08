/*
 * omni-mcp - the MCP worker: a client of the configured MCP servers
 * (OMNI_MCP_CONFIG) and, through the broker, Omni's own MCP server.
 * Everything is in libmcp (workers/mcp/mcp_*.c); this only runs it.
 */
#include "mcp.h"
#include "omni_worker.h"

int main(int argc, char **argv)
{
    return omni_worker_main(argc, argv, &omni_mcp_worker_def);
}
