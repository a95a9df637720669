//! UNSUBSCRIBE and UNSUBACK [MQTT-3.10, 3.11] / [MQTTv5-3.10, 3.11].

use bytes::{BufMut, BytesMut};

use super::wire::{put_frame, put_string, Reader};
use super::{DecodeError, Properties, ProtocolVersion, UNSUBACK, UNSUBSCRIBE};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsubscribe {
    pub pkid: u16,
    pub properties: Properties,
    pub filters: Vec<String>,
}

impl Unsubscribe {
    pub(super) fn decode(
        r: &mut Reader,
        version: ProtocolVersion,
    ) -> Result<Unsubscribe, DecodeError> {
        let pkid = r.u16()?;
        if pkid == 0 {
            return Err(DecodeError::Protocol("packet identifier 0"));
        }
        let properties = if version.is_v5() {
            Properties::decode(r)?
        } else {
            Properties::default()
        };
        let mut filters = Vec::new();
        while !r.is_empty() {
            filters.push(r.string()?);
        }
        if filters.is_empty() {
            return Err(DecodeError::Protocol("UNSUBSCRIBE without topic filters"));
        }
        Ok(Unsubscribe {
            pkid,
            properties,
            filters,
        })
    }

    pub(super) fn encode(&self, version: ProtocolVersion, out: &mut BytesMut) {
        let mut b = BytesMut::new();
        b.put_u16(self.pkid);
        if version.is_v5() {
            self.properties.encode(&mut b);
        }
        for f in &self.filters {
            put_string(&mut b, f);
        }
        put_frame(out, (UNSUBSCRIBE << 4) | 0x02, &b);
    }
}

/// `codes` exist only in v5 (0x00 success, 0x11 no subscription existed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsubAck {
    pub pkid: u16,
    pub properties: Properties,
    pub codes: Vec<u8>,
}

impl UnsubAck {
    pub(super) fn decode(
        r: &mut Reader,
        version: ProtocolVersion,
    ) -> Result<UnsubAck, DecodeError> {
        let pkid = r.u16()?;
        let mut a = UnsubAck {
            pkid,
            properties: Properties::default(),
            codes: Vec::new(),
        };
        if version.is_v5() {
            a.properties = Properties::decode(r)?;
            while !r.is_empty() {
                a.codes.push(r.u8()?);
            }
        }
        Ok(a)
    }

    pub(super) fn encode(&self, version: ProtocolVersion, out: &mut BytesMut) {
        let mut b = BytesMut::new();
        b.put_u16(self.pkid);
        if version.is_v5() {
            self.properties.encode(&mut b);
            b.put_slice(&self.codes);
        }
        put_frame(out, UNSUBACK << 4, &b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{round_trip, Packet};

    #[test]
    fn unsubscribe_and_unsuback_round_trip() {
        let u = Unsubscribe {
            pkid: 5,
            properties: Properties::default(),
            filters: vec!["a/#".into(), "b".into()],
        };
        for v in [ProtocolVersion::V311, ProtocolVersion::V5] {
            assert_eq!(
                round_trip(&Packet::Unsubscribe(u.clone()), v),
                Packet::Unsubscribe(u.clone())
            );
        }
        let a = UnsubAck {
            pkid: 5,
            properties: Properties::default(),
            codes: vec![0, 0x11],
        };
        assert_eq!(
            round_trip(&Packet::UnsubAck(a.clone()), ProtocolVersion::V5),
            Packet::UnsubAck(a)
        );
        let a3 = UnsubAck {
            pkid: 5,
            properties: Properties::default(),
            codes: vec![],
        };
        assert_eq!(
            round_trip(&Packet::UnsubAck(a3.clone()), ProtocolVersion::V311),
            Packet::UnsubAck(a3)
        );
    }
}
