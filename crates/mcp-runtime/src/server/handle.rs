//! The handle callers use: requests balanced over the instances, through
//! the resilience layers, and the server's lists, cached.
//!
//! Nothing here takes a lock: the instances and the cached lists are
//! snapshots swapped whole (`arc_swap`), counters are atomics, and a
//! caller's session is kept on one instance by rendezvous hashing, not by a
//! shared map. (A per-client server's instances are the exception: see
//! `clients`.)

use std::borrow::Cow;
use std::collections::HashSet;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use arc_swap::{ArcSwap, ArcSwapOption};
use mcp_core::config::SessionMode;
use mcp_core::{RequestContext, ServerId};
use mcp_protocol::Notification;
use mcp_protocol::mcp::{
    CallToolParams, Method, ResourceRequestParams, SetLevelParams, Tool, View,
};
use mcp_protocol::raw::{Raw, RawObject};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::time::Instant;

use crate::connection::ConnCommand;
use crate::error::{Error, ErrorKind, Result};
use crate::observe::{BreakerState, Outcome, ServerObserver, method_label};
use crate::resilience::{self, Call, Guards};
use crate::server::clients::{self, ClientInstances};
use crate::server::direct::Direct;
use crate::server::instance::{
    Instance, futures_join, lists_may_have_changed, spawn_instance, stop_instance,
};
use crate::server::{
    CallOptions, ListKind, RecentError, ServerEvent, ServerSpec, ServerState, SessionInfo, Shared,
};

/// What a deployed server's handles share.
pub(super) struct ServerInner {
    pub(super) spec: ServerSpec,
    pub(super) shared: Arc<Shared>,
    pub(super) events: broadcast::Sender<ServerEvent>,
    /// The instances, swapped whole when one comes or goes.
    instances: ArcSwap<Vec<Arc<Instance>>>,
    /// A per-client server's instance for each client session.
    clients: Option<Arc<ClientInstances>>,
    /// Each list's cache.
    lists: ListCaches,
    /// The tools annotated read-only or idempotent, from the cached tool
    /// list of the generation it names.
    repeatable_tools: ArcSwap<RepeatableTools>,
    guards: Guards,
}

/// The cache of each kind of list.
#[derive(Default)]
struct ListCaches {
    tools: ArcSwapOption<CachedList>,
    resources: ArcSwapOption<CachedList>,
    resource_templates: ArcSwapOption<CachedList>,
    prompts: ArcSwapOption<CachedList>,
}

impl ListCaches {
    fn of(&self, kind: ListKind) -> &ArcSwapOption<CachedList> {
        match kind {
            ListKind::Tools => &self.tools,
            ListKind::Resources => &self.resources,
            ListKind::ResourceTemplates => &self.resource_templates,
            ListKind::Prompts => &self.prompts,
        }
    }
}

/// A list's items and the list generation they were fetched at.
struct CachedList {
    generation: u64,
    items: Arc<[Raw<'static>]>,
}

/// The tools safe to send again, and the list generation they are from.
#[derive(Default)]
struct RepeatableTools {
    generation: u64,
    names: HashSet<String>,
}

/// Pages fetched before `list_all` gives up on a server that keeps paging.
const MAX_PAGES: usize = 1000;

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
        let guards = Guards::new(&spec, &observer);
        let clients = (spec.sessions == SessionMode::PerClient).then(|| {
            let clients = Arc::new(ClientInstances::default());
            let drain = spec.timeouts.request();
            clients::reap(Arc::downgrade(&clients), drain, spec.id.to_string());
            clients
        });
        let handle = Self {
            inner: Arc::new(ServerInner {
                spec,
                shared: Arc::new(Shared::new(observer)),
                events,
                instances: ArcSwap::from_pointee(Vec::new()),
                clients,
                lists: Default::default(),
                repeatable_tools: ArcSwap::from_pointee(RepeatableTools {
                    generation: u64::MAX,
                    names: HashSet::new(),
                }),
                guards,
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

    /// What the server's events are reported to (given at deploy), for
    /// the layers above to report what they see of it.
    #[must_use]
    pub fn observer(&self) -> &dyn ServerObserver {
        self.inner.shared.observer.as_ref()
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
        self.inner.guards.breaker_state()
    }

    /// Requests waiting in the bulkhead's queue.
    #[must_use]
    pub fn queued(&self) -> usize {
        self.inner.guards.queued()
    }

    /// The server's most recent errors: requests that got no answer (the
    /// server's own JSON-RPC errors are answers, and not kept) and lost
    /// connections, oldest first.
    #[must_use]
    pub fn recent_errors(&self) -> Vec<RecentError> {
        self.inner.shared.recent_errors()
    }

    /// The instances now: a snapshot, never a lock.
    fn instances(&self) -> Arc<Vec<Arc<Instance>>> {
        self.inner.instances.load_full()
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
        let method = method.into();
        if let Some(answered) = self.bridge_removed(&method, params.as_ref()).await {
            return answered;
        }
        self.layered(method, params, options, false).await
    }

    /// A session's request that 2026-07-28 removed, for a server that
    /// takes only stateless requests, answered here: `resources/subscribe`
    /// and `resources/unsubscribe` change what the upstream
    /// `subscriptions/listen` watches (opened again on every connection of
    /// the server, a restarted one included), `logging/setLevel` the log
    /// level every later request asks for. `None` for anything else.
    async fn bridge_removed(
        &self,
        method: &str,
        params: Option<&Raw<'static>>,
    ) -> Option<Result<Raw<'static>>> {
        let removed = Method::from_name(method).filter(|m| {
            matches!(
                m,
                Method::ResourcesSubscribe | Method::ResourcesUnsubscribe | Method::SetLogLevel
            )
        })?;
        let session = self.session()?;
        if session.protocol_version.is_stateful() || session.dual {
            return None;
        }
        let invalid = |e: mcp_protocol::Error| {
            Error::rpc(mcp_protocol::ErrorObject::new(
                e.code(),
                e.message().to_owned(),
            ))
        };
        let shared = &self.inner.shared;
        let changed = if removed == Method::SetLogLevel {
            match SetLevelParams::from_params(params.cloned()) {
                Ok(set) => shared.set_log_level(set.level),
                Err(e) => return Some(Err(invalid(e))),
            }
        } else {
            match ResourceRequestParams::from_params(params.cloned()) {
                Ok(params) => shared.watch(&params.uri, removed == Method::ResourcesSubscribe),
                Err(e) => return Some(Err(invalid(e))),
            }
        };
        if changed {
            for instance in self.instances().iter() {
                // An instance that is gone reads both anew when it starts
                // again.
                let _ = instance.commands.send(ConnCommand::Bridged).await;
            }
        }
        Some(Ok(Raw::from_value(&serde_json::json!({}))))
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
        let result = tracing::Instrument::instrument(inner.guards.call(self, call), span).await;
        observed.finish(&result);
        result
    }

    /// Whether a request may be sent again after it got no answer.
    fn repeatable(&self, method: &str, params: Option<&Raw<'static>>) -> bool {
        // Only the retry layer asks, and a build without the layers has none.
        if !cfg!(feature = "resilience") || self.inner.spec.resilience.retries().attempts() == 0 {
            return false;
        }
        if method != "tools/call" {
            return resilience::repeatable_method(method);
        }
        let tools = self.inner.repeatable_tools.load();
        // Annotations from a tool list that has changed since say nothing.
        if tools.names.is_empty() || tools.generation != self.inner.shared.lists_generation() {
            return false;
        }
        CallToolParams::from_params(params.map(Raw::reborrow))
            .is_ok_and(|call| tools.names.contains(call.name.as_ref()))
    }

    pub(crate) async fn send_request(
        &self,
        method: Cow<'static, str>,
        params: Option<Raw<'static>>,
        options: CallOptions,
    ) -> Result<Raw<'static>> {
        let instance = match self.client_of(&options) {
            Some((key, owner)) => {
                let inner = &self.inner;
                let clients = inner
                    .clients
                    .as_ref()
                    .ok_or_else(|| Error::new(ErrorKind::Unavailable, "no per-client instances"))?;
                clients.instance(key, owner, &inner.spec, &inner.shared)?
            }
            None => self.pick(options.session)?,
        };
        let id = self.inner.shared.next_id();
        let timeout = options
            .timeout
            .unwrap_or(self.inner.spec.timeouts.request());
        let _in_flight = InFlight::enter(&instance);
        if let Some(direct) = instance.direct.load_full()
            && Direct::takes(params.as_ref(), options.progress.as_ref())
        {
            let (progress, requester) = (options.progress, options.requester);
            return direct
                .request(id, method, params, timeout, progress, requester)
                .await;
        }
        let (reply, answer) = oneshot::channel();
        let command = ConnCommand::Request {
            id,
            method,
            params,
            timeout,
            enqueued: Instant::now(),
            progress: options.progress,
            requester: options.requester,
            reply,
        };
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
        let cache = self.inner.lists.of(kind);
        if let Some(cached) = cache.load().as_ref() {
            if cached.generation == generation {
                return Ok(cached.items.clone());
            }
        }
        let items: Arc<[Raw<'static>]> = if self
            .session()
            .is_some_and(|s| kind.offered_by(&s.capabilities))
        {
            Arc::from(self.fetch_pages(kind).await?)
        } else {
            // Kept like any list: the same empty one until a change.
            Arc::from(Vec::new())
        };
        // Keep it only if no change was announced while fetching.
        if self.inner.shared.lists_generation() == generation {
            if kind == ListKind::Tools {
                let names = items
                    .iter()
                    .filter_map(|item| Tool::from_result(item.clone()).ok())
                    .filter(|tool| tool.annotations().is_safe_to_retry())
                    .map(|tool| tool.name.into_owned())
                    .collect();
                self.inner
                    .repeatable_tools
                    .store(Arc::new(RepeatableTools { generation, names }));
            }
            cache.store(Some(Arc::new(CachedList {
                generation,
                items: items.clone(),
            })));
        }
        Ok(items)
    }

    /// The list as [`ServerHandle::list_all`] would give it, if that needs
    /// no request: `None` when it must be fetched (never asked for, or
    /// changed since), `Some(Err(_))` when no instance runs. For callers
    /// that check on every request that what they built from the lists is
    /// still current.
    #[must_use]
    pub fn cached_list(&self, kind: ListKind) -> Option<Result<Arc<[Raw<'static>]>>> {
        if let Err(error) = self.pick(None) {
            return Some(Err(error));
        }
        let generation = self.inner.shared.lists_generation();
        self.inner
            .lists
            .of(kind)
            .load()
            .as_ref()
            .filter(|cached| cached.generation == generation)
            .map(|cached| Ok(cached.items.clone()))
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
        for instance in self.instances().iter() {
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

    /// The client session a per-client server's request belongs to, and
    /// who answers for it: its requester's session. `None` for a shared
    /// server, and for a request that comes from no client session.
    fn client_of<'o>(&self, options: &'o CallOptions) -> Option<(u64, &'o RequestContext)> {
        self.inner.clients.as_ref()?;
        let requester = options.requester.as_ref()?;
        Some((requester.session()?, requester))
    }

    /// How many client sessions have an instance of their own (a
    /// per-client server's).
    #[must_use]
    pub fn client_instances(&self) -> usize {
        self.inner.clients.as_ref().map_or(0, |c| c.len())
    }

    /// Sends a notification from client session `key` (its
    /// `notifications/roots/list_changed`, say) to that session's instance
    /// of a per-client server; `false` when there is none (a shared
    /// server, or a session that has not called it yet).
    pub async fn notify_client(&self, key: u64, notification: Notification<'static>) -> bool {
        let Some(instance) = self.inner.clients.as_ref().and_then(|c| c.of(key)) else {
            return false;
        };
        instance
            .commands
            .send(ConnCommand::Notify(notification))
            .await
            .is_ok()
    }

    /// Picks a live instance: for a session, the same one as long as it
    /// lives (rendezvous hashing: the instance that scores highest for the
    /// session's key, so an instance coming or going moves only the
    /// sessions it must); without one, the one with the fewest requests in
    /// flight.
    fn pick(&self, session: Option<u64>) -> Result<Arc<Instance>> {
        let instances = self.inner.instances.load();
        let live = instances.iter().filter(|i| i.is_live());
        let chosen = match session {
            Some(key) => live.max_by_key(|i| rendezvous(key, i.id)),
            None => live.min_by_key(|i| i.in_flight.load(Ordering::Relaxed)),
        };
        chosen.cloned().ok_or_else(|| self.none_running(&instances))
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

    /// Starts `count` more instances and waits for their handshakes.
    async fn add_instances(&self, count: u32) -> Result<()> {
        let mut starts = Vec::new();
        for _ in 0..count {
            let inner = &self.inner;
            let (instance, started) =
                spawn_instance(&inner.spec, &inner.shared, &inner.events, None);
            self.inner.instances.rcu(|list| {
                let mut list = Vec::clone(list);
                list.push(instance.clone());
                list
            });
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
        let mut removed = Vec::new();
        self.inner.instances.rcu(|list| {
            let (gone, kept): (Vec<_>, Vec<_>) = list
                .iter()
                .cloned()
                .enumerate()
                .partition(|(n, i)| leaving(*n, i));
            removed = gone.into_iter().map(|(_, i)| i).collect();
            kept.into_iter().map(|(_, i)| i).collect::<Vec<_>>()
        });
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
        if let Some(clients) = &self.inner.clients {
            clients.restart(self.inner.spec.timeouts.request()).await;
        }
        lists_may_have_changed(&self.inner.shared, &self.inner.events, self.id());
        self.retire(|_, i| is_old(i), self.inner.spec.timeouts.request())
            .await;
        Ok(())
    }

    /// Stops every instance, letting requests in flight finish for up to
    /// the request timeout.
    pub async fn stop(&self) {
        let drain = self.inner.spec.timeouts.request();
        if let Some(clients) = &self.inner.clients {
            clients.stop_all(drain).await;
        }
        self.retire(|_, _| true, drain).await;
    }
}

/// How strongly session `key` prefers instance `instance` (rendezvous or
/// highest-random-weight hashing): a well-mixed hash of both.
fn rendezvous(key: u64, instance: u64) -> u64 {
    // splitmix64's finaliser over the pair.
    let mut x = key ^ instance.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
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

#[cfg(test)]
mod tests {
    use super::rendezvous;

    fn choose(key: u64, instances: &[u64]) -> Option<u64> {
        instances
            .iter()
            .copied()
            .max_by_key(|&i| rendezvous(key, i))
    }

    #[test]
    fn sessions_move_only_when_their_instance_comes_or_goes() {
        let before = [11, 12, 13];
        let after = [11, 12, 13, 14];
        let mut moved = 0;
        for key in 0..3000 {
            let (old, new) = (choose(key, &before), choose(key, &after));
            if old != new {
                // A session that moves goes to the new instance only.
                assert_eq!(new, Some(14));
                moved += 1;
            }
            // Without its instance, a session moves to one of the others,
            // and the rest stay where they were.
            let without = choose(key, &[11, 13]);
            if old == Some(12) {
                assert!(matches!(without, Some(11 | 13)));
            } else {
                assert_eq!(without, old);
            }
        }
        // About a quarter of the sessions move to the fourth instance.
        assert!((500..1000).contains(&moved), "{moved} of 3000 moved");
    }

    #[test]
    fn sessions_spread_over_the_instances() {
        let mut counts = [0u32; 4];
        for key in 0..4000 {
            let chosen = choose(key, &[1, 2, 3, 4]).unwrap();
            counts[usize::try_from(chosen - 1).unwrap()] += 1;
        }
        assert!(
            counts.iter().all(|&n| (800..1200).contains(&n)),
            "{counts:?}"
        );
    }
}
