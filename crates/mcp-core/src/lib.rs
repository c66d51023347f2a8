//! Domain types of mcp-manager.
#![forbid(unsafe_code)]
