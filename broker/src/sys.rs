//! `$SYS/broker/...` topics, as Mosquitto names them, published retained
//! every `sys_interval` when their value changed.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::codec::{Properties, QoS};
use crate::message::{Inbound, Message};
use crate::stats::Stats;

/// Runs until `shutdown`, publishing through the router like a client.
pub async fn run(
    router: mpsc::Sender<Inbound>,
    stats: Arc<Stats>,
    interval: Duration,
    version: &'static str,
    shutdown: CancellationToken,
) {
    let started = Instant::now();
    let mut last: Vec<(&'static str, String)> = Vec::new();
    let mut ticker = tokio::time::interval(interval);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = shutdown.cancelled() => return,
        }
        let values = snapshot(&stats, started, version);
        for (topic, value) in &values {
            if last.iter().any(|(t, v)| t == topic && v == value) {
                continue;
            }
            let msg = Message {
                topic: (*topic).into(),
                payload: Bytes::from(value.clone()),
                qos: QoS::AtMostOnce,
                retain: true,
                properties: Properties::default(),
                expires_at: None,
                publisher: None,
            };
            if router.send(Inbound::Internal(Arc::new(msg))).await.is_err() {
                return;
            }
        }
        last = values;
    }
}

fn snapshot(s: &Stats, started: Instant, version: &'static str) -> Vec<(&'static str, String)> {
    vec![
        (
            "$SYS/broker/version",
            format!("flowd-broker version {version}"),
        ),
        (
            "$SYS/broker/uptime",
            format!("{} seconds", started.elapsed().as_secs()),
        ),
        (
            "$SYS/broker/clients/connected",
            s.clients_connected.load(Relaxed).to_string(),
        ),
        (
            "$SYS/broker/clients/total",
            s.sessions.load(Relaxed).to_string(),
        ),
        (
            "$SYS/broker/messages/received",
            s.messages_received.load(Relaxed).to_string(),
        ),
        (
            "$SYS/broker/messages/sent",
            s.messages_sent.load(Relaxed).to_string(),
        ),
        (
            "$SYS/broker/publish/messages/dropped",
            s.messages_dropped.load(Relaxed).to_string(),
        ),
        (
            "$SYS/broker/bytes/received",
            s.bytes_received.load(Relaxed).to_string(),
        ),
        (
            "$SYS/broker/bytes/sent",
            s.bytes_sent.load(Relaxed).to_string(),
        ),
        (
            "$SYS/broker/subscriptions/count",
            s.subscriptions.load(Relaxed).to_string(),
        ),
        (
            "$SYS/broker/retained messages/count",
            s.retained.load(Relaxed).to_string(),
        ),
    ]
}
