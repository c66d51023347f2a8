// Drives tasks (the 2025-11-25 form: a `task` member on `tools/call`,
// `tasks/get`, `tasks/result`, `tasks/list`, `tasks/cancel`) through
// `mcp-manager serve` with the official MCP TypeScript SDK client, from two
// sessions, and prints, as one JSON object, what each saw.
//
// Usage: node ts_tasks_client.mjs URL TOOL
//
// TOOL is a task-supporting tool taking `topic` (server-everything's
// simulate-research-query, as the gateway exposes it). MCP_PEER_NODE_MODULES
// must name the node_modules folder that holds @modelcontextprotocol/sdk.

import path from "node:path";
import { pathToFileURL } from "node:url";

const modules = process.env.MCP_PEER_NODE_MODULES;
if (!modules) {
  console.error("MCP_PEER_NODE_MODULES is not set");
  process.exit(2);
}
const sdk = (...file) =>
  pathToFileURL(path.join(modules, "@modelcontextprotocol", "sdk", "dist", "esm", ...file)).href;

const { Client } = await import(sdk("client", "index.js"));
const { StreamableHTTPClientTransport } = await import(sdk("client", "streamableHttp.js"));
const types = await import(sdk("types.js"));

const [url, tool] = process.argv.slice(2);

async function connect(name) {
  const client = new Client({ name, version: "1.0.0" });
  const notifications = [];
  client.fallbackNotificationHandler = async (notification) => {
    notifications.push(notification);
  };
  await client.connect(new StreamableHTTPClientTransport(new URL(url)));
  return { client, notifications };
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function start(client, topic) {
  const created = await client.request(
    {
      method: "tools/call",
      params: { name: tool, arguments: { topic }, task: { ttl: 60000 } },
    },
    types.CreateTaskResultSchema,
  );
  return created.task;
}

async function get(client, taskId) {
  return client.request({ method: "tasks/get", params: { taskId } }, types.GetTaskResultSchema);
}

async function settle(client, taskId) {
  const seen = [];
  const deadline = Date.now() + 30000;
  while (Date.now() < deadline) {
    const task = await get(client, taskId);
    if (seen[seen.length - 1] !== task.status) seen.push(task.status);
    if (["completed", "failed", "cancelled"].includes(task.status)) return seen;
    await sleep(200);
  }
  throw new Error(`task ${taskId} did not settle: ${seen}`);
}

const codeOf = async (promise) => {
  try {
    await promise;
    return null;
  } catch (error) {
    return error.code ?? String(error);
  }
};

const a = await connect("tasks-a");
const b = await connect("tasks-b");
const report = {};
report.capabilities = a.client.getServerCapabilities()?.tasks ?? null;

const task = await start(a.client, "rust gateways");
report.created = task;
report.statuses = await settle(a.client, task.taskId);
const result = await a.client.request(
  { method: "tasks/result", params: { taskId: task.taskId } },
  types.CallToolResultSchema,
);
report.resultText = result.content.filter((c) => c.type === "text").map((c) => c.text).join("\n");
report.relatedTask = result._meta?.["io.modelcontextprotocol/related-task"]?.taskId ?? null;
const listedA = await a.client.request({ method: "tasks/list", params: {} }, types.ListTasksResultSchema);
report.listedByA = listedA.tasks.map((t) => t.taskId);
const listedB = await b.client.request({ method: "tasks/list", params: {} }, types.ListTasksResultSchema);
report.listedByB = listedB.tasks.map((t) => t.taskId);
report.getByB = await codeOf(get(b.client, task.taskId));
report.cancelByB = await codeOf(
  b.client.request({ method: "tasks/cancel", params: { taskId: task.taskId } }, types.CancelTaskResultSchema),
);
report.unknown = await codeOf(get(a.client, "no-such-server/1"));

const doomed = await start(a.client, "to be cancelled");
const cancelled = await a.client.request(
  { method: "tasks/cancel", params: { taskId: doomed.taskId } },
  types.CancelTaskResultSchema,
);
report.cancelled = { same: cancelled.taskId === doomed.taskId, status: cancelled.status };
report.afterCancel = (await get(a.client, doomed.taskId)).status;

// Status notifications are optional; those that came name tasks as
// clients see them, and only this session's.
await sleep(300);
const statusOf = (n) => n.method === "notifications/tasks/status";
report.notifiedA = [...new Set(a.notifications.filter(statusOf).map((n) => n.params.taskId))];
report.notifiedB = b.notifications.filter(statusOf).length;

await a.client.close();
await b.client.close();
console.log(JSON.stringify(report));
process.exit(0);
