//! The `mcp-manager` command-line tool: the command line of the library
//! ([`mcp_manager::Cli`]) over the built-in server types.
#![forbid(unsafe_code)]

use std::process::ExitCode;

fn main() -> ExitCode {
    mcp_manager::Cli::with_registry(mcp_manager::plugins::default_registry()).main()
}
