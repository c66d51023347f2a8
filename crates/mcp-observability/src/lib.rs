//! Observability for mcp-manager: logs, Prometheus metrics, OpenTelemetry
//! traces and W3C trace-context propagation through `_meta`.
//!
//! - [`init`]: `tracing` output on stderr (stdout may be an MCP stream),
//!   human-readable or one JSON object per line ([`LogFormat`]), filtered
//!   by a level or a full `RUST_LOG`-style directive; with
//!   [`traces::OtlpOptions`], the runtime's spans exported over OTLP/HTTP
//!   too, and trace context carried through the gateway
//!   ([`traces::W3cPropagator`]). [`Telemetry::shutdown`] flushes.
//! - [`metrics::Metrics`]: the runtime's [`Observer`](mcp_runtime::observe::Observer)
//!   as Prometheus metrics, rendered for a `/metrics` endpoint.
//!
//! # Invariants
//!
//! Never reaches pyo3. Logs never go to stdout. Metric labels are bounded.
//! Exporting spans never blocks a request.
#![forbid(unsafe_code)]

pub mod metrics;
pub mod traces;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

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
    /// The OTLP exporter could not be built.
    #[error("cannot export traces: {0}")]
    Otlp(String),
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
/// As [`init`].
pub fn init_logging(filter: Option<&str>, format: LogFormat) -> Result<(), Error> {
    init(filter, format, None).map(|_| ())
}

/// What [`init`] set up; [`Telemetry::shutdown`] flushes the spans not yet
/// exported.
#[derive(Debug, Default)]
#[must_use = "spans still queued are lost unless `shutdown` is called"]
pub struct Telemetry {
    #[cfg(feature = "otel")]
    provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl Telemetry {
    /// Whether spans are exported.
    pub fn exports_traces(&self) -> bool {
        #[cfg(feature = "otel")]
        return self.provider.is_some();
        #[cfg(not(feature = "otel"))]
        false
    }

    /// Exports what is queued (waiting for the collector a few seconds at
    /// most) and stops exporting.
    pub fn shutdown(self) {
        #[cfg(feature = "otel")]
        if let Some(provider) = self.provider {
            if let Err(error) = provider.shutdown_with_timeout(std::time::Duration::from_secs(5)) {
                tracing::warn!("flushing traces: {error}");
            }
        }
    }
}

/// [`init_logging`], and with `otlp` the runtime's spans (targets
/// `mcp_runtime::*`, at info level whatever the log filter) exported over
/// OTLP/HTTP, with [`traces::W3cPropagator`] installed in the runtime.
/// Call it outside any async runtime: the exporter makes its own.
///
/// # Errors
///
/// [`Error::BadFilter`] for a filter that does not parse,
/// [`Error::AlreadySet`] when called twice, [`Error::Otlp`] for an
/// exporter that cannot be built (a bad endpoint).
pub fn init(
    filter: Option<&str>,
    format: LogFormat,
    otlp: Option<&traces::OtlpOptions>,
) -> Result<Telemetry, Error> {
    let filter = match filter {
        Some(text) => EnvFilter::try_new(text).map_err(|e| Error::BadFilter {
            filter: text.to_owned(),
            reason: e.to_string(),
        })?,
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")),
    };
    let logs = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let logs = match format {
        LogFormat::Text => logs
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_target(false)
            .with_filter(filter)
            .boxed(),
        LogFormat::Json => logs
            .json()
            .with_ansi(false)
            .with_current_span(true)
            .with_filter(filter)
            .boxed(),
    };
    #[cfg(not(feature = "otel"))]
    if otlp.is_some() {
        return Err(Error::Otlp(
            "this build has no OpenTelemetry support (the `otel` feature)".to_owned(),
        ));
    }
    #[cfg(feature = "otel")]
    let (provider, spans) = spans(otlp)?;
    #[cfg(not(feature = "otel"))]
    let spans: Option<tracing_subscriber::layer::Identity> = None;
    tracing_subscriber::registry()
        .with(logs)
        .with(spans)
        .try_init()
        .map_err(|_| Error::AlreadySet)?;
    #[cfg(feature = "otel")]
    if let Some(otlp) = otlp.filter(|_| provider.is_some()) {
        mcp_runtime::observe::set_propagator(Box::new(traces::W3cPropagator::new(
            otlp.sample_ratio,
        )));
    }
    Ok(Telemetry {
        #[cfg(feature = "otel")]
        provider,
    })
}

/// The exporter `otlp` asks for, and the layer that hands it the runtime's
/// spans.
#[cfg(feature = "otel")]
#[allow(clippy::type_complexity)]
fn spans<S>(
    otlp: Option<&traces::OtlpOptions>,
) -> Result<
    (
        Option<opentelemetry_sdk::trace::SdkTracerProvider>,
        Option<impl Layer<S>>,
    ),
    Error,
>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    let provider = otlp.map(traces::provider).transpose()?;
    let spans = provider.as_ref().map(|provider| {
        let runtime_spans = tracing_subscriber::filter::filter_fn(|meta| {
            meta.is_span()
                && (meta.target().starts_with("mcp_runtime")
                    || meta.target().starts_with("mcp_gateway"))
                && *meta.level() <= tracing::Level::INFO
        });
        // Only what a trace needs: no per-span thread, source location,
        // busy/idle timing or context activation on every poll, each of which
        // costs on the request path.
        tracing_opentelemetry::layer()
            .with_tracer(traces::tracer(provider))
            .with_location(false)
            .with_threads(false)
            .with_tracked_inactivity(false)
            .with_target(false)
            .with_level(false)
            .with_context_activation(false)
            .with_filter(runtime_spans)
    });
    Ok((provider, spans))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(not(feature = "otel"))]
    fn traces_are_refused_by_a_build_without_opentelemetry() {
        let options = traces::OtlpOptions {
            endpoint: Some("http://127.0.0.1:4318".to_owned()),
            protocol: traces::OtlpProtocol::Protobuf,
            service_name: "t".to_owned(),
            sample_ratio: 1.0,
        };
        let error = init(Some("warn"), LogFormat::Text, Some(&options)).unwrap_err();
        assert!(
            error.to_string().contains("no OpenTelemetry support"),
            "{error}"
        );
    }

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
