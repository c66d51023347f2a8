//! Observability for mcp-manager: logs, Prometheus metrics; OpenTelemetry
//! export and W3C trace-context propagation through `_meta` belong here
//! too as they arrive.
//!
//! - [`init_logging`]: `tracing` output on stderr (stdout may be an MCP
//!   stream), human-readable or one JSON object per line ([`LogFormat`]),
//!   filtered by a level or a full `RUST_LOG`-style directive.
//! - [`metrics::Metrics`]: the runtime's [`Observer`](mcp_runtime::observe::Observer)
//!   as Prometheus metrics, rendered for a `/metrics` endpoint.
//!
//! # Invariants
//!
//! Never reaches pyo3. Logs never go to stdout. Metric labels are bounded.
#![forbid(unsafe_code)]

pub mod metrics;

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

/// How log lines look.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// For people: one line per event, coloured on a terminal.
    #[default]
    Text,
    /// For machines: one JSON object per line (`timestamp`, `level`,
    /// `fields` with the message, the span's fields).
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            _ => Err(format!(
                "unknown log format {text:?}: use \"text\" or \"json\""
            )),
        }
    }
}

/// Sends `tracing` events to stderr in `format`, filtered by `filter`: a
/// level (`error`, `warn`, `info`, `debug`, `trace`, `off`) or a directive
/// such as `info,mcp_runtime=debug`. A `RUST_LOG` in the environment wins
/// when `filter` is `None`.
///
/// # Errors
///
/// [`Error::BadFilter`] for a filter that does not parse, [`Error::AlreadySet`]
/// when called twice.
pub fn init_logging(filter: Option<&str>, format: LogFormat) -> Result<(), Error> {
    let filter = match filter {
        Some(text) => EnvFilter::try_new(text).map_err(|e| Error::BadFilter {
            filter: text.to_owned(),
            reason: e.to_string(),
        })?,
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_target(false)
            .try_init(),
        LogFormat::Json => builder
            .json()
            .with_ansi(false)
            .with_current_span(true)
            .try_init(),
    }
    .map_err(|_| Error::AlreadySet)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_filter_is_refused_with_the_reason() {
        let error = init_logging(Some("info,=["), LogFormat::Text).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("invalid log level or filter \"info,=[\""),
            "{error}"
        );
    }

    #[test]
    fn a_second_setup_is_refused() {
        let first = init_logging(Some("warn"), LogFormat::Text);
        let second = init_logging(Some("warn"), LogFormat::Json);
        assert!(first.is_ok() || second.is_err());
        assert!(matches!(second, Err(Error::AlreadySet)));
    }

    #[test]
    fn log_formats_by_name() {
        assert_eq!("json".parse(), Ok(LogFormat::Json));
        assert_eq!("text".parse(), Ok(LogFormat::Text));
        assert!(
            "yaml"
                .parse::<LogFormat>()
                .unwrap_err()
                .contains("\"json\"")
        );
    }
}
