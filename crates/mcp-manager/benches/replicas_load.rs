//! Three replicas against one, through the same load balancer: HAProxy
//! (from the project's peers, `cargo xtask peers`) in front of one
//! `mcp-manager serve` replica, and another HAProxy in front of three
//! replicas sharing a cluster key, side by side. Each replica serves the
//! built-in `echo` server in-process; each client keeps one 2025 session
//! on one HTTP/1.1 connection to its balancer, which sends each request to
//! the next replica (round robin: every replica takes each session over).
//! The two targets take turns in short rounds, at 16 and 64 requests in
//! flight, and every answer is checked by content.
//!
//! It reports req/s, p50 and p99 per target and level, and the median of
//! the round-by-round ratio of three replicas' throughput to one's. On a
//! machine with fewer cores than replicas plus balancer plus load, the
//! ratio says what the balancer and the takeovers cost more than what
//! three replicas add. It asserts nothing about speed.
//!
//! Run with `cargo xtask bench replicas` (or `cargo bench -p mcp-manager
//! --bench replicas_load`). Without `--bench` it makes one short round
//! only; without HAProxy installed it says so and stops.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_precision_loss
)]

mod load;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use load::{Client, Server, Tally, median, round};

const LEVELS: [usize; 2] = [16, 64];
const KEY: &str = "6b1f0c3b2a4e6f5d7c9b8a0e1f2d3c4b5a69788796a5b4c3d2e1f0a1b2c3d4e5";

/// HAProxy from the peers, if they are installed.
fn haproxy() -> Option<String> {
    let env = format!("{}/../../.tools/peers.env", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(env)
        .ok()?
        .lines()
        .find_map(|line| line.strip_prefix("MCP_PEER_HAPROXY=").map(str::to_owned))
}

/// A balancer process, killed when dropped.
struct Balancer {
    child: Child,
    addr: SocketAddr,
}

impl Balancer {
    fn start(program: &str, dir: &std::path::Path, name: &str, replicas: &[&Server]) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let mut config = format!(
            "global\n  maxconn 4000\n\
             defaults\n  mode http\n  timeout connect 1s\n  timeout client 60s\n  timeout server 60s\n\
             frontend mcp\n  bind {addr}\n  default_backend replicas\n\
             \x20 http-request set-header Host 127.0.0.1\n\
             backend replicas\n  balance roundrobin\n  http-reuse always\n"
        );
        for (n, replica) in replicas.iter().enumerate() {
            config.push_str(&format!("  server r{n} {}\n", replica.addr));
        }
        let path = dir.join(format!("{name}.cfg"));
        std::fs::write(&path, config).unwrap();
        let child = Command::new(program)
            .args(["-db", "-f", path.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(addr).is_err() {
            assert!(Instant::now() < deadline, "{name} never listened");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { child, addr }
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn micros(d: Duration) -> String {
    format!("{:.0} µs", d.as_secs_f64() * 1e6)
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let Some(program) = haproxy() else {
        eprintln!("replicas: skipped, HAProxy is not installed (run `cargo xtask peers`)");
        return;
    };
    let (rounds, period, warmup) = if full {
        (10, Duration::from_secs(2), Duration::from_secs(1))
    } else {
        (1, Duration::from_millis(200), Duration::from_millis(100))
    };
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("replica.json");
    let text = serde_json::json!({
        "mcpManager": {"cluster": {"key": KEY}, "pinning": "off"},
        "mcpServers": {"echo": {"type": "builtin", "server": "echo", "namespace": ""}}
    });
    std::fs::write(&config, text.to_string()).unwrap();
    let config = config.to_str().unwrap().to_owned();
    let replica = |name: &'static str| {
        Server::start(
            name,
            &["serve", "--config", &config, "--http", "127.0.0.1:0"],
        )
    };
    let (r0, r1, r2) = (replica("r0"), replica("r1"), replica("r2"));
    let one = Balancer::start(&program, dir.path(), "one", &[&r0]);
    let three = Balancer::start(&program, dir.path(), "three", &[&r0, &r1, &r2]);
    let targets = [("1 replica", one.addr), ("3 replicas", three.addr)];

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut tallies: Vec<Vec<Tally>> = LEVELS
        .iter()
        .map(|_| targets.iter().map(|_| Tally::default()).collect())
        .collect();
    runtime.block_on(async {
        for (level, &in_flight) in LEVELS.iter().enumerate() {
            let mut clients = Vec::new();
            for (_, addr) in &targets {
                let mut set = Vec::new();
                for _ in 0..in_flight {
                    set.push(Client::connect(*addr).await);
                }
                round(&mut set, warmup, &mut Tally::default()).await;
                clients.push(set);
            }
            for n in 0..rounds {
                for turn in 0..targets.len() {
                    // Each round starts with another target.
                    let target = (turn + n) % targets.len();
                    round(&mut clients[target], period, &mut tallies[level][target]).await;
                }
            }
        }
    });

    println!("\nreplicas behind HAProxy, {rounds} rounds of {period:?} each:");
    for (level, &in_flight) in LEVELS.iter().enumerate() {
        for (target, (name, _)) in targets.iter().enumerate() {
            let tally = &mut tallies[level][target];
            let rate = tally.rate();
            let (p50, p99) = (tally.percentile(0.5), tally.percentile(0.99));
            println!(
                "  {in_flight:>3} in flight  {name:<11} {rate:>9.0} req/s  p50 {:>9}  p99 {:>9}",
                micros(p50),
                micros(p99)
            );
        }
        let ratios: Vec<f64> = tallies[level][1]
            .rates
            .iter()
            .zip(&tallies[level][0].rates)
            .map(|(three, one)| three / one)
            .collect();
        let low = ratios.iter().copied().fold(f64::INFINITY, f64::min);
        let high = ratios.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        println!(
            "  {in_flight:>3} in flight  3 replicas / 1: {:.2}x (rounds {low:.2}x .. {high:.2}x), on {} cores",
            median(ratios),
            std::thread::available_parallelism().map_or(0, usize::from)
        );
    }
}
