//! Command-line parsing and the subcommands.

use anyhow::Context;
use clap::{Parser, Subcommand};
use flowd_engine::observer::{NullObserver, RuntimeObserver, StdoutObserver};
use flowd_engine::{prepare_text, Runtime, RuntimeOptions, ValidationErrors};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// Exit code for invalid flows or arguments.
const EXIT_INVALID: u8 = 2;

/// flowd: a Node-RED-compatible flow engine with a built-in MQTT broker.
#[derive(Parser)]
#[command(name = "flowd", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a flows file headless until interrupted (SIGINT/SIGTERM stop it gracefully).
    Run {
        /// The Node-RED flows file.
        flows: PathBuf,
        /// Do not print debug node output.
        #[arg(long)]
        quiet: bool,
        /// Seconds allowed for in-flight messages to drain on stop.
        #[arg(long, default_value_t = 15, value_name = "SECS")]
        stop_timeout: u64,
    },
    /// Check a flows file: prints "ok" or every error.
    Validate {
        /// The Node-RED flows file.
        flows: PathBuf,
    },
}

/// Parses arguments and runs the command.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let result = match cli.command {
        Command::Validate { flows } => validate(&flows),
        Command::Run {
            flows,
            quiet,
            stop_timeout,
        } => run(&flows, quiet, Duration::from_secs(stop_timeout)),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("flowd: {e:#}");
            ExitCode::from(EXIT_INVALID)
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("FLOWD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

fn read_flows(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

fn print_errors(errors: &ValidationErrors, to_stdout: bool) {
    for e in errors.iter() {
        if to_stdout {
            println!("{e}");
        } else {
            eprintln!("{e}");
        }
    }
}

fn validate(path: &Path) -> anyhow::Result<ExitCode> {
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

fn run(path: &Path, quiet: bool, stop_timeout: Duration) -> anyhow::Result<ExitCode> {
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
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async move {
        let observer: Arc<dyn RuntimeObserver> = if quiet {
            Arc::new(NullObserver)
        } else {
            Arc::new(StdoutObserver::default())
        };
        let runtime = Runtime::start(
            prepared,
            RuntimeOptions {
                observer,
                tap: None,
            },
        );
        tracing::info!(flows = %path.display(), "Started flows.");
        wait_for_shutdown_signal().await?;
        tracing::info!("Stopping flows.");
        runtime.stop(stop_timeout).await;
        tracing::info!("Stopped flows.");
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitCode::SUCCESS)
}

async fn wait_for_shutdown_signal() -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot listen for SIGTERM")?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.context("cannot listen for SIGINT")?,
        _ = term.recv() => {}
    }
    Ok(())
}
