//! What one client (a session, or one `subscriptions/listen` stream) is
//! told of what the servers announce, and the gateway-wide state that
//! decides it.

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use mcp_core::RequestContext;
use mcp_protocol::mcp::{Method, ResourceRequestParams, SubscriptionFilter, View};
use mcp_protocol::raw::Raw;
use mcp_protocol::{Notification, RequestId};
use mcp_runtime::{CallOptions, ServerEvent};
use serde_json::json;
use tokio::sync::broadcast;

use super::subscriptions::SharedSubscriptions;
use super::{LIST_CHANGES, list_change, tag, tag_log, updated_as_listed};
use crate::Backend;
use crate::catalog::RenamedResources;
use crate::held::lock;
use crate::tasks::{SharedTaskOwners, exposed_notification};

/// How long a burst of list changes is collected before it is announced.
pub(crate) const DEBOUNCE: Duration = Duration::from_millis(50);

/// What every client of one gateway is forwarded against: its backends
/// (whose events are the clients' business), the resources it renamed,
/// and the sessions' subscriptions. Shared by reference counts.
#[derive(Clone)]
pub(crate) struct Scope {
    pub(crate) backends: Arc<ArcSwap<Vec<Arc<Backend>>>>,
    pub(crate) renamed: Arc<ArcSwap<RenamedResources>>,
    pub(crate) subscriptions: SharedSubscriptions,
    /// The session each task was created in.
    pub(crate) tasks: SharedTaskOwners,
}

impl Scope {
    /// Gives up the resource subscriptions held under `key`: upstream,
    /// those no other key holds are unsubscribed (in a task of their own).
    pub(crate) fn release(&self, key: u64) {
        let released = lock(&self.subscriptions).end_session(key);
        if released.is_empty() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let backends = self.backends.load_full();
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

/// The resource subscriptions held under one key, given up when this is
/// dropped (a `subscriptions/listen` stream that ends).
pub(crate) struct Release {
    pub(crate) key: u64,
    pub(crate) scope: Scope,
}

impl Drop for Release {
    fn drop(&mut self) {
        self.scope.release(self.key);
    }
}

/// What to tell clients.
#[derive(Clone, Copy)]
pub(crate) enum Delivery<'a> {
    /// These lists changed.
    Lists(&'a [Method]),
    /// A server announced this (not a list change).
    Event(&'a ServerEvent),
}

/// Set in [`Forwarder::backlog`] while an earlier notification is still
/// being taken by a slow client.
pub(crate) const BUSY: u8 = 1;

/// The backlog bit of a list change.
pub(crate) fn list_bit(method: Method) -> u8 {
    match method {
        Method::ToolListChanged => 2,
        Method::PromptListChanged => 4,
        _ => 8,
    }
}

/// One client as the servers' announcements reach it.
pub(crate) struct Forwarder {
    pub(crate) context: RequestContext,
    /// The key its resource subscriptions are held under (`None`: a
    /// transport that cannot tell sessions apart, which gets every update).
    pub(crate) key: Option<u64>,
    /// For a `subscriptions/listen` stream: what it asked for, and the id
    /// every notification on it is tagged with.
    listen: Option<Box<(SubscriptionFilter, RequestId<'static>)>>,
    /// [`BUSY`], and the list changes that came meanwhile (see
    /// [`list_bit`]), to be announced once the client has caught up.
    pub(crate) backlog: AtomicU8,
}

impl Forwarder {
    pub(crate) fn new(
        context: RequestContext,
        key: Option<u64>,
        listen: Option<(SubscriptionFilter, RequestId<'static>)>,
    ) -> Self {
        Self {
            context,
            key,
            listen: listen.map(Box::new),
            backlog: AtomicU8::new(0),
        }
    }

    /// What this client is to be sent of `delivery`: nothing when it is
    /// none of its business.
    pub(crate) fn prepare(
        &self,
        scope: &Scope,
        delivery: Delivery<'_>,
    ) -> Vec<Notification<'static>> {
        match delivery {
            Delivery::Lists(changed) => self.lists(changed),
            Delivery::Event(event) => self.event(scope, event).into_iter().collect(),
        }
    }

    /// One notification per list in `changed` that is wanted.
    pub(crate) fn lists(&self, changed: &[Method]) -> Vec<Notification<'static>> {
        let mut changed = changed.to_vec();
        changed.sort_by_key(|m| m.as_str());
        changed.dedup();
        changed
            .into_iter()
            .filter(|method| {
                let Some((filter, _)) = self.listen.as_deref() else {
                    return true;
                };
                let wanted = match method {
                    Method::ToolListChanged => filter.tools_list_changed,
                    Method::PromptListChanged => filter.prompts_list_changed,
                    _ => filter.resources_list_changed,
                };
                wanted == Some(true)
            })
            .map(|method| Notification {
                method: Cow::Borrowed(method.as_str()),
                params: None,
            })
            .collect()
    }

    /// An event that is not a list change, if it is this client's
    /// business.
    fn event(&self, scope: &Scope, event: &ServerEvent) -> Option<Notification<'static>> {
        let known = scope
            .backends
            .load()
            .iter()
            .any(|b| *b.handle.id() == event.server);
        if !known {
            return None;
        }
        match Method::from_name(&event.notification.method) {
            // Log messages belong to sessions; 2026-07-28 sends them with
            // the request they are about.
            Some(Method::LogMessage) if self.listen.is_none() => Some(tag_log(event)),
            Some(Method::ResourceUpdated) if self.subscribed(scope, event) => {
                Some(updated_as_listed(event.clone(), &scope.renamed))
            }
            Some(Method::TaskStatus) => self.task_status(scope, event),
            _ => None,
        }
    }

    /// A task's status as this client sees it, if the task is its own: one
    /// created in this session, or (on a listen stream, or a transport that
    /// cannot tell sessions apart) one created by a stateless request.
    fn task_status(&self, scope: &Scope, event: &ServerEvent) -> Option<Notification<'static>> {
        let (notification, task) = exposed_notification(&event.server, &event.notification)?;
        let owner = lock(&scope.tasks).owner(&task);
        let ours = match (owner, self.key) {
            (_, None) => true,
            (Some(Some(owner)), Some(key)) => owner == key,
            (Some(None), Some(_)) => self.listen.is_some(),
            (None, Some(_)) => false,
        };
        ours.then_some(notification)
    }

    /// Whether this client subscribed to the resource an update is about
    /// (always, for a transport that cannot tell sessions apart).
    fn subscribed(&self, scope: &Scope, event: &ServerEvent) -> bool {
        let Some(key) = self.key else {
            return true;
        };
        let uri = event
            .notification
            .params
            .clone()
            .and_then(|p| ResourceRequestParams::from_params(Some(p)).ok())
            .map(|p| p.uri.into_owned());
        uri.is_some_and(|uri| lock(&scope.subscriptions).holds(key, &event.server, &uri))
    }

    /// Sends `notifications` in order, tagged with the listen request's id
    /// on a `subscriptions/listen` stream.
    pub(crate) async fn send_all(&self, notifications: Vec<Notification<'static>>) {
        for mut notification in notifications {
            if let Some((_, id)) = self.listen.as_deref() {
                notification.params = Some(tag(notification.params.take(), id));
            }
            self.context.notify(notification).await;
        }
    }

    /// Once a slow client has taken what held it up: announces the list
    /// changes that came meanwhile, until none is left, then clears
    /// [`BUSY`].
    pub(crate) async fn catch_up(&self) {
        while self
            .backlog
            .compare_exchange(BUSY, 0, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            let bits = self.backlog.fetch_and(BUSY, Ordering::AcqRel);
            let changed: Vec<Method> = LIST_CHANGES
                .into_iter()
                .filter(|m| bits & list_bit(*m) != 0)
                .collect();
            self.send_all(self.lists(&changed)).await;
        }
    }

    /// Forwards to a `subscriptions/listen` stream until the client is
    /// gone or the runtime stops.
    pub(crate) async fn run(self, scope: Scope, mut events: broadcast::Receiver<ServerEvent>) {
        loop {
            let wake = next_wake(&mut events).await;
            if self.context.is_closed() {
                break;
            }
            match wake {
                Wake::Batch(changed, others) => {
                    self.send_all(self.lists(&changed)).await;
                    for other in &others {
                        self.send_all(self.prepare(&scope, Delivery::Event(other)))
                            .await;
                    }
                }
                Wake::Idle => {}
                Wake::Closed => break,
            }
        }
    }
}

/// What a forwarding loop wakes to.
pub(crate) enum Wake {
    /// Nothing came for a second: time to look for clients that left.
    Idle,
    /// The lists that changed (a burst of list changes, or every list after
    /// notifications were missed), then whatever else came, in order.
    Batch(Vec<Method>, Vec<ServerEvent>),
    /// The runtime stopped.
    Closed,
}

/// Waits (a second at most) for what the servers announce next.
pub(crate) async fn next_wake(events: &mut broadcast::Receiver<ServerEvent>) -> Wake {
    match tokio::time::timeout(Duration::from_secs(1), events.recv()).await {
        Ok(Ok(event)) => {
            let (changed, others) = burst(&event, events).await;
            Wake::Batch(changed, others)
        }
        Ok(Err(broadcast::error::RecvError::Lagged(missed))) => {
            tracing::warn!(
                "missed {missed} server notifications; announcing every list as changed"
            );
            Wake::Batch(LIST_CHANGES.to_vec(), Vec::new())
        }
        Ok(Err(broadcast::error::RecvError::Closed)) => Wake::Closed,
        Err(_) => Wake::Idle,
    }
}

/// `first` and, when it is a list change, the rest of its burst: the list
/// changes collected for [`DEBOUNCE`] (one of a server that has just left
/// counts too: its items have gone from the merged list), and whatever
/// else came meanwhile, in order.
async fn burst(
    first: &ServerEvent,
    events: &mut broadcast::Receiver<ServerEvent>,
) -> (Vec<Method>, Vec<ServerEvent>) {
    let Some(method) = list_change(first) else {
        return (Vec::new(), vec![first.clone()]);
    };
    let mut changed = vec![method];
    let mut others = Vec::new();
    tokio::time::sleep(DEBOUNCE).await;
    while let Ok(more) = events.try_recv() {
        match list_change(&more) {
            Some(method) => changed.push(method),
            None => others.push(more),
        }
    }
    (changed, others)
}
