//! The one error type of the runtime.

use std::time::Duration;

use mcp_protocol::ErrorObject;
use mcp_protocol::jsonrpc::error_code;
use mcp_protocol::raw::Raw;

/// What went wrong with a runtime operation.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The server answered with a JSON-RPC error; see [`Error::rpc_error`].
    Rpc,
    /// No answer within the request's timeout.
    Timeout,
    /// The connection to the server ended while the request was in flight.
    Disconnected,
    /// The server is not running: starting, restarting, failed or stopped.
    Unavailable,
    /// No server with that id is deployed.
    NotFound,
    /// A server with that id is already deployed.
    AlreadyExists,
    /// The server could not be started.
    Start,
    /// The server broke the protocol (bad handshake, unknown version).
    Protocol,
    /// The request was cancelled by its caller.
    Cancelled,
    /// Too many requests are waiting for this server (its bulkhead is
    /// full).
    Busy,
    /// The server's circuit breaker is open: it failed too often lately.
    CircuitOpen,
    /// The runtime is shutting down or has stopped.
    Shutdown,
}

impl ErrorKind {
    /// The kind's name in snake case (`timeout`, `unavailable`, ...), as
    /// the `kind` in the data of [`Error::to_error_object`].
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Self::Rpc => "rpc",
            Self::Timeout => "timeout",
            Self::Disconnected => "disconnected",
            Self::Unavailable => "unavailable",
            Self::NotFound => "not_found",
            Self::AlreadyExists => "already_exists",
            Self::Start => "start",
            Self::Protocol => "protocol",
            Self::Cancelled => "cancelled",
            Self::Busy => "busy",
            Self::CircuitOpen => "circuit_open",
            Self::Shutdown => "shutdown",
        }
    }
}

/// An error of the runtime.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    kind: ErrorKind,
    message: String,
    rpc: Option<ErrorObject<'static>>,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            rpc: None,
        }
    }

    pub(crate) fn rpc(error: ErrorObject<'static>) -> Self {
        Self {
            kind: ErrorKind::Rpc,
            message: format!("server error {}: {}", error.code, error.message),
            rpc: Some(error),
        }
    }

    pub(crate) fn timeout(after: Duration) -> Self {
        Self::new(
            ErrorKind::Timeout,
            format!("no answer within {} ms", after.as_millis()),
        )
    }

    /// What kind of error this is.
    #[must_use]
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// The human-readable reason.
    #[must_use]
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The server's JSON-RPC error, for [`ErrorKind::Rpc`].
    #[must_use]
    pub fn rpc_error(&self) -> Option<&ErrorObject<'static>> {
        self.rpc.as_ref()
    }

    /// The JSON-RPC error object a client should receive for this error: the
    /// server's own error as it was, or an internal error naming the reason,
    /// with `{"kind": NAME}` ([`ErrorKind::name`]) as its data so that a
    /// client can tell a timeout from a server that is down.
    #[must_use]
    pub fn to_error_object(&self) -> ErrorObject<'static> {
        match &self.rpc {
            Some(error) => error.clone(),
            None => {
                let code = match self.kind {
                    ErrorKind::NotFound => error_code::INVALID_PARAMS,
                    _ => error_code::INTERNAL_ERROR,
                };
                ErrorObject {
                    code,
                    message: self.message.clone().into(),
                    data: Some(Raw::from_value(
                        &serde_json::json!({"kind": self.kind.name()}),
                    )),
                }
            }
        }
    }
}

/// Shorthand for results of the runtime.
pub type Result<T, E = Error> = std::result::Result<T, E>;
