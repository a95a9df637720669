//! `status` node: receives the status updates of nodes on its tab and sends
//! `{status: {fill, shape, text, source: {id, type, name}}}`.
//!
//! Nodes this status node is wired to are left out of its scope, so a status
//! node cannot trivially loop on its own output.

use super::scope::parse_scope;
use flowd_engine::node::{BuildContext, BuiltNode, FunctionNode, NodeCx, NodeType, Role, Scope};
use flowd_engine::registry::{NodeDescriptor, PropertyDescriptor as Prop, PropertyKind as Kind};
use flowd_engine::Msg;
use serde_json::json;

/// The `status` node type.
pub struct StatusType;

struct StatusNode;

impl FunctionNode for StatusNode {
    fn on_input(&mut self, msg: Msg, cx: &mut NodeCx<'_>) {
        cx.done(&msg);
        cx.send(msg);
    }
}

impl NodeType for StatusType {
    fn type_name(&self) -> &'static str {
        "status"
    }

    fn descriptor(&self) -> NodeDescriptor {
        NodeDescriptor::new("status", "common", "node-red/status", "#94c1d0", 0, 1)
            .icon("status.svg")
            .prop(Prop::new("scope", "Report status from", Kind::Structured { widget: "scope".into() }, json!(null)))
            .prop(Prop::new("name", "Name", Kind::Text, json!("")))
            .help("Reports status updates of other nodes on the same tab as messages with `msg.status`.")
    }

    fn build(&self, cx: &mut BuildContext<'_>) -> Option<BuiltNode> {
        let mut scope = parse_scope(cx.props().get("scope"))
            .map_err(|e| cx.error("scope", e))
            .ok()?;
        if let Scope::Nodes(ids) = &mut scope {
            let wired: Vec<&String> = cx.wires().iter().flatten().collect();
            ids.retain(|id| !wired.contains(&id));
        }
        Some(BuiltNode::function(StatusNode).with_role(Role::Status { scope }))
    }
}

#[cfg(test)]
mod tests {
    use crate::test_util::start;
    use flowd_engine::Msg;
    use serde_json::json;

    #[tokio::test]
    async fn debug_status_reaches_status_nodes_of_the_tab() {
        let mut f = start(json!([
            {"id":"d","type":"debug","name":"D","tosidebar":false,"tostatus":true,"statusType":"auto"},
            {"id":"s","type":"status","scope":null},
            {"id":"s2","type":"status","scope":["other"]}
        ]))
        .await;
        f.send("d", Msg::with_payload("hello")).await;
        let m = f.next_from("s").await.msg;
        assert_eq!(
            m.get("status").unwrap().to_json(),
            r#"{"fill":"grey","shape":"dot","text":"hello","source":{"id":"d","type":"debug","name":"D"}}"#
        );
        assert!(m.payload().is_none());
        f.expect_nothing_from("s2", std::time::Duration::from_millis(100))
            .await;
        f.stop().await;
    }
}
