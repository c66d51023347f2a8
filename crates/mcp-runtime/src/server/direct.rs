//! Requests to a ready in-process server, made on the caller's own task.
//!
//! An in-process server needs no connection actor to carry a request: the
//! caller calls the server's handler and awaits it, with the request's
//! timeout around it. That saves the hops through the connection's task
//! and the in-process transport's task and back, and the request table.
//! Everything the actor would have done for such a request is done here:
//!
//! - the timeout, started over by each progress notification and each
//!   request the server puts to the client, as the actor does it; when it
//!   runs out, or the caller stops waiting, the handler's future is dropped
//!   (the in-process way of `notifications/cancelled`);
//! - progress goes straight to the caller's sink, under the caller's own
//!   token (nothing needs swapping: no other caller shares this path);
//! - the server's requests to the client go to this request's caller, and
//!   only to it (`-32601` when it has no client to ask; `ping` answered);
//! - the server's other notifications go to the connection, which
//!   publishes them as it publishes those of any other request; a list
//!   change also invalidates the cached lists at once, so that the caller
//!   who asked for the change sees it in the next list it asks for;
//! - a handler that panics answers `-32603` instead of taking the caller's
//!   task down.
//!
//! A request whose `_meta` names a progress token nobody listens for, and
//! every request of a stateless (2026-07-28) session, still go through the
//! actor, which rewrites their params.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::Poll;
use std::time::Duration;

use mcp_core::{BoxFuture, HandlerResult, McpServer, Peer, RequestContext};
use mcp_protocol::jsonrpc::error_code;
use mcp_protocol::mcp::{Method, meta_keys};
use mcp_protocol::raw::Raw;
use mcp_protocol::{ErrorObject, Message, Notification, Request, RequestId};
use serde_json::json;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::connection::ProgressSink;
use crate::dispatch::{self, Caught};
use crate::error::{Error, Result};
use crate::server::Shared;
use crate::transport::Inbound;
use crate::transport::inprocess::InProcessEnd;

/// A ready in-process server, for requests made on the caller's task.
pub(crate) struct Direct {
    server: Arc<dyn McpServer>,
    lane: Lane,
    /// The context of a request with neither a progress sink nor a client
    /// to ask: made once, shared by all of them.
    plain: RequestContext,
}

impl Direct {
    /// The fast path to the server behind `end`, for a server whose
    /// counters are `shared`.
    pub(crate) fn new(end: InProcessEnd, shared: Arc<Shared>) -> Self {
        let lane = Lane {
            inbound: end.inbound,
            shared,
            session: end.session,
        };
        Self {
            server: end.server,
            plain: RequestContext::new(Arc::new(lane.clone())),
            lane,
        }
    }

    /// Whether a request can take this path: one whose params name a
    /// progress token has to come with a sink for its progress (else the
    /// actor removes the token, so that the server sends none).
    pub(crate) fn takes(params: Option<&Raw<'static>>, progress: Option<&ProgressSink>) -> bool {
        progress.is_some()
            || !params.is_some_and(|raw| raw.get().contains(meta_keys::PROGRESS_TOKEN))
    }

    /// Runs one request on the server, on this task, within `timeout`.
    pub(crate) async fn request(
        &self,
        id: i64,
        method: Cow<'static, str>,
        params: Option<Raw<'static>>,
        timeout: Duration,
        progress: Option<ProgressSink>,
        requester: Option<RequestContext>,
    ) -> Result<Raw<'static>> {
        let began = Instant::now();
        let caller = (progress.is_some() || requester.is_some()).then(|| {
            Arc::new(CallerPeer {
                lane: self.lane.clone(),
                progress,
                requester,
                began,
                touched: AtomicU64::new(0),
            })
        });
        let context = match &caller {
            Some(caller) => RequestContext::new(caller.clone()),
            None => self.plain.clone(),
        };
        let request = Request {
            id: RequestId::Number(id),
            method,
            params,
        };
        let mut work = Caught::new(self.server.handle_request(request, context));
        // Most requests are answered at once: no timer for those.
        let first = std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut work).poll(cx))).await;
        if let Poll::Ready(answer) = first {
            return answered(answer);
        }
        let mut deadline = began + timeout;
        loop {
            if let Ok(answer) = tokio::time::timeout_at(deadline, &mut work).await {
                return answered(answer);
            }
            // Progress or a question to the client since: start over from it.
            match caller.as_ref().and_then(|caller| caller.touched_at()) {
                Some(touched) if touched + timeout > deadline => deadline = touched + timeout,
                _ => return Err(Error::timeout(timeout)),
            }
        }
    }
}

/// A handler's answer as the caller gets it.
fn answered(answer: Option<HandlerResult>) -> Result<Raw<'static>> {
    match answer.unwrap_or_else(|| Err(dispatch::panicked())) {
        Ok(result) => Ok(result),
        Err(error) => Err(Error::rpc(error)),
    }
}

/// Where the server's notifications go: to the connection, as the
/// in-process transport's own would.
#[derive(Clone)]
struct Lane {
    inbound: mpsc::Sender<Inbound>,
    shared: Arc<Shared>,
    session: u64,
}

impl Lane {
    async fn forward(&self, notification: Notification<'static>) {
        if matches!(
            Method::from_name(&notification.method),
            Some(Method::ToolListChanged | Method::ResourceListChanged | Method::PromptListChanged)
        ) {
            self.shared.invalidate_lists();
        }
        let message = Message::Notification(notification);
        // A connection that is gone publishes nothing more.
        let _ = self.inbound.send(Inbound::Message(message)).await;
    }
}

/// What a request with nobody to ask gets when the server asks anyway.
fn nobody_to_ask(method: &str) -> HandlerResult {
    if method == Method::Ping.as_str() {
        return Ok(Raw::from_value(&json!({})));
    }
    Err(ErrorObject::new(
        error_code::METHOD_NOT_FOUND,
        format!(
            "`{method}` has no client to go to: the request it was sent for came from no client that can be asked"
        ),
    ))
}

impl Peer for Lane {
    fn notify(&self, notification: Notification<'static>) -> BoxFuture<'_, ()> {
        Box::pin(self.forward(notification))
    }

    fn request(&self, method: &str, _: Option<Raw<'static>>) -> BoxFuture<'_, HandlerResult> {
        Box::pin(std::future::ready(nobody_to_ask(method)))
    }

    fn is_closed(&self) -> bool {
        self.inbound.is_closed()
    }

    fn session(&self) -> Option<u64> {
        Some(self.session)
    }
}

/// The peer of a request whose caller takes progress or can be asked.
struct CallerPeer {
    lane: Lane,
    progress: Option<ProgressSink>,
    requester: Option<RequestContext>,
    began: Instant,
    /// When the request last showed it is alive, in nanoseconds after
    /// `began`; 0 when it has not.
    touched: AtomicU64,
}

impl CallerPeer {
    fn touch(&self) {
        let nanos = u64::try_from(self.began.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.touched.store(nanos.max(1), Ordering::Relaxed);
    }

    fn touched_at(&self) -> Option<Instant> {
        match self.touched.load(Ordering::Relaxed) {
            0 => None,
            nanos => Some(self.began + Duration::from_nanos(nanos)),
        }
    }
}

impl Peer for CallerPeer {
    fn notify(&self, notification: Notification<'static>) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            match &self.progress {
                Some(sink) if notification.method == Method::Progress.as_str() => {
                    self.touch();
                    // Progress is advisory: a caller too slow to take it
                    // loses some, as through the connection.
                    let _ = sink.try_send(notification);
                }
                _ => self.lane.forward(notification).await,
            }
        })
    }

    fn request(&self, method: &str, params: Option<Raw<'static>>) -> BoxFuture<'_, HandlerResult> {
        let method = method.to_owned();
        Box::pin(async move {
            match self.requester.as_ref() {
                Some(requester) if method != Method::Ping.as_str() => {
                    self.touch();
                    let answer = requester.request(&method, params).await;
                    self.touch();
                    answer
                }
                _ => nobody_to_ask(&method),
            }
        })
    }

    fn is_closed(&self) -> bool {
        self.lane.is_closed()
    }

    fn session(&self) -> Option<u64> {
        Some(self.lane.session)
    }
}
