//! Which client sessions subscribed to which resources of which backends,
//! counted so that a backend hears one subscribe and one unsubscribe per
//! resource, however many sessions hold it.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use mcp_core::ServerId;

/// The sessions' subscriptions, shared by the gateway and its forwarders.
pub(crate) type SharedSubscriptions = Arc<Mutex<Subscriptions>>;

/// Which client sessions subscribed to which resources of which backends,
/// and how many sessions hold each subscription upstream: a backend is
/// asked to subscribe when the first session does and to unsubscribe when
/// the last one gives it up.
#[derive(Default)]
pub(crate) struct Subscriptions {
    by_session: HashMap<u64, HashSet<(ServerId, String)>>,
    holders: HashMap<(ServerId, String), usize>,
}

impl Subscriptions {
    /// Records that `session` subscribes; true when it is the first
    /// session to, so the backend must be asked.
    pub(crate) fn subscribe(&mut self, session: u64, backend: &ServerId, uri: &str) -> bool {
        let key = (backend.clone(), uri.to_owned());
        if !self
            .by_session
            .entry(session)
            .or_default()
            .insert(key.clone())
        {
            return false;
        }
        let holders = self.holders.entry(key).or_insert(0);
        *holders += 1;
        *holders == 1
    }

    /// Records that `session` unsubscribes; true when it was the last
    /// session to hold it, so the backend must be told.
    pub(crate) fn unsubscribe(&mut self, session: u64, backend: &ServerId, uri: &str) -> bool {
        let key = (backend.clone(), uri.to_owned());
        let held = self
            .by_session
            .get_mut(&session)
            .is_some_and(|subscribed| subscribed.remove(&key));
        held && self.release(key)
    }

    pub(crate) fn release(&mut self, key: (ServerId, String)) -> bool {
        match self.holders.get_mut(&key) {
            Some(holders) if *holders > 1 => {
                *holders -= 1;
                false
            }
            Some(_) => {
                self.holders.remove(&key);
                true
            }
            None => false,
        }
    }

    pub(crate) fn holds(&self, session: u64, backend: &ServerId, uri: &str) -> bool {
        self.by_session
            .get(&session)
            .is_some_and(|subscribed| subscribed.contains(&(backend.clone(), uri.to_owned())))
    }

    /// Forgets every subscription to `backend`, a server that has left.
    pub(crate) fn forget_server(&mut self, backend: &ServerId) {
        self.holders.retain(|(server, _), _| server != backend);
        for subscribed in self.by_session.values_mut() {
            subscribed.retain(|(server, _)| server != backend);
        }
    }

    /// Forgets `session`; the subscriptions nobody holds any more.
    pub(crate) fn end_session(&mut self, session: u64) -> Vec<(ServerId, String)> {
        let subscribed = self.by_session.remove(&session).unwrap_or_default();
        subscribed
            .into_iter()
            .filter(|key| self.release(key.clone()))
            .collect()
    }
}
