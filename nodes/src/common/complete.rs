//! `complete` node: sends a copy of each message that one of the watched
//! nodes finished (called `done()` on without an error), with
//! `msg.complete = {source: {id, type, name}}`.

use flowd_engine::node::{BuildContext, BuiltNode, FunctionNode, NodeCx, NodeType, Role};
use flowd_engine::registry::{NodeDescriptor, PropertyDescriptor as Prop, PropertyKind as Kind};
use flowd_engine::Msg;
use serde_json::{json, Value as Json};

/// The `complete` node type.
pub struct CompleteType;

struct CompleteNode;

impl FunctionNode for CompleteNode {
    fn on_input(&mut self, msg: Msg, cx: &mut NodeCx<'_>) {
        cx.done(&msg);
        cx.send(msg);
    }
}

impl NodeType for CompleteType {
    fn type_name(&self) -> &'static str {
        "complete"
    }

    fn descriptor(&self) -> NodeDescriptor {
        NodeDescriptor::new("complete", "common", "node-red/complete", "#c0edc0", 0, 1)
            .icon("alert.svg")
            .prop(Prop::new(
                "scope",
                "Report completion from",
                Kind::Structured {
                    widget: "nodes".into(),
                },
                json!([]),
            ))
            .prop(Prop::new("name", "Name", Kind::Text, json!("")))
            .help(
                "Triggered when one of the selected nodes finishes with a message.\n\n\
                 Nodes that do not signal completion (rbe, switch, link) never trigger it.",
            )
    }

    fn build(&self, cx: &mut BuildContext<'_>) -> Option<BuiltNode> {
        let mut scope: Vec<String> = match cx.props().get("scope") {
            None | Some(Json::Null) => Vec::new(),
            Some(Json::Array(a)) => {
                match a.iter().map(|v| v.as_str().map(str::to_string)).collect() {
                    Some(ids) => ids,
                    None => {
                        cx.error("scope", "entries must be node ids");
                        return None;
                    }
                }
            }
            Some(other) => {
                cx.error(
                    "scope",
                    format!("expected an array of node ids, found {other}"),
                );
                return None;
            }
        };
        // Node-RED drops ids of directly wired nodes with a forward splice
        // that skips the element after each removal; kept for identical routing.
        let wired: Vec<String> = cx.wires().iter().flatten().cloned().collect();
        let mut i = 0;
        while i < scope.len() {
            if wired.contains(&scope[i]) {
                scope.remove(i);
            }
            i += 1;
        }
        Some(BuiltNode::function(CompleteNode).with_role(Role::Complete { scope }))
    }
}

#[cfg(test)]
mod tests {
    use crate::test_util::start;
    use flowd_engine::Msg;
    use serde_json::json;
    use std::time::Duration;

    #[tokio::test]
    async fn rbe_never_completes_but_debug_does() {
        let mut f = start(json!([
            {"id":"r","type":"rbe","func":"rbe"},
            {"id":"d","type":"debug","tosidebar":false},
            {"id":"c","type":"complete","scope":["r","d"]}
        ]))
        .await;
        f.send("r", Msg::with_payload(1.0)).await;
        f.next_from("r").await;
        f.expect_nothing_from("c", Duration::from_millis(100)).await;
        f.send("d", Msg::with_payload(2.0)).await;
        let m = f.next_from("c").await.msg;
        assert_eq!(
            m.get("complete").unwrap().to_json(),
            r#"{"source":{"id":"d","type":"debug"}}"#
        );
        f.stop().await;
    }

    #[tokio::test]
    async fn a_complete_node_on_another_tab_never_fires() {
        let mut flows = crate::test_util::on_tab(json!([
            {"id":"d","type":"debug","tosidebar":false},
            {"id":"here","type":"complete","scope":["d"]}
        ]));
        flows.as_array_mut().unwrap().extend([
            json!({"id":"t2","type":"tab","label":"Other"}),
            json!({"id":"there","type":"complete","z":"t2","scope":["d"],"x":1,"y":1,"wires":[]}),
        ]);
        let mut f = flowd_engine::testing::TestFlow::start(&crate::registry(), flows)
            .await
            .unwrap();
        f.send("d", Msg::with_payload(1.0)).await;
        f.next_from("here").await;
        f.expect_nothing_from("there", Duration::from_millis(100))
            .await;
        f.stop().await;
    }
}
