//! The Streamable HTTP link itself: the session as the server sees it,
//! one exchange (a POST and its answer, JSON or an event stream resumed
//! with `Last-Event-ID`), the session renewed on a 404, and its end.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use mcp_core::ServerId;
use mcp_protocol::mcp::param_headers::{self, ParamHeader};
use mcp_protocol::mcp::{InitializeResult, Method, RequestMeta, View, meta_keys, stateless};
use mcp_protocol::raw::{Raw, RawObject};
use mcp_protocol::{Message, ProtocolVersion, Request, RequestId};
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderName, HeaderValue};
use reqwest::{Response, StatusCode};
use tokio::sync::{mpsc, oneshot, watch};

use super::Inbound;

use super::*;

/// The session as the server sees it.
#[derive(Clone, Debug, Default)]
pub(super) struct SessionState {
    /// `Mcp-Session-Id`, when the server assigned one.
    pub(super) id: Option<String>,
    /// The negotiated version, once `initialize` (or a stateless request)
    /// was answered.
    pub(super) version: Option<ProtocolVersion>,
    /// Bumped on each (re)initialization.
    pub(super) epoch: u64,
}

/// Why an exchange failed.
#[derive(Debug)]
pub(super) enum Failure {
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
pub(super) enum Control {
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
pub(super) enum Background {
    Listener,
    Renewal(std::result::Result<(), String>),
}

/// What every task of one link shares.
pub(super) struct Shared {
    pub(super) endpoint: Endpoint,
    pub(super) inbound: mpsc::Sender<Inbound>,
    pub(super) session: watch::Sender<SessionState>,
    pub(super) control: mpsc::Sender<Control>,
    /// Consecutive connection errors.
    pub(super) failures: AtomicU32,
    /// Whether `Inbound::Closed` was sent.
    pub(super) closed: AtomicBool,
    pub(super) renewals: AtomicU64,
    /// The arguments the server's tools mirror in headers.
    pub(super) mirrored: MirroredArguments,
}

/// The arguments each tool of the server mirrors in `Mcp-Param-*` headers
/// (`x-mcp-header` in its input schema), learned from the `tools/list`
/// answers the link carries: a first page starts the table afresh, later
/// pages add to it. A tool whose annotations are invalid is left out.
#[derive(Debug, Default)]
pub(super) struct MirroredArguments(std::sync::Mutex<HashMap<String, Vec<ParamHeader>>>);

impl MirroredArguments {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<ParamHeader>>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Learns from the answer to a `tools/list` request with `params`.
    pub(super) fn learn(&self, params: Option<&Raw<'_>>, answer: &Message<'_>) {
        let Message::Response(response) = answer else {
            return;
        };
        let first_page = params.is_none_or(|p| !p.get().contains("\"cursor\""));
        let annotated = response.result.get().contains(param_headers::ANNOTATION);
        if !annotated {
            if first_page {
                self.lock().clear();
            }
            return;
        }
        let Ok(result) = serde_json::from_str::<serde_json::Value>(response.result.get()) else {
            return;
        };
        let tools = result.get("tools").and_then(serde_json::Value::as_array);
        let learned: Vec<(String, Vec<ParamHeader>)> = tools
            .into_iter()
            .flatten()
            .filter_map(|tool| {
                let name = tool.get("name")?.as_str()?;
                let schema = tool.get("inputSchema")?;
                let mirrored = param_headers::param_headers(schema).ok()?;
                (!mirrored.is_empty()).then(|| (name.to_owned(), mirrored))
            })
            .collect();
        let mut table = self.lock();
        if first_page {
            table.clear();
        }
        table.extend(learned);
    }

    /// The `Mcp-Param-*` headers of a `tools/call` of `tool` with
    /// `arguments`: an argument that is null, absent or has no header
    /// form gets none.
    fn headers(
        &self,
        tool: &str,
        arguments: Option<&serde_json::value::RawValue>,
    ) -> Vec<(HeaderName, HeaderValue)> {
        let Some(mirrored) = self.lock().get(tool).cloned() else {
            return Vec::new();
        };
        let Some(Ok(serde_json::Value::Object(arguments))) =
            arguments.map(|raw| serde_json::from_str::<serde_json::Value>(raw.get()))
        else {
            return Vec::new();
        };
        mirrored
            .iter()
            .filter_map(|param| {
                let value = param_headers::header_value(arguments.get(&param.argument)?)?;
                let name = HeaderName::from_bytes(param.name().as_bytes()).ok()?;
                Some((name, HeaderValue::from_str(&value).ok()?))
            })
            .collect()
    }
}

/// An answered request: the answer (none for 202) and the session id the
/// response carried.
pub(super) struct Exchanged {
    pub(super) answer: Option<Message<'static>>,
    pub(super) session_id: Option<String>,
}

impl Shared {
    pub(super) fn server(&self) -> &ServerId {
        &self.endpoint.server
    }

    pub(super) fn current(&self) -> SessionState {
        self.session.borrow().clone()
    }

    pub(super) async fn deliver(&self, message: Message<'static>) {
        // A closed inbound channel means the connection is gone; the driver
        // is about to stop.
        let _ = self.inbound.send(Inbound::Message(message)).await;
    }

    /// Request `id` could not be carried: it fails with `reason`.
    pub(super) async fn fail(&self, id: RequestId<'static>, reason: String) {
        let _ = self.inbound.send(Inbound::Failed { id, reason }).await;
    }

    /// A response arrived: the server is reachable.
    pub(super) fn reachable(&self) {
        self.failures.store(0, Ordering::Relaxed);
    }

    /// A connection error; after too many in a row, the link is closed.
    pub(super) async fn unreachable(&self, cause: &str) {
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
    pub(super) fn session_headers(session: &SessionState) -> Vec<(HeaderName, HeaderValue)> {
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
    pub(super) async fn post(
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
    pub(super) async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> std::result::Result<Response, Failure> {
        match self.endpoint.send(request).await {
            Ok(response) => {
                self.reachable();
                Ok(response)
            }
            Err(e) => {
                let why = e.describe(&self.endpoint.shown());
                if e.is_connect() {
                    self.unreachable(&why).await;
                    Err(Failure::Unreachable(why))
                } else {
                    if matches!(e, SendError::SignIn { .. }) {
                        self.reachable();
                    }
                    Err(Failure::Failed(why))
                }
            }
        }
    }

    /// Passes a success status through; reads an error status into a
    /// failure.
    pub(super) async fn check(
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
    pub(super) async fn open_stream(
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
    pub(super) async fn exchange(
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

    /// Delivers `messages` except the answer to `id`, which it returns;
    /// they came on the stream of request `id`, and are delivered as
    /// related to it.
    pub(super) async fn take_answer(
        &self,
        messages: Vec<Message<'static>>,
        id: &RequestId<'static>,
    ) -> Option<Message<'static>> {
        let mut answer = None;
        for message in messages {
            if answer.is_none() && answers(&message, id) {
                answer = Some(with_id(message, id));
            } else {
                let related = Inbound::Related {
                    message,
                    request: id.clone(),
                };
                // A closed inbound channel means the connection is gone.
                let _ = self.inbound.send(related).await;
            }
        }
        answer
    }

    /// Reads a request's event stream until its answer, resuming it when it
    /// breaks first.
    pub(super) async fn read_answer(
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
    pub(super) async fn post_plain(
        &self,
        session: &SessionState,
        body: Bytes,
    ) -> std::result::Result<(), Failure> {
        let response = self.post(session, body, &[], Some(NOTIFY_TIMEOUT)).await?;
        drop(response);
        Ok(())
    }

    /// Asks the driver to renew the session `stale` and waits for it.
    pub(super) async fn renew(&self, stale: String) -> std::result::Result<(), String> {
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
    pub(super) async fn reinitialize(
        &self,
        params: Option<Raw<'static>>,
    ) -> std::result::Result<(), String> {
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
    pub(super) async fn end_session(&self, within: Duration) {
        let session = self.current();
        if session.id.is_none() {
            return;
        }
        let headers = Self::session_headers(&session);
        let request = self
            .endpoint
            .request(reqwest::Method::DELETE, self.endpoint.url.clone(), &headers)
            .timeout(within);
        match self.endpoint.send(request).await {
            Ok(response) if response.status() == StatusCode::METHOD_NOT_ALLOWED => {
                tracing::debug!(server = %self.server(), "the server does not let clients end sessions");
            }
            Ok(response) => {
                tracing::debug!(server = %self.server(), "ended the session: HTTP {}", response.status());
            }
            Err(e) => {
                tracing::debug!(server = %self.server(), "could not end the session: {}", e.describe(&self.endpoint.shown()));
            }
        }
    }
}

/// Why a GET stream could not be opened.
#[derive(Debug)]
pub(super) enum StreamError {
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
/// `MCP-Protocol-Version` from its `_meta`, `Mcp-Method`, `Mcp-Name` for
/// the methods that name a tool, prompt, resource or task, and for a
/// `tools/call` the `Mcp-Param-*` headers of the arguments its tool mirrors.
/// Other requests get none.
pub(super) fn request_headers(
    request: &Request<'_>,
    mirrored: &MirroredArguments,
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
    let name = stateless::name_member(&request.method)
        .and_then(|key| object.get(key))
        .and_then(|raw| serde_json::from_str::<Cow<'_, str>>(raw.get()).ok());
    if let Some(name) = name {
        headers.extend(header(NAME_HEADER, &stateless::encode_header_value(&name)));
        if request.method == Method::ToolsCall.as_str() {
            headers.extend(mirrored.headers(&name, object.get("arguments")));
        }
    }
    (ProtocolVersion::parse(&version), headers)
}

/// An error answer without an id gets the id of the request it answers.
pub(super) fn with_id(message: Message<'static>, id: &RequestId<'static>) -> Message<'static> {
    match message {
        Message::Error(mut error) if error.id.is_none() => {
            error.id = Some(id.clone());
            Message::Error(error)
        }
        other => other,
    }
}

/// The version an `initialize` answer negotiated.
pub(super) fn negotiated(answer: &Message<'static>) -> Option<ProtocolVersion> {
    let Message::Response(response) = answer else {
        return None;
    };
    let result = InitializeResult::from_result(response.result.reborrow()).ok()?;
    ProtocolVersion::parse(&result.protocol_version)
}
