//! flowd engine.
