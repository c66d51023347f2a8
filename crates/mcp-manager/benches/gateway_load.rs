//! The gateway against no gateway: `mcp-manager serve` over HTTP in front of
//! the built-in `echo` server run as a stdio child, side by side with the
//! same `echo` server served directly over Streamable HTTP
//! (`mcp-manager builtin echo --http`), at 1 and 16 requests in flight.
//! Three more targets are the same gateway with monitoring on: Prometheus
//! metrics kept (`--admin`, target `metrics`); metrics and traces exported
//! over OTLP/HTTP to a sink in this process at the default sampling (one
//! request in a hundred without trace context, `observed`); and the same with
//! every request traced (`traced`). Their throughput against the plain
//! gateway's is the monitoring overhead.
//!
//! Both servers run as separate processes of the freshly built binary; the
//! load comes from this process, one HTTP/1.1 connection and one MCP
//! session per request in flight, over loopback only. The targets take
//! turns in short rounds (each round starting with another one) so that all
//! see the same machine; overheads are the median of the round-by-round
//! ratios, which a slow spell of the machine moves much less than totals.
//! Every answer is checked by content (it must echo the text its request
//! sent).
//!
//! It reports req/s, p50, p99 and the CPU time of the target's own process
//! per request (a steadier measure of overhead than throughput on a busy
//! machine) per target and in-flight level, the
//! ratios the product targets speak of, and the resident memory of the
//! gateway, its child and the direct server. Where valgrind is installed,
//! it then counts the instructions the four gateways execute per request
//! under callgrind: the monitoring overhead in a figure that the rest of a
//! busy machine does not move. It asserts nothing about speed.
//!
//! Run with `cargo xtask bench gateway` (or `cargo bench -p mcp-manager
//! --bench gateway_load`). Without `--bench` (as under `cargo test
//! --benches`) it makes one short round only, to show that it works. With
//! `CALLGRIND_DIR=DIR` in the environment the callgrind profiles are kept
//! in `DIR` (`DIR/gateway.callgrind.1`, ...), for `callgrind_annotate` to
//! say where the instructions go.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss
)]

mod load;

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use load::{BIN, Client, Server, Tally, paired_overhead, round};
const LEVELS: [usize; 2] = [1, 16];

/// Runs `clients` until they have made `total` calls between them.
async fn calls(clients: &mut Vec<Client>, total: usize) {
    let each = total / clients.len().max(1);
    let tasks: Vec<_> = std::mem::take(clients)
        .into_iter()
        .enumerate()
        .map(|(worker, mut client)| {
            tokio::spawn(async move {
                for n in 0..each {
                    client.call(worker, n as u64 + 1).await;
                }
                client
            })
        })
        .collect();
    for task in tasks {
        clients.push(task.await.unwrap());
    }
}

/// Instructions the gateway process (all its threads, the OTLP exporter's
/// included) executes per request, counted by callgrind: a figure that
/// does not move with what else the machine does. The gateway runs under
/// `valgrind --tool=callgrind` with `args`; the counters are zeroed after a
/// warm-up, `requests` calls are made at 4 in flight, and after six idle
/// seconds (long enough for the exporter's timer to send what is left)
/// they are read. `None` without valgrind.
fn instructions(
    rt: &tokio::runtime::Runtime,
    dir: &std::path::Path,
    name: &'static str,
    args: &[&str],
    requests: usize,
) -> Option<f64> {
    let out = dir.join(format!("{name}.callgrind"));
    let mut command = Command::new("valgrind");
    command
        .arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", out.display()))
        .arg(format!("--log-file={}.log", out.display()))
        .arg(BIN)
        .args(args);
    let server = Server::spawn(name, command);
    let control = |what: &str| {
        Command::new("callgrind_control")
            .args([what, &server.child.id().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    rt.block_on(async {
        let mut clients = Vec::new();
        for _ in 0..4 {
            clients.push(Client::connect(server.addr).await);
        }
        calls(&mut clients, 200).await;
        assert!(control("-z"), "callgrind_control -z failed");
        calls(&mut clients, requests).await;
        tokio::time::sleep(Duration::from_secs(6)).await;
    });
    assert!(control("-d"), "callgrind_control -d failed");
    let dump = std::fs::read_to_string(format!("{}.1", out.display())).ok()?;
    let total: u64 = dump
        .lines()
        .find_map(|l| l.strip_prefix("summary:"))
        .and_then(|n| n.trim().parse().ok())?;
    Some(total as f64 / requests as f64)
}

#[path = "../tests/support/http_sink.rs"]
mod http_sink;

/// An OTLP/HTTP sink on loopback that drops what it gets; the number of
/// export requests it took.
fn otlp_sink() -> (SocketAddr, std::sync::Arc<std::sync::atomic::AtomicU64>) {
    let exports = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = exports.clone();
    let addr = http_sink::start(move |_| {
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    });
    (addr, exports)
}

fn micros(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let (rounds, period, warmup) = if full {
        (15, Duration::from_secs(1), Duration::from_secs(1))
    } else {
        (1, Duration::from_millis(200), Duration::from_millis(100))
    };

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("echo.json");
    let text = serde_json::json!({
        "mcpServers": {
            "echo": {"command": BIN, "args": ["builtin", "echo", "--stdio"], "namespace": ""}
        }
    });
    std::fs::write(&config, text.to_string()).unwrap();
    let direct = Server::start("direct", &["builtin", "echo", "--http", "127.0.0.1:0"]);
    let (sink, exports) = otlp_sink();
    let sink_url = format!("http://{sink}");
    let config_path = config.to_str().unwrap();
    let gateway_with = |name: &'static str, extra: &[&str]| {
        let mut args = vec!["serve", "--config", config_path, "--http", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        Server::start(name, &args)
    };
    let admin = ["--admin", "127.0.0.1:0"];
    let gateway = gateway_with("gateway", &[]);
    let metrics = gateway_with("metrics", &admin);
    let observed = gateway_with(
        "observed",
        &[&admin[..], &["--otlp-endpoint", &sink_url]].concat(),
    );
    let traced = gateway_with(
        "traced",
        &[
            &admin[..],
            &["--otlp-endpoint", &sink_url, "--trace-sample-ratio", "1"],
        ]
        .concat(),
    );
    let idle = (direct.memory(), gateway.memory());

    // The load runs on one thread; both servers get the rest of the machine.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let targets = [&direct, &gateway, &metrics, &observed, &traced];
    let mut tallies: Vec<Vec<Tally>> = LEVELS
        .iter()
        .map(|_| targets.iter().map(|_| Tally::default()).collect())
        .collect();
    rt.block_on(async {
        for (level, in_flight) in LEVELS.iter().enumerate() {
            let mut clients = Vec::new();
            for server in targets {
                let mut set = Vec::new();
                for _ in 0..*in_flight {
                    set.push(Client::connect(server.addr).await);
                }
                round(&mut set, warmup, &mut Tally::default()).await;
                clients.push(set);
            }
            for r in 0..rounds {
                // Each round starts with a different target, so that none is
                // always the one that runs after another particular one.
                for step in 0..targets.len() {
                    let target = (r + step) % targets.len();
                    let before = targets[target].cpu_ticks();
                    round(&mut clients[target], period, &mut tallies[level][target]).await;
                    tallies[level][target].cpu_ticks += targets[target].cpu_ticks() - before;
                }
            }
        }
    });
    let loaded = (direct.memory(), gateway.memory());

    println!(
        "gateway (HTTP in, stdio echo backend) vs the echo server over HTTP directly, \
         and the gateway with metrics and traces on (`observed`): \
         {rounds} rounds of {period:?} per target and level, the targets taking turns"
    );
    println!(
        "{:>9}  {:<8} {:>10} {:>10} {:>10} {:>9} {:>12}",
        "in flight", "target", "req/s", "p50", "p99", "requests", "CPU/request"
    );
    let mut summary = Vec::new();
    for (level, in_flight) in LEVELS.iter().enumerate() {
        let mut row = Vec::new();
        for (target, server) in targets.iter().enumerate() {
            let tally = &mut tallies[level][target];
            let (rate, p50, p99) = (tally.rate(), tally.percentile(0.5), tally.percentile(0.99));
            let cpu = tally.cpu_per_request();
            println!(
                "{in_flight:>9}  {:<8} {rate:>10.0} {:>10} {:>10} {:>9} {cpu:>9.1} µs",
                server.name,
                micros(p50),
                micros(p99),
                tally.latencies.len()
            );
            row.push((rate, p50, cpu));
        }
        summary.push(row);
    }
    let throughput = summary[1][1].0 / summary[1][0].0;
    let latency = summary[0][1].1.as_secs_f64() / summary[0][0].1.as_secs_f64();
    println!(
        "gateway/direct throughput at 16 in flight: {:.0} % (target >= 45 %)",
        throughput * 100.0
    );
    println!("gateway/direct p50 at 1 in flight: {latency:.2}x (target <= 2.5x)");
    let verdict = |met: bool| if met { "met" } else { "not met" };
    println!(
        "report: gateway over stdio vs the backend over HTTP directly, throughput at 16 in flight | {:.0} % | >= 50 % | {}",
        throughput * 100.0,
        verdict(throughput >= 0.5)
    );
    println!(
        "report: gateway over stdio vs the backend over HTTP directly, p50 at 1 in flight | {latency:.2}x | <= 2x | {}",
        verdict(latency <= 2.0)
    );
    println!(
        "report: gateway throughput at 1 / 16 in flight | {:.0} / {:.0} req/s | - | -",
        summary[0][1].0, summary[1][1].0
    );
    println!(
        "report: gateway CPU per call at 16 in flight | {:.1} µs | <= 25 µs | {}",
        summary[1][1].2,
        verdict(summary[1][1].2 <= 25.0)
    );
    let overhead = |level: usize, target: usize| {
        let (median, low, high) = paired_overhead(&tallies[level][1], &tallies[level][target]);
        format!("{median:.1} % ({low:+.1} .. {high:+.1})")
    };
    println!(
        "monitoring overhead: the target's throughput below the plain gateway's in the same round, \
         median over {rounds} rounds (lowest .. highest round); target < 3 %\n  \
         metrics: at 1 in flight {}, at 16 {}\n  \
         metrics and traces, default sampling (1 in 100): at 1 {}, at 16 {}\n  \
         metrics and traces, every request traced: at 1 {}, at 16 {}\n  \
         ({} OTLP exports received)",
        overhead(0, 2),
        overhead(1, 2),
        overhead(0, 3),
        overhead(1, 3),
        overhead(0, 4),
        overhead(1, 4),
        exports.load(std::sync::atomic::Ordering::Relaxed)
    );
    let cpu = |level: usize, target: usize| {
        (summary[level][target].2 / summary[level][1].2 - 1.0) * 100.0
    };
    println!(
        "extra CPU per request in the gateway process (exporter thread included), at 1 and 16 in flight:\n  \
         metrics {:+.1} %, {:+.1} %\n  \
         metrics and traces, default sampling {:+.1} %, {:+.1} %\n  \
         metrics and traces, every request traced {:+.1} %, {:+.1} %",
        cpu(0, 2),
        cpu(1, 2),
        cpu(0, 3),
        cpu(1, 3),
        cpu(0, 4),
        cpu(1, 4),
    );
    let valgrind = Command::new("valgrind")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if full && valgrind {
        let requests = 2000;
        let variants: [(&'static str, Vec<&str>); 4] = [
            ("gateway", vec![]),
            ("metrics", admin.to_vec()),
            (
                "observed",
                [&admin[..], &["--otlp-endpoint", &sink_url]].concat(),
            ),
            (
                "traced",
                [
                    &admin[..],
                    &["--otlp-endpoint", &sink_url, "--trace-sample-ratio", "1"],
                ]
                .concat(),
            ),
        ];
        let mut counted = Vec::new();
        for (name, extra) in &variants {
            let mut args = vec!["serve", "--config", config_path, "--http", "127.0.0.1:0"];
            args.extend_from_slice(extra);
            let profiles = std::env::var_os("CALLGRIND_DIR")
                .map_or_else(|| dir.path().to_owned(), std::path::PathBuf::from);
            if let Some(per_request) = instructions(&rt, &profiles, name, &args, requests) {
                counted.push((*name, per_request));
            }
        }
        if let Some((_, base)) = counted.first().copied() {
            println!(
                "instructions per request in the gateway process (callgrind, {requests} requests at 4 in flight, exporter included):"
            );
            for (name, per_request) in &counted {
                println!(
                    "  {name:<9} {per_request:>10.0}  {:+.1} % vs the plain gateway",
                    (per_request / base - 1.0) * 100.0
                );
            }
            println!(
                "report: instructions per request in the gateway process (callgrind) | {base:.0} | - | -"
            );
            if let Some((_, observed)) = counted.iter().find(|(name, _)| *name == "observed") {
                let overhead = (observed / base - 1.0) * 100.0;
                println!(
                    "report: monitoring on vs off (metrics + default tracing), instructions per request | {overhead:+.1} % | < 3 % | {}",
                    if overhead < 3.0 { "met" } else { "not met" }
                );
            }
        }
    }
    let mib = |kib: u64| kib as f64 / 1024.0;
    println!(
        "resident memory, idle -> after load: gateway {:.1} -> {:.1} MiB (peak {:.1}), its echo child {:.1} -> {:.1} MiB; direct server {:.1} -> {:.1} MiB",
        mib(idle.1.0),
        mib(loaded.1.0),
        mib(loaded.1.1),
        mib(idle.1.2),
        mib(loaded.1.2),
        mib(idle.0.0),
        mib(loaded.0.0),
    );
}
