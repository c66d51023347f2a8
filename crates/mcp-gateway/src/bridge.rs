//! Requests of a stateful backend to a stateless (2026-07-28) client.
//!
//! A stateless request has no stream on which the gateway could ask its
//! client anything, so when a backend in a session asks (sampling,
//! elicitation, roots) while serving such a request, the gateway answers
//! the client with `resultType: "input_required"`: the questions in
//! `inputRequests`, and in `requestState` an unguessable token under which
//! the backend's call stays open. The client sends the request again with
//! that state and its `inputResponses`; the answers go to the waiting
//! backend, and the call goes on until its result, or the next questions.
//! A call nobody comes back for is cancelled upstream after
//! [`PARKED_FOR`].

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mcp_core::{BoxFuture, HandlerResult, Peer, RequestContext};
use mcp_protocol::jsonrpc::error_code;
use mcp_protocol::mcp::ClientCapabilities;
use mcp_protocol::mcp::stateless;
use mcp_protocol::raw::Raw;
use mcp_protocol::{ErrorObject, Notification};
use serde_json::{Map, Value, json};
use tokio::sync::{mpsc, oneshot};

use crate::Backend;
use crate::held::lock;
use crate::route::{as_stateless_result, call_backend, continuation};

/// How long a call waits for its client to come back with answers.
pub(super) const PARKED_FOR: Duration = Duration::from_secs(600);
/// How many calls may wait at once; the oldest gives way.
const MAX_PARKED: usize = 1024;
/// What a `requestState` of the gateway starts with.
const STATE_PREFIX: &str = "mcp-manager.";

/// What a bridged call brings: a question for the client, or its end.
pub(super) enum Bridged {
    Asked {
        key: String,
        request: Value,
        answer: oneshot::Sender<HandlerResult>,
    },
    Done(HandlerResult),
}

/// The client as the backend sees it: each request becomes a question.
pub(super) struct Bridge {
    events: mpsc::Sender<Bridged>,
    next: AtomicU64,
}

impl Bridge {
    pub(super) fn new(events: mpsc::Sender<Bridged>) -> Self {
        Self {
            events,
            next: AtomicU64::new(0),
        }
    }
}

impl Peer for Bridge {
    fn notify(&self, _: Notification<'static>) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }

    fn request(&self, method: &str, params: Option<Raw<'static>>) -> BoxFuture<'_, HandlerResult> {
        let key = format!("q{}", self.next.fetch_add(1, Ordering::Relaxed));
        let mut request = Map::new();
        request.insert("method".to_owned(), Value::from(method));
        if let Some(params) = params.and_then(|p| serde_json::from_str::<Value>(p.get()).ok()) {
            request.insert("params".to_owned(), params);
        }
        let request = Value::Object(request);
        Box::pin(async move {
            let (answer, answered) = oneshot::channel();
            let asked = Bridged::Asked {
                key,
                request,
                answer,
            };
            if self.events.send(asked).await.is_err() {
                return Err(gone());
            }
            answered.await.unwrap_or_else(|_| Err(gone()))
        })
    }
}

fn gone() -> ErrorObject<'static> {
    ErrorObject::new(
        error_code::INTERNAL_ERROR,
        "the client did not come back with an answer",
    )
}

/// A backend call waiting for its client's answers.
pub(super) struct Parked {
    pub(super) events: mpsc::Receiver<Bridged>,
    /// The open questions: what was asked, and where the answer goes.
    pub(super) open: HashMap<String, (Value, oneshot::Sender<HandlerResult>)>,
    pub(super) task: tokio::task::AbortHandle,
    since: Instant,
    /// Whose call it is: the backend, the method and the caller's subject
    /// (with access tokens), so that a `requestState` resumes nothing else.
    pub(super) whose: (String, String, Option<String>),
}

impl Parked {
    pub(super) fn new(
        events: mpsc::Receiver<Bridged>,
        task: tokio::task::AbortHandle,
        whose: (String, String, Option<String>),
    ) -> Self {
        Self {
            events,
            open: HashMap::new(),
            task,
            since: Instant::now(),
            whose,
        }
    }

    /// Keeps a question open for the client, or, when the client did not
    /// declare the capability it needs, answers it at once with `-32021`
    /// naming what the client lacks, as such a client would: the backend
    /// decides what to make of that.
    pub(super) fn put(
        &mut self,
        key: String,
        request: Value,
        answer: oneshot::Sender<HandlerResult>,
        declared: &ClientCapabilities,
    ) {
        let needs = request
            .get("method")
            .and_then(Value::as_str)
            .and_then(stateless::capability_for);
        match needs {
            Some(needs) if !stateless::declares(declared, needs) => {
                let _ = answer.send(Err(stateless::missing_capabilities(&[needs])));
            }
            _ => {
                self.open.insert(key, (request, answer));
            }
        }
    }

    /// Hands the client's answers to the questions they answer.
    pub(super) fn answer(&mut self, responses: &Map<String, Value>) {
        for (key, response) in responses {
            if let Some((_, answer)) = self.open.remove(key) {
                let _ = answer.send(Ok(Raw::from_value(response)));
            }
        }
    }

    /// The `input_required` result asking the open questions, with `state`.
    pub(super) fn input_required(&self, state: &str) -> Raw<'static> {
        let requests: Map<String, Value> = self
            .open
            .iter()
            .map(|(key, (request, _))| (key.clone(), request.clone()))
            .collect();
        Raw::from_value(&json!({
            "resultType": "input_required",
            "inputRequests": requests,
            "requestState": state,
        }))
    }
}

impl Drop for Parked {
    fn drop(&mut self) {
        // Nobody will answer: the backend's call is cancelled upstream.
        self.task.abort();
    }
}

/// The calls waiting for answers, by the token in their `requestState`.
#[derive(Default)]
pub(super) struct ParkedCalls {
    calls: Mutex<HashMap<String, Parked>>,
    counter: AtomicU64,
}

impl ParkedCalls {
    /// A fresh `requestState` to park a call under.
    pub(super) fn new_state(&self) -> String {
        format!("{STATE_PREFIX}{}", self.token())
    }

    /// Puts `call` aside under `state` (from [`ParkedCalls::new_state`]).
    pub(super) fn park(&self, state: &str, call: Parked) {
        let token = state.strip_prefix(STATE_PREFIX).unwrap_or(state).to_owned();
        let mut calls = lock(&self.calls);
        calls.retain(|_, parked| parked.since.elapsed() < PARKED_FOR);
        if calls.len() >= MAX_PARKED {
            let oldest = calls
                .iter()
                .min_by_key(|(_, parked)| parked.since)
                .map(|(token, _)| token.clone());
            if let Some(oldest) = oldest {
                calls.remove(&oldest);
            }
        }
        calls.insert(token, call);
    }

    /// The call a `requestState` of the gateway names: `None` for a state
    /// that is not the gateway's, an error for one that expired.
    pub(super) fn take(&self, state: &str) -> Option<Result<Parked, ErrorObject<'static>>> {
        let token = state.strip_prefix(STATE_PREFIX)?;
        let found = lock(&self.calls)
            .remove(token)
            .filter(|parked| parked.since.elapsed() < PARKED_FOR);
        Some(found.ok_or_else(|| {
            ErrorObject::new(
                error_code::INVALID_PARAMS,
                "`requestState` names a call that has ended or expired; send the request again without it",
            )
        }))
    }

    fn token(&self) -> String {
        let count = self.counter.fetch_add(1, Ordering::Relaxed);
        let half = |salt: u8| {
            let mut hasher = RandomState::new().build_hasher();
            hasher.write_u8(salt);
            hasher.write_u64(count);
            hasher.finish()
        };
        format!("{:016x}{:016x}", half(0), half(1))
    }
}

/// The requester for a backend call bridged this way.
pub(super) fn requester(events: mpsc::Sender<Bridged>) -> RequestContext {
    RequestContext::new(Arc::new(Bridge::new(events)))
}

impl crate::Gateway {
    /// A stateless client's request to a stateful backend; see
    /// [`bridge`]. A `requestState` of the gateway's continues the call it
    /// names with the client's `inputResponses`; otherwise a new call starts.
    pub(crate) async fn bridged(
        &self,
        backend: &Backend,
        method: &str,
        params: Raw<'static>,
        declared: &ClientCapabilities,
        context: &RequestContext,
    ) -> HandlerResult {
        let (state, responses) = continuation(&params);
        let resumed = state.as_deref().and_then(|state| self.parked.take(state));
        let whose = (
            backend.handle.id().as_str().to_owned(),
            method.to_owned(),
            context.principal().map(|p| p.subject.clone()),
        );
        let mut call = match resumed {
            Some(parked) => {
                let mut parked = parked?;
                if parked.whose != whose {
                    // Another caller's, or another call's: as if it had
                    // ended (it is cancelled, its state having leaked).
                    parked.task.abort();
                    return Err(ErrorObject::new(
                        error_code::INVALID_PARAMS,
                        "`requestState` names a call that has ended or expired; send the request again without it",
                    ));
                }
                parked.answer(&responses);
                parked
            }
            None => {
                let handle = backend.handle.clone();
                let (events, receiver) = mpsc::channel(16);
                let requester = requester(events.clone());
                let (method, progress_to) = (method.to_owned(), context.clone());
                let task = tokio::spawn(async move {
                    let result =
                        call_backend(&handle, &method, params, requester, &progress_to).await;
                    let _ = events.send(Bridged::Done(result)).await;
                });
                Parked::new(receiver, task.abort_handle(), whose)
            }
        };
        loop {
            if !call.open.is_empty() {
                let state = self.parked.new_state();
                let asked = call.input_required(&state);
                self.parked.park(&state, call);
                return Ok(asked);
            }
            let event = call.events.recv().await;
            match event {
                Some(Bridged::Asked {
                    key,
                    request,
                    answer,
                }) => {
                    call.put(key, request, answer, declared);
                    // Questions asked at the same moment go out together.
                    tokio::task::yield_now().await;
                    while let Ok(more) = call.events.try_recv() {
                        match more {
                            Bridged::Asked {
                                key,
                                request,
                                answer,
                            } => {
                                call.put(key, request, answer, declared);
                            }
                            Bridged::Done(result) => {
                                return result.map(|r| as_stateless_result(method, r));
                            }
                        }
                    }
                }
                Some(Bridged::Done(result)) => {
                    return result.map(|r| as_stateless_result(method, r));
                }
                None => {
                    return Err(ErrorObject::new(
                        error_code::INTERNAL_ERROR,
                        "the backend's call ended without an answer",
                    ));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn parked_calls_come_back_once_by_their_state() {
        let calls = ParkedCalls::default();
        let (_events, receiver) = mpsc::channel(1);
        let task = tokio::spawn(std::future::pending::<()>());
        let state = calls.new_state();
        calls.park(
            &state,
            Parked::new(receiver, task.abort_handle(), Default::default()),
        );
        assert!(state.starts_with(STATE_PREFIX) && state.len() == STATE_PREFIX.len() + 32);
        assert!(calls.take("someone-else's-state").is_none());
        let parked = calls.take(&state).expect("ours").expect("still there");
        assert!(calls.take(&state).expect("ours").is_err(), "taken once");
        drop(parked);
        assert!(
            task.await.unwrap_err().is_cancelled(),
            "a dropped call is cancelled"
        );
    }

    #[tokio::test]
    async fn questions_and_answers_meet() {
        let (events, mut receiver) = mpsc::channel(4);
        let bridge = Bridge::new(events);
        let asking = tokio::spawn(async move {
            bridge
                .request("roots/list", Some(Raw::from_value(&json!({}))))
                .await
        });
        let Some(Bridged::Asked {
            key,
            request,
            answer,
        }) = receiver.recv().await
        else {
            panic!("no question");
        };
        assert_eq!(request, json!({"method": "roots/list", "params": {}}));
        let (_, idle) = mpsc::channel(1);
        let mut parked = Parked::new(
            idle,
            tokio::spawn(async {}).abort_handle(),
            Default::default(),
        );
        parked.open.insert(key.clone(), (request, answer));
        let asked: Value = serde_json::from_str(parked.input_required("s").get()).unwrap();
        assert_eq!(asked["inputRequests"][&key]["method"], "roots/list");
        let mut responses = Map::new();
        responses.insert(key, json!({"roots": []}));
        parked.answer(&responses);
        let answered = asking.await.unwrap().unwrap();
        assert_eq!(answered.get(), r#"{"roots":[]}"#);
    }
}
