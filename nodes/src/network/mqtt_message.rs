//! Node-RED's rules between MQTT publications and messages, as pure
//! functions: `mqtt in` payload datatypes, its own topic re-check, and the
//! topic / QoS / retain resolution and payload serialisation of `mqtt out`.

use base64::Engine;
use bytes::Bytes;
use flowd_engine::value::{js_number_to_string, json, string_to_number};
use flowd_engine::{Msg, Value};

/// How `mqtt in` converts payload bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Datatype {
    /// UTF-8 text parsed as JSON when it parses (the editor default).
    AutoDetect,
    /// UTF-8 text, or a Buffer when not valid UTF-8 (legacy `auto`, and unknown values).
    Auto,
    /// Always a Buffer.
    Buffer,
    /// Text (invalid UTF-8 replaced by U+FFFD). Also what a missing `datatype` means.
    Utf8,
    /// Must be valid UTF-8 JSON; otherwise an error.
    Json,
    /// Base64 text of the bytes.
    Base64,
}

impl Datatype {
    /// Parses the `datatype` property; absent or empty means `utf8` (as
    /// Node-RED's `n.datatype || "utf8"`).
    pub fn from_property(v: Option<&str>) -> Datatype {
        match v {
            None | Some("") => Datatype::Utf8,
            Some("auto-detect") => Datatype::AutoDetect,
            Some("buffer") => Datatype::Buffer,
            Some("utf8") => Datatype::Utf8,
            Some("json") => Datatype::Json,
            Some("base64") => Datatype::Base64,
            Some(_) => Datatype::Auto,
        }
    }
}

/// Error of a `msg.action` that mqtt in or out does not know (Node-RED's
/// Error object as text).
pub const INVALID_ACTION: &str = "Error: Invalid action specified";
/// Error of a dynamic subscription with a missing or invalid topic filter.
pub const INVALID_SUBSCRIPTION_TOPIC: &str = "Error: Invalid topic specified";
/// Error of a dynamic subscription whose `msg.topic` is neither text, an
/// object nor an array.
pub const BAD_SUBSCRIPTION: &str = "Error: msg.topic is missing or invalid";

/// Error of datatype `json` when the text does not parse.
pub const INVALID_JSON_PARSE: &str = "Failed to parse JSON string";
/// Error of datatype `json` when the payload is not UTF-8.
pub const INVALID_JSON_STRING: &str = "Invalid JSON string";

/// The payload as text when Node-RED counts it as text: valid UTF-8 (as its
/// `is-utf8` check) without control characters other than tab, line feed
/// and carriage return, and without DEL. Other payloads stay bytes.
pub fn node_red_text(bytes: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(bytes).ok()?;
    let control = |b: &u8| (*b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r')) || *b == 0x7f;
    if bytes.iter().any(control) {
        return None;
    }
    Some(text)
}

/// Converts payload bytes as `mqtt in` does. `Err` carries the error text
/// (datatype `json` only); the node then reports it with the raw payload.
pub fn decode_payload(datatype: Datatype, bytes: &Bytes) -> Result<Value, String> {
    let text = || node_red_text(bytes);
    Ok(match datatype {
        Datatype::Buffer => Value::Buffer(bytes.clone()),
        Datatype::Base64 => Value::string(base64::engine::general_purpose::STANDARD.encode(bytes)),
        // Node-RED's `payload.toString()`: no is-utf8 check.
        Datatype::Utf8 => match String::from_utf8_lossy(bytes) {
            std::borrow::Cow::Borrowed(t) => Value::str(t),
            std::borrow::Cow::Owned(t) => Value::string(t),
        },
        Datatype::Auto => match text() {
            Some(t) => Value::str(t),
            None => Value::Buffer(bytes.clone()),
        },
        Datatype::AutoDetect => match text() {
            Some(t) => json::parse(t).unwrap_or_else(|_| Value::str(t)),
            None => Value::Buffer(bytes.clone()),
        },
        // Node-RED's own texts (mqtt.errors.invalid-json-parse / -string).
        Datatype::Json => match text() {
            Some(t) => json::parse(t).map_err(|_| INVALID_JSON_PARSE.to_string())?,
            None => return Err(INVALID_JSON_STRING.to_string()),
        },
    })
}

/// Node-RED's own check of a received topic against a node's filter: `+`
/// needs a non-empty level, a trailing `/#` also matches the parent level,
/// and a `$share/group/` prefix is ignored.
pub fn node_red_topic_matches(filter: &str, topic: &str) -> bool {
    let filter = match filter.strip_prefix("$share/") {
        Some(rest) => rest.split_once('/').map_or("", |(_, f)| f),
        None => filter,
    };
    if filter == "#" {
        return true;
    }
    // Level by level on the bytes, without collecting or searching (this
    // runs for every received message; '/' is ASCII, so byte positions are
    // character boundaries).
    let (f, t) = (filter.as_bytes(), topic.as_bytes());
    let (mut fi, mut ti) = (0, 0);
    loop {
        let f_end = f[fi..]
            .iter()
            .position(|&b| b == b'/')
            .map_or(f.len(), |p| fi + p);
        let level = &f[fi..f_end];
        let last = f_end == f.len();
        // The topic's level at this depth, if the topic goes that deep.
        let t_level = (ti <= t.len()).then(|| {
            let end = t[ti..]
                .iter()
                .position(|&b| b == b'/')
                .map_or(t.len(), |p| ti + p);
            (&t[ti..end], end)
        });
        match (level, t_level) {
            // `a/#` also matches `a` itself.
            (b"#", _) if last => return true,
            (b"+", Some((l, _))) if !l.is_empty() => {}
            (b"+", _) => return false,
            (lit, Some((l, _))) if lit == l => {}
            _ => return false,
        }
        let t_end = t_level.map_or(t.len(), |(_, end)| end);
        if last {
            // Matched when the topic has no more levels.
            return t_end == t.len();
        }
        fi = f_end + 1;
        ti = t_end + 1;
    }
}

/// MQTT's own filter matching (what a broker delivers): `+` matches any one
/// level (also empty), `#` the rest, and `$` topics are not matched by a
/// leading wildcard.
pub fn mqtt_topic_matches(filter: &str, topic: &str) -> bool {
    let filter = match filter.strip_prefix("$share/") {
        Some(rest) => rest.split_once('/').map_or("", |(_, f)| f),
        None => filter,
    };
    if topic.starts_with('$') && (filter.starts_with('+') || filter.starts_with('#')) {
        return false;
    }
    let mut fs = filter.split('/');
    let mut ts = topic.split('/');
    loop {
        match (fs.next(), ts.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(_)) => {}
            (Some(f), Some(t)) if f == t => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// A publication `mqtt out` makes from a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publication {
    /// Topic.
    pub topic: String,
    /// Payload bytes.
    pub payload: Bytes,
    /// QoS 0..2.
    pub qos: u8,
    /// Retain flag.
    pub retain: bool,
}

/// Why `mqtt out` publishes nothing for a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotPublished {
    /// The message has no `payload` property (silently done).
    #[error("no payload")]
    NoPayload,
    /// The topic is missing, empty, not a string or contains wildcards or control characters.
    #[error("invalid topic")]
    InvalidTopic,
}

/// The bytes `mqtt out` publishes for a payload (JavaScript rules: Buffers
/// raw, strings as UTF-8, null/undefined empty, numbers and booleans via
/// `String()`, objects and arrays via `JSON.stringify`).
pub fn encode_payload(v: Option<&Value>) -> Bytes {
    match v {
        None | Some(Value::Null) => Bytes::new(),
        Some(Value::Buffer(b)) => b.clone(),
        Some(Value::String(s)) => Bytes::copy_from_slice(s.as_bytes()),
        Some(Value::Number(n)) => Bytes::from(js_number_to_string(*n)),
        Some(Value::Bool(b)) => Bytes::from_static(if *b { b"true" } else { b"false" }),
        Some(v @ (Value::Array(_) | Value::Object(_))) => Bytes::from(json::stringify(v)),
    }
}

fn valid_topic(t: &str) -> bool {
    !t.is_empty() && !t.contains(['+', '#', '\u{8}', '\u{c}', '\n', '\r', '\t', '\u{b}', '\0'])
}

/// `parseInt(value)` for small non-negative integers, as used on `msg.qos`.
fn parse_int(v: &Value) -> Option<f64> {
    let text = v.to_js_string();
    let t = text.trim_start();
    let (neg, digits) = match t.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let end = digits
        .bytes()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(digits.len());
    if end == 0 {
        return None;
    }
    let n = string_to_number(&digits[..end]);
    Some(if neg { -n } else { n })
}

/// Resolves what `mqtt out` with node settings `topic`, `qos` and `retain`
/// (strings as stored, `""` = take from the message) publishes for `msg`.
pub fn publication(
    node_topic: &str,
    node_qos: &str,
    node_retain: &str,
    msg: &Msg,
) -> Result<Publication, NotPublished> {
    // 1. msg.qos, when truthy, is parsed as an integer; other than 0..2 it is dropped.
    let msg_qos = msg
        .get("qos")
        .filter(|q| q.is_truthy())
        .map(|q| parse_int(q).filter(|n| (0.0..=2.0).contains(n)));
    // 2. A node topic replaces msg.topic.
    let topic = if node_topic.is_empty() {
        match msg.topic() {
            Some(Value::String(s)) => s.to_string(),
            _ => return Err(NotPublished::InvalidTopic),
        }
    } else {
        node_topic.to_string()
    };
    // 3. Number(node.qos || msg.qos || 0): the node's string wins when non-empty.
    let qos = if !node_qos.is_empty() {
        string_to_number(node_qos)
    } else {
        match msg_qos {
            Some(Some(n)) if n != 0.0 => n,
            _ => 0.0,
        }
    };
    let qos = if (0.0..=2.0).contains(&qos) {
        qos as u8
    } else {
        0
    };
    // 4. node.retain || msg.retain || false, then true only for true / "true".
    let retain = if !node_retain.is_empty() {
        node_retain == "true"
    } else {
        match msg.get("retain") {
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) => s.as_str() == "true",
            _ => false,
        }
    };
    if !msg.contains_key("payload") {
        return Err(NotPublished::NoPayload);
    }
    if !valid_topic(&topic) {
        return Err(NotPublished::InvalidTopic);
    }
    Ok(Publication {
        topic,
        payload: encode_payload(msg.payload()),
        qos,
        retain,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn auto_detect_parses_json_text_and_keeps_the_rest() {
        let d = |s: &str| decode_payload(Datatype::AutoDetect, &b(s)).unwrap();
        assert_eq!(d("12"), Value::Number(12.0));
        assert_eq!(d(" 12 "), Value::Number(12.0));
        assert_eq!(d("\"q\""), Value::str("q"));
        assert_eq!(d("null"), Value::Null);
        assert_eq!(d("true"), Value::Bool(true));
        assert_eq!(d(""), Value::str(""));
        assert_eq!(d("1e400"), Value::Number(f64::INFINITY));
        assert_eq!(d("[1,2]").to_json(), "[1,2]");
        assert_eq!(d("not json"), Value::str("not json"));
        let raw = Bytes::from_static(&[0xff, 0x00]);
        assert_eq!(
            decode_payload(Datatype::AutoDetect, &raw).unwrap(),
            Value::Buffer(raw.clone())
        );
    }

    #[test]
    fn control_characters_make_a_payload_bytes_as_is_utf8_says() {
        // NUL and DEL are not text for Node-RED; tab, LF and CR are.
        for raw in [&b"{\"a\":1}\0"[..], b"{\"a\":2,\"b\":\"\x7f\"}", b"\x01"] {
            let raw = Bytes::copy_from_slice(raw);
            assert_eq!(
                decode_payload(Datatype::AutoDetect, &raw).unwrap(),
                Value::Buffer(raw.clone())
            );
            assert_eq!(
                decode_payload(Datatype::Auto, &raw).unwrap(),
                Value::Buffer(raw.clone())
            );
            assert_eq!(
                decode_payload(Datatype::Json, &raw),
                Err(INVALID_JSON_STRING.to_string())
            );
            // utf8 converts whatever it gets.
            assert_eq!(
                decode_payload(Datatype::Utf8, &raw).unwrap(),
                Value::string(String::from_utf8_lossy(&raw).into_owned())
            );
        }
        assert_eq!(
            decode_payload(Datatype::AutoDetect, &b("{\"a\":\n\t1}\r\n"))
                .unwrap()
                .to_json(),
            "{\"a\":1}"
        );
        assert_eq!(Datatype::from_property(Some("")), Datatype::Utf8);
    }

    #[test]
    fn other_datatypes() {
        let raw = Bytes::from_static(&[0x68, 0xff]);
        assert_eq!(
            decode_payload(Datatype::Utf8, &raw).unwrap(),
            Value::str("h\u{FFFD}")
        );
        assert_eq!(
            decode_payload(Datatype::Auto, &raw).unwrap(),
            Value::Buffer(raw.clone())
        );
        assert_eq!(
            decode_payload(Datatype::Auto, &b("{}")).unwrap(),
            Value::str("{}")
        );
        assert_eq!(
            decode_payload(Datatype::Buffer, &b("x")).unwrap(),
            Value::Buffer(b("x"))
        );
        assert_eq!(
            decode_payload(Datatype::Base64, &b("hi")).unwrap(),
            Value::str("aGk=")
        );
        assert_eq!(
            decode_payload(Datatype::Base64, &Bytes::new()).unwrap(),
            Value::str("")
        );
        assert_eq!(
            decode_payload(Datatype::Json, &b("{\"a\":1}"))
                .unwrap()
                .to_json(),
            "{\"a\":1}"
        );
        assert_eq!(
            decode_payload(Datatype::Json, &b("nope")),
            Err(INVALID_JSON_PARSE.to_string())
        );
        assert_eq!(
            decode_payload(Datatype::Json, &raw),
            Err(INVALID_JSON_STRING.to_string())
        );
        assert_eq!(Datatype::from_property(None), Datatype::Utf8);
        assert_eq!(Datatype::from_property(Some("whatever")), Datatype::Auto);
    }

    /// The re-check written the plain way (levels collected), to compare
    /// the byte-level one against.
    fn reference_matches(filter: &str, topic: &str) -> bool {
        let filter = match filter.strip_prefix("$share/") {
            Some(rest) => rest.split_once('/').map_or("", |(_, f)| f),
            None => filter,
        };
        let f: Vec<&str> = filter.split('/').collect();
        let t: Vec<&str> = topic.split('/').collect();
        for (i, level) in f.iter().enumerate() {
            match *level {
                "#" if i == f.len() - 1 => return true,
                "+" if t.get(i).is_some_and(|x| !x.is_empty()) => {}
                "+" => return false,
                lit if t.get(i) == Some(&lit) => {}
                _ => return false,
            }
        }
        t.len() == f.len()
    }

    #[test]
    fn node_red_recheck_agrees_with_the_plain_definition() {
        // Every filter and topic of up to three levels over a small alphabet.
        let levels = ["", "a", "b", "+", "#", "ab"];
        let mut paths: Vec<String> = Vec::new();
        for a in levels {
            paths.push(a.to_string());
            for b in levels {
                paths.push(format!("{a}/{b}"));
                for c in levels {
                    paths.push(format!("{a}/{b}/{c}"));
                }
            }
        }
        let mut matched = 0;
        for f in &paths {
            for t in paths.iter().filter(|t| !t.contains(['+', '#'])) {
                let expected = reference_matches(f, t);
                assert_eq!(node_red_topic_matches(f, t), expected, "{f} vs {t}");
                matched += usize::from(expected);
            }
        }
        assert!(matched > 100, "the cases include matches");
    }

    #[test]
    fn node_red_recheck_needs_non_empty_plus_levels() {
        assert!(node_red_topic_matches("in/+/temp", "in/a/temp"));
        assert!(!node_red_topic_matches("in/+/temp", "in//temp"));
        assert!(mqtt_topic_matches("in/+/temp", "in//temp"));
        assert!(node_red_topic_matches("in/s/#", "in/s"));
        assert!(node_red_topic_matches("in/s/#", "in/s/a/b"));
        assert!(node_red_topic_matches("#", "anything/at/all"));
        assert!(node_red_topic_matches("$share/g/in/+", "in/x"));
        assert!(!node_red_topic_matches("in/x", "in/x/y"));
        assert!(!node_red_topic_matches("in/x/y", "in/x"));
        assert!(!node_red_topic_matches("in/+", "in"));
        assert!(!node_red_topic_matches("in/s/#", "in"));
        assert!(!node_red_topic_matches("in/s/#", "in/t/a"));
        assert!(node_red_topic_matches("in/#/x", "in/#/x"));
        assert!(!node_red_topic_matches("in/#/x", "in/a/x"));
        assert!(!mqtt_topic_matches("#", "$SYS/broker"));
        assert!(mqtt_topic_matches("$SYS/#", "$SYS/broker"));
        assert!(mqtt_topic_matches("a/#", "a"));
    }

    fn msg(fields: &str) -> Msg {
        Msg::from_value(json::parse(fields).unwrap()).unwrap()
    }

    #[test]
    fn payload_serialisation_follows_javascript() {
        let e = |s: &str| encode_payload(Some(&json::parse(s).unwrap()));
        assert_eq!(e("42"), b("42"));
        assert_eq!(e("1e21"), b("1e+21"));
        assert_eq!(e("-0"), b("0"));
        assert_eq!(e("12345678901234567890"), b("12345678901234567000"));
        assert_eq!(e("true"), b("true"));
        assert_eq!(e("null"), Bytes::new());
        assert_eq!(
            e("{\"b\":1,\"2\":0,\"a\":[1]}"),
            b("{\"2\":0,\"b\":1,\"a\":[1]}")
        );
        assert_eq!(
            encode_payload(Some(&Value::Number(f64::INFINITY))),
            b("Infinity")
        );
        assert_eq!(encode_payload(None), Bytes::new());
    }

    #[test]
    fn topic_qos_retain_precedence() {
        let m = msg(r#"{"topic":"in/x","payload":"p","qos":2,"retain":true}"#);
        let p = publication("", "", "", &m).unwrap();
        assert_eq!((p.topic.as_str(), p.qos, p.retain), ("in/x", 2, true));
        let p = publication("out/y", "0", "false", &m).unwrap();
        assert_eq!((p.topic.as_str(), p.qos, p.retain), ("out/y", 0, false));
        let p = publication("", "1", "true", &msg(r#"{"topic":"t","payload":1}"#)).unwrap();
        assert_eq!((p.qos, p.retain), (1, true));
        let p = publication(
            "t",
            "",
            "",
            &msg(r#"{"payload":1,"qos":7,"retain":"true"}"#),
        )
        .unwrap();
        assert_eq!((p.qos, p.retain), (0, true));
        let p = publication("t", "", "", &msg(r#"{"payload":1,"qos":"1.9"}"#)).unwrap();
        assert_eq!(p.qos, 1);
        assert_eq!(
            publication("t", "", "", &msg(r#"{"topic":"x"}"#)),
            Err(NotPublished::NoPayload)
        );
        for bad in [
            r#"{"payload":1}"#,
            r#"{"payload":1,"topic":""}"#,
            r#"{"payload":1,"topic":5}"#,
            r#"{"payload":1,"topic":"a/+"}"#,
        ] {
            assert_eq!(
                publication("", "", "", &msg(bad)),
                Err(NotPublished::InvalidTopic),
                "{bad}"
            );
        }
    }
}
