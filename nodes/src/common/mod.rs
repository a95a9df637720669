//! Common nodes: inject, debug, catch, status, complete, comment, junction, link.

pub mod catch;
pub mod comment;
pub mod complete;
pub mod debug;
pub mod inject;
pub mod junction;
pub mod link_in;
pub mod link_out;
mod scope;
pub mod status;

use flowd_engine::Registry;

/// Registers the common nodes.
pub fn register(r: &mut Registry) {
    r.register(&catch::CatchType);
    r.register(&comment::CommentType);
    r.register(&complete::CompleteType);
    r.register(&debug::DebugType);
    r.register(&inject::InjectType);
    r.register(&junction::JunctionType);
    r.register(&link_in::LinkInType);
    r.register(&link_out::LinkOutType);
    r.register(&link_out::LinkCallType);
    r.register(&status::StatusType);
}
