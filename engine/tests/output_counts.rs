//! Per-output message counters: what `Runtime::output_counts` reports (the
//! editor's wire rates come from these).

use flowd_engine::node::{BuildContext, BuiltNode, FunctionNode, NodeCx, NodeType};
use flowd_engine::registry::NodeDescriptor;
use flowd_engine::{prepare_json, Msg, Registry, Runtime, RuntimeOptions, Value};
use serde_json::json;
use std::collections::HashMap;
use std::time::Duration;

/// Sends even payloads on output 1, odd ones on output 2.
struct Split;
impl FunctionNode for Split {
    fn on_input(&mut self, msg: Msg, cx: &mut NodeCx<'_>) {
        let odd = matches!(msg.payload(), Some(Value::Number(n)) if (*n as i64) % 2 != 0);
        cx.send_to(usize::from(odd), msg);
    }
}
struct SplitType;
impl NodeType for SplitType {
    fn type_name(&self) -> &'static str {
        "split2"
    }
    fn descriptor(&self) -> NodeDescriptor {
        NodeDescriptor::new("split2", "function", "test/split2", "#fff", 1, 2)
    }
    fn build(&self, _cx: &mut BuildContext<'_>) -> Option<BuiltNode> {
        Some(BuiltNode::function(Split))
    }
}

/// Swallows everything.
struct Sink;
impl FunctionNode for Sink {
    fn on_input(&mut self, _msg: Msg, _cx: &mut NodeCx<'_>) {}
}
struct SinkType;
impl NodeType for SinkType {
    fn type_name(&self) -> &'static str {
        "sink"
    }
    fn descriptor(&self) -> NodeDescriptor {
        NodeDescriptor::new("sink", "function", "test/sink", "#fff", 1, 0)
    }
    fn build(&self, _cx: &mut BuildContext<'_>) -> Option<BuiltNode> {
        Some(BuiltNode::function(Sink))
    }
}

async fn counts(rt: &Runtime) -> HashMap<String, Vec<u64>> {
    rt.output_counts()
        .await
        .expect("running")
        .into_iter()
        .collect()
}

#[tokio::test]
async fn each_output_port_counts_the_messages_it_sent() {
    let mut reg = Registry::default();
    reg.register(&SplitType);
    reg.register(&SinkType);
    let flows = json!([
        {"id":"t1","type":"tab","label":"one"},
        {"id":"s","type":"split2","z":"t1","x":1,"y":1,"wires":[["even"],["odd"]]},
        {"id":"even","type":"sink","z":"t1","x":1,"y":1,"wires":[]},
        {"id":"odd","type":"sink","z":"t1","x":1,"y":1,"wires":[]}
    ]);
    let rt = Runtime::start(
        prepare_json(&reg, flows).expect("valid"),
        RuntimeOptions::default(),
    );
    let before = counts(&rt).await;
    assert_eq!(before.get("s"), Some(&vec![0, 0]), "{before:?}");
    assert!(
        !before.contains_key("even"),
        "nodes without outputs are left out"
    );
    for i in 0..7 {
        rt.deliver("s", Msg::with_payload(Value::Number(f64::from(i))))
            .await
            .unwrap();
    }
    // Deliveries are queued: the counts are read after the executor ran them.
    let mut after = counts(&rt).await;
    for _ in 0..50 {
        if after["s"].iter().sum::<u64>() == 7 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        after = counts(&rt).await;
    }
    assert_eq!(after["s"], vec![4, 3], "0,2,4,6 even; 1,3,5 odd");
    rt.stop(Duration::from_secs(1)).await;
}
