//! The `ast.literal_eval` subset: a recursive-descent parser over the text.

use super::PyValue;

/// The text is not a Python literal this parser accepts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed Python literal at offset {offset}: {reason}")]
pub struct PyLiteralError {
    /// Byte offset into the text.
    pub offset: usize,
    pub reason: String,
}

/// What produced a value: `-x` only applies to a plain number constant
/// (`-(1)` is fine, `-(-1)` and `-True` are not).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Node {
    Number,
    /// The literal 9223372036854775808, valid only after a minus sign.
    MinMagnitude,
    Other,
}

pub(super) fn parse(text: &str) -> Result<PyValue, PyLiteralError> {
    let mut p = Parser {
        src: text,
        pos: 0,
        depth: 0,
        nesting: 0,
    };
    if text.contains('\0') {
        return Err(p.err("source code string cannot contain null bytes"));
    }
    p.skip_ws();
    let (first, _) = p.expr()?;
    p.skip_ws();
    let value = if p.peek() == Some(',') {
        // A bare tuple: `1, 2`.
        let mut items = vec![first];
        while p.eat(',') {
            p.skip_ws();
            if p.peek().is_none() {
                break;
            }
            items.push(p.expr()?.0);
            p.skip_ws();
        }
        PyValue::Tuple(items)
    } else {
        first
    };
    p.skip_ws();
    if p.peek().is_some() {
        return Err(p.err("unexpected text after the literal"));
    }
    Ok(value)
}

struct Parser<'a> {
    src: &'a str,
    pos: usize,
    /// Bracket nesting: newlines are whitespace only inside brackets.
    depth: usize,
    /// Nested expressions being parsed (brackets and signs): bounded by
    /// [`MAX_NESTING`], so a hostile text is an error, not a stack overflow.
    nesting: usize,
}

/// CPython's tokenizer refuses more than 200 nested brackets ("too many
/// nested parentheses", its `MAXLEVEL`), so `ast.literal_eval`, and Barman
/// reading a `backup.info`, fail there too.
const MAX_BRACKETS: usize = 200;

/// A bound on recursion for what brackets do not count: chains of signs
/// (`----1`), which Python refuses anyway (a sign applies to a number only).
const MAX_NESTING: usize = 1000;

impl<'a> Parser<'a> {
    fn err(&self, reason: &str) -> PyLiteralError {
        PyLiteralError {
            offset: self.pos,
            reason: reason.to_string(),
        }
    }

    fn rest(&self) -> &'a str {
        &self.src[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn peek2(&self) -> Option<char> {
        self.rest().chars().nth(1)
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }

    fn skip_ws(&mut self) {
        while let Some(c) = self.peek() {
            match c {
                ' ' | '\t' | '\x0c' => self.pos += 1,
                '\n' | '\r' if self.depth > 0 => self.pos += 1,
                '#' => {
                    let end = self.rest().find(['\n', '\r']).unwrap_or(self.rest().len());
                    self.pos += end;
                }
                '\\' if self.rest()[1..].starts_with('\n') => self.pos += 2,
                _ => break,
            }
        }
    }

    fn expr(&mut self) -> Result<(PyValue, Node), PyLiteralError> {
        let start = self.pos;
        match self.expr_inner()? {
            (_, Node::MinMagnitude) => Err(PyLiteralError {
                offset: start,
                reason: "integer does not fit in 64 bits".into(),
            }),
            ok => Ok(ok),
        }
    }

    /// Counts an opened bracket; more than [`MAX_BRACKETS`] is an error.
    fn open_bracket(&mut self) -> Result<(), PyLiteralError> {
        if self.depth >= MAX_BRACKETS {
            return Err(self.err("too many nested parentheses"));
        }
        self.depth += 1;
        Ok(())
    }

    fn expr_inner(&mut self) -> Result<(PyValue, Node), PyLiteralError> {
        if self.nesting >= MAX_NESTING {
            return Err(self.err("too deeply nested"));
        }
        self.nesting += 1;
        let result = self.expr_node();
        self.nesting -= 1;
        result
    }

    fn expr_node(&mut self) -> Result<(PyValue, Node), PyLiteralError> {
        self.skip_ws();
        match self.peek() {
            Some(sign @ ('-' | '+')) => {
                self.pos += 1;
                self.skip_ws();
                let start = self.pos;
                let (value, node) = self.expr_inner()?;
                match (node, value) {
                    (Node::MinMagnitude, v) if sign == '-' => Ok(v),
                    (Node::Number, PyValue::Int(i)) if sign == '-' => i
                        .checked_neg()
                        .map(PyValue::Int)
                        .ok_or_else(|| PyLiteralError {
                            offset: start,
                            reason: "integer does not fit in 64 bits".into(),
                        }),
                    (Node::Number, PyValue::Float(f)) if sign == '-' => Ok(PyValue::Float(-f)),
                    (Node::Number, v @ (PyValue::Int(_) | PyValue::Float(_))) => Ok(v),
                    _ => Err(PyLiteralError {
                        offset: start,
                        reason: "a sign applies only to a number".into(),
                    }),
                }
                .map(|v| (v, Node::Other))
            }
            Some('[') => {
                let items = self.sequence('[', ']')?.0;
                Ok((PyValue::List(items), Node::Other))
            }
            Some('(') => {
                let (mut items, trailing_comma, inner) = self.sequence('(', ')')?;
                if items.len() == 1 && !trailing_comma {
                    // Parentheses only group: `(1)` is the constant 1.
                    let item = items.pop().unwrap_or(PyValue::None);
                    Ok((item, inner))
                } else {
                    Ok((PyValue::Tuple(items), Node::Other))
                }
            }
            Some('{') => Ok((self.dict()?, Node::Other)),
            Some(c) if c.is_ascii_digit() || (c == '.' && self.peek2_is_digit()) => self.number(),
            Some(c) if c == '\'' || c == '"' || c.is_alphabetic() || c == '_' => {
                self.string_or_name()
            }
            Some(_) => Err(self.err("unexpected character")),
            None => Err(self.err("unexpected end of text")),
        }
    }

    fn peek2_is_digit(&self) -> bool {
        self.peek2().is_some_and(|c| c.is_ascii_digit())
    }

    /// `open item, item, ... close`; returns the items, whether a comma
    /// followed the last one, and the node kind of a lone item.
    fn sequence(
        &mut self,
        open: char,
        close: char,
    ) -> Result<(Vec<PyValue>, bool, Node), PyLiteralError> {
        self.eat(open);
        self.open_bracket()?;
        let mut items = Vec::new();
        let mut trailing = false;
        let mut last_node = Node::Other;
        loop {
            self.skip_ws();
            if self.eat(close) {
                break;
            }
            let (v, node) = self.expr()?;
            items.push(v);
            last_node = node;
            self.skip_ws();
            if self.eat(',') {
                trailing = true;
                continue;
            }
            trailing = false;
            self.skip_ws();
            if !self.eat(close) {
                return Err(self.err("expected ',' or a closing bracket"));
            }
            break;
        }
        self.depth -= 1;
        Ok((items, trailing, last_node))
    }

    fn dict(&mut self) -> Result<PyValue, PyLiteralError> {
        self.eat('{');
        self.open_bracket()?;
        let mut pairs = Vec::new();
        loop {
            self.skip_ws();
            if self.eat('}') {
                break;
            }
            let key_at = self.pos;
            let (k, _) = self.expr()?;
            if !k.is_hashable() {
                return Err(PyLiteralError {
                    offset: key_at,
                    reason: "unhashable dict key".into(),
                });
            }
            self.skip_ws();
            if !self.eat(':') {
                return Err(self.err("expected ':' (sets are not supported)"));
            }
            let (v, _) = self.expr()?;
            pairs.push((k, v));
            self.skip_ws();
            if self.eat(',') {
                continue;
            }
            if !self.eat('}') {
                return Err(self.err("expected ',' or '}'"));
            }
            break;
        }
        self.depth -= 1;
        Ok(PyValue::dict_from_pairs(pairs))
    }

    fn number(&mut self) -> Result<(PyValue, Node), PyLiteralError> {
        let start = self.pos;
        let rest = self.rest();
        let radix = match rest.get(..2) {
            Some("0x" | "0X") => 16,
            Some("0o" | "0O") => 8,
            Some("0b" | "0B") => 2,
            _ => 10,
        };
        if radix != 10 {
            self.pos += 2;
            let body = self.take_while(|c| c.is_ascii_alphanumeric() || c == '_');
            let digits = strip_underscores(body.strip_prefix('_').unwrap_or(body))
                .ok_or_else(|| self.err("invalid underscore in a number"))?;
            return i64::from_str_radix(&digits, radix)
                .map(|i| (PyValue::Int(i), Node::Number))
                .map_err(|_| PyLiteralError {
                    offset: start,
                    reason: "invalid or too large integer".into(),
                });
        }
        let int_part = self.take_while(|c| c.is_ascii_digit() || c == '_');
        let mut is_float = false;
        if self.peek() == Some('.') {
            is_float = true;
            self.pos += 1;
            self.take_while(|c| c.is_ascii_digit() || c == '_');
        }
        if matches!(self.peek(), Some('e' | 'E')) {
            let save = self.pos;
            self.pos += 1;
            if matches!(self.peek(), Some('+' | '-')) {
                self.pos += 1;
            }
            if self
                .take_while(|c| c.is_ascii_digit() || c == '_')
                .is_empty()
            {
                self.pos = save;
            } else {
                is_float = true;
            }
        }
        if self
            .peek()
            .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '.')
        {
            return Err(self.err("invalid number (complex numbers are not supported)"));
        }
        let text = &self.src[start..self.pos];
        let clean = strip_underscores(text).ok_or_else(|| PyLiteralError {
            offset: start,
            reason: "invalid underscore in a number".into(),
        })?;
        if is_float {
            return clean
                .parse::<f64>()
                .map(|f| (PyValue::Float(f), Node::Number))
                .map_err(|_| PyLiteralError {
                    offset: start,
                    reason: "invalid float".into(),
                });
        }
        if int_part.len() > 1 && int_part.starts_with('0') && clean.bytes().any(|b| b != b'0') {
            return Err(PyLiteralError {
                offset: start,
                reason: "leading zeros in decimal integer literals are not permitted".into(),
            });
        }
        if clean.trim_start_matches('0') == "9223372036854775808" {
            return Ok((PyValue::Int(i64::MIN), Node::MinMagnitude));
        }
        clean
            .parse::<i64>()
            .map(|i| (PyValue::Int(i), Node::Number))
            .map_err(|_| PyLiteralError {
                offset: start,
                reason: "integer does not fit in 64 bits".into(),
            })
    }

    fn take_while(&mut self, f: impl Fn(char) -> bool) -> &'a str {
        let src: &'a str = self.src;
        let start = self.pos;
        let len = self
            .rest()
            .find(|c: char| !f(c))
            .unwrap_or(self.rest().len());
        self.pos += len;
        &src[start..self.pos]
    }

    fn string_or_name(&mut self) -> Result<(PyValue, Node), PyLiteralError> {
        let start = self.pos;
        let word = self.take_while(|c| c.is_alphanumeric() || c == '_');
        let quote_follows = matches!(self.peek(), Some('\'' | '"'));
        match word {
            "None" if !quote_follows => return Ok((PyValue::None, Node::Other)),
            "True" if !quote_follows => return Ok((PyValue::Bool(true), Node::Other)),
            "False" if !quote_follows => return Ok((PyValue::Bool(false), Node::Other)),
            _ => {}
        }
        self.pos = start;
        let mut text = String::new();
        loop {
            self.string(&mut text)?;
            self.skip_ws();
            let save = self.pos;
            let prefix = self.take_while(|c| c.is_ascii_alphabetic());
            let more = prefix.len() <= 2 && matches!(self.peek(), Some('\'' | '"'));
            self.pos = save;
            if !more {
                break;
            }
        }
        Ok((PyValue::Str(text), Node::Other))
    }

    /// One string literal (prefix, quotes, body), appended to `out`.
    fn string(&mut self, out: &mut String) -> Result<(), PyLiteralError> {
        let prefix = self.take_while(|c| c.is_ascii_alphabetic());
        let raw = match prefix.to_ascii_lowercase().as_str() {
            "" | "u" => false,
            "r" => true,
            _ => return Err(self.err("unsupported string prefix or name")),
        };
        let Some(quote) = self.bump().filter(|c| *c == '\'' || *c == '"') else {
            return Err(self.err("expected a string"));
        };
        let pair = if quote == '"' { "\"\"" } else { "''" };
        let triple = self.rest().starts_with(pair);
        if triple {
            self.pos += 2;
        }
        loop {
            let Some(c) = self.bump() else {
                return Err(self.err("unterminated string literal"));
            };
            if c == quote {
                if !triple {
                    return Ok(());
                }
                if self.rest().starts_with(pair) {
                    self.pos += 2;
                    return Ok(());
                }
                out.push(c);
            } else if (c == '\n' || c == '\r') && !triple {
                return Err(self.err("unterminated string literal"));
            } else if c == '\\' {
                if raw {
                    out.push('\\');
                    match self.bump() {
                        Some(n) => out.push(n),
                        None => return Err(self.err("unterminated string literal")),
                    }
                } else {
                    self.escape(out)?;
                }
            } else {
                out.push(c);
            }
        }
    }

    /// The escape after a backslash, in a non-raw string.
    fn escape(&mut self, out: &mut String) -> Result<(), PyLiteralError> {
        let at = self.pos;
        let Some(c) = self.bump() else {
            return Err(self.err("unterminated string literal"));
        };
        let simple = match c {
            '\n' => Some(None),
            '\\' => Some(Some('\\')),
            '\'' => Some(Some('\'')),
            '"' => Some(Some('"')),
            'a' => Some(Some('\x07')),
            'b' => Some(Some('\x08')),
            'f' => Some(Some('\x0c')),
            'n' => Some(Some('\n')),
            'r' => Some(Some('\r')),
            't' => Some(Some('\t')),
            'v' => Some(Some('\x0b')),
            _ => None,
        };
        if let Some(ch) = simple {
            out.extend(ch);
            return Ok(());
        }
        let code = match c {
            '0'..='7' => {
                let mut n = c.to_digit(8).unwrap_or(0);
                for _ in 0..2 {
                    match self.peek().and_then(|d| d.to_digit(8)) {
                        Some(d) => {
                            n = n * 8 + d;
                            self.pos += 1;
                        }
                        None => break,
                    }
                }
                n
            }
            'x' => self.hex_digits(2, at)?,
            'u' => self.hex_digits(4, at)?,
            'U' => self.hex_digits(8, at)?,
            'N' => {
                return Err(PyLiteralError {
                    offset: at,
                    reason: "\\N{...} escapes are not supported".into(),
                });
            }
            other => {
                // Unknown escapes keep the backslash (Python warns, still accepts).
                out.push('\\');
                out.push(other);
                return Ok(());
            }
        };
        let ch = char::from_u32(code).ok_or_else(|| PyLiteralError {
            offset: at,
            reason: "escape is not a Unicode scalar value (surrogate or too large)".into(),
        })?;
        out.push(ch);
        Ok(())
    }

    fn hex_digits(&mut self, n: usize, at: usize) -> Result<u32, PyLiteralError> {
        let digits = self
            .rest()
            .get(..n)
            .filter(|d| d.bytes().all(|b| b.is_ascii_hexdigit()));
        let err = || PyLiteralError {
            offset: at,
            reason: "truncated \\x, \\u or \\U escape".into(),
        };
        let digits = digits.ok_or_else(err)?;
        let code = u32::from_str_radix(digits, 16).map_err(|_| err())?;
        self.pos += n;
        Ok(code)
    }
}

/// Removes `_` digit separators; `None` if one is not between two digits.
fn strip_underscores(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'_' {
            let before = i.checked_sub(1).and_then(|j| bytes.get(j));
            let after = bytes.get(i + 1);
            if !before.is_some_and(u8::is_ascii_alphanumeric)
                || !after.is_some_and(u8::is_ascii_alphanumeric)
            {
                return None;
            }
        }
    }
    Some(text.replace('_', ""))
}
