//! `mcp-manager serve`: every server of a config behind one MCP endpoint.
//!
//! Without `--config` it serves a built-in default: the reference server
//! `everything` in-process (namespace `everything`) and the same server as a
//! child process of this very binary (namespace `child`), so it runs on a
//! fresh machine with nothing else installed. What starts and what fails is
//! reported on stderr; stdout carries the MCP stream.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use mcp_core::ManagerConfig;
use mcp_runtime::McpRuntime;
use mcp_runtime::gateway::{Backend, Gateway};

use crate::launch;

/// Arguments of `serve`.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// The config file; without it, a built-in default.
    #[arg(long, short, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Serve MCP over stdin and stdout (for clients that start the gateway
    /// as a child process, like Claude Desktop).
    #[arg(long)]
    stdio: bool,
}

/// The config served when none is given.
fn default_config() -> anyhow::Result<ManagerConfig> {
    let exe = std::env::current_exe().context("finding this program's path")?;
    let text = serde_json::json!({
        "mcpServers": {
            "everything": {"type": "builtin", "server": "everything"},
            "child": {"command": exe, "args": ["builtin", "everything", "--stdio"]}
        }
    })
    .to_string();
    let env = |_: &str| None;
    Ok(ManagerConfig::from_json_str(&text, None, &env)?)
}

pub(crate) fn run(args: &ServeArgs) -> anyhow::Result<ExitCode> {
    if !args.stdio {
        eprintln!("error: say where to serve: --stdio");
        return Ok(ExitCode::from(launch::INVALID));
    }
    let config = match &args.config {
        Some(path) => match launch::load(path) {
            Ok(config) => config,
            Err(code) => return Ok(ExitCode::from(code)),
        },
        None => default_config()?,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(serve(&config))
}

async fn serve(config: &ManagerConfig) -> anyhow::Result<ExitCode> {
    let mcp = McpRuntime::start();
    let started = launch::start(&mcp, config.servers().iter()).await;
    let mut backends = Vec::new();
    for server in started {
        let id = server.config.id();
        match server.handle {
            None => eprintln!("mcp-manager: {id}: disabled"),
            Some(Err(reason)) => eprintln!("mcp-manager: {id}: failed to start: {reason}"),
            Some(Ok(handle)) => {
                let about = handle.session().map_or_else(String::new, |s| {
                    format!(
                        " ({} {}, protocol {})",
                        s.server_info.name, s.server_info.version, s.protocol_version
                    )
                });
                eprintln!("mcp-manager: {id}: running{about}");
                backends.push(Backend {
                    handle,
                    namespace: server.config.namespace().to_owned(),
                    tools: server.config.tools().clone(),
                });
            }
        }
    }
    eprintln!(
        "mcp-manager: serving {} server(s) on stdio, names joined with {:?}",
        backends.len(),
        config.gateway().separator()
    );
    let gateway =
        Gateway::new(backends, config.gateway().separator()).with_notifications(mcp.clone());
    let served = mcp_runtime::serve_stdio(
        gateway.into(),
        tokio::io::stdin(),
        tokio::io::stdout(),
        mcp_plugins::MAX_MESSAGE,
    )
    .await;
    mcp.shutdown().await;
    served.context("serving stdio")?;
    Ok(ExitCode::SUCCESS)
}
