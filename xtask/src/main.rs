//! Project automation for the mcp-manager workspace, run as `cargo xtask`.
//!
//! `cargo xtask ci` is the whole continuous-integration check, the same on a
//! laptop and on a CI machine (`.ci/run` calls nothing else). The other
//! subcommands run single pieces of it, or fuzz locally.
//!
//! Every cargo invocation goes through the cargo that runs this program (the
//! `CARGO` variable), with the workspace root as its working directory, so
//! the toolchain in use is the one the caller picked.
//!
//! This crate deliberately depends only on `anyhow` and `serde_json`: no
//! argument parser, no TOML parser, no process helpers.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod bench;
mod ci;
mod conformance;
mod coverage;
mod deploy;
mod deps_guard;
mod docs_check;
mod features;
mod fuzz;
mod locks;
mod peers;
mod plugins;
mod python;
mod shell;

use anyhow::{Context, Result, bail};

const HELP: &str = "\
Usage: cargo xtask <COMMAND> [ARGS]

Commands:
  bench [NAME...]        Run benchmarks (all, or those named); `bench --list`
                         lists them; `bench gateway` is the gateway against
                         direct HTTP; `bench report` writes the figures
                         behind the targets to target/bench-report.md
  ci [STEP...]           Run every CI step in order, stopping at the first
                         failure; with STEP names, run only those steps
  ci --list              List the CI steps
  coverage               Line coverage per crate (cargo-tarpaulin, installed
                         into .tools/), written to target/coverage/coverage.md
  conformance            Run the MCP conformance suite against the built-in
                         server and the gateway (in-process and stdio)
  deps-guard             Check that forbidden crates are absent from the
                         dependency graph (e.g. mcp-protocol never reaches tokio)
  docs-check             Check that every library's lib.rs opens with //! docs
  fuzz-build             Install cargo-fuzz into .tools/ and build all fuzz targets
  fuzz TARGET [SECONDS]  Run one fuzz target for at most SECONDS (default 60)
  peers [--lock]         Install the real MCP peers the tests run against into
                         .tools/ (Node.js 22, npm and Python packages pinned in
                         tools/peers/) and write .tools/peers.env; --lock
                         first regenerates tools/peers/package-lock.json
  plugins                Build the example plugins of examples/plugins/ into
                         target/plugins/ (wasm ones compiled from Python and
                         JavaScript with the toolchains `peers` installs)
  python                 Build the mcp_manager wheel, install it into
                         .tools/venv, check its stubs and types, run pytest
  help                   Print this message
";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Err(err) = run(&args) {
        eprintln!("error: {err:#}");
        std::process::exit(1);
    }
}

fn run(args: &[String]) -> Result<()> {
    let Some((command, rest)) = args.split_first() else {
        print!("{HELP}");
        return Ok(());
    };
    match command.as_str() {
        "bench" => bench::run(rest),
        "ci" => ci::run(rest),
        "conformance" => conformance::run(rest),
        "python" => python::run(rest),
        "deps-guard" => no_args(command, rest).and_then(|()| deps_guard::run()),
        "docs-check" => no_args(command, rest).and_then(|()| docs_check::run()),
        "coverage" => no_args(command, rest).and_then(|()| coverage::run()),
        "fuzz-build" => no_args(command, rest).and_then(|()| fuzz::build()),
        "fuzz" => {
            let (target, seconds) = match rest {
                [target] => (target, None),
                [target, seconds] => (target, Some(seconds)),
                _ => bail!("usage: cargo xtask fuzz TARGET [SECONDS]"),
            };
            let seconds = match seconds {
                None => fuzz::DEFAULT_SECONDS,
                Some(text) => text
                    .parse()
                    .with_context(|| format!("SECONDS must be a whole number, not {text:?}"))?,
            };
            fuzz::run(target, seconds)
        }
        "peers" => peers::run(rest),
        "plugins" => no_args(command, rest).and_then(|()| plugins::run()),
        "help" | "--help" | "-h" => {
            print!("{HELP}");
            Ok(())
        }
        other => bail!("unknown command {other:?}\n\n{HELP}"),
    }
}

fn no_args(command: &str, rest: &[String]) -> Result<()> {
    if rest.is_empty() {
        Ok(())
    } else {
        bail!("`cargo xtask {command}` takes no arguments, got {rest:?}")
    }
}
