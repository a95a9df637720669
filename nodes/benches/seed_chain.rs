//! The seed pipeline's in-process chain, json -> rbe -> template, on small
//! sensor readings (half of them changing temperature), driven inline on one
//! core: the per-message cost of the engine without any I/O.
//!
//! Run: `cargo bench -p flowd-nodes --bench seed_chain`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use flowd_engine::runtime::inline::InlineDriver;
use flowd_engine::{prepare_json, Msg, RuntimeOptions};
use std::hint::black_box;

/// The allocator of the `flowd` binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "seed_chain_flow.rs"]
mod seed_chain_flow;
use seed_chain_flow::{flows, readings};

fn bench_chain(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _guard = rt.enter();
    let prepared = prepare_json(&flowd_nodes::registry(), flows()).expect("bench flow validates");
    let mut driver = InlineDriver::new(prepared, RuntimeOptions::default()).expect("inline flow");
    let json_idx = driver.index_of("json").unwrap();
    let inputs = readings();
    let mut i = 0usize;
    let mut group = c.benchmark_group("seed_chain");
    group.throughput(Throughput::Elements(1));
    group.bench_function("json_rbe_template", |b| {
        b.iter(|| {
            let (topic, payload) = &inputs[i % inputs.len()];
            i += 1;
            let mut msg = Msg::new();
            msg.insert("topic", topic.clone());
            msg.insert("payload", payload.clone());
            driver.send_to_index(json_idx, black_box(msg));
        })
    });
    group.finish();
}

criterion_group!(benches, bench_chain);
criterion_main!(benches);
