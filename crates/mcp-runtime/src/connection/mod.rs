//! The connection: one per running instance of a server. It owns the
//! transport link, the table of requests in flight, their deadlines and the
//! progress routes, and nothing else touches them.
//!
//! It comes in two halves, as a sans-IO protocol crate does it:
//! [`machine::Machine`] is the state machine, which never awaits, never
//! reads a clock and never spawns: it is told what happened (`handle_*`:
//! a caller's command, a message from the server, a client's answer, the
//! time now) and is asked what to do (`poll_*`: the next message to send,
//! the next event for the world, when to wake it). [`driver::run`] is the
//! thin tokio task around it that moves messages between the machine, the
//! transport and the callers. The machine's tests run on virtual time: a
//! test says what time it is.
//!
//! Request ids are the runtime's own (many callers share one connection, so
//! theirs could clash): the caller's handle allocates a fresh integer for
//! each request. A caller's progress token is swapped for that integer on
//! the way up and swapped back on each progress notification on the way
//! down. Progress resets the request's timeout. A request that times out or
//! whose caller goes away is cancelled upstream with
//! `notifications/cancelled`.
//!
//! A request the server sends while serving a caller's (sampling,
//! elicitation, roots) goes to that caller's requester (see
//! [`crate::CallOptions::requester`]): the one of the most recent request in
//! flight that has one, which is exact whenever one caller at a time asks
//! for such work. Its answer goes back under the server's own id, and
//! resets the caller's request timeout as progress does. `ping` is answered
//! here; a request with nobody to ask gets `-32601`.
//!
//! The connection never waits on I/O: outgoing messages queue in a small
//! outbox that drains as the transport accepts them, and while the outbox is
//! full it stops taking commands (backpressure onto callers) but keeps
//! reading what the server sends, so neither side can deadlock the other.

mod driver;
mod machine;
#[cfg(test)]
mod tests;
mod wire;

use std::borrow::Cow;
use std::time::Duration;

use mcp_core::{RequestContext, ServerId};
use mcp_protocol::raw::Raw;
use mcp_protocol::{Notification, RequestId};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::error::{Error, Result};
use crate::server::UpstreamProtocol;

pub(crate) use driver::{Wiring, run};

/// Where a request's progress notifications go.
pub(crate) type ProgressSink = mpsc::Sender<Notification<'static>>;

/// A progress sink and the caller's own token.
type ProgressRoute = (ProgressSink, RequestId<'static>);

/// What a caller asks of a connection.
pub(crate) enum ConnCommand {
    Request {
        id: i64,
        method: Cow<'static, str>,
        params: Option<Raw<'static>>,
        timeout: Duration,
        /// When the caller sent it: time spent queued counts.
        enqueued: Instant,
        progress: Option<ProgressSink>,
        /// Who answers the server's requests to the client meanwhile.
        requester: Option<RequestContext>,
        reply: oneshot::Sender<Result<Raw<'static>>>,
    },
    Notify(Notification<'static>),
    Cancel {
        id: i64,
        reason: &'static str,
    },
    /// A request already answered while it was held; a placeholder.
    Expired,
    /// What a stateless server is asked on every connection changed (the
    /// resources watched, the log level): see `Machine::rebridge`.
    Bridged,
}

impl ConnCommand {
    /// When a request's time runs out.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        match self {
            Self::Request {
                enqueued, timeout, ..
            } => Some(*enqueued + *timeout),
            _ => None,
        }
    }
}

/// Why a connection ended.
#[derive(Debug)]
pub(crate) enum Exit {
    /// Every handle is gone or a stop was asked for; the transport is closed.
    Stopped,
    /// The handshake failed; nothing was served.
    StartFailed(Error),
    /// The transport ended or the server stopped answering health checks.
    Lost(String),
}

/// The settings a connection runs with.
#[derive(Clone, Debug)]
pub(crate) struct ConnectionSettings {
    pub(crate) server: ServerId,
    pub(crate) startup_timeout: Duration,
    pub(crate) health_interval: Option<Duration>,
    pub(crate) health_timeout: Duration,
    pub(crate) grace: Duration,
    pub(crate) protocol: UpstreamProtocol,
    /// Who answers what the server asks outside any request of a client's
    /// (and so roots are declared): the client session of a per-client
    /// server's instance (`Some(Some(..))`), or nobody for a per-client
    /// server's shared instances, which have no roots (`Some(None)`).
    /// `None` for a shared server: roots are not declared.
    pub(crate) roots: Option<Option<RequestContext>>,
}
