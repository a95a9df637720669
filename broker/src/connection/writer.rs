//! The writer task of a connection: drains the outbox in batches, turns
//! deliveries into PUBLISH packets (v5: subscription ids, remaining message
//! expiry, outbound topic aliases, the client's maximum packet size) and
//! writes them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::handshake::Handshake;
use super::ConnContext;
use crate::codec::{self, Ack, AckKind, Packet, Properties, ProtocolVersion, Publish, QoS};
use crate::message::{ConnId, Delivery, Inbound, Outbox, Outgoing};

/// Bytes gathered from the outbox before one write.
const WRITE_BATCH: usize = 64 * 1024;

pub struct WriterState {
    ctx: Arc<ConnContext>,
    conn: ConnId,
    client: Arc<str>,
    version: ProtocolVersion,
    client_max_packet: Option<u32>,
    alias_max: u16,
    aliases: HashMap<Arc<str>, u16>,
    queued_qos0: Arc<AtomicUsize>,
    inflight_in: Arc<AtomicUsize>,
}

impl WriterState {
    pub fn new(hs: &Handshake, ctx: Arc<ConnContext>) -> WriterState {
        WriterState {
            ctx,
            conn: hs.conn,
            client: hs.client_id.clone(),
            version: hs.version,
            client_max_packet: hs.client_max_packet,
            alias_max: hs.client_alias_max,
            aliases: HashMap::new(),
            queued_qos0: hs.outbox.queued_qos0.clone(),
            inflight_in: hs.inflight_in.clone(),
        }
    }

    /// Encodes one outgoing item; returns true if the connection must close
    /// after this batch.
    async fn encode(&mut self, out: Outgoing, buf: &mut BytesMut) -> bool {
        let packet = match out {
            Outgoing::Publish(d) => match self.publish_packet(d).await {
                Some(p) => p,
                None => return false,
            },
            Outgoing::Ack(a) => {
                let completes = match a.kind {
                    AckKind::PubAck | AckKind::PubComp => true,
                    AckKind::PubRec => a.code >= 0x80,
                    AckKind::PubRel => false,
                };
                if completes {
                    let _ =
                        self.inflight_in
                            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                                n.checked_sub(1)
                            });
                }
                debug!(
                    "Sending {} to {} (m{}, rc{})",
                    a.kind.name(),
                    self.client,
                    a.pkid,
                    a.code
                );
                Packet::Ack(Ack::with_code(a.kind, a.pkid, a.code))
            }
            Outgoing::SubAck(s) => {
                debug!("Sending SUBACK to {}", self.client);
                Packet::SubAck(*s)
            }
            Outgoing::UnsubAck(u) => {
                debug!("Sending UNSUBACK to {}", self.client);
                Packet::UnsubAck(*u)
            }
            Outgoing::PingResp => {
                debug!("Sending PINGRESP to {}", self.client);
                Packet::PingResp
            }
            Outgoing::ConnAck { connack, .. } => Packet::ConnAck(*connack),
            Outgoing::Disconnect(d) => {
                if self.version.is_v5() {
                    debug!("Sending DISCONNECT to {} (rc{})", self.client, d.code);
                    codec::encode(&Packet::Disconnect(*d), self.version, buf);
                }
                return true;
            }
        };
        codec::encode(&packet, self.version, buf);
        false
    }

    async fn publish_packet(&mut self, d: Delivery) -> Option<Packet> {
        if d.qos == QoS::AtMostOnce {
            Outbox::qos0_taken(&self.queued_qos0);
        }
        let msg = &d.message;
        let mut properties = Properties::default();
        let mut topic: String = msg.topic.as_ref().to_owned();
        if self.version.is_v5() {
            properties = msg.properties.clone();
            properties.subscription_identifiers = d.subscription_ids.clone();
            if let Some(at) = msg.expires_at {
                let now = Instant::now();
                if at <= now && d.qos == QoS::AtMostOnce {
                    return None;
                }
                let left = at.saturating_duration_since(now);
                properties.message_expiry_interval = Some(left.as_secs_f64().ceil() as u32);
            }
            if self.alias_max > 0 {
                match self.aliases.get(&msg.topic) {
                    Some(&a) => {
                        properties.topic_alias = Some(a);
                        topic.clear();
                    }
                    None if self.aliases.len() < usize::from(self.alias_max) => {
                        let a = self.aliases.len() as u16 + 1;
                        self.aliases.insert(msg.topic.clone(), a);
                        properties.topic_alias = Some(a);
                    }
                    None => {}
                }
            }
        }
        let publish = Publish {
            dup: d.dup,
            qos: d.qos,
            retain: d.retain,
            topic,
            pkid: d.pkid,
            properties,
            payload: msg.payload.clone(),
        };
        if let Some(max) = self.client_max_packet {
            if publish.encoded_len(self.version) > max as usize {
                // Too large for the client: discard as if delivered [MQTTv5-3.1.2-25].
                debug!(client = %self.client, topic = %msg.topic, "Message exceeds the client's maximum packet size, dropped.");
                if d.qos != QoS::AtMostOnce {
                    let dropped = Inbound::Dropped {
                        conn: self.conn,
                        client: self.client.clone(),
                        pkid: d.pkid,
                    };
                    let _ = self.ctx.router.send(dropped).await;
                }
                return None;
            }
        }
        debug!(
            "Sending PUBLISH to {} (d{}, q{}, r{}, m{}, '{}', ... ({} bytes))",
            self.client,
            u8::from(publish.dup),
            publish.qos as u8,
            u8::from(publish.retain),
            publish.pkid,
            msg.topic,
            publish.payload.len()
        );
        self.ctx.stats.message_sent();
        Some(Packet::Publish(publish))
    }
}

pub async fn run<W: AsyncWrite + Unpin>(
    mut wr: W,
    mut rx: crate::message::OutboxRx,
    mut state: WriterState,
    closed: CancellationToken,
) {
    // Allocated on first use; idle connections keep no write buffer.
    let mut buf = BytesMut::new();
    'outer: while let Some(first) = rx.recv().await {
        buf.clear();
        let mut stop = state.encode(first, &mut buf).await;
        while !stop && buf.len() < WRITE_BATCH {
            match rx.try_recv() {
                Some(out) => stop = state.encode(out, &mut buf).await,
                None => break,
            }
        }
        if !buf.is_empty() {
            state.ctx.stats.bytes_out(buf.len());
            if wr.write_all(&buf).await.is_err() {
                break 'outer;
            }
        }
        if stop {
            break;
        }
        if buf.capacity() > WRITE_BATCH * 2 {
            buf = BytesMut::new();
        }
    }
    let _ = wr.flush().await;
    let _ = wr.shutdown().await;
    closed.cancel();
}
