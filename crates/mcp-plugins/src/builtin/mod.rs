//! Servers written in Rust that run inside mcp-manager's process, behind
//! [`mcp_core::McpServer`].
//!
//! - [`everything`]: the reference server, with one fixture for each check
//!   the MCP conformance suite makes of a server, for protocol versions
//!   2025-11-25 (stateful) and 2026-07-28 (stateless).
//! - [`echo`]: one tool that answers with its input, to measure what sits
//!   in front of a server.

pub mod echo;
pub mod everything;

pub use echo::EchoServer;
pub use everything::EverythingServer;
