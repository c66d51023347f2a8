//! The `mcp-manager` command line, as a library: [`Cli`] runs it with the
//! plugin registry it is given, so a downstream binary can add server
//! types and keep every command.
//!
//! Exit status: 0 on success, 2 when the input (a config file, the
//! arguments) is invalid or unreadable, 3 when a server needed did not
//! start, 4 when a called tool failed, 1 on an internal error.
// Printing to the terminal is the command line's job.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod admin;
mod builtin;
mod call;
mod check;
mod launch;
mod list;
mod login;
mod pins;
mod plugins;
mod registries;
mod reload;
mod serve;
mod signal;
mod status;
mod table;

use std::ffi::OsString;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use mcp_observability::traces::{DEFAULT_SAMPLE_RATIO, OtlpOptions, OtlpProtocol};
use mcp_plugin_api::PluginRegistry;

/// The `mcp-manager` command line over a plugin registry.
///
/// ```no_run
/// # fn main() -> std::process::ExitCode {
/// let mut registry = mcp_manager::plugins::default_registry();
/// // registry.register(MyPlugin)?; // a server type of your own
/// mcp_manager::Cli::with_registry(registry).main()
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Cli {
    registry: Arc<PluginRegistry>,
}

impl Cli {
    /// The command line whose servers are started through `registry`: the
    /// server types its configs may use are the ones registered there.
    #[must_use]
    pub fn with_registry(registry: PluginRegistry) -> Self {
        Self {
            registry: Arc::new(registry),
        }
    }

    /// Runs the command the process's arguments name and gives the exit
    /// status (see the module docs).
    #[must_use]
    pub fn main(self) -> ExitCode {
        self.run(std::env::args_os())
    }

    /// Runs the command `args` name (the program's name first); `--help`,
    /// `--version` and argument errors are printed and exit as clap does.
    #[must_use]
    pub fn run<I, T>(self, args: I) -> ExitCode
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        run(&self.registry, Args::parse_from(args))
    }
}

/// A manager and gateway for MCP servers: one endpoint for all your
/// mcpServers.
#[derive(Debug, Parser)]
#[command(name = "mcp-manager", version, about, long_about = None)]
struct Args {
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

    /// Where run-time plugins are (one folder per plugin, each with a
    /// `plugin.toml`); default: the config's `mcpManager.pluginsDir`, else
    /// `$XDG_DATA_HOME/mcp-manager/plugins`.
    #[arg(long, global = true, value_name = "DIR")]
    plugins_dir: Option<std::path::PathBuf>,

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
    /// List every server type, built in or loaded from the plugins
    /// directory, and the plugins that could not be loaded.
    Plugins(plugins::PluginsArgs),
    /// Show the pinned tool definitions and the ones that changed since;
    /// `pins approve SERVER/TOOL` accepts a change.
    Pins(pins::PinsArgs),
    /// Sign in to a remote server of a config that asks for OAuth: prints
    /// the URL to open, waits for the browser on 127.0.0.1 and keeps the
    /// token for `serve`, `list` and `call`.
    Login(login::LoginArgs),
}

/// Where traces go, if anywhere: the command line, else the standard
/// OpenTelemetry variables.
fn otlp_options(cli: &Args) -> Result<Option<OtlpOptions>, String> {
    let from_env = |key: &str| std::env::var(key).ok().filter(|v| !v.is_empty());
    let wanted = cli.otlp_endpoint.is_some()
        || from_env("OTEL_EXPORTER_OTLP_ENDPOINT").is_some()
        || from_env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_some();
    if !wanted {
        return Ok(None);
    }
    // The standard variables speak to every program of an environment: a
    // build without OpenTelemetry passes them by. Only `--otlp-endpoint`
    // asks this program, which then says it cannot.
    if !cfg!(feature = "otel") && cli.otlp_endpoint.is_none() {
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

fn run(registry: &Arc<PluginRegistry>, cli: Args) -> ExitCode {
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
    let plugins = registries::Plugins {
        base: registry.clone(),
        dir: cli.plugins_dir.clone(),
        loaded: Arc::default(),
    };
    let outcome = match &cli.command {
        Command::Serve(args) => serve::run(args, &plugins),
        Command::Check(args) => check::run(args, &plugins),
        Command::List(args) => list::run(args, &plugins),
        Command::Call(args) => call::run(args, &plugins),
        Command::Plugins(args) => plugins::run(args, &plugins),
        Command::Builtin(args) => builtin::run(args),
        Command::Status(args) => status::run(args),
        Command::Pins(args) => pins::run(args),
        Command::Login(args) => login::run(args, &plugins),
    };
    let code = outcome.unwrap_or_else(|err| {
        eprintln!("error: internal error: {err:#}");
        ExitCode::from(1)
    });
    telemetry.shutdown();
    code
}
