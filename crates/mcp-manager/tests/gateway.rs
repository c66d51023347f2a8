//! The gateway's aggregation on real built-in servers: namespaces, an empty
//! namespace, a tool filter, clashes, routing, renamed resources and their
//! updates, lists that follow a server's changes, and a server that is down.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mcp_core::{BoxFuture, ManagerConfig, McpServer, Peer, RequestContext};
use mcp_gateway::{Backend, Gateway};
use mcp_protocol::raw::Raw;
use mcp_protocol::{Notification, Request, RequestId};
use mcp_runtime::McpRuntime;
use serde_json::{Value, json};

struct Quiet;

impl Peer for Quiet {
    fn notify(&self, _: Notification<'static>) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

async fn ask(gateway: &Gateway, method: &str, params: Value) -> Result<Value, (i64, String)> {
    ask_through(gateway, Arc::new(Quiet), method, params).await
}

/// Sends a request to the gateway from the client behind `peer`.
async fn ask_through(
    gateway: &Gateway,
    peer: Arc<dyn Peer>,
    method: &str,
    params: Value,
) -> Result<Value, (i64, String)> {
    let request = Request {
        id: RequestId::Number(1),
        method: method.to_owned().into(),
        params: Some(Raw::from_value(&params)),
    };
    gateway
        .handle_request(request, RequestContext::new(peer))
        .await
        .map(|raw| raw.parse().unwrap())
        .map_err(|e| (e.code, e.message.into_owned()))
}

/// Tells the gateway that the client behind `peer` is initialized.
async fn initialized(gateway: &Gateway, peer: Arc<dyn Peer>) {
    let notification = Notification {
        method: "notifications/initialized".into(),
        params: None,
    };
    gateway
        .handle_notification(notification, RequestContext::new(peer))
        .await;
}

/// A gateway forwarding notifications, over one built-in `everything`
/// server without a namespace.
async fn gateway_over_everything(runtime: &McpRuntime) -> Gateway {
    let backends = deploy_all(
        runtime,
        r#"{"mcpServers": {"one": {"type": "builtin", "server": "everything", "namespace": ""}}}"#,
    )
    .await;
    Gateway::new(backends, "__").with_notifications(runtime.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_are_merged_and_calls_routed() {
    let runtime = McpRuntime::start();
    let backends = deploy_all(
        &runtime,
        r#"{"mcpServers": {
            "plain": {"type": "builtin", "server": "everything", "namespace": "", "tools": {"deny": ["test_sampling"]}},
            "alpha": {"type": "builtin", "server": "everything", "namespace": "a", "tools": {"allow": ["test_simple_text", "test_error_handling"]}}
        }}"#,
    )
    .await;
    let gateway = Gateway::new(backends.clone(), ".");

    let discover = ask(&gateway, "server/discover", json!({})).await.unwrap();
    assert_eq!(
        discover["supportedVersions"],
        json!([
            "2024-11-05",
            "2025-03-26",
            "2025-06-18",
            "2025-11-25",
            "2026-07-28"
        ])
    );
    assert_eq!(
        discover["_meta"]["io.modelcontextprotocol/serverInfo"]["name"],
        "mcp-manager"
    );
    assert!(
        discover["capabilities"]["tools"].is_object()
            && discover["capabilities"]["prompts"].is_object()
    );
    let init = ask(&gateway, "initialize", json!({"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}))
        .await
        .unwrap();
    assert_eq!(init["protocolVersion"], "2025-06-18");

    let tools = ask(&gateway, "tools/list", json!({})).await.unwrap();
    let names: Vec<&str> = tools["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"test_simple_text"));
    assert!(!names.contains(&"test_sampling"), "denied tool listed");
    assert!(names.contains(&"a.test_simple_text") && names.contains(&"a.test_error_handling"));
    assert_eq!(
        names.iter().filter(|n| n.starts_with("a.")).count(),
        2,
        "{names:?}"
    );

    let call = ask(
        &gateway,
        "tools/call",
        json!({"name": "a.test_simple_text"}),
    )
    .await
    .unwrap();
    assert_eq!(
        call["content"][0]["text"],
        "This is a simple text response for testing."
    );
    let error = ask(&gateway, "tools/call", json!({"name": "a.test_sampling"}))
        .await
        .unwrap_err();
    assert_eq!(error, (-32602, "Unknown tool: a.test_sampling".to_owned()));
    let error = ask(&gateway, "tools/call", json!({"name": "test_sampling"}))
        .await
        .unwrap_err();
    assert_eq!(error.0, -32602);

    // Prompts are namespaced like tools; completion follows the prompt.
    let prompt = ask(
        &gateway,
        "prompts/get",
        json!({"name": "a.test_simple_prompt"}),
    )
    .await
    .unwrap();
    assert_eq!(
        prompt["messages"][0]["content"]["text"],
        "This is a simple prompt for testing."
    );
    let completion = ask(
        &gateway,
        "completion/complete",
        json!({"ref": {"type": "ref/prompt", "name": "a.test_prompt_with_arguments"}, "argument": {"name": "arg1", "value": ""}}),
    )
    .await
    .unwrap();
    assert!(
        completion["completion"]["values"].is_array(),
        "{completion}"
    );

    // Resources keep their URIs where they can; the second server's copy of
    // a URI is listed in the gateway's own form. Reads work either way, and
    // a template routes what no list names.
    let resources = ask(&gateway, "resources/list", json!({})).await.unwrap();
    let uris: Vec<&str> = resources["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["uri"].as_str().unwrap())
        .collect();
    assert_eq!(
        uris.iter().filter(|u| **u == "test://static-text").count(),
        1
    );
    let read = ask(
        &gateway,
        "resources/read",
        json!({"uri": "test://template/42/data"}),
    )
    .await
    .unwrap();
    assert!(
        read["contents"][0]["text"].as_str().unwrap().contains("42"),
        "{read}"
    );
    let missing = ask(&gateway, "resources/read", json!({"uri": "nope://x"}))
        .await
        .unwrap_err();
    assert_eq!(missing.0, -32602, "SEP-2164");

    // Pages: every tool exactly once across pages; a foreign cursor is refused.
    let paged = Gateway::new(backends.clone(), ".").with_page_size(7);
    let mut cursor: Option<String> = None;
    let mut all = Vec::new();
    loop {
        let params = cursor
            .as_ref()
            .map_or_else(|| json!({}), |c| json!({"cursor": c}));
        let page = ask(&paged, "tools/list", params).await.unwrap();
        let items = page["tools"].as_array().unwrap();
        assert!(items.len() <= 7);
        all.extend(items.iter().map(|t| t["name"].as_str().unwrap().to_owned()));
        match page["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(all, names);
    let refused = ask(&paged, "tools/list", json!({"cursor": "0.123"}))
        .await
        .unwrap_err();
    assert_eq!(refused.0, -32602);

    // A server that is down is left out of the lists, not an error.
    let down = runtime.server(backends[1].handle.id()).await.unwrap();
    down.undeploy().await.unwrap();
    let tools = ask(&gateway, "tools/list", json!({})).await.unwrap();
    assert!(
        tools["tools"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| !t["name"].as_str().unwrap().starts_with("a."))
    );
    let unknown = ask(&gateway, "nothing/here", json!({})).await.unwrap_err();
    assert_eq!(unknown.0, -32601);
    runtime.shutdown().await;
}

/// Keeps every notification it gets; a client session when it has a key.
#[derive(Default)]
struct Recorder(Mutex<Vec<Value>>, Option<u64>);

impl Peer for Recorder {
    fn session(&self) -> Option<u64> {
        self.1
    }

    fn notify(&self, notification: Notification<'static>) -> BoxFuture<'_, ()> {
        let params: Value = notification
            .params
            .map_or(Value::Null, |p| p.parse().unwrap());
        self.0
            .lock()
            .unwrap()
            .push(json!({"method": notification.method, "params": params}));
        Box::pin(async {})
    }
}

async fn deploy_all(runtime: &McpRuntime, config: &str) -> Vec<Backend> {
    let env = |_: &str| None;
    let config = ManagerConfig::from_json_str(config, None, &env).unwrap();
    let registry = mcp_plugins::default_registry();
    let mut backends = Vec::new();
    for server in config.servers() {
        let spec = mcp_control::spec(&registry, server).unwrap();
        let deployed = mcp_runtime::Server::new(runtime.clone(), spec)
            .deploy()
            .await
            .unwrap();
        backends.push(mcp_control::backend(server, &deployed));
    }
    backends
}

/// Waits up to 5 s for `check` to hold.
async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renamed_resources_are_read_and_updated_under_their_listed_uri() {
    let runtime = McpRuntime::start();
    let backends = deploy_all(
        &runtime,
        r#"{"mcpServers": {
            "one": {"type": "builtin", "server": "everything"},
            "two": {"type": "builtin", "server": "everything"}
        }}"#,
    )
    .await;
    let first = backends[0].handle.id().to_string();
    let second = backends[1].handle.id().to_string();
    let gateway = Gateway::new(backends, "__").with_notifications(runtime.clone());
    let recorder = Arc::new(Recorder::default());
    initialized(&gateway, recorder.clone()).await;

    let watched = "test://watched-resource";
    let renamed = format!("mcp-manager://{second}/{watched}");
    let resources = ask(&gateway, "resources/list", json!({})).await.unwrap();
    let uris: Vec<&str> = resources["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["uri"].as_str().unwrap())
        .collect();
    assert!(uris.contains(&watched), "{uris:?}");
    assert!(uris.contains(&renamed.as_str()), "{uris:?}");
    // Every URI once: nothing shadows anything else.
    let mut unique = uris.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), uris.len());

    // The renamed resource reads from its own server, shown under the URI
    // the client asked for; the gateway's form works for any server.
    let read = ask(&gateway, "resources/read", json!({"uri": renamed}))
        .await
        .unwrap();
    assert_eq!(read["contents"][0]["uri"], renamed.as_str());
    let explicit = format!("mcp-manager://{first}/test://static-text");
    let read = ask(&gateway, "resources/read", json!({"uri": explicit}))
        .await
        .unwrap();
    assert_eq!(
        read["contents"][0]["text"],
        "This is the content of the static text resource."
    );
    let nobody = ask(
        &gateway,
        "resources/read",
        json!({"uri": "mcp-manager://nobody/test://static-text"}),
    )
    .await
    .unwrap_err();
    assert_eq!(nobody.0, -32602);

    // An update of the second server's copy reaches the client under the
    // renamed URI.
    ask(&gateway, "resources/subscribe", json!({"uri": renamed}))
        .await
        .unwrap();
    ask(
        &gateway,
        "tools/call",
        json!({"name": format!("{second}__test_trigger_resource_update")}),
    )
    .await
    .unwrap();
    let updated = |recorder: &Recorder| {
        recorder
            .0
            .lock()
            .unwrap()
            .iter()
            .filter(|n| n["method"] == "notifications/resources/updated")
            .map(|n| n["params"]["uri"].as_str().unwrap_or_default().to_owned())
            .collect::<Vec<_>>()
    };
    eventually("the resource update", async || {
        !updated(&recorder).is_empty()
    })
    .await;
    assert_eq!(updated(&recorder), vec![renamed.clone()]);

    // Lists follow a server's changes: a tool added after start shows up.
    let dynamic = format!("{first}__test_dynamic_tool");
    ask(
        &gateway,
        "tools/call",
        json!({"name": format!("{first}__test_trigger_tool_change")}),
    )
    .await
    .unwrap();
    eventually("the added tool", async || {
        let tools = ask(&gateway, "tools/list", json!({})).await.unwrap();
        tools["tools"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == dynamic.as_str())
    })
    .await;
    let call = ask(&gateway, "tools/call", json!({"name": dynamic}))
        .await
        .unwrap();
    assert!(call["content"].is_array(), "{call}");
    runtime.shutdown().await;
}

/// The URIs of the resource updates `recorder` got.
fn updates(recorder: &Recorder) -> Vec<String> {
    recorder
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|n| n["method"] == "notifications/resources/updated")
        .map(|n| n["params"]["uri"].as_str().unwrap_or_default().to_owned())
        .collect()
}

async fn ask_as(gateway: &Gateway, recorder: &Arc<Recorder>, method: &str, params: Value) -> Value {
    ask_through(gateway, recorder.clone(), method, params)
        .await
        .unwrap_or_else(|e| panic!("{method}: {e:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resource_updates_reach_only_the_sessions_that_subscribed() {
    let runtime = McpRuntime::start();
    let gateway = gateway_over_everything(&runtime).await;
    let a = Arc::new(Recorder(
        Mutex::default(),
        Some(mcp_core::next_session_key()),
    ));
    let b = Arc::new(Recorder(
        Mutex::default(),
        Some(mcp_core::next_session_key()),
    ));
    for session in [&a, &b] {
        initialized(&gateway, session.clone()).await;
    }
    let watched = json!({"uri": "test://watched-resource"});
    let trigger = json!({"name": "test_trigger_resource_update"});

    // Only A subscribed: only A hears of the update.
    ask_as(&gateway, &a, "resources/subscribe", watched.clone()).await;
    ask_as(&gateway, &a, "tools/call", trigger.clone()).await;
    eventually("A's update", async || updates(&a).len() == 1).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(updates(&b).is_empty(), "{:?}", updates(&b));

    // B subscribes too, A gives up: the backend keeps the subscription for
    // B, and only B hears of the next update.
    ask_as(&gateway, &b, "resources/subscribe", watched.clone()).await;
    ask_as(&gateway, &a, "resources/unsubscribe", watched.clone()).await;
    ask_as(&gateway, &b, "tools/call", trigger.clone()).await;
    eventually("B's update", async || updates(&b).len() == 1).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(updates(&a).len(), 1);

    // An unsubscription by a session that holds nothing changes nothing.
    ask_as(&gateway, &a, "resources/unsubscribe", watched.clone()).await;
    ask_as(&gateway, &b, "tools/call", trigger).await;
    eventually("B's second update", async || updates(&b).len() == 2).await;
    assert_eq!(updates(&a).len(), 1);
    runtime.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listen_stream_gets_what_it_asked_for_tagged_with_its_id() {
    let runtime = McpRuntime::start();
    let gateway = Arc::new(gateway_over_everything(&runtime).await);
    // A stateless client: no session, everything on the listen stream.
    let client = Arc::new(Recorder::default());
    let listen = {
        let (gateway, client) = (gateway.clone(), client.clone());
        tokio::spawn(async move {
            let request = Request {
                id: RequestId::String("listen-1".into()),
                method: "subscriptions/listen".into(),
                params: Some(Raw::from_value(&json!({"notifications": {
                    "toolsListChanged": true,
                    "promptsListChanged": false,
                    "resourceSubscriptions": ["test://watched-resource", "nope://missing"]
                }}))),
            };
            gateway
                .handle_request(request, RequestContext::new(client))
                .await
        })
    };
    let notes = |client: &Recorder| client.0.lock().unwrap().clone();
    eventually("the acknowledgement", async || !notes(&client).is_empty()).await;
    let ack = notes(&client)[0].clone();
    assert_eq!(ack["method"], "notifications/subscriptions/acknowledged");
    assert_eq!(
        ack["params"]["notifications"],
        json!({"toolsListChanged": true, "resourceSubscriptions": ["test://watched-resource"]}),
        "unknown resources and unwanted lists are not acknowledged: {ack}"
    );
    assert_eq!(
        ack["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"],
        "listen-1"
    );

    // A tool list change and a resource update arrive tagged; a prompt
    // list change was not asked for.
    let quiet = Arc::new(Recorder::default());
    for tool in [
        "test_trigger_tool_change",
        "test_trigger_prompt_change",
        "test_trigger_resource_update",
    ] {
        ask_as(&gateway, &quiet, "tools/call", json!({"name": tool})).await;
    }
    eventually("both notifications", async || notes(&client).len() >= 3).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let methods: Vec<String> = notes(&client)[1..]
        .iter()
        .map(|n| n["method"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        methods.contains(&"notifications/tools/list_changed".to_owned())
            && methods.contains(&"notifications/resources/updated".to_owned())
            && !methods.contains(&"notifications/prompts/list_changed".to_owned()),
        "{methods:?}"
    );
    for note in &notes(&client)[1..] {
        assert_eq!(
            note["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"], "listen-1",
            "{note}"
        );
    }
    // The stream stays open until it is cancelled.
    assert!(!listen.is_finished());
    listen.abort();
    assert!(listen.await.unwrap_err().is_cancelled());
    runtime.shutdown().await;
}
