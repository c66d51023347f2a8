//! `mcp-manager builtin NAME --stdio`: runs one of the servers built into
//! mcp-manager on its own, speaking MCP on stdin and stdout, so that any MCP
//! client (or a config's `command`) can use it as a child process; with
//! `--http ADDR` it serves it over Streamable HTTP at `http://ADDR/mcp`.

use std::process::ExitCode;

use clap::Args;

/// Arguments of `builtin`.
#[derive(Debug, Args)]
pub(crate) struct BuiltinArgs {
    /// Which built-in server to run (`everything`, `echo`).
    name: String,
    /// Serve MCP over stdin and stdout.
    #[arg(long, conflicts_with = "http")]
    stdio: bool,
    /// Serve MCP over Streamable HTTP at `http://ADDR/mcp`.
    #[arg(long, value_name = "ADDR")]
    http: Option<std::net::SocketAddr>,
}

pub(crate) fn run(args: &BuiltinArgs) -> anyhow::Result<ExitCode> {
    let Some(builtin) = mcp_plugins::builtin(&args.name) else {
        let names: Vec<&str> = mcp_plugins::CATALOG.iter().map(|s| s.name).collect();
        eprintln!(
            "error: there is no built-in server \"{}\"; the built-in servers are: {}",
            args.name,
            names.join(", ")
        );
        return Ok(ExitCode::from(2));
    };
    match (args.stdio, args.http) {
        (true, _) => crate::cli::launch::run_async_on_one_thread(async {
            let (input, output) = mcp_serve::process_stdio();
            mcp_serve::serve_stdio(
                (builtin.make)(),
                input,
                output,
                mcp_runtime::transport::MAX_MESSAGE,
            )
            .await
        })??,
        (false, Some(addr)) => crate::cli::launch::run_async(crate::cli::serve::serve_http(
            (builtin.make)(),
            addr,
            mcp_serve::HttpServeOptions::default(),
        ))??,
        (false, None) => {
            eprintln!("error: say how to serve it: --stdio or --http ADDR");
            return Ok(ExitCode::from(2));
        }
    }
    Ok(ExitCode::SUCCESS)
}
