//! The gateway's few mutexes guard state that no request waits on for
//! its answer: the sessions' resource subscriptions (`notify`) and the
//! backend calls parked for a stateless client's answers (`bridge`). Each
//! is held for a moment and never across an `.await`.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Locks `mutex`, taking the data of a poisoned one as it is: the critical
/// sections are short and leave their data whole.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
