//! The OTLP exporter and W3C trace context over OpenTelemetry.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use mcp_runtime::observe::{Propagator, TraceContext};
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{TraceContextExt as _, TraceFlags, TracerProvider as _};
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::{OtlpOptions, OtlpProtocol};
use crate::Error;

/// A tracer provider exporting over OTLP/HTTP in batches.
pub(crate) fn provider(options: &OtlpOptions) -> Result<SdkTracerProvider, Error> {
    let protocol = match options.protocol {
        OtlpProtocol::Protobuf => Protocol::HttpBinary,
        OtlpProtocol::Json => Protocol::HttpJson,
    };
    mcp_runtime::transport::http::install_crypto_provider();
    let mut builder = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(protocol);
    if let Some(endpoint) = &options.endpoint {
        builder = builder.with_endpoint(traces_url(endpoint));
    }
    let exporter = builder.build().map_err(|e| Error::Otlp(e.to_string()))?;
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(options.service_name.clone())
        .build();
    // Sampling is decided where a request enters (`W3cPropagator`): a span
    // that exists is exported.
    Ok(SdkTracerProvider::builder()
        .with_sampler(opentelemetry_sdk::trace::Sampler::ParentBased(Box::new(
            opentelemetry_sdk::trace::Sampler::AlwaysOn,
        )))
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build())
}

/// The tracer the `tracing` layer hands spans to.
pub(crate) fn tracer(provider: &SdkTracerProvider) -> opentelemetry_sdk::trace::Tracer {
    provider.tracer("mcp-manager")
}

/// W3C trace context (`traceparent`, `tracestate`) for the runtime's
/// spans, over OpenTelemetry, and the ratio of requests without trace
/// context that are traced.
#[derive(Debug)]
pub struct W3cPropagator {
    propagator: TraceContextPropagator,
    /// Requests traced out of 2^64, for those without trace context.
    threshold: u64,
    /// A xorshift state: cheap, lock-free, good enough to sample by.
    state: AtomicU64,
}

impl W3cPropagator {
    /// A propagator tracing `ratio` (0 to 1) of the requests that come
    /// without trace context.
    #[must_use]
    pub fn new(ratio: f64) -> Self {
        let ratio = if ratio.is_nan() {
            0.0
        } else {
            ratio.clamp(0.0, 1.0)
        };
        // Precision loss is fine: a ratio is not exact to 2^-64 anyway.
        #[allow(
            clippy::cast_precision_loss,
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss
        )]
        let threshold = if ratio >= 1.0 {
            u64::MAX
        } else {
            (ratio * u64::MAX as f64) as u64
        };
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x9E37_79B9_7F4A_7C15, |d| d.as_nanos() as u64)
            | 1;
        Self {
            propagator: TraceContextPropagator::new(),
            threshold,
            state: AtomicU64::new(seed),
        }
    }
}

impl Default for W3cPropagator {
    /// Every request traced.
    fn default() -> Self {
        Self::new(1.0)
    }
}

impl Propagator for W3cPropagator {
    fn sample_root(&self) -> bool {
        if self.threshold == u64::MAX {
            return true;
        }
        // xorshift64; a lost update between threads only repeats a draw.
        let mut x = self.state.load(Ordering::Relaxed);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.state.store(x, Ordering::Relaxed);
        x < self.threshold
    }

    fn continue_trace(&self, span: &tracing::Span, context: &TraceContext) {
        let mut carrier = HashMap::new();
        carrier.insert("traceparent".to_owned(), context.traceparent.clone());
        if let Some(state) = &context.tracestate {
            carrier.insert("tracestate".to_owned(), state.clone());
        }
        let parent = self.propagator.extract(&carrier);
        // Fails only for a span that is not traced (filtered out): nothing
        // to continue then.
        let _ = span.set_parent(parent);
    }

    fn inject(&self, span: &tracing::Span) -> Option<TraceContext> {
        // As the W3C propagator writes it, without its map and allocations:
        // version 00, trace id, span id, and only the sampled flag.
        let context = span.context();
        let span = context.span();
        let ids = span.span_context();
        if !ids.is_valid() {
            return None;
        }
        let sampled = ids.trace_flags().to_u8() & TraceFlags::SAMPLED.to_u8();
        let state = ids.trace_state().header();
        Some(TraceContext {
            traceparent: format!("00-{}-{}-{sampled:02x}", ids.trace_id(), ids.span_id()),
            tracestate: (!state.is_empty()).then_some(state),
        })
    }
}

/// The traces URL for a collector's base URL.
fn traces_url(base: &str) -> String {
    let base = base.trim_end_matches('/');
    if base.ends_with("/v1/traces") {
        base.to_owned()
    } else {
        format!("{base}/v1/traces")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_traces_path_is_added_once() {
        assert_eq!(
            traces_url("http://127.0.0.1:4318"),
            "http://127.0.0.1:4318/v1/traces"
        );
        assert_eq!(traces_url("http://c:4318/"), "http://c:4318/v1/traces");
        assert_eq!(traces_url("http://c/v1/traces"), "http://c/v1/traces");
    }

    #[test]
    fn an_untraced_span_has_no_context_to_send() {
        let span = tracing::Span::none();
        assert_eq!(W3cPropagator::default().inject(&span), None);
    }

    #[test]
    fn roots_are_sampled_at_the_ratio() {
        let count = |ratio: f64| {
            let propagator = W3cPropagator::new(ratio);
            (0..100_000).filter(|_| propagator.sample_root()).count()
        };
        assert_eq!(count(1.0), 100_000);
        assert_eq!(count(0.0), 0);
        let tenth = count(0.1);
        assert!((9_000..11_000).contains(&tenth), "{tenth}");
        assert_eq!(count(f64::NAN), 0);
    }
}
