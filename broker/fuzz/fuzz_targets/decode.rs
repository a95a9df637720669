#![no_main]
//! Any bytes, in every protocol version: decoding never panics, and a
//! decoded packet re-encodes to something that decodes to the same packet.

use bytes::BytesMut;
use flowd_broker::codec::{decode, encode, ProtocolVersion};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for version in [ProtocolVersion::V31, ProtocolVersion::V311, ProtocolVersion::V5] {
        let mut buf = BytesMut::from(data);
        while let Ok(Some(packet)) = decode(&mut buf, version, 1 << 20) {
            let mut out = BytesMut::new();
            encode(&packet, version, &mut out);
            let again = decode(&mut out, version, usize::MAX);
            assert_eq!(again, Ok(Some(packet)));
        }
    }
});
