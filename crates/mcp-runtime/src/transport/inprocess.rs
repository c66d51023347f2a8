//! The in-process transport: a server written in Rust ([`McpServer`]),
//! called directly. Messages cross as values; nothing is encoded to bytes.
//!
//! Each request runs as its own task, so a slow request does not hold up
//! the others; `notifications/cancelled` aborts the request's task.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use mcp_core::{BoxFuture, McpServer, Peer, RequestContext};
use mcp_protocol::mcp::{CancelledParams, Method, View};
use mcp_protocol::{Message, Notification, RequestId};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

use super::{Closer, Connector, Inbound, TransportEnds, TransportLink};
use crate::error::Result;

/// Connects to an in-process server.
#[derive(Clone)]
pub struct InProcessConnector {
    name: String,
    server: Arc<dyn McpServer>,
}

impl InProcessConnector {
    /// A connector to `server`, called `name` in logs.
    pub fn new(name: impl Into<String>, server: Arc<dyn McpServer>) -> Self {
        Self {
            name: name.into(),
            server,
        }
    }
}

impl std::fmt::Debug for InProcessConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InProcessConnector")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Connector for InProcessConnector {
    fn connect(&self) -> BoxFuture<'_, Result<TransportLink>> {
        Box::pin(async move {
            let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
            let (link, ends) = TransportLink::new(Box::new(TaskCloser {
                stop: Some(stop_tx),
            }));
            tokio::spawn(drive(self.server.clone(), ends, stop_rx));
            Ok(link)
        })
    }

    fn describe(&self) -> String {
        format!("in-process server `{}`", self.name)
    }
}

struct TaskCloser {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Closer for TaskCloser {
    fn close(mut self: Box<Self>, _grace: Duration) -> BoxFuture<'static, ()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        Box::pin(async {})
    }
}

/// Sends the server's notifications into the inbound channel.
struct ChannelPeer(mpsc::Sender<Inbound>);

impl Peer for ChannelPeer {
    fn notify(&self, notification: Notification<'static>) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let _ = self
                .0
                .send(Inbound::Message(Message::Notification(notification)))
                .await;
        })
    }
}

async fn drive(
    server: Arc<dyn McpServer>,
    ends: TransportEnds,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) {
    let TransportEnds {
        mut outbound,
        inbound,
    } = ends;
    let context = RequestContext::new(Arc::new(ChannelPeer(inbound.clone())));
    let mut running: HashMap<RequestId<'static>, AbortHandle> = HashMap::new();
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<RequestId<'static>>();
    loop {
        tokio::select! {
            _ = &mut stop => break,
            Some(id) = done_rx.recv() => { running.remove(&id); }
            message = outbound.recv() => match message {
                Some(Message::Request(request)) => {
                    let key = request.id.clone();
                    let id = request.id.clone();
                    let server = server.clone();
                    let context = context.clone();
                    let inbound = inbound.clone();
                    let done = done_tx.clone();
                    let task = tokio::spawn(async move {
                        let answer = match server.handle_request(request, context).await {
                            Ok(result) => Message::response(id.clone(), result),
                            Err(error) => Message::error(Some(id.clone()), error),
                        };
                        let _ = done.send(id);
                        let _ = inbound.send(Inbound::Message(answer)).await;
                    });
                    running.insert(key, task.abort_handle());
                }
                Some(Message::Notification(notification)) => {
                    if notification.method == Method::Cancelled.as_str() {
                        let cancelled = CancelledParams::from_params(notification.params.clone());
                        if let Some(id) = cancelled.ok().and_then(|c| c.request_id) {
                            if let Some(task) = running.remove(&id.into_owned()) {
                                task.abort();
                            }
                        }
                        continue;
                    }
                    server.handle_notification(notification, context.clone()).await;
                }
                // Answers to server-to-client requests: this transport's
                // servers send none yet.
                Some(Message::Response(_) | Message::Error(_)) => {}
                None => break,
            }
        }
    }
    for task in running.into_values() {
        task.abort();
    }
    let _ = inbound
        .send(Inbound::Closed(
            "the in-process server was stopped".to_owned(),
        ))
        .await;
}
