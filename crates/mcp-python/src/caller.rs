//! The caller of an operation as the servers see it: where its progress
//! goes, and who answers what servers ask of the client (sampling,
//! elicitation, roots) meanwhile.

use std::sync::{Arc, Mutex, PoisonError};

use mcp_core::{BoxFuture, Peer};
use mcp_protocol::raw::Raw;
use mcp_protocol::{ErrorObject, Notification};
use pyo3::prelude::*;
use serde_json::Value;
use tokio::sync::mpsc;

/// Hands a server's request of the client (`sampling/createMessage`,
/// `elicitation/create`, `roots/list`) to Python: method, params as JSON
/// text, and where the answer goes.
pub(crate) type Asker = Arc<dyn Fn(String, String, Reply) + Send + Sync>;

/// Where Python's answer to a server's request goes: `send(True, result)`
/// or `send(False, error)`, both JSON text (`error` an object with `code`,
/// `message` and maybe `data`); only the first answer counts.
#[pyclass(frozen, module = "mcp_manager._native")]
pub(crate) struct Reply {
    pub(crate) sender: Mutex<Option<tokio::sync::oneshot::Sender<mcp_core::HandlerResult>>>,
}

#[pymethods]
impl Reply {
    fn send(&self, ok: bool, value: &str) {
        let answer = if ok {
            Raw::from_json(value).map_err(|e| {
                ErrorObject::new(
                    mcp_protocol::jsonrpc::error_code::INTERNAL_ERROR,
                    format!("the handler's result is not JSON: {e}"),
                )
            })
        } else {
            Err(client_error(value))
        };
        let sender = self
            .sender
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(sender) = sender {
            let _ = sender.send(answer);
        }
    }
}

/// The error object Python answered with (JSON text).
pub(crate) fn client_error(text: &str) -> ErrorObject<'static> {
    let value: Value = serde_json::from_str(text).unwrap_or(Value::Null);
    let code = value
        .get("code")
        .and_then(Value::as_i64)
        .unwrap_or(mcp_protocol::jsonrpc::error_code::INTERNAL_ERROR);
    let message = value
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("the request handler failed")
        .to_owned();
    let mut error = ErrorObject::new(code, message);
    error.data = value
        .get("data")
        .filter(|d| !d.is_null())
        .map(Raw::from_value);
    error
}

/// What a call brings besides its arguments: where its progress goes, and
/// who answers what servers ask of the client meanwhile.
#[derive(Clone, Default)]
pub(crate) struct Caller {
    pub(crate) progress: Option<mpsc::Sender<Notification<'static>>>,
    pub(crate) asks: Option<Asker>,
}

/// One progress notification: progress, total, message.
pub(crate) type Progress = (f64, Option<f64>, Option<String>);

pub(crate) fn progress_of(notification: &Notification<'_>) -> Option<Progress> {
    let params: Value = notification.params.as_ref()?.parse().ok()?;
    Some((
        params.get("progress")?.as_f64()?,
        params.get("total").and_then(Value::as_f64),
        params
            .get("message")
            .and_then(Value::as_str)
            .map(str::to_owned),
    ))
}

/// The way back from the servers to this manager's caller: progress
/// notifications go to its progress callback, and what the servers ask of
/// a client (sampling, elicitation, roots) to its request handler; without
/// one they are refused (`-32601`), as there is nobody to ask.
pub(crate) struct CallerPeer {
    pub(crate) caller: Caller,
    pub(crate) session: u64,
}

impl Peer for CallerPeer {
    fn notify(&self, notification: Notification<'static>) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            if notification.method == "notifications/progress" {
                if let Some(sink) = &self.caller.progress {
                    let _ = sink.send(notification).await;
                }
            }
        })
    }

    fn request(
        &self,
        method: &str,
        params: Option<Raw<'static>>,
    ) -> BoxFuture<'_, mcp_core::HandlerResult> {
        let Some(asks) = self.caller.asks.clone() else {
            let error = ErrorObject::new(
                mcp_protocol::jsonrpc::error_code::METHOD_NOT_FOUND,
                format!("`{method}` has no handler: pass on_request= to the manager to answer it"),
            );
            return Box::pin(std::future::ready(Err(error)));
        };
        let (sender, answer) = tokio::sync::oneshot::channel();
        let reply = Reply {
            sender: Mutex::new(Some(sender)),
        };
        let params = params.map_or_else(|| "{}".to_owned(), |p| p.get().to_owned());
        asks(method.to_owned(), params, reply);
        Box::pin(async move {
            answer.await.unwrap_or_else(|_| {
                Err(ErrorObject::new(
                    mcp_protocol::jsonrpc::error_code::INTERNAL_ERROR,
                    "the request handler gave no answer",
                ))
            })
        })
    }

    fn session(&self) -> Option<u64> {
        Some(self.session)
    }
}

/// The token this package puts in requests whose caller wants progress.
pub(crate) const PROGRESS_TOKEN: i64 = 1;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use mcp_protocol::Notification;
    use mcp_protocol::raw::Raw;
    use serde_json::json;

    use super::progress_of;

    #[test]
    fn progress_is_read_from_a_notification() {
        let notification = Notification {
            method: "notifications/progress".into(),
            params: Some(Raw::from_value(
                &json!({"progressToken": 1, "progress": 2, "total": 5, "message": "two"}),
            )),
        };
        assert_eq!(
            progress_of(&notification),
            Some((2.0, Some(5.0), Some("two".to_owned())))
        );
        let bare = Notification {
            method: "notifications/progress".into(),
            params: Some(Raw::from_value(
                &json!({"progressToken": 1, "progress": 0.5}),
            )),
        };
        assert_eq!(progress_of(&bare), Some((0.5, None, None)));
        let without = Notification {
            method: "notifications/progress".into(),
            params: Some(Raw::from_value(&json!({"progressToken": 1}))),
        };
        assert_eq!(progress_of(&without), None);
    }
}
