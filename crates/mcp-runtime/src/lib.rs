//! The actor runtime of mcp-manager: `McpRuntime` and its command channel,
//! the upstream transports (stdio child processes, Streamable HTTP, legacy
//! HTTP+SSE, in-process servers), supervision, routing and aggregation,
//! resilience layers and graceful shutdown.
//!
//! **Status: empty.** This crate has no API yet; it exists so that the crate
//! graph, and the rule that it never depends on pyo3 or on plugin discovery,
//! are in place before the code is.
#![forbid(unsafe_code)]
