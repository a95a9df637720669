//! Embedding flowd's engine in another Rust program: validate a Node-RED
//! flow, run it, feed it messages and read what a node sends, without MQTT
//! or HTTP.
//!
//! ```sh
//! cargo run --example embed_engine
//! ```

use flowd_engine::observer::{DebugEvent, RuntimeObserver};
use flowd_engine::{prepare_json, Msg, Runtime, RuntimeOptions, Value};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Receives what debug nodes show.
struct Alerts(mpsc::UnboundedSender<String>);

impl RuntimeObserver for Alerts {
    fn debug(&self, e: &DebugEvent<'_>) {
        if let Some(v) = e.value {
            let _ = self.0.send(v.to_js_string());
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // json -> filter (rbe, per topic) -> template -> debug, as in Node-RED.
    let flows = json!([
        {"id": "t1", "type": "tab", "label": "embedded"},
        {"id": "parse", "type": "json", "z": "t1", "x": 1, "y": 1, "wires": [["filter"]]},
        {"id": "filter", "type": "rbe", "z": "t1", "func": "rbe", "property": "payload.temperature",
         "x": 1, "y": 1, "wires": [["text"]]},
        {"id": "text", "type": "template", "z": "t1", "template": "{{{topic}}} is now {{payload.temperature}} °C",
         "x": 1, "y": 1, "wires": [["out"]]},
        {"id": "out", "type": "debug", "z": "t1", "x": 1, "y": 1, "wires": []}
    ]);
    let prepared = prepare_json(&flowd_nodes::registry(), flows).map_err(|e| e.to_string())?;
    let (tx, mut alerts) = mpsc::unbounded_channel();
    let runtime = Runtime::start(
        prepared,
        RuntimeOptions {
            observer: Arc::new(Alerts(tx)),
            tap: None,
        },
    );
    for t in [21.5, 21.5, 22.0, 22.0, 21.5] {
        let mut msg = Msg::with_payload(Value::string(format!("{{\"temperature\":{t}}}")));
        msg.insert("topic", Value::str("sensors/kitchen"));
        runtime.deliver("parse", msg).await?;
    }
    while let Ok(Some(alert)) =
        tokio::time::timeout(Duration::from_millis(200), alerts.recv()).await
    {
        println!("{alert}");
    }
    runtime.stop(Duration::from_secs(5)).await;
    Ok(())
}
