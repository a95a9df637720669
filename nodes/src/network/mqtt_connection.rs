//! The client connection an `mqtt-broker` config node shares with its
//! `mqtt in` and `mqtt out` nodes.
//!
//! One task polls the client's event loop: it reconnects with backoff,
//! re-subscribes every filter and publishes the birth message after each
//! connect, hands received publications to the subscribed nodes (each
//! acknowledged once every node that got it has passed it on), and tracks
//! outgoing publications until the broker acknowledges them. While the
//! connection is down, publications wait in a bounded queue and go out in
//! order after the next connect.

use super::mqtt_client::{
    self, Announcement, Client, ClientOptions, EventLoop, LinkEvent, OutProps, Received, SubOptions,
};
use super::mqtt_delivery::{pump_acks, AckOnDrop, AckOrder, AckState, Delivery, DeliverySender};
use super::mqtt_message::{node_red_topic_matches, Publication};
use flowd_engine::node::Status;
use flowd_engine::{Msg, NodeHandle};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{oneshot, watch, Notify};
use tokio_util::sync::CancellationToken;

/// First wait before reconnecting; doubles up to [`RECONNECT_MAX`].
const RECONNECT_MIN: Duration = Duration::from_millis(250);
/// Longest wait between reconnect attempts (Node-RED's reconnect period).
const RECONNECT_MAX: Duration = Duration::from_secs(5);
/// How long closing waits for unacknowledged publications and the close message.
const CLOSE_GRACE: Duration = Duration::from_secs(2);
/// How often a connection waiting for a slow node checks its backlog.
const BACKLOG_POLL: Duration = Duration::from_millis(5);
/// QoS 0 publications waiting for one subscribing node before the
/// connection stops reading (QoS 1/2 ones are bounded by the broker's
/// in-flight window, as they are acknowledged only once taken).
pub const QOS0_BACKLOG: usize = 1000;

/// Connection state, as shown in the status of every user node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    /// Not connected and not trying.
    Disconnected,
    /// Trying to connect.
    Connecting,
    /// Connected.
    Connected,
}

impl LinkState {
    /// The node status Node-RED shows for this state (i18n keys as texts).
    pub fn status(self) -> Status {
        match self {
            LinkState::Disconnected => {
                Status::new("red", "ring", "node-red:common.status.disconnected")
            }
            LinkState::Connecting => {
                Status::new("yellow", "ring", "node-red:common.status.connecting")
            }
            LinkState::Connected => Status::new("green", "dot", "node-red:common.status.connected"),
        }
    }
}

/// The connection settings of a config node.
#[derive(Clone)]
pub struct ConnectionSettings {
    /// Client options.
    pub client: ClientOptions,
    /// Published after every connect.
    pub birth: Option<Announcement>,
    /// Published before a clean disconnect.
    pub close: Option<Announcement>,
    /// Connect when the first user node starts.
    pub auto_connect: bool,
    /// Unsubscribe when a subscribing node stops.
    pub auto_unsubscribe: bool,
    /// Publications kept while disconnected.
    pub queue_size: usize,
}

/// What happens once a publication is acknowledged.
pub enum Ticket {
    /// `done` for the message that was published (a complete node watches
    /// the sending node).
    Done(NodeHandle, Msg),
    /// The message that was published, kept only to be handed back with an
    /// error (no complete node watches the sending node).
    Message(Msg),
    /// Wake a waiter.
    Notify(oneshot::Sender<()>),
}

struct Subscriber {
    id: u64,
    filter: String,
    options: SubOptions,
    tx: DeliverySender,
    backlog: Arc<AtomicUsize>,
}

struct Queued {
    publication: Publication,
    props: Option<OutProps>,
    ticket: Option<Ticket>,
}

#[derive(Default)]
struct Inner {
    client: Option<Client>,
    stop: Option<CancellationToken>,
    connected: bool,
    /// Should be connected (false after an explicit disconnect).
    wanted: bool,
    subscribers: Vec<Subscriber>,
    queue: VecDeque<Queued>,
    /// Tickets of publications handed to the client, in order.
    unsent: VecDeque<(u8, Option<Ticket>)>,
    /// Tickets of written QoS 1/2 publications by packet id.
    inflight: HashMap<u16, Option<Ticket>>,
}

/// Why a publication could not be kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    /// The connection is down and the queue is full.
    #[error("not connected and the queue of {0} messages is full: message not sent")]
    QueueFull(usize),
    /// The connection is closed.
    #[error("connection closed: message not sent")]
    Closed,
}

/// A shared client connection.
pub struct Connection {
    settings: ConnectionSettings,
    inner: Mutex<Inner>,
    state: watch::Sender<LinkState>,
    room: Notify,
    wake: Notify,
    next_id: AtomicU64,
    closed: Arc<AtomicBool>,
    acks: Arc<Mutex<AckOrder>>,
    /// Client options in use (`msg.broker` of a `connect` action changes them).
    options: Mutex<ClientOptions>,
}

impl Connection {
    /// A connection that opens when the first user starts.
    pub fn new(settings: ConnectionSettings) -> Connection {
        Connection {
            options: Mutex::new(settings.client.clone()),
            settings,
            inner: Mutex::new(Inner::default()),
            state: watch::channel(LinkState::Disconnected).0,
            room: Notify::new(),
            wake: Notify::new(),
            next_id: AtomicU64::new(1),
            closed: Arc::new(AtomicBool::new(false)),
            acks: Arc::new(Mutex::new(AckOrder::default())),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The settings.
    pub fn settings(&self) -> &ConnectionSettings {
        &self.settings
    }

    /// The client options in use.
    pub fn options(&self) -> MutexGuard<'_, ClientOptions> {
        self.options.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The `connect` action of mqtt in / mqtt out: with `overrides`
    /// (`msg.broker`) the connection is reopened with changed options, which
    /// needs `force` when it is connected.
    pub async fn connect_action(
        self: &Arc<Self>,
        overrides: Option<&flowd_engine::Object>,
    ) -> Result<(), String> {
        let Some(o) = overrides else {
            self.connect();
            return Ok(());
        };
        let force = o.get("force").is_some_and(flowd_engine::Value::is_truthy);
        if self.is_connected() && !force {
            return Err("already connected".into());
        }
        let mut options = self.options().clone();
        apply_overrides(&mut options, o)?;
        // Close the current client (close message, DISCONNECT) and forget its state.
        let stop = {
            let inner = self.lock();
            inner.stop.clone()
        };
        if let Some(stop) = stop {
            self.disconnect().await;
            self.wait_until_down(CLOSE_GRACE).await;
            stop.cancel();
            let mut inner = self.lock();
            inner.client = None;
            inner.stop = None;
            inner.connected = false;
            inner.unsent.clear();
            inner.inflight.clear();
        }
        *self.options() = options;
        self.connect();
        Ok(())
    }

    /// Waits (at most `limit`) until the connection is no longer up.
    async fn wait_until_down(&self, limit: Duration) {
        let mut state = self.state();
        let _ = tokio::time::timeout(limit, async {
            while *state.borrow_and_update() == LinkState::Connected {
                if state.changed().await.is_err() {
                    break;
                }
            }
        })
        .await;
    }

    /// Watches the connection state.
    pub fn state(&self) -> watch::Receiver<LinkState> {
        self.state.subscribe()
    }

    /// True while connected.
    pub fn is_connected(&self) -> bool {
        self.lock().connected
    }

    /// A user node starts: opens the connection when auto-connect is on.
    pub fn register_user(self: &Arc<Self>) {
        if self.settings.auto_connect {
            self.connect();
        }
    }

    /// Starts connecting (no-op when already connected or connecting).
    pub fn connect(self: &Arc<Self>) {
        if self.closed.load(Ordering::SeqCst) {
            return;
        }
        let mut inner = self.lock();
        inner.wanted = true;
        if inner.client.is_some() {
            drop(inner);
            self.wake.notify_one();
            return;
        }
        let options = self.options().clone();
        let (client, events) = mqtt_client::open(&options);
        let stop = CancellationToken::new();
        inner.client = Some(client);
        inner.stop = Some(stop.clone());
        drop(inner);
        self.state.send_replace(LinkState::Connecting);
        let me = self.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = stop.cancelled() => {}
                _ = me.clone().run(events) => {}
            }
            // Unless a new client replaced this one (connect with msg.broker).
            let replaced = me.lock().stop.as_ref().is_some_and(|s| !s.is_cancelled());
            if !replaced {
                me.state.send_replace(LinkState::Disconnected);
            }
        });
    }

    /// Disconnects (publishing the close message first); the connection stays
    /// down until [`Connection::connect`].
    pub async fn disconnect(&self) {
        let client = {
            let mut inner = self.lock();
            inner.wanted = false;
            inner.client.clone()
        };
        let Some(client) = client else { return };
        self.publish_close().await;
        client.try_disconnect();
    }

    async fn publish_close(&self) {
        let Some(close) = self.settings.close.clone() else {
            return;
        };
        if !self.is_connected() {
            return;
        }
        let (tx, rx) = oneshot::channel();
        let p = Publication {
            topic: close.topic,
            payload: close.payload,
            qos: close.qos,
            retain: close.retain,
        };
        if self.submit(p, None, Some(Ticket::Notify(tx))) {
            let _ = tokio::time::timeout(CLOSE_GRACE, rx).await;
        }
    }

    /// Closes the connection for good: waits (bounded) for unacknowledged
    /// publications, publishes the close message and disconnects.
    pub async fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        let deadline = tokio::time::Instant::now() + CLOSE_GRACE;
        loop {
            let (pending, connected) = {
                let inner = self.lock();
                (
                    inner.unsent.len() + inner.inflight.len() + inner.queue.len(),
                    inner.connected,
                )
            };
            if pending == 0 || !connected || tokio::time::Instant::now() >= deadline {
                if pending > 0 {
                    tracing::warn!(
                        client = %self.settings.client.client_id,
                        pending,
                        "Closing the MQTT connection with unacknowledged messages."
                    );
                }
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.disconnect().await;
        let stop = self.lock().stop.clone();
        if let Some(stop) = stop {
            // Give the DISCONNECT a moment to be written.
            self.wait_until_down(Duration::from_millis(500)).await;
            stop.cancel();
        }
        let mut inner = self.lock();
        inner.client = None;
        inner.connected = false;
        self.room.notify_waiters();
    }

    /// Registers a subscription of a node; its publications arrive on `tx`
    /// tagged with the returned id.
    pub fn subscribe(&self, filter: &str, options: SubOptions, tx: DeliverySender) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut inner = self.lock();
        let first = !inner.subscribers.iter().any(|s| s.filter == filter);
        inner.subscribers.push(Subscriber {
            id,
            filter: filter.to_string(),
            options: options.clone(),
            tx,
            backlog: Arc::new(AtomicUsize::new(0)),
        });
        if first && inner.connected {
            if let Some(c) = &inner.client {
                c.try_subscribe(filter, &options);
            }
        }
        id
    }

    /// Removes a subscriber; unsubscribes its filter from the broker when no
    /// one else uses it (and `autoUnsubscribe` or `force`).
    pub fn unsubscribe(&self, id: u64, force: bool) {
        let mut inner = self.lock();
        let Some(pos) = inner.subscribers.iter().position(|s| s.id == id) else {
            return;
        };
        let sub = inner.subscribers.remove(pos);
        let last = !inner.subscribers.iter().any(|s| s.filter == sub.filter);
        if last && (force || self.settings.auto_unsubscribe) && inner.connected {
            if let Some(c) = &inner.client {
                c.try_unsubscribe(&sub.filter);
            }
        }
    }

    /// Hands a publication to the client, keeping its ticket in order. Call
    /// only when connected and nothing is queued.
    fn submit_locked(
        inner: &mut Inner,
        p: &Publication,
        props: Option<&OutProps>,
        ticket: Option<Ticket>,
    ) -> Result<(), Option<Ticket>> {
        let Some(client) = inner.client.clone() else {
            return Err(ticket);
        };
        inner.unsent.push_back((p.qos, ticket));
        if client.try_publish(p, props) {
            Ok(())
        } else {
            Err(inner.unsent.pop_back().and_then(|(_, t)| t))
        }
    }

    fn submit(&self, p: Publication, props: Option<OutProps>, ticket: Option<Ticket>) -> bool {
        let mut inner = self.lock();
        if !inner.connected {
            return false;
        }
        let ticket = if inner.queue.is_empty() {
            match Self::submit_locked(&mut inner, &p, props.as_ref(), ticket) {
                Ok(()) => return true,
                Err(t) => t,
            }
        } else {
            ticket
        };
        inner.queue.push_back(Queued {
            publication: p,
            props,
            ticket,
        });
        true
    }

    /// Publishes (or queues while disconnected). Waits while connected with a
    /// full queue (backpressure); fails when disconnected with a full queue.
    pub async fn publish(
        &self,
        p: Publication,
        props: Option<OutProps>,
        ticket: Option<Ticket>,
    ) -> Result<(), (PublishError, Option<Ticket>)> {
        let mut pending = Queued {
            publication: p,
            props,
            ticket,
        };
        loop {
            // The common case (connected, room) takes one lock and no waiter.
            pending = match self.try_publish(pending)? {
                None => return Ok(()),
                Some(back) => back,
            };
            let notified = self.room.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            // Room may have opened before the waiter was registered.
            pending = match self.try_publish(pending)? {
                None => return Ok(()),
                Some(back) => back,
            };
            let _ = tokio::time::timeout(Duration::from_millis(100), notified).await;
        }
    }

    /// One attempt of [`Connection::publish`]: `Ok(None)` when sent or
    /// queued, `Ok(Some(..))` (given back) when it has to wait for room.
    fn try_publish(&self, q: Queued) -> Result<Option<Queued>, (PublishError, Option<Ticket>)> {
        let Queued {
            publication,
            props,
            mut ticket,
        } = q;
        if self.closed.load(Ordering::SeqCst) {
            return Err((PublishError::Closed, ticket));
        }
        let mut inner = self.lock();
        if inner.connected && inner.queue.is_empty() {
            match Self::submit_locked(&mut inner, &publication, props.as_ref(), ticket) {
                Ok(()) => return Ok(None),
                Err(t) => ticket = t,
            }
        }
        let q = Queued {
            publication,
            props,
            ticket,
        };
        if inner.queue.len() < self.settings.queue_size {
            inner.queue.push_back(q);
            return Ok(None);
        }
        if !inner.connected {
            return Err((PublishError::QueueFull(self.settings.queue_size), q.ticket));
        }
        Ok(Some(q))
    }

    /// Moves queued publications to the client while it has room, and sends
    /// the acknowledgements that are due.
    fn flush(&self) {
        let mut inner = self.lock();
        let client = inner.client.clone();
        let mut moved = false;
        while inner.connected {
            let Some(q) = inner.queue.pop_front() else {
                break;
            };
            let Queued {
                publication,
                props,
                ticket,
            } = q;
            match Self::submit_locked(&mut inner, &publication, props.as_ref(), ticket) {
                Ok(()) => moved = true,
                Err(ticket) => {
                    inner.queue.push_front(Queued {
                        publication,
                        props,
                        ticket,
                    });
                    break;
                }
            }
        }
        drop(inner);
        if moved {
            self.room.notify_waiters();
        }
        if let Some(c) = client {
            pump_acks(&self.acks, &c);
        }
    }

    async fn complete(ticket: Option<Ticket>) {
        match ticket {
            Some(Ticket::Done(handle, msg)) => handle.done(msg).await,
            Some(Ticket::Notify(tx)) => {
                let _ = tx.send(());
            }
            Some(Ticket::Message(_)) | None => {}
        }
    }

    fn on_connected(&self) {
        {
            // Acknowledgements still due belong to the previous connection.
            let mut order = self.acks.lock().unwrap_or_else(|e| e.into_inner());
            order.generation += 1;
            order.waiting.clear();
        }
        let mut inner = self.lock();
        inner.connected = true;
        if let Some(client) = inner.client.clone() {
            let mut seen: Vec<&str> = Vec::new();
            for s in &inner.subscribers {
                if !seen.contains(&s.filter.as_str()) {
                    seen.push(&s.filter);
                    client.try_subscribe(&s.filter, &s.options);
                }
            }
        }
        if let Some(b) = self.settings.birth.clone() {
            let p = Publication {
                topic: b.topic,
                payload: b.payload,
                qos: b.qos,
                retain: b.retain,
            };
            // Ahead of anything queued while disconnected.
            let _ = Self::submit_locked(&mut inner, &p, None, None);
        }
        drop(inner);
        self.state.send_replace(LinkState::Connected);
        self.flush();
    }

    async fn on_publish(&self, received: Received) {
        let (client, targets) = {
            let inner = self.lock();
            let Some(client) = inner.client.clone() else {
                return;
            };
            let targets: Vec<(u64, DeliverySender, Arc<AtomicUsize>)> = inner
                .subscribers
                .iter()
                .filter(|s| node_red_topic_matches(&s.filter, &received.topic))
                .map(|s| (s.id, s.tx.clone(), s.backlog.clone()))
                .collect();
            (client, targets)
        };
        let qos0 = received.qos == 0;
        let slot = (received.qos > 0).then(|| {
            let mut order = self.acks.lock().unwrap_or_else(|e| e.into_inner());
            let seq = order.next_seq;
            order.next_seq += 1;
            order.waiting.push_back((seq, AckState::Waiting));
            (order.generation, seq)
        });
        let received = Arc::new(AckOnDrop {
            publication: received,
            client,
            abandoned: AtomicBool::new(false),
            closed: self.closed.clone(),
            acks: self.acks.clone(),
            slot,
        });
        for (subscription, tx, backlog) in targets {
            // QoS 0 has no acknowledgement to hold the broker back: wait
            // while the node is far behind. Nothing received is dropped.
            while qos0 && backlog.load(Ordering::SeqCst) >= QOS0_BACKLOG && !tx.is_closed() {
                tokio::time::sleep(BACKLOG_POLL).await;
            }
            backlog.fetch_add(1, Ordering::SeqCst);
            let d = Delivery {
                subscription,
                received: received.clone(),
                taken: false,
                backlog,
            };
            let _ = tx.send(d);
        }
    }

    async fn run(self: Arc<Self>, mut events: EventLoop) {
        let mut backoff = RECONNECT_MIN;
        let mut failures: u32 = 0;
        loop {
            let idle = {
                let inner = self.lock();
                // Keep polling while connected so a DISCONNECT gets written.
                !inner.wanted && !inner.connected
            };
            if idle {
                self.wake.notified().await;
                continue;
            }
            match events.poll().await {
                Ok(LinkEvent::Connected { .. }) => {
                    backoff = RECONNECT_MIN;
                    failures = 0;
                    tracing::info!(
                        client = %self.settings.client.client_id,
                        host = %self.settings.client.host,
                        port = self.settings.client.port,
                        "Connected to MQTT broker."
                    );
                    self.on_connected();
                }
                Ok(LinkEvent::Publish(r)) => self.on_publish(r).await,
                Ok(LinkEvent::PublishSent(pkid)) => {
                    let done = {
                        let mut inner = self.lock();
                        if pkid != 0 && inner.inflight.contains_key(&pkid) {
                            None // a retransmission after reconnecting
                        } else {
                            match inner.unsent.pop_front() {
                                Some((0, t)) => t,
                                Some((_, t)) => {
                                    inner.inflight.insert(pkid, t);
                                    None
                                }
                                None => None,
                            }
                        }
                    };
                    Self::complete(done).await;
                    self.flush();
                }
                Ok(LinkEvent::PublishAcked(pkid)) => {
                    let done = self.lock().inflight.remove(&pkid).flatten();
                    Self::complete(done).await;
                    self.flush();
                }
                Ok(LinkEvent::DisconnectSent) => {
                    self.lock().connected = false;
                    self.state.send_replace(LinkState::Disconnected);
                }
                // Room in the request channel may have opened for queued publications.
                Ok(LinkEvent::Other) => self.flush(),
                Err(e) => {
                    let (was_connected, wanted) = {
                        let mut inner = self.lock();
                        let was = inner.connected;
                        inner.connected = false;
                        (was, inner.wanted)
                    };
                    self.room.notify_waiters();
                    if !wanted {
                        self.state.send_replace(LinkState::Disconnected);
                        continue;
                    }
                    if was_connected {
                        tracing::warn!(
                            client = %self.settings.client.client_id,
                            error = %e,
                            "Lost the MQTT connection; reconnecting."
                        );
                        self.state.send_replace(LinkState::Disconnected);
                    } else if failures == 0 {
                        tracing::warn!(
                            client = %self.settings.client.client_id,
                            host = %self.settings.client.host,
                            port = self.settings.client.port,
                            error = %e,
                            "Cannot connect to MQTT broker; retrying."
                        );
                    } else {
                        tracing::debug!(
                            client = %self.settings.client.client_id,
                            error = %e,
                            "MQTT connection attempt failed."
                        );
                    }
                    failures += 1;
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(RECONNECT_MAX);
                    self.state.send_replace(LinkState::Connecting);
                }
            }
        }
    }
}

/// Applies `msg.broker` options (`url` or `broker`, `port`, `clientid`,
/// `username`, `password`, `keepalive`, `cleansession`, `protocolVersion`).
pub fn apply_overrides(o: &mut ClientOptions, b: &flowd_engine::Object) -> Result<(), String> {
    use flowd_engine::Value;
    let text = |k: &str| b.get(k).map(Value::to_js_string).filter(|s| !s.is_empty());
    let number = |k: &str| -> Result<Option<f64>, String> {
        match b.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => {
                let n = v.to_number();
                if n.is_finite() && n >= 0.0 && n.fract() == 0.0 {
                    Ok(Some(n))
                } else {
                    Err(format!("invalid msg.broker.{k}"))
                }
            }
        }
    };
    if let Some(url) = text("url").or_else(|| text("broker")) {
        let rest = match url.split_once("://") {
            Some(("mqtt" | "tcp", rest)) => {
                o.websocket = None;
                rest.to_string()
            }
            Some(("ws", rest)) => {
                o.websocket = Some(rest.find('/').map_or("/", |i| &rest[i..]).to_string());
                rest.to_string()
            }
            Some((scheme, _)) => return Err(format!("unsupported URL scheme \"{scheme}\"")),
            None => url.clone(),
        };
        let authority = rest.split('/').next().unwrap_or("");
        match authority.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') => {
                o.host = h.trim_start_matches('[').trim_end_matches(']').to_string();
                o.port = p
                    .parse()
                    .map_err(|_| format!("invalid port in \"{url}\""))?;
            }
            _ => o.host = authority.to_string(),
        }
    }
    if let Some(p) = number("port")? {
        o.port = u16::try_from(p as u64)
            .ok()
            .filter(|p| *p > 0)
            .ok_or("invalid msg.broker.port")?;
    }
    if let Some(id) = text("clientid") {
        o.client_id = id;
    }
    if let Some(u) = text("username") {
        o.credentials = Some((u, text("password").unwrap_or_default()));
    }
    if let Some(k) = number("keepalive")? {
        o.keepalive = u16::try_from(k as u64).map_err(|_| "invalid msg.broker.keepalive")?;
    }
    if let Some(c) = b.get("cleansession") {
        o.clean = c.is_truthy();
    }
    match number("protocolVersion")?.map(|v| v as u64) {
        None => {}
        Some(3 | 4) => o.protocol = super::mqtt_client::Protocol::V4,
        Some(5) => o.protocol = super::mqtt_client::Protocol::V5,
        Some(_) => return Err("invalid msg.broker.protocolVersion".into()),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use flowd_engine::{Object, Value};

    fn broker(url: &str) -> Object {
        let mut o = Object::new();
        o.insert("broker", Value::str(url));
        o
    }

    #[test]
    fn msg_broker_urls_set_host_port_and_websocket() {
        let mut o = ClientOptions::new("a", 1883, "c");
        apply_overrides(&mut o, &broker("ws://h:9001/mqtt")).unwrap();
        assert_eq!(
            (o.host.as_str(), o.port, o.websocket.as_deref()),
            ("h", 9001, Some("/mqtt"))
        );
        apply_overrides(&mut o, &broker("mqtt://k:1884")).unwrap();
        assert_eq!(
            (o.host.as_str(), o.port, o.websocket.as_deref()),
            ("k", 1884, None)
        );
        let e = apply_overrides(&mut o, &broker("http://x:80")).unwrap_err();
        assert!(e.contains("scheme"), "{e}");
    }
}
