//! Routing of node events to catch, status and complete nodes, as Node-RED's
//! `Flow.handleError` / `handleStatus` / `handleComplete` do it.

use super::executor::Executor;
use crate::flows::FlowSet;
use crate::msg::Msg;
use crate::node::{NodeInfo, Role, Scope, Status};
use crate::observer::LogLevel;
use crate::value::{Object, Str, Value};
use std::collections::HashMap;

/// A message that came back to the same node with an error this many times is dropped.
const MAX_CATCH_COUNT: f64 = 10.0;

struct Listener {
    idx: u32,
    scope: Scope,
    uncaught: bool,
    g: Option<Str>,
}

/// Who listens to what, per tab.
#[derive(Default)]
pub(crate) struct Routes {
    catchers: HashMap<Str, Vec<Listener>>,
    statuses: HashMap<Str, Vec<Listener>>,
    completes: HashMap<u32, Vec<u32>>,
    group_parent: HashMap<Str, Option<Str>>,
}

impl Routes {
    /// Routing tables for the live nodes `(index, info, role)` of `set`.
    pub(crate) fn build<'a>(
        set: &FlowSet,
        live: impl Iterator<Item = (u32, &'a NodeInfo, &'a Role)>,
        by_id: &HashMap<Str, u32>,
    ) -> Routes {
        let mut r = Routes::default();
        for n in &set.nodes {
            if n.type_name == crate::flows::GROUP {
                r.group_parent
                    .insert(Str::new(&n.id), n.g.as_deref().map(Str::new));
            }
        }
        let live: Vec<(u32, &NodeInfo, &Role)> = live.collect();
        let tab_of: HashMap<u32, &Str> = live
            .iter()
            .filter_map(|(idx, info, _)| info.z.as_ref().map(|z| (*idx, z)))
            .collect();
        for &(idx, info, role) in &live {
            let Some(z) = info.z.clone() else { continue };
            let listener = |scope: &Scope, uncaught: bool| Listener {
                idx,
                scope: scope.clone(),
                uncaught,
                g: info.g.clone(),
            };
            match role {
                Role::Plain => {}
                Role::Catch { scope, uncaught } => r
                    .catchers
                    .entry(z)
                    .or_default()
                    .push(listener(scope, *uncaught)),
                Role::Status { scope } => r
                    .statuses
                    .entry(z)
                    .or_default()
                    .push(listener(scope, false)),
                // Node-RED looks complete nodes up in the watched node's own
                // flow: one on another tab never fires.
                Role::Complete { scope } => {
                    for id in scope {
                        if let Some(&w) = by_id.get(id.as_str()) {
                            if tab_of.get(&w) == Some(&&z) {
                                r.completes.entry(w).or_default().push(idx);
                            }
                        }
                    }
                }
            }
        }
        // Scoped catch nodes first; among the others, normal before "uncaught".
        for list in r.catchers.values_mut() {
            list.sort_by_key(|l| match (&l.scope, l.uncaught) {
                (Scope::All, false) => 1,
                (Scope::All, true) => 2,
                _ => 0,
            });
        }
        r
    }

    pub(crate) fn is_watched(&self, idx: u32) -> bool {
        self.completes.contains_key(&idx)
    }

    /// Listeners of `list` that take events from a node (`id`, group `g`),
    /// nearest enclosing group first (Node-RED's distance rule).
    fn candidates(&self, list: &[Listener], id: &str, g: Option<&Str>) -> Vec<(u32, bool)> {
        let mut out: Vec<(usize, u32, bool)> = Vec::new();
        for l in list {
            match &l.scope {
                Scope::Nodes(ids) if !ids.iter().any(|x| x == id) => continue,
                Scope::Group if g.is_none() && l.g.is_some() => continue,
                _ => {}
            }
            let mut distance = 0;
            if let Some(g) = g {
                let mut cur = Some(g.clone());
                let mut steps = 0;
                while let Some(c) = &cur {
                    if Some(c) == l.g.as_ref() || steps > 64 {
                        break;
                    }
                    distance += 1;
                    steps += 1;
                    cur = self.group_parent.get(c).cloned().flatten();
                }
                if cur.is_none() && l.g.is_some() && l.scope == Scope::Group {
                    continue;
                }
            }
            out.push((distance, l.idx, l.uncaught));
        }
        out.sort_by_key(|(d, _, _)| *d);
        out.into_iter().map(|(_, i, u)| (i, u)).collect()
    }
}

fn source_object(id: &Str, type_name: &Str, name: Option<&Str>) -> Object {
    let mut s = Object::with_capacity(4);
    s.insert("id", Value::String(id.clone()));
    s.insert("type", Value::String(type_name.clone()));
    if let Some(n) = name {
        s.insert("name", Value::String(n.clone()));
    }
    s
}

impl Executor {
    /// Routes an error with its message to catch nodes; false when none took it.
    pub(crate) fn route_error(&mut self, idx: u32, text: &str, msg: Msg) -> bool {
        let info = self.slots[idx as usize].info.clone();
        let mut count = 1.0;
        if let Some(Value::Object(err)) = msg.get("error") {
            if let Some(Value::Object(src)) = err.get("source") {
                if src.get("id").and_then(Value::as_str) == Some(info.id.as_str()) {
                    count = src.get("count").map(Value::to_number).unwrap_or(0.0) + 1.0;
                    if count == MAX_CATCH_COUNT {
                        self.log(
                            idx,
                            LogLevel::Warn,
                            "Message exceeded maximum number of catches",
                        );
                        return false;
                    }
                }
            }
        }
        let Some(z) = &info.z else { return false };
        let Some(list) = self.routes.catchers.get(z) else {
            return false;
        };
        let targets = self.routes.candidates(list, &info.id, info.g.as_ref());
        let mut handled = false;
        let mut handled_by_uncaught = false;
        for (catch_idx, uncaught) in targets {
            if uncaught && !handled_by_uncaught {
                if handled {
                    continue;
                }
                handled_by_uncaught = true;
            }
            let mut m = msg.clone();
            if let Some(old) = m.remove("error") {
                m.insert("_error", old);
            }
            let mut err = Object::with_capacity(2);
            err.insert("message", Value::str(text));
            let mut src = source_object(&info.id, &info.type_name, info.name.as_ref());
            src.insert("count", Value::Number(count));
            err.insert("source", Value::object(src));
            m.insert("error", Value::object(err));
            self.call_function(catch_idx, m);
            handled = true;
        }
        handled
    }

    /// Delivers a status update to the status nodes of the node's tab.
    pub(crate) fn route_status(&mut self, idx: u32, status: &Status) {
        let info = self.slots[idx as usize].info.clone();
        let Some(z) = &info.z else { return };
        let Some(list) = self.routes.statuses.get(z) else {
            return;
        };
        let targets = self.routes.candidates(list, &info.id, info.g.as_ref());
        for (status_idx, _) in targets {
            let mut s = Object::with_capacity(4);
            if let Some(f) = &status.fill {
                s.insert("fill", Value::String(f.clone()));
            }
            if let Some(sh) = &status.shape {
                s.insert("shape", Value::String(sh.clone()));
            }
            if let Some(t) = &status.text {
                s.insert("text", Value::str(t));
            }
            s.insert(
                "source",
                Value::object(source_object(&info.id, &info.type_name, info.name.as_ref())),
            );
            let mut m = Msg::new();
            m.insert("status", Value::object(s));
            self.call_function(status_idx, m);
        }
    }

    /// Delivers a completed message to the complete nodes watching the node.
    pub(crate) fn route_complete(&mut self, idx: u32, msg: Msg) {
        let Some(targets) = self.routes.completes.get(&idx).cloned() else {
            return;
        };
        let info = self.slots[idx as usize].info.clone();
        for t in targets {
            let mut m = msg.clone();
            let mut c = Object::with_capacity(1);
            c.insert(
                "source",
                Value::object(source_object(&info.id, &info.type_name, info.name.as_ref())),
            );
            m.insert("complete", Value::object(c));
            self.call_function(t, m);
        }
    }
}
