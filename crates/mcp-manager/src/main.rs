//! The `mcp-manager` command-line tool.
//!
//! Exit status: 0 on success, 2 when the input (a config file) is invalid
//! or unreadable, 1 on an internal error. Usage errors are reported by the
//! argument parser with status 2.
#![forbid(unsafe_code)]
// Printing to the terminal is this binary's job.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod builtin;
mod check;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// A manager and gateway for MCP servers: one endpoint for all your
/// mcpServers.
#[derive(Debug, Parser)]
#[command(name = "mcp-manager", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate a config file and show the servers it would run.
    Check(check::CheckArgs),
    /// Run a server built into mcp-manager on its own (`everything`).
    Builtin(builtin::BuiltinArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match &cli.command {
        Command::Check(args) => check::run(args),
        Command::Builtin(args) => builtin::run(args),
    };
    outcome.unwrap_or_else(|err| {
        eprintln!("error: internal error: {err:#}");
        ExitCode::from(1)
    })
}
