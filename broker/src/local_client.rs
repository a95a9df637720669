//! In-process clients: the same session, routing, QoS flows, limits and
//! ACL as a network client, without TCP or encoding. A local client speaks
//! MQTT 5 semantics to the router through the same requests a network
//! connection sends.
//!
//! [`crate::Broker::connect_local`] returns a cloneable [`LocalClient`]
//! (publish, subscribe, unsubscribe, disconnect) and a [`LocalReceiver`]
//! for incoming messages. A QoS 1/2 message stays in flight until it is
//! taken with [`LocalReceiver::recv`]: a consumer that stops reading fills
//! its in-flight window and then its queue, like a slow TCP client.

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
    pub dup: bool,
    pub properties: MessageProperties,
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
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Every handle gone without disconnect(): like a dropped socket.
        if !self.closed.is_cancelled() {
            let closed = Inbound::Closed {
                conn: self.conn,
                client: self.client.clone(),
                reason: CloseReason::Abnormal,
                session_expiry: None,
            };
            let _ = self.router.try_send(closed);
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
    match tokio::time::timeout(CONNECT_TIMEOUT, outbox_rx.recv()).await {
        Ok(Some(Outgoing::ConnAck { connack, .. })) if connack.code == 0 => {}
        Ok(Some(Outgoing::ConnAck { connack, .. })) => {
            return Err(LocalError::Refused(connack.code))
        }
        _ => return Err(LocalError::Disconnected),
    }
    let client: Arc<str> = client_id.into();
    let inner = Arc::new(Inner {
        router: ctx.router.clone(),
        conn,
        client: client.clone(),
        pending: Mutex::new(HashMap::new()),
        next_pkid: AtomicU16::new(1),
        closed: CancellationToken::new(),
    });
    let (msg_tx, msg_rx) = mpsc::unbounded_channel();
    tokio::spawn(drive(
        Arc::downgrade(&inner),
        outbox_rx,
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
    };
    Ok((LocalClient { inner }, receiver))
}

/// Turns the router's answers into resolved requests and received messages.
async fn drive(
    inner: std::sync::Weak<Inner>,
    mut rx: crate::message::OutboxRx,
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
    while let Some(out) = rx.recv().await {
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
    pub async fn publish(&self, msg: LocalPublish) -> Result<(), LocalError> {
        if !valid_topic_name(&msg.topic) {
            return Err(LocalError::InvalidTopic(msg.topic));
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

    /// Disconnects (v5 DISCONNECT: reason 0, or 0x04 to publish the will).
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
        let closed = Inbound::Closed {
            conn: self.inner.conn,
            client: self.inner.client.clone(),
            reason,
            session_expiry: None,
        };
        let _ = self.inner.router.send(closed).await;
    }
}

impl LocalReceiver {
    /// The next message, acknowledging it to the broker (PUBACK, or PUBREC
    /// and then PUBCOMP). `None` once the client is disconnected.
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
        if let Some(kind) = kind {
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
        })
    }
}
