//! The bulkhead: at most `maxConcurrency` requests in flight, a bounded
//! queue behind them, and "busy" at once beyond it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use mcp_core::ServerId;
use mcp_protocol::raw::Raw;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower::{Layer, Service};

use super::{Call, CallFuture, ready_call};
use crate::observe::ServerObserver;
use crate::{Error, ErrorKind, Result};

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
