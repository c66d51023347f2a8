//! The endpoint as an OAuth 2.1 resource server, against a real
//! authorization server (oauth2-mock-server, from npm): its metadata, its
//! challenges, every bad token of the issue's list, opaque tokens by
//! introspection, the official Python SDK client with a token, and key
//! sets that cannot be had; and the other way round, a gateway signing in
//! to a remote server that asks for OAuth (`mcp-manager login`, the token
//! kept, sent and refreshed).
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdin, Command, Stdio};

use base64::Engine as _;
use serde_json::{Value, json};
use support::{
    Guard, MARKER_VAR, Response, Session, assert_none_marked, exchange, free_addr, peer, post_with,
    run_python_client, spawn_manager, spawn_manager_with, unique_marker, wait_for_listening,
};

/// The authorization server, and what it printed: its issuer URL and the
/// tokens it made. Stopped when dropped.
struct Issuer {
    _guard: Guard,
    _stdin: ChildStdin,
    url: String,
    tokens: Value,
}

impl Issuer {
    fn start(audience: &str, marker: &str) -> Self {
        let script = format!(
            "{}/tests/clients/oauth_server.mjs",
            env!("CARGO_MANIFEST_DIR")
        );
        let mut child: Child = Command::new(peer("MCP_PEER_NODE"))
            .arg(script)
            .arg(audience)
            .env("MCP_PEER_NODE_MODULES", peer("MCP_PEER_NODE_MODULES"))
            .env(MARKER_VAR, marker)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let guard = Guard {
            child,
            marker: marker.to_owned(),
        };
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        let printed: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
        Self {
            _guard: guard,
            _stdin: stdin,
            url: printed["issuer"].as_str().unwrap().to_owned(),
            tokens: printed["tokens"].clone(),
        }
    }

    fn token(&self, name: &str) -> String {
        self.tokens[name].as_str().unwrap().to_owned()
    }
}

/// `mcp-manager serve --http ADDR` on `config`, written into `dir`; its
/// log lines after the listening line come on the receiver.
fn gateway(
    config: &Value,
    dir: &std::path::Path,
    addr: &str,
    marker: &str,
) -> (Guard, std::sync::mpsc::Receiver<String>) {
    let path = dir.join("mcpServers.json");
    std::fs::write(&path, config.to_string()).unwrap();
    let (guard, lines) = spawn_manager(
        &["serve", "--http", addr, "--config", path.to_str().unwrap()],
        marker,
    );
    let (_, lines) = wait_for_listening(lines);
    (guard, lines)
}

fn initialize(addr: &str, authorization: Option<&str>) -> Response {
    let body = json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                   "clientInfo": {"name": "oauth-test", "version": "1"}}
    });
    let headers: Vec<(&str, &str)> = authorization
        .map(|value| vec![("Authorization", value)])
        .unwrap_or_default();
    post_with(addr, None, &body, &headers).unwrap()
}

/// `alg: none`: a token anyone can make.
fn unsigned(issuer: &str, audience: &str) -> String {
    let b64 =
        |value: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string());
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    format!(
        "{}.{}.",
        b64(json!({"alg": "none", "typ": "JWT"})),
        b64(
            json!({"iss": issuer, "aud": audience, "sub": "mallory", "scope": "mcp:tools", "exp": exp})
        )
    )
}

#[test]
fn tokens_are_checked_as_the_authorization_spec_says() {
    let dir = tempfile::tempdir().unwrap();
    let marker = unique_marker("oauth");
    let addr = free_addr();
    let audience = format!("http://{addr}/mcp");
    let issuer = Issuer::start(&audience, &format!("{marker}-issuer"));
    let config = json!({
        "mcpManager": {"pinning": "off", "auth": {
            "issuer": issuer.url,
            "audience": audience,
            "requiredScopes": ["mcp:tools"],
            "leewaySeconds": 30,
            "introspection": {
                "endpoint": format!("{}/introspect-opaque", issuer.url),
                "clientId": "gateway",
                "clientSecret": "s3cret",
            },
        }},
        "mcpServers": {"ev": {"type": "builtin", "server": "everything"}}
    });
    let (guard, log) = gateway(&config, dir.path(), &addr, &marker);
    let metadata_url = format!("http://{addr}/.well-known/oauth-protected-resource/mcp");

    // No token: where to learn how to get one.
    let missing = initialize(&addr, None);
    assert_eq!(missing.status, 401, "{missing:?}");
    assert_eq!(
        missing.header("www-authenticate").unwrap(),
        format!("Bearer resource_metadata=\"{metadata_url}\", scope=\"mcp:tools\"")
    );
    for path in [
        "/.well-known/oauth-protected-resource/mcp",
        "/.well-known/oauth-protected-resource",
    ] {
        let document = exchange(&addr, "GET", path, &[], b"").unwrap();
        assert_eq!(document.status, 200, "{document:?}");
        let document: Value = serde_json::from_str(&document.body).unwrap();
        assert_eq!(document["resource"], audience);
        assert_eq!(document["authorization_servers"], json!([issuer.url]));
        assert_eq!(document["scopes_supported"], json!(["mcp:tools"]));
    }
    assert_eq!(
        exchange(&addr, "GET", "/.well-known/other", &[], b"")
            .unwrap()
            .status,
        404
    );

    // Every bad token: 401, the same challenge, the same body, no detail.
    let invalid = format!("Bearer error=\"invalid_token\", resource_metadata=\"{metadata_url}\"");
    let mut bad: Vec<(String, String)> = [
        "expired",
        "notYetValid",
        "otherAudience",
        "otherIssuer",
        "noExpiry",
        "foreignKeySameKid",
        "foreignKeyUnknownKid",
        "hs256",
    ]
    .iter()
    .map(|name| ((*name).to_owned(), format!("Bearer {}", issuer.token(name))))
    .collect();
    bad.push((
        "alg none".into(),
        format!("Bearer {}", unsigned(&issuer.url, &audience)),
    ));
    bad.push((
        "not a JWT".into(),
        "Bearer not-a-token-anyone-issued".into(),
    ));
    bad.push(("two parts".into(), "Bearer abc.def".into()));
    bad.push(("garbage JWT".into(), "Bearer e30.e30.AAAA".into()));
    bad.push(("opaque, inactive".into(), "Bearer opaque-inactive".into()));
    bad.push((
        "opaque, no audience".into(),
        "Bearer opaque-no-audience".into(),
    ));
    bad.push((
        "opaque, no subject".into(),
        "Bearer opaque-no-subject".into(),
    ));
    let valid = issuer.token("valid");
    let mut tampered = valid.clone();
    tampered.pop();
    tampered.push(if valid.ends_with('A') { 'B' } else { 'A' });
    bad.push(("signature changed".into(), format!("Bearer {tampered}")));
    for (what, header) in &bad {
        let response = initialize(&addr, Some(header));
        assert_eq!(response.status, 401, "{what}: {response:?}");
        assert_eq!(
            response.header("www-authenticate"),
            Some(invalid.as_str()),
            "{what}"
        );
        assert_eq!(response.body, r#"{"error":"invalid_token"}"#, "{what}");
    }
    // Malformed headers are as good as none.
    for header in ["Basic YWxpY2U6cHc=", "Bearer", "Bearer a b", "Token abc"] {
        let response = initialize(&addr, Some(header));
        assert_eq!(response.status, 401, "{header}: {response:?}");
        assert!(
            response
                .header("www-authenticate")
                .unwrap()
                .starts_with("Bearer resource_metadata=")
        );
    }

    // A valid token without the scope: 403, and which scope.
    for token in [issuer.token("noScope"), "opaque-no-scope".to_owned()] {
        let response = initialize(&addr, Some(&format!("Bearer {token}")));
        assert_eq!(response.status, 403, "{response:?}");
        assert_eq!(
            response.header("www-authenticate").unwrap(),
            format!(
                "Bearer error=\"insufficient_scope\", scope=\"mcp:tools\", resource_metadata=\"{metadata_url}\""
            )
        );
    }

    // Valid tokens: served (the audience may be one of several).
    for token in [
        valid.clone(),
        issuer.token("audienceList"),
        "opaque-active".to_owned(),
    ] {
        let response = initialize(&addr, Some(&format!("Bearer {token}")));
        assert_eq!(response.status, 200, "{response:?}");
        assert!(response.header("mcp-session-id").is_some());
    }
    // An opaque token is introspected once, then remembered.
    let count = || {
        let response = exchange(
            &issuer
                .url
                .replace("http://", "")
                .replace("localhost", "127.0.0.1"),
            "GET",
            "/introspections",
            &[],
            b"",
        )
        .unwrap();
        serde_json::from_str::<Value>(&response.body).unwrap()["count"]
            .as_u64()
            .unwrap()
    };
    let before = count();
    for _ in 0..3 {
        assert_eq!(initialize(&addr, Some("Bearer opaque-active")).status, 200);
    }
    assert_eq!(count(), before);
    // A refusal is remembered too: a client repeating a bad token costs the
    // authorization server one request.
    for _ in 0..3 {
        assert_eq!(
            initialize(&addr, Some("Bearer opaque-never-issued")).status,
            401
        );
    }
    assert_eq!(count(), before + 1);

    // The official Python SDK client, with and without a good token.
    let (report, _) = run_python_client(
        "python_bearer_client.py",
        &[&audience, &valid, "ev__test_simple_text"],
    );
    assert_eq!(
        report["text"], "This is a simple text response for testing.",
        "{report}"
    );
    assert_eq!(report["server"], "mcp-manager");
    let (report, _) = run_python_client(
        "python_bearer_client.py",
        &[&audience, &issuer.token("expired"), "ev__test_simple_text"],
    );
    assert_eq!(report["refused"], 401, "{report}");

    // The token went nowhere: not into the log.
    drop(guard);
    let log: Vec<String> = log.try_iter().collect();
    let log = log.join("\n");
    assert!(!log.contains(&valid), "{log}");
    assert_none_marked(&marker);
}

#[test]
fn keys_that_cannot_be_had_are_503_and_other_clients_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let marker = unique_marker("oauth-jwks");
    let addr = free_addr();
    let audience = format!("http://{addr}/mcp");
    let issuer = Issuer::start(&audience, &format!("{marker}-issuer"));
    let closed = free_addr();
    for (what, jwks) in [
        ("unreachable", format!("http://{closed}/jwks")),
        ("garbage", format!("{}/garbage-jwks", issuer.url)),
    ] {
        let config = json!({
            "mcpManager": {"pinning": "off", "auth": {
                "issuer": issuer.url, "audience": audience, "jwksUri": jwks,
            }},
            "mcpServers": {"ev": {"type": "builtin", "server": "everything"}}
        });
        let (guard, log) = gateway(&config, dir.path(), &addr, &marker);
        let response = initialize(&addr, Some(&format!("Bearer {}", issuer.token("valid"))));
        assert_eq!(response.status, 503, "{what}: {response:?}");
        assert_eq!(response.body, r#"{"error":"temporarily_unavailable"}"#);
        // Still no token: the challenge, not the outage.
        assert_eq!(initialize(&addr, None).status, 401);
        drop(guard);
        let log = log.try_iter().collect::<Vec<_>>().join("\n");
        assert!(
            log.contains("cannot fetch the issuer's keys"),
            "{what}: {log}"
        );
    }
    // Found through the issuer's metadata, the keys serve many clients at
    // once while bad tokens come in between.
    let config = json!({
        "mcpManager": {"auth": {"issuer": issuer.url, "audience": audience}},
        "mcpServers": {"ev": {"type": "builtin", "server": "everything"}}
    });
    let (guard, _log) = gateway(&config, dir.path(), &addr, &marker);
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let addr = addr.clone();
            let token = if i % 2 == 0 {
                issuer.token("valid")
            } else {
                issuer.token("foreignKeyUnknownKid")
            };
            std::thread::spawn(move || {
                (0..10)
                    .map(|_| initialize(&addr, Some(&format!("Bearer {token}"))).status)
                    .collect::<Vec<u16>>()
            })
        })
        .collect();
    for (i, thread) in threads.into_iter().enumerate() {
        let expected = if i % 2 == 0 { 200 } else { 401 };
        assert!(
            thread.join().unwrap().iter().all(|s| *s == expected),
            "client {i}"
        );
    }
    drop(guard);
    assert_none_marked(&marker);
}

#[test]
fn a_shared_token_and_oauth_together_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.json");
    let config = json!({
        "mcpManager": {"auth": {"issuer": "https://idp.example.com", "audience": "https://gw.example.com/mcp"}},
        "mcpServers": {}
    });
    std::fs::write(&path, config.to_string()).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_mcp-manager"))
        .args([
            "serve",
            "--http",
            &free_addr(),
            "--auth-token",
            "x",
            "--config",
        ])
        .arg(&path)
        .env("XDG_DATA_HOME", support::TEST_DATA_HOME)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("keep one"));
}

/// `tools/list` and a `tools/call` of `tool` in a session opened with
/// `token`: the exposed names, and the call's answer.
fn list_and_call(addr: &str, token: &str, tool: &str) -> (Vec<String>, Value, String) {
    let bearer = format!("Bearer {token}");
    let auth = [("Authorization", bearer.as_str())];
    let opened = initialize(addr, Some(&bearer));
    assert_eq!(opened.status, 200, "{opened:?}");
    let session = opened.header("mcp-session-id").unwrap().to_owned();
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    assert_eq!(
        post_with(addr, Some(&session), &initialized, &auth)
            .unwrap()
            .status,
        202
    );
    let listed = post_with(
        addr,
        Some(&session),
        &json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}}),
        &auth,
    )
    .unwrap();
    let listed = &listed.messages()[0];
    let names = listed["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|tool| tool["name"].as_str().unwrap().to_owned())
        .collect();
    let called = post_with(
        addr,
        Some(&session),
        &json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
                "params": {"name": tool, "arguments": {}}}),
        &auth,
    )
    .unwrap();
    (names, called.messages()[0].clone(), session)
}

#[test]
fn each_caller_is_listed_and_served_what_the_rules_allow_and_every_call_is_audited() {
    let dir = tempfile::tempdir().unwrap();
    let marker = unique_marker("oauth-access");
    let addr = free_addr();
    let audience = format!("http://{addr}/mcp");
    let issuer = Issuer::start(&audience, &format!("{marker}-issuer"));
    let config = json!({
        "mcpManager": {
            "pinning": "off",
            "auth": {"issuer": issuer.url, "audience": audience, "requiredScopes": ["mcp:tools"]},
            "access": {"rules": [
                {"deny": ["ev/test_simple_text", "ev/test_error_handling"], "subjects": ["bob"]},
                {"allow": ["ev/*"], "scopes": ["mcp:tools"]},
            ]},
            "audit": {"file": "audit.jsonl", "arguments": true},
        },
        "mcpServers": {"ev": {"type": "builtin", "server": "everything"}}
    });
    let (guard, _log) = gateway(&config, dir.path(), &addr, &marker);
    let (alice_tools, alice_call, alice_session) =
        list_and_call(&addr, &issuer.token("valid"), "ev__test_simple_text");
    let (bob_tools, bob_call, _) =
        list_and_call(&addr, &issuer.token("bob"), "ev__test_simple_text");
    assert!(
        alice_tools.contains(&"ev__test_simple_text".to_owned()),
        "{alice_tools:?}"
    );
    assert!(
        !bob_tools.contains(&"ev__test_simple_text".to_owned()),
        "{bob_tools:?}"
    );
    assert!(
        !bob_tools.contains(&"ev__test_error_handling".to_owned()),
        "{bob_tools:?}"
    );
    assert_eq!(alice_tools.len(), bob_tools.len() + 2);
    assert_eq!(
        alice_call["result"]["content"][0]["text"],
        "This is a simple text response for testing."
    );
    // Denied: the same error as a tool that does not exist.
    assert_eq!(bob_call["error"]["code"], -32602, "{bob_call}");
    assert_eq!(
        bob_call["error"]["message"],
        "Unknown tool: ev__test_simple_text"
    );
    let (_, unknown, _) = list_and_call(&addr, &issuer.token("bob"), "ev__no_such_tool");
    assert_eq!(unknown["error"]["data"], bob_call["error"]["data"]);
    // Bob's valid token does not open Alice's session.
    let stolen = post_with(
        &addr,
        Some(&alice_session),
        &json!({"jsonrpc": "2.0", "id": 9, "method": "tools/list", "params": {}}),
        &[("Authorization", &format!("Bearer {}", issuer.token("bob")))],
    )
    .unwrap();
    assert_eq!(stolen.status, 404, "{stolen:?}");

    // The audit log: one line per call, allowed or denied, by subject.
    let audit = dir.path().join("audit.jsonl");
    let lines: Vec<Value> = {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let text = std::fs::read_to_string(&audit).unwrap_or_default();
            if text.lines().count() >= 2 || std::time::Instant::now() > deadline {
                break text
                    .lines()
                    .map(|l| serde_json::from_str(l).unwrap())
                    .collect();
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    };
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(
        (
            &lines[0]["subject"],
            &lines[0]["server"],
            &lines[0]["tool"],
            &lines[0]["outcome"]
        ),
        (
            &json!("alice"),
            &json!("ev"),
            &json!("test_simple_text"),
            &json!("allowed")
        )
    );
    assert_eq!(lines[0]["arguments"], json!({}));
    assert_eq!(
        (&lines[1]["subject"], &lines[1]["outcome"]),
        (&json!("bob"), &json!("denied"))
    );
    drop(guard);
    assert_none_marked(&marker);
}

#[test]
fn a_task_is_its_creators_alone_even_without_a_session() {
    let dir = tempfile::tempdir().unwrap();
    let marker = unique_marker("oauth-tasks");
    let addr = free_addr();
    let audience = format!("http://{addr}/mcp");
    let issuer = Issuer::start(&audience, &format!("{marker}-issuer"));
    let config = json!({
        "mcpManager": {"pinning": "off", "auth": {"issuer": issuer.url, "audience": audience}},
        "mcpServers": {"one": {"type": "builtin", "server": "everything", "namespace": "a", "protocol": "stateless"}}
    });
    let (guard, _log) = gateway(&config, dir.path(), &addr, &marker);
    // 2026-07-28 requests, each on its own: no session to tie a task to.
    let ask = |token: &str, method: &str, mut params: Value| {
        params["_meta"] = json!({
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {"extensions": {"io.modelcontextprotocol/tasks": {}}},
            "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "1"}
        });
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let bearer = format!("Bearer {token}");
        let response = post_with(&addr, None, &body, &[("Authorization", &bearer)]).unwrap();
        response.messages().remove(0)
    };
    let (alice, bob) = (issuer.token("valid"), issuer.token("bob"));
    let created = ask(
        &alice,
        "tools/call",
        json!({"name": "a__slow_compute", "arguments": {"seconds": 0.1, "label": "x"}}),
    );
    let id = created["result"]["taskId"]
        .as_str()
        .unwrap_or_else(|| panic!("{created}"))
        .to_owned();
    let theirs = ask(&alice, "tasks/get", json!({"taskId": id}));
    assert!(theirs["result"]["status"].is_string(), "{theirs}");
    for (method, params) in [
        ("tasks/get", json!({"taskId": id})),
        ("tasks/cancel", json!({"taskId": id})),
        ("tasks/get", json!({"taskId": "one/never-created"})),
    ] {
        let refused = ask(&bob, method, params);
        assert_eq!(refused["error"]["code"], -32602, "{method}: {refused}");
        assert!(
            refused["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("Unknown task"),
            "{refused}"
        );
    }
    drop(guard);
    assert_none_marked(&marker);
}

#[test]
fn an_audience_that_is_not_the_gateways_url_is_checked_as_given() {
    let dir = tempfile::tempdir().unwrap();
    let marker = unique_marker("oauth-entra");
    let addr = free_addr();
    let resource = format!("http://{addr}/mcp");
    // As Entra ID names an API: tokens carry its identifier, not a URL.
    let issuer = Issuer::start("api://mcp-gateway", &format!("{marker}-issuer"));
    let config = json!({
        "mcpManager": {"pinning": "off", "auth": {
            "issuer": issuer.url, "audience": "api://mcp-gateway", "resource": resource,
        }},
        "mcpServers": {"ev": {"type": "builtin", "server": "everything"}}
    });
    let (guard, _log) = gateway(&config, dir.path(), &addr, &marker);
    let document = exchange(
        &addr,
        "GET",
        "/.well-known/oauth-protected-resource/mcp",
        &[],
        b"",
    )
    .unwrap();
    let document: Value = serde_json::from_str(&document.body).unwrap();
    assert_eq!(document["resource"], resource);
    let served = initialize(&addr, Some(&format!("Bearer {}", issuer.token("valid"))));
    assert_eq!(served.status, 200, "{served:?}");
    let other = initialize(
        &addr,
        Some(&format!("Bearer {}", issuer.token("otherAudience"))),
    );
    assert_eq!(other.status, 401, "{other:?}");
    drop(guard);
    assert_none_marked(&marker);
}

#[test]
fn a_bridged_call_waiting_for_input_is_resumed_by_its_caller_only() {
    let dir = tempfile::tempdir().unwrap();
    let marker = unique_marker("oauth-bridge");
    let addr = free_addr();
    let audience = format!("http://{addr}/mcp");
    let issuer = Issuer::start(&audience, &format!("{marker}-issuer"));
    // A 2025 backend: a 2026-07-28 client's call to it is bridged, its
    // questions coming back as `input_required` with a `requestState`.
    let config = json!({
        "mcpManager": {"pinning": "off", "auth": {"issuer": issuer.url, "audience": audience}},
        "mcpServers": {"ev": {"type": "builtin", "server": "everything", "protocol": "stateful"}}
    });
    let (guard, _log) = gateway(&config, dir.path(), &addr, &marker);
    let call = |token: &str, extra: Value| {
        let mut params = json!({
            "name": "ev__test_elicitation",
            "arguments": {"message": "Who are you?"},
            "_meta": {
                "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                "io.modelcontextprotocol/clientCapabilities": {"elicitation": {}},
                "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "1"}
            }
        });
        for (key, value) in extra.as_object().unwrap() {
            params[key] = value.clone();
        }
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params});
        let bearer = format!("Bearer {token}");
        post_with(&addr, None, &body, &[("Authorization", &bearer)])
            .unwrap()
            .messages()
            .remove(0)
    };
    let (alice, bob) = (issuer.token("valid"), issuer.token("bob"));
    let answers = |asked: &Value| {
        let keys = asked["result"]["inputRequests"]
            .as_object()
            .unwrap_or_else(|| panic!("{asked}"));
        let answers: serde_json::Map<String, Value> = keys
            .keys()
            .map(|key| (key.clone(), json!({"action": "accept", "content": {"username": "alice", "email": "a@example.com"}})))
            .collect();
        json!({"requestState": asked["result"]["requestState"], "inputResponses": answers})
    };
    let asked = call(&alice, json!({}));
    assert_eq!(asked["result"]["resultType"], "input_required", "{asked}");
    // Bob holding Alice's state resumes nothing, and ends her call: the
    // state is spent here.
    let stolen = call(&bob, answers(&asked));
    assert_eq!(stolen["error"]["code"], -32602, "{stolen}");
    assert!(
        stolen["error"]["message"]
            .as_str()
            .unwrap()
            .contains("has ended"),
        "{stolen}"
    );
    assert!(!stolen.to_string().contains("a@example.com"), "{stolen}");
    let late = call(&alice, answers(&asked));
    assert_eq!(late["error"]["code"], -32602, "{late}");
    // Asked again, Alice answers and gets her result.
    let asked = call(&alice, json!({}));
    let done = call(&alice, answers(&asked));
    let text = done["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("{done}"));
    assert!(text.contains("alice"), "{done}");
    // Her state, sent again: spent, it runs nothing a second time.
    let again = call(&alice, answers(&asked));
    assert_eq!(again["error"]["code"], -32602, "{again}");
    drop(guard);
    assert_none_marked(&marker);
}

/// `mcp-manager ARGS` with the user data of `data`; its exit status,
/// stdout and stderr.
fn manager_in(data: &std::path::Path, args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_mcp-manager"))
        .args(args)
        .env("XDG_DATA_HOME", data)
        .env_remove("MCP_MANAGER_AUTH_TOKEN")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `GET url` (an `http://127.0.0.1:PORT/...` URL), not following redirects.
fn get(url: &str) -> Response {
    let rest = url.strip_prefix("http://").unwrap();
    let (addr, path) = rest.split_at(rest.find('/').unwrap());
    exchange(addr, "GET", path, &[], b"").unwrap()
}

/// The token requests the authorization server answered, by grant type.
fn grants(issuer: &Issuer) -> Value {
    serde_json::from_str(&get(&format!("{}/grants", issuer.url)).body).unwrap()
}

/// Signs in to `b` with `mcp-manager login`, playing the user's browser:
/// opens the URL it prints, and follows the authorization server's
/// redirect back to its loopback listener. The URL it printed, and how
/// `login` ended (its success, and its stderr).
fn log_in(config: &str, data: &std::path::Path, issuer: &str) -> (String, bool, String) {
    let mut login = Command::new(env!("CARGO_BIN_EXE_mcp-manager"))
        .args(["login", "b", "--config", config, "--wait", "60"])
        .env("XDG_DATA_HOME", data)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut url = String::new();
    BufReader::new(login.stdout.take().unwrap())
        .read_line(&mut url)
        .unwrap();
    let url = url.trim().to_owned();
    assert!(url.starts_with(&format!("{issuer}/authorize?")), "{url:?}");
    let authorize = get(&url);
    assert_eq!(authorize.status, 302, "{authorize:?}");
    let back = authorize.header("location").unwrap().to_owned();
    assert!(back.starts_with("http://127.0.0.1:"), "{back}");
    let page = get(&back);
    assert_eq!(page.status, 200, "{page:?}");
    assert!(page.body.contains("close this window"), "{page:?}");
    let out = login.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (url, out.status.success(), stderr)
}

#[test]
fn a_remote_server_that_asks_for_oauth_is_signed_in_to_once_and_its_token_refreshed() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let marker = unique_marker("oauth-login");
    // Gateway B is the protected server: an OAuth resource server in
    // front of the reference server.
    let b_addr = free_addr();
    let audience = format!("http://{b_addr}/mcp");
    let issuer = Issuer::start(&audience, &format!("{marker}-issuer"));
    let b_dir = dir.path().join("b");
    std::fs::create_dir(&b_dir).unwrap();
    let b_config = json!({
        "mcpManager": {"pinning": "off", "auth": {
            "issuer": issuer.url, "audience": audience, "requiredScopes": ["mcp:tools"]}},
        "mcpServers": {"ev": {"type": "builtin", "server": "everything"}}
    });
    let (_b, _) = gateway(&b_config, &b_dir, &b_addr, &format!("{marker}-b"));
    // Gateway A has B as a remote server, signed in to with a client
    // registered beforehand (the mock server has no registration).
    let a_config = json!({
        "mcpManager": {"pinning": "off"},
        "mcpServers": {"b": {
            "url": audience,
            "oauth": {"clientId": "mcp-manager-test", "scope": "mcp:tools"},
            "restart": {"policy": "always", "initialBackoffMs": 100, "maxBackoffMs": 300, "maxRestarts": 1000}
        }}
    });
    let a_path = dir.path().join("a.json");
    std::fs::write(&a_path, a_config.to_string()).unwrap();
    let a_path = a_path.to_str().unwrap();

    // Before signing in: the server asks, and the user is told what to run.
    let (code, _, stderr) = manager_in(&data, &["call", "--config", a_path, "b/ev__greet"]);
    assert_ne!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("asks to be signed in to with OAuth: run `mcp-manager login b`"),
        "{stderr}"
    );
    // A gateway started before signing in takes the token once there is one.
    let a_addr = free_addr();
    let (a, log) = spawn_manager_with(
        &["serve", "--http", &a_addr, "--config", a_path],
        &format!("{marker}-a"),
        &[("XDG_DATA_HOME", data.to_str().unwrap())],
    );
    let (_, log) = wait_for_listening(log);

    let (url, signed_in, stderr) = log_in(a_path, &data, &issuer.url);
    assert!(signed_in, "{stderr}");
    assert!(
        stderr.contains("Signed in to `b` (scope: mcp:tools)"),
        "{stderr}"
    );
    for part in [
        "response_type=code",
        "client_id=mcp-manager-test",
        "code_challenge_method=S256",
        "scope=mcp%3Atools",
        &format!("resource=http%3A%2F%2F{}%2Fmcp", b_addr.replace(':', "%3A")),
    ] {
        assert!(url.contains(part), "{part} not in {url}");
    }
    let tokens_file = data.join("mcp-manager/tokens.json");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&tokens_file).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    let kept: Value =
        serde_json::from_str(&std::fs::read_to_string(&tokens_file).unwrap()).unwrap();
    assert_eq!(kept["servers"]["b"]["url"], audience);
    let first_token = kept["servers"]["b"]["grant"]["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(kept["servers"]["b"]["grant"]["refresh_token"].is_string());

    // The running gateway: B's tools through A, once its restart finds
    // the token.
    let session = Session::open(&a_addr, "after-login");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let text = loop {
        match session.call_text(1, "b__ev__greet", json!({"name": "Ada"})) {
            Ok(text) => break text,
            Err(error) if std::time::Instant::now() < deadline => {
                let _ = error;
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
            Err(error) => panic!(
                "{error}; log: {:?}; tools: {:?}",
                log.try_iter().collect::<Vec<_>>(),
                session.request(2, "tools/list", json!({}))
            ),
        }
    };
    assert!(text.contains("Ada"), "{text}");
    drop(a);
    assert_eq!(grants(&issuer)["authorization_code"], 1);

    // A token the server refuses (expired, say) is refreshed, kept, and
    // the call goes through.
    let text = std::fs::read_to_string(&tokens_file)
        .unwrap()
        .replace(&first_token, "not-a-token-any-more");
    std::fs::write(&tokens_file, text).unwrap();
    let (code, stdout, stderr) = manager_in(
        &data,
        &[
            "call",
            "--config",
            a_path,
            "b/ev__greet",
            "--args",
            r#"{"name": "Grace"}"#,
        ],
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("Grace"), "{stdout}");
    assert_eq!(grants(&issuer)["refresh_token"], 1);
    let kept: Value =
        serde_json::from_str(&std::fs::read_to_string(&tokens_file).unwrap()).unwrap();
    let refreshed = kept["servers"]["b"]["grant"]["access_token"]
        .as_str()
        .unwrap();
    // (The same claims signed in the same second are the same token.)
    assert_ne!(refreshed, "not-a-token-any-more");
    // The token went to B only: nothing of it in what A printed.
    assert!(!stderr.contains(refreshed) && !stdout.contains(refreshed));

    // Forgotten, it is asked for again.
    let (code, stdout, _) = manager_in(&data, &["login", "b", "--config", a_path, "--forget"]);
    assert_eq!(code, Some(0));
    assert!(stdout.contains("Forgot the token of `b`"), "{stdout}");
    let (code, _, stderr) = manager_in(&data, &["call", "--config", a_path, "b/ev__greet"]);
    assert_ne!(code, Some(0));
    assert!(stderr.contains("run `mcp-manager login b`"), "{stderr}");

    // A tokens file that holds something else is left as it is, and a
    // sign-in whose token cannot be kept fails.
    std::fs::write(&tokens_file, "[1]").unwrap();
    let (_, signed_in, stderr) = log_in(a_path, &data, &issuer.url);
    assert!(!signed_in, "{stderr}");
    assert!(
        stderr.contains("the token could not be kept") && stderr.contains("not a tokens file"),
        "{stderr}"
    );
    assert_eq!(std::fs::read_to_string(&tokens_file).unwrap(), "[1]");
    assert_none_marked(&marker);
}

#[test]
fn a_session_taken_over_by_another_replica_stays_its_subjects() {
    let dir = tempfile::tempdir().unwrap();
    let marker = unique_marker("oauth-replicas");
    let issuer = Issuer::start("api://mcp-gateway", &format!("{marker}-issuer"));
    let (a_addr, b_addr) = (free_addr(), free_addr());
    let replica = |addr: &str, name: &str| {
        let folder = dir.path().join(name);
        std::fs::create_dir(&folder).unwrap();
        let config = json!({
            "mcpManager": {
                "pinning": "off",
                "auth": {"issuer": issuer.url, "audience": "api://mcp-gateway",
                         "resource": "https://mcp.example.com/mcp"},
                "cluster": {"key": "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"}
            },
            "mcpServers": {"ev": {"type": "builtin", "server": "everything"}}
        });
        gateway(&config, &folder, addr, &format!("{marker}-{name}"))
    };
    let (a, _) = replica(&a_addr, "a");
    let (b, _) = replica(&b_addr, "b");
    let (_, _, session) = list_and_call(&a_addr, &issuer.token("valid"), "ev__test_simple_text");
    let list = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/list"});
    // Bob's token on Alice's session, at the replica that does not have
    // it: as unknown as any other id, and not taken over for him.
    let bob = format!("Bearer {}", issuer.token("bob"));
    let refused = post_with(&b_addr, Some(&session), &list, &[("Authorization", &bob)]).unwrap();
    assert_eq!(refused.status, 404, "{refused:?}");
    // Alice's token there: taken over, hers.
    let alice = format!("Bearer {}", issuer.token("valid"));
    let served = post_with(&b_addr, Some(&session), &list, &[("Authorization", &alice)]).unwrap();
    assert_eq!(served.status, 200, "{served:?}");
    assert!(
        served.messages()[0]["result"]["tools"].is_array(),
        "{served:?}"
    );
    let refused = post_with(&b_addr, Some(&session), &list, &[("Authorization", &bob)]).unwrap();
    assert_eq!(refused.status, 404, "{refused:?}");
    drop((a, b));
    assert_none_marked(&marker);
}
