//! The layers one by one and stacked, over a scripted fake server.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::VecDeque;
use std::sync::Mutex;

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use mcp_core::ServerId;
use mcp_core::config::{BreakerConfig, RetryConfig};
use mcp_protocol::raw::Raw;
use tokio::time::Instant;
use tower::{Layer, Service};

use super::breaker::{Breaker, BreakerLayer};
use super::bulkhead::{Bulkhead, BulkheadLayer};
use super::deadline::DeadlineLayer;
use super::retry::RetryLayer;
use super::{Call, CallFuture, ready_call, repeatable_method};
use crate::lock;
use crate::observe::BreakerState;
use crate::observe::NoObserver;
use crate::server::CallOptions;
use crate::{Error, ErrorKind, Result};

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
