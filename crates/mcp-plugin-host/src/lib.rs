//! Plugins loaded at run time: a plugins directory with one folder per
//! plugin, each described by its manifest (`plugin.toml`: its name and
//! version, the plugin API it was written for, the server types it adds
//! with the JSON Schema of their settings, and what it may touch), turned
//! into server types of a [`mcp_plugin_api::PluginRegistry`].
//!
//! A `command` plugin is a manifest alone: each of its types is a child
//! process whose command line is made from a server's settings by
//! templates (`{setting}` placeholders; see [`manifest`] for the format).
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
//! No runtime, no async, no network: it reads files and describes how
//! servers are launched; the runtime starts them. Never reaches pyo3.
#![forbid(unsafe_code)]

mod command;
mod dir;
mod error;
pub mod manifest;
mod template;

pub use dir::{Fingerprint, Loaded, default_plugins_dir, load_dir, register};
pub use error::{Error, ErrorKind};
pub use manifest::{FsGrant, Grants, MANIFEST, Manifest, PluginForm, TypeManifest};
