//! `mcp-manager check`: load a config, validate it, and show what would run.

mod json;
mod text;

pub(crate) use text::issue;

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, ValueEnum};
use mcp_core::{ErrorKind, ManagerConfig};

use crate::cli::registries::Plugins;

/// The exit status for a config that is invalid or cannot be read.
const INVALID: u8 = 2;

#[derive(Debug, Args)]
pub(crate) struct CheckArgs {
    /// The config file: Claude Desktop's, Cursor's or VS Code's `mcp.json`
    /// format, plus mcp-manager's own options.
    #[arg(long, short, value_name = "FILE")]
    config: PathBuf,

    /// How to print the result.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// A summary for people; problems on stderr, like a compiler.
    Text,
    /// One JSON object on stdout, valid or not.
    Json,
}

/// Loads and reports; the exit code says whether the config is valid.
pub(crate) fn run(args: &CheckArgs, plugins: &Plugins) -> anyhow::Result<ExitCode> {
    let mut problems = Vec::new();
    let loaded = ManagerConfig::load(&args.config).and_then(|config| {
        let with = plugins.load(Some(&config));
        problems = with.problems;
        mcp_control::check_plugins(&with.registry, config)
    });
    let valid = match &loaded {
        Ok(_) => true,
        Err(err) if matches!(err.kind(), ErrorKind::Io | ErrorKind::Config) => false,
        Err(err) => anyhow::bail!("loading {}: {err}", args.config.display()),
    };
    let mut stdout = io::stdout().lock();
    match args.format {
        Format::Text => {
            let mut stderr = io::stderr().lock();
            for problem in &problems {
                let _ = writeln!(stderr, "warning: {problem}");
            }
            text::report(&args.config, &loaded, &mut stdout, &mut stderr)
        }
        Format::Json => json::report(&args.config, &loaded, &problems, &mut stdout),
    }
    .and_then(|()| stdout.flush())
    .context("writing the report")?;
    Ok(if valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(INVALID)
    })
}
