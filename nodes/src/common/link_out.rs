//! `link out`: sends every message to the `link in` nodes listed in `links`,
//! on any tab (a virtual wire). Mode `return` (answering a `link call`) is not
//! supported yet and is refused at validation.

use flowd_engine::config_de;
use flowd_engine::node::{BuildContext, BuiltNode, FunctionNode, NodeCx, NodeType};
use flowd_engine::registry::{NodeDescriptor, PropertyDescriptor as Prop, PropertyKind as Kind};
use flowd_engine::{Msg, Value};
use serde::Deserialize;
use serde_json::json;

/// The `link out` node type.
pub struct LinkOutType;

#[derive(Deserialize)]
#[serde(default)]
struct LinkOutConfig {
    #[serde(deserialize_with = "config_de::string")]
    mode: String,
    links: Vec<String>,
}

impl Default for LinkOutConfig {
    fn default() -> Self {
        LinkOutConfig {
            mode: "link".into(),
            links: Vec::new(),
        }
    }
}

struct LinkOut {
    /// `node:<id>`, set as `msg._event` on every message (as Node-RED does).
    event: Value,
}

impl FunctionNode for LinkOut {
    #[inline]
    fn on_input(&mut self, mut msg: Msg, cx: &mut NodeCx<'_>) {
        msg.insert("_event", self.event.clone());
        cx.done(&msg);
        cx.send(msg);
    }
}

impl NodeType for LinkOutType {
    fn type_name(&self) -> &'static str {
        "link out"
    }

    fn descriptor(&self) -> NodeDescriptor {
        NodeDescriptor::new("link out", "common", "node-red/link", "#ddd", 1, 0)
            .icon("link-out.svg")
            .prop(Prop::new("name", "Name", Kind::Text, json!("")))
            .prop(Prop::new(
                "mode",
                "Mode",
                Kind::Select {
                    options: vec![("link".into(), "Send to all connected link nodes".into())],
                },
                json!("link"),
            ))
            .prop(Prop::new(
                "links",
                "Linked to",
                Kind::Structured {
                    widget: "links".into(),
                },
                json!([]),
            ))
            .help("Sends messages to the selected link in nodes, which may be on other tabs.")
    }

    fn build(&self, cx: &mut BuildContext<'_>) -> Option<BuiltNode> {
        let c: LinkOutConfig = cx.config()?;
        let mut ok = true;
        if c.mode != "link" && !c.mode.is_empty() {
            cx.error(
                "mode",
                format!(
                    "mode \"{}\" is not supported by flowd yet (only \"link\")",
                    c.mode
                ),
            );
            ok = false;
        }
        for target in &c.links {
            let problem = match cx.flow_set().get(target) {
                None => Some(format!("linked node \"{target}\" does not exist")),
                Some(n) if n.type_name != "link in" => Some(format!(
                    "linked node \"{target}\" is a {}, not a link in",
                    n.type_name
                )),
                Some(_) => None,
            };
            if let Some(p) = problem {
                cx.error("links", p);
                ok = false;
            }
        }
        let event = Value::string(format!("node:{}", cx.info().id));
        ok.then(|| BuiltNode::function(LinkOut { event }).with_links(c.links))
    }
}

/// `link call`: registered so that flows using it get a clear validation
/// error instead of "unknown type".
pub struct LinkCallType;

impl NodeType for LinkCallType {
    fn type_name(&self) -> &'static str {
        "link call"
    }

    fn descriptor(&self) -> NodeDescriptor {
        NodeDescriptor::new("link call", "common", "node-red/link", "#ddd", 1, 1)
            .help("Not supported by flowd yet.")
    }

    fn build(&self, cx: &mut BuildContext<'_>) -> Option<BuiltNode> {
        cx.error("type", "link call is not supported by flowd yet");
        None
    }
}

#[cfg(test)]
mod tests {
    use crate::test_util::{on_tab, try_start};
    use flowd_engine::testing::TestFlow;
    use flowd_engine::{Msg, Value};
    use serde_json::json;

    #[tokio::test]
    async fn links_cross_tabs() {
        let mut flows = on_tab(json!([
            {"id":"lo","type":"link out","links":["li"]}
        ]));
        flows.as_array_mut().unwrap().extend([
            json!({"id":"t2","type":"tab","label":"Other"}),
            json!({"id":"li","type":"link in","z":"t2","x":1,"y":1,"wires":[["after"]]}),
            json!({"id":"after","type":"junction","z":"t2","x":1,"y":1,"wires":[]}),
        ]);
        let mut f = TestFlow::start(&crate::registry(), flows).await.unwrap();
        f.send("lo", Msg::with_payload("hop")).await;
        assert_eq!(
            f.next_from("after").await.msg.payload(),
            Some(&Value::str("hop"))
        );
        f.stop().await;
    }

    #[tokio::test]
    async fn a_link_named_on_either_side_wires_once_and_marks_the_message() {
        // lo1 names li1; li2 names lo1 (only on its side); li1 also names lo1.
        let flows = on_tab(json!([
            {"id":"lo1","type":"link out","links":["li1"]},
            {"id":"li1","type":"link in","links":["lo1"],"wires":[["a"]]},
            {"id":"li2","type":"link in","links":["lo1","gone","a"],"wires":[["b"]]},
            {"id":"a","type":"junction","wires":[]},
            {"id":"b","type":"junction","wires":[]},
            {"id":"c","type":"complete","scope":["lo1","li1"],"wires":[]}
        ]));
        let mut f = TestFlow::start(&crate::registry(), flows).await.unwrap();
        f.send("lo1", Msg::with_payload("hop")).await;
        for to in ["a", "b"] {
            let m = f.next_from(to).await.msg;
            assert_eq!(m.payload(), Some(&Value::str("hop")), "{to}");
            assert_eq!(m.get("_event"), Some(&Value::str("node:lo1")), "{to}");
        }
        // Once each: no second copy through li1, and naming a node that is
        // not a link out (the junction "a") wires nothing.
        assert!(f
            .collect_from("a", std::time::Duration::from_millis(100))
            .await
            .is_empty());
        assert!(f
            .collect_from("b", std::time::Duration::from_millis(100))
            .await
            .is_empty());
        // Both link nodes complete.
        let done = f
            .collect_from("c", std::time::Duration::from_millis(100))
            .await;
        assert_eq!(done.len(), 2);
        f.stop().await;
    }

    #[tokio::test]
    async fn bad_links_and_modes_are_validation_errors() {
        let e = try_start(json!([
            {"id":"lo","type":"link out","mode":"return","links":["nope","j"]},
            {"id":"j","type":"junction"},
            {"id":"lc","type":"link call"}
        ]))
        .await
        .err()
        .unwrap()
        .to_string();
        assert!(e.contains("\"nope\" does not exist"), "{e}");
        assert!(e.contains("is a junction, not a link in"), "{e}");
        assert!(e.contains("mode \"return\""), "{e}");
        assert!(e.contains("link call is not supported"), "{e}");
    }
}
