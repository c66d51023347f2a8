//! The runtime with an in-process server: requests, notifications both
//! ways, cancellation that reaches the handler, and list caching. Once the
//! server is ready, requests are made on the caller's task; these tests
//! hold that path to what the connection does for any other transport
//! (timeouts that progress starts over, progress tokens, sessions, a
//! panicking handler).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use mcp_core::{BoxFuture, HandlerResult, McpServer, RequestContext, ServerId};
use mcp_protocol::mcp::{CallToolParams, View};
use mcp_protocol::raw::Raw;
use mcp_protocol::{ErrorObject, Notification, Request};
use mcp_runtime::transport::inprocess::InProcessConnector;
use mcp_runtime::{CallOptions, ErrorKind, ListKind, McpRuntime, ServerSpec};
use serde_json::{Value, json};
use tokio::sync::mpsc;

#[derive(Default)]
struct TestServer {
    tools_listed: AtomicUsize,
    dropped_calls: AtomicUsize,
    /// The session of the `initialize` request.
    initialized_in: std::sync::OnceLock<Option<u64>>,
}

/// Counts a call whose future was dropped before it finished.
struct DropCounter<'a>(&'a AtomicUsize, bool);

impl Drop for DropCounter<'_> {
    fn drop(&mut self) {
        if !self.1 {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
}

impl McpServer for TestServer {
    fn handle_request(
        &self,
        request: Request<'static>,
        context: RequestContext,
    ) -> BoxFuture<'_, HandlerResult> {
        Box::pin(async move {
            match &*request.method {
                "initialize" => {
                    let _ = self.initialized_in.set(context.session());
                    Ok(Raw::from_value(&json!({
                    "protocolVersion": "2025-11-25",
                    "capabilities": {"tools": {"listChanged": true}},
                    "serverInfo": {"name": "test", "version": "0"}
                    })))
                }
                "tools/list" => {
                    self.tools_listed.fetch_add(1, Ordering::SeqCst);
                    Ok(Raw::from_value(
                        &json!({"tools": [{"name": "echo", "inputSchema": {"type": "object"}}]}),
                    ))
                }
                "tools/call" => {
                    let call = CallToolParams::from_params(request.params)
                        .map_err(|e| ErrorObject::new(e.code(), e.message().to_owned()))?;
                    match &*call.name {
                        "echo" => Ok(Raw::from_value(
                            &json!({"echo": call.arguments.map(|a| a.get().to_owned())}),
                        )),
                        "announce" => {
                            context
                                .notify(Notification {
                                    method: "notifications/tools/list_changed".into(),
                                    params: None,
                                })
                                .await;
                            Ok(Raw::from_value(&json!({})))
                        }
                        "progress" => {
                            let token = call.meta.and_then(|m| m.progress_token).unwrap();
                            for step in 1..=3 {
                                let params = json!({"progressToken": token, "progress": step});
                                context
                                    .notify(Notification {
                                        method: "notifications/progress".into(),
                                        params: Some(Raw::from_value(&params)),
                                    })
                                    .await;
                            }
                            Ok(Raw::from_value(&json!({"done": true})))
                        }
                        "ticks" => {
                            // Five ticks 60 ms apart, each with progress.
                            let token = call.meta.and_then(|m| m.progress_token).unwrap();
                            for step in 1..=5 {
                                tokio::time::sleep(Duration::from_millis(60)).await;
                                let params = json!({"progressToken": token, "progress": step});
                                context
                                    .notify(Notification {
                                        method: "notifications/progress".into(),
                                        params: Some(Raw::from_value(&params)),
                                    })
                                    .await;
                            }
                            Ok(Raw::from_value(&json!({"ticked": 5})))
                        }
                        "token" => Ok(Raw::from_value(&json!({
                            "token": call.meta.and_then(|m| m.progress_token).is_some()
                        }))),
                        "session" => Ok(Raw::from_value(&json!({
                            "same": self.initialized_in.get() == Some(&context.session()),
                            "some": context.session().is_some(),
                        }))),
                        "panic" => panic!("a handler that panics"),
                        "forever" => {
                            let mut counter = DropCounter(&self.dropped_calls, false);
                            tokio::time::sleep(Duration::from_secs(60)).await;
                            counter.1 = true;
                            Ok(Raw::from_value(&json!({})))
                        }
                        other => Err(ErrorObject::new(-32602, format!("no tool {other}"))),
                    }
                }
                other => Err(ErrorObject::new(-32601, format!("no method {other}"))),
            }
        })
    }

    fn handle_notification(
        &self,
        _: Notification<'static>,
        _: RequestContext,
    ) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

fn spec(server: Arc<TestServer>) -> ServerSpec {
    let id = ServerId::new("inproc").unwrap();
    ServerSpec::new(id, Arc::new(InProcessConnector::new("inproc", server)))
}

fn call(name: &str, args: Value) -> Option<Raw<'static>> {
    Some(Raw::from_value(&json!({"name": name, "arguments": args})))
}

#[tokio::test]
async fn requests_through_a_server_found_by_name_and_through_the_handle() {
    let runtime = McpRuntime::start();
    let server = Arc::new(TestServer::default());
    let handle = common::deploy(&runtime, spec(server)).await.unwrap();
    let id = handle.id().clone();
    let found = runtime.server(&id).await.unwrap();
    assert_eq!(found.id(), &id);
    let result = found
        .request(
            "tools/call",
            call("echo", json!({"a": 1})),
            CallOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(result.get(), r#"{"echo":"{\"a\":1}"}"#);
    let error = handle
        .request(
            "tools/call",
            call("nope", json!({})),
            CallOptions::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(error.rpc_error().unwrap().message, "no tool nope");
    let missing = ServerId::new("missing").unwrap();
    let error = runtime.server(&missing).await.unwrap_err();
    assert_eq!(*error.kind(), ErrorKind::NotFound);
    let again = common::deploy(&runtime, spec(Arc::new(TestServer::default())))
        .await
        .unwrap_err();
    assert_eq!(*again.kind(), ErrorKind::AlreadyExists);
    runtime.shutdown().await;
    let after = runtime.server(&id).await.unwrap_err();
    assert_eq!(*after.kind(), ErrorKind::Shutdown);
}

#[tokio::test]
async fn progress_from_an_in_process_server() {
    let runtime = McpRuntime::start();
    let handle = common::deploy(&runtime, spec(Arc::new(TestServer::default())))
        .await
        .unwrap();
    let (sink, mut progress) = mpsc::channel(8);
    let params = json!({"name": "progress", "_meta": {"progressToken": 42}});
    let options = CallOptions {
        progress: Some(sink),
        ..CallOptions::default()
    };
    handle
        .request("tools/call", Some(Raw::from_value(&params)), options)
        .await
        .unwrap();
    let mut steps = Vec::new();
    while let Ok(n) = progress.try_recv() {
        let value: Value = serde_json::from_str(n.params.unwrap().get()).unwrap();
        assert_eq!(value["progressToken"], 42);
        steps.push(value["progress"].as_u64().unwrap());
    }
    assert_eq!(steps, [1, 2, 3]);
    runtime.shutdown().await;
}

#[tokio::test]
async fn cancellation_drops_the_handler() {
    let runtime = McpRuntime::start();
    let server = Arc::new(TestServer::default());
    let handle = common::deploy(&runtime, spec(server.clone()))
        .await
        .unwrap();
    let forever = handle.request(
        "tools/call",
        call("forever", json!({})),
        CallOptions::default(),
    );
    assert!(
        tokio::time::timeout(Duration::from_millis(50), forever)
            .await
            .is_err()
    );
    for _ in 0..100 {
        if server.dropped_calls.load(Ordering::SeqCst) == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(server.dropped_calls.load(Ordering::SeqCst), 1);
    runtime.shutdown().await;
}

#[tokio::test]
async fn lists_are_cached_until_the_server_announces_a_change() {
    let runtime = McpRuntime::start();
    let server = Arc::new(TestServer::default());
    let mut events = runtime.subscribe();
    let handle = common::deploy(&runtime, spec(server.clone()))
        .await
        .unwrap();
    let tools = handle.list_all(ListKind::Tools).await.unwrap();
    assert_eq!(tools.len(), 1);
    handle.list_all(ListKind::Tools).await.unwrap();
    assert_eq!(server.tools_listed.load(Ordering::SeqCst), 1);
    // No prompts capability: no request at all.
    assert!(handle.list_all(ListKind::Prompts).await.unwrap().is_empty());

    handle
        .request(
            "tools/call",
            call("announce", json!({})),
            CallOptions::default(),
        )
        .await
        .unwrap();
    // The caller who asked for the change sees it in its next list, even
    // before the notification has been published.
    handle.list_all(ListKind::Tools).await.unwrap();
    assert_eq!(server.tools_listed.load(Ordering::SeqCst), 2);
    let event = events.recv().await.unwrap();
    assert_eq!(
        event.notification.method,
        "notifications/tools/list_changed"
    );
    assert_eq!(event.server.as_str(), "inproc");
    runtime.shutdown().await;
}

/// Calls `tool` with `params` (its `_meta` and arguments) and `options`.
async fn call_with(
    handle: &mcp_runtime::ServerHandle,
    params: Value,
    options: CallOptions,
) -> mcp_runtime::Result<Value> {
    let raw = handle
        .request("tools/call", Some(Raw::from_value(&params)), options)
        .await?;
    Ok(raw.parse::<Value>().unwrap())
}

#[tokio::test(start_paused = true)]
async fn progress_starts_the_timeout_over_and_silence_ends_the_request() {
    let runtime = McpRuntime::start();
    let server = Arc::new(TestServer::default());
    let handle = common::deploy(&runtime, spec(server.clone()))
        .await
        .unwrap();
    // 300 ms of work within a 100 ms timeout: progress every 60 ms keeps it.
    let (sink, mut progress) = mpsc::channel(8);
    let options = CallOptions {
        timeout: Some(Duration::from_millis(100)),
        progress: Some(sink),
        ..CallOptions::default()
    };
    let params = json!({"name": "ticks", "_meta": {"progressToken": "t"}});
    let result = call_with(&handle, params, options).await.unwrap();
    assert_eq!(result, json!({"ticked": 5}));
    let mut tokens = Vec::new();
    while let Ok(n) = progress.try_recv() {
        let value: Value = serde_json::from_str(n.params.unwrap().get()).unwrap();
        tokens.push(value["progressToken"].clone());
    }
    assert_eq!(tokens, vec![json!("t"); 5], "the caller's own token");

    // Silence: the request times out and its handler is dropped.
    let options = CallOptions {
        timeout: Some(Duration::from_millis(100)),
        ..CallOptions::default()
    };
    let error = call_with(&handle, json!({"name": "forever"}), options)
        .await
        .unwrap_err();
    assert_eq!(*error.kind(), ErrorKind::Timeout, "{error}");
    assert_eq!(server.dropped_calls.load(Ordering::SeqCst), 1);
    runtime.shutdown().await;
}

#[tokio::test]
async fn a_progress_token_reaches_the_server_only_with_a_sink_for_its_progress() {
    let runtime = McpRuntime::start();
    let handle = common::deploy(&runtime, spec(Arc::new(TestServer::default())))
        .await
        .unwrap();
    let params = json!({"name": "token", "_meta": {"progressToken": 7}});
    let without = call_with(&handle, params.clone(), CallOptions::default());
    assert_eq!(without.await.unwrap(), json!({"token": false}));
    let (sink, _progress) = mpsc::channel(8);
    let options = CallOptions {
        progress: Some(sink),
        ..CallOptions::default()
    };
    assert_eq!(
        call_with(&handle, params, options).await.unwrap(),
        json!({"token": true})
    );
    runtime.shutdown().await;
}

#[tokio::test]
async fn every_request_belongs_to_the_session_of_the_handshake() {
    let runtime = McpRuntime::start();
    let handle = common::deploy(&runtime, spec(Arc::new(TestServer::default())))
        .await
        .unwrap();
    let seen = call_with(&handle, json!({"name": "session"}), CallOptions::default());
    assert_eq!(seen.await.unwrap(), json!({"same": true, "some": true}));
    runtime.shutdown().await;
}

#[tokio::test]
async fn a_panicking_handler_answers_an_internal_error_and_the_server_serves_on() {
    let runtime = McpRuntime::start();
    let handle = common::deploy(&runtime, spec(Arc::new(TestServer::default())))
        .await
        .unwrap();
    let error = call_with(&handle, json!({"name": "panic"}), CallOptions::default())
        .await
        .unwrap_err();
    assert_eq!(error.rpc_error().map(|e| e.code), Some(-32603), "{error}");
    let echoed = call_with(
        &handle,
        json!({"name": "echo", "arguments": {}}),
        CallOptions::default(),
    );
    assert_eq!(echoed.await.unwrap(), json!({"echo": "{}"}));
    runtime.shutdown().await;
}

/// A client session of the given key, closed when its flag says so.
struct ClientSession(u64, Arc<std::sync::atomic::AtomicBool>);

impl mcp_core::Peer for ClientSession {
    fn notify(&self, _: Notification<'static>) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }

    fn is_closed(&self) -> bool {
        self.1.load(Ordering::SeqCst)
    }

    fn session(&self) -> Option<u64> {
        Some(self.0)
    }
}

#[tokio::test]
async fn a_per_client_server_runs_an_instance_for_each_client_session_until_it_ends() {
    let runtime = McpRuntime::start();
    let server = Arc::new(TestServer::default());
    let mut spec = spec(server.clone());
    spec.sessions = mcp_core::config::SessionMode::PerClient;
    let handle = common::deploy(&runtime, spec).await.unwrap();
    let closed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let client = |key: u64, closed: &Arc<std::sync::atomic::AtomicBool>| CallOptions {
        requester: Some(RequestContext::new(Arc::new(ClientSession(
            key,
            closed.clone(),
        )))),
        ..CallOptions::default()
    };
    let open = Arc::new(std::sync::atomic::AtomicBool::new(false));
    for options in [client(1, &closed), client(2, &open), client(1, &closed)] {
        handle
            .request("tools/call", call("echo", json!({})), options)
            .await
            .unwrap();
    }
    // Requests of no client session go to the configured instance.
    handle
        .request(
            "tools/call",
            call("echo", json!({})),
            CallOptions::default(),
        )
        .await
        .unwrap();
    let status = |runtime: &McpRuntime| {
        let runtime = runtime.clone();
        async move { runtime.list().await.unwrap()[0].client_instances }
    };
    assert_eq!(status(&runtime).await, 2, "one each for sessions 1 and 2");
    // Session 1 ends: its instance is stopped; session 2's lives on.
    closed.store(true, Ordering::SeqCst);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while status(&runtime).await != 1 {
        assert!(tokio::time::Instant::now() < deadline, "not reaped");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    runtime.shutdown().await;
}
