//! What the runtime reports as it works, for metrics.
//!
//! The runtime knows no metrics library: it calls an [`Observer`] (one per
//! runtime, given to [`McpRuntime::start_with`](crate::McpRuntime::start_with)
//! and to `mcp_serve::HttpServeOptions`), which hands out a
//! [`ServerObserver`] per deployed server. `mcp-observability` implements
//! both with Prometheus metrics; [`NoObserver`] drops everything. Every
//! method is called on the request path, so implementations must be quick
//! and must not block.
//!
//! Label values are bounded by construction: a method outside MCP's own
//! table is reported as `other` ([`method_label`]), and an [`Outcome`] is
//! one of a few names.
//!
//! Traces: the gateway opens a `tracing` span per client request (target
//! `mcp_gateway`) and the runtime one per request to a server
//! (target `mcp_runtime::backend`, a child of the caller's span). With a
//! [`Propagator`] installed ([`set_propagator`]), a client request's span
//! continues the trace named by the W3C `traceparent` (and `tracestate`)
//! in its `_meta`, and each request to a server carries its own span's
//! context in its `_meta`, so one trace crosses the gateway.
//!
//! Sampling is decided once, where a request enters the gateway: a request
//! whose trace context says sampled is traced; one without is traced when
//! [`Propagator::sample_root`] says so (a ratio). An untraced request gets
//! no spans at all and its backend requests no trace context, so it costs
//! next to nothing; a request to a server made outside any traced span
//! gets no span either.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use mcp_core::ServerId;
use mcp_protocol::mcp::Method;

use crate::ErrorKind;

/// How a request to a server ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Outcome {
    /// A result.
    Ok,
    /// The server's own JSON-RPC error.
    Error,
    /// No answer in time.
    Timeout,
    /// The connection was lost, or the server is not running.
    Unavailable,
    /// Refused by the bulkhead: too many requests waiting.
    Busy,
    /// Refused by the open circuit breaker.
    CircuitOpen,
    /// Cancelled by the caller.
    Cancelled,
    /// Anything else (a protocol violation, shutdown).
    Failed,
}

impl Outcome {
    /// Every outcome, in the order of [`Outcome::index`].
    pub const ALL: [Outcome; 8] = [
        Self::Ok,
        Self::Error,
        Self::Timeout,
        Self::Unavailable,
        Self::Busy,
        Self::CircuitOpen,
        Self::Cancelled,
        Self::Failed,
    ];

    /// The outcome's position in [`Outcome::ALL`], for tables by outcome.
    #[must_use]
    pub const fn index(self) -> usize {
        self as usize
    }

    /// How a request that failed with `kind` ended.
    #[must_use]
    pub fn of(kind: &ErrorKind) -> Self {
        match kind {
            ErrorKind::Rpc => Self::Error,
            ErrorKind::Timeout => Self::Timeout,
            ErrorKind::Disconnected | ErrorKind::Unavailable | ErrorKind::NotFound => {
                Self::Unavailable
            }
            ErrorKind::Busy => Self::Busy,
            ErrorKind::CircuitOpen => Self::CircuitOpen,
            ErrorKind::Cancelled => Self::Cancelled,
            _ => Self::Failed,
        }
    }

    /// The label value: `ok`, `error`, `timeout`, `unavailable`, `busy`,
    /// `circuit_open`, `cancelled`, `failed`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Error => "error",
            Self::Timeout => "timeout",
            Self::Unavailable => "unavailable",
            Self::Busy => "busy",
            Self::CircuitOpen => "circuit_open",
            Self::Cancelled => "cancelled",
            Self::Failed => "failed",
        }
    }
}

/// The state of a circuit breaker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BreakerState {
    /// Requests go through.
    Closed,
    /// Requests are refused at once.
    Open,
    /// A few trial requests go through.
    HalfOpen,
}

impl BreakerState {
    /// `closed`, `open` or `half_open`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Open => "open",
            Self::HalfOpen => "half_open",
        }
    }
}

/// The label for a method: its name when MCP defines it, else `other`.
#[must_use]
pub fn method_label(method: &str) -> &'static str {
    Method::from_name(method).map_or("other", Method::as_str)
}

/// Receives what the runtime and the HTTP endpoint report.
pub trait Observer: std::fmt::Debug + Send + Sync + 'static {
    /// The observer of a server being deployed. Called once per deploy; a
    /// server deployed again under the same id gets a new one.
    fn server(&self, id: &ServerId) -> Arc<dyn ServerObserver>;

    /// A client session was opened (`delta` 1) or ended (`delta` -1).
    fn sessions(&self, delta: i64) {
        let _ = delta;
    }

    /// Bytes of MCP traffic received from clients.
    fn bytes_in(&self, bytes: u64) {
        let _ = bytes;
    }

    /// Bytes of MCP traffic sent to clients.
    fn bytes_out(&self, bytes: u64) {
        let _ = bytes;
    }
}

/// Receives what happens to one server. `method` is always a
/// [`method_label`].
pub trait ServerObserver: Send + Sync + 'static {
    /// A request was sent (it counts as in flight until it finishes).
    fn started(&self, method: &'static str) {
        let _ = method;
    }

    /// A request ended, after `took`.
    fn finished(&self, method: &'static str, outcome: Outcome, took: Duration) {
        let _ = (method, outcome, took);
    }

    /// Requests waiting in the bulkhead now.
    fn queued(&self, depth: usize) {
        let _ = depth;
    }

    /// The circuit breaker moved to `to`.
    fn breaker(&self, to: BreakerState) {
        let _ = to;
    }

    /// An instance is being restarted after its connection was lost.
    fn restarted(&self) {}

    /// An instance was given up on after failing too often (a crash loop).
    fn gave_up(&self) {}

    /// One of the server's tools was seen with a definition that differs
    /// from the one pinned for it (told once per new definition); `held`
    /// when the tool is held back for it.
    fn tool_changed(&self, held: bool) {
        let _ = held;
    }

    /// How many of the server's tools now have a definition that differs
    /// from the one pinned for it (unapproved).
    fn tools_unapproved(&self, count: usize) {
        let _ = count;
    }
}

/// A W3C trace context, as carried in `_meta`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceContext {
    /// `traceparent`: version, trace id, parent span id, flags.
    pub traceparent: String,
    /// `tracestate`, if any.
    pub tracestate: Option<String>,
}

/// Reads and writes W3C trace context for `tracing` spans; implemented
/// over OpenTelemetry by `mcp-observability`.
pub trait Propagator: Send + Sync + 'static {
    /// Whether to trace a request that arrives without trace context.
    fn sample_root(&self) -> bool;

    /// Makes `span` continue the trace of `context` (a span of a client's,
    /// say).
    fn continue_trace(&self, span: &tracing::Span, context: &TraceContext);

    /// The trace context to send on for `span`; `None` when it is not
    /// being traced.
    fn inject(&self, span: &tracing::Span) -> Option<TraceContext>;
}

static PROPAGATOR: OnceLock<Box<dyn Propagator>> = OnceLock::new();

/// Installs the process's propagator; false if one was installed already.
pub fn set_propagator(propagator: Box<dyn Propagator>) -> bool {
    PROPAGATOR.set(propagator).is_ok()
}

impl TraceContext {
    /// Whether the trace is sampled (the last flag bit of `traceparent`).
    #[must_use]
    pub fn sampled(&self) -> bool {
        self.traceparent
            .rsplit('-')
            .next()
            .and_then(|flags| u8::from_str_radix(flags, 16).ok())
            .is_some_and(|flags| flags & 1 == 1)
    }
}

/// The process's propagator, if one is installed.
pub fn propagator() -> Option<&'static dyn Propagator> {
    PROPAGATOR.get().map(|p| &**p)
}

/// The `_meta` keys of W3C trace context.
pub(crate) const TRACEPARENT: &str = "traceparent";
pub(crate) const TRACESTATE: &str = "tracestate";

/// The trace context in `params._meta`, if any.
pub fn trace_context_of(params: Option<&mcp_protocol::raw::Raw<'_>>) -> Option<TraceContext> {
    use mcp_protocol::raw::{Raw, RawObject};
    let params = params?;
    if !params.get().contains(TRACEPARENT) {
        return None;
    }
    let object = RawObject::from_cow(params.reborrow()).ok()?;
    let meta = RawObject::from_cow(Raw::borrowed(object.get("_meta")?)).ok()?;
    let text = |key: &str| {
        meta.get(key)
            .and_then(|raw| Raw::borrowed(raw).into_str())
            .map(std::borrow::Cow::into_owned)
    };
    Some(TraceContext {
        traceparent: text(TRACEPARENT)?,
        tracestate: text(TRACESTATE),
    })
}

/// `params` with `context` in its `_meta` (replacing any trace context
/// there); params that are not an object are left as they are.
pub(crate) fn with_trace_context(
    params: Option<mcp_protocol::raw::Raw<'static>>,
    context: &TraceContext,
) -> Option<mcp_protocol::raw::Raw<'static>> {
    use mcp_protocol::raw::{Raw, RawObject};
    // Most params have no `_meta` at all: then the trace context goes in
    // front of their members, with no parse and rebuild of the object. (A
    // key may hide behind `\u` escapes: such params take the long way.)
    if let Some(spliced) = params
        .as_ref()
        .filter(|p| !p.get().contains("\"_meta\"") && !p.get().contains("\\u"))
        .and_then(|p| splice_meta(p.get(), context))
    {
        return Some(spliced);
    }
    let mut object = match params {
        None => RawObject::new(),
        Some(params) if !params.get().trim_start().starts_with('{') => return Some(params),
        Some(params) => RawObject::from_cow(params).ok()?,
    };
    let mut meta = object
        .remove("_meta")
        .and_then(|m| RawObject::from_cow(m).ok())
        .unwrap_or_default();
    meta.insert(TRACEPARENT, Raw::from_value(&context.traceparent));
    meta.remove(TRACESTATE);
    if let Some(state) = &context.tracestate {
        meta.insert(TRACESTATE, Raw::from_value(state));
    }
    object.insert("_meta", Raw::owned(meta.to_raw()));
    Some(Raw::owned(object.to_raw()))
}

/// `object` (JSON object text without a `_meta` member) with `_meta`
/// holding `context` as its first member; `None` when it is not an object.
fn splice_meta(object: &str, context: &TraceContext) -> Option<mcp_protocol::raw::Raw<'static>> {
    let members = object.trim().strip_prefix('{')?.trim_start();
    let quoted = |text: &str| serde_json::to_string(text).ok();
    let mut text = String::with_capacity(object.len() + 128);
    text.push_str("{\"_meta\":{\"");
    text.push_str(TRACEPARENT);
    text.push_str("\":");
    text.push_str(&quoted(&context.traceparent)?);
    if let Some(state) = &context.tracestate {
        text.push_str(",\"");
        text.push_str(TRACESTATE);
        text.push_str("\":");
        text.push_str(&quoted(state)?);
    }
    text.push('}');
    if !members.starts_with('}') {
        text.push(',');
    }
    text.push_str(members);
    // Checked, so that a malformed `object` is never passed on as valid.
    serde_json::value::RawValue::from_string(text)
        .ok()
        .map(mcp_protocol::raw::Raw::owned)
}

/// An observer that drops everything.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoObserver;

impl Observer for NoObserver {
    fn server(&self, _: &ServerId) -> Arc<dyn ServerObserver> {
        Arc::new(Self)
    }
}

impl ServerObserver for NoObserver {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_outside_mcp_are_one_label() {
        assert_eq!(method_label("tools/call"), "tools/call");
        assert_eq!(method_label("resources/read"), "resources/read");
        assert_eq!(method_label("x/anything-a-client-sends"), "other");
        assert_eq!(method_label(""), "other");
    }

    #[test]
    fn trace_context_in_meta_round_trips() {
        use mcp_protocol::raw::Raw;
        let context = TraceContext {
            traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".to_owned(),
            tracestate: Some("k=v".to_owned()),
        };
        let params = Raw::from_value(&serde_json::json!({
            "name": "t", "_meta": {"progressToken": 3, "traceparent": "old"}
        }));
        let with = with_trace_context(Some(params), &context).unwrap();
        assert_eq!(trace_context_of(Some(&with)), Some(context.clone()));
        let value: serde_json::Value = serde_json::from_str(with.get()).unwrap();
        assert_eq!(value["_meta"]["progressToken"], 3);
        assert_eq!(value["name"], "t");
        let bare = with_trace_context(None, &context).unwrap();
        assert_eq!(
            trace_context_of(Some(&bare)).unwrap().traceparent,
            context.traceparent
        );
        assert_eq!(trace_context_of(None), None);
        let without = Raw::from_value(&serde_json::json!({"name": "t"}));
        assert_eq!(trace_context_of(Some(&without)), None);
    }

    #[test]
    fn trace_context_goes_in_front_of_params_without_meta() {
        use mcp_protocol::raw::Raw;
        let context = TraceContext {
            traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".to_owned(),
            tracestate: Some("k=\"v\"".to_owned()),
        };
        let cases = [
            (
                r#"{"name":"t","arguments":{"a":[1,{"b":null}]}}"#,
                serde_json::json!({"name": "t", "arguments": {"a": [1, {"b": null}]}}),
            ),
            ("{}", serde_json::json!({})),
            (" { } ", serde_json::json!({})),
            ("{\n  \"x\": 1\n}", serde_json::json!({"x": 1})),
        ];
        for (text, members) in cases {
            let params =
                Raw::owned(serde_json::value::RawValue::from_string(text.to_owned()).unwrap());
            let with = with_trace_context(Some(params), &context).unwrap();
            let mut value: serde_json::Value = serde_json::from_str(with.get()).unwrap();
            let meta = value.as_object_mut().unwrap().remove("_meta").unwrap();
            assert_eq!(
                meta,
                serde_json::json!({
                    "traceparent": context.traceparent, "tracestate": "k=\"v\""
                }),
                "{text}"
            );
            assert_eq!(value, members, "{text}");
            assert_eq!(trace_context_of(Some(&with)), Some(context.clone()));
        }
        // Not an object: passed on as it was.
        let array = Raw::from_value(&serde_json::json!([1, 2]));
        assert_eq!(
            with_trace_context(Some(array.clone()), &context),
            Some(array)
        );
        // A `_meta` deeper down, or a key written with escapes, takes the
        // long way; what was there stays.
        for params in [
            serde_json::json!({"arguments": {"_meta": 1}}),
            serde_json::json!({"\u{5f}meta": {"progressToken": 2}}),
        ] {
            let text = serde_json::to_string(&params)
                .unwrap()
                .replace("_meta\":{\"p", "\\u005fmeta\":{\"p");
            let raw = Raw::owned(serde_json::value::RawValue::from_string(text).unwrap());
            let with = with_trace_context(Some(raw), &context).unwrap();
            let value: serde_json::Value = serde_json::from_str(with.get()).unwrap();
            assert_eq!(value["_meta"]["traceparent"], context.traceparent.as_str());
            if params.get("arguments").is_some() {
                assert_eq!(value["arguments"]["_meta"], 1);
            } else {
                assert_eq!(value["_meta"]["progressToken"], 2);
            }
        }
    }

    #[test]
    fn the_sampled_flag() {
        let context = |traceparent: &str| TraceContext {
            traceparent: traceparent.to_owned(),
            tracestate: None,
        };
        assert!(context("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01").sampled());
        assert!(context("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-03").sampled());
        assert!(!context("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00").sampled());
        assert!(!context("garbage").sampled());
    }

    #[test]
    fn every_error_kind_has_an_outcome() {
        assert_eq!(Outcome::of(&ErrorKind::Rpc), Outcome::Error);
        assert_eq!(Outcome::of(&ErrorKind::Timeout), Outcome::Timeout);
        assert_eq!(Outcome::of(&ErrorKind::Disconnected), Outcome::Unavailable);
        assert_eq!(Outcome::of(&ErrorKind::Busy), Outcome::Busy);
        assert_eq!(Outcome::of(&ErrorKind::CircuitOpen), Outcome::CircuitOpen);
        assert_eq!(Outcome::of(&ErrorKind::Protocol), Outcome::Failed);
        assert_eq!(Outcome::CircuitOpen.name(), "circuit_open");
    }
}
