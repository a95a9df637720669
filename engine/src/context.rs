//! Node, flow and global context: in-memory key/value stores, owned by the
//! executor (so reading or writing context takes no lock and no I/O).
//!
//! Keys are property paths (`a.b[0]`) and may name a store with Node-RED's
//! `#:(store)::key` prefix; flowd has one store per runtime, so the store
//! name is accepted and ignored.
//!
//! The store is memory only ([`ContextStore::new`]) or kept on disk
//! ([`ContextStore::persistent`], Node-RED's `localfilesystem`): the data
//! stays in memory, each scope remembers whether it changed, and every flush
//! interval (and when the runtime stops) the executor hands copies of the
//! changed scopes to a background writer ([`file`]), which writes each one
//! atomically. Copies are cheap: values are copy-on-write.
//!
//! Lifetime, as in Node-RED: in memory, a node's own context is dropped when
//! the node stops; with a persistent store it survives restarts of the node
//! and of flowd, and only contexts of nodes and tabs that no longer exist are
//! cleaned (at start and after every deploy). The global context is never
//! cleaned.

pub mod file;

use crate::node::NodeInfo;
use crate::value::path::{self, Path, PathError};
use crate::value::{Object, Str, Value};
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::mpsc;

pub use file::{ContextFileError, FileContextStorage};

/// Node-RED's default flush interval for `localfilesystem`.
pub const DEFAULT_FLUSH_INTERVAL: Duration = Duration::from_secs(30);

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

/// One stored scope, as persisted: which file it goes to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ScopeKey {
    /// The global context.
    Global,
    /// The context of tab `0`.
    Flow(Str),
    /// The own context of a node (`id`) on tab `flow`.
    Node {
        /// The node's id.
        id: Str,
        /// The node's tab.
        flow: Str,
    },
}

/// Scopes that changed since the last flush: their data now, or `None` when
/// the scope was removed.
pub type ContextChanges = Vec<(ScopeKey, Option<Object>)>;

/// The data of one scope and whether it changed since the last flush.
#[derive(Debug, Default)]
struct Scope {
    data: Object,
    dirty: bool,
}

/// Where a persistent store's changes go.
#[derive(Debug)]
struct Persistence {
    storage: FileContextStorage,
    flush_interval: Duration,
    /// The background writer; set when the runtime starts.
    writer: Option<mpsc::UnboundedSender<ContextChanges>>,
    /// Scopes removed since the last flush.
    removed: Vec<ScopeKey>,
}

/// All context data of a runtime.
#[derive(Debug, Default)]
pub struct ContextStore {
    global: Scope,
    flows: HashMap<Str, Scope>,
    /// Node scopes by node id, with the node's tab.
    nodes: HashMap<Str, (Str, Scope)>,
    persistence: Option<Persistence>,
}

impl ContextStore {
    /// An empty in-memory store.
    pub fn new() -> Self {
        ContextStore::default()
    }

    /// A store kept in `storage`: loads what it holds (an unreadable or
    /// corrupt file is an error naming it); changes are written every
    /// `flush_interval` once a runtime runs on the store.
    pub fn persistent(
        storage: FileContextStorage,
        flush_interval: Duration,
    ) -> Result<ContextStore, ContextFileError> {
        let mut store = ContextStore::new();
        for (key, data) in storage.load()? {
            let scope = Scope { data, dirty: false };
            match key {
                ScopeKey::Global => store.global = scope,
                ScopeKey::Flow(z) => {
                    store.flows.insert(z, scope);
                }
                ScopeKey::Node { id, flow } => {
                    store.nodes.insert(id, (flow, scope));
                }
            }
        }
        store.persistence = Some(Persistence {
            storage,
            flush_interval,
            writer: None,
            removed: Vec::new(),
        });
        Ok(store)
    }

    /// True when the store is kept on disk.
    pub fn is_persistent(&self) -> bool {
        self.persistence.is_some()
    }

    /// The storage and flush interval of a persistent store.
    pub(crate) fn storage(&self) -> Option<(FileContextStorage, Duration)> {
        self.persistence
            .as_ref()
            .map(|p| (p.storage.clone(), p.flush_interval))
    }

    /// Sends every later flush to `writer`.
    pub(crate) fn set_writer(&mut self, writer: mpsc::UnboundedSender<ContextChanges>) {
        if let Some(p) = &mut self.persistence {
            p.writer = Some(writer);
        }
    }

    fn scope(&self, scope: ContextScope, info: &NodeInfo) -> Option<&Scope> {
        match scope {
            ContextScope::Global => Some(&self.global),
            ContextScope::Flow => self.flows.get(info.z.as_ref()?),
            ContextScope::Node => self.nodes.get(&info.id).map(|(_, s)| s),
        }
    }

    fn scope_mut(&mut self, scope: ContextScope, info: &NodeInfo) -> &mut Scope {
        match scope {
            ContextScope::Global => &mut self.global,
            ContextScope::Flow => self
                .flows
                .entry(info.z.clone().unwrap_or_default())
                .or_default(),
            ContextScope::Node => {
                &mut self
                    .nodes
                    .entry(info.id.clone())
                    .or_insert_with(|| (info.z.clone().unwrap_or_default(), Scope::default()))
                    .1
            }
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
        // Read as Node-RED's stores do (getObjectProperty): JavaScript
        // property access, so `s.length` and `s.0` of a string resolve.
        Ok(self
            .scope(scope, info)
            .and_then(|s| path::get_js(&s.data, &p))
            .map(std::borrow::Cow::into_owned))
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
        let s = self.scope_mut(scope, info);
        s.dirty = true;
        match value {
            Some(v) => path::set(&mut s.data, &p, v, true),
            None => {
                path::delete(&mut s.data, &p);
                Ok(())
            }
        }
    }

    /// A node stopped: in memory its own context is dropped (Node-RED
    /// without a configured store); a persistent store keeps it.
    pub fn clear_node(&mut self, id: &str) {
        if self.persistence.is_none() {
            self.nodes.remove(id);
        }
    }

    fn note_removed(&mut self, key: ScopeKey) {
        if let Some(p) = &mut self.persistence {
            p.removed.push(key);
        }
    }

    /// Drops flow contexts of tabs not in `keep` (and, when persistent, the
    /// node contexts kept for nodes of those tabs).
    pub fn retain_flows(&mut self, keep: impl Fn(&str) -> bool) {
        let mut removed = Vec::new();
        self.flows.retain(|z, _| {
            let k = keep(z);
            if !k {
                removed.push(ScopeKey::Flow(z.clone()));
            }
            k
        });
        self.nodes.retain(|id, (z, _)| {
            let k = z.is_empty() || keep(z);
            if !k {
                removed.push(ScopeKey::Node {
                    id: id.clone(),
                    flow: z.clone(),
                });
            }
            k
        });
        for key in removed {
            self.note_removed(key);
        }
    }

    /// Drops the contexts of nodes not in `keep`.
    pub fn retain_nodes(&mut self, keep: impl Fn(&str) -> bool) {
        let mut removed = Vec::new();
        self.nodes.retain(|id, (z, _)| {
            let k = keep(id);
            if !k {
                removed.push(ScopeKey::Node {
                    id: id.clone(),
                    flow: z.clone(),
                });
            }
            k
        });
        for key in removed {
            self.note_removed(key);
        }
    }

    /// The global context (e.g. to pre-populate it).
    pub fn global_mut(&mut self) -> &mut Object {
        self.global.dirty = true;
        &mut self.global.data
    }

    /// Takes the scopes changed or removed since the last call: copies of
    /// their data (cheap, copy-on-write), in a stable order.
    pub fn take_changes(&mut self) -> ContextChanges {
        let mut out: ContextChanges = Vec::new();
        if let Some(p) = &mut self.persistence {
            out.extend(p.removed.drain(..).map(|k| (k, None)));
        }
        if self.global.dirty {
            self.global.dirty = false;
            out.push((ScopeKey::Global, Some(self.global.data.clone())));
        }
        // Scopes of nodes without a tab (config nodes) have no place in the
        // layout and stay in memory.
        for (z, s) in self
            .flows
            .iter_mut()
            .filter(|(z, s)| s.dirty && !z.is_empty())
        {
            s.dirty = false;
            out.push((ScopeKey::Flow(z.clone()), Some(s.data.clone())));
        }
        for (id, (z, s)) in self
            .nodes
            .iter_mut()
            .filter(|(_, (z, s))| s.dirty && !z.is_empty())
        {
            s.dirty = false;
            out.push((
                ScopeKey::Node {
                    id: id.clone(),
                    flow: z.clone(),
                },
                Some(s.data.clone()),
            ));
        }
        // A scope removed and then used again in the same interval is written.
        out.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.is_some().cmp(&b.1.is_some())));
        out
    }

    /// Hands what changed to the background writer (persistent stores with
    /// a running writer; otherwise nothing happens). No I/O here.
    pub fn flush(&mut self) {
        let Some(writer) = self.persistence.as_ref().and_then(|p| p.writer.clone()) else {
            return;
        };
        let changes = self.take_changes();
        if !changes.is_empty() && writer.send(changes).is_err() {
            tracing::error!("Context writer has stopped; context changes are not saved.");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn info(id: &str, z: &str) -> NodeInfo {
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
    fn reads_use_javascript_property_access() {
        let mut c = ContextStore::new();
        let a = info("a", "t1");
        c.set(ContextScope::Flow, &a, "s", Some(Value::str("abc")))
            .unwrap();
        let arr = crate::value::json::parse("[1,2,3]").unwrap();
        c.set(ContextScope::Flow, &a, "arr", Some(arr)).unwrap();
        let get = |k: &str| c.get(ContextScope::Flow, &a, k).unwrap();
        assert_eq!(get("s.length"), Some(Value::Number(3.0)));
        assert_eq!(get("s.0"), Some(Value::str("a")));
        assert_eq!(get("arr.length"), Some(Value::Number(3.0)));
        assert_eq!(get("arr[1]"), Some(Value::Number(2.0)));
        assert_eq!(get("s.nope"), None);
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

    #[test]
    fn changes_are_taken_once_per_scope() {
        let mut c = ContextStore::new();
        let a = info("a", "t1");
        assert!(c.take_changes().is_empty());
        c.set(ContextScope::Flow, &a, "x", Some(Value::Number(1.0)))
            .unwrap();
        c.set(ContextScope::Flow, &a, "y", Some(Value::Number(2.0)))
            .unwrap();
        c.set(ContextScope::Node, &a, "n", Some(Value::Bool(true)))
            .unwrap();
        let changes = c.take_changes();
        let keys: Vec<&ScopeKey> = changes.iter().map(|(k, _)| k).collect();
        assert_eq!(
            keys,
            [
                &ScopeKey::Flow(Str::new("t1")),
                &ScopeKey::Node {
                    id: Str::new("a"),
                    flow: Str::new("t1")
                }
            ]
        );
        assert_eq!(changes[0].1.as_ref().unwrap().len(), 2);
        assert!(c.take_changes().is_empty(), "nothing changed since");
        // Reads do not make a scope dirty.
        c.get(ContextScope::Global, &a, "g").unwrap();
        assert!(c.take_changes().is_empty());
        // Nodes without a tab keep their context in memory only.
        let config = NodeInfo::detached("cfg", "mqtt-broker");
        c.set(ContextScope::Node, &config, "k", Some(Value::Null))
            .unwrap();
        c.set(ContextScope::Flow, &config, "k", Some(Value::Null))
            .unwrap();
        assert!(c.take_changes().is_empty());
        assert_eq!(
            c.get(ContextScope::Node, &config, "k").unwrap(),
            Some(Value::Null)
        );
    }
}
