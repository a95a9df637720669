//! The CONNECT handshake: read CONNECT within the connect timeout, check
//! protocol level, client id, keep alive, will and credentials, hand the
//! session to the router and write its CONNACK.

use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tracing::{debug, info};

use super::{ConnContext, Peer};
use crate::codec::{self, connack_reason, ConnAck, Connect, DecodeError, Packet, ProtocolVersion};
use crate::message::{ConnId, Inbound, Outbox, Outgoing};
use crate::topic::valid_topic_name;

/// An accepted connection, ready for the reader loop and writer.
pub struct Handshake {
    pub conn: ConnId,
    pub client_id: Arc<str>,
    pub version: ProtocolVersion,
    /// Effective keep alive in seconds (0 = none).
    pub keep_alive: u16,
    pub session_expiry: u32,
    pub outbox: Outbox,
    pub outbox_rx: crate::message::OutboxRx,
    /// v5 Maximum Packet Size the client accepts.
    pub client_max_packet: Option<u32>,
    /// v5 Topic Alias Maximum the client accepts from us.
    pub client_alias_max: u16,
    /// Inbound QoS 1/2 publishes not yet completed.
    pub inflight_in: Arc<AtomicUsize>,
}

/// Mosquitto's protocol number in log lines (p1 = 3.1, p2 = 3.1.1, p5).
pub fn log_protocol(v: ProtocolVersion) -> u8 {
    match v {
        ProtocolVersion::V31 => 1,
        ProtocolVersion::V311 => 2,
        ProtocolVersion::V5 => 5,
    }
}

async fn read_connect<R: AsyncRead + Unpin>(
    rd: &mut R,
    rbuf: &mut BytesMut,
    max: usize,
) -> Result<Packet, DecodeError> {
    loop {
        if let Some(p) = codec::decode(rbuf, ProtocolVersion::V311, max)? {
            return Ok(p);
        }
        match rd.read_buf(rbuf).await {
            Ok(0) | Err(_) => return Err(DecodeError::Truncated),
            Ok(_) => {}
        }
    }
}

async fn send_connack<W: AsyncWrite + Unpin>(
    wr: &mut W,
    version: ProtocolVersion,
    connack: &ConnAck,
) {
    let mut out = BytesMut::new();
    codec::encode(&Packet::ConnAck(connack.clone()), version, &mut out);
    let _ = wr.write_all(&out).await;
    let _ = wr.flush().await;
}

async fn refuse<W: AsyncWrite + Unpin>(
    wr: &mut W,
    peer: Peer,
    version: ProtocolVersion,
    code: u8,
) -> Option<Handshake> {
    info!("Client <unknown> from {peer} refused: CONNACK code {code:#04x}.");
    send_connack(wr, version, &ConnAck::new(code)).await;
    let _ = wr.shutdown().await;
    None
}

pub async fn run<R, W>(
    rd: &mut R,
    wr: &mut W,
    rbuf: &mut BytesMut,
    peer: Peer,
    allow_anonymous: bool,
    ctx: &Arc<ConnContext>,
) -> Option<Handshake>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let limits = &ctx.config.limits;
    let first = tokio::time::timeout(
        limits.connect_timeout,
        read_connect(rd, rbuf, limits.max_packet_size as usize),
    )
    .await;
    let mut connect: Connect = match first {
        Ok(Ok(Packet::Connect(c))) => *c,
        Ok(Err(DecodeError::UnsupportedProtocol(_))) => {
            // 3.1.1 return code 1; a v5 client never sends an unknown level.
            return refuse(
                wr,
                peer,
                ProtocolVersion::V311,
                connack_reason::UNSUPPORTED_VERSION,
            )
            .await;
        }
        Ok(Ok(_)) | Ok(Err(_)) => {
            info!("Socket error on client <unknown>, disconnecting.");
            return None;
        }
        Err(_) => {
            info!("Client <unknown> from {peer} sent no CONNECT in time, disconnecting.");
            return None;
        }
    };
    let version = connect.version;
    let v5 = version.is_v5();
    let conn = ctx.conn_id();

    let mut assigned = None;
    if connect.client_id.is_empty() {
        if !v5 && !connect.clean_start {
            return refuse(wr, peer, version, connack_reason::CLIENT_ID_NOT_VALID).await;
        }
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let id = format!("auto-{nanos:08x}-{conn}");
        connect.client_id = id.clone();
        assigned = Some(id);
    }

    let mut server_keep_alive = None;
    if let Some(max) = ctx.config.max_keepalive {
        if v5 {
            if connect.keep_alive == 0 || connect.keep_alive > max {
                server_keep_alive = Some(max);
                connect.keep_alive = max;
            }
        } else if connect.keep_alive > max {
            // Mosquitto's rule for clients that cannot be told [max_keepalive].
            return refuse(wr, peer, version, connack_reason::CLIENT_ID_NOT_VALID).await;
        }
    }
    if connect
        .will
        .as_ref()
        .is_some_and(|w| !valid_topic_name(&w.topic))
    {
        return refuse(wr, peer, version, connack_reason::TOPIC_NAME_INVALID).await;
    }
    if let Err(code) = ctx.auth.check(
        connect.username.as_deref(),
        connect.password.as_deref(),
        allow_anonymous,
    ) {
        return refuse(wr, peer, version, code).await;
    }

    let (outbox, mut outbox_rx) = Outbox::new();
    let client_id: Arc<str> = connect.client_id.as_str().into();
    let keep_alive = connect.keep_alive;
    let clean = connect.clean_start;
    let session_expiry = connect.properties.session_expiry_interval.unwrap_or(0);
    let client_max_packet = connect.properties.maximum_packet_size;
    let client_alias_max = connect.properties.topic_alias_maximum.unwrap_or(0);
    let username = connect.username.clone();
    let inbound = Inbound::Connect {
        conn,
        connect: Box::new(connect),
        outbox: outbox.clone(),
        username: username.clone(),
    };
    if ctx.router.send(inbound).await.is_err() {
        return refuse(wr, peer, version, connack_reason::SERVER_UNAVAILABLE).await;
    }
    let mut connack = match outbox_rx.recv().await {
        Some(Outgoing::ConnAck { connack, .. }) => *connack,
        _ => return refuse(wr, peer, version, connack_reason::SERVER_UNAVAILABLE).await,
    };
    connack.properties.assigned_client_identifier = assigned.filter(|_| v5);
    connack.properties.server_keep_alive = server_keep_alive;
    send_connack(wr, version, &connack).await;
    let user = username.map(|u| format!(", u'{u}'")).unwrap_or_default();
    info!(
        "New client connected from {peer} as {client_id} (p{}, c{}, k{keep_alive}{user}).",
        log_protocol(version),
        u8::from(clean)
    );
    debug!(
        "Sending CONNACK to {client_id} ({}, {})",
        u8::from(connack.session_present),
        connack.code
    );
    Some(Handshake {
        conn,
        client_id,
        version,
        keep_alive,
        session_expiry,
        outbox,
        outbox_rx,
        client_max_packet,
        client_alias_max,
        inflight_in: Arc::new(AtomicUsize::new(0)),
    })
}
