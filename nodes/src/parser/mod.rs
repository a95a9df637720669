//! Parser nodes.

pub mod json;

use flowd_engine::Registry;

/// Registers the parser nodes.
pub fn register(r: &mut Registry) {
    r.register(&json::JsonType);
}
