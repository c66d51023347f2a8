//! mcp-manager: a manager and gateway for MCP servers.
//!
//! This facade re-exports the layers of the workspace, each behind one
//! additive cargo feature, so that a downstream crate compiles only what it
//! asks for:
//!
//! | feature | module | crate |
//! |---|---|---|
//! | `protocol` | [`protocol`] | `mcp-protocol`: wire format, sans-IO |
//! | `core` | `core` | `mcp-core`: ids, config model, errors, [`Launch`](core::Launch) |
//! | `runtime` | `runtime` | `mcp-runtime`: actors, supervision, client transports |
//! | `gateway` | `gateway` | `mcp-gateway`: many servers as one |
//! | `serve` | `serve` | `mcp-serve`: serving a server over stdio and HTTP |
//! | `plugin-api` | `plugin_api` | `mcp-plugin-api`: the plugin trait and registry |
//! | `plugins` | `plugins` | `mcp-plugins`: built-in server types |
//! | `plugin-host` | `plugin_host` | `mcp-plugin-host`: plugins loaded at run time from a plugins directory |
//! | `wasm` | `plugin_wasm` | `mcp-plugin-wasm`: wasm plugins, WebAssembly components run in a sandbox |
//! | `observability` | `observability` | `mcp-observability`: logs, metrics, traces |
//! | `control` | `control` | `mcp-control`: a config's servers behind one gateway, changed at run time |
//! | `cli` | [`Cli`] | the `mcp-manager` command line, over a registry you hand it |
//!
//! `cli` (on by default) is what the `mcp-manager` binary needs, and
//! `wasm` (on by default) lets it run wasm plugins; `full` is everything. A downstream binary that adds a server type registers
//! its plugin and runs the whole command line over that registry:
//!
//! ```no_run
//! # #[cfg(feature = "cli")]
//! # fn main() -> std::process::ExitCode {
//! let registry = mcp_manager::plugins::default_registry();
//! mcp_manager::Cli::with_registry(registry).main()
//! # }
//! # #[cfg(not(feature = "cli"))]
//! # fn main() {}
//! ```
//!
//! # Invariants
//!
//! Architecture invariant: this crate adds no layer of its own; it only
//! re-exports, and (behind `cli`) parses arguments and wires the layers
//! together. Its binary is a few lines over [`Cli`].
#![forbid(unsafe_code)]

#[cfg(feature = "cli")]
mod cli;

#[cfg(feature = "cli")]
pub use cli::Cli;

#[cfg(feature = "auth")]
pub use mcp_auth as auth;
#[cfg(feature = "control")]
pub use mcp_control as control;
#[cfg(feature = "core")]
pub use mcp_core as core;
#[cfg(feature = "gateway")]
pub use mcp_gateway as gateway;
#[cfg(feature = "observability")]
pub use mcp_observability as observability;
#[cfg(feature = "plugin-api")]
pub use mcp_plugin_api as plugin_api;
#[cfg(feature = "plugin-host")]
pub use mcp_plugin_host as plugin_host;
#[cfg(feature = "wasm")]
pub use mcp_plugin_wasm as plugin_wasm;
#[cfg(feature = "plugins")]
pub use mcp_plugins as plugins;
#[cfg(feature = "protocol")]
pub use mcp_protocol as protocol;
#[cfg(feature = "runtime")]
pub use mcp_runtime as runtime;
#[cfg(feature = "serve")]
pub use mcp_serve as serve;
