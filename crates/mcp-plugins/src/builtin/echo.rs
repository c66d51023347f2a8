//! `echo`: the smallest useful MCP server, one tool that answers with the
//! text it is given. It exists to measure what sits in front of a server
//! (the gateway, a transport) rather than the server itself, and as a
//! cheap backend for tests.
//!
//! - `initialize` negotiates the version and offers `tools`; `ping` answers
//!   `{}`; `server/discover` (2026-07-28) lists the versions it speaks.
//! - `tools/list`: `echo`, taking `{"text": string}`, and `meta`, taking
//!   nothing.
//! - `tools/call` of `echo`: one text content item holding `text`; of
//!   `meta`: the call's `_meta` as JSON text (`{}` without one), to see
//!   what reached the server (trace context, progress tokens).
//!
//! Anything else is `-32601`; a call to another tool or with arguments of
//! the wrong shape is `-32602`.

use std::borrow::Cow;

use mcp_core::{BoxFuture, HandlerResult, McpServer, RequestContext};
use mcp_protocol::jsonrpc::error_code;
use mcp_protocol::mcp::{CallToolParams, InitializeParams, Method, View};
use mcp_protocol::raw::Raw;
use mcp_protocol::{ErrorObject, Notification, ProtocolVersion, Request, VersionSet};
use serde::Deserialize;
use serde_json::json;

/// The `echo` server.
#[derive(Clone, Copy, Debug, Default)]
pub struct EchoServer;

/// The arguments of the `echo` tool.
#[derive(Deserialize)]
struct EchoArguments<'a> {
    #[serde(borrow)]
    text: Cow<'a, str>,
}

fn invalid_params(message: impl Into<Cow<'static, str>>) -> ErrorObject<'static> {
    ErrorObject::new(error_code::INVALID_PARAMS, message)
}

fn server_info() -> serde_json::Value {
    json!({"name": "mcp-manager-echo", "version": env!("CARGO_PKG_VERSION")})
}

fn initialize(request: &Request<'static>) -> HandlerResult {
    let params = InitializeParams::from_params(request.params.clone())
        .map_err(|e| ErrorObject::new(e.code(), e.message().to_owned()))?;
    let version = VersionSet::default()
        .answer_initialize(&params.protocol_version)
        .unwrap_or(ProtocolVersion::LATEST_STATEFUL);
    Ok(Raw::from_value(&json!({
        "protocolVersion": version.as_str(),
        "capabilities": {"tools": {}},
        "serverInfo": server_info(),
    })))
}

fn call(request: Request<'static>) -> HandlerResult {
    let params = CallToolParams::from_params(request.params)
        .map_err(|e| ErrorObject::new(e.code(), e.message().to_owned()))?;
    if params.name == "meta" {
        let meta = params
            .meta
            .as_ref()
            .map_or_else(|| "{}".to_owned(), |meta| meta.to_raw().get().to_owned());
        return Ok(Raw::from_value(
            &json!({"content": [{"type": "text", "text": meta}]}),
        ));
    }
    if params.name != "echo" {
        return Err(invalid_params(format!("Unknown tool: {}", params.name)));
    }
    let arguments = params
        .arguments
        .as_ref()
        .ok_or_else(|| invalid_params("`echo` needs `arguments` with a `text` string"))?;
    let EchoArguments { text } = serde_json::from_str(arguments.get())
        .map_err(|e| invalid_params(format!("`echo` needs `{{\"text\": string}}`: {e}")))?;
    Ok(Raw::from_value(
        &json!({"content": [{"type": "text", "text": text}]}),
    ))
}

impl McpServer for EchoServer {
    fn handle_request(
        &self,
        request: Request<'static>,
        _context: RequestContext,
    ) -> BoxFuture<'_, HandlerResult> {
        let answer = match Method::from_name(&request.method) {
            Some(Method::ToolsCall) => call(request),
            Some(Method::Ping) => Ok(Raw::from_value(&json!({}))),
            Some(Method::Initialize) => initialize(&request),
            Some(Method::ToolsList) => Ok(Raw::from_value(&json!({"tools": [{
                "name": "echo",
                "description": "Answers with the text it is given.",
                "inputSchema": {
                    "type": "object",
                    "properties": {"text": {"type": "string"}},
                    "required": ["text"],
                },
            }, {
                "name": "meta",
                "description": "Answers with the `_meta` of the call, as JSON text.",
                "inputSchema": {"type": "object", "properties": {}},
                "annotations": {"readOnlyHint": true},
            }]}))),
            Some(Method::Discover) => Ok(Raw::from_value(&json!({
                "supportedVersions": [ProtocolVersion::V2026_07_28.as_str()],
                "capabilities": {"tools": {}},
                "_meta": {mcp_protocol::mcp::meta_keys::SERVER_INFO: server_info()},
            }))),
            _ => Err(ErrorObject::new(
                error_code::METHOD_NOT_FOUND,
                format!("Method not found: {}", request.method),
            )),
        };
        Box::pin(std::future::ready(answer))
    }

    fn handle_notification(
        &self,
        _notification: Notification<'static>,
        _context: RequestContext,
    ) -> BoxFuture<'_, ()> {
        Box::pin(std::future::ready(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: &'static str, params: serde_json::Value) -> Request<'static> {
        Request {
            id: mcp_protocol::RequestId::Number(1),
            method: Cow::Borrowed(method),
            params: Some(Raw::from_value(&params)),
        }
    }

    fn answer(request: Request<'static>) -> HandlerResult {
        struct Nobody;
        impl mcp_core::Peer for Nobody {
            fn notify(&self, _: Notification<'static>) -> BoxFuture<'_, ()> {
                Box::pin(std::future::ready(()))
            }
        }
        let context = RequestContext::new(std::sync::Arc::new(Nobody));
        answer_now(EchoServer.handle_request(request, context))
    }

    /// The handler never awaits anything, so one poll finishes it.
    fn answer_now(mut future: BoxFuture<'_, HandlerResult>) -> HandlerResult {
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        match future.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(answer) => answer,
            std::task::Poll::Pending => panic!("the echo server never waits"),
        }
    }

    #[test]
    fn echoes_text() {
        let result = answer(request(
            "tools/call",
            json!({"name": "echo", "arguments": {"text": "hi \"there\"\n"}}),
        ))
        .unwrap();
        let value: serde_json::Value = serde_json::from_str(result.get()).unwrap();
        assert_eq!(
            value,
            json!({"content": [{"type": "text", "text": "hi \"there\"\n"}]})
        );
    }

    #[test]
    fn shows_the_meta_of_a_call() {
        let result = answer(request(
            "tools/call",
            json!({"name": "meta", "_meta": {"traceparent": "00-a-b-01", "progressToken": 1}}),
        ))
        .unwrap();
        let value: serde_json::Value = serde_json::from_str(result.get()).unwrap();
        let meta: serde_json::Value =
            serde_json::from_str(value["content"][0]["text"].as_str().unwrap()).unwrap();
        assert_eq!(
            meta,
            json!({"traceparent": "00-a-b-01", "progressToken": 1})
        );
        let result = answer(request("tools/call", json!({"name": "meta"}))).unwrap();
        let value: serde_json::Value = serde_json::from_str(result.get()).unwrap();
        assert_eq!(value["content"][0]["text"], "{}");
    }

    #[test]
    fn refuses_other_tools_and_bad_arguments() {
        let error = answer(request("tools/call", json!({"name": "nope"}))).unwrap_err();
        assert_eq!(error.code, error_code::INVALID_PARAMS);
        assert!(error.message.contains("Unknown tool: nope"), "{error:?}");
        let error = answer(request(
            "tools/call",
            json!({"name": "echo", "arguments": {"text": 3}}),
        ))
        .unwrap_err();
        assert_eq!(error.code, error_code::INVALID_PARAMS);
        let error = answer(request("resources/list", json!({}))).unwrap_err();
        assert_eq!(error.code, error_code::METHOD_NOT_FOUND);
    }

    #[test]
    fn negotiates_and_lists() {
        let result = answer(request(
            "initialize",
            json!({"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}),
        ))
        .unwrap();
        let value: serde_json::Value = serde_json::from_str(result.get()).unwrap();
        assert_eq!(value["protocolVersion"], "2025-06-18");
        let result = answer(request("tools/list", json!({}))).unwrap();
        let value: serde_json::Value = serde_json::from_str(result.get()).unwrap();
        assert_eq!(value["tools"][0]["name"], "echo");
    }
}
