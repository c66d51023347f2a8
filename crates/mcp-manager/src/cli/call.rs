//! `mcp-manager call --config FILE SERVER/TOOL --args JSON`: starts one
//! server of a config, calls one of its tools, prints the result and stops
//! the server. `mcp-manager call --connect URL TOOL --args JSON` calls a
//! tool of a running gateway instead (`http://…/mcp` or `unix:PATH`, its
//! frame socket), by the name the gateway lists it under.
//!
//! Text content is printed as text, other content as JSON (`--json` prints
//! the whole result as JSON). The exit status is 0 when the tool succeeded,
//! 4 when it reported an error or the call failed, 3 when the server did not
//! start, and 2 for an invalid config or arguments, or a tool the server
//! does not have (its tools are listed).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use mcp_plugin_api::PluginRegistry;
use mcp_protocol::raw::Raw;
use mcp_runtime::{CallOptions, ErrorKind, McpRuntime, ServerHandle};
use serde_json::{Value, json};

use crate::cli::launch;

/// The exit status when the tool reported an error or the call failed.
const CALL_FAILED: u8 = 4;

/// Arguments of `call`.
#[derive(Debug, Args)]
pub(crate) struct CallArgs {
    /// The config file.
    #[arg(long, short, value_name = "FILE", required_unless_present = "connect")]
    config: Option<PathBuf>,
    /// Talk to a running gateway at URL (`http://HOST:PORT/mcp`, or
    /// `unix:PATH` for its frame socket) instead of starting a config's
    /// servers.
    #[arg(long, value_name = "URL", conflicts_with = "config")]
    connect: Option<String>,
    /// The server and the tool, as `SERVER/TOOL` (the tool's own name, not
    /// the namespaced one); with `--connect`, the tool's name as the
    /// gateway lists it.
    target: String,
    /// The tool's arguments, a JSON object.
    #[arg(long, value_name = "JSON", default_value = "{}")]
    args: String,
    /// Give up after this many milliseconds (default: the server's timeout).
    #[arg(long, value_name = "MS")]
    timeout_ms: Option<u64>,
    /// Print the whole result as JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(
    args: &CallArgs,
    plugins: &crate::cli::registries::Plugins,
) -> anyhow::Result<ExitCode> {
    let split = match &args.connect {
        Some(_) => Some((launch::CONNECTED, args.target.as_str())),
        None => args.target.split_once('/'),
    };
    let Some((server, tool)) = split else {
        eprintln!(
            "error: expected SERVER/TOOL, such as `everything/test_simple_text`, found {:?}",
            args.target
        );
        return Ok(ExitCode::from(launch::INVALID));
    };
    let arguments: Value = match serde_json::from_str(&args.args) {
        Ok(value @ Value::Object(_)) => value,
        Ok(other) => {
            eprintln!("error: --args must be a JSON object, found {other}");
            return Ok(ExitCode::from(launch::INVALID));
        }
        Err(error) => {
            eprintln!("error: --args is not valid JSON: {error}");
            return Ok(ExitCode::from(launch::INVALID));
        }
    };
    let (config, registry) =
        match launch::load_or_connect(plugins, args.config.as_deref(), args.connect.as_deref()) {
            Ok(loaded) => loaded,
            Err(code) => return Ok(ExitCode::from(code)),
        };
    let Some(server) = config.server(server) else {
        let names: Vec<&str> = config.servers().iter().map(|s| s.id().as_str()).collect();
        let file = args
            .config
            .as_deref()
            .unwrap_or(std::path::Path::new("the config"));
        eprintln!(
            "error: {} has no server `{server}`; it has: {}",
            file.display(),
            names.join(", ")
        );
        return Ok(ExitCode::from(launch::INVALID));
    };
    launch::run_async(async {
        let mcp = McpRuntime::start();
        let code = call(&mcp, &registry, server, tool, arguments, args).await;
        mcp.shutdown().await;
        code
    })
}

async fn call(
    mcp: &McpRuntime,
    registry: &PluginRegistry,
    server: &mcp_core::ServerConfig,
    tool: &str,
    arguments: Value,
    args: &CallArgs,
) -> ExitCode {
    let started = mcp_control::start_servers(mcp, registry, std::iter::once(server)).await;
    let deployed = match started.into_iter().next().and_then(|s| s.server) {
        Some(Ok(server)) => server,
        Some(Err(reason)) => {
            eprintln!("error: server `{}` did not start: {reason}", server.id());
            return ExitCode::from(launch::UNAVAILABLE);
        }
        None => {
            eprintln!("error: server `{}` is disabled in the config", server.id());
            return ExitCode::from(launch::UNAVAILABLE);
        }
    };
    let options = CallOptions {
        timeout: args.timeout_ms.map(Duration::from_millis),
        ..CallOptions::default()
    };
    let params = Raw::from_value(&json!({"name": tool, "arguments": arguments}));
    match deployed.request("tools/call", Some(params), options).await {
        Ok(result) => print_result(&result, args.json),
        Err(error) => {
            if *error.kind() == ErrorKind::Rpc {
                if let Some(names) = tools_without(deployed.handle(), tool).await {
                    eprintln!(
                        "error: server `{}` has no tool `{tool}`; it has: {}",
                        server.id(),
                        names.join(", ")
                    );
                    return ExitCode::from(launch::INVALID);
                }
            }
            eprintln!("error: calling `{}/{tool}` failed: {error}", server.id());
            ExitCode::from(CALL_FAILED)
        }
    }
}

/// The names of the server's tools when `tool` is not one of them; `None`
/// when it is, or the server could not say.
async fn tools_without(server: &ServerHandle, tool: &str) -> Option<Vec<String>> {
    let names = crate::cli::list::tool_names(server).await?;
    (!names.iter().any(|name| name == tool)).then_some(names)
}

fn print_result(result: &Raw<'_>, as_json: bool) -> ExitCode {
    let value: Value = result.parse().unwrap_or(Value::Null);
    if as_json {
        println!("{}", result.get());
    } else {
        let blocks = value.get("content").and_then(Value::as_array);
        for block in blocks.into_iter().flatten() {
            let text = block.get("text").and_then(Value::as_str);
            match text {
                Some(text) if block.get("type").and_then(Value::as_str) == Some("text") => {
                    println!("{text}")
                }
                _ => println!("{block}"),
            }
        }
        if let Some(structured) = value.get("structuredContent") {
            println!("{structured}");
        }
    }
    if value.get("isError") == Some(&Value::Bool(true)) {
        eprintln!("error: the tool reported an error");
        return ExitCode::from(CALL_FAILED);
    }
    ExitCode::SUCCESS
}
