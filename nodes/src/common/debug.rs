//! `debug` node: shows a message property (or the whole message) in the
//! debug sidebar, optionally in the log and as the node's status.
//!
//! Headless (`flowd run`), each shown message is one JSON line on stdout:
//! `{"id","z","name","topic","property","msg"}`.

use flowd_engine::config_de;
use flowd_engine::node::{
    BuildContext, BuiltNode, FunctionNode, NodeControl, NodeCx, NodeType, Status,
};
use flowd_engine::observer::DebugEvent;
use flowd_engine::registry::{NodeDescriptor, PropertyDescriptor as Prop, PropertyKind as Kind};
use flowd_engine::value::path::Path;
use flowd_engine::{Msg, Value};
use serde::Deserialize;
use serde_json::json;

/// The `debug` node type.
pub struct DebugType;

/// Status texts longer than this are cut and end in "...".
const STATUS_LENGTH: usize = 32;

#[derive(Deserialize)]
#[serde(default)]
struct DebugConfig {
    #[serde(deserialize_with = "config_de::boolean")]
    active: bool,
    #[serde(deserialize_with = "config_de::boolean")]
    tosidebar: bool,
    #[serde(deserialize_with = "config_de::boolean")]
    console: bool,
    #[serde(deserialize_with = "config_de::boolean")]
    tostatus: bool,
    #[serde(deserialize_with = "config_de::string")]
    complete: String,
    #[serde(rename = "targetType", deserialize_with = "config_de::string")]
    target_type: String,
    #[serde(rename = "statusVal", deserialize_with = "config_de::string")]
    status_val: String,
    #[serde(rename = "statusType", deserialize_with = "config_de::string")]
    status_type: String,
}

impl Default for DebugConfig {
    fn default() -> Self {
        DebugConfig {
            active: true,
            tosidebar: true,
            console: false,
            tostatus: false,
            complete: "payload".into(),
            target_type: "msg".into(),
            status_val: String::new(),
            status_type: "auto".into(),
        }
    }
}

/// What the node shows.
enum Shown {
    WholeMessage,
    Property(String, Path),
}

enum StatusMode {
    Off,
    Auto,
    Property(Path),
    Counter,
}

struct StatusState {
    mode: StatusMode,
    counter: u64,
    last: Option<Status>,
}

struct DebugNode {
    active: bool,
    tosidebar: bool,
    console: bool,
    shown: Shown,
    status: StatusState,
}

impl NodeType for DebugType {
    fn type_name(&self) -> &'static str {
        "debug"
    }

    fn descriptor(&self) -> NodeDescriptor {
        NodeDescriptor::new("debug", "common", "node-red/debug", "#87a980", 1, 0)
            .icon("debug.svg")
            .prop(Prop::new(
                "complete",
                "Output",
                Kind::Text,
                json!("payload"),
            ))
            .prop(Prop::new(
                "tosidebar",
                "To debug window",
                Kind::Bool,
                json!(true),
            ))
            .prop(Prop::new(
                "console",
                "To system console",
                Kind::Bool,
                json!(false),
            ))
            .prop(Prop::new(
                "tostatus",
                "To node status",
                Kind::Bool,
                json!(false),
            ))
            .prop(Prop::new("name", "Name", Kind::Text, json!("")))
            .help(
                "Shows `msg.payload` (or another property, or the whole message) in the \
                 debug sidebar. Headless, it prints one JSON line per message.",
            )
    }

    fn keeps_empty_name(&self) -> bool {
        true
    }

    fn build(&self, cx: &mut BuildContext<'_>) -> Option<BuiltNode> {
        let c: DebugConfig = cx.config()?;
        // `active` is absent or null in old flows: active.
        let active = match cx.props().get("active") {
            None | Some(serde_json::Value::Null) => true,
            _ => c.active,
        };
        let tosidebar = match cx.props().get("tosidebar") {
            None | Some(serde_json::Value::Null) => true,
            _ => c.tosidebar,
        };
        if c.target_type == "jsonata" {
            cx.error(
                "targetType",
                "JSONata expressions are not supported by flowd yet",
            );
            return None;
        }
        let shown = match c.complete.as_str() {
            "true" => Shown::WholeMessage,
            "" | "false" => Shown::Property("payload".into(), Path::key("payload")),
            p => match Path::parse(p) {
                Ok(path) => Shown::Property(p.to_string(), path),
                Err(e) => {
                    cx.error("complete", e.to_string());
                    return None;
                }
            },
        };
        let status = if !c.tostatus {
            StatusMode::Off
        } else {
            match c.status_type.as_str() {
                "counter" => StatusMode::Counter,
                "jsonata" => {
                    cx.error(
                        "statusType",
                        "JSONata expressions are not supported by flowd yet",
                    );
                    return None;
                }
                "msg" if !c.status_val.is_empty() => match Path::parse(&c.status_val) {
                    Ok(p) => StatusMode::Property(p),
                    Err(e) => {
                        cx.error("statusVal", e.to_string());
                        return None;
                    }
                },
                _ => StatusMode::Auto,
            }
        };
        Some(BuiltNode::function(DebugNode {
            active,
            tosidebar,
            console: c.console,
            shown,
            status: StatusState {
                mode: status,
                counter: 0,
                last: None,
            },
        }))
    }
}

/// A short display form in the style of Node.js `util.inspect`.
pub fn inspect(v: Option<&Value>) -> String {
    fn go(v: &Value, out: &mut String, depth: usize) {
        match v {
            Value::String(s) => {
                out.push('\'');
                out.push_str(s);
                out.push('\'');
            }
            Value::Array(a) => {
                if a.is_empty() {
                    out.push_str("[]");
                    return;
                }
                if depth > 2 {
                    out.push_str("[Array]");
                    return;
                }
                out.push_str("[ ");
                for (i, x) in a.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    go(x, out, depth + 1);
                }
                out.push_str(" ]");
            }
            Value::Object(o) => {
                if o.is_empty() {
                    out.push_str("{}");
                    return;
                }
                if depth > 2 {
                    out.push_str("[Object]");
                    return;
                }
                out.push_str("{ ");
                for (i, (k, x)) in o.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    let plain = k
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
                        && !k.starts_with(|c: char| c.is_ascii_digit());
                    if plain {
                        out.push_str(k);
                    } else {
                        out.push('\'');
                        out.push_str(k);
                        out.push('\'');
                    }
                    out.push_str(": ");
                    go(x, out, depth + 1);
                }
                out.push_str(" }");
            }
            Value::Buffer(b) => {
                out.push_str("<Buffer");
                for x in b.iter().take(50) {
                    out.push_str(&format!(" {x:02x}"));
                }
                if b.len() > 50 {
                    out.push_str(&format!(" ... {} more bytes", b.len() - 50));
                }
                out.push('>');
            }
            other => out.push_str(&other.to_js_string()),
        }
    }
    match v {
        None => "undefined".into(),
        Some(Value::String(s)) => s.to_string(),
        Some(v) => {
            let mut out = String::new();
            go(v, &mut out, 0);
            out
        }
    }
}

impl StatusState {
    fn update(
        &mut self,
        whole_message: bool,
        msg: &Msg,
        shown: Option<&Value>,
        cx: &mut NodeCx<'_>,
    ) {
        let status = match &self.mode {
            StatusMode::Off => return,
            StatusMode::Counter => {
                self.counter += 1;
                Status::new("blue", "ring", self.counter.to_string())
            }
            StatusMode::Auto | StatusMode::Property(_) => {
                let value = match &self.mode {
                    StatusMode::Property(p) => msg.get_path(p),
                    _ if whole_message => msg.payload(),
                    _ => shown,
                };
                let (mut fill, mut shape, mut text) =
                    ("grey".to_string(), "dot".to_string(), inspect(value));
                if let Some(Value::Object(o)) = value {
                    if let (Some(f), Some(s), Some(t)) =
                        (o.get("fill"), o.get("shape"), o.get("text"))
                    {
                        if f.is_truthy() && s.is_truthy() && t.is_truthy() {
                            fill = f.to_js_string();
                            shape = s.to_js_string();
                            text = t.to_js_string();
                        }
                    }
                }
                if matches!(self.mode, StatusMode::Auto) {
                    if let Some(err) = msg.get("error") {
                        fill = "red".into();
                        text = err
                            .as_object()
                            .and_then(|e| e.get("message"))
                            .map(|m| m.to_js_string())
                            .unwrap_or_default();
                    }
                    if let Some(st) = msg.get("status").and_then(Value::as_object) {
                        let pick = |k: &str, d: &str| {
                            st.get(k)
                                .filter(|v| v.is_truthy())
                                .map(|v| v.to_js_string())
                                .unwrap_or(d.into())
                        };
                        fill = pick("fill", "grey");
                        shape = pick("shape", "ring");
                        text = pick("text", "");
                    }
                }
                let units: Vec<u16> = text.encode_utf16().collect();
                if units.len() > STATUS_LENGTH {
                    text = String::from_utf16_lossy(&units[..STATUS_LENGTH]) + "...";
                }
                Status::new(&fill, &shape, text)
            }
        };
        if self.last.as_ref() != Some(&status) {
            self.last = Some(status.clone());
            cx.status(status);
        }
    }
}

impl FunctionNode for DebugNode {
    fn on_control(&mut self, control: &NodeControl) -> bool {
        match control {
            NodeControl::SetActive(on) => {
                self.active = *on;
                true
            }
        }
    }

    fn on_input(&mut self, msg: Msg, cx: &mut NodeCx<'_>) {
        // A status message about this very node would loop.
        if let Some(Value::Object(st)) = msg.get("status") {
            if let Some(Value::Object(src)) = st.get("source") {
                if src.get("id").and_then(Value::as_str) == Some(cx.info().id.as_str()) {
                    cx.done(&msg);
                    return;
                }
            }
        }
        let whole;
        let (property, shown) = match &self.shown {
            Shown::WholeMessage => {
                whole = msg.to_value();
                (None, Some(&whole))
            }
            Shown::Property(name, path) => (Some(name.as_str()), msg.get_path(path)),
        };
        let whole_message = matches!(self.shown, Shown::WholeMessage);
        self.status.update(whole_message, &msg, shown, cx);
        if self.console {
            let text = inspect(shown);
            cx.log(text);
        }
        if self.active && self.tosidebar {
            let info = cx.info();
            cx.observer().debug(&DebugEvent {
                node: info,
                topic: msg.topic(),
                property,
                value: shown,
            });
        }
        cx.done(&msg);
    }
}

#[cfg(test)]
mod tests {
    use super::inspect;
    use crate::test_util::start;
    use flowd_engine::value::json;
    use flowd_engine::Msg;
    use serde_json::json;
    use std::time::Duration;

    #[tokio::test]
    async fn writes_one_json_line_per_message() {
        let f = start(json!([
            {"id":"d1","type":"debug","name":"D1"},
            {"id":"d2","type":"debug","complete":"true"},
            {"id":"d3","type":"debug","complete":"payload.a"},
            {"id":"d4","type":"debug","active":false}
        ]))
        .await;
        let mut m = Msg::with_payload(json::parse(r#"{"a":[1,2]}"#).unwrap());
        m.insert("topic", "tp".into());
        m.insert("_msgid", "m1".into());
        for id in ["d1", "d2", "d3", "d4"] {
            f.send(id, m.clone()).await;
        }
        f.observer
            .wait_until(Duration::from_secs(2), "3 debug lines", |o| {
                o.debug().len() >= 3
            })
            .await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        let lines: Vec<String> = f.observer.debug().into_iter().map(|(l, _)| l).collect();
        assert_eq!(
            lines,
            [
                r#"{"id":"d1","z":"t1","name":"D1","topic":"tp","property":"payload","msg":{"a":[1,2]}}"#,
                r#"{"id":"d2","z":"t1","topic":"tp","msg":{"_msgid":"m1","payload":{"a":[1,2]},"topic":"tp"}}"#,
                r#"{"id":"d3","z":"t1","topic":"tp","property":"payload.a","msg":[1,2]}"#,
            ]
        );
        f.stop().await;
    }

    #[tokio::test]
    async fn status_shows_value_truncated_and_only_on_change() {
        let f = start(json!([{"id":"d","type":"debug","tosidebar":false,"tostatus":true}])).await;
        f.send(
            "d",
            Msg::with_payload("a very long status text that will be cut off"),
        )
        .await;
        f.send(
            "d",
            Msg::with_payload("a very long status text that will be cut off"),
        )
        .await;
        f.send(
            "d",
            Msg::with_payload(json::parse(r#"{"a":[1,2]}"#).unwrap()),
        )
        .await;
        f.observer
            .wait_until(Duration::from_secs(2), "2 statuses", |o| {
                o.statuses().len() >= 2
            })
            .await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        let st: Vec<String> = f
            .observer
            .statuses()
            .iter()
            .map(|(_, s)| s.text.clone().unwrap())
            .collect();
        assert_eq!(
            st,
            ["a very long status text that wil...", "{ a: [ 1, 2 ] }"]
        );
        f.stop().await;
    }

    #[test]
    fn inspect_resembles_node() {
        assert_eq!(inspect(None), "undefined");
        assert_eq!(
            inspect(Some(
                &json::parse(r#"{"a":"x","b c":null,"d":[]}"#).unwrap()
            )),
            "{ a: 'x', 'b c': null, d: [] }"
        );
        assert_eq!(inspect(Some(&flowd_engine::Value::Number(1e21))), "1e+21");
    }
}
