//! The seed pipeline's in-process chain, json -> rbe -> template, on small
//! sensor readings (half of them changing temperature), driven inline on one
//! core: the per-message cost of the engine without any I/O.
//!
//! Run: `cargo bench -p flowd-nodes --bench seed_chain`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use flowd_engine::runtime::inline::InlineDriver;
use flowd_engine::{prepare_json, Msg, RuntimeOptions, Value};
use serde_json::json;
use std::hint::black_box;

/// The allocator of the `flowd` binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Distinct sensors (topics).
const SENSORS: usize = 100;

fn flows() -> serde_json::Value {
    json!([
        {"id":"t","type":"tab","label":"bench"},
        {"id":"json","type":"json","z":"t","property":"payload","action":"","pretty":false,"x":1,"y":1,"wires":[["rbe"]]},
        {"id":"rbe","type":"rbe","z":"t","func":"rbe","gap":"","start":"","inout":"out","septopics":true,
         "property":"payload.temperature","topi":"topic","x":1,"y":1,"wires":[["tpl"]]},
        {"id":"tpl","type":"template","z":"t","field":"payload","fieldType":"msg","syntax":"mustache","output":"str",
         "template":"Temperature on {{{topic}}} changed to {{payload.temperature}} °C","x":1,"y":1,"wires":[["sink"]]},
        {"id":"sink","type":"junction","z":"t","x":1,"y":1,"wires":[]}
    ])
}

/// Readings for `SENSORS` topics; each sensor alternates its temperature every
/// second reading, so half of all readings change.
fn readings() -> Vec<(Value, Value)> {
    let mut out = Vec::new();
    for round in 0..8u64 {
        for s in 0..SENSORS {
            let temperature = 20.0 + (round / 2) as f64 * 0.5 + s as f64 * 0.01;
            let text = format!(
                "{{\"temperature\":{temperature},\"humidity\":40,\"ts\":{}}}",
                1_764_000_000_000_000_000u64 + round * 1000 + s as u64
            );
            out.push((
                Value::string(format!("sensors/{s}/reading")),
                Value::string(text),
            ));
        }
    }
    out
}

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
