//! Running the servers of a config behind one gateway, and changing them
//! while it serves: what the `mcp-manager` command line (its `serve`, hot
//! reload and admin API) and the Python package share.
//!
//! - [`start_servers`] starts the enabled servers of a config side by side
//!   through a [`PluginRegistry`] the caller hands in; [`check_plugins`]
//!   and [`server_entry`] check a config, or one `mcpServers` entry given
//!   at run time, against it.
//! - [`Control`] is an actor that owns the list of running servers and
//!   applies a new config, a deploy or an undeploy one at a time, keeping
//!   the [`Gateway`]'s backends in step.
//! - [`describe`] and [`health`] say how a server is doing, as JSON;
//!   [`describe_failed`] what became of one that did not start.
//!
//! # Invariants
//!
//! Architecture invariant: the registry is a value, never a default this
//! crate picks: whoever runs the manager (our binary, a downstream binary,
//! the Python package) decides which server types exist. This crate has no
//! binary target and never reaches pyo3 or an HTTP server; one error type,
//! [`Error`].
//!
//! [`PluginRegistry`]: mcp_plugin_api::PluginRegistry
//! [`Gateway`]: mcp_gateway::Gateway
#![forbid(unsafe_code)]

mod actor;
mod describe;
mod error;
mod plugins;
mod start;

pub use actor::{Control, FailedStart};
pub use describe::{describe, describe_all, describe_failed, describe_plugin, health};
pub use error::{Error, ErrorKind};
pub use plugins::{WithPlugins, with_plugins};
pub use start::{
    Policies, Report, Started, backend, check_plugins, credentials, pinning, policies,
    server_entry, sign_in, spec, start_servers,
};
