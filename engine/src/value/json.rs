//! JSON text <-> [`Value`] with JavaScript's `JSON.parse` / `JSON.stringify` semantics.
//!
//! Parsing keeps key order (JavaScript order, see [`Object`]), reads every
//! number as a double (`1e400` is Infinity, big integers lose precision) and
//! lets a repeated key replace the earlier value in place. Serialising prints
//! numbers in JavaScript's shortest form, leaves non-ASCII text and `/`
//! unescaped, writes NaN and infinities as `null` and Buffers as
//! `{"type":"Buffer","data":[...]}`.

use super::coerce::push_js_number;
use super::{Object, Str, Value};
use std::fmt;

/// Powers of ten exactly representable as doubles.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// Nesting deeper than this is rejected (protects the stack from hostile input).
const MAX_DEPTH: usize = 512;

/// A JSON syntax error with its byte offset and 1-based line and column.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct JsonError {
    /// What was wrong.
    pub message: String,
    /// Byte offset of the error.
    pub position: usize,
    /// 1-based line.
    pub line: usize,
    /// 1-based column (in characters).
    pub column: usize,
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at line {} column {} (position {})",
            self.message, self.line, self.column, self.position
        )
    }
}

/// The text V8 (Node.js 20) gives for a `JSON.parse` failure of `source`,
/// e.g. `Unexpected token 'o', "not json" is not valid JSON`, so that errors
/// reaching catch nodes read as they do in Node-RED.
pub fn js_error_message(source: &str, e: &JsonError) -> String {
    // V8 counts positions in UTF-16 code units.
    let pos = source[..floor_char_boundary(source, e.position)]
        .encode_utf16()
        .count();
    if let Some(tok) = e.message.strip_prefix("Unexpected token ") {
        const CONTEXT: usize = 10;
        let units: Vec<u16> = source.encode_utf16().collect();
        let text = |from: usize, to: usize| {
            String::from_utf16_lossy(&units[from.min(units.len())..to.min(units.len())])
        };
        let shown = if units.len() <= 2 * CONTEXT + 1 {
            format!("\"{source}\"")
        } else if pos < CONTEXT {
            format!("\"{}\"...", text(0, pos + CONTEXT))
        } else if pos >= units.len() - CONTEXT {
            format!("...\"{}\"", text(pos - CONTEXT, units.len()))
        } else {
            format!("...\"{}\"...", text(pos - CONTEXT, pos + CONTEXT))
        };
        return format!("Unexpected token {tok}, {shown} is not valid JSON");
    }
    if e.message == "Unexpected end of JSON input" {
        return e.message.clone();
    }
    format!("{} at position {pos}", e.message)
}

/// Parses JSON text (JavaScript `JSON.parse`). Surrounding whitespace is allowed.
pub fn parse(text: &str) -> Result<Value, JsonError> {
    let mut p = Parser {
        src: text,
        b: text.as_bytes(),
        i: 0,
        depth: 0,
    };
    p.skip_ws();
    let v = p.value()?;
    p.skip_ws();
    if p.i != p.b.len() {
        return Err(p.error("Unexpected non-whitespace character after JSON"));
    }
    Ok(v)
}

/// Parses JSON from bytes that must be valid UTF-8.
pub fn parse_bytes(bytes: &[u8]) -> Result<Value, JsonError> {
    match std::str::from_utf8(bytes) {
        Ok(s) => parse(s),
        Err(e) => Err(JsonError {
            message: "Invalid UTF-8 in JSON text".into(),
            position: e.valid_up_to(),
            line: 1,
            column: e.valid_up_to() + 1,
        }),
    }
}

struct Parser<'a> {
    src: &'a str,
    b: &'a [u8],
    i: usize,
    depth: usize,
}

impl Parser<'_> {
    fn error(&self, what: &str) -> JsonError {
        let pos = self.i.min(self.b.len());
        let before = &self.src[..floor_char_boundary(self.src, pos)];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        let message = match self.b.get(self.i) {
            None if what == "Unexpected token" => "Unexpected end of JSON input".to_string(),
            Some(_) if what == "Unexpected token" => {
                let c = self.src[floor_char_boundary(self.src, pos)..]
                    .chars()
                    .next()
                    .unwrap_or(' ');
                format!("Unexpected token '{c}'")
            }
            _ => what.to_string(),
        };
        JsonError {
            message,
            position: pos,
            line,
            column,
        }
    }

    #[inline]
    fn skip_ws(&mut self) {
        while let Some(&c) = self.b.get(self.i) {
            if c == b' ' || c == b'\n' || c == b'\r' || c == b'\t' {
                self.i += 1;
            } else {
                break;
            }
        }
    }

    fn value(&mut self) -> Result<Value, JsonError> {
        match self.b.get(self.i) {
            Some(b'{') => self.object(),
            Some(b'[') => self.array(),
            Some(b'"') => Ok(Value::String(self.string()?)),
            Some(b't') => self.literal("true", Value::Bool(true)),
            Some(b'f') => self.literal("false", Value::Bool(false)),
            Some(b'n') => self.literal("null", Value::Null),
            Some(c) if *c == b'-' || c.is_ascii_digit() => self.number(),
            _ => Err(self.error("Unexpected token")),
        }
    }

    fn literal(&mut self, word: &str, v: Value) -> Result<Value, JsonError> {
        if self.b[self.i..].starts_with(word.as_bytes()) {
            self.i += word.len();
            Ok(v)
        } else {
            // Point at the first character that differs.
            let mut j = 0;
            while self.b.get(self.i + j) == word.as_bytes().get(j) {
                j += 1;
            }
            self.i += j;
            Err(self.error("Unexpected token"))
        }
    }

    fn enter(&mut self) -> Result<(), JsonError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error("JSON nested too deeply"));
        }
        Ok(())
    }

    fn object(&mut self) -> Result<Value, JsonError> {
        self.enter()?;
        self.i += 1;
        let mut obj = Object::with_capacity(4);
        self.skip_ws();
        if self.b.get(self.i) == Some(&b'}') {
            self.i += 1;
            self.depth -= 1;
            return Ok(Value::object(obj));
        }
        let mut first = true;
        loop {
            self.skip_ws();
            if self.b.get(self.i) != Some(&b'"') {
                return Err(self.error(if first {
                    "Expected property name or '}' in JSON"
                } else {
                    "Expected double-quoted property name in JSON"
                }));
            }
            first = false;
            let key = self.string()?;
            self.skip_ws();
            if self.b.get(self.i) != Some(&b':') {
                return Err(self.error("Expected ':' after property name in JSON"));
            }
            self.i += 1;
            self.skip_ws();
            let v = self.value()?;
            obj.insert(key, v);
            self.skip_ws();
            match self.b.get(self.i) {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    self.depth -= 1;
                    return Ok(Value::object(obj));
                }
                _ => return Err(self.error("Expected ',' or '}' after property value in JSON")),
            }
        }
    }

    fn array(&mut self) -> Result<Value, JsonError> {
        self.enter()?;
        self.i += 1;
        let mut items = Vec::new();
        self.skip_ws();
        if self.b.get(self.i) == Some(&b']') {
            self.i += 1;
            self.depth -= 1;
            return Ok(Value::array(items));
        }
        loop {
            self.skip_ws();
            items.push(self.value()?);
            self.skip_ws();
            match self.b.get(self.i) {
                Some(b',') => self.i += 1,
                Some(b']') => {
                    self.i += 1;
                    self.depth -= 1;
                    return Ok(Value::array(items));
                }
                _ => return Err(self.error("Expected ',' or ']' after array element in JSON")),
            }
        }
    }

    fn number(&mut self) -> Result<Value, JsonError> {
        let start = self.i;
        let negative = self.b[self.i] == b'-';
        if negative {
            self.i += 1;
        }
        // Mantissa digits are collected for the exact fast path below.
        let mut mantissa: u64 = 0;
        let mut digits = 0u32;
        let mut take_digit = |c: u8, mantissa: &mut u64| {
            if digits < 19 {
                *mantissa = *mantissa * 10 + u64::from(c - b'0');
            }
            digits += 1;
        };
        match self.b.get(self.i) {
            Some(b'0') => {
                self.i += 1;
                if self.b.get(self.i).is_some_and(u8::is_ascii_digit) {
                    return Err(self.error("Unexpected number in JSON"));
                }
            }
            Some(c) if c.is_ascii_digit() => {
                while let Some(&c) = self.b.get(self.i).filter(|c| c.is_ascii_digit()) {
                    take_digit(c, &mut mantissa);
                    self.i += 1;
                }
            }
            _ => return Err(self.error("No number after minus sign in JSON")),
        }
        let mut fraction_digits = 0i32;
        if self.b.get(self.i) == Some(&b'.') {
            self.i += 1;
            if !self.b.get(self.i).is_some_and(u8::is_ascii_digit) {
                return Err(self.error("Unterminated fractional number in JSON"));
            }
            while let Some(&c) = self.b.get(self.i).filter(|c| c.is_ascii_digit()) {
                take_digit(c, &mut mantissa);
                fraction_digits += 1;
                self.i += 1;
            }
        }
        let mut has_exponent = false;
        if matches!(self.b.get(self.i), Some(b'e') | Some(b'E')) {
            has_exponent = true;
            self.i += 1;
            if matches!(self.b.get(self.i), Some(b'+') | Some(b'-')) {
                self.i += 1;
            }
            if !self.b.get(self.i).is_some_and(u8::is_ascii_digit) {
                return Err(self.error("Exponent part is missing a number in JSON"));
            }
            while self.b.get(self.i).is_some_and(u8::is_ascii_digit) {
                self.i += 1;
            }
        }
        // Exact fast path (Clinger): a mantissa below 2^53 divided by an exact
        // power of ten is correctly rounded by one IEEE division.
        if !has_exponent && digits <= 15 && fraction_digits <= 22 {
            let v = mantissa as f64 / POW10[fraction_digits as usize];
            return Ok(Value::Number(if negative { -v } else { v }));
        }
        // An integer that fits in u64 converts with one correctly rounded cast.
        if !has_exponent && fraction_digits == 0 && digits <= 19 {
            let v = mantissa as f64;
            return Ok(Value::Number(if negative { -v } else { v }));
        }
        let text = &self.src[start..self.i];
        // The grammar above only admits forms Rust's parser reads exactly.
        Ok(Value::Number(text.parse::<f64>().unwrap_or(f64::NAN)))
    }

    fn string(&mut self) -> Result<Str, JsonError> {
        self.i += 1; // opening quote
        let start = self.i;
        // Fast path: no escapes.
        while let Some(&c) = self.b.get(self.i) {
            match c {
                b'"' => {
                    let s = Str::new(&self.src[start..self.i]);
                    self.i += 1;
                    return Ok(s);
                }
                b'\\' => break,
                c if c < 0x20 => {
                    return Err(self.error("Bad control character in string literal in JSON"))
                }
                _ => self.i += 1,
            }
        }
        let mut out = String::from(&self.src[start..self.i]);
        loop {
            match self.b.get(self.i) {
                None => return Err(self.error("Unterminated string in JSON")),
                Some(b'"') => {
                    self.i += 1;
                    return Ok(Str::from(out));
                }
                Some(b'\\') => {
                    self.i += 1;
                    let esc = self.b.get(self.i).copied();
                    self.i += 1;
                    match esc {
                        Some(b'"') => out.push('"'),
                        Some(b'\\') => out.push('\\'),
                        Some(b'/') => out.push('/'),
                        Some(b'b') => out.push('\u{8}'),
                        Some(b'f') => out.push('\u{c}'),
                        Some(b'n') => out.push('\n'),
                        Some(b'r') => out.push('\r'),
                        Some(b't') => out.push('\t'),
                        Some(b'u') => {
                            let hi = self.hex4()?;
                            let c = if (0xD800..0xDC00).contains(&hi)
                                && self.b.get(self.i) == Some(&b'\\')
                                && self.b.get(self.i + 1) == Some(&b'u')
                            {
                                let save = self.i;
                                self.i += 2;
                                let lo = self.hex4()?;
                                if (0xDC00..0xE000).contains(&lo) {
                                    char::from_u32(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00))
                                } else {
                                    self.i = save;
                                    None
                                }
                            } else {
                                char::from_u32(hi)
                            };
                            // Lone surrogates cannot be held in UTF-8.
                            out.push(c.unwrap_or('\u{FFFD}'));
                        }
                        _ => {
                            self.i -= 1;
                            return Err(self.error("Bad escaped character in JSON"));
                        }
                    }
                }
                Some(&c) if c < 0x20 => {
                    return Err(self.error("Bad control character in string literal in JSON"))
                }
                Some(_) => {
                    let rest = &self.src[self.i..];
                    let n = rest
                        .bytes()
                        .position(|c| c == b'"' || c == b'\\' || c < 0x20)
                        .unwrap_or(rest.len());
                    out.push_str(&rest[..n]);
                    self.i += n;
                }
            }
        }
    }

    fn hex4(&mut self) -> Result<u32, JsonError> {
        let h = self
            .b
            .get(self.i..self.i + 4)
            .and_then(|h| std::str::from_utf8(h).ok());
        match h.and_then(|h| u32::from_str_radix(h, 16).ok()) {
            Some(v) if h.is_some_and(|h| h.bytes().all(|c| c.is_ascii_hexdigit())) => {
                self.i += 4;
                Ok(v)
            }
            _ => {
                while self.b.get(self.i).is_some_and(u8::is_ascii_hexdigit) {
                    self.i += 1;
                }
                Err(self.error("Bad Unicode escape in JSON"))
            }
        }
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i.min(s.len())
}

/// `JSON.stringify(value)`: compact.
pub fn stringify(v: &Value) -> String {
    let mut out = String::with_capacity(64);
    write_value(&mut out, v, None, 0);
    out
}

/// `JSON.stringify(value, null, indent)` with `indent` spaces (0 = compact).
pub fn stringify_pretty(v: &Value, indent: usize) -> String {
    let mut out = String::with_capacity(64);
    let ind = " ".repeat(indent);
    write_value(&mut out, v, (indent > 0).then_some(ind.as_str()), 0);
    out
}

/// Appends the compact JSON text of `v` to `out`.
pub fn write_compact(out: &mut String, v: &Value) {
    write_value(out, v, None, 0);
}

fn newline(out: &mut String, indent: Option<&str>, level: usize) {
    if let Some(ind) = indent {
        out.push('\n');
        for _ in 0..level {
            out.push_str(ind);
        }
    }
}

fn write_value(out: &mut String, v: &Value, indent: Option<&str>, level: usize) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(n) if n.is_finite() => push_js_number(out, *n),
        Value::Number(_) => out.push_str("null"),
        Value::String(s) => write_string(out, s),
        Value::Array(a) => {
            if a.is_empty() {
                out.push_str("[]");
                return;
            }
            out.push('[');
            for (i, item) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(out, indent, level + 1);
                write_value(out, item, indent, level + 1);
            }
            newline(out, indent, level);
            out.push(']');
        }
        Value::Object(o) => {
            if o.is_empty() {
                out.push_str("{}");
                return;
            }
            out.push('{');
            for (i, (k, item)) in o.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(out, indent, level + 1);
                write_string(out, k);
                out.push(':');
                if indent.is_some() {
                    out.push(' ');
                }
                write_value(out, item, indent, level + 1);
            }
            newline(out, indent, level);
            out.push('}');
        }
        Value::Buffer(b) => {
            // Buffer.prototype.toJSON
            let mut obj = Object::with_capacity(2);
            obj.insert("type", Value::str("Buffer"));
            obj.insert(
                "data",
                Value::array(b.iter().map(|x| Value::Number(f64::from(*x))).collect()),
            );
            write_value(out, &Value::object(obj), indent, level);
        }
    }
}

/// Appends `s` as a JSON string literal, escaped as `JSON.stringify` does.
pub fn write_string(out: &mut String, s: &str) {
    out.push('"');
    let bytes = s.as_bytes();
    let mut last = 0;
    for (i, &c) in bytes.iter().enumerate() {
        let esc: Option<&str> = match c {
            b'"' => Some("\\\""),
            b'\\' => Some("\\\\"),
            b'\n' => Some("\\n"),
            b'\r' => Some("\\r"),
            b'\t' => Some("\\t"),
            0x08 => Some("\\b"),
            0x0c => Some("\\f"),
            c if c < 0x20 => None,
            _ => continue,
        };
        out.push_str(&s[last..i]);
        match esc {
            Some(e) => out.push_str(e),
            None => {
                use std::fmt::Write;
                let _ = write!(out, "\\u{c:04x}");
            }
        }
        last = i + 1;
    }
    out.push_str(&s[last..]);
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_normalises_like_javascript() {
        let v = parse(r#"{"b":1,"a":[1,2.50,1e3,-0.0],"c":"\u00e9\n","d":{"z":null,"y":false}}"#)
            .unwrap();
        assert_eq!(
            stringify(&v),
            "{\"b\":1,\"a\":[1,2.5,1000,0],\"c\":\"é\\n\",\"d\":{\"z\":null,\"y\":false}}"
        );
        let v = parse("  [ 1 , \"two\" , {\"3\":3} ]  ").unwrap();
        assert_eq!(stringify(&v), "[1,\"two\",{\"3\":3}]");
    }

    #[test]
    fn numbers_parse_exactly_on_both_paths() {
        for text in [
            "0",
            "-0",
            "21.5",
            "0.1",
            "0.30000000000000004",
            "123456789012345",
            "1234567890123456789",
            "9007199254740993",
            "1e3",
            "-2.5e-3",
            "1.7976931348623157e308",
            "5e-324",
            "3.14159265358979",
            "0.000001",
            "100.0",
        ] {
            let expected: f64 = text.parse().unwrap();
            match parse(text).unwrap() {
                Value::Number(n) => assert_eq!(n.to_bits(), expected.to_bits(), "{text}"),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn error_messages_are_v8s() {
        // Recorded from Node.js 20's JSON.parse.
        let cases = [
            (
                "not json",
                r#"Unexpected token 'o', "not json" is not valid JSON"#,
            ),
            ("", "Unexpected end of JSON input"),
            (
                "{\"a\":}",
                r#"Unexpected token '}', "{"a":}" is not valid JSON"#,
            ),
            (
                "{\"a\":1",
                "Expected ',' or '}' after property value in JSON at position 6",
            ),
            ("[1,]", r#"Unexpected token ']', "[1,]" is not valid JSON"#),
            (
                "{a:1}",
                "Expected property name or '}' in JSON at position 1",
            ),
            (
                "12abc",
                "Unexpected non-whitespace character after JSON at position 2",
            ),
            ("\"abc", "Unterminated string in JSON at position 4"),
            ("tru", "Unexpected end of JSON input"),
            ("01", "Unexpected number in JSON at position 1"),
            ("[01]", "Unexpected number in JSON at position 2"),
            ("-", "No number after minus sign in JSON at position 1"),
            ("1.", "Unterminated fractional number in JSON at position 2"),
            (
                "1e+",
                "Exponent part is missing a number in JSON at position 3",
            ),
            ("\"\\x\"", "Bad escaped character in JSON at position 2"),
            (
                "{\"a\"1}",
                "Expected ':' after property name in JSON at position 4",
            ),
            ("{", "Expected property name or '}' in JSON at position 1"),
            ("[", "Unexpected end of JSON input"),
            (
                "{\"a\":1,}",
                "Expected double-quoted property name in JSON at position 7",
            ),
            ("\"\\u12\"", "Bad Unicode escape in JSON at position 5"),
            (
                "\"a\nb\"",
                "Bad control character in string literal in JSON at position 2",
            ),
            (
                "[\"a\" \"b\"]",
                "Expected ',' or ']' after array element in JSON at position 5",
            ),
            (
                "abcdefghijklmnopqrstuvwxyz",
                r#"Unexpected token 'a', "abcdefghij"... is not valid JSON"#,
            ),
            (
                "{\"a\":1}}",
                "Unexpected non-whitespace character after JSON at position 7",
            ),
        ];
        for (text, expected) in cases {
            let e = parse(text).unwrap_err();
            assert_eq!(js_error_message(text, &e), expected, "{text:?}");
        }
    }

    #[test]
    fn scalars_parse() {
        assert_eq!(parse("42").unwrap(), Value::Number(42.0));
        assert_eq!(parse(" \"hi\" ").unwrap(), Value::str("hi"));
        assert_eq!(parse("null").unwrap(), Value::Null);
        assert_eq!(parse("true").unwrap(), Value::Bool(true));
        assert_eq!(parse("1e400").unwrap(), Value::Number(f64::INFINITY));
        assert_eq!(
            stringify(&parse("12345678901234567890").unwrap()),
            "12345678901234567000"
        );
    }

    #[test]
    fn invalid_text_is_rejected_with_position() {
        for bad in [
            "",
            " ",
            "{",
            "[1,]",
            "{\"a\":}",
            "01",
            "1.",
            "-",
            "+1",
            "'a'",
            "nul",
            "\"a\nb\"",
            "[1] x",
            "{\"a\" 1}",
            "\"\\x\"",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should fail");
        }
        let e = parse("{\n  \"a\": tru\n}").unwrap_err();
        assert_eq!((e.line, e.column), (2, 11));
        assert_eq!(
            parse("").unwrap_err().message,
            "Unexpected end of JSON input"
        );
    }

    #[test]
    fn duplicate_keys_keep_first_position_last_value() {
        let v = parse(r#"{"a":1,"b":2,"a":3}"#).unwrap();
        assert_eq!(stringify(&v), r#"{"a":3,"b":2}"#);
    }

    #[test]
    fn integer_keys_are_ordered_first() {
        let v = parse(r#"{"b":1,"2":2,"1":3}"#).unwrap();
        assert_eq!(stringify(&v), r#"{"1":3,"2":2,"b":1}"#);
    }

    #[test]
    fn escapes_follow_json_stringify() {
        let v = Value::str("a\"b\\c/d\u{1}\u{8}\u{c}é\u{2028}");
        assert_eq!(stringify(&v), "\"a\\\"b\\\\c/d\\u0001\\b\\fé\u{2028}\"");
        assert_eq!(parse(r#""\ud83d\ude00""#).unwrap(), Value::str("😀"));
        assert_eq!(parse(r#""\ud83d""#).unwrap(), Value::str("\u{FFFD}"));
    }

    #[test]
    fn pretty_uses_indentation_and_empty_containers() {
        let v = parse(r#"{"a":[1,{}],"b":[],"c":{"d":"e"}}"#).unwrap();
        assert_eq!(
            stringify_pretty(&v, 4),
            "{\n    \"a\": [\n        1,\n        {}\n    ],\n    \"b\": [],\n    \"c\": {\n        \"d\": \"e\"\n    }\n}"
        );
    }

    #[test]
    fn non_finite_numbers_and_buffers() {
        let v = Value::array(vec![
            Value::Number(f64::NAN),
            Value::Number(f64::INFINITY),
            Value::Buffer(bytes::Bytes::from_static(b"hi")),
        ]);
        assert_eq!(
            stringify(&v),
            r#"[null,null,{"type":"Buffer","data":[104,105]}]"#
        );
    }

    #[test]
    fn deep_nesting_is_refused_not_a_stack_overflow() {
        let deep = "[".repeat(100_000);
        assert!(parse(&deep).is_err());
    }
}
