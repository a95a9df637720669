//! [`InlineDriver`]: runs a flow set of function nodes synchronously on the
//! caller's thread. Used by benchmarks to measure the per-message cost of a
//! chain (json -> rbe -> template) without channels or tasks in the way, and
//! by tools that embed the engine as a pure message transformer.

use super::executor::Executor;
use super::{RuntimeError, RuntimeOptions};
use crate::build::Prepared;
use crate::msg::Msg;
use crate::node::NodeKind;
use tokio::sync::mpsc;

/// A synchronous driver for flow sets made only of function nodes.
pub struct InlineDriver {
    exec: Executor,
    // Keeps the executor's control channel open.
    _ctrl: mpsc::Sender<super::Control>,
}

/// Why a flow set cannot run inline.
#[derive(Debug, thiserror::Error)]
#[error("node \"{0}\" runs its own task and cannot be driven inline")]
pub struct NotInline(pub String);

impl InlineDriver {
    /// Builds the executor for `prepared`; every node must be a function,
    /// config or inert node. Must be called within a tokio runtime context
    /// (function nodes may start timers).
    pub fn new(prepared: Prepared, options: RuntimeOptions) -> Result<InlineDriver, NotInline> {
        if let Some(task) = prepared
            .nodes
            .iter()
            .find(|n| matches!(n.built.kind, NodeKind::Task(_)))
        {
            return Err(NotInline(task.info.id.to_string()));
        }
        let (tx, rx) = mpsc::channel(1);
        Ok(InlineDriver {
            exec: Executor::new(prepared, options, rx, crate::context::ContextStore::new()),
            _ctrl: tx,
        })
    }

    /// The slot index of node `id`, for [`InlineDriver::send_to_index`].
    pub fn index_of(&self, id: &str) -> Option<u32> {
        self.exec.index_of(id)
    }

    /// Delivers `msg` to node `id` and runs until no work is left.
    pub fn send(&mut self, id: &str, msg: Msg) -> Result<(), RuntimeError> {
        let idx = self
            .index_of(id)
            .ok_or_else(|| RuntimeError::UnknownNode(id.to_string()))?;
        self.send_to_index(idx, msg);
        Ok(())
    }

    /// Delivers `msg` to the node at `idx` and runs until no work is left.
    #[inline]
    pub fn send_to_index(&mut self, idx: u32, msg: Msg) {
        self.exec.run_inline(idx, msg);
    }
}
