//! Helpers shared by the runtime's integration tests.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use mcp_core::ServerId;
use mcp_core::config::{RestartConfig, RestartPolicy, Timeouts};
use mcp_protocol::raw::Raw;
use mcp_runtime::transport::stdio::{StdioCommand, StdioConnector};
use mcp_runtime::{CallOptions, ServerHandle, ServerSpec};
use serde_json::{Value, json};

/// A marker unique to one test, passed to every process it starts so that
/// the test can look for leftovers in /proc.
pub struct Marker(pub String);

impl Marker {
    pub fn new(test: &str) -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        Self(format!("--marker=mcp-rt-{test}-{}-{n}", std::process::id()))
    }

    /// Processes whose command line contains the marker.
    pub fn processes(&self) -> Vec<u32> {
        let mut found = Vec::new();
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
                continue;
            };
            let cmdline = String::from_utf8_lossy(&cmdline);
            if cmdline.split('\0').any(|arg| arg == self.0) && !is_zombie(pid) {
                found.push(pid);
            }
        }
        found
    }

    /// Waits (a bounded time) until no marked process is left, and fails the
    /// test otherwise.
    pub async fn assert_none_left(&self) {
        for _ in 0..100 {
            if self.processes().is_empty() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("processes left behind: {:?}", self.processes());
    }
}

fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| {
            stat.rsplit(')')
                .next()
                .is_some_and(|rest| rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(true)
}

pub fn fixture() -> String {
    format!(
        "{}/tests/fixtures/fault_server.py",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// A spec with the defaults for server `name`, the child process
/// `command` with `args`.
pub fn command_spec(name: &str, command: &str, args: Vec<String>) -> ServerSpec {
    let command = StdioCommand {
        server: ServerId::new(name).unwrap(),
        command: command.to_owned(),
        args,
        env: BTreeMap::new(),
        cwd: None,
        max_message: 1 << 20,
        sandbox: None,
    };
    ServerSpec::new(
        command.server.clone(),
        Arc::new(StdioConnector::new(command)),
    )
}

/// A spec for the fault server with `flags`, marked with `marker`.
pub fn fault_spec(name: &str, marker: &Marker, flags: &[&str]) -> ServerSpec {
    let mut args = vec![fixture(), marker.0.clone()];
    args.extend(flags.iter().map(|f| (*f).to_owned()));
    let mut spec = command_spec(name, "python3", args);
    spec.timeouts = Timeouts::new(Duration::from_secs(10), Duration::from_secs(10));
    spec.restart = RestartConfig::new(
        RestartPolicy::OnFailure,
        3,
        Duration::from_millis(20),
        Duration::from_millis(200),
    );
    spec.stop_grace = Duration::from_millis(300);
    spec
}

pub fn params(value: Value) -> Option<Raw<'static>> {
    Some(Raw::from_value(&value))
}

/// Calls a tool and returns the text of its first content block.
pub async fn call_text(
    handle: &ServerHandle,
    tool: &str,
    args: Value,
    options: CallOptions,
) -> mcp_runtime::Result<String> {
    let result = handle
        .request(
            "tools/call",
            params(json!({"name": tool, "arguments": args})),
            options,
        )
        .await?;
    let value: Value = serde_json::from_str(result.get()).unwrap();
    Ok(value["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned())
}

/// Waits (a bounded time) until `check` holds.
pub async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..200 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting until {what}");
}

/// The real MCP peers `cargo xtask peers` installed, from `.tools/peers.env`.
pub fn peer(key: &str) -> String {
    let path = format!("{}/../../.tools/peers.env", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!("cannot read {path} ({e}): run `cargo xtask peers` to install the test peers")
    });
    text.lines()
        .filter_map(|line| line.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v.to_owned())
        .unwrap_or_else(|| panic!("{path} has no {key}: run `cargo xtask peers` again"))
}

/// A spec for a stdio server run as `program args...`, marked with `marker`.
pub fn stdio_spec(
    name: &str,
    marker: &Marker,
    program: String,
    mut args: Vec<String>,
) -> ServerSpec {
    args.push(marker.0.clone());
    let command = StdioCommand {
        server: ServerId::new(name).unwrap(),
        command: program,
        args,
        env: BTreeMap::new(),
        cwd: None,
        max_message: 16 << 20,
        sandbox: None,
    };
    let mut spec = ServerSpec::new(
        command.server.clone(),
        Arc::new(StdioConnector::new(command)),
    );
    spec.timeouts = Timeouts::new(Duration::from_secs(20), Duration::from_secs(30));
    spec.stop_grace = Duration::from_millis(500);
    spec
}

/// Deploys `spec` through the type-state API and keeps its handle, or the
/// reason it did not start: what most tests want of a deployment.
pub async fn deploy(
    runtime: &mcp_runtime::McpRuntime,
    spec: ServerSpec,
) -> mcp_runtime::Result<ServerHandle> {
    mcp_runtime::Server::new(runtime.clone(), spec)
        .deploy()
        .await
        .map(mcp_runtime::Server::into_handle)
        .map_err(mcp_runtime::Server::into_error)
}
