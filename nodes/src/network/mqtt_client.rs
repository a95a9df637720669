//! flowd's MQTT 3.1.1 / 5 client, on the packet codec of flowd's own broker.
//!
//! [`open`] gives a [`Client`] handle (cheap to clone, never blocks: every
//! call queues a request) and the [`EventLoop`] that owns the connection.
//! The event loop batches: every request waiting when the socket can be
//! written goes out in one write, and `TCP_NODELAY` is set, so a burst
//! costs one system call and a lone message leaves at once.

use super::mqtt_message::Publication;
use bytes::Bytes;
use flowd_broker::codec::{self, Properties, ProtocolVersion, QoS, SubscriptionOptions};
use flowd_engine::value::Object;
use flowd_engine::Value;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, RwLock};
use tokio::sync::mpsc;

pub use super::mqtt_event_loop::EventLoop;

/// Publications queued between the clients and the event loop.
pub const REQUEST_CHANNEL_CAPACITY: usize = 256;
/// Acknowledgements, subscriptions and disconnects queued for the event loop.
const CONTROL_CHANNEL_CAPACITY: usize = 1024;

/// The broker running in this process, if any: its MQTT listener address
/// and the connector for in-process connections.
static EMBEDDED_BROKER: RwLock<Option<(SocketAddr, flowd_broker::InProcessConnector)>> =
    RwLock::new(None);

/// Declares the broker running in this process: a client whose host and
/// port name its MQTT listener (without TLS) connects in-process instead
/// of over TCP, with the same protocol and the same semantics.
pub fn set_embedded_broker(listener: SocketAddr, connector: flowd_broker::InProcessConnector) {
    *EMBEDDED_BROKER.write().unwrap_or_else(|e| e.into_inner()) = Some((listener, connector));
}

/// Forgets the broker declared with [`set_embedded_broker`] (it stopped).
pub fn clear_embedded_broker() {
    *EMBEDDED_BROKER.write().unwrap_or_else(|e| e.into_inner()) = None;
}

/// The in-process connector for `host:port`, when it names the embedded broker.
pub(super) fn embedded_broker_for(
    host: &str,
    port: u16,
) -> Option<flowd_broker::InProcessConnector> {
    let guard = EMBEDDED_BROKER.read().unwrap_or_else(|e| e.into_inner());
    let (addr, connector) = guard.as_ref()?;
    if addr.port() != port {
        return None;
    }
    // Only where a TCP connection would reach that listener too.
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let listener = addr.ip();
    let same_host = match host.parse::<IpAddr>() {
        Ok(ip) => ip == listener || (listener.is_unspecified() && ip.is_loopback()),
        Err(_) => {
            host.eq_ignore_ascii_case("localhost")
                && (listener.is_loopback() || listener.is_unspecified())
        }
    };
    same_host.then(|| connector.clone())
}

/// MQTT protocol version of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// MQTT 3.1.1 (`protocolVersion` 3 and 4).
    V4,
    /// MQTT 5.
    V5,
}

impl Protocol {
    /// The codec's protocol version.
    pub fn version(self) -> ProtocolVersion {
        match self {
            Protocol::V4 => ProtocolVersion::V311,
            Protocol::V5 => ProtocolVersion::V5,
        }
    }
}

/// A message registered with the broker or published on (dis)connect.
#[derive(Debug, Clone, PartialEq)]
pub struct Announcement {
    /// Topic (never empty).
    pub topic: String,
    /// Payload bytes.
    pub payload: Bytes,
    /// QoS 0..2.
    pub qos: u8,
    /// Retain flag.
    pub retain: bool,
}

/// Everything needed to open the connection.
#[derive(Clone)]
pub struct ClientOptions {
    /// Host name or address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Client identifier.
    pub client_id: String,
    /// Protocol version.
    pub protocol: Protocol,
    /// Keep-alive in seconds (0 = off).
    pub keepalive: u16,
    /// Clean session (v3.1.1) / clean start (v5).
    pub clean: bool,
    /// v5 session expiry interval in seconds.
    pub session_expiry: Option<u32>,
    /// v5 CONNECT user properties.
    pub user_props: Vec<(String, String)>,
    /// Username and password.
    pub credentials: Option<(String, String)>,
    /// Last will.
    pub will: Option<Announcement>,
    /// TLS transport (rustls settings), when set.
    pub tls: Option<Arc<tokio_rustls::rustls::ClientConfig>>,
    /// MQTT over WebSocket on this URL path (`ws://` / `wss://` URLs), when set.
    pub websocket: Option<String>,
}

impl ClientOptions {
    /// Options for `host:port` with the defaults of a plain client: MQTT
    /// 3.1.1, keep-alive 60 s, clean session, no credentials, will or TLS.
    pub fn new(host: impl Into<String>, port: u16, client_id: impl Into<String>) -> ClientOptions {
        ClientOptions {
            host: host.into(),
            port,
            client_id: client_id.into(),
            protocol: Protocol::V4,
            keepalive: 60,
            clean: true,
            session_expiry: None,
            user_props: Vec::new(),
            credentials: None,
            will: None,
            tls: None,
            websocket: None,
        }
    }
}

/// MQTT 5 publish properties set by `mqtt out`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OutProps {
    /// Response topic.
    pub response_topic: Option<String>,
    /// Correlation data.
    pub correlation_data: Option<Bytes>,
    /// Content type.
    pub content_type: Option<String>,
    /// Message expiry interval (seconds).
    pub message_expiry: Option<u32>,
    /// Payload format indicator.
    pub payload_format: Option<u8>,
    /// User properties.
    pub user_props: Vec<(String, String)>,
}

/// One subscription as sent to the broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubOptions {
    /// Maximum QoS.
    pub qos: u8,
    /// v5 no-local.
    pub nl: bool,
    /// v5 retain-as-published.
    pub rap: bool,
    /// v5 retain handling (0, 1, 2).
    pub rh: u8,
}

/// A received publication, with what is needed to acknowledge it.
pub struct Received {
    /// Topic.
    pub topic: String,
    /// Payload bytes.
    pub payload: Bytes,
    /// Delivered QoS.
    pub qos: u8,
    /// Retain flag as delivered.
    pub retain: bool,
    /// v5 properties as message fields (`responseTopic`, `userProperties`, ...).
    pub props: Vec<(&'static str, Value)>,
    /// v5 content type, if any.
    pub content_type: Option<String>,
    /// What the acknowledgement needs (taken when acknowledged; `None` for QoS 0).
    pub packet: Option<RawPublish>,
}

/// The identity of a received QoS 1/2 publication, kept for its acknowledgement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawPublish {
    /// Packet identifier.
    pub pkid: u16,
    /// QoS 1 (PUBACK) or 2 (PUBREC).
    pub qos: u8,
}

impl RawPublish {
    /// QoS of the received packet.
    pub fn qos(&self) -> u8 {
        self.qos
    }
}

/// What the event loop reports, reduced to what the connection needs.
#[derive(Debug)]
pub enum LinkEvent {
    /// The broker accepted the connection.
    Connected {
        /// The broker kept a session.
        session_present: bool,
    },
    /// A publication arrived.
    Publish(Received),
    /// A publication was written (packet id; 0 for QoS 0).
    PublishSent(u16),
    /// A QoS 1/2 publication was acknowledged (PUBACK / PUBCOMP).
    PublishAcked(u16),
    /// A DISCONNECT was written and the connection closed.
    DisconnectSent,
    /// Anything else.
    Other,
}

impl std::fmt::Debug for Received {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Received")
            .field("topic", &self.topic)
            .field("qos", &self.qos)
            .field("retain", &self.retain)
            .field("bytes", &self.payload.len())
            .finish()
    }
}

/// A request for the event loop other than a publication.
#[derive(Debug)]
pub(super) enum Control {
    /// Acknowledge a received publication.
    Ack(RawPublish),
    /// Subscribe to one filter.
    Subscribe(String, SubscriptionOptions),
    /// Unsubscribe one filter.
    Unsubscribe(String),
    /// Send DISCONNECT and close.
    Disconnect,
}

/// A client handle. Cheap to clone; every call only queues a request.
#[derive(Clone)]
pub struct Client {
    publications: mpsc::Sender<codec::Publish>,
    controls: mpsc::Sender<Control>,
    v5: bool,
}

/// Opens a client and its event loop (nothing connects until the loop is polled).
pub fn open(o: &ClientOptions) -> (Client, EventLoop) {
    let (publications, publication_rx) = mpsc::channel(REQUEST_CHANNEL_CAPACITY);
    let (controls, control_rx) = mpsc::channel(CONTROL_CHANNEL_CAPACITY);
    let client = Client {
        publications,
        controls,
        v5: o.protocol == Protocol::V5,
    };
    (
        client,
        EventLoop::new(o.clone(), publication_rx, control_rx),
    )
}

/// The codec's QoS for 0..2 (anything above 2 is QoS 2).
pub(super) fn qos_of(q: u8) -> QoS {
    match q {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        _ => QoS::ExactlyOnce,
    }
}

impl Client {
    /// Queues a publication without waiting; false when the request channel is full or closed.
    pub fn try_publish(&self, p: &Publication, props: Option<&OutProps>) -> bool {
        let mut properties = Properties::default();
        if let (true, Some(o)) = (self.v5, props) {
            properties.response_topic = o.response_topic.clone();
            properties.correlation_data = o.correlation_data.clone();
            properties.content_type = o.content_type.clone();
            properties.message_expiry_interval = o.message_expiry;
            properties.payload_format_indicator = o.payload_format;
            properties.user_properties = o.user_props.clone();
        }
        self.publications
            .try_send(codec::Publish {
                dup: false,
                qos: qos_of(p.qos),
                retain: p.retain,
                topic: p.topic.clone(),
                pkid: 0,
                properties,
                payload: p.payload.clone(),
            })
            .is_ok()
    }

    /// Queues a subscription; false when the request channel is full or closed.
    pub fn try_subscribe(&self, filter: &str, o: &SubOptions) -> bool {
        let options = SubscriptionOptions {
            qos: qos_of(o.qos),
            no_local: o.nl,
            retain_as_published: o.rap,
            retain_handling: match o.rh {
                1 => codec::RetainHandling::OnNewSubscribe,
                2 => codec::RetainHandling::Never,
                _ => codec::RetainHandling::OnSubscribe,
            },
        };
        self.controls
            .try_send(Control::Subscribe(filter.to_string(), options))
            .is_ok()
    }

    /// Queues an unsubscription.
    pub fn try_unsubscribe(&self, filter: &str) -> bool {
        self.controls
            .try_send(Control::Unsubscribe(filter.to_string()))
            .is_ok()
    }

    /// Queues a DISCONNECT.
    pub fn try_disconnect(&self) -> bool {
        self.controls.try_send(Control::Disconnect).is_ok()
    }

    /// Acknowledges a received publication (no-op for QoS 0).
    pub async fn ack(&self, p: &RawPublish) {
        if p.qos > 0 {
            let _ = self.controls.send(Control::Ack(*p)).await;
        }
    }

    /// Acknowledges without waiting; false when the request channel is full.
    pub fn try_ack(&self, p: &RawPublish) -> bool {
        p.qos == 0 || self.controls.try_send(Control::Ack(*p)).is_ok()
    }
}

/// The v5 properties of a received publication as Node-RED's message fields.
pub(super) fn message_fields(p: &Properties) -> Vec<(&'static str, Value)> {
    let mut out = Vec::new();
    if let Some(t) = &p.response_topic {
        out.push(("responseTopic", Value::str(t)));
    }
    if let Some(c) = &p.correlation_data {
        out.push(("correlationData", Value::Buffer(c.clone())));
    }
    if let Some(c) = &p.content_type {
        out.push(("contentType", Value::str(c)));
    }
    if let Some(e) = p.message_expiry_interval {
        out.push(("messageExpiryInterval", Value::Number(f64::from(e))));
    }
    if let Some(f) = p.payload_format_indicator {
        out.push(("payloadFormatIndicator", Value::Bool(f != 0)));
    }
    if !p.user_properties.is_empty() {
        let mut o = Object::new();
        for (k, v) in &p.user_properties {
            o.insert(k.as_str(), Value::str(v));
        }
        out.push(("userProperties", Value::object(o)));
    }
    out
}
