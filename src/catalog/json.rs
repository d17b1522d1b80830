//! Python's `json.dumps(obj)` with its defaults (separators `", "` and
//! `": "`, `ensure_ascii=True`, `allow_nan=True`, keys in insertion order)
//! over a [`PyValue`].

use std::fmt::Write as _;

use crate::layout::pyliteral::{PyValue, repr_float};

use super::RenderError;

/// `json.dumps(value)`.
pub fn dumps(value: &PyValue) -> Result<String, RenderError> {
    let mut out = String::new();
    write_value(value, &mut out)?;
    Ok(out)
}

fn write_value(value: &PyValue, out: &mut String) -> Result<(), RenderError> {
    match value {
        PyValue::None => out.push_str("null"),
        PyValue::Bool(true) => out.push_str("true"),
        PyValue::Bool(false) => out.push_str("false"),
        PyValue::Int(i) => {
            let _ = write!(out, "{i}");
        }
        PyValue::Float(f) => out.push_str(&float(*f)),
        PyValue::Str(s) => write_str(s, out),
        PyValue::List(items) | PyValue::Tuple(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_value(item, out)?;
            }
            out.push(']');
        }
        PyValue::Dict(pairs) => {
            out.push('{');
            for (i, (k, v)) in pairs.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_str(&key(k)?, out);
                out.push_str(": ");
                write_value(v, out)?;
            }
            out.push('}');
        }
    }
    Ok(())
}

/// `float.__repr__`, with JavaScript's names for the non-finite values.
fn float(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f == f64::INFINITY {
        "Infinity".into()
    } else if f == f64::NEG_INFINITY {
        "-Infinity".into()
    } else {
        repr_float(f)
    }
}

/// Dict keys: strings as they are; numbers, booleans and `None` converted.
fn key(k: &PyValue) -> Result<String, RenderError> {
    Ok(match k {
        PyValue::Str(s) => s.clone(),
        PyValue::Int(i) => i.to_string(),
        PyValue::Float(f) => float(*f),
        PyValue::Bool(true) => "true".into(),
        PyValue::Bool(false) => "false".into(),
        PyValue::None => "null".into(),
        PyValue::Tuple(_) | PyValue::List(_) | PyValue::Dict(_) => {
            return Err(RenderError(
                "keys must be str, int, float, bool or None, not tuple".into(),
            ));
        }
    })
}

/// A JSON string with everything outside printable ASCII escaped.
fn write_str(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
    }
    out.push('"');
}
