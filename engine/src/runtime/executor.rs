//! The executor: owns every running node of a flow set and moves messages
//! between them.
//!
//! Deliveries wait in one FIFO queue, as Node-RED schedules them with
//! `setImmediate`; function nodes are called inline, task nodes get the
//! message through their bounded inbox (the executor waits for room, which is
//! how backpressure reaches the sources).

use super::routing::Routes;
use super::{
    Control, Event, Inbound, OutputCounts, RuntimeOptions, SlotRef, Tap, EVENT_CAPACITY,
    INBOUND_CAPACITY,
};
use crate::build::Prepared;
use crate::context::ContextStore;
use crate::flows::FlowSet;
use crate::msg::Msg;
use crate::node::{ConfigNode, FunctionNode, NodeCx, NodeEvent, NodeInfo, Role};
use crate::observer::{LogLevel, RuntimeObserver};
use crate::value::Str;
use std::collections::{HashMap, VecDeque};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Messages taken from the inbound channel before the queue is run.
const INBOUND_BATCH: usize = 256;

pub(crate) enum SlotNode {
    Function(Box<dyn FunctionNode>),
    Task { inbox: Option<mpsc::Sender<Msg>> },
    Config(Arc<dyn ConfigNode>),
    Inert,
}

pub(crate) struct Slot {
    pub(crate) info: Arc<NodeInfo>,
    /// Bumped when the slot's node stops: handles of the old node go stale.
    pub(crate) gen: u32,
    pub(crate) node: SlotNode,
    /// Destinations per port, resolved from `wire_ids` and `links`.
    pub(crate) wires: Vec<Vec<u32>>,
    pub(crate) wire_ids: Vec<Vec<String>>,
    pub(crate) links: Vec<String>,
    /// Nodes whose output 0 also reaches this one (a link in's own list).
    pub(crate) links_from: Vec<String>,
    pub(crate) role: Role,
    /// True when complete nodes watch this node (read inline for every
    /// message a function node takes).
    pub(crate) watched: bool,
    /// The same, shared with the node's handle, so a task node skips `done`
    /// events nobody listens to. Both are set in `rebuild_topology`.
    pub(crate) watched_flag: Arc<AtomicBool>,
    /// False once the node has been stopped (the slot is then empty).
    pub(crate) live: bool,
    pub(crate) cancel: CancellationToken,
    /// The task of a task node.
    pub(crate) join: Option<tokio::task::JoinHandle<()>>,
    /// How to start the node, until it is started.
    pub(crate) start: Option<StartKind>,
    /// Messages sent per output port since the node started (plain
    /// integers: only this task touches them; read by `Control::OutputCounts`).
    pub(crate) sent: Vec<u64>,
}

pub(crate) struct Executor {
    pub(crate) slots: Vec<Slot>,
    pub(crate) by_id: HashMap<Str, u32>,
    pub(crate) queue: VecDeque<(u32, Msg)>,
    out_buf: Vec<(usize, Msg)>,
    ev_buf: Vec<NodeEvent>,
    pub(crate) contexts: ContextStore,
    pub(crate) observer: Arc<dyn RuntimeObserver>,
    tap: Option<Tap>,
    pub(crate) routes: Routes,
    /// The flow set running now.
    pub(crate) set: FlowSet,
    pub(crate) msg_tx: mpsc::Sender<Inbound>,
    pub(crate) event_tx: mpsc::Sender<Event>,
    msg_rx: mpsc::Receiver<Inbound>,
    event_rx: mpsc::Receiver<Event>,
    ctrl_rx: mpsc::Receiver<Control>,
    pending_events: VecDeque<Event>,
    pub(crate) root_cancel: CancellationToken,
    pub(crate) sources: TaskTracker,
    pub(crate) sinks: TaskTracker,
}

/// A delivery that must wait for room in a task node's inbox.
struct Blocked {
    inbox: mpsc::Sender<Msg>,
    msg: Msg,
}

impl Executor {
    /// Builds the executor and starts every node of `prepared`.
    pub(crate) fn new(
        prepared: Prepared,
        options: RuntimeOptions,
        ctrl_rx: mpsc::Receiver<Control>,
        contexts: ContextStore,
    ) -> Executor {
        let (msg_tx, msg_rx) = mpsc::channel(INBOUND_CAPACITY);
        let (event_tx, event_rx) = mpsc::channel(EVENT_CAPACITY);
        let mut exec = Executor {
            slots: Vec::with_capacity(prepared.nodes.len()),
            by_id: HashMap::new(),
            queue: VecDeque::with_capacity(256),
            out_buf: Vec::with_capacity(8),
            ev_buf: Vec::new(),
            contexts,
            observer: options.observer,
            tap: options.tap,
            routes: Routes::default(),
            set: FlowSet::default(),
            msg_tx,
            event_tx,
            msg_rx,
            event_rx,
            ctrl_rx,
            pending_events: VecDeque::new(),
            root_cancel: CancellationToken::new(),
            sources: TaskTracker::new(),
            sinks: TaskTracker::new(),
        };
        exec.set = prepared.set;
        let installed: Vec<u32> = prepared
            .nodes
            .into_iter()
            .map(|p| exec.install(p))
            .collect();
        exec.rebuild_topology();
        for idx in installed {
            exec.start(idx);
        }
        exec
    }

    pub(crate) async fn run(mut self) {
        loop {
            tokio::select! {
                biased;
                ctrl = self.ctrl_rx.recv() => match ctrl {
                    Some(Control::DeliverById { id, msg, reply }) => {
                        let found = self.by_id.get(id.as_str()).copied();
                        if let Some(idx) = found {
                            self.queue.push_back((idx, msg));
                        }
                        let _ = reply.send(found.is_some());
                    }
                    Some(Control::Command { id, control, reply }) => {
                        let handled = match self.by_id.get(id.as_str()).map(|&i| &mut self.slots[i as usize].node) {
                            Some(SlotNode::Function(f)) => catch_unwind(AssertUnwindSafe(|| f.on_control(&control))).unwrap_or(false),
                            _ => false,
                        };
                        let _ = reply.send(handled);
                    }
                    Some(Control::Snapshot { reply }) => {
                        let _ = reply.send(self.snapshot());
                    }
                    Some(Control::OutputCounts { reply }) => {
                        let _ = reply.send(self.output_counts());
                    }
                    Some(Control::Apply { prepared, plan, reply }) => {
                        self.drain().await;
                        self.apply(prepared, plan).await;
                        let _ = reply.send(());
                    }
                    Some(Control::FlushContext) => self.contexts.flush(),
                    Some(Control::Stop { timeout, reply }) => {
                        self.shutdown(timeout).await;
                        let _ = reply.send(());
                        return;
                    }
                    None => {
                        self.shutdown(super::DEFAULT_STOP_TIMEOUT).await;
                        return;
                    }
                },
                Some(ev) = self.event_rx.recv() => self.on_event(ev),
                Some(inbound) = self.msg_rx.recv() => {
                    self.on_inbound(inbound);
                    for _ in 0..INBOUND_BATCH {
                        match self.msg_rx.try_recv() {
                            Ok(i) => self.on_inbound(i),
                            Err(_) => break,
                        }
                    }
                }
            }
            self.drain().await;
            self.observer.idle();
        }
    }

    pub(crate) fn index_of(&self, id: &str) -> Option<u32> {
        self.by_id.get(id).copied()
    }

    /// Delivers one message and runs the queue to completion synchronously
    /// (function nodes only: deliveries to task nodes are dropped if their inbox is full).
    pub(crate) fn run_inline(&mut self, idx: u32, msg: Msg) {
        self.queue.push_back((idx, msg));
        while let Some((to, msg)) = self.queue.pop_front() {
            let _ = self.dispatch(to, msg);
        }
    }

    fn live(&self, r: SlotRef) -> bool {
        self.slots
            .get(r.idx as usize)
            .is_some_and(|s| s.gen == r.gen)
    }

    fn on_inbound(&mut self, inbound: Inbound) {
        match inbound {
            Inbound::Output { from, port, msg } if self.live(from) => {
                self.emit(from.idx, port, msg)
            }
            Inbound::Deliver { to, msg } if self.live(to) => self.queue.push_back((to.idx, msg)),
            _ => {}
        }
    }

    fn on_event(&mut self, ev: Event) {
        if self.live(ev.from) {
            self.handle_event(ev.from.idx, ev.event);
        }
    }

    /// Runs every queued delivery, waiting for room in task inboxes.
    async fn drain(&mut self) {
        loop {
            while let Some((to, msg)) = self.queue.pop_front() {
                if let Some(blocked) = self.dispatch(to, msg) {
                    self.wait_for_room(blocked).await;
                }
            }
            match self.pending_events.pop_front() {
                Some(ev) => self.on_event(ev),
                None => break,
            }
        }
    }

    /// Waits until a task inbox has room, still taking events (errors and
    /// completions from that very task) so the two cannot deadlock.
    async fn wait_for_room(&mut self, b: Blocked) {
        let Blocked { inbox, msg } = b;
        loop {
            tokio::select! {
                permit = inbox.reserve() => {
                    if let Ok(p) = permit {
                        p.send(msg);
                    }
                    return;
                }
                Some(ev) = self.event_rx.recv() => self.pending_events.push_back(ev),
            }
        }
    }

    /// Delivers one message to node `to`. Returns it back when the node's inbox is full.
    #[inline]
    fn dispatch(&mut self, to: u32, msg: Msg) -> Option<Blocked> {
        let slot = &mut self.slots[to as usize];
        match &mut slot.node {
            SlotNode::Function(_) => {
                self.call_function(to, msg);
                None
            }
            SlotNode::Task { inbox: Some(tx) } => match tx.try_send(msg) {
                Ok(()) => None,
                Err(mpsc::error::TrySendError::Full(msg)) => Some(Blocked {
                    inbox: tx.clone(),
                    msg,
                }),
                Err(mpsc::error::TrySendError::Closed(_)) => None,
            },
            _ => None,
        }
    }

    /// Calls a function node inline and routes what it produced.
    pub(crate) fn call_function(&mut self, idx: u32, msg: Msg) {
        let slot = &mut self.slots[idx as usize];
        let SlotNode::Function(node) = &mut slot.node else {
            return;
        };
        let mut out = std::mem::take(&mut self.out_buf);
        let mut events = std::mem::take(&mut self.ev_buf);
        let result = {
            let mut cx = NodeCx {
                info: &slot.info,
                out: &mut out,
                events: &mut events,
                contexts: &mut self.contexts,
                observer: &*self.observer,
                watched: slot.watched,
            };
            catch_unwind(AssertUnwindSafe(|| node.on_input(msg, &mut cx)))
        };
        if result.is_err() {
            events.push(NodeEvent::Error {
                text: "internal error: the node failed while handling a message".into(),
                msg: None,
            });
        }
        for (port, m) in out.drain(..) {
            self.emit(idx, port, m);
        }
        self.out_buf = out;
        if events.is_empty() {
            self.ev_buf = events;
        } else {
            for e in events.drain(..) {
                self.handle_event(idx, e);
            }
            self.ev_buf = events;
        }
    }

    /// Queues `msg` for every destination of `from`'s output `port`: the
    /// first gets the message, the others copies (cheap: copy-on-write).
    #[inline]
    pub(crate) fn emit(&mut self, from: u32, port: usize, msg: Msg) {
        let slot = &mut self.slots[from as usize];
        match slot.sent.get_mut(port) {
            Some(n) => *n += 1,
            // First message on this port: the only time the counters grow.
            None => {
                slot.sent.resize(port + 1, 0);
                slot.sent[port] = 1;
            }
        }
        if let Some(tap) = &self.tap {
            tap(&slot.info, port, &msg);
        }
        let Some(targets) = slot.wires.get(port) else {
            return;
        };
        match targets.as_slice() {
            [] => {}
            [only] => self.queue.push_back((*only, msg)),
            [rest @ .., last] => {
                for t in rest {
                    self.queue.push_back((*t, msg.clone()));
                }
                self.queue.push_back((*last, msg));
            }
        }
    }

    /// Messages sent per output port by every running node with outputs.
    fn output_counts(&self) -> OutputCounts {
        self.slots
            .iter()
            .filter(|s| s.live && !s.wire_ids.is_empty())
            .map(|s| {
                let mut counts = s.sent.clone();
                counts.resize(counts.len().max(s.wire_ids.len()), 0);
                (s.info.id.to_string(), counts)
            })
            .collect()
    }

    pub(crate) fn log(&self, idx: u32, level: LogLevel, text: &str) {
        let info = &self.slots[idx as usize].info;
        match level {
            LogLevel::Error => tracing::error!(node = %info.id, r#type = %info.type_name, "{text}"),
            LogLevel::Warn => tracing::warn!(node = %info.id, r#type = %info.type_name, "{text}"),
            LogLevel::Info => tracing::info!(node = %info.id, r#type = %info.type_name, "{text}"),
        }
        self.observer.log(info, level, text);
    }

    fn handle_event(&mut self, idx: u32, event: NodeEvent) {
        match event {
            NodeEvent::Error {
                text,
                msg: Some(msg),
            } => {
                if !self.route_error(idx, &text, msg) {
                    self.log(idx, LogLevel::Error, &text);
                }
            }
            NodeEvent::Error { text, msg: None } => self.log(idx, LogLevel::Error, &text),
            NodeEvent::Warn(text) => self.log(idx, LogLevel::Warn, &text),
            NodeEvent::Info(text) => self.log(idx, LogLevel::Info, &text),
            NodeEvent::Status(status) => {
                self.observer
                    .status(&self.slots[idx as usize].info, &status);
                self.route_status(idx, &status);
            }
            NodeEvent::Complete(msg) => self.route_complete(idx, msg),
        }
    }

    async fn shutdown(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        // 1. Sources stop producing; what they already sent is delivered.
        self.root_cancel.cancel();
        self.sources.close();
        loop {
            tokio::select! {
                _ = self.sources.wait() => break,
                _ = tokio::time::sleep_until(deadline) => break,
                Some(ev) = self.event_rx.recv() => self.on_event(ev),
                Some(i) = self.msg_rx.recv() => self.on_inbound(i),
            }
            self.drain().await;
        }
        while let Ok(i) = self.msg_rx.try_recv() {
            self.on_inbound(i);
        }
        self.drain().await;
        // 2. Task nodes get no more input and finish what is in their inboxes.
        for slot in &mut self.slots {
            if let SlotNode::Task { inbox } = &mut slot.node {
                *inbox = None;
            }
        }
        self.sinks.close();
        loop {
            tokio::select! {
                _ = self.sinks.wait() => break,
                _ = tokio::time::sleep_until(deadline) => {
                    tracing::warn!("Stop timeout reached; abandoning nodes still running.");
                    break;
                }
                Some(ev) = self.event_rx.recv() => self.on_event(ev),
                Some(i) = self.msg_rx.recv() => self.on_inbound(i),
            }
            self.drain().await;
        }
        while let Ok(ev) = self.event_rx.try_recv() {
            self.on_event(ev);
        }
        self.drain().await;
        // 3. Close function nodes and config nodes.
        for slot in &mut self.slots {
            if let SlotNode::Function(f) = &mut slot.node {
                let _ = catch_unwind(AssertUnwindSafe(|| f.on_close()));
            }
        }
        let configs: Vec<(Str, Arc<dyn ConfigNode>)> = self
            .slots
            .iter()
            .filter_map(|s| match &s.node {
                SlotNode::Config(c) => Some((s.info.id.clone(), c.clone())),
                _ => None,
            })
            .collect();
        for (id, c) in configs {
            let left = deadline.saturating_duration_since(Instant::now());
            if tokio::time::timeout(left, c.close()).await.is_err() {
                tracing::warn!(node = %id, "Config node did not close in time.");
            }
        }
        // Last changes to the context writer (a persistent store).
        self.contexts.flush();
        self.observer.idle();
    }
}

/// How a node is started.
pub(crate) enum StartKind {
    Function,
    Task(Box<dyn crate::node::TaskNode>, Option<mpsc::Receiver<Msg>>),
}
