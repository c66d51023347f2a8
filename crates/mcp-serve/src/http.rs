//! Serving an [`McpServer`] over Streamable HTTP: one endpoint, `/mcp`, for
//! any number of clients (the server side of `mcp_runtime::transport::http`).
//!
//! # Protocol
//!
//! - **POST** carries one JSON-RPC message. `initialize` opens a session:
//!   its answer carries a random `Mcp-Session-Id` that every later message
//!   must send (missing: 400, unknown or ended: 404). Notifications and
//!   responses are accepted with 202; a response answers the server's
//!   request of that id. A request is answered with an `application/json`
//!   body, or with a `text/event-stream` that ends with the answer when
//!   something must come first: every notification the server sends while
//!   handling it, when the request carries a progress token
//!   (`params._meta.progressToken`), and every request the server makes of
//!   the client meanwhile (sampling, elicitation, roots), whose answer the
//!   client POSTs back. `notifications/cancelled` aborts the named request of the
//!   session. Every event of a session's request stream has an id
//!   (`STREAM-SEQ`); a client that loses the connection does not cancel the
//!   request: it GETs the endpoint with `Last-Event-ID` and gets the events
//!   it missed, then the rest of the stream (the last 16
//!   streams of a session are kept, each up to 256 events or 1 MiB; a
//!   stream read to its end keeps only its answer). A
//!   stateless request, which cannot be resumed, is cancelled when its
//!   client hangs up, and so is a request answered with plain JSON.
//! - **Stateless requests (2026-07-28)**: a POST whose `_meta` (or whose
//!   `MCP-Protocol-Version` header) names a version without sessions is
//!   handled without one; whatever the server sends while handling it
//!   (progress, log messages, the stream of `subscriptions/listen`) comes
//!   on its own event stream. An `Mcp-Method` header must name the body's
//!   method (else 400, `-32020`).
//! - **GET** with `Accept: text/event-stream` opens the session's stream for
//!   what the server sends outside any request (without that Accept: 406).
//!   A comment is sent on it every [`HttpServeOptions::keep_alive`]. A new
//!   GET replaces the session's previous stream.
//! - **DELETE** ends the session (200) and aborts its requests.
//!
//! # The legacy HTTP+SSE transport (2024-11-05)
//!
//! For clients from before Streamable HTTP: **GET** [`SSE_PATH`] opens a
//! session whose event stream starts with an `endpoint` event naming
//! [`MESSAGE_PATH`]`?sessionId=ID`; every message the client sends is
//! POSTed there (202), and everything for the client (answers,
//! notifications, requests to the client) comes on the stream. The session
//! ends when the stream does. The same checks and limits apply.
//!
//! # Safe defaults
//!
//! When bound to a loopback address, the `Host` header must name
//! `localhost`, `127.0.0.1` or `[::1]` (with no port or the listener's),
//! and an `Origin` header, when present, must be a loopback origin; else
//! 403. This stops DNS-rebinding pages from reaching a local gateway. With
//! [`HttpServeOptions::auth_token`], every request needs
//! `Authorization: Bearer <token>` (compared in constant time), else 401.
//! Bodies over [`HttpServeOptions::max_body`] get 413, a body that is not
//! JSON 400 with a `-32700` error, an unknown `MCP-Protocol-Version` 400.
//! The number of sessions is capped, in all
//! ([`HttpServeOptions::max_sessions`]) and per client address
//! ([`HttpServeOptions::max_sessions_per_client`]), then 503; so are the
//! requests in flight per session
//! ([`HttpServeOptions::max_in_flight_per_session`]) and per client address
//! ([`HttpServeOptions::max_in_flight_per_client`]), then 429. Every refusal
//! carries a JSON-RPC error that says which limit it hit. A session that has
//! been idle (nothing in flight, no open stream, no message) for
//! [`HttpServeOptions::session_idle_timeout`] is ended; its client gets 404
//! and starts a new one, as the protocol says.
//!
//! # Shutdown
//!
//! When the `shutdown` future resolves, [`serve_http`] stops accepting,
//! closes the session streams, lets requests in flight finish for up to
//! [`HttpServeOptions::drain`], aborts what is left and returns.
//!
//! Session state lives behind short-lived `std` mutexes that are never held
//! across an `.await`; every stream is a bounded channel.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::{Body, Frame, Incoming};
use hyper::header::{HeaderMap, HeaderValue};
use hyper::service::service_fn;
use hyper::{Method as HttpMethod, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use mcp_core::{BoxFuture, HandlerResult, McpServer, Peer, RequestContext};
use mcp_protocol::codec::sse::SseEvent;
use mcp_protocol::jsonrpc::error_code;
use mcp_protocol::mcp::{CancelledParams, Method, RequestMeta, View};
use mcp_protocol::raw::{Raw, RawObject};
use mcp_protocol::{
    BatchPolicy, ErrorObject, Message, Notification, Packet, ProtocolVersion, Request, RequestId,
};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::{AbortHandle, JoinSet};

use mcp_runtime::dispatch::{SharedAsked, ask_client};
use mcp_runtime::observe::{NoObserver, Observer};
use mcp_runtime::transport::CHANNEL_CAPACITY;

use crate::lock;

/// The path of the MCP endpoint.
pub const MCP_PATH: &str = "/mcp";
/// The event stream of the legacy HTTP+SSE transport (2024-11-05).
pub const SSE_PATH: &str = "/sse";
/// Where clients of the legacy transport POST their messages.
pub const MESSAGE_PATH: &str = "/message";

const SESSION_HEADER: &str = "mcp-session-id";
const VERSION_HEADER: &str = "mcp-protocol-version";
const METHOD_HEADER: &str = "mcp-method";
const EVENT_STREAM: &str = "text/event-stream";
const JSON: &str = "application/json";
/// The JSON-RPC code of a request cancelled before it was answered.
const REQUEST_CANCELLED: i64 = -32800;
/// How long the error answers of requests cancelled at shutdown may take
/// to go out before their connections are closed.
const CANCEL_FLUSH: Duration = Duration::from_secs(2);
/// How long a client may take to send a request's headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// How [`serve_http`] serves.
#[derive(Clone, Debug)]
pub struct HttpServeOptions {
    /// When set, every request must carry `Authorization: Bearer <token>`.
    pub auth_token: Option<String>,
    /// The largest request body accepted, in bytes.
    pub max_body: usize,
    /// How often an idle event stream gets a keep-alive comment.
    pub keep_alive: Duration,
    /// How long requests in flight may take to finish on shutdown; those
    /// still running then are cancelled and answered with an error saying
    /// so.
    pub drain: Duration,
    /// How many sessions may be open at once.
    pub max_sessions: usize,
    /// How many sessions one client address may have open at once.
    pub max_sessions_per_client: usize,
    /// How many requests one session may have in flight at once.
    pub max_in_flight_per_session: usize,
    /// How many requests one client address may have in flight at once,
    /// over all its sessions and stateless requests.
    pub max_in_flight_per_client: usize,
    /// How long a session may stay idle before it is ended; `None` keeps
    /// sessions until their client ends them.
    pub session_idle_timeout: Option<Duration>,
    /// Told of sessions opened and ended and of the bytes in and out.
    pub observer: Arc<dyn Observer>,
}

impl Default for HttpServeOptions {
    fn default() -> Self {
        Self {
            auth_token: None,
            max_body: 4 << 20,
            keep_alive: Duration::from_secs(15),
            drain: Duration::from_secs(10),
            max_sessions: 1024,
            max_sessions_per_client: 256,
            max_in_flight_per_session: 256,
            max_in_flight_per_client: 1024,
            session_idle_timeout: Some(Duration::from_secs(30 * 60)),
            observer: Arc::new(NoObserver),
        }
    }
}

/// Serves `server` on `listener` at [`MCP_PATH`] until `shutdown` resolves.
///
/// # Errors
///
/// The listener's address could not be read.
pub async fn serve_http(
    server: Arc<dyn McpServer>,
    listener: TcpListener,
    options: HttpServeOptions,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let local = listener.local_addr()?;
    let drain = options.drain;
    let (cancel_all, cancel_all_rx) = watch::channel(false);
    let shared = Arc::new(Shared {
        cancel_all: cancel_all_rx,
        server,
        options,
        local,
        sessions: Arc::default(),
        ids: SessionIds::default(),
        in_flight: Arc::default(),
        epoch: tokio::time::Instant::now(),
    });
    let (stop, stopping) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    let idle_timeout = shared.options.session_idle_timeout;
    // Look for idle sessions a few times per timeout (at least once a minute).
    let mut sweep = tokio::time::interval(
        idle_timeout
            .map_or(Duration::from_secs(60), |t| t / 4)
            .clamp(Duration::from_millis(10), Duration::from_secs(60)),
    );
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = sweep.tick(), if idle_timeout.is_some() => {
                if let Some(timeout) = idle_timeout {
                    shared.end_idle_sessions(timeout);
                }
            }
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    connections.spawn(serve_connection(
                        shared.clone(),
                        stream,
                        peer.ip(),
                        stopping.clone(),
                    ));
                }
                Err(error) => {
                    // Out of descriptors, say: back off rather than spin.
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
    drop(listener);
    let _ = stop.send(true);
    // Session streams never end on their own: end them, so that the
    // connections carrying them can close.
    shared.end_streams();
    let drained = tokio::time::timeout(drain, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        // Answer what is still running with an error rather than a closed
        // connection, and give those answers a moment to go out.
        let running = shared.in_flight_requests();
        tracing::warn!(
            "{running} request(s) still running after the drain deadline of {} ms: cancelling them",
            drain.as_millis()
        );
        let _ = cancel_all.send(true);
        let flushed = tokio::time::timeout(CANCEL_FLUSH, async {
            while connections.join_next().await.is_some() {}
        })
        .await;
        if flushed.is_err() {
            connections.abort_all();
            while connections.join_next().await.is_some() {}
        }
    }
    shared.end_all_sessions();
    Ok(())
}

/// Serves one TCP connection until it closes or the server stops.
async fn serve_connection(
    shared: Arc<Shared>,
    stream: tokio::net::TcpStream,
    client: IpAddr,
    mut stopping: watch::Receiver<bool>,
) {
    // Answers are written whole; waiting for more to coalesce only adds
    // latency.
    let _ = stream.set_nodelay(true);
    let service = service_fn(move |request| {
        let shared = shared.clone();
        async move {
            let response = shared.handle(request, client).await;
            let observer = shared.options.observer.clone();
            Ok::<_, Infallible>(response.map(|body| UnsyncBoxBody::new(Counted { body, observer })))
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    let mut connection = std::pin::pin!(connection);
    tokio::select! {
        _ = connection.as_mut() => return,
        _ = stopping.wait_for(|stop| *stop) => connection.as_mut().graceful_shutdown(),
    }
    let _ = connection.await;
}

type ResponseBody = UnsyncBoxBody<Bytes, Infallible>;

/// A response body that reports the bytes it sends.
struct Counted {
    body: ResponseBody,
    observer: Arc<dyn Observer>,
}

impl Body for Counted {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            if let Some(data) = frame.data_ref() {
                self.observer.bytes_out(data.len() as u64);
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}
type HttpResponse = hyper::Response<ResponseBody>;

/// What all connections share.
struct Shared {
    server: Arc<dyn McpServer>,
    options: HttpServeOptions,
    local: SocketAddr,
    sessions: Arc<Mutex<HashMap<String, Arc<Session>>>>,
    ids: SessionIds,
    /// Requests in flight per client address.
    in_flight: Arc<Mutex<HashMap<IpAddr, usize>>>,
    /// The clock sessions' last activity is measured from.
    epoch: tokio::time::Instant,
    /// Turns true when the drain deadline has passed: every request still
    /// running is cancelled and answered with an error.
    cancel_all: watch::Receiver<bool>,
}

/// One client session.
struct Session {
    /// The address of the client that opened it.
    client: IpAddr,
    /// Its [`Peer::session`] key.
    key: u64,
    /// The session's own stream (the GET), as encoded events.
    stream: Mutex<Option<mpsc::Sender<Bytes>>>,
    /// Its requests in flight, for `notifications/cancelled`.
    running: Mutex<HashMap<RequestId<'static>, AbortHandle>>,
    /// The server's requests to the client that wait for an answer.
    asked: SharedAsked,
    closed: AtomicBool,
    /// The clock `last_active` counts from.
    epoch: tokio::time::Instant,
    /// When it was last used, in milliseconds since `epoch`.
    last_active: AtomicU64,
    /// The recent events of its request streams, for `Last-Event-ID`.
    replay: Mutex<Replay>,
    /// Counts the session as open while it lives.
    _open: OpenSession,
}

/// Counts a session as open from its creation to its drop.
struct OpenSession(Arc<dyn Observer>);

impl OpenSession {
    fn new(observer: &Arc<dyn Observer>) -> Self {
        observer.sessions(1);
        Self(observer.clone())
    }
}

impl Drop for OpenSession {
    fn drop(&mut self) {
        self.0.sessions(-1);
    }
}

/// How many request streams of a session are kept for resuming.
const KEPT_STREAMS: usize = 16;
/// How many events of one stream are kept, at most.
const KEPT_EVENTS: usize = 256;
/// How many bytes of one stream's events are kept, at most.
const KEPT_BYTES: usize = 1 << 20;

/// The recent events of a session's request streams: every event gets the
/// id `STREAM-SEQ`, and a client that lost a stream resumes it with a GET
/// carrying the last id it saw.
#[derive(Default)]
struct Replay {
    next_stream: u64,
    /// Oldest first.
    streams: VecDeque<(u64, StreamLog)>,
}

#[derive(Default)]
struct StreamLog {
    next_seq: u64,
    /// The framed events, with their sequence numbers, oldest first.
    events: VecDeque<(u64, Bytes)>,
    bytes: usize,
    /// The stream's answer has been sent: nothing more will come.
    done: bool,
    /// The connection the stream is being read on, if any.
    live: Option<mpsc::Sender<Bytes>>,
}

impl Replay {
    /// A new stream read on `live`; its number.
    fn open(&mut self, live: mpsc::Sender<Bytes>) -> u64 {
        self.next_stream += 1;
        if self.streams.len() >= KEPT_STREAMS {
            // Forget the oldest finished stream, else the oldest.
            let finished = self.streams.iter().position(|(_, log)| log.done);
            self.streams.remove(finished.unwrap_or(0));
        }
        let log = StreamLog {
            live: Some(live),
            ..StreamLog::default()
        };
        self.streams.push_back((self.next_stream, log));
        self.next_stream
    }

    fn log(&mut self, stream: u64) -> Option<&mut StreamLog> {
        self.streams
            .iter_mut()
            .find(|(n, _)| *n == stream)
            .map(|(_, log)| log)
    }
}

impl Session {
    /// Gives `event` (an encoded SSE event) the next id of `stream`, keeps
    /// it, and sends it to the connection reading the stream, if any.
    async fn relay(&self, stream: u64, event: Bytes) {
        let (framed, live) = {
            let mut replay = lock(&self.replay);
            let Some(log) = replay.log(stream) else {
                return;
            };
            let seq = log.next_seq;
            log.next_seq += 1;
            let mut framed = BytesMut::with_capacity(event.len() + 24);
            framed.extend_from_slice(format!("id: {stream}-{seq}\n").as_bytes());
            framed.extend_from_slice(&event);
            let framed = framed.freeze();
            log.bytes += framed.len();
            log.events.push_back((seq, framed.clone()));
            while log.events.len() > KEPT_EVENTS || log.bytes > KEPT_BYTES {
                match log.events.pop_front() {
                    Some((_, old)) => log.bytes -= old.len(),
                    None => break,
                }
            }
            (framed, log.live.clone())
        };
        if let Some(live) = live {
            if live.send(framed).await.is_err() {
                // The client went away; the events wait for it to resume.
                if let Some(log) = lock(&self.replay).log(stream) {
                    if log.live.as_ref().is_some_and(|l| l.same_channel(&live)) {
                        log.live = None;
                    }
                }
            }
        }
    }

    /// Marks `stream` complete and lets its connection end. A stream read
    /// to its end keeps only its last event (the answer), in case the
    /// connection drops before that reaches the client; one whose client
    /// went away keeps what it has for when the client comes back.
    fn finish_stream(&self, stream: u64) {
        if let Some(log) = lock(&self.replay).log(stream) {
            log.done = true;
            if log.live.take().is_some() {
                while log.events.len() > 1 {
                    if let Some((_, old)) = log.events.pop_front() {
                        log.bytes -= old.len();
                    }
                }
            }
        }
    }

    /// Resumes the stream an event id (`STREAM-SEQ`) belongs to: the events
    /// after it, and where the rest will come while the stream goes on.
    fn resume(&self, last: &str) -> Option<(Vec<Bytes>, mpsc::Receiver<Bytes>)> {
        let (stream, seq) = last.split_once('-')?;
        let (stream, seq): (u64, u64) = (stream.parse().ok()?, seq.parse().ok()?);
        let mut replay = lock(&self.replay);
        let log = replay.log(stream)?;
        let missed = log
            .events
            .iter()
            .filter(|(n, _)| *n > seq)
            .map(|(_, event)| event.clone())
            .collect();
        let (sender, receiver) = mpsc::channel(CHANNEL_CAPACITY);
        if !log.done {
            log.live = Some(sender);
        }
        Some((missed, receiver))
    }
}

impl Session {
    fn new(client: IpAddr, epoch: tokio::time::Instant, observer: &Arc<dyn Observer>) -> Self {
        let session = Self {
            _open: OpenSession::new(observer),
            client,
            key: mcp_core::next_session_key(),
            stream: Mutex::new(None),
            running: Mutex::new(HashMap::new()),
            asked: SharedAsked::default(),
            closed: AtomicBool::new(false),
            epoch,
            last_active: AtomicU64::new(0),
            replay: Mutex::default(),
        };
        session.touch();
        session
    }

    /// Notes that the session is in use now.
    fn touch(&self) {
        self.last_active
            .store(millis_since(self.epoch), Ordering::Relaxed);
    }

    /// Whether nothing has used the session since `since` (milliseconds
    /// since the epoch): no request in flight, no open stream.
    fn idle_since(&self, since: u64) -> bool {
        self.last_active.load(Ordering::Relaxed) < since
            && lock(&self.running).is_empty()
            && lock(&self.stream)
                .as_ref()
                .is_none_or(mpsc::Sender::is_closed)
    }

    fn end(&self) {
        self.closed.store(true, Ordering::Release);
        lock(&self.stream).take();
        for (_, task) in lock(&self.running).drain() {
            task.abort();
        }
    }

    fn cancel(&self, notification: Notification<'static>) {
        let cancelled = CancelledParams::from_params(notification.params);
        if let Some(id) = cancelled.ok().and_then(|c| c.request_id) {
            if let Some(task) = lock(&self.running).remove(&id.into_owned()) {
                task.abort();
            }
        }
    }
}

impl Shared {
    fn end_idle_sessions(&self, timeout: Duration) {
        let Some(since) = millis_since(self.epoch)
            .checked_sub(u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX))
        else {
            return;
        };
        let mut ended = Vec::new();
        lock(&self.sessions).retain(|_, session| {
            let idle = session.idle_since(since);
            if idle {
                ended.push(session.clone());
            }
            !idle
        });
        if !ended.is_empty() {
            tracing::info!(
                "ended {} session(s) idle for {timeout:?} or more",
                ended.len()
            );
        }
        for session in ended {
            session.end();
        }
    }

    /// Requests in flight, over all clients.
    fn in_flight_requests(&self) -> usize {
        lock(&self.in_flight).values().sum()
    }

    /// Counts a request against its client's limit, or refuses it.
    fn admit(&self, client: IpAddr) -> Option<InFlight> {
        let mut counts = lock(&self.in_flight);
        let count = counts.entry(client).or_insert(0);
        if *count >= self.options.max_in_flight_per_client {
            return None;
        }
        *count += 1;
        Some(InFlight {
            counts: self.in_flight.clone(),
            client,
        })
    }

    async fn handle(&self, request: hyper::Request<Incoming>, client: IpAddr) -> HttpResponse {
        let path = request.uri().path();
        if path != MCP_PATH && path != SSE_PATH && path != MESSAGE_PATH {
            return status(StatusCode::NOT_FOUND);
        }
        if !self.allowed(request.headers()) {
            return status(StatusCode::FORBIDDEN);
        }
        if !self.authorized(request.headers()) {
            let mut response = status(StatusCode::UNAUTHORIZED);
            response
                .headers_mut()
                .insert("www-authenticate", HeaderValue::from_static("Bearer"));
            return response;
        }
        match (request.uri().path(), request.method()) {
            (SSE_PATH, &HttpMethod::GET) => return self.open_legacy(client),
            (MESSAGE_PATH, &HttpMethod::POST) => return self.legacy_post(request, client).await,
            (SSE_PATH, _) => return not_allowed("GET"),
            (MESSAGE_PATH, _) => return not_allowed("POST"),
            _ => {}
        }
        match *request.method() {
            HttpMethod::POST => self.post(request, client).await,
            HttpMethod::GET => self.get(request.headers()),
            HttpMethod::DELETE => self.delete(request.headers()),
            _ => {
                let mut response = status(StatusCode::METHOD_NOT_ALLOWED);
                response
                    .headers_mut()
                    .insert("allow", HeaderValue::from_static("GET, POST, DELETE"));
                response
            }
        }
    }

    /// The `Host` and `Origin` checks against DNS rebinding.
    fn allowed(&self, headers: &HeaderMap) -> bool {
        if let Some(origin) = headers.get("origin") {
            let Ok(origin) = origin.to_str() else {
                return false;
            };
            let host = origin
                .strip_prefix("http://")
                .or_else(|| origin.strip_prefix("https://"));
            if !host.is_some_and(|host| loopback_host(host, None)) {
                return false;
            }
        }
        if !self.local.ip().is_loopback() {
            return true;
        }
        headers
            .get("host")
            .and_then(|host| host.to_str().ok())
            .is_some_and(|host| loopback_host(host, Some(self.local.port())))
    }

    fn authorized(&self, headers: &HeaderMap) -> bool {
        let Some(token) = &self.options.auth_token else {
            return true;
        };
        let given = headers
            .get("authorization")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| {
                let (scheme, rest) = value.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
            });
        given.is_some_and(|given| constant_time_eq(given.as_bytes(), token.as_bytes()))
    }

    fn session(&self, headers: &HeaderMap) -> Result<Arc<Session>, Box<HttpResponse>> {
        let Some(id) = headers.get(SESSION_HEADER) else {
            return Err(Box::new(rpc_error(
                StatusCode::BAD_REQUEST,
                None,
                ErrorObject::new(error_code::INVALID_REQUEST, "Bad Request: no session id"),
            )));
        };
        let found = id
            .to_str()
            .ok()
            .and_then(|id| lock(&self.sessions).get(id).cloned());
        if let Some(session) = &found {
            session.touch();
        }
        found.ok_or_else(|| {
            Box::new(rpc_error(
                StatusCode::NOT_FOUND,
                None,
                ErrorObject::new(error_code::INVALID_REQUEST, "Session not found"),
            ))
        })
    }

    async fn post(&self, request: hyper::Request<Incoming>, client: IpAddr) -> HttpResponse {
        let (parts, body) = request.into_parts();
        let message = match self.read_message(body).await {
            Ok(message) => message,
            Err(response) => return *response,
        };
        let headers = &parts.headers;
        let id = message.id().cloned();
        if let (Some(header), Some(method)) = (headers.get(METHOD_HEADER), message.method()) {
            if header.as_bytes() != method.as_bytes() {
                return rpc_error(
                    StatusCode::BAD_REQUEST,
                    id,
                    ErrorObject::new(
                        error_code::HEADER_MISMATCH,
                        "the Mcp-Method header does not match the body's method",
                    ),
                );
            }
        }
        let header_version = match headers.get(VERSION_HEADER) {
            None => None,
            Some(value) => match value.to_str().ok().and_then(ProtocolVersion::parse) {
                Some(version) => Some(version),
                None => {
                    return rpc_error(
                        StatusCode::BAD_REQUEST,
                        id,
                        ErrorObject::new(
                            error_code::INVALID_REQUEST,
                            "Bad Request: unsupported MCP-Protocol-Version",
                        ),
                    );
                }
            },
        };
        let meta = match &message {
            Message::Request(request) => read_meta(request),
            _ => MetaFacts::default(),
        };
        let stateless = meta.stateless || header_version.is_some_and(|v| !v.is_stateful());
        match message {
            Message::Request(request)
                if !stateless && request.method == Method::Initialize.as_str() =>
            {
                self.initialize(request, client).await
            }
            Message::Request(request) if stateless => {
                run(self, request, meta.progress, None, client).await
            }
            Message::Notification(_) | Message::Response(_) | Message::Error(_) if stateless => {
                status(StatusCode::ACCEPTED)
            }
            message => {
                let session = match self.session(headers) {
                    Ok(session) => session,
                    Err(response) => return *response,
                };
                match message {
                    Message::Request(request) => {
                        run(self, request, meta.progress, Some(session), client).await
                    }
                    other => {
                        self.session_message(session, other).await;
                        status(StatusCode::ACCEPTED)
                    }
                }
            }
        }
    }

    /// Why `client` may not open another session, if it may not.
    fn session_refusal(&self, client: IpAddr) -> Option<String> {
        let sessions = lock(&self.sessions);
        if sessions.len() >= self.options.max_sessions {
            Some(format!(
                "too many sessions: the server has its limit of {} open",
                self.options.max_sessions
            ))
        } else if sessions.values().filter(|s| s.client == client).count()
            >= self.options.max_sessions_per_client
        {
            Some(format!(
                "too many sessions: this client has its limit of {} open; end one first",
                self.options.max_sessions_per_client
            ))
        } else {
            None
        }
    }

    /// `GET /sse`: a session of the legacy HTTP+SSE transport. The stream
    /// opens with an `endpoint` event naming where to POST, then carries
    /// every message to the client; the session ends with the stream.
    fn open_legacy(&self, client: IpAddr) -> HttpResponse {
        if let Some(message) = self.session_refusal(client) {
            let mut response = status(StatusCode::SERVICE_UNAVAILABLE);
            *response.body_mut() = full(message);
            return response;
        }
        let session = Arc::new(Session::new(client, self.epoch, &self.options.observer));
        let (sender, receiver) = mpsc::channel(CHANNEL_CAPACITY);
        *lock(&session.stream) = Some(sender);
        let id = self.ids.next();
        lock(&self.sessions).insert(id.clone(), session.clone());
        let endpoint = SseEvent {
            event: Some("endpoint".to_owned()),
            data: format!("{MESSAGE_PATH}?sessionId={id}"),
            ..SseEvent::default()
        };
        let mut first = BytesMut::new();
        // Neither the type nor the data can hold a line break.
        let _ = endpoint.encode(&mut first);
        let mut body = SseBody::new(receiver, self.options.keep_alive, None);
        body.first.push_back(first.freeze());
        body.legacy = Some(LegacySession {
            sessions: self.sessions.clone(),
            id,
            session,
        });
        sse_response(body)
    }

    /// `POST /message?sessionId=ID`: one message of a legacy session,
    /// accepted with 202; answers go on the session's stream.
    async fn legacy_post(&self, request: hyper::Request<Incoming>, client: IpAddr) -> HttpResponse {
        let session = request
            .uri()
            .query()
            .into_iter()
            .flat_map(|query| query.split('&'))
            .find_map(|pair| pair.strip_prefix("sessionId="))
            .and_then(|id| lock(&self.sessions).get(id).cloned());
        let Some(session) = session else {
            return status(StatusCode::NOT_FOUND);
        };
        session.touch();
        let message = match self.read_message(request.into_body()).await {
            Ok(message) => message,
            Err(response) => return *response,
        };
        match message {
            Message::Request(request) => {
                let id = request.id.clone();
                let admitted = match self.admit_request(&id, Some(&session), client) {
                    Ok(admitted) => admitted,
                    Err(refusal) => return *refusal,
                };
                let Some(stream) = lock(&session.stream).clone() else {
                    return status(StatusCode::NOT_FOUND);
                };
                let peer = RequestPeer {
                    stream: stream.clone(),
                    session: Some(session.clone()),
                    notify_on_stream: true,
                };
                let server = self.server.clone();
                let context = RequestContext::new(Arc::new(peer));
                let running = session.clone();
                let task_id = id.clone();
                let task = tokio::spawn(async move {
                    let _admitted = admitted;
                    let answer = answer(&*server, request, context).await;
                    let _ = stream.send(encode_event(&answer)).await;
                    lock(&running.running).remove(&task_id);
                    running.touch();
                });
                lock(&session.running).insert(id, task.abort_handle());
            }
            other => self.session_message(session, other).await,
        }
        status(StatusCode::ACCEPTED)
    }

    /// A notification of a session's client, or its answer to a request of
    /// the server's.
    async fn session_message(&self, session: Arc<Session>, message: Message<'static>) {
        match message {
            Message::Notification(notification) => {
                if notification.method == Method::Cancelled.as_str() {
                    session.cancel(notification);
                } else {
                    let context = RequestContext::new(Arc::new(SessionPeer(session)));
                    self.server.handle_notification(notification, context).await;
                }
            }
            Message::Request(_) => {}
            answer @ (Message::Response(_) | Message::Error(_)) => {
                if !lock(&session.asked).answer_message(answer) {
                    tracing::debug!("an answer to no request of ours was ignored");
                }
            }
        }
    }

    /// The one message of a POST body, or the response refusing it.
    async fn read_message(&self, body: Incoming) -> Result<Message<'static>, Box<HttpResponse>> {
        let bytes = match Limited::new(body, self.options.max_body).collect().await {
            Ok(collected) => {
                let bytes = collected.to_bytes();
                self.options.observer.bytes_in(bytes.len() as u64);
                bytes
            }
            Err(error) if error.is::<LengthLimitError>() => {
                return Err(Box::new(status(StatusCode::PAYLOAD_TOO_LARGE)));
            }
            Err(_) => return Err(Box::new(status(StatusCode::BAD_REQUEST))),
        };
        match Packet::parse(&bytes, BatchPolicy::Reject) {
            Ok(Packet::Single(message)) => Ok(message.into_owned()),
            Ok(Packet::Batch(_)) => Err(Box::new(rpc_error(
                StatusCode::BAD_REQUEST,
                None,
                ErrorObject::new(error_code::INVALID_REQUEST, "batches are not supported"),
            ))),
            Err(error) => {
                let response = error.to_response();
                Err(Box::new(rpc_error(
                    StatusCode::BAD_REQUEST,
                    response.id,
                    response.error,
                )))
            }
        }
    }

    /// Counts a request against its session's and its client's limits, or
    /// the refusal naming the limit it hit.
    fn admit_request(
        &self,
        id: &RequestId<'static>,
        session: Option<&Arc<Session>>,
        client: IpAddr,
    ) -> Result<InFlight, Box<HttpResponse>> {
        let limit = self.options.max_in_flight_per_session;
        if session.is_some_and(|session| lock(&session.running).len() >= limit) {
            return Err(Box::new(too_many_requests(
                id.clone(),
                format!("too many requests in flight: this session has its limit of {limit}"),
            )));
        }
        self.admit(client).ok_or_else(|| {
            Box::new(too_many_requests(
                id.clone(),
                format!(
                    "too many requests in flight: this client has its limit of {}",
                    self.options.max_in_flight_per_client
                ),
            ))
        })
    }

    async fn initialize(&self, request: Request<'static>, client: IpAddr) -> HttpResponse {
        let refusal = self.session_refusal(client);
        if let Some(message) = refusal {
            return rpc_error(
                StatusCode::SERVICE_UNAVAILABLE,
                Some(request.id),
                ErrorObject::new(error_code::INTERNAL_ERROR, message),
            );
        }
        let session = Arc::new(Session::new(client, self.epoch, &self.options.observer));
        let context = RequestContext::new(Arc::new(SessionPeer(session.clone())));
        let id = request.id.clone();
        let answer = match self.server.handle_request(request, context).await {
            Ok(result) => Message::response(id, result),
            Err(error) => return json(StatusCode::OK, &Message::error(Some(id), error)),
        };
        let session_id = self.ids.next();
        let mut response = json(StatusCode::OK, &answer);
        if let Ok(value) = HeaderValue::from_str(&session_id) {
            response.headers_mut().insert(SESSION_HEADER, value);
            lock(&self.sessions).insert(session_id, session);
        }
        response
    }

    fn get(&self, headers: &HeaderMap) -> HttpResponse {
        let accepts = headers
            .get_all("accept")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .any(|value| value.contains(EVENT_STREAM));
        if !accepts {
            return status(StatusCode::NOT_ACCEPTABLE);
        }
        let session = match self.session(headers) {
            Ok(session) => session,
            Err(response) => return *response,
        };
        let last = headers
            .get("last-event-id")
            .and_then(|value| value.to_str().ok());
        if let Some((missed, receiver)) = last.and_then(|last| session.resume(last)) {
            let mut body = SseBody::new(receiver, self.options.keep_alive, None);
            body.first.extend(missed);
            return sse_response(body);
        }
        let (sender, receiver) = mpsc::channel(CHANNEL_CAPACITY);
        *lock(&session.stream) = Some(sender);
        sse_response(SseBody::new(receiver, self.options.keep_alive, None))
    }

    fn delete(&self, headers: &HeaderMap) -> HttpResponse {
        let id = headers.get(SESSION_HEADER).and_then(|id| id.to_str().ok());
        let Some(id) = id else {
            return status(StatusCode::BAD_REQUEST);
        };
        let removed = lock(&self.sessions).remove(id);
        match removed {
            Some(session) => {
                session.end();
                status(StatusCode::OK)
            }
            None => status(StatusCode::NOT_FOUND),
        }
    }

    fn end_streams(&self) {
        let sessions: Vec<_> = lock(&self.sessions).values().cloned().collect();
        for session in sessions {
            lock(&session.stream).take();
        }
    }

    fn end_all_sessions(&self) {
        let sessions: Vec<_> = lock(&self.sessions).drain().map(|(_, s)| s).collect();
        for session in sessions {
            session.end();
        }
    }
}

/// Runs one request: answered with JSON, or with an event stream when the
/// client asked for progress.
async fn run(
    shared: &Shared,
    request: Request<'static>,
    streamed: bool,
    session: Option<Arc<Session>>,
    client: IpAddr,
) -> HttpResponse {
    let id = request.id.clone();
    let admitted = match shared.admit_request(&id, session.as_ref(), client) {
        Ok(admitted) => admitted,
        Err(refusal) => return *refusal,
    };
    let server = shared.server.clone();
    let (sender, mut receiver) = mpsc::channel(CHANNEL_CAPACITY);
    let peer = RequestPeer {
        stream: sender.clone(),
        session: session.clone(),
        notify_on_stream: streamed,
    };
    let context = RequestContext::new(Arc::new(peer));
    let mut cancel_all = shared.cancel_all.clone();
    let drain = shared.options.drain;
    let mut task = tokio::spawn(async move {
        let _admitted = admitted;
        let id = request.id.clone();
        tokio::select! {
            message = answer(&*server, request, context) => message,
            // Dropping the answer cancels the request upstream.
            _ = cancel_all.wait_for(|cancel| *cancel) => Message::error(
                Some(id),
                ErrorObject::new(
                    REQUEST_CANCELLED,
                    format!(
                        "the gateway is shutting down: the request was cancelled after the \
                         drain deadline of {} ms",
                        drain.as_millis()
                    ),
                ),
            ),
        }
    });
    let guard = RequestGuard::new(task.abort_handle(), session, id.clone());
    // Answer with JSON unless something must go out before the answer (the
    // progress the client asked for, or a request to the client): then
    // with an event stream that ends with the answer.
    let first = if streamed {
        None
    } else {
        tokio::select! {
            answered = &mut task => {
                drop(guard);
                let message = answered.unwrap_or_else(|_| {
                    Message::error(
                        Some(id),
                        ErrorObject::new(REQUEST_CANCELLED, "request cancelled"),
                    )
                });
                return json(StatusCode::OK, &message);
            }
            first = receiver.recv() => first,
        }
    };
    tokio::spawn(async move {
        if let Ok(answer) = task.await {
            let _ = sender.send(encode_event(&answer)).await;
        }
    });
    let Some(session) = guard.session() else {
        // A stateless request cannot be resumed: its stream is its life.
        let mut body = SseBody::new(receiver, shared.options.keep_alive, Some(guard));
        body.first.extend(first);
        return sse_response(body);
    };
    // A session's request outlives its connection: a client that loses
    // the stream resumes it with `Last-Event-ID`; only
    // `notifications/cancelled` (or the end of the session) cancels it.
    let (live, reader) = mpsc::channel(CHANNEL_CAPACITY);
    let stream = lock(&session.replay).open(live);
    tokio::spawn(async move {
        let _guard = guard;
        for event in first.into_iter() {
            session.relay(stream, event).await;
        }
        while let Some(event) = receiver.recv().await {
            session.relay(stream, event).await;
        }
        session.finish_stream(stream);
    });
    sse_response(SseBody::new(reader, shared.options.keep_alive, None))
}

async fn answer(
    server: &dyn McpServer,
    request: Request<'static>,
    context: RequestContext,
) -> Message<'static> {
    let id = request.id.clone();
    match server.handle_request(request, context).await {
        Ok(result) => Message::response(id, result),
        Err(error) => Message::error(Some(id), error),
    }
}

/// One request counted against its client's limit until dropped.
struct InFlight {
    counts: Arc<Mutex<HashMap<IpAddr, usize>>>,
    client: IpAddr,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut counts = lock(&self.counts);
        if let Some(count) = counts.get_mut(&self.client) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                counts.remove(&self.client);
            }
        }
    }
}

fn millis_since(epoch: tokio::time::Instant) -> u64 {
    u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
}

fn too_many_requests(id: RequestId<'static>, message: String) -> HttpResponse {
    let mut response = rpc_error(
        StatusCode::TOO_MANY_REQUESTS,
        Some(id),
        ErrorObject::new(error_code::INTERNAL_ERROR, message),
    );
    response
        .headers_mut()
        .insert("retry-after", HeaderValue::from_static("1"));
    response
}

/// What a request's `_meta` says about how to serve it.
#[derive(Default)]
struct MetaFacts {
    /// It carries a progress token.
    progress: bool,
    /// It names a protocol version without sessions.
    stateless: bool,
}

fn read_meta(request: &Request<'_>) -> MetaFacts {
    let Some(params) = &request.params else {
        return MetaFacts::default();
    };
    if !params.get().contains("_meta") {
        return MetaFacts::default();
    }
    let Ok(object) = RawObject::from_cow(params.reborrow()) else {
        return MetaFacts::default();
    };
    let Some(meta) = object
        .get("_meta")
        .and_then(|meta| RequestMeta::from_params(Some(Raw::borrowed(meta))).ok())
    else {
        return MetaFacts::default();
    };
    MetaFacts {
        progress: meta.progress_token.is_some(),
        stateless: meta.is_stateless(),
    }
}

/// Notifications sent outside a request's stream: to the session's GET
/// stream when one is open, else dropped (the client did not ask for them).
struct SessionPeer(Arc<Session>);

impl Peer for SessionPeer {
    fn notify(&self, notification: Notification<'static>) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let stream = lock(&self.0.stream).clone();
            if let Some(stream) = stream {
                let event = encode_event(&Message::Notification(notification));
                if stream.send(event).await.is_err() {
                    let mut current = lock(&self.0.stream);
                    if current.as_ref().is_some_and(|s| s.same_channel(&stream)) {
                        *current = None;
                    }
                }
            }
        })
    }

    fn is_closed(&self) -> bool {
        self.0.closed.load(Ordering::Acquire)
    }

    fn session(&self) -> Option<u64> {
        Some(self.0.key)
    }
}

/// The way back to the client for one request: requests to the client
/// always go on the request's own event stream (a stateless request takes
/// none), notifications there too when the client asked for progress or
/// the request is stateless, else on the session's stream.
struct RequestPeer {
    stream: mpsc::Sender<Bytes>,
    session: Option<Arc<Session>>,
    notify_on_stream: bool,
}

impl Peer for RequestPeer {
    fn notify(&self, notification: Notification<'static>) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            match &self.session {
                Some(session) if !self.notify_on_stream => {
                    SessionPeer(session.clone()).notify(notification).await;
                }
                // A stateless request has only its own stream.
                _ => {
                    let event = encode_event(&Message::Notification(notification));
                    let _ = self.stream.send(event).await;
                }
            }
        })
    }

    fn request(&self, method: &str, params: Option<Raw<'static>>) -> BoxFuture<'_, HandlerResult> {
        let Some(session) = &self.session else {
            let error = ErrorObject::new(
                error_code::METHOD_NOT_FOUND,
                format!(
                    "`{method}` cannot be sent in answer to a stateless request; answer with `input_required` instead"
                ),
            );
            return Box::pin(std::future::ready(Err(error)));
        };
        let method = method.to_owned();
        Box::pin(async move {
            ask_client(&session.asked, &method, params, |message| async move {
                self.stream.send(encode_event(&message)).await.is_ok()
            })
            .await
        })
    }

    fn is_closed(&self) -> bool {
        self.stream.is_closed()
            || self
                .session
                .as_ref()
                .is_some_and(|s| s.closed.load(Ordering::Acquire))
    }

    fn session(&self) -> Option<u64> {
        self.session.as_ref().map(|s| s.key)
    }
}

/// A request task, aborted when its HTTP exchange is dropped (a client
/// that hangs up cancels its request) and registered with its session for
/// `notifications/cancelled` meanwhile.
struct RequestGuard {
    task: AbortHandle,
    session: Option<(Arc<Session>, RequestId<'static>)>,
}

impl RequestGuard {
    fn session(&self) -> Option<Arc<Session>> {
        self.session.as_ref().map(|(session, _)| session.clone())
    }

    fn new(task: AbortHandle, session: Option<Arc<Session>>, id: RequestId<'static>) -> Self {
        if let Some(session) = &session {
            lock(&session.running).insert(id.clone(), task.clone());
        }
        Self {
            task,
            session: session.map(|session| (session, id)),
        }
    }
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.task.abort();
        if let Some((session, id)) = &self.session {
            lock(&session.running).remove(id);
            session.touch();
        }
    }
}

/// A legacy (HTTP+SSE) session, ended when its stream is dropped.
struct LegacySession {
    sessions: Arc<Mutex<HashMap<String, Arc<Session>>>>,
    id: String,
    session: Arc<Session>,
}

impl Drop for LegacySession {
    fn drop(&mut self) {
        lock(&self.sessions).remove(&self.id);
        self.session.end();
    }
}

fn not_allowed(allow: &'static str) -> HttpResponse {
    let mut response = status(StatusCode::METHOD_NOT_ALLOWED);
    response
        .headers_mut()
        .insert("allow", HeaderValue::from_static(allow));
    response
}

/// An event stream fed by a channel, with keep-alive comments while idle.
struct SseBody {
    /// Events to send before the others.
    first: VecDeque<Bytes>,
    /// The legacy session this stream is, ended with it.
    legacy: Option<LegacySession>,
    events: mpsc::Receiver<Bytes>,
    keep_alive: Option<tokio::time::Interval>,
    _task: Option<RequestGuard>,
}

impl SseBody {
    fn new(events: mpsc::Receiver<Bytes>, every: Duration, task: Option<RequestGuard>) -> Self {
        let keep_alive = tokio::time::Instant::now()
            .checked_add(every)
            .filter(|_| !every.is_zero())
            .map(|start| {
                let mut interval = tokio::time::interval_at(start, every);
                interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                interval
            });
        Self {
            first: VecDeque::new(),
            legacy: None,
            events,
            keep_alive,
            _task: task,
        }
    }
}

impl Body for SseBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        if let Some(first) = this.first.pop_front() {
            return Poll::Ready(Some(Ok(Frame::data(first))));
        }
        match this.events.poll_recv(cx) {
            Poll::Ready(Some(event)) => return Poll::Ready(Some(Ok(Frame::data(event)))),
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Pending => {}
        }
        if let Some(keep_alive) = &mut this.keep_alive {
            if keep_alive.poll_tick(cx).is_ready() {
                let comment = Bytes::from_static(b": keep-alive\n\n");
                return Poll::Ready(Some(Ok(Frame::data(comment))));
            }
        }
        Poll::Pending
    }
}

fn encode_event(message: &Message<'_>) -> Bytes {
    let data = String::from_utf8(message.to_vec()).unwrap_or_default();
    let mut out = BytesMut::with_capacity(data.len() + 16);
    // A message event with no id or type cannot fail to encode.
    let _ = SseEvent::message(data).encode(&mut out);
    out.freeze()
}

fn sse_response(body: SseBody) -> HttpResponse {
    let mut response = hyper::Response::new(UnsyncBoxBody::new(body));
    let headers = response.headers_mut();
    headers.insert("content-type", HeaderValue::from_static(EVENT_STREAM));
    headers.insert("cache-control", HeaderValue::from_static("no-cache"));
    response
}

fn full(bytes: impl Into<Bytes>) -> ResponseBody {
    UnsyncBoxBody::new(Full::new(bytes.into()))
}

fn status(code: StatusCode) -> HttpResponse {
    let mut response = hyper::Response::new(full(Bytes::new()));
    *response.status_mut() = code;
    response
}

fn json(code: StatusCode, message: &Message<'_>) -> HttpResponse {
    let mut response = hyper::Response::new(full(message.to_vec()));
    *response.status_mut() = code;
    response
        .headers_mut()
        .insert("content-type", HeaderValue::from_static(JSON));
    response
}

fn rpc_error(
    code: StatusCode,
    id: Option<RequestId<'static>>,
    error: ErrorObject<'static>,
) -> HttpResponse {
    json(code, &Message::error(id, error))
}

/// Whether `host` (`name[:port]`) is a loopback name; the port, when
/// `port` is given, must be absent or equal to it.
fn loopback_host(host: &str, port: Option<u16>) -> bool {
    let (name, given) = if let Some(rest) = host.strip_prefix('[') {
        match rest.split_once(']') {
            Some((name, tail)) => (name, tail.strip_prefix(':')),
            None => return false,
        }
    } else {
        match host.split_once(':') {
            Some((name, given)) => (name, Some(given)),
            None => (host, None),
        }
    };
    let name_ok = name.eq_ignore_ascii_case("localhost") || name == "127.0.0.1" || name == "::1";
    let port_ok = match (given, port) {
        (None, _) => true,
        (Some(given), None) => given.parse::<u16>().is_ok(),
        (Some(given), Some(port)) => given.parse::<u16>() == Ok(port),
    };
    name_ok && port_ok
}

/// Compares two byte strings in time that depends only on their lengths.
#[must_use]
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let difference = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(difference) == 0
}

/// Unguessable session ids: 128 bits from two randomly keyed hashers over
/// the time and a counter.
#[derive(Default)]
struct SessionIds {
    counter: AtomicU64,
}

impl SessionIds {
    fn next(&self) -> String {
        let count = self.counter.fetch_add(1, Ordering::Relaxed);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let half = |salt: u8| {
            let mut hasher = RandomState::new().build_hasher();
            hasher.write_u8(salt);
            hasher.write_u128(nanos);
            hasher.write_u64(count);
            hasher.finish()
        };
        format!("{:016x}{:016x}", half(0), half(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        assert!(loopback_host("localhost", Some(80)));
        assert!(loopback_host("127.0.0.1:8931", Some(8931)));
        assert!(loopback_host("[::1]:8931", Some(8931)));
        assert!(!loopback_host("127.0.0.1:8932", Some(8931)));
        assert!(!loopback_host("evil.example:8931", Some(8931)));
        assert!(!loopback_host("localhost.evil.example", None));
        assert!(loopback_host("localhost:3000", None));
    }

    #[test]
    fn constant_time_comparison() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secrets"));
    }

    #[test]
    fn session_ids_differ() {
        let ids = SessionIds::default();
        let (a, b) = (ids.next(), ids.next());
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
    }
}
