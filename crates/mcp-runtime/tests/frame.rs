//! The frame-socket transport against a small frame server written here
//! with the runtime's own frame I/O: requests and answers both ways, a
//! large answer mapped, an error frame that ends the link with its
//! reason, and a socket nobody listens on.
#![cfg(unix)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use mcp_core::ServerId;
use mcp_core::config::{RestartConfig, RestartPolicy};
use mcp_protocol::raw::Raw;
use mcp_protocol::{Message, Request};
use mcp_runtime::transport::frame::FrameConnector;
use mcp_runtime::transport::frame::io::{FrameReader, FrameWriter};
use mcp_runtime::{CallOptions, ErrorKind, McpRuntime, ServerSpec};
use serde_json::{Value, json};
use tokio::net::UnixListener;

/// Serves one connection: `initialize`, `big` (10 KB of text, mapped at
/// this server's 64-byte threshold), `bye` (an error frame, then the end)
/// and anything else with `{}`.
async fn serve_one(listener: UnixListener) {
    let (stream, _) = listener.accept().await.unwrap();
    let stream = Arc::new(stream);
    let mut reader = FrameReader::new(stream.clone(), 1 << 20, 1 << 30);
    let mut writer = FrameWriter::new(stream, 64);
    while let Some(message) = reader.next().await {
        let Ok(Message::Request(Request { id, method, .. })) = message else {
            continue;
        };
        let result = match &*method {
            "initialize" => json!({
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "serverInfo": {"name": "framed", "version": "1"}
            }),
            "big" => json!({"text": "x".repeat(10_000)}),
            "bye" => {
                let error = mcp_protocol::Error::new(
                    mcp_protocol::ErrorKind::InvalidRequest,
                    "this server says goodbye",
                );
                writer.push_error(&error);
                writer.flush().await.unwrap();
                return;
            }
            _ => json!({}),
        };
        writer
            .push(&Message::response(id, Raw::from_value(&result)))
            .await
            .unwrap();
        writer.flush().await.unwrap();
    }
}

fn spec(path: std::path::PathBuf) -> ServerSpec {
    let id = ServerId::new("framed").unwrap();
    let mut spec = ServerSpec::new(id.clone(), Arc::new(FrameConnector::new(id, path, 1 << 20)));
    spec.health_interval = None;
    spec.restart = RestartConfig::new(
        RestartPolicy::Never,
        0,
        Duration::from_millis(10),
        Duration::from_millis(10),
    );
    spec
}

#[tokio::test]
async fn requests_cross_large_answers_are_mapped_and_an_error_frame_ends_the_link() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("framed.sock");
    let server = tokio::spawn(serve_one(UnixListener::bind(&path).unwrap()));
    let runtime = McpRuntime::start();
    let handle = common::deploy(&runtime, spec(path.clone())).await.unwrap();
    assert_eq!(handle.session().unwrap().server_info.name, "framed");
    assert_eq!(
        handle.spec().connector.describe(),
        format!("unix:{}", path.display())
    );

    let big = handle
        .request("big", None, CallOptions::default())
        .await
        .unwrap();
    let text = big.parse::<Value>().unwrap()["text"]
        .as_str()
        .unwrap()
        .len();
    assert_eq!(text, 10_000);
    let plain = handle.request("ping", None, CallOptions::default()).await;
    assert_eq!(plain.unwrap().get(), "{}");

    let error = handle
        .request("bye", None, CallOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(
            error.kind(),
            ErrorKind::Disconnected | ErrorKind::Unavailable
        ),
        "{error}"
    );
    server.await.unwrap();
    common::eventually("the server's goodbye is its last error", || {
        handle
            .recent_errors()
            .iter()
            .any(|e| e.message.contains("this server says goodbye"))
    })
    .await;
    runtime.shutdown().await;
}

#[tokio::test]
async fn a_socket_nobody_listens_on_fails_the_start_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nobody.sock");
    let runtime = McpRuntime::start();
    let error = common::deploy(&runtime, spec(path.clone()))
        .await
        .unwrap_err();
    assert_eq!(*error.kind(), ErrorKind::Start, "{error}");
    assert!(
        error.message().contains(&path.display().to_string()),
        "{error}"
    );
    runtime.shutdown().await;
}
