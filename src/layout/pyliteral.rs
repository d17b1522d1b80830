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

/// The value of a Unicode decimal digit (category Nd, as CPython 3.11's
/// `\d` and `int()` see them): every Nd block is a run of ten from 0 to 9.
pub fn decimal_value(c: char) -> Option<u32> {
    #[rustfmt::skip]
    const ND: &[(u32, u32)] = &[
        (0x30, 0x39), (0x660, 0x669), (0x6F0, 0x6F9), (0x7C0, 0x7C9), (0x966, 0x96F),
        (0x9E6, 0x9EF), (0xA66, 0xA6F), (0xAE6, 0xAEF), (0xB66, 0xB6F), (0xBE6, 0xBEF),
        (0xC66, 0xC6F), (0xCE6, 0xCEF), (0xD66, 0xD6F), (0xDE6, 0xDEF), (0xE50, 0xE59),
        (0xED0, 0xED9), (0xF20, 0xF29), (0x1040, 0x1049), (0x1090, 0x1099), (0x17E0, 0x17E9),
        (0x1810, 0x1819), (0x1946, 0x194F), (0x19D0, 0x19D9), (0x1A80, 0x1A89), (0x1A90, 0x1A99),
        (0x1B50, 0x1B59), (0x1BB0, 0x1BB9), (0x1C40, 0x1C49), (0x1C50, 0x1C59), (0xA620, 0xA629),
        (0xA8D0, 0xA8D9), (0xA900, 0xA909), (0xA9D0, 0xA9D9), (0xA9F0, 0xA9F9), (0xAA50, 0xAA59),
        (0xABF0, 0xABF9), (0xFF10, 0xFF19), (0x104A0, 0x104A9), (0x10D30, 0x10D39),
        (0x11066, 0x1106F), (0x110F0, 0x110F9), (0x11136, 0x1113F), (0x111D0, 0x111D9),
        (0x112F0, 0x112F9), (0x11450, 0x11459), (0x114D0, 0x114D9), (0x11650, 0x11659),
        (0x116C0, 0x116C9), (0x11730, 0x11739), (0x118E0, 0x118E9), (0x11950, 0x11959),
        (0x11C50, 0x11C59), (0x11D50, 0x11D59), (0x11DA0, 0x11DA9), (0x16A60, 0x16A69),
        (0x16AC0, 0x16AC9), (0x16B50, 0x16B59), (0x1D7CE, 0x1D7FF), (0x1E140, 0x1E149),
        (0x1E2F0, 0x1E2F9), (0x1E950, 0x1E959), (0x1FBF0, 0x1FBF9),
    ];
    let c = c as u32;
    ND.iter()
        .find(|(lo, hi)| (*lo..=*hi).contains(&c))
        .map(|(lo, _)| (c - lo) % 10)
}
