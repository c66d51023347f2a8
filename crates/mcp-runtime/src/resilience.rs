//! The layers every request to a server goes through, as tower layers.
//!
//! Outermost first:
//!
//! 1. [`RetryLayer`]: a request that is safe to repeat (a list, a read, a
//!    get, a completion, a ping, a call of a tool annotated read-only or
//!    idempotent) and got no answer (timeout, lost connection) is tried
//!    again, after a backoff that doubles; never after an answer, never a
//!    request that is not safe to repeat, never through an open circuit.
//! 2. [`BreakerLayer`]: the circuit breaker. Each try counts: after
//!    `failures` tries in a row without an answer the circuit opens and
//!    requests are refused at once ([`ErrorKind::CircuitOpen`]); after
//!    `open_for` a few trial requests go through, and their answer closes
//!    it again. A server's own error is an answer. Refusals by the bulkhead
//!    and cancellations by the caller do not count either way.
//! 3. [`DeadlineLayer`]: the total timeout of one try, however much
//!    progress it reports (the connection actor's own timeout, reset by
//!    progress, still applies inside it), counting the time spent queued.
//! 4. [`BulkheadLayer`]: at most `maxConcurrency` requests in flight; up
//!    to `maxQueued` more wait for a slot, and beyond that a request is
//!    refused at once with [`ErrorKind::Busy`], naming the limits. The
//!    runtime's own list fetches (cached, one per change) skip it, so a
//!    busy server's tools stay listed.
//!
//! Under them, [`Upstream`] sends the request to an instance. A layer that
//! is not configured passes calls straight through, with no allocation.
//! The layers' state (the breaker, the bulkhead's slots) belongs to the
//! server and lives as long as its handle; the stack itself is built per
//! request from it, which costs a few reference counts.

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use mcp_core::ServerId;
use mcp_core::config::{BreakerConfig, RetryConfig};
use mcp_protocol::mcp::Method;
use mcp_protocol::raw::Raw;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tower::{Layer, Service};

use crate::observe::{BreakerState, ServerObserver};
use crate::server::{CallOptions, ServerHandle};
use crate::{Error, ErrorKind, Result};

/// One request on its way down the stack.
pub(crate) struct Call {
    pub(crate) method: Cow<'static, str>,
    pub(crate) params: Option<Raw<'static>>,
    pub(crate) options: CallOptions,
    /// Whether the request may be sent again after it got no answer.
    pub(crate) repeatable: bool,
    /// Whether it skips the bulkhead: the runtime's own list fetches, which
    /// are cached and rare, so that a busy server's tools stay listed.
    pub(crate) unqueued: bool,
}

impl Call {
    /// A copy for another try.
    fn again(&self) -> Self {
        Self {
            method: self.method.clone(),
            params: self.params.clone(),
            options: self.options.clone(),
            repeatable: self.repeatable,
            unqueued: self.unqueued,
        }
    }
}

/// What every layer's service returns.
pub(crate) type CallFuture = mcp_core::BoxFuture<'static, Result<Raw<'static>>>;

/// Whether a method is safe to send twice: it reads and changes nothing.
/// `tools/call` is decided per tool, by its annotations.
pub(crate) fn repeatable_method(method: &str) -> bool {
    matches!(
        Method::from_name(method),
        Some(
            Method::Ping
                | Method::ToolsList
                | Method::ResourcesList
                | Method::ResourceTemplatesList
                | Method::ResourcesRead
                | Method::PromptsList
                | Method::PromptsGet
                | Method::Complete
                | Method::Discover
        )
    )
}

/// Whether a try that failed with `kind` got no answer: the failures that
/// open a circuit and may be retried.
fn unanswered(kind: &ErrorKind) -> bool {
    matches!(
        kind,
        ErrorKind::Timeout | ErrorKind::Disconnected | ErrorKind::Unavailable
    )
}

/// Waits until `service` is ready, then calls it.
pub(crate) async fn ready_call<S>(mut service: S, call: Call) -> Result<Raw<'static>>
where
    S: Service<Call, Response = Raw<'static>, Error = Error, Future = CallFuture>,
{
    std::future::poll_fn(|cx| service.poll_ready(cx)).await?;
    service.call(call).await
}

// ---------------------------------------------------------------------------
// The server itself.

/// The bottom of the stack: sends the request to one of the server's
/// instances.
#[derive(Clone)]
pub(crate) struct Upstream(pub(crate) ServerHandle);

impl Service<Call> for Upstream {
    type Response = Raw<'static>;
    type Error = Error;
    type Future = CallFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, call: Call) -> CallFuture {
        let handle = self.0.clone();
        Box::pin(async move {
            handle
                .send_request(call.method, call.params, call.options)
                .await
        })
    }
}

// ---------------------------------------------------------------------------
// Bulkhead.

/// A server's bulkhead: slots for requests in flight and a bounded queue.
pub(crate) struct Bulkhead {
    server: ServerId,
    slots: Arc<Semaphore>,
    size: usize,
    max_queued: usize,
    queued: AtomicUsize,
    observer: Arc<dyn ServerObserver>,
}

impl Bulkhead {
    pub(crate) fn new(
        server: ServerId,
        size: usize,
        max_queued: usize,
        observer: Arc<dyn ServerObserver>,
    ) -> Self {
        Self {
            server,
            slots: Arc::new(Semaphore::new(size)),
            size,
            max_queued,
            queued: AtomicUsize::new(0),
            observer,
        }
    }

    /// Requests waiting for a slot now.
    pub(crate) fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    /// A slot: at once, after waiting in the queue, or the refusal.
    async fn enter(self: Arc<Self>) -> Result<OwnedSemaphorePermit> {
        if let Ok(permit) = self.slots.clone().try_acquire_owned() {
            return Ok(permit);
        }
        let depth = self.queued.fetch_add(1, Ordering::Relaxed) + 1;
        let waiting = Queued(&self);
        if depth > self.max_queued {
            drop(waiting);
            return Err(Error::new(
                ErrorKind::Busy,
                format!(
                    "server `{}` is busy: {} requests in flight and {} waiting, its limits \
                     (maxConcurrency, resilience.maxQueued); try again later",
                    self.server, self.size, self.max_queued
                ),
            ));
        }
        self.observer.queued(depth);
        let permit = self.slots.clone().acquire_owned().await;
        drop(waiting);
        permit.map_err(|_| Error::new(ErrorKind::Shutdown, "the server is stopping"))
    }
}

/// One request counted as waiting until dropped.
struct Queued<'a>(&'a Bulkhead);

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        let depth = self
            .0
            .queued
            .fetch_sub(1, Ordering::Relaxed)
            .saturating_sub(1);
        self.0.observer.queued(depth);
    }
}

/// Adds a server's bulkhead, if it has one.
pub(crate) struct BulkheadLayer(pub(crate) Option<Arc<Bulkhead>>);

impl<S> Layer<S> for BulkheadLayer {
    type Service = BulkheadService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        BulkheadService {
            bulkhead: self.0.clone(),
            inner,
        }
    }
}

/// See [`BulkheadLayer`].
#[derive(Clone)]
pub(crate) struct BulkheadService<S> {
    bulkhead: Option<Arc<Bulkhead>>,
    inner: S,
}

impl<S> Service<Call> for BulkheadService<S>
where
    S: Service<Call, Response = Raw<'static>, Error = Error, Future = CallFuture>
        + Clone
        + Send
        + 'static,
{
    type Response = Raw<'static>;
    type Error = Error;
    type Future = CallFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, call: Call) -> CallFuture {
        let Some(bulkhead) = self.bulkhead.clone().filter(|_| !call.unqueued) else {
            return self.inner.call(call);
        };
        let inner = self.inner.clone();
        Box::pin(async move {
            let _slot = bulkhead.enter().await?;
            ready_call(inner, call).await
        })
    }
}

// ---------------------------------------------------------------------------
// Total timeout.

/// Bounds each try by a total timeout, if set.
pub(crate) struct DeadlineLayer(pub(crate) Option<Duration>);

impl<S> Layer<S> for DeadlineLayer {
    type Service = DeadlineService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        DeadlineService {
            limit: self.0,
            inner,
        }
    }
}

/// See [`DeadlineLayer`].
#[derive(Clone)]
pub(crate) struct DeadlineService<S> {
    limit: Option<Duration>,
    inner: S,
}

impl<S> Service<Call> for DeadlineService<S>
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
        let Some(limit) = self.limit else {
            return self.inner.call(call);
        };
        let answer = self.inner.call(call);
        Box::pin(async move {
            // Dropping `answer` on timeout cancels the request upstream.
            tokio::time::timeout(limit, answer).await.unwrap_or_else(|_| {
                Err(Error::new(
                    ErrorKind::Timeout,
                    format!(
                        "no answer within the total timeout of {} ms (resilience.totalTimeoutMs)",
                        limit.as_millis()
                    ),
                ))
            })
        })
    }
}

// ---------------------------------------------------------------------------
// Circuit breaker.

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
        let now = Instant::now();
        let trial = self.transition(|circuit| match circuit {
            Circuit::Open { until } if now < until => Err(Error::new(
                ErrorKind::CircuitOpen,
                format!(
                    "server `{}` is failing: its circuit breaker is open after {} \
                     requests in a row got no answer; next try in {} ms",
                    self.server,
                    self.config.failures(),
                    until.saturating_duration_since(now).as_millis()
                ),
            )),
            // Its time is up: this try is the first trial.
            Circuit::Open { .. } => Ok((Circuit::HalfOpen { trials: 1 }, true)),
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
        let open = Circuit::Open {
            until: Instant::now() + self.config.open_for(),
        };
        let _ = self.transition(|circuit| {
            let next = match (circuit, verdict) {
                (Circuit::Closed { .. }, Verdict::Answered) => Circuit::Closed { failures: 0 },
                (Circuit::Closed { failures }, Verdict::Unanswered) => {
                    let failures = failures.saturating_add(1);
                    if failures >= self.config.failures() {
                        open
                    } else {
                        Circuit::Closed { failures }
                    }
                }
                (Circuit::HalfOpen { .. }, Verdict::Answered) if trial => {
                    Circuit::Closed { failures: 0 }
                }
                (Circuit::HalfOpen { .. }, Verdict::Unanswered) if trial => open,
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

// ---------------------------------------------------------------------------
// Retries.

/// Tries requests that are safe to repeat again.
pub(crate) struct RetryLayer(pub(crate) RetryConfig);

impl<S> Layer<S> for RetryLayer {
    type Service = RetryService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RetryService {
            config: self.0,
            inner,
        }
    }
}

/// See [`RetryLayer`].
#[derive(Clone)]
pub(crate) struct RetryService<S> {
    config: RetryConfig,
    inner: S,
}

impl<S> Service<Call> for RetryService<S>
where
    S: Service<Call, Response = Raw<'static>, Error = Error, Future = CallFuture>
        + Clone
        + Send
        + 'static,
{
    type Response = Raw<'static>;
    type Error = Error;
    type Future = CallFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, call: Call) -> CallFuture {
        if !call.repeatable || self.config.attempts() == 0 {
            return self.inner.call(call);
        }
        let config = self.config;
        let inner = self.inner.clone();
        Box::pin(async move {
            let mut backoff = config.backoff();
            let mut retries = 0;
            loop {
                let outcome = ready_call(inner.clone(), call.again()).await;
                match &outcome {
                    Err(error) if unanswered(error.kind()) && retries < config.attempts() => {
                        retries += 1;
                        tracing::debug!(
                            method = %call.method,
                            "no answer ({error}); retry {retries} in {} ms",
                            backoff.as_millis()
                        );
                        tokio::time::sleep(backoff).await;
                        backoff = backoff.saturating_mul(2);
                    }
                    _ => return outcome,
                }
            }
        })
    }
}

/// The whole stack over `upstream`, outermost first: retries, breaker,
/// total timeout, bulkhead.
pub(crate) fn stack(
    upstream: Upstream,
    retries: RetryConfig,
    breaker: Option<Arc<Breaker>>,
    total_timeout: Option<Duration>,
    bulkhead: Option<Arc<Bulkhead>>,
) -> impl Service<Call, Response = Raw<'static>, Error = Error, Future = CallFuture> {
    tower::ServiceBuilder::new()
        .layer(RetryLayer(retries))
        .layer(BreakerLayer(breaker))
        .layer(DeadlineLayer(total_timeout))
        .layer(BulkheadLayer(bulkhead))
        .service(upstream)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::Mutex;

    use super::*;
    use crate::lock;
    use crate::observe::NoObserver;

    /// What the fake server does with one try.
    #[derive(Clone, Copy, Debug)]
    enum Act {
        Answer,
        Fail(&'static ErrorKind),
        Slow(Duration),
    }

    /// A fake server for the layers above it: acts out a script, then
    /// answers.
    #[derive(Clone, Default)]
    struct Script {
        acts: Arc<Mutex<VecDeque<Act>>>,
        tries: Arc<AtomicUsize>,
    }

    impl Script {
        fn new(acts: &[Act]) -> Self {
            Self {
                acts: Arc::new(Mutex::new(acts.iter().copied().collect())),
                tries: Arc::default(),
            }
        }

        fn tries(&self) -> usize {
            self.tries.load(Ordering::SeqCst)
        }
    }

    impl Service<Call> for Script {
        type Response = Raw<'static>;
        type Error = Error;
        type Future = CallFuture;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, _: Call) -> CallFuture {
            self.tries.fetch_add(1, Ordering::SeqCst);
            let act = lock(&self.acts).pop_front().unwrap_or(Act::Answer);
            Box::pin(async move {
                match act {
                    Act::Answer => Ok(Raw::from_value(&serde_json::json!({}))),
                    Act::Fail(kind) => Err(Error::new(kind.clone(), "scripted")),
                    Act::Slow(wait) => {
                        tokio::time::sleep(wait).await;
                        Ok(Raw::from_value(&serde_json::json!({})))
                    }
                }
            })
        }
    }

    fn call(method: &str, repeatable: bool) -> Call {
        Call {
            method: Cow::Owned(method.to_owned()),
            params: None,
            options: CallOptions::default(),
            repeatable,
            unqueued: false,
        }
    }

    fn server() -> ServerId {
        ServerId::new("slow").unwrap()
    }

    fn breaker(failures: u32, open_ms: u64) -> Arc<Breaker> {
        Arc::new(Breaker::new(
            server(),
            BreakerConfig::new(failures, Duration::from_millis(open_ms), 1),
            Arc::new(NoObserver),
        ))
    }

    async fn through<S>(service: &S, call: Call) -> Result<Raw<'static>>
    where
        S: Service<Call, Response = Raw<'static>, Error = Error, Future = CallFuture> + Clone,
    {
        ready_call(service.clone(), call).await
    }

    const TIMEOUT: &ErrorKind = &ErrorKind::Timeout;
    const RPC: &ErrorKind = &ErrorKind::Rpc;

    #[tokio::test(start_paused = true)]
    async fn the_breaker_opens_refuses_half_opens_and_closes() {
        let script = Script::new(&[Act::Fail(TIMEOUT); 3]);
        let breaker = breaker(3, 1000);
        let service = BreakerLayer(Some(breaker.clone())).layer(script.clone());
        for _ in 0..3 {
            let error = through(&service, call("tools/call", false))
                .await
                .unwrap_err();
            assert_eq!(*error.kind(), ErrorKind::Timeout);
        }
        assert_eq!(breaker.state(), BreakerState::Open);
        let refused = through(&service, call("tools/call", false))
            .await
            .unwrap_err();
        assert_eq!(*refused.kind(), ErrorKind::CircuitOpen);
        assert!(
            refused
                .message()
                .contains("circuit breaker is open after 3"),
            "{refused}"
        );
        assert_eq!(
            script.tries(),
            3,
            "an open circuit does not reach the server"
        );

        tokio::time::advance(Duration::from_millis(1001)).await;
        assert_eq!(breaker.state(), BreakerState::HalfOpen);
        through(&service, call("tools/call", false)).await.unwrap();
        assert_eq!(breaker.state(), BreakerState::Closed);
        assert_eq!(script.tries(), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_trial_opens_the_circuit_again_and_one_trial_at_a_time() {
        let script = Script::new(&[
            Act::Fail(TIMEOUT),
            Act::Fail(TIMEOUT),
            Act::Slow(Duration::from_millis(500)),
        ]);
        let breaker = breaker(1, 100);
        let service = BreakerLayer(Some(breaker.clone())).layer(script.clone());
        through(&service, call("ping", false)).await.unwrap_err();
        assert_eq!(breaker.state(), BreakerState::Open);
        tokio::time::advance(Duration::from_millis(101)).await;
        // The trial fails: open again, for another full period.
        through(&service, call("ping", false)).await.unwrap_err();
        assert_eq!(breaker.state(), BreakerState::Open);
        tokio::time::advance(Duration::from_millis(101)).await;
        // A slow trial: a second request meanwhile is refused.
        let trial = tokio::spawn({
            let service = service.clone();
            async move { through(&service, call("ping", false)).await }
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        let second = through(&service, call("ping", false)).await.unwrap_err();
        assert_eq!(*second.kind(), ErrorKind::CircuitOpen);
        assert!(second.message().contains("half open"), "{second}");
        trial.await.unwrap().unwrap();
        assert_eq!(breaker.state(), BreakerState::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn a_servers_own_error_is_an_answer_and_resets_the_count() {
        let script = Script::new(&[
            Act::Fail(TIMEOUT),
            Act::Fail(RPC),
            Act::Fail(TIMEOUT),
            Act::Fail(RPC),
            Act::Fail(RPC),
        ]);
        let breaker = breaker(2, 1000);
        let service = BreakerLayer(Some(breaker.clone())).layer(script.clone());
        for _ in 0..5 {
            through(&service, call("tools/call", false))
                .await
                .unwrap_err();
        }
        assert_eq!(breaker.state(), BreakerState::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn the_bulkhead_queues_then_refuses_with_its_limits() {
        let script = Script::new(&[Act::Slow(Duration::from_secs(1)); 3]);
        let bulkhead = Arc::new(Bulkhead::new(server(), 1, 1, Arc::new(NoObserver)));
        let service = BulkheadLayer(Some(bulkhead.clone())).layer(script.clone());
        let first = tokio::spawn({
            let service = service.clone();
            async move { through(&service, call("tools/call", false)).await }
        });
        let second = tokio::spawn({
            let service = service.clone();
            async move { through(&service, call("tools/call", false)).await }
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(bulkhead.queued(), 1);
        let third = through(&service, call("tools/call", false))
            .await
            .unwrap_err();
        assert_eq!(*third.kind(), ErrorKind::Busy);
        assert!(
            third
                .message()
                .contains("is busy: 1 requests in flight and 1 waiting"),
            "{third}"
        );
        first.await.unwrap().unwrap();
        second.await.unwrap().unwrap();
        assert_eq!(bulkhead.queued(), 0);
        assert_eq!(
            script.tries(),
            2,
            "the refused request never reached the server"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiting_request_that_is_dropped_leaves_the_queue() {
        let script = Script::new(&[Act::Slow(Duration::from_secs(1))]);
        let bulkhead = Arc::new(Bulkhead::new(server(), 1, 4, Arc::new(NoObserver)));
        let service = BulkheadLayer(Some(bulkhead.clone())).layer(script);
        let first = tokio::spawn({
            let service = service.clone();
            async move { through(&service, call("ping", false)).await }
        });
        tokio::time::sleep(Duration::from_millis(1)).await;
        let waiting = tokio::spawn({
            let service = service.clone();
            async move { through(&service, call("ping", false)).await }
        });
        tokio::time::sleep(Duration::from_millis(1)).await;
        assert_eq!(bulkhead.queued(), 1);
        waiting.abort();
        let _ = waiting.await;
        assert_eq!(bulkhead.queued(), 0);
        first.await.unwrap().unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn retries_only_what_is_safe_and_got_no_answer() {
        let retries = RetryConfig::new(2, Duration::from_millis(100));
        // Safe and unanswered: tried three times in all.
        let script = Script::new(&[Act::Fail(TIMEOUT), Act::Fail(TIMEOUT)]);
        let service = RetryLayer(retries).layer(script.clone());
        let began = Instant::now();
        through(&service, call("resources/read", true))
            .await
            .unwrap();
        assert_eq!(script.tries(), 3);
        assert_eq!(
            began.elapsed(),
            Duration::from_millis(300),
            "100 ms, then 200 ms"
        );

        // Not safe: one try, whatever happened.
        let script = Script::new(&[Act::Fail(TIMEOUT)]);
        let service = RetryLayer(retries).layer(script.clone());
        through(&service, call("tools/call", false))
            .await
            .unwrap_err();
        assert_eq!(script.tries(), 1);

        // Safe but answered with an error: not tried again.
        let script = Script::new(&[Act::Fail(RPC)]);
        let service = RetryLayer(retries).layer(script.clone());
        through(&service, call("resources/read", true))
            .await
            .unwrap_err();
        assert_eq!(script.tries(), 1);

        // Safe, unanswered every time: the last error after the retries.
        let script = Script::new(&[Act::Fail(TIMEOUT); 5]);
        let service = RetryLayer(retries).layer(script.clone());
        let error = through(&service, call("ping", true)).await.unwrap_err();
        assert_eq!(*error.kind(), ErrorKind::Timeout);
        assert_eq!(script.tries(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn retries_stop_at_an_open_circuit() {
        let script = Script::new(&[Act::Fail(TIMEOUT); 5]);
        let breaker = breaker(1, 10_000);
        let service = tower::ServiceBuilder::new()
            .layer(RetryLayer(RetryConfig::new(3, Duration::from_millis(1))))
            .layer(BreakerLayer(Some(breaker)))
            .service(script.clone());
        let error = through(&service, call("ping", true)).await.unwrap_err();
        assert_eq!(*error.kind(), ErrorKind::CircuitOpen);
        assert_eq!(script.tries(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn the_total_timeout_bounds_a_try() {
        let script = Script::new(&[Act::Slow(Duration::from_secs(5))]);
        let service = DeadlineLayer(Some(Duration::from_secs(2))).layer(script);
        let error = through(&service, call("tools/call", false))
            .await
            .unwrap_err();
        assert_eq!(*error.kind(), ErrorKind::Timeout);
        assert!(
            error.message().contains("total timeout of 2000 ms"),
            "{error}"
        );
    }

    #[test]
    fn safe_methods() {
        for method in [
            "ping",
            "tools/list",
            "resources/read",
            "prompts/get",
            "completion/complete",
        ] {
            assert!(repeatable_method(method), "{method}");
        }
        for method in [
            "tools/call",
            "resources/subscribe",
            "logging/setLevel",
            "x/other",
        ] {
            assert!(!repeatable_method(method), "{method}");
        }
    }
}
