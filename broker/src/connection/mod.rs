//! One network connection, over any byte stream (TCP, TLS, WebSocket):
//! the CONNECT handshake (`handshake.rs`), then a reader loop here that
//! decodes packets, enforces keep alive at 1.5x, resolves inbound topic
//! aliases and forwards requests to the router, and a writer task
//! (`writer.rs`) that drains the connection's outbox.
//!
//! A malformed packet or protocol error closes this connection only.

mod handshake;
mod writer;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info};

use crate::auth::Authenticator;
use crate::codec::{self, disconnect_reason, Packet, ProtocolVersion, Publish, QoS};
use crate::config::BrokerConfig;
use crate::message::{CloseReason, ConnId, Inbound, Outgoing};
use crate::stats::Stats;
use crate::topic::valid_topic_name;

/// What every connection shares: the way to the router, the settings, the
/// authenticator and the counters.
#[derive(Debug)]
pub struct ConnContext {
    pub router: mpsc::Sender<Inbound>,
    pub config: Arc<BrokerConfig>,
    pub auth: Arc<Authenticator>,
    pub stats: Arc<Stats>,
    pub next_conn_id: AtomicU64,
    pub shutdown: CancellationToken,
}

impl ConnContext {
    pub fn conn_id(&self) -> ConnId {
        self.next_conn_id.fetch_add(1, Ordering::Relaxed)
    }
}

/// Read buffer size per connection (grows for large packets).
const READ_BUFFER: usize = 256;
/// A read buffer grown past this by a large packet is dropped once empty,
/// so idle connections stay small.
const READ_BUFFER_KEEP: usize = 64 * 1024;
/// How long a connection closed with a DISCONNECT reason keeps reading.
const LINGER: Duration = Duration::from_secs(2);
/// How long a closing connection waits for its writer to flush.
const WRITER_DRAIN: Duration = Duration::from_secs(5);

/// How the reader loop ended.
enum End {
    /// DISCONNECT received; `will` if the v5 reason asks for the will.
    Disconnected {
        will: bool,
        session_expiry: Option<u32>,
    },
    Timeout,
    /// EOF, I/O error, or malformed packet (v5 reason code to send, if any).
    Error(Option<u8>),
    /// The writer stopped (takeover, server shutdown, write error).
    WriterClosed,
}

/// Where a connection comes from, as the log names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    /// A network client (TCP, TLS or WebSocket) at this address.
    Network(SocketAddr),
    /// A client in the same process ([`crate::InProcessConnector`]).
    InProcess,
}

impl std::fmt::Display for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Peer::Network(addr) => addr.fmt(f),
            Peer::InProcess => f.write_str("this process"),
        }
    }
}

/// Serves one connection to its end. `allow_anonymous` is the listener's
/// policy (Mosquitto 2: loopback only unless configured).
pub async fn serve<S>(
    stream: S,
    peer: Peer,
    local_port: u16,
    allow_anonymous: bool,
    ctx: Arc<ConnContext>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    match peer {
        Peer::Network(addr) => info!("New connection from {addr} on port {local_port}."),
        Peer::InProcess => info!("New in-process connection."),
    }
    let (mut rd, mut wr) = tokio::io::split(stream);
    let mut rbuf = BytesMut::with_capacity(READ_BUFFER);
    // Boxed: the handshake's large state is freed once it is done instead
    // of sizing this (long-lived) future.
    let handshake = Box::pin(handshake::run(
        &mut rd,
        &mut wr,
        &mut rbuf,
        peer,
        allow_anonymous,
        &ctx,
    ));
    let Some(hs) = handshake.await else {
        return;
    };
    ctx.stats.clients_connected.fetch_add(1, Ordering::Relaxed);
    let closed = CancellationToken::new();
    let state = writer::WriterState::new(&hs, ctx.clone());
    let writer = tokio::spawn(writer::run(wr, hs.outbox_rx, state, closed.clone()));
    let mut reader = Reader {
        ctx: &ctx,
        conn: hs.conn,
        client: hs.client_id.clone(),
        version: hs.version,
        aliases: HashMap::new(),
        connect_expiry: hs.session_expiry,
        pings: hs.outbox.clone(),
        inflight_in: hs.inflight_in.clone(),
    };
    let keepalive =
        (hs.keep_alive > 0).then(|| Duration::from_millis(u64::from(hs.keep_alive) * 1500));
    let end = reader
        .read_loop(&mut rd, &mut rbuf, keepalive, &closed)
        .await;
    let client = &hs.client_id;
    let mut linger = false;
    let (reason, expiry) = match end {
        End::Disconnected {
            will,
            session_expiry,
        } => {
            info!("Client {client} disconnected.");
            (
                if will {
                    CloseReason::Abnormal
                } else {
                    CloseReason::Normal
                },
                session_expiry,
            )
        }
        End::Timeout => {
            info!("Client {client} has exceeded timeout, disconnecting.");
            hs.outbox
                .send(Outgoing::disconnect(disconnect_reason::KEEP_ALIVE_TIMEOUT));
            (CloseReason::Abnormal, None)
        }
        End::Error(code) => {
            info!("Socket error on client {client}, disconnecting.");
            if let Some(code) = code {
                hs.outbox.send(Outgoing::disconnect(code));
                linger = true;
            }
            (CloseReason::Abnormal, None)
        }
        End::WriterClosed => (CloseReason::Abnormal, None),
    };
    let _ = ctx
        .router
        .send(Inbound::Closed {
            conn: hs.conn,
            client: client.clone(),
            reason,
            session_expiry: expiry,
        })
        .await;
    ctx.stats.clients_connected.fetch_sub(1, Ordering::Relaxed);
    // The router drops its outbox sender; ours goes here, so the writer
    // ends after flushing what is queued.
    drop(reader);
    drop(hs.outbox);
    if tokio::time::timeout(WRITER_DRAIN, writer).await.is_err() {
        debug!(client = %client, "Writer did not drain in time.");
    }
    if linger {
        // After a DISCONNECT with a reason, read and discard until the
        // client closes (or LINGER passes), so that what it sends meanwhile
        // (e.g. PUBREL) does not reset the connection before it has read
        // our DISCONNECT.
        let drain = async {
            let mut sink = [0u8; 1024];
            while matches!(rd.read(&mut sink).await, Ok(n) if n > 0) {}
        };
        let _ = tokio::time::timeout(LINGER, drain).await;
    }
}

struct Reader<'a> {
    ctx: &'a ConnContext,
    conn: ConnId,
    client: Arc<str>,
    version: ProtocolVersion,
    /// Inbound topic aliases (v5), reset with every connection.
    aliases: HashMap<u16, String>,
    connect_expiry: u32,
    pings: crate::message::Outbox,
    /// QoS 1/2 publishes received and not yet completed (shared with the
    /// writer, which counts down as it sends PUBACK / PUBCOMP).
    inflight_in: Arc<AtomicUsize>,
}

impl Reader<'_> {
    async fn read_loop<R: AsyncRead + Unpin>(
        &mut self,
        rd: &mut R,
        rbuf: &mut BytesMut,
        keepalive: Option<Duration>,
        closed: &CancellationToken,
    ) -> End {
        let max = self.ctx.config.limits.max_packet_size as usize;
        loop {
            loop {
                match codec::decode(rbuf, self.version, max) {
                    Ok(Some(packet)) => {
                        if let Some(end) = self.handle(packet).await {
                            return end;
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        debug!(client = %self.client, error = %e, "Malformed packet.");
                        return End::Error(self.version.is_v5().then(|| e.reason_code()));
                    }
                }
            }
            if rbuf.is_empty() && rbuf.capacity() > READ_BUFFER_KEEP {
                *rbuf = BytesMut::with_capacity(READ_BUFFER);
            }
            let read = async {
                match keepalive {
                    Some(k) => tokio::time::timeout(k, rd.read_buf(rbuf)).await.ok(),
                    None => Some(rd.read_buf(rbuf).await),
                }
            };
            tokio::select! {
                r = read => match r {
                    None => return End::Timeout,
                    Some(Ok(0)) | Some(Err(_)) => return End::Error(None),
                    Some(Ok(n)) => self.ctx.stats.bytes_in(n),
                },
                _ = closed.cancelled() => return End::WriterClosed,
            }
        }
    }

    /// Handles one packet; `Some` ends the connection.
    async fn handle(&mut self, packet: Packet) -> Option<End> {
        let (conn, client) = (self.conn, self.client.clone());
        let v5 = self.version.is_v5();
        let inbound = match packet {
            Packet::Publish(publish) => {
                if publish.qos != QoS::AtMostOnce
                    && !(publish.dup && publish.qos == QoS::ExactlyOnce)
                {
                    let n = self.inflight_in.fetch_add(1, Ordering::Relaxed) + 1;
                    // The client ignored our Receive Maximum [MQTTv5-3.3.4-9].
                    if v5 && n > usize::from(self.ctx.config.limits.max_inflight_messages) {
                        return Some(End::Error(Some(
                            disconnect_reason::RECEIVE_MAXIMUM_EXCEEDED,
                        )));
                    }
                }
                let publish = match self.resolve_topic(publish) {
                    Ok(p) => p,
                    Err(code) => return Some(End::Error(v5.then_some(code))),
                };
                debug!(
                    "Received PUBLISH from {client} (d{}, q{}, r{}, m{}, '{}', ... ({} bytes))",
                    u8::from(publish.dup),
                    publish.qos as u8,
                    u8::from(publish.retain),
                    publish.pkid,
                    publish.topic,
                    publish.payload.len()
                );
                Inbound::Publish {
                    conn,
                    client,
                    publish,
                }
            }
            Packet::Ack(ack) => {
                debug!(
                    "Received {} from {client} (Mid: {})",
                    ack.kind.name(),
                    ack.pkid
                );
                Inbound::Ack { conn, client, ack }
            }
            Packet::Subscribe(subscribe) => {
                debug!("Received SUBSCRIBE from {client}");
                for (f, o) in &subscribe.filters {
                    debug!("\t{f} (QoS {})", o.qos as u8);
                }
                Inbound::Subscribe {
                    conn,
                    client,
                    subscribe,
                }
            }
            Packet::Unsubscribe(unsubscribe) => {
                debug!("Received UNSUBSCRIBE from {client}");
                Inbound::Unsubscribe {
                    conn,
                    client,
                    unsubscribe,
                }
            }
            Packet::PingReq => {
                debug!("Received PINGREQ from {client}");
                self.pings.send(Outgoing::PingResp);
                return None;
            }
            Packet::Disconnect(d) => {
                debug!("Received DISCONNECT from {client}");
                let session_expiry = d.properties.session_expiry_interval;
                // 0 at CONNECT cannot become non-zero at DISCONNECT [MQTTv5-3.14.2-2].
                if self.connect_expiry == 0 && session_expiry.is_some_and(|e| e > 0) {
                    return Some(End::Error(Some(disconnect_reason::PROTOCOL_ERROR)));
                }
                let will = d.code == disconnect_reason::WITH_WILL;
                return Some(End::Disconnected {
                    will,
                    session_expiry,
                });
            }
            other => {
                debug!(client = %client, packet = other.name(), "Unexpected packet.");
                return Some(End::Error(v5.then_some(disconnect_reason::PROTOCOL_ERROR)));
            }
        };
        if self.ctx.router.send(inbound).await.is_err() {
            return Some(End::Error(Some(disconnect_reason::SERVER_SHUTTING_DOWN)));
        }
        None
    }

    /// Applies and records v5 topic aliases and checks the topic name.
    /// `Err` carries the DISCONNECT reason code.
    fn resolve_topic(&mut self, mut publish: Publish) -> Result<Publish, u8> {
        if let Some(alias) = publish.properties.topic_alias.take() {
            if alias == 0 || alias > self.ctx.config.limits.max_topic_alias {
                return Err(disconnect_reason::TOPIC_ALIAS_INVALID);
            }
            if publish.topic.is_empty() {
                publish.topic = self
                    .aliases
                    .get(&alias)
                    .cloned()
                    .ok_or(disconnect_reason::PROTOCOL_ERROR)?;
            } else {
                self.aliases.insert(alias, publish.topic.clone());
            }
        }
        if !valid_topic_name(&publish.topic) {
            return Err(disconnect_reason::TOPIC_NAME_INVALID);
        }
        Ok(publish)
    }
}

#[cfg(test)]
mod tests {
    use super::Peer;

    #[test]
    fn the_log_names_network_peers_by_address_and_in_process_ones_as_such() {
        let addr: std::net::SocketAddr = "127.0.0.1:50123".parse().unwrap();
        assert_eq!(Peer::Network(addr).to_string(), "127.0.0.1:50123");
        // Not a made-up address such as 127.0.0.1:0.
        assert_eq!(Peer::InProcess.to_string(), "this process");
    }
}
