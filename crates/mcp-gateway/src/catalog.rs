//! The merged lists: every backend's tools, prompts, resources and
//! templates under their exposed names, built once per change of a
//! backend's list, cut into pages with cursors tied to the list.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use arc_swap::ArcSwapOption;

use mcp_core::config::{ItemKind, PinMode};
use mcp_core::{HandlerResult, RequestContext, ServerId};
use mcp_protocol::mcp::{PaginatedParams, RequestMeta, View};
use mcp_protocol::raw::{Raw, RawObject};
use serde_json::json;

use mcp_runtime::ListKind;

use crate::route::{invalid_params, join_all, server_uri, view_error};
use crate::{Backend, Backends, Gateway};

/// Resources listed in the gateway's own form (`mcp-manager://SERVER/URI`)
/// because another server offers the same URI: by server and own URI.
pub(crate) type RenamedResources = HashSet<(ServerId, String)>;

/// The merged list of each kind, swapped whole when rebuilt.
#[derive(Default)]
pub(crate) struct Catalogs {
    tools: ArcSwapOption<Catalog>,
    prompts: ArcSwapOption<Catalog>,
    resources: ArcSwapOption<Catalog>,
    resource_templates: ArcSwapOption<Catalog>,
}

impl Catalogs {
    pub(crate) fn of(&self, kind: ListKind) -> &ArcSwapOption<Catalog> {
        match kind {
            ListKind::Tools => &self.tools,
            ListKind::Prompts => &self.prompts,
            ListKind::Resources => &self.resources,
            ListKind::ResourceTemplates => &self.resource_templates,
        }
    }

    /// Forgets every merged list: the backends changed.
    pub(crate) fn clear(&self) {
        for kind in [
            ListKind::Tools,
            ListKind::Prompts,
            ListKind::Resources,
            ListKind::ResourceTemplates,
        ] {
            self.of(kind).store(None);
        }
    }
}

/// An exposed item and where it comes from.
pub(crate) struct Entry {
    pub(crate) backend: Arc<Backend>,
    /// The item's name (or URI) on its own server.
    pub(crate) original: String,
    /// The item as listed, with its exposed name.
    pub(crate) item: Raw<'static>,
    /// Whether the exposed name differs from the original.
    pub(crate) renamed: bool,
    /// A tool that must run as a task (`execution.taskSupport:
    /// "required"`), read once when the list is built.
    pub(crate) must_be_task: bool,
}

/// One merged list, and what it was made from.
pub(crate) struct Catalog {
    /// The backends it was built over.
    pub(crate) backends: Backends,
    /// Per backend, the list this was built from; `None` for a backend
    /// that was left out.
    pub(crate) sources: Vec<Option<Arc<[Raw<'static>]>>>,
    /// The items by exposed name, in backend order.
    pub(crate) entries: Vec<(String, Entry)>,
    /// Exposed name to position in `entries`.
    pub(crate) index: HashMap<String, usize>,
    /// A fingerprint of the exposed names, for cursors.
    pub(crate) fingerprint: u64,
    /// The version of the pins a tool list was judged against.
    pub(crate) pins: u64,
}

impl Catalog {
    /// Whether this catalog was built from exactly `lists` of `backends`.
    fn built_from(
        &self,
        backends: &Backends,
        lists: &[mcp_runtime::Result<Arc<[Raw<'static>]>>],
        pins: u64,
    ) -> bool {
        self.pins == pins
            && Arc::ptr_eq(&self.backends, backends)
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

    /// Whether this catalog was built from the lists `backends` hold
    /// cached now (and none of them needs fetching).
    fn still_current(&self, backends: &Backends, kind: ListKind, pins: u64) -> bool {
        self.pins == pins
            && Arc::ptr_eq(&self.backends, backends)
            && self.sources.len() == backends.len()
            && self
                .sources
                .iter()
                .zip(backends.iter())
                .all(
                    |(source, backend)| match (source, backend.handle.cached_list(kind)) {
                        (Some(source), Some(Ok(list))) => Arc::ptr_eq(source, &list),
                        (None, Some(Err(_))) => true,
                        _ => false,
                    },
                )
    }

    pub(crate) fn find(&self, exposed: &str) -> Option<&Entry> {
        let position = *self.index.get(exposed)?;
        self.entries.get(position).map(|(_, entry)| entry)
    }
}

impl Gateway {
    /// Every item of `kind` over all backends, keyed by exposed name (URI
    /// for resources), in backend order. Built once per change of any
    /// backend's list and shared until the next one.
    pub(crate) async fn catalog(&self, kind: ListKind) -> Arc<Catalog> {
        let backends = self.backends();
        let cache = self.catalogs.of(kind);
        let pins = self.pins_version(kind);
        // Most requests find every list cached and unchanged: no request,
        // no allocation.
        if let Some(cached) = cache.load_full() {
            if cached.still_current(&backends, kind, pins) {
                return cached;
            }
        }
        let lists = join_all(backends.iter().map(|backend| backend.handle.list_all(kind))).await;
        if let Some(cached) = cache.load_full() {
            if cached.built_from(&backends, &lists, pins) {
                return cached;
            }
        }
        let catalog = Arc::new(self.build_catalog(kind, &backends, &lists, pins));
        if kind == ListKind::Resources {
            let renamed = catalog
                .entries
                .iter()
                .map(|(_, e)| e)
                .filter(|entry| entry.renamed)
                .map(|entry| (entry.backend.handle.id().clone(), entry.original.clone()))
                .collect();
            self.scope.renamed.store(Arc::new(renamed));
        }
        cache.store(Some(catalog.clone()));
        catalog
    }

    /// The version of the pins the list of `kind` is judged against (the
    /// tools' only).
    fn pins_version(&self, kind: ListKind) -> u64 {
        match &self.pinning {
            Some(pinning) if kind == ListKind::Tools => pinning.version(),
            _ => 0,
        }
    }

    /// Whether `backend`'s tool `original` (`item`, as listed) is served,
    /// judged against the pins; counted in `unapproved` when its
    /// definition differs from the pinned one.
    fn pinned_tool_served(
        &self,
        backend: &Backend,
        original: &str,
        item: &Raw<'_>,
        unapproved: &mut usize,
    ) -> bool {
        let Some(pinning) = &self.pinning else {
            return true;
        };
        let mode = backend.pinning.unwrap_or(pinning.mode());
        if mode == PinMode::Off {
            return true;
        }
        let Ok(tool) = serde_json::from_str::<serde_json::Value>(item.get()) else {
            return true;
        };
        let judged = pinning.judge(backend.handle.id(), mode, original, &tool);
        if judged.unapproved {
            *unapproved += 1;
        }
        if judged.reported {
            backend.handle.observer().tool_changed(!judged.served);
        }
        judged.served
    }

    pub(crate) fn build_catalog(
        &self,
        kind: ListKind,
        backends: &Backends,
        lists: &[mcp_runtime::Result<Arc<[Raw<'static>]>>],
        pins: u64,
    ) -> Catalog {
        let key = match kind {
            ListKind::Tools | ListKind::Prompts => "name",
            ListKind::Resources => "uri",
            ListKind::ResourceTemplates => "uriTemplate",
        };
        let mut seen: HashMap<String, ServerId> = HashMap::new();
        let mut entries = Vec::new();
        let judged = kind == ListKind::Tools && self.pinning.is_some();
        for (backend, list) in backends.iter().zip(lists) {
            let items = match list {
                Ok(items) => items,
                Err(error) => {
                    tracing::warn!(server = %backend.handle.id(), "left out of `{}`: {error}", kind.method());
                    continue;
                }
            };
            let mut unapproved = 0;
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
                if judged && !self.pinned_tool_served(backend, &original, item, &mut unapproved) {
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
                let must_be_task = kind == ListKind::Tools && must_be_task(&item);
                entries.push((
                    exposed,
                    Entry {
                        backend: backend.clone(),
                        original,
                        item,
                        renamed,
                        must_be_task,
                    },
                ));
            }
            if judged {
                backend.handle.observer().tools_unapproved(unapproved);
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
            pins,
        }
    }

    /// One page of the merged list. The cursor is opaque to clients: the
    /// offset of the page and a fingerprint of the list it was cut from, so
    /// a cursor from a list that has changed since is refused.
    pub(crate) async fn list(
        &self,
        kind: ListKind,
        params: Option<Raw<'static>>,
        context: &RequestContext,
    ) -> HandlerResult {
        let params = PaginatedParams::from_params(params).map_err(|e| view_error(&e))?;
        let stateless = params.meta.as_ref().is_some_and(RequestMeta::is_stateless);
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
            .filter(|(_, e)| callable_by(e, stateless))
            .filter(|(_, e)| {
                self.permits(context, item_kind(kind), e.backend.handle.id(), &e.original)
            })
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
        if stateless {
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
    pub(crate) async fn find(&self, kind: ListKind, name: &str) -> Option<(Arc<Backend>, String)> {
        let catalog = self.catalog(kind).await;
        let entry = catalog.find(name)?;
        Some((entry.backend.clone(), entry.original.clone()))
    }
}

/// What the access rules call the items of a list of `kind`.
pub(crate) fn item_kind(kind: ListKind) -> ItemKind {
    match kind {
        ListKind::Tools => ItemKind::Tool,
        ListKind::Prompts => ItemKind::Prompt,
        ListKind::Resources | ListKind::ResourceTemplates => ItemKind::Resource,
    }
}

/// Whether a listed tool must run as a task (`execution.taskSupport:
/// "required"`); the tool is read only when its text says `"required"`.
fn must_be_task(tool: &Raw<'_>) -> bool {
    tool.get().contains("\"required\"")
        && serde_json::from_str::<serde_json::Value>(tool.get())
            .ok()
            .and_then(|tool| {
                let support = tool.get("execution")?.get("taskSupport")?.as_str()?;
                Some(support == "required")
            })
            .unwrap_or(false)
}

/// Whether a client of one generation (`stateless`: 2026-07-28) can call
/// a listed tool: one that must run as a task only where its server runs
/// tasks for that generation (the Tasks extension for 2026-07-28 clients,
/// the 2025-11-25 `tasks` capability for tool calls for sessions); a page
/// may come out shorter for it.
fn callable_by(entry: &Entry, stateless: bool) -> bool {
    if !entry.must_be_task {
        return true;
    }
    let Some(session) = entry.backend.handle.session() else {
        return true;
    };
    let offered = &session.capabilities.extra;
    if stateless {
        offered
            .get("extensions")
            .and_then(|extensions| extensions.get(mcp_protocol::mcp::tasks::EXTENSION))
            .is_some()
    } else {
        offered
            .get("tasks")
            .and_then(|tasks| tasks.get("requests")?.get("tools")?.get("call"))
            .is_some()
    }
}

/// A fingerprint of a list's names, to tell whether a cursor belongs to it.
pub(crate) fn fingerprint<'a>(names: impl Iterator<Item = &'a str>) -> u64 {
    use std::hash::{Hash, Hasher};
    // A fixed hasher: cursors must survive across requests.
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    for name in names {
        name.hash(&mut hasher);
    }
    hasher.finish()
}

pub(crate) fn parse_cursor(cursor: &str, expected: u64) -> Option<usize> {
    let (offset, fingerprint) = cursor.split_once('.')?;
    let offset = usize::from_str_radix(offset, 16).ok()?;
    (u64::from_str_radix(fingerprint, 16).ok()? == expected).then_some(offset)
}
