//! Username and password from the mqtt-broker node's credentials, with
//! `${ENV}` substitution, against Mosquitto with a password file.

mod mqtt_support;

use flowd_engine::testing::TestFlow;
use mqtt_support::{broker_node, wait_connected, Mosquitto};
use serde_json::json;
use std::process::Command;
use std::time::Duration;

fn password_file(name: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("flowd-mqtt-pw-{}-{name}", std::process::id()));
    let ok = Command::new("mosquitto_passwd")
        .args(["-c", "-b"])
        .arg(&path)
        .args(["flowd", "s3cret"])
        .status()
        .expect("run mosquitto_passwd")
        .success();
    assert!(ok, "mosquitto_passwd failed");
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_with_env_substitution_log_in() {
    let pw = password_file("ok");
    let broker = Mosquitto::start_with(&format!(
        "user root\nallow_anonymous false\npassword_file {}\n",
        pw.display()
    ));
    std::env::set_var("FLOWD_TEST_MQTT_PASSWORD", "s3cret");
    let mut good = broker_node("b1", broker.port, json!({}));
    good["credentials"] = json!({"user": "flowd", "password": "${FLOWD_TEST_MQTT_PASSWORD}"});
    let mut bad = broker_node("b2", broker.port, json!({}));
    bad["credentials"] = json!({"user": "flowd", "password": "wrong"});
    let flows = json!([
        {"id": "t1", "type": "tab", "label": "creds"},
        good,
        bad,
        {"id": "ok", "type": "mqtt out", "z": "t1", "topic": "x", "broker": "b1", "wires": []},
        {"id": "refused", "type": "mqtt out", "z": "t1", "topic": "x", "broker": "b2", "wires": []},
    ]);
    let f = TestFlow::start(&flowd_nodes::registry(), flows)
        .await
        .expect("valid flows");
    wait_connected(&f, "ok").await;
    // The wrong password keeps being refused (the node keeps retrying).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let refused_connected = f.observer.statuses().iter().any(|(n, s)| {
        n == "refused" && s.text.as_deref() == Some("node-red:common.status.connected")
    });
    assert!(!refused_connected);
    f.stop().await;
    let _ = std::fs::remove_file(&pw);
}
