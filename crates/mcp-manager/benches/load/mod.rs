//! What the load benchmarks share: server processes of the freshly built
//! binary, MCP clients on one HTTP/1.1 connection each, rounds of calls
//! and their tallies. A module of the benchmarks, not a benchmark.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;

/// The binary under test.
pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_mcp-manager");

/// A server process, stopped with SIGTERM (so that it stops its own
/// children) and killed if it does not stop in time.
pub(crate) struct Server {
    pub(crate) name: &'static str,
    pub(crate) child: Child,
    pub(crate) addr: SocketAddr,
}

impl Server {
    pub(crate) fn start(name: &'static str, args: &[&str]) -> Self {
        let mut command = Command::new(BIN);
        command.args(args);
        Self::spawn(name, command)
    }

    /// Starts `command`, which must say where it listens on stderr.
    pub(crate) fn spawn(name: &'static str, mut command: Command) -> Self {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        let stderr = child.stderr.take().expect("piped stderr");
        let (found, addr) = std::sync::mpsc::channel();
        // Read stderr until the address shows, then keep draining it so
        // that the server never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut found = Some(found);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.split_once("listening on http://").map(|(_, r)| r) {
                    if let Some(sender) = found.take() {
                        let _ = sender.send(rest.trim_end_matches("/mcp").to_owned());
                    }
                }
            }
        });
        let mut server = Self {
            name,
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        };
        let text = addr
            .recv_timeout(Duration::from_secs(120))
            .unwrap_or_else(|_| panic!("{name} did not say where it listens"));
        server.addr = text.parse().expect("a socket address");
        server
    }

    /// User and system CPU time of this process so far, in clock ticks.
    pub(crate) fn cpu_ticks(&self) -> u64 {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        // After `(comm)`: state is field 3, utime 14 and stime 15.
        let rest = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let tick = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<u64>().ok())
                .unwrap_or(0)
        };
        tick(11) + tick(12)
    }

    /// Resident memory of this process and of its children, in KiB:
    /// (own now, own peak, children now).
    pub(crate) fn memory(&self) -> (u64, u64, u64) {
        let pid = self.child.id();
        let field = |pid: u32, key: &str| -> u64 {
            std::fs::read_to_string(format!("/proc/{pid}/status"))
                .ok()
                .and_then(|status| {
                    status
                        .lines()
                        .find_map(|l| l.strip_prefix(key))
                        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                })
                .unwrap_or(0)
        };
        // Children are listed per thread: the one that started them.
        let children: u64 = std::fs::read_dir(format!("/proc/{pid}/task"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|task| std::fs::read_to_string(task.path().join("children")).ok())
            .flat_map(|list| {
                list.split_whitespace()
                    .filter_map(|c| c.parse().ok())
                    .collect::<Vec<u32>>()
            })
            .map(|c| field(c, "VmRSS:"))
            .sum();
        (field(pid, "VmRSS:"), field(pid, "VmHWM:"), children)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!("{} did not stop on SIGTERM; killing it", self.name);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One MCP session on one HTTP/1.1 connection.
pub(crate) struct Client {
    sender: SendRequest<Full<Bytes>>,
    pub(crate) addr: SocketAddr,
    pub(crate) session: String,
}

impl Client {
    pub(crate) async fn connect(addr: SocketAddr) -> Self {
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(connection);
        let mut client = Self {
            sender,
            addr,
            session: String::new(),
        };
        let (session, answer) = client
            .post(br#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"gateway-load","version":"1"}}}"#.to_vec())
            .await;
        assert!(
            answer.windows(15).any(|w| w == b"protocolVersion"),
            "initialize failed: {}",
            String::from_utf8_lossy(&answer)
        );
        client.session = session.expect("a session id");
        client
            .post(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#.to_vec())
            .await;
        client
    }

    /// POSTs one message; the session id the answer carries, and its body.
    pub(crate) async fn post(&mut self, body: Vec<u8>) -> (Option<String>, Bytes) {
        let mut request = hyper::Request::post("/mcp")
            .header("host", self.addr.to_string())
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream");
        if !self.session.is_empty() {
            request = request
                .header("mcp-session-id", &self.session)
                .header("mcp-protocol-version", "2025-11-25");
        }
        let request = request.body(Full::new(Bytes::from(body))).unwrap();
        self.sender.ready().await.unwrap();
        let response = self.sender.send_request(request).await.unwrap();
        let session = response
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (session, body)
    }

    /// One `tools/call` of `echo`, checked by content; its latency.
    pub(crate) async fn call(&mut self, worker: usize, n: u64) -> Duration {
        let text = format!("w{worker}-r{n}");
        let body = format!(
            r#"{{"jsonrpc":"2.0","id":{n},"method":"tools/call","params":{{"name":"echo","arguments":{{"text":"{text}"}}}}}}"#
        );
        let start = Instant::now();
        let (_, answer) = self.post(body.into_bytes()).await;
        let took = start.elapsed();
        let expected = format!(r#""text":"{text}""#);
        assert!(
            answer
                .windows(expected.len())
                .any(|w| w == expected.as_bytes()),
            "wrong answer to {text}: {}",
            String::from_utf8_lossy(&answer)
        );
        took
    }
}

/// What one target did at one in-flight level, over all rounds.
#[derive(Default)]
pub(crate) struct Tally {
    pub(crate) latencies: Vec<Duration>,
    pub(crate) busy: Duration,
    /// CPU time the target's own process spent during its rounds, in clock
    /// ticks (its children not counted).
    pub(crate) cpu_ticks: u64,
    /// Throughput of each round, in order, so that two targets can be
    /// compared round by round.
    pub(crate) rates: Vec<f64>,
}

impl Tally {
    pub(crate) fn rate(&self) -> f64 {
        self.latencies.len() as f64 / self.busy.as_secs_f64()
    }

    /// CPU time of the target's process per request, in microseconds
    /// (assuming 100 clock ticks per second, Linux's value everywhere).
    pub(crate) fn cpu_per_request(&self) -> f64 {
        self.cpu_ticks as f64 * 10_000.0 / self.latencies.len().max(1) as f64
    }

    pub(crate) fn percentile(&mut self, p: f64) -> Duration {
        self.latencies.sort_unstable();
        let index = ((self.latencies.len() as f64 * p) as usize).min(self.latencies.len() - 1);
        self.latencies[index]
    }
}

/// Runs `clients` flat out for `period`, each with one request in flight.
pub(crate) async fn round(clients: &mut Vec<Client>, period: Duration, tally: &mut Tally) {
    let started = Instant::now();
    let deadline = started + period;
    let tasks: Vec<_> = std::mem::take(clients)
        .into_iter()
        .enumerate()
        .map(|(worker, mut client)| {
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(1 << 16);
                let mut n = 1;
                while Instant::now() < deadline {
                    latencies.push(client.call(worker, n).await);
                    n += 1;
                }
                (client, latencies)
            })
        })
        .collect();
    let mut count = 0;
    for task in tasks {
        let (client, latencies) = task.await.unwrap();
        clients.push(client);
        count += latencies.len();
        tally.latencies.extend(latencies);
    }
    let elapsed = started.elapsed();
    tally.busy += elapsed;
    tally.rates.push(count as f64 / elapsed.as_secs_f64());
}

/// The median of `values` (which must not be empty).
pub(crate) fn median(mut values: Vec<f64>) -> f64 {
    values.sort_unstable_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 0 {
        (values[mid - 1] + values[mid]) / 2.0
    } else {
        values[mid]
    }
}

/// How much lower `target`'s throughput was than `base`'s, in percent: the
/// median over rounds of each round's ratio (the two ran next to each other
/// in every round), with the lowest and highest round.
pub(crate) fn paired_overhead(base: &Tally, target: &Tally) -> (f64, f64, f64) {
    let per_round: Vec<f64> = base
        .rates
        .iter()
        .zip(&target.rates)
        .map(|(b, t)| (1.0 - t / b) * 100.0)
        .collect();
    let low = per_round.iter().copied().fold(f64::INFINITY, f64::min);
    let high = per_round.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (median(per_round), low, high)
}
