//! Envelope parse + re-emit: a small request and a 1 MiB tool result, with a
//! `serde_json::Value` round-trip of the same bytes beside it for scale.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use benches::{small_request, tool_result};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mcp_protocol::Message;

fn envelope(c: &mut Criterion) {
    let cases = [
        ("small_request", small_request()),
        ("tool_result_1MiB", tool_result(1 << 20)),
    ];
    for (name, bytes) in cases {
        let mut group = c.benchmark_group(format!("envelope/{name}"));
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        let mut out = Vec::with_capacity(bytes.len() + 64);
        group.bench_function("parse", |b| {
            b.iter(|| Message::parse(black_box(&bytes)).unwrap());
        });
        group.bench_function("parse+emit", |b| {
            b.iter(|| {
                out.clear();
                Message::parse(black_box(&bytes))
                    .unwrap()
                    .write_to(&mut out);
                black_box(out.len())
            });
        });
        group.bench_function("serde_value_parse+emit", |b| {
            b.iter(|| {
                out.clear();
                let value: serde_json::Value = serde_json::from_slice(black_box(&bytes)).unwrap();
                serde_json::to_writer(&mut out, &value).unwrap();
                black_box(out.len())
            });
        });
        group.finish();
    }
}

criterion_group!(benches, envelope);
criterion_main!(benches);
