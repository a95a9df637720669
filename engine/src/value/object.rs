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
    entries: Vec<(Str, Value)>,
    /// Number of leading entries whose key is an array index.
    index_keys: usize,
    // Boxed so that objects without an index (nearly all) stay small.
    #[allow(clippy::box_collection)]
    lookup: Option<Box<HashMap<Str, usize>>>,
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

    fn position(&self, key: &str) -> Option<usize> {
        if let Some(map) = &self.lookup {
            return map.get(key).copied();
        }
        self.entries.iter().position(|(k, _)| k.as_str() == key)
    }

    /// The value of property `key`.
    #[inline]
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.position(key).map(|i| &self.entries[i].1)
    }

    /// Mutable access to property `key`.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        self.position(key).map(move |i| &mut self.entries[i].1)
    }

    /// True when the object has own property `key`.
    pub fn contains_key(&self, key: &str) -> bool {
        self.position(key).is_some()
    }

    /// Sets property `key`, keeping its position if it exists. Returns the old value.
    pub fn insert(&mut self, key: impl Into<Str>, value: Value) -> Option<Value> {
        let key = key.into();
        if let Some(i) = self.position(&key) {
            return Some(std::mem::replace(&mut self.entries[i].1, value));
        }
        match array_index(&key) {
            Some(n) => {
                let at = self.entries[..self.index_keys]
                    .partition_point(|(k, _)| array_index(k).unwrap_or(0) < n);
                self.entries.insert(at, (key, value));
                self.index_keys += 1;
                self.rebuild_lookup();
            }
            None => {
                if let Some(map) = &mut self.lookup {
                    map.insert(key.clone(), self.entries.len());
                }
                self.entries.push((key, value));
                if self.lookup.is_none() && self.entries.len() > INDEX_THRESHOLD {
                    self.rebuild_lookup();
                }
            }
        }
        None
    }

    /// Removes property `key`, returning its value.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        let i = self.position(key)?;
        let (_, v) = self.entries.remove(i);
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
                .map(|(i, (k, _))| (k.clone(), i))
                .collect();
            self.lookup = Some(Box::new(map));
        } else {
            self.lookup = None;
        }
    }

    /// Properties in JavaScript order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&Str, &Value)> {
        self.entries.iter().map(|(k, v)| (k, v))
    }

    /// Mutable values in JavaScript order.
    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut Value> {
        self.entries.iter_mut().map(|(_, v)| v)
    }

    /// Keys in JavaScript order.
    pub fn keys(&self) -> impl Iterator<Item = &Str> {
        self.entries.iter().map(|(k, _)| k)
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
    fn array_index_is_canonical() {
        assert_eq!(array_index("0"), Some(0));
        assert_eq!(array_index("42"), Some(42));
        assert_eq!(array_index("042"), None);
        assert_eq!(array_index("-1"), None);
        assert_eq!(array_index("4294967295"), None);
        assert_eq!(array_index("1.5"), None);
    }
}
