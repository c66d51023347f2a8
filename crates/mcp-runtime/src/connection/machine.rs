//! The connection's state machine, sans I/O: the handshake, the requests in
//! flight with their deadlines, progress routing, health checks and the
//! server's requests to the client. It is driven by `handle_*` calls and
//! drained by `poll_*` calls; it never awaits and never reads a clock, so
//! the same inputs at the same (given) times always give the same outputs.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use mcp_core::RequestContext;
use mcp_protocol::mcp::{CancelledParams, Method, View, meta_keys};
use mcp_protocol::raw::{Raw, RawObject};
use mcp_protocol::{ErrorObject, Message, Notification, Request, RequestId, Response};
use serde_json::json;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::wire::{self, StatelessMeta};
use super::{ConnCommand, ConnectionSettings, Exit, ProgressRoute};
use crate::error::{Error, ErrorKind, Result};
use crate::server::{SessionInfo, Shared, UpstreamProtocol};

/// Messages queued for the transport before the machine stops taking
/// commands.
pub(super) const OUTBOX_HIGH_WATER: usize = 64;

/// What the machine asks of the world, besides sending messages.
pub(super) enum Event {
    /// The handshake is done: the server is ready for requests.
    Ready(Box<SessionInfo>),
    /// A notification the server sent on its own, for its subscribers.
    Publish(Notification<'static>),
    /// Put the server's `request` to `requester`, the client of our request
    /// `for_id`, and hand its answer to
    /// [`Machine::handle_client_answer`].
    Ask {
        for_id: i64,
        request: Request<'static>,
        requester: RequestContext,
    },
    /// The server gave up on its request `id` to the client: stop asking.
    Abandon(RequestId<'static>),
}

/// Who waits for an answer.
enum Waiter {
    /// A caller.
    Caller(oneshot::Sender<Result<Raw<'static>>>),
    /// The machine itself, for the handshake.
    Handshake,
    /// The machine itself, for a health check.
    HealthCheck,
    /// The machine itself: its `subscriptions/listen`, which a stateless
    /// server answers only when it ends the stream.
    Listen,
}

/// How long an upstream `subscriptions/listen` that ended waits before it
/// is opened again.
pub(super) const LISTEN_AGAIN: Duration = Duration::from_secs(2);
/// The deadline of a request that has none: an upstream listen.
const NO_DEADLINE: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

struct Pending {
    waiter: Waiter,
    deadline: Instant,
    timeout: Duration,
    progress: Option<ProgressRoute>,
    requester: Option<RequestContext>,
}

/// Which handshake is running.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Handshake {
    Initialize,
    /// `server/discover`; `fallback` means: on an error, try `initialize`;
    /// `retried`: this is the second try after an unsupported version.
    Discover {
        fallback: bool,
        retried: bool,
    },
}

/// The state of one connection.
pub(super) struct Machine {
    settings: ConnectionSettings,
    /// Where request ids come from (shared with the server's handle) and
    /// whose cached lists a list change invalidates.
    shared: Arc<Shared>,
    pending: HashMap<i64, Pending>,
    deadlines: BTreeSet<(Instant, i64)>,
    outbox: VecDeque<Message<'static>>,
    events: VecDeque<Event>,
    /// The handshake while it runs.
    handshake: Option<Handshake>,
    ready: bool,
    /// Set once a stateless (2026-07-28) session is up: the `_meta` members
    /// each request gets.
    stateless: Option<StatelessMeta>,
    /// In `Auto`, what `server/discover` told while `initialize` runs
    /// after it: a server that answers both serves both generations.
    discovered: Option<SessionInfo>,
    /// When the upstream `subscriptions/listen` (of a server that announces
    /// list changes only on such streams) is to be opened again after it
    /// ended.
    listen_again: Option<Instant>,
    /// The resources the upstream `subscriptions/listen` last opened
    /// watches.
    listening_to: Vec<String>,
    /// When the next health check is due, once ready.
    next_health: Option<Instant>,
    /// Set when the connection is over.
    exit: Option<Exit>,
}

impl Machine {
    /// A connection started at `now`: its handshake is queued.
    pub(super) fn new(settings: ConnectionSettings, shared: Arc<Shared>, now: Instant) -> Self {
        let mut machine = Self {
            settings,
            shared,
            pending: HashMap::new(),
            deadlines: BTreeSet::new(),
            outbox: VecDeque::new(),
            events: VecDeque::new(),
            handshake: None,
            ready: false,
            stateless: None,
            discovered: None,
            listen_again: None,
            listening_to: Vec::new(),
            next_health: None,
            exit: None,
        };
        match machine.settings.protocol {
            UpstreamProtocol::Stateful => machine.send_initialize(now),
            UpstreamProtocol::Stateless => machine.send_discover(now, false, false),
            UpstreamProtocol::Auto => machine.send_discover(now, true, false),
        }
        machine
    }

    /// Whether the handshake is done.
    pub(super) fn is_ready(&self) -> bool {
        self.ready
    }

    /// Whether the session is a stateless (2026-07-28) one.
    pub(super) fn is_stateless(&self) -> bool {
        self.stateless.is_some()
    }

    /// Whether it takes a caller's command now: ready, and the outbox not
    /// full.
    pub(super) fn accepts_commands(&self) -> bool {
        self.ready && self.outbox.len() < OUTBOX_HIGH_WATER && self.exit.is_none()
    }

    /// Whether a message waits to be sent.
    pub(super) fn has_transmit(&self) -> bool {
        !self.outbox.is_empty()
    }

    /// The next message for the server.
    pub(super) fn poll_transmit(&mut self) -> Option<Message<'static>> {
        self.outbox.pop_front()
    }

    /// The next event for the world.
    pub(super) fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Machine::handle_timeout`] must next be called.
    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        let deadline = self.deadlines.first().map(|(at, _)| *at);
        [deadline, self.next_health, self.listen_again]
            .into_iter()
            .flatten()
            .min()
    }

    /// Why the connection ended, once it has.
    pub(super) fn take_exit(&mut self) -> Option<Exit> {
        self.exit.take()
    }

    /// A caller's command, at `now`.
    pub(super) fn handle_command(&mut self, command: ConnCommand, now: Instant) {
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
                if deadline <= now {
                    let _ = reply.send(Err(Error::timeout(timeout)));
                    return;
                }
                let (params, route) =
                    match wire::prepare_params(params, id, progress, self.stateless.as_deref()) {
                        Ok(routed) => routed,
                        Err(error) => {
                            let _ = reply.send(Err(error));
                            return;
                        }
                    };
                self.track(
                    id,
                    Pending {
                        waiter: Waiter::Caller(reply),
                        deadline,
                        timeout,
                        progress: route,
                        requester,
                    },
                );
                self.outbox.push_back(Message::Request(Request {
                    id: RequestId::Number(id),
                    method,
                    params,
                }));
            }
            ConnCommand::Notify(notification) => {
                self.outbox.push_back(Message::Notification(notification));
            }
            ConnCommand::Cancel { id, reason } => {
                if self.untrack(id).is_some() {
                    self.send_cancelled(id, reason);
                }
            }
            ConnCommand::Expired => {}
            ConnCommand::Bridged => self.rebridge(now),
        }
    }

    /// The `_meta` members of a stateless request: the envelope, and the
    /// log level a session set, if any.
    fn stateless_meta(&self) -> StatelessMeta {
        wire::stateless_meta_at(self.shared.log_level())
    }

    /// What a stateless server is asked on every connection changed: the
    /// log level goes with the requests from now on, and the upstream
    /// `subscriptions/listen` is opened again when the resources watched
    /// are not those it watches (the one open is closed).
    fn rebridge(&mut self, now: Instant) {
        if self.stateless.is_none() {
            // Not stateless, or not up yet: the handshake reads both.
            return;
        }
        self.stateless = Some(self.stateless_meta());
        let watched = self.shared.watched();
        if !self.ready || watched == self.listening_to {
            return;
        }
        let open: Vec<i64> = self
            .pending
            .iter()
            .filter(|(_, pending)| matches!(pending.waiter, Waiter::Listen))
            .map(|(id, _)| *id)
            .collect();
        for id in open {
            self.untrack(id);
            self.send_cancelled(id, "the resources to watch changed");
        }
        self.listen_again = None;
        self.send_listen(now);
    }

    /// A message from the server, at `now`.
    pub(super) fn handle_message(&mut self, message: Message<'static>, now: Instant) {
        match message {
            Message::Response(Response { id, result }) => self.on_answer(&id, Ok(result), now),
            Message::Error(error) => match &error.id {
                Some(id) => self.on_answer(&id.clone(), Err(Error::rpc(error.error)), now),
                None => {
                    tracing::warn!(server = %self.settings.server, "error without a request id: {}", error.error.message);
                }
            },
            Message::Notification(notification) => self.on_notification(notification, now),
            Message::Request(request) => self.on_server_request(request, None, now),
        }
    }

    /// A message from the server that came on the stream of our request
    /// `related`, at `now`: a request of the server's goes to that
    /// request's client.
    pub(super) fn handle_related(
        &mut self,
        message: Message<'static>,
        related: &RequestId<'static>,
        now: Instant,
    ) {
        match (message, related) {
            (Message::Request(request), RequestId::Number(id)) => {
                self.on_server_request(request, Some(*id), now);
            }
            (message, _) => self.handle_message(message, now),
        }
    }

    /// Request `id` could not be carried (see [`Inbound::Failed`]), at `now`.
    ///
    /// [`Inbound::Failed`]: crate::transport::Inbound::Failed
    pub(super) fn handle_failed(&mut self, id: &RequestId<'static>, reason: String, now: Instant) {
        self.on_answer(id, Err(Error::new(ErrorKind::Disconnected, reason)), now);
    }

    /// A client's answer to the server's request, made for our request
    /// `for_id`, at `now`: it goes to the server, and `for_id` is alive.
    pub(super) fn handle_client_answer(
        &mut self,
        for_id: i64,
        answer: Message<'static>,
        now: Instant,
    ) {
        self.refresh(for_id, now);
        self.outbox.push_back(answer);
    }

    /// The transport ended, for `reason`.
    pub(super) fn handle_closed(&mut self, reason: String) {
        let exit = if self.handshake.is_some() {
            Exit::StartFailed(Error::new(ErrorKind::Start, reason))
        } else {
            Exit::Lost(reason)
        };
        self.end(exit);
    }

    /// The time is `now`: deadlines that passed fire, a health check that
    /// is due is sent.
    pub(super) fn handle_timeout(&mut self, now: Instant) {
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
                    if self.discovered.is_some() {
                        // `initialize` after discovery went unanswered: a
                        // stateless server that ignores it.
                        self.handshake = None;
                        let error = Error::timeout(self.settings.startup_timeout);
                        self.finish_handshake(Handshake::Initialize, Err(error), now);
                        continue;
                    }
                    let error = Error::new(
                        ErrorKind::Start,
                        format!(
                            "the server did not answer `{method}` within {} ms",
                            self.settings.startup_timeout.as_millis()
                        ),
                    );
                    return self.end(Exit::StartFailed(error));
                }
                Waiter::HealthCheck => {
                    return self.end(Exit::Lost(format!(
                        "the server did not answer a health check within {} ms",
                        self.settings.health_timeout.as_millis()
                    )));
                }
                Waiter::Listen => self.listen_again = Some(now),
            }
        }
        if self.listen_again.is_some_and(|at| at <= now) {
            self.listen_again = None;
            self.send_listen(now);
        }
        if let (Some(at), Some(every)) = (self.next_health, self.settings.health_interval) {
            if at <= now {
                self.next_health = Some(now + every);
                self.send_ping(now);
            }
        }
    }

    /// Ends the connection: every caller still waiting is answered with
    /// why. What is still queued for the server is handed back, to be sent
    /// before the transport closes when the connection was stopped.
    pub(super) fn finish(&mut self, exit: &Exit) -> VecDeque<Message<'static>> {
        let reason = match exit {
            Exit::Stopped => "the server was stopped".to_owned(),
            Exit::StartFailed(error) => error.message().to_owned(),
            Exit::Lost(reason) => format!("the connection to the server was lost: {reason}"),
        };
        self.deadlines.clear();
        self.next_health = None;
        for (_, pending) in self.pending.drain() {
            if let Waiter::Caller(reply) = pending.waiter {
                let _ = reply.send(Err(Error::new(ErrorKind::Disconnected, reason.clone())));
            }
        }
        std::mem::take(&mut self.outbox)
    }

    fn end(&mut self, exit: Exit) {
        if self.exit.is_none() {
            self.exit = Some(exit);
        }
    }

    fn send_initialize(&mut self, now: Instant) {
        let id = self.shared.next_id();
        self.track_handshake(id, Handshake::Initialize, now);
        let roots = self.settings.roots.is_some();
        self.outbox.push_back(wire::initialize_request(id, roots));
    }

    fn send_discover(&mut self, now: Instant, fallback: bool, retried: bool) {
        let id = self.shared.next_id();
        self.track_handshake(id, Handshake::Discover { fallback, retried }, now);
        self.outbox.push_back(wire::discover_request(id));
    }

    fn track_handshake(&mut self, id: i64, handshake: Handshake, now: Instant) {
        let timeout = self.settings.startup_timeout;
        self.handshake = Some(handshake);
        self.track(id, Pending::internal(Waiter::Handshake, now, timeout));
    }

    /// Handles the answer to the handshake: the session is up, or another
    /// handshake was started (discover retried, or `initialize` in its
    /// place), or the start failed.
    fn finish_handshake(
        &mut self,
        handshake: Handshake,
        result: Result<Raw<'static>>,
        now: Instant,
    ) {
        let info = match handshake {
            Handshake::Initialize => {
                let initialized = result.and_then(wire::read_initialize).inspect(|_| {
                    self.outbox
                        .push_back(Message::notification(Method::Initialized.as_str(), None));
                });
                match (initialized, self.discovered.take()) {
                    // Both handshakes answered: a session for the
                    // requests without the 2026-07-28 envelope, and those
                    // with it passed on as they are.
                    // What only discovery tells (the extensions the
                    // server offers) is kept beside the session's offer.
                    (Ok(mut info), Some(discovered)) => {
                        info.dual = true;
                        if let Some(extensions) = discovered.capabilities.extra.get("extensions") {
                            info.capabilities
                                .extra
                                .entry("extensions")
                                .or_insert_with(|| extensions.clone());
                        }
                        Ok(info)
                    }
                    // Discovery alone answered: a stateless session.
                    (Err(error), Some(discovered)) => {
                        tracing::debug!(server = %self.settings.server, "`initialize` failed after `server/discover` answered ({error}); serving statelessly");
                        self.stateless = Some(self.stateless_meta());
                        Ok(discovered)
                    }
                    (initialized, None) => initialized,
                }
            }
            // In `Auto`, a server that answers discovery is asked to
            // `initialize` too, to find whether it serves both generations.
            Handshake::Discover { fallback: true, .. } if result.is_ok() => {
                match result.and_then(|r| wire::read_discover(r, self.settings.server.as_str())) {
                    Ok(discovered) => {
                        self.discovered = Some(discovered);
                        return self.send_initialize(now);
                    }
                    Err(error) => Err(error),
                }
            }
            Handshake::Discover { fallback, retried } => match result {
                Ok(result) => wire::read_discover(result, self.settings.server.as_str())
                    .inspect(|_| self.stateless = Some(self.stateless_meta())),
                // The server refused the version but names ours among those
                // it supports (a server may reject a first choice): once more.
                Err(error) if !retried && wire::supports_ours(&error) => {
                    tracing::debug!(server = %self.settings.server, "`server/discover` refused the version ({error}); trying again");
                    return self.send_discover(now, fallback, true);
                }
                // A refusal, or an HTTP error status without a JSON-RPC
                // answer: a server of the older generation.
                Err(error)
                    if fallback
                        && matches!(error.kind(), ErrorKind::Rpc | ErrorKind::Disconnected) =>
                {
                    tracing::debug!(server = %self.settings.server, "no `server/discover` ({error}); using `initialize`");
                    return self.send_initialize(now);
                }
                Err(error) => Err(error),
            },
        };
        match info {
            Ok(info) => {
                self.ready = true;
                self.next_health = self.settings.health_interval.map(|every| now + every);
                // A server that takes stateless requests may announce list
                // changes only on listen streams: keep one open.
                let watching = self.stateless.is_some() && self.shared.watches_any();
                if (self.stateless.is_some() || info.dual)
                    && (wire::announces_changes(&info) || watching)
                {
                    self.send_listen(now);
                }
                self.events.push_back(Event::Ready(Box::new(info)));
            }
            Err(error) => self.end(Exit::StartFailed(error)),
        }
    }

    fn track(&mut self, id: i64, pending: Pending) {
        self.deadlines.insert((pending.deadline, id));
        self.pending.insert(id, pending);
    }

    /// Starts the timeout of request `id` over at `now`: it is alive.
    fn refresh(&mut self, id: i64, now: Instant) {
        let Some(pending) = self.pending.get_mut(&id) else {
            return;
        };
        let deadline = now + pending.timeout;
        self.deadlines.remove(&(pending.deadline, id));
        self.deadlines.insert((deadline, id));
        pending.deadline = deadline;
    }

    fn untrack(&mut self, id: i64) -> Option<Pending> {
        let pending = self.pending.remove(&id)?;
        self.deadlines.remove(&(pending.deadline, id));
        Some(pending)
    }

    fn send_cancelled(&mut self, id: i64, reason: &str) {
        let params = json!({"requestId": id, "reason": reason});
        self.outbox.push_back(Message::notification(
            Method::Cancelled.as_str(),
            Some(Raw::from_value(&params)),
        ));
    }

    /// Whether a notification is tagged with the id of the machine's own
    /// listen stream.
    fn is_our_listen(&self, notification: &Notification<'_>) -> bool {
        let tag_in = |params: &Raw<'_>| params.get().contains(meta_keys::SUBSCRIPTION_ID);
        if !notification.params.as_ref().is_some_and(tag_in) {
            return false;
        }
        let tagged = notification
            .params
            .as_ref()
            .and_then(|params| serde_json::from_str::<serde_json::Value>(params.get()).ok())
            .and_then(|params| {
                params
                    .get("_meta")?
                    .get(meta_keys::SUBSCRIPTION_ID)?
                    .as_i64()
            });
        tagged.is_some_and(|id| {
            self.pending
                .get(&id)
                .is_some_and(|pending| matches!(pending.waiter, Waiter::Listen))
        })
    }

    /// Opens the upstream `subscriptions/listen` for every list change, as
    /// a stateless request; its notifications are the server's own.
    fn send_listen(&mut self, now: Instant) {
        let id = self.shared.next_id();
        self.track(id, Pending::internal(Waiter::Listen, now, NO_DEADLINE));
        self.listening_to = if self.stateless.is_some() {
            self.shared.watched()
        } else {
            Vec::new()
        };
        self.outbox
            .push_back(wire::listen_request(id, &self.listening_to));
    }

    fn send_ping(&mut self, now: Instant) {
        let id = self.shared.next_id();
        let timeout = self.settings.health_timeout;
        self.track(id, Pending::internal(Waiter::HealthCheck, now, timeout));
        self.outbox
            .push_back(Message::request(id, Method::Ping.as_str(), None));
    }

    fn on_answer(&mut self, id: &RequestId<'_>, result: Result<Raw<'static>>, now: Instant) {
        let RequestId::Number(id) = *id else {
            tracing::debug!(server = %self.settings.server, "answer to an id the manager never sent: {id}");
            return;
        };
        let Some(pending) = self.untrack(id) else {
            return;
        };
        match pending.waiter {
            Waiter::Caller(reply) => {
                let _ = reply.send(result);
            }
            Waiter::Handshake => {
                if let Some(handshake) = self.handshake.take() {
                    self.finish_handshake(handshake, result, now);
                }
            }
            Waiter::HealthCheck => {
                if let Err(error) = result {
                    tracing::debug!(server = %self.settings.server, "health check answered with an error: {error}");
                }
            }
            Waiter::Listen => match result {
                // A server without listen streams after all: not again.
                Err(error)
                    if error.rpc_error().is_some_and(|e| {
                        e.code == mcp_protocol::jsonrpc::error_code::METHOD_NOT_FOUND
                    }) =>
                {
                    tracing::debug!(server = %self.settings.server, "no `subscriptions/listen` upstream: {error}");
                }
                ended => {
                    tracing::debug!(server = %self.settings.server, "the upstream `subscriptions/listen` ended ({ended:?}); opening it again");
                    self.listen_again = Some(now + LISTEN_AGAIN);
                }
            },
        }
    }

    fn on_notification(&mut self, notification: Notification<'static>, now: Instant) {
        match Method::from_name(&notification.method) {
            Some(Method::Progress) => self.on_progress(notification, now),
            Some(
                Method::ToolListChanged | Method::ResourceListChanged | Method::PromptListChanged,
            ) => {
                self.shared.invalidate_lists();
                self.events.push_back(Event::Publish(notification));
            }
            // Our own listen stream is open: nothing for anyone else (a
            // caller's own listen hears of its own).
            Some(Method::SubscriptionsAcknowledged) if self.is_our_listen(&notification) => {}
            // The server gave up on one of its requests to the client.
            Some(Method::Cancelled) => {
                let cancelled = CancelledParams::from_params(notification.params);
                if let Some(id) = cancelled.ok().and_then(|c| c.request_id) {
                    self.events.push_back(Event::Abandon(id.into_owned()));
                }
            }
            // What comes on our own listen stream is the server's own
            // announcement, without the stream's tag.
            _ if self.is_our_listen(&notification) => {
                self.events
                    .push_back(Event::Publish(wire::untagged(notification)));
            }
            _ => self.events.push_back(Event::Publish(notification)),
        }
    }

    fn on_progress(&mut self, notification: Notification<'static>, now: Instant) {
        let Some(params) = notification
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
        self.refresh(id, now);
        let Some(pending) = self.pending.get(&id) else {
            return;
        };
        if let Some((sink, token)) = &pending.progress {
            // Progress is advisory: a caller too slow to take it loses some.
            let _ = sink.try_send(Notification {
                method: Cow::Borrowed(Method::Progress.as_str()),
                params: Some(wire::progress_for_caller(params, token)),
            });
        }
    }

    /// A request of the server's: put to the client of the request it was
    /// made for. That is `related` when the transport says (an HTTP
    /// request's stream); otherwise the client of the requests in flight
    /// that can be asked, when they all come from one client session. When
    /// they come from several, the wire does not tell which one the server
    /// means, and the request is refused rather than put to a client it
    /// may not be for.
    fn on_server_request(&mut self, request: Request<'static>, related: Option<i64>, now: Instant) {
        if request.method == Method::Ping.as_str() {
            self.outbox
                .push_back(Message::response(request.id, Raw::from_value(&json!({}))));
            return;
        }
        let asker = match related.and_then(|id| Some((id, self.pending.get(&id)?))) {
            Some((id, pending)) => pending.requester.clone().map(|r| (id, r)).ok_or(
                "the request it was sent for came from no client that can be asked".to_owned(),
            ),
            None => match (self.only_client(), &self.settings.roots) {
                (Ok(asker), _) => Ok(asker),
                // A per-client instance's one client, asked outside any
                // call (roots after `initialized`, say).
                (Err(_), Some(Some(owner))) => Ok((0, owner.clone())),
                // A per-client server's shared instances serve no client:
                // they have no roots.
                (Err(_), Some(None)) if request.method == Method::RootsList.as_str() => {
                    let none = Raw::from_value(&json!({"roots": []}));
                    self.outbox.push_back(Message::response(request.id, none));
                    return;
                }
                (Err(why), _) => Err(why),
            },
        };
        let (for_id, requester) = match asker {
            Ok(asker) => asker,
            Err(why) => {
                self.outbox.push_back(Message::error(
                    Some(request.id),
                    ErrorObject::new(
                        mcp_protocol::jsonrpc::error_code::METHOD_NOT_FOUND,
                        format!("`{}` has no client to go to: {why}", request.method),
                    ),
                ));
                return;
            }
        };
        self.refresh(for_id, now);
        self.events.push_back(Event::Ask {
            for_id,
            request,
            requester,
        });
    }
}

impl Machine {
    /// The most recent request in flight whose caller can be asked, when
    /// every such request comes from one client session; or why not.
    fn only_client(&self) -> std::result::Result<(i64, RequestContext), String> {
        let mut askers = self
            .pending
            .iter()
            .filter_map(|(id, pending)| Some((*id, pending.requester.as_ref()?)));
        let Some(first) = askers.next() else {
            return Err(
                "no request in flight here came from a client that can be asked".to_owned(),
            );
        };
        let session = first.1.session();
        let mut latest = first;
        for asker in askers {
            if session.is_none() || asker.1.session() != session {
                return Err(
                    "requests of several clients are in flight on this connection, and its \
                     transport does not say which one the server asks for (give the server \
                     `\"sessions\": \"per-client\"` to keep each client's requests apart)"
                        .to_owned(),
                );
            }
            if asker.0 > latest.0 {
                latest = asker;
            }
        }
        Ok((latest.0, latest.1.clone()))
    }
}

impl Pending {
    /// A request of the machine's own, sent at `now`.
    fn internal(waiter: Waiter, now: Instant, timeout: Duration) -> Self {
        Self {
            waiter,
            deadline: now + timeout,
            timeout,
            progress: None,
            requester: None,
        }
    }
}
