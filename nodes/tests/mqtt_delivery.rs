//! Nothing is silently lost: mqtt out keeps messages while the broker is
//! unreachable and sends them in order after reconnecting; when its queue is
//! full, QoS 1 messages raise errors catch nodes receive.

mod mqtt_support;

use flowd_engine::testing::TestFlow;
use flowd_engine::value::path::Path;
use flowd_engine::{Msg, Value};
use mqtt_support::{broker_node, wait_connected, Mosquitto, PersistentObserver, WAIT};
use serde_json::json;
use std::time::Duration;

fn msg(topic: &str, payload: String, qos: u8) -> Msg {
    let mut m = Msg::new();
    m.insert("topic", Value::str(topic));
    m.insert("payload", Value::string(payload));
    m.insert("qos", Value::Number(f64::from(qos)));
    m
}

fn flows(port: u16, broker_extra: serde_json::Value) -> serde_json::Value {
    json!([
        {"id": "t1", "type": "tab", "label": "mqtt"},
        broker_node("b1", port, broker_extra),
        {"id": "out", "type": "mqtt out", "z": "t1", "topic": "", "qos": "", "retain": "",
         "broker": "b1", "wires": []},
        {"id": "c1", "type": "catch", "z": "t1", "scope": null, "uncaught": false, "wires": [[]]},
    ])
}

/// Sequence numbers in first-arrival order (QoS 1 may deliver a message twice).
fn first_arrivals(seen: &[u32]) -> Vec<u32> {
    let mut out: Vec<u32> = Vec::new();
    let mut have = std::collections::HashSet::new();
    for n in seen {
        if have.insert(*n) {
            out.push(*n);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qos1_messages_survive_a_broker_restart_in_order() {
    const TOTAL: u32 = 300;
    let mut broker = Mosquitto::start_persistent();
    let mut obs = PersistentObserver::subscribe(broker.port, "seq-observer", "seq/#").await;
    let mut f = TestFlow::start(&flowd_nodes::registry(), flows(broker.port, json!({})))
        .await
        .expect("valid flows");
    wait_connected(&f, "out").await;
    for i in 0..TOTAL {
        if i == 100 {
            broker.stop();
            f.observer
                .wait_until(WAIT, "disconnected status", |o| {
                    o.statuses()
                        .iter()
                        .rev()
                        .find(|(n, _)| n == "out")
                        .is_some_and(|(_, s)| {
                            s.text.as_deref() != Some("node-red:common.status.connected")
                        })
                })
                .await;
        }
        if i == 200 {
            broker.restart();
        }
        f.send("out", msg("seq/n", i.to_string(), 1)).await;
    }
    let mut seen: Vec<u32> = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while first_arrivals(&seen).len() < TOTAL as usize && tokio::time::Instant::now() < deadline {
        let Some(s) = obs.next_within(WAIT).await else {
            break;
        };
        let n: u32 = String::from_utf8_lossy(&s.payload)
            .parse()
            .expect("a number");
        seen.push(n);
    }
    let order = first_arrivals(&seen);
    assert_eq!(
        order,
        (0..TOTAL).collect::<Vec<_>>(),
        "lost or reordered: {seen:?}"
    );
    // No error: nothing overflowed.
    f.expect_nothing_from("c1", Duration::from_millis(100))
        .await;
    f.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_raises_errors_for_qos1_and_warns_for_qos0() {
    // The observer's persistent session is created first, then the broker goes down.
    let mut broker = Mosquitto::start_persistent();
    let mut obs = PersistentObserver::subscribe(broker.port, "q-observer", "q/#").await;
    broker.stop();
    let mut f = TestFlow::start(
        &flowd_nodes::registry(),
        flows(broker.port, json!({"queueSize": 5})),
    )
    .await
    .expect("valid flows");
    for i in 0..8 {
        f.send("out", msg("q/n", i.to_string(), 1)).await;
    }
    for i in 8..11 {
        f.send("out", msg("q/z", i.to_string(), 0)).await;
    }
    // The three QoS 1 messages that did not fit reach the catch node, with their payloads.
    let mut caught = Vec::new();
    for _ in 0..3 {
        let c = f.next_from("c1").await;
        caught.push(
            c.msg
                .payload()
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
        );
        let text = c
            .msg
            .get_path(&Path::parse("error.message").expect("path"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        assert!(text.contains("queue"), "{text}");
    }
    assert_eq!(caught, ["5", "6", "7"]);
    f.observer
        .wait_until(WAIT, "QoS 0 overflow warning", |o| {
            o.logs()
                .iter()
                .any(|l| l.node == "out" && l.text.contains("QoS 0"))
        })
        .await;
    // Once the broker is up, the five kept messages go out in order.
    broker.restart();
    wait_connected(&f, "out").await;
    let mut got = Vec::new();
    for _ in 0..5 {
        let s = obs.next_within(WAIT).await.expect("a kept message");
        got.push(String::from_utf8_lossy(&s.payload).into_owned());
    }
    assert_eq!(got, ["0", "1", "2", "3", "4"]);
    assert!(obs.next_within(Duration::from_millis(300)).await.is_none());
    f.expect_nothing_from("c1", Duration::from_millis(100))
        .await;
    f.stop().await;
}
