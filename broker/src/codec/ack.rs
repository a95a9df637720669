//! PUBACK, PUBREC, PUBREL and PUBCOMP [MQTT-3.4..3.7]: a packet id and, in
//! v5, a reason code and properties (both omitted when success and empty).

use bytes::{BufMut, BytesMut};

use super::wire::{put_frame, Reader};
use super::{DecodeError, Properties, ProtocolVersion, PUBACK, PUBCOMP, PUBREC, PUBREL};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AckKind {
    PubAck,
    PubRec,
    PubRel,
    PubComp,
}

impl AckKind {
    pub(super) fn from_type(t: u8) -> AckKind {
        match t {
            PUBACK => AckKind::PubAck,
            PUBREC => AckKind::PubRec,
            PUBREL => AckKind::PubRel,
            _ => AckKind::PubComp,
        }
    }

    fn first_byte(self) -> u8 {
        match self {
            AckKind::PubAck => PUBACK << 4,
            AckKind::PubRec => PUBREC << 4,
            AckKind::PubRel => (PUBREL << 4) | 0x02,
            AckKind::PubComp => PUBCOMP << 4,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            AckKind::PubAck => "PUBACK",
            AckKind::PubRec => "PUBREC",
            AckKind::PubRel => "PUBREL",
            AckKind::PubComp => "PUBCOMP",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack {
    pub kind: AckKind,
    pub pkid: u16,
    /// v5 reason code; 0 (success) for v3.
    pub code: u8,
    pub properties: Properties,
}

impl Ack {
    pub fn new(kind: AckKind, pkid: u16) -> Ack {
        Ack {
            kind,
            pkid,
            code: 0,
            properties: Properties::default(),
        }
    }

    pub fn with_code(kind: AckKind, pkid: u16, code: u8) -> Ack {
        Ack {
            kind,
            pkid,
            code,
            properties: Properties::default(),
        }
    }

    pub(super) fn decode(
        kind: AckKind,
        r: &mut Reader,
        version: ProtocolVersion,
    ) -> Result<Ack, DecodeError> {
        let pkid = r.u16()?;
        let mut ack = Ack::new(kind, pkid);
        if version.is_v5() && !r.is_empty() {
            ack.code = r.u8()?;
            if !r.is_empty() {
                ack.properties = Properties::decode(r)?;
            }
        }
        Ok(ack)
    }

    pub(super) fn encode(&self, version: ProtocolVersion, out: &mut BytesMut) {
        let mut b = BytesMut::with_capacity(4);
        b.put_u16(self.pkid);
        if version.is_v5() && (self.code != 0 || !self.properties.is_empty()) {
            b.put_u8(self.code);
            if !self.properties.is_empty() {
                self.properties.encode(&mut b);
            }
        }
        put_frame(out, self.kind.first_byte(), &b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{round_trip, Packet};

    #[test]
    fn acks_round_trip() {
        for kind in [
            AckKind::PubAck,
            AckKind::PubRec,
            AckKind::PubRel,
            AckKind::PubComp,
        ] {
            let a = Ack::new(kind, 42);
            assert_eq!(
                round_trip(&Packet::Ack(a.clone()), ProtocolVersion::V311),
                Packet::Ack(a.clone())
            );
            let mut b = Ack::with_code(kind, 9, 0x10);
            b.properties.reason_string = Some("no subscribers".into());
            assert_eq!(
                round_trip(&Packet::Ack(b.clone()), ProtocolVersion::V5),
                Packet::Ack(b)
            );
        }
    }

    #[test]
    fn success_ack_is_four_bytes() {
        let mut out = BytesMut::new();
        Ack::new(AckKind::PubRel, 1).encode(ProtocolVersion::V5, &mut out);
        assert_eq!(&out[..], &[0x62, 2, 0, 1]);
    }
}
