//! OpenTelemetry traces over OTLP/HTTP, and W3C trace context for the
//! runtime's spans.
//!
//! The runtime's spans (`mcp_gateway`: one per client request;
//! `mcp_runtime::backend`: one per request to a server) are exported in
//! batches from a thread of their own, so a slow collector never holds up a
//! request; spans that do not fit the batch queue are dropped, not waited
//! for. [`W3cPropagator`] lets a client's `traceparent` in `_meta` parent
//! the gateway's span and puts each backend span's context in the `_meta`
//! of the request it sends.
//!
//! What is exported and where ([`OtlpOptions`]) is plain data, always
//! here; the exporter and the propagator over OpenTelemetry are behind the
//! crate's `otel` feature (on by default). Without it, asking
//! [`crate::init`] for traces is an error that says so.

#[cfg(feature = "otel")]
mod export;

#[cfg(feature = "otel")]
pub use export::W3cPropagator;
#[cfg(feature = "otel")]
pub(crate) use export::{provider, tracer};

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
#[derive(Clone, Debug, PartialEq)]
pub struct OtlpOptions {
    /// The collector's base URL (`http://127.0.0.1:4318`; `/v1/traces` is
    /// added); `None` takes `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` from the environment.
    pub endpoint: Option<String>,
    /// The wire format.
    pub protocol: OtlpProtocol,
    /// `service.name` of the spans.
    pub service_name: String,
    /// The share of requests without trace context that are traced, 0 to
    /// 1; requests whose client traces them are always traced.
    pub sample_ratio: f64,
}

/// The sample ratio when none is given: one request in a hundred. A traced
/// request costs about as many instructions again as an untraced one (two
/// spans, their export); at this ratio tracing costs about 1 %, and a
/// gateway serving thousands of requests a second still sends tens of
/// traces a second. Requests whose client traces them are always traced.
pub const DEFAULT_SAMPLE_RATIO: f64 = 0.01;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocols_by_name() {
        assert_eq!("http/json".parse(), Ok(OtlpProtocol::Json));
        assert_eq!("http/protobuf".parse(), Ok(OtlpProtocol::Protobuf));
        assert!("grpc".parse::<OtlpProtocol>().is_err());
    }
}
