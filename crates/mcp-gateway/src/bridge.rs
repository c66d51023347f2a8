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
//!
//! The state is sealed ([`mcp_runtime::seal`], with the key the replicas
//! of one gateway share) and carries what it takes to go on anywhere: the
//! call's backend, method, caller and parameters, the questions answered
//! so far with their answers, and those still open. The replica that
//! parked the call goes on with it where it waits; another replica (the
//! client's next request went elsewhere, or the first one is gone) runs
//! the call again, answering each question the backend asks again with
//! the answer it got before (the same question, under the same key), and
//! asks the client only what is new. So a backend's tool that asks runs
//! once more per replica that takes it over, up to its questions: as a
//! 2026-07-28 server's tool runs again for each round.

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
use mcp_runtime::seal::Seal;

/// How long a call waits for its client to come back with answers.
pub(super) const PARKED_FOR: Duration = Duration::from_secs(600);
/// How many calls may wait at once; the oldest gives way.
const MAX_PARKED: usize = 1024;
/// What the gateway's `requestState`s are sealed for.
const PURPOSE: &str = "mcp-manager requestState";
/// The largest `requestState` that carries its call; past it, the state
/// names the call waiting on this replica only.
const MAX_CARRIED: usize = 64 * 1024;

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
    pub(super) whose: Whose,
    /// The call's parameters, without `inputResponses`.
    pub(super) params: Value,
    /// The questions answered so far: `{key: {"q": request, "r": answer}}`.
    pub(super) answered: Map<String, Value>,
    /// Answers to give again, from a state sealed elsewhere: the same
    /// shape as `answered`.
    pub(super) replay: Map<String, Value>,
}

/// The backend, the method and the caller's subject of a call.
pub(super) type Whose = (String, String, Option<String>);

impl Parked {
    pub(super) fn new(
        events: mpsc::Receiver<Bridged>,
        task: tokio::task::AbortHandle,
        whose: Whose,
        params: Value,
    ) -> Self {
        Self {
            events,
            open: HashMap::new(),
            task,
            since: Instant::now(),
            whose,
            params,
            answered: Map::new(),
            replay: Map::new(),
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
        // Asked again, as it was asked before on another replica: the
        // answer the client gave then.
        if let Some(before) = self.replay.remove(&key) {
            if before.get("q") == Some(&request) {
                let response = before.get("r").cloned().unwrap_or_default();
                let _ = answer.send(Ok(Raw::from_value(&response)));
                self.answered.insert(key, before);
                return;
            }
        }
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
            if let Some((request, answer)) = self.open.remove(key) {
                let _ = answer.send(Ok(Raw::from_value(response)));
                self.answered
                    .insert(key.clone(), json!({"q": request, "r": response}));
            }
        }
    }

    /// The state to park this call under: sealed, carrying the call (or,
    /// past [`MAX_CARRIED`], naming only the call parked here).
    pub(super) fn state(&self, seal: &Seal, token: &str) -> Option<String> {
        let open: Map<String, Value> = self
            .open
            .iter()
            .map(|(key, (request, _))| (key.clone(), request.clone()))
            .collect();
        let whose = json!([self.whose.0, self.whose.1, self.whose.2]);
        let carried = json!({
            "t": token, "w": whose, "i": unix_now(),
            "p": self.params, "a": self.answered, "o": open,
        });
        let text = serde_json::to_vec(&carried).ok()?;
        if text.len() <= MAX_CARRIED {
            return seal.seal(PURPOSE, &text);
        }
        let named = json!({"t": token, "w": whose, "i": unix_now()});
        seal.seal(PURPOSE, &serde_json::to_vec(&named).ok()?)
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

/// What a `requestState` of the gateway says, once opened.
pub(super) struct Carried {
    /// The call it names on the replica that parked it.
    token: String,
    whose: Whose,
    /// Everything else, when it carries its call.
    call: Option<CarriedCall>,
}

/// A call as its state carries it: its parameters, the questions answered
/// (`{key: {"q", "r"}}`) and those open (`{key: request}`).
type CarriedCall = (Value, Map<String, Value>, Map<String, Value>);

impl Carried {
    /// What `state` says, when the gateway sealed it (with the key the
    /// replicas share) within [`PARKED_FOR`]; `None` for a state that is
    /// not the gateway's, an error for one that expired.
    pub(super) fn open(seal: &Seal, state: &str) -> Option<Result<Self, ErrorObject<'static>>> {
        let plain = seal.open(PURPOSE, state)?;
        let Ok(Value::Object(mut carried)) = serde_json::from_slice::<Value>(&plain) else {
            return Some(Err(ended()));
        };
        let issued = carried.get("i").and_then(Value::as_u64).unwrap_or(0);
        if unix_now().saturating_sub(issued) > PARKED_FOR.as_secs() {
            return Some(Err(ended()));
        }
        let token = carried.get("t").and_then(Value::as_str).map(str::to_owned);
        let whose = carried.get("w").and_then(Value::as_array).and_then(|w| {
            Some((
                w.first()?.as_str()?.to_owned(),
                w.get(1)?.as_str()?.to_owned(),
                w.get(2)?.as_str().map(str::to_owned),
            ))
        });
        let (Some(token), Some(whose)) = (token, whose) else {
            return Some(Err(ended()));
        };
        let object = |value: Option<Value>| match value {
            Some(Value::Object(object)) => Some(object),
            _ => None,
        };
        let call = carried.remove("p").and_then(|params| {
            Some((
                params,
                object(carried.remove("a"))?,
                object(carried.remove("o"))?,
            ))
        });
        Some(Ok(Self { token, whose, call }))
    }
}

/// The error of a `requestState` whose call cannot go on.
fn ended() -> ErrorObject<'static> {
    ErrorObject::new(
        error_code::INVALID_PARAMS,
        "`requestState` names a call that has ended or expired; send the request again without it",
    )
}

/// Seconds since the Unix epoch.
fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The calls waiting for answers, by the token their `requestState`
/// names, and the tokens already taken here (a state is good for one
/// round: sent again, it is refused rather than run again).
#[derive(Default)]
pub(super) struct ParkedCalls {
    calls: Mutex<HashMap<String, Parked>>,
    taken: Mutex<HashMap<String, Instant>>,
    counter: AtomicU64,
}

impl ParkedCalls {
    /// Puts `call` aside under `token` (from [`ParkedCalls::new_token`]).
    pub(super) fn park(&self, token: &str, call: Parked) {
        let token = token.to_owned();
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

    /// The call parked here under `token`, if it still is; the token is
    /// spent either way.
    pub(super) fn take(&self, token: &str) -> Option<Parked> {
        let mut taken = lock(&self.taken);
        taken.retain(|_, at| at.elapsed() < PARKED_FOR);
        if taken.len() < 16 * MAX_PARKED {
            taken.insert(token.to_owned(), Instant::now());
        }
        drop(taken);
        lock(&self.calls)
            .remove(token)
            .filter(|parked| parked.since.elapsed() < PARKED_FOR)
    }

    /// Whether the state of `token` was already used here.
    pub(super) fn spent(&self, token: &str) -> bool {
        lock(&self.taken).contains_key(token)
    }

    /// A fresh token to park a call under.
    pub(super) fn new_token(&self) -> String {
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

/// `params` without the `inputResponses` of a round (a `requestState`
/// that is not the gateway's is the backend's to see).
fn without_continuation(params: &Raw<'_>) -> Value {
    let mut value: Value = serde_json::from_str(params.get()).unwrap_or_default();
    if let Some(object) = value.as_object_mut() {
        object.remove("inputResponses");
    }
    value
}

/// Whether two calls' parameters are the same call: the same members but
/// `_meta` (whose envelope a 2026-07-28 client sends each round) and
/// `requestState`.
fn same_call(a: &Value, b: &Value) -> bool {
    let strip = |value: &Value| -> Value {
        let mut value = value.clone();
        if let Some(object) = value.as_object_mut() {
            object.remove("_meta");
            object.remove("requestState");
        }
        value
    };
    strip(a) == strip(b)
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
        let carried = state
            .as_deref()
            .and_then(|state| Carried::open(&self.seal, state));
        let whose = (
            backend.handle.id().as_str().to_owned(),
            method.to_owned(),
            context.principal().map(|p| p.subject.clone()),
        );
        let start = |params: Value, replay: Map<String, Value>| {
            let handle = backend.handle.clone();
            let (events, receiver) = mpsc::channel(16);
            let requester = requester(events.clone());
            let (method, progress_to) = (method.to_owned(), context.clone());
            let raw = Raw::from_value(&params);
            let task = tokio::spawn(async move {
                let result = call_backend(&handle, &method, raw, requester, &progress_to).await;
                let _ = events.send(Bridged::Done(result)).await;
            });
            let mut call = Parked::new(receiver, task.abort_handle(), whose.clone(), params);
            call.replay = replay;
            call
        };
        let asked_for = without_continuation(&params);
        let mut call = match carried {
            Some(carried) => {
                let carried = carried?;
                // A state is good for one round, for the call it was made
                // for: sent again, or with another tool or arguments, it
                // continues nothing.
                if self.parked.spent(&carried.token)
                    || carried
                        .call
                        .as_ref()
                        .is_some_and(|(params, _, _)| !same_call(params, &asked_for))
                {
                    return Err(ended());
                }
                if carried.whose != whose {
                    // Another caller's, or another call's: as if it had
                    // ended (it is cancelled, its state having leaked).
                    drop(self.parked.take(&carried.token));
                    return Err(ended());
                }
                match (self.parked.take(&carried.token), carried.call) {
                    // Parked here: it goes on where it waits (if it is the
                    // call asked for: a state too large to carry its call
                    // was not checked above).
                    (Some(mut parked), _) => {
                        if !same_call(&parked.params, &asked_for) {
                            return Err(ended());
                        }
                        parked.answer(&responses);
                        parked
                    }
                    // Parked elsewhere (or gone from here): run again,
                    // with every answer the client gave.
                    (None, Some((params, mut answered, open))) => {
                        for (key, request) in open {
                            if let Some(response) = responses.get(&key) {
                                answered.insert(key, json!({"q": request, "r": response}));
                            }
                        }
                        start(params, answered)
                    }
                    (None, None) => return Err(ended()),
                }
            }
            None => start(asked_for, Map::new()),
        };
        loop {
            if !call.open.is_empty() {
                let token = self.parked.new_token();
                let state = call.state(&self.seal, &token).ok_or_else(|| {
                    ErrorObject::new(error_code::INTERNAL_ERROR, "the call could not be parked")
                })?;
                let asked = call.input_required(&state);
                self.parked.park(&token, call);
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
    async fn parked_calls_come_back_once_by_their_token() {
        let calls = ParkedCalls::default();
        let (_events, receiver) = mpsc::channel(1);
        let task = tokio::spawn(std::future::pending::<()>());
        let token = calls.new_token();
        assert_eq!(token.len(), 32);
        calls.park(
            &token,
            Parked::new(
                receiver,
                task.abort_handle(),
                Default::default(),
                Value::Null,
            ),
        );
        assert!(calls.take("someone-else's-token").is_none());
        let parked = calls.take(&token).expect("still there");
        assert!(calls.take(&token).is_none(), "taken once");
        drop(parked);
        assert!(
            task.await.unwrap_err().is_cancelled(),
            "a dropped call is cancelled"
        );
    }

    #[tokio::test]
    async fn a_state_carries_its_call_to_every_replica_with_the_key() {
        use mcp_runtime::seal::ClusterKey;
        let key = ClusterKey([5_u8; 32]);
        let (_events, receiver) = mpsc::channel(1);
        let whose: Whose = ("ev".into(), "tools/call".into(), Some("alice".into()));
        let params = json!({"name": "ask", "arguments": {}});
        let mut call = Parked::new(
            receiver,
            tokio::spawn(async {}).abort_handle(),
            whose.clone(),
            params.clone(),
        );
        call.answered.insert(
            "q0".into(),
            json!({"q": {"method": "roots/list"}, "r": {"roots": []}}),
        );
        let (answer, _) = oneshot::channel();
        call.open.insert(
            "q1".into(),
            (json!({"method": "elicitation/create"}), answer),
        );
        let state = call.state(&Seal::new(Some(&key)), "tok").unwrap();
        let carried = Carried::open(&Seal::new(Some(&key)), &state)
            .unwrap()
            .unwrap();
        assert_eq!(carried.token, "tok");
        assert_eq!(carried.whose, whose);
        let (carried_params, answered, open) = carried.call.unwrap();
        assert_eq!(carried_params, params);
        assert_eq!(answered["q0"]["r"], json!({"roots": []}));
        assert_eq!(open["q1"]["method"], "elicitation/create");
        // Not the gateway's with another key: the backend's to see.
        assert!(Carried::open(&Seal::new(None), &state).is_none());
        assert!(Carried::open(&Seal::new(Some(&key)), "opaque-backend-state").is_none());
    }

    #[tokio::test]
    async fn a_question_asked_again_gets_the_answer_given_before() {
        let (_events, receiver) = mpsc::channel(1);
        let mut call = Parked::new(
            receiver,
            tokio::spawn(async {}).abort_handle(),
            Default::default(),
            Value::Null,
        );
        call.replay.insert(
            "q0".into(),
            json!({"q": {"method": "roots/list"}, "r": {"roots": [{"uri": "file:///a"}]}}),
        );
        let (answer, answered) = oneshot::channel();
        let declared = ClientCapabilities::default();
        call.put(
            "q0".into(),
            json!({"method": "roots/list"}),
            answer,
            &declared,
        );
        assert!(call.open.is_empty());
        assert_eq!(
            answered.await.unwrap().unwrap().get(),
            r#"{"roots":[{"uri":"file:///a"}]}"#
        );
        // Another question under a known key is asked anew.
        call.replay
            .insert("q1".into(), json!({"q": {"method": "a"}, "r": {}}));
        let (answer, _) = oneshot::channel();
        call.put("q1".into(), json!({"method": "b"}), answer, &declared);
        assert!(call.open.contains_key("q1"));
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
            Value::Null,
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
