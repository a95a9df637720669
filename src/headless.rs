//! `flowd run` and `flowd validate`.

use crate::cli::{export_mqtt_port, tokio_runtime, wait_for_shutdown_signal, EXIT_INVALID};
use crate::settings::{ContextSettings, ContextStorage};
use anyhow::{bail, Context};
use flowd_engine::context::{ContextStore, FileContextStorage};
use flowd_engine::observer::{NullObserver, RuntimeObserver, StdoutObserver};
use flowd_engine::{prepare_text, Runtime, RuntimeOptions, ValidationErrors};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// Reads a flows file.
pub fn read_flows(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

/// Prints every validation error, one per line.
pub fn print_errors(errors: &ValidationErrors, to_stdout: bool) {
    for e in errors.iter() {
        if to_stdout {
            println!("{e}");
        } else {
            eprintln!("{e}");
        }
    }
}

/// `flowd validate`: "ok" (exit 0) or every error (exit 2).
pub fn validate(path: &Path) -> anyhow::Result<ExitCode> {
    export_mqtt_port(1883);
    let text = read_flows(path)?;
    match prepare_text(&flowd_nodes::registry(), &text) {
        Ok(_) => {
            println!("ok");
            Ok(ExitCode::SUCCESS)
        }
        Err(errors) => {
            print_errors(&errors, true);
            Ok(ExitCode::from(EXIT_INVALID))
        }
    }
}

/// Options of `flowd run`.
pub struct RunOptions {
    /// Also start the embedded broker here.
    pub broker: Option<SocketAddr>,
    /// No debug output.
    pub quiet: bool,
    /// Time allowed for in-flight messages on stop.
    pub stop_timeout: Duration,
    /// The user directory, when given (file context goes to DIR/context).
    pub user_dir: Option<PathBuf>,
    /// Context storage.
    pub context: ContextSettings,
}

/// The context store `settings` ask for: in memory, or loaded from
/// `DIR/context` (a corrupt file stops the start, naming it).
pub fn context_store(
    user_dir: Option<&Path>,
    settings: &ContextSettings,
) -> anyhow::Result<ContextStore> {
    match settings.storage {
        ContextStorage::Memory => Ok(ContextStore::new()),
        ContextStorage::File => {
            let Some(dir) = user_dir else {
                bail!(
                    "context.storage = \"file\" needs a user directory for DIR/context: \
                     give --user-dir DIR (or FLOWD_USER_DIR)"
                );
            };
            let storage = FileContextStorage::new(dir.join("context"));
            let store = ContextStore::persistent(storage, settings.flush_interval)?;
            tracing::info!(
                dir = %dir.join("context").display(),
                flush_interval_s = settings.flush_interval.as_secs(),
                "Context kept on disk."
            );
            Ok(store)
        }
    }
}

/// `flowd run`: validate, start (with the embedded broker on `broker`),
/// run until SIGINT/SIGTERM, stop gracefully (file context written last).
pub fn run(path: &Path, options: RunOptions) -> anyhow::Result<ExitCode> {
    let RunOptions {
        broker,
        quiet,
        stop_timeout,
        user_dir,
        context,
    } = options;
    export_mqtt_port(broker.map_or(1883, |b| b.port()));
    let text = read_flows(path)?;
    let prepared = match prepare_text(&flowd_nodes::registry(), &text) {
        Ok(p) => p,
        Err(errors) => {
            eprintln!(
                "flowd: {} has {} error(s); nothing started:",
                path.display(),
                errors.len()
            );
            print_errors(&errors, false);
            return Ok(ExitCode::from(EXIT_INVALID));
        }
    };
    let contexts = context_store(user_dir.as_deref(), &context)?;
    tokio_runtime()?.block_on(async move {
        let embedded = match broker {
            Some(addr) => Some(crate::server::start_broker(addr, None).await?),
            None => None,
        };
        let observer: Arc<dyn RuntimeObserver> = if quiet {
            Arc::new(NullObserver)
        } else {
            Arc::new(StdoutObserver::default())
        };
        let runtime = Runtime::start_with_context(
            prepared,
            RuntimeOptions {
                observer,
                tap: None,
            },
            contexts,
        );
        tracing::info!(flows = %path.display(), "Started flows.");
        wait_for_shutdown_signal().await?;
        tracing::info!("Stopping flows.");
        runtime.stop(stop_timeout).await;
        tracing::info!("Stopped flows.");
        if let Some(b) = embedded {
            b.shutdown().await;
        }
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitCode::SUCCESS)
}
