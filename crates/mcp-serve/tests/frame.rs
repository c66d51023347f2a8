//! Serving an in-process server on a frame socket: the runtime's frame
//! client through it, bad frames from raw clients, the socket's safety and
//! the drain on shutdown.
#![cfg(unix)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use common::Keeper;
use mcp_core::{BoxFuture, HandlerResult, McpServer, RequestContext, ServerId};
use mcp_protocol::codec::frame::{self, FrameDecoder, FrameKind, Payload};
use mcp_protocol::raw::Raw;
use mcp_protocol::{ErrorObject, Message, Notification, Request};
use mcp_runtime::transport::frame::FrameConnector;
use mcp_runtime::{CallOptions, McpRuntime, Server, ServerSpec};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::sync::oneshot;

/// Answers `initialize`, doubles numbers (logging as it does), and sleeps.
struct Doubler;

impl McpServer for Doubler {
    fn handle_request(
        &self,
        request: Request<'static>,
        context: RequestContext,
    ) -> BoxFuture<'_, HandlerResult> {
        Box::pin(async move {
            let params: Value = request.params.map_or(Value::Null, |p| p.parse().unwrap());
            match &*request.method {
                "initialize" => Ok(Raw::from_value(&json!({
                    "protocolVersion": "2025-11-25",
                    "capabilities": {"logging": {}},
                    "serverInfo": {"name": "doubler", "version": "1"}
                }))),
                "ping" => Ok(Raw::from_value(&json!({}))),
                "double" => {
                    context
                        .notify(Notification {
                            method: "notifications/message".into(),
                            params: Some(Raw::from_value(
                                &json!({"level": "info", "data": "doubling"}),
                            )),
                        })
                        .await;
                    Ok(Raw::from_value(
                        &json!({"n": params["n"].as_i64().unwrap() * 2}),
                    ))
                }
                "big" => {
                    let size = usize::try_from(params["size"].as_u64().unwrap()).unwrap();
                    Ok(Raw::from_value(&json!({"text": "x".repeat(size)})))
                }
                "ask" => {
                    let answer = context
                        .request(
                            "sampling/createMessage",
                            Some(Raw::from_value(&json!({"q": 1}))),
                        )
                        .await?;
                    Ok(Raw::from_value(
                        &json!({"client said": answer.parse::<Value>().unwrap()}),
                    ))
                }
                "progress" => {
                    let token = params["_meta"]["progressToken"].clone();
                    for step in 1..=3 {
                        let progress = json!({"progressToken": token, "progress": step});
                        context
                            .notify(Notification {
                                method: "notifications/progress".into(),
                                params: Some(Raw::from_value(&progress)),
                            })
                            .await;
                    }
                    Ok(Raw::from_value(&json!({"done": true})))
                }
                "forever" => {
                    let _dropped = DropFlag;
                    std::future::pending().await
                }
                "slow" => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    Ok(Raw::from_value(&json!({"slept": true})))
                }
                other => Err(ErrorObject::new(-32601, format!("no {other}"))),
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

/// Counts the `forever` requests whose handler was dropped (cancelled).
static DROPPED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

struct DropFlag;

impl Drop for DropFlag {
    fn drop(&mut self) {
        DROPPED.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Answers the server's requests to the client with what was asked.
struct Answering;

impl mcp_core::Peer for Answering {
    fn notify(&self, _: Notification<'static>) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }

    fn request(&self, method: &str, params: Option<Raw<'static>>) -> BoxFuture<'_, HandlerResult> {
        let params: Value = params.map_or(Value::Null, |p| p.parse().unwrap());
        let answer = json!({"method": method, "params": params});
        Box::pin(async move { Ok(Raw::from_value(&answer)) })
    }
}

/// Serves [`Doubler`] on a socket in a fresh private directory; the sender
/// stops it.
struct Serving {
    path: PathBuf,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    _dir: tempfile::TempDir,
}

fn serve() -> Serving {
    serve_with(Arc::new(Doubler), mcp_serve::FrameServeOptions::default())
}

/// Serves `server` with `options`, as [`serve`] does.
fn serve_with(server: Arc<dyn McpServer>, options: mcp_serve::FrameServeOptions) -> Serving {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mcp.sock");
    let listener = mcp_serve::bind_frame_socket(&path).unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(mcp_serve::serve_frames(
        server,
        listener,
        Some(path.clone()),
        options,
        async move {
            let _ = stopped.await;
        },
    ));
    Serving {
        path,
        stop,
        task,
        _dir: dir,
    }
}

/// The runtime's frame-socket client, deployed on `runtime` to the socket
/// at `path`.
async fn connect(runtime: &McpRuntime, path: &Path) -> Server<mcp_core::state::Deployed> {
    let id = ServerId::new("framed").unwrap();
    let connector = FrameConnector::new(id.clone(), path.to_owned(), 1 << 20);
    Server::new(runtime.clone(), ServerSpec::new(id, Arc::new(connector)))
        .deploy()
        .await
        .map_err(|failed| failed.error().to_string())
        .unwrap()
}

/// Sends `bytes` on a fresh connection and reads every frame that comes
/// back until the server closes it.
async fn exchange(path: &Path, bytes: &[u8]) -> Vec<(FrameKind, Value)> {
    let mut stream = UnixStream::connect(path).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    // The end of the client's input: what was cut short stays so.
    stream.shutdown().await.unwrap();
    let mut buf = BytesMut::new();
    let read = tokio::time::timeout(Duration::from_secs(10), async {
        while stream.read_buf(&mut buf).await.unwrap() > 0 {}
    });
    read.await.expect("the server closes the connection");
    let mut decoder = FrameDecoder::default();
    let mut frames = Vec::new();
    while let Some(frame) = decoder.decode(&mut buf).unwrap() {
        let Payload::Inline(payload) = frame.payload else {
            panic!("inline payloads only");
        };
        frames.push((frame.kind, serde_json::from_slice(&payload).unwrap()));
    }
    frames
}

fn message_frame(message: &Message<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    frame::encode_message(message, &mut out);
    out
}

#[tokio::test]
async fn the_runtime_reaches_a_server_through_the_frame_socket() {
    let serving = serve();
    let mode = std::fs::metadata(&serving.path)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "the socket is the user's only");
    let runtime = McpRuntime::start();
    let mut events = runtime.subscribe();
    let server = connect(&runtime, &serving.path).await;
    let session = server.handle().session().unwrap();
    assert_eq!(session.server_info.name, "doubler");
    let result = server
        .handle()
        .request(
            "double",
            Some(Raw::from_value(&json!({"n": 21}))),
            CallOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(result.parse::<Value>().unwrap(), json!({"n": 42}));
    let event = events.recv().await.unwrap();
    assert_eq!(event.notification.method, "notifications/message");
    let error = server
        .handle()
        .request("nothing", None, CallOptions::default())
        .await
        .unwrap_err();
    assert_eq!(error.rpc_error().map(|e| e.code), Some(-32601));
    // Large answers cross mapped, whole; small ones still inline after them.
    // 20 MiB: more than the 16 MiB an inline frame may carry.
    for size in [1 << 20, 20 << 20] {
        let big = server
            .handle()
            .request(
                "big",
                Some(Raw::from_value(&json!({"size": size}))),
                CallOptions::default(),
            )
            .await
            .unwrap();
        let text = big.parse::<Value>().unwrap()["text"]
            .as_str()
            .unwrap()
            .len();
        assert_eq!(text, size);
    }
    let again = server
        .handle()
        .request(
            "double",
            Some(Raw::from_value(&json!({"n": 1}))),
            CallOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(again.parse::<Value>().unwrap(), json!({"n": 2}));
    runtime.shutdown().await;
    serving.stop.send(()).unwrap();
    serving.task.await.unwrap().unwrap();
    assert!(!serving.path.exists(), "the socket file is removed");
}

#[tokio::test]
async fn a_client_request_too_large_for_the_server_is_refused_with_an_error_frame() {
    let options = mcp_serve::FrameServeOptions {
        max_message: 1024,
        ..mcp_serve::FrameServeOptions::default()
    };
    let serving = serve_with(Arc::new(Doubler), options);
    // A mapped request over the server's limit, sent by the runtime's
    // writer (which maps anything over 16 bytes here).
    let stream = Arc::new(UnixStream::connect(&serving.path).await.unwrap());
    let mut writer = mcp_runtime::transport::frame::io::FrameWriter::new(stream.clone(), 16);
    let large = Message::request(
        1,
        "double",
        Some(Raw::from_value(&json!({"n": 1, "pad": "x".repeat(4096)}))),
    );
    writer.push(&large).await.unwrap();
    writer.flush().await.unwrap();
    let mut reader = mcp_runtime::transport::frame::io::FrameReader::new(stream, 1 << 20, 0);
    let error = reader.next().await.unwrap().unwrap_err();
    assert!(
        error.to_string().contains("over the limit of 1024"),
        "{error}"
    );
    serving.stop.send(()).unwrap();
    serving.task.await.unwrap().unwrap();
}

#[tokio::test]
async fn bad_frames_are_answered_with_an_error_frame_and_close_only_their_connection() {
    let serving = serve();
    let ping = message_frame(&Message::request(1, "ping", None));

    let mut bad_magic = ping.clone();
    bad_magic[0] = b'X';
    let mut new_version = ping.clone();
    new_version[4] = 2;
    let mut too_long = ping.clone();
    too_long[27] = 0x40;
    let mut not_json = BytesMut::new();
    frame::encode(FrameKind::Message, 0, b"{nope", &mut not_json);
    let mapped = frame::mapped_header(FrameKind::Message, 1, 64);
    let cut_short = &ping[..10];
    let cases: [(&[u8], &str, i64); 6] = [
        (&bad_magic, "magic", -32600),
        (&new_version, "frame version 2 is not supported", -32600),
        (&too_long, "over the limit", -32600),
        (&not_json, "", -32700),
        (&mapped, "came without its descriptor", -32600),
        (cut_short, "within a frame's header", -32600),
    ];
    for (bytes, says, code) in cases {
        let frames = exchange(&serving.path, bytes).await;
        let (kind, error) = frames.last().expect("an error frame");
        assert_eq!(*kind, FrameKind::Error, "{frames:?}");
        assert_eq!(error["code"], code, "{error}");
        assert!(error["message"].as_str().unwrap().contains(says), "{error}");
        assert_eq!(error["data"]["frameVersions"], json!([1]));
    }
    // A good client is answered all along, and a request before a bad frame
    // on the same connection still gets its answer.
    let mut good_then_bad = ping.clone();
    good_then_bad.extend_from_slice(&bad_magic);
    let frames = exchange(&serving.path, &good_then_bad).await;
    assert_eq!(frames.len(), 2, "{frames:?}");
    assert_eq!(
        frames[0],
        (
            FrameKind::Message,
            json!({"jsonrpc": "2.0", "id": 1, "result": {}})
        )
    );
    assert_eq!(frames[1].0, FrameKind::Error);
    // A bad frame followed by much more: the reason still arrives.
    let mut bad_then_more = bad_magic.clone();
    bad_then_more.extend(std::iter::repeat_n(0_u8, 1 << 20));
    let frames = exchange(&serving.path, &bad_then_more).await;
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert!(
        frames[0].1["message"].as_str().unwrap().contains("magic"),
        "{frames:?}"
    );
    serving.stop.send(()).unwrap();
    serving.task.await.unwrap().unwrap();
}

#[tokio::test]
async fn requests_and_connections_over_their_limits_are_refused_and_the_rest_served() {
    let options = mcp_serve::FrameServeOptions {
        max_connections: 1,
        max_in_flight_per_connection: 2,
        ..mcp_serve::FrameServeOptions::default()
    };
    let serving = serve_with(Arc::new(Doubler), options);
    // One connection held open: a second one is refused.
    let held = UnixStream::connect(&serving.path).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let frames = exchange(
        &serving.path,
        &message_frame(&Message::request(9, "ping", None)),
    )
    .await;
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert_eq!(frames[0].0, FrameKind::Error);
    assert!(
        frames[0].1["message"]
            .as_str()
            .unwrap()
            .contains("at most 1 connections"),
        "{frames:?}"
    );
    drop(held);
    tokio::time::sleep(Duration::from_millis(50)).await;

    // Two slow requests fill the connection's room; the third is refused
    // at once, and the two are answered.
    let mut bytes = Vec::new();
    for (id, method) in [(1, "slow"), (2, "slow"), (3, "ping")] {
        bytes.extend(message_frame(&Message::request(id, method, None)));
    }
    let frames = exchange(&serving.path, &bytes).await;
    assert_eq!(frames.len(), 3, "{frames:?}");
    assert_eq!(frames[0].1["id"], 3, "{frames:?}");
    assert_eq!(frames[0].1["error"]["code"], -32603);
    assert!(
        frames[0].1["error"]["message"]
            .as_str()
            .unwrap()
            .contains("this connection has its limit of 2"),
        "{frames:?}"
    );
    let mut slept: Vec<i64> = frames[1..]
        .iter()
        .map(|(_, answer)| {
            assert_eq!(answer["result"], json!({"slept": true}), "{answer}");
            answer["id"].as_i64().unwrap()
        })
        .collect();
    slept.sort_unstable();
    assert_eq!(slept, [1, 2]);
    serving.stop.send(()).unwrap();
    serving.task.await.unwrap().unwrap();
}

#[tokio::test]
async fn requests_running_at_shutdown_are_answered_before_the_socket_closes() {
    let serving = serve();
    let mut stream = UnixStream::connect(&serving.path).await.unwrap();
    stream
        .write_all(&message_frame(&Message::request(7, "slow", None)))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    serving.stop.send(()).unwrap();
    let mut buf = BytesMut::new();
    while stream.read_buf(&mut buf).await.unwrap() > 0 {}
    let frame = FrameDecoder::default().decode(&mut buf).unwrap().unwrap();
    let Payload::Inline(payload) = frame.payload else {
        panic!("inline");
    };
    assert_eq!(frame.id, 7);
    let answer: Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(answer["result"], json!({"slept": true}));
    serving.task.await.unwrap().unwrap();
}

#[tokio::test]
async fn the_socket_goes_only_where_it_is_safe() {
    let dir = tempfile::tempdir().unwrap();
    // A stale socket is replaced; a live one is not.
    let path = dir.path().join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    let live = mcp_serve::bind_frame_socket(&path).unwrap();
    let error = mcp_serve::bind_frame_socket(&path).unwrap_err();
    assert!(
        error.to_string().contains("a server answers on it"),
        "{error}"
    );
    drop(live);
    // Something else at the path is left alone.
    let file = dir.path().join("file");
    std::fs::write(&file, "keep").unwrap();
    let error = mcp_serve::bind_frame_socket(&file).unwrap_err();
    assert!(error.to_string().contains("not a socket"), "{error}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep");
    // A directory others may write to is refused.
    let open = dir.path().join("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    let error = mcp_serve::bind_frame_socket(&open.join("mcp.sock")).unwrap_err();
    assert!(
        error.to_string().contains("not be writable by others"),
        "{error}"
    );
}

#[tokio::test]
async fn progress_requests_to_the_client_and_cancellation_cross_the_socket() {
    let serving = serve();
    let runtime = McpRuntime::start();
    let server = connect(&runtime, &serving.path).await;
    let handle = server.handle();

    let (sink, mut progress) = tokio::sync::mpsc::channel(8);
    let options = CallOptions {
        progress: Some(sink),
        ..CallOptions::default()
    };
    let params = json!({"_meta": {"progressToken": "p"}});
    let done = handle
        .request("progress", Some(Raw::from_value(&params)), options)
        .await
        .unwrap();
    assert_eq!(done.parse::<Value>().unwrap(), json!({"done": true}));
    let mut steps = Vec::new();
    while let Ok(note) = progress.try_recv() {
        let value: Value = note.params.unwrap().parse().unwrap();
        assert_eq!(value["progressToken"], "p");
        steps.push(value["progress"].as_u64().unwrap());
    }
    assert_eq!(steps, [1, 2, 3]);

    let options = CallOptions {
        requester: Some(RequestContext::new(Arc::new(Answering))),
        ..CallOptions::default()
    };
    let asked = handle.request("ask", None, options).await.unwrap();
    assert_eq!(
        asked.parse::<Value>().unwrap(),
        json!({"client said": {"method": "sampling/createMessage", "params": {"q": 1}}})
    );

    // A caller that stops waiting cancels the request at the server.
    let forever = handle.request("forever", None, CallOptions::default());
    assert!(
        tokio::time::timeout(Duration::from_millis(100), forever)
            .await
            .is_err()
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while DROPPED.load(std::sync::atomic::Ordering::SeqCst) == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the handler was not cancelled"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    runtime.shutdown().await;
    serving.stop.send(()).unwrap();
    serving.task.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_session_whose_client_left_is_closed_though_the_server_keeps_its_peer() {
    let keeper = Arc::new(Keeper::default());
    // A drain far longer than the test: the session must end on its own.
    let options = mcp_serve::FrameServeOptions {
        drain: Duration::from_secs(600),
        ..mcp_serve::FrameServeOptions::default()
    };
    let serving = serve_with(keeper.clone(), options);
    let frames = exchange(
        &serving.path,
        &message_frame(&Message::request(1, "keep", None)),
    )
    .await;
    assert_eq!(frames.len(), 1, "{frames:?}");
    let kept = keeper.0.lock().unwrap().first().cloned().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !kept.is_closed() {
        assert!(
            std::time::Instant::now() < deadline,
            "the session is still open"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    serving.stop.send(()).unwrap();
    serving.task.await.unwrap().unwrap();
}
