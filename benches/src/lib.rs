//! Shared fixtures for the benchmarks of mcp-manager.
#![forbid(unsafe_code)]
