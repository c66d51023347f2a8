//! `serve_http` on 127.0.0.1 with a small in-process server, driven by raw
//! HTTP (reqwest) for each rule of the transport and by this crate's own
//! Streamable HTTP client.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

#[path = "../../mcp-runtime/tests/common/mod.rs"]
mod common;
#[path = "../../mcp-runtime/tests/fixtures/http_peers.rs"]
mod peers;

use std::sync::Arc;
use std::time::Duration;

use mcp_core::{BoxFuture, HandlerResult, McpServer, RequestContext};
use mcp_protocol::raw::Raw;
use mcp_protocol::{ErrorObject, Notification, Request};
use mcp_runtime::{ListKind, McpRuntime};
use mcp_serve::{HttpServeOptions, serve_http};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::sync::oneshot;

/// Tools: `echo` (text back), `progress` (three progress notifications
/// when asked for, then text), `sleep` (`ms` milliseconds, then text),
/// `announce` (log messages `first`..`last` numbered, outside the call's
/// stream, then text).
struct TestServer;

impl McpServer for TestServer {
    fn handle_request(
        &self,
        request: Request<'static>,
        context: RequestContext,
    ) -> BoxFuture<'_, HandlerResult> {
        Box::pin(async move {
            let params: Value = request
                .params
                .as_ref()
                .map_or(Value::Null, |p| serde_json::from_str(p.get()).unwrap());
            let result = match request.method.as_ref() {
                "initialize" => json!({
                    "protocolVersion": "2025-11-25",
                    "capabilities": {"tools": {}},
                    "serverInfo": {"name": "test-server", "version": "1.0.0"}
                }),
                "server/discover" => json!({"supportedVersions": ["2026-07-28"]}),
                "tools/list" => json!({"tools": [
                    {"name": "echo", "inputSchema": {"type": "object"}},
                    {"name": "progress", "inputSchema": {"type": "object"}}
                ]}),
                "tools/call" => {
                    let name = params["name"].as_str().unwrap_or_default();
                    if name == "sleep" {
                        let ms = params["arguments"]["ms"].as_u64().unwrap_or(0);
                        tokio::time::sleep(Duration::from_millis(ms)).await;
                    }
                    if name == "announce" {
                        let (first, last) = (
                            params["arguments"]["first"].as_u64().unwrap_or(0),
                            params["arguments"]["last"].as_u64().unwrap_or(0),
                        );
                        for n in first..=last {
                            let note = json!({"level": "info", "data": n});
                            context
                                .notify(Notification {
                                    method: "notifications/message".into(),
                                    params: Some(Raw::from_value(&note)),
                                })
                                .await;
                        }
                    }
                    if name == "progress" {
                        if let Some(token) = params["_meta"].get("progressToken") {
                            for step in 1..=3 {
                                let note =
                                    json!({"progressToken": token, "progress": step, "total": 3});
                                context
                                    .notify(Notification {
                                        method: "notifications/progress".into(),
                                        params: Some(Raw::from_value(&note)),
                                    })
                                    .await;
                                tokio::time::sleep(Duration::from_millis(20)).await;
                            }
                        }
                    }
                    let text = format!("{name}: {}", params["arguments"]["text"]);
                    json!({"content": [{"type": "text", "text": text}]})
                }
                "ping" => json!({}),
                // A listen stream: it ends only when it is cancelled.
                "subscriptions/listen" => std::future::pending().await,
                other => {
                    return Err(ErrorObject::new(
                        -32601,
                        format!("Method not found: {other}"),
                    ));
                }
            };
            Ok(Raw::from_value(&result))
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

/// A running `serve_http`; stopped (and awaited) by [`Served::stop`].
struct Served {
    url: String,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Served {
    async fn start(options: HttpServeOptions) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/mcp", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let server: Arc<dyn McpServer> = Arc::new(TestServer);
        let task = tokio::spawn(serve_http(server, listener, options, async {
            let _ = stopped.await;
        }));
        Self {
            url,
            stop: Some(stop),
            task,
        }
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(15), &mut self.task)
            .await
            .expect("serve_http did not stop")
            .unwrap()
            .unwrap();
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

fn post(client: &reqwest::Client, url: &str, body: &Value) -> reqwest::RequestBuilder {
    client
        .post(url)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .body(body.to_string())
}

fn init_body() -> Value {
    json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "t", "version": "0"}
    }})
}

async fn initialize(client: &reqwest::Client, url: &str) -> String {
    let response = post(client, url, &init_body()).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let session = response.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let body: Value = json_of(response).await;
    assert_eq!(body["result"]["serverInfo"]["name"], "test-server");
    session
}

async fn json_of(response: reqwest::Response) -> Value {
    let text = response.text().await.unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// The `data:` payloads of an event stream, as JSON.
fn events(text: &str) -> Vec<Value> {
    text.lines()
        .filter_map(|line| line.strip_prefix("data: "))
        .map(|data| serde_json::from_str(data).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_calls_progress_and_errors() {
    let served = Served::start(HttpServeOptions::default()).await;
    let client = client();
    let url = served.url.clone();
    let session = initialize(&client, &url).await;
    assert!(
        session.get(16..20) == Some(".v1.") && session.bytes().all(|b| b.is_ascii_graphic()),
        "{session}"
    );
    assert_ne!(session, initialize(&client, &url).await);

    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let response = post(&client, &url, &initialized)
        .header("mcp-session-id", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);

    // A plain call is answered with JSON.
    let call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "echo", "arguments": {"text": "hi"}}});
    let response = post(&client, &url, &call)
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-11-25")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let body: Value = json_of(response).await;
    assert_eq!(body["id"], 1);
    assert_eq!(body["result"]["content"][0]["text"], "echo: \"hi\"");

    // With a progress token: an event stream, progress first, then the answer.
    let call = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"name": "progress", "arguments": {}, "_meta": {"progressToken": "tok"}}});
    let response = post(&client, &url, &call)
        .header("mcp-session-id", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let seen = events(&response.text().await.unwrap());
    assert_eq!(seen.len(), 4, "{seen:?}");
    for (step, event) in seen.iter().take(3).enumerate() {
        assert_eq!(event["method"], "notifications/progress");
        assert_eq!(event["params"]["progressToken"], "tok");
        assert_eq!(event["params"]["progress"], step + 1);
    }
    assert_eq!(seen[3]["id"], 2);
    assert!(seen[3]["result"]["content"][0]["text"].is_string());

    // Unknown session: 404; no session: 400; bad protocol version: 400.
    let ping = json!({"jsonrpc": "2.0", "id": 3, "method": "ping"});
    let response = post(&client, &url, &ping)
        .header("mcp-session-id", "nope")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let response = post(&client, &url, &ping).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let response = post(&client, &url, &ping)
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "1999-01-01")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    // Not JSON: 400 with a parse error.
    let response = client
        .post(&url)
        .header("mcp-session-id", &session)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = json_of(response).await;
    assert_eq!(body["error"]["code"], -32700);
    assert_eq!(body["id"], Value::Null);

    // Too big: 413. The server answers before reading the whole body and
    // closes the connection, so it must not go back to the pool.
    let big = json!({"jsonrpc": "2.0", "id": 4, "method": "ping",
        "params": {"pad": "x".repeat(5 << 20)}});
    let response = post(&client, &url, &big)
        .header("mcp-session-id", &session)
        .header("connection", "close")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);

    // GET: the session's own stream, only for event-stream clients.
    let response = client
        .get(&url)
        .header("mcp-session-id", &session)
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_ACCEPTABLE);
    let stream = client
        .get(&url)
        .header("mcp-session-id", &session)
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    assert_eq!(stream.headers()["content-type"], "text/event-stream");

    // DELETE ends the session (and its stream); then it is unknown.
    let response = client
        .delete(&url)
        .header("mcp-session-id", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let ended = tokio::time::timeout(Duration::from_secs(5), stream.text()).await;
    assert!(ended.is_ok(), "the GET stream outlived its session");
    let response = post(&client, &url, &ping)
        .header("mcp-session-id", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let response = client
        .delete(&url)
        .header("mcp-session-id", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);

    // Other paths are not the endpoint.
    let response = post(&client, &served.url.replace("/mcp", "/other"), &ping)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);

    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stateless_requests_are_judged_before_the_server_sees_them() {
    let served = Served::start(HttpServeOptions::default()).await;
    let client = client();
    let url = served.url.clone();
    let envelope = json!({"io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {}});
    // A request with its headers, answered with the given status and
    // body.
    let ask = |body: Value, headers: &[(&str, &str)]| {
        let mut request = post(&client, &url, &body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        async move {
            let response = request.send().await.unwrap();
            let status = response.status();
            (status, json_of(response).await)
        }
    };
    let discover = json!({"jsonrpc": "2.0", "id": 1, "method": "server/discover",
        "params": {"_meta": envelope}});
    let mirrored = [
        ("mcp-protocol-version", "2026-07-28"),
        ("mcp-method", "server/discover"),
    ];
    let (status, body) = ask(discover, &mirrored).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["result"]["supportedVersions"][0], "2026-07-28");

    let call = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"name": "echo", "arguments": {"text": "x"}, "_meta": envelope}});
    let call_headers = [
        ("mcp-protocol-version", "2026-07-28"),
        ("mcp-method", "tools/call"),
        ("mcp-name", " echo "),
    ];
    let (status, body) = ask(call.clone(), &call_headers).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["result"]["content"][0]["text"], "echo: \"x\"");

    // The envelope first: missing, or without a member it needs.
    let bare = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
        "params": {"name": "echo", "arguments": {"text": "x"}}});
    let (status, body) = ask(bare, &call_headers).await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (StatusCode::BAD_REQUEST, json!(-32602))
    );
    assert_eq!(body["id"], 3);

    // Then the headers that mirror the body.
    for (headers, case) in [
        (
            &[
                ("mcp-protocol-version", "2026-07-28"),
                ("mcp-method", "tools/list"),
            ][..],
            "method",
        ),
        (&[("mcp-protocol-version", "2026-07-28")][..], "no method"),
        (&call_headers[..2], "no name"),
        (
            &[
                ("mcp-protocol-version", "2026-07-28"),
                ("mcp-method", "tools/call"),
                ("mcp-name", "other"),
            ][..],
            "name",
        ),
        (
            &[
                ("mcp-protocol-version", "2025-11-25"),
                ("mcp-method", "tools/call"),
                ("mcp-name", "echo"),
            ][..],
            "version",
        ),
    ] {
        let (status, body) = ask(call.clone(), headers).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{case}");
        assert_eq!(body["error"]["code"], -32020, "{case}");
        assert_eq!(body["id"], 2, "{case}");
    }

    // Then the version: the supported ones listed, the requested echoed.
    let future = json!({"jsonrpc": "2.0", "id": 4, "method": "server/discover",
        "params": {"_meta": {"io.modelcontextprotocol/protocolVersion": "2099-01-01",
            "io.modelcontextprotocol/clientCapabilities": {}}}});
    let headers = [
        ("mcp-protocol-version", "2099-01-01"),
        ("mcp-method", "server/discover"),
    ];
    let (status, body) = ask(future, &headers).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], -32022);
    assert_eq!(body["error"]["data"]["requested"], "2099-01-01");
    assert!(
        body["error"]["data"]["supported"]
            .as_array()
            .unwrap()
            .contains(&json!("2026-07-28"))
    );

    // Methods 2026-07-28 removed, and methods the server does not have:
    // 404 with -32601.
    for method in ["ping", "initialize", "logging/setLevel", "no/such-method"] {
        let request = json!({"jsonrpc": "2.0", "id": 5, "method": method,
            "params": {"_meta": envelope}});
        let headers = [
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-method", method),
        ];
        let (status, body) = ask(request, &headers).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method}");
        assert_eq!(body["error"]["code"], -32601, "{method}");
    }

    // A session's request is not judged this way, but a stateful client's
    // Mcp-Method must match too.
    let list = json!({"jsonrpc": "2.0", "id": 6, "method": "tools/list"});
    let (status, body) = ask(list, &[("mcp-method", "prompts/list")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], -32020);

    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_origin_and_bearer_token() {
    let options = HttpServeOptions {
        auth_token: Some("s3cret".to_owned()),
        ..HttpServeOptions::default()
    };
    let served = Served::start(options).await;
    let client = client();
    let url = served.url.clone();

    let response = post(&client, &url, &init_body()).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
    let response = post(&client, &url, &init_body())
        .bearer_auth("wrong!")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let response = post(&client, &url, &init_body())
        .bearer_auth("s3cret")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().contains_key("mcp-session-id"));

    // DNS rebinding: a foreign Origin or Host is refused before anything else.
    let response = post(&client, &url, &init_body())
        .bearer_auth("s3cret")
        .header("origin", "http://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let response = post(&client, &url, &init_body())
        .bearer_auth("s3cret")
        .header("origin", "http://localhost:5173")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let response = post(&client, &url, &init_body())
        .bearer_auth("s3cret")
        .header("host", "evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);

    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runtime_client_uses_serve_http() {
    let served = Served::start(HttpServeOptions::default()).await;
    let runtime = McpRuntime::start();
    let handle = common::deploy(&runtime, peers::http_spec("served", served.url.clone()))
        .await
        .unwrap();
    let session = handle.session().unwrap();
    assert_eq!(session.server_info.name, "test-server");
    assert_eq!(session.protocol_version.as_str(), "2025-11-25");

    let tools = handle.list_all(ListKind::Tools).await.unwrap();
    let names: Vec<Value> = tools
        .iter()
        .map(|t| serde_json::from_str::<Value>(t.get()).unwrap()["name"].clone())
        .collect();
    assert_eq!(names, vec![json!("echo"), json!("progress")]);
    assert_eq!(peers::tool_names(&handle).await, ["echo", "progress"]);
    assert_eq!(
        peers::call_ok(&handle, "echo", json!({"text": "via runtime"})).await,
        "echo: \"via runtime\""
    );
    let (result, progress) =
        peers::call_with_progress(&handle, "progress", json!({}), json!("mine")).await;
    assert_eq!(result["content"][0]["text"], "progress: null");
    assert_eq!(progress.len(), 3, "{progress:?}");
    assert!(progress.iter().all(|p| p["progressToken"] == "mine"));

    runtime.shutdown().await;
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runtime_legacy_sse_client_uses_serve_http() {
    let served = Served::start(HttpServeOptions::default()).await;
    let sse_url = served.url.replace("/mcp", "/sse");
    let runtime = McpRuntime::start();
    let handle = common::deploy(&runtime, peers::sse_spec("legacy", sse_url.clone()))
        .await
        .unwrap();
    assert_eq!(handle.session().unwrap().server_info.name, "test-server");
    assert_eq!(peers::tool_names(&handle).await, ["echo", "progress"]);
    assert_eq!(
        peers::call_ok(&handle, "echo", json!({"text": "over sse"})).await,
        "echo: \"over sse\""
    );
    let (result, progress) =
        peers::call_with_progress(&handle, "progress", json!({}), json!("old")).await;
    assert_eq!(result["content"][0]["text"], "progress: null");
    assert_eq!(progress.len(), 3, "{progress:?}");

    // The message endpoint wants a live session; the stream wants GET.
    let client = client();
    let message_url = served.url.replace("/mcp", "/message?sessionId=nope");
    let response = post(&client, &message_url, &sleep_call(1, 0))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let response = client.post(&sse_url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.headers()["allow"], "GET");

    runtime.shutdown().await;
    served.stop().await;
}

fn sleep_call(id: u64, ms: u64) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
           "params": {"name": "sleep", "arguments": {"ms": ms, "text": id}}})
}

async fn call_in(
    client: &reqwest::Client,
    url: &str,
    session: &str,
    body: &Value,
) -> (StatusCode, Value) {
    let response = post(client, url, body)
        .header("mcp-session-id", session)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, json_of(response).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_per_session_and_per_client() {
    let options = HttpServeOptions {
        max_in_flight_per_session: 2,
        max_in_flight_per_client: 3,
        max_sessions_per_client: 2,
        ..HttpServeOptions::default()
    };
    let served = Served::start(options).await;
    let client = client();
    let url = served.url.clone();
    let a = initialize(&client, &url).await;
    let b = initialize(&client, &url).await;

    // A third session from the same address is refused, saying why.
    let response = post(&client, &url, &init_body()).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body = json_of(response).await;
    assert_eq!(body["id"], 0);
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("this client has its limit of 2"),
        "{message}"
    );

    // Two slow calls fill session A; a third is refused at once with 429.
    let slow: Vec<_> = (1..=2)
        .map(|id| {
            let (client, url, a) = (client.clone(), url.clone(), a.clone());
            tokio::spawn(async move { call_in(&client, &url, &a, &sleep_call(id, 3000)).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let response = post(&client, &url, &sleep_call(3, 0))
        .header("mcp-session-id", &a)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(response.headers()["retry-after"], "1");
    let body = json_of(response).await;
    assert_eq!(body["id"], 3);
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("this session has its limit of 2"),
        "{message}"
    );

    // Session B may run one more; then the client's limit of 3 is reached.
    let third = {
        let (client, url, b) = (client.clone(), url.clone(), b.clone());
        tokio::spawn(async move { call_in(&client, &url, &b, &sleep_call(4, 3000)).await })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (status, body) = call_in(&client, &url, &b, &sleep_call(5, 0)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("this client has its limit of 3"),
        "{message}"
    );

    // Nothing refused was lost from what was admitted: all three answer,
    // and once they have, both sessions take requests again.
    for task in slow.into_iter().chain([third]) {
        let (status, body) = task.await.unwrap();
        assert_eq!(status, StatusCode::OK);
        assert!(body["result"]["content"][0]["text"].is_string(), "{body}");
    }
    for session in [&a, &b] {
        let (status, body) = call_in(&client, &url, session, &sleep_call(6, 0)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sessions_are_ended() {
    let options = HttpServeOptions {
        session_idle_timeout: Some(Duration::from_millis(1000)),
        keep_alive: Duration::from_millis(100),
        ..HttpServeOptions::default()
    };
    let served = Served::start(options).await;
    let client = client();
    let url = served.url.clone();
    let idle = initialize(&client, &url).await;
    let busy = initialize(&client, &url).await;
    let listening = initialize(&client, &url).await;

    // `listening` keeps its GET stream open; `busy` has a call running
    // longer than the timeout.
    let stream = client
        .get(&url)
        .header("accept", "text/event-stream")
        .header("mcp-session-id", &listening)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    let long = {
        let (client, url, busy) = (client.clone(), url.clone(), busy.clone());
        tokio::spawn(async move { call_in(&client, &url, &busy, &sleep_call(1, 2000)).await })
    };
    tokio::time::sleep(Duration::from_millis(2300)).await;

    let (status, body) = call_in(&client, &url, &idle, &sleep_call(2, 0)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = long.await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    for session in [&busy, &listening] {
        let (status, body) = call_in(&client, &url, session, &sleep_call(3, 0)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    drop(stream);
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listen_stream_does_not_hold_up_shutdown() {
    let served = Served::start(HttpServeOptions::default()).await;
    let client = client();
    let listen = json!({"jsonrpc": "2.0", "id": 1, "method": "subscriptions/listen",
        "params": {"notifications": {"toolsListChanged": true}, "_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {}}}});
    let stream = post(&client, &served.url, &listen)
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "subscriptions/listen")
        .send();
    let open = tokio::spawn(stream);
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Well within the drain (10 s by default): the stream is ended, not
    // waited for.
    let began = std::time::Instant::now();
    served.stop().await;
    assert!(
        began.elapsed() < Duration::from_secs(5),
        "{:?}",
        began.elapsed()
    );
    let response = open.await.unwrap().unwrap();
    let text = response.text().await.unwrap_or_default();
    assert!(text.contains("shutting down"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_session_stream_is_resumed_with_last_event_id() {
    let served = Served::start(HttpServeOptions::default()).await;
    let client = client();
    let url = served.url.clone();
    let session = initialize(&client, &url).await;
    let open = |last: Option<String>| {
        let mut request = client
            .get(&url)
            .header("accept", "text/event-stream")
            .header("mcp-session-id", &session);
        if let Some(last) = last {
            request = request.header("last-event-id", last);
        }
        request.send()
    };
    let announce = |id: u64, first: u64, last: u64| {
        let call = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": "announce", "arguments": {"first": first, "last": last}}});
        post(&client, &url, &call)
            .header("mcp-session-id", &session)
            .send()
    };
    // Reads events off `response` until `count` have come; their ids and
    // the numbers they carry.
    async fn read(response: &mut reqwest::Response, count: usize) -> (Vec<String>, Vec<u64>) {
        let mut seen = String::new();
        loop {
            let blocks: Vec<&str> = seen.split("\n\n").filter(|b| b.contains("data:")).collect();
            if blocks.len() >= count && seen.ends_with("\n\n") {
                let ids = blocks
                    .iter()
                    .filter_map(|b| b.lines().find_map(|l| l.strip_prefix("id: ")))
                    .map(str::to_owned)
                    .collect();
                let numbers = events(&seen)
                    .iter()
                    .filter_map(|e| e["params"]["data"].as_u64())
                    .collect();
                return (ids, numbers);
            }
            let chunk = tokio::time::timeout(Duration::from_secs(5), response.chunk())
                .await
                .unwrap_or_else(|_| panic!("no event within 5 s after {seen:?}"))
                .unwrap()
                .expect("the stream goes on");
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
    let mut stream = open(None).await.unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    let answered = announce(1, 1, 2).await.unwrap();
    assert_eq!(answered.status(), StatusCode::OK);
    let (ids, numbers) = read(&mut stream, 2).await;
    assert_eq!(numbers, [1, 2]);
    assert_eq!(ids.len(), 2, "every event has an id: {ids:?}");
    // The client loses the stream; what comes meanwhile is kept.
    drop(stream);
    tokio::time::sleep(Duration::from_millis(100)).await;
    announce(2, 3, 5).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut resumed = open(Some(ids[1].clone())).await.unwrap();
    assert_eq!(resumed.status(), StatusCode::OK);
    let (ids_after, numbers) = read(&mut resumed, 3).await;
    assert_eq!(numbers, [3, 4, 5], "the missed events, in order");
    let stream_of = |id: &str| id.split('-').next().unwrap().to_owned();
    assert!(
        ids_after
            .iter()
            .all(|id| stream_of(id) == stream_of(&ids[0]))
    );
    // And the stream goes on.
    announce(3, 6, 6).await.unwrap();
    let (_, numbers) = read(&mut resumed, 1).await;
    assert_eq!(numbers, [6]);
    drop(resumed);
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_request_stream_is_resumed_with_last_event_id() {
    let served = Served::start(HttpServeOptions::default()).await;
    let client = client();
    let url = served.url.clone();
    let session = initialize(&client, &url).await;
    let call = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
        "params": {"name": "progress", "arguments": {}, "_meta": {"progressToken": "tok"}}});
    let mut response = post(&client, &url, &call)
        .header("mcp-session-id", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    // Read the first event, note its id, and hang up.
    let mut seen = String::new();
    while !seen.contains("\n\n") {
        let chunk = response.chunk().await.unwrap().expect("an event");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    let first = seen.split("\n\n").next().unwrap().to_owned();
    let last_id = first
        .lines()
        .find_map(|line| line.strip_prefix("id: "))
        .unwrap_or_else(|| panic!("no id in {first:?}"))
        .to_owned();
    assert_eq!(events(&first)[0]["params"]["progress"], 1, "{first}");
    drop(response);

    // The request goes on without its connection; the client comes back
    // for the rest, which ends with the answer.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let resumed = client
        .get(&url)
        .header("accept", "text/event-stream")
        .header("mcp-session-id", &session)
        .header("last-event-id", &last_id)
        .send()
        .await
        .unwrap();
    assert_eq!(resumed.status(), StatusCode::OK);
    let rest = tokio::time::timeout(Duration::from_secs(5), resumed.text())
        .await
        .expect("the resumed stream ends after the answer")
        .unwrap();
    let messages = events(&rest);
    let progress: Vec<&Value> = messages
        .iter()
        .filter_map(|m| m["params"].get("progress"))
        .collect();
    assert_eq!(progress, [&json!(2), &json!(3)], "{rest}");
    let answer = messages.last().unwrap();
    assert_eq!(answer["id"], 7);
    assert_eq!(answer["result"]["content"][0]["text"], "progress: null");
    // Every event has an id of the same stream, in order.
    let ids: Vec<&str> = rest
        .lines()
        .filter_map(|line| line.strip_prefix("id: "))
        .collect();
    let stream = last_id.split('-').next().unwrap();
    assert!(
        ids.iter().all(|id| id.starts_with(&format!("{stream}-"))),
        "{ids:?}"
    );
    assert_eq!(ids.len(), 3);

    // An id of a stream that is not kept gets a fresh session stream.
    let fresh = client
        .get(&url)
        .header("accept", "text/event-stream")
        .header("mcp-session-id", &session)
        .header("last-event-id", "999-0")
        .send()
        .await
        .unwrap();
    assert_eq!(fresh.status(), StatusCode::OK);
    drop(fresh);
    served.stop().await;
}
