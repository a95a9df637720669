//! `GET /flows`, `POST /flows` (deploy) and `GET /flows/state`.

use crate::error::ApiError;
use crate::{revision, EditorState, API_VERSION_HEADER, DEPLOYMENT_TYPE_HEADER};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use flowd_engine::flows::{from_json, parse_text};
use flowd_engine::{prepare, DeployError, DeployType, ValidationErrors};
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::Arc;

/// A password sent back unchanged by the editor.
const UNCHANGED_PASSWORD: &str = "__PWRD__";

#[derive(Clone, Copy, PartialEq, Eq)]
enum ApiVersion {
    V1,
    V2,
}

fn api_version(headers: &HeaderMap) -> Result<ApiVersion, ApiError> {
    match headers
        .get(API_VERSION_HEADER)
        .map(|v| v.to_str().unwrap_or("?"))
    {
        None | Some("v1") => Ok(ApiVersion::V1),
        Some("v2") => Ok(ApiVersion::V2),
        Some(_) => Err(ApiError::bad_request(
            "invalid_api_version",
            "Invalid API Version requested",
        )),
    }
}

/// `GET /flows`: the stored array (v1) or `{flows, rev}` (v2). Never credentials.
pub async fn get_flows(
    State(st): State<Arc<EditorState>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let version = api_version(&headers)?;
    let d = st.deployed.lock().await;
    Ok(match version {
        ApiVersion::V1 => Json(Value::Array(d.flows.clone())).into_response(),
        ApiVersion::V2 => Json(json!({"flows": d.flows, "rev": d.rev})).into_response(),
    })
}

/// `GET /flows/state`.
pub async fn get_state() -> Json<Value> {
    Json(json!({"state": "start"}))
}

/// New credentials merged over the stored ones: `__PWRD__` keeps a value,
/// nodes no longer present lose theirs.
fn merge_credentials(
    old: &HashMap<String, Map<String, Value>>,
    new: HashMap<String, Map<String, Value>>,
    ids: &[String],
) -> HashMap<String, Map<String, Value>> {
    let mut merged: HashMap<String, Map<String, Value>> = ids
        .iter()
        .filter_map(|id| old.get(id).map(|c| (id.clone(), c.clone())))
        .collect();
    for (id, fields) in new {
        let entry = merged.entry(id).or_default();
        for (k, v) in fields {
            if v.as_str() != Some(UNCHANGED_PASSWORD) {
                entry.insert(k, v);
            }
        }
    }
    merged
}

/// `POST /flows`: validates the whole set (400 with every error, nothing
/// changed), saves it, then deploys it live with the requested type.
pub async fn post_flows(
    State(st): State<Arc<EditorState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let version = api_version(&headers)?;
    let kind = match headers
        .get(DEPLOYMENT_TYPE_HEADER)
        .map(|v| v.to_str().unwrap_or("?"))
    {
        None => "full",
        Some(k) => k,
    };
    let mut deployed = st.deployed.lock().await;
    let (doc, deploy_type) = if kind == "reload" {
        let storage = st.storage.as_ref().ok_or_else(|| {
            ApiError::bad_request("no_storage", "this runtime has no flows file to reload")
        })?;
        let text = storage
            .load()
            .map_err(|e| ApiError::internal("cannot read the flows file", e))?
            .unwrap_or_else(|| "[]".into());
        let doc =
            parse_text(&text).map_err(|e| ApiError::invalid_flows(ValidationErrors(vec![e])))?;
        (doc, DeployType::Full)
    } else {
        let deploy_type = DeployType::parse(kind).ok_or_else(|| {
            ApiError::bad_request(
                "invalid_deployment_type",
                format!("unknown deployment type \"{kind}\""),
            )
        })?;
        let doc: Value = serde_json::from_slice(&body).map_err(|e| {
            ApiError::bad_request("invalid_json", format!("the request body is not JSON: {e}"))
        })?;
        let doc = match (version, doc) {
            (ApiVersion::V1, Value::Array(a)) => Value::Array(a),
            (ApiVersion::V1, _) => {
                return Err(ApiError::bad_request(
                    "invalid_request",
                    "expected an array of nodes",
                ))
            }
            (ApiVersion::V2, Value::Object(o)) => {
                if let Some(rev) = o.get("rev").and_then(Value::as_str) {
                    if rev != deployed.rev {
                        return Err(ApiError::new(
                            StatusCode::CONFLICT,
                            "version_mismatch",
                            "Error",
                        ));
                    }
                }
                if !o.get("flows").is_some_and(Value::is_array) {
                    return Err(ApiError::bad_request(
                        "invalid_request",
                        "expected {\"flows\": [...]}",
                    ));
                }
                Value::Object(o)
            }
            (ApiVersion::V2, _) => {
                return Err(ApiError::bad_request(
                    "invalid_request",
                    "expected {\"flows\": [...]}",
                ))
            }
        };
        (doc, deploy_type)
    };

    let (mut set, structural) = from_json(doc);
    let ids: Vec<String> = set.nodes.iter().map(|n| n.id.clone()).collect();
    set.credentials = merge_credentials(
        &deployed.credentials,
        std::mem::take(&mut set.credentials),
        &ids,
    );
    // Validate before anything is written or stopped.
    prepare(&st.registry, set.clone(), structural.clone()).map_err(ApiError::invalid_flows)?;
    let flows = set.to_json();
    if let Some(storage) = &st.storage {
        storage
            .save(&flows)
            .map_err(|e| ApiError::internal("cannot save the flows file", e))?;
    }
    let credentials = set.credentials.clone();
    if let Some(store) = &st.credentials {
        store
            .save(&credentials)
            .map_err(|e| ApiError::internal("cannot save the credentials file", e))?;
    }
    match st
        .runtime
        .deploy(&st.registry, set, structural, deploy_type)
        .await
    {
        Ok(_) => {}
        Err(DeployError::Invalid(e)) => return Err(ApiError::invalid_flows(e)),
        Err(e @ DeployError::Stopped) => return Err(ApiError::internal("deploy failed", e)),
    }
    deployed.rev = revision(&flows);
    deployed.flows = flows;
    deployed.credentials = credentials;
    st.comms.publish(
        "notification/runtime-deploy",
        json!({"revision": deployed.rev}),
        true,
    );
    tracing::info!(deploy = kind, rev = %deployed.rev, "Deployed flows.");
    Ok(match version {
        ApiVersion::V1 => StatusCode::NO_CONTENT.into_response(),
        ApiVersion::V2 => Json(json!({"rev": deployed.rev})).into_response(),
    })
}

/// `GET /credentials/:type/:id`: a node's credentials without secrets:
/// password fields become `has_<field>: true|false`.
pub async fn get_credentials(
    State(st): State<Arc<EditorState>>,
    axum::extract::Path((type_name, id)): axum::extract::Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let node_type = st
        .registry
        .get(&type_name)
        .ok_or_else(|| ApiError::not_found(format!("unknown node type \"{type_name}\"")))?;
    let deployed = st.deployed.lock().await;
    let stored = deployed.credentials.get(&id);
    let mut out = Map::new();
    for field in node_type.descriptor().credentials {
        let value = stored.and_then(|c| c.get(&field.name));
        if field.kind == flowd_engine::registry::PropertyKind::Password {
            let set = value.and_then(Value::as_str).is_some_and(|s| !s.is_empty());
            out.insert(format!("has_{}", field.name), Value::Bool(set));
        } else if let Some(v) = value {
            out.insert(field.name.clone(), v.clone());
        }
    }
    Ok(Json(Value::Object(out)))
}
