//! Servers written in Rust that run inside mcp-manager's process, behind
//! [`mcp_core::McpServer`].
//!
//! - [`everything`]: the reference server, with one fixture for each check
//!   the MCP conformance suite makes of a server, for protocol versions
//!   2025-11-25 (stateful) and 2026-07-28 (stateless).

pub mod everything;

pub use everything::EverythingServer;
