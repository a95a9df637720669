//! `flowd` without a subcommand: the embedded broker, the admin API and the
//! runtime on the user directory, like `node-red` and `mosquitto` together.

use crate::cli::{
    export_mqtt_port, tokio_runtime, wait_for_shutdown_signal, ServerArgs, DEFAULT_HTTP,
    DEFAULT_MQTT, EXIT_INVALID,
};
use crate::headless::print_errors;
use crate::settings;
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
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// The flow a user directory gets on its first start: simulated sensors
/// publishing to the embedded broker, and the temperature-alert pipeline.
const DEMO_FLOWS: &str = include_str!("../flows/demo.json");

/// Time allowed for messages in flight when flowd stops.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

fn default_user_dir() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
        .join(".flowd")
}

/// Starts the embedded broker on `addr` (persistent under `dir` when given).
pub async fn start_broker(addr: SocketAddr, dir: Option<&Path>) -> anyhow::Result<Broker> {
    start_configured_broker(BrokerConfig {
        mqtt: Some(addr),
        persistence_dir: dir.map(|d| d.join("broker")),
        ..BrokerConfig::default()
    })
    .await
}

/// Starts the embedded broker with `config`.
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
    }
    Ok(broker)
}

/// Runs flowd until SIGINT/SIGTERM.
pub fn run(args: ServerArgs) -> anyhow::Result<ExitCode> {
    let user_dir = args.user_dir.clone().unwrap_or_else(default_user_dir);
    std::fs::create_dir_all(&user_dir)
        .with_context(|| format!("cannot create {}", user_dir.display()))?;
    let file = settings::load(&user_dir)?;
    let http = settings::pick_addr(
        "http.addr",
        args.http,
        file.http.addr.as_deref(),
        DEFAULT_HTTP,
    )?;
    let mqtt = settings::pick_addr(
        "broker.addr",
        args.mqtt,
        file.broker.addr.as_deref(),
        DEFAULT_MQTT,
    )?;
    let ws = file
        .broker
        .ws
        .as_deref()
        .map(|w| settings::address("broker.ws", w))
        .transpose()?;
    let broker_enabled = !args.no_broker && file.broker.enabled.unwrap_or(true);
    let auth = if file.admin.users.is_empty() {
        None
    } else {
        Some(
            flowd_editor::auth::AdminAuth::new(file.admin.users)
                .map_err(|e| anyhow::anyhow!("invalid setting admin.users: {e}"))?,
        )
    };
    if !args.no_editor && !http.ip().is_loopback() && auth.is_none() {
        if !args.insecure {
            anyhow::bail!(
                "refusing to serve the admin API on {http} without authentication: \
                 bind it to 127.0.0.1, or pass --insecure to expose it anyway"
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
    let secret = match args
        .credential_secret
        .clone()
        .or(file.credentials.secret.clone())
    {
        Some(s) if s.is_empty() => anyhow::bail!("invalid setting credentials.secret: empty"),
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
    tokio_runtime()?.block_on(async move {
        let broker = if broker_enabled {
            let config = BrokerConfig {
                mqtt: Some(mqtt),
                ws,
                password_file: file
                    .broker
                    .password_file
                    .as_deref()
                    .map(|p| settings::in_dir(&user_dir, p)),
                acl_file: file
                    .broker
                    .acl_file
                    .as_deref()
                    .map(|p| settings::in_dir(&user_dir, p)),
                max_keepalive: file.broker.max_keepalive,
                persistence_dir: file
                    .broker
                    .persistence
                    .unwrap_or(true)
                    .then(|| user_dir.join("broker")),
                ..BrokerConfig::default()
            };
            Some(start_configured_broker(config).await?)
        } else {
            None
        };
        let comms = CommsHub::new();
        let observer: Arc<dyn RuntimeObserver> = if args.no_editor {
            Arc::new(NullObserver)
        } else {
            comms.clone()
        };
        let runtime = Arc::new(Runtime::start(
            prepared,
            RuntimeOptions {
                observer,
                tap: None,
            },
        ));
        tracing::info!(flows = %storage.path().display(), "Started flows.");
        let server = if args.no_editor {
            None
        } else {
            let mut state = EditorState::new(runtime.clone(), registry, Some(storage), &set, comms)
                .with_credentials(cred_store);
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
