//! A thin layer over rumqttc's two clients (MQTT 3.1.1 and MQTT 5) so the
//! shared connection handles one kind of client, event and publication.

use super::mqtt_message::Publication;
use bytes::Bytes;
use flowd_engine::value::Object;
use flowd_engine::Value;
use rumqttc::v5::mqttbytes::v5 as v5p;
use rumqttc::v5::mqttbytes::QoS as V5QoS;
use std::time::Duration;

/// Capacity of the request channel between the clients and the event loop.
pub const REQUEST_CHANNEL_CAPACITY: usize = 64;
/// Shortest keep-alive rumqttc's MQTT 5 client accepts, in seconds.
const V5_MIN_KEEPALIVE: u16 = 5;
/// Largest packet accepted or sent (MQTT's own limit).
const MAX_PACKET_SIZE: usize = 268_435_455;
/// QoS 1/2 publications in flight each way: outgoing ones before the event
/// loop waits for acks, incoming ones (v5 receive maximum) before the broker
/// waits for ours.
const MAX_INFLIGHT: u16 = 100;

/// MQTT protocol version of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// MQTT 3.1.1 (`protocolVersion` 3 and 4).
    V4,
    /// MQTT 5.
    V5,
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
    /// TLS transport, when set.
    pub tls: Option<rumqttc::TlsConfiguration>,
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
    /// The packet, for the acknowledgement (taken when acknowledged).
    pub packet: Option<RawPublish>,
}

/// A received packet, kept for its acknowledgement.
pub enum RawPublish {
    /// MQTT 3.1.1.
    V4(rumqttc::Publish),
    /// MQTT 5.
    V5(Box<v5p::Publish>),
}

/// What the event loop reports, reduced to what the connection needs.
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
    /// A DISCONNECT was written.
    DisconnectSent,
    /// Anything else.
    Other,
}

/// A client handle of either protocol version. Cheap to clone.
#[derive(Clone)]
pub enum Client {
    /// MQTT 3.1.1.
    V4(rumqttc::AsyncClient),
    /// MQTT 5.
    V5(rumqttc::v5::AsyncClient),
}

/// The event loop of either protocol version.
pub enum EventLoop {
    /// MQTT 3.1.1.
    V4(Box<rumqttc::EventLoop>),
    /// MQTT 5.
    V5(Box<rumqttc::v5::EventLoop>),
}

fn qos4(q: u8) -> rumqttc::QoS {
    match q {
        0 => rumqttc::QoS::AtMostOnce,
        1 => rumqttc::QoS::AtLeastOnce,
        _ => rumqttc::QoS::ExactlyOnce,
    }
}

fn qos5(q: u8) -> V5QoS {
    match q {
        0 => V5QoS::AtMostOnce,
        1 => V5QoS::AtLeastOnce,
        _ => V5QoS::ExactlyOnce,
    }
}

/// Opens a client and its event loop (nothing connects until the loop is polled).
pub fn open(o: &ClientOptions) -> (Client, EventLoop) {
    let keepalive = Duration::from_secs(u64::from(o.keepalive));
    match o.protocol {
        Protocol::V4 => {
            let mut m = rumqttc::MqttOptions::new(&o.client_id, &o.host, o.port);
            m.set_keep_alive(keepalive)
                .set_clean_session(o.clean)
                .set_manual_acks(true)
                .set_inflight(MAX_INFLIGHT)
                .set_max_packet_size(MAX_PACKET_SIZE, MAX_PACKET_SIZE);
            if let Some((u, p)) = &o.credentials {
                m.set_credentials(u, p);
            }
            if let Some(w) = &o.will {
                m.set_last_will(rumqttc::LastWill::new(
                    &w.topic,
                    w.payload.to_vec(),
                    qos4(w.qos),
                    w.retain,
                ));
            }
            if let Some(tls) = &o.tls {
                m.set_transport(rumqttc::Transport::tls_with_config(tls.clone()));
            }
            let (c, e) = rumqttc::AsyncClient::new(m, REQUEST_CHANNEL_CAPACITY);
            (Client::V4(c), EventLoop::V4(Box::new(e)))
        }
        Protocol::V5 => {
            let mut m = rumqttc::v5::MqttOptions::new(&o.client_id, &o.host, o.port);
            // rumqttc's MQTT 5 client needs at least 5 s and cannot turn keep-alive
            // off: 0 becomes the longest interval MQTT allows.
            let keepalive = match o.keepalive {
                0 => Duration::from_secs(u64::from(u16::MAX)),
                k => Duration::from_secs(u64::from(k.max(V5_MIN_KEEPALIVE))),
            };
            m.set_keep_alive(keepalive)
                .set_clean_start(o.clean)
                .set_manual_acks(true)
                .set_outgoing_inflight_upper_limit(MAX_INFLIGHT)
                .set_receive_maximum(Some(MAX_INFLIGHT))
                .set_max_packet_size(Some(MAX_PACKET_SIZE as u32));
            if o.session_expiry.is_some() || !o.user_props.is_empty() {
                let mut props = v5p::ConnectProperties::new();
                props.session_expiry_interval = o.session_expiry;
                props.user_properties = o.user_props.clone();
                props.max_packet_size = Some(MAX_PACKET_SIZE as u32);
                m.set_connect_properties(props);
            }
            if let Some((u, p)) = &o.credentials {
                m.set_credentials(u, p);
            }
            if let Some(w) = &o.will {
                m.set_last_will(v5p::LastWill::new(
                    &w.topic,
                    w.payload.to_vec(),
                    qos5(w.qos),
                    w.retain,
                    None,
                ));
            }
            if let Some(tls) = &o.tls {
                m.set_transport(rumqttc::Transport::tls_with_config(tls.clone()));
            }
            let (c, e) = rumqttc::v5::AsyncClient::new(m, REQUEST_CHANNEL_CAPACITY);
            (Client::V5(c), EventLoop::V5(Box::new(e)))
        }
    }
}

impl Client {
    /// Queues a publication without waiting; false when the request channel is full or closed.
    pub fn try_publish(&self, p: &Publication, props: Option<&OutProps>) -> bool {
        match self {
            Client::V4(c) => c
                .try_publish(&p.topic, qos4(p.qos), p.retain, p.payload.to_vec())
                .is_ok(),
            Client::V5(c) => {
                let mut pp = v5p::PublishProperties::default();
                if let Some(o) = props {
                    pp.response_topic = o.response_topic.clone();
                    pp.correlation_data = o.correlation_data.clone();
                    pp.content_type = o.content_type.clone();
                    pp.message_expiry_interval = o.message_expiry;
                    pp.payload_format_indicator = o.payload_format;
                    pp.user_properties = o.user_props.clone();
                }
                c.try_publish_with_properties(
                    p.topic.as_str(),
                    qos5(p.qos),
                    p.retain,
                    p.payload.clone(),
                    pp,
                )
                .is_ok()
            }
        }
    }

    /// Queues a subscription; false when the request channel is full or closed.
    pub fn try_subscribe(&self, filter: &str, o: &SubOptions) -> bool {
        match self {
            Client::V4(c) => c.try_subscribe(filter, qos4(o.qos)).is_ok(),
            Client::V5(c) => {
                let mut f = v5p::Filter::new(filter, qos5(o.qos));
                f.nolocal = o.nl;
                f.preserve_retain = o.rap;
                f.retain_forward_rule = match o.rh {
                    1 => v5p::RetainForwardRule::OnNewSubscribe,
                    2 => v5p::RetainForwardRule::Never,
                    _ => v5p::RetainForwardRule::OnEverySubscribe,
                };
                c.try_subscribe_many(std::iter::once(f)).is_ok()
            }
        }
    }

    /// Queues an unsubscription.
    pub fn try_unsubscribe(&self, filter: &str) -> bool {
        match self {
            Client::V4(c) => c.try_unsubscribe(filter).is_ok(),
            Client::V5(c) => c.try_unsubscribe(filter).is_ok(),
        }
    }

    /// Queues a DISCONNECT.
    pub fn try_disconnect(&self) -> bool {
        match self {
            Client::V4(c) => c.try_disconnect().is_ok(),
            Client::V5(c) => c.try_disconnect().is_ok(),
        }
    }

    /// Acknowledges a received publication (no-op for QoS 0).
    pub async fn ack(&self, p: &RawPublish) {
        let _ = match (self, p) {
            (Client::V4(c), RawPublish::V4(p)) => c.ack(p).await.is_ok(),
            (Client::V5(c), RawPublish::V5(p)) => c.ack(p).await.is_ok(),
            _ => false,
        };
    }

    /// Acknowledges without waiting; false when the request channel is full.
    pub fn try_ack(&self, p: &RawPublish) -> bool {
        match (self, p) {
            (Client::V4(c), RawPublish::V4(p)) => c.try_ack(p).is_ok(),
            (Client::V5(c), RawPublish::V5(p)) => c.try_ack(p).is_ok(),
            _ => true,
        }
    }
}

impl RawPublish {
    /// QoS of the received packet.
    pub fn qos(&self) -> u8 {
        match self {
            RawPublish::V4(p) => p.qos as u8,
            RawPublish::V5(p) => p.qos as u8,
        }
    }
}

fn v5_props(p: &v5p::PublishProperties) -> Vec<(&'static str, Value)> {
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

impl EventLoop {
    /// Polls the event loop once (connecting when needed).
    pub async fn poll(&mut self) -> Result<LinkEvent, String> {
        match self {
            EventLoop::V4(e) => {
                use rumqttc::{Event, Incoming, Outgoing};
                match e.poll().await.map_err(|e| e.to_string())? {
                    Event::Incoming(Incoming::ConnAck(c)) => Ok(LinkEvent::Connected {
                        session_present: c.session_present,
                    }),
                    Event::Incoming(Incoming::Publish(p)) => {
                        let topic = p.topic.clone();
                        Ok(LinkEvent::Publish(Received {
                            topic,
                            payload: p.payload.clone(),
                            qos: p.qos as u8,
                            retain: p.retain,
                            props: Vec::new(),
                            content_type: None,
                            packet: Some(RawPublish::V4(p)),
                        }))
                    }
                    Event::Incoming(Incoming::PubAck(a)) => Ok(LinkEvent::PublishAcked(a.pkid)),
                    Event::Incoming(Incoming::PubComp(a)) => Ok(LinkEvent::PublishAcked(a.pkid)),
                    Event::Outgoing(Outgoing::Publish(id)) => Ok(LinkEvent::PublishSent(id)),
                    Event::Outgoing(Outgoing::Disconnect) => Ok(LinkEvent::DisconnectSent),
                    _ => Ok(LinkEvent::Other),
                }
            }
            EventLoop::V5(e) => {
                use rumqttc::v5::{Event, Incoming};
                use rumqttc::Outgoing;
                match e.poll().await.map_err(|e| e.to_string())? {
                    Event::Incoming(Incoming::ConnAck(c)) => Ok(LinkEvent::Connected {
                        session_present: c.session_present,
                    }),
                    Event::Incoming(Incoming::Publish(p)) => {
                        let topic = String::from_utf8_lossy(&p.topic).into_owned();
                        let (props, content_type) = match &p.properties {
                            Some(pp) => (v5_props(pp), pp.content_type.clone()),
                            None => (Vec::new(), None),
                        };
                        Ok(LinkEvent::Publish(Received {
                            topic,
                            payload: p.payload.clone(),
                            qos: p.qos as u8,
                            retain: p.retain,
                            props,
                            content_type,
                            packet: Some(RawPublish::V5(Box::new(p))),
                        }))
                    }
                    Event::Incoming(Incoming::PubAck(a)) => Ok(LinkEvent::PublishAcked(a.pkid)),
                    Event::Incoming(Incoming::PubComp(a)) => Ok(LinkEvent::PublishAcked(a.pkid)),
                    Event::Outgoing(Outgoing::Publish(id)) => Ok(LinkEvent::PublishSent(id)),
                    Event::Outgoing(Outgoing::Disconnect) => Ok(LinkEvent::DisconnectSent),
                    _ => Ok(LinkEvent::Other),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(protocol: Protocol, keepalive: u16) -> ClientOptions {
        ClientOptions {
            host: "127.0.0.1".into(),
            port: 1,
            client_id: "c".into(),
            protocol,
            keepalive,
            clean: false,
            session_expiry: Some(60),
            user_props: vec![("k".into(), "v".into())],
            credentials: Some(("u".into(), "p".into())),
            will: Some(Announcement {
                topic: "w".into(),
                payload: Bytes::from_static(b"x"),
                qos: 1,
                retain: true,
            }),
            tls: None,
        }
    }

    #[test]
    fn every_keepalive_opens_a_client() {
        for protocol in [Protocol::V4, Protocol::V5] {
            for keepalive in [0, 1, 4, 5, 60, u16::MAX] {
                let _ = open(&options(protocol, keepalive));
            }
        }
    }
}
