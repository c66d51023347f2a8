//! Why an operation failed, as the package's exceptions need it.

use mcp_protocol::ErrorObject;

/// Why an operation failed, as the package's exceptions need it.
#[derive(Debug)]
pub(crate) struct Failure {
    /// `rpc`, `timeout`, `not_found`, `conflict`, `invalid`, `unavailable`,
    /// `busy`, `circuit_open`, `cancelled`, `closed` or `internal`.
    pub(crate) kind: &'static str,
    pub(crate) message: String,
    /// The JSON-RPC error code, for `rpc`.
    pub(crate) code: Option<i64>,
    /// The JSON-RPC error's data, as JSON text.
    pub(crate) data: Option<String>,
}

impl Failure {
    pub(crate) fn new(kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            code: None,
            data: None,
        }
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::new("invalid", message)
    }

    pub(crate) fn rpc(error: &ErrorObject<'_>) -> Self {
        Self {
            kind: "rpc",
            message: error.message.to_string(),
            code: Some(error.code),
            data: error.data.as_ref().map(|d| d.get().to_owned()),
        }
    }

    /// A JSON-RPC error of the gateway: the kind its `data` names (the
    /// gateway's own failures carry `{"kind": ...}`: a timeout, a server
    /// that is unavailable), else a server's error as it was.
    pub(crate) fn from_gateway(error: &ErrorObject<'_>) -> Self {
        let mut failure = Self::rpc(error);
        let kind = error
            .data
            .as_ref()
            .and_then(|data| serde_json::from_str::<serde_json::Value>(data.get()).ok())
            .and_then(|data| data.get("kind")?.as_str().map(runtime_kind));
        if let Some(Some(kind)) = kind {
            failure.kind = kind;
        }
        failure
    }

    /// This failure about `server`: unless it is a server's own error or
    /// has data already, its `data` names its kind and the server, as
    /// `{"kind": "not_found", "server": "ghost"}`.
    pub(crate) fn about(self, server: &str) -> Self {
        if self.kind == "rpc" || self.data.is_some() {
            return self;
        }
        Self {
            data: Some(serde_json::json!({"kind": self.kind, "server": server}).to_string()),
            ..self
        }
    }

    pub(crate) fn into_args(self) -> (&'static str, String, Option<i64>, Option<String>) {
        (self.kind, self.message, self.code, self.data)
    }
}

/// The package's kind for a runtime error kind, by its name
/// (`mcp_runtime::ErrorKind::name`); `None` for a server's own error.
fn runtime_kind(name: &str) -> Option<&'static str> {
    Some(match name {
        "rpc" => return None,
        "timeout" => "timeout",
        "not_found" => "not_found",
        "unknown_tool" => "tool_not_found",
        "already_exists" => "conflict",
        "busy" => "busy",
        "circuit_open" => "circuit_open",
        "cancelled" => "cancelled",
        "shutdown" => "closed",
        "disconnected" | "unavailable" | "start" | "protocol" => "unavailable",
        _ => "internal",
    })
}

impl From<mcp_runtime::Error> for Failure {
    fn from(error: mcp_runtime::Error) -> Self {
        if let Some(rpc) = error.rpc_error() {
            return Self::rpc(rpc);
        }
        let kind = runtime_kind(error.kind().name()).unwrap_or("internal");
        Self::new(kind, error.message())
    }
}

impl From<mcp_control::Error> for Failure {
    fn from(error: mcp_control::Error) -> Self {
        use mcp_control::ErrorKind as K;
        let kind = match error.kind() {
            K::NotFound => "not_found",
            K::Conflict => "conflict",
            K::Invalid => "invalid",
            K::Stopping => "closed",
            _ => "unavailable",
        };
        Self::new(kind, error.message())
    }
}

pub(crate) type Outcome = Result<String, Failure>;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use mcp_protocol::ErrorObject;
    use mcp_protocol::raw::Raw;
    use serde_json::{Value, json};

    use super::Failure;

    #[test]
    fn a_server_error_keeps_its_code_and_data() {
        let error = ErrorObject {
            code: -32001,
            message: "nope".into(),
            data: Some(Raw::from_value(&json!({"why": "because"}))),
        };
        let (kind, message, code, data) = Failure::rpc(&error).into_args();
        assert_eq!(
            (kind, message.as_str(), code),
            ("rpc", "nope", Some(-32001))
        );
        assert_eq!(
            serde_json::from_str::<Value>(&data.unwrap()).unwrap(),
            json!({"why": "because"})
        );
    }

    #[test]
    fn manager_errors_map_to_the_package_kinds() {
        use mcp_control::{Error, ErrorKind};
        let cases = [
            (ErrorKind::NotFound, "not_found"),
            (ErrorKind::Conflict, "conflict"),
            (ErrorKind::Invalid, "invalid"),
            (ErrorKind::Failed, "unavailable"),
            (ErrorKind::Stopping, "closed"),
        ];
        for (kind, expected) in cases {
            let failure = Failure::from(Error::new(kind, "m"));
            assert_eq!((failure.kind, failure.code), (expected, None));
        }
    }
}
