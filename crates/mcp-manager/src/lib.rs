//! mcp-manager: a manager and gateway for MCP servers.
//!
//! This facade re-exports the layers of the workspace, each behind one
//! additive cargo feature, so that a downstream crate compiles only what it
//! asks for:
//!
//! | feature | module | crate |
//! |---|---|---|
//! | `protocol` | [`protocol`] | `mcp-protocol`: wire format, sans-IO |
//! | `core` | [`core`] | `mcp-core`: ids, config model, errors |
//! | `runtime` | `runtime` | `mcp-runtime`: actors and transports |
//! | `plugin-api` | `plugin_api` | `mcp-plugin-api`: the plugin trait |
//! | `plugins` | `plugins` | `mcp-plugins`: built-in server types |
//! | `observability` | `observability` | `mcp-observability` |
//! | `control` | `control` | this crate: running a config's servers behind one gateway and changing them at run time |
//!
//! `full` enables all of them; `cli` (on by default) is what the
//! `mcp-manager` binary needs. [`Error`] is the error of this crate's own
//! code.
#![forbid(unsafe_code)]

#[cfg(feature = "control")]
pub mod control;
mod error;

pub use error::{Error, ErrorKind};

#[cfg(feature = "core")]
pub use mcp_core as core;
#[cfg(feature = "observability")]
pub use mcp_observability as observability;
#[cfg(feature = "plugin-api")]
pub use mcp_plugin_api as plugin_api;
#[cfg(feature = "plugins")]
pub use mcp_plugins as plugins;
#[cfg(feature = "protocol")]
pub use mcp_protocol as protocol;
#[cfg(feature = "runtime")]
pub use mcp_runtime as runtime;
