//! [`NodeHandle`]: how task nodes (and the timers of function nodes) talk to
//! the runtime from their own tasks.

use super::{Event, Inbound, SlotRef};
use crate::msg::Msg;
use crate::node::{NodeEvent, NodeInfo, Status};
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// A running node's connection to the runtime. Cheap to clone.
#[derive(Clone)]
pub struct NodeHandle {
    pub(crate) slot: SlotRef,
    pub(crate) info: Arc<NodeInfo>,
    pub(crate) msg_tx: mpsc::Sender<Inbound>,
    pub(crate) event_tx: mpsc::Sender<Event>,
    pub(crate) cancel: CancellationToken,
    /// True while complete nodes watch this node (set on every deploy).
    pub(crate) watched: Arc<AtomicBool>,
    pub(crate) tracker: TaskTracker,
}

impl NodeHandle {
    /// The node's identity.
    pub fn info(&self) -> &NodeInfo {
        &self.info
    }

    /// Fires when the node must stop producing messages.
    pub fn cancel_token(&self) -> &CancellationToken {
        &self.cancel
    }

    /// True once the node is stopping.
    pub fn is_stopping(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// Sends `msg` on output 0; waits while the runtime is saturated
    /// (backpressure). Returns false when the runtime has stopped.
    pub async fn send(&self, msg: Msg) -> bool {
        self.send_to(0, msg).await
    }

    /// Sends `msg` on output `port`.
    pub async fn send_to(&self, port: usize, msg: Msg) -> bool {
        self.msg_tx
            .send(Inbound::Output {
                from: self.slot,
                port,
                msg,
            })
            .await
            .is_ok()
    }

    /// Delivers `msg` to this node's own input (timers of inject-like nodes).
    pub async fn deliver_to_self(&self, msg: Msg) -> bool {
        self.msg_tx
            .send(Inbound::Deliver { to: self.slot, msg })
            .await
            .is_ok()
    }

    async fn event(&self, e: NodeEvent) {
        let _ = self
            .event_tx
            .send(Event {
                from: self.slot,
                event: e,
            })
            .await;
    }

    /// Reports an error; with a message it goes to catch nodes.
    pub async fn error(&self, err: impl fmt::Display, msg: Option<Msg>) {
        self.event(NodeEvent::Error {
            text: err.to_string(),
            msg,
        })
        .await;
    }

    /// Logs a warning.
    pub async fn warn(&self, text: impl fmt::Display) {
        self.event(NodeEvent::Warn(text.to_string())).await;
    }

    /// Logs at info level.
    pub async fn log(&self, text: impl fmt::Display) {
        self.event(NodeEvent::Info(text.to_string())).await;
    }

    /// Sets the node status.
    pub async fn status(&self, status: Status) {
        self.event(NodeEvent::Status(status)).await;
    }

    /// Signals completion of `msg` (complete nodes).
    pub async fn done(&self, msg: Msg) {
        if self.is_watched() {
            self.event(NodeEvent::Complete(msg)).await;
        }
    }

    /// True when a complete node watches this node, i.e. when
    /// [`NodeHandle::done`] reaches anyone. A node may skip keeping a message
    /// around only to complete it when this is false; a later deploy that
    /// adds a complete node sets it.
    pub fn is_watched(&self) -> bool {
        self.watched.load(Ordering::Relaxed)
    }

    /// Runs `fut` on the runtime until it ends or the node stops.
    pub fn spawn<F>(&self, fut: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let cancel = self.cancel.clone();
        self.tracker.spawn(async move {
            tokio::select! {
                _ = cancel.cancelled() => {}
                _ = fut => {}
            }
        });
    }
}
