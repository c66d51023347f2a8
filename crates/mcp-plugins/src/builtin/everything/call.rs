//! One request as the handlers see it: its params, its `_meta`, the
//! protocol generation it belongs to, and the way back to the client. Also
//! the JSON-RPC errors the server answers with and the finishing touches a
//! 2026-07-28 result needs.

use std::borrow::Cow;

use mcp_core::RequestContext;
use mcp_protocol::jsonrpc::error_code;
use mcp_protocol::mcp::stateless::{self, Generation};
use mcp_protocol::mcp::{ClientCapabilities, LoggingLevel, Method, RequestMeta, View};
use mcp_protocol::raw::{Raw, RawObject};
use mcp_protocol::{ErrorObject, Notification, Request, RequestId, VersionSet};
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
        let mode = classify(&request.method, &params)?;
        let meta = RequestMeta::from_params(params.remove("_meta"))
            .map_err(|e| invalid_params(format!("`_meta`: {}", e.message())))?;
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

/// Works out the protocol generation of a request and checks a stateless
/// one as 2026-07-28 demands ([`stateless::judge`]: the `_meta` envelope,
/// a version this server speaks statelessly, no removed method).
fn classify(method: &str, params: &RawObject<'_>) -> Result<Mode, ErrorObject<'static>> {
    match stateless::judge(method, Some(params), None, &VersionSet::default()) {
        Ok(Generation::Stateful) => Ok(Mode::Stateful),
        Ok(Generation::Stateless { meta, .. }) => Ok(Mode::Stateless {
            capabilities: Box::new(meta.client_capabilities.clone().unwrap_or_default()),
            log_level: meta.log_level,
        }),
        Err(refusal) => Err(refusal.to_error_object()),
    }
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
    stateless::missing_capabilities(&names)
}

/// What a handler produced.
#[derive(Debug)]
pub(crate) enum Reply {
    /// The final result.
    Complete(Value),
    /// The client must answer `inputRequests` and send the request again
    /// (2026-07-28); `input` holds `inputRequests` and `requestState`.
    InputRequired(Value),
    /// The request became a task (2026-07-28, Tasks extension): the task
    /// as `CreateTaskResult` shows it.
    Task(Value),
}

impl Reply {
    /// The value the reply carries, whatever it is.
    pub(crate) fn into_value(self) -> Value {
        match self {
            Self::Complete(value) | Self::InputRequired(value) | Self::Task(value) => value,
        }
    }
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
        Reply::Task(task) => (task, "task"),
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
