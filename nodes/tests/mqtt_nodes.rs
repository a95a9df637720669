//! mqtt in / mqtt out / mqtt-broker against a real Mosquitto: datatypes,
//! QoS, retained messages, status, reconnect with re-subscribe, completion,
//! errors and validation.

mod mqtt_support;

use flowd_engine::testing::{Sent, TestFlow};
use flowd_engine::{Msg, Value};
use mqtt_support::{broker_node, wait_connected, Mosquitto, Observer, Publisher, WAIT};
use serde_json::{json, Value as Json};
use std::time::Duration;

/// Time for a subscription to reach the broker after the connected status.
const SETTLE: Duration = Duration::from_millis(300);

fn tab() -> Json {
    json!({"id": "t1", "type": "tab", "label": "mqtt"})
}

fn mqtt_in(id: &str, topic: &str, extra: Json) -> Json {
    let mut n = json!({"id": id, "type": "mqtt in", "z": "t1", "topic": topic, "qos": "2",
        "broker": "b1", "inputs": 0, "wires": [[]]});
    if let (Some(o), Some(e)) = (n.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            o.insert(k.clone(), v.clone());
        }
    }
    n
}

fn mqtt_out(id: &str, extra: Json) -> Json {
    let mut n = json!({"id": id, "type": "mqtt out", "z": "t1", "topic": "", "qos": "",
        "retain": "", "broker": "b1", "wires": []});
    if let (Some(o), Some(e)) = (n.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            o.insert(k.clone(), v.clone());
        }
    }
    n
}

fn msg(v: Json) -> Msg {
    Msg::from_value(Value::from_json(&v)).expect("an object")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_in_converts_every_datatype() {
    let broker = Mosquitto::start();
    let flows = json!([
        tab(),
        broker_node("b1", broker.port, json!({})),
        mqtt_in("absent", "dt/absent", json!({})),
        mqtt_in("utf8", "dt/utf8", json!({"datatype": "utf8"})),
        mqtt_in("buffer", "dt/buffer", json!({"datatype": "buffer"})),
        mqtt_in("base64", "dt/base64", json!({"datatype": "base64"})),
        mqtt_in("json", "dt/json", json!({"datatype": "json"})),
        mqtt_in("auto", "dt/auto", json!({"datatype": "auto"})),
        mqtt_in("detect", "dt/detect", json!({"datatype": "auto-detect"})),
        {"id": "c1", "type": "catch", "z": "t1", "scope": null, "uncaught": false, "wires": [[]]},
    ]);
    let mut f = TestFlow::start(&flowd_nodes::registry(), flows)
        .await
        .expect("valid flows");
    wait_connected(&f, "detect").await;
    tokio::time::sleep(SETTLE).await;
    let p = Publisher::connect(broker.port).await;
    let raw: &[u8] = &[0x68, 0xff];
    for t in ["absent", "utf8", "buffer", "base64", "auto", "detect"] {
        p.publish(&format!("dt/{t}"), "{\"a\":1}", 1, false).await;
        p.publish(&format!("dt/{t}"), raw.to_vec(), 1, false).await;
    }
    p.publish("dt/json", "{\"a\":1}", 2, false).await;
    p.publish("dt/json", "nope", 2, false).await;

    let payload = |s: &Sent| s.msg.payload().cloned().expect("payload");
    let obj = Value::from_json(&json!({"a": 1}));
    let text = Value::str("{\"a\":1}");
    let bytes = |b: &[u8]| Value::Buffer(bytes::Bytes::copy_from_slice(b));
    for id in ["absent", "utf8"] {
        assert_eq!(payload(&f.next_from(id).await), text, "{id}");
        assert_eq!(
            payload(&f.next_from(id).await),
            Value::str("h\u{FFFD}"),
            "{id}"
        );
    }
    assert_eq!(payload(&f.next_from("buffer").await), bytes(b"{\"a\":1}"));
    assert_eq!(payload(&f.next_from("buffer").await), bytes(raw));
    assert_eq!(
        payload(&f.next_from("base64").await),
        Value::str("eyJhIjoxfQ==")
    );
    assert_eq!(payload(&f.next_from("base64").await), Value::str("aP8="));
    assert_eq!(payload(&f.next_from("auto").await), text);
    assert_eq!(payload(&f.next_from("auto").await), bytes(raw));
    assert!(payload(&f.next_from("detect").await).deep_equals(&obj));
    assert_eq!(payload(&f.next_from("detect").await), bytes(raw));
    let j = f.next_from("json").await;
    assert!(payload(&j).deep_equals(&obj));
    assert_eq!(j.msg.topic(), Some(&Value::str("dt/json")));
    assert_eq!(j.msg.get("qos"), Some(&Value::Number(2.0)));
    assert_eq!(j.msg.get("retain"), Some(&Value::Bool(false)));
    // The invalid JSON goes to the catch node with the raw payload.
    let caught = f.next_from("c1").await;
    assert_eq!(caught.msg.payload(), Some(&bytes(b"nope")));
    f.expect_nothing_from("json", Duration::from_millis(200))
        .await;
    f.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_out_publishes_with_qos_retain_and_clears_retained() {
    let broker = Mosquitto::start();
    let flows = json!([
        tab(),
        broker_node("b1", broker.port, json!({})),
        mqtt_out("out", json!({})),
        mqtt_out("fixed", json!({"topic": "fixed/t", "qos": "1", "retain": "true"})),
        {"id": "done", "type": "complete", "z": "t1", "scope": ["out"], "uncaught": false, "wires": [[]]},
    ]);
    let mut obs = Observer::subscribe(broker.port, "#").await;
    let mut f = TestFlow::start(&flowd_nodes::registry(), flows)
        .await
        .expect("valid flows");
    wait_connected(&f, "out").await;
    f.send("out", msg(json!({"topic": "a/q0", "payload": "zero"})))
        .await;
    f.send(
        "out",
        msg(json!({"topic": "a/q1", "payload": 42, "qos": 1})),
    )
    .await;
    f.send(
        "out",
        msg(json!({"topic": "a/q2", "payload": {"b": 1, "2": 0}, "qos": 2, "retain": true})),
    )
    .await;
    f.send(
        "fixed",
        msg(json!({"topic": "ignored", "payload": null, "qos": 0})),
    )
    .await;
    let mut seen = obs.take(4).await;
    seen.sort();
    let s = |t: &str, p: &str, q: u8, r: bool| mqtt_support::Seen {
        topic: t.into(),
        payload: bytes::Bytes::copy_from_slice(p.as_bytes()),
        qos: q,
        retain: r,
    };
    assert_eq!(
        seen,
        vec![
            s("a/q0", "zero", 0, false),
            s("a/q1", "42", 1, false),
            s("a/q2", "{\"2\":0,\"b\":1}", 2, true),
            s("fixed/t", "", 1, true),
        ]
    );
    // done() after the publish: the complete node sees all three of `out`,
    // as Node-RED leaves them: QoS and retain used, the payload as sent.
    let mut completed = Vec::new();
    for _ in 0..3 {
        let m = f.next_from("done").await.msg;
        completed.push(format!(
            "{}|{}|{}|{}",
            m.topic().map(Value::to_js_string).unwrap_or_default(),
            m.get("qos").map(Value::to_js_string).unwrap_or_default(),
            m.get("retain").map(Value::to_js_string).unwrap_or_default(),
            m.payload().map(Value::to_json).unwrap_or_default(),
        ));
    }
    completed.sort();
    assert_eq!(
        completed,
        [
            "a/q0|0|false|\"zero\"",
            "a/q1|1|false|\"42\"",
            "a/q2|2|true|\"{\\\"2\\\":0,\\\"b\\\":1}\""
        ]
    );
    // The retained message is delivered to a new subscriber, and cleared by an empty payload.
    let mut late = Observer::subscribe(broker.port, "a/q2").await;
    assert_eq!(late.next().await, s("a/q2", "{\"2\":0,\"b\":1}", 2, true));
    f.send(
        "out",
        msg(json!({"topic": "a/q2", "payload": "", "qos": 1, "retain": true})),
    )
    .await;
    assert_eq!(late.next().await.payload.len(), 0);
    let mut later = Observer::subscribe(broker.port, "a/q2").await;
    assert!(later
        .next_within(Duration::from_millis(300))
        .await
        .is_none());
    // An invalid topic publishes nothing and warns.
    f.send("out", msg(json!({"topic": "a/+", "payload": 1})))
        .await;
    f.observer
        .wait_until(WAIT, "invalid topic warning", |o| {
            o.logs()
                .iter()
                .any(|l| l.node == "out" && l.text == "invalid topic")
        })
        .await;
    f.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trip_keeps_qos_and_retained_flag_like_node_red() {
    let broker = Mosquitto::start();
    let p = Publisher::connect(broker.port).await;
    p.publish("in/ret", "kept", 1, true).await;
    let flows = json!([
        tab(),
        broker_node("b1", broker.port, json!({})),
        mqtt_in(
            "in",
            "in/#",
            json!({"datatype": "utf8", "wires": [["out"]]})
        ),
        mqtt_out("out", json!({"topic": "out/x"})),
    ]);
    let mut obs = Observer::subscribe(broker.port, "out/#").await;
    let mut f = TestFlow::start(&flowd_nodes::registry(), flows)
        .await
        .expect("valid flows");
    // The retained message arrives retained and is republished retained.
    let first = obs.next().await;
    assert_eq!(
        (first.payload.as_ref(), first.qos, first.retain),
        (&b"kept"[..], 1, true)
    );
    tokio::time::sleep(SETTLE).await;
    p.publish("in/live", "live", 2, false).await;
    let live = obs.next().await;
    assert_eq!(
        (live.payload.as_ref(), live.qos, live.retain),
        (&b"live"[..], 2, false)
    );
    let m = f.next_from("in").await;
    assert_eq!(m.msg.get("retain"), Some(&Value::Bool(true)));
    assert_eq!(m.msg.get("_topic"), Some(&Value::str("in/ret")));
    f.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_follows_the_connection_and_subscriptions_come_back() {
    let mut broker = Mosquitto::start();
    let flows = json!([
        tab(),
        broker_node("b1", broker.port, json!({})),
        mqtt_in("in", "s/+", json!({"datatype": "utf8"})),
        mqtt_out("out", json!({})),
        {"id": "st", "type": "status", "z": "t1", "scope": null, "wires": [[]]},
    ]);
    let mut f = TestFlow::start(&flowd_nodes::registry(), flows)
        .await
        .expect("valid flows");
    wait_connected(&f, "in").await;
    wait_connected(&f, "out").await;
    let texts: Vec<String> = f
        .observer
        .statuses()
        .iter()
        .filter(|(n, _)| n == "in")
        .filter_map(|(_, s)| s.text.clone())
        .collect();
    // Node-RED's "disconnected" at creation never reaches status nodes.
    assert_ne!(
        texts.first().map(String::as_str),
        Some("node-red:common.status.disconnected"),
        "{texts:?}"
    );
    // Only Node-RED's i18n keys, ending connected.
    for t in &texts {
        assert!(
            [
                "node-red:common.status.disconnected",
                "node-red:common.status.connecting",
                "node-red:common.status.connected"
            ]
            .contains(&t.as_str()),
            "{texts:?}"
        );
    }
    assert_eq!(
        texts.last().map(String::as_str),
        Some("node-red:common.status.connected")
    );
    // Status nodes receive the same status with fill and shape.
    let st = f.next_from("st").await;
    assert!(st.msg.get("status").is_some());
    let connected = f
        .observer
        .statuses()
        .into_iter()
        .find(|(n, s)| n == "in" && s.text.as_deref() == Some("node-red:common.status.connected"))
        .expect("connected status");
    assert_eq!(
        (connected.1.fill.as_deref(), connected.1.shape.as_deref()),
        (Some("green"), Some("dot"))
    );

    broker.kill();
    f.observer
        .wait_until(WAIT, "disconnected status", |o| {
            o.statuses()
                .iter()
                .rev()
                .find(|(n, _)| n == "in")
                .is_some_and(|(_, s)| {
                    s.text.as_deref() == Some("node-red:common.status.disconnected")
                        && s.fill.as_deref() == Some("red")
                        && s.shape.as_deref() == Some("ring")
                })
        })
        .await;
    broker.restart();
    wait_connected(&f, "in").await;
    tokio::time::sleep(SETTLE).await;
    // Re-subscribed after reconnecting (the broker forgot the clean session).
    let p = Publisher::connect(broker.port).await;
    p.publish("s/back", "again", 1, false).await;
    let m = f.next_from("in").await;
    assert_eq!(m.msg.payload(), Some(&Value::str("again")));
    f.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_connection_and_node_red_topic_recheck() {
    let broker = Mosquitto::start();
    let flows = json!([
        tab(),
        broker_node("b1", broker.port, json!({})),
        mqtt_in("plus", "w/+/temp", json!({"datatype": "utf8"})),
        mqtt_in("hash", "w/s/#", json!({"datatype": "utf8"})),
        mqtt_in("shared", "$share/g/w/shared", json!({"datatype": "utf8"})),
    ]);
    let mut f = TestFlow::start(&flowd_nodes::registry(), flows)
        .await
        .expect("valid flows");
    wait_connected(&f, "plus").await;
    tokio::time::sleep(SETTLE).await;
    let p = Publisher::connect(broker.port).await;
    p.publish("w//temp", "empty level", 1, false).await;
    p.publish("w/a/temp", "a", 1, false).await;
    p.publish("w/s", "parent", 1, false).await;
    p.publish("w/s/x/y", "deep", 1, false).await;
    p.publish("w/shared", "sh", 1, false).await;
    assert_eq!(
        f.next_from("plus").await.msg.payload(),
        Some(&Value::str("a"))
    );
    assert_eq!(
        f.next_from("hash").await.msg.payload(),
        Some(&Value::str("parent"))
    );
    assert_eq!(
        f.next_from("hash").await.msg.payload(),
        Some(&Value::str("deep"))
    );
    assert_eq!(
        f.next_from("shared").await.msg.payload(),
        Some(&Value::str("sh"))
    );
    f.expect_nothing_from("plus", Duration::from_millis(200))
        .await;
    f.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamic_subscriptions_follow_msg_action() {
    let broker = Mosquitto::start();
    let flows = json!([
        tab(),
        broker_node("b1", broker.port, json!({})),
        mqtt_in("dyn", "", json!({"inputs": 1, "datatype": "utf8"})),
        {"id": "done", "type": "complete", "z": "t1", "scope": ["dyn"], "uncaught": false, "wires": [[]]},
        {"id": "c1", "type": "catch", "z": "t1", "scope": null, "uncaught": false, "wires": [[]]},
    ]);
    let mut f = TestFlow::start(&flowd_nodes::registry(), flows)
        .await
        .expect("valid flows");
    wait_connected(&f, "dyn").await;
    f.send(
        "dyn",
        msg(json!({"action": "subscribe", "topic": [{"topic": "d/a", "qos": 1}, "d/b"]})),
    )
    .await;
    let done = f.next_from("done").await;
    assert_eq!(
        done.msg
            .get("subscriptions")
            .and_then(Value::as_array)
            .map(<[Value]>::len),
        Some(2)
    );
    tokio::time::sleep(SETTLE).await;
    let p = Publisher::connect(broker.port).await;
    p.publish("d/a", "A", 2, false).await;
    let a = f.next_from("dyn").await;
    assert_eq!(
        (a.msg.payload(), a.msg.get("qos")),
        (Some(&Value::str("A")), Some(&Value::Number(1.0)))
    );
    f.send("dyn", msg(json!({"action": "unsubscribe", "topic": "d/a"})))
        .await;
    f.next_from("done").await;
    f.send("dyn", msg(json!({"action": "getSubscriptions"})))
        .await;
    let subs = f.next_from("dyn").await;
    assert_eq!(subs.msg.topic(), Some(&Value::str("subscriptions")));
    // The request itself, its action kept (as Node-RED sends it).
    assert_eq!(
        subs.msg.get("action"),
        Some(&Value::str("getSubscriptions"))
    );
    assert_eq!(
        subs.msg
            .payload()
            .and_then(Value::as_array)
            .map(<[Value]>::len),
        Some(1)
    );
    f.next_from("done").await;
    tokio::time::sleep(SETTLE).await;
    p.publish("d/a", "gone", 1, false).await;
    p.publish("d/b", "B", 1, false).await;
    assert_eq!(
        f.next_from("dyn").await.msg.payload(),
        Some(&Value::str("B"))
    );
    f.send("dyn", msg(json!({"action": "bogus"}))).await;
    let caught = f.next_from("c1").await;
    assert_eq!(
        caught
            .msg
            .get_path(&flowd_engine::value::path::Path::parse("error.message").expect("path")),
        Some(&Value::str("Error: Invalid action specified"))
    );
    f.stop().await;
}

#[tokio::test]
async fn invalid_configuration_is_reported_before_starting() {
    let flows = json!([
        tab(),
        broker_node("b1", 1883, json!({"port": "70000"})),
        broker_node("b2", 1883, json!({})),
        mqtt_in("i1", "a/#/b", json!({"broker": "b2"})),
        mqtt_in(
            "i2",
            "a",
            json!({"broker": "b2", "qos": "5", "datatype": "xml"})
        ),
        mqtt_in("i3", "a", json!({"broker": ""})),
        mqtt_in("i4", "", json!({"broker": "b2"})),
        mqtt_out("o1", json!({"broker": "b2", "qos": "3", "topic": "a/#"})),
        mqtt_out("o2", json!({"broker": "missing"})),
    ]);
    let errs = match TestFlow::start(&flowd_nodes::registry(), flows).await {
        Ok(_) => panic!("flows should not start"),
        Err(e) => e.0,
    };
    let has = |node: &str, field: &str| {
        errs.iter()
            .any(|e| e.node.as_deref() == Some(node) && e.field.as_deref() == Some(field))
    };
    for (node, field) in [
        ("b1", "port"),
        ("i1", "topic"),
        ("i2", "qos"),
        ("i2", "datatype"),
        ("i3", "broker"),
        ("i4", "topic"),
        ("o1", "qos"),
        ("o1", "topic"),
        ("o2", "broker"),
    ] {
        assert!(has(node, field), "{node}.{field} missing in {errs:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn msg_action_disconnects_and_reconnects_the_shared_connection() {
    let broker = Mosquitto::start();
    let flows = json!([
        tab(),
        broker_node("b1", broker.port, json!({})),
        mqtt_out("out", json!({})),
        mqtt_in("in", "act/#", json!({"datatype": "utf8"})),
        {"id": "c1", "type": "catch", "z": "t1", "scope": null, "uncaught": false, "wires": [[]]},
    ]);
    let mut f = TestFlow::start(&flowd_nodes::registry(), flows)
        .await
        .expect("valid flows");
    wait_connected(&f, "in").await;
    f.send("out", msg(json!({"action": "disconnect"}))).await;
    f.observer
        .wait_until(WAIT, "disconnected status of the other user", |o| {
            o.statuses()
                .iter()
                .rev()
                .find(|(n, _)| n == "in")
                .is_some_and(|(_, s)| {
                    s.text.as_deref() == Some("node-red:common.status.disconnected")
                })
        })
        .await;
    // Published while disconnected: kept, sent after the reconnect.
    f.send(
        "out",
        msg(json!({"topic": "act/kept", "payload": "k", "qos": 1})),
    )
    .await;
    f.send("out", msg(json!({"action": "connect"}))).await;
    wait_connected(&f, "in").await;
    assert_eq!(
        f.next_from("in").await.msg.payload(),
        Some(&Value::str("k"))
    );
    f.send("out", msg(json!({"action": "explode"}))).await;
    f.next_from("c1").await;
    f.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_with_msg_broker_moves_the_connection() {
    let first = Mosquitto::start();
    let second = Mosquitto::start();
    let flows = json!([
        tab(),
        broker_node("b1", first.port, json!({})),
        mqtt_out("out", json!({"topic": "mv/x", "qos": "1"})),
        {"id": "c1", "type": "catch", "z": "t1", "scope": null, "uncaught": false, "wires": [[]]},
    ]);
    let mut on_first = Observer::subscribe(first.port, "mv/#").await;
    let mut on_second = Observer::subscribe(second.port, "mv/#").await;
    let mut f = TestFlow::start(&flowd_nodes::registry(), flows)
        .await
        .expect("valid flows");
    wait_connected(&f, "out").await;
    f.send("out", msg(json!({"payload": "one"}))).await;
    assert_eq!(on_first.next().await.payload.as_ref(), b"one");
    // Connected: msg.broker needs force.
    f.send(
        "out",
        msg(json!({"action": "connect", "broker": {"port": second.port}})),
    )
    .await;
    let caught = f.next_from("c1").await;
    assert_eq!(
        caught
            .msg
            .get_path(&flowd_engine::value::path::Path::parse("error.message").expect("path")),
        Some(&Value::str("already connected"))
    );
    f.send(
        "out",
        msg(json!({"action": "connect", "broker": {"broker": "127.0.0.1", "port": second.port, "force": true}})),
    )
    .await;
    f.send("out", msg(json!({"payload": "two"}))).await;
    assert_eq!(on_second.next().await.payload.as_ref(), b"two");
    assert!(on_first
        .next_within(Duration::from_millis(200))
        .await
        .is_none());
    f.stop().await;
}
