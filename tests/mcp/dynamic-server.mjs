// dynamic-server.mjs - a stdio MCP server built with the official SDK
// whose tool list changes on demand: calling add_tool {name} registers a
// new tool, and the SDK sends notifications/tools/list_changed.
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import { z } from "zod";

const server = new McpServer({ name: "dynamic", version: "1.0.0" });

server.registerTool(
  "add_tool",
  {
    description: "Register a new tool with the given name",
    inputSchema: { name: z.string() },
  },
  async ({ name }) => {
    server.registerTool(
      name,
      { description: `added at run time: ${name}` },
      async () => ({ content: [{ type: "text", text: `I am ${name}` }] }),
    );
    return { content: [{ type: "text", text: `added ${name}` }] };
  },
);

await server.connect(new StdioServerTransport());
