//! Observability for mcp-manager: how logs are written today; Prometheus
//! metrics, OpenTelemetry export and W3C trace-context propagation through
//! `_meta` belong here too as they arrive.
//!
//! - [`init_logging`]: human-readable `tracing` output on stderr (stdout may
//!   be an MCP stream), filtered by a level or a full `RUST_LOG`-style
//!   directive.
//!
//! # Invariants
//!
//! Never reaches pyo3. Logs never go to stdout.
#![forbid(unsafe_code)]

use tracing_subscriber::EnvFilter;

/// The one error type of this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The log filter could not be read.
    #[error("invalid log level or filter {filter:?}: {reason}")]
    BadFilter {
        /// What was given.
        filter: String,
        /// Why it was refused.
        reason: String,
    },
    /// Logging was set up already in this process.
    #[error("logging is already set up")]
    AlreadySet,
}

/// Sends `tracing` events to stderr, filtered by `filter`: a level (`error`,
/// `warn`, `info`, `debug`, `trace`, `off`) or a directive such as
/// `info,mcp_runtime=debug`. A `RUST_LOG` in the environment wins when
/// `filter` is `None`.
///
/// # Errors
///
/// [`Error::BadFilter`] for a filter that does not parse, [`Error::AlreadySet`]
/// when called twice.
pub fn init_logging(filter: Option<&str>) -> Result<(), Error> {
    let filter = match filter {
        Some(text) => EnvFilter::try_new(text).map_err(|e| Error::BadFilter {
            filter: text.to_owned(),
            reason: e.to_string(),
        })?,
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")),
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init()
        .map_err(|_| Error::AlreadySet)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_filter_is_refused_with_the_reason() {
        let error = init_logging(Some("info,=[")).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("invalid log level or filter \"info,=[\""),
            "{error}"
        );
    }

    #[test]
    fn a_second_setup_is_refused() {
        let first = init_logging(Some("warn"));
        let second = init_logging(Some("warn"));
        assert!(first.is_ok() || second.is_err());
        assert!(matches!(second, Err(Error::AlreadySet)));
    }
}
