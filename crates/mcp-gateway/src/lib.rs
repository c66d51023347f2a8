//! The gateway of mcp-manager: many deployed servers served as one MCP
//! server.
//!
//! [`Gateway`] is itself an [`McpServer`], so any downstream transport that
//! serves an `McpServer` (stdio, Streamable HTTP, legacy HTTP+SSE: the
//! `mcp-serve` crate) serves all the servers behind it. Lists of tools, prompts, resources and
//! resource templates are merged: a tool or prompt is exposed as
//! `NAMESPACE` + separator + its own name (no prefix when the namespace is
//! empty), a server's tool filter hides what it denies, and two servers
//! exposing the same tool or prompt name are reported in the log and the
//! later one's entry is left out rather than shadowing the first. Resource
//! URIs are addresses that also appear in content and links, so they keep
//! their form, except where two servers offer the same URI (or template):
//! the later server's copy is listed as `mcp-manager://SERVER/URI`
//! ([`server_uri`]), logged, and read, subscribed to and announced as
//! updated under that URI. That form reaches any server's resource. Calls
//! are routed back by the exposed name, resource reads by URI (then by
//! template prefix), and completions by the prompt or template they
//! complete. Each merged list is built once per change of a backend's list
//! and shared by every request until the next change. A server that is
//! down is left out of the lists and logged; it is not an error for the
//! whole list. Cancelling a downstream request cancels the upstream one.
//! What a server asks of the client while it serves a request (sampling,
//! elicitation, roots) goes to the client that made the request, and the
//! client's answer back to that server.
//!
//! With [`Gateway::with_notifications`], each client session (from its
//! `notifications/initialized` on) also gets what the servers announce on
//! their own: list changes (debounced: a burst becomes one notification per
//! list), log messages tagged with their server in `logger`, and resource
//! updates, all sessions served by one task. The forwarding ends when the
//! client goes away.
//!
//! # Invariants
//!
//! Architecture invariant: the gateway sees servers only as
//! `mcp_runtime::ServerHandle`s and clients only as `RequestContext`s; it
//! never reaches an HTTP server, the plugins or pyo3, and it never parses a
//! `result` it forwards.
#![forbid(unsafe_code)]

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::Arc;

use arc_swap::ArcSwap;

use mcp_core::config::{ItemKind, PinMode, ToolFilter};
use mcp_core::{BoxFuture, HandlerResult, McpServer, RequestContext, ServerId};
use mcp_protocol::jsonrpc::error_code;
use mcp_protocol::mcp::{InitializeParams, Method, SetLevelParams, View};
use mcp_protocol::raw::Raw;
use mcp_protocol::{ErrorObject, Notification, ProtocolVersion, Request, VersionSet};
use serde_json::{Value, json};

use mcp_runtime::{ListKind, McpRuntime, ServerEvent, ServerHandle};

mod access;
mod bridge;
mod catalog;
mod error;
mod held;
mod notify;
pub mod pins;
mod route;
mod tasks;

pub use access::{Access, Audit};
pub use error::Error;

use catalog::Catalogs;
use notify::{Forwarder, Hub, LIST_CHANGES, Scope};
pub use route::{SERVER_URI_SCHEME, server_uri};
use route::{request_span, view_error};

/// One server behind the gateway.
#[derive(Clone, Debug)]
pub struct Backend {
    /// The deployed server.
    pub handle: ServerHandle,
    /// The prefix of its tools' and prompts' names; empty for none.
    pub namespace: String,
    /// Which of its tools are exposed.
    pub tools: ToolFilter,
    /// What is done when one of its tools' definitions changes; `None`
    /// for the gateway's [`Pinning`](pins::Pinning) mode.
    pub pinning: Option<PinMode>,
}

/// A server of the config that is not behind the gateway because it did
/// not start: calls to its tools and prompts are answered with `reason`
/// instead of "Unknown tool".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unavailable {
    /// The server.
    pub server: ServerId,
    /// The prefix its tools and prompts would have.
    pub namespace: String,
    /// Why it is not there (why it failed to start).
    pub reason: String,
}

/// The backends at one moment, in priority order.
pub(crate) type Backends = Arc<Vec<Arc<Backend>>>;

/// Many servers as one.
pub struct Gateway {
    /// The backends now (replaced whole when they change,
    /// [`Gateway::set_backends`], so a request works on one snapshot), the
    /// resources listed in the gateway's own form, and the client
    /// sessions' resource subscriptions.
    scope: Scope,
    separator: String,
    info: Value,
    notifications: Option<McpRuntime>,
    page_size: usize,
    /// The merged lists, rebuilt when a backend's list changes.
    catalogs: Catalogs,
    /// Backend calls waiting for a stateless client's answers.
    parked: bridge::ParkedCalls,
    /// What their `requestState`s are sealed with: the key the replicas
    /// share, else one of this process's own.
    seal: mcp_runtime::seal::Seal,
    /// The client sessions told what the servers announce.
    hub: Arc<Hub>,
    /// The servers that did not start, for calls meant for them.
    unavailable: ArcSwap<Vec<Unavailable>>,
    /// The tools' pinned definitions, when pinning is on.
    pinning: Option<Arc<pins::Pinning>>,
    /// Who may use what, when there are rules.
    access: Option<Access>,
    /// Where calls are written down, when they are.
    audit: Option<Audit>,
}

/// Items per page of a merged list, unless set with
/// [`Gateway::with_page_size`].
pub const DEFAULT_PAGE_SIZE: usize = 500;

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("backends", &self.backends().len())
            .finish_non_exhaustive()
    }
}

impl Gateway {
    /// A gateway over `backends`, in priority order: on a name clash the
    /// earlier backend wins. `separator` joins a namespace and a name.
    #[must_use]
    pub fn new(backends: Vec<Backend>, separator: impl Into<String>) -> Self {
        let scope = Scope {
            backends: Arc::new(ArcSwap::from_pointee(
                backends.into_iter().map(Arc::new).collect(),
            )),
            renamed: Arc::default(),
            subscriptions: Arc::default(),
            tasks: Arc::default(),
        };
        let hub = Arc::new(Hub::new(scope.clone()));
        Self {
            scope,
            separator: separator.into(),
            info: json!({"name": "mcp-manager", "version": env!("CARGO_PKG_VERSION")}),
            notifications: None,
            page_size: DEFAULT_PAGE_SIZE,
            catalogs: Catalogs::default(),
            parked: bridge::ParkedCalls::default(),
            seal: mcp_runtime::seal::Seal::new(None),
            hub,
            unavailable: ArcSwap::default(),
            pinning: None,
            access: None,
            audit: None,
        }
    }

    /// The same gateway, cutting merged lists into pages of `items` (at
    /// least one).
    #[must_use]
    pub fn with_page_size(mut self, items: usize) -> Self {
        self.page_size = items.max(1);
        self
    }

    /// The same gateway, forwarding what the servers of `runtime` announce
    /// on their own to every client session.
    #[must_use]
    pub fn with_notifications(mut self, runtime: McpRuntime) -> Self {
        self.notifications = Some(runtime);
        self
    }

    /// The same gateway, judging every listed tool against `pinning`
    /// (see [`pins`]) and keeping its file in step from now on (from a
    /// thread of its own). Call it after
    /// [`with_notifications`](Self::with_notifications): the sessions are
    /// then told when an approval made elsewhere changes a tool list.
    #[must_use]
    pub fn with_pinning(mut self, pinning: Arc<pins::Pinning>) -> Self {
        let runtime = self.notifications.clone();
        pinning.spawn_sync(move |servers| {
            let Some(runtime) = &runtime else {
                return;
            };
            for server in servers {
                let Ok(server) = ServerId::new(server) else {
                    continue;
                };
                announce_list_change(runtime, server, Method::ToolListChanged);
            }
        });
        self.pinning = Some(pinning);
        self
    }

    /// The same gateway, serving each caller (the `Principal` of its
    /// request's context) only what `access` allows it: the rest is left
    /// out of its lists and unknown when called.
    #[must_use]
    pub fn with_access(mut self, access: Access) -> Self {
        self.access = Some(access);
        self
    }

    /// The same gateway, one of several replicas sharing `key`: the
    /// `requestState` of a stateless client's call to a session-bound
    /// backend is sealed with it, so that any replica can go on with the
    /// call (see the `bridge` module).
    #[must_use]
    pub fn with_cluster_key(mut self, key: &mcp_runtime::seal::ClusterKey) -> Self {
        self.seal = mcp_runtime::seal::Seal::new(Some(key));
        self
    }

    /// The same gateway, writing every call of a tool, prompt or resource
    /// it allows or denies to `audit`.
    #[must_use]
    pub fn with_audit(mut self, audit: Audit) -> Self {
        self.audit = Some(audit);
        self
    }

    /// Whether the caller of `context` may use the item of `kind` that
    /// `server` calls `name`.
    pub(crate) fn permits(
        &self,
        context: &RequestContext,
        kind: ItemKind,
        server: &ServerId,
        name: &str,
    ) -> bool {
        self.access
            .as_ref()
            .is_none_or(|access| access.allows(context.principal(), kind, server.as_str(), name))
    }

    /// [`permits`](Self::permits) for a call, written to the audit log
    /// (with `arguments` when it keeps them).
    pub(crate) fn permits_call(
        &self,
        context: &RequestContext,
        kind: ItemKind,
        server: &ServerId,
        name: &str,
        arguments: Option<&Raw<'_>>,
    ) -> bool {
        let allowed = self.permits(context, kind, server, name);
        if let Some(audit) = &self.audit {
            audit.record(
                context.principal(),
                kind,
                server.as_str(),
                name,
                allowed,
                arguments,
            );
        }
        allowed
    }

    /// The backends now.
    fn backends(&self) -> Backends {
        self.scope.backends.load_full()
    }

    /// The ids of the servers behind the gateway, in priority order.
    #[must_use]
    pub fn servers(&self) -> Vec<ServerId> {
        self.backends()
            .iter()
            .map(|b| b.handle.id().clone())
            .collect()
    }

    /// The servers that did not start, from now on (replacing those given
    /// before): a call to a tool or prompt under one of their namespaces
    /// is answered with why that server is not there.
    pub fn set_unavailable(&self, servers: Vec<Unavailable>) {
        self.unavailable.store(Arc::new(servers));
    }

    /// The error for a call to `name` (of `kind`, "tool" or "prompt") that
    /// no backend serves: which server would have, and why it is not there,
    /// when its namespace says so; else that the name is unknown. Either
    /// carries `{"kind": ...}` as its data (`unavailable`, with the
    /// `server`; `unknown_tool` or `unknown_prompt`), so that a client can
    /// tell them apart without reading the message.
    pub(crate) fn unknown(&self, kind: &str, name: &str) -> ErrorObject<'static> {
        let unavailable = self.unavailable.load();
        let owner = unavailable.iter().find(|server| {
            !server.namespace.is_empty()
                && name
                    .strip_prefix(server.namespace.as_str())
                    .is_some_and(|rest| rest.starts_with(self.separator.as_str()))
        });
        match owner {
            Some(server) => ErrorObject {
                code: error_code::INTERNAL_ERROR,
                message: format!(
                    "{kind} `{name}` belongs to server `{}`, which is unavailable: {}",
                    server.server, server.reason
                )
                .into(),
                data: Some(Raw::from_value(&json!({
                    "kind": "unavailable",
                    "server": server.server.as_str(),
                }))),
            },
            None => ErrorObject {
                code: error_code::INVALID_PARAMS,
                message: format!("Unknown {kind}: {name}").into(),
                data: Some(Raw::from_value(
                    &json!({ "kind": format!("unknown_{kind}") }),
                )),
            },
        }
    }

    /// Serves `backends` from now on, in priority order: requests under
    /// way finish on the servers they started on, new ones see the new
    /// set. The merged lists are built anew, resource subscriptions of
    /// servers that left are forgotten, and (with notifications on) every
    /// client session is told its lists changed.
    pub fn set_backends(&self, backends: Vec<Backend>) {
        let new: Backends = Arc::new(backends.into_iter().map(Arc::new).collect());
        let old = self.scope.backends.swap(new.clone());
        self.catalogs.clear();
        let kept: HashSet<&ServerId> = new.iter().map(|b| b.handle.id()).collect();
        let mut changed: Vec<ServerId> = Vec::new();
        for backend in old.iter() {
            let id = backend.handle.id();
            if !kept.contains(id) {
                self.forget_subscriptions(id);
                changed.push(id.clone());
            }
        }
        for backend in new.iter() {
            let id = backend.handle.id();
            let same = old
                .iter()
                .any(|o| o.handle.id() == id && o.handle.same_server(&backend.handle));
            if !same && !changed.contains(id) {
                changed.push(id.clone());
            }
        }
        if let Some(runtime) = &self.notifications {
            for server in changed {
                for method in LIST_CHANGES {
                    announce_list_change(runtime, server.clone(), method);
                }
            }
        }
    }

    fn exposed(&self, backend: &Backend, name: &str) -> String {
        if backend.namespace.is_empty() {
            name.to_owned()
        } else {
            format!("{}{}{name}", backend.namespace, self.separator)
        }
    }

    /// What the gateway offers: what any of its running servers offers.
    /// Tasks are offered in the form of the client's generation: the
    /// 2025-11-25 `tasks` capability (`stateful`), else the Tasks
    /// extension under `extensions`.
    fn capabilities(&self, stateful: bool) -> serde_json::Map<String, Value> {
        let mut capabilities = serde_json::Map::new();
        for backend in self.backends().iter() {
            let Some(session) = backend.handle.session() else {
                continue;
            };
            let theirs = &session.capabilities;
            if stateful {
                if let Some(tasks) = theirs.extra.get("tasks") {
                    capabilities.entry("tasks").or_insert_with(|| tasks.clone());
                }
            } else if theirs
                .extra
                .get("extensions")
                .and_then(|e| e.get(mcp_protocol::mcp::tasks::EXTENSION))
                .is_some()
            {
                capabilities.insert(
                    "extensions".to_owned(),
                    json!({ (mcp_protocol::mcp::tasks::EXTENSION): {} }),
                );
            }
            let offered = [
                (
                    "tools",
                    theirs.tools.is_some(),
                    json!({"listChanged": true}),
                ),
                (
                    "prompts",
                    theirs.prompts.is_some(),
                    json!({"listChanged": true}),
                ),
                (
                    "resources",
                    theirs.resources.is_some(),
                    json!({"listChanged": true}),
                ),
                ("logging", theirs.logging.is_some(), json!({})),
                ("completions", theirs.completions.is_some(), json!({})),
            ];
            for (name, present, value) in offered {
                if present {
                    capabilities.entry(name).or_insert(value);
                }
            }
            // Sessions subscribe to resources (the gateway also bridges a
            // subscription to a stateless server's listen stream).
            let subscribes = theirs.resources.as_ref().and_then(|r| r.subscribe) == Some(true);
            if let (true, true, Some(Value::Object(resources))) =
                (stateful, subscribes, capabilities.get_mut("resources"))
            {
                resources.insert("subscribe".to_owned(), Value::Bool(true));
            }
        }
        capabilities
    }

    /// The answer to `server/discover` (2026-07-28).
    fn discover(&self) -> HandlerResult {
        Ok(Raw::from_value(&json!({
            "resultType": "complete",
            "supportedVersions": VersionSet::default().versions(),
            "capabilities": self.capabilities(false),
            "_meta": {mcp_protocol::mcp::meta_keys::SERVER_INFO: self.info},
            "ttlMs": 0,
            "cacheScope": "private",
        })))
    }

    fn initialize(&self, request: &Request<'static>) -> HandlerResult {
        let params =
            InitializeParams::from_params(request.params.clone()).map_err(|e| view_error(&e))?;
        let version = VersionSet::default()
            .answer_initialize(&params.protocol_version)
            .unwrap_or(ProtocolVersion::LATEST_STATEFUL);
        let capabilities = self.capabilities(true);
        Ok(Raw::from_value(&json!({
            "protocolVersion": version.as_str(),
            "capabilities": capabilities,
            "serverInfo": self.info,
        })))
    }
}

/// Announces, as `server`'s own, that its list of `method` changed: the
/// sessions are told as if the server had said it.
fn announce_list_change(runtime: &McpRuntime, server: ServerId, method: Method) {
    runtime.publish(ServerEvent {
        server,
        notification: Notification {
            method: Cow::Borrowed(method.as_str()),
            params: None,
        },
    });
}

impl McpServer for Gateway {
    fn handle_request(
        &self,
        request: Request<'static>,
        context: RequestContext,
    ) -> BoxFuture<'_, HandlerResult> {
        let span = request_span(&request);
        let handled = async move {
            match Method::from_name(&request.method) {
                Some(Method::Initialize) => self.initialize(&request),
                Some(Method::Ping) => Ok(Raw::from_value(&json!({}))),
                Some(Method::Discover) => self.discover(),
                Some(Method::ToolsList) => {
                    self.list(ListKind::Tools, request.params, &context).await
                }
                Some(Method::PromptsList) => {
                    self.list(ListKind::Prompts, request.params, &context).await
                }
                Some(Method::ResourcesList) => {
                    self.list(ListKind::Resources, request.params, &context)
                        .await
                }
                Some(Method::ResourceTemplatesList) => {
                    self.list(ListKind::ResourceTemplates, request.params, &context)
                        .await
                }
                Some(Method::ToolsCall) => self.call_tool(request, &context).await,
                Some(Method::PromptsGet) => self.get_prompt(request, &context).await,
                Some(
                    Method::ResourcesRead
                    | Method::ResourcesSubscribe
                    | Method::ResourcesUnsubscribe,
                ) => self.resource_request(request, &context).await,
                Some(Method::Complete) => self.complete(request, &context).await,
                Some(Method::SubscriptionsListen) => self.listen(request, &context).await,
                Some(
                    Method::TasksGet
                    | Method::TasksUpdate
                    | Method::TasksCancel
                    | Method::TasksResult,
                ) => self.task_request(request, &context).await,
                Some(Method::TasksList) => self.list_tasks(request, &context).await,
                Some(Method::SetLogLevel) => {
                    SetLevelParams::from_params(request.params.clone())
                        .map_err(|e| view_error(&e))?;
                    self.fan_out(&request.method, request.params).await
                }
                _ => Err(ErrorObject::new(
                    error_code::METHOD_NOT_FOUND,
                    format!("Method not found: {}", request.method),
                )),
            }
        };
        Box::pin(tracing::Instrument::instrument(handled, span))
    }

    fn handle_notification(
        &self,
        notification: Notification<'static>,
        context: RequestContext,
    ) -> BoxFuture<'_, ()> {
        let key = context.session();
        if notification.method == Method::Initialized.as_str() {
            if let Some(runtime) = &self.notifications {
                self.hub.join(runtime, Forwarder::new(context, key, None));
            }
        }
        // A client's roots changed: the per-client instances it has are
        // told (shared servers were never told of anyone's roots).
        if notification.method == Method::RootsListChanged.as_str()
            && let Some(key) = key
        {
            let backends = self.backends();
            return Box::pin(async move {
                for backend in backends.iter() {
                    backend
                        .handle
                        .notify_client(key, notification.clone())
                        .await;
                }
            });
        }
        Box::pin(async {})
    }
}

/// Shared ownership for downstream transports.
impl From<Gateway> for Arc<dyn McpServer> {
    fn from(gateway: Gateway) -> Self {
        Arc::new(gateway)
    }
}

#[cfg(test)]
mod tests;
