//! Node, flow and global context: in-memory key/value stores, owned by the
//! executor (so reading or writing context takes no lock).
//!
//! Keys are property paths (`a.b[0]`) and may name a store with Node-RED's
//! `#:(store)::key` prefix; flowd keeps every store in memory for now, so
//! the store name is accepted and ignored.

use crate::node::NodeInfo;
use crate::value::path::{self, Path, PathError};
use crate::value::{Object, Str, Value};
use std::collections::HashMap;

/// Which context a key lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContextScope {
    /// The node's own context.
    Node,
    /// The context of the node's tab.
    Flow,
    /// The context shared by all flows.
    Global,
}

impl ContextScope {
    /// Parses `"flow"` / `"global"` / `"node"`.
    pub fn parse(s: &str) -> Option<ContextScope> {
        match s {
            "node" => Some(ContextScope::Node),
            "flow" => Some(ContextScope::Flow),
            "global" => Some(ContextScope::Global),
            _ => None,
        }
    }
}

/// Splits `#:(store)::key` into (store, key).
pub fn split_store(key: &str) -> (Option<&str>, &str) {
    if let Some(rest) = key.strip_prefix("#:(") {
        if let Some(end) = rest.find(")::") {
            return (Some(&rest[..end]), &rest[end + 3..]);
        }
    }
    (None, key)
}

/// All context data of a runtime.
#[derive(Debug, Default)]
pub struct ContextStore {
    global: Object,
    flows: HashMap<Str, Object>,
    nodes: HashMap<Str, Object>,
}

impl ContextStore {
    /// An empty store.
    pub fn new() -> Self {
        ContextStore::default()
    }

    fn object(&self, scope: ContextScope, info: &NodeInfo) -> Option<&Object> {
        match scope {
            ContextScope::Global => Some(&self.global),
            ContextScope::Flow => self.flows.get(info.z.as_ref()?),
            ContextScope::Node => self.nodes.get(&info.id),
        }
    }

    fn object_mut(&mut self, scope: ContextScope, info: &NodeInfo) -> &mut Object {
        match scope {
            ContextScope::Global => &mut self.global,
            ContextScope::Flow => self
                .flows
                .entry(info.z.clone().unwrap_or_default())
                .or_default(),
            ContextScope::Node => self.nodes.entry(info.id.clone()).or_default(),
        }
    }

    /// Reads `key` (a path) in `scope` as `info`'s node sees it.
    pub fn get(
        &self,
        scope: ContextScope,
        info: &NodeInfo,
        key: &str,
    ) -> Result<Option<Value>, PathError> {
        let (_, key) = split_store(key);
        let p = Path::parse(key)?;
        Ok(self
            .object(scope, info)
            .and_then(|o| path::get(o, &p))
            .cloned())
    }

    /// Writes `key`; `None` deletes it.
    pub fn set(
        &mut self,
        scope: ContextScope,
        info: &NodeInfo,
        key: &str,
        value: Option<Value>,
    ) -> Result<(), PathError> {
        let (_, key) = split_store(key);
        let p = Path::parse(key)?;
        let obj = self.object_mut(scope, info);
        match value {
            Some(v) => path::set(obj, &p, v, true),
            None => {
                path::delete(obj, &p);
                Ok(())
            }
        }
    }

    /// Drops a node's own context (when the node stops).
    pub fn clear_node(&mut self, id: &str) {
        self.nodes.remove(id);
    }

    /// Drops flow contexts of tabs not in `keep`.
    pub fn retain_flows(&mut self, keep: impl Fn(&str) -> bool) {
        self.flows.retain(|k, _| keep(k));
    }

    /// The global context (e.g. to pre-populate it).
    pub fn global_mut(&mut self) -> &mut Object {
        &mut self.global
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(id: &str, z: &str) -> NodeInfo {
        let mut i = NodeInfo::detached(id, "change");
        i.z = Some(Str::new(z));
        i
    }

    #[test]
    fn flow_context_is_per_tab_and_global_is_shared() {
        let mut c = ContextStore::new();
        let a = info("a", "t1");
        let b = info("b", "t1");
        let other = info("c", "t2");
        c.set(ContextScope::Flow, &a, "x.y", Some(Value::Number(1.0)))
            .unwrap();
        c.set(
            ContextScope::Global,
            &a,
            "#:(file)::g",
            Some(Value::str("v")),
        )
        .unwrap();
        assert_eq!(
            c.get(ContextScope::Flow, &b, "x.y").unwrap(),
            Some(Value::Number(1.0))
        );
        assert_eq!(c.get(ContextScope::Flow, &other, "x.y").unwrap(), None);
        assert_eq!(
            c.get(ContextScope::Global, &other, "g").unwrap(),
            Some(Value::str("v"))
        );
        c.set(ContextScope::Flow, &a, "x.y", None).unwrap();
        assert_eq!(c.get(ContextScope::Flow, &b, "x.y").unwrap(), None);
    }

    #[test]
    fn node_context_is_private_and_cleared() {
        let mut c = ContextStore::new();
        let a = info("a", "t1");
        c.set(ContextScope::Node, &a, "n", Some(Value::Bool(true)))
            .unwrap();
        assert_eq!(
            c.get(ContextScope::Node, &info("b", "t1"), "n").unwrap(),
            None
        );
        c.clear_node("a");
        assert_eq!(c.get(ContextScope::Node, &a, "n").unwrap(), None);
    }

    #[test]
    fn store_prefix_is_split() {
        assert_eq!(split_store("#:(file)::a.b"), (Some("file"), "a.b"));
        assert_eq!(split_store("a.b"), (None, "a.b"));
    }
}
