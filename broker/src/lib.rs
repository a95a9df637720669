//! flowd's embedded MQTT broker.
pub mod codec;
