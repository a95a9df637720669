//! MQTT 5: publish properties out and in, retain-as-published and no-local.

mod mqtt_support;

use flowd_engine::testing::TestFlow;
use flowd_engine::{Msg, Value};
use mqtt_support::{broker_node, wait_connected, Mosquitto, Publisher};
use serde_json::json;
use std::time::Duration;

/// Time for the subscriptions to reach the broker after the connected status.
const SETTLE: Duration = Duration::from_millis(300);

fn msg(v: serde_json::Value) -> Msg {
    Msg::from_value(Value::from_json(&v)).expect("an object")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v5_properties_retain_as_published_and_no_local() {
    let broker = Mosquitto::start();
    let flows = json!([
        {"id": "t1", "type": "tab", "label": "v5"},
        broker_node("b1", broker.port, json!({"protocolVersion": "5"})),
        {"id": "props", "type": "mqtt in", "z": "t1", "topic": "v5/props", "qos": "1",
         "datatype": "auto-detect", "broker": "b1", "wires": [[]]},
        {"id": "rap", "type": "mqtt in", "z": "t1", "topic": "keep/+", "qos": "1",
         "datatype": "utf8", "rap": true, "broker": "b1", "wires": [[]]},
        {"id": "norap", "type": "mqtt in", "z": "t1", "topic": "drop/+", "qos": "1",
         "datatype": "utf8", "rap": false, "broker": "b1", "wires": [[]]},
        {"id": "reply", "type": "mqtt in", "z": "t1", "topic": "v5/reply", "qos": "1",
         "datatype": "utf8", "broker": "b1", "wires": [[]]},
        {"id": "nl", "type": "mqtt in", "z": "t1", "topic": "nl/t", "qos": "1",
         "datatype": "utf8", "nl": true, "broker": "b1", "wires": [[]]},
        {"id": "out", "type": "mqtt out", "z": "t1", "topic": "", "qos": "1", "retain": "",
         "contentType": "application/json", "userProps": "{\"origin\":\"flowd\"}",
         "respTopic": "v5/reply", "broker": "b1", "wires": []},
    ]);
    let mut f = TestFlow::start(&flowd_nodes::registry(), flows)
        .await
        .expect("valid flows");
    wait_connected(&f, "props").await;
    tokio::time::sleep(SETTLE).await;

    f.send(
        "out",
        msg(
            json!({"topic": "v5/props", "payload": {"t": 21.5}, "correlationData": "c-1",
                   "messageExpiryInterval": 60}),
        ),
    )
    .await;
    let m = f.next_from("props").await.msg;
    assert!(m
        .payload()
        .expect("payload")
        .deep_equals(&Value::from_json(&json!({"t": 21.5}))));
    assert_eq!(m.get("contentType"), Some(&Value::str("application/json")));
    assert_eq!(m.get("responseTopic"), Some(&Value::str("v5/reply")));
    assert_eq!(
        m.get("correlationData"),
        Some(&Value::Buffer(bytes::Bytes::from_static(b"c-1")))
    );
    assert!(m
        .get("userProperties")
        .expect("user properties")
        .deep_equals(&Value::from_json(&json!({"origin": "flowd"}))));
    assert!(m.get("messageExpiryInterval").is_some());

    // A live retained publication keeps its flag only with retain-as-published.
    let p = Publisher::connect(broker.port).await;
    p.publish("keep/a", "r", 1, true).await;
    p.publish("drop/a", "r", 1, true).await;
    let with = f.next_from("rap").await.msg;
    let without = f.next_from("norap").await.msg;
    assert_eq!(with.get("retain"), Some(&Value::Bool(true)));
    assert_eq!(without.get("retain"), Some(&Value::Bool(false)));

    // No-local: the node does not get what its own connection publishes.
    f.send("out", msg(json!({"topic": "nl/t", "payload": "mine"})))
        .await;
    p.publish("nl/t", "theirs", 1, false).await;
    assert_eq!(
        f.next_from("nl").await.msg.payload(),
        Some(&Value::str("theirs"))
    );
    f.expect_nothing_from("nl", Duration::from_millis(200))
        .await;

    // Without a topic, the response topic (the node's `respTopic` here) is
    // where the message goes.
    f.send("out", msg(json!({"payload": "to the responder"})))
        .await;
    let r = f.next_from("reply").await.msg;
    assert_eq!(
        (r.topic(), r.payload()),
        (
            Some(&Value::str("v5/reply")),
            Some(&Value::str("to the responder"))
        )
    );
    assert!(r.get("responseTopic").is_none());
    f.stop().await;
}
