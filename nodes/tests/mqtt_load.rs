//! A bounded burst through mqtt in -> mqtt out: every message arrives, in
//! order, at QoS 0 and QoS 1 (received messages are acknowledged as the flow
//! takes them; nothing is dropped under backpressure).

mod mqtt_support;

use flowd_engine::testing::TestFlow;
use mqtt_support::{broker_node, wait_connected, Mosquitto, Observer, Publisher};
use serde_json::json;
use std::time::Duration;

/// Messages per QoS level.
const COUNT: usize = 2000;
/// Time for the subscription to reach the broker after the connected status.
const SETTLE: Duration = Duration::from_millis(300);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_passes_through_in_order() {
    let broker = Mosquitto::start();
    let flows = json!([
        {"id": "t1", "type": "tab", "label": "load"},
        broker_node("b1", broker.port, json!({})),
        {"id": "in", "type": "mqtt in", "z": "t1", "topic": "load/+", "qos": "1",
         "datatype": "utf8", "broker": "b1", "wires": [["out"]]},
        // Republished with the QoS each message arrived with.
        {"id": "out", "type": "mqtt out", "z": "t1", "topic": "done/x", "qos": "", "retain": "",
         "broker": "b1", "wires": []},
    ]);
    let mut obs = Observer::subscribe(broker.port, "done/#").await;
    let mut f = TestFlow::start(&flowd_nodes::registry(), flows)
        .await
        .expect("valid flows");
    wait_connected(&f, "in").await;
    tokio::time::sleep(SETTLE).await;
    let p = Publisher::connect(broker.port).await;
    for qos in [0u8, 1] {
        for i in 0..COUNT {
            p.publish(&format!("load/q{qos}"), format!("{qos}-{i}"), qos, false)
                .await;
        }
        let got: Vec<(String, u8)> = obs
            .take(COUNT)
            .await
            .into_iter()
            .map(|s| (String::from_utf8_lossy(&s.payload).into_owned(), s.qos))
            .collect();
        let want: Vec<(String, u8)> = (0..COUNT).map(|i| (format!("{qos}-{i}"), qos)).collect();
        let mut ins = Vec::new();
        for _ in 0..COUNT {
            let m = f.next_from("in").await;
            ins.push(
                m.msg
                    .payload()
                    .and_then(flowd_engine::Value::as_str)
                    .unwrap_or("")
                    .to_string(),
            );
        }
        let in_want: Vec<String> = (0..COUNT).map(|i| format!("{qos}-{i}")).collect();
        let d = ins.iter().zip(&in_want).position(|(g, w)| g != w);
        assert!(
            d.is_none(),
            "mqtt in order broken at {d:?}: {:?}",
            d.map(|i| ins[i.saturating_sub(3)..(i + 40).min(ins.len())].join(" "))
        );
        let first_diff = got.iter().zip(&want).position(|(g, w)| g != w);
        assert!(
            got == want,
            "QoS {qos}: lost or reordered from {first_diff:?}: {:?}",
            first_diff.map(|i| got[i.saturating_sub(3)..(i + 60).min(got.len())]
                .iter()
                .map(|g| g.0.clone())
                .collect::<Vec<_>>()
                .join(" "))
        );
    }
    f.stop().await;
}
