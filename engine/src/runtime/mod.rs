//! The runtime: starts a prepared flow set and runs it on one executor task.
//!
//! All nodes of a flow set live on a single executor task, as all of
//! Node-RED's nodes share one event loop: messages cross chains of function
//! nodes inline, context and routing need no locks, and message order is
//! deterministic. Network I/O (MQTT connections, the broker, the web server)
//! runs on other tasks and threads, connected through bounded channels.

mod executor;
pub mod handle;
pub mod inline;
mod lifecycle;
mod routing;

use crate::build::{prepare_reusing, Prepared};
use crate::context::ContextStore;
use crate::deploy::{diff, plan, DeployType, Diff, Plan};
use crate::flows::FlowSet;
use crate::msg::Msg;
use crate::node::{ConfigNode, NodeControl};
use crate::node::{NodeEvent, NodeInfo};
use crate::observer::{NullObserver, RuntimeObserver};
use crate::registry::Registry;
use crate::validation::{ValidationError, ValidationErrors};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Capacity of the executor's inbound message queue (from task nodes and timers).
pub const INBOUND_CAPACITY: usize = 1024;
/// Capacity of the executor's event queue (errors, status, completion from tasks).
pub const EVENT_CAPACITY: usize = 1024;
/// Default time allowed for a graceful stop.
pub const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// Index and generation of a node slot in the executor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SlotRef {
    pub(crate) idx: u32,
    pub(crate) gen: u32,
}

/// A message entering the executor from another task.
pub(crate) enum Inbound {
    /// A node sent a message on one of its outputs.
    Output {
        from: SlotRef,
        port: usize,
        msg: Msg,
    },
    /// A message for a node's input.
    Deliver { to: SlotRef, msg: Msg },
}

/// An event reported by a node from its own task.
pub(crate) struct Event {
    pub(crate) from: SlotRef,
    pub(crate) event: NodeEvent,
}

/// Called for every message a node sends (testing and tracing).
pub type Tap = Arc<dyn Fn(&NodeInfo, usize, &Msg) + Send + Sync>;

/// The running flow set and its config node instances by id.
pub(crate) type Snapshot = (FlowSet, HashMap<String, Arc<dyn ConfigNode>>);

/// Commands for the executor.
pub(crate) enum Control {
    DeliverById {
        id: String,
        msg: Msg,
        reply: oneshot::Sender<bool>,
    },
    Stop {
        timeout: Duration,
        reply: oneshot::Sender<()>,
    },
    /// A command for one node.
    Command {
        id: String,
        control: NodeControl,
        reply: oneshot::Sender<bool>,
    },
    /// The running flow set and its config node instances.
    Snapshot { reply: oneshot::Sender<Snapshot> },
    /// Applies a validated flow set.
    Apply {
        prepared: Prepared,
        plan: Plan,
        reply: oneshot::Sender<()>,
    },
    /// Hands changed context to the context writer (persistent stores).
    FlushContext,
    /// Messages sent per output port of every running node.
    OutputCounts {
        reply: oneshot::Sender<OutputCounts>,
    },
}

/// Node id -> messages sent on each output port since the node started
/// (a restarted node counts from 0 again).
pub type OutputCounts = Vec<(String, Vec<u64>)>;

/// Options for starting a runtime.
#[derive(Clone)]
pub struct RuntimeOptions {
    /// Receives debug messages, node logs and status.
    pub observer: Arc<dyn RuntimeObserver>,
    /// Sees every message a node sends.
    pub tap: Option<Tap>,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        RuntimeOptions {
            observer: Arc::new(NullObserver),
            tap: None,
        }
    }
}

/// Why a runtime call failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RuntimeError {
    /// No running node has that id.
    #[error("no running node with id \"{0}\"")]
    UnknownNode(String),
    /// The runtime has stopped.
    #[error("the runtime has stopped")]
    Stopped,
}

/// Why a deploy was refused.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// The new flow set is invalid; nothing changed.
    #[error("{0}")]
    Invalid(ValidationErrors),
    /// The runtime has stopped.
    #[error("the runtime has stopped")]
    Stopped,
}

/// A running flow set.
pub struct Runtime {
    ctrl: mpsc::Sender<Control>,
    join: tokio::task::JoinHandle<()>,
    /// Deploys are applied one at a time.
    deploying: tokio::sync::Mutex<()>,
    /// The writer of a persistent context store, awaited on stop.
    context_writer: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Runtime {
    /// Starts every node of `prepared` (must be called inside a tokio runtime).
    pub fn start(prepared: Prepared, options: RuntimeOptions) -> Runtime {
        Runtime::start_with_context(prepared, options, ContextStore::new())
    }

    /// [`Runtime::start`] on `contexts` (e.g. a persistent store loaded
    /// from disk). Contexts of nodes and tabs not in `prepared` are cleaned
    /// first; a persistent store is written every flush interval and when
    /// the runtime stops.
    pub fn start_with_context(
        prepared: Prepared,
        options: RuntimeOptions,
        mut contexts: ContextStore,
    ) -> Runtime {
        // Every id of the set counts, disabled nodes and tabs too (as in
        // Node-RED: disabling a tab keeps its context).
        let known: HashSet<&str> = prepared.set.nodes.iter().map(|n| n.id.as_str()).collect();
        contexts.retain_flows(|z| known.contains(z));
        contexts.retain_nodes(|id| known.contains(id));
        let (ctrl_tx, ctrl_rx) = mpsc::channel(64);
        let writer = contexts.storage().map(|(storage, interval)| {
            let (tx, rx) = mpsc::unbounded_channel();
            contexts.set_writer(tx);
            let ctrl = ctrl_tx.downgrade();
            let request = move || {
                if let Some(c) = ctrl.upgrade() {
                    // A full queue means the executor is busy; the next tick retries.
                    let _ = c.try_send(Control::FlushContext);
                }
            };
            tokio::spawn(crate::context::file::run_writer(
                storage, rx, interval, request,
            ))
        });
        let exec = executor::Executor::new(prepared, options, ctrl_rx, contexts);
        let join = tokio::spawn(exec.run());
        Runtime {
            ctrl: ctrl_tx,
            join,
            deploying: tokio::sync::Mutex::new(()),
            context_writer: std::sync::Mutex::new(writer),
        }
    }

    /// Deploys a new flow set live: validates it whole (nothing changes when
    /// it is invalid), then stops and starts only what `kind` requires.
    /// Nodes that keep running keep their state (rbe memory, connections).
    /// `structural` are errors found while parsing `set`.
    pub async fn deploy(
        &self,
        registry: &Registry,
        set: FlowSet,
        structural: Vec<ValidationError>,
        kind: DeployType,
    ) -> Result<Diff, DeployError> {
        let _one_at_a_time = self.deploying.lock().await;
        let (reply, rx) = oneshot::channel();
        self.ctrl
            .send(Control::Snapshot { reply })
            .await
            .map_err(|_| DeployError::Stopped)?;
        let (old, configs) = rx.await.map_err(|_| DeployError::Stopped)?;
        let d = diff(&old, &set);
        let p = plan(&d, kind);
        // Config nodes that keep running are handed to the new nodes as they are.
        let reuse: HashMap<String, Arc<dyn ConfigNode>> = if p.full {
            HashMap::new()
        } else {
            configs
                .into_iter()
                .filter(|(id, _)| !p.stop.contains(id))
                .collect()
        };
        let prepared =
            prepare_reusing(registry, set, structural, &reuse).map_err(DeployError::Invalid)?;
        let (reply, rx) = oneshot::channel();
        self.ctrl
            .send(Control::Apply {
                prepared,
                plan: p,
                reply,
            })
            .await
            .map_err(|_| DeployError::Stopped)?;
        rx.await.map_err(|_| DeployError::Stopped)?;
        Ok(d)
    }

    /// Sends a command built around a reply channel and awaits the reply.
    async fn ask<T>(
        &self,
        command: impl FnOnce(oneshot::Sender<T>) -> Control,
    ) -> Result<T, RuntimeError> {
        let (reply, rx) = oneshot::channel();
        self.ctrl
            .send(command(reply))
            .await
            .map_err(|_| RuntimeError::Stopped)?;
        rx.await.map_err(|_| RuntimeError::Stopped)
    }

    /// Delivers `msg` to the input of node `id` (the admin API's inject, tests).
    pub async fn deliver(&self, id: &str, msg: Msg) -> Result<(), RuntimeError> {
        let found = self
            .ask(|reply| Control::DeliverById {
                id: id.to_string(),
                msg,
                reply,
            })
            .await?;
        found
            .then_some(())
            .ok_or_else(|| RuntimeError::UnknownNode(id.to_string()))
    }

    /// Sends a command to node `id` (e.g. switching a debug node on or off).
    pub async fn control(&self, id: &str, control: NodeControl) -> Result<(), RuntimeError> {
        let handled = self
            .ask(|reply| Control::Command {
                id: id.to_string(),
                control,
                reply,
            })
            .await?;
        handled
            .then_some(())
            .ok_or_else(|| RuntimeError::UnknownNode(id.to_string()))
    }

    /// How many messages each running node has sent on each output port
    /// since it started. Counting costs the executor one integer increment
    /// per message; this call copies the counters (e.g. once a second for
    /// the editor's wire rates).
    pub async fn output_counts(&self) -> Result<OutputCounts, RuntimeError> {
        self.ask(|reply| Control::OutputCounts { reply }).await
    }

    /// The running flow set (as deployed, without credentials).
    pub async fn flows(&self) -> Result<FlowSet, RuntimeError> {
        self.ask(|reply| Control::Snapshot { reply })
            .await
            .map(|(set, _)| set)
    }

    /// Stops gracefully: sources stop first, messages in flight are delivered,
    /// then every node is closed; gives up on what is left after `timeout`.
    pub async fn stop(self, timeout: Duration) {
        self.shutdown(timeout).await;
        let _ = self.join.await;
    }

    /// [`Runtime::stop`] through a shared reference (the runtime is then
    /// stopped for every holder; later calls return at once).
    pub async fn shutdown(&self, timeout: Duration) {
        let (reply, rx) = oneshot::channel();
        if self
            .ctrl
            .send(Control::Stop { timeout, reply })
            .await
            .is_ok()
        {
            let _ = rx.await;
        }
        // The executor handed its last context changes over; wait until
        // they are on disk.
        let writer = self.context_writer.lock().ok().and_then(|mut w| w.take());
        if let Some(w) = writer {
            let _ = w.await;
        }
    }
}
