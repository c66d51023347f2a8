//! Serving an [`McpServer`] over Streamable HTTP: one endpoint, `/mcp`, for
//! any number of clients (the server side of `mcp_runtime::transport::http`).
//!
//! # Protocol
//!
//! - **POST** carries one JSON-RPC message. `initialize` opens a session:
//!   its answer carries an `Mcp-Session-Id` that every later message
//!   must send (missing: 400, unknown or ended: 404). The id is sealed
//!   (`sealed.rs`: ChaCha20-Poly1305 over the negotiated version, the
//!   client's capabilities and info, the subject of its token, and, with
//!   a shared key, the log level and the subscriptions the client set
//!   since): with [`HttpServeOptions::session_key`] shared by the
//!   replicas of one gateway, a replica that gets an id it does not have,
//!   sealed with that key, by the subject that opened it, takes the
//!   session over: it replays its `initialize`, `notifications/initialized`,
//!   `logging/setLevel` and each `resources/subscribe`, and goes on under
//!   the same id. A `logging/setLevel`, `resources/subscribe` or
//!   `resources/unsubscribe` that succeeds gets a new id with its answer
//!   (same route: the part before the first `.`), which the client sends
//!   from then on; every id the session had goes on naming it here. With
//!   [`HttpServeOptions::session_peers`], each change and each DELETE is
//!   told to the other replicas (`news.rs`, POSTed to [`NEWS_PATH`],
//!   sealed with the key): a client that keeps its first id gets, from a
//!   replica taking it over, the session as it last changed (else as it
//!   was opened), and a session DELETEd on one replica is ended on every
//!   peer that heard (one that was down then would still take it over).
//!   Events not yet received stay with the replica that had them. An id
//!   changed, truncated, forged, sealed with another key, naming a
//!   version without sessions, or ended gets 404. Notifications and
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
//!   GET replaces the session's previous stream. Its events have ids as a
//!   request stream's do, and are kept the same way: a client that lost it
//!   GETs with `Last-Event-ID` and gets what it missed, then the rest.
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
//! # No lock on a request's way
//!
//! Sessions are found in a lock-free map, limits are counted with atomic
//! steps, and a session's stream is an atomically swapped slot
//! (`session`); only the resumption log of a request answered on an event
//! stream sits behind a short mutex (`replay`). Every stream is a bounded
//! channel.

use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use http_body_util::combinators::UnsyncBoxBody;
use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderValue};
use hyper::service::service_fn;
use hyper::{Method as HttpMethod, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use mcp_core::McpServer;
use mcp_core::auth::{Authenticator, Denial, Principal};
use mcp_runtime::observe::{NoObserver, Observer};
use mcp_runtime::seal::{ClusterKey, Seal};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

mod body;
mod checks;
mod exchange;
mod legacy;
mod news;
mod replay;
mod sealed;
mod session;

pub use checks::constant_time_eq;
pub use news::NEWS_PATH;

use body::{Counted, HttpResponse, json_text, not_allowed, status};
use checks::{SessionIds, loopback_host};
use news::News;
use session::{Cancellable, ClientCounts, Sessions, TakeOver, end_session, millis_since};

/// The path of the MCP endpoint.
pub const MCP_PATH: &str = "/mcp";
/// The event stream of the legacy HTTP+SSE transport (2024-11-05).
pub const SSE_PATH: &str = "/sse";
/// Where clients of the legacy transport POST their messages.
pub const MESSAGE_PATH: &str = "/message";

const SESSION_HEADER: &str = "mcp-session-id";
const VERSION_HEADER: &str = "mcp-protocol-version";
const METHOD_HEADER: &str = "mcp-method";
const NAME_HEADER: &str = "mcp-name";
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
    /// When set, every request's access token is checked by it (an OAuth
    /// resource server), and the documents it has are served at their
    /// well-known paths without a token; `auth_token` is then not used.
    pub authenticator: Option<Arc<dyn Authenticator>>,
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
    /// The key session ids are sealed with, shared by the replicas of one
    /// gateway: a replica takes over a session another one opened (see
    /// below). `None`: a key of this process's own.
    pub session_key: Option<ClusterKey>,
    /// The other replicas' listeners (`HOST:PORT`), told of what this
    /// one's sessions change and end when there is a `session_key` (see
    /// below).
    pub session_peers: Vec<String>,
}

impl Default for HttpServeOptions {
    fn default() -> Self {
        Self {
            auth_token: None,
            authenticator: None,
            max_body: 4 << 20,
            keep_alive: Duration::from_secs(15),
            drain: Duration::from_secs(10),
            max_sessions: 1024,
            max_sessions_per_client: 256,
            max_in_flight_per_session: 256,
            max_in_flight_per_client: 1024,
            session_idle_timeout: Some(Duration::from_secs(30 * 60)),
            observer: Arc::new(NoObserver),
            session_key: None,
            session_peers: Vec::new(),
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
    let (stop, stopping) = watch::channel(false);
    let sessions = Sessions::new(options.max_sessions, options.max_sessions_per_client);
    let options_key = options.session_key;
    let seal = Arc::new(Seal::new(options_key.as_ref()));
    let ids = SessionIds::default();
    let news = Arc::new(News::new(&options.session_peers, &seal, ids.next()));
    let shared = Arc::new(Shared {
        cancel_all: cancel_all_rx,
        stopping: stopping.clone(),
        server,
        options,
        local,
        sessions: Arc::new(sessions),
        ids,
        seal,
        news,
        takeovers: crossbeam_skiplist::SkipMap::new(),
        in_flight: Arc::default(),
        cancellable: Arc::default(),
        epoch: tokio::time::Instant::now(),
    });
    let mut connections = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    let idle_timeout = shared.options.session_idle_timeout;
    // Sweep a few times per idle timeout, at least once a minute: idle
    // sessions ended, per-client counts at zero forgotten (with or without
    // a timeout, so that many client addresses never pile up).
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
            _ = sweep.tick() => shared.sweep(idle_timeout),
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

/// A document of the authenticator at its well-known path (GET only,
/// readable from any origin: it is public).
fn well_known(authenticator: &dyn Authenticator, path: &str, method: &HttpMethod) -> HttpResponse {
    let Some(document) = authenticator.well_known(path) else {
        return status(StatusCode::NOT_FOUND);
    };
    if method != HttpMethod::GET {
        return not_allowed("GET");
    }
    let mut response = json_text(StatusCode::OK, document);
    response
        .headers_mut()
        .insert("access-control-allow-origin", HeaderValue::from_static("*"));
    response
}

/// The answer to a request the authenticator turned away: its status, its
/// challenge, and its OAuth error code as the body, nothing more.
fn denied(denial: &Denial) -> HttpResponse {
    let code = StatusCode::from_u16(denial.status).unwrap_or(StatusCode::UNAUTHORIZED);
    let body = serde_json::json!({"error": denial.error}).to_string();
    let mut response = json_text(code, body);
    if let Some(challenge) = denial
        .www_authenticate
        .as_deref()
        .and_then(|c| HeaderValue::from_str(c).ok())
    {
        response.headers_mut().insert("www-authenticate", challenge);
    }
    response
}

/// Who is calling, when access tokens are checked.
type Caller = Option<Arc<Principal>>;

/// What all connections share.
struct Shared {
    server: Arc<dyn McpServer>,
    options: HttpServeOptions,
    local: SocketAddr,
    sessions: Arc<Sessions>,
    /// The ids of sessions whose client says too much to be sealed.
    ids: SessionIds,
    seal: Arc<Seal>,
    /// What this replica tells the others of its sessions, and hears.
    news: Arc<News>,
    /// The sessions being taken over, each by one task that the others
    /// asking for it wait for.
    takeovers: crossbeam_skiplist::SkipMap<String, Arc<TakeOver>>,
    /// Requests in flight per client address.
    in_flight: Arc<ClientCounts>,
    /// The requests of sessions, for `notifications/cancelled`.
    cancellable: Arc<Cancellable>,
    /// The clock sessions' last activity is measured from.
    epoch: tokio::time::Instant,
    /// Turns true when the drain deadline has passed: every request still
    /// running is cancelled and answered with an error.
    cancel_all: watch::Receiver<bool>,
    /// Turns true when shutting down starts: a listen stream, which would
    /// never finish, ends then.
    stopping: watch::Receiver<bool>,
}

impl Shared {
    /// Forgets the per-client counts at zero, and ends the sessions idle
    /// for `idle_timeout`, if there is one.
    fn sweep(&self, idle_timeout: Option<Duration>) {
        self.in_flight.forget_idle();
        self.sessions.forget_idle_clients();
        self.news.forget_old();
        if let Some(timeout) = idle_timeout {
            self.end_idle_sessions(timeout);
        }
    }

    fn end_idle_sessions(&self, timeout: Duration) {
        let Some(since) = millis_since(self.epoch)
            .checked_sub(u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX))
        else {
            return;
        };
        let idle = self.sessions.ids_where(|session| session.idle_since(since));
        let mut ended = 0;
        for id in idle {
            if let Some(session) = self.sessions.remove(&id) {
                end_session(&session, &self.cancellable);
                ended += 1;
            }
        }
        if ended > 0 {
            tracing::info!("ended {ended} session(s) idle for {timeout:?} or more");
        }
    }

    /// Requests in flight, over all clients.
    fn in_flight_requests(&self) -> usize {
        self.in_flight.total()
    }

    async fn handle(&self, request: hyper::Request<Incoming>, client: IpAddr) -> HttpResponse {
        let path = request.uri().path();
        if let Some(authenticator) = &self.options.authenticator {
            if path.starts_with("/.well-known/") {
                return well_known(authenticator.as_ref(), path, request.method());
            }
        }
        if path == NEWS_PATH {
            return self.hear_news(request).await;
        }
        if path != MCP_PATH && path != SSE_PATH && path != MESSAGE_PATH {
            return status(StatusCode::NOT_FOUND);
        }
        if !self.allowed(request.headers()) {
            return status(StatusCode::FORBIDDEN);
        }
        let mut caller: Caller = None;
        if let Some(authenticator) = &self.options.authenticator {
            let header = request
                .headers()
                .get("authorization")
                .and_then(|value| value.to_str().ok());
            match authenticator.authenticate(header).await {
                Ok(principal) => caller = Some(Arc::new(principal)),
                Err(denial) => return denied(&denial),
            }
        } else if !self.authorized(request.headers()) {
            let mut response = status(StatusCode::UNAUTHORIZED);
            response
                .headers_mut()
                .insert("www-authenticate", HeaderValue::from_static("Bearer"));
            return response;
        }
        match (request.uri().path(), request.method()) {
            (SSE_PATH, &HttpMethod::GET) => return self.open_legacy(client, caller),
            (MESSAGE_PATH, &HttpMethod::POST) => {
                return self.legacy_post(request, client, &caller).await;
            }
            (SSE_PATH, _) => return not_allowed("GET"),
            (MESSAGE_PATH, _) => return not_allowed("POST"),
            _ => {}
        }
        match *request.method() {
            HttpMethod::POST => self.post(request, client, caller).await,
            HttpMethod::GET => self.get(request.headers(), &caller, client).await,
            HttpMethod::DELETE => self.delete(request.headers(), &caller),
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

    fn end_streams(&self) {
        for session in self.sessions.all() {
            session.end_stream();
        }
    }

    fn end_all_sessions(&self) {
        for id in self.sessions.ids_where(|_| true) {
            if let Some(session) = self.sessions.remove(&id) {
                end_session(&session, &self.cancellable);
            }
        }
    }
}
