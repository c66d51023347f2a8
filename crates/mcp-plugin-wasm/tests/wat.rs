//! Components run for real by wasmtime: answers, limits, traps, bad files.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

mod components;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mcp_core::{BoxFuture, McpServer, Peer, RequestContext};
use mcp_plugin_wasm::{Component, ComponentFile, ErrorKind, Sandbox, WasmServer};
use mcp_protocol::raw::Raw;
use mcp_protocol::{Notification, Request, RequestId};

/// A client that keeps what it is sent.
#[derive(Default)]
struct Recorder(Mutex<Vec<Notification<'static>>>);

impl Peer for Recorder {
    fn notify(&self, notification: Notification<'static>) -> BoxFuture<'_, ()> {
        if let Ok(mut sent) = self.0.lock() {
            sent.push(notification);
        }
        Box::pin(std::future::ready(()))
    }
}

fn context() -> RequestContext {
    RequestContext::new(Arc::new(Recorder::default()))
}

fn request(id: i64, method: &str, params: serde_json::Value) -> Request<'static> {
    Request {
        id: RequestId::Number(id),
        method: method.to_owned().into(),
        params: Some(Raw::from_value(&params)),
    }
}

fn server(text: &str, sandbox: Sandbox) -> WasmServer {
    let component = Component::from_bytes(
        "test",
        Path::new("test.wat"),
        text.as_bytes(),
        sandbox.fuel.is_some(),
    )
    .unwrap_or_else(|e| panic!("the test component does not load: {e}"));
    WasmServer::new(Arc::new(ComponentFile::from(component)), sandbox)
        .unwrap_or_else(|e| panic!("the server cannot be made: {e}"))
}

fn call(id: i64) -> Request<'static> {
    request(
        id,
        "tools/call",
        serde_json::json!({"name": "hello", "arguments": {}}),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_component_answers_requests_side_by_side() {
    let server = server(&components::answering(), Sandbox::default());
    let init = server
        .handle_request(
            request(1, "initialize", serde_json::json!({"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}})),
            context(),
        )
        .await
        .unwrap_or_else(|e| panic!("initialize failed: {e:?}"));
    let init: serde_json::Value = serde_json::from_str(init.get()).unwrap_or_default();
    assert_eq!(init["serverInfo"]["name"], "wat");
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..16 {
        let server = server.clone();
        calls.spawn(async move { server.handle_request(call(10 + i), context()).await });
    }
    while let Some(result) = calls.join_next().await {
        let result = result
            .unwrap_or_else(|e| panic!("a call panicked: {e}"))
            .unwrap_or_else(|e| panic!("a call failed: {e:?}"));
        assert!(result.get().contains("hello from wat"), "{}", result.get());
    }
    let idle = server.idle_instances();
    assert!(
        (1..=Sandbox::DEFAULT_INSTANCES).contains(&idle),
        "instances kept: {idle}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_looping_plugin_is_stopped_by_its_deadline_and_replaced() {
    let sandbox = Sandbox {
        timeout: Duration::from_millis(200),
        ..Sandbox::default()
    };
    let server = server(&components::spinning(), sandbox);
    let started = std::time::Instant::now();
    let error = server
        .handle_request(call(1), context())
        .await
        .err()
        .unwrap_or_else(|| panic!("a spinning plugin answered"));
    assert!(
        error
            .message
            .contains("took longer than its timeout of 200 ms"),
        "{}",
        error.message
    );
    assert!(
        error.message.contains("wasm plugin `test` (test.wat)"),
        "{}",
        error.message
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(
        server.idle_instances(),
        0,
        "the stopped instance is dropped"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_looping_plugin_is_stopped_by_its_fuel() {
    let sandbox = Sandbox {
        fuel: Some(1_000_000),
        ..Sandbox::default()
    };
    let server = server(&components::spinning(), sandbox);
    let error = server
        .handle_request(call(1), context())
        .await
        .err()
        .unwrap_or_else(|| panic!("a spinning plugin answered"));
    assert!(
        error.message.contains("ran out of fuel (1000000 units)"),
        "{}",
        error.message
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trap_replaces_that_instance_only() {
    let server = server(&components::trapping(), Sandbox::default());
    for id in 0..3 {
        let error = server
            .handle_request(call(id), context())
            .await
            .err()
            .unwrap_or_else(|| panic!("a trapping plugin answered"));
        assert!(error.message.contains("it trapped"), "{}", error.message);
        assert!(error.message.contains("unreachable"), "{}", error.message);
    }
    // The same component that does not trap goes on in another server.
    let healthy = self::server(&components::answering(), Sandbox::default());
    assert!(healthy.handle_request(call(9), context()).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_past_the_limit_stops_the_plugin() {
    let sandbox = Sandbox {
        memory_bytes: 4 << 20,
        ..Sandbox::default()
    };
    let server = server(&components::hungry(), sandbox);
    let error = server
        .handle_request(call(1), context())
        .await
        .err()
        .unwrap_or_else(|| panic!("a plugin past its memory answered"));
    assert!(
        error
            .message
            .contains("more than its memory limit of 4 MiB"),
        "{}",
        error.message
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_that_traps_at_start_is_reported() {
    let server = server(&components::trapping_at_start(), Sandbox::default());
    let error = server
        .warm_up()
        .await
        .err()
        .unwrap_or_else(|| panic!("a plugin that traps at start started"));
    assert!(
        error.message.contains("it could not start"),
        "{}",
        error.message
    );
    let error = server
        .handle_request(call(1), context())
        .await
        .err()
        .unwrap_or_else(|| panic!("a plugin that traps at start answered"));
    assert!(
        error.message.contains("it could not start"),
        "{}",
        error.message
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_that_is_not_json_is_an_error() {
    let server = server(&components::babbling(), Sandbox::default());
    let error = server
        .handle_request(call(1), context())
        .await
        .err()
        .unwrap_or_else(|| panic!("a babbling plugin answered"));
    assert!(
        error.message.contains("not a JSON-RPC response"),
        "{}",
        error.message
    );
    assert!(
        error.message.contains("wasm plugin `test`"),
        "{}",
        error.message
    );
}

#[test]
fn files_that_are_not_components_are_refused_with_their_path() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let corrupt = dir.path().join("corrupt.wasm");
    std::fs::write(&corrupt, b"\0asm\x0d\0\x01\0garbage").unwrap_or_else(|e| panic!("{e}"));
    let error = Component::load("corrupt", &corrupt, false)
        .err()
        .unwrap_or_else(|| panic!("a corrupt file loaded"));
    assert_eq!(error.kind(), ErrorKind::Invalid);
    assert_eq!(error.path(), corrupt);
    assert!(error.to_string().contains("corrupt.wasm"), "{error}");

    let missing = dir.path().join("missing.wasm");
    let error = Component::load("missing", &missing, false)
        .err()
        .unwrap_or_else(|| panic!("a missing file loaded"));
    assert_eq!(error.kind(), ErrorKind::Unreadable);

    // A core module is not a component.
    let module = dir.path().join("module.wat");
    std::fs::write(&module, "(module)").unwrap_or_else(|e| panic!("{e}"));
    let error = Component::load("module", &module, false)
        .err()
        .unwrap_or_else(|| panic!("a core module loaded"));
    assert_eq!(error.kind(), ErrorKind::Invalid);

    // A component of another world: it exports no `handle`.
    let other = dir.path().join("other.wat");
    std::fs::write(&other, "(component)").unwrap_or_else(|e| panic!("{e}"));
    let error = Component::load("other", &other, false)
        .err()
        .unwrap_or_else(|| panic!("a component without handle loaded"));
    assert_eq!(error.kind(), ErrorKind::Incompatible);
    assert!(
        error.message().contains("mcp-manager:plugin/server"),
        "{error}"
    );
}

#[test]
fn a_granted_folder_that_is_not_there_is_refused() {
    let component = Component::from_bytes(
        "test",
        Path::new("t.wat"),
        components::answering().as_bytes(),
        false,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(!component.fuel());
    let component = Arc::new(ComponentFile::from(component));
    // A fuel limit on a component compiled without fuel metering.
    let metered = Sandbox {
        fuel: Some(1_000),
        ..Sandbox::default()
    };
    let error = WasmServer::new(component.clone(), metered)
        .err()
        .unwrap_or_else(|| panic!("fuel on an unmetered component"));
    assert_eq!(error.kind(), ErrorKind::Engine);
    assert!(error.message().contains("meter fuel"), "{error}");
    let sandbox = Sandbox {
        dirs: vec![mcp_plugin_wasm::DirGrant {
            path: "/nonexistent/mcp-manager-test".into(),
            write: false,
        }],
        ..Sandbox::default()
    };
    let error = WasmServer::new(component, sandbox)
        .err()
        .unwrap_or_else(|| panic!("a missing folder was granted"));
    assert_eq!(error.kind(), ErrorKind::Grant);
    assert!(
        error.message().contains("/nonexistent/mcp-manager-test"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_compiles_at_the_first_message_once_for_all_its_servers() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.wat");
    std::fs::write(&good, components::answering()).unwrap();
    let file = Arc::new(ComponentFile::new("good", &good, false));
    file.check().unwrap();
    let first = WasmServer::new(file.clone(), Sandbox::default()).unwrap();
    let second = WasmServer::new(file.clone(), Sandbox::default()).unwrap();
    let (a, b) = tokio::join!(
        first.handle_request(call(1), context()),
        second.handle_request(call(2), context())
    );
    assert!(a.unwrap().get().contains("hello from wat"));
    assert!(b.unwrap().get().contains("hello from wat"));
    let one = file.compiled().await.unwrap();
    let again = file.compiled().await.unwrap();
    assert!(Arc::ptr_eq(&one, &again), "compiled twice");

    // A file whose header looks right but whose body does not compile:
    // the server is made, and its first message says why it cannot run.
    let broken = dir.path().join("broken.wasm");
    std::fs::write(&broken, b"\0asm\x0d\0\x01\0garbage").unwrap();
    let file = Arc::new(ComponentFile::new("broken", &broken, false));
    file.check().unwrap();
    let server = WasmServer::new(file, Sandbox::default()).unwrap();
    let error = server.handle_request(call(3), context()).await.unwrap_err();
    assert!(
        error.message.contains("wasm plugin `broken`"),
        "{}",
        error.message
    );
    assert!(error.message.contains("broken.wasm"), "{}", error.message);
    assert!(
        error.message.contains("could not start"),
        "{}",
        error.message
    );

    let module = dir.path().join("module.wasm");
    std::fs::write(&module, b"\0asm\x01\0\0\0").unwrap();
    let error = ComponentFile::new("module", &module, false)
        .check()
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Invalid);
    assert!(error.to_string().contains("module.wasm"), "{error}");
    let error = ComponentFile::new("gone", &dir.path().join("gone.wasm"), false)
        .check()
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unreadable);
}
