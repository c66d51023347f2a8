//! The layers every request to a server goes through, as tower layers,
//! behind the crate's `resilience` feature (on by default).
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
//!
//! [`Guards`] is all the rest of the runtime sees: a server's layers, made
//! from its spec, and the call through them. Built without the
//! `resilience` feature, the crate has no tower and no layer: a request
//! goes straight to an instance, with only the connection's own timeout,
//! and a server whose entry asks for a layer says once, at deploy, that
//! it is not applied.

#[cfg(feature = "resilience")]
mod breaker;
#[cfg(feature = "resilience")]
mod bulkhead;
#[cfg(feature = "resilience")]
mod deadline;
#[cfg(feature = "resilience")]
mod retry;
#[cfg(all(test, feature = "resilience"))]
mod tests;

use std::borrow::Cow;
use std::sync::Arc;

use mcp_protocol::mcp::Method;
use mcp_protocol::raw::Raw;

use crate::Result;
use crate::observe::{BreakerState, ServerObserver};
use crate::server::{CallOptions, ServerHandle, ServerSpec};
#[cfg(feature = "resilience")]
use {
    crate::ErrorKind,
    breaker::{Breaker, BreakerLayer},
    bulkhead::{Bulkhead, BulkheadLayer},
    deadline::DeadlineLayer,
    retry::RetryLayer,
    tower::Service,
};

/// One request on its way down the stack. What only a layer reads is
/// unread in a build without them.
#[cfg_attr(not(feature = "resilience"), allow(dead_code))]
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
    #[cfg(feature = "resilience")]
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
#[cfg(feature = "resilience")]
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
#[cfg(feature = "resilience")]
fn unanswered(kind: &ErrorKind) -> bool {
    matches!(
        kind,
        ErrorKind::Timeout | ErrorKind::Disconnected | ErrorKind::Unavailable
    )
}

/// A server's layers: the state they keep (the breaker, the bulkhead's
/// slots) for as long as its handle lives.
pub(crate) struct Guards {
    #[cfg(feature = "resilience")]
    breaker: Option<Arc<Breaker>>,
    #[cfg(feature = "resilience")]
    bulkhead: Option<Arc<Bulkhead>>,
}

impl Guards {
    /// The layers `spec` asks for.
    #[cfg(feature = "resilience")]
    pub(crate) fn new(spec: &ServerSpec, observer: &Arc<dyn ServerObserver>) -> Self {
        let breaker = spec
            .resilience
            .breaker()
            .map(|config| Arc::new(Breaker::new(spec.id.clone(), config, observer.clone())));
        let bulkhead = spec.max_concurrency.map(|size| {
            Arc::new(Bulkhead::new(
                spec.id.clone(),
                usize::try_from(size.get()).unwrap_or(usize::MAX),
                spec.resilience.max_queued(),
                observer.clone(),
            ))
        });
        Self { breaker, bulkhead }
    }

    /// No layer: this build has none. A spec that asks for one is told so.
    #[cfg(not(feature = "resilience"))]
    pub(crate) fn new(spec: &ServerSpec, _: &Arc<dyn ServerObserver>) -> Self {
        let resilience = &spec.resilience;
        let asked = [
            (resilience.retries().attempts() > 0, "retries"),
            (resilience.breaker().is_some(), "a circuit breaker"),
            (resilience.total_timeout().is_some(), "a total timeout"),
            (spec.max_concurrency.is_some(), "a concurrency limit"),
        ];
        for (_, what) in asked.iter().filter(|(asked, _)| *asked) {
            tracing::warn!(
                server = %spec.id,
                "{what} is configured but not applied: this build has no `resilience` feature"
            );
        }
        Self {}
    }

    /// The circuit breaker's state; `None` without a breaker.
    pub(crate) fn breaker_state(&self) -> Option<BreakerState> {
        #[cfg(feature = "resilience")]
        return self.breaker.as_ref().map(|b| b.state());
        #[cfg(not(feature = "resilience"))]
        None
    }

    /// Requests waiting in the bulkhead's queue.
    pub(crate) fn queued(&self) -> usize {
        #[cfg(feature = "resilience")]
        return self.bulkhead.as_ref().map_or(0, |b| b.queued());
        #[cfg(not(feature = "resilience"))]
        0
    }

    /// Sends `call` to `handle`'s instances through the layers, outermost
    /// first: retries, breaker, total timeout, bulkhead.
    #[cfg(feature = "resilience")]
    pub(crate) async fn call(&self, handle: &ServerHandle, call: Call) -> Result<Raw<'static>> {
        let resilience = &handle.spec().resilience;
        let stack = tower::ServiceBuilder::new()
            .layer(RetryLayer(resilience.retries()))
            .layer(BreakerLayer(self.breaker.clone()))
            .layer(DeadlineLayer(resilience.total_timeout()))
            .layer(BulkheadLayer(self.bulkhead.clone()))
            .service(Upstream(handle.clone()));
        ready_call(stack, call).await
    }

    /// Sends `call` straight to one of `handle`'s instances.
    #[cfg(not(feature = "resilience"))]
    pub(crate) async fn call(&self, handle: &ServerHandle, call: Call) -> Result<Raw<'static>> {
        handle
            .send_request(call.method, call.params, call.options)
            .await
    }
}

/// Waits until `service` is ready, then calls it.
#[cfg(feature = "resilience")]
pub(crate) async fn ready_call<S>(mut service: S, call: Call) -> Result<Raw<'static>>
where
    S: Service<Call, Response = Raw<'static>, Error = crate::Error, Future = CallFuture>,
{
    std::future::poll_fn(|cx| service.poll_ready(cx)).await?;
    service.call(call).await
}

/// The bottom of the stack: sends the request to one of the server's
/// instances.
#[cfg(feature = "resilience")]
#[derive(Clone)]
pub(crate) struct Upstream(pub(crate) ServerHandle);

#[cfg(feature = "resilience")]
impl Service<Call> for Upstream {
    type Response = Raw<'static>;
    type Error = crate::Error;
    type Future = CallFuture;

    fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<()>> {
        std::task::Poll::Ready(Ok(()))
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

#[cfg(all(test, not(feature = "resilience")))]
mod without {
    use std::sync::Arc;

    use mcp_core::{BoxFuture, HandlerResult, McpServer, RequestContext, ServerId};
    use mcp_protocol::{ErrorObject, Notification, Request};

    use super::Guards;
    use crate::observe::NoObserver;
    use crate::server::ServerSpec;
    use crate::transport::inprocess::InProcessConnector;

    /// A server never asked anything here.
    struct Silent;

    impl McpServer for Silent {
        fn handle_request(
            &self,
            _: Request<'static>,
            _: RequestContext,
        ) -> BoxFuture<'_, HandlerResult> {
            Box::pin(async { Err(ErrorObject::new(-32601, "silent")) })
        }

        fn handle_notification(
            &self,
            _: Notification<'static>,
            _: RequestContext,
        ) -> BoxFuture<'_, ()> {
            Box::pin(async {})
        }
    }

    #[test]
    fn a_build_without_resilience_has_no_layer_whatever_the_spec_says() {
        let server: Arc<dyn McpServer> = Arc::new(Silent);
        let mut spec = ServerSpec::new(
            ServerId::new("s").unwrap_or_else(|_| unreachable!()),
            Arc::new(InProcessConnector::new("s", server)),
        );
        spec.max_concurrency = std::num::NonZeroU32::new(1);
        // The default spec asks for a circuit breaker.
        assert!(spec.resilience.breaker().is_some());
        let observer: Arc<dyn crate::observe::ServerObserver> = Arc::new(NoObserver);
        let guards = Guards::new(&spec, &observer);
        assert_eq!(guards.breaker_state(), None);
        assert_eq!(guards.queued(), 0);
    }
}
