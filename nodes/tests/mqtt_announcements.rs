//! Birth, close and will messages of the mqtt-broker config node.

mod mqtt_support;

use flowd_engine::testing::TestFlow;
use mqtt_support::{broker_node, wait_connected, Mosquitto, Observer, Seen};
use serde_json::{json, Value as Json};
use std::time::Duration;

fn flows(port: u16) -> Json {
    json!([
        {"id": "t1", "type": "tab", "label": "mqtt"},
        broker_node("b1", port, json!({
            "birthTopic": "flowd/status", "birthPayload": "online", "birthQos": "1", "birthRetain": "true",
            "closeTopic": "flowd/status", "closePayload": "offline", "closeQos": "1", "closeRetain": "true",
            "willTopic": "flowd/will", "willPayload": "gone", "willQos": "1", "willRetain": "false"
        })),
        {"id": "out", "type": "mqtt out", "z": "t1", "topic": "", "qos": "", "retain": "",
         "broker": "b1", "wires": []},
    ])
}

fn seen(topic: &str, payload: &str, qos: u8, retain: bool) -> Seen {
    Seen {
        topic: topic.into(),
        payload: bytes::Bytes::copy_from_slice(payload.as_bytes()),
        qos,
        retain,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn birth_after_every_connect_and_close_before_a_clean_stop() {
    let mut broker = Mosquitto::start();
    let mut obs = Observer::subscribe(broker.port, "flowd/#").await;
    let f = TestFlow::start(&flowd_nodes::registry(), flows(broker.port))
        .await
        .expect("valid flows");
    assert_eq!(obs.next().await, seen("flowd/status", "online", 1, true));
    wait_connected(&f, "out").await;

    // After the broker restarts (forgetting everything) the birth message is published again.
    drop(obs);
    broker.kill();
    broker.restart();
    let mut obs = Observer::subscribe(broker.port, "flowd/#").await;
    assert_eq!(obs.next().await, seen("flowd/status", "online", 1, true));

    f.stop().await;
    assert_eq!(obs.next().await, seen("flowd/status", "offline", 1, true));
    // A clean stop does not trigger the will.
    let extra = obs.next_within(Duration::from_millis(300)).await;
    assert!(extra.is_none(), "{extra:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_will_is_published_when_flowd_dies() {
    let broker = Mosquitto::start();
    let mut obs = Observer::subscribe(broker.port, "flowd/will").await;
    let port = broker.port;
    // Run the flow on a runtime of its own and drop that runtime: the
    // connection ends without a DISCONNECT, as when the process crashes.
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let f = TestFlow::start(&flowd_nodes::registry(), flows(port))
                .await
                .expect("valid flows");
            wait_connected(&f, "out").await;
            std::mem::forget(f);
        });
        rt.shutdown_timeout(Duration::from_secs(1));
    })
    .join()
    .expect("flow thread");
    assert_eq!(obs.next().await, seen("flowd/will", "gone", 1, false));
}
