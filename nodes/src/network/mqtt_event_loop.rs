//! The event loop of flowd's MQTT client: one connection at a time (TCP or
//! TLS), the QoS 1/2 packet flows both ways, keep-alive, and the state that
//! outlives a connection (unacknowledged publications, resent after the
//! next connect).
//!
//! [`EventLoop::poll`] connects when needed and returns one [`LinkEvent`]
//! at a time. Between events it drives the socket itself: it takes every
//! queued request while the write buffer has room, writes the buffer in as
//! few system calls as the socket allows, and decodes every packet a read
//! brought in. An error ends the connection; the next poll opens a new one.

use super::mqtt_client::{
    embedded_broker_for, message_fields, ClientOptions, Control, LinkEvent, RawPublish, Received,
};
use super::mqtt_websocket::{upgrade, WebSocketTransport};
use bytes::{Buf, BytesMut};
use flowd_broker::codec::{
    self, Ack, AckKind, ConnAck, Connect, Disconnect, LastWill, Packet, Properties,
    ProtocolVersion, Publish, QoS, Subscribe, Unsubscribe,
};
use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::{Instant, Sleep};

/// Largest packet accepted or sent (MQTT's own limit).
const MAX_PACKET_SIZE: usize = 268_435_455;
/// QoS 1/2 publications in flight each way: outgoing ones before the loop
/// waits for acknowledgements, incoming ones (v5 receive maximum).
const MAX_INFLIGHT: u16 = 100;
/// Longest time for TCP connect, TLS handshake and CONNACK together.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// Requests are taken from the queues while the write buffer is below this.
const WRITE_HIGH_WATER: usize = 64 * 1024;
/// Smallest free room in the read buffer before a read.
const READ_CHUNK: usize = 16 * 1024;

/// TCP, TLS over TCP, or an in-process connection to the embedded broker.
enum Transport {
    Tcp(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
    InProcess(tokio::io::DuplexStream),
    WebSocket(Box<WebSocketTransport<TcpStream>>),
    SecureWebSocket(Box<WebSocketTransport<tokio_rustls::client::TlsStream<TcpStream>>>),
}

impl Transport {
    /// Asks the kernel to acknowledge what arrives next without waiting
    /// (`TCP_QUICKACK`; Linux resets it after a while, so it is set after
    /// every read). A broker that leaves Nagle's algorithm on (Mosquitto's
    /// default) holds its next small packet until our acknowledgement; a
    /// delayed one costs up to 40 ms per message.
    fn acknowledge_at_once(&self) {
        if !quick_acks() {
            return;
        }
        let tcp = match self {
            Transport::Tcp(s) => s,
            Transport::Tls(s) => s.get_ref().0,
            Transport::WebSocket(s) => s.get_ref(),
            Transport::SecureWebSocket(s) => s.get_ref().get_ref().0,
            Transport::InProcess(_) => return,
        };
        #[cfg(target_os = "linux")]
        let _ = socket2::SockRef::from(tcp).set_tcp_quickack(true);
        #[cfg(not(target_os = "linux"))]
        let _ = tcp;
    }
}

impl AsyncRead for Transport {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Transport::InProcess(s) => Pin::new(s).poll_read(cx, buf),
            Transport::WebSocket(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Transport::SecureWebSocket(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Transport {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Transport::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Transport::InProcess(s) => Pin::new(s).poll_write(cx, buf),
            Transport::WebSocket(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Transport::SecureWebSocket(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Tcp(s) => Pin::new(s).poll_flush(cx),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Transport::InProcess(s) => Pin::new(s).poll_flush(cx),
            Transport::WebSocket(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Transport::SecureWebSocket(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Transport::InProcess(s) => Pin::new(s).poll_shutdown(cx),
            Transport::WebSocket(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Transport::SecureWebSocket(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// One open connection.
struct Link {
    io: Transport,
    read: BytesMut,
    write: BytesMut,
    /// Written bytes not yet flushed (TLS buffers).
    unflushed: bool,
    /// Keep-alive interval (None = off).
    keepalive: Option<Duration>,
    ping_timer: Pin<Box<Sleep>>,
    last_sent: Instant,
    ping_outstanding: bool,
    /// DISCONNECT queued: close once the buffer is written.
    closing: bool,
    /// Outgoing QoS 1/2 publications allowed in flight.
    inflight_limit: usize,
}

/// An outgoing QoS 1/2 publication not yet fully acknowledged.
struct Outgoing {
    publish: Publish,
    /// PUBREC received and PUBREL sent (QoS 2).
    released: bool,
}

/// The connection owner; see the module documentation.
pub struct EventLoop {
    options: ClientOptions,
    version: ProtocolVersion,
    publications: mpsc::Receiver<Publish>,
    controls: mpsc::Receiver<Control>,
    link: Option<Link>,
    events: VecDeque<LinkEvent>,
    next_pkid: u16,
    /// Unacknowledged outgoing publications by packet id.
    outgoing: HashMap<u16, Outgoing>,
    /// Packet ids of `outgoing` in the order they were first sent (may
    /// hold ids already acknowledged; they are skipped).
    outgoing_order: VecDeque<u16>,
    /// Filters of SUBSCRIBE / UNSUBSCRIBE packets awaiting their ack.
    pending_subscriptions: HashMap<u16, Vec<String>>,
    /// Incoming QoS 2 packet ids answered with PUBREC, awaiting PUBREL.
    awaiting_release: HashSet<u16>,
}

impl EventLoop {
    pub(super) fn new(
        options: ClientOptions,
        publications: mpsc::Receiver<Publish>,
        controls: mpsc::Receiver<Control>,
    ) -> EventLoop {
        EventLoop {
            version: options.protocol.version(),
            options,
            publications,
            controls,
            link: None,
            events: VecDeque::new(),
            next_pkid: 0,
            outgoing: HashMap::new(),
            outgoing_order: VecDeque::new(),
            pending_subscriptions: HashMap::new(),
            awaiting_release: HashSet::new(),
        }
    }

    /// The next event, connecting first when not connected. An error closes
    /// the connection; the next call reconnects.
    pub async fn poll(&mut self) -> Result<LinkEvent, String> {
        loop {
            if let Some(e) = self.events.pop_front() {
                return Ok(e);
            }
            if self.link.is_none() {
                let link = tokio::time::timeout(CONNECT_TIMEOUT, self.connect())
                    .await
                    .map_err(|_| "connection timed out".to_string())??;
                self.link = Some(link);
                self.resend_unacknowledged();
                continue;
            }
            let step = std::future::poll_fn(|cx| self.poll_link(cx)).await;
            if let Err(e) = step {
                self.link = None;
                return Err(e);
            }
        }
    }

    /// Opens the transport, sends CONNECT and waits for CONNACK.
    async fn connect(&mut self) -> Result<Link, String> {
        let o = &self.options;
        let embedded = match (&o.tls, &o.websocket) {
            (None, None) => embedded_broker_for(&o.host, o.port),
            _ => None,
        };
        let mut io = match (&o.tls, embedded) {
            (None, Some(broker)) => Transport::InProcess(broker.connect()),
            (None, None) => {
                let tcp = tcp_connect(&o.host, o.port).await?;
                match &o.websocket {
                    None => Transport::Tcp(tcp),
                    Some(path) => {
                        Transport::WebSocket(Box::new(upgrade(tcp, &o.host, o.port, path).await?))
                    }
                }
            }
            (Some(config), _) => {
                let tcp = tcp_connect(&o.host, o.port).await?;
                let name = tokio_rustls::rustls::pki_types::ServerName::try_from(o.host.clone())
                    .map_err(|e| format!("invalid TLS server name \"{}\": {e}", o.host))?;
                let tls = tokio_rustls::TlsConnector::from(config.clone())
                    .connect(name, tcp)
                    .await
                    .map_err(|e| format!("TLS handshake failed: {e}"))?;
                match &o.websocket {
                    None => Transport::Tls(Box::new(tls)),
                    Some(path) => Transport::SecureWebSocket(Box::new(
                        upgrade(tls, &o.host, o.port, path).await?,
                    )),
                }
            }
        };
        let mut write = BytesMut::with_capacity(256);
        codec::encode(
            &Packet::Connect(Box::new(self.connect_packet())),
            self.version,
            &mut write,
        );
        io.write_all(&write).await.map_err(|e| e.to_string())?;
        io.flush().await.map_err(|e| e.to_string())?;
        write.clear();
        let mut read = BytesMut::with_capacity(READ_CHUNK);
        let ack = loop {
            if let Some(p) = codec::decode(&mut read, self.version, MAX_PACKET_SIZE)
                .map_err(|e| format!("malformed packet from the broker: {e}"))?
            {
                match p {
                    Packet::ConnAck(a) => break a,
                    other => {
                        return Err(format!("expected CONNACK, got {}", other.name()));
                    }
                }
            }
            read.reserve(READ_CHUNK);
            let n = tokio::io::AsyncReadExt::read_buf(&mut io, &mut read)
                .await
                .map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("connection closed by the broker before CONNACK".into());
            }
        };
        if ack.code != 0 {
            return Err(refusal(&ack, self.version));
        }
        let keepalive_secs = ack
            .properties
            .server_keep_alive
            .unwrap_or(self.options.keepalive);
        let keepalive = (keepalive_secs > 0).then(|| Duration::from_secs(keepalive_secs.into()));
        let inflight_limit = usize::from(
            ack.properties
                .receive_maximum
                .unwrap_or(MAX_INFLIGHT)
                .clamp(1, MAX_INFLIGHT),
        );
        let now = Instant::now();
        self.events.push_back(LinkEvent::Connected {
            session_present: ack.session_present,
        });
        // Incoming QoS 2 state belongs to the session: a new one forgets it.
        if !ack.session_present {
            self.awaiting_release.clear();
        }
        self.pending_subscriptions.clear();
        Ok(Link {
            io,
            read,
            write,
            unflushed: false,
            keepalive,
            ping_timer: Box::pin(tokio::time::sleep_until(
                now + keepalive.unwrap_or(Duration::from_secs(86_400)),
            )),
            last_sent: now,
            ping_outstanding: false,
            closing: false,
            inflight_limit,
        })
    }

    fn connect_packet(&self) -> Connect {
        let o = &self.options;
        let mut properties = Properties::default();
        if self.version.is_v5() {
            properties.session_expiry_interval = o.session_expiry;
            properties.user_properties = o.user_props.clone();
            properties.receive_maximum = Some(MAX_INFLIGHT);
            properties.maximum_packet_size = Some(MAX_PACKET_SIZE as u32);
        }
        Connect {
            version: self.version,
            clean_start: o.clean,
            keep_alive: o.keepalive,
            properties,
            client_id: o.client_id.clone(),
            will: o.will.as_ref().map(|w| LastWill {
                topic: w.topic.clone(),
                payload: w.payload.clone(),
                qos: super::mqtt_client::qos_of(w.qos),
                retain: w.retain,
                properties: Properties::default(),
            }),
            username: o.credentials.as_ref().map(|(u, _)| u.clone()),
            password: o
                .credentials
                .as_ref()
                .map(|(_, p)| bytes::Bytes::copy_from_slice(p.as_bytes())),
        }
    }

    /// After a connect: every unacknowledged publication again, in order
    /// (PUBREL for those the broker already received at QoS 2).
    fn resend_unacknowledged(&mut self) {
        let Some(link) = self.link.as_mut() else {
            return;
        };
        self.outgoing_order
            .retain(|id| self.outgoing.contains_key(id));
        for id in &self.outgoing_order {
            let Some(o) = self.outgoing.get_mut(id) else {
                continue;
            };
            if o.released {
                codec::encode(
                    &Packet::Ack(Ack::new(AckKind::PubRel, *id)),
                    self.version,
                    &mut link.write,
                );
            } else {
                o.publish.dup = true;
                codec::encode(
                    &Packet::Publish(o.publish.clone()),
                    self.version,
                    &mut link.write,
                );
            }
        }
    }

    fn allocate_pkid(&mut self) -> u16 {
        loop {
            self.next_pkid = self.next_pkid.checked_add(1).unwrap_or(1);
            let id = self.next_pkid;
            if !self.outgoing.contains_key(&id) && !self.pending_subscriptions.contains_key(&id) {
                return id;
            }
        }
    }

    /// Drives the open connection until there is an event to report (or an error).
    fn poll_link(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), String>> {
        loop {
            let mut progress = self.take_requests(cx);
            let Some(link) = self.link.as_mut() else {
                return Poll::Ready(Ok(()));
            };
            // Write what is buffered.
            while !link.write.is_empty() {
                match Pin::new(&mut link.io).poll_write(cx, &link.write) {
                    Poll::Ready(Ok(0)) => return Poll::Ready(Err("connection closed".into())),
                    Poll::Ready(Ok(n)) => {
                        link.write.advance(n);
                        link.unflushed = true;
                        link.last_sent = Instant::now();
                        progress = true;
                    }
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e.to_string())),
                    Poll::Pending => break,
                }
            }
            if link.write.is_empty() && link.unflushed {
                match Pin::new(&mut link.io).poll_flush(cx) {
                    Poll::Ready(Ok(())) => link.unflushed = false,
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e.to_string())),
                    Poll::Pending => {}
                }
            }
            if link.closing && link.write.is_empty() && !link.unflushed {
                let _ = Pin::new(&mut link.io).poll_shutdown(cx);
                self.link = None;
                self.events.push_back(LinkEvent::DisconnectSent);
                return Poll::Ready(Ok(()));
            }
            // Read and decode.
            if link.read.capacity() - link.read.len() < READ_CHUNK {
                link.read.reserve(READ_CHUNK);
            }
            match tokio_util::io::poll_read_buf(Pin::new(&mut link.io), cx, &mut link.read) {
                Poll::Ready(Ok(0)) => {
                    return Poll::Ready(Err("connection closed by the broker".into()))
                }
                Poll::Ready(Ok(_)) => {
                    progress = true;
                    link.io.acknowledge_at_once();
                    if let Err(e) = self.decode_packets() {
                        return Poll::Ready(Err(e));
                    }
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e.to_string())),
                Poll::Pending => {}
            }
            if let Err(e) = self.poll_keepalive(cx) {
                return Poll::Ready(Err(e));
            }
            if !self.events.is_empty() {
                return Poll::Ready(Ok(()));
            }
            if !progress {
                return Poll::Pending;
            }
        }
    }

    /// Takes queued requests into the write buffer; true when any was taken.
    fn take_requests(&mut self, cx: &mut Context<'_>) -> bool {
        let mut took = false;
        loop {
            let Some(link) = self.link.as_ref() else {
                return took;
            };
            if link.write.len() >= WRITE_HIGH_WATER || link.closing {
                return took;
            }
            match self.controls.poll_recv(cx) {
                Poll::Ready(Some(c)) => {
                    took = true;
                    self.encode_control(c);
                }
                Poll::Ready(None) | Poll::Pending => break,
            }
        }
        loop {
            let Some(link) = self.link.as_ref() else {
                return took;
            };
            if link.write.len() >= WRITE_HIGH_WATER
                || link.closing
                || self.outgoing.len() >= link.inflight_limit
            {
                return took;
            }
            match self.publications.poll_recv(cx) {
                Poll::Ready(Some(p)) => {
                    took = true;
                    self.encode_publication(p);
                }
                Poll::Ready(None) | Poll::Pending => return took,
            }
        }
    }

    fn encode_publication(&mut self, mut p: Publish) {
        if p.qos != QoS::AtMostOnce {
            p.pkid = self.allocate_pkid();
        }
        let Some(link) = self.link.as_mut() else {
            return;
        };
        let id = p.pkid;
        // Encoded in place; kept (QoS 1/2) for a resend without a copy.
        let packet = Packet::Publish(p);
        codec::encode(&packet, self.version, &mut link.write);
        if let (Packet::Publish(publish), true) = (packet, id != 0) {
            self.outgoing.insert(
                id,
                Outgoing {
                    publish,
                    released: false,
                },
            );
            self.outgoing_order.push_back(id);
            if self.outgoing_order.len() > 4 * self.outgoing.len() + 64 {
                let outgoing = &self.outgoing;
                self.outgoing_order.retain(|id| outgoing.contains_key(id));
            }
        }
        self.events.push_back(LinkEvent::PublishSent(id));
    }

    fn encode_control(&mut self, c: Control) {
        let packet = match c {
            Control::Ack(RawPublish { pkid, qos: 1 }) => {
                Packet::Ack(Ack::new(AckKind::PubAck, pkid))
            }
            Control::Ack(RawPublish { pkid, .. }) => {
                self.awaiting_release.insert(pkid);
                Packet::Ack(Ack::new(AckKind::PubRec, pkid))
            }
            Control::Subscribe(filter, options) => {
                let pkid = self.allocate_pkid();
                self.pending_subscriptions
                    .insert(pkid, vec![filter.clone()]);
                Packet::Subscribe(Subscribe {
                    pkid,
                    properties: Properties::default(),
                    filters: vec![(filter, options)],
                })
            }
            Control::Unsubscribe(filter) => {
                let pkid = self.allocate_pkid();
                self.pending_subscriptions
                    .insert(pkid, vec![filter.clone()]);
                Packet::Unsubscribe(Unsubscribe {
                    pkid,
                    properties: Properties::default(),
                    filters: vec![filter],
                })
            }
            Control::Disconnect => {
                if let Some(link) = self.link.as_mut() {
                    link.closing = true;
                }
                Packet::Disconnect(Disconnect::new(codec::disconnect_reason::NORMAL))
            }
        };
        if let Some(link) = self.link.as_mut() {
            codec::encode(&packet, self.version, &mut link.write);
        }
    }

    /// Handles every complete packet in the read buffer.
    fn decode_packets(&mut self) -> Result<(), String> {
        loop {
            let Some(link) = self.link.as_mut() else {
                return Ok(());
            };
            let packet = codec::decode(&mut link.read, self.version, MAX_PACKET_SIZE)
                .map_err(|e| format!("malformed packet from the broker: {e}"))?;
            let Some(packet) = packet else {
                return Ok(());
            };
            self.handle_packet(packet)?;
        }
    }

    fn respond(&mut self, packet: Packet) {
        if let Some(link) = self.link.as_mut() {
            codec::encode(&packet, self.version, &mut link.write);
        }
    }

    fn handle_packet(&mut self, packet: Packet) -> Result<(), String> {
        match packet {
            Packet::Publish(p) => self.on_publish(p),
            Packet::Ack(a) => match a.kind {
                AckKind::PubAck | AckKind::PubComp => {
                    if self.outgoing.remove(&a.pkid).is_some() {
                        self.events.push_back(LinkEvent::PublishAcked(a.pkid));
                    }
                }
                AckKind::PubRec => {
                    if a.code >= 0x80 {
                        // Refused (v5): the exchange ends here.
                        if self.outgoing.remove(&a.pkid).is_some() {
                            self.events.push_back(LinkEvent::PublishAcked(a.pkid));
                        }
                    } else {
                        if let Some(o) = self.outgoing.get_mut(&a.pkid) {
                            o.released = true;
                        }
                        self.respond(Packet::Ack(Ack::new(AckKind::PubRel, a.pkid)));
                    }
                }
                AckKind::PubRel => {
                    self.awaiting_release.remove(&a.pkid);
                    self.respond(Packet::Ack(Ack::new(AckKind::PubComp, a.pkid)));
                }
            },
            Packet::SubAck(s) => {
                let filters = self
                    .pending_subscriptions
                    .remove(&s.pkid)
                    .unwrap_or_default();
                for (filter, code) in filters.iter().zip(&s.codes) {
                    if *code >= 0x80 {
                        tracing::warn!(
                            client = %self.options.client_id,
                            filter = %filter,
                            code,
                            "The broker refused the subscription."
                        );
                    }
                }
                self.events.push_back(LinkEvent::Other);
            }
            Packet::UnsubAck(u) => {
                self.pending_subscriptions.remove(&u.pkid);
                self.events.push_back(LinkEvent::Other);
            }
            Packet::PingResp => {
                if let Some(link) = self.link.as_mut() {
                    link.ping_outstanding = false;
                }
            }
            Packet::Disconnect(d) => {
                let reason = d.properties.reason_string.unwrap_or_default();
                return Err(format!(
                    "the broker disconnected (reason {:#04x}) {reason}",
                    d.code
                ));
            }
            other => {
                return Err(format!("unexpected {} from the broker", other.name()));
            }
        }
        Ok(())
    }

    fn on_publish(&mut self, p: Publish) {
        let qos = p.qos as u8;
        if p.qos == QoS::ExactlyOnce && self.awaiting_release.contains(&p.pkid) {
            // Already received and acknowledged with PUBREC: not again.
            self.respond(Packet::Ack(Ack::new(AckKind::PubRec, p.pkid)));
            return;
        }
        let (props, content_type) = if self.version.is_v5() {
            (
                message_fields(&p.properties),
                p.properties.content_type.clone(),
            )
        } else {
            (Vec::new(), None)
        };
        self.events.push_back(LinkEvent::Publish(Received {
            topic: p.topic,
            payload: p.payload,
            qos,
            retain: p.retain,
            props,
            content_type,
            packet: (qos > 0).then_some(RawPublish { pkid: p.pkid, qos }),
        }));
    }

    /// Sends PINGREQ when nothing was sent for a keep-alive interval; fails
    /// when the previous one got no answer within an interval.
    fn poll_keepalive(&mut self, cx: &mut Context<'_>) -> Result<(), String> {
        let Some(link) = self.link.as_mut() else {
            return Ok(());
        };
        let Some(keepalive) = link.keepalive else {
            return Ok(());
        };
        loop {
            if link.ping_timer.as_mut().poll(cx).is_pending() {
                return Ok(());
            }
            let now = Instant::now();
            if link.ping_outstanding {
                return Err("the broker did not answer the keep-alive ping".into());
            }
            let due = link.last_sent + keepalive;
            if due > now {
                link.ping_timer.as_mut().reset(due);
                continue;
            }
            codec::encode(&Packet::PingReq, self.version, &mut link.write);
            link.ping_outstanding = true;
            link.ping_timer.as_mut().reset(now + keepalive);
            cx.waker().wake_by_ref();
            return Ok(());
        }
    }
}

/// Whether the client acknowledges at once (`TCP_QUICKACK`, the default):
/// `FLOWD_MQTT_QUICKACK=0` leaves acknowledgements to the kernel, which
/// saves wake-ups (CPU) against a broker with Nagle's algorithm on, at the
/// price of its up to 40 ms delays.
fn quick_acks() -> bool {
    static QUICK: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *QUICK.get_or_init(|| std::env::var("FLOWD_MQTT_QUICKACK").map_or(true, |v| v != "0"))
}

/// Connects with `TCP_NODELAY`: the event loop batches its writes itself.
async fn tcp_connect(host: &str, port: u16) -> Result<TcpStream, String> {
    let tcp = TcpStream::connect((host, port))
        .await
        .map_err(|e| e.to_string())?;
    let _ = tcp.set_nodelay(true);
    Ok(tcp)
}

/// The message for a refused connection (v5 reason code or 3.1.1 return code).
fn refusal(ack: &ConnAck, version: ProtocolVersion) -> String {
    let reason = if version.is_v5() {
        match ack.code {
            0x80 => "unspecified error",
            0x81 => "malformed packet",
            0x82 => "protocol error",
            0x84 => "unsupported protocol version",
            0x85 => "client identifier not valid",
            0x86 => "bad user name or password",
            0x87 => "not authorized",
            0x88 => "server unavailable",
            0x89 => "server busy",
            0x8A => "banned",
            0x8C => "bad authentication method",
            0x95 => "packet too large",
            0x97 => "quota exceeded",
            _ => "refused",
        }
    } else {
        match ack.code {
            1 => "unacceptable protocol version",
            2 => "identifier rejected",
            3 => "server unavailable",
            4 => "bad user name or password",
            5 => "not authorized",
            _ => "refused",
        }
    };
    let detail = ack
        .properties
        .reason_string
        .as_deref()
        .map(|s| format!(": {s}"))
        .unwrap_or_default();
    format!("Connection refused: {reason} (code {}){detail}", ack.code)
}
