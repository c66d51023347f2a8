//! The gateway in front of three real backends (server-everything and the
//! FastMCP peer over stdio, the built-in server in-process), used by the
//! official TypeScript SDK client and the inspector CLI over stdio and HTTP,
//! by sixteen concurrent
//! HTTP sessions, and with one backend killed while a session is open.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod support;

use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{
    Guard, HttpGateway, MARKER_VAR, Session, alive, assert_none_marked, kill9, marked_by_arg,
    parent_of, peer, unique_marker, write_config,
};

const SIMPLE_TEXT: &str = "This is a simple text response for testing.";

/// Runs the TypeScript client with `args`; returns its JSON report.
fn run_ts_client(args: &[&str], marker: &str) -> Value {
    let script = format!("{}/tests/clients/ts_client.mjs", env!("CARGO_MANIFEST_DIR"));
    let stdout = run_node(&[&[script.as_str()][..], args].concat(), None, marker);
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

/// Runs Node.js with `args` in `cwd`; see [`run_client`].
fn run_node(args: &[&str], cwd: Option<&std::path::Path>, marker: &str) -> String {
    let mut command = Command::new(peer("MCP_PEER_NODE"));
    if let Some(cwd) = cwd {
        command.current_dir(cwd);
    }
    command
        .args(args)
        .env("MCP_PEER_NODE_MODULES", peer("MCP_PEER_NODE_MODULES"));
    run_client(command, marker)
}

/// Runs a client program tagged with `marker`, killed with everything it
/// started if it takes over 120 s; returns its standard output, or panics
/// with its standard error if it fails.
fn run_client(mut command: Command, marker: &str) -> String {
    command.env("XDG_DATA_HOME", support::TEST_DATA_HOME);
    let shown = format!("{command:?}");
    let mut child = command
        .env(MARKER_VAR, marker)
        .env_remove("MCP_MANAGER_AUTH_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let mut guard = Guard {
        child,
        marker: marker.to_owned(),
    };
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = guard.child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() >= deadline {
            drop(guard);
            panic!("{shown} hung:\n{}", err.join().unwrap_or_default());
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stdout = out.join().unwrap();
    let stderr = err.join().unwrap();
    assert!(
        status.success(),
        "{shown} failed ({status}):\n{stdout}\n{stderr}"
    );
    stdout
}

/// Runs `@modelcontextprotocol/inspector-cli` in CLI mode on `target` (a
/// URL or a command line) with `args`; returns its JSON output.
fn run_inspector(target: &[&str], args: &[&str], marker: &str) -> Value {
    let script = peer("MCP_PEER_INSPECTOR_CLI");
    // It finds its own package.json relative to the working directory.
    let cwd = std::path::Path::new(&script).parent().unwrap().to_owned();
    let node_args = [&[script.as_str(), "--cli"][..], target, args].concat();
    // A marker of its own: cleaning up after one run must not take down a
    // gateway that the next run still needs.
    let stdout = run_node(&node_args, Some(&cwd), &unique_marker(marker));
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

/// Lists and calls tools of all three backends with the inspector CLI.
fn check_with_inspector(target: &[&str], marker: &str) {
    let listed = run_inspector(target, &["--method", "tools/list"], marker);
    let names: Vec<&str> = listed["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("no tools: {listed}"))
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    for name in ["ev__echo", "py__add", "rs__test_simple_text"] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
    let calls: [(&[&str], &str); 3] = [
        (
            &["--tool-name", "ev__echo", "--tool-arg", "message=hi"],
            "Echo: hi",
        ),
        (
            &["--tool-name", "py__add", "--tool-arg", "a=40", "b=2"],
            "42",
        ),
        (&["--tool-name", "rs__test_simple_text"], SIMPLE_TEXT),
    ];
    for (call, expected) in calls {
        let result = run_inspector(
            target,
            &[&["--method", "tools/call"][..], call].concat(),
            marker,
        );
        assert_eq!(
            result["content"][0]["text"], expected,
            "{call:?} answered {result}"
        );
        assert_ne!(result["isError"], true, "{call:?} answered {result}");
    }
}

/// Checks the report of a client that listed the gateway's tools and called
/// one tool of each backend, `ev__echo` with `message` set to `greeting`.
fn check_report(report: &Value, greeting: &str) {
    assert_eq!(report["server"], "mcp-manager", "{report}");
    let tools: Vec<&str> = report["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    for name in [
        "ev__echo",
        "ev__get-sum",
        "py__add",
        "py__echo",
        "py__count",
        "py__sleep",
        "rs__test_simple_text",
    ] {
        assert!(tools.contains(&name), "{name} missing from {tools:?}");
    }
    for tool in &tools {
        assert!(
            ["ev__", "py__", "rs__", "st__"]
                .iter()
                .any(|prefix| tool.starts_with(prefix)),
            "{tool} has no backend namespace"
        );
    }
    assert_eq!(
        report["ev"],
        json!({"isError": false, "text": [format!("Echo: {greeting}")]})
    );
    assert_eq!(report["py"], json!({"isError": false, "text": ["42"]}));
    assert_eq!(
        report["rs"],
        json!({"isError": false, "text": [SIMPLE_TEXT]})
    );
}

#[test]
fn typescript_sdk_client_over_stdio_reaches_all_three_backends() {
    let marker = unique_marker("ts-stdio");
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &marker);
    let report = run_ts_client(
        &[
            "stdio",
            env!("CARGO_BIN_EXE_mcp-manager"),
            config.to_str().unwrap(),
        ],
        &marker,
    );
    check_report(&report, "hi from ts");
    assert_eq!(report["sessionId"], Value::Null);
    assert_none_marked(&marker);
}

#[test]
fn typescript_sdk_client_over_http_reaches_all_three_backends() {
    let marker = unique_marker("ts-http");
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &marker);
    let gateway = HttpGateway::start(&config, &marker);
    let report = run_ts_client(&["http", &gateway.url()], &marker);
    check_report(&report, "hi from ts");
    assert!(
        report["sessionId"].as_str().is_some_and(|s| !s.is_empty()),
        "no session id: {report}"
    );
    drop(gateway);
    assert_none_marked(&marker);
}

/// Runs the Python SDK client script with `args`; returns its JSON report.
fn run_python_client(args: &[&str], marker: &str) -> Value {
    run_python_script("python_three_backends.py", args, marker)
}

/// Runs Python SDK client `script` (in `tests/clients`) with `args`;
/// returns its JSON report.
fn run_python_script(script: &str, args: &[&str], marker: &str) -> Value {
    let script = format!("{}/tests/clients/{script}", env!("CARGO_MANIFEST_DIR"));
    let mut command = Command::new(peer("MCP_PEER_PYTHON"));
    command.arg(&script).args(args);
    let stdout = run_client(command, marker);
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

/// Checks the requests to the client of `report`, with `asked` for the
/// questions it records.
fn report_without_last_question(report: &Value, asked: Vec<Value>) {
    let mut report = report.clone();
    report["asked"] = Value::Array(asked);
    check_requests_to_the_client(&report);
}

/// Checks that the servers' requests to the client reached the Python
/// client's callbacks and their answers the servers: sampling asked by
/// server-everything (npm), elicitation and roots by the built-in server.
fn check_requests_to_the_client(report: &Value) {
    assert_eq!(
        report["asked"],
        json!(["sampling/createMessage", "elicitation/create", "roots/list"]),
        "{report}"
    );
    let roots = report["rs_roots"]["text"][0].as_str().unwrap_or_default();
    assert!(roots.contains("file:///work/project"), "{report}");
    let sampled = report["ev_sampling"]["text"][0]
        .as_str()
        .unwrap_or_default();
    assert!(
        sampled.contains("sampled: Resource trigger-sampling-request context: hello"),
        "{report}"
    );
    let elicited = report["rs_elicitation"]["text"][0]
        .as_str()
        .unwrap_or_default();
    assert!(
        elicited.contains("action=accept") && elicited.contains("ada@example.com"),
        "{report}"
    );
}

#[test]
fn python_sdk_client_over_stdio_reaches_all_three_backends() {
    let marker = unique_marker("py-stdio");
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &marker);
    let report = run_python_client(
        &[
            "stdio",
            env!("CARGO_BIN_EXE_mcp-manager"),
            config.to_str().unwrap(),
        ],
        &marker,
    );
    check_report(&report, "hi from py");
    check_requests_to_the_client(&report);
    assert_none_marked(&marker);
}

/// Adds to `config` a fourth backend: the built-in server spoken to
/// statelessly (2026-07-28), namespace `st`.
fn add_stateless_backend(config: &std::path::Path) {
    let mut value: Value = serde_json::from_slice(&std::fs::read(config).unwrap()).unwrap();
    value["mcpServers"]["stateless"] = json!({
        "type": "builtin", "server": "everything", "namespace": "st", "protocol": "stateless"
    });
    std::fs::write(config, value.to_string()).unwrap();
}

#[test]
fn python_sdk_client_over_http_reaches_all_three_backends() {
    let marker = unique_marker("py-http");
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &marker);
    add_stateless_backend(&config);
    let gateway = HttpGateway::start(&config, &marker);
    let report = run_python_client(&["http", &gateway.url()], &unique_marker("py-client"));
    check_report(&report, "hi from py");
    assert_eq!(
        report["st_input_required"],
        json!({"isError": false, "text": ["Hello, Grace!"]}),
        "{report}"
    );
    // The stateless backend's question came last.
    let mut asked = report["asked"].as_array().unwrap().clone();
    assert_eq!(asked.pop(), Some(json!("elicitation/create")));
    report_without_last_question(&report, asked);
    drop(gateway);
    assert_none_marked(&marker);
}

#[test]
fn python_sdk_client_over_legacy_sse_reaches_all_three_backends() {
    let marker = unique_marker("py-sse");
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &marker);
    let gateway = HttpGateway::start(&config, &marker);
    let url = format!("http://{}/sse", gateway.addr);
    let report = run_python_client(&["sse", &url], &unique_marker("py-client"));
    check_report(&report, "hi from py");
    check_requests_to_the_client(&report);
    drop(gateway);
    assert_none_marked(&marker);
}

#[test]
fn python_sdk_modern_client_lists_calls_and_listens_through_the_gateway() {
    let marker = unique_marker("py-modern");
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &marker);
    let gateway = HttpGateway::start(&config, &marker);
    let report = run_python_script(
        "python_modern_client.py",
        &[&gateway.url()],
        &unique_marker("py-client"),
    );
    let tools = report["tools"].as_array().unwrap();
    for name in ["ev__echo", "py__add", "rs__test_simple_text"] {
        assert!(tools.contains(&json!(name)), "{name} missing: {report}");
    }
    assert_eq!(report["ev"], json!(["Echo: modern"]));
    assert_eq!(report["py"], json!(["5"]));
    assert_eq!(report["rs"], json!([SIMPLE_TEXT]));
    // Backends in sessions ask; the 2026 client answers input_required.
    assert_eq!(
        report["asked"],
        json!(["sampling/createMessage", "elicitation/create"]),
        "{report}"
    );
    let sampled = report["ev_sampling"][0].as_str().unwrap_or_default();
    assert!(
        sampled.contains("sampled: Resource trigger-sampling-request context: modern"),
        "{report}"
    );
    let elicited = report["rs_elicitation"][0].as_str().unwrap_or_default();
    assert!(elicited.contains("lin@example.com"), "{report}");
    assert_eq!(
        report["honored"],
        json!({"toolsListChanged": true, "resourceSubscriptions": ["test://watched-resource"]})
    );
    assert_eq!(
        report["events"],
        json!(["ResourceUpdated", "ToolsListChanged"]),
        "{report}"
    );
    let after = report["tools_after"].as_array().unwrap();
    assert!(after.contains(&json!("rs__test_dynamic_tool")), "{report}");
    drop(gateway);
    assert_none_marked(&marker);
}

#[test]
fn a_stateless_client_gets_2026_results_from_stateful_backends() {
    let marker = unique_marker("stateless-client");
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &marker);
    let gateway = HttpGateway::start(&config, &marker);
    let meta = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "1"}
    });
    let ask = |id: u64, method: &str, params: Value| {
        let mut params = params;
        params["_meta"] = meta.clone();
        let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let response = support::post(&gateway.addr, None, &body).unwrap();
        assert_eq!(response.status, 200, "{method}: {response:?}");
        let mut messages = response.messages();
        assert_eq!(messages.len(), 1, "{messages:?}");
        messages.remove(0)
    };
    // Both backends speak 2025 sessions; the answers are 2026 results.
    let echo = ask(
        1,
        "tools/call",
        json!({"name": "ev__echo", "arguments": {"message": "now"}}),
    );
    assert_eq!(echo["result"]["resultType"], "complete", "{echo}");
    assert_eq!(echo["result"]["content"][0]["text"], "Echo: now");
    let add = ask(
        2,
        "tools/call",
        json!({"name": "py__add", "arguments": {"a": 1, "b": 2}}),
    );
    assert_eq!(add["result"]["resultType"], "complete", "{add}");
    assert_eq!(add["result"]["content"][0]["text"], "3");
    let list = ask(3, "tools/list", json!({}));
    assert_eq!(list["result"]["resultType"], "complete", "{list}");
    assert_eq!(list["result"]["cacheScope"], "private");
    assert!(list["result"]["tools"].as_array().unwrap().len() > 3);
    drop(gateway);
    assert_none_marked(&marker);
}

#[test]
fn inspector_cli_lists_and_calls_tools_through_the_gateway_over_http() {
    let marker = unique_marker("inspector-http");
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &marker);
    let gateway = HttpGateway::start(&config, &marker);
    let url = gateway.url();
    check_with_inspector(&[url.as_str(), "--transport", "http"], &marker);
    drop(gateway);
    assert_none_marked(&marker);
}

#[test]
fn inspector_cli_lists_and_calls_tools_through_the_gateway_over_stdio() {
    let marker = unique_marker("inspector-stdio");
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &marker);
    let target = [
        env!("CARGO_BIN_EXE_mcp-manager"),
        "serve",
        "--stdio",
        // Not `--config`: the inspector takes that as its own option.
        "-c",
        config.to_str().unwrap(),
    ];
    check_with_inspector(&target, &marker);
    assert_none_marked(&marker);
}

#[test]
fn sixteen_http_sessions_each_get_their_own_answers() {
    const CLIENTS: usize = 16;
    const REQUESTS: u64 = 10;
    let marker = unique_marker("isolation");
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &marker);
    let gateway = HttpGateway::start(&config, &marker);
    let sessions: Vec<Arc<Session>> = (0..CLIENTS)
        .map(|c| Arc::new(Session::open(&gateway.addr, &format!("client-{c}"))))
        .collect();
    let mut ids: Vec<&str> = sessions.iter().map(|s| s.id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), CLIENTS, "session ids are not distinct");

    // Every client numbers its requests 1..=10 and sends them all at once.
    let start = Arc::new(Barrier::new(CLIENTS * REQUESTS as usize));
    let mut workers = Vec::new();
    for (c, session) in sessions.iter().enumerate() {
        for n in 1..=REQUESTS {
            let session = Arc::clone(session);
            let start = Arc::clone(&start);
            workers.push(std::thread::spawn(move || {
                let text = format!("c{c}-r{n}");
                start.wait();
                let got = session.call_text(n, "py__echo", json!({"text": text}));
                (text, got)
            }));
        }
    }
    let mut wrong = Vec::new();
    for worker in workers {
        let (sent, got) = worker.join().unwrap();
        if got.as_deref() != Ok(sent.as_str()) {
            wrong.push(format!("sent {sent:?}, got {got:?}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} answers wrong:\n{}\ngateway log:\n{}",
        wrong.len(),
        CLIENTS * REQUESTS as usize,
        wrong.join("\n"),
        gateway.drain_log()
    );
    drop(gateway);
    assert_none_marked(&marker);
}

/// The reference server over Streamable HTTP, tagged with `marker`;
/// its URL.
fn reference_server_over_http(marker: &str) -> (Guard, String) {
    let (guard, lines) =
        support::spawn_manager(&["builtin", "everything", "--http", "127.0.0.1:0"], marker);
    let (url, _) = support::wait_for_listening(lines);
    (guard, url)
}

/// The reference server's stdio processes tagged with `marker`.
fn stdio_reference_servers(marker: &str) -> Vec<u32> {
    support::marked(marker)
        .into_iter()
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|line| line.split(|b| *b == 0).any(|arg| arg == b"--stdio"))
        })
        .collect()
}

#[test]
fn sixteen_sessions_sampling_at_once_each_reach_their_own_caller_or_none() {
    const SESSIONS: usize = 16;
    let marker = unique_marker("sampling-routing");
    let dir = tempfile::tempdir().unwrap();
    let (_backend, url) = reference_server_over_http(&marker);
    let exe = env!("CARGO_BIN_EXE_mcp-manager");
    let stdio = |namespace: &str| {
        json!({"command": exe, "args": ["builtin", "everything", "--stdio"],
            "namespace": namespace, "env": {MARKER_VAR: &marker}})
    };
    let mut per_client = stdio("p");
    per_client["sessions"] = json!("per-client");
    let config = json!({"mcpServers": {
        "http": {"url": url, "namespace": "h"},
        "shared": stdio("s"),
        "mine": per_client,
    }});
    let gateway = HttpGateway::over(&config, dir.path(), &marker);
    assert_eq!(
        stdio_reference_servers(&marker).len(),
        2,
        "one process per stdio entry"
    );
    let sessions = SESSIONS.to_string();
    // The client's own marker: what it leaves behind is killed after each
    // run, and the gateway must live on.
    let client_marker = format!("{marker}-client");
    let run = |tool: &str| -> Vec<Value> {
        let outcomes = run_python_script(
            "python_concurrent_sampling.py",
            &[&gateway.url(), tool, &sessions],
            &client_marker,
        );
        outcomes.as_array().unwrap().clone()
    };
    let own = |n: usize, outcome: &Value| {
        outcome["text"]
            .as_str()
            .is_some_and(|t| t.contains(&format!("answer-for-{n}|saw:session-{n}")))
    };
    // Over HTTP the backend asks on the stream of the call it serves, and
    // a per-client server's connection has one client: each sampling
    // request reaches its own caller.
    for tool in ["h__test_sampling", "p__test_sampling"] {
        let outcomes = run(tool);
        for (n, outcome) in outcomes.iter().enumerate() {
            assert!(own(n, outcome), "{tool}, session {n}: {outcome}");
        }
    }
    // A shared stdio connection says nothing of which call a request is
    // for: with several clients' calls in flight, it is refused, never
    // put to another client.
    let outcomes = run("s__test_sampling");
    for (n, outcome) in outcomes.iter().enumerate() {
        let refused = outcome["error"]
            .as_str()
            .is_some_and(|e| e.contains("several clients") && e.contains("per-client"));
        assert!(own(n, outcome) || refused, "session {n}: {outcome}");
    }
    // The per-client instances end with their sessions.
    let deadline = Instant::now() + Duration::from_secs(10);
    while stdio_reference_servers(&marker).len() > 2 {
        assert!(
            Instant::now() < deadline,
            "per-client instances left running"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(gateway);
    drop(_backend);
    assert_none_marked(&marker);
    assert_none_marked(&client_marker);
}

#[test]
fn a_per_client_server_gets_its_clients_roots_and_their_changes() {
    let marker = unique_marker("roots");
    let dir = tempfile::tempdir().unwrap();
    let config = json!({"mcpServers": {"ev": {
        "command": peer("MCP_PEER_NODE"),
        "args": [peer("MCP_PEER_EVERYTHING"), "stdio"],
        "namespace": "ev",
        "sessions": "per-client",
        "env": {MARKER_VAR: &marker},
    }}});
    let gateway = HttpGateway::over(&config, dir.path(), &marker);
    let report = run_python_script(
        "python_roots_client.py",
        &[&gateway.url(), "ev__get-roots-list"],
        &format!("{marker}-client"),
    );
    let saw = |key: &str, root: &str| report[key].as_str().is_some_and(|t| t.contains(root));
    // server-everything asks its client for roots once, outside any call,
    // and keeps them until told they changed: its instance asked this
    // client, lived on between the calls, and was told of the change.
    assert!(saw("before", "file:///work/first"), "{report}");
    assert!(
        saw("unannounced", "file:///work/first"),
        "one instance for the session: {report}"
    );
    assert!(
        saw("after", "file:///work/second"),
        "the change was forwarded: {report}"
    );
    drop(gateway);
    assert_none_marked(&marker);
}

#[test]
fn list_changes_of_stateless_backends_reach_2025_clients_also_after_a_restart() {
    let marker = unique_marker("listen");
    let dir = tempfile::tempdir().unwrap();
    let (_backend, url) = reference_server_over_http(&marker);
    let exe = env!("CARGO_BIN_EXE_mcp-manager");
    let config = json!({"mcpServers": {
        "remote": {"url": url, "namespace": "h", "protocol": "stateless"},
        "local": {"command": exe, "args": ["builtin", "everything", "--stdio"],
            "namespace": "s", "protocol": "stateless", "env": {MARKER_VAR: &marker}},
    }});
    let gateway = HttpGateway::over(&config, dir.path(), &marker);
    let client = format!("{marker}-client");
    let told = |tool: &str, when: &str| {
        let report = run_python_script("python_list_changes.py", &[&gateway.url(), tool], &client);
        assert_eq!(
            report,
            json!({"told": true, "changed": true}),
            "{tool} {when}"
        );
    };
    // A stateless server announces list changes only on its listen
    // streams: the gateway keeps one open upstream.
    told("h__test_trigger_tool_change", "at first");
    told("s__test_trigger_tool_change", "at first");
    // The local one is killed, restarted, and listened to again.
    let stdio = || stdio_reference_servers(&marker).first().copied();
    let first = stdio().expect("the stdio backend runs");
    kill9(first);
    let deadline = Instant::now() + Duration::from_secs(20);
    while stdio().is_none_or(|pid| pid == first) {
        assert!(Instant::now() < deadline, "the backend was not restarted");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Its new process is ready once the gateway answers through it.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let session = Session::open(&gateway.addr, "probe");
        if session
            .call_text(1, "s__test_simple_text", json!({}))
            .is_ok()
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the restarted backend never answered"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    told("s__test_trigger_tool_change", "after the restart");
    drop(gateway);
    drop(_backend);
    assert_none_marked(&marker);
    assert_none_marked(&client);
}

#[test]
fn a_killed_stdio_backend_is_restarted_while_the_others_keep_serving() {
    let marker = unique_marker("kill");
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &marker);
    let gateway = HttpGateway::start(&config, &marker);
    let session = Session::open(&gateway.addr, "survivor");
    let mut id = 0;
    let mut next = || {
        id += 1;
        id
    };
    assert_eq!(
        session.call_text(next(), "py__add", json!({"a": 1, "b": 2})),
        Ok("3".to_owned())
    );

    let fastmcp = marked_by_arg(&marker);
    assert_eq!(fastmcp.len(), 1, "FastMCP processes: {fastmcp:?}");
    let victim = fastmcp[0];
    assert_eq!(parent_of(victim), Some(gateway.guard.pid()));
    kill9(victim);
    let deadline = Instant::now() + Duration::from_secs(5);
    while alive(victim) {
        assert!(Instant::now() < deadline, "{victim} survived kill -9");
        std::thread::sleep(Duration::from_millis(20));
    }

    // The other backends answer at once.
    let began = Instant::now();
    assert_eq!(
        session.call_text(next(), "ev__echo", json!({"message": "still here"})),
        Ok("Echo: still here".to_owned())
    );
    assert_eq!(
        session.call_text(next(), "rs__test_simple_text", json!({})),
        Ok(SIMPLE_TEXT.to_owned())
    );
    assert!(
        began.elapsed() < Duration::from_secs(2),
        "the healthy backends took {:?}",
        began.elapsed()
    );

    // The killed one comes back, in a new process, on the same session.
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut failures = Vec::new();
    loop {
        match session.call_text(next(), "py__add", json!({"a": 40, "b": 2})) {
            Ok(text) => {
                assert_eq!(text, "42");
                break;
            }
            Err(e) => failures.push(e),
        }
        assert!(
            Instant::now() < deadline,
            "py__add did not come back within 15 s:\n{}\ngateway log:\n{}",
            failures.join("\n"),
            gateway.drain_log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let restarted = marked_by_arg(&marker);
    assert_eq!(restarted.len(), 1, "FastMCP processes: {restarted:?}");
    assert_ne!(restarted[0], victim);
    assert_eq!(parent_of(restarted[0]), Some(gateway.guard.pid()));
    drop(gateway);
    assert_none_marked(&marker);
}

#[test]
fn tasks_of_server_everything_are_routed_to_their_session_only() {
    let marker = unique_marker("tasks-v1");
    let dir = tempfile::tempdir().unwrap();
    let config = json!({"mcpServers": {
        "ev": {"command": peer("MCP_PEER_NODE"), "args": [peer("MCP_PEER_EVERYTHING"), "stdio"],
            "namespace": "ev", "env": {MARKER_VAR: &marker}},
        "local": {"type": "builtin", "server": "everything", "namespace": "b"},
    }});
    let gateway = HttpGateway::over(&config, dir.path(), &marker);
    let script = format!(
        "{}/tests/clients/ts_tasks_client.mjs",
        env!("CARGO_MANIFEST_DIR")
    );
    let client = format!("{marker}-client");
    let url = gateway.url();
    let stdout = run_node(
        &[script.as_str(), url.as_str(), "ev__simulate-research-query"],
        None,
        &client,
    );
    let report: Value =
        serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    // The gateway offers server-everything's tasks, and shows its task
    // ids under its name.
    assert!(report["capabilities"]["list"].is_object(), "{report}");
    let id = report["created"]["taskId"].as_str().unwrap();
    assert!(id.starts_with("ev/") && id.len() > 3, "{report}");
    assert_eq!(
        report["statuses"].as_array().unwrap().last().unwrap(),
        "completed",
        "{report}"
    );
    assert!(
        report["resultText"]
            .as_str()
            .unwrap()
            .contains("rust gateways"),
        "{report}"
    );
    assert_eq!(report["relatedTask"], id, "{report}");
    // The task is the first session's: listed to it, unknown to the other.
    assert_eq!(report["listedByA"], json!([id]), "{report}");
    assert_eq!(report["listedByB"], json!([]), "{report}");
    assert_eq!(report["getByB"], -32602, "{report}");
    assert_eq!(report["cancelByB"], -32602, "{report}");
    assert_eq!(report["unknown"], -32602, "{report}");
    assert_eq!(
        report["cancelled"],
        json!({"same": true, "status": "cancelled"}),
        "{report}"
    );
    assert_eq!(report["afterCancel"], "cancelled", "{report}");
    // Status notifications, where the server sent any, reached the owner
    // alone, with the id it knows.
    for notified in report["notifiedA"].as_array().unwrap() {
        assert!(notified.as_str().unwrap().starts_with("ev/"), "{report}");
    }
    assert_eq!(report["notifiedB"], 0, "{report}");
    drop(gateway);
    assert_none_marked(&marker);
    assert_none_marked(&client);
}

#[test]
fn tasks_of_two_stateless_backends_keep_apart_and_go_home() {
    let marker = unique_marker("tasks-v2");
    let dir = tempfile::tempdir().unwrap();
    let exe = env!("CARGO_BIN_EXE_mcp-manager");
    let config = json!({"mcpServers": {
        "one": {"type": "builtin", "server": "everything", "namespace": "a", "protocol": "stateless"},
        "two": {"command": exe, "args": ["builtin", "everything", "--stdio"],
            "namespace": "b", "protocol": "auto", "env": {MARKER_VAR: &marker}},
    }});
    let gateway = HttpGateway::over(&config, dir.path(), &marker);
    let meta = |tasks: bool| {
        let extensions = if tasks {
            json!({"io.modelcontextprotocol/tasks": {}})
        } else {
            json!({})
        };
        json!({
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {"elicitation": {}, "extensions": extensions},
            "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "1"}
        })
    };
    let ask = |method: &str, mut params: Value, tasks: bool| {
        params["_meta"] = meta(tasks);
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let response = support::post(&gateway.addr, None, &body).unwrap();
        let mut messages = response.messages();
        assert_eq!(messages.len(), 1, "{method}: {messages:?}");
        (response.status, messages.remove(0))
    };
    // A tool that must run as a task is listed to the clients that can
    // call it: a 2026-07-28 client (both backends offer the extension), not
    // a 2025 session (neither runs 2025-11-25 tasks).
    let tool_names = |list: &Value| -> Vec<String> {
        list["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let listed = tool_names(&ask("tools/list", json!({}), true).1["result"]);
    for tool in ["a__failing_job", "b__failing_job", "b__slow_compute"] {
        assert!(listed.contains(&tool.to_owned()), "{tool}: {listed:?}");
    }
    let session = Session::open(&gateway.addr, "tasks-v2-session");
    let listed = tool_names(&session.request(2, "tools/list", json!({})).unwrap()["result"]);
    assert!(listed.contains(&"b__slow_compute".to_owned()), "{listed:?}");
    assert!(
        !listed.iter().any(|t| t.ends_with("failing_job")),
        "{listed:?}"
    );
    let discover = ask("server/discover", json!({}), true).1;
    assert_eq!(
        discover["result"]["capabilities"]["extensions"]["io.modelcontextprotocol/tasks"],
        json!({}),
        "{discover}"
    );
    let start = |tool: &str| {
        let (status, created) = ask(
            "tools/call",
            json!({"name": tool, "arguments": {"seconds": 0.2, "label": tool}}),
            true,
        );
        assert_eq!(status, 200);
        assert_eq!(created["result"]["resultType"], "task", "{created}");
        created["result"]["taskId"].as_str().unwrap().to_owned()
    };
    let first = start("a__slow_compute");
    let second = start("b__slow_compute");
    assert!(
        first.starts_with("one/") && second.starts_with("two/"),
        "{first} {second}"
    );
    for (id, tool) in [(&first, "a__slow_compute"), (&second, "b__slow_compute")] {
        let deadline = Instant::now() + Duration::from_secs(10);
        let done = loop {
            let (_, got) = ask("tasks/get", json!({"taskId": id}), true);
            assert_eq!(got["result"]["taskId"], json!(id), "{got}");
            if got["result"]["status"] == "completed" {
                break got;
            }
            assert!(Instant::now() < deadline, "{got}");
            std::thread::sleep(Duration::from_millis(50));
        };
        let text = done["result"]["result"]["content"][0]["text"]
            .as_str()
            .unwrap();
        assert_eq!(text, format!("Computed {tool} in 0.2 s"));
    }
    // Input asked by a task is answered through the gateway.
    let (_, created) = ask(
        "tools/call",
        json!({"name": "b__confirm_delete", "arguments": {"filename": "x"}}),
        true,
    );
    let asking = created["result"]["taskId"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(10);
    while ask("tasks/get", json!({"taskId": &asking}), true).1["result"]["status"]
        != "input_required"
    {
        assert!(Instant::now() < deadline, "never asked");
        std::thread::sleep(Duration::from_millis(50));
    }
    let answer = json!({"confirm": {"action": "accept", "content": {"confirm": true}}});
    let (_, ack) = ask(
        "tasks/update",
        json!({"taskId": &asking, "inputResponses": answer}),
        true,
    );
    assert_eq!(ack["result"], json!({"resultType": "complete"}), "{ack}");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, got) = ask("tasks/get", json!({"taskId": &asking}), true);
        if got["result"]["status"] == "completed" {
            assert_eq!(
                got["result"]["result"]["content"][0]["text"], "Deleted x",
                "{got}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "{got}");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Ids that name no backend, and requests that do not declare the
    // extension, are refused by the gateway itself.
    let (status, unknown) = ask("tasks/get", json!({"taskId": "three/1"}), true);
    assert_eq!(
        (status, unknown["error"]["code"].clone()),
        (200, json!(-32602)),
        "{unknown}"
    );
    let (status, undeclared) = ask("tasks/get", json!({"taskId": &first}), false);
    assert_eq!(
        (status, undeclared["error"]["code"].clone()),
        (400, json!(-32021)),
        "{undeclared}"
    );
    let (status, removed) = ask("tasks/list", json!({}), true);
    assert_eq!(
        (status, removed["error"]["code"].clone()),
        (404, json!(-32601)),
        "{removed}"
    );
    drop(gateway);
    assert_none_marked(&marker);
}

#[test]
fn mirrored_arguments_are_checked_and_passed_on_to_http_backends() {
    let marker = unique_marker("param-headers");
    let dir = tempfile::tempdir().unwrap();
    let (_backend, url) = reference_server_over_http(&marker);
    let config = json!({"mcpServers": {
        "remote": {"url": url, "namespace": "h", "protocol": "stateless"},
    }});
    let gateway = HttpGateway::over(&config, dir.path(), &marker);
    let call = |arguments: Value, extra: &[(&str, &str)]| {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
            "name": "h__test_header_mirroring",
            "arguments": arguments,
            "_meta": {
                "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                "io.modelcontextprotocol/clientCapabilities": {},
            },
        }});
        let response = support::post_with(&gateway.addr, None, &body, extra).unwrap();
        let mut messages = response.messages();
        assert_eq!(messages.len(), 1, "{messages:?}");
        (response.status, messages.remove(0))
    };
    // The gateway checks the headers against the arguments, and the
    // backend, which checks them too, gets them from the gateway.
    let (status, answer) = call(
        json!({"region": "eu west", "priority": 7}),
        &[("Mcp-Param-Region", "eu west"), ("mcp-param-priority", "7")],
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer["result"]["content"][0]["text"], "Region: eu west; priority: 7",
        "{answer}"
    );
    let (status, answer) = call(
        json!({"region": "Zürich"}),
        &[("Mcp-Param-Region", "=?base64?WsO8cmljaA==?=")],
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer["result"]["content"][0]["text"], "Region: Zürich; priority: none",
        "{answer}"
    );
    for (arguments, extra) in [
        (json!({"region": "eu"}), &[][..]),
        (json!({"region": "eu"}), &[("Mcp-Param-Region", "us")][..]),
        (
            json!({"region": "eu"}),
            &[("Mcp-Param-Region", "=?base64?ZXU?=")][..],
        ),
        (
            json!({"region": "eu"}),
            &[("Mcp-Param-Region", "eu"), ("Mcp-Param-Priority", "1")][..],
        ),
    ] {
        let (status, answer) = call(arguments, extra);
        assert_eq!(
            (status, answer["error"]["code"].clone()),
            (400, json!(-32020)),
            "{extra:?}: {answer}"
        );
    }
    drop(gateway);
    drop(_backend);
    assert_none_marked(&marker);
}

#[test]
fn a_2025_client_subscribes_and_sets_the_log_level_of_a_stateless_backend() {
    let marker = unique_marker("bridge-removed");
    let dir = tempfile::tempdir().unwrap();
    let exe = env!("CARGO_BIN_EXE_mcp-manager");
    let config = json!({"mcpServers": {
        "local": {"command": exe, "args": ["builtin", "everything", "--stdio"],
            "namespace": "s", "protocol": "stateless", "env": {MARKER_VAR: &marker}},
    }});
    let gateway = HttpGateway::over(&config, dir.path(), &marker);
    let deadline = Instant::now() + Duration::from_secs(20);
    let pid = loop {
        if let Some(pid) = stdio_reference_servers(&marker).first().copied() {
            break pid;
        }
        assert!(Instant::now() < deadline, "the stdio backend never ran");
        std::thread::sleep(Duration::from_millis(50));
    };
    let report = run_python_script(
        "python_subscribe_client.py",
        &[&gateway.url(), "s__", &pid.to_string()],
        &format!("{marker}-client"),
    );
    // The server has no resources/subscribe nor logging/setLevel (2026-07-28
    // removed them): the gateway's runtime watches the resource on its
    // upstream listen stream and sends the level with every request.
    assert_eq!(report["subscribeOffered"], true, "{report}");
    assert_eq!(report["updated"], true, "{report}");
    let logs = report["logs"].as_array().unwrap();
    assert_eq!(logs.len(), 3, "{report}");
    for log in logs {
        assert_eq!(log["level"], "info", "{report}");
        assert_eq!(
            log["logger"], "local/everything",
            "tagged with its server: {report}"
        );
    }
    assert_eq!(report["updatedAfterRestart"], true, "{report}");
    assert_eq!(report["quietAfterUnsubscribe"], true, "{report}");
    drop(gateway);
    assert_none_marked(&marker);
}
