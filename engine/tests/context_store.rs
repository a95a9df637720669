//! A persistent context store under a running runtime: what nodes write is
//! on disk after a stop and back after a start; node context survives node
//! restarts; contexts of removed nodes and tabs are cleaned on deploy.

use flowd_engine::context::{ContextScope, ContextStore, FileContextStorage};
use flowd_engine::flows::from_json;
use flowd_engine::node::{BuildContext, BuiltNode, FunctionNode, NodeCx, NodeType};
use flowd_engine::registry::NodeDescriptor;
use flowd_engine::{prepare_json, DeployType, Msg, Registry, Runtime, RuntimeOptions, Value};
use serde_json::{json, Value as Json};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Adds 1 to `n` in its node, flow and global context and sends the node's count.
struct Counter;
impl FunctionNode for Counter {
    fn on_input(&mut self, _msg: Msg, cx: &mut NodeCx<'_>) {
        let mut mine = 0.0;
        for scope in [ContextScope::Global, ContextScope::Flow, ContextScope::Node] {
            let n = match cx.context_get(scope, "n") {
                Ok(Some(Value::Number(n))) => n,
                _ => 0.0,
            };
            let _ = cx.context_set(scope, "n", Some(Value::Number(n + 1.0)));
            mine = n + 1.0;
        }
        cx.send(Msg::with_payload(mine));
    }
}
struct CounterType;
impl NodeType for CounterType {
    fn type_name(&self) -> &'static str {
        "counter"
    }
    fn descriptor(&self) -> NodeDescriptor {
        NodeDescriptor::new("counter", "function", "test/counter", "#fff", 1, 1)
    }
    fn build(&self, _cx: &mut BuildContext<'_>) -> Option<BuiltNode> {
        Some(BuiltNode::function(Counter))
    }
}

fn registry() -> Registry {
    let mut r = Registry::new();
    r.register(&CounterType);
    r
}

fn tempdir() -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let d = std::env::temp_dir().join(format!("flowd-ctx-rt-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn flows(extra: Json) -> Json {
    let mut v = json!([
        {"id": "t1", "type": "tab", "label": "one"},
        {"id": "c1", "type": "counter", "z": "t1", "wires": []}
    ]);
    if let (Some(a), Json::Array(more)) = (v.as_array_mut(), extra) {
        a.extend(more);
    }
    v
}

/// Starts `doc` on the store in `dir`; returns the runtime and what counters sent.
fn start(dir: &Path, doc: Json) -> (Runtime, Arc<Mutex<Vec<f64>>>) {
    let store =
        ContextStore::persistent(FileContextStorage::new(dir), Duration::from_secs(3600)).unwrap();
    let sent = Arc::new(Mutex::new(Vec::new()));
    let s = sent.clone();
    let options = RuntimeOptions {
        tap: Some(Arc::new(move |_info, _port, msg: &Msg| {
            if let Some(Value::Number(n)) = msg.payload() {
                s.lock().unwrap().push(*n);
            }
        })),
        ..RuntimeOptions::default()
    };
    let prepared = prepare_json(&registry(), doc).unwrap();
    (Runtime::start_with_context(prepared, options, store), sent)
}

async fn count(rt: &Runtime, sent: &Mutex<Vec<f64>>, id: &str, times: usize) -> f64 {
    for _ in 0..times {
        rt.deliver(id, Msg::new()).await.unwrap();
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        if sent.lock().unwrap().len() >= times {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no output");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let last = *sent.lock().unwrap().last().unwrap();
    sent.lock().unwrap().clear();
    last
}

fn read(path: PathBuf) -> Json {
    serde_json::from_str(
        &std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
    .unwrap()
}

#[tokio::test]
async fn context_is_written_on_stop_and_read_back_at_start() {
    let dir = tempdir();
    let (rt, sent) = start(&dir, flows(json!([])));
    assert_eq!(count(&rt, &sent, "c1", 3).await, 3.0);
    assert!(
        !dir.join("t1").exists(),
        "nothing written before the interval"
    );
    rt.stop(Duration::from_secs(5)).await;
    assert_eq!(read(dir.join("global/global.json")), json!({"n": 3}));
    assert_eq!(read(dir.join("t1/flow.json")), json!({"n": 3}));
    assert_eq!(read(dir.join("t1/c1.json")), json!({"n": 3}));

    let (rt, sent) = start(&dir, flows(json!([])));
    assert_eq!(
        count(&rt, &sent, "c1", 1).await,
        4.0,
        "node context came back"
    );
    rt.stop(Duration::from_secs(5)).await;
    assert_eq!(read(dir.join("t1/c1.json")), json!({"n": 4}));
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn deploys_keep_restarted_nodes_context_and_clean_removed_ones() {
    let dir = tempdir();
    let two_tabs = flows(json!([
        {"id": "t2", "type": "tab", "label": "two"},
        {"id": "c2", "type": "counter", "z": "t2", "wires": []},
        {"id": "c3", "type": "counter", "z": "t1", "wires": []}
    ]));
    let (rt, sent) = start(&dir, two_tabs.clone());
    count(&rt, &sent, "c1", 2).await;
    count(&rt, &sent, "c2", 1).await;
    count(&rt, &sent, "c3", 1).await;
    // c1 modified (restarted by a nodes deploy), c3 and tab t2 removed.
    let mut changed = flows(json!([]));
    changed[1]["name"] = json!("renamed");
    let (set, structural) = from_json(changed);
    rt.deploy(&registry(), set, structural, DeployType::Nodes)
        .await
        .unwrap();
    assert_eq!(
        count(&rt, &sent, "c1", 1).await,
        3.0,
        "a persistent store keeps a restarted node's context"
    );
    rt.stop(Duration::from_secs(5)).await;
    assert!(
        !dir.join("t2").exists(),
        "the removed tab's context is gone"
    );
    assert!(
        !dir.join("t1/c3.json").exists(),
        "the removed node's context is gone"
    );
    assert_eq!(read(dir.join("t1/c1.json")), json!({"n": 3}));
    assert_eq!(read(dir.join("global/global.json")), json!({"n": 5}));

    // Disabling a tab or a node keeps their context (they are still in the set).
    let (rt, sent) = start(&dir, two_tabs.clone());
    count(&rt, &sent, "c2", 1).await;
    count(&rt, &sent, "c3", 1).await;
    let mut disabled = two_tabs.clone();
    disabled[2]["disabled"] = json!(true);
    disabled[4]["d"] = json!(true);
    let (set, structural) = from_json(disabled.clone());
    rt.deploy(&registry(), set, structural, DeployType::Full)
        .await
        .unwrap();
    rt.stop(Duration::from_secs(5)).await;
    let (rt, _) = start(&dir, disabled);
    rt.stop(Duration::from_secs(5)).await;
    assert_eq!(read(dir.join("t2/flow.json")), json!({"n": 1}));
    assert_eq!(read(dir.join("t2/c2.json")), json!({"n": 1}));
    assert_eq!(read(dir.join("t1/c3.json")), json!({"n": 1}));

    // Files of nodes unknown at start are cleaned too.
    std::fs::create_dir_all(dir.join("gone")).unwrap();
    std::fs::write(dir.join("gone/flow.json"), "{\"n\": 1}").unwrap();
    std::fs::write(dir.join("t1/ghost.json"), "{\"n\": 1}").unwrap();
    let (rt, _) = start(&dir, flows(json!([])));
    rt.stop(Duration::from_secs(5)).await;
    assert!(!dir.join("gone").exists());
    assert!(!dir.join("t1/ghost.json").exists());
    let _ = std::fs::remove_dir_all(&dir);
}
