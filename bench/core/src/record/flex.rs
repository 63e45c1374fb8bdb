//! Lenient field decoding, so one `Deserialize` reads every format.
//!
//! JSON output has typed values (`true`, `512`), while CSV, SQL and markdown
//! give text (`"1"`, `"512"`). The CSV/SQL/markdown readers hand their text to
//! serde as JSON strings, and these functions accept either form. Booleans also
//! accept `0`/`1` numbers, as older upstream JSON wrote some of them.

use std::fmt::Display;
use std::str::FromStr;

use serde::de::Error;
use serde::{Deserialize, Deserializer, Serializer};
use serde_json::Value;

/// A boolean from `true`/`false`, `0`/`1`, or their text.
pub fn bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    match Value::deserialize(d)? {
        Value::Bool(b) => Ok(b),
        Value::Number(n) => Ok(n.as_f64().is_some_and(|v| v != 0.0)),
        Value::String(s) => match s.trim() {
            "1" | "true" => Ok(true),
            "0" | "false" => Ok(false),
            other => Err(D::Error::custom(format!("invalid boolean '{other}'"))),
        },
        other => Err(D::Error::custom(format!("invalid boolean {other}"))),
    }
}

/// A number from a JSON number or its text (`T` is any integer or `f64`).
/// For `f64`, `null`, `nan` and `inf` are accepted too.
pub fn num<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr,
    T::Err: Display,
{
    let text = match Value::deserialize(d)? {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.trim().to_owned(),
        Value::Bool(b) => u8::from(b).to_string(),
        Value::Null => "nan".to_owned(),
        other => return Err(D::Error::custom(format!("invalid number {other}"))),
    };
    text.parse::<T>()
        .map_err(|e| D::Error::custom(format!("invalid number '{text}': {e}")))
}

/// Text from a JSON string, or the text of a number or boolean.
pub fn string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match Value::deserialize(d)? {
        Value::String(s) => Ok(s),
        Value::Null => Ok(String::new()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        other => Err(D::Error::custom(format!("expected text, got {other}"))),
    }
}

/// Writes a boolean as `0`/`1`, for the fields upstream types as integers.
pub fn bool_as_int<S: Serializer>(v: &bool, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u8(u8::from(*v))
}
