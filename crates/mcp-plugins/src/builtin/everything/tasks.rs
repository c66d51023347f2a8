//! Tasks (the `io.modelcontextprotocol/tasks` extension): a `tools/call`
//! of a task-supporting tool from a 2026-07-28 request that declares the
//! extension starts the tool's work in the background and answers at once
//! with the task; `tasks/get`, `tasks/update` and `tasks/cancel` follow it.
//!
//! The table of tasks sits behind one `std::sync::Mutex`, locked only to
//! read or change an entry, never across an `.await`. A task's work runs on
//! a task of its own; it is aborted when the task is cancelled or expires.
//! Tasks are kept for [`TTL_MS`] from their creation, and at most
//! [`MAX_TASKS`] at once: past that, creating one is `-32603` until some
//! expire.

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mcp_protocol::ErrorObject;
use mcp_protocol::jsonrpc::error_code;
use mcp_protocol::mcp::tasks::{self, TaskStatus};
use serde_json::{Map, Value, json};
use tokio::sync::oneshot;
use tokio::task::AbortHandle;

use super::call::{Call, Mode, Reply, invalid_params};

/// How long a task is kept from its creation, in milliseconds.
pub(crate) const TTL_MS: u64 = 600_000;

/// How often a client should poll a task, in milliseconds.
const POLL_INTERVAL_MS: u64 = 250;

/// The most tasks kept at once.
pub(crate) const MAX_TASKS: usize = 1024;

/// What a task's work ends with.
pub(crate) enum Outcome {
    /// The tool's result (a tool error is a result with `isError`).
    Result(Value),
    /// A protocol error, as a JSON-RPC error object.
    Error(Value),
}

/// A task's work: it may ask the client through its [`Asker`].
pub(crate) type Work =
    Box<dyn FnOnce(Asker) -> Pin<Box<dyn Future<Output = Outcome> + Send>> + Send>;

/// One task.
struct Entry {
    status: TaskStatus,
    created: u64,
    updated: u64,
    outcome: Option<Outcome>,
    /// The input requests not answered yet, by key.
    pending: Map<String, Value>,
    /// The answers so far to the current round of input requests.
    answers: Map<String, Value>,
    /// Where the answers go once every input request is answered.
    waiter: Option<oneshot::Sender<Map<String, Value>>>,
    /// The running work.
    work: Option<AbortHandle>,
}

impl Entry {
    /// Moves the task to `status`, as of `now`.
    fn set(&mut self, status: TaskStatus, now: u64) {
        self.status = status;
        self.updated = now;
    }

    /// Stops the work, if it runs.
    fn stop(&mut self) {
        if let Some(work) = self.work.take() {
            work.abort();
        }
        self.waiter = None;
        self.pending.clear();
    }
}

/// The server's tasks.
pub(crate) struct Tasks {
    entries: Mutex<HashMap<String, Entry>>,
    /// Keys that make task ids unguessable.
    keys: RandomState,
    /// Counts the tasks ever created.
    created: AtomicU64,
}

impl Tasks {
    /// No tasks yet.
    pub(crate) fn new() -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            keys: RandomState::new(),
            created: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A fresh task id: a count and a keyed hash of it.
    fn next_id(&self) -> String {
        let count = self.created.fetch_add(1, Ordering::Relaxed);
        let mut hasher = self.keys.build_hasher();
        hasher.write_u64(count);
        format!("task-{count}-{:016x}", hasher.finish())
    }

    /// Starts `work` as a new task; its `CreateTaskResult`. The task is in
    /// the table before this returns, so `tasks/get` finds it at once.
    pub(crate) fn start(self: &Arc<Self>, work: Work) -> Result<Reply, ErrorObject<'static>> {
        let now = now_ms();
        let id = self.next_id();
        {
            let mut entries = self.lock();
            expire(&mut entries, now);
            if entries.len() >= MAX_TASKS {
                return Err(ErrorObject::new(
                    error_code::INTERNAL_ERROR,
                    format!(
                        "too many tasks: {MAX_TASKS} are kept at once; try again once some have expired"
                    ),
                ));
            }
            entries.insert(
                id.clone(),
                Entry {
                    status: TaskStatus::Working,
                    created: now,
                    updated: now,
                    outcome: None,
                    pending: Map::new(),
                    answers: Map::new(),
                    waiter: None,
                    work: None,
                },
            );
        }
        let asker = Asker {
            tasks: Arc::clone(self),
            id: id.clone(),
        };
        let tasks = Arc::clone(self);
        let finished_id = id.clone();
        let handle = tokio::spawn(async move {
            let outcome = work(asker).await;
            tasks.finish(&finished_id, outcome);
        });
        let mut entries = self.lock();
        let entry = entries.get_mut(&id).ok_or_else(|| unknown(&id))?;
        // Work that is over already (an instant one) has nothing to stop.
        if !entry.status.is_terminal() {
            entry.work = Some(handle.abort_handle());
        }
        Ok(Reply::Task(Value::Object(task_fields(&id, entry))))
    }

    /// Records the end of a task's work (unless it was cancelled first).
    fn finish(&self, id: &str, outcome: Outcome) {
        let mut entries = self.lock();
        if let Some(entry) = entries.get_mut(id) {
            if !entry.status.is_terminal() {
                let status = match outcome {
                    Outcome::Result(_) => TaskStatus::Completed,
                    Outcome::Error(_) => TaskStatus::Failed,
                };
                entry.outcome = Some(outcome);
                entry.set(status, now_ms());
                entry.work = None;
            }
        }
    }

    /// `tasks/get`: the task, with what it ended with or waits for.
    pub(crate) fn get(&self, call: &Call) -> Result<Reply, ErrorObject<'static>> {
        let id = task_id(call)?;
        let mut entries = self.lock();
        expire(&mut entries, now_ms());
        let entry = entries.get(&id).ok_or_else(|| unknown(&id))?;
        let mut detailed = task_fields(&id, entry);
        match &entry.outcome {
            Some(Outcome::Result(result)) => {
                detailed.insert("result".to_owned(), result.clone());
            }
            Some(Outcome::Error(error)) => {
                detailed.insert("error".to_owned(), error.clone());
            }
            None => {}
        }
        if entry.status == TaskStatus::InputRequired {
            detailed.insert(
                "inputRequests".to_owned(),
                Value::Object(entry.pending.clone()),
            );
        }
        Ok(Reply::Complete(Value::Object(detailed)))
    }

    /// `tasks/update`: answers to some of the task's input requests. Keys
    /// it did not ask are ignored; once every request is answered, the work
    /// goes on with the answers.
    pub(crate) fn update(&self, call: &Call) -> Result<Reply, ErrorObject<'static>> {
        let id = task_id(call)?;
        let responses = match call.param("inputResponses") {
            Some(Value::Object(responses)) => responses,
            _ => return Err(invalid_params("`inputResponses` must be an object")),
        };
        let mut entries = self.lock();
        let entry = entries.get_mut(&id).ok_or_else(|| unknown(&id))?;
        for (key, answer) in responses {
            if entry.pending.remove(&key).is_some() {
                entry.answers.insert(key, answer);
            }
        }
        if entry.status == TaskStatus::InputRequired && entry.pending.is_empty() {
            entry.set(TaskStatus::Working, now_ms());
            let answers = std::mem::take(&mut entry.answers);
            if let Some(waiter) = entry.waiter.take() {
                // The work may be gone (aborted): then nobody waits.
                let _ = waiter.send(answers);
            }
        }
        Ok(Reply::Complete(json!({})))
    }

    /// `tasks/cancel`: stops the task unless it is over already; the same
    /// empty answer either way.
    pub(crate) fn cancel(&self, call: &Call) -> Result<Reply, ErrorObject<'static>> {
        let id = task_id(call)?;
        let mut entries = self.lock();
        let entry = entries.get_mut(&id).ok_or_else(|| unknown(&id))?;
        if !entry.status.is_terminal() {
            entry.stop();
            entry.set(TaskStatus::Cancelled, now_ms());
        }
        Ok(Reply::Complete(json!({})))
    }

    /// How many tasks are kept.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }
}

/// The way a task's work asks the client for input.
pub(crate) struct Asker {
    tasks: Arc<Tasks>,
    id: String,
}

impl Asker {
    /// Puts `requests` (input requests by key) to the client: the task is
    /// `input_required` until `tasks/update` has answered every one. The
    /// answers by key; none when the task was stopped meanwhile.
    pub(crate) async fn ask(&self, requests: Map<String, Value>) -> Option<Map<String, Value>> {
        let (sender, receiver) = oneshot::channel();
        {
            let mut entries = self.tasks.lock();
            let entry = entries.get_mut(&self.id)?;
            if entry.status.is_terminal() {
                return None;
            }
            entry.pending = requests;
            entry.answers = Map::new();
            entry.waiter = Some(sender);
            entry.set(TaskStatus::InputRequired, now_ms());
        }
        receiver.await.ok()
    }
}

/// Whether a request may get a task instead of a result: a 2026-07-28 one
/// that declares the extension.
pub(crate) fn wanted(call: &Call) -> bool {
    match &call.mode {
        Mode::Stateless { capabilities, .. } => {
            tasks::declares_extension(capabilities, tasks::EXTENSION)
        }
        Mode::Stateful => false,
    }
}

/// Checks that a request of the extension may be made: `-32021` when it
/// does not declare the extension, `-32601` in a session.
pub(crate) fn check_declared(call: &Call) -> Result<(), ErrorObject<'static>> {
    match &call.mode {
        Mode::Stateless { .. } if wanted(call) => Ok(()),
        Mode::Stateless { .. } => Err(tasks::missing_extension(tasks::EXTENSION)),
        Mode::Stateful => Err(super::call::method_not_found(&call.method)),
    }
}

/// The members every form of a task has.
fn task_fields(id: &str, entry: &Entry) -> Map<String, Value> {
    let mut fields = Map::new();
    fields.insert("taskId".to_owned(), json!(id));
    fields.insert("status".to_owned(), json!(entry.status.as_str()));
    fields.insert("createdAt".to_owned(), json!(tasks::rfc3339(entry.created)));
    fields.insert(
        "lastUpdatedAt".to_owned(),
        json!(tasks::rfc3339(entry.updated)),
    );
    fields.insert("ttlMs".to_owned(), json!(TTL_MS));
    fields.insert("pollIntervalMs".to_owned(), json!(POLL_INTERVAL_MS));
    fields
}

/// The `taskId` of a request.
fn task_id(call: &Call) -> Result<String, ErrorObject<'static>> {
    match call.param("taskId") {
        Some(Value::String(id)) => Ok(id),
        _ => Err(invalid_params("`taskId` must be a string")),
    }
}

/// `-32602` for a task this server does not know (or no longer keeps).
fn unknown(id: &str) -> ErrorObject<'static> {
    invalid_params(format!("Unknown task: {id}"))
}

/// Drops the tasks kept longer than [`TTL_MS`], stopping any still running.
fn expire(entries: &mut HashMap<String, Entry>, now: u64) {
    entries.retain(|_, entry| {
        let keep = now.saturating_sub(entry.created) < TTL_MS;
        if !keep {
            entry.stop();
        }
        keep
    });
}

/// Milliseconds since the Unix epoch.
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
        })
}

/// Work that waits `delay`, then ends with `outcome`.
pub(crate) fn after(delay: Duration, outcome: Outcome) -> Work {
    Box::new(move |_asker| {
        Box::pin(async move {
            tokio::time::sleep(delay).await;
            outcome
        })
    })
}

/// Work that puts `requests` to the client, then ends with `finish` of
/// the answers (cancelled, if the task is stopped while it waits).
pub(crate) fn asking(
    requests: Map<String, Value>,
    finish: impl FnOnce(&Map<String, Value>) -> Outcome + Send + 'static,
) -> Work {
    Box::new(move |asker| {
        Box::pin(async move {
            match asker.ask(requests).await {
                Some(answers) => finish(&answers),
                None => Outcome::Error(json!({
                    "code": error_code::INTERNAL_ERROR,
                    "message": "the task stopped while it waited for input",
                })),
            }
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_table_is_bounded() {
        let tasks = Arc::new(Tasks::new());
        let long = || after(Duration::from_secs(3600), Outcome::Result(json!({})));
        for _ in 0..MAX_TASKS {
            assert!(matches!(tasks.start(long()), Ok(Reply::Task(_))));
        }
        assert_eq!(tasks.len(), MAX_TASKS);
        let refused = tasks.start(long()).unwrap_err();
        assert_eq!(refused.code, error_code::INTERNAL_ERROR);
        assert!(refused.message.contains("too many tasks"));
    }

    #[test]
    fn expired_tasks_are_dropped() {
        let mut entries = HashMap::new();
        let entry = |created| Entry {
            status: TaskStatus::Working,
            created,
            updated: created,
            outcome: None,
            pending: Map::new(),
            answers: Map::new(),
            waiter: None,
            work: None,
        };
        entries.insert("old".to_owned(), entry(1_000));
        entries.insert("new".to_owned(), entry(1_000 + TTL_MS));
        expire(&mut entries, 1_000 + TTL_MS);
        assert!(entries.contains_key("new") && !entries.contains_key("old"));
    }
}
