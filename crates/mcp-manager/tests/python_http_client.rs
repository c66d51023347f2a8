//! The official MCP Python SDK client (from `cargo xtask peers`) against
//! `mcp-manager serve --http` on its built-in default config, then SIGTERM:
//! the gateway exits 0 and leaves no child process behind.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use support::run_python_client;

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

/// The pids whose parent is `parent`, from `/proc`.
fn children_of(parent: u32) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // `pid (comm) state ppid ...`; comm may hold spaces, so read after `)`.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(parent) {
            found.push(pid);
        }
    }
    found
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        !stat
            .rsplit_once(')')
            .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
    })
}

#[test]
fn the_python_sdk_client_uses_the_http_gateway() {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_mcp-manager"))
        .args(["serve", "--http", &addr])
        .env(
            "XDG_DATA_HOME",
            concat!(env!("CARGO_TARGET_TMPDIR"), "/data"),
        )
        .env_remove("MCP_MANAGER_AUTH_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let gateway = Gateway(child);
    let (lines_tx, lines) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    let mut log = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    let listening = format!("mcp-manager: listening on http://{addr}/mcp");
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => {
                let done = line == listening;
                log.push(line);
                if done {
                    break;
                }
            }
            Err(_) => panic!("no `{listening}` line:\n{}", log.join("\n")),
        }
    }
    let servers = children_of(gateway.0.id());
    assert!(!servers.is_empty(), "the `child` server is not running");

    let url = format!("http://{addr}/mcp");
    let (report, _) = run_python_client("python_http_client.py", &[&url]);
    assert_eq!(report["protocol"], "2025-11-25");
    assert_eq!(report["server"], "mcp-manager");
    let tools: Vec<&str> = report["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    for name in [
        "everything__test_simple_text",
        "everything__test_tool_with_progress",
        "child__test_simple_text",
    ] {
        assert!(tools.contains(&name), "{name} missing from {tools:?}");
    }
    assert_eq!(
        report["call"],
        "This is a simple text response for testing."
    );
    assert_eq!(report["progress"], serde_json::json!([0.0, 50.0, 100.0]));

    // SIGTERM: a clean exit, and the child server is gone with it.
    let mut gateway = gateway;
    let killed = Command::new("kill")
        .args(["-TERM", &gateway.0.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = gateway.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the gateway did not stop");
        std::thread::sleep(Duration::from_millis(50));
    };
    reader.join().unwrap();
    log.extend(lines.try_iter());
    assert!(status.success(), "exit {status:?}:\n{}", log.join("\n"));
    let deadline = Instant::now() + Duration::from_secs(5);
    while servers.iter().any(|pid| alive(*pid)) {
        assert!(Instant::now() < deadline, "left behind: {servers:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
