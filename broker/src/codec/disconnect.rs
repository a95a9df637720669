//! DISCONNECT [MQTT-3.14] / [MQTTv5-3.14] and AUTH [MQTTv5-3.15].

use bytes::{BufMut, BytesMut};

use super::wire::{put_frame, Reader};
use super::{DecodeError, Properties, ProtocolVersion, AUTH, DISCONNECT};

/// v5 DISCONNECT reason codes the broker uses.
pub mod reason {
    pub const NORMAL: u8 = 0x00;
    pub const WITH_WILL: u8 = 0x04;
    pub const PROTOCOL_ERROR: u8 = 0x82;
    pub const NOT_AUTHORIZED: u8 = 0x87;
    pub const SERVER_SHUTTING_DOWN: u8 = 0x8B;
    pub const KEEP_ALIVE_TIMEOUT: u8 = 0x8D;
    pub const SESSION_TAKEN_OVER: u8 = 0x8E;
    pub const TOPIC_NAME_INVALID: u8 = 0x90;
    pub const TOPIC_ALIAS_INVALID: u8 = 0x94;
    pub const PACKET_TOO_LARGE: u8 = 0x95;
    pub const RECEIVE_MAXIMUM_EXCEEDED: u8 = 0x93;
    pub const QUOTA_EXCEEDED: u8 = 0x97;
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Disconnect {
    /// v5 reason code; 0 for v3.
    pub code: u8,
    pub properties: Properties,
}

impl Disconnect {
    pub fn new(code: u8) -> Disconnect {
        Disconnect {
            code,
            properties: Properties::default(),
        }
    }

    pub(super) fn decode(
        r: &mut Reader,
        version: ProtocolVersion,
    ) -> Result<Disconnect, DecodeError> {
        let mut d = Disconnect::default();
        if version.is_v5() && !r.is_empty() {
            d.code = r.u8()?;
            if !r.is_empty() {
                d.properties = Properties::decode(r)?;
            }
        }
        Ok(d)
    }

    pub(super) fn encode(&self, version: ProtocolVersion, out: &mut BytesMut) {
        let mut b = BytesMut::new();
        if version.is_v5() && (self.code != 0 || !self.properties.is_empty()) {
            b.put_u8(self.code);
            self.properties.encode(&mut b);
        }
        put_frame(out, DISCONNECT << 4, &b);
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Auth {
    pub code: u8,
    pub properties: Properties,
}

impl Auth {
    pub(super) fn decode(r: &mut Reader) -> Result<Auth, DecodeError> {
        let mut a = Auth::default();
        if !r.is_empty() {
            a.code = r.u8()?;
            if !r.is_empty() {
                a.properties = Properties::decode(r)?;
            }
        }
        Ok(a)
    }

    pub(super) fn encode(&self, out: &mut BytesMut) {
        let mut b = BytesMut::new();
        b.put_u8(self.code);
        self.properties.encode(&mut b);
        put_frame(out, AUTH << 4, &b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{round_trip, Packet};

    #[test]
    fn disconnect_and_auth_round_trip() {
        let d = Disconnect::default();
        for v in [ProtocolVersion::V311, ProtocolVersion::V5] {
            assert_eq!(
                round_trip(&Packet::Disconnect(d.clone()), v),
                Packet::Disconnect(d.clone())
            );
        }
        let mut d5 = Disconnect::new(reason::WITH_WILL);
        d5.properties.session_expiry_interval = Some(0);
        assert_eq!(
            round_trip(&Packet::Disconnect(d5.clone()), ProtocolVersion::V5),
            Packet::Disconnect(d5)
        );
        let a = Auth {
            code: 0x18,
            properties: Properties::default(),
        };
        assert_eq!(
            round_trip(&Packet::Auth(a.clone()), ProtocolVersion::V5),
            Packet::Auth(a)
        );
    }
}
