//! Every client session's share of what the servers announce, served by
//! one task for the whole gateway.
//!
//! A session that has said `notifications/initialized` joins the hub: one
//! entry in a lock-free map, so an idle session costs no task, no timer
//! and no channel of its own. The hub's task takes each event once (a
//! burst of list changes is collected once for everybody), and hands each
//! session what is its business. A send that the client takes at once (the
//! usual case: its stream has room) is done in place; one that would wait
//! goes on in a task of its own, and until it is done that session is
//! *busy*: list changes meanwhile are remembered and announced after it,
//! anything else is dropped for that session (as the broadcast drops for a
//! receiver that lags), so one slow client never holds up the others.
//! Once a second the hub also drops the sessions whose client has gone,
//! giving up their resource subscriptions.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::task::Poll;

use crossbeam_skiplist::SkipMap;
use mcp_runtime::{McpRuntime, ServerEvent};
use tokio::sync::broadcast;

use super::forwarder::{BUSY, Delivery, Forwarder, Scope, Wake, list_bit, next_wake};

/// The client sessions of one gateway, and the one task that forwards to
/// them.
pub(crate) struct Hub {
    scope: Scope,
    sessions: SkipMap<u64, Arc<Forwarder>>,
    next: AtomicU64,
    started: AtomicBool,
}

impl Hub {
    pub(crate) fn new(scope: Scope) -> Self {
        Self {
            scope,
            sessions: SkipMap::new(),
            next: AtomicU64::new(0),
            started: AtomicBool::new(false),
        }
    }

    /// Sessions served now.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.sessions.len()
    }

    /// Serves `forwarder` from now on, starting the hub's task (subscribed
    /// to `runtime`'s events) with the first session.
    pub(crate) fn join(self: &Arc<Self>, runtime: &McpRuntime, forwarder: Forwarder) {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.sessions.insert(id, Arc::new(forwarder));
        if !self.started.swap(true, Ordering::AcqRel) {
            tokio::spawn(run(Arc::downgrade(self), runtime.subscribe()));
        }
    }

    /// Drops the sessions whose client has gone.
    fn sweep(&self) {
        for entry in &self.sessions {
            let session = entry.value();
            if session.context.is_closed() && entry.remove() {
                if let Some(key) = session.key {
                    self.scope.release(key);
                }
            }
        }
    }

    /// Hands every session what it is to be told of `delivery`.
    async fn deliver_all(&self, delivery: Delivery<'_>) {
        for entry in &self.sessions {
            self.deliver(entry.value(), delivery).await;
        }
    }

    async fn deliver(&self, session: &Arc<Forwarder>, delivery: Delivery<'_>) {
        let notifications = session.prepare(&self.scope, delivery);
        if notifications.is_empty() {
            return;
        }
        let lists = match delivery {
            Delivery::Lists(changed) => changed.iter().fold(0, |bits, m| bits | list_bit(*m)),
            Delivery::Event(_) => 0,
        };
        // A session still taking an earlier notification: a list change
        // waits for it, anything else is not for it.
        let waiting = session
            .backlog
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |bits| {
                (bits & BUSY != 0).then_some(bits | lists)
            });
        if waiting.is_ok() {
            if lists == 0 {
                tracing::debug!("a slow client session missed a server notification");
            }
            return;
        }
        let taker = Arc::clone(session);
        let mut send: Pin<Box<dyn Future<Output = ()> + Send>> =
            Box::pin(async move { taker.send_all(notifications).await });
        let first = std::future::poll_fn(|cx| Poll::Ready(send.as_mut().poll(cx))).await;
        if first.is_pending() {
            // Only this task sets it, and nothing clears it before the
            // send below is done.
            session.backlog.fetch_or(BUSY, Ordering::AcqRel);
            let session = Arc::clone(session);
            tokio::spawn(async move {
                send.await;
                session.catch_up().await;
            });
        }
    }
}

/// The hub's task: forwards each event to the sessions until the runtime
/// stops or the gateway is gone.
async fn run(hub: Weak<Hub>, mut events: broadcast::Receiver<ServerEvent>) {
    loop {
        let wake = next_wake(&mut events).await;
        let Some(hub) = hub.upgrade() else {
            break;
        };
        hub.sweep();
        match wake {
            Wake::Batch(changed, others) => {
                if !changed.is_empty() {
                    hub.deliver_all(Delivery::Lists(&changed)).await;
                }
                for other in &others {
                    hub.deliver_all(Delivery::Event(other)).await;
                }
            }
            Wake::Idle => {}
            Wake::Closed => break,
        }
    }
}
