//! Starting and stopping nodes, and applying a deploy to a running set:
//! stop what the plan names, install and start the new nodes, rewire the
//! rest in place (their state kept).

use super::executor::{Executor, Slot, SlotNode, StartKind};
use super::handle::NodeHandle;
use super::routing::Routes;
use super::{SlotRef, Snapshot};
use crate::build::{Prepared, PreparedNode};
use crate::deploy::Plan;
use crate::node::{NodeKind, TaskIo};
use crate::value::Str;
use std::collections::HashSet;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Time a stopping node gets before it is abandoned (Node-RED's `nodeCloseTimeout`).
pub(crate) const NODE_CLOSE_TIMEOUT: Duration = Duration::from_secs(15);

impl Executor {
    /// Adds a built node as a new slot (not started yet).
    pub(crate) fn install(&mut self, p: PreparedNode) -> u32 {
        let idx = self.slots.len() as u32;
        let (node, start) = match p.built.kind {
            NodeKind::Function(f) => (SlotNode::Function(f), Some(StartKind::Function)),
            NodeKind::Task(t) => {
                let cap = t.inbox_capacity();
                let (tx, rx) = if cap > 0 {
                    let (tx, rx) = mpsc::channel(cap);
                    (Some(tx), Some(rx))
                } else {
                    (None, None)
                };
                (SlotNode::Task { inbox: tx }, Some(StartKind::Task(t, rx)))
            }
            NodeKind::Config(c) => (SlotNode::Config(c), None),
            NodeKind::Inert => (SlotNode::Inert, None),
        };
        self.slots.push(Slot {
            info: p.info,
            gen: 0,
            node,
            wires: Vec::new(),
            wire_ids: p.wires,
            links: p.built.links,
            links_from: p.built.links_from,
            role: p.built.role,
            watched: false,
            watched_flag: Arc::new(AtomicBool::new(false)),
            live: true,
            cancel: self.root_cancel.child_token(),
            join: None,
            start,
            sent: Vec::new(),
        });
        idx
    }

    /// Starts an installed node: `on_start` for function nodes, the task for task nodes.
    pub(crate) fn start(&mut self, idx: u32) {
        let slot = &mut self.slots[idx as usize];
        let Some(kind) = slot.start.take() else {
            return;
        };
        let is_sink = matches!(&kind, StartKind::Task(_, Some(_)));
        let handle = NodeHandle {
            slot: SlotRef { idx, gen: slot.gen },
            info: slot.info.clone(),
            msg_tx: self.msg_tx.clone(),
            event_tx: self.event_tx.clone(),
            cancel: slot.cancel.clone(),
            watched: slot.watched_flag.clone(),
            tracker: if is_sink {
                self.sinks.clone()
            } else {
                self.sources.clone()
            },
        };
        match kind {
            StartKind::Function => {
                if let SlotNode::Function(f) = &mut slot.node {
                    if catch_unwind(AssertUnwindSafe(|| f.on_start(&handle))).is_err() {
                        tracing::error!(node = %slot.info.id, "Node panicked while starting.");
                    }
                }
            }
            StartKind::Task(t, inbox) => {
                let tracker = handle.tracker.clone();
                slot.join = Some(tracker.spawn(t.run(TaskIo { inbox, handle })));
            }
        }
    }

    /// Recomputes ids, wires and event routes from the live slots.
    pub(crate) fn rebuild_topology(&mut self) {
        self.by_id = self
            .slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.live)
            .map(|(i, s)| (s.info.id.clone(), i as u32))
            .collect();
        let by_id = &self.by_id;
        for slot in self.slots.iter_mut().filter(|s| s.live) {
            let resolve = |ids: &[String]| -> Vec<u32> {
                ids.iter()
                    .filter_map(|id| by_id.get(id.as_str()).copied())
                    .collect()
            };
            let mut wires: Vec<Vec<u32>> = slot.wire_ids.iter().map(|w| resolve(w)).collect();
            if !slot.links.is_empty() {
                if wires.is_empty() {
                    wires.push(Vec::new());
                }
                wires[0].extend(resolve(&slot.links));
            }
            slot.wires = wires;
        }
        // Link sources named on the receiving side join the sender's output 0
        // (each destination once).
        let reverse: Vec<(u32, u32)> = self
            .slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.live)
            .flat_map(|(i, s)| {
                s.links_from
                    .iter()
                    .filter_map(move |id| by_id.get(id.as_str()).map(|&from| (from, i as u32)))
            })
            .collect();
        for (from, to) in reverse {
            let wires = &mut self.slots[from as usize].wires;
            if wires.is_empty() {
                wires.push(Vec::new());
            }
            if !wires[0].contains(&to) {
                wires[0].push(to);
            }
        }
        let live = self
            .slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.live)
            .map(|(i, s)| (i as u32, &*s.info, &s.role));
        self.routes = Routes::build(&self.set, live, &self.by_id);
        for (i, slot) in self.slots.iter_mut().enumerate() {
            slot.watched = slot.live && self.routes.is_watched(i as u32);
            slot.watched_flag.store(slot.watched, Ordering::Relaxed);
        }
    }

    /// The running flow set and its config node instances.
    pub(crate) fn snapshot(&self) -> Snapshot {
        let configs = self
            .slots
            .iter()
            .filter(|s| s.live)
            .filter_map(|s| match &s.node {
                SlotNode::Config(c) => Some((s.info.id.to_string(), c.clone())),
                _ => None,
            })
            .collect();
        (self.set.clone(), configs)
    }

    /// Stops the nodes at `idxs`: their tasks get no more input and are
    /// awaited (up to `timeout`), config nodes are closed, node context is
    /// dropped, and the slots become empty.
    pub(crate) async fn stop_nodes(&mut self, idxs: &[u32], timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let mut joins = Vec::new();
        let mut configs = Vec::new();
        for &idx in idxs {
            let slot = &mut self.slots[idx as usize];
            if !slot.live {
                continue;
            }
            slot.cancel.cancel();
            match std::mem::replace(&mut slot.node, SlotNode::Inert) {
                SlotNode::Function(mut f) => {
                    let _ = catch_unwind(AssertUnwindSafe(|| f.on_close()));
                }
                SlotNode::Config(c) => configs.push((slot.info.id.clone(), c)),
                SlotNode::Task { .. } | SlotNode::Inert => {}
            }
            if let Some(j) = slot.join.take() {
                joins.push((slot.info.id.clone(), j));
            }
            slot.live = false;
            slot.gen = slot.gen.wrapping_add(1);
            slot.start = None;
            slot.wires.clear();
            let id = slot.info.id.clone();
            self.contexts.clear_node(&id);
        }
        for (id, mut j) in joins {
            if tokio::time::timeout_at(deadline, &mut j).await.is_err() {
                tracing::warn!(node = %id, "Node did not stop in time; abandoning it.");
                j.abort();
            }
        }
        for (id, c) in configs {
            if tokio::time::timeout_at(deadline, c.close()).await.is_err() {
                tracing::warn!(node = %id, "Config node did not close in time.");
            }
        }
    }

    /// Applies a validated flow set: stops what `plan` names (or everything),
    /// starts new and restarted nodes, rewires the nodes that keep running.
    pub(crate) async fn apply(&mut self, prepared: Prepared, plan: Plan) {
        let to_stop: Vec<u32> = self
            .slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.live && (plan.full || plan.stop.contains(s.info.id.as_str())))
            .map(|(i, _)| i as u32)
            .collect();
        // Nodes gone from the new set stop too.
        let new_ids: HashSet<&str> = prepared.nodes.iter().map(|p| &*p.info.id).collect();
        let gone: Vec<u32> = self
            .slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.live && !new_ids.contains(&*s.info.id))
            .map(|(i, _)| i as u32)
            .collect();
        let mut stopping = to_stop;
        stopping.extend(gone);
        self.stop_nodes(&stopping, NODE_CLOSE_TIMEOUT).await;

        let mut started = Vec::new();
        for p in prepared.nodes {
            match self
                .by_id
                .get(&*p.info.id)
                .copied()
                .filter(|&i| self.slots[i as usize].live)
            {
                // Keeps running with its state; only its wires may change.
                Some(i) => self.slots[i as usize].wire_ids = p.wires,
                None => started.push(self.install(p)),
            }
        }
        self.set = prepared.set;
        let tabs: HashSet<Str> = self.set.tabs().map(|t| Str::new(&t.id)).collect();
        self.contexts.retain_flows(|z| tabs.contains(z));
        self.rebuild_topology();
        // Contexts of nodes gone from the set (disabled ones stay, as in Node-RED).
        let known: HashSet<&str> = self.set.nodes.iter().map(|n| n.id.as_str()).collect();
        self.contexts.retain_nodes(|id| known.contains(id));
        for idx in started {
            self.start(idx);
        }
    }
}
