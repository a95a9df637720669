//! [`Object`]: a JavaScript plain object's own properties, in JavaScript order.

use super::{Str, Value};
use std::collections::HashMap;

/// Objects with more properties than this get a hash index for lookups.
const INDEX_THRESHOLD: usize = 16;

/// A plain object: ordered properties as JavaScript orders them (integer-like
/// keys ascending first, then insertion order). Small objects (the common
/// case for messages) are a plain vector searched linearly; large ones add a
/// hash index.
#[derive(Clone, Debug, Default)]
pub struct Object {
    entries: Vec<Entry>,
    /// Number of leading entries whose key is an array index.
    index_keys: usize,
    // Boxed so that objects without an index (nearly all) stay small.
    #[allow(clippy::box_collection)]
    lookup: Option<Box<HashMap<Str, usize>>>,
}

/// One property. `fp` is a fingerprint of the key (its length and first 7
/// bytes), compared before the key itself: lookups among the few keys of a
/// message are then a scan over integers.
#[derive(Clone, Debug)]
struct Entry {
    fp: u64,
    key: Str,
    value: Value,
}

/// Key length in the top byte, the first 7 bytes below it. Keys of up to 7
/// bytes are equal exactly when their fingerprints are.
#[inline]
fn fingerprint(key: &str) -> u64 {
    let b = key.as_bytes();
    let low = match b.first_chunk::<8>() {
        Some(chunk) => u64::from_le_bytes(*chunk) & 0x00ff_ffff_ffff_ffff,
        None => b
            .iter()
            .enumerate()
            .fold(0u64, |acc, (i, &x)| acc | (u64::from(x) << (8 * i))),
    };
    low | ((b.len().min(255) as u64) << 56)
}

/// The numeric value of `key` if it is a canonical array index ("0", "17", not "01").
pub fn array_index(key: &str) -> Option<u32> {
    let b = key.as_bytes();
    if b.is_empty() || b.len() > 10 || (b.len() > 1 && b[0] == b'0') {
        return None;
    }
    if !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n: u64 = key.parse().ok()?;
    (n < u32::MAX as u64).then_some(n as u32)
}

impl Object {
    /// An empty object.
    pub fn new() -> Self {
        Object::default()
    }

    /// An empty object with room for `n` properties.
    pub fn with_capacity(n: usize) -> Self {
        Object {
            entries: Vec::with_capacity(n),
            index_keys: 0,
            lookup: None,
        }
    }

    /// Number of own properties.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when there are no properties.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    #[inline]
    fn position(&self, key: &str) -> Option<usize> {
        self.position_fp(key, fingerprint(key))
    }

    #[inline]
    fn position_fp(&self, key: &str, fp: u64) -> Option<usize> {
        if let Some(map) = &self.lookup {
            return map.get(key).copied();
        }
        if key.len() <= 7 {
            self.entries.iter().position(|e| e.fp == fp)
        } else {
            self.entries
                .iter()
                .position(|e| e.fp == fp && e.key.as_str() == key)
        }
    }

    /// The value of property `key`.
    #[inline]
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.position(key).map(|i| &self.entries[i].value)
    }

    /// Mutable access to property `key`.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        self.position(key).map(move |i| &mut self.entries[i].value)
    }

    /// True when the object has own property `key`.
    pub fn contains_key(&self, key: &str) -> bool {
        self.position(key).is_some()
    }

    /// Sets property `key`, keeping its position if it exists. Returns the old value.
    #[inline]
    pub fn insert<K: AsRef<str> + Into<Str>>(&mut self, key: K, value: Value) -> Option<Value> {
        let fp = fingerprint(key.as_ref());
        if let Some(i) = self.position_fp(key.as_ref(), fp) {
            return Some(std::mem::replace(&mut self.entries[i].value, value));
        }
        self.insert_new(Entry {
            fp,
            key: key.into(),
            value,
        });
        None
    }

    fn insert_new(&mut self, entry: Entry) {
        match array_index(&entry.key) {
            Some(n) => {
                let at = self.entries[..self.index_keys]
                    .partition_point(|e| array_index(&e.key).unwrap_or(0) < n);
                self.entries.insert(at, entry);
                self.index_keys += 1;
                self.rebuild_lookup();
            }
            None => {
                if let Some(map) = &mut self.lookup {
                    map.insert(entry.key.clone(), self.entries.len());
                }
                self.entries.push(entry);
                if self.lookup.is_none() && self.entries.len() > INDEX_THRESHOLD {
                    self.rebuild_lookup();
                }
            }
        }
    }

    /// Removes property `key`, returning its value.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        let i = self.position(key)?;
        let v = self.entries.remove(i).value;
        if i < self.index_keys {
            self.index_keys -= 1;
        }
        self.rebuild_lookup();
        Some(v)
    }

    fn rebuild_lookup(&mut self) {
        if self.entries.len() > INDEX_THRESHOLD {
            let map = self
                .entries
                .iter()
                .enumerate()
                .map(|(i, e)| (e.key.clone(), i))
                .collect();
            self.lookup = Some(Box::new(map));
        } else {
            self.lookup = None;
        }
    }

    /// Properties in JavaScript order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&Str, &Value)> {
        self.entries.iter().map(|e| (&e.key, &e.value))
    }

    /// Mutable values in JavaScript order.
    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut Value> {
        self.entries.iter_mut().map(|e| &mut e.value)
    }

    /// Keys in JavaScript order.
    pub fn keys(&self) -> impl Iterator<Item = &Str> {
        self.entries.iter().map(|e| &e.key)
    }
}

impl PartialEq for Object {
    /// Same keys with structurally equal values, in any order.
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len()
            && self
                .iter()
                .all(|(k, v)| other.get(k).is_some_and(|w| w == v))
    }
}

impl FromIterator<(Str, Value)> for Object {
    fn from_iter<T: IntoIterator<Item = (Str, Value)>>(iter: T) -> Self {
        let mut o = Object::new();
        for (k, v) in iter {
            o.insert(k, v);
        }
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_like_keys_come_first_in_ascending_order() {
        let mut o = Object::new();
        o.insert("b", Value::Null);
        o.insert("10", Value::Null);
        o.insert("a", Value::Null);
        o.insert("2", Value::Null);
        o.insert("01", Value::Null);
        let keys: Vec<&str> = o.keys().map(|k| k.as_str()).collect();
        assert_eq!(keys, ["2", "10", "b", "a", "01"]);
    }

    #[test]
    fn replacing_keeps_position() {
        let mut o = Object::new();
        o.insert("x", 1.0.into());
        o.insert("y", 2.0.into());
        assert_eq!(o.insert("x", 3.0.into()), Some(Value::Number(1.0)));
        let keys: Vec<&str> = o.keys().map(|k| k.as_str()).collect();
        assert_eq!(keys, ["x", "y"]);
        assert_eq!(o.get("x"), Some(&Value::Number(3.0)));
    }

    #[test]
    fn large_objects_use_an_index_that_survives_removal() {
        let mut o = Object::new();
        for i in 0..100 {
            o.insert(format!("k{i}"), Value::Number(i as f64));
        }
        assert_eq!(o.get("k57"), Some(&Value::Number(57.0)));
        o.remove("k10");
        assert_eq!(o.get("k57"), Some(&Value::Number(57.0)));
        assert_eq!(o.get("k10"), None);
        assert_eq!(o.len(), 99);
        o.insert("5", Value::Null);
        assert_eq!(o.keys().next().map(|k| k.as_str()), Some("5"));
        assert_eq!(o.get("k99"), Some(&Value::Number(99.0)));
    }

    #[test]
    fn fingerprints_tell_short_keys_apart_and_long_keys_are_compared() {
        let mut o = Object::new();
        o.insert("abcdefgX1", Value::Number(1.0));
        o.insert("abcdefgX2", Value::Number(2.0));
        o.insert("ab", Value::Number(3.0));
        o.insert("ab\0", Value::Number(4.0));
        assert_eq!(o.get("abcdefgX2"), Some(&Value::Number(2.0)));
        assert_eq!(o.get("abcdefgX1"), Some(&Value::Number(1.0)));
        assert_eq!(o.get("ab"), Some(&Value::Number(3.0)));
        assert_eq!(o.get("ab\0"), Some(&Value::Number(4.0)));
        assert_eq!(o.get("abcdefgX3"), None);
        assert_eq!(o.get(""), None);
    }

    #[test]
    fn array_index_is_canonical() {
        assert_eq!(array_index("0"), Some(0));
        assert_eq!(array_index("42"), Some(42));
        assert_eq!(array_index("042"), None);
        assert_eq!(array_index("-1"), None);
        assert_eq!(array_index("4294967295"), None);
        assert_eq!(array_index("1.5"), None);
    }
}
