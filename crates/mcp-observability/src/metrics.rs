//! Prometheus metrics: an [`Observer`] of the runtime and the HTTP
//! endpoint, rendered in the OpenMetrics text format.
//!
//! | metric | type | labels |
//! | --- | --- | --- |
//! | `mcp_requests_total` | counter | `server`, `method`, `outcome` |
//! | `mcp_request_duration_seconds` | histogram | `server`, `method` |
//! | `mcp_requests_in_flight` | gauge | `server` |
//! | `mcp_bulkhead_queued` | gauge | `server` |
//! | `mcp_bulkhead_rejections_total` | counter | `server` |
//! | `mcp_circuit_breaker_state` | gauge (0 closed, 1 half open, 2 open) | `server` |
//! | `mcp_circuit_breaker_transitions_total` | counter | `server`, `to` |
//! | `mcp_server_restarts_total` | counter | `server` |
//! | `mcp_server_crash_loops_total` | counter | `server` |
//! | `mcp_tool_definition_changes_total` | counter | `server`, `action` (`held`, `served`) |
//! | `mcp_tools_unapproved` | gauge | `server` |
//! | `mcp_sessions_open` | gauge | |
//! | `mcp_bytes_total` | counter | `direction` (`in`, `out`) |
//!
//! Label values are bounded: `server` is a configured server's name,
//! `method` one of MCP's methods or `other`, `outcome` one of
//! [`Outcome::name`]'s. Nothing from a request's arguments or ids.
//!
//! Recording is cheap: each server's observer keeps the handles of its
//! counters and histograms, so a request costs a map lookup by method and a
//! few atomic operations, and no allocation once its series exist.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use mcp_core::ServerId;
use mcp_protocol::mcp::Method;
use mcp_runtime::observe::{BreakerState, Observer, Outcome, ServerObserver};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// The content type of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    server: String,
    method: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabels {
    server: String,
    method: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServerLabels {
    server: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TransitionLabels {
    server: String,
    to: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ActionLabels {
    server: String,
    action: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DirectionLabels {
    direction: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// Request latency buckets, in seconds: 100 µs to about 52 s.
fn latency_histogram() -> Histogram {
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        0.0001, 2.0, 20,
    ))
}

struct Families {
    requests: Family<RequestLabels, Counter>,
    duration: HistogramFamily<MethodLabels>,
    in_flight: Family<ServerLabels, Gauge>,
    queued: Family<ServerLabels, Gauge>,
    rejections: Family<ServerLabels, Counter>,
    breaker_state: Family<ServerLabels, Gauge>,
    breaker_transitions: Family<TransitionLabels, Counter>,
    restarts: Family<ServerLabels, Counter>,
    crash_loops: Family<ServerLabels, Counter>,
    tool_changes: Family<ActionLabels, Counter>,
    tools_unapproved: Family<ServerLabels, Gauge>,
    sessions: Gauge,
    bytes_in: Counter,
    bytes_out: Counter,
}

/// The gateway's metrics: give [`Metrics::observer`] to the runtime and
/// the HTTP endpoint, and serve [`Metrics::render`] at `/metrics`.
/// Cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    families: Arc<Families>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Every metric, registered and at zero.
    #[must_use]
    pub fn new() -> Self {
        let families = Families {
            requests: Family::default(),
            duration: Family::new_with_constructor(latency_histogram),
            in_flight: Family::default(),
            queued: Family::default(),
            rejections: Family::default(),
            breaker_state: Family::default(),
            breaker_transitions: Family::default(),
            restarts: Family::default(),
            crash_loops: Family::default(),
            tool_changes: Family::default(),
            tools_unapproved: Family::default(),
            sessions: Gauge::default(),
            bytes_in: Counter::default(),
            bytes_out: Counter::default(),
        };
        let bytes = Family::<DirectionLabels, Counter>::default();
        let mut registry = Registry::default();
        let r = &mut registry;
        let f = &families;
        r.register(
            "mcp_requests",
            "Requests sent to servers, by how they ended",
            f.requests.clone(),
        );
        r.register(
            "mcp_request_duration_seconds",
            "Time from sending a request to its end",
            f.duration.clone(),
        );
        r.register(
            "mcp_requests_in_flight",
            "Requests sent to a server and not ended yet",
            f.in_flight.clone(),
        );
        r.register(
            "mcp_bulkhead_queued",
            "Requests waiting for a free slot of a server's bulkhead",
            f.queued.clone(),
        );
        r.register(
            "mcp_bulkhead_rejections",
            "Requests refused because a server's bulkhead queue was full",
            f.rejections.clone(),
        );
        r.register(
            "mcp_circuit_breaker_state",
            "A server's circuit breaker: 0 closed, 1 half open, 2 open",
            f.breaker_state.clone(),
        );
        r.register(
            "mcp_circuit_breaker_transitions",
            "Changes of a server's circuit breaker, by the state entered",
            f.breaker_transitions.clone(),
        );
        r.register(
            "mcp_server_restarts",
            "Restarts of a server's instances after a lost connection",
            f.restarts.clone(),
        );
        r.register(
            "mcp_server_crash_loops",
            "Instances given up on after failing too often in a row",
            f.crash_loops.clone(),
        );
        r.register(
            "mcp_tool_definition_changes",
            "Tool definitions seen that differ from the pinned ones, by whether the tool was held back or served",
            f.tool_changes.clone(),
        );
        r.register(
            "mcp_tools_unapproved",
            "A server's tools whose definition differs from the pinned one",
            f.tools_unapproved.clone(),
        );
        r.register(
            "mcp_sessions_open",
            "Client sessions open at the HTTP endpoint",
            f.sessions.clone(),
        );
        r.register(
            "mcp_bytes",
            "Bytes of MCP traffic at the HTTP endpoint, by direction",
            bytes.clone(),
        );
        let families = Families {
            bytes_in: bytes
                .get_or_create_owned(&DirectionLabels { direction: "in" })
                .clone(),
            bytes_out: bytes
                .get_or_create_owned(&DirectionLabels { direction: "out" })
                .clone(),
            ..families
        };
        Self {
            registry: Arc::new(registry),
            families: Arc::new(families),
        }
    }

    /// The observer to give the runtime
    /// ([`McpRuntime::start_with`](mcp_runtime::McpRuntime::start_with)) and
    /// the HTTP endpoint (`mcp_serve::HttpServeOptions`).
    #[must_use]
    pub fn observer(&self) -> Arc<dyn Observer> {
        Arc::new(self.clone())
    }

    /// Every metric in the OpenMetrics text format ([`CONTENT_TYPE`]).
    #[must_use]
    pub fn render(&self) -> String {
        let mut text = String::with_capacity(8192);
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

impl Observer for Metrics {
    fn server(&self, id: &ServerId) -> Arc<dyn ServerObserver> {
        let server = ServerLabels {
            server: id.as_str().to_owned(),
        };
        let f = &self.families;
        let breaker_state = f.breaker_state.get_or_create_owned(&server);
        breaker_state.set(0);
        Arc::new(ServerMetrics {
            name: server.server.clone(),
            families: self.families.clone(),
            in_flight: f.in_flight.get_or_create_owned(&server),
            queued: f.queued.get_or_create_owned(&server),
            rejections: f.rejections.get_or_create_owned(&server),
            breaker_state,
            restarts: f.restarts.get_or_create_owned(&server),
            crash_loops: f.crash_loops.get_or_create_owned(&server),
            series: (0..=Method::ALL.len())
                .map(|_| MethodSeries::default())
                .collect(),
        })
    }

    fn sessions(&self, delta: i64) {
        self.families.sessions.inc_by(delta);
    }

    fn bytes_in(&self, bytes: u64) {
        self.families.bytes_in.inc_by(bytes);
    }

    fn bytes_out(&self, bytes: u64) {
        self.families.bytes_out.inc_by(bytes);
    }
}

/// One server's handles.
struct ServerMetrics {
    name: String,
    families: Arc<Families>,
    in_flight: Gauge,
    queued: Gauge,
    rejections: Counter,
    breaker_state: Gauge,
    restarts: Counter,
    crash_loops: Counter,
    /// Per method (MCP's, by [`Method::index`], then `other`): the
    /// latency histogram and a counter per outcome, each resolved in its
    /// family on first use and kept, so a request costs no lock and no map.
    series: Box<[MethodSeries]>,
}

#[derive(Default)]
struct MethodSeries {
    duration: OnceLock<Histogram>,
    outcomes: [OnceLock<Counter>; Outcome::ALL.len()],
}

impl ServerMetrics {
    fn record(&self, method: &'static str, outcome: Outcome, took: Duration) {
        let slot = Method::from_name(method).map_or(Method::ALL.len(), Method::index);
        let Some(series) = self.series.get(slot) else {
            return;
        };
        let histogram = series.duration.get_or_init(|| {
            self.families.duration.get_or_create_owned(&MethodLabels {
                server: self.name.clone(),
                method,
            })
        });
        histogram.observe(took.as_secs_f64());
        if let Some(counter) = series.outcomes.get(outcome.index()) {
            counter
                .get_or_init(|| {
                    self.families.requests.get_or_create_owned(&RequestLabels {
                        server: self.name.clone(),
                        method,
                        outcome: outcome.name(),
                    })
                })
                .inc();
        }
    }
}

impl ServerObserver for ServerMetrics {
    fn started(&self, _: &'static str) {
        self.in_flight.inc();
    }

    fn finished(&self, method: &'static str, outcome: Outcome, took: Duration) {
        self.in_flight.dec();
        if outcome == Outcome::Busy {
            self.rejections.inc();
        }
        self.record(method, outcome, took);
    }

    fn queued(&self, depth: usize) {
        self.queued.set(i64::try_from(depth).unwrap_or(i64::MAX));
    }

    fn breaker(&self, to: BreakerState) {
        self.breaker_state.set(match to {
            BreakerState::Closed => 0,
            BreakerState::HalfOpen => 1,
            BreakerState::Open => 2,
        });
        self.families
            .breaker_transitions
            .get_or_create_owned(&TransitionLabels {
                server: self.name.clone(),
                to: to.name(),
            })
            .inc();
    }

    fn restarted(&self) {
        self.restarts.inc();
    }

    fn gave_up(&self) {
        self.crash_loops.inc();
    }

    fn tool_changed(&self, held: bool) {
        self.families
            .tool_changes
            .get_or_create_owned(&ActionLabels {
                server: self.name.clone(),
                action: if held { "held" } else { "served" },
            })
            .inc();
    }

    fn tools_unapproved(&self, count: usize) {
        self.families
            .tools_unapproved
            .get_or_create_owned(&ServerLabels {
                server: self.name.clone(),
            })
            .set(i64::try_from(count).unwrap_or(i64::MAX));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn line<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
        text.lines().find(|l| l.starts_with(prefix))
    }

    #[test]
    fn requests_are_counted_by_server_method_and_outcome() {
        let metrics = Metrics::new();
        let observer = metrics.observer();
        let server = observer.server(&ServerId::new("github").unwrap());
        server.started("tools/call");
        server.started("tools/call");
        assert!(
            line(
                &metrics.render(),
                "mcp_requests_in_flight{server=\"github\"} 2"
            )
            .is_some()
        );
        server.finished("tools/call", Outcome::Ok, Duration::from_millis(3));
        server.finished("tools/call", Outcome::Busy, Duration::from_micros(5));
        observer.sessions(1);
        observer.bytes_in(10);
        observer.bytes_out(7);
        let text = metrics.render();
        for expected in [
            "mcp_requests_total{server=\"github\",method=\"tools/call\",outcome=\"ok\"} 1",
            "mcp_requests_total{server=\"github\",method=\"tools/call\",outcome=\"busy\"} 1",
            "mcp_requests_in_flight{server=\"github\"} 0",
            "mcp_bulkhead_rejections_total{server=\"github\"} 1",
            "mcp_request_duration_seconds_count{server=\"github\",method=\"tools/call\"} 2",
            "mcp_circuit_breaker_state{server=\"github\"} 0",
            "mcp_sessions_open 1",
            "mcp_bytes_total{direction=\"in\"} 10",
            "mcp_bytes_total{direction=\"out\"} 7",
        ] {
            assert!(line(&text, expected).is_some(), "{expected} in\n{text}");
        }
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn breaker_and_restarts() {
        let metrics = Metrics::new();
        let server = metrics.observer().server(&ServerId::new("flaky").unwrap());
        server.breaker(BreakerState::Open);
        server.restarted();
        server.gave_up();
        let text = metrics.render();
        for expected in [
            "mcp_circuit_breaker_state{server=\"flaky\"} 2",
            "mcp_circuit_breaker_transitions_total{server=\"flaky\",to=\"open\"} 1",
            "mcp_server_restarts_total{server=\"flaky\"} 1",
            "mcp_server_crash_loops_total{server=\"flaky\"} 1",
        ] {
            assert!(line(&text, expected).is_some(), "{expected} in\n{text}");
        }
    }

    #[test]
    fn tool_definition_changes() {
        let metrics = Metrics::new();
        let server = metrics.observer().server(&ServerId::new("remote").unwrap());
        server.tool_changed(true);
        server.tool_changed(true);
        server.tool_changed(false);
        server.tools_unapproved(3);
        server.tools_unapproved(2);
        let text = metrics.render();
        for expected in [
            "mcp_tool_definition_changes_total{server=\"remote\",action=\"held\"} 2",
            "mcp_tool_definition_changes_total{server=\"remote\",action=\"served\"} 1",
            "mcp_tools_unapproved{server=\"remote\"} 2",
        ] {
            assert!(line(&text, expected).is_some(), "{expected} in\n{text}");
        }
    }
}
