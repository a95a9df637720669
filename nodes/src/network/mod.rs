//! Network nodes: `mqtt-broker` (the shared client connection), `mqtt in`
//! and `mqtt out`, and `tls-config`. [`mqtt_message`] holds Node-RED's rules
//! for turning MQTT publications into messages and back; [`mqtt_client`]
//! is flowd's MQTT 3.1.1 / 5 client (its connection in [`mqtt_event_loop`]); [`mqtt_connection`] is the
//! connection one config node shares with its users; [`mqtt_delivery`]
//! hands received publications to nodes and acknowledges them in order.

pub mod mqtt_broker;
pub mod mqtt_client;
pub mod mqtt_connection;
pub mod mqtt_delivery;
pub mod mqtt_event_loop;
pub mod mqtt_in;
pub mod mqtt_message;
pub mod mqtt_out;
pub mod mqtt_tls;
mod mqtt_websocket;

use flowd_engine::Registry;

/// Registers the network nodes.
pub fn register(r: &mut Registry) {
    r.register(&mqtt_broker::MqttBrokerType);
    r.register(&mqtt_in::MqttInType);
    r.register(&mqtt_out::MqttOutType);
    r.register(&mqtt_tls::TlsConfigType);
}
