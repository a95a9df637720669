//! Environment variables as Node-RED resolves them: built-ins (`NR_NODE_ID`,
//! `NR_FLOW_NAME`, ...), then group env (innermost first), tab env, the
//! `global-config` env, then the process environment. Also the deploy-time
//! `${NAME}` substitution of whole-string node properties.

use crate::value::{json, Value};
use serde_json::{Map, Value as Json};
use std::sync::Arc;

/// One level of env entries (`env: [{name, value, type}]` of a group, tab or global-config).
#[derive(Debug, Default)]
pub struct EnvScope {
    vars: Vec<(String, Value)>,
    parent: Option<Arc<EnvScope>>,
}

impl EnvScope {
    /// Evaluates an `env` array; `type: "env"` entries read the enclosing scopes.
    pub fn from_entries(entries: Option<&Json>, parent: Option<Arc<EnvScope>>) -> Arc<EnvScope> {
        let mut scope = EnvScope {
            vars: Vec::new(),
            parent,
        };
        if let Some(Json::Array(items)) = entries {
            for item in items {
                let Some(name) = item.get("name").and_then(Json::as_str) else {
                    continue;
                };
                let raw = match item.get("value") {
                    Some(Json::String(s)) => s.clone(),
                    Some(Json::Null) | None => String::new(),
                    Some(other) => other.to_string(),
                };
                let ty = item.get("type").and_then(Json::as_str).unwrap_or("str");
                let v = match ty {
                    "num" => Value::Number(crate::value::string_to_number(&raw)),
                    "bool" => Value::Bool(raw.eq_ignore_ascii_case("true")),
                    "json" => json::parse(&raw).unwrap_or(Value::string(raw)),
                    "bin" => match json::parse(&raw) {
                        Ok(Value::Array(a)) => Value::Buffer(
                            a.iter()
                                .map(|x| x.to_number() as u8)
                                .collect::<Vec<u8>>()
                                .into(),
                        ),
                        _ => Value::Buffer(raw.into_bytes().into()),
                    },
                    "env" => match scope.lookup_parents(&raw) {
                        Some(v) => v,
                        None => continue,
                    },
                    _ => Value::string(raw),
                };
                scope.vars.push((name.to_string(), v));
            }
        }
        Arc::new(scope)
    }

    fn lookup_parents(&self, name: &str) -> Option<Value> {
        match &self.parent {
            Some(p) => p.lookup(name),
            None => std::env::var(name).ok().map(Value::string),
        }
    }

    /// Looks `name` up in this scope, its parents, then the process environment.
    pub fn lookup(&self, name: &str) -> Option<Value> {
        if let Some((_, v)) = self.vars.iter().rev().find(|(n, _)| n == name) {
            return Some(v.clone());
        }
        self.lookup_parents(name)
    }
}

/// The environment seen by one node.
#[derive(Debug, Clone)]
pub struct NodeEnv {
    builtins: Vec<(&'static str, String)>,
    scope: Option<Arc<EnvScope>>,
}

impl NodeEnv {
    /// An environment with the node's built-ins over `scope`.
    pub fn new(builtins: Vec<(&'static str, String)>, scope: Option<Arc<EnvScope>>) -> Self {
        NodeEnv { builtins, scope }
    }

    /// Only the process environment (for tests and config-less nodes).
    pub fn process() -> Self {
        NodeEnv {
            builtins: Vec::new(),
            scope: None,
        }
    }

    /// The value of env var `name`, if set.
    pub fn get(&self, name: &str) -> Option<Value> {
        if let Some((_, v)) = self.builtins.iter().find(|(n, _)| *n == name) {
            return Some(Value::str(v));
        }
        match &self.scope {
            Some(s) => s.lookup(name),
            None => std::env::var(name).ok().map(Value::string),
        }
    }
}

/// The variable named by a whole-string reference `${NAME}` or `$(NAME)`.
fn whole_reference(s: &str) -> Option<&str> {
    let inner = s
        .strip_prefix("${")
        .and_then(|r| r.strip_suffix('}'))
        .or_else(|| s.strip_prefix("$(").and_then(|r| r.strip_suffix(')')))?;
    (!inner.is_empty() && !inner.chars().any(char::is_whitespace)).then_some(inner)
}

/// Replaces every property value that is exactly `${NAME}` by the variable's
/// value (recursively into arrays and objects). Unset or empty variables leave
/// the text as it is. Structural keys (`id`, `type`, `z`, `wires`) are skipped.
pub fn substitute_properties(raw: &mut Map<String, Json>, env: &NodeEnv) {
    for (k, v) in raw.iter_mut() {
        if matches!(k.as_str(), "id" | "type" | "z" | "g" | "wires" | "x" | "y") {
            continue;
        }
        substitute_value(v, env);
    }
}

/// [`substitute_properties`] for one value.
pub fn substitute_value(v: &mut Json, env: &NodeEnv) {
    match v {
        Json::String(s) => {
            if let Some(name) = whole_reference(s) {
                match env.get(name) {
                    Some(Value::String(t)) if t.is_empty() => {}
                    Some(val) => *v = val.to_serde(),
                    None => {}
                }
            }
        }
        Json::Array(a) => a.iter_mut().for_each(|x| substitute_value(x, env)),
        Json::Object(o) => o.values_mut().for_each(|x| substitute_value(x, env)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn whole_string_only() {
        assert_eq!(whole_reference("${A}"), Some("A"));
        assert_eq!(whole_reference("$(A)"), Some("A"));
        assert_eq!(whole_reference("x ${A}"), None);
        assert_eq!(whole_reference("${A B}"), None);
        assert_eq!(whole_reference("${}"), None);
    }

    #[test]
    fn scopes_chain_and_types_evaluate() {
        let global =
            EnvScope::from_entries(Some(&json!([{"name":"G","value":"g","type":"str"}])), None);
        let tab = EnvScope::from_entries(
            Some(&json!([
                {"name":"N","value":"5","type":"num"},
                {"name":"B","value":"TRUE","type":"bool"},
                {"name":"J","value":"{\"a\":1}","type":"json"},
                {"name":"E","value":"G","type":"env"}
            ])),
            Some(global),
        );
        let env = NodeEnv::new(vec![("NR_NODE_ID", "n1".into())], Some(tab));
        assert_eq!(env.get("N"), Some(Value::Number(5.0)));
        assert_eq!(env.get("B"), Some(Value::Bool(true)));
        assert_eq!(env.get("J").unwrap().to_json(), r#"{"a":1}"#);
        assert_eq!(env.get("E"), Some(Value::str("g")));
        assert_eq!(env.get("G"), Some(Value::str("g")));
        assert_eq!(env.get("NR_NODE_ID"), Some(Value::str("n1")));
        assert_eq!(env.get("FLOWD_SURELY_UNSET_VAR"), None);
    }

    #[test]
    fn substitution_is_recursive_and_leaves_unset_names() {
        let tab = EnvScope::from_entries(
            Some(&json!([{"name":"T","value":"topic/a"},{"name":"N","value":"3","type":"num"}])),
            None,
        );
        let env = NodeEnv::new(vec![], Some(tab));
        let mut raw = json!({"topic":"${T}","rules":[{"to":"${N}"},{"to":"x ${T}"}],"other":"${FLOWD_UNSET_XYZ}"})
            .as_object()
            .unwrap()
            .clone();
        substitute_properties(&mut raw, &env);
        assert_eq!(raw["topic"], "topic/a");
        assert_eq!(raw["rules"][0]["to"], 3);
        assert_eq!(raw["rules"][1]["to"], "x ${T}");
        assert_eq!(raw["other"], "${FLOWD_UNSET_XYZ}");
    }
}
