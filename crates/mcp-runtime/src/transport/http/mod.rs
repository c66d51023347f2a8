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

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64};
use std::time::Duration;

use bytes::BytesMut;
use mcp_core::auth::TokenSource;
use mcp_core::{BoxFuture, ServerId};
use mcp_protocol::codec::sse::{SseDecoder, SseEvent};
use mcp_protocol::{BatchPolicy, Message, Packet, RequestId};
use reqwest::header::{
    AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, WWW_AUTHENTICATE,
};
use reqwest::{Client, Response, StatusCode, Url};
use tokio::sync::{mpsc, oneshot, watch};

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
/// How many new tokens one request may be sent again with: one to sign
/// in (401), one more to step up to the scopes an operation needs (403);
/// a server that still refuses is not asked again.
pub const NEW_TOKENS_PER_REQUEST: u32 = 2;
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
    /// Where the access token comes from, for a server that asks for one
    /// (see [`TokenSource`]); `None`: the configured headers are all.
    pub credentials: Option<Arc<dyn TokenSource>>,
}

impl std::fmt::Debug for HttpTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpTarget")
            .field("server", &self.server)
            .field("url", &redact_str(&self.url))
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("max_message", &self.max_message)
            .field("credentials", &self.credentials.is_some())
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
                mirrored: link::MirroredArguments::default(),
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
    pub(crate) credentials: Option<Arc<dyn TokenSource>>,
}

/// Why [`Endpoint::send`] got no response to use.
pub(crate) enum SendError {
    /// The request could not be made or carried.
    Http(reqwest::Error),
    /// The server asked for a token (`status`) that could not be had.
    SignIn { status: StatusCode, reason: String },
}

impl SendError {
    /// What to say about it, without the URL.
    pub(crate) fn describe(&self, shown: &str) -> String {
        match self {
            Self::Http(error) => format!("could not reach {shown}: {}", cause(error)),
            Self::SignIn { status, reason } => format!("HTTP {status}: {reason}"),
        }
    }

    /// Whether no connection could be made at all.
    pub(crate) fn is_connect(&self) -> bool {
        matches!(self, Self::Http(error) if error.is_connect())
    }
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
            credentials: target.credentials.clone(),
        })
    }

    /// Sends `request` with the current access token, when the server has
    /// a [`TokenSource`]; a 401 (unless its challenge is of another scheme
    /// than `Bearer`), or a 403 whose challenge says `insufficient_scope`,
    /// gets a new token from it and the request is sent again, at most
    /// [`NEW_TOKENS_PER_REQUEST`] times. The token
    /// goes to this server's endpoint only: redirects stay on its origin.
    pub(crate) async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> std::result::Result<Response, SendError> {
        let Some(source) = &self.credentials else {
            return request.send().await.map_err(SendError::Http);
        };
        let (client, request) = request.build_split();
        let request = request.map_err(SendError::Http)?;
        let mut token = source.token();
        let mut renewed = 0;
        loop {
            let Some(mut attempt) = request.try_clone() else {
                return client.execute(request).await.map_err(SendError::Http);
            };
            if let Some(value) = token.as_deref().and_then(bearer) {
                attempt.headers_mut().insert(AUTHORIZATION, value);
            }
            let response = client.execute(attempt).await.map_err(SendError::Http)?;
            let status = response.status();
            let challenge = response
                .headers()
                .get(WWW_AUTHENTICATE)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned);
            // A challenge of another scheme (`Basic`, say) is not OAuth's:
            // the answer stands. Without one, a 401 may still be OAuth's
            // (its metadata is then found at the well-known paths).
            let bearer = challenge
                .as_deref()
                .is_none_or(|c| c.to_ascii_lowercase().contains("bearer"));
            let challenged = bearer
                && (status == StatusCode::UNAUTHORIZED
                    || (status == StatusCode::FORBIDDEN
                        && challenge
                            .as_deref()
                            .is_some_and(|c| c.contains("insufficient_scope"))));
            if !challenged || renewed >= NEW_TOKENS_PER_REQUEST {
                return Ok(response);
            }
            drop(response);
            renewed += 1;
            match source
                .refused(token.as_deref(), status.as_u16(), challenge.as_deref())
                .await
            {
                Ok(fresh) => token = Some(fresh),
                Err(reason) => return Err(SendError::SignIn { status, reason }),
            }
        }
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
/// the configured headers and the access token.
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

/// `Authorization: Bearer TOKEN`, marked sensitive; `None` when the token
/// cannot be a header value.
fn bearer(token: &str) -> Option<HeaderValue> {
    let mut value = HeaderValue::from_str(&format!("Bearer {token}")).ok()?;
    value.set_sensitive(true);
    Some(value)
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

mod driver;
mod link;
#[cfg(test)]
mod tests;

use driver::drive;
use link::{SessionState, Shared};
