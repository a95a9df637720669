//! Deploy diff: which nodes a new flow set restarts, as Node-RED decides it
//! for its deployment types.
//!
//! A node is *changed* when any property but `x`, `y` and `wires` differs,
//! when it gets new credentials, when a config node it uses changed, or when
//! its tab or group changed; *rewired* when only `wires` differ; *added* /
//! *removed* when it starts or stops running (a node that becomes disabled is
//! removed). *Linked* nodes are those reachable through wires, in either
//! direction, from any modified node. A change of the `global-config` node
//! makes every deploy a full one.

use crate::flows::{FlowSet, NodeDef, GLOBAL_CONFIG, GROUP, SUBFLOW, TAB};
use serde_json::{Map, Value as Json};
use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};

/// Node-RED's deployment types (`Node-RED-Deployment-Type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeployType {
    /// Restart everything.
    Full,
    /// Restart the wire-connected graphs that contain a modification.
    Flows,
    /// Restart only changed and removed nodes; rewire the others in place.
    Nodes,
}

impl DeployType {
    /// Parses `full`, `flows` or `nodes`.
    pub fn parse(s: &str) -> Option<DeployType> {
        match s {
            "full" => Some(DeployType::Full),
            "flows" => Some(DeployType::Flows),
            "nodes" => Some(DeployType::Nodes),
            _ => None,
        }
    }
}

/// How two flow sets differ.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Diff {
    /// Running in the new set only.
    pub added: BTreeSet<String>,
    /// Running in the old set only.
    pub removed: BTreeSet<String>,
    /// Running in both, with different properties (or config, tab, group, credentials).
    pub changed: BTreeSet<String>,
    /// Running in both, only `wires` differ.
    pub rewired: BTreeSet<String>,
    /// Reachable through wires from a modified node.
    pub linked: BTreeSet<String>,
    /// The global environment changed: everything restarts.
    pub global_changed: bool,
}

/// What a deploy stops and starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Restart everything.
    pub full: bool,
    /// Running nodes to stop (they are started again if still in the new set).
    pub stop: BTreeSet<String>,
}

/// Ids of the nodes of `set` that run (enabled, on an enabled tab, not inside a subflow).
pub fn running_ids(set: &FlowSet) -> HashSet<String> {
    let disabled_tabs = set.disabled_tabs();
    let subflows = set.subflows();
    set.nodes
        .iter()
        .filter(|n| !matches!(n.type_name.as_str(), TAB | SUBFLOW | GROUP | GLOBAL_CONFIG))
        .filter(|n| !n.disabled)
        .filter(|n| {
            n.z.as_deref()
                .is_none_or(|z| !disabled_tabs.contains(z) && !subflows.contains(z))
        })
        .map(|n| n.id.clone())
        .collect()
}

/// Properties that matter for behaviour (all but position and wires).
fn behaviour(raw: &Map<String, Json>) -> Map<String, Json> {
    raw.iter()
        .filter(|(k, _)| !matches!(k.as_str(), "x" | "y" | "wires" | "w" | "h" | "_users"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn index(set: &FlowSet) -> HashMap<&str, &NodeDef> {
    set.nodes.iter().map(|n| (n.id.as_str(), n)).collect()
}

/// Compares two flow sets.
pub fn diff(old: &FlowSet, new: &FlowSet) -> Diff {
    let old_by_id = index(old);
    let new_by_id = index(new);
    let old_running = running_ids(old);
    let new_running = running_ids(new);
    let mut d = Diff {
        added: new_running.difference(&old_running).cloned().collect(),
        removed: old_running.difference(&new_running).cloned().collect(),
        ..Diff::default()
    };

    // Containers (tabs, groups, global-config) whose own properties changed.
    let mut changed_containers: HashSet<&str> = HashSet::new();
    for n in &new.nodes {
        if !matches!(n.type_name.as_str(), TAB | GROUP | GLOBAL_CONFIG) {
            continue;
        }
        let differs = old_by_id
            .get(n.id.as_str())
            .is_none_or(|o| behaviour(&o.raw) != behaviour(&n.raw));
        if differs && old_by_id.contains_key(n.id.as_str()) {
            if n.type_name == GLOBAL_CONFIG {
                d.global_changed = true;
            }
            changed_containers.insert(n.id.as_str());
        }
    }
    if old.nodes.iter().any(|n| n.type_name == GLOBAL_CONFIG)
        != new.nodes.iter().any(|n| n.type_name == GLOBAL_CONFIG)
    {
        d.global_changed = true;
    }

    let in_changed_group = |n: &NodeDef| {
        let mut g = n.g.as_deref();
        let mut hops = 0;
        while let (Some(id), true) = (g, hops < 64) {
            if changed_containers.contains(id) {
                return true;
            }
            g = new_by_id.get(id).and_then(|x| x.g.as_deref());
            hops += 1;
        }
        false
    };

    for id in new_running.intersection(&old_running) {
        let (o, n) = (old_by_id[id.as_str()], new_by_id[id.as_str()]);
        let props_differ = behaviour(&o.raw) != behaviour(&n.raw);
        let creds_differ = new
            .credentials
            .get(id)
            .is_some_and(|c| old.credentials.get(id) != Some(c));
        let container =
            n.z.as_deref()
                .is_some_and(|z| changed_containers.contains(z))
                || in_changed_group(n);
        if props_differ || creds_differ || container {
            d.changed.insert(id.clone());
        } else if o.wires != n.wires {
            d.rewired.insert(id.clone());
        }
    }

    // Users of changed config nodes are changed too (transitively).
    let config_ids: HashSet<&str> = new
        .nodes
        .iter()
        .filter(|n| n.is_config)
        .map(|n| n.id.as_str())
        .collect();
    loop {
        let before = d.changed.len();
        let changed_configs: HashSet<String> = d
            .changed
            .iter()
            .chain(d.removed.iter())
            .filter(|id| {
                config_ids.contains(id.as_str())
                    || old_by_id.get(id.as_str()).is_some_and(|n| n.is_config)
            })
            .cloned()
            .collect();
        for id in new_running.intersection(&old_running) {
            let n = new_by_id[id.as_str()];
            let uses = n.raw.iter().any(|(k, v)| {
                !matches!(k.as_str(), "id" | "z" | "g" | "type")
                    && v.as_str().is_some_and(|s| changed_configs.contains(s))
            });
            if uses {
                d.rewired.remove(id);
                d.changed.insert(id.clone());
            }
        }
        if d.changed.len() == before {
            break;
        }
    }

    // Linked: everything wire-connected to a modification, in either direction.
    let mut adjacency: HashMap<&str, Vec<&str>> = HashMap::new();
    for set in [old, new] {
        for n in &set.nodes {
            for t in n.wires.iter().flatten() {
                adjacency.entry(n.id.as_str()).or_default().push(t.as_str());
                adjacency.entry(t.as_str()).or_default().push(n.id.as_str());
            }
        }
    }
    let modified: Vec<&str> = d
        .added
        .iter()
        .chain(&d.removed)
        .chain(&d.changed)
        .chain(&d.rewired)
        .map(String::as_str)
        .collect();
    let mut seen: HashSet<&str> = modified.iter().copied().collect();
    let mut queue: VecDeque<&str> = modified.into_iter().collect();
    while let Some(id) = queue.pop_front() {
        for next in adjacency.get(id).into_iter().flatten() {
            if seen.insert(next) {
                queue.push_back(next);
                if new_running.contains(*next) && old_running.contains(*next) {
                    d.linked.insert(next.to_string());
                }
            }
        }
    }
    d
}

/// Which running nodes a deploy of `kind` stops, given the diff.
pub fn plan(d: &Diff, kind: DeployType) -> Plan {
    let full = kind == DeployType::Full || d.global_changed;
    let mut stop: BTreeSet<String> = d.changed.union(&d.removed).cloned().collect();
    if kind == DeployType::Flows {
        stop.extend(d.rewired.iter().cloned());
        stop.extend(d.linked.iter().cloned());
    }
    Plan { full, stop }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flows::from_json;
    use serde_json::json;

    fn set(v: Json) -> FlowSet {
        let (s, errs) = from_json(v);
        assert!(errs.is_empty(), "{errs:?}");
        s
    }

    fn n(id: &str, t: &str, wires: Json, extra: Json) -> Json {
        let mut o = json!({"id": id, "type": t, "z": "t1", "x": 1, "y": 1, "wires": wires});
        for (k, v) in extra.as_object().cloned().unwrap_or_default() {
            o[k] = v;
        }
        o
    }

    fn base() -> Vec<Json> {
        vec![
            json!({"id":"t1","type":"tab","label":"one"}),
            json!({"id":"cfg","type":"conf","name":"c"}),
            // chain X: a -> b ; chain Y: c -> d (c uses cfg)
            n("a", "pass", json!([["b"]]), json!({})),
            n("b", "pass", json!([]), json!({})),
            n("c", "pass", json!([["d"]]), json!({"cfg":"cfg"})),
            n("d", "pass", json!([]), json!({"name":"D"})),
        ]
    }

    #[test]
    fn moving_a_node_is_not_a_change() {
        let old = set(Json::Array(base()));
        let mut moved = base();
        moved[2]["x"] = json!(500);
        let d = diff(&old, &set(Json::Array(moved)));
        assert_eq!(d, Diff::default());
    }

    #[test]
    fn property_change_restarts_the_node_or_its_chain() {
        let old = set(Json::Array(base()));
        let mut new = base();
        new[5]["name"] = json!("renamed");
        let d = diff(&old, &set(Json::Array(new)));
        assert_eq!(d.changed, BTreeSet::from(["d".to_string()]));
        assert_eq!(d.linked, BTreeSet::from(["c".to_string()]));
        assert_eq!(
            plan(&d, DeployType::Nodes).stop,
            BTreeSet::from(["d".to_string()])
        );
        assert_eq!(
            plan(&d, DeployType::Flows).stop,
            BTreeSet::from(["c".to_string(), "d".to_string()])
        );
        assert!(plan(&d, DeployType::Full).full);
    }

    #[test]
    fn rewired_nodes_keep_running_in_nodes_mode() {
        let old = set(Json::Array(base()));
        let mut new = base();
        new[3]["wires"] = json!([["e"]]);
        new.push(n("e", "pass", json!([]), json!({})));
        let d = diff(&old, &set(Json::Array(new)));
        assert_eq!(d.added, BTreeSet::from(["e".to_string()]));
        assert_eq!(d.rewired, BTreeSet::from(["b".to_string()]));
        assert!(plan(&d, DeployType::Nodes).stop.is_empty());
        assert_eq!(
            plan(&d, DeployType::Flows).stop,
            BTreeSet::from(["a".to_string(), "b".to_string()])
        );
    }

    #[test]
    fn config_changes_reach_their_users_and_disabling_removes() {
        let old = set(Json::Array(base()));
        let mut new = base();
        new[1]["name"] = json!("other");
        new[2]["d"] = json!(true);
        let d = diff(&old, &set(Json::Array(new)));
        assert_eq!(
            d.changed,
            BTreeSet::from(["c".to_string(), "cfg".to_string()])
        );
        assert_eq!(d.removed, BTreeSet::from(["a".to_string()]));
    }

    #[test]
    fn tab_env_and_global_config_changes() {
        let old = set(Json::Array(base()));
        let mut new = base();
        new[0]["env"] = json!([{"name":"A","value":"1","type":"str"}]);
        let d = diff(&old, &set(Json::Array(new)));
        assert_eq!(d.changed.len(), 4, "every node of the tab");
        let mut new = base();
        new.push(json!({"id":"gc","type":"global-config","env":[]}));
        let d = diff(&old, &set(Json::Array(new)));
        assert!(d.global_changed);
        assert!(plan(&d, DeployType::Nodes).full);
    }

    #[test]
    fn new_credentials_change_a_node() {
        let old = set(Json::Array(base()));
        let mut new = base();
        new[1]["credentials"] = json!({"user":"u"});
        let d = diff(&old, &set(Json::Array(new)));
        assert!(d.changed.contains("cfg") && d.changed.contains("c"));
    }
}
