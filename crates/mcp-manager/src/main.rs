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
use mcp_observability::traces::{DEFAULT_SAMPLE_RATIO, OtlpOptions, OtlpProtocol};

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

    /// Export traces over OTLP/HTTP to this collector
    /// (`http://127.0.0.1:4318`); also on when
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`
    /// is set.
    #[arg(long, global = true, value_name = "URL")]
    otlp_endpoint: Option<String>,

    /// The OTLP wire format: `http/protobuf` or `http/json` (default:
    /// `OTEL_EXPORTER_OTLP_PROTOCOL`, else `http/protobuf`).
    #[arg(long, global = true, value_name = "PROTOCOL")]
    otlp_protocol: Option<OtlpProtocol>,

    /// The share of requests without trace context that are traced, 0 to 1
    /// (default: `OTEL_TRACES_SAMPLER_ARG`, else 0.01); a request its client
    /// traces is always traced.
    #[arg(long, global = true, value_name = "RATIO")]
    trace_sample_ratio: Option<f64>,

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

/// Where traces go, if anywhere: the command line, else the standard
/// OpenTelemetry variables.
fn otlp_options(cli: &Cli) -> Result<Option<OtlpOptions>, String> {
    let from_env = |key: &str| std::env::var(key).ok().filter(|v| !v.is_empty());
    let wanted = cli.otlp_endpoint.is_some()
        || from_env("OTEL_EXPORTER_OTLP_ENDPOINT").is_some()
        || from_env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_some();
    if !wanted {
        return Ok(None);
    }
    let protocol = match (cli.otlp_protocol, from_env("OTEL_EXPORTER_OTLP_PROTOCOL")) {
        (Some(protocol), _) => protocol,
        (None, Some(text)) => text.parse()?,
        (None, None) => OtlpProtocol::default(),
    };
    let sample_ratio = match (cli.trace_sample_ratio, from_env("OTEL_TRACES_SAMPLER_ARG")) {
        (Some(ratio), _) => ratio,
        (None, Some(text)) => text
            .parse()
            .map_err(|_| format!("OTEL_TRACES_SAMPLER_ARG={text:?} is not a ratio"))?,
        (None, None) => DEFAULT_SAMPLE_RATIO,
    };
    if !(0.0..=1.0).contains(&sample_ratio) {
        return Err(format!(
            "the trace sample ratio must be from 0 to 1, not {sample_ratio}"
        ));
    }
    Ok(Some(OtlpOptions {
        endpoint: cli.otlp_endpoint.clone(),
        protocol,
        sample_ratio,
        service_name: from_env("OTEL_SERVICE_NAME").unwrap_or_else(|| "mcp-manager".to_owned()),
    }))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let telemetry = otlp_options(&cli).and_then(|otlp| {
        mcp_observability::init(cli.log_level.as_deref(), cli.log_format, otlp.as_ref())
            .map_err(|e| e.to_string())
    });
    let telemetry = match telemetry {
        Ok(telemetry) => telemetry,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    let outcome = match &cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Check(args) => check::run(args),
        Command::List(args) => list::run(args),
        Command::Call(args) => call::run(args),
        Command::Builtin(args) => builtin::run(args),
        Command::Status(args) => status::run(args),
    };
    let code = outcome.unwrap_or_else(|err| {
        eprintln!("error: internal error: {err:#}");
        ExitCode::from(1)
    });
    telemetry.shutdown();
    code
}
