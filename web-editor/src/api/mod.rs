//! Admin API handlers.

pub mod catalog;
pub mod comms;
pub mod flows;
pub mod runtime;
