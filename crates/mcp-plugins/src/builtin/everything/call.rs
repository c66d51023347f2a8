//! One request as the handlers see it: its params, its `_meta`, the
//! protocol generation it belongs to, and the way back to the client. Also
//! the JSON-RPC errors the server answers with and the finishing touches a
//! 2026-07-28 result needs.

use std::borrow::Cow;

use mcp_core::RequestContext;
use mcp_protocol::jsonrpc::error_code;
use mcp_protocol::mcp::{ClientCapabilities, LoggingLevel, Method, RequestMeta, View};
use mcp_protocol::raw::{Raw, RawObject};
use mcp_protocol::{ErrorObject, Notification, ProtocolVersion, Request, RequestId, VersionSet};
use serde_json::{Map, Value, json};

/// Which generation of the protocol a request belongs to.
#[derive(Clone, Debug)]
pub(crate) enum Mode {
    /// A session opened with `initialize` (2025-11-25 and older).
    Stateful,
    /// A 2026-07-28 request, self-contained: the client's capabilities and
    /// the log level it wants come with it.
    Stateless {
        /// What the client declared for this request.
        capabilities: Box<ClientCapabilities>,
        /// The lowest log level to send for this request; none means no log
        /// messages at all.
        log_level: Option<LoggingLevel>,
    },
}

impl Mode {
    /// Whether this is a 2026-07-28 request.
    pub(crate) fn is_stateless(&self) -> bool {
        matches!(self, Self::Stateless { .. })
    }
}

/// A client capability a request to the client needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ClientCapability {
    /// `elicitation/create`.
    Elicitation,
    /// `sampling/createMessage`.
    Sampling,
    /// `roots/list`.
    Roots,
}

impl ClientCapability {
    /// The capability's key in `ClientCapabilities`.
    pub(crate) fn key(self) -> &'static str {
        match self {
            Self::Elicitation => "elicitation",
            Self::Sampling => "sampling",
            Self::Roots => "roots",
        }
    }

    /// The method of the request that needs it.
    pub(crate) fn method(self) -> &'static str {
        match self {
            Self::Elicitation => Method::Elicit.as_str(),
            Self::Sampling => Method::CreateMessage.as_str(),
            Self::Roots => Method::RootsList.as_str(),
        }
    }

    /// Whether `capabilities` declare it.
    pub(crate) fn declared_in(self, capabilities: &ClientCapabilities) -> bool {
        match self {
            Self::Elicitation => capabilities.elicitation.is_some(),
            Self::Sampling => capabilities.sampling.is_some(),
            Self::Roots => capabilities.roots.is_some(),
        }
    }
}

/// A request, taken apart.
pub(crate) struct Call {
    /// The method.
    pub(crate) method: Cow<'static, str>,
    /// The request's id.
    pub(crate) id: RequestId<'static>,
    /// The params, without `_meta`.
    pub(crate) params: RawObject<'static>,
    /// The params' `_meta`.
    pub(crate) meta: RequestMeta<'static>,
    /// The protocol generation.
    pub(crate) mode: Mode,
    /// The way back to the client.
    pub(crate) context: RequestContext,
}

impl Call {
    /// Takes a request apart and checks what 2026-07-28 demands of its
    /// `_meta`.
    pub(crate) fn new(
        request: Request<'static>,
        context: RequestContext,
    ) -> Result<Self, ErrorObject<'static>> {
        let mut params = match request.params {
            Some(raw) => RawObject::from_cow(raw)
                .map_err(|_| invalid_params("`params` must be an object"))?,
            None => RawObject::new(),
        };
        let had_meta = params.contains_key("_meta");
        let meta = RequestMeta::from_params(params.remove("_meta"))
            .map_err(|e| invalid_params(format!("`_meta`: {}", e.message())))?;
        let mode = classify(&request.method, had_meta, &meta)?;
        Ok(Self {
            method: request.method,
            id: request.id,
            params,
            meta,
            mode,
            context,
        })
    }

    /// Reads the params as view `V`.
    pub(crate) fn view<V: View<'static>>(&self) -> Result<V, ErrorObject<'static>> {
        V::from_object(self.params.clone()).map_err(invalid_params)
    }

    /// A member of the params, parsed into a JSON value.
    pub(crate) fn param(&self, key: &str) -> Option<Value> {
        self.params
            .get(key)
            .and_then(|raw| serde_json::from_str(raw.get()).ok())
    }

    /// Puts the questions of an `input_required` reply to the client as
    /// real requests and adds the answers to the params (see
    /// [`RequestContext::answer_input_required`]), so that the request can
    /// run again as if the client had sent it with them: how a stateful
    /// session answers what a 2026-07-28 client answers in rounds.
    ///
    /// # Errors
    ///
    /// The client's error, or `-32601` when it cannot be sent requests.
    pub(crate) async fn ask_client(&mut self, input: &Value) -> Result<(), ErrorObject<'static>> {
        let no_requests = Map::new();
        let requests = input
            .get("inputRequests")
            .and_then(Value::as_object)
            .unwrap_or(&no_requests);
        self.context
            .answer_input_required(&mut self.params, requests, input.get("requestState"))
            .await
    }

    /// Sends a notification to the client.
    pub(crate) async fn notify(&self, method: &'static str, params: Value) {
        self.context.notify(notification(method, params)).await;
    }

    /// Sends `notifications/progress` if the request asked for progress.
    pub(crate) async fn progress(&self, progress: u32, total: u32, message: &str) {
        if let Some(token) = &self.meta.progress_token {
            let params = json!({
                "progressToken": token,
                "progress": progress,
                "total": total,
                "message": message,
            });
            self.notify(Method::Progress.as_str(), params).await;
        }
    }
}

/// Works out the protocol generation of a request. A request is stateless
/// when its `_meta` names a protocol version or client capabilities, or when
/// its method exists only in stateless versions; such a request must carry
/// both, and a version this server speaks statelessly.
fn classify(
    method: &str,
    had_meta: bool,
    meta: &RequestMeta<'_>,
) -> Result<Mode, ErrorObject<'static>> {
    let stateless_only = Method::from_name(method).is_some_and(|m| {
        m.is_in(ProtocolVersion::V2026_07_28) && !m.is_in(ProtocolVersion::LATEST_STATEFUL)
    });
    if !stateless_only && meta.protocol_version.is_none() && meta.client_capabilities.is_none() {
        return Ok(Mode::Stateful);
    }
    if !had_meta {
        return Err(invalid_params(
            "missing `_meta`: a 2026-07-28 request must carry the protocol version and client capabilities",
        ));
    }
    let Some(version) = &meta.protocol_version else {
        return Err(invalid_params(
            "missing `_meta` member `io.modelcontextprotocol/protocolVersion`",
        ));
    };
    VersionSet::default()
        .check_stateless(version)
        .map_err(|unsupported| unsupported.to_error_object())?;
    let Some(capabilities) = &meta.client_capabilities else {
        return Err(invalid_params(
            "missing `_meta` member `io.modelcontextprotocol/clientCapabilities`",
        ));
    };
    Ok(Mode::Stateless {
        capabilities: Box::new(capabilities.clone()),
        log_level: meta.log_level,
    })
}

/// A notification with `params`.
pub(crate) fn notification(method: &'static str, params: Value) -> Notification<'static> {
    Notification {
        method: Cow::Borrowed(method),
        params: Some(Raw::from_value(&params)),
    }
}

/// `-32602 Invalid params` with a reason.
pub(crate) fn invalid_params(reason: impl Into<Cow<'static, str>>) -> ErrorObject<'static> {
    ErrorObject::new(
        error_code::INVALID_PARAMS,
        format!("Invalid params: {}", reason.into()),
    )
}

/// An error object with `data`.
pub(crate) fn error_with_data(
    code: i64,
    message: impl Into<Cow<'static, str>>,
    data: &Value,
) -> ErrorObject<'static> {
    let mut error = ErrorObject::new(code, message);
    error.data = Some(Raw::from_value(data));
    error
}

/// `-32601 Method not found`.
pub(crate) fn method_not_found(method: &str) -> ErrorObject<'static> {
    ErrorObject::new(
        error_code::METHOD_NOT_FOUND,
        format!("Method not found: {method}"),
    )
}

/// `-32021`: the request needs client capabilities it did not declare.
pub(crate) fn missing_capabilities(missing: &[ClientCapability]) -> ErrorObject<'static> {
    let names: Vec<&str> = missing.iter().map(|c| c.key()).collect();
    let required: Map<String, Value> = names
        .iter()
        .map(|name| ((*name).to_owned(), json!({})))
        .collect();
    error_with_data(
        error_code::MISSING_REQUIRED_CLIENT_CAPABILITY,
        format!(
            "Server requires the {} capability for this request",
            names.join(" and ")
        ),
        &json!({ "requiredCapabilities": required }),
    )
}

/// What a handler produced.
#[derive(Debug)]
pub(crate) enum Reply {
    /// The final result.
    Complete(Value),
    /// The client must answer `inputRequests` and send the request again
    /// (2026-07-28); `input` holds `inputRequests` and `requestState`.
    InputRequired(Value),
}

/// The methods whose 2026-07-28 results carry caching hints.
const CACHEABLE: [Method; 5] = [
    Method::ToolsList,
    Method::PromptsList,
    Method::ResourcesList,
    Method::ResourceTemplatesList,
    Method::ResourcesRead,
];

/// Turns a handler's reply into the result sent on the wire. Stateless
/// results get `resultType` and, for lists and reads, `ttlMs` and
/// `cacheScope`; a stateful session cannot be asked for input this way.
pub(crate) fn finish(call: &Call, reply: Reply) -> Result<Raw<'static>, ErrorObject<'static>> {
    let (mut value, result_type) = match reply {
        Reply::Complete(value) => (value, "complete"),
        Reply::InputRequired(input) if call.mode.is_stateless() => (input, "input_required"),
        Reply::InputRequired(input) => return Err(no_client_requests(&call.method, &input)),
    };
    if call.mode.is_stateless() {
        if let Value::Object(object) = &mut value {
            object.insert("resultType".to_owned(), json!(result_type));
            let cacheable = Method::from_name(&call.method).is_some_and(|m| CACHEABLE.contains(&m));
            if cacheable && result_type == "complete" {
                object.insert("ttlMs".to_owned(), json!(0));
                object.insert("cacheScope".to_owned(), json!("public"));
            }
        }
    }
    Ok(Raw::from_value(&value))
}

/// The error for a request that needs the client's input in a stateful
/// session: the in-process interface cannot send requests to the client.
fn no_client_requests(method: &str, input: &Value) -> ErrorObject<'static> {
    let wanted: Vec<&str> = input
        .get("inputRequests")
        .and_then(Value::as_object)
        .map(|requests| {
            requests
                .values()
                .filter_map(|r| r.get("method").and_then(Value::as_str))
                .collect()
        })
        .unwrap_or_default();
    ErrorObject::new(
        error_code::INTERNAL_ERROR,
        format!(
            "this `{method}` needs {} from the client, and requests to the client are not available on in-process connections before protocol version 2026-07-28",
            wanted.join(", ")
        ),
    )
}
