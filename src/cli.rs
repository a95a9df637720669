//! Command-line parsing and dispatch.

use crate::settings::{self, ContextFlags, LogLevel, SettingFlags, Sources};
use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Exit code for invalid flows, settings or arguments.
pub const EXIT_INVALID: u8 = 2;

/// Default MQTT listener of the embedded broker.
pub const DEFAULT_MQTT: &str = "127.0.0.1:1883";
/// Env var flows can use for the embedded broker's port (`"port": "${FLOWD_MQTT_PORT}"`).
pub const MQTT_PORT_ENV: &str = "FLOWD_MQTT_PORT";

/// flowd: Node-RED flows and an MQTT broker in one binary.
///
/// Without a subcommand flowd starts the embedded MQTT broker, the admin API
/// and the runtime on the user directory (its flows.json; a demo flow on the
/// first start).
#[derive(Parser)]
#[command(name = "flowd", version, about, long_about, after_long_help = crate::settings::help_table())]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    server: ServerArgs,
    /// Log level: off, error, warn, info, debug, trace [env: FLOWD_LOG_LEVEL; default: info].
    #[arg(long, value_name = "LEVEL", global = true)]
    log_level: Option<LogLevel>,
}

/// Options of the default (server) mode.
#[derive(Args, Debug, Clone)]
pub struct ServerArgs {
    /// User directory: flows.json, flowd.toml, credentials, context, broker state [env: FLOWD_USER_DIR; default: ~/.flowd].
    #[arg(long, value_name = "DIR")]
    pub user_dir: Option<PathBuf>,
    #[command(flatten)]
    pub settings: SettingFlags,
}

#[derive(Subcommand)]
enum Command {
    /// Run a flows file headless until interrupted (SIGINT/SIGTERM stop it gracefully).
    Run {
        /// The Node-RED flows file.
        flows: PathBuf,
        /// Also start the embedded broker (on ADDR, default 127.0.0.1:1883).
        #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = DEFAULT_MQTT)]
        broker: Option<SocketAddr>,
        /// Do not print debug node output.
        #[arg(long)]
        quiet: bool,
        /// Seconds allowed for in-flight messages to drain on stop.
        #[arg(long, default_value_t = 15, value_name = "SECS")]
        stop_timeout: u64,
        /// User directory: its flowd.toml (log and context settings) and file context in DIR/context [env: FLOWD_USER_DIR; default: none].
        #[arg(long, value_name = "DIR")]
        user_dir: Option<PathBuf>,
        #[command(flatten)]
        context: ContextFlags,
    },
    /// Check a flows file: prints "ok" or every error.
    Validate {
        /// The Node-RED flows file.
        flows: PathBuf,
    },
    /// Deploy a flows file to a running flowd (or Node-RED) through its admin API.
    Deploy {
        /// The Node-RED flows file.
        flows: PathBuf,
        /// Admin API base URL.
        #[arg(long, default_value = "http://127.0.0.1:1880")]
        url: String,
        /// Deployment type.
        #[arg(long = "type", default_value = "full", value_parser = ["full", "flows", "nodes"])]
        deploy_type: String,
        /// Bearer token for an admin API with authentication (from POST /auth/token).
        #[arg(long, env = "FLOWD_TOKEN", hide_env_values = true)]
        token: Option<String>,
    },
    /// Run only the MQTT broker, like mosquitto.
    Broker(crate::broker_cmd::BrokerArgs),
}

/// Parses arguments and runs the command.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = dispatch(cli);
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("flowd: {e:#}");
            ExitCode::from(EXIT_INVALID)
        }
    }
}

fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    let env = settings::process_env;
    match cli.command {
        Some(Command::Validate { flows }) => {
            init_logging(settings::log_level(
                &Sources::new(&env, None)?,
                cli.log_level,
            )?);
            crate::headless::validate(&flows)
        }
        Some(Command::Run {
            flows,
            broker,
            quiet,
            stop_timeout,
            user_dir,
            context,
        }) => {
            let user_dir = user_dir.or_else(|| {
                env("FLOWD_USER_DIR")
                    .filter(|v| !v.is_empty())
                    .map(PathBuf::from)
            });
            let src = Sources::new(&env, user_dir.as_deref())?;
            let level = settings::log_level(&src, cli.log_level)?;
            let context = settings::context(&src, &context)?;
            init_logging(level);
            crate::headless::run(
                &flows,
                crate::headless::RunOptions {
                    broker,
                    quiet,
                    stop_timeout: Duration::from_secs(stop_timeout),
                    user_dir,
                    context,
                },
            )
        }
        Some(Command::Deploy {
            flows,
            url,
            deploy_type,
            token,
        }) => {
            init_logging(settings::log_level(
                &Sources::new(&env, None)?,
                cli.log_level,
            )?);
            crate::deploy::deploy(&flows, &url, &deploy_type, token.as_deref())
        }
        Some(Command::Broker(args)) => {
            init_logging(settings::log_level(
                &Sources::new(&env, None)?,
                cli.log_level,
            )?);
            crate::broker_cmd::run(args)
        }
        None => {
            let dir = settings::user_dir(cli.server.user_dir.clone(), &env);
            let resolved = settings::resolve(dir, &cli.server.settings, cli.log_level, &env)?;
            init_logging(resolved.log_level);
            crate::server::run(resolved)
        }
    }
}

/// Logs to stderr at `level`.
fn init_logging(level: LogLevel) {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(level.directive()))
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

/// Makes `${FLOWD_MQTT_PORT}` resolve in flows (to `port` unless the user set it).
pub fn export_mqtt_port(port: u16) {
    if std::env::var_os(MQTT_PORT_ENV).is_none() {
        // Set once at start-up, before any thread reads the environment.
        std::env::set_var(MQTT_PORT_ENV, port.to_string());
    }
}

/// The tokio runtime: one thread unless `FLOWD_WORKER_THREADS` asks for more.
pub fn tokio_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    use anyhow::Context;
    let threads = match std::env::var("FLOWD_WORKER_THREADS") {
        Ok(t) => t
            .parse::<usize>()
            .ok()
            .filter(|t| *t > 0)
            .with_context(|| format!("FLOWD_WORKER_THREADS: \"{t}\" is not a positive number"))?,
        Err(_) => 1,
    };
    let mut builder = if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(threads);
        b
    };
    builder
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Waits for SIGINT or SIGTERM.
pub async fn wait_for_shutdown_signal() -> anyhow::Result<()> {
    use anyhow::Context;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot listen for SIGTERM")?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.context("cannot listen for SIGINT")?,
        _ = term.recv() => {}
    }
    Ok(())
}
