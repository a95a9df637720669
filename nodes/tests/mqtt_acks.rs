//! Received QoS 1 publications are acknowledged only once the flow took
//! them: when flowd dies, a persistent session gets the rest again.

mod mqtt_support;

use flowd_engine::testing::TestFlow;
use flowd_nodes::network::mqtt_client::{ClientOptions, Protocol, SubOptions};
use flowd_nodes::network::mqtt_connection::{Connection, ConnectionSettings, LinkState};
use mqtt_support::{Mosquitto, PersistentObserver, Publisher, WAIT};
use std::sync::Arc;
use std::time::Duration;

const CLIENT_ID: &str = "flowd-acks";

fn settings(port: u16) -> ConnectionSettings {
    ConnectionSettings {
        client: ClientOptions {
            host: "127.0.0.1".into(),
            port,
            client_id: CLIENT_ID.into(),
            protocol: Protocol::V4,
            keepalive: 60,
            clean: false,
            session_expiry: None,
            user_props: Vec::new(),
            credentials: None,
            will: None,
            tls: None,
            websocket: None,
        },
        birth: None,
        close: None,
        auto_connect: true,
        auto_unsubscribe: false,
        queue_size: 10,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publications_not_taken_by_the_flow_come_back_after_a_crash() {
    let broker = Mosquitto::start();
    let port = broker.port;
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let conn = Arc::new(Connection::new(settings(port)));
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
            let options = SubOptions {
                qos: 1,
                nl: false,
                rap: false,
                rh: 0,
            };
            conn.subscribe("acks/#", options, tx);
            let mut state = conn.state();
            conn.register_user();
            tokio::time::timeout(WAIT, state.wait_for(|s| *s == LinkState::Connected))
                .await
                .expect("connected in time")
                .expect("state");
            tokio::time::sleep(Duration::from_millis(300)).await;
            let p = Publisher::connect(port).await;
            for i in 0..5 {
                p.publish("acks/n", i.to_string(), 1, false).await;
            }
            // The flow takes two messages; the rest wait (not taken).
            for want in ["0", "1"] {
                let d = tokio::time::timeout(WAIT, rx.recv())
                    .await
                    .expect("a delivery in time")
                    .expect("a delivery");
                assert_eq!(d.received.publication.payload.as_ref(), want.as_bytes());
                d.taken();
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
            // Crash: nothing is closed cleanly.
            std::mem::forget(rx);
            std::mem::forget(conn);
        });
        rt.shutdown_timeout(Duration::from_secs(1));
    })
    .join()
    .expect("flow thread");

    // The same persistent session gets exactly the publications the flow did not take.
    let mut obs = PersistentObserver::subscribe(port, CLIENT_ID, "acks/#").await;
    let mut got = Vec::new();
    while let Some(s) = obs.next_within(Duration::from_millis(500)).await {
        got.push(String::from_utf8_lossy(&s.payload).into_owned());
        if got.len() > 10 {
            break;
        }
    }
    assert_eq!(got, ["2", "3", "4"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_persistent_session_gets_what_was_published_while_flowd_was_stopped() {
    let broker = Mosquitto::start();
    let flows = serde_json::json!([
        {"id": "t1", "type": "tab", "label": "persist"},
        mqtt_support::broker_node("b1", broker.port, serde_json::json!({
            "clientid": "flowd-persistent", "cleansession": false, "autoUnsubscribe": false
        })),
        {"id": "in", "type": "mqtt in", "z": "t1", "topic": "p/#", "qos": "1",
         "datatype": "utf8", "broker": "b1", "wires": [[]]},
    ]);
    let f = TestFlow::start(&flowd_nodes::registry(), flows.clone())
        .await
        .expect("valid flows");
    mqtt_support::wait_connected(&f, "in").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    f.stop().await;
    let p = Publisher::connect(broker.port).await;
    for i in 0..5 {
        p.publish("p/n", i.to_string(), 1, false).await;
    }
    let mut f = TestFlow::start(&flowd_nodes::registry(), flows)
        .await
        .expect("valid flows");
    let mut got = Vec::new();
    for _ in 0..5 {
        let s = f.next_from("in").await;
        got.push(
            s.msg
                .payload()
                .and_then(flowd_engine::Value::as_str)
                .unwrap_or("")
                .to_string(),
        );
    }
    assert_eq!(got, ["0", "1", "2", "3", "4"]);
    f.stop().await;
}
