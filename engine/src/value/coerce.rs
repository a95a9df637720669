//! JavaScript coercions: `String(x)`, `Number(x)`, `parseFloat`, `==`, deep equality.

use super::Value;
use std::sync::Arc;

/// JavaScript `Number.prototype.toString()` (shortest round-trip form:
/// `0.1`, `1e+21`, `-0` -> `0`, `Infinity`, `NaN`).
pub fn js_number_to_string(n: f64) -> String {
    let mut buf = ryu_js::Buffer::new();
    buf.format(n).to_string()
}

/// Appends `String(n)` to `out` without an intermediate allocation.
pub fn push_js_number(out: &mut String, n: f64) {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        // Fast path for integers (the common case in sensor data); -0 prints as 0.
        use std::fmt::Write;
        let _ = write!(out, "{}", n as i64);
        return;
    }
    let mut buf = ryu_js::Buffer::new();
    out.push_str(buf.format(n));
}

/// JavaScript `String(value)`.
pub fn to_js_string(v: &Value) -> String {
    match v {
        Value::Null => "null".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => js_number_to_string(*n),
        Value::String(s) => s.to_string(),
        Value::Array(a) => {
            let mut out = String::new();
            join_array(a, &mut out);
            out
        }
        Value::Object(_) => "[object Object]".to_string(),
        Value::Buffer(b) => String::from_utf8_lossy(b).into_owned(),
    }
}

/// `Array.prototype.join(",")`: null elements become empty.
fn join_array(a: &[Value], out: &mut String) {
    for (i, v) in a.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        match v {
            Value::Null => {}
            Value::Array(inner) => join_array(inner, out),
            other => out.push_str(&to_js_string(other)),
        }
    }
}

/// JavaScript's white space and line terminators (what `trim()` and `\s` remove).
pub fn is_js_whitespace(c: char) -> bool {
    matches!(
        c,
        '\u{9}' | '\u{a}' | '\u{b}' | '\u{c}' | '\u{d}' | ' ' | '\u{a0}' | '\u{1680}' | '\u{2000}'
            ..='\u{200a}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202f}'
                | '\u{205f}'
                | '\u{3000}'
                | '\u{feff}'
    )
}

/// Length of the longest prefix of `s` that is a JavaScript StrDecimalLiteral
/// (sign, digits, fraction, exponent, or `Infinity`).
fn decimal_prefix_len(s: &str) -> usize {
    let b = s.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        i += 1;
    }
    if s[i..].starts_with("Infinity") {
        return i + 8;
    }
    let int_start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let mut digits = i - int_start;
    if i < b.len() && b[i] == b'.' {
        let frac_start = i + 1;
        let mut j = frac_start;
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        if digits > 0 || j > frac_start {
            digits += j - frac_start;
            i = j;
        }
    }
    if digits == 0 {
        return 0;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        let mut j = i + 1;
        if j < b.len() && (b[j] == b'+' || b[j] == b'-') {
            j += 1;
        }
        let exp_start = j;
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        if j > exp_start {
            i = j;
        }
    }
    i
}

fn parse_decimal(s: &str) -> f64 {
    let unsigned = s.trim_start_matches(['+', '-']);
    let neg = s.starts_with('-');
    let v = if unsigned == "Infinity" {
        f64::INFINITY
    } else {
        // Rust's parser accepts every StrDecimalLiteral form we hand it
        // (including "5." and ".5").
        unsigned.parse::<f64>().unwrap_or(f64::NAN)
    };
    if neg {
        -v
    } else {
        v
    }
}

/// JavaScript `Number(string)`: whitespace trimmed, empty -> 0, hex/octal/binary
/// prefixes, `Infinity`; anything else that is not a whole numeric literal -> NaN.
pub fn string_to_number(s: &str) -> f64 {
    let t = s.trim_matches(is_js_whitespace);
    if t.is_empty() {
        return 0.0;
    }
    let radix = match t.get(..2) {
        Some("0x") | Some("0X") => 16,
        Some("0o") | Some("0O") => 8,
        Some("0b") | Some("0B") => 2,
        _ => 0,
    };
    if radix != 0 {
        let digits = &t[2..];
        if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
            return f64::NAN;
        }
        return digits.chars().fold(0.0, |acc, c| {
            acc * radix as f64 + c.to_digit(radix).unwrap_or(0) as f64
        });
    }
    if decimal_prefix_len(t) == t.len() {
        parse_decimal(t)
    } else {
        f64::NAN
    }
}

/// JavaScript `parseFloat(String(value))`: leading whitespace skipped, the
/// longest numeric prefix taken (`"12abc"` -> 12), otherwise NaN.
pub fn parse_float(v: &Value) -> f64 {
    let text;
    let s = match v {
        Value::String(s) => s.as_str(),
        Value::Number(n) => return *n,
        other => {
            text = to_js_string(other);
            text.as_str()
        }
    };
    let t = s.trim_start_matches(is_js_whitespace);
    let len = decimal_prefix_len(t);
    if len == 0 {
        return f64::NAN;
    }
    parse_decimal(&t[..len])
}

/// JavaScript `Number(value)`.
pub fn to_number(v: &Value) -> f64 {
    match v {
        Value::Null => 0.0,
        Value::Bool(b) => f64::from(u8::from(*b)),
        Value::Number(n) => *n,
        Value::String(s) => string_to_number(s),
        Value::Array(_) | Value::Buffer(_) => string_to_number(&to_js_string(v)),
        Value::Object(_) => f64::NAN,
    }
}

/// Structural equality: primitives strictly (`1 !== "1"`), arrays element-wise,
/// objects by key set and values regardless of key order, Buffers bytewise.
pub fn deep_equals(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Null, Value::Null) => true,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Number(x), Value::Number(y)) => x == y,
        (Value::String(x), Value::String(y)) => x == y,
        (Value::Buffer(x), Value::Buffer(y)) => x == y,
        (Value::Array(x), Value::Array(y)) => {
            Arc::ptr_eq(x, y)
                || (x.len() == y.len() && x.iter().zip(y.iter()).all(|(p, q)| deep_equals(p, q)))
        }
        (Value::Object(x), Value::Object(y)) => {
            Arc::ptr_eq(x, y)
                || (x.len() == y.len()
                    && x.iter()
                        .all(|(k, v)| y.get(k).is_some_and(|w| deep_equals(v, w))))
        }
        _ => false,
    }
}

/// JavaScript `ToPrimitive` for comparisons: objects become their string form.
fn to_primitive(v: &Value) -> Value {
    match v {
        Value::Array(_) | Value::Object(_) | Value::Buffer(_) => Value::string(to_js_string(v)),
        other => other.clone(),
    }
}

fn is_container(v: &Value) -> bool {
    matches!(v, Value::Array(_) | Value::Object(_) | Value::Buffer(_))
}

/// JavaScript loose equality `a == b` (objects compare by identity).
pub fn loose_equals(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Null, Value::Null) => true,
        (Value::Null, _) | (_, Value::Null) => false,
        (Value::Number(x), Value::Number(y)) => x == y,
        (Value::String(x), Value::String(y)) => x == y,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Array(x), Value::Array(y)) => Arc::ptr_eq(x, y),
        (Value::Object(x), Value::Object(y)) => Arc::ptr_eq(x, y),
        (Value::Buffer(x), Value::Buffer(y)) => x.as_ptr() == y.as_ptr() && x.len() == y.len(),
        (Value::Number(x), Value::String(s)) | (Value::String(s), Value::Number(x)) => {
            *x == string_to_number(s)
        }
        (Value::Bool(x), other) | (other, Value::Bool(x)) => {
            loose_equals(&Value::Number(f64::from(u8::from(*x))), other)
        }
        (x, y) if is_container(x) && !is_container(y) => loose_equals(&to_primitive(x), y),
        (x, y) if is_container(y) && !is_container(x) => loose_equals(x, &to_primitive(y)),
        _ => false,
    }
}

/// JavaScript's string order: by UTF-16 code unit, so a character above
/// U+FFFF (a surrogate pair, 0xD800-0xDFFF) sorts before U+E000-U+FFFF,
/// unlike Rust's code point order. ASCII text takes the byte comparison.
fn js_string_order(a: &str, b: &str) -> std::cmp::Ordering {
    if a.is_ascii() || b.is_ascii() {
        // Where one side is ASCII, the first difference decides on a byte
        // below 0x80 against any other: both orders agree.
        return a.cmp(b);
    }
    a.encode_utf16().cmp(b.encode_utf16())
}

/// JavaScript relational comparison: `Some(Ordering)` when `a < b` etc. can be
/// decided, `None` when a NaN is involved (every comparison is then false).
pub fn js_compare(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    let pa = to_primitive(a);
    let pb = to_primitive(b);
    if let (Value::String(x), Value::String(y)) = (&pa, &pb) {
        return Some(js_string_order(x, y));
    }
    to_number(&pa).partial_cmp(&to_number(&pb))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_to_string_matches_javascript() {
        assert_eq!(js_number_to_string(42.0), "42");
        assert_eq!(js_number_to_string(0.1), "0.1");
        assert_eq!(js_number_to_string(1e21), "1e+21");
        assert_eq!(js_number_to_string(-0.0), "0");
        assert_eq!(js_number_to_string(f64::INFINITY), "Infinity");
        assert_eq!(js_number_to_string(f64::NEG_INFINITY), "-Infinity");
        assert_eq!(js_number_to_string(f64::NAN), "NaN");
        assert_eq!(
            js_number_to_string(12345678901234567890.0),
            "12345678901234567000"
        );
        assert_eq!(js_number_to_string(1e-7), "1e-7");
        assert_eq!(js_number_to_string(2.5), "2.5");
        let mut s = String::new();
        push_js_number(&mut s, -0.0);
        push_js_number(&mut s, 21.5);
        push_js_number(&mut s, 1e15);
        assert_eq!(s, "021.51000000000000000");
    }

    #[test]
    fn strings_compare_by_utf16_code_units() {
        use std::cmp::Ordering::{Greater, Less};
        let cmp = |a: &str, b: &str| js_compare(&Value::str(a), &Value::str(b));
        // An emoji (0xD83D 0xDE00) sorts before U+FF01 and U+E000 in JavaScript.
        assert_eq!(cmp("\u{1F600}", "\u{FF01}"), Some(Less));
        assert_eq!(cmp("\u{10000}", "\u{E000}"), Some(Less));
        assert_eq!(cmp("\u{1F600}", "Z"), Some(Greater));
        assert_eq!(cmp("abc", "abd"), Some(Less));
        assert_eq!(cmp("\u{e9}", "e"), Some(Greater));
    }

    #[test]
    fn string_to_number_follows_javascript() {
        assert_eq!(string_to_number(""), 0.0);
        assert_eq!(string_to_number("  12 "), 12.0);
        assert_eq!(string_to_number("1e3"), 1000.0);
        assert_eq!(string_to_number("0x10"), 16.0);
        assert_eq!(string_to_number("-Infinity"), f64::NEG_INFINITY);
        assert!(string_to_number("12abc").is_nan());
        assert!(string_to_number("inf").is_nan());
        assert!(string_to_number("-0x10").is_nan());
        assert_eq!(string_to_number(".5"), 0.5);
        assert_eq!(string_to_number("5."), 5.0);
        assert!(string_to_number(".").is_nan());
    }

    #[test]
    fn parse_float_takes_the_longest_prefix() {
        assert_eq!(parse_float(&Value::str("12abc")), 12.0);
        assert_eq!(parse_float(&Value::str(" 14 ")), 14.0);
        assert_eq!(parse_float(&Value::str("16 volts")), 16.0);
        assert_eq!(parse_float(&Value::str("1e")), 1.0);
        assert_eq!(parse_float(&Value::str("-.5x")), -0.5);
        assert!(parse_float(&Value::str("abc")).is_nan());
        assert!(parse_float(&Value::Bool(true)).is_nan());
        assert!(parse_float(&Value::empty_object()).is_nan());
        assert_eq!(parse_float(&Value::array(vec![Value::Number(3.0)])), 3.0);
    }

    #[test]
    fn loose_equality_coerces_like_javascript() {
        assert!(loose_equals(&Value::Number(5.0), &Value::str("5")));
        assert!(loose_equals(&Value::str("5.0"), &Value::Number(5.0)));
        assert!(!loose_equals(&Value::str("5.0"), &Value::str("5")));
        assert!(loose_equals(&Value::Bool(true), &Value::Number(1.0)));
        assert!(loose_equals(&Value::Bool(true), &Value::str("1")));
        assert!(!loose_equals(&Value::Null, &Value::Number(0.0)));
        assert!(loose_equals(&Value::array(vec![]), &Value::str("")));
        assert!(loose_equals(&Value::array(vec![]), &Value::Number(0.0)));
        assert!(loose_equals(
            &Value::empty_object(),
            &Value::str("[object Object]")
        ));
        assert!(!loose_equals(
            &Value::empty_object(),
            &Value::empty_object()
        ));
    }

    #[test]
    fn strings_join_arrays_and_name_objects() {
        let a = Value::array(vec![
            Value::Number(1.0),
            Value::Null,
            Value::array(vec![Value::str("x"), Value::Bool(true)]),
            Value::empty_object(),
        ]);
        assert_eq!(to_js_string(&a), "1,,x,true,[object Object]");
        assert_eq!(to_number(&Value::array(vec![Value::str("7")])), 7.0);
        assert!(to_number(&Value::array(vec![Value::Number(1.0), Value::Number(2.0)])).is_nan());
    }

    #[test]
    fn comparisons_coerce() {
        use std::cmp::Ordering::*;
        assert_eq!(
            js_compare(&Value::Bool(true), &Value::Number(10.0)),
            Some(Less)
        );
        assert_eq!(
            js_compare(&Value::array(vec![]), &Value::Number(0.0)),
            Some(Equal)
        );
        assert_eq!(
            js_compare(&Value::str("15"), &Value::Number(10.0)),
            Some(Greater)
        );
        assert_eq!(js_compare(&Value::str("abc"), &Value::Number(10.0)), None);
        assert_eq!(
            js_compare(&Value::str("b"), &Value::str("a")),
            Some(Greater)
        );
        assert_eq!(js_compare(&Value::Null, &Value::Number(1.0)), Some(Less));
    }

    #[test]
    fn deep_equality_ignores_key_order() {
        let a = super::super::json::parse(r#"{"a":1,"b":[1,{"c":null}]}"#).unwrap();
        let b = super::super::json::parse(r#"{"b":[1,{"c":null}],"a":1}"#).unwrap();
        let c = super::super::json::parse(r#"{"b":[1,{"c":0}],"a":1}"#).unwrap();
        assert!(deep_equals(&a, &b));
        assert!(!deep_equals(&a, &c));
        assert!(!deep_equals(&Value::Number(1.0), &Value::str("1")));
        assert!(!deep_equals(&Value::array(vec![]), &Value::empty_object()));
    }
}
