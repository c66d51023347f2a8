//! The connection actor: one per running instance of a server. It owns the
//! transport link, the table of requests in flight, their deadlines and the
//! progress routes, and nothing else touches them.
//!
//! Request ids are the runtime's own (many callers share one connection, so
//! theirs could clash): the caller's handle allocates a fresh integer for
//! each request. A caller's progress token is swapped for that integer on
//! the way up and swapped back on each progress notification on the way
//! down. Progress resets the request's timeout. A request that times out or
//! whose caller goes away is cancelled upstream with
//! `notifications/cancelled`.
//!
//! A request the server sends while serving a caller's (sampling,
//! elicitation, roots) goes to that caller's requester (see
//! [`crate::CallOptions::requester`]): the one of the most recent request in
//! flight that has one, which is exact whenever one caller at a time asks
//! for such work. Its answer goes back under the server's own id, and
//! resets the caller's request timeout as progress does. `ping` is answered
//! here; a request with nobody to ask gets `-32601`.
//!
//! The actor never waits on I/O: outgoing messages queue in a small outbox
//! that drains as the transport accepts them, and while the outbox is full it
//! stops taking commands (backpressure onto callers) but keeps reading what
//! the server sends, so neither side can deadlock the other.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use mcp_core::{RequestContext, ServerId};
use mcp_protocol::mcp::{
    CancelledParams, DiscoverResult, Implementation, InitializeResult, Method, RequestMeta, View,
    meta_keys,
};
use mcp_protocol::raw::{Raw, RawObject};
use mcp_protocol::{
    ErrorObject, Message, Notification, ProtocolVersion, Request, RequestId, Response, VersionSet,
};
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::time::Instant;

use crate::error::{Error, ErrorKind, Result};
use crate::server::{ServerEvent, SessionInfo, Shared, UpstreamProtocol};
use crate::transport::{Inbound, TransportLink};

/// Messages queued for the transport before the actor stops taking commands.
const OUTBOX_HIGH_WATER: usize = 64;

/// Where a request's progress notifications go.
pub(crate) type ProgressSink = mpsc::Sender<Notification<'static>>;

/// A progress sink and the caller's own token.
type ProgressRoute = (ProgressSink, RequestId<'static>);

/// What a caller asks of a connection.
pub(crate) enum ConnCommand {
    Request {
        id: i64,
        method: Cow<'static, str>,
        params: Option<Raw<'static>>,
        timeout: Duration,
        /// When the caller sent it: time spent queued counts.
        enqueued: Instant,
        progress: Option<ProgressSink>,
        /// Who answers the server's requests to the client meanwhile.
        requester: Option<RequestContext>,
        reply: oneshot::Sender<Result<Raw<'static>>>,
    },
    Notify(Notification<'static>),
    Cancel {
        id: i64,
        reason: &'static str,
    },
    /// A request already answered while it was held; a placeholder.
    Expired,
}

impl ConnCommand {
    /// When a request's time runs out.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        match self {
            Self::Request {
                enqueued, timeout, ..
            } => Some(*enqueued + *timeout),
            _ => None,
        }
    }
}

/// Why a connection ended.
#[derive(Debug)]
pub(crate) enum Exit {
    /// Every handle is gone or a stop was asked for; the transport is closed.
    Stopped,
    /// The handshake failed; nothing was served.
    StartFailed(Error),
    /// The transport ended or the server stopped answering health checks.
    Lost(String),
}

/// Who waits for an answer.
enum Waiter {
    /// A caller.
    Caller(oneshot::Sender<Result<Raw<'static>>>),
    /// The actor itself, for the `initialize` handshake.
    Handshake,
    /// The actor itself, for a health check.
    HealthCheck,
}

struct Pending {
    waiter: Waiter,
    deadline: Instant,
    timeout: Duration,
    progress: Option<ProgressRoute>,
    requester: Option<RequestContext>,
}

/// The answer to a server's request to the client, from the task that
/// asked the client, for the request of ours it was made for.
type ClientAnswer = (i64, Message<'static>);

/// The settings a connection runs with.
pub(crate) struct ConnectionSettings {
    pub(crate) server: ServerId,
    pub(crate) startup_timeout: Duration,
    pub(crate) health_interval: Option<Duration>,
    pub(crate) health_timeout: Duration,
    pub(crate) grace: Duration,
    pub(crate) protocol: UpstreamProtocol,
}

/// Which handshake is running.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Handshake {
    Initialize(i64),
    /// `server/discover`; `fallback` means: on an error, try `initialize`;
    /// `retried`: this is the second try after an unsupported version.
    Discover {
        id: i64,
        fallback: bool,
        retried: bool,
    },
}

/// Whether `error` is an unsupported-version error whose list of supported
/// versions names the one the manager speaks statelessly.
fn supports_ours(error: &Error) -> bool {
    let Some(rpc) = error.rpc_error() else {
        return false;
    };
    if rpc.code != mcp_protocol::jsonrpc::error_code::UNSUPPORTED_PROTOCOL_VERSION {
        return false;
    }
    let supported = rpc
        .data
        .as_ref()
        .and_then(|data| serde_json::from_str::<Value>(data.get()).ok())
        .and_then(|data| data.get("supported").cloned());
    supported
        .and_then(|s| s.as_array().cloned())
        .is_some_and(|versions| {
            versions
                .iter()
                .any(|v| v.as_str() == Some(ProtocolVersion::V2026_07_28.as_str()))
        })
}

/// The client's name and version, as sent to servers.
fn client_info() -> Value {
    json!({"name": "mcp-manager", "version": env!("CARGO_PKG_VERSION")})
}

/// What the manager, as a client, tells servers it can do: ask
/// its own clients for sampling and elicitation on the server's behalf
/// (see [`crate::CallOptions::requester`]), in `initialize` and in every
/// stateless request. Roots are not declared, since a
/// server may ask for them at any time, with no caller to put them to.
fn client_capabilities() -> Value {
    json!({"sampling": {}, "elicitation": {"form": {}, "url": {}}})
}

/// The `_meta` members every stateless (2026-07-28) request carries.
fn stateless_meta() -> Vec<(&'static str, Raw<'static>)> {
    vec![
        (
            meta_keys::PROTOCOL_VERSION,
            Raw::from_value(ProtocolVersion::V2026_07_28.as_str()),
        ),
        (
            meta_keys::CLIENT_CAPABILITIES,
            Raw::from_value(&client_capabilities()),
        ),
        (meta_keys::CLIENT_INFO, Raw::from_value(&client_info())),
    ]
}

pub(crate) struct Connection<'a> {
    settings: &'a ConnectionSettings,
    link: Option<TransportLink>,
    shared: &'a Arc<Shared>,
    events: &'a broadcast::Sender<ServerEvent>,
    pending: HashMap<i64, Pending>,
    deadlines: BTreeSet<(Instant, i64)>,
    outbox: VecDeque<Message<'static>>,
    /// The handshake request while it runs.
    handshake: Option<Handshake>,
    ready: bool,
    /// Set once a stateless (2026-07-28) session is up: the `_meta` members
    /// each request gets.
    stateless: Option<Vec<(&'static str, Raw<'static>)>>,
    /// Answers of clients to the server's requests, as they come.
    answers: (mpsc::Sender<ClientAnswer>, mpsc::Receiver<ClientAnswer>),
    /// The server's requests being put to a client, by the server's id.
    asking: HashMap<RequestId<'static>, tokio::task::AbortHandle>,
}

impl<'a> Connection<'a> {
    pub(crate) fn new(
        settings: &'a ConnectionSettings,
        link: TransportLink,
        shared: &'a Arc<Shared>,
        events: &'a broadcast::Sender<ServerEvent>,
    ) -> Self {
        Self {
            settings,
            link: Some(link),
            shared,
            events,
            pending: HashMap::new(),
            deadlines: BTreeSet::new(),
            outbox: VecDeque::new(),
            handshake: None,
            ready: false,
            stateless: None,
            answers: mpsc::channel(16),
            asking: HashMap::new(),
        }
    }

    /// Runs the connection: the handshake, then requests until the transport
    /// ends or the commands stop. `on_ready` is called once the server has
    /// answered `initialize`.
    pub(crate) async fn run(
        mut self,
        commands: &mut mpsc::Receiver<ConnCommand>,
        held: &mut VecDeque<ConnCommand>,
        stop: &mut watch::Receiver<bool>,
        on_ready: impl FnOnce(SessionInfo),
    ) -> Exit {
        let mut on_ready = Some(on_ready);
        let Some(TransportLink {
            outbound,
            mut inbound,
            closer,
        }) = self.link.take()
        else {
            return Exit::Lost("the connection ran twice".to_owned());
        };
        self.start_handshake();
        let sleep = tokio::time::sleep(self.settings.startup_timeout);
        tokio::pin!(sleep);
        let mut armed: Option<Instant> = None;
        let mut health = self.settings.health_interval.map(|every| {
            let mut interval = tokio::time::interval_at(Instant::now() + every, every);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            interval
        });
        let exit = loop {
            if self.ready {
                while let Some(command) = held.pop_front() {
                    self.on_command(command);
                }
            }
            let next = self.deadlines.first().map(|(at, _)| *at);
            if next != armed {
                if let Some(at) = next {
                    sleep.as_mut().reset(at);
                }
                armed = next;
            }
            tokio::select! {
                biased;
                inbound = inbound.recv() => match inbound {
                    Some(Inbound::Message(message)) => {
                        if let Some(exit) = self.on_message(message, &mut on_ready) {
                            break exit;
                        }
                    }
                    Some(Inbound::Closed(reason)) => break self.lost(reason),
                    None => break self.lost("the transport stopped".to_owned()),
                },
                permit = outbound.reserve(), if !self.outbox.is_empty() => match permit {
                    Ok(permit) => {
                        if let Some(message) = self.outbox.pop_front() {
                            permit.send(message);
                        }
                    }
                    Err(_) => break self.lost("the transport stopped taking messages".to_owned()),
                },
                () = &mut sleep, if armed.is_some() => {
                    if let Some(exit) = self.on_deadlines() {
                        break exit;
                    }
                    armed = None;
                }
                command = commands.recv(), if self.ready && self.outbox.len() < OUTBOX_HIGH_WATER => match command {
                    Some(command) => self.on_command(command),
                    None => break Exit::Stopped,
                },
                Some((id, answer)) = self.answers.1.recv() => self.on_client_answer(id, answer),
                _ = tick(&mut health), if self.ready => self.send_ping(),
                _ = stop.wait_for(|stop| *stop) => break Exit::Stopped,
            }
        };
        self.finish(exit, outbound, closer).await
    }

    fn start_handshake(&mut self) {
        match self.settings.protocol {
            UpstreamProtocol::Stateful => self.send_initialize(),
            UpstreamProtocol::Stateless => self.send_discover(false, false),
            UpstreamProtocol::Auto => self.send_discover(true, false),
        }
    }

    fn send_initialize(&mut self) {
        let id = self.shared.next_id();
        let params = json!({
            "protocolVersion": ProtocolVersion::LATEST_STATEFUL.as_str(),
            "capabilities": client_capabilities(),
            "clientInfo": client_info(),
        });
        self.track(id, Waiter::Handshake, self.settings.startup_timeout);
        self.handshake = Some(Handshake::Initialize(id));
        self.outbox.push_back(Message::request(
            id,
            Method::Initialize.as_str(),
            Some(Raw::from_value(&params)),
        ));
    }

    fn send_discover(&mut self, fallback: bool, retried: bool) {
        let id = self.shared.next_id();
        self.track(id, Waiter::Handshake, self.settings.startup_timeout);
        self.handshake = Some(Handshake::Discover {
            id,
            fallback,
            retried,
        });
        self.outbox.push_back(discover_request(id));
    }

    /// Handles the answer to the handshake; `Ok(None)` means another
    /// handshake was started (the fallback from discover to initialize).
    fn finish_handshake(
        &mut self,
        handshake: Handshake,
        result: Result<Raw<'static>>,
    ) -> Result<Option<SessionInfo>> {
        match handshake {
            Handshake::Initialize(_) => self.finish_initialize(result).map(Some),
            Handshake::Discover {
                fallback, retried, ..
            } => match result {
                Ok(result) => self.finish_discover(result).map(Some),
                // The server refused the version but names ours among those
                // it supports (a server may reject a first choice): once more.
                Err(error) if !retried && supports_ours(&error) => {
                    tracing::debug!(server = %self.settings.server, "`server/discover` refused the version ({error}); trying again");
                    self.send_discover(fallback, true);
                    Ok(None)
                }
                Err(error) if fallback && *error.kind() == ErrorKind::Rpc => {
                    tracing::debug!(server = %self.settings.server, "no `server/discover` ({error}); using `initialize`");
                    self.send_initialize();
                    Ok(None)
                }
                Err(error) => Err(error),
            },
        }
    }

    fn finish_initialize(&mut self, result: Result<Raw<'static>>) -> Result<SessionInfo> {
        let init = InitializeResult::from_result(result?).map_err(|e| {
            Error::new(
                ErrorKind::Protocol,
                format!("bad answer to `initialize`: {e}"),
            )
        })?;
        let version = ProtocolVersion::parse(&init.protocol_version).ok_or_else(|| {
            Error::new(
                ErrorKind::Protocol,
                format!(
                    "the server answered `initialize` with protocol version {:?}, which mcp-manager does not speak",
                    init.protocol_version
                ),
            )
        })?;
        self.outbox
            .push_back(Message::notification(Method::Initialized.as_str(), None));
        self.ready = true;
        Ok(SessionInfo {
            protocol_version: version,
            capabilities: init.capabilities,
            server_info: init.server_info,
            instructions: init.instructions.map(Cow::into_owned),
        })
    }

    fn finish_discover(&mut self, result: Raw<'static>) -> Result<SessionInfo> {
        let discover = DiscoverResult::from_result(result).map_err(|e| {
            Error::new(
                ErrorKind::Protocol,
                format!("bad answer to `server/discover`: {e}"),
            )
        })?;
        let ours = VersionSet::new([ProtocolVersion::V2026_07_28]);
        let version = ours.select(discover.supported_versions.iter().map(|v| &**v)).ok_or_else(|| {
            Error::new(
                ErrorKind::Protocol,
                format!(
                    "the server supports protocol versions {:?}, none of which mcp-manager speaks statelessly",
                    discover.supported_versions
                ),
            )
        })?;
        self.stateless = Some(stateless_meta());
        self.ready = true;
        let server_info = discover
            .meta
            .and_then(|meta| meta.server_info)
            .unwrap_or_else(|| Implementation::new(self.settings.server.as_str(), "unknown"));
        Ok(SessionInfo {
            protocol_version: version,
            capabilities: discover.capabilities,
            server_info,
            instructions: discover.instructions.map(Cow::into_owned),
        })
    }

    fn track(&mut self, id: i64, waiter: Waiter, timeout: Duration) {
        self.track_until(id, waiter, Instant::now() + timeout, timeout, None, None);
    }

    fn track_until(
        &mut self,
        id: i64,
        waiter: Waiter,
        deadline: Instant,
        timeout: Duration,
        progress: Option<ProgressRoute>,
        requester: Option<RequestContext>,
    ) {
        self.deadlines.insert((deadline, id));
        self.pending.insert(
            id,
            Pending {
                waiter,
                deadline,
                timeout,
                progress,
                requester,
            },
        );
    }

    /// Starts the timeout of request `id` over: it is alive.
    fn refresh(&mut self, id: i64) {
        let Some(pending) = self.pending.get_mut(&id) else {
            return;
        };
        let deadline = Instant::now() + pending.timeout;
        self.deadlines.remove(&(pending.deadline, id));
        self.deadlines.insert((deadline, id));
        pending.deadline = deadline;
    }

    fn untrack(&mut self, id: i64) -> Option<Pending> {
        let pending = self.pending.remove(&id)?;
        self.deadlines.remove(&(pending.deadline, id));
        Some(pending)
    }

    fn on_command(&mut self, command: ConnCommand) {
        match command {
            ConnCommand::Request {
                id,
                method,
                params,
                timeout,
                enqueued,
                progress,
                requester,
                reply,
            } => {
                if reply.is_closed() {
                    return;
                }
                let deadline = enqueued + timeout;
                if deadline <= Instant::now() {
                    let _ = reply.send(Err(Error::timeout(timeout)));
                    return;
                }
                let (params, route) =
                    match prepare_params(params, id, progress, self.stateless.as_deref()) {
                        Ok(routed) => routed,
                        Err(error) => {
                            let _ = reply.send(Err(error));
                            return;
                        }
                    };
                self.track_until(
                    id,
                    Waiter::Caller(reply),
                    deadline,
                    timeout,
                    route,
                    requester,
                );
                self.outbox.push_back(Message::Request(Request {
                    id: RequestId::Number(id),
                    method,
                    params,
                }));
            }
            ConnCommand::Notify(notification) => {
                self.outbox.push_back(Message::Notification(notification))
            }
            ConnCommand::Cancel { id, reason } => {
                if self.untrack(id).is_some() {
                    self.send_cancelled(id, reason);
                }
            }
            ConnCommand::Expired => {}
        }
    }

    fn send_cancelled(&mut self, id: i64, reason: &str) {
        let params = json!({"requestId": id, "reason": reason});
        self.outbox.push_back(Message::notification(
            Method::Cancelled.as_str(),
            Some(Raw::from_value(&params)),
        ));
    }

    fn send_ping(&mut self) {
        let id = self.shared.next_id();
        self.track(id, Waiter::HealthCheck, self.settings.health_timeout);
        self.outbox
            .push_back(Message::request(id, Method::Ping.as_str(), None));
    }

    fn on_message(
        &mut self,
        message: Message<'static>,
        on_ready: &mut Option<impl FnOnce(SessionInfo)>,
    ) -> Option<Exit> {
        match message {
            Message::Response(Response { id, result }) => self.on_answer(&id, Ok(result), on_ready),
            Message::Error(error) => match &error.id {
                Some(id) => self.on_answer(&id.clone(), Err(Error::rpc(error.error)), on_ready),
                None => {
                    tracing::warn!(server = %self.settings.server, "error without a request id: {}", error.error.message);
                    None
                }
            },
            Message::Notification(notification) => {
                self.on_notification(notification);
                None
            }
            Message::Request(request) => {
                self.on_server_request(request);
                None
            }
        }
    }

    fn on_answer(
        &mut self,
        id: &RequestId<'_>,
        result: Result<Raw<'static>>,
        on_ready: &mut Option<impl FnOnce(SessionInfo)>,
    ) -> Option<Exit> {
        let RequestId::Number(id) = *id else {
            tracing::debug!(server = %self.settings.server, "answer to an id the manager never sent: {id}");
            return None;
        };
        match self.untrack(id)?.waiter {
            Waiter::Caller(reply) => {
                let _ = reply.send(result);
                None
            }
            Waiter::Handshake => {
                let handshake = self.handshake.take()?;
                match self.finish_handshake(handshake, result) {
                    Ok(Some(info)) => {
                        if let Some(on_ready) = on_ready.take() {
                            on_ready(info);
                        }
                        None
                    }
                    Ok(None) => None,
                    Err(error) => Some(Exit::StartFailed(error)),
                }
            }
            Waiter::HealthCheck => {
                if let Err(error) = result {
                    tracing::debug!(server = %self.settings.server, "health check answered with an error: {error}");
                }
                None
            }
        }
    }

    fn on_notification(&mut self, notification: Notification<'static>) {
        match Method::from_name(&notification.method) {
            Some(Method::Progress) => self.on_progress(notification),
            Some(
                Method::ToolListChanged | Method::ResourceListChanged | Method::PromptListChanged,
            ) => {
                self.shared.invalidate_lists();
                self.publish(notification);
            }
            // The server gave up on one of its requests to the client.
            Some(Method::Cancelled) => {
                let cancelled = CancelledParams::from_params(notification.params);
                if let Some(id) = cancelled.ok().and_then(|c| c.request_id) {
                    if let Some(task) = self.asking.remove(&id.into_owned()) {
                        task.abort();
                    }
                }
            }
            _ => self.publish(notification),
        }
    }

    fn publish(&self, notification: Notification<'static>) {
        // No subscriber is fine: nobody is listening yet.
        let _ = self.events.send(ServerEvent {
            server: self.settings.server.clone(),
            notification,
        });
    }

    fn on_progress(&mut self, notification: Notification<'static>) {
        // Only the token is rewritten; every other member stays as it came.
        let Some(mut params) = notification
            .params
            .and_then(|p| RawObject::from_cow(p).ok())
        else {
            tracing::debug!(server = %self.settings.server, "ignoring a progress notification without params");
            return;
        };
        let token = params
            .get(meta_keys::PROGRESS_TOKEN)
            .map(|raw| raw.get().parse::<i64>());
        let Some(Ok(id)) = token else {
            return;
        };
        // Progress shows the request is alive: start its timeout over.
        self.refresh(id);
        let Some(pending) = self.pending.get(&id) else {
            return;
        };
        if let Some((sink, token)) = &pending.progress {
            params.insert(meta_keys::PROGRESS_TOKEN, Raw::from_value(token));
            // Progress is advisory: a caller too slow to take it loses some.
            let _ = sink.try_send(Notification {
                method: Cow::Borrowed(Method::Progress.as_str()),
                params: Some(Raw::owned(params.to_raw())),
            });
        }
    }

    fn on_server_request(&mut self, request: Request<'static>) {
        if request.method == Method::Ping.as_str() {
            self.outbox
                .push_back(Message::response(request.id, Raw::from_value(&json!({}))));
            return;
        }
        // The most recent request in flight whose caller can be asked.
        let asker = self
            .pending
            .iter()
            .filter_map(|(id, pending)| Some((*id, pending.requester.clone()?)))
            .max_by_key(|(id, _)| *id);
        let Some((for_id, requester)) = asker else {
            self.outbox.push_back(Message::error(
                Some(request.id),
                ErrorObject::new(
                    mcp_protocol::jsonrpc::error_code::METHOD_NOT_FOUND,
                    format!(
                        "`{}` has no client to go to: no request in flight here came from a client that can be asked",
                        request.method
                    ),
                ),
            ));
            return;
        };
        self.refresh(for_id);
        let answers = self.answers.0.clone();
        let server_id = request.id.clone();
        let task = tokio::spawn(async move {
            let Request { id, method, params } = request;
            let answer = match requester.request(&method, params).await {
                Ok(result) => Message::response(id, result),
                Err(error) => Message::error(Some(id), error),
            };
            let _ = answers.send((for_id, answer)).await;
        });
        self.asking.insert(server_id, task.abort_handle());
    }

    fn on_client_answer(&mut self, for_id: i64, answer: Message<'static>) {
        if let Some(id) = answer.id() {
            self.asking.remove(&id.clone().into_owned());
        }
        // The client answered: the request it answered for is alive.
        self.refresh(for_id);
        self.outbox.push_back(answer);
    }

    fn on_deadlines(&mut self) -> Option<Exit> {
        let now = Instant::now();
        while let Some(&(at, id)) = self.deadlines.first() {
            if at > now {
                break;
            }
            let Some(pending) = self.untrack(id) else {
                self.deadlines.pop_first();
                continue;
            };
            match pending.waiter {
                Waiter::Caller(reply) => {
                    let _ = reply.send(Err(Error::timeout(pending.timeout)));
                    self.send_cancelled(id, "timed out");
                }
                Waiter::Handshake => {
                    let method = match self.handshake {
                        Some(Handshake::Discover { .. }) => Method::Discover,
                        _ => Method::Initialize,
                    };
                    return Some(Exit::StartFailed(Error::new(
                        ErrorKind::Start,
                        format!(
                            "the server did not answer `{method}` within {} ms",
                            self.settings.startup_timeout.as_millis()
                        ),
                    )));
                }
                Waiter::HealthCheck => {
                    return Some(Exit::Lost(format!(
                        "the server did not answer a health check within {} ms",
                        self.settings.health_timeout.as_millis()
                    )));
                }
            }
        }
        None
    }

    fn lost(&mut self, reason: String) -> Exit {
        if self.handshake.is_some() {
            return Exit::StartFailed(Error::new(ErrorKind::Start, reason));
        }
        Exit::Lost(reason)
    }

    /// Answers every request still in flight and closes the transport.
    async fn finish(
        mut self,
        exit: Exit,
        outbound: mpsc::Sender<Message<'static>>,
        closer: Box<dyn crate::transport::Closer>,
    ) -> Exit {
        let reason = match &exit {
            Exit::Stopped => "the server was stopped".to_owned(),
            Exit::StartFailed(error) => error.message().to_owned(),
            Exit::Lost(reason) => format!("the connection to the server was lost: {reason}"),
        };
        for (_, task) in self.asking.drain() {
            task.abort();
        }
        for (_, pending) in self.pending.drain() {
            if let Waiter::Caller(reply) = pending.waiter {
                let _ = reply.send(Err(Error::new(ErrorKind::Disconnected, reason.clone())));
            }
        }
        if matches!(exit, Exit::Stopped) {
            // Flush what is queued (cancellations, say) before closing.
            while let Some(message) = self.outbox.pop_front() {
                if outbound.send(message).await.is_err() {
                    break;
                }
            }
        }
        drop(outbound);
        closer.close(self.settings.grace).await;
        exit
    }
}

async fn tick(interval: &mut Option<tokio::time::Interval>) {
    match interval {
        Some(interval) => {
            interval.tick().await;
        }
        None => std::future::pending().await,
    }
}

fn discover_request(id: i64) -> Message<'static> {
    let meta: serde_json::Map<String, Value> = stateless_meta()
        .into_iter()
        .map(|(key, raw)| (key.to_owned(), raw.parse().unwrap_or(Value::Null)))
        .collect();
    Message::request(
        id,
        Method::Discover.as_str(),
        Some(Raw::from_value(&json!({ "_meta": meta }))),
    )
}

/// Prepares a request's params for the wire: swaps the caller's progress
/// token for the request's own id (so the server's progress notifications
/// can be routed back; a token the caller cannot receive progress for is
/// removed), and for a stateless session adds the `_meta` members every
/// request must carry. Params that need neither pass through untouched.
fn prepare_params(
    params: Option<Raw<'static>>,
    id: i64,
    sink: Option<ProgressSink>,
    stateless: Option<&[(&'static str, Raw<'static>)]>,
) -> Result<(Option<Raw<'static>>, Option<ProgressRoute>)> {
    let has_token = params
        .as_ref()
        .is_some_and(|raw| raw.get().contains(meta_keys::PROGRESS_TOKEN));
    if !has_token && stateless.is_none() {
        return Ok((params, None));
    }
    let invalid = |what: &str| Error::new(ErrorKind::Protocol, format!("invalid params: {what}"));
    let mut object = match params {
        Some(raw) => RawObject::from_cow(raw).map_err(|_| invalid("`params` must be an object"))?,
        None => RawObject::new(),
    };
    let mut meta = match object.remove("_meta") {
        Some(meta) => RequestMeta::from_params(Some(meta)).map_err(|e| invalid(e.message()))?,
        None => RequestMeta::from_params(None).map_err(|e| invalid(e.message()))?,
    };
    let route = match (meta.progress_token.take(), sink) {
        (Some(token), Some(sink)) => {
            meta.progress_token = Some(RequestId::Number(id));
            Some((sink, token.into_owned()))
        }
        _ => None,
    };
    let mut meta =
        RawObject::from_cow(meta.to_raw()).map_err(|_| invalid("`_meta` must be an object"))?;
    for (key, value) in stateless.unwrap_or_default() {
        if !meta.contains_key(key) {
            meta.insert(*key, value.clone());
        }
    }
    if !meta.is_empty() {
        object.insert("_meta", Raw::owned(meta.to_raw()));
    }
    Ok((Some(Raw::owned(object.to_raw())), route))
}
