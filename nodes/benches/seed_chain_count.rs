//! Fixed-count companion of `seed_chain`: pushes N readings through
//! json -> rbe -> template inline and prints messages per second. Its fixed
//! work makes it suitable for `valgrind --tool=callgrind` instruction counts,
//! which stay comparable on a loaded machine.
//!
//! Run: `cargo bench -p flowd-nodes --bench seed_chain_count -- [N]`.

use flowd_engine::runtime::inline::InlineDriver;
use flowd_engine::{prepare_json, Msg, RuntimeOptions, Value};
use std::time::Instant;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "seed_chain_flow.rs"]
mod seed_chain_flow;

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(2_000_000);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _guard = rt.enter();
    let prepared = prepare_json(&flowd_nodes::registry(), seed_chain_flow::flows()).expect("valid");
    let mut driver = InlineDriver::new(prepared, RuntimeOptions::default()).expect("inline");
    let idx = driver.index_of("json").unwrap();
    let inputs: Vec<(Value, Value)> = seed_chain_flow::readings();
    let start = Instant::now();
    for i in 0..n {
        let (topic, payload) = &inputs[i % inputs.len()];
        let mut msg = Msg::new();
        msg.insert("topic", topic.clone());
        msg.insert("payload", payload.clone());
        driver.send_to_index(idx, msg);
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{n} readings in {secs:.3} s: {:.0} readings/s, {:.0} ns each",
        n as f64 / secs,
        secs * 1e9 / n as f64
    );
}
