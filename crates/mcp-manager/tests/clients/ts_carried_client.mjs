// The official MCP TypeScript SDK client, in a 2025 session through a load
// balancer in front of replicas: it sets a log level and subscribes to a
// resource, checks that both work, prints one JSON line, waits for a line
// on stdin (meanwhile the replica that has its session is killed), then
// checks again that log messages and resource updates come, without
// setting or subscribing again; prints a second JSON line and exits.
//
// Usage: node ts_carried_client.mjs URL
//
// MCP_PEER_NODE_MODULES must name the node_modules folder that holds
// @modelcontextprotocol/sdk.

import path from "node:path";
import readline from "node:readline";
import { pathToFileURL } from "node:url";

const modules = process.env.MCP_PEER_NODE_MODULES;
if (!modules) {
  console.error("MCP_PEER_NODE_MODULES is not set");
  process.exit(2);
}
const sdk = (file) =>
  pathToFileURL(path.join(modules, "@modelcontextprotocol", "sdk", "dist", "esm", file)).href;

const { Client } = await import(sdk("client/index.js"));
const { StreamableHTTPClientTransport } = await import(sdk("client/streamableHttp.js"));
const { LoggingMessageNotificationSchema, ResourceUpdatedNotificationSchema } = await import(
  sdk("types.js")
);

const WATCHED = "test://watched-resource";
const logs = [];
const updates = [];
const errors = [];

const transport = new StreamableHTTPClientTransport(new URL(process.argv[2]), {
  // The session's event stream, broken with its replica, is opened again
  // soon, on whichever replica the balancer picks.
  reconnectionOptions: {
    initialReconnectionDelay: 100,
    maxReconnectionDelay: 500,
    reconnectionDelayGrowFactor: 1.5,
    maxRetries: 100,
  },
});
transport.onerror = (error) => errors.push(String(error));
const client = new Client({ name: "ts-carried", version: "1.0.0" });
client.setNotificationHandler(LoggingMessageNotificationSchema, (note) => logs.push(note.params));
client.setNotificationHandler(ResourceUpdatedNotificationSchema, (note) =>
  updates.push(note.params.uri),
);

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Calls `tool` until it answers (a call that was on its way to the
// replica killed fails: it is sent again), then waits up to a second for
// `check`; tries for 20 s in all.
async function until(tool, check) {
  const deadline = Date.now() + 20_000;
  let calls = 0;
  while (Date.now() < deadline) {
    calls += 1;
    try {
      await client.callTool({ name: tool, arguments: {} });
    } catch (error) {
      errors.push(`${tool}: ${error}`);
      await sleep(200);
      continue;
    }
    for (let n = 0; n < 10; n += 1) {
      if (check()) return calls;
      await sleep(100);
    }
  }
  return null;
}

const infoLogs = () => logs.filter((log) => log.level === "info").length;

await client.connect(transport);
const first = transport.sessionId;
await client.setLoggingLevel("info");
const leveled = transport.sessionId;
await client.subscribeResource({ uri: WATCHED });
const subscribed = transport.sessionId;
const before = {
  first,
  leveled,
  subscribed,
  logged: await until("ev__test_logging_tool", () => infoLogs() >= 3),
  updated: await until("ev__test_trigger_resource_update", () => updates.length >= 1),
};
console.log(JSON.stringify(before));

const stdin = readline.createInterface({ input: process.stdin });
// A test that gave up closes stdin: the client ends too.
const go = await new Promise((resolve) => {
  stdin.once("line", () => resolve(true));
  stdin.once("close", () => resolve(false));
});
if (!go) process.exit(1);
stdin.close();

const [logsBefore, updatesBefore] = [infoLogs(), updates.length];
const after = {
  session: transport.sessionId,
  logged: await until("ev__test_logging_tool", () => infoLogs() >= logsBefore + 3),
  updated: await until("ev__test_trigger_resource_update", () => updates.length > updatesBefore),
  updates: updates.slice(updatesBefore),
  errors,
};
await client.close();
console.log(JSON.stringify(after));
process.exit(0);
