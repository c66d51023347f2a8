//! The Streamable HTTP transport (protocol 2025-03-26 and later): every
//! message is POSTed to one endpoint; answers come back as a JSON body or as
//! a Server-Sent Events stream on that POST, and messages the server starts
//! on its own come on an optional standalone GET stream.
//!
//! # Design
//!
//! One driver task owns the link. It takes each outbound message and POSTs
//! it on a task of its own, so a slow request never holds up another. What
//! comes back (a JSON body, a batch, or the events of a stream) goes to the
//! inbound channel in the order it arrived on that response. The tasks live
//! in `JoinSet`s owned by the driver: when the link is closed or dropped,
//! the driver ends and every task with it.
//!
//! **Session.** The session id from the `initialize` answer's
//! `Mcp-Session-Id` header and the negotiated version (read from the
//! `initialize` result as it passes through) are published on a `watch`
//! channel; every later request reads them from there and sends
//! `Mcp-Session-Id` and, from 2025-06-18 on, `MCP-Protocol-Version`. The
//! session is recorded *before* the answer is handed to the connection, so
//! the `notifications/initialized` that follows already carries it.
//!
//! **Expired sessions.** A 404 to a request that carried a session id means
//! the server forgot the session (it restarted, say). The task asks the
//! driver to renew it; the driver runs one renewal at a time and lets every
//! task that hit the same stale session wait for it. A renewal replays the
//! parameters of the connection's own `initialize` under an internal string
//! id (its answer is not passed on), sends `notifications/initialized`, and
//! only then publishes the new session. The failed POST is retried once;
//! only if that fails too does the caller see an error. A 400 whose body
//! mentions the session is treated the same way, because the reference
//! TypeScript servers answer an unknown session like that.
//!
//! **Stateless requests (2026-07-28).** A request whose `_meta` names a
//! protocol version carries it in `MCP-Protocol-Version`, with its method in
//! `Mcp-Method` and, for `tools/call`, `prompts/get` and `resources/read`,
//! the tool, prompt or resource in `Mcp-Name` (base64-wrapped when a header
//! cannot carry it as is). Such requests need no session, and servers of
//! that version offer no standalone stream.
//!
//! **Failures never hang a caller.** An error status whose body is a
//! JSON-RPC error for the request is that request's answer, code and all.
//! Anything else that goes wrong with the POST of a request (connection
//! refused, an error status, a body that is not JSON-RPC, a stream that
//! ended without the answer and could not be resumed) becomes a JSON-RPC
//! error response with the request's id, code `-32603`, naming the status or
//! cause. A failed notification is logged.
//! A single failure does not end the link (a remote can blip), but after
//! [`UNREACHABLE_AFTER`] consecutive connection errors, POSTs and GETs
//! together, the link reports [`Inbound::Closed`] so that the supervisor
//! restarts the connection.
//!
//! **Streams.** Event streams are decoded with [`SseDecoder`] bounded by the
//! target's `max_message`; events with empty data (priming events) are
//! skipped. If a POST's stream ends before the answer arrived and the stream
//! gave event ids, the request is resumed with a GET carrying
//! `Last-Event-ID`, after the `retry` delay the server asked for, at most
//! [`RESUME_ATTEMPTS`] times. The standalone GET stream is opened once
//! `notifications/initialized` has been accepted, and what the connection
//! sends after that notification waits until the stream is open or refused
//! (two seconds at most), so that a question the server puts on it at once
//! is not lost; 405 means the server has
//! none, and a 404 before any stream was served is read the same way (until
//! the session changes). Otherwise it reconnects with `Last-Event-ID` and
//! exponential backoff.
//!
//! **Cancellation.** When the connection sends `notifications/cancelled`,
//! the POST stream of that request is dropped as well: servers stop
//! answering a cancelled request, and its stream would otherwise stay open.
//!
//! **Closing.** [`Closer::close`] stops the request streams, lets queued
//! notifications finish and ends the session with `DELETE` (405 is fine),
//! all within the grace period. A dropped link stops at once and makes one
//! short attempt at the `DELETE`.
//!
//! Header values from the configuration are marked sensitive and are never
//! logged; URLs in logs and errors are shown without credentials or query.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use mcp_core::{BoxFuture, ServerId};
use mcp_protocol::codec::sse::{SseDecoder, SseEvent};
use mcp_protocol::jsonrpc::error_code;
use mcp_protocol::mcp::{CancelledParams, InitializeResult, Method, RequestMeta, View, meta_keys};
use mcp_protocol::raw::{Raw, RawObject};
use mcp_protocol::{
    BatchPolicy, ErrorObject, Message, Notification, Packet, ProtocolVersion, Request, RequestId,
};
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Client, Response, StatusCode, Url};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::{AbortHandle, JoinSet};

use super::{Closer, Connector, Inbound, TransportEnds, TransportLink};
use crate::error::{Error, ErrorKind, Result};

/// Consecutive connection errors after which the link reports itself closed.
pub const UNREACHABLE_AFTER: u32 = 3;
/// How many times a request's broken event stream is resumed.
pub const RESUME_ATTEMPTS: u32 = 3;

/// How long to wait for a TCP (and TLS) connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the POST of a notification or response may take.
pub(crate) const NOTIFY_TIMEOUT: Duration = Duration::from_secs(30);
/// The reconnection delay when the server gave none.
const DEFAULT_RETRY: Duration = Duration::from_millis(500);
/// The longest reconnection delay, whatever the server asks for.
const MAX_RETRY: Duration = Duration::from_secs(30);
/// How long a dropped link tries to end its session.
const DROP_GRACE: Duration = Duration::from_secs(1);
/// How much of an error body is read to explain the error.
const ERROR_BODY_LIMIT: usize = 4 * 1024;
/// How many control messages (from the driver's tasks) may queue.
const CONTROL_CAPACITY: usize = 64;

const SESSION_HEADER: &str = "mcp-session-id";
const VERSION_HEADER: &str = "mcp-protocol-version";
const METHOD_HEADER: &str = "mcp-method";
const NAME_HEADER: &str = "mcp-name";
const LAST_EVENT_ID: &str = "last-event-id";
pub(crate) const EVENT_STREAM: &str = "text/event-stream";
pub(crate) const JSON: &str = "application/json";

/// A remote server reached over HTTP.
#[derive(Clone)]
pub struct HttpTarget {
    /// The server, for logs.
    pub server: ServerId,
    /// The MCP endpoint (Streamable HTTP) or the event stream URL (legacy
    /// HTTP+SSE).
    pub url: String,
    /// Headers sent with every request (authorization, say). Their values
    /// are never logged.
    pub headers: BTreeMap<String, String>,
    /// The largest message (JSON body or event) accepted.
    pub max_message: usize,
}

impl std::fmt::Debug for HttpTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpTarget")
            .field("server", &self.server)
            .field("url", &redact_str(&self.url))
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("max_message", &self.max_message)
            .finish()
    }
}

/// Connects to a server over Streamable HTTP.
#[derive(Clone, Debug)]
pub struct HttpConnector {
    target: HttpTarget,
}

impl HttpConnector {
    /// A connector to `target`.
    #[must_use]
    pub fn new(target: HttpTarget) -> Self {
        Self { target }
    }
}

impl Connector for HttpConnector {
    fn connect(&self) -> BoxFuture<'_, Result<TransportLink>> {
        Box::pin(async move {
            let endpoint = Endpoint::new(&self.target)?;
            let (control_tx, control_rx) = mpsc::channel(CONTROL_CAPACITY);
            let (closer, stop) = DriverCloser::new();
            let (link, ends) = TransportLink::new(Box::new(closer));
            let shared = Arc::new(Shared {
                endpoint,
                inbound: ends.inbound.clone(),
                session: watch::Sender::new(SessionState::default()),
                control: control_tx,
                failures: AtomicU32::new(0),
                closed: AtomicBool::new(false),
                renewals: AtomicU64::new(0),
            });
            tokio::spawn(drive(shared, ends, control_rx, stop));
            Ok(link)
        })
    }

    fn describe(&self) -> String {
        redact_str(&self.target.url)
    }
}

/// Stops a driver task: sends it the grace period and waits until it is
/// gone. Dropped, it stops the driver at once.
pub(crate) struct DriverCloser {
    stop: oneshot::Sender<Duration>,
    done: oneshot::Receiver<()>,
}

/// The driver's end of a [`DriverCloser`]: the grace period when asked to
/// stop (an error when the closer was dropped), and a guard whose drop tells
/// the closer the driver is gone.
pub(crate) struct StopSignal {
    pub(crate) stop: oneshot::Receiver<Duration>,
    pub(crate) _done: oneshot::Sender<()>,
}

impl DriverCloser {
    pub(crate) fn new() -> (Self, StopSignal) {
        let (stop_tx, stop_rx) = oneshot::channel();
        let (done_tx, done_rx) = oneshot::channel();
        let closer = Self {
            stop: stop_tx,
            done: done_rx,
        };
        let signal = StopSignal {
            stop: stop_rx,
            _done: done_tx,
        };
        (closer, signal)
    }
}

impl Closer for DriverCloser {
    fn close(self: Box<Self>, grace: Duration) -> BoxFuture<'static, ()> {
        let Self { stop, done } = *self;
        Box::pin(async move {
            let _ = stop.send(grace);
            // The driver bounds its own shutdown by `grace`; this is a
            // backstop, not the bound.
            let _ = tokio::time::timeout(grace + Duration::from_secs(1), done).await;
        })
    }
}

// ---------------------------------------------------------------------------
// Pieces shared with the legacy transport.

/// Where requests go and how they are made: the client, the URL and the
/// configured headers, checked once when the transport starts.
pub(crate) struct Endpoint {
    pub(crate) server: ServerId,
    pub(crate) client: Client,
    pub(crate) url: Url,
    pub(crate) headers: HeaderMap,
    pub(crate) max_message: usize,
}

impl Endpoint {
    pub(crate) fn new(target: &HttpTarget) -> Result<Self> {
        let url = Url::parse(&target.url).map_err(|e| {
            Error::new(
                ErrorKind::Start,
                format!("`{}` is not a valid URL: {e}", redact_str(&target.url)),
            )
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Error::new(
                ErrorKind::Start,
                format!("`{}` is not an http or https URL", redact(&url)),
            ));
        }
        let mut headers = HeaderMap::with_capacity(target.headers.len());
        for (name, value) in &target.headers {
            let header = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                Error::new(
                    ErrorKind::Start,
                    format!("`{name}` is not a valid HTTP header name"),
                )
            })?;
            // The value is never shown: it is often a credential.
            let mut value = HeaderValue::from_str(value).map_err(|_| {
                Error::new(
                    ErrorKind::Start,
                    format!("the value of header `{name}` is not a valid HTTP header value"),
                )
            })?;
            value.set_sensitive(true);
            headers.insert(header, value);
        }
        Ok(Self {
            server: target.server.clone(),
            client: client()?,
            url,
            headers,
            max_message: target.max_message,
        })
    }

    /// A request to `url` with the configured headers and `extra` on top.
    pub(crate) fn request(
        &self,
        method: reqwest::Method,
        url: Url,
        extra: &[(HeaderName, HeaderValue)],
    ) -> reqwest::RequestBuilder {
        let mut headers = self.headers.clone();
        for (name, value) in extra {
            headers.insert(name.clone(), value.clone());
        }
        self.client.request(method, url).headers(headers)
    }

    /// The URL as shown in logs and errors.
    pub(crate) fn shown(&self) -> String {
        redact(&self.url)
    }
}

/// The HTTP client, with rustls on the ring provider.
fn client() -> Result<Client> {
    install_crypto_provider();
    Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_nodelay(true)
        .tcp_keepalive(Duration::from_secs(30))
        .user_agent(concat!("mcp-manager/", env!("CARGO_PKG_VERSION")))
        .redirect(same_origin_redirects())
        .build()
        .map_err(|e| {
            Error::new(
                ErrorKind::Start,
                format!("could not set up the HTTP client: {}", cause(&e)),
            )
        })
}

/// Follows redirects on the same origin only: another origin would receive
/// the configured headers, which often hold credentials.
fn same_origin_redirects() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let previous = attempt.previous();
        let same_origin = previous
            .first()
            .is_some_and(|first| first.origin() == attempt.url().origin());
        if same_origin && previous.len() <= 10 {
            attempt.follow()
        } else {
            attempt.stop()
        }
    })
}

/// Makes ring the process's rustls crypto provider, unless one is set
/// already; safe to call any number of times. Every HTTP client of the
/// process built on `reqwest` (the OTLP exporter's too) needs it first.
pub fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // An error means another provider was installed first: fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// The URL without credentials, query or fragment.
pub(crate) fn redact(url: &Url) -> String {
    let mut shown = format!("{}://", url.scheme());
    if let Some(host) = url.host_str() {
        shown.push_str(host);
    }
    if let Some(port) = url.port() {
        shown.push_str(&format!(":{port}"));
    }
    shown.push_str(url.path());
    shown
}

pub(crate) fn redact_str(url: &str) -> String {
    Url::parse(url).map_or_else(|_| "<invalid URL>".to_owned(), |url| redact(&url))
}

/// A reqwest error and its causes, without the URL (which may hold a
/// token in its query).
pub(crate) fn cause(error: &reqwest::Error) -> String {
    let mut text = String::new();
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(error) = source {
        let part = error.to_string();
        // reqwest's own message names the URL; the causes say what happened.
        if !part.contains("for url (") && !text.contains(&part) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&part);
        }
        source = error.source();
    }
    if text.is_empty() {
        text = if error.is_connect() {
            "connection failed".to_owned()
        } else if error.is_timeout() {
            "timed out".to_owned()
        } else {
            "request failed".to_owned()
        };
    }
    text
}

/// The error response a caller gets when its request could not be carried.
pub(crate) fn failure_answer(id: RequestId<'static>, message: String) -> Message<'static> {
    Message::error(
        Some(id),
        ErrorObject::new(error_code::INTERNAL_ERROR, message),
    )
}

/// The media type of a response, lowercased, without parameters.
pub(crate) fn media_type(response: &Response) -> Option<String> {
    let value = response.headers().get(CONTENT_TYPE)?.to_str().ok()?;
    let media = value.split(';').next().unwrap_or_default().trim();
    Some(media.to_ascii_lowercase())
}

/// Whether `response` is an event stream.
pub(crate) fn is_event_stream(response: &Response) -> bool {
    media_type(response).as_deref() == Some(EVENT_STREAM)
}

/// Reads a whole body, refusing one larger than `max`.
pub(crate) async fn read_body(
    response: &mut Response,
    max: usize,
) -> std::result::Result<Vec<u8>, String> {
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| format!("reading the body failed: {}", cause(&e)))?
    {
        if body.len() + chunk.len() > max {
            return Err(format!(
                "the body is larger than the maximum message size of {max} bytes"
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Says why a response has an error status: the JSON-RPC error message in
/// its body, else the start of the body.
pub(crate) async fn error_detail(response: Response) -> String {
    error_body(response).await.0
}

/// Reads the start of an error response: what to say about it, and the
/// JSON-RPC message it carried, if it carried one.
async fn error_body(mut response: Response) -> (String, Option<Message<'static>>) {
    let status = response.status();
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        body.extend_from_slice(&chunk);
        if body.len() >= ERROR_BODY_LIMIT {
            body.truncate(ERROR_BODY_LIMIT);
            break;
        }
    }
    let message = Message::parse(&body).ok().map(Message::into_owned);
    let detail = match &message {
        Some(Message::Error(error)) => error.error.message.clone().into_owned(),
        _ => {
            let text = String::from_utf8_lossy(&body);
            let text = text.trim();
            match text.char_indices().nth(200) {
                Some((end, _)) => format!("{}…", text.get(..end).unwrap_or(text)),
                None => text.to_owned(),
            }
        }
    };
    let detail = if detail.is_empty() {
        format!("HTTP {status}")
    } else {
        format!("HTTP {status}: {detail}")
    };
    (detail, message)
}

/// The messages in one JSON text: a message or a batch. What is not a
/// JSON-RPC message is logged and skipped.
pub(crate) fn parse_messages(server: &ServerId, bytes: &[u8]) -> Vec<Message<'static>> {
    match Packet::parse(bytes, BatchPolicy::Allow) {
        Ok(Packet::Single(message)) => vec![message.into_owned()],
        Ok(Packet::Batch(items)) => items
            .into_iter()
            .filter_map(|item| match item {
                Ok(message) => Some(message.into_owned()),
                Err(e) => {
                    tracing::warn!(server = %server, "skipping a batch element that is not a JSON-RPC message: {e}");
                    None
                }
            })
            .collect(),
        Err(e) => {
            tracing::warn!(server = %server, "skipping data that is not a JSON-RPC message: {e}");
            Vec::new()
        }
    }
}

/// The messages an event carries: none for an empty (priming) event or an
/// event of another type.
pub(crate) fn event_messages(server: &ServerId, event: &SseEvent) -> Vec<Message<'static>> {
    if event.data.trim().is_empty() {
        return Vec::new();
    }
    if event.event_type() != "message" {
        tracing::debug!(server = %server, "ignoring an SSE event of type `{}`", event.event_type());
        return Vec::new();
    }
    parse_messages(server, event.data.as_bytes())
}

/// An event stream being read: the response, the decoder and the stream's
/// state (last event id, reconnection delay), which outlives one response
/// when the stream is resumed.
pub(crate) struct EventStream {
    server: ServerId,
    response: Response,
    decoder: SseDecoder,
    buf: BytesMut,
    max_message: usize,
    last_event_id: Option<String>,
    retry: Option<u64>,
    /// Whether any event arrived on this response.
    pub(crate) delivered: bool,
}

impl EventStream {
    pub(crate) fn new(server: &ServerId, response: Response, max_message: usize) -> Self {
        Self {
            server: server.clone(),
            response,
            decoder: SseDecoder::new(max_message),
            buf: BytesMut::with_capacity(16 * 1024),
            max_message,
            last_event_id: None,
            retry: None,
            delivered: false,
        }
    }

    /// Goes on reading from `response`, a resumption of this stream.
    fn resume(&mut self, response: Response) {
        self.response = response;
        self.decoder = SseDecoder::new(self.max_message);
        self.buf.clear();
        self.delivered = false;
    }

    /// The next event; `Ok(None)` when the stream ended, `Err` when it broke.
    pub(crate) async fn next(&mut self) -> std::result::Result<Option<SseEvent>, String> {
        loop {
            let decoded = self.decoder.decode(&mut self.buf);
            self.sync();
            match decoded {
                Ok(Some(event)) => {
                    self.delivered = true;
                    return Ok(Some(event));
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(server = %self.server, "{e}");
                    continue;
                }
            }
            match self.response.chunk().await {
                Ok(Some(chunk)) => self.buf.extend_from_slice(&chunk),
                Ok(None) => return Ok(None),
                Err(e) => return Err(cause(&e)),
            }
        }
    }

    fn sync(&mut self) {
        if let Some(id) = self.decoder.last_event_id() {
            if self.last_event_id.as_deref() != Some(id) {
                self.last_event_id = Some(id.to_owned());
            }
        }
        if let Some(retry) = self.decoder.retry() {
            self.retry = Some(retry);
        }
    }

    /// The delay before reconnecting: what the server asked for, bounded.
    fn retry_delay(&self) -> Duration {
        self.retry
            .map_or(DEFAULT_RETRY, Duration::from_millis)
            .min(MAX_RETRY)
    }
}

/// Whether `message` answers the request `id`. An error without an id on
/// the response to that very request answers it too.
fn answers(message: &Message<'_>, id: &RequestId<'static>) -> bool {
    match message {
        Message::Response(response) => response.id == *id,
        Message::Error(error) => error.id.as_ref().is_none_or(|got| got == id),
        Message::Request(_) | Message::Notification(_) => false,
    }
}

fn header(name: &'static str, value: &str) -> Option<(HeaderName, HeaderValue)> {
    let value = HeaderValue::from_str(value).ok()?;
    Some((HeaderName::from_static(name), value))
}

// ---------------------------------------------------------------------------
// The Streamable HTTP link.

/// The session as the server sees it.
#[derive(Clone, Debug, Default)]
struct SessionState {
    /// `Mcp-Session-Id`, when the server assigned one.
    id: Option<String>,
    /// The negotiated version, once `initialize` (or a stateless request)
    /// was answered.
    version: Option<ProtocolVersion>,
    /// Bumped on each (re)initialization.
    epoch: u64,
}

/// Why an exchange failed.
#[derive(Debug)]
enum Failure {
    /// The server forgot the session (`Mcp-Session-Id` held the stale id).
    Expired(String),
    /// The server could not be reached.
    Unreachable(String),
    /// An error status, and the JSON-RPC message its body held, if any.
    Status {
        detail: String,
        message: Option<Message<'static>>,
    },
    /// Something else went wrong (an unusable answer, say).
    Failed(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Expired(_) => f.write_str("the server no longer knows the session"),
            Self::Unreachable(cause) | Self::Failed(cause) | Self::Status { detail: cause, .. } => {
                f.write_str(cause)
            }
        }
    }
}

/// What the driver's tasks ask of it.
enum Control {
    /// `notifications/initialized` was accepted: open the standalone stream.
    Listen,
    /// The standalone stream is open, or will not be: send what was held.
    Release,
    /// A task hit an expired session; answer when it has been renewed.
    Expired {
        stale: String,
        reply: oneshot::Sender<std::result::Result<(), String>>,
    },
}

/// What the driver's background tasks end with.
enum Background {
    Listener,
    Renewal(std::result::Result<(), String>),
}

/// What every task of one link shares.
struct Shared {
    endpoint: Endpoint,
    inbound: mpsc::Sender<Inbound>,
    session: watch::Sender<SessionState>,
    control: mpsc::Sender<Control>,
    /// Consecutive connection errors.
    failures: AtomicU32,
    /// Whether `Inbound::Closed` was sent.
    closed: AtomicBool,
    renewals: AtomicU64,
}

/// An answered request: the answer (none for 202) and the session id the
/// response carried.
struct Exchanged {
    answer: Option<Message<'static>>,
    session_id: Option<String>,
}

impl Shared {
    fn server(&self) -> &ServerId {
        &self.endpoint.server
    }

    fn current(&self) -> SessionState {
        self.session.borrow().clone()
    }

    async fn deliver(&self, message: Message<'static>) {
        // A closed inbound channel means the connection is gone; the driver
        // is about to stop.
        let _ = self.inbound.send(Inbound::Message(message)).await;
    }

    /// A response arrived: the server is reachable.
    fn reachable(&self) {
        self.failures.store(0, Ordering::Relaxed);
    }

    /// A connection error; after too many in a row, the link is closed.
    async fn unreachable(&self, cause: &str) {
        let failures = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
        if failures >= UNREACHABLE_AFTER && !self.closed.swap(true, Ordering::Relaxed) {
            let reason = format!(
                "{} is unreachable ({failures} connection errors in a row): {cause}",
                self.endpoint.shown()
            );
            tracing::warn!(server = %self.server(), "{reason}");
            let _ = self.inbound.send(Inbound::Closed(reason)).await;
        }
    }

    /// The headers that carry the session.
    fn session_headers(session: &SessionState) -> Vec<(HeaderName, HeaderValue)> {
        let mut headers = Vec::with_capacity(4);
        if let Some(id) = session
            .id
            .as_deref()
            .and_then(|id| header(SESSION_HEADER, id))
        {
            headers.push(id);
        }
        if let Some(version) = session.version.filter(|v| v.features().version_header) {
            headers.extend(header(VERSION_HEADER, version.as_str()));
        }
        headers
    }

    /// Sends a POST with `body`; classifies what cannot be used.
    async fn post(
        &self,
        session: &SessionState,
        body: Bytes,
        extra: &[(HeaderName, HeaderValue)],
        timeout: Option<Duration>,
    ) -> std::result::Result<Response, Failure> {
        let mut headers = Self::session_headers(session);
        // The message's own headers win over the session's.
        headers.extend(extra.iter().cloned());
        headers.push((
            ACCEPT,
            HeaderValue::from_static("application/json, text/event-stream"),
        ));
        headers.push((CONTENT_TYPE, HeaderValue::from_static(JSON)));
        let mut request = self
            .endpoint
            .request(reqwest::Method::POST, self.endpoint.url.clone(), &headers)
            .body(body);
        if let Some(timeout) = timeout {
            request = request.timeout(timeout);
        }
        let response = self.send(request).await?;
        self.check(session, response).await
    }

    /// Sends a request; counts connection errors.
    async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> std::result::Result<Response, Failure> {
        match request.send().await {
            Ok(response) => {
                self.reachable();
                Ok(response)
            }
            Err(e) => {
                let why = format!("could not reach {}: {}", self.endpoint.shown(), cause(&e));
                if e.is_connect() {
                    self.unreachable(&why).await;
                    Err(Failure::Unreachable(why))
                } else {
                    Err(Failure::Failed(why))
                }
            }
        }
    }

    /// Passes a success status through; reads an error status into a
    /// failure.
    async fn check(
        &self,
        session: &SessionState,
        response: Response,
    ) -> std::result::Result<Response, Failure> {
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let (detail, message) = error_body(response).await;
        match &session.id {
            Some(id)
                if status == StatusCode::NOT_FOUND
                    || (status == StatusCode::BAD_REQUEST
                        && detail.to_ascii_lowercase().contains("session")) =>
            {
                Err(Failure::Expired(id.clone()))
            }
            _ => Err(Failure::Status { detail, message }),
        }
    }

    /// Opens an event stream with GET, resuming after `last_event_id`.
    async fn open_stream(
        &self,
        session: &SessionState,
        last_event_id: Option<&str>,
    ) -> std::result::Result<Response, StreamError> {
        let mut headers = Self::session_headers(session);
        headers.push((ACCEPT, HeaderValue::from_static(EVENT_STREAM)));
        headers.extend(last_event_id.and_then(|id| header(LAST_EVENT_ID, id)));
        let request =
            self.endpoint
                .request(reqwest::Method::GET, self.endpoint.url.clone(), &headers);
        let response = self.send(request).await.map_err(StreamError::Failure)?;
        if response.status() == StatusCode::METHOD_NOT_ALLOWED {
            return Err(StreamError::NotOffered);
        }
        let response = self
            .check(session, response)
            .await
            .map_err(StreamError::Failure)?;
        if !is_event_stream(&response) {
            return Err(StreamError::Failure(Failure::Failed(format!(
                "expected an event stream, got `{}`",
                media_type(&response).unwrap_or_default()
            ))));
        }
        Ok(response)
    }

    /// POSTs a request and returns its answer; everything else that comes
    /// back on the way is delivered.
    async fn exchange(
        &self,
        session: &SessionState,
        body: Bytes,
        headers: &[(HeaderName, HeaderValue)],
        id: &RequestId<'static>,
    ) -> std::result::Result<Exchanged, Failure> {
        let mut response = match self.post(session, body, headers, None).await {
            Ok(response) => response,
            // An error status whose body answers the request (2026-07-28
            // servers send JSON-RPC errors with 4xx): the answer keeps the
            // server's own code and message.
            Err(Failure::Status {
                message: Some(message),
                ..
            }) if answers(&message, id) => {
                return Ok(Exchanged {
                    answer: Some(with_id(message, id)),
                    session_id: None,
                });
            }
            Err(failure) => return Err(failure),
        };
        let session_id = response
            .headers()
            .get(SESSION_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        if response.status() == StatusCode::ACCEPTED {
            // Not what a request should get; the answer, if any, will come
            // on the standalone stream, and the request's timeout covers
            // the rest.
            tracing::debug!(server = %self.server(), "request {id} was answered with 202 Accepted");
            return Ok(Exchanged {
                answer: None,
                session_id,
            });
        }
        let answer = match media_type(&response).as_deref() {
            Some(EVENT_STREAM) => {
                let stream = EventStream::new(self.server(), response, self.endpoint.max_message);
                self.read_answer(session, stream, id).await?
            }
            Some(JSON) | None => {
                let body = read_body(&mut response, self.endpoint.max_message)
                    .await
                    .map_err(Failure::Failed)?;
                self.take_answer(parse_messages(self.server(), &body), id)
                    .await
                    .ok_or_else(|| {
                        Failure::Failed(format!(
                            "the server's answer (HTTP {}) held no response to the request",
                            response.status()
                        ))
                    })?
            }
            Some(other) => {
                return Err(Failure::Failed(format!(
                    "the server answered with unexpected content type `{other}`"
                )));
            }
        };
        Ok(Exchanged {
            answer: Some(answer),
            session_id,
        })
    }

    /// Delivers `messages` except the answer to `id`, which it returns.
    async fn take_answer(
        &self,
        messages: Vec<Message<'static>>,
        id: &RequestId<'static>,
    ) -> Option<Message<'static>> {
        let mut answer = None;
        for message in messages {
            if answer.is_none() && answers(&message, id) {
                answer = Some(with_id(message, id));
            } else {
                self.deliver(message).await;
            }
        }
        answer
    }

    /// Reads a request's event stream until its answer, resuming it when it
    /// breaks first.
    async fn read_answer(
        &self,
        session: &SessionState,
        mut stream: EventStream,
        id: &RequestId<'static>,
    ) -> std::result::Result<Message<'static>, Failure> {
        let mut resumed = 0;
        loop {
            let ended = loop {
                match stream.next().await {
                    Ok(Some(event)) => {
                        let messages = event_messages(self.server(), &event);
                        if let Some(answer) = self.take_answer(messages, id).await {
                            return Ok(answer);
                        }
                    }
                    Ok(None) => {
                        break "the event stream ended before the answer arrived".to_owned();
                    }
                    Err(e) => {
                        break format!("the event stream broke before the answer arrived: {e}");
                    }
                }
            };
            let Some(last) = stream.last_event_id.clone() else {
                return Err(Failure::Failed(ended));
            };
            loop {
                if resumed >= RESUME_ATTEMPTS {
                    return Err(Failure::Failed(format!(
                        "{ended}; resuming it failed {resumed} times"
                    )));
                }
                resumed += 1;
                tokio::time::sleep(stream.retry_delay()).await;
                match self.open_stream(session, Some(&last)).await {
                    Ok(response) => {
                        tracing::debug!(server = %self.server(), "resumed the stream of request {id}");
                        stream.resume(response);
                        break;
                    }
                    Err(e) => {
                        tracing::debug!(server = %self.server(), "resuming the stream of request {id} failed: {e}");
                    }
                }
            }
        }
    }

    /// POSTs a notification or response; its answer is only a status.
    async fn post_plain(
        &self,
        session: &SessionState,
        body: Bytes,
    ) -> std::result::Result<(), Failure> {
        let response = self.post(session, body, &[], Some(NOTIFY_TIMEOUT)).await?;
        drop(response);
        Ok(())
    }

    /// Asks the driver to renew the session `stale` and waits for it.
    async fn renew(&self, stale: String) -> std::result::Result<(), String> {
        let (reply, answer) = oneshot::channel();
        self.control
            .send(Control::Expired { stale, reply })
            .await
            .map_err(|_| "the transport is stopping".to_owned())?;
        answer
            .await
            .unwrap_or_else(|_| Err("the transport is stopping".to_owned()))
    }

    /// Starts a new session: `initialize` with the connection's own
    /// parameters and an internal id, then `notifications/initialized`, then
    /// publishes the session.
    async fn reinitialize(&self, params: Option<Raw<'static>>) -> std::result::Result<(), String> {
        let n = self.renewals.fetch_add(1, Ordering::Relaxed) + 1;
        let id = RequestId::String(Cow::Owned(format!("mcp-manager-renew-{n}")));
        let body = Message::request(id.clone(), Method::Initialize.as_str(), params)
            .to_vec()
            .into();
        let fresh = SessionState::default();
        let exchanged = self
            .exchange(&fresh, body, &[], &id)
            .await
            .map_err(|e| format!("`initialize` failed: {e}"))?;
        let version = match &exchanged.answer {
            Some(answer @ Message::Response(_)) => negotiated(answer),
            Some(Message::Error(error)) => {
                return Err(format!("`initialize` was refused: {}", error.error.message));
            }
            _ => return Err("`initialize` got no answer".to_owned()),
        };
        let session = SessionState {
            id: exchanged.session_id,
            version,
            epoch: self.current().epoch + 1,
        };
        let initialized = Message::notification(Method::Initialized.as_str(), None)
            .to_vec()
            .into();
        self.post_plain(&session, initialized)
            .await
            .map_err(|e| format!("`notifications/initialized` failed: {e}"))?;
        self.session.send_replace(session);
        tracing::info!(server = %self.server(), "the server had forgotten the session; started a new one");
        Ok(())
    }

    /// Ends the session with DELETE, within `within`.
    async fn end_session(&self, within: Duration) {
        let session = self.current();
        if session.id.is_none() {
            return;
        }
        let headers = Self::session_headers(&session);
        let request = self
            .endpoint
            .request(reqwest::Method::DELETE, self.endpoint.url.clone(), &headers)
            .timeout(within);
        match request.send().await {
            Ok(response) if response.status() == StatusCode::METHOD_NOT_ALLOWED => {
                tracing::debug!(server = %self.server(), "the server does not let clients end sessions");
            }
            Ok(response) => {
                tracing::debug!(server = %self.server(), "ended the session: HTTP {}", response.status());
            }
            Err(e) => {
                tracing::debug!(server = %self.server(), "could not end the session: {}", cause(&e));
            }
        }
    }
}

/// Why a GET stream could not be opened.
#[derive(Debug)]
enum StreamError {
    /// 405: the server offers no such stream.
    NotOffered,
    Failure(Failure),
}

impl std::fmt::Display for StreamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotOffered => f.write_str("HTTP 405 Method Not Allowed"),
            Self::Failure(failure) => failure.fmt(f),
        }
    }
}

/// The headers a stateless (2026-07-28) request carries beside its body:
/// `MCP-Protocol-Version` from its `_meta`, `Mcp-Method`, and `Mcp-Name` for
/// the methods that name a tool, prompt or resource. Other requests get none.
fn request_headers(
    request: &Request<'_>,
) -> (Option<ProtocolVersion>, Vec<(HeaderName, HeaderValue)>) {
    let Some(params) = &request.params else {
        return (None, Vec::new());
    };
    if !params.get().contains(meta_keys::PROTOCOL_VERSION) {
        return (None, Vec::new());
    }
    let Ok(object) = RawObject::from_cow(params.reborrow()) else {
        return (None, Vec::new());
    };
    let meta = object
        .get("_meta")
        .and_then(|meta| RequestMeta::from_params(Some(Raw::borrowed(meta))).ok());
    let Some(version) = meta.and_then(|meta| meta.protocol_version) else {
        return (None, Vec::new());
    };
    let mut headers = Vec::with_capacity(3);
    headers.extend(header(VERSION_HEADER, &version));
    headers.extend(header(METHOD_HEADER, &request.method));
    let named = match request.method.as_ref() {
        "tools/call" | "prompts/get" => Some("name"),
        "resources/read" => Some("uri"),
        _ => None,
    };
    let name = named
        .and_then(|key| object.get(key))
        .and_then(|raw| serde_json::from_str::<Cow<'_, str>>(raw.get()).ok());
    if let Some(name) = name {
        headers.extend(header(NAME_HEADER, &header_safe(&name)));
    }
    (ProtocolVersion::parse(&version), headers)
}

/// A value as a header can carry it: printable ASCII without edge spaces
/// as it is, anything else as `=?base64?...?=`.
fn header_safe(value: &str) -> Cow<'_, str> {
    let plain = value.bytes().all(|b| (0x20..0x7f).contains(&b))
        && value.trim() == value
        && !(value.starts_with("=?base64?") && value.ends_with("?="));
    if plain {
        Cow::Borrowed(value)
    } else {
        Cow::Owned(format!("=?base64?{}?=", base64(value.as_bytes())))
    }
}

/// Standard base64 with padding.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let symbol = |index: u32| {
        ALPHABET
            .get((index & 63) as usize)
            .copied()
            .map_or('=', char::from)
    };
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let [a, b, c] = [0, 1, 2].map(|i| chunk.get(i).copied().map_or(0, u32::from));
        let n = (a << 16) | (b << 8) | c;
        out.push(symbol(n >> 18));
        out.push(symbol(n >> 12));
        out.push(if chunk.len() > 1 { symbol(n >> 6) } else { '=' });
        out.push(if chunk.len() > 2 { symbol(n) } else { '=' });
    }
    out
}

/// An error answer without an id gets the id of the request it answers.
fn with_id(message: Message<'static>, id: &RequestId<'static>) -> Message<'static> {
    match message {
        Message::Error(mut error) if error.id.is_none() => {
            error.id = Some(id.clone());
            Message::Error(error)
        }
        other => other,
    }
}

/// The version an `initialize` answer negotiated.
fn negotiated(answer: &Message<'static>) -> Option<ProtocolVersion> {
    let Message::Response(response) = answer else {
        return None;
    };
    let result = InitializeResult::from_result(response.result.reborrow()).ok()?;
    ProtocolVersion::parse(&result.protocol_version)
}

// ---------------------------------------------------------------------------
// Tasks.

/// Owns the link: takes outbound messages, spawns a task for each, serves
/// the tasks' control messages, and stops everything when told to.
async fn drive(
    shared: Arc<Shared>,
    ends: TransportEnds,
    mut control: mpsc::Receiver<Control>,
    signal: StopSignal,
) {
    // `shared` holds the inbound sender the tasks use.
    let TransportEnds { mut outbound, .. } = ends;
    let StopSignal { mut stop, _done } = signal;
    let mut driver = Driver::new(shared);
    let mut open = true;
    let grace = loop {
        tokio::select! {
            biased;
            message = outbound.recv(), if open => match message {
                Some(message) => driver.on_outbound(message),
                None => open = false,
            },
            Some(message) = control.recv() => driver.on_control(message),
            () = hold_until(driver.holding) => driver.release(),
            Some(done) = driver.requests.join_next_with_id(), if !driver.requests.is_empty() => {
                driver.on_request_done(match done {
                    Ok((task, ())) => task,
                    Err(e) => e.id(),
                });
            }
            Some(_) = driver.others.join_next(), if !driver.others.is_empty() => {}
            Some(done) = driver.background.join_next(), if !driver.background.is_empty() => {
                if let Ok(done) = done {
                    driver.on_background_done(done);
                }
            }
            grace = &mut stop => break grace.ok(),
        }
    };
    driver.finish(grace).await;
}

/// The driver's state: the tasks it runs and what they wait for.
struct Driver {
    shared: Arc<Shared>,
    /// One task per request in flight; each reads its answer.
    requests: JoinSet<()>,
    /// The task carrying each request, to drop it when it is cancelled.
    streams: HashMap<RequestId<'static>, AbortHandle>,
    tasks: HashMap<tokio::task::Id, RequestId<'static>>,
    /// POSTs of notifications and answers.
    others: JoinSet<()>,
    /// The standalone stream and a session renewal.
    background: JoinSet<Background>,
    listening: bool,
    /// Until when outbound messages wait for the standalone stream, while
    /// they do.
    holding: Option<tokio::time::Instant>,
    /// The messages that wait.
    held: VecDeque<Message<'static>>,
    /// The connection's `initialize` parameters, replayed on renewal.
    init_params: Option<Raw<'static>>,
    /// Who waits for the renewal in progress, if one is.
    renewal: Option<Vec<oneshot::Sender<std::result::Result<(), String>>>>,
}

impl Driver {
    fn new(shared: Arc<Shared>) -> Self {
        Self {
            shared,
            requests: JoinSet::new(),
            streams: HashMap::new(),
            tasks: HashMap::new(),
            others: JoinSet::new(),
            background: JoinSet::new(),
            listening: false,
            holding: None,
            held: VecDeque::new(),
            init_params: None,
            renewal: None,
        }
    }

    fn on_outbound(&mut self, message: Message<'static>) {
        if self.holding.is_some() {
            self.held.push_back(message);
            return;
        }
        if matches!(&message, Message::Notification(n) if n.method == Method::Initialized.as_str())
        {
            // A server may ask the client things on the standalone stream
            // as soon as it is initialized; a request sent before that
            // stream is open could be answered with such a question that
            // nobody hears. So what follows waits until the stream is open
            // (or will not be), for a moment at most.
            self.holding = Some(tokio::time::Instant::now() + HOLD_FOR_STREAM);
        }
        let shared = self.shared.clone();
        match message {
            Message::Request(request) => {
                if request.method == Method::Initialize.as_str() {
                    self.init_params = request.params.clone();
                }
                let id = request.id.clone();
                let handle = self.requests.spawn(send_request(shared, request));
                self.tasks.insert(handle.id(), id.clone());
                self.streams.insert(id, handle);
            }
            Message::Notification(notification) => {
                if notification.method == Method::Cancelled.as_str() {
                    self.drop_cancelled(&notification);
                }
                self.others.spawn(send_notification(shared, notification));
            }
            answer => {
                self.others.spawn(send_answer(shared, answer));
            }
        }
    }

    /// Drops the stream of a request the connection cancelled.
    fn drop_cancelled(&mut self, notification: &Notification<'static>) {
        let cancelled = CancelledParams::from_params(notification.params.clone());
        let Some(id) = cancelled.ok().and_then(|c| c.request_id) else {
            return;
        };
        let id = id.into_owned();
        if let Some(stream) = self.streams.remove(&id) {
            tracing::debug!(server = %self.shared.server(), "dropping the stream of cancelled request {id}");
            stream.abort();
        }
    }

    /// Sends what waited for the standalone stream.
    fn release(&mut self) {
        self.holding = None;
        while let Some(message) = self.held.pop_front() {
            self.on_outbound(message);
        }
    }

    fn on_request_done(&mut self, task: tokio::task::Id) {
        let Some(id) = self.tasks.remove(&task) else {
            return;
        };
        if self
            .streams
            .get(&id)
            .is_some_and(|handle| handle.id() == task)
        {
            self.streams.remove(&id);
        }
    }

    fn on_control(&mut self, message: Control) {
        match message {
            Control::Listen => {
                if !self.listening {
                    self.listening = true;
                    self.background.spawn(listen(self.shared.clone()));
                } else {
                    self.release();
                }
            }
            Control::Release => self.release(),
            Control::Expired { stale, reply } => {
                if self.shared.current().id.as_deref() != Some(stale.as_str()) {
                    // Renewed already.
                    let _ = reply.send(Ok(()));
                } else if let Some(waiters) = &mut self.renewal {
                    waiters.push(reply);
                } else {
                    self.renewal = Some(vec![reply]);
                    let shared = self.shared.clone();
                    let params = self.init_params.clone();
                    self.background.spawn(async move {
                        Background::Renewal(shared.reinitialize(params).await)
                    });
                }
            }
        }
    }

    fn on_background_done(&mut self, done: Background) {
        let Background::Renewal(result) = done else {
            return;
        };
        if let Err(e) = &result {
            tracing::warn!(server = %self.shared.server(), "could not renew the session: {e}");
        }
        for waiter in self.renewal.take().unwrap_or_default() {
            let _ = waiter.send(result.clone());
        }
    }

    /// Stops every task; with a grace period (a close), lets notifications
    /// finish and ends the session within it; without (a drop), makes one
    /// short attempt at ending the session.
    async fn finish(mut self, grace: Option<Duration>) {
        self.requests.abort_all();
        self.background.abort_all();
        self.renewal = None;
        match grace {
            Some(grace) => {
                let others = &mut self.others;
                let shared = &self.shared;
                let finish = async {
                    while others.join_next().await.is_some() {}
                    shared.end_session(grace).await;
                };
                let _ = tokio::time::timeout(grace, finish).await;
            }
            None => {
                self.others.abort_all();
                self.shared.end_session(DROP_GRACE).await;
            }
        }
        self.others.abort_all();
        if !self.shared.closed.swap(true, Ordering::Relaxed) {
            let _ = self
                .shared
                .inbound
                .try_send(Inbound::Closed("the HTTP transport was closed".to_owned()));
        }
    }
}

/// POSTs a request and delivers its answer, or an error answer when the
/// request could not be carried. An expired session is renewed once.
async fn send_request(shared: Arc<Shared>, request: Request<'static>) {
    let id = request.id.clone();
    let method = request.method.clone();
    let initialize = method == Method::Initialize.as_str();
    let (stateless, headers) = request_headers(&request);
    let body = Bytes::from(Message::Request(request).to_vec());
    let mut renewed = false;
    loop {
        // `initialize` starts a session: it carries none.
        let session = if initialize {
            SessionState::default()
        } else {
            shared.current()
        };
        match shared.exchange(&session, body.clone(), &headers, &id).await {
            Ok(exchanged) => {
                if let (Some(version), Some(Message::Response(_))) = (stateless, &exchanged.answer)
                {
                    // A stateless server answered: its version goes on the
                    // messages that carry none of their own.
                    shared.session.send_if_modified(|state| {
                        let unset = state.version.is_none();
                        if unset {
                            state.version = Some(version);
                        }
                        unset
                    });
                }
                if initialize {
                    let version = exchanged.answer.as_ref().and_then(negotiated);
                    let epoch = session.epoch;
                    shared.session.send_modify(|state| {
                        state.id = exchanged.session_id;
                        state.version = version;
                        state.epoch = state.epoch.max(epoch) + 1;
                    });
                }
                if let Some(answer) = exchanged.answer {
                    shared.deliver(answer).await;
                }
                return;
            }
            Err(Failure::Expired(stale)) if !renewed && !initialize => {
                renewed = true;
                if let Err(e) = shared.renew(stale).await {
                    let message = format!(
                        "`{method}` failed: the server no longer knows the session and a new one could not be started: {e}"
                    );
                    shared.deliver(failure_answer(id, message)).await;
                    return;
                }
            }
            Err(failure) => {
                let message = format!("`{method}` could not be carried over HTTP: {failure}");
                shared.deliver(failure_answer(id, message)).await;
                return;
            }
        }
    }
}

/// POSTs a notification; a failure is logged. An expired session is renewed
/// once, except for `notifications/initialized`, which belongs to the
/// session it was sent for.
async fn send_notification(shared: Arc<Shared>, notification: Notification<'static>) {
    let initialized = notification.method == Method::Initialized.as_str();
    let method = notification.method.clone();
    let body = Bytes::from(Message::Notification(notification).to_vec());
    let mut renewed = false;
    loop {
        let session = shared.current();
        match shared.post_plain(&session, body.clone()).await {
            Ok(()) => {
                if initialized {
                    let _ = shared.control.send(Control::Listen).await;
                }
                return;
            }
            Err(Failure::Expired(stale)) if !renewed && !initialized => {
                renewed = true;
                if shared.renew(stale).await.is_err() {
                    return;
                }
            }
            Err(failure) => {
                tracing::warn!(server = %shared.server(), "could not send `{method}`: {failure}");
                if initialized {
                    let _ = shared.control.send(Control::Release).await;
                }
                return;
            }
        }
    }
}

/// POSTs the answer to a server-to-client request; a failure is logged.
async fn send_answer(shared: Arc<Shared>, answer: Message<'static>) {
    let session = shared.current();
    if let Err(failure) = shared.post_plain(&session, answer.to_vec().into()).await {
        tracing::warn!(server = %shared.server(), "could not send an answer to the server: {failure}");
    }
}

/// Exponential backoff for reconnecting the standalone stream.
struct Backoff(Duration);

impl Backoff {
    const START: Duration = Duration::from_secs(1);

    fn next(&mut self) -> Duration {
        let delay = self.0;
        self.0 = (self.0 * 2).min(MAX_RETRY);
        delay
    }

    fn reset(&mut self) {
        self.0 = Self::START;
    }
}

/// How long outbound messages wait for the standalone stream to open.
const HOLD_FOR_STREAM: Duration = Duration::from_secs(2);

/// Resolves at `until`; never without it.
async fn hold_until(until: Option<tokio::time::Instant>) {
    match until {
        Some(until) => tokio::time::sleep_until(until).await,
        None => std::future::pending().await,
    }
}

/// Keeps the standalone GET stream open and delivers what comes on it.
async fn listen(shared: Arc<Shared>) -> Background {
    let mut sessions = shared.session.subscribe();
    let mut epoch = None;
    let mut last_event_id: Option<String> = None;
    let mut retry: Option<u64> = None;
    let mut served = false;
    let mut backoff = Backoff(Backoff::START);
    loop {
        let session = sessions.borrow_and_update().clone();
        if epoch != Some(session.epoch) {
            epoch = Some(session.epoch);
            last_event_id = None;
            served = false;
        }
        let opened = shared.open_stream(&session, last_event_id.as_deref()).await;
        if !served {
            // Open or refused: either way nothing needs to wait for it.
            let _ = shared.control.try_send(Control::Release);
        }
        let delay = match opened {
            Ok(response) => {
                served = true;
                let mut stream =
                    EventStream::new(shared.server(), response, shared.endpoint.max_message);
                stream.last_event_id = last_event_id.take();
                stream.retry = retry;
                let ended = loop {
                    match stream.next().await {
                        Ok(Some(event)) => {
                            for message in event_messages(shared.server(), &event) {
                                shared.deliver(message).await;
                            }
                        }
                        Ok(None) => break "ended".to_owned(),
                        Err(e) => break format!("broke: {e}"),
                    }
                };
                tracing::debug!(server = %shared.server(), "the standalone event stream {ended}; reconnecting");
                last_event_id = stream.last_event_id.take();
                retry = stream.retry;
                if stream.delivered {
                    backoff.reset();
                    stream.retry_delay()
                } else {
                    backoff.next().max(stream.retry_delay())
                }
            }
            Err(StreamError::NotOffered) => {
                tracing::debug!(server = %shared.server(), "the server offers no standalone event stream");
                return Background::Listener;
            }
            Err(StreamError::Failure(Failure::Expired(stale))) => {
                if served {
                    // The session was lost while the stream was open.
                    let _ = shared.renew(stale).await;
                } else {
                    tracing::debug!(server = %shared.server(), "the server offers no standalone event stream for this session (HTTP 404)");
                }
                if sessions.changed().await.is_err() {
                    return Background::Listener;
                }
                continue;
            }
            Err(StreamError::Failure(failure)) => {
                tracing::debug!(server = %shared.server(), "could not open the standalone event stream: {failure}");
                backoff.next()
            }
        };
        tokio::time::sleep(delay).await;
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

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
        });
        let TransportLink {
            outbound,
            mut inbound,
            closer,
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
        let (version, headers) = request_headers(&request);
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
        assert_eq!(request_headers(&stateful).1.len(), 0);
    }

    #[test]
    fn header_values_and_base64() {
        assert_eq!(header_safe("echo"), "echo");
        assert_eq!(header_safe(" echo"), "=?base64?IGVjaG8=?=");
        assert_eq!(header_safe("=?base64?x?="), "=?base64?PT9iYXNlNjQ/eD89?=");
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foob"), "Zm9vYg==");
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
}
