//! The plugins of the transport types every `mcpServers` file uses: `stdio`,
//! `http` (Streamable HTTP) and `sse` (legacy HTTP+SSE), and of the frame
//! socket (`unix:` URLs). Their settings are
//! read and validated by the config model; the plugins turn them into
//! [`Launch`]es.

use mcp_core::ServerConfig;
use mcp_core::config::{HttpConfig, TransportConfig};
use mcp_plugin_api::{
    Capability, Error, Launch, McpServerPlugin, NoSettings, RemoteLaunch, StdioLaunch,
};

fn mismatch(server: &ServerConfig, kind: &str) -> Error {
    Error::invalid_config(format!(
        "server `{}` is not a `{kind}` server (its type is `{}`)",
        server.id(),
        server.transport().name()
    ))
}

/// Local processes speaking MCP on stdin and stdout.
#[derive(Clone, Copy, Debug, Default)]
pub struct StdioPlugin;

impl McpServerPlugin for StdioPlugin {
    type Config = NoSettings;

    fn kind(&self) -> &'static str {
        "stdio"
    }

    fn capabilities(&self) -> &'static [Capability] {
        &[Capability::ChildProcess, Capability::Instances]
    }

    fn launch(&self, server: &ServerConfig, _: NoSettings) -> Result<Launch, Error> {
        let TransportConfig::Stdio(stdio) = server.transport() else {
            return Err(mismatch(server, self.kind()));
        };
        Ok(Launch::Stdio(StdioLaunch {
            command: stdio.command().to_owned(),
            args: stdio.args().to_vec(),
            shown_args: (stdio.shown_args() != stdio.args()).then(|| stdio.shown_args().to_vec()),
            env: stdio.env().clone(),
            cwd: stdio.cwd().map(Into::into),
        }))
    }
}

fn remote(http: &HttpConfig) -> RemoteLaunch {
    RemoteLaunch {
        url: http.url().as_str().to_owned(),
        headers: http.headers().clone(),
    }
}

/// Remote servers over Streamable HTTP.
#[derive(Clone, Copy, Debug, Default)]
pub struct HttpPlugin;

impl McpServerPlugin for HttpPlugin {
    type Config = NoSettings;

    fn kind(&self) -> &'static str {
        "http"
    }

    fn aliases(&self) -> &'static [&'static str] {
        &["streamable-http", "streamableHttp"]
    }

    fn capabilities(&self) -> &'static [Capability] {
        &[Capability::Remote]
    }

    fn launch(&self, server: &ServerConfig, _: NoSettings) -> Result<Launch, Error> {
        let TransportConfig::StreamableHttp(http) = server.transport() else {
            return Err(mismatch(server, self.kind()));
        };
        Ok(Launch::StreamableHttp(remote(http)))
    }
}

/// Remote servers over the legacy HTTP+SSE transport (protocol 2024-11-05).
#[derive(Clone, Copy, Debug, Default)]
pub struct SsePlugin;

impl McpServerPlugin for SsePlugin {
    type Config = NoSettings;

    fn kind(&self) -> &'static str {
        "sse"
    }

    fn capabilities(&self) -> &'static [Capability] {
        &[Capability::Remote]
    }

    fn launch(&self, server: &ServerConfig, _: NoSettings) -> Result<Launch, Error> {
        let TransportConfig::Sse(http) = server.transport() else {
            return Err(mismatch(server, self.kind()));
        };
        Ok(Launch::Sse(remote(http)))
    }
}

/// Servers on a local frame socket (a `url` of the form `unix:/path`),
/// such as another manager's `serve --frame-socket`.
#[derive(Clone, Copy, Debug, Default)]
pub struct FrameSocketPlugin;

impl McpServerPlugin for FrameSocketPlugin {
    type Config = NoSettings;

    fn kind(&self) -> &'static str {
        "frame-socket"
    }

    fn capabilities(&self) -> &'static [Capability] {
        &[Capability::Remote]
    }

    fn launch(&self, server: &ServerConfig, _: NoSettings) -> Result<Launch, Error> {
        let TransportConfig::FrameSocket(socket) = server.transport() else {
            return Err(mismatch(server, self.kind()));
        };
        Ok(Launch::FrameSocket(socket.path().to_owned()))
    }
}
