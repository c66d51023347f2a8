//! The Streamable HTTP transport against real peers on 127.0.0.1:
//! server-everything (calls, concurrency, progress, cancellation, the
//! standalone event stream, the fall back from discovery to `initialize`),
//! the FastMCP peer (an expired session renewed transparently, a server that
//! goes away, stateless 2026-07-28 requests) and a fault-injecting fixture
//! (resumed streams, error statuses, headers, `DELETE`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;
#[path = "fixtures/http_peers.rs"]
mod peers;

use std::time::{Duration, Instant};

use common::{call_text, eventually, params};
use mcp_runtime::{CallOptions, ErrorKind, McpRuntime, ServerState, UpstreamProtocol};
use peers::{
    PeerProcess, Peers, call_ok, call_with_progress, deploy_as, free_port, http_spec, tool_names,
    wait_until_not_running,
};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everything_over_streamable_http() {
    let peers = Peers::load();
    let peer = PeerProcess::everything(&peers, "streamableHttp", free_port())
        .ready()
        .await;
    let runtime = McpRuntime::start();
    let mut events = runtime.subscribe();
    let handle = common::deploy(&runtime, http_spec("everything-http", peer.url("/mcp")))
        .await
        .unwrap();
    let session = handle.session().unwrap();
    assert_eq!(session.server_info.name, "mcp-servers/everything");
    assert_eq!(session.protocol_version.as_str(), "2025-11-25");

    let tools = tool_names(&handle).await;
    for tool in [
        "echo",
        "trigger-long-running-operation",
        "toggle-simulated-logging",
    ] {
        assert!(tools.iter().any(|t| t == tool), "{tool} missing: {tools:?}");
    }
    let text = call_ok(&handle, "echo", json!({"message": "over http"})).await;
    assert_eq!(text, "Echo: over http");

    // Progress comes back on the request's event stream, with the caller's
    // own token.
    let (result, progress) = call_with_progress(
        &handle,
        "trigger-long-running-operation",
        json!({"duration": 1, "steps": 4}),
        json!("mine"),
    )
    .await;
    assert!(result.to_string().contains("completed"), "{result}");
    assert_eq!(progress.len(), 4, "{progress:?}");
    assert!(progress.iter().all(|p| p["progressToken"] == "mine"));
    assert_eq!(progress.last().unwrap()["progress"], 4);

    // Requests do not wait for each other: a quick call overtakes a slow one.
    let slow = {
        let handle = handle.clone();
        tokio::spawn(async move {
            let args = json!({"duration": 2, "steps": 1});
            call_ok(&handle, "trigger-long-running-operation", args).await
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    assert_eq!(
        call_ok(&handle, "echo", json!({"message": "quick"})).await,
        "Echo: quick"
    );
    assert!(
        !slow.is_finished(),
        "the quick call waited for the slow one"
    );
    assert!(started.elapsed() < Duration::from_millis(1500));
    assert!(slow.await.unwrap().contains("completed"));

    // A call dropped in flight is cancelled (its stream is dropped too); the
    // link stays usable.
    let long = call_text(
        &handle,
        "trigger-long-running-operation",
        json!({"duration": 30, "steps": 30}),
        CallOptions::default(),
    );
    assert!(
        tokio::time::timeout(Duration::from_millis(500), long)
            .await
            .is_err()
    );
    eventually("the cancelled call is no longer in flight", || {
        handle.in_flight() == 0
    })
    .await;
    assert_eq!(
        call_ok(&handle, "echo", json!({"message": "after"})).await,
        "Echo: after"
    );

    // Messages the server starts on its own come on the standalone stream.
    call_ok(&handle, "toggle-simulated-logging", json!({})).await;
    let logged = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            let event = events.recv().await.unwrap();
            if event.notification.method == "notifications/message" {
                return event;
            }
        }
    })
    .await
    .expect("no log message arrived on the standalone stream");
    assert_eq!(logged.server.as_str(), "everything-http");

    let metrics = runtime.metrics().await.unwrap();
    assert_eq!(metrics.servers[0].restarts, 0);
    runtime.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_session_is_renewed_transparently() {
    let peers = Peers::load();
    let port = free_port();
    let peer = PeerProcess::fastmcp(&peers, port).ready().await;
    let runtime = McpRuntime::start();
    let handle = common::deploy(&runtime, http_spec("fastmcp-http", peer.url("/mcp")))
        .await
        .unwrap();
    assert_eq!(
        call_ok(&handle, "echo", json!({"text": "before"})).await,
        "before"
    );

    // A new process on the same port knows none of the old sessions: 404.
    drop(peer);
    let peer = PeerProcess::fastmcp(&peers, port).ready().await;
    assert_eq!(
        call_ok(&handle, "echo", json!({"text": "after"})).await,
        "after"
    );
    assert_eq!(call_ok(&handle, "add", json!({"a": 2, "b": 3})).await, "5");

    // The connection itself was never lost.
    let metrics = runtime.metrics().await.unwrap();
    assert_eq!(metrics.servers[0].restarts, 0);
    assert_eq!(handle.states(), vec![ServerState::Running]);
    runtime.shutdown().await;
    drop(peer);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_servers_fail_fast() {
    let peers = Peers::load();
    let runtime = McpRuntime::start();

    // Nothing listens: the handshake fails at once.
    let started = Instant::now();
    let url = format!("http://127.0.0.1:{}/mcp", free_port());
    let error = common::deploy(&runtime, http_spec("nobody", url))
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(error.message().contains("could not reach"), "{error}");

    // A server that goes away: the next call fails within seconds.
    let peer = PeerProcess::fastmcp(&peers, free_port()).ready().await;
    let handle = common::deploy(&runtime, http_spec("goes-away", peer.url("/mcp")))
        .await
        .unwrap();
    assert_eq!(call_ok(&handle, "echo", json!({"text": "hi"})).await, "hi");
    drop(peer);
    let started = Instant::now();
    let error = call_text(
        &handle,
        "echo",
        json!({"text": "hi"}),
        CallOptions::default(),
    )
    .await
    .unwrap_err();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "took {took:?}");
    // No answer came: not the server's own error, so it counts against the
    // breaker and a read may be retried.
    assert_eq!(*error.kind(), ErrorKind::Disconnected, "{error}");
    assert!(error.rpc_error().is_none());
    assert!(error.message().contains("could not reach"), "{error}");

    // Connection errors in a row close the link: the supervisor takes over.
    wait_until_not_running(&handle, Duration::from_secs(30)).await;
    runtime.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_are_answered_and_broken_streams_resumed() {
    peers::logs();
    let log = std::env::temp_dir().join(format!("mcp-http-faults-{}.log", std::process::id()));
    let _ = std::fs::remove_file(&log);
    let peer = PeerProcess::fault_server(free_port(), &log).ready().await;
    let runtime = McpRuntime::start();
    let handle = deploy_as(
        &runtime,
        http_spec("faults", peer.url("/mcp")),
        UpstreamProtocol::Stateful,
        "2025-06-18",
    )
    .await;

    // An answer in a JSON body, and one on an event stream after progress.
    assert_eq!(
        call_ok(&handle, "echo", json!({"text": "json"})).await,
        "json"
    );
    let (result, progress) =
        call_with_progress(&handle, "stream_echo", json!({"text": "sse"}), json!("p")).await;
    assert_eq!(result["content"][0]["text"], "sse");
    assert_eq!(progress.len(), 1);

    // A stream closed before the answer is resumed with Last-Event-ID.
    assert_eq!(call_ok(&handle, "broken", json!({})).await, "resumed");

    // An HTTP error becomes an error answer naming the status.
    let started = Instant::now();
    let error = call_text(&handle, "fail", json!({}), CallOptions::default())
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(error.message().contains("HTTP 500"), "{error}");
    assert!(error.message().contains("boom"), "{error}");

    // What the server saw: the configured header and the version header on
    // every request after initialize, one GET for the standalone stream
    // (405, not retried) and one that resumed the broken stream.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let stats: Value = serde_json::from_str(&call_ok(&handle, "stats", json!({})).await).unwrap();
    assert_eq!(stats["gets"], 2, "{stats}");
    assert_eq!(stats["last_event_ids"], json!(["b-2"]));
    let tokens = stats["tokens"].as_array().unwrap();
    assert!(!tokens.is_empty(), "{stats}");
    assert!(tokens.iter().all(|t| t == "secret"), "{stats}");
    let versions = stats["versions"].as_array().unwrap();
    assert!(versions.iter().all(|v| v == "2025-06-18"), "{stats}");

    // Stopping ends the session.
    runtime.shutdown().await;
    let written = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    assert_eq!(written, "DELETE s-1\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stateless_and_auto_sessions_over_http() {
    let peers = Peers::load();
    let peer = PeerProcess::fastmcp(&peers, free_port()).ready().await;
    let runtime = McpRuntime::start();

    // 2026-07-28: no handshake, no session; every POST names its version,
    // method and tool in headers.
    let spec = http_spec("stateless-http", peer.url("/mcp"));
    let handle = deploy_as(&runtime, spec, UpstreamProtocol::Stateless, "2026-07-28").await;
    let args = json!({"steps": 2, "delay": 0.01});
    let (result, progress) = call_with_progress(&handle, "count", args, json!("s")).await;
    assert_eq!(result["content"][0]["text"], "counted to 2");
    assert_eq!(progress.len(), 2);
    // A JSON-RPC error sent with an error status (404 here) keeps its code.
    let error = handle
        .request("no/such/method", params(json!({})), CallOptions::default())
        .await
        .unwrap_err();
    assert_eq!(error.rpc_error().map(|e| e.code), Some(-32601), "{error}");

    // Auto: this server answers both `server/discover` and `initialize`,
    // so it serves both generations: a session for requests without the
    // 2026-07-28 envelope, and those with it passed on as they are, with
    // no session id.
    let spec = http_spec("auto-http", peer.url("/mcp"));
    let handle = deploy_as(&runtime, spec, UpstreamProtocol::Auto, "2025-11-25").await;
    assert!(handle.session().unwrap().dual, "both generations");
    assert_eq!(
        call_ok(&handle, "echo", json!({"text": "auto"})).await,
        "auto"
    );
    let envelope = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "a-2026-client", "version": "1"},
    });
    let stateless = json!({"name": "echo", "arguments": {"text": "beside"}, "_meta": envelope});
    let result = handle
        .request("tools/call", params(stateless), CallOptions::default())
        .await
        .unwrap();
    let result: Value = serde_json::from_str(result.get()).unwrap();
    assert_eq!(result["content"][0]["text"], "beside", "{result}");
    assert_eq!(
        result["resultType"], "complete",
        "a 2026-07-28 result: {result}"
    );
    runtime.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_falls_back_to_initialize_over_http() {
    let peers = Peers::load();
    let peer = PeerProcess::everything(&peers, "streamableHttp", free_port())
        .ready()
        .await;
    let runtime = McpRuntime::start();
    // server-everything refuses `server/discover` without a session (400).
    let spec = http_spec("auto-everything", peer.url("/mcp"));
    let handle = deploy_as(&runtime, spec, UpstreamProtocol::Auto, "2025-11-25").await;
    let text = call_ok(&handle, "echo", json!({"message": "fallback"})).await;
    assert_eq!(text, "Echo: fallback");
    runtime.shutdown().await;
}
