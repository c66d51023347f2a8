//! Retries of requests that are safe to repeat and got no answer.

use std::task::{Context, Poll};

use mcp_core::config::RetryConfig;
use mcp_protocol::raw::Raw;
use tower::{Layer, Service};

use super::{Call, CallFuture, ready_call, unanswered};
use crate::{Error, Result};

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
