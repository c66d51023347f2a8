//! Running an [`McpServer`]: the messages a client sends, dispatched to the
//! server's handlers, and the answers sent back through an outlet.
//!
//! Each request runs as its own task, so a slow request does not hold up
//! the others, and `notifications/cancelled` aborts the request's task.
//! Notifications are handled in order, one after the other. Used by the
//! in-process transport (the outlet is the connection's inbound channel) and
//! by [`crate::serve`] (the outlet is the writer of a byte stream).

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use mcp_core::{BoxFuture, McpServer, Peer, RequestContext};
use mcp_protocol::mcp::{CancelledParams, Method, View};
use mcp_protocol::{Message, Notification, RequestId};
use tokio::sync::mpsc;
use tokio::task::{AbortHandle, JoinSet};

use crate::transport::Inbound;

/// Where a dispatcher's messages go.
pub(crate) trait Outlet: Clone + Send + Sync + 'static {
    /// Sends a message; false once the other side is gone.
    fn send(&self, message: Message<'static>) -> impl Future<Output = bool> + Send;

    /// Whether the other side is gone.
    fn is_closed(&self) -> bool;
}

impl Outlet for mpsc::Sender<Inbound> {
    async fn send(&self, message: Message<'static>) -> bool {
        mpsc::Sender::send(self, Inbound::Message(message))
            .await
            .is_ok()
    }

    fn is_closed(&self) -> bool {
        mpsc::Sender::is_closed(self)
    }
}

impl Outlet for mpsc::Sender<Message<'static>> {
    async fn send(&self, message: Message<'static>) -> bool {
        mpsc::Sender::send(self, message).await.is_ok()
    }

    fn is_closed(&self) -> bool {
        mpsc::Sender::is_closed(self)
    }
}

/// The server's notifications, sent through the outlet.
struct OutletPeer<O>(O);

impl<O: Outlet> Peer for OutletPeer<O> {
    fn notify(&self, notification: Notification<'static>) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            self.0.send(Message::Notification(notification)).await;
        })
    }

    fn is_closed(&self) -> bool {
        self.0.is_closed()
    }
}

/// Dispatches a client's messages to a server.
pub(crate) struct Dispatcher<O: Outlet> {
    server: Arc<dyn McpServer>,
    context: RequestContext,
    outlet: O,
    running: HashMap<RequestId<'static>, AbortHandle>,
    tasks: JoinSet<RequestId<'static>>,
}

impl<O: Outlet> Dispatcher<O> {
    pub(crate) fn new(server: Arc<dyn McpServer>, outlet: O) -> Self {
        Self {
            context: RequestContext::new(Arc::new(OutletPeer(outlet.clone()))),
            server,
            outlet,
            running: HashMap::new(),
            tasks: JoinSet::new(),
        }
    }

    /// Handles one message from the client.
    pub(crate) async fn dispatch(&mut self, message: Message<'static>) {
        match message {
            Message::Request(request) => {
                let id = request.id.clone();
                let server = self.server.clone();
                let context = self.context.clone();
                let outlet = self.outlet.clone();
                let abort = self.tasks.spawn(async move {
                    let id = request.id.clone();
                    let answer = match server.handle_request(request, context).await {
                        Ok(result) => Message::response(id.clone(), result),
                        Err(error) => Message::error(Some(id.clone()), error),
                    };
                    outlet.send(answer).await;
                    id
                });
                self.running.insert(id, abort);
            }
            Message::Notification(notification) => {
                if notification.method == Method::Cancelled.as_str() {
                    self.cancel(notification);
                } else {
                    self.server
                        .handle_notification(notification, self.context.clone())
                        .await;
                }
            }
            // Answers to server-to-client requests: the servers run here send
            // none yet.
            Message::Response(_) | Message::Error(_) => {}
        }
    }

    fn cancel(&mut self, notification: Notification<'static>) {
        let cancelled = CancelledParams::from_params(notification.params);
        if let Some(id) = cancelled.ok().and_then(|c| c.request_id) {
            if let Some(task) = self.running.remove(&id.into_owned()) {
                task.abort();
            }
        }
    }

    /// Waits until a request task ends and forgets it; pending forever when
    /// none runs. For a `select!` beside the message source.
    pub(crate) async fn reap(&mut self) {
        match self.tasks.join_next().await {
            Some(Ok(id)) => {
                self.running.remove(&id);
            }
            // Aborted (already forgotten) or panicked: nothing to answer.
            Some(Err(_)) => {}
            None => std::future::pending().await,
        }
    }

    /// Waits for every running request to finish.
    pub(crate) async fn drain(&mut self) {
        while self.tasks.join_next().await.is_some() {}
        self.running.clear();
    }

    /// Aborts every running request.
    pub(crate) fn abort_all(&mut self) {
        self.tasks.abort_all();
        self.running.clear();
    }
}
