//! Message values with JavaScript semantics.
//!
//! Node-RED messages are JavaScript objects holding JSON-like values and
//! Buffers. [`Value`] models exactly that: numbers are `f64`, strings are
//! immutable and cheap to clone, arrays and objects are copy-on-write
//! (`Arc` + `make_mut`), so handing a copy of a message to a second wire costs a
//! few reference-count increments until somebody mutates it. "undefined" is the
//! absence of a value (`Option<&Value>` / `Option<Value>`).
//!
//! [`Object`] keeps JavaScript property order: integer-like keys first in
//! ascending numeric order, then the other keys in insertion order, so
//! serialising gives the same bytes as `JSON.stringify`.

mod coerce;
pub mod json;
mod object;
pub mod path;

pub use coerce::{
    is_js_whitespace, js_compare, js_number_to_string, parse_float, push_js_number,
    string_to_number,
};
pub use object::Object;

use bytes::Bytes;
use smol_str::SmolStr;
use std::sync::Arc;

/// An immutable, cheaply clonable string (inline up to 23 bytes).
pub type Str = SmolStr;

/// A JavaScript-like value carried in messages and context.
#[derive(Clone, Debug, Default)]
pub enum Value {
    /// `null`.
    #[default]
    Null,
    /// A boolean.
    Bool(bool),
    /// A JavaScript number (IEEE-754 double; may be NaN or infinite).
    Number(f64),
    /// A string.
    String(Str),
    /// An array (copy-on-write).
    Array(Arc<Vec<Value>>),
    /// A plain object (copy-on-write, JavaScript key order).
    Object(Arc<Object>),
    /// A Node.js Buffer: raw bytes.
    Buffer(Bytes),
}

impl Value {
    /// A string value.
    pub fn str(s: impl AsRef<str>) -> Value {
        Value::String(Str::new(s.as_ref()))
    }

    /// A string value taking ownership of `s`.
    pub fn string(s: String) -> Value {
        Value::String(Str::from(s))
    }

    /// An empty object.
    pub fn empty_object() -> Value {
        Value::Object(Arc::new(Object::new()))
    }

    /// An object value.
    pub fn object(o: Object) -> Value {
        Value::Object(Arc::new(o))
    }

    /// An array value.
    pub fn array(v: Vec<Value>) -> Value {
        Value::Array(Arc::new(v))
    }

    /// The JavaScript `typeof` of this value (`"object"` for null, arrays and Buffers).
    pub fn type_of(&self) -> &'static str {
        match self {
            Value::Null | Value::Array(_) | Value::Object(_) | Value::Buffer(_) => "object",
            Value::Bool(_) => "boolean",
            Value::Number(_) => "number",
            Value::String(_) => "string",
        }
    }

    /// True for values JavaScript treats as truthy.
    pub fn is_truthy(&self) -> bool {
        match self {
            Value::Null => false,
            Value::Bool(b) => *b,
            Value::Number(n) => *n != 0.0 && !n.is_nan(),
            Value::String(s) => !s.is_empty(),
            Value::Array(_) | Value::Object(_) | Value::Buffer(_) => true,
        }
    }

    /// The string, when this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s.as_str()),
            _ => None,
        }
    }

    /// The number, when this is a number.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Number(n) => Some(*n),
            _ => None,
        }
    }

    /// The boolean, when this is a boolean.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The object, when this is a plain object.
    pub fn as_object(&self) -> Option<&Object> {
        match self {
            Value::Object(o) => Some(o),
            _ => None,
        }
    }

    /// Mutable access to the object (copied first if shared).
    pub fn as_object_mut(&mut self) -> Option<&mut Object> {
        match self {
            Value::Object(o) => Some(Arc::make_mut(o)),
            _ => None,
        }
    }

    /// The array, when this is an array.
    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }

    /// Mutable access to the array (copied first if shared).
    pub fn as_array_mut(&mut self) -> Option<&mut Vec<Value>> {
        match self {
            Value::Array(a) => Some(Arc::make_mut(a)),
            _ => None,
        }
    }

    /// True for `null`.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// JavaScript `String(value)`.
    pub fn to_js_string(&self) -> String {
        coerce::to_js_string(self)
    }

    /// JavaScript `Number(value)`.
    pub fn to_number(&self) -> f64 {
        coerce::to_number(self)
    }

    /// The value as compact JSON text (`JSON.stringify`). NaN and infinities become `null`.
    pub fn to_json(&self) -> String {
        json::stringify(self)
    }

    /// JavaScript strict equality (`===`) for primitives; deep structural
    /// equality for arrays, objects (key order ignored) and Buffers.
    pub fn deep_equals(&self, other: &Value) -> bool {
        coerce::deep_equals(self, other)
    }

    /// JavaScript loose equality (`==`).
    pub fn loose_equals(&self, other: &Value) -> bool {
        coerce::loose_equals(self, other)
    }

    /// Converts a serde_json value (e.g. from a node's configuration).
    pub fn from_json(v: &serde_json::Value) -> Value {
        match v {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => Value::Number(n.as_f64().unwrap_or(f64::NAN)),
            serde_json::Value::String(s) => Value::str(s),
            serde_json::Value::Array(a) => Value::array(a.iter().map(Value::from_json).collect()),
            serde_json::Value::Object(o) => {
                let mut obj = Object::with_capacity(o.len());
                for (k, v) in o {
                    obj.insert(Str::new(k), Value::from_json(v));
                }
                Value::object(obj)
            }
        }
    }

    /// Converts to a serde_json value (Buffers become `{type:"Buffer",data:[..]}`, NaN -> null).
    pub fn to_serde(&self) -> serde_json::Value {
        match self {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Number(n) => serde_json::Number::from_f64(*n)
                .map(|n| {
                    // Keep integers integral in serde output.
                    if n.as_f64()
                        .is_some_and(|f| f.fract() == 0.0 && f.abs() < 9.007_199_254_740_992e15)
                    {
                        serde_json::Value::Number(serde_json::Number::from(
                            n.as_f64().unwrap_or(0.0) as i64,
                        ))
                    } else {
                        serde_json::Value::Number(n)
                    }
                })
                .unwrap_or(serde_json::Value::Null),
            Value::String(s) => serde_json::Value::String(s.to_string()),
            Value::Array(a) => serde_json::Value::Array(a.iter().map(Value::to_serde).collect()),
            Value::Object(o) => serde_json::Value::Object(
                o.iter()
                    .map(|(k, v)| (k.to_string(), v.to_serde()))
                    .collect(),
            ),
            Value::Buffer(b) => serde_json::json!({
                "type": "Buffer",
                "data": b.iter().map(|x| *x as u64).collect::<Vec<_>>()
            }),
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::str(s)
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::string(s)
    }
}

impl From<f64> for Value {
    fn from(n: f64) -> Self {
        Value::Number(n)
    }
}

impl From<i64> for Value {
    fn from(n: i64) -> Self {
        Value::Number(n as f64)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

impl From<Object> for Value {
    fn from(o: Object) -> Self {
        Value::object(o)
    }
}

impl From<Vec<Value>> for Value {
    fn from(v: Vec<Value>) -> Self {
        Value::array(v)
    }
}

impl From<Bytes> for Value {
    fn from(b: Bytes) -> Self {
        Value::Buffer(b)
    }
}

impl PartialEq for Value {
    /// Structural equality (see [`Value::deep_equals`]); NaN equals NaN here so
    /// tests can compare values.
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Value::Number(a), Value::Number(b)) if a.is_nan() && b.is_nan() => true,
            _ => self.deep_equals(other),
        }
    }
}
