//! The total timeout of one try, however much progress it reports.

use std::task::{Context, Poll};
use std::time::Duration;

use mcp_protocol::raw::Raw;
use tower::{Layer, Service};

use super::{Call, CallFuture};
use crate::{Error, ErrorKind, Result};

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
