//! `mcp-manager serve --http ADDR --frame-socket PATH` in front of real
//! servers (server-everything and FastMCP over stdio, the built-in one
//! in-process): the runtime's frame-socket client lists and calls a tool of
//! each through the socket while HTTP serves too, and so does a second
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

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mcp_core::ServerId;
use mcp_protocol::raw::Raw;
use mcp_runtime::transport::frame::FrameConnector;
use mcp_runtime::{CallOptions, ListKind, McpRuntime, Server, ServerSpec};
use serde_json::{Value, json};
use support::{marked, unique_marker, write_config};

/// Kills the gateway if the test fails before it stopped it.
struct Gateway(Child);

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

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
    let addr = format!("127.0.0.1:{}", free_port());
    let mut child = Command::new(env!("CARGO_BIN_EXE_mcp-manager"))
        .args(["serve", "--config"])
        .arg(&config)
        .args(["--no-watch", "--http", &addr, "--frame-socket"])
        .arg(&socket)
        .env_remove("MCP_MANAGER_AUTH_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut gateway = Gateway(child);
    let (lines_tx, lines) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    let listening = format!("mcp-manager: listening on http://{addr}/mcp");
    let mut log = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(90);
    while !log.contains(&listening) {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => log.push(line),
            Err(_) => panic!("no `{listening}` line:\n{}", log.join("\n")),
        }
    }
    let said = format!(
        "mcp-manager: also serving on the frame socket unix:{}",
        socket.display()
    );
    assert!(log.contains(&said), "{}", log.join("\n"));

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let runtime = McpRuntime::start();
        let id = ServerId::new("gateway").unwrap();
        let connector = FrameConnector::new(id.clone(), socket.clone(), 16 << 20);
        let server = Server::new(runtime.clone(), ServerSpec::new(id, Arc::new(connector)))
            .deploy()
            .await
            .map_err(|failed| failed.error().to_string())
            .unwrap();
        let handle = server.handle();
        assert_eq!(handle.session().unwrap().server_info.name, "mcp-manager");
        let tools = handle.list_all(ListKind::Tools).await.unwrap();
        let names: Vec<String> = tools
            .iter()
            .map(|t| {
                t.parse::<Value>().unwrap()["name"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
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
        for (params, expected) in calls {
            let result = handle
                .request(
                    "tools/call",
                    Some(Raw::from_value(&params)),
                    CallOptions::default(),
                )
                .await
                .unwrap();
            let result: Value = result.parse().unwrap();
            assert_eq!(text_of(&result), expected, "{params}: {result}");
        }
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
        .args(["-TERM", &gateway.0.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    // Well within the 10 s drain: a session whose client has gone must not
    // be waited for.
    let deadline = Instant::now() + Duration::from_secs(8);
    let status = loop {
        if let Some(status) = gateway.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the gateway did not stop");
        std::thread::sleep(Duration::from_millis(50));
    };
    reader.join().unwrap();
    assert!(status.success(), "{status:?}");
    assert!(!socket.exists(), "the socket file is removed");
    assert!(marked(&marker).is_empty(), "a backend outlived the gateway");
}
