//! `mcp-manager list --config FILE`: starts every server of a config, shows
//! each one's state and what it offers, and stops them again. With
//! `--connect URL` (`http://…/mcp` or `unix:PATH`) it shows a running
//! gateway instead, and the names of its tools.

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use mcp_runtime::{ListKind, McpRuntime, ServerHandle};

use mcp_control::{Started, start_servers};

use crate::cli::launch;

/// Arguments of `list`.
#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    /// The config file.
    #[arg(long, short, value_name = "FILE", required_unless_present = "connect")]
    config: Option<PathBuf>,
    /// Show a running gateway at URL (`http://HOST:PORT/mcp`, or
    /// `unix:PATH` for its frame socket) instead of a config's servers.
    #[arg(long, value_name = "URL", conflicts_with = "config")]
    connect: Option<String>,
}

/// One row of the table.
struct Row {
    cells: [String; 7],
}

const HEADER: [&str; 7] = [
    "SERVER",
    "STATE",
    "TYPE",
    "TOOLS",
    "RESOURCES",
    "PROMPTS",
    "PROTOCOL / REASON",
];

pub(crate) fn run(
    args: &ListArgs,
    plugins: &crate::cli::registries::Plugins,
) -> anyhow::Result<ExitCode> {
    let (config, registry) =
        match launch::load_or_connect(plugins, args.config.as_deref(), args.connect.as_deref()) {
            Ok(loaded) => loaded,
            Err(code) => return Ok(ExitCode::from(code)),
        };
    let (rows, failed, tools) = launch::run_async(async {
        let mcp = McpRuntime::start();
        let started = start_servers(&mcp, &registry, config.servers().iter()).await;
        let mut rows = Vec::new();
        let mut failed = false;
        let mut tools = None;
        for server in &started {
            failed |= matches!(server.server, Some(Err(_)));
            rows.push(row(server).await);
            if let (Some(_), Some(Ok(deployed))) = (&args.connect, &server.server) {
                tools = tool_names(deployed.handle()).await;
            }
        }
        mcp.shutdown().await;
        (rows, failed, tools)
    })?;
    let mut out = io::stdout().lock();
    print_table(&rows, &mut out).context("writing the table")?;
    if let Some(tools) = tools {
        writeln!(out, "\nTOOLS").context("writing the tools")?;
        for tool in tools {
            writeln!(out, "{tool}").context("writing the tools")?;
        }
    }
    Ok(if failed {
        ExitCode::from(launch::UNAVAILABLE)
    } else {
        ExitCode::SUCCESS
    })
}

async fn row(server: &Started<'_>) -> Row {
    let name = server.config.id().to_string();
    let kind = server.config.transport().name().to_owned();
    let dash = || "-".to_owned();
    match &server.server {
        None => Row {
            cells: [
                name,
                "disabled".into(),
                kind,
                dash(),
                dash(),
                dash(),
                dash(),
            ],
        },
        Some(Err(reason)) => Row {
            cells: [
                name,
                "failed".into(),
                kind,
                dash(),
                dash(),
                dash(),
                reason.clone(),
            ],
        },
        Some(Ok(deployed)) => {
            let handle = deployed.handle();
            let protocol = handle.session().map_or_else(dash, |s| {
                format!(
                    "{} ({} {})",
                    s.protocol_version, s.server_info.name, s.server_info.version
                )
            });
            Row {
                cells: [
                    name,
                    "running".into(),
                    kind,
                    count(handle, ListKind::Tools).await,
                    count(handle, ListKind::Resources).await,
                    count(handle, ListKind::Prompts).await,
                    protocol,
                ],
            }
        }
    }
}

/// The names of a server's tools; `None` when it could not say.
pub(crate) async fn tool_names(server: &ServerHandle) -> Option<Vec<String>> {
    let tools = server.list_all(ListKind::Tools).await.ok()?;
    Some(
        tools
            .iter()
            .filter_map(|tool| {
                let tool = tool.parse::<serde_json::Value>().ok()?;
                tool.get("name")?.as_str().map(str::to_owned)
            })
            .collect(),
    )
}

async fn count(handle: &ServerHandle, kind: ListKind) -> String {
    match handle.list_all(kind).await {
        Ok(items) => items.len().to_string(),
        Err(error) => format!("error: {error}"),
    }
}

fn print_table(rows: &[Row], out: &mut dyn Write) -> io::Result<()> {
    let mut lines = vec![HEADER.map(str::to_owned).to_vec()];
    lines.extend(rows.iter().map(|row| row.cells.to_vec()));
    out.write_all(crate::cli::table::aligned(&lines).as_bytes())
}
