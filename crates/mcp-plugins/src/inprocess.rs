//! The `builtin` plugin: servers written in Rust that run inside the
//! manager's process, chosen by name from a catalog.
//!
//! ```json
//! { "mcpServers": { "demo": { "type": "builtin", "server": "everything" } } }
//! ```

use std::sync::Arc;

use mcp_core::{McpServer, ServerConfig};
use mcp_plugin_api::{Capability, Error, Launch, McpServerPlugin};
use serde::Deserialize;

/// A built-in server: its name and how to make one.
#[derive(Clone, Copy)]
pub struct BuiltinServer {
    /// The name a config uses.
    pub name: &'static str,
    /// One line on what it is.
    pub about: &'static str,
    /// Makes a fresh server.
    pub make: fn() -> Arc<dyn McpServer>,
}

impl std::fmt::Debug for BuiltinServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BuiltinServer")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Every built-in server.
pub const CATALOG: &[BuiltinServer] = &[
    BuiltinServer {
        name: "everything",
        about: "the reference server: every feature of MCP, as the conformance suite checks it",
        make: || Arc::new(crate::builtin::everything::EverythingServer::new()),
    },
    BuiltinServer {
        name: "echo",
        about: "one tool, `echo`, that answers with the text it is given",
        make: || Arc::new(crate::builtin::echo::EchoServer),
    },
];

/// The built-in server called `name`.
#[must_use]
pub fn builtin(name: &str) -> Option<&'static BuiltinServer> {
    CATALOG.iter().find(|server| server.name == name)
}

/// The settings of a `builtin` entry.
#[derive(Clone, Debug, Deserialize)]
pub struct BuiltinConfig {
    /// Which built-in server to run.
    pub server: String,
}

/// Servers built into the manager.
#[derive(Clone, Copy, Debug, Default)]
pub struct BuiltinPlugin;

impl McpServerPlugin for BuiltinPlugin {
    type Config = BuiltinConfig;

    fn kind(&self) -> &'static str {
        "builtin"
    }

    fn settings_keys(&self) -> Option<&'static [&'static str]> {
        Some(&["server"])
    }

    fn capabilities(&self) -> &'static [Capability] {
        &[Capability::InProcess, Capability::Instances]
    }

    fn launch(&self, server: &ServerConfig, config: BuiltinConfig) -> Result<Launch, Error> {
        let Some(builtin) = builtin(&config.server) else {
            let names: Vec<&str> = CATALOG.iter().map(|s| s.name).collect();
            return Err(Error::invalid_config(format!(
                "server `{}` asks for the built-in server \"{}\", which does not exist",
                server.id(),
                config.server
            ))
            .with_hint(format!("the built-in servers are: {}", names.join(", "))));
        };
        Ok(Launch::in_process(builtin.name, (builtin.make)()))
    }
}
