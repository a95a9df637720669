//! Function nodes: change, switch, rbe ("filter"), template.

pub mod change;
pub mod mustache;
pub mod rbe;
pub mod switch;
pub mod template;

use flowd_engine::Registry;

/// Registers the function nodes.
pub fn register(r: &mut Registry) {
    r.register(&change::ChangeType);
    r.register(&rbe::RbeType);
    r.register(&switch::SwitchType);
    r.register(&template::TemplateType);
}
