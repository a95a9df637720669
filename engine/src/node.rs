//! What a node type implements, and what a running node can do.
//!
//! Two kinds of running node (see ARCHITECTURE.md):
//! - a [`FunctionNode`] is synchronous: the executor calls it inline, so a
//!   message crosses a chain of them without a channel hop, a task switch, a
//!   lock or a copy. It reports through its [`NodeCx`].
//! - a [`TaskNode`] owns a tokio task with a bounded inbox; it talks to the
//!   runtime through its [`NodeHandle`] (backpressure: `send` waits while the
//!   runtime is saturated).
//!
//! Config nodes (e.g. `mqtt-broker`) are shared objects ([`ConfigNode`]) that
//! user nodes receive at build time.

use crate::context::{ContextScope, ContextStore};
use crate::flows::env::NodeEnv;
use crate::msg::Msg;
use crate::observer::RuntimeObserver;
use crate::registry::NodeDescriptor;
use crate::validation::ValidationError;
use crate::value::path::PathError;
use crate::value::{Str, Value};
use std::any::Any;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

pub use crate::build::BuildContext;
pub use crate::runtime::handle::NodeHandle;

/// A boxed future, as task nodes and config nodes return them.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// Default capacity of a task node's inbox.
pub const DEFAULT_INBOX_CAPACITY: usize = 256;

/// Identity of a running node, shared by the runtime and the node.
#[derive(Debug, Clone)]
pub struct NodeInfo {
    /// Node id.
    pub id: Str,
    /// Node type.
    pub type_name: Str,
    /// Name, if set.
    pub name: Option<Str>,
    /// Tab id (absent for global config nodes).
    pub z: Option<Str>,
    /// Tab label.
    pub tab_label: Option<Str>,
    /// Group id.
    pub g: Option<Str>,
    /// The node's environment.
    pub env: NodeEnv,
}

impl NodeInfo {
    /// A detached info for tests and tools.
    pub fn detached(id: &str, type_name: &str) -> NodeInfo {
        NodeInfo {
            id: Str::new(id),
            type_name: Str::new(type_name),
            name: None,
            z: None,
            tab_label: None,
            g: None,
            env: NodeEnv::process(),
        }
    }
}

/// A node status (`{fill, shape, text}`); all empty clears it.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Status {
    /// red, green, yellow, blue or grey.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fill: Option<Str>,
    /// ring or dot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shape: Option<Str>,
    /// Text shown under the node.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

impl Status {
    /// A status with fill, shape and text.
    pub fn new(fill: &str, shape: &str, text: impl Into<String>) -> Status {
        Status {
            fill: Some(Str::new(fill)),
            shape: Some(Str::new(shape)),
            text: Some(text.into()),
        }
    }

    /// The empty status (clears).
    pub fn clear() -> Status {
        Status::default()
    }
}

/// A runtime command for one node (from the admin API).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeControl {
    /// Turn output on or off (debug nodes' sidebar switch).
    SetActive(bool),
}

/// A synchronous node, run inline by the executor.
pub trait FunctionNode: Send + 'static {
    /// Handles one message. Output goes through `cx.send*`; completion,
    /// errors and status through the other `cx` methods.
    fn on_input(&mut self, msg: Msg, cx: &mut NodeCx<'_>);

    /// Called once when the node starts (e.g. to start timers that deliver
    /// to the node itself through `handle`).
    fn on_start(&mut self, _handle: &NodeHandle) {}

    /// Called when the node stops.
    fn on_close(&mut self) {}

    /// Handles a runtime command; returns false when the node does not support it.
    fn on_control(&mut self, _control: &NodeControl) -> bool {
        false
    }
}

/// An asynchronous node that owns a task.
pub trait TaskNode: Send + 'static {
    /// Capacity of the inbox; 0 for nodes without input.
    fn inbox_capacity(&self) -> usize {
        DEFAULT_INBOX_CAPACITY
    }

    /// Runs the node until its inbox closes (no more input) and its handle's
    /// cancellation token fires (stop producing).
    fn run(self: Box<Self>, io: TaskIo) -> BoxFuture<()>;
}

/// What a task node gets to run.
pub struct TaskIo {
    /// Input messages (None when the node has no input).
    pub inbox: Option<tokio::sync::mpsc::Receiver<Msg>>,
    /// Talks to the runtime.
    pub handle: NodeHandle,
}

/// A shared configuration node (e.g. an MQTT broker connection).
pub trait ConfigNode: Any + Send + Sync {
    /// Called once when the flows stop or the node is removed.
    fn close(&self) -> BoxFuture<()> {
        Box::pin(async {})
    }
}

/// Which nodes a catch or status node listens to.
#[derive(Debug, Clone, PartialEq)]
pub enum Scope {
    /// Every node on the tab.
    All,
    /// Only these node ids.
    Nodes(Vec<String>),
    /// Nodes in the same group.
    Group,
}

/// The role a node plays in runtime event routing.
#[derive(Debug, Clone, PartialEq)]
pub enum Role {
    /// An ordinary node.
    Plain,
    /// Receives errors of its tab's nodes.
    Catch {
        /// Which nodes.
        scope: Scope,
        /// Only errors no other catch handled.
        uncaught: bool,
    },
    /// Receives status updates of its tab's nodes.
    Status {
        /// Which nodes.
        scope: Scope,
    },
    /// Receives messages the listed nodes completed.
    Complete {
        /// Watched node ids.
        scope: Vec<String>,
    },
}

/// The running form of a node.
pub enum NodeKind {
    /// Synchronous, inline.
    Function(Box<dyn FunctionNode>),
    /// Asynchronous, own task.
    Task(Box<dyn TaskNode>),
    /// Shared configuration.
    Config(Arc<dyn ConfigNode>),
    /// No behaviour (comments).
    Inert,
}

/// What a node type's `build` returns.
pub struct BuiltNode {
    /// The running form.
    pub kind: NodeKind,
    /// Its routing role.
    pub role: Role,
    /// Extra destinations of output 0 by node id, possibly on other tabs (link out).
    pub links: Vec<String>,
    /// Nodes whose output 0 also reaches this one, by id (a link in naming
    /// its link outs: Node-RED wires the union of both sides' lists).
    pub links_from: Vec<String>,
}

impl BuiltNode {
    /// A plain function node.
    pub fn function(node: impl FunctionNode) -> BuiltNode {
        BuiltNode {
            kind: NodeKind::Function(Box::new(node)),
            role: Role::Plain,
            links: Vec::new(),
            links_from: Vec::new(),
        }
    }

    /// A plain task node.
    pub fn task(node: impl TaskNode) -> BuiltNode {
        BuiltNode {
            kind: NodeKind::Task(Box::new(node)),
            role: Role::Plain,
            links: Vec::new(),
            links_from: Vec::new(),
        }
    }

    /// A config node.
    pub fn config(node: Arc<dyn ConfigNode>) -> BuiltNode {
        BuiltNode {
            kind: NodeKind::Config(node),
            role: Role::Plain,
            links: Vec::new(),
            links_from: Vec::new(),
        }
    }

    /// A node without behaviour.
    pub fn inert() -> BuiltNode {
        BuiltNode {
            kind: NodeKind::Inert,
            role: Role::Plain,
            links: Vec::new(),
            links_from: Vec::new(),
        }
    }

    /// Sets the routing role.
    pub fn with_role(mut self, role: Role) -> BuiltNode {
        self.role = role;
        self
    }

    /// Adds link destinations.
    pub fn with_links(mut self, links: Vec<String>) -> BuiltNode {
        self.links = links;
        self
    }

    /// Adds link sources: output 0 of each named node also reaches this one.
    pub fn with_links_from(mut self, sources: Vec<String>) -> BuiltNode {
        self.links_from = sources;
        self
    }
}

/// A node type: its editor descriptor and its constructor.
pub trait NodeType: Send + Sync + 'static {
    /// The Node-RED type string (`"rbe"`, `"mqtt in"`).
    fn type_name(&self) -> &'static str;
    /// How the editor draws it and its edit form.
    fn descriptor(&self) -> NodeDescriptor;
    /// Validates the configuration and builds the node. Problems are reported
    /// through `cx.error` (all of them, not just the first); return None then.
    fn build(&self, cx: &mut BuildContext<'_>) -> Option<BuiltNode>;
    /// True for node types that keep an empty `name` (Node-RED's template and
    /// debug copy `n.name` themselves): `"name": ""` then shows in the
    /// `source` of their errors, statuses and completions.
    fn keeps_empty_name(&self) -> bool {
        false
    }
}

/// Something a node reported while handling a message.
#[derive(Debug)]
pub enum NodeEvent {
    /// `node.error(err, msg)`: routed to catch nodes when there is a message.
    Error {
        /// Error text.
        text: String,
        /// The message that failed.
        msg: Option<Msg>,
    },
    /// `node.warn(text)`.
    Warn(String),
    /// `node.log(text)` at info level.
    Info(String),
    /// `node.status(..)`.
    Status(Status),
    /// `done()`: the message as it was at completion.
    Complete(Msg),
}

/// The context a function node handles a message in.
pub struct NodeCx<'a> {
    pub(crate) info: &'a NodeInfo,
    pub(crate) out: &'a mut Vec<(usize, Msg)>,
    pub(crate) events: &'a mut Vec<NodeEvent>,
    pub(crate) contexts: &'a mut ContextStore,
    pub(crate) observer: &'a dyn RuntimeObserver,
    pub(crate) watched: bool,
}

impl<'a> NodeCx<'a> {
    /// The node's identity.
    pub fn info(&self) -> &NodeInfo {
        self.info
    }

    /// Sends on output 0.
    #[inline]
    pub fn send(&mut self, msg: Msg) {
        self.out.push((0, msg));
    }

    /// Sends on output `port`.
    #[inline]
    pub fn send_to(&mut self, port: usize, msg: Msg) {
        self.out.push((port, msg));
    }

    /// Signals that `msg` is finished (triggers `complete` nodes watching this node).
    #[inline]
    pub fn done(&mut self, msg: &Msg) {
        if self.watched {
            self.events.push(NodeEvent::Complete(msg.clone()));
        }
    }

    /// Reports an error with the message that caused it (goes to catch nodes).
    pub fn error(&mut self, err: impl fmt::Display, msg: Msg) {
        self.events.push(NodeEvent::Error {
            text: err.to_string(),
            msg: Some(msg),
        });
    }

    /// Reports an error without a message (logged only).
    pub fn log_error(&mut self, err: impl fmt::Display) {
        self.events.push(NodeEvent::Error {
            text: err.to_string(),
            msg: None,
        });
    }

    /// Logs a warning (and shows it in the debug sidebar).
    pub fn warn(&mut self, text: impl fmt::Display) {
        self.events.push(NodeEvent::Warn(text.to_string()));
    }

    /// Sets the node status.
    pub fn status(&mut self, status: Status) {
        self.events.push(NodeEvent::Status(status));
    }

    /// Logs at info level.
    pub fn log(&mut self, text: impl fmt::Display) {
        self.events.push(NodeEvent::Info(text.to_string()));
    }

    /// The runtime observer (debug sidebar, log).
    pub fn observer(&self) -> &dyn RuntimeObserver {
        self.observer
    }

    /// Env var `name` as this node sees it.
    pub fn env(&self, name: &str) -> Option<Value> {
        self.info.env.get(name)
    }

    /// Reads a context value (`key` may be a path like `a.b[0]` and carry a `#:(store)::` prefix).
    pub fn context_get(&self, scope: ContextScope, key: &str) -> Result<Option<Value>, PathError> {
        self.contexts.get(scope, self.info, key)
    }

    /// Writes (or with `None` deletes) a context value.
    pub fn context_set(
        &mut self,
        scope: ContextScope,
        key: &str,
        value: Option<Value>,
    ) -> Result<(), PathError> {
        self.contexts.set(scope, self.info, key, value)
    }
}

/// Wraps a build error for a field.
pub fn field_error(info: &NodeInfo, field: &str, message: impl Into<String>) -> ValidationError {
    ValidationError {
        node: Some(info.id.to_string()),
        node_type: Some(info.type_name.to_string()),
        tab: info.tab_label.as_ref().map(|t| t.to_string()),
        field: Some(field.to_string()),
        message: message.into(),
    }
}
