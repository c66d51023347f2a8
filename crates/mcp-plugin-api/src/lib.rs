//! The plugin API of mcp-manager: every server type (a child process over
//! stdio, a Streamable HTTP or legacy SSE remote, a server built into the
//! manager, or a type a downstream crate adds) is a [`McpServerPlugin`].
//!
//! A plugin is named after the `type` a server entry declares, reads its
//! own typed settings from the entry (`Config: DeserializeOwned`), says what
//! it can do ([`Capability`]), and turns a server's config into a
//! [`Launch`]: a child process, a remote endpoint, or an
//! [`mcp_core::McpServer`] to run in-process, which the runtime then starts
//! and supervises. The [`PluginRegistry`] picks the plugin for each server,
//! refuses a plugin built for an incompatible API version, and gives the
//! server's [`Launch`]. A new server type is one more registered plugin:
//! nothing in the runtime or the gateway changes. A plugin loaded at run
//! time (from a plugins directory, by `mcp-plugin-host`) is a
//! [`DynamicPlugin`]: it describes itself ([`PluginInfo`]) instead of
//! naming a settings type, and judges a server's settings itself, each
//! problem at its path.
//!
//! # Invariants
//!
//! This crate never reaches pyo3, the runtime, an async runtime or an HTTP
//! or TLS stack: a plugin author compiles `mcp-core` and serde, little
//! more. It knows no concrete server type: the built-in plugins live in
//! `mcp-plugins`.
#![forbid(unsafe_code)]

mod error;
mod registry;

use mcp_core::{ConfigIssue, ServerConfig};
use serde::de::DeserializeOwned;

pub use error::{Error, ErrorKind};
pub use mcp_core::launch::{InProcessLaunch, Launch, RemoteLaunch, StdioLaunch};
pub use registry::{PluginInfo, PluginOrigin, PluginRegistry, plugin_kind};

/// The version of this API that a plugin is built against.
///
/// A plugin is compatible with a host of the same major version whose minor
/// version is at least the plugin's: minors only add.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ApiVersion {
    /// Incremented by a breaking change.
    pub major: u16,
    /// Incremented by an addition.
    pub minor: u16,
}

impl ApiVersion {
    /// A version.
    #[must_use]
    pub const fn new(major: u16, minor: u16) -> Self {
        Self { major, minor }
    }

    /// Whether a plugin built for `self` can run on a host at `host`.
    #[must_use]
    pub fn runs_on(self, host: ApiVersion) -> bool {
        self.major == host.major && self.minor <= host.minor
    }
}

impl std::fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// The API version of this build.
///
/// 2.0: a plugin describes how its servers are reached ([`Launch`]) instead
/// of building the runtime's connector. 2.1: plugins loaded at run time
/// ([`DynamicPlugin`]).
pub const PLUGIN_API_VERSION: ApiVersion = ApiVersion::new(2, 1);

/// What a plugin's servers are and can do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Capability {
    /// Each server is a child process of the manager.
    ChildProcess,
    /// Each server is reached over the network.
    Remote,
    /// Each server runs inside the manager's process.
    InProcess,
    /// Several instances of one server can run side by side (`instances`).
    Instances,
}

impl Capability {
    /// A short name for listings.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::ChildProcess => "child-process",
            Self::Remote => "remote",
            Self::InProcess => "in-process",
            Self::Instances => "instances",
        }
    }
}

/// Settings for plugins that need none beyond what the config model
/// already holds (an empty object, or absent).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoSettings {}

/// A server type.
pub trait McpServerPlugin: Send + Sync + 'static {
    /// The plugin's own settings, read from the server's entry: the members
    /// that are not mcp-manager's common options. Servers of the built-in
    /// transport types (stdio, http, sse) carry theirs in
    /// [`ServerConfig::transport`] and read as an empty object here.
    type Config: DeserializeOwned;

    /// The `type` this plugin serves.
    fn kind(&self) -> &'static str;

    /// The keys of its settings, when the plugin lists them: other members
    /// of an entry of its type (besides mcp-manager's common options) are
    /// then left out of the settings it reads, with a warning that
    /// suggests the nearest key, instead of failing to deserialize. `None`
    /// (the default) passes every member on, for `Config` to judge.
    fn settings_keys(&self) -> Option<&'static [&'static str]> {
        None
    }

    /// Other spellings of the `type` that mean the same.
    fn aliases(&self) -> &'static [&'static str] {
        &[]
    }

    /// The API version the plugin was built for.
    fn api_version(&self) -> ApiVersion {
        PLUGIN_API_VERSION
    }

    /// What the plugin's servers are and can do.
    fn capabilities(&self) -> &'static [Capability];

    /// How to reach a server of this type: what the runtime starts (and
    /// restarts) for it.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidConfig`] when the config does not fit this
    /// plugin, with a reason that tells the user what to change.
    fn launch(&self, server: &ServerConfig, config: Self::Config) -> Result<Launch, Error>;
}

/// A server type known only at run time: one a plugin loaded from a
/// plugins directory adds. Unlike an [`McpServerPlugin`] it has no
/// settings type: it describes itself and judges a server's settings
/// itself.
pub trait DynamicPlugin: Send + Sync + 'static {
    /// What it is: its `type` and aliases, the API version it was written
    /// for, its capabilities, where it comes from, its grants and its
    /// settings schema.
    fn info(&self) -> PluginInfo;

    /// Every problem of `server`'s settings, each at its JSON path in the
    /// config (`mcpServers.NAME.SETTING`); empty when they fit.
    fn settings_issues(&self, server: &ServerConfig) -> Vec<ConfigIssue>;

    /// How to reach a server of this type.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidConfig`] when the settings do not fit.
    fn launch(&self, server: &ServerConfig) -> Result<Launch, Error>;
}
