//! PUBLISH [MQTT-3.3] / [MQTTv5-3.3]. The payload is a shared `Bytes`
//! slice of the received frame and is written without an extra copy.

use bytes::{BufMut, Bytes, BytesMut};

use super::wire::{put_string, put_varint, Reader};
use super::{DecodeError, Properties, ProtocolVersion, QoS, PUBLISH};

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Publish {
    pub dup: bool,
    pub qos: QoS,
    pub retain: bool,
    /// May be empty in v5 when a topic alias is set.
    pub topic: String,
    /// 0 for QoS 0.
    pub pkid: u16,
    pub properties: Properties,
    pub payload: Bytes,
}

impl Publish {
    pub(super) fn decode(
        flags: u8,
        r: &mut Reader,
        version: ProtocolVersion,
    ) -> Result<Publish, DecodeError> {
        let qos = QoS::from_u8((flags >> 1) & 0x03)?;
        let dup = flags & 0x08 != 0;
        if dup && qos == QoS::AtMostOnce {
            return Err(DecodeError::Protocol("DUP set on a QoS 0 PUBLISH"));
        }
        let topic = r.string()?;
        let pkid = if qos == QoS::AtMostOnce { 0 } else { r.u16()? };
        if qos != QoS::AtMostOnce && pkid == 0 {
            return Err(DecodeError::Protocol("packet identifier 0"));
        }
        let properties = if version.is_v5() {
            Properties::decode(r)?
        } else {
            Properties::default()
        };
        Ok(Publish {
            dup,
            qos,
            retain: flags & 0x01 != 0,
            topic,
            pkid,
            properties,
            payload: r.rest(),
        })
    }

    pub(super) fn encode(&self, version: ProtocolVersion, out: &mut BytesMut) {
        let mut head = BytesMut::with_capacity(self.topic.len() + 16);
        put_string(&mut head, &self.topic);
        if self.qos != QoS::AtMostOnce {
            head.put_u16(self.pkid);
        }
        if version.is_v5() {
            self.properties.encode(&mut head);
        }
        let mut first = (PUBLISH << 4) | ((self.qos as u8) << 1);
        if self.dup {
            first |= 0x08;
        }
        if self.retain {
            first |= 0x01;
        }
        let len = head.len() + self.payload.len();
        out.reserve(len + 5);
        out.put_u8(first);
        put_varint(out, len as u32);
        out.put_slice(&head);
        out.put_slice(&self.payload);
    }

    /// The size of this packet on the wire for `version`.
    pub fn encoded_len(&self, version: ProtocolVersion) -> usize {
        let mut out = BytesMut::new();
        // Properties are small next to payloads; measure the head only.
        let mut head = BytesMut::new();
        put_string(&mut head, &self.topic);
        if version.is_v5() {
            self.properties.encode(&mut head);
        }
        let len = head.len() + if self.qos == QoS::AtMostOnce { 0 } else { 2 } + self.payload.len();
        put_varint(&mut out, len as u32);
        1 + out.len() + len
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{decode, round_trip, Packet};

    #[test]
    fn publish_round_trips_at_every_qos() {
        for v in [ProtocolVersion::V311, ProtocolVersion::V5] {
            for (qos, pkid) in [
                (QoS::AtMostOnce, 0),
                (QoS::AtLeastOnce, 7),
                (QoS::ExactlyOnce, 65535),
            ] {
                let mut p = Publish {
                    dup: qos != QoS::AtMostOnce,
                    qos,
                    retain: true,
                    topic: "a/b".into(),
                    pkid,
                    properties: Properties::default(),
                    payload: Bytes::from(vec![7u8; 300]),
                };
                if v.is_v5() {
                    p.properties.user_properties.push(("z".into(), "1".into()));
                    p.properties.topic_alias = Some(3);
                }
                let len = p.encoded_len(v);
                let mut out = BytesMut::new();
                p.encode(v, &mut out);
                assert_eq!(out.len(), len);
                assert_eq!(
                    round_trip(&Packet::Publish(p.clone()), v),
                    Packet::Publish(p)
                );
            }
        }
    }

    #[test]
    fn qos3_and_pkid0_are_errors() {
        let mut buf = BytesMut::from(&b"\x36\x05\x00\x01a\x00\x01"[..]);
        assert_eq!(
            decode(&mut buf, ProtocolVersion::V311, 1024),
            Err(DecodeError::InvalidQoS)
        );
        let mut buf = BytesMut::from(&b"\x32\x05\x00\x01a\x00\x00"[..]);
        assert!(matches!(
            decode(&mut buf, ProtocolVersion::V311, 1024),
            Err(DecodeError::Protocol(_))
        ));
    }

    #[test]
    fn empty_payload_is_allowed() {
        let p = Publish {
            topic: "t".into(),
            ..Default::default()
        };
        assert_eq!(
            round_trip(&Packet::Publish(p.clone()), ProtocolVersion::V311),
            Packet::Publish(p)
        );
    }
}
