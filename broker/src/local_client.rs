//! In-process clients: the same session, routing, QoS flows, limits and
//! ACL as a network client, without TCP or encoding. A local client speaks
//! MQTT 5 semantics to the router through the same requests a network
//! connection sends.
//!
//! # How to use it
//!
//! ```no_run
//! # async fn demo(broker: &flowd_broker::Broker) -> Result<(), flowd_broker::LocalError> {
//! use flowd_broker::{LocalOptions, LocalPublish, QoS, SubscriptionOptions};
//! // Connect: a persistent session (kept 1 hour while the client is gone)
//! // that acknowledges only what the application says it processed.
//! let opts = LocalOptions {
//!     client_id: "flow-node-1".into(),
//!     clean_start: false,
//!     session_expiry: 3600,
//!     receive_maximum: 10, // at most 10 unacknowledged QoS 1/2 messages
//!     manual_acks: true,
//!     ..Default::default()
//! };
//! let (client, mut rx) = broker.connect_local(opts).await?;
//! // Subscribe: one reason code per filter (granted QoS, or >= 0x80).
//! let sub = SubscriptionOptions { qos: QoS::ExactlyOnce, ..Default::default() };
//! let codes = client.subscribe(vec![("sensors/#".into(), sub)], None).await?;
//! // Receive, process, then acknowledge (PUBACK, or PUBREC for QoS 2).
//! while let Some(msg) = rx.recv().await {
//!     println!("{} {:?}", msg.topic, msg.payload);
//!     client.ack(&msg).await?;
//!     # break;
//! }
//! // Publish: returns at PUBACK (QoS 1) / PUBCOMP (QoS 2).
//! client.publish(LocalPublish {
//!     topic: "out/t".into(),
//!     payload: "21.5".into(),
//!     qos: QoS::AtLeastOnce,
//!     ..Default::default()
//! }).await?;
//! // Disconnect (true: publish the will, as an abnormal close would).
//! client.disconnect(false).await;
//! # let _ = codes; Ok(()) }
//! ```
//!
//! - [`crate::Broker::connect_local`]`(LocalOptions)` returns a cloneable
//!   [`LocalClient`] (publish, subscribe, unsubscribe, ack, disconnect)
//!   and a [`LocalReceiver`] for incoming messages.
//! - Acknowledgements: by default [`LocalReceiver::recv`] acknowledges a
//!   QoS 1/2 message as it hands it out. With
//!   [`LocalOptions::manual_acks`] it does not: the application calls
//!   [`LocalClient::ack`] (or the non-blocking [`LocalClient::try_ack`])
//!   once it has processed the message. Until then the message stays in
//!   flight: at most [`LocalOptions::receive_maximum`] are outstanding
//!   (the rest wait in the session's queue, up to the broker's queue
//!   limit), and if the client goes away first, a persistent session gets
//!   it again (with `dup` set) when it reconnects. For QoS 2 the ack sends
//!   PUBREC; PUBREL/PUBCOMP follow by themselves, so the message is
//!   handed out once.
//! - Disconnect: [`LocalClient::disconnect`] ends the connection normally
//!   (no will unless asked for); dropping every `LocalClient` handle
//!   without it is an abnormal close (the will is published), as a
//!   dropped socket. A session with `session_expiry > 0` keeps its
//!   subscriptions and queues QoS 1/2 messages while the client is gone;
//!   connect again with the same `client_id` and `clean_start: false`.
//! - A consumer that stops reading fills its in-flight window and then
//!   its queue, like a slow TCP client; QoS 0 messages beyond the broker's
//!   QoS 0 queue limit are dropped.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::codec::{
    Ack, AckKind, Connect, LastWill, Properties, ProtocolVersion, Publish, QoS, Subscribe,
    SubscriptionOptions, Unsubscribe,
};
use crate::connection::ConnContext;
use crate::message::{CloseReason, ConnId, Delivery, Inbound, Outbox, Outgoing};
use crate::topic::valid_topic_name;

/// v5 reason code: packet too large.
const PACKET_TOO_LARGE: u8 = 0x95;

/// How long to wait for the router to accept a local connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LocalError {
    #[error("the local client is disconnected (taken over, or the broker stopped)")]
    Disconnected,
    #[error("invalid topic name '{0}'")]
    InvalidTopic(String),
    #[error("refused by the broker with reason code {0:#04x}")]
    Refused(u8),
    #[error("no packet identifier free")]
    NoPacketId,
}

/// How to connect an in-process client (MQTT 5 CONNECT semantics).
#[derive(Debug, Clone, Default)]
pub struct LocalOptions {
    /// Empty: the broker assigns one (see [`LocalClient::client_id`]).
    pub client_id: String,
    pub clean_start: bool,
    /// Seconds the session outlives the client; `u32::MAX` = never.
    pub session_expiry: u32,
    /// In-flight QoS 1/2 messages towards this client (0 = broker limit).
    pub receive_maximum: u16,
    pub will: Option<LastWill>,
    /// Used by the ACL.
    pub username: Option<String>,
    /// QoS 1/2 messages are acknowledged by [`LocalClient::ack`] /
    /// [`LocalClient::try_ack`], not when [`LocalReceiver::recv`] hands
    /// them out.
    pub manual_acks: bool,
}

/// The v5 properties an application message carries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageProperties {
    pub payload_format_indicator: Option<u8>,
    pub message_expiry_interval: Option<u32>,
    pub content_type: Option<String>,
    pub response_topic: Option<String>,
    pub correlation_data: Option<Bytes>,
    /// In order, duplicates kept.
    pub user_properties: Vec<(String, String)>,
    /// Only on received messages: the matching subscriptions' ids.
    pub subscription_identifiers: Vec<u32>,
}

impl MessageProperties {
    fn into_properties(self) -> Properties {
        Properties {
            payload_format_indicator: self.payload_format_indicator,
            message_expiry_interval: self.message_expiry_interval,
            content_type: self.content_type,
            response_topic: self.response_topic,
            correlation_data: self.correlation_data,
            user_properties: self.user_properties,
            ..Properties::default()
        }
    }

    fn from_properties(p: &Properties) -> MessageProperties {
        MessageProperties {
            payload_format_indicator: p.payload_format_indicator,
            message_expiry_interval: p.message_expiry_interval,
            content_type: p.content_type.clone(),
            response_topic: p.response_topic.clone(),
            correlation_data: p.correlation_data.clone(),
            user_properties: p.user_properties.clone(),
            subscription_identifiers: p.subscription_identifiers.clone(),
        }
    }
}

/// A message to publish.
#[derive(Debug, Clone, Default)]
pub struct LocalPublish {
    pub topic: String,
    pub payload: Bytes,
    pub qos: QoS,
    pub retain: bool,
    pub properties: MessageProperties,
}

/// A message received by a local client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalMessage {
    pub topic: Arc<str>,
    pub payload: Bytes,
    pub qos: QoS,
    pub retain: bool,
    /// Sent before, on an earlier connection of this session.
    pub dup: bool,
    pub properties: MessageProperties,
    /// The packet id of a QoS 1/2 delivery (0 for QoS 0).
    pub pkid: u16,
    /// Which delivery this is, for [`LocalClient::ack`].
    delivery: DeliveryRef,
}

/// The connection a message came on and its number there: an ack for a
/// message of an earlier connection, or one acked already (whose packet
/// id may be in use again), must not acknowledge another message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct DeliveryRef {
    conn: ConnId,
    serial: u64,
}

/// QoS 1/2 messages handed out with manual acks and not acknowledged yet:
/// packet id -> delivery serial.
type Unacked = Arc<Mutex<HashMap<u16, u64>>>;

/// Requests that reach the router in the order the client made them,
/// forwarded by the client's driver task: acknowledgements and the close
/// (an ack made before `disconnect` is not lost behind it).
enum Control {
    Ack(AckKind, u16),
    Close {
        reason: CloseReason,
        done: Option<oneshot::Sender<()>>,
    },
}

enum Pending {
    Publish(oneshot::Sender<Result<(), LocalError>>),
    Codes(oneshot::Sender<Vec<u8>>),
}

struct Inner {
    router: mpsc::Sender<Inbound>,
    conn: ConnId,
    client: Arc<str>,
    pending: Mutex<HashMap<u16, Pending>>,
    next_pkid: AtomicU16,
    closed: CancellationToken,
    /// CONNACK's session present flag.
    session_present: bool,
    control: mpsc::UnboundedSender<Control>,
    unacked: Unacked,
    /// The broker's maximum packet size (what a network client may send).
    max_packet: usize,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Every handle gone without disconnect(): like a dropped socket.
        // (Through the driver: never lost to a full router channel.)
        if !self.closed.is_cancelled() {
            let _ = self.control.send(Control::Close {
                reason: CloseReason::Abnormal,
                done: None,
            });
        }
    }
}

/// A handle to an in-process client; clones share the connection.
#[derive(Clone)]
pub struct LocalClient {
    inner: Arc<Inner>,
}

/// Incoming messages of a local client.
pub struct LocalReceiver {
    rx: mpsc::UnboundedReceiver<Delivery>,
    router: mpsc::Sender<Inbound>,
    conn: ConnId,
    client: Arc<str>,
    queued_qos0: Arc<AtomicUsize>,
    manual_acks: bool,
    unacked: Unacked,
    serial: u64,
}

pub(crate) async fn connect(
    ctx: &ConnContext,
    opts: LocalOptions,
) -> Result<(LocalClient, LocalReceiver), LocalError> {
    let conn = ctx.conn_id();
    let client_id = if opts.client_id.is_empty() {
        format!("local-{conn}")
    } else {
        opts.client_id
    };
    let (outbox, mut outbox_rx) = Outbox::new();
    let mut properties = Properties {
        session_expiry_interval: Some(opts.session_expiry),
        ..Properties::default()
    };
    if opts.receive_maximum > 0 {
        properties.receive_maximum = Some(opts.receive_maximum);
    }
    let connect = Connect {
        version: ProtocolVersion::V5,
        clean_start: opts.clean_start,
        keep_alive: 0,
        properties,
        client_id: client_id.clone(),
        will: opts.will,
        username: opts.username.clone(),
        password: None,
    };
    let queued_qos0 = outbox.queued_qos0.clone();
    let req = Inbound::Connect {
        conn,
        connect: Box::new(connect),
        outbox,
        username: opts.username,
    };
    ctx.router
        .send(req)
        .await
        .map_err(|_| LocalError::Disconnected)?;
    let session_present = match tokio::time::timeout(CONNECT_TIMEOUT, outbox_rx.recv()).await {
        Ok(Some(Outgoing::ConnAck { connack, .. })) if connack.code == 0 => connack.session_present,
        Ok(Some(Outgoing::ConnAck { connack, .. })) => {
            return Err(LocalError::Refused(connack.code))
        }
        _ => return Err(LocalError::Disconnected),
    };
    let client: Arc<str> = client_id.into();
    let (control, control_rx) = mpsc::unbounded_channel();
    let unacked = Unacked::default();
    let inner = Arc::new(Inner {
        router: ctx.router.clone(),
        conn,
        client: client.clone(),
        pending: Mutex::new(HashMap::new()),
        next_pkid: AtomicU16::new(1),
        closed: CancellationToken::new(),
        session_present,
        control,
        unacked: unacked.clone(),
        max_packet: ctx.config.limits.max_packet_size as usize,
    });
    let (msg_tx, msg_rx) = mpsc::unbounded_channel();
    tokio::spawn(drive(
        Arc::downgrade(&inner),
        outbox_rx,
        control_rx,
        msg_tx,
        ctx.router.clone(),
        conn,
        client.clone(),
    ));
    let receiver = LocalReceiver {
        rx: msg_rx,
        router: ctx.router.clone(),
        conn,
        client,
        queued_qos0,
        manual_acks: opts.manual_acks,
        unacked,
        serial: 0,
    };
    Ok((LocalClient { inner }, receiver))
}

/// Turns the router's answers into resolved requests and received
/// messages, and forwards the client's [`Control`] requests in order.
async fn drive(
    inner: std::sync::Weak<Inner>,
    mut rx: crate::message::OutboxRx,
    mut control: mpsc::UnboundedReceiver<Control>,
    msgs: mpsc::UnboundedSender<Delivery>,
    router: mpsc::Sender<Inbound>,
    conn: ConnId,
    client: Arc<str>,
) {
    let resolve = |pkid: u16, result: Result<(), LocalError>, codes: Vec<u8>| {
        let Some(inner) = inner.upgrade() else { return };
        let pending = inner.pending.lock().ok().and_then(|mut p| p.remove(&pkid));
        match pending {
            Some(Pending::Publish(tx)) => {
                let _ = tx.send(result);
            }
            Some(Pending::Codes(tx)) => {
                let _ = tx.send(codes);
            }
            None => {}
        }
    };
    let mut control_open = true;
    loop {
        let out = tokio::select! {
            out = rx.recv() => match out {
                Some(out) => out,
                None => break,
            },
            ctl = control.recv(), if control_open => {
                match ctl {
                    Some(Control::Ack(kind, pkid)) => {
                        let (client, ack) = (client.clone(), Ack::new(kind, pkid));
                        let _ = router.send(Inbound::Ack { conn, client, ack }).await;
                    }
                    Some(Control::Close { reason, done }) => {
                        let closed = Inbound::Closed {
                            conn,
                            client: client.clone(),
                            reason,
                            session_expiry: None,
                        };
                        let _ = router.send(closed).await;
                        if let Some(done) = done {
                            let _ = done.send(());
                        }
                    }
                    None => control_open = false,
                }
                continue;
            }
        };
        match out {
            Outgoing::Publish(d) => {
                let _ = msgs.send(d);
            }
            Outgoing::Ack(a) => match a.kind {
                AckKind::PubAck | AckKind::PubComp => {
                    let r = if a.code >= 0x80 {
                        Err(LocalError::Refused(a.code))
                    } else {
                        Ok(())
                    };
                    resolve(a.pkid, r, Vec::new());
                }
                AckKind::PubRec if a.code >= 0x80 => {
                    resolve(a.pkid, Err(LocalError::Refused(a.code)), Vec::new())
                }
                AckKind::PubRec => {
                    let ack = Ack::new(AckKind::PubRel, a.pkid);
                    let _ = router
                        .send(Inbound::Ack {
                            conn,
                            client: client.clone(),
                            ack,
                        })
                        .await;
                }
                AckKind::PubRel => {
                    let ack = Ack::new(AckKind::PubComp, a.pkid);
                    let _ = router
                        .send(Inbound::Ack {
                            conn,
                            client: client.clone(),
                            ack,
                        })
                        .await;
                }
            },
            Outgoing::SubAck(s) => resolve(s.pkid, Ok(()), s.codes),
            Outgoing::UnsubAck(u) => resolve(u.pkid, Ok(()), u.codes),
            Outgoing::Disconnect(_) => break,
            Outgoing::ConnAck { .. } | Outgoing::PingResp => {}
        }
    }
    if let Some(inner) = inner.upgrade() {
        inner.closed.cancel();
        if let Ok(mut p) = inner.pending.lock() {
            p.clear();
        }
    }
}

impl LocalClient {
    /// The client id (assigned by the broker if it was empty).
    pub fn client_id(&self) -> &str {
        &self.inner.client
    }

    /// Whether the broker resumed an existing session at connect (CONNACK's
    /// session present): its subscriptions are in place and queued
    /// messages follow.
    pub fn session_present(&self) -> bool {
        self.inner.session_present
    }

    pub fn is_connected(&self) -> bool {
        !self.inner.closed.is_cancelled()
    }

    fn register(&self, pending: Pending) -> Result<u16, LocalError> {
        let mut map = self
            .inner
            .pending
            .lock()
            .map_err(|_| LocalError::Disconnected)?;
        for _ in 0..=u16::MAX {
            let id = self.inner.next_pkid.fetch_add(1, Ordering::Relaxed);
            if id != 0 && !map.contains_key(&id) {
                map.insert(id, pending);
                return Ok(id);
            }
        }
        Err(LocalError::NoPacketId)
    }

    async fn send(&self, req: Inbound) -> Result<(), LocalError> {
        if self.inner.closed.is_cancelled() {
            return Err(LocalError::Disconnected);
        }
        self.inner
            .router
            .send(req)
            .await
            .map_err(|_| LocalError::Disconnected)
    }

    /// Publishes; returns when the broker has taken responsibility for the
    /// message: at once for QoS 0, at PUBACK for QoS 1, at PUBCOMP for QoS 2.
    /// `Err(Refused(code))`: a v5 failure reason code, e.g. 0x87 (the ACL
    /// refused the topic) or 0x95 (topic and payload larger than the
    /// broker's maximum packet size).
    pub async fn publish(&self, msg: LocalPublish) -> Result<(), LocalError> {
        if !valid_topic_name(&msg.topic) {
            return Err(LocalError::InvalidTopic(msg.topic));
        }
        // What would not fit in a network client's PUBLISH (the broker's
        // maximum packet size) is refused: 0x95, packet too large.
        if msg.payload.len() + msg.topic.len() > self.inner.max_packet {
            return Err(LocalError::Refused(PACKET_TOO_LARGE));
        }
        let (tx, rx) = oneshot::channel();
        let pkid = if msg.qos == QoS::AtMostOnce {
            0
        } else {
            self.register(Pending::Publish(tx))?
        };
        let publish = Publish {
            dup: false,
            qos: msg.qos,
            retain: msg.retain,
            topic: msg.topic,
            pkid,
            properties: msg.properties.into_properties(),
            payload: msg.payload,
        };
        self.send(Inbound::Publish {
            conn: self.inner.conn,
            client: self.inner.client.clone(),
            publish,
        })
        .await?;
        if pkid == 0 {
            return Ok(());
        }
        rx.await.map_err(|_| LocalError::Disconnected)?
    }

    /// Subscribes; returns the SUBACK reason codes, one per filter (the
    /// granted QoS, or a failure code >= 0x80).
    pub async fn subscribe(
        &self,
        filters: Vec<(String, SubscriptionOptions)>,
        subscription_id: Option<u32>,
    ) -> Result<Vec<u8>, LocalError> {
        let (tx, rx) = oneshot::channel();
        let pkid = self.register(Pending::Codes(tx))?;
        let mut properties = Properties::default();
        properties.subscription_identifiers.extend(subscription_id);
        let subscribe = Subscribe {
            pkid,
            properties,
            filters,
        };
        self.send(Inbound::Subscribe {
            conn: self.inner.conn,
            client: self.inner.client.clone(),
            subscribe,
        })
        .await?;
        rx.await.map_err(|_| LocalError::Disconnected)
    }

    /// Unsubscribes; returns the UNSUBACK reason codes (0x11: there was no
    /// such subscription).
    pub async fn unsubscribe(&self, filters: Vec<String>) -> Result<Vec<u8>, LocalError> {
        let (tx, rx) = oneshot::channel();
        let pkid = self.register(Pending::Codes(tx))?;
        let unsubscribe = Unsubscribe {
            pkid,
            properties: Properties::default(),
            filters,
        };
        let req = Inbound::Unsubscribe {
            conn: self.inner.conn,
            client: self.inner.client.clone(),
            unsubscribe,
        };
        self.send(req).await?;
        rx.await.map_err(|_| LocalError::Disconnected)
    }

    /// Acknowledges a message received with [`LocalOptions::manual_acks`]:
    /// PUBACK for QoS 1, PUBREC for QoS 2 (PUBREL and PUBCOMP follow by
    /// themselves). Until then the message counts against the in-flight
    /// window and is delivered again (`dup`) if the session resumes on a
    /// new connection. A no-op for QoS 0, for a message acknowledged
    /// already, without manual acks, or from an earlier connection (that
    /// one comes again anyway). Never waits; see [`LocalClient::try_ack`].
    pub async fn ack(&self, msg: &LocalMessage) -> Result<(), LocalError> {
        self.try_ack(msg)
    }

    /// [`LocalClient::ack`] without `async`, e.g. from a `Drop`. It never
    /// fails for lack of room: the ack is queued for the client's driver,
    /// which forwards acks and the close in the order they were made.
    pub fn try_ack(&self, msg: &LocalMessage) -> Result<(), LocalError> {
        let kind = match msg.qos {
            QoS::AtMostOnce => return Ok(()),
            QoS::AtLeastOnce => AckKind::PubAck,
            QoS::ExactlyOnce => AckKind::PubRec,
        };
        if msg.delivery.conn != self.inner.conn {
            return Ok(());
        }
        if self.inner.closed.is_cancelled() {
            return Err(LocalError::Disconnected);
        }
        let ours = {
            let mut unacked = self
                .inner
                .unacked
                .lock()
                .map_err(|_| LocalError::Disconnected)?;
            let ours = unacked.get(&msg.pkid) == Some(&msg.delivery.serial);
            if ours {
                unacked.remove(&msg.pkid);
            }
            ours
        };
        if !ours {
            return Ok(());
        }
        self.inner
            .control
            .send(Control::Ack(kind, msg.pkid))
            .map_err(|_| LocalError::Disconnected)
    }

    /// How many QoS 1/2 messages handed out with manual acks wait for
    /// their ack.
    pub fn unacked(&self) -> usize {
        self.inner.unacked.lock().map_or(0, |u| u.len())
    }

    /// Disconnects (v5 DISCONNECT: reason 0, or 0x04 to publish the will).
    /// Returns once the broker has the close: acks made before it were
    /// applied first, and a reconnect with the same client id after it
    /// resumes the session (no takeover).
    pub async fn disconnect(&self, publish_will: bool) {
        if self.inner.closed.is_cancelled() {
            return;
        }
        self.inner.closed.cancel();
        let reason = if publish_will {
            CloseReason::Abnormal
        } else {
            CloseReason::Normal
        };
        let (done, applied) = oneshot::channel();
        let close = Control::Close {
            reason,
            done: Some(done),
        };
        if self.inner.control.send(close).is_ok() {
            let _ = applied.await;
        }
    }
}

impl LocalReceiver {
    /// The next message. Without [`LocalOptions::manual_acks`] it is
    /// acknowledged to the broker as it is handed out (PUBACK, or PUBREC
    /// and then PUBCOMP); with them, by [`LocalClient::ack`]. `None` once
    /// the client is disconnected.
    pub async fn recv(&mut self) -> Option<LocalMessage> {
        let d = self.rx.recv().await?;
        let kind = match d.qos {
            QoS::AtMostOnce => {
                Outbox::qos0_taken(&self.queued_qos0);
                None
            }
            QoS::AtLeastOnce => Some(AckKind::PubAck),
            QoS::ExactlyOnce => Some(AckKind::PubRec),
        };
        self.serial += 1;
        let delivery = DeliveryRef {
            conn: self.conn,
            serial: self.serial,
        };
        if kind.is_some() && self.manual_acks {
            if let Ok(mut unacked) = self.unacked.lock() {
                unacked.insert(d.pkid, self.serial);
            }
        } else if let Some(kind) = kind {
            let ack = Inbound::Ack {
                conn: self.conn,
                client: self.client.clone(),
                ack: Ack::new(kind, d.pkid),
            };
            let _ = self.router.send(ack).await;
        }
        let mut properties = MessageProperties::from_properties(&d.message.properties);
        properties.subscription_identifiers = d.subscription_ids;
        // The expiry interval left, as a network client would be told.
        if let Some(at) = d.message.expires_at {
            let left = at.saturating_duration_since(std::time::Instant::now());
            properties.message_expiry_interval = Some(left.as_secs_f64().ceil() as u32);
        }
        Some(LocalMessage {
            topic: d.message.topic.clone(),
            payload: d.message.payload.clone(),
            qos: d.qos,
            retain: d.retain,
            dup: d.dup,
            properties,
            pkid: d.pkid,
            delivery,
        })
    }
}
