// Connects the official MCP TypeScript SDK client to the mcp-manager gateway,
// lists its tools, calls one tool of each backend and prints, as one JSON
// object, what it saw.
//
// Usage:
//   node ts_client.mjs stdio MCP_MANAGER_EXE CONFIG_FILE
//   node ts_client.mjs http URL
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
const { StdioClientTransport } = await import(sdk("stdio.js"));
const { StreamableHTTPClientTransport } = await import(sdk("streamableHttp.js"));

const [mode, ...rest] = process.argv.slice(2);
let transport;
if (mode === "stdio") {
  const [exe, config] = rest;
  transport = new StdioClientTransport({
    command: exe,
    args: ["serve", "--stdio", "--config", config],
    env: { ...process.env },
    stderr: "inherit",
  });
} else if (mode === "http") {
  transport = new StreamableHTTPClientTransport(new URL(rest[0]));
} else {
  console.error(`unknown mode ${mode}`);
  process.exit(2);
}

const texts = (result) => ({
  isError: result.isError ?? false,
  text: result.content.filter((c) => c.type === "text").map((c) => c.text),
});

const client = new Client({ name: "ts-gateway-test", version: "1.0.0" });
await client.connect(transport);
const report = {
  server: client.getServerVersion()?.name,
  sessionId: mode === "http" ? transport.sessionId ?? null : null,
};
const tools = [];
let cursor;
do {
  const page = await client.listTools(cursor ? { cursor } : {});
  tools.push(...page.tools.map((t) => t.name));
  cursor = page.nextCursor;
} while (cursor);
report.tools = tools.sort();
report.ev = texts(await client.callTool({ name: "ev__echo", arguments: { message: "hi from ts" } }));
report.py = texts(await client.callTool({ name: "py__add", arguments: { a: 20, b: 22 } }));
report.rs = texts(await client.callTool({ name: "rs__test_simple_text", arguments: {} }));
await client.close();
console.log(JSON.stringify(report));
process.exit(0);
