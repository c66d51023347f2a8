//! The built-in plugins of mcp-manager: `stdio` (local processes), `http`
//! (Streamable HTTP remotes), `sse` (legacy HTTP+SSE remotes) and `builtin`
//! (servers written in Rust and run in-process, among them `everything`,
//! the reference server that implements what the MCP conformance suite
//! checks).
//!
//! [`default_registry`] is the registry the gateway uses: every plugin of
//! this crate, registered under its `type`.
//!
//! # Invariants
//!
//! Never reaches pyo3. Everything here goes through the plugin API: the
//! runtime and the gateway know none of these types by name.
#![forbid(unsafe_code)]

pub mod builtin;
mod inprocess;
mod transports;

pub use inprocess::{BuiltinConfig, BuiltinPlugin, BuiltinServer, CATALOG, builtin};
pub use transports::{FrameSocketPlugin, HttpPlugin, SsePlugin, StdioPlugin};

use mcp_plugin_api::PluginRegistry;

/// A registry with every built-in plugin.
#[must_use]
pub fn default_registry() -> PluginRegistry {
    let mut registry = PluginRegistry::new();
    // Built for this very API version: registering cannot fail.
    let results = [
        registry.register(StdioPlugin),
        registry.register(HttpPlugin),
        registry.register(SsePlugin),
        registry.register(FrameSocketPlugin),
        registry.register(BuiltinPlugin),
    ];
    debug_assert!(results.iter().all(Result::is_ok));
    registry
}
