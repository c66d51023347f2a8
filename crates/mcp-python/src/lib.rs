//! Python bindings for mcp-manager, built with maturin into the `mcp_manager`
//! package. This is the only crate of the workspace allowed to know Python
//! (pyo3).
//!
//! **Status: empty.** This crate has no bindings yet and does not depend on
//! pyo3 until it has some.
#![forbid(unsafe_code)]
