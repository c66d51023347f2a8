//! MCP servers compiled to WebAssembly components, run inside the
//! manager's process by wasmtime, in a sandbox.
//!
//! A plugin is a component of the world in `wit/plugin.wit`
//! (`mcp-manager:plugin/server`): it exports `handle`, which takes one
//! JSON-RPC message as text and gives back the response as text, and may
//! import the manager's `host` interface to log to the client and report
//! progress. Everything else it imports comes from WASI 0.2, which the
//! manager provides with nothing granted but what the [`Sandbox`] says:
//! folders (read-only unless said), environment variables, a memory
//! limit, a timeout and fuel per message. No sockets, no outgoing HTTP.
//!
//! ```no_run
//! use std::sync::Arc;
//! use mcp_plugin_wasm::{ComponentFile, Sandbox, WasmServer};
//!
//! # fn main() -> Result<(), mcp_plugin_wasm::Error> {
//! let file = Arc::new(ComponentFile::new("clock", "plugins/clock/clock.wasm".as_ref(), false));
//! file.check()?; // a quick look at its header; it compiles when first needed
//! let server = WasmServer::new(file, Sandbox::default())?;
//! // `server` is an `McpServer`: hand it to the runtime as an in-process server.
//! # Ok(())
//! # }
//! ```
//!
//! A server keeps a small pool of instances, so that messages run side by
//! side; an instance that traps (a bug, memory past its limit, fuel run
//! out, a deadline passed) is thrown away and the message fails with an
//! error that says why, the next one gets a fresh instance. A fresh
//! instance is sent the `initialize` request the server last got, so
//! that every instance knows its client. Calls run on the caller's task
//! and yield to it every few milliseconds, so a plugin busy computing
//! does not hold a thread of the runtime.
//!
//! A component is compiled the first time a server needs it and the
//! machine code kept in [`cache_dir`] (`MCP_MANAGER_WASM_CACHE`, else
//! `$XDG_CACHE_HOME/mcp-manager/wasm`), a folder made for this user alone,
//! so that the next start of the manager loads it instead.
//!
//! This crate knows no manifests, plugins directories or registries: the
//! plugin host turns a manifest and a server's settings into a
//! [`Sandbox`].

#![forbid(unsafe_code)]

mod component;
mod engine;
mod error;
mod file;
mod sandbox;
mod server;

pub use component::Component;
pub use engine::cache_dir;
pub use error::{Error, ErrorKind};
pub use file::ComponentFile;
pub use sandbox::{DirGrant, Sandbox};
pub use server::WasmServer;

/// The version of the world in `wit/plugin.wit` that plugins are built
/// against.
pub const WORLD: &str = "mcp-manager:plugin/server@0.1.0";

/// The WIT text of the world, for plugin authors (`mcp-manager plugins
/// --wit` prints it).
pub const WIT: &str = include_str!("../wit/plugin.wit");
