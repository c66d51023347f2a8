//! One request through the runtime to an in-process echo server, on a
//! single-threaded tokio runtime (one core): through the server's handle
//! (the gateway's path), and looked up by name in the registry actor first
//! (a caller that keeps no handle).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use benches::deploy_echo;
use criterion::{Criterion, criterion_group, criterion_main};
use mcp_protocol::raw::Raw;
use mcp_runtime::CallOptions;

fn runtime(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (runtime, server) = rt.block_on(deploy_echo());
    let handle = server.handle().clone();
    let params =
        Raw::from_value(&serde_json::json!({"name": "echo", "arguments": {"text": "hello"}}));
    let id = handle.id().clone();
    let mut group = c.benchmark_group("runtime/in_process_echo");
    group.bench_function("handle", |b| {
        b.to_async(&rt)
            .iter(|| handle.request("tools/call", Some(params.clone()), CallOptions::default()));
    });
    group.bench_function("by_name", |b| {
        b.to_async(&rt).iter(|| async {
            let server = runtime.server(&id).await.unwrap();
            server
                .request("tools/call", Some(params.clone()), CallOptions::default())
                .await
        });
    });
    group.finish();
    rt.block_on(runtime.shutdown());
}

criterion_group!(benches, runtime);
criterion_main!(benches);
