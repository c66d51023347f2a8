//! The connection's state machine on virtual time: every test says what
//! time it is, so deadlines, health checks and backpressure are exact and
//! nothing sleeps.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use mcp_core::{BoxFuture, Peer, RequestContext, ServerId};
use mcp_protocol::raw::Raw;
use mcp_protocol::{ErrorObject, Message, Notification, ProtocolVersion, RequestId};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::machine::{Event, Machine, OUTBOX_HIGH_WATER};
use super::{ConnCommand, ConnectionSettings, Exit};
use crate::error::{ErrorKind, Result};
use crate::observe::NoObserver;
use crate::server::{Shared, UpstreamProtocol};

const STARTUP: Duration = Duration::from_secs(5);
const HEALTH_EVERY: Duration = Duration::from_secs(30);
const HEALTH_TIMEOUT: Duration = Duration::from_secs(2);

fn settings(protocol: UpstreamProtocol, health: Option<Duration>) -> ConnectionSettings {
    ConnectionSettings {
        server: ServerId::new("s").expect("a valid id"),
        startup_timeout: STARTUP,
        health_interval: health,
        health_timeout: HEALTH_TIMEOUT,
        grace: Duration::ZERO,
        protocol,
        roots: None,
    }
}

/// A machine and the shared counters it takes ids from, started at `t0`.
fn start(
    protocol: UpstreamProtocol,
    health: Option<Duration>,
    t0: Instant,
) -> (Machine, Arc<Shared>) {
    let shared = Arc::new(Shared::new(Arc::new(NoObserver)));
    let machine = Machine::new(settings(protocol, health), Arc::clone(&shared), t0);
    (machine, shared)
}

/// Everything the machine wants to send, as JSON.
fn sent(machine: &mut Machine) -> Vec<Value> {
    std::iter::from_fn(|| machine.poll_transmit())
        .map(|message| serde_json::to_value(&message).expect("a message serializes"))
        .collect()
}

fn events(machine: &mut Machine) -> Vec<Event> {
    std::iter::from_fn(|| machine.poll_event()).collect()
}

fn answer(id: i64, result: &Value) -> Message<'static> {
    Message::response(id, Raw::from_value(result))
}

fn initialize_result(version: &str) -> Value {
    json!({
        "protocolVersion": version,
        "capabilities": {"tools": {}},
        "serverInfo": {"name": "fake", "version": "1.0"},
    })
}

/// A stateful machine past its handshake at `t0`.
fn ready(health: Option<Duration>, t0: Instant) -> (Machine, Arc<Shared>) {
    let (mut machine, shared) = start(UpstreamProtocol::Stateful, health, t0);
    let hello = sent(&mut machine);
    let id = hello[0]["id"].as_i64().expect("a numeric id");
    machine.handle_message(answer(id, &initialize_result("2025-11-25")), t0);
    assert!(matches!(events(&mut machine)[..], [Event::Ready(_)]));
    assert_eq!(sent(&mut machine)[0]["method"], "notifications/initialized");
    (machine, shared)
}

type Reply = oneshot::Receiver<Result<Raw<'static>>>;

struct Call {
    reply: Reply,
    progress: mpsc::Receiver<Notification<'static>>,
}

fn request(
    shared: &Shared,
    params: Option<Value>,
    timeout: Duration,
    enqueued: Instant,
    requester: Option<RequestContext>,
) -> (i64, ConnCommand, Call) {
    let id = shared.next_id();
    let (reply_to, reply) = oneshot::channel();
    let (sink, progress) = mpsc::channel(4);
    let command = ConnCommand::Request {
        id,
        method: Cow::Borrowed("tools/call"),
        params: params.as_ref().map(Raw::from_value),
        timeout,
        enqueued,
        progress: Some(sink),
        requester,
        reply: reply_to,
    };
    (id, command, Call { reply, progress })
}

fn outcome(reply: &mut Reply) -> Result<Value> {
    reply
        .try_recv()
        .expect("the caller was answered")
        .map(|raw| raw.parse().expect("a JSON result"))
}

/// A client of session `0` that can be asked; it is never actually asked
/// here.
struct Client(u64);

impl Peer for Client {
    fn notify(&self, _: Notification<'static>) -> BoxFuture<'_, ()> {
        Box::pin(std::future::ready(()))
    }

    fn session(&self) -> Option<u64> {
        Some(self.0)
    }
}

#[test]
fn a_stateful_handshake_is_initialize_then_initialized() {
    let t0 = Instant::now();
    let (mut machine, _) = start(UpstreamProtocol::Stateful, None, t0);
    assert!(!machine.is_ready());
    assert!(
        !machine.accepts_commands(),
        "no command before the handshake"
    );
    let hello = sent(&mut machine);
    assert_eq!(hello.len(), 1);
    assert_eq!(hello[0]["method"], "initialize");
    assert_eq!(hello[0]["params"]["protocolVersion"], "2025-11-25");
    assert_eq!(hello[0]["params"]["clientInfo"]["name"], "mcp-manager");
    assert_eq!(machine.poll_timeout(), Some(t0 + STARTUP));
    let id = hello[0]["id"].as_i64().expect("numeric");
    machine.handle_message(answer(id, &initialize_result("2025-06-18")), t0);
    match &events(&mut machine)[..] {
        [Event::Ready(info)] => {
            assert_eq!(info.protocol_version.as_str(), "2025-06-18");
            assert_eq!(info.server_info.name, "fake");
        }
        _ => panic!("expected exactly one Ready event"),
    }
    assert!(machine.is_ready() && machine.accepts_commands());
    assert_eq!(
        sent(&mut machine),
        [json!({"jsonrpc": "2.0", "method": "notifications/initialized"})]
    );
    assert_eq!(machine.poll_timeout(), None, "nothing is due");
}

#[test]
fn a_handshake_unanswered_by_the_startup_timeout_fails_the_start() {
    let t0 = Instant::now();
    let (mut machine, _) = start(UpstreamProtocol::Stateful, None, t0);
    sent(&mut machine);
    machine.handle_timeout(t0 + STARTUP - Duration::from_millis(1));
    assert!(machine.take_exit().is_none(), "not yet");
    machine.handle_timeout(t0 + STARTUP);
    match machine.take_exit() {
        Some(Exit::StartFailed(error)) => {
            assert_eq!(*error.kind(), ErrorKind::Start);
            assert!(
                error.message().contains("`initialize` within 5000 ms"),
                "{error}"
            );
        }
        other => panic!("expected a failed start, got {other:?}"),
    }
}

#[test]
fn an_answer_in_a_version_we_do_not_speak_fails_the_start() {
    let t0 = Instant::now();
    let (mut machine, _) = start(UpstreamProtocol::Stateful, None, t0);
    let id = sent(&mut machine)[0]["id"].as_i64().expect("numeric");
    machine.handle_message(answer(id, &initialize_result("1999-01-01")), t0);
    assert!(events(&mut machine).is_empty());
    match machine.take_exit() {
        Some(Exit::StartFailed(error)) => assert!(error.message().contains("1999-01-01")),
        other => panic!("expected a failed start, got {other:?}"),
    }
}

#[test]
fn auto_falls_back_to_initialize_when_discover_is_refused() {
    let t0 = Instant::now();
    let (mut machine, _) = start(UpstreamProtocol::Auto, None, t0);
    let discover = sent(&mut machine);
    assert_eq!(discover[0]["method"], "server/discover");
    assert_eq!(
        discover[0]["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"],
        "2026-07-28"
    );
    let id = discover[0]["id"].as_i64().expect("numeric");
    let later = t0 + Duration::from_secs(1);
    machine.handle_message(
        Message::error(
            Some(id.into()),
            ErrorObject::new(-32601, "Method not found"),
        ),
        later,
    );
    let init = sent(&mut machine);
    assert_eq!(init[0]["method"], "initialize");
    assert_eq!(
        machine.poll_timeout(),
        Some(later + STARTUP),
        "a fresh startup deadline"
    );
    assert!(machine.take_exit().is_none());
}

/// An `Auto` machine whose discovery was answered at `t0`: the
/// `initialize` it then sends.
fn discovered_in_auto(t0: Instant) -> (Machine, Arc<Shared>, i64) {
    let (mut machine, shared) = start(UpstreamProtocol::Auto, None, t0);
    let id = sent(&mut machine)[0]["id"].as_i64().expect("numeric");
    let discovered = json!({
        "supportedVersions": ["2025-11-25", "2026-07-28"],
        "capabilities": {"tools": {}},
    });
    machine.handle_message(answer(id, &discovered), t0);
    assert!(
        events(&mut machine).is_empty(),
        "not ready after discovery alone"
    );
    let init = sent(&mut machine);
    assert_eq!(init[0]["method"], "initialize");
    let id = init[0]["id"].as_i64().expect("numeric");
    (machine, shared, id)
}

#[test]
fn auto_serves_both_generations_when_the_server_answers_both() {
    let t0 = Instant::now();
    let (mut machine, shared, init) = discovered_in_auto(t0);
    machine.handle_message(answer(init, &initialize_result("2025-11-25")), t0);
    match &events(&mut machine)[..] {
        [Event::Ready(info)] => {
            assert!(info.dual);
            assert_eq!(info.protocol_version, ProtocolVersion::V2025_11_25);
        }
        _ => panic!("expected Ready"),
    }
    assert_eq!(sent(&mut machine)[0]["method"], "notifications/initialized");
    assert!(!machine.is_stateless(), "requests go on the session");
    // A request without the envelope gets none; one with it keeps its own.
    let (_, command, _plain) = request(&shared, Some(json!({"name": "echo"})), STARTUP, t0, None);
    machine.handle_command(command, t0);
    assert!(sent(&mut machine)[0]["params"].get("_meta").is_none());
    let theirs = json!({"name": "echo", "_meta": {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
    }});
    let (_, command, _enveloped) = request(&shared, Some(theirs.clone()), STARTUP, t0, None);
    machine.handle_command(command, t0);
    assert_eq!(
        sent(&mut machine)[0]["params"],
        theirs,
        "passed on as it is"
    );
}

#[test]
fn auto_is_stateless_when_initialize_fails_or_goes_unanswered_after_discovery() {
    let t0 = Instant::now();
    let (mut refused, _, init) = discovered_in_auto(t0);
    let error = ErrorObject::new(-32601, "Method not found");
    refused.handle_message(Message::error(Some(init.into()), error), t0);
    match &events(&mut refused)[..] {
        [Event::Ready(info)] => assert!(!info.dual && !info.protocol_version.is_stateful()),
        _ => panic!("expected Ready"),
    }
    assert!(refused.is_stateless());

    let (mut silent, _, _) = discovered_in_auto(t0);
    silent.handle_timeout(t0 + STARTUP + Duration::from_millis(1));
    assert!(matches!(events(&mut silent)[..], [Event::Ready(_)]));
    assert!(silent.is_stateless());
    assert!(silent.take_exit().is_none());
}

#[test]
fn stateless_does_not_fall_back_and_fails_on_a_refusal() {
    let t0 = Instant::now();
    let (mut machine, _) = start(UpstreamProtocol::Stateless, None, t0);
    let id = sent(&mut machine)[0]["id"].as_i64().expect("numeric");
    machine.handle_message(
        Message::error(
            Some(id.into()),
            ErrorObject::new(-32601, "Method not found"),
        ),
        t0,
    );
    assert!(sent(&mut machine).is_empty());
    assert!(matches!(machine.take_exit(), Some(Exit::StartFailed(_))));
}

#[test]
fn discover_is_retried_once_when_the_server_names_our_version() {
    let t0 = Instant::now();
    let (mut machine, _) = start(UpstreamProtocol::Stateless, None, t0);
    let refuse = |id: i64| {
        let mut error = ErrorObject::new(-32022, "Unsupported protocol version");
        error.data = Some(Raw::from_value(&json!({"supported": ["2026-07-28"]})));
        Message::error(Some(id.into()), error)
    };
    let first = sent(&mut machine)[0]["id"].as_i64().expect("numeric");
    machine.handle_message(refuse(first), t0);
    let second = sent(&mut machine);
    assert_eq!(second[0]["method"], "server/discover", "tried again");
    let second = second[0]["id"].as_i64().expect("numeric");
    assert_ne!(first, second);
    machine.handle_message(refuse(second), t0);
    assert!(sent(&mut machine).is_empty(), "only once");
    assert!(matches!(machine.take_exit(), Some(Exit::StartFailed(_))));
}

#[test]
fn a_stateless_session_adds_the_meta_to_every_request() {
    let t0 = Instant::now();
    let (mut machine, shared) = start(UpstreamProtocol::Stateless, None, t0);
    let id = sent(&mut machine)[0]["id"].as_i64().expect("numeric");
    let discovered = json!({
        "supportedVersions": ["2026-07-28"],
        "capabilities": {"tools": {}},
    });
    machine.handle_message(answer(id, &discovered), t0);
    match &events(&mut machine)[..] {
        [Event::Ready(info)] => assert_eq!(info.server_info.name, "s", "named after the entry"),
        _ => panic!("expected Ready"),
    }
    assert!(
        sent(&mut machine).is_empty(),
        "no `initialized` on the stateless path"
    );
    let (_, command, _call) = request(&shared, Some(json!({"name": "echo"})), STARTUP, t0, None);
    machine.handle_command(command, t0);
    let out = sent(&mut machine);
    let meta = &out[0]["params"]["_meta"];
    assert_eq!(
        meta["io.modelcontextprotocol/protocolVersion"],
        "2026-07-28"
    );
    assert!(meta["io.modelcontextprotocol/clientCapabilities"]["sampling"].is_object());
    assert_eq!(out[0]["params"]["name"], "echo");
}

#[test]
fn a_stateless_server_that_announces_list_changes_is_listened_to() {
    let t0 = Instant::now();
    let (mut machine, _) = start(UpstreamProtocol::Stateless, None, t0);
    let id = sent(&mut machine)[0]["id"].as_i64().unwrap();
    let discovered = json!({
        "supportedVersions": ["2026-07-28"],
        "capabilities": {"tools": {"listChanged": true}},
    });
    machine.handle_message(answer(id, &discovered), t0);
    events(&mut machine);
    let listen = sent(&mut machine);
    assert_eq!(listen[0]["method"], "subscriptions/listen");
    assert_eq!(
        listen[0]["params"]["notifications"]["toolsListChanged"],
        true
    );
    assert_eq!(
        listen[0]["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"],
        "2026-07-28"
    );
    let listen_id = listen[0]["id"].as_i64().unwrap();
    // Its acknowledgement is ours; what comes on it is the server's.
    let tag = json!({"_meta": {"io.modelcontextprotocol/subscriptionId": listen_id}});
    let ack = Message::notification(
        "notifications/subscriptions/acknowledged",
        Some(Raw::from_value(&tag)),
    );
    machine.handle_related(ack, &RequestId::Number(listen_id), t0);
    assert!(events(&mut machine).is_empty());
    // A caller's listen hears of its own.
    let theirs = json!({"_meta": {"io.modelcontextprotocol/subscriptionId": 999}});
    let ack = Message::notification(
        "notifications/subscriptions/acknowledged",
        Some(Raw::from_value(&theirs)),
    );
    machine.handle_message(ack, t0);
    assert_eq!(events(&mut machine).len(), 1);
    let changed = Message::notification("notifications/tools/list_changed", None);
    machine.handle_related(changed, &RequestId::Number(listen_id), t0);
    assert!(
        matches!(&events(&mut machine)[..], [Event::Publish(n)] if n.method == "notifications/tools/list_changed")
    );
    // It ended: opened again a little later.
    machine.handle_message(answer(listen_id, &json!({})), t0);
    assert!(sent(&mut machine).is_empty());
    let again = t0 + super::machine::LISTEN_AGAIN;
    assert_eq!(machine.poll_timeout(), Some(again));
    machine.handle_timeout(again);
    let reopened = sent(&mut machine);
    assert_eq!(reopened[0]["method"], "subscriptions/listen");
    // A server that has no such method is not asked again.
    let error = ErrorObject::new(-32601, "Method not found");
    let id = reopened[0]["id"].as_i64().unwrap();
    machine.handle_message(Message::error(Some(id.into()), error), again);
    assert_eq!(machine.poll_timeout(), None);
}

#[test]
fn a_server_without_list_changes_or_in_a_session_is_not_listened_to() {
    let t0 = Instant::now();
    let (mut machine, _) = start(UpstreamProtocol::Stateless, None, t0);
    let id = sent(&mut machine)[0]["id"].as_i64().unwrap();
    let discovered = json!({"supportedVersions": ["2026-07-28"], "capabilities": {"tools": {}}});
    machine.handle_message(answer(id, &discovered), t0);
    assert!(sent(&mut machine).is_empty());
    // A stateful session gets its announcements on the session.
    let (mut machine, _) = start(UpstreamProtocol::Stateful, None, t0);
    let id = sent(&mut machine)[0]["id"].as_i64().unwrap();
    let mut hello = initialize_result("2025-11-25");
    hello["capabilities"] = json!({"tools": {"listChanged": true}});
    machine.handle_message(answer(id, &hello), t0);
    let out = sent(&mut machine);
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0]["method"], "notifications/initialized");
}

#[test]
fn an_answer_goes_to_its_caller_under_the_callers_own_result() {
    let t0 = Instant::now();
    let (mut machine, shared) = ready(None, t0);
    let (id, command, mut call) = request(&shared, Some(json!({"name": "a"})), STARTUP, t0, None);
    machine.handle_command(command, t0);
    let out = sent(&mut machine);
    assert_eq!(out[0]["id"], id);
    assert_eq!(
        out[0]["params"],
        json!({"name": "a"}),
        "passed through untouched"
    );
    assert_eq!(machine.poll_timeout(), Some(t0 + STARTUP));
    machine.handle_message(answer(id, &json!({"content": []})), t0);
    assert_eq!(
        outcome(&mut call.reply).expect("a result"),
        json!({"content": []})
    );
    assert_eq!(machine.poll_timeout(), None, "nothing left in flight");
    // A second answer to the same id is ignored.
    machine.handle_message(answer(id, &json!({})), t0);
    assert!(sent(&mut machine).is_empty() && events(&mut machine).is_empty());
}

#[test]
fn an_error_answer_is_the_callers_rpc_error() {
    let t0 = Instant::now();
    let (mut machine, shared) = ready(None, t0);
    let (id, command, mut call) = request(&shared, None, STARTUP, t0, None);
    machine.handle_command(command, t0);
    machine.handle_message(
        Message::error(Some(id.into()), ErrorObject::new(-32602, "bad")),
        t0,
    );
    let error = outcome(&mut call.reply).expect_err("an error");
    assert_eq!(*error.kind(), ErrorKind::Rpc);
    assert_eq!(error.rpc_error().map(|e| e.code), Some(-32602));
}

#[test]
fn a_request_that_times_out_is_answered_and_cancelled_upstream() {
    let t0 = Instant::now();
    let (mut machine, shared) = ready(None, t0);
    let timeout = Duration::from_secs(3);
    let (id, command, mut call) = request(&shared, None, timeout, t0, None);
    machine.handle_command(command, t0 + Duration::from_secs(1));
    sent(&mut machine);
    assert_eq!(
        machine.poll_timeout(),
        Some(t0 + timeout),
        "time spent queued counts"
    );
    machine.handle_timeout(t0 + timeout);
    let error = outcome(&mut call.reply).expect_err("a timeout");
    assert_eq!(*error.kind(), ErrorKind::Timeout);
    assert_eq!(
        sent(&mut machine),
        [
            json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
                "params": {"requestId": id, "reason": "timed out"}})
        ]
    );
    // The late answer finds nobody and is dropped.
    machine.handle_message(answer(id, &json!({})), t0 + timeout);
    assert!(sent(&mut machine).is_empty());
}

#[test]
fn progress_goes_back_under_the_callers_token_and_restarts_the_timeout() {
    let t0 = Instant::now();
    let (mut machine, shared) = ready(None, t0);
    let timeout = Duration::from_secs(10);
    let params = json!({"name": "slow", "_meta": {"progressToken": "caller-token"}});
    let (id, command, mut call) = request(&shared, Some(params), timeout, t0, None);
    machine.handle_command(command, t0);
    let out = sent(&mut machine);
    assert_eq!(
        out[0]["params"]["_meta"]["progressToken"], id,
        "the token is our id upstream"
    );
    let at = t0 + Duration::from_secs(8);
    let progress = json!({"progressToken": id, "progress": 1, "total": 2, "message": "half"});
    machine.handle_message(
        Message::notification("notifications/progress", Some(Raw::from_value(&progress))),
        at,
    );
    let forwarded = call
        .progress
        .try_recv()
        .expect("progress reached the caller");
    let forwarded: Value = forwarded.params.expect("params").parse().expect("JSON");
    assert_eq!(
        forwarded,
        json!({"progressToken": "caller-token", "progress": 1, "total": 2, "message": "half"})
    );
    assert_eq!(
        machine.poll_timeout(),
        Some(at + timeout),
        "the timeout started over"
    );
    machine.handle_timeout(t0 + timeout);
    assert!(
        call.reply.try_recv().is_err(),
        "not timed out at the old deadline"
    );
    assert!(events(&mut machine).is_empty(), "progress is not published");
}

#[test]
fn a_token_without_a_sink_is_removed_and_progress_for_nobody_is_dropped() {
    let t0 = Instant::now();
    let (mut machine, shared) = ready(None, t0);
    let id = shared.next_id();
    let (reply, _reply) = oneshot::channel();
    machine.handle_command(
        ConnCommand::Request {
            id,
            method: Cow::Borrowed("tools/call"),
            params: Some(Raw::from_value(&json!({"_meta": {"progressToken": 7}}))),
            timeout: STARTUP,
            enqueued: t0,
            progress: None,
            requester: None,
            reply,
        },
        t0,
    );
    assert_eq!(
        sent(&mut machine)[0]["params"],
        json!({}),
        "no token, no empty `_meta`"
    );
    let progress = json!({"progressToken": 424_242, "progress": 1});
    machine.handle_message(
        Message::notification("notifications/progress", Some(Raw::from_value(&progress))),
        t0,
    );
    machine.handle_message(Message::notification("notifications/progress", None), t0);
    assert!(events(&mut machine).is_empty() && sent(&mut machine).is_empty());
}

#[test]
fn a_request_expired_or_abandoned_before_it_is_sent_is_not_sent() {
    let t0 = Instant::now();
    let (mut machine, shared) = ready(None, t0);
    let timeout = Duration::from_secs(1);
    let (_, command, mut call) = request(&shared, None, timeout, t0, None);
    machine.handle_command(command, t0 + timeout);
    assert_eq!(
        *outcome(&mut call.reply).expect_err("a timeout").kind(),
        ErrorKind::Timeout
    );
    let (_, command, call) = request(&shared, None, timeout, t0, None);
    drop(call);
    machine.handle_command(command, t0);
    machine.handle_command(ConnCommand::Expired, t0);
    assert!(sent(&mut machine).is_empty());
    assert_eq!(machine.poll_timeout(), None);
}

#[test]
fn a_cancel_reaches_the_server_once_and_only_for_a_request_in_flight() {
    let t0 = Instant::now();
    let (mut machine, shared) = ready(None, t0);
    let (id, command, _call) = request(&shared, None, STARTUP, t0, None);
    machine.handle_command(command, t0);
    sent(&mut machine);
    machine.handle_command(
        ConnCommand::Cancel {
            id,
            reason: "the client went away",
        },
        t0,
    );
    machine.handle_command(
        ConnCommand::Cancel {
            id,
            reason: "again",
        },
        t0,
    );
    let out = sent(&mut machine);
    assert_eq!(out.len(), 1);
    assert_eq!(
        out[0]["params"],
        json!({"requestId": id, "reason": "the client went away"})
    );
    assert_eq!(machine.poll_timeout(), None);
}

#[test]
fn notifications_are_forwarded_and_written_to_the_server() {
    let t0 = Instant::now();
    let (mut machine, shared) = ready(None, t0);
    let before = shared.lists_generation();
    machine.handle_message(
        Message::notification("notifications/tools/list_changed", None),
        t0,
    );
    machine.handle_message(Message::notification("notifications/message", None), t0);
    assert_eq!(
        shared.lists_generation(),
        before + 1,
        "cached lists are stale"
    );
    let published: Vec<_> = events(&mut machine)
        .into_iter()
        .map(|event| match event {
            Event::Publish(n) => n.method.into_owned(),
            _ => panic!("expected only Publish events"),
        })
        .collect();
    assert_eq!(
        published,
        ["notifications/tools/list_changed", "notifications/message"]
    );
    machine.handle_command(
        ConnCommand::Notify(Notification {
            method: Cow::Borrowed("notifications/roots/list_changed"),
            params: None,
        }),
        t0,
    );
    assert_eq!(
        sent(&mut machine)[0]["method"],
        "notifications/roots/list_changed"
    );
}

#[test]
fn the_servers_ping_is_answered_and_a_request_with_nobody_to_ask_is_refused() {
    let t0 = Instant::now();
    let (mut machine, _) = ready(None, t0);
    machine.handle_message(Message::request(9, "ping", None), t0);
    machine.handle_message(Message::request("s-1", "sampling/createMessage", None), t0);
    let out = sent(&mut machine);
    assert_eq!(out[0], json!({"jsonrpc": "2.0", "id": 9, "result": {}}));
    assert_eq!(out[1]["id"], "s-1");
    assert_eq!(out[1]["error"]["code"], -32601);
    assert!(events(&mut machine).is_empty());
}

#[test]
fn a_servers_request_goes_to_its_own_client_or_nowhere() {
    let t0 = Instant::now();
    let (mut machine, shared) = ready(None, t0);
    let timeout = Duration::from_secs(10);
    let client = |session| Some(RequestContext::new(Arc::new(Client(session))));
    let (one, command, _a) = request(&shared, None, timeout, t0, client(1));
    machine.handle_command(command, t0);
    let (two, command, _b) = request(&shared, None, timeout, t0, client(2));
    machine.handle_command(command, t0);
    sent(&mut machine);
    // Related to a request (it came on that request's stream): its client,
    // whichever is the latest.
    for id in [one, two] {
        let asked = Message::request("q", "sampling/createMessage", None);
        machine.handle_related(asked, &RequestId::Number(id), t0);
        match &events(&mut machine)[..] {
            [Event::Ask { for_id, .. }] => assert_eq!(*for_id, id),
            _ => panic!("expected one Ask"),
        }
    }
    // Unrelated, with two clients' requests in flight: refused, never
    // put to either.
    let asked = Message::request("r", "sampling/createMessage", None);
    machine.handle_message(asked, t0);
    assert!(events(&mut machine).is_empty());
    let refused = sent(&mut machine);
    assert_eq!(refused[0]["id"], "r");
    assert_eq!(refused[0]["error"]["code"], -32601);
    let why = refused[0]["error"]["message"].as_str().unwrap();
    assert!(
        why.contains("several clients") && why.contains("per-client"),
        "{why}"
    );
}

#[test]
fn a_per_client_instance_asks_its_client_outside_calls_and_declares_roots() {
    let t0 = Instant::now();
    let owner = RequestContext::new(Arc::new(Client(9)));
    let mut settings = settings(UpstreamProtocol::Stateful, None);
    settings.roots = Some(Some(owner));
    let shared = Arc::new(Shared::new(Arc::new(NoObserver)));
    let mut machine = Machine::new(settings, Arc::clone(&shared), t0);
    let hello = sent(&mut machine);
    assert_eq!(
        hello[0]["params"]["capabilities"]["roots"],
        json!({"listChanged": true})
    );
    let id = hello[0]["id"].as_i64().unwrap();
    machine.handle_message(answer(id, &initialize_result("2025-11-25")), t0);
    events(&mut machine);
    sent(&mut machine);
    machine.handle_message(Message::request("r", "roots/list", None), t0);
    assert!(
        matches!(&events(&mut machine)[..], [Event::Ask { request, .. }] if request.method == "roots/list")
    );

    // A per-client server's shared instance serves no client: no roots.
    let mut settings = self::settings(UpstreamProtocol::Stateful, None);
    settings.roots = Some(None);
    let mut machine = Machine::new(settings, shared, t0);
    let id = sent(&mut machine)[0]["id"].as_i64().unwrap();
    machine.handle_message(answer(id, &initialize_result("2025-11-25")), t0);
    events(&mut machine);
    sent(&mut machine);
    machine.handle_message(Message::request("r", "roots/list", None), t0);
    assert_eq!(sent(&mut machine)[0]["result"], json!({"roots": []}));
    machine.handle_message(Message::request("s", "sampling/createMessage", None), t0);
    assert_eq!(sent(&mut machine)[0]["error"]["code"], -32601);

    // A shared server is not told of roots at all.
    let (mut machine, _) = start(UpstreamProtocol::Stateful, None, t0);
    assert!(
        sent(&mut machine)[0]["params"]["capabilities"]
            .get("roots")
            .is_none()
    );
}

#[test]
fn a_servers_request_goes_to_the_latest_caller_that_can_be_asked() {
    let t0 = Instant::now();
    let (mut machine, shared) = ready(None, t0);
    let timeout = Duration::from_secs(10);
    let client = || Some(RequestContext::new(Arc::new(Client(7))));
    let (first, command, _a) = request(&shared, None, timeout, t0, client());
    machine.handle_command(command, t0);
    let (second, command, _b) = request(&shared, None, timeout, t0, client());
    machine.handle_command(command, t0);
    let (_, command, _c) = request(&shared, None, timeout, t0, None);
    machine.handle_command(command, t0);
    sent(&mut machine);
    let asked_at = t0 + Duration::from_secs(4);
    machine.handle_message(Message::request("q", "elicitation/create", None), asked_at);
    match &events(&mut machine)[..] {
        [
            Event::Ask {
                for_id, request, ..
            },
        ] => {
            assert_eq!(*for_id, second, "the most recent request that can ask");
            assert_eq!(request.method, "elicitation/create");
        }
        _ => panic!("expected one Ask"),
    }
    // Asking restarted the second request's timeout; the first keeps its own.
    assert_eq!(machine.poll_timeout(), Some(t0 + timeout));
    let answered_at = t0 + Duration::from_secs(9);
    machine.handle_client_answer(second, answer(1, &json!({"action": "accept"})), answered_at);
    assert_eq!(sent(&mut machine)[0]["result"], json!({"action": "accept"}));
    machine.handle_timeout(t0 + timeout);
    machine.handle_message(answer(first, &json!({})), t0 + timeout);
    assert_eq!(
        machine.poll_timeout(),
        Some(answered_at + timeout),
        "the second lives on"
    );
    // The server gives up on a request to the client.
    let cancelled = json!({"requestId": "q", "reason": "no longer needed"});
    machine.handle_message(
        Message::notification("notifications/cancelled", Some(Raw::from_value(&cancelled))),
        t0,
    );
    assert!(
        matches!(&events(&mut machine)[..], [Event::Abandon(id)] if id.to_string().contains('q'))
    );
}

#[test]
fn health_checks_run_on_the_interval_and_a_missed_one_loses_the_connection() {
    let t0 = Instant::now();
    let (mut machine, _) = ready(Some(HEALTH_EVERY), t0);
    assert_eq!(machine.poll_timeout(), Some(t0 + HEALTH_EVERY));
    let first = t0 + HEALTH_EVERY;
    machine.handle_timeout(first);
    let ping = sent(&mut machine);
    assert_eq!(ping[0]["method"], "ping");
    assert_eq!(machine.poll_timeout(), Some(first + HEALTH_TIMEOUT));
    machine.handle_message(
        answer(ping[0]["id"].as_i64().expect("numeric"), &json!({})),
        first,
    );
    assert_eq!(
        machine.poll_timeout(),
        Some(first + HEALTH_EVERY),
        "answered: next one"
    );
    let second = first + HEALTH_EVERY;
    machine.handle_timeout(second);
    assert_eq!(sent(&mut machine)[0]["method"], "ping");
    machine.handle_timeout(second + HEALTH_TIMEOUT);
    match machine.take_exit() {
        Some(Exit::Lost(reason)) => assert!(reason.contains("health check within 2000 ms")),
        other => panic!("expected a lost connection, got {other:?}"),
    }
}

#[test]
fn a_transport_that_ends_fails_the_start_or_loses_the_connection() {
    let t0 = Instant::now();
    let (mut starting, _) = start(UpstreamProtocol::Stateful, None, t0);
    starting.handle_closed("the child exited".to_owned());
    assert!(
        matches!(starting.take_exit(), Some(Exit::StartFailed(e)) if e.message() == "the child exited")
    );
    let (mut running, _) = ready(None, t0);
    running.handle_closed("the child exited".to_owned());
    running.handle_closed("again".to_owned());
    assert!(matches!(running.take_exit(), Some(Exit::Lost(r)) if r == "the child exited"));
}

#[test]
fn finishing_answers_every_caller_and_hands_back_what_is_queued() {
    let t0 = Instant::now();
    let (mut machine, shared) = ready(None, t0);
    let (_, command, mut call) = request(&shared, None, STARTUP, t0, None);
    machine.handle_command(command, t0);
    let queued = machine.finish(&Exit::Stopped);
    assert_eq!(queued.len(), 1, "the request was never sent");
    let error = outcome(&mut call.reply).expect_err("disconnected");
    assert_eq!(*error.kind(), ErrorKind::Disconnected);
    assert_eq!(error.message(), "the server was stopped");
    assert_eq!(machine.poll_timeout(), None);
}

#[test]
fn a_full_outbox_stops_commands_until_the_transport_takes_some() {
    let t0 = Instant::now();
    let (mut machine, shared) = ready(None, t0);
    let mut calls = Vec::new();
    while machine.accepts_commands() {
        let (_, command, call) = request(&shared, None, STARTUP, t0, None);
        machine.handle_command(command, t0);
        calls.push(call);
    }
    assert_eq!(calls.len(), OUTBOX_HIGH_WATER);
    // What the server sends is still taken meanwhile.
    machine.handle_message(Message::request(1, "ping", None), t0);
    assert!(machine.poll_transmit().is_some());
    assert!(machine.poll_transmit().is_some());
    assert!(machine.accepts_commands(), "room again");
}

#[test]
fn handshake_answers_that_say_the_wrong_thing_fail_the_start() {
    let t0 = Instant::now();
    let failure = |protocol: UpstreamProtocol, answer_with: Value| {
        let (mut machine, _) = start(protocol, None, t0);
        let id = sent(&mut machine)[0]["id"].as_i64().expect("numeric");
        machine.handle_message(answer(id, &answer_with), t0);
        match machine.take_exit() {
            Some(Exit::StartFailed(error)) => error.message().to_owned(),
            other => panic!("expected a failed start, got {other:?}"),
        }
    };
    let not_initialize = failure(UpstreamProtocol::Stateful, json!({"capabilities": 3}));
    assert!(
        not_initialize.contains("bad answer to `initialize`"),
        "{not_initialize}"
    );
    let not_discover = failure(UpstreamProtocol::Stateless, json!([1]));
    assert!(
        not_discover.contains("bad answer to `server/discover`"),
        "{not_discover}"
    );
    let only_stateful = failure(
        UpstreamProtocol::Stateless,
        json!({"supportedVersions": ["2025-11-25"], "capabilities": {}}),
    );
    assert!(
        only_stateful.contains("none of which mcp-manager speaks statelessly"),
        "{only_stateful}"
    );
}

#[test]
fn params_that_cannot_carry_a_token_are_refused_and_stray_errors_ignored() {
    let t0 = Instant::now();
    let (mut machine, shared) = ready(None, t0);
    let (_, command, mut call) =
        request(&shared, Some(json!(["progressToken"])), STARTUP, t0, None);
    machine.handle_command(command, t0);
    let error = outcome(&mut call.reply).expect_err("refused");
    assert_eq!(*error.kind(), ErrorKind::Protocol);
    assert!(
        error.message().contains("`params` must be an object"),
        "{error}"
    );
    assert!(sent(&mut machine).is_empty(), "nothing was sent");
    // An error answer with no id is about nothing we can name: logged only.
    machine.handle_message(
        Message::error(None, ErrorObject::new(-32700, "parse error")),
        t0,
    );
    // An answer to an id we never use (a string) is dropped too.
    machine.handle_message(Message::response("x", Raw::from_value(&json!({}))), t0);
    assert!(sent(&mut machine).is_empty() && events(&mut machine).is_empty());
    assert!(machine.take_exit().is_none());
}
