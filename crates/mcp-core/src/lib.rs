//! Domain types of mcp-manager, shared by every layer above the wire
//! protocol.
//!
//! This crate owns:
//!
//! - [`ServerId`], the validated name of a configured server;
//! - the config model ([`config`]): the `mcpServers` JSON that Claude
//!   Desktop, Cursor and VS Code write, plus mcp-manager's own per-server
//!   and gateway-wide options, read into a validated [`ManagerConfig`] with
//!   every problem of a file reported at once;
//! - the crate's one error type, [`Error`], with [`ErrorKind`] to branch on.
//!
//! The server and connection traits, the type-state markers of a server's
//! lifecycle and the policy types (timeouts, circuit breaker, bulkhead)
//! belong here as well.
//!
//! It deliberately knows nothing of the tokio runtime, of Python (pyo3) or
//! of HTTP clients and servers: it is plain data and validation, usable from
//! any runtime and cheap to compile.
#![forbid(unsafe_code)]

pub mod config;
mod error;
mod id;

pub use config::{ManagerConfig, ServerConfig, TransportConfig};
pub use error::{ConfigError, ConfigIssue, Error, ErrorKind, TextPosition};
pub use id::ServerId;
