//! Property expressions (`payload.a.b[0]["c"]`, `a[msg.topic]`) and access to
//! them on objects, as Node-RED's `RED.util` get/setMessageProperty do.

use super::object::array_index;
use super::{Object, Str, Value};
use std::borrow::Cow;
use std::sync::Arc;

/// One step of a property path.
#[derive(Clone, Debug, PartialEq)]
pub enum Segment {
    /// A named property (`.name` or `["name"]`).
    Key(Str),
    /// A numeric index (`[3]`).
    Index(usize),
    /// A nested message property used as a key (`[msg.topic]`).
    MsgRef(Path),
}

/// A parsed property expression.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Path {
    segments: Vec<Segment>,
}

/// Why a property expression or an access failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// The expression text is malformed.
    #[error("invalid property expression '{expr}': {reason}")]
    Invalid {
        /// The expression.
        expr: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// A value on the way is not an object, so a property cannot be set on it.
    #[error("cannot set property '{key}' of non-object type")]
    NotAnObject {
        /// The key that could not be set.
        key: String,
    },
    /// A nested `[msg.x]` reference did not resolve to a string or number.
    #[error("invalid nested property reference '{0}'")]
    BadReference(String),
}

impl Path {
    /// Parses an expression; a leading `msg.` is dropped (as Node-RED does).
    pub fn parse(expr: &str) -> Result<Path, PathError> {
        let e = expr.strip_prefix("msg.").unwrap_or(expr);
        parse_segments(e).map_err(|reason| PathError::Invalid {
            expr: expr.to_string(),
            reason,
        })
    }

    /// A single-key path.
    pub fn key(name: &str) -> Path {
        Path {
            segments: vec![Segment::Key(Str::new(name))],
        }
    }

    /// The segments.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// True when the path has nested `[msg.x]` references.
    pub fn has_refs(&self) -> bool {
        self.segments
            .iter()
            .any(|s| matches!(s, Segment::MsgRef(_)))
    }

    /// Replaces nested `[msg.x]` references by the values they point at in `msg`.
    pub fn resolve(&self, msg: &Object) -> Result<Cow<'_, Path>, PathError> {
        if !self.has_refs() {
            return Ok(Cow::Borrowed(self));
        }
        let mut out = Vec::with_capacity(self.segments.len());
        for s in &self.segments {
            match s {
                Segment::MsgRef(inner) => {
                    let inner = inner.resolve(msg)?;
                    // Node-RED uses any defined value as the key, as JavaScript
                    // turns it into text (`true` -> "true", an object ->
                    // "[object Object]").
                    match get(msg, &inner) {
                        Some(Value::String(k)) => out.push(Segment::Key(k.clone())),
                        Some(Value::Number(n)) if *n >= 0.0 && n.fract() == 0.0 => {
                            out.push(Segment::Index(*n as usize))
                        }
                        Some(other) => out.push(Segment::Key(Str::new(other.to_js_string()))),
                        None => return Err(PathError::BadReference(inner.to_expression())),
                    }
                }
                other => out.push(other.clone()),
            }
        }
        Ok(Cow::Owned(Path { segments: out }))
    }

    /// The path as text that [`Path::parse`] reads back as the same path:
    /// plain names dotted (`a.b[0]`), any other name quoted (`store["c d"]`,
    /// `a["0"]`, a leading `"c d".x`).
    pub fn to_expression(&self) -> String {
        let plain = |k: &str| {
            k.bytes().next().is_some_and(starts_name)
                && !k.bytes().all(|c| c.is_ascii_digit())
                && !k.contains(['.', '[', ']', '"', '\'', ' '])
        };
        let quoted = |s: &mut String, k: &str| {
            let q = if k.contains('"') { '\'' } else { '"' };
            s.push(q);
            s.push_str(k);
            s.push(q);
        };
        let mut s = String::new();
        for (i, seg) in self.segments.iter().enumerate() {
            match seg {
                Segment::Key(k) if plain(k) => {
                    if i > 0 {
                        s.push('.');
                    }
                    s.push_str(k);
                }
                // A quoted name may start the expression.
                Segment::Key(k) if i == 0 => quoted(&mut s, k),
                Segment::Key(k) => {
                    s.push('[');
                    quoted(&mut s, k);
                    s.push(']');
                }
                Segment::Index(n) => s.push_str(&format!("[{n}]")),
                Segment::MsgRef(p) => s.push_str(&format!("[msg.{}]", p.to_expression())),
            }
        }
        s
    }
}

/// True for a byte that may start a name after `.`: `[A-Za-z0-9$_]`.
fn starts_name(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'$' || c == b'_'
}

/// The non-empty name quoted by the `'` or `"` at `e[at]`, and the index
/// after its closing quote.
fn quoted_name(e: &str, at: usize) -> Result<(Str, usize), &'static str> {
    let quote = char::from(e.as_bytes()[at]);
    let start = at + 1;
    let end = e[start..].find(quote).ok_or("unterminated string")? + start;
    if end == start {
        return Err("empty quoted name");
    }
    Ok((Str::new(&e[start..end]), end + 1))
}

/// Node-RED's grammar (`RED.util.normalisePropertyExpression`): names
/// joined by `.`, where a name after a dot starts with `[A-Za-z0-9$_]`;
/// `[digits]`, `["name"]` / `['name']` (not empty) and `[msg.path]` boxes;
/// no spaces outside quotes. A digits-only name followed by `.` is
/// an index (so setting `a.0.b` creates an array under `a`). A name may
/// follow `]` directly (`a[0]b` is `a[0].b`), and a quoted name may start
/// the expression or follow `]`.
fn parse_segments(e: &str) -> Result<Path, &'static str> {
    let b = e.as_bytes();
    let mut segments = Vec::new();
    if e.is_empty() {
        return Err("empty expression");
    }
    let mut i = 0;
    // Where a quoted name may start: at the beginning and right after ']'.
    let mut quote_allowed = true;
    while i < b.len() {
        match b[i] {
            b'"' | b'\'' if quote_allowed => {
                let (name, next) = quoted_name(e, i)?;
                segments.push(Segment::Key(name));
                i = next;
                if i < b.len() && b[i] != b'.' && b[i] != b'[' {
                    return Err("unexpected character after a quoted name");
                }
                quote_allowed = false;
            }
            b'.' => {
                if i == 0 {
                    return Err("unexpected '.'");
                }
                i += 1;
                match b.get(i) {
                    None => return Err("expression ends with '.'"),
                    Some(c) if starts_name(*c) => {}
                    Some(_) => {
                        return Err("a name after '.' must start with a letter, digit, '$' or '_'")
                    }
                }
            }
            b'[' => {
                if i == 0 {
                    return Err("expression starts with '['");
                }
                i += 1;
                match b.get(i) {
                    Some(b'"' | b'\'') => {
                        let (name, next) = quoted_name(e, i)?;
                        segments.push(Segment::Key(name));
                        i = next;
                    }
                    Some(c) if c.is_ascii_digit() => {
                        let start = i;
                        while i < b.len() && b[i].is_ascii_digit() {
                            i += 1;
                        }
                        let n = e[start..i].parse().map_err(|_| "index out of range")?;
                        segments.push(Segment::Index(n));
                    }
                    Some(_) if e[i..].starts_with("msg.") => {
                        // find the matching ']'
                        let mut depth = 1;
                        let start = i;
                        while i < b.len() {
                            match b[i] {
                                b'[' => depth += 1,
                                b']' => {
                                    depth -= 1;
                                    if depth == 0 {
                                        break;
                                    }
                                }
                                _ => {}
                            }
                            i += 1;
                        }
                        if depth != 0 {
                            return Err("unterminated '['");
                        }
                        let inner =
                            Path::parse(&e[start..i]).map_err(|_| "invalid nested reference")?;
                        segments.push(Segment::MsgRef(inner));
                    }
                    _ => return Err("invalid content in '[ ]'"),
                }
                if b.get(i) != Some(&b']') {
                    return Err("missing ']'");
                }
                i += 1;
                quote_allowed = true;
            }
            b']' => return Err("unexpected ']'"),
            b' ' => return Err("unexpected space"),
            b'"' | b'\'' => return Err("unexpected quote"),
            _ => {
                let start = i;
                while i < b.len() && !matches!(b[i], b'.' | b'[' | b']' | b' ' | b'"' | b'\'') {
                    i += 1;
                }
                let name = &e[start..i];
                // Node-RED reads digits as an index only before a '.'.
                let before_dot = b.get(i) == Some(&b'.');
                match name.parse::<usize>() {
                    Ok(n) if before_dot && name.bytes().all(|c| c.is_ascii_digit()) => {
                        segments.push(Segment::Index(n))
                    }
                    _ => segments.push(Segment::Key(Str::new(name))),
                }
                quote_allowed = false;
            }
        }
    }
    Ok(Path { segments })
}

fn seg_key(seg: &Segment) -> Cow<'_, str> {
    match seg {
        Segment::Key(k) => Cow::Borrowed(k.as_str()),
        Segment::Index(n) => Cow::Owned(n.to_string()),
        Segment::MsgRef(_) => Cow::Borrowed(""),
    }
}

fn seg_index(seg: &Segment) -> Option<usize> {
    match seg {
        Segment::Index(n) => Some(*n),
        Segment::Key(k) => array_index(k).map(|n| n as usize),
        Segment::MsgRef(_) => None,
    }
}

/// Looks up `seg` on a value (objects, arrays by index). No computed properties.
pub fn child<'a>(v: &'a Value, seg: &Segment) -> Option<&'a Value> {
    match v {
        Value::Object(o) => o.get(&seg_key(seg)),
        Value::Array(a) => seg_index(seg).and_then(|i| a.get(i)),
        _ => None,
    }
}

/// JavaScript property access `v[key]` including computed properties
/// (`length` of strings, arrays and Buffers, string characters, Buffer bytes).
pub fn js_property<'a>(v: &'a Value, key: &str) -> Option<Cow<'a, Value>> {
    match v {
        Value::Object(o) => o.get(key).map(Cow::Borrowed),
        Value::Array(a) => {
            if key == "length" {
                return Some(Cow::Owned(Value::Number(a.len() as f64)));
            }
            array_index(key)
                .and_then(|i| a.get(i as usize))
                .map(Cow::Borrowed)
        }
        Value::String(s) => {
            if key == "length" {
                return Some(Cow::Owned(Value::Number(s.encode_utf16().count() as f64)));
            }
            let i = array_index(key)? as usize;
            let units: Vec<u16> = s.encode_utf16().skip(i).take(1).collect();
            units
                .first()
                .map(|u| Cow::Owned(Value::string(String::from_utf16_lossy(&[*u]))))
        }
        Value::Buffer(b) => {
            if key == "length" {
                return Some(Cow::Owned(Value::Number(b.len() as f64)));
            }
            let i = array_index(key)? as usize;
            b.get(i).map(|x| Cow::Owned(Value::Number(f64::from(*x))))
        }
        _ => None,
    }
}

/// Reads the property at `path` (already resolved) from `root`.
pub fn get<'a>(root: &'a Object, path: &Path) -> Option<&'a Value> {
    let mut segs = path.segments.iter();
    let first = segs.next()?;
    let mut cur = root.get(&seg_key(first))?;
    for s in segs {
        cur = child(cur, s)?;
    }
    Some(cur)
}

/// Reads the property at `path` with JavaScript's computed properties
/// (`payload.length`, `topic.0`).
pub fn get_js<'a>(root: &'a Object, path: &Path) -> Option<Cow<'a, Value>> {
    let mut segs = path.segments.iter();
    let first = segs.next()?;
    let mut cur: Cow<'a, Value> = Cow::Borrowed(root.get(&seg_key(first))?);
    for s in segs {
        let key = seg_key(s);
        cur = match cur {
            Cow::Borrowed(v) => js_property(v, &key)?,
            Cow::Owned(v) => Cow::Owned(js_property(&v, &key)?.into_owned()),
        };
    }
    Some(cur)
}

fn empty_container_for(next: &Segment) -> Value {
    match next {
        Segment::Index(_) => Value::array(Vec::new()),
        _ => Value::empty_object(),
    }
}

/// Sets the property at `path` (already resolved), creating missing
/// intermediate objects (or arrays before a numeric index) when
/// `create_missing`. Fails if a value on the way is not an object.
pub fn set(
    root: &mut Object,
    path: &Path,
    value: Value,
    create_missing: bool,
) -> Result<(), PathError> {
    let segs = &path.segments;
    let Some((last, init)) = segs.split_last() else {
        return Ok(());
    };
    if init.is_empty() {
        root.insert(seg_key(last), value);
        return Ok(());
    }
    let first_key = seg_key(&init[0]);
    if !root.contains_key(&first_key) {
        if !create_missing {
            return Ok(());
        }
        root.insert(Str::new(&*first_key), empty_container_for(&segs[1]));
    }
    let mut cur = root.get_mut(&first_key).expect("inserted above");
    for (i, s) in init.iter().enumerate().skip(1) {
        let next = &segs[i + 1];
        cur = step_mut(cur, s, next, create_missing)?;
    }
    assign(cur, last, value)
}

fn step_mut<'a>(
    cur: &'a mut Value,
    seg: &Segment,
    next: &Segment,
    create_missing: bool,
) -> Result<&'a mut Value, PathError> {
    match cur {
        Value::Object(o) => {
            let o = Arc::make_mut(o);
            let key = seg_key(seg);
            if !o.contains_key(&key) {
                if !create_missing {
                    return Err(PathError::NotAnObject {
                        key: key.into_owned(),
                    });
                }
                o.insert(Str::new(&*key), empty_container_for(next));
            }
            Ok(o.get_mut(&key).expect("present"))
        }
        Value::Array(a) => {
            let a = Arc::make_mut(a);
            let Some(i) = seg_index(seg) else {
                return Err(PathError::NotAnObject {
                    key: seg_key(seg).into_owned(),
                });
            };
            if i >= a.len() {
                if !create_missing {
                    return Err(PathError::NotAnObject { key: i.to_string() });
                }
                a.resize(i + 1, Value::Null);
                a[i] = empty_container_for(next);
            } else if a[i].is_null() && create_missing {
                // A hole left by an earlier set past the end (undefined in
                // Node-RED) gets a container; arrays here cannot tell it
                // from an explicit null.
                a[i] = empty_container_for(next);
            }
            Ok(&mut a[i])
        }
        _ => Err(PathError::NotAnObject {
            key: seg_key(seg).into_owned(),
        }),
    }
}

fn assign(target: &mut Value, seg: &Segment, value: Value) -> Result<(), PathError> {
    match target {
        Value::Object(o) => {
            Arc::make_mut(o).insert(seg_key(seg), value);
            Ok(())
        }
        Value::Array(a) => {
            let i = seg_index(seg).ok_or_else(|| PathError::NotAnObject {
                key: seg_key(seg).into_owned(),
            })?;
            let a = Arc::make_mut(a);
            if i >= a.len() {
                a.resize(i + 1, Value::Null);
            }
            a[i] = value;
            Ok(())
        }
        _ => Err(PathError::NotAnObject {
            key: seg_key(seg).into_owned(),
        }),
    }
}

/// Deletes the property at `path` (already resolved). Array elements are
/// spliced out. A missing path is not an error. Returns the removed value.
pub fn delete(root: &mut Object, path: &Path) -> Option<Value> {
    let segs = &path.segments;
    let (last, init) = segs.split_last()?;
    if init.is_empty() {
        return root.remove(&seg_key(last));
    }
    let mut cur = root.get_mut(&seg_key(&init[0]))?;
    for s in &init[1..] {
        cur = match cur {
            Value::Object(o) => {
                let key = seg_key(s);
                if !o.contains_key(&key) {
                    return None;
                }
                Arc::make_mut(o).get_mut(&key)?
            }
            Value::Array(a) => {
                let i = seg_index(s)?;
                if i >= a.len() {
                    return None;
                }
                Arc::make_mut(a).get_mut(i)?
            }
            _ => return None,
        };
    }
    match cur {
        Value::Object(o) => {
            let key = seg_key(last);
            if !o.contains_key(&key) {
                return None;
            }
            Arc::make_mut(o).remove(&key)
        }
        Value::Array(a) => {
            let i = seg_index(last)?;
            if i >= a.len() {
                return None;
            }
            Some(Arc::make_mut(a).remove(i))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::json;

    fn obj(text: &str) -> Object {
        json::parse(text).unwrap().as_object().unwrap().clone()
    }

    #[test]
    fn parses_dots_brackets_and_quotes() {
        let p = Path::parse("msg.payload.a[0]['b c'][\"d\"].e").unwrap();
        assert_eq!(
            p.segments(),
            &[
                Segment::Key("payload".into()),
                Segment::Key("a".into()),
                Segment::Index(0),
                Segment::Key("b c".into()),
                Segment::Key("d".into()),
                Segment::Key("e".into()),
            ]
        );
        for bad in [
            "", "a.", ".a", "a..b", "a[", "a[]", "a[x]", "a]b", "[0]", "a['x'",
        ] {
            assert!(Path::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn follows_node_reds_grammar_at_its_edges() {
        // Refused by Node-RED: spaces, a name after '.' starting with another
        // character, empty or misplaced quotes.
        for bad in [
            "payload.a b",
            "payload.\u{e9}",
            "payload.-x",
            "payload[\"\"]",
            "payload.\"x\"",
            "pay\"load\"",
            "payload[0]\"x\"y",
        ] {
            assert!(Path::parse(bad).is_err(), "{bad:?}");
        }
        // Accepted: a name straight after ']', a leading quoted name, other
        // characters inside a name, a non-ASCII first name; digits are an
        // index only before a '.'. Shown as key|[index]|key.
        let shape = |e: &str| {
            Path::parse(e)
                .unwrap()
                .segments()
                .iter()
                .map(|s| match s {
                    Segment::Key(k) => k.to_string(),
                    Segment::Index(n) => format!("[{n}]"),
                    Segment::MsgRef(p) => format!("[msg.{}]", p.to_expression()),
                })
                .collect::<Vec<_>>()
                .join("|")
        };
        for (expr, want) in [
            ("payload[0]x", "payload|[0]|x"),
            ("'a b'.c", "a b|c"),
            ("payload.a-b$", "payload|a-b$"),
            ("\u{e9}t\u{e9}", "\u{e9}t\u{e9}"),
            ("a.0.b", "a|[0]|b"),
            ("a.0", "a|0"),
            ("a.0[1]", "a|0|[1]"),
        ] {
            assert_eq!(shape(expr), want, "{expr}");
        }
    }

    #[test]
    fn expressions_read_back_as_the_same_path() {
        for (expr, text) in [
            ("a.b[0]", "a.b[0]"),
            ("store[\"c d\"].x", "store[\"c d\"].x"),
            ("a[\"0\"]", "a[\"0\"]"),
            ("'q\"t'.x", "'q\"t'.x"),
            ("a[\"\u{e9}\"]", "a[\"\u{e9}\"]"),
            ("a[msg.topic]", "a[msg.topic]"),
        ] {
            let p = Path::parse(expr).unwrap();
            assert_eq!(p.to_expression(), text);
            assert_eq!(Path::parse(&p.to_expression()).unwrap(), p, "{expr}");
        }
    }

    #[test]
    fn setting_through_a_dotted_index_creates_an_array() {
        let mut m = obj(r#"{"payload":{}}"#);
        let path = Path::parse("payload.arr.0.x").unwrap();
        set(&mut m, &path, Value::str("y"), true).unwrap();
        assert_eq!(
            json::stringify(&Value::object(m)),
            r#"{"payload":{"arr":[{"x":"y"}]}}"#
        );
    }

    #[test]
    fn references_to_other_values_are_keys_as_javascript_writes_them() {
        for (k, key) in [
            ("true", "true"),
            ("1.5", "1.5"),
            ("-1", "-1"),
            ("null", "null"),
            ("{\"a\":1}", "[object Object]"),
            ("[1,2]", "1,2"),
        ] {
            let m = obj(&format!(r#"{{"k":{k},"r":{{}}}}"#));
            let p = Path::parse("r[msg.k]").unwrap();
            let resolved = p.resolve(&m).unwrap();
            assert_eq!(
                resolved.segments(),
                [Segment::Key("r".into()), Segment::Key(key.into())],
                "{k}"
            );
        }
        let m = obj(r#"{"r":{}}"#);
        assert!(Path::parse("r[msg.missing]").unwrap().resolve(&m).is_err());
    }

    #[test]
    fn nested_message_references_resolve() {
        let m = obj(r#"{"topic":"t1","payload":{"t1":5},"i":1,"arr":[10,20]}"#);
        let p = Path::parse("payload[msg.topic]").unwrap();
        assert_eq!(get(&m, &p.resolve(&m).unwrap()), Some(&Value::Number(5.0)));
        let p = Path::parse("arr[msg.i]").unwrap();
        assert_eq!(get(&m, &p.resolve(&m).unwrap()), Some(&Value::Number(20.0)));
    }

    #[test]
    fn set_creates_missing_objects_and_arrays() {
        let mut m = obj(r#"{"payload":{}}"#);
        set(
            &mut m,
            &Path::parse("payload.e.f.g").unwrap(),
            Value::str("deep"),
            true,
        )
        .unwrap();
        set(
            &mut m,
            &Path::parse("x[1].y").unwrap(),
            Value::Number(1.0),
            true,
        )
        .unwrap();
        assert_eq!(
            json::stringify(&Value::object(m)),
            r#"{"payload":{"e":{"f":{"g":"deep"}}},"x":[null,{"y":1}]}"#
        );
    }

    #[test]
    fn set_under_a_string_fails() {
        let mut m = obj(r#"{"payload":"text"}"#);
        let r = set(
            &mut m,
            &Path::parse("payload.a").unwrap(),
            Value::Number(1.0),
            true,
        );
        assert!(matches!(r, Err(PathError::NotAnObject { .. })));
        assert_eq!(m.get("payload"), Some(&Value::str("text")));
    }

    #[test]
    fn delete_splices_arrays_and_ignores_missing() {
        let mut m = obj(r#"{"payload":[1,2,3],"o":{"a":1}}"#);
        assert_eq!(
            delete(&mut m, &Path::parse("payload[1]").unwrap()),
            Some(Value::Number(2.0))
        );
        assert_eq!(delete(&mut m, &Path::parse("o.zz.y").unwrap()), None);
        assert_eq!(
            delete(&mut m, &Path::parse("o.a").unwrap()),
            Some(Value::Number(1.0))
        );
        assert_eq!(
            json::stringify(&Value::object(m)),
            r#"{"payload":[1,3],"o":{}}"#
        );
    }

    #[test]
    fn computed_properties() {
        let m = obj(r#"{"s":"héllo","a":[1,2,3]}"#);
        assert_eq!(
            get_js(&m, &Path::parse("s.length").unwrap())
                .unwrap()
                .into_owned(),
            Value::Number(5.0)
        );
        assert_eq!(
            get_js(&m, &Path::parse("a.length").unwrap())
                .unwrap()
                .into_owned(),
            Value::Number(3.0)
        );
        assert_eq!(
            get_js(&m, &Path::parse("a.1").unwrap())
                .unwrap()
                .into_owned(),
            Value::Number(2.0)
        );
        assert_eq!(
            get_js(&m, &Path::parse("s.1").unwrap())
                .unwrap()
                .into_owned(),
            Value::str("é")
        );
        assert!(get_js(&m, &Path::parse("a.x").unwrap()).is_none());
    }

    #[test]
    fn copy_on_write_isolates_clones() {
        let a = Value::object(obj(r#"{"p":{"x":1}}"#));
        let mut b = a.clone();
        set(
            b.as_object_mut().unwrap(),
            &Path::parse("p.x").unwrap(),
            Value::Number(2.0),
            true,
        )
        .unwrap();
        assert_eq!(json::stringify(&a), r#"{"p":{"x":1}}"#);
        assert_eq!(json::stringify(&b), r#"{"p":{"x":2}}"#);
    }
}
