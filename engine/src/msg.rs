//! [`Msg`]: a Node-RED message (an object with `_msgid`, usually `topic` and `payload`).

use crate::value::path::{self, Path, PathError};
use crate::value::{Object, Str, Value};
use std::ops::{Deref, DerefMut};

/// Name of the message id property.
pub const MSGID: &str = "_msgid";

/// A message: a plain object with a `_msgid`. Cloning is cheap (values are
/// copy-on-write), and clones never share mutable state.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Msg(Object);

/// A new random message id: 16 lowercase hex characters, as Node-RED makes them.
pub fn new_msgid() -> Str {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut n = fastrand::u64(..);
    let mut buf = [0u8; 16];
    for b in buf.iter_mut().rev() {
        *b = HEX[(n & 0xf) as usize];
        n >>= 4;
    }
    // SAFETY-free: all bytes are ASCII hex digits.
    Str::new(std::str::from_utf8(&buf).unwrap_or("0000000000000000"))
}

impl Msg {
    /// An empty message with a fresh `_msgid`.
    pub fn new() -> Msg {
        Msg::with_capacity(3)
    }

    /// A new message (fresh `_msgid`) with room for `properties` more
    /// properties, for a node that knows how many it will set.
    pub fn with_capacity(properties: usize) -> Msg {
        let mut o = Object::with_capacity(properties + 1);
        o.insert(Str::new_static(MSGID), Value::String(new_msgid()));
        Msg(o)
    }

    /// A message with `payload` (and a fresh `_msgid`).
    pub fn with_payload(payload: impl Into<Value>) -> Msg {
        let mut m = Msg::new();
        m.0.insert("payload", payload.into());
        m
    }

    /// Wraps an object, adding a `_msgid` when it has none.
    pub fn from_object(mut o: Object) -> Msg {
        if !o.contains_key(MSGID) {
            o.insert(MSGID, Value::String(new_msgid()));
        }
        Msg(o)
    }

    /// Builds a message from a JSON object value (for tests and the admin API).
    pub fn from_value(v: Value) -> Option<Msg> {
        match v {
            Value::Object(o) => Some(Msg::from_object(std::sync::Arc::unwrap_or_clone(o))),
            _ => None,
        }
    }

    /// The underlying object.
    pub fn into_object(self) -> Object {
        self.0
    }

    /// The message as a value (object).
    pub fn to_value(&self) -> Value {
        Value::object(self.0.clone())
    }

    /// `msg._msgid`.
    pub fn msgid(&self) -> Option<&str> {
        self.0.get(MSGID).and_then(Value::as_str)
    }

    /// `msg.payload`.
    pub fn payload(&self) -> Option<&Value> {
        self.0.get("payload")
    }

    /// `msg.topic`.
    pub fn topic(&self) -> Option<&Value> {
        self.0.get("topic")
    }

    /// Sets `msg.payload`.
    pub fn set_payload(&mut self, v: impl Into<Value>) {
        self.0.insert("payload", v.into());
    }

    /// Reads a (resolved) property path.
    pub fn get_path(&self, p: &Path) -> Option<&Value> {
        path::get(&self.0, p)
    }

    /// Reads a property expression, resolving nested `[msg.x]` references.
    pub fn get_expr(&self, p: &Path) -> Result<Option<&Value>, PathError> {
        if !p.has_refs() {
            return Ok(path::get(&self.0, p));
        }
        let resolved = p.resolve(&self.0)?;
        Ok(path::get(&self.0, &resolved))
    }

    /// Sets a property expression, creating missing parents.
    pub fn set_expr(&mut self, p: &Path, v: Value) -> Result<(), PathError> {
        if !p.has_refs() {
            return path::set(&mut self.0, p, v, true);
        }
        let resolved = p.resolve(&self.0)?.into_owned();
        path::set(&mut self.0, &resolved, v, true)
    }

    /// Deletes a property expression; returns the removed value.
    pub fn delete_expr(&mut self, p: &Path) -> Result<Option<Value>, PathError> {
        if !p.has_refs() {
            return Ok(path::delete(&mut self.0, p));
        }
        let resolved = p.resolve(&self.0)?.into_owned();
        Ok(path::delete(&mut self.0, &resolved))
    }

    /// The message as compact JSON (`JSON.stringify(msg)`).
    pub fn to_json(&self) -> String {
        let mut out = String::new();
        crate::value::json::write_compact(&mut out, &Value::object(self.0.clone()));
        out
    }
}

impl Deref for Msg {
    type Target = Object;
    fn deref(&self) -> &Object {
        &self.0
    }
}

impl DerefMut for Msg {
    fn deref_mut(&mut self) -> &mut Object {
        &mut self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn msgid_is_16_hex_chars_and_unique() {
        let a = Msg::new();
        let b = Msg::new();
        let id = a.msgid().unwrap();
        assert_eq!(id.len(), 16);
        assert!(id
            .bytes()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_ne!(a.msgid(), b.msgid());
    }

    #[test]
    fn from_object_keeps_existing_msgid() {
        let mut o = Object::new();
        o.insert(MSGID, Value::str("abc"));
        assert_eq!(Msg::from_object(o).msgid(), Some("abc"));
    }
}
