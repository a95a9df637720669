//! Command-line parsing and dispatch.

use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Exit code for invalid flows, settings or arguments.
pub const EXIT_INVALID: u8 = 2;

/// Default MQTT listener of the embedded broker.
pub const DEFAULT_MQTT: &str = "127.0.0.1:1883";
/// Default admin API / editor listener.
pub const DEFAULT_HTTP: &str = "127.0.0.1:1880";
/// Env var flows can use for the embedded broker's port (`"port": "${FLOWD_MQTT_PORT}"`).
pub const MQTT_PORT_ENV: &str = "FLOWD_MQTT_PORT";

/// flowd: Node-RED flows and an MQTT broker in one binary.
///
/// Without a subcommand flowd starts the embedded MQTT broker, the admin API
/// and the runtime on the user directory (its flows.json; a demo flow on the
/// first start).
#[derive(Parser)]
#[command(name = "flowd", version, about, long_about)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    server: ServerArgs,
}

/// Options of the default (server) mode.
#[derive(Args, Debug, Clone)]
pub struct ServerArgs {
    /// User directory: flows.json, broker state (default ~/.flowd).
    #[arg(long, value_name = "DIR", env = "FLOWD_USER_DIR")]
    pub user_dir: Option<PathBuf>,
    /// Admin API address [default: 127.0.0.1:1880, or flowd.toml's http.addr].
    #[arg(long, value_name = "ADDR", env = "FLOWD_HTTP")]
    pub http: Option<SocketAddr>,
    /// Embedded broker's MQTT address [default: 127.0.0.1:1883, or flowd.toml's broker.addr].
    #[arg(long, value_name = "ADDR", env = "FLOWD_MQTT")]
    pub mqtt: Option<SocketAddr>,
    /// Secret that encrypts flows_cred.json [default: flowd.toml's credentials.secret, else generated].
    #[arg(
        long,
        value_name = "SECRET",
        env = "FLOWD_CREDENTIAL_SECRET",
        hide_env_values = true
    )]
    pub credential_secret: Option<String>,
    /// Do not start the embedded broker.
    #[arg(long)]
    pub no_broker: bool,
    /// Do not start the admin API.
    #[arg(long)]
    pub no_editor: bool,
    /// Allow the admin API on a non-loopback address without authentication.
    #[arg(long)]
    pub insecure: bool,
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
        /// Bearer token for an admin API with authentication.
        #[arg(long, env = "FLOWD_TOKEN")]
        token: Option<String>,
    },
    /// Run only the MQTT broker, like mosquitto.
    Broker(crate::broker_cmd::BrokerArgs),
}

/// Parses arguments and runs the command.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let result = match cli.command {
        Some(Command::Validate { flows }) => crate::headless::validate(&flows),
        Some(Command::Run {
            flows,
            broker,
            quiet,
            stop_timeout,
        }) => crate::headless::run(&flows, broker, quiet, Duration::from_secs(stop_timeout)),
        Some(Command::Deploy {
            flows,
            url,
            deploy_type,
            token,
        }) => crate::deploy::deploy(&flows, &url, &deploy_type, token.as_deref()),
        Some(Command::Broker(args)) => crate::broker_cmd::run(args),
        None => crate::server::run(cli.server),
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

/// Makes `${FLOWD_MQTT_PORT}` resolve in flows (to `port` unless the user set it).
pub fn export_mqtt_port(port: u16) {
    if std::env::var_os(MQTT_PORT_ENV).is_none() {
        // Set once at start-up, before any thread reads the environment.
        std::env::set_var(MQTT_PORT_ENV, port.to_string());
    }
}

/// A multi-threaded tokio runtime.
pub fn tokio_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    use anyhow::Context;
    tokio::runtime::Builder::new_multi_thread()
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
