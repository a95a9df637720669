#![no_main]
//! Any bytes as a journal record body (framed here with a valid length and
//! checksum, so the fuzzer reaches the body decoder): decoding never
//! panics, and a decoded record re-encodes to one that decodes the same.

use bytes::{BufMut, BytesMut};
use flowd_broker::persistence::Record;
use libfuzzer_sys::fuzz_target;

/// CRC-32 (IEEE), as the journal frames records.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fuzz_target!(|body: &[u8]| {
    let mut framed = BytesMut::new();
    framed.put_u32(body.len() as u32);
    framed.put_u32(crc32(body));
    framed.put_slice(body);
    if let Some((record, n)) = Record::decode(&framed) {
        assert_eq!(n, framed.len());
        let mut out = BytesMut::new();
        record.encode(&mut out);
        let again = Record::decode(&out).map(|(r, _)| r);
        assert_eq!(again, Some(record));
    }
});
