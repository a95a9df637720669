//! flowd's admin API (Node-RED compatible) and the browser editor.
//!
//! - [`app`]: the axum router over an [`EditorState`].
//! - `api::flows`: `GET/POST /flows` (v1 and v2, rev, deployment types), `/flows/state`.
//! - `api::runtime`: `POST /inject/:id`, `POST /debug/:id/enable|disable`, `/debug/enable|disable`.
//! - `api::catalog`: `GET /nodes` (Node-RED's node-set list), `GET /flowd/nodes`
//!   (every node type's editor descriptor), `GET /settings`.
//! - [`comms`]: the `/comms` websocket (debug, status, notifications), bounded per client.
//! - [`auth`]: admin users (bcrypt), `POST /auth/token`, bearer tokens.
//! - `origin`: refuses cross-origin writes; no CORS header is ever sent.
//! - [`storage`]: flows.json written atomically with a backup.
//! - [`credentials`]: flows_cred.json, encrypted as Node-RED encrypts it.
//! - [`error`]: `{code, message}` error answers.
//! - [`rates`]: `flowd/rates` on comms, messages per wire while a client is connected.
//! - [`ui`]: the editor's files (`ui/`), embedded in release builds.

mod api;
pub mod auth;
pub mod comms;
mod compression;
pub mod credentials;
mod debug_encoding;
pub mod error;
mod origin;
pub mod rates;
pub mod storage;
pub mod ui;

use axum::routing::{get, post};
use axum::Router;
use flowd_engine::flows::FlowSet;
use flowd_engine::{Registry, Runtime};
use serde_json::{Map, Value as Json};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Arc;
use storage::FlowStorage;

/// Header selecting the admin API version (`v1` default, `v2`).
pub const API_VERSION_HEADER: &str = "node-red-api-version";
/// Header selecting the deployment type (`full` default, `nodes`, `flows`, `reload`).
pub const DEPLOYMENT_TYPE_HEADER: &str = "node-red-deployment-type";

/// What has been deployed: the flows as stored, their revision and the credentials.
pub(crate) struct Deployed {
    pub(crate) flows: Vec<Json>,
    pub(crate) rev: String,
    pub(crate) credentials: HashMap<String, Map<String, Json>>,
}

/// Everything the admin API works on.
pub struct EditorState {
    pub(crate) runtime: Arc<Runtime>,
    pub(crate) registry: Arc<Registry>,
    pub(crate) storage: Option<FlowStorage>,
    pub(crate) comms: Arc<comms::CommsHub>,
    pub(crate) credentials: Option<credentials::CredentialStore>,
    pub(crate) auth: Option<Arc<auth::AdminAuth>>,
    /// Held for the whole of a deploy, so deploys apply one at a time.
    pub(crate) deployed: tokio::sync::Mutex<Deployed>,
    /// How often `flowd/rates` is published.
    pub(crate) rates_interval: std::time::Duration,
    /// Context is kept on disk (Node-RED's `localfilesystem` as the default store).
    pub(crate) context_on_disk: bool,
}

/// The revision of a flow array: SHA-256 (hex) of its compact JSON text.
pub fn revision(flows: &[Json]) -> String {
    let text = serde_json::to_string(flows).unwrap_or_default();
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl EditorState {
    /// State for a runtime started from `initial`; `storage` (if any)
    /// receives every deploy; `comms` should be the runtime's observer.
    pub fn new(
        runtime: Arc<Runtime>,
        registry: Arc<Registry>,
        storage: Option<FlowStorage>,
        initial: &FlowSet,
        comms: Arc<comms::CommsHub>,
    ) -> Self {
        let flows = initial.to_json();
        comms.publish(
            "notification/runtime-state",
            serde_json::json!({"state": "start"}),
            true,
        );
        comms.publish(
            "notification/runtime-deploy",
            serde_json::json!({"revision": revision(&flows)}),
            true,
        );
        EditorState {
            runtime,
            registry,
            storage,
            comms,
            credentials: None,
            auth: None,
            rates_interval: rates::RATES_INTERVAL,
            context_on_disk: false,
            deployed: tokio::sync::Mutex::new(Deployed {
                rev: revision(&flows),
                flows,
                credentials: initial.credentials.clone(),
            }),
        }
    }
}

impl EditorState {
    /// Requires a login (bearer token) for every admin request.
    pub fn with_auth(mut self, auth: auth::AdminAuth) -> Self {
        self.auth = Some(Arc::new(auth));
        self
    }

    /// Context is kept on disk: `GET /settings` names the store as Node-RED
    /// does for `contextStorage: {default: {module: "localfilesystem"}}`.
    pub fn with_context_on_disk(mut self) -> Self {
        self.context_on_disk = true;
        self
    }

    /// Publishes `flowd/rates` every `interval` (default [`rates::RATES_INTERVAL`]).
    pub fn with_rates_interval(mut self, interval: std::time::Duration) -> Self {
        self.rates_interval = interval;
        self
    }

    /// Saves credentials of every deploy to `store` (flows_cred.json).
    pub fn with_credentials(mut self, store: credentials::CredentialStore) -> Self {
        self.credentials = Some(store);
        self
    }
}

/// The admin API router, with the editor's files as fallback.
pub fn app(state: Arc<EditorState>) -> Router {
    Router::new()
        .route(
            "/flows",
            get(api::flows::get_flows).post(api::flows::post_flows),
        )
        .route("/flows/state", get(api::flows::get_state))
        .route("/inject/{id}", post(api::runtime::inject))
        .route("/debug/{id}/{state}", post(api::runtime::debug_one))
        .route("/debug/{state}", post(api::runtime::debug_many))
        .route("/nodes", get(api::catalog::nodes))
        .route("/flowd/nodes", get(api::catalog::descriptors))
        .route("/settings", get(api::catalog::settings))
        .route("/credentials/{type}/{id}", get(api::flows::get_credentials))
        .route("/comms", get(api::comms::websocket))
        .route("/auth/login", get(auth::login_info))
        .route("/auth/token", post(auth::token))
        .route("/auth/revoke", post(auth::revoke))
        .fallback(ui::serve)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ))
        .layer(axum::middleware::from_fn(
            origin::refuse_cross_origin_writes,
        ))
        .layer(axum::middleware::from_fn(compression::gzip_json_answers))
        .with_state(state)
}
