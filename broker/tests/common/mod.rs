//! Test helpers: a broker on 127.0.0.1:0 and a raw MQTT client built on the
//! crate's codec, for exact packet-flow checks. Every wait has a timeout.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use flowd_broker::codec::{
    self, Ack, AckKind, ConnAck, Connect, Packet, Properties, ProtocolVersion, Publish, QoS,
    SubAck, Subscribe, SubscriptionOptions,
};
use flowd_broker::{Broker, BrokerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub const WAIT: Duration = Duration::from_secs(5);
/// How long "nothing arrives" is observed.
pub const QUIET: Duration = Duration::from_millis(300);

pub fn config() -> BrokerConfig {
    BrokerConfig {
        mqtt: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        sys_interval: None,
        ..BrokerConfig::default()
    }
}

pub async fn start() -> Broker {
    start_with(config()).await
}

pub async fn start_with(config: BrokerConfig) -> Broker {
    Broker::start(config).await.expect("broker starts")
}

pub struct Client {
    pub stream: TcpStream,
    buf: BytesMut,
    pub version: ProtocolVersion,
}

pub fn connect_packet(version: ProtocolVersion, id: &str, clean: bool, keep_alive: u16) -> Connect {
    Connect {
        version,
        clean_start: clean,
        keep_alive,
        properties: Properties::default(),
        client_id: id.into(),
        will: None,
        username: None,
        password: None,
    }
}

impl Client {
    pub async fn open(addr: SocketAddr, version: ProtocolVersion) -> Client {
        let stream = tokio::time::timeout(WAIT, TcpStream::connect(addr))
            .await
            .expect("connect in time")
            .expect("tcp");
        Client {
            stream,
            buf: BytesMut::new(),
            version,
        }
    }

    /// Opens, sends CONNECT and returns the CONNACK.
    pub async fn connect_with(addr: SocketAddr, connect: Connect) -> (Client, ConnAck) {
        let mut c = Client::open(addr, connect.version).await;
        c.send(Packet::Connect(Box::new(connect))).await;
        match c.recv().await {
            Some(Packet::ConnAck(a)) => (c, a),
            other => panic!("expected CONNACK, got {other:?}"),
        }
    }

    pub async fn connect(
        addr: SocketAddr,
        version: ProtocolVersion,
        id: &str,
        clean: bool,
    ) -> Client {
        let (c, ack) = Client::connect_with(addr, connect_packet(version, id, clean, 60)).await;
        assert_eq!(ack.code, 0, "CONNACK code");
        c
    }

    pub async fn send(&mut self, p: Packet) {
        let mut out = BytesMut::new();
        codec::encode(&p, self.version, &mut out);
        self.stream.write_all(&out).await.expect("write");
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write");
    }

    /// The next packet within `within`; `None` on timeout or close.
    pub async fn recv_within(&mut self, within: Duration) -> Option<Packet> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Ok(Some(p)) = codec::decode(&mut self.buf, self.version, usize::MAX) {
                return Some(p);
            }
            match tokio::time::timeout_at(deadline, self.stream.read_buf(&mut self.buf)).await {
                Ok(Ok(n)) if n > 0 => {}
                _ => return None,
            }
        }
    }

    pub async fn recv(&mut self) -> Option<Packet> {
        self.recv_within(WAIT).await
    }

    /// Whether the broker closed the connection (within WAIT), skipping
    /// any packets before the close (returned).
    pub async fn closed(&mut self) -> (bool, Vec<Packet>) {
        let deadline = tokio::time::Instant::now() + WAIT;
        let mut seen = Vec::new();
        loop {
            while let Ok(Some(p)) = codec::decode(&mut self.buf, self.version, usize::MAX) {
                seen.push(p);
            }
            match tokio::time::timeout_at(deadline, self.stream.read_buf(&mut self.buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return (true, seen),
                Ok(Ok(_)) => {}
                Err(_) => return (false, seen),
            }
        }
    }

    pub async fn expect_publish(&mut self) -> Publish {
        match self.recv().await {
            Some(Packet::Publish(p)) => p,
            other => panic!("expected PUBLISH, got {other:?}"),
        }
    }

    pub async fn expect_ack(&mut self, kind: AckKind, pkid: u16) -> Ack {
        match self.recv().await {
            Some(Packet::Ack(a)) if a.kind == kind && a.pkid == pkid => a,
            other => panic!("expected {kind:?} {pkid}, got {other:?}"),
        }
    }

    pub async fn expect_nothing(&mut self) {
        if let Some(p) = self.recv_within(QUIET).await {
            panic!("expected nothing, got {p:?}");
        }
    }

    pub async fn subscribe(&mut self, pkid: u16, filters: &[(&str, QoS)]) -> SubAck {
        let filters = filters
            .iter()
            .map(|(f, q)| {
                (
                    f.to_string(),
                    SubscriptionOptions {
                        qos: *q,
                        ..Default::default()
                    },
                )
            })
            .collect();
        self.subscribe_opts(pkid, filters, Properties::default())
            .await
    }

    pub async fn subscribe_opts(
        &mut self,
        pkid: u16,
        filters: Vec<(String, SubscriptionOptions)>,
        properties: Properties,
    ) -> SubAck {
        self.send(Packet::Subscribe(Subscribe {
            pkid,
            properties,
            filters,
        }))
        .await;
        match self.recv().await {
            Some(Packet::SubAck(a)) if a.pkid == pkid => a,
            other => panic!("expected SUBACK, got {other:?}"),
        }
    }

    pub async fn publish(
        &mut self,
        topic: &str,
        payload: &'static [u8],
        qos: QoS,
        retain: bool,
        pkid: u16,
    ) {
        let p = Publish {
            dup: false,
            qos,
            retain,
            topic: topic.into(),
            pkid,
            properties: Properties::default(),
            payload: Bytes::from_static(payload),
        };
        self.send(Packet::Publish(p)).await;
    }

    /// Publishes at QoS 1 and waits for the PUBACK.
    pub async fn publish_acked(
        &mut self,
        topic: &str,
        payload: &'static [u8],
        retain: bool,
        pkid: u16,
    ) {
        self.publish(topic, payload, QoS::AtLeastOnce, retain, pkid)
            .await;
        self.expect_ack(AckKind::PubAck, pkid).await;
    }

    pub async fn disconnect(mut self) {
        self.send(Packet::Disconnect(Default::default())).await;
        let _ = self.closed().await;
    }
}
