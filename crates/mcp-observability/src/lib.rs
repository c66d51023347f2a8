//! Observability for mcp-manager: tracing subscriber setup, Prometheus
//! metrics, OpenTelemetry export and W3C trace-context propagation through
//! `_meta`.
//!
//! **Status: empty.** This crate has no API yet. It never depends on pyo3.
#![forbid(unsafe_code)]
