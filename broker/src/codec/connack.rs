//! CONNACK [MQTT-3.2] / [MQTTv5-3.2].

use bytes::{BufMut, BytesMut};

use super::wire::{put_frame, Reader};
use super::{DecodeError, Properties, ProtocolVersion, CONNACK};

/// `code` is a v5 reason code; for 3.1.1 it is mapped to the matching
/// return code when encoded (see [`ConnAck::v3_code`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnAck {
    pub session_present: bool,
    pub code: u8,
    pub properties: Properties,
}

/// v5 CONNACK reason codes the broker uses.
pub mod reason {
    pub const SUCCESS: u8 = 0x00;
    pub const UNSPECIFIED: u8 = 0x80;
    pub const MALFORMED: u8 = 0x81;
    pub const PROTOCOL_ERROR: u8 = 0x82;
    pub const UNSUPPORTED_VERSION: u8 = 0x84;
    pub const CLIENT_ID_NOT_VALID: u8 = 0x85;
    pub const BAD_USER_OR_PASSWORD: u8 = 0x86;
    pub const NOT_AUTHORIZED: u8 = 0x87;
    pub const SERVER_UNAVAILABLE: u8 = 0x88;
    pub const SERVER_BUSY: u8 = 0x89;
    pub const BAD_AUTH_METHOD: u8 = 0x8C;
    pub const TOPIC_NAME_INVALID: u8 = 0x90;
    pub const PACKET_TOO_LARGE: u8 = 0x95;
    pub const QUOTA_EXCEEDED: u8 = 0x97;
}

impl ConnAck {
    pub fn new(code: u8) -> ConnAck {
        ConnAck {
            session_present: false,
            code,
            properties: Properties::default(),
        }
    }

    /// The 3.1.1 return code for a v5 reason code [MQTT-3.2.2.3].
    pub fn v3_code(code: u8) -> u8 {
        match code {
            reason::SUCCESS => 0,
            reason::UNSUPPORTED_VERSION => 1,
            reason::CLIENT_ID_NOT_VALID => 2,
            reason::SERVER_UNAVAILABLE | reason::SERVER_BUSY => 3,
            reason::BAD_USER_OR_PASSWORD => 4,
            reason::NOT_AUTHORIZED => 5,
            // 1..=5 are already 3.1.1 codes (decoded from a v3 peer).
            c @ 1..=5 => c,
            _ => 3,
        }
    }

    pub(super) fn decode(r: &mut Reader, version: ProtocolVersion) -> Result<ConnAck, DecodeError> {
        let flags = r.u8()?;
        if flags & 0xfe != 0 {
            return Err(DecodeError::Protocol("reserved CONNACK flags"));
        }
        let code = r.u8()?;
        if !version.is_v5() && code > 5 {
            return Err(DecodeError::Protocol("invalid CONNACK return code"));
        }
        if flags & 1 != 0 && code != 0 {
            return Err(DecodeError::Protocol(
                "session present on a refused CONNACK",
            ));
        }
        let properties = if version.is_v5() {
            Properties::decode(r)?
        } else {
            Properties::default()
        };
        Ok(ConnAck {
            session_present: flags & 1 != 0,
            code,
            properties,
        })
    }

    pub(super) fn encode(&self, version: ProtocolVersion, out: &mut BytesMut) {
        let mut b = BytesMut::with_capacity(8);
        // Session present must be 0 on a refusal [MQTT-3.2.2-4].
        b.put_u8(u8::from(
            self.session_present && self.code == reason::SUCCESS,
        ));
        if version.is_v5() {
            b.put_u8(self.code);
            self.properties.encode(&mut b);
        } else {
            b.put_u8(ConnAck::v3_code(self.code));
        }
        put_frame(out, CONNACK << 4, &b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{round_trip, Packet};

    #[test]
    fn connack_round_trips() {
        let mut c = ConnAck::new(reason::SUCCESS);
        c.session_present = true;
        assert_eq!(
            round_trip(&Packet::ConnAck(c.clone()), ProtocolVersion::V311),
            Packet::ConnAck(c.clone())
        );
        c.properties.assigned_client_identifier = Some("auto".into());
        assert_eq!(
            round_trip(&Packet::ConnAck(c.clone()), ProtocolVersion::V5),
            Packet::ConnAck(c)
        );
    }

    #[test]
    fn v5_codes_map_to_v3_return_codes() {
        let mut out = BytesMut::new();
        ConnAck::new(reason::CLIENT_ID_NOT_VALID).encode(ProtocolVersion::V311, &mut out);
        assert_eq!(&out[..], &[0x20, 2, 0, 2]);
        assert_eq!(ConnAck::v3_code(reason::UNSUPPORTED_VERSION), 1);
        assert_eq!(ConnAck::v3_code(reason::NOT_AUTHORIZED), 5);
    }
}
