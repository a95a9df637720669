//! CONNECT [MQTT-3.1] / [MQTTv5-3.1]: protocol name and level, flags, keep
//! alive, properties, client id, will, user name and password.

use bytes::{BufMut, Bytes, BytesMut};

use super::wire::{put_binary, put_frame, put_string, Reader};
use super::{DecodeError, Properties, ProtocolVersion, QoS, CONNECT};

/// The will message carried by CONNECT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastWill {
    pub topic: String,
    pub payload: Bytes,
    pub qos: QoS,
    pub retain: bool,
    /// v5 will properties (will delay, message expiry, content type, ...).
    pub properties: Properties,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connect {
    pub version: ProtocolVersion,
    /// Clean session (3.1.1) / clean start (5.0).
    pub clean_start: bool,
    pub keep_alive: u16,
    pub properties: Properties,
    pub client_id: String,
    pub will: Option<LastWill>,
    pub username: Option<String>,
    pub password: Option<Bytes>,
}

const FLAG_RESERVED: u8 = 0x01;
const FLAG_CLEAN: u8 = 0x02;
const FLAG_WILL: u8 = 0x04;
const FLAG_WILL_RETAIN: u8 = 0x20;
const FLAG_PASSWORD: u8 = 0x40;
const FLAG_USERNAME: u8 = 0x80;

impl Connect {
    pub(super) fn decode(r: &mut Reader) -> Result<Connect, DecodeError> {
        let name = r.binary()?;
        let level = r.u8()?;
        let version = match (&name[..], level) {
            (b"MQTT", 4) => ProtocolVersion::V311,
            (b"MQTT", 5) => ProtocolVersion::V5,
            (b"MQIsdp", 3) => ProtocolVersion::V31,
            (b"MQTT", l) | (b"MQIsdp", l) => return Err(DecodeError::UnsupportedProtocol(l)),
            _ => return Err(DecodeError::Protocol("unknown protocol name")),
        };
        let flags = r.u8()?;
        if flags & FLAG_RESERVED != 0 {
            return Err(DecodeError::Protocol("reserved CONNECT flag set"));
        }
        let will_qos = QoS::from_u8((flags >> 3) & 0x03)?;
        let has_will = flags & FLAG_WILL != 0;
        if !has_will && (will_qos != QoS::AtMostOnce || flags & FLAG_WILL_RETAIN != 0) {
            return Err(DecodeError::Protocol(
                "will QoS or retain without will flag",
            ));
        }
        if !version.is_v5() && flags & FLAG_PASSWORD != 0 && flags & FLAG_USERNAME == 0 {
            return Err(DecodeError::Protocol("password without user name"));
        }
        let keep_alive = r.u16()?;
        let properties = if version.is_v5() {
            Properties::decode(r)?
        } else {
            Properties::default()
        };
        let client_id = r.string()?;
        let will = if has_will {
            let properties = if version.is_v5() {
                Properties::decode(r)?
            } else {
                Properties::default()
            };
            let topic = r.string()?;
            let payload = r.binary()?;
            Some(LastWill {
                topic,
                payload,
                qos: will_qos,
                retain: flags & FLAG_WILL_RETAIN != 0,
                properties,
            })
        } else {
            None
        };
        let username = if flags & FLAG_USERNAME != 0 {
            Some(r.string()?)
        } else {
            None
        };
        let password = if flags & FLAG_PASSWORD != 0 {
            Some(r.binary()?)
        } else {
            None
        };
        Ok(Connect {
            version,
            clean_start: flags & FLAG_CLEAN != 0,
            keep_alive,
            properties,
            client_id,
            will,
            username,
            password,
        })
    }

    pub(super) fn encode(&self, out: &mut BytesMut) {
        let mut b = BytesMut::new();
        match self.version {
            ProtocolVersion::V31 => put_string(&mut b, "MQIsdp"),
            _ => put_string(&mut b, "MQTT"),
        }
        b.put_u8(self.version.level());
        let mut flags = 0;
        if self.clean_start {
            flags |= FLAG_CLEAN;
        }
        if let Some(w) = &self.will {
            flags |= FLAG_WILL | ((w.qos as u8) << 3);
            if w.retain {
                flags |= FLAG_WILL_RETAIN;
            }
        }
        if self.username.is_some() {
            flags |= FLAG_USERNAME;
        }
        if self.password.is_some() {
            flags |= FLAG_PASSWORD;
        }
        b.put_u8(flags);
        b.put_u16(self.keep_alive);
        if self.version.is_v5() {
            self.properties.encode(&mut b);
        }
        put_string(&mut b, &self.client_id);
        if let Some(w) = &self.will {
            if self.version.is_v5() {
                w.properties.encode(&mut b);
            }
            put_string(&mut b, &w.topic);
            put_binary(&mut b, &w.payload);
        }
        if let Some(u) = &self.username {
            put_string(&mut b, u);
        }
        if let Some(p) = &self.password {
            put_binary(&mut b, p);
        }
        put_frame(out, CONNECT << 4, &b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{decode, round_trip, Packet};

    fn sample(version: ProtocolVersion) -> Connect {
        let mut properties = Properties::default();
        let mut will_props = Properties::default();
        if version.is_v5() {
            properties.session_expiry_interval = Some(30);
            properties.receive_maximum = Some(5);
            will_props.will_delay_interval = Some(2);
            will_props.user_properties.push(("k".into(), "v".into()));
        }
        Connect {
            version,
            clean_start: false,
            keep_alive: 60,
            properties,
            client_id: "sensor-1".into(),
            will: Some(LastWill {
                topic: "status/sensor-1".into(),
                payload: Bytes::from_static(b"offline"),
                qos: QoS::AtLeastOnce,
                retain: true,
                properties: will_props,
            }),
            username: Some("user".into()),
            password: Some(Bytes::from_static(b"secret")),
        }
    }

    #[test]
    fn connect_round_trips_in_every_version() {
        for v in [
            ProtocolVersion::V31,
            ProtocolVersion::V311,
            ProtocolVersion::V5,
        ] {
            let c = sample(v);
            assert_eq!(
                round_trip(&Packet::Connect(Box::new(c.clone())), v),
                Packet::Connect(Box::new(c))
            );
        }
    }

    #[test]
    fn minimal_connect_round_trips() {
        let c = Connect {
            version: ProtocolVersion::V311,
            clean_start: true,
            keep_alive: 0,
            properties: Properties::default(),
            client_id: String::new(),
            will: None,
            username: None,
            password: None,
        };
        let p = Packet::Connect(Box::new(c));
        assert_eq!(round_trip(&p, ProtocolVersion::V311), p);
    }

    #[test]
    fn unknown_level_is_reported_with_its_number() {
        let mut buf = BytesMut::from(&b"\x10\x0c\x00\x04MQTT\x07\x02\x00\x3c\x00\x00"[..]);
        assert_eq!(
            decode(&mut buf, ProtocolVersion::V311, 1024),
            Err(DecodeError::UnsupportedProtocol(7))
        );
    }

    #[test]
    fn reserved_flag_is_a_protocol_error() {
        let mut buf = BytesMut::from(&b"\x10\x0c\x00\x04MQTT\x04\x03\x00\x3c\x00\x00"[..]);
        assert!(matches!(
            decode(&mut buf, ProtocolVersion::V311, 1024),
            Err(DecodeError::Protocol(_))
        ));
    }
}
