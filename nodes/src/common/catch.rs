//! `catch` node: receives the errors that nodes of its tab raise with a
//! message, and sends that message on with `msg.error = {message, source}`.
//!
//! `scope` picks the nodes (null: all; a list of ids; `"group"`: its group);
//! with `uncaught` it only takes errors no other catch node handled.

use super::scope::parse_scope;
use flowd_engine::config_de;
use flowd_engine::node::{BuildContext, BuiltNode, FunctionNode, NodeCx, NodeType, Role};
use flowd_engine::registry::{NodeDescriptor, PropertyDescriptor as Prop, PropertyKind as Kind};
use flowd_engine::Msg;
use serde::Deserialize;
use serde_json::json;

/// The `catch` node type.
pub struct CatchType;

#[derive(Deserialize, Default)]
#[serde(default)]
struct CatchConfig {
    #[serde(deserialize_with = "config_de::boolean")]
    uncaught: bool,
}

/// Forwards the error message the runtime hands it.
struct CatchNode;

impl FunctionNode for CatchNode {
    fn on_input(&mut self, msg: Msg, cx: &mut NodeCx<'_>) {
        cx.done(&msg);
        cx.send(msg);
    }
}

impl NodeType for CatchType {
    fn type_name(&self) -> &'static str {
        "catch"
    }

    fn descriptor(&self) -> NodeDescriptor {
        NodeDescriptor::new("catch", "common", "node-red/catch", "#e49191", 0, 1)
            .icon("alert.svg")
            .prop(Prop::new(
                "scope",
                "Catch errors from",
                Kind::Structured {
                    widget: "scope".into(),
                },
                json!(null),
            ))
            .prop(Prop::new(
                "uncaught",
                "Ignore errors handled by other Catch nodes",
                Kind::Bool,
                json!(false),
            ))
            .prop(Prop::new("name", "Name", Kind::Text, json!("")))
            .help(
                "Catches errors thrown by nodes on the same tab.\n\n\
                 The message sent has `error.message` and `error.source` (id, type, name, count).",
            )
    }

    fn build(&self, cx: &mut BuildContext<'_>) -> Option<BuiltNode> {
        let c: CatchConfig = cx.config()?;
        let scope = parse_scope(cx.props().get("scope"))
            .map_err(|e| cx.error("scope", e))
            .ok()?;
        Some(BuiltNode::function(CatchNode).with_role(Role::Catch {
            scope,
            uncaught: c.uncaught,
        }))
    }
}

#[cfg(test)]
mod tests {
    use crate::test_util::start;
    use flowd_engine::{Msg, Value};
    use serde_json::json;
    use std::time::Duration;

    fn catches(flow: &[flowd_engine::testing::Sent]) -> Vec<String> {
        flow.iter().map(|s| s.node.clone()).collect()
    }

    #[tokio::test]
    async fn scopes_and_uncaught_follow_node_red_order() {
        // j1 fails: the scoped catch and the catch-all take it; "uncaught" stays silent.
        let mut f = start(json!([
            {"id":"j1","type":"json"},
            {"id":"j2","type":"json"},
            {"id":"c_all","type":"catch","scope":null},
            {"id":"c_unc","type":"catch","scope":null,"uncaught":true},
            {"id":"c_scoped","type":"catch","scope":["j1"]}
        ]))
        .await;
        f.send("j1", Msg::with_payload("bad")).await;
        let mut got = Vec::new();
        for id in ["c_all", "c_unc", "c_scoped"] {
            got.extend(f.collect_from(id, Duration::from_millis(150)).await);
        }
        let mut names = catches(&got);
        names.sort();
        assert_eq!(names, ["c_all", "c_scoped"]);
        f.stop().await;
    }

    #[tokio::test]
    async fn uncaught_takes_what_nobody_else_handled() {
        let mut f = start(json!([
            {"id":"j1","type":"json"},
            {"id":"j2","type":"json"},
            {"id":"c_unc","type":"catch","scope":null,"uncaught":true},
            {"id":"c_scoped","type":"catch","scope":["j1"]}
        ]))
        .await;
        f.send("j2", Msg::with_payload("bad")).await;
        let m = f.next_from("c_unc").await.msg;
        assert_eq!(
            m.get("error")
                .unwrap()
                .as_object()
                .unwrap()
                .get("source")
                .unwrap()
                .as_object()
                .unwrap()
                .get("id"),
            Some(&Value::str("j2"))
        );
        f.expect_nothing_from("c_scoped", Duration::from_millis(100))
            .await;
        f.send("j1", Msg::with_payload("bad")).await;
        f.next_from("c_scoped").await;
        f.expect_nothing_from("c_unc", Duration::from_millis(100))
            .await;
        f.stop().await;
    }

    #[tokio::test]
    async fn previous_error_moves_to_underscore_error() {
        let mut f = start(json!([
            {"id":"j1","type":"json"},
            {"id":"c","type":"catch","scope":null}
        ]))
        .await;
        let mut m = Msg::with_payload("bad");
        m.insert("error", Value::str("old"));
        f.send("j1", m).await;
        let out = f.next_from("c").await.msg;
        assert_eq!(out.get("_error"), Some(&Value::str("old")));
        assert!(out.get("error").unwrap().as_object().is_some());
        f.stop().await;
    }

    #[tokio::test]
    async fn uncaught_errors_are_logged() {
        let f = start(json!([{"id":"j1","type":"json"}])).await;
        f.send("j1", Msg::with_payload("bad")).await;
        f.observer
            .wait_until(Duration::from_secs(2), "an error log line", |o| {
                o.logs()
                    .iter()
                    .any(|l| l.node == "j1" && l.level == flowd_engine::observer::LogLevel::Error)
            })
            .await;
        f.stop().await;
    }

    #[tokio::test]
    async fn catch_loops_stop_after_ten_rounds() {
        // catch -> json: the error message comes back to the same json node.
        let mut f = start(json!([
            {"id":"j","type":"json","property":"payload"},
            {"id":"c","type":"catch","scope":["j"],"wires":[["j"]]}
        ]))
        .await;
        f.send("j", Msg::with_payload("bad")).await;
        let caught = f.collect_from("c", Duration::from_millis(400)).await;
        assert_eq!(
            caught.len(),
            9,
            "counts 1..=9 are delivered, the 10th is dropped"
        );
        let last = &caught[8].msg;
        let count = last
            .get("error")
            .unwrap()
            .as_object()
            .unwrap()
            .get("source")
            .unwrap()
            .as_object()
            .unwrap()
            .get("count")
            .cloned();
        assert_eq!(count, Some(Value::Number(9.0)));
        f.observer
            .wait_until(Duration::from_secs(1), "the loop warning", |o| {
                o.logs()
                    .iter()
                    .any(|l| l.text.contains("maximum number of catches"))
            })
            .await;
        f.stop().await;
    }
}
