//! Tasks (the 2026-07-28 Tasks extension and the 2025-11-25 form of
//! tasks): a task id a backend gives out is shown to clients as
//! `SERVER/ID`, so ids of different backends never collide and a task
//! request (`tasks/get`, `tasks/update`, `tasks/cancel`, `tasks/result`)
//! goes back to the backend, and the instance of it, that owns the task.
//! Ids are rewritten wherever they appear: in the result that creates a
//! task, in the answers to task requests and in status notifications. A
//! task created in a client session belongs to that session, and one
//! created with an access token to its subject (a stateless request's
//! too): another caller asking for it is told the task does not exist, and
//! its status notifications go to that session alone. With access tokens,
//! a task whose creator is not known here (forgotten, or made before)
//! exists for nobody.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use mcp_core::{HandlerResult, RequestContext, ServerId};
use mcp_protocol::mcp::tasks::{self, EXTENSION};
use mcp_protocol::raw::{Raw, RawObject};
use mcp_protocol::{ErrorObject, Notification, Request};
use serde_json::{Value, json};

use crate::Gateway;
use crate::held::lock;
use crate::route::{declared_capabilities, invalid_params, join_all, params_are_stateless};

/// Joins a server and the id of one of its tasks.
const SEPARATOR: char = '/';

/// How many task owners are remembered; the oldest are forgotten first
/// (their tasks can still be asked for from any session).
const MAX_OWNED: usize = 16_384;

/// Who created a task: the client session (by key; `None` for a
/// stateless request, which belongs to no session) and the subject of its
/// access token (`None` without access tokens).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Owner {
    session: Option<u64>,
    subject: Option<String>,
}

/// The owner of each task the gateway saw created.
#[derive(Debug, Default)]
pub(crate) struct TaskOwners {
    owners: HashMap<String, Owner>,
    order: VecDeque<String>,
}

impl TaskOwners {
    fn record(&mut self, exposed: String, session: Option<u64>, subject: Option<String>) {
        let owner = Owner { session, subject };
        if self.owners.insert(exposed.clone(), owner).is_none() {
            self.order.push_back(exposed);
        }
        while self.order.len() > MAX_OWNED {
            if let Some(oldest) = self.order.pop_front() {
                self.owners.remove(&oldest);
            }
        }
    }

    /// The session a task was created in: `Some(None)` for no session,
    /// `None` when the task is not known here.
    pub(crate) fn owner(&self, exposed: &str) -> Option<Option<u64>> {
        self.owners.get(exposed).map(|owner| owner.session)
    }

    /// Whether the caller of `context` may see the task `exposed`: the
    /// session that created it (if a session did), the subject that
    /// created it (if a token did). A task not known here is visible only
    /// to callers without a token: with access tokens, a task nobody is
    /// known to own is nobody's to see.
    fn visible_to(&self, exposed: &str, context: &RequestContext) -> bool {
        let subject = context.principal().map(|p| p.subject.as_str());
        match self.owners.get(exposed) {
            None => subject.is_none(),
            Some(owner) => {
                owner.session.is_none_or(|s| context.session() == Some(s))
                    && owner.subject.as_deref().is_none_or(|s| subject == Some(s))
            }
        }
    }
}

/// The owners of tasks, shared with the notification forwarders.
pub(crate) type SharedTaskOwners = Arc<Mutex<TaskOwners>>;

/// A task id of `server` as clients see it.
fn expose(server: &ServerId, id: &str) -> String {
    format!("{server}{SEPARATOR}{id}")
}

/// The server and its own task id, for a task id as clients see it.
fn split(exposed: &str) -> Option<(&str, &str)> {
    exposed.split_once(SEPARATOR)
}

/// `value` (a result or notification params) with the task ids of
/// `server` shown as clients see them; the ids rewritten, or none when
/// there were none.
fn expose_ids(server: &ServerId, value: &mut Value) -> Vec<String> {
    let mut exposed = Vec::new();
    tasks::rewrite_task_ids(value, &mut |id| {
        let id = expose(server, id);
        exposed.push(id.clone());
        id
    });
    exposed
}

/// A status notification of `server` as a client sees it, and the task it
/// is about; `None` when it names no task.
pub(crate) fn exposed_notification(
    server: &ServerId,
    notification: &Notification<'static>,
) -> Option<(Notification<'static>, String)> {
    let params = notification.params.as_ref()?;
    let mut value: Value = serde_json::from_str(params.get()).ok()?;
    let exposed = expose_ids(server, &mut value).pop()?;
    let notification = Notification {
        method: notification.method.clone(),
        params: Some(Raw::from_value(&value)),
    };
    Some((notification, exposed))
}

/// `-32602` for a task the gateway cannot route (or will not show this
/// client).
fn unknown_task(exposed: &str) -> ErrorObject<'static> {
    invalid_params(format!("Unknown task: {exposed}"))
}

impl Gateway {
    /// A backend's result with its task ids as clients see them; with
    /// `created`, the tasks it names were created by this request and are
    /// recorded as the requesting session's. A result without `taskId` is
    /// passed on untouched, unparsed.
    pub(crate) fn with_task_ids(
        &self,
        server: &ServerId,
        result: Raw<'static>,
        context: &RequestContext,
        created: bool,
    ) -> Raw<'static> {
        if !result.get().contains("\"taskId\"") {
            return result;
        }
        let Ok(mut value) = serde_json::from_str::<Value>(result.get()) else {
            return result;
        };
        let exposed = expose_ids(server, &mut value);
        if exposed.is_empty() {
            return result;
        }
        if !created {
            return Raw::from_value(&value);
        }
        let session = context.session();
        let subject = context.principal().map(|p| p.subject.clone());
        let mut owners = lock(&self.scope.tasks);
        for id in exposed {
            if owners.owner(&id).is_none() {
                owners.record(id, session, subject.clone());
            }
        }
        drop(owners);
        Raw::from_value(&value)
    }

    /// `tasks/get`, `tasks/update`, `tasks/cancel` and `tasks/result`:
    /// sent to the backend the task id names, with the backend's own id,
    /// and answered with the ids as clients see them. A stateless request
    /// must declare the Tasks extension (`-32021`); a task id that names no
    /// backend, or a task of another session, is `-32602`.
    pub(crate) async fn task_request(
        &self,
        request: Request<'static>,
        context: &RequestContext,
    ) -> HandlerResult {
        let params = request
            .params
            .unwrap_or_else(|| Raw::from_value(&json!({})));
        if params_are_stateless(&params)
            && !tasks::declares_extension(&declared_capabilities(&params), EXTENSION)
        {
            return Err(tasks::missing_extension(EXTENSION));
        }
        let mut object = RawObject::from_cow(params)
            .map_err(|_| invalid_params("`params` must be an object"))?;
        let exposed = object
            .get("taskId")
            .and_then(|raw| Raw::borrowed(raw).into_str())
            .map(std::borrow::Cow::into_owned)
            .ok_or_else(|| invalid_params("`taskId` must be a string"))?;
        if !lock(&self.scope.tasks).visible_to(&exposed, context) {
            return Err(unknown_task(&exposed));
        }
        let (server, id) = split(&exposed).ok_or_else(|| unknown_task(&exposed))?;
        let backend = self
            .backends()
            .iter()
            .find(|b| b.handle.id().as_str() == server)
            .cloned()
            .ok_or_else(|| unknown_task(&exposed))?;
        object.insert("taskId", Raw::from_value(&id));
        let result = self
            .forward(
                &backend,
                &request.method,
                Raw::owned(object.to_raw()),
                context,
            )
            .await?;
        Ok(self.with_task_ids(backend.handle.id(), result, context, false))
    }

    /// `tasks/list` (2025-11-25): the tasks of every backend that lists
    /// tasks, with ids as clients see them, less those of other sessions.
    /// A backend's error leaves its tasks out.
    pub(crate) async fn list_tasks(
        &self,
        request: Request<'static>,
        context: &RequestContext,
    ) -> HandlerResult {
        let backends = self.backends();
        let listing: Vec<_> = backends
            .iter()
            .filter(|b| {
                b.handle
                    .session()
                    .is_some_and(|s| s.capabilities.extra.contains_key("tasks"))
            })
            .collect();
        let results = join_all(listing.iter().map(|backend| {
            self.forward_once(
                backend,
                &request.method,
                request
                    .params
                    .clone()
                    .unwrap_or_else(|| Raw::from_value(&json!({}))),
                context,
            )
        }))
        .await;
        let mut all = Vec::new();
        for (backend, result) in listing.iter().zip(results) {
            let result = match result {
                Ok(result) => self.with_task_ids(backend.handle.id(), result, context, false),
                Err(error) => {
                    tracing::debug!(server = %backend.handle.id(), "`tasks/list` failed: {}", error.message);
                    continue;
                }
            };
            let Ok(Value::Object(mut listed)) = serde_json::from_str::<Value>(result.get()) else {
                continue;
            };
            let Some(Value::Array(tasks)) = listed.remove("tasks") else {
                continue;
            };
            let owners = lock(&self.scope.tasks);
            all.extend(tasks.into_iter().filter(|task| {
                let id = task
                    .get("taskId")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                owners.visible_to(id, context)
            }));
        }
        Ok(Raw::from_value(&json!({ "tasks": all })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_name_their_server_and_split_back() {
        let server = ServerId::new("everything").unwrap();
        let exposed = expose(&server, "task-1/x");
        assert_eq!(exposed, "everything/task-1/x");
        assert_eq!(split(&exposed), Some(("everything", "task-1/x")));
        assert_eq!(split("no-server"), None);
    }

    #[test]
    fn owners_are_bounded() {
        let mut owners = TaskOwners::default();
        for n in 0..=MAX_OWNED {
            owners.record(format!("s/{n}"), Some(1), None);
        }
        assert_eq!(owners.owner("s/0"), None);
        assert_eq!(owners.owner(&format!("s/{MAX_OWNED}")), Some(Some(1)));
        owners.record("s/free".to_owned(), None, None);
        assert_eq!(owners.owner("s/free"), Some(None));
    }

    #[test]
    fn notifications_show_the_exposed_id() {
        let server = ServerId::new("a").unwrap();
        let notification = Notification {
            method: "notifications/tasks/status".into(),
            params: Some(Raw::from_value(
                &json!({ "taskId": "7", "status": "working" }),
            )),
        };
        let (shown, id) = exposed_notification(&server, &notification).unwrap();
        assert_eq!(id, "a/7");
        let params: Value = serde_json::from_str(shown.params.unwrap().get()).unwrap();
        assert_eq!(params, json!({ "taskId": "a/7", "status": "working" }));
        let bare = Notification {
            method: "notifications/tasks/status".into(),
            params: None,
        };
        assert!(exposed_notification(&server, &bare).is_none());
    }
}
