//! The debug sidebar's message encoding (Node-RED's `encodeObject`): the
//! shown value becomes text plus a `format` (`string[5]`, `number`,
//! `Object`, `array[3]`, `buffer[12]`, ...), long strings and arrays are cut.

use flowd_engine::observer::DebugEvent;
use flowd_engine::value::json;
use flowd_engine::{Object, Value};
use serde_json::{json, Map, Value as Json};

/// Longest string (and array) shown, as Node-RED's `debugMaxLength` default.
pub const DEBUG_MAX_LENGTH: usize = 1000;

fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_string(),
    }
}

/// A nested value made safe for the sidebar: Buffers and long arrays as
/// `__enc__` markers, long strings cut, non-finite numbers marked.
fn encode_nested(v: &Value) -> Value {
    match v {
        Value::String(s) if s.chars().count() > DEBUG_MAX_LENGTH => {
            Value::string(truncate(s, DEBUG_MAX_LENGTH))
        }
        Value::Number(n) if !n.is_finite() => {
            let mut o = Object::new();
            o.insert("__enc__", Value::Bool(true));
            o.insert("type", Value::str("number"));
            o.insert("data", Value::string(v.to_js_string()));
            Value::object(o)
        }
        Value::Buffer(b) => {
            let mut o = Object::new();
            o.insert("type", Value::str("Buffer"));
            o.insert(
                "data",
                Value::array(
                    b.iter()
                        .take(DEBUG_MAX_LENGTH)
                        .map(|x| Value::Number(f64::from(*x)))
                        .collect(),
                ),
            );
            o.insert("__enc__", Value::Bool(true));
            o.insert("length", Value::Number(b.len() as f64));
            Value::object(o)
        }
        Value::Array(a) if a.len() > DEBUG_MAX_LENGTH => {
            let mut o = Object::new();
            o.insert("__enc__", Value::Bool(true));
            o.insert("type", Value::str("array"));
            o.insert(
                "data",
                Value::array(a.iter().take(DEBUG_MAX_LENGTH).map(encode_nested).collect()),
            );
            o.insert("length", Value::Number(a.len() as f64));
            Value::object(o)
        }
        Value::Array(a) => Value::array(a.iter().map(encode_nested).collect()),
        Value::Object(o) => Value::object(
            o.iter()
                .map(|(k, x)| (k.clone(), encode_nested(x)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// `(msg, format)` for a shown value.
pub fn encode_value(v: Option<&Value>) -> (String, String) {
    match v {
        None => ("(undefined)".into(), "undefined".into()),
        Some(Value::Null) => ("(undefined)".into(), "null".into()),
        Some(Value::String(s)) => (
            truncate(s, DEBUG_MAX_LENGTH),
            format!("string[{}]", s.encode_utf16().count()),
        ),
        Some(Value::Number(n)) => (
            flowd_engine::value::js_number_to_string(*n),
            "number".into(),
        ),
        Some(Value::Bool(b)) => (b.to_string(), "boolean".into()),
        Some(Value::Buffer(b)) => {
            let hex: String = b
                .iter()
                .take(DEBUG_MAX_LENGTH)
                .map(|x| format!("{x:02x}"))
                .collect();
            (hex, format!("buffer[{}]", b.len()))
        }
        Some(a @ Value::Array(items)) => (
            json::stringify(&encode_nested(a)),
            format!("array[{}]", items.len()),
        ),
        Some(o @ Value::Object(_)) => (json::stringify(&encode_nested(o)), "Object".into()),
    }
}

/// The `data` of a comms `debug` event.
pub fn encode_debug(e: &DebugEvent<'_>) -> Json {
    let mut m = Map::new();
    m.insert("id".into(), json!(e.node.id.as_str()));
    if let Some(z) = &e.node.z {
        m.insert("z".into(), json!(z.as_str()));
        m.insert("path".into(), json!(z.as_str()));
    }
    if let Some(n) = &e.node.name {
        m.insert("name".into(), json!(n.as_str()));
    }
    if let Some(t) = e.topic {
        m.insert("topic".into(), t.to_serde());
    }
    if let Some(p) = e.property {
        m.insert("property".into(), json!(p));
    }
    let (msg, format) = encode_value(e.value);
    m.insert("msg".into(), json!(msg));
    m.insert("format".into(), json!(format));
    Json::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flowd_engine::node::NodeInfo;

    #[test]
    fn formats_follow_node_red() {
        assert_eq!(
            encode_value(Some(&Value::str("hello"))),
            ("hello".into(), "string[5]".into())
        );
        assert_eq!(
            encode_value(Some(&Value::Number(42.0))),
            ("42".into(), "number".into())
        );
        assert_eq!(
            encode_value(Some(&Value::Bool(true))),
            ("true".into(), "boolean".into())
        );
        assert_eq!(
            encode_value(None),
            ("(undefined)".into(), "undefined".into())
        );
        assert_eq!(
            encode_value(Some(&Value::Null)),
            ("(undefined)".into(), "null".into())
        );
        let obj = json::parse(r#"{"a":[1,2]}"#).unwrap();
        assert_eq!(
            encode_value(Some(&obj)),
            (r#"{"a":[1,2]}"#.into(), "Object".into())
        );
        let buf = Value::Buffer(bytes_of(b"hi"));
        assert_eq!(
            encode_value(Some(&buf)),
            ("6869".into(), "buffer[2]".into())
        );
        let long = Value::string("x".repeat(1005));
        let (m, f) = encode_value(Some(&long));
        assert_eq!((m.len(), f.as_str()), (1003, "string[1005]"));
    }

    fn bytes_of(b: &'static [u8]) -> bytes::Bytes {
        bytes::Bytes::from_static(b)
    }

    #[test]
    fn debug_event_shape() {
        let mut info = NodeInfo::detached("dbg1", "debug");
        info.z = Some("t1".into());
        info.name = Some("D1".into());
        let topic = Value::str("tp");
        let v = Value::str("hello");
        let e = DebugEvent {
            node: &info,
            topic: Some(&topic),
            property: Some("payload"),
            value: Some(&v),
        };
        assert_eq!(
            serde_json::to_string(&encode_debug(&e)).unwrap(),
            r#"{"id":"dbg1","z":"t1","path":"t1","name":"D1","topic":"tp","property":"payload","msg":"hello","format":"string[5]"}"#
        );
    }
}
