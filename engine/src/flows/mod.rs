//! The Node-RED flows format: parsing `flows.json` text into a [`FlowSet`]
//! and the structural checks that need no knowledge of node types.
//!
//! Accepted forms: the plain array of node objects, and the admin API's
//! `{"rev": ..., "flows": [...], "credentials": {...}}` object. Entry order is
//! kept (it is returned as-is by `GET /flows`).

pub mod env;

use crate::validation::ValidationError;
use serde_json::{Map, Value as Json};
use std::collections::{HashMap, HashSet};

/// Node types that describe structure rather than running nodes.
pub const TAB: &str = "tab";
/// A subflow definition.
pub const SUBFLOW: &str = "subflow";
/// A group of nodes (editor grouping, group env).
pub const GROUP: &str = "group";
/// The global environment holder.
pub const GLOBAL_CONFIG: &str = "global-config";

/// One entry of a flows file.
#[derive(Debug, Clone)]
pub struct NodeDef {
    /// Unique id.
    pub id: String,
    /// Node type (`tab`, `mqtt in`, ...).
    pub type_name: String,
    /// Tab (or subflow) the node belongs to.
    pub z: Option<String>,
    /// Group the node belongs to.
    pub g: Option<String>,
    /// Display name.
    pub name: Option<String>,
    /// Destinations per output port.
    pub wires: Vec<Vec<String>>,
    /// `d: true`: not instantiated.
    pub disabled: bool,
    /// A node without both `x` and `y` is a config node.
    pub is_config: bool,
    /// Every key of the entry, as written.
    pub raw: Map<String, Json>,
}

/// A tab (flow).
#[derive(Debug, Clone)]
pub struct TabDef {
    /// Tab id.
    pub id: String,
    /// Label shown in the editor.
    pub label: String,
    /// `disabled: true`: nothing of this tab runs.
    pub disabled: bool,
}

/// A parsed flow set: every entry in file order, plus credentials by node id.
#[derive(Debug, Clone, Default)]
pub struct FlowSet {
    /// All entries in their original order.
    pub nodes: Vec<NodeDef>,
    /// Credentials by node id (from flows_cred.json or an API deploy).
    pub credentials: HashMap<String, Map<String, Json>>,
    /// Revision given with the v2 form, if any.
    pub rev: Option<String>,
}

impl FlowSet {
    /// Tabs in file order.
    pub fn tabs(&self) -> impl Iterator<Item = TabDef> + '_ {
        self.nodes
            .iter()
            .filter(|n| n.type_name == TAB)
            .map(|n| TabDef {
                id: n.id.clone(),
                label: n
                    .raw
                    .get("label")
                    .and_then(Json::as_str)
                    .unwrap_or(&n.id)
                    .to_string(),
                disabled: n
                    .raw
                    .get("disabled")
                    .and_then(Json::as_bool)
                    .unwrap_or(false),
            })
    }

    /// Ids of tabs with `disabled: true` (none of their nodes run).
    pub fn disabled_tabs(&self) -> HashSet<&str> {
        self.nodes
            .iter()
            .filter(|n| {
                n.type_name == TAB
                    && n.raw
                        .get("disabled")
                        .and_then(Json::as_bool)
                        .unwrap_or(false)
            })
            .map(|n| n.id.as_str())
            .collect()
    }

    /// Ids of subflow definitions (their internal nodes only run inside instances).
    pub fn subflows(&self) -> HashSet<&str> {
        self.nodes
            .iter()
            .filter(|n| n.type_name == SUBFLOW)
            .map(|n| n.id.as_str())
            .collect()
    }

    /// The entry with `id`.
    pub fn get(&self, id: &str) -> Option<&NodeDef> {
        self.nodes.iter().find(|n| n.id == id)
    }

    /// Label of tab `z` (for messages), or None.
    pub fn tab_label(&self, z: Option<&str>) -> Option<String> {
        let z = z?;
        self.nodes
            .iter()
            .find(|n| n.id == z && (n.type_name == TAB || n.type_name == SUBFLOW))
            .map(|n| {
                n.raw
                    .get("label")
                    .or_else(|| n.raw.get("name"))
                    .and_then(Json::as_str)
                    .unwrap_or(z)
                    .to_string()
            })
    }

    /// The flow array as JSON values, in original order (without credentials).
    pub fn to_json(&self) -> Vec<Json> {
        self.nodes
            .iter()
            .map(|n| Json::Object(n.raw.clone()))
            .collect()
    }
}

/// Parses flows text. Returns the JSON entries, or one error with line and column.
pub fn parse_text(text: &str) -> Result<Json, ValidationError> {
    serde_json::from_str::<Json>(text).map_err(|e| {
        ValidationError::file(format!(
            "invalid JSON at line {} column {}: {}",
            e.line(),
            e.column(),
            strip_position(&e.to_string())
        ))
    })
}

fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

fn field_error(
    def: &NodeDef,
    tab: Option<String>,
    field: &str,
    message: impl Into<String>,
) -> ValidationError {
    ValidationError {
        node: Some(def.id.clone()),
        node_type: Some(def.type_name.clone()),
        tab,
        field: Some(field.to_string()),
        message: message.into(),
    }
}

/// Builds a [`FlowSet`] from a parsed document (array or `{flows: [...]}`),
/// collecting every structural error: entries that are not objects, missing
/// or duplicate ids, malformed wires, wires to missing nodes or across tabs,
/// flow nodes without a tab.
pub fn from_json(doc: Json) -> (FlowSet, Vec<ValidationError>) {
    let mut errors = Vec::new();
    let mut set = FlowSet::default();
    let entries = match doc {
        Json::Array(a) => a,
        Json::Object(mut o) => {
            set.rev = o.get("rev").and_then(Json::as_str).map(str::to_string);
            if let Some(Json::Object(creds)) = o.remove("credentials") {
                for (id, c) in creds {
                    if let Json::Object(c) = c {
                        set.credentials.insert(id, c);
                    }
                }
            }
            match o.remove("flows") {
                Some(Json::Array(a)) => a,
                _ => {
                    errors.push(ValidationError::file(
                        "expected an array of nodes, or an object with a \"flows\" array",
                    ));
                    return (set, errors);
                }
            }
        }
        _ => {
            errors.push(ValidationError::file(
                "expected an array of nodes, or an object with a \"flows\" array",
            ));
            return (set, errors);
        }
    };

    let mut seen = HashSet::new();
    for (index, entry) in entries.into_iter().enumerate() {
        let Json::Object(mut raw) = entry else {
            errors.push(ValidationError::file(format!(
                "entry {index} is not an object"
            )));
            continue;
        };
        let id = match raw.get("id") {
            Some(Json::String(s)) if !s.is_empty() => s.clone(),
            _ => {
                let t = raw.get("type").and_then(Json::as_str).map(str::to_string);
                errors.push(ValidationError {
                    node: None,
                    node_type: t,
                    tab: None,
                    field: Some("id".into()),
                    message: format!("entry {index} has no string id"),
                });
                continue;
            }
        };
        let type_name = match raw.get("type") {
            Some(Json::String(s)) if !s.is_empty() => s.clone(),
            _ => {
                errors.push(ValidationError {
                    node: Some(id.clone()),
                    node_type: None,
                    tab: None,
                    field: Some("type".into()),
                    message: "missing node type".into(),
                });
                continue;
            }
        };
        if !seen.insert(id.clone()) {
            errors.push(ValidationError {
                node: Some(id.clone()),
                node_type: Some(type_name.clone()),
                tab: None,
                field: Some("id".into()),
                message: "duplicate node id".into(),
            });
            continue;
        }
        // Credentials are never part of the stored flows.
        if let Some(Json::Object(c)) = raw.remove("credentials") {
            set.credentials.entry(id.clone()).or_default().extend(c);
        }
        let str_field = |k: &str| raw.get(k).and_then(Json::as_str).map(str::to_string);
        let is_config = !(raw.contains_key("x") && raw.contains_key("y"));
        let mut def = NodeDef {
            z: str_field("z").filter(|z| !z.is_empty()),
            g: str_field("g").filter(|g| !g.is_empty()),
            name: str_field("name").filter(|n| !n.is_empty()),
            disabled: raw.get("d").and_then(Json::as_bool).unwrap_or(false),
            wires: Vec::new(),
            is_config,
            id,
            type_name,
            raw: Map::new(),
        };
        match raw.get("wires") {
            None | Some(Json::Null) => {}
            Some(Json::Array(ports)) => {
                let mut ok = true;
                for port in ports {
                    match port {
                        Json::Array(targets) => {
                            let mut v = Vec::with_capacity(targets.len());
                            for t in targets {
                                match t {
                                    Json::String(s) => v.push(s.clone()),
                                    _ => ok = false,
                                }
                            }
                            def.wires.push(v);
                        }
                        Json::String(s) => def.wires.push(vec![s.clone()]),
                        _ => ok = false,
                    }
                }
                if !ok {
                    errors.push(field_error(
                        &def,
                        None,
                        "wires",
                        "each output must be an array of node ids",
                    ));
                }
            }
            Some(_) => errors.push(field_error(
                &def,
                None,
                "wires",
                "must be an array of outputs",
            )),
        }
        def.raw = raw;
        set.nodes.push(def);
    }

    check_references(&set, &mut errors);
    (set, errors)
}

fn check_references(set: &FlowSet, errors: &mut Vec<ValidationError>) {
    let by_id: HashMap<&str, &NodeDef> = set.nodes.iter().map(|n| (n.id.as_str(), n)).collect();
    let is_container = |z: &str| {
        by_id
            .get(z)
            .is_some_and(|n| n.type_name == TAB || n.type_name == SUBFLOW)
    };
    for n in &set.nodes {
        if matches!(n.type_name.as_str(), TAB | SUBFLOW) {
            continue;
        }
        let tab = set.tab_label(n.z.as_deref());
        if !n.is_config && n.type_name != GROUP {
            match &n.z {
                None => errors.push(field_error(n, None, "z", "flow node is not on any tab")),
                Some(z) if !is_container(z) => errors.push(field_error(
                    n,
                    None,
                    "z",
                    format!("tab \"{z}\" does not exist"),
                )),
                _ => {}
            }
        }
        for (port, targets) in n.wires.iter().enumerate() {
            for t in targets {
                match by_id.get(t.as_str()) {
                    None => errors.push(field_error(
                        n,
                        tab.clone(),
                        "wires",
                        format!("output {} is wired to missing node \"{t}\"", port + 1),
                    )),
                    Some(target) if target.z != n.z => errors.push(field_error(
                        n,
                        tab.clone(),
                        "wires",
                        format!(
                            "output {} is wired to node \"{t}\" on another tab (use link nodes)",
                            port + 1
                        ),
                    )),
                    _ => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn accepts_array_and_v2_object() {
        let (set, errs) = from_json(json!([{"id":"t1","type":"tab","label":"Flow"}]));
        assert!(errs.is_empty());
        assert_eq!(set.tabs().next().unwrap().label, "Flow");
        let (set, errs) = from_json(json!({"rev":"abc","flows":[{"id":"t1","type":"tab"}]}));
        assert!(errs.is_empty());
        assert_eq!(set.rev.as_deref(), Some("abc"));
        let (_, errs) = from_json(json!({"nope":1}));
        assert_eq!(errs.len(), 1);
    }

    #[test]
    fn invalid_json_names_line_and_column() {
        let e = parse_text("[\n  {\"id\": \"a\",}\n]").unwrap_err();
        assert!(e.message.contains("line 2 column"), "{}", e.message);
    }

    #[test]
    fn collects_every_structural_error() {
        let (_, errs) = from_json(json!([
            {"id":"t1","type":"tab","label":"Main"},
            {"id":"a","type":"inject","z":"t1","x":1,"y":1,"wires":[["missing"]]},
            {"id":"a","type":"debug","z":"t1","x":1,"y":1,"wires":[]},
            {"id":"b","type":"debug","z":"nope","x":1,"y":1,"wires":[]},
            {"type":"debug"},
            {"id":"c","type":"debug","z":"t1","x":1,"y":1,"wires":"x"},
            42
        ]));
        let text: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        assert_eq!(errs.len(), 6, "{text:#?}");
        assert!(text
            .iter()
            .any(|t| t.contains("missing node \"missing\"") && t.contains("on tab \"Main\"")));
        assert!(text.iter().any(|t| t.contains("duplicate node id")));
        assert!(text
            .iter()
            .any(|t| t.contains("tab \"nope\" does not exist")));
    }

    #[test]
    fn credentials_are_split_from_nodes() {
        let (set, _) = from_json(json!([
            {"id":"b","type":"mqtt-broker","credentials":{"user":"u","password":"p"}}
        ]));
        assert!(set.nodes[0].raw.get("credentials").is_none());
        assert_eq!(set.credentials["b"]["user"], "u");
    }

    #[test]
    fn config_nodes_are_those_without_coordinates() {
        let (set, _) = from_json(json!([
            {"id":"t","type":"tab"},
            {"id":"b","type":"mqtt-broker"},
            {"id":"n","type":"debug","z":"t","x":1,"y":2}
        ]));
        assert!(set.get("b").unwrap().is_config);
        assert!(!set.get("n").unwrap().is_config);
    }
}
