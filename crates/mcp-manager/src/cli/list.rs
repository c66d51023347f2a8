//! `mcp-manager list --config FILE`: starts every server of a config, shows
//! each one's state and what it offers, and stops them again.

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use mcp_plugin_api::PluginRegistry;
use mcp_runtime::{ListKind, McpRuntime, ServerHandle};

use mcp_control::{Started, start_servers};

use crate::cli::launch;

/// Arguments of `list`.
#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    /// The config file.
    #[arg(long, short, value_name = "FILE")]
    config: PathBuf,
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

pub(crate) fn run(args: &ListArgs, registry: &PluginRegistry) -> anyhow::Result<ExitCode> {
    let config = match launch::load(registry, &args.config) {
        Ok(config) => config,
        Err(code) => return Ok(ExitCode::from(code)),
    };
    let (rows, failed) = launch::run_async(async {
        let mcp = McpRuntime::start();
        let started = start_servers(&mcp, registry, config.servers().iter()).await;
        let mut rows = Vec::new();
        let mut failed = false;
        for server in &started {
            failed |= matches!(server.server, Some(Err(_)));
            rows.push(row(server).await);
        }
        mcp.shutdown().await;
        (rows, failed)
    })?;
    print_table(&rows, &mut io::stdout().lock()).context("writing the table")?;
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

async fn count(handle: &ServerHandle, kind: ListKind) -> String {
    match handle.list_all(kind).await {
        Ok(items) => items.len().to_string(),
        Err(error) => format!("error: {error}"),
    }
}

fn print_table(rows: &[Row], out: &mut dyn Write) -> io::Result<()> {
    let mut widths = HEADER.map(str::len);
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(&row.cells) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: &[&str], out: &mut dyn Write| -> io::Result<()> {
        let mut text = String::new();
        for (i, (cell, width)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                text.push_str(cell);
            } else {
                text.push_str(&format!("{cell:<width$}  "));
            }
        }
        writeln!(out, "{}", text.trim_end())
    };
    line(&HEADER, out)?;
    for row in rows {
        let cells: Vec<&str> = row.cells.iter().map(String::as_str).collect();
        line(&cells, out)?;
    }
    Ok(())
}
