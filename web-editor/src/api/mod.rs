//! Admin API handlers.

pub mod catalog;
pub mod flows;
pub mod runtime;
