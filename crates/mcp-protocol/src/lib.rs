//! The wire protocol of mcp-manager: JSON-RPC 2.0 and the Model Context
//! Protocol message model, for every supported spec version, with no I/O.
//!
//! Bytes go in, messages come out, and the reverse; nothing here reads a
//! socket, spawns a task or looks at a clock. That keeps the protocol logic
//! testable with plain function calls and usable under any runtime.
//!
//! - [`jsonrpc`]: the envelope parser and encoder. `params` and `result` stay
//!   borrowed raw JSON, so forwarding a large tool result copies bytes and
//!   never builds a DOM of them.
//! - [`raw`]: an order-preserving object of raw members, for rewriting one
//!   member (a tool name, a URI) and passing the rest through untouched.
//! - [`mcp`]: typed views of the MCP messages a manager must understand
//!   (initialize, discover, list results, calls, notifications, `_meta`).
//! - [`version`]: the protocol versions, their feature table and negotiation.
//! - [`codec`]: newline-delimited JSON (stdio) and Server-Sent Events framing
//!   over byte buffers.
//!
//! # Invariants
//!
//! This crate never depends on tokio or on any I/O crate, never panics on
//! any input, and has one error type, [`Error`].
#![forbid(unsafe_code)]

pub mod codec;
mod error;
pub mod jsonrpc;
pub mod mcp;
pub mod raw;
mod values;
pub mod version;

pub use error::{Error, ErrorKind, Result};
pub use jsonrpc::{
    BatchPolicy, ErrorObject, ErrorResponse, Message, Notification, Packet, ProgressToken, Request,
    RequestId, Response,
};
pub use version::{Features, ProtocolVersion, VersionSet};
