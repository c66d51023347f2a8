//! The `mcp-manager` command-line tool.
//!
//! Exit status: 0 on success, 2 when the input (a config file, the
//! arguments) is invalid or unreadable, 3 when a server needed did not
//! start, 4 when a called tool failed, 1 on an internal error.
#![forbid(unsafe_code)]
// Printing to the terminal is this binary's job.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod admin;
mod builtin;
mod call;
mod check;
mod launch;
mod list;
mod reload;
mod serve;
mod status;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// A manager and gateway for MCP servers: one endpoint for all your
/// mcpServers.
#[derive(Debug, Parser)]
#[command(name = "mcp-manager", version, about, long_about = None)]
struct Cli {
    /// Log level (`error`, `warn`, `info`, `debug`, `trace`, `off`) or a
    /// filter such as `info,mcp_runtime=debug`; logs go to stderr.
    #[arg(long, global = true, value_name = "LEVEL")]
    log_level: Option<String>,

    /// How log lines look: `text` for people, `json` for machines (one
    /// object per line).
    #[arg(long, global = true, value_name = "FORMAT", default_value = "text")]
    log_format: mcp_observability::LogFormat,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve every server of a config (or a built-in default) as one MCP
    /// server.
    Serve(serve::ServeArgs),
    /// Validate a config file and show the servers it would run.
    Check(check::CheckArgs),
    /// Start the servers of a config, show their state and what they
    /// offer, and stop them.
    List(list::ListArgs),
    /// Call one tool of one server of a config: `SERVER/TOOL --args JSON`.
    Call(call::CallArgs),
    /// Run a server built into mcp-manager on its own (`everything`, `echo`).
    Builtin(builtin::BuiltinArgs),
    /// Show the servers of a running gateway (`serve --admin`) as a table.
    Status(status::StatusArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(error) = mcp_observability::init_logging(cli.log_level.as_deref(), cli.log_format) {
        eprintln!("error: {error}");
        return ExitCode::from(2);
    }
    let outcome = match &cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Check(args) => check::run(args),
        Command::List(args) => list::run(args),
        Command::Call(args) => call::run(args),
        Command::Builtin(args) => builtin::run(args),
        Command::Status(args) => status::run(args),
    };
    outcome.unwrap_or_else(|err| {
        eprintln!("error: internal error: {err:#}");
        ExitCode::from(1)
    })
}
