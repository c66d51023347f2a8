//! What the servers announce on their own, forwarded to each client
//! session: list changes (debounced), log messages (tagged with their
//! server), resource updates (to the sessions that subscribed, counted per
//! session), and the 2026-07-28 `subscriptions/listen` stream.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use std::time::Duration;

use mcp_core::{HandlerResult, RequestContext, ServerId};
use mcp_protocol::jsonrpc::error_code;
use mcp_protocol::mcp::{
    Method, ResourceRequestParams, SubscriptionFilter, SubscriptionsListenParams, View,
};
use mcp_protocol::raw::{Raw, RawObject};
use mcp_protocol::{ErrorObject, Notification, Request, RequestId};
use serde_json::json;
use tokio::sync::broadcast;

use mcp_runtime::{CallOptions, ServerEvent};

use crate::catalog::RenamedResources;
use crate::held::lock;
use crate::route::{server_uri, view_error};
use crate::{Backend, Gateway};

impl Gateway {
    pub(crate) fn forwarder(
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
    pub(crate) async fn listen(
        &self,
        request: Request<'static>,
        context: &RequestContext,
    ) -> HandlerResult {
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

    /// Forgets `session`'s subscription to `uri` of `backend` (one the
    /// backend refused).
    pub(crate) fn release_subscription(&self, session: u64, backend: &ServerId, uri: &str) {
        lock(&self.subscriptions).unsubscribe(session, backend, uri);
    }

    /// Forgets every subscription to resources of `backend` (a server that
    /// left).
    pub(crate) fn forget_subscriptions(&self, backend: &ServerId) {
        lock(&self.subscriptions).forget_server(backend);
    }

    /// Keeps count of the client sessions' resource subscriptions: a
    /// subscription another session already holds, or an unsubscription
    /// that leaves others holding it, is answered here; the rest go to the
    /// backend (`None`).
    pub(crate) fn shared_subscription(
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
}

/// How long a burst of list changes is collected before it is announced.
pub(crate) const DEBOUNCE: Duration = Duration::from_millis(50);

/// What one client session (or one `subscriptions/listen` stream) is told
/// of what the servers announce.
pub(crate) struct Forwarder {
    context: RequestContext,
    /// The gateway's backends, whose events are this client's business.
    backends: Arc<ArcSwap<Vec<Arc<Backend>>>>,
    renamed: Arc<ArcSwap<RenamedResources>>,
    subscriptions: SharedSubscriptions,
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
    pub(crate) async fn run(self, mut events: broadcast::Receiver<ServerEvent>) {
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
                    Box::pin(self.announce(LIST_CHANGES.to_vec())).await;
                    continue;
                }
                Ok(Err(broadcast::error::RecvError::Closed)) => break,
                Err(_) => continue,
            };
            // What happens on an event waits in a box of its own: an idle
            // session's task holds only the wait for the next event.
            Box::pin(self.on_event(event, &mut events)).await;
        }
    }

    /// Forwards `event`; a list change is collected with the rest of its
    /// burst into one announcement per list, and whatever else comes
    /// meanwhile is forwarded after it.
    async fn on_event(&self, event: ServerEvent, events: &mut broadcast::Receiver<ServerEvent>) {
        let Some(first) = list_change(&event) else {
            self.forward(event).await;
            return;
        };
        let mut changed = vec![first];
        let mut others = Vec::new();
        tokio::time::sleep(DEBOUNCE).await;
        // A list change of any server counts, one that has just left the
        // gateway too: its items have gone from the merged list.
        while let Ok(more) = events.try_recv() {
            match list_change(&more) {
                Some(method) => changed.push(method),
                None => others.push(more),
            }
        }
        self.announce(changed).await;
        for other in others {
            self.forward(other).await;
        }
    }

    /// Sends one notification per list in `changed` that is wanted.
    async fn announce(&self, mut changed: Vec<Method>) {
        changed.sort_by_key(|m| m.as_str());
        changed.dedup();
        for method in changed {
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
            .load()
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
pub(crate) fn tag(params: Option<Raw<'static>>, id: &RequestId<'static>) -> Raw<'static> {
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
pub(crate) struct Release {
    key: u64,
    subscriptions: SharedSubscriptions,
    /// The gateway's backends, to find the servers to tell.
    backends: Arc<ArcSwap<Vec<Arc<Backend>>>>,
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

pub(crate) const LIST_CHANGES: [Method; 3] = [
    Method::ToolListChanged,
    Method::PromptListChanged,
    Method::ResourceListChanged,
];

/// The list an event says has changed, if it is a list change.
pub(crate) fn list_change(event: &ServerEvent) -> Option<Method> {
    Method::from_name(&event.notification.method).filter(|m| LIST_CHANGES.contains(m))
}

/// The sessions' subscriptions, shared by the gateway and its forwarders.
pub(crate) type SharedSubscriptions = Arc<Mutex<Subscriptions>>;

/// Which client sessions subscribed to which resources of which backends,
/// and how many sessions hold each subscription upstream: a backend is
/// asked to subscribe when the first session does and to unsubscribe when
/// the last one gives it up.
#[derive(Default)]
pub(crate) struct Subscriptions {
    by_session: HashMap<u64, HashSet<(ServerId, String)>>,
    holders: HashMap<(ServerId, String), usize>,
}

impl Subscriptions {
    /// Records that `session` subscribes; true when it is the first
    /// session to, so the backend must be asked.
    pub(crate) fn subscribe(&mut self, session: u64, backend: &ServerId, uri: &str) -> bool {
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
    pub(crate) fn unsubscribe(&mut self, session: u64, backend: &ServerId, uri: &str) -> bool {
        let key = (backend.clone(), uri.to_owned());
        let held = self
            .by_session
            .get_mut(&session)
            .is_some_and(|subscribed| subscribed.remove(&key));
        held && self.release(key)
    }

    pub(crate) fn release(&mut self, key: (ServerId, String)) -> bool {
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

    pub(crate) fn holds(&self, session: u64, backend: &ServerId, uri: &str) -> bool {
        self.by_session
            .get(&session)
            .is_some_and(|subscribed| subscribed.contains(&(backend.clone(), uri.to_owned())))
    }

    /// Forgets every subscription to `backend`, a server that has left.
    pub(crate) fn forget_server(&mut self, backend: &ServerId) {
        self.holders.retain(|(server, _), _| server != backend);
        for subscribed in self.by_session.values_mut() {
            subscribed.retain(|(server, _)| server != backend);
        }
    }

    /// Forgets `session`; the subscriptions nobody holds any more.
    pub(crate) fn end_session(&mut self, session: u64) -> Vec<(ServerId, String)> {
        let subscribed = self.by_session.remove(&session).unwrap_or_default();
        subscribed
            .into_iter()
            .filter(|key| self.release(key.clone()))
            .collect()
    }
}

/// A resource update with the URI the client knows the resource by.
pub(crate) fn updated_as_listed(
    event: ServerEvent,
    renamed: &ArcSwap<RenamedResources>,
) -> Notification<'static> {
    let mut notification = event.notification;
    let Some(mut params) = notification
        .params
        .clone()
        .and_then(|p| ResourceRequestParams::from_params(Some(p)).ok())
    else {
        return notification;
    };
    if renamed
        .load()
        .contains(&(event.server.clone(), params.uri.to_string()))
    {
        params.uri = Cow::Owned(server_uri(&event.server, &params.uri));
        notification.params = Some(params.to_raw());
    }
    notification
}

/// A log message with its server in `logger` (`server` or `server/logger`).
pub(crate) fn tag_log(event: &ServerEvent) -> Notification<'static> {
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
