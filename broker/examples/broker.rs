//! Runs the broker alone, like `mosquitto` (the `flowd broker` command
//! does the same with clap):
//! `cargo run -p flowd-broker --example broker -- --mqtt 127.0.0.1:1883 --acl-file acl --max-keepalive 60 -v`

use std::path::PathBuf;

use flowd_broker::{Broker, BrokerConfig};

fn usage() -> ! {
    eprintln!(
        "usage: broker [--mqtt ADDR] [--ws ADDR] [--tls ADDR CERT.pem KEY.pem] [--threads N] [--max-queued N] [--password-file FILE] [--acl-file FILE] [--max-keepalive SECS] \
         [--persistence-dir DIR] [--allow-anonymous true|false] [-v]"
    );
    std::process::exit(2)
}

#[tokio::main]
async fn main() {
    let mut config = BrokerConfig::default();
    let mut verbose = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| usage());
        match a.as_str() {
            "--mqtt" => config.mqtt = Some(value().parse().unwrap_or_else(|_| usage())),
            "--ws" => config.ws = Some(value().parse().unwrap_or_else(|_| usage())),
            "--tls" => {
                let addr = value().parse().unwrap_or_else(|_| usage());
                let cert_file = PathBuf::from(value());
                let key_file = PathBuf::from(value());
                config.tls = Some(flowd_broker::TlsConfig {
                    addr,
                    cert_file,
                    key_file,
                });
            }
            "--max-queued" => {
                config.limits.max_queued_messages = value().parse().unwrap_or_else(|_| usage())
            }
            "--threads" => config.worker_threads = value().parse().unwrap_or_else(|_| usage()),
            "--password-file" => config.password_file = Some(PathBuf::from(value())),
            "--acl-file" => config.acl_file = Some(PathBuf::from(value())),
            "--max-keepalive" => {
                config.max_keepalive = Some(value().parse().unwrap_or_else(|_| usage()))
            }
            "--persistence-dir" => config.persistence_dir = Some(PathBuf::from(value())),
            "--allow-anonymous" => config.allow_anonymous = Some(value() == "true"),
            "-v" => verbose = true,
            _ => usage(),
        }
    }
    let level = if verbose { "debug" } else { "info" };
    tracing_subscriber::fmt()
        .with_env_filter(level)
        .with_target(false)
        .init();
    let broker = match Broker::start(config).await {
        Ok(b) => b,
        Err(e) => {
            eprintln!("Error: {e}");
            std::process::exit(1);
        }
    };
    let _ = tokio::signal::ctrl_c().await;
    broker.shutdown().await;
}
