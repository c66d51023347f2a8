//! The built-in plugins of mcp-manager: `stdio`, `http` (Streamable HTTP),
//! `sse` (legacy HTTP+SSE) and `builtin` (in-process Rust servers, including
//! the reference `everything` server).
//!
//! **Status: empty.** This crate has no API yet. It will depend on
//! `mcp-plugin-api` and never on pyo3.
#![forbid(unsafe_code)]
