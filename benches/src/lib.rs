//! Shared fixtures for the benchmarks of mcp-manager.
#![forbid(unsafe_code)]
#![allow(clippy::expect_used)]

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
    let runtime = mcp_runtime::McpRuntime::start();
    let id = mcp_core::ServerId::new("echo").expect("a valid id");
    let connector = mcp_runtime::transport::inprocess::InProcessConnector::new(
        "echo",
        std::sync::Arc::new(EchoServer),
    );
    let mut spec = mcp_runtime::ServerSpec::new(id, std::sync::Arc::new(connector));
    spec.health_interval = None;
    let server = mcp_runtime::Server::new(runtime.clone(), spec)
        .deploy()
        .await
        .expect("the echo server deploys");
    (runtime, server)
}
