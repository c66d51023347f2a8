//! `mcp-manager serve --http ADDR --frame-socket PATH` in front of real
//! servers (server-everything and FastMCP over stdio, the built-in one
//! in-process): the runtime's frame-socket client lists and calls a tool of
//! each through the socket while HTTP serves too, in a 2025 session and
//! statelessly (2026-07-28), and so does a second
//! manager whose config names the socket (`unix:` URL), and `list`/`call
//! --connect` over the socket and over HTTP; SIGTERM stops both, removes
//! the socket, and leaves no child process behind.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod support;

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mcp_core::ServerId;
use mcp_protocol::raw::Raw;
use mcp_runtime::transport::frame::FrameConnector;
use mcp_runtime::{
    CallOptions, ListKind, McpRuntime, Server, ServerHandle, ServerSpec, UpstreamProtocol,
};
use serde_json::{Value, json};
use support::{HttpGateway, marked, unique_marker, write_config};

/// Runs the command line: exit code, stdout, stderr.
fn cli(args: &[&str]) -> (Option<i32>, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_mcp-manager"))
        .args(args)
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A client of the gateway's frame socket at `socket`, speaking `protocol`.
async fn frame_client(
    runtime: &McpRuntime,
    name: &str,
    socket: &std::path::Path,
    protocol: UpstreamProtocol,
) -> ServerHandle {
    let id = ServerId::new(name).unwrap();
    let connector = FrameConnector::new(id.clone(), socket.to_owned(), 16 << 20);
    let mut spec = ServerSpec::new(id, Arc::new(connector));
    spec.protocol = protocol;
    Server::new(runtime.clone(), spec)
        .deploy()
        .await
        .map_err(|failed| failed.error().to_string())
        .unwrap()
        .into_handle()
}

/// Calls each tool of `calls` through `handle` and checks its text.
async fn call_each(handle: &ServerHandle, calls: &[(Value, &str)]) {
    for (params, expected) in calls {
        let result = handle
            .request(
                "tools/call",
                Some(Raw::from_value(params)),
                CallOptions::default(),
            )
            .await
            .unwrap();
        let result: Value = result.parse().unwrap();
        assert_eq!(text_of(&result), *expected, "{params}: {result}");
    }
}

/// The text of a tool result's first content block.
fn text_of(result: &Value) -> &str {
    result["content"][0]["text"].as_str().unwrap_or_default()
}

#[test]
fn a_frame_socket_client_reaches_every_backend_beside_http() {
    let dir = tempfile::tempdir().unwrap();
    let marker = unique_marker("frames");
    let config = write_config(dir.path(), &marker);
    let socket = dir.path().join("mcp.sock");
    let socket_arg = socket.to_str().unwrap();
    let mut gateway = HttpGateway::start_with(
        &config,
        &marker,
        &["--no-watch", "--frame-socket", socket_arg],
    );
    let addr = gateway.addr.clone();
    assert!(socket.exists(), "no socket at {}", socket.display());

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let runtime = McpRuntime::start();
        let handle = frame_client(&runtime, "gateway", &socket, UpstreamProtocol::Stateful).await;
        assert_eq!(handle.session().unwrap().server_info.name, "mcp-manager");
        let tool_names = |tools: &[Raw<'static>]| -> Vec<String> {
            tools
                .iter()
                .map(|t| {
                    t.parse::<Value>().unwrap()["name"]
                        .as_str()
                        .unwrap()
                        .to_owned()
                })
                .collect()
        };
        let names = tool_names(&handle.list_all(ListKind::Tools).await.unwrap());
        for name in ["ev__echo", "py__add", "rs__test_simple_text"] {
            assert!(names.iter().any(|n| n == name), "{name} missing: {names:?}");
        }
        let calls = [
            (
                json!({"name": "ev__echo", "arguments": {"message": "framed"}}),
                "Echo: framed",
            ),
            (
                json!({"name": "py__add", "arguments": {"a": 40, "b": 2}}),
                "42",
            ),
            (
                json!({"name": "rs__test_simple_text"}),
                "This is a simple text response for testing.",
            ),
        ];
        call_each(&handle, &calls).await;

        // A 2026-07-28 client, stateless over the same socket.
        let stateless =
            frame_client(&runtime, "stateless", &socket, UpstreamProtocol::Stateless).await;
        let session = stateless.session().unwrap();
        assert_eq!(session.protocol_version.as_str(), "2026-07-28");
        assert_eq!(session.server_info.name, "mcp-manager");
        let shown = tool_names(&stateless.list_all(ListKind::Tools).await.unwrap());
        // The same tools either way, but for server-everything's that must
        // run as a 2025-11-25 task, which a 2026-07-28 client cannot start.
        let mut expected = names.clone();
        expected.retain(|name| name != "ev__simulate-research-query");
        assert_eq!(expected.len() + 1, names.len(), "{names:?}");
        assert_eq!(shown, expected);
        call_each(&stateless, &calls).await;
        runtime.shutdown().await;
    });

    // A second manager whose config names the socket as a `unix:` URL.
    let upstream = dir.path().join("upstream.json");
    let config = json!({"mcpServers": {"up": {"url": format!("unix:{}", socket.display())}}});
    std::fs::write(&upstream, config.to_string()).unwrap();
    let called = Command::new(env!("CARGO_BIN_EXE_mcp-manager"))
        .args(["call", "--config"])
        .arg(&upstream)
        .args(["up/py__add", "--args", r#"{"a": 2, "b": 3}"#])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&called.stderr);
    assert!(called.status.success(), "{stderr}");
    let stdout = String::from_utf8_lossy(&called.stdout);
    assert!(stdout.starts_with("5\n"), "{stdout}\n{stderr}");

    // `list` and `call` with `--connect`, over the socket and over HTTP.
    let unix = format!("unix:{}", socket.display());
    let http = format!("http://{addr}/mcp");
    let (code, stdout, stderr) = cli(&["list", "--connect", &unix]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.contains("gateway") && stdout.contains("running"),
        "{stdout}"
    );
    let tools: Vec<&str> = stdout.split("\nTOOLS\n").nth(1).unwrap().lines().collect();
    assert!(
        tools.contains(&"ev__echo") && tools.contains(&"py__add"),
        "{stdout}"
    );
    let (code, stdout, stderr) = cli(&[
        "call",
        "--connect",
        &unix,
        "ev__echo",
        "--args",
        r#"{"message": "hi"}"#,
    ]);
    assert_eq!((code, stdout.as_str()), (Some(0), "Echo: hi\n"), "{stderr}");
    let (code, stdout, stderr) = cli(&["call", "--connect", &http, "rs__test_simple_text"]);
    assert_eq!(
        (code, stdout.as_str()),
        (Some(0), "This is a simple text response for testing.\n"),
        "{stderr}"
    );
    let (code, _, stderr) = cli(&["call", "--connect", &unix, "ev__nothing"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("has no tool `ev__nothing`; it has: "),
        "{stderr}"
    );
    let (code, _, stderr) = cli(&["list", "--connect", "ftp://example.com"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("unsupported URL scheme `ftp`"), "{stderr}");

    // SIGTERM: a clean exit, the socket gone, no backend left running.
    let killed = Command::new("kill")
        .args(["-TERM", &gateway.guard.pid().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    // Well within the 10 s drain: a session whose client has gone must not
    // be waited for.
    let deadline = Instant::now() + Duration::from_secs(8);
    let status = loop {
        if let Some(status) = gateway.guard.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the gateway did not stop");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}\n{}", gateway.drain_log());
    assert!(!socket.exists(), "the socket file is removed");
    assert!(marked(&marker).is_empty(), "a backend outlived the gateway");
}
