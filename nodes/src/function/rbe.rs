//! `rbe` node ("filter" in the palette): report by exception.
//!
//! Passes a message only when the watched property changed (`rbe`, `rbei`)
//! or moved by more / less than a band (`deadband`, `deadbandEq`,
//! `narrowband`, `narrowbandEq`), with separate state per topic. It forwards
//! the very message it received and never modifies it. `msg.reset` clears the
//! state of `msg.topic` (or all state).

use crate::typed_value::get_property;
use flowd_engine::config_de;
use flowd_engine::node::{BuildContext, BuiltNode, FunctionNode, NodeCx, NodeType};
use flowd_engine::registry::{NodeDescriptor, PropertyDescriptor as Prop, PropertyKind as Kind};
use flowd_engine::value::path::Path;
use flowd_engine::value::{parse_float, string_to_number, Str};
use flowd_engine::{Msg, Value};
use serde::Deserialize;
use serde_json::{json, Value as Json};
use std::collections::HashMap;

/// The `rbe` node type.
pub struct RbeType;

/// State key of messages without a (truthy) topic.
const NO_TOPIC: &str = "_no_topic";

/// Filter mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Block unless value changes.
    Rbe,
    /// Block unless value changes, ignoring the initial value.
    Rbei,
    /// Pass when the change is greater than the gap.
    Deadband,
    /// Pass when the change is greater than or equal to the gap.
    DeadbandEq,
    /// Pass when the change is at most the gap.
    Narrowband,
    /// Pass when the change is less than the gap.
    NarrowbandEq,
}

/// The band: a fixed size or a percentage of the previous value.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Gap {
    Fixed(f64),
    Percent(f64),
}

#[derive(Deserialize)]
#[serde(default)]
struct RbeConfig {
    #[serde(deserialize_with = "config_de::string")]
    func: String,
    #[serde(deserialize_with = "config_de::string")]
    gap: String,
    #[serde(deserialize_with = "config_de::string")]
    start: String,
    #[serde(deserialize_with = "config_de::string")]
    inout: String,
    #[serde(deserialize_with = "config_de::string")]
    property: String,
    #[serde(deserialize_with = "config_de::string")]
    topi: String,
}

impl Default for RbeConfig {
    fn default() -> Self {
        RbeConfig {
            func: "rbe".into(),
            gap: String::new(),
            start: String::new(),
            inout: "out".into(),
            property: "payload".into(),
            topi: "topic".into(),
        }
    }
}

/// Last value per topic.
#[derive(Debug, Clone)]
enum Previous {
    Value(Value),
    Number(f64),
}

struct RbeNode {
    mode: Mode,
    gap: Gap,
    start: Option<f64>,
    compare_in: bool,
    separate_topics: bool,
    property: Path,
    topic_property: Path,
    previous: HashMap<Str, Previous, foldhash::fast::RandomState>,
}

impl NodeType for RbeType {
    fn type_name(&self) -> &'static str {
        "rbe"
    }

    fn descriptor(&self) -> NodeDescriptor {
        let modes = [
            ("rbe", "block unless value changes"),
            ("rbei", "block unless value changes (ignore initial value)"),
            ("deadband", "block unless value change is greater than"),
            (
                "deadbandEq",
                "block unless value change is greater or equal to",
            ),
            ("narrowband", "block if value change is greater than"),
            (
                "narrowbandEq",
                "block if value change is greater or equal to",
            ),
        ];
        NodeDescriptor::new("rbe", "function", "node-red/rbe", "#E2D96E", 1, 1)
            .label("filter")
            .icon("rbe.png")
            .prop(Prop::new(
                "func",
                "Mode",
                Kind::Select {
                    options: modes
                        .iter()
                        .map(|(v, l)| (v.to_string(), l.to_string()))
                        .collect(),
                },
                json!("rbe"),
            ))
            .prop(Prop::new(
                "gap",
                "Band (number or %)",
                Kind::Text,
                json!(""),
            ))
            .prop(Prop::new("start", "Start value", Kind::Text, json!("")))
            .prop(Prop::new(
                "inout",
                "Compare with",
                Kind::Select {
                    options: vec![
                        ("out".into(), "last valid output value".into()),
                        ("in".into(), "last input value".into()),
                    ],
                },
                json!("out"),
            ))
            .prop(Prop::new("property", "Property", Kind::Text, json!("payload")).required())
            .prop(Prop::new(
                "septopics",
                "Apply mode separately for each",
                Kind::Bool,
                json!(true),
            ))
            .prop(Prop::new(
                "topi",
                "Topic property",
                Kind::Text,
                json!("topic"),
            ))
            .prop(Prop::new("name", "Name", Kind::Text, json!("")))
            .help(
                "Report by exception: passes a message only if its property changed, or \
                 changed by more (deadband) or less (narrowband) than a band, per topic.\n\n\
                 `msg.reset` clears the stored value of `msg.topic` (or all).",
            )
    }

    fn build(&self, cx: &mut BuildContext<'_>) -> Option<BuiltNode> {
        let c: RbeConfig = cx.config()?;
        let mut ok = true;
        let mode = match c.func.as_str() {
            "" | "rbe" => Mode::Rbe,
            "rbei" => Mode::Rbei,
            "deadband" => Mode::Deadband,
            "deadbandEq" => Mode::DeadbandEq,
            "narrowband" => Mode::Narrowband,
            "narrowbandEq" => Mode::NarrowbandEq,
            other => {
                cx.error("func", format!("unknown mode \"{other}\""));
                ok = false;
                Mode::Rbe
            }
        };
        let gap_text = c.gap.trim();
        // Node-RED reads a percentage with parseFloat ("10%" -> 10, "0x10%"
        // -> 0) and a fixed gap with Number ("0x10" -> 16).
        let gap = if gap_text.ends_with('%') {
            let pct = parse_float(&Value::str(gap_text));
            Gap::Percent(if pct.is_nan() { 0.0 } else { pct })
        } else {
            Gap::Fixed(string_to_number(gap_text))
        };
        let gap_value = match gap {
            Gap::Fixed(g) | Gap::Percent(g) => g,
        };
        if gap_value.is_nan() || gap_value < 0.0 {
            cx.error(
                "gap",
                format!("\"{}\" is not a non-negative number or percentage", c.gap),
            );
            ok = false;
        }
        // A start of number 0 is no start value in Node-RED (`n.start || ''`).
        let start_is_zero = cx
            .props()
            .get("start")
            .is_some_and(|j| j.as_f64() == Some(0.0));
        let start = match c.start.trim() {
            _ if start_is_zero => None,
            "" => None,
            s => {
                let n = string_to_number(s);
                if n.is_nan() {
                    cx.error("start", format!("\"{s}\" is not a number"));
                    ok = false;
                }
                Some(n)
            }
        };
        let compare_in = match c.inout.as_str() {
            "" | "out" => false,
            "in" => true,
            other => {
                cx.error(
                    "inout",
                    format!("expected \"out\" or \"in\", found \"{other}\""),
                );
                ok = false;
                false
            }
        };
        // Only an explicit boolean false turns separate topics off.
        let separate_topics = !matches!(cx.props().get("septopics"), Some(Json::Bool(false)));
        let prop = if c.property.is_empty() {
            "payload"
        } else {
            &c.property
        };
        let property = Path::parse(prop)
            .map_err(|e| cx.error("property", e.to_string()))
            .ok();
        let topi = if c.topi.is_empty() { "topic" } else { &c.topi };
        let topic_property = Path::parse(topi)
            .map_err(|e| cx.error("topi", e.to_string()))
            .ok();
        let (property, topic_property) = (property?, topic_property?);
        ok.then(|| {
            BuiltNode::function(RbeNode {
                mode,
                gap,
                start,
                compare_in,
                separate_topics,
                property,
                topic_property,
                previous: HashMap::default(),
            })
        })
    }
}

/// JavaScript `===` for a new value against the stored one.
fn strictly_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x == y,
        (Value::String(x), Value::String(y)) => x == y,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        _ => false,
    }
}

fn is_object(v: &Value) -> bool {
    matches!(
        v,
        Value::Null | Value::Array(_) | Value::Object(_) | Value::Buffer(_)
    )
}

impl RbeNode {
    /// Returns true when the message passes.
    fn changed(&mut self, key: &str, value: &Value) -> bool {
        let initial_blocked = self.mode == Mode::Rbei;
        let Some(slot) = self.previous.get_mut(key) else {
            // No state yet: compared with an implicit `{}` for objects.
            let stored = if matches!(value, Value::Object(o) if o.is_empty()) {
                self.previous
                    .insert(Str::new(key), Previous::Value(Value::empty_object()));
                return false;
            } else {
                value.clone()
            };
            self.previous.insert(Str::new(key), Previous::Value(stored));
            return !initial_blocked;
        };
        let equal = match slot {
            Previous::Value(p) if is_object(value) => {
                if is_object(p) {
                    value.deep_equals(p)
                } else {
                    // A non-object previous value is first replaced by `{}`.
                    *slot = Previous::Value(Value::empty_object());
                    matches!(value, Value::Object(o) if o.is_empty())
                }
            }
            Previous::Value(p) => strictly_equal(value, p),
            Previous::Number(_) => false,
        };
        if equal {
            return false;
        }
        *slot = Previous::Value(value.clone());
        true
    }

    fn in_band(&mut self, key: &str, n: f64) -> bool {
        let narrow = matches!(self.mode, Mode::Narrowband | Mode::NarrowbandEq);
        let mut prev = match self.previous.get(key) {
            Some(Previous::Number(p)) => Some(*p),
            Some(Previous::Value(v)) => Some(v.to_number()),
            None => None,
        };
        if prev.is_none() && narrow {
            prev = Some(self.start.unwrap_or(n));
        }
        let gap = match self.gap {
            Gap::Fixed(g) => g,
            Gap::Percent(pct) => {
                let g = (prev.unwrap_or(f64::NAN) * pct / 100.0).abs();
                if g.is_nan() {
                    0.0
                } else {
                    g
                }
            }
        };
        if prev.is_none() && self.mode == Mode::NarrowbandEq {
            prev = Some(n);
        }
        let reference = prev.unwrap_or(n - gap - 1.0);
        let d = (n - reference).abs();
        let pass = if d == gap {
            matches!(self.mode, Mode::DeadbandEq | Mode::Narrowband)
        } else if d > gap {
            matches!(self.mode, Mode::Deadband | Mode::DeadbandEq)
        } else if d < gap {
            narrow
        } else {
            false
        };
        let stored = if self.compare_in || pass {
            n
        } else {
            reference
        };
        self.previous
            .insert(Str::new(key), Previous::Number(stored));
        pass
    }
}

impl FunctionNode for RbeNode {
    fn on_input(&mut self, msg: Msg, cx: &mut NodeCx<'_>) {
        // Node-RED reads both properties as JavaScript does (`length`,
        // `[msg.x]` references); a failed read is undefined.
        let topic = get_property(&msg, &self.topic_property).ok().flatten();
        let topic = topic.as_deref();
        if msg.contains_key("reset") {
            let string_topic = matches!(topic, Some(Value::String(s)) if !s.is_empty());
            if self.separate_topics && string_topic {
                let key = msg
                    .topic()
                    .map_or_else(|| "undefined".to_string(), Value::to_js_string);
                self.previous.remove(key.as_str());
            } else {
                self.previous.clear();
            }
        }
        let value = get_property(&msg, &self.property).ok().flatten();
        let Some(value) = value.as_deref() else {
            return;
        };
        let key_text;
        let key: &str = match topic {
            Some(t) if self.separate_topics && t.is_truthy() => match t {
                Value::String(s) => s.as_str(),
                other => {
                    key_text = other.to_js_string();
                    &key_text
                }
            },
            _ => NO_TOPIC,
        };
        let pass = match self.mode {
            Mode::Rbe | Mode::Rbei => self.changed(key, value),
            _ => {
                let n = parse_float(value);
                if n.is_nan() {
                    cx.warn("no number found in payload");
                    return;
                }
                self.in_band(key, n)
            }
        };
        if pass {
            cx.send(msg);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::test_util::{start, start_one, try_start};
    use flowd_engine::testing::TestFlow;
    use flowd_engine::value::json;
    use flowd_engine::{Msg, Value};
    use serde_json::json;
    use std::time::Duration;

    async fn rbe(config: serde_json::Value) -> TestFlow {
        start_one("r", "rbe", config).await
    }

    fn msg(topic: Option<&str>, payload: Option<&str>) -> Msg {
        let mut m = Msg::new();
        if let Some(t) = topic {
            m.insert("topic", Value::str(t));
        }
        if let Some(p) = payload {
            m.insert("payload", json::parse(p).unwrap());
        }
        m
    }

    /// Sends each (topic, payload JSON) and returns the payloads that passed.
    async fn run(config: serde_json::Value, inputs: &[(Option<&str>, &str)]) -> Vec<String> {
        let mut f = rbe(config).await;
        for (t, p) in inputs {
            f.send("r", msg(*t, Some(p))).await;
        }
        let out = f.collect_from("r", Duration::from_millis(150)).await;
        f.stop().await;
        out.iter()
            .map(|s| json::stringify(s.msg.payload().unwrap()))
            .collect()
    }

    #[tokio::test]
    async fn blocks_unless_changed_with_strict_types() {
        let got = run(
            json!({"func":"rbe"}),
            &[
                (None, "1"),
                (None, "1"),
                (None, "1.0"),
                (None, "\"1\""),
                (None, "2"),
                (None, "2"),
            ],
        )
        .await;
        assert_eq!(got, ["1", "\"1\"", "2"]);
    }

    #[tokio::test]
    async fn the_property_is_read_as_javascript_reads_it() {
        // `length` of strings and arrays, as Node-RED's getMessageProperty.
        let got = run(
            json!({"func":"rbe","property":"payload.length"}),
            &[
                (None, "\"abc\""),
                (None, "\"xyz\""),
                (None, "[1,2]"),
                (None, "{\"length\":2}"),
                (None, "{\"length\":3}"),
            ],
        )
        .await;
        assert_eq!(got, ["\"abc\"", "[1,2]", "{\"length\":3}"]);
    }

    #[tokio::test]
    async fn gaps_are_read_as_node_red_reads_them() {
        // A percentage goes through parseFloat: "0x10%" is 0%, "10%%" is 10%.
        let inputs = [(None, "100"), (None, "101"), (None, "101"), (None, "102")];
        let got = run(json!({"func":"deadband","gap":"0x10%"}), &inputs).await;
        assert_eq!(got, ["100", "101", "102"]);
        let got = run(
            json!({"func":"deadband","gap":"10%%"}),
            &[(None, "100"), (None, "105"), (None, "111"), (None, "125")],
        )
        .await;
        assert_eq!(got, ["100", "111", "125"]);
        // A start of number 0 is no start value.
        let got = run(
            json!({"func":"narrowband","gap":"5","start":0}),
            &[(None, "100"), (None, "102"), (None, "3")],
        )
        .await;
        assert_eq!(got, ["100", "102"]);
    }

    #[tokio::test]
    async fn rbei_ignores_the_first_value_per_topic() {
        let got = run(
            json!({"func":"rbei"}),
            &[
                (Some("a"), "1"),
                (Some("a"), "2"),
                (Some("b"), "5"),
                (Some("b"), "5"),
                (Some("b"), "6"),
            ],
        )
        .await;
        assert_eq!(got, ["2", "6"]);
    }

    #[tokio::test]
    async fn objects_compare_deeply_and_the_first_empty_object_is_swallowed() {
        let got = run(
            json!({"func":"rbe"}),
            &[
                (None, "{}"),
                (None, "{\"a\":1,\"b\":2}"),
                (None, "{\"b\":2,\"a\":1}"),
                (None, "[1]"),
                (None, "{\"0\":1}"),
                (None, "null"),
                (None, "null"),
                (None, "{}"),
            ],
        )
        .await;
        assert_eq!(got, ["{\"a\":1,\"b\":2}", "[1]", "{\"0\":1}", "null", "{}"]);
    }

    #[tokio::test]
    async fn separate_topics_and_shared_bucket() {
        let got = run(
            json!({}),
            &[
                (Some("a"), "1"),
                (Some("b"), "1"),
                (None, "1"),
                (Some(""), "1"),
                (Some("a"), "1"),
            ],
        )
        .await;
        assert_eq!(got, ["1", "1", "1"]);
        let got = run(
            json!({"septopics": false}),
            &[(Some("a"), "1"), (Some("b"), "1")],
        )
        .await;
        assert_eq!(got, ["1"]);
        // Only boolean false turns it off.
        let got = run(
            json!({"septopics": "false"}),
            &[(Some("a"), "1"), (Some("b"), "1")],
        )
        .await;
        assert_eq!(got, ["1", "1"]);
    }

    #[tokio::test]
    async fn reset_clears_msg_topic_and_is_then_evaluated() {
        let mut f = rbe(json!({})).await;
        f.send("r", msg(Some("a"), Some("1"))).await;
        f.send("r", msg(Some("b"), Some("1"))).await;
        let mut reset = msg(Some("a"), None);
        reset.insert("reset", Value::str(""));
        f.send("r", reset).await; // swallowed: no payload
        f.send("r", msg(Some("a"), Some("1"))).await; // passes again
        f.send("r", msg(Some("b"), Some("1"))).await; // still blocked
        let mut reset_with_payload = msg(Some("b"), Some("1"));
        reset_with_payload.insert("reset", Value::Bool(false));
        f.send("r", reset_with_payload).await; // cleared, then passes
        let got: Vec<String> = f
            .collect_from("r", Duration::from_millis(150))
            .await
            .iter()
            .map(|s| {
                format!(
                    "{}={}",
                    s.msg.topic().unwrap().to_js_string(),
                    s.msg.payload().unwrap().to_json()
                )
            })
            .collect();
        assert_eq!(got, ["a=1", "b=1", "a=1", "b=1"]);
        f.stop().await;
    }

    #[tokio::test]
    async fn reset_without_string_topic_clears_everything() {
        let mut f = rbe(json!({})).await;
        f.send("r", msg(Some("a"), Some("1"))).await;
        let mut reset = Msg::new();
        reset.insert("reset", Value::Bool(true));
        f.send("r", reset).await;
        f.send("r", msg(Some("a"), Some("1"))).await;
        assert_eq!(
            f.collect_from("r", Duration::from_millis(150)).await.len(),
            2
        );
        f.stop().await;
    }

    #[tokio::test]
    async fn forwards_the_same_message_unchanged() {
        let mut f = rbe(json!({"property":"payload.temp"})).await;
        let m = msg(Some("s"), Some("{\"temp\":21.5,\"x\":1}"));
        let id = m.msgid().unwrap().to_string();
        f.send("r", m).await;
        f.send("r", msg(Some("s"), Some("{\"temp\":21.5,\"x\":2}")))
            .await;
        f.send("r", msg(Some("s"), Some("{\"x\":3}"))).await; // no temp: ignored
        let out = f.collect_from("r", Duration::from_millis(150)).await;
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].msg.msgid(), Some(id.as_str()));
        assert_eq!(
            out[0].msg.payload().unwrap().to_json(),
            "{\"temp\":21.5,\"x\":1}"
        );
        f.stop().await;
    }

    #[tokio::test]
    async fn deadband_passes_first_and_then_greater_changes() {
        let got = run(
            json!({"func":"deadband","gap":"2"}),
            &[
                (None, "10"),
                (None, "11"),
                (None, "12"),
                (None, "12.5"),
                (None, "8"),
            ],
        )
        .await;
        assert_eq!(got, ["10", "12.5", "8"]);
        let got = run(
            json!({"func":"deadbandEq","gap":"2"}),
            &[(None, "10"), (None, "11"), (None, "12"), (None, "13")],
        )
        .await;
        assert_eq!(got, ["10", "12"]);
    }

    #[tokio::test]
    async fn band_modes_use_parse_float_and_forward_the_original() {
        let got = run(
            json!({"func":"deadband","gap":"1"}),
            &[
                (None, "\"12abc\""),
                (None, "\" 14 \""),
                (None, "\"16 volts\""),
                (None, "\"abc\""),
                (None, "true"),
            ],
        )
        .await;
        assert_eq!(got, ["\"12abc\"", "\" 14 \"", "\"16 volts\""]);
    }

    #[tokio::test]
    async fn non_numbers_warn_and_leave_state_alone() {
        let f = rbe(json!({"func":"deadband","gap":"1"})).await;
        f.send("r", msg(None, Some("\"abc\""))).await;
        f.observer
            .wait_until(Duration::from_secs(1), "the warning", |o| {
                o.logs()
                    .iter()
                    .any(|l| l.text == "no number found in payload")
            })
            .await;
        f.stop().await;
    }

    #[tokio::test]
    async fn narrowband_modes_and_lock_in() {
        let got = run(
            json!({"func":"narrowband","gap":"5"}),
            &[(None, "10"), (None, "15"), (None, "21"), (None, "19")],
        )
        .await;
        assert_eq!(got, ["10", "15", "19"]);
        // narrowbandEq locks onto its first value when the input jumps by >= the band.
        let got = run(
            json!({"func":"narrowbandEq","gap":"10"}),
            &[(None, "0"), (None, "10"), (None, "20"), (None, "30")],
        )
        .await;
        assert_eq!(got, ["0"]);
        let got = run(
            json!({"func":"narrowband","gap":"5","start":"100"}),
            &[(None, "10"), (None, "103"), (None, "104")],
        )
        .await;
        assert_eq!(got, ["103", "104"]);
    }

    #[tokio::test]
    async fn percentage_band_follows_the_stored_value() {
        let got = run(
            json!({"func":"deadband","gap":"10%"}),
            &[
                (None, "100"),
                (None, "109"),
                (None, "111"),
                (None, "121"),
                (None, "123"),
                (None, "0"),
                (None, "0.1"),
            ],
        )
        .await;
        assert_eq!(got, ["100", "111", "123", "0", "0.1"]);
    }

    #[tokio::test]
    async fn inout_in_compares_with_the_last_input() {
        let got = run(
            json!({"func":"deadband","gap":"2","inout":"in"}),
            &[(None, "0"), (None, "1"), (None, "2"), (None, "5")],
        )
        .await;
        assert_eq!(got, ["0", "5"]);
        let got = run(
            json!({"func":"deadband","gap":"2"}),
            &[(None, "0"), (None, "1"), (None, "2"), (None, "5")],
        )
        .await;
        assert_eq!(got, ["0", "5"]);
        let got = run(
            json!({"func":"deadband","gap":"1.5"}),
            &[(None, "0"), (None, "1"), (None, "2"), (None, "3")],
        )
        .await;
        assert_eq!(got, ["0", "2"]);
        let got = run(
            json!({"func":"deadband","gap":"1.5","inout":"in"}),
            &[(None, "0"), (None, "1"), (None, "2"), (None, "3")],
        )
        .await;
        assert_eq!(got, ["0"]);
    }

    #[tokio::test]
    async fn zero_gap_deadband_passes_every_change() {
        let got = run(
            json!({"func":"deadband","gap":""}),
            &[(None, "1"), (None, "1"), (None, "2")],
        )
        .await;
        assert_eq!(got, ["1", "2"]);
    }

    #[tokio::test]
    async fn never_completes() {
        let mut f = start(json!([
            {"id":"r","type":"rbe"},
            {"id":"c","type":"complete","scope":["r"]}
        ]))
        .await;
        f.send("r", Msg::with_payload(1.0)).await;
        f.next_from("r").await;
        f.expect_nothing_from("c", Duration::from_millis(100)).await;
        f.stop().await;
    }

    #[tokio::test]
    async fn invalid_settings_are_validation_errors() {
        let e = try_start(json!([{"id":"r","type":"rbe","func":"magic","gap":"abc","start":"x","inout":"sideways","property":"a..b"}]))
            .await
            .err()
            .unwrap();
        let fields: Vec<String> = e.iter().filter_map(|e| e.field.clone()).collect();
        assert_eq!(fields, ["func", "gap", "start", "inout", "property"]);
        assert!(e
            .to_string()
            .contains("\"abc\" is not a non-negative number"));
    }
}
