//! The in-process transport: a server written in Rust ([`McpServer`]),
//! called directly. Messages cross as values; nothing is encoded to bytes.
//!
//! The handshake, notifications and health checks go through the
//! connection and the dispatcher, as for any transport: each request runs
//! as its own task, so a slow request does not hold up the others, and
//! `notifications/cancelled` aborts the request's task. Once the server is
//! ready, the link also offers the server itself (`InProcessEnd`), and
//! callers' requests are then made on their own tasks (see the server
//! handle's direct path).

use std::sync::Arc;
use std::time::Duration;

use mcp_core::{BoxFuture, McpServer};

use super::{Closer, Connector, Inbound, TransportEnds, TransportLink};
use crate::dispatch::{Dispatcher, Outlet};
use crate::error::Result;

/// The in-process server's answers go straight to the connection's inbound
/// channel.
impl Outlet for tokio::sync::mpsc::Sender<Inbound> {
    async fn send(&self, message: mcp_protocol::Message<'static>) -> bool {
        tokio::sync::mpsc::Sender::send(self, Inbound::Message(message))
            .await
            .is_ok()
    }

    fn is_closed(&self) -> bool {
        tokio::sync::mpsc::Sender::is_closed(self)
    }
}

/// What an in-process link offers besides its channels: the server itself,
/// for requests made on the caller's task.
#[derive(Clone)]
pub(crate) struct InProcessEnd {
    pub(crate) server: Arc<dyn McpServer>,
    /// The connection's inbound channel, for the notifications the server
    /// sends while serving such a request.
    pub(crate) inbound: tokio::sync::mpsc::Sender<Inbound>,
    /// The client session the dispatcher's requests belong to: the
    /// direct requests belong to the same.
    pub(crate) session: u64,
}

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
            let (mut link, ends) = TransportLink::new(Box::new(TaskCloser {
                stop: Some(stop_tx),
            }));
            let dispatcher = Dispatcher::new(self.server.clone(), ends.inbound.clone());
            link.direct = Some(InProcessEnd {
                server: self.server.clone(),
                inbound: ends.inbound.clone(),
                session: dispatcher.session(),
            });
            tokio::spawn(drive(dispatcher, ends, stop_rx));
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

async fn drive(
    mut dispatcher: Dispatcher<tokio::sync::mpsc::Sender<Inbound>>,
    ends: TransportEnds,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) {
    let TransportEnds {
        mut outbound,
        inbound,
    } = ends;
    loop {
        tokio::select! {
            _ = &mut stop => break,
            () = dispatcher.reap() => {}
            message = outbound.recv() => match message {
                Some(message) => dispatcher.dispatch(message).await,
                None => break,
            }
        }
    }
    dispatcher.abort_all();
    let _ = inbound
        .send(Inbound::Closed(
            "the in-process server was stopped".to_owned(),
        ))
        .await;
}
