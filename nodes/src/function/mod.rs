//! Function nodes: change, switch, rbe ("filter"), template.

pub mod mustache;
pub mod rbe;
pub mod template;

use flowd_engine::Registry;

/// Registers the function nodes.
pub fn register(r: &mut Registry) {
    r.register(&rbe::RbeType);
    r.register(&template::TemplateType);
}
