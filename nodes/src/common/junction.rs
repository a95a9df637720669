//! `junction`: a wiring point that forwards every message unchanged.

use flowd_engine::node::{BuildContext, BuiltNode, FunctionNode, NodeCx, NodeType};
use flowd_engine::registry::NodeDescriptor;
use flowd_engine::Msg;

/// The `junction` node type.
pub struct JunctionType;

struct Junction;

impl FunctionNode for Junction {
    #[inline]
    fn on_input(&mut self, msg: Msg, cx: &mut NodeCx<'_>) {
        cx.send(msg);
    }
}

impl NodeType for JunctionType {
    fn type_name(&self) -> &'static str {
        "junction"
    }

    fn descriptor(&self) -> NodeDescriptor {
        NodeDescriptor::new("junction", "common", "node-red/junction", "#d9d9d9", 1, 1)
            .help("A junction point for tidying wires: messages pass through unchanged.")
    }

    fn build(&self, _cx: &mut BuildContext<'_>) -> Option<BuiltNode> {
        Some(BuiltNode::function(Junction))
    }
}

#[cfg(test)]
mod tests {
    use crate::test_util::start;
    use flowd_engine::{Msg, Value};
    use serde_json::json;

    #[tokio::test]
    async fn forwards_to_every_wire_with_independent_copies() {
        let mut f = start(json!([
            {"id":"jn","type":"junction","wires":[["a","b"]]},
            {"id":"a","type":"junction"},
            {"id":"b","type":"junction"}
        ]))
        .await;
        let m = Msg::with_payload("x");
        let id = m.msgid().unwrap().to_string();
        f.send("jn", m).await;
        let a = f.next_from("a").await.msg;
        let b = f.next_from("b").await.msg;
        assert_eq!(a.payload(), Some(&Value::str("x")));
        assert_eq!(b.msgid(), Some(id.as_str()));
        f.stop().await;
    }
}
