//! A deterministic stand-in for `broker/fuzz` that runs in every `cargo
//! test`: mutated and truncated encodings of every packet type, and random
//! bytes, must decode to an error, "need more", or a packet that
//! round-trips; never a panic.

use bytes::{Bytes, BytesMut};

use super::*;

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn samples() -> Vec<Packet> {
    let mut props = Properties::default();
    props.user_properties.push(("k".into(), "v".into()));
    props.subscription_identifiers.push(5);
    props.message_expiry_interval = Some(9);
    vec![
        Packet::Connect(Box::new(Connect {
            version: ProtocolVersion::V5,
            clean_start: true,
            keep_alive: 30,
            properties: props.clone(),
            client_id: "c".into(),
            will: Some(LastWill {
                topic: "w".into(),
                payload: Bytes::from_static(b"x"),
                qos: QoS::AtLeastOnce,
                retain: true,
                properties: props.clone(),
            }),
            username: Some("u".into()),
            password: Some(Bytes::from_static(b"p")),
        })),
        Packet::ConnAck(ConnAck::new(0)),
        Packet::Publish(Publish {
            qos: QoS::ExactlyOnce,
            topic: "a/b".into(),
            pkid: 3,
            properties: props.clone(),
            payload: Bytes::from_static(b"payload"),
            ..Default::default()
        }),
        Packet::Ack(Ack::with_code(AckKind::PubRec, 4, 0x10)),
        Packet::Subscribe(Subscribe {
            pkid: 2,
            properties: props.clone(),
            filters: vec![("a/+".into(), SubscriptionOptions::default())],
        }),
        Packet::SubAck(SubAck {
            pkid: 2,
            properties: props.clone(),
            codes: vec![0, 0x80],
        }),
        Packet::Unsubscribe(Unsubscribe {
            pkid: 2,
            properties: props.clone(),
            filters: vec!["a".into()],
        }),
        Packet::UnsubAck(UnsubAck {
            pkid: 2,
            properties: props.clone(),
            codes: vec![0],
        }),
        Packet::Disconnect(Disconnect {
            code: 4,
            properties: props.clone(),
        }),
        Packet::Auth(Auth {
            code: 0x18,
            properties: props,
        }),
        Packet::PingReq,
    ]
}

fn check(data: &[u8], version: ProtocolVersion) {
    let mut buf = BytesMut::from(data);
    while let Ok(Some(packet)) = decode(&mut buf, version, 1 << 20) {
        let mut out = BytesMut::new();
        encode(&packet, version, &mut out);
        assert_eq!(decode(&mut out, version, usize::MAX), Ok(Some(packet)));
    }
}

#[test]
fn mutated_packets_never_panic_and_decoded_ones_round_trip() {
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    for version in [
        ProtocolVersion::V31,
        ProtocolVersion::V311,
        ProtocolVersion::V5,
    ] {
        for packet in samples() {
            let mut enc = BytesMut::new();
            encode(&packet, version, &mut enc);
            for _ in 0..3000 {
                let mut data = enc.to_vec();
                for _ in 0..1 + rng.below(4) {
                    let i = rng.below(data.len());
                    match rng.below(3) {
                        0 => data[i] = rng.next() as u8,
                        1 => data[i] ^= 1 << rng.below(8),
                        _ => data.truncate(i),
                    }
                    if data.is_empty() {
                        break;
                    }
                }
                check(&data, version);
            }
        }
        for _ in 0..3000 {
            let len = rng.below(64);
            let data: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            check(&data, version);
        }
    }
}
