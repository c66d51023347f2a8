//! Requests routed to the backend that serves them: tools, prompts,
//! resources and completions by the name or URI the client knows, the
//! result passed back byte for byte (bridged between protocol versions where
//! client and backend differ), progress forwarded, and what the backend
//! asks of the client sent to the client that made the call.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;

use mcp_core::config::ItemKind;
use mcp_core::{HandlerResult, RequestContext, ServerId};
use mcp_protocol::jsonrpc::error_code;
use mcp_protocol::mcp::{
    CallToolParams, ClientCapabilities, CompleteParams, CompletionTarget, GetPromptParams, Method,
    RequestParams, ResourceRequestParams, View,
};
use mcp_protocol::raw::{Raw, RawObject};
use mcp_protocol::{ErrorObject, Notification, Request};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use mcp_runtime::{CallOptions, ListKind, ServerHandle};

use crate::{Backend, Gateway};

/// Sends a request to a backend: what it asks of the client goes to
/// `requester`, its progress to `progress_to`.
pub(crate) async fn call_backend(
    handle: &ServerHandle,
    method: &str,
    params: Raw<'static>,
    requester: RequestContext,
    progress_to: &RequestContext,
) -> HandlerResult {
    // A known method's name is static: no copy of it per call.
    let method = Method::from_name(method).map_or_else(
        || Cow::Owned(method.to_owned()),
        |m| Cow::Borrowed(m.as_str()),
    );
    // Progress is routed by token: a request without one gets none, and
    // needs no way back for it.
    if !params
        .get()
        .contains(mcp_protocol::mcp::meta_keys::PROGRESS_TOKEN)
    {
        let options = CallOptions {
            requester: Some(requester),
            ..CallOptions::default()
        };
        return handle
            .request(method, Some(params), options)
            .await
            .map_err(|error| error.to_error_object());
    }
    let (sink, mut progress) = mpsc::channel::<Notification<'static>>(64);
    let options = CallOptions {
        progress: Some(sink),
        requester: Some(requester),
        ..CallOptions::default()
    };
    let request = handle.request(method, Some(params), options);
    tokio::pin!(request);
    loop {
        tokio::select! {
            result = &mut request => {
                while let Ok(notification) = progress.try_recv() {
                    progress_to.notify(notification).await;
                }
                return result.map_err(|error| error.to_error_object());
            }
            Some(notification) = progress.recv() => progress_to.notify(notification).await,
        }
    }
}

/// The `requestState` and `inputResponses` a request carries.
pub(crate) fn continuation(params: &Raw<'_>) -> (Option<String>, serde_json::Map<String, Value>) {
    if !params.get().contains("requestState") {
        return (None, serde_json::Map::new());
    }
    let Ok(object) = RawObject::from_cow(params.reborrow()) else {
        return (None, serde_json::Map::new());
    };
    let state = object
        .get("requestState")
        .and_then(|raw| Raw::borrowed(raw).into_str())
        .map(Cow::into_owned);
    let responses = match object
        .get("inputResponses")
        .and_then(|raw| serde_json::from_str::<Value>(raw.get()).ok())
    {
        Some(Value::Object(responses)) => responses,
        _ => serde_json::Map::new(),
    };
    (state, responses)
}

/// The client capabilities a stateless request's `_meta` declares (none
/// when it declares none, or they cannot be read).
pub(crate) fn declared_capabilities(params: &Raw<'_>) -> ClientCapabilities {
    RequestParams::from_params(Some(params.reborrow()))
        .ok()
        .and_then(|params| params.meta)
        .and_then(|meta| meta.client_capabilities)
        .unwrap_or_default()
}

/// The `_meta` members of the 2026-07-28 request envelope.
pub(crate) const ENVELOPE: [&str; 4] = [
    mcp_protocol::mcp::meta_keys::PROTOCOL_VERSION,
    mcp_protocol::mcp::meta_keys::CLIENT_CAPABILITIES,
    mcp_protocol::mcp::meta_keys::CLIENT_INFO,
    mcp_protocol::mcp::meta_keys::LOG_LEVEL,
];

/// `params` without the members of the 2026-07-28 envelope in `_meta` (and
/// without `_meta` when nothing else is left in it).
pub(crate) fn without_envelope(params: Raw<'static>) -> Raw<'static> {
    let Ok(mut object) = RawObject::from_cow(params.reborrow()) else {
        return params;
    };
    let Some(Ok(mut meta)) = object.remove("_meta").map(RawObject::from_cow) else {
        return params;
    };
    for key in ENVELOPE {
        meta.remove(key);
    }
    if !meta.is_empty() {
        object.insert("_meta", Raw::owned(meta.to_raw()));
    }
    Raw::owned(object.to_raw())
}

/// How many rounds of `input_required` the gateway answers for a client of
/// a stateful session before it gives up.
pub(crate) const MAX_INPUT_ROUNDS: usize = 8;

/// A backend's result as a 2026-07-28 client must get it: with
/// `resultType` (a stateful backend sends none: its results are complete)
/// and, for a read, the caching hints (none: not to be cached). Members
/// already there are kept; the rest of the result is not parsed.
pub(crate) fn as_stateless_result(method: &str, result: Raw<'static>) -> Raw<'static> {
    let read = method == Method::ResourcesRead.as_str();
    if result.get().contains("\"resultType\"") && !read {
        return result;
    }
    let Ok(mut object) = RawObject::from_cow(result.reborrow()) else {
        return result;
    };
    let mut missing = vec![("resultType", Raw::from_value("complete"))];
    if read {
        missing.push(("ttlMs", Raw::from_value(&0)));
        missing.push(("cacheScope", Raw::from_value("private")));
    }
    let mut changed = false;
    for (key, value) in missing {
        if !object.contains_key(key) {
            object.insert(key, value);
            changed = true;
        }
    }
    if changed {
        Raw::owned(object.to_raw())
    } else {
        result
    }
}

/// The `inputRequests` and `requestState` of an `input_required` result.
pub(crate) fn input_required(
    result: &Raw<'static>,
) -> Option<(serde_json::Map<String, Value>, Option<Value>)> {
    let Ok(Value::Object(mut result)) = serde_json::from_str::<Value>(result.get()) else {
        return None;
    };
    if result.get("resultType").and_then(Value::as_str) != Some("input_required") {
        return None;
    }
    let Some(Value::Object(requests)) = result.remove("inputRequests") else {
        return None;
    };
    Some((requests, result.remove("requestState")))
}

/// Whether a request with `params` is a stateless (2026-07-28) one.
pub(crate) fn params_are_stateless(params: &Raw<'_>) -> bool {
    params.get().contains("protocolVersion")
        && RequestParams::from_params(Some(params.reborrow()))
            .ok()
            .and_then(|params| params.meta)
            .is_some_and(|meta| meta.is_stateless())
}

/// The scheme of the gateway's own resource URIs,
/// `mcp-manager://SERVER/URI`: the resource `URI` of server `SERVER`.
pub const SERVER_URI_SCHEME: &str = "mcp-manager://";

/// `uri` of server `server` in the gateway's own form.
#[must_use]
pub fn server_uri(server: &ServerId, uri: &str) -> String {
    format!("{SERVER_URI_SCHEME}{server}/{uri}")
}

/// The server and its own URI, for a URI in the gateway's own form.
pub(crate) fn split_server_uri(uri: &str) -> Option<(&str, &str)> {
    uri.strip_prefix(SERVER_URI_SCHEME)?.split_once('/')
}

/// A `resources/read` result with `contents[].uri` of `original` shown as
/// `exposed`, the URI the client asked for. Only read results of renamed
/// resources come here, so the parse costs nothing on the common path.
pub(crate) fn rename_contents(result: Raw<'static>, original: &str, exposed: &str) -> Raw<'static> {
    let Ok(mut value) = serde_json::from_str::<Value>(result.get()) else {
        return result;
    };
    let Some(contents) = value.get_mut("contents").and_then(Value::as_array_mut) else {
        return result;
    };
    for item in contents {
        if let Some(uri) = item.get_mut("uri") {
            if uri.as_str() == Some(original) {
                *uri = Value::from(exposed);
            }
        }
    }
    Raw::from_value(&value)
}

/// Runs `futures` side by side on the calling task; their outputs in order.
pub(crate) async fn join_all<F: Future>(futures: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut pending: Vec<Pin<Box<F>>> = futures.map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = pending.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut waiting = false;
        for (future, output) in pending.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    Poll::Ready(value) => *output = Some(value),
                    Poll::Pending => waiting = true,
                }
            }
        }
        if waiting {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}

pub(crate) fn invalid_params(message: impl Into<Cow<'static, str>>) -> ErrorObject<'static> {
    ErrorObject::new(error_code::INVALID_PARAMS, message)
}

pub(crate) fn view_error(error: &mcp_protocol::Error) -> ErrorObject<'static> {
    ErrorObject::new(error.code(), error.message().to_owned())
}

/// Checks the `Mcp-Param-*` headers of a `tools/call` against its
/// arguments, for a tool (`item`, as listed) whose schema mirrors some;
/// the schema is read only for such a tool.
fn check_param_headers(
    item: &Raw<'static>,
    arguments: Option<&Raw<'static>>,
    context: &RequestContext,
) -> Result<(), ErrorObject<'static>> {
    use mcp_protocol::mcp::param_headers::ANNOTATION;
    if !item.get().contains(ANNOTATION) {
        return Ok(());
    }
    let schema = serde_json::from_str::<Value>(item.get())
        .ok()
        .and_then(|mut tool| tool.get_mut("inputSchema").map(Value::take))
        .unwrap_or(Value::Null);
    let arguments = match arguments.map(|raw| serde_json::from_str::<Value>(raw.get())) {
        Some(Ok(Value::Object(arguments))) => Some(arguments),
        _ => None,
    };
    context.check_param_headers(&schema, arguments.as_ref())
}

/// The span of a client request: continuing the client's trace, or a new
/// one; none for a request that is not sampled (see [`crate::observe`]).
pub(crate) fn request_span(request: &Request<'_>) -> tracing::Span {
    let make = || {
        tracing::info_span!(
            target: "mcp_gateway",
            "mcp.request",
            otel.name = %request.method,
            otel.kind = "server",
            rpc.method = %request.method,
        )
    };
    let Some(propagator) = mcp_runtime::observe::propagator() else {
        // Not traced: the span is only for logs, and free when they are off.
        return make();
    };
    match mcp_runtime::observe::trace_context_of(request.params.as_ref()) {
        Some(context) if context.sampled() => {
            let span = make();
            propagator.continue_trace(&span, &context);
            span
        }
        Some(_) => tracing::Span::none(),
        None if propagator.sample_root() => make(),
        None => tracing::Span::none(),
    }
}

impl Gateway {
    /// Sends a request to a backend and answers with its result, bridging
    /// protocol versions (see the table in ARCHITECTURE.md): a stateless
    /// (2026-07-28) client gets 2026-07-28 results, and a session-bound
    /// backend's requests to it come back as `input_required` (see
    /// [`Gateway::bridged`]); when a stateless backend answers a client of a
    /// stateful session with `input_required`, the questions go to the
    /// client as real requests and the request is sent again with the
    /// answers, round after round, so the client sees one ordinary result.
    pub(crate) async fn forward(
        &self,
        backend: &Backend,
        method: &str,
        mut params: Raw<'static>,
        context: &RequestContext,
    ) -> HandlerResult {
        if params_are_stateless(&params) {
            // A backend that serves both generations takes the request as
            // it is, beside its session; one that has only a session is
            // bridged.
            let session_bound = backend
                .handle
                .session()
                .is_some_and(|s| s.protocol_version.is_stateful() && !s.dual);
            if session_bound {
                // A server in a session takes no 2026-07-28 envelope (some
                // refuse it): it gets the request as its own clients send it.
                let declared = declared_capabilities(&params);
                return self
                    .bridged(
                        backend,
                        method,
                        without_envelope(params),
                        &declared,
                        context,
                    )
                    .await;
            }
            let result = self.forward_once(backend, method, params, context).await?;
            return Ok(as_stateless_result(method, result));
        }
        for _ in 0..MAX_INPUT_ROUNDS {
            let result = self
                .forward_once(backend, method, params.clone(), context)
                .await?;
            if !result.get().contains("input_required") {
                return Ok(result);
            }
            let Some(questions) = input_required(&result) else {
                return Ok(result);
            };
            let (requests, state) = questions;
            let mut object = RawObject::from_cow(params)
                .map_err(|_| invalid_params("`params` must be an object"))?;
            context
                .answer_input_required(&mut object, &requests, state.as_ref())
                .await?;
            params = Raw::owned(object.to_raw());
        }
        Err(ErrorObject::new(
            error_code::INTERNAL_ERROR,
            format!("`{method}` still needed input after {MAX_INPUT_ROUNDS} rounds"),
        ))
    }

    pub(crate) async fn forward_once(
        &self,
        backend: &Backend,
        method: &str,
        params: Raw<'static>,
        context: &RequestContext,
    ) -> HandlerResult {
        call_backend(&backend.handle, method, params, context.clone(), context).await
    }

    pub(crate) async fn call_tool(
        &self,
        request: Request<'static>,
        context: &RequestContext,
    ) -> HandlerResult {
        let mut params = CallToolParams::from_params(request.params).map_err(|e| view_error(&e))?;
        let catalog = self.catalog(ListKind::Tools).await;
        let entry = catalog
            .find(&params.name)
            .ok_or_else(|| self.unknown("tool", &params.name))?;
        let (server, arguments) = (entry.backend.handle.id(), params.arguments.as_ref());
        if !self.permits_call(context, ItemKind::Tool, server, &entry.original, arguments) {
            return Err(self.unknown("tool", &params.name));
        }
        if context.param_headers().is_some() {
            check_param_headers(&entry.item, params.arguments.as_ref(), context)?;
        }
        let backend = entry.backend.clone();
        params.name = Cow::Owned(entry.original.clone());
        drop(catalog);
        let result = self
            .forward(&backend, &request.method, params.to_raw(), context)
            .await?;
        Ok(self.with_task_ids(backend.handle.id(), result, context, true))
    }

    pub(crate) async fn get_prompt(
        &self,
        request: Request<'static>,
        context: &RequestContext,
    ) -> HandlerResult {
        let mut params =
            GetPromptParams::from_params(request.params).map_err(|e| view_error(&e))?;
        let (backend, original) = self
            .find(ListKind::Prompts, &params.name)
            .await
            .ok_or_else(|| self.unknown("prompt", &params.name))?;
        let arguments = params.arguments.as_ref();
        if !self.permits_call(
            context,
            ItemKind::Prompt,
            backend.handle.id(),
            &original,
            arguments,
        ) {
            return Err(self.unknown("prompt", &params.name));
        }
        params.name = Cow::Owned(original);
        self.forward(&backend, &request.method, params.to_raw(), context)
            .await
    }

    /// The backend for a resource URI, and the URI on that backend: the
    /// server named by the gateway's own form (`mcp-manager://SERVER/URI`),
    /// else the one that lists it, else the first whose template's literal
    /// prefix it starts with.
    pub(crate) async fn resource_backend(&self, uri: &str) -> Option<(Arc<Backend>, String)> {
        if let Some((server, original)) = split_server_uri(uri) {
            let backend = self
                .backends()
                .iter()
                .find(|b| b.handle.id().as_str() == server)?
                .clone();
            return Some((backend, original.to_owned()));
        }
        if let Some(found) = self.find(ListKind::Resources, uri).await {
            return Some(found);
        }
        self.catalog(ListKind::ResourceTemplates)
            .await
            .entries
            .iter()
            .find(|(_, entry)| {
                uri.starts_with(entry.original.split('{').next().unwrap_or_default())
            })
            .map(|(_, entry)| (entry.backend.clone(), uri.to_owned()))
    }

    pub(crate) async fn resource_request(
        &self,
        request: Request<'static>,
        context: &RequestContext,
    ) -> HandlerResult {
        let mut params =
            ResourceRequestParams::from_params(request.params).map_err(|e| view_error(&e))?;
        let not_found = || {
            // SEP-2164: a read of no resource is `-32602` naming the URI.
            let mut error = ErrorObject::new(
                error_code::INVALID_PARAMS,
                format!("Resource not found: {}", params.uri),
            );
            error.data = Some(Raw::from_value(&json!({ "uri": params.uri })));
            error
        };
        let (backend, original) = self
            .resource_backend(&params.uri)
            .await
            .ok_or_else(not_found)?;
        let server = backend.handle.id();
        let permitted = if request.method == Method::ResourcesRead.as_str() {
            self.permits_call(context, ItemKind::Resource, server, &original, None)
        } else {
            self.permits(context, ItemKind::Resource, server, &original)
        };
        if !permitted {
            return Err(not_found());
        }
        if let Some(answer) = self.shared_subscription(&request.method, server, &original, context)
        {
            return answer;
        }
        let exposed = std::mem::replace(&mut params.uri, Cow::Owned(original));
        let result = self
            .forward(&backend, &request.method, params.to_raw(), context)
            .await;
        match result {
            Ok(result) if exposed != params.uri => {
                Ok(rename_contents(result, &params.uri, &exposed))
            }
            Ok(result) => Ok(result),
            Err(error) => {
                // A subscription the backend refused is not held.
                if let (Some(session), Some(Method::ResourcesSubscribe)) =
                    (context.session(), Method::from_name(&request.method))
                {
                    self.release_subscription(session, server, &params.uri);
                }
                Err(error)
            }
        }
    }

    pub(crate) async fn complete(
        &self,
        request: Request<'static>,
        context: &RequestContext,
    ) -> HandlerResult {
        let mut params = CompleteParams::from_params(request.params).map_err(|e| view_error(&e))?;
        let backend = match params.reference.target() {
            Some(CompletionTarget::Prompt(name)) => {
                let (backend, original) = self
                    .find(ListKind::Prompts, name)
                    .await
                    .filter(|(b, o)| self.permits(context, ItemKind::Prompt, b.handle.id(), o))
                    .ok_or_else(|| invalid_params(format!("Unknown prompt: {name}")))?;
                params.reference.name = Some(Cow::Owned(original));
                backend
            }
            Some(CompletionTarget::ResourceTemplate(uri)) => {
                let (backend, original) = self
                    .find(ListKind::ResourceTemplates, uri)
                    .await
                    .filter(|(b, o)| self.permits(context, ItemKind::Resource, b.handle.id(), o))
                    .ok_or_else(|| invalid_params(format!("Unknown resource template: {uri}")))?;
                params.reference.uri = Some(Cow::Owned(original));
                backend
            }
            None => {
                return Err(invalid_params(
                    "`ref` must be a `ref/prompt` or a `ref/resource`",
                ));
            }
        };
        self.forward(&backend, &request.method, params.to_raw(), context)
            .await
    }

    /// Sends a request to every backend side by side; a backend's error
    /// (a server that is down, say) is logged, not the client's business.
    pub(crate) async fn fan_out(
        &self,
        method: &str,
        params: Option<Raw<'static>>,
    ) -> HandlerResult {
        let backends = self.backends();
        let results = join_all(backends.iter().map(|backend| {
            backend
                .handle
                .request(method.to_owned(), params.clone(), CallOptions::default())
        }))
        .await;
        for (backend, result) in backends.iter().zip(results) {
            if let Err(error) = result {
                tracing::warn!(server = %backend.handle.id(), "`{method}` failed: {error}");
            }
        }
        Ok(Raw::from_value(&json!({})))
    }
}
