//! `comment` node: documentation on the canvas; no behaviour.

use flowd_engine::node::{BuildContext, BuiltNode, NodeType};
use flowd_engine::registry::{NodeDescriptor, PropertyDescriptor as Prop, PropertyKind as Kind};
use serde_json::json;

/// The `comment` node type.
pub struct CommentType;

impl NodeType for CommentType {
    fn type_name(&self) -> &'static str {
        "comment"
    }

    fn descriptor(&self) -> NodeDescriptor {
        NodeDescriptor::new("comment", "common", "node-red/comment", "#ffffff", 0, 0)
            .icon("comment.svg")
            .prop(Prop::new("name", "Title", Kind::Text, json!("")))
            .prop(Prop::new("info", "Body", Kind::Multiline, json!("")))
            .help("A note on the canvas. It has no effect on the flow.")
    }

    fn build(&self, _cx: &mut BuildContext<'_>) -> Option<BuiltNode> {
        Some(BuiltNode::inert())
    }
}
