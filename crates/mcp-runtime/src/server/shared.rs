//! Counters of one server, shared by its handle and its instances, and its
//! recent errors.
//!
//! The recent errors sit behind a mutex: they are written when a request
//! got no answer or a connection was lost, never on a request's way to its
//! answer.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::lock;
use crate::observe::ServerObserver;
use crate::server::RecentError;

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
    /// For a stateless server: the resources its upstream
    /// `subscriptions/listen` watches (what clients subscribed to), and the
    /// log level every request asks for (what a client set); the bridge of
    /// `resources/subscribe` and `logging/setLevel`, which 2026-07-28
    /// removed.
    bridged: Mutex<Bridged>,
}

/// What a stateless server is asked on every connection, for the requests
/// of sessions that 2026-07-28 removed.
#[derive(Debug, Default)]
struct Bridged {
    watched: std::collections::BTreeSet<String>,
    log_level: Option<mcp_protocol::mcp::LoggingLevel>,
}

impl Shared {
    pub(crate) fn new(observer: Arc<dyn ServerObserver>) -> Self {
        Self {
            next_id: AtomicI64::new(0),
            lists_generation: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            timeouts: AtomicU64::new(0),
            restarts: AtomicU64::new(0),
            observer,
            recent_errors: Mutex::new(VecDeque::new()),
            bridged: Mutex::new(Bridged::default()),
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

    /// The recent errors, oldest first.
    pub(crate) fn recent_errors(&self) -> Vec<RecentError> {
        lock(&self.recent_errors).iter().cloned().collect()
    }

    pub(crate) fn next_id(&self) -> i64 {
        self.next_id.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Watches the resource `uri` (or stops); whether that changed
    /// anything.
    pub(crate) fn watch(&self, uri: &str, on: bool) -> bool {
        let mut bridged = lock(&self.bridged);
        if on {
            bridged.watched.insert(uri.to_owned())
        } else {
            bridged.watched.remove(uri)
        }
    }

    /// The resources watched, in order.
    pub(crate) fn watched(&self) -> Vec<String> {
        lock(&self.bridged).watched.iter().cloned().collect()
    }

    /// Whether any resource is watched.
    pub(crate) fn watches_any(&self) -> bool {
        !lock(&self.bridged).watched.is_empty()
    }

    /// Sets the log level every request asks for; whether that changed it.
    pub(crate) fn set_log_level(&self, level: mcp_protocol::mcp::LoggingLevel) -> bool {
        lock(&self.bridged).log_level.replace(level) != Some(level)
    }

    /// The log level every request asks for, once one was set.
    pub(crate) fn log_level(&self) -> Option<mcp_protocol::mcp::LoggingLevel> {
        lock(&self.bridged).log_level
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
