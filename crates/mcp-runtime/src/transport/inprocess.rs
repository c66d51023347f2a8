//! The in-process transport: a server written in Rust ([`McpServer`]),
//! called directly. Messages cross as values; nothing is encoded to bytes.
//!
//! Each request runs as its own task, so a slow request does not hold up
//! the others; `notifications/cancelled` aborts the request's task (see
//! the dispatcher).

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

async fn drive(
    server: Arc<dyn McpServer>,
    ends: TransportEnds,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) {
    let TransportEnds {
        mut outbound,
        inbound,
    } = ends;
    let mut dispatcher = Dispatcher::new(server, inbound.clone());
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
