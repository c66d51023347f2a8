//! Replicas of one gateway sharing `mcpManager.cluster.key`: a session
//! opened on one is continued on another (its sealed id says how to take
//! it over), after the first is killed; an id forged, changed, sealed with
//! another key, or ended is refused with 404 and a JSON-RPC error.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

mod support;

use serde_json::{Value, json};
use support::{HttpGateway, Session, assert_none_marked, exchange, post, unique_marker};

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
    assert!(session.id.starts_with("v1."), "{}", session.id);
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
