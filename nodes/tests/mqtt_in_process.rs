//! mqtt nodes whose broker config names the embedded broker connect to it
//! in-process, with a network client's semantics. (Own test binary: the
//! embedded broker is declared process-wide.)

mod mqtt_support;

use flowd_broker::{Broker, BrokerConfig};
use flowd_engine::testing::TestFlow;
use flowd_nodes::network::mqtt_client::{
    clear_embedded_broker, open, set_embedded_broker, ClientOptions, LinkEvent, Protocol,
};
use mqtt_support::{wait_connected, Observer, Publisher};
use serde_json::Value as Json;
use std::path::PathBuf;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(10);
/// Time for the subscription to reach the broker after the connected status.
const SETTLE: Duration = Duration::from_millis(300);

fn unused_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn options(host: &str, port: u16) -> ClientOptions {
    ClientOptions {
        protocol: Protocol::V5,
        ..ClientOptions::new(host, port, "in-process")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flows_reach_the_embedded_broker_without_tcp() {
    let broker = Broker::start(BrokerConfig {
        mqtt: Some("127.0.0.1:0".parse().unwrap()),
        ..BrokerConfig::default()
    })
    .await
    .unwrap();
    let tcp_port = broker.local_addr().unwrap().port();

    // Declared under a port where nothing listens: only an in-process
    // connection can reach the broker there.
    let declared = unused_port();
    set_embedded_broker(
        format!("127.0.0.1:{declared}").parse().unwrap(),
        broker.in_process(),
    );
    for host in ["127.0.0.1", "localhost"] {
        let (_client, mut events) = open(&options(host, declared));
        let e = tokio::time::timeout(WAIT, events.poll())
            .await
            .expect("connects in time")
            .expect("in-process connection");
        assert!(matches!(e, LinkEvent::Connected { .. }), "{e:?}");
    }
    // Another address, even a loopback one, is not the embedded broker.
    let (_client, mut events) = open(&options("127.0.0.2", declared));
    assert!(tokio::time::timeout(WAIT, events.poll())
        .await
        .expect("fails in time")
        .is_err());

    // The seed pipeline on the embedded broker: readings from a TCP client,
    // alerts to a TCP client, the flow in-process in between.
    let mut alerts = Observer::subscribe(tcp_port, "alerts/#").await;
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../flows/temperature-alert.json");
    let mut flows: Json = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    for n in flows.as_array_mut().unwrap() {
        if n["type"] == "mqtt-broker" {
            n["port"] = Json::String(declared.to_string());
        }
    }
    let f = TestFlow::start(&flowd_nodes::registry(), flows)
        .await
        .expect("valid flows");
    wait_connected(&f, "f1a7e0a1e0000010").await;
    tokio::time::sleep(SETTLE).await;
    let p = Publisher::connect(tcp_port).await;
    for reading in [
        r#"{"temperature":20}"#,
        r#"{"temperature":20}"#,
        r#"{"temperature":21}"#,
    ] {
        p.publish("sensors/hall/reading", reading, 1, false).await;
    }
    let got: Vec<String> = alerts
        .take(2)
        .await
        .into_iter()
        .map(|s| String::from_utf8_lossy(&s.payload).into_owned())
        .collect();
    assert_eq!(
        got,
        [
            "Temperature on sensors/hall/reading changed to 20 °C",
            "Temperature on sensors/hall/reading changed to 21 °C"
        ]
    );
    assert!(alerts
        .next_within(Duration::from_millis(400))
        .await
        .is_none());
    f.stop().await;
    clear_embedded_broker();
    broker.shutdown().await;
}
