//! MQTT 5.0 properties [MQTTv5-2.2.2]: one struct for every packet type,
//! each field optional. User properties keep their order and duplicates.

use bytes::{BufMut, Bytes, BytesMut};

use super::wire::{put_binary, put_string, put_varint, Reader};
use super::DecodeError;

/// The properties of a v5 packet. Unknown identifiers are a decode error.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Properties {
    pub payload_format_indicator: Option<u8>,
    pub message_expiry_interval: Option<u32>,
    pub content_type: Option<String>,
    pub response_topic: Option<String>,
    pub correlation_data: Option<Bytes>,
    pub subscription_identifiers: Vec<u32>,
    pub session_expiry_interval: Option<u32>,
    pub assigned_client_identifier: Option<String>,
    pub server_keep_alive: Option<u16>,
    pub authentication_method: Option<String>,
    pub authentication_data: Option<Bytes>,
    pub request_problem_information: Option<u8>,
    pub will_delay_interval: Option<u32>,
    pub request_response_information: Option<u8>,
    pub response_information: Option<String>,
    pub server_reference: Option<String>,
    pub reason_string: Option<String>,
    pub receive_maximum: Option<u16>,
    pub topic_alias_maximum: Option<u16>,
    pub topic_alias: Option<u16>,
    pub maximum_qos: Option<u8>,
    pub retain_available: Option<u8>,
    pub user_properties: Vec<(String, String)>,
    pub maximum_packet_size: Option<u32>,
    pub wildcard_subscription_available: Option<u8>,
    pub subscription_identifier_available: Option<u8>,
    pub shared_subscription_available: Option<u8>,
}

mod id {
    pub const PAYLOAD_FORMAT: u8 = 0x01;
    pub const MESSAGE_EXPIRY: u8 = 0x02;
    pub const CONTENT_TYPE: u8 = 0x03;
    pub const RESPONSE_TOPIC: u8 = 0x08;
    pub const CORRELATION_DATA: u8 = 0x09;
    pub const SUBSCRIPTION_ID: u8 = 0x0B;
    pub const SESSION_EXPIRY: u8 = 0x11;
    pub const ASSIGNED_CLIENT_ID: u8 = 0x12;
    pub const SERVER_KEEP_ALIVE: u8 = 0x13;
    pub const AUTH_METHOD: u8 = 0x15;
    pub const AUTH_DATA: u8 = 0x16;
    pub const REQUEST_PROBLEM: u8 = 0x17;
    pub const WILL_DELAY: u8 = 0x18;
    pub const REQUEST_RESPONSE: u8 = 0x19;
    pub const RESPONSE_INFO: u8 = 0x1A;
    pub const SERVER_REFERENCE: u8 = 0x1C;
    pub const REASON_STRING: u8 = 0x1F;
    pub const RECEIVE_MAXIMUM: u8 = 0x21;
    pub const TOPIC_ALIAS_MAXIMUM: u8 = 0x22;
    pub const TOPIC_ALIAS: u8 = 0x23;
    pub const MAXIMUM_QOS: u8 = 0x24;
    pub const RETAIN_AVAILABLE: u8 = 0x25;
    pub const USER_PROPERTY: u8 = 0x26;
    pub const MAXIMUM_PACKET_SIZE: u8 = 0x27;
    pub const WILDCARD_AVAILABLE: u8 = 0x28;
    pub const SUB_ID_AVAILABLE: u8 = 0x29;
    pub const SHARED_AVAILABLE: u8 = 0x2A;
}

/// Sets `slot` once; a second occurrence is a protocol error [MQTTv5-2.2.2.2].
fn once<T>(slot: &mut Option<T>, value: T) -> Result<(), DecodeError> {
    if slot.is_some() {
        return Err(DecodeError::DuplicateProperty);
    }
    *slot = Some(value);
    Ok(())
}

impl Properties {
    /// Reads a property length and the block that follows it.
    pub fn decode(r: &mut Reader) -> Result<Properties, DecodeError> {
        let len = r.varint()? as usize;
        let mut r = r.sub(len)?;
        let mut p = Properties::default();
        while !r.is_empty() {
            match r.varint()? as u8 {
                id::PAYLOAD_FORMAT => once(&mut p.payload_format_indicator, r.u8()?)?,
                id::MESSAGE_EXPIRY => once(&mut p.message_expiry_interval, r.u32()?)?,
                id::CONTENT_TYPE => once(&mut p.content_type, r.string()?)?,
                id::RESPONSE_TOPIC => once(&mut p.response_topic, r.string()?)?,
                id::CORRELATION_DATA => once(&mut p.correlation_data, r.binary()?)?,
                id::SUBSCRIPTION_ID => {
                    let v = r.varint()?;
                    if v == 0 {
                        return Err(DecodeError::Protocol("subscription identifier 0"));
                    }
                    p.subscription_identifiers.push(v);
                }
                id::SESSION_EXPIRY => once(&mut p.session_expiry_interval, r.u32()?)?,
                id::ASSIGNED_CLIENT_ID => once(&mut p.assigned_client_identifier, r.string()?)?,
                id::SERVER_KEEP_ALIVE => once(&mut p.server_keep_alive, r.u16()?)?,
                id::AUTH_METHOD => once(&mut p.authentication_method, r.string()?)?,
                id::AUTH_DATA => once(&mut p.authentication_data, r.binary()?)?,
                id::REQUEST_PROBLEM => once(&mut p.request_problem_information, r.u8()?)?,
                id::WILL_DELAY => once(&mut p.will_delay_interval, r.u32()?)?,
                id::REQUEST_RESPONSE => once(&mut p.request_response_information, r.u8()?)?,
                id::RESPONSE_INFO => once(&mut p.response_information, r.string()?)?,
                id::SERVER_REFERENCE => once(&mut p.server_reference, r.string()?)?,
                id::REASON_STRING => once(&mut p.reason_string, r.string()?)?,
                id::RECEIVE_MAXIMUM => once(&mut p.receive_maximum, r.u16()?)?,
                id::TOPIC_ALIAS_MAXIMUM => once(&mut p.topic_alias_maximum, r.u16()?)?,
                id::TOPIC_ALIAS => once(&mut p.topic_alias, r.u16()?)?,
                id::MAXIMUM_QOS => once(&mut p.maximum_qos, r.u8()?)?,
                id::RETAIN_AVAILABLE => once(&mut p.retain_available, r.u8()?)?,
                id::USER_PROPERTY => {
                    let k = r.string()?;
                    let v = r.string()?;
                    p.user_properties.push((k, v));
                }
                id::MAXIMUM_PACKET_SIZE => once(&mut p.maximum_packet_size, r.u32()?)?,
                id::WILDCARD_AVAILABLE => once(&mut p.wildcard_subscription_available, r.u8()?)?,
                id::SUB_ID_AVAILABLE => once(&mut p.subscription_identifier_available, r.u8()?)?,
                id::SHARED_AVAILABLE => once(&mut p.shared_subscription_available, r.u8()?)?,
                other => return Err(DecodeError::UnknownProperty(other)),
            }
        }
        Ok(p)
    }

    /// Writes the property length and the properties.
    pub fn encode(&self, out: &mut BytesMut) {
        let mut body = BytesMut::new();
        self.encode_body(&mut body);
        put_varint(out, body.len() as u32);
        out.put_slice(&body);
    }

    fn encode_body(&self, b: &mut BytesMut) {
        fn u8p(b: &mut BytesMut, id: u8, v: Option<u8>) {
            if let Some(v) = v {
                b.put_u8(id);
                b.put_u8(v);
            }
        }
        fn u16p(b: &mut BytesMut, id: u8, v: Option<u16>) {
            if let Some(v) = v {
                b.put_u8(id);
                b.put_u16(v);
            }
        }
        fn u32p(b: &mut BytesMut, id: u8, v: Option<u32>) {
            if let Some(v) = v {
                b.put_u8(id);
                b.put_u32(v);
            }
        }
        fn strp(b: &mut BytesMut, id: u8, v: &Option<String>) {
            if let Some(v) = v {
                b.put_u8(id);
                put_string(b, v);
            }
        }
        fn binp(b: &mut BytesMut, id: u8, v: &Option<Bytes>) {
            if let Some(v) = v {
                b.put_u8(id);
                put_binary(b, v);
            }
        }
        u8p(b, id::PAYLOAD_FORMAT, self.payload_format_indicator);
        u32p(b, id::MESSAGE_EXPIRY, self.message_expiry_interval);
        strp(b, id::CONTENT_TYPE, &self.content_type);
        strp(b, id::RESPONSE_TOPIC, &self.response_topic);
        binp(b, id::CORRELATION_DATA, &self.correlation_data);
        for v in &self.subscription_identifiers {
            b.put_u8(id::SUBSCRIPTION_ID);
            put_varint(b, *v);
        }
        u32p(b, id::SESSION_EXPIRY, self.session_expiry_interval);
        strp(b, id::ASSIGNED_CLIENT_ID, &self.assigned_client_identifier);
        u16p(b, id::SERVER_KEEP_ALIVE, self.server_keep_alive);
        strp(b, id::AUTH_METHOD, &self.authentication_method);
        binp(b, id::AUTH_DATA, &self.authentication_data);
        u8p(b, id::REQUEST_PROBLEM, self.request_problem_information);
        u32p(b, id::WILL_DELAY, self.will_delay_interval);
        u8p(b, id::REQUEST_RESPONSE, self.request_response_information);
        strp(b, id::RESPONSE_INFO, &self.response_information);
        strp(b, id::SERVER_REFERENCE, &self.server_reference);
        strp(b, id::REASON_STRING, &self.reason_string);
        u16p(b, id::RECEIVE_MAXIMUM, self.receive_maximum);
        u16p(b, id::TOPIC_ALIAS_MAXIMUM, self.topic_alias_maximum);
        u16p(b, id::TOPIC_ALIAS, self.topic_alias);
        u8p(b, id::MAXIMUM_QOS, self.maximum_qos);
        u8p(b, id::RETAIN_AVAILABLE, self.retain_available);
        for (k, v) in &self.user_properties {
            b.put_u8(id::USER_PROPERTY);
            put_string(b, k);
            put_string(b, v);
        }
        u32p(b, id::MAXIMUM_PACKET_SIZE, self.maximum_packet_size);
        u8p(
            b,
            id::WILDCARD_AVAILABLE,
            self.wildcard_subscription_available,
        );
        u8p(
            b,
            id::SUB_ID_AVAILABLE,
            self.subscription_identifier_available,
        );
        u8p(b, id::SHARED_AVAILABLE, self.shared_subscription_available);
    }

    pub fn is_empty(&self) -> bool {
        *self == Properties::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_property_round_trips_and_user_properties_keep_order() {
        let p = Properties {
            payload_format_indicator: Some(1),
            message_expiry_interval: Some(60),
            content_type: Some("text/plain".into()),
            response_topic: Some("r/t".into()),
            correlation_data: Some(Bytes::from_static(b"\x00\x01")),
            subscription_identifiers: vec![1, 300_000],
            session_expiry_interval: Some(u32::MAX),
            assigned_client_identifier: Some("auto-1".into()),
            server_keep_alive: Some(60),
            authentication_method: Some("m".into()),
            authentication_data: Some(Bytes::from_static(b"d")),
            request_problem_information: Some(0),
            will_delay_interval: Some(5),
            request_response_information: Some(1),
            response_information: Some("ri".into()),
            server_reference: Some("other".into()),
            reason_string: Some("why".into()),
            receive_maximum: Some(10),
            topic_alias_maximum: Some(5),
            topic_alias: Some(2),
            maximum_qos: Some(1),
            retain_available: Some(1),
            user_properties: vec![
                ("b".into(), "2".into()),
                ("a".into(), "1".into()),
                ("b".into(), "3".into()),
            ],
            maximum_packet_size: Some(1024),
            wildcard_subscription_available: Some(1),
            subscription_identifier_available: Some(1),
            shared_subscription_available: Some(1),
        };
        let mut out = BytesMut::new();
        p.encode(&mut out);
        let mut r = Reader::new(out.freeze());
        assert_eq!(Properties::decode(&mut r).ok(), Some(p));
        assert!(r.is_empty());
    }

    #[test]
    fn duplicate_and_unknown_properties_are_errors() {
        let dup = Bytes::from_static(&[4, 0x01, 0, 0x01, 1]);
        assert!(matches!(
            Properties::decode(&mut Reader::new(dup)),
            Err(DecodeError::DuplicateProperty)
        ));
        let unknown = Bytes::from_static(&[2, 0x7f, 0]);
        assert!(matches!(
            Properties::decode(&mut Reader::new(unknown)),
            Err(DecodeError::UnknownProperty(0x7f))
        ));
    }
}
