//! Three `mcp-manager serve` replicas sharing a cluster key behind a real
//! load balancer (HAProxy, from Debian's packages), sixteen clients of the
//! official Python SDK calling a tool without a pause (half in 2025
//! sessions, half stateless 2026-07-28), one replica killed with SIGKILL
//! and another drained with SIGTERM mid-run: every call gets its right
//! answer (some after a retry), and no session is lost: a client whose
//! connection broke with the dead replica comes back with the same
//! session id, and another replica takes the session over.
//!
//! And a client of the official TypeScript SDK, kept on one replica by the
//! route of its session id, sets a log level and subscribes to a
//! resource; its replica is killed; the replica its requests go to next
//! takes the session over with both, and the log messages and resource
//! updates go on coming.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

mod support;

use std::io::Read as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{
    Guard, assert_none_marked, free_addr, peer, post, spawn_manager, unique_marker,
    wait_for_listening,
};

const KEY: &str = "8d1f0c3b2a4e6f5d7c9b8a0e1f2d3c4b5a69788796a5b4c3d2e1f0a1b2c3d4e5";
/// How long the clients call.
const RUN: Duration = Duration::from_secs(12);

struct Replica {
    guard: Guard,
    addr: String,
    admin: String,
    log: std::sync::mpsc::Receiver<String>,
}

/// A replica listening on `addr`, told of the `peers`.
fn replica(
    dir: &std::path::Path,
    name: &str,
    (addr, peers): (&str, &[&str]),
    marker: &str,
) -> Replica {
    let config = json!({
        "mcpManager": {
            "pinning": "off",
            "cluster": {"key": KEY, "peers": peers},
            "drainTimeoutMs": 5000
        },
        "mcpServers": {"ev": {"type": "builtin", "server": "everything"}}
    });
    let path = dir.join(format!("{name}.json"));
    std::fs::write(&path, config.to_string()).unwrap();
    let (addr, admin) = (addr.to_owned(), free_addr());
    let (guard, lines) = spawn_manager(
        &[
            "serve",
            "--http",
            &addr,
            "--admin",
            &admin,
            "--config",
            path.to_str().unwrap(),
            "--log-level",
            "warn,mcp_serve=info",
        ],
        &format!("{marker}-{name}"),
    );
    let (_, log) = wait_for_listening(lines);
    Replica {
        guard,
        addr,
        admin,
        log,
    }
}

/// HAProxy in front of `replicas`: round robin (and `rules`), each replica's `/readyz`
/// checked every 200 ms, a request whose replica could not be reached
/// sent to another. A POST a replica took and died with is not sent
/// again (a `tools/call` may not be safe to run twice): its client gets
/// a 502, and retries; a GET (an event stream) is sent again. The replicas listen on
/// loopback, where a gateway takes only loopback `Host`s with its own port
/// (against DNS rebinding): the balancer names the host without one.
fn balancer(
    dir: &std::path::Path,
    replicas: &[Replica],
    rules: &str,
    marker: &str,
) -> (Guard, String) {
    let front = free_addr();
    let mut config = format!(
        "global\n  maxconn 2000\n  log stderr format raw local0\n\
         defaults\n  mode http\n  log global\n  option httplog\n  timeout connect 1s\n  timeout client 60s\n  timeout server 60s\n\
         \x20 retries 3\n  option redispatch 1\n\
         \x20 retry-on conn-failure empty-response response-timeout\n\
         frontend mcp\n  bind {front}\n  default_backend replicas\n\
         \x20 http-request set-header Host 127.0.0.1\n\
         \x20 http-request disable-l7-retry if METH_POST\n\
         backend replicas\n{rules}  http-reuse never\n  option httpchk GET /readyz\n\
         \x20 http-check expect status 200\n"
    );
    for (n, replica) in replicas.iter().enumerate() {
        let (_, admin_port) = replica.admin.rsplit_once(':').unwrap();
        config.push_str(&format!(
            "  server r{n} {} check port {admin_port} inter 200 fall 1 rise 2\n",
            replica.addr
        ));
    }
    let path = dir.join("haproxy.cfg");
    std::fs::write(&path, config).unwrap();
    let child = Command::new(peer("MCP_PEER_HAPROXY"))
        .args(["-db", "-f", path.to_str().unwrap()])
        .env(support::MARKER_VAR, marker)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("haproxy.log")).unwrap())
        .spawn()
        .unwrap();
    let guard = Guard {
        child,
        marker: marker.to_owned(),
    };
    // Up once it forwards an `initialize`.
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "probe", "version": "1"}}});
    let deadline = Instant::now() + Duration::from_secs(30);
    while post(&front, None, &init).map(|r| r.status).ok() != Some(200) {
        assert!(
            Instant::now() < deadline,
            "HAProxy never forwarded a request"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    (guard, front)
}

/// Three replicas, `r0` to `r2`, each told of the others.
fn three_replicas(dir: &std::path::Path, marker: &str) -> Vec<Replica> {
    let addrs: Vec<String> = (0..3).map(|_| free_addr()).collect();
    addrs
        .iter()
        .enumerate()
        .map(|(n, addr)| {
            let peers: Vec<&str> = addrs
                .iter()
                .filter(|other| *other != addr)
                .map(String::as_str)
                .collect();
            replica(dir, &format!("r{n}"), (addr, &peers), marker)
        })
        .collect()
}

/// How many sessions each replica took over since last asked.
fn took_over(replicas: &[Replica]) -> Vec<usize> {
    replicas
        .iter()
        .map(|r| {
            r.log
                .try_iter()
                .filter(|line| line.contains("took over a session"))
                .count()
        })
        .collect()
}

/// Stops the balancer and every replica still running, and checks that
/// none is left.
fn stop(haproxy: Guard, mut replicas: Vec<Replica>, marker: &str) {
    drop(haproxy);
    for replica in &mut replicas {
        let _ = replica.guard.child.kill();
    }
    drop(replicas);
    assert_none_marked(marker);
}

fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn sixteen_clients_lose_no_call_and_no_session_when_a_replica_dies_and_another_drains() {
    let dir = tempfile::tempdir().unwrap();
    let marker = unique_marker("failover");
    let mut replicas = three_replicas(dir.path(), &marker);
    let rules = "  balance roundrobin\n";
    let (haproxy, front) = balancer(dir.path(), &replicas, rules, &format!("{marker}-lb"));

    let script = format!(
        "{}/tests/clients/python_failover_client.py",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut client = Command::new(peer("MCP_PEER_PYTHON"))
        .arg(script)
        .arg(format!("http://{front}/mcp"))
        .arg(RUN.as_secs().to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    std::thread::sleep(RUN / 4);
    // One replica dies at once, with its requests in flight.
    signal(replicas[0].guard.child.id(), "KILL");
    std::thread::sleep(RUN / 4);
    // Another drains: its requests finish, it exits (that it turns
    // unready at once is the operations tests' to show).
    signal(replicas[1].guard.child.id(), "TERM");
    let drained = replicas[1].guard.child.wait().unwrap();

    let mut stdout = String::new();
    client
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    let mut stderr = String::new();
    client
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = client.wait().unwrap();
    assert!(status.success(), "{stderr}");
    let report: Value =
        serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}\n{stderr}"));
    // Round robin sends each request of a session to the next replica:
    // each takes the sessions over as they come.
    let took_over = took_over(&replicas);
    eprintln!(
        "failover over {:.1} s: {report}; sessions taken over by each replica: {took_over:?}",
        started.elapsed().as_secs_f64()
    );

    assert_eq!(drained.code(), Some(0));
    assert_eq!(report["clients_broken"], json!([]), "{report}");
    // Every session (eight) went on on another replica than its own.
    assert!(took_over.iter().sum::<usize>() >= 8, "{took_over:?}");
    for generation in ["stateful", "stateless"] {
        let counts = &report["counts"][generation];
        assert_eq!(counts["wrong"], 0, "{report}");
        assert_eq!(counts["failed"], 0, "{report}");
        assert_eq!(counts["lost_sessions"], 0, "{report}");
        assert!(counts["right"].as_u64().unwrap() > 100, "{report}");
    }
    stop(haproxy, replicas, &marker);
}

/// Keeps each session on the replica that opened it: the route of its id
/// (the part before the first `.`, the same in every id the session gets)
/// is learned from the answer that gave it, and looked up in each request.
/// A session whose replica is down goes where the route hashes to, the
/// same replica for each of its requests.
const STICKY: &str = "  balance hash req.hdr(mcp-session-id),field(1,.)\n  hash-type consistent\n\
    \x20 stick-table type string len 32 size 100k expire 1h\n\
    \x20 stick on req.hdr(mcp-session-id),field(1,.)\n\
    \x20 stick store-response res.hdr(mcp-session-id),field(1,.)\n";

/// The sessions open on `replica`, from its metrics.
fn sessions_open(replica: &Replica) -> u64 {
    let metrics = support::exchange(&replica.admin, "GET", "/metrics", &[], b"").unwrap();
    metrics
        .body
        .lines()
        .find_map(|line| line.strip_prefix("mcp_sessions_open "))
        .and_then(|value| value.trim().parse::<f64>().ok())
        .map_or(0, |value| value as u64)
}

/// What a client reported before and after its replica was killed.
struct CarriedOver {
    before: Value,
    after: Value,
}

/// Runs `client` (given the balancer's URL as its last argument) against
/// three replicas behind HAProxy keeping each session on one replica: it
/// sets a log level, subscribes to a resource, reports a JSON line, and
/// once told (a line on its stdin, after its replica was killed) checks
/// again and reports a second line. Both must show log messages and
/// resource updates, and the session taken over once, by another
/// replica.
#[allow(clippy::print_stderr)]
fn carried_over(mut client: Command, name: &str) -> CarriedOver {
    use std::io::{BufRead, BufReader, Write};

    let dir = tempfile::tempdir().unwrap();
    let marker = unique_marker(name);
    let replicas = three_replicas(dir.path(), &marker);
    let (haproxy, front) = balancer(dir.path(), &replicas, STICKY, &format!("{marker}-lb"));
    let open_before: Vec<u64> = replicas.iter().map(sessions_open).collect();

    let child = client
        .env(support::MARKER_VAR, format!("{marker}-client"))
        .arg(format!("http://{front}/mcp"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut client = Guard {
        child,
        marker: format!("{marker}-client"),
    };
    let mut lines = BufReader::new(client.child.stdout.take().unwrap()).lines();
    let mut report = |stage: &str| -> Value {
        let line = lines.next().and_then(Result::ok).unwrap_or_default();
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{stage}: {e}: {line:?}"))
    };

    // Before: the log level and the subscription work; the session
    // stayed on one replica, the one that opened it.
    let before = report("before");
    assert!(
        before["logged"].is_u64() && before["updated"].is_u64(),
        "{before}"
    );
    let grown: Vec<usize> = replicas
        .iter()
        .zip(&open_before)
        .enumerate()
        .filter(|(_, (replica, before))| sessions_open(replica) > **before)
        .map(|(n, _)| n)
        .collect();
    assert_eq!(grown.len(), 1, "the session is on one replica: {grown:?}");
    let holder = grown[0];

    // Its replica dies; the client goes on.
    signal(replicas[holder].guard.child.id(), "KILL");
    // The client goes on once the balancer has seen it down: a request
    // already on its way to the dead replica may break its client's
    // connection (the official Python SDK then drops the session), which
    // the sixteen clients' test counts, not this one.
    let down = format!("replicas/r{holder} is DOWN");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !std::fs::read_to_string(dir.path().join("haproxy.log"))
        .is_ok_and(|log| log.contains(&down))
    {
        assert!(
            Instant::now() < deadline,
            "HAProxy never saw replica {holder} down"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let stdin = client.child.stdin.as_mut().unwrap();
    writeln!(stdin, "go").unwrap();
    let after = report("after");
    let took_over = took_over(&replicas);
    eprintln!("replica {holder} killed; after: {after}; taken over by each replica: {took_over:?}");
    // Its log messages and the updates of the resource it subscribed to
    // come from another replica, which took the session over with them.
    assert!(
        after["logged"].is_u64(),
        "no log message after the failover: {after}"
    );
    assert!(
        after["updated"].is_u64(),
        "no resource update after the failover: {after}"
    );
    assert!(
        after["updates"]
            .as_array()
            .unwrap()
            .iter()
            .all(|uri| uri == "test://watched-resource"),
        "{after}"
    );
    assert_eq!(took_over[holder], 0, "{took_over:?}");
    // Every request of the session went to one replica after the kill
    // (where its route hashes): one takeover.
    assert_eq!(took_over.iter().sum::<usize>(), 1, "{took_over:?}");
    assert!(client.child.wait().unwrap().success());
    drop(client);
    stop(haproxy, replicas, &marker);
    CarriedOver { before, after }
}

#[test]
fn a_typescript_client_keeps_its_log_level_and_subscription_when_its_replica_dies() {
    let script = format!(
        "{}/tests/clients/ts_carried_client.mjs",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut client = Command::new(peer("MCP_PEER_NODE"));
    client
        .env("MCP_PEER_NODE_MODULES", peer("MCP_PEER_NODE_MODULES"))
        .arg(script);
    let CarriedOver { before, after, .. } = carried_over(client, "carried-ts");
    // Each change gave the client a new id, on one route, which it sent
    // from then on: the replica that took the session over got the
    // newest.
    let ids: Vec<&str> = ["first", "leveled", "subscribed"]
        .iter()
        .map(|key| before[key].as_str().unwrap())
        .collect();
    assert!(ids[0] != ids[1] && ids[1] != ids[2], "{before}");
    let route = ids[0].split_once('.').unwrap().0;
    assert!(
        ids.iter().all(|id| id.split_once('.').unwrap().0 == route),
        "{before}"
    );
    assert_eq!(after["session"], before["subscribed"], "{after}");
}

#[test]
fn a_python_client_keeps_its_log_level_and_subscription_when_its_replica_dies() {
    let script = format!(
        "{}/tests/clients/python_carried_client.py",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut client = Command::new(peer("MCP_PEER_PYTHON"));
    client.arg(script);
    // The SDK sends its first id throughout: the replica that took the
    // session over knew its level and subscription from the news the
    // dead one told when the client set them.
    carried_over(client, "carried-py");
}
