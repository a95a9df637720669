//! `switch` node: routes a message to the outputs whose rule matches the
//! tested property, one output per rule, with JavaScript comparison
//! semantics (`==` is loose, relational operators coerce).
//!
//! `checkall: "false"` stops at the first match; `else` matches when no rule
//! since the previous `else` matched; the `prev` value type is the value the
//! previous message tested (null at first). Like Node-RED, the node never
//! signals completion, so `complete` nodes do not fire for it. Rule values
//! are prepared at build; an error evaluating a rule (e.g. an invalid regular
//! expression) goes to catch nodes and nothing is sent.

use crate::typed_value::{
    compile, compile_regex, raw_number, Typed, TypedError, JSONATA_UNSUPPORTED,
};
use flowd_engine::config_de;
use flowd_engine::node::{BuildContext, BuiltNode, FunctionNode, NodeCx, NodeType};
use flowd_engine::registry::{NodeDescriptor, PropertyDescriptor as Prop, PropertyKind as Kind};
use flowd_engine::value::path::js_property;
use flowd_engine::value::{js_compare, json, Value};
use flowd_engine::Msg;
use serde::{Deserialize, Deserializer};
use serde_json::{json, Value as Json};
use std::cmp::Ordering;

/// The `switch` node type.
pub struct SwitchType;

/// Keeps a present `null` distinct from an absent property.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Json>, D::Error> {
    Json::deserialize(d).map(Some)
}

#[derive(Deserialize)]
#[serde(default)]
struct SwitchConfig {
    #[serde(deserialize_with = "config_de::string")]
    property: String,
    #[serde(rename = "propertyType", deserialize_with = "config_de::string")]
    property_type: String,
    rules: Vec<RuleConfig>,
    checkall: Json,
    #[serde(deserialize_with = "config_de::boolean")]
    repair: bool,
}

impl Default for SwitchConfig {
    fn default() -> Self {
        SwitchConfig {
            property: "payload".into(),
            property_type: "msg".into(),
            rules: vec![RuleConfig {
                t: "eq".into(),
                v: Some(json!("")),
                vt: "str".into(),
                ..RuleConfig::default()
            }],
            checkall: json!("true"),
            repair: false,
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RuleConfig {
    #[serde(deserialize_with = "config_de::string")]
    t: String,
    #[serde(deserialize_with = "present")]
    v: Option<Json>,
    #[serde(deserialize_with = "config_de::string")]
    vt: String,
    #[serde(deserialize_with = "present")]
    v2: Option<Json>,
    #[serde(deserialize_with = "config_de::string")]
    v2t: String,
    case: Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Neq,
    Lt,
    Lte,
    Gt,
    Gte,
    Btwn,
    Cont,
    Regex,
    True,
    False,
    Null,
    Nnull,
    Empty,
    Nempty,
    Istype,
    Hask,
    Else,
}

impl Op {
    fn parse(t: &str) -> Result<Op, String> {
        Ok(match t {
            "eq" => Op::Eq,
            "neq" => Op::Neq,
            "lt" => Op::Lt,
            "lte" => Op::Lte,
            "gt" => Op::Gt,
            "gte" => Op::Gte,
            "btwn" => Op::Btwn,
            "cont" => Op::Cont,
            "regex" => Op::Regex,
            "true" => Op::True,
            "false" => Op::False,
            "null" => Op::Null,
            "nnull" => Op::Nnull,
            "empty" => Op::Empty,
            "nempty" => Op::Nempty,
            "istype" => Op::Istype,
            "hask" => Op::Hask,
            "else" => Op::Else,
            "head" | "tail" | "index" => {
                return Err(format!(
                    "the \"{t}\" rule (message sequences) is not supported yet"
                ))
            }
            "jsonata_exp" => return Err(JSONATA_UNSUPPORTED.to_string()),
            other => return Err(format!("unknown rule type \"{other}\"")),
        })
    }
}

/// A rule operand.
#[derive(Debug)]
enum Operand {
    Typed(Typed),
    /// The value the previous message tested.
    Prev,
}

#[derive(Debug)]
struct Rule {
    op: Op,
    v: Operand,
    v2: Operand,
    /// Regex rules with a constant pattern: compiled at build.
    regex: Option<Result<regress::Regex, String>>,
    icase: bool,
}

struct SwitchNode {
    property: Typed,
    rules: Vec<Rule>,
    checkall: bool,
    prev: Option<Value>,
    /// Matching ports of the current message (reused).
    matched: Vec<usize>,
}

impl NodeType for SwitchType {
    fn type_name(&self) -> &'static str {
        "switch"
    }

    fn descriptor(&self) -> NodeDescriptor {
        NodeDescriptor::new("switch", "function", "node-red/switch", "#E2D96E", 1, 1)
            .icon("switch.svg")
            .prop(
                Prop::new(
                    "property",
                    "Property",
                    Kind::Typed {
                        types: vec!["msg".into(), "flow".into(), "global".into(), "env".into()],
                        type_field: "propertyType".into(),
                    },
                    json!("payload"),
                )
                .required(),
            )
            .prop(Prop::new(
                "rules",
                "Rules",
                Kind::Structured {
                    widget: "switch-rules".into(),
                },
                json!([{"t": "eq", "v": "", "vt": "str"}]),
            ))
            .prop(Prop::new(
                "checkall",
                "Checking",
                Kind::Select {
                    options: vec![
                        ("true".into(), "checking all rules".into()),
                        ("false".into(), "stopping after first match".into()),
                    ],
                },
                json!("true"),
            ))
            .prop(Prop::new("repair", "Recreate message sequences", Kind::Bool, json!(false)))
            .prop(Prop::new("name", "Name", Kind::Text, json!("")))
            .help(
                "Routes messages by the value of a property: each rule has its own output.\n\n\
                 Comparisons follow JavaScript (`==` is loose, so 5 equals \"5\"; `<`, `>` \
                 coerce). Other rules: between (bounds in either order), contains, regex, \
                 is true/false/null/not null/empty/not empty, is of type, has key, and \
                 otherwise (matches when no rule since the previous otherwise matched). \
                 With \"stopping after first match\" only the first matching output fires. \
                 The *previous value* type compares with the value the previous message had.\n\n\
                 JSONata and message-sequence rules (head, tail, index) are not supported by flowd yet.",
            )
    }

    fn build(&self, cx: &mut BuildContext<'_>) -> Option<BuiltNode> {
        let c: SwitchConfig = cx.config()?;
        let env = cx.env().clone();
        let mut ok = true;
        let prop_type = if c.property_type.is_empty() {
            "msg"
        } else {
            &c.property_type
        };
        let property = match compile(prop_type, Some(&Json::String(c.property.clone())), &env) {
            Ok(t) => Some(t),
            Err(TypedError::Jsonata) => {
                cx.error("propertyType", JSONATA_UNSUPPORTED);
                None
            }
            Err(TypedError::Invalid(m)) => {
                cx.error("property", m);
                None
            }
        };
        let mut rules = Vec::with_capacity(c.rules.len());
        for (i, r) in c.rules.iter().enumerate() {
            match build_rule(r, &env) {
                Ok(rule) => rules.push(rule),
                Err(errors) => {
                    ok = false;
                    for (f, m) in errors {
                        cx.error(&format!("rules[{i}].{f}"), m);
                    }
                }
            }
        }
        let property = property?;
        if !ok {
            return None;
        }
        Some(BuiltNode::function(SwitchNode {
            property,
            rules,
            checkall: c.checkall != json!("false"),
            prev: Some(Value::Null),
            matched: Vec::new(),
        }))
    }
}

/// The type Node-RED infers for an untyped operand.
fn infer_type(t: &str, raw: Option<&Json>) -> String {
    if !t.is_empty() {
        t.to_string()
    } else if raw_number(raw).is_nan() {
        "str".into()
    } else {
        "num".into()
    }
}

fn build_rule(
    r: &RuleConfig,
    env: &flowd_engine::flows::env::NodeEnv,
) -> Result<Rule, Vec<(&'static str, String)>> {
    let mut errors = Vec::new();
    let op = Op::parse(&r.t).map_err(|e| errors.push(("t", e))).ok();
    let vt = infer_type(&r.vt, r.v.as_ref());
    let v = match vt.as_str() {
        "prev" => Some(Operand::Prev),
        "json" => Some(Operand::Typed(Typed::Const(Value::str("json")))),
        "null" => Some(Operand::Typed(Typed::Const(Value::str("null")))),
        _ => match compile(&vt, r.v.as_ref(), env) {
            Ok(t) => Some(Operand::Typed(t)),
            Err(TypedError::Jsonata) => {
                errors.push(("vt", JSONATA_UNSUPPORTED.to_string()));
                None
            }
            Err(TypedError::Invalid(m)) => {
                errors.push(("v", m));
                None
            }
        },
    };
    let v2t = if r.v2.is_some() {
        infer_type(&r.v2t, r.v2.as_ref())
    } else {
        r.v2t.clone()
    };
    let v2 = match v2t.as_str() {
        "prev" => Operand::Prev,
        "jsonata" => {
            errors.push(("v2t", JSONATA_UNSUPPORTED.to_string()));
            Operand::Typed(Typed::Undefined)
        }
        _ if r.v2.is_none() => Operand::Typed(Typed::Undefined),
        _ => match compile(&v2t, r.v2.as_ref(), env) {
            Ok(t) => Operand::Typed(t),
            Err(e) => {
                // Only `between` uses the second value.
                if op == Some(Op::Btwn) {
                    errors.push(("v2", e.to_string()));
                }
                Operand::Typed(Typed::Undefined)
            }
        },
    };
    let icase = Value::from_json(&r.case).is_truthy();
    if !errors.is_empty() {
        return Err(errors);
    }
    let (Some(op), Some(v)) = (op, v) else {
        return Err(errors);
    };
    // A fixed pattern is compiled now: a bad one is a validation error (flowd
    // validates before starting; Node-RED would fail on every message).
    let regex = match (&op, &v) {
        (Op::Regex, Operand::Typed(Typed::Const(p))) => {
            match compile_regex(&p.to_js_string(), icase) {
                Ok(re) => Some(Ok(re)),
                Err(m) => return Err(vec![("v", m)]),
            }
        }
        (Op::Regex, Operand::Typed(Typed::Undefined)) => Some(compile_regex("(?:)", icase)),
        _ => None,
    };
    Ok(Rule {
        op,
        v,
        v2,
        regex,
        icase,
    })
}

/// JavaScript `String(a)` of a possibly undefined value.
fn js_string(a: Option<&Value>) -> String {
    a.map_or_else(|| "undefined".to_string(), Value::to_js_string)
}

/// JavaScript `a == b` with undefined.
fn loose_eq(a: Option<&Value>, b: Option<&Value>) -> bool {
    match (a, b) {
        (None, None) => true,
        (None, Some(v)) | (Some(v), None) => v.is_null(),
        (Some(x), Some(y)) => x.loose_equals(y),
    }
}

/// JavaScript relational comparison; None when any side is undefined or NaN.
fn compare(a: Option<&Value>, b: Option<&Value>) -> Option<Ordering> {
    js_compare(a?, b?)
}

fn ge(a: Option<&Value>, b: Option<&Value>) -> bool {
    matches!(compare(a, b), Some(Ordering::Greater | Ordering::Equal))
}

fn le(a: Option<&Value>, b: Option<&Value>) -> bool {
    matches!(compare(a, b), Some(Ordering::Less | Ordering::Equal))
}

/// `length === 0` for strings, arrays and Buffers, no keys for objects; None otherwise.
fn is_empty(a: Option<&Value>) -> Option<bool> {
    match a? {
        Value::String(s) => Some(s.is_empty()),
        Value::Array(x) => Some(x.is_empty()),
        Value::Buffer(b) => Some(b.is_empty()),
        Value::Object(o) => Some(o.is_empty()),
        _ => None,
    }
}

fn is_type(a: Option<&Value>, b: Option<&Value>) -> bool {
    let Some(Value::String(b)) = b else {
        return false;
    };
    match b.as_str() {
        "array" => matches!(a, Some(Value::Array(_))),
        "buffer" => matches!(a, Some(Value::Buffer(_))),
        "json" => a.is_some_and(|v| json::parse(&v.to_js_string()).is_ok()),
        "null" => matches!(a, Some(Value::Null)),
        "number" => matches!(a, Some(Value::Number(n)) if !n.is_nan()),
        other => match a {
            None => other == "undefined",
            Some(Value::Array(_) | Value::Buffer(_) | Value::Null) => false,
            Some(v) => v.type_of() == other,
        },
    }
}

/// `a.hasOwnProperty(String(b))` guarded as Node-RED does.
fn has_key(a: Option<&Value>, b: Option<&Value>) -> bool {
    if matches!(
        b,
        Some(Value::Null | Value::Array(_) | Value::Object(_) | Value::Buffer(_))
    ) {
        return false;
    }
    let key = js_string(b);
    match a {
        Some(Value::Object(o)) => o.contains_key(&key),
        Some(v @ (Value::Array(_) | Value::String(_))) => js_property(v, &key).is_some(),
        Some(v @ Value::Buffer(_)) => key != "length" && js_property(v, &key).is_some(),
        _ => false,
    }
}

impl Rule {
    fn test(
        &self,
        a: Option<&Value>,
        b: Option<&Value>,
        c: Option<&Value>,
    ) -> Result<bool, String> {
        Ok(match self.op {
            Op::Eq => loose_eq(a, b),
            Op::Neq => !loose_eq(a, b),
            Op::Lt => compare(a, b) == Some(Ordering::Less),
            Op::Lte => le(a, b),
            Op::Gt => compare(a, b) == Some(Ordering::Greater),
            Op::Gte => ge(a, b),
            Op::Btwn => (ge(a, b) && le(a, c)) || (le(a, b) && ge(a, c)),
            Op::Cont => js_string(a).contains(&js_string(b)),
            Op::Regex => {
                let text = js_string(a);
                match &self.regex {
                    Some(Ok(re)) => re.find(&text).is_some(),
                    Some(Err(e)) => return Err(e.clone()),
                    None => {
                        let pattern = b.map_or_else(|| "(?:)".to_string(), Value::to_js_string);
                        compile_regex(&pattern, self.icase)?.find(&text).is_some()
                    }
                }
            }
            Op::True => matches!(a, Some(Value::Bool(true))),
            Op::False => matches!(a, Some(Value::Bool(false))),
            Op::Null => a.is_none_or(Value::is_null),
            Op::Nnull => !a.is_none_or(Value::is_null),
            Op::Empty => is_empty(a) == Some(true),
            Op::Nempty => is_empty(a) == Some(false),
            Op::Istype => is_type(a, b),
            Op::Hask => has_key(a, b),
            Op::Else => matches!(a, Some(Value::Bool(true))),
        })
    }
}

impl SwitchNode {
    fn operand(&self, o: &Operand, msg: &Msg, cx: &NodeCx<'_>) -> Option<Value> {
        match o {
            Operand::Prev => self.prev.clone(),
            Operand::Typed(t) => t.eval(msg, cx).unwrap_or(None),
        }
    }
}

impl FunctionNode for SwitchNode {
    fn on_input(&mut self, msg: Msg, cx: &mut NodeCx<'_>) {
        // A property that cannot be read is undefined.
        let a = self.property.eval(&msg, cx).unwrap_or(None);
        let mut else_flag = true;
        let mut matched = std::mem::take(&mut self.matched);
        matched.clear();
        for (i, rule) in self.rules.iter().enumerate() {
            let b = self.operand(&rule.v, &msg, cx);
            let c = self.operand(&rule.v2, &msg, cx);
            let result = if rule.op == Op::Else {
                let r = Ok(else_flag);
                else_flag = true;
                r
            } else {
                rule.test(a.as_ref(), b.as_ref(), c.as_ref())
            };
            match result {
                Ok(true) => {
                    matched.push(i);
                    else_flag = false;
                    if !self.checkall {
                        break;
                    }
                }
                Ok(false) => {}
                Err(e) => {
                    cx.error(e, msg);
                    self.matched = matched;
                    return;
                }
            }
        }
        self.prev = a;
        if let Some((&last, rest)) = matched.split_last() {
            for &port in rest {
                cx.send_to(port, msg.clone());
            }
            cx.send_to(last, msg);
        }
        self.matched = matched;
    }
}

#[cfg(test)]
mod tests {
    use crate::test_util::{start, try_start};
    use flowd_engine::testing::TestFlow;
    use flowd_engine::value::json;
    use flowd_engine::{Msg, Value};
    use serde_json::{json, Value as Json};
    use std::time::Duration;

    const WAIT: Duration = Duration::from_millis(60);

    /// Starts a switch "s" with `rules` (and `extra` properties).
    async fn switch(rules: Json, extra: Json) -> TestFlow {
        let mut n = json!({"id":"s","type":"switch","property":"payload","propertyType":"msg","rules":rules,"checkall":"true"});
        for (k, v) in extra.as_object().unwrap() {
            n[k] = v.clone();
        }
        start(json!([n])).await
    }

    /// The ports a message fires.
    async fn ports(f: &mut TestFlow, m: Msg) -> Vec<usize> {
        f.send("s", m).await;
        f.collect_from("s", WAIT)
            .await
            .into_iter()
            .map(|s| s.port)
            .collect()
    }

    /// The ports node `id` fired on since the last call.
    async fn fired(f: &mut TestFlow, id: &str) -> Vec<usize> {
        f.collect_from(id, WAIT)
            .await
            .into_iter()
            .map(|s| s.port)
            .collect()
    }

    fn v(text: &str) -> Value {
        json::parse(text).unwrap()
    }

    async fn check(rules: Json, cases: &[(&str, &[usize])]) {
        let mut f = switch(rules.clone(), json!({})).await;
        for (payload, expected) in cases {
            let got = ports(&mut f, Msg::with_payload(v(payload))).await;
            assert_eq!(&got, expected, "payload {payload} with {rules}");
        }
        f.stop().await;
    }

    #[tokio::test]
    async fn conformance_switch_eq_neq() {
        // mqtt-in auto-detect: "a", "b" stay strings, "5" and "5.0" become the
        // number 5, "\"5\"" the string "5".
        check(
            json!([{"t":"eq","v":"a","vt":"str"},{"t":"neq","v":"a","vt":"str"},{"t":"eq","v":"5","vt":"num"},{"t":"eq","v":"5","vt":"str"}]),
            &[("\"a\"", &[0]), ("\"b\"", &[1]), ("5", &[1, 2, 3]), ("5.0", &[1, 2, 3]), ("\"5\"", &[1, 2, 3])],
        )
        .await;
    }

    #[tokio::test]
    async fn each_port_gets_the_message() {
        let mut f = switch(
            json!([{"t":"eq","v":"5","vt":"num"},{"t":"eq","v":"5","vt":"str"}]),
            json!({}),
        )
        .await;
        f.send("s", Msg::with_payload(5.0)).await;
        let a = f.next_from("s").await;
        let b = f.next_from("s").await;
        assert_eq!((a.port, b.port), (0, 1));
        assert_eq!(a.msg, b.msg);
        f.stop().await;
    }

    #[tokio::test]
    async fn relational_operators_coerce() {
        check(
            json!([{"t":"lt","v":"10","vt":"num"},{"t":"lte","v":"10","vt":"num"},{"t":"gt","v":"10","vt":"num"},{"t":"gte","v":"10","vt":"num"}]),
            &[
                ("5", &[0, 1]),
                ("10", &[1, 3]),
                ("\"15\"", &[2, 3]),
                ("\"abc\"", &[]),
                ("true", &[0, 1]),
                ("[]", &[0, 1]),
                ("null", &[0, 1]),
                ("[20]", &[2, 3]),
            ],
        )
        .await;
        // String against string compares as text.
        check(
            json!([{"t":"gt","v":"b","vt":"str"}]),
            &[("\"c\"", &[0]), ("\"a\"", &[]), ("\"B\"", &[])],
        )
        .await;
    }

    #[tokio::test]
    async fn between_in_both_orders() {
        check(
            json!([{"t":"btwn","v":"10","vt":"num","v2":"20","v2t":"num"},{"t":"btwn","v":"20","vt":"num","v2":"10","v2t":"num"}]),
            &[("10", &[0, 1]), ("\"15\"", &[0, 1]), ("20", &[0, 1]), ("21", &[]), ("9.99", &[]), ("\"x\"", &[])],
        )
        .await;
    }

    #[tokio::test]
    async fn contains_and_regex() {
        check(
            json!([
                {"t":"cont","v":"lo","vt":"str"},
                {"t":"regex","v":"^h.l+O$","vt":"str","case":false},
                {"t":"regex","v":"^h.l+O$","vt":"str","case":true},
                {"t":"cont","v":"2,3","vt":"str"}
            ]),
            &[
                ("\"hello\"", &[0, 2]),
                ("{\"a\":\"hello\"}", &[]),
                ("[1,2,3]", &[3]),
                ("\"hellO\"", &[1, 2]),
                ("12", &[]),
            ],
        )
        .await;
    }

    #[tokio::test]
    async fn true_false_null_empty() {
        check(
            json!([
                {"t":"true"},{"t":"false"},{"t":"null"},{"t":"nnull"},{"t":"empty"},{"t":"nempty"}
            ]),
            &[
                ("true", &[0, 3]),
                ("false", &[1, 3]),
                ("\"true\"", &[3, 5]),
                ("null", &[2]),
                ("\"\"", &[3, 4]),
                ("[]", &[3, 4]),
                ("{}", &[3, 4]),
                ("{\"a\":1}", &[3, 5]),
                ("0", &[3]),
            ],
        )
        .await;
        // Undefined (missing property).
        let mut f = switch(
            json!([{"t":"null"},{"t":"nnull"},{"t":"empty"},{"t":"nempty"}]),
            json!({"property":"nope"}),
        )
        .await;
        assert_eq!(ports(&mut f, Msg::new()).await, vec![0]);
        // Buffers have a length.
        assert_eq!(
            ports(
                &mut f,
                Msg::with_payload(Value::Buffer(bytes::Bytes::new()))
            )
            .await,
            vec![0]
        );
        f.stop().await;
        let mut f = switch(json!([{"t":"empty"},{"t":"nempty"}]), json!({})).await;
        assert_eq!(
            ports(
                &mut f,
                Msg::with_payload(Value::Buffer(bytes::Bytes::new()))
            )
            .await,
            vec![0]
        );
        assert_eq!(
            ports(
                &mut f,
                Msg::with_payload(Value::Buffer(bytes::Bytes::from_static(b"x")))
            )
            .await,
            vec![1]
        );
        f.stop().await;
    }

    #[tokio::test]
    async fn istype() {
        let types = [
            "json",
            "array",
            "buffer",
            "null",
            "number",
            "string",
            "boolean",
            "object",
            "undefined",
        ];
        let rules: Vec<Json> = types
            .iter()
            .map(|t| json!({"t":"istype","v":t,"vt":t}))
            .collect();
        check(
            Json::Array(rules),
            &[
                ("\"text\"", &[5]),
                ("\"12\"", &[0, 5]),
                ("\"{\\\"a\\\":1}\"", &[0, 5]),
                ("\"null\"", &[0, 5]),
                ("12", &[0, 4]),
                ("[1,2]", &[1]),
                ("[5]", &[0, 1]),
                ("null", &[0, 3]),
                ("true", &[0, 6]),
                ("{\"a\":1}", &[7]),
            ],
        )
        .await;
        let mut f = switch(json!([{"t":"istype","v":"undefined","vt":"undefined"},{"t":"istype","v":"number","vt":"number"},{"t":"istype","v":"buffer","vt":"buffer"}]), json!({})).await;
        assert_eq!(ports(&mut f, Msg::new()).await, vec![0]);
        assert_eq!(
            ports(&mut f, Msg::with_payload(f64::NAN)).await,
            Vec::<usize>::new()
        );
        assert_eq!(
            ports(
                &mut f,
                Msg::with_payload(Value::Buffer(bytes::Bytes::from_static(b"1")))
            )
            .await,
            vec![2]
        );
        f.stop().await;
    }

    #[tokio::test]
    async fn has_key() {
        check(
            json!([{"t":"hask","v":"a","vt":"str"},{"t":"hask","v":"1","vt":"num"},{"t":"hask","v":"length","vt":"str"}]),
            &[("{\"a\":1}", &[0]), ("[7,8]", &[1, 2]), ("\"ab\"", &[1, 2]), ("5", &[]), ("null", &[]), ("{\"1\":0}", &[1])],
        )
        .await;
    }

    #[tokio::test]
    async fn else_and_checkall() {
        let rules = json!([{"t":"eq","v":"1","vt":"num"},{"t":"else"},{"t":"gt","v":"0","vt":"num"},{"t":"else"}]);
        // A matching else counts as a match for the next else.
        check(
            rules.clone(),
            &[("1", &[0, 2]), ("2", &[1, 2]), ("-1", &[1])],
        )
        .await;
        check(
            json!([{"t":"eq","v":"1","vt":"num"},{"t":"else"},{"t":"eq","v":"2","vt":"num"},{"t":"else"}]),
            &[("1", &[0, 3]), ("2", &[1, 2]), ("3", &[1])],
        )
        .await;
        let mut f = switch(rules, json!({"checkall":"false"})).await;
        assert_eq!(ports(&mut f, Msg::with_payload(1.0)).await, vec![0]);
        assert_eq!(ports(&mut f, Msg::with_payload(2.0)).await, vec![1]);
        assert_eq!(ports(&mut f, Msg::with_payload(-1.0)).await, vec![1]);
        f.stop().await;
        // Two else rules in a row: the second sees the first's match.
        check(json!([{"t":"else"},{"t":"else"}]), &[("1", &[0])]).await;
        // Only the string "false" stops after the first match, as in Node-RED.
        let mut f = switch(
            json!([{"t":"nnull"},{"t":"nnull"}]),
            json!({"checkall": false}),
        )
        .await;
        assert_eq!(ports(&mut f, Msg::with_payload(1.0)).await, vec![0, 1]);
        f.stop().await;
    }

    #[tokio::test]
    async fn previous_value_starts_as_null() {
        let mut f = switch(
            json!([{"t":"gt","v":"","vt":"prev"},{"t":"eq","v":"","vt":"prev"}]),
            json!({}),
        )
        .await;
        assert_eq!(ports(&mut f, Msg::with_payload(1.0)).await, vec![0]);
        assert_eq!(ports(&mut f, Msg::with_payload(1.0)).await, vec![1]);
        assert_eq!(
            ports(&mut f, Msg::with_payload(0.0)).await,
            Vec::<usize>::new()
        );
        assert_eq!(ports(&mut f, Msg::with_payload(3.0)).await, vec![0]);
        f.stop().await;
        // `null` (first message) equals undefined but not 0.
        let mut f = switch(
            json!([{"t":"eq","v":"","vt":"prev"}]),
            json!({"property":"nope"}),
        )
        .await;
        assert_eq!(ports(&mut f, Msg::new()).await, vec![0]);
        f.stop().await;
    }

    #[tokio::test]
    async fn value_types_and_property_types() {
        let mut f = start(json!([
            {"id":"t2","type":"tab","label":"T2","env":[{"name":"LIMIT","value":"3","type":"num"}]},
            {"id":"c","type":"change","z":"t2","rules":[{"t":"set","p":"lim","pt":"flow","to":"4","tot":"num"}],"wires":[["s"]]},
            {"id":"s","type":"switch","z":"t2","property":"topic","propertyType":"msg","checkall":"true","rules":[
                {"t":"eq","v":"other","vt":"msg"},
                {"t":"eq","v":"LIMIT","vt":"env"},
                {"t":"eq","v":"lim","vt":"flow"},
                {"t":"eq","v":"true","vt":"bool"},
                {"t":"eq","v":"x"},
                {"t":"eq","v":"7"},
                {"t":"btwn","v":"lim","vt":"flow","v2":"other","v2t":"msg"},
                {"t":"eq","v":"[1]","vt":"json"}
            ]},
            {"id":"s2","type":"switch","z":"t2","property":"lim","propertyType":"flow","rules":[{"t":"eq","v":"4","vt":"num"}]},
            {"id":"s3","type":"switch","z":"t2","property":"LIMIT","propertyType":"env","rules":[{"t":"eq","v":"3","vt":"num"}]}
        ]))
        .await;
        let send = |topic: Value, other: Value| {
            let mut m = Msg::new();
            m.insert("topic", topic);
            m.insert("other", other);
            m
        };
        f.send("c", send(Value::Number(3.0), Value::Number(3.0)))
            .await;
        assert_eq!(fired(&mut f, "s").await, vec![0, 1, 6]);
        f.send("c", send(Value::Number(4.0), Value::Number(9.0)))
            .await;
        assert_eq!(fired(&mut f, "s").await, vec![2, 6]);
        // true == true; true (1) is between 4 and null (0).
        f.send("c", send(Value::Bool(true), Value::Null)).await;
        assert_eq!(fired(&mut f, "s").await, vec![3, 6]);
        f.send("c", send(Value::str("x"), Value::Null)).await;
        assert_eq!(fired(&mut f, "s").await, vec![4]);
        f.send("c", send(Value::str("7"), Value::Null)).await;
        assert_eq!(fired(&mut f, "s").await, vec![5]);
        // vt json compares with the text "json", as Node-RED does.
        f.send("c", send(Value::str("json"), Value::Null)).await;
        assert_eq!(fired(&mut f, "s").await, vec![7]);
        f.send("s2", Msg::new()).await;
        assert_eq!(f.next_from("s2").await.port, 0);
        f.send("s3", Msg::new()).await;
        assert_eq!(f.next_from("s3").await.port, 0);
        f.stop().await;
    }

    #[tokio::test]
    async fn rule_errors_go_to_catch_and_nothing_is_sent() {
        let mut f = start(json!([
            {"id":"s","type":"switch","property":"payload","rules":[{"t":"true"},{"t":"regex","v":"pat","vt":"msg"}]},
            {"id":"s2","type":"switch","property":"payload","rules":[{"t":"regex","v":"pat","vt":"msg"}]},
            {"id":"k","type":"catch","scope":null},
            {"id":"done","type":"complete","scope":["s","s2"]}
        ]))
        .await;
        let mut bad = Msg::with_payload(true);
        bad.insert("pat", Value::str("("));
        f.send("s", bad).await;
        let caught = f.next_from("k").await.msg;
        let text = caught
            .get("error")
            .unwrap()
            .as_object()
            .unwrap()
            .get("message")
            .unwrap()
            .to_js_string();
        assert!(
            text.starts_with("Invalid regular expression: /(/"),
            "{text}"
        );
        f.expect_nothing_from("s", WAIT).await;
        let mut m = Msg::with_payload("abc");
        m.insert("pat", Value::str("B"));
        f.send("s2", m.clone()).await;
        f.expect_nothing_from("s2", WAIT).await;
        m.insert("pat", Value::str("b"));
        f.send("s2", m.clone()).await;
        assert_eq!(f.next_from("s2").await.port, 0);
        m.insert("pat", Value::str("[b"));
        f.send("s2", m).await;
        f.next_from("k").await;
        // switch never signals completion.
        f.expect_nothing_from("done", WAIT).await;
        f.stop().await;
    }

    #[tokio::test]
    async fn defaults_and_missing_property() {
        // Editor defaults: property payload, one rule `== ""`.
        let mut f = start(json!([{"id":"s","type":"switch"}])).await;
        assert_eq!(ports(&mut f, Msg::with_payload("")).await, vec![0]);
        assert_eq!(ports(&mut f, Msg::with_payload(0.0)).await, vec![0]);
        assert_eq!(
            ports(&mut f, Msg::with_payload("x")).await,
            Vec::<usize>::new()
        );
        f.stop().await;
        // A property under a missing parent is undefined.
        let mut f = switch(json!([{"t":"null"}]), json!({"property":"a.b.c"})).await;
        assert_eq!(ports(&mut f, Msg::new()).await, vec![0]);
        f.stop().await;
    }

    #[tokio::test]
    async fn validation_errors() {
        let e = try_start(
            json!([{"id":"s","type":"switch","property":"payload","propertyType":"jsonata","rules":[
                {"t":"head","v":"1","vt":"num"},
                {"t":"eq","v":"$x","vt":"jsonata"},
                {"t":"jsonata_exp","v":"true","vt":"jsonata"},
                {"t":"btwn","v":"1","vt":"num","v2":"$y","v2t":"jsonata"},
                {"t":"nope"},
                {"t":"eq","v":"a..b","vt":"msg"},
                {"t":"tail","v":"1"},
                {"t":"index","v":"1","v2":"2"}
            ]}]),
        )
        .await
        .err()
        .unwrap();
        let text = e.to_string();
        for field in [
            "propertyType",
            "rules[0].t",
            "rules[1].vt",
            "rules[2].t",
            "rules[3].v2t",
            "rules[4].t",
            "rules[5].v",
            "rules[6].t",
            "rules[7].t",
        ] {
            assert!(
                text.contains(&format!("field \"{field}\"")),
                "{field} in {text}"
            );
        }
        assert!(text.contains("not supported yet"), "{text}");
        assert!(
            text.contains("JSONata expressions are not supported by flowd yet"),
            "{text}"
        );
        let e = try_start(json!([{"id":"s","type":"switch","property":"a..b"}]))
            .await
            .err()
            .unwrap();
        assert!(e.to_string().contains("field \"property\""), "{e}");
    }
}
