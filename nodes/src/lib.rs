//! flowd's node types: Node-RED's core nodes, one file per type, grouped as
//! in Node-RED's palette.
//!
//! - [`common`]: inject, debug, catch, status, complete, comment, junction, link in/out.
//! - [`function`]: change, switch, rbe ("filter"), template.
//! - [`parser`]: json (parsers).
//! - [`network`]: MQTT message rules (the mqtt nodes build on them).
//! - [`typed_value`]: Node-RED's typed inputs (str, num, json, msg, flow, env, ...), shared by nodes.
//!
//! [`registry`] returns a registry with every type.

pub mod common;
pub mod function;
pub mod network;
pub mod parser;
pub mod typed_value;

#[cfg(test)]
pub(crate) mod test_util;

use flowd_engine::Registry;

/// A registry holding every node type flowd supports.
pub fn registry() -> Registry {
    let mut r = Registry::new();
    common::register(&mut r);
    function::register(&mut r);
    parser::register(&mut r);
    network::register(&mut r);
    r
}
