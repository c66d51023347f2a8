//! The runtime against real MCP servers over stdio: the reference
//! `server-everything` (TypeScript SDK, on Node 22) and a FastMCP server
//! (Python SDK). Both come from `cargo xtask peers`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::time::Duration;

use common::{Marker, peer, stdio_spec};
use mcp_protocol::raw::Raw;
use mcp_runtime::{CallOptions, ListKind, McpRuntime, UpstreamProtocol};
use serde_json::{Value, json};
use tokio::sync::mpsc;

fn value(raw: &Raw<'_>) -> Value {
    serde_json::from_str(raw.get()).unwrap()
}

fn names(items: &[Raw<'static>], key: &str) -> Vec<String> {
    items
        .iter()
        .map(|i| value(i)[key].as_str().unwrap().to_owned())
        .collect()
}

/// The tools of the FastMCP peer (`tools/peers/fastmcp_server.py`).
const FASTMCP_TOOLS: [&str; 8] = [
    "add",
    "echo",
    "count",
    "sleep",
    "stall_once",
    "stall_once_unsafe",
    "wait_for_cancel",
    "was_cancelled",
];
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_everything_over_stdio() {
    let marker = Marker::new("everything");
    let runtime = McpRuntime::start();
    let mut events = runtime.subscribe();
    let spec = stdio_spec(
        "everything",
        &marker,
        peer("MCP_PEER_NODE"),
        vec![peer("MCP_PEER_EVERYTHING"), "stdio".into()],
    );
    let handle = common::deploy(&runtime, spec).await.unwrap();
    let session = handle.session().unwrap();
    assert_eq!(session.protocol_version.as_str(), "2025-11-25");

    let tools = names(&handle.list_all(ListKind::Tools).await.unwrap(), "name");
    for expected in ["echo", "get-sum", "trigger-long-running-operation"] {
        assert!(
            tools.contains(&expected.to_owned()),
            "{expected} not in {tools:?}"
        );
    }
    let echo = handle
        .request(
            "tools/call",
            Some(Raw::from_value(
                &json!({"name": "echo", "arguments": {"message": "hi"}}),
            )),
            CallOptions::default(),
        )
        .await
        .unwrap();
    assert!(
        value(&echo)["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("hi")
    );

    let resources = handle.list_all(ListKind::Resources).await.unwrap();
    assert!(!resources.is_empty());
    let uri = value(&resources[0])["uri"].as_str().unwrap().to_owned();
    let read = handle
        .request(
            "resources/read",
            Some(Raw::from_value(&json!({"uri": uri}))),
            CallOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(value(&read)["contents"][0]["uri"], uri.as_str());

    let prompts = names(&handle.list_all(ListKind::Prompts).await.unwrap(), "name");
    assert!(!prompts.is_empty());

    // Progress from a long-running operation reaches the caller with its token.
    let (sink, mut progress) = mpsc::channel(64);
    let params = json!({"name": "trigger-long-running-operation", "arguments": {"duration": 1, "steps": 4}, "_meta": {"progressToken": "p1"}});
    let options = CallOptions {
        progress: Some(sink),
        ..CallOptions::default()
    };
    handle
        .request("tools/call", Some(Raw::from_value(&params)), options)
        .await
        .unwrap();
    let mut steps = 0;
    while let Ok(n) = progress.try_recv() {
        assert_eq!(value(n.params.as_ref().unwrap())["progressToken"], "p1");
        steps += 1;
    }
    assert_eq!(steps, 4);

    // A long call dropped by its caller is cancelled; the server keeps serving.
    let long = json!({"name": "trigger-long-running-operation", "arguments": {"duration": 30, "steps": 3}});
    let call = handle.request(
        "tools/call",
        Some(Raw::from_value(&long)),
        CallOptions::default(),
    );
    assert!(
        tokio::time::timeout(Duration::from_millis(300), call)
            .await
            .is_err()
    );
    let echo = handle
        .request(
            "tools/call",
            Some(Raw::from_value(
                &json!({"name": "echo", "arguments": {"message": "still here"}}),
            )),
            CallOptions::default(),
        )
        .await
        .unwrap();
    assert!(echo.get().contains("still here"));
    assert_eq!(handle.in_flight(), 0);

    // Log messages the server sends on its own reach subscribers, tagged
    // with the server.
    handle
        .request(
            "logging/setLevel",
            Some(Raw::from_value(&json!({"level": "debug"}))),
            CallOptions::default(),
        )
        .await
        .unwrap();
    let toggle = json!({"name": "toggle-simulated-logging", "arguments": {}});
    handle
        .request(
            "tools/call",
            Some(Raw::from_value(&toggle)),
            CallOptions::default(),
        )
        .await
        .unwrap();
    let log = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let event = events.recv().await.unwrap();
            if event.notification.method == "notifications/message" {
                return event;
            }
        }
    })
    .await
    .expect("a log message within 10 s");
    assert_eq!(log.server.as_str(), "everything");
    assert!(value(log.notification.params.as_ref().unwrap())["level"].is_string());

    runtime.shutdown().await;
    marker.assert_none_left().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fastmcp_over_stdio() {
    let marker = Marker::new("fastmcp");
    let runtime = McpRuntime::start();
    let spec = stdio_spec(
        "fastmcp",
        &marker,
        peer("MCP_PEER_PYTHON"),
        vec![peer("MCP_PEER_FASTMCP")],
    );
    let handle = common::deploy(&runtime, spec).await.unwrap();
    assert_eq!(
        handle.session().unwrap().server_info.name,
        "mcp-manager-fastmcp-peer"
    );

    let tools = names(&handle.list_all(ListKind::Tools).await.unwrap(), "name");
    assert_eq!(tools, FASTMCP_TOOLS);
    let sum = handle
        .request(
            "tools/call",
            Some(Raw::from_value(
                &json!({"name": "add", "arguments": {"a": 2, "b": 40}}),
            )),
            CallOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(value(&sum)["content"][0]["text"], "42");

    let read = handle
        .request(
            "resources/read",
            Some(Raw::from_value(&json!({"uri": "peer://items/7"}))),
            CallOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(value(&read)["contents"][0]["text"], "item 7");
    let prompt = handle
        .request(
            "prompts/get",
            Some(Raw::from_value(
                &json!({"name": "greet", "arguments": {"name": "Ada"}}),
            )),
            CallOptions::default(),
        )
        .await
        .unwrap();
    assert!(prompt.get().contains("greeting for Ada"));

    let (sink, mut progress) = mpsc::channel(16);
    let params = json!({"name": "count", "arguments": {"steps": 3, "delay": 0.01}, "_meta": {"progressToken": 9}});
    let options = CallOptions {
        progress: Some(sink),
        ..CallOptions::default()
    };
    handle
        .request("tools/call", Some(Raw::from_value(&params)), options)
        .await
        .unwrap();
    let mut seen = Vec::new();
    while let Ok(n) = progress.try_recv() {
        let v = value(n.params.as_ref().unwrap());
        assert_eq!(v["progressToken"], 9);
        seen.push(v["progress"].as_f64().unwrap());
    }
    assert_eq!(seen, [1.0, 2.0, 3.0]);

    // A timeout on a sleeping tool comes back as a timeout, and the server
    // keeps answering.
    let options = CallOptions {
        timeout: Some(Duration::from_millis(300)),
        ..CallOptions::default()
    };
    let error = handle
        .request(
            "tools/call",
            Some(Raw::from_value(
                &json!({"name": "sleep", "arguments": {"seconds": 30}}),
            )),
            options,
        )
        .await
        .unwrap_err();
    assert_eq!(*error.kind(), mcp_runtime::ErrorKind::Timeout);
    let echo = handle
        .request(
            "tools/call",
            Some(Raw::from_value(
                &json!({"name": "echo", "arguments": {"text": "ok"}}),
            )),
            CallOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(value(&echo)["content"][0]["text"], "ok");

    runtime.shutdown().await;
    marker.assert_none_left().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fastmcp_stateless_2026() {
    let marker = Marker::new("stateless");
    let runtime = McpRuntime::start();
    let mut spec = stdio_spec(
        "stateless",
        &marker,
        peer("MCP_PEER_PYTHON"),
        vec![peer("MCP_PEER_FASTMCP")],
    );
    spec.protocol = UpstreamProtocol::Stateless;
    // Discovery is the health check of a stateless server.
    spec.health_interval = Some(Duration::from_millis(100));
    let handle = common::deploy(&runtime, spec).await.unwrap();
    let session = handle.session().unwrap();
    assert_eq!(session.protocol_version.as_str(), "2026-07-28");
    assert_eq!(session.server_info.name, "mcp-manager-fastmcp-peer");
    assert!(session.capabilities.tools.is_some());

    let tools = names(&handle.list_all(ListKind::Tools).await.unwrap(), "name");
    assert_eq!(tools, FASTMCP_TOOLS);
    let (sink, mut progress) = mpsc::channel(16);
    let params = json!({"name": "count", "arguments": {"steps": 2, "delay": 0.01}, "_meta": {"progressToken": "s"}});
    let options = CallOptions {
        progress: Some(sink),
        ..CallOptions::default()
    };
    let result = handle
        .request("tools/call", Some(Raw::from_value(&params)), options)
        .await
        .unwrap();
    assert_eq!(value(&result)["content"][0]["text"], "counted to 2");
    assert_eq!(value(&result)["resultType"], "complete");
    let mut steps = 0;
    while let Ok(n) = progress.try_recv() {
        assert_eq!(value(n.params.as_ref().unwrap())["progressToken"], "s");
        steps += 1;
    }
    assert_eq!(steps, 2);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        runtime.metrics().await.unwrap().servers[0].restarts,
        0,
        "discovery health checks failed"
    );
    runtime.shutdown().await;
    marker.assert_none_left().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_protocol_picks_what_each_server_speaks() {
    let marker = Marker::new("auto");
    let runtime = McpRuntime::start();
    let mut modern = stdio_spec(
        "modern",
        &marker,
        peer("MCP_PEER_PYTHON"),
        vec![peer("MCP_PEER_FASTMCP")],
    );
    modern.protocol = UpstreamProtocol::Auto;
    let mut classic = stdio_spec(
        "classic",
        &marker,
        peer("MCP_PEER_NODE"),
        vec![peer("MCP_PEER_EVERYTHING"), "stdio".into()],
    );
    classic.protocol = UpstreamProtocol::Auto;
    let (modern, classic) = tokio::join!(
        common::deploy(&runtime, modern),
        common::deploy(&runtime, classic)
    );
    // FastMCP over stdio answers discovery, and refuses `initialize` once
    // it has: stateless. server-everything refuses discovery: a session.
    let modern = modern.unwrap().session().unwrap();
    assert_eq!(modern.protocol_version.as_str(), "2026-07-28");
    assert!(!modern.dual);
    let classic = classic.unwrap();
    let session = classic.session().unwrap();
    assert_eq!(session.protocol_version.as_str(), "2025-11-25");
    assert!(!session.dual);
    let echo = classic
        .request(
            "tools/call",
            Some(Raw::from_value(
                &json!({"name": "echo", "arguments": {"message": "x"}}),
            )),
            CallOptions::default(),
        )
        .await
        .unwrap();
    assert!(echo.get().contains("Echo: x"));
    runtime.shutdown().await;
    marker.assert_none_left().await;
}
