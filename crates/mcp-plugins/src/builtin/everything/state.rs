//! The server's mutable state and the notifications that announce changes
//! of it: list changes, resource updates, log messages, and the
//! `subscriptions/listen` streams of 2026-07-28 clients.
//!
//! The state sits behind one `std::sync::Mutex`, locked only to read or
//! change a few fields and never across an `.await`: whoever must notify
//! copies the targets out first and sends after unlocking.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use mcp_core::RequestContext;
use mcp_protocol::RequestId;
use mcp_protocol::mcp::{LoggingLevel, Method, SubscriptionFilter, meta_keys};
use serde_json::{Value, json};

use super::call::{Call, Mode, notification};

/// The logger name on this server's log messages.
pub(crate) const LOGGER: &str = "everything";

/// What the server remembers between requests.
#[derive(Default)]
pub(crate) struct State {
    /// The level `logging/setLevel` asked for; none sends no log messages.
    pub(crate) log_level: Option<LoggingLevel>,
    /// Resource URIs a stateful client subscribed to, with the connection
    /// that asked.
    pub(crate) subscriptions: HashMap<String, RequestContext>,
    /// Whether the dynamic tool is in the list.
    pub(crate) dynamic_tool: bool,
    /// Whether the dynamic prompt is in the list.
    pub(crate) dynamic_prompt: bool,
    /// Whether the dynamic resource is in the list.
    pub(crate) dynamic_resource: bool,
    /// How many times the watched resource has been updated.
    pub(crate) watched_revision: u64,
    /// The stateful sessions that have been initialized, told of every
    /// list change (the lists are the server's, shared by all); forgotten
    /// once closed.
    sessions: Vec<RequestContext>,
    /// Open `subscriptions/listen` streams.
    listeners: Vec<Listener>,
    /// The key of the next listener.
    next_listener: u64,
}

/// An open `subscriptions/listen` stream.
struct Listener {
    key: u64,
    subscription: RequestId<'static>,
    filter: SubscriptionFilter,
    context: RequestContext,
}

/// A change of what the server offers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Change {
    /// The tool list changed.
    Tools,
    /// The prompt list changed.
    Prompts,
    /// The resource list changed.
    Resources,
    /// The content of the resource with this URI changed.
    Updated(String),
}

impl Change {
    /// Whether a listen stream with `filter` asked for this change.
    fn wanted_by(&self, filter: &SubscriptionFilter) -> bool {
        match self {
            Self::Tools => filter.tools_list_changed == Some(true),
            Self::Prompts => filter.prompts_list_changed == Some(true),
            Self::Resources => filter.resources_list_changed == Some(true),
            Self::Updated(uri) => filter
                .resource_subscriptions
                .as_ref()
                .is_some_and(|uris| uris.contains(uri)),
        }
    }

    /// The notification announcing the change, and its params.
    fn notification(&self) -> (&'static str, Value) {
        match self {
            Self::Tools => (Method::ToolListChanged.as_str(), json!({})),
            Self::Prompts => (Method::PromptListChanged.as_str(), json!({})),
            Self::Resources => (Method::ResourceListChanged.as_str(), json!({})),
            Self::Updated(uri) => (Method::ResourceUpdated.as_str(), json!({ "uri": uri })),
        }
    }
}

/// The state, and the announcements of its changes.
#[derive(Default)]
pub(crate) struct Shared {
    state: Mutex<State>,
}

/// Removes a listen stream when its request ends, however it ends.
pub(crate) struct ListenGuard<'a> {
    shared: &'a Shared,
    key: u64,
}

impl Drop for ListenGuard<'_> {
    fn drop(&mut self) {
        self.shared
            .lock()
            .listeners
            .retain(|listener| listener.key != self.key);
    }
}

impl Shared {
    /// Locks the state. A panic while it was held cannot leave it
    /// inconsistent (every change is one assignment), so poisoning is
    /// ignored.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Opens a listen stream for the request `subscription`; it lasts as
    /// long as the returned guard.
    pub(crate) fn listen(
        &self,
        subscription: RequestId<'static>,
        filter: SubscriptionFilter,
        context: RequestContext,
    ) -> ListenGuard<'_> {
        let mut state = self.lock();
        let key = state.next_listener;
        state.next_listener += 1;
        state.listeners.push(Listener {
            key,
            subscription,
            filter,
            context,
        });
        ListenGuard { shared: self, key }
    }

    /// Remembers a stateful session that has been initialized, to tell
    /// it of list changes.
    pub(crate) fn initialized(&self, context: RequestContext) {
        let mut state = self.lock();
        state.sessions.retain(|session| !session.is_closed());
        state.sessions.push(context);
    }

    /// Announces `change`: on every listen stream that asked for it (each
    /// notification tagged with the stream's subscription id), and to
    /// stateful clients: a list change to every initialized session and
    /// the connection of `call` (whatever request made the change, a
    /// stateless one included), a resource update on the connection that
    /// subscribed to the resource.
    pub(crate) async fn announce(&self, change: Change, call: &Call) {
        let (method, params) = change.notification();
        let (tagged, plain) = {
            let mut state = self.lock();
            let tagged: Vec<(RequestId<'static>, RequestContext)> = state
                .listeners
                .iter()
                .filter(|listener| change.wanted_by(&listener.filter))
                .map(|listener| (listener.subscription.clone(), listener.context.clone()))
                .collect();
            let plain: Vec<RequestContext> = match &change {
                Change::Updated(uri) => state.subscriptions.get(uri).cloned().into_iter().collect(),
                _ => {
                    state.sessions.retain(|session| !session.is_closed());
                    let caller = call.context.session();
                    let known =
                        caller.is_some() && state.sessions.iter().any(|s| s.session() == caller);
                    let callers =
                        (!call.mode.is_stateless() && !known).then(|| call.context.clone());
                    state.sessions.iter().cloned().chain(callers).collect()
                }
            };
            (tagged, plain)
        };
        for (subscription, context) in tagged {
            let params = tag(params.clone(), &subscription);
            context.notify(notification(method, params)).await;
        }
        for context in plain {
            context.notify(notification(method, params.clone())).await;
        }
    }

    /// Sends a log message for `call` if its level is at least the one the
    /// client asked for: per request in 2026-07-28, per session before.
    pub(crate) async fn log(&self, call: &Call, level: LoggingLevel, message: &str) {
        let threshold = match &call.mode {
            Mode::Stateless { log_level, .. } => *log_level,
            Mode::Stateful => self.lock().log_level,
        };
        if threshold.is_some_and(|threshold| level >= threshold) {
            let params = json!({ "level": level, "logger": LOGGER, "data": message });
            call.notify(Method::LogMessage.as_str(), params).await;
        }
    }
}

/// Adds the subscription id to a notification's `_meta`.
pub(crate) fn tag(mut params: Value, subscription: &RequestId<'_>) -> Value {
    if let Value::Object(object) = &mut params {
        object.insert(
            "_meta".to_owned(),
            json!({ (meta_keys::SUBSCRIPTION_ID): subscription }),
        );
    }
    params
}
