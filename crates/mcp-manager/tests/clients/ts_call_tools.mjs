// Connects the official MCP TypeScript SDK client to `mcp-manager serve`
// over Streamable HTTP, lists the tools, calls each tool named on the
// command line with its JSON arguments, and prints, as one JSON object,
// what it saw.
//
// Usage: node ts_call_tools.mjs URL [TOOL ARGS_JSON]...
//
// MCP_PEER_NODE_MODULES must name the node_modules folder that holds
// @modelcontextprotocol/sdk.

import path from "node:path";
import { pathToFileURL } from "node:url";

const modules = process.env.MCP_PEER_NODE_MODULES;
if (!modules) {
  console.error("MCP_PEER_NODE_MODULES is not set");
  process.exit(2);
}
const sdk = (file) =>
  pathToFileURL(
    path.join(modules, "@modelcontextprotocol", "sdk", "dist", "esm", "client", file),
  ).href;

const { Client } = await import(sdk("index.js"));
const { StreamableHTTPClientTransport } = await import(sdk("streamableHttp.js"));

const [url, ...calls] = process.argv.slice(2);
const client = new Client({ name: "ts-call-tools", version: "1.0.0" });
await client.connect(new StreamableHTTPClientTransport(new URL(url)));
const report = { calls: {} };
const tools = [];
let cursor;
do {
  const page = await client.listTools(cursor ? { cursor } : {});
  tools.push(...page.tools.map((t) => t.name));
  cursor = page.nextCursor;
} while (cursor);
report.tools = tools.sort();
for (let i = 0; i + 1 < calls.length; i += 2) {
  const result = await client.callTool({ name: calls[i], arguments: JSON.parse(calls[i + 1]) });
  report.calls[calls[i]] = {
    isError: result.isError ?? false,
    text: result.content.filter((c) => c.type === "text").map((c) => c.text),
  };
}
await client.close();
console.log(JSON.stringify(report));
process.exit(0);
