//! flowd's embedded MQTT broker (work in progress).
