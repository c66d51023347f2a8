//! The runtime of mcp-manager: actors that run MCP servers and talk to them.
//!
//! - [`Server`]: the type-state API, the one way to deploy a server:
//!   `Server<Configured>::deploy` gives a `Server<Deployed>` (requests, its
//!   [`ServerHandle`], `undeploy`) or a `Server<Failed>` (the reason,
//!   `retry`).
//! - [`McpRuntime`]: the registry actor every server is deployed into,
//!   driven over one bounded channel: find a server by name, list them,
//!   their counters, shut everything down.
//! - [`ServerHandle`]: a deployed server, for sending requests directly to
//!   its connection actors. Each instance of a server has a supervisor that
//!   restarts it with backoff when its connection is lost, and a connection
//!   actor that owns the transport and the requests in flight (id remapping,
//!   progress routing, timeouts reset by progress, cancellation).
//! - [`transport`]: stdio child processes, Streamable HTTP and legacy
//!   HTTP+SSE remotes, and in-process servers, all behind one
//!   channel-shaped [`transport::TransportLink`].
//! - [`dispatch`]: running an [`mcp_core::McpServer`] for one client, one
//!   task per request, for the in-process transport and for every
//!   downstream transport (the `mcp-serve` crate).
//! - [`seal`]: what the replicas of one gateway seal for their clients
//!   (session ids, `requestState`s) with the key they share.
//!
//! # Invariants
//!
//! State lives in actors; channels are bounded; no lock is held across an
//! `.await`; nothing blocks a runtime thread. Every child process is killed
//! and reaped when its server stops, when the runtime shuts down, and when
//! its handle is dropped. This crate never reaches pyo3 and knows server
//! types only through [`transport::Connector`], never through plugin
//! discovery. `unsafe` appears in one module only,
//! `transport::frame::io`: taking ownership of descriptors received with
//! `SCM_RIGHTS`, and mapping a memfd once it is shown to be sealed against
//! change.
#![deny(unsafe_code)]

mod connection;
pub mod dispatch;
mod error;
pub mod observe;
mod resilience;
mod runtime;
pub mod seal;
mod server;
pub mod transport;
mod typestate;

pub use error::{Error, ErrorKind, Result};

/// Locks `mutex`, taking the data of a poisoned one as it is: the
/// runtime's critical sections are short and leave their data whole.
pub(crate) fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
pub use runtime::{McpRuntime, MetricsSnapshot, ServerMetrics, ServerStatus};
pub use server::{
    CallOptions, ListKind, RecentError, ServerEvent, ServerHandle, ServerSpec, ServerState,
    SessionInfo, UpstreamProtocol,
};
pub use typestate::Server;
