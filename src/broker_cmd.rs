//! `flowd broker`: only the MQTT broker, like `mosquitto`.

use crate::cli::{tokio_runtime, wait_for_shutdown_signal, DEFAULT_MQTT};
use anyhow::Context;
use clap::Args;
use flowd_broker::{Broker, BrokerConfig};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

/// Options of `flowd broker`.
#[derive(Args, Debug)]
pub struct BrokerArgs {
    /// MQTT over TCP listener.
    #[arg(long, value_name = "ADDR", default_value = DEFAULT_MQTT)]
    mqtt: SocketAddr,
    /// MQTT over WebSocket listener.
    #[arg(long, value_name = "ADDR")]
    ws: Option<SocketAddr>,
    /// Mosquitto password file (mosquitto_passwd format).
    #[arg(long, value_name = "FILE")]
    password_file: Option<PathBuf>,
    /// Mosquitto ACL file.
    #[arg(long, value_name = "FILE")]
    acl_file: Option<PathBuf>,
    /// Largest keep alive a client may use (seconds).
    #[arg(long, value_name = "SECS")]
    max_keepalive: Option<u16>,
    /// Keep retained messages and persistent sessions here.
    #[arg(long, value_name = "DIR")]
    persistence_dir: Option<PathBuf>,
}

/// Runs the broker until SIGINT/SIGTERM.
pub fn run(args: BrokerArgs) -> anyhow::Result<ExitCode> {
    let config = BrokerConfig {
        mqtt: Some(args.mqtt),
        ws: args.ws,
        password_file: args.password_file,
        acl_file: args.acl_file,
        max_keepalive: args.max_keepalive,
        persistence_dir: args.persistence_dir,
        ..BrokerConfig::default()
    };
    tokio_runtime()?.block_on(async move {
        let broker = Broker::start(config)
            .await
            .context("cannot start the broker")?;
        if let Some(a) = broker.local_addr() {
            tracing::info!("Opening ipv4 listen socket on {a}.");
        }
        wait_for_shutdown_signal().await?;
        broker.shutdown().await;
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitCode::SUCCESS)
}
