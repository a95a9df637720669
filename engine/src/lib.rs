//! flowd's flow engine: Node-RED flows, validated, built and run.
//!
//! The path every deploy takes: [`flows`] parses flows.json into a
//! [`flows::FlowSet`]; [`build::prepare`] validates it whole (every error
//! collected, each naming node, type, tab and field) and builds every node
//! through the [`registry::Registry`]; [`runtime::Runtime`] runs the result.
//!
//! - [`value`]: JavaScript-like values (`Value`, `Object`), JSON and coercions.
//! - [`msg`]: the message type.
//! - [`node`]: the traits node types implement and what running nodes can do.
//! - [`context`]: node, flow and global context.
//! - [`deploy`]: the deploy diff (full / flows / nodes).
//! - [`observer`]: debug output, node logs and status leaving the runtime.
//! - [`testing`]: an in-process harness for flow tests (like node-red-node-test-helper).
//! - [`config_de`]: lenient deserializers for Node-RED's loosely typed properties.

pub mod build;
pub mod config_de;
pub mod context;
pub mod deploy;
pub mod flows;
pub mod msg;
pub mod node;
pub mod observer;
pub mod registry;
pub mod runtime;
pub mod testing;
pub mod validation;
pub mod value;

pub use build::{prepare, prepare_json, prepare_reusing, prepare_text, Prepared};
pub use deploy::DeployType;
pub use msg::Msg;
pub use node::{BuiltNode, FunctionNode, NodeCx, NodeHandle, NodeInfo, NodeType, Status, TaskNode};
pub use registry::{NodeDescriptor, Registry};
pub use runtime::{DeployError, Runtime, RuntimeOptions};
pub use validation::{ValidationError, ValidationErrors};
pub use value::{Object, Value};
