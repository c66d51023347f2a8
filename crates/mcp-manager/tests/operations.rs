//! Operating the gateway: metrics scraped by a real Prometheus, the admin
//! API and `mcp-manager status`, and the resilience layers (bulkhead,
//! circuit breaker) against real child processes.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{
    Guard, HttpGateway, MARKER_VAR, Session, assert_none_marked, event_stream, exchange, free_addr,
    peer, unique_marker,
};

/// A config of the FastMCP peer as `py` (with `py_options` merged into its
/// entry) and the built-in `echo` server as `rs`.
fn config(dir: &std::path::Path, marker: &str, py_options: &Value) -> std::path::PathBuf {
    let mut py = json!({
        "command": peer("MCP_PEER_PYTHON"),
        "args": [peer("MCP_PEER_FASTMCP"), format!("--marker={marker}")],
        "env": {MARKER_VAR: marker}
    });
    for (key, value) in py_options.as_object().unwrap() {
        py[key] = value.clone();
    }
    let config = json!({
        "mcpServers": {
            "py": py,
            "rs": {"type": "builtin", "server": "echo"}
        }
    });
    let path = dir.join("mcpServers.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
    path
}

/// GET `path` on the admin listener, as JSON, with the status.
fn admin_get(admin: &str, path: &str, token: Option<&str>) -> (u16, Value) {
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth
        .as_deref()
        .map(|a| vec![("Authorization", a)])
        .unwrap_or_default();
    let response = exchange(admin, "GET", path, &headers, b"").unwrap();
    let body = serde_json::from_str(&response.body).unwrap_or(Value::String(response.body));
    (response.status, body)
}

fn admin_post(admin: &str, path: &str, token: &str, body: &Value) -> (u16, Value) {
    let auth = format!("Bearer {token}");
    let payload = serde_json::to_vec(body).unwrap();
    let response = exchange(admin, "POST", path, &[("Authorization", &auth)], &payload).unwrap();
    (
        response.status,
        serde_json::from_str(&response.body).unwrap(),
    )
}

fn metrics(admin: &str) -> String {
    let response = exchange(admin, "GET", "/metrics", &[], b"").unwrap();
    assert_eq!(response.status, 200, "{response:?}");
    assert!(
        response
            .header("content-type")
            .is_some_and(|t| t.starts_with("application/openmetrics-text")),
        "{response:?}"
    );
    response.body
}

/// The value of the sample `series` (name and labels, exactly) in `text`.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
}

/// Waits up to `within` for `check` to hold, polling.
fn eventually<T>(within: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = check() {
            return Some(value);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn server<'a>(servers: &'a Value, name: &str) -> &'a Value {
    servers["servers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no server {name} in {servers}"))
}

#[test]
fn a_real_prometheus_scrapes_the_request_counter() {
    let dir = tempfile::tempdir().unwrap();
    let marker = unique_marker("prometheus");
    let admin = free_addr();
    let gateway = HttpGateway::start_with(
        &config(dir.path(), &marker, &json!({})),
        &marker,
        &["--admin", &admin],
    );
    let session = Session::open(&gateway.addr, "prometheus-test");
    for n in 0..7 {
        let sum = session.call_text(n + 1, "py__add", json!({"a": n, "b": 1}));
        assert_eq!(sum.as_deref(), Ok((n + 1).to_string().as_str()));
    }
    let text = metrics(&admin);
    let series = r#"mcp_requests_total{server="py",method="tools/call",outcome="ok"}"#;
    assert_eq!(sample(&text, series), Some(7.0), "{text}");

    // Prometheus itself, scraping the admin listener every half second.
    let prometheus_addr = free_addr();
    let scrape = format!(
        "global:\n  scrape_interval: 500ms\n  scrape_timeout: 400ms\n\
         scrape_configs:\n  - job_name: mcp-manager\n    static_configs:\n      - targets: ['{admin}']\n"
    );
    let scrape_file = dir.path().join("prometheus.yml");
    std::fs::write(&scrape_file, scrape).unwrap();
    let data = dir.path().join("tsdb");
    let prometheus = Command::new(peer("MCP_PEER_PROMETHEUS"))
        .arg(format!("--config.file={}", scrape_file.display()))
        .arg(format!("--storage.tsdb.path={}", data.display()))
        .arg(format!("--web.listen-address={prometheus_addr}"))
        .env(MARKER_VAR, &marker)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _prometheus = Guard {
        child: prometheus,
        marker: marker.clone(),
    };
    let query = "/api/v1/query?query=mcp_requests_total%7Bserver%3D%22py%22%2Cmethod%3D%22tools%2Fcall%22%2Coutcome%3D%22ok%22%7D";
    let scraped = eventually(Duration::from_secs(60), || {
        let response = exchange(&prometheus_addr, "GET", query, &[], b"").ok()?;
        let body: Value = serde_json::from_str(&response.body).ok()?;
        let result = body["data"]["result"].as_array()?.first()?.clone();
        Some(result)
    })
    .expect("Prometheus never had the request counter");
    assert_eq!(scraped["metric"]["job"], "mcp-manager", "{scraped}");
    assert_eq!(scraped["metric"]["server"], "py", "{scraped}");
    assert_eq!(scraped["value"][1], "7", "{scraped}");
    // Prometheus saw the target up.
    let up = exchange(&prometheus_addr, "GET", "/api/v1/query?query=up", &[], b"").unwrap();
    let up: Value = serde_json::from_str(&up.body).unwrap();
    assert_eq!(up["data"]["result"][0]["value"][1], "1", "{up}");
}

#[test]
fn the_admin_api_lists_restarts_and_scales_behind_its_token() {
    let dir = tempfile::tempdir().unwrap();
    let marker = unique_marker("admin");
    let admin = free_addr();
    let gateway = HttpGateway::start_with(
        &config(dir.path(), &marker, &json!({})),
        &marker,
        &["--admin", &admin, "--admin-token", "s3cret"],
    );
    // The token guards the API, not the probes.
    assert_eq!(admin_get(&admin, "/api/servers", None).0, 401);
    assert_eq!(admin_get(&admin, "/api/servers", Some("wrong")).0, 401);
    assert_eq!(admin_get(&admin, "/healthz", None).0, 200);
    let (code, ready) = admin_get(&admin, "/readyz", None);
    assert_eq!(code, 200, "{ready}");
    assert_eq!(ready["servers"]["py"], "healthy", "{ready}");

    let (code, servers) = admin_get(&admin, "/api/servers", Some("s3cret"));
    assert_eq!(code, 200, "{servers}");
    let py = server(&servers, "py");
    assert_eq!(py["state"], "running", "{py}");
    assert_eq!(py["health"], "healthy", "{py}");
    assert_eq!(py["breaker"], "closed", "{py}");
    assert_eq!(py["instances"].as_array().unwrap().len(), 1, "{py}");
    assert_eq!(py["serverInfo"]["name"], "mcp-manager-fastmcp-peer", "{py}");
    assert_eq!(
        (&py["sessions"], &py["clientInstances"]),
        (&json!("shared"), &json!(0)),
        "{py}"
    );
    assert_eq!(
        server(&servers, "rs")["transport"],
        "in-process server `echo`"
    );

    let (code, missing) = admin_get(&admin, "/api/servers/nope", Some("s3cret"));
    assert_eq!(code, 404, "{missing}");
    assert!(
        missing["error"]
            .as_str()
            .unwrap()
            .contains("no server `nope`")
    );

    // Restart: a new FastMCP process replaces the old one, and calls go on.
    let session = Session::open(&gateway.addr, "admin-test");
    assert_eq!(
        session.call_text(1, "py__echo", json!({"text": "before"})),
        Ok("before".to_owned())
    );
    let before = support::marked_by_arg(&marker);
    assert_eq!(before.len(), 1, "one FastMCP process: {before:?}");
    let (code, restarted) = admin_post(&admin, "/api/servers/py/restart", "s3cret", &json!({}));
    assert_eq!(code, 200, "{restarted}");
    assert_eq!(restarted["state"], "running", "{restarted}");
    let after = eventually(Duration::from_secs(10), || {
        let now = support::marked_by_arg(&marker);
        (now.len() == 1 && now != before).then_some(now)
    })
    .expect("the old process was not replaced");
    assert!(!support::alive(before[0]));
    assert_eq!(
        session.call_text(2, "py__echo", json!({"text": "after"})),
        Ok("after".to_owned())
    );

    // Scale to two instances, then back to one.
    let (code, scaled) = admin_post(
        &admin,
        "/api/servers/py/scale",
        "s3cret",
        &json!({"instances": 2}),
    );
    assert_eq!(code, 200, "{scaled}");
    assert_eq!(scaled["instances"].as_array().unwrap().len(), 2, "{scaled}");
    assert_eq!(support::marked_by_arg(&marker).len(), 2);
    let (code, refused) = admin_post(
        &admin,
        "/api/servers/py/scale",
        "s3cret",
        &json!({"instances": 0}),
    );
    assert_eq!(code, 400, "{refused}");
    let (code, _) = admin_post(
        &admin,
        "/api/servers/py/scale",
        "s3cret",
        &json!({"instances": 1}),
    );
    assert_eq!(code, 200);
    assert!(
        eventually(Duration::from_secs(10), || {
            (support::marked_by_arg(&marker) == after).then_some(())
        })
        .is_some(),
        "scaling down stops the newer instance"
    );

    // Deploy a server through the API: it joins the gateway; undeploy it.
    let entry = json!({"name": "extra", "config": {"type": "builtin", "server": "echo"}});
    let (code, deployed) = admin_post(&admin, "/api/servers", "s3cret", &entry);
    assert_eq!(code, 201, "{deployed}");
    assert_eq!(deployed["state"], "running", "{deployed}");
    assert_eq!(
        session.call_text(3, "extra__echo", json!({"text": "hello"})),
        Ok("hello".to_owned())
    );
    let (code, again) = admin_post(&admin, "/api/servers", "s3cret", &entry);
    assert_eq!(code, 409, "{again}");
    let bad = json!({"name": "bad", "config": {"type": "builtin", "server": "nope"}});
    let (code, refused) = admin_post(&admin, "/api/servers", "s3cret", &bad);
    assert_eq!(code, 400, "{refused}");
    assert!(
        refused["error"]
            .as_str()
            .unwrap()
            .starts_with("invalid server entry"),
        "{refused}"
    );
    let response = exchange(
        &admin,
        "DELETE",
        "/api/servers/extra",
        &[("Authorization", "Bearer s3cret")],
        b"",
    )
    .unwrap();
    assert_eq!(response.status, 200, "{response:?}");
    let error = session
        .call_text(4, "extra__echo", json!({"text": "gone"}))
        .unwrap_err();
    assert!(error.contains("Unknown tool"), "{error}");
    assert_eq!(
        admin_get(&admin, "/api/servers/extra", Some("s3cret")).0,
        404
    );

    // `mcp-manager status` shows the same as a table.
    let status = Command::new(env!("CARGO_BIN_EXE_mcp-manager"))
        .args(["status", "--admin", &admin, "--token", "s3cret"])
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&status.stdout);
    assert!(status.status.success(), "{table}");
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("NAME"), "{table}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("py ") && l.contains("running") && l.contains("healthy")),
        "{table}"
    );
    let refused = Command::new(env!("CARGO_BIN_EXE_mcp-manager"))
        .args(["status", "--admin", &admin])
        .env_remove("MCP_MANAGER_ADMIN_TOKEN")
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("401"));
    drop(gateway);
    assert_none_marked(&marker);
}

#[test]
fn a_slow_server_sheds_load_and_does_not_slow_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let marker = unique_marker("bulkhead");
    let admin = free_addr();
    let options = json!({"maxConcurrency": 2, "resilience": {"maxQueued": 1}});
    let gateway = HttpGateway::start_with(
        &config(dir.path(), &marker, &options),
        &marker,
        &["--admin", &admin],
    );
    let addr = gateway.addr.clone();
    // Five slow calls at once: two run, one waits, two are refused.
    let slow: Vec<_> = (0..5)
        .map(|n| {
            let addr = addr.clone();
            std::thread::spawn(move || {
                let session = Session::open(&addr, "slow");
                session.call_text(n + 1, "py__sleep", json!({"seconds": 4}))
            })
        })
        .collect();
    let busy = eventually(Duration::from_secs(20), || {
        let text = metrics(&admin);
        let rejected = sample(&text, r#"mcp_bulkhead_rejections_total{server="py"}"#)?;
        let queued = sample(&text, r#"mcp_bulkhead_queued{server="py"}"#)?;
        (rejected == 2.0 && queued == 1.0).then_some(text)
    })
    .unwrap_or_else(|| panic!("the bulkhead never filled: {}", metrics(&admin)));
    assert_eq!(
        sample(&busy, r#"mcp_requests_in_flight{server="py"}"#),
        Some(3.0),
        "two running and one queued are in flight; the refused ones ended: {busy}"
    );
    // Meanwhile the other server answers at once, many times over, while
    // the slow calls are still running.
    let fast = Session::open(&addr, "fast");
    for n in 0..50 {
        let text = format!("fast {n}");
        assert_eq!(
            fast.call_text(n + 1, "rs__echo", json!({"text": text})),
            Ok(text)
        );
    }
    let text = metrics(&admin);
    assert!(
        sample(&text, r#"mcp_requests_in_flight{server="py"}"#).unwrap() >= 2.0,
        "the slow calls were still running: {text}"
    );
    let outcomes: Vec<Result<String, String>> =
        slow.into_iter().map(|t| t.join().unwrap()).collect();
    let done = outcomes.iter().filter(|o| o.is_ok()).count();
    let refused: Vec<&String> = outcomes.iter().filter_map(|o| o.as_ref().err()).collect();
    assert_eq!(done, 3, "{outcomes:?}");
    assert_eq!(refused.len(), 2, "{outcomes:?}");
    for error in refused {
        assert!(
            error.contains("server `py` is busy: 2 requests in flight and 1 waiting"),
            "{error}"
        );
    }
    let text = metrics(&admin);
    assert_eq!(
        sample(
            &text,
            r#"mcp_requests_total{server="py",method="tools/call",outcome="busy"}"#
        ),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            r#"mcp_requests_total{server="rs",method="tools/call",outcome="ok"}"#
        ),
        Some(50.0),
        "{text}"
    );
}

#[test]
fn the_circuit_opens_on_a_server_that_stops_answering() {
    let dir = tempfile::tempdir().unwrap();
    let marker = unique_marker("breaker");
    let admin = free_addr();
    let options = json!({
        "timeoutMs": 500,
        "resilience": {"circuitBreaker": {"failures": 2, "openMs": 60000}, "retries": 0}
    });
    let gateway = HttpGateway::start_with(
        &config(dir.path(), &marker, &options),
        &marker,
        &["--admin", &admin, "--log-level", "warn"],
    );
    let session = Session::open(&gateway.addr, "breaker");
    for n in 1..=2 {
        let error = session
            .call_text(n, "py__sleep", json!({"seconds": 30}))
            .unwrap_err();
        assert!(error.contains("no answer within 500 ms"), "{error}");
    }
    let error = session
        .call_text(3, "py__add", json!({"a": 1, "b": 2}))
        .unwrap_err();
    assert!(
        error.contains("server `py` is failing: its circuit breaker is open after 2"),
        "{error}"
    );
    // The other server is not affected.
    assert_eq!(
        session.call_text(4, "rs__echo", json!({"text": "fine"})),
        Ok("fine".to_owned())
    );
    let (_, py) = admin_get(&admin, "/api/servers/py", None);
    assert_eq!(py["breaker"], "open", "{py}");
    assert_eq!(py["health"], "degraded", "{py}");
    let errors = py["recentErrors"].as_array().unwrap();
    assert!(
        errors.iter().any(|e| e["message"]
            .as_str()
            .unwrap()
            .contains("no answer within 500 ms")),
        "{py}"
    );
    let text = metrics(&admin);
    assert_eq!(
        sample(&text, r#"mcp_circuit_breaker_state{server="py"}"#),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            r#"mcp_circuit_breaker_transitions_total{server="py",to="open"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            r#"mcp_requests_total{server="py",method="tools/call",outcome="timeout"}"#
        ),
        Some(2.0),
        "{text}"
    );
    assert!(
        gateway
            .drain_log()
            .contains("circuit breaker closed -> open")
    );
}

fn sigterm(pid: u32) {
    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Waits for the gateway to exit on its own; its exit code.
fn exit_code(gateway: &mut HttpGateway) -> Option<i32> {
    eventually(Duration::from_secs(30), || {
        gateway.guard.child.try_wait().unwrap().map(|s| s.code())
    })
    .expect("the gateway did not exit")
}

/// `sessions` sessions with `each` requests of `tool` in flight, one thread
/// per request; returns once the admin API counts them all in flight.
fn in_flight(
    gateway: &HttpGateway,
    admin: &str,
    sessions: u64,
    each: u64,
    arguments: &Value,
) -> Vec<std::thread::JoinHandle<Result<String, String>>> {
    let mut threads = Vec::new();
    for s in 0..sessions {
        let session = std::sync::Arc::new(Session::open(&gateway.addr, &format!("load-{s}")));
        for n in 0..each {
            let session = session.clone();
            let arguments = arguments.clone();
            threads.push(std::thread::spawn(move || {
                session.call_text(n + 1, "py__sleep", arguments)
            }));
        }
    }
    let all = (sessions * each) as f64;
    eventually(Duration::from_secs(60), || {
        let text = metrics(admin);
        (sample(&text, r#"mcp_requests_in_flight{server="py"}"#) == Some(all)).then_some(())
    })
    .unwrap_or_else(|| panic!("never {all} in flight: {}", metrics(admin)));
    threads
}

#[test]
fn sigterm_lets_200_requests_in_flight_finish_and_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let marker = unique_marker("drain");
    let admin = free_addr();
    let mut gateway = HttpGateway::start_with(
        &config(dir.path(), &marker, &json!({})),
        &marker,
        &["--admin", &admin],
    );
    let threads = in_flight(&gateway, &admin, 4, 50, &json!({"seconds": 2}));
    let child = support::marked_by_arg(&marker);
    assert_eq!(child.len(), 1, "{child:?}");
    let (code, _) = admin_get(&admin, "/readyz", None);
    assert_eq!(code, 200);
    sigterm(gateway.guard.pid());
    // Not ready as soon as the drain starts, live all along.
    let ready = eventually(Duration::from_secs(2), || {
        let (code, body) = admin_get(&admin, "/readyz", None);
        (code == 503).then_some(body)
    })
    .expect("/readyz never said 503 during the drain");
    assert_eq!(ready["draining"], true, "{ready}");
    assert_eq!(admin_get(&admin, "/healthz", None).0, 200);
    let outcomes: Vec<Result<String, String>> =
        threads.into_iter().map(|t| t.join().unwrap()).collect();
    let lost: Vec<&Result<String, String>> = outcomes
        .iter()
        .filter(|o| o.as_deref() != Ok("slept 2.0 s"))
        .collect();
    assert!(
        lost.is_empty(),
        "{} of 200 not answered: {lost:?}",
        lost.len()
    );
    assert_eq!(exit_code(&mut gateway), Some(0));
    // The child was stopped with the gateway; nothing is left behind.
    assert!(!support::alive(child[0]));
    assert_none_marked(&marker);
    let log = gateway.drain_log();
    assert!(log.contains("mcp-manager: stopping"), "{log}");
}

#[test]
fn requests_past_the_drain_deadline_are_answered_with_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let marker = unique_marker("deadline");
    let admin = free_addr();
    let path = config(dir.path(), &marker, &json!({}));
    // The same config with a short drain deadline.
    let mut text: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    text["mcpManager"] = json!({"drainTimeoutMs": 300});
    std::fs::write(&path, serde_json::to_vec(&text).unwrap()).unwrap();
    let mut gateway = HttpGateway::start_with(&path, &marker, &["--admin", &admin]);
    let threads = in_flight(&gateway, &admin, 2, 10, &json!({"seconds": 60}));
    sigterm(gateway.guard.pid());
    for thread in threads {
        let error = thread.join().unwrap().unwrap_err();
        assert!(
            error.contains(
                "the gateway is shutting down: the request was cancelled after the drain deadline of 300 ms"
            ),
            "{error}"
        );
    }
    assert_eq!(exit_code(&mut gateway), Some(0));
    assert_none_marked(&marker);
}

/// The exposed tool names of the gateway, sorted.
fn tool_names(session: &Session, id: u64) -> Vec<String> {
    let listed = session.request(id, "tools/list", json!({})).unwrap();
    let mut names: Vec<String> = listed["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn a_changed_config_file_is_applied_server_by_server() {
    let dir = tempfile::tempdir().unwrap();
    let marker = unique_marker("reload");
    let (marker_a, marker_b) = (format!("{marker}-a"), format!("{marker}-b"));
    let fastmcp = |marker: &str, extra: Value| {
        let mut entry = json!({
            "command": peer("MCP_PEER_PYTHON"),
            "args": [peer("MCP_PEER_FASTMCP"), format!("--marker={marker}")],
            "env": {MARKER_VAR: &marker}
        });
        for (key, value) in extra.as_object().unwrap() {
            entry[key] = value.clone();
        }
        entry
    };
    let path = dir.path().join("mcpServers.json");
    let write = |config: &Value| {
        std::fs::write(&path, serde_json::to_vec_pretty(config).unwrap()).unwrap();
    };
    write(&json!({"mcpServers": {
        "a": fastmcp(&marker_a, json!({})),
        "b": fastmcp(&marker_b, json!({}))
    }}));
    let admin = free_addr();
    let gateway = HttpGateway::start_with(&path, &marker, &["--admin", &admin]);
    let session = Session::open(&gateway.addr, "reload");
    let events = event_stream(&gateway.addr, &session.id);
    let names = tool_names(&session, 1);
    assert!(names.contains(&"a__add".to_owned()) && names.contains(&"b__add".to_owned()));
    let pid_a = support::marked_by_arg(&marker_a);
    let pid_b = support::marked_by_arg(&marker_b);
    assert_eq!((pid_a.len(), pid_b.len()), (1, 1));

    // A broken file is rejected; everything keeps running.
    std::fs::write(&path, b"{\"mcpServers\": {\"a\": {\"command\": }").unwrap();
    let rejected = eventually(Duration::from_secs(20), || {
        let log = gateway.drain_log();
        log.contains("config reload rejected").then_some(log)
    });
    assert!(rejected.is_some(), "no rejection logged");
    assert_eq!(tool_names(&session, 2), names);
    assert_eq!(
        session.call_text(3, "b__add", json!({"a": 1, "b": 1})),
        Ok("2".to_owned())
    );

    // `a` unchanged, `b` changed, `c` new.
    write(&json!({"mcpServers": {
        "a": fastmcp(&marker_a, json!({})),
        "b": fastmcp(&marker_b, json!({"timeoutMs": 45000})),
        "c": {"type": "builtin", "server": "echo"}
    }}));
    let reloaded = eventually(Duration::from_secs(30), || {
        let names = tool_names(&session, 4);
        names.contains(&"c__echo".to_owned()).then_some(names)
    })
    .expect("the new server never showed up");
    assert!(reloaded.contains(&"b__add".to_owned()), "{reloaded:?}");
    assert_eq!(
        support::marked_by_arg(&marker_a),
        pid_a,
        "`a` was left alone"
    );
    let new_b = support::marked_by_arg(&marker_b);
    assert!(
        new_b.len() == 1 && new_b != pid_b,
        "`b` was restarted: {new_b:?}"
    );
    assert!(!support::alive(pid_b[0]));
    assert_eq!(
        session.call_text(5, "c__echo", json!({"text": "new"})),
        Ok("new".to_owned())
    );
    let changed = eventually(Duration::from_secs(10), || {
        events
            .try_iter()
            .find(|data| data.contains("notifications/tools/list_changed"))
    });
    assert!(changed.is_some(), "no list change reached the client");

    // `b` removed: its process stops and its tools go.
    write(&json!({"mcpServers": {
        "a": fastmcp(&marker_a, json!({})),
        "c": {"type": "builtin", "server": "echo"}
    }}));
    let names = eventually(Duration::from_secs(30), || {
        let names = tool_names(&session, 6);
        (!names.contains(&"b__add".to_owned())).then_some(names)
    })
    .expect("`b` was never removed");
    assert!(names.contains(&"a__add".to_owned()), "{names:?}");
    assert!(
        eventually(Duration::from_secs(10), || {
            support::marked_by_arg(&marker_b).is_empty().then_some(())
        })
        .is_some(),
        "`b`'s process still runs"
    );
    let error = session
        .call_text(7, "b__add", json!({"a": 1, "b": 1}))
        .unwrap_err();
    assert!(error.contains("Unknown tool: b__add"), "{error}");
    let (_, servers) = admin_get(&admin, "/api/servers", None);
    let listed: Vec<&str> = servers["servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(listed, ["a", "c"]);
}

/// An OTLP/HTTP receiver on loopback: every request body it gets, as
/// JSON, on a channel.
fn otlp_receiver() -> (String, std::sync::mpsc::Receiver<Value>) {
    let (bodies, received) = std::sync::mpsc::channel();
    let bodies = std::sync::Arc::new(std::sync::Mutex::new(bodies));
    let addr = support::http_sink::start(move |body| {
        if let Ok(value) = serde_json::from_slice(&body) {
            let _ = bodies.lock().unwrap().send(value);
        }
    });
    (addr.to_string(), received)
}

#[test]
fn one_trace_crosses_the_gateway_into_the_backend() {
    let dir = tempfile::tempdir().unwrap();
    let marker = unique_marker("traces");
    let config = json!({"mcpServers": {"child": {
        "command": env!("CARGO_BIN_EXE_mcp-manager"),
        "args": ["builtin", "echo", "--stdio"],
        "env": {MARKER_VAR: &marker}
    }}});
    let path = dir.path().join("mcpServers.json");
    std::fs::write(&path, serde_json::to_vec(&config).unwrap()).unwrap();
    let (collector, exported) = otlp_receiver();
    let endpoint = format!("http://{collector}");
    let mut gateway = HttpGateway::start_with(
        &path,
        &marker,
        &["--otlp-endpoint", &endpoint, "--otlp-protocol", "http/json"],
    );
    let session = Session::open(&gateway.addr, "traced");
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let client_span = "00f067aa0ba902b7";
    let traceparent = format!("00-{trace_id}-{client_span}-01");
    let answer = session
        .request(
            1,
            "tools/call",
            json!({"name": "child__meta", "arguments": {}, "_meta": {"traceparent": traceparent}}),
        )
        .unwrap();
    let seen: Value =
        serde_json::from_str(answer["result"]["content"][0]["text"].as_str().unwrap()).unwrap();
    // The backend got the same trace, with the gateway's span as parent.
    let forwarded = seen["traceparent"].as_str().unwrap().to_owned();
    let parts: Vec<&str> = forwarded.split('-').collect();
    assert_eq!(parts.len(), 4, "{forwarded}");
    assert_eq!(parts[1], trace_id, "{forwarded}");
    assert_ne!(parts[2], client_span, "{forwarded}");
    let backend_span = parts[2].to_owned();

    // Stopping flushes the spans.
    sigterm(gateway.guard.pid());
    assert_eq!(exit_code(&mut gateway), Some(0));
    let spans: Vec<Value> = exported
        .try_iter()
        .flat_map(|body| {
            let mut spans = Vec::new();
            for resource in body["resourceSpans"]
                .as_array()
                .cloned()
                .unwrap_or_default()
            {
                assert_eq!(
                    resource["resource"]["attributes"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .find(|a| a["key"] == "service.name")
                        .map(|a| a["value"]["stringValue"].clone()),
                    Some(json!("mcp-manager"))
                );
                for scope in resource["scopeSpans"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                {
                    spans.extend(scope["spans"].as_array().cloned().unwrap_or_default());
                }
            }
            spans
        })
        .collect();
    let in_trace: Vec<&Value> = spans
        .iter()
        .filter(|s| s["traceId"].as_str() == Some(trace_id))
        .collect();
    let request = in_trace
        .iter()
        .find(|s| s["name"] == "tools/call")
        .unwrap_or_else(|| panic!("no gateway span in {spans:#?}"));
    assert_eq!(request["parentSpanId"], client_span, "{request}");
    let backend = in_trace
        .iter()
        .find(|s| s["name"] == "tools/call child")
        .unwrap_or_else(|| panic!("no backend span in {spans:#?}"));
    assert_eq!(backend["spanId"], backend_span.as_str(), "{backend}");
    assert_eq!(backend["parentSpanId"], request["spanId"], "{backend}");
    assert_none_marked(&marker);
}

#[test]
fn only_calls_that_are_safe_to_repeat_are_retried() {
    let dir = tempfile::tempdir().unwrap();
    let marker = unique_marker("retries");
    let options = json!({
        "timeoutMs": 700,
        "resilience": {"retries": {"attempts": 1, "backoffMs": 10}}
    });
    let gateway = HttpGateway::start(&config(dir.path(), &marker, &options), &marker);
    let session = Session::open(&gateway.addr, "retries");
    // The tools list (with the annotations) is what tells a safe call.
    let tools = session.request(1, "tools/list", json!({})).unwrap();
    let listed = tools["result"]["tools"].as_array().unwrap();
    let stall = listed
        .iter()
        .find(|t| t["name"] == "py__stall_once")
        .unwrap();
    assert_eq!(stall["annotations"]["readOnlyHint"], true, "{stall}");
    // Read-only: the first try stalls past the timeout, the retry answers.
    assert_eq!(
        session.call_text(2, "py__stall_once", json!({"key": "a", "seconds": 5})),
        Ok("answered a".to_owned())
    );
    // Not annotated: never sent twice, so the caller sees the timeout.
    let error = session
        .call_text(
            3,
            "py__stall_once_unsafe",
            json!({"key": "b", "seconds": 5}),
        )
        .unwrap_err();
    assert!(error.contains("no answer within 700 ms"), "{error}");
    // The server did get it once: the next call is answered at once.
    assert_eq!(
        session.call_text(
            4,
            "py__stall_once_unsafe",
            json!({"key": "b", "seconds": 5})
        ),
        Ok("answered b".to_owned())
    );
}

#[test]
fn a_server_that_fails_to_start_is_shown_with_its_reason_and_tried_again_on_reload() {
    let dir = tempfile::tempdir().unwrap();
    let marker = unique_marker("failed-start");
    let path = dir.path().join("mcpServers.json");
    let write = |config: &Value| {
        std::fs::write(&path, serde_json::to_vec_pretty(config).unwrap()).unwrap();
    };
    write(&json!({"mcpServers": {
        "ghost": {"command": "/no/such/binary"},
        "rs": {"type": "builtin", "server": "echo"}
    }}));
    let admin = free_addr();
    let gateway = HttpGateway::start_with(&path, &marker, &["--admin", &admin]);

    // The admin API lists it, failed, with why.
    let (code, servers) = admin_get(&admin, "/api/servers", None);
    assert_eq!(code, 200, "{servers}");
    let names: Vec<&str> = servers["servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["ghost", "rs"]);
    let ghost = server(&servers, "ghost");
    assert_eq!(ghost["state"], "failed", "{ghost}");
    assert_eq!(ghost["health"], "down", "{ghost}");
    assert_eq!(ghost["type"], "stdio", "{ghost}");
    let reason = ghost["error"].as_str().unwrap().to_owned();
    assert!(reason.contains("/no/such/binary"), "{reason}");
    assert_eq!(server(&servers, "rs")["error"], Value::Null);
    let (code, one) = admin_get(&admin, "/api/servers/ghost", None);
    assert_eq!((code, &one["state"]), (200, &json!("failed")), "{one}");

    // A call to one of its tools says which server and why, not "unknown".
    let session = Session::open(&gateway.addr, "failed-start");
    let answer = session
        .request(
            1,
            "tools/call",
            json!({"name": "ghost__echo", "arguments": {}}),
        )
        .unwrap();
    let error = &answer["error"];
    assert_eq!(error["code"], -32603, "{answer}");
    assert_eq!(error["data"]["kind"], "unavailable", "{answer}");
    assert_eq!(error["data"]["server"], "ghost", "{answer}");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("server `ghost`, which is unavailable: it failed to start")
            && message.contains(&reason),
        "{message}"
    );
    // A name under no server is still simply unknown.
    let unknown = session
        .request(
            2,
            "tools/call",
            json!({"name": "nobody__echo", "arguments": {}}),
        )
        .unwrap();
    assert_eq!(unknown["error"]["code"], -32602, "{unknown}");
    assert_eq!(unknown["error"]["message"], "Unknown tool: nobody__echo");
    assert_eq!(unknown["error"]["data"]["kind"], "unknown_tool");
    assert_eq!(
        session.call_text(3, "rs__echo", json!({"text": "up"})),
        Ok("up".to_owned())
    );

    // `mcp-manager status` shows it with its reason.
    let status = Command::new(env!("CARGO_BIN_EXE_mcp-manager"))
        .args(["status", "--admin", &admin])
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&status.stdout);
    assert!(status.status.success(), "{table}");
    assert!(
        table.lines().any(|l| l.starts_with("ghost ")
            && l.contains("failed")
            && l.contains("down")
            && l.contains("/no/such/binary")),
        "{table}"
    );

    // Mended in the file, it is started on the reload.
    write(&json!({"mcpServers": {
        "ghost": {"type": "builtin", "server": "echo"},
        "rs": {"type": "builtin", "server": "echo"}
    }}));
    let mended = eventually(Duration::from_secs(30), || {
        let (_, servers) = admin_get(&admin, "/api/servers/ghost", None);
        (servers["state"] == "running").then_some(servers)
    })
    .expect("`ghost` was never started again");
    assert_eq!(mended["error"], Value::Null, "{mended}");
    assert_eq!(
        session.call_text(4, "ghost__echo", json!({"text": "back"})),
        Ok("back".to_owned())
    );
    drop(gateway);
    assert_none_marked(&marker);
}

#[test]
fn secrets_from_files_stay_out_of_logs_and_the_admin_api() {
    const SECRET: &str = "f1le-s3cret-value";
    let dir = tempfile::tempdir().unwrap();
    let marker = unique_marker("secrets");
    std::fs::write(dir.path().join("key.txt"), format!("{SECRET}\n")).unwrap();
    let config = json!({"mcpServers": {
        "ok": {"command": peer("MCP_PEER_PYTHON"),
            "args": [peer("MCP_PEER_FASTMCP"), "--marker=${file:key.txt}"],
            "env": {"KEY": "${file:key.txt}", MARKER_VAR: &marker}},
        "gone": {"command": "/nonexistent/mcp-server", "args": ["--token=${file:key.txt}"]},
        "remote": {"url": "http://127.0.0.1:9/mcp?key=${file:key.txt}",
            "headers": {"Authorization": "Bearer ${file:key.txt}"}},
    }});
    let path = dir.path().join("mcpServers.json");
    std::fs::write(&path, config.to_string()).unwrap();
    let admin = free_addr();
    let http = free_addr();
    let config_path = path.to_str().unwrap();
    let (guard, lines) = support::spawn_manager_with(
        &[
            "serve",
            "--http",
            &http,
            "--config",
            config_path,
            "--admin",
            &admin,
        ],
        &marker,
        &[("RUST_LOG", "debug")],
    );
    // Everything it writes, from the start.
    let mut log = Vec::new();
    while !log
        .iter()
        .any(|line: &String| line.contains("listening on "))
    {
        log.push(lines.recv_timeout(Duration::from_secs(60)).unwrap());
    }
    // The servers that cannot start are tried and reported.
    let deadline = Instant::now() + Duration::from_secs(20);
    let servers = loop {
        let (code, servers) = admin_get(&admin, "/api/servers", None);
        assert_eq!(code, 200, "{servers}");
        let text = servers.to_string();
        if text.contains("/nonexistent/mcp-server") && server(&servers, "ok")["state"] == "running"
        {
            break servers;
        }
        assert!(Instant::now() < deadline, "{servers}");
        std::thread::sleep(Duration::from_millis(100));
    };
    let (_, ready) = admin_get(&admin, "/readyz", None);
    drop(guard);
    log.extend(lines.try_iter());
    let log = log.join("\n");
    assert!(log.contains("remote") && log.contains("gone"), "{log}");
    for (what, text) in [
        ("log", log.as_str()),
        ("admin API", &servers.to_string()),
        ("readiness", &ready.to_string()),
    ] {
        assert!(!text.contains(SECRET), "the secret in the {what}: {text}");
    }
    // The argument that took the secret is shown as written.
    let shown = server(&servers, "ok")["transport"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(shown.ends_with("--marker=${file:key.txt}"), "{shown}");
    assert_none_marked(&marker);
}

#[test]
fn sigterm_while_the_servers_start_stops_the_gateway_once_they_have() {
    let dir = tempfile::tempdir().unwrap();
    let marker = unique_marker("early-term");
    // A server that never answers `initialize`: starting takes its whole
    // startup timeout.
    let path = dir.path().join("slow.json");
    let config = json!({"mcpServers": {"slow": {
        "command": "sleep", "args": ["60"], "startupTimeoutMs": 3000,
        "restart": "never", "env": {MARKER_VAR: &marker}
    }}});
    std::fs::write(&path, config.to_string()).unwrap();
    let (admin, addr) = (free_addr(), free_addr());
    let (mut guard, lines) = support::spawn_manager(
        &[
            "serve",
            "--config",
            path.to_str().unwrap(),
            "--http",
            &addr,
            "--admin",
            &admin,
        ],
        &marker,
    );
    // The admin listener is up before the servers start.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !lines
        .recv_timeout(Duration::from_secs(60))
        .unwrap()
        .contains("admin API and metrics on")
    {
        assert!(Instant::now() < deadline, "no admin line");
    }
    // Not ready while the servers start.
    let (code, ready) = admin_get(&admin, "/readyz", None);
    assert_eq!(
        (code, &ready),
        (503, &json!({"ready": false, "starting": true}))
    );
    sigterm(guard.child.id());
    let exited = eventually(Duration::from_secs(30), || {
        guard.child.try_wait().unwrap().map(|s| s.code())
    });
    assert_eq!(
        exited,
        Some(Some(0)),
        "the gateway kept running after SIGTERM"
    );
    assert_none_marked(&marker);
}

#[test]
fn readiness_waits_for_the_required_servers_only() {
    let dir = tempfile::tempdir().unwrap();
    let marker = unique_marker("required");
    for required in [false, true] {
        let path = dir.path().join(format!("{required}.json"));
        let config = json!({"mcpServers": {
            "ev": {"type": "builtin", "server": "everything"},
            "gone": {"command": "/nonexistent/mcp-server", "restart": "never", "required": required}
        }});
        std::fs::write(&path, config.to_string()).unwrap();
        let admin = free_addr();
        let gateway = HttpGateway::start_with(&path, &marker, &["--admin", &admin]);
        let (code, ready) = admin_get(&admin, "/readyz", None);
        // A server that failed to start is down; the gateway is ready
        // unless it is required.
        assert_eq!(
            ready["servers"],
            json!({"ev": "healthy", "gone": "down"}),
            "{ready}"
        );
        if required {
            assert_eq!(code, 503, "{ready}");
            assert_eq!(ready["ready"], false, "{ready}");
            assert_eq!(ready["waitingFor"], json!(["gone"]), "{ready}");
        } else {
            assert_eq!(code, 200, "{ready}");
            assert_eq!(ready["waitingFor"], json!([]), "{ready}");
        }
        // It serves meanwhile, whatever it says.
        let session = Session::open(&gateway.addr, "required");
        assert!(
            session
                .call_text(1, "ev__greet", json!({"name": "x"}))
                .unwrap()
                .contains('x')
        );
        drop(gateway);
    }
    assert_none_marked(&marker);
}
