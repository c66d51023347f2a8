//! The tasks of a link: the driver that takes outbound messages, spawns a
//! task for each and serves their control messages, and the standalone
//! GET stream.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use mcp_protocol::mcp::{CancelledParams, Method, View};
use mcp_protocol::raw::Raw;
use mcp_protocol::{Message, Notification, Request, RequestId};
use tokio::sync::{mpsc, oneshot};
use tokio::task::{AbortHandle, JoinSet};

use super::{Inbound, TransportEnds};

use super::link::*;
use super::*;

/// Owns the link: takes outbound messages, spawns a task for each, serves
/// the tasks' control messages, and stops everything when told to.
pub(super) async fn drive(
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
pub(super) struct Driver {
    pub(super) shared: Arc<Shared>,
    /// One task per request in flight; each reads its answer.
    pub(super) requests: JoinSet<()>,
    /// The task carrying each request, to drop it when it is cancelled.
    pub(super) streams: HashMap<RequestId<'static>, AbortHandle>,
    pub(super) tasks: HashMap<tokio::task::Id, RequestId<'static>>,
    /// POSTs of notifications and answers.
    pub(super) others: JoinSet<()>,
    /// The standalone stream and a session renewal.
    pub(super) background: JoinSet<Background>,
    pub(super) listening: bool,
    /// Until when outbound messages wait for the standalone stream, while
    /// they do.
    pub(super) holding: Option<tokio::time::Instant>,
    /// The messages that wait.
    pub(super) held: VecDeque<Message<'static>>,
    /// The connection's `initialize` parameters, replayed on renewal.
    pub(super) init_params: Option<Raw<'static>>,
    /// Who waits for the renewal in progress, if one is.
    pub(super) renewal: Option<Vec<oneshot::Sender<std::result::Result<(), String>>>>,
}

impl Driver {
    pub(super) fn new(shared: Arc<Shared>) -> Self {
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

    pub(super) fn on_outbound(&mut self, message: Message<'static>) {
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
    pub(super) fn drop_cancelled(&mut self, notification: &Notification<'static>) {
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
    pub(super) fn release(&mut self) {
        self.holding = None;
        while let Some(message) = self.held.pop_front() {
            self.on_outbound(message);
        }
    }

    pub(super) fn on_request_done(&mut self, task: tokio::task::Id) {
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

    pub(super) fn on_control(&mut self, message: Control) {
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

    pub(super) fn on_background_done(&mut self, done: Background) {
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
    pub(super) async fn finish(mut self, grace: Option<Duration>) {
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
pub(super) async fn send_request(shared: Arc<Shared>, request: Request<'static>) {
    let id = request.id.clone();
    let method = request.method.clone();
    let initialize = method == Method::Initialize.as_str();
    let (stateless, headers) = request_headers(&request, &shared.mirrored);
    let tools_list = (method == Method::ToolsList.as_str()).then(|| request.params.clone());
    let body = Bytes::from(Message::Request(request).to_vec());
    let mut renewed = false;
    loop {
        // `initialize` starts a session, and a stateless request belongs
        // to none (beside a session, when the server serves both
        // generations): neither carries one.
        let session = if initialize || stateless.is_some_and(|v| !v.is_stateful()) {
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
                    if let Some(params) = &tools_list {
                        shared.mirrored.learn(params.as_ref(), &answer);
                    }
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
                    shared.fail(id, message).await;
                    return;
                }
            }
            Err(failure) => {
                let message = format!("`{method}` could not be carried over HTTP: {failure}");
                shared.fail(id, message).await;
                return;
            }
        }
    }
}

/// POSTs a notification; a failure is logged. An expired session is renewed
/// once, except for `notifications/initialized`, which belongs to the
/// session it was sent for.
pub(super) async fn send_notification(shared: Arc<Shared>, notification: Notification<'static>) {
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
pub(super) async fn send_answer(shared: Arc<Shared>, answer: Message<'static>) {
    let session = shared.current();
    if let Err(failure) = shared.post_plain(&session, answer.to_vec().into()).await {
        tracing::warn!(server = %shared.server(), "could not send an answer to the server: {failure}");
    }
}

/// Exponential backoff for reconnecting the standalone stream.
pub(super) struct Backoff(Duration);

impl Backoff {
    const START: Duration = Duration::from_secs(1);

    pub(super) fn next(&mut self) -> Duration {
        let delay = self.0;
        self.0 = (self.0 * 2).min(MAX_RETRY);
        delay
    }

    pub(super) fn reset(&mut self) {
        self.0 = Self::START;
    }
}

/// How long outbound messages wait for the standalone stream to open.
pub(super) const HOLD_FOR_STREAM: Duration = Duration::from_secs(2);

/// Resolves at `until`; never without it.
pub(super) async fn hold_until(until: Option<tokio::time::Instant>) {
    match until {
        Some(until) => tokio::time::sleep_until(until).await,
        None => std::future::pending().await,
    }
}

/// Keeps the standalone GET stream open and delivers what comes on it.
pub(super) async fn listen(shared: Arc<Shared>) -> Background {
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
