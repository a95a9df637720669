//! `ws://` broker URLs: mqtt in and mqtt out over MQTT-over-WebSocket, against
//! flowd's broker (its WebSocket listener), checked from a TCP client.

mod mqtt_support;

use flowd_broker::{Broker, BrokerConfig};
use flowd_engine::testing::TestFlow;
use mqtt_support::{broker_node, wait_connected, Observer, Publisher};
use serde_json::json;
use std::time::Duration;

/// Time for the subscription to reach the broker after the connected status.
const SETTLE: Duration = Duration::from_millis(300);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_in_and_out_over_websocket() {
    let broker = Broker::start(BrokerConfig {
        mqtt: Some("127.0.0.1:0".parse().unwrap()),
        ws: Some("127.0.0.1:0".parse().unwrap()),
        ..BrokerConfig::default()
    })
    .await
    .unwrap();
    let tcp = broker.local_addr().unwrap().port();
    let ws = broker.ws_addr().unwrap().port();
    for protocol in ["4", "5"] {
        let mut echoed = Observer::subscribe(tcp, "echo/#").await;
        let flows = json!([
            {"id": "t", "type": "tab"},
            broker_node("b", 0, json!({
                "broker": format!("ws://127.0.0.1:{ws}/mqtt"),
                "protocolVersion": protocol,
            })),
            {"id": "in", "type": "mqtt in", "z": "t", "topic": "ws/+", "qos": "1",
             "datatype": "utf8", "broker": "b", "wires": [["chg"]]},
            {"id": "chg", "type": "change", "z": "t", "rules": [
                {"t": "set", "p": "topic", "pt": "msg", "to": "echo/ws", "tot": "str"}],
             "wires": [["out"]]},
            {"id": "out", "type": "mqtt out", "z": "t", "topic": "", "qos": "1",
             "retain": "false", "broker": "b", "wires": []}
        ]);
        let f = TestFlow::start(&flowd_nodes::registry(), flows)
            .await
            .expect("ws:// is a valid broker URL");
        wait_connected(&f, "in").await;
        tokio::time::sleep(SETTLE).await;
        let p = Publisher::connect(tcp).await;
        p.publish("ws/a", format!("over websocket v{protocol}"), 1, false)
            .await;
        let got = echoed.next().await;
        assert_eq!(got.topic, "echo/ws");
        assert_eq!(
            String::from_utf8_lossy(&got.payload),
            format!("over websocket v{protocol}")
        );
        f.stop().await;
    }
    broker.shutdown().await;
}
