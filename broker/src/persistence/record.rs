//! Journal records: `len u32 | crc32 u32 | body`, body = kind byte and
//! fields. Messages are stored as MQTT 5 PUBLISH packets (the codec does
//! the work) plus an absolute expiry. A torn or corrupt tail record is
//! detected by length and checksum and ends the replay.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{BufMut, Bytes, BytesMut};

use crate::codec::wire::{put_string, Reader};
use crate::codec::{self, DecodeError, Packet, ProtocolVersion, Publish, QoS, SubscriptionOptions};
use crate::message::Message;

#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    RetainSet(StoredMessage),
    RetainClear {
        topic: String,
    },
    Session {
        client: String,
        version: ProtocolVersion,
        expiry: u32,
    },
    SessionEnd {
        client: String,
    },
    Subscribe {
        client: String,
        filter: String,
        options: SubscriptionOptions,
        id: Option<u32>,
    },
    Unsubscribe {
        client: String,
        filter: String,
    },
    Enqueue {
        client: String,
        seq: u64,
        qos: QoS,
        retain: bool,
        ids: Vec<u32>,
        message: StoredMessage,
    },
    Done {
        client: String,
        seq: u64,
    },
    /// An incoming QoS 2 PUBLISH was routed; its packet id awaits PUBREL
    /// (a resent PUBLISH with this id is not routed again).
    Qos2In {
        client: String,
        pkid: u16,
    },
    /// PUBREL received for an incoming QoS 2 packet id: the id is free.
    Qos2InDone {
        client: String,
        pkid: u16,
    },
    /// The outgoing QoS 1/2 delivery `seq` was sent as packet id `pkid`
    /// (resent with that id after a restart [MQTT-4.4.0-1]); `released`
    /// (QoS 2): PUBREC received and PUBREL sent (awaiting PUBCOMP).
    OutSent {
        client: String,
        seq: u64,
        pkid: u16,
        released: bool,
    },
    /// End of one flushed batch: replay applies a batch only when its
    /// commit is there, so a torn write takes the whole (unacknowledged)
    /// batch with it instead of half of it.
    Commit,
}

/// A message as stored: its publish fields and absolute expiry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    pub publish: Publish,
    /// Seconds since the Unix epoch; 0 = never.
    pub expires_unix: u64,
}

impl StoredMessage {
    pub fn from_message(m: &Message) -> StoredMessage {
        let now = Instant::now();
        let expires_unix = m.expires_at.map_or(0, |at| {
            unix_now() + at.saturating_duration_since(now).as_secs().max(1)
        });
        let mut properties = m.properties.clone();
        properties.message_expiry_interval = None;
        StoredMessage {
            publish: Publish {
                dup: false,
                qos: m.qos,
                retain: m.retain,
                topic: m.topic.to_string(),
                pkid: if m.qos == QoS::AtMostOnce { 0 } else { 1 },
                properties,
                payload: m.payload.clone(),
            },
            expires_unix,
        }
    }

    /// Back to a routable message; `None` if it expired meanwhile.
    pub fn into_message(self) -> Option<Message> {
        self.restore(false)
    }

    /// Back to a message even if it expired meanwhile (then it expires
    /// now): one whose onward delivery had started, which is completed
    /// whatever its expiry [MQTT-3.3.2-5].
    pub fn into_started_message(self) -> Message {
        match self.restore(true) {
            Some(m) => m,
            None => unreachable!("restore(true) keeps expired messages"),
        }
    }

    fn restore(self, keep_expired: bool) -> Option<Message> {
        let now = Instant::now();
        let expires_at = match self.expires_unix {
            0 => None,
            t => match t.checked_sub(unix_now()).filter(|&s| s > 0) {
                Some(left) => Some(now + Duration::from_secs(left)),
                None if keep_expired => Some(now),
                None => return None,
            },
        };
        let p = self.publish;
        Some(Message {
            topic: p.topic.into(),
            payload: p.payload,
            qos: p.qos,
            retain: p.retain,
            properties: p.properties,
            expires_at,
            publisher: None,
        })
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// CRC-32 (IEEE), bitwise: records are small and this is off the hot path.
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

const RETAIN_SET: u8 = 1;
const RETAIN_CLEAR: u8 = 2;
const SESSION: u8 = 3;
const SESSION_END: u8 = 4;
const SUBSCRIBE: u8 = 5;
const UNSUBSCRIBE: u8 = 6;
const ENQUEUE: u8 = 7;
const DONE: u8 = 8;
const QOS2_IN: u8 = 9;
const QOS2_IN_DONE: u8 = 10;
const OUT_SENT: u8 = 11;
const COMMIT: u8 = 12;

fn put_message(b: &mut BytesMut, m: &StoredMessage) {
    b.put_u64(m.expires_unix);
    codec::encode(&Packet::Publish(m.publish.clone()), ProtocolVersion::V5, b);
}

fn get_message(r: &mut Reader) -> Result<StoredMessage, DecodeError> {
    let expires_unix = u64::from(r.u32()?) << 32 | u64::from(r.u32()?);
    let mut rest = BytesMut::from(&r.rest()[..]);
    match codec::decode(&mut rest, ProtocolVersion::V5, usize::MAX)? {
        Some(Packet::Publish(publish)) => Ok(StoredMessage {
            publish,
            expires_unix,
        }),
        _ => Err(DecodeError::Truncated),
    }
}

impl Record {
    /// Appends the framed record to `out`.
    pub fn encode(&self, out: &mut BytesMut) {
        let mut b = BytesMut::new();
        match self {
            Record::RetainSet(m) => {
                b.put_u8(RETAIN_SET);
                put_message(&mut b, m);
            }
            Record::RetainClear { topic } => {
                b.put_u8(RETAIN_CLEAR);
                put_string(&mut b, topic);
            }
            Record::Session {
                client,
                version,
                expiry,
            } => {
                b.put_u8(SESSION);
                put_string(&mut b, client);
                b.put_u8(version.level());
                b.put_u32(*expiry);
            }
            Record::SessionEnd { client } => {
                b.put_u8(SESSION_END);
                put_string(&mut b, client);
            }
            Record::Subscribe {
                client,
                filter,
                options,
                id,
            } => {
                b.put_u8(SUBSCRIBE);
                put_string(&mut b, client);
                put_string(&mut b, filter);
                b.put_u8(options.to_byte(ProtocolVersion::V5));
                b.put_u32(id.unwrap_or(0));
            }
            Record::Unsubscribe { client, filter } => {
                b.put_u8(UNSUBSCRIBE);
                put_string(&mut b, client);
                put_string(&mut b, filter);
            }
            Record::Enqueue {
                client,
                seq,
                qos,
                retain,
                ids,
                message,
            } => {
                b.put_u8(ENQUEUE);
                put_string(&mut b, client);
                b.put_u64(*seq);
                b.put_u8(*qos as u8);
                b.put_u8(u8::from(*retain));
                b.put_u8(ids.len().min(255) as u8);
                for id in ids.iter().take(255) {
                    b.put_u32(*id);
                }
                put_message(&mut b, message);
            }
            Record::Done { client, seq } => {
                b.put_u8(DONE);
                put_string(&mut b, client);
                b.put_u64(*seq);
            }
            Record::Qos2In { client, pkid } => {
                b.put_u8(QOS2_IN);
                put_string(&mut b, client);
                b.put_u16(*pkid);
            }
            Record::Qos2InDone { client, pkid } => {
                b.put_u8(QOS2_IN_DONE);
                put_string(&mut b, client);
                b.put_u16(*pkid);
            }
            Record::OutSent {
                client,
                seq,
                pkid,
                released,
            } => {
                b.put_u8(OUT_SENT);
                put_string(&mut b, client);
                b.put_u64(*seq);
                b.put_u16(*pkid);
                b.put_u8(u8::from(*released));
            }
            Record::Commit => b.put_u8(COMMIT),
        }
        out.put_u32(b.len() as u32);
        out.put_u32(crc32(&b));
        out.put_slice(&b);
    }

    /// Decodes one framed record from the front of `data`: the record and
    /// its framed length, or `None` at a torn or corrupt tail.
    pub fn decode(data: &[u8]) -> Option<(Record, usize)> {
        let header = data.get(..8)?;
        let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let crc = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
        let body = data.get(8..8 + len)?;
        if crc32(body) != crc {
            return None;
        }
        let record = Record::decode_body(Bytes::copy_from_slice(body)).ok()?;
        Some((record, 8 + len))
    }

    fn decode_body(body: Bytes) -> Result<Record, DecodeError> {
        let mut r = Reader::new(body);
        let u64v = |r: &mut Reader| -> Result<u64, DecodeError> {
            Ok(u64::from(r.u32()?) << 32 | u64::from(r.u32()?))
        };
        Ok(match r.u8()? {
            RETAIN_SET => Record::RetainSet(get_message(&mut r)?),
            RETAIN_CLEAR => Record::RetainClear { topic: r.string()? },
            SESSION => {
                let client = r.string()?;
                let version = match r.u8()? {
                    3 => ProtocolVersion::V31,
                    4 => ProtocolVersion::V311,
                    _ => ProtocolVersion::V5,
                };
                Record::Session {
                    client,
                    version,
                    expiry: r.u32()?,
                }
            }
            SESSION_END => Record::SessionEnd {
                client: r.string()?,
            },
            SUBSCRIBE => {
                let client = r.string()?;
                let filter = r.string()?;
                let options = SubscriptionOptions::from_byte(r.u8()?, ProtocolVersion::V5)?;
                let id = Some(r.u32()?).filter(|&i| i != 0);
                Record::Subscribe {
                    client,
                    filter,
                    options,
                    id,
                }
            }
            UNSUBSCRIBE => Record::Unsubscribe {
                client: r.string()?,
                filter: r.string()?,
            },
            ENQUEUE => {
                let client = r.string()?;
                let seq = u64v(&mut r)?;
                let qos = QoS::from_u8(r.u8()?)?;
                let retain = r.u8()? != 0;
                let n = r.u8()?;
                let mut ids = Vec::with_capacity(usize::from(n));
                for _ in 0..n {
                    ids.push(r.u32()?);
                }
                Record::Enqueue {
                    client,
                    seq,
                    qos,
                    retain,
                    ids,
                    message: get_message(&mut r)?,
                }
            }
            DONE => Record::Done {
                client: r.string()?,
                seq: u64v(&mut r)?,
            },
            QOS2_IN => Record::Qos2In {
                client: r.string()?,
                pkid: r.u16()?,
            },
            QOS2_IN_DONE => Record::Qos2InDone {
                client: r.string()?,
                pkid: r.u16()?,
            },
            OUT_SENT => Record::OutSent {
                client: r.string()?,
                seq: u64v(&mut r)?,
                pkid: r.u16()?,
                released: r.u8()? != 0,
            },
            COMMIT => Record::Commit,
            _ => return Err(DecodeError::Protocol("unknown journal record")),
        })
    }
}

#[cfg(test)]
use crate::codec::Properties;

/// For tests: a stored message with default properties.
#[cfg(test)]
pub fn sample_message(topic: &str, payload: &'static [u8]) -> StoredMessage {
    StoredMessage {
        publish: Publish {
            qos: QoS::AtLeastOnce,
            retain: true,
            topic: topic.into(),
            pkid: 1,
            properties: Properties {
                user_properties: vec![("k".into(), "v".into())],
                ..Default::default()
            },
            payload: Bytes::from_static(payload),
            ..Default::default()
        },
        expires_unix: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_record_round_trips() {
        let records = vec![
            Record::RetainSet(sample_message("a/b", b"x")),
            Record::RetainClear {
                topic: "a/b".into(),
            },
            Record::Session {
                client: "c".into(),
                version: ProtocolVersion::V311,
                expiry: u32::MAX,
            },
            Record::SessionEnd { client: "c".into() },
            Record::Subscribe {
                client: "c".into(),
                filter: "$share/g/a/#".into(),
                options: SubscriptionOptions {
                    qos: QoS::ExactlyOnce,
                    no_local: true,
                    ..Default::default()
                },
                id: Some(9),
            },
            Record::Unsubscribe {
                client: "c".into(),
                filter: "a".into(),
            },
            Record::Enqueue {
                client: "c".into(),
                seq: 1 << 40,
                qos: QoS::ExactlyOnce,
                retain: false,
                ids: vec![1, 2],
                message: sample_message("t", b"payload"),
            },
            Record::Done {
                client: "c".into(),
                seq: 1 << 40,
            },
            Record::Qos2In {
                client: "c".into(),
                pkid: 65535,
            },
            Record::Qos2InDone {
                client: "c".into(),
                pkid: 7,
            },
            Record::OutSent {
                client: "c".into(),
                seq: 1 << 33,
                pkid: 12,
                released: true,
            },
            Record::Commit,
        ];
        let mut out = BytesMut::new();
        for r in &records {
            r.encode(&mut out);
        }
        let mut pos = 0;
        for want in &records {
            let (got, n) = Record::decode(&out[pos..]).expect("decodes");
            assert_eq!(&got, want);
            pos += n;
        }
        assert_eq!(pos, out.len());
    }

    #[test]
    fn torn_and_corrupt_tails_end_the_replay() {
        let mut out = BytesMut::new();
        Record::Done {
            client: "c".into(),
            seq: 5,
        }
        .encode(&mut out);
        for cut in 0..out.len() {
            assert!(Record::decode(&out[..cut]).is_none());
        }
        let mut bad = out.to_vec();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(Record::decode(&bad).is_none());
    }

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }
}
