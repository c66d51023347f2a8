//! The Tasks extension (`io.modelcontextprotocol/tasks`): what a server
//! or a gateway must know of it without running tasks.
//!
//! A client that declares the extension (under `capabilities.extensions`,
//! for a session or for one request in `_meta`) may get, for a `tools/call`
//! of a tool that supports tasks, a `CreateTaskResult` (`resultType:
//! "task"`, with `taskId`, `status`, `createdAt`, `lastUpdatedAt`, `ttlMs`
//! and `pollIntervalMs` at the top level) instead of the tool's result. It
//! then asks `tasks/get` (the task, with the tool's `result` or the
//! protocol `error` inlined once it is over, and the `inputRequests` it
//! waits on), answers those with `tasks/update` and stops it with
//! `tasks/cancel`; both answer an empty `{resultType: "complete"}`. A
//! request of the extension from a client that did not declare it is
//! `-32021` ([`missing_extension`]). The 2025-11-25 form of tasks (a `task`
//! member in the result, `tasks/result`, `tasks/list`,
//! `notifications/tasks/status`) carries the same `taskId`s, which
//! [`rewrite_task_ids`] finds in either form.

use serde_json::{Map, Value, json};

use super::ClientCapabilities;
use crate::ErrorObject;
use crate::jsonrpc::error_code;
use crate::raw::Raw;

/// The extension's name, under `capabilities.extensions`.
pub const EXTENSION: &str = "io.modelcontextprotocol/tasks";

/// The `_meta` key a 2025-11-25 result of `tasks/result` names its task
/// under.
pub const RELATED_TASK: &str = "io.modelcontextprotocol/related-task";

/// The state of a task.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TaskStatus {
    /// Running.
    Working,
    /// Waiting for answers to its `inputRequests`.
    InputRequired,
    /// Over, with the tool's result (which may be a tool error).
    Completed,
    /// Over, with a protocol error.
    Failed,
    /// Stopped by `tasks/cancel`.
    Cancelled,
}

impl TaskStatus {
    /// The status on the wire.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Working => "working",
            Self::InputRequired => "input_required",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    /// The status with this wire name.
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        [
            Self::Working,
            Self::InputRequired,
            Self::Completed,
            Self::Failed,
            Self::Cancelled,
        ]
        .into_iter()
        .find(|status| status.as_str() == name)
    }

    /// Whether the task is over: nothing changes it any more.
    #[must_use]
    pub const fn is_terminal(self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Cancelled)
    }
}

/// Whether `method` is a request of the extension that addresses a task
/// (`tasks/get`, `tasks/update`, `tasks/cancel`): one that needs the
/// extension declared and names the task in `params.taskId`.
#[must_use]
pub fn addresses_task(method: &str) -> bool {
    matches!(method, "tasks/get" | "tasks/update" | "tasks/cancel")
}

/// Whether `capabilities` declare the extension `name` (under
/// `extensions`).
#[must_use]
pub fn declares_extension(capabilities: &ClientCapabilities, name: &str) -> bool {
    capabilities
        .extra
        .get("extensions")
        .and_then(Value::as_object)
        .is_some_and(|extensions| extensions.contains_key(name))
}

/// `-32021`: the request needs the extension `name` and the client did
/// not declare it; `data.requiredCapabilities` names it the way a client
/// declares it.
#[must_use]
pub fn missing_extension(name: &str) -> ErrorObject<'static> {
    let mut error = ErrorObject::new(
        error_code::MISSING_REQUIRED_CLIENT_CAPABILITY,
        format!("the request needs the client to declare the extension {name}, and it did not"),
    );
    error.data = Some(Raw::from_value(
        &json!({ "requiredCapabilities": { "extensions": { name: {} } } }),
    ));
    error
}

/// Calls `rename` on every task id of a result or notification params of
/// the task methods, in either form: `taskId` at the top level (a
/// `CreateTaskResult`, `tasks/get`, a status notification), in `task` (a
/// 2025-11-25 `CreateTaskResult`), in each of `tasks` (`tasks/list`) and in
/// `_meta["io.modelcontextprotocol/related-task"]`; the id becomes what
/// `rename` returns. Members elsewhere (a tool's own result) are left alone.
/// Returns whether any id was there.
pub fn rewrite_task_ids(value: &mut Value, rename: &mut dyn FnMut(&str) -> String) -> bool {
    let Value::Object(object) = value else {
        return false;
    };
    let mut found = rename_member(object, rename);
    if let Some(Value::Object(task)) = object.get_mut("task") {
        found |= rename_member(task, rename);
    }
    if let Some(Value::Array(tasks)) = object.get_mut("tasks") {
        for task in tasks.iter_mut().filter_map(Value::as_object_mut) {
            found |= rename_member(task, rename);
        }
    }
    if let Some(Value::Object(related)) = object
        .get_mut("_meta")
        .and_then(|meta| meta.get_mut(RELATED_TASK))
    {
        found |= rename_member(related, rename);
    }
    found
}

/// Renames the `taskId` member of `object`, if it is a string.
fn rename_member(object: &mut Map<String, Value>, rename: &mut dyn FnMut(&str) -> String) -> bool {
    match object.get_mut("taskId") {
        Some(Value::String(id)) => {
            *id = rename(id);
            true
        }
        _ => false,
    }
}

/// A time as RFC 3339 in UTC with milliseconds (`2026-07-28T12:00:00.000Z`),
/// from milliseconds since the Unix epoch: the form of `createdAt` and
/// `lastUpdatedAt`.
#[must_use]
pub fn rfc3339(unix_ms: u64) -> String {
    let days = unix_ms / 86_400_000;
    let in_day = unix_ms % 86_400_000;
    let (year, month, day) = civil_from_days(days);
    let (hours, minutes) = (in_day / 3_600_000, in_day / 60_000 % 60);
    let (seconds, millis) = (in_day / 1000 % 60, in_day % 1000);
    format!("{year:04}-{month:02}-{day:02}T{hours:02}:{minutes:02}:{seconds:02}.{millis:03}Z")
}

/// The calendar date of a day counted from 1970-01-01 (the proleptic
/// Gregorian calendar, in 400-year eras of 146 097 days).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let shifted = days + 719_468;
    let era = shifted / 146_097;
    let of_era = shifted % 146_097;
    let year_of_era = (of_era - of_era / 1460 + of_era / 36_524 - of_era / 146_096) / 365;
    let day_of_year = of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_and_know_when_they_are_over() {
        for status in [
            TaskStatus::Working,
            TaskStatus::InputRequired,
            TaskStatus::Completed,
            TaskStatus::Failed,
            TaskStatus::Cancelled,
        ] {
            assert_eq!(TaskStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(TaskStatus::parse("done"), None);
        assert!(TaskStatus::Cancelled.is_terminal());
        assert!(!TaskStatus::InputRequired.is_terminal());
    }

    #[test]
    fn the_extension_is_declared_under_extensions() {
        let declared: ClientCapabilities =
            serde_json::from_str(r#"{"extensions":{"io.modelcontextprotocol/tasks":{}}}"#).unwrap();
        assert!(declares_extension(&declared, EXTENSION));
        let elsewhere: ClientCapabilities =
            serde_json::from_str(r#"{"io.modelcontextprotocol/tasks":{},"tasks":{}}"#).unwrap();
        assert!(!declares_extension(&elsewhere, EXTENSION));
        let error = missing_extension(EXTENSION);
        assert_eq!(error.code, -32021);
        let data: Value = serde_json::from_str(error.data.unwrap().get()).unwrap();
        assert_eq!(
            data["requiredCapabilities"]["extensions"][EXTENSION],
            json!({})
        );
    }

    #[test]
    fn task_ids_are_found_in_every_form_and_nowhere_else() {
        let mut value = json!({
            "taskId": "a",
            "task": { "taskId": "b" },
            "tasks": [{ "taskId": "c" }, { "other": 1 }],
            "_meta": { RELATED_TASK: { "taskId": "d" } },
            "result": { "taskId": "kept" },
        });
        let found = rewrite_task_ids(&mut value, &mut |id| format!("s/{id}"));
        assert!(found);
        assert_eq!(value["taskId"], "s/a");
        assert_eq!(value["task"]["taskId"], "s/b");
        assert_eq!(value["tasks"][0]["taskId"], "s/c");
        assert_eq!(value["_meta"][RELATED_TASK]["taskId"], "s/d");
        assert_eq!(value["result"]["taskId"], "kept");
        let mut none = json!({ "content": [] });
        assert!(!rewrite_task_ids(&mut none, &mut |id| id.to_owned()));
    }

    #[test]
    fn times_are_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(rfc3339(1_785_240_061_005), "2026-07-28T12:01:01.005Z");
    }
}
