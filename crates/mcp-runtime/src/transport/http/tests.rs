//! Tests of the Streamable HTTP link against a hand-written server.

use std::borrow::Cow;

use mcp_protocol::mcp::Method;
use mcp_protocol::raw::Raw;
use mcp_protocol::{ErrorObject, ProtocolVersion, Request};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::link::*;
use super::*;

/// Reads one request: its method and body.
async fn read_request(socket: &mut TcpStream) -> (String, Vec<u8>) {
    let mut data = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = socket.read(&mut chunk).await.unwrap();
        assert!(n > 0, "the client closed the connection");
        data.extend_from_slice(&chunk[..n]);
        if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
    };
    let head = String::from_utf8_lossy(&data[..head_end]).to_ascii_lowercase();
    let length = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .map_or(0, |n| n.trim().parse::<usize>().unwrap());
    while data.len() < head_end + length {
        let n = socket.read(&mut chunk).await.unwrap();
        data.extend_from_slice(&chunk[..n]);
    }
    let method = head.split(' ').next().unwrap().to_owned();
    (method, data[head_end..head_end + length].to_vec())
}

/// A server that initializes, accepts notifications, holds every GET
/// stream open forever, and reports each method it sees.
async fn serve(listener: TcpListener, seen: mpsc::UnboundedSender<String>) {
    loop {
        let (mut socket, _) = listener.accept().await.unwrap();
        let seen = seen.clone();
        tokio::spawn(async move {
            let (method, body) = read_request(&mut socket).await;
            let _ = seen.send(method.clone());
            let response = match method.as_str() {
                "post" if String::from_utf8_lossy(&body).contains("\"initialize\"") => {
                    let answer = r#"{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-06-18","capabilities":{},"serverInfo":{"name":"t","version":"1"}}}"#;
                    format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nmcp-session-id: s-9\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
                        answer.len()
                    )
                }
                "get" => "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\n: open\n\n"
                    .to_owned(),
                _ => "HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                    .to_owned(),
            };
            socket.write_all(response.as_bytes()).await.unwrap();
            // Keep the socket open until the client goes away.
            let mut rest = [0u8; 64];
            while matches!(socket.read(&mut rest).await, Ok(n) if n > 0) {}
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_link_stops_every_task_and_ends_the_session() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (seen_tx, mut seen) = mpsc::unbounded_channel();
    let server = tokio::spawn(serve(listener, seen_tx));
    let connector = HttpConnector::new(HttpTarget {
        server: ServerId::new("drop-test").unwrap(),
        url: format!("http://127.0.0.1:{port}/mcp"),
        headers: BTreeMap::new(),
        max_message: 1 << 20,
        credentials: None,
    });
    let TransportLink {
        outbound,
        mut inbound,
        closer,
        ..
    } = connector.connect().await.unwrap();
    outbound
        .send(Message::request(1, "initialize", None))
        .await
        .unwrap();
    let Some(Inbound::Message(Message::Response(answer))) = inbound.recv().await else {
        panic!("no answer to initialize");
    };
    assert_eq!(answer.id, RequestId::Number(1));
    outbound
        .send(Message::notification(Method::Initialized.as_str(), None))
        .await
        .unwrap();
    // The standalone stream opens after the notification.
    let mut methods = Vec::new();
    while !methods.contains(&"get".to_owned()) {
        methods.push(seen.recv().await.unwrap());
    }

    // Dropped without closing: every task ends (the inbound channel has
    // no sender left) and the session is ended.
    drop(outbound);
    drop(closer);
    let drained = tokio::time::timeout(Duration::from_secs(5), async {
        while inbound.recv().await.is_some() {}
    })
    .await;
    assert!(
        drained.is_ok(),
        "a task of the dropped link is still running"
    );
    let delete = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(method) = seen.recv().await {
            if method == "delete" {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(delete, Ok(true));
    server.abort();
}

#[test]
fn stateless_requests_carry_routing_headers() {
    let params = serde_json::json!({
        "name": "naïve tool",
        "arguments": {},
        "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28"},
    });
    let request = Request {
        id: RequestId::Number(1),
        method: Cow::Borrowed("tools/call"),
        params: Some(Raw::from_value(&params)),
    };
    let (version, headers) = request_headers(&request, &MirroredArguments::default());
    assert_eq!(version, Some(ProtocolVersion::V2026_07_28));
    let shown: Vec<(String, String)> = headers
        .iter()
        .map(|(name, value)| (name.to_string(), value.to_str().unwrap().to_owned()))
        .collect();
    assert_eq!(
        shown,
        [
            ("mcp-protocol-version".to_owned(), "2026-07-28".to_owned()),
            ("mcp-method".to_owned(), "tools/call".to_owned()),
            (
                "mcp-name".to_owned(),
                "=?base64?bmHDr3ZlIHRvb2w=?=".to_owned()
            ),
        ]
    );
    // A stateful request carries none.
    let stateful = Request {
        params: Some(Raw::from_value(&serde_json::json!({"name": "x"}))),
        ..request
    };
    assert_eq!(
        request_headers(&stateful, &MirroredArguments::default())
            .1
            .len(),
        0
    );
}

#[test]
fn mirrored_arguments_are_learned_from_tool_lists() {
    let mirrored = MirroredArguments::default();
    let tools = serde_json::json!({"tools": [
        {"name": "route", "inputSchema": {"type": "object", "properties": {
            "region": {"type": "string", "x-mcp-header": "Region"},
            "priority": {"type": "integer", "x-mcp-header": "Priority"},
            "query": {"type": "string"},
        }}},
        {"name": "broken", "inputSchema": {"type": "object", "properties": {
            "a": {"type": "string", "x-mcp-header": ""},
        }}},
    ]});
    let answer = |result: &serde_json::Value| {
        Message::Response(mcp_protocol::jsonrpc::Response {
            id: RequestId::Number(1),
            result: Raw::from_value(result),
        })
    };
    mirrored.learn(None, &answer(&tools));
    let call = |name: &str, arguments: serde_json::Value| {
        let params = serde_json::json!({
            "name": name,
            "arguments": arguments,
            "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28"},
        });
        let request = Request {
            id: RequestId::Number(2),
            method: Cow::Borrowed("tools/call"),
            params: Some(Raw::from_value(&params)),
        };
        let (_, headers) = request_headers(&request, &mirrored);
        headers
            .iter()
            .filter(|(name, _)| name.as_str().starts_with("mcp-param-"))
            .map(|(name, value)| (name.to_string(), value.to_str().unwrap().to_owned()))
            .collect::<Vec<_>>()
    };
    let mut sent = call(
        "route",
        serde_json::json!({"region": " eu ", "priority": 3, "query": "q"}),
    );
    sent.sort();
    assert_eq!(
        sent,
        [
            ("mcp-param-priority".to_owned(), "3".to_owned()),
            (
                "mcp-param-region".to_owned(),
                "=?base64?IGV1IA==?=".to_owned()
            ),
        ]
    );
    // A null argument is not sent; a tool with invalid annotations mirrors
    // nothing.
    assert!(call("route", serde_json::json!({"region": null})).is_empty());
    assert!(call("broken", serde_json::json!({"a": "x"})).is_empty());
    // A new first page replaces what was learned.
    mirrored.learn(None, &answer(&serde_json::json!({"tools": []})));
    assert!(call("route", serde_json::json!({"region": "eu"})).is_empty());
}

#[test]
fn urls_are_shown_without_secrets() {
    let url = Url::parse("https://user:pw@example.invalid:8443/mcp?token=abc#x").unwrap();
    assert_eq!(redact(&url), "https://example.invalid:8443/mcp");
    assert_eq!(redact_str("not a url"), "<invalid URL>");
    let target = HttpTarget {
        server: ServerId::new("s").unwrap(),
        url: url.to_string(),
        headers: BTreeMap::from([("Authorization".to_owned(), "Bearer hunter2".to_owned())]),
        max_message: 1,
        credentials: None,
    };
    let shown = format!("{target:?}");
    assert!(
        !shown.contains("hunter2") && !shown.contains("abc"),
        "{shown}"
    );
    assert!(shown.contains("Authorization"));
}

#[test]
fn answers_match_by_id_and_null_id_errors_take_the_request_id() {
    let id = RequestId::Number(4);
    let ok = Message::response(4, Raw::from_value(&serde_json::json!({})));
    assert!(answers(&ok, &id));
    assert!(!answers(&Message::response(5, Raw::from_value(&1)), &id));
    let anonymous = Message::error(None, ErrorObject::new(-32600, "bad"));
    assert!(answers(&anonymous, &id));
    assert_eq!(with_id(anonymous, &id).id(), Some(&id));
    let progress = Message::notification("notifications/progress", None);
    assert!(!answers(&progress, &id));
}

/// A server that answers every request with `response`, as written.
async fn canned(response: impl Into<Arc<str>>) -> String {
    let response: Arc<str> = response.into();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let response = Arc::clone(&response);
            tokio::spawn(async move {
                let _ = read_request(&mut socket).await;
                let _ = socket.write_all(response.as_bytes()).await;
            });
        }
    });
    url
}

fn target(url: &str, headers: &[(&str, &str)]) -> HttpTarget {
    HttpTarget {
        server: ServerId::new("s").unwrap(),
        url: url.to_owned(),
        headers: headers
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect(),
        max_message: 1 << 20,
        credentials: None,
    }
}

#[test]
fn endpoints_refuse_what_cannot_be_sent() {
    let refused = |target: HttpTarget| Endpoint::new(&target).err().unwrap().to_string();
    assert!(refused(target("no url", &[])).contains("is not a valid URL"));
    assert!(refused(target("ftp://127.0.0.1/mcp", &[])).contains("not an http or https URL"));
    let bad_name = refused(target("http://127.0.0.1/mcp", &[("bad name", "x")]));
    assert!(
        bad_name.contains("`bad name` is not a valid HTTP header name"),
        "{bad_name}"
    );
    let bad_value = refused(target("http://127.0.0.1/mcp", &[("X-Key", "a\nb")]));
    assert!(bad_value.contains("value of header `X-Key`"), "{bad_value}");
    assert!(!bad_value.contains("a\nb"), "the value is never shown");
}

#[test]
fn batches_and_garbage_are_sorted_out() {
    let server = ServerId::new("s").unwrap();
    let batch = br#"[{"jsonrpc":"2.0","method":"notifications/x"},{"nope":1},{"jsonrpc":"2.0","id":3,"result":{}}]"#;
    let messages = parse_messages(&server, batch);
    assert_eq!(
        messages.len(),
        2,
        "the element that is no message is skipped"
    );
    assert!(parse_messages(&server, b"not json").is_empty());
    let event = |event: Option<&str>, data: &str| SseEvent {
        event: event.map(str::to_owned),
        data: data.to_owned(),
        ..SseEvent::default()
    };
    assert!(
        event_messages(&server, &event(None, "  ")).is_empty(),
        "priming"
    );
    let note = r#"{"jsonrpc":"2.0","method":"notifications/x"}"#;
    assert!(event_messages(&server, &event(Some("other"), note)).is_empty());
    assert_eq!(event_messages(&server, &event(None, note)).len(), 1);
}

#[tokio::test]
async fn error_responses_say_why() {
    let detail = |response: String| async move {
        let url = canned(response).await;
        install_crypto_provider();
        let response = client().unwrap().get(&url).send().await.unwrap();
        error_detail(response).await
    };
    let rpc = r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"no session"}}"#;
    let with_rpc = format!(
        "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{rpc}",
        rpc.len()
    );
    assert_eq!(detail(with_rpc).await, "HTTP 400 Bad Request: no session");
    let long = format!(
        "HTTP/1.1 502 Bad Gateway\r\ncontent-length: 300\r\nconnection: close\r\n\r\n{}",
        "x".repeat(300)
    );
    let shown = detail(long).await;
    assert!(
        shown.starts_with("HTTP 502 Bad Gateway: xxx") && shown.ends_with('…'),
        "{shown}"
    );
    assert!(shown.len() < 240, "cut short: {shown}");
    let empty =
        "HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
    assert_eq!(
        detail(empty.to_owned()).await,
        "HTTP 500 Internal Server Error"
    );
}

#[tokio::test]
async fn a_legacy_stream_that_goes_wrong_fails_the_start_with_why() {
    use crate::transport::Connector;
    use crate::transport::sse::SseConnector;
    let start = |response: &'static str| async move {
        let url = canned(response).await;
        match SseConnector::new(target(&url, &[])).connect().await {
            Ok(_) => panic!("no link was to be made"),
            Err(error) => error.to_string(),
        }
    };
    let refused =
        start("HTTP/1.1 404 Not Found\r\ncontent-length: 4\r\nconnection: close\r\n\r\nnope").await;
    assert!(
        refused.contains("refused the event stream: HTTP 404 Not Found: nope"),
        "{refused}"
    );
    let not_a_stream = start(
        "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\nconnection: close\r\n\r\nhi",
    )
    .await;
    assert!(
        not_a_stream.contains("answered with `text/plain`, not an event stream"),
        "{not_a_stream}"
    );
    let ended = start(
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\nevent: hello\ndata: x\n\n",
    )
    .await;
    assert!(
        ended.contains("ended before the server said where to send messages"),
        "{ended}"
    );
    let elsewhere = start(
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\nevent: endpoint\ndata: http://127.0.0.2:1/messages\n\n",
    )
    .await;
    assert!(elsewhere.contains("origin"), "{elsewhere}");
    let unreachable = match SseConnector::new(target("http://127.0.0.1:1/sse", &[]))
        .connect()
        .await
    {
        Ok(_) => panic!("nothing listens on port 1"),
        Err(error) => error.to_string(),
    };
    assert!(unreachable.contains("could not reach"), "{unreachable}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_legacy_post_that_fails_answers_its_request_with_why() {
    use crate::transport::sse::SseConnector;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/sse", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (method, _) = read_request(&mut socket).await;
                let response = if method == "get" {
                    "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\nevent: endpoint\ndata: /message?sessionId=1\n\n"
                } else {
                    "HTTP/1.1 500 Internal Server Error\r\ncontent-length: 7\r\nconnection: close\r\n\r\nbroken!"
                };
                let _ = socket.write_all(response.as_bytes()).await;
                let mut rest = [0u8; 64];
                while matches!(socket.read(&mut rest).await, Ok(n) if n > 0) {}
            });
        }
    });
    let runtime = crate::McpRuntime::start();
    let spec = crate::ServerSpec::new(
        ServerId::new("s").unwrap(),
        Arc::new(SseConnector::new(target(&url, &[]))),
    );
    let Err(failed) = crate::Server::new(runtime.clone(), spec).deploy().await else {
        panic!("the handshake's POST failed");
    };
    let error = failed.error().to_string();
    assert!(
        error.contains(
            "`initialize` could not be carried over HTTP: HTTP 500 Internal Server Error: broken!"
        ),
        "{error}"
    );
    runtime.shutdown().await;
}

/// A server that answers each request as `answer` says for its
/// `Authorization` header (lowercased).
async fn auth_server(answer: fn(Option<&str>) -> &'static str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut chunk = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    let n = socket.read(&mut chunk).await.unwrap();
                    if n == 0 {
                        return;
                    }
                    head.extend_from_slice(&chunk[..n]);
                }
                let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
                let authorization = head
                    .lines()
                    .find_map(|line| line.strip_prefix("authorization: "))
                    .map(str::to_owned);
                let response = answer(authorization.as_deref());
                let _ = socket.write_all(response.as_bytes()).await;
            });
        }
    });
    url
}

/// A refusal a token source was told of: the token sent, the status, the
/// challenge.
type Refusal = (Option<String>, u16, Option<String>);

/// A token source that hands out `token-1`, `token-2`, ... and counts.
#[derive(Default)]
struct Counting {
    current: std::sync::Mutex<Option<Arc<str>>>,
    refusals: AtomicU32,
    seen: std::sync::Mutex<Vec<Refusal>>,
}

impl TokenSource for Counting {
    fn token(&self) -> Option<Arc<str>> {
        self.current.lock().unwrap().clone()
    }

    fn refused<'a>(
        &'a self,
        sent: Option<&'a str>,
        status: u16,
        challenge: Option<&'a str>,
    ) -> BoxFuture<'a, std::result::Result<Arc<str>, String>> {
        let n = self
            .refusals
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1;
        self.seen.lock().unwrap().push((
            sent.map(str::to_owned),
            status,
            challenge.map(str::to_owned),
        ));
        let token: Arc<str> = Arc::from(format!("token-{n}"));
        *self.current.lock().unwrap() = Some(token.clone());
        Box::pin(std::future::ready(Ok(token)))
    }
}

fn endpoint_with(url: &str, source: Arc<Counting>) -> Endpoint {
    let mut target = target(url, &[]);
    target.credentials = Some(source);
    Endpoint::new(&target).unwrap()
}

const OK: &str = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok";
const ASK: &str = "HTTP/1.1 401 Unauthorized\r\nwww-authenticate: Bearer scope=\"a\"\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
const MORE: &str = "HTTP/1.1 403 Forbidden\r\nwww-authenticate: Bearer error=\"insufficient_scope\", scope=\"a b\"\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
const BASIC: &str = "HTTP/1.1 401 Unauthorized\r\nwww-authenticate: Basic realm=\"x\"\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";

#[tokio::test]
async fn a_challenge_gets_a_new_token_and_the_request_is_sent_again() {
    install_crypto_provider();
    // No token: asked for one; token-1: asked for more scopes; token-2: in.
    let url = auth_server(|authorization| match authorization {
        None => ASK,
        Some("bearer token-1") => MORE,
        Some(_) => OK,
    })
    .await;
    let source = Arc::new(Counting::default());
    let endpoint = endpoint_with(&url, source.clone());
    let request = endpoint.request(reqwest::Method::POST, endpoint.url.clone(), &[]);
    let response = endpoint.send(request.body("{}")).await.ok().unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let seen = source.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0], (None, 401, Some("Bearer scope=\"a\"".to_owned())));
    assert_eq!(seen[1].0.as_deref(), Some("token-1"));
    assert_eq!(seen[1].1, 403);
    // The next request starts with the token that worked.
    let request = endpoint.request(reqwest::Method::POST, endpoint.url.clone(), &[]);
    let response = endpoint.send(request.body("{}")).await.ok().unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(source.seen.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn a_server_that_keeps_refusing_gets_two_new_tokens_per_request_and_no_more() {
    install_crypto_provider();
    let url = auth_server(|_| MORE).await;
    let source = Arc::new(Counting::default());
    let endpoint = endpoint_with(&url, source.clone());
    let request = endpoint.request(reqwest::Method::POST, endpoint.url.clone(), &[]);
    let response = endpoint.send(request.body("{}")).await.ok().unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        source.refusals.load(std::sync::atomic::Ordering::Relaxed),
        NEW_TOKENS_PER_REQUEST
    );
}

#[tokio::test]
async fn a_challenge_of_another_scheme_or_a_plain_403_stands() {
    install_crypto_provider();
    for answer in [
        (|_: Option<&str>| BASIC) as fn(Option<&str>) -> &'static str,
        |_| "HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
    ] {
        let url = auth_server(answer).await;
        let source = Arc::new(Counting::default());
        let endpoint = endpoint_with(&url, source.clone());
        let request = endpoint.request(reqwest::Method::POST, endpoint.url.clone(), &[]);
        let response = endpoint.send(request.body("{}")).await.ok().unwrap();
        assert!(response.status().is_client_error());
        assert_eq!(
            source.refusals.load(std::sync::atomic::Ordering::Relaxed),
            0
        );
    }
}
