//! Network nodes. [`mqtt_message`] holds Node-RED's rules for turning MQTT
//! publications into messages and back; the mqtt nodes build on it.

pub mod mqtt_message;
