//! The circuit breaker: one atomic word, changed by compare-and-swap.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use mcp_core::ServerId;
use mcp_core::config::BreakerConfig;
use mcp_protocol::raw::Raw;
use tokio::time::Instant;
use tower::{Layer, Service};

use super::{Call, CallFuture, unanswered};
use crate::observe::{BreakerState, ServerObserver};
use crate::{Error, ErrorKind, Result};

/// A server's circuit breaker. Its state is one atomic word, changed by
/// compare-and-swap: no lock on a request's way.
pub(crate) struct Breaker {
    server: ServerId,
    config: BreakerConfig,
    circuit: AtomicU64,
    /// What an open circuit's deadline is counted from.
    epoch: Instant,
    observer: Arc<dyn ServerObserver>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Circuit {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen { trials: u32 },
}

impl Circuit {
    fn state(self) -> BreakerState {
        match self {
            Self::Closed { .. } => BreakerState::Closed,
            Self::Open { .. } => BreakerState::Open,
            Self::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }
}

/// The top two bits of the word say which state; the rest hold its count,
/// or an open circuit's deadline in nanoseconds since the breaker's epoch.
const TAG_SHIFT: u32 = 62;
const PAYLOAD: u64 = (1 << TAG_SHIFT) - 1;
const CLOSED: u64 = 0;
const OPEN: u64 = 1;
const HALF_OPEN: u64 = 2;

/// How a try ended, for the breaker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    Answered,
    Unanswered,
    /// Neither: refused by the bulkhead, cancelled, or dropped.
    Neutral,
}

impl Breaker {
    pub(crate) fn new(
        server: ServerId,
        config: BreakerConfig,
        observer: Arc<dyn ServerObserver>,
    ) -> Self {
        Self {
            server,
            config,
            circuit: AtomicU64::new(CLOSED << TAG_SHIFT),
            epoch: Instant::now(),
            observer,
        }
    }

    fn encode(&self, circuit: Circuit) -> u64 {
        let (tag, payload) = match circuit {
            Circuit::Closed { failures } => (CLOSED, u64::from(failures)),
            Circuit::HalfOpen { trials } => (HALF_OPEN, u64::from(trials)),
            Circuit::Open { until } => {
                let nanos = until.saturating_duration_since(self.epoch).as_nanos();
                (OPEN, u64::try_from(nanos).unwrap_or(PAYLOAD).min(PAYLOAD))
            }
        };
        (tag << TAG_SHIFT) | payload
    }

    fn decode(&self, word: u64) -> Circuit {
        let payload = word & PAYLOAD;
        let count = u32::try_from(payload).unwrap_or(u32::MAX);
        match word >> TAG_SHIFT {
            OPEN => Circuit::Open {
                until: self.epoch + Duration::from_nanos(payload),
            },
            HALF_OPEN => Circuit::HalfOpen { trials: count },
            _ => Circuit::Closed { failures: count },
        }
    }

    /// The state now (an open circuit whose time is up reads half open).
    pub(crate) fn state(&self) -> BreakerState {
        match self.decode(self.circuit.load(Ordering::Acquire)) {
            Circuit::Open { until } if Instant::now() >= until => BreakerState::HalfOpen,
            circuit => circuit.state(),
        }
    }

    /// Moves the circuit as `step` says, atomically: `step` sees the state
    /// and gives the next one with its outcome, or an error that leaves the
    /// state as it is. It may run more than once when tries race.
    fn transition<T>(&self, mut step: impl FnMut(Circuit) -> Result<(Circuit, T)>) -> Result<T> {
        let mut word = self.circuit.load(Ordering::Acquire);
        loop {
            let before = self.decode(word);
            let (after, outcome) = step(before)?;
            let next = self.encode(after);
            if next == word {
                return Ok(outcome);
            }
            match self.circuit.compare_exchange_weak(
                word,
                next,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    self.announce(before, after);
                    return Ok(outcome);
                }
                Err(now) => word = now,
            }
        }
    }

    fn announce(&self, before: Circuit, after: Circuit) {
        let (before, after) = (before.state(), after.state());
        if before != after {
            tracing::warn!(
                server = %self.server,
                "circuit breaker {} -> {}",
                before.name(),
                after.name()
            );
            self.observer.breaker(after);
        }
    }

    /// Lets a try through, noting whether it is a trial, or refuses it.
    fn admit(self: &Arc<Self>) -> Result<Ticket> {
        // The clock is read only when the circuit is open: a closed one,
        // the usual case, costs one atomic load.
        let trial = self.transition(|circuit| match circuit {
            Circuit::Open { until } => {
                let now = Instant::now();
                if now < until {
                    return Err(Error::new(
                        ErrorKind::CircuitOpen,
                        format!(
                            "server `{}` is failing: its circuit breaker is open after {} \
                             requests in a row got no answer; next try in {} ms",
                            self.server,
                            self.config.failures(),
                            until.saturating_duration_since(now).as_millis()
                        ),
                    ));
                }
                // Its time is up: this try is the first trial.
                Ok((Circuit::HalfOpen { trials: 1 }, true))
            }
            Circuit::HalfOpen { trials } if trials >= self.config.half_open_requests() => {
                Err(Error::new(
                    ErrorKind::CircuitOpen,
                    format!(
                        "server `{}` is failing: its circuit breaker is half open and \
                         waits for its trial requests",
                        self.server
                    ),
                ))
            }
            Circuit::HalfOpen { trials } => Ok((Circuit::HalfOpen { trials: trials + 1 }, true)),
            closed @ Circuit::Closed { .. } => Ok((closed, false)),
        })?;
        Ok(Ticket {
            breaker: self.clone(),
            trial,
            done: false,
        })
    }

    fn record(&self, trial: bool, verdict: Verdict) {
        let open = || Circuit::Open {
            until: Instant::now() + self.config.open_for(),
        };
        let _ = self.transition(|circuit| {
            let next = match (circuit, verdict) {
                (Circuit::Closed { .. }, Verdict::Answered) => Circuit::Closed { failures: 0 },
                (Circuit::Closed { failures }, Verdict::Unanswered) => {
                    let failures = failures.saturating_add(1);
                    if failures >= self.config.failures() {
                        open()
                    } else {
                        Circuit::Closed { failures }
                    }
                }
                (Circuit::HalfOpen { .. }, Verdict::Answered) if trial => {
                    Circuit::Closed { failures: 0 }
                }
                (Circuit::HalfOpen { .. }, Verdict::Unanswered) if trial => open(),
                (Circuit::HalfOpen { trials }, Verdict::Neutral) if trial => Circuit::HalfOpen {
                    trials: trials.saturating_sub(1),
                },
                // A try let through before the circuit opened, or an answer
                // that says nothing: the state stands.
                (same, _) => same,
            };
            Ok((next, ()))
        });
    }
}

/// A try let through by the breaker; dropped without a verdict (its
/// caller went away), it counts as neutral.
struct Ticket {
    breaker: Arc<Breaker>,
    trial: bool,
    done: bool,
}

impl Ticket {
    fn finish(mut self, outcome: &Result<Raw<'static>>) {
        self.done = true;
        let verdict = match outcome {
            Ok(_) => Verdict::Answered,
            Err(error) if unanswered(error.kind()) => Verdict::Unanswered,
            Err(error) if matches!(error.kind(), ErrorKind::Busy | ErrorKind::Cancelled) => {
                Verdict::Neutral
            }
            Err(_) => Verdict::Answered,
        };
        self.breaker.record(self.trial, verdict);
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if !self.done {
            self.breaker.record(self.trial, Verdict::Neutral);
        }
    }
}

/// Adds a server's circuit breaker, if it has one.
pub(crate) struct BreakerLayer(pub(crate) Option<Arc<Breaker>>);

impl<S> Layer<S> for BreakerLayer {
    type Service = BreakerService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        BreakerService {
            breaker: self.0.clone(),
            inner,
        }
    }
}

/// See [`BreakerLayer`].
#[derive(Clone)]
pub(crate) struct BreakerService<S> {
    breaker: Option<Arc<Breaker>>,
    inner: S,
}

impl<S> Service<Call> for BreakerService<S>
where
    S: Service<Call, Response = Raw<'static>, Error = Error, Future = CallFuture>,
{
    type Response = Raw<'static>;
    type Error = Error;
    type Future = CallFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, call: Call) -> CallFuture {
        let Some(breaker) = &self.breaker else {
            return self.inner.call(call);
        };
        let ticket = match breaker.admit() {
            Ok(ticket) => ticket,
            Err(refused) => return Box::pin(std::future::ready(Err(refused))),
        };
        let answer = self.inner.call(call);
        Box::pin(async move {
            let outcome = answer.await;
            ticket.finish(&outcome);
            outcome
        })
    }
}
