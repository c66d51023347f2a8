//! Latency percentiles and throughput of requests through the runtime to an
//! in-process echo server, on one core (a current-thread tokio runtime).
//!
//! Run with `cargo bench -p benches --bench runtime_load`. It reports; it
//! asserts nothing about speed.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::indexing_slicing
)]

use std::time::{Duration, Instant};

use benches::deploy_echo;
use mcp_protocol::raw::Raw;
use mcp_runtime::CallOptions;

const WARMUP: usize = 20_000;
const SAMPLES: usize = 200_000;
const CONCURRENCY: usize = 64;

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "not met" }
}

fn main() {
    // `cargo bench` passes `--bench`; any other run (like `cargo test
    // --benches`) only checks that the program works, briefly.
    let full = std::env::args().any(|a| a == "--bench");
    let (warmup, samples) = if full {
        (WARMUP, SAMPLES)
    } else {
        (100, 1_000)
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (runtime, server) = deploy_echo().await;
        let handle = server.handle().clone();
        let params =
            Raw::from_value(&serde_json::json!({"name": "echo", "arguments": {"text": "hello"}}));

        // Latency: one request at a time.
        for _ in 0..warmup {
            handle
                .request("tools/call", Some(params.clone()), CallOptions::default())
                .await
                .unwrap();
        }
        let mut latencies = Vec::with_capacity(samples);
        for _ in 0..samples {
            let start = Instant::now();
            handle
                .request("tools/call", Some(params.clone()), CallOptions::default())
                .await
                .unwrap();
            latencies.push(start.elapsed());
        }
        latencies.sort_unstable();
        let pct =
            |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
        println!(
            "sequential, {samples} requests: p50 {:?}  p90 {:?}  p99 {:?}  p99.9 {:?}  max {:?}",
            pct(0.50),
            pct(0.90),
            pct(0.99),
            pct(0.999),
            latencies[latencies.len() - 1]
        );
        let total: Duration = latencies.iter().sum();
        println!(
            "sequential throughput: {:.0} req/s",
            samples as f64 / total.as_secs_f64()
        );
        let micros = |d: Duration| d.as_secs_f64() * 1e6;
        println!(
            "report: in-process request through the runtime, p50 (one core) | {:.1} µs | - | -",
            micros(pct(0.50))
        );
        println!(
            "report: in-process request through the runtime, p99 (one core) | {:.1} µs | < 20 µs (seed < 100 µs) | {}",
            micros(pct(0.99)),
            verdict(micros(pct(0.99)) < 20.0)
        );

        // Throughput: CONCURRENCY requests in flight on one core.
        let start = Instant::now();
        let per_task = samples / CONCURRENCY;
        let tasks: Vec<_> = (0..CONCURRENCY)
            .map(|_| {
                let handle = handle.clone();
                let params = params.clone();
                tokio::spawn(async move {
                    for _ in 0..per_task {
                        handle
                            .request("tools/call", Some(params.clone()), CallOptions::default())
                            .await
                            .unwrap();
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        let elapsed = start.elapsed();
        let rate = (per_task * CONCURRENCY) as f64 / elapsed.as_secs_f64();
        println!(
            "{CONCURRENCY} in flight, {} requests: {rate:.0} req/s",
            per_task * CONCURRENCY,
        );
        println!(
            "report: in-process requests per second on one core ({CONCURRENCY} in flight) | {rate:.0} | > 500k (seed > 100k) | {}",
            verdict(rate > 500_000.0)
        );
        runtime.shutdown().await;
    });
}
