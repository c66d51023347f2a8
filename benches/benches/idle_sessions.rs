//! Heap per idle Streamable HTTP session, as a client leaves it: the gateway
//! (over one in-process echo backend, forwarding notifications) served by
//! `serve_http` in this process; sessions opened with `initialize` and
//! `notifications/initialized`, then left alone. An instrumenting
//! allocator counts the live heap before and after; the resident set is
//! read from /proc as a second figure.
//!
//! Run with `cargo bench -p benches --bench idle_sessions` (10,000
//! sessions). It reports; it asserts nothing about size.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::indexing_slicing,
    clippy::cast_precision_loss
)]

use std::alloc::System;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use mcp_gateway::{Backend, Gateway};
use mcp_serve::{HttpServeOptions, serve_http};
use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Bytes allocated and not yet freed.
fn live_heap() -> i64 {
    let stats = GLOBAL.stats();
    let allocated = i64::try_from(stats.bytes_allocated).unwrap_or(i64::MAX);
    let freed = i64::try_from(stats.bytes_deallocated).unwrap_or(i64::MAX);
    allocated - freed + i64::try_from(stats.bytes_reallocated).unwrap_or(0)
}

/// The resident set in KiB.
fn rss_kib() -> i64 {
    benches::status_kib("VmRSS:")
}

/// Sends one POST on a kept-alive connection and reads the answer; the
/// session id it carries, if any.
fn post(stream: &mut BufReader<TcpStream>, session: Option<&str>, body: &str) -> Option<String> {
    let mut request = format!(
        "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Accept: application/json, text/event-stream\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(id) = session {
        request.push_str(&format!("Mcp-Session-Id: {id}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.get_mut().write_all(request.as_bytes()).unwrap();
    let mut id = None;
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        stream.read_line(&mut line).unwrap();
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(value) = lower.strip_prefix("mcp-session-id:") {
            id = Some(value.trim().to_owned());
        } else if let Some(value) = lower.strip_prefix("content-length:") {
            length = value.trim().parse().unwrap();
        }
    }
    let mut body = vec![0; length];
    stream.read_exact(&mut body).unwrap();
    id
}

/// Opens `count` sessions over `connections` kept-alive connections, each
/// initialized as a client does it, and closes the connections.
fn open_sessions(addr: SocketAddr, count: usize, connections: usize, initialized: bool) {
    let initialize = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"idle","version":"1"}}}"#;
    let note = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
    let threads: Vec<_> = (0..connections)
        .map(|n| {
            let share = count / connections + usize::from(n < count % connections);
            std::thread::spawn(move || {
                let mut stream = BufReader::new(TcpStream::connect(addr).unwrap());
                for _ in 0..share {
                    let id = post(&mut stream, None, initialize).expect("a session id");
                    if initialized {
                        post(&mut stream, Some(&id), note);
                    }
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let sessions = if full { 10_000 } else { 200 };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (addr, stop) = rt.block_on(async {
        let (runtime, server) = benches::deploy_echo().await;
        let backend = Backend {
            handle: server.into_handle(),
            namespace: String::new(),
            tools: mcp_core::config::ToolFilter::default(),
            pinning: None,
        };
        let gateway = Gateway::new(vec![backend], "__").with_notifications(runtime);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let options = HttpServeOptions {
            max_sessions: sessions * 3,
            max_sessions_per_client: sessions * 3,
            session_idle_timeout: None,
            ..HttpServeOptions::default()
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(serve_http(Arc::new(gateway), listener, options, async {
            let _ = stopped.await;
        }));
        (addr, stop)
    });
    // Warm up: maps grown once, lazily built parts built.
    open_sessions(addr, 200, 4, true);
    std::thread::sleep(Duration::from_millis(300));
    let heap_start = live_heap();
    // Sessions whose client has not said `initialized` yet: the endpoint's
    // and the gateway's state only.
    open_sessions(addr, sessions, 8, false);
    std::thread::sleep(Duration::from_millis(500));
    let bare = (live_heap() - heap_start) as f64 / sessions as f64;
    println!("{sessions} sessions opened with `initialize` only: heap {bare:.0} bytes each");
    let (heap_before, rss_before) = (live_heap(), rss_kib());
    open_sessions(addr, sessions, 8, true);
    // Let the closed connections' tasks end.
    std::thread::sleep(Duration::from_millis(500));
    let (heap_after, rss_after) = (live_heap(), rss_kib());
    let per_session = (heap_after - heap_before) as f64 / sessions as f64;
    let rss_per_session = (rss_after - rss_before) as f64 * 1024.0 / sessions as f64;
    println!(
        "{sessions} idle sessions (initialize + notifications/initialized, through the gateway): \
         heap {per_session:.0} bytes each (live heap {:.1} -> {:.1} MiB), \
         resident set {rss_per_session:.0} bytes each",
        heap_before as f64 / 1048576.0,
        heap_after as f64 / 1048576.0,
    );
    println!(
        "report: heap per idle Streamable HTTP session ({sessions} sessions, counting allocator) | {per_session:.0} B | < 1 KB | {}",
        if per_session < 1024.0 {
            "met"
        } else {
            "not met"
        }
    );
    let _ = stop.send(());
    rt.shutdown_timeout(Duration::from_secs(2));
}
