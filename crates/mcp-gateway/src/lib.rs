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
//! updates. The forwarding ends when the client goes away.
//!
//! # Invariants
//!
//! Architecture invariant: the gateway sees servers only as
//! `mcp_runtime::ServerHandle`s and clients only as `RequestContext`s; it
//! never reaches an HTTP server, the plugins or pyo3, and it never parses a
//! `result` it forwards.
#![forbid(unsafe_code)]

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::task::Poll;
use std::time::Duration;

use mcp_core::config::ToolFilter;
use mcp_core::{BoxFuture, HandlerResult, McpServer, RequestContext, ServerId};
use mcp_protocol::jsonrpc::error_code;
use mcp_protocol::mcp::{
    CallToolParams, CompleteParams, CompletionTarget, GetPromptParams, InitializeParams, Method,
    PaginatedParams, RequestMeta, RequestParams, ResourceRequestParams, SetLevelParams,
    SubscriptionFilter, SubscriptionsListenParams, View,
};
use mcp_protocol::raw::{Raw, RawObject};
use mcp_protocol::{ErrorObject, Notification, ProtocolVersion, Request, RequestId, VersionSet};
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use mcp_runtime::{CallOptions, ListKind, McpRuntime, ServerEvent, ServerHandle};

mod bridge;

/// Locks `mutex`, taking the data of a poisoned one as it is: the critical
/// sections here are short and leave their data whole.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One server behind the gateway.
#[derive(Clone, Debug)]
pub struct Backend {
    /// The deployed server.
    pub handle: ServerHandle,
    /// The prefix of its tools' and prompts' names; empty for none.
    pub namespace: String,
    /// Which of its tools are exposed.
    pub tools: ToolFilter,
}

/// The backends at one moment, in priority order.
type Backends = Arc<[Arc<Backend>]>;

/// Many servers as one.
pub struct Gateway {
    /// The backends now; replaced whole when they change
    /// ([`Gateway::set_backends`]), so a request works on one snapshot.
    backends: Arc<RwLock<Backends>>,
    separator: String,
    info: Value,
    notifications: Option<McpRuntime>,
    page_size: usize,
    /// The merged lists, rebuilt when a backend's list changes.
    catalogs: Mutex<HashMap<ListKind, Arc<Catalog>>>,
    /// Resources listed in the gateway's own form (`mcp-manager://SERVER/URI`)
    /// because another server offers the same URI: by server and own URI.
    renamed_resources: Arc<Mutex<HashSet<(ServerId, String)>>>,
    /// The client sessions' resource subscriptions.
    subscriptions: Arc<Mutex<Subscriptions>>,
    /// Backend calls waiting for a stateless client's answers.
    parked: bridge::ParkedCalls,
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

/// An exposed item and where it comes from.
struct Entry {
    backend: Arc<Backend>,
    /// The item's name (or URI) on its own server.
    original: String,
    /// The item as listed, with its exposed name.
    item: Raw<'static>,
    /// Whether the exposed name differs from the original.
    renamed: bool,
}

/// One merged list, and what it was made from.
struct Catalog {
    /// The backends it was built over.
    backends: Backends,
    /// Per backend, the list this was built from; `None` for a backend
    /// that was left out.
    sources: Vec<Option<Arc<[Raw<'static>]>>>,
    /// The items by exposed name, in backend order.
    entries: Vec<(String, Entry)>,
    /// Exposed name to position in `entries`.
    index: HashMap<String, usize>,
    /// A fingerprint of the exposed names, for cursors.
    fingerprint: u64,
}

impl Catalog {
    /// Whether this catalog was built from exactly `lists` of `backends`.
    fn built_from(
        &self,
        backends: &Backends,
        lists: &[mcp_runtime::Result<Arc<[Raw<'static>]>>],
    ) -> bool {
        Arc::ptr_eq(&self.backends, backends)
            && self.sources.len() == lists.len()
            && self
                .sources
                .iter()
                .zip(lists)
                .all(|(source, list)| match (source, list) {
                    (Some(source), Ok(list)) => Arc::ptr_eq(source, list),
                    (None, Err(_)) => true,
                    _ => false,
                })
    }

    fn find(&self, exposed: &str) -> Option<&Entry> {
        let position = *self.index.get(exposed)?;
        self.entries.get(position).map(|(_, entry)| entry)
    }
}

/// Sends a request to a backend: what it asks of the client goes to
/// `requester`, its progress to `progress_to`.
async fn call_backend(
    handle: &ServerHandle,
    method: &str,
    params: Raw<'static>,
    requester: RequestContext,
    progress_to: &RequestContext,
) -> HandlerResult {
    let (sink, mut progress) = mpsc::channel::<Notification<'static>>(64);
    let options = CallOptions {
        progress: Some(sink),
        requester: Some(requester),
        ..CallOptions::default()
    };
    let request = handle.request(method.to_owned(), Some(params), options);
    tokio::pin!(request);
    loop {
        tokio::select! {
            result = &mut request => {
                while let Ok(notification) = progress.try_recv() {
                    progress_to.notify(notification).await;
                }
                return result.map_err(|error| error.to_error_object());
            }
            Some(notification) = progress.recv() => progress_to.notify(notification).await,
        }
    }
}

/// The `requestState` and `inputResponses` a request carries.
fn continuation(params: &Raw<'_>) -> (Option<String>, serde_json::Map<String, Value>) {
    if !params.get().contains("requestState") {
        return (None, serde_json::Map::new());
    }
    let Ok(object) = RawObject::from_cow(params.reborrow()) else {
        return (None, serde_json::Map::new());
    };
    let state = object
        .get("requestState")
        .and_then(|raw| Raw::borrowed(raw).into_str())
        .map(Cow::into_owned);
    let responses = match object
        .get("inputResponses")
        .and_then(|raw| serde_json::from_str::<Value>(raw.get()).ok())
    {
        Some(Value::Object(responses)) => responses,
        _ => serde_json::Map::new(),
    };
    (state, responses)
}

/// The `_meta` members of the 2026-07-28 request envelope.
const ENVELOPE: [&str; 4] = [
    mcp_protocol::mcp::meta_keys::PROTOCOL_VERSION,
    mcp_protocol::mcp::meta_keys::CLIENT_CAPABILITIES,
    mcp_protocol::mcp::meta_keys::CLIENT_INFO,
    mcp_protocol::mcp::meta_keys::LOG_LEVEL,
];

/// `params` without the members of the 2026-07-28 envelope in `_meta` (and
/// without `_meta` when nothing else is left in it).
fn without_envelope(params: Raw<'static>) -> Raw<'static> {
    let Ok(mut object) = RawObject::from_cow(params.reborrow()) else {
        return params;
    };
    let Some(Ok(mut meta)) = object.remove("_meta").map(RawObject::from_cow) else {
        return params;
    };
    for key in ENVELOPE {
        meta.remove(key);
    }
    if !meta.is_empty() {
        object.insert("_meta", Raw::owned(meta.to_raw()));
    }
    Raw::owned(object.to_raw())
}

/// How many rounds of `input_required` the gateway answers for a client of
/// a stateful session before it gives up.
const MAX_INPUT_ROUNDS: usize = 8;

/// A backend's result as a 2026-07-28 client must get it: with
/// `resultType` (a stateful backend sends none: its results are complete)
/// and, for a read, the caching hints (none: not to be cached). Members
/// already there are kept; the rest of the result is not parsed.
fn as_stateless_result(method: &str, result: Raw<'static>) -> Raw<'static> {
    let read = method == Method::ResourcesRead.as_str();
    if result.get().contains("\"resultType\"") && !read {
        return result;
    }
    let Ok(mut object) = RawObject::from_cow(result.reborrow()) else {
        return result;
    };
    let mut missing = vec![("resultType", Raw::from_value("complete"))];
    if read {
        missing.push(("ttlMs", Raw::from_value(&0)));
        missing.push(("cacheScope", Raw::from_value("private")));
    }
    let mut changed = false;
    for (key, value) in missing {
        if !object.contains_key(key) {
            object.insert(key, value);
            changed = true;
        }
    }
    if changed {
        Raw::owned(object.to_raw())
    } else {
        result
    }
}

/// The `inputRequests` and `requestState` of an `input_required` result.
fn input_required(
    result: &Raw<'static>,
) -> Option<(serde_json::Map<String, Value>, Option<Value>)> {
    let Ok(Value::Object(mut result)) = serde_json::from_str::<Value>(result.get()) else {
        return None;
    };
    if result.get("resultType").and_then(Value::as_str) != Some("input_required") {
        return None;
    }
    let Some(Value::Object(requests)) = result.remove("inputRequests") else {
        return None;
    };
    Some((requests, result.remove("requestState")))
}

/// Whether a request with `params` is a stateless (2026-07-28) one.
fn params_are_stateless(params: &Raw<'_>) -> bool {
    params.get().contains("protocolVersion")
        && RequestParams::from_params(Some(params.reborrow()))
            .ok()
            .and_then(|params| params.meta)
            .is_some_and(|meta| meta.is_stateless())
}

/// The scheme of the gateway's own resource URIs,
/// `mcp-manager://SERVER/URI`: the resource `URI` of server `SERVER`.
pub const SERVER_URI_SCHEME: &str = "mcp-manager://";

/// `uri` of server `server` in the gateway's own form.
#[must_use]
pub fn server_uri(server: &ServerId, uri: &str) -> String {
    format!("{SERVER_URI_SCHEME}{server}/{uri}")
}

/// The server and its own URI, for a URI in the gateway's own form.
fn split_server_uri(uri: &str) -> Option<(&str, &str)> {
    uri.strip_prefix(SERVER_URI_SCHEME)?.split_once('/')
}

/// A `resources/read` result with `contents[].uri` of `original` shown as
/// `exposed`, the URI the client asked for. Only read results of renamed
/// resources come here, so the parse costs nothing on the common path.
fn rename_contents(result: Raw<'static>, original: &str, exposed: &str) -> Raw<'static> {
    let Ok(mut value) = serde_json::from_str::<Value>(result.get()) else {
        return result;
    };
    let Some(contents) = value.get_mut("contents").and_then(Value::as_array_mut) else {
        return result;
    };
    for item in contents {
        if let Some(uri) = item.get_mut("uri") {
            if uri.as_str() == Some(original) {
                *uri = Value::from(exposed);
            }
        }
    }
    Raw::from_value(&value)
}

/// Runs `futures` side by side on the calling task; their outputs in order.
async fn join_all<F: Future>(futures: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut pending: Vec<Pin<Box<F>>> = futures.map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = pending.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut waiting = false;
        for (future, output) in pending.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    Poll::Ready(value) => *output = Some(value),
                    Poll::Pending => waiting = true,
                }
            }
        }
        if waiting {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}

fn invalid_params(message: impl Into<Cow<'static, str>>) -> ErrorObject<'static> {
    ErrorObject::new(error_code::INVALID_PARAMS, message)
}

fn view_error(error: &mcp_protocol::Error) -> ErrorObject<'static> {
    ErrorObject::new(error.code(), error.message().to_owned())
}

impl Gateway {
    /// A gateway over `backends`, in priority order: on a name clash the
    /// earlier backend wins. `separator` joins a namespace and a name.
    #[must_use]
    pub fn new(backends: Vec<Backend>, separator: impl Into<String>) -> Self {
        Self {
            backends: Arc::new(RwLock::new(backends.into_iter().map(Arc::new).collect())),
            separator: separator.into(),
            info: json!({"name": "mcp-manager", "version": env!("CARGO_PKG_VERSION")}),
            notifications: None,
            page_size: DEFAULT_PAGE_SIZE,
            catalogs: Mutex::new(HashMap::new()),
            renamed_resources: Arc::default(),
            subscriptions: Arc::default(),
            parked: bridge::ParkedCalls::default(),
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

    /// The backends now.
    fn backends(&self) -> Backends {
        self.backends
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The ids of the servers behind the gateway, in priority order.
    #[must_use]
    pub fn servers(&self) -> Vec<ServerId> {
        self.backends()
            .iter()
            .map(|b| b.handle.id().clone())
            .collect()
    }

    /// Serves `backends` from now on, in priority order: requests under
    /// way finish on the servers they started on, new ones see the new
    /// set. The merged lists are built anew, resource subscriptions of
    /// servers that left are forgotten, and (with notifications on) every
    /// client session is told its lists changed.
    pub fn set_backends(&self, backends: Vec<Backend>) {
        let new: Backends = backends.into_iter().map(Arc::new).collect();
        let old = std::mem::replace(
            &mut *self
                .backends
                .write()
                .unwrap_or_else(PoisonError::into_inner),
            new.clone(),
        );
        lock(&self.catalogs).clear();
        let kept: HashSet<&ServerId> = new.iter().map(|b| b.handle.id()).collect();
        let mut changed: Vec<ServerId> = Vec::new();
        for backend in old.iter() {
            let id = backend.handle.id();
            if !kept.contains(id) {
                lock(&self.subscriptions).forget_server(id);
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
                    runtime.publish(ServerEvent {
                        server: server.clone(),
                        notification: Notification {
                            method: Cow::Borrowed(method.as_str()),
                            params: None,
                        },
                    });
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

    /// Every item of `kind` over all backends, keyed by exposed name (URI
    /// for resources), in backend order. Built once per change of any
    /// backend's list and shared until the next one.
    async fn catalog(&self, kind: ListKind) -> Arc<Catalog> {
        let backends = self.backends();
        let lists = join_all(backends.iter().map(|backend| backend.handle.list_all(kind))).await;
        if let Some(cached) = lock(&self.catalogs).get(&kind) {
            if cached.built_from(&backends, &lists) {
                return cached.clone();
            }
        }
        let catalog = Arc::new(self.build_catalog(kind, &backends, &lists));
        if kind == ListKind::Resources {
            let mut renamed = lock(&self.renamed_resources);
            renamed.clear();
            for entry in catalog.entries.iter().map(|(_, e)| e) {
                if entry.renamed {
                    renamed.insert((entry.backend.handle.id().clone(), entry.original.clone()));
                }
            }
        }
        lock(&self.catalogs).insert(kind, catalog.clone());
        catalog
    }

    fn build_catalog(
        &self,
        kind: ListKind,
        backends: &Backends,
        lists: &[mcp_runtime::Result<Arc<[Raw<'static>]>>],
    ) -> Catalog {
        let key = match kind {
            ListKind::Tools | ListKind::Prompts => "name",
            ListKind::Resources => "uri",
            ListKind::ResourceTemplates => "uriTemplate",
        };
        let mut seen: HashMap<String, ServerId> = HashMap::new();
        let mut entries = Vec::new();
        for (backend, list) in backends.iter().zip(lists) {
            let items = match list {
                Ok(items) => items,
                Err(error) => {
                    tracing::warn!(server = %backend.handle.id(), "left out of `{}`: {error}", kind.method());
                    continue;
                }
            };
            for item in items.iter() {
                let Ok(mut object) = RawObject::from_cow(item.reborrow()) else {
                    continue;
                };
                let Some(original) = object
                    .get(key)
                    .and_then(|raw| Raw::borrowed(raw).into_str())
                    .map(Cow::into_owned)
                else {
                    continue;
                };
                if kind == ListKind::Tools && !backend.tools.permits(&original) {
                    continue;
                }
                let by_name = matches!(kind, ListKind::Tools | ListKind::Prompts);
                let mut exposed = if by_name {
                    self.exposed(backend, &original)
                } else {
                    original.clone()
                };
                if let Some(first) = seen.get(&exposed) {
                    if by_name {
                        tracing::warn!(
                            server = %backend.handle.id(),
                            "`{exposed}` clashes with the one of server `{first}` and is left out; give one of them a `namespace`"
                        );
                        continue;
                    }
                    // A URI is an address that also appears in content and
                    // links, so it is kept as it is where it can be; the
                    // later server's copy gets the gateway's own form.
                    let renamed = server_uri(backend.handle.id(), &original);
                    tracing::warn!(
                        server = %backend.handle.id(),
                        "`{exposed}` is offered by server `{first}` too; this one is listed as `{renamed}`"
                    );
                    exposed = renamed;
                    if seen.contains_key(&exposed) {
                        continue;
                    }
                }
                seen.insert(exposed.clone(), backend.handle.id().clone());
                let renamed = exposed != original;
                if renamed {
                    object.insert(key, Raw::from_value(&exposed));
                }
                let item = Raw::owned(object.to_raw());
                entries.push((
                    exposed,
                    Entry {
                        backend: backend.clone(),
                        original,
                        item,
                        renamed,
                    },
                ));
            }
        }
        let index = entries
            .iter()
            .enumerate()
            .map(|(position, (name, _))| (name.clone(), position))
            .collect();
        let fingerprint = fingerprint(entries.iter().map(|(name, _)| name.as_str()));
        Catalog {
            backends: backends.clone(),
            sources: lists.iter().map(|l| l.as_ref().ok().cloned()).collect(),
            entries,
            index,
            fingerprint,
        }
    }

    /// One page of the merged list. The cursor is opaque to clients: the
    /// offset of the page and a fingerprint of the list it was cut from, so
    /// a cursor from a list that has changed since is refused.
    async fn list(&self, kind: ListKind, params: Option<Raw<'static>>) -> HandlerResult {
        let params = PaginatedParams::from_params(params).map_err(|e| view_error(&e))?;
        let catalog = self.catalog(kind).await;
        let fingerprint = catalog.fingerprint;
        let start = match params.cursor.as_deref() {
            None => 0,
            Some(cursor) => parse_cursor(cursor, fingerprint)
                .ok_or_else(|| invalid_params("Invalid cursor: the list changed or the cursor is not ours; list again from the start"))?,
        };
        let total = catalog.entries.len();
        let end = start.saturating_add(self.page_size).min(total);
        let items: Vec<&Raw<'static>> = catalog
            .entries
            .iter()
            .skip(start)
            .take(end.saturating_sub(start))
            .map(|(_, e)| &e.item)
            .collect();
        let mut result = serde_json::Map::new();
        result.insert(kind.key().to_owned(), json!(items));
        if end < total {
            result.insert(
                "nextCursor".to_owned(),
                json!(format!("{end:x}.{fingerprint:x}")),
            );
        }
        if params.meta.as_ref().is_some_and(RequestMeta::is_stateless) {
            // 2026-07-28 results say what they are and how long they keep.
            // A merged list changes whenever any server's does: not cached.
            result.insert("resultType".to_owned(), json!("complete"));
            result.insert("ttlMs".to_owned(), json!(0));
            result.insert("cacheScope".to_owned(), json!("private"));
        }
        Ok(Raw::from_value(&result))
    }

    /// Where the item exposed as `name` in the list of `kind` comes from:
    /// its backend and its own name.
    async fn find(&self, kind: ListKind, name: &str) -> Option<(Arc<Backend>, String)> {
        let catalog = self.catalog(kind).await;
        let entry = catalog.find(name)?;
        Some((entry.backend.clone(), entry.original.clone()))
    }

    /// Sends a request to a backend and answers with its result, bridging
    /// protocol versions (see the table in ARCHITECTURE.md): a stateless
    /// (2026-07-28) client gets 2026-07-28 results, and a session-bound
    /// backend's requests to it come back as `input_required` (see
    /// [`Gateway::bridged`]); when a stateless backend answers a client of a
    /// stateful session with `input_required`, the questions go to the
    /// client as real requests and the request is sent again with the
    /// answers, round after round, so the client sees one ordinary result.
    async fn forward(
        &self,
        backend: &Backend,
        method: &str,
        mut params: Raw<'static>,
        context: &RequestContext,
    ) -> HandlerResult {
        if params_are_stateless(&params) {
            let session_bound = backend
                .handle
                .session()
                .is_some_and(|s| s.protocol_version.is_stateful());
            if session_bound {
                // A server in a session takes no 2026-07-28 envelope (some
                // refuse it): it gets the request as its own clients send it.
                return self
                    .bridged(backend, method, without_envelope(params), context)
                    .await;
            }
            let result = self.forward_once(backend, method, params, context).await?;
            return Ok(as_stateless_result(method, result));
        }
        for _ in 0..MAX_INPUT_ROUNDS {
            let result = self
                .forward_once(backend, method, params.clone(), context)
                .await?;
            if !result.get().contains("input_required") {
                return Ok(result);
            }
            let Some(questions) = input_required(&result) else {
                return Ok(result);
            };
            let (requests, state) = questions;
            let mut object = RawObject::from_cow(params)
                .map_err(|_| invalid_params("`params` must be an object"))?;
            context
                .answer_input_required(&mut object, &requests, state.as_ref())
                .await?;
            params = Raw::owned(object.to_raw());
        }
        Err(ErrorObject::new(
            error_code::INTERNAL_ERROR,
            format!("`{method}` still needed input after {MAX_INPUT_ROUNDS} rounds"),
        ))
    }

    async fn forward_once(
        &self,
        backend: &Backend,
        method: &str,
        params: Raw<'static>,
        context: &RequestContext,
    ) -> HandlerResult {
        call_backend(&backend.handle, method, params, context.clone(), context).await
    }

    /// A stateless client's request to a stateful backend; see
    /// [`bridge`]. A `requestState` of the gateway's continues the call it
    /// names with the client's `inputResponses`; otherwise a new call starts.
    async fn bridged(
        &self,
        backend: &Backend,
        method: &str,
        params: Raw<'static>,
        context: &RequestContext,
    ) -> HandlerResult {
        let (state, responses) = continuation(&params);
        let resumed = state.as_deref().and_then(|state| self.parked.take(state));
        let mut call = match resumed {
            Some(parked) => {
                let mut parked = parked?;
                parked.answer(&responses);
                parked
            }
            None => {
                let handle = backend.handle.clone();
                let (events, receiver) = mpsc::channel(16);
                let requester = bridge::requester(events.clone());
                let (method, progress_to) = (method.to_owned(), context.clone());
                let task = tokio::spawn(async move {
                    let result =
                        call_backend(&handle, &method, params, requester, &progress_to).await;
                    let _ = events.send(bridge::Bridged::Done(result)).await;
                });
                bridge::Parked::new(receiver, task.abort_handle())
            }
        };
        loop {
            if !call.open.is_empty() {
                let state = self.parked.new_state();
                let asked = call.input_required(&state);
                self.parked.park(&state, call);
                return Ok(asked);
            }
            let event = call.events.recv().await;
            match event {
                Some(bridge::Bridged::Asked {
                    key,
                    request,
                    answer,
                }) => {
                    call.open.insert(key, (request, answer));
                    // Questions asked at the same moment go out together.
                    tokio::task::yield_now().await;
                    while let Ok(more) = call.events.try_recv() {
                        match more {
                            bridge::Bridged::Asked {
                                key,
                                request,
                                answer,
                            } => {
                                call.open.insert(key, (request, answer));
                            }
                            bridge::Bridged::Done(result) => {
                                return result.map(|r| as_stateless_result(method, r));
                            }
                        }
                    }
                }
                Some(bridge::Bridged::Done(result)) => {
                    return result.map(|r| as_stateless_result(method, r));
                }
                None => {
                    return Err(ErrorObject::new(
                        error_code::INTERNAL_ERROR,
                        "the backend's call ended without an answer",
                    ));
                }
            }
        }
    }

    async fn call_tool(
        &self,
        request: Request<'static>,
        context: &RequestContext,
    ) -> HandlerResult {
        let mut params = CallToolParams::from_params(request.params).map_err(|e| view_error(&e))?;
        let (backend, original) = self
            .find(ListKind::Tools, &params.name)
            .await
            .ok_or_else(|| invalid_params(format!("Unknown tool: {}", params.name)))?;
        params.name = Cow::Owned(original);
        self.forward(&backend, &request.method, params.to_raw(), context)
            .await
    }

    async fn get_prompt(
        &self,
        request: Request<'static>,
        context: &RequestContext,
    ) -> HandlerResult {
        let mut params =
            GetPromptParams::from_params(request.params).map_err(|e| view_error(&e))?;
        let (backend, original) = self
            .find(ListKind::Prompts, &params.name)
            .await
            .ok_or_else(|| invalid_params(format!("Unknown prompt: {}", params.name)))?;
        params.name = Cow::Owned(original);
        self.forward(&backend, &request.method, params.to_raw(), context)
            .await
    }

    /// The backend for a resource URI, and the URI on that backend: the
    /// server named by the gateway's own form (`mcp-manager://SERVER/URI`),
    /// else the one that lists it, else the first whose template's literal
    /// prefix it starts with.
    async fn resource_backend(&self, uri: &str) -> Option<(Arc<Backend>, String)> {
        if let Some((server, original)) = split_server_uri(uri) {
            let backend = self
                .backends()
                .iter()
                .find(|b| b.handle.id().as_str() == server)?
                .clone();
            return Some((backend, original.to_owned()));
        }
        if let Some(found) = self.find(ListKind::Resources, uri).await {
            return Some(found);
        }
        self.catalog(ListKind::ResourceTemplates)
            .await
            .entries
            .iter()
            .find(|(_, entry)| {
                uri.starts_with(entry.original.split('{').next().unwrap_or_default())
            })
            .map(|(_, entry)| (entry.backend.clone(), uri.to_owned()))
    }

    async fn resource_request(
        &self,
        request: Request<'static>,
        context: &RequestContext,
    ) -> HandlerResult {
        let mut params =
            ResourceRequestParams::from_params(request.params).map_err(|e| view_error(&e))?;
        let (backend, original) = self.resource_backend(&params.uri).await.ok_or_else(|| {
            ErrorObject::new(
                error_code::RESOURCE_NOT_FOUND,
                format!("Resource not found: {}", params.uri),
            )
        })?;
        let server = backend.handle.id();
        if let Some(answer) = self.shared_subscription(&request.method, server, &original, context)
        {
            return answer;
        }
        let exposed = std::mem::replace(&mut params.uri, Cow::Owned(original));
        let result = self
            .forward(&backend, &request.method, params.to_raw(), context)
            .await;
        match result {
            Ok(result) if exposed != params.uri => {
                Ok(rename_contents(result, &params.uri, &exposed))
            }
            Ok(result) => Ok(result),
            Err(error) => {
                // A subscription the backend refused is not held.
                if let (Some(session), Some(Method::ResourcesSubscribe)) =
                    (context.session(), Method::from_name(&request.method))
                {
                    lock(&self.subscriptions).unsubscribe(session, server, &params.uri);
                }
                Err(error)
            }
        }
    }

    fn forwarder(
        &self,
        context: RequestContext,
        key: Option<u64>,
        listen: Option<(SubscriptionFilter, RequestId<'static>)>,
    ) -> Forwarder {
        Forwarder {
            context,
            backends: self.backends.clone(),
            renamed: self.renamed_resources.clone(),
            subscriptions: self.subscriptions.clone(),
            release: key.map(|key| Release {
                key,
                subscriptions: self.subscriptions.clone(),
                backends: self.backends.clone(),
            }),
            listen,
        }
    }

    /// `subscriptions/listen` (2026-07-28): acknowledges what it will send
    /// (the list changes asked for, and updates of the resources asked for
    /// that some server has and agreed to watch), then sends it, tagged
    /// with the request's id, until the request is cancelled or the client
    /// goes away.
    async fn listen(&self, request: Request<'static>, context: &RequestContext) -> HandlerResult {
        let Some(runtime) = &self.notifications else {
            return Err(ErrorObject::new(
                error_code::METHOD_NOT_FOUND,
                "this gateway forwards no notifications",
            ));
        };
        let params = SubscriptionsListenParams::from_params(request.params.clone())
            .map_err(|e| view_error(&e))?;
        let requested = params.notifications;
        let key = mcp_core::next_session_key();
        let forwarder = self.forwarder(context.clone(), Some(key), None);
        let mut watched = Vec::new();
        for uri in requested.resource_subscriptions.iter().flatten() {
            let Some((backend, original)) = self.resource_backend(uri).await else {
                continue;
            };
            let server = backend.handle.id();
            if lock(&self.subscriptions).subscribe(key, server, &original) {
                let subscribe = Raw::from_value(&json!({ "uri": original }));
                let asked = self
                    .forward_once(
                        &backend,
                        Method::ResourcesSubscribe.as_str(),
                        subscribe,
                        context,
                    )
                    .await;
                if asked.is_err() {
                    lock(&self.subscriptions).unsubscribe(key, server, &original);
                    continue;
                }
            }
            watched.push(uri.clone());
        }
        let only_true = |flag: Option<bool>| flag.filter(|on| *on);
        let honoured = SubscriptionFilter {
            tools_list_changed: only_true(requested.tools_list_changed),
            prompts_list_changed: only_true(requested.prompts_list_changed),
            resources_list_changed: only_true(requested.resources_list_changed),
            resource_subscriptions: requested.resource_subscriptions.as_ref().map(|_| watched),
            extra: serde_json::Map::new(),
        };
        let forwarder = Forwarder {
            listen: Some((honoured.clone(), request.id.clone())),
            ..forwarder
        };
        let events = runtime.subscribe();
        forwarder
            .send(Notification {
                method: Cow::Borrowed(Method::SubscriptionsAcknowledged.as_str()),
                params: Some(Raw::from_value(&json!({ "notifications": honoured }))),
            })
            .await;
        forwarder.run(events).await;
        Err(ErrorObject::new(
            error_code::INTERNAL_ERROR,
            "the gateway is stopping",
        ))
    }

    /// Keeps count of the client sessions' resource subscriptions: a
    /// subscription another session already holds, or an unsubscription
    /// that leaves others holding it, is answered here; the rest go to the
    /// backend (`None`).
    fn shared_subscription(
        &self,
        method: &str,
        backend: &ServerId,
        uri: &str,
        context: &RequestContext,
    ) -> Option<HandlerResult> {
        let session = context.session()?;
        let mut subscriptions = lock(&self.subscriptions);
        let upstream = match Method::from_name(method) {
            Some(Method::ResourcesSubscribe) => subscriptions.subscribe(session, backend, uri),
            Some(Method::ResourcesUnsubscribe) => subscriptions.unsubscribe(session, backend, uri),
            _ => return None,
        };
        (!upstream).then(|| Ok(Raw::from_value(&json!({}))))
    }

    async fn complete(&self, request: Request<'static>, context: &RequestContext) -> HandlerResult {
        let mut params = CompleteParams::from_params(request.params).map_err(|e| view_error(&e))?;
        let backend = match params.reference.target() {
            Some(CompletionTarget::Prompt(name)) => {
                let (backend, original) = self
                    .find(ListKind::Prompts, name)
                    .await
                    .ok_or_else(|| invalid_params(format!("Unknown prompt: {name}")))?;
                params.reference.name = Some(Cow::Owned(original));
                backend
            }
            Some(CompletionTarget::ResourceTemplate(uri)) => {
                let (backend, original) = self
                    .find(ListKind::ResourceTemplates, uri)
                    .await
                    .ok_or_else(|| invalid_params(format!("Unknown resource template: {uri}")))?;
                params.reference.uri = Some(Cow::Owned(original));
                backend
            }
            None => {
                return Err(invalid_params(
                    "`ref` must be a `ref/prompt` or a `ref/resource`",
                ));
            }
        };
        self.forward(&backend, &request.method, params.to_raw(), context)
            .await
    }

    /// Sends a request to every backend side by side; a backend's error
    /// (a server that is down, say) is logged, not the client's business.
    async fn fan_out(&self, method: &str, params: Option<Raw<'static>>) -> HandlerResult {
        let backends = self.backends();
        let results = join_all(backends.iter().map(|backend| {
            backend
                .handle
                .request(method.to_owned(), params.clone(), CallOptions::default())
        }))
        .await;
        for (backend, result) in backends.iter().zip(results) {
            if let Err(error) = result {
                tracing::warn!(server = %backend.handle.id(), "`{method}` failed: {error}");
            }
        }
        Ok(Raw::from_value(&json!({})))
    }

    /// What the gateway offers: what any of its running servers offers.
    fn capabilities(&self) -> serde_json::Map<String, Value> {
        let mut capabilities = serde_json::Map::new();
        for backend in self.backends().iter() {
            let Some(session) = backend.handle.session() else {
                continue;
            };
            let theirs = &session.capabilities;
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
                    capabilities.insert(name.to_owned(), value);
                }
            }
        }
        capabilities
    }

    /// The answer to `server/discover` (2026-07-28).
    fn discover(&self) -> HandlerResult {
        Ok(Raw::from_value(&json!({
            "resultType": "complete",
            "supportedVersions": [ProtocolVersion::V2026_07_28.as_str()],
            "capabilities": self.capabilities(),
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
        let capabilities = self.capabilities();
        Ok(Raw::from_value(&json!({
            "protocolVersion": version.as_str(),
            "capabilities": capabilities,
            "serverInfo": self.info,
        })))
    }
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
                Some(Method::ToolsList) => self.list(ListKind::Tools, request.params).await,
                Some(Method::PromptsList) => self.list(ListKind::Prompts, request.params).await,
                Some(Method::ResourcesList) => self.list(ListKind::Resources, request.params).await,
                Some(Method::ResourceTemplatesList) => {
                    self.list(ListKind::ResourceTemplates, request.params).await
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
        if notification.method == Method::Initialized.as_str() {
            if let Some(runtime) = &self.notifications {
                let key = context.session();
                let forwarder = self.forwarder(context, key, None);
                tokio::spawn(forwarder.run(runtime.subscribe()));
            }
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

/// How long a burst of list changes is collected before it is announced.
const DEBOUNCE: Duration = Duration::from_millis(50);

/// What one client session (or one `subscriptions/listen` stream) is told
/// of what the servers announce.
struct Forwarder {
    context: RequestContext,
    /// The gateway's backends, whose events are this client's business.
    backends: Arc<RwLock<Backends>>,
    renamed: Arc<Mutex<HashSet<(ServerId, String)>>>,
    subscriptions: Arc<Mutex<Subscriptions>>,
    /// The key its resource subscriptions are held under (`None`: a
    /// transport that cannot tell sessions apart, which gets every update);
    /// given up when the forwarder goes.
    release: Option<Release>,
    /// For a `subscriptions/listen` stream: what it asked for, and the id
    /// every notification on it is tagged with.
    listen: Option<(SubscriptionFilter, RequestId<'static>)>,
}

impl Forwarder {
    /// Forwards until the client is gone or the runtime stops.
    async fn run(self, mut events: broadcast::Receiver<ServerEvent>) {
        let mut changed: Vec<Method> = Vec::new();
        loop {
            // Wake now and then to notice a client that has gone quiet for good.
            let next = tokio::time::timeout(Duration::from_secs(1), events.recv()).await;
            if self.context.is_closed() {
                break;
            }
            let event = match next {
                Ok(Ok(event)) => event,
                Ok(Err(broadcast::error::RecvError::Lagged(missed))) => {
                    tracing::warn!(
                        "a client session missed {missed} server notifications; announcing every list as changed"
                    );
                    changed.extend(LIST_CHANGES);
                    self.announce(&mut changed).await;
                    continue;
                }
                Ok(Err(broadcast::error::RecvError::Closed)) => break,
                Err(_) => continue,
            };
            if list_change(&event).is_none() {
                self.forward(event).await;
                continue;
            }
            // Collect a burst of list changes into one announcement each;
            // whatever else comes meanwhile is forwarded after it.
            let mut others = Vec::new();
            changed.extend(list_change(&event));
            tokio::time::sleep(DEBOUNCE).await;
            // A list change of any server counts, one that has just left
            // the gateway too: its items have gone from the merged list.
            while let Ok(more) = events.try_recv() {
                match list_change(&more) {
                    Some(method) => changed.push(method),
                    None => others.push(more),
                }
            }
            self.announce(&mut changed).await;
            for other in others {
                self.forward(other).await;
            }
        }
    }

    /// Sends one notification per list in `changed` that is wanted, and
    /// clears it.
    async fn announce(&self, changed: &mut Vec<Method>) {
        changed.sort_by_key(|m| m.as_str());
        changed.dedup();
        for method in changed.drain(..) {
            if let Some((filter, _)) = &self.listen {
                let wanted = match method {
                    Method::ToolListChanged => filter.tools_list_changed,
                    Method::PromptListChanged => filter.prompts_list_changed,
                    _ => filter.resources_list_changed,
                };
                if wanted != Some(true) {
                    continue;
                }
            }
            self.send(Notification {
                method: Cow::Borrowed(method.as_str()),
                params: None,
            })
            .await;
        }
    }

    /// Sends `notification`, tagged with the listen request's id on a
    /// `subscriptions/listen` stream.
    async fn send(&self, mut notification: Notification<'static>) {
        if let Some((_, id)) = &self.listen {
            notification.params = Some(tag(notification.params.take(), id));
        }
        self.context.notify(notification).await;
    }

    /// Forwards one event that is not a list change, if it is this
    /// client's business.
    async fn forward(&self, event: ServerEvent) {
        let known = self
            .backends
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .any(|b| *b.handle.id() == event.server);
        if !known {
            return;
        }
        match Method::from_name(&event.notification.method) {
            // Log messages belong to sessions; 2026-07-28 sends them with
            // the request they are about.
            Some(Method::LogMessage) if self.listen.is_none() => {
                self.context.notify(tag_log(&event)).await;
            }
            Some(Method::ResourceUpdated) if self.subscribed(&event) => {
                self.send(updated_as_listed(event, &self.renamed)).await;
            }
            _ => {}
        }
    }

    /// Whether this client subscribed to the resource an update is about
    /// (always, for a transport that cannot tell sessions apart).
    fn subscribed(&self, event: &ServerEvent) -> bool {
        let Some(release) = &self.release else {
            return true;
        };
        let uri = event
            .notification
            .params
            .clone()
            .and_then(|p| ResourceRequestParams::from_params(Some(p)).ok())
            .map(|p| p.uri.into_owned());
        uri.is_some_and(|uri| lock(&self.subscriptions).holds(release.key, &event.server, &uri))
    }
}

/// `params` with `_meta` naming the `subscriptions/listen` request they
/// belong to.
fn tag(params: Option<Raw<'static>>, id: &RequestId<'static>) -> Raw<'static> {
    let mut object = params
        .and_then(|p| RawObject::from_cow(p).ok())
        .unwrap_or_default();
    let mut meta = object
        .remove("_meta")
        .and_then(|m| RawObject::from_cow(m).ok())
        .unwrap_or_default();
    meta.insert(
        mcp_protocol::mcp::meta_keys::SUBSCRIPTION_ID,
        Raw::from_value(id),
    );
    object.insert("_meta", Raw::owned(meta.to_raw()));
    Raw::owned(object.to_raw())
}

/// The resource subscriptions held under one key, given up when this is
/// dropped: upstream, those no other key holds are unsubscribed.
struct Release {
    key: u64,
    subscriptions: Arc<Mutex<Subscriptions>>,
    /// The gateway's backends, to find the servers to tell.
    backends: Arc<RwLock<Backends>>,
}

impl Drop for Release {
    fn drop(&mut self) {
        let released = lock(&self.subscriptions).end_session(self.key);
        if released.is_empty() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let backends = self
            .backends
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        runtime.spawn(async move {
            for (server, uri) in released {
                let Some(handle) = backends
                    .iter()
                    .map(|b| &b.handle)
                    .find(|h| *h.id() == server)
                else {
                    continue;
                };
                let params = Raw::from_value(&json!({ "uri": uri }));
                let done = handle
                    .request(
                        Method::ResourcesUnsubscribe.as_str().to_owned(),
                        Some(params),
                        CallOptions::default(),
                    )
                    .await;
                if let Err(error) = done {
                    tracing::debug!(server = %handle.id(), "unsubscribing `{uri}` after its client left: {error}");
                }
            }
        });
    }
}

const LIST_CHANGES: [Method; 3] = [
    Method::ToolListChanged,
    Method::PromptListChanged,
    Method::ResourceListChanged,
];

/// The list an event says has changed, if it is a list change.
fn list_change(event: &ServerEvent) -> Option<Method> {
    Method::from_name(&event.notification.method).filter(|m| LIST_CHANGES.contains(m))
}

/// Which client sessions subscribed to which resources of which backends,
/// and how many sessions hold each subscription upstream: a backend is
/// asked to subscribe when the first session does and to unsubscribe when
/// the last one gives it up.
#[derive(Default)]
struct Subscriptions {
    by_session: HashMap<u64, HashSet<(ServerId, String)>>,
    holders: HashMap<(ServerId, String), usize>,
}

impl Subscriptions {
    /// Records that `session` subscribes; true when it is the first
    /// session to, so the backend must be asked.
    fn subscribe(&mut self, session: u64, backend: &ServerId, uri: &str) -> bool {
        let key = (backend.clone(), uri.to_owned());
        if !self
            .by_session
            .entry(session)
            .or_default()
            .insert(key.clone())
        {
            return false;
        }
        let holders = self.holders.entry(key).or_insert(0);
        *holders += 1;
        *holders == 1
    }

    /// Records that `session` unsubscribes; true when it was the last
    /// session to hold it, so the backend must be told.
    fn unsubscribe(&mut self, session: u64, backend: &ServerId, uri: &str) -> bool {
        let key = (backend.clone(), uri.to_owned());
        let held = self
            .by_session
            .get_mut(&session)
            .is_some_and(|subscribed| subscribed.remove(&key));
        held && self.release(key)
    }

    fn release(&mut self, key: (ServerId, String)) -> bool {
        match self.holders.get_mut(&key) {
            Some(holders) if *holders > 1 => {
                *holders -= 1;
                false
            }
            Some(_) => {
                self.holders.remove(&key);
                true
            }
            None => false,
        }
    }

    fn holds(&self, session: u64, backend: &ServerId, uri: &str) -> bool {
        self.by_session
            .get(&session)
            .is_some_and(|subscribed| subscribed.contains(&(backend.clone(), uri.to_owned())))
    }

    /// Forgets every subscription to `backend`, a server that has left.
    fn forget_server(&mut self, backend: &ServerId) {
        self.holders.retain(|(server, _), _| server != backend);
        for subscribed in self.by_session.values_mut() {
            subscribed.retain(|(server, _)| server != backend);
        }
    }

    /// Forgets `session`; the subscriptions nobody holds any more.
    fn end_session(&mut self, session: u64) -> Vec<(ServerId, String)> {
        let subscribed = self.by_session.remove(&session).unwrap_or_default();
        subscribed
            .into_iter()
            .filter(|key| self.release(key.clone()))
            .collect()
    }
}

/// A resource update with the URI the client knows the resource by.
fn updated_as_listed(
    event: ServerEvent,
    renamed: &Mutex<HashSet<(ServerId, String)>>,
) -> Notification<'static> {
    let mut notification = event.notification;
    let Some(mut params) = notification
        .params
        .clone()
        .and_then(|p| ResourceRequestParams::from_params(Some(p)).ok())
    else {
        return notification;
    };
    if lock(renamed).contains(&(event.server.clone(), params.uri.to_string())) {
        params.uri = Cow::Owned(server_uri(&event.server, &params.uri));
        notification.params = Some(params.to_raw());
    }
    notification
}

/// The span of a client request: continuing the client's trace, or a new
/// one; none for a request that is not sampled (see [`crate::observe`]).
fn request_span(request: &Request<'_>) -> tracing::Span {
    let make = || {
        tracing::info_span!(
            target: "mcp_gateway",
            "mcp.request",
            otel.name = %request.method,
            otel.kind = "server",
            rpc.method = %request.method,
        )
    };
    let Some(propagator) = mcp_runtime::observe::propagator() else {
        // Not traced: the span is only for logs, and free when they are off.
        return make();
    };
    match mcp_runtime::observe::trace_context_of(request.params.as_ref()) {
        Some(context) if context.sampled() => {
            let span = make();
            propagator.continue_trace(&span, &context);
            span
        }
        Some(_) => tracing::Span::none(),
        None if propagator.sample_root() => make(),
        None => tracing::Span::none(),
    }
}

/// A log message with its server in `logger` (`server` or `server/logger`).
fn tag_log(event: &ServerEvent) -> Notification<'static> {
    let mut notification = event.notification.clone();
    if let Some(mut params) = notification
        .params
        .take()
        .and_then(|p| RawObject::from_cow(p).ok())
    {
        let logger = params
            .get("logger")
            .and_then(|raw| Raw::borrowed(raw).into_str())
            .map(Cow::into_owned);
        let tagged = match logger {
            Some(logger) => format!("{}/{logger}", event.server),
            None => event.server.to_string(),
        };
        params.insert("logger", Raw::from_value(&tagged));
        notification.params = Some(Raw::owned(params.to_raw()));
    }
    notification
}

/// A fingerprint of a list's names, to tell whether a cursor belongs to it.
fn fingerprint<'a>(names: impl Iterator<Item = &'a str>) -> u64 {
    use std::hash::{Hash, Hasher};
    // A fixed hasher: cursors must survive across requests.
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    for name in names {
        name.hash(&mut hasher);
    }
    hasher.finish()
}

fn parse_cursor(cursor: &str, expected: u64) -> Option<usize> {
    let (offset, fingerprint) = cursor.split_once('.')?;
    let offset = usize::from_str_radix(offset, 16).ok()?;
    (u64::from_str_radix(fingerprint, 16).ok()? == expected).then_some(offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(value: &Value) -> Raw<'static> {
        Raw::from_value(value)
    }

    fn value(raw: &Raw<'_>) -> Value {
        serde_json::from_str(raw.get()).unwrap_or(Value::Null)
    }

    const V26: &str = "io.modelcontextprotocol/protocolVersion";

    #[test]
    fn stateless_requests_are_told_by_their_meta() {
        assert!(params_are_stateless(&raw(
            &json!({"name": "x", "_meta": {V26: "2026-07-28"}})
        )));
        assert!(!params_are_stateless(&raw(
            &json!({"name": "x", "_meta": {V26: "2025-11-25"}})
        )));
        assert!(!params_are_stateless(&raw(
            &json!({"name": "protocolVersion"})
        )));
    }

    #[test]
    fn the_envelope_is_taken_off_and_the_rest_kept() {
        let params = raw(&json!({
            "name": "x",
            "_meta": {V26: "2026-07-28", "io.modelcontextprotocol/clientInfo": {}, "progressToken": 7}
        }));
        assert_eq!(
            value(&without_envelope(params)),
            json!({"name": "x", "_meta": {"progressToken": 7}})
        );
        let only = raw(&json!({"name": "x", "_meta": {V26: "2026-07-28"}}));
        assert_eq!(value(&without_envelope(only)), json!({"name": "x"}));
    }

    #[test]
    fn results_for_stateless_clients_say_what_they_are() {
        let plain = raw(&json!({"content": []}));
        assert_eq!(
            value(&as_stateless_result("tools/call", plain)),
            json!({"content": [], "resultType": "complete"})
        );
        let asked = raw(&json!({"resultType": "input_required", "inputRequests": {}}));
        assert_eq!(
            value(&as_stateless_result("tools/call", asked.clone())),
            value(&asked)
        );
        let read = raw(&json!({"contents": [], "ttlMs": 5}));
        assert_eq!(
            value(&as_stateless_result("resources/read", read)),
            json!({"contents": [], "ttlMs": 5, "resultType": "complete", "cacheScope": "private"})
        );
    }

    #[test]
    fn subscriptions_are_counted_per_session() {
        let a = &ServerId::new("a").unwrap();
        let b = &ServerId::new("b").unwrap();
        let mut subscriptions = Subscriptions::default();
        assert!(
            subscriptions.subscribe(1, a, "u"),
            "the first asks upstream"
        );
        assert!(!subscriptions.subscribe(1, a, "u"), "twice is once");
        assert!(!subscriptions.subscribe(2, a, "u"), "the second shares it");
        assert!(
            subscriptions.subscribe(2, b, "u"),
            "another backend's is its own"
        );
        assert!(
            !subscriptions.unsubscribe(3, a, "u"),
            "a stranger's changes nothing"
        );
        assert!(!subscriptions.unsubscribe(1, a, "u"), "2 still holds it");
        assert!(subscriptions.holds(2, a, "u") && !subscriptions.holds(1, a, "u"));
        let mut released = subscriptions.end_session(2);
        released.sort();
        assert_eq!(
            released,
            [(a.clone(), "u".to_owned()), (b.clone(), "u".to_owned())]
        );
        assert!(
            subscriptions.subscribe(1, a, "u"),
            "nobody held it any more"
        );
    }

    #[test]
    fn a_server_that_leaves_takes_its_subscriptions() {
        let a = &ServerId::new("a").unwrap();
        let b = &ServerId::new("b").unwrap();
        let mut subscriptions = Subscriptions::default();
        subscriptions.subscribe(1, a, "u");
        subscriptions.subscribe(1, b, "u");
        subscriptions.forget_server(a);
        assert!(!subscriptions.holds(1, a, "u") && subscriptions.holds(1, b, "u"));
        assert!(subscriptions.subscribe(2, a, "u"), "asked upstream anew");
        assert_eq!(subscriptions.end_session(1), [(b.clone(), "u".to_owned())]);
    }

    #[test]
    fn input_required_results_are_read() {
        let result = raw(&json!({
            "resultType": "input_required",
            "inputRequests": {"a": {"method": "roots/list"}},
            "requestState": "s1"
        }));
        let (requests, state) = input_required(&result).unwrap();
        assert_eq!(requests["a"]["method"], "roots/list");
        assert_eq!(state, Some(json!("s1")));
        assert!(input_required(&raw(&json!({"resultType": "complete"}))).is_none());
    }
}
