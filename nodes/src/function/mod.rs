//! Function nodes: change, switch, rbe ("filter"), template.

pub mod rbe;

use flowd_engine::Registry;

/// Registers the function nodes.
pub fn register(r: &mut Registry) {
    r.register(&rbe::RbeType);
}
