//! Helpers for node tests.

use flowd_engine::testing::TestFlow;
use serde_json::{json, Value as Json};

/// Starts `nodes` on a tab "t1" ("Flow 1"); flow nodes get `z` and coordinates
/// unless they have them.
pub async fn start(nodes: Json) -> TestFlow {
    match try_start(nodes).await {
        Ok(f) => f,
        Err(e) => panic!("flow did not validate:\n{e}"),
    }
}

/// Like [`start`], returning validation errors.
pub async fn try_start(nodes: Json) -> Result<TestFlow, flowd_engine::ValidationErrors> {
    TestFlow::start(&crate::registry(), on_tab(nodes)).await
}

/// Puts `nodes` on tab "t1".
pub fn on_tab(nodes: Json) -> Json {
    let mut all = vec![json!({"id": "t1", "type": "tab", "label": "Flow 1"})];
    for mut n in nodes.as_array().cloned().unwrap_or_default() {
        if let Some(o) = n.as_object_mut() {
            let config = o
                .get("type")
                .and_then(Json::as_str)
                .is_some_and(|t| t == "mqtt-broker");
            if !config {
                o.entry("z").or_insert(json!("t1"));
                o.entry("x").or_insert(json!(100));
                o.entry("y").or_insert(json!(100));
                o.entry("wires").or_insert(json!([]));
            }
        }
        all.push(n);
    }
    Json::Array(all)
}

/// Starts a single node `id` of type `type_name` with `config` (its other properties).
pub async fn start_one(id: &str, type_name: &str, config: Json) -> TestFlow {
    let mut n = config;
    n["id"] = json!(id);
    n["type"] = json!(type_name);
    start(json!([n])).await
}
