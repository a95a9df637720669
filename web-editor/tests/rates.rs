//! `flowd/rates` on the comms websocket: messages per output port, once per
//! interval, only while a client is connected.

use flowd_editor::comms::CommsHub;
use flowd_editor::{app, EditorState};
use flowd_engine::{prepare_json, Msg, Runtime, RuntimeOptions};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

const INTERVAL: Duration = Duration::from_millis(200);

#[tokio::test]
async fn rates_are_published_per_output_while_a_client_is_connected() {
    let registry = Arc::new(flowd_nodes::registry());
    let flows = json!([
        {"id":"t1","type":"tab","label":"Flow 1"},
        {"id":"i","type":"inject","z":"t1","props":[{"p":"payload","v":"1","vt":"num"}],"x":1,"y":1,"wires":[["c"]]},
        {"id":"c","type":"change","z":"t1","rules":[{"t":"set","p":"topic","pt":"msg","to":"x","tot":"str"}],"x":1,"y":1,"wires":[["d"]]},
        {"id":"d","type":"debug","z":"t1","active":false,"x":1,"y":1,"wires":[]}
    ]);
    let (set, _) = flowd_engine::flows::from_json(flows.clone());
    let runtime = Arc::new(Runtime::start(
        prepare_json(&registry, flows).expect("valid"),
        RuntimeOptions::default(),
    ));
    let hub = CommsHub::new();
    let state = EditorState::new(runtime.clone(), registry, None, &set, hub.clone())
        .with_rates_interval(INTERVAL);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app(Arc::new(state))).await;
    });
    assert_eq!(hub.client_count(), 0);

    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/comms"))
        .await
        .unwrap();
    ws.send(Message::text(r#"{"subscribe":"flowd/#"}"#))
        .await
        .unwrap();
    // Count every message the inject and change nodes send, over the frames.
    for _ in 0..5 {
        runtime.deliver("i", Msg::new()).await.unwrap();
    }
    let mut sent_i = 0;
    let mut sent_c = 0;
    let mut frames = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while (sent_i, sent_c) != (5, 5) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "rates reported {sent_i}/{sent_c} of 5 messages"
        );
        let m = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("a frame")
            .unwrap()
            .unwrap();
        let frame: Value = serde_json::from_str(m.to_text().unwrap()).unwrap();
        for ev in frame.as_array().unwrap() {
            if ev["topic"] != "flowd/rates" {
                continue;
            }
            frames += 1;
            let data = &ev["data"];
            let ms = data["interval_ms"].as_u64().unwrap();
            assert!((150..2000).contains(&ms), "interval {ms} ms");
            let nodes = data["nodes"].as_object().unwrap();
            assert!(
                !nodes.contains_key("d"),
                "nodes without outputs are left out"
            );
            sent_i += nodes["i"][0].as_u64().unwrap();
            sent_c += nodes["c"][0].as_u64().unwrap();
        }
    }
    assert!(frames >= 1);
    assert_eq!(hub.client_count(), 1);

    // The client leaves: the publisher stops.
    ws.close(None).await.unwrap();
    drop(ws);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while hub.client_count() != 0 || flowd_editor::rates::is_running(&hub) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the rates publisher still runs without clients"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
