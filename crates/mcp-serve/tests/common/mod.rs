//! What the tests of the serving crate share.
#![allow(clippy::unwrap_used, dead_code)]

use mcp_core::{BoxFuture, HandlerResult, McpServer, RequestContext};
use mcp_protocol::raw::Raw;
use mcp_protocol::{Notification, Request};

/// Keeps the context of every request, as a gateway keeps its sessions'
/// peers for notifications.
#[derive(Default)]
pub(crate) struct Keeper(pub(crate) std::sync::Mutex<Vec<RequestContext>>);

impl McpServer for Keeper {
    fn handle_request(
        &self,
        _: Request<'static>,
        context: RequestContext,
    ) -> BoxFuture<'_, HandlerResult> {
        self.0.lock().unwrap().push(context);
        Box::pin(async { Ok(Raw::from_value(&serde_json::json!({}))) })
    }

    fn handle_notification(
        &self,
        _: Notification<'static>,
        _: RequestContext,
    ) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}
