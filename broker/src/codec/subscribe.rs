//! SUBSCRIBE and SUBACK [MQTT-3.8, 3.9] / [MQTTv5-3.8, 3.9], with the v5
//! subscription options (no local, retain as published, retain handling).

use bytes::{BufMut, BytesMut};

use super::wire::{put_frame, put_string, Reader};
use super::{DecodeError, Properties, ProtocolVersion, QoS, SUBACK, SUBSCRIBE};

/// When retained messages are sent for a new subscription [MQTTv5-3.8.3.1].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum RetainHandling {
    /// Send retained messages at the time of the subscribe.
    #[default]
    OnSubscribe = 0,
    /// Send them only if the subscription did not exist.
    OnNewSubscribe = 1,
    /// Do not send them.
    Never = 2,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct SubscriptionOptions {
    pub qos: QoS,
    pub no_local: bool,
    pub retain_as_published: bool,
    pub retain_handling: RetainHandling,
}

impl SubscriptionOptions {
    pub fn from_byte(b: u8, version: ProtocolVersion) -> Result<SubscriptionOptions, DecodeError> {
        let qos = QoS::from_u8(b & 0x03)?;
        if !version.is_v5() {
            if b & 0xfc != 0 {
                return Err(DecodeError::Protocol("reserved subscription option bits"));
            }
            return Ok(SubscriptionOptions {
                qos,
                ..Default::default()
            });
        }
        if b & 0xc0 != 0 {
            return Err(DecodeError::Protocol("reserved subscription option bits"));
        }
        let retain_handling = match (b >> 4) & 0x03 {
            0 => RetainHandling::OnSubscribe,
            1 => RetainHandling::OnNewSubscribe,
            2 => RetainHandling::Never,
            _ => return Err(DecodeError::Protocol("retain handling 3")),
        };
        Ok(SubscriptionOptions {
            qos,
            no_local: b & 0x04 != 0,
            retain_as_published: b & 0x08 != 0,
            retain_handling,
        })
    }

    pub fn to_byte(self, version: ProtocolVersion) -> u8 {
        let mut b = self.qos as u8;
        if version.is_v5() {
            if self.no_local {
                b |= 0x04;
            }
            if self.retain_as_published {
                b |= 0x08;
            }
            b |= (self.retain_handling as u8) << 4;
        }
        b
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscribe {
    pub pkid: u16,
    pub properties: Properties,
    pub filters: Vec<(String, SubscriptionOptions)>,
}

impl Subscribe {
    pub(super) fn decode(
        r: &mut Reader,
        version: ProtocolVersion,
    ) -> Result<Subscribe, DecodeError> {
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
            let filter = r.string()?;
            let options = SubscriptionOptions::from_byte(r.u8()?, version)?;
            filters.push((filter, options));
        }
        if filters.is_empty() {
            return Err(DecodeError::Protocol("SUBSCRIBE without topic filters"));
        }
        Ok(Subscribe {
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
        for (f, o) in &self.filters {
            put_string(&mut b, f);
            b.put_u8(o.to_byte(version));
        }
        put_frame(out, (SUBSCRIBE << 4) | 0x02, &b);
    }
}

/// `codes` are v5 reason codes; 3.1.1 gets 0x80 for every failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubAck {
    pub pkid: u16,
    pub properties: Properties,
    pub codes: Vec<u8>,
}

impl SubAck {
    pub(super) fn decode(r: &mut Reader, version: ProtocolVersion) -> Result<SubAck, DecodeError> {
        let pkid = r.u16()?;
        let properties = if version.is_v5() {
            Properties::decode(r)?
        } else {
            Properties::default()
        };
        let mut codes = Vec::new();
        while !r.is_empty() {
            let code = r.u8()?;
            if !version.is_v5() && !matches!(code, 0 | 1 | 2 | 0x80) {
                return Err(DecodeError::Protocol("invalid SUBACK return code"));
            }
            codes.push(code);
        }
        Ok(SubAck {
            pkid,
            properties,
            codes,
        })
    }

    pub(super) fn encode(&self, version: ProtocolVersion, out: &mut BytesMut) {
        let mut b = BytesMut::new();
        b.put_u16(self.pkid);
        if version.is_v5() {
            self.properties.encode(&mut b);
        }
        for &c in &self.codes {
            b.put_u8(if !version.is_v5() && c >= 0x80 {
                0x80
            } else {
                c
            });
        }
        put_frame(out, SUBACK << 4, &b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{round_trip, Packet};

    #[test]
    fn subscribe_round_trips_with_options() {
        let v5opts = SubscriptionOptions {
            qos: QoS::ExactlyOnce,
            no_local: true,
            retain_as_published: true,
            retain_handling: RetainHandling::Never,
        };
        let mut s = Subscribe {
            pkid: 3,
            properties: Properties::default(),
            filters: vec![
                ("a/+".into(), v5opts),
                ("#".into(), SubscriptionOptions::default()),
            ],
        };
        s.properties.subscription_identifiers.push(12);
        assert_eq!(
            round_trip(&Packet::Subscribe(s.clone()), ProtocolVersion::V5),
            Packet::Subscribe(s)
        );
        let s3 = Subscribe {
            pkid: 1,
            properties: Properties::default(),
            filters: vec![(
                "a".into(),
                SubscriptionOptions {
                    qos: QoS::AtLeastOnce,
                    ..Default::default()
                },
            )],
        };
        assert_eq!(
            round_trip(&Packet::Subscribe(s3.clone()), ProtocolVersion::V311),
            Packet::Subscribe(s3)
        );
    }

    #[test]
    fn suback_round_trips_and_maps_failures_for_v3() {
        let a = SubAck {
            pkid: 3,
            properties: Properties::default(),
            codes: vec![0, 1, 2, 0x87],
        };
        assert_eq!(
            round_trip(&Packet::SubAck(a.clone()), ProtocolVersion::V5),
            Packet::SubAck(a.clone())
        );
        let mut out = BytesMut::new();
        a.encode(ProtocolVersion::V311, &mut out);
        assert_eq!(&out[..], &[0x90, 6, 0, 3, 0, 1, 2, 0x80]);
    }

    #[test]
    fn v3_reserved_option_bits_are_errors() {
        let mut buf = BytesMut::from(&b"\x82\x06\x00\x01\x00\x01a\x04"[..]);
        assert!(crate::codec::decode(&mut buf, ProtocolVersion::V311, 1024).is_err());
    }
}
