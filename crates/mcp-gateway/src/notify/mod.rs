//! What the servers announce on their own, forwarded to each client
//! session: list changes (debounced), log messages (tagged with their
//! server), resource updates (to the sessions that subscribed, counted per
//! session), and the 2026-07-28 `subscriptions/listen` stream.

mod forwarder;
mod hub;
mod subscriptions;
#[cfg(test)]
mod tests;

use std::borrow::Cow;

use arc_swap::ArcSwap;
use mcp_core::config::ItemKind;
use mcp_core::{HandlerResult, RequestContext, ServerId};
use mcp_protocol::jsonrpc::error_code;
use mcp_protocol::mcp::{
    Method, ResourceRequestParams, SubscriptionFilter, SubscriptionsListenParams, View,
};
use mcp_protocol::raw::{Raw, RawObject};
use mcp_protocol::{ErrorObject, Notification, Request, RequestId};
use mcp_runtime::ServerEvent;
use serde_json::json;

pub(crate) use forwarder::{Forwarder, Scope};
pub(crate) use hub::Hub;
#[cfg(test)]
pub(crate) use subscriptions::Subscriptions;

use crate::Gateway;
use crate::catalog::RenamedResources;
use crate::held::lock;
use crate::route::{server_uri, view_error};
use forwarder::Release;

impl Gateway {
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
        // Whatever this stream subscribes to is given up when it ends, or
        // if it is cancelled on the way.
        let _release = Release {
            key,
            scope: self.scope.clone(),
        };
        let mut watched = Vec::new();
        for uri in requested.resource_subscriptions.iter().flatten() {
            let Some((backend, original)) = self.resource_backend(uri).await else {
                continue;
            };
            let server = backend.handle.id();
            // What the caller may not read it may not watch either.
            if !self.permits(context, ItemKind::Resource, server, &original) {
                continue;
            }
            if lock(&self.scope.subscriptions).subscribe(key, server, &original) {
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
                    lock(&self.scope.subscriptions).unsubscribe(key, server, &original);
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
        let forwarder = Forwarder::new(
            context.clone(),
            Some(key),
            Some((honoured.clone(), request.id.clone())),
        );
        let events = runtime.subscribe();
        forwarder
            .send_all(vec![Notification {
                method: Cow::Borrowed(Method::SubscriptionsAcknowledged.as_str()),
                params: Some(Raw::from_value(&json!({ "notifications": honoured }))),
            }])
            .await;
        forwarder.run(self.scope.clone(), events).await;
        Err(ErrorObject::new(
            error_code::INTERNAL_ERROR,
            "the gateway is stopping",
        ))
    }

    /// Forgets `session`'s subscription to `uri` of `backend` (one the
    /// backend refused).
    pub(crate) fn release_subscription(&self, session: u64, backend: &ServerId, uri: &str) {
        lock(&self.scope.subscriptions).unsubscribe(session, backend, uri);
    }

    /// Forgets every subscription to resources of `backend` (a server that
    /// left).
    pub(crate) fn forget_subscriptions(&self, backend: &ServerId) {
        lock(&self.scope.subscriptions).forget_server(backend);
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
        let mut subscriptions = lock(&self.scope.subscriptions);
        let upstream = match Method::from_name(method) {
            Some(Method::ResourcesSubscribe) => subscriptions.subscribe(session, backend, uri),
            Some(Method::ResourcesUnsubscribe) => subscriptions.unsubscribe(session, backend, uri),
            _ => return None,
        };
        (!upstream).then(|| Ok(Raw::from_value(&json!({}))))
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

pub(crate) const LIST_CHANGES: [Method; 3] = [
    Method::ToolListChanged,
    Method::PromptListChanged,
    Method::ResourceListChanged,
];

/// The list an event says has changed, if it is a list change.
pub(crate) fn list_change(event: &ServerEvent) -> Option<Method> {
    Method::from_name(&event.notification.method).filter(|m| LIST_CHANGES.contains(m))
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
