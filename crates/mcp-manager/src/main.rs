//! The `mcp-manager` command-line tool.
fn main() {}
