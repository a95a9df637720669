//! `template` node: renders a Mustache template against the message (with
//! `{{env.X}}`, `{{flow.x}}` and `{{global.x}}` fallbacks) into a message
//! property or context, as text, parsed JSON or parsed YAML.
//!
//! Mustache behaves as mustache.js does in Node-RED: `{{x}}` is HTML-escaped
//! (including `/`, `=` and backquote), `{{{x}}}` is not; null and missing
//! names render empty; with output "json" strings from the message are
//! escaped for JSON first.

use super::mustache::{MustacheTemplate, RenderOptions, RootLookup, RootSource};
use flowd_engine::config_de;
use flowd_engine::context::ContextScope;
use flowd_engine::node::{BuildContext, BuiltNode, FunctionNode, NodeCx, NodeType};
use flowd_engine::registry::{NodeDescriptor, PropertyDescriptor as Prop, PropertyKind as Kind};
use flowd_engine::value::json;
use flowd_engine::value::path::{js_property, Path, PathError};
use flowd_engine::value::{Object, Str};
use flowd_engine::{Msg, Value};
use serde::Deserialize;
use serde_json::json;
use std::borrow::Cow;

/// The `template` node type.
pub struct TemplateType;

#[derive(Deserialize)]
#[serde(default)]
struct TemplateConfig {
    #[serde(deserialize_with = "config_de::string")]
    template: String,
    #[serde(deserialize_with = "config_de::string")]
    syntax: String,
    #[serde(deserialize_with = "config_de::string")]
    field: String,
    #[serde(rename = "fieldType", deserialize_with = "config_de::string")]
    field_type: String,
    #[serde(deserialize_with = "config_de::string")]
    output: String,
}

impl Default for TemplateConfig {
    fn default() -> Self {
        TemplateConfig {
            template: String::new(),
            syntax: "mustache".into(),
            field: "payload".into(),
            field_type: "msg".into(),
            output: "str".into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Output {
    Str,
    Json,
    Yaml,
}

enum Target {
    Msg(Path),
    Context(ContextScope, String),
}

enum Source {
    /// The node's own template (or, when empty, `msg.template`).
    Mustache(Option<MustacheTemplate>),
    /// A Mustache node without a `template` property: Node-RED's mustache
    /// refuses the undefined template for every message.
    MustacheAbsent,
    Plain(String),
}

/// Node-RED's error for a template node without a `template` property.
const UNDEFINED_TEMPLATE: &str = "Invalid template! Template should be a \"string\" but \"undefined\" was given as the first argument for mustache#render(template, view, partials)";

/// Node-RED's error for a `msg.template` that is not a string.
const NON_STRING_TEMPLATE: &str = "this.tail.search is not a function";

struct TemplateNode {
    source: Source,
    output: Output,
    target: Target,
}

impl NodeType for TemplateType {
    fn type_name(&self) -> &'static str {
        "template"
    }

    fn descriptor(&self) -> NodeDescriptor {
        NodeDescriptor::new(
            "template",
            "function",
            "node-red/template",
            "rgb(243, 181, 103)",
            1,
            1,
        )
        .icon("template.svg")
        .prop(Prop::new(
            "field",
            "Property",
            Kind::Typed {
                types: vec!["msg".into(), "flow".into(), "global".into()],
                type_field: "fieldType".into(),
            },
            json!("payload"),
        ))
        .prop(Prop::new(
            "template",
            "Template",
            Kind::Multiline,
            json!("This is the payload: {{payload}} !"),
        ))
        .prop(Prop::new(
            "syntax",
            "Format",
            Kind::Select {
                options: vec![
                    ("mustache".into(), "Mustache template".into()),
                    ("plain".into(), "Plain text".into()),
                ],
            },
            json!("mustache"),
        ))
        .prop(Prop::new(
            "output",
            "Output as",
            Kind::Select {
                options: vec![
                    ("str".into(), "Plain text".into()),
                    ("json".into(), "Parsed JSON".into()),
                    ("yaml".into(), "Parsed YAML".into()),
                ],
            },
            json!("str"),
        ))
        .prop(Prop::new("name", "Name", Kind::Text, json!("")))
        .help(
            "Sets a property from a Mustache template: `{{payload.temperature}}`, \
                 `{{topic}}`, `{{env.HOME}}`, `{{flow.count}}`. Double braces HTML-escape the \
                 value, triple braces insert it as is.",
        )
    }

    fn keeps_empty_name(&self) -> bool {
        true
    }

    fn build(&self, cx: &mut BuildContext<'_>) -> Option<BuiltNode> {
        let c: TemplateConfig = cx.config()?;
        let mut ok = true;
        let source = match c.syntax.as_str() {
            "plain" => Source::Plain(c.template.clone()),
            "" | "mustache" if !cx.props().contains_key("template") => Source::MustacheAbsent,
            "" | "mustache" => {
                if c.template.is_empty() {
                    Source::Mustache(None)
                } else {
                    match MustacheTemplate::parse(&c.template) {
                        Ok(t) => Source::Mustache(Some(t)),
                        Err(e) => {
                            cx.error("template", format!("the template does not parse: {e}"));
                            ok = false;
                            Source::Mustache(None)
                        }
                    }
                }
            }
            other => {
                cx.error(
                    "syntax",
                    format!("unknown syntax \"{other}\" (expected \"mustache\" or \"plain\")"),
                );
                ok = false;
                Source::Plain(String::new())
            }
        };
        let output = match c.output.as_str() {
            "" | "str" => Output::Str,
            "json" => Output::Json,
            "yaml" => Output::Yaml,
            other => {
                cx.error(
                    "output",
                    format!("unknown output \"{other}\" (expected str, json or yaml)"),
                );
                ok = false;
                Output::Str
            }
        };
        let field = if c.field.is_empty() {
            "payload".to_string()
        } else {
            c.field.clone()
        };
        let target = match c.field_type.as_str() {
            "" | "msg" => match Path::parse(&field) {
                Ok(p) => Some(Target::Msg(p)),
                Err(e) => {
                    cx.error("field", e.to_string());
                    None
                }
            },
            t @ ("flow" | "global") => Some(Target::Context(
                ContextScope::parse(t).unwrap_or(ContextScope::Flow),
                field,
            )),
            other => {
                cx.error("fieldType", format!("unknown property type \"{other}\""));
                None
            }
        };
        let target = target?;
        ok.then_some(BuiltNode::function(TemplateNode {
            source,
            output,
            target,
        }))
    }
}

/// The bottom of the Mustache context stack: the message, then env and context.
struct MessageRoot<'a, 'c> {
    msg: &'a Msg,
    cx: &'a NodeCx<'c>,
}

/// `flow.x`, `global.x`, `flow[store].x` -> (scope, key).
fn context_reference(name: &str) -> Option<(ContextScope, &str)> {
    for (prefix, scope) in [
        ("flow", ContextScope::Flow),
        ("global", ContextScope::Global),
    ] {
        let Some(rest) = name.strip_prefix(prefix) else {
            continue;
        };
        let rest = match rest.strip_prefix('[') {
            Some(r) => {
                let end = r.find(']')?;
                if !r[..end]
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_')
                {
                    return None;
                }
                &r[end + 1..]
            }
            None => rest,
        };
        let key = rest.strip_prefix('.')?;
        if !key.is_empty() {
            return Some((scope, key));
        }
    }
    None
}

impl MessageRoot<'_, '_> {
    fn on_message(&self, name: &str) -> Option<Cow<'_, Value>> {
        // Byte search: names are short and this runs for every tag of every message.
        let dotted = name.bytes().position(|b| b == b'.').is_some_and(|i| i > 0);
        if !dotted {
            return self.msg.get(name).map(Cow::Borrowed);
        }
        let mut parts = name.split('.');
        let mut cur: Cow<'_, Value> = Cow::Borrowed(self.msg.get(parts.next()?)?);
        for part in parts {
            cur = match cur {
                Cow::Borrowed(v) => js_property(v, part)?,
                Cow::Owned(v) => Cow::Owned(js_property(&v, part)?.into_owned()),
            };
        }
        Some(cur)
    }

    fn fallback(&self, name: &str) -> Option<Cow<'_, Value>> {
        if let Some((scope, key)) = context_reference(name) {
            return self
                .cx
                .context_get(scope, key)
                .ok()
                .flatten()
                .map(Cow::Owned);
        }
        if let Some(var) = name.strip_prefix("env.").filter(|v| !v.is_empty()) {
            return self.cx.env(var).map(Cow::Owned);
        }
        None
    }
}

impl RootLookup for MessageRoot<'_, '_> {
    fn lookup(&self, name: &str) -> Option<Cow<'_, Value>> {
        self.on_message(name).or_else(|| self.fallback(name))
    }

    fn lookup_with_source(&self, name: &str) -> Option<(Cow<'_, Value>, RootSource)> {
        match self.on_message(name) {
            Some(v) => Some((v, RootSource::Message)),
            None => self.fallback(name).map(|v| (v, RootSource::Fallback)),
        }
    }
}

/// Converts a parsed YAML document to a value.
fn yaml_to_value(y: &yaml_rust2::Yaml) -> Result<Value, String> {
    use yaml_rust2::Yaml;
    Ok(match y {
        Yaml::Real(s) => Value::Number(
            s.parse::<f64>()
                .or_else(|_| match s.to_ascii_lowercase().trim_start_matches('+') {
                    ".inf" => Ok(f64::INFINITY),
                    "-.inf" => Ok(f64::NEG_INFINITY),
                    ".nan" => Ok(f64::NAN),
                    _ => Err(()),
                })
                .map_err(|_| format!("invalid number {s}"))?,
        ),
        Yaml::Integer(i) => Value::Number(*i as f64),
        Yaml::String(s) => Value::str(s),
        Yaml::Boolean(b) => Value::Bool(*b),
        Yaml::Array(a) => Value::array(a.iter().map(yaml_to_value).collect::<Result<_, _>>()?),
        Yaml::Hash(h) => {
            let mut o = Object::with_capacity(h.len());
            for (k, v) in h {
                let key = match k {
                    Yaml::String(s) => s.clone(),
                    Yaml::Integer(i) => i.to_string(),
                    Yaml::Real(r) => r.clone(),
                    Yaml::Boolean(b) => b.to_string(),
                    Yaml::Null => "null".into(),
                    other => format!("{other:?}"),
                };
                o.insert(Str::from(key), yaml_to_value(v)?);
            }
            Value::object(o)
        }
        Yaml::Null => Value::Null,
        Yaml::Alias(_) | Yaml::BadValue => return Err("unsupported YAML value".into()),
    })
}

fn parse_yaml(text: &str) -> Result<Option<Value>, String> {
    let docs = yaml_rust2::YamlLoader::load_from_str(text).map_err(|e| e.to_string())?;
    match docs.as_slice() {
        [] => Ok(None),
        [doc] => yaml_to_value(doc).map(Some),
        _ => Err("expected a single document in the stream, but found more".into()),
    }
}

impl TemplateNode {
    fn render(&self, msg: &Msg, cx: &NodeCx<'_>) -> Result<String, String> {
        let opts = RenderOptions {
            json_escape_root_strings: self.output == Output::Json,
        };
        let root = MessageRoot { msg, cx };
        match &self.source {
            Source::Plain(t) => Ok(t.clone()),
            Source::Mustache(Some(t)) => t.try_render(&root, opts).map_err(|e| e.to_string()),
            Source::MustacheAbsent => Err(UNDEFINED_TEMPLATE.to_string()),
            Source::Mustache(None) => {
                let text = match msg.get("template") {
                    Some(Value::String(s)) => s.to_string(),
                    Some(_) => return Err(NON_STRING_TEMPLATE.to_string()),
                    None => return Ok(String::new()),
                };
                let t = MustacheTemplate::parse(&text).map_err(|e| e.to_string())?;
                t.try_render(&root, opts).map_err(|e| e.to_string())
            }
        }
    }
}

impl FunctionNode for TemplateNode {
    fn on_input(&mut self, mut msg: Msg, cx: &mut NodeCx<'_>) {
        let text = match self.render(&msg, cx) {
            Ok(t) => t,
            Err(e) => {
                cx.error(e, msg);
                return;
            }
        };
        let value = match self.output {
            Output::Str => Some(Value::string(text)),
            Output::Json => match json::parse(&text) {
                Ok(v) => Some(v),
                Err(e) => {
                    cx.error(json::js_error_message(&text, &e), msg);
                    return;
                }
            },
            Output::Yaml => match parse_yaml(&text) {
                Ok(v) => v,
                Err(e) => {
                    cx.error(e, msg);
                    return;
                }
            },
        };
        let written = match &self.target {
            // As Node-RED's setMessageProperty: a field under a value that
            // cannot hold it is left alone and the message still goes on.
            Target::Msg(path) => match value {
                Some(v) => match msg.set_expr(path, v) {
                    Err(PathError::NotAnObject { .. }) | Ok(()) => Ok(()),
                    Err(e) => Err(e.to_string()),
                },
                None => msg.delete_expr(path).map(|_| ()).map_err(|e| e.to_string()),
            },
            Target::Context(scope, key) => cx
                .context_set(*scope, key, value)
                .map_err(|e| e.to_string()),
        };
        if let Err(e) = written {
            cx.error(e, msg);
            return;
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

    async fn render(node: serde_json::Value, msg: Msg) -> Option<Msg> {
        let mut f = start_one("tp", "template", node).await;
        f.send("tp", msg).await;
        let out = f.next_from_within("tp", Duration::from_millis(300)).await;
        f.stop().await;
        out.map(|s| s.msg)
    }

    fn input(topic: &str, payload: &str) -> Msg {
        let mut m = Msg::with_payload(json::parse(payload).unwrap());
        m.insert("topic", Value::str(topic));
        m
    }

    #[tokio::test]
    async fn seed_pipeline_text() {
        let out = render(
            json!({"template":"Temp in {{payload.room}} is {{payload.temp}} ({{payload}})"}),
            input("in/x", r#"{"temp":"<hot>","room":"k&b"}"#),
        )
        .await
        .unwrap();
        assert_eq!(
            out.payload(),
            Some(&Value::str(
                "Temp in k&amp;b is &lt;hot&gt; ([object Object])"
            ))
        );
    }

    #[tokio::test]
    async fn escaping_and_topics() {
        let out = render(
            json!({"template":"{{topic}} {{{topic}}}"}),
            input("in/x", "1"),
        )
        .await
        .unwrap();
        assert_eq!(out.payload(), Some(&Value::str("in&#x2F;x in/x")));
    }

    #[tokio::test]
    async fn output_json_escapes_message_strings_but_not_quotes() {
        let out = render(
            json!({"template":"{\"v\":\"{{{payload.s}}}\",\"n\":{{payload.n}}}","output":"json"}),
            input("t", r#"{"s":"a\nb\\c","n":5}"#),
        )
        .await
        .unwrap();
        assert_eq!(out.payload().unwrap().to_json(), r#"{"v":"a\nb\\c","n":5}"#);
        // An unescaped quote makes invalid JSON: an error, nothing sent.
        let mut f = start(json!([
            {"id":"tp","type":"template","template":"{\"v\":\"{{{payload}}}\"}","output":"json"},
            {"id":"c","type":"catch","scope":null}
        ]))
        .await;
        f.send("tp", Msg::with_payload("say \"hi\"")).await;
        let caught = f.next_from("c").await.msg;
        let message = caught
            .get("error")
            .and_then(|e| e.as_object())
            .and_then(|e| e.get("message"))
            .cloned();
        // Node.js 20's JSON.parse text, as Node-RED reports it.
        assert_eq!(
            message,
            Some(Value::str(
                "Expected ',' or '}' after property value in JSON at position 11"
            ))
        );
        f.expect_nothing_from("tp", Duration::from_millis(100))
            .await;
        f.stop().await;
    }

    #[tokio::test]
    async fn output_yaml_uses_the_core_schema() {
        let out = render(
            json!({"template":"a: yes\nb: 0x10\nc: [1, two]\nd: ~","output":"yaml"}),
            Msg::new(),
        )
        .await
        .unwrap();
        assert_eq!(
            out.payload().unwrap().to_json(),
            r#"{"a":"yes","b":16,"c":[1,"two"],"d":null}"#
        );
    }

    #[tokio::test]
    async fn plain_syntax_and_msg_template_override() {
        let out = render(
            json!({"template":"{{payload}} raw","syntax":"plain"}),
            Msg::with_payload("x"),
        )
        .await
        .unwrap();
        assert_eq!(out.payload(), Some(&Value::str("{{payload}} raw")));
        let mut m = Msg::with_payload("x");
        m.insert("template", Value::str("over {{payload}}"));
        let out = render(json!({"template":""}), m).await.unwrap();
        assert_eq!(out.payload(), Some(&Value::str("over x")));
    }

    #[tokio::test]
    async fn a_missing_or_non_string_template_is_an_error_for_catch_nodes() {
        let flows = json!([
            {"id":"absent","type":"template","wires":[]},
            {"id":"empty","type":"template","template":"","wires":[]},
            {"id":"c","type":"catch","scope":null,"uncaught":false,"wires":[]}
        ]);
        let mut f = start(flows).await;
        f.send("absent", Msg::with_payload("v")).await;
        let caught = f.next_from("c").await.msg;
        let text = caught.get("error").unwrap().to_json();
        assert!(text.contains("Invalid template!"), "{text}");
        let mut m = Msg::with_payload("v");
        m.insert("template", Value::Number(5.0));
        f.send("empty", m).await;
        let caught = f.next_from("c").await.msg;
        let text = caught.get("error").unwrap().to_json();
        assert!(text.contains("is not a function"), "{text}");
        f.expect_nothing_from("absent", Duration::from_millis(50))
            .await;
        f.expect_nothing_from("empty", Duration::from_millis(50))
            .await;
        f.stop().await;
    }

    #[tokio::test]
    async fn an_empty_name_shows_in_the_error_source_as_in_node_red() {
        let mut f = start(json!([
            {"id":"named","type":"template","name":"","template":"{{payload}}","output":"json","wires":[]},
            {"id":"unnamed","type":"json","name":"","wires":[]},
            {"id":"c","type":"catch","scope":null,"uncaught":false,"wires":[]}
        ]))
        .await;
        let source = |m: Msg| {
            let path = flowd_engine::value::path::Path::parse("error.source").unwrap();
            m.get_path(&path).map(Value::to_json).unwrap_or_default()
        };
        f.send("named", Msg::with_payload("str")).await;
        assert_eq!(
            source(f.next_from("c").await.msg),
            r#"{"id":"named","type":"template","name":"","count":1}"#
        );
        // Other nodes leave an empty name out.
        f.send("unnamed", Msg::with_payload("nope")).await;
        assert_eq!(
            source(f.next_from("c").await.msg),
            r#"{"id":"unnamed","type":"json","count":1}"#
        );
        f.stop().await;
    }

    #[tokio::test]
    async fn a_field_under_a_non_object_is_left_alone_and_the_message_goes_on() {
        let out = render(
            json!({"template":"x","field":"payload.sub.y"}),
            Msg::with_payload("plain"),
        )
        .await
        .expect("sent on");
        assert_eq!(out.payload(), Some(&Value::str("plain")));
    }

    #[tokio::test]
    async fn env_and_flow_context_fallbacks() {
        std::env::set_var("FLOWD_TEST_TPL_GREETING", "hello world");
        let mut f = start(json!([
            {"id":"tp","type":"template","template":"{{env.FLOWD_TEST_TPL_GREETING}}|{{flow.count}}|{{global.missing}}|{{missing}}","field":"topic"},
            {"id":"set","type":"template","template":"7","field":"count","fieldType":"flow"}
        ]))
        .await;
        f.send("set", Msg::new()).await;
        f.next_from("set").await;
        f.send("tp", Msg::new()).await;
        let out = f.next_from("tp").await.msg;
        assert_eq!(out.topic(), Some(&Value::str("hello world|7||")));
        f.stop().await;
    }

    #[tokio::test]
    async fn buffers_render_as_text() {
        let m = Msg::with_payload(Value::Buffer(bytes::Bytes::from_static(b"hi")));
        let out = render(
            json!({"template":"{{payload}}:{{payload.length}}:{{payload.0}}"}),
            m,
        )
        .await
        .unwrap();
        assert_eq!(out.payload(), Some(&Value::str("hi:2:104")));
    }

    #[tokio::test]
    async fn bad_templates_are_validation_errors() {
        let e = try_start(json!([{"id":"tp","type":"template","template":"{{#a}}unclosed","output":"xml","field":"a..b"}]))
            .await
            .err()
            .unwrap();
        let fields: Vec<String> = e.iter().filter_map(|e| e.field.clone()).collect();
        assert_eq!(fields, ["template", "output", "field"]);
        assert!(e.to_string().contains("Unclosed section"), "{e}");
    }
}
