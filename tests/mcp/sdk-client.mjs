// sdk-client.mjs - the official MCP SDK client against a Streamable HTTP
// endpoint (Omni's /mcp in the tests).
//
//   node sdk-client.mjs URL list                  all tools, every page
//   node sdk-client.mjs URL call NAME JSON        one tools/call
//   node sdk-client.mjs URL watch NAME JSON       call, then wait (10 s)
//                                                 for list_changed
// Prints one JSON document on stdout; exits 1 on any error.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { ToolListChangedNotificationSchema } from "@modelcontextprotocol/sdk/types.js";

const [url, cmd, name, args] = process.argv.slice(2);
const client = new Client({ name: "omni-test", version: "1.0.0" });
const transport = new StreamableHTTPClientTransport(new URL(url));

async function listAll() {
  const tools = [];
  let cursor;
  let pages = 0;
  do {
    const r = await client.listTools(cursor ? { cursor } : {});
    tools.push(...r.tools);
    cursor = r.nextCursor;
    pages++;
  } while (cursor && pages < 100);
  return { pages, tools };
}

try {
  await client.connect(transport);
  const info = {
    server: client.getServerVersion(),
    protocol: transport.protocolVersion,
    session: transport.sessionId,
  };
  if (cmd === "list") {
    console.log(JSON.stringify({ ...info, ...(await listAll()) }));
  } else if (cmd === "call") {
    const r = await client.callTool({ name, arguments: JSON.parse(args || "{}") });
    console.log(JSON.stringify({ ...info, result: r }));
  } else if (cmd === "watch") {
    const changed = new Promise((resolve) =>
      client.setNotificationHandler(ToolListChangedNotificationSchema, () =>
        resolve(true),
      ),
    );
    // Give the GET stream a moment to open before the change.
    await new Promise((r) => setTimeout(r, 500));
    const r = await client.callTool({ name, arguments: JSON.parse(args || "{}") });
    const timeout = new Promise((resolve) => setTimeout(() => resolve(false), 10000));
    const got = await Promise.race([changed, timeout]);
    const after = got ? await listAll() : null;
    console.log(JSON.stringify({ ...info, result: r, list_changed: got,
      tools_after: after ? after.tools.length : null }));
  } else {
    throw new Error(`unknown command ${cmd}`);
  }
  await transport.terminateSession().catch(() => {});
  await client.close();
  process.exit(0);
} catch (e) {
  console.error(`sdk-client: ${e?.message || e}`);
  process.exit(1);
}
