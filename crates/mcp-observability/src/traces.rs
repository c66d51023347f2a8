//! OpenTelemetry traces over OTLP/HTTP, and W3C trace context for the
//! runtime's spans.
//!
//! The runtime's spans (`mcp_runtime::gateway`: one per client request;
//! `mcp_runtime::backend`: one per request to a server) are exported in
//! batches from a thread of their own, so a slow collector never holds up a
//! request; spans that do not fit the batch queue are dropped, not waited
//! for. [`W3cPropagator`] lets a client's `traceparent` in `_meta` parent
//! the gateway's span and puts each backend span's context in the `_meta`
//! of the request it sends.

use std::collections::HashMap;

use mcp_runtime::observe::{Propagator, TraceContext};
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::Error;

/// The wire format of OTLP over HTTP.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OtlpProtocol {
    /// `http/protobuf`, the default.
    #[default]
    Protobuf,
    /// `http/json`.
    Json,
}

impl std::str::FromStr for OtlpProtocol {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "http/protobuf" => Ok(Self::Protobuf),
            "http/json" => Ok(Self::Json),
            _ => Err(format!(
                "unknown OTLP protocol {text:?}: use \"http/protobuf\" or \"http/json\""
            )),
        }
    }
}

/// Where and how traces go.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OtlpOptions {
    /// The collector's base URL (`http://127.0.0.1:4318`; `/v1/traces` is
    /// added); `None` takes `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` from the environment.
    pub endpoint: Option<String>,
    /// The wire format.
    pub protocol: OtlpProtocol,
    /// `service.name` of the spans.
    pub service_name: String,
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
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build())
}

/// The tracer the `tracing` layer hands spans to.
pub(crate) fn tracer(provider: &SdkTracerProvider) -> opentelemetry_sdk::trace::Tracer {
    provider.tracer("mcp-manager")
}

/// W3C trace context (`traceparent`, `tracestate`) for the runtime's
/// spans, over OpenTelemetry.
#[derive(Debug, Default)]
pub struct W3cPropagator(TraceContextPropagator);

impl Propagator for W3cPropagator {
    fn continue_trace(&self, span: &tracing::Span, context: &TraceContext) {
        let mut carrier = HashMap::new();
        carrier.insert("traceparent".to_owned(), context.traceparent.clone());
        if let Some(state) = &context.tracestate {
            carrier.insert("tracestate".to_owned(), state.clone());
        }
        let parent = self.0.extract(&carrier);
        // Fails only for a span that is not traced (filtered out): nothing
        // to continue then.
        let _ = span.set_parent(parent);
    }

    fn inject(&self, span: &tracing::Span) -> Option<TraceContext> {
        let mut carrier: HashMap<String, String> = HashMap::new();
        self.0.inject_context(&span.context(), &mut carrier);
        let traceparent = carrier.remove("traceparent")?;
        Some(TraceContext {
            traceparent,
            tracestate: carrier.remove("tracestate").filter(|s| !s.is_empty()),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
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
    fn protocols_by_name() {
        assert_eq!("http/json".parse(), Ok(OtlpProtocol::Json));
        assert_eq!("http/protobuf".parse(), Ok(OtlpProtocol::Protobuf));
        assert!("grpc".parse::<OtlpProtocol>().is_err());
    }

    #[test]
    fn an_untraced_span_has_no_context_to_send() {
        let span = tracing::Span::none();
        assert_eq!(W3cPropagator::default().inject(&span), None);
    }
}
