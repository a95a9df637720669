//! `json` node: converts a message property between a JSON string and a value.
//!
//! A string or Buffer is parsed (any JSON value, not only objects); any other
//! value is serialised (compact, or indented with 4 spaces when `pretty`).
//! `action: "str"` always produces a string and `"obj"` always a value. A parse
//! error sends nothing and goes to catch nodes with the original message.

use crate::typed_value::get_property;
use flowd_engine::config_de;
use flowd_engine::node::{BuildContext, BuiltNode, FunctionNode, NodeCx, NodeType};
use flowd_engine::registry::{NodeDescriptor, PropertyDescriptor as Prop, PropertyKind as Kind};
use flowd_engine::value::json;
use flowd_engine::value::path::Path;
use flowd_engine::{Msg, Value};
use serde::Deserialize;
use serde_json::json;

/// The `json` node type.
pub struct JsonType;

/// What the node produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    /// Convert both ways.
    Toggle,
    /// Always a string.
    Str,
    /// Always a value.
    Obj,
}

#[derive(Deserialize)]
#[serde(default)]
struct JsonConfig {
    #[serde(deserialize_with = "config_de::string")]
    property: String,
    #[serde(deserialize_with = "config_de::string")]
    action: String,
    #[serde(deserialize_with = "config_de::boolean")]
    pretty: bool,
}

impl Default for JsonConfig {
    fn default() -> Self {
        JsonConfig {
            property: "payload".into(),
            action: String::new(),
            pretty: false,
        }
    }
}

struct JsonNode {
    property: Path,
    action: Action,
    pretty: bool,
}

impl NodeType for JsonType {
    fn type_name(&self) -> &'static str {
        "json"
    }

    fn descriptor(&self) -> NodeDescriptor {
        NodeDescriptor::new("json", "parser", "node-red/JSON", "#DEBB9C", 1, 1)
            .icon("parser-json.svg")
            .prop(Prop::new(
                "action",
                "Action",
                Kind::Select {
                    options: vec![
                        ("".into(), "Convert between JSON String & Object".into()),
                        ("str".into(), "Always convert to JSON String".into()),
                        ("obj".into(), "Always convert to JavaScript Object".into()),
                    ],
                },
                json!(""),
            ))
            .prop(Prop::new("property", "Property", Kind::Text, json!("payload")).required())
            .prop(Prop::new(
                "pretty",
                "Format JSON string",
                Kind::Bool,
                json!(false),
            ))
            .prop(Prop::new("name", "Name", Kind::Text, json!("")))
            .help(
                "Converts between a JSON string and its value.\n\n\
                 A string or Buffer in the property is parsed; any other value is \
                 serialised. An invalid JSON string sends nothing and raises an error \
                 that catch nodes receive.",
            )
    }

    fn build(&self, cx: &mut BuildContext<'_>) -> Option<BuiltNode> {
        let c: JsonConfig = cx.config()?;
        let action = match c.action.as_str() {
            "" => Some(Action::Toggle),
            "str" => Some(Action::Str),
            "obj" => Some(Action::Obj),
            other => {
                cx.error(
                    "action",
                    format!("unknown action \"{other}\" (expected \"\", \"str\" or \"obj\")"),
                );
                None
            }
        };
        let prop = if c.property.is_empty() {
            "payload"
        } else {
            &c.property
        };
        let property = Path::parse(prop)
            .map_err(|e| cx.error("property", e.to_string()))
            .ok();
        let (action, property) = (action?, property?);
        Some(BuiltNode::function(JsonNode {
            property,
            action,
            pretty: c.pretty,
        }))
    }
}

impl FunctionNode for JsonNode {
    fn on_input(&mut self, mut msg: Msg, cx: &mut NodeCx<'_>) {
        // Read as JavaScript does: through a missing parent is an error
        // (Node-RED's TypeError reaches catch nodes; nothing is sent).
        let value = match get_property(&msg, &self.property) {
            Ok(v) => v,
            Err(e) => {
                cx.error(e, msg);
                return;
            }
        };
        let new_value = match value.as_deref() {
            None => None,
            Some(Value::String(_) | Value::Buffer(_)) if self.action == Action::Str => None,
            Some(v @ (Value::String(_) | Value::Buffer(_))) => {
                let text: std::borrow::Cow<'_, str> = match v {
                    Value::String(s) => std::borrow::Cow::Borrowed(s.as_str()),
                    Value::Buffer(b) => String::from_utf8_lossy(b),
                    _ => unreachable!("matched above"),
                };
                match json::parse(&text) {
                    Ok(parsed) => Some(parsed),
                    Err(e) => {
                        let err = json::js_error_message(&text, &e);
                        cx.error(err, msg);
                        return;
                    }
                }
            }
            Some(_) if self.action == Action::Obj => None,
            Some(v) => Some(Value::string(if self.pretty {
                json::stringify_pretty(v, 4)
            } else {
                json::stringify(v)
            })),
        };
        if let Some(v) = new_value {
            if let Err(e) = msg.set_expr(&self.property, v) {
                cx.error(e, msg);
                return;
            }
        }
        cx.done(&msg);
        cx.send(msg);
    }
}

#[cfg(test)]
mod tests {
    use crate::test_util::{start, start_one, try_start};
    use flowd_engine::value::json;
    use flowd_engine::{Msg, Value};
    use serde_json::json;
    use std::time::Duration;

    async fn convert(node: serde_json::Value, payload: Value) -> Option<Value> {
        let mut f = start_one("j", "json", node).await;
        f.send("j", Msg::with_payload(payload)).await;
        let out = f.next_from_within("j", Duration::from_millis(300)).await;
        f.stop().await;
        out.map(|s| s.msg.payload().cloned().unwrap_or(Value::Null))
    }

    #[tokio::test]
    async fn parses_strings_into_any_json_value() {
        for (text, expected) in [
            ("{\"a\":1}", "{\"a\":1}"),
            (" 42 ", "42"),
            ("\"hi\"", "\"hi\""),
            ("null", "null"),
            ("true", "true"),
        ] {
            let v = convert(json!({}), Value::str(text)).await.unwrap();
            assert_eq!(json::stringify(&v), expected, "{text}");
            assert!(!matches!(v, Value::String(_)) || text.contains('"'));
        }
    }

    #[tokio::test]
    async fn serialises_values_and_normalises_numbers() {
        let v = json::parse(r#"{"b":1,"a":[1,2.50,1e3,-0.0],"c":"é\n"}"#).unwrap();
        let out = convert(json!({}), v).await.unwrap();
        assert_eq!(
            out,
            Value::str("{\"b\":1,\"a\":[1,2.5,1000,0],\"c\":\"é\\n\"}")
        );
        assert_eq!(
            convert(json!({}), Value::Null).await.unwrap(),
            Value::str("null")
        );
        assert_eq!(
            convert(json!({}), Value::Number(5.0)).await.unwrap(),
            Value::str("5")
        );
    }

    #[tokio::test]
    async fn pretty_uses_four_spaces() {
        let v = json::parse(r#"{"a":[1],"b":{}}"#).unwrap();
        let out = convert(json!({"pretty": true}), v).await.unwrap();
        assert_eq!(
            out,
            Value::str("{\n    \"a\": [\n        1\n    ],\n    \"b\": {}\n}")
        );
    }

    #[tokio::test]
    async fn actions_str_and_obj_pass_through() {
        assert_eq!(
            convert(json!({"action":"str"}), Value::str("not json"))
                .await
                .unwrap(),
            Value::str("not json")
        );
        let obj = json::parse(r#"{"a":1}"#).unwrap();
        assert_eq!(
            convert(json!({"action":"obj"}), obj.clone()).await.unwrap(),
            obj
        );
        assert_eq!(
            convert(json!({"action":"obj"}), Value::str("[1]"))
                .await
                .unwrap()
                .to_json(),
            "[1]"
        );
    }

    #[tokio::test]
    async fn buffers_are_parsed() {
        let out = convert(
            json!({}),
            Value::Buffer(bytes::Bytes::from_static(b"{\"x\":true}")),
        )
        .await
        .unwrap();
        assert_eq!(out.to_json(), r#"{"x":true}"#);
    }

    #[tokio::test]
    async fn missing_property_is_forwarded_unchanged() {
        let mut f = start(json!([{"id":"j","type":"json","property":"other"}])).await;
        f.send("j", Msg::with_payload("x")).await;
        let out = f.next_from("j").await;
        assert_eq!(out.msg.payload(), Some(&Value::str("x")));
        assert!(out.msg.get("other").is_none());
        f.stop().await;
    }

    #[tokio::test]
    async fn other_property_is_converted_alone() {
        let mut f = start(json!([{"id":"j","type":"json","property":"data.inner"}])).await;
        let mut m = Msg::with_payload("{\"keep\":1}");
        m.insert("data", json::parse(r#"{"inner":"[1,2]"}"#).unwrap());
        f.send("j", m).await;
        let out = f.next_from("j").await;
        assert_eq!(out.msg.payload(), Some(&Value::str("{\"keep\":1}")));
        assert_eq!(out.msg.get("data").unwrap().to_json(), r#"{"inner":[1,2]}"#);
        f.stop().await;
    }

    #[tokio::test]
    async fn parse_errors_go_to_catch_with_the_original_message() {
        let mut f = start(json!([
            {"id":"j","type":"json"},
            {"id":"c","type":"catch","scope":null,"uncaught":false}
        ]))
        .await;
        for bad in ["not json", ""] {
            f.send("j", Msg::with_payload(bad)).await;
            let caught = f.next_from("c").await.msg;
            assert_eq!(caught.payload(), Some(&Value::str(bad)));
            let err = caught.get("error").unwrap().as_object().unwrap();
            assert!(!err.get("message").unwrap().as_str().unwrap().is_empty());
            let src = err.get("source").unwrap().as_object().unwrap();
            assert_eq!(src.get("id"), Some(&Value::str("j")));
            assert_eq!(src.get("type"), Some(&Value::str("json")));
            assert_eq!(src.get("count"), Some(&Value::Number(1.0)));
        }
        f.expect_nothing_from("j", Duration::from_millis(100)).await;
        f.stop().await;
    }

    #[tokio::test]
    async fn a_property_under_a_missing_parent_is_an_error() {
        let mut f = start(json!([
            {"id":"j","type":"json","property":"foo.bar"},
            {"id":"c","type":"catch","scope":null,"uncaught":false}
        ]))
        .await;
        f.send("j", Msg::with_payload("{\"x\":1}")).await;
        let caught = f.next_from("c").await.msg;
        let err = caught.get("error").unwrap().as_object().unwrap();
        let text = err.get("message").unwrap().as_str().unwrap();
        assert!(text.contains("'bar'"), "{text}");
        assert_eq!(caught.payload(), Some(&Value::str("{\"x\":1}")));
        f.expect_nothing_from("j", Duration::from_millis(100)).await;
        f.stop().await;
    }

    #[tokio::test]
    async fn complete_fires_after_success_only() {
        let mut f = start(json!([
            {"id":"j","type":"json"},
            {"id":"done","type":"complete","scope":["j"]}
        ]))
        .await;
        f.send("j", Msg::with_payload("{\"a\":1}")).await;
        let c = f.next_from("done").await.msg;
        assert_eq!(c.payload().unwrap().to_json(), r#"{"a":1}"#);
        assert_eq!(
            c.get("complete").unwrap().to_json(),
            r#"{"source":{"id":"j","type":"json"}}"#
        );
        f.send("j", Msg::with_payload("bad")).await;
        f.expect_nothing_from("done", Duration::from_millis(150))
            .await;
        f.stop().await;
    }

    #[tokio::test]
    async fn invalid_config_is_reported() {
        let e = try_start(json!([{"id":"j","type":"json","action":"xml","property":"a..b"}]))
            .await
            .err()
            .unwrap();
        let text = e.to_string();
        assert!(text.contains("field \"action\""), "{text}");
        assert!(text.contains("field \"property\""), "{text}");
    }

    #[tokio::test]
    async fn parse_errors_read_like_node() {
        let mut f = start(json!([
            {"id":"j","type":"json"},
            {"id":"c","type":"catch","scope":null}
        ]))
        .await;
        f.send("j", Msg::with_payload("not json")).await;
        let caught = f.next_from("c").await.msg;
        let err = caught.get("error").unwrap().as_object().unwrap();
        assert_eq!(
            err.get("message"),
            Some(&Value::str(
                "Unexpected token 'o', \"not json\" is not valid JSON"
            ))
        );
        f.stop().await;
    }
}
