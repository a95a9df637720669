//! `inject` node: creates messages on a schedule, once after start, or when
//! triggered (the editor's button, `POST /inject/:id`).
//!
//! Each trigger builds a fresh message and sets every entry of `props`
//! (`{p, v, vt}`) in order; `vt` is one of str, num, bool, json, bin, date,
//! env, msg, flow, global. `once` fires `onceDelay` seconds after start; then
//! `repeat` (seconds) or `crontab` (cron pattern) schedule further triggers.

use crate::typed_value::{self, Typed};
use flowd_engine::config_de;
use flowd_engine::flows::env::NodeEnv;
use flowd_engine::node::{BuildContext, BuiltNode, FunctionNode, NodeCx, NodeHandle, NodeType};
use flowd_engine::registry::{NodeDescriptor, PropertyDescriptor as Prop, PropertyKind as Kind};
use flowd_engine::value::path::Path;
use flowd_engine::{Msg, Value};
use serde::Deserialize;
use serde_json::{json, Value as Json};
use std::str::FromStr;
use std::time::Duration;

/// The `inject` node type.
pub struct InjectType;

/// Property of a trigger message carrying props that replace the node's own.
pub const USER_INJECT_PROPS: &str = "__user_inject_props__";

/// Longest repeat interval Node-RED accepts, in seconds.
const MAX_REPEAT_SECS: f64 = 2_147_483.0;

/// Default delay of the `once` trigger.
const DEFAULT_ONCE_DELAY_SECS: f64 = 0.1;

#[derive(Deserialize, Default)]
#[serde(default)]
struct InjectConfig {
    props: Option<Vec<Json>>,
    payload: Json,
    #[serde(rename = "payloadType", deserialize_with = "config_de::string")]
    payload_type: String,
    topic: Json,
    #[serde(deserialize_with = "config_de::boolean")]
    once: bool,
    #[serde(rename = "onceDelay", deserialize_with = "config_de::opt_number")]
    once_delay: Option<f64>,
    #[serde(deserialize_with = "config_de::opt_number")]
    repeat: Option<f64>,
    #[serde(deserialize_with = "config_de::string")]
    crontab: String,
}

/// One property to set: target path and typed value.
#[derive(Debug, Clone)]
struct InjectProp {
    path: Path,
    value: Typed,
}

struct InjectNode {
    props: Vec<InjectProp>,
    once: Option<Duration>,
    repeat: Option<Duration>,
    cron: Option<croner::Cron>,
}

const TYPES: &[&str] = &[
    "str", "num", "bool", "json", "bin", "date", "env", "msg", "flow", "global",
];

fn text_of(v: Option<&Json>) -> String {
    match v {
        None | Some(Json::Null) => String::new(),
        Some(Json::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// Prepares one `{p, v, vt}` entry.
fn compile_prop(
    name: &str,
    value: &str,
    value_type: &str,
    env: &NodeEnv,
) -> Result<InjectProp, String> {
    if !TYPES.contains(&value_type) && value_type != "jsonata" {
        return Err(format!("unknown value type \"{value_type}\""));
    }
    let typed = typed_value::compile(value_type, Some(&Json::String(value.to_string())), env)
        .map_err(|e| e.to_string())?;
    let path = Path::parse(name).map_err(|e| e.to_string())?;
    Ok(InjectProp { path, value: typed })
}

/// Parses the `props` array (or the legacy payload/topic fields).
fn parse_props(c: &InjectConfig, cx: &mut BuildContext<'_>) -> Option<Vec<InjectProp>> {
    let raw: Vec<Json> = match &c.props {
        None => vec![
            json!({"p": "payload", "v": c.payload, "vt": c.payload_type}),
            json!({"p": "topic", "v": c.topic, "vt": "str"}),
        ],
        Some(props) => props.clone(),
    };
    let mut out = Vec::new();
    let mut ok = true;
    for (i, p) in raw.iter().enumerate() {
        let Some(name) = p.get("p").and_then(Json::as_str).filter(|n| !n.is_empty()) else {
            continue;
        };
        let mut value = text_of(p.get("v"));
        let mut value_type = p.get("vt").and_then(Json::as_str).unwrap_or("").to_string();
        if c.props.is_some() && p.get("v").is_none() {
            if name == "payload" {
                value = text_of(Some(&c.payload));
                value_type = c.payload_type.clone();
            } else if name == "topic" && value_type == "str" {
                value = text_of(Some(&c.topic));
            }
        }
        if value_type.is_empty() {
            value_type = "str".into();
        }
        match compile_prop(name, &value, &value_type, cx.env()) {
            Ok(p) => out.push(p),
            Err(e) => {
                cx.error(&format!("props[{i}]"), e);
                ok = false;
            }
        }
    }
    ok.then_some(out)
}

impl NodeType for InjectType {
    fn type_name(&self) -> &'static str {
        "inject"
    }

    fn descriptor(&self) -> NodeDescriptor {
        NodeDescriptor::new("inject", "common", "node-red/inject", "#a6bbcf", 0, 1)
            .icon("inject.svg")
            .prop(Prop::new(
                "props",
                "Properties",
                Kind::Structured {
                    widget: "injectProps".into(),
                },
                json!([{"p": "payload"}, {"p": "topic", "vt": "str"}]),
            ))
            .prop(Prop::new(
                "payload",
                "Payload",
                Kind::Typed {
                    types: TYPES.iter().map(|t| t.to_string()).collect(),
                    type_field: "payloadType".into(),
                },
                json!(""),
            ))
            .prop(Prop::new("topic", "Topic", Kind::Text, json!("")))
            .prop(Prop::new(
                "once",
                "Inject once after",
                Kind::Bool,
                json!(false),
            ))
            .prop(Prop::new("onceDelay", "seconds", Kind::Number, json!(0.1)))
            .prop(Prop::new(
                "repeat",
                "Repeat every (seconds)",
                Kind::Text,
                json!(""),
            ))
            .prop(Prop::new("crontab", "Cron schedule", Kind::Text, json!("")))
            .prop(Prop::new("name", "Name", Kind::Text, json!("")))
            .help(
                "Injects a message into the flow, by hand, once after start, at an \
                 interval or on a cron schedule.",
            )
    }

    fn build(&self, cx: &mut BuildContext<'_>) -> Option<BuiltNode> {
        let c: InjectConfig = cx.config()?;
        let props = parse_props(&c, cx);
        let mut ok = true;
        let repeat = match c.repeat {
            Some(r) if r > MAX_REPEAT_SECS => {
                cx.error(
                    "repeat",
                    format!("interval too long: {r} s (at most {MAX_REPEAT_SECS} s)"),
                );
                ok = false;
                None
            }
            Some(r) if r > 0.0 => Some(Duration::from_secs_f64(r)),
            _ => None,
        };
        let cron = match c.crontab.trim() {
            "" => None,
            pattern => match croner::Cron::from_str(pattern) {
                Ok(cron) => Some(cron),
                Err(e) => {
                    cx.error(
                        "crontab",
                        format!("invalid cron pattern \"{pattern}\": {e}"),
                    );
                    ok = false;
                    None
                }
            },
        };
        let delay = match c.once_delay {
            Some(d) if d > 0.0 && d.is_finite() => d,
            _ => DEFAULT_ONCE_DELAY_SECS,
        };
        let props = props?;
        ok.then(|| {
            BuiltNode::function(InjectNode {
                props,
                once: c.once.then(|| Duration::from_secs_f64(delay)),
                repeat,
                cron,
            })
        })
    }
}

impl FunctionNode for InjectNode {
    fn on_start(&mut self, handle: &NodeHandle) {
        let (once, repeat, cron) = (self.once, self.repeat, self.cron.clone());
        if once.is_none() && repeat.is_none() && cron.is_none() {
            return;
        }
        let h = handle.clone();
        handle.spawn(async move {
            if let Some(delay) = once {
                tokio::time::sleep(delay).await;
                if !h.deliver_to_self(Msg::new()).await {
                    return;
                }
            }
            if let Some(every) = repeat {
                let mut ticks =
                    tokio::time::interval_at(tokio::time::Instant::now() + every, every);
                ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    ticks.tick().await;
                    if !h.deliver_to_self(Msg::new()).await {
                        return;
                    }
                }
            } else if let Some(cron) = cron {
                loop {
                    let now = chrono::Local::now();
                    let Ok(next) = cron.find_next_occurrence(&now, false) else {
                        return;
                    };
                    let wait = (next - now).to_std().unwrap_or(Duration::from_millis(1));
                    tokio::time::sleep(wait).await;
                    if !h.deliver_to_self(Msg::new()).await {
                        return;
                    }
                }
            }
        });
    }

    fn on_input(&mut self, mut msg: Msg, cx: &mut NodeCx<'_>) {
        let user_props: Option<Vec<InjectProp>> = match msg.remove(USER_INJECT_PROPS) {
            Some(Value::Array(a)) => Some(
                a.iter()
                    .filter_map(|p| {
                        let o = p.as_object()?;
                        let name = o.get("p")?.as_str()?;
                        let value = o.get("v").map(Value::to_js_string).unwrap_or_default();
                        let value_type = o.get("vt").and_then(Value::as_str).unwrap_or("str");
                        compile_prop(name, &value, value_type, &cx.info().env).ok()
                    })
                    .collect(),
            ),
            _ => None,
        };
        let props = user_props.as_ref().unwrap_or(&self.props);
        let mut errors = Vec::new();
        for p in props {
            match p.value.eval(&msg, cx) {
                Ok(Some(v)) => {
                    if let Err(e) = msg.set_expr(&p.path, v) {
                        errors.push(e.to_string());
                    }
                }
                Ok(None) => {
                    let _ = msg.delete_expr(&p.path);
                }
                Err(e) => errors.push(e),
            }
        }
        if errors.is_empty() {
            cx.done(&msg);
            cx.send(msg);
        } else {
            cx.error(errors.join("; "), msg);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::test_util::{start, try_start};
    use flowd_engine::{Msg, Value};
    use serde_json::json;
    use std::time::Duration;

    #[tokio::test]
    async fn trigger_sets_every_prop_in_order() {
        std::env::set_var("FLOWD_TEST_INJECT_ENV", "from-env");
        let mut f = start(json!([{
            "id":"i","type":"inject",
            "props":[
                {"p":"payload"},
                {"p":"topic","vt":"str"},
                {"p":"n","v":"1e3","vt":"num"},
                {"p":"b","v":"True","vt":"bool"},
                {"p":"j.deep","v":"{\"a\":[1]}","vt":"json"},
                {"p":"bin","v":"[104,105]","vt":"bin"},
                {"p":"e","v":"FLOWD_TEST_INJECT_ENV","vt":"env"},
                {"p":"e2","v":"x-${FLOWD_TEST_INJECT_ENV}-y","vt":"env"},
                {"p":"d","v":"","vt":"date"}
            ],
            "payload":"{\"t\":1}","payloadType":"json","topic":"sensors/a"
        }]))
        .await;
        f.send("i", Msg::new()).await;
        let m = f.next_from("i").await.msg;
        assert_eq!(m.payload().unwrap().to_json(), r#"{"t":1}"#);
        assert_eq!(m.topic(), Some(&Value::str("sensors/a")));
        assert_eq!(m.get("n"), Some(&Value::Number(1000.0)));
        assert_eq!(m.get("b"), Some(&Value::Bool(true)));
        assert_eq!(m.get("j").unwrap().to_json(), r#"{"deep":{"a":[1]}}"#);
        assert_eq!(
            m.get("bin"),
            Some(&Value::Buffer(bytes::Bytes::from_static(b"hi")))
        );
        assert_eq!(m.get("e"), Some(&Value::str("from-env")));
        assert_eq!(m.get("e2"), Some(&Value::str("x-from-env-y")));
        let d = m.get("d").unwrap().as_f64().unwrap();
        assert!(d > 1.7e12, "{d}");
        f.stop().await;
    }

    #[tokio::test]
    async fn legacy_form_and_user_props() {
        let mut f = start(
            json!([{"id":"i","type":"inject","payload":"42","payloadType":"num","topic":"t"}]),
        )
        .await;
        f.send("i", Msg::new()).await;
        let m = f.next_from("i").await.msg;
        assert_eq!(
            (m.payload(), m.topic()),
            (Some(&Value::Number(42.0)), Some(&Value::str("t")))
        );
        let mut trigger = Msg::new();
        trigger.insert(
            "__user_inject_props__",
            flowd_engine::value::json::parse(r#"[{"p":"payload","v":"over","vt":"str"}]"#).unwrap(),
        );
        f.send("i", trigger).await;
        let m = f.next_from("i").await.msg;
        assert_eq!(m.payload(), Some(&Value::str("over")));
        assert!(m.topic().is_none());
        assert!(m.get("__user_inject_props__").is_none());
        f.stop().await;
    }

    #[tokio::test(start_paused = true)]
    async fn once_then_repeat() {
        let mut f = start(json!([{"id":"i","type":"inject","once":true,"onceDelay":"2","repeat":"5","props":[{"p":"payload","v":"tick","vt":"str"}]}])).await;
        assert!(f
            .next_from_within("i", Duration::from_millis(1900))
            .await
            .is_none());
        let first = f.next_from_within("i", Duration::from_millis(200)).await;
        assert!(first.is_some(), "once fires after 2 s");
        assert!(f
            .next_from_within("i", Duration::from_millis(4900))
            .await
            .is_none());
        assert!(
            f.next_from_within("i", Duration::from_millis(200))
                .await
                .is_some(),
            "then every 5 s"
        );
        assert!(f
            .next_from_within("i", Duration::from_millis(5100))
            .await
            .is_some());
        f.stop().await;
    }

    #[tokio::test]
    async fn context_values_are_read_at_trigger_time() {
        let mut f = start(json!([
            {"id":"i","type":"inject","props":[{"p":"payload","v":"count","vt":"flow"}]}
        ]))
        .await;
        f.send("i", Msg::new()).await;
        let m = f.next_from("i").await.msg;
        assert!(
            m.payload().is_none(),
            "a missing context key leaves payload undefined"
        );
        f.stop().await;
    }

    #[tokio::test]
    async fn invalid_props_and_schedules_are_validation_errors() {
        let e = try_start(json!([{"id":"i","type":"inject","repeat":"3000000","crontab":"not a cron",
            "props":[{"p":"payload","v":"{bad","vt":"json"},{"p":"x","v":"1","vt":"jsonata"},{"p":"y","v":"1","vt":"weird"}]}]))
            .await
            .err()
            .unwrap();
        let fields: Vec<String> = e.iter().filter_map(|e| e.field.clone()).collect();
        assert_eq!(
            fields,
            ["props[0]", "props[1]", "props[2]", "repeat", "crontab"]
        );
    }
}
