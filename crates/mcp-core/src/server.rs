//! The interface of an MCP server implemented in Rust, run in-process.
//!
//! The runtime hands such a server whole messages (their `params` are raw
//! JSON text already, so nothing is serialized to bytes on the way) and
//! takes its answers the same way. Futures are boxed so that servers can be
//! chosen at run time as trait objects; the box is one allocation per call.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use mcp_protocol::raw::{Raw, RawObject};
use mcp_protocol::{ErrorObject, Notification, Request};

use crate::auth::Principal;

/// A boxed, sendable future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a request handler returns: a result, or a JSON-RPC error object.
pub type HandlerResult = Result<Raw<'static>, ErrorObject<'static>>;

/// An MCP server that runs inside the manager's process.
pub trait McpServer: Send + Sync + 'static {
    /// Answers one request, `initialize` included. Dropping the returned
    /// future cancels the request.
    fn handle_request(
        &self,
        request: Request<'static>,
        context: RequestContext,
    ) -> BoxFuture<'_, HandlerResult>;

    /// Receives one notification from the client (`notifications/initialized`,
    /// `notifications/roots/list_changed`, ...). Cancellation is handled by
    /// the runtime, which drops the request's future.
    fn handle_notification(
        &self,
        notification: Notification<'static>,
        context: RequestContext,
    ) -> BoxFuture<'_, ()>;
}

/// The way back to the client, for notifications a server sends on its own
/// (progress, log messages, list changes) and for the requests it makes of
/// the client while it serves one of the client's (sampling, elicitation,
/// roots).
pub trait Peer: Send + Sync + 'static {
    /// Sends a notification; waits while the client is slow to take it.
    fn notify(&self, notification: Notification<'static>) -> BoxFuture<'_, ()>;

    /// Sends a request to the client and waits for its answer: the result,
    /// or the client's error. A peer that cannot reach the client with
    /// requests (a stateless HTTP request, say) answers `-32601` at once,
    /// which is what this default does. Dropping the future abandons the
    /// request.
    fn request(&self, method: &str, params: Option<Raw<'static>>) -> BoxFuture<'_, HandlerResult> {
        let _ = params;
        let error = ErrorObject::new(
            mcp_protocol::jsonrpc::error_code::METHOD_NOT_FOUND,
            format!(
                "`{method}` cannot be sent to this client: the way it is connected carries no requests to it"
            ),
        );
        Box::pin(std::future::ready(Err(error)))
    }

    /// Whether the client is gone, so that work done only for it can stop.
    fn is_closed(&self) -> bool {
        false
    }

    /// The way to this peer's client session itself, beyond the request
    /// it was made for: for what a server sends once that request has
    /// ended (the questions of a server that serves this one client, say).
    /// `None` when this peer already is the session's (the default).
    fn session_peer(&self) -> Option<Arc<dyn Peer>> {
        None
    }

    /// A number that every context of the same client session shares and
    /// no other live session has, for a server that keeps state per
    /// session (subscriptions, say); `None` when the transport cannot tell
    /// sessions apart.
    fn session(&self) -> Option<u64> {
        None
    }

    /// The request's `Mcp-Param-*` headers (names in lower case), when it
    /// is a 2026-07-28 request that came over a transport with headers
    /// (Streamable HTTP), so that a server can check them against the
    /// arguments they mirror; `None` for a transport without headers (the
    /// default), where there is nothing to check.
    fn param_headers(&self) -> Option<&[(String, String)]> {
        None
    }

    /// Who is calling, when the transport checked an access token (an
    /// OAuth resource server); `None` when it did not (stdio, a shared
    /// token, no auth).
    fn principal(&self) -> Option<&Principal> {
        None
    }
}

/// A fresh number for [`Peer::session`], unique in this process.
#[must_use]
pub fn next_session_key() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// What a handler gets besides the message itself.
#[derive(Clone)]
pub struct RequestContext {
    peer: Arc<dyn Peer>,
}

impl RequestContext {
    /// A context that sends through `peer`.
    pub fn new(peer: Arc<dyn Peer>) -> Self {
        Self { peer }
    }

    /// Sends a notification to the client.
    pub async fn notify(&self, notification: Notification<'static>) {
        self.peer.notify(notification).await;
    }

    /// Whether the client is gone.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.peer.is_closed()
    }

    /// Puts the questions of an `input_required` result (its `requests`,
    /// `inputRequests` on the wire) to the client as real requests, one
    /// after the other, and records the answers in `params` as
    /// `inputResponses` (beside those of earlier rounds) with the result's
    /// `requestState` (or none), so that the request can be sent again as a
    /// 2026-07-28 client would send it: how a client in a session answers
    /// what a stateless server asks in rounds.
    ///
    /// # Errors
    ///
    /// The client's error, `-32601` when it cannot be sent requests, or
    /// `-32603` when an answer is not JSON.
    pub async fn answer_input_required(
        &self,
        params: &mut RawObject<'static>,
        requests: &serde_json::Map<String, serde_json::Value>,
        state: Option<&serde_json::Value>,
    ) -> Result<(), ErrorObject<'static>> {
        let mut responses = match params
            .get("inputResponses")
            .and_then(|raw| serde_json::from_str(raw.get()).ok())
        {
            Some(serde_json::Value::Object(responses)) => responses,
            _ => serde_json::Map::new(),
        };
        for (key, request) in requests {
            let method = request
                .get("method")
                .and_then(serde_json::Value::as_str)
                .unwrap_or_default();
            let asked = request.get("params").map(Raw::from_value);
            let answer = self.request(method, asked).await?;
            let answer: serde_json::Value = serde_json::from_str(answer.get()).map_err(|e| {
                ErrorObject::new(
                    mcp_protocol::jsonrpc::error_code::INTERNAL_ERROR,
                    format!("the client's answer to `{method}` is not JSON: {e}"),
                )
            })?;
            responses.insert(key.clone(), answer);
        }
        params.insert("inputResponses", Raw::from_value(&responses));
        match state {
            Some(state) => params.insert("requestState", Raw::from_value(state)),
            None => {
                params.remove("requestState");
            }
        }
        Ok(())
    }

    /// A context for this request's client session beyond the request
    /// (see [`Peer::session_peer`]); this one when it is the session's.
    #[must_use]
    pub fn session_context(&self) -> RequestContext {
        match self.peer.session_peer() {
            Some(peer) => RequestContext::new(peer),
            None => self.clone(),
        }
    }

    /// The client session this request belongs to; see [`Peer::session`].
    #[must_use]
    pub fn session(&self) -> Option<u64> {
        self.peer.session()
    }

    /// The request's `Mcp-Param-*` headers; see [`Peer::param_headers`].
    #[must_use]
    pub fn param_headers(&self) -> Option<&[(String, String)]> {
        self.peer.param_headers()
    }

    /// Who is calling; see [`Peer::principal`].
    #[must_use]
    pub fn principal(&self) -> Option<&Principal> {
        self.peer.principal()
    }

    /// Checks the `Mcp-Param-*` headers of a `tools/call` against its
    /// `arguments`, for the tool with `input_schema`: nothing to check over
    /// a transport without headers.
    ///
    /// # Errors
    ///
    /// `-32020` when a header is missing, undecodable, unexpected or
    /// different from its argument (see
    /// [`mcp_protocol::mcp::param_headers::check`]), or the schema's
    /// annotations are invalid.
    pub fn check_param_headers(
        &self,
        input_schema: &serde_json::Value,
        arguments: Option<&serde_json::Map<String, serde_json::Value>>,
    ) -> Result<(), ErrorObject<'static>> {
        use mcp_protocol::mcp::param_headers;
        let Some(headers) = self.param_headers() else {
            return Ok(());
        };
        let mirrored = param_headers::param_headers(input_schema).map_err(|reason| {
            ErrorObject::new(
                mcp_protocol::jsonrpc::error_code::HEADER_MISMATCH,
                format!("the tool's header annotations are invalid: {reason}"),
            )
        })?;
        let lookup = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, value)| value.as_str())
        };
        param_headers::check(&mirrored, arguments, &lookup)
            .map_err(|refusal| refusal.to_error_object())
    }

    /// Sends a request to the client (`sampling/createMessage`,
    /// `elicitation/create`, `roots/list`) and waits for its answer.
    ///
    /// # Errors
    ///
    /// The client's error, or `-32601` when this client cannot be sent
    /// requests the way it is connected.
    pub async fn request(&self, method: &str, params: Option<Raw<'static>>) -> HandlerResult {
        self.peer.request(method, params).await
    }
}

impl std::fmt::Debug for RequestContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestContext").finish_non_exhaustive()
    }
}
