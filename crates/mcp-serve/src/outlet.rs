//! What a stdio or frame-socket session writes to its client: messages,
//! then the end. The end is sent, not inferred from the channel closing:
//! the server served may keep a session's peer (and so a sender) until it
//! sees that the session is gone, which it sees only once the writer has
//! ended (the gateway keeps its sessions' peers for notifications).

use mcp_protocol::Message;
use mcp_runtime::dispatch::Outlet;
use tokio::sync::mpsc;

/// One item for a session's writer.
pub(crate) enum Outgoing {
    /// A message to the client.
    Message(Message<'static>),
    /// Nothing more: write what is queued (and an error saying why the
    /// session ends, if there is one), then stop.
    End(Option<mcp_protocol::Error>),
}

/// A session's outlet: its writer's channel.
#[derive(Clone)]
pub(crate) struct SessionOutlet(pub(crate) mpsc::Sender<Outgoing>);

impl SessionOutlet {
    /// Tells the writer to stop after what is queued.
    pub(crate) async fn end(&self, error: Option<mcp_protocol::Error>) {
        let _ = self.0.send(Outgoing::End(error)).await;
    }
}

impl Outlet for SessionOutlet {
    async fn send(&self, message: Message<'static>) -> bool {
        self.0.send(Outgoing::Message(message)).await.is_ok()
    }

    fn is_closed(&self) -> bool {
        self.0.is_closed()
    }
}
