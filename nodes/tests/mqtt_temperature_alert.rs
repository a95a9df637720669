//! flows/temperature-alert.json against a real Mosquitto (its broker port
//! rewritten): exactly one alert per temperature change, per sensor.

mod mqtt_support;

use flowd_engine::testing::TestFlow;
use mqtt_support::{wait_connected, Mosquitto, Observer, Publisher};
use serde_json::Value as Json;
use std::path::PathBuf;
use std::time::Duration;

/// Time for the subscription to reach the broker after the connected status.
const SETTLE: Duration = Duration::from_millis(300);

fn flows(port: u16) -> Json {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../flows/temperature-alert.json");
    let text = std::fs::read_to_string(&path).expect("flows/temperature-alert.json");
    let mut flows: Json = serde_json::from_str(&text).expect("valid JSON");
    for n in flows.as_array_mut().expect("an array") {
        if n["type"] == "mqtt-broker" {
            assert_eq!(n["port"], "1883");
            n["port"] = Json::String(port.to_string());
        }
    }
    flows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_alert_per_change_per_sensor() {
    let broker = Mosquitto::start();
    let mut alerts = Observer::subscribe(broker.port, "alerts/#").await;
    let f = TestFlow::start(&flowd_nodes::registry(), flows(broker.port))
        .await
        .expect("the flows file is valid");
    let in_id = "f1a7e0a1e0000010";
    wait_connected(&f, in_id).await;
    tokio::time::sleep(SETTLE).await;
    let p = Publisher::connect(broker.port).await;
    for (sensor, reading) in [
        ("kitchen", r#"{"temperature":21.5,"humidity":40}"#),
        ("kitchen", r#"{"temperature":21.5,"humidity":41}"#),
        ("garage", r#"{"temperature":10,"humidity":70}"#),
        ("kitchen", r#"{"temperature":22,"humidity":41}"#),
        ("garage", r#"{"temperature":10,"humidity":71}"#),
        ("kitchen", "not json"),
        ("kitchen", r#"{"humidity":41,"temperature":22}"#),
        ("garage", r#"{"temperature":9.5}"#),
    ] {
        p.publish(&format!("sensors/{sensor}/reading"), reading, 1, false)
            .await;
    }
    let got: Vec<(String, String, u8, bool)> = alerts
        .take(4)
        .await
        .into_iter()
        .map(|s| {
            (
                s.topic,
                String::from_utf8_lossy(&s.payload).into_owned(),
                s.qos,
                s.retain,
            )
        })
        .collect();
    let alert = |t: &str| ("alerts/temperature".to_string(), t.to_string(), 1u8, false);
    assert_eq!(
        got,
        vec![
            alert("Temperature on sensors/kitchen/reading changed to 21.5 °C"),
            alert("Temperature on sensors/garage/reading changed to 10 °C"),
            alert("Temperature on sensors/kitchen/reading changed to 22 °C"),
            alert("Temperature on sensors/garage/reading changed to 9.5 °C"),
        ]
    );
    let extra = alerts.next_within(Duration::from_millis(400)).await;
    assert!(extra.is_none(), "unexpected alert {extra:?}");
    f.stop().await;
}
