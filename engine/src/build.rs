//! Validation and construction of a flow set ("prepare"): every node is built
//! from its configuration without starting anything, and every problem is
//! collected. A flow set either prepares completely or not at all.

use crate::flows::env::{substitute_properties, EnvScope, NodeEnv};
use crate::flows::{self, FlowSet, NodeDef, GLOBAL_CONFIG, GROUP, SUBFLOW, TAB};
use crate::node::{field_error, BuiltNode, ConfigNode, NodeInfo, NodeKind};
use crate::registry::Registry;
use crate::validation::{ValidationError, ValidationErrors};
use crate::value::Str;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value as Json};
use std::any::Any;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// A built, not yet started node.
pub struct PreparedNode {
    /// Identity.
    pub info: Arc<NodeInfo>,
    /// Destinations per output port (node ids).
    pub wires: Vec<Vec<String>>,
    /// The node.
    pub built: BuiltNode,
    /// Properties after `${ENV}` substitution (what the node was built from).
    pub props: Map<String, Json>,
}

/// A validated flow set, ready to start.
pub struct Prepared {
    /// The flow set it came from.
    pub set: FlowSet,
    /// Config nodes (dependencies first), then flow nodes in file order.
    pub nodes: Vec<PreparedNode>,
}

/// What a node type's `build` sees.
pub struct BuildContext<'a> {
    info: &'a NodeInfo,
    def: &'a NodeDef,
    props: &'a Map<String, Json>,
    credentials: Option<&'a Map<String, Json>>,
    set: &'a FlowSet,
    configs: &'a HashMap<String, Arc<dyn ConfigNode>>,
    errors: &'a mut Vec<ValidationError>,
}

impl<'a> BuildContext<'a> {
    /// The node's identity.
    pub fn info(&self) -> &NodeInfo {
        self.info
    }

    /// The node's properties (after `${ENV}` substitution).
    pub fn props(&self) -> &Map<String, Json> {
        self.props
    }

    /// Number of output ports in the flows file (`wires.length`).
    pub fn outputs(&self) -> usize {
        self.def.wires.len()
    }

    /// Destinations per output port, as written in the flows file.
    pub fn wires(&self) -> &[Vec<String>] {
        &self.def.wires
    }

    /// The flow set being built (to check references such as link targets).
    pub fn flow_set(&self) -> &FlowSet {
        self.set
    }

    /// The node's environment.
    pub fn env(&self) -> &NodeEnv {
        &self.info.env
    }

    /// Reports a problem with `field`.
    pub fn error(&mut self, field: &str, message: impl Into<String>) {
        self.errors.push(field_error(self.info, field, message));
    }

    /// Deserializes the properties into the node's config struct; a type
    /// error is reported naming the field.
    pub fn config<T: DeserializeOwned>(&mut self) -> Option<T> {
        let de = Json::Object(self.props.clone());
        match serde_path_to_error::deserialize::<_, T>(de) {
            Ok(c) => Some(c),
            Err(e) => {
                let field = e.path().to_string();
                let msg = e.inner().to_string();
                self.error(if field == "." { "" } else { &field }, msg);
                None
            }
        }
    }

    /// A credential value (`user`, `password`), with `${ENV}` substitution.
    pub fn credential(&self, key: &str) -> Option<String> {
        let mut v = self.credentials?.get(key)?.clone();
        crate::flows::env::substitute_value(&mut v, &self.info.env);
        match v {
            Json::String(s) => Some(s),
            Json::Null => None,
            other => Some(other.to_string()),
        }
    }

    /// The config node of `expected_type` whose id is in property `field`.
    /// Reports a missing, disabled, invalid or wrong-typed reference.
    pub fn config_node<T: ConfigNode>(
        &mut self,
        field: &str,
        expected_type: &str,
    ) -> Option<Arc<T>> {
        let id = match self.props.get(field) {
            Some(Json::String(s)) if !s.is_empty() => s.clone(),
            _ => {
                self.error(field, format!("no {expected_type} config node selected"));
                return None;
            }
        };
        let Some(target) = self.set.get(&id) else {
            self.error(field, format!("config node \"{id}\" does not exist"));
            return None;
        };
        if target.type_name != expected_type {
            self.error(
                field,
                format!(
                    "node \"{id}\" is a {}, expected a {expected_type} config node",
                    target.type_name
                ),
            );
            return None;
        }
        if target.disabled {
            self.error(field, format!("config node \"{id}\" is disabled"));
            return None;
        }
        if let Some(z) = &target.z {
            let is_tab = self.set.get(z).is_some_and(|t| t.type_name == TAB);
            if is_tab && self.info.z.as_deref() != Some(z.as_str()) {
                self.error(
                    field,
                    format!("config node \"{id}\" belongs to another tab"),
                );
                return None;
            }
        }
        let Some(node) = self.configs.get(&id) else {
            self.error(
                field,
                format!("config node \"{id}\" is invalid (see its errors)"),
            );
            return None;
        };
        let any: Arc<dyn Any + Send + Sync> = node.clone();
        match any.downcast::<T>() {
            Ok(t) => Some(t),
            Err(_) => {
                self.error(
                    field,
                    format!("config node \"{id}\" has an unexpected implementation"),
                );
                None
            }
        }
    }
}

/// Parses, validates and builds flows text (a flows.json file).
pub fn prepare_text(registry: &Registry, text: &str) -> Result<Prepared, ValidationErrors> {
    let doc = flows::parse_text(text).map_err(|e| ValidationErrors(vec![e]))?;
    prepare_json(registry, doc)
}

/// Validates and builds a parsed flows document.
pub fn prepare_json(registry: &Registry, doc: Json) -> Result<Prepared, ValidationErrors> {
    let (set, errors) = flows::from_json(doc);
    prepare(registry, set, errors)
}

fn tab_scope(
    set: &FlowSet,
    z: &str,
    global: &Option<Arc<EnvScope>>,
    cache: &mut HashMap<String, Arc<EnvScope>>,
) -> Option<Arc<EnvScope>> {
    if let Some(s) = cache.get(z) {
        return Some(s.clone());
    }
    let tab = set.get(z)?;
    let s = EnvScope::from_entries(tab.raw.get("env"), global.clone());
    cache.insert(z.to_string(), s.clone());
    Some(s)
}

fn group_scope(
    set: &FlowSet,
    g: &str,
    parent: Option<Arc<EnvScope>>,
    depth: usize,
) -> Option<Arc<EnvScope>> {
    let group = set.get(g).filter(|n| n.type_name == GROUP)?;
    let parent = match (&group.g, depth < 16) {
        (Some(outer), true) => group_scope(set, outer, parent.clone(), depth + 1).or(parent),
        _ => parent,
    };
    Some(EnvScope::from_entries(group.raw.get("env"), parent))
}

fn node_info(
    set: &FlowSet,
    def: &NodeDef,
    global: &Option<Arc<EnvScope>>,
    tabs: &mut HashMap<String, Arc<EnvScope>>,
) -> NodeInfo {
    let tab_label = set.tab_label(def.z.as_deref());
    let mut scope = match &def.z {
        Some(z) => tab_scope(set, z, global, tabs).or_else(|| global.clone()),
        None => global.clone(),
    };
    let mut builtins: Vec<(&'static str, String)> = vec![
        ("NR_NODE_ID", def.id.clone()),
        ("NR_NODE_NAME", def.name.clone().unwrap_or_default()),
        (
            "NR_NODE_PATH",
            match &def.z {
                Some(z) => format!("{z}/{}", def.id),
                None => def.id.clone(),
            },
        ),
    ];
    if let Some(z) = &def.z {
        builtins.push(("NR_FLOW_ID", z.clone()));
        builtins.push(("NR_FLOW_NAME", tab_label.clone().unwrap_or_default()));
    }
    if let Some(g) = &def.g {
        if let Some(group) = set.get(g) {
            builtins.push(("NR_GROUP_ID", g.clone()));
            builtins.push((
                "NR_GROUP_NAME",
                group
                    .raw
                    .get("name")
                    .and_then(Json::as_str)
                    .unwrap_or("")
                    .to_string(),
            ));
        }
        scope = group_scope(set, g, scope.clone(), 0).or(scope);
    }
    NodeInfo {
        id: Str::new(&def.id),
        type_name: Str::new(&def.type_name),
        name: def.name.as_deref().map(Str::new),
        z: def.z.as_deref().map(Str::new),
        tab_label: tab_label.as_deref().map(Str::new),
        g: def.g.as_deref().map(Str::new),
        env: NodeEnv::new(builtins, scope),
    }
}

/// Config node ids a config node's properties refer to.
fn config_refs<'s>(def: &NodeDef, config_ids: &HashSet<&'s str>) -> Vec<&'s str> {
    def.raw
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "id" | "z" | "g" | "type"))
        .filter_map(|(_, v)| v.as_str())
        .filter_map(|s| config_ids.get(s).copied())
        .filter(|s| *s != def.id)
        .collect()
}

/// Validates a flow set and builds every node; `errors` are structural
/// problems found while parsing, reported together with the rest.
pub fn prepare(
    registry: &Registry,
    set: FlowSet,
    errors: Vec<ValidationError>,
) -> Result<Prepared, ValidationErrors> {
    prepare_reusing(registry, set, errors, &HashMap::new())
}

/// [`prepare`], handing the config nodes in `reuse` (by id) to their users
/// instead of building them again: a deploy keeps unchanged config nodes
/// (and their connections) running.
pub fn prepare_reusing(
    registry: &Registry,
    set: FlowSet,
    mut errors: Vec<ValidationError>,
    reuse: &HashMap<String, Arc<dyn ConfigNode>>,
) -> Result<Prepared, ValidationErrors> {
    let disabled_tabs = set.disabled_tabs();
    let subflows = set.subflows();
    let global_env = set
        .nodes
        .iter()
        .find(|n| n.type_name == GLOBAL_CONFIG)
        .map(|n| EnvScope::from_entries(n.raw.get("env"), None));

    // Which entries run, and unknown types (reported even for disabled nodes,
    // as Node-RED refuses to start with missing types).
    let mut active: Vec<&NodeDef> = Vec::new();
    for n in &set.nodes {
        if matches!(n.type_name.as_str(), TAB | SUBFLOW | GROUP | GLOBAL_CONFIG) {
            continue;
        }
        if n.z.as_deref().is_some_and(|z| subflows.contains(z)) {
            continue; // subflow internals only run inside instances
        }
        let tab = set.tab_label(n.z.as_deref());
        if n.type_name.starts_with("subflow:") {
            errors.push(ValidationError {
                node: Some(n.id.clone()),
                node_type: Some(n.type_name.clone()),
                tab,
                field: Some("type".into()),
                message: "subflow instances are not supported by flowd yet".into(),
            });
            continue;
        }
        if registry.get(&n.type_name).is_none() {
            errors.push(ValidationError {
                node: Some(n.id.clone()),
                node_type: Some(n.type_name.clone()),
                tab,
                field: Some("type".into()),
                message: format!("unknown node type \"{}\"", n.type_name),
            });
            continue;
        }
        if n.disabled || n.z.as_deref().is_some_and(|z| disabled_tabs.contains(z)) {
            continue;
        }
        active.push(n);
    }

    let mut tab_scopes = HashMap::new();
    let mut configs: HashMap<String, Arc<dyn ConfigNode>> = HashMap::new();
    let mut prepared: Vec<PreparedNode> = Vec::new();

    let build_one = |def: &NodeDef,
                     configs: &HashMap<String, Arc<dyn ConfigNode>>,
                     errors: &mut Vec<ValidationError>,
                     tab_scopes: &mut HashMap<String, Arc<EnvScope>>|
     -> Option<PreparedNode> {
        let node_type = registry.get(&def.type_name)?;
        let mut info = node_info(&set, def, &global_env, tab_scopes);
        if info.name.is_none()
            && node_type.keeps_empty_name()
            && def.raw.get("name") == Some(&Json::String(String::new()))
        {
            info.name = Some(Str::new(""));
        }
        let mut props = def.raw.clone();
        substitute_properties(&mut props, &info.env);
        let before = errors.len();
        let built = {
            let mut cx = BuildContext {
                info: &info,
                def,
                props: &props,
                credentials: set.credentials.get(&def.id),
                set: &set,
                configs,
                errors,
            };
            node_type.build(&mut cx)
        };
        match built {
            Some(b) if errors.len() == before => Some(PreparedNode {
                info: Arc::new(info),
                wires: def.wires.clone(),
                built: b,
                props,
            }),
            Some(_) => None,
            None => {
                if errors.len() == before {
                    errors.push(field_error(&info, "", "invalid configuration"));
                }
                None
            }
        }
    };

    // Config nodes first, each after the config nodes it refers to.
    let config_defs: Vec<&NodeDef> = active.iter().copied().filter(|n| n.is_config).collect();
    let config_ids: HashSet<&str> = config_defs.iter().map(|n| n.id.as_str()).collect();
    let mut pending: Vec<&NodeDef> = config_defs.clone();
    let mut failed: HashSet<&str> = HashSet::new();
    while !pending.is_empty() {
        let (ready, blocked): (Vec<&NodeDef>, Vec<&NodeDef>) = pending.iter().partition(|d| {
            config_refs(d, &config_ids)
                .iter()
                .all(|r| configs.contains_key(*r) || failed.contains(r))
        });
        // A cycle: build the rest anyway; their references report errors.
        let batch = if ready.is_empty() {
            blocked.clone()
        } else {
            ready
        };
        let rest: Vec<&NodeDef> = if batch.len() == pending.len() {
            Vec::new()
        } else {
            blocked
        };
        for def in batch {
            if let Some(kept) = reuse.get(&def.id) {
                configs.insert(def.id.clone(), kept.clone());
                let info = node_info(&set, def, &global_env, &mut tab_scopes);
                prepared.push(PreparedNode {
                    info: Arc::new(info),
                    wires: def.wires.clone(),
                    built: BuiltNode::config(kept.clone()),
                    props: def.raw.clone(),
                });
                continue;
            }
            match build_one(def, &configs, &mut errors, &mut tab_scopes) {
                Some(p) => {
                    if let NodeKind::Config(c) = &p.built.kind {
                        configs.insert(def.id.clone(), c.clone());
                    }
                    prepared.push(p);
                }
                None => {
                    failed.insert(def.id.as_str());
                }
            }
        }
        pending = rest;
    }

    for def in active.iter().filter(|n| !n.is_config) {
        if let Some(p) = build_one(def, &configs, &mut errors, &mut tab_scopes) {
            prepared.push(p);
        }
    }

    if errors.is_empty() {
        Ok(Prepared {
            set,
            nodes: prepared,
        })
    } else {
        Err(ValidationErrors(errors))
    }
}
