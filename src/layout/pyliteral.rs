//! Python literals as Barman writes and reads them in `backup.info`.
//!
//! `backup_label`, `copy_stats`, `included_files`, `tablespaces` and
//! `snapshots_info` are stored as `repr()` of a Python object and read back
//! with `ast.literal_eval`. This module owns that encoding:
//!
//! * [`PyValue::repr`] prints exactly what CPython 3.11 `repr()` prints:
//!   strings in single quotes unless the text has `'` and no `"`; `\\`, the
//!   quote, `\t \n \r` escaped; other non-printables (as `str.isprintable`
//!   decides, Unicode 14) as `\xNN`, `\uNNNN` or `\UNNNNNNNN`; floats as the
//!   shortest round-trip digits (`2.0`, `1e-05`, `1.5e+16`, `inf`, `nan`);
//!   one-element tuples as `(x,)`.
//! * [`PyValue::parse`] accepts the `ast.literal_eval` subset that can occur:
//!   strings in either quote style (also triple-quoted, `r`/`u` prefixes,
//!   implicit concatenation) with Python's escapes, ints (decimal with `_`,
//!   `0x`/`0o`/`0b`, one sign), floats, `None`/`True`/`False`, lists, tuples
//!   (bare top-level ones too), dicts, nesting, whitespace and `#` comments.
//!   Like Python it rejects `inf`/`nan` (names), `--1`, `-True` and leading
//!   zeros. Beyond Python: ints must fit in `i64`; sets, bytes, complex
//!   numbers, `\N{...}` escapes and lone surrogates are refused.
//!
//! Dict displays merge equal keys as Python does (`{1: 'a', True: 'b'}` is
//! `{1: 'b'}`), keeping the first key's position and the last value.
//! No I/O here.

mod parse;
mod printable;

use std::fmt::Write as _;

pub use parse::PyLiteralError;

/// A Python object built only from literals.
#[derive(Debug, Clone, PartialEq)]
pub enum PyValue {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    List(Vec<PyValue>),
    Tuple(Vec<PyValue>),
    /// Insertion-ordered, keys distinct under Python equality.
    Dict(Vec<(PyValue, PyValue)>),
}

impl PyValue {
    /// `ast.literal_eval(text)`, for the subset described in the module header.
    pub fn parse(text: &str) -> Result<PyValue, PyLiteralError> {
        parse::parse(text)
    }

    /// CPython's `repr(self)`.
    pub fn repr(&self) -> String {
        let mut out = String::new();
        self.write_repr(&mut out);
        out
    }

    /// Appends `repr(self)` to `out`.
    pub fn write_repr(&self, out: &mut String) {
        match self {
            PyValue::None => out.push_str("None"),
            PyValue::Bool(true) => out.push_str("True"),
            PyValue::Bool(false) => out.push_str("False"),
            PyValue::Int(i) => {
                let _ = write!(out, "{i}");
            }
            PyValue::Float(f) => out.push_str(&repr_float(*f)),
            PyValue::Str(s) => write_repr_str(s, out),
            PyValue::List(items) => {
                out.push('[');
                write_items(items, out);
                out.push(']');
            }
            PyValue::Tuple(items) => {
                out.push('(');
                write_items(items, out);
                if items.len() == 1 {
                    out.push(',');
                }
                out.push(')');
            }
            PyValue::Dict(pairs) => {
                out.push('{');
                for (i, (k, v)) in pairs.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    k.write_repr(out);
                    out.push_str(": ");
                    v.write_repr(out);
                }
                out.push('}');
            }
        }
    }

    /// Python's `str(self)`: the text itself for a string, `repr` otherwise.
    pub fn py_str(&self) -> String {
        match self {
            PyValue::Str(s) => s.clone(),
            other => other.repr(),
        }
    }

    /// Python truthiness (`bool(self)`): false for `None`, `False`, zero, and
    /// empty strings and containers.
    pub fn is_truthy(&self) -> bool {
        match self {
            PyValue::None => false,
            PyValue::Bool(b) => *b,
            PyValue::Int(i) => *i != 0,
            PyValue::Float(f) => *f != 0.0,
            PyValue::Str(s) => !s.is_empty(),
            PyValue::List(v) | PyValue::Tuple(v) => !v.is_empty(),
            PyValue::Dict(v) => !v.is_empty(),
        }
    }

    /// Python `==`: numbers compare by value across `bool`/`int`/`float`,
    /// containers element-wise, a list never equals a tuple.
    pub fn py_eq(&self, other: &PyValue) -> bool {
        use PyValue as V;
        match (self.as_number(), other.as_number()) {
            (Some(a), Some(b)) => return a.eq(b),
            (Some(_), None) | (None, Some(_)) => return false,
            (None, None) => {}
        }
        match (self, other) {
            (V::None, V::None) => true,
            (V::Str(a), V::Str(b)) => a == b,
            (V::List(a), V::List(b)) | (V::Tuple(a), V::Tuple(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.py_eq(y))
            }
            (V::Dict(a), V::Dict(b)) => {
                a.len() == b.len()
                    && a.iter()
                        .all(|(k, v)| b.iter().any(|(k2, v2)| k.py_eq(k2) && v.py_eq(v2)))
            }
            _ => false,
        }
    }

    /// Whether Python could use this value as a dict key.
    pub fn is_hashable(&self) -> bool {
        match self {
            PyValue::List(_) | PyValue::Dict(_) => false,
            PyValue::Tuple(items) => items.iter().all(PyValue::is_hashable),
            _ => true,
        }
    }

    /// `self[key]` for a dict with a string key (`None` if absent or not a dict).
    pub fn get(&self, key: &str) -> Option<&PyValue> {
        match self {
            PyValue::Dict(pairs) => pairs
                .iter()
                .find(|(k, _)| matches!(k, PyValue::Str(s) if s == key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            PyValue::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The value as a Python number (`bool` counts, as `True == 1`).
    pub fn as_number(&self) -> Option<PyNumber> {
        match self {
            PyValue::Bool(b) => Some(PyNumber::Int(i64::from(*b))),
            PyValue::Int(i) => Some(PyNumber::Int(*i)),
            PyValue::Float(f) => Some(PyNumber::Float(*f)),
            _ => None,
        }
    }

    /// Builds a dict the way a Python dict display does: a key equal to an
    /// earlier one replaces that entry's value in place.
    pub fn dict_from_pairs(pairs: impl IntoIterator<Item = (PyValue, PyValue)>) -> PyValue {
        let mut out: Vec<(PyValue, PyValue)> = Vec::new();
        for (k, v) in pairs {
            match out.iter_mut().find(|(k2, _)| k2.py_eq(&k)) {
                Some(slot) => slot.1 = v,
                None => out.push((k, v)),
            }
        }
        PyValue::Dict(out)
    }
}

/// A Python `int` or `float`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PyNumber {
    Int(i64),
    Float(f64),
}

impl PyNumber {
    pub fn as_f64(self) -> f64 {
        match self {
            PyNumber::Int(i) => i as f64,
            PyNumber::Float(f) => f,
        }
    }

    fn eq(self, other: PyNumber) -> bool {
        match (self, other) {
            (PyNumber::Int(a), PyNumber::Int(b)) => a == b,
            (PyNumber::Int(i), PyNumber::Float(f)) | (PyNumber::Float(f), PyNumber::Int(i)) => {
                // Exact comparison, as Python does for int == float.
                f.is_finite() && f.fract() == 0.0 && (f as i128) == i128::from(i)
            }
            (PyNumber::Float(a), PyNumber::Float(b)) => a == b,
        }
    }
}

fn write_items(items: &[PyValue], out: &mut String) {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        item.write_repr(out);
    }
}

/// CPython's `repr(str)`.
pub fn repr_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    write_repr_str(s, &mut out);
    out
}

fn write_repr_str(s: &str, out: &mut String) {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if c < ' ' || c == '\x7f' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if c.is_ascii() || printable::is_printable_non_ascii(c) => out.push(c),
            c => {
                let n = c as u32;
                let _ = match n {
                    0..=0xFF => write!(out, "\\x{n:02x}"),
                    0x100..=0xFFFF => write!(out, "\\u{n:04x}"),
                    _ => write!(out, "\\U{n:08x}"),
                };
            }
        }
    }
    out.push(quote);
}

/// Python's `str.isprintable()` for one character.
pub fn is_printable(c: char) -> bool {
    if c.is_ascii() {
        (' '..='~').contains(&c)
    } else {
        printable::is_printable_non_ascii(c)
    }
}

/// CPython's `repr(float)`: the shortest digits that round-trip, in fixed
/// notation when the decimal exponent is in `-4..16`, scientific otherwise.
pub fn repr_float(f: f64) -> String {
    if f.is_nan() {
        return "nan".to_string();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf" } else { "-inf" }.to_string();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0.0" } else { "0.0" }.to_string();
    }
    // `{:e}` gives the shortest round-trip digits: "-1.5e16", "1e-5".
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let mut out = String::from(sign);
    if !(-4..16).contains(&exp) {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let _ = write!(out, "e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
    } else if exp < 0 {
        out.push_str("0.");
        for _ in 0..(-exp - 1) {
            out.push('0');
        }
        out.push_str(&digits);
    } else {
        let int_len = exp as usize + 1;
        if digits.len() <= int_len {
            out.push_str(&digits);
            for _ in digits.len()..int_len {
                out.push('0');
            }
            out.push_str(".0");
        } else {
            out.push_str(&digits[..int_len]);
            out.push('.');
            out.push_str(&digits[int_len..]);
        }
    }
    out
}

#[cfg(test)]
mod tests;
