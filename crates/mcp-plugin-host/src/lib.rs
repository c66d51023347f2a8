//! Plugins loaded at run time: a plugins directory with one folder per
//! plugin, each described by its manifest (`plugin.toml`: its name and
//! version, the plugin API it was written for, the server types it adds
//! with the JSON Schema of their settings, and what it may touch), turned
//! into server types of a [`mcp_plugin_api::PluginRegistry`].
//!
//! A `command` plugin is a manifest alone: each of its types is a child
//! process whose command line is made from a server's settings by
//! templates (`{setting}` placeholders; see [`manifest`] for the format).
//! A `wasm` plugin's types are WebAssembly components run in-process by
//! `mcp-plugin-wasm` (feature `wasm`, on by default), each server in a
//! sandbox of what the manifest grants, narrowed by its config entry
//! ([`grants`]).
//! Settings are checked against the type's schema, each problem reported
//! at its JSON path in the config (`mcpServers.time.package`).
//!
//! Loading never fails as a whole: a folder that is not a plugin, a
//! manifest that does not parse or hold together, a plugin built for
//! another plugin API or claiming a type that is taken, each is reported
//! with the plugin's name and path, and the others load.
//!
//! # Invariants
//!
//! No runtime, no network: it reads files and describes how servers are
//! launched; the runtime starts them (a wasm server is an `McpServer`
//! object that `mcp-plugin-wasm` provides, and the only way this crate
//! reaches an async runtime). Never reaches pyo3.
#![forbid(unsafe_code)]

mod dir;
mod error;
pub mod grants;
mod loaded;
pub mod manifest;
mod template;
#[cfg(feature = "wasm")]
mod wasm;

pub use dir::{Fingerprint, Loaded, default_plugins_dir, load_dir, register};
pub use error::{Error, ErrorKind};
pub use manifest::{FsGrant, Grants, Limits, MANIFEST, Manifest, PluginForm, TypeManifest};
/// The world wasm plugins are built against, and its WIT text.
#[cfg(feature = "wasm")]
pub use mcp_plugin_wasm::{WIT, WORLD};
