//! Lenient deserializers for node properties. Node-RED's editor stores many
//! numbers and booleans as strings (`"qos": "2"`, `"keepalive": "60"`,
//! `"birthRetain": "false"`) and older flows use either form, so node config
//! structs accept both.

use crate::value::js_number_to_string;
use serde::{Deserialize, Deserializer};
use serde_json::Value as Json;

/// A string; numbers and booleans become their JavaScript text; null -> "".
pub fn string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(match Json::deserialize(d)? {
        Json::String(s) => s,
        Json::Number(n) => js_number_to_string(n.as_f64().unwrap_or(f64::NAN)),
        Json::Bool(b) => b.to_string(),
        Json::Null => String::new(),
        other => {
            return Err(serde::de::Error::custom(format!(
                "expected a string, found {other}"
            )))
        }
    })
}

/// A boolean: `true`/`false` or the strings `"true"`/`"false"`; null -> false.
pub fn boolean<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    match Json::deserialize(d)? {
        Json::Bool(b) => Ok(b),
        Json::String(s) if s == "true" => Ok(true),
        Json::String(s) if s == "false" || s.is_empty() => Ok(false),
        Json::Null => Ok(false),
        other => Err(serde::de::Error::custom(format!(
            "expected true or false, found {other}"
        ))),
    }
}

/// A number given as a number or numeric string; empty string or null -> None.
pub fn opt_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    match Json::deserialize(d)? {
        Json::Number(n) => Ok(n.as_f64()),
        Json::String(s) if s.trim().is_empty() => Ok(None),
        Json::String(s) => {
            let n = crate::value::string_to_number(&s);
            if n.is_nan() {
                Err(serde::de::Error::custom(format!(
                    "expected a number, found \"{s}\""
                )))
            } else {
                Ok(Some(n))
            }
        }
        Json::Null => Ok(None),
        other => Err(serde::de::Error::custom(format!(
            "expected a number, found {other}"
        ))),
    }
}
