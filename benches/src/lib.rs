//! Shared fixtures for the benchmarks of mcp-manager.
#![forbid(unsafe_code)]
#![allow(clippy::expect_used)]

use std::sync::Arc;

/// A figure of this process's `/proc/self/status` in KiB, by its label
/// (`VmRSS:`, the resident set; `VmHWM:`, its peak); 0 when unreadable.
#[must_use]
pub fn status_kib(label: &str) -> i64 {
    process_status_kib("self", label)
}

/// As [`status_kib`], for the process `pid` (a number, or `self`).
#[must_use]
pub fn process_status_kib(pid: &str, label: &str) -> i64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(label))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// A typical small `tools/call` request.
#[must_use]
pub fn small_request() -> Vec<u8> {
    br#"{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"get_weather","arguments":{"location":"New York"},"_meta":{"progressToken":"p-42"}}}"#.to_vec()
}

/// A `tools/call` response whose text content is about `size` bytes, with
/// newlines and quotes to escape, as a real tool result would have.
#[must_use]
pub fn tool_result(size: usize) -> Vec<u8> {
    let line = "The quick brown fox said \\\"hello\\\" and jumped over the lazy dog.\\n";
    let text = line.repeat(size / line.len() + 1);
    format!(
        r#"{{"jsonrpc":"2.0","id":"call-7","result":{{"content":[{{"type":"text","text":"{text}"}}],"isError":false}}}}"#
    )
    .into_bytes()
}

/// An in-process MCP server that answers `initialize` and echoes every
/// other request's params back as its result.
pub struct EchoServer;

impl mcp_core::McpServer for EchoServer {
    fn handle_request(
        &self,
        request: mcp_protocol::Request<'static>,
        _context: mcp_core::RequestContext,
    ) -> mcp_core::BoxFuture<'_, mcp_core::HandlerResult> {
        Box::pin(async move {
            if request.method == "initialize" {
                let result = serde_json::json!({
                    "protocolVersion": "2025-11-25",
                    "capabilities": {"tools": {}},
                    "serverInfo": {"name": "echo", "version": "1"}
                });
                return Ok(mcp_protocol::raw::Raw::from_value(&result));
            }
            Ok(request
                .params
                .unwrap_or_else(|| mcp_protocol::raw::Raw::from_value(&serde_json::json!({}))))
        })
    }

    fn handle_notification(
        &self,
        _notification: mcp_protocol::Notification<'static>,
        _context: mcp_core::RequestContext,
    ) -> mcp_core::BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

/// Deploys an [`EchoServer`] on a fresh runtime (no health checks, so that
/// nothing but the measured requests runs).
///
/// # Panics
///
/// When the server does not deploy, which would make the benchmark moot.
pub async fn deploy_echo() -> (
    mcp_runtime::McpRuntime,
    mcp_runtime::Server<mcp_core::state::Deployed>,
) {
    deploy("echo", Arc::new(EchoServer)).await
}

/// Deploys `server` in-process as `name` on a fresh runtime, without
/// health checks.
async fn deploy(
    name: &str,
    server: Arc<dyn mcp_core::McpServer>,
) -> (
    mcp_runtime::McpRuntime,
    mcp_runtime::Server<mcp_core::state::Deployed>,
) {
    let runtime = mcp_runtime::McpRuntime::start();
    let id = mcp_core::ServerId::new(name).expect("a valid id");
    let connector = mcp_runtime::transport::inprocess::InProcessConnector::new(name, server);
    let mut spec = mcp_runtime::ServerSpec::new(id, Arc::new(connector));
    spec.health_interval = None;
    let server = mcp_runtime::Server::new(runtime.clone(), spec)
        .deploy()
        .await
        .expect("the server deploys");
    (runtime, server)
}

/// An in-process MCP server with one tool, `echo` (its result is the
/// call's arguments), and blobs to read: `blob://SIZE` is a text resource
/// of SIZE bytes (made once per size, copied for each read, as a server
/// that holds its data answers).
#[derive(Default)]
pub struct BlobServer {
    blobs: std::sync::Mutex<std::collections::HashMap<usize, Arc<str>>>,
}

impl BlobServer {
    /// The sizes it lists.
    pub const SIZES: [usize; 2] = [1024 * 1024, 64 * 1024 * 1024];

    fn read(&self, uri: &str) -> mcp_core::HandlerResult {
        let size: usize = uri
            .strip_prefix("blob://")
            .and_then(|size| size.parse().ok())
            .ok_or_else(|| mcp_protocol::ErrorObject::new(-32002, format!("no resource {uri}")))?;
        let made = {
            let mut blobs = self
                .blobs
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            blobs
                .entry(size)
                .or_insert_with(|| {
                    let result = serde_json::json!({"contents": [{
                        "uri": uri, "mimeType": "text/plain", "text": "x".repeat(size)
                    }]});
                    Arc::from(result.to_string())
                })
                .clone()
        };
        let raw = serde_json::value::RawValue::from_string(made.to_string())
            .map_err(|e| mcp_protocol::ErrorObject::new(-32603, e.to_string()))?;
        Ok(mcp_protocol::raw::Raw::owned(raw))
    }
}

impl mcp_core::McpServer for BlobServer {
    fn handle_request(
        &self,
        request: mcp_protocol::Request<'static>,
        _context: mcp_core::RequestContext,
    ) -> mcp_core::BoxFuture<'_, mcp_core::HandlerResult> {
        Box::pin(async move {
            let value = |v: serde_json::Value| Ok(mcp_protocol::raw::Raw::from_value(&v));
            match &*request.method {
                "initialize" => value(serde_json::json!({
                    "protocolVersion": "2025-11-25",
                    "capabilities": {"tools": {}, "resources": {}},
                    "serverInfo": {"name": "blob", "version": "1"}
                })),
                "tools/list" => value(serde_json::json!({"tools": [
                    {"name": "echo", "inputSchema": {"type": "object"}}
                ]})),
                "tools/call" => Ok(request
                    .params
                    .unwrap_or_else(|| mcp_protocol::raw::Raw::from_value(&serde_json::json!({})))),
                "resources/list" => value(serde_json::json!({"resources": Self::SIZES
                    .iter()
                    .map(|size| serde_json::json!({"uri": format!("blob://{size}"), "name": format!("{size} bytes")}))
                    .collect::<Vec<_>>()})),
                "resources/read" => {
                    let params: serde_json::Value = request
                        .params
                        .as_ref()
                        .and_then(|p| p.parse().ok())
                        .unwrap_or_default();
                    self.read(
                        params
                            .get("uri")
                            .and_then(serde_json::Value::as_str)
                            .unwrap_or_default(),
                    )
                }
                other => Err(mcp_protocol::ErrorObject::new(
                    -32601,
                    format!("no {other}"),
                )),
            }
        })
    }

    fn handle_notification(
        &self,
        _notification: mcp_protocol::Notification<'static>,
        _context: mcp_core::RequestContext,
    ) -> mcp_core::BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

/// Deploys a [`BlobServer`] as `deploy_echo` deploys its server.
///
/// # Panics
///
/// When the server does not deploy, which would make the benchmark moot.
pub async fn deploy_blob() -> (
    mcp_runtime::McpRuntime,
    mcp_runtime::Server<mcp_core::state::Deployed>,
) {
    deploy("blob", Arc::new(BlobServer::default())).await
}
