//! Runtime behaviour with small test node types: structure handling (disabled
//! nodes and tabs, config references, unknown types), fan-out copies, panics,
//! and graceful stop.

use flowd_engine::node::{
    BuildContext, BuiltNode, ConfigNode, FunctionNode, NodeCx, NodeType, TaskIo, TaskNode,
};
use flowd_engine::registry::NodeDescriptor;
use flowd_engine::testing::TestFlow;
use flowd_engine::value::path::Path;
use flowd_engine::{Msg, Registry, Runtime, RuntimeOptions, Value};
use serde_json::{json, Value as Json};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Forwards messages; with `set` it sets payload.<set> = true first.
struct Pass {
    set: Option<Path>,
}
impl FunctionNode for Pass {
    fn on_input(&mut self, mut msg: Msg, cx: &mut NodeCx<'_>) {
        if let Some(p) = &self.set {
            let full = Path::parse(&format!("payload.{}", p.to_expression())).unwrap();
            msg.set_expr(&full, Value::Bool(true)).unwrap();
        }
        if msg.payload() == Some(&Value::str("panic")) {
            panic!("test node asked to panic");
        }
        cx.send(msg);
    }
}
struct PassType;
impl NodeType for PassType {
    fn type_name(&self) -> &'static str {
        "pass"
    }
    fn descriptor(&self) -> NodeDescriptor {
        NodeDescriptor::new("pass", "function", "test/pass", "#fff", 1, 1)
    }
    fn build(&self, cx: &mut BuildContext<'_>) -> Option<BuiltNode> {
        let set = cx
            .props()
            .get("set")
            .and_then(Json::as_str)
            .map(|s| Path::parse(s).unwrap());
        Some(BuiltNode::function(Pass { set }))
    }
}

struct Conf;
impl ConfigNode for Conf {}
struct ConfType;
impl NodeType for ConfType {
    fn type_name(&self) -> &'static str {
        "conf"
    }
    fn descriptor(&self) -> NodeDescriptor {
        NodeDescriptor::new("conf", "config", "test/conf", "#fff", 0, 0)
    }
    fn build(&self, _cx: &mut BuildContext<'_>) -> Option<BuiltNode> {
        Some(BuiltNode::config(Arc::new(Conf)))
    }
}

/// Needs a `conf` config node in property `cfg`.
struct UserType;
impl NodeType for UserType {
    fn type_name(&self) -> &'static str {
        "user"
    }
    fn descriptor(&self) -> NodeDescriptor {
        NodeDescriptor::new("user", "function", "test/user", "#fff", 1, 1)
    }
    fn build(&self, cx: &mut BuildContext<'_>) -> Option<BuiltNode> {
        let _c: Arc<Conf> = cx.config_node("cfg", "conf")?;
        Some(BuiltNode::function(Pass { set: None }))
    }
}

static PROCESSED: AtomicUsize = AtomicUsize::new(0);

/// A slow sink task: takes 5 ms per message and counts them.
struct SlowSink {
    stuck: bool,
}
impl TaskNode for SlowSink {
    fn inbox_capacity(&self) -> usize {
        4
    }
    fn run(self: Box<Self>, io: TaskIo) -> flowd_engine::node::BoxFuture<()> {
        Box::pin(async move {
            let Some(mut inbox) = io.inbox else { return };
            while let Some(_m) = inbox.recv().await {
                tokio::time::sleep(Duration::from_millis(5)).await;
                PROCESSED.fetch_add(1, Ordering::SeqCst);
            }
            if self.stuck {
                std::future::pending::<()>().await;
            }
        })
    }
}
struct SinkType;
impl NodeType for SinkType {
    fn type_name(&self) -> &'static str {
        "sink"
    }
    fn descriptor(&self) -> NodeDescriptor {
        NodeDescriptor::new("sink", "function", "test/sink", "#fff", 1, 0)
    }
    fn build(&self, cx: &mut BuildContext<'_>) -> Option<BuiltNode> {
        let stuck = cx
            .props()
            .get("stuck")
            .and_then(Json::as_bool)
            .unwrap_or(false);
        Some(BuiltNode::task(SlowSink { stuck }))
    }
}

fn registry() -> Registry {
    let mut r = Registry::new();
    r.register(&PassType);
    r.register(&ConfType);
    r.register(&UserType);
    r.register(&SinkType);
    r
}

fn node(id: &str, t: &str, z: &str, wires: Json) -> Json {
    json!({"id": id, "type": t, "z": z, "x": 1, "y": 1, "wires": wires})
}

#[tokio::test]
async fn disabled_nodes_swallow_and_disabled_tabs_do_not_run() {
    let flows = json!([
        {"id":"t1","type":"tab","label":"one"},
        {"id":"t2","type":"tab","label":"two","disabled":true},
        {"id":"g1","type":"group","z":"t1","nodes":["a"]},
        {"id":"c1","type":"comment","z":"t1","x":1,"y":1},
        node("a", "pass", "t1", json!([["off", "b"]])),
        {"id":"off","type":"pass","z":"t1","d":true,"x":1,"y":1,"wires":[["b"]]},
        node("b", "pass", "t1", json!([])),
        node("x", "pass", "t2", json!([]))
    ]);
    let mut r = registry();
    struct CommentType;
    impl NodeType for CommentType {
        fn type_name(&self) -> &'static str {
            "comment"
        }
        fn descriptor(&self) -> NodeDescriptor {
            NodeDescriptor::new("comment", "common", "test/comment", "#fff", 0, 0)
        }
        fn build(&self, _cx: &mut BuildContext<'_>) -> Option<BuiltNode> {
            Some(BuiltNode::inert())
        }
    }
    r.register(&CommentType);
    let mut f = TestFlow::start(&r, flows).await.unwrap();
    f.send("a", Msg::with_payload(1.0)).await;
    assert_eq!(
        f.collect_from("b", Duration::from_millis(100)).await.len(),
        1,
        "only the direct wire delivers"
    );
    f.expect_nothing_from("off", Duration::from_millis(20))
        .await;
    f.stop().await;
    // Nodes of a disabled tab do not exist.
    let prepared = flowd_engine::prepare_json(
        &registry(),
        json!([
            {"id":"t2","type":"tab","label":"two","disabled":true},
            node("x", "pass", "t2", json!([]))
        ]),
    )
    .unwrap();
    let rt = Runtime::start(prepared, RuntimeOptions::default());
    assert!(rt.deliver("x", Msg::new()).await.is_err());
    rt.stop(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn config_references_are_checked() {
    let flows = json!([
        {"id":"t1","type":"tab","label":"Main"},
        {"id":"t2","type":"tab","label":"Other"},
        {"id":"cfg","type":"conf"},
        {"id":"cfg_off","type":"conf","d":true},
        {"id":"cfg_t2","type":"conf","z":"t2"},
        {"id":"u1","type":"user","z":"t1","cfg":"cfg","x":1,"y":1,"wires":[]},
        {"id":"u2","type":"user","z":"t1","cfg":"nope","x":1,"y":1,"wires":[]},
        {"id":"u3","type":"user","z":"t1","cfg":"u1","x":1,"y":1,"wires":[]},
        {"id":"u4","type":"user","z":"t1","cfg":"cfg_off","x":1,"y":1,"wires":[]},
        {"id":"u5","type":"user","z":"t1","cfg":"cfg_t2","x":1,"y":1,"wires":[]},
        {"id":"u6","type":"user","z":"t1","x":1,"y":1,"wires":[]},
        {"id":"mystery","type":"nope","z":"t1","d":true,"x":1,"y":1,"wires":[]},
        {"id":"sf","type":"subflow:abc","z":"t1","x":1,"y":1,"wires":[]}
    ]);
    let e = TestFlow::start(&registry(), flows)
        .await
        .err()
        .expect("invalid");
    let lines: Vec<String> = e.iter().map(|e| e.to_string()).collect();
    let expect = [
        "node \"mystery\" (nope) on tab \"Main\", field \"type\": unknown node type \"nope\"",
        "node \"sf\" (subflow:abc) on tab \"Main\", field \"type\": subflow instances are not supported by flowd yet",
        "node \"u2\" (user) on tab \"Main\", field \"cfg\": config node \"nope\" does not exist",
        "node \"u3\" (user) on tab \"Main\", field \"cfg\": node \"u1\" is a user, expected a conf config node",
        "node \"u4\" (user) on tab \"Main\", field \"cfg\": config node \"cfg_off\" is disabled",
        "node \"u5\" (user) on tab \"Main\", field \"cfg\": config node \"cfg_t2\" belongs to another tab",
        "node \"u6\" (user) on tab \"Main\", field \"cfg\": no conf config node selected",
    ];
    assert_eq!(lines, expect);
}

#[tokio::test]
async fn fan_out_copies_do_not_share_changes() {
    let flows = json!([
        {"id":"t1","type":"tab","label":"one"},
        node("src", "pass", "t1", json!([["a", "b"]])),
        {"id":"a","type":"pass","z":"t1","set":"fromA","x":1,"y":1,"wires":[]},
        {"id":"b","type":"pass","z":"t1","set":"fromB","x":1,"y":1,"wires":[]}
    ]);
    let mut f = TestFlow::start(&registry(), flows).await.unwrap();
    let payload = flowd_engine::value::json::parse(r#"{"v":1}"#).unwrap();
    f.send("src", Msg::with_payload(payload.clone())).await;
    let a = f.next_from("a").await.msg;
    let b = f.next_from("b").await.msg;
    assert_eq!(a.payload().unwrap().to_json(), r#"{"v":1,"fromA":true}"#);
    assert_eq!(b.payload().unwrap().to_json(), r#"{"v":1,"fromB":true}"#);
    assert_eq!(
        payload.to_json(),
        r#"{"v":1}"#,
        "the sender's value is untouched"
    );
    f.stop().await;
}

#[tokio::test]
async fn a_panicking_node_reports_an_error_and_the_runtime_goes_on() {
    let flows = json!([{"id":"t1","type":"tab","label":"one"}, node("p", "pass", "t1", json!([]))]);
    let mut f = TestFlow::start(&registry(), flows).await.unwrap();
    f.send("p", Msg::with_payload("panic")).await;
    f.observer
        .wait_until(Duration::from_secs(2), "the error log", |o| {
            o.logs().iter().any(|l| l.text.contains("internal error"))
        })
        .await;
    f.send("p", Msg::with_payload("fine")).await;
    assert_eq!(
        f.next_from("p").await.msg.payload(),
        Some(&Value::str("fine"))
    );
    f.stop().await;
}

#[tokio::test]
async fn stop_drains_messages_in_flight_and_gives_up_after_the_timeout() {
    let flows =
        json!([{"id":"t1","type":"tab","label":"one"}, node("sink", "sink", "t1", json!([]))]);
    let prepared = flowd_engine::prepare_json(&registry(), flows).unwrap();
    let rt = Runtime::start(prepared, RuntimeOptions::default());
    let before = PROCESSED.load(Ordering::SeqCst);
    for _ in 0..20 {
        rt.deliver("sink", Msg::new()).await.unwrap();
    }
    rt.stop(Duration::from_secs(5)).await;
    assert_eq!(
        PROCESSED.load(Ordering::SeqCst) - before,
        20,
        "every accepted message was processed before stop returned"
    );

    let flows = json!([{"id":"t1","type":"tab","label":"one"}, {"id":"s","type":"sink","z":"t1","stuck":true,"x":1,"y":1,"wires":[]}]);
    let prepared = flowd_engine::prepare_json(&registry(), flows).unwrap();
    let rt = Runtime::start(prepared, RuntimeOptions::default());
    // A node that never finishes is abandoned once the stop timeout is over.
    let stopped =
        tokio::time::timeout(Duration::from_secs(20), rt.stop(Duration::from_millis(300))).await;
    assert!(stopped.is_ok(), "stop returned despite a stuck node");
}

/// Counts the messages it received and sends the count (state to keep or lose).
struct Counter {
    n: f64,
}
impl FunctionNode for Counter {
    fn on_input(&mut self, mut msg: Msg, cx: &mut NodeCx<'_>) {
        self.n += 1.0;
        msg.set_payload(self.n);
        cx.send(msg);
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
        Some(BuiltNode::function(Counter { n: 0.0 }))
    }
}

fn deploy_registry() -> Registry {
    let mut r = registry();
    r.register(&CounterType);
    r
}

/// Two independent chains on one tab: X (cx -> px) and Y (cy -> py).
fn chains(py_name: &str, extra: Vec<Json>) -> Json {
    let mut v = vec![
        json!({"id":"t1","type":"tab","label":"one"}),
        node("cx", "counter", "t1", json!([["px"]])),
        node("px", "pass", "t1", json!([])),
        node("cy", "counter", "t1", json!([["py"]])),
        json!({"id":"py","type":"pass","z":"t1","name":py_name,"x":1,"y":1,"wires":[]}),
    ];
    v.extend(extra);
    Json::Array(v)
}

async fn count(f: &mut TestFlow, counter: &str) -> f64 {
    f.send(counter, Msg::new()).await;
    f.next_from(counter)
        .await
        .msg
        .payload()
        .and_then(Value::as_f64)
        .unwrap()
}

#[tokio::test]
async fn deploy_types_restart_what_they_should_and_keep_the_rest() {
    let r = deploy_registry();
    let mut f = TestFlow::start(&r, chains("Y", vec![])).await.unwrap();
    assert_eq!(
        (count(&mut f, "cx").await, count(&mut f, "cy").await),
        (1.0, 1.0)
    );

    // nodes: renaming py restarts py only; both counters keep counting.
    f.deploy(&r, chains("Y2", vec![]), flowd_engine::DeployType::Nodes)
        .await
        .unwrap();
    assert_eq!(
        (count(&mut f, "cx").await, count(&mut f, "cy").await),
        (2.0, 2.0)
    );

    // flows: renaming py restarts chain Y (cy forgets), chain X keeps its state.
    let d = f
        .deploy(&r, chains("Y3", vec![]), flowd_engine::DeployType::Flows)
        .await
        .unwrap();
    assert!(d.linked.contains("cy"));
    assert_eq!(
        (count(&mut f, "cx").await, count(&mut f, "cy").await),
        (3.0, 1.0)
    );

    // nodes: a new node wired from cx; cx is only rewired and keeps its count.
    let extra = vec![node("new", "pass", "t1", json!([]))];
    let mut v = chains("Y3", extra);
    v[1]["wires"] = json!([["px", "new"]]);
    f.deploy(&r, v.clone(), flowd_engine::DeployType::Nodes)
        .await
        .unwrap();
    assert_eq!(count(&mut f, "cx").await, 4.0);
    assert_eq!(
        f.next_from("new").await.msg.payload(),
        Some(&Value::Number(4.0)),
        "the new wire delivers"
    );

    // full: everything restarts.
    f.deploy(&r, v, flowd_engine::DeployType::Full)
        .await
        .unwrap();
    assert_eq!(
        (count(&mut f, "cx").await, count(&mut f, "cy").await),
        (1.0, 1.0)
    );
    f.stop().await;
}

#[tokio::test]
async fn an_invalid_deploy_changes_nothing() {
    let r = deploy_registry();
    let mut f = TestFlow::start(&r, chains("Y", vec![])).await.unwrap();
    assert_eq!(count(&mut f, "cx").await, 1.0);
    let bad = chains("Y", vec![node("ghost", "no-such-type", "t1", json!([]))]);
    let e = f
        .deploy(&r, bad, flowd_engine::DeployType::Full)
        .await
        .expect_err("refused");
    assert!(e.to_string().contains("unknown node type"), "{e}");
    assert_eq!(
        count(&mut f, "cx").await,
        2.0,
        "the running flows were not touched"
    );
    f.stop().await;
}

static COUNTED_BUILDS: AtomicUsize = AtomicUsize::new(0);

/// A config node type that counts how often it is built.
struct CountedConfType;
impl NodeType for CountedConfType {
    fn type_name(&self) -> &'static str {
        "counted-conf"
    }
    fn descriptor(&self) -> NodeDescriptor {
        NodeDescriptor::new("counted-conf", "config", "test/conf", "#fff", 0, 0)
    }
    fn build(&self, _cx: &mut BuildContext<'_>) -> Option<BuiltNode> {
        COUNTED_BUILDS.fetch_add(1, Ordering::SeqCst);
        Some(BuiltNode::config(Arc::new(Conf)))
    }
}

#[tokio::test]
async fn removed_nodes_stop_and_kept_config_nodes_are_reused() {
    let mut r = deploy_registry();
    r.register(&CountedConfType);
    let with_user = |name: &str| {
        Json::Array(vec![
            json!({"id":"t1","type":"tab","label":"one"}),
            json!({"id":"cfg","type":"conf"}),
            json!({"id":"kept","type":"counted-conf"}),
            json!({"id":"u","type":"user","z":"t1","cfg":"cfg","name":name,"x":1,"y":1,"wires":[]}),
            node("gone", "pass", "t1", json!([])),
        ])
    };
    let f = TestFlow::start(&r, with_user("a")).await.unwrap();
    let mut v = with_user("b");
    v.as_array_mut().unwrap().pop();
    let d = f
        .deploy(&r, v, flowd_engine::DeployType::Nodes)
        .await
        .unwrap();
    assert_eq!(d.removed.iter().collect::<Vec<_>>(), ["gone"]);
    assert_eq!(d.changed.iter().collect::<Vec<_>>(), ["u"]);
    assert_eq!(
        COUNTED_BUILDS.load(Ordering::SeqCst),
        1,
        "the unchanged config node was not built again"
    );
    f.stop().await;
}

/// A task node that completes every message it takes (`done`).
struct Finisher;
impl TaskNode for Finisher {
    fn inbox_capacity(&self) -> usize {
        8
    }
    fn run(self: Box<Self>, io: TaskIo) -> flowd_engine::node::BoxFuture<()> {
        Box::pin(async move {
            let Some(mut inbox) = io.inbox else { return };
            while let Some(m) = inbox.recv().await {
                io.handle.done(m).await;
            }
        })
    }
}
struct FinisherType;
impl NodeType for FinisherType {
    fn type_name(&self) -> &'static str {
        "finisher"
    }
    fn descriptor(&self) -> NodeDescriptor {
        NodeDescriptor::new("finisher", "function", "test/finisher", "#fff", 1, 0)
    }
    fn build(&self, _cx: &mut BuildContext<'_>) -> Option<BuiltNode> {
        Some(BuiltNode::task(Finisher))
    }
}

/// A complete node: passes on the completed messages of the ids in `scope`.
struct Watch;
impl FunctionNode for Watch {
    fn on_input(&mut self, msg: Msg, cx: &mut NodeCx<'_>) {
        cx.send(msg);
    }
}
struct WatchType;
impl NodeType for WatchType {
    fn type_name(&self) -> &'static str {
        "watch"
    }
    fn descriptor(&self) -> NodeDescriptor {
        NodeDescriptor::new("watch", "function", "test/watch", "#fff", 0, 1)
    }
    fn build(&self, cx: &mut BuildContext<'_>) -> Option<BuiltNode> {
        let scope = cx
            .props()
            .get("scope")
            .and_then(Json::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        Some(BuiltNode::function(Watch).with_role(flowd_engine::node::Role::Complete { scope }))
    }
}

#[tokio::test]
async fn a_deploy_that_adds_a_complete_node_reaches_a_running_task_node() {
    let mut r = registry();
    r.register(&FinisherType);
    r.register(&WatchType);
    let fin = node("fin", "finisher", "t1", json!([]));
    let tab = json!({"id":"t1","type":"tab","label":"one"});
    let mut f = TestFlow::start(&r, json!([tab.clone(), fin.clone()]))
        .await
        .unwrap();
    f.send("fin", Msg::with_payload(1.0)).await;

    // `fin` is unchanged by this deploy (it keeps running, same handle); its
    // done() must now reach the new complete node.
    let watch = json!({"id":"w","type":"watch","z":"t1","scope":["fin"],"wires":[]});
    let d = f
        .deploy(
            &r,
            json!([tab.clone(), fin.clone(), watch]),
            flowd_engine::DeployType::Nodes,
        )
        .await
        .unwrap();
    assert!(d.added.contains("w"));
    assert!(
        !d.changed.contains("fin") && !d.linked.contains("fin"),
        "fin keeps running"
    );
    f.send("fin", Msg::with_payload(2.0)).await;
    let m = f.next_from("w").await.msg;
    assert_eq!(m.payload(), Some(&Value::Number(2.0)));

    // Without the complete node, done() goes nowhere again.
    f.deploy(&r, json!([tab, fin]), flowd_engine::DeployType::Nodes)
        .await
        .unwrap();
    f.send("fin", Msg::with_payload(3.0)).await;
    f.expect_nothing_from("w", Duration::from_millis(100)).await;
    f.stop().await;
}
