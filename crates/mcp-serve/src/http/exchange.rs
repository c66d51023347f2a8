//! One exchange of the Streamable HTTP endpoint: a POST's message checked
//! and run (answered with JSON, or with an event stream when something
//! must go out first), `initialize` opening a session, GET opening or
//! resuming a stream, DELETE ending a session.
//!
//! No lock is taken from a POST to its answer: sessions, counts and the
//! cancellable requests are the lock-free structures of `session`.

use std::net::IpAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::StatusCode;
use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderValue};
use mcp_core::auth::Principal;
use mcp_core::{BoxFuture, HandlerResult, Peer, RequestContext};
use mcp_protocol::jsonrpc::error_code;
use mcp_protocol::mcp::stateless::{self, Generation};
use mcp_protocol::mcp::{Method, RequestParams, View, meta_keys};
use mcp_protocol::raw::{Raw, RawObject};
use mcp_protocol::{
    BatchPolicy, ErrorObject, Message, Notification, Packet, ProtocolVersion, Request, RequestId,
    VersionSet,
};
use mcp_runtime::dispatch::{ClientMessage, answer, ask_client, route};
use mcp_runtime::transport::CHANNEL_CAPACITY;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

use super::body::{
    HttpResponse, SseBody, encode_event, json, rpc_error, sse_response, status, too_many_requests,
};
use super::news::{News, Tidings};
use super::sealed::{Change, Sealed};
use super::session::{Admitted, Cancellable, Refused, Session, SessionPeer, end_session};
use super::{
    Caller, EVENT_STREAM, METHOD_HEADER, NAME_HEADER, REQUEST_CANCELLED, SESSION_HEADER, Shared,
    VERSION_HEADER,
};

impl Shared {
    /// The session of the request's `Mcp-Session-Id`: one opened here, or
    /// one another replica opened, taken over (see [`Self::take_over`]).
    pub(super) async fn session(
        &self,
        headers: &HeaderMap,
        caller: &Caller,
        client: IpAddr,
    ) -> Result<Arc<Session>, Box<HttpResponse>> {
        let Some(id) = headers.get(SESSION_HEADER) else {
            return Err(Box::new(rpc_error(
                StatusCode::BAD_REQUEST,
                None,
                ErrorObject::new(error_code::INVALID_REQUEST, "Bad Request: no session id"),
            )));
        };
        // A session opened with another subject's token is not theirs to
        // use: as unknown to them as any other id.
        let id = id.to_str().ok();
        let found = match id.map(|id| (id, self.sessions.get(id))) {
            Some((_, Some(session))) => Some(session).filter(|session| session.used_by(caller)),
            Some((id, None)) => self.take_over(id, caller, client).await,
            None => None,
        };
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

    /// The session of `id`, opened by another replica (or by this process
    /// before it restarted) and sealed with the key they share: made here
    /// as it was made there, with the `initialize` its id holds (the
    /// protocol version, the client's capabilities and info) and
    /// `notifications/initialized`, under the same id. Only the subject
    /// that opened it takes it over. Requests that come together for it
    /// wait for one taking over; `None` when the id does not open with
    /// this key, the session ended here, there is no shared key, or the
    /// server refuses the `initialize`.
    async fn take_over(&self, id: &str, caller: &Caller, client: IpAddr) -> Option<Arc<Session>> {
        // Without a key shared with other replicas, a sealed id this
        // process does not have is one it ended; and one ended here stays
        // ended.
        if !self.seal.shared() || self.sessions.ended_here(id) {
            return None;
        }
        let sealed = Sealed::open(&self.seal, id)?;
        let subject = caller.as_ref().map(|principal| principal.subject.as_str());
        if sealed.subject.as_deref() != subject {
            return None;
        }
        // What the session changed since that id, if another replica told.
        let (sealed, others) = self.news.newest(id, sealed);
        let cell = self
            .takeovers
            .get_or_insert(id.to_owned(), Arc::default())
            .value()
            .clone();
        let restored = cell
            .get_or_init(|| self.restore(id, (sealed, others), caller, client))
            .await
            .clone();
        // Forget the cell only if it is still this one: a request that
        // came after the first waiter left may have made another.
        if let Some(entry) = self.takeovers.get(id) {
            if Arc::ptr_eq(entry.value(), &cell) {
                entry.remove();
            }
        }
        restored.filter(|session| session.used_by(caller))
    }

    async fn restore(
        &self,
        id: &str,
        (sealed, others): (Sealed, Vec<String>),
        caller: &Caller,
        client: IpAddr,
    ) -> Option<Arc<Session>> {
        // Restored meanwhile, by a takeover that ended just before this
        // one began.
        if let Some(session) = self.sessions.get(id) {
            return Some(session);
        }
        let room = self.sessions.reserve(client).ok()?;
        let session = Arc::new(Session::new(
            client,
            caller.clone(),
            self.epoch,
            &self.options.observer,
        ));
        let context = || RequestContext::new(Arc::new(SessionPeer(session.clone())));
        let params = Raw::from_value(&serde_json::json!({
            "protocolVersion": sealed.version.as_str(),
            "capabilities": sealed.capabilities,
            "clientInfo": sealed.client_info,
        }));
        let initialize = Request {
            id: RequestId::String("mcp-manager-take-over".into()),
            method: Method::Initialize.as_str().into(),
            params: Some(params),
        };
        let answer = self.server.handle_request(initialize, context()).await;
        let version = answer.ok().and_then(|result| negotiated(&result));
        if version != Some(sealed.version) {
            tracing::debug!(
                "a session sealed elsewhere could not be taken over: its `initialize` was refused or negotiated another version"
            );
            return None;
        }
        let initialized = Notification {
            method: Method::Initialized.as_str().into(),
            params: None,
        };
        self.server
            .handle_notification(initialized, context())
            .await;
        // Then what the client changed since.
        let opened = Sealed {
            level: None,
            subscriptions: std::collections::BTreeSet::new(),
            ..sealed.clone()
        };
        let restored = self.replay_changes(&session, &opened, &sealed).await;
        if self.seal.shared() {
            session.carry(id.to_owned(), restored, others);
        }
        let session = room.fill(id.to_owned(), session);
        tracing::info!(
            version = sealed.version.as_str(),
            subscriptions = sealed.subscriptions.len(),
            changes = sealed.changes,
            "took over a session opened by another replica"
        );
        Some(session)
    }

    /// Brings `session`, open here, to what another replica told of it
    /// (`heard`, newer than what it carries): its level and subscriptions
    /// set as they are there. A client whose requests go to several
    /// replicas in turn finds the same session on each.
    pub(super) async fn catch_up(&self, session: &Arc<Session>, heard: &Sealed) {
        let Some(carried) = session.sealed() else {
            return;
        };
        if carried.route != heard.route || carried.changes >= heard.changes {
            return;
        }
        let held = self.replay_changes(session, &carried, heard).await;
        session.adopt(held);
        tracing::debug!(
            changes = heard.changes,
            "a session caught up with another replica"
        );
    }

    /// Replays on `session` what `to` carries beyond `from`: its level,
    /// the subscriptions it adds and those it drops. What the server
    /// refuses (a resource gone, a server down) is left as `from` had it
    /// in what is returned, the session's state now.
    async fn replay_changes(&self, session: &Arc<Session>, from: &Sealed, to: &Sealed) -> Sealed {
        let mut held = to.clone();
        if let Some(level) = to.level.filter(|level| from.level != Some(*level)) {
            let params = serde_json::json!({ "level": level });
            if !self.replay(session, Method::SetLogLevel, &params).await {
                held.level = from.level;
            }
        }
        for uri in to.subscriptions.difference(&from.subscriptions) {
            let params = serde_json::json!({ "uri": uri });
            if !self
                .replay(session, Method::ResourcesSubscribe, &params)
                .await
            {
                held.subscriptions.remove(uri);
            }
        }
        for uri in from.subscriptions.difference(&to.subscriptions) {
            let params = serde_json::json!({ "uri": uri });
            if !self
                .replay(session, Method::ResourcesUnsubscribe, &params)
                .await
            {
                held.subscriptions.insert(uri.clone());
            }
        }
        held
    }

    /// Sends the server a request of a session being taken over, as its
    /// client sent it before; whether it succeeded.
    async fn replay(
        &self,
        session: &Arc<Session>,
        method: Method,
        params: &serde_json::Value,
    ) -> bool {
        let request = Request {
            id: RequestId::String("mcp-manager-take-over".into()),
            method: method.as_str().into(),
            params: Some(Raw::from_value(params)),
        };
        let context = RequestContext::new(Arc::new(SessionPeer(session.clone())));
        match self.server.handle_request(request, context).await {
            Ok(_) => true,
            Err(error) => {
                tracing::debug!(
                    "taking a session over, `{}` failed: {}",
                    method.as_str(),
                    error.message
                );
                false
            }
        }
    }

    pub(super) async fn post(
        &self,
        request: hyper::Request<Incoming>,
        client: IpAddr,
        caller: Caller,
    ) -> HttpResponse {
        let (parts, body) = request.into_parts();
        let message = match self.read_message(body).await {
            Ok(message) => message,
            Err(response) => return *response,
        };
        let headers = &parts.headers;
        let id = message.id().cloned();
        let stateless = match &message {
            Message::Request(request) => match judge_request(request, headers) {
                Ok(judged) => judged,
                Err(refusal) => {
                    let code = StatusCode::from_u16(refusal.http_status())
                        .unwrap_or(StatusCode::BAD_REQUEST);
                    return rpc_error(code, id, refusal.to_error_object());
                }
            },
            _ => None,
        };
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
        match message {
            Message::Request(request) if stateless.is_some() => {
                let progress = stateless.as_ref().is_some_and(|s| s.progress);
                let params = Some(param_headers(headers));
                let context = (client, caller);
                run(self, request, (progress, params), (None, None), context).await
            }
            Message::Request(request) if request.method == Method::Initialize.as_str() => {
                self.initialize(request, client, caller).await
            }
            Message::Notification(_) | Message::Response(_) | Message::Error(_)
                if header_version.is_some_and(|v| !v.is_stateful()) =>
            {
                status(StatusCode::ACCEPTED)
            }
            message => {
                let session = match self.session(headers, &caller, client).await {
                    Ok(session) => session,
                    Err(response) => return *response,
                };
                match message {
                    Message::Request(request) => {
                        let progress = read_progress(&request);
                        let change = Change::of(&request);
                        let context = (client, caller);
                        let session = (Some(session), change);
                        run(self, request, (progress, None), session, context).await
                    }
                    other => {
                        // Requests were taken above: nothing comes back.
                        let _ = self.session_message(&session, other).await;
                        status(StatusCode::ACCEPTED)
                    }
                }
            }
        }
    }

    /// A message of a session's client (through [`route`], as every
    /// transport's); a request is handed back to be run.
    pub(super) async fn session_message(
        &self,
        session: &Arc<Session>,
        message: Message<'static>,
    ) -> Option<Request<'static>> {
        let context = || RequestContext::new(Arc::new(SessionPeer(session.clone())));
        match route(&*self.server, &session.asked, message, context).await? {
            ClientMessage::Request(request) => Some(request),
            ClientMessage::Cancel(id) => {
                self.cancellable.cancel(session.key, id);
                None
            }
        }
    }

    /// The one message of a POST body, or the response refusing it.
    pub(super) async fn read_message(
        &self,
        body: Incoming,
    ) -> Result<Message<'static>, Box<HttpResponse>> {
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
    pub(super) fn admit_request(
        &self,
        id: &RequestId<'static>,
        session: Option<&Arc<Session>>,
        client: IpAddr,
    ) -> Result<Admitted, Box<HttpResponse>> {
        let options = &self.options;
        let session = session.map(|session| (session, options.max_in_flight_per_session));
        Admitted::try_new(
            &self.in_flight,
            client,
            options.max_in_flight_per_client,
            session,
        )
        .map_err(|refused| {
            let message = match refused {
                Refused::Session(limit) => {
                    format!("too many requests in flight: this session has its limit of {limit}")
                }
                Refused::Client(limit) => {
                    format!("too many requests in flight: this client has its limit of {limit}")
                }
            };
            Box::new(too_many_requests(id.clone(), message))
        })
    }

    pub(super) async fn initialize(
        &self,
        request: Request<'static>,
        client: IpAddr,
        caller: Caller,
    ) -> HttpResponse {
        let room = match self.sessions.reserve(client) {
            Ok(room) => room,
            Err(message) => {
                return rpc_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    Some(request.id),
                    ErrorObject::new(error_code::INTERNAL_ERROR, message),
                );
            }
        };
        let session = Arc::new(Session::new(
            client,
            caller,
            self.epoch,
            &self.options.observer,
        ));
        let context = RequestContext::new(Arc::new(SessionPeer(session.clone())));
        let id = request.id.clone();
        let client_said = request
            .params
            .as_ref()
            .and_then(|params| serde_json::from_str::<serde_json::Value>(params.get()).ok());
        let subject = session.owner().map(|principal| principal.subject.clone());
        let answer = match self.server.handle_request(request, context).await {
            Ok(result) => Message::response(id, result),
            Err(error) => return json(StatusCode::OK, &Message::error(Some(id), error)),
        };
        let sealed = match (&answer, client_said) {
            (Message::Response(response), Some(said)) => {
                negotiated(&response.result).map(|version| Sealed {
                    route: Sealed::route_of(&self.ids.next()),
                    version,
                    capabilities: said.get("capabilities").cloned().unwrap_or_default(),
                    client_info: said.get("clientInfo").cloned().unwrap_or_default(),
                    subject,
                    level: None,
                    subscriptions: std::collections::BTreeSet::new(),
                    changes: 0,
                })
            }
            _ => None,
        };
        // A client that says too much to be sealed gets an id this
        // process alone knows. What a session's ids carry is kept only
        // where other replicas can open them.
        let session_id = match sealed.and_then(|sealed| Some((sealed.seal(&self.seal)?, sealed))) {
            Some((id, sealed)) => {
                if self.seal.shared() {
                    session.carry(id.clone(), sealed, Vec::new());
                }
                id
            }
            None => self.ids.next(),
        };
        let mut response = json(StatusCode::OK, &answer);
        if let Ok(value) = HeaderValue::from_str(&session_id) {
            response.headers_mut().insert(SESSION_HEADER, value);
            room.fill(session_id, session);
        }
        response
    }

    pub(super) async fn get(
        &self,
        headers: &HeaderMap,
        caller: &Caller,
        client: IpAddr,
    ) -> HttpResponse {
        let accepts = headers
            .get_all("accept")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .any(|value| value.contains(EVENT_STREAM));
        if !accepts {
            return status(StatusCode::NOT_ACCEPTABLE);
        }
        let session = match self.session(headers, caller, client).await {
            Ok(session) => session,
            Err(response) => return *response,
        };
        let last = headers
            .get("last-event-id")
            .and_then(|value| value.to_str().ok());
        if let Some((missed, receiver)) = last.and_then(|last| session.replay.resume(last)) {
            let mut body = SseBody::new(receiver, self.options.keep_alive, None);
            body.first.extend(missed);
            return sse_response(body);
        }
        // The session's stream numbers its events as a request stream
        // does, and keeps the recent ones, so that a client that lost it
        // resumes it with `Last-Event-ID` and misses nothing kept.
        let (sender, sent) = mpsc::channel(CHANNEL_CAPACITY);
        session.set_stream(sender);
        resumable(session, None, sent, self.options.keep_alive, ())
    }

    pub(super) fn delete(&self, headers: &HeaderMap, caller: &Caller) -> HttpResponse {
        let id = headers.get(SESSION_HEADER).and_then(|id| id.to_str().ok());
        let Some(id) = id else {
            return status(StatusCode::BAD_REQUEST);
        };
        let theirs = self
            .sessions
            .get(id)
            .is_some_and(|session| session.used_by(caller));
        if !theirs {
            // A session another replica opened, ended here: this replica
            // will not take it over (the others cannot know; see the
            // module's docs).
            if self.sessions.get(id).is_none()
                && self.seal.shared()
                && !self.sessions.ended_here(id)
                && Sealed::open(&self.seal, id).is_some_and(|sealed| {
                    sealed.subject.as_deref()
                        == caller.as_ref().map(|principal| principal.subject.as_str())
                })
            {
                let mut ids = vec![id.to_owned()];
                if let Some(heard) = self.news.heard(id) {
                    ids.extend(heard.ids.iter().filter(|other| *other != id).cloned());
                }
                for id in &ids {
                    self.sessions.mark_ended(id);
                }
                self.news.tell(Tidings { ids, newest: None });
                return status(StatusCode::OK);
            }
            return status(StatusCode::NOT_FOUND);
        }
        match self.sessions.remove(id) {
            Some(session) => {
                if let Some((ids, _)) = session.ids() {
                    self.news.tell(Tidings { ids, newest: None });
                }
                end_session(&session, &self.cancellable);
                status(StatusCode::OK)
            }
            None => status(StatusCode::NOT_FOUND),
        }
    }
}

/// The protocol version an `initialize` result negotiated.
fn negotiated(result: &Raw<'_>) -> Option<ProtocolVersion> {
    let result = mcp_protocol::mcp::InitializeResult::from_result(result.reborrow()).ok()?;
    ProtocolVersion::parse(&result.protocol_version)
}

/// Runs one request: answered with JSON, or with an event stream when the
/// client asked for progress. A request of a session that changes what its
/// id carries (`change`) gets, when it succeeds, the session's new id with
/// its answer (when the answer is JSON; on an event stream, the next id
/// carries it).
pub(super) async fn run(
    shared: &Shared,
    request: Request<'static>,
    (streamed, param_headers): (bool, Option<Vec<(String, String)>>),
    (session, change): (Option<Arc<Session>>, Option<Change>),
    (client, caller): (IpAddr, Caller),
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
        param_headers,
        caller,
    };
    let context = RequestContext::new(Arc::new(peer));
    let mut cancel_all = shared.cancel_all.clone();
    let mut stopping = shared.stopping.clone();
    let drain = shared.options.drain;
    let mut task = tokio::spawn(async move {
        let _admitted = admitted;
        let id = request.id.clone();
        let endless = request.method == Method::SubscriptionsListen.as_str();
        tokio::select! {
            message = answer(&*server, request, context) => message,
            // A listen stream has nothing to finish: it ends at once.
            _ = stopping.wait_for(|stop| *stop), if endless => Message::error(
                Some(id),
                ErrorObject::new(REQUEST_CANCELLED, "the server is shutting down"),
            ),
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
    let guard = RequestGuard::new(
        task.abort_handle(),
        session,
        id.clone(),
        &shared.cancellable,
    );
    // Answer with JSON unless something must go out before the answer (the
    // progress the client asked for, or a request to the client): then
    // with an event stream that ends with the answer.
    let first = if streamed {
        None
    } else {
        tokio::select! {
            answered = &mut task => {
                let message = answered.unwrap_or_else(|_| {
                    Message::error(
                        Some(id),
                        ErrorObject::new(REQUEST_CANCELLED, "request cancelled"),
                    )
                });
                // A stateless request's errors of the transport's kind
                // (an unknown method, a missing capability) carry their
                // HTTP status too.
                let code = match (&message, guard.session()) {
                    (Message::Error(error), None) => {
                        StatusCode::from_u16(stateless::http_status(error.error.code))
                            .unwrap_or(StatusCode::OK)
                    }
                    _ => StatusCode::OK,
                };
                let new_id = changed(shared, &message, guard.session(), change.as_ref());
                drop(guard);
                let mut response = json(code, &message);
                if let Some(value) = new_id.and_then(|id| HeaderValue::from_str(&id).ok()) {
                    response.headers_mut().insert(SESSION_HEADER, value);
                }
                return response;
            }
            first = receiver.recv() => first,
        }
    };
    let carry = change.and_then(|change| {
        let session = guard.session()?;
        Some((shared.changes(), session, change))
    });
    tokio::spawn(async move {
        if let Ok(answer) = task.await {
            if let (Some((changes, session, change)), Message::Response(_)) = (carry, &answer) {
                changes.make(&session, &change);
            }
            let _ = sender.send(encode_event(&answer)).await;
        }
    });
    let Some(session) = guard.session() else {
        // A stateless request cannot be resumed: its stream is its life.
        let mut body = SseBody::new(receiver, shared.options.keep_alive, Some(Box::new(guard)));
        body.first.extend(first);
        return sse_response(body);
    };
    // A session's request outlives its connection: a client that loses
    // the stream resumes it with `Last-Event-ID`; only
    // `notifications/cancelled` (or the end of the session) cancels it.
    resumable(session, first, receiver, shared.options.keep_alive, guard)
}

/// The new id of `session` once `answer` made its `change`: `None` when
/// there is none, or the request failed.
fn changed(
    shared: &Shared,
    answer: &Message<'_>,
    session: Option<Arc<Session>>,
    change: Option<&Change>,
) -> Option<String> {
    match (answer, session, change) {
        (Message::Response(_), Some(session), Some(change)) => {
            shared.changes().make(&session, change)
        }
        _ => None,
    }
}

/// What a [`Change`] to a session touches: the sessions (which file its
/// new id), the seal (which seals it), and the news (which tells the
/// other replicas).
struct Changes {
    sessions: Arc<super::session::Sessions>,
    seal: Arc<mcp_runtime::seal::Seal>,
    news: Arc<News>,
}

impl Changes {
    /// Makes `change` to what `session`'s ids carry and tells the other
    /// replicas; the session's new id, if it got one (see
    /// [`Sessions::change`](super::session::Sessions::change)).
    fn make(&self, session: &Arc<Session>, change: &Change) -> Option<String> {
        let id = self.sessions.change(session, &self.seal, change)?;
        if let Some((ids, newest)) = session.ids() {
            self.news.tell(Tidings {
                ids,
                newest: Some(newest),
            });
        }
        Some(id)
    }
}

impl Shared {
    fn changes(&self) -> Changes {
        Changes {
            sessions: self.sessions.clone(),
            seal: self.seal.clone(),
            news: self.news.clone(),
        }
    }
}

/// A stream of `session` that a client can resume: `first`, then every
/// event that comes on `events`, numbered, kept in the session's replay log
/// and sent to the response returned (or to whoever resumes it), until
/// `events` ends; `hold` is kept as long.
fn resumable(
    session: Arc<Session>,
    first: Option<Bytes>,
    mut events: mpsc::Receiver<Bytes>,
    keep_alive: std::time::Duration,
    hold: impl Send + 'static,
) -> HttpResponse {
    let (live, reader) = mpsc::channel(CHANNEL_CAPACITY);
    let stream = session.replay.open(live);
    tokio::spawn(async move {
        let _hold = hold;
        if let Some(event) = first {
            session.replay.relay(stream, event).await;
        }
        while let Some(event) = events.recv().await {
            session.replay.relay(stream, event).await;
        }
        session.replay.finish(stream);
    });
    sse_response(SseBody::new(reader, keep_alive, None))
}

/// What serving a stateless request needs to know of it.
#[derive(Clone, Copy)]
pub(super) struct Stateless {
    /// It carries a progress token.
    progress: bool,
}

/// Judges a request by the 2026-07-28 rules ([`stateless::judge`]) with
/// the headers that mirror its body: `None` for a request of a session,
/// what serving a stateless one needs, or the refusal.
pub(super) fn judge_request(
    request: &Request<'_>,
    headers: &HeaderMap,
) -> Result<Option<Stateless>, stateless::Refusal> {
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    let mirrored = stateless::Headers {
        protocol_version: header(VERSION_HEADER),
        method: header(METHOD_HEADER),
        name: header(NAME_HEADER),
    };
    // A session's request is told apart without parsing its params.
    let text = request.params.as_ref().map(Raw::get);
    if !stateless::may_be_stateless(&request.method, text, mirrored.protocol_version) {
        return Ok(None);
    }
    let object = request
        .params
        .as_ref()
        .and_then(|params| RawObject::from_cow(params.reborrow()).ok());
    match stateless::judge(
        &request.method,
        object.as_ref(),
        Some(&mirrored),
        &VersionSet::default(),
    )? {
        Generation::Stateful => Ok(None),
        Generation::Stateless { meta, .. } => Ok(Some(Stateless {
            progress: meta.progress_token.is_some(),
        })),
    }
}

/// The `Mcp-Param-*` headers of a request, names in lower case.
fn param_headers(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .filter(|(name, _)| {
            let prefix = mcp_protocol::mcp::param_headers::PREFIX;
            name.as_str()
                .get(..prefix.len())
                .is_some_and(|start| start.eq_ignore_ascii_case(prefix))
        })
        .filter_map(|(name, value)| {
            Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
        })
        .collect()
}

/// Whether a session's request carries a progress token.
pub(super) fn read_progress(request: &Request<'_>) -> bool {
    let Some(params) = &request.params else {
        return false;
    };
    if !params.get().contains(meta_keys::PROGRESS_TOKEN) {
        return false;
    }
    RequestParams::from_params(Some(params.reborrow()))
        .ok()
        .and_then(|params| params.meta)
        .is_some_and(|meta| meta.progress_token.is_some())
}

/// The way back to the client for one request: requests to the client
/// always go on the request's own event stream (a stateless request takes
/// none), notifications there too when the client asked for progress or
/// the request is stateless, else on the session's stream.
pub(super) struct RequestPeer {
    pub(super) stream: mpsc::Sender<Bytes>,
    pub(super) session: Option<Arc<Session>>,
    pub(super) notify_on_stream: bool,
    /// The `Mcp-Param-*` headers of a stateless request.
    pub(super) param_headers: Option<Vec<(String, String)>>,
    /// Who is calling, when access tokens are checked.
    pub(super) caller: Caller,
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
        self.stream.is_closed() || self.session.as_ref().is_some_and(|s| s.is_closed())
    }

    fn session_peer(&self) -> Option<Arc<dyn Peer>> {
        let session = self.session.clone()?;
        Some(Arc::new(SessionPeer(session)))
    }

    fn session(&self) -> Option<u64> {
        self.session.as_ref().map(|s| s.key)
    }

    fn param_headers(&self) -> Option<&[(String, String)]> {
        self.param_headers.as_deref()
    }
    fn principal(&self) -> Option<&Principal> {
        self.caller.as_deref()
    }
}

/// A request task, aborted when its HTTP exchange is dropped (a client
/// that hangs up cancels its request) and cancellable by its session's
/// `notifications/cancelled` meanwhile.
pub(super) struct RequestGuard {
    task: AbortHandle,
    session: Option<(Arc<Session>, RequestId<'static>, Arc<Cancellable>)>,
}

impl RequestGuard {
    pub(super) fn session(&self) -> Option<Arc<Session>> {
        self.session.as_ref().map(|(session, _, _)| session.clone())
    }

    pub(super) fn new(
        task: AbortHandle,
        session: Option<Arc<Session>>,
        id: RequestId<'static>,
        cancellable: &Arc<Cancellable>,
    ) -> Self {
        if let Some(session) = &session {
            cancellable.insert(session.key, id.clone(), task.clone());
        }
        Self {
            task,
            session: session.map(|session| (session, id, cancellable.clone())),
        }
    }
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.task.abort();
        if let Some((session, id, cancellable)) = self.session.take() {
            cancellable.remove(session.key, id);
            session.touch();
        }
    }
}
