//! Wire primitives shared by every packet: a bounds-checked reader over a
//! frozen frame, and writers for integers, variable byte integers, UTF-8
//! strings and binary data [MQTT-1.5].

use bytes::{BufMut, Bytes, BytesMut};

use super::DecodeError;

/// Largest value a variable byte integer can hold [MQTT-1.5.5].
pub const MAX_VARINT: u32 = 268_435_455;

/// A cursor over one packet's bytes. Every read checks the bounds, so a
/// truncated or lying packet yields an error, never a panic.
pub struct Reader {
    buf: Bytes,
    pos: usize,
}

impl Reader {
    pub fn new(buf: Bytes) -> Self {
        Reader { buf, pos: 0 }
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        let b = *self.buf.get(self.pos).ok_or(DecodeError::Truncated)?;
        self.pos += 1;
        Ok(b)
    }

    pub fn u16(&mut self) -> Result<u16, DecodeError> {
        let hi = self.u8()?;
        let lo = self.u8()?;
        Ok(u16::from_be_bytes([hi, lo]))
    }

    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn varint(&mut self) -> Result<u32, DecodeError> {
        let mut value: u32 = 0;
        for i in 0..4 {
            let b = self.u8()?;
            value |= u32::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(DecodeError::MalformedVarint)
    }

    /// `n` bytes as a shared slice of the frame (no copy).
    pub fn take(&mut self, n: usize) -> Result<Bytes, DecodeError> {
        if self.remaining() < n {
            return Err(DecodeError::Truncated);
        }
        let out = self.buf.slice(self.pos..self.pos + n);
        self.pos += n;
        Ok(out)
    }

    /// Everything left, as a shared slice (a PUBLISH payload).
    pub fn rest(&mut self) -> Bytes {
        let out = self.buf.slice(self.pos..);
        self.pos = self.buf.len();
        out
    }

    pub fn binary(&mut self) -> Result<Bytes, DecodeError> {
        let len = self.u16()? as usize;
        self.take(len)
    }

    /// A UTF-8 string; U+0000 is not allowed [MQTT-1.5.4-2].
    pub fn string(&mut self) -> Result<String, DecodeError> {
        let raw = self.binary()?;
        let s = std::str::from_utf8(&raw).map_err(|_| DecodeError::InvalidUtf8)?;
        if s.contains('\0') {
            return Err(DecodeError::InvalidUtf8);
        }
        Ok(s.to_owned())
    }

    /// A sub-reader over the next `n` bytes (a property block).
    pub fn sub(&mut self, n: usize) -> Result<Reader, DecodeError> {
        Ok(Reader::new(self.take(n)?))
    }
}

pub fn put_varint(out: &mut BytesMut, mut value: u32) {
    loop {
        let mut b = (value % 128) as u8;
        value /= 128;
        if value > 0 {
            b |= 0x80;
        }
        out.put_u8(b);
        if value == 0 {
            break;
        }
    }
}

pub fn varint_len(value: u32) -> usize {
    match value {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

pub fn put_binary(out: &mut BytesMut, data: &[u8]) {
    // Lengths above u16::MAX are refused at the API edges; clamp defensively.
    let len = data.len().min(usize::from(u16::MAX));
    out.put_u16(len as u16);
    out.put_slice(&data[..len]);
}

pub fn put_string(out: &mut BytesMut, s: &str) {
    put_binary(out, s.as_bytes());
}

/// Writes a fixed header + remaining length + `body`.
pub fn put_frame(out: &mut BytesMut, first_byte: u8, body: &[u8]) {
    out.reserve(body.len() + 5);
    out.put_u8(first_byte);
    put_varint(out, body.len() as u32);
    out.put_slice(body);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_round_trips_at_every_boundary() {
        for v in [
            0, 127, 128, 16_383, 16_384, 2_097_151, 2_097_152, MAX_VARINT,
        ] {
            let mut out = BytesMut::new();
            put_varint(&mut out, v);
            assert_eq!(out.len(), varint_len(v));
            let mut r = Reader::new(out.freeze());
            assert_eq!(r.varint().ok(), Some(v));
        }
    }

    #[test]
    fn five_byte_varint_is_malformed() {
        let mut r = Reader::new(Bytes::from_static(&[0xff, 0xff, 0xff, 0xff, 0x01]));
        assert!(matches!(r.varint(), Err(DecodeError::MalformedVarint)));
    }

    #[test]
    fn reads_past_the_end_fail() {
        let mut r = Reader::new(Bytes::from_static(&[0x00, 0x05, b'a']));
        assert!(matches!(r.string(), Err(DecodeError::Truncated)));
    }

    #[test]
    fn strings_with_nul_or_bad_utf8_fail() {
        let mut r = Reader::new(Bytes::from_static(&[0x00, 0x01, 0x00]));
        assert!(matches!(r.string(), Err(DecodeError::InvalidUtf8)));
        let mut r = Reader::new(Bytes::from_static(&[0x00, 0x01, 0xff]));
        assert!(matches!(r.string(), Err(DecodeError::InvalidUtf8)));
    }
}
