//! The seed chain (json -> rbe -> template) run by the real runtime: a source
//! task sends readings through the executor's bounded inbound channel, the
//! executor runs the chain, a sink task counts the alerts. Prints readings per
//! second for the whole in-process path (channel hops and task switches
//! included), on a current-thread runtime (one core).
//!
//! Run: `cargo bench -p flowd-nodes --bench seed_chain_runtime -- [N]`.

use flowd_engine::node::{BoxFuture, BuildContext, BuiltNode, NodeType, TaskIo, TaskNode};
use flowd_engine::registry::NodeDescriptor;
use flowd_engine::{prepare_json, Msg, Runtime, RuntimeOptions, Value};
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "seed_chain_flow.rs"]
mod seed_chain_flow;

static COUNT: AtomicUsize = AtomicUsize::new(0);
static READINGS: AtomicUsize = AtomicUsize::new(0);

struct Source;
impl TaskNode for Source {
    fn inbox_capacity(&self) -> usize {
        0
    }
    fn run(self: Box<Self>, io: TaskIo) -> BoxFuture<()> {
        Box::pin(async move {
            let inputs: Vec<(Value, Value)> = seed_chain_flow::readings();
            let n = READINGS.load(Ordering::SeqCst);
            for i in 0..n {
                let (topic, payload) = &inputs[i % inputs.len()];
                let mut msg = Msg::new();
                msg.insert("topic", topic.clone());
                msg.insert("payload", payload.clone());
                if !io.handle.send(msg).await {
                    return;
                }
            }
        })
    }
}
struct SourceType;
impl NodeType for SourceType {
    fn type_name(&self) -> &'static str {
        "bench source"
    }
    fn descriptor(&self) -> NodeDescriptor {
        NodeDescriptor::new("bench source", "bench", "bench/source", "#fff", 0, 1)
    }
    fn build(&self, _cx: &mut BuildContext<'_>) -> Option<BuiltNode> {
        Some(BuiltNode::task(Source))
    }
}

struct Sink(Arc<Notify>);
impl TaskNode for Sink {
    fn run(self: Box<Self>, io: TaskIo) -> BoxFuture<()> {
        Box::pin(async move {
            let Some(mut inbox) = io.inbox else { return };
            while let Some(_m) = inbox.recv().await {
                COUNT.fetch_add(1, Ordering::Relaxed);
                self.0.notify_one();
            }
        })
    }
}
struct SinkType(Arc<Notify>);
impl NodeType for SinkType {
    fn type_name(&self) -> &'static str {
        "bench sink"
    }
    fn descriptor(&self) -> NodeDescriptor {
        NodeDescriptor::new("bench sink", "bench", "bench/sink", "#fff", 1, 0)
    }
    fn build(&self, _cx: &mut BuildContext<'_>) -> Option<BuiltNode> {
        Some(BuiltNode::task(Sink(self.0.clone())))
    }
}

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    READINGS.store(n, Ordering::SeqCst);
    let notify = Arc::new(Notify::new());
    let sink: &'static SinkType = Box::leak(Box::new(SinkType(notify.clone())));
    let mut registry = flowd_nodes::registry();
    registry.register(&SourceType);
    registry.register(sink);
    let mut flows = seed_chain_flow::flows();
    let nodes = flows.as_array_mut().unwrap();
    for node in nodes.iter_mut() {
        if node["id"] == "sink" {
            *node = json!({"id":"sink","type":"bench sink","z":"t","x":1,"y":1,"wires":[]});
        }
    }
    nodes.push(json!({"id":"src","type":"bench source","z":"t","x":1,"y":1,"wires":[["json"]]}));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let prepared = prepare_json(&registry, flows).expect("valid");
        // Half the readings change temperature: half become alerts.
        let expected = n / 2;
        let start = Instant::now();
        let runtime = Runtime::start(prepared, RuntimeOptions::default());
        let deadline = Instant::now() + Duration::from_secs(120);
        while COUNT.load(Ordering::Relaxed) < expected && Instant::now() < deadline {
            let _ = tokio::time::timeout(Duration::from_millis(50), notify.notified()).await;
        }
        let secs = start.elapsed().as_secs_f64();
        let alerts = COUNT.load(Ordering::Relaxed);
        println!(
            "{n} readings, {alerts} alerts in {secs:.3} s: {:.0} readings/s through the runtime",
            n as f64 / secs
        );
        runtime.stop(Duration::from_secs(5)).await;
    });
}
