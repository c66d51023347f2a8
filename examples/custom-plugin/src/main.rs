//! `custom-manager`: the `mcp-manager` command line with two server types
//! of its own, added through the plugin API alone.
//!
//! - `greeter` runs in-process: one tool, `greet`, that greets a name with
//!   the `greeting` of its config entry.
//! - `self-child` runs one of mcp-manager's built-in servers as a child
//!   process of this very binary (`custom-manager builtin NAME --stdio`),
//!   supervised like any stdio server.

use std::process::ExitCode;
use std::sync::Arc;

use mcp_manager::core::{BoxFuture, HandlerResult, McpServer, RequestContext, ServerConfig};
use mcp_manager::plugin_api::{Capability, Error, Launch, McpServerPlugin};
use mcp_manager::protocol::mcp::{CallToolParams, Method, View};
use mcp_manager::protocol::raw::Raw;
use mcp_manager::protocol::{ErrorObject, Notification, Request};
use serde::Deserialize;
use serde_json::json;

/// The settings of a `greeter` entry.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GreeterConfig {
    /// What a name is greeted with.
    greeting: String,
}

/// The `greeter` server type.
struct GreeterPlugin;

impl McpServerPlugin for GreeterPlugin {
    type Config = GreeterConfig;

    fn kind(&self) -> &'static str {
        "greeter"
    }

    fn capabilities(&self) -> &'static [Capability] {
        &[Capability::InProcess, Capability::Instances]
    }

    fn launch(&self, server: &ServerConfig, config: GreeterConfig) -> Result<Launch, Error> {
        if config.greeting.trim().is_empty() {
            return Err(Error::invalid_config(format!(
                "server `{}`: `greeting` must not be empty",
                server.id()
            )));
        }
        Ok(Launch::in_process("greeter", Arc::new(Greeter(config.greeting))))
    }
}

/// A server with one tool, `greet`.
struct Greeter(String);

fn answer(value: &serde_json::Value) -> HandlerResult {
    Ok(Raw::from_value(value))
}

impl Greeter {
    fn call(&self, request: Request<'static>) -> HandlerResult {
        let params = CallToolParams::from_params(request.params)
            .map_err(|e| ErrorObject::new(e.code(), e.message().to_owned()))?;
        if params.name != "greet" {
            return Err(ErrorObject::new(-32602, format!("Unknown tool: {}", params.name)));
        }
        let name = params
            .arguments
            .as_ref()
            .and_then(|a| serde_json::from_str::<serde_json::Value>(a.get()).ok())
            .and_then(|a| a.get("name").and_then(|n| n.as_str()).map(str::to_owned));
        // Arguments that do not fit are the tool's error, for the model to
        // read and correct, not a protocol error.
        let (text, is_error) = match name {
            Some(name) => (format!("{}, {name}!", self.0), false),
            None => ("`greet` needs {\"name\": string}".to_owned(), true),
        };
        answer(&json!({"content": [{"type": "text", "text": text}], "isError": is_error}))
    }
}

impl McpServer for Greeter {
    fn handle_request(
        &self,
        request: Request<'static>,
        _context: RequestContext,
    ) -> BoxFuture<'_, HandlerResult> {
        let result = match Method::from_name(&request.method) {
            Some(Method::Initialize) => answer(&json!({
                "protocolVersion": "2025-06-18",
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "greeter", "version": "1.0.0"},
            })),
            Some(Method::Ping) => answer(&json!({})),
            Some(Method::ToolsList) => answer(&json!({"tools": [{
                "name": "greet",
                "description": "Greets someone.",
                "inputSchema": {
                    "type": "object",
                    "properties": {"name": {"type": "string"}},
                    "required": ["name"],
                },
            }]})),
            Some(Method::ToolsCall) => self.call(request),
            _ => Err(ErrorObject::new(
                -32601,
                format!("Method not found: {}", request.method),
            )),
        };
        Box::pin(std::future::ready(result))
    }

    fn handle_notification(
        &self,
        _notification: Notification<'static>,
        _context: RequestContext,
    ) -> BoxFuture<'_, ()> {
        Box::pin(std::future::ready(()))
    }
}

/// The settings of a `self-child` entry.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SelfChildConfig {
    /// Which built-in server the child runs.
    server: String,
}

/// The `self-child` server type: a built-in server in a child process.
struct SelfChildPlugin;

impl McpServerPlugin for SelfChildPlugin {
    type Config = SelfChildConfig;

    fn kind(&self) -> &'static str {
        "self-child"
    }

    fn capabilities(&self) -> &'static [Capability] {
        &[Capability::ChildProcess, Capability::Instances]
    }

    fn launch(&self, server: &ServerConfig, config: SelfChildConfig) -> Result<Launch, Error> {
        let program = std::env::current_exe().map_err(|e| {
            Error::invalid_config(format!(
                "server `{}`: cannot find this program to run it again: {e}",
                server.id()
            ))
        })?;
        Ok(Launch::stdio(program.to_string_lossy())
            .args(["builtin", config.server.as_str(), "--stdio"])
            .into())
    }
}

fn main() -> ExitCode {
    let mut registry = mcp_manager::plugins::default_registry();
    for outcome in [registry.register(GreeterPlugin), registry.register(SelfChildPlugin)] {
        if let Err(error) = outcome {
            eprintln!("error: {error}");
            return ExitCode::from(1);
        }
    }
    mcp_manager::Cli::with_registry(registry).main()
}
