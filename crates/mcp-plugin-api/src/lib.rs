//! The plugin API of mcp-manager: the `McpServerPlugin` trait through which
//! every server type (stdio, Streamable HTTP, SSE, in-process) is created, the
//! plugin registry, capability discovery and plugin API versioning.
//!
//! **Status: empty.** This crate has no API yet. It will depend only on
//! `mcp-core`, never on pyo3 or on the runtime's internals.
#![forbid(unsafe_code)]
