//! `mcp-manager builtin everything --stdio` as a real child process, driven
//! through the runtime; and configs whose servers are all created through
//! the plugin registry.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::path::Path;
use std::time::Duration;

use mcp_core::ManagerConfig;
use mcp_protocol::raw::Raw;
use mcp_runtime::{CallOptions, ListKind, McpRuntime};
use serde_json::{Value, json};

fn text_of(result: &Raw<'_>) -> String {
    let value: Value = serde_json::from_str(result.get()).unwrap();
    value["content"][0]["text"].as_str().unwrap().to_owned()
}

fn load(text: &str) -> ManagerConfig {
    let env = |name: &str| match name {
        "MANAGER" => Some(env!("CARGO_BIN_EXE_mcp-manager").to_owned()),
        _ => None,
    };
    ManagerConfig::from_json_str(text, None, &env).unwrap()
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| !stat.contains(") Z"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_server_is_created_through_the_registry() {
    let config = load(
        r#"{"mcpServers": {
            "inproc": {"type": "builtin", "server": "everything"},
            "child": {"command": "${MANAGER}", "args": ["builtin", "everything", "--stdio"], "instances": 2}
        }}"#,
    );
    let registry = mcp_plugins::default_registry();
    let runtime = McpRuntime::start();
    let mut handles = Vec::new();
    for server in config.servers() {
        let spec = mcp_control::spec(&registry, server).unwrap();
        handles.push(
            mcp_runtime::Server::new(runtime.clone(), spec)
                .deploy()
                .await
                .unwrap()
                .into_handle(),
        );
    }
    for handle in &handles {
        let tools = handle.list_all(ListKind::Tools).await.unwrap();
        assert!(
            tools
                .iter()
                .any(|t| t.get().contains("\"test_simple_text\"")),
            "{}",
            handle.id()
        );
        let params = Raw::from_value(&json!({"name": "test_simple_text", "arguments": {}}));
        let result = handle
            .request("tools/call", Some(params), CallOptions::default())
            .await
            .unwrap();
        assert!(!text_of(&result).is_empty());
    }
    let child = &handles[1];
    assert_eq!(child.states().len(), 2);
    assert_eq!(
        child.session().unwrap().server_info.name,
        handles[0].session().unwrap().server_info.name
    );

    // The child processes are gone once the runtime shuts down.
    let pids: Vec<u32> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
                let c = String::from_utf8_lossy(&c);
                c.starts_with(env!("CARGO_BIN_EXE_mcp-manager")) && c.contains("builtin")
            })
        })
        .collect();
    assert!(pids.len() >= 2, "{pids:?}");
    runtime.shutdown().await;
    for _ in 0..100 {
        if pids.iter().all(|pid| !alive(*pid)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(pids.iter().all(|pid| !alive(*pid)), "left behind: {pids:?}");
}

#[test]
fn an_unknown_builtin_is_a_usage_error() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mcp-manager"))
        .args(["builtin", "nothing", "--stdio"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "there is no built-in server \"nothing\"; the built-in servers are: everything"
        ),
        "{stderr}"
    );
    assert!(Path::new(env!("CARGO_BIN_EXE_mcp-manager")).exists());
}

/// Kills the child when dropped, even when the test fails.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_builtin_server_over_http() {
    use std::io::{BufRead, BufReader};

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Child(
        std::process::Command::new(env!("CARGO_BIN_EXE_mcp-manager"))
            .args([
                "builtin",
                "everything",
                "--http",
                &format!("127.0.0.1:{port}"),
            ])
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stderr = child.0.stderr.take().unwrap();
    let mut line = String::new();
    BufReader::new(stderr).read_line(&mut line).unwrap();
    assert_eq!(
        line.trim(),
        format!("mcp-manager: listening on http://127.0.0.1:{port}/mcp")
    );

    let config = load(&format!(
        r#"{{"mcpServers": {{"remote": {{"url": "http://127.0.0.1:{port}/mcp"}}}}}}"#
    ));
    let runtime = McpRuntime::start();
    let spec = mcp_control::spec(&mcp_plugins::default_registry(), &config.servers()[0]).unwrap();
    let handle = mcp_runtime::Server::new(runtime.clone(), spec)
        .deploy()
        .await
        .unwrap()
        .into_handle();
    let params = Raw::from_value(&json!({"name": "test_simple_text", "arguments": {}}));
    let result = handle
        .request("tools/call", Some(params), CallOptions::default())
        .await
        .unwrap();
    assert_eq!(
        text_of(&result),
        "This is a simple text response for testing."
    );
    runtime.shutdown().await;

    nix_term(child.0.id());
    let status = child.0.wait().unwrap();
    assert!(status.success(), "{status}");
}

fn nix_term(pid: u32) {
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
}
