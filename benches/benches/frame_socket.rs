//! The frame socket against Streamable HTTP, side by side in one run:
//! the same gateway over the same in-process server (`benches::BlobServer`),
//! served in this process by `serve_frames` and `serve_http`, and called by
//! the same client (the runtime's frame-socket and HTTP transports).
//!
//! - small `tools/call`s: p50 and p99 at 1 in flight, requests per second at
//!   16 in flight, heap allocations per call;
//! - `resources/read` of 1 MiB and 64 MiB: the median time of a read, the
//!   bytes allocated per read (an instrumenting allocator: in this one
//!   process, the server's copy of the blob and the client's parsed copy
//!   are in it whatever the transport; what is above them is the cost of
//!   the way between), and the growth of the peak resident set.
//!
//! Run with `cargo bench -p benches --bench frame_socket`. It reports; it
//! asserts nothing about speed.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::indexing_slicing,
    clippy::cast_precision_loss
)]

use std::alloc::System;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use benches::status_kib;
use mcp_core::ServerId;
use mcp_gateway::{Backend, Gateway};
use mcp_protocol::raw::Raw;
use mcp_runtime::transport::Connector;
use mcp_runtime::transport::frame::FrameConnector;
use mcp_runtime::transport::http::{HttpConnector, HttpTarget};
use mcp_runtime::{CallOptions, McpRuntime, Server, ServerHandle, ServerSpec};
use mcp_serve::{FrameServeOptions, HttpServeOptions, bind_frame_socket, serve_frames, serve_http};
use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const MIB: usize = 1024 * 1024;

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "not met" }
}

/// Resets the peak resident set to the current one.
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

async fn client(runtime: &McpRuntime, name: &str, connector: Arc<dyn Connector>) -> ServerHandle {
    let mut spec = ServerSpec::new(ServerId::new(name).unwrap(), connector);
    spec.health_interval = None;
    spec.timeouts =
        mcp_core::config::Timeouts::new(Duration::from_secs(120), Duration::from_secs(30));
    Server::new(runtime.clone(), spec)
        .deploy()
        .await
        .map_err(|failed| failed.error().to_string())
        .unwrap()
        .into_handle()
}

async fn call(handle: &ServerHandle) {
    let params =
        Raw::from_value(&serde_json::json!({"name": "echo", "arguments": {"text": "hello"}}));
    handle
        .request("tools/call", Some(params), CallOptions::default())
        .await
        .unwrap();
}

/// p50 and p99 of `count` calls one after the other, in µs.
async fn latency(handle: &ServerHandle, count: usize) -> (f64, f64) {
    let mut times = Vec::with_capacity(count);
    for _ in 0..count {
        let start = Instant::now();
        call(handle).await;
        times.push(start.elapsed());
    }
    times.sort_unstable();
    let at = |p: f64| times[((times.len() as f64 * p) as usize).min(times.len() - 1)];
    let micros = |d: Duration| d.as_secs_f64() * 1e6;
    (micros(at(0.50)), micros(at(0.99)))
}

/// Heap allocations per call (client, gateway and server together: they
/// share this process), over `count` calls one after the other.
async fn allocations(handle: &ServerHandle, count: usize) -> f64 {
    let before = GLOBAL.stats();
    for _ in 0..count {
        call(handle).await;
    }
    let after = GLOBAL.stats();
    (after.allocations + after.reallocations - before.allocations - before.reallocations) as f64
        / count as f64
}

/// Calls per second with `tasks` in flight, `each` calls per task.
async fn throughput(handle: &ServerHandle, tasks: usize, each: usize) -> f64 {
    let start = Instant::now();
    let running: Vec<_> = (0..tasks)
        .map(|_| {
            let handle = handle.clone();
            tokio::spawn(async move {
                for _ in 0..each {
                    call(&handle).await;
                }
            })
        })
        .collect();
    for task in running {
        task.await.unwrap();
    }
    (tasks * each) as f64 / start.elapsed().as_secs_f64()
}

/// Reads `blob://SIZE` `count` times: the median time in ms, the bytes
/// allocated per read, and the growth of the peak resident set in MiB.
async fn reads(handle: &ServerHandle, size: usize, count: usize) -> (f64, f64, f64) {
    let params = Raw::from_value(&serde_json::json!({"uri": format!("blob://{size}")}));
    let mut times = Vec::with_capacity(count);
    let rss = status_kib("VmRSS:");
    reset_peak();
    let before = GLOBAL.stats();
    for _ in 0..count {
        let start = Instant::now();
        let result = handle
            .request(
                "resources/read",
                Some(params.clone()),
                CallOptions::default(),
            )
            .await
            .unwrap();
        times.push(start.elapsed());
        assert!(result.get().len() > size, "the whole blob came back");
    }
    let after = GLOBAL.stats();
    let peak = status_kib("VmHWM:");
    times.sort_unstable();
    let allocated = (after.bytes_allocated - before.bytes_allocated) as f64 / count as f64;
    (
        times[times.len() / 2].as_secs_f64() * 1e3,
        allocated,
        (peak - rss) as f64 / 1024.0,
    )
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let (calls, large_reads) = if full { (20_000, 5) } else { (200, 1) };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("bench.sock");
    rt.block_on(async {
        let (server_runtime, server) = benches::deploy_blob().await;
        let backend = Backend {
            handle: server.into_handle(),
            namespace: String::new(),
            tools: mcp_core::config::ToolFilter::default(),
            pinning: None,
        };
        let gateway = Arc::new(Gateway::new(vec![backend], "__"));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop_http, http_stopped) = tokio::sync::oneshot::channel::<()>();
        let (stop_frames, frames_stopped) = tokio::sync::oneshot::channel::<()>();
        let http = tokio::spawn(serve_http(
            gateway.clone(),
            listener,
            HttpServeOptions::default(),
            async {
                let _ = http_stopped.await;
            },
        ));
        let frames = tokio::spawn(serve_frames(
            gateway,
            bind_frame_socket(&socket).unwrap(),
            None,
            FrameServeOptions::default(),
            async {
                let _ = frames_stopped.await;
            },
        ));

        let clients = McpRuntime::start();
        let over_frames = client(
            &clients,
            "frames",
            Arc::new(FrameConnector::new(ServerId::new("frames").unwrap(), socket.clone(), 16 * MIB)),
        )
        .await;
        let over_http = client(
            &clients,
            "http",
            Arc::new(HttpConnector::new(HttpTarget {
                server: ServerId::new("http").unwrap(),
                url: format!("http://{addr}/mcp"),
                headers: BTreeMap::new(),
                max_message: 128 * MIB,
                credentials: None,
            })),
        )
        .await;
        // Warm up both ways (the server makes each blob on its first read).
        for handle in [&over_frames, &over_http] {
            latency(handle, calls / 10).await;
            reads(handle, MIB, 2).await;
            reads(handle, 64 * MIB, 1).await;
        }

        let (frames_p50, frames_p99) = latency(&over_frames, calls).await;
        let (http_p50, http_p99) = latency(&over_http, calls).await;
        println!("1 in flight, {calls} calls: frames p50 {frames_p50:.1} µs p99 {frames_p99:.1} µs; http p50 {http_p50:.1} µs p99 {http_p99:.1} µs");
        let frames_allocs = allocations(&over_frames, calls / 10).await;
        let http_allocs = allocations(&over_http, calls / 10).await;
        println!(
            "report: frame socket vs Streamable HTTP, heap allocations per small call (client, gateway and server) | {frames_allocs:.1} vs {http_allocs:.1} | - | -"
        );
        let frames_rate = throughput(&over_frames, 16, calls / 16).await;
        let http_rate = throughput(&over_http, 16, calls / 16).await;
        println!("16 in flight, {calls} calls: frames {frames_rate:.0}/s; http {http_rate:.0}/s");
        println!(
            "report: frame socket vs Streamable HTTP, p50 at 1 in flight | {frames_p50:.1} µs vs {http_p50:.1} µs ({:.2}x) | at most 0.5x | {}",
            frames_p50 / http_p50,
            verdict(frames_p50 <= http_p50 / 2.0)
        );
        println!(
            "report: frame socket vs Streamable HTTP, calls per second at 16 in flight | {frames_rate:.0} vs {http_rate:.0} ({:.2}x) | at least 2x | {}",
            frames_rate / http_rate,
            verdict(frames_rate >= 2.0 * http_rate)
        );
        for (size, count) in [(MIB, large_reads * 10), (64 * MIB, large_reads)] {
            let label = format!("{} MiB", size / MIB);
            let (frames_ms, frames_bytes, frames_peak) = reads(&over_frames, size, count).await;
            let (http_ms, http_bytes, http_peak) = reads(&over_http, size, count).await;
            let per = |bytes: f64| bytes / size as f64;
            println!(
                "resources/read of {label}, {count} reads: frames {frames_ms:.2} ms, {:.2}x the blob allocated, peak RSS +{frames_peak:.0} MiB; http {http_ms:.2} ms, {:.2}x allocated, peak RSS +{http_peak:.0} MiB",
                per(frames_bytes),
                per(http_bytes)
            );
            println!(
                "report: resources/read of {label}, frame socket vs Streamable HTTP | {frames_ms:.2} ms vs {http_ms:.2} ms; allocated {:.2}x vs {:.2}x the blob; peak RSS +{frames_peak:.0} vs +{http_peak:.0} MiB | - | -",
                per(frames_bytes),
                per(http_bytes)
            );
        }
        clients.shutdown().await;
        let _ = stop_http.send(());
        let _ = stop_frames.send(());
        let _ = http.await;
        let _ = frames.await;
        server_runtime.shutdown().await;
    });
}
