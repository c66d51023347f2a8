//! The legacy HTTP+SSE transport against server-everything in SSE mode on
//! 127.0.0.1: the endpoint handshake, lists, calls, progress, and the end
//! of the event stream.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;
#[path = "fixtures/http_peers.rs"]
mod peers;

use std::time::Duration;

use mcp_runtime::McpRuntime;
use peers::{
    PeerProcess, Peers, call_ok, call_with_progress, free_port, sse_spec, tool_names,
    wait_until_not_running,
};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everything_over_legacy_sse() {
    let peers = Peers::load();
    let peer = PeerProcess::everything(&peers, "sse", free_port())
        .ready()
        .await;
    let runtime = McpRuntime::start();
    let handle = common::deploy(&runtime, sse_spec("everything-sse", peer.url("/sse")))
        .await
        .unwrap();
    assert_eq!(
        handle.session().unwrap().server_info.name,
        "mcp-servers/everything"
    );

    let tools = tool_names(&handle).await;
    assert!(tools.iter().any(|t| t == "echo"), "{tools:?}");
    let text = call_ok(&handle, "echo", json!({"message": "over sse"})).await;
    assert_eq!(text, "Echo: over sse");

    // Progress arrives as `message` events on the one stream.
    let (result, progress) = call_with_progress(
        &handle,
        "trigger-long-running-operation",
        json!({"duration": 0.6, "steps": 3}),
        json!(7),
    )
    .await;
    assert!(result.to_string().contains("completed"), "{result}");
    assert_eq!(progress.len(), 3);
    assert!(progress.iter().all(|p| p["progressToken"] == 7));

    // The stream is the connection: when the server goes, the link says so.
    drop(peer);
    wait_until_not_running(&handle, Duration::from_secs(10)).await;
    runtime.shutdown().await;
}
