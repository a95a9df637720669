//! `flowd` without a subcommand: the embedded broker, the admin API and the
//! runtime on the user directory, like `node-red` and `mosquitto` together.

use crate::cli::{export_mqtt_port, tokio_runtime, wait_for_shutdown_signal, EXIT_INVALID};
use crate::headless::print_errors;
use crate::settings::Settings;
use anyhow::Context;
use flowd_broker::{Broker, BrokerConfig};
use flowd_editor::comms::CommsHub;
use flowd_editor::credentials::CredentialStore;
use flowd_editor::storage::FlowStorage;
use flowd_editor::{app, EditorState};
use flowd_engine::flows::{from_json, parse_text};
use flowd_engine::observer::{NullObserver, RuntimeObserver};
use flowd_engine::{prepare, Runtime, RuntimeOptions, ValidationErrors};
use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// The flow a user directory gets on its first start: simulated sensors
/// publishing to the embedded broker, and the temperature-alert pipeline.
const DEMO_FLOWS: &str = include_str!("../flows/demo.json");

/// Time allowed for messages in flight when flowd stops.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// Starts the embedded broker on `addr` (persistent under `dir` when given).
pub async fn start_broker(addr: SocketAddr, dir: Option<&Path>) -> anyhow::Result<Broker> {
    start_configured_broker(BrokerConfig {
        mqtt: Some(addr),
        persistence_dir: dir.map(|d| d.join("broker")),
        ..BrokerConfig::default()
    })
    .await
}

/// Starts the embedded broker with `config`; the flows' MQTT clients that
/// name its listener use in-process connections to it.
pub async fn start_configured_broker(config: BrokerConfig) -> anyhow::Result<Broker> {
    let addr = config.mqtt;
    let broker = Broker::start(config).await.with_context(|| {
        format!(
            "cannot start the MQTT broker on {}",
            addr.map(|a| a.to_string()).unwrap_or_default()
        )
    })?;
    if let Some(a) = broker.local_addr() {
        tracing::info!(addr = %a, "MQTT broker listening.");
        // mqtt-broker nodes that name this listener connect in-process.
        flowd_nodes::network::mqtt_client::set_embedded_broker(a, broker.in_process());
    }
    Ok(broker)
}

/// Runs flowd until SIGINT/SIGTERM.
pub fn run(settings: Settings) -> anyhow::Result<ExitCode> {
    let user_dir = settings.user_dir.clone();
    std::fs::create_dir_all(&user_dir)
        .with_context(|| format!("cannot create {}", user_dir.display()))?;
    let http = settings.http;
    let mqtt = settings.broker.addr;
    let auth = if settings.admin_users.is_empty() {
        None
    } else {
        Some(
            flowd_editor::auth::AdminAuth::new(settings.admin_users.clone())
                .map_err(|e| anyhow::anyhow!("invalid setting admin.users: {e}"))?,
        )
    };
    if settings.editor && !http.ip().is_loopback() && auth.is_none() {
        if !settings.insecure {
            anyhow::bail!(
                "refusing to serve the admin API on {http} without authentication: \
                 bind it to 127.0.0.1, add admin users, or pass --insecure to expose it anyway"
            );
        }
        tracing::warn!(addr = %http, "The admin API is reachable from the network WITHOUT authentication (--insecure).");
    }
    export_mqtt_port(mqtt.port());
    let storage = FlowStorage::new(user_dir.join("flows.json"));
    let text = match storage
        .load()
        .with_context(|| format!("cannot read {}", storage.path().display()))?
    {
        Some(t) => t,
        None => {
            std::fs::write(storage.path(), DEMO_FLOWS)
                .with_context(|| format!("cannot write {}", storage.path().display()))?;
            tracing::info!(file = %storage.path().display(), "First start: wrote the demo flow.");
            DEMO_FLOWS.to_string()
        }
    };
    let doc = match parse_text(&text) {
        Ok(d) => d,
        Err(e) => return invalid(storage.path(), &ValidationErrors(vec![e])),
    };
    let (mut set, structural) = from_json(doc);
    let secret = match settings.credential_secret.clone() {
        Some(s) => s,
        None => CredentialStore::user_dir_secret(&user_dir)?,
    };
    let cred_store = CredentialStore::new(user_dir.join("flows_cred.json"), Some(&secret));
    let mut stored = cred_store.load()?;
    // Credentials written inline in flows.json (an imported export) win.
    for (id, c) in std::mem::take(&mut set.credentials) {
        stored.entry(id).or_default().extend(c);
    }
    set.credentials = stored;
    let registry = Arc::new(flowd_nodes::registry());
    let prepared = match prepare(&registry, set.clone(), structural) {
        Ok(p) => p,
        Err(errors) => return invalid(storage.path(), &errors),
    };
    let contexts = crate::headless::context_store(Some(&user_dir), &settings.context)?;
    let b = settings.broker.clone();
    tokio_runtime()?.block_on(async move {
        let broker = if b.enabled {
            let mut config = BrokerConfig {
                mqtt: Some(mqtt),
                ws: b.ws,
                password_file: b.password_file,
                acl_file: b.acl_file,
                allow_anonymous: b.allow_anonymous,
                max_keepalive: b.max_keepalive,
                persistence_dir: b.persistence.then(|| user_dir.join("broker")),
                ..BrokerConfig::default()
            };
            if let Some(n) = b.max_connections {
                config.limits.max_connections = n;
            }
            if let Some(n) = b.max_packet_size {
                config.limits.max_packet_size = n;
            }
            if let Some(n) = b.max_queued_messages {
                config.limits.max_queued_messages = n;
            }
            Some(start_configured_broker(config).await?)
        } else {
            None
        };
        let comms = CommsHub::new();
        let observer: Arc<dyn RuntimeObserver> = if !settings.editor {
            Arc::new(NullObserver)
        } else {
            comms.clone()
        };
        let runtime = Arc::new(Runtime::start_with_context(
            prepared,
            RuntimeOptions {
                observer,
                tap: None,
            },
            contexts,
        ));
        tracing::info!(flows = %storage.path().display(), "Started flows.");
        let server = if !settings.editor {
            None
        } else {
            let mut state = EditorState::new(runtime.clone(), registry, Some(storage), &set, comms)
                .with_credentials(cred_store);
            if settings.context.storage == crate::settings::ContextStorage::File {
                state = state.with_context_on_disk();
            }
            if let Some(a) = auth {
                state = state.with_auth(a);
            }
            let state = Arc::new(state);
            let listener = tokio::net::TcpListener::bind(http)
                .await
                .with_context(|| format!("cannot listen on {http}"))?;
            tracing::info!(addr = %listener.local_addr().unwrap_or(http), "Admin API listening.");
            Some(tokio::spawn(async move {
                if let Err(e) = axum::serve(listener, app(state)).await {
                    tracing::error!(error = %e, "Admin API stopped.");
                }
            }))
        };
        wait_for_shutdown_signal().await?;
        tracing::info!("Stopping flows.");
        if let Some(s) = server {
            s.abort();
        }
        runtime.shutdown(STOP_TIMEOUT).await;
        if let Some(b) = broker {
            b.shutdown().await;
        }
        tracing::info!("Stopped flows.");
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitCode::SUCCESS)
}

fn invalid(path: &Path, errors: &ValidationErrors) -> anyhow::Result<ExitCode> {
    eprintln!(
        "flowd: {} has {} error(s); nothing started:",
        path.display(),
        errors.len()
    );
    print_errors(errors, false);
    Ok(ExitCode::from(EXIT_INVALID))
}
