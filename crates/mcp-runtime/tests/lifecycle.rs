//! A server's life through the type-state API, on an in-process server
//! that can be told how to behave: paged lists and lists that break the
//! rules, notifications to every instance, a rolling restart, a failed
//! deploy retried, and a runtime asked for things after it has stopped.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use mcp_core::{BoxFuture, HandlerResult, McpServer, Peer, RequestContext, ServerId};
use mcp_protocol::raw::Raw;
use mcp_protocol::{ErrorObject, Notification, Request};
use mcp_runtime::transport::inprocess::InProcessConnector;
use mcp_runtime::{CallOptions, ErrorKind, ListKind, McpRuntime, Server, ServerSpec, ServerState};
use serde_json::{Value, json};

/// How `tools/list` answers.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Lists {
    /// Three pages, one tool each, linked by cursors.
    Paged,
    /// A result that is not an object.
    NotAnObject,
    /// An object without `tools`.
    NoArray,
    /// A next page, always.
    Endless,
}

struct Scripted {
    lists: Lists,
    /// Refuse `initialize` while set.
    refuse: AtomicBool,
    initialized: AtomicUsize,
    notified: AtomicUsize,
    listed: AtomicUsize,
}

impl Scripted {
    fn new(lists: Lists) -> Arc<Self> {
        Arc::new(Self {
            lists,
            refuse: AtomicBool::new(false),
            initialized: AtomicUsize::new(0),
            notified: AtomicUsize::new(0),
            listed: AtomicUsize::new(0),
        })
    }

    fn page(&self, cursor: Option<&str>) -> Value {
        self.listed.fetch_add(1, Ordering::SeqCst);
        let tool = |name: &str| json!({"name": name, "inputSchema": {"type": "object"}});
        match (self.lists, cursor) {
            (Lists::Paged, None) => json!({"tools": [tool("a")], "nextCursor": "2"}),
            (Lists::Paged, Some("2")) => json!({"tools": [tool("b")], "nextCursor": "3"}),
            (Lists::Paged, Some(_)) => json!({"tools": [tool("c")]}),
            (Lists::NotAnObject, _) => json!([1, 2]),
            (Lists::NoArray, _) => json!({"nextCursor": "x"}),
            (Lists::Endless, _) => json!({"tools": [], "nextCursor": "again"}),
        }
    }
}

impl McpServer for Scripted {
    fn handle_request(
        &self,
        request: Request<'static>,
        context: RequestContext,
    ) -> BoxFuture<'_, HandlerResult> {
        Box::pin(async move {
            match &*request.method {
                // Asks the client, and answers with what it said.
                "ask" => {
                    let asked = Raw::from_value(&json!({"question": "why?"}));
                    let answer = context.request("elicitation/create", Some(asked)).await?;
                    Ok(Raw::from_value(
                        &json!({"client said": answer.parse::<Value>().unwrap()}),
                    ))
                }
                "initialize" if self.refuse.load(Ordering::SeqCst) => {
                    Err(ErrorObject::new(-32603, "not today"))
                }
                "initialize" => {
                    self.initialized.fetch_add(1, Ordering::SeqCst);
                    Ok(Raw::from_value(&json!({
                        "protocolVersion": "2025-11-25",
                        "capabilities": {"tools": {"listChanged": true}},
                        "serverInfo": {"name": "scripted", "version": "1"}
                    })))
                }
                "tools/list" => {
                    let params: Value = request.params.map_or(Value::Null, |p| p.parse().unwrap());
                    let cursor = params.get("cursor").and_then(Value::as_str);
                    Ok(Raw::from_value(&self.page(cursor)))
                }
                "ping" => Ok(Raw::from_value(&json!({}))),
                other => Err(ErrorObject::new(-32601, format!("no method {other}"))),
            }
        })
    }

    fn handle_notification(
        &self,
        notification: Notification<'static>,
        _: RequestContext,
    ) -> BoxFuture<'_, ()> {
        if notification.method == "notifications/roots/list_changed" {
            self.notified.fetch_add(1, Ordering::SeqCst);
        }
        Box::pin(async {})
    }
}

/// A client that answers every request with what it was asked and how.
struct Answering;

impl Peer for Answering {
    fn notify(&self, _: Notification<'static>) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }

    fn request(&self, method: &str, params: Option<Raw<'static>>) -> BoxFuture<'_, HandlerResult> {
        let params: Value = params.map_or(Value::Null, |p| p.parse().unwrap());
        let answer = json!({"method": method, "params": params});
        Box::pin(async move { Ok(Raw::from_value(&answer)) })
    }
}

fn spec(server: &Arc<Scripted>, instances: u32) -> ServerSpec {
    let id = ServerId::new("scripted").unwrap();
    let mut spec = ServerSpec::new(
        id,
        Arc::new(InProcessConnector::new("scripted", server.clone())),
    );
    spec.instances = NonZeroU32::new(instances).unwrap();
    spec
}

async fn deploy(
    runtime: &McpRuntime,
    server: &Arc<Scripted>,
    instances: u32,
) -> Server<mcp_core::state::Deployed> {
    match Server::new(runtime.clone(), spec(server, instances))
        .deploy()
        .await
    {
        Ok(deployed) => deployed,
        Err(failed) => panic!("deploy failed: {}", failed.error()),
    }
}

#[tokio::test]
async fn lists_are_gathered_across_pages() {
    let runtime = McpRuntime::start();
    let server = Scripted::new(Lists::Paged);
    let deployed = deploy(&runtime, &server, 1).await;
    let tools = deployed.handle().list_all(ListKind::Tools).await.unwrap();
    let names: Vec<Value> = tools
        .iter()
        .map(|raw| raw.parse::<Value>().unwrap()["name"].clone())
        .collect();
    assert_eq!(names, [json!("a"), json!("b"), json!("c")]);
    assert_eq!(server.listed.load(Ordering::SeqCst), 3);
    runtime.shutdown().await;
}

#[tokio::test]
async fn lists_that_break_the_rules_are_protocol_errors() {
    let cases = [
        (Lists::NotAnObject, "not an object"),
        (Lists::NoArray, "no `tools` array"),
        (Lists::Endless, "kept returning a next page"),
    ];
    for (lists, expected) in cases {
        let runtime = McpRuntime::start();
        let deployed = deploy(&runtime, &Scripted::new(lists), 1).await;
        let error = deployed
            .handle()
            .list_all(ListKind::Tools)
            .await
            .expect_err("a broken list");
        assert_eq!(*error.kind(), ErrorKind::Protocol);
        assert!(error.message().contains(expected), "{error}");
        runtime.shutdown().await;
    }
}

#[tokio::test]
async fn a_notification_reaches_every_instance_until_the_server_is_gone() {
    let runtime = McpRuntime::start();
    let server = Scripted::new(Lists::Paged);
    let deployed = deploy(&runtime, &server, 2).await;
    let handle = deployed.handle().clone();
    let roots = || Notification {
        method: "notifications/roots/list_changed".into(),
        params: None,
    };
    handle.notify(roots()).await.unwrap();
    for _ in 0..100 {
        if server.notified.load(Ordering::SeqCst) == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(
        server.notified.load(Ordering::SeqCst),
        2,
        "once per instance"
    );
    let configured = deployed.undeploy().await.unwrap();
    assert_eq!(configured.id().as_str(), "scripted");
    let error = handle.notify(roots()).await.expect_err("no instance left");
    assert_eq!(*error.kind(), ErrorKind::Unavailable);
    runtime.shutdown().await;
}

#[tokio::test]
async fn a_restart_brings_new_instances_first_and_announces_every_list() {
    let runtime = McpRuntime::start();
    let server = Scripted::new(Lists::Paged);
    let mut events = runtime.subscribe();
    let deployed = deploy(&runtime, &server, 2).await;
    deployed.handle().list_all(ListKind::Tools).await.unwrap();
    let listed = server.listed.load(Ordering::SeqCst);
    deployed.restart().await.unwrap();
    assert_eq!(
        server.initialized.load(Ordering::SeqCst),
        4,
        "two more started"
    );
    let mut announced = Vec::new();
    while let Ok(event) = events.try_recv() {
        announced.push(event.notification.method.into_owned());
    }
    announced.sort();
    assert_eq!(
        announced,
        [
            "notifications/prompts/list_changed",
            "notifications/resources/list_changed",
            "notifications/tools/list_changed",
        ]
    );
    // The cached list was dropped: it is fetched again.
    deployed.handle().list_all(ListKind::Tools).await.unwrap();
    assert_eq!(server.listed.load(Ordering::SeqCst), listed + 3);
    deployed
        .request("ping", None, CallOptions::default())
        .await
        .unwrap();
    runtime.shutdown().await;
}

#[tokio::test]
async fn a_failed_deploy_keeps_its_reason_and_can_be_retried() {
    let runtime = McpRuntime::start();
    let server = Scripted::new(Lists::Paged);
    server.refuse.store(true, Ordering::SeqCst);
    let failed = match Server::new(runtime.clone(), spec(&server, 1))
        .deploy()
        .await
    {
        Ok(_) => panic!("the start was refused"),
        Err(failed) => failed,
    };
    assert!(format!("{failed:?}").contains("failed"), "{failed:?}");
    assert!(
        failed.error().message().contains("not today"),
        "{}",
        failed.error()
    );
    let failed = match failed.retry().await {
        Ok(_) => panic!("still refused"),
        Err(failed) => failed,
    };
    server.refuse.store(false, Ordering::SeqCst);
    let configured = failed.into_configured();
    assert_eq!(configured.spec().id.as_str(), "scripted");
    let deployed = match configured.deploy().await {
        Ok(deployed) => deployed,
        Err(failed) => panic!("{}", failed.error()),
    };
    assert!(format!("{deployed:?}").contains("deployed"), "{deployed:?}");
    deployed.scale(NonZeroU32::new(3).unwrap()).await.unwrap();
    let status = runtime.list().await.unwrap();
    assert_eq!(status.len(), 1);
    runtime.shutdown().await;
}

#[tokio::test]
async fn a_stopped_runtime_refuses_politely() {
    let runtime = McpRuntime::start();
    let unknown = ServerId::new("nobody").unwrap();
    let error = runtime.server(&unknown).await.expect_err("not deployed");
    assert_eq!(*error.kind(), ErrorKind::NotFound);
    runtime.shutdown().await;
    let server = Scripted::new(Lists::Paged);
    assert!(
        Server::new(runtime.clone(), spec(&server, 1))
            .deploy()
            .await
            .is_err()
    );
    assert!(runtime.server(&unknown).await.is_err());
    assert!(
        runtime
            .list()
            .await
            .map_or(true, |servers| servers.is_empty())
    );
    assert!(
        runtime
            .metrics()
            .await
            .map_or(true, |metrics| metrics.servers.is_empty())
    );
}

#[test]
fn states_have_short_names() {
    let names: Vec<&str> = [
        ServerState::Starting,
        ServerState::Running,
        ServerState::Restarting {
            attempt: 1,
            reason: "x".to_owned(),
        },
        ServerState::Failed {
            reason: "y".to_owned(),
        },
        ServerState::Stopped,
    ]
    .iter()
    .map(ServerState::name)
    .collect();
    assert_eq!(
        names,
        ["starting", "running", "restarting", "failed", "stopped"]
    );
    let server = Scripted::new(Lists::Paged);
    let described = format!("{:?}", spec(&server, 2));
    assert!(
        described.contains("scripted") && described.contains("instances: 2"),
        "{described}"
    );
}

#[tokio::test]
async fn what_a_server_asks_goes_to_the_callers_client_and_back() {
    let runtime = McpRuntime::start();
    let deployed = deploy(&runtime, &Scripted::new(Lists::Paged), 1).await;
    let options = CallOptions {
        requester: Some(RequestContext::new(Arc::new(Answering))),
        ..CallOptions::default()
    };
    let result = deployed.request("ask", None, options).await.unwrap();
    assert_eq!(
        result.parse::<Value>().unwrap(),
        json!({"client said": {"method": "elicitation/create", "params": {"question": "why?"}}})
    );
    // Without a requester the server is told nobody can be asked.
    let error = deployed
        .request("ask", None, CallOptions::default())
        .await
        .expect_err("nobody to ask");
    assert_eq!(error.rpc_error().map(|e| e.code), Some(-32601), "{error}");
    runtime.shutdown().await;
}

#[tokio::test]
async fn a_server_still_starting_is_unavailable_not_missing() {
    let runtime = McpRuntime::start();
    let server = Scripted::new(Lists::Paged);
    let mut spec = spec(&server, 1);
    // A connector that takes its time, so the server is seen while it starts.
    spec.connector = Arc::new(Slow(spec.connector.clone()));
    let deploying = tokio::spawn(Server::new(runtime.clone(), spec).deploy());
    let id = ServerId::new("scripted").unwrap();
    let mut seen_starting = false;
    for _ in 0..50 {
        match runtime.server(&id).await {
            Err(error) if *error.kind() == ErrorKind::Unavailable => {
                assert!(error.message().contains("is starting"), "{error}");
                seen_starting = true;
                break;
            }
            _ => tokio::time::sleep(std::time::Duration::from_millis(5)).await,
        }
    }
    assert!(seen_starting, "the server was seen while it started");
    assert!(deploying.await.unwrap().is_ok());
    runtime.shutdown().await;
}

/// A connector that waits a little before it connects.
struct Slow(Arc<dyn mcp_runtime::transport::Connector>);

impl mcp_runtime::transport::Connector for Slow {
    fn connect(&self) -> BoxFuture<'_, mcp_runtime::Result<mcp_runtime::transport::TransportLink>> {
        Box::pin(async move {
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            self.0.connect().await
        })
    }

    fn describe(&self) -> String {
        self.0.describe()
    }
}
