//! A deployed server: its instances, their supervisors, and the handle that
//! callers use.
//!
//! Each instance has a supervisor task that starts a transport, runs a
//! connection actor on it, and when the connection is lost restarts it with
//! exponential backoff and jitter, up to the configured number of restarts
//! in a row; then the instance is `Failed` and requests get an error at
//! once. The handle balances requests over the instances by fewest requests
//! in flight, keeping a caller's session on one instance.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use mcp_core::config::{ProtocolMode, Resilience, RestartConfig, RestartPolicy, Timeouts};
use mcp_core::{Launch, ServerConfig, ServerId};
use mcp_protocol::mcp::{CallToolParams, Implementation, Method, ServerCapabilities, Tool, View};
use mcp_protocol::raw::{Raw, RawObject};
use mcp_protocol::{Notification, ProtocolVersion};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::time::Instant;

use crate::connection::{ConnCommand, Connection, ConnectionSettings, Exit};
use crate::error::{Error, ErrorKind, Result};
use crate::lock;
use crate::observe::{BreakerState, Outcome, ServerObserver, method_label};
use crate::resilience::{self, Breaker, Bulkhead, Call, Upstream};
use crate::transport::{self, Connector};

/// Commands queued for one instance before callers wait.
const COMMAND_CAPACITY: usize = 1024;

/// What the server told about itself in the handshake.
#[derive(Clone, Debug, PartialEq)]
pub struct SessionInfo {
    /// The protocol version in use.
    pub protocol_version: ProtocolVersion,
    /// What the server offers.
    pub capabilities: ServerCapabilities,
    /// The server's name and version.
    pub server_info: Implementation,
    /// The server's guidance for the model.
    pub instructions: Option<String>,
}

/// A notification a server sent on its own: a list change, a log message, a
/// resource update.
#[derive(Clone, Debug)]
pub struct ServerEvent {
    /// Who sent it.
    pub server: ServerId,
    /// What it sent.
    pub notification: Notification<'static>,
}

/// Where an instance is in its life.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerState {
    /// Starting for the first time.
    Starting,
    /// Serving.
    Running,
    /// Lost and waiting to start again.
    Restarting {
        /// Restarts in a row so far, this one included.
        attempt: u32,
        /// Why the last connection ended.
        reason: String,
    },
    /// Given up on: it failed to start, or crashed too often.
    Failed {
        /// Why.
        reason: String,
    },
    /// Stopped on request.
    Stopped,
}

impl ServerState {
    /// A short name: `starting`, `running`, `restarting`, `failed`, `stopped`.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Self::Starting => "starting",
            Self::Running => "running",
            Self::Restarting { .. } => "restarting",
            Self::Failed { .. } => "failed",
            Self::Stopped => "stopped",
        }
    }
}

/// Which generation of the protocol to speak to a server.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum UpstreamProtocol {
    /// An `initialize` handshake proposing 2025-11-25; the server may answer
    /// with an older version. Every server today speaks this.
    #[default]
    Stateful,
    /// Stateless 2026-07-28: `server/discover`, then the version and client
    /// capabilities in every request's `_meta`.
    Stateless,
    /// `server/discover` first; a server that answers it with an error gets
    /// an `initialize` handshake instead.
    Auto,
}

/// Everything the runtime needs to run a server.
#[derive(Clone)]
pub struct ServerSpec {
    /// Its id.
    pub id: ServerId,
    /// How to reach it.
    pub connector: Arc<dyn Connector>,
    /// How many copies to run.
    pub instances: NonZeroU32,
    /// Request and start-up timeouts.
    pub timeouts: Timeouts,
    /// When and how to restart it.
    pub restart: RestartConfig,
    /// How often to ping an instance; `None` for never.
    pub health_interval: Option<Duration>,
    /// How long a stopping server may take before it is killed.
    pub stop_grace: Duration,
    /// Which protocol generation to speak.
    pub protocol: UpstreamProtocol,
    /// The most requests in flight at once (the bulkhead's size); `None`
    /// for no limit.
    pub max_concurrency: Option<NonZeroU32>,
    /// Bulkhead queue, total timeout, circuit breaker, retries.
    pub resilience: Resilience,
}

impl ServerSpec {
    /// A spec with the defaults: one instance, the default timeouts and
    /// restart policy, a health check every 30 s, 2 s to stop.
    pub fn new(id: ServerId, connector: Arc<dyn Connector>) -> Self {
        Self {
            id,
            connector,
            instances: NonZeroU32::MIN,
            timeouts: Timeouts::default(),
            restart: RestartConfig::default(),
            health_interval: Some(Duration::from_secs(30)),
            stop_grace: Duration::from_secs(2),
            protocol: UpstreamProtocol::Stateful,
            max_concurrency: None,
            resilience: Resilience::default(),
        }
    }

    /// The spec of a configured server reached as `launch` says: its
    /// instances, timeouts, restart policy, protocol, concurrency and
    /// resilience from `config`.
    #[must_use]
    pub fn from_config(config: &ServerConfig, launch: Launch) -> Self {
        let mut spec = Self::new(
            config.id().clone(),
            transport::connector(config.id(), launch),
        );
        spec.instances = config.instances();
        spec.timeouts = *config.timeouts();
        spec.restart = *config.restart();
        spec.max_concurrency = config.max_concurrency();
        spec.resilience = *config.resilience();
        spec.protocol = match config.protocol() {
            ProtocolMode::Stateful => UpstreamProtocol::Stateful,
            ProtocolMode::Stateless => UpstreamProtocol::Stateless,
            ProtocolMode::Auto => UpstreamProtocol::Auto,
        };
        spec
    }
}

impl std::fmt::Debug for ServerSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerSpec")
            .field("id", &self.id)
            .field("connector", &self.connector.describe())
            .field("instances", &self.instances)
            .finish_non_exhaustive()
    }
}

/// An error a server's requests or connection ran into.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecentError {
    /// When, in milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// What happened.
    pub message: String,
}

/// How many recent errors a server keeps.
const RECENT_ERRORS: usize = 16;

/// Counters of one server, shared by its handle and its instances.
pub(crate) struct Shared {
    next_id: AtomicI64,
    lists_generation: AtomicU64,
    pub(crate) requests: AtomicU64,
    pub(crate) errors: AtomicU64,
    pub(crate) timeouts: AtomicU64,
    pub(crate) restarts: AtomicU64,
    pub(crate) observer: Arc<dyn ServerObserver>,
    recent_errors: Mutex<VecDeque<RecentError>>,
}

impl Shared {
    fn new(observer: Arc<dyn ServerObserver>) -> Self {
        Self {
            next_id: AtomicI64::new(0),
            lists_generation: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            timeouts: AtomicU64::new(0),
            restarts: AtomicU64::new(0),
            observer,
            recent_errors: Mutex::new(VecDeque::new()),
        }
    }

    /// Keeps `message` among the server's recent errors.
    pub(crate) fn note_error(&self, message: String) {
        let at_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let mut errors = lock(&self.recent_errors);
        if errors.len() == RECENT_ERRORS {
            errors.pop_front();
        }
        errors.push_back(RecentError { at_ms, message });
    }

    pub(crate) fn next_id(&self) -> i64 {
        self.next_id.fetch_add(1, Ordering::Relaxed) + 1
    }

    pub(crate) fn invalidate_lists(&self) {
        self.lists_generation.fetch_add(1, Ordering::Relaxed);
    }

    /// Bumped on every list-changed notification; a cached list is good
    /// while this has not moved.
    pub(crate) fn lists_generation(&self) -> u64 {
        self.lists_generation.load(Ordering::Relaxed)
    }
}

/// One running copy of a server.
struct Instance {
    commands: mpsc::Sender<ConnCommand>,
    in_flight: AtomicUsize,
    state: watch::Receiver<ServerState>,
    session: watch::Receiver<Option<SessionInfo>>,
    stop: watch::Sender<bool>,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

struct ServerInner {
    spec: ServerSpec,
    shared: Arc<Shared>,
    events: broadcast::Sender<ServerEvent>,
    instances: RwLock<Vec<Arc<Instance>>>,
    sessions: Mutex<HashMap<u64, Arc<Instance>>>,
    lists: Mutex<HashMap<ListKind, CachedList>>,
    /// The tools annotated read-only or idempotent, from the cached tool
    /// list of the generation it names.
    repeatable_tools: Mutex<(u64, Arc<HashSet<String>>)>,
    breaker: Option<Arc<Breaker>>,
    bulkhead: Option<Arc<Bulkhead>>,
}

/// A list's items and the list generation they were fetched at.
type CachedList = (u64, Arc<[Raw<'static>]>);

/// The lists a server has, for [`ServerHandle::list_all`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ListKind {
    /// `tools/list`.
    Tools,
    /// `resources/list`.
    Resources,
    /// `resources/templates/list`.
    ResourceTemplates,
    /// `prompts/list`.
    Prompts,
}

impl ListKind {
    /// The list request's method.
    #[must_use]
    pub fn method(self) -> &'static str {
        match self {
            Self::Tools => "tools/list",
            Self::Resources => "resources/list",
            Self::ResourceTemplates => "resources/templates/list",
            Self::Prompts => "prompts/list",
        }
    }

    /// The member of the result that holds the items.
    #[must_use]
    pub fn key(self) -> &'static str {
        match self {
            Self::Tools => "tools",
            Self::Resources => "resources",
            Self::ResourceTemplates => "resourceTemplates",
            Self::Prompts => "prompts",
        }
    }

    /// Whether a server with `capabilities` has this list.
    fn offered_by(self, capabilities: &ServerCapabilities) -> bool {
        match self {
            Self::Tools => capabilities.tools.is_some(),
            Self::Resources | Self::ResourceTemplates => capabilities.resources.is_some(),
            Self::Prompts => capabilities.prompts.is_some(),
        }
    }
}

/// Pages fetched before `list_all` gives up on a server that keeps paging.
const MAX_PAGES: usize = 1000;

/// Options of one request.
#[derive(Clone, Debug, Default)]
pub struct CallOptions {
    /// Overrides the server's request timeout.
    pub timeout: Option<Duration>,
    /// Where progress notifications go, with the caller's own token. Without
    /// a sink, a progress token in the request is removed.
    pub progress: Option<mpsc::Sender<Notification<'static>>>,
    /// Keeps every request with the same key on one instance.
    pub session: Option<u64>,
    /// Who answers what the server asks of the client while it serves this
    /// request (`sampling/createMessage`, `elicitation/create`,
    /// `roots/list`); without one, the server is told there is no client
    /// to ask.
    pub requester: Option<mcp_core::RequestContext>,
}

/// A handle to a deployed server; cheap to clone.
#[derive(Clone)]
pub struct ServerHandle {
    inner: Arc<ServerInner>,
}

impl std::fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerHandle")
            .field("id", &self.inner.spec.id)
            .finish_non_exhaustive()
    }
}

impl ServerHandle {
    /// Starts every instance of `spec` and returns once all of them have
    /// completed their handshake.
    ///
    /// # Errors
    ///
    /// The first instance's start-up error; the instances that did start are
    /// stopped again.
    pub(crate) async fn start(
        spec: ServerSpec,
        events: broadcast::Sender<ServerEvent>,
        observer: Arc<dyn ServerObserver>,
    ) -> Result<Self> {
        let count = spec.instances.get();
        let breaker = spec
            .resilience
            .breaker()
            .map(|config| Arc::new(Breaker::new(spec.id.clone(), config, observer.clone())));
        let bulkhead = spec.max_concurrency.map(|size| {
            Arc::new(Bulkhead::new(
                spec.id.clone(),
                usize::try_from(size.get()).unwrap_or(usize::MAX),
                spec.resilience.max_queued(),
                observer.clone(),
            ))
        });
        let handle = Self {
            inner: Arc::new(ServerInner {
                spec,
                shared: Arc::new(Shared::new(observer)),
                events,
                instances: RwLock::new(Vec::new()),
                sessions: Mutex::new(HashMap::new()),
                lists: Mutex::new(HashMap::new()),
                repeatable_tools: Mutex::new((u64::MAX, Arc::default())),
                breaker,
                bulkhead,
            }),
        };
        if let Err(error) = handle.add_instances(count).await {
            handle.stop().await;
            return Err(error);
        }
        Ok(handle)
    }

    /// Whether `other` is a handle of the same deployment (not merely a
    /// server of the same id deployed again).
    #[must_use]
    pub fn same_server(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// The server's id.
    #[must_use]
    pub fn id(&self) -> &ServerId {
        &self.inner.spec.id
    }

    /// The server's spec.
    #[must_use]
    pub fn spec(&self) -> &ServerSpec {
        &self.inner.spec
    }

    /// What the first running instance said in its handshake.
    #[must_use]
    pub fn session(&self) -> Option<SessionInfo> {
        self.instances()
            .iter()
            .find_map(|i| i.session.borrow().clone())
    }

    /// The state of each instance.
    #[must_use]
    pub fn states(&self) -> Vec<ServerState> {
        self.instances()
            .iter()
            .map(|i| i.state.borrow().clone())
            .collect()
    }

    /// Requests in flight over all instances.
    #[must_use]
    pub fn in_flight(&self) -> usize {
        self.instances()
            .iter()
            .map(|i| i.in_flight.load(Ordering::Relaxed))
            .sum()
    }

    pub(crate) fn shared(&self) -> &Shared {
        &self.inner.shared
    }

    /// The circuit breaker's state; `None` without a breaker.
    #[must_use]
    pub fn breaker_state(&self) -> Option<BreakerState> {
        self.inner.breaker.as_ref().map(|b| b.state())
    }

    /// Requests waiting in the bulkhead's queue.
    #[must_use]
    pub fn queued(&self) -> usize {
        self.inner.bulkhead.as_ref().map_or(0, |b| b.queued())
    }

    /// The server's most recent errors: requests that got no answer (the
    /// server's own JSON-RPC errors are answers, and not kept) and lost
    /// connections, oldest first.
    #[must_use]
    pub fn recent_errors(&self) -> Vec<RecentError> {
        lock(&self.inner.shared.recent_errors)
            .iter()
            .cloned()
            .collect()
    }

    fn instances(&self) -> Vec<Arc<Instance>> {
        self.inner
            .instances
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Sends a request and waits for its result, through the server's
    /// resilience layers (retries, circuit breaker, total timeout,
    /// bulkhead, outermost first). Dropping the future cancels
    /// the request upstream.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Rpc`] with the server's own error, or why no answer came
    /// (timeout, lost connection, server unavailable, [`ErrorKind::Busy`],
    /// [`ErrorKind::CircuitOpen`]).
    pub async fn request(
        &self,
        method: impl Into<Cow<'static, str>>,
        params: Option<Raw<'static>>,
        options: CallOptions,
    ) -> Result<Raw<'static>> {
        self.layered(method.into(), params, options, false).await
    }

    /// [`ServerHandle::request`], skipping the bulkhead when `unqueued`.
    async fn layered(
        &self,
        method: Cow<'static, str>,
        params: Option<Raw<'static>>,
        options: CallOptions,
        unqueued: bool,
    ) -> Result<Raw<'static>> {
        let inner = &self.inner;
        let propagator = crate::observe::propagator();
        // Traced only within a traced caller's span (see `observe`).
        let span = if propagator.is_some() && tracing::Span::current().is_none() {
            tracing::Span::none()
        } else {
            tracing::info_span!(
                target: "mcp_runtime::backend",
                "mcp.backend",
                otel.name = %format_args!("{method} {}", inner.spec.id),
                otel.kind = "client",
                rpc.method = %method,
                mcp.server = %inner.spec.id,
            )
        };
        // The server continues the trace from this request's span.
        let params = match propagator
            .filter(|_| !span.is_none())
            .and_then(|p| p.inject(&span))
        {
            Some(context) => crate::observe::with_trace_context(params, &context),
            None => params,
        };
        let observed = Observed::start(&inner.shared, method_label(&method));
        let repeatable = self.repeatable(&method, params.as_ref());
        let call = Call {
            method,
            params,
            options,
            repeatable,
            unqueued,
        };
        let stack = resilience::stack(
            Upstream(self.clone()),
            inner.spec.resilience.retries(),
            inner.breaker.clone(),
            inner.spec.resilience.total_timeout(),
            inner.bulkhead.clone(),
        );
        let result =
            tracing::Instrument::instrument(resilience::ready_call(stack, call), span).await;
        observed.finish(&result);
        result
    }

    /// Whether a request may be sent again after it got no answer.
    fn repeatable(&self, method: &str, params: Option<&Raw<'static>>) -> bool {
        if self.inner.spec.resilience.retries().attempts() == 0 {
            return false;
        }
        if method != "tools/call" {
            return resilience::repeatable_method(method);
        }
        let (generation, tools) = lock(&self.inner.repeatable_tools).clone();
        // Annotations from a tool list that has changed since say nothing.
        if tools.is_empty() || generation != self.inner.shared.lists_generation() {
            return false;
        }
        CallToolParams::from_params(params.map(Raw::reborrow))
            .is_ok_and(|call| tools.contains(call.name.as_ref()))
    }

    pub(crate) async fn send_request(
        &self,
        method: Cow<'static, str>,
        params: Option<Raw<'static>>,
        options: CallOptions,
    ) -> Result<Raw<'static>> {
        let instance = self.pick(options.session)?;
        let id = self.inner.shared.next_id();
        let (reply, answer) = oneshot::channel();
        let command = ConnCommand::Request {
            id,
            method,
            params,
            timeout: options
                .timeout
                .unwrap_or(self.inner.spec.timeouts.request()),
            enqueued: Instant::now(),
            progress: options.progress,
            requester: options.requester,
            reply,
        };
        let _in_flight = InFlight::enter(&instance);
        if instance.commands.send(command).await.is_err() {
            return Err(unavailable(&self.inner.spec.id, &instance));
        }
        let mut guard = CancelOnDrop {
            commands: &instance.commands,
            id,
            armed: true,
        };
        let result = answer.await;
        guard.armed = false;
        result.unwrap_or_else(|_| Err(unavailable(&self.inner.spec.id, &instance)))
    }

    /// Every item of a list (all pages), each as raw JSON. The list is
    /// cached until the server announces a change of it; a server whose
    /// capabilities do not include the list has none.
    ///
    /// # Errors
    ///
    /// As [`ServerHandle::request`], or [`ErrorKind::Protocol`] for a page
    /// without the list or a server that pages forever.
    pub async fn list_all(&self, kind: ListKind) -> Result<Arc<[Raw<'static>]>> {
        // A server that is not running has no list, cached or not.
        self.pick(None)?;
        let generation = self.inner.shared.lists_generation();
        if let Some((cached, items)) = self
            .inner
            .lists
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&kind)
        {
            if *cached == generation {
                return Ok(items.clone());
            }
        }
        if !self
            .session()
            .is_some_and(|s| kind.offered_by(&s.capabilities))
        {
            return Ok(Arc::from(Vec::new()));
        }
        let items: Arc<[Raw<'static>]> = Arc::from(self.fetch_pages(kind).await?);
        // Keep it only if no change was announced while fetching.
        if self.inner.shared.lists_generation() == generation {
            if kind == ListKind::Tools {
                let repeatable = items
                    .iter()
                    .filter_map(|item| Tool::from_result(item.clone()).ok())
                    .filter(|tool| tool.annotations().is_safe_to_retry())
                    .map(|tool| tool.name.into_owned())
                    .collect();
                *lock(&self.inner.repeatable_tools) = (generation, Arc::new(repeatable));
            }
            self.inner
                .lists
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(kind, (generation, items.clone()));
        }
        Ok(items)
    }

    async fn fetch_pages(&self, kind: ListKind) -> Result<Vec<Raw<'static>>> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let params = cursor
                .take()
                .map(|c| Raw::from_value(&serde_json::json!({ "cursor": c })));
            let page = self
                .layered(kind.method().into(), params, CallOptions::default(), true)
                .await?;
            let mut page = RawObject::from_cow(page).map_err(|_| {
                Error::new(
                    ErrorKind::Protocol,
                    format!(
                        "`{}` returned a result that is not an object",
                        kind.method()
                    ),
                )
            })?;
            let list = page
                .remove(kind.key())
                .and_then(Raw::into_array)
                .ok_or_else(|| {
                    Error::new(
                        ErrorKind::Protocol,
                        format!("`{}` returned no `{}` array", kind.method(), kind.key()),
                    )
                })?;
            items.extend(list);
            match page.remove("nextCursor").and_then(Raw::into_str) {
                Some(next) => cursor = Some(next.into_owned()),
                None => return Ok(items),
            }
        }
        Err(Error::new(
            ErrorKind::Protocol,
            format!(
                "`{}` kept returning a next page after {MAX_PAGES} pages",
                kind.method()
            ),
        ))
    }

    /// Sends a notification to every instance.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Unavailable`] when no instance is running.
    pub async fn notify(&self, notification: Notification<'static>) -> Result<()> {
        let mut sent = false;
        for instance in self.instances() {
            sent |= instance
                .commands
                .send(ConnCommand::Notify(notification.clone()))
                .await
                .is_ok();
        }
        if sent {
            Ok(())
        } else {
            Err(Error::new(
                ErrorKind::Unavailable,
                format!("server `{}` is not running", self.id()),
            ))
        }
    }

    /// Picks an instance: the session's own, or the running one with the
    /// fewest requests in flight.
    fn pick(&self, session: Option<u64>) -> Result<Arc<Instance>> {
        let instances = self.instances();
        let live = |i: &&Arc<Instance>| !i.commands.is_closed() && !*i.stop.borrow();
        if let Some(key) = session {
            let mut sessions = self
                .inner
                .sessions
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if let Some(instance) = sessions.get(&key) {
                if live(&instance) {
                    return Ok(instance.clone());
                }
            }
            let chosen = least_loaded(instances.iter().filter(live))
                .ok_or_else(|| self.none_running(&instances))?;
            sessions.insert(key, chosen.clone());
            return Ok(chosen);
        }
        least_loaded(instances.iter().filter(live)).ok_or_else(|| self.none_running(&instances))
    }

    fn none_running(&self, instances: &[Arc<Instance>]) -> Error {
        match instances.first() {
            Some(instance) => unavailable(&self.inner.spec.id, instance),
            None => Error::new(
                ErrorKind::Unavailable,
                format!("server `{}` has no instances", self.id()),
            ),
        }
    }

    /// Forgets a caller's session, so its next request may go anywhere.
    pub fn end_session(&self, session: u64) {
        self.inner
            .sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&session);
    }

    /// Starts `count` more instances and waits for their handshakes.
    async fn add_instances(&self, count: u32) -> Result<()> {
        let mut starts = Vec::new();
        for _ in 0..count {
            let (instance, started) = spawn_instance(&self.inner);
            self.inner
                .instances
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .push(instance);
            starts.push(started);
        }
        for started in starts {
            started.await.unwrap_or_else(|_| {
                Err(Error::new(
                    ErrorKind::Start,
                    "the instance stopped while starting",
                ))
            })?;
        }
        Ok(())
    }

    /// Runs `instances` copies: starts new ones, or drains and stops the
    /// extra ones (newest first).
    ///
    /// # Errors
    ///
    /// A start-up error of a new instance.
    pub async fn scale(&self, instances: NonZeroU32) -> Result<()> {
        let current = u32::try_from(self.instances().len()).unwrap_or(u32::MAX);
        let wanted = instances.get();
        if wanted > current {
            return self.add_instances(wanted - current).await;
        }
        let keep = usize::try_from(wanted).unwrap_or(usize::MAX);
        self.retire(|n, _| n >= keep, self.inner.spec.timeouts.request())
            .await;
        Ok(())
    }

    /// Takes the instances `leaving` picks (by position and instance) out
    /// of service, so no new request reaches them and sessions on them are
    /// forgotten, then lets each finish its requests for up to `drain` and
    /// stops it.
    async fn retire(&self, leaving: impl Fn(usize, &Arc<Instance>) -> bool, drain: Duration) {
        let removed: Vec<Arc<Instance>> = {
            let mut list = self
                .inner
                .instances
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            let (gone, kept): (Vec<_>, Vec<_>) = list
                .drain(..)
                .enumerate()
                .partition(|(n, i)| leaving(*n, i));
            *list = kept.into_iter().map(|(_, i)| i).collect();
            gone.into_iter().map(|(_, i)| i).collect()
        };
        lock(&self.inner.sessions).retain(|_, i| !removed.iter().any(|r| Arc::ptr_eq(r, i)));
        futures_join(removed.into_iter().map(|i| stop_instance(i, drain))).await;
    }

    /// Replaces every instance with a fresh one: the new instances start
    /// (and complete their handshake) first, take the new requests, and
    /// then the old ones are drained (for up to the request timeout) and
    /// stopped, so callers see no gap. The lists are fetched anew, and a
    /// list-changed event for each is sent, since the new process may offer
    /// something else.
    ///
    /// # Errors
    ///
    /// A start-up error of a new instance; the old instances then keep
    /// serving.
    pub async fn restart(&self) -> Result<()> {
        let old = self.instances();
        let count = u32::try_from(old.len()).unwrap_or(u32::MAX).max(1);
        let is_old = |i: &Arc<Instance>| old.iter().any(|o| Arc::ptr_eq(o, i));
        if let Err(error) = self.add_instances(count).await {
            self.retire(|_, i| !is_old(i), Duration::ZERO).await;
            return Err(error);
        }
        self.inner.shared.invalidate_lists();
        for method in [
            Method::ToolListChanged,
            Method::ResourceListChanged,
            Method::PromptListChanged,
        ] {
            let _ = self.inner.events.send(ServerEvent {
                server: self.id().clone(),
                notification: Notification {
                    method: Cow::Borrowed(method.as_str()),
                    params: None,
                },
            });
        }
        self.retire(|_, i| is_old(i), self.inner.spec.timeouts.request())
            .await;
        Ok(())
    }

    /// Stops every instance, letting requests in flight finish for up to
    /// the request timeout.
    pub async fn stop(&self) {
        self.retire(|_, _| true, self.inner.spec.timeouts.request())
            .await;
    }
}

async fn futures_join(stops: impl Iterator<Item = impl Future<Output = ()> + Send + 'static>) {
    let tasks: Vec<_> = stops.map(tokio::spawn).collect();
    for task in tasks {
        let _ = task.await;
    }
}

/// Waits for an instance's requests to finish (up to `drain`), then stops it
/// and waits for its supervisor to end.
async fn stop_instance(instance: Arc<Instance>, drain: Duration) {
    let until = Instant::now() + drain;
    while instance.in_flight.load(Ordering::Relaxed) > 0 && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    instance.stop.send_replace(true);
    let task = instance
        .task
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take();
    if let Some(task) = task {
        let _ = task.await;
    }
}

fn least_loaded<'i>(instances: impl Iterator<Item = &'i Arc<Instance>>) -> Option<Arc<Instance>> {
    instances
        .min_by_key(|i| i.in_flight.load(Ordering::Relaxed))
        .cloned()
}

fn unavailable(id: &ServerId, instance: &Instance) -> Error {
    let state = instance.state.borrow().clone();
    let why = match state {
        ServerState::Starting => "is starting".to_owned(),
        ServerState::Running => "closed the connection".to_owned(),
        ServerState::Restarting { attempt, reason } => {
            format!("is restarting (attempt {attempt}) after: {reason}")
        }
        ServerState::Failed { reason } => format!("has failed: {reason}"),
        ServerState::Stopped => "was stopped".to_owned(),
    };
    Error::new(ErrorKind::Unavailable, format!("server `{id}` {why}"))
}

/// A request as the observer sees it: started when made, finished with its
/// outcome, or as cancelled when its caller stops waiting.
struct Observed<'a> {
    shared: &'a Shared,
    method: &'static str,
    began: Instant,
    done: bool,
}

impl<'a> Observed<'a> {
    fn start(shared: &'a Shared, method: &'static str) -> Self {
        shared.requests.fetch_add(1, Ordering::Relaxed);
        shared.observer.started(method);
        Self {
            shared,
            method,
            began: Instant::now(),
            done: false,
        }
    }

    fn finish(mut self, result: &Result<Raw<'static>>) {
        self.done = true;
        let outcome = match result {
            Ok(_) => Outcome::Ok,
            Err(error) => {
                self.shared.errors.fetch_add(1, Ordering::Relaxed);
                if *error.kind() == ErrorKind::Timeout {
                    self.shared.timeouts.fetch_add(1, Ordering::Relaxed);
                }
                if !matches!(error.kind(), ErrorKind::Rpc | ErrorKind::Cancelled) {
                    self.shared
                        .note_error(format!("{}: {}", self.method, error.message()));
                }
                Outcome::of(error.kind())
            }
        };
        self.shared
            .observer
            .finished(self.method, outcome, self.began.elapsed());
    }
}

impl Drop for Observed<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.shared
                .observer
                .finished(self.method, Outcome::Cancelled, self.began.elapsed());
        }
    }
}

/// Counts a request in flight on an instance for as long as it lives.
struct InFlight<'a>(&'a Instance);

impl<'a> InFlight<'a> {
    fn enter(instance: &'a Instance) -> Self {
        instance.in_flight.fetch_add(1, Ordering::Relaxed);
        Self(instance)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Cancels the request upstream if the caller stops waiting for it.
struct CancelOnDrop<'a> {
    commands: &'a mpsc::Sender<ConnCommand>,
    id: i64,
    armed: bool,
}

impl Drop for CancelOnDrop<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let cancel = ConnCommand::Cancel {
            id: self.id,
            reason: "the caller cancelled the request",
        };
        if let Err(mpsc::error::TrySendError::Full(cancel)) = self.commands.try_send(cancel) {
            let commands = self.commands.clone();
            tokio::spawn(async move {
                let _ = commands.send(cancel).await;
            });
        }
    }
}

/// Starts one instance's supervisor; the receiver says how its first start
/// went.
fn spawn_instance(inner: &Arc<ServerInner>) -> (Arc<Instance>, oneshot::Receiver<Result<()>>) {
    let (commands_tx, commands_rx) = mpsc::channel(COMMAND_CAPACITY);
    let (state_tx, state_rx) = watch::channel(ServerState::Starting);
    let (session_tx, session_rx) = watch::channel(None);
    let (stop_tx, stop_rx) = watch::channel(false);
    let (started_tx, started_rx) = oneshot::channel();
    let instance = Arc::new(Instance {
        commands: commands_tx,
        in_flight: AtomicUsize::new(0),
        state: state_rx,
        session: session_rx,
        stop: stop_tx,
        task: Mutex::new(None),
    });
    let supervisor = Supervisor {
        spec: inner.spec.clone(),
        shared: inner.shared.clone(),
        events: inner.events.clone(),
        state: state_tx,
        session: session_tx,
        stop: stop_rx,
    };
    let task = tokio::spawn(supervisor.run(commands_rx, started_tx));
    *instance.task.lock().unwrap_or_else(PoisonError::into_inner) = Some(task);
    (instance, started_rx)
}

struct Supervisor {
    spec: ServerSpec,
    shared: Arc<Shared>,
    events: broadcast::Sender<ServerEvent>,
    state: watch::Sender<ServerState>,
    session: watch::Sender<Option<SessionInfo>>,
    stop: watch::Receiver<bool>,
}

impl Supervisor {
    async fn run(
        mut self,
        mut commands: mpsc::Receiver<ConnCommand>,
        started: oneshot::Sender<Result<()>>,
    ) {
        let settings = ConnectionSettings {
            server: self.spec.id.clone(),
            startup_timeout: self.spec.timeouts.startup(),
            health_interval: self.spec.health_interval,
            health_timeout: self.spec.timeouts.request(),
            grace: self.spec.stop_grace,
            protocol: self.spec.protocol,
        };
        let mut started = Some(started);
        let mut failures = 0u32;
        let mut held = VecDeque::new();
        loop {
            let began = Instant::now();
            let exit = self
                .run_once(&settings, &mut commands, &mut held, &mut started)
                .await;
            self.session.send_replace(None);
            let reason = match exit {
                Exit::Stopped => break,
                Exit::StartFailed(error) => {
                    if let Some(started) = started.take() {
                        self.state.send_replace(ServerState::Failed {
                            reason: error.message().to_owned(),
                        });
                        let _ = started.send(Err(error));
                        return;
                    }
                    error.message().to_owned()
                }
                Exit::Lost(reason) => reason,
            };
            tracing::warn!(server = %self.spec.id, "connection lost: {reason}");
            self.shared.note_error(format!("connection lost: {reason}"));
            // A connection that stayed up a while resets the count.
            if began.elapsed() >= self.spec.restart.max_backoff().max(Duration::from_secs(10)) {
                failures = 0;
            }
            failures += 1;
            if self.spec.restart.policy() == RestartPolicy::Never
                || failures > self.spec.restart.max_restarts()
            {
                let reason = match self.spec.restart.policy() {
                    RestartPolicy::Never => {
                        format!("it stopped and its restart policy is `never`: {reason}")
                    }
                    _ => format!("it failed {failures} times in a row; the last time: {reason}"),
                };
                tracing::error!(server = %self.spec.id, "giving up: {reason}");
                self.shared.observer.gave_up();
                refuse_held(
                    &mut held,
                    &format!("server `{}` has failed: {reason}", self.spec.id),
                );
                self.state.send_replace(ServerState::Failed { reason });
                return;
            }
            self.shared.restarts.fetch_add(1, Ordering::Relaxed);
            self.shared.observer.restarted();
            self.state.send_replace(ServerState::Restarting {
                attempt: failures,
                reason: reason.clone(),
            });
            let delay = backoff(&self.spec.restart, failures);
            tracing::info!(server = %self.spec.id, "restarting in {} ms (attempt {failures})", delay.as_millis());
            if self
                .hold_during_backoff(&mut commands, &mut held, delay)
                .await
            {
                break;
            }
        }
        refuse_held(&mut held, &format!("server `{}` was stopped", self.spec.id));
        self.state.send_replace(ServerState::Stopped);
    }

    /// One connection, from start to end.
    async fn run_once(
        &mut self,
        settings: &ConnectionSettings,
        commands: &mut mpsc::Receiver<ConnCommand>,
        held: &mut VecDeque<ConnCommand>,
        started: &mut Option<oneshot::Sender<Result<()>>>,
    ) -> Exit {
        let connect =
            tokio::time::timeout(self.spec.timeouts.startup(), self.spec.connector.connect());
        let link = tokio::select! {
            link = connect => match link {
                Ok(Ok(link)) => link,
                Ok(Err(error)) => return Exit::StartFailed(error),
                Err(_) => return Exit::StartFailed(Error::new(ErrorKind::Start, "connecting timed out")),
            },
            _ = self.stop.wait_for(|stop| *stop) => return Exit::Stopped,
        };
        let connection = Connection::new(settings, link, &self.shared, &self.events);
        let state = &self.state;
        let session = &self.session;
        let on_ready = |info: SessionInfo| {
            tracing::info!(
                server = %settings.server,
                "running: {} {} speaking {}",
                info.server_info.name,
                info.server_info.version,
                info.protocol_version
            );
            session.send_replace(Some(info));
            state.send_replace(ServerState::Running);
            if let Some(started) = started.take() {
                let _ = started.send(Ok(()));
            }
        };
        connection
            .run(commands, held, &mut self.stop, on_ready)
            .await
    }

    /// Waits out a backoff. Requests that arrive meanwhile are held for the
    /// restarted connection, and answered with a timeout if theirs runs out
    /// first. True if a stop was asked for.
    async fn hold_during_backoff(
        &mut self,
        commands: &mut mpsc::Receiver<ConnCommand>,
        held: &mut VecDeque<ConnCommand>,
        delay: Duration,
    ) -> bool {
        let end = Instant::now() + delay;
        loop {
            expire(held);
            let wake = held
                .iter()
                .filter_map(ConnCommand::deadline)
                .min()
                .map_or(end, |d| d.min(end));
            tokio::select! {
                () = tokio::time::sleep_until(wake) => {
                    if Instant::now() >= end {
                        return false;
                    }
                }
                _ = self.stop.wait_for(|stop| *stop) => return true,
                command = commands.recv() => match command {
                    Some(command) => held.push_back(command),
                    None => return true,
                },
            }
        }
    }
}

/// Answers every held request with `reason`.
fn refuse_held(held: &mut VecDeque<ConnCommand>, reason: &str) {
    for command in held.drain(..) {
        if let ConnCommand::Request { reply, .. } = command {
            let _ = reply.send(Err(Error::new(ErrorKind::Unavailable, reason)));
        }
    }
}

/// Answers held requests whose time ran out, and drops cancelled ones.
fn expire(held: &mut VecDeque<ConnCommand>) {
    let now = Instant::now();
    held.retain_mut(|command| match command {
        ConnCommand::Request { reply, .. } if reply.is_closed() => false,
        ConnCommand::Request {
            timeout, enqueued, ..
        } if *enqueued + *timeout <= now => {
            let ConnCommand::Request { reply, timeout, .. } =
                std::mem::replace(command, ConnCommand::Expired)
            else {
                return false;
            };
            let _ = reply.send(Err(Error::timeout(timeout)));
            false
        }
        ConnCommand::Expired => false,
        _ => true,
    });
}

/// The wait before restart number `attempt` (from 1): exponential from the
/// initial backoff, capped, with ±25 % jitter so that many servers crashing
/// together do not restart in lockstep.
fn backoff(restart: &RestartConfig, attempt: u32) -> Duration {
    let base = restart
        .initial_backoff()
        .saturating_mul(1u32 << attempt.saturating_sub(1).min(20))
        .min(restart.max_backoff());
    let jitter = jitter_fraction();
    base.mul_f64(0.75 + 0.5 * jitter)
}

/// A number in [0, 1) that differs from call to call; no randomness crate
/// is needed for jitter.
fn jitter_fraction() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(u64::from(std::process::id()));
    #[allow(clippy::cast_precision_loss)] // 53 bits of a hash are plenty.
    let fraction = (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64;
    fraction
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let restart = RestartConfig::new(
            RestartPolicy::OnFailure,
            5,
            Duration::from_millis(100),
            Duration::from_millis(1000),
        );
        for (attempt, base) in [
            (1, 100),
            (2, 200),
            (3, 400),
            (4, 800),
            (5, 1000),
            (30, 1000),
        ] {
            let delay = backoff(&restart, attempt).as_secs_f64() * 1000.0;
            let base = f64::from(base);
            assert!(
                delay >= base * 0.75 && delay <= base * 1.25,
                "attempt {attempt}: {delay}"
            );
        }
    }

    #[test]
    fn jitter_varies() {
        let samples: Vec<f64> = (0..16).map(|_| jitter_fraction()).collect();
        assert!(samples.iter().all(|f| (0.0..1.0).contains(f)));
        assert!(samples.windows(2).any(|w| w[0] != w[1]));
    }
}
