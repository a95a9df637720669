//! Node-RED "typed input" values shared by `change` and `switch`: a raw
//! property plus its type (`str`, `num`, `bool`, `json`, `bin`, `date`,
//! `env`, `msg`, `flow`, `global`), prepared once at build and evaluated per
//! message; message property reads with JavaScript semantics; and JavaScript
//! regular expressions (via `regress`) with `String.prototype.replace`
//! replacement patterns.

use bytes::Bytes;
use flowd_engine::context::{split_store, ContextScope};
use flowd_engine::flows::env::NodeEnv;
use flowd_engine::node::NodeCx;
use flowd_engine::value::path::{js_property, Path, PathError, Segment};
use flowd_engine::value::{json, Object, Value};
use flowd_engine::Msg;
use serde_json::Value as Json;
use std::borrow::Cow;
use std::ops::Range;

/// Message for any JSONata use.
pub const JSONATA_UNSUPPORTED: &str = "JSONata expressions are not supported by flowd yet";

/// A typed value prepared at build time.
#[derive(Debug, Clone)]
pub enum Typed {
    /// A value known at build (str, num, bool, json, bin, env).
    Const(Value),
    /// JavaScript `undefined`.
    Undefined,
    /// A message property, read when the rule runs.
    Msg(Path),
    /// A flow or global context key, read when the rule runs.
    Context(ContextScope, ContextKey),
    /// `Date.now()`.
    DateMs,
    /// `new Date().toISOString()`.
    DateIso,
}

/// A context key (`#:(store)::a.b[msg.topic]`), validated at build.
#[derive(Debug, Clone)]
pub struct ContextKey {
    key: String,
    path: Path,
}

impl ContextKey {
    /// Parses a context property reference (the store prefix is accepted and ignored).
    pub fn parse(raw: &str) -> Result<ContextKey, String> {
        let (_, key) = split_store(raw);
        let path = Path::parse(key).map_err(|e| e.to_string())?;
        Ok(ContextKey {
            key: key.to_string(),
            path,
        })
    }

    /// The key with nested `[msg.x]` references replaced by their values.
    pub fn resolve(&self, msg: &Object) -> Result<Cow<'_, str>, PathError> {
        if !self.path.has_refs() {
            return Ok(Cow::Borrowed(&self.key));
        }
        let resolved = self.path.resolve(msg)?;
        Ok(Cow::Owned(resolved.to_expression()))
    }
}

/// Why a typed value cannot be prepared.
#[derive(Debug, Clone, PartialEq)]
pub enum TypedError {
    /// The type is `jsonata`.
    Jsonata,
    /// Anything else (invalid JSON, bad path, ...).
    Invalid(String),
}

impl std::fmt::Display for TypedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TypedError::Jsonata => f.write_str(JSONATA_UNSUPPORTED),
            TypedError::Invalid(s) => f.write_str(s),
        }
    }
}

/// JavaScript `String(raw)` of a configuration value (`undefined` when absent).
pub fn raw_string(raw: Option<&Json>) -> String {
    match raw {
        None => "undefined".to_string(),
        Some(Json::String(s)) => s.clone(),
        Some(j) => Value::from_json(j).to_js_string(),
    }
}

/// JavaScript `Number(raw)` of a configuration value (NaN when absent).
pub fn raw_number(raw: Option<&Json>) -> f64 {
    match raw {
        None => f64::NAN,
        Some(j) => Value::from_json(j).to_number(),
    }
}

/// `/^true$/i.test(raw)`.
pub fn raw_bool(raw: Option<&Json>) -> bool {
    raw_string(raw).eq_ignore_ascii_case("true")
}

/// `Buffer.from(JSON.parse(text))`: an array of byte values or a string.
pub fn parse_bin(text: &str) -> Result<Bytes, String> {
    let v = json::parse(text).map_err(|e| format!("invalid JSON: {}", e.message))?;
    match &v {
        Value::Array(a) => Ok(a
            .iter()
            .map(|x| {
                let n = x.to_number();
                if n.is_finite() {
                    (n.trunc() as i64).rem_euclid(256) as u8
                } else {
                    0
                }
            })
            .collect()),
        Value::String(s) => Ok(Bytes::copy_from_slice(s.as_bytes())),
        Value::Object(o) if o.get("type").and_then(Value::as_str) == Some("Buffer") => {
            match o.get("data") {
                Some(Value::Array(_)) => {
                    parse_bin(&o.get("data").map(Value::to_json).unwrap_or_default())
                }
                _ => Err("a Buffer object needs a data array".into()),
            }
        }
        _ => Err("expected a JSON array of byte values or a string".into()),
    }
}

/// Node-RED's `evaluateEnvProperty`: `${NAME}`, a bare `NAME`, or text with
/// `${NAME}` references substituted; unset -> `""`.
pub fn env_value(text: &str, env: &NodeEnv) -> Value {
    let whole = text
        .strip_prefix("${")
        .and_then(|r| r.strip_suffix('}'))
        .filter(|n| !n.is_empty() && !n.contains('}'));
    if let Some(name) = whole {
        return env.get(name).unwrap_or_else(|| Value::str(""));
    }
    if !has_env_reference(text) {
        return env.get(text).unwrap_or_else(|| Value::str(""));
    }
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        match after.find('}') {
            Some(end) if end > 0 => {
                out.push_str(&rest[..start]);
                if let Some(v) = env.get(&after[..end]) {
                    out.push_str(&v.to_js_string());
                }
                rest = &after[end + 1..];
            }
            _ => {
                out.push_str(&rest[..start + 2]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    Value::string(out)
}

/// `/\${\S+}/.test(text)`.
fn has_env_reference(text: &str) -> bool {
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let run: &str = after.split(char::is_whitespace).next().unwrap_or("");
        // `\S+` is greedy but backtracks to the last `}` of the run.
        if run.len() > 1 && run[1..].contains('}') {
            return true;
        }
        rest = after;
    }
    false
}

/// Prepares a typed value the way Node-RED's `evaluateNodeProperty` treats
/// `kind`; `raw` is the property (None = undefined). Unknown kinds give the
/// raw value itself.
pub fn compile(kind: &str, raw: Option<&Json>, env: &NodeEnv) -> Result<Typed, TypedError> {
    Ok(match kind {
        "str" => Typed::Const(Value::string(raw_string(raw))),
        "num" => Typed::Const(Value::Number(raw_number(raw))),
        "bool" => Typed::Const(Value::Bool(raw_bool(raw))),
        "json" => {
            let text = raw_string(raw);
            Typed::Const(
                json::parse(&text)
                    .map_err(|e| TypedError::Invalid(format!("invalid JSON: {}", e.message)))?,
            )
        }
        "bin" => Typed::Const(Value::Buffer(
            parse_bin(&raw_string(raw)).map_err(TypedError::Invalid)?,
        )),
        "date" => match raw_string(raw).as_str() {
            "" | "undefined" | "null" => Typed::DateMs,
            // A Date object serialises as its ISO text.
            "iso" | "object" => Typed::DateIso,
            other => {
                return Err(TypedError::Invalid(format!(
                    "date format \"{other}\" is not supported yet (use a timestamp or \"iso\")"
                )))
            }
        },
        "env" => Typed::Const(env_value(&raw_string(raw), env)),
        "msg" => Typed::Msg(
            Path::parse(&raw_string(raw)).map_err(|e| TypedError::Invalid(e.to_string()))?,
        ),
        "flow" | "global" => {
            let scope = if kind == "flow" {
                ContextScope::Flow
            } else {
                ContextScope::Global
            };
            Typed::Context(
                scope,
                ContextKey::parse(&raw_string(raw)).map_err(TypedError::Invalid)?,
            )
        }
        "jsonata" => return Err(TypedError::Jsonata),
        "re" => {
            return Err(TypedError::Invalid(
                "regular expression values are not supported here".into(),
            ))
        }
        _ => match raw {
            None => Typed::Undefined,
            Some(j) => Typed::Const(Value::from_json(j)),
        },
    })
}

impl Typed {
    /// Evaluates for `msg`. `Err` when reading a message property throws in
    /// JavaScript (a parent is undefined or null); context lookups that fail
    /// give undefined.
    pub fn eval(&self, msg: &Msg, cx: &NodeCx<'_>) -> Result<Option<Value>, String> {
        match self {
            Typed::Const(v) => Ok(Some(v.clone())),
            Typed::Undefined => Ok(None),
            Typed::Msg(p) => get_property(msg, p).map(|v| v.map(Cow::into_owned)),
            Typed::Context(scope, key) => Ok(match key.resolve(msg) {
                Ok(k) => cx.context_get(*scope, &k).ok().flatten(),
                Err(_) => None,
            }),
            Typed::DateMs => Ok(Some(Value::Number(now_ms()))),
            Typed::DateIso => Ok(Some(Value::string(iso_date(now_ms())))),
        }
    }
}

fn seg_text(s: &Segment) -> Cow<'_, str> {
    match s {
        Segment::Key(k) => Cow::Borrowed(k.as_str()),
        Segment::Index(n) => Cow::Owned(n.to_string()),
        Segment::MsgRef(_) => Cow::Borrowed(""),
    }
}

/// Node-RED's `getMessageProperty`: reads `path` (nested `[msg.x]`
/// references resolved) with JavaScript property access (`length`, string
/// characters). A missing final property is `Ok(None)`; reading through an
/// undefined or null parent is an error, as in JavaScript.
pub fn get_property<'a>(root: &'a Object, path: &Path) -> Result<Option<Cow<'a, Value>>, String> {
    let resolved = path.resolve(root).map_err(|e| e.to_string())?;
    let segs = resolved.segments();
    let Some(first) = segs.first() else {
        return Ok(None);
    };
    let mut cur: Option<Cow<'a, Value>> = root.get(&seg_text(first)).map(Cow::Borrowed);
    for s in &segs[1..] {
        let key = seg_text(s);
        cur = match cur {
            None => {
                return Err(format!(
                    "Cannot read properties of undefined (reading '{key}')"
                ))
            }
            Some(v) if v.is_null() => {
                return Err(format!("Cannot read properties of null (reading '{key}')"))
            }
            Some(Cow::Borrowed(v)) => js_property(v, &key),
            Some(Cow::Owned(v)) => js_property(&v, &key).map(|c| Cow::Owned(c.into_owned())),
        };
    }
    Ok(cur)
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as f64)
        .unwrap_or(0.0)
}

/// `new Date(ms).toISOString()`.
pub fn iso_date(ms: f64) -> String {
    let ms = ms as i64;
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000
    )
}

/// Compiles a JavaScript regular expression (`new RegExp(pattern, flags)`),
/// with V8-like error text.
pub fn compile_regex(pattern: &str, icase: bool) -> Result<regress::Regex, String> {
    let flags = if icase { "i" } else { "" };
    regress::Regex::with_flags(pattern, flags)
        .map_err(|e| format!("Invalid regular expression: /{pattern}/{flags}: {e}"))
}

/// Appends the JavaScript `GetSubstitution` expansion of `replacement` for a
/// match at `range` of `text` (`$$`, `$&`, `` $` ``, `$'`, `$n`, `$nn`, `$<name>`).
fn expand(
    out: &mut String,
    replacement: &str,
    text: &str,
    range: Range<usize>,
    m: Option<&regress::Match>,
) {
    let captures = m.map(|m| m.captures.len()).unwrap_or(0);
    let has_names = m.is_some_and(|m| m.named_groups().next().is_some());
    let b = replacement.as_bytes();
    let mut i = 0;
    let mut lit = 0;
    while i < b.len() {
        if b[i] != b'$' || i + 1 >= b.len() {
            i += 1;
            continue;
        }
        let c = b[i + 1];
        let (piece, len): (Option<Cow<'_, str>>, usize) = match c {
            b'$' => (Some(Cow::Borrowed("$")), 2),
            b'&' => (Some(Cow::Borrowed(&text[range.clone()])), 2),
            b'`' => (Some(Cow::Borrowed(&text[..range.start])), 2),
            b'\'' => (Some(Cow::Borrowed(&text[range.end..])), 2),
            b'0'..=b'9' => {
                let d1 = usize::from(c - b'0');
                let two = b
                    .get(i + 2)
                    .filter(|d| d.is_ascii_digit())
                    .map(|d| d1 * 10 + usize::from(d - b'0'));
                let (n, len) = match two {
                    Some(nn) if (1..=captures).contains(&nn) => (nn, 3),
                    _ => (d1, 2),
                };
                if (1..=captures).contains(&n) {
                    let g = m.and_then(|m| m.group(n));
                    (Some(Cow::Borrowed(g.map(|r| &text[r]).unwrap_or(""))), len)
                } else {
                    (None, 1)
                }
            }
            b'<' if has_names => match replacement[i + 2..].find('>') {
                Some(end) => {
                    let name = &replacement[i + 2..i + 2 + end];
                    let g = m.and_then(|m| m.named_group(name));
                    (
                        Some(Cow::Borrowed(g.map(|r| &text[r]).unwrap_or(""))),
                        end + 3,
                    )
                }
                None => (None, 1),
            },
            _ => (None, 1),
        };
        match piece {
            Some(p) => {
                out.push_str(&replacement[lit..i]);
                out.push_str(&p);
                i += len;
                lit = i;
            }
            None => i += len,
        }
    }
    out.push_str(&replacement[lit..]);
}

/// `text.replace(/re/g, replacement)`.
pub fn replace_regex_all(re: &regress::Regex, text: &str, replacement: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for m in re.find_iter(text) {
        out.push_str(&text[last..m.start()]);
        expand(&mut out, replacement, text, m.range(), Some(&m));
        last = m.end();
    }
    out.push_str(&text[last..]);
    out
}

/// `text.replace(/escaped needle/g, replacement)`: every occurrence of the
/// literal `needle` (an empty needle matches between all characters).
pub fn replace_literal_all(text: &str, needle: &str, replacement: &str) -> String {
    let mut out = String::with_capacity(text.len());
    if needle.is_empty() {
        let mut positions: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();
        positions.push(text.len());
        let mut last = 0;
        for p in positions {
            out.push_str(&text[last..p]);
            expand(&mut out, replacement, text, p..p, None);
            last = p;
        }
        out.push_str(&text[last..]);
        return out;
    }
    let mut last = 0;
    for (p, _) in text.match_indices(needle) {
        out.push_str(&text[last..p]);
        expand(&mut out, replacement, text, p..p + needle.len(), None);
        last = p + needle.len();
    }
    out.push_str(&text[last..]);
    out
}

/// `text.replace(needle, replacement)` with a string pattern: the first occurrence only.
pub fn replace_literal_first(text: &str, needle: &str, replacement: &str) -> String {
    match text.find(needle) {
        Some(p) => {
            let mut out = String::with_capacity(text.len());
            out.push_str(&text[..p]);
            expand(&mut out, replacement, text, p..p + needle.len(), None);
            out.push_str(&text[p + needle.len()..]);
            out
        }
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn js_replacement_patterns() {
        let re = compile_regex("(\\w)(\\d)?", false).unwrap();
        assert_eq!(replace_regex_all(&re, "a1 b", "[$2$1]"), "[1a] [b]");
        assert_eq!(
            replace_regex_all(&re, "a1", "$&-$$-$0-$3-$"),
            "a1-$-$0-$3-$"
        );
        let re = compile_regex("b", false).unwrap();
        assert_eq!(replace_regex_all(&re, "abc", "[$`|$']"), "a[a|c]c");
        let re = compile_regex("(?<x>b)", false).unwrap();
        assert_eq!(replace_regex_all(&re, "abc", "<$<x>$<y>>"), "a<b>c");
        let re = compile_regex("(b)", false).unwrap();
        assert_eq!(replace_regex_all(&re, "abc", "$<x>$10$01"), "a$<x>b0bc");
        let re = compile_regex("x*", false).unwrap();
        assert_eq!(replace_regex_all(&re, "abc", "-"), "-a-b-c-");
        assert_eq!(replace_regex_all(&re, "éa", "-"), "-é-a-");
        let re = compile_regex("A", true).unwrap();
        assert_eq!(replace_regex_all(&re, "aAa", "b"), "bbb");
        assert!(compile_regex("(", false)
            .unwrap_err()
            .starts_with("Invalid regular expression: /(/: "));
    }

    #[test]
    fn literal_replace() {
        assert_eq!(replace_literal_all("a.b.c", ".", "$&$&"), "a..b..c");
        assert_eq!(replace_literal_all("ab", "", "-"), "-a-b-");
        assert_eq!(replace_literal_all("aaa", "aa", "b"), "ba");
        assert_eq!(
            replace_literal_first("undefined undefined", "undefined", "x$1"),
            "x$1 undefined"
        );
    }

    #[test]
    fn raw_coercions() {
        assert_eq!(raw_number(Some(&json!("1e3"))), 1000.0);
        assert_eq!(raw_number(Some(&json!(""))), 0.0);
        assert!(raw_number(Some(&json!("abc"))).is_nan());
        assert!(raw_number(None).is_nan());
        assert!(raw_bool(Some(&json!("True"))));
        assert!(!raw_bool(Some(&json!("yes"))));
        assert_eq!(raw_string(Some(&json!(5))), "5");
        assert_eq!(
            &parse_bin("[104,105,256,-1]").unwrap()[..],
            &[104, 105, 0, 255]
        );
        assert_eq!(&parse_bin("\"hi\"").unwrap()[..], b"hi");
        assert!(parse_bin("5").is_err());
        assert!(parse_bin("[1,").is_err());
    }

    #[test]
    fn iso_dates() {
        assert_eq!(iso_date(0.0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso_date(1_700_000_000_123.0), "2023-11-14T22:13:20.123Z");
        assert_eq!(iso_date(951_782_400_000.0), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn property_reads_follow_javascript() {
        let m = json::parse(r#"{"s":"abc","a":[1,2],"n":null,"o":{"k":"a"}}"#).unwrap();
        let o = m.as_object().unwrap();
        let get =
            |p: &str| get_property(o, &Path::parse(p).unwrap()).map(|v| v.map(Cow::into_owned));
        assert_eq!(get("s.length"), Ok(Some(Value::Number(3.0))));
        assert_eq!(get("a[1]"), Ok(Some(Value::Number(2.0))));
        assert_eq!(get("missing"), Ok(None));
        assert_eq!(get("s.x"), Ok(None));
        assert!(get("missing.x").is_err());
        assert!(get("n.x").is_err());
        assert_eq!(get("s[msg.o.k]"), Ok(None));
    }

    #[test]
    fn context_keys_resolve_references() {
        let m = json::parse(r#"{"topic":"a.b","i":2}"#).unwrap();
        let o = m.as_object().unwrap();
        let k = ContextKey::parse("#:(file)::x[msg.topic].y[msg.i]").unwrap();
        let text = k.resolve(o).unwrap().into_owned();
        assert_eq!(text, "x[\"a.b\"].y[2]");
        assert_eq!(
            Path::parse(&text).unwrap().segments(),
            &[
                Segment::Key("x".into()),
                Segment::Key("a.b".into()),
                Segment::Key("y".into()),
                Segment::Index(2)
            ]
        );
        assert_eq!(
            ContextKey::parse("plain").unwrap().resolve(o).unwrap(),
            "plain"
        );
        // Names that are not plain are quoted, so they read back the same.
        for key in ["c d", "0", "-x", "\u{e9}"] {
            let mut m = Object::new();
            m.insert("k", Value::str(key));
            let text = ContextKey::parse("store[msg.k]")
                .unwrap()
                .resolve(&m)
                .unwrap()
                .into_owned();
            assert_eq!(
                Path::parse(&text).unwrap().segments(),
                &[Segment::Key("store".into()), Segment::Key(key.into())],
                "{text}"
            );
        }
    }

    #[test]
    fn env_lookup_forms() {
        let env = NodeEnv::new(vec![("NR_NODE_ID", "n1".into())], None);
        assert_eq!(env_value("NR_NODE_ID", &env), Value::str("n1"));
        assert_eq!(env_value("${NR_NODE_ID}", &env), Value::str("n1"));
        assert_eq!(
            env_value("a-${NR_NODE_ID}-${NOPE_XYZ}", &env),
            Value::str("a-n1-")
        );
        assert_eq!(env_value("NOPE_XYZ_UNSET", &env), Value::str(""));
    }

    #[test]
    fn compile_kinds() {
        let env = NodeEnv::process();
        assert!(matches!(
            compile("jsonata", Some(&json!("$x")), &env),
            Err(TypedError::Jsonata)
        ));
        assert!(matches!(
            compile("json", Some(&json!("{")), &env),
            Err(TypedError::Invalid(_))
        ));
        assert!(
            matches!(compile("num", Some(&json!("7")), &env), Ok(Typed::Const(Value::Number(n))) if n == 7.0)
        );
        assert!(matches!(
            compile("date", Some(&json!("")), &env),
            Ok(Typed::DateMs)
        ));
        assert!(
            matches!(compile("number", Some(&json!("number")), &env), Ok(Typed::Const(Value::String(s))) if s == "number")
        );
        assert!(matches!(
            compile("msg", Some(&json!("a..b")), &env),
            Err(TypedError::Invalid(_))
        ));
    }
}
