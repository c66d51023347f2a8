//! Transports: how messages reach one upstream server and come back.
//!
//! Every transport has the same shape, whatever it runs on: a
//! [`TransportLink`] with a bounded outbound channel of messages to send, a
//! bounded inbound channel of what arrived, and a [`Closer`] that stops it.
//! The tasks that do the I/O are the transport's own; the connection actor
//! that uses the link never blocks on I/O. A [`Connector`] makes a fresh
//! link each time the server is (re)started.
//!
//! - [`stdio`]: a child process speaking newline-delimited JSON.
//! - [`http`]: a Streamable HTTP remote (sessions, SSE answers, resumption,
//!   the standalone GET stream, expired sessions renewed transparently, and
//!   stateless 2026-07-28 requests with their headers).
//! - [`sse`]: a legacy HTTP+SSE remote (2024-11-05).
//! - [`inprocess`]: an [`mcp_core::McpServer`] called directly.
//! - [`frame`]: a frame socket (binary frames over a Unix socket), such as
//!   another manager's `serve --frame-socket`.

#[cfg(unix)]
pub mod frame;
pub mod http;
pub mod inprocess;
pub mod sse;
mod stderr;
pub mod stdio;

use std::sync::Arc;
use std::time::Duration;

use mcp_core::auth::TokenSource;
use mcp_core::config::SandboxConfig;
use mcp_core::launch::{Launch, RemoteLaunch};
use mcp_core::{BoxFuture, ServerId};
use mcp_protocol::{Message, RequestId};
use tokio::sync::mpsc;

use crate::error::{Error, ErrorKind, Result};

/// How many messages a transport buffers in each direction.
pub const CHANNEL_CAPACITY: usize = 256;

/// What a transport delivers.
#[derive(Debug)]
pub enum Inbound {
    /// A message from the server.
    Message(Message<'static>),
    /// A message from the server that came on the stream of our request
    /// `request` (a Streamable HTTP request's event stream): a request
    /// of the server's among them was made while serving that request, so
    /// it goes to that request's client and no other.
    Related {
        /// The message.
        message: Message<'static>,
        /// The request on whose stream it came.
        request: RequestId<'static>,
    },
    /// One request could not be carried to the server, or its answer could
    /// not be read (a transport with one exchange per request, such as
    /// HTTP): that request fails as
    /// [`ErrorKind::Disconnected`] (no
    /// answer came, so it counts against the server's circuit breaker and
    /// a read may be retried); the transport lives on.
    Failed {
        /// The request's id.
        id: RequestId<'static>,
        /// Why, for the caller.
        reason: String,
    },
    /// The transport ended; no more messages will come.
    Closed(String),
}

/// Stops a transport.
pub trait Closer: Send + 'static {
    /// Stops the transport gracefully, forcefully once `grace` has passed,
    /// and returns when it is stopped (for a process: reaped).
    fn close(self: Box<Self>, grace: Duration) -> BoxFuture<'static, ()>;
}

/// The connection's end of a transport.
pub struct TransportLink {
    pub(crate) outbound: mpsc::Sender<Message<'static>>,
    pub(crate) inbound: mpsc::Receiver<Inbound>,
    pub(crate) closer: Box<dyn Closer>,
    /// The server itself, when it runs in this process.
    pub(crate) direct: Option<inprocess::InProcessEnd>,
}

/// The transport's end: where it takes messages to send and puts what
/// arrives.
pub struct TransportEnds {
    /// Messages to send to the server.
    pub outbound: mpsc::Receiver<Message<'static>>,
    /// Messages that arrived from the server, and the end of the stream.
    pub inbound: mpsc::Sender<Inbound>,
}

impl TransportLink {
    /// A link and the transport-side ends of its channels; `closer` stops
    /// whatever the transport runs.
    pub fn new(closer: Box<dyn Closer>) -> (Self, TransportEnds) {
        let (outbound_tx, outbound_rx) = mpsc::channel(CHANNEL_CAPACITY);
        let (inbound_tx, inbound_rx) = mpsc::channel(CHANNEL_CAPACITY);
        let link = Self {
            outbound: outbound_tx,
            inbound: inbound_rx,
            closer,
            direct: None,
        };
        let ends = TransportEnds {
            outbound: outbound_rx,
            inbound: inbound_tx,
        };
        (link, ends)
    }
}

impl std::fmt::Debug for TransportLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransportLink").finish_non_exhaustive()
    }
}

/// Starts a transport to one server; called again on every restart.
pub trait Connector: Send + Sync + 'static {
    /// Starts the transport.
    fn connect(&self) -> BoxFuture<'_, Result<TransportLink>>;

    /// A short description for logs: the command line or the URL.
    fn describe(&self) -> String;
}

/// The longest message accepted from a server by the transports
/// [`connector`] makes: 16 MiB.
pub const MAX_MESSAGE: usize = 16 * 1024 * 1024;

/// The connector that starts what `launch` describes, for `server`, in
/// `sandbox` when given: only a child process can run in one, so for any
/// other launch the connector refuses to start, saying why. A remote
/// server's link gets its access tokens from `credentials`, when given.
#[must_use]
pub fn connector(
    server: &ServerId,
    launch: Launch,
    sandbox: Option<&SandboxConfig>,
    credentials: Option<Arc<dyn TokenSource>>,
) -> Arc<dyn Connector> {
    let other: Arc<dyn Connector> = match launch {
        Launch::Stdio(stdio) => {
            return Arc::new(
                stdio::StdioConnector::new(stdio::StdioCommand {
                    server: server.clone(),
                    command: stdio.command,
                    args: stdio.args,
                    env: stdio.env,
                    cwd: stdio.cwd,
                    max_message: MAX_MESSAGE,
                    sandbox: sandbox.cloned(),
                })
                .shown_with(stdio.shown_args),
            );
        }
        Launch::StreamableHttp(remote) => Arc::new(http::HttpConnector::new(target(
            server,
            remote,
            credentials,
        ))),
        Launch::Sse(remote) => {
            Arc::new(sse::SseConnector::new(target(server, remote, credentials)))
        }
        Launch::FrameSocket(path) => Arc::new(frame::FrameConnector::new(
            server.clone(),
            path,
            MAX_MESSAGE,
        )),
        Launch::InProcess(inprocess) => Arc::new(inprocess::InProcessConnector::new(
            inprocess.name,
            inprocess.server,
        )),
    };
    match sandbox {
        None => other,
        Some(_) => Arc::new(Refused {
            inner: other,
            reason: "a sandbox applies only to servers run as local processes; this server's type does not run one",
        }),
    }
}

/// A connector that never starts its server, for a reason.
struct Refused {
    inner: Arc<dyn Connector>,
    reason: &'static str,
}

impl Connector for Refused {
    fn connect(&self) -> BoxFuture<'_, Result<TransportLink>> {
        Box::pin(async move { Err(Error::new(ErrorKind::Start, self.reason)) })
    }

    fn describe(&self) -> String {
        self.inner.describe()
    }
}

fn target(
    server: &ServerId,
    remote: RemoteLaunch,
    credentials: Option<Arc<dyn TokenSource>>,
) -> http::HttpTarget {
    http::HttpTarget {
        server: server.clone(),
        url: remote.url,
        headers: remote.headers,
        max_message: MAX_MESSAGE,
        credentials,
    }
}
