//! `POST /inject/:id` and the debug node switches.

use crate::error::ApiError;
use crate::EditorState;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use flowd_engine::node::NodeControl;
use flowd_engine::runtime::RuntimeError;
use flowd_engine::value::json;
use flowd_engine::Msg;
use std::sync::Arc;

fn runtime_error(e: RuntimeError) -> ApiError {
    match e {
        RuntimeError::UnknownNode(_) => ApiError::not_found("Not Found"),
        RuntimeError::Stopped => ApiError::internal("the runtime has stopped", e),
    }
}

/// `POST /inject/:id`: triggers the node; a body with `__user_inject_props__`
/// overrides an inject node's props for this trigger.
pub async fn inject(
    State(st): State<Arc<EditorState>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let mut msg = Msg::new();
    if !body.is_empty() {
        let text = std::str::from_utf8(&body)
            .map_err(|_| ApiError::bad_request("invalid_json", "the body is not UTF-8"))?;
        let v =
            json::parse(text).map_err(|e| ApiError::bad_request("invalid_json", e.to_string()))?;
        if let Some(props) = v.as_object().and_then(|o| o.get("__user_inject_props__")) {
            msg.insert("__user_inject_props__", props.clone());
        }
    }
    st.runtime.deliver(&id, msg).await.map_err(runtime_error)?;
    Ok((StatusCode::OK, "OK").into_response())
}

fn parse_state(state: &str) -> Result<bool, ApiError> {
    match state {
        "enable" => Ok(true),
        "disable" => Ok(false),
        _ => Err(ApiError::not_found("Not Found")),
    }
}

/// `POST /debug/:id/enable|disable`.
pub async fn debug_one(
    State(st): State<Arc<EditorState>>,
    Path((id, state)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let on = parse_state(&state)?;
    st.runtime
        .control(&id, NodeControl::SetActive(on))
        .await
        .map_err(runtime_error)?;
    Ok(StatusCode::OK.into_response())
}

/// `POST /debug/enable|disable` with `{"nodes": [ids]}`.
pub async fn debug_many(
    State(st): State<Arc<EditorState>>,
    Path(state): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let on = parse_state(&state)?;
    let v: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request("invalid_json", e.to_string()))?;
    let ids = v
        .get("nodes")
        .and_then(|n| n.as_array())
        .ok_or_else(|| ApiError::bad_request("invalid_request", "expected {\"nodes\": [ids]}"))?;
    for id in ids.iter().filter_map(|i| i.as_str()) {
        // Unknown ids are skipped, as Node-RED does.
        let _ = st.runtime.control(id, NodeControl::SetActive(on)).await;
    }
    Ok(StatusCode::OK.into_response())
}
