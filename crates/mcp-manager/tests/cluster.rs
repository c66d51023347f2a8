//! Replicas of one gateway sharing `mcpManager.cluster.key`: a session
//! opened on one is continued on another (its sealed id says how to take
//! it over), after the first is killed, with the log level and the
//! subscriptions its client set (carried by the ids it was given since);
//! an id forged, changed, sealed with another key, or ended is refused
//! with 404 and a JSON-RPC error. Replicas told of each other
//! (`cluster.peers`) hear what a session changed and that it ended: a
//! client that keeps its first id finds its session as it left it, and
//! an end on one replica is an end on all.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

mod support;

use serde_json::{Value, json};
use support::{
    HttpGateway, Session, assert_none_marked, event_stream, exchange, free_addr, post,
    unique_marker,
};

const KEY: &str = "5f1e2d3c4b5a69788796a5b4c3d2e1f00112233445566778899aabbccddeeff0";

/// A replica: the reference server in-process, and as a child process
/// that speaks only the 2025 (session) protocol; sealing session ids and
/// `requestState`s with `key`.
fn replica(dir: &std::path::Path, name: &str, key: &str, marker: &str) -> HttpGateway {
    let folder = dir.join(name);
    std::fs::create_dir(&folder).unwrap();
    let config = json!({
        "mcpManager": {"pinning": "off", "cluster": {"key": key}},
        "mcpServers": {
            "ev": {"type": "builtin", "server": "everything"},
            "st": {"command": env!("CARGO_BIN_EXE_mcp-manager"),
                   "args": ["builtin", "everything", "--stdio"],
                   "protocol": "stateful", "env": {support::MARKER_VAR: marker}}
        }
    });
    HttpGateway::over(&config, &folder, &format!("{marker}-{name}"))
}

fn on(gateway: &HttpGateway, id: &str) -> Session {
    Session {
        addr: gateway.addr.clone(),
        id: id.to_owned(),
    }
}

/// The status and the JSON-RPC error of a `tools/list` in session `id`.
fn refused(gateway: &HttpGateway, id: &str) -> (u16, Value) {
    let body = json!({"jsonrpc": "2.0", "id": 9, "method": "tools/list"});
    let response = post(&gateway.addr, Some(id), &body).unwrap();
    let error = serde_json::from_str::<Value>(&response.body).unwrap_or(Value::Null);
    (response.status, error)
}

/// The head of the answer to `GET /mcp` for session `id` (an event
/// stream, which stays open: only its head is read).
fn stream_head(addr: &str, id: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "GET /mcp HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\
         Mcp-Session-Id: {id}\r\nMCP-Protocol-Version: 2025-11-25\r\n\r\n"
    )
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0_u8; 1];
    while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap() == 1 {
        head.push(byte[0]);
    }
    String::from_utf8_lossy(&head).into_owned()
}

#[test]
fn a_session_goes_on_on_another_replica_and_a_bad_id_is_404() {
    let dir = tempfile::tempdir().unwrap();
    let marker = unique_marker("cluster");
    let mut a = replica(dir.path(), "a", KEY, &marker);
    let b = replica(dir.path(), "b", KEY, &marker);
    let c = replica(dir.path(), "c", KEY, &marker);
    let other_key = KEY.replace('5', "6");
    let foreign = replica(dir.path(), "foreign", &other_key, &marker);

    let session = Session::open(&a.addr, "cluster-client");
    assert_eq!(session.id.get(16..20), Some(".v1."), "{}", session.id);
    assert!(
        session
            .call_text(1, "ev__greet", json!({"name": "Ada"}))
            .unwrap()
            .contains("Ada")
    );
    // The same session on B, without a new `initialize`.
    let text = on(&b, &session.id)
        .call_text(2, "ev__greet", json!({"name": "Grace"}))
        .unwrap();
    assert!(text.contains("Grace"), "{text}");

    // A dies: the session goes on on C, then on B again.
    a.guard.child.kill().unwrap();
    a.guard.child.wait().unwrap();
    let listed = on(&c, &session.id)
        .request(3, "tools/list", json!({}))
        .unwrap();
    assert!(listed["result"]["tools"].as_array().unwrap().len() > 5);
    assert!(
        on(&b, &session.id)
            .call_text(4, "ev__greet", json!({"name": "Linus"}))
            .unwrap()
            .contains("Linus")
    );
    // Its event stream opens on C.
    let head = stream_head(&c.addr, &session.id);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase().contains("text/event-stream"),
        "{head}"
    );

    // Bad ids: each 404 with a JSON-RPC error, and nothing else changes.
    let mut changed = session.id.clone().into_bytes();
    let at = changed.len() / 2;
    changed[at] = if changed[at] == b'A' { b'B' } else { b'A' };
    let changed = String::from_utf8(changed).unwrap();
    let truncated = session.id[..session.id.len() - 4].to_owned();
    for (gateway, id) in [
        (
            &b,
            "v1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        ),
        (&b, "not-even-base64-$$$"),
        (&b, changed.as_str()),
        (&b, truncated.as_str()),
        (&foreign, session.id.as_str()),
    ] {
        let (status, error) = refused(gateway, id);
        assert_eq!(status, 404, "{id}: {error}");
        assert_eq!(
            error["error"]["message"], "Session not found",
            "{id}: {error}"
        );
    }
    assert!(
        on(&c, &session.id)
            .call_text(5, "ev__greet", json!({"name": "still"}))
            .unwrap()
            .contains("still")
    );

    // A stateless client's call to the session-bound backend that asks it
    // a question: asked on B, answered on C (the call runs again there,
    // with the answer).
    let meta = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {"elicitation": {"form": {}}},
        "io.modelcontextprotocol/clientInfo": {"name": "stateless", "version": "1"}
    });
    let ask = json!({"jsonrpc": "2.0", "id": 20, "method": "tools/call", "params": {
        "name": "st__test_elicitation", "arguments": {"message": "who?"}, "_meta": meta}});
    let asked = post(&b.addr, None, &ask).unwrap();
    let asked = &asked.messages()[0]["result"];
    assert_eq!(asked["resultType"], "input_required", "{asked}");
    let (key, question) = asked["inputRequests"]
        .as_object()
        .unwrap()
        .iter()
        .next()
        .unwrap();
    assert_eq!(question["method"], "elicitation/create", "{asked}");
    let state = asked["requestState"].as_str().unwrap();
    assert!(state.starts_with("v1."), "{state}");
    let mut answer = ask.clone();
    answer["id"] = json!(21);
    answer["params"]["requestState"] = json!(state);
    answer["params"]["inputResponses"] = json!({key: {"action": "accept",
        "content": {"username": "lin", "email": "lin@example.com"}}});
    let answered = post(&c.addr, None, &answer).unwrap();
    let result = &answered.messages()[0]["result"];
    assert_eq!(result["resultType"], "complete", "{result}");
    assert!(result.to_string().contains("lin@example.com"), "{result}");
    // Sent again to C, where it was used: spent, nothing runs again.
    let replayed = post(&c.addr, None, &answer).unwrap();
    assert_eq!(
        replayed.messages()[0]["error"]["code"],
        -32602,
        "{replayed:?}"
    );
    // The same state for another tool or other arguments continues
    // nothing, whatever replica gets it.
    let mut other = answer.clone();
    other["params"]["arguments"] = json!({"message": "something else"});
    let turned = post(&b.addr, None, &other).unwrap();
    assert_eq!(turned.messages()[0]["error"]["code"], -32602, "{turned:?}");
    // On a replica with another key the state is not the gateway's: it
    // goes to the backend as any state would, which refuses it; the
    // answers carried nowhere.
    let elsewhere = post(&foreign.addr, None, &answer).unwrap();
    let turned_away = &elsewhere.messages()[0];
    assert_eq!(turned_away["error"]["code"], -32602, "{turned_away}");
    assert!(
        !turned_away.to_string().contains("lin@example.com"),
        "{turned_away}"
    );

    // Ended on C, it stays ended there.
    let ended = exchange(
        &c.addr,
        "DELETE",
        "/mcp",
        &[("Mcp-Session-Id", &session.id)],
        b"",
    )
    .unwrap();
    assert_eq!(ended.status, 200);
    assert_eq!(refused(&c, &session.id).0, 404);
    drop((b, c, foreign));
    assert_none_marked(&marker);
}

/// Sends `method` in session `id` on `gateway`: the answer, and the
/// session's new id if the answer brought one.
fn send(gateway: &HttpGateway, id: &str, method: &str, params: Value) -> (Value, Option<String>) {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    let response = post(&gateway.addr, Some(id), &body).unwrap();
    assert_eq!(response.status, 200, "{method}: {response:?}");
    let new_id = response.header("mcp-session-id").map(str::to_owned);
    (response.messages().pop().unwrap(), new_id)
}

/// The log messages that come on session `id`'s stream while
/// `test_logging_tool` runs in it.
fn logged(gateway: &HttpGateway, id: &str) -> Vec<String> {
    let events = event_stream(&gateway.addr, id);
    let call = json!({"name": "ev__test_logging_tool", "arguments": {}});
    let (answer, _) = send(gateway, id, "tools/call", call);
    assert!(answer["result"].is_object(), "{answer}");
    // The answer comes 50 ms after the last message.
    std::iter::from_fn(|| {
        events
            .recv_timeout(std::time::Duration::from_millis(500))
            .ok()
    })
    .filter(|data| data.contains("notifications/message"))
    .collect()
}

/// The `notifications/resources/updated` that comes on session `id`'s
/// stream within `seconds` of `test_trigger_resource_update` running in
/// it, if one does.
fn update_of(gateway: &HttpGateway, id: &str, seconds: u64) -> Option<Value> {
    let events = event_stream(&gateway.addr, id);
    let trigger = json!({"name": "ev__test_trigger_resource_update", "arguments": {}});
    let (answer, _) = send(gateway, id, "tools/call", trigger);
    assert!(answer["result"].is_object(), "{answer}");
    let wait = std::time::Duration::from_secs(seconds);
    std::iter::from_fn(|| events.recv_timeout(wait).ok())
        .map(|data| serde_json::from_str::<Value>(&data).unwrap())
        .find(|m| m["method"] == "notifications/resources/updated")
}

#[test]
fn a_log_level_and_subscriptions_follow_a_session_to_another_replica() {
    let dir = tempfile::tempdir().unwrap();
    let marker = unique_marker("carried");
    let mut a = replica(dir.path(), "a", KEY, &marker);
    let b = replica(dir.path(), "b", KEY, &marker);
    let c = replica(dir.path(), "c", KEY, &marker);

    let first = Session::open(&a.addr, "carried-client").id;
    let route = &first[..17];
    // The first server's resources keep their URIs.
    let watched = "test://watched-resource";
    let listed = send(&a, &first, "resources/list", json!({})).0;
    assert!(listed.to_string().contains(watched), "{listed}");

    // Each change gets a new id, on the same route; one that changes
    // nothing gets none.
    let (answer, leveled) = send(&a, &first, "logging/setLevel", json!({"level": "info"}));
    assert_eq!(answer["result"], json!({}), "{answer}");
    let leveled = leveled.expect("a new id after logging/setLevel");
    assert!(leveled.starts_with(route) && leveled != first, "{leveled}");
    let (_, same) = send(&a, &leveled, "logging/setLevel", json!({"level": "info"}));
    assert_eq!(same, None);
    let (answer, subscribed) = send(&a, &leveled, "resources/subscribe", json!({"uri": watched}));
    assert_eq!(answer["result"], json!({}), "{answer}");
    let subscribed = subscribed.expect("a new id after resources/subscribe");
    assert!(subscribed.starts_with(route), "{subscribed}");
    // A request that fails changes nothing.
    let (answer, none) = send(
        &a,
        &subscribed,
        "logging/setLevel",
        json!({"level": "loud"}),
    );
    assert!(answer["error"].is_object(), "{answer}");
    assert_eq!(none, None);
    // Every id names the session on A.
    for id in [&first, &leveled, &subscribed] {
        let got = logged(&a, id);
        assert!(got.len() >= 3, "{id}: {got:?}");
    }

    // A dies. Its last id takes the session over on B with its level and
    // its subscription: B's reference server sends the log messages, and
    // the update of the watched resource comes on the session's stream.
    a.guard.child.kill().unwrap();
    a.guard.child.wait().unwrap();
    let messages = logged(&b, &subscribed);
    assert_eq!(messages.len(), 3, "{messages:?}");
    assert!(
        messages[0].contains("Tool execution started"),
        "{messages:?}"
    );
    let updated = update_of(&b, &subscribed, 10).expect("the update of the watched resource on B");
    assert_eq!(updated["params"]["uri"], json!(watched), "{updated}");

    // The first id takes it over on C as it was opened: no level (no log
    // message), no subscription.
    assert_eq!(logged(&c, &first), Vec::<String>::new());

    // Unsubscribed on B, the next id carries no subscription: C takes it
    // over with the level alone.
    let (answer, unsubscribed) = send(
        &b,
        &subscribed,
        "resources/unsubscribe",
        json!({"uri": watched}),
    );
    assert_eq!(answer["result"], json!({}), "{answer}");
    let unsubscribed = unsubscribed.expect("a new id after resources/unsubscribe");
    assert_eq!(logged(&c, &unsubscribed).len(), 3);
    assert_eq!(update_of(&c, &unsubscribed, 2), None);

    // Ended on B by its newest id, it ends by every id B had for it.
    let ended = exchange(
        &b.addr,
        "DELETE",
        "/mcp",
        &[("Mcp-Session-Id", &unsubscribed)],
        b"",
    )
    .unwrap();
    assert_eq!(ended.status, 200);
    for id in [&subscribed, &unsubscribed] {
        assert_eq!(refused(&b, id).0, 404, "{id}");
    }
    drop((b, c));
    assert_none_marked(&marker);
}

/// Three replicas told of each other (`cluster.peers`), logging the news
/// they hear.
fn told_replicas(dir: &std::path::Path, marker: &str) -> Vec<HttpGateway> {
    let addrs: Vec<String> = (0..3).map(|_| free_addr()).collect();
    addrs
        .iter()
        .enumerate()
        .map(|(n, addr)| {
            let folder = dir.join(format!("told-{n}"));
            std::fs::create_dir(&folder).unwrap();
            let peers: Vec<&String> = addrs.iter().filter(|other| *other != addr).collect();
            let config = json!({
                "mcpManager": {"pinning": "off", "cluster": {"key": KEY, "peers": peers}},
                "mcpServers": {"ev": {"type": "builtin", "server": "everything"}}
            });
            let path = folder.join("mcpServers.json");
            std::fs::write(&path, config.to_string()).unwrap();
            HttpGateway::start_at(
                &path,
                &format!("{marker}-{n}"),
                addr.clone(),
                &["--log-level", "warn,mcp_serve=debug"],
            )
        })
        .collect()
}

/// Waits (up to 20 s) until `replica` has heard `count` more pieces of
/// news.
fn hears(replica: &HttpGateway, count: usize) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut heard = 0;
    while heard < count {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let line = replica
            .log
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("{heard} of {count} pieces of news heard"));
        if line.contains("news of a session heard") {
            heard += 1;
        }
    }
}

#[test]
fn a_client_that_keeps_its_first_id_finds_its_session_as_it_left_it_on_another_replica() {
    let dir = tempfile::tempdir().unwrap();
    let marker = unique_marker("told");
    let mut replicas = told_replicas(dir.path(), &marker);

    // The client keeps its first id, as the Python SDK does: the new ids
    // its changes got are told to the other replicas. Its requests go to
    // A, and once to C, which takes the session over as it was opened.
    let first = Session::open(&replicas[0].addr, "first-id-client").id;
    let watched = "test://watched-resource";
    let (listed, _) = send(&replicas[2], &first, "tools/list", json!({}));
    assert!(listed["result"]["tools"].is_array(), "{listed}");
    let (_, leveled) = send(
        &replicas[0],
        &first,
        "logging/setLevel",
        json!({"level": "info"}),
    );
    let (_, subscribed) = send(
        &replicas[0],
        &first,
        "resources/subscribe",
        json!({"uri": watched}),
    );
    let ids = [first.clone(), leveled.unwrap(), subscribed.unwrap()];
    hears(&replicas[1], 2);
    hears(&replicas[2], 2);
    // C, which has the session open, caught up: it has the level and the
    // subscription.
    assert_eq!(logged(&replicas[2], &first).len(), 3);
    let watched_updated = |replica: &HttpGateway| {
        let updated = update_of(replica, &first, 10).expect("the update of the watched resource");
        assert_eq!(updated["params"]["uri"], json!(watched), "{updated}");
    };
    watched_updated(&replicas[2]);

    // A dies. B takes the session over from the first id with the level
    // and the subscription it was told of.
    replicas[0].guard.child.kill().unwrap();
    replicas[0].guard.child.wait().unwrap();
    let messages = logged(&replicas[1], &first);
    assert_eq!(messages.len(), 3, "{messages:?}");
    watched_updated(&replicas[1]);

    // Ended on B, it is ended on C too (which had it open), by every id
    // it had.
    let ended = exchange(
        &replicas[1].addr,
        "DELETE",
        "/mcp",
        &[("Mcp-Session-Id", &first)],
        b"",
    )
    .unwrap();
    assert_eq!(ended.status, 200);
    hears(&replicas[2], 1);
    for id in &ids {
        let (status, error) = refused(&replicas[2], id);
        assert_eq!(status, 404, "{id}");
        assert_eq!(error["error"]["message"], "Session not found", "{error}");
    }

    // News that does not open with the key is refused.
    for body in [&b"not news"[..], b""] {
        let refused = exchange(
            &replicas[2].addr,
            "POST",
            "/mcp-manager/cluster/sessions",
            &[("Content-Type", "text/plain")],
            body,
        )
        .unwrap();
        assert_eq!(refused.status, 403);
    }
    drop(replicas);
    assert_none_marked(&marker);
}
