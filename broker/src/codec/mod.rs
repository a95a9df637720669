//! The MQTT 3.1, 3.1.1 and 5.0 packet codec: one file per packet type, one
//! `Packet` enum for all versions (a v3 packet is a v5 packet with empty
//! properties and success reason codes), framing in [`decode`].
//!
//! Decoding is zero-copy for payloads: a frame is split off the read buffer
//! and PUBLISH payloads are `Bytes` slices of it.

mod ack;
mod connack;
mod connect;
mod disconnect;
mod properties;
mod publish;
mod subscribe;
mod unsubscribe;
pub mod wire;

use bytes::{Buf, BytesMut};

pub use ack::{Ack, AckKind};
pub use connack::{reason as connack_reason, ConnAck};
pub use connect::{Connect, LastWill};
pub use disconnect::{reason as disconnect_reason, Auth, Disconnect};
pub use properties::Properties;
pub use publish::Publish;
pub use subscribe::{RetainHandling, SubAck, Subscribe, SubscriptionOptions};
pub use unsubscribe::{UnsubAck, Unsubscribe};

/// The protocol level from CONNECT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ProtocolVersion {
    /// MQTT 3.1 ("MQIsdp", level 3).
    V31,
    /// MQTT 3.1.1 (level 4).
    V311,
    /// MQTT 5.0 (level 5).
    V5,
}

impl ProtocolVersion {
    pub fn level(self) -> u8 {
        match self {
            ProtocolVersion::V31 => 3,
            ProtocolVersion::V311 => 4,
            ProtocolVersion::V5 => 5,
        }
    }

    pub fn is_v5(self) -> bool {
        self == ProtocolVersion::V5
    }
}

/// Quality of service level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum QoS {
    #[default]
    AtMostOnce = 0,
    AtLeastOnce = 1,
    ExactlyOnce = 2,
}

impl QoS {
    pub fn from_u8(v: u8) -> Result<QoS, DecodeError> {
        match v {
            0 => Ok(QoS::AtMostOnce),
            1 => Ok(QoS::AtLeastOnce),
            2 => Ok(QoS::ExactlyOnce),
            _ => Err(DecodeError::InvalidQoS),
        }
    }
}

/// Any MQTT control packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    Connect(Box<Connect>),
    ConnAck(ConnAck),
    Publish(Publish),
    Ack(Ack),
    Subscribe(Subscribe),
    SubAck(SubAck),
    Unsubscribe(Unsubscribe),
    UnsubAck(UnsubAck),
    PingReq,
    PingResp,
    Disconnect(Disconnect),
    Auth(Auth),
}

/// Why a packet could not be decoded. Every variant closes the connection
/// that sent it (and only that one).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("packet truncated")]
    Truncated,
    #[error("malformed remaining length or variable byte integer")]
    MalformedVarint,
    #[error("invalid UTF-8 string")]
    InvalidUtf8,
    #[error("invalid QoS")]
    InvalidQoS,
    #[error("reserved packet type or flags {0:#04x}")]
    InvalidHeader(u8),
    #[error("packet of {size} bytes exceeds the maximum of {max}")]
    TooLarge { size: usize, max: usize },
    #[error("duplicate property")]
    DuplicateProperty,
    #[error("unknown property {0:#04x}")]
    UnknownProperty(u8),
    #[error("unsupported protocol name or level {0}")]
    UnsupportedProtocol(u8),
    #[error("protocol error: {0}")]
    Protocol(&'static str),
}

impl DecodeError {
    /// The v5 reason code to send in DISCONNECT/CONNACK for this error.
    pub fn reason_code(&self) -> u8 {
        match self {
            DecodeError::TooLarge { .. } => 0x95,
            DecodeError::UnsupportedProtocol(_) => 0x84,
            DecodeError::DuplicateProperty | DecodeError::Protocol(_) => 0x82,
            _ => 0x81,
        }
    }
}

const CONNECT: u8 = 1;
const CONNACK: u8 = 2;
const PUBLISH: u8 = 3;
const PUBACK: u8 = 4;
const PUBREC: u8 = 5;
const PUBREL: u8 = 6;
const PUBCOMP: u8 = 7;
const SUBSCRIBE: u8 = 8;
const SUBACK: u8 = 9;
const UNSUBSCRIBE: u8 = 10;
const UNSUBACK: u8 = 11;
const PINGREQ: u8 = 12;
const PINGRESP: u8 = 13;
const DISCONNECT: u8 = 14;
const AUTH: u8 = 15;

/// Reads the fixed header at the start of `buf`: `(first byte, remaining
/// length, header length)`, or `None` when more bytes are needed.
fn fixed_header(buf: &[u8]) -> Result<Option<(u8, usize, usize)>, DecodeError> {
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    let mut len: usize = 0;
    for i in 0..4 {
        let Some(&b) = buf.get(1 + i) else {
            return Ok(None);
        };
        len |= usize::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(Some((first, len, 2 + i)));
        }
    }
    Err(DecodeError::MalformedVarint)
}

/// Decodes one packet from the front of `buf`. `Ok(None)` means more bytes
/// are needed and nothing was consumed. `max_size` bounds the whole packet,
/// checked before the body is buffered, so a lying length cannot make us
/// allocate. `version` is the connection's protocol (CONNECT reads its own).
pub fn decode(
    buf: &mut BytesMut,
    version: ProtocolVersion,
    max_size: usize,
) -> Result<Option<Packet>, DecodeError> {
    let Some((first, len, header_len)) = fixed_header(buf)? else {
        return Ok(None);
    };
    let size = header_len + len;
    if size > max_size {
        return Err(DecodeError::TooLarge {
            size,
            max: max_size,
        });
    }
    if buf.len() < size {
        buf.reserve(size - buf.len());
        return Ok(None);
    }
    buf.advance(header_len);
    let body = buf.split_to(len).freeze();
    let mut r = wire::Reader::new(body);
    let flags = first & 0x0f;
    let expect_flags = |want: u8| {
        if flags == want {
            Ok(())
        } else {
            Err(DecodeError::InvalidHeader(first))
        }
    };
    let packet = match first >> 4 {
        CONNECT => {
            expect_flags(0)?;
            Packet::Connect(Box::new(Connect::decode(&mut r)?))
        }
        CONNACK => {
            expect_flags(0)?;
            Packet::ConnAck(ConnAck::decode(&mut r, version)?)
        }
        PUBLISH => Packet::Publish(Publish::decode(flags, &mut r, version)?),
        PUBACK | PUBREC | PUBCOMP => {
            expect_flags(0)?;
            Packet::Ack(Ack::decode(
                AckKind::from_type(first >> 4),
                &mut r,
                version,
            )?)
        }
        PUBREL => {
            expect_flags(2)?;
            Packet::Ack(Ack::decode(AckKind::PubRel, &mut r, version)?)
        }
        SUBSCRIBE => {
            expect_flags(2)?;
            Packet::Subscribe(Subscribe::decode(&mut r, version)?)
        }
        SUBACK => {
            expect_flags(0)?;
            Packet::SubAck(SubAck::decode(&mut r, version)?)
        }
        UNSUBSCRIBE => {
            expect_flags(2)?;
            Packet::Unsubscribe(Unsubscribe::decode(&mut r, version)?)
        }
        UNSUBACK => {
            expect_flags(0)?;
            Packet::UnsubAck(UnsubAck::decode(&mut r, version)?)
        }
        PINGREQ => {
            expect_flags(0)?;
            Packet::PingReq
        }
        PINGRESP => {
            expect_flags(0)?;
            Packet::PingResp
        }
        DISCONNECT => {
            expect_flags(0)?;
            Packet::Disconnect(Disconnect::decode(&mut r, version)?)
        }
        AUTH if version.is_v5() => {
            expect_flags(0)?;
            Packet::Auth(Auth::decode(&mut r)?)
        }
        _ => return Err(DecodeError::InvalidHeader(first)),
    };
    if !r.is_empty() && !matches!(packet, Packet::Publish(_)) {
        return Err(DecodeError::Protocol("trailing bytes after packet"));
    }
    Ok(Some(packet))
}

/// Appends the encoding of `packet` for a `version` connection to `out`.
pub fn encode(packet: &Packet, version: ProtocolVersion, out: &mut BytesMut) {
    match packet {
        Packet::Connect(c) => c.encode(out),
        Packet::ConnAck(c) => c.encode(version, out),
        Packet::Publish(p) => p.encode(version, out),
        Packet::Ack(a) => a.encode(version, out),
        Packet::Subscribe(s) => s.encode(version, out),
        Packet::SubAck(s) => s.encode(version, out),
        Packet::Unsubscribe(u) => u.encode(version, out),
        Packet::UnsubAck(u) => u.encode(version, out),
        Packet::PingReq => wire::put_frame(out, PINGREQ << 4, &[]),
        Packet::PingResp => wire::put_frame(out, PINGRESP << 4, &[]),
        Packet::Disconnect(d) => d.encode(version, out),
        Packet::Auth(a) => a.encode(out),
    }
}

impl Packet {
    /// The packet name as Mosquitto's log writes it.
    pub fn name(&self) -> &'static str {
        match self {
            Packet::Connect(_) => "CONNECT",
            Packet::ConnAck(_) => "CONNACK",
            Packet::Publish(_) => "PUBLISH",
            Packet::Ack(a) => a.kind.name(),
            Packet::Subscribe(_) => "SUBSCRIBE",
            Packet::SubAck(_) => "SUBACK",
            Packet::Unsubscribe(_) => "UNSUBSCRIBE",
            Packet::UnsubAck(_) => "UNSUBACK",
            Packet::PingReq => "PINGREQ",
            Packet::PingResp => "PINGRESP",
            Packet::Disconnect(_) => "DISCONNECT",
            Packet::Auth(_) => "AUTH",
        }
    }
}

#[cfg(test)]
pub(crate) fn round_trip(packet: &Packet, version: ProtocolVersion) -> Packet {
    let mut out = BytesMut::new();
    encode(packet, version, &mut out);
    let total = out.len();
    // Every strict prefix is "need more bytes", never an error or a packet.
    for cut in 0..total {
        let mut part = BytesMut::from(&out[..cut]);
        assert_eq!(
            decode(&mut part, version, usize::MAX),
            Ok(None),
            "prefix {cut} of {total}"
        );
    }
    let decoded = decode(&mut out, version, usize::MAX);
    assert!(out.is_empty(), "decode consumed the whole frame");
    match decoded {
        Ok(Some(p)) => p,
        other => panic!("round trip failed: {other:?}"),
    }
}

#[cfg(test)]
mod fuzz_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ping_and_pong_round_trip() {
        for v in [ProtocolVersion::V311, ProtocolVersion::V5] {
            assert_eq!(round_trip(&Packet::PingReq, v), Packet::PingReq);
            assert_eq!(round_trip(&Packet::PingResp, v), Packet::PingResp);
        }
    }

    #[test]
    fn oversized_length_is_refused_before_buffering() {
        let mut buf = BytesMut::from(&[0x30u8, 0xff, 0xff, 0xff, 0x7f][..]);
        assert!(matches!(
            decode(&mut buf, ProtocolVersion::V311, 1024),
            Err(DecodeError::TooLarge { .. })
        ));
    }

    #[test]
    fn reserved_types_and_bad_flags_are_errors() {
        let mut buf = BytesMut::from(&[0x00u8, 0x00][..]);
        assert!(decode(&mut buf, ProtocolVersion::V311, 1024).is_err());
        let mut buf = BytesMut::from(&[0xC1u8, 0x00][..]);
        assert!(decode(&mut buf, ProtocolVersion::V311, 1024).is_err());
        let mut buf = BytesMut::from(&[0xF0u8, 0x00][..]);
        assert!(decode(&mut buf, ProtocolVersion::V311, 1024).is_err());
    }
}
