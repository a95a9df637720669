//! The `/comms` websocket: debug messages, node status, deploy
//! notifications and a heartbeat, as Node-RED's editor expects them.
//!
//! [`CommsHub`] is the runtime observer the editor installs: it encodes
//! events and broadcasts them on a bounded channel, so the executor never
//! waits for a browser. A client that reads too slowly skips what it missed;
//! the skipped count is sent to it (`flowd/dropped`) so the sidebar can say so,
//! and memory stays bounded however fast messages come. Status and
//! notifications are retained and replayed on subscribe.

use crate::auth::AdminAuth;
use crate::debug_encoding::encode_debug;
use flowd_engine::node::{NodeInfo, Status};
use flowd_engine::observer::{DebugEvent, LogLevel, RuntimeObserver};
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use serde_json::{json, Value as Json};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::broadcast;

/// Events kept for slow clients before they start skipping.
pub const COMMS_CAPACITY: usize = 1024;
/// Events are sent this long after the first one queued, batched.
pub const BATCH_DELAY: Duration = Duration::from_millis(50);
/// At most this many events per frame.
pub const BATCH_MAX: usize = 50;
/// A heartbeat goes out after this long without traffic.
pub const HEARTBEAT: Duration = Duration::from_secs(15);

/// One comms event.
#[derive(Debug, Clone)]
pub struct CommsEvent {
    /// `debug`, `status/<id>`, `notification/...`.
    pub topic: String,
    /// The payload.
    pub data: Json,
}

/// Fans runtime events out to websocket clients.
pub struct CommsHub {
    tx: broadcast::Sender<Arc<CommsEvent>>,
    retained: Mutex<BTreeMap<String, Json>>,
    /// Clients connected now.
    clients: AtomicUsize,
    /// True while the wire rates publisher runs (see `rates`).
    pub(crate) rates_running: AtomicBool,
}

/// Counts a client for as long as it is served.
struct ClientGuard(Arc<CommsHub>);

impl Drop for ClientGuard {
    fn drop(&mut self) {
        self.0.clients.fetch_sub(1, Ordering::SeqCst);
    }
}

impl CommsHub {
    /// A hub with the default capacity.
    pub fn new() -> Arc<CommsHub> {
        CommsHub::with_capacity(COMMS_CAPACITY)
    }

    /// A hub keeping `capacity` events for slow clients.
    pub fn with_capacity(capacity: usize) -> Arc<CommsHub> {
        let (tx, _) = broadcast::channel(capacity.max(1));
        Arc::new(CommsHub {
            tx,
            retained: Mutex::new(BTreeMap::new()),
            clients: AtomicUsize::new(0),
            rates_running: AtomicBool::new(false),
        })
    }

    /// How many websocket clients are connected.
    pub fn client_count(&self) -> usize {
        self.clients.load(Ordering::SeqCst)
    }

    /// Publishes an event; `retain` keeps the last one per topic for new
    /// subscribers (an empty object clears it).
    pub fn publish(&self, topic: impl Into<String>, data: Json, retain: bool) {
        let topic = topic.into();
        if retain {
            if let Ok(mut r) = self.retained.lock() {
                if data.as_object().is_some_and(|o| o.is_empty()) {
                    r.remove(&topic);
                } else {
                    r.insert(topic.clone(), data.clone());
                }
            }
        }
        // No receiver is not an error: nobody is watching.
        let _ = self.tx.send(Arc::new(CommsEvent { topic, data }));
    }

    fn retained_matching(&self, pattern: &str) -> Vec<CommsEvent> {
        self.retained
            .lock()
            .map(|r| {
                r.iter()
                    .filter(|(t, _)| topic_matches(pattern, t))
                    .map(|(t, d)| CommsEvent {
                        topic: t.clone(),
                        data: d.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl RuntimeObserver for CommsHub {
    fn debug(&self, event: &DebugEvent<'_>) {
        self.publish("debug", encode_debug(event), false);
    }

    fn log(&self, node: &NodeInfo, level: LogLevel, text: &str) {
        let level = match level {
            LogLevel::Error => 20,
            LogLevel::Warn => 30,
            LogLevel::Info => return,
        };
        let mut data = json!({"id": node.id.as_str(), "type": node.type_name.as_str(), "msg": text, "level": level});
        if let Some(z) = &node.z {
            data["z"] = json!(z.as_str());
        }
        if let Some(n) = &node.name {
            data["name"] = json!(n.as_str());
        }
        self.publish("debug", data, false);
    }

    fn status(&self, node: &NodeInfo, status: &Status) {
        let data = serde_json::to_value(status).unwrap_or_default();
        self.publish(format!("status/{}", node.id), data, true);
    }
}

/// MQTT-style topic pattern matching (`+` one level, `#` the rest).
pub fn topic_matches(pattern: &str, topic: &str) -> bool {
    let mut p = pattern.split('/');
    let mut t = topic.split('/');
    loop {
        match (p.next(), t.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

fn frame(events: &[CommsEvent]) -> String {
    let list: Vec<Json> = events
        .iter()
        .map(|e| json!({"topic": e.topic, "data": e.data}))
        .collect();
    Json::Array(list).to_string()
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Serves one client: reads `{"subscribe": pattern}` / `{"auth": ..}` text
/// frames from `incoming`, writes batched JSON arrays to `outgoing`. Written
/// against plain streams so tests can drive it with channels.
///
/// With `auth`, the client must first send `{"auth": "<token>"}`; until then
/// it gets nothing, and a bad token closes the connection (`{"auth":"fail"}`).
pub async fn serve_client<I, O>(
    hub: Arc<CommsHub>,
    auth: Option<Arc<AdminAuth>>,
    mut incoming: I,
    mut outgoing: O,
) where
    I: Stream<Item = String> + Unpin,
    O: Sink<String> + Unpin,
{
    hub.clients.fetch_add(1, Ordering::SeqCst);
    let _counted = ClientGuard(hub.clone());
    let mut rx = hub.tx.subscribe();
    let mut patterns: Vec<String> = Vec::new();
    let mut batch: Vec<CommsEvent> = Vec::new();
    let mut dropped: u64 = 0;
    let mut flush_at: Option<tokio::time::Instant> = None;
    let mut last_sent = tokio::time::Instant::now();
    let mut authenticated = auth.is_none();
    loop {
        let heartbeat_at = last_sent + HEARTBEAT;
        let wake = flush_at.map_or(heartbeat_at, |f| f.min(heartbeat_at));
        tokio::select! {
            text = incoming.next() => {
                let Some(text) = text else { return };
                let Ok(cmd) = serde_json::from_str::<Json>(&text) else { continue };
                if let Some(token) = cmd.get("auth") {
                    let ok = match (&auth, token.as_str()) {
                        (None, _) => true,
                        (Some(a), Some(t)) => a.check(t).is_some(),
                        (Some(_), None) => false,
                    };
                    let answer = if ok { "ok" } else { "fail" };
                    if outgoing.send(json!({"auth": answer}).to_string()).await.is_err() || !ok {
                        return;
                    }
                    authenticated = true;
                } else if !authenticated {
                    continue;
                } else if let Some(p) = cmd.get("subscribe").and_then(Json::as_str) {
                    batch.extend(hub.retained_matching(p));
                    patterns.push(p.to_string());
                    flush_at.get_or_insert_with(|| tokio::time::Instant::now() + BATCH_DELAY);
                }
            }
            ev = rx.recv() => match ev {
                Ok(ev) => {
                    if patterns.iter().any(|p| topic_matches(p, &ev.topic)) {
                        batch.push((*ev).clone());
                        flush_at.get_or_insert_with(|| tokio::time::Instant::now() + BATCH_DELAY);
                    }
                }
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    dropped += n;
                    batch.push(CommsEvent { topic: "flowd/dropped".into(), data: json!({"dropped": dropped}) });
                    flush_at.get_or_insert_with(|| tokio::time::Instant::now() + BATCH_DELAY);
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
            _ = tokio::time::sleep_until(wake) => {
                if batch.is_empty() {
                    batch.push(CommsEvent { topic: "hb".into(), data: json!(now_ms()) });
                }
                for chunk in batch.chunks(BATCH_MAX) {
                    if outgoing.send(frame(chunk)).await.is_err() {
                        return;
                    }
                }
                batch.clear();
                flush_at = None;
                last_sent = tokio::time::Instant::now();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::mpsc;

    /// A client made of channels: (send to server, receive from server, task).
    fn client(
        hub: Arc<CommsHub>,
    ) -> (
        mpsc::UnboundedSender<String>,
        mpsc::UnboundedReceiver<String>,
        tokio::task::JoinHandle<()>,
    ) {
        let (to_server, rx) = mpsc::unbounded_channel::<String>();
        let (tx, from_server) = mpsc::unbounded_channel::<String>();
        let incoming = Box::pin(futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|m| (m, rx))
        }));
        let outgoing = Box::pin(futures_util::sink::unfold(
            tx,
            |tx, item: String| async move {
                tx.send(item).map_err(|_| ())?;
                Ok::<_, ()>(tx)
            },
        ));
        (
            to_server,
            from_server,
            tokio::spawn(serve_client(hub, None, incoming, outgoing)),
        )
    }

    #[tokio::test(start_paused = true)]
    async fn slow_clients_skip_and_are_told_how_much() {
        let hub = CommsHub::with_capacity(8);
        let (to_server, mut from_server, task) = client(hub.clone());
        to_server.send(r#"{"subscribe":"debug"}"#.into()).unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
        // 100 events at once: the client's view holds 8, the rest are counted.
        for i in 0..100 {
            hub.publish("debug", json!(i), false);
        }
        hub.publish("other", json!("not subscribed"), false);
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut events = Vec::new();
        while let Ok(f) = from_server.try_recv() {
            events.extend(serde_json::from_str::<Vec<Json>>(&f).unwrap());
        }
        let dropped = events
            .iter()
            .find(|e| e["topic"] == "flowd/dropped")
            .expect("a drop report");
        let delivered = events.iter().filter(|e| e["topic"] == "debug").count();
        assert_eq!(
            dropped["data"]["dropped"].as_u64().unwrap() + delivered as u64,
            100
        );
        assert!(events.iter().all(|e| e["topic"] != "other"));
        task.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn retained_status_is_replayed_and_heartbeats_fill_silence() {
        let hub = CommsHub::new();
        let info = NodeInfo::detached("n1", "debug");
        hub.status(&info, &Status::new("green", "dot", "ok"));
        let (to_server, mut from_server, task) = client(hub.clone());
        to_server
            .send(r#"{"subscribe":"status/#"}"#.into())
            .unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let f = from_server.try_recv().unwrap();
        assert_eq!(
            f,
            r#"[{"topic":"status/n1","data":{"fill":"green","shape":"dot","text":"ok"}}]"#
        );
        tokio::time::sleep(HEARTBEAT + Duration::from_secs(1)).await;
        let hb = from_server.try_recv().unwrap();
        assert!(hb.contains(r#""topic":"hb""#), "{hb}");
        task.abort();
    }

    #[test]
    fn patterns() {
        assert!(topic_matches("status/#", "status/n1"));
        assert!(topic_matches(
            "notification/+",
            "notification/runtime-deploy"
        ));
        assert!(!topic_matches("debug", "status/n1"));
    }
}
