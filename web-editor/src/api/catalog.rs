//! `GET /nodes` (Node-RED's node-set list), `GET /flowd/nodes` (editor
//! descriptors of every node type) and `GET /settings`.

use crate::EditorState;
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{Html, IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The Node-RED version whose admin API flowd follows.
const NODE_RED_COMPAT_VERSION: &str = "4.1.8";

/// `GET /nodes`: with `Accept: application/json` the node sets as Node-RED
/// lists them; otherwise a short HTML list of the types.
pub async fn nodes(State(st): State<Arc<EditorState>>, headers: HeaderMap) -> Response {
    let mut sets: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for t in st.registry.iter() {
        let d = t.descriptor();
        sets.entry(d.set.clone())
            .or_default()
            .push(d.type_name.clone());
    }
    let wants_json = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/json"));
    if wants_json {
        let list: Vec<Value> = sets
            .into_iter()
            .map(|(set, types)| {
                let (module, name) = set.split_once('/').unwrap_or(("node-red", set.as_str()));
                json!({"id": set, "name": name, "types": types, "enabled": true, "local": false,
                       "user": false, "module": module, "version": NODE_RED_COMPAT_VERSION})
            })
            .collect();
        Json(Value::Array(list)).into_response()
    } else {
        let items: String = sets
            .values()
            .flatten()
            .map(|t| format!("<li>{}</li>", t.replace('<', "&lt;")))
            .collect();
        Html(format!("<!-- flowd node types --><ul>{items}</ul>")).into_response()
    }
}

/// `GET /flowd/nodes`: every node type's descriptor (palette, edit form, help).
pub async fn descriptors(State(st): State<Arc<EditorState>>) -> Json<Value> {
    let list: Vec<Value> = st
        .registry
        .iter()
        .map(|t| serde_json::to_value(t.descriptor()).unwrap_or_default())
        .collect();
    Json(Value::Array(list))
}

/// `GET /settings`: the runtime settings the editor reads at start.
pub async fn settings(State(st): State<Arc<EditorState>>) -> Json<Value> {
    // Node-RED 4.1's answers: no contextStorage, and localfilesystem as the
    // default store.
    let context = if st.context_on_disk {
        json!({"default": "default", "stores": ["default"]})
    } else {
        json!({"default": "memory", "stores": ["memory"]})
    };
    Json(json!({
        "httpNodeRoot": "/",
        "version": env!("CARGO_PKG_VERSION"),
        "context": context,
        "flowFilePretty": true,
        "flowEncryptionType": "system",
        "editorTheme": {"projects": {"enabled": false}},
        "flowd": {"compatibleWith": NODE_RED_COMPAT_VERSION, "broker": embedded_broker()}
    }))
}

/// Env var holding the embedded broker's port (set by the `flowd` binary).
const MQTT_PORT_ENV: &str = "FLOWD_MQTT_PORT";

/// Where flows reach the embedded broker: new `mqtt-broker` config nodes in
/// the editor point there (`port` as the env reference, so flows survive a
/// port change). `null` when this process exported no broker port.
fn embedded_broker() -> Value {
    embedded_broker_at(std::env::var(MQTT_PORT_ENV).ok().as_deref())
}

fn embedded_broker_at(port: Option<&str>) -> Value {
    match port.and_then(|p| p.parse::<u16>().ok()) {
        Some(port) => {
            json!({"host": "127.0.0.1", "port": port, "portRef": format!("${{{MQTT_PORT_ENV}}}")})
        }
        None => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_broker_is_named_by_its_port_env_var() {
        assert_eq!(
            embedded_broker_at(Some("18831")),
            json!({"host": "127.0.0.1", "port": 18831, "portRef": "${FLOWD_MQTT_PORT}"})
        );
        assert_eq!(embedded_broker_at(None), Value::Null);
        assert_eq!(embedded_broker_at(Some("not a port")), Value::Null);
    }
}
