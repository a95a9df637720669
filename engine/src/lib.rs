//! flowd's flow engine.
//!
//! - [`value`]: JavaScript-like values (`Value`, `Object`), JSON and coercions.
pub mod value;
