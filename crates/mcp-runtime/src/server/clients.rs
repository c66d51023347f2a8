//! The instances of a per-client server (`"sessions": "per-client"`): one
//! for each client session, started at the session's first request and
//! stopped once the session has ended, so that what the server asks of a
//! client (sampling, elicitation, roots) and what it announces can only
//! reach that client, whatever its transport says.
//!
//! The map of sessions to instances sits behind a `std` mutex, held only to
//! look one up, add one or take the ended ones out, never across an
//! `.await`. What an instance announces on its own (log messages, list
//! changes, resource updates) goes to its client alone.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use mcp_core::RequestContext;
use tokio::sync::broadcast;

use crate::error::{Error, ErrorKind, Result};
use crate::lock;
use crate::server::instance::{Instance, futures_join, spawn_instance, stop_instance};
use crate::server::{ServerEvent, ServerSpec, Shared};

/// How many client sessions may have an instance of one server at once.
pub(crate) const MAX_CLIENT_INSTANCES: usize = 256;
/// How often ended sessions' instances are looked for.
const REAP_EVERY: Duration = Duration::from_millis(500);
/// What an instance may announce before its client takes it.
const EVENT_CAPACITY: usize = 64;

/// One client session's instance, and the session it serves.
struct ClientInstance {
    instance: Arc<Instance>,
    owner: RequestContext,
}

/// The instances of a per-client server, by client session.
#[derive(Default)]
pub(crate) struct ClientInstances {
    by_session: Mutex<HashMap<u64, ClientInstance>>,
    /// Set when the server stops: no instance is started after that.
    closed: AtomicBool,
}

impl ClientInstances {
    /// The instance of the client session `key` (whose request `requester`
    /// answers for), started now if it has none or its own has died; it
    /// asks and tells the session itself
    /// ([`RequestContext::session_context`]), which outlives the request.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Busy`] when [`MAX_CLIENT_INSTANCES`] sessions have one
    /// already; [`ErrorKind::Unavailable`] once the server is stopping.
    pub(crate) fn instance(
        &self,
        key: u64,
        requester: &RequestContext,
        spec: &ServerSpec,
        shared: &Arc<Shared>,
    ) -> Result<Arc<Instance>> {
        let mut sessions = lock(&self.by_session);
        if let Some(found) = sessions.get(&key)
            && found.instance.is_live()
        {
            return Ok(found.instance.clone());
        }
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::new(
                ErrorKind::Unavailable,
                format!("server `{}` is stopping", spec.id),
            ));
        }
        let dead = sessions.remove(&key);
        if sessions.len() >= MAX_CLIENT_INSTANCES {
            return Err(Error::new(
                ErrorKind::Busy,
                format!(
                    "server `{}` runs an instance for each client session, and {MAX_CLIENT_INSTANCES} sessions have one already",
                    spec.id
                ),
            ));
        }
        let owner = requester.session_context();
        let (events, announced) = broadcast::channel(EVENT_CAPACITY);
        // Its first start is awaited by the requests queued on it.
        let (instance, _started) = spawn_instance(spec, shared, &events, Some(owner.clone()));
        tokio::spawn(tell_owner(announced, owner.clone()));
        sessions.insert(
            key,
            ClientInstance {
                instance: instance.clone(),
                owner: owner.clone(),
            },
        );
        drop(sessions);
        if let Some(dead) = dead {
            tokio::spawn(stop_instance(dead.instance, Duration::ZERO));
        }
        tracing::debug!(server = %spec.id, "started an instance for client session {key}");
        Ok(instance)
    }

    /// The instance of client session `key`, if it has one.
    pub(crate) fn of(&self, key: u64) -> Option<Arc<Instance>> {
        lock(&self.by_session).get(&key).map(|c| c.instance.clone())
    }

    /// How many client sessions have an instance.
    pub(crate) fn len(&self) -> usize {
        lock(&self.by_session).len()
    }

    /// Takes out the instances whose session has ended (or that died),
    /// or every one when `all`.
    fn take(&self, all: bool) -> Vec<Arc<Instance>> {
        let mut sessions = lock(&self.by_session);
        let ended: Vec<u64> = sessions
            .iter()
            .filter(|(_, c)| all || c.owner.is_closed() || !c.instance.is_live())
            .map(|(key, _)| *key)
            .collect();
        ended
            .into_iter()
            .filter_map(|key| sessions.remove(&key))
            .map(|c| c.instance)
            .collect()
    }

    /// Stops every instance, letting requests in flight finish for up to
    /// `drain`; none is started after.
    pub(crate) async fn stop_all(&self, drain: Duration) {
        self.closed.store(true, Ordering::Release);
        self.restart(drain).await;
    }

    /// Stops every instance and lets the next request of each session
    /// start a fresh one (a restart of the server).
    pub(crate) async fn restart(&self, drain: Duration) {
        stop_each(self.take(true), drain).await;
    }
}

/// Stops the instances of ended sessions every [`REAP_EVERY`], for as
/// long as the server's instances exist.
pub(crate) fn reap(clients: Weak<ClientInstances>, drain: Duration, server: String) {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(REAP_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            let Some(clients) = clients.upgrade() else {
                return;
            };
            let ended = clients.take(false);
            drop(clients);
            if !ended.is_empty() {
                tracing::debug!(
                    server,
                    "stopping {} instance(s) of ended client sessions",
                    ended.len()
                );
                stop_each(ended, drain).await;
            }
        }
    });
}

/// Stops `instances` at once, each given up to `drain` for its requests.
async fn stop_each(instances: Vec<Arc<Instance>>, drain: Duration) {
    futures_join(instances.into_iter().map(move |i| stop_instance(i, drain))).await;
}

/// Passes what an instance announces to its client, until the instance
/// or the client is gone.
async fn tell_owner(mut announced: broadcast::Receiver<ServerEvent>, owner: RequestContext) {
    loop {
        match announced.recv().await {
            Ok(event) => {
                if owner.is_closed() {
                    return;
                }
                owner.notify(event.notification).await;
            }
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                tracing::debug!(
                    "a client's instance announced {missed} notification(s) faster than the client took them"
                );
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}
