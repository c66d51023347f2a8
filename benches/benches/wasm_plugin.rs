//! A wasm plugin against the same server as a stdio child: the example
//! `text-tools-py` (`examples/plugins/text-tools-py/app.py`) compiled to a
//! component by componentize-py and run in-process by `mcp-plugin-wasm`,
//! and the same `app.py` run natively by CPython as a stdio child
//! (`run_stdio.py`), both behind the runtime. It reports `tools/call`
//! latency at 1 in flight and calls per second at 1 and 16 in flight, the
//! component's compile time, and the start time and memory of one instance
//! of each.
//!
//! Needs `cargo xtask peers` and `cargo xtask plugins`; run with
//! `cargo bench -p benches --bench wasm_plugin` (or `cargo xtask bench
//! wasm-plugin`). It reports; it asserts nothing about speed.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use benches::{process_status_kib, status_kib};
use mcp_core::{BoxFuture, McpServer, Peer, RequestContext, ServerId};
use mcp_plugin_wasm::{ComponentFile, Sandbox, WasmServer};
use mcp_protocol::raw::Raw;
use mcp_protocol::{Notification, Request, RequestId};
use mcp_runtime::transport::Connector;
use mcp_runtime::transport::inprocess::InProcessConnector;
use mcp_runtime::transport::stdio::{StdioCommand, StdioConnector};
use mcp_runtime::{CallOptions, McpRuntime, Server, ServerSpec};

const INITIALIZE: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}}"#;

fn root() -> PathBuf {
    let benches = Path::new(env!("CARGO_MANIFEST_DIR"));
    benches.parent().unwrap_or(benches).to_path_buf()
}

fn peer(key: &str) -> String {
    let path = root().join(".tools/peers.env");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{} ({e}): run `cargo xtask peers`", path.display()));
    text.lines()
        .filter_map(|line| line.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v.to_owned())
        .unwrap_or_else(|| panic!("no {key} in {}", path.display()))
}

struct Nobody;

impl Peer for Nobody {
    fn notify(&self, _: Notification<'static>) -> BoxFuture<'_, ()> {
        Box::pin(std::future::ready(()))
    }
}

async fn deploy(
    runtime: &McpRuntime,
    name: &str,
    connector: Arc<dyn Connector>,
) -> Server<mcp_core::state::Deployed> {
    let mut spec = ServerSpec::new(ServerId::new(name).unwrap(), connector);
    spec.health_interval = None;
    Server::new(runtime.clone(), spec).deploy().await.unwrap()
}

/// Latencies of `calls` calls one after another: (p50, p99, calls/s).
async fn one_at_a_time(
    server: &Server<mcp_core::state::Deployed>,
    calls: usize,
) -> (Duration, Duration, f64) {
    let handle = server.handle().clone();
    let params = call_params();
    let mut latencies = Vec::with_capacity(calls);
    let started = Instant::now();
    for _ in 0..calls {
        let t = Instant::now();
        handle
            .request("tools/call", Some(params.clone()), CallOptions::default())
            .await
            .unwrap();
        latencies.push(t.elapsed());
    }
    let rate = calls as f64 / started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let pct = |p: f64| latencies[((calls as f64 * p) as usize).min(calls - 1)];
    (pct(0.5), pct(0.99), rate)
}

/// Calls per second with 16 in flight, `each` calls per task.
async fn sixteen_in_flight(server: &Server<mcp_core::state::Deployed>, each: usize) -> f64 {
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let handle = server.handle().clone();
        tasks.spawn(async move {
            let params = call_params();
            for _ in 0..each {
                handle
                    .request("tools/call", Some(params.clone()), CallOptions::default())
                    .await
                    .unwrap();
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    (16 * each) as f64 / started.elapsed().as_secs_f64()
}

fn call_params() -> Raw<'static> {
    Raw::from_value(&serde_json::json!({
        "name": "word_count",
        "arguments": {"text": "the quick brown fox jumps over the lazy dog"}
    }))
}

/// Starts the stdio child and waits for its answer to `initialize`: how
/// long that took, and the child's resident memory then, in KiB.
fn stdio_start(python: &str, runner: &Path) -> (Duration, i64) {
    let started = Instant::now();
    let mut child = Command::new(python)
        .arg(runner)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "{INITIALIZE}").unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let took = started.elapsed();
    assert!(line.contains("text-tools-py"), "{line}");
    let rss = process_status_kib(&child.id().to_string(), "VmRSS:");
    drop(stdin);
    let _ = child.kill();
    let _ = child.wait();
    (took, rss)
}

fn initialize() -> Request<'static> {
    Request {
        id: RequestId::Number(1),
        method: "initialize".into(),
        params: Some(Raw::from_value(&serde_json::json!({
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "bench", "version": "1"}
        }))),
    }
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort_unstable();
    values[values.len() / 2]
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let (calls, each, starts) = if full { (5_000, 2_500, 8) } else { (20, 2, 2) };
    let component = root().join("target/plugins/text-tools-py/server.wasm");
    assert!(
        component.is_file(),
        "{} is missing: run `cargo xtask plugins`",
        component.display()
    );
    let python = peer("MCP_PEER_PYTHON");
    let runner = root().join("examples/plugins/text-tools-py/run_stdio.py");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        // Compiling, once per type: cold, then from the cache, as the
        // next start of the manager finds it.
        let ours = root().join("target").join("wasm-cache");
        let cache = mcp_plugin_wasm::cache_dir();
        if cache.as_deref() == Some(ours.as_path()) {
            let _ = std::fs::remove_dir_all(&ours);
        } else {
            println!("note: the cache is {cache:?}, not {}: the cold compile may come from it", ours.display());
        }
        let rss_before = status_kib("VmRSS:");
        let file = Arc::new(ComponentFile::new("text-tools-py", &component, false));
        let t = Instant::now();
        file.compiled().await.unwrap();
        let compile = t.elapsed();
        let compiled_kib = status_kib("VmRSS:") - rss_before;
        let t = Instant::now();
        ComponentFile::new("text-tools-py", &component, false)
            .compiled()
            .await
            .unwrap();
        let cached = t.elapsed();
        println!("from the cache in {cached:?}");
        println!(
            "compiled {} ({:.1} MiB) in {compile:?}, RSS +{} MiB",
            component.display(),
            std::fs::metadata(&component).map(|m| m.len()).unwrap_or(0) as f64 / 1048576.0,
            compiled_kib / 1024
        );

        // Start time and memory of one instance: servers of one instance
        // each, started and initialized one after another, kept alive.
        let rss_before = status_kib("VmRSS:");
        let mut servers = Vec::new();
        let mut wasm_starts = Vec::new();
        for _ in 0..starts {
            let server = WasmServer::new(
                file.clone(),
                Sandbox { instances: 1, ..Sandbox::default() },
            )
            .unwrap();
            let t = Instant::now();
            server
                .handle_request(initialize(), RequestContext::new(Arc::new(Nobody)))
                .await
                .unwrap();
            wasm_starts.push(t.elapsed());
            servers.push(server);
        }
        let wasm_kib = (status_kib("VmRSS:") - rss_before) / starts as i64;
        drop(servers);
        let wasm_start = median(wasm_starts);
        let mut stdio_starts = Vec::new();
        let mut stdio_kib = Vec::new();
        for _ in 0..starts {
            let (took, kib) = stdio_start(&python, &runner);
            stdio_starts.push(took);
            stdio_kib.push(kib);
        }
        let stdio_start = median(stdio_starts);
        stdio_kib.sort_unstable();
        let stdio_kib = stdio_kib[stdio_kib.len() / 2];
        println!(
            "start to initialized, median of {starts}: wasm instance {wasm_start:?} (+{} MiB each), stdio child {stdio_start:?} ({} MiB RSS)",
            wasm_kib / 1024,
            stdio_kib / 1024
        );

        // Calls through the runtime.
        let runtime = McpRuntime::start();
        let wasm = WasmServer::new(file.clone(), Sandbox::default()).unwrap();
        let wasm = deploy(
            &runtime,
            "wasm",
            Arc::new(InProcessConnector::new("wasm", Arc::new(wasm) as Arc<dyn McpServer>)),
        )
        .await;
        let stdio = deploy(
            &runtime,
            "stdio",
            Arc::new(StdioConnector::new(StdioCommand {
                server: ServerId::new("stdio").unwrap(),
                command: python.clone(),
                args: vec![runner.display().to_string()],
                env: BTreeMap::new(),
                cwd: None,
                max_message: 1 << 20,
                sandbox: None,
            })),
        )
        .await;
        let _ = one_at_a_time(&wasm, calls / 10).await;
        let _ = one_at_a_time(&stdio, calls / 10).await;
        let (wasm_p50, wasm_p99, wasm_rate) = one_at_a_time(&wasm, calls).await;
        let (stdio_p50, stdio_p99, stdio_rate) = one_at_a_time(&stdio, calls).await;
        println!(
            "1 in flight, {calls} calls: wasm p50 {wasm_p50:?} p99 {wasm_p99:?} {wasm_rate:.0}/s; stdio p50 {stdio_p50:?} p99 {stdio_p99:?} {stdio_rate:.0}/s"
        );
        let wasm_16 = sixteen_in_flight(&wasm, each).await;
        let stdio_16 = sixteen_in_flight(&stdio, each).await;
        println!("16 in flight, {} calls: wasm {wasm_16:.0}/s ({} instances); stdio {stdio_16:.0}/s", 16 * each, Sandbox::DEFAULT_INSTANCES);

        let us = |d: Duration| d.as_secs_f64() * 1e6;
        println!(
            "report: wasm plugin vs the same Python as a stdio child, tools/call p50 at 1 in flight | {:.0} µs vs {:.0} µs ({:.2}x) | - | -",
            us(wasm_p50),
            us(stdio_p50),
            us(wasm_p50) / us(stdio_p50)
        );
        println!(
            "report: wasm plugin vs stdio child, calls per second at 1 / 16 in flight | {wasm_rate:.0} / {wasm_16:.0} vs {stdio_rate:.0} / {stdio_16:.0} | - | -"
        );
        println!(
            "report: wasm plugin instance vs stdio child, start to initialized and memory | {:.1} ms, +{:.1} MiB vs {:.1} ms, {:.1} MiB RSS | - | -",
            wasm_start.as_secs_f64() * 1e3,
            wasm_kib as f64 / 1024.0,
            stdio_start.as_secs_f64() * 1e3,
            stdio_kib as f64 / 1024.0
        );
        println!(
            "report: wasm plugin component compiled once per type ({:.1} MiB), cold / from the cache | {:.2} s, RSS +{:.0} MiB / {:.0} ms | - | -",
            std::fs::metadata(&component).map(|m| m.len()).unwrap_or(0) as f64 / 1048576.0,
            compile.as_secs_f64(),
            compiled_kib as f64 / 1024.0,
            cached.as_secs_f64() * 1e3
        );
        drop(wasm);
        drop(stdio);
        runtime.shutdown().await;
    });
}
