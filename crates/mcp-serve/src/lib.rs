//! Serving one [`mcp_core::McpServer`] to clients: the server side of every
//! transport mcp-manager speaks.
//!
//! - [`serve_stdio`]: one client over a byte stream (newline-delimited
//!   JSON), such as the process's stdin and stdout ([`process_stdio`]:
//!   read and written through the reactor when they are pipes or sockets).
//! - [`serve_http`]: any number of clients over Streamable HTTP at
//!   [`MCP_PATH`], and over the legacy HTTP+SSE transport at [`SSE_PATH`]
//!   and [`MESSAGE_PATH`], with sessions, resumable streams, limits, the
//!   DNS-rebinding checks and a bounded drain on shutdown.
//! - [`serve_frames`]: local clients over a Unix socket with binary framing
//!   (the frame socket), one session per connection.
//!
//! The server served is usually the gateway, but any `McpServer` will do:
//! this crate knows nothing of the servers behind it.
//!
//! # Invariants
//!
//! Architecture invariant: this crate serves an `McpServer` and nothing
//! else; it never reaches the gateway, the plugins or pyo3. Each request
//! runs on a task of its own, cancelled by `notifications/cancelled`;
//! every channel is bounded and no lock is held across an `.await`.
#![forbid(unsafe_code)]

#[cfg(unix)]
mod frame;
mod http;
mod outlet;
mod stdio;

#[cfg(unix)]
pub use frame::{FrameServeOptions, bind_frame_socket, serve_frames};

pub use http::{
    HttpServeOptions, MCP_PATH, MESSAGE_PATH, NEWS_PATH, SSE_PATH, constant_time_eq, serve_http,
};
pub use stdio::{ProcessInput, ProcessOutput, STDIO_DRAIN, process_stdio, serve_stdio};

/// Locks `mutex`, taking the data of a poisoned one as it is: the critical
/// sections here are short and leave their data whole.
fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
