//! `change` node: applies an ordered list of rules (set, change, delete,
//! move) to a message, or to flow/global context, then forwards the message.
//!
//! Values are typed inputs (see [`crate::typed_value`]); everything static
//! (paths, regexes, numbers, JSON, env) is prepared at build, where invalid
//! regexes, invalid JSON and JSONata are reported as validation errors.
//! When `rules` is absent the legacy single-rule form (`action`, `property`,
//! `from`, `to`, `reg`) is used.

use crate::typed_value::{
    compile, get_property, raw_string, replace_literal_all, replace_literal_first,
    replace_regex_all, ContextKey, Typed, TypedError,
};
use flowd_engine::config_de;
use flowd_engine::context::ContextScope;
use flowd_engine::node::{BuildContext, BuiltNode, FunctionNode, NodeCx, NodeType};
use flowd_engine::registry::{NodeDescriptor, PropertyDescriptor as Prop, PropertyKind as Kind};
use flowd_engine::value::path::{self, Path, PathError};
use flowd_engine::{Msg, Value};
use serde::{Deserialize, Deserializer};
use serde_json::{json, Value as Json};
use std::borrow::Cow;

/// The `change` node type.
pub struct ChangeType;

/// Keeps a present `null` distinct from an absent property.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Json>, D::Error> {
    Json::deserialize(d).map(Some)
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ChangeConfig {
    rules: Option<Vec<RuleConfig>>,
    #[serde(deserialize_with = "config_de::string")]
    action: String,
    #[serde(deserialize_with = "config_de::string")]
    property: String,
    #[serde(deserialize_with = "present")]
    from: Option<Json>,
    #[serde(deserialize_with = "present")]
    to: Option<Json>,
    #[serde(deserialize_with = "present")]
    reg: Option<Json>,
}

#[derive(Deserialize, Default, Clone)]
#[serde(default)]
struct RuleConfig {
    #[serde(deserialize_with = "config_de::string")]
    t: String,
    #[serde(deserialize_with = "config_de::string")]
    p: String,
    #[serde(deserialize_with = "config_de::string")]
    pt: String,
    #[serde(deserialize_with = "present")]
    to: Option<Json>,
    #[serde(deserialize_with = "config_de::string")]
    tot: String,
    #[serde(deserialize_with = "present")]
    from: Option<Json>,
    #[serde(deserialize_with = "config_de::string")]
    fromt: String,
    #[serde(deserialize_with = "present")]
    re: Option<Json>,
}

/// Where a rule reads or writes.
#[derive(Debug, Clone)]
enum Target {
    Msg(Path),
    Context(ContextScope, ContextKey),
}

/// How a `change` rule searches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FromKind {
    Str,
    Num,
    Bool,
    Re,
}

#[derive(Debug)]
enum From {
    /// `fromt` str/num/bool: the literal text (and as a value).
    Literal(FromKind, String, Value),
    /// `fromt` re.
    Regex(regress::Regex),
    /// `fromt` msg/flow/global: its type decides at rule time.
    Dynamic(Typed),
}

#[derive(Debug)]
enum StepKind {
    Set(Typed),
    Delete,
    Change {
        from: From,
        value: Typed,
        /// `tot` is bool: a replace producing "true"/"false" gives the boolean.
        bool_result: bool,
    },
}

/// One primitive operation (a move is several).
#[derive(Debug)]
struct Step {
    kind: StepKind,
    target: Target,
    /// The property as written, for warnings.
    prop: String,
}

struct ChangeNode {
    steps: Vec<Step>,
}

/// What a step's search resolved to for one message.
enum Search<'a> {
    Regex(&'a regress::Regex),
    /// Every occurrence of a literal.
    All(Cow<'a, str>),
    /// `String.replace(undefined, ..)`: the first "undefined".
    FirstUndefined,
}

struct Resolved<'a> {
    kind: FromKind,
    /// Node-RED's `fromValue`, compared with `===`.
    exact: Value,
    search: Search<'a>,
}

impl NodeType for ChangeType {
    fn type_name(&self) -> &'static str {
        "change"
    }

    fn descriptor(&self) -> NodeDescriptor {
        NodeDescriptor::new("change", "function", "node-red/change", "#E2D96E", 1, 1)
            .icon("swap.svg")
            .prop(Prop::new(
                "rules",
                "Rules",
                Kind::Structured {
                    widget: "change-rules".into(),
                },
                json!([{"t": "set", "p": "payload", "pt": "msg", "to": "", "tot": "str"}]),
            ))
            .prop(Prop::new("name", "Name", Kind::Text, json!("")))
            .help(
                "Sets, changes, deletes or moves properties of a message, flow context or \
                 global context.\n\n\
                 Rules run in order. **Set** assigns a value (string, number, boolean, JSON, \
                 buffer, timestamp, env variable, or another msg/flow/global property), \
                 creating missing parent objects. **Change** searches a string property for \
                 a string or regular expression and replaces it (`$1`, `$&` work in the \
                 replacement); a property equal to the search value is replaced whole. \
                 **Delete** removes a property (array elements are spliced out). **Move** \
                 sets the target and deletes the source.\n\n\
                 JSONata expressions are not supported by flowd yet.",
            )
    }

    fn build(&self, cx: &mut BuildContext<'_>) -> Option<BuiltNode> {
        let c: ChangeConfig = cx.config()?;
        let legacy = c.rules.is_none();
        let rules = match c.rules {
            Some(r) => r,
            // Neither form: Node-RED's rule does nothing and forwards.
            None if c.action.is_empty() => Vec::new(),
            None => vec![legacy_rule(&c)],
        };
        let field = |i: usize, name: &str| -> String {
            if legacy {
                match name {
                    "t" => "action".into(),
                    "p" => "property".into(),
                    "re" | "fromt" => "reg".into(),
                    other => other.into(),
                }
            } else {
                format!("rules[{i}].{name}")
            }
        };
        let env = cx.env().clone();
        let mut steps = Vec::new();
        let mut ok = true;
        for (i, r) in rules.into_iter().enumerate() {
            match build_rule(i, r, &env, &field) {
                Ok(mut s) => steps.append(&mut s),
                Err(errors) => {
                    ok = false;
                    for (f, m) in errors {
                        cx.error(&f, m);
                    }
                }
            }
        }
        ok.then(|| BuiltNode::function(ChangeNode { steps }))
    }
}

/// The single rule of a pre-`rules` flow.
fn legacy_rule(c: &ChangeConfig) -> RuleConfig {
    let t = if c.action == "replace" {
        "set".to_string()
    } else {
        c.action.clone()
    };
    let or_empty = |v: &Option<Json>| match v {
        Some(j) if Value::from_json(j).is_truthy() => Some(j.clone()),
        _ => Some(Json::String(String::new())),
    };
    let mut r = RuleConfig {
        t,
        p: c.property.clone(),
        ..RuleConfig::default()
    };
    match r.t.as_str() {
        "set" | "move" => r.to = or_empty(&c.to),
        "change" => {
            r.from = or_empty(&c.from);
            r.to = or_empty(&c.to);
            let re = match &c.reg {
                Some(Json::Null) => true,
                Some(j) => Value::from_json(j).is_truthy(),
                None => false,
            };
            r.re = Some(Json::Bool(re));
        }
        _ => {}
    }
    r
}

type FieldErrors = Vec<(String, String)>;

fn target(scope: &str, prop: &str) -> Result<Target, String> {
    match scope {
        "msg" => Path::parse(prop)
            .map(Target::Msg)
            .map_err(|e| e.to_string()),
        "flow" => ContextKey::parse(prop).map(|k| Target::Context(ContextScope::Flow, k)),
        "global" => ContextKey::parse(prop).map(|k| Target::Context(ContextScope::Global, k)),
        other => Err(format!(
            "unknown property type \"{other}\" (expected msg, flow or global)"
        )),
    }
}

/// The typed value reading `prop` in `scope` (a move's source).
fn source(scope: &str, prop: &str) -> Result<Typed, String> {
    Ok(match target(scope, prop)? {
        Target::Msg(p) => Typed::Msg(p),
        Target::Context(s, k) => Typed::Context(s, k),
    })
}

fn value_for(
    i: usize,
    r: &RuleConfig,
    env: &flowd_engine::flows::env::NodeEnv,
    field: &dyn Fn(usize, &str) -> String,
) -> Result<Typed, (String, String)> {
    let result = if r.tot == "str" {
        // Node-RED uses a str value as it is (no conversion).
        Ok(match &r.to {
            None => Typed::Undefined,
            Some(j) => Typed::Const(Value::from_json(j)),
        })
    } else {
        compile(&r.tot, r.to.as_ref(), env)
    };
    result.map_err(|e| match e {
        TypedError::Jsonata => (field(i, "tot"), e.to_string()),
        TypedError::Invalid(m) if r.tot == "json" || r.tot == "bin" => {
            (field(i, "to"), format!("Invalid 'to' JSON property: {m}"))
        }
        TypedError::Invalid(m) => (field(i, "to"), m),
    })
}

fn build_rule(
    i: usize,
    mut r: RuleConfig,
    env: &flowd_engine::flows::env::NodeEnv,
    field: &dyn Fn(usize, &str) -> String,
) -> Result<Vec<Step>, FieldErrors> {
    // Node-RED's migration of older rule forms.
    if r.pt.is_empty() {
        r.pt = "msg".into();
    }
    if r.t == "change"
        && r.re
            .as_ref()
            .is_some_and(|j| Value::from_json(j).is_truthy())
    {
        r.fromt = "re".into();
    }
    if r.t == "set" && r.tot.is_empty() {
        if let Some(Json::String(s)) = &r.to {
            if let Some(rest) = s.strip_prefix("msg.") {
                r.to = Some(Json::String(rest.to_string()));
                r.tot = "msg".into();
            }
        }
    }
    if r.tot.is_empty() {
        r.tot = "str".into();
    }
    if r.fromt.is_empty() {
        r.fromt = "str".into();
    }

    let mut errors: FieldErrors = Vec::new();
    let tgt = target(&r.pt, &r.p).map_err(|e| {
        let f = if r.pt == "msg" || r.pt == "flow" || r.pt == "global" {
            "p"
        } else {
            "pt"
        };
        errors.push((field(i, f), e));
    });
    let steps = match r.t.as_str() {
        "set" => {
            let v = value_for(i, &r, env, field).map_err(|e| errors.push(e));
            match (tgt, v) {
                (Ok(t), Ok(v)) => vec![Step {
                    kind: StepKind::Set(v),
                    target: t,
                    prop: r.p.clone(),
                }],
                _ => vec![],
            }
        }
        "delete" => match tgt {
            Ok(t) => vec![Step {
                kind: StepKind::Delete,
                target: t,
                prop: r.p.clone(),
            }],
            Err(()) => vec![],
        },
        "change" => {
            let v = value_for(i, &r, env, field).map_err(|e| errors.push(e));
            let from_text = raw_string(r.from.as_ref());
            let from = match r.fromt.as_str() {
                "str" => Ok(From::Literal(
                    FromKind::Str,
                    from_text.clone(),
                    Value::str(&from_text),
                )),
                "num" => Ok(From::Literal(
                    FromKind::Num,
                    from_text.clone(),
                    Value::str(&from_text),
                )),
                "bool" => Ok(From::Literal(
                    FromKind::Bool,
                    from_text.clone(),
                    Value::str(&from_text),
                )),
                "re" => crate::typed_value::compile_regex(&from_text, false)
                    .map(From::Regex)
                    .map_err(|e| (field(i, "from"), format!("Invalid 'from' property: {e}"))),
                "msg" | "flow" | "global" => compile(&r.fromt, r.from.as_ref(), env)
                    .map(From::Dynamic)
                    .map_err(|e| (field(i, "from"), e.to_string())),
                "jsonata" => Err((
                    field(i, "fromt"),
                    crate::typed_value::JSONATA_UNSUPPORTED.to_string(),
                )),
                other => Err((
                    field(i, "fromt"),
                    format!("unsupported search type \"{other}\""),
                )),
            }
            .map_err(|e| errors.push(e));
            match (tgt, v, from) {
                (Ok(t), Ok(value), Ok(from)) => vec![Step {
                    kind: StepKind::Change {
                        from,
                        value,
                        bool_result: r.tot == "bool",
                    },
                    target: t,
                    prop: r.p.clone(),
                }],
                _ => vec![],
            }
        }
        "move" => {
            // For a move, `tot` is the scope of the destination `to`.
            let to_scope = if r.tot == "str" {
                "msg".to_string()
            } else {
                r.tot.clone()
            };
            let to = raw_string(r.to.as_ref());
            let dest = target(&to_scope, &to).map_err(|e| {
                let f = if matches!(to_scope.as_str(), "msg" | "flow" | "global") {
                    "to"
                } else {
                    "tot"
                };
                errors.push((field(i, f), e));
            });
            let src = source(&r.pt, &r.p);
            match (tgt, dest, src) {
                (Ok(from_target), Ok(dest), Ok(src)) => {
                    move_steps(&r.p, &r.pt, &to, &to_scope, from_target, dest, src)
                }
                _ => vec![],
            }
        }
        "" => {
            errors.push((field(i, "t"), "missing rule type".into()));
            vec![]
        }
        other => {
            errors.push((
                field(i, "t"),
                format!("unknown rule type \"{other}\" (expected set, change, delete or move)"),
            ));
            vec![]
        }
    };
    if errors.is_empty() {
        Ok(steps)
    } else {
        Err(errors)
    }
}

/// Node-RED's move: set the destination from the source and delete the
/// source; when that could clobber (moving into a child of the source, or
/// onto itself) it goes through a temporary `_temp_move` property.
fn move_steps(
    p: &str,
    pt: &str,
    to: &str,
    tot: &str,
    from_target: Target,
    dest: Target,
    src: Typed,
) -> Vec<Step> {
    let direct = tot != pt || (p.contains(to) && p != to);
    if direct {
        return vec![
            Step {
                kind: StepKind::Set(src),
                target: dest,
                prop: to.to_string(),
            },
            Step {
                kind: StepKind::Delete,
                target: from_target,
                prop: p.to_string(),
            },
        ];
    }
    let temp = "_temp_move";
    let temp_target = || target(pt, temp).expect("valid temporary key");
    let temp_source = source(pt, temp).expect("valid temporary key");
    vec![
        Step {
            kind: StepKind::Set(src),
            target: temp_target(),
            prop: temp.to_string(),
        },
        Step {
            kind: StepKind::Delete,
            target: from_target,
            prop: p.to_string(),
        },
        Step {
            kind: StepKind::Set(temp_source),
            target: dest,
            prop: to.to_string(),
        },
        Step {
            kind: StepKind::Delete,
            target: temp_target(),
            prop: temp.to_string(),
        },
    ]
}

/// JavaScript `typeof` of a possibly undefined value.
fn type_of(v: Option<&Value>) -> &'static str {
    v.map_or("undefined", Value::type_of)
}

/// True when every parent of the (resolved) path exists and is an object or array.
fn parents_exist(msg: &Msg, p: &Path) -> bool {
    let segs = p.segments();
    if segs.len() < 2 {
        return true;
    }
    let first = match &segs[0] {
        path::Segment::Key(k) => msg.get(k),
        _ => None,
    };
    let mut cur = match first {
        Some(v) => v,
        None => return false,
    };
    for s in &segs[1..segs.len() - 1] {
        if !matches!(cur, Value::Object(_) | Value::Array(_)) {
            return false;
        }
        match path::child(cur, s) {
            Some(v) => cur = v,
            None => return false,
        }
    }
    matches!(cur, Value::Object(_) | Value::Array(_))
}

impl Step {
    fn resolve_from<'a>(
        &'a self,
        from: &'a From,
        msg: &Msg,
        cx: &NodeCx<'_>,
    ) -> Result<Option<Resolved<'a>>, String> {
        Ok(Some(match from {
            From::Literal(kind, text, exact) => Resolved {
                kind: *kind,
                exact: exact.clone(),
                search: Search::All(Cow::Borrowed(text)),
            },
            From::Regex(re) => Resolved {
                kind: FromKind::Re,
                exact: Value::Null,
                search: Search::Regex(re),
            },
            From::Dynamic(t) => {
                let Ok(v) = t.eval(msg, cx) else {
                    return Ok(None);
                };
                match v {
                    Some(Value::Number(n)) => Resolved {
                        kind: FromKind::Num,
                        exact: Value::Number(n),
                        search: Search::FirstUndefined,
                    },
                    Some(Value::Bool(b)) => Resolved {
                        kind: FromKind::Bool,
                        exact: Value::Bool(b),
                        search: Search::FirstUndefined,
                    },
                    Some(Value::String(s)) => Resolved {
                        kind: FromKind::Str,
                        exact: Value::String(s.clone()),
                        search: Search::All(Cow::Owned(s.to_string())),
                    },
                    other => {
                        return Err(format!(
                            "Invalid 'from' property: unsupported type: {}",
                            type_of(other.as_ref())
                        ))
                    }
                }
            }
        }))
    }

    /// The new value for a `change` of `current`, or None to leave it.
    fn changed(
        &self,
        current: Option<&Value>,
        from: &Resolved<'_>,
        value: &Option<Value>,
        on_msg: bool,
    ) -> Option<Option<Value>> {
        let StepKind::Change { bool_result, .. } = &self.kind else {
            return None;
        };
        match current? {
            Value::String(s) => {
                if from.kind != FromKind::Re && matches!(&from.exact, Value::String(e) if e == s) {
                    return Some(value.clone());
                }
                let repl = value.as_ref().map_or_else(|| "undefined".to_string(), Value::to_js_string);
                let replaced = match &from.search {
                    Search::Regex(re) => replace_regex_all(re, s, &repl),
                    Search::All(needle) => replace_literal_all(s, needle, &repl),
                    Search::FirstUndefined => replace_literal_first(s, "undefined", &repl),
                };
                if on_msg && *bool_result && replaced == repl {
                    Some(value.clone())
                } else {
                    Some(Some(Value::string(replaced)))
                }
            }
            Value::Number(n) if from.kind == FromKind::Num => (*n == from.exact.to_number()).then(|| value.clone()),
            Value::Bool(b) if from.kind == FromKind::Bool => {
                matches!(&from.exact, Value::String(e) if e.as_str() == if *b { "true" } else { "false" })
                    .then(|| value.clone())
            }
            _ => None,
        }
    }

    /// Applies the step; false drops the message.
    fn apply(&self, msg: &mut Msg, cx: &mut NodeCx<'_>) -> bool {
        let (value, from) = match &self.kind {
            StepKind::Set(t) => match t.eval(msg, cx) {
                Ok(v) => (v, None),
                // Reading the value threw: Node-RED skips the rule.
                Err(_) => return true,
            },
            StepKind::Delete => (None, None),
            StepKind::Change { from, value, .. } => {
                let Ok(v) = value.eval(msg, cx) else {
                    return true;
                };
                match self.resolve_from(from, msg, cx) {
                    Ok(Some(r)) => (v, Some(r)),
                    Ok(None) => return true,
                    Err(e) => {
                        cx.error(e, msg.clone());
                        return false;
                    }
                }
            }
        };
        match &self.target {
            Target::Msg(p) => {
                match &self.kind {
                    StepKind::Set(_) => self.write_msg(msg, p, value, true, cx),
                    StepKind::Delete => self.write_msg(msg, p, None, false, cx),
                    StepKind::Change { .. } => {
                        let current = match get_property(msg, p) {
                            Ok(c) => c.map(Cow::into_owned),
                            Err(_) => return true,
                        };
                        let from = from.expect("resolved for change");
                        if let Some(new) = self.changed(current.as_ref(), &from, &value, true) {
                            self.write_msg(msg, p, new, false, cx);
                        }
                    }
                }
                true
            }
            Target::Context(scope, key) => {
                let Ok(key) = key.resolve(msg) else {
                    return true;
                };
                let new = match &self.kind {
                    StepKind::Set(_) => value,
                    StepKind::Delete => None,
                    StepKind::Change { .. } => {
                        let current = match cx.context_get(*scope, &key) {
                            Ok(c) => c,
                            Err(e) => {
                                cx.error(e, msg.clone());
                                return false;
                            }
                        };
                        let from = from.expect("resolved for change");
                        match self.changed(current.as_ref(), &from, &value, false) {
                            Some(new) => new,
                            // Node-RED 4.1 never completes such a rule: the
                            // message is silently dropped.
                            None => return false,
                        }
                    }
                };
                match cx.context_set(*scope, &key, new) {
                    Ok(()) | Err(PathError::NotAnObject { .. }) => true,
                    Err(e) => {
                        cx.error(e, msg.clone());
                        false
                    }
                }
            }
        }
    }

    fn write_msg(
        &self,
        msg: &mut Msg,
        p: &Path,
        value: Option<Value>,
        warn: bool,
        cx: &mut NodeCx<'_>,
    ) {
        let refused = match value {
            Some(v) => matches!(msg.set_expr(p, v), Err(PathError::NotAnObject { .. })),
            None => match p.resolve(msg) {
                Ok(resolved) => {
                    let resolved = resolved.into_owned();
                    if parents_exist(msg, &resolved) {
                        path::delete(msg, &resolved);
                        false
                    } else {
                        true
                    }
                }
                Err(_) => false,
            },
        };
        if refused && warn {
            cx.warn(format!(
                "Cannot set property of non-object type: {}",
                self.prop
            ));
        }
    }
}

impl FunctionNode for ChangeNode {
    fn on_input(&mut self, mut msg: Msg, cx: &mut NodeCx<'_>) {
        for step in &self.steps {
            if !step.apply(&mut msg, cx) {
                return;
            }
        }
        cx.done(&msg);
        cx.send(msg);
    }
}

#[cfg(test)]
mod tests {
    use crate::test_util::{start, try_start};
    use flowd_engine::value::json;
    use flowd_engine::{Msg, Value};
    use serde_json::{json, Value as Json};
    use std::time::Duration;

    fn change(rules: Json) -> Json {
        json!([{"id": "c", "type": "change", "rules": rules}])
    }

    /// Runs `msg` through a change node with `rules` and returns the output.
    async fn run(rules: Json, msg: Msg) -> Option<Msg> {
        let mut f = start(change(rules)).await;
        f.send("c", msg).await;
        let out = f.next_from_within("c", Duration::from_millis(300)).await;
        f.stop().await;
        out.map(|s| s.msg)
    }

    fn msg(text: &str) -> Msg {
        Msg::from_value(json::parse(text).unwrap()).unwrap()
    }

    fn without_id(m: &Msg) -> String {
        let mut m = m.clone();
        m.remove("_msgid");
        m.to_json()
    }

    async fn payload_after(rules: Json, payload: Value) -> Option<Value> {
        run(rules, Msg::with_payload(payload))
            .await
            .map(|m| m.payload().cloned().unwrap_or(Value::Null))
    }

    #[tokio::test]
    async fn conformance_change_set_types() {
        let rules = json!([
            {"t":"set","p":"payload","pt":"msg","to":"{}","tot":"json"},
            {"t":"set","p":"payload.a","pt":"msg","to":"5","tot":"num"},
            {"t":"set","p":"payload.b","pt":"msg","to":"true","tot":"bool"},
            {"t":"set","p":"payload.c","pt":"msg","to":"x","tot":"str"},
            {"t":"set","p":"payload.d","pt":"msg","to":"topic","tot":"msg"},
            {"t":"set","p":"payload.e.f.g","pt":"msg","to":"deep","tot":"str"},
            {"t":"set","p":"payload.h","pt":"msg","to":"[1,\"2\",{\"3\":null}]","tot":"json"},
            {"t":"set","p":"payload.i","pt":"msg","to":"True","tot":"bool"},
            {"t":"set","p":"payload.j","pt":"msg","to":"1e3","tot":"num"},
            {"t":"set","p":"payload.k","pt":"msg","to":"[104,105]","tot":"bin"}
        ]);
        let mut m = Msg::with_payload("anything");
        m.insert("topic", Value::str("in/x"));
        let out = run(rules, m).await.unwrap();
        assert_eq!(
            out.payload().unwrap().to_json(),
            r#"{"a":5,"b":true,"c":"x","d":"in/x","e":{"f":{"g":"deep"}},"h":[1,"2",{"3":null}],"i":true,"j":1000,"k":{"type":"Buffer","data":[104,105]}}"#
        );
        assert!(matches!(
            out.payload().unwrap().as_object().unwrap().get("k"),
            Some(Value::Buffer(_))
        ));
    }

    #[tokio::test]
    async fn json_values_are_fresh_per_message() {
        let mut f = start(json!([
            {"id":"c","type":"change","rules":[{"t":"set","p":"payload","to":"{\"n\":[]}","tot":"json"}],"wires":[["c2"]]},
            {"id":"c2","type":"change","rules":[{"t":"set","p":"payload.n[0]","to":"1","tot":"num"}]}
        ]))
        .await;
        for _ in 0..2 {
            f.send("c", Msg::new()).await;
            assert_eq!(
                f.next_from("c2").await.msg.payload().unwrap().to_json(),
                r#"{"n":[1]}"#
            );
        }
        f.stop().await;
    }

    #[tokio::test]
    async fn value_types() {
        let p = |to: &str, tot: &str| json!([{"t":"set","p":"payload","to":to,"tot":tot}]);
        assert_eq!(
            payload_after(p("", "num"), Value::Null).await,
            Some(Value::Number(0.0))
        );
        assert!(payload_after(p("abc", "num"), Value::Null)
            .await
            .unwrap()
            .as_f64()
            .unwrap()
            .is_nan());
        assert_eq!(
            payload_after(p("TRUE", "bool"), Value::Null).await,
            Some(Value::Bool(true))
        );
        assert_eq!(
            payload_after(p("yes", "bool"), Value::Null).await,
            Some(Value::Bool(false))
        );
        assert_eq!(
            payload_after(p("\"hi\"", "bin"), Value::Null)
                .await
                .unwrap()
                .to_json(),
            r#"{"type":"Buffer","data":[104,105]}"#
        );
        let before = crate::typed_value::now_ms();
        let t = payload_after(p("", "date"), Value::Null)
            .await
            .unwrap()
            .as_f64()
            .unwrap();
        assert!(t >= before && t < before + 5000.0);
        let iso = payload_after(p("iso", "date"), Value::Null).await.unwrap();
        assert!(iso.as_str().unwrap().ends_with('Z'));
        // A legacy set rule without tot whose `to` starts with "msg."
        let out = run(
            json!([{"t":"set","p":"payload","to":"msg.topic"}]),
            msg(r#"{"topic":"t"}"#),
        )
        .await
        .unwrap();
        assert_eq!(out.payload(), Some(&Value::str("t")));
        // Rules without a type default to str.
        assert_eq!(
            payload_after(json!([{"t":"set","p":"payload","to":"5"}]), Value::Null).await,
            Some(Value::str("5"))
        );
    }

    #[tokio::test]
    async fn env_values_resolve_at_deploy() {
        let mut f = start(json!([
            {"id":"t2","type":"tab","label":"Env","env":[{"name":"LEVEL","value":"7","type":"num"}]},
            {"id":"c","type":"change","z":"t2","rules":[
                {"t":"set","p":"payload","to":"LEVEL","tot":"env"},
                {"t":"set","p":"name","to":"${NR_NODE_ID}-${LEVEL}","tot":"env"},
                {"t":"set","p":"missing","to":"NOT_SET_ANYWHERE_42","tot":"env"}
            ]}
        ]))
        .await;
        f.send("c", Msg::new()).await;
        let out = f.next_from("c").await.msg;
        assert_eq!(out.payload(), Some(&Value::Number(7.0)));
        assert_eq!(out.get("name"), Some(&Value::str("c-7")));
        assert_eq!(out.get("missing"), Some(&Value::str("")));
        f.stop().await;
    }

    #[tokio::test]
    async fn msg_values_and_missing_sources() {
        // A missing source property deletes the target (set to undefined).
        let out = run(
            json!([{"t":"set","p":"topic","to":"nope","tot":"msg"}]),
            msg(r#"{"topic":"t"}"#),
        )
        .await
        .unwrap();
        assert!(out.get("topic").is_none());
        // Reading through a missing parent throws in Node-RED: the rule is skipped.
        let out = run(
            json!([{"t":"set","p":"topic","to":"no.pe","tot":"msg"}]),
            msg(r#"{"topic":"t"}"#),
        )
        .await
        .unwrap();
        assert_eq!(out.get("topic"), Some(&Value::str("t")));
        // Computed properties and nested references.
        let out = run(
            json!([{"t":"set","p":"n","to":"payload.length","tot":"msg"},{"t":"set","p":"o[msg.topic]","to":"x","tot":"str"}]),
            msg(r#"{"topic":"k","payload":"abcd","o":{}}"#),
        )
        .await
        .unwrap();
        assert_eq!(out.get("n"), Some(&Value::Number(4.0)));
        assert_eq!(out.get("o").unwrap().to_json(), r#"{"k":"x"}"#);
        // dc is accepted (values are copied on write anyway).
        let out = run(
            json!([{"t":"set","p":"copy","to":"payload","tot":"msg","dc":true},{"t":"set","p":"payload.a","to":"2","tot":"num"}]),
            msg(r#"{"payload":{"a":1}}"#),
        )
        .await
        .unwrap();
        assert_eq!(out.get("copy").unwrap().to_json(), r#"{"a":1}"#);
        assert_eq!(out.payload().unwrap().to_json(), r#"{"a":2}"#);
    }

    #[tokio::test]
    async fn set_under_a_non_object_warns_and_continues() {
        let mut f = start(change(json!([
            {"t":"set","p":"payload.a","to":"1","tot":"num"},
            {"t":"set","p":"topic","to":"after","tot":"str"}
        ])))
        .await;
        f.send("c", Msg::with_payload("text")).await;
        let out = f.next_from("c").await.msg;
        assert_eq!(out.payload(), Some(&Value::str("text")));
        assert_eq!(out.get("topic"), Some(&Value::str("after")));
        let obs = f.observer.clone();
        obs.wait_until(Duration::from_secs(2), "warning", |o| {
            o.logs()
                .iter()
                .any(|l| l.text == "Cannot set property of non-object type: payload.a")
        })
        .await;
        f.stop().await;
        // Setting undefined under a missing parent is refused the same way.
        let mut f = start(change(json!([
            {"t":"set","p":"a.b","to":"nope","tot":"msg"}
        ])))
        .await;
        f.send("c", Msg::new()).await;
        assert!(f.next_from("c").await.msg.get("a").is_none());
        let obs = f.observer.clone();
        obs.wait_until(Duration::from_secs(2), "warning", |o| {
            o.logs()
                .iter()
                .any(|l| l.text == "Cannot set property of non-object type: a.b")
        })
        .await;
        f.stop().await;
    }

    #[tokio::test]
    async fn delete_splices_arrays_and_ignores_missing() {
        let rules = json!([
            {"t":"delete","p":"payload.arr[1]"},
            {"t":"delete","p":"payload.missing.deeper"},
            {"t":"delete","p":"payload.o.a"},
            {"t":"delete","p":"topic"}
        ]);
        let out = run(
            rules,
            msg(r#"{"topic":"t","payload":{"arr":[1,2,3],"o":{"a":1,"b":2}}}"#),
        )
        .await
        .unwrap();
        assert_eq!(without_id(&out), r#"{"payload":{"arr":[1,3],"o":{"b":2}}}"#);
    }

    #[tokio::test]
    async fn move_rules() {
        let out = run(
            json!([{"t":"move","p":"payload","pt":"msg","to":"topic","tot":"msg"}]),
            msg(r#"{"payload":"v","topic":"t"}"#),
        )
        .await
        .unwrap();
        assert_eq!(without_id(&out), r#"{"topic":"v"}"#);
        // Into a child of the source.
        let out = run(
            json!([{"t":"move","p":"payload","pt":"msg","to":"payload.inner","tot":"msg"}]),
            msg(r#"{"payload":{"a":1}}"#),
        )
        .await
        .unwrap();
        assert_eq!(out.payload().unwrap().to_json(), r#"{"inner":{"a":1}}"#);
        // Out of a child into its parent.
        let out = run(
            json!([{"t":"move","p":"payload.a.b","pt":"msg","to":"payload","tot":"msg"}]),
            msg(r#"{"payload":{"a":{"b":{"c":1}}}}"#),
        )
        .await
        .unwrap();
        assert_eq!(out.payload().unwrap().to_json(), r#"{"c":1}"#);
        // Moving a missing property deletes the destination.
        let out = run(
            json!([{"t":"move","p":"nope","pt":"msg","to":"topic","tot":"msg"}]),
            msg(r#"{"topic":"t"}"#),
        )
        .await
        .unwrap();
        assert!(out.get("topic").is_none());
        assert!(out.get("_temp_move").is_none());
    }

    #[tokio::test]
    async fn move_between_msg_and_flow_context() {
        let mut f = start(json!([
            {"id":"c","type":"change","rules":[{"t":"move","p":"payload","pt":"msg","to":"saved","tot":"flow"}],"wires":[["c2"]]},
            {"id":"c2","type":"change","rules":[{"t":"move","p":"saved","pt":"flow","to":"back","tot":"msg"},{"t":"set","p":"again","to":"saved","tot":"flow"}]}
        ]))
        .await;
        f.send("c", Msg::with_payload(5.0)).await;
        let out = f.next_from("c2").await.msg;
        assert!(out.payload().is_none());
        assert_eq!(out.get("back"), Some(&Value::Number(5.0)));
        assert!(out.get("again").is_none());
        f.stop().await;
    }

    #[tokio::test]
    async fn change_in_strings() {
        let rule = |from: &str, fromt: &str, to: &str, tot: &str| json!([{"t":"change","p":"payload","from":from,"fromt":fromt,"to":to,"tot":tot}]);
        // Literal, global.
        assert_eq!(
            payload_after(rule("a.", "str", "x", "str"), Value::str("a.a.ab")).await,
            Some(Value::str("xxab"))
        );
        // Regex with captures and $&.
        assert_eq!(
            payload_after(
                rule("(\\w+)@(\\w+)", "re", "$2 at $1 [$&] $$", "str"),
                Value::str("me@host")
            )
            .await,
            Some(Value::str("host at me [me@host] $"))
        );
        // A literal replacement still expands $-patterns, as String.replace does.
        assert_eq!(
            payload_after(rule("b", "str", "<$&>", "str"), Value::str("abc")).await,
            Some(Value::str("a<b>c"))
        );
        // Exact match replaces the whole value, keeping the to type.
        assert_eq!(
            payload_after(rule("yes", "str", "1", "num"), Value::str("yes")).await,
            Some(Value::Number(1.0))
        );
        // Partial match with a number value gives a string.
        assert_eq!(
            payload_after(rule("yes", "str", "1", "num"), Value::str("yes!")).await,
            Some(Value::str("1!"))
        );
        // to bool: a result equal to "true" becomes the boolean.
        assert_eq!(
            payload_after(rule("^on$", "re", "true", "bool"), Value::str("on")).await,
            Some(Value::Bool(true))
        );
        assert_eq!(
            payload_after(rule("o", "re", "true", "bool"), Value::str("oo")).await,
            Some(Value::str("truetrue"))
        );
        // Legacy `re` flag.
        assert_eq!(
            payload_after(
                json!([{"t":"change","p":"payload","from":"\\d","re":true,"to":"#"}]),
                Value::str("a1b22")
            )
            .await,
            Some(Value::str("a#b##"))
        );
    }

    #[tokio::test]
    async fn change_numbers_and_booleans() {
        let rule = |from: &str, fromt: &str, to: &str, tot: &str| json!([{"t":"change","p":"payload","from":from,"fromt":fromt,"to":to,"tot":tot}]);
        assert_eq!(
            payload_after(rule("5", "num", "five", "str"), Value::Number(5.0)).await,
            Some(Value::str("five"))
        );
        assert_eq!(
            payload_after(rule("5", "num", "five", "str"), Value::Number(6.0)).await,
            Some(Value::Number(6.0))
        );
        // A number with a str search is left alone.
        assert_eq!(
            payload_after(rule("5", "str", "five", "str"), Value::Number(5.0)).await,
            Some(Value::Number(5.0))
        );
        assert_eq!(
            payload_after(rule("true", "bool", "0", "num"), Value::Bool(true)).await,
            Some(Value::Number(0.0))
        );
        assert_eq!(
            payload_after(rule("false", "bool", "0", "num"), Value::Bool(true)).await,
            Some(Value::Bool(true))
        );
        // The string "5" equals from "5" exactly: replaced whole.
        assert_eq!(
            payload_after(rule("5", "num", "true", "bool"), Value::str("5")).await,
            Some(Value::Bool(true))
        );
        // Objects are untouched.
        assert_eq!(
            payload_after(
                rule("a", "str", "b", "str"),
                json::parse(r#"{"a":1}"#).unwrap()
            )
            .await
            .unwrap()
            .to_json(),
            r#"{"a":1}"#
        );
    }

    #[tokio::test]
    async fn change_with_dynamic_search_values() {
        let rules =
            json!([{"t":"change","p":"payload","from":"find","fromt":"msg","to":"X","tot":"str"}]);
        let out = run(rules.clone(), msg(r#"{"payload":"a.b.a","find":"a"}"#))
            .await
            .unwrap();
        assert_eq!(out.payload(), Some(&Value::str("X.b.X")));
        let out = run(rules.clone(), msg(r#"{"payload":7,"find":7}"#))
            .await
            .unwrap();
        assert_eq!(out.payload(), Some(&Value::str("X")));
        // An unsupported search type goes to catch and drops the message.
        let mut f = start(json!([
            {"id":"c","type":"change","rules":[{"t":"change","p":"payload","from":"find","fromt":"msg","to":"X","tot":"str"}]},
            {"id":"k","type":"catch","scope":null}
        ]))
        .await;
        f.send("c", msg(r#"{"payload":"a","find":{"x":1}}"#)).await;
        let caught = f.next_from("k").await.msg;
        assert_eq!(
            caught
                .get("error")
                .unwrap()
                .as_object()
                .unwrap()
                .get("message"),
            Some(&Value::str(
                "Invalid 'from' property: unsupported type: object"
            ))
        );
        f.expect_nothing_from("c", Duration::from_millis(100)).await;
        f.stop().await;
    }

    #[tokio::test]
    async fn flow_and_global_context_rules() {
        let mut f = start(json!([
            {"id":"c","type":"change","rules":[
                {"t":"set","p":"count","pt":"flow","to":"payload","tot":"msg"},
                {"t":"set","p":"#:(memory)::g.k[msg.topic]","pt":"global","to":"v","tot":"str"},
                {"t":"change","p":"g.k.t","pt":"global","from":"v","fromt":"str","to":"w","tot":"str"},
                {"t":"set","p":"fromflow","to":"count","tot":"flow"},
                {"t":"set","p":"fromglobal","to":"g.k","tot":"global"},
                {"t":"set","p":"none","to":"nothing.here","tot":"flow"}
            ],"wires":[["c2"]]},
            {"id":"c2","type":"change","rules":[
                {"t":"delete","p":"count","pt":"flow"},
                {"t":"set","p":"after","to":"count","tot":"flow"}
            ]}
        ]))
        .await;
        let mut m = Msg::with_payload(3.0);
        m.insert("topic", Value::str("t"));
        f.send("c", m).await;
        let out = f.next_from("c2").await.msg;
        assert_eq!(out.get("fromflow"), Some(&Value::Number(3.0)));
        assert_eq!(out.get("fromglobal").unwrap().to_json(), r#"{"t":"w"}"#);
        assert!(out.get("none").is_none());
        assert!(out.get("after").is_none());
        f.stop().await;
    }

    #[tokio::test]
    async fn context_change_without_match_drops_like_node_red() {
        let mut f = start(change(json!([
            {"t":"set","p":"n","pt":"flow","to":"5","tot":"num"},
            {"t":"change","p":"n","pt":"flow","from":"a","fromt":"str","to":"b","tot":"str"}
        ])))
        .await;
        f.send("c", Msg::new()).await;
        f.expect_nothing_from("c", Duration::from_millis(150)).await;
        f.stop().await;
    }

    #[tokio::test]
    async fn legacy_single_rule_form() {
        let node = |extra: Json| {
            let mut n = json!({"id":"c","type":"change"});
            for (k, v) in extra.as_object().unwrap() {
                n[k] = v.clone();
            }
            json!([n])
        };
        for (cfg, payload, expected) in [
            (
                json!({"action":"replace","property":"payload","to":"new"}),
                "old",
                "new",
            ),
            (
                json!({"action":"change","property":"payload","from":"o","to":"0"}),
                "foo",
                "f00",
            ),
            (
                json!({"action":"change","property":"payload","from":"o+","to":"0","reg":true}),
                "foo",
                "f0",
            ),
            (
                json!({"action":"change","property":"payload","from":"o+","to":"0","reg":null}),
                "foo",
                "f0",
            ),
        ] {
            let mut f = start(node(cfg.clone())).await;
            f.send("c", Msg::with_payload(payload)).await;
            assert_eq!(
                f.next_from("c").await.msg.payload(),
                Some(&Value::str(expected)),
                "{cfg}"
            );
            f.stop().await;
        }
        let mut f = start(node(json!({"action":"delete","property":"topic"}))).await;
        f.send("c", msg(r#"{"topic":"t"}"#)).await;
        assert!(f.next_from("c").await.msg.get("topic").is_none());
        f.stop().await;
        let mut f = start(node(json!({}))).await;
        f.send("c", msg(r#"{"topic":"t"}"#)).await;
        assert_eq!(
            f.next_from("c").await.msg.get("topic"),
            Some(&Value::str("t"))
        );
        f.stop().await;
    }

    #[tokio::test]
    async fn empty_rules_pass_through_and_complete_fires() {
        let mut f = start(json!([
            {"id":"c","type":"change","rules":[]},
            {"id":"done","type":"complete","scope":["c"]}
        ]))
        .await;
        f.send("c", Msg::with_payload("x")).await;
        assert_eq!(f.next_from("c").await.msg.payload(), Some(&Value::str("x")));
        assert_eq!(
            f.next_from("done").await.msg.payload(),
            Some(&Value::str("x"))
        );
        f.stop().await;
    }

    #[tokio::test]
    async fn validation_errors_name_the_fields() {
        let e = try_start(json!([{"id":"c","type":"change","rules":[
            {"t":"set","p":"payload","to":"{bad","tot":"json"},
            {"t":"change","p":"payload","from":"(","fromt":"re","to":"x"},
            {"t":"set","p":"payload","to":"$now()","tot":"jsonata"},
            {"t":"set","p":"a..b","to":"x"},
            {"t":"frob","p":"payload"},
            {"t":"set","p":"payload","pt":"node","to":"x"},
            {"t":"set","p":"payload","to":"5","tot":"bin"}
        ]}]))
        .await
        .err()
        .unwrap();
        let text = e.to_string();
        for field in [
            "rules[0].to",
            "rules[1].from",
            "rules[2].tot",
            "rules[3].p",
            "rules[4].t",
            "rules[5].pt",
            "rules[6].to",
        ] {
            assert!(
                text.contains(&format!("field \"{field}\"")),
                "{field} in {text}"
            );
        }
        assert!(
            text.contains("JSONata expressions are not supported by flowd yet"),
            "{text}"
        );
        assert!(
            text.contains("Invalid 'from' property: Invalid regular expression: /(/"),
            "{text}"
        );
        assert!(text.contains("\"c\""), "{text}");
        assert_eq!(e.0.len(), 7, "{text}");
        // Type errors in the rule list name the field.
        let e = try_start(json!([{"id":"c","type":"change","rules":[{"t":["set"]}]}]))
            .await
            .err()
            .unwrap();
        assert!(e.to_string().contains("rules[0].t"), "{e}");
    }
}
