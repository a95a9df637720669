//! flowd nodes.
