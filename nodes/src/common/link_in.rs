//! `link in`: the receiving end of link out nodes, possibly on other tabs.
//! Forwards every message unchanged.

use flowd_engine::node::{BuildContext, BuiltNode, FunctionNode, NodeCx, NodeType};
use flowd_engine::registry::{NodeDescriptor, PropertyDescriptor as Prop, PropertyKind as Kind};
use flowd_engine::Msg;
use serde_json::json;

/// The `link in` node type.
pub struct LinkInType;

struct LinkIn;

impl FunctionNode for LinkIn {
    #[inline]
    fn on_input(&mut self, msg: Msg, cx: &mut NodeCx<'_>) {
        cx.done(&msg);
        cx.send(msg);
    }
}

impl NodeType for LinkInType {
    fn type_name(&self) -> &'static str {
        "link in"
    }

    fn descriptor(&self) -> NodeDescriptor {
        NodeDescriptor::new("link in", "common", "node-red/link", "#ddd", 0, 1)
            .icon("link-out.svg")
            .prop(Prop::new("name", "Name", Kind::Text, json!("")))
            .prop(Prop::new(
                "links",
                "Linked from",
                Kind::Structured {
                    widget: "links".into(),
                },
                json!([]),
            ))
            .help("Receives the messages of the link out nodes that name it, on any tab.")
    }

    fn build(&self, cx: &mut BuildContext<'_>) -> Option<BuiltNode> {
        // The link outs this node names are wired to it too, as Node-RED
        // wires the union of both sides' lists (other ids are ignored).
        let sources: Vec<String> = match cx.props().get("links") {
            Some(serde_json::Value::Array(ids)) => ids
                .iter()
                .filter_map(|id| id.as_str())
                .filter(|id| {
                    cx.flow_set()
                        .get(id)
                        .is_some_and(|n| n.type_name == "link out")
                })
                .map(str::to_string)
                .collect(),
            _ => Vec::new(),
        };
        Some(BuiltNode::function(LinkIn).with_links_from(sources))
    }
}
