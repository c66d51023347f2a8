//! Running an [`McpServer`]: the messages a client sends, dispatched to the
//! server's handlers, and the answers sent back through an outlet.
//!
//! A request is polled once where it arrives: one answered at once is sent
//! from there; one that waits goes on as its own task, so a slow request
//! does not hold up the others, and `notifications/cancelled` aborts that
//! task. (A handler should therefore not do long work before its first
//! `.await`: that work holds up the next message.) With a limit
//! ([`Dispatcher::limit_running`]), a request that arrives while that many
//! wait is answered at once with an error naming the limit.
//! A 2026-07-28 request that fails the checks of
//! [`mcp_protocol::mcp::stateless`] (its `_meta` envelope, its version, a
//! method the revision removed) is answered with the refusal before the
//! server sees it, as the HTTP transport answers it with its status.
//! Notifications are handled in order, one after the other. A handler that
//! panics answers `-32603` (a notification's is logged), and the
//! dispatcher serves on. A server's
//! requests to the client ([`RequestContext::request`]) go out through the
//! outlet with ids of the dispatcher's own, and the client's answers are
//! matched back to them. Used by the
//! in-process transport (the outlet is the connection's inbound channel) and
//! by every downstream transport of the `mcp-serve` crate (the outlet is
//! the writer of a byte stream, or an HTTP session's streams).

use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::Poll;

use mcp_core::{BoxFuture, HandlerResult, McpServer, Peer, RequestContext};
use mcp_protocol::jsonrpc::error_code;
use mcp_protocol::mcp::{CancelledParams, Method, View, stateless};
use mcp_protocol::raw::{Raw, RawObject};
use mcp_protocol::{ErrorObject, Message, Notification, Request, RequestId, VersionSet};
use tokio::sync::{mpsc, oneshot};
use tokio::task::{AbortHandle, JoinSet};

use crate::lock;

/// Where a dispatcher's messages go.
pub trait Outlet: Clone + Send + Sync + 'static {
    /// Sends a message; false once the other side is gone.
    fn send(&self, message: Message<'static>) -> impl Future<Output = bool> + Send;

    /// Whether the other side is gone.
    fn is_closed(&self) -> bool;
}

impl Outlet for mpsc::Sender<Message<'static>> {
    async fn send(&self, message: Message<'static>) -> bool {
        mpsc::Sender::send(self, message).await.is_ok()
    }

    fn is_closed(&self) -> bool {
        mpsc::Sender::is_closed(self)
    }
}

/// The server's requests to the client that wait for an answer.
#[derive(Default)]
pub struct Asked {
    next: i64,
    waiting: HashMap<RequestId<'static>, oneshot::Sender<HandlerResult>>,
}

impl Asked {
    /// A fresh id, and the receiver its answer will come to.
    fn ask(&mut self) -> (RequestId<'static>, oneshot::Receiver<HandlerResult>) {
        self.next += 1;
        let id = RequestId::Number(self.next);
        let (sender, receiver) = oneshot::channel();
        self.waiting.insert(id.clone(), sender);
        (id, receiver)
    }

    /// Hands an answer to whoever waits for `id`; false if nobody does.
    pub fn answer(&mut self, id: &RequestId<'_>, answer: HandlerResult) -> bool {
        match self.waiting.remove(&id.clone().into_owned()) {
            Some(waiter) => {
                let _ = waiter.send(answer);
                true
            }
            None => false,
        }
    }

    /// Hands an answering message (a response or an error) to whoever waits
    /// for it; false if it is not an answer or nobody waits for it.
    pub fn answer_message(&mut self, message: Message<'static>) -> bool {
        match message {
            Message::Response(response) => self.answer(&response.id, Ok(response.result)),
            Message::Error(error) => match error.id {
                Some(id) => self.answer(&id, Err(error.error)),
                None => false,
            },
            _ => false,
        }
    }
}

/// Shared [`Asked`].
pub type SharedAsked = Arc<Mutex<Asked>>;

/// Hands the client's `message` (a response or an error) to the request of
/// ours it answers; false when it answers none.
pub fn deliver_answer(asked: &SharedAsked, message: Message<'static>) -> bool {
    lock(asked).answer_message(message)
}

/// Forgets a request to the client whose asker went away.
struct Forget<'a>(&'a SharedAsked, RequestId<'static>);

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        lock(self.0).waiting.remove(&self.1);
    }
}

/// Sends `method` to the client through `send` with an id from `asked`,
/// and waits for the answer.
pub async fn ask_client<F, Fut>(
    asked: &SharedAsked,
    method: &str,
    params: Option<Raw<'static>>,
    send: F,
) -> HandlerResult
where
    F: FnOnce(Message<'static>) -> Fut,
    Fut: Future<Output = bool>,
{
    let (id, answer) = lock(asked).ask();
    let _forget = Forget(asked, id.clone());
    let request = Message::Request(Request {
        id,
        method: method.to_owned().into(),
        params,
    });
    if !send(request).await {
        return Err(client_gone());
    }
    answer.await.unwrap_or_else(|_| Err(client_gone()))
}

fn client_gone() -> ErrorObject<'static> {
    ErrorObject::new(
        error_code::INTERNAL_ERROR,
        "the client went away before it answered",
    )
}

/// The server's notifications and requests, sent through the outlet.
struct OutletPeer<O> {
    outlet: O,
    asked: SharedAsked,
    session: u64,
}

impl<O: Outlet> Peer for OutletPeer<O> {
    fn notify(&self, notification: Notification<'static>) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            self.outlet.send(Message::Notification(notification)).await;
        })
    }

    fn request(&self, method: &str, params: Option<Raw<'static>>) -> BoxFuture<'_, HandlerResult> {
        let method = method.to_owned();
        Box::pin(async move {
            ask_client(&self.asked, &method, params, |message| {
                self.outlet.send(message)
            })
            .await
        })
    }

    fn is_closed(&self) -> bool {
        self.outlet.is_closed()
    }

    fn session(&self) -> Option<u64> {
        Some(self.session)
    }
}

/// What of a client's message is left to its transport after [`route`]:
/// a request to run, or a request of the client's to abort. Each transport
/// keeps its own request tasks (one stream's, one HTTP exchange's), so
/// these two are its to carry out.
pub enum ClientMessage {
    /// A request: run [`answer`] in a task, and send what it gives back.
    Request(Request<'static>),
    /// `notifications/cancelled` for this request of the client's.
    Cancel(RequestId<'static>),
}

/// The one way a client's message reaches a server, whatever carried it:
/// a notification goes to the server's handler with the context `context`
/// makes, an answer goes to the request of the server's it answers (from
/// `asked`); a request and a cancellation are handed back.
pub async fn route(
    server: &dyn McpServer,
    asked: &SharedAsked,
    message: Message<'static>,
    context: impl FnOnce() -> RequestContext,
) -> Option<ClientMessage> {
    match message {
        Message::Request(request) => Some(ClientMessage::Request(request)),
        Message::Notification(notification) => {
            if notification.method == Method::Cancelled.as_str() {
                let cancelled = CancelledParams::from_params(notification.params);
                return cancelled
                    .ok()
                    .and_then(|c| c.request_id)
                    .map(|id| ClientMessage::Cancel(id.into_owned()));
            }
            let method = notification.method.clone();
            if Caught::new(server.handle_notification(notification, context()))
                .await
                .is_none()
            {
                tracing::error!("the server's handler of `{method}` panicked");
            }
            None
        }
        answer @ (Message::Response(_) | Message::Error(_)) => {
            if !deliver_answer(asked, answer) {
                tracing::debug!("an answer to no request of ours was ignored");
            }
            None
        }
    }
}

/// The refusal of a 2026-07-28 request that fails the checks of
/// [`stateless::judge`] on a transport without headers; `None` for one
/// that passes and for a session's request (told apart without parsing
/// the params when they name nothing of the envelope).
fn refused(request: &Request<'_>) -> Option<ErrorObject<'static>> {
    let text = request.params.as_ref().map(Raw::get);
    if !stateless::may_be_stateless(&request.method, text, None) {
        return None;
    }
    let object = request
        .params
        .as_ref()
        .and_then(|params| RawObject::from_cow(params.reborrow()).ok());
    stateless::judge(
        &request.method,
        object.as_ref(),
        None,
        &VersionSet::default(),
    )
    .err()
    .map(|refusal| refusal.to_error_object())
}

/// Runs one request on a server: its result or its error, as the message
/// that answers it (`-32603` if the handler panics).
pub async fn answer(
    server: &dyn McpServer,
    request: Request<'static>,
    context: RequestContext,
) -> Message<'static> {
    let id = request.id.clone();
    match Caught::new(server.handle_request(request, context)).await {
        Some(Ok(result)) => Message::response(id, result),
        Some(Err(error)) => Message::error(Some(id), error),
        None => Message::error(Some(id), panicked()),
    }
}

/// The error a request gets when its handler panicked.
pub(crate) fn panicked() -> ErrorObject<'static> {
    ErrorObject::new(
        error_code::INTERNAL_ERROR,
        "the server failed (its handler panicked) while handling the request",
    )
}

/// A handler's future that ends with `None` if it panics, so that one
/// handler's panic does not take down the task that polls it (a
/// dispatcher's, or a caller's).
pub(crate) struct Caught<F>(F);

impl<F: Future + Unpin> Caught<F> {
    pub(crate) fn new(work: F) -> Self {
        Self(work)
    }
}

impl<F: Future + Unpin> Future for Caught<F> {
    type Output = Option<F::Output>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<Self::Output> {
        let work = &mut self.0;
        match std::panic::catch_unwind(AssertUnwindSafe(|| Pin::new(work).poll(cx))) {
            Ok(Poll::Ready(output)) => Poll::Ready(Some(output)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(_) => Poll::Ready(None),
        }
    }
}

/// Dispatches a client's messages to a server.
pub struct Dispatcher<O: Outlet> {
    server: Arc<dyn McpServer>,
    context: RequestContext,
    session: u64,
    asked: SharedAsked,
    outlet: O,
    /// The requests that wait, and whether each is a stream that never
    /// ends by itself (`subscriptions/listen`).
    running: HashMap<RequestId<'static>, (AbortHandle, bool)>,
    tasks: JoinSet<RequestId<'static>>,
    max_running: usize,
}

impl<O: Outlet> Dispatcher<O> {
    /// A dispatcher of messages for `server`, whose answers and requests
    /// go out through `outlet`.
    pub fn new(server: Arc<dyn McpServer>, outlet: O) -> Self {
        let asked = SharedAsked::default();
        let session = mcp_core::next_session_key();
        Self {
            context: RequestContext::new(Arc::new(OutletPeer {
                outlet: outlet.clone(),
                asked: asked.clone(),
                session,
            })),
            session,
            asked,
            server,
            outlet,
            running: HashMap::new(),
            tasks: JoinSet::new(),
            max_running: usize::MAX,
        }
    }

    /// Refuses requests while `max` of this client's requests wait for
    /// their answers: the one over is answered at once with an error that
    /// names the limit.
    #[must_use]
    pub fn limit_running(mut self, max: usize) -> Self {
        self.max_running = max;
        self
    }

    /// The client session its requests belong to (see [`Peer::session`]).
    pub fn session(&self) -> u64 {
        self.session
    }

    /// Handles one message from the client.
    pub async fn dispatch(&mut self, message: Message<'static>) {
        let context = &self.context;
        match route(&*self.server, &self.asked, message, || context.clone()).await {
            Some(ClientMessage::Request(request)) if let Some(refusal) = refused(&request) => {
                self.outlet
                    .send(Message::error(Some(request.id), refusal))
                    .await;
            }
            Some(ClientMessage::Request(request)) if self.running.len() >= self.max_running => {
                let refusal = ErrorObject::new(
                    error_code::INTERNAL_ERROR,
                    format!(
                        "too many requests in flight: this connection has its limit of {}",
                        self.max_running
                    ),
                );
                self.outlet
                    .send(Message::error(Some(request.id), refusal))
                    .await;
            }
            Some(ClientMessage::Request(request)) => {
                let id = request.id.clone();
                let endless = request.method == Method::SubscriptionsListen.as_str();
                let server = self.server.clone();
                let context = self.context.clone();
                let outlet = self.outlet.clone();
                // Boxed as a `dyn` future: spawned callers need its `Send`
                // stated, which the compiler cannot prove for every
                // outlet's future through an opaque type.
                let mut task: Pin<Box<dyn Future<Output = RequestId<'static>> + Send>> =
                    Box::pin(async move {
                        let id = request.id.clone();
                        outlet.send(answer(&*server, request, context).await).await;
                        id
                    });
                // Polled once here first: a request answered at once (most
                // of an in-process server's) and sent without waiting
                // needs no task of its own. One that waits goes on in a
                // task, where it can be cancelled.
                let first = std::future::poll_fn(|cx| Poll::Ready(task.as_mut().poll(cx))).await;
                if first.is_pending() {
                    let abort = self.tasks.spawn(task);
                    self.running.insert(id, (abort, endless));
                }
            }
            Some(ClientMessage::Cancel(id)) => {
                if let Some((task, _)) = self.running.remove(&id) {
                    task.abort();
                }
            }
            None => {}
        }
    }

    /// Waits until a request task ends and forgets it; pending forever when
    /// none runs. For a `select!` beside the message source.
    pub async fn reap(&mut self) {
        match self.tasks.join_next().await {
            Some(Ok(id)) => {
                self.running.remove(&id);
            }
            // Aborted (already forgotten) or panicked: nothing to answer.
            Some(Err(_)) => {}
            None => std::future::pending().await,
        }
    }

    /// Waits for every running request to finish; a listen stream, which
    /// ends only when it is cancelled, is cancelled at once.
    pub async fn drain(&mut self) {
        for (task, endless) in self.running.values() {
            if *endless {
                task.abort();
            }
        }
        while self.tasks.join_next().await.is_some() {}
        self.running.clear();
    }

    /// Aborts every running request.
    pub fn abort_all(&mut self) {
        self.tasks.abort_all();
        self.running.clear();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use super::*;

    /// Panics on `boom`, answers anything else with `{}`.
    struct Fragile;

    impl McpServer for Fragile {
        fn handle_request(
            &self,
            request: Request<'static>,
            _: RequestContext,
        ) -> BoxFuture<'_, HandlerResult> {
            Box::pin(async move {
                assert!(request.method != "boom", "a handler that panics");
                Ok(Raw::from_value(&serde_json::json!({})))
            })
        }

        fn handle_notification(
            &self,
            notification: Notification<'static>,
            _: RequestContext,
        ) -> BoxFuture<'_, ()> {
            Box::pin(async move {
                assert!(notification.method != "boom", "a handler that panics");
            })
        }
    }

    #[tokio::test]
    async fn a_panicking_handler_answers_an_internal_error_and_the_dispatcher_serves_on() {
        let (outlet, mut sent) = mpsc::channel(8);
        let mut dispatcher = Dispatcher::new(Arc::new(Fragile), outlet);
        dispatcher.dispatch(Message::request(1, "boom", None)).await;
        let Some(Message::Error(error)) = sent.recv().await else {
            panic!("an error answers the request");
        };
        assert_eq!(error.id, Some(RequestId::Number(1)));
        assert_eq!(error.error.code, error_code::INTERNAL_ERROR);
        dispatcher
            .dispatch(Message::Notification(Notification {
                method: "boom".into(),
                params: None,
            }))
            .await;
        dispatcher.dispatch(Message::request(2, "fine", None)).await;
        let Some(Message::Response(response)) = sent.recv().await else {
            panic!("the next request is answered");
        };
        assert_eq!(response.id, RequestId::Number(2));
    }

    /// Answers `wait` once `go` is notified, anything else at once.
    struct Gated(Arc<tokio::sync::Notify>);

    impl McpServer for Gated {
        fn handle_request(
            &self,
            request: Request<'static>,
            _: RequestContext,
        ) -> BoxFuture<'_, HandlerResult> {
            Box::pin(async move {
                if request.method == "wait" {
                    self.0.notified().await;
                }
                Ok(Raw::from_value(&serde_json::json!({})))
            })
        }

        fn handle_notification(
            &self,
            _: Notification<'static>,
            _: RequestContext,
        ) -> BoxFuture<'_, ()> {
            Box::pin(async {})
        }
    }

    #[tokio::test]
    async fn a_request_over_the_limit_is_refused_at_once_and_room_comes_back() {
        let go = Arc::new(tokio::sync::Notify::new());
        let (outlet, mut sent) = mpsc::channel(8);
        let mut dispatcher = Dispatcher::new(Arc::new(Gated(go.clone())), outlet).limit_running(2);
        dispatcher.dispatch(Message::request(1, "wait", None)).await;
        dispatcher.dispatch(Message::request(2, "wait", None)).await;
        dispatcher.dispatch(Message::request(3, "now", None)).await;
        let Some(Message::Error(refused)) = sent.recv().await else {
            panic!("the third request is refused");
        };
        assert_eq!(refused.id, Some(RequestId::Number(3)));
        assert_eq!(refused.error.code, error_code::INTERNAL_ERROR);
        assert!(
            refused.error.message.contains("limit of 2"),
            "{}",
            refused.error.message
        );
        go.notify_one();
        let Some(Message::Response(first)) = sent.recv().await else {
            panic!("a waiting request is answered");
        };
        dispatcher.reap().await;
        dispatcher.dispatch(Message::request(4, "now", None)).await;
        let Some(Message::Response(fourth)) = sent.recv().await else {
            panic!("once one has finished, a request is served again");
        };
        assert_eq!(fourth.id, RequestId::Number(4));
        assert!(matches!(first.id, RequestId::Number(1 | 2)));
        go.notify_one();
        dispatcher.drain().await;
    }
}
